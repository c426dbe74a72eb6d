/* Internals of the FUSE server shared by virtio/fuse.c (requests, INIT, dispatch),
 * virtio/fuse_ops.c (names, attributes, xattrs), virtio/fuse_io.c (open files and
 * directories) and virtio/fuse_nodes.c (the tables): the node and handle tables that turn
 * guest ids into host descriptors, the server itself and the per-request context. Not a
 * public header: the device sees only virtio/fuse.h. */
#ifndef CLAWVM_VIRTIO_FUSE_SERVER_H
#define CLAWVM_VIRTIO_FUSE_SERVER_H

#include <linux/fuse.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "base/fd_budget.h"
#include "virtio/fuse.h"

/* Seconds the guest may trust an entry or attributes (and a miss) before asking again: the
 * host may change the share behind the guest's back, and a local file system's cache would
 * be stale about this long at most. */
#define ENTRY_TIMEOUT 1
#define ATTR_TIMEOUT  1

/* Caps on what a guest can make one server hold. Each inode and each handle holds a host
 * descriptor, taken from the process's descriptor budget (base/fd_budget.h, below
 * RLIMIT_NOFILE and shared by every share and vsock): that budget is the limit a guest
 * meets first (ENFILE); the table caps below only bound a table's memory should the open
 * file limit be huge. */
/* Node ids: slot arrays of 16 bytes a slot (16 MiB at most) and one struct fuse_inode each
 * in use; the kernel's own nr_open (1 << 20 by default) is the most RLIMIT_NOFILE can be. */
#define FUSE_MAX_INODES (1u << 20)
/* Open files and directories: far more than a guest's programs keep open at once. */
#define FUSE_MAX_HANDLES (1u << 16)
/* Inodes the server gave extra hard links (see fuse_link_check): they hold no descriptor, so
 * this cap alone bounds them (one small record each, dropped with the last such link). */
#define FUSE_MAX_LINKED (1u << 16)

/* One host inode the guest knows by a node id: an O_PATH descriptor, counted by the
 * guest's lookups (nlookup) and by the requests using it right now (busy), so that a
 * FORGET on one thread never closes a descriptor another thread is using. */
struct fuse_inode {
	int fd;
	dev_t dev;
	ino_t ino;
	mode_t type; /* S_IFMT bits: fixed for the life of a host inode */
	uint64_t nlookup;
	uint32_t busy;
	uint64_t id; /* 0 once forgotten */
	struct fuse_inode *hash_next;
};

/* One open file or directory. `lock` serialises READDIR's lseek + getdents64. */
struct fuse_handle {
	int fd;
	bool dir;
	atomic_bool written; /* told to the watcher already (FUSE_CHANGE_WRITTEN) */
	uint32_t busy;
	uint64_t id; /* 0 once released */
	pthread_mutex_t lock;
};

/* Slots addressed by (generation << 32 | slot + 1): an id names one entry for its whole
 * life and never the next one in the same slot. */
struct fuse_table {
	void **entry;
	uint32_t *gen;
	uint32_t *free_slot;
	uint32_t nfree, size, used, max;
};

struct fuse_linked;

struct fuse_nodes {
	pthread_mutex_t lock;
	struct fd_budget *fds; /* one unit per inode and handle held, never the root's */
	atomic_bool fds_warned;
	struct fuse_inode root;
	struct fuse_table inodes, handles;
	struct fuse_inode **hash; /* by (dev, ino) */
	struct fuse_linked **linked;
	uint32_t nlinked;
};

struct fuse_server {
	struct fuse_nodes nodes;
	int proc_fd; /* /proc/self/fd, to reopen O_PATH descriptors for I/O */
	bool read_only;
	uid_t euid;
	gid_t egid;
	pthread_mutex_t init_lock;
	bool initialized;
	/* fuse_server_counters: updated by every worker, so atomics (relaxed). */
	_Atomic uint64_t requests, bytes_read, bytes_written;
	/* fuse_server_watch's, set before the guest runs. */
	fuse_change_fn *changed;
	void *changed_opaque;
};

/* Tables over the share `root_fd` (kept, not counted); the descriptors of the inodes and
 * handles added later are counted against `fds`. */
__attribute__((warn_unused_result)) int
fuse_nodes_init(struct fuse_nodes *t, int root_fd, const struct stat *st, struct fd_budget *fds);
void fuse_nodes_fini(struct fuse_nodes *t);
/* DESTROY: every inode but the root and every handle are dropped. */
void fuse_nodes_reset(struct fuse_nodes *t);

/* The inode `id` names, marked busy, or NULL (stale or unknown). fuse_inode_put ends it. */
struct fuse_inode *fuse_inode_get(struct fuse_nodes *t, uint64_t id);
void fuse_inode_put(struct fuse_nodes *t, struct fuse_inode *inode);
/* Counts one lookup of the host inode `fd` is an O_PATH descriptor of (taking `fd`: it is
 * closed if the inode was known already, which costs nothing) and sets *id. A new inode
 * keeps `fd` and takes one unit of the descriptor budget: -ENFILE (and `fd` closed) when the
 * budget is spent or the table is full. */
__attribute__((warn_unused_result)) int fuse_inode_add(struct fuse_nodes *t, int fd,
						       const struct stat *st, uint64_t *id);
void fuse_inode_forget(struct fuse_nodes *t, uint64_t id, uint64_t nlookup);

/* A new handle keeping `fd` (taken by the call: closed on failure), one unit of the budget:
 * -ENFILE when it is spent or the table is full. */
__attribute__((warn_unused_result)) int fuse_handle_add(struct fuse_nodes *t, int fd, bool dir,
							uint64_t *id);
struct fuse_handle *fuse_handle_get(struct fuse_nodes *t, uint64_t id);
void fuse_handle_put(struct fuse_nodes *t, struct fuse_handle *h);
__attribute__((warn_unused_result)) int fuse_handle_release(struct fuse_nodes *t, uint64_t id);

/* Hard links this server made, by host inode: a file whose every extra link is ours may be
 * opened on a writable share (see fuse_link_check). */
__attribute__((warn_unused_result)) int fuse_linked_add(struct fuse_nodes *t, dev_t dev, ino_t ino);
void fuse_linked_drop(struct fuse_nodes *t, dev_t dev, ino_t ino);
uint32_t fuse_linked_count(struct fuse_nodes *t, dev_t dev, ino_t ino);

/* One request being served. Handlers return a negative errno, or the length of the reply
 * payload: in `out` (from fuse_reply_buf), or already in the reply buffers when
 * `out_direct` (READ). */
struct fuse_req {
	struct fuse_server *fs;
	struct fuse_in_header in;
	const uint8_t *arg;
	uint32_t arg_len;
	const struct iovec *req;
	unsigned req_cnt;
	size_t data_off; /* WRITE: where the data starts in `req` */
	const struct iovec *reply;
	unsigned reply_cnt;
	size_t room; /* reply bytes after the fuse_out_header */
	void *out;
	bool out_direct;
	void *out_heap;
	uint64_t out_small[32];
};

/* Tells the watcher (if any) of a change: `name` in the directory `dir_fd` (an O_PATH
 * descriptor; name NULL: dir_fd is the file itself), and for RENAMED `to_name` in
 * `to_dir_fd`. Host paths from /proc/self/fd; a path that cannot be read is told as "?". */
void fuse_note(struct fuse_req *r, enum fuse_change change, int dir_fd, const char *name,
	       int to_dir_fd, const char *to_name);

/* A zeroed payload buffer of `len` (<= room) bytes, or NULL. */
void *fuse_reply_buf(struct fuse_req *r, size_t len);

/* The iovec list covering [off, off + len) of `iov`, in `out` (at most `cap` entries; the
 * range is cut short where they run out). Returns the entries used; *got the bytes. */
unsigned fuse_iov_slice(const struct iovec *iov, unsigned cnt, size_t off, size_t len,
			struct iovec *out, unsigned cap, size_t *got);

/* Request arguments: the fixed struct at the start, NUL-terminated strings after it. */
const void *fuse_arg(const struct fuse_req *r, size_t size);
__attribute__((warn_unused_result)) int fuse_arg_name(const struct fuse_req *r, size_t *off,
						      const char **name);
__attribute__((warn_unused_result)) int fuse_arg_string(const struct fuse_req *r, size_t *off,
							size_t max, const char **str);

/* Host helpers shared by the handlers. */
__attribute__((warn_unused_result)) int fuse_open_beneath(int dir_fd, const char *name, int flags,
							  mode_t mode);
__attribute__((warn_unused_result)) int fuse_reopen(const struct fuse_server *fs, int fd,
						    int flags);
/* A new regular file `name` below `dir_fd` (O_CREAT | O_EXCL), open with `flags` and of
 * exactly `mode`: the guest's kernel applied the guest's umask, and ours must not take bits
 * away a second time. Whoever needs the new node takes it from this descriptor, never from
 * the name, which another request may have renamed something else over already. */
__attribute__((warn_unused_result)) int fuse_create_file(int dir_fd, const char *name, int flags,
							 mode_t mode);
__attribute__((warn_unused_result)) int fuse_fstat(int fd, struct stat *st);
/* chmod of the inode an O_PATH descriptor names (not a symlink: that has no mode). */
__attribute__((warn_unused_result)) int fuse_chmod(const struct fuse_server *fs, int fd,
						   mode_t mode);
__attribute__((warn_unused_result)) int fuse_link_check(struct fuse_server *fs,
							const struct stat *st);
void fuse_fill_attr(struct fuse_attr *attr, const struct stat *st);
/* LOOKUP of `name` below `dir_fd`: one more lookup counted, `entry` filled. */
__attribute__((warn_unused_result)) int fuse_lookup_entry(struct fuse_server *fs, int dir_fd,
							  const char *name,
							  struct fuse_entry_out *entry);
/* The same for a descriptor already open (taken by the call). */
__attribute__((warn_unused_result)) int fuse_entry_from_fd(struct fuse_server *fs, int fd,
							   struct fuse_entry_out *entry);
/* Warnings the guest can cause, rate-limited (a few, then silence). */
void fuse_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Handlers (fuse_ops.c, fuse_io.c). */
int fuse_do_lookup(struct fuse_req *r);
int fuse_do_getattr(struct fuse_req *r);
int fuse_do_setattr(struct fuse_req *r);
int fuse_do_readlink(struct fuse_req *r);
int fuse_do_symlink(struct fuse_req *r);
int fuse_do_mknod(struct fuse_req *r);
int fuse_do_mkdir(struct fuse_req *r);
int fuse_do_unlink(struct fuse_req *r);
int fuse_do_rmdir(struct fuse_req *r);
int fuse_do_rename(struct fuse_req *r);
int fuse_do_rename2(struct fuse_req *r);
int fuse_do_link(struct fuse_req *r);
int fuse_do_statfs(struct fuse_req *r);
int fuse_do_access(struct fuse_req *r);
int fuse_do_getxattr(struct fuse_req *r);
int fuse_do_listxattr(struct fuse_req *r);
int fuse_do_setxattr(struct fuse_req *r);
int fuse_do_removexattr(struct fuse_req *r);
int fuse_do_open(struct fuse_req *r);
int fuse_do_create(struct fuse_req *r);
int fuse_do_read(struct fuse_req *r);
int fuse_do_write(struct fuse_req *r);
int fuse_do_release(struct fuse_req *r);
int fuse_do_flush(struct fuse_req *r);
int fuse_do_fsync(struct fuse_req *r);
int fuse_do_opendir(struct fuse_req *r);
int fuse_do_readdir(struct fuse_req *r);
int fuse_do_readdirplus(struct fuse_req *r);
int fuse_do_fallocate(struct fuse_req *r);
int fuse_do_lseek(struct fuse_req *r);
int fuse_do_copy_file_range(struct fuse_req *r);

#endif

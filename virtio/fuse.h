/* The FUSE passthrough server behind virtio-fs: serves one host directory (the share) to
 * the guest's FUSE client, confined to it. Every path the guest names is resolved one
 * component at a time below O_PATH descriptors of the share with openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS); symlinks are never followed on the host;
 * node ids and file handles are indices into the server's own tables, never host pointers.
 * A read-only share refuses every write on the host side (EROFS). The server knows nothing
 * of virtqueues: it takes a request as iovecs and writes its reply into iovecs. */
#ifndef CLAWVM_VIRTIO_FUSE_H
#define CLAWVM_VIRTIO_FUSE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "base/fd_budget.h"

struct fuse_server;

/* Opens `root` (a directory) as the share; the descriptors the guest makes it hold (one per
 * inode it keeps looked up, one per open handle; not the share's own two) are counted
 * against `fds`, which must outlive the server: once that is spent, what would hold one
 * more (LOOKUP of an inode not known yet, MKNOD, MKDIR, SYMLINK, CREATE, OPEN, OPENDIR)
 * fails with ENFILE until the guest forgets or releases some, read-only share or not.
 * Returns 0, or a negative errno after logging one line that names `root`. */
__attribute__((warn_unused_result)) int fuse_server_create(const char *root, bool read_only,
							   struct fd_budget *fds,
							   struct fuse_server **out);
void fuse_server_destroy(struct fuse_server *fs);

/* Serves one request. `req` holds the request (fuse_in_header first, then the opcode's
 * arguments) spread over `req_cnt` buffers of any sizes; `reply` the buffers the reply goes
 * into. Returns the bytes written into `reply` (fuse_out_header first), or 0 when the
 * request takes no reply (FORGET, BATCH_FORGET) or was too malformed to answer (shorter than
 * a header). Never reads or writes outside the given buffers. Safe to call from several
 * threads at once. */
uint32_t fuse_server_handle(struct fuse_server *fs, const struct iovec *req, unsigned req_cnt,
			    const struct iovec *reply, unsigned reply_cnt);

/* Changes the guest makes in the share, told with host paths (for the audit log). */
enum fuse_change {
	FUSE_CHANGE_CREATED, /* a file, directory, symlink, node or link made */
	FUSE_CHANGE_WRITTEN, /* an open file written: once per open */
	FUSE_CHANGE_RENAMED, /* `path` is now `to` */
	FUSE_CHANGE_DELETED, /* a name removed */
};
/* Called on the request's worker thread once the change is done: it must not block (a
 * slow owner would slow the guest's file system). `to` is NULL but for RENAMED. */
typedef void fuse_change_fn(void *opaque, enum fuse_change change, const char *path,
			    const char *to);
/* Before the guest's first request: `fn` (NULL: none) is told of every change. */
void fuse_server_watch(struct fuse_server *fs, fuse_change_fn *fn, void *opaque);

/* What the server did so far, for the control API's metrics. */
struct fuse_counters {
	uint64_t requests;	/* every request at least a header long, answered or not */
	uint64_t bytes_read;	/* of host files, by READ */
	uint64_t bytes_written; /* to host files, by WRITE */
};
/* Thread-safe: each counter is exact, the three are not one snapshot. */
void fuse_server_counters(struct fuse_server *fs, struct fuse_counters *out);

#endif

/* The FUSE server's front: creating a server over a share, taking one request out of the
 * guest's buffers (every length checked against the bytes really there), INIT
 * negotiation, FORGET, DESTROY, the dispatch to the handlers in fuse_ops.c and fuse_io.c,
 * and the helpers they share for resolving names below the share. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/log.h"
#include "virtio/fuse.h"
#include "virtio/fuse_server.h"
#include "virtio/iov.h"

#define HDR_IN	 sizeof(struct fuse_in_header)
#define HDR_OUT	 sizeof(struct fuse_out_header)
#define NAME_ARG 2 /* the shortest name: one byte and its NUL */
/* The largest request but WRITE's data: SETXATTR with a 64 KiB value and its name. */
#define MAX_ARG		 (XATTR_SIZE_MAX + XATTR_NAME_MAX + 64)
#define MAX_BATCH_FORGET (1u << 16)
#define MAX_WRITE	 (256 * 1024)
#define MAX_PAGES	 64
#define WARN_LIMIT	 16

/* What the server takes of the INIT flags the guest offers. No writeback cache, DAX, posix
 * ACLs or splice: each would move trust or caching decisions to the guest. AUTO_INVAL_DATA:
 * the guest drops a file's cached pages when its size or mtime changed on the host. */
#define INIT_FLAGS                                                                                 \
	(FUSE_ASYNC_READ | FUSE_PARALLEL_DIROPS | FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO |    \
	 FUSE_BIG_WRITES | FUSE_ATOMIC_O_TRUNC | FUSE_AUTO_INVAL_DATA | FUSE_MAX_PAGES |           \
	 FUSE_INIT_EXT)

/* ---- buffers ---------------------------------------------------------------------------- */

static size_t iov_total(const struct iovec *iov, unsigned cnt)
{
	size_t total = 0;

	for (unsigned i = 0; i < cnt; i++) {
		if (__builtin_add_overflow(total, iov[i].iov_len, &total))
			return SIZE_MAX;
	}
	return total;
}

unsigned fuse_iov_slice(const struct iovec *iov, unsigned cnt, size_t off, size_t len,
			struct iovec *out, unsigned cap, size_t *got)
{
	unsigned used = 0;

	*got = 0;
	for (unsigned i = 0; i < cnt && *got < len && used < cap; i++) {
		size_t n;

		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		n = iov[i].iov_len - off;
		if (n > len - *got)
			n = len - *got;
		out[used].iov_base = (uint8_t *)iov[i].iov_base + off;
		out[used].iov_len = n;
		used++;
		*got += n;
		off = 0;
	}
	return used;
}

void *fuse_reply_buf(struct fuse_req *r, size_t len)
{
	if (len > r->room)
		return NULL;
	if (len <= sizeof(r->out_small)) {
		r->out = r->out_small;
	} else {
		free(r->out_heap);
		r->out_heap = calloc(1, len);
		r->out = r->out_heap;
	}
	if (r->out)
		memset(r->out, 0, len);
	return r->out;
}

/* ---- arguments -------------------------------------------------------------------------- */

const void *fuse_arg(const struct fuse_req *r, size_t size)
{
	return r->arg_len >= size ? r->arg : NULL;
}

int fuse_arg_string(const struct fuse_req *r, size_t *off, size_t max, const char **str)
{
	const uint8_t *start, *nul;
	size_t len;

	if (*off >= r->arg_len)
		return -EINVAL;
	start = r->arg + *off;
	nul = memchr(start, 0, r->arg_len - *off);
	if (!nul)
		return -EINVAL;
	len = (size_t)(nul - start);
	if (len == 0)
		return -EINVAL;
	if (len > max)
		return -ENAMETOOLONG;
	*off += len + 1;
	*str = (const char *)start;
	return 0;
}

int fuse_arg_name(const struct fuse_req *r, size_t *off, const char **name)
{
	int ret = fuse_arg_string(r, off, NAME_MAX, name);

	if (ret < 0)
		return ret;
	/* One component, and never one that leaves its directory. */
	if (strchr(*name, '/') || strcmp(*name, ".") == 0 || strcmp(*name, "..") == 0)
		return -EINVAL;
	return 0;
}

/* ---- host helpers ----------------------------------------------------------------------- */

void fuse_warn(const char *fmt, ...)
{
	static unsigned warned;
	unsigned n = __atomic_fetch_add(&warned, 1, __ATOMIC_RELAXED);
	char line[512];
	va_list ap;

	if (n > WARN_LIMIT)
		return;
	if (n == WARN_LIMIT) {
		log_warn("fuse: further warnings caused by the guest are not logged");
		return;
	}
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_warn("fuse: %s", line);
}

int fuse_open_beneath(int dir_fd, const char *name, int flags, mode_t mode)
{
	struct open_how how = {
	    .flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC),
	    .mode = mode,
	    .resolve =
		RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV,
	};

	/* EAGAIN: a concurrent rename somewhere made the kernel unsure; it asks to retry. */
	for (int tries = 0; tries < 8; tries++) {
		long fd = syscall(SYS_openat2, dir_fd, name, &how, sizeof(how));

		if (fd >= 0)
			return (int)fd;
		if (errno != EAGAIN && errno != EINTR)
			break;
	}
	return -errno;
}

int fuse_create_file(int dir_fd, const char *name, int flags, mode_t mode)
{
	int fd = fuse_open_beneath(dir_fd, name, flags | O_CREAT | O_EXCL, mode);

	if (fd >= 0 && fchmod(fd, mode) < 0) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	return fd;
}

/* Our own O_PATH descriptor opened again, for I/O, through /proc/self/fd. O_NOFOLLOW cannot
 * be passed (the /proc entry is itself a symlink: ELOOP); callers have checked the inode's
 * type, and the /proc link leads to exactly that inode, not to a path. */
int fuse_reopen(const struct fuse_server *fs, int fd, int flags)
{
	char name[16];
	int ret;

	snprintf(name, sizeof(name), "%d", fd);
	flags &= ~(O_CREAT | O_EXCL | O_NOCTTY | O_NOFOLLOW | O_TMPFILE);
	ret = openat(fs->proc_fd, name, flags | O_CLOEXEC);
	return ret < 0 ? -errno : ret;
}

int fuse_chmod(const struct fuse_server *fs, int fd, mode_t mode)
{
	char name[16];

	snprintf(name, sizeof(name), "%d", fd);
	return fchmodat(fs->proc_fd, name, mode, 0) < 0 ? -errno : 0;
}

int fuse_fstat(int fd, struct stat *st)
{
	return fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

/* A host file with a hard link the server did not make may be a file from outside the
 * share linked into it: on a writable share it is neither opened nor changed. */
int fuse_link_check(struct fuse_server *fs, const struct stat *st)
{
	if (S_ISDIR(st->st_mode) || st->st_nlink <= 1 || fs->read_only)
		return 0;
	if (st->st_nlink - 1 <= fuse_linked_count(&fs->nodes, st->st_dev, st->st_ino))
		return 0;
	fuse_warn("refused a file with %lu hard links not made by the guest (inode %lu)",
		  (unsigned long)st->st_nlink, (unsigned long)st->st_ino);
	return -EPERM;
}

void fuse_fill_attr(struct fuse_attr *attr, const struct stat *st)
{
	memset(attr, 0, sizeof(*attr));
	attr->ino = st->st_ino;
	attr->size = (uint64_t)st->st_size;
	attr->blocks = (uint64_t)st->st_blocks;
	attr->atime = (uint64_t)st->st_atim.tv_sec;
	attr->mtime = (uint64_t)st->st_mtim.tv_sec;
	attr->ctime = (uint64_t)st->st_ctim.tv_sec;
	attr->atimensec = (uint32_t)st->st_atim.tv_nsec;
	attr->mtimensec = (uint32_t)st->st_mtim.tv_nsec;
	attr->ctimensec = (uint32_t)st->st_ctim.tv_nsec;
	attr->mode = st->st_mode;
	attr->nlink = (uint32_t)st->st_nlink;
	attr->uid = st->st_uid;
	attr->gid = st->st_gid;
	attr->rdev = (uint32_t)st->st_rdev;
	attr->blksize = (uint32_t)st->st_blksize;
}

int fuse_entry_from_fd(struct fuse_server *fs, int fd, struct fuse_entry_out *entry)
{
	struct stat st;
	uint64_t id;
	int ret = fuse_fstat(fd, &st);

	if (ret < 0) {
		close(fd);
		return ret;
	}
	ret = fuse_inode_add(&fs->nodes, fd, &st, &id);
	if (ret < 0)
		return ret;
	memset(entry, 0, sizeof(*entry));
	entry->nodeid = id;
	entry->generation = id >> 32;
	entry->entry_valid = ENTRY_TIMEOUT;
	entry->attr_valid = ATTR_TIMEOUT;
	fuse_fill_attr(&entry->attr, &st);
	return 0;
}

int fuse_lookup_entry(struct fuse_server *fs, int dir_fd, const char *name,
		      struct fuse_entry_out *entry)
{
	int fd = fuse_open_beneath(dir_fd, name, O_PATH, 0);

	if (fd < 0)
		return fd;
	return fuse_entry_from_fd(fs, fd, entry);
}

/* ---- INIT, DESTROY, FORGET -------------------------------------------------------------- */

static bool is_initialized(struct fuse_server *fs)
{
	return __atomic_load_n(&fs->initialized, __ATOMIC_ACQUIRE);
}

static int do_init(struct fuse_req *r)
{
	struct fuse_init_in in = {0};
	struct fuse_init_out *out;
	size_t size = sizeof(*out);
	int ret = 0;

	memcpy(&in, r->arg, r->arg_len < sizeof(in) ? r->arg_len : sizeof(in));
	if (in.major < FUSE_KERNEL_VERSION)
		return -EPROTO;
	if (in.major > FUSE_KERNEL_VERSION) {
		/* Our version alone, so that the kernel can come back with it. */
		out = fuse_reply_buf(r, FUSE_COMPAT_INIT_OUT_SIZE);
		if (!out)
			return -EINVAL;
		out->major = FUSE_KERNEL_VERSION;
		out->minor = FUSE_KERNEL_MINOR_VERSION;
		return FUSE_COMPAT_INIT_OUT_SIZE;
	}
	if (in.minor < 5)
		size = FUSE_COMPAT_INIT_OUT_SIZE;
	else if (in.minor < 23)
		size = FUSE_COMPAT_22_INIT_OUT_SIZE;
	out = fuse_reply_buf(r, size);
	if (!out)
		return -EINVAL;
	pthread_mutex_lock(&r->fs->init_lock);
	if (r->fs->initialized) {
		ret = -EIO;
	} else {
		out->major = FUSE_KERNEL_VERSION;
		out->minor = FUSE_KERNEL_MINOR_VERSION;
		out->max_readahead = in.max_readahead;
		out->flags = in.flags & INIT_FLAGS;
		/* flags2 carries nothing we take: it stays 0 even with FUSE_INIT_EXT. */
		out->flags2 = 0;
		out->max_background = 64;
		out->congestion_threshold = 48;
		out->max_write = MAX_WRITE;
		out->time_gran = 1;
		out->max_pages = MAX_PAGES;
		__atomic_store_n(&r->fs->initialized, true, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&r->fs->init_lock);
	return ret < 0 ? ret : (int)size;
}

static int do_destroy(struct fuse_req *r)
{
	pthread_mutex_lock(&r->fs->init_lock);
	fuse_nodes_reset(&r->fs->nodes);
	__atomic_store_n(&r->fs->initialized, false, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&r->fs->init_lock);
	return 0;
}

/* FORGET, BATCH_FORGET and INTERRUPT: no reply, whatever they hold. */
static void serve_no_reply(struct fuse_req *r, size_t req_len)
{
	struct fuse_batch_forget_in batch;
	struct fuse_forget_one one;
	size_t len = r->in.len;
	uint32_t count;

	if (len > req_len || !is_initialized(r->fs))
		return;
	if (r->in.opcode == FUSE_FORGET) {
		if (len >= HDR_IN + sizeof(struct fuse_forget_in) &&
		    iov_copy(r->req, r->req_cnt, HDR_IN, &one.nlookup, sizeof(one.nlookup), false))
			fuse_inode_forget(&r->fs->nodes, r->in.nodeid, one.nlookup);
		return;
	}
	if (r->in.opcode != FUSE_BATCH_FORGET || len < HDR_IN + sizeof(batch))
		return;
	iov_copy(r->req, r->req_cnt, HDR_IN, &batch, sizeof(batch), false);
	/* As many as were sent, whatever the count says, and never more than a bound. */
	count = batch.count;
	if (count > (len - HDR_IN - sizeof(batch)) / sizeof(one))
		count = (uint32_t)((len - HDR_IN - sizeof(batch)) / sizeof(one));
	if (count > MAX_BATCH_FORGET)
		count = MAX_BATCH_FORGET;
	for (uint32_t i = 0; i < count; i++) {
		iov_copy(r->req, r->req_cnt, HDR_IN + sizeof(batch) + i * sizeof(one), &one,
			 sizeof(one), false);
		fuse_inode_forget(&r->fs->nodes, one.nodeid, one.nlookup);
	}
}

/* ---- dispatch --------------------------------------------------------------------------- */

struct fuse_opcode_info {
	int (*serve)(struct fuse_req *r);
	uint16_t arg_min;   /* bytes of arguments the opcode needs */
	uint16_t reply_min; /* bytes of reply payload it always writes */
	bool writes;	    /* refused on a read-only share */
};

#define ENTRY sizeof(struct fuse_entry_out)
static const struct fuse_opcode_info opcodes[] = {
    [FUSE_LOOKUP] = {fuse_do_lookup, NAME_ARG, ENTRY, false},
    [FUSE_GETATTR] = {fuse_do_getattr, sizeof(struct fuse_getattr_in), sizeof(struct fuse_attr_out),
		      false},
    [FUSE_SETATTR] = {fuse_do_setattr, sizeof(struct fuse_setattr_in), sizeof(struct fuse_attr_out),
		      true},
    [FUSE_READLINK] = {fuse_do_readlink, 0, 0, false},
    [FUSE_SYMLINK] = {fuse_do_symlink, 2 * NAME_ARG, ENTRY, true},
    [FUSE_MKNOD] = {fuse_do_mknod, sizeof(struct fuse_mknod_in) + NAME_ARG, ENTRY, true},
    [FUSE_MKDIR] = {fuse_do_mkdir, sizeof(struct fuse_mkdir_in) + NAME_ARG, ENTRY, true},
    [FUSE_UNLINK] = {fuse_do_unlink, NAME_ARG, 0, true},
    [FUSE_RMDIR] = {fuse_do_rmdir, NAME_ARG, 0, true},
    [FUSE_RENAME] = {fuse_do_rename, sizeof(struct fuse_rename_in) + 2 * NAME_ARG, 0, true},
    [FUSE_RENAME2] = {fuse_do_rename2, sizeof(struct fuse_rename2_in) + 2 * NAME_ARG, 0, true},
    [FUSE_LINK] = {fuse_do_link, sizeof(struct fuse_link_in) + NAME_ARG, ENTRY, true},
    [FUSE_OPEN] = {fuse_do_open, sizeof(struct fuse_open_in), sizeof(struct fuse_open_out), false},
    [FUSE_READ] = {fuse_do_read, sizeof(struct fuse_read_in), 0, false},
    [FUSE_WRITE] = {fuse_do_write, sizeof(struct fuse_write_in), sizeof(struct fuse_write_out),
		    true},
    [FUSE_STATFS] = {fuse_do_statfs, 0, sizeof(struct fuse_statfs_out), false},
    [FUSE_RELEASE] = {fuse_do_release, sizeof(struct fuse_release_in), 0, false},
    [FUSE_FSYNC] = {fuse_do_fsync, sizeof(struct fuse_fsync_in), 0, false},
    [FUSE_SETXATTR] = {fuse_do_setxattr, FUSE_COMPAT_SETXATTR_IN_SIZE + NAME_ARG, 0, true},
    [FUSE_GETXATTR] = {fuse_do_getxattr, sizeof(struct fuse_getxattr_in) + NAME_ARG, 0, false},
    [FUSE_LISTXATTR] = {fuse_do_listxattr, sizeof(struct fuse_getxattr_in), 0, false},
    [FUSE_REMOVEXATTR] = {fuse_do_removexattr, NAME_ARG, 0, true},
    [FUSE_FLUSH] = {fuse_do_flush, sizeof(struct fuse_flush_in), 0, false},
    [FUSE_INIT] = {do_init, 2 * sizeof(uint32_t), 0, false},
    [FUSE_OPENDIR] = {fuse_do_opendir, sizeof(struct fuse_open_in), sizeof(struct fuse_open_out),
		      false},
    [FUSE_READDIR] = {fuse_do_readdir, sizeof(struct fuse_read_in), 0, false},
    [FUSE_RELEASEDIR] = {fuse_do_release, sizeof(struct fuse_release_in), 0, false},
    [FUSE_FSYNCDIR] = {fuse_do_fsync, sizeof(struct fuse_fsync_in), 0, false},
    [FUSE_ACCESS] = {fuse_do_access, sizeof(struct fuse_access_in), 0, false},
    [FUSE_CREATE] = {fuse_do_create, sizeof(struct fuse_create_in) + NAME_ARG,
		     ENTRY + sizeof(struct fuse_open_out), true},
    [FUSE_DESTROY] = {do_destroy, 0, 0, false},
    [FUSE_FALLOCATE] = {fuse_do_fallocate, sizeof(struct fuse_fallocate_in), 0, true},
    [FUSE_READDIRPLUS] = {fuse_do_readdirplus, sizeof(struct fuse_read_in), 0, false},
    [FUSE_LSEEK] = {fuse_do_lseek, sizeof(struct fuse_lseek_in), sizeof(struct fuse_lseek_out),
		    false},
    [FUSE_COPY_FILE_RANGE] = {fuse_do_copy_file_range, sizeof(struct fuse_copy_file_range_in),
			      sizeof(struct fuse_write_out), true},
};

/* Checks the request against its opcode and serves it; a negative errno or the payload
 * length, as the handlers return. */
static int serve(struct fuse_req *r, size_t req_len, uint64_t *arg_buf, size_t arg_buf_size,
		 void **arg_heap)
{
	const struct fuse_opcode_info *op;
	size_t copy;

	if (r->in.len < HDR_IN || r->in.len > req_len)
		return -EINVAL;
	if (r->in.opcode >= sizeof(opcodes) / sizeof(opcodes[0]) || !opcodes[r->in.opcode].serve)
		return is_initialized(r->fs) ? -ENOSYS : -EIO;
	op = &opcodes[r->in.opcode];
	if (r->in.opcode != FUSE_INIT && !is_initialized(r->fs))
		return -EIO;
	r->arg_len = r->in.len - HDR_IN;
	if (r->arg_len < op->arg_min || r->room < op->reply_min)
		return -EINVAL;
	if (op->writes && r->fs->read_only)
		return -EROFS;
	copy = r->arg_len;
	if (r->in.opcode == FUSE_WRITE) {
		/* The data stays in the guest's buffers; only the fixed part is copied. */
		copy = sizeof(struct fuse_write_in);
		r->data_off = HDR_IN + copy;
	} else if (copy > MAX_ARG) {
		return -EINVAL;
	}
	if (copy > arg_buf_size) {
		*arg_heap = malloc(copy);
		if (!*arg_heap)
			return -ENOMEM;
		r->arg = *arg_heap;
	} else {
		r->arg = (const uint8_t *)arg_buf;
	}
	iov_copy(r->req, r->req_cnt, HDR_IN, (void *)r->arg, copy, false);
	if (r->in.opcode != FUSE_WRITE)
		r->arg_len = (uint32_t)copy;
	return op->serve(r);
}

uint32_t fuse_server_handle(struct fuse_server *fs, const struct iovec *req, unsigned req_cnt,
			    const struct iovec *reply, unsigned reply_cnt)
{
	struct fuse_req r = {
	    .fs = fs, .req = req, .req_cnt = req_cnt, .reply = reply, .reply_cnt = reply_cnt};
	uint64_t arg_buf[128];
	void *arg_heap = NULL;
	size_t req_len = iov_total(req, req_cnt), room = iov_total(reply, reply_cnt);
	struct fuse_out_header out = {0};
	int ret;

	if (req_len < HDR_IN)
		return 0;
	atomic_fetch_add_explicit(&fs->requests, 1, memory_order_relaxed);
	iov_copy(req, req_cnt, 0, &r.in, HDR_IN, false);
	if (r.in.opcode == FUSE_FORGET || r.in.opcode == FUSE_BATCH_FORGET ||
	    r.in.opcode == FUSE_INTERRUPT) {
		serve_no_reply(&r, req_len);
		return 0;
	}
	if (room < HDR_OUT)
		return 0;
	r.room = room - HDR_OUT;
	if (r.room > UINT32_MAX - HDR_OUT)
		r.room = UINT32_MAX - HDR_OUT;
	ret = serve(&r, req_len, arg_buf, sizeof(arg_buf), &arg_heap);
	free(arg_heap);
	if (ret >= 0 && (size_t)ret > r.room)
		ret = -EIO; /* a handler bug; never write past the guest's buffers */
	out.unique = r.in.unique;
	if (ret < 0) {
		out.error = ret;
		out.len = HDR_OUT;
	} else {
		out.len = HDR_OUT + (uint32_t)ret;
		if (ret > 0 && !r.out_direct)
			iov_copy(reply, reply_cnt, HDR_OUT, r.out, (size_t)ret, true);
	}
	iov_copy(reply, reply_cnt, 0, &out, HDR_OUT, true);
	free(r.out_heap);
	return out.len;
}

void fuse_server_counters(struct fuse_server *fs, struct fuse_counters *out)
{
	*out = (struct fuse_counters){
	    .requests = atomic_load_explicit(&fs->requests, memory_order_relaxed),
	    .bytes_read = atomic_load_explicit(&fs->bytes_read, memory_order_relaxed),
	    .bytes_written = atomic_load_explicit(&fs->bytes_written, memory_order_relaxed),
	};
}

void fuse_server_watch(struct fuse_server *fs, fuse_change_fn *fn, void *opaque)
{
	fs->changed = fn;
	fs->changed_opaque = opaque;
}

/* The host path of `name` in dir_fd (or of dir_fd itself), into out[PATH_MAX]. */
static void note_path(struct fuse_req *r, int dir_fd, const char *name, char *out)
{
	char num[16];
	ssize_t n;

	snprintf(num, sizeof(num), "%d", dir_fd);
	n = readlinkat(r->fs->proc_fd, num, out, PATH_MAX - 1);
	if (n < 0) {
		strcpy(out, "?");
		n = 1;
	}
	out[n] = '\0';
	if (name && (size_t)n + 1 + strlen(name) < PATH_MAX)
		snprintf(out + n, PATH_MAX - (size_t)n, "%s%s", strcmp(out, "/") ? "/" : "", name);
}

void fuse_note(struct fuse_req *r, enum fuse_change change, int dir_fd, const char *name,
	       int to_dir_fd, const char *to_name)
{
	char path[PATH_MAX], to[PATH_MAX];

	if (!r->fs->changed)
		return;
	note_path(r, dir_fd, name, path);
	if (change == FUSE_CHANGE_RENAMED)
		note_path(r, to_dir_fd, to_name, to);
	r->fs->changed(r->fs->changed_opaque, change, path,
		       change == FUSE_CHANGE_RENAMED ? to : NULL);
}

/* ---- the server ------------------------------------------------------------------------- */

int fuse_server_create(const char *root, bool read_only, struct fd_budget *fds,
		       struct fuse_server **out)
{
	struct fuse_server *fs = calloc(1, sizeof(*fs));
	struct statfs sfs;
	struct stat st;
	int root_fd, ret;

	if (!fs) {
		log_err("fuse: share `%s`: out of memory", root);
		return -ENOMEM;
	}
	root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0 || fstat(root_fd, &st) < 0) {
		ret = -errno;
		log_err("fuse: open share `%s`: %s", root, strerror(errno));
		goto err_root;
	}
	fs->proc_fd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fs->proc_fd < 0 || fstatfs(fs->proc_fd, &sfs) < 0 || sfs.f_type != PROC_SUPER_MAGIC) {
		ret = fs->proc_fd < 0 ? -errno : -ENODEV;
		log_err("fuse: share `%s`: /proc/self/fd is needed and is not procfs", root);
		goto err_proc;
	}
	ret = fuse_nodes_init(&fs->nodes, root_fd, &st, fds);
	if (ret < 0) {
		log_err("fuse: share `%s`: out of memory", root);
		goto err_proc;
	}
	fs->read_only = read_only;
	fs->euid = geteuid();
	fs->egid = getegid();
	pthread_mutex_init(&fs->init_lock, NULL);
	*out = fs;
	return 0;

err_proc:
	if (fs->proc_fd >= 0)
		close(fs->proc_fd);
err_root:
	if (root_fd >= 0)
		close(root_fd);
	free(fs);
	return ret;
}

void fuse_server_destroy(struct fuse_server *fs)
{
	if (!fs)
		return;
	fuse_nodes_fini(&fs->nodes);
	close(fs->proc_fd);
	pthread_mutex_destroy(&fs->init_lock);
	free(fs);
}

/* FUSE handlers for open files and directories: OPEN, CREATE, READ, WRITE, FLUSH, FSYNC,
 * RELEASE, OPENDIR, READDIR(PLUS), FALLOCATE, LSEEK, COPY_FILE_RANGE. A node is opened for
 * I/O only after its O_PATH descriptor says it is a regular file (OPEN) or a directory
 * (OPENDIR): devices, FIFOs and sockets are never opened (EACCES), symlinks neither
 * (ELOOP). Data moves between the host file and the guest's buffers with preadv/pwritev,
 * without a copy in between. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "virtio/fuse_server.h"

#define SETID	       (S_ISUID | S_ISGID)
#define MAX_READ       (1u << 20)
#define MAX_READDIR    (128u * 1024)
#define MAX_COPY       (64u << 20) /* one COPY_FILE_RANGE: short copies are allowed */
#define DIRENT_BUF_MIN 4096
/* Open flags passed to the host; the rest (O_CREAT, O_NOCTTY, O_DIRECT, O_NOATIME, ...)
 * are the server's to decide. */
#define OPEN_FLAGS (O_ACCMODE | O_APPEND | O_TRUNC | O_DSYNC | O_SYNC | O_LARGEFILE)

/* The open file `fh` names, busy, or NULL with -EBADF (-EISDIR for a directory's) in *err. */
static struct fuse_handle *get_handle(struct fuse_req *r, uint64_t fh, bool dir, int *err)
{
	struct fuse_handle *h = fuse_handle_get(&r->fs->nodes, fh);

	if (!h) {
		*err = -EBADF;
		return NULL;
	}
	if (h->dir != dir) {
		fuse_handle_put(&r->fs->nodes, h);
		*err = dir ? -ENOTDIR : -EISDIR;
		return NULL;
	}
	return h;
}

static void put_handle(struct fuse_req *r, struct fuse_handle *h)
{
	fuse_handle_put(&r->fs->nodes, h);
}

static bool open_writes(uint32_t flags)
{
	return (flags & O_ACCMODE) != O_RDONLY || (flags & (O_TRUNC | O_APPEND));
}

/* Opens the node behind `path_fd` for I/O, if it is a regular file the share may open. */
static int open_regular(struct fuse_server *fs, int path_fd, uint32_t flags)
{
	struct stat st;
	int ret = fuse_fstat(path_fd, &st);

	if (ret < 0)
		return ret;
	if (S_ISLNK(st.st_mode))
		return -ELOOP;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (!S_ISREG(st.st_mode))
		return -EACCES;
	ret = fuse_link_check(fs, &st);
	if (ret < 0)
		return ret;
	return fuse_reopen(fs, path_fd, (int)(flags & OPEN_FLAGS));
}

/* A file's pages stay cached across opens (FUSE_AUTO_INVAL_DATA drops them when the host
 * changes the file's size or mtime), so a binary run twice is read once. Writes go through
 * to the host as they happen (no writeback cache), so close has nothing to flush and the
 * guest skips the FLUSH round trip. */
#define FILE_OPEN_FLAGS (FOPEN_KEEP_CACHE | FOPEN_NOFLUSH)

static int reply_open(struct fuse_req *r, int fd, bool dir, struct fuse_open_out *out)
{
	int ret = fuse_handle_add(&r->fs->nodes, fd, dir, &out->fh);

	if (!dir)
		out->open_flags = FILE_OPEN_FLAGS;
	return ret < 0 ? ret : (int)sizeof(*out);
}

int fuse_do_open(struct fuse_req *r)
{
	const struct fuse_open_in *in = fuse_arg(r, sizeof(*in));
	struct fuse_inode *inode;
	int fd;

	if ((in->flags & O_ACCMODE) == O_ACCMODE)
		return -EINVAL;
	if (r->fs->read_only && open_writes(in->flags))
		return -EROFS;
	inode = fuse_inode_get(&r->fs->nodes, r->in.nodeid);
	if (!inode)
		return -ESTALE;
	fd = open_regular(r->fs, inode->fd, in->flags);
	fuse_inode_put(&r->fs->nodes, inode);
	if (fd < 0)
		return fd;
	return reply_open(r, fd, false, fuse_reply_buf(r, sizeof(struct fuse_open_out)));
}

int fuse_do_opendir(struct fuse_req *r)
{
	struct fuse_inode *inode = fuse_inode_get(&r->fs->nodes, r->in.nodeid);
	int fd;

	if (!inode)
		return -ESTALE;
	fd = inode->type == S_IFDIR ? fuse_reopen(r->fs, inode->fd, O_RDONLY | O_DIRECTORY)
				    : -ENOTDIR;
	fuse_inode_put(&r->fs->nodes, inode);
	if (fd < 0)
		return fd;
	return reply_open(r, fd, true, fuse_reply_buf(r, sizeof(struct fuse_open_out)));
}

/* A new file, or without O_EXCL an existing regular one, opened as OPEN would. */
static int create_open(struct fuse_req *r, int dir_fd, const char *name,
		       const struct fuse_create_in *in)
{
	int path_fd, fd;

	fd = fuse_create_file(dir_fd, name, (int)(in->flags & OPEN_FLAGS),
			      in->mode & 07777 & ~SETID);
	if (fd != -EEXIST || (in->flags & O_EXCL))
		return fd;
	/* Never opened by name: it could be a FIFO or a device someone put there. */
	path_fd = fuse_open_beneath(dir_fd, name, O_PATH, 0);
	if (path_fd < 0)
		return path_fd;
	fd = open_regular(r->fs, path_fd, in->flags);
	close(path_fd);
	return fd;
}

int fuse_do_create(struct fuse_req *r)
{
	const struct fuse_create_in *in = fuse_arg(r, sizeof(*in));
	struct fuse_entry_out *entry;
	struct fuse_open_out *open_out;
	struct fuse_inode *dir;
	const char *name;
	size_t off = sizeof(*in);
	int fd, path_fd, ret = fuse_arg_name(r, &off, &name);

	if (ret < 0)
		return ret;
	if ((in->flags & O_ACCMODE) == O_ACCMODE)
		return -EINVAL;
	dir = fuse_inode_get(&r->fs->nodes, r->in.nodeid);
	if (!dir)
		return -ESTALE;
	fd = dir->type == S_IFDIR ? create_open(r, dir->fd, name, in) : -ENOTDIR;
	fuse_inode_put(&r->fs->nodes, dir);
	if (fd < 0)
		return fd;
	entry = fuse_reply_buf(r, sizeof(*entry) + sizeof(*open_out));
	open_out = (struct fuse_open_out *)(entry + 1);
	/* The node is what was opened, not whatever the name means by now. */
	path_fd = fuse_reopen(r->fs, fd, O_PATH);
	ret = path_fd < 0 ? path_fd : fuse_entry_from_fd(r->fs, path_fd, entry);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	open_out->open_flags = FILE_OPEN_FLAGS;
	fuse_note(r, FUSE_CHANGE_CREATED, fd, NULL, -1, NULL);
	ret = fuse_handle_add(&r->fs->nodes, fd, false, &open_out->fh);
	if (ret < 0) {
		fuse_inode_forget(&r->fs->nodes, entry->nodeid, 1);
		return ret;
	}
	return sizeof(*entry) + sizeof(*open_out);
}

int fuse_do_read(struct fuse_req *r)
{
	const struct fuse_read_in *in = fuse_arg(r, sizeof(*in));
	size_t size = in->size, got;
	struct iovec iov[IOV_MAX];
	struct fuse_handle *h;
	unsigned cnt;
	ssize_t n;
	int ret;

	if (in->offset > INT64_MAX)
		return -EINVAL;
	if (!(h = get_handle(r, in->fh, false, &ret)))
		return ret;
	if (size > MAX_READ)
		size = MAX_READ;
	if (size > r->room)
		size = r->room;
	cnt = fuse_iov_slice(r->reply, r->reply_cnt, sizeof(struct fuse_out_header), size, iov,
			     IOV_MAX, &got);
	n = got ? preadv(h->fd, iov, (int)cnt, (off_t)in->offset) : 0;
	ret = n < 0 ? -errno : (int)n;
	put_handle(r, h);
	if (n > 0)
		atomic_fetch_add_explicit(&r->fs->bytes_read, (uint64_t)n, memory_order_relaxed);
	r->out_direct = true;
	return ret;
}

int fuse_do_write(struct fuse_req *r)
{
	const struct fuse_write_in *in = fuse_arg(r, sizeof(*in));
	struct fuse_write_out *out;
	struct iovec iov[IOV_MAX];
	struct fuse_handle *h;
	size_t got;
	unsigned cnt;
	ssize_t n;
	int ret;

	if (in->size > r->in.len - r->data_off || in->offset > INT64_MAX)
		return -EINVAL;
	if (!(h = get_handle(r, in->fh, false, &ret)))
		return ret;
	cnt = fuse_iov_slice(r->req, r->req_cnt, r->data_off, in->size, iov, IOV_MAX, &got);
	n = got ? pwritev(h->fd, iov, (int)cnt, (off_t)in->offset) : 0;
	if (n > 0 && !atomic_exchange(&h->written, true))
		fuse_note(r, FUSE_CHANGE_WRITTEN, h->fd, NULL, -1, NULL);
	put_handle(r, h);
	if (n < 0)
		return -errno;
	atomic_fetch_add_explicit(&r->fs->bytes_written, (uint64_t)n, memory_order_relaxed);
	out = fuse_reply_buf(r, sizeof(*out));
	out->size = (uint32_t)n;
	return sizeof(*out);
}

int fuse_do_release(struct fuse_req *r)
{
	const struct fuse_release_in *in = fuse_arg(r, sizeof(*in));

	return fuse_handle_release(&r->fs->nodes, in->fh);
}

/* No POSIX locks are served, so a close() has nothing to flush on the host. */
int fuse_do_flush(struct fuse_req *r)
{
	const struct fuse_flush_in *in = fuse_arg(r, sizeof(*in));
	struct fuse_handle *h = fuse_handle_get(&r->fs->nodes, in->fh);

	if (!h)
		return -EBADF;
	put_handle(r, h);
	return 0;
}

/* FSYNC and FSYNCDIR: on the host disk before the reply. */
int fuse_do_fsync(struct fuse_req *r)
{
	const struct fuse_fsync_in *in = fuse_arg(r, sizeof(*in));
	struct fuse_handle *h = fuse_handle_get(&r->fs->nodes, in->fh);
	int ret;

	if (!h)
		return -EBADF;
	if (in->fsync_flags & FUSE_FSYNC_FDATASYNC)
		ret = fdatasync(h->fd);
	else
		ret = fsync(h->fd);
	ret = ret < 0 ? -errno : 0;
	put_handle(r, h);
	return ret;
}

/* One directory entry as READDIR(PLUS) wants it, at `at` (room checked by the caller). */
static void put_dirent(uint8_t *at, const struct dirent64 *d, size_t namelen)
{
	struct fuse_dirent *fd = (struct fuse_dirent *)at;

	fd->ino = d->d_ino;
	fd->off = (uint64_t)d->d_off;
	fd->namelen = (uint32_t)namelen;
	fd->type = d->d_type;
	memcpy(fd->name, d->d_name, namelen);
}

/* Fills `buf` from the host directory, from offset `pos`; returns the bytes used. With
 * `plus`, each entry but "." and ".." is looked up (and so counted), only once it is sure
 * to fit; one that cannot be looked up goes out with node id 0 (attributes unknown). */
static int fill_dir(struct fuse_req *r, struct fuse_handle *h, uint64_t pos, uint8_t *buf,
		    size_t size, bool plus)
{
	size_t host_size = size < DIRENT_BUF_MIN ? DIRENT_BUF_MIN : size, used = 0;
	uint8_t *host = malloc(host_size);
	ssize_t n;

	if (!host)
		return -ENOMEM;
	if (pos > INT64_MAX || lseek(h->fd, (off_t)pos, SEEK_SET) < 0 ||
	    (n = getdents64(h->fd, host, host_size)) < 0) {
		int ret = -errno;

		free(host);
		return ret;
	}
	for (ssize_t at = 0; at < n;) {
		const struct dirent64 *d = (const struct dirent64 *)(host + at);
		size_t head = plus ? FUSE_NAME_OFFSET_DIRENTPLUS : FUSE_NAME_OFFSET;
		size_t namelen, len;

		if (d->d_reclen == 0 || d->d_reclen > n - at)
			break;
		namelen = strnlen(d->d_name, NAME_MAX + 1);
		len = FUSE_DIRENT_ALIGN(head + namelen);
		if (used + len > size)
			break;
		if (plus) {
			struct fuse_direntplus *dp = (struct fuse_direntplus *)(buf + used);
			bool dots = strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0;

			if (dots || fuse_lookup_entry(r->fs, h->fd, d->d_name, &dp->entry_out) < 0)
				memset(&dp->entry_out, 0, sizeof(dp->entry_out));
			put_dirent((uint8_t *)&dp->dirent, d, namelen);
		} else {
			put_dirent(buf + used, d, namelen);
		}
		used += len;
		at += d->d_reclen;
	}
	free(host);
	return (int)used;
}

static int read_dir(struct fuse_req *r, bool plus)
{
	const struct fuse_read_in *in = fuse_arg(r, sizeof(*in));
	size_t size = in->size;
	struct fuse_handle *h;
	uint8_t *buf;
	int ret;

	if (size > MAX_READDIR)
		size = MAX_READDIR;
	if (size > r->room)
		size = r->room;
	if (!(h = get_handle(r, in->fh, true, &ret)))
		return ret;
	buf = fuse_reply_buf(r, size);
	if (!buf) {
		ret = -ENOMEM;
	} else {
		/* lseek + getdents64 on one descriptor: one request at a time per handle. */
		pthread_mutex_lock(&h->lock);
		ret = fill_dir(r, h, in->offset, buf, size, plus);
		pthread_mutex_unlock(&h->lock);
	}
	put_handle(r, h);
	return ret;
}

int fuse_do_readdir(struct fuse_req *r)
{
	return read_dir(r, false);
}

int fuse_do_readdirplus(struct fuse_req *r)
{
	return read_dir(r, true);
}

int fuse_do_fallocate(struct fuse_req *r)
{
	const struct fuse_fallocate_in *in = fuse_arg(r, sizeof(*in));
	struct fuse_handle *h;
	int ret;

	if (in->offset > INT64_MAX || in->length > INT64_MAX)
		return -EINVAL;
	if (!(h = get_handle(r, in->fh, false, &ret)))
		return ret;
	ret =
	    fallocate(h->fd, (int)in->mode, (off_t)in->offset, (off_t)in->length) < 0 ? -errno : 0;
	put_handle(r, h);
	return ret;
}

int fuse_do_lseek(struct fuse_req *r)
{
	const struct fuse_lseek_in *in = fuse_arg(r, sizeof(*in));
	struct fuse_lseek_out *out;
	struct fuse_handle *h;
	off_t pos;
	int ret;

	/* The kernel serves SEEK_SET/CUR/END itself; what it asks is where data and holes are.
	 * The handle's file position is not used by anything else (I/O is positioned). */
	if ((in->whence != SEEK_DATA && in->whence != SEEK_HOLE) || in->offset > INT64_MAX)
		return -EINVAL;
	if (!(h = get_handle(r, in->fh, false, &ret)))
		return ret;
	pos = lseek(h->fd, (off_t)in->offset, (int)in->whence);
	ret = pos < 0 ? -errno : (int)sizeof(*out);
	put_handle(r, h);
	if (ret < 0)
		return ret;
	out = fuse_reply_buf(r, sizeof(*out));
	out->offset = (uint64_t)pos;
	return ret;
}

int fuse_do_copy_file_range(struct fuse_req *r)
{
	const struct fuse_copy_file_range_in *in = fuse_arg(r, sizeof(*in));
	struct fuse_write_out *out;
	struct fuse_handle *from, *to;
	loff_t off_in = (loff_t)in->off_in, off_out = (loff_t)in->off_out;
	size_t len = in->len < MAX_COPY ? (size_t)in->len : MAX_COPY;
	ssize_t n = -1;
	int ret;

	if (in->flags != 0 || off_in < 0 || off_out < 0)
		return -EINVAL;
	if (!(from = get_handle(r, in->fh_in, false, &ret)))
		return ret;
	if ((to = get_handle(r, in->fh_out, false, &ret))) {
		n = copy_file_range(from->fd, &off_in, to->fd, &off_out, len, 0);
		ret = n < 0 ? -errno : 0;
		put_handle(r, to);
	}
	put_handle(r, from);
	if (ret < 0)
		return ret;
	out = fuse_reply_buf(r, sizeof(*out));
	out->size = (uint32_t)n;
	return sizeof(*out);
}

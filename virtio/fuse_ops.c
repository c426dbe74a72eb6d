/* FUSE handlers for names, attributes and extended attributes: LOOKUP, GETATTR, SETATTR,
 * READLINK, SYMLINK, MKNOD, MKDIR, UNLINK, RMDIR, RENAME(2), LINK, STATFS, ACCESS and the
 * xattr calls. Every call is relative to an O_PATH descriptor of the server's own, with a
 * single checked name component; nothing follows a symlink on the host. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "virtio/fuse_server.h"

#define SETID	    (S_ISUID | S_ISGID)
#define USER_NS	    "user."
#define USER_NS_LEN (sizeof(USER_NS) - 1)

/* The inode `id` names, busy, or NULL with -ESTALE in *err; `dir`: it must be one. */
static struct fuse_inode *get_node(struct fuse_req *r, uint64_t id, bool dir, int *err)
{
	struct fuse_inode *inode = fuse_inode_get(&r->fs->nodes, id);

	if (!inode) {
		*err = -ESTALE;
		return NULL;
	}
	if (dir && inode->type != S_IFDIR) {
		fuse_inode_put(&r->fs->nodes, inode);
		*err = -ENOTDIR;
		return NULL;
	}
	return inode;
}

static void put_node(struct fuse_req *r, struct fuse_inode *inode)
{
	fuse_inode_put(&r->fs->nodes, inode);
}

/* Whether the node `st` found under a name just made is what was made there: a `type`
 * (and the inode `same`, if given) without a hard link the server did not make. */
static bool is_made(struct fuse_server *fs, const struct stat *st, mode_t type,
		    const struct stat *same)
{
	if ((st->st_mode & S_IFMT) != type)
		return false;
	if (same)
		return st->st_dev == same->st_dev && st->st_ino == same->st_ino;
	return fuse_link_check(fs, st) == 0;
}

/* The reply to an op that just made `name` below `dir_fd` as a `type` (mknodat, mkdirat,
 * symlinkat and linkat give no descriptor of what they make): its entry, reopened by name.
 * Another request may have renamed something else over the name in between, such as a hard
 * link to a file outside the share: unless the node found is the one made (is_made), the
 * request fails with EIO and that node is left untouched (the guest's next LOOKUP finds
 * whatever the name holds). Then `mode` (unless NO_MODE) is set exactly: the guest kernel
 * applied the guest's umask already, and the server's own must not take bits away a second
 * time. */
#define NO_MODE ((mode_t)-1)
static int reply_made(struct fuse_req *r, int dir_fd, const char *name, mode_t type, mode_t mode,
		      const struct stat *same)
{
	struct fuse_entry_out *entry;
	struct stat st;
	int fd = fuse_open_beneath(dir_fd, name, O_PATH, 0), ret;

	if (fd < 0)
		return fd;
	ret = fuse_fstat(fd, &st);
	if (ret == 0 && !is_made(r->fs, &st, type, same)) {
		fuse_warn("a name was replaced between making it and reopening it: not served");
		ret = -EIO;
	}
	if (ret == 0 && mode != NO_MODE)
		ret = fuse_chmod(r->fs, fd, mode);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	entry = fuse_reply_buf(r, sizeof(*entry));
	ret = fuse_entry_from_fd(r->fs, fd, entry);
	return ret < 0 ? ret : (int)sizeof(*entry);
}

int fuse_do_lookup(struct fuse_req *r)
{
	struct fuse_entry_out *entry;
	struct fuse_inode *dir;
	const char *name;
	size_t off = 0;
	int ret = fuse_arg_name(r, &off, &name);

	if (ret < 0 || !(dir = get_node(r, r->in.nodeid, true, &ret)))
		return ret;
	entry = fuse_reply_buf(r, sizeof(*entry));
	ret = fuse_lookup_entry(r->fs, dir->fd, name, entry);
	put_node(r, dir);
	/* A mount point below the share (RESOLVE_NO_XDEV) looks absent, not broken: a guest
	 * overlay over a share of / then makes its own /dev, /proc and /sys in its upper
	 * layer instead of failing on them. An absent name is an entry with node id 0, which
	 * the guest caches for ENTRY_TIMEOUT like a present one (a PATH search, a compiler's
	 * include path: the same misses again and again). */
	if (ret == -ENOENT || ret == -EXDEV) {
		entry = fuse_reply_buf(r, sizeof(*entry));
		entry->entry_valid = ENTRY_TIMEOUT;
		ret = 0;
	}
	return ret < 0 ? ret : (int)sizeof(*entry);
}

static int reply_attr(struct fuse_req *r, int fd)
{
	struct fuse_attr_out *out = fuse_reply_buf(r, sizeof(*out));
	struct stat st;
	int ret = fuse_fstat(fd, &st);

	if (ret < 0)
		return ret;
	out->attr_valid = ATTR_TIMEOUT;
	fuse_fill_attr(&out->attr, &st);
	return sizeof(*out);
}

int fuse_do_getattr(struct fuse_req *r)
{
	struct fuse_inode *inode;
	int ret;

	if (!(inode = get_node(r, r->in.nodeid, false, &ret)))
		return ret;
	ret = reply_attr(r, inode->fd);
	put_node(r, inode);
	return ret;
}

static int set_size(struct fuse_req *r, struct fuse_inode *inode, const struct fuse_setattr_in *in)
{
	struct fuse_handle *h = NULL;
	int fd, ret;

	if (inode->type != S_IFREG)
		return inode->type == S_IFDIR ? -EISDIR : -EINVAL;
	if (in->size > INT64_MAX)
		return -EFBIG;
	if (in->valid & FATTR_FH)
		h = fuse_handle_get(&r->fs->nodes, in->fh);
	if (h && !h->dir && ftruncate(h->fd, (off_t)in->size) == 0) {
		fuse_handle_put(&r->fs->nodes, h);
		return 0;
	}
	if (h)
		fuse_handle_put(&r->fs->nodes, h);
	fd = fuse_reopen(r->fs, inode->fd, O_WRONLY);
	if (fd < 0)
		return fd;
	ret = ftruncate(fd, (off_t)in->size) < 0 ? -errno : 0;
	close(fd);
	return ret;
}

static struct timespec attr_time(uint32_t valid, uint32_t set, uint32_t now, uint64_t sec,
				 uint32_t nsec)
{
	if (valid & now)
		return (struct timespec){.tv_nsec = UTIME_NOW};
	if (valid & set)
		return (struct timespec){.tv_sec = (time_t)sec, .tv_nsec = nsec};
	return (struct timespec){.tv_nsec = UTIME_OMIT};
}

/* Mode, owner, size and times, in that order, each only if asked for. */
static int set_attrs(struct fuse_req *r, struct fuse_inode *inode, const struct fuse_setattr_in *in,
		     const struct stat *st)
{
	char proc_name[16];
	uint32_t valid = in->valid;

	snprintf(proc_name, sizeof(proc_name), "%d", inode->fd);
	if (valid & FATTR_MODE) {
		if (inode->type == S_IFLNK)
			return -EOPNOTSUPP;
		/* Set-id bits are never set from the guest: the share's files are host files. */
		int ret = fuse_chmod(r->fs, inode->fd, in->mode & 07777 & ~SETID);

		if (ret < 0)
			return ret;
	}
	if (valid & (FATTR_UID | FATTR_GID)) {
		uid_t uid = valid & FATTR_UID ? in->uid : (uid_t)-1;
		gid_t gid = valid & FATTR_GID ? in->gid : (gid_t)-1;

		/* Only to what the file has already or to what we are: never a host user's. */
		if (uid != (uid_t)-1 && uid != st->st_uid && uid != r->fs->euid)
			return -EPERM;
		if (gid != (gid_t)-1 && gid != st->st_gid && gid != r->fs->egid)
			return -EPERM;
		if (fchownat(inode->fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
	}
	if (valid & FATTR_SIZE) {
		int ret = set_size(r, inode, in);

		if (ret < 0)
			return ret;
	}
	if (valid & (FATTR_ATIME | FATTR_MTIME | FATTR_ATIME_NOW | FATTR_MTIME_NOW)) {
		struct timespec ts[2] = {
		    attr_time(valid, FATTR_ATIME, FATTR_ATIME_NOW, in->atime, in->atimensec),
		    attr_time(valid, FATTR_MTIME, FATTR_MTIME_NOW, in->mtime, in->mtimensec),
		};
		int ret = inode->type == S_IFLNK
			      ? utimensat(inode->fd, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)
			      : utimensat(r->fs->proc_fd, proc_name, ts, 0);

		if (ret < 0)
			return -errno;
	}
	return 0;
}

int fuse_do_setattr(struct fuse_req *r)
{
	const struct fuse_setattr_in *in = fuse_arg(r, sizeof(*in));
	struct fuse_inode *inode;
	struct stat st;
	int ret;

	if (!(inode = get_node(r, r->in.nodeid, false, &ret)))
		return ret;
	ret = fuse_fstat(inode->fd, &st);
	if (ret == 0)
		ret = fuse_link_check(r->fs, &st);
	if (ret == 0)
		ret = set_attrs(r, inode, in, &st);
	if (ret == 0)
		ret = reply_attr(r, inode->fd);
	put_node(r, inode);
	return ret;
}

int fuse_do_readlink(struct fuse_req *r)
{
	size_t size = r->room < PATH_MAX ? r->room : PATH_MAX;
	struct fuse_inode *inode;
	char *buf;
	ssize_t n;
	int ret;

	if (!(inode = get_node(r, r->in.nodeid, false, &ret)))
		return ret;
	if (inode->type != S_IFLNK) {
		put_node(r, inode);
		return -EINVAL;
	}
	buf = fuse_reply_buf(r, size);
	n = buf && size ? readlinkat(inode->fd, "", buf, size) : (errno = ERANGE, -1);
	ret = n < 0 ? -errno : (int)n;
	put_node(r, inode);
	return ret;
}

int fuse_do_symlink(struct fuse_req *r)
{
	struct fuse_inode *dir;
	const char *name, *target;
	size_t off = 0;
	int ret = fuse_arg_name(r, &off, &name);

	if (ret == 0)
		ret = fuse_arg_string(r, &off, PATH_MAX - 1, &target);
	if (ret < 0 || !(dir = get_node(r, r->in.nodeid, true, &ret)))
		return ret;
	/* Stored as given: it is the guest's string and is never followed here. */
	ret = symlinkat(target, dir->fd, name) < 0
		  ? -errno
		  : reply_made(r, dir->fd, name, S_IFLNK, NO_MODE, NULL);
	if (ret >= 0)
		fuse_note(r, FUSE_CHANGE_CREATED, dir->fd, name, -1, NULL);
	put_node(r, dir);
	return ret;
}

/* MKNOD of a regular file: made as CREATE makes one, its entry taken from the descriptor
 * that made it and never from the name again. */
static int make_file(struct fuse_req *r, int dir_fd, const char *name, mode_t mode)
{
	struct fuse_entry_out *entry;
	int fd = fuse_create_file(dir_fd, name, O_RDONLY, mode), path_fd, ret;

	if (fd < 0)
		return fd;
	path_fd = fuse_reopen(r->fs, fd, O_PATH);
	close(fd);
	if (path_fd < 0)
		return path_fd;
	entry = fuse_reply_buf(r, sizeof(*entry));
	ret = fuse_entry_from_fd(r->fs, path_fd, entry);
	return ret < 0 ? ret : (int)sizeof(*entry);
}

/* Regular files, FIFOs and sockets only: a device node would be the host's device. */
int fuse_do_mknod(struct fuse_req *r)
{
	const struct fuse_mknod_in *in = fuse_arg(r, sizeof(*in));
	mode_t type = in->mode & S_IFMT, mode;
	struct fuse_inode *dir;
	const char *name;
	size_t off = sizeof(*in);
	int ret = fuse_arg_name(r, &off, &name);

	if (ret < 0)
		return ret;
	if (type == S_IFCHR || type == S_IFBLK)
		return -EPERM;
	if (type != S_IFREG && type != S_IFIFO && type != S_IFSOCK)
		return -EINVAL;
	if (!(dir = get_node(r, r->in.nodeid, true, &ret)))
		return ret;
	mode = in->mode & 07777 & ~SETID;
	if (type == S_IFREG)
		ret = make_file(r, dir->fd, name, mode);
	else
		ret = mknodat(dir->fd, name, type | mode, 0) < 0
			  ? -errno
			  : reply_made(r, dir->fd, name, type, mode, NULL);
	if (ret >= 0)
		fuse_note(r, FUSE_CHANGE_CREATED, dir->fd, name, -1, NULL);
	put_node(r, dir);
	return ret;
}

int fuse_do_mkdir(struct fuse_req *r)
{
	const struct fuse_mkdir_in *in = fuse_arg(r, sizeof(*in));
	mode_t mode = in->mode & 07777 & ~SETID;
	struct fuse_inode *dir;
	const char *name;
	size_t off = sizeof(*in);
	int ret = fuse_arg_name(r, &off, &name);

	if (ret < 0 || !(dir = get_node(r, r->in.nodeid, true, &ret)))
		return ret;
	ret = mkdirat(dir->fd, name, mode) < 0 ? -errno
					       : reply_made(r, dir->fd, name, S_IFDIR, mode, NULL);
	if (ret >= 0)
		fuse_note(r, FUSE_CHANGE_CREATED, dir->fd, name, -1, NULL);
	put_node(r, dir);
	return ret;
}

static int remove_name(struct fuse_req *r, int flags)
{
	struct fuse_inode *dir;
	struct stat st;
	const char *name;
	size_t off = 0;
	int ret = fuse_arg_name(r, &off, &name);
	bool counted;

	if (ret < 0 || !(dir = get_node(r, r->in.nodeid, true, &ret)))
		return ret;
	/* A link of ours going away: the file is back to the links it had. */
	counted =
	    flags == 0 && fstatat(dir->fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_nlink > 1;
	ret = unlinkat(dir->fd, name, flags) < 0 ? -errno : 0;
	if (ret == 0 && counted)
		fuse_linked_drop(&r->fs->nodes, st.st_dev, st.st_ino);
	if (ret == 0)
		fuse_note(r, FUSE_CHANGE_DELETED, dir->fd, name, -1, NULL);
	put_node(r, dir);
	return ret;
}

int fuse_do_unlink(struct fuse_req *r)
{
	return remove_name(r, 0);
}

int fuse_do_rmdir(struct fuse_req *r)
{
	return remove_name(r, AT_REMOVEDIR);
}

static int rename_names(struct fuse_req *r, size_t off, uint64_t newdir, unsigned flags)
{
	struct fuse_inode *from, *to;
	const char *oldname, *newname;
	int ret = fuse_arg_name(r, &off, &oldname);

	if (ret == 0)
		ret = fuse_arg_name(r, &off, &newname);
	if (ret < 0 || !(from = get_node(r, r->in.nodeid, true, &ret)))
		return ret;
	if ((to = get_node(r, newdir, true, &ret))) {
		ret = renameat2(from->fd, oldname, to->fd, newname, flags) < 0 ? -errno : 0;
		if (ret == 0)
			fuse_note(r, FUSE_CHANGE_RENAMED, from->fd, oldname, to->fd, newname);
		put_node(r, to);
	}
	put_node(r, from);
	return ret;
}

int fuse_do_rename(struct fuse_req *r)
{
	const struct fuse_rename_in *in = fuse_arg(r, sizeof(*in));

	return rename_names(r, sizeof(*in), in->newdir, 0);
}

int fuse_do_rename2(struct fuse_req *r)
{
	const struct fuse_rename2_in *in = fuse_arg(r, sizeof(*in));

	/* No RENAME_WHITEOUT: whiteouts are character devices. */
	if (in->flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	return rename_names(r, sizeof(*in), in->newdir, in->flags);
}

static int link_node(struct fuse_req *r, struct fuse_inode *src, struct fuse_inode *dir,
		     const char *name)
{
	struct stat st;
	char proc_name[16];
	int ret = fuse_fstat(src->fd, &st);

	if (ret == 0 && S_ISDIR(st.st_mode))
		ret = -EPERM;
	if (ret == 0)
		ret = fuse_link_check(r->fs, &st);
	if (ret == 0)
		ret = fuse_linked_add(&r->fs->nodes, st.st_dev, st.st_ino);
	if (ret < 0)
		return ret;
	if (linkat(src->fd, "", dir->fd, name, AT_EMPTY_PATH) < 0) {
		/* Without CAP_DAC_READ_SEARCH, AT_EMPTY_PATH says ENOENT: go through /proc. */
		snprintf(proc_name, sizeof(proc_name), "%d", src->fd);
		if (errno != ENOENT ||
		    linkat(r->fs->proc_fd, proc_name, dir->fd, name, AT_SYMLINK_FOLLOW) < 0) {
			ret = -errno;
			fuse_linked_drop(&r->fs->nodes, st.st_dev, st.st_ino);
			return ret;
		}
	}
	return reply_made(r, dir->fd, name, st.st_mode & S_IFMT, NO_MODE, &st);
}

int fuse_do_link(struct fuse_req *r)
{
	const struct fuse_link_in *in = fuse_arg(r, sizeof(*in));
	struct fuse_inode *src, *dir;
	const char *name;
	size_t off = sizeof(*in);
	int ret = fuse_arg_name(r, &off, &name);

	if (ret < 0 || !(dir = get_node(r, r->in.nodeid, true, &ret)))
		return ret;
	if ((src = get_node(r, in->oldnodeid, false, &ret))) {
		ret = link_node(r, src, dir, name);
		if (ret >= 0)
			fuse_note(r, FUSE_CHANGE_CREATED, dir->fd, name, -1, NULL);
		put_node(r, src);
	}
	put_node(r, dir);
	return ret;
}

int fuse_do_statfs(struct fuse_req *r)
{
	struct fuse_statfs_out *out = fuse_reply_buf(r, sizeof(*out));
	struct fuse_inode *inode;
	struct statfs sfs;
	int ret;

	if (!(inode = get_node(r, r->in.nodeid, false, &ret)))
		return ret;
	ret = fstatfs(inode->fd, &sfs) < 0 ? -errno : (int)sizeof(*out);
	put_node(r, inode);
	if (ret < 0)
		return ret;
	out->st.blocks = sfs.f_blocks;
	out->st.bfree = sfs.f_bfree;
	out->st.bavail = sfs.f_bavail;
	out->st.files = sfs.f_files;
	out->st.ffree = sfs.f_ffree;
	out->st.bsize = (uint32_t)sfs.f_bsize;
	out->st.namelen = (uint32_t)sfs.f_namelen;
	out->st.frsize = (uint32_t)sfs.f_frsize;
	return ret;
}

int fuse_do_access(struct fuse_req *r)
{
	const struct fuse_access_in *in = fuse_arg(r, sizeof(*in));
	struct fuse_inode *inode;
	int ret;

	if (in->mask & ~(uint32_t)(R_OK | W_OK | X_OK))
		return -EINVAL;
	if ((in->mask & W_OK) && r->fs->read_only)
		return -EROFS;
	if (!(inode = get_node(r, r->in.nodeid, false, &ret)))
		return ret;
	ret = syscall(SYS_faccessat2, inode->fd, "", (int)in->mask,
		      AT_EMPTY_PATH | AT_EACCESS | AT_SYMLINK_NOFOLLOW) < 0
		  ? -errno
		  : 0;
	put_node(r, inode);
	return ret;
}

/* ---- extended attributes ---------------------------------------------------------------- */

/* A real descriptor for the f*xattr calls, which refuse O_PATH ones. Only regular files and
 * directories: Linux keeps user.* xattrs off everything else. */
static int xattr_open(struct fuse_req *r, struct fuse_inode **inode, int *fd)
{
	int ret;

	if (!(*inode = get_node(r, r->in.nodeid, false, &ret)))
		return ret;
	if ((*inode)->type != S_IFREG && (*inode)->type != S_IFDIR) {
		put_node(r, *inode);
		return -ENODATA;
	}
	*fd = fuse_reopen(r->fs, (*inode)->fd,
			  (*inode)->type == S_IFDIR ? O_RDONLY | O_DIRECTORY : O_RDONLY);
	if (*fd < 0) {
		put_node(r, *inode);
		return *fd;
	}
	return 0;
}

static void xattr_close(struct fuse_req *r, struct fuse_inode *inode, int fd)
{
	close(fd);
	put_node(r, inode);
}

static bool user_name(const char *name)
{
	return strncmp(name, USER_NS, USER_NS_LEN) == 0;
}

/* The reply for a size-0 probe: how many bytes the value or list takes. */
static int reply_size(struct fuse_req *r, size_t size)
{
	struct fuse_getxattr_out *out = fuse_reply_buf(r, sizeof(*out));

	if (!out)
		return -EINVAL;
	out->size = (uint32_t)size;
	return sizeof(*out);
}

int fuse_do_getxattr(struct fuse_req *r)
{
	const struct fuse_getxattr_in *in = fuse_arg(r, sizeof(*in));
	size_t off = sizeof(*in), size = in->size;
	struct fuse_inode *inode;
	const char *name;
	ssize_t n;
	void *buf;
	int fd, ret = fuse_arg_string(r, &off, XATTR_NAME_MAX, &name);

	if (ret < 0)
		return ret;
	/* Other namespaces are not the guest's: they read as absent (overlayfs probes). */
	if (!user_name(name))
		return -ENODATA;
	if (size > XATTR_SIZE_MAX)
		size = XATTR_SIZE_MAX;
	if (size > r->room)
		size = r->room;
	if ((ret = xattr_open(r, &inode, &fd)) < 0)
		return ret;
	if (in->size == 0) {
		n = fgetxattr(fd, name, NULL, 0);
		ret = n < 0 ? -errno : reply_size(r, (size_t)n);
	} else {
		buf = fuse_reply_buf(r, size);
		n = buf ? fgetxattr(fd, name, buf, size) : (errno = ERANGE, -1);
		ret = n < 0 ? -errno : (int)n;
	}
	xattr_close(r, inode, fd);
	return ret;
}

/* The user.* names of a list, packed at its start; returns their length. */
static size_t user_names(char *list, size_t len)
{
	size_t kept = 0;

	for (size_t at = 0; at < len;) {
		size_t n = strnlen(list + at, len - at);

		if (user_name(list + at) && at + n < len) {
			memmove(list + kept, list + at, n + 1);
			kept += n + 1;
		}
		at += n + 1;
	}
	return kept;
}

int fuse_do_listxattr(struct fuse_req *r)
{
	const struct fuse_getxattr_in *in = fuse_arg(r, sizeof(*in));
	struct fuse_inode *inode;
	char *list, *out;
	ssize_t n;
	size_t kept;
	int fd, ret = xattr_open(r, &inode, &fd);

	if (ret == -ENODATA)
		return in->size == 0 ? reply_size(r, 0) : 0;
	if (ret < 0)
		return ret;
	list = malloc(XATTR_LIST_MAX);
	n = list ? flistxattr(fd, list, XATTR_LIST_MAX) : (errno = ENOMEM, -1);
	xattr_close(r, inode, fd);
	if (n < 0) {
		ret = -errno;
	} else {
		kept = user_names(list, (size_t)n);
		if (in->size == 0) {
			ret = reply_size(r, kept);
		} else if (kept > in->size || !(out = fuse_reply_buf(r, kept))) {
			ret = -ERANGE;
		} else {
			memcpy(out, list, kept);
			ret = (int)kept;
		}
	}
	free(list);
	return ret;
}

/* SETXATTR and REMOVEXATTR: user.* only, and not on a file the share may not change. */
static int xattr_open_for_change(struct fuse_req *r, const char *name, struct fuse_inode **inode,
				 int *fd)
{
	struct stat st;
	int ret;

	if (!user_name(name))
		return -EPERM;
	ret = xattr_open(r, inode, fd);
	if (ret < 0)
		return ret == -ENODATA ? -EPERM : ret;
	ret = fuse_fstat(*fd, &st);
	if (ret == 0)
		ret = fuse_link_check(r->fs, &st);
	if (ret < 0)
		xattr_close(r, *inode, *fd);
	return ret;
}

int fuse_do_setxattr(struct fuse_req *r)
{
	/* The 8-byte compat form: FUSE_SETXATTR_EXT is not negotiated. */
	const struct fuse_setxattr_in *in = fuse_arg(r, FUSE_COMPAT_SETXATTR_IN_SIZE);
	uint32_t size = in->size, flags = in->flags;
	size_t off = FUSE_COMPAT_SETXATTR_IN_SIZE;
	struct fuse_inode *inode;
	const char *name;
	int fd, ret = fuse_arg_string(r, &off, XATTR_NAME_MAX, &name);

	if (ret < 0)
		return ret;
	if (size > XATTR_SIZE_MAX)
		return -E2BIG;
	if (size > r->arg_len - off || (flags & ~(uint32_t)(XATTR_CREATE | XATTR_REPLACE)))
		return -EINVAL;
	if ((ret = xattr_open_for_change(r, name, &inode, &fd)) < 0)
		return ret;
	ret = fsetxattr(fd, name, r->arg + off, size, (int)flags) < 0 ? -errno : 0;
	xattr_close(r, inode, fd);
	return ret;
}

int fuse_do_removexattr(struct fuse_req *r)
{
	struct fuse_inode *inode;
	const char *name;
	size_t off = 0;
	int fd, ret = fuse_arg_string(r, &off, XATTR_NAME_MAX, &name);

	if (ret < 0 || (ret = xattr_open_for_change(r, name, &inode, &fd)) < 0)
		return ret;
	ret = fremovexattr(fd, name) < 0 ? -errno : 0;
	xattr_close(r, inode, fd);
	return ret;
}

/* The FUSE tests' driver (include after unit.h): requests built by hand as the guest kernel
 * would send them, served by virtio/fuse.c over real temporary directories (the share, and
 * a directory beside it on the same file system), replies checked as they come back, and
 * the helpers that look at the host side. Shared by test_fuse.c and test_fuse_race.c. */
#ifndef CLAWVM_TESTS_UNIT_FUSE_DRIVER_H
#define CLAWVM_TESTS_UNIT_FUSE_DRIVER_H

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "virtio/fuse.h"

#define REQ_MAX	  (512 * 1024)
#define REPLY_MAX (512 * 1024)
#define HDR_IN	  sizeof(struct fuse_in_header)
#define HDR_OUT	  sizeof(struct fuse_out_header)

struct req {
	uint8_t *buf;
	size_t len;
};

struct reply {
	uint8_t *buf;
	size_t size; /* the room given to the server */
	uint32_t len;
	int error;
};

struct fx {
	char dir[64];	  /* the share */
	char outside[64]; /* a directory beside it, on the same file system */
	struct fuse_server *fs;
	struct fd_budget fds; /* what the server may hold: unlimited unless a test says */
	bool read_only;
	struct req q;
	struct reply r;
	bool raw_len; /* send the header's len as built, not fixed up */
};

static uint64_t unique_seq = 1;

/* ---- request building ------------------------------------------------------------------- */

static inline void req_start(struct req *q, uint32_t opcode, uint64_t nodeid)
{
	struct fuse_in_header in = {.opcode = opcode, .unique = unique_seq++, .nodeid = nodeid};

	memcpy(q->buf, &in, sizeof(in));
	q->len = sizeof(in);
}

static inline void req_put(struct req *q, const void *p, size_t n)
{
	assert_true(q->len + n <= REQ_MAX);
	memcpy(q->buf + q->len, p, n);
	q->len += n;
}

static inline void req_str(struct req *q, const char *s)
{
	req_put(q, s, strlen(s) + 1);
}

static inline void req_fix_len(struct req *q)
{
	uint32_t len = (uint32_t)q->len;

	memcpy(q->buf, &len, sizeof(len));
}

/* Sends the request over `req_cnt` iovecs cut at `chunk` bytes (0: one iovec), the reply
 * into `reply_chunk`-byte pieces likewise, and checks the reply header. */
static inline uint32_t send_split(struct fx *f, size_t chunk, size_t reply_chunk)
{
	struct iovec riov[4096], wiov[4096];
	unsigned rc = 0, wc = 0;
	struct fuse_out_header out;
	uint64_t unique;
	uint32_t ret;

	if (!f->raw_len)
		req_fix_len(&f->q);
	for (size_t at = 0; at < f->q.len; rc++) {
		size_t n = chunk && chunk < f->q.len - at ? chunk : f->q.len - at;

		assert_true(rc < 4096);
		riov[rc].iov_base = f->q.buf + at;
		riov[rc].iov_len = n;
		at += n;
	}
	for (size_t at = 0; at < f->r.size; wc++) {
		size_t n =
		    reply_chunk && reply_chunk < f->r.size - at ? reply_chunk : f->r.size - at;

		assert_true(wc < 4096);
		wiov[wc].iov_base = f->r.buf + at;
		wiov[wc].iov_len = n;
		at += n;
	}
	memset(f->r.buf, 0xa5, f->r.size + 64 < REPLY_MAX ? f->r.size + 64 : REPLY_MAX);
	ret = fuse_server_handle(f->fs, riov, rc, wiov, wc);
	f->r.len = ret;
	f->r.error = 0;
	if (ret == 0)
		return 0;
	assert_true(ret >= HDR_OUT && ret <= f->r.size);
	memcpy(&out, f->r.buf, sizeof(out));
	memcpy(&unique, f->q.buf + 8, sizeof(unique));
	assert_int_equal(out.len, ret);
	assert_int_equal(out.unique, unique);
	f->r.error = out.error;
	if (out.error)
		assert_int_equal(ret, HDR_OUT);
	return ret;
}

static inline int send_req(struct fx *f)
{
	f->r.size = REPLY_MAX;
	send_split(f, 0, 0);
	return f->r.error;
}

static inline void *payload(struct fx *f)
{
	return f->r.buf + HDR_OUT;
}

/* ---- operations --------------------------------------------------------------------------- */

static inline int fuse_init(struct fx *f, uint32_t major, uint32_t minor, uint32_t flags)
{
	struct fuse_init_in in = {
	    .major = major, .minor = minor, .max_readahead = 65536, .flags = flags};

	req_start(&f->q, FUSE_INIT, 0);
	req_put(&f->q, &in, sizeof(in));
	return send_req(f);
}

static inline int lookup(struct fx *f, uint64_t parent, const char *name, uint64_t *nodeid)
{
	req_start(&f->q, FUSE_LOOKUP, parent);
	req_str(&f->q, name);
	if (send_req(f) == 0) {
		const struct fuse_entry_out *entry = payload(f);

		assert_int_equal(f->r.len, HDR_OUT + sizeof(*entry));
		*nodeid = entry->nodeid;
		/* A miss is an entry with node id 0 the guest may cache for a while. */
		if (entry->nodeid == 0) {
			assert_int_equal(entry->entry_valid, 1);
			return -ENOENT;
		}
	}
	return f->r.error;
}

static inline uint64_t lookup_ok(struct fx *f, uint64_t parent, const char *name)
{
	uint64_t id = 0;

	assert_int_equal(lookup(f, parent, name, &id), 0);
	assert_true(id != 0);
	return id;
}

static inline int getattr(struct fx *f, uint64_t nodeid, struct fuse_attr *attr)
{
	struct fuse_getattr_in in = {0};

	req_start(&f->q, FUSE_GETATTR, nodeid);
	req_put(&f->q, &in, sizeof(in));
	if (send_req(f) == 0 && attr)
		*attr = ((struct fuse_attr_out *)payload(f))->attr;
	return f->r.error;
}

static inline int open_node(struct fx *f, uint32_t opcode, uint64_t nodeid, uint32_t flags,
			    uint64_t *fh)
{
	struct fuse_open_in in = {.flags = flags};

	req_start(&f->q, opcode, nodeid);
	req_put(&f->q, &in, sizeof(in));
	if (send_req(f) == 0) {
		const struct fuse_open_out *out = payload(f);

		assert_int_equal(f->r.len, HDR_OUT + sizeof(*out));
		*fh = out->fh;
		/* Files keep their cached pages and need no FLUSH; directories get nothing. */
		assert_int_equal(out->open_flags,
				 opcode == FUSE_OPEN ? (FOPEN_KEEP_CACHE | FOPEN_NOFLUSH) : 0);
	}
	return f->r.error;
}

static inline int release(struct fx *f, uint32_t opcode, uint64_t nodeid, uint64_t fh)
{
	struct fuse_release_in in = {.fh = fh};

	req_start(&f->q, opcode, nodeid);
	req_put(&f->q, &in, sizeof(in));
	return send_req(f);
}

/* READ: the error, or the bytes read (copied to `buf`). */
static inline int read_fh(struct fx *f, uint64_t fh, uint64_t off, uint32_t size, void *buf)
{
	struct fuse_read_in in = {.fh = fh, .offset = off, .size = size};

	req_start(&f->q, FUSE_READ, 1);
	req_put(&f->q, &in, sizeof(in));
	if (send_req(f) < 0)
		return f->r.error;
	if (buf)
		memcpy(buf, payload(f), f->r.len - HDR_OUT);
	return (int)(f->r.len - HDR_OUT);
}

static inline int write_fh(struct fx *f, uint64_t fh, uint64_t off, const void *data, uint32_t size)
{
	struct fuse_write_in in = {.fh = fh, .offset = off, .size = size};

	req_start(&f->q, FUSE_WRITE, 1);
	req_put(&f->q, &in, sizeof(in));
	req_put(&f->q, data, size);
	if (send_req(f) < 0)
		return f->r.error;
	assert_int_equal(f->r.len, HDR_OUT + sizeof(struct fuse_write_out));
	return (int)((struct fuse_write_out *)payload(f))->size;
}

static inline int forget(struct fx *f, uint64_t nodeid, uint64_t nlookup)
{
	struct fuse_forget_in in = {.nlookup = nlookup};

	req_start(&f->q, FUSE_FORGET, nodeid);
	req_put(&f->q, &in, sizeof(in));
	send_req(f);
	return (int)f->r.len;
}

/* ---- host side ---------------------------------------------------------------------------- */

static inline void host_path(const struct fx *f, const char *name, char *path, size_t size)
{
	assert_true(snprintf(path, size, "%s/%s", f->dir, name) < (int)size);
}

static inline void host_write(const char *path, const char *content)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
}

static inline void share_write(const struct fx *f, const char *name, const char *content)
{
	char path[256];

	host_path(f, name, path, sizeof(path));
	host_write(path, content);
}

/* The whole content of a host file, NUL-terminated, in a static buffer ("" if absent). */
static inline const char *host_read(const char *path)
{
	static char buf[8192];
	int fd = open(path, O_RDONLY);
	ssize_t n = 0;

	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
	}
	buf[n > 0 ? n : 0] = 0;
	return buf;
}

static inline const char *share_read(const struct fx *f, const char *name)
{
	char path[256];

	host_path(f, name, path, sizeof(path));
	return host_read(path);
}

static inline bool share_exists(const struct fx *f, const char *name)
{
	char path[256];
	struct stat st;

	host_path(f, name, path, sizeof(path));
	return lstat(path, &st) == 0;
}

static inline mode_t share_mode(const struct fx *f, const char *name)
{
	char path[256];
	struct stat st;

	host_path(f, name, path, sizeof(path));
	assert_int_equal(lstat(path, &st), 0);
	return st.st_mode;
}

static inline void rm_tree(const char *path)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	assert_int_equal(system(cmd), 0);
}

/* ---- fixtures ------------------------------------------------------------------------------ */

static inline int fx_setup_mode(void **state, bool read_only, bool init)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		abort();
	strcpy(f->dir, "/tmp/clawvm-fuse-XXXXXX");
	strcpy(f->outside, "/tmp/clawvm-fuse-out-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_non_null(mkdtemp(f->outside));
	f->q.buf = malloc(REQ_MAX);
	f->r.buf = malloc(REPLY_MAX);
	assert_non_null(f->q.buf);
	assert_non_null(f->r.buf);
	f->read_only = read_only;
	fd_budget_init_limit(&f->fds, 1u << 30);
	assert_int_equal(fuse_server_create(f->dir, read_only, &f->fds, &f->fs), 0);
	if (init)
		assert_int_equal(fuse_init(f, 7, 38, FUSE_INIT_EXT | FUSE_DO_READDIRPLUS), 0);
	*state = f;
	return 0;
}

static inline int fx_setup(void **state)
{
	return fx_setup_mode(state, false, true);
}

static inline int fx_setup_noinit(void **state)
{
	return fx_setup_mode(state, false, false);
}

static inline int fx_teardown(void **state)
{
	struct fx *f = *state;

	fuse_server_destroy(f->fs);
	/* Whatever the test did, the server gave back every descriptor it held. */
	assert_int_equal(fd_budget_used(&f->fds), 0);
	rm_tree(f->dir);
	rm_tree(f->outside);
	free(f->q.buf);
	free(f->r.buf);
	free(f);
	return 0;
}

/* Restarts the server over the same directory, with a budget of `fds` descriptors. */
static inline void fx_restart(struct fx *f, bool read_only, unsigned fds)
{
	fuse_server_destroy(f->fs);
	assert_int_equal(fd_budget_used(&f->fds), 0);
	fd_budget_init_limit(&f->fds, fds);
	assert_int_equal(fuse_server_create(f->dir, read_only, &f->fds, &f->fs), 0);
	f->read_only = read_only;
	assert_int_equal(fuse_init(f, 7, 38, 0), 0);
}

/* Restarts the server over the same directory, read-only. */
static inline void fx_reopen_ro(struct fx *f)
{
	fx_restart(f, true, 1u << 30);
}

/* ---- more operations ---------------------------------------------------------------------- */

static inline int create(struct fx *f, uint64_t parent, const char *name, uint32_t flags,
			 uint32_t mode, uint64_t *nodeid, uint64_t *fh)
{
	struct fuse_create_in in = {.flags = flags, .mode = S_IFREG | mode};

	req_start(&f->q, FUSE_CREATE, parent);
	req_put(&f->q, &in, sizeof(in));
	req_str(&f->q, name);
	if (send_req(f) == 0) {
		const struct fuse_entry_out *e = payload(f);
		const struct fuse_open_out *o = (const struct fuse_open_out *)(e + 1);

		assert_int_equal(f->r.len, HDR_OUT + sizeof(*e) + sizeof(*o));
		*nodeid = e->nodeid;
		*fh = o->fh;
		assert_int_equal(o->open_flags, FOPEN_KEEP_CACHE | FOPEN_NOFLUSH);
	}
	return f->r.error;
}

static inline int name_op(struct fx *f, uint32_t opcode, uint64_t parent, const void *in,
			  size_t in_len, const char *name, const char *name2)
{
	req_start(&f->q, opcode, parent);
	if (in_len)
		req_put(&f->q, in, in_len);
	req_str(&f->q, name);
	if (name2)
		req_str(&f->q, name2);
	return send_req(f);
}

static inline int mkdir_(struct fx *f, uint64_t parent, const char *name, uint32_t mode)
{
	struct fuse_mkdir_in in = {.mode = mode};

	return name_op(f, FUSE_MKDIR, parent, &in, sizeof(in), name, NULL);
}

static inline int mknod_(struct fx *f, uint64_t parent, const char *name, uint32_t mode,
			 uint32_t rdev)
{
	struct fuse_mknod_in in = {.mode = mode, .rdev = rdev};

	return name_op(f, FUSE_MKNOD, parent, &in, sizeof(in), name, NULL);
}

static inline int rename2(struct fx *f, uint64_t from, const char *oldname, uint64_t to,
			  const char *newname, uint32_t flags)
{
	struct fuse_rename2_in in = {.newdir = to, .flags = flags};

	return name_op(f, FUSE_RENAME2, from, &in, sizeof(in), oldname, newname);
}

static inline int link_(struct fx *f, uint64_t src, uint64_t parent, const char *name)
{
	struct fuse_link_in in = {.oldnodeid = src};

	return name_op(f, FUSE_LINK, parent, &in, sizeof(in), name, NULL);
}

#endif

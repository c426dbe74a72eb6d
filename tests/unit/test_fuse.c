/* The FUSE passthrough server (virtio/fuse.c) over real temporary directories: requests
 * built by hand as the guest kernel would send them (tests/unit/fuse_driver.h), replies
 * checked field by field, and the host tree checked afterwards. Suites: the protocol (INIT,
 * round trips of every opcode), malformed requests, escapes from the share (symlinks, "..",
 * hard links to outside files, device nodes, set-id bits, xattr namespaces, read-only
 * shares, mounts), and the descriptor budget a guest that never lets go runs into. */
#include "tests/unit/unit.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <dirent.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "tests/unit/fuse_driver.h"

/* ---- INIT ------------------------------------------------------------------------------- */

static void test_init_negotiation(void **state)
{
	struct fx *f = *state;
	struct fuse_init_out out;
	const uint32_t want = FUSE_ASYNC_READ | FUSE_PARALLEL_DIROPS | FUSE_DO_READDIRPLUS |
			      FUSE_READDIRPLUS_AUTO | FUSE_BIG_WRITES | FUSE_ATOMIC_O_TRUNC |
			      FUSE_AUTO_INVAL_DATA | FUSE_MAX_PAGES | FUSE_INIT_EXT;
	uint64_t id;

	/* Nothing but INIT before INIT. */
	assert_int_equal(lookup(f, FUSE_ROOT_ID, "x", &id), -EIO);
	assert_int_equal(getattr(f, FUSE_ROOT_ID, NULL), -EIO);
	/* A major version too new: ours alone, and still not initialised. */
	assert_int_equal(fuse_init(f, 8, 0, 0), 0);
	assert_int_equal(f->r.len, HDR_OUT + FUSE_COMPAT_INIT_OUT_SIZE);
	memcpy(&out, payload(f), FUSE_COMPAT_INIT_OUT_SIZE);
	assert_int_equal(out.major, 7);
	assert_int_equal(out.minor, FUSE_KERNEL_MINOR_VERSION);
	assert_int_equal(getattr(f, FUSE_ROOT_ID, NULL), -EIO);
	assert_int_equal(fuse_init(f, 6, 0, 0), -EPROTO);

	/* Every flag offered: only ours taken (no writeback cache, DAX, ACLs, splice). */
	assert_int_equal(fuse_init(f, 7, 38, 0xffffffff), 0);
	assert_int_equal(f->r.len, HDR_OUT + sizeof(out));
	memcpy(&out, payload(f), sizeof(out));
	assert_int_equal(out.major, 7);
	assert_int_equal(out.minor, FUSE_KERNEL_MINOR_VERSION);
	assert_int_equal(out.flags, want);
	assert_int_equal(out.flags & (FUSE_WRITEBACK_CACHE | FUSE_POSIX_ACL | FUSE_SPLICE_WRITE),
			 0);
	assert_int_equal(out.flags2, 0);
	assert_int_equal(out.max_write, 256 * 1024);
	assert_int_equal(out.max_pages, 64);
	assert_int_equal(out.max_readahead, 65536);
	assert_int_equal(getattr(f, FUSE_ROOT_ID, NULL), 0);
	/* Once is enough. */
	assert_int_equal(fuse_init(f, 7, 38, 0), -EIO);
}

static void test_init_old_minor(void **state)
{
	struct fx *f = *state;
	struct fuse_init_out out;

	/* A 7.22 kernel expects the 24-byte reply and sends the 16-byte request. */
	req_start(&f->q, FUSE_INIT, 0);
	req_put(&f->q, &(uint32_t[4]){7, 22, 4096, FUSE_ASYNC_READ | FUSE_DONT_MASK}, 16);
	assert_int_equal(send_req(f), 0);
	assert_int_equal(f->r.len, HDR_OUT + FUSE_COMPAT_22_INIT_OUT_SIZE);
	memcpy(&out, payload(f), FUSE_COMPAT_22_INIT_OUT_SIZE);
	assert_int_equal(out.flags, FUSE_ASYNC_READ);
	assert_int_equal(out.max_write, 256 * 1024);
}

static void test_destroy(void **state)
{
	struct fx *f = *state;
	uint64_t id, fh;

	share_write(f, "a", "x");
	id = lookup_ok(f, FUSE_ROOT_ID, "a");
	assert_int_equal(open_node(f, FUSE_OPEN, id, O_RDONLY, &fh), 0);
	req_start(&f->q, FUSE_DESTROY, 0);
	assert_int_equal(send_req(f), 0);
	assert_int_equal(f->r.len, HDR_OUT);
	/* Back to before INIT, the old ids and handles gone. */
	assert_int_equal(getattr(f, FUSE_ROOT_ID, NULL), -EIO);
	assert_int_equal(fuse_init(f, 7, 38, 0), 0);
	assert_int_equal(getattr(f, id, NULL), -ESTALE);
	assert_int_equal(read_fh(f, fh, 0, 10, NULL), -EBADF);
	assert_int_equal(getattr(f, FUSE_ROOT_ID, NULL), 0);
}

/* ---- core round trips --------------------------------------------------------------------- */

static void test_lookup_getattr_read(void **state)
{
	struct fx *f = *state;
	struct fuse_attr attr;
	char buf[64];
	uint64_t id, id2, fh;
	struct stat st;
	char path[256];

	share_write(f, "hello.txt", "hello, world\n");
	host_path(f, "hello.txt", path, sizeof(path));
	assert_int_equal(stat(path, &st), 0);
	id = lookup_ok(f, FUSE_ROOT_ID, "hello.txt");
	assert_int_equal(((struct fuse_entry_out *)payload(f))->attr.ino, st.st_ino);
	/* The same host inode is the same node, counted twice. */
	id2 = lookup_ok(f, FUSE_ROOT_ID, "hello.txt");
	assert_int_equal(id, id2);
	assert_int_equal(getattr(f, id, &attr), 0);
	assert_int_equal(attr.size, 13);
	assert_int_equal(attr.mode, st.st_mode);
	assert_int_equal(attr.ino, st.st_ino);
	assert_int_equal(lookup(f, FUSE_ROOT_ID, "missing", &id2), -ENOENT);

	assert_int_equal(open_node(f, FUSE_OPEN, id, O_RDONLY, &fh), 0);
	assert_int_equal(read_fh(f, fh, 0, sizeof(buf), buf), 13);
	assert_memory_equal(buf, "hello, world\n", 13);
	assert_int_equal(read_fh(f, fh, 7, 5, buf), 5);
	assert_memory_equal(buf, "world", 5);
	assert_int_equal(read_fh(f, fh, 100, 5, buf), 0);
	assert_int_equal(release(f, FUSE_RELEASE, id, fh), 0);
	assert_int_equal(read_fh(f, fh, 0, 5, buf), -EBADF);
	assert_int_equal(release(f, FUSE_RELEASE, id, fh), -EBADF);

	/* Two lookups, two forgets: then the id is stale. */
	assert_int_equal(forget(f, id, 1), 0);
	assert_int_equal(getattr(f, id, NULL), 0);
	assert_int_equal(forget(f, id, 1), 0);
	assert_int_equal(getattr(f, id, NULL), -ESTALE);
	/* A new lookup makes a new id, never the old one again. */
	id2 = lookup_ok(f, FUSE_ROOT_ID, "hello.txt");
	assert_true(id2 != id);
	/* The root is never forgotten. */
	assert_int_equal(forget(f, FUSE_ROOT_ID, 100), 0);
	assert_int_equal(getattr(f, FUSE_ROOT_ID, NULL), 0);
}

/* The names a READDIR(PLUS) reply lists, as "a,b,c" (order as given), with `plus` the
 * node ids of those that got one put in ids[] (0 for "." and ".."). */
static size_t parse_dir(const uint8_t *p, size_t len, bool plus, char *names, size_t size,
			uint64_t *ids, uint64_t *last_off)
{
	size_t count = 0;

	names[0] = 0;
	for (size_t at = 0; at < len;) {
		const struct fuse_dirent *d;
		size_t rec;

		if (plus) {
			const struct fuse_direntplus *dp = (const void *)(p + at);

			d = &dp->dirent;
			ids[count] = dp->entry_out.nodeid;
			rec = FUSE_DIRENTPLUS_SIZE(dp);
		} else {
			d = (const void *)(p + at);
			rec = FUSE_DIRENT_SIZE(d);
		}
		assert_true(at + rec <= len);
		if (names[0])
			strncat(names, ",", size - strlen(names) - 1);
		strncat(names, d->name, d->namelen < size - strlen(names) - 1 ? d->namelen : 0);
		*last_off = d->off;
		count++;
		at += rec;
	}
	return count;
}

static int read_dir(struct fx *f, uint32_t opcode, uint64_t fh, uint64_t off, uint32_t size)
{
	struct fuse_read_in in = {.fh = fh, .offset = off, .size = size};

	req_start(&f->q, opcode, 1);
	req_put(&f->q, &in, sizeof(in));
	return send_req(f);
}

static bool has_name(const char *list, const char *name)
{
	char pattern[300];

	snprintf(pattern, sizeof(pattern), ",%s,", name);
	{
		char wrapped[4200];

		snprintf(wrapped, sizeof(wrapped), ",%s,", list);
		return strstr(wrapped, pattern) != NULL;
	}
}

static void test_readdir(void **state)
{
	struct fx *f = *state;
	char names[4096], path[256];
	uint64_t ids[64], fh, off = 0, id;
	size_t n;

	share_write(f, "one", "1");
	share_write(f, "two", "22");
	host_path(f, "sub", path, sizeof(path));
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(open_node(f, FUSE_OPENDIR, FUSE_ROOT_ID, O_RDONLY, &fh), 0);

	assert_int_equal(read_dir(f, FUSE_READDIR, fh, 0, 4096), 0);
	n = parse_dir(payload(f), f->r.len - HDR_OUT, false, names, sizeof(names), ids, &off);
	assert_int_equal(n, 5);
	assert_true(has_name(names, ".") && has_name(names, "..") && has_name(names, "one") &&
		    has_name(names, "two") && has_name(names, "sub"));
	/* From the last offset: the end. */
	assert_int_equal(read_dir(f, FUSE_READDIR, fh, off, 4096), 0);
	assert_int_equal(f->r.len, HDR_OUT);

	/* READDIRPLUS: an entry (looked up) for each name but the dots. */
	assert_int_equal(read_dir(f, FUSE_READDIRPLUS, fh, 0, 4096), 0);
	n = parse_dir(payload(f), f->r.len - HDR_OUT, true, names, sizeof(names), ids, &off);
	assert_int_equal(n, 5);
	for (size_t i = 0; i < n; i++) {
		const char *p = names;

		for (size_t k = 0; k < i; k++)
			p = strchr(p, ',') + 1;
		if (strncmp(p, ".,", 2) == 0 || strncmp(p, "..,", 3) == 0 || strcmp(p, "..") == 0 ||
		    strcmp(p, ".") == 0)
			assert_int_equal(ids[i], 0);
		else
			assert_true(ids[i] != 0);
	}
	/* The looked-up entries are real nodes: "one" is the same node as a LOOKUP gives. */
	id = lookup_ok(f, FUSE_ROOT_ID, "one");
	{
		bool found = false;

		for (size_t i = 0; i < n; i++)
			found |= ids[i] == id;
		assert_true(found);
	}

	/* A small buffer: one entry at a time, all of them in the end, none twice. */
	{
		char all[4096] = "";
		unsigned rounds = 0;

		off = 0;
		for (;;) {
			uint64_t next = off;

			assert_int_equal(read_dir(f, FUSE_READDIRPLUS, fh, off, 200), 0);
			if (f->r.len == HDR_OUT)
				break;
			n = parse_dir(payload(f), f->r.len - HDR_OUT, true, names, sizeof(names),
				      ids, &next);
			assert_int_equal(n, 1);
			strcat(all, names);
			strcat(all, ",");
			off = next;
			assert_true(++rounds < 10);
		}
		assert_int_equal(rounds, 5);
		assert_true(has_name(all, "one") && has_name(all, "two") && has_name(all, "sub"));
	}
	assert_int_equal(read_dir(f, FUSE_READDIR, 12345, 0, 4096), -EBADF);
	assert_int_equal(release(f, FUSE_RELEASEDIR, FUSE_ROOT_ID, fh), 0);
	assert_int_equal(read_dir(f, FUSE_READDIR, fh, 0, 4096), -EBADF);
	/* A file is not a directory, and a directory handle is not a file. */
	id = lookup_ok(f, FUSE_ROOT_ID, "one");
	assert_int_equal(open_node(f, FUSE_OPENDIR, id, O_RDONLY, &fh), -ENOTDIR);
	assert_int_equal(open_node(f, FUSE_OPENDIR, FUSE_ROOT_ID, O_RDONLY, &fh), 0);
	assert_int_equal(read_fh(f, fh, 0, 10, NULL), -EISDIR);
	assert_int_equal(open_node(f, FUSE_OPEN, FUSE_ROOT_ID, O_RDONLY, &fh), -EISDIR);
}

static void test_statfs_readlink(void **state)
{
	struct fx *f = *state;
	struct fuse_statfs_out *out;
	char path[256];
	uint64_t id;

	req_start(&f->q, FUSE_STATFS, FUSE_ROOT_ID);
	assert_int_equal(send_req(f), 0);
	assert_int_equal(f->r.len, HDR_OUT + sizeof(*out));
	out = payload(f);
	assert_true(out->st.blocks > 0 && out->st.bsize > 0);
	assert_int_equal(out->st.namelen, 255);

	host_path(f, "link", path, sizeof(path));
	assert_int_equal(symlink("some/where/../else", path), 0);
	id = lookup_ok(f, FUSE_ROOT_ID, "link");
	req_start(&f->q, FUSE_READLINK, id);
	assert_int_equal(send_req(f), 0);
	assert_int_equal(f->r.len, HDR_OUT + strlen("some/where/../else"));
	assert_memory_equal(payload(f), "some/where/../else", strlen("some/where/../else"));
	/* Not a symlink. */
	req_start(&f->q, FUSE_READLINK, FUSE_ROOT_ID);
	assert_int_equal(send_req(f), -EINVAL);
}

static void test_create_write_read(void **state)
{
	struct fx *f = *state;
	uint64_t id, fh, id2, fh2;
	char buf[32];

	assert_int_equal(create(f, FUSE_ROOT_ID, "new.txt", O_RDWR | O_EXCL, 0640, &id, &fh), 0);
	assert_true(share_exists(f, "new.txt"));
	assert_int_equal(share_mode(f, "new.txt"), S_IFREG | 0640);
	assert_int_equal(write_fh(f, fh, 0, "abcdef", 6), 6);
	assert_int_equal(write_fh(f, fh, 3, "XY", 2), 2);
	assert_string_equal(share_read(f, "new.txt"), "abcXYf");
	assert_int_equal(read_fh(f, fh, 0, sizeof(buf), buf), 6);
	assert_memory_equal(buf, "abcXYf", 6);
	/* O_EXCL on an existing name; without it the same file again. */
	assert_int_equal(create(f, FUSE_ROOT_ID, "new.txt", O_RDWR | O_EXCL, 0640, &id2, &fh2),
			 -EEXIST);
	assert_int_equal(create(f, FUSE_ROOT_ID, "new.txt", O_RDWR, 0640, &id2, &fh2), 0);
	assert_int_equal(id2, id);
	assert_int_equal(read_fh(f, fh2, 0, sizeof(buf), buf), 6);
	assert_int_equal(release(f, FUSE_RELEASE, id, fh), 0);
	assert_int_equal(release(f, FUSE_RELEASE, id, fh2), 0);
	/* Writes on a read-only handle fail on the host. */
	assert_int_equal(open_node(f, FUSE_OPEN, id, O_RDONLY, &fh), 0);
	assert_int_equal(write_fh(f, fh, 0, "zz", 2), -EBADF);
	assert_string_equal(share_read(f, "new.txt"), "abcXYf");
	/* O_TRUNC on OPEN (FUSE_ATOMIC_O_TRUNC). */
	assert_int_equal(open_node(f, FUSE_OPEN, id, O_WRONLY | O_TRUNC, &fh), 0);
	assert_string_equal(share_read(f, "new.txt"), "");
}

/* The counters the control API reports: every request, bytes of host files read and
 * written; failed I/O moves no bytes, a request shorter than a header is none. */
static void test_counters(void **state)
{
	struct fx *f = *state;
	struct fuse_counters before, after;
	uint64_t id, fh, ro;
	char buf[32];

	fuse_server_counters(f->fs, &before);
	assert_true(before.requests >= 1); /* INIT */
	assert_int_equal(before.bytes_read + before.bytes_written, 0);
	assert_int_equal(create(f, FUSE_ROOT_ID, "c.txt", O_RDWR, 0600, &id, &fh), 0);
	assert_int_equal(write_fh(f, fh, 0, "abcdef", 6), 6);
	assert_int_equal(write_fh(f, fh, 6, "gh", 2), 2);
	assert_int_equal(read_fh(f, fh, 2, sizeof(buf), buf), 6);
	assert_int_equal(read_fh(f, fh, 100, sizeof(buf), buf), 0);
	assert_int_equal(open_node(f, FUSE_OPEN, id, O_RDONLY, &ro), 0);
	assert_int_equal(write_fh(f, ro, 0, "zz", 2), -EBADF);
	f->q.len = HDR_IN - 1;
	f->raw_len = true;
	f->r.size = REPLY_MAX;
	assert_int_equal(send_split(f, 0, 0), 0);
	f->raw_len = false;
	fuse_server_counters(f->fs, &after);
	assert_int_equal(after.requests - before.requests, 7);
	assert_int_equal(after.bytes_written, 8);
	assert_int_equal(after.bytes_read, 6);
}

static void test_read_only_open(void **state)
{
	struct fx *f = *state;
	uint64_t id, fh;
	char buf[8];

	share_write(f, "file", "data");
	fx_reopen_ro(f);
	id = lookup_ok(f, FUSE_ROOT_ID, "file");
	assert_int_equal(open_node(f, FUSE_OPEN, id, O_RDONLY, &fh), 0);
	assert_int_equal(read_fh(f, fh, 0, sizeof(buf), buf), 4);
	assert_int_equal(open_node(f, FUSE_OPEN, id, O_RDWR, &fh), -EROFS);
	assert_int_equal(open_node(f, FUSE_OPEN, id, O_WRONLY, &fh), -EROFS);
	assert_int_equal(open_node(f, FUSE_OPEN, id, O_RDONLY | O_TRUNC, &fh), -EROFS);
	assert_int_equal(open_node(f, FUSE_OPEN, id, O_RDONLY | O_APPEND, &fh), -EROFS);
	assert_string_equal(share_read(f, "file"), "data");
}

/* ---- more operations ---------------------------------------------------------------------- */

static int setattr(struct fx *f, uint64_t nodeid, const struct fuse_setattr_in *in)
{
	req_start(&f->q, FUSE_SETATTR, nodeid);
	req_put(&f->q, in, sizeof(*in));
	return send_req(f);
}

static int setxattr_(struct fx *f, uint64_t nodeid, const char *name, const char *value)
{
	uint32_t in[2] = {(uint32_t)strlen(value), 0}; /* the 8-byte compat fuse_setxattr_in */

	req_start(&f->q, FUSE_SETXATTR, nodeid);
	req_put(&f->q, in, sizeof(in));
	req_str(&f->q, name);
	req_put(&f->q, value, strlen(value));
	return send_req(f);
}

static int getxattr_(struct fx *f, uint32_t opcode, uint64_t nodeid, const char *name,
		     uint32_t size)
{
	struct fuse_getxattr_in in = {.size = size};

	req_start(&f->q, opcode, nodeid);
	req_put(&f->q, &in, sizeof(in));
	if (name)
		req_str(&f->q, name);
	return send_req(f);
}

static int fh_op(struct fx *f, uint32_t opcode, const void *in, size_t len)
{
	req_start(&f->q, opcode, 1);
	req_put(&f->q, in, len);
	return send_req(f);
}

static uint64_t create_ok(struct fx *f, uint64_t parent, const char *name, uint64_t *fh)
{
	uint64_t id = 0, ignored;

	assert_int_equal(create(f, parent, name, O_RDWR | O_EXCL, 0644, &id, fh ? fh : &ignored),
			 0);
	return id;
}

static void host_mkdir(const struct fx *f, const char *name)
{
	char path[256];

	host_path(f, name, path, sizeof(path));
	assert_int_equal(mkdir(path, 0755), 0);
}

/* ---- round trips -------------------------------------------------------------------------- */

static void test_namespace_ops(void **state)
{
	struct fx *f = *state;
	uint64_t d, fh, a, sub;
	char target[64], path[256];
	struct stat st;

	assert_int_equal(mkdir_(f, FUSE_ROOT_ID, "d", 0750), 0);
	assert_int_equal(share_mode(f, "d"), S_IFDIR | 0750);
	d = ((struct fuse_entry_out *)payload(f))->nodeid;
	assert_int_equal(mkdir_(f, FUSE_ROOT_ID, "d", 0750), -EEXIST);
	create_ok(f, d, "f", &fh);
	assert_int_equal(write_fh(f, fh, 0, "F", 1), 1);
	assert_string_equal(share_read(f, "d/f"), "F");

	/* RENAME across directories; RENAME2's two flags; nothing else. */
	assert_int_equal(name_op(f, FUSE_RENAME, d, &(struct fuse_rename_in){.newdir = 1},
				 sizeof(struct fuse_rename_in), "f", "g"),
			 0);
	assert_false(share_exists(f, "d/f"));
	assert_string_equal(share_read(f, "g"), "F");
	share_write(f, "h", "H");
	assert_int_equal(rename2(f, 1, "g", 1, "h", RENAME_NOREPLACE), -EEXIST);
	assert_string_equal(share_read(f, "h"), "H");
	assert_int_equal(rename2(f, 1, "g", 1, "h", RENAME_EXCHANGE), 0);
	assert_string_equal(share_read(f, "h"), "F");
	assert_string_equal(share_read(f, "g"), "H");
	assert_int_equal(rename2(f, 1, "g", 1, "h", RENAME_WHITEOUT), -EINVAL);
	assert_int_equal(rename2(f, 1, "g", 1, "h", 1u << 7), -EINVAL);
	assert_int_equal(rename2(f, 1, "g", 1, "h", 0), 0);
	assert_false(share_exists(f, "g"));
	assert_int_equal(rename2(f, 1, "h", 0x777700000001ULL, "x", 0), -ESTALE);

	/* UNLINK and RMDIR. */
	share_write(f, "d/inner", "");
	assert_int_equal(name_op(f, FUSE_RMDIR, FUSE_ROOT_ID, NULL, 0, "d", NULL), -ENOTEMPTY);
	assert_int_equal(name_op(f, FUSE_UNLINK, d, NULL, 0, "inner", NULL), 0);
	assert_int_equal(name_op(f, FUSE_UNLINK, d, NULL, 0, "inner", NULL), -ENOENT);
	assert_int_equal(name_op(f, FUSE_UNLINK, FUSE_ROOT_ID, NULL, 0, "d", NULL), -EISDIR);
	assert_int_equal(name_op(f, FUSE_RMDIR, FUSE_ROOT_ID, NULL, 0, "d", NULL), 0);
	assert_false(share_exists(f, "d"));
	/* The directory's node is gone on the host: what uses it fails, nothing crashes. */
	assert_int_equal(mkdir_(f, d, "again", 0755), -ENOENT);

	/* SYMLINK stores the string as given, even an absolute one. */
	assert_int_equal(name_op(f, FUSE_SYMLINK, FUSE_ROOT_ID, NULL, 0, "s", "/etc/../etc/shadow"),
			 0);
	host_path(f, "s", path, sizeof(path));
	assert_int_equal(readlink(path, target, sizeof(target)), 18);
	assert_memory_equal(target, "/etc/../etc/shadow", 18);
	req_start(&f->q, FUSE_READLINK, ((struct fuse_entry_out *)payload(f))->nodeid);
	assert_int_equal(send_req(f), 0);
	assert_int_equal(f->r.len, HDR_OUT + 18);
	assert_memory_equal(payload(f), "/etc/../etc/shadow", 18);

	/* LINK: our own links do not make the file unopenable. */
	a = create_ok(f, FUSE_ROOT_ID, "a", NULL);
	assert_int_equal(link_(f, a, FUSE_ROOT_ID, "b"), 0);
	assert_int_equal(((struct fuse_entry_out *)payload(f))->nodeid, a);
	assert_int_equal(((struct fuse_entry_out *)payload(f))->attr.nlink, 2);
	host_path(f, "b", path, sizeof(path));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_nlink, 2);
	assert_int_equal(open_node(f, FUSE_OPEN, a, O_RDWR, &fh), 0);
	assert_int_equal(link_(f, FUSE_ROOT_ID, FUSE_ROOT_ID, "rootlink"), -EPERM);
	assert_int_equal(name_op(f, FUSE_UNLINK, FUSE_ROOT_ID, NULL, 0, "b", NULL), 0);
	assert_int_equal(open_node(f, FUSE_OPEN, a, O_RDWR, &fh), 0);

	/* MKNOD of a regular file, a FIFO, a socket. */
	assert_int_equal(mknod_(f, FUSE_ROOT_ID, "reg", S_IFREG | 0600, 0), 0);
	assert_int_equal(share_mode(f, "reg"), S_IFREG | 0600);
	assert_int_equal(mknod_(f, FUSE_ROOT_ID, "fifo", S_IFIFO | 0600, 0), 0);
	assert_true(S_ISFIFO(share_mode(f, "fifo")));
	assert_int_equal(mknod_(f, FUSE_ROOT_ID, "sock", S_IFSOCK | 0600, 0), 0);
	assert_true(S_ISSOCK(share_mode(f, "sock")));
	/* Lookups of names below a file. */
	sub = lookup_ok(f, FUSE_ROOT_ID, "reg");
	assert_int_equal(lookup(f, sub, "x", &d), -ENOTDIR);
}

static void test_setattr(void **state)
{
	struct fx *f = *state;
	struct fuse_setattr_in in;
	const struct fuse_attr_out *out;
	uint64_t id, fh;
	struct stat st;
	char path[256];

	share_write(f, "file", "0123456789");
	host_path(f, "file", path, sizeof(path));
	id = lookup_ok(f, FUSE_ROOT_ID, "file");

	in = (struct fuse_setattr_in){.valid = FATTR_SIZE, .size = 4};
	assert_int_equal(setattr(f, id, &in), 0);
	out = payload(f);
	assert_int_equal(out->attr.size, 4);
	assert_string_equal(share_read(f, "file"), "0123");
	/* Through an open handle. */
	assert_int_equal(open_node(f, FUSE_OPEN, id, O_RDWR, &fh), 0);
	in = (struct fuse_setattr_in){.valid = FATTR_SIZE | FATTR_FH, .size = 2, .fh = fh};
	assert_int_equal(setattr(f, id, &in), 0);
	assert_string_equal(share_read(f, "file"), "01");

	in = (struct fuse_setattr_in){.valid = FATTR_MODE, .mode = S_IFREG | 0600};
	assert_int_equal(setattr(f, id, &in), 0);
	assert_int_equal(share_mode(f, "file"), S_IFREG | 0600);

	in = (struct fuse_setattr_in){.valid = FATTR_ATIME | FATTR_MTIME,
				      .atime = 1000000000,
				      .atimensec = 5,
				      .mtime = 1234567890,
				      .mtimensec = 42};
	assert_int_equal(setattr(f, id, &in), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mtim.tv_sec, 1234567890);
	assert_int_equal(st.st_mtim.tv_nsec, 42);
	assert_int_equal(st.st_atim.tv_sec, 1000000000);
	out = payload(f);
	assert_int_equal(out->attr.mtime, 1234567890);

	/* Owner: to what it is, or to us; never to someone else. */
	in = (struct fuse_setattr_in){
	    .valid = FATTR_UID | FATTR_GID, .uid = st.st_uid, .gid = getegid()};
	assert_int_equal(setattr(f, id, &in), 0);
	in = (struct fuse_setattr_in){.valid = FATTR_UID, .uid = 12345};
	assert_int_equal(setattr(f, id, &in), -EPERM);
	in = (struct fuse_setattr_in){.valid = FATTR_GID, .gid = 12345};
	assert_int_equal(setattr(f, id, &in), -EPERM);
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_uid != 12345 && st.st_gid != 12345);

	/* Size of a directory. */
	in = (struct fuse_setattr_in){.valid = FATTR_SIZE, .size = 0};
	assert_int_equal(setattr(f, FUSE_ROOT_ID, &in), -EISDIR);
	assert_int_equal(setattr(f, 0x999900000005ULL, &in), -ESTALE);
}

static void test_setid_stripped(void **state)
{
	struct fx *f = *state;
	struct fuse_setattr_in in = {.valid = FATTR_MODE, .mode = S_IFREG | 06755};
	uint64_t id, fh;

	assert_int_equal(create(f, FUSE_ROOT_ID, "c", O_RDWR | O_EXCL, 04755, &id, &fh), 0);
	assert_int_equal(share_mode(f, "c"), S_IFREG | 0755);
	assert_int_equal(mkdir_(f, FUSE_ROOT_ID, "d", 02775), 0);
	assert_int_equal(share_mode(f, "d") & 07777, 0775);
	assert_int_equal(mknod_(f, FUSE_ROOT_ID, "m", S_IFREG | 06644, 0), 0);
	assert_int_equal(share_mode(f, "m"), S_IFREG | 0644);
	assert_int_equal(setattr(f, id, &in), 0);
	assert_int_equal(share_mode(f, "c"), S_IFREG | 0755);
	in.mode = 01777;
	assert_int_equal(setattr(f, FUSE_ROOT_ID, &in), 0);
	assert_int_equal(share_mode(f, ".") & 07777, 01777);
}

static void test_xattr(void **state)
{
	struct fx *f = *state;
	char path[256];
	uint64_t id;

	share_write(f, "x", "");
	host_path(f, "x", path, sizeof(path));
	/* A name the host set in another namespace: invisible to the guest. */
	assert_int_equal(setxattr(path, "trusted.host", "h", 1, 0), 0);
	id = lookup_ok(f, FUSE_ROOT_ID, "x");

	assert_int_equal(setxattr_(f, id, "user.colour", "blue"), 0);
	{
		char value[16];

		assert_int_equal(getxattr(path, "user.colour", value, sizeof(value)), 4);
		assert_memory_equal(value, "blue", 4);
	}
	assert_int_equal(getxattr_(f, FUSE_GETXATTR, id, "user.colour", 0), 0);
	assert_int_equal(((struct fuse_getxattr_out *)payload(f))->size, 4);
	assert_int_equal(getxattr_(f, FUSE_GETXATTR, id, "user.colour", 100), 0);
	assert_int_equal(f->r.len, HDR_OUT + 4);
	assert_memory_equal(payload(f), "blue", 4);
	assert_int_equal(getxattr_(f, FUSE_GETXATTR, id, "user.colour", 2), -ERANGE);
	assert_int_equal(getxattr_(f, FUSE_GETXATTR, id, "user.none", 100), -ENODATA);

	/* Only user.*: others are absent to read and refused to write. */
	assert_int_equal(getxattr_(f, FUSE_GETXATTR, id, "trusted.host", 100), -ENODATA);
	assert_int_equal(getxattr_(f, FUSE_GETXATTR, FUSE_ROOT_ID, "trusted.overlay.opaque", 100),
			 -ENODATA);
	assert_int_equal(setxattr_(f, id, "security.capability", "\x01\x00\x00\x02"), -EPERM);
	assert_int_equal(setxattr_(f, id, "trusted.overlay.opaque", "y"), -EPERM);
	assert_int_equal(setxattr_(f, id, "system.posix_acl_access", "y"), -EPERM);
	assert_int_equal(getxattr(path, "security.capability", NULL, 0), -1);
	assert_int_equal(getxattr(path, "trusted.overlay.opaque", NULL, 0), -1);

	/* LISTXATTR: the user.* names only. */
	assert_int_equal(getxattr_(f, FUSE_LISTXATTR, id, NULL, 0), 0);
	assert_int_equal(((struct fuse_getxattr_out *)payload(f))->size, sizeof("user.colour"));
	assert_int_equal(getxattr_(f, FUSE_LISTXATTR, id, NULL, 1000), 0);
	assert_int_equal(f->r.len, HDR_OUT + sizeof("user.colour"));
	assert_memory_equal(payload(f), "user.colour", sizeof("user.colour"));
	assert_int_equal(getxattr_(f, FUSE_LISTXATTR, id, NULL, 3), -ERANGE);

	/* REMOVEXATTR. */
	assert_int_equal(name_op(f, FUSE_REMOVEXATTR, id, NULL, 0, "trusted.host", NULL), -EPERM);
	assert_int_equal(getxattr(path, "trusted.host", NULL, 0), 1);
	assert_int_equal(name_op(f, FUSE_REMOVEXATTR, id, NULL, 0, "user.colour", NULL), 0);
	assert_int_equal(getxattr(path, "user.colour", NULL, 0), -1);
	assert_int_equal(getxattr_(f, FUSE_GETXATTR, id, "user.colour", 100), -ENODATA);
	/* Sizes the guest claims beyond what it sent, or beyond the limit. */
	{
		uint32_t in[2] = {100, 0};

		req_start(&f->q, FUSE_SETXATTR, id);
		req_put(&f->q, in, sizeof(in));
		req_str(&f->q, "user.a");
		req_put(&f->q, "ab", 2);
		assert_int_equal(send_req(f), -EINVAL);
		in[0] = 1u << 30;
		req_start(&f->q, FUSE_SETXATTR, id);
		req_put(&f->q, in, sizeof(in));
		req_str(&f->q, "user.a");
		assert_int_equal(send_req(f), -E2BIG);
	}
	assert_int_equal(getxattr_(f, FUSE_GETXATTR, id, "user.a", 0xffffffff), -ENODATA);
}

static void test_file_ops(void **state)
{
	struct fx *f = *state;
	uint64_t a, b, fa, fb;
	struct stat st;
	char path[256];

	a = create_ok(f, FUSE_ROOT_ID, "a", &fa);
	b = create_ok(f, FUSE_ROOT_ID, "b", &fb);
	assert_int_equal(write_fh(f, fa, 0, "copy me", 7), 7);

	/* FALLOCATE grows the file; LSEEK finds the data and the hole after it. */
	{
		struct fuse_fallocate_in in = {.fh = fa, .offset = 0, .length = 1 << 20};

		assert_int_equal(fh_op(f, FUSE_FALLOCATE, &in, sizeof(in)), 0);
		host_path(f, "a", path, sizeof(path));
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_size, 1 << 20);
		in.fh = fb;
		in.mode = 0xff;
		assert_int_not_equal(fh_op(f, FUSE_FALLOCATE, &in, sizeof(in)), 0);
	}
	{
		struct fuse_lseek_in in = {.fh = fb, .offset = 0, .whence = SEEK_DATA};
		struct fuse_setattr_in sa = {.valid = FATTR_SIZE, .size = 1 << 20};

		assert_int_equal(write_fh(f, fb, 65536, "x", 1), 1);
		assert_int_equal(setattr(f, b, &sa), 0);
		assert_int_equal(fh_op(f, FUSE_LSEEK, &in, sizeof(in)), 0);
		assert_int_equal(f->r.len, HDR_OUT + sizeof(struct fuse_lseek_out));
		/* Data is somewhere at or before the block with the byte. */
		assert_true(((struct fuse_lseek_out *)payload(f))->offset <= 65536);
		in.whence = SEEK_HOLE;
		in.offset = 65536;
		assert_int_equal(fh_op(f, FUSE_LSEEK, &in, sizeof(in)), 0);
		assert_true(((struct fuse_lseek_out *)payload(f))->offset > 65536);
		assert_true(((struct fuse_lseek_out *)payload(f))->offset <= 1 << 20);
		in.whence = 77;
		assert_int_equal(fh_op(f, FUSE_LSEEK, &in, sizeof(in)), -EINVAL);
	}

	/* COPY_FILE_RANGE. */
	{
		struct fuse_copy_file_range_in in = {.fh_in = fa,
						     .off_in = 5,
						     .nodeid_out = b,
						     .fh_out = fb,
						     .off_out = 0,
						     .len = 2};

		assert_int_equal(fh_op(f, FUSE_COPY_FILE_RANGE, &in, sizeof(in)), 0);
		assert_int_equal(((struct fuse_write_out *)payload(f))->size, 2);
		assert_memory_equal(share_read(f, "b"), "me", 2);
		in.flags = 1;
		assert_int_equal(fh_op(f, FUSE_COPY_FILE_RANGE, &in, sizeof(in)), -EINVAL);
		in.flags = 0;
		in.fh_out = 4242;
		assert_int_equal(fh_op(f, FUSE_COPY_FILE_RANGE, &in, sizeof(in)), -EBADF);
	}

	/* FSYNC, FDATASYNC, FSYNCDIR, FLUSH, ACCESS. */
	{
		struct fuse_fsync_in in = {.fh = fa};
		struct fuse_flush_in fl = {.fh = fa};
		struct fuse_access_in ac = {.mask = R_OK | W_OK};
		uint64_t dh;

		assert_int_equal(fh_op(f, FUSE_FSYNC, &in, sizeof(in)), 0);
		in.fsync_flags = FUSE_FSYNC_FDATASYNC;
		assert_int_equal(fh_op(f, FUSE_FSYNC, &in, sizeof(in)), 0);
		assert_int_equal(open_node(f, FUSE_OPENDIR, FUSE_ROOT_ID, O_RDONLY, &dh), 0);
		in.fh = dh;
		assert_int_equal(fh_op(f, FUSE_FSYNCDIR, &in, sizeof(in)), 0);
		in.fh = 31337;
		assert_int_equal(fh_op(f, FUSE_FSYNC, &in, sizeof(in)), -EBADF);
		assert_int_equal(fh_op(f, FUSE_FLUSH, &fl, sizeof(fl)), 0);
		req_start(&f->q, FUSE_ACCESS, a);
		req_put(&f->q, &ac, sizeof(ac));
		assert_int_equal(send_req(f), 0);
		ac.mask = 0x40;
		req_start(&f->q, FUSE_ACCESS, a);
		req_put(&f->q, &ac, sizeof(ac));
		assert_int_equal(send_req(f), -EINVAL);
	}
}

/* Big I/O: a 256 KiB write in 64 page-sized pieces, read back the same way. */
static void test_big_io(void **state)
{
	struct fx *f = *state;
	const size_t size = 256 * 1024;
	uint8_t *data = malloc(size), *back = malloc(size);
	uint64_t fh;
	int fd;
	char path[256];

	assert_non_null(data);
	assert_non_null(back);
	for (size_t i = 0; i < size; i++)
		data[i] = (uint8_t)(i * 7 + (i >> 12));
	create_ok(f, FUSE_ROOT_ID, "big", &fh);
	{
		struct fuse_write_in in = {.fh = fh, .offset = 0, .size = (uint32_t)size};

		req_start(&f->q, FUSE_WRITE, 1);
		req_put(&f->q, &in, sizeof(in));
		req_put(&f->q, data, size);
		f->r.size = 64;
		send_split(f, 4096, 0);
		assert_int_equal(f->r.error, 0);
		assert_int_equal(((struct fuse_write_out *)payload(f))->size, size);
	}
	host_path(f, "big", path, sizeof(path));
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, back, size), (ssize_t)size);
	close(fd);
	assert_memory_equal(back, data, size);
	{
		struct fuse_read_in in = {.fh = fh, .offset = 0, .size = (uint32_t)size};

		req_start(&f->q, FUSE_READ, 1);
		req_put(&f->q, &in, sizeof(in));
		f->r.size = HDR_OUT + size;
		send_split(f, 0, 4096);
		assert_int_equal(f->r.error, 0);
		assert_int_equal(f->r.len, HDR_OUT + size);
		assert_memory_equal(f->r.buf + HDR_OUT, data, size);
	}
	free(data);
	free(back);
}

/* ---- malformed requests ------------------------------------------------------------------ */

static void test_short_and_long_headers(void **state)
{
	struct fx *f = *state;
	struct iovec iov, out = {.iov_base = f->r.buf, .iov_len = REPLY_MAX};

	/* Shorter than a header: no reply at all. */
	req_start(&f->q, FUSE_GETATTR, 1);
	iov = (struct iovec){.iov_base = f->q.buf, .iov_len = HDR_IN - 1};
	assert_int_equal(fuse_server_handle(f->fs, &iov, 1, &out, 1), 0);
	assert_int_equal(fuse_server_handle(f->fs, NULL, 0, &out, 1), 0);
	/* len beyond the buffers, or shorter than the header. */
	f->raw_len = true;
	req_start(&f->q, FUSE_GETATTR, 1);
	req_put(&f->q, &(struct fuse_getattr_in){0}, sizeof(struct fuse_getattr_in));
	memcpy(f->q.buf, &(uint32_t){(uint32_t)f->q.len + 1}, 4);
	assert_int_equal(send_req(f), -EINVAL);
	memcpy(f->q.buf, &(uint32_t){0xffffffff}, 4);
	assert_int_equal(send_req(f), -EINVAL);
	memcpy(f->q.buf, &(uint32_t){HDR_IN - 1}, 4);
	assert_int_equal(send_req(f), -EINVAL);
	/* len shorter than what was sent: only len counts (args missing). */
	memcpy(f->q.buf, &(uint32_t){HDR_IN + 4}, 4);
	assert_int_equal(send_req(f), -EINVAL);
	f->raw_len = false;
	/* WRITE claiming more data than it holds. */
	{
		uint64_t fh;
		struct fuse_write_in in = {.size = 100};

		create_ok(f, FUSE_ROOT_ID, "w", &fh);
		in.fh = fh;
		req_start(&f->q, FUSE_WRITE, 1);
		req_put(&f->q, &in, sizeof(in));
		req_put(&f->q, "abc", 3);
		assert_int_equal(send_req(f), -EINVAL);
		assert_string_equal(share_read(f, "w"), "");
	}
}

static void test_bad_names(void **state)
{
	struct fx *f = *state;
	char long_name[300];
	uint64_t id;

	/* No NUL inside the request. */
	req_start(&f->q, FUSE_LOOKUP, 1);
	req_put(&f->q, "abc", 3);
	assert_int_equal(send_req(f), -EINVAL);
	req_start(&f->q, FUSE_MKDIR, 1);
	req_put(&f->q, &(struct fuse_mkdir_in){.mode = 0755}, sizeof(struct fuse_mkdir_in));
	req_put(&f->q, "abc", 3);
	assert_int_equal(send_req(f), -EINVAL);
	assert_false(share_exists(f, "abc"));
	/* SYMLINK's target unterminated. */
	req_start(&f->q, FUSE_SYMLINK, 1);
	req_str(&f->q, "s");
	req_put(&f->q, "/etc", 4);
	assert_int_equal(send_req(f), -EINVAL);
	assert_false(share_exists(f, "s"));
	/* Empty, too long. */
	assert_int_equal(lookup(f, 1, "", &id), -EINVAL);
	memset(long_name, 'n', 256);
	long_name[256] = 0;
	assert_int_equal(lookup(f, 1, long_name, &id), -ENAMETOOLONG);
	long_name[255] = 0;
	assert_int_equal(lookup(f, 1, long_name, &id), -ENOENT);
	assert_int_equal(mkdir_(f, 1, long_name, 0755), 0);
}

static void test_huge_sizes(void **state)
{
	struct fx *f = *state;
	uint64_t id, fh;

	share_write(f, "f", "0123456789abcdef");
	id = lookup_ok(f, 1, "f");
	assert_int_equal(open_node(f, FUSE_OPEN, id, O_RDONLY, &fh), 0);
	/* READ of 4 GiB: as much as the reply buffers hold, no more. */
	{
		struct fuse_read_in in = {.fh = fh, .size = 0xffffffff};

		req_start(&f->q, FUSE_READ, 1);
		req_put(&f->q, &in, sizeof(in));
		f->r.size = HDR_OUT + 5;
		send_split(f, 0, 3);
		assert_int_equal(f->r.len, HDR_OUT + 5);
		assert_memory_equal(f->r.buf + HDR_OUT, "01234", 5);
		assert_int_equal(f->r.buf[HDR_OUT + 5], 0xa5);
	}
	/* READDIR(PLUS) of 4 GiB. */
	{
		struct fuse_read_in in = {.size = 0xffffffff};
		uint64_t dh;

		assert_int_equal(open_node(f, FUSE_OPENDIR, 1, O_RDONLY, &dh), 0);
		in.fh = dh;
		assert_int_equal(fh_op(f, FUSE_READDIRPLUS, &in, sizeof(in)), 0);
		assert_true(f->r.len > HDR_OUT && f->r.len < 4096);
	}
	/* BATCH_FORGET claiming 4 billion entries, holding two. */
	{
		struct fuse_batch_forget_in in = {.count = 0xffffffff};
		/* Two lookups of "f": LOOKUP and READDIRPLUS. */
		struct fuse_forget_one one = {.nodeid = id, .nlookup = 2};

		req_start(&f->q, FUSE_BATCH_FORGET, 0);
		req_put(&f->q, &in, sizeof(in));
		req_put(&f->q, &one, sizeof(one));
		one.nodeid = 0xdead00000007ULL;
		req_put(&f->q, &one, sizeof(one));
		req_put(&f->q, "xyz", 3);
		assert_int_equal(send_req(f), 0);
		assert_int_equal(f->r.len, 0);
		assert_int_equal(getattr(f, id, NULL), -ESTALE);
		/* The open file stays readable: handles are not nodes. */
		assert_int_equal(read_fh(f, fh, 10, 6, NULL), 6);
	}
	/* GETXATTR / LISTXATTR of 4 GiB. */
	assert_int_equal(getxattr_(f, FUSE_LISTXATTR, 1, NULL, 0xffffffff), 0);
}

static void test_bad_ids_and_opcodes(void **state)
{
	struct fx *f = *state;
	uint64_t id, fh;

	assert_int_equal(getattr(f, 0, NULL), -ESTALE);
	assert_int_equal(getattr(f, 2, NULL), -ESTALE);
	assert_int_equal(getattr(f, 0xffffffffffffffffULL, NULL), -ESTALE);
	assert_int_equal(getattr(f, (1ULL << 32) | 1, NULL), -ESTALE);
	assert_int_equal(lookup(f, 0x100000002ULL, "x", &id), -ESTALE);
	assert_int_equal(read_fh(f, 0, 0, 10, NULL), -EBADF);
	assert_int_equal(read_fh(f, 1, 0, 10, NULL), -EBADF);
	assert_int_equal(read_fh(f, 0xffffffffffffffffULL, 0, 10, NULL), -EBADF);
	assert_int_equal(write_fh(f, 77, 0, "x", 1), -EBADF);
	assert_int_equal(release(f, FUSE_RELEASE, 1, 0x500000001ULL), -EBADF);
	/* A handle id stays dead when its slot is reused. */
	share_write(f, "f", "x");
	id = lookup_ok(f, 1, "f");
	assert_int_equal(open_node(f, FUSE_OPEN, id, O_RDONLY, &fh), 0);
	assert_int_equal(release(f, FUSE_RELEASE, id, fh), 0);
	{
		uint64_t fh2;

		assert_int_equal(open_node(f, FUSE_OPEN, id, O_RDONLY, &fh2), 0);
		assert_true(fh2 != fh);
		assert_int_equal(read_fh(f, fh, 0, 1, NULL), -EBADF);
		assert_int_equal(read_fh(f, fh2, 0, 1, NULL), 1);
	}
	/* FORGET of unknown ids: nothing, and no reply. */
	assert_int_equal(forget(f, 0xabcdef, 3), 0);
	/* Opcodes not served. */
	req_start(&f->q, 9999, 1);
	assert_int_equal(send_req(f), -ENOSYS);
	req_start(&f->q, FUSE_GETLK, 1);
	req_put(&f->q, &(struct fuse_lk_in){0}, sizeof(struct fuse_lk_in));
	assert_int_equal(send_req(f), -ENOSYS);
	req_start(&f->q, FUSE_SETUPMAPPING, 1);
	assert_int_equal(send_req(f), -ENOSYS);
	req_start(&f->q, FUSE_INIT_BSWAP_RESERVED, 1);
	assert_int_equal(send_req(f), -ENOSYS);
	/* INTERRUPT: no reply. */
	req_start(&f->q, FUSE_INTERRUPT, 0);
	req_put(&f->q, &(struct fuse_interrupt_in){.unique = 5}, sizeof(struct fuse_interrupt_in));
	assert_int_equal(send_req(f), 0);
	assert_int_equal(f->r.len, 0);
}

static void test_split_buffers(void **state)
{
	struct fx *f = *state;
	struct fuse_entry_out whole, split;
	uint64_t id;

	share_write(f, "split-name", "abc");
	id = lookup_ok(f, 1, "split-name");
	memcpy(&whole, payload(f), sizeof(whole));
	/* Header and name in 1-byte buffers, the reply in 7-byte ones. */
	for (size_t chunk = 1; chunk <= 41; chunk += 8) {
		req_start(&f->q, FUSE_LOOKUP, 1);
		req_str(&f->q, "split-name");
		f->r.size = 1024;
		send_split(f, chunk, 7);
		assert_int_equal(f->r.error, 0);
		assert_int_equal(f->r.len, HDR_OUT + sizeof(split));
		memcpy(&split, payload(f), sizeof(split));
		assert_int_equal(split.nodeid, id);
		assert_int_equal(split.attr.ino, whole.attr.ino);
		assert_int_equal(split.attr.size, 3);
	}
}

static void test_small_reply_buffers(void **state)
{
	struct fx *f = *state;
	uint64_t fh, id;

	share_write(f, "f", "0123456789");
	/* No room for a header: no reply, nothing done. */
	assert_int_equal(mkdir_(f, 1, "d0", 0755), 0);
	req_start(&f->q, FUSE_MKDIR, 1);
	req_put(&f->q, &(struct fuse_mkdir_in){.mode = 0755}, sizeof(struct fuse_mkdir_in));
	req_str(&f->q, "d1");
	f->r.size = HDR_OUT - 1;
	assert_int_equal(send_split(f, 0, 0), 0);
	assert_false(share_exists(f, "d1"));
	/* Room for the header, not the entry: an error, and nothing done. */
	f->r.size = HDR_OUT + 10;
	send_split(f, 0, 0);
	assert_int_equal(f->r.error, -EINVAL);
	assert_false(share_exists(f, "d1"));
	assert_int_equal(f->r.buf[HDR_OUT], 0xa5);
	/* CREATE's entry and open out. */
	req_start(&f->q, FUSE_CREATE, 1);
	req_put(&f->q, &(struct fuse_create_in){.flags = O_RDWR, .mode = 0644},
		sizeof(struct fuse_create_in));
	req_str(&f->q, "c");
	f->r.size = HDR_OUT + sizeof(struct fuse_entry_out);
	send_split(f, 0, 0);
	assert_int_equal(f->r.error, -EINVAL);
	assert_false(share_exists(f, "c"));
	/* READ and READLINK cut to the room there is. */
	id = lookup_ok(f, 1, "f");
	assert_int_equal(open_node(f, FUSE_OPEN, id, O_RDONLY, &fh), 0);
	req_start(&f->q, FUSE_READ, 1);
	req_put(&f->q, &(struct fuse_read_in){.fh = fh, .size = 10}, sizeof(struct fuse_read_in));
	f->r.size = HDR_OUT + 3;
	send_split(f, 0, 1);
	assert_int_equal(f->r.len, HDR_OUT + 3);
	assert_memory_equal(f->r.buf + HDR_OUT, "012", 3);
	/* STATFS with no room for its reply. */
	req_start(&f->q, FUSE_STATFS, 1);
	f->r.size = HDR_OUT + 8;
	send_split(f, 0, 0);
	assert_int_equal(f->r.error, -EINVAL);
	/* LISTXATTR size probe with no room for the size. */
	req_start(&f->q, FUSE_LISTXATTR, 1);
	req_put(&f->q, &(struct fuse_getxattr_in){0}, sizeof(struct fuse_getxattr_in));
	f->r.size = HDR_OUT + 4;
	send_split(f, 0, 0);
	assert_int_equal(f->r.error, -EINVAL);
}

/* ---- escapes ------------------------------------------------------------------------------ */

static void test_escape_symlinks(void **state)
{
	struct fx *f = *state;
	uint64_t id, etc, fh, ignored;
	char path[256], passwd_before[8192];
	struct stat before, after;

	strcpy(passwd_before, host_read("/etc/passwd"));
	assert_int_equal(stat("/etc/passwd", &before), 0);
	host_path(f, "passwd", path, sizeof(path));
	assert_int_equal(symlink("/etc/passwd", path), 0);
	host_path(f, "etc", path, sizeof(path));
	assert_int_equal(symlink("/etc", path), 0);
	host_path(f, "up", path, sizeof(path));
	assert_int_equal(symlink("..", path), 0);

	/* LOOKUP sees the link itself. */
	id = lookup_ok(f, 1, "passwd");
	assert_true(S_ISLNK(((struct fuse_entry_out *)payload(f))->attr.mode));
	assert_int_equal(((struct fuse_entry_out *)payload(f))->attr.size, strlen("/etc/passwd"));
	/* It is never opened, for reading or writing. */
	assert_int_equal(open_node(f, FUSE_OPEN, id, O_RDONLY, &fh), -ELOOP);
	assert_int_equal(open_node(f, FUSE_OPEN, id, O_RDWR, &fh), -ELOOP);
	assert_int_equal(open_node(f, FUSE_OPENDIR, id, O_RDONLY, &fh), -ENOTDIR);
	/* READLINK gives the string, not the content. */
	req_start(&f->q, FUSE_READLINK, id);
	assert_int_equal(send_req(f), 0);
	assert_int_equal(f->r.len, HDR_OUT + strlen("/etc/passwd"));
	assert_memory_equal(payload(f), "/etc/passwd", strlen("/etc/passwd"));
	/* Attributes and xattrs are the link's, and changes stay off the target. */
	assert_int_equal(
	    setattr(f, id, &(struct fuse_setattr_in){.valid = FATTR_MODE, .mode = 0777}),
	    -EOPNOTSUPP);
	assert_int_equal(setattr(f, id, &(struct fuse_setattr_in){.valid = FATTR_SIZE}), -EINVAL);
	assert_int_equal(setxattr_(f, id, "user.x", "1"), -EPERM);
	/* CREATE on the link's name does not go through it. */
	assert_int_not_equal(create(f, 1, "passwd", O_RDWR | O_TRUNC, 0644, &ignored, &fh), 0);

	/* A symlink as a path component leads nowhere: it is not a directory node. */
	etc = lookup_ok(f, 1, "etc");
	assert_int_equal(lookup(f, etc, "passwd", &ignored), -ENOTDIR);
	assert_int_equal(mkdir_(f, etc, "x", 0755), -ENOTDIR);
	assert_int_equal(create(f, etc, "x", O_RDWR, 0644, &ignored, &fh), -ENOTDIR);
	assert_int_equal(open_node(f, FUSE_OPENDIR, etc, O_RDONLY, &fh), -ENOTDIR);
	id = lookup_ok(f, 1, "up");
	assert_int_equal(lookup(f, id, "etc", &ignored), -ENOTDIR);
	/* LINK of the symlink is a link to the link, inside the share. */
	assert_int_equal(link_(f, etc, 1, "etc2"), 0);
	host_path(f, "etc2", path, sizeof(path));
	assert_int_equal(lstat(path, &after), 0);
	assert_true(S_ISLNK(after.st_mode));

	assert_string_equal(host_read("/etc/passwd"), passwd_before);
	assert_int_equal(stat("/etc/passwd", &after), 0);
	assert_int_equal(after.st_mode, before.st_mode);
	assert_int_equal(after.st_size, before.st_size);
}

static void test_escape_names(void **state)
{
	struct fx *f = *state;
	uint64_t id, fh;
	char path[256];

	host_mkdir(f, "sub");
	share_write(f, "sub/file", "s");
	id = lookup_ok(f, 1, "sub");
	assert_int_equal(lookup(f, 1, "..", &fh), -EINVAL);
	assert_int_equal(lookup(f, 1, ".", &fh), -EINVAL);
	assert_int_equal(lookup(f, id, "..", &fh), -EINVAL);
	assert_int_equal(lookup(f, 1, "sub/file", &fh), -EINVAL);
	assert_int_equal(lookup(f, 1, "/etc", &fh), -EINVAL);
	assert_int_equal(lookup(f, 1, "sub/", &fh), -EINVAL);
	assert_int_equal(mkdir_(f, 1, "../escaped", 0755), -EINVAL);
	assert_int_equal(mkdir_(f, id, "..", 0755), -EINVAL);
	assert_int_equal(create(f, 1, "../escaped", O_RDWR, 0644, &id, &fh), -EINVAL);
	assert_int_equal(name_op(f, FUSE_SYMLINK, 1, NULL, 0, "a/b", "x"), -EINVAL);
	assert_int_equal(rename2(f, 1, "sub", 1, "../escaped", 0), -EINVAL);
	assert_int_equal(rename2(f, 1, "..", 1, "x", 0), -EINVAL);
	assert_int_equal(name_op(f, FUSE_UNLINK, 1, NULL, 0, "sub/file", NULL), -EINVAL);
	assert_int_equal(name_op(f, FUSE_RMDIR, 1, NULL, 0, "..", NULL), -EINVAL);
	assert_int_equal(mknod_(f, 1, "../fifo", S_IFIFO | 0644, 0), -EINVAL);
	assert_int_equal(link_(f, lookup_ok(f, 1, "sub"), 1, "../x"), -EINVAL);
	assert_string_equal(share_read(f, "sub/file"), "s");
	snprintf(path, sizeof(path), "%s/../escaped", f->dir);
	assert_int_equal(access(path, F_OK), -1);
}

static void test_escape_hard_link(void **state)
{
	struct fx *f = *state;
	char secret[256], planted[256];
	uint64_t id, fh;
	struct stat st;

	snprintf(secret, sizeof(secret), "%s/secret", f->outside);
	host_write(secret, "top secret");
	host_path(f, "planted", planted, sizeof(planted));
	assert_int_equal(link(secret, planted), 0);

	id = lookup_ok(f, 1, "planted");
	assert_int_equal(((struct fuse_entry_out *)payload(f))->attr.nlink, 2);
	assert_int_equal(open_node(f, FUSE_OPEN, id, O_RDONLY, &fh), -EPERM);
	assert_int_equal(open_node(f, FUSE_OPEN, id, O_RDWR, &fh), -EPERM);
	assert_int_equal(open_node(f, FUSE_OPEN, id, O_WRONLY | O_TRUNC, &fh), -EPERM);
	assert_int_equal(create(f, 1, "planted", O_RDWR | O_TRUNC, 0644, &id, &fh), -EPERM);
	assert_int_equal(setattr(f, id, &(struct fuse_setattr_in){.valid = FATTR_SIZE}), -EPERM);
	assert_int_equal(
	    setattr(f, id, &(struct fuse_setattr_in){.valid = FATTR_MODE, .mode = 0777}), -EPERM);
	assert_int_equal(link_(f, id, 1, "again"), -EPERM);
	assert_false(share_exists(f, "again"));
	assert_int_equal(setxattr_(f, id, "user.x", "1"), -EPERM);
	assert_string_equal(host_read(secret), "top secret");
	assert_int_equal(stat(secret, &st), 0);
	assert_int_equal(st.st_mode, S_IFREG | 0644);
	assert_int_equal(st.st_size, 10);
	/* The name itself may go. */
	assert_int_equal(name_op(f, FUSE_UNLINK, 1, NULL, 0, "planted", NULL), 0);
	assert_false(share_exists(f, "planted"));
	assert_string_equal(host_read(secret), "top secret");

	/* Read-only shares hard-link binaries (/usr/bin/perl...): reading is allowed there. */
	assert_int_equal(link(secret, planted), 0);
	fx_reopen_ro(f);
	id = lookup_ok(f, 1, "planted");
	assert_int_equal(open_node(f, FUSE_OPEN, id, O_RDONLY, &fh), 0);
	assert_int_equal(open_node(f, FUSE_OPEN, id, O_RDWR, &fh), -EROFS);
}

static void test_device_nodes(void **state)
{
	struct fx *f = *state;
	char path[256];
	uint64_t id, fh;

	assert_int_equal(mknod_(f, 1, "null", S_IFCHR | 0666, makedev(1, 3)), -EPERM);
	assert_int_equal(mknod_(f, 1, "sda", S_IFBLK | 0666, makedev(8, 0)), -EPERM);
	assert_int_equal(mknod_(f, 1, "dir", S_IFDIR | 0755, 0), -EINVAL);
	assert_int_equal(mknod_(f, 1, "lnk", S_IFLNK | 0777, 0), -EINVAL);
	assert_false(share_exists(f, "null") || share_exists(f, "sda") || share_exists(f, "dir"));
	/* A FIFO is made, never opened (it would block a worker). */
	assert_int_equal(mknod_(f, 1, "fifo", S_IFIFO | 0666, 0), 0);
	id = ((struct fuse_entry_out *)payload(f))->nodeid;
	assert_int_equal(open_node(f, FUSE_OPEN, id, O_RDONLY, &fh), -EACCES);
	assert_int_equal(open_node(f, FUSE_OPEN, id, O_WRONLY, &fh), -EACCES);
	assert_int_equal(create(f, 1, "fifo", O_WRONLY, 0644, &id, &fh), -EACCES);
	/* A device node the host put there is not opened either. */
	host_path(f, "hostnull", path, sizeof(path));
	if (mknod(path, S_IFCHR | 0666, makedev(1, 3)) == 0) {
		id = lookup_ok(f, 1, "hostnull");
		assert_int_equal(open_node(f, FUSE_OPEN, id, O_RDONLY, &fh), -EACCES);
		assert_int_equal(create(f, 1, "hostnull", O_RDWR, 0644, &id, &fh), -EACCES);
		assert_int_equal(setattr(f, id, &(struct fuse_setattr_in){.valid = FATTR_SIZE}),
				 -EINVAL);
	}
}

/* Names, types, modes, sizes, links, times and contents of the whole share. */
static char *snapshot(const struct fx *f)
{
	char cmd[512], *out = malloc(1 << 16);
	FILE *p;
	size_t n;

	assert_non_null(out);
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && find . -printf '%%P %%y %%m %%s %%n %%T@ %%l\\n' | sort && "
		 "find . -type f -exec md5sum {} + | sort",
		 f->dir);
	p = popen(cmd, "r");
	assert_non_null(p);
	n = fread(out, 1, (1 << 16) - 1, p);
	out[n] = 0;
	pclose(p);
	return out;
}

static void test_read_only_share(void **state)
{
	struct fx *f = *state;
	uint64_t file, dir, fh, dh, id;
	char path[256], *before, *after;

	share_write(f, "file", "content");
	host_mkdir(f, "dir");
	share_write(f, "dir/inner", "x");
	host_path(f, "file", path, sizeof(path));
	assert_int_equal(setxattr(path, "user.keep", "v", 1, 0), 0);
	fx_reopen_ro(f);
	sleep(0); /* times compared below are the host's, untouched by reads */
	before = snapshot(f);

	file = lookup_ok(f, 1, "file");
	dir = lookup_ok(f, 1, "dir");
	assert_int_equal(open_node(f, FUSE_OPEN, file, O_RDONLY, &fh), 0);
	assert_int_equal(open_node(f, FUSE_OPENDIR, dir, O_RDONLY, &dh), 0);

	assert_int_equal(setattr(f, file, &(struct fuse_setattr_in){.valid = FATTR_SIZE}), -EROFS);
	assert_int_equal(
	    setattr(f, file, &(struct fuse_setattr_in){.valid = FATTR_MODE, .mode = 0777}), -EROFS);
	assert_int_equal(name_op(f, FUSE_SYMLINK, 1, NULL, 0, "s", "/"), -EROFS);
	assert_int_equal(mknod_(f, 1, "n", S_IFREG | 0644, 0), -EROFS);
	assert_int_equal(mkdir_(f, 1, "m", 0755), -EROFS);
	assert_int_equal(name_op(f, FUSE_UNLINK, 1, NULL, 0, "file", NULL), -EROFS);
	assert_int_equal(name_op(f, FUSE_RMDIR, 1, NULL, 0, "dir", NULL), -EROFS);
	assert_int_equal(name_op(f, FUSE_RENAME, 1, &(struct fuse_rename_in){.newdir = 1},
				 sizeof(struct fuse_rename_in), "file", "moved"),
			 -EROFS);
	assert_int_equal(rename2(f, 1, "file", dir, "moved", RENAME_NOREPLACE), -EROFS);
	assert_int_equal(link_(f, file, 1, "linked"), -EROFS);
	assert_int_equal(create(f, 1, "new", O_RDWR, 0644, &id, &fh), -EROFS);
	assert_int_equal(create(f, 1, "file", O_RDONLY, 0644, &id, &fh), -EROFS);
	assert_int_equal(write_fh(f, fh, 0, "zz", 2), -EROFS);
	assert_int_equal(fh_op(f, FUSE_FALLOCATE,
			       &(struct fuse_fallocate_in){.fh = fh, .length = 4096},
			       sizeof(struct fuse_fallocate_in)),
			 -EROFS);
	assert_int_equal(
	    fh_op(f, FUSE_COPY_FILE_RANGE,
		  &(struct fuse_copy_file_range_in){.fh_in = fh, .fh_out = fh, .len = 3},
		  sizeof(struct fuse_copy_file_range_in)),
	    -EROFS);
	assert_int_equal(setxattr_(f, file, "user.new", "1"), -EROFS);
	assert_int_equal(name_op(f, FUSE_REMOVEXATTR, file, NULL, 0, "user.keep", NULL), -EROFS);
	assert_int_equal(open_node(f, FUSE_OPEN, file, O_WRONLY, &id), -EROFS);
	assert_int_equal(open_node(f, FUSE_OPEN, file, O_RDWR, &id), -EROFS);
	assert_int_equal(open_node(f, FUSE_OPEN, file, O_RDONLY | O_TRUNC, &id), -EROFS);
	assert_int_equal(open_node(f, FUSE_OPEN, file, O_RDONLY | O_APPEND, &id), -EROFS);
	req_start(&f->q, FUSE_ACCESS, file);
	req_put(&f->q, &(struct fuse_access_in){.mask = W_OK}, sizeof(struct fuse_access_in));
	assert_int_equal(send_req(f), -EROFS);
	/* Reads still work. */
	assert_int_equal(read_fh(f, fh, 0, 100, NULL), 7);
	assert_int_equal(getxattr_(f, FUSE_GETXATTR, file, "user.keep", 10), 0);

	after = snapshot(f);
	assert_string_equal(after, before);
	free(before);
	free(after);
}

/* A mount below the share is not crossed: RESOLVE_NO_XDEV. Needs a mount namespace of our
 * own (root or an unprivileged user namespace); skipped without. */
static void test_mount_not_crossed(void **state)
{
	struct fx *f = *state;
	char mnt[256], names[4096];
	uint64_t id, fh, ids[64], off;
	size_t n;

	host_mkdir(f, "mnt");
	host_path(f, "mnt", mnt, sizeof(mnt));
	if (unshare(CLONE_NEWNS) < 0 || mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("tmpfs", mnt, "tmpfs", 0, "size=1m") < 0) {
		skip();
		return;
	}
	host_write(strcat(strcpy(names, mnt), "/inside"), "mounted");
	/* The server's share descriptor must be one of this namespace's mounts. */
	fuse_server_destroy(f->fs);
	assert_int_equal(fuse_server_create(f->dir, false, &f->fds, &f->fs), 0);
	assert_int_equal(fuse_init(f, 7, 38, 0), 0);
	assert_int_equal(lookup(f, 1, "mnt", &id), -ENOENT); /* looks absent */
	/* READDIRPLUS lists the name, with no node. */
	assert_int_equal(open_node(f, FUSE_OPENDIR, 1, O_RDONLY, &fh), 0);
	assert_int_equal(read_dir(f, FUSE_READDIRPLUS, fh, 0, 4096), 0);
	n = parse_dir(payload(f), f->r.len - HDR_OUT, true, names, sizeof(names), ids, &off);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(ids[i], 0);
	assert_int_equal(umount(mnt), 0);
	assert_int_equal(lookup(f, 1, "mnt", &id), 0);
}

/* Several threads at once over one server: lookups, forgets, opens, reads, releases and
 * directory reads interleaved, nothing lost or freed under another thread's feet. */
struct worker {
	struct fuse_server *fs;
	unsigned index, failures;
};

static void *worker_run(void *opaque)
{
	struct worker *w = opaque;
	struct fx f = {.fs = w->fs};
	char name[16];

	f.q.buf = malloc(REQ_MAX);
	f.r.buf = malloc(REPLY_MAX);
	for (unsigned round = 0; round < 300 && f.q.buf && f.r.buf; round++) {
		uint64_t id = 0, fh = 0;
		char buf[8];

		snprintf(name, sizeof(name), "f%u", (round + w->index) % 4);
		req_start(&f.q, FUSE_LOOKUP, 1);
		req_str(&f.q, name);
		if (send_req(&f) != 0) {
			w->failures++;
			continue;
		}
		id = ((struct fuse_entry_out *)payload(&f))->nodeid;
		req_start(&f.q, FUSE_OPEN, id);
		req_put(&f.q, &(struct fuse_open_in){.flags = O_RDONLY},
			sizeof(struct fuse_open_in));
		if (send_req(&f) == 0) {
			fh = ((struct fuse_open_out *)payload(&f))->fh;
			req_start(&f.q, FUSE_READ, id);
			req_put(&f.q, &(struct fuse_read_in){.fh = fh, .size = 8},
				sizeof(struct fuse_read_in));
			if (send_req(&f) != 0 || f.r.len != HDR_OUT + 2)
				w->failures++;
			memcpy(buf, payload(&f), 2);
			if (buf[0] != 'f')
				w->failures++;
			req_start(&f.q, FUSE_RELEASE, id);
			req_put(&f.q, &(struct fuse_release_in){.fh = fh},
				sizeof(struct fuse_release_in));
			if (send_req(&f) != 0)
				w->failures++;
		} else {
			/* Another thread's FORGET may have won: then the id is stale. */
			if (f.r.error != -ESTALE)
				w->failures++;
		}
		req_start(&f.q, FUSE_FORGET, id);
		req_put(&f.q, &(struct fuse_forget_in){.nlookup = 1},
			sizeof(struct fuse_forget_in));
		send_req(&f);
	}
	free(f.q.buf);
	free(f.r.buf);
	return NULL;
}

static void test_threads(void **state)
{
	struct fx *f = *state;
	struct worker w[4];
	pthread_t t[4];

	for (unsigned i = 0; i < 4; i++) {
		char name[8];

		snprintf(name, sizeof(name), "f%u", i);
		share_write(f, name, name);
	}
	for (unsigned i = 0; i < 4; i++) {
		w[i] = (struct worker){.fs = f->fs, .index = i};
		assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
	}
	for (unsigned i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].failures, 0);
	}
}

/* ---- descriptor budget ---------------------------------------------------------------------- */

#define BUDGET 8

static struct rlimit saved_nofile;
static bool nofile_lowered;

/* Descriptors this process has open (plus a constant: ".", ".." and the listing's own). */
static unsigned open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* The process's open-file limit brought down to `room` descriptors above those open now, so
 * that a server holding more than its budget would run the whole process out of them. */
static void lower_nofile(unsigned room)
{
	struct rlimit low;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved_nofile), 0);
	low = saved_nofile;
	low.rlim_cur = open_fds() + room;
	assert_true(low.rlim_cur <= saved_nofile.rlim_cur);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	nofile_lowered = true;
}

static int fx_teardown_nofile(void **state)
{
	if (nofile_lowered)
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved_nofile), 0);
	nofile_lowered = false;
	return fx_teardown(state);
}

static void destroy_session(struct fx *f)
{
	req_start(&f->q, FUSE_DESTROY, 0);
	assert_int_equal(send_req(f), 0);
	assert_int_equal(fuse_init(f, 7, 38, 0), 0);
}

/* A guest that looks names up and never forgets them: it gets BUDGET inodes, then ENFILE,
 * and the process keeps the descriptors the budget leaves it (here: the open-file limit is
 * only a little above the budget, so that without one the lookups would take them all). */
static void test_budget_lookups(void **state)
{
	struct fx *f = *state;
	const unsigned names = BUDGET + 40;
	uint64_t ids[BUDGET], id;
	unsigned before;
	char name[16];
	int fds[8];

	for (unsigned i = 0; i < names; i++) {
		snprintf(name, sizeof(name), "f%u", i);
		share_write(f, name, name);
	}
	fx_restart(f, false, BUDGET);
	before = open_fds();
	lower_nofile(BUDGET + 16);
	for (unsigned i = 0; i < names; i++) {
		snprintf(name, sizeof(name), "f%u", i);
		if (i < BUDGET)
			ids[i] = lookup_ok(f, 1, name);
		else
			assert_int_equal(lookup(f, 1, name, &id), -ENFILE);
	}
	assert_int_equal(fd_budget_used(&f->fds), BUDGET);
	assert_int_equal(open_fds(), before + BUDGET); /* nothing leaked by the refusals */
	/* The rest of the process still gets descriptors. */
	for (unsigned i = 0; i < 8; i++) {
		fds[i] = i % 2 ? socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)
			       : open("/dev/null", O_RDONLY | O_CLOEXEC);
		assert_true(fds[i] >= 0);
	}
	for (unsigned i = 0; i < 8; i++)
		close(fds[i]);
	/* What is known already costs nothing, with the budget spent. */
	assert_int_equal(lookup_ok(f, 1, "f0"), ids[0]);
	assert_int_equal(getattr(f, FUSE_ROOT_ID, NULL), 0);
	assert_int_equal(fd_budget_used(&f->fds), BUDGET);
	/* An inode forgotten (both its lookups): room for one more. */
	assert_int_equal(forget(f, ids[0], 2), 0);
	assert_int_equal(fd_budget_used(&f->fds), BUDGET - 1);
	assert_int_equal(getattr(f, ids[0], NULL), -ESTALE);
	ids[0] = lookup_ok(f, 1, "f8");
	assert_int_equal(lookup(f, 1, "f9", &id), -ENFILE);
	assert_int_equal(fd_budget_used(&f->fds), BUDGET);
	/* DESTROY gives all back, and a new session has the whole budget again. */
	destroy_session(f);
	assert_int_equal(fd_budget_used(&f->fds), 0);
	assert_int_equal(open_fds(), before);
	for (unsigned i = 0; i < BUDGET; i++) {
		snprintf(name, sizeof(name), "f%u", names - 1 - i);
		lookup_ok(f, 1, name);
	}
	assert_int_equal(lookup(f, 1, "f0", &id), -ENFILE);
	/* So does the end of the server (fx_restart checks the budget after it). */
	fx_restart(f, false, BUDGET);
	assert_int_equal(open_fds(), before);
}

/* The index of `name` in READDIRPLUS's list `names` ("a,b,..."), or -1. */
static int name_index(const char *names, const char *name)
{
	char copy[4096], *save, *tok;
	int i = 0;

	snprintf(copy, sizeof(copy), "%s", names);
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save), i++) {
		if (strcmp(tok, name) == 0)
			return i;
	}
	return -1;
}

/* Open handles count like inodes; what needs a new one fails whole when none is left. */
static void test_budget_handles(void **state)
{
	struct fx *f = *state;
	uint64_t id, id2, fh[3], fh2, off, ids[32];
	char names[256];
	unsigned before;
	size_t n;

	share_write(f, "a", "a");
	fx_restart(f, false, 4);
	before = open_fds();
	id = lookup_ok(f, 1, "a");
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(open_node(f, FUSE_OPEN, id, O_RDONLY, &fh[i]), 0);
	assert_int_equal(fd_budget_used(&f->fds), 4);
	assert_int_equal(open_node(f, FUSE_OPEN, id, O_RDONLY, &fh2), -ENFILE);
	assert_int_equal(open_node(f, FUSE_OPENDIR, 1, O_RDONLY, &fh2), -ENFILE);
	assert_int_equal(create(f, 1, "new", O_RDWR | O_EXCL, 0644, &id2, &fh2), -ENFILE);
	assert_int_equal(mknod_(f, 1, "fifo", S_IFIFO | 0644, 0), -ENFILE);
	assert_int_equal(mknod_(f, 1, "file", S_IFREG | 0644, 0), -ENFILE);
	assert_int_equal(mkdir_(f, 1, "dir", 0755), -ENFILE);
	assert_int_equal(name_op(f, FUSE_SYMLINK, 1, NULL, 0, "lnk", "a"), -ENFILE);
	/* A new name for a node held already needs nothing. */
	assert_int_equal(link_(f, id, 1, "a2"), 0);
	assert_int_equal(((struct fuse_entry_out *)payload(f))->nodeid, id);
	assert_int_equal(fd_budget_used(&f->fds), 4);
	assert_int_equal(open_fds(), before + 4);

	/* CREATE with room for its inode but not its handle: no inode left counted. */
	assert_int_equal(release(f, FUSE_RELEASE, id, fh[0]), 0);
	assert_int_equal(fd_budget_used(&f->fds), 3);
	assert_int_equal(create(f, 1, "new2", O_RDWR | O_EXCL, 0644, &id2, &fh2), -ENFILE);
	assert_int_equal(fd_budget_used(&f->fds), 3);
	assert_int_equal(open_fds(), before + 3);
	id2 = lookup_ok(f, 1, "new2"); /* the file was made: it takes the last one */
	assert_int_equal(fd_budget_used(&f->fds), 4);
	assert_int_equal(forget(f, id2, 1), 0);

	/* READDIRPLUS with the budget spent: held nodes come with their ids, others with 0. */
	assert_int_equal(open_node(f, FUSE_OPENDIR, 1, O_RDONLY, &fh2), 0);
	assert_int_equal(fd_budget_used(&f->fds), 4);
	assert_int_equal(read_dir(f, FUSE_READDIRPLUS, fh2, 0, 4096), 0);
	n = parse_dir(payload(f), f->r.len - HDR_OUT, true, names, sizeof(names), ids, &off);
	assert_true(n <= 32);
	assert_true(name_index(names, "a") >= 0 && name_index(names, "new2") >= 0);
	assert_int_equal(ids[name_index(names, "a")], id);
	assert_int_equal(ids[name_index(names, "a2")], id);
	assert_int_equal(ids[name_index(names, "new")], 0);
	assert_int_equal(ids[name_index(names, "new2")], 0);
	assert_int_equal(fd_budget_used(&f->fds), 4);
	assert_int_equal(release(f, FUSE_RELEASEDIR, 1, fh2), 0);
	assert_int_equal(fd_budget_used(&f->fds), 3);

	destroy_session(f);
	assert_int_equal(fd_budget_used(&f->fds), 0);
	assert_int_equal(open_fds(), before);
}

/* The same on a read-only share (the guest's root file system is one). */
static void test_budget_read_only(void **state)
{
	struct fx *f = *state;
	uint64_t a, b, id, fh;

	share_write(f, "a", "a");
	share_write(f, "b", "b");
	share_write(f, "c", "c");
	fx_restart(f, true, 2);
	a = lookup_ok(f, 1, "a");
	b = lookup_ok(f, 1, "b");
	assert_int_equal(lookup(f, 1, "c", &id), -ENFILE);
	assert_int_equal(open_node(f, FUSE_OPEN, a, O_RDONLY, &fh), -ENFILE);
	assert_int_equal(open_node(f, FUSE_OPENDIR, 1, O_RDONLY, &fh), -ENFILE);
	assert_int_equal(forget(f, b, 1), 0);
	assert_int_equal(open_node(f, FUSE_OPEN, a, O_RDONLY, &fh), 0);
	assert_int_equal(read_fh(f, fh, 0, 8, NULL), 1);
	assert_int_equal(fd_budget_used(&f->fds), 2);
	destroy_session(f);
	assert_int_equal(fd_budget_used(&f->fds), 0);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)
	const struct CMUnitTest protocol[] = {
	    cmocka_unit_test_setup_teardown(test_init_negotiation, fx_setup_noinit, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_init_old_minor, fx_setup_noinit, fx_teardown),
	    T(test_destroy),
	    T(test_lookup_getattr_read),
	    T(test_readdir),
	    T(test_statfs_readlink),
	    T(test_create_write_read),
	    T(test_counters),
	    T(test_read_only_open),
	    T(test_namespace_ops),
	    T(test_setattr),
	    T(test_xattr),
	    T(test_file_ops),
	    T(test_big_io),
	    T(test_threads),
	};
	const struct CMUnitTest malformed[] = {
	    T(test_short_and_long_headers), T(test_bad_names),	   T(test_huge_sizes),
	    T(test_bad_ids_and_opcodes),    T(test_split_buffers), T(test_small_reply_buffers),
	};
	const struct CMUnitTest budget[] = {
	    cmocka_unit_test_setup_teardown(test_budget_lookups, fx_setup, fx_teardown_nofile),
	    T(test_budget_handles),
	    T(test_budget_read_only),
	};
	const struct CMUnitTest escapes[] = {
	    T(test_escape_symlinks),
	    T(test_escape_names),
	    T(test_escape_hard_link),
	    T(test_device_nodes),
	    T(test_setid_stripped),
	    T(test_read_only_share),
	    /* Last: it leaves the process in a mount namespace of its own. */
	    T(test_mount_not_crossed),
	};
	int failed = 0;

	failed |= cmocka_run_group_tests_name("protocol", protocol, NULL, NULL);
	failed |= cmocka_run_group_tests_name("malformed", malformed, NULL, NULL);
	failed |= cmocka_run_group_tests_name("budget", budget, NULL, NULL);
	failed |= cmocka_run_group_tests_name("escapes", escapes, NULL, NULL);
	return failed;
#undef T
}

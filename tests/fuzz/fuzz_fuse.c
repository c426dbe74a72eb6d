/* libFuzzer target for the FUSE server (virtio/fuse.c): the input (see fuzz_fuse.h) is a
 * sequence of requests, served one after another by a fresh server over a temporary share
 * that holds a file, a directory, symlinks to a file outside the share (absolute and
 * relative), a hard link to another outside file and a FIFO. Node ids and file handles the
 * server hands out are fed back into later requests so that the fuzzer reaches past
 * LOOKUP. Besides the sanitizers, the target checks what the server promises: the reply
 * stays inside the room given and is a well-formed header for this request; requests
 * without a reply get none; after each request, the server holds exactly the descriptors it
 * counted against its budget (none leaked, none over it), and none after a DESTROY or its
 * end; and, after each input, the outside files are unchanged, nothing new appeared outside,
 * and nothing in the share is set-id, a device, or owned by anyone but us. Inputs may run
 * with a budget of a few descriptors (ENFILE paths), and may remount mid-stream (DESTROY,
 * INIT, then the old ids and handles sent again). Sizes that would fill the host disk (FALLOCATE,
 * COPY_FILE_RANGE) are clamped here: the server leaves disk quotas to the host. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fuzz_check.h"
#include "fuzz_fuse.h"
#include "virtio/fuse.h"
#include "base/log.h"

static struct fd_budget budget;

#define HDR_IN	    sizeof(struct fuse_in_header)
#define HDR_OUT	    sizeof(struct fuse_out_header)
#define REPLY_CAP   (300 * 1024)
#define CANARY	    64
#define MAX_IOV	    4096
#define KNOWN	    12
#define CLAMP_BYTES (1 << 20)

static char base[64], share[128], outside[128];
static uint8_t req_buf[HDR_IN + FUZZ_FUSE_MAX_PAYLOAD + 64];
static uint8_t reply_buf[REPLY_CAP + CANARY];

struct run {
	struct fuse_server *fs;
	unsigned base_fds; /* open_fds() with the server made and holding nothing */
	uint64_t unique;
	uint64_t nodes[KNOWN], fhs[KNOWN];
	unsigned nnodes, nfhs;
};

static void put_file(const char *dir, const char *name, const char *content)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	CHECK(write(fd, content, strlen(content)) == (ssize_t)strlen(content));
	close(fd);
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	if (ftw->level == 0)
		return 0;
	if (type == FTW_DP)
		CHECK(rmdir(path) == 0);
	else
		CHECK(unlink(path) == 0);
	return 0;
}

static int open_up(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	/* The guest may have made a directory unreadable; we must get into it to empty it. */
	if (type == FTW_D && (st->st_mode & 0700) != 0700)
		CHECK(chmod(path, 0700) == 0);
	return 0;
}

static void cleanup(void)
{
	nftw(base, open_up, 16, FTW_PHYS);
	nftw(base, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	rmdir(base);
}

/* The share as each input starts with it. */
static void share_reset(void)
{
	char path[256], target[256];

	nftw(share, open_up, 16, FTW_PHYS);
	CHECK(nftw(share, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0);
	put_file(share, "file", "hello, world: some bytes to read\n");
	snprintf(path, sizeof(path), "%s/dir", share);
	CHECK(mkdir(path, 0755) == 0);
	put_file(path, "inner", "inner");
	snprintf(path, sizeof(path), "%s/abs", share);
	snprintf(target, sizeof(target), "%s/target", outside);
	CHECK(symlink(target, path) == 0);
	snprintf(path, sizeof(path), "%s/rel", share);
	CHECK(symlink("../outside/target", path) == 0);
	snprintf(path, sizeof(path), "%s/planted", share);
	snprintf(target, sizeof(target), "%s/secret", outside);
	CHECK(link(target, path) == 0);
	snprintf(path, sizeof(path), "%s/fifo", share);
	CHECK(mkfifo(path, 0644) == 0);
}

static void dirs_init(void)
{
	if (base[0])
		return;
	log_max_level = LOG_ERR; /* the server's warnings about refused files are expected */
	strcpy(base, "/tmp/clawvm-fuzz-fuse-XXXXXX");
	CHECK(mkdtemp(base));
	snprintf(share, sizeof(share), "%s/share", base);
	snprintf(outside, sizeof(outside), "%s/outside", base);
	CHECK(mkdir(share, 0755) == 0);
	CHECK(mkdir(outside, 0755) == 0);
	put_file(outside, "secret", "secret");
	put_file(outside, "target", "target");
	atexit(cleanup);
}

static void check_file(const char *name, const char *content)
{
	char path[256], buf[64];
	struct stat st;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", outside, name);
	CHECK(lstat(path, &st) == 0);
	CHECK(st.st_mode == (S_IFREG | 0644) && st.st_uid == geteuid());
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	CHECK(n == (ssize_t)strlen(content) && memcmp(buf, content, (size_t)n) == 0);
}

static int check_share_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)path;
	(void)type;
	(void)ftw;
	CHECK(!(st->st_mode & (S_ISUID | S_ISGID)));
	CHECK(!S_ISCHR(st->st_mode) && !S_ISBLK(st->st_mode));
	CHECK(st->st_uid == geteuid() && st->st_gid == getegid());
	return 0;
}

/* What no sequence of requests may do to the host. */
static void check_host(void)
{
	DIR *d = opendir(outside);
	struct dirent *e;
	unsigned entries = 0;

	CHECK(d);
	while ((e = readdir(d)))
		entries++;
	closedir(d);
	CHECK(entries == 4); /* ".", "..", secret, target */
	check_file("secret", "secret");
	check_file("target", "target");
	CHECK(nftw(share, check_share_entry, 16, FTW_PHYS) == 0);
}

/* Descriptors this process has open, plus a constant. */
static unsigned open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned n = 0;

	CHECK(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static uint64_t pick(const uint64_t *known, unsigned n, unsigned nibble, uint64_t first)
{
	static const uint64_t made_up[] = {0, 2, 0xffffffffffffffffULL};

	if (nibble == 0)
		return first;
	if (nibble >= FUZZ_FUSE_MADE_UP_IDS)
		return made_up[nibble - FUZZ_FUSE_MADE_UP_IDS];
	return n ? known[(nibble - 1) % n] : first;
}

static void remember(uint64_t *known, unsigned *n, uint64_t id)
{
	known[*n % KNOWN] = id;
	(*n)++;
}

static void put64(uint8_t *p, size_t len, size_t at, uint64_t value)
{
	if (at != FUZZ_FUSE_NO_FH && at + 8 <= len)
		memcpy(p + at, &value, 8);
}

static void clamp64(uint8_t *p, size_t len, size_t at, uint64_t max)
{
	uint64_t v;

	if (at + 8 > len)
		return;
	memcpy(&v, p + at, 8);
	if (v > max)
		v %= max + 1;
	memcpy(p + at, &v, 8);
}

/* Cuts [buf, buf + len) into buffers of `chunk` bytes (0: one), at most MAX_IOV. */
static unsigned cut(uint8_t *buf, size_t len, size_t chunk, struct iovec *iov)
{
	unsigned n = 0;

	if (chunk == 0)
		chunk = len ? len : 1;
	if (len / chunk >= MAX_IOV)
		chunk = len / MAX_IOV + 1;
	for (size_t at = 0; at < len; n++) {
		size_t piece = len - at < chunk ? len - at : chunk;

		iov[n] = (struct iovec){.iov_base = buf + at, .iov_len = piece};
		at += piece;
	}
	return n;
}

/* One request: built, served, the reply checked, the ids it hands out remembered. */
static void serve(struct run *r, const uint8_t rec[FUZZ_FUSE_RECORD_HEAD], const uint8_t *args,
		  size_t size)
{
	static struct iovec req_iov[MAX_IOV], reply_iov[MAX_IOV];
	const struct fuzz_fuse_op *op = rec[0] < FUZZ_FUSE_OPS ? &fuzz_fuse_ops[rec[0]] : NULL;
	uint32_t opcode = op ? op->opcode : 48 + (uint32_t)(rec[0] - FUZZ_FUSE_REMOUNT - 1);
	struct fuse_in_header in = {
	    .len = (uint32_t)(HDR_IN + size),
	    .opcode = opcode,
	    .unique = ++r->unique,
	    .nodeid = pick(r->nodes, r->nnodes, rec[1] & 15, FUSE_ROOT_ID),
	};
	size_t room = rec[3] == 0    ? REPLY_CAP
		      : rec[3] < 128 ? rec[3]
				     : (size_t)(rec[3] - 127) * 512;
	uint8_t *p = req_buf + HDR_IN;
	unsigned req_cnt, reply_cnt;
	struct fuse_out_header out;
	uint32_t ret;

	memcpy(p, args, size);
	if (op) {
		uint64_t fh = pick(r->fhs, r->nfhs, rec[1] >> 4, 0);

		put64(p, size, op->fh, fh);
		put64(p, size, op->fh2, fh);
		put64(p, size, op->node2, pick(r->nodes, r->nnodes, rec[1] >> 4, FUSE_ROOT_ID));
		if (opcode == FUSE_FALLOCATE) {
			clamp64(p, size, 8, CLAMP_BYTES);
			clamp64(p, size, 16, CLAMP_BYTES);
		} else if (opcode == FUSE_COPY_FILE_RANGE) {
			clamp64(p, size, 40, CLAMP_BYTES);
		}
	}
	if (rec[4] & 1)
		in.len += (uint32_t)(rec[4] >> 1) - 64;
	memcpy(req_buf, &in, sizeof(in));
	req_cnt = cut(req_buf, HDR_IN + size, rec[2], req_iov);
	reply_cnt = cut(reply_buf, room, rec[2] ? (size_t)rec[2] * 3 : 0, reply_iov);
	memset(reply_buf + room, 0x5a, CANARY);

	ret = fuse_server_handle(r->fs, req_iov, req_cnt, reply_iov, reply_cnt);

	/* Between requests, every descriptor the server holds is one counted, and back. */
	CHECK(fd_budget_used(&budget) <= budget.limit);
	CHECK(open_fds() == r->base_fds + fd_budget_used(&budget));
	CHECK(ret <= room);
	for (unsigned i = 0; i < CANARY; i++)
		CHECK(reply_buf[room + i] == 0x5a);
	if (opcode == FUSE_FORGET || opcode == FUSE_BATCH_FORGET || opcode == FUSE_INTERRUPT)
		CHECK(ret == 0);
	if (ret == 0) {
		/* Only requests without a reply, or a reply that does not fit a header. */
		CHECK(room < HDR_OUT || opcode == FUSE_FORGET || opcode == FUSE_BATCH_FORGET ||
		      opcode == FUSE_INTERRUPT);
		return;
	}
	CHECK(ret >= HDR_OUT);
	memcpy(&out, reply_buf, sizeof(out));
	CHECK(out.len == ret && out.unique == in.unique);
	CHECK(out.error <= 0 && out.error > -4096);
	if (out.error) {
		CHECK(ret == HDR_OUT);
		return;
	}
	CHECK(op); /* an opcode the server does not know never succeeds */
	if (opcode == FUSE_DESTROY)
		CHECK(fd_budget_used(&budget) == 0);
	if ((opcode == FUSE_LOOKUP || opcode == FUSE_MKNOD || opcode == FUSE_MKDIR ||
	     opcode == FUSE_SYMLINK || opcode == FUSE_LINK || opcode == FUSE_CREATE)) {
		struct fuse_entry_out e;

		CHECK(ret >= HDR_OUT + sizeof(e));
		memcpy(&e, reply_buf + HDR_OUT, sizeof(e));
		/* Only LOOKUP answers a miss with node id 0 (a cacheable negative entry). */
		CHECK(e.nodeid != 0 || opcode == FUSE_LOOKUP);
		if (e.nodeid)
			remember(r->nodes, &r->nnodes, e.nodeid);
	}
	if (opcode == FUSE_OPEN || opcode == FUSE_OPENDIR || opcode == FUSE_CREATE) {
		size_t at = HDR_OUT + (opcode == FUSE_CREATE ? sizeof(struct fuse_entry_out) : 0);
		struct fuse_open_out o;

		CHECK(ret == at + sizeof(o));
		memcpy(&o, reply_buf + at, sizeof(o));
		remember(r->fhs, &r->nfhs, o.fh);
	}
	if (opcode == FUSE_READ) {
		struct fuse_read_in rd = {0};

		memcpy(&rd, p, size < sizeof(rd) ? size : sizeof(rd));
		CHECK(ret - HDR_OUT <= rd.size);
	}
}

/* The INIT the guest's kernel sends first. */
static void good_init(struct run *r)
{
	static const uint8_t init_rec[FUZZ_FUSE_RECORD_HEAD] = {FUZZ_FUSE_OP_INIT};
	struct fuse_init_in init = {.major = 7, .minor = 38, .flags = 0xffffffff};

	CHECK(fuzz_fuse_ops[FUZZ_FUSE_OP_INIT].opcode == FUSE_INIT);
	serve(r, init_rec, (const uint8_t *)&init, sizeof(init));
}

/* An unmount and a mount again: everything the server held is let go, and what the guest
 * sends next may name the old ids and handles. */
static void remount(struct run *r)
{
	static const uint8_t destroy_rec[FUZZ_FUSE_RECORD_HEAD] = {FUZZ_FUSE_OP_DESTROY}, none[1];

	CHECK(fuzz_fuse_ops[FUZZ_FUSE_OP_DESTROY].opcode == FUSE_DESTROY);
	serve(r, destroy_rec, none, 0);
	CHECK(fd_budget_used(&budget) == 0);
	good_init(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run r = {0};
	unsigned fds_before;
	size_t at = 1;

	if (size < 1)
		return 0;
	dirs_init();
	share_reset();
	fd_budget_init_limit(&budget, data[0] & FUZZ_FUSE_SMALL_BUDGET ? data[0] >> 4 : 1u << 30);
	fds_before = open_fds();
	CHECK(fuse_server_create(share, data[0] & FUZZ_FUSE_READ_ONLY, &budget, &r.fs) == 0);
	r.base_fds = open_fds();
	if (!(data[0] & FUZZ_FUSE_NO_INIT))
		good_init(&r);
	while (size - at >= FUZZ_FUSE_RECORD_HEAD) {
		const uint8_t *rec = data + at;
		size_t len = (size_t)rec[5] | (size_t)rec[6] << 8;

		at += FUZZ_FUSE_RECORD_HEAD;
		if (len > size - at)
			len = size - at;
		if (len > FUZZ_FUSE_MAX_PAYLOAD)
			len = FUZZ_FUSE_MAX_PAYLOAD;
		if (rec[0] == FUZZ_FUSE_REMOUNT)
			remount(&r);
		else
			serve(&r, rec, data + at, len);
		at += len;
	}
	fuse_server_destroy(r.fs);
	CHECK(fd_budget_used(&budget) == 0);
	CHECK(open_fds() == fds_before);
	check_host();
	return 0;
}

/* Runs the FUSE fuzz target without libFuzzer (gcc builds, CI under ASan/UBSan):
 *   fuzz_fuse_replay FILE...          replays inputs (crashes, a corpus)
 *   fuzz_fuse_replay [RUNS [SEED]]    RUNS generated inputs, 500 by default
 * Generated inputs are request sequences shaped like a guest kernel's (fuzz_fuse.h): the
 * opcodes' fixed arguments with mostly small or meaningful values (open flags, modes,
 * sizes), names from the share and from the escape attempts ("..", "a/b", "/etc", too
 * long, unterminated), node ids and handles handed out earlier, now and then a wrong
 * length, a split header or a tiny reply buffer, a remount (the old ids sent again after
 * it) or a budget of a few descriptors; random bytes alone would stop at the first name
 * check and test nothing else. */
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_fuse.h"
#include "replay.h"

static uint64_t one_of(const uint64_t *values, size_t n)
{
	return values[below(n)];
}

#define ONE_OF(...)                                                                                \
	one_of((const uint64_t[]){__VA_ARGS__}, sizeof((const uint64_t[]){__VA_ARGS__}) / 8)

static void put(uint8_t *p, size_t len, size_t at, uint64_t value, unsigned bytes)
{
	for (unsigned i = 0; i < bytes && at + i < len; i++)
		p[at + i] = (uint8_t)(value >> (8 * i));
}

static const char *some_name(bool xattr)
{
	static char long_name[258];
	static const char *const names[] = {"file",    "dir",  "inner", "abs", "rel",
					    "planted", "fifo", "new",	"n2",  "..",
					    ".",       "a/b",  "/etc",	"",    NULL};
	static const char *const xattrs[] = {"user.x",
					     "user.k",
					     "trusted.overlay.opaque",
					     "security.capability",
					     "system.posix_acl_access",
					     "user."};
	size_t n = sizeof(names) / sizeof(names[0]);

	if (xattr && below(8))
		return xattrs[below(sizeof(xattrs) / sizeof(xattrs[0]))];
	if (below(16) == 0) {
		memset(long_name, 'x', sizeof(long_name) - 1);
		long_name[below(2) ? 255 : 256] = 0;
		return long_name;
	}
	return names[below(n - 1)];
}

/* A name and its NUL (now and then without it); returns the bytes written. */
static size_t put_name(uint8_t *p, size_t cap, const char *name)
{
	size_t len = strlen(name) + (below(32) ? 1 : 0);

	if (len > cap)
		len = cap;
	memcpy(p, name, len);
	return len;
}

/* The fixed arguments of `op`, mostly meaningful. */
static void gen_fixed(const struct fuzz_fuse_op *op, uint8_t *p, size_t len)
{
	uint64_t sizes = ONE_OF(0, 1, 100, 4096, 65536, 131072, 0xffffffff);

	for (size_t at = 0; at + 4 <= len; at += 4)
		put(p, len, at, below(4) ? below(64) : (below(2) ? below(65536) : rnd()), 4);
	switch (op->opcode) {
	case FUSE_OPEN:
	case FUSE_OPENDIR:
		put(p, len, 0,
		    ONE_OF(O_RDONLY, O_RDWR, O_WRONLY | O_TRUNC, O_RDONLY | O_APPEND, 3,
			   O_RDWR | O_CREAT | O_EXCL, O_RDONLY | O_DIRECTORY),
		    4);
		break;
	case FUSE_CREATE:
		put(p, len, 0, ONE_OF(O_RDWR, O_RDWR | O_EXCL, O_WRONLY | O_TRUNC, O_RDONLY), 4);
		put(p, len, 4, S_IFREG | below(010000), 4);
		break;
	case FUSE_MKNOD:
		put(p, len, 0,
		    ONE_OF(S_IFREG, S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK, S_IFDIR, 0) |
			below(010000),
		    4);
		break;
	case FUSE_MKDIR:
		put(p, len, 0, below(010000), 4);
		break;
	case FUSE_READ:
	case FUSE_READDIR:
	case FUSE_READDIRPLUS:
		put(p, len, 8, below(4) ? below(256) : rnd(), 8);
		put(p, len, 16, sizes, 4);
		break;
	case FUSE_GETXATTR:
	case FUSE_LISTXATTR:
		put(p, len, 0, sizes, 4);
		break;
	case FUSE_SETATTR:
		put(p, len, 0, rnd() & 0xfff, 4);
		put(p, len, 16, below(4) ? below(100000) : rnd(), 8);
		put(p, len, 68, below(010000), 4);
		put(p, len, 76, ONE_OF(0, 12345, 0xffffffff), 4);
		put(p, len, 80, ONE_OF(0, 12345, 0xffffffff), 4);
		break;
	case FUSE_RENAME2:
		put(p, len, 8, ONE_OF(0, 1, 2, 4, 3, 0x80), 4);
		break;
	case FUSE_INIT:
		put(p, len, 0, ONE_OF(7, 7, 6, 8), 4);
		put(p, len, 4, below(40), 4);
		break;
	case FUSE_LSEEK:
		put(p, len, 16, ONE_OF(0, 1, 2, 3, 4, 5), 4);
		break;
	case FUSE_ACCESS:
		put(p, len, 0, below(16), 4);
		break;
	case FUSE_FORGET:
		put(p, len, 0, below(4), 8);
		break;
	case FUSE_COPY_FILE_RANGE:
		put(p, len, 8, below(64), 8);
		put(p, len, 32, below(64), 8);
		put(p, len, 48, below(8) ? 0 : rnd(), 8);
		break;
	}
}

/* One record at `p` (room checked by the caller); returns its size. */
static size_t gen_record(uint8_t *p)
{
	unsigned index =
	    below(32) ? (unsigned)below(FUZZ_FUSE_OPS + 1) : FUZZ_FUSE_OPS + 1 + below(8);
	const struct fuzz_fuse_op *op = index < FUZZ_FUSE_OPS ? &fuzz_fuse_ops[index] : NULL;
	uint8_t *args = p + FUZZ_FUSE_RECORD_HEAD;
	size_t len = 0;
	unsigned node = below(3) ? 1 + (unsigned)below(8) : 0;
	unsigned fh = below(8) ? 1 + (unsigned)below(6) : (unsigned)below(16);

	if (below(32) == 0)
		node = FUZZ_FUSE_MADE_UP_IDS + (unsigned)below(3);
	p[0] = (uint8_t)index;
	p[1] = (uint8_t)(node | fh << 4);
	p[2] = below(8) ? 0 : (uint8_t)rnd();
	p[3] = below(8) ? 0 : (uint8_t)rnd();
	p[4] = below(16) ? 0 : (uint8_t)(rnd() | 1);
	if (index == FUZZ_FUSE_REMOUNT) {
		len = 0;
	} else if (op) {
		len = op->fixed;
		gen_fixed(op, args, len);
		if (op->opcode == FUSE_BATCH_FORGET) {
			unsigned count = (unsigned)below(8);

			put(args, len, 0, below(4) ? count : rnd(), 4);
			for (unsigned i = 0; i < count; i++, len += 16) {
				put(args, len + 16, len, below(2) ? 1 : rnd(), 8);
				put(args, len + 16, len + 8, below(3), 8);
			}
		}
		for (unsigned i = 0; i < op->names; i++) {
			bool xattr = op->opcode == FUSE_SETXATTR || op->opcode == FUSE_GETXATTR ||
				     op->opcode == FUSE_REMOVEXATTR;
			const char *name = op->opcode == FUSE_SYMLINK && i == 1
					       ? (below(2) ? "/etc/passwd" : "../outside/secret")
					       : some_name(xattr);

			len += put_name(args + len, 512, name);
		}
		if (op->opcode == FUSE_WRITE || op->opcode == FUSE_SETXATTR) {
			size_t data = below(4) ? below(300) : below(FUZZ_FUSE_MAX_PAYLOAD - 1024);

			if (below(8))
				put(args, len, op->opcode == FUSE_WRITE ? 16 : 0, data, 4);
			for (size_t i = 0; i < data; i++)
				args[len + i] = (uint8_t)rnd();
			len += data;
		}
	} else {
		len = below(64);
		for (size_t i = 0; i < len; i++)
			args[i] = (uint8_t)rnd();
	}
	if (below(32) == 0)
		len = below(len + 1); /* cut short */
	put(p, FUZZ_FUSE_RECORD_HEAD, 5, len, 2);
	return FUZZ_FUSE_RECORD_HEAD + len;
}

static size_t generate(uint8_t *in, size_t cap)
{
	size_t len = 1;

	in[0] = (uint8_t)(below(16) ? 0 : FUZZ_FUSE_NO_INIT) |
		(uint8_t)(below(4) ? 0 : FUZZ_FUSE_READ_ONLY);
	if (below(4) == 0)
		in[0] |= (uint8_t)(FUZZ_FUSE_SMALL_BUDGET | below(16) << 4);
	for (unsigned n = 1 + (unsigned)below(24); n > 0; n--) {
		if (cap - len < FUZZ_FUSE_RECORD_HEAD + FUZZ_FUSE_MAX_PAYLOAD + 1024)
			break;
		len += gen_record(in + len);
	}
	return len;
}

const struct replay_target replay_target = {"fuzz_fuse_replay", 1 << 18, 500, generate};

/* The input format of the FUSE server fuzz target, shared with its replay driver.
 *
 * Byte 0: flags (FUZZ_FUSE_*; with FUZZ_FUSE_SMALL_BUDGET, the high nibble is the number of
 * descriptors the server may hold). Then records of FUZZ_FUSE_RECORD_HEAD bytes and a payload:
 *   byte op      index into fuzz_fuse_ops; FUZZ_FUSE_REMOUNT (just past its end): DESTROY,
 *                then a good INIT, the ids and handles handed out before kept to be sent
 *                again, stale; further on: an opcode the server does not know
 *   byte ids     low nibble: which node id the header names (0 the root, 1..12 ids the
 *                server handed out, in order, 13..15 made-up ones); high nibble: likewise,
 *                which file handle is patched into the payload at the op's fh offsets
 *   byte split   the request cut into buffers of this many bytes (0: one buffer)
 *   byte room    the reply room: 0 all of it, 1..127 that many bytes, more: (n-127)*512
 *   byte len     bit 0: the header's len is off by (byte >> 1) - 64 from the truth
 *   le16 size    payload bytes (the arguments), capped by what the input still has
 * A record cut short ends the input. */
#ifndef CLAWVM_TESTS_FUZZ_FUSE_H
#define CLAWVM_TESTS_FUZZ_FUSE_H

#include <linux/fuse.h>
#include <stddef.h>
#include <stdint.h>

#define FUZZ_FUSE_NO_INIT      0x01 /* do not start with a good INIT */
#define FUZZ_FUSE_READ_ONLY    0x02
#define FUZZ_FUSE_SMALL_BUDGET 0x04 /* a budget of (byte 0 >> 4) descriptors, not unlimited */
#define FUZZ_FUSE_RECORD_HEAD  7
#define FUZZ_FUSE_MAX_PAYLOAD  8192
#define FUZZ_FUSE_NO_FH	       0xff
#define FUZZ_FUSE_MADE_UP_IDS  13 /* nibble values from here on name made-up ids */

/* What the target knows of each opcode: the size of its fixed arguments, how many names
 * follow, and where file handles (fh, fh2) and a second node id (node2) sit in them. */
struct fuzz_fuse_op {
	uint32_t opcode;
	uint16_t fixed;
	uint8_t names;
	uint8_t fh, fh2, node2;
};

static const struct fuzz_fuse_op fuzz_fuse_ops[] = {
    {FUSE_LOOKUP, 0, 1, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH},
    {FUSE_FORGET, sizeof(struct fuse_forget_in), 0, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH,
     FUZZ_FUSE_NO_FH},
    {FUSE_GETATTR, sizeof(struct fuse_getattr_in), 0, 8, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH},
    {FUSE_SETATTR, sizeof(struct fuse_setattr_in), 0, 8, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH},
    {FUSE_READLINK, 0, 0, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH},
    {FUSE_SYMLINK, 0, 2, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH},
    {FUSE_MKNOD, sizeof(struct fuse_mknod_in), 1, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH,
     FUZZ_FUSE_NO_FH},
    {FUSE_MKDIR, sizeof(struct fuse_mkdir_in), 1, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH,
     FUZZ_FUSE_NO_FH},
    {FUSE_UNLINK, 0, 1, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH},
    {FUSE_RMDIR, 0, 1, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH},
    {FUSE_RENAME, sizeof(struct fuse_rename_in), 2, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH, 0},
    {FUSE_RENAME2, sizeof(struct fuse_rename2_in), 2, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH, 0},
    {FUSE_LINK, sizeof(struct fuse_link_in), 1, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH, 0},
    {FUSE_OPEN, sizeof(struct fuse_open_in), 0, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH},
    {FUSE_READ, sizeof(struct fuse_read_in), 0, 0, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH},
    {FUSE_WRITE, sizeof(struct fuse_write_in), 0, 0, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH},
    {FUSE_STATFS, 0, 0, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH},
    {FUSE_RELEASE, sizeof(struct fuse_release_in), 0, 0, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH},
    {FUSE_FSYNC, sizeof(struct fuse_fsync_in), 0, 0, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH},
    {FUSE_SETXATTR, FUSE_COMPAT_SETXATTR_IN_SIZE, 1, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH,
     FUZZ_FUSE_NO_FH},
    {FUSE_GETXATTR, sizeof(struct fuse_getxattr_in), 1, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH,
     FUZZ_FUSE_NO_FH},
    {FUSE_LISTXATTR, sizeof(struct fuse_getxattr_in), 0, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH,
     FUZZ_FUSE_NO_FH},
    {FUSE_REMOVEXATTR, 0, 1, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH},
    {FUSE_FLUSH, sizeof(struct fuse_flush_in), 0, 0, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH},
    {FUSE_INIT, sizeof(struct fuse_init_in), 0, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH},
    {FUSE_OPENDIR, sizeof(struct fuse_open_in), 0, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH,
     FUZZ_FUSE_NO_FH},
    {FUSE_READDIR, sizeof(struct fuse_read_in), 0, 0, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH},
    {FUSE_RELEASEDIR, sizeof(struct fuse_release_in), 0, 0, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH},
    {FUSE_FSYNCDIR, sizeof(struct fuse_fsync_in), 0, 0, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH},
    {FUSE_ACCESS, sizeof(struct fuse_access_in), 0, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH,
     FUZZ_FUSE_NO_FH},
    {FUSE_CREATE, sizeof(struct fuse_create_in), 1, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH,
     FUZZ_FUSE_NO_FH},
    {FUSE_INTERRUPT, sizeof(struct fuse_interrupt_in), 0, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH,
     FUZZ_FUSE_NO_FH},
    {FUSE_DESTROY, 0, 0, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH},
    {FUSE_BATCH_FORGET, sizeof(struct fuse_batch_forget_in), 0, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH,
     FUZZ_FUSE_NO_FH},
    {FUSE_FALLOCATE, sizeof(struct fuse_fallocate_in), 0, 0, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH},
    {FUSE_READDIRPLUS, sizeof(struct fuse_read_in), 0, 0, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH},
    {FUSE_LSEEK, sizeof(struct fuse_lseek_in), 0, 0, FUZZ_FUSE_NO_FH, FUZZ_FUSE_NO_FH},
    {FUSE_COPY_FILE_RANGE, sizeof(struct fuse_copy_file_range_in), 0, 0, 24, 16},
};

#define FUZZ_FUSE_OPS	     (sizeof(fuzz_fuse_ops) / sizeof(fuzz_fuse_ops[0]))
#define FUZZ_FUSE_REMOUNT    FUZZ_FUSE_OPS
#define FUZZ_FUSE_OP_INIT    24 /* indices into fuzz_fuse_ops */
#define FUZZ_FUSE_OP_DESTROY 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif

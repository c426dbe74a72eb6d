/* The shared folders of a guest (virtio-fs): the /clawvm/mounts records the VMM wrote
 * (guest_abi.h), checked, then mounted — the root share under an overlay with a tmpfs upper
 * layer, switched into before any other share is mounted in it. */
#ifndef CLAWVM_GUEST_INIT_SHARES_H
#define CLAWVM_GUEST_INIT_SHARES_H

#include <stdbool.h>
#include <stddef.h>

#define SHARES_MAX 16

struct share {
	const char *tag;  /* virtio-fs tag */
	const char *path; /* absolute guest path; "/" is the root */
	bool read_only;
};

/* Groups `count` strings (tag, path, "ro"/"rw" per record) into shares. Refuses a count
 * that is not a multiple of three, an empty or over-long tag, a path that is not absolute
 * or holds `.`/`..` components, an option other than ro/rw, a root share that is not the
 * first or not read-only, and more than `cap` records. 0, or -EINVAL with a message. */
__attribute__((warn_unused_result)) int shares_parse(char *const *strings, size_t count,
						     struct share *out, size_t cap, size_t *n,
						     char *err, size_t err_len);

/* Mounts the shares. With a root share: overlay root in /clawvm/root, the other shares in
 * it, then /dev, /proc, /sys, /tmp and /run moved along and the root switched. PID 1 only.
 * 0, or -errno with a message naming what failed. */
__attribute__((warn_unused_result)) int shares_mount(const struct share *shares, size_t n,
						     char *err, size_t err_len);

#endif

/* What the VMM hands guest-init (the shares to mount, the egress ports) as a small newc
 * cpio archive appended to the guest image (the kernel unpacks concatenated archives in
 * order). Every file is a list of NUL-terminated strings. */
#ifndef CLAWVM_INITRD_H
#define CLAWVM_INITRD_H

#include <stddef.h>
#include <stdint.h>

/* A file of the archive: `name` below clawvm/ (such as "clawvm/mounts"), holding each of
 * `strings` (NULL-terminated) with its NUL. */
struct initrd_file {
	const char *name;
	char *const *strings;
};

/* Bytes initrd_archive() writes for these files. */
size_t initrd_archive_size(const struct initrd_file *files, unsigned count);

/* Writes the archive (directory clawvm/, the files, trailer) into `dst`, which holds `cap`
 * bytes; returns the bytes written, or 0 if `cap` is too small. The archive starts and ends
 * 4-byte aligned. */
size_t initrd_archive(uint8_t *dst, size_t cap, const struct initrd_file *files, unsigned count);

#endif

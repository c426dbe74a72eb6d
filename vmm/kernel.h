/* Loading a guest kernel image into guest RAM: an ELF vmlinux (with or without the PVH
 * note) or a bzImage. Pure: works on a file already in memory, so tests and fuzzers can
 * feed it anything. */
#ifndef CLAWVM_KERNEL_H
#define CLAWVM_KERNEL_H

#include <asm/bootparam.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/guest_mem.h"

enum kernel_kind { KERNEL_ELF, KERNEL_BZIMAGE };

struct kernel_image {
	enum kernel_kind kind;
	uint64_t entry64;	 /* 64-bit entry point (ELF e_entry, or bzImage load + 0x200) */
	bool has_pvh;		 /* ELF carries XEN_ELFNOTE_PHYS32_ENTRY */
	uint32_t pvh_entry;	 /* 32-bit PVH entry point, when has_pvh */
	uint64_t start;		 /* lowest guest-physical byte the kernel occupies */
	uint64_t end;		 /* one past the highest (bzImage: load + init_size) */
	struct setup_header hdr; /* bzImage only: its setup header, to seed boot_params */
};

/* Loads `image` (size bytes) into guest RAM. `name` is used in error messages. */
__attribute__((warn_unused_result)) int kernel_load(struct guest_mem *gm, const uint8_t *image,
						    size_t size, const char *name,
						    struct kernel_image *out);

#endif

/* Guest RAM: one anonymous mapping, split into at most two guest-physical regions around
 * the 32-bit MMIO hole. Every access from the VMM goes through gm_ptr(). */
#ifndef CLAWVM_GUEST_MEM_H
#define CLAWVM_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GM_MAX_REGIONS 2
/* The 32-bit MMIO hole of an x86 PC (IOAPIC, LAPIC, virtio-mmio): RAM that would reach
 * above its start moves to its end, at 4 GiB. vmm/layout.h places the machine by it. */
#define GM_MMIO_HOLE	 0xc0000000ULL
#define GM_MMIO_HOLE_END 0x100000000ULL

struct gm_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t offset; /* into the host mapping */
};

struct guest_mem {
	bool owned;    /* mapped by gm_create; false for a caller-provided buffer */
	uint8_t *host; /* mapping of all of guest RAM, regions back to back */
	uint64_t size;
	unsigned nr_regions;
	struct gm_region regions[GM_MAX_REGIONS];
};

/* Guest RAM of `size` bytes, zeroed, in a fresh mapping. */
__attribute__((warn_unused_result)) int gm_create(struct guest_mem *gm, uint64_t size);
/* Guest RAM over a buffer the caller owns (tests, fuzzers). */
void gm_init_buffer(struct guest_mem *gm, void *buf, uint64_t size);
void gm_destroy(struct guest_mem *gm);

/* Host pointer to [gpa, gpa+len) if all of it is guest RAM inside one region, else NULL. */
void *gm_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len);

/* madvise(advice) over the pages that hold [addr, addr+len); best effort, errors ignored. */
void madvise_pages(const void *addr, size_t len, int advice);

/* Asks the host to back [gpa, gpa+len) now, in one call, before the VMM fills it: a
 * page fault per 4 KiB of kernel and initrd costs more than the copy itself. Best effort. */
void gm_prefault(const struct guest_mem *gm, uint64_t gpa, uint64_t len);

/* Bytes of guest RAM resident in the host now (what the guest, or the VMM loading it,
 * touched and the host has not swapped out), in pages: one mincore() per region. A page
 * the guest only read may be the shared zero page, and counts. Thread-safe. 0, or a
 * negative errno. */
__attribute__((warn_unused_result)) int gm_resident(const struct guest_mem *gm, uint64_t *bytes);

/* End of the RAM region below the MMIO hole (where the initrd goes). */
uint64_t gm_low_end(const struct guest_mem *gm);

#endif

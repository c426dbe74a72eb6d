/* Guest RAM in one private anonymous mapping, and the one checked accessor every guest
 * address goes through. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/guest_mem.h"
#include "base/log.h"

static void gm_split(struct guest_mem *gm)
{
	uint64_t low = gm->size < GM_MMIO_HOLE ? gm->size : GM_MMIO_HOLE;

	gm->nr_regions = 1;
	gm->regions[0] = (struct gm_region){.gpa = 0, .size = low, .offset = 0};
	if (gm->size > low) {
		gm->nr_regions = 2;
		gm->regions[1] = (struct gm_region){
		    .gpa = GM_MMIO_HOLE_END, .size = gm->size - low, .offset = low};
	}
}

int gm_create(struct guest_mem *gm, uint64_t size)
{
	void *host;

	/* Private anonymous memory, not a memfd: first touches of guest RAM (the kernel
	 * initialising its page array, then every page it hands out) are anonymous faults,
	 * the host's cheapest, and may be transparent huge pages, which also cut the nested
	 * page table walks. NORESERVE: memory the guest never touches costs nothing. */
	host = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		    -1, 0);
	if (host == MAP_FAILED) {
		int err = errno;

		log_err("guest memory: cannot map %llu MiB: %m", (unsigned long long)(size >> 20));
		return -err;
	}
	/* Best effort: hosts without THP, or with it off, say EINVAL. */
	madvise(host, size, MADV_HUGEPAGE);
	gm->owned = true;
	gm->host = host;
	gm->size = size;
	gm_split(gm);
	return 0;
}

void gm_init_buffer(struct guest_mem *gm, void *buf, uint64_t size)
{
	gm->owned = false;
	gm->host = buf;
	gm->size = size;
	gm_split(gm);
}

void gm_destroy(struct guest_mem *gm)
{
	if (gm->owned)
		munmap(gm->host, gm->size);
	memset(gm, 0, sizeof(*gm));
}

void *gm_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	uint64_t end;

	if (__builtin_add_overflow(gpa, len, &end))
		return NULL;
	for (unsigned i = 0; i < gm->nr_regions; i++) {
		const struct gm_region *r = &gm->regions[i];

		if (gpa >= r->gpa && end <= r->gpa + r->size)
			return gm->host + r->offset + (gpa - r->gpa);
	}
	return NULL;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

void madvise_pages(const void *addr, size_t len, int advice)
{
	long page = sysconf(_SC_PAGESIZE);
	uintptr_t start, end;

	if (len == 0 || page <= 0)
		return;
	start = (uintptr_t)addr & ~((uintptr_t)page - 1);
	end = ((uintptr_t)addr + len + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
	madvise((void *)start, end - start, advice);
}

void gm_prefault(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	uint8_t *host = gm_ptr(gm, gpa, len);

	/* Older hosts say EINVAL: the copy then faults the pages in as it goes. */
	if (host && gm->owned)
		madvise_pages(host, len, MADV_POPULATE_WRITE);
}

int gm_resident(const struct guest_mem *gm, uint64_t *bytes)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), largest = 0, pages = 0;
	unsigned char *vec;

	/* Pages, so a caller's buffer may start or end mid-page: whole pages around it. */
	for (unsigned i = 0; i < gm->nr_regions; i++)
		if (gm->regions[i].size / page + 2 > largest)
			largest = gm->regions[i].size / page + 2;
	vec = malloc(largest ? largest : 1);
	if (!vec)
		return -ENOMEM;
	for (unsigned i = 0; i < gm->nr_regions; i++) {
		const struct gm_region *r = &gm->regions[i];
		uintptr_t start = (uintptr_t)(gm->host + r->offset) & ~(uintptr_t)(page - 1);
		uintptr_t end = ((uintptr_t)(gm->host + r->offset + r->size) + page - 1) &
				~(uintptr_t)(page - 1);

		if (mincore((void *)start, end - start, vec) < 0) {
			int err = errno;

			free(vec);
			return -err;
		}
		for (uint64_t p = 0; p < (end - start) / page; p++)
			pages += vec[p] & 1;
	}
	free(vec);
	*bytes = pages * page;
	return 0;
}

uint64_t gm_low_end(const struct guest_mem *gm)
{
	return gm->regions[0].size;
}

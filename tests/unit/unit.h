/* Shared by the unit tests: the cmocka includes in the order cmocka needs, and fake guest
 * RAM. Small RAM is a heap buffer of exactly its size, so that ASan catches any byte
 * written or read past it; RAM above 3 GiB is a sparse anonymous mapping. */
#ifndef CLAWVM_TESTS_UNIT_H
#define CLAWVM_TESTS_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "base/fd_budget.h"
#include "base/guest_mem.h"
#include "vmm/layout.h"

#define TEST_RAM_SIZE (64 * MiB)

/* Guest RAM on the heap, every byte set to `fill` so that untouched bytes can be told from
 * written ones. */
static inline void fake_ram_init(struct guest_mem *gm, uint64_t size, uint8_t fill)
{
	uint8_t *buf = malloc(size);

	assert_non_null(buf);
	memset(buf, fill, size);
	gm_init_buffer(gm, buf, size);
}

static inline void fake_ram_free(struct guest_mem *gm)
{
	free(gm->host);
	gm->host = NULL;
}

/* cmocka fixtures: *state becomes fake RAM of `size` bytes filled with `fill`. */
static inline int fake_ram_fixture(void **state, uint64_t size, uint8_t fill)
{
	struct guest_mem *gm = malloc(sizeof(*gm));

	assert_non_null(gm);
	fake_ram_init(gm, size, fill);
	*state = gm;
	return 0;
}

static inline int fake_ram_fixture_free(void **state)
{
	struct guest_mem *gm = *state;

	fake_ram_free(gm);
	free(gm);
	return 0;
}

/* Guest RAM of several GiB that costs nothing until touched (reads as zeros). */
static inline void sparse_ram_init(struct guest_mem *gm, uint64_t size)
{
	void *buf = mmap(NULL, size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	assert_true(buf != MAP_FAILED);
	gm_init_buffer(gm, buf, size);
}

static inline void sparse_ram_free(struct guest_mem *gm)
{
	munmap(gm->host, gm->size);
	gm->host = NULL;
}

/* Whether every byte of [p, p+len) is `value`. */
static inline int all_bytes(const void *p, size_t len, uint8_t value)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < len; i++) {
		if (b[i] != value)
			return 0;
	}
	return 1;
}

/* A descriptor budget no test reaches unless it means to. */
__attribute__((unused)) static struct fd_budget unlimited_fds = {.limit = 1u << 30};

#endif

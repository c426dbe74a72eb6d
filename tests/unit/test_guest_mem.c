/* gm_ptr(), the one checked way to guest RAM: exact bounds, overflowing ranges, the MMIO
 * hole between 3 and 4 GiB, and the high region that guest RAM above 3 GiB moves to. */
#include "unit.h"

#include <unistd.h>

static void small_ram_is_one_region(void **state)
{
	struct guest_mem gm;

	(void)state;
	fake_ram_init(&gm, TEST_RAM_SIZE, 0);
	assert_false(gm.owned);
	assert_int_equal(gm.nr_regions, 1);
	assert_int_equal(gm.regions[0].gpa, 0);
	assert_int_equal(gm.regions[0].size, TEST_RAM_SIZE);
	assert_int_equal(gm_low_end(&gm), TEST_RAM_SIZE);
	fake_ram_free(&gm);
}

static void ptr_bounds_in_small_ram(void **state)
{
	struct guest_mem gm;
	uint8_t *host;

	(void)state;
	fake_ram_init(&gm, TEST_RAM_SIZE, 0);
	host = gm.host;
	assert_ptr_equal(gm_ptr(&gm, 0, 1), host);
	assert_ptr_equal(gm_ptr(&gm, 0, TEST_RAM_SIZE), host);
	assert_ptr_equal(gm_ptr(&gm, 0x1234, 16), host + 0x1234);
	/* The last byte is RAM, the one after it is not. */
	assert_ptr_equal(gm_ptr(&gm, TEST_RAM_SIZE - 1, 1), host + TEST_RAM_SIZE - 1);
	assert_null(gm_ptr(&gm, TEST_RAM_SIZE - 1, 2));
	assert_null(gm_ptr(&gm, TEST_RAM_SIZE, 1));
	assert_null(gm_ptr(&gm, 0, TEST_RAM_SIZE + 1));
	assert_null(gm_ptr(&gm, 4 * GiB, 1));
	fake_ram_free(&gm);
}

static void ptr_refuses_overflowing_ranges(void **state)
{
	struct guest_mem gm;

	(void)state;
	fake_ram_init(&gm, TEST_RAM_SIZE, 0);
	/* gpa + len wraps to a small number that a naive check would accept. */
	assert_null(gm_ptr(&gm, UINT64_MAX, 2));
	assert_null(gm_ptr(&gm, 0x1000, UINT64_MAX));
	assert_null(gm_ptr(&gm, 0x1000, UINT64_MAX - 0xfff));
	assert_null(gm_ptr(&gm, UINT64_MAX, 1));
	assert_null(gm_ptr(&gm, UINT64_MAX, 0));
	fake_ram_free(&gm);
}

static void large_ram_splits_around_mmio_hole(void **state)
{
	struct guest_mem gm;

	(void)state;
	sparse_ram_init(&gm, 5 * GiB);
	assert_int_equal(gm.nr_regions, 2);
	assert_int_equal(gm.regions[0].gpa, 0);
	assert_int_equal(gm.regions[0].size, 3 * GiB);
	assert_int_equal(gm.regions[1].gpa, 4 * GiB);
	assert_int_equal(gm.regions[1].size, 2 * GiB);
	assert_int_equal(gm.regions[1].offset, 3 * GiB);
	assert_int_equal(gm_low_end(&gm), 3 * GiB);
	sparse_ram_free(&gm);
}

static void ptr_in_large_ram(void **state)
{
	struct guest_mem gm;
	uint8_t *host;

	(void)state;
	sparse_ram_init(&gm, 5 * GiB);
	host = gm.host;
	assert_ptr_equal(gm_ptr(&gm, 3 * GiB - 1, 1), host + 3 * GiB - 1);
	/* The MMIO hole is not RAM, and no range may span it. */
	assert_null(gm_ptr(&gm, 3 * GiB - 1, 2));
	assert_null(gm_ptr(&gm, 3 * GiB, 1));
	assert_null(gm_ptr(&gm, LAYOUT_IOAPIC, 4));
	assert_null(gm_ptr(&gm, 4 * GiB - 1, 1));
	assert_null(gm_ptr(&gm, 4 * GiB - 1, 2));
	assert_null(gm_ptr(&gm, 3 * GiB - 4096, GiB + 8192));
	/* RAM resumes at 4 GiB, backed by the host bytes right after the low region. */
	assert_ptr_equal(gm_ptr(&gm, 4 * GiB, 1), host + 3 * GiB);
	assert_ptr_equal(gm_ptr(&gm, 4 * GiB, 2 * GiB), host + 3 * GiB);
	assert_ptr_equal(gm_ptr(&gm, 6 * GiB - 1, 1), host + 5 * GiB - 1);
	assert_null(gm_ptr(&gm, 6 * GiB - 1, 2));
	assert_null(gm_ptr(&gm, 6 * GiB, 1));
	assert_null(gm_ptr(&gm, 4 * GiB, 2 * GiB + 1));
	/* A gpa inside the high region, len wrapping. */
	assert_null(gm_ptr(&gm, 5 * GiB, UINT64_MAX - 5 * GiB + 2));
	sparse_ram_free(&gm);
}

static void exactly_3gib_is_one_region(void **state)
{
	struct guest_mem gm;

	(void)state;
	sparse_ram_init(&gm, 3 * GiB);
	assert_int_equal(gm.nr_regions, 1);
	assert_int_equal(gm_low_end(&gm), 3 * GiB);
	assert_non_null(gm_ptr(&gm, 3 * GiB - 1, 1));
	assert_null(gm_ptr(&gm, 3 * GiB, 1));
	assert_null(gm_ptr(&gm, 4 * GiB, 1));
	sparse_ram_free(&gm);
}

static void create_ram(void **state)
{
	struct guest_mem gm;
	uint8_t *high;

	(void)state;
	assert_int_equal(gm_create(&gm, 5 * GiB), 0);
	assert_true(gm.owned);
	assert_int_equal(gm.size, 5 * GiB);
	assert_int_equal(gm.nr_regions, 2);
	assert_int_equal(gm_low_end(&gm), 3 * GiB);
	high = gm_ptr(&gm, 4 * GiB + 4096, 4);
	assert_ptr_equal(high, gm.host + 3 * GiB + 4096);
	/* The mapping starts zeroed and is writable. */
	assert_true(all_bytes(high, 4, 0));
	memcpy(high, "claw", 4);
	assert_memory_equal(gm.host + 3 * GiB + 4096, "claw", 4);
	gm_destroy(&gm);
	assert_false(gm.owned);
	assert_null(gm.host);
	assert_int_equal(gm.nr_regions, 0);
	assert_null(gm_ptr(&gm, 0, 1));
}

/* What the guest touched, page by page, in both regions: exact, and only that. Huge pages
 * are off for the mapping, or one touched byte could make 2 MiB resident. */
static void resident_counts_touched_pages(void **state)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), bytes = 1;
	struct guest_mem gm;

	(void)state;
	assert_int_equal(gm_create(&gm, 3 * GiB + 64 * MiB), 0);
	assert_int_equal(madvise(gm.host, gm.size, MADV_NOHUGEPAGE), 0);
	assert_int_equal(gm_resident(&gm, &bytes), 0);
	assert_int_equal(bytes, 0);
	*(uint8_t *)gm_ptr(&gm, 0, 1) = 1;
	memset(gm_ptr(&gm, 16 * page - 1, 2), 1, 2); /* one write, two pages */
	*(uint8_t *)gm_ptr(&gm, 3 * GiB - 1, 1) = 1; /* the low region's last byte */
	*(uint8_t *)gm_ptr(&gm, 4 * GiB + 5 * page, 1) = 1;
	assert_int_equal(gm_resident(&gm, &bytes), 0);
	assert_int_equal(bytes, 5 * page);
	/* Given back to the host: no longer counted. */
	assert_int_equal(madvise(gm_ptr(&gm, 0, page), page, MADV_DONTNEED), 0);
	assert_int_equal(gm_resident(&gm, &bytes), 0);
	assert_int_equal(bytes, 4 * page);
	gm_destroy(&gm);
}

/* A caller's buffer need not be page-aligned: the pages around it are looked at. */
static void resident_of_a_buffer(void **state)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), bytes = 0;
	uint8_t *map =
	    mmap(NULL, 8 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct guest_mem gm;

	(void)state;
	assert_true(map != MAP_FAILED);
	assert_int_equal(madvise(map, 8 * page, MADV_NOHUGEPAGE), 0);
	gm_init_buffer(&gm, map + 100, 4 * page);
	map[2 * page] = 1;
	assert_int_equal(gm_resident(&gm, &bytes), 0);
	assert_int_equal(bytes, page);
	munmap(map, 8 * page);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(small_ram_is_one_region),
	    cmocka_unit_test(ptr_bounds_in_small_ram),
	    cmocka_unit_test(ptr_refuses_overflowing_ranges),
	    cmocka_unit_test(large_ram_splits_around_mmio_hole),
	    cmocka_unit_test(ptr_in_large_ram),
	    cmocka_unit_test(exactly_3gib_is_one_region),
	    cmocka_unit_test(create_ram),
	    cmocka_unit_test(resident_counts_touched_pages),
	    cmocka_unit_test(resident_of_a_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

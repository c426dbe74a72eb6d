/* The MP table read back the way Linux's mpparse.c reads it: floating pointer in the EBDA,
 * checksums, then the entries one by one. Offsets are from the MultiProcessor
 * Specification 1.4, not from vmm/mptable.c. */
#include "unit.h"

#include <errno.h>

#include "vmm/mptable.h"

#define FILL	     0x5c
#define MPC_HEADER   44
#define MP_PROCESSOR 0
#define MP_BUS	     1
#define MP_IOAPIC    2
#define MP_INTSRC    3
#define MP_LINTSRC   4

static int ram_setup(void **state)
{
	return fake_ram_fixture(state, 2 * MiB, FILL);
}

static int ram_teardown(void **state)
{
	return fake_ram_fixture_free(state);
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint8_t byte_sum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	while (len--)
		sum += *p++;
	return sum;
}

static void check_table(const struct guest_mem *gm, unsigned cpus)
{
	const uint8_t *mpf = gm_ptr(gm, LAYOUT_EBDA, 16), *mpc, *p, *end;
	unsigned counts[5] = {0}, entries, next_irq = 0, next_lint = 0;
	uint32_t physptr;
	uint16_t len;
	int bus_id = -1;

	/* Floating pointer structure. */
	assert_memory_equal(mpf, "_MP_", 4);
	assert_int_equal(mpf[8], 1); /* length in paragraphs */
	assert_int_equal(mpf[9], 4); /* spec 1.4 */
	assert_int_equal(byte_sum(mpf, 16), 0);
	assert_int_equal(mpf[11], 0); /* feature 1: 0, a configuration table is present */
	physptr = le32(mpf + 4);
	assert_true(physptr >= LAYOUT_EBDA + 16);

	/* Configuration table header. */
	mpc = gm_ptr(gm, physptr, MPC_HEADER);
	assert_non_null(mpc);
	assert_memory_equal(mpc, "PCMP", 4);
	len = le16(mpc + 4);
	assert_true(physptr + len <= LAYOUT_EBDA_END);
	mpc = gm_ptr(gm, physptr, len);
	assert_non_null(mpc);
	assert_int_equal(mpc[6], 4);
	assert_int_equal(byte_sum(mpc, len), 0);
	assert_int_equal(le32(mpc + 36), LAYOUT_LAPIC);
	entries = le16(mpc + 34);
	assert_int_equal(entries, cpus + 1 + 1 + 24 + 2);
	assert_int_equal(le16(mpc + 40), 0); /* no extended table */

	/* Entries, walked by their type as the kernel does. */
	p = mpc + MPC_HEADER;
	end = mpc + len;
	for (unsigned i = 0; i < entries; i++) {
		assert_true(p < end);
		switch (p[0]) {
		case MP_PROCESSOR:
			assert_true(p + 20 <= end);
			assert_int_equal(p[1], counts[MP_PROCESSOR]); /* APIC id = index */
			assert_true(p[3] & 1);			      /* enabled */
			assert_int_equal(!!(p[3] & 2), counts[MP_PROCESSOR] == 0); /* BSP */
			counts[MP_PROCESSOR]++;
			p += 20;
			break;
		case MP_BUS:
			assert_true(p + 8 <= end);
			assert_memory_equal(p + 2, "ISA   ", 6);
			bus_id = p[1];
			counts[MP_BUS]++;
			p += 8;
			break;
		case MP_IOAPIC:
			assert_true(p + 8 <= end);
			assert_int_equal(p[1], cpus); /* after the CPUs' APIC ids */
			assert_true(p[3] & 1);
			assert_int_equal(le32(p + 4), LAYOUT_IOAPIC);
			counts[MP_IOAPIC]++;
			p += 8;
			break;
		case MP_INTSRC:
			assert_true(p + 8 <= end);
			assert_int_equal(p[1], 0); /* vectored interrupt */
			assert_int_equal(le16(p + 2), 0);
			assert_int_equal(p[4], bus_id);
			assert_int_equal(p[5], next_irq);
			assert_int_equal(p[6], cpus);
			assert_int_equal(p[7], next_irq);
			next_irq++;
			counts[MP_INTSRC]++;
			p += 8;
			break;
		case MP_LINTSRC:
			assert_true(p + 8 <= end);
			/* ExtINT to LINT0, then NMI to LINT1, on every local APIC. */
			assert_int_equal(p[1], next_lint == 0 ? 3 : 1);
			assert_int_equal(p[6], 0xff);
			assert_int_equal(p[7], next_lint);
			next_lint++;
			counts[MP_LINTSRC]++;
			p += 8;
			break;
		default:
			fail_msg("entry %u has type %u", i, p[0]);
		}
	}
	assert_ptr_equal(p, end);
	assert_int_equal(counts[MP_PROCESSOR], cpus);
	assert_int_equal(counts[MP_BUS], 1);
	assert_int_equal(counts[MP_IOAPIC], 1);
	assert_int_equal(counts[MP_INTSRC], 24);
	assert_int_equal(counts[MP_LINTSRC], 2);

	/* Nothing outside the table was written. */
	assert_true(all_bytes(gm->host, LAYOUT_EBDA, FILL));
	assert_true(all_bytes(end, LAYOUT_EBDA_END - (physptr + len), FILL));
}

static void one_cpu(void **state)
{
	assert_int_equal(mptable_write(*state, 1), 0);
	check_table(*state, 1);
}

static void two_cpus(void **state)
{
	assert_int_equal(mptable_write(*state, 2), 0);
	check_table(*state, 2);
}

static void max_cpus(void **state)
{
	assert_int_equal(mptable_write(*state, MPTABLE_MAX_CPUS), 0);
	check_table(*state, 32);
}

static void every_count(void **state)
{
	struct guest_mem *gm = *state;

	for (unsigned cpus = 1; cpus <= MPTABLE_MAX_CPUS; cpus++) {
		memset(gm->host, FILL, gm->size);
		assert_int_equal(mptable_write(gm, cpus), 0);
		check_table(gm, cpus);
	}
}

static void refused_counts(void **state)
{
	struct guest_mem *gm = *state;

	assert_int_equal(mptable_write(gm, 0), -E2BIG);
	assert_int_equal(mptable_write(gm, MPTABLE_MAX_CPUS + 1), -E2BIG);
	assert_int_equal(mptable_write(gm, 255), -E2BIG);
	assert_int_equal(mptable_write(gm, UINT32_MAX), -E2BIG);
	assert_true(all_bytes(gm->host, gm->size, FILL));
}

static void ram_without_ebda(void **state)
{
	struct guest_mem gm;

	(void)state;
	fake_ram_init(&gm, LAYOUT_EBDA + 64, FILL);
	assert_int_equal(mptable_write(&gm, 1), -ENOMEM);
	assert_true(all_bytes(gm.host, gm.size, FILL));
	fake_ram_free(&gm);
}

#define RAM_TEST(f) cmocka_unit_test_setup_teardown(f, ram_setup, ram_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    RAM_TEST(one_cpu),	   RAM_TEST(two_cpus),	     RAM_TEST(max_cpus),
	    RAM_TEST(every_count), RAM_TEST(refused_counts), cmocka_unit_test(ram_without_ebda),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

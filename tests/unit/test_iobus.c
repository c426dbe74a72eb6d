/* Port I/O dispatch: overlapping claims, unclaimed ports, accesses that straddle a
 * device's edges, and the offsets and values a device is handed. */
#include "unit.h"

#include <errno.h>

#include "vmm/iobus.h"

struct fake_dev {
	unsigned reads, writes;
	uint16_t offset;
	unsigned size;
	uint32_t value;
};

static uint32_t fake_read(void *opaque, uint16_t offset, unsigned size)
{
	struct fake_dev *d = opaque;

	d->reads++;
	d->offset = offset;
	d->size = size;
	return 0x44332211u + offset; /* distinct per offset, little-endian bytes 11 22 33 44 */
}

static void fake_write(void *opaque, uint16_t offset, unsigned size, uint32_t value)
{
	struct fake_dev *d = opaque;

	d->writes++;
	d->offset = offset;
	d->size = size;
	d->value = value;
}

static const struct io_device_ops fake_ops = {.read = fake_read, .write = fake_write};

static void add_refuses_overlap(void **state)
{
	struct fake_dev d = {0};
	struct iobus bus = {0};

	(void)state;
	assert_int_equal(iobus_add(&bus, 0x3f8, 8, &fake_ops, &d), 0);
	assert_int_equal(iobus_add(&bus, 0x3f8, 8, &fake_ops, &d), -EBUSY);
	assert_int_equal(iobus_add(&bus, 0x3ff, 2, &fake_ops, &d), -EBUSY);    /* last byte */
	assert_int_equal(iobus_add(&bus, 0x3f0, 9, &fake_ops, &d), -EBUSY);    /* first byte */
	assert_int_equal(iobus_add(&bus, 0x3fa, 1, &fake_ops, &d), -EBUSY);    /* inside */
	assert_int_equal(iobus_add(&bus, 0x3f0, 0x20, &fake_ops, &d), -EBUSY); /* around */
	assert_int_equal(bus.count, 1);
	/* Adjacent on either side is fine. */
	assert_int_equal(iobus_add(&bus, 0x3f0, 8, &fake_ops, &d), 0);
	assert_int_equal(iobus_add(&bus, 0x400, 1, &fake_ops, &d), 0);
	assert_int_equal(bus.count, 3);
}

static void add_refuses_bad_ranges(void **state)
{
	struct fake_dev d = {0};
	struct iobus bus = {0};

	(void)state;
	assert_int_equal(iobus_add(&bus, 0x60, 0, &fake_ops, &d), -EINVAL);
	assert_int_equal(iobus_add(&bus, 0xffff, 2, &fake_ops, &d), -EINVAL);
	assert_int_equal(iobus_add(&bus, 0x8000, 0xffff, &fake_ops, &d), -EINVAL);
	assert_int_equal(bus.count, 0);
	assert_int_equal(iobus_add(&bus, 0xffff, 1, &fake_ops, &d), 0);
	assert_int_equal(iobus_add(&bus, 0, 1, &fake_ops, &d), 0);
}

static void add_refuses_when_full(void **state)
{
	struct fake_dev d = {0};
	struct iobus bus = {0};

	(void)state;
	for (unsigned i = 0; i < IOBUS_MAX_DEVICES; i++)
		assert_int_equal(iobus_add(&bus, (uint16_t)(0x100 + i * 0x10), 8, &fake_ops, &d),
				 0);
	assert_int_equal(iobus_add(&bus, 0x1000, 8, &fake_ops, &d), -ENOSPC);
	assert_int_equal(bus.count, IOBUS_MAX_DEVICES);
}

static void dispatch_offsets_and_values(void **state)
{
	struct fake_dev uart = {0}, other = {0};
	struct iobus bus = {0};
	uint8_t data[4];

	(void)state;
	assert_int_equal(iobus_add(&bus, 0x3f8, 8, &fake_ops, &uart), 0);
	assert_int_equal(iobus_add(&bus, 0x400, 4, &fake_ops, &other), 0);

	memset(data, 0xee, sizeof(data));
	iobus_access(&bus, 0x3f9, 1, 0, data);
	assert_int_equal(uart.reads, 1);
	assert_int_equal(uart.offset, 1);
	assert_int_equal(uart.size, 1);
	assert_int_equal(data[0], 0x12);
	assert_memory_equal(data + 1, "\xee\xee\xee", 3); /* only `size` bytes stored */

	memset(data, 0xee, sizeof(data));
	iobus_access(&bus, 0x3fe, 2, 0, data);
	assert_int_equal(uart.offset, 6);
	assert_int_equal(uart.size, 2);
	assert_memory_equal(data, "\x17\x22\xee\xee", 4);

	iobus_access(&bus, 0x3fc, 4, 0, data);
	assert_int_equal(uart.offset, 4);
	assert_memory_equal(data, "\x15\x22\x33\x44", 4);

	memcpy(data, "\x78\x56\x34\x12", 4);
	iobus_access(&bus, 0x3fc, 4, 1, data);
	assert_int_equal(uart.writes, 1);
	assert_int_equal(uart.offset, 4);
	assert_int_equal(uart.size, 4);
	assert_int_equal(uart.value, 0x12345678);

	memcpy(data, "\xab\xff\xff\xff", 4);
	iobus_access(&bus, 0x3f8, 1, 1, data);
	assert_int_equal(uart.offset, 0);
	assert_int_equal(uart.value, 0xab); /* only the byte written */

	memcpy(data, "\xcd\xab\xff\xff", 4);
	iobus_access(&bus, 0x402, 2, 1, data);
	assert_int_equal(other.writes, 1);
	assert_int_equal(other.offset, 2);
	assert_int_equal(other.value, 0xabcd);
	assert_int_equal(uart.writes, 2);
	assert_int_equal(uart.reads, 3);
}

static void unclaimed_reads_all_ones(void **state)
{
	struct fake_dev d = {0};
	struct iobus bus = {0};
	uint8_t data[4];

	(void)state;
	assert_int_equal(iobus_add(&bus, 0x60, 5, &fake_ops, &d), 0);
	for (unsigned size = 1; size <= 4; size *= 2) {
		memset(data, 0, sizeof(data));
		iobus_access(&bus, 0x70, size, 0, data);
		assert_true(all_bytes(data, size, 0xff));
		assert_true(all_bytes(data + size, 4 - size, 0));
	}
	iobus_access(&bus, 0x70, 4, 1, data);
	assert_int_equal(d.reads + d.writes, 0);
	/* An empty bus too. */
	memset(&bus, 0, sizeof(bus));
	memset(data, 0, sizeof(data));
	iobus_access(&bus, 0x3f8, 4, 0, data);
	assert_true(all_bytes(data, 4, 0xff));
}

static void straddling_access_not_dispatched(void **state)
{
	struct fake_dev d = {0}, next = {0};
	struct iobus bus = {0};
	uint8_t data[4];

	(void)state;
	assert_int_equal(iobus_add(&bus, 0x10, 4, &fake_ops, &d), 0);
	assert_int_equal(iobus_add(&bus, 0xfff0, 0x10, &fake_ops, &next), 0);
	/* Over the end of the device. */
	memset(data, 0, sizeof(data));
	iobus_access(&bus, 0x12, 4, 0, data);
	assert_true(all_bytes(data, 4, 0xff));
	iobus_access(&bus, 0x13, 2, 0, data);
	iobus_access(&bus, 0x13, 2, 1, data);
	iobus_access(&bus, 0x11, 4, 1, data);
	/* Over its start. */
	iobus_access(&bus, 0x0f, 2, 0, data);
	iobus_access(&bus, 0x0e, 4, 1, data);
	assert_int_equal(d.reads + d.writes, 0);
	/* The last ports of the I/O space: 0xfffe + 4 runs past 0xffff. */
	iobus_access(&bus, 0xfffe, 4, 0, data);
	assert_true(all_bytes(data, 4, 0xff));
	assert_int_equal(next.reads, 0);
	/* The exact last bytes do reach the device. */
	iobus_access(&bus, 0x12, 2, 0, data);
	assert_int_equal(d.reads, 1);
	assert_int_equal(d.offset, 2);
	iobus_access(&bus, 0xfffc, 4, 0, data);
	assert_int_equal(next.reads, 1);
	assert_int_equal(next.offset, 0xc);
}

static void odd_sizes_ignored(void **state)
{
	static const unsigned sizes[] = {0, 3, 5, 8, 16, 0xffffffffu};
	struct fake_dev d = {0};
	struct iobus bus = {0};
	uint8_t data[4];

	(void)state;
	assert_int_equal(iobus_add(&bus, 0x3f8, 8, &fake_ops, &d), 0);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		memset(data, 0x5a, sizeof(data));
		iobus_access(&bus, 0x3f8, sizes[i], 0, data);
		assert_true(all_bytes(data, sizeof(data), 0x5a));
		iobus_access(&bus, 0x3f8, sizes[i], 1, data);
		/* Unclaimed ports as well: not even the 0xff fill. */
		iobus_access(&bus, 0x100, sizes[i], 0, data);
		assert_true(all_bytes(data, sizeof(data), 0x5a));
	}
	assert_int_equal(d.reads + d.writes, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(add_refuses_overlap),
	    cmocka_unit_test(add_refuses_bad_ranges),
	    cmocka_unit_test(add_refuses_when_full),
	    cmocka_unit_test(dispatch_offsets_and_values),
	    cmocka_unit_test(unclaimed_reads_all_ones),
	    cmocka_unit_test(straddling_access_not_dispatched),
	    cmocka_unit_test(odd_sizes_ignored),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

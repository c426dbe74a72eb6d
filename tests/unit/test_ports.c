/* The i8042 reset line, the POST port and the exit-status and ready ports, reached through
 * the I/O bus at the ports the VMM gives them. */
#include "unit.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include "api/guest_abi.h"
#include "vmm/iobus.h"
#include "vmm/ports.h"

struct devices {
	struct iobus bus;
	struct i8042 kbd;
	struct status_port status;
	struct ready_port ready;
	unsigned resets;
};

static void count_reset(void *opaque)
{
	struct devices *d = opaque;

	d->resets++;
}

static int devices_setup(void **state)
{
	struct devices *d = calloc(1, sizeof(*d));

	assert_non_null(d);
	d->kbd = (struct i8042){.reset = count_reset, .opaque = d};
	atomic_init(&d->status.status, -1);
	assert_int_equal(iobus_add(&d->bus, I8042_DATA_PORT, 5, &i8042_ops, &d->kbd), 0);
	assert_int_equal(iobus_add(&d->bus, POST_PORT, 1, &post_port_ops, NULL), 0);
	assert_int_equal(iobus_add(&d->bus, CLAWVM_STATUS_PORT, CLAWVM_STATUS_PORT_LEN,
				   &status_port_ops, &d->status),
			 0);
	d->ready.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(d->ready.fd >= 0);
	assert_int_equal(iobus_add(&d->bus, CLAWVM_READY_PORT, 1, &ready_port_ops, &d->ready), 0);
	*state = d;
	return 0;
}

static int devices_teardown(void **state)
{
	struct devices *d = *state;

	close(d->ready.fd);
	free(d);
	return 0;
}

static void out(struct devices *d, uint16_t port, unsigned size, uint32_t value)
{
	uint8_t data[4];

	memcpy(data, &value, sizeof(data));
	iobus_access(&d->bus, port, size, 1, data);
}

static uint32_t in(struct devices *d, uint16_t port, unsigned size)
{
	uint8_t data[4] = {0};
	uint32_t value;

	iobus_access(&d->bus, port, size, 0, data);
	memcpy(&value, data, sizeof(value));
	return value;
}

static void i8042_reset_command(void **state)
{
	struct devices *d = *state;

	out(d, I8042_COMMAND_PORT, 1, 0xfe);
	assert_int_equal(d->resets, 1);
	out(d, I8042_COMMAND_PORT, 1, 0xfe);
	assert_int_equal(d->resets, 2);
}

static void i8042_other_writes_ignored(void **state)
{
	static const uint32_t values[] = {0x00, 0x01, 0x60, 0xad, 0xd1, 0xfd, 0xff, 0xef};
	struct devices *d = *state;

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++)
		out(d, I8042_COMMAND_PORT, 1, values[i]);
	/* The reset command on the data port, or to the ports in between, is not one. */
	out(d, I8042_DATA_PORT, 1, 0xfe);
	out(d, I8042_DATA_PORT + 1, 1, 0xfe);
	out(d, I8042_DATA_PORT + 3, 1, 0xfe);
	assert_int_equal(d->resets, 0);
}

static void i8042_status_reads_ready(void **state)
{
	struct devices *d = *state;

	/* Input buffer empty, so the kernel's reset path does not wait. */
	assert_int_equal(in(d, I8042_COMMAND_PORT, 1), 0);
	assert_int_equal(d->resets, 0);
}

static void i8042_direct_call(void **state)
{
	struct devices *d = *state;

	i8042_ops.write(&d->kbd, 4, 1, 0xfe);
	assert_int_equal(d->resets, 1);
	i8042_ops.write(&d->kbd, 0, 1, 0xfe);
	i8042_ops.write(&d->kbd, 4, 1, 0xfd);
	assert_int_equal(d->resets, 1);
}

static void status_port_records_outl(void **state)
{
	struct devices *d = *state;

	assert_int_equal(atomic_load(&d->status.status), -1);
	out(d, CLAWVM_STATUS_PORT, 4, 3);
	assert_int_equal(atomic_load(&d->status.status), 3);
	out(d, CLAWVM_STATUS_PORT, 4, 0);
	assert_int_equal(atomic_load(&d->status.status), 0);
	out(d, CLAWVM_STATUS_PORT, 4, 255);
	assert_int_equal(atomic_load(&d->status.status), 255);
}

static void status_port_ignores_other_writes(void **state)
{
	struct devices *d = *state;

	out(d, CLAWVM_STATUS_PORT, 4, 42);
	out(d, CLAWVM_STATUS_PORT, 4, 256);	   /* not a shell status */
	out(d, CLAWVM_STATUS_PORT, 4, 0xffffffff); /* nor -1 */
	out(d, CLAWVM_STATUS_PORT, 1, 7);	   /* outb */
	out(d, CLAWVM_STATUS_PORT, 2, 7);	   /* outw */
	out(d, CLAWVM_STATUS_PORT + 1, 1, 7);
	out(d, CLAWVM_STATUS_PORT + 2, 2, 7);
	assert_int_equal(atomic_load(&d->status.status), 42);
	/* Direct calls with an offset, as a 4-byte access could not reach through the bus. */
	status_port_ops.write(&d->status, 1, 4, 9);
	assert_int_equal(atomic_load(&d->status.status), 42);
}

static void status_port_reads_all_ones(void **state)
{
	struct devices *d = *state;

	assert_int_equal(in(d, CLAWVM_STATUS_PORT, 4), 0xffffffff);
}

/* What the ready port's eventfd has counted since the last call (0: nothing). */
static uint64_t ready_count(struct devices *d)
{
	eventfd_t n = 0;

	return eventfd_read(d->ready.fd, &n) == 0 ? n : 0;
}

static void ready_port_counts_outb_1(void **state)
{
	struct devices *d = *state;

	assert_int_equal(ready_count(d), 0);
	out(d, CLAWVM_READY_PORT, 1, CLAWVM_READY_VALUE);
	assert_int_equal(ready_count(d), 1);
	out(d, CLAWVM_READY_PORT, 1, CLAWVM_READY_VALUE);
	out(d, CLAWVM_READY_PORT, 1, CLAWVM_READY_VALUE);
	assert_int_equal(ready_count(d), 2);
	assert_int_equal(in(d, CLAWVM_READY_PORT, 1), 0xff);
	assert_int_equal(atomic_load(&d->status.status), -1); /* not a status */
}

static void ready_port_ignores_other_writes(void **state)
{
	struct devices *d = *state;

	out(d, CLAWVM_READY_PORT, 1, 0);
	out(d, CLAWVM_READY_PORT, 1, 2);
	out(d, CLAWVM_READY_PORT, 1, 0xff);
	out(d, CLAWVM_READY_PORT, 2, CLAWVM_READY_VALUE); /* outw would reach past the port */
	ready_port_ops.write(&d->ready, 0, 4, CLAWVM_READY_VALUE);
	ready_port_ops.write(&d->ready, 1, 1, CLAWVM_READY_VALUE);
	assert_int_equal(ready_count(d), 0);
	/* With nobody waiting, the word is dropped. */
	struct ready_port nobody = {.fd = -1};

	ready_port_ops.write(&nobody, 0, 1, CLAWVM_READY_VALUE);
	assert_int_equal(ready_count(d), 0);
}

static void post_port_ignored(void **state)
{
	struct devices *d = *state;

	out(d, POST_PORT, 1, 0x80);
	assert_int_equal(in(d, POST_PORT, 1), 0);
	assert_int_equal(d->resets, 0);
	assert_int_equal(atomic_load(&d->status.status), -1);
}

#define DEV_TEST(f) cmocka_unit_test_setup_teardown(f, devices_setup, devices_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    DEV_TEST(i8042_reset_command),	  DEV_TEST(i8042_other_writes_ignored),
	    DEV_TEST(i8042_status_reads_ready),	  DEV_TEST(i8042_direct_call),
	    DEV_TEST(status_port_records_outl),	  DEV_TEST(status_port_ignores_other_writes),
	    DEV_TEST(status_port_reads_all_ones), DEV_TEST(post_port_ignored),
	    DEV_TEST(ready_port_counts_outb_1),	  DEV_TEST(ready_port_ignores_other_writes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The virtio-mmio transport and virtio-rng against fake guest RAM: register file, feature
 * negotiation, queue set-up rules, a driver that misbehaves, and one rng request end to
 * end through a real descriptor ring. */
#include "tests/unit/unit.h"

#include <stdio.h>
#include <unistd.h>

#include "tests/fixtures/vq_driver.h"
#include "virtio/rng.h"

#define RAM   (4 * MiB)
#define DESC  0x10000
#define AVAIL 0x11000
#define USED  0x12000
#define BUF   0x20000
#define QSIZE 8

struct fixture {
	struct guest_mem gm;
	struct virtio_rng rng;
	struct virtio_mmio mmio;
	struct vqd_mmio drv; /* the rng's driver, once rng_start ran */
	unsigned irqs;
	unsigned kicks, kicked; /* trapped QueueNotify writes handed off; the last index */
};

static void count_irq(void *opaque)
{
	((struct fixture *)opaque)->irqs++;
}

static void record_kick(void *opaque, unsigned index)
{
	struct fixture *f = opaque;

	f->kicks++;
	f->kicked = index;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	fake_ram_init(&f->gm, RAM, 0);
	virtio_rng_init(&f->rng);
	virtio_mmio_init(&f->mmio, &f->rng.dev, &f->gm, count_irq, f);
	f->mmio.kick = record_kick;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	virtio_mmio_destroy(&f->mmio);
	fake_ram_free(&f->gm);
	free(f);
	return 0;
}

static uint32_t rd(struct fixture *f, uint64_t off)
{
	return vqd_mmio_read(&f->mmio, off);
}

static void wr(struct fixture *f, uint64_t off, uint32_t value)
{
	vqd_mmio_write(&f->mmio, off, value);
}

/* The driver's side of initialisation, up to FEATURES_OK; returns the status read back. */
static uint32_t negotiate(struct fixture *f, uint32_t low, uint32_t high)
{
	wr(f, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	wr(f, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, low);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, high);
	wr(f, VIRTIO_MMIO_STATUS,
	   VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
	return rd(f, VIRTIO_MMIO_STATUS);
}

static void setup_queue_sized(struct fixture *f, uint32_t desc, uint32_t size)
{
	wr(f, VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(f, VIRTIO_MMIO_QUEUE_NUM, size);
	wr(f, VIRTIO_MMIO_QUEUE_DESC_LOW, desc);
	wr(f, VIRTIO_MMIO_QUEUE_AVAIL_LOW, AVAIL);
	wr(f, VIRTIO_MMIO_QUEUE_USED_LOW, USED);
	wr(f, VIRTIO_MMIO_QUEUE_READY, 1);
}

static void setup_queue(struct fixture *f, uint32_t desc)
{
	setup_queue_sized(f, desc, QSIZE);
}

static void identity(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(rd(f, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	assert_int_equal(rd(f, VIRTIO_MMIO_VERSION), 2);
	assert_int_equal(rd(f, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_RNG);
	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	assert_int_equal(rd(f, VIRTIO_MMIO_DEVICE_FEATURES), 1); /* VERSION_1 is bit 32 */
	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_DEVICE_FEATURES),
			 (1u << VIRTIO_RING_F_INDIRECT_DESC) | (1u << VIRTIO_RING_F_EVENT_IDX));
	wr(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 7);
	assert_int_equal(rd(f, VIRTIO_MMIO_DEVICE_FEATURES), 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_NUM_MAX), 64);
}

static void features_refused(void **state)
{
	struct fixture *f = *state;

	/* No VERSION_1: a legacy driver. */
	assert_int_equal(negotiate(f, 0, 0) & VIRTIO_CONFIG_S_FEATURES_OK, 0);
	wr(f, VIRTIO_MMIO_STATUS, 0);
	/* A feature never offered. */
	assert_int_equal(negotiate(f, 1u << 5, 1) & VIRTIO_CONFIG_S_FEATURES_OK, 0);
	wr(f, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(negotiate(f, 1u << VIRTIO_RING_F_EVENT_IDX, 1) &
			     VIRTIO_CONFIG_S_FEATURES_OK,
			 VIRTIO_CONFIG_S_FEATURES_OK);
	assert_true(f->rng.dev.queues[0].event_idx);
	/* Features are frozen once accepted. */
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(f, VIRTIO_MMIO_DRIVER_FEATURES, 1u << 5);
	assert_int_equal(f->rng.dev.driver_features,
			 (1ULL << 32) | (1u << VIRTIO_RING_F_EVENT_IDX));
}

static void bogus_queue_sel_and_widths(void **state)
{
	struct fixture *f = *state;
	uint8_t byte = 0xaa;
	uint64_t wide = ~0ULL;

	wr(f, VIRTIO_MMIO_QUEUE_SEL, 5); /* rng has one queue */
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_READY), 0);
	wr(f, VIRTIO_MMIO_QUEUE_NUM, 8);
	wr(f, VIRTIO_MMIO_QUEUE_READY, 1); /* ignored, no crash */
	wr(f, VIRTIO_MMIO_QUEUE_SEL, 0xffffffff);
	wr(f, VIRTIO_MMIO_QUEUE_DESC_LOW, 0x1000);
	/* Registers are 32-bit: 1- and 8-byte accesses read 0 and write nothing. */
	virtio_mmio_access(&f->mmio, VIRTIO_MMIO_MAGIC_VALUE, &byte, 1, false);
	assert_int_equal(byte, 0);
	virtio_mmio_access(&f->mmio, VIRTIO_MMIO_MAGIC_VALUE, (uint8_t *)&wide, 8, false);
	assert_int_equal(wide, 0);
	virtio_mmio_access(&f->mmio, VIRTIO_MMIO_MAGIC_VALUE + 2, (uint8_t *)&wide, 4, false);
	assert_int_equal((uint32_t)wide, 0);
	/* Config space of the rng is empty: reads are zero, even far past the end. */
	wide = ~0ULL;
	virtio_mmio_access(&f->mmio, 0xff8, (uint8_t *)&wide, 8, false);
	assert_int_equal(wide, 0);
}

static void queue_setup_rules(void **state)
{
	struct fixture *f = *state;
	struct virtq *vq = &f->rng.dev.queues[0];

	negotiate(f, 0, 1);
	setup_queue(f, DESC);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_READY), 1);
	assert_int_equal(vq->desc_gpa, DESC);
	/* Changes while ready are ignored. */
	wr(f, VIRTIO_MMIO_QUEUE_DESC_LOW, DESC + 0x1000);
	wr(f, VIRTIO_MMIO_QUEUE_NUM, 4);
	assert_int_equal(vq->desc_gpa, DESC);
	assert_int_equal(vq->size, QSIZE);
	/* Reset by writing 0 to status: queues are not ready any more, state is gone. */
	wr(f, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_STATUS), 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_int_equal(vq->desc_gpa, 0);
}

static void misaligned_ring_needs_reset(void **state)
{
	struct fixture *f = *state;

	negotiate(f, 0, 1);
	wr(f, VIRTIO_MMIO_STATUS,
	   VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK |
	       VIRTIO_CONFIG_S_DRIVER_OK);
	setup_queue(f, DESC + 8); /* descriptor table must be 16-byte aligned */
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_true(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_int_equal(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS) & 2, 2); /* config change */
	/* The driver cannot clear NEEDS_RESET by writing status, only by a reset. */
	wr(f, VIRTIO_MMIO_STATUS,
	   VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK |
	       VIRTIO_CONFIG_S_DRIVER_OK);
	assert_true(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	wr(f, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_STATUS), 0);
}

/* The rng's driver: VERSION_1, its queue of `size` entries at DESC, DRIVER_OK. */
static void rng_start(struct fixture *f, uint16_t size)
{
	assert_int_equal(
	    vqd_mmio_start(&f->drv, &f->mmio, 1ULL << VIRTIO_F_VERSION_1, 1, size, DESC, 0), 0);
}

static struct vq_driver *rng_vq(struct fixture *f)
{
	return &f->drv.vq[0];
}

/* A one-descriptor chain at BUF of `len` bytes, in descriptor `desc_index`, published. */
static void offer(struct fixture *f, uint16_t desc_index, uint32_t len, uint16_t flags,
		  uint16_t next)
{
	vqd_desc(rng_vq(f), desc_index, BUF, len, flags, next);
	vqd_publish(rng_vq(f), desc_index);
}

static void rng_fills_buffer(void **state)
{
	struct fixture *f = *state;
	uint8_t *buf = gm_ptr(&f->gm, BUF, 4096);

	rng_start(f, QSIZE);
	offer(f, 0, 4096, VRING_DESC_F_WRITE, 0);
	vqd_mmio_kick(&f->drv, 0);
	assert_int_equal(vqd_used_idx(rng_vq(f)), 1);
	assert_int_equal(vqd_used_elem(rng_vq(f), 0).len, 4096);
	assert_false(all_bytes(buf, 4096, 0)); /* 4096 random bytes are not all zero */
	assert_int_equal(f->irqs, 1);
	assert_int_equal(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS), 1);
	wr(f, VIRTIO_MMIO_INTERRUPT_ACK, 1);
	assert_int_equal(rd(f, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	/* A notify through the register (no ioeventfd took it) traps on a vCPU thread: it is
	 * handed to the device's thread (the kick), not served on the vCPU. */
	offer(f, 1, 16, VRING_DESC_F_WRITE, 0);
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(f->kicks, 1);
	assert_int_equal(f->kicked, 0);
	assert_int_equal(vqd_used_idx(rng_vq(f)), 1);
	assert_false(vqd_mmio_kick(&f->drv, 0));
	assert_int_equal(vqd_used_idx(rng_vq(f)), 2);
	/* A queue the device does not have is not handed anywhere. */
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0xffffffff);
	assert_int_equal(f->kicks, 1);
}

/* QueueNum above QueueNumMax (64 for the rng) is invalid: the queue cannot be enabled. */
static void queue_num_above_max_refused(void **state)
{
	struct fixture *f = *state;

	negotiate(f, 0, 1);
	setup_queue_sized(f, DESC, 128); /* a power of two, but above the maximum */
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_true(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	wr(f, VIRTIO_MMIO_STATUS, 0);
	negotiate(f, 0, 1);
	setup_queue_sized(f, DESC, 64);
	assert_int_equal(rd(f, VIRTIO_MMIO_QUEUE_READY), 1);
	assert_int_equal(f->rng.dev.queues[0].size, 64);
}

/* A full queue is served a budget at a time: the notify says more is left, and the event
 * loop comes back for it after serving others. Without the budget, a guest that refills
 * the queue as fast as it is served keeps the loop in one notify. */
static void rng_serves_a_budget_per_notify(void **state)
{
	struct fixture *f = *state;
	unsigned calls = 0;

	rng_start(f, 64);
	for (uint16_t i = 0; i < 64; i++) {
		vqd_desc(rng_vq(f), i, BUF + 16ULL * i, 16, VRING_DESC_F_WRITE, 0);
		vqd_publish(rng_vq(f), i);
	}
	assert_true(vqd_mmio_kick(&f->drv, 0));
	assert_int_equal(vqd_used_idx(rng_vq(f)), 32);
	/* The guest keeps the ring full: each notify still serves only a budget. */
	do {
		for (unsigned i = 0; i < 32; i++)
			vqd_publish(rng_vq(f), rng_vq(f)->avail_idx % 64);
		calls++;
	} while (vqd_mmio_kick(&f->drv, 0) && calls < 4);
	assert_int_equal(calls, 4);
	assert_int_equal(vqd_used_idx(rng_vq(f)), 32 * 5);
}

static void rng_readable_buffer_gets_nothing(void **state)
{
	struct fixture *f = *state;
	uint8_t *buf = gm_ptr(&f->gm, BUF, 64);

	rng_start(f, QSIZE);
	offer(f, 0, 64, 0 /* device-readable */, 0);
	vqd_mmio_kick(&f->drv, 0);
	assert_int_equal(vqd_used_idx(rng_vq(f)), 1);
	assert_int_equal(vqd_used_elem(rng_vq(f), 0).len, 0);
	assert_true(all_bytes(buf, 64, 0));
}

static void rng_hostile_ring_needs_reset(void **state)
{
	struct fixture *f = *state;

	rng_start(f, QSIZE);
	/* A descriptor pointing at itself. */
	offer(f, 0, 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 0);
	vqd_mmio_kick(&f->drv, 0);
	assert_true(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_int_equal(vqd_used_idx(rng_vq(f)), 0);
	/* No further processing until the driver resets the device. */
	offer(f, 1, 16, VRING_DESC_F_WRITE, 0);
	vqd_mmio_kick(&f->drv, 0);
	assert_int_equal(vqd_used_idx(rng_vq(f)), 0);
}

/* A driver that breaks its ring, resets, and breaks it again, 100 times: the warning a
 * guest causes at will is logged only at the 1st, 2nd, 4th... time (the count is per call
 * site and this process's other tests add to it): at most 7 of these 100, not 100. */
static void guest_caused_warnings_are_rate_limited(void **state)
{
	struct fixture *f = *state;
	char path[] = "/tmp/clawvm-mmio-log-XXXXXX", line[256];
	int fd = mkstemp(path), saved = dup(2), lines = 0;
	FILE *log;

	assert_true(fd >= 0 && saved >= 0);
	assert_int_equal(dup2(fd, 2), 2);
	for (int i = 0; i < 100; i++) {
		wr(f, VIRTIO_MMIO_STATUS, 0);
		negotiate(f, 0, 1);
		setup_queue(f, DESC + 8); /* misaligned: the device needs a reset */
		assert_true(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	}
	fflush(stderr);
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);
	log = fdopen(fd, "r");
	assert_non_null(log);
	rewind(log);
	while (fgets(line, sizeof(line), log)) {
		const char *count = strstr(line, "(");
		unsigned long long n;

		if (!strstr(line, "virtio-rng: queue 0: invalid size or ring addresses"))
			continue;
		lines++;
		assert_non_null(count);
		assert_int_equal(sscanf(count, "(%llu so far)", &n), 1);
		assert_true(n > 0 && (n & (n - 1)) == 0);
	}
	fclose(log);
	unlink(path);
	assert_true(lines >= 5 && lines <= 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(identity, setup, teardown),
	    cmocka_unit_test_setup_teardown(features_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(bogus_queue_sel_and_widths, setup, teardown),
	    cmocka_unit_test_setup_teardown(queue_setup_rules, setup, teardown),
	    cmocka_unit_test_setup_teardown(misaligned_ring_needs_reset, setup, teardown),
	    cmocka_unit_test_setup_teardown(rng_fills_buffer, setup, teardown),
	    cmocka_unit_test_setup_teardown(queue_num_above_max_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(rng_serves_a_budget_per_notify, setup, teardown),
	    cmocka_unit_test_setup_teardown(guest_caused_warnings_are_rate_limited, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(rng_readable_buffer_gets_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(rng_hostile_ring_needs_reset, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

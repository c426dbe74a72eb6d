/* The split virtqueue against rings built by hand in fake guest RAM: the driver's side is
 * written descriptor by descriptor through the tests' driver (tests/fixtures/vq_driver.h:
 * little-endian, independently of queue.c), then the device side is checked. Two suites: a
 * well-behaved driver, and a hostile one. */
#include "unit.h"

#include <errno.h>
#include <linux/virtio_ring.h>

#include "tests/fixtures/vq_driver.h"
#include "virtio/queue.h"

#define RAM_SIZE  (1 * MiB)
#define FILL	  0xa5
#define QSIZE	  8
#define DESC_GPA  0x1000ULL
#define AVAIL_GPA 0x2000ULL
#define USED_GPA  0x3000ULL
#define TABLE_GPA 0x8000ULL /* indirect tables */
#define BUF_GPA	  0x10000ULL

/* The driver's view (guest RAM and its rings) and the device's (the queue, a chain). */
struct ring {
	struct guest_mem gm;
	struct vq_driver drv;
	struct virtq vq;
	struct vq_chain chain;
};

/* A fresh queue of `size` entries, rings zeroed as a driver allocates them, enabled. */
static void ring_setup(struct ring *r, uint16_t size, bool event_idx, bool indirect)
{
	vq_reset(&r->vq, &r->gm);
	r->vq.size = size;
	r->vq.desc_gpa = DESC_GPA;
	r->vq.avail_gpa = AVAIL_GPA;
	r->vq.used_gpa = USED_GPA;
	r->vq.event_idx = event_idx;
	r->vq.indirect = indirect;
	vqd_init(&r->drv, &r->gm, size, DESC_GPA, AVAIL_GPA, USED_GPA);
	assert_int_equal(vq_enable(&r->vq), 0);
	assert_true(r->vq.ready);
}

/* Both sides start at index `idx` (as after many chains). */
static void ring_start_at(struct ring *r, uint16_t idx)
{
	r->vq.last_avail = r->vq.used_idx = idx;
	vqd_start_at(&r->drv, idx);
}

static uint8_t *host(struct ring *r, uint64_t gpa)
{
	return r->gm.host + gpa;
}

static int ring_fixture(void **state)
{
	struct ring *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	fake_ram_init(&r->gm, RAM_SIZE, FILL);
	ring_setup(r, QSIZE, false, false);
	*state = r;
	return 0;
}

static int ring_fixture_free(void **state)
{
	struct ring *r = *state;

	fake_ram_free(&r->gm);
	free(r);
	return 0;
}

/* The queue must now be broken: -EINVAL, nothing consumed, and it stays so. */
static void assert_broken(struct ring *r)
{
	uint16_t last_avail = r->vq.last_avail;

	assert_int_equal(vq_pop(&r->vq, &r->chain), -EINVAL);
	assert_true(r->vq.broken);
	assert_int_equal(r->vq.last_avail, last_avail);
	assert_int_equal(vq_pop(&r->vq, &r->chain), -EINVAL);
}

/* ---------------------------------------------------------------- well-behaved driver */

static void single_readable_buffer(void **state)
{
	struct ring *r = *state;

	vqd_desc(&r->drv, 0, BUF_GPA, 100, 0, 0);
	vqd_publish(&r->drv, 0);
	assert_int_equal(vq_pop(&r->vq, &r->chain), 1);
	assert_int_equal(r->chain.head, 0);
	assert_int_equal(r->chain.out, 1);
	assert_int_equal(r->chain.in, 0);
	assert_int_equal(r->chain.out_len, 100);
	assert_int_equal(r->chain.in_len, 0);
	assert_ptr_equal(r->chain.iov[0].iov_base, host(r, BUF_GPA));
	assert_int_equal(r->chain.iov[0].iov_len, 100);
	assert_int_equal(r->vq.last_avail, 1);
	assert_int_equal(vq_pop(&r->vq, &r->chain), 0);
	assert_int_equal(r->vq.last_avail, 1);
}

static void readable_then_writable_chain(void **state)
{
	struct ring *r = *state;

	/* Descriptors out of order in the table, as after the driver reuses them. */
	vqd_desc(&r->drv, 5, BUF_GPA, 16, VRING_DESC_F_NEXT, 2);
	vqd_desc(&r->drv, 2, BUF_GPA + 0x100, 32, VRING_DESC_F_NEXT, 7);
	vqd_desc(&r->drv, 7, BUF_GPA + 0x1000, 512, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 0);
	vqd_desc(&r->drv, 0, BUF_GPA + 0x2000, 1, VRING_DESC_F_WRITE, 0);
	vqd_publish(&r->drv, 5);
	assert_int_equal(vq_pop(&r->vq, &r->chain), 1);
	assert_int_equal(r->chain.head, 5);
	assert_int_equal(r->chain.out, 2);
	assert_int_equal(r->chain.in, 2);
	assert_int_equal(r->chain.out_len, 48);
	assert_int_equal(r->chain.in_len, 513);
	assert_ptr_equal(r->chain.iov[0].iov_base, host(r, BUF_GPA));
	assert_int_equal(r->chain.iov[0].iov_len, 16);
	assert_ptr_equal(r->chain.iov[1].iov_base, host(r, BUF_GPA + 0x100));
	assert_int_equal(r->chain.iov[1].iov_len, 32);
	assert_ptr_equal(r->chain.iov[2].iov_base, host(r, BUF_GPA + 0x1000));
	assert_int_equal(r->chain.iov[2].iov_len, 512);
	assert_ptr_equal(r->chain.iov[3].iov_base, host(r, BUF_GPA + 0x2000));
	assert_int_equal(r->chain.iov[3].iov_len, 1);
}

static void several_chains_in_order(void **state)
{
	struct ring *r = *state;
	static const uint16_t heads[] = {6, 0, 3};

	vqd_desc(&r->drv, 6, BUF_GPA, 10, 0, 0);
	vqd_desc(&r->drv, 0, BUF_GPA + 0x100, 20, VRING_DESC_F_WRITE, 0);
	vqd_desc(&r->drv, 3, BUF_GPA + 0x200, 30, VRING_DESC_F_NEXT, 4);
	vqd_desc(&r->drv, 4, BUF_GPA + 0x300, 40, VRING_DESC_F_WRITE, 0);
	for (unsigned i = 0; i < 3; i++)
		vqd_publish(&r->drv, heads[i]);
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(vq_pop(&r->vq, &r->chain), 1);
		assert_int_equal(r->chain.head, heads[i]);
	}
	assert_int_equal(r->chain.out_len, 30);
	assert_int_equal(r->chain.in_len, 40);
	assert_int_equal(vq_pop(&r->vq, &r->chain), 0);
	assert_int_equal(r->vq.last_avail, 3);
}

static void indices_wrap_at_65536(void **state)
{
	struct ring *r = *state;

	ring_start_at(r, 65534);
	for (uint16_t i = 0; i < 4; i++) {
		vqd_desc(&r->drv, i, BUF_GPA + 0x100 * i, 8 + i, VRING_DESC_F_WRITE, 0);
		vqd_publish(&r->drv, i);
	}
	assert_int_equal(vqd_avail_idx(&r->drv), 2);
	/* Entries 65534 and 65535 sit in ring slots 6 and 7, then 0 and 1. */
	assert_int_equal(vqd_avail_entry(&r->drv, 6), 0);
	assert_int_equal(vqd_avail_entry(&r->drv, 1), 3);
	for (uint16_t i = 0; i < 4; i++) {
		assert_int_equal(vq_pop(&r->vq, &r->chain), 1);
		assert_int_equal(r->chain.head, i);
		assert_int_equal(r->chain.in_len, 8 + i);
		vq_push(&r->vq, r->chain.head, 8 + i);
	}
	assert_int_equal(vq_pop(&r->vq, &r->chain), 0);
	assert_int_equal(r->vq.last_avail, 2);
	assert_int_equal(vqd_used_idx(&r->drv), 2);
	assert_int_equal(vqd_used_elem(&r->drv, 6).id, 0);
	assert_int_equal(vqd_used_elem(&r->drv, 7).id, 1);
	assert_int_equal(vqd_used_elem(&r->drv, 0).id, 2);
	assert_int_equal(vqd_used_elem(&r->drv, 1).id, 3);
	assert_int_equal(vqd_used_elem(&r->drv, 1).len, 11);
}

static void push_writes_used_element_and_idx(void **state)
{
	struct ring *r = *state;
	static const uint8_t expect[] = {
	    0x00, 0x00, 0x01, 0x00,			    /* flags, idx = 1 */
	    0x03, 0x00, 0x00, 0x00, 0x78, 0x56, 0x34, 0x12, /* {id 3, len 0x12345678} */
	    0x00, 0x00, 0x00, 0x00,			    /* slot 1 untouched */
	};
	uint8_t *past_ring = host(r, USED_GPA + 4 + 8 * QSIZE + 2); /* after avail_event */

	memset(past_ring, 0x5a, 2);
	vq_push(&r->vq, 3, 0x12345678);
	assert_memory_equal(host(r, USED_GPA), expect, sizeof(expect));
	assert_int_equal(r->vq.used_idx, 1);
	vq_push(&r->vq, 7, 0);
	assert_int_equal(vqd_used_idx(&r->drv), 2);
	assert_int_equal(vqd_used_elem(&r->drv, 1).id, 7);
	assert_int_equal(vqd_used_elem(&r->drv, 1).len, 0);
	assert_memory_equal(host(r, USED_GPA + 4), expect + 4, 8);
	/* Without EVENT_IDX nothing is written after the ring. */
	assert_int_equal(vqd_avail_event(&r->drv), 0);
	assert_true(all_bytes(past_ring, 2, 0x5a));
}

static void indirect_chain(void **state)
{
	struct ring *r = *state;

	ring_setup(r, QSIZE, false, true);
	vqd_table_desc(&r->gm, TABLE_GPA, 0, BUF_GPA, 12, VRING_DESC_F_NEXT, 2);
	vqd_table_desc(&r->gm, TABLE_GPA, 2, BUF_GPA + 0x100, 64,
		       VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	vqd_table_desc(&r->gm, TABLE_GPA, 1, BUF_GPA + 0x200, 4, VRING_DESC_F_WRITE, 0);
	/* VRING_DESC_F_WRITE on the descriptor naming the table is ignored, as the spec says. */
	vqd_desc(&r->drv, 4, TABLE_GPA, 3 * 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_WRITE, 0);
	vqd_publish(&r->drv, 4);
	assert_int_equal(vq_pop(&r->vq, &r->chain), 1);
	assert_int_equal(r->chain.head, 4);
	assert_int_equal(r->chain.out, 1);
	assert_int_equal(r->chain.in, 2);
	assert_int_equal(r->chain.out_len, 12);
	assert_int_equal(r->chain.in_len, 68);
	assert_ptr_equal(r->chain.iov[0].iov_base, host(r, BUF_GPA));
	assert_ptr_equal(r->chain.iov[1].iov_base, host(r, BUF_GPA + 0x100));
	assert_ptr_equal(r->chain.iov[2].iov_base, host(r, BUF_GPA + 0x200));
}

static void direct_descriptors_then_indirect(void **state)
{
	struct ring *r = *state;

	ring_setup(r, QSIZE, false, true);
	vqd_table_desc(&r->gm, TABLE_GPA, 0, BUF_GPA + 0x100, 64, VRING_DESC_F_WRITE, 0);
	vqd_desc(&r->drv, 1, BUF_GPA, 12, VRING_DESC_F_NEXT, 6);
	vqd_desc(&r->drv, 6, TABLE_GPA, 16, VRING_DESC_F_INDIRECT, 0);
	vqd_publish(&r->drv, 1);
	assert_int_equal(vq_pop(&r->vq, &r->chain), 1);
	assert_int_equal(r->chain.out, 1);
	assert_int_equal(r->chain.in, 1);
	assert_int_equal(r->chain.out_len, 12);
	assert_int_equal(r->chain.in_len, 64);
}

static void chain_of_exactly_size_descriptors(void **state)
{
	struct ring *r = *state;

	for (uint16_t i = 0; i < QSIZE; i++)
		vqd_desc(&r->drv, i, BUF_GPA + i, 1, i + 1 < QSIZE ? VRING_DESC_F_NEXT : 0, i + 1);
	vqd_publish(&r->drv, 0);
	assert_int_equal(vq_pop(&r->vq, &r->chain), 1);
	assert_int_equal(r->chain.out, QSIZE);
	assert_int_equal(r->chain.out_len, QSIZE);
}

/* A full ring (avail->idx exactly `size` ahead) is legal. */
static void full_ring(void **state)
{
	struct ring *r = *state;

	vqd_desc(&r->drv, 0, BUF_GPA, 1, 0, 0);
	for (unsigned i = 0; i < QSIZE; i++)
		vqd_publish(&r->drv, 0);
	for (unsigned i = 0; i < QSIZE; i++)
		assert_int_equal(vq_pop(&r->vq, &r->chain), 1);
	assert_int_equal(vq_pop(&r->vq, &r->chain), 0);
}

/* Zero-length buffers are skipped: no iovec, and their address is never looked at. */
static void zero_length_buffers_skipped(void **state)
{
	struct ring *r = *state;

	vqd_desc(&r->drv, 0, ~0ULL, 0, VRING_DESC_F_NEXT, 1);
	vqd_desc(&r->drv, 1, BUF_GPA, 5, VRING_DESC_F_NEXT, 2);
	vqd_desc(&r->drv, 2, 16 * GiB, 0, VRING_DESC_F_WRITE, 0);
	vqd_publish(&r->drv, 0);
	assert_int_equal(vq_pop(&r->vq, &r->chain), 1);
	assert_int_equal(r->chain.out, 1);
	assert_int_equal(r->chain.in, 0);
	assert_int_equal(r->chain.out_len, 5);
	assert_ptr_equal(r->chain.iov[0].iov_base, host(r, BUF_GPA));
}

static void chain_read_and_write_across_buffers(void **state)
{
	struct ring *r = *state;
	uint8_t buf[32];

	/* Readable: 3 + 5 + 4 bytes holding 0..11; writable: 2 + 6 bytes. */
	for (unsigned i = 0; i < 12; i++)
		*host(r, BUF_GPA + (i < 3 ? i : i < 8 ? 0x100 + i - 3 : 0x200 + i - 8)) = i;
	vqd_desc(&r->drv, 0, BUF_GPA, 3, VRING_DESC_F_NEXT, 1);
	vqd_desc(&r->drv, 1, BUF_GPA + 0x100, 5, VRING_DESC_F_NEXT, 2);
	vqd_desc(&r->drv, 2, BUF_GPA + 0x200, 4, VRING_DESC_F_NEXT, 3);
	vqd_desc(&r->drv, 3, BUF_GPA + 0x300, 2, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 4);
	vqd_desc(&r->drv, 4, BUF_GPA + 0x400, 6, VRING_DESC_F_WRITE, 0);
	vqd_publish(&r->drv, 0);
	assert_int_equal(vq_pop(&r->vq, &r->chain), 1);

	memset(buf, 0xee, sizeof(buf));
	assert_int_equal(vq_chain_read(&r->chain, 2, buf, 8), 8);
	for (unsigned i = 0; i < 8; i++)
		assert_int_equal(buf[i], 2 + i);
	assert_int_equal(buf[8], 0xee);
	/* Bounded by the readable total, never reaching the writable buffers. */
	memset(buf, 0xee, sizeof(buf));
	assert_int_equal(vq_chain_read(&r->chain, 9, buf, sizeof(buf)), 3);
	assert_int_equal(buf[0], 9);
	assert_int_equal(buf[2], 11);
	assert_int_equal(buf[3], 0xee);
	assert_int_equal(vq_chain_read(&r->chain, 12, buf, sizeof(buf)), 0);
	assert_int_equal(vq_chain_read(&r->chain, SIZE_MAX, buf, sizeof(buf)), 0);

	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = 0x40 + i;
	assert_int_equal(vq_chain_write(&r->chain, 1, buf, sizeof(buf)), 7);
	assert_int_equal(*host(r, BUF_GPA + 0x300), FILL);
	assert_int_equal(*host(r, BUF_GPA + 0x301), 0x40);
	for (unsigned i = 0; i < 6; i++)
		assert_int_equal(*host(r, BUF_GPA + 0x400 + i), 0x41 + i);
	assert_int_equal(*host(r, BUF_GPA + 0x406), FILL);
	assert_int_equal(vq_chain_write(&r->chain, 8, buf, sizeof(buf)), 0);
	/* The readable buffers were not written. */
	assert_int_equal(*host(r, BUF_GPA + 0x203), 11);
	assert_int_equal(*host(r, BUF_GPA + 0x204), FILL);
}

static void queue_not_ready(void **state)
{
	struct ring *r = *state;
	uint8_t used_before[6 + 8 * QSIZE];

	vqd_desc(&r->drv, 0, BUF_GPA, 1, 0, 0);
	vqd_publish(&r->drv, 0);
	vq_reset(&r->vq, &r->gm);
	r->vq.size = QSIZE;
	r->vq.desc_gpa = DESC_GPA;
	r->vq.avail_gpa = AVAIL_GPA;
	r->vq.used_gpa = USED_GPA;
	memcpy(used_before, host(r, USED_GPA), sizeof(used_before));
	assert_int_equal(vq_pop(&r->vq, &r->chain), 0);
	vq_push(&r->vq, 0, 1);
	assert_memory_equal(host(r, USED_GPA), used_before, sizeof(used_before));
	assert_false(vq_should_notify(&r->vq));
	assert_int_equal(vq_enable(&r->vq), 0);
	assert_int_equal(vq_pop(&r->vq, &r->chain), 1);
}

static void notify_without_event_idx(void **state)
{
	struct ring *r = *state;

	vq_push(&r->vq, 0, 0);
	assert_true(vq_should_notify(&r->vq));
	vqd_set_avail_flags(&r->drv, VRING_AVAIL_F_NO_INTERRUPT);
	vq_push(&r->vq, 0, 0);
	assert_false(vq_should_notify(&r->vq));
	/* used_event means nothing without EVENT_IDX. */
	vqd_set_used_event(&r->drv, 2);
	assert_false(vq_should_notify(&r->vq));
	vqd_set_avail_flags(&r->drv, 0);
	assert_true(vq_should_notify(&r->vq));
}

static void notify_with_event_idx(void **state)
{
	struct ring *r = *state;

	ring_setup(r, QSIZE, true, false);
	/* The flag is ignored with EVENT_IDX. */
	vqd_set_avail_flags(&r->drv, VRING_AVAIL_F_NO_INTERRUPT);
	vqd_set_used_event(&r->drv, 100);
	vq_push(&r->vq, 0, 0);
	/* The first time there is no previous signal to compare against. */
	assert_true(vq_should_notify(&r->vq));
	assert_int_equal(r->vq.signalled_used, 1);
	/* Nothing new since: no interrupt whatever used_event says. */
	vqd_set_used_event(&r->drv, 1);
	assert_false(vq_should_notify(&r->vq));

	/* Two more (old 1, new 3): interrupt iff used_event is in [1, 3). */
	vq_push(&r->vq, 0, 0);
	vq_push(&r->vq, 0, 0);
	vqd_set_used_event(&r->drv, 3);
	assert_false(vq_should_notify(&r->vq));
	assert_int_equal(r->vq.signalled_used, 3);
	vq_push(&r->vq, 0, 0);
	vq_push(&r->vq, 0, 0); /* old 3, new 5 */
	vqd_set_used_event(&r->drv, 4);
	assert_true(vq_should_notify(&r->vq));
	vq_push(&r->vq, 0, 0);
	vq_push(&r->vq, 0, 0); /* old 5, new 7 */
	vqd_set_used_event(&r->drv, 5);
	assert_true(vq_should_notify(&r->vq));
	vq_push(&r->vq, 0, 0); /* old 7, new 8 */
	vqd_set_used_event(&r->drv, 6);
	assert_false(vq_should_notify(&r->vq));
}

static void notify_with_event_idx_across_wrap(void **state)
{
	struct ring *r = *state;

	ring_setup(r, QSIZE, true, false);
	ring_start_at(r, 65535);
	vq_push(&r->vq, 0, 0);
	assert_true(vq_should_notify(&r->vq)); /* signalled at 0 */
	vq_push(&r->vq, 0, 0);
	vq_push(&r->vq, 0, 0); /* old 0, new 2 */
	vqd_set_used_event(&r->drv, 65535);
	assert_false(vq_should_notify(&r->vq));
	ring_start_at(r, 65534);
	r->vq.signalled_used = 65534;
	vq_push(&r->vq, 0, 0);
	vq_push(&r->vq, 0, 0); /* old 65534, new 0 */
	assert_true(vq_should_notify(&r->vq));
}

static void avail_event_follows_last_avail(void **state)
{
	struct ring *r = *state;

	ring_setup(r, QSIZE, true, false);
	memset(host(r, USED_GPA + 4 + 8 * QSIZE), 0xbe, 2); /* avail_event: the device's to set */
	assert_int_equal(vq_pop(&r->vq, &r->chain), 0);
	assert_int_equal(vqd_avail_event(&r->drv), 0);
	vqd_desc(&r->drv, 0, BUF_GPA, 1, 0, 0);
	vqd_publish(&r->drv, 0);
	vqd_publish(&r->drv, 0);
	assert_int_equal(vq_pop(&r->vq, &r->chain), 1);
	assert_int_equal(vqd_avail_event(&r->drv), 1);
	assert_int_equal(vq_pop(&r->vq, &r->chain), 1);
	assert_int_equal(vqd_avail_event(&r->drv), 2);
	assert_int_equal(vq_pop(&r->vq, &r->chain), 0);
	assert_int_equal(vqd_avail_event(&r->drv), 2);
}

/* -------------------------------------------------------------------- vq_enable checks */

static void enable_refused(struct ring *r, uint16_t size, uint64_t desc, uint64_t avail,
			   uint64_t used, bool event_idx)
{
	vq_reset(&r->vq, &r->gm);
	r->vq.size = size;
	r->vq.desc_gpa = desc;
	r->vq.avail_gpa = avail;
	r->vq.used_gpa = used;
	r->vq.event_idx = event_idx;
	assert_int_equal(vq_enable(&r->vq), -EINVAL);
	assert_false(r->vq.ready);
	assert_int_equal(vq_pop(&r->vq, &r->chain), 0);
}

static void enable_accepted(struct ring *r, uint16_t size, uint64_t desc, uint64_t avail,
			    uint64_t used, bool event_idx)
{
	vq_reset(&r->vq, &r->gm);
	r->vq.size = size;
	r->vq.desc_gpa = desc;
	r->vq.avail_gpa = avail;
	r->vq.used_gpa = used;
	r->vq.event_idx = event_idx;
	assert_int_equal(vq_enable(&r->vq), 0);
	assert_true(r->vq.ready);
}

static void enable_checks_size(void **state)
{
	struct ring *r = *state;

	enable_refused(r, 0, DESC_GPA, AVAIL_GPA, USED_GPA, false);
	enable_refused(r, 3, DESC_GPA, AVAIL_GPA, USED_GPA, false);
	enable_refused(r, 768, DESC_GPA, AVAIL_GPA, USED_GPA, false);
	enable_refused(r, 2 * VQ_MAX_SIZE, 0x100000 - 0x10000, 0x20000, 0x30000, false);
	enable_refused(r, 0x8000, 0, 0x80000, 0x88000, false);
	enable_accepted(r, 1, DESC_GPA, AVAIL_GPA, USED_GPA, false);
	enable_accepted(r, VQ_MAX_SIZE, 0x20000, 0x30000, 0x40000, true);
}

static void enable_checks_alignment(void **state)
{
	struct ring *r = *state;

	enable_refused(r, QSIZE, DESC_GPA + 8, AVAIL_GPA, USED_GPA, false);
	enable_refused(r, QSIZE, DESC_GPA + 1, AVAIL_GPA, USED_GPA, false);
	enable_refused(r, QSIZE, DESC_GPA, AVAIL_GPA + 1, USED_GPA, false);
	enable_refused(r, QSIZE, DESC_GPA, AVAIL_GPA, USED_GPA + 2, false);
	enable_accepted(r, QSIZE, DESC_GPA + 16, AVAIL_GPA + 2, USED_GPA + 4, false);
}

static void enable_checks_rings_in_ram(void **state)
{
	struct ring *r = *state;
	uint64_t end = RAM_SIZE;

	/* Each ring ending exactly at the end of RAM fits; one more entry does not. */
	enable_accepted(r, QSIZE, end - 16 * QSIZE, AVAIL_GPA, USED_GPA, false);
	enable_refused(r, 2 * QSIZE, end - 16 * QSIZE, AVAIL_GPA, USED_GPA, false);
	enable_accepted(r, QSIZE, DESC_GPA, end - (4 + 2 * QSIZE), USED_GPA, false);
	enable_refused(r, QSIZE, DESC_GPA, end - (4 + 2 * QSIZE), USED_GPA, true);
	enable_accepted(r, QSIZE, DESC_GPA, AVAIL_GPA, end - (4 + 8 * QSIZE), false);
	enable_refused(r, QSIZE, DESC_GPA, AVAIL_GPA, end - (4 + 8 * QSIZE), true);
	enable_accepted(r, QSIZE, DESC_GPA, AVAIL_GPA, end - (6 + 8 * QSIZE) - 2, true);
	enable_refused(r, QSIZE, end, AVAIL_GPA, USED_GPA, false);
	enable_refused(r, QSIZE, DESC_GPA, 1ULL << 40, USED_GPA, false);
	enable_refused(r, QSIZE, DESC_GPA, AVAIL_GPA, 0xfffffffffffffff0ULL, false);
}

/* -------------------------------------------------------------------- hostile driver */

static void cyclic_chain(void **state)
{
	struct ring *r = *state;

	vqd_desc(&r->drv, 1, BUF_GPA, 4, VRING_DESC_F_NEXT, 2);
	vqd_desc(&r->drv, 2, BUF_GPA, 4, VRING_DESC_F_NEXT, 1);
	vqd_publish(&r->drv, 1);
	assert_broken(r);
}

static void self_loop(void **state)
{
	struct ring *r = *state;

	vqd_desc(&r->drv, 3, BUF_GPA, 4, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 3);
	vqd_publish(&r->drv, 3);
	assert_broken(r);
}

/* Zero-length descriptors cost no iovec, so only the hop count stops this loop. */
static void loop_of_zero_length_descriptors(void **state)
{
	struct ring *r = *state;

	vqd_desc(&r->drv, 0, BUF_GPA, 0, VRING_DESC_F_NEXT, 1);
	vqd_desc(&r->drv, 1, BUF_GPA, 0, VRING_DESC_F_NEXT, 0);
	vqd_publish(&r->drv, 0);
	assert_broken(r);
}

static void chain_longer_than_size(void **state)
{
	struct ring *r = *state;

	/* 0 -> 1 -> ... -> 7 -> 0: size + 1 hops. */
	for (uint16_t i = 0; i < QSIZE; i++)
		vqd_desc(&r->drv, i, BUF_GPA + i, 1, VRING_DESC_F_NEXT, (i + 1) % QSIZE);
	vqd_publish(&r->drv, 0);
	assert_broken(r);
}

static void head_beyond_size(void **state)
{
	struct ring *r = *state;

	vqd_desc(&r->drv, 0, BUF_GPA, 1, 0, 0);
	vqd_publish(&r->drv, QSIZE);
	assert_broken(r);
}

static void next_beyond_size(void **state)
{
	struct ring *r = *state;

	vqd_desc(&r->drv, 0, BUF_GPA, 1, VRING_DESC_F_NEXT, QSIZE);
	/* What descriptor QSIZE would be if the table were longer: a valid end. */
	vqd_desc(&r->drv, QSIZE, BUF_GPA, 1, 0, 0);
	vqd_publish(&r->drv, 0);
	assert_broken(r);
}

static void avail_idx_too_far_ahead(void **state)
{
	struct ring *r = *state;

	vqd_desc(&r->drv, 0, BUF_GPA, 1, 0, 0);
	vqd_set_avail_idx(&r->drv, QSIZE + 1);
	assert_broken(r);
}

static void avail_idx_goes_backwards(void **state)
{
	struct ring *r = *state;

	vqd_desc(&r->drv, 0, BUF_GPA, 1, 0, 0);
	ring_start_at(r, 100);
	vqd_set_avail_idx(&r->drv, 99);
	assert_broken(r);
}

static void buffer_beyond_ram(void **state)
{
	struct ring *r = *state;

	vqd_desc(&r->drv, 0, RAM_SIZE, 1, 0, 0);
	vqd_publish(&r->drv, 0);
	assert_broken(r);
}

static void buffer_crossing_end_of_ram(void **state)
{
	struct ring *r = *state;

	vqd_desc(&r->drv, 0, BUF_GPA, 1, VRING_DESC_F_NEXT, 1);
	vqd_desc(&r->drv, 1, RAM_SIZE - 8, 9, VRING_DESC_F_WRITE, 0);
	vqd_publish(&r->drv, 0);
	assert_broken(r);
}

static void buffer_ending_at_end_of_ram(void **state)
{
	struct ring *r = *state;

	vqd_desc(&r->drv, 0, RAM_SIZE - 8, 8, VRING_DESC_F_WRITE, 0);
	vqd_publish(&r->drv, 0);
	assert_int_equal(vq_pop(&r->vq, &r->chain), 1);
	assert_ptr_equal(r->chain.iov[0].iov_base, host(r, RAM_SIZE - 8));
}

static void buffer_wrapping_2_64(void **state)
{
	struct ring *r = *state;

	/* addr + len wraps to 0x100, which is in RAM. */
	vqd_desc(&r->drv, 0, 0xffffffffffffff00ULL, 0x200, 0, 0);
	vqd_publish(&r->drv, 0);
	assert_broken(r);
}

static void writable_then_readable(void **state)
{
	struct ring *r = *state;

	vqd_desc(&r->drv, 0, BUF_GPA, 4, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	vqd_desc(&r->drv, 1, BUF_GPA + 0x100, 4, 0, 0);
	vqd_publish(&r->drv, 0);
	assert_broken(r);
}

static void writable_then_zero_length_readable(void **state)
{
	struct ring *r = *state;

	vqd_desc(&r->drv, 0, BUF_GPA, 4, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	vqd_desc(&r->drv, 1, BUF_GPA + 0x100, 0, 0, 0);
	vqd_publish(&r->drv, 0);
	assert_broken(r);
}

static void indirect_not_negotiated(void **state)
{
	struct ring *r = *state;

	vqd_table_desc(&r->gm, TABLE_GPA, 0, BUF_GPA, 4, 0, 0);
	vqd_desc(&r->drv, 0, TABLE_GPA, 16, VRING_DESC_F_INDIRECT, 0);
	vqd_publish(&r->drv, 0);
	assert_broken(r);
}

/* Puts an indirect descriptor as chain 0 of a queue that negotiated INDIRECT_DESC. */
static void indirect_setup(struct ring *r, uint64_t table, uint32_t len, uint16_t flags)
{
	ring_setup(r, QSIZE, false, true);
	vqd_desc(&r->drv, 0, table, len, VRING_DESC_F_INDIRECT | flags, 1);
	vqd_desc(&r->drv, 1, BUF_GPA, 4, 0, 0);
	vqd_publish(&r->drv, 0);
}

static void nested_indirect(void **state)
{
	struct ring *r = *state;

	indirect_setup(r, TABLE_GPA, 32, 0);
	vqd_table_desc(&r->gm, TABLE_GPA, 0, BUF_GPA, 4, VRING_DESC_F_NEXT, 1);
	vqd_table_desc(&r->gm, TABLE_GPA, 1, TABLE_GPA + 0x100, 16, VRING_DESC_F_INDIRECT, 0);
	vqd_table_desc(&r->gm, TABLE_GPA + 0x100, 0, BUF_GPA, 4, 0, 0);
	assert_broken(r);
}

static void indirect_with_next(void **state)
{
	struct ring *r = *state;

	vqd_table_desc(&r->gm, TABLE_GPA, 0, BUF_GPA, 4, 0, 0);
	indirect_setup(r, TABLE_GPA, 16, VRING_DESC_F_NEXT);
	assert_broken(r);
}

static void indirect_table_empty(void **state)
{
	struct ring *r = *state;

	indirect_setup(r, TABLE_GPA, 0, 0);
	assert_broken(r);
}

static void indirect_table_not_multiple_of_16(void **state)
{
	struct ring *r = *state;

	vqd_table_desc(&r->gm, TABLE_GPA, 0, BUF_GPA, 4, 0, 0);
	indirect_setup(r, TABLE_GPA, 24, 0);
	assert_broken(r);
}

static void indirect_table_outside_ram(void **state)
{
	struct ring *r = *state;

	indirect_setup(r, RAM_SIZE - 16, 32, 0);
	assert_broken(r);
}

static void indirect_table_too_long(void **state)
{
	struct ring *r = *state;
	uint32_t len = 16 * (VQ_MAX_SIZE + 1);

	/* A zeroed table is valid (one zero-length readable buffer), so only the length
	 * check can refuse it. */
	memset(host(r, TABLE_GPA), 0, len);
	indirect_setup(r, TABLE_GPA, len, 0);
	assert_broken(r);

	indirect_setup(r, TABLE_GPA, 16 * VQ_MAX_SIZE, 0);
	assert_int_equal(vq_pop(&r->vq, &r->chain), 1);
	assert_int_equal(r->chain.out + r->chain.in, 0);
}

static void indirect_next_beyond_table(void **state)
{
	struct ring *r = *state;

	indirect_setup(r, TABLE_GPA, 32, 0);
	vqd_table_desc(&r->gm, TABLE_GPA, 0, BUF_GPA, 4, VRING_DESC_F_NEXT, 2);
	vqd_table_desc(&r->gm, TABLE_GPA, 2, BUF_GPA, 4, 0, 0);
	assert_broken(r);
}

static void indirect_loop(void **state)
{
	struct ring *r = *state;

	indirect_setup(r, TABLE_GPA, 48, 0);
	vqd_table_desc(&r->gm, TABLE_GPA, 0, BUF_GPA, 4, VRING_DESC_F_NEXT, 1);
	vqd_table_desc(&r->gm, TABLE_GPA, 1, BUF_GPA, 4, VRING_DESC_F_NEXT, 2);
	vqd_table_desc(&r->gm, TABLE_GPA, 2, BUF_GPA, 4, VRING_DESC_F_NEXT, 1);
	assert_broken(r);
}

/* An indirect table of `n` one-byte readable buffers, chained in order. */
static void indirect_of_n_buffers(struct ring *r, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		vqd_table_desc(&r->gm, TABLE_GPA, i, BUF_GPA + i, 1,
			       i + 1 < n ? VRING_DESC_F_NEXT : 0, i + 1);
	indirect_setup(r, TABLE_GPA, 16 * n, 0);
}

static void too_many_buffers(void **state)
{
	struct ring *r = *state;

	indirect_of_n_buffers(r, VQ_MAX_IOV);
	assert_int_equal(vq_pop(&r->vq, &r->chain), 1);
	assert_int_equal(r->chain.out, VQ_MAX_IOV);
	assert_int_equal(r->chain.out_len, VQ_MAX_IOV);
	assert_ptr_equal(r->chain.iov[VQ_MAX_IOV - 1].iov_base, host(r, BUF_GPA + VQ_MAX_IOV - 1));

	indirect_of_n_buffers(r, VQ_MAX_IOV + 1);
	assert_broken(r);
}

/* Buffers must not straddle the 32-bit MMIO hole; they may sit either side of it. */
static void buffer_across_mmio_hole(void **state)
{
	struct ring *r = calloc(1, sizeof(*r));

	(void)state;
	assert_non_null(r);
	sparse_ram_init(&r->gm, 5 * GiB);
	ring_setup(r, QSIZE, false, false);
	vqd_desc(&r->drv, 0, 3 * GiB - 4096, 4096, VRING_DESC_F_NEXT, 1);
	vqd_desc(&r->drv, 1, 4 * GiB, 4096, VRING_DESC_F_WRITE, 0);
	vqd_publish(&r->drv, 0);
	assert_int_equal(vq_pop(&r->vq, &r->chain), 1);
	assert_ptr_equal(r->chain.iov[0].iov_base, r->gm.host + 3 * GiB - 4096);
	assert_ptr_equal(r->chain.iov[1].iov_base, r->gm.host + 3 * GiB);

	vqd_desc(&r->drv, 0, 3 * GiB - 4096, 8192, 0, 0);
	vqd_publish(&r->drv, 0);
	assert_broken(r);

	ring_setup(r, QSIZE, false, false);
	vqd_desc(&r->drv, 0, 3 * GiB + 16, 16, 0, 0);
	vqd_publish(&r->drv, 0);
	assert_broken(r);
	sparse_ram_free(&r->gm);
	free(r);
}

/* Lengths add up in size_t: 128 buffers of 4 GiB - 1 (all over the same RAM) sum exactly.
 * With at most VQ_MAX_IOV 32-bit lengths a 64-bit sum cannot overflow, so the overflow
 * check itself is unreachable here; this shows no narrower type sneaks in. */
static void huge_lengths_sum_exactly(void **state)
{
	struct ring *r = calloc(1, sizeof(*r));

	(void)state;
	assert_non_null(r);
	sparse_ram_init(&r->gm, 8 * GiB); /* 5 GiB from 4 GiB up */
	for (unsigned i = 0; i < VQ_MAX_IOV; i++)
		vqd_table_desc(&r->gm, TABLE_GPA, i, 4 * GiB, UINT32_MAX,
			       i + 1 < VQ_MAX_IOV ? VRING_DESC_F_NEXT : 0, i + 1);
	indirect_setup(r, TABLE_GPA, 16 * VQ_MAX_IOV, 0);
	assert_int_equal(vq_pop(&r->vq, &r->chain), 1);
	assert_int_equal(r->chain.out, VQ_MAX_IOV);
	assert_true(r->chain.out_len == (size_t)VQ_MAX_IOV * UINT32_MAX);
	sparse_ram_free(&r->gm);
	free(r);
}

static void broken_stays_broken_until_reset(void **state)
{
	struct ring *r = *state;
	const struct guest_mem *mem = r->vq.mem;
	uint8_t used_before[6 + 8 * QSIZE];

	vqd_desc(&r->drv, 0, BUF_GPA, 1, VRING_DESC_F_NEXT, 0);
	vqd_publish(&r->drv, 0);
	assert_broken(r);

	/* Fixing the ring does not help, and the queue no longer reads guest memory at
	 * all: with no memory to reach, a read would crash. */
	vqd_desc(&r->drv, 0, BUF_GPA, 1, 0, 0);
	r->vq.mem = NULL;
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(vq_pop(&r->vq, &r->chain), -EINVAL);
	assert_false(vq_should_notify(&r->vq));
	vq_push(&r->vq, 0, 1);
	r->vq.mem = mem;
	memcpy(used_before, host(r, USED_GPA), sizeof(used_before));
	vq_push(&r->vq, 0, 1);
	assert_memory_equal(host(r, USED_GPA), used_before, sizeof(used_before));

	/* vq_enable alone does not clear it: only a reset does. */
	assert_int_equal(vq_enable(&r->vq), 0);
	assert_int_equal(vq_pop(&r->vq, &r->chain), -EINVAL);

	ring_setup(r, QSIZE, false, false);
	assert_false(r->vq.broken);
	vqd_desc(&r->drv, 0, BUF_GPA, 1, 0, 0);
	vqd_publish(&r->drv, 0);
	assert_int_equal(vq_pop(&r->vq, &r->chain), 1);
	assert_int_equal(r->chain.out_len, 1);
}

#define RING_TEST(f) cmocka_unit_test_setup_teardown(f, ring_fixture, ring_fixture_free)

int main(void)
{
	const struct CMUnitTest driver[] = {
	    RING_TEST(single_readable_buffer),
	    RING_TEST(readable_then_writable_chain),
	    RING_TEST(several_chains_in_order),
	    RING_TEST(indices_wrap_at_65536),
	    RING_TEST(push_writes_used_element_and_idx),
	    RING_TEST(indirect_chain),
	    RING_TEST(direct_descriptors_then_indirect),
	    RING_TEST(chain_of_exactly_size_descriptors),
	    RING_TEST(full_ring),
	    RING_TEST(zero_length_buffers_skipped),
	    RING_TEST(chain_read_and_write_across_buffers),
	    RING_TEST(queue_not_ready),
	    RING_TEST(notify_without_event_idx),
	    RING_TEST(notify_with_event_idx),
	    RING_TEST(notify_with_event_idx_across_wrap),
	    RING_TEST(avail_event_follows_last_avail),
	    RING_TEST(enable_checks_size),
	    RING_TEST(enable_checks_alignment),
	    RING_TEST(enable_checks_rings_in_ram),
	    RING_TEST(buffer_ending_at_end_of_ram),
	};
	const struct CMUnitTest hostile[] = {
	    RING_TEST(cyclic_chain),
	    RING_TEST(self_loop),
	    RING_TEST(loop_of_zero_length_descriptors),
	    RING_TEST(chain_longer_than_size),
	    RING_TEST(head_beyond_size),
	    RING_TEST(next_beyond_size),
	    RING_TEST(avail_idx_too_far_ahead),
	    RING_TEST(avail_idx_goes_backwards),
	    RING_TEST(buffer_beyond_ram),
	    RING_TEST(buffer_crossing_end_of_ram),
	    RING_TEST(buffer_wrapping_2_64),
	    RING_TEST(writable_then_readable),
	    RING_TEST(writable_then_zero_length_readable),
	    RING_TEST(indirect_not_negotiated),
	    RING_TEST(nested_indirect),
	    RING_TEST(indirect_with_next),
	    RING_TEST(indirect_table_empty),
	    RING_TEST(indirect_table_not_multiple_of_16),
	    RING_TEST(indirect_table_outside_ram),
	    RING_TEST(indirect_table_too_long),
	    RING_TEST(indirect_next_beyond_table),
	    RING_TEST(indirect_loop),
	    RING_TEST(too_many_buffers),
	    cmocka_unit_test(buffer_across_mmio_hole),
	    cmocka_unit_test(huge_lengths_sum_exactly),
	    RING_TEST(broken_stays_broken_until_reset),
	};

	return cmocka_run_group_tests_name("virtqueue, well-behaved driver", driver, NULL, NULL) +
	       cmocka_run_group_tests_name("virtqueue, hostile driver", hostile, NULL, NULL);
}

/* A minimal virtio-mmio driver for the device tests: register access (offsets and status
 * bits from the kernel's headers, as the transport uses them), and the split-ring operations a
 * driver does (descriptors, the avail ring, the used index), all on fake guest RAM in
 * little-endian. */
#ifndef CLAWVM_TESTS_UNIT_MMIO_DRIVER_H
#define CLAWVM_TESTS_UNIT_MMIO_DRIVER_H

#include <endian.h>
#include <stdint.h>
#include <string.h>

#include "virtio/mmio.h"
#include "base/guest_mem.h"

static inline uint32_t mmio_rd(struct virtio_mmio *m, uint64_t off)
{
	uint32_t v;

	virtio_mmio_access(m, off, (uint8_t *)&v, 4, false);
	return le32toh(v);
}

static inline void mmio_wr(struct virtio_mmio *m, uint64_t off, uint32_t value)
{
	uint32_t v = htole32(value);

	virtio_mmio_access(m, off, (uint8_t *)&v, 4, true);
}

/* A driver's whole start (cmocka asserts; include after unit.h): VERSION_1, `queues` queues
 * of `size` entries, queue q's descriptors at ring0 + q * stride, its avail ring 0x1000 and
 * its used ring 0x2000 after them, then DRIVER_OK. */
static inline void mmio_driver_start(struct virtio_mmio *m, unsigned queues, unsigned size,
				     uint64_t ring0, uint64_t stride)
{
	mmio_wr(m, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	mmio_wr(m, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	mmio_wr(m, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	mmio_wr(m, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	mmio_wr(m, VIRTIO_MMIO_STATUS,
		VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
	assert_int_equal(mmio_rd(m, VIRTIO_MMIO_STATUS), VIRTIO_CONFIG_S_ACKNOWLEDGE |
							     VIRTIO_CONFIG_S_DRIVER |
							     VIRTIO_CONFIG_S_FEATURES_OK);
	for (unsigned q = 0; q < queues; q++) {
		uint32_t ring = (uint32_t)(ring0 + q * stride);

		mmio_wr(m, VIRTIO_MMIO_QUEUE_SEL, q);
		mmio_wr(m, VIRTIO_MMIO_QUEUE_NUM, size);
		mmio_wr(m, VIRTIO_MMIO_QUEUE_DESC_LOW, ring);
		mmio_wr(m, VIRTIO_MMIO_QUEUE_AVAIL_LOW, ring + 0x1000);
		mmio_wr(m, VIRTIO_MMIO_QUEUE_USED_LOW, ring + 0x2000);
		mmio_wr(m, VIRTIO_MMIO_QUEUE_READY, 1);
		assert_int_equal(mmio_rd(m, VIRTIO_MMIO_QUEUE_READY), 1);
	}
	mmio_wr(m, VIRTIO_MMIO_STATUS,
		VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK |
		    VIRTIO_CONFIG_S_DRIVER_OK);
	assert_int_equal(mmio_rd(m, VIRTIO_MMIO_STATUS),
			 VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
			     VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
}

/* Descriptor `i` of the table at `desc`. */
static inline void ring_put_desc(const struct guest_mem *gm, uint64_t desc, uint16_t i,
				 uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t *d = gm_ptr(gm, desc + 16ULL * i, 16);
	uint64_t a = htole64(addr);
	uint32_t l = htole32(len);
	uint16_t fl = htole16(flags), n = htole16(next);

	memcpy(d, &a, 8);
	memcpy(d + 8, &l, 4);
	memcpy(d + 12, &fl, 2);
	memcpy(d + 14, &n, 2);
}

/* Puts `head` in the avail ring at `avail` (of `size` entries) and publishes it. */
static inline void ring_publish(const struct guest_mem *gm, uint64_t avail, unsigned size,
				uint16_t *avail_idx, uint16_t head)
{
	uint8_t *ring = gm_ptr(gm, avail, 4 + 2ULL * size);
	uint16_t h = htole16(head), idx;

	memcpy(ring + 4 + 2 * (*avail_idx % size), &h, 2);
	idx = htole16(++*avail_idx);
	__atomic_store_n((uint16_t *)(ring + 2), idx, __ATOMIC_RELEASE);
}

/* The used index of the used ring at `used`, as the device last published it. */
static inline uint16_t ring_used_idx(const struct guest_mem *gm, uint64_t used)
{
	const uint16_t *idx = gm_ptr(gm, used + 2, 2);

	return le16toh(__atomic_load_n(idx, __ATOMIC_ACQUIRE));
}

#endif

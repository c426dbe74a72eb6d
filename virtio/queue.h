/* The split virtqueue (virtio 1.2, 2.7), device side. The only code that walks guest
 * descriptor rings: every index, length and guest address is checked here, chains are
 * bounded, and a guest that breaks the rules gets the queue marked broken (the transport
 * then sets DEVICE_NEEDS_RESET), never a crash. */
#ifndef CLAWVM_VIRTIO_QUEUE_H
#define CLAWVM_VIRTIO_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "base/guest_mem.h"

#define VQ_MAX_SIZE 1024 /* largest queue a device offers (QueueNumMax) */
#define VQ_MAX_IOV  128	 /* buffers one chain may have, indirect ones included */

struct virtq {
	const struct guest_mem *mem;
	uint16_t size;	   /* QueueNum: a power of two, 1..VQ_MAX_SIZE */
	uint64_t desc_gpa; /* QueueDesc, 16-byte aligned */
	uint64_t avail_gpa;
	uint64_t used_gpa;
	bool ready;		 /* QueueReady written 1 and the rings validated */
	bool event_idx;		 /* VIRTIO_RING_F_EVENT_IDX negotiated */
	bool indirect;		 /* VIRTIO_RING_F_INDIRECT_DESC negotiated */
	bool broken;		 /* the guest broke the rules: no more processing until reset */
	uint16_t last_avail;	 /* next avail ring entry the device takes */
	uint16_t used_idx;	 /* next used ring entry the device fills */
	uint16_t signalled_used; /* used_idx when the driver was last interrupted */
	bool signalled_valid;
};

/* One descriptor chain: device-readable buffers first (iov[0..out)), then device-writable
 * ones (iov[out..out+in)), as the spec requires the driver to order them. */
struct vq_chain {
	uint16_t head;
	unsigned out, in;
	size_t out_len, in_len; /* sums, overflow-checked */
	struct iovec iov[VQ_MAX_IOV];
};

/* Resets the queue to its power-on state (not ready, indices 0). */
void vq_reset(struct virtq *vq, const struct guest_mem *mem);

/* Called when the driver writes QueueReady=1: checks size and that the three rings lie in
 * guest RAM with their alignment; -EINVAL (queue left not ready) if not. */
__attribute__((warn_unused_result)) int vq_enable(struct virtq *vq);

/* Takes the next available chain. Returns 1 and fills `chain`, 0 if none is available, or
 * -EINVAL after marking the queue broken if the guest put something invalid there:
 * avail->idx more than `size` ahead, head or next out of range, a loop or a chain longer
 * than the queue, a buffer outside guest RAM or overflowing, a readable buffer after a
 * writable one, a bad indirect table, or more than VQ_MAX_IOV buffers. */
__attribute__((warn_unused_result)) int vq_pop(struct virtq *vq, struct vq_chain *chain);

/* Returns a chain to the driver with `written` bytes written into its writable buffers. */
void vq_push(struct virtq *vq, uint16_t head, uint32_t written);

/* After one or more vq_push: whether the driver wants an interrupt now (honours
 * VRING_AVAIL_F_NO_INTERRUPT, or used_event with EVENT_IDX). */
bool vq_should_notify(struct virtq *vq);

/* Copies up to `len` bytes out of the chain's readable buffers, from byte `offset` of
 * them; returns the bytes copied. And into its writable buffers. */
size_t vq_chain_read(const struct vq_chain *chain, size_t offset, void *dst, size_t len);
size_t vq_chain_write(const struct vq_chain *chain, size_t offset, const void *src, size_t len);

#endif

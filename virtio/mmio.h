/* The virtio-mmio transport (virtio 1.2, 4.2, version 2 registers): register file, status
 * machine, feature negotiation, queue set-up. Knows nothing of KVM: notifications arrive
 * through virtio_mmio_notify() (from an ioeventfd, or a trapped write), interrupts leave
 * through the `irq` callback. */
#ifndef CLAWVM_VIRTIO_MMIO_H
#define CLAWVM_VIRTIO_MMIO_H

#include <linux/virtio_config.h> /* VIRTIO_CONFIG_S_*: the device status bits */
#include <linux/virtio_mmio.h>	 /* VIRTIO_MMIO_*: register offsets, interrupt bits */
#include <stdbool.h>

#include "virtio/virtio.h"

#define VIRTIO_MMIO_SIZE 0x1000

struct virtio_mmio {
	struct virtio_dev *dev;
	const struct guest_mem *mem;
	void (*irq)(void *opaque); /* an edge on the device's interrupt line */
	void *irq_opaque;
	/* A QueueNotify write that no ioeventfd took (it trapped on a vCPU): hands it to the
	 * device's thread, which then calls virtio_mmio_notify. Set by the owner after init,
	 * called with irq_opaque; NULL: such writes are dropped. */
	void (*kick)(void *opaque, unsigned index);

	uint32_t status;
	uint32_t device_features_sel;
	uint32_t driver_features_sel;
	uint64_t driver_features; /* as written, before FEATURES_OK */
	uint32_t queue_sel;
	uint32_t interrupt_status;
	uint32_t config_generation;
	bool reported_broken;
};

void virtio_mmio_init(struct virtio_mmio *m, struct virtio_dev *dev, const struct guest_mem *mem,
		      void (*irq)(void *opaque), void *irq_opaque);
void virtio_mmio_destroy(struct virtio_mmio *m);

/* A guest access of `len` bytes (1, 2, 4 or 8) at `offset` into the register window. */
void virtio_mmio_access(struct virtio_mmio *m, uint64_t offset, uint8_t *data, unsigned len,
			bool is_write);

/* The driver notified queue `index` (QueueNotify). Call on the device's thread only (the
 * event loop). Returns true if the device left work for another call (its budget). */
bool virtio_mmio_notify(struct virtio_mmio *m, unsigned index);

#endif

/* The virtio-mmio devices of a VM: where each sits in guest-physical memory, its interrupt
 * line, and the KVM plumbing (an ioeventfd per queue, an irqfd) that lets notifications and
 * interrupts bypass the vCPU threads. */
#ifndef CLAWVM_DEVICES_H
#define CLAWVM_DEVICES_H

#include "base/evloop.h"
#include "virtio/mmio.h"
#include "vmm/cmdline.h"
#include "vmm/kvm.h"

#define DEVICES_MAX	  16
#define DEVICES_MMIO_BASE 0xd0000000ULL
#define DEVICES_FIRST_GSI 5 /* 3 and 4 are the UARTs' */

struct virtio_slot {
	struct virtio_mmio mmio;
	uint64_t base;
	unsigned gsi;
	int irq_fd;
	struct ev_handler notify[VIRTIO_MAX_QUEUES];
};

struct devices {
	unsigned count;
	struct virtio_slot slot[DEVICES_MAX];
};

/* Places `dev` at the next free window and GSI, wires its ioeventfds and irqfd, and
 * announces it on the kernel command line. */
__attribute__((warn_unused_result)) int
devices_add_virtio(struct devices *d, struct kvm *kvm, struct evloop *loop,
		   const struct guest_mem *mem, struct virtio_dev *dev, struct cmdline *cl);

/* A trapped MMIO access: true if a device took it. */
bool devices_mmio(struct devices *d, uint64_t gpa, uint8_t *data, unsigned len, bool is_write);

void devices_destroy(struct devices *d);

#endif

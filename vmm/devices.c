/* virtio-mmio device slots: 4 KiB windows from 0xd0000000 in the 32-bit MMIO hole, GSIs
 * from 5, announced to the kernel with virtio_mmio.device= as Firecracker does. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "base/log.h"
#include "vmm/devices.h"
#include "vmm/mptable.h"

static void slot_irq(void *opaque)
{
	struct virtio_slot *s = opaque;
	uint64_t one = 1;

	if (write(s->irq_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("virtio: irqfd write: %m");
}

/* Adds one to queue `index`'s notify eventfd: the event loop then serves that queue as if
 * the guest had notified it through the ioeventfd. */
static void slot_kick(void *opaque, unsigned index)
{
	struct virtio_slot *s = opaque;
	uint64_t one = 1;

	if (index < VIRTIO_MAX_QUEUES && s->notify[index].fd >= 0 &&
	    write(s->notify[index].fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("virtio: notify eventfd write: %m");
}

/* A device serves a budget of buffers per notification: if it left some, the queue is
 * kicked again, and the loop serves every other ready fd before it comes back. */
static void slot_notified(struct ev_handler *h, uint32_t events)
{
	struct virtio_slot *s = h->opaque;
	unsigned index = (unsigned)(h - s->notify);

	(void)events;
	if (!evloop_drain(h))
		return;
	if (virtio_mmio_notify(&s->mmio, index))
		slot_kick(s, index);
}

static int slot_wire(struct virtio_slot *s, struct kvm *kvm, struct evloop *loop, unsigned queues)
{
	struct kvm_irqfd irqfd = {.gsi = s->gsi};

	s->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->irq_fd < 0)
		return -errno;
	irqfd.fd = (uint32_t)s->irq_fd;
	if (ioctl(kvm->vm_fd, KVM_IRQFD, &irqfd) < 0)
		return -errno;
	for (unsigned q = 0; q < queues; q++) {
		struct kvm_ioeventfd io = {
		    .datamatch = q,
		    .addr = s->base + VIRTIO_MMIO_QUEUE_NOTIFY,
		    .len = 4,
		    .flags = KVM_IOEVENTFD_FLAG_DATAMATCH,
		};
		int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

		s->notify[q] = (struct ev_handler){.fd = fd, .ready = slot_notified, .opaque = s};
		if (fd < 0)
			return -errno;
		io.fd = fd;
		if (ioctl(kvm->vm_fd, KVM_IOEVENTFD, &io) < 0)
			return -errno;
		if (evloop_add(loop, &s->notify[q], EPOLLIN) < 0)
			return -EIO;
	}
	return 0;
}

int devices_add_virtio(struct devices *d, struct kvm *kvm, struct evloop *loop,
		       const struct guest_mem *mem, struct virtio_dev *dev, struct cmdline *cl)
{
	struct virtio_slot *s;
	char arg[64];
	int ret;

	if (d->count == DEVICES_MAX || DEVICES_FIRST_GSI + d->count >= MPTABLE_IRQS)
		return -ENOSPC;
	s = &d->slot[d->count];
	memset(s, 0, sizeof(*s));
	s->irq_fd = -1;
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		s->notify[q].fd = -1;
	s->base = DEVICES_MMIO_BASE + d->count * (uint64_t)VIRTIO_MMIO_SIZE;
	s->gsi = DEVICES_FIRST_GSI + d->count;
	d->count++;
	virtio_mmio_init(&s->mmio, dev, mem, slot_irq, s);
	s->mmio.kick = slot_kick;
	ret = slot_wire(s, kvm, loop, dev->ops->num_queues);
	if (ret < 0) {
		log_err("virtio-%s: cannot wire its eventfds into KVM: %s", dev->ops->name,
			strerror(-ret));
		return ret;
	}
	snprintf(arg, sizeof(arg), "virtio_mmio.device=4K@0x%llx:%u", (unsigned long long)s->base,
		 s->gsi);
	cmdline_add(cl, arg);
	return 0;
}

bool devices_mmio(struct devices *d, uint64_t gpa, uint8_t *data, unsigned len, bool is_write)
{
	for (unsigned i = 0; i < d->count; i++) {
		struct virtio_slot *s = &d->slot[i];

		if (gpa >= s->base && gpa - s->base < VIRTIO_MMIO_SIZE &&
		    len <= VIRTIO_MMIO_SIZE - (gpa - s->base)) {
			virtio_mmio_access(&s->mmio, gpa - s->base, data, len, is_write);
			return true;
		}
	}
	return false;
}

void devices_destroy(struct devices *d)
{
	for (unsigned i = 0; i < d->count; i++) {
		struct virtio_slot *s = &d->slot[i];

		for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++) {
			if (s->notify[q].fd >= 0)
				close(s->notify[q].fd);
		}
		if (s->irq_fd >= 0)
			close(s->irq_fd);
		virtio_mmio_destroy(&s->mmio);
	}
	d->count = 0;
}

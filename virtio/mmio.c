/* virtio-mmio register file. A driver that writes nonsense (a bad queue_sel, queue set-up
 * while the queue runs, features it was not offered) is ignored and logged once; a driver
 * whose rings break the rules gets DEVICE_NEEDS_RESET. */
#include <endian.h>
#include <string.h>

#include "base/log.h"
#include "virtio/mmio.h"

/* Register offsets, status and interrupt bits: <linux/virtio_mmio.h>, <linux/virtio_config.h>. */
#define MMIO_MAGIC   0x74726976 /* "virt" */
#define MMIO_VERSION 2
#define MMIO_VENDOR  0x57414c43 /* "CLAW" */

static uint64_t transport_features(const struct virtio_dev *dev)
{
	return dev->ops->features | (1ULL << VIRTIO_F_VERSION_1) |
	       (1ULL << VIRTIO_RING_F_INDIRECT_DESC) | (1ULL << VIRTIO_RING_F_EVENT_IDX);
}

static void mmio_used(struct virtio_dev *dev, unsigned index)
{
	struct virtio_mmio *m = dev->transport;

	if (index >= dev->ops->num_queues || !vq_should_notify(&dev->queues[index]))
		return;
	m->interrupt_status |= VIRTIO_MMIO_INT_VRING;
	m->irq(m->irq_opaque);
}

static void mmio_failed(struct virtio_dev *dev)
{
	struct virtio_mmio *m = dev->transport;

	if (m->status & VIRTIO_CONFIG_S_NEEDS_RESET)
		return;
	log_warn_guest("virtio-%s: the driver broke the virtqueue rules; device needs a reset",
		       dev->ops->name);
	m->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
	if (m->status & VIRTIO_CONFIG_S_DRIVER_OK) {
		m->interrupt_status |= VIRTIO_MMIO_INT_CONFIG;
		m->irq(m->irq_opaque);
	}
}

static void mmio_reset(struct virtio_mmio *m)
{
	struct virtio_dev *dev = m->dev;

	if (dev->ops->reset)
		dev->ops->reset(dev);
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		vq_reset(&dev->queues[i], m->mem);
	dev->driver_features = 0;
	m->status = 0;
	m->device_features_sel = 0;
	m->driver_features_sel = 0;
	m->driver_features = 0;
	m->queue_sel = 0;
	m->interrupt_status = 0;
}

void virtio_mmio_init(struct virtio_mmio *m, struct virtio_dev *dev, const struct guest_mem *mem,
		      void (*irq)(void *opaque), void *irq_opaque)
{
	memset(m, 0, sizeof(*m));
	m->dev = dev;
	m->mem = mem;
	m->irq = irq;
	m->irq_opaque = irq_opaque;
	dev->used = mmio_used;
	dev->failed = mmio_failed;
	dev->transport = m;
	pthread_mutex_init(&dev->lock, NULL);
	mmio_reset(m);
}

void virtio_mmio_destroy(struct virtio_mmio *m)
{
	pthread_mutex_destroy(&m->dev->lock);
}

/* The selected queue, or NULL (logged) if queue_sel names none. */
static struct virtq *mmio_queue(struct virtio_mmio *m)
{
	if (m->queue_sel >= m->dev->ops->num_queues)
		return NULL;
	return &m->dev->queues[m->queue_sel];
}

static uint32_t mmio_read_reg(struct virtio_mmio *m, uint64_t offset)
{
	struct virtio_dev *dev = m->dev;
	struct virtq *vq;

	switch (offset) {
	case VIRTIO_MMIO_MAGIC_VALUE:
		return MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION:
		return MMIO_VERSION;
	case VIRTIO_MMIO_DEVICE_ID:
		return dev->ops->device_id;
	case VIRTIO_MMIO_VENDOR_ID:
		return MMIO_VENDOR;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		if (m->device_features_sel > 1)
			return 0;
		return (uint32_t)(transport_features(dev) >> (32 * m->device_features_sel));
	case VIRTIO_MMIO_QUEUE_NUM_MAX:
		return mmio_queue(m) ? dev->ops->queue_max : 0;
	case VIRTIO_MMIO_QUEUE_READY:
		vq = mmio_queue(m);
		return vq && vq->ready;
	case VIRTIO_MMIO_INTERRUPT_STATUS:
		return m->interrupt_status;
	case VIRTIO_MMIO_STATUS:
		return m->status;
	case VIRTIO_MMIO_SHM_LEN_LOW:
	case VIRTIO_MMIO_SHM_LEN_HIGH:
	case VIRTIO_MMIO_SHM_BASE_LOW:
	case VIRTIO_MMIO_SHM_BASE_HIGH:
		return 0xffffffff; /* no shared memory regions */
	case VIRTIO_MMIO_CONFIG_GENERATION:
		return m->config_generation;
	default:
		return 0;
	}
}

/* Queue set-up is only allowed while the queue is not ready (4.2.3.2). */
static struct virtq *mmio_queue_for_setup(struct virtio_mmio *m)
{
	struct virtq *vq = mmio_queue(m);

	if (!vq || vq->ready) {
		log_debug("virtio-%s: queue %u set-up ignored (%s)", m->dev->ops->name,
			  m->queue_sel, vq ? "queue is ready" : "no such queue");
		return NULL;
	}
	return vq;
}

static void set_low(uint64_t *field, uint32_t value)
{
	*field = (*field & 0xffffffff00000000ULL) | value;
}

static void set_high(uint64_t *field, uint32_t value)
{
	*field = (*field & 0xffffffffULL) | ((uint64_t)value << 32);
}

static void mmio_write_status(struct virtio_mmio *m, uint32_t value)
{
	struct virtio_dev *dev = m->dev;

	if (value == 0) {
		mmio_reset(m);
		return;
	}
	if ((value & VIRTIO_CONFIG_S_FEATURES_OK) && !(m->status & VIRTIO_CONFIG_S_FEATURES_OK)) {
		uint64_t offered = transport_features(dev);

		/* Refuse (by not setting FEATURES_OK) features never offered, or a legacy
		 * driver that did not take VERSION_1. */
		if ((m->driver_features & ~offered) ||
		    !(m->driver_features & (1ULL << VIRTIO_F_VERSION_1))) {
			log_debug("virtio-%s: driver features 0x%llx refused", dev->ops->name,
				  (unsigned long long)m->driver_features);
			value &= ~(uint32_t)VIRTIO_CONFIG_S_FEATURES_OK;
		} else {
			dev->driver_features = m->driver_features;
			for (unsigned i = 0; i < dev->ops->num_queues; i++) {
				dev->queues[i].event_idx =
				    virtio_has_feature(dev, VIRTIO_RING_F_EVENT_IDX);
				dev->queues[i].indirect =
				    virtio_has_feature(dev, VIRTIO_RING_F_INDIRECT_DESC);
			}
		}
	}
	/* The driver may only add bits; NEEDS_RESET is the device's to set. */
	m->status = (m->status & VIRTIO_CONFIG_S_NEEDS_RESET) |
		    (value & ~(uint32_t)VIRTIO_CONFIG_S_NEEDS_RESET);
}

static bool mmio_notify_locked(struct virtio_mmio *m, uint32_t index)
{
	struct virtio_dev *dev = m->dev;

	if (index < dev->ops->num_queues && (m->status & VIRTIO_CONFIG_S_DRIVER_OK) &&
	    !(m->status & VIRTIO_CONFIG_S_NEEDS_RESET) && dev->queues[index].ready)
		return dev->ops->queue_notify(dev, index);
	return false;
}

static void mmio_write_reg(struct virtio_mmio *m, uint64_t offset, uint32_t value)
{
	struct virtq *vq;

	switch (offset) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
		m->device_features_sel = value;
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		if (m->status & VIRTIO_CONFIG_S_FEATURES_OK || m->driver_features_sel > 1)
			break;
		if (m->driver_features_sel == 0)
			set_low(&m->driver_features, value);
		else
			set_high(&m->driver_features, value);
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
		m->driver_features_sel = value;
		break;
	case VIRTIO_MMIO_QUEUE_SEL:
		m->queue_sel = value;
		break;
	case VIRTIO_MMIO_QUEUE_NUM:
		/* Above QueueNumMax is invalid (4.2.2.2): size 0, which QueueReady refuses. */
		if ((vq = mmio_queue_for_setup(m)))
			vq->size = value > m->dev->ops->queue_max ? 0 : (uint16_t)value;
		break;
	case VIRTIO_MMIO_QUEUE_READY:
		vq = mmio_queue(m);
		if (!vq)
			break;
		if (value == 0) {
			vq->ready = false;
		} else if (!vq->ready && vq_enable(vq) < 0) {
			log_warn_guest("virtio-%s: queue %u: invalid size or ring addresses",
				       m->dev->ops->name, m->queue_sel);
			m->dev->failed(m->dev);
		}
		break;
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		/* Reached only when no ioeventfd took the write, on a vCPU thread: the device
		 * works its queues on its own thread only, so hand the notification there. */
		if (m->kick && value < m->dev->ops->num_queues)
			m->kick(m->irq_opaque, value);
		break;
	case VIRTIO_MMIO_INTERRUPT_ACK:
		m->interrupt_status &= ~value;
		break;
	case VIRTIO_MMIO_STATUS:
		mmio_write_status(m, value);
		break;
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
		if ((vq = mmio_queue_for_setup(m)))
			set_low(&vq->desc_gpa, value);
		break;
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
		if ((vq = mmio_queue_for_setup(m)))
			set_high(&vq->desc_gpa, value);
		break;
	case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
		if ((vq = mmio_queue_for_setup(m)))
			set_low(&vq->avail_gpa, value);
		break;
	case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
		if ((vq = mmio_queue_for_setup(m)))
			set_high(&vq->avail_gpa, value);
		break;
	case VIRTIO_MMIO_QUEUE_USED_LOW:
		if ((vq = mmio_queue_for_setup(m)))
			set_low(&vq->used_gpa, value);
		break;
	case VIRTIO_MMIO_QUEUE_USED_HIGH:
		if ((vq = mmio_queue_for_setup(m)))
			set_high(&vq->used_gpa, value);
		break;
	case VIRTIO_MMIO_SHM_SEL:
		break;
	default:
		log_debug("virtio-%s: write to read-only or unknown register 0x%llx ignored",
			  m->dev->ops->name, (unsigned long long)offset);
		break;
	}
}

static void mmio_config_access(struct virtio_mmio *m, uint64_t offset, uint8_t *data, unsigned len,
			       bool is_write)
{
	struct virtio_dev *dev = m->dev;
	uint64_t at = offset - VIRTIO_MMIO_CONFIG;

	if (at >= dev->config_len || len > dev->config_len - at) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	if (is_write) {
		memcpy(dev->config + at, data, len);
		if (dev->ops->config_written)
			dev->ops->config_written(dev, (uint32_t)at, len);
	} else {
		memcpy(data, dev->config + at, len);
	}
}

void virtio_mmio_access(struct virtio_mmio *m, uint64_t offset, uint8_t *data, unsigned len,
			bool is_write)
{
	uint32_t value;

	pthread_mutex_lock(&m->dev->lock);
	if (offset >= VIRTIO_MMIO_CONFIG) {
		mmio_config_access(m, offset, data, len, is_write);
	} else if (len != 4 || (offset & 3)) {
		/* Registers are 32 bits wide and aligned (4.2.2.2). */
		if (!is_write)
			memset(data, 0, len);
	} else if (is_write) {
		memcpy(&value, data, 4);
		mmio_write_reg(m, offset, le32toh(value));
	} else {
		value = htole32(mmio_read_reg(m, offset));
		memcpy(data, &value, 4);
	}
	pthread_mutex_unlock(&m->dev->lock);
}

bool virtio_mmio_notify(struct virtio_mmio *m, unsigned index)
{
	bool more;

	pthread_mutex_lock(&m->dev->lock);
	more = mmio_notify_locked(m, index);
	pthread_mutex_unlock(&m->dev->lock);
	return more;
}

/* A virtio device as transports see it: an ops table, its queues, the features the driver
 * took, its config space. The device never knows its transport: it reports used buffers
 * and failures through the two callbacks the transport installs. */
#ifndef CLAWVM_VIRTIO_H
#define CLAWVM_VIRTIO_H

#include <linux/virtio_config.h> /* VIRTIO_F_VERSION_1, VIRTIO_CONFIG_S_* */
#include <linux/virtio_ids.h>	 /* VIRTIO_ID_* */
#include <linux/virtio_ring.h>	 /* VIRTIO_RING_F_*, VRING_* and the ring layouts */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "virtio/queue.h"

#define VIRTIO_MAX_QUEUES 8

struct virtio_dev;

struct virtio_dev_ops {
	const char *name; /* for messages: "rng", "vsock" */
	uint32_t device_id;
	uint64_t features; /* offered besides VERSION_1, INDIRECT_DESC and EVENT_IDX */
	unsigned num_queues;
	uint16_t queue_max;
	/* The driver made buffers available on queue `index`. Runs on the device's own thread
	 * (the event loop), never on a vCPU. Serves at most a budget of buffers per call and
	 * returns true if it left some: the caller calls again after the loop served others. */
	bool (*queue_notify)(struct virtio_dev *dev, unsigned index);
	/* The driver reset the device: forget all state tied to the queues. Runs on the vCPU
	 * that wrote the status register, with the device lock held: it must not free what
	 * another thread may be about to use (mark it dead, let its owning thread free it). */
	void (*reset)(struct virtio_dev *dev);
	/* The driver wrote the config space (bytes [offset, offset+len)), optional. */
	void (*config_written)(struct virtio_dev *dev, uint32_t offset, uint32_t len);
};

struct virtio_dev {
	const struct virtio_dev_ops *ops;
	/* Held by the transport around register accesses and queue_notify, and by the device
	 * itself when it works its queues for another reason (a backend became ready). The
	 * two callbacks below are called with it held. */
	pthread_mutex_t lock;
	struct virtq queues[VIRTIO_MAX_QUEUES];
	uint64_t driver_features;
	uint8_t *config; /* device config space, owned by the device */
	uint32_t config_len;
	/* Installed by the transport. */
	void (*used)(struct virtio_dev *dev, unsigned index); /* maybe interrupt the driver */
	void (*failed)(struct virtio_dev *dev);		      /* set DEVICE_NEEDS_RESET */
	void *transport;
};

static inline int virtio_has_feature(const struct virtio_dev *dev, unsigned bit)
{
	return (dev->driver_features >> bit) & 1;
}

#endif

/* virtio-fs device: queue 0 is the high-priority queue (FORGET, INTERRUPT), queue 1 the one
 * request queue; config space holds the tag and the number of request queues. Both queues
 * are worked by a small pool of threads: each takes one chain under the device lock, serves
 * it with the lock dropped (host I/O may block), and returns it under the lock again. */
#include <endian.h>
#include <errno.h>
#include <linux/fuse.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "virtio/fs.h"

#define FS_QUEUE_SIZE 128
#define FS_NUM_QUEUES 2 /* hiprio + one request queue */

/* The next chain of either queue (hiprio first), or 0. With the lock held. */
static int fs_take(struct virtio_fs *vfs, struct vq_chain *chain, unsigned *index)
{
	struct virtio_dev *dev = &vfs->dev;

	for (unsigned q = 0; q < FS_NUM_QUEUES; q++) {
		int ret = vq_pop(&dev->queues[q], chain);

		if (ret > 0) {
			*index = q;
			return 1;
		}
		if (ret < 0)
			dev->failed(dev);
	}
	return 0;
}

static void *fs_worker(void *arg)
{
	struct virtio_fs *vfs = arg;
	struct virtio_dev *dev = &vfs->dev;
	struct vq_chain chain;
	unsigned index;

	pthread_mutex_lock(&dev->lock);
	while (!vfs->stopping) {
		uint64_t generation;
		uint32_t written;

		if (!fs_take(vfs, &chain, &index)) {
			pthread_cond_wait(&vfs->work, &dev->lock);
			continue;
		}
		generation = vfs->generation;
		pthread_mutex_unlock(&dev->lock);
		written = fuse_server_handle(vfs->server, chain.iov, chain.out,
					     chain.iov + chain.out, chain.in);
		pthread_mutex_lock(&dev->lock);
		if (generation != vfs->generation)
			continue; /* the driver reset the device meanwhile */
		vq_push(&dev->queues[index], chain.head, written);
		dev->used(dev, index);
	}
	pthread_mutex_unlock(&dev->lock);
	return NULL;
}

/* Workers start at the first notification: by then the transport has set up the device
 * lock they run under, and a guest that never mounts the share costs no threads. */
static void fs_start_workers(struct virtio_fs *vfs)
{
	while (vfs->nworkers < VIRTIO_FS_WORKERS) {
		int ret = pthread_create(&vfs->workers[vfs->nworkers], NULL, fs_worker, vfs);

		if (ret != 0) {
			if (vfs->nworkers == 0)
				log_warn("virtio-fs: cannot start a worker thread: %s; will retry",
					 strerror(ret));
			return;
		}
		vfs->nworkers++;
	}
}

/* The workers serve the queues on their own threads: nothing is left for the loop. */
static bool fs_queue_notify(struct virtio_dev *dev, unsigned index)
{
	struct virtio_fs *vfs = (struct virtio_fs *)dev;

	(void)index;
	fs_start_workers(vfs);
	pthread_cond_broadcast(&vfs->work);
	return false;
}

/* The driver starts over (a remount, a reboot of the guest's driver): requests in flight
 * are dropped and the server forgets every node and handle of the old session. */
static void fs_reset(struct virtio_dev *dev)
{
	struct virtio_fs *vfs = (struct virtio_fs *)dev;
	struct fuse_in_header destroy = {.len = sizeof(destroy), .opcode = FUSE_DESTROY};
	struct iovec req = {.iov_base = &destroy, .iov_len = sizeof(destroy)};
	uint8_t reply_buf[sizeof(struct fuse_out_header)];
	struct iovec reply = {.iov_base = reply_buf, .iov_len = sizeof(reply_buf)};

	vfs->generation++;
	if (vfs->server)
		(void)fuse_server_handle(vfs->server, &req, 1, &reply, 1);
}

static const struct virtio_dev_ops fs_ops = {
    .name = "fs",
    .device_id = VIRTIO_ID_FS,
    .num_queues = FS_NUM_QUEUES,
    .queue_max = FS_QUEUE_SIZE,
    .queue_notify = fs_queue_notify,
    .reset = fs_reset,
};

int virtio_fs_init(struct virtio_fs *vfs, const char *tag, const char *root, bool read_only,
		   struct fd_budget *fds)
{
	size_t tag_len = strlen(tag);
	int ret;

	if (tag_len == 0 || tag_len > VIRTIO_FS_TAG_MAX) {
		log_err("virtio-fs: tag `%s` must be 1 to %zu bytes", tag, VIRTIO_FS_TAG_MAX);
		return -EINVAL;
	}
	memset(vfs, 0, sizeof(*vfs));
	vfs->dev.ops = &fs_ops;
	memcpy(vfs->config.tag, tag, tag_len);
	memcpy(vfs->tag, tag, tag_len);
	vfs->config.num_request_queues = htole32(1);
	vfs->dev.config = (uint8_t *)&vfs->config;
	vfs->dev.config_len = sizeof(vfs->config);
	ret = fuse_server_create(root, read_only, fds, &vfs->server);
	if (ret < 0)
		return ret;
	pthread_cond_init(&vfs->work, NULL);
	return 0;
}

void virtio_fs_counters(struct virtio_fs *vfs, struct fuse_counters *out)
{
	fuse_server_counters(vfs->server, out);
}

void virtio_fs_destroy(struct virtio_fs *vfs)
{
	struct fuse_counters counters;

	if (!vfs->server)
		return;
	/* Workers exist only after a notification, so the transport's lock exists too. */
	if (vfs->nworkers) {
		pthread_mutex_lock(&vfs->dev.lock);
		vfs->stopping = true;
		pthread_cond_broadcast(&vfs->work);
		pthread_mutex_unlock(&vfs->dev.lock);
		for (unsigned i = 0; i < vfs->nworkers; i++)
			pthread_join(vfs->workers[i], NULL);
		vfs->nworkers = 0;
	}
	fuse_server_counters(vfs->server, &counters);
	log_debug("virtio-fs %s: %llu requests served", vfs->tag,
		  (unsigned long long)counters.requests);
	pthread_cond_destroy(&vfs->work);
	fuse_server_destroy(vfs->server);
	vfs->server = NULL;
}

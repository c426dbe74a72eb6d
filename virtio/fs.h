/* virtio-fs (virtio 1.2, 5.11): one shared host directory, served by the FUSE passthrough
 * server (virtio/fuse.h) on worker threads, so that a slow host file system never stalls
 * the event loop that carries vsock and the other devices. */
#ifndef CLAWVM_VIRTIO_FS_H
#define CLAWVM_VIRTIO_FS_H

#include <linux/virtio_fs.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "virtio/fuse.h"
#include "virtio/virtio.h"

/* Bytes of the tag in config space (struct virtio_fs_config), no NUL needed: 36. */
#define VIRTIO_FS_TAG_MAX sizeof(((struct virtio_fs_config *)0)->tag)
#define VIRTIO_FS_WORKERS 2

struct virtio_fs {
	struct virtio_dev dev;
	struct virtio_fs_config config;
	struct fuse_server *server;
	/* Workers sleep on `work` (with dev.lock) until the driver notifies or `stopping`. */
	pthread_cond_t work;
	bool stopping;
	/* Bumped on every device reset: a worker finishing a request popped before the reset
	 * drops its reply instead of writing into rings the driver gave up. */
	uint64_t generation;
	pthread_t workers[VIRTIO_FS_WORKERS];
	unsigned nworkers;
	char tag[VIRTIO_FS_TAG_MAX + 1];
};

/* Shares the directory `root` under `tag` (1 to 36 bytes); read-only shares refuse writes
 * on the host side. The worker threads start with the driver's first notification. */
__attribute__((warn_unused_result)) int virtio_fs_init(struct virtio_fs *vfs, const char *tag,
						       const char *root, bool read_only,
						       struct fd_budget *fds);
/* The FUSE server's counters (requests, bytes read and written). Thread-safe, between
 * virtio_fs_init and virtio_fs_destroy. */
void virtio_fs_counters(struct virtio_fs *vfs, struct fuse_counters *out);
/* Stops the workers (after the requests they serve) and closes the share. */
void virtio_fs_destroy(struct virtio_fs *vfs);

#endif

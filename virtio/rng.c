/* virtio-rng (virtio 1.2, 5.4): one request queue whose device-writable buffers are filled
 * with random bytes. Bounded per request and per notification, so that neither one huge
 * buffer nor a guest that refills the queue as fast as it is served stalls the event loop. */
#include <errno.h>
#include <sys/random.h>

#include "base/log.h"
#include "virtio/rng.h"

#define RNG_QUEUE_SIZE	    64
#define RNG_MAX_PER_REQUEST 65536
/* Requests served per notification (then the event loop serves others and comes back): at
 * most 2 MiB of getrandom per turn, however fast the guest refills the queue. */
#define RNG_BUDGET 32

static uint32_t rng_fill(const struct vq_chain *chain)
{
	uint32_t written = 0;

	for (unsigned i = chain->out; i < chain->out + chain->in; i++) {
		uint8_t *p = chain->iov[i].iov_base;
		size_t len = chain->iov[i].iov_len;

		while (len && written < RNG_MAX_PER_REQUEST) {
			size_t want = len;
			ssize_t n;

			if (want > RNG_MAX_PER_REQUEST - written)
				want = RNG_MAX_PER_REQUEST - written;
			n = getrandom(p, want, 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return written;
			p += n;
			len -= (size_t)n;
			written += (uint32_t)n;
		}
	}
	return written;
}

static bool rng_queue_notify(struct virtio_dev *dev, unsigned index)
{
	struct virtio_rng *rng = (struct virtio_rng *)dev;
	struct virtq *vq = &dev->queues[index];
	struct vq_chain chain;
	unsigned served = 0;
	int ret = 0;

	while (served < RNG_BUDGET && (ret = vq_pop(vq, &chain)) > 0) {
		uint32_t written = rng_fill(&chain);

		vq_push(vq, chain.head, written);
		atomic_fetch_add_explicit(&rng->bytes, written, memory_order_relaxed);
		served++;
	}
	if (ret < 0)
		dev->failed(dev);
	dev->used(dev, index);
	return served == RNG_BUDGET;
}

static const struct virtio_dev_ops rng_ops = {
    .name = "rng",
    .device_id = VIRTIO_ID_RNG,
    .num_queues = 1,
    .queue_max = RNG_QUEUE_SIZE,
    .queue_notify = rng_queue_notify,
};

void virtio_rng_init(struct virtio_rng *rng)
{
	*rng = (struct virtio_rng){.dev = {.ops = &rng_ops}};
}

uint64_t virtio_rng_bytes(struct virtio_rng *rng)
{
	return atomic_load_explicit(&rng->bytes, memory_order_relaxed);
}

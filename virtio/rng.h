/* virtio-rng: entropy for the guest from the host's getrandom(). */
#ifndef CLAWVM_VIRTIO_RNG_H
#define CLAWVM_VIRTIO_RNG_H

#include "virtio/virtio.h"

struct virtio_rng {
	struct virtio_dev dev;
};

void virtio_rng_init(struct virtio_rng *rng);

#endif

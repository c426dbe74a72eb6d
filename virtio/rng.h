/* virtio-rng: entropy for the guest from the host's getrandom(). */
#ifndef CLAWVM_VIRTIO_RNG_H
#define CLAWVM_VIRTIO_RNG_H

#include <stdatomic.h>
#include <stdint.h>

#include "virtio/virtio.h"

struct virtio_rng {
	struct virtio_dev dev;
	_Atomic uint64_t bytes; /* given to the guest; read by any thread (virtio_rng_bytes) */
};

void virtio_rng_init(struct virtio_rng *rng);
/* Random bytes given to the guest so far. Thread-safe. */
uint64_t virtio_rng_bytes(struct virtio_rng *rng);

#endif

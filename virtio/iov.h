/* Copies between flat buffers and scatter lists of guest buffers (a chain's iovecs), for
 * the virtqueue and the FUSE server alike. The iovecs were checked when the chain was
 * taken; these only never step past them. */
#ifndef CLAWVM_VIRTIO_IOV_H
#define CLAWVM_VIRTIO_IOV_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

/* Copies up to `len` bytes between `buf` and iov[0..n), starting `offset` bytes into the
 * iovecs (into them if `into_iov`); returns the bytes copied. */
size_t iov_copy(const struct iovec *iov, unsigned n, size_t offset, void *buf, size_t len,
		bool into_iov);

#endif

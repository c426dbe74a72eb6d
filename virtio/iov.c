/* Scatter-list copies (iov.h). */
#include <stdint.h>
#include <string.h>

#include "virtio/iov.h"

size_t iov_copy(const struct iovec *iov, unsigned n, size_t offset, void *buf, size_t len,
		bool into_iov)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		size_t chunk;

		if (offset >= iov[i].iov_len) {
			offset -= iov[i].iov_len;
			continue;
		}
		chunk = iov[i].iov_len - offset;
		if (chunk > len - done)
			chunk = len - done;
		if (into_iov)
			memcpy((uint8_t *)iov[i].iov_base + offset, (uint8_t *)buf + done, chunk);
		else
			memcpy((uint8_t *)buf + done, (uint8_t *)iov[i].iov_base + offset, chunk);
		done += chunk;
		offset = 0;
	}
	return done;
}

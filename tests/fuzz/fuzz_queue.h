/* The input format of the virtqueue fuzz target, shared with the replay driver that
 * generates inputs when libFuzzer is not available (gcc builds).
 *
 * An input is a 4-byte header, then up to FUZZ_IMAGE_SIZE bytes copied to the start of a
 * FUZZ_RAM_SIZE guest RAM (the rest of RAM is zero), then 4-byte patches (le16 offset,
 * le16 value) that the "driver" writes into RAM, one after each vq_pop, as a driver running
 * on another vCPU would. */
#ifndef CLAWVM_TESTS_FUZZ_QUEUE_H
#define CLAWVM_TESTS_FUZZ_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#define FUZZ_RAM_SIZE	0x10000
#define FUZZ_HDR_SIZE	4
#define FUZZ_IMAGE_SIZE 0x2000
#define FUZZ_PATCH_SIZE 4
#define FUZZ_MAX_ROUNDS 256

/* The available ring first and the descriptor table right after it, so that short inputs
 * already hold whole chains; the used ring is the device's, outside the image. */
#define FUZZ_MAX_QSIZE 128
#define FUZZ_AVAIL_GPA 0x0
#define FUZZ_USED_GPA  0xe000
/* Free for indirect tables (up to 256 entries) and buffers. */
#define FUZZ_TABLE_GPA 0x1000

static inline uint64_t fuzz_desc_gpa(unsigned qsize)
{
	return (4 + 2 * qsize + 2 + 15) & ~15ULL;
}

/* Header byte 0: queue size 1 << (b & 7), or the raw value b & 0x7f if bit 7 is set
 * (possibly 0 or not a power of two). */
#define FUZZ_SIZE_RAW 0x80
/* Header byte 1: negotiated features, and ring placements vq_enable must refuse. */
#define FUZZ_EVENT_IDX	      0x01
#define FUZZ_INDIRECT	      0x02
#define FUZZ_USED_MISALIGNED  0x04
#define FUZZ_DESC_OUTSIDE_RAM 0x08
/* Header bytes 2-3: le16 starting last_avail/used_idx, to cross the 16-bit wrap. */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif

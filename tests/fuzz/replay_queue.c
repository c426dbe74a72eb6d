/* Runs the virtqueue fuzz target without libFuzzer (gcc builds, CI under ASan/UBSan):
 *   fuzz_queue_replay FILE...          replays inputs (crashes, a corpus)
 *   fuzz_queue_replay [RUNS [SEED]]    RUNS generated inputs, 20000 by default
 * Generated inputs are random but shaped like rings (descriptors mostly pointing into RAM,
 * small lengths, next and head mostly in range, avail->idx near last_avail), since purely
 * random bytes would break the queue at the first descriptor and test nothing else. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_queue.h"
#include "replay.h"
#include "tests/fixtures/vq_driver.h"

static void put_le(uint8_t *p, uint64_t value, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		p[i] = (uint8_t)(value >> (8 * i));
}

static uint64_t some_addr(void)
{
	switch (below(16)) {
	case 0:
		return rnd();
	case 1:
		return FUZZ_RAM_SIZE - below(64);
	case 2:
		return UINT64_MAX - below(4096);
	case 3:
	case 4:
		return 16 * below(FUZZ_IMAGE_SIZE / 16); /* an indirect table in the image */
	default:
		return below(FUZZ_RAM_SIZE);
	}
}

static uint32_t some_len(void)
{
	switch (below(16)) {
	case 0:
		return 0;
	case 1:
		return (uint32_t)rnd();
	case 2: /* an indirect table length, past VQ_MAX_SIZE entries too */
		return 16 * (uint32_t)below(1100);
	case 3:
		return 16 * (uint32_t)below(9) + (uint32_t)below(2) * 8;
	default:
		return (uint32_t)below(600);
	}
}

static uint16_t some_flags(void)
{
	/* NEXT often, WRITE half the time, INDIRECT now and then, junk bits rarely. */
	uint16_t flags = below(4) ? 1 : 0;

	flags |= below(2) ? 2 : 0;
	flags |= below(8) ? 0 : 4;
	flags |= below(32) ? 0 : (uint16_t)rnd();
	return flags;
}

static size_t generate(uint8_t *in, size_t cap)
{
	uint16_t qsize, start = below(4) ? (uint16_t)rnd() : (uint16_t)(0 - below(4));
	size_t len;

	memset(in, 0, cap);
	in[0] = below(16) ? (uint8_t)below(8) : (uint8_t)rnd();
	in[1] = (uint8_t)below(4) | (below(32) ? 0 : (uint8_t)rnd() & 0x0c);
	put_le(in + 2, start, 2);
	qsize = in[0] & 0x80 ? in[0] & 0x7f : 1u << (in[0] & 7);
	if (qsize == 0)
		qsize = 1;

	/* Descriptor-shaped records over the whole image, so that indirect tables pointing
	 * into it find descriptors too; then real rings on top. */
	for (size_t off = 0; off + 16 <= FUZZ_IMAGE_SIZE; off += 16) {
		uint64_t addr = some_addr();
		uint32_t len = some_len();
		uint16_t flags = some_flags();
		uint16_t next = (uint16_t)(below(8) ? below(qsize + 1u) : below(256));

		vqd_desc_encode(in + FUZZ_HDR_SIZE + off, addr, len, flags, next);
	}
	{
		uint8_t *avail = in + FUZZ_HDR_SIZE + FUZZ_AVAIL_GPA;
		uint16_t ahead = below(8) ? (uint16_t)below(qsize + 1u) : (uint16_t)rnd();

		put_le(avail, below(4) ? 0 : below(4), 2);
		put_le(avail + 2, (uint16_t)(start + ahead), 2);
		for (unsigned i = 0; i <= qsize; i++)
			put_le(avail + 4 + 2 * i, below(16) ? below(qsize) : rnd(), 2);
	}
	/* Now and then a long well-formed indirect chain, around VQ_MAX_IOV buffers. */
	if (!below(8)) {
		unsigned n = 120 + (unsigned)below(16);
		uint8_t *table = in + FUZZ_HDR_SIZE + FUZZ_TABLE_GPA;
		uint8_t *head = in + FUZZ_HDR_SIZE + fuzz_desc_gpa(qsize) + 16 * below(qsize);

		for (unsigned i = 0; i < n; i++) {
			uint64_t addr = below(FUZZ_RAM_SIZE - 64);
			uint32_t len = 1 + (uint32_t)below(64);

			vqd_desc_encode(table + 16 * i, addr, len,
					i + 1 < n ? VRING_DESC_F_NEXT : 0, (uint16_t)(i + 1));
		}
		vqd_desc_encode(head, FUZZ_TABLE_GPA, 16 * n, VRING_DESC_F_INDIRECT, 0);
	}
	len = FUZZ_HDR_SIZE + FUZZ_IMAGE_SIZE;

	/* Patches: mostly bumps of avail->idx and rewritten descriptors. */
	for (unsigned n = below(8); n > 0 && len + FUZZ_PATCH_SIZE <= cap; n--) {
		uint16_t offset, value;

		switch (below(3)) {
		case 0:
			offset = FUZZ_AVAIL_GPA + 2;
			value = (uint16_t)(start + below(qsize + 2u));
			break;
		case 1:
			offset = fuzz_desc_gpa(qsize) + 16 * below(qsize) + 12 + 2 * below(2);
			value = (uint16_t)below(8);
			break;
		default:
			offset = (uint16_t)rnd();
			value = (uint16_t)rnd();
		}
		put_le(in + len, offset, 2);
		put_le(in + len + 2, value, 2);
		len += FUZZ_PATCH_SIZE;
	}
	return len;
}

const struct replay_target replay_target = {
    "fuzz_queue_replay", FUZZ_HDR_SIZE + FUZZ_IMAGE_SIZE + 16 * FUZZ_PATCH_SIZE, 20000, generate};

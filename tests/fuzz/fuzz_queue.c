/* libFuzzer target for the virtqueue walker (virtio/queue.c): the input is a small guest
 * RAM holding the rings (see fuzz_queue.h), and a device serves the queue until it is
 * empty or broken, reading and writing every chain it gets. Besides the sanitizers, the
 * target checks what queue.h promises: chains inside guest RAM with exact totals, copies
 * bounded by them, indices moving by one, and a broken queue staying broken. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "fuzz_queue.h"
#include "virtio/queue.h"
#include "base/log.h"

static uint8_t scratch[FUZZ_RAM_SIZE];

static uint16_t le16_at(const uint8_t *p)
{
	return p[0] | p[1] << 8;
}

static size_t min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

static void check_chain(const struct guest_mem *gm, const struct virtq *vq,
			const struct vq_chain *chain)
{
	size_t out_len = 0, in_len = 0;

	CHECK(chain->head < vq->size);
	CHECK(chain->out + chain->in <= VQ_MAX_IOV);
	for (unsigned i = 0; i < chain->out + chain->in; i++) {
		const uint8_t *base = chain->iov[i].iov_base;
		size_t len = chain->iov[i].iov_len;

		CHECK(len > 0 && len <= gm->size);
		CHECK(base >= gm->host && (size_t)(base - gm->host) <= gm->size - len);
		if (i < chain->out)
			out_len += len;
		else
			in_len += len;
	}
	CHECK(out_len == chain->out_len);
	CHECK(in_len == chain->in_len);
}

/* What a device does with a chain: reads its request from some offset, writes a reply.
 * Returns the bytes written. */
static uint32_t serve_chain(const struct vq_chain *chain, uint16_t seed)
{
	size_t offset = seed % (chain->out_len + 1);
	size_t want = min_size(chain->out_len - offset, sizeof(scratch));
	size_t written;

	CHECK(vq_chain_read(chain, offset, scratch, sizeof(scratch)) == want);
	CHECK(vq_chain_read(chain, chain->out_len, scratch, 1) == 0);
	offset = seed % (chain->in_len + 1);
	want = min_size(chain->in_len - offset, sizeof(scratch));
	CHECK(vq_chain_write(chain, offset, scratch, sizeof(scratch)) == want);
	written = vq_chain_write(chain, 0, scratch, min_size(chain->in_len, sizeof(scratch)));
	CHECK(written == min_size(chain->in_len, sizeof(scratch)));
	return (uint32_t)written;
}

static uint16_t queue_size(uint8_t b)
{
	return b & FUZZ_SIZE_RAW ? b & 0x7f : 1u << (b & 7);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *patch, *end = data + size;
	struct vq_chain chain;
	struct guest_mem gm;
	struct virtq vq;
	uint8_t *ram;
	bool valid;

	log_max_level = LOG_ERR; /* the queue's warnings, once per input, are noise here */
	if (size < FUZZ_HDR_SIZE)
		return 0;
	ram = calloc(1, FUZZ_RAM_SIZE); /* exactly RAM-sized: ASan sees any byte beyond */
	CHECK(ram);
	memcpy(ram, data + FUZZ_HDR_SIZE, min_size(size - FUZZ_HDR_SIZE, FUZZ_IMAGE_SIZE));
	patch =
	    size > FUZZ_HDR_SIZE + FUZZ_IMAGE_SIZE ? data + FUZZ_HDR_SIZE + FUZZ_IMAGE_SIZE : end;
	gm_init_buffer(&gm, ram, FUZZ_RAM_SIZE);

	vq_reset(&vq, &gm);
	vq.size = queue_size(data[0]);
	vq.event_idx = data[1] & FUZZ_EVENT_IDX;
	vq.indirect = data[1] & FUZZ_INDIRECT;
	vq.desc_gpa = data[1] & FUZZ_DESC_OUTSIDE_RAM ? FUZZ_RAM_SIZE - 16ull * vq.size + 16
						      : fuzz_desc_gpa(vq.size);
	vq.avail_gpa = FUZZ_AVAIL_GPA;
	vq.used_gpa = FUZZ_USED_GPA + (data[1] & FUZZ_USED_MISALIGNED ? 2 : 0);
	vq.last_avail = vq.used_idx = le16_at(data + 2);
	valid = vq.size && !(vq.size & (vq.size - 1)) &&
		!(data[1] & (FUZZ_USED_MISALIGNED | FUZZ_DESC_OUTSIDE_RAM));
	CHECK((vq_enable(&vq) == 0) == valid);
	CHECK(vq.ready == valid);

	for (unsigned round = 0; valid && round < FUZZ_MAX_ROUNDS; round++) {
		uint16_t last_avail = vq.last_avail, used_idx = vq.used_idx;
		int ret = vq_pop(&vq, &chain);

		CHECK(ret == 1 || ret == 0 || ret == -EINVAL);
		if (ret == 1) {
			CHECK(vq.last_avail == (uint16_t)(last_avail + 1));
			check_chain(&gm, &vq, &chain);
			vq_push(&vq, chain.head, serve_chain(&chain, used_idx));
			CHECK(vq.used_idx == (uint16_t)(used_idx + 1));
			CHECK(le16_at(ram + vq.used_gpa + 2) == vq.used_idx);
			(void)vq_should_notify(&vq);
		} else {
			CHECK(vq.last_avail == last_avail);
		}
		if (ret < 0) {
			CHECK(vq.broken);
			CHECK(vq_pop(&vq, &chain) == -EINVAL);
			vq_push(&vq, 0, 0);
			CHECK(vq.used_idx == used_idx);
			break;
		}
		/* The driver, running concurrently, writes something. */
		if (end - patch >= FUZZ_PATCH_SIZE) {
			uint16_t offset = le16_at(patch) & ~1u;

			memcpy(ram + offset, patch + 2, 2);
			patch += FUZZ_PATCH_SIZE;
		} else if (ret == 0) {
			break;
		}
	}
	free(ram);
	return 0;
}

/* The attacks of the hostile guest program's mmio phase, on a spare device it drives:
 * rings that break the virtqueue rules one at a time, queue sizes above QueueNumMax, random
 * register writes with resets in the middle of use, and rings that never run dry. What the
 * device does with each is printed for people; what the soak asserts is that the VMM lives
 * through all of it, within its bounds, and still serves the guest's other devices. */
#include <linux/fuse.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_ring.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hostile_mmio.h"

#define F_VERSION_1   (1ULL << 32)
#define F_INDIRECT    (1ULL << 28)
#define F_EVENT_IDX   (1ULL << 29)
#define OUTCOME_WAIT  300 /* ms: a device that neither serves nor refuses by then ignores */
#define NO_RAM_OFFSET (16 * PAGE_SIZE)

/* --- rings that break one rule each ------------------------------------------------------ */

/* Each builds on a clean ring of the spare's QueueNumMax entries, negotiated with indirect
 * descriptors, and offers what it built; the caller notifies and watches. */
struct ring_case {
	const char *name;
	void (*build)(struct mmio_ctx *c, struct spare *s);
};

static void build_valid(struct mmio_ctx *c, struct spare *s)
{
	(void)c;
	ring_offer(&s->ring, chain_valid(s, 0));
}

static void build_desc_loop(struct mmio_ctx *c, struct spare *s)
{
	struct ring *r = &s->ring;

	(void)c;
	desc_set(&r->desc, 0, r->buf.gpa, 64, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	desc_set(&r->desc, 1, r->buf.gpa, 64, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 0);
	ring_offer(r, 0);
}

static void build_self_loop(struct mmio_ctx *c, struct spare *s)
{
	(void)c;
	desc_set(&s->ring.desc, 0, s->ring.buf.gpa, 64, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 0);
	ring_offer(&s->ring, 0);
}

static void build_head_out_of_range(struct mmio_ctx *c, struct spare *s)
{
	(void)c;
	chain_valid(s, 0);
	ring_offer(&s->ring, s->ring.size);
	ring_offer(&s->ring, 0xffff);
}

static void build_next_out_of_range(struct mmio_ctx *c, struct spare *s)
{
	(void)c;
	desc_set(&s->ring.desc, 0, s->ring.buf.gpa, 64, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT,
		 s->ring.size + 5);
	ring_offer(&s->ring, 0);
}

static void build_buffer_outside_ram(struct mmio_ctx *c, struct spare *s)
{
	desc_set(&s->ring.desc, 0, c->ram_end + NO_RAM_OFFSET, PAGE_SIZE, VRING_DESC_F_WRITE, 0);
	ring_offer(&s->ring, 0);
}

static void build_buffer_wraps(struct mmio_ctx *c, struct spare *s)
{
	(void)c;
	desc_set(&s->ring.desc, 0, 0xfffffffffffff000ULL, 0x2000, VRING_DESC_F_WRITE, 0);
	ring_offer(&s->ring, 0);
}

static void build_buffer_huge(struct mmio_ctx *c, struct spare *s)
{
	(void)c;
	desc_set(&s->ring.desc, 0, s->ring.buf.gpa, 0xffffffff, VRING_DESC_F_WRITE, 0);
	ring_offer(&s->ring, 0);
}

static void build_avail_far_ahead(struct mmio_ctx *c, struct spare *s)
{
	uint16_t *avail = (uint16_t *)s->ring.avail.va;

	(void)c;
	chain_valid(s, 0);
	__atomic_store_n(&avail[1], (uint16_t)(s->ring.size + 10), __ATOMIC_RELEASE);
}

static void build_readable_after_writable(struct mmio_ctx *c, struct spare *s)
{
	(void)c;
	desc_set(&s->ring.desc, 0, s->ring.buf.gpa, 64, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	desc_set(&s->ring.desc, 1, s->ring.buf.gpa, 64, 0, 0);
	ring_offer(&s->ring, 0);
}

static void build_zero_lengths(struct mmio_ctx *c, struct spare *s)
{
	(void)c;
	desc_set(&s->ring.desc, 0, 0, 0, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	desc_set(&s->ring.desc, 1, c->ram_end + NO_RAM_OFFSET, 0, VRING_DESC_F_WRITE, 0);
	ring_offer(&s->ring, 0);
}

/* Descriptor 0 points at our indirect page with `len` bytes and `flags` besides INDIRECT. */
static void offer_indirect(struct spare *s, uint64_t addr, uint32_t len, uint16_t flags)
{
	desc_set(&s->ring.desc, 0, addr, len, VRING_DESC_F_INDIRECT | flags, 1);
	desc_set(&s->ring.desc, 1, s->ring.buf.gpa, 64, VRING_DESC_F_WRITE, 0);
	ring_offer(&s->ring, 0);
}

static void build_indirect_bad_length(struct mmio_ctx *c, struct spare *s)
{
	(void)c;
	desc_set(&s->ring.indirect, 0, s->ring.buf.gpa, 64, VRING_DESC_F_WRITE, 0);
	offer_indirect(s, s->ring.indirect.gpa, 17, 0);
}

static void build_indirect_nested(struct mmio_ctx *c, struct spare *s)
{
	(void)c;
	desc_set(&s->ring.indirect, 0, s->ring.indirect.gpa, 32, VRING_DESC_F_INDIRECT, 0);
	offer_indirect(s, s->ring.indirect.gpa, 32, 0);
}

static void build_indirect_loop(struct mmio_ctx *c, struct spare *s)
{
	struct page *t = &s->ring.indirect;

	(void)c;
	desc_set(t, 0, s->ring.buf.gpa, 64, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	desc_set(t, 1, s->ring.buf.gpa, 64, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 0);
	offer_indirect(s, t->gpa, 32, 0);
}

/* A whole page of indirect descriptors, 256 buffers in one chain. */
static void build_indirect_too_many(struct mmio_ctx *c, struct spare *s)
{
	unsigned n = PAGE_SIZE / sizeof(struct vring_desc);

	(void)c;
	for (unsigned i = 0; i < n; i++)
		desc_set(&s->ring.indirect, i, s->ring.buf.gpa + 16 * i, 16,
			 VRING_DESC_F_WRITE | (i + 1 < n ? VRING_DESC_F_NEXT : 0),
			 (uint16_t)(i + 1));
	offer_indirect(s, s->ring.indirect.gpa, PAGE_SIZE, 0);
}

static void build_indirect_with_next(struct mmio_ctx *c, struct spare *s)
{
	(void)c;
	desc_set(&s->ring.indirect, 0, s->ring.buf.gpa, 64, VRING_DESC_F_WRITE, 0);
	offer_indirect(s, s->ring.indirect.gpa, 16, VRING_DESC_F_NEXT);
}

static void build_indirect_outside_ram(struct mmio_ctx *c, struct spare *s)
{
	offer_indirect(s, c->ram_end + NO_RAM_OFFSET, 256, 0);
}

/* Queue set-up written while the queue runs must change nothing: the chain after it is
 * served from the rings set up first. */
static void build_setup_while_ready(struct mmio_ctx *c, struct spare *s)
{
	reg_write(c, s, VIRTIO_MMIO_QUEUE_SEL, s->queue);
	reg_write(c, s, VIRTIO_MMIO_QUEUE_NUM, 1);
	reg_write(c, s, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)(c->ram_end + NO_RAM_OFFSET));
	reg_write(c, s, VIRTIO_MMIO_QUEUE_USED_HIGH, 0xffffffff);
	ring_offer(&s->ring, chain_valid(s, 0));
}

static const struct ring_case ring_cases[] = {
    {"valid", build_valid},
    {"descriptor-loop", build_desc_loop},
    {"self-loop", build_self_loop},
    {"head-out-of-range", build_head_out_of_range},
    {"next-out-of-range", build_next_out_of_range},
    {"buffer-outside-ram", build_buffer_outside_ram},
    {"buffer-wraps-2^64", build_buffer_wraps},
    {"buffer-4GiB", build_buffer_huge},
    {"avail-idx-far-ahead", build_avail_far_ahead},
    {"readable-after-writable", build_readable_after_writable},
    {"zero-length-buffers", build_zero_lengths},
    {"indirect-bad-length", build_indirect_bad_length},
    {"indirect-nested", build_indirect_nested},
    {"indirect-loop", build_indirect_loop},
    {"indirect-256-buffers", build_indirect_too_many},
    {"indirect-with-next", build_indirect_with_next},
    {"indirect-outside-ram", build_indirect_outside_ram},
    {"setup-while-ready", build_setup_while_ready},
};

void attack_ring_cases(struct mmio_ctx *c, struct spare *s)
{
	char line[2048];
	int len = snprintf(line, sizeof(line), "mmio: %s rings:", s->name);

	for (size_t i = 0; i < sizeof(ring_cases) / sizeof(ring_cases[0]); i++) {
		const struct ring_case *rc = &ring_cases[i];
		enum outcome o = IGNORED;
		uint64_t features = F_VERSION_1 | F_INDIRECT | (i % 2 ? F_EVENT_IDX : 0);

		if (drv_start(c, s, features, (uint16_t)s->queue_max)) {
			rc->build(c, s);
			dev_notify(c, s, s->queue);
			o = wait_outcome(c, s, 1, OUTCOME_WAIT);
		}
		len += snprintf(line + len, sizeof(line) - (size_t)len, " %s=%s", rc->name,
				outcome_name(o));
		dev_reset(c, s);
	}
	printf("%s\n", line);
}

/* --- queue sizes ------------------------------------------------------------------------- */

/* QueueNum values a driver must not write: above QueueNumMax (twice it, which our pages
 * still hold whole, and 1024, which they do not: never notified), zero, not a power of two,
 * beyond 16 bits. */
void attack_queue_num(struct mmio_ctx *c, struct spare *s)
{
	const uint32_t sizes[] = {2 * s->queue_max, 1024, 0, 3, 0x10000, 0xffffffff};

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint32_t num = sizes[i];
		const char *what = "refused";
		bool ready;

		ring_clear(&s->ring);
		s->ring.size = (uint16_t)(num <= 2 * SAFE_QUEUE_SIZE ? num : 1);
		ready = drv_begin(c, s, F_VERSION_1) && queue_begin(c, s, s->queue, num);
		if (ready && num > s->queue_max)
			c->st.over_max_accepted++;
		if (ready && num <= 2 * SAFE_QUEUE_SIZE && num) {
			/* Whole rings inside our pages: see what the device makes of it. */
			drv_go(c, s);
			ring_offer(&s->ring, chain_valid(s, 0));
			dev_notify(c, s, s->queue);
			what = outcome_name(wait_outcome(c, s, 1, OUTCOME_WAIT));
		} else if (ready) {
			what = "accepted";
		}
		printf("mmio: %s: QueueNum %u with QueueNumMax %u: %s\n", s->name, num,
		       s->queue_max, what);
		dev_reset(c, s);
	}
}

/* --- random register writes -------------------------------------------------------------- */

static uint64_t pick(struct mmio_ctx *c, const uint64_t *choices, size_t n)
{
	return choices[rng_below(&c->rng, (uint32_t)n)];
}

/* A low half for a queue address register: our own ring page for that role (perhaps
 * misaligned), or somewhere above guest RAM. With any high half but 0 the address lies
 * above 4 GiB, where this guest has no RAM either. */
static uint32_t hostile_low(struct mmio_ctx *c, const struct page *own, unsigned misalign)
{
	uint64_t no_ram_span = 0x100000000ULL - c->ram_end;
	const uint64_t choices[] = {
	    own->gpa,
	    own->gpa + misalign,
	    c->ram_end + (rng_next(&c->rng) % no_ram_span & ~0xfffULL),
	    0xfffff000,
	};

	return (uint32_t)pick(c, choices, sizeof(choices) / sizeof(choices[0]));
}

/* A value for the register at `offset` that is hostile but keeps the device's writes in our
 * pages (see hostile_mmio.h). */
static uint32_t hostile_value(struct mmio_ctx *c, struct spare *s, unsigned offset)
{
	struct ring *r = &s->ring;
	const uint64_t sizes[] = {0, 1, 2, 3, 16, 64, SAFE_QUEUE_SIZE, 1000, 0x10000, 0xffffffff};
	const uint64_t highs[] = {0, 0, 1, 0xffffffff, rng_next(&c->rng) | 1};

	switch (offset) {
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
		return hostile_low(c, &r->desc, 8);
	case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
		return hostile_low(c, &r->avail, 1);
	case VIRTIO_MMIO_QUEUE_USED_LOW:
		return hostile_low(c, &r->used, 2);
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
	case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
	case VIRTIO_MMIO_QUEUE_USED_HIGH:
		return (uint32_t)pick(c, highs, sizeof(highs) / sizeof(highs[0]));
	case VIRTIO_MMIO_QUEUE_NUM:
		return (uint32_t)pick(c, sizes, sizeof(sizes) / sizeof(sizes[0]));
	case VIRTIO_MMIO_QUEUE_SEL:
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		return rng_below(&c->rng, 4) ? rng_below(&c->rng, VIRTIO_MMIO_CONFIG / 4)
					     : (uint32_t)rng_next(&c->rng);
	case VIRTIO_MMIO_STATUS:
		return rng_below(&c->rng, 4) ? rng_below(&c->rng, 256) : 0;
	default:
		return (uint32_t)rng_next(&c->rng);
	}
}

/* Chains that are bad in ways the device must refuse, but whose every buffer the device may
 * write lies in our buffer pages or outside RAM, and whose indirect tables are our page. */
static void mutate_ring(struct mmio_ctx *c, struct spare *s)
{
	struct ring *r = &s->ring;
	unsigned off = rng_below(&c->rng, PAGE_SIZE);
	const uint64_t addrs[] = {r->buf.gpa + off, r->reply.gpa + off, c->ram_end + NO_RAM_OFFSET,
				  0xfffffffffffff000ULL};
	uint16_t flags = (uint16_t)rng_below(&c->rng, 8); /* NEXT, WRITE, INDIRECT */
	uint64_t addr = pick(c, addrs, sizeof(addrs) / sizeof(addrs[0]));
	uint32_t len = addr < c->ram_end ? rng_below(&c->rng, PAGE_SIZE - off + 1)
					 : (uint32_t)rng_next(&c->rng);
	struct page *table = rng_below(&c->rng, 4) ? &r->desc : &r->indirect;
	uint16_t next =
	    (uint16_t)(rng_below(&c->rng, 2) ? rng_below(&c->rng, 8) : rng_next(&c->rng));
	uint16_t *avail = (uint16_t *)r->avail.va;

	if (flags & VRING_DESC_F_INDIRECT) {
		addr = rng_below(&c->rng, 4) ? r->indirect.gpa : c->ram_end + NO_RAM_OFFSET;
		len = addr == r->indirect.gpa ? rng_below(&c->rng, PAGE_SIZE + 1) : len;
	}
	switch (rng_below(&c->rng, 4)) {
	case 0:
	case 1:
		desc_set(table, rng_below(&c->rng, SAFE_QUEUE_SIZE), addr, len, flags, next);
		break;
	case 2:
		avail[2 + rng_below(&c->rng, SAFE_QUEUE_SIZE)] = (uint16_t)rng_next(&c->rng);
		break;
	default:
		__atomic_add_fetch(&avail[1], (uint16_t)rng_below(&c->rng, 300), __ATOMIC_RELEASE);
		break;
	}
}

/* A full ring of good chains, notified, and (half the time) reset at once, so that the
 * reset lands while the device is working on it. */
static void busy_then_reset(struct mmio_ctx *c, struct spare *s)
{
	uint16_t size = (uint16_t)s->queue_max;
	uint64_t features = F_VERSION_1 | (rng_below(&c->rng, 2) ? F_EVENT_IDX : 0);

	if (!drv_start(c, s, features, size))
		return;
	for (uint16_t i = 0; i < size; i++)
		ring_offer(&s->ring, chain_valid(s, 0));
	dev_notify(c, s, s->queue);
	if (rng_below(&c->rng, 2))
		dev_reset(c, s);
}

void attack_random(struct mmio_ctx *c, uint64_t until_ms)
{
	unsigned long ops = 0;

	while (now_ms() < until_ms) {
		struct spare *s = &c->spare[rng_below(&c->rng, c->nspare)];
		unsigned roll = rng_below(&c->rng, 100);

		ops++;
		if (roll < 40) {
			unsigned offset = 4 * rng_below(&c->rng, VIRTIO_MMIO_CONFIG / 4);

			reg_write(c, s, offset, hostile_value(c, s, offset));
		} else if (roll < 50) {
			/* Config space bytes, and registers written 16 bits wide. */
			volatile uint8_t *config = (volatile uint8_t *)s->regs + VIRTIO_MMIO_CONFIG;
			volatile uint16_t *half = (volatile uint16_t *)s->regs;

			unsigned at = rng_below(&c->rng, VIRTIO_MMIO_CONFIG / 2);

			/* Not the queue address registers: a device that took half a write there
			 * could be sent into RAM that is not ours. */
			if (at >= VIRTIO_MMIO_QUEUE_DESC_LOW / 2 && at < VIRTIO_MMIO_SHM_SEL / 2)
				at = VIRTIO_MMIO_STATUS / 2;
			if (rng_below(&c->rng, 2))
				config[rng_below(&c->rng, 256)] = (uint8_t)rng_next(&c->rng);
			else
				half[at] = (uint16_t)rng_next(&c->rng);
		} else if (roll < 60) {
			(void)reg_read(s, 4 * rng_below(&c->rng, VIRTIO_MMIO_CONFIG / 4));
		} else if (roll < 70) {
			/* A storm of notifications, most for queues that exist. */
			for (unsigned n = 1 + rng_below(&c->rng, 200); n; n--) {
				bool near = rng_below(&c->rng, 8);

				dev_notify(c, s,
					   near ? rng_below(&c->rng, s->num_queues + 1)
						: (uint32_t)rng_next(&c->rng));
			}
		} else if (roll < 82) {
			mutate_ring(c, s);
			dev_notify(c, s, s->queue);
		} else if (roll < 95) {
			busy_then_reset(c, s);
		} else {
			dev_reset(c, s);
		}
	}
	printf("mmio: random: %lu operations\n", ops);
}

/* --- rings that never run dry ------------------------------------------------------------ */

struct pump {
	struct spare *s;
	volatile bool stop;
	unsigned long bumps;
};

/* Keeps the available index a whole ring ahead of what the device has used, so that a
 * device that works until the ring is empty never stops, and notifies at every step, so
 * that a device that waits for a kick gets one. Its own counters: it runs beside the main
 * thread. */
static void *pump_run(void *arg)
{
	struct pump *p = arg;
	struct ring *r = &p->s->ring;
	uint16_t *avail = (uint16_t *)r->avail.va;

	while (!p->stop) {
		uint16_t want = (uint16_t)(ring_used_idx(r) + r->size);

		if (want == __atomic_load_n(&avail[1], __ATOMIC_RELAXED))
			continue;
		__atomic_store_n(&avail[1], want, __ATOMIC_RELEASE);
		p->s->regs[VIRTIO_MMIO_QUEUE_NOTIFY / 4] = p->s->queue;
		p->bumps++;
	}
	return NULL;
}

/* rng: every entry is one chain of 16 page-sized buffers, 64 KiB for the device to fill
 * (the most it fills per request). fs: every entry a FUSE GETATTR of the root, after an
 * INIT. All entries share one chain: the device cannot tell. */
static bool never_dry_setup(struct mmio_ctx *c, struct spare *s)
{
	struct ring *r = &s->ring;
	uint16_t size = (uint16_t)s->queue_max;

	if (!drv_start(c, s, F_VERSION_1, size))
		return false;
	if (s->device_id == VIRTIO_ID_RNG) {
		for (unsigned i = 0; i < 16; i++)
			desc_set(&r->desc, i, r->buf.gpa, PAGE_SIZE,
				 VRING_DESC_F_WRITE | (i < 15 ? VRING_DESC_F_NEXT : 0),
				 (uint16_t)(i + 1));
	} else {
		struct fuse_init_in init = {.major = FUSE_KERNEL_VERSION, .minor = 31};
		uint32_t len = fuse_request(s, FUSE_INIT, 0, &init, sizeof(init));

		desc_set(&r->desc, 0, r->buf.gpa, len, VRING_DESC_F_NEXT, 1);
		desc_set(&r->desc, 1, r->reply.gpa, PAGE_SIZE, VRING_DESC_F_WRITE, 0);
		ring_offer(r, 0);
		dev_notify(c, s, s->queue);
		if (wait_outcome(c, s, 1, 2000) != SERVED)
			return false;
		chain_valid(s, 0);
	}
	return true;
}

/* One device at a time, so that its pump has a vCPU to itself and the device never finds
 * the ring empty: rng (served on the VMM's event loop, where a device that works until the
 * ring is empty starves everything else) two thirds of the time, fs (served by its own
 * threads) the rest. */
void attack_never_dry(struct mmio_ctx *c, uint64_t until_ms)
{
	uint64_t span = until_ms - now_ms();

	for (unsigned i = 0; i < c->nspare; i++) {
		struct spare *s = &c->spare[i];
		uint64_t begin = now_ms(), until = until_ms;
		struct pump pump = {.s = s};
		pthread_t thread;

		if (i + 1 < c->nspare)
			until = begin + span * (s->device_id == VIRTIO_ID_RNG ? 2 : 1) / 3;
		if (!never_dry_setup(c, s) || pthread_create(&thread, NULL, pump_run, &pump) != 0) {
			printf("mmio: never-dry: %s would not start\n", s->name);
			continue;
		}
		while (now_ms() < until)
			usleep(100000);
		pump.stop = true;
		pthread_join(thread, NULL);
		c->st.notifies += pump.bumps;
		c->st.writes += pump.bumps;
		printf(
		    "mmio: never-dry: %s for %llu s: the ring moved ahead %lu times; used idx %u, "
		    "status 0x%x\n",
		    s->name, (unsigned long long)(now_ms() - begin) / 1000, pump.bumps,
		    ring_used_idx(&s->ring), reg_read(s, VIRTIO_MMIO_STATUS));
		dev_reset(c, s);
	}
}

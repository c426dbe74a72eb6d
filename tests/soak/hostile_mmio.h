/* The hostile guest program's virtio-mmio driver: just enough of a driver to set up queues
 * on a device it took from the guest kernel, and then to break every rule.
 *
 * The one rule it keeps: the device must never be able to write outside the pages this
 * program owns (else the guest kernel, not the VMM, would be what the test breaks). So ring
 * sizes stay at or below SAFE_QUEUE_SIZE (every ring then fits in its page whatever the
 * base), queue addresses are either our own pages (misaligned at worst) or lie outside
 * guest RAM, and buffers the device may write are our buffer pages or outside guest RAM.
 *
 * Not the tests' shared driver (tests/fixtures/vq_driver.h), which reaches rings through a
 * fake RAM buffer by guest address and registers through virtio_mmio_access: here each ring
 * is a page of our own, pinned, found at whatever address /proc/self/pagemap says, the
 * registers are real ones through /dev/mem, and every descriptor index is wrapped into its
 * page (the rule above). */
#ifndef CLAWVM_SOAK_HOSTILE_MMIO_H
#define CLAWVM_SOAK_HOSTILE_MMIO_H

#include <stdbool.h>
#include <stdint.h>

#include "hostile.h"

#define PAGE_SIZE	4096
#define SAFE_QUEUE_SIZE 128 /* 2 KiB of descriptors, 1 KiB of used ring */

/* A page of our memory, locked, with its guest-physical address. */
struct page {
	uint8_t *va;
	uint64_t gpa;
};

/* One queue's memory. Only desc/avail/used are ever handed to the device as rings and only
 * indirect as an indirect table; buf and reply are the only pages it may write to. */
struct ring {
	struct page desc, avail, used, indirect;
	struct page buf;   /* rng: filled by the device; fs: our FUSE request */
	struct page reply; /* fs: the device's FUSE reply */
	uint16_t size;
	uint16_t next_avail; /* our avail->idx */
};

/* A device we drive: its 4 KiB register window and the queue we use (rng 0, fs 1). */
struct spare {
	const char *name;
	unsigned slot;
	volatile uint32_t *regs;
	uint32_t device_id;
	unsigned queue;
	unsigned num_queues;
	uint32_t queue_max;
	struct ring ring;
	uint64_t fuse_unique;
};

struct mmio_stats {
	unsigned long writes, notifies, resets, served, needs_reset;
	unsigned over_max_accepted;
};

struct mmio_ctx {
	uint64_t ram_end; /* end of the highest guest RAM range */
	struct spare spare[2];
	unsigned nspare;
	struct rng64 rng;
	struct mmio_stats st;
};

/* Registers (hostile_mmio.c). */
uint32_t reg_read(struct spare *s, unsigned offset);
void reg_write(struct mmio_ctx *c, struct spare *s, unsigned offset, uint32_t value);
void dev_reset(struct mmio_ctx *c, struct spare *s);
void dev_notify(struct mmio_ctx *c, struct spare *s, uint32_t queue);
bool dev_needs_reset(struct spare *s);
/* Reset, ACKNOWLEDGE, DRIVER, features (`want` & offered), FEATURES_OK: whether it held. */
bool drv_begin(struct mmio_ctx *c, struct spare *s, uint64_t want);
/* Sets queue `q` up on our ring pages with `num` entries; whether QUEUE_READY reads 1. */
bool queue_begin(struct mmio_ctx *c, struct spare *s, unsigned q, uint32_t num);
void drv_go(struct mmio_ctx *c, struct spare *s);
/* drv_begin, queue_begin on the spare's queue with `num`, DRIVER_OK; a clean ring. */
bool drv_start(struct mmio_ctx *c, struct spare *s, uint64_t want, uint16_t num);

/* Rings (hostile_mmio.c). */
void ring_clear(struct ring *r);
void desc_set(struct page *table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
	      uint16_t next);
void ring_offer(struct ring *r, uint16_t head);
uint16_t ring_used_idx(struct ring *r);
/* A well-formed chain for the device at descriptor `first` (fs: a FUSE GETATTR of the
 * root); returns its head. */
uint16_t chain_valid(struct spare *s, unsigned first);
/* Writes a FUSE request into the fs spare's request page; returns its length. */
uint32_t fuse_request(struct spare *s, uint32_t opcode, uint64_t nodeid, const void *body,
		      uint32_t body_len);

enum outcome { SERVED, NEEDS_RESET, IGNORED };
/* Waits up to `ms` for the used index to reach `want` or the device to ask for a reset. */
enum outcome wait_outcome(struct mmio_ctx *c, struct spare *s, uint16_t want, unsigned ms);
const char *outcome_name(enum outcome o);

/* The attacks (hostile_attacks.c), in the order phase_mmio runs them. */
void attack_ring_cases(struct mmio_ctx *c, struct spare *s);
void attack_queue_num(struct mmio_ctx *c, struct spare *s);
void attack_random(struct mmio_ctx *c, uint64_t until_ms);
void attack_never_dry(struct mmio_ctx *c, uint64_t until_ms);

#endif

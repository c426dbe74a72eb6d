/* The split virtqueue (virtio 1.2, 2.7), device side: the only code that reads descriptor
 * tables and the available ring, and writes the used ring. Everything the driver wrote is
 * treated as hostile: indices are bounded by the queue (or indirect table) size, chains by
 * a hop count, and every buffer goes through gm_ptr(). Byte order and memory ordering with
 * the driver are handled here and nowhere else. */
#include <endian.h>
#include <errno.h>
#include <linux/virtio_ring.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "virtio/iov.h"
#include "virtio/queue.h"

/* The ring layouts are <linux/virtio_ring.h>'s (via virtio/virtio.h): struct vring_desc
 * (le64 addr, le32 len, le16 flags, le16 next), struct vring_avail (le16 flags, le16 idx,
 * le16 ring[size], then le16 used_event with EVENT_IDX) and struct vring_used (le16 flags,
 * le16 idx, struct vring_used_elem ring[size], then le16 avail_event). Offsets into guest
 * memory are taken from them; the fields are read one at a time, never as a whole struct. */
#define DESC_SIZE   sizeof(struct vring_desc)
#define DESC_ALIGN  VRING_DESC_ALIGN_SIZE
#define AVAIL_ALIGN VRING_AVAIL_ALIGN_SIZE
#define USED_ALIGN  VRING_USED_ALIGN_SIZE

#define AVAIL_FLAGS    offsetof(struct vring_avail, flags)
#define AVAIL_IDX      offsetof(struct vring_avail, idx)
#define AVAIL_RING     offsetof(struct vring_avail, ring)
#define USED_IDX       offsetof(struct vring_used, idx)
#define USED_RING      offsetof(struct vring_used, ring)
#define USED_ELEM_SIZE sizeof(struct vring_used_elem)
#define EVENT_IDX_SIZE sizeof(__virtio16)

/* A descriptor as copied out of guest memory, in host byte order. */
struct vq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

/* --- Ordering and byte order with the driver: all of it is in this block. --- */

/* After reading avail->idx, before reading the ring entries and descriptors it covers. */
static inline void vq_acquire(void)
{
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
}

/* After writing used ring entries, before publishing them through used->idx. */
static inline void vq_release(void)
{
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

/* Between our store of an index and our load of the driver's event field or flags: a
 * store-load order, which only a full fence gives (mfence on x86). */
static inline void vq_full_fence(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/* Ring fields are naturally aligned (vq_enable checks the ring alignment and the host
 * mapping of guest RAM is page aligned), so they are read and written as single atomic
 * accesses: one fetch each, never torn. */
static inline uint16_t ring_load16(const uint8_t *p)
{
	return le16toh(__atomic_load_n((const uint16_t *)p, __ATOMIC_RELAXED));
}

static inline void ring_store16(uint8_t *p, uint16_t value)
{
	__atomic_store_n((uint16_t *)p, htole16(value), __ATOMIC_RELAXED);
}

static inline void ring_store32(uint8_t *p, uint32_t value)
{
	__atomic_store_n((uint32_t *)p, htole32(value), __ATOMIC_RELAXED);
}

/* Reads descriptor `i` of `table` once. Indirect tables need not be aligned, hence the
 * memcpy; the compiler barrier after it stops the compiler from reading guest memory again
 * in place of the copy, so a driver rewriting the descriptor meanwhile cannot make us check
 * one value and use another. */
static void desc_fetch(struct vq_desc *d, const uint8_t *table, uint16_t i)
{
	struct {
		uint64_t addr;
		uint32_t len;
		uint16_t flags;
		uint16_t next;
	} raw;

	memcpy(&raw, table + (size_t)i * DESC_SIZE, sizeof(raw));
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	d->addr = le64toh(raw.addr);
	d->len = le32toh(raw.len);
	d->flags = le16toh(raw.flags);
	d->next = le16toh(raw.next);
}

/* --- Errors --- */

/* At most one message a second from all queues together: a guest that breaks its queues
 * in a loop (reset, break, reset...) must not flood the log. */
static bool vq_log_allowed(void)
{
	static uint64_t next_ns;
	struct timespec now;
	uint64_t now_ns, next;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
	now_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
	next = __atomic_load_n(&next_ns, __ATOMIC_RELAXED);
	if (now_ns < next)
		return false;
	return __atomic_compare_exchange_n(&next_ns, &next, now_ns + 1000000000u, false,
					   __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

static void vq_log(const struct virtq *vq, const char *what, const char *fmt, va_list ap)
{
	char reason[160];

	if (!vq_log_allowed())
		return;
	vsnprintf(reason, sizeof(reason), fmt, ap);
	log_warn("virtio: queue (descriptors at %#llx) %s: %s", (unsigned long long)vq->desc_gpa,
		 what, reason);
}

/* Marks the queue broken: nothing more is taken from it until vq_reset. */
__attribute__((format(printf, 2, 3))) static int vq_fail(struct virtq *vq, const char *fmt, ...)
{
	va_list ap;

	vq->broken = true;
	va_start(ap, fmt);
	vq_log(vq, "broken by the driver", fmt, ap);
	va_end(ap);
	return -EINVAL;
}

__attribute__((format(printf, 2, 3))) static int vq_refuse(struct virtq *vq, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vq_log(vq, "not enabled", fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* --- Ring geometry --- */

static uint64_t desc_bytes(const struct virtq *vq)
{
	return (uint64_t)DESC_SIZE * vq->size;
}

static uint64_t avail_bytes(const struct virtq *vq)
{
	return AVAIL_RING + 2ull * vq->size + (vq->event_idx ? EVENT_IDX_SIZE : 0);
}

static uint64_t used_bytes(const struct virtq *vq)
{
	return USED_RING + (uint64_t)USED_ELEM_SIZE * vq->size +
	       (vq->event_idx ? EVENT_IDX_SIZE : 0);
}

/* Guest RAM does not move while the VM runs, so these only fail if vq_enable was skipped;
 * callers still handle NULL. */
static uint8_t *avail_ring(const struct virtq *vq)
{
	return gm_ptr(vq->mem, vq->avail_gpa, avail_bytes(vq));
}

static uint8_t *used_ring(const struct virtq *vq)
{
	return gm_ptr(vq->mem, vq->used_gpa, used_bytes(vq));
}

void vq_reset(struct virtq *vq, const struct guest_mem *mem)
{
	memset(vq, 0, sizeof(*vq));
	vq->mem = mem;
}

int vq_enable(struct virtq *vq)
{
	vq->ready = false;
	if (vq->size == 0 || vq->size > VQ_MAX_SIZE || (vq->size & (vq->size - 1)))
		return vq_refuse(vq, "size %u is not a power of two up to %u", vq->size,
				 VQ_MAX_SIZE);
	if (vq->desc_gpa % DESC_ALIGN || vq->avail_gpa % AVAIL_ALIGN || vq->used_gpa % USED_ALIGN)
		return vq_refuse(vq, "misaligned rings (avail %#llx, used %#llx)",
				 (unsigned long long)vq->avail_gpa,
				 (unsigned long long)vq->used_gpa);
	if (!gm_ptr(vq->mem, vq->desc_gpa, desc_bytes(vq)) || !avail_ring(vq) || !used_ring(vq))
		return vq_refuse(vq, "rings not in guest RAM (avail %#llx, used %#llx)",
				 (unsigned long long)vq->avail_gpa,
				 (unsigned long long)vq->used_gpa);
	vq->ready = true;
	return 0;
}

/* --- Walking a chain --- */

/* Adds one non-indirect descriptor's buffer to the chain. Zero-length buffers are allowed
 * by the spec but carry nothing: they are skipped (no iovec, address not checked), though
 * they still obey the readable-before-writable order. */
static int chain_add(struct virtq *vq, struct vq_chain *chain, const struct vq_desc *d,
		     bool *seen_writable)
{
	bool writable = d->flags & VRING_DESC_F_WRITE;
	size_t *total = writable ? &chain->in_len : &chain->out_len;
	void *host;

	if (!writable && *seen_writable)
		return vq_fail(vq, "chain %u: readable buffer after a writable one", chain->head);
	*seen_writable |= writable;
	if (d->len == 0)
		return 0;
	if (chain->out + chain->in >= VQ_MAX_IOV)
		return vq_fail(vq, "chain %u: more than %u buffers", chain->head, VQ_MAX_IOV);
	host = gm_ptr(vq->mem, d->addr, d->len);
	if (!host)
		return vq_fail(vq, "chain %u: buffer %#llx+%u not in guest RAM", chain->head,
			       (unsigned long long)d->addr, d->len);
	if (__builtin_add_overflow(*total, (size_t)d->len, total))
		return vq_fail(vq, "chain %u: total length overflows", chain->head);
	chain->iov[chain->out + chain->in] = (struct iovec){.iov_base = host, .iov_len = d->len};
	if (writable)
		chain->in++;
	else
		chain->out++;
	return 0;
}

/* Checks an indirect descriptor and returns its table, or NULL after marking the queue
 * broken. */
static const uint8_t *indirect_table(struct virtq *vq, const struct vq_chain *chain,
				     const struct vq_desc *d, bool in_indirect)
{
	const uint8_t *table;

	if (!vq->indirect) {
		vq_fail(vq, "chain %u: indirect descriptor not negotiated", chain->head);
		return NULL;
	}
	if (in_indirect) {
		vq_fail(vq, "chain %u: nested indirect table", chain->head);
		return NULL;
	}
	if (d->flags & VRING_DESC_F_NEXT) {
		vq_fail(vq, "chain %u: indirect descriptor with NEXT", chain->head);
		return NULL;
	}
	if (d->len == 0 || d->len % DESC_SIZE || d->len / DESC_SIZE > VQ_MAX_SIZE) {
		vq_fail(vq, "chain %u: indirect table of %u bytes", chain->head, d->len);
		return NULL;
	}
	table = gm_ptr(vq->mem, d->addr, d->len);
	if (!table)
		vq_fail(vq, "chain %u: indirect table %#llx+%u not in guest RAM", chain->head,
			(unsigned long long)d->addr, d->len);
	return table;
}

/* Follows the chain from `head`, in the descriptor table and then in at most one indirect
 * table. A chain without loops visits each descriptor of a table at most once, so more
 * hops than the table has entries means a loop. */
static int chain_walk(struct virtq *vq, uint16_t head, struct vq_chain *chain)
{
	const uint8_t *table = gm_ptr(vq->mem, vq->desc_gpa, desc_bytes(vq));
	unsigned entries = vq->size, hops = 0;
	bool in_indirect = false, seen_writable = false;
	uint16_t i = head;
	struct vq_desc d;
	int ret;

	chain->head = head;
	chain->out = chain->in = 0;
	chain->out_len = chain->in_len = 0;
	if (!table)
		return vq_fail(vq, "descriptor table not in guest RAM");
	if (head >= vq->size)
		return vq_fail(vq, "head %u beyond queue size %u", head, vq->size);
	for (;;) {
		if (++hops > entries)
			return vq_fail(vq, "chain %u: loop or longer than %u descriptors", head,
				       entries);
		desc_fetch(&d, table, i);
		if (d.flags & VRING_DESC_F_INDIRECT) {
			table = indirect_table(vq, chain, &d, in_indirect);
			if (!table)
				return -EINVAL;
			entries = d.len / DESC_SIZE;
			in_indirect = true;
			hops = 0;
			i = 0;
			continue;
		}
		ret = chain_add(vq, chain, &d, &seen_writable);
		if (ret < 0)
			return ret;
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 0;
		if (d.next >= entries)
			return vq_fail(vq, "chain %u: next %u beyond %s of %u", head, d.next,
				       in_indirect ? "indirect table" : "queue size", entries);
		i = d.next;
	}
}

int vq_pop(struct virtq *vq, struct vq_chain *chain)
{
	uint8_t *avail, *used;
	uint16_t avail_idx, head;
	int ret;

	if (vq->broken)
		return -EINVAL;
	if (!vq->ready)
		return 0;
	avail = avail_ring(vq);
	used = used_ring(vq);
	if (!avail || !used)
		return vq_fail(vq, "rings not in guest RAM");
	avail_idx = ring_load16(avail + AVAIL_IDX);
	if (avail_idx == vq->last_avail) {
		if (!vq->event_idx)
			return 0;
		/* Ask for a notification when the next chain comes, then look again: a chain
		 * the driver added before it could see our avail_event would be announced by
		 * nobody. */
		ring_store16(used + USED_RING + USED_ELEM_SIZE * vq->size, vq->last_avail);
		vq_full_fence();
		avail_idx = ring_load16(avail + AVAIL_IDX);
		if (avail_idx == vq->last_avail)
			return 0;
	}
	if ((uint16_t)(avail_idx - vq->last_avail) > vq->size)
		return vq_fail(vq, "avail idx %u is more than %u ahead of %u", avail_idx, vq->size,
			       vq->last_avail);
	vq_acquire();
	head = ring_load16(avail + AVAIL_RING + 2 * (vq->last_avail & (vq->size - 1)));
	ret = chain_walk(vq, head, chain);
	if (ret < 0)
		return ret;
	vq->last_avail++;
	if (vq->event_idx)
		ring_store16(used + USED_RING + USED_ELEM_SIZE * vq->size, vq->last_avail);
	return 1;
}

void vq_push(struct virtq *vq, uint16_t head, uint32_t written)
{
	uint8_t *used, *elem;

	if (!vq->ready || vq->broken)
		return;
	used = used_ring(vq);
	if (!used) {
		(void)vq_fail(vq, "used ring not in guest RAM");
		return;
	}
	elem = used + USED_RING + USED_ELEM_SIZE * (vq->used_idx & (vq->size - 1));
	ring_store32(elem, head);
	ring_store32(elem + 4, written);
	vq_release();
	vq->used_idx++;
	ring_store16(used + USED_IDX, vq->used_idx);
}

bool vq_should_notify(struct virtq *vq)
{
	uint16_t old = vq->signalled_used, used_event;
	bool was_valid = vq->signalled_valid;
	uint8_t *avail;

	if (!vq->ready || vq->broken)
		return false;
	avail = avail_ring(vq);
	if (!avail)
		return false;
	/* Our used->idx store must be visible before we read what the driver wants: else
	 * both sides may decide that the other will act, and the driver sleeps forever. */
	vq_full_fence();
	if (!vq->event_idx)
		return !(ring_load16(avail + AVAIL_FLAGS) & VRING_AVAIL_F_NO_INTERRUPT);
	vq->signalled_used = vq->used_idx;
	vq->signalled_valid = true;
	if (!was_valid)
		return true;
	used_event = ring_load16(avail + AVAIL_RING + 2 * vq->size);
	/* vring_need_event(): whether used_event lies in [old, new), mod 2^16. */
	return (uint16_t)(vq->used_idx - used_event - 1) < (uint16_t)(vq->used_idx - old);
}

size_t vq_chain_read(const struct vq_chain *chain, size_t offset, void *dst, size_t len)
{
	unsigned out = chain->out < VQ_MAX_IOV ? chain->out : VQ_MAX_IOV;

	return iov_copy(chain->iov, out, offset, dst, len, false);
}

size_t vq_chain_write(const struct vq_chain *chain, size_t offset, const void *src, size_t len)
{
	unsigned out = chain->out < VQ_MAX_IOV ? chain->out : VQ_MAX_IOV;
	unsigned in = chain->in < VQ_MAX_IOV - out ? chain->in : VQ_MAX_IOV - out;

	return iov_copy(chain->iov + out, in, offset, (void *)src, len, true);
}

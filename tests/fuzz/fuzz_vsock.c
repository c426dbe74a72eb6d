/* libFuzzer target for virtio-vsock (virtio/vsock.c) behind the virtio-mmio transport: the
 * input (see fuzz_vsock.h) is a script of guest TX packets, RX buffers, event-loop turns and
 * host-side writes, run against a device in fake guest RAM, without or with a Unix-socket
 * host side in a temporary directory (where something listens on one port). Besides the
 * sanitizers, the target checks what the device promises: vsock_parse accepts only what
 * vsock.h says, well-formed rings never put the device in NEEDS_RESET, every TX chain comes
 * back, and every RX packet is a well-formed header from CID 2 with exactly its payload. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fuzz_check.h"
#include "fuzz_vsock.h"
#include "tests/fixtures/vq_driver.h"
#include "virtio/vsock.h"
#include "base/evloop.h"
#include "base/log.h"

static struct fd_budget fds = {.limit = 1u << 30};

#define RAM_SIZE   0x100000
#define QSIZE	   64
#define RING(q)	   (0x1000 + 0x3000ULL * (q)) /* desc; avail +0x1000, used +0x2000 */
#define TX_AREA	   0x10000ULL		      /* three pieces, 0x4000 apart */
#define RX_AREA	   0x20000ULL		      /* QSIZE buffers of FUZZ_VSOCK_RX_MAX */
#define RING_BYTES 0x20000		      /* rings and TX area, zeroed per input */
#define HDR	   sizeof(struct virtio_vsock_hdr)
#define RXQ	   0
#define TXQ	   1
#define MAX_FDS	   4

static uint8_t ram[RAM_SIZE] __attribute__((aligned(4096)));
static char dir[64], uds_path[128];
static int listen_fd = -1;

struct run {
	struct guest_mem gm;
	struct evloop loop;
	struct virtio_vsock vs;
	struct virtio_mmio mmio;
	struct vqd_mmio drv; /* the guest's driver: rings at RING(q) */
	uint32_t rx_size[QSIZE];
	int clients[MAX_FDS], accepted[MAX_FDS];
};

static void cleanup_dir(void)
{
	char p[sizeof(uds_path) + 16];

	if (listen_fd >= 0)
		close(listen_fd);
	snprintf(p, sizeof(p), "%s_%u", uds_path, FUZZ_VSOCK_LISTEN);
	unlink(p);
	unlink(uds_path);
	rmdir(dir);
}

/* The temporary directory and the listener on FUZZ_VSOCK_LISTEN, once per process. */
static void host_dir_init(void)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};

	if (listen_fd >= 0)
		return;
	strcpy(dir, "/tmp/clawvm-fuzz-vsock-XXXXXX");
	CHECK(mkdtemp(dir));
	snprintf(uds_path, sizeof(uds_path), "%s/v.sock", dir);
	CHECK(snprintf(addr.sun_path, sizeof(addr.sun_path), "%s_%u", uds_path, FUZZ_VSOCK_LISTEN) <
	      (int)sizeof(addr.sun_path));
	listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	CHECK(listen_fd >= 0);
	CHECK(bind(listen_fd, (struct sockaddr *)&addr, sizeof(addr)) == 0);
	CHECK(listen(listen_fd, 128) == 0);
	atexit(cleanup_dir);
}

static uint64_t get_le(const uint8_t *p, unsigned bytes)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static uint32_t status(struct run *r)
{
	return vqd_mmio_read(&r->mmio, VIRTIO_MMIO_STATUS);
}

static void irq_nop(void *opaque)
{
	(void)opaque;
}

/* VERSION_1 (and EVENT_IDX), the three queues, DRIVER_OK: each step must hold. */
static void driver_start(struct run *r, bool event_idx)
{
	uint64_t features =
	    (1ULL << VIRTIO_F_VERSION_1) | (event_idx ? 1ULL << VIRTIO_RING_F_EVENT_IDX : 0);

	CHECK(vqd_mmio_start(&r->drv, &r->mmio, features, 3, QSIZE, RING(0), RING(1) - RING(0)) ==
	      0);
}

/* vsock.h's contract for vsock_parse. */
static void check_parse(const uint8_t *buf, size_t len, size_t chain_len)
{
	struct vsock_hdr h;
	int ret = vsock_parse(buf, len, chain_len, FUZZ_VSOCK_GUEST_CID, &h);

	CHECK(ret == 0 || ret == -EINVAL);
	if (len < HDR)
		CHECK(ret == -EINVAL);
	if (ret < 0)
		return;
	CHECK(h.src_cid == FUZZ_VSOCK_GUEST_CID && h.dst_cid == VMADDR_CID_HOST);
	CHECK(h.type == VIRTIO_VSOCK_TYPE_STREAM);
	CHECK(h.op >= VIRTIO_VSOCK_OP_REQUEST && h.op <= VIRTIO_VSOCK_OP_CREDIT_REQUEST);
	CHECK(h.src_cid == get_le(buf, 8) && h.len == get_le(buf + 24, 4));
	if (h.op == VIRTIO_VSOCK_OP_RW)
		CHECK(h.len > 0 && chain_len >= HDR && h.len <= chain_len - HDR);
	else
		CHECK(h.len == 0);
}

static void tx_packet(struct run *r, const uint8_t *pkt, size_t len, uint8_t split)
{
	struct vq_driver *txq = &r->drv.vq[TXQ];
	size_t cut[3] = {len, 0, 0};
	struct vqd_buf bufs[3];
	unsigned n = 1 + split % 3;
	uint16_t head = (uint16_t)(3 * (txq->avail_idx % (QSIZE / 3)));
	size_t done = 0;

	if (n > len)
		n = (unsigned)len;
	if (n == 2) {
		cut[0] = 1 + (split >> 2) % (len - 1);
		cut[1] = len - cut[0];
	} else if (n == 3) {
		cut[0] = 1 + (split >> 2) % (len - 2);
		cut[1] = 1 + (split >> 5) % (len - 1 - cut[0]);
		cut[2] = len - cut[0] - cut[1];
	}
	for (unsigned i = 0; i < n; i++) {
		uint64_t gpa = TX_AREA + 0x4000 * i;

		memcpy(ram + gpa, pkt + done, cut[i]);
		bufs[i] = (struct vqd_buf){.gpa = gpa, .len = (uint32_t)cut[i]};
		done += cut[i];
	}
	vqd_chain(txq, head, bufs, n);
	vqd_mmio_offer(&r->drv, TXQ, head);
	/* Well-formed chains: each one is taken and returned, nothing written into it. */
	CHECK(vqd_used_idx(txq) == txq->avail_idx);
}

static void rx_offer(struct run *r, unsigned count, uint32_t size)
{
	struct vq_driver *rxq = &r->drv.vq[RXQ];

	size = size % FUZZ_VSOCK_RX_MAX + 1;
	for (unsigned i = 0; i < count && (uint16_t)(rxq->avail_idx - rxq->used_seen) < QSIZE;
	     i++) {
		uint16_t slot = rxq->avail_idx % QSIZE;

		r->rx_size[slot] = size;
		vqd_desc(rxq, slot, RX_AREA + (uint64_t)slot * FUZZ_VSOCK_RX_MAX, size,
			 VRING_DESC_F_WRITE, 0);
		vqd_publish(rxq, slot);
	}
	vqd_mmio_kick(&r->drv, RXQ);
}

/* Every packet the device gave the guest: a header from us, with exactly its payload. */
static void rx_check(struct run *r)
{
	struct vring_used_elem e;

	while (vqd_next_used(&r->drv.vq[RXQ], &e)) {
		const uint8_t *b = ram + RX_AREA + (uint64_t)e.id * FUZZ_VSOCK_RX_MAX;
		uint16_t op;

		CHECK(e.id < QSIZE && e.len <= r->rx_size[e.id]);
		if (e.len == 0)
			continue;
		CHECK(e.len >= HDR);
		op = (uint16_t)get_le(b + 30, 2);
		CHECK(get_le(b, 8) == VMADDR_CID_HOST);
		CHECK(get_le(b + 8, 8) == FUZZ_VSOCK_GUEST_CID);
		CHECK(get_le(b + 28, 2) == VIRTIO_VSOCK_TYPE_STREAM);
		CHECK(op >= VIRTIO_VSOCK_OP_REQUEST && op <= VIRTIO_VSOCK_OP_CREDIT_UPDATE);
		CHECK(e.len == HDR + get_le(b + 24, 4));
		CHECK((op == VIRTIO_VSOCK_OP_RW) == (e.len > HDR));
	}
}

static void host_write(struct run *r, uint8_t which, const uint8_t *bytes, size_t len)
{
	int *fds = which & 1 ? r->accepted : r->clients;
	int *fd = &fds[(which >> 1) % MAX_FDS];

	if (listen_fd < 0 || !r->vs.uds_path)
		return;
	if (*fd < 0 && which & 1) {
		*fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	} else if (*fd < 0) {
		struct sockaddr_un addr = {.sun_family = AF_UNIX};

		*fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		strcpy(addr.sun_path, uds_path);
		if (*fd >= 0 && connect(*fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
			close(*fd);
			*fd = -1;
		}
	}
	if (*fd >= 0 && len)
		(void)!send(*fd, bytes, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (*fd >= 0 && which & 0x80) { /* and hangs up */
		close(*fd);
		*fd = -1;
	}
}

/* The driver resets the device and starts over with fresh rings. With `race`, the event
 * loop has taken an event from epoll before the reset and serves it after, as when the
 * reset comes from a vCPU while the loop waits for the device lock. */
static void reset_device(struct run *r, bool race, bool event_idx)
{
	struct epoll_event ev;
	int held = race ? epoll_wait(r->loop.epfd, &ev, 1, 0) : 0;

	vqd_mmio_write(&r->mmio, VIRTIO_MMIO_STATUS, 0);
	CHECK(r->vs.nconns == 0);
	if (held == 1) {
		struct ev_handler *h = ev.data.ptr;

		h->ready(h, ev.events);
	}
	memset(ram, 0, RING_BYTES);
	memset(r->rx_size, 0, sizeof(r->rx_size));
	driver_start(r, event_idx);
}

static void run_records(struct run *r, const uint8_t *p, const uint8_t *end, bool event_idx)
{
	for (unsigned rec = 0; rec < FUZZ_VSOCK_MAX_RECORD && p < end; rec++) {
		uint8_t kind = *p++ % FUZZ_VSOCK_KINDS;
		size_t len;

		switch (kind) {
		case FUZZ_VSOCK_TX:
			if (end - p < 5)
				return;
			len = get_le(p, 2) % (FUZZ_VSOCK_TX_MAX + 1);
			if ((size_t)(end - p - 5) < len)
				len = (size_t)(end - p - 5);
			check_parse(p + 5, len, get_le(p + 3, 2));
			check_parse(p + 5, len, len);
			if (len)
				tx_packet(r, p + 5, len, p[2]);
			p += 5 + len;
			break;
		case FUZZ_VSOCK_RX:
			if (end - p < 3)
				return;
			rx_offer(r, 1 + p[0] % 8, (uint32_t)get_le(p + 1, 2));
			p += 3;
			break;
		case FUZZ_VSOCK_RESET:
			if (end - p < 1)
				return;
			reset_device(r, *p & 1, event_idx);
			p++;
			break;
		case FUZZ_VSOCK_LOOP:
			if (end - p < 1)
				return;
			for (unsigned i = 0; i <= (*p & 3u); i++)
				CHECK(evloop_run_once(&r->loop, 0) >= 0);
			p++;
			break;
		default:
			if (end - p < 2)
				return;
			len = p[1] % FUZZ_VSOCK_MAX_RECORD;
			if ((size_t)(end - p - 2) < len)
				len = (size_t)(end - p - 2);
			host_write(r, p[0], p + 2, len);
			p += 2 + len;
		}
		rx_check(r);
		CHECK(!(status(r) & VIRTIO_CONFIG_S_NEEDS_RESET));
		CHECK(r->vs.nconns <= 1024);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct run r;
	int fd;

	log_max_level = LOG_ERR;
	signal(SIGPIPE, SIG_IGN); /* as the VMM does (vm.c): the device write()s to sockets */
	if (size < 1)
		return 0;
	if (data[0] & FUZZ_VSOCK_HOST_SIDE)
		host_dir_init();
	memset(&r, 0, sizeof(r));
	for (unsigned i = 0; i < MAX_FDS; i++)
		r.clients[i] = r.accepted[i] = -1;
	memset(ram, 0, RING_BYTES);
	gm_init_buffer(&r.gm, ram, RAM_SIZE);
	CHECK(evloop_init(&r.loop) == 0);
	CHECK(virtio_vsock_init(&r.vs, FUZZ_VSOCK_GUEST_CID,
				data[0] & FUZZ_VSOCK_HOST_SIDE ? uds_path : NULL, &r.loop,
				&fds) == 0);
	virtio_mmio_init(&r.mmio, &r.vs.dev, &r.gm, irq_nop, NULL);
	driver_start(&r, data[0] & FUZZ_VSOCK_EVENT_IDX);

	run_records(&r, data + 1, data + size, data[0] & FUZZ_VSOCK_EVENT_IDX);

	/* A reset drops every connection. */
	vqd_mmio_write(&r.mmio, VIRTIO_MMIO_STATUS, 0);
	CHECK(r.vs.nconns == 0);
	virtio_vsock_destroy(&r.vs);
	CHECK(fd_budget_used(&fds) == 0); /* every connection's descriptor given back */
	virtio_mmio_destroy(&r.mmio);
	evloop_destroy(&r.loop);
	for (unsigned i = 0; i < MAX_FDS; i++) {
		if (r.clients[i] >= 0)
			close(r.clients[i]);
		if (r.accepted[i] >= 0)
			close(r.accepted[i]);
	}
	while (listen_fd >= 0 && (fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC)) >= 0)
		close(fd);
	return 0;
}

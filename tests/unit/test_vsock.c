/* virtio-vsock (virtio/vsock.c) driven through the virtio-mmio transport with fake guest
 * RAM, a real event loop and real Unix sockets in a temporary directory for the host side:
 * the header parser, guest- and host-initiated connections end to end, the CONNECT line
 * protocol, hostile guests, and credit-based flow control from host to guest. */
#include "tests/unit/unit.h"

#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tests/fixtures/vq_driver.h"
#include "virtio/vsock.h"
#include "base/evloop.h"

#define RXQ 0
#define TXQ 1
#define EVQ 2

#define RAM	    (4 * MiB)
#define QSIZE	    64
#define RING(q)	    (0x10000 + 0x4000ULL * (q)) /* desc; avail at +0x1000, used at +0x2000 */
#define RX_BUF	    0x100000ULL			/* QSIZE buffers of RX_BUF_SIZE */
#define RX_BUF_SIZE 4096
#define TX_BUF	    0x200000ULL /* one packet at a time: TX is served on the notify */
#define TX_BUF_MAX  0x100000
#define HDR	    sizeof(struct virtio_vsock_hdr)

#define GUEST_CID   3
#define GUEST_PORT  1234
#define HOST_PORT   4000
#define DEV_BUF	    (256 * 1024) /* the credit the device advertises */
#define WAIT_MS	    2000	 /* for something that must happen */
#define QUIET_MS    100		 /* for something that must not */
#define GUEST_ALLOC 65536

struct fixture {
	struct guest_mem gm;
	struct evloop loop;
	struct virtio_vsock vs;
	struct virtio_mmio mmio;
	struct fd_budget fds;
	char dir[64];
	char path[128];
	struct vqd_mmio drv; /* the guest's driver: rings at RING(q) */
	bool rx_refill;	     /* give the device a fresh RX buffer for each one it returns */
	uint32_t guest_buf_alloc, guest_fwd_cnt;
	unsigned irqs;
};

/* ---- vsock_parse ---------------------------------------------------------------------- */

static void put_le(uint8_t *p, uint64_t value, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		p[i] = (uint8_t)(value >> (8 * i));
}

/* A header as raw little-endian bytes, built field by field at the spec's offsets. */
static void raw_hdr(uint8_t *b, uint64_t src_cid, uint64_t dst_cid, uint16_t type, uint16_t op,
		    uint32_t len)
{
	memset(b, 0, HDR);
	put_le(b + 0, src_cid, 8);
	put_le(b + 8, dst_cid, 8);
	put_le(b + 16, 0x11223344, 4); /* src_port */
	put_le(b + 20, 0x55667788, 4); /* dst_port */
	put_le(b + 24, len, 4);
	put_le(b + 28, type, 2);
	put_le(b + 30, op, 2);
	put_le(b + 32, 0x01020304, 4); /* flags */
	put_le(b + 36, 0xa0b0c0d0, 4); /* buf_alloc */
	put_le(b + 40, 0x0e0f1011, 4); /* fwd_cnt */
}

static void parse_accepts_good_rw(void **state)
{
	uint8_t b[HDR + 16];
	struct vsock_hdr h;

	(void)state;
	assert_int_equal(HDR, 44);
	raw_hdr(b, GUEST_CID, 2, 1, VIRTIO_VSOCK_OP_RW, 16);
	assert_int_equal(vsock_parse(b, sizeof(b), sizeof(b), GUEST_CID, &h), 0);
	assert_int_equal(h.src_cid, GUEST_CID);
	assert_int_equal(h.dst_cid, 2);
	assert_int_equal(h.src_port, 0x11223344);
	assert_int_equal(h.dst_port, 0x55667788);
	assert_int_equal(h.len, 16);
	assert_int_equal(h.type, 1);
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_RW);
	assert_int_equal(h.flags, 0x01020304);
	assert_int_equal(h.buf_alloc, 0xa0b0c0d0);
	assert_int_equal(h.fwd_cnt, 0x0e0f1011);
	/* A large guest CID is compared on all 64 bits. */
	raw_hdr(b, 0x0000000100000003ULL, 2, 1, VIRTIO_VSOCK_OP_REQUEST, 0);
	assert_int_equal(vsock_parse(b, HDR, HDR, 0x0000000100000003ULL, &h), 0);
	assert_int_equal(h.src_cid, 0x0000000100000003ULL);
	assert_int_equal(vsock_parse(b, HDR, HDR, GUEST_CID, &h), -EINVAL);
}

static void parse_rejects_bad_headers(void **state)
{
	uint8_t b[HDR + 16];
	struct vsock_hdr h;

	(void)state;
	raw_hdr(b, GUEST_CID, 2, 1, VIRTIO_VSOCK_OP_REQUEST, 0);
	assert_int_equal(vsock_parse(b, HDR, HDR, GUEST_CID, &h), 0);
	assert_int_equal(vsock_parse(b, HDR - 1, HDR, GUEST_CID, &h), -EINVAL);
	assert_int_equal(vsock_parse(b, 0, HDR, GUEST_CID, &h), -EINVAL);

	raw_hdr(b, 4, 2, 1, VIRTIO_VSOCK_OP_REQUEST, 0);
	assert_int_equal(vsock_parse(b, HDR, HDR, GUEST_CID, &h), -EINVAL);
	raw_hdr(b, GUEST_CID, 1, 1, VIRTIO_VSOCK_OP_REQUEST, 0);
	assert_int_equal(vsock_parse(b, HDR, HDR, GUEST_CID, &h), -EINVAL);
	raw_hdr(b, GUEST_CID, 2 | (1ULL << 32), 1, VIRTIO_VSOCK_OP_REQUEST, 0);
	assert_int_equal(vsock_parse(b, HDR, HDR, GUEST_CID, &h), -EINVAL);
	raw_hdr(b, GUEST_CID, 2, 2 /* SEQPACKET */, VIRTIO_VSOCK_OP_REQUEST, 0);
	assert_int_equal(vsock_parse(b, HDR, HDR, GUEST_CID, &h), -EINVAL);
	raw_hdr(b, GUEST_CID, 2, 0x0101, VIRTIO_VSOCK_OP_REQUEST, 0);
	assert_int_equal(vsock_parse(b, HDR, HDR, GUEST_CID, &h), -EINVAL);
	raw_hdr(b, GUEST_CID, 2, 1, VIRTIO_VSOCK_OP_INVALID, 0);
	assert_int_equal(vsock_parse(b, HDR, HDR, GUEST_CID, &h), -EINVAL);
	raw_hdr(b, GUEST_CID, 2, 1, VIRTIO_VSOCK_OP_CREDIT_REQUEST, 0);
	assert_int_equal(vsock_parse(b, HDR, HDR, GUEST_CID, &h), 0);
	raw_hdr(b, GUEST_CID, 2, 1, VIRTIO_VSOCK_OP_CREDIT_REQUEST + 1, 0);
	assert_int_equal(vsock_parse(b, HDR, HDR, GUEST_CID, &h), -EINVAL);
	raw_hdr(b, GUEST_CID, 2, 1, 0x0105 /* RW in the wrong byte order */, 4);
	assert_int_equal(vsock_parse(b, sizeof(b), sizeof(b), GUEST_CID, &h), -EINVAL);

	/* Non-RW packets carry no payload. */
	for (uint16_t op = VIRTIO_VSOCK_OP_REQUEST; op <= VIRTIO_VSOCK_OP_CREDIT_REQUEST; op++) {
		if (op == VIRTIO_VSOCK_OP_RW)
			continue;
		raw_hdr(b, GUEST_CID, 2, 1, op, 0);
		assert_int_equal(vsock_parse(b, HDR, sizeof(b), GUEST_CID, &h), 0);
		raw_hdr(b, GUEST_CID, 2, 1, op, 1);
		assert_int_equal(vsock_parse(b, HDR, sizeof(b), GUEST_CID, &h), -EINVAL);
	}
}

static void parse_rw_length_against_chain(void **state)
{
	uint8_t b[HDR];
	struct vsock_hdr h;

	(void)state;
	raw_hdr(b, GUEST_CID, 2, 1, VIRTIO_VSOCK_OP_RW, 0);
	assert_int_equal(vsock_parse(b, HDR, HDR + 9, GUEST_CID, &h), -EINVAL);
	raw_hdr(b, GUEST_CID, 2, 1, VIRTIO_VSOCK_OP_RW, 9);
	assert_int_equal(vsock_parse(b, HDR, HDR + 9, GUEST_CID, &h), 0);
	raw_hdr(b, GUEST_CID, 2, 1, VIRTIO_VSOCK_OP_RW, 10);
	assert_int_equal(vsock_parse(b, HDR, HDR + 9, GUEST_CID, &h), -EINVAL);
	raw_hdr(b, GUEST_CID, 2, 1, VIRTIO_VSOCK_OP_RW, 1);
	assert_int_equal(vsock_parse(b, HDR, HDR, GUEST_CID, &h), -EINVAL);
	raw_hdr(b, GUEST_CID, 2, 1, VIRTIO_VSOCK_OP_RW, 0xffffffff);
	assert_int_equal(vsock_parse(b, HDR, SIZE_MAX, GUEST_CID, &h), 0);
	assert_int_equal(vsock_parse(b, HDR, HDR + 0xfffffffeULL, GUEST_CID, &h), -EINVAL);
}

/* A chain shorter than the header it claims to start with: `chain_len - 44` must not wrap
 * around into a huge allowance. */
static void parse_rw_chain_shorter_than_header(void **state)
{
	uint8_t b[HDR];
	struct vsock_hdr h;

	(void)state;
	raw_hdr(b, GUEST_CID, 2, 1, VIRTIO_VSOCK_OP_RW, 1);
	assert_int_equal(vsock_parse(b, HDR, HDR - 1, GUEST_CID, &h), -EINVAL);
	assert_int_equal(vsock_parse(b, HDR, 0, GUEST_CID, &h), -EINVAL);
	raw_hdr(b, GUEST_CID, 2, 1, VIRTIO_VSOCK_OP_RW, 4096);
	assert_int_equal(vsock_parse(b, HDR, 10, GUEST_CID, &h), -EINVAL);
}

/* ---- the device through the transport --------------------------------------------------- */

static uint32_t rd(struct fixture *f, uint64_t off)
{
	return vqd_mmio_read(&f->mmio, off);
}

static void wr(struct fixture *f, uint64_t off, uint32_t value)
{
	vqd_mmio_write(&f->mmio, off, value);
}

static void count_irq(void *opaque)
{
	((struct fixture *)opaque)->irqs++;
}

static int setup_common(void **state, bool host_side)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	fake_ram_init(&f->gm, RAM, 0);
	assert_int_equal(evloop_init(&f->loop), 0);
	strcpy(f->dir, "/tmp/clawvm-vsock-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/v.sock", f->dir);
	fd_budget_init_limit(&f->fds, 1u << 20);
	assert_int_equal(
	    virtio_vsock_init(&f->vs, GUEST_CID, host_side ? f->path : NULL, &f->loop, &f->fds), 0);
	virtio_mmio_init(&f->mmio, &f->vs.dev, &f->gm, count_irq, f);
	f->guest_buf_alloc = GUEST_ALLOC;
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_common(state, true);
}

static int setup_no_host(void **state)
{
	return setup_common(state, false);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	DIR *d;
	struct dirent *e;
	char p[sizeof(f->dir) + 1 + sizeof(e->d_name)];

	virtio_vsock_destroy(&f->vs);
	assert_int_equal(fd_budget_used(&f->fds), 0); /* every connection gave its fd back */
	virtio_mmio_destroy(&f->mmio);
	evloop_destroy(&f->loop);
	d = opendir(f->dir);
	while (d && (e = readdir(d))) {
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			snprintf(p, sizeof(p), "%s/%s", f->dir, e->d_name);
			unlink(p);
		}
	}
	if (d)
		closedir(d);
	rmdir(f->dir);
	fake_ram_free(&f->gm);
	free(f);
	return 0;
}

/* The driver: VERSION_1, the three queues of `size` entries, DRIVER_OK. */
static void driver_start_sized(struct fixture *f, uint16_t size)
{
	assert_int_equal(vqd_mmio_start(&f->drv, &f->mmio, 1ULL << VIRTIO_F_VERSION_1, 3, size,
					RING(0), RING(1) - RING(0)),
			 0);
}

static void driver_start(struct fixture *f)
{
	driver_start_sized(f, QSIZE);
}

static struct vq_driver *vq(struct fixture *f, unsigned q)
{
	return &f->drv.vq[q];
}

static struct vsock_hdr guest_hdr(struct fixture *f, uint16_t op, uint32_t src_port,
				  uint32_t dst_port, uint32_t len, uint32_t flags)
{
	return (struct vsock_hdr){
	    .src_cid = GUEST_CID,
	    .dst_cid = VMADDR_CID_HOST,
	    .src_port = src_port,
	    .dst_port = dst_port,
	    .len = len,
	    .type = VIRTIO_VSOCK_TYPE_STREAM,
	    .op = op,
	    .flags = flags,
	    .buf_alloc = f->guest_buf_alloc,
	    .fwd_cnt = f->guest_fwd_cnt,
	};
}

static void hdr_encode(uint8_t *b, const struct vsock_hdr *h)
{
	put_le(b + 0, h->src_cid, 8);
	put_le(b + 8, h->dst_cid, 8);
	put_le(b + 16, h->src_port, 4);
	put_le(b + 20, h->dst_port, 4);
	put_le(b + 24, h->len, 4);
	put_le(b + 28, h->type, 2);
	put_le(b + 30, h->op, 2);
	put_le(b + 32, h->flags, 4);
	put_le(b + 36, h->buf_alloc, 4);
	put_le(b + 40, h->fwd_cnt, 4);
}

static uint64_t get_le(const uint8_t *p, unsigned bytes)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void hdr_decode(const uint8_t *b, struct vsock_hdr *h)
{
	h->src_cid = get_le(b, 8);
	h->dst_cid = get_le(b + 8, 8);
	h->src_port = (uint32_t)get_le(b + 16, 4);
	h->dst_port = (uint32_t)get_le(b + 20, 4);
	h->len = (uint32_t)get_le(b + 24, 4);
	h->type = (uint16_t)get_le(b + 28, 2);
	h->op = (uint16_t)get_le(b + 30, 2);
	h->flags = (uint32_t)get_le(b + 32, 4);
	h->buf_alloc = (uint32_t)get_le(b + 36, 4);
	h->fwd_cnt = (uint32_t)get_le(b + 40, 4);
}

/* One packet on TX (header and `len` payload bytes in one buffer), notified; the device
 * must have returned it. `len` may differ from h->len, for lying guests. */
static void tx_send(struct fixture *f, const struct vsock_hdr *h, const void *payload, size_t len)
{
	uint8_t *b = gm_ptr(&f->gm, TX_BUF, HDR + len);
	uint16_t slot = vq(f, TXQ)->avail_idx % QSIZE;

	assert_true(HDR + len <= TX_BUF_MAX);
	hdr_encode(b, h);
	if (len)
		memcpy(b + HDR, payload, len);
	vqd_desc(vq(f, TXQ), slot, TX_BUF, (uint32_t)(HDR + len), 0, 0);
	vqd_mmio_offer(&f->drv, TXQ, slot);
	assert_int_equal(vqd_used_idx(vq(f, TXQ)), vq(f, TXQ)->avail_idx);
}

static void tx_ctrl(struct fixture *f, uint16_t op, uint32_t src_port, uint32_t dst_port,
		    uint32_t flags)
{
	struct vsock_hdr h = guest_hdr(f, op, src_port, dst_port, 0, flags);

	tx_send(f, &h, NULL, 0);
}

static void tx_rw(struct fixture *f, uint32_t src_port, uint32_t dst_port, const void *data,
		  size_t len)
{
	struct vsock_hdr h = guest_hdr(f, VIRTIO_VSOCK_OP_RW, src_port, dst_port, (uint32_t)len, 0);

	tx_send(f, &h, data, len);
}

/* `n` writable RX buffers of `size` bytes each (filled with 0xee), then an RX kick. */
static void rx_offer(struct fixture *f, unsigned n, uint32_t size)
{
	for (unsigned i = 0; i < n; i++) {
		uint16_t slot = vq(f, RXQ)->avail_idx % QSIZE;
		uint64_t addr = RX_BUF + (uint64_t)slot * RX_BUF_SIZE;

		memset(gm_ptr(&f->gm, addr, RX_BUF_SIZE), 0xee, RX_BUF_SIZE);
		vqd_desc(vq(f, RXQ), slot, addr, size, VRING_DESC_F_WRITE, 0);
		vqd_publish(vq(f, RXQ), slot);
	}
	vqd_mmio_kick(&f->drv, RXQ);
}

/* The next used RX buffer: its used length (header in `h`, payload copied to `payload`),
 * or -1 if the device has returned none. */
static int rx_pop(struct fixture *f, struct vsock_hdr *h, void *payload, size_t cap)
{
	struct vring_used_elem used;
	const uint8_t *buf;
	uint32_t id, len;

	if (!vqd_next_used(vq(f, RXQ), &used))
		return -1;
	id = used.id;
	len = used.len;
	assert_true(id < QSIZE);
	assert_true(len <= RX_BUF_SIZE);
	buf = gm_ptr(&f->gm, RX_BUF + (uint64_t)id * RX_BUF_SIZE, RX_BUF_SIZE);
	memset(h, 0, sizeof(*h));
	if (len >= HDR) {
		hdr_decode(buf, h);
		assert_int_equal(len, HDR + h->len);
		assert_true(h->len <= cap);
		if (h->len)
			memcpy(payload, buf + HDR, h->len);
	}
	if (f->rx_refill)
		rx_offer(f, 1, RX_BUF_SIZE);
	return (int)len;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Runs the event loop until the device returns an RX buffer or `ms` pass. */
static int rx_wait(struct fixture *f, struct vsock_hdr *h, void *payload, size_t cap, int ms)
{
	long long deadline = now_ms() + ms;
	int len;

	while ((len = rx_pop(f, h, payload, cap)) < 0 && now_ms() < deadline)
		assert_true(evloop_run_once(&f->loop, 10) >= 0);
	return len;
}

static void pump(struct fixture *f, int ms)
{
	long long deadline = now_ms() + ms;

	while (now_ms() < deadline)
		assert_true(evloop_run_once(&f->loop, 10) >= 0);
}

static void assert_no_rx(struct fixture *f)
{
	struct vsock_hdr h;
	uint8_t buf[RX_BUF_SIZE];

	assert_int_equal(rx_wait(f, &h, buf, sizeof(buf), QUIET_MS), -1);
}

/* The next RX packet must be `op` from host port `src` to guest port `dst`. */
static void expect_rx(struct fixture *f, uint16_t op, uint32_t src, uint32_t dst,
		      struct vsock_hdr *h, void *payload, size_t cap)
{
	/* A CREDIT_UPDATE may come first, after the device passed guest data on: whether it
	 * sends one then is its choice (the spec allows both). */
	do {
		assert_true(rx_wait(f, h, payload, cap, WAIT_MS) >= (int)HDR);
		if (h->op == VIRTIO_VSOCK_OP_CREDIT_UPDATE && op != VIRTIO_VSOCK_OP_CREDIT_UPDATE) {
			assert_int_equal(h->src_cid, VMADDR_CID_HOST);
			assert_int_equal(h->len, 0);
		}
	} while (h->op == VIRTIO_VSOCK_OP_CREDIT_UPDATE && op != VIRTIO_VSOCK_OP_CREDIT_UPDATE);
	assert_int_equal(h->src_cid, VMADDR_CID_HOST);
	assert_int_equal(h->dst_cid, GUEST_CID);
	assert_int_equal(h->type, VIRTIO_VSOCK_TYPE_STREAM);
	assert_int_equal(h->op, op);
	assert_int_equal(h->src_port, src);
	assert_int_equal(h->dst_port, dst);
	if (op != VIRTIO_VSOCK_OP_RST) /* an RST for no connection advertises nothing */
		assert_int_equal(h->buf_alloc, DEV_BUF);
	if (op != VIRTIO_VSOCK_OP_RW)
		assert_int_equal(h->len, 0);
}

static int host_listen(struct fixture *f, uint32_t port)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_true(snprintf(addr.sun_path, sizeof(addr.sun_path), "%s_%u", f->path, port) <
		    (int)sizeof(addr.sun_path));
	assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(listen(fd, 8), 0);
	return fd;
}

static int host_accept(int lfd)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	assert_true(fd >= 0);
	return fd;
}

static int host_client(struct fixture *f)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	strcpy(addr.sun_path, f->path);
	assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	return fd;
}

/* Reads exactly `want` bytes from a host socket, running the loop meanwhile. */
static void host_read_exact(struct fixture *f, int fd, void *buf, size_t want)
{
	long long deadline = now_ms() + WAIT_MS;
	size_t got = 0;

	while (got < want) {
		ssize_t n = recv(fd, (uint8_t *)buf + got, want - got, MSG_DONTWAIT);

		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		assert_true(n < 0 && errno == EAGAIN);
		assert_true(now_ms() < deadline);
		assert_true(evloop_run_once(&f->loop, 10) >= 0);
	}
}

static void host_expect_nothing(int fd)
{
	char c;

	assert_int_equal(recv(fd, &c, 1, MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
}

/* The peer of a host socket closed it, with no data before the end. */
static void host_expect_closed(struct fixture *f, int fd)
{
	long long deadline = now_ms() + WAIT_MS;
	char c;
	ssize_t n;

	while ((n = recv(fd, &c, 1, MSG_DONTWAIT)) < 0 && errno == EAGAIN) {
		assert_true(now_ms() < deadline);
		assert_true(evloop_run_once(&f->loop, 10) >= 0);
	}
	assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
}

static void host_write(int fd, const void *buf, size_t len)
{
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
}

/* The guest connects GUEST_PORT to HOST_PORT, where the test listens on `*lfd`; returns
 * the host's end of the connection. */
static int guest_connect(struct fixture *f, int *lfd)
{
	struct vsock_hdr h;
	uint8_t buf[RX_BUF_SIZE];

	*lfd = host_listen(f, HOST_PORT);
	tx_ctrl(f, VIRTIO_VSOCK_OP_REQUEST, GUEST_PORT, HOST_PORT, 0);
	expect_rx(f, VIRTIO_VSOCK_OP_RESPONSE, HOST_PORT, GUEST_PORT, &h, buf, sizeof(buf));
	return host_accept(*lfd);
}

static void config_space_has_guest_cid(void **state)
{
	struct fixture *f = *state;
	uint64_t cid = ~0ULL;
	uint32_t high = ~0u;

	assert_int_equal(rd(f, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_VSOCK);
	virtio_mmio_access(&f->mmio, VIRTIO_MMIO_CONFIG, (uint8_t *)&cid, 8, false);
	assert_int_equal(le64toh(cid), GUEST_CID);
	virtio_mmio_access(&f->mmio, VIRTIO_MMIO_CONFIG + 4, (uint8_t *)&high, 4, false);
	assert_int_equal(high, 0);
	/* Past the 8 bytes: zeros. */
	cid = ~0ULL;
	virtio_mmio_access(&f->mmio, VIRTIO_MMIO_CONFIG + 8, (uint8_t *)&cid, 8, false);
	assert_int_equal(cid, 0);
}

/* The device's counters are exactly these. */
static void assert_counters(struct fixture *f, uint64_t tx_packets, uint64_t rx_packets,
			    uint64_t tx_bytes, uint64_t rx_bytes, uint64_t connections)
{
	struct vsock_counters n;

	virtio_vsock_counters(&f->vs, &n);
	assert_int_equal(n.tx_packets, tx_packets);
	assert_int_equal(n.rx_packets, rx_packets);
	assert_int_equal(n.tx_bytes, tx_bytes);
	assert_int_equal(n.rx_bytes, rx_bytes);
	assert_int_equal(n.connections, connections);
}

/* A guest connection end to end, and the counters the control API reports: every packet
 * each way, stream payload
 * bytes, connections open now. */
static void guest_connect_rw_shutdown(void **state)
{
	struct fixture *f = *state;
	struct vsock_hdr h;
	uint8_t buf[RX_BUF_SIZE];
	char got[8];
	int lfd, hfd;

	driver_start(f);
	rx_offer(f, 4, RX_BUF_SIZE);
	lfd = host_listen(f, HOST_PORT);
	tx_ctrl(f, VIRTIO_VSOCK_OP_REQUEST, GUEST_PORT, HOST_PORT, 0);
	expect_rx(f, VIRTIO_VSOCK_OP_RESPONSE, HOST_PORT, GUEST_PORT, &h, buf, 0);
	assert_int_equal(h.fwd_cnt, 0);
	hfd = host_accept(lfd);

	tx_rw(f, GUEST_PORT, HOST_PORT, "hello", 5);
	host_read_exact(f, hfd, got, 5);
	assert_memory_equal(got, "hello", 5);
	host_expect_nothing(hfd);

	host_write(hfd, "world", 5);
	expect_rx(f, VIRTIO_VSOCK_OP_RW, HOST_PORT, GUEST_PORT, &h, buf, sizeof(buf));
	assert_int_equal(h.len, 5);
	assert_memory_equal(buf, "world", 5);
	assert_int_equal(h.fwd_cnt, 5);	   /* the 5 bytes of "hello" went to the host */
	assert_counters(f, 2, 2, 5, 5, 1); /* REQUEST, RW in; RESPONSE, RW out */

	tx_ctrl(f, VIRTIO_VSOCK_OP_SHUTDOWN, GUEST_PORT, HOST_PORT,
		VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND);
	host_expect_closed(f, hfd);
	expect_rx(f, VIRTIO_VSOCK_OP_RST, HOST_PORT, GUEST_PORT, &h, buf, 0);
	assert_int_equal(f->vs.nconns, 0);
	assert_no_rx(f);
	assert_counters(f, 3, 3, 5, 5, 0);
	close(hfd);
	close(lfd);
}

static void guest_connect_nobody_listening(void **state)
{
	struct fixture *f = *state;
	struct vsock_hdr h;
	uint8_t buf[RX_BUF_SIZE];

	driver_start(f);
	rx_offer(f, 4, RX_BUF_SIZE);
	tx_ctrl(f, VIRTIO_VSOCK_OP_REQUEST, GUEST_PORT, HOST_PORT + 1, 0);
	expect_rx(f, VIRTIO_VSOCK_OP_RST, HOST_PORT + 1, GUEST_PORT, &h, buf, 0);
	assert_int_equal(f->vs.nconns, 0);
	assert_no_rx(f);
}

static void guest_connect_without_host_side(void **state)
{
	struct fixture *f = *state;
	struct vsock_hdr h;
	uint8_t buf[RX_BUF_SIZE];

	driver_start(f);
	rx_offer(f, 4, RX_BUF_SIZE);
	tx_ctrl(f, VIRTIO_VSOCK_OP_REQUEST, GUEST_PORT, HOST_PORT, 0);
	expect_rx(f, VIRTIO_VSOCK_OP_RST, HOST_PORT, GUEST_PORT, &h, buf, 0);
	assert_int_equal(f->vs.nconns, 0);
}

static void host_connect_handshake(void **state)
{
	struct fixture *f = *state;
	struct vsock_hdr h;
	uint8_t buf[RX_BUF_SIZE];
	char ok[32], got[32];
	uint32_t port;
	int cfd, len;

	driver_start(f);
	rx_offer(f, 4, RX_BUF_SIZE);
	cfd = host_client(f);
	/* Bytes after the line are the stream's first bytes, for the guest. */
	host_write(cfd, "CONNECT 5000\nping", 17);
	assert_true(rx_wait(f, &h, buf, sizeof(buf), WAIT_MS) == (int)HDR);
	port = h.src_port;
	assert_true(port >= 1u << 30);
	vq(f, RXQ)->used_seen--; /* look at it again, with the common checks */
	expect_rx(f, VIRTIO_VSOCK_OP_REQUEST, port, 5000, &h, buf, 0);
	assert_int_equal(h.fwd_cnt, 0);
	assert_no_rx(f); /* no data before the guest accepted */
	host_expect_nothing(cfd);

	tx_ctrl(f, VIRTIO_VSOCK_OP_RESPONSE, 5000, port, 0);
	len = snprintf(ok, sizeof(ok), "OK %u\n", port);
	host_read_exact(f, cfd, got, (size_t)len);
	assert_memory_equal(got, ok, (size_t)len);
	host_expect_nothing(cfd);
	expect_rx(f, VIRTIO_VSOCK_OP_RW, port, 5000, &h, buf, sizeof(buf));
	assert_int_equal(h.len, 4);
	assert_memory_equal(buf, "ping", 4);

	/* The guest's data reaches the client. */
	tx_rw(f, 5000, port, "pong", 4);
	host_read_exact(f, cfd, got, 4);
	assert_memory_equal(got, "pong", 4);

	/* A second client gets the next port. */
	{
		int cfd2 = host_client(f);

		host_write(cfd2, "CONNECT 5001\r\n", 14);
		expect_rx(f, VIRTIO_VSOCK_OP_REQUEST, port + 1, 5001, &h, buf, 0);
		close(cfd2);
	}
	close(cfd);
}

static void host_connect_bad_lines(void **state)
{
	static const char *const lines[] = {
	    "CONNECT\n",
	    "CONNECT abc\n",
	    "CONNECT 99999999999\n",
	    "CONNECT 4294967296\n",
	    "CONNECT -1\n",
	    "CONNECT 12x\n",
	    "HELLO 1\n",
	    "connect 5000\n",
	    "0123456789012345678901234567890123456789012345678901234567890123", /* 64, no \n */
	};
	struct fixture *f = *state;

	driver_start(f);
	rx_offer(f, 4, RX_BUF_SIZE);
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		int cfd = host_client(f);

		host_write(cfd, lines[i], strlen(lines[i]));
		host_expect_closed(f, cfd);
		assert_int_equal(f->vs.nconns, 0);
		close(cfd);
	}
	assert_no_rx(f);
	/* A client that only connects and closes costs nothing either. */
	close(host_client(f));
	pump(f, QUIET_MS);
	assert_int_equal(f->vs.nconns, 0);
	assert_no_rx(f);
}

/* ---- hostile guests ------------------------------------------------------------------------ */

static void hostile_rw_beyond_credit_resets(void **state)
{
	struct fixture *f = *state;
	struct vsock_hdr h;
	uint8_t buf[RX_BUF_SIZE];
	int lfd, hfd;
	uint8_t *big = calloc(1, DEV_BUF + 1);

	assert_non_null(big);
	driver_start(f);
	rx_offer(f, 4, RX_BUF_SIZE);
	hfd = guest_connect(f, &lfd);
	tx_rw(f, GUEST_PORT, HOST_PORT, big, DEV_BUF + 1);
	expect_rx(f, VIRTIO_VSOCK_OP_RST, HOST_PORT, GUEST_PORT, &h, buf, 0);
	host_expect_closed(f, hfd); /* and not one byte of the packet */
	assert_int_equal(f->vs.nconns, 0);
	free(big);
	close(hfd);
	close(lfd);
}

static void hostile_wrong_src_cid_dropped(void **state)
{
	struct fixture *f = *state;
	struct vsock_hdr h;
	char got[2];
	int lfd, hfd;

	driver_start(f);
	rx_offer(f, 4, RX_BUF_SIZE);
	hfd = guest_connect(f, &lfd);
	h = guest_hdr(f, VIRTIO_VSOCK_OP_RW, GUEST_PORT, HOST_PORT, 4, 0);
	h.src_cid = GUEST_CID + 1;
	tx_send(f, &h, "evil", 4);
	h = guest_hdr(f, VIRTIO_VSOCK_OP_RW, GUEST_PORT, HOST_PORT, 4, 0);
	h.dst_cid = 1;
	tx_send(f, &h, "evil", 4);
	h = guest_hdr(f, VIRTIO_VSOCK_OP_RST, GUEST_PORT, HOST_PORT, 0, 0);
	h.src_cid = GUEST_CID + 1;
	tx_send(f, &h, NULL, 0);
	pump(f, QUIET_MS);
	host_expect_nothing(hfd);
	assert_no_rx(f);
	assert_int_equal(f->vs.nconns, 1);
	assert_counters(f, 1, 1, 0, 0, 1); /* dropped packets are not counted */
	/* The connection still works, and nothing of the dropped packets leaked in. */
	tx_rw(f, GUEST_PORT, HOST_PORT, "ok", 2);
	host_read_exact(f, hfd, got, 2);
	assert_memory_equal(got, "ok", 2);
	host_expect_nothing(hfd);
	close(hfd);
	close(lfd);
}

static void hostile_unknown_connection_rst(void **state)
{
	struct fixture *f = *state;
	struct vsock_hdr h;
	uint8_t buf[RX_BUF_SIZE];

	driver_start(f);
	rx_offer(f, 8, RX_BUF_SIZE);
	tx_rw(f, GUEST_PORT, HOST_PORT, "x", 1);
	expect_rx(f, VIRTIO_VSOCK_OP_RST, HOST_PORT, GUEST_PORT, &h, buf, 0);
	tx_ctrl(f, VIRTIO_VSOCK_OP_CREDIT_REQUEST, 77, 88, 0);
	expect_rx(f, VIRTIO_VSOCK_OP_RST, 88, 77, &h, buf, 0);
	tx_ctrl(f, VIRTIO_VSOCK_OP_RESPONSE, 1u << 30, 5000, 0);
	expect_rx(f, VIRTIO_VSOCK_OP_RST, 5000, 1u << 30, &h, buf, 0);
	/* No RST in answer to an RST. */
	tx_ctrl(f, VIRTIO_VSOCK_OP_RST, GUEST_PORT, HOST_PORT, 0);
	assert_no_rx(f);
	assert_int_equal(f->vs.nconns, 0);
}

static void hostile_cyclic_tx_chain_needs_reset(void **state)
{
	struct fixture *f = *state;
	int lfd, hfd;

	driver_start(f);
	rx_offer(f, 4, RX_BUF_SIZE);
	hfd = guest_connect(f, &lfd);
	hdr_encode(gm_ptr(&f->gm, TX_BUF, HDR), &(struct vsock_hdr){0});
	vqd_desc(vq(f, TXQ), 5, TX_BUF, HDR, VRING_DESC_F_NEXT, 6);
	vqd_desc(vq(f, TXQ), 6, TX_BUF, HDR, VRING_DESC_F_NEXT, 5);
	vqd_mmio_offer(&f->drv, TXQ, 5);
	assert_true(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_int_equal(vqd_used_idx(vq(f, TXQ)), vq(f, TXQ)->avail_idx - 1);
	/* Nothing more is processed until a reset, which drops the connection. */
	vqd_desc(vq(f, TXQ), 7, TX_BUF, HDR, 0, 0);
	vqd_mmio_offer(&f->drv, TXQ, 7);
	assert_int_equal(vqd_used_idx(vq(f, TXQ)), vq(f, TXQ)->avail_idx - 2);
	pump(f, QUIET_MS);
	host_expect_nothing(hfd);
	wr(f, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_STATUS), 0);
	assert_int_equal(f->vs.nconns, 0);
	host_expect_closed(f, hfd);
	close(hfd);
	close(lfd);
}

/* Zeroes the stack below the caller's frame, so that a device reading a local variable it
 * never set reads zeros every time, not whatever an earlier call left there. */
__attribute__((noinline)) static void stack_zero(void)
{
	volatile uint8_t pad[64 * 1024];

	for (size_t i = 0; i < sizeof(pad); i++)
		pad[i] = 0;
}

static void hostile_small_rx_buffers(void **state)
{
	struct fixture *f = *state;
	struct vsock_hdr h;
	uint8_t buf[RX_BUF_SIZE];
	int lfd, hfd;

	driver_start(f);
	/* A control packet into a buffer smaller than its header: returned empty. */
	rx_offer(f, 1, 16);
	lfd = host_listen(f, HOST_PORT);
	tx_ctrl(f, VIRTIO_VSOCK_OP_REQUEST, GUEST_PORT, HOST_PORT, 0);
	assert_int_equal(rx_wait(f, &h, buf, sizeof(buf), WAIT_MS), 0);
	assert_true(all_bytes(gm_ptr(&f->gm, RX_BUF, 16), 16, 0xee));
	hfd = host_accept(lfd);
	assert_int_equal(f->vs.nconns, 1);

	/* Host data with only a header-sized buffer: no room for a byte, returned empty. */
	host_write(hfd, "data", 4);
	rx_offer(f, 1, HDR);
	stack_zero();
	assert_int_equal(rx_wait(f, &h, buf, sizeof(buf), WAIT_MS), 0);
	assert_true(all_bytes(gm_ptr(&f->gm, RX_BUF + RX_BUF_SIZE, HDR), HDR, 0xee));
	/* With a real buffer, the data arrives whole. */
	rx_offer(f, 1, RX_BUF_SIZE);
	expect_rx(f, VIRTIO_VSOCK_OP_RW, HOST_PORT, GUEST_PORT, &h, buf, sizeof(buf));
	assert_int_equal(h.len, 4);
	assert_memory_equal(buf, "data", 4);
	close(hfd);
	close(lfd);
}

/* ---- flow control -------------------------------------------------------------------------- */

/* Collects RW payload from RX until nothing comes for QUIET_MS; returns the bytes. */
static size_t collect_rw(struct fixture *f, uint8_t *dst, size_t cap)
{
	struct vsock_hdr h;
	uint8_t buf[RX_BUF_SIZE];
	size_t total = 0;

	while (rx_wait(f, &h, buf, sizeof(buf), QUIET_MS) >= 0) {
		assert_int_equal(h.op, VIRTIO_VSOCK_OP_RW);
		assert_int_equal(h.src_cid, VMADDR_CID_HOST);
		assert_int_equal(h.src_port, HOST_PORT);
		assert_int_equal(h.dst_port, GUEST_PORT);
		assert_true(h.len > 0 && total + h.len <= cap);
		memcpy(dst + total, buf, h.len);
		total += h.len;
	}
	return total;
}

static void flow_control_respects_guest_credit(void **state)
{
	enum { SENT = 20000, ALLOC = 8192 };
	struct fixture *f = *state;
	uint8_t *data = malloc(SENT), *got = calloc(1, SENT + RX_BUF_SIZE);
	size_t total = 0;
	int lfd, hfd;

	assert_non_null(data);
	assert_non_null(got);
	for (size_t i = 0; i < SENT; i++)
		data[i] = (uint8_t)(i * 7 + (i >> 8));
	f->guest_buf_alloc = ALLOC;
	f->guest_fwd_cnt = 0;
	driver_start(f);
	f->rx_refill = true;
	rx_offer(f, 8, RX_BUF_SIZE);
	hfd = guest_connect(f, &lfd);
	host_write(hfd, data, SENT);

	/* Each stall is exactly at the credit; the guest then frees what it read. */
	while (total < SENT) {
		size_t n = collect_rw(f, got + total, SENT + RX_BUF_SIZE - total);

		assert_true(n > 0);
		total += n;
		assert_int_equal(total, total < SENT ? f->guest_fwd_cnt + ALLOC : (size_t)SENT);
		f->guest_fwd_cnt = (uint32_t)total;
		tx_ctrl(f, VIRTIO_VSOCK_OP_CREDIT_UPDATE, GUEST_PORT, HOST_PORT, 0);
	}
	assert_int_equal(total, SENT);
	assert_memory_equal(got, data, SENT);
	free(data);
	free(got);
	close(hfd);
	close(lfd);
}

/* Guest to host: the device tells the guest of freed room once per half buffer passed on,
 * not after every packet (each update costs the guest an interrupt), and always before the
 * guest could run out of credit. */
static void credit_updates_per_half_buffer(void **state)
{
	enum { CHUNK = 4096, HALF = DEV_BUF / 2 };
	struct fixture *f = *state;
	static uint8_t data[CHUNK], got[CHUNK];
	struct vsock_hdr h;
	uint8_t buf[RX_BUF_SIZE];
	size_t sent = 0, told;
	int lfd, hfd;

	memset(data, 0x5a, sizeof(data));
	driver_start(f);
	f->rx_refill = true;
	rx_offer(f, 8, RX_BUF_SIZE);
	hfd = guest_connect(f, &lfd);
	/* Just short of half the buffer, each packet taken by the host at once: no update. */
	while (sent + CHUNK < HALF) {
		tx_rw(f, GUEST_PORT, HOST_PORT, data, CHUNK);
		host_read_exact(f, hfd, got, CHUNK);
		sent += CHUNK;
	}
	assert_no_rx(f);
	/* The packet that makes half: one update, with everything passed on counted. */
	tx_rw(f, GUEST_PORT, HOST_PORT, data, CHUNK);
	host_read_exact(f, hfd, got, CHUNK);
	sent += CHUNK;
	expect_rx(f, VIRTIO_VSOCK_OP_CREDIT_UPDATE, HOST_PORT, GUEST_PORT, &h, buf, 0);
	assert_int_equal(h.fwd_cnt, sent);
	assert_no_rx(f);
	/* A guest that spends its whole credit at once: once all is passed on, it has been
	 * told of all but less than half of it (so it never waits), in at most two updates. */
	for (size_t n = 0; n < DEV_BUF; n += CHUNK)
		tx_rw(f, GUEST_PORT, HOST_PORT, data, CHUNK);
	for (size_t n = 0; n < DEV_BUF; n += CHUNK)
		host_read_exact(f, hfd, got, CHUNK);
	expect_rx(f, VIRTIO_VSOCK_OP_CREDIT_UPDATE, HOST_PORT, GUEST_PORT, &h, buf, 0);
	assert_true(h.fwd_cnt >= sent + HALF);
	told = h.fwd_cnt;
	if (rx_wait(f, &h, buf, sizeof(buf), QUIET_MS) >= 0) {
		assert_int_equal(h.op, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
		assert_true(h.fwd_cnt > told);
		told = h.fwd_cnt;
		assert_no_rx(f);
	}
	assert_true(told <= sent + DEV_BUF && sent + DEV_BUF - told < HALF);
	close(hfd);
	close(lfd);
}

/* The guest sends a full credit's worth, more than the host socket takes at once, and
 * closes: every byte still reaches the host, in order, and only then come the host's EOF
 * and the guest's RST. (The guest's last frames must not be lost to its close.) */
static void guest_close_with_host_socket_full(void **state)
{
	enum { CHUNK = 32 * 1024, SENT = DEV_BUF };
	struct fixture *f = *state;
	uint8_t *data = malloc(SENT), *got = malloc(SENT);
	struct vsock_hdr h;
	uint8_t buf[RX_BUF_SIZE];
	int lfd, hfd, sndbuf = 4096;

	assert_non_null(data);
	assert_non_null(got);
	for (size_t i = 0; i < SENT; i++)
		data[i] = (uint8_t)(i * 13 + (i >> 10));
	driver_start(f);
	f->rx_refill = true;
	rx_offer(f, 8, RX_BUF_SIZE);
	hfd = guest_connect(f, &lfd);
	/* A small receive buffer on our end: the device's writes stall early. */
	assert_int_equal(setsockopt(hfd, SOL_SOCKET, SO_RCVBUF, &sndbuf, sizeof(sndbuf)), 0);
	for (size_t off = 0; off < SENT; off += CHUNK)
		tx_rw(f, GUEST_PORT, HOST_PORT, data + off, CHUNK);
	tx_ctrl(f, VIRTIO_VSOCK_OP_SHUTDOWN, GUEST_PORT, HOST_PORT,
		VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND);
	assert_int_equal(f->vs.nconns, 1); /* still passing bytes on */
	host_read_exact(f, hfd, got, SENT);
	assert_memory_equal(got, data, SENT);
	host_expect_closed(f, hfd);
	expect_rx(f, VIRTIO_VSOCK_OP_RST, HOST_PORT, GUEST_PORT, &h, buf, 0);
	assert_int_equal(f->vs.nconns, 0);
	free(data);
	free(got);
	close(hfd);
	close(lfd);
}

/* ---- hostile guests: lifetimes, spins, caps, budgets ------------------------------------- */

/* Events the loop dispatched in `ms`: a loop that spins on an fd it does not serve runs
 * hundreds of thousands of them. */
static long count_events(struct fixture *f, int ms)
{
	long long deadline = now_ms() + ms;
	long events = 0;

	while (now_ms() < deadline) {
		int n = evloop_run_once(&f->loop, 10);

		assert_true(n >= 0);
		events += n;
	}
	return events;
}

/* A host client that sends `bytes` (a CONNECT line, and maybe more), shut down for sending
 * if `half_close`, and whose REQUEST the guest sees; its host port in *port. */
static int host_connect_request(struct fixture *f, const char *bytes, bool half_close,
				uint32_t *port)
{
	struct vsock_hdr h;
	uint8_t buf[RX_BUF_SIZE];
	int cfd = host_client(f);

	host_write(cfd, bytes, strlen(bytes));
	if (half_close)
		assert_int_equal(shutdown(cfd, SHUT_WR), 0);
	assert_true(rx_wait(f, &h, buf, sizeof(buf), WAIT_MS) == (int)HDR);
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_REQUEST);
	*port = h.src_port;
	return cfd;
}

/* A host client connected to guest port 5000 and accepted by the guest; its host port in
 * *port. */
static int host_established(struct fixture *f, uint32_t *port)
{
	char ok[32], got[32];
	int cfd = host_connect_request(f, "CONNECT 5000\n", false, port), len;

	tx_ctrl(f, VIRTIO_VSOCK_OP_RESPONSE, 5000, *port, 0);
	len = snprintf(ok, sizeof(ok), "OK %u\n", *port);
	host_read_exact(f, cfd, got, (size_t)len);
	assert_memory_equal(got, ok, (size_t)len);
	return cfd;
}

/* clawvm run's own connection (virtio_vsock_connect_fd): one end of a socketpair made a host
 * connection to a guest port with no CONNECT line and no OK answer, on a device with no
 * host side at all. What the session wrote first waits for the guest's RESPONSE; the guest
 * can end it (RST) or reset the device while it connects, and either way the loop, not the
 * vCPU, closes it: the session sees its EOF and the descriptor goes back to the budget. */
static void connect_fd_without_handshake(void **state)
{
	struct fixture *f = *state;
	struct vsock_hdr h;
	uint8_t buf[RX_BUF_SIZE];
	char got[8];
	uint32_t port;
	int sp[2];

	driver_start(f);
	rx_offer(f, 8, RX_BUF_SIZE);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sp), 0);
	assert_int_equal(virtio_vsock_connect_fd(&f->vs, sp[1], 1024), 0);
	host_write(sp[0], "req", 3);
	assert_true(rx_wait(f, &h, buf, sizeof(buf), WAIT_MS) == (int)HDR);
	port = h.src_port;
	assert_true(port >= 1u << 30);
	vq(f, RXQ)->used_seen--; /* look at it again, with the common checks */
	expect_rx(f, VIRTIO_VSOCK_OP_REQUEST, port, 1024, &h, buf, 0);
	assert_no_rx(f); /* nothing of "req" before the guest accepted */

	tx_ctrl(f, VIRTIO_VSOCK_OP_RESPONSE, 1024, port, 0);
	expect_rx(f, VIRTIO_VSOCK_OP_RW, port, 1024, &h, buf, sizeof(buf));
	assert_int_equal(h.len, 3);
	assert_memory_equal(buf, "req", 3);
	host_expect_nothing(sp[0]); /* no OK line: the session speaks its protocol at once */
	tx_rw(f, 1024, port, "out", 3);
	host_read_exact(f, sp[0], got, 3);
	assert_memory_equal(got, "out", 3);
	tx_ctrl(f, VIRTIO_VSOCK_OP_RST, 1024, port, 0);
	host_expect_closed(f, sp[0]);
	assert_int_equal(f->vs.nconns, 0);
	assert_int_equal(fd_budget_used(&f->fds), 0);
	close(sp[0]);

	/* A device reset while it still connects: closed by the loop, after the vCPU's reset. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sp), 0);
	assert_int_equal(virtio_vsock_connect_fd(&f->vs, sp[1], 1024), 0);
	expect_rx(f, VIRTIO_VSOCK_OP_REQUEST, port + 1, 1024, &h, buf, 0);
	wr(f, VIRTIO_MMIO_STATUS, 0); /* the vCPU's reset */
	assert_int_equal(f->vs.nconns, 0);
	assert_int_equal(fd_budget_used(&f->fds), 1); /* not closed on the vCPU */
	host_expect_closed(f, sp[0]);
	assert_null(f->vs.dead);
	assert_int_equal(fd_budget_used(&f->fds), 0);
	close(sp[0]);
}

/* The reset race, made deterministic: the loop has taken a connection's event from epoll
 * when a vCPU resets the device, and dispatches it after. The connection must still be
 * there to look at (it was freed on the vCPU: a use-after-free, and a recv on an fd number
 * perhaps reused), and the loop is the one that frees it. */
static void reset_while_loop_holds_connection_event(void **state)
{
	struct fixture *f = *state;
	struct epoll_event ev;
	struct ev_handler *h;
	uint32_t port;
	int cfd;

	driver_start(f);
	rx_offer(f, 8, RX_BUF_SIZE);
	cfd = host_established(f, &port);
	host_write(cfd, "data", 4);
	assert_int_equal(epoll_wait(f->loop.epfd, &ev, 1, WAIT_MS), 1);
	h = ev.data.ptr;
	assert_ptr_not_equal(h, &f->vs.listener);
	assert_ptr_not_equal(h, &f->vs.reaper);
	wr(f, VIRTIO_MMIO_STATUS, 0); /* the vCPU's reset */
	assert_int_equal(f->vs.nconns, 0);
	assert_int_equal(fd_budget_used(&f->fds), 1); /* not closed on the vCPU */
	h->ready(h, ev.events);			      /* the loop goes on with the event it holds */
	assert_null(f->vs.dead);
	assert_int_equal(fd_budget_used(&f->fds), 0);
	host_expect_closed(f, cfd);
	pump(f, QUIET_MS); /* the reaper's wake-up finds nothing left */
	close(cfd);
}

/* After a reset, the loop closes every connection the reset ended. */
static void reset_connections_closed_by_the_loop(void **state)
{
	struct fixture *f = *state;
	uint32_t port;
	int cfd, lfd, hfd;

	driver_start(f);
	rx_offer(f, 8, RX_BUF_SIZE);
	cfd = host_established(f, &port);
	hfd = guest_connect(f, &lfd);
	assert_int_equal(f->vs.nconns, 2);
	wr(f, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(f->vs.nconns, 0);
	host_expect_closed(f, cfd);
	host_expect_closed(f, hfd);
	assert_null(f->vs.dead);
	assert_int_equal(fd_budget_used(&f->fds), 0);
	/* The driver starts over (fresh rings) and the device works again. */
	driver_start(f);
	rx_offer(f, 8, RX_BUF_SIZE);
	close(cfd);
	cfd = host_established(f, &port);
	close(cfd);
	close(hfd);
	close(lfd);
}

/* A host client that gives up before the guest answers its CONNECT: its hang-up must end
 * the connection (an RST tells the guest), not be reported again and again. */
static void host_client_gone_while_connecting(void **state)
{
	struct fixture *f = *state;
	struct vsock_hdr h;
	uint8_t buf[RX_BUF_SIZE];
	uint32_t port;
	int cfd;

	driver_start(f);
	rx_offer(f, 8, RX_BUF_SIZE);
	cfd = host_connect_request(f, "CONNECT 5000\n", false, &port);
	close(cfd);
	assert_true(count_events(f, QUIET_MS) <= 4);
	expect_rx(f, VIRTIO_VSOCK_OP_RST, port, 5000, &h, buf, 0);
	assert_int_equal(f->vs.nconns, 0);
}

/* A client that half-closes (shuts down its sending side) while connecting is still served
 * once the guest answers: its early bytes, then its EOF. */
static void host_client_half_closed_while_connecting(void **state)
{
	struct fixture *f = *state;
	struct vsock_hdr h;
	uint8_t buf[RX_BUF_SIZE];
	char ok[32], got[32];
	uint32_t port;
	int cfd, len;

	driver_start(f);
	rx_offer(f, 8, RX_BUF_SIZE);
	cfd = host_connect_request(f, "CONNECT 5000\nhello", true, &port);
	assert_true(count_events(f, QUIET_MS) <= 4);
	tx_ctrl(f, VIRTIO_VSOCK_OP_RESPONSE, 5000, port, 0);
	len = snprintf(ok, sizeof(ok), "OK %u\n", port);
	host_read_exact(f, cfd, got, (size_t)len);
	assert_memory_equal(got, ok, (size_t)len);
	expect_rx(f, VIRTIO_VSOCK_OP_RW, port, 5000, &h, buf, sizeof(buf));
	assert_int_equal(h.len, 5);
	assert_memory_equal(buf, "hello", 5);
	expect_rx(f, VIRTIO_VSOCK_OP_SHUTDOWN, port, 5000, &h, buf, 0);
	assert_int_equal(h.flags, VIRTIO_VSOCK_SHUTDOWN_SEND);
	close(cfd);
}

/* The guest accepts but advertises no buffer space, and the host client sends and closes:
 * nothing can be passed on, so the socket must not be watched (epoll reports its hang-up
 * whatever it is asked for). Once the guest gives credit, data, EOF and the reset follow. */
static void host_hangup_without_guest_credit(void **state)
{
	struct fixture *f = *state;
	struct vsock_hdr h;
	uint8_t buf[RX_BUF_SIZE];
	uint32_t port;
	int cfd;

	driver_start(f);
	rx_offer(f, 8, RX_BUF_SIZE);
	f->guest_buf_alloc = 0;
	cfd = host_established(f, &port);
	host_write(cfd, "x", 1);
	close(cfd);
	assert_true(count_events(f, QUIET_MS) <= 4);
	assert_no_rx(f);
	f->guest_buf_alloc = GUEST_ALLOC;
	tx_ctrl(f, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 5000, port, 0);
	expect_rx(f, VIRTIO_VSOCK_OP_RW, port, 5000, &h, buf, sizeof(buf));
	assert_int_equal(h.len, 1);
	assert_int_equal(buf[0], 'x');
	expect_rx(f, VIRTIO_VSOCK_OP_SHUTDOWN, port, 5000, &h, buf, 0);
	expect_rx(f, VIRTIO_VSOCK_OP_RST, port, 5000, &h, buf, 0);
	assert_int_equal(f->vs.nconns, 0);
}

/* The same when the guest posts no RX buffers. */
static void host_hangup_without_rx_buffers(void **state)
{
	struct fixture *f = *state;
	struct vsock_hdr h;
	uint8_t buf[RX_BUF_SIZE];
	int lfd, hfd;

	driver_start(f);
	rx_offer(f, 1, RX_BUF_SIZE); /* for the RESPONSE only */
	hfd = guest_connect(f, &lfd);
	host_write(hfd, "y", 1);
	close(hfd);
	assert_true(count_events(f, QUIET_MS) <= 4);
	rx_offer(f, 8, RX_BUF_SIZE);
	expect_rx(f, VIRTIO_VSOCK_OP_RW, HOST_PORT, GUEST_PORT, &h, buf, sizeof(buf));
	assert_int_equal(buf[0], 'y');
	expect_rx(f, VIRTIO_VSOCK_OP_SHUTDOWN, HOST_PORT, GUEST_PORT, &h, buf, 0);
	expect_rx(f, VIRTIO_VSOCK_OP_RST, HOST_PORT, GUEST_PORT, &h, buf, 0);
	assert_int_equal(f->vs.nconns, 0);
	close(lfd);
}

/* Packets to connections that do not exist, from a guest that takes no RX buffers: the
 * resets owed wait in a ring of VSOCK_RST_MAX, the rest are dropped, none is lost out of
 * order. (Each used to take a slot in a queue that grew without a bound.) */
static void resets_owed_are_capped(void **state)
{
	enum { SENT = 1000 };
	struct fixture *f = *state;
	struct vsock_hdr h;
	uint8_t buf[RX_BUF_SIZE];
	unsigned got = 0;

	driver_start(f);
	for (uint32_t i = 0; i < SENT; i++)
		tx_ctrl(f, VIRTIO_VSOCK_OP_SHUTDOWN, 10000 + i, 77, VIRTIO_VSOCK_SHUTDOWN_SEND);
	assert_int_equal(f->vs.rst_len, VSOCK_RST_MAX);
	assert_int_equal(f->vs.rst_dropped, SENT - VSOCK_RST_MAX);
	while (got < VSOCK_RST_MAX) {
		rx_offer(f, QSIZE, RX_BUF_SIZE);
		for (unsigned i = 0; i < QSIZE; i++, got++) {
			expect_rx(f, VIRTIO_VSOCK_OP_RST, 77, 10000 + got, &h, buf, 0);
		}
	}
	rx_offer(f, 1, RX_BUF_SIZE);
	assert_no_rx(f);
}

/* CREDIT_REQUEST after CREDIT_REQUEST while the guest takes no RX buffers: one update is
 * owed, not one per request, and it carries the count as of when it is sent. */
static void credit_requests_coalesce(void **state)
{
	struct fixture *f = *state;
	struct vsock_hdr h;
	uint8_t buf[RX_BUF_SIZE];
	int lfd, hfd;

	driver_start(f);
	rx_offer(f, 1, RX_BUF_SIZE);
	hfd = guest_connect(f, &lfd);
	for (int i = 0; i < 500; i++)
		tx_ctrl(f, VIRTIO_VSOCK_OP_CREDIT_REQUEST, GUEST_PORT, HOST_PORT, 0);
	tx_rw(f, GUEST_PORT, HOST_PORT, "abc", 3);
	rx_offer(f, 4, RX_BUF_SIZE);
	expect_rx(f, VIRTIO_VSOCK_OP_CREDIT_UPDATE, HOST_PORT, GUEST_PORT, &h, buf, 0);
	assert_int_equal(h.fwd_cnt, 3);
	assert_no_rx(f);
	close(hfd);
	close(lfd);
}

/* A TX ring fuller than the budget: one notification serves VSOCK_TX_BUDGET (64) packets and
 * says more is left; the loop serves the rest in later turns. A guest that keeps the ring
 * full cannot keep the loop in one notification. */
static void tx_served_a_budget_per_notify(void **state)
{
	enum { RING = 256, SENT = 200 };
	struct fixture *f = *state;
	struct vsock_hdr h = guest_hdr(f, VIRTIO_VSOCK_OP_RST, 1, 2, 0, 0);

	driver_start_sized(f, RING);
	hdr_encode(gm_ptr(&f->gm, TX_BUF, HDR), &h);
	for (uint16_t i = 0; i < SENT; i++) {
		vqd_desc(vq(f, TXQ), i, TX_BUF, HDR, 0, 0);
		vqd_publish(vq(f, TXQ), i);
	}
	assert_true(vqd_mmio_kick(&f->drv, TXQ));
	assert_int_equal(vqd_used_idx(vq(f, TXQ)), 64);
	assert_true(vqd_mmio_kick(&f->drv, TXQ));
	assert_true(vqd_mmio_kick(&f->drv, TXQ));
	assert_int_equal(vqd_used_idx(vq(f, TXQ)), 192);
	assert_false(vqd_mmio_kick(&f->drv, TXQ));
	assert_int_equal(vqd_used_idx(vq(f, TXQ)), SENT);
}

/* Connections hold descriptors of the VMM's budget: once it is spent, a guest connection is
 * refused with an RST and a host client is closed at once; nothing else breaks. */
static void connections_refused_when_budget_spent(void **state)
{
	struct fixture *f = *state;
	struct vsock_hdr h;
	uint8_t buf[RX_BUF_SIZE];
	int lfd, hfd, cfd;

	f->fds.limit = 1;
	driver_start(f);
	rx_offer(f, 8, RX_BUF_SIZE);
	hfd = guest_connect(f, &lfd);
	assert_int_equal(fd_budget_used(&f->fds), 1);
	tx_ctrl(f, VIRTIO_VSOCK_OP_REQUEST, GUEST_PORT + 1, HOST_PORT, 0);
	expect_rx(f, VIRTIO_VSOCK_OP_RST, HOST_PORT, GUEST_PORT + 1, &h, buf, 0);
	cfd = host_client(f);
	host_expect_closed(f, cfd);
	assert_int_equal(f->vs.nconns, 1);
	assert_int_equal(fd_budget_used(&f->fds), 1);
	/* The first connection still works. */
	tx_rw(f, GUEST_PORT, HOST_PORT, "ok", 2);
	host_read_exact(f, hfd, buf, 2);
	assert_memory_equal(buf, "ok", 2);
	close(cfd);
	close(hfd);
	close(lfd);
}

/* The guest cannot spend the descriptors kept for host clients: with the guest's share
 * held, a guest connection is refused but a host client (clawvm exec) still gets through. */
static void host_clients_keep_their_reserve(void **state)
{
	struct fixture *f = *state;
	struct vsock_hdr h;
	uint8_t buf[RX_BUF_SIZE];
	int lfd, hfd, cfd;

	uint32_t port;

	f->fds.limit = 2;
	f->fds.host_reserve = 1;
	driver_start(f);
	rx_offer(f, 8, RX_BUF_SIZE);
	hfd = guest_connect(f, &lfd);
	tx_ctrl(f, VIRTIO_VSOCK_OP_REQUEST, GUEST_PORT + 1, HOST_PORT, 0);
	expect_rx(f, VIRTIO_VSOCK_OP_RST, HOST_PORT, GUEST_PORT + 1, &h, buf, 0);
	cfd = host_connect_request(f, "CONNECT 5000\n", false, &port);
	assert_int_equal(f->vs.nconns, 2);
	assert_int_equal(f->vs.nhost, 1);
	close(cfd);
	close(hfd);
	close(lfd);
}

/* accept() failing for want of descriptors (EMFILE) leaves the client pending and the
 * listener readable: the listener must back off, not spin, and accept once it can. */
static void listener_backs_off_when_out_of_descriptors(void **state)
{
	struct fixture *f = *state;
	struct rlimit old, low;
	struct vsock_hdr h;
	uint8_t buf[RX_BUF_SIZE];
	long events;
	int cfd, lowest;

	driver_start(f);
	rx_offer(f, 4, RX_BUF_SIZE);
	cfd = host_client(f); /* pending in the listener's backlog */
	lowest = dup(0);
	assert_true(lowest >= 0);
	close(lowest);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = (struct rlimit){(rlim_t)lowest, old.rlim_max};
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	events = count_events(f, QUIET_MS);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_true(events <= 16);
	host_write(cfd, "CONNECT 5000\n", 13);
	assert_true(rx_wait(f, &h, buf, sizeof(buf), WAIT_MS) == (int)HDR);
	assert_int_equal(h.op, VIRTIO_VSOCK_OP_REQUEST);
	assert_int_equal(h.dst_port, 5000);
	close(cfd);
}

int main(void)
{
	const struct CMUnitTest parse[] = {
	    cmocka_unit_test(parse_accepts_good_rw),
	    cmocka_unit_test(parse_rejects_bad_headers),
	    cmocka_unit_test(parse_rw_length_against_chain),
	    cmocka_unit_test(parse_rw_chain_shorter_than_header),
	};
	const struct CMUnitTest device[] = {
	    cmocka_unit_test_setup_teardown(config_space_has_guest_cid, setup, teardown),
	    cmocka_unit_test_setup_teardown(guest_connect_rw_shutdown, setup, teardown),
	    cmocka_unit_test_setup_teardown(guest_connect_nobody_listening, setup, teardown),
	    cmocka_unit_test_setup_teardown(guest_connect_without_host_side, setup_no_host,
					    teardown),
	    cmocka_unit_test_setup_teardown(host_connect_handshake, setup, teardown),
	    cmocka_unit_test_setup_teardown(host_connect_bad_lines, setup, teardown),
	    cmocka_unit_test_setup_teardown(connect_fd_without_handshake, setup_no_host, teardown),
	    cmocka_unit_test_setup_teardown(flow_control_respects_guest_credit, setup, teardown),
	    cmocka_unit_test_setup_teardown(credit_updates_per_half_buffer, setup, teardown),
	    cmocka_unit_test_setup_teardown(guest_close_with_host_socket_full, setup, teardown),
	};
	const struct CMUnitTest hostile[] = {
	    cmocka_unit_test_setup_teardown(hostile_rw_beyond_credit_resets, setup, teardown),
	    cmocka_unit_test_setup_teardown(hostile_wrong_src_cid_dropped, setup, teardown),
	    cmocka_unit_test_setup_teardown(hostile_unknown_connection_rst, setup, teardown),
	    cmocka_unit_test_setup_teardown(hostile_cyclic_tx_chain_needs_reset, setup, teardown),
	    cmocka_unit_test_setup_teardown(hostile_small_rx_buffers, setup, teardown),
	    cmocka_unit_test_setup_teardown(reset_while_loop_holds_connection_event, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(reset_connections_closed_by_the_loop, setup, teardown),
	    cmocka_unit_test_setup_teardown(host_client_gone_while_connecting, setup, teardown),
	    cmocka_unit_test_setup_teardown(host_client_half_closed_while_connecting, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(host_hangup_without_guest_credit, setup, teardown),
	    cmocka_unit_test_setup_teardown(host_hangup_without_rx_buffers, setup, teardown),
	    cmocka_unit_test_setup_teardown(resets_owed_are_capped, setup, teardown),
	    cmocka_unit_test_setup_teardown(credit_requests_coalesce, setup, teardown),
	    cmocka_unit_test_setup_teardown(tx_served_a_budget_per_notify, setup, teardown),
	    cmocka_unit_test_setup_teardown(connections_refused_when_budget_spent, setup, teardown),
	    cmocka_unit_test_setup_teardown(host_clients_keep_their_reserve, setup, teardown),
	    cmocka_unit_test_setup_teardown(listener_backs_off_when_out_of_descriptors, setup,
					    teardown),
	};
	int failed = 0;

	signal(SIGPIPE, SIG_IGN); /* as the VMM does (vm.c): the device write()s to sockets */
	failed |= cmocka_run_group_tests_name("vsock_parse", parse, NULL, NULL);
	failed |= cmocka_run_group_tests_name("vsock_device", device, NULL, NULL);
	failed |= cmocka_run_group_tests_name("vsock_hostile", hostile, NULL, NULL);
	return failed;
}

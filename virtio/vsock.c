/* virtio-vsock device and its hybrid Unix-socket host side.
 *
 * Queues: 0 RX (to the guest), 1 TX (from the guest), 2 events (unused). Everything runs on
 * the event loop with the device lock held: TX kicks, RX kicks, and host socket readiness.
 * Flow control is the spec's credit scheme: we advertise VSOCK_BUF bytes per connection
 * and forward what the guest sends into a ring of that size, so a guest that respects its
 * credit never finds it full (one that does not gets its connection reset); in the other
 * direction we read from a host socket only as much as the guest's credit and RX buffers
 * allow, and stop polling the socket otherwise. A malformed packet is dropped and logged;
 * only ring violations put the device into NEEDS_RESET. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "virtio/vsock.h"
#include "vmm/log.h"

#define RXQ		      0
#define TXQ		      1
#define EVQ		      2
#define VSOCK_QUEUE_SIZE      256
#define VSOCK_BUF	      (256 * 1024) /* per-connection buffer we advertise */
#define VSOCK_MAX_CONNS	      1024
#define VSOCK_LINE_MAX	      64    /* "CONNECT <port>\n" */
#define VSOCK_READ_MAX	      65536 /* one RX packet's payload at most */
#define VSOCK_FIRST_HOST_PORT (1u << 30)

enum conn_state { C_HANDSHAKE, C_CONNECTING, C_ESTABLISHED };

struct vsock_conn {
	struct vsock_conn *next;
	struct virtio_vsock *vs;
	struct ev_handler h; /* the host socket */
	enum conn_state state;
	uint32_t local_port; /* our side, CID 2 */
	uint32_t peer_port;  /* the guest's */
	uint32_t events;     /* what epoll watches now */
	char line[VSOCK_LINE_MAX];
	size_t line_len;
	/* guest -> host: a ring of VSOCK_BUF bytes not yet written to the host socket. */
	uint8_t *tx;
	size_t tx_head, tx_len;
	uint32_t fwd_cnt, fwd_cnt_sent; /* bytes forwarded; last value told to the guest */
	bool guest_done;		/* the guest sent SHUTDOWN(SEND) */
	bool guest_closed;		/* ... and RCV: reset once tx is passed on */
	/* host -> guest */
	uint32_t peer_buf_alloc, peer_fwd_cnt, rx_cnt;
	bool host_eof;
};

static const struct virtio_dev_ops vsock_ops;

static struct virtio_vsock *to_vsock(struct virtio_dev *dev)
{
	return (struct virtio_vsock *)dev;
}

int vsock_parse(const void *buf, size_t len, size_t chain_len, uint64_t guest_cid,
		struct vsock_hdr *out)
{
	struct vsock_hdr h;

	if (len < sizeof(h))
		return -EINVAL;
	memcpy(&h, buf, sizeof(h));
	*out = (struct vsock_hdr){
	    .src_cid = le64toh(h.src_cid),
	    .dst_cid = le64toh(h.dst_cid),
	    .src_port = le32toh(h.src_port),
	    .dst_port = le32toh(h.dst_port),
	    .len = le32toh(h.len),
	    .type = le16toh(h.type),
	    .op = le16toh(h.op),
	    .flags = le32toh(h.flags),
	    .buf_alloc = le32toh(h.buf_alloc),
	    .fwd_cnt = le32toh(h.fwd_cnt),
	};
	if (out->src_cid != guest_cid || out->dst_cid != VSOCK_HOST_CID ||
	    out->type != VSOCK_TYPE_STREAM || out->op == VSOCK_OP_INVALID ||
	    out->op > VSOCK_OP_CREDIT_REQUEST)
		return -EINVAL;
	if (out->op == VSOCK_OP_RW
		? chain_len < sizeof(h) || out->len > chain_len - sizeof(h) || out->len == 0
		: out->len != 0)
		return -EINVAL;
	return 0;
}

static struct vsock_hdr hdr_to_le(const struct vsock_hdr *h)
{
	return (struct vsock_hdr){
	    .src_cid = htole64(h->src_cid),
	    .dst_cid = htole64(h->dst_cid),
	    .src_port = htole32(h->src_port),
	    .dst_port = htole32(h->dst_port),
	    .len = htole32(h->len),
	    .type = htole16(h->type),
	    .op = htole16(h->op),
	    .flags = htole32(h->flags),
	    .buf_alloc = htole32(h->buf_alloc),
	    .fwd_cnt = htole32(h->fwd_cnt),
	};
}

/* A header from us (CID 2) to the guest about connection `c`. */
static struct vsock_hdr conn_hdr(const struct vsock_conn *c, uint16_t op, uint32_t flags)
{
	return (struct vsock_hdr){
	    .src_cid = VSOCK_HOST_CID,
	    .dst_cid = c->vs->guest_cid,
	    .src_port = c->local_port,
	    .dst_port = c->peer_port,
	    .type = VSOCK_TYPE_STREAM,
	    .op = op,
	    .flags = flags,
	    .buf_alloc = VSOCK_BUF,
	    .fwd_cnt = c->fwd_cnt,
	};
}

static uint32_t conn_credit(const struct vsock_conn *c)
{
	uint32_t in_flight = c->rx_cnt - c->peer_fwd_cnt;

	return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

static bool rx_ready(struct virtio_vsock *vs)
{
	return vs->dev.queues[RXQ].ready && !vs->dev.queues[RXQ].broken;
}

static void conn_update_events(struct vsock_conn *c)
{
	uint32_t want = 0;

	if (c->state == C_HANDSHAKE ||
	    (c->state == C_ESTABLISHED && !c->host_eof && !c->guest_closed && conn_credit(c) > 0 &&
	     rx_ready(c->vs) && !c->vs->rx_starved))
		want |= EPOLLIN;
	if (c->tx_len)
		want |= EPOLLOUT;
	if (want != c->events && evloop_mod(c->vs->loop, &c->h, want) == 0)
		c->events = want;
}

static void conn_free(struct vsock_conn *c)
{
	struct virtio_vsock *vs = c->vs;

	for (struct vsock_conn **p = &vs->conns; *p; p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			break;
		}
	}
	vs->nconns--;
	evloop_del(vs->loop, &c->h);
	close(c->h.fd);
	free(c->tx);
	free(c);
}

static struct vsock_conn *conn_find(struct virtio_vsock *vs, uint32_t local, uint32_t peer)
{
	for (struct vsock_conn *c = vs->conns; c; c = c->next) {
		if (c->local_port == local && c->peer_port == peer && c->state != C_HANDSHAKE)
			return c;
	}
	return NULL;
}

static void conn_ready(struct ev_handler *h, uint32_t events);

static struct vsock_conn *conn_new(struct virtio_vsock *vs, int fd, enum conn_state state)
{
	struct vsock_conn *c;

	if (vs->nconns >= VSOCK_MAX_CONNS) {
		log_warn("vsock: %u connections open; refusing another", vs->nconns);
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c || !(c->tx = malloc(VSOCK_BUF))) {
		free(c);
		return NULL;
	}
	c->vs = vs;
	c->state = state;
	c->h = (struct ev_handler){.fd = fd, .ready = conn_ready, .opaque = c};
	c->events = state == C_HANDSHAKE ? EPOLLIN : 0;
	if (evloop_add(vs->loop, &c->h, c->events) < 0) {
		free(c->tx);
		free(c);
		return NULL;
	}
	c->next = vs->conns;
	vs->conns = c;
	vs->nconns++;
	return c;
}

/* The next RX buffer; false (and RX marked starved) if the driver has none free. */
static bool rx_take(struct virtio_vsock *vs, struct vq_chain *chain)
{
	int ret;

	if (!rx_ready(vs))
		return false;
	ret = vq_pop(&vs->dev.queues[RXQ], chain);
	if (ret < 0)
		vs->dev.failed(&vs->dev);
	if (ret <= 0) {
		vs->rx_starved = true;
		return false;
	}
	return true;
}

/* Fills a taken RX buffer with one packet and returns it to the driver. */
static void rx_give(struct virtio_vsock *vs, const struct vq_chain *chain,
		    const struct vsock_hdr *h, const void *data)
{
	struct virtq *vq = &vs->dev.queues[RXQ];
	struct vsock_hdr le = hdr_to_le(h);

	if (chain->in_len < sizeof(le) + h->len) {
		/* Smaller than a header: a broken driver. Give the buffer back empty. */
		vq_push(vq, chain->head, 0);
		return;
	}
	vq_chain_write(chain, 0, &le, sizeof(le));
	if (h->len)
		vq_chain_write(chain, sizeof(le), data, h->len);
	vq_push(vq, chain->head, (uint32_t)(sizeof(le) + h->len));
}

static bool rx_put(struct virtio_vsock *vs, const struct vsock_hdr *h, const void *data)
{
	struct vq_chain chain;

	if (!rx_take(vs, &chain))
		return false;
	rx_give(vs, &chain, h, data);
	return true;
}

/* Sends control packets that waited for RX buffers, in order. */
static void rx_flush_pending(struct virtio_vsock *vs)
{
	unsigned sent = 0;

	while (sent < vs->npending && rx_put(vs, &vs->pending[sent], NULL))
		sent++;
	if (!sent)
		return;
	memmove(vs->pending, vs->pending + sent, (vs->npending - sent) * sizeof(*vs->pending));
	vs->npending -= sent;
	vs->dev.used(&vs->dev, RXQ);
}

static void send_ctrl(struct virtio_vsock *vs, const struct vsock_hdr *h)
{
	if (vs->npending == vs->pending_cap) {
		unsigned cap = vs->pending_cap ? 2 * vs->pending_cap : 64;
		struct vsock_hdr *p = realloc(vs->pending, cap * sizeof(*p));

		if (!p) {
			log_warn("vsock: out of memory for a control packet");
			return;
		}
		vs->pending = p;
		vs->pending_cap = cap;
	}
	vs->pending[vs->npending++] = *h;
	rx_flush_pending(vs);
}

static void conn_reset(struct vsock_conn *c)
{
	struct vsock_hdr rst = conn_hdr(c, VSOCK_OP_RST, 0);

	if (c->state != C_HANDSHAKE)
		send_ctrl(c->vs, &rst);
	conn_free(c);
}

/* Writes what the guest sent to the host socket; tells the guest of freed credit. Returns
 * 1 when the guest has closed and all it sent is passed on: time for the reset. */
static int conn_flush_tx(struct vsock_conn *c)
{
	while (c->tx_len) {
		size_t chunk = c->tx_len;
		ssize_t n;

		if (c->tx_head + chunk > VSOCK_BUF)
			chunk = VSOCK_BUF - c->tx_head;
		n = send(c->h.fd, c->tx + c->tx_head, chunk, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0)
			return -EPIPE;
		c->tx_head = (c->tx_head + (size_t)n) % VSOCK_BUF;
		c->tx_len -= (size_t)n;
		c->fwd_cnt += (uint32_t)n;
	}
	/* Tell the guest of freed room once half the buffer is free that it does not know of.
	 * Not after every packet passed on: that doubled the guest's interrupts and made
	 * guest-to-host streams 3x slower than the other way. No stall: a guest waits for
	 * credit only with all VSOCK_BUF unacknowledged, and passing on half of it sends this. */
	if (c->fwd_cnt - c->fwd_cnt_sent >= VSOCK_BUF / 2) {
		struct vsock_hdr up = conn_hdr(c, VSOCK_OP_CREDIT_UPDATE, 0);

		c->fwd_cnt_sent = c->fwd_cnt;
		send_ctrl(c->vs, &up);
	}
	if (!c->tx_len && c->guest_done)
		shutdown(c->h.fd, SHUT_WR);
	return !c->tx_len && c->guest_closed;
}

/* Host -> guest: one packet's worth from the host socket, as credit and buffers allow.
 * The RX buffer is taken first, so that bytes read always have a place to go; a read that
 * finds nothing spends the buffer on a credit update instead. */
static void conn_read_host(struct vsock_conn *c)
{
	static uint8_t buf[VSOCK_READ_MAX];
	struct virtio_vsock *vs = c->vs;
	uint32_t credit = conn_credit(c);
	size_t want = credit < sizeof(buf) ? credit : sizeof(buf);
	struct vq_chain chain;
	struct vsock_hdr h;
	ssize_t n;

	if (!want || vs->npending || !rx_take(vs, &chain))
		return;
	if (chain.in_len <= sizeof(h)) {
		/* No room for a payload: a broken driver. Give the buffer back empty. */
		vq_push(&vs->dev.queues[RXQ], chain.head, 0);
		vs->dev.used(&vs->dev, RXQ);
		return;
	}
	if (want > chain.in_len - sizeof(h))
		want = chain.in_len - sizeof(h);
	do
		n = read(c->h.fd, buf, want);
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		h = conn_hdr(c, VSOCK_OP_RW, 0);
		h.len = (uint32_t)n;
		c->rx_cnt += (uint32_t)n;
	} else if (n == 0) {
		/* End of the host's stream: the guest reads EOF, and may still send. */
		h = conn_hdr(c, VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_SEND);
		c->host_eof = true;
	} else if (errno == EAGAIN) {
		h = conn_hdr(c, VSOCK_OP_CREDIT_UPDATE, 0);
		c->fwd_cnt_sent = c->fwd_cnt;
	} else {
		h = conn_hdr(c, VSOCK_OP_RST, 0);
	}
	rx_give(vs, &chain, &h, buf);
	vs->dev.used(&vs->dev, RXQ);
	if (h.op == VSOCK_OP_RST)
		conn_free(c);
}

/* "CONNECT <port>\n" from a host client. Read only up to the newline (peeked first), so
 * that bytes the client sends after it stay in the socket for the guest. */
static void conn_read_line(struct vsock_conn *c)
{
	struct virtio_vsock *vs = c->vs;
	size_t room = sizeof(c->line) - 1 - c->line_len;
	char peek[VSOCK_LINE_MAX], *nl, *end;
	unsigned long port;
	ssize_t n;

	n = recv(c->h.fd, peek, room, MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_free(c);
		return;
	}
	nl = memchr(peek, '\n', (size_t)n);
	if (nl)
		n = nl - peek + 1;
	if (read(c->h.fd, c->line + c->line_len, (size_t)n) != n) {
		conn_free(c);
		return;
	}
	c->line_len += (size_t)n;
	c->line[c->line_len] = '\0';
	if (!nl) {
		if (c->line_len == sizeof(c->line) - 1)
			conn_free(c); /* no newline in 63 bytes: not our protocol */
		return;
	}
	c->line[--c->line_len] = '\0';
	if (c->line_len && c->line[c->line_len - 1] == '\r')
		c->line[--c->line_len] = '\0';
	errno = 0;
	port = strncmp(c->line, "CONNECT ", 8) == 0 && c->line[8] >= '0' && c->line[8] <= '9'
		   ? strtoul(c->line + 8, &end, 10)
		   : (end = c->line, 0);
	if (end == c->line || *end != '\0' || errno || port > UINT32_MAX) {
		log_debug("vsock: host client sent `%s`, not CONNECT <port>", c->line);
		conn_free(c);
		return;
	}
	c->peer_port = (uint32_t)port;
	c->local_port = vs->next_host_port++;
	if (vs->next_host_port < VSOCK_FIRST_HOST_PORT)
		vs->next_host_port = VSOCK_FIRST_HOST_PORT;
	c->state = C_CONNECTING;
	struct vsock_hdr req = conn_hdr(c, VSOCK_OP_REQUEST, 0);

	send_ctrl(vs, &req);
	conn_update_events(c);
}

static void conn_ready(struct ev_handler *h, uint32_t events)
{
	struct vsock_conn *c = h->opaque;
	struct virtio_vsock *vs = c->vs;

	pthread_mutex_lock(&vs->dev.lock);
	if (c->state == C_HANDSHAKE) {
		conn_read_line(c);
	} else if (((events & EPOLLOUT) && conn_flush_tx(c) != 0) ||
		   ((events & (EPOLLHUP | EPOLLERR)) && c->host_eof)) {
		/* The host end is gone both ways (and the guest was told of its EOF), or
		 * the guest closed and all it sent is passed on. */
		conn_reset(c);
	} else {
		if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			conn_read_host(c);
		/* c may be gone: look it up again before touching it. */
		for (struct vsock_conn *p = vs->conns; p; p = p->next) {
			if (p == c) {
				conn_update_events(c);
				break;
			}
		}
	}
	pthread_mutex_unlock(&vs->dev.lock);
}

static void listener_ready(struct ev_handler *h, uint32_t events)
{
	struct virtio_vsock *vs = h->opaque;
	int fd;

	(void)events;
	fd = accept4(h->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	pthread_mutex_lock(&vs->dev.lock);
	if (!conn_new(vs, fd, C_HANDSHAKE))
		close(fd);
	pthread_mutex_unlock(&vs->dev.lock);
}

/* The guest connects to host port P: connect to PATH_P. */
static void guest_request(struct virtio_vsock *vs, const struct vsock_hdr *h)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct vsock_hdr rst = {
	    .src_cid = VSOCK_HOST_CID,
	    .dst_cid = vs->guest_cid,
	    .src_port = h->dst_port,
	    .dst_port = h->src_port,
	    .type = VSOCK_TYPE_STREAM,
	    .op = VSOCK_OP_RST,
	};
	struct vsock_conn *c;
	int fd;

	if (!vs->uds_path || conn_find(vs, h->dst_port, h->src_port) ||
	    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s_%u", vs->uds_path, h->dst_port) >=
		(int)sizeof(addr.sun_path)) {
		send_ctrl(vs, &rst);
		return;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		if (fd >= 0)
			close(fd);
		send_ctrl(vs, &rst);
		return;
	}
	c = conn_new(vs, fd, C_ESTABLISHED);
	if (!c) {
		close(fd);
		send_ctrl(vs, &rst);
		return;
	}
	c->local_port = h->dst_port;
	c->peer_port = h->src_port;
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	{
		struct vsock_hdr resp = conn_hdr(c, VSOCK_OP_RESPONSE, 0);

		send_ctrl(vs, &resp);
	}
	conn_update_events(c);
}

static void guest_packet(struct virtio_vsock *vs, const struct vsock_hdr *h,
			 const struct vq_chain *chain)
{
	struct vsock_conn *c;

	if (h->op == VSOCK_OP_REQUEST) {
		guest_request(vs, h);
		return;
	}
	c = conn_find(vs, h->dst_port, h->src_port);
	if (!c) {
		if (h->op != VSOCK_OP_RST) {
			struct vsock_hdr rst = {.src_cid = VSOCK_HOST_CID,
						.dst_cid = vs->guest_cid,
						.src_port = h->dst_port,
						.dst_port = h->src_port,
						.type = VSOCK_TYPE_STREAM,
						.op = VSOCK_OP_RST};
			send_ctrl(vs, &rst);
		}
		return;
	}
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	switch (h->op) {
	case VSOCK_OP_RESPONSE:
		if (c->state == C_CONNECTING) {
			char ok[32];
			int len = snprintf(ok, sizeof(ok), "OK %u\n", c->local_port);

			c->state = C_ESTABLISHED;
			if (write(c->h.fd, ok, (size_t)len) != len) {
				conn_reset(c);
				return;
			}
		}
		break;
	case VSOCK_OP_RST:
		conn_free(c);
		return;
	case VSOCK_OP_SHUTDOWN:
		if ((h->flags & (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND)) ==
		    (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND)) {
			/* The guest closed: pass on what it sent (the host socket may be
			 * full: then when it drains), then end it with a reset, which the
			 * guest waits for. */
			c->guest_done = c->guest_closed = true;
			if (conn_flush_tx(c) != 0) {
				conn_reset(c);
				return;
			}
			break;
		}
		if (h->flags & VSOCK_SHUTDOWN_SEND) {
			c->guest_done = true;
			conn_flush_tx(c);
		}
		break;
	case VSOCK_OP_RW:
		if (c->state != C_ESTABLISHED || c->guest_done || h->len > VSOCK_BUF - c->tx_len) {
			log_debug("vsock: guest port %u sent beyond its credit; reset",
				  h->src_port);
			conn_reset(c);
			return;
		}
		/* Into the ring after what is queued; the credit check above guarantees room. */
		for (size_t done = 0; done < h->len;) {
			size_t tail = (c->tx_head + c->tx_len) % VSOCK_BUF;
			size_t chunk = VSOCK_BUF - tail;

			if (chunk > h->len - done)
				chunk = h->len - done;
			vq_chain_read(chain, sizeof(struct vsock_hdr) + done, c->tx + tail, chunk);
			c->tx_len += chunk;
			done += chunk;
		}
		if (conn_flush_tx(c) < 0) {
			conn_reset(c);
			return;
		}
		break;
	case VSOCK_OP_CREDIT_REQUEST: {
		struct vsock_hdr up = conn_hdr(c, VSOCK_OP_CREDIT_UPDATE, 0);

		c->fwd_cnt_sent = c->fwd_cnt;
		send_ctrl(vs, &up);
		break;
	}
	default: /* CREDIT_UPDATE: the counters above are all it carries */
		break;
	}
	conn_update_events(c);
}

static void vsock_tx(struct virtio_vsock *vs)
{
	struct virtq *vq = &vs->dev.queues[TXQ];
	struct vsock_hdr raw, h;
	struct vq_chain chain;
	int ret;

	while ((ret = vq_pop(vq, &chain)) > 0) {
		size_t got = vq_chain_read(&chain, 0, &raw, sizeof(raw));

		if (vsock_parse(&raw, got, chain.out_len, vs->guest_cid, &h) < 0)
			log_debug("vsock: dropped a malformed packet from the guest");
		else
			guest_packet(vs, &h, &chain);
		vq_push(vq, chain.head, 0);
	}
	if (ret < 0)
		vs->dev.failed(&vs->dev);
	vs->dev.used(&vs->dev, TXQ);
}

static void vsock_queue_notify(struct virtio_dev *dev, unsigned index)
{
	struct virtio_vsock *vs = to_vsock(dev);

	if (index == TXQ) {
		vsock_tx(vs);
	} else if (index == RXQ) {
		/* New RX buffers: send what waited, and read from hosts again. */
		vs->rx_starved = false;
		rx_flush_pending(vs);
		for (struct vsock_conn *c = vs->conns; c; c = c->next)
			conn_update_events(c);
	}
}

static void vsock_reset(struct virtio_dev *dev)
{
	struct virtio_vsock *vs = to_vsock(dev);

	while (vs->conns)
		conn_free(vs->conns);
	vs->npending = 0;
}

static const struct virtio_dev_ops vsock_ops = {
    .name = "vsock",
    .device_id = VIRTIO_ID_VSOCK,
    .features = 0,
    .num_queues = 3,
    .queue_max = VSOCK_QUEUE_SIZE,
    .queue_notify = vsock_queue_notify,
    .reset = vsock_reset,
};

int virtio_vsock_init(struct virtio_vsock *vs, uint64_t cid, const char *uds_path,
		      struct evloop *loop, struct fd_budget *fds)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	uint64_t le_cid = htole64(cid);
	int fd;

	memset(vs, 0, sizeof(*vs));
	vs->dev.ops = &vsock_ops;
	vs->dev.config = vs->config;
	vs->dev.config_len = sizeof(vs->config);
	memcpy(vs->config, &le_cid, sizeof(le_cid));
	vs->guest_cid = cid;
	vs->loop = loop;
	vs->fds = fds;
	vs->next_host_port = VSOCK_FIRST_HOST_PORT;
	vs->listener.fd = -1;
	if (!uds_path)
		return 0;
	if (strlen(uds_path) + 12 >= sizeof(addr.sun_path)) {
		log_err("--vsock-uds `%s`: too long for a Unix socket path", uds_path);
		return -ENAMETOOLONG;
	}
	strcpy(addr.sun_path, uds_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 64) < 0) {
		int err = errno;

		log_err("--vsock-uds `%s`: %s", uds_path, strerror(err));
		if (fd >= 0)
			close(fd);
		return -err;
	}
	vs->uds_path = strdup(uds_path);
	vs->listener = (struct ev_handler){.fd = fd, .ready = listener_ready, .opaque = vs};
	if (!vs->uds_path || evloop_add(loop, &vs->listener, EPOLLIN) < 0) {
		virtio_vsock_destroy(vs);
		return -ENOMEM;
	}
	return 0;
}

void virtio_vsock_destroy(struct virtio_vsock *vs)
{
	while (vs->conns)
		conn_free(vs->conns);
	if (vs->listener.fd >= 0) {
		evloop_del(vs->loop, &vs->listener);
		close(vs->listener.fd);
		vs->listener.fd = -1;
	}
	if (vs->uds_path) {
		unlink(vs->uds_path);
		free(vs->uds_path);
		vs->uds_path = NULL;
	}
	free(vs->pending);
	vs->pending = NULL;
}

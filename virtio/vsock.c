/* The virtio-vsock device and its connection state machine; the host side is a backend
 * (vsock_backend.h) that hands it connected stream sockets.
 *
 * Queues: 0 RX (to the guest), 1 TX (from the guest), 2 events (unused). Everything runs on
 * the event loop with the device lock held: TX kicks, RX kicks, and host socket readiness;
 * only the driver's reset runs on a vCPU, and it frees nothing (see vsock_reset).
 * Flow control is the spec's credit scheme: we advertise VSOCK_BUF bytes per connection
 * and forward what the guest sends into a ring of that size, so a guest that respects its
 * credit never finds it full (one that does not gets its connection reset); in the other
 * direction we read from a host socket only as much as the guest's credit and RX buffers
 * allow, and stop polling the socket otherwise. A malformed packet is dropped and logged;
 * only ring violations put the device into NEEDS_RESET.
 *
 * What a guest can make this device hold, and the caps (docs/threat-model.md):
 * VSOCK_MAX_CONNS connections, each one descriptor of the VMM's fd budget and a VSOCK_BUF
 * ring (resident only as far as the guest filled it and the host peer has not read it);
 * control packets waiting for RX buffers, at most one of each kind per connection plus
 * VSOCK_RST_MAX resets; VSOCK_TX_BUDGET TX packets served per notification. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "virtio/vsock.h"
#include "virtio/vsock_backend.h"

#define RXQ		      0
#define TXQ		      1
#define EVQ		      2
#define VSOCK_QUEUE_SIZE      256
#define VSOCK_BUF	      (256 * 1024) /* per-connection buffer we advertise */
#define VSOCK_MAX_CONNS	      1024
#define VSOCK_HOST_CONNS      64    /* of them, kept for host clients: the guest cannot take all */
#define VSOCK_READ_MAX	      65536 /* one RX packet's payload at most */
#define VSOCK_FIRST_HOST_PORT (1u << 30)
#define VSOCK_HDR_LEN	      sizeof(struct virtio_vsock_hdr) /* 44 bytes on the wire */
#define VSOCK_TX_BUDGET	      64 /* TX packets per notification, then others' turn */

enum conn_state { C_HANDSHAKE, C_CONNECTING, C_ESTABLISHED };

/* Control packets a connection owes the guest (each at most once, sent in this order). */
#define CTRL_REQUEST  1u
#define CTRL_RESPONSE 2u
#define CTRL_CREDIT   4u

struct vsock_conn {
	struct vsock_conn *next;      /* in vs->conns, or in vs->dead once a reset ended it */
	struct vsock_conn *ctrl_next; /* in the vs->ctrl_head queue while `ctrl` is not 0 */
	struct virtio_vsock *vs;
	struct ev_handler h; /* the host socket */
	enum conn_state state;
	bool dead;	   /* a driver reset ended it: only the loop may free it */
	bool host;	   /* a host client's connection (hybrid socket), not the guest's */
	bool watched;	   /* h.fd is in the loop's epoll set, for `events` */
	bool client_rdhup; /* C_CONNECTING: the host client shut down its sending side */
	bool handshake;	   /* it asked through the backend, which tells it when accepted */
	uint32_t events;
	unsigned ctrl;		      /* CTRL_* owed */
	uint32_t local_port;	      /* our side, CID 2 */
	uint32_t peer_port;	      /* the guest's */
	struct vsock_request request; /* C_HANDSHAKE: what the host client sent so far */
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
	struct virtio_vsock_hdr h;

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
	if (out->src_cid != guest_cid || out->dst_cid != VMADDR_CID_HOST ||
	    out->type != VIRTIO_VSOCK_TYPE_STREAM || out->op == VIRTIO_VSOCK_OP_INVALID ||
	    out->op > VIRTIO_VSOCK_OP_CREDIT_REQUEST)
		return -EINVAL;
	if (out->op == VIRTIO_VSOCK_OP_RW
		? chain_len < sizeof(h) || out->len > chain_len - sizeof(h) || out->len == 0
		: out->len != 0)
		return -EINVAL;
	return 0;
}

static struct virtio_vsock_hdr hdr_to_le(const struct vsock_hdr *h)
{
	return (struct virtio_vsock_hdr){
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
	    .src_cid = VMADDR_CID_HOST,
	    .dst_cid = c->vs->guest_cid,
	    .src_port = c->local_port,
	    .dst_port = c->peer_port,
	    .type = VIRTIO_VSOCK_TYPE_STREAM,
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

/* Watches the host socket for `want`, or (watch false) takes it out of the epoll set. */
static void conn_watch(struct vsock_conn *c, bool watch, uint32_t want)
{
	struct evloop *loop = c->vs->loop;

	if (!watch) {
		if (c->watched)
			evloop_del(loop, &c->h);
		c->watched = false;
	} else if (!c->watched) {
		if (evloop_add(loop, &c->h, want) == 0) {
			c->watched = true;
			c->events = want;
		}
	} else if (want != c->events && evloop_mod(loop, &c->h, want) == 0) {
		c->events = want;
	}
}

/* What the loop watches the host socket for follows what we can do with it now. A socket
 * we cannot serve is taken out of the epoll set: epoll reports a hung-up socket whatever it
 * was asked for, and a report left unserved makes the loop spin. */
static void conn_update_events(struct vsock_conn *c)
{
	struct virtio_vsock *vs = c->vs;
	uint32_t want = 0;

	switch (c->state) {
	case C_HANDSHAKE:
		conn_watch(c, true, EPOLLIN);
		break;
	case C_CONNECTING:
		/* Until the guest answers, only the client giving up matters (bytes it sends
		 * early wait in the socket for the guest). After a half-close nothing can. */
		conn_watch(c, !c->client_rdhup, EPOLLRDHUP);
		break;
	case C_ESTABLISHED:
		if (!c->host_eof && !c->guest_closed && conn_credit(c) > 0 && rx_ready(vs) &&
		    !vs->rx_starved)
			want |= EPOLLIN;
		if (c->tx_len)
			want |= EPOLLOUT;
		/* Wanting nothing, the socket stays watched only after the host's EOF: a report
		 * then is the host gone both ways, served by a reset. Before its EOF, a hang-up
		 * could not be served until the guest gives credit or buffers. */
		conn_watch(c, want || c->host_eof, want);
		break;
	}
}

/* Closes and frees a connection that is on no list any more. On the loop's thread only. */
static void conn_destroy(struct vsock_conn *c)
{
	conn_watch(c, false, 0);
	close(c->h.fd);
	fd_budget_give(c->vs->fds);
	free(c->tx);
	free(c);
}

/* Takes `c` off the queue of connections that owe the guest control packets. */
static void ctrl_unlink(struct vsock_conn *c)
{
	struct virtio_vsock *vs = c->vs;
	struct vsock_conn *prev = NULL;

	if (!c->ctrl)
		return;
	for (struct vsock_conn *p = vs->ctrl_head; p && p != c; p = p->ctrl_next)
		prev = p;
	if (prev)
		prev->ctrl_next = c->ctrl_next;
	else
		vs->ctrl_head = c->ctrl_next;
	if (vs->ctrl_tail == c)
		vs->ctrl_tail = prev;
	c->ctrl = 0;
	c->ctrl_next = NULL;
}

/* Takes `c` off `list` (vs->conns or vs->dead). */
static void conn_unlink(struct vsock_conn **list, struct vsock_conn *c)
{
	for (struct vsock_conn **p = list; *p; p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			break;
		}
	}
}

static void conn_free(struct vsock_conn *c)
{
	struct virtio_vsock *vs = c->vs;

	conn_unlink(&vs->conns, c);
	vs->nconns--;
	vs->nhost -= c->host;
	ctrl_unlink(c);
	conn_destroy(c);
}

/* Frees a connection a driver reset ended. */
static void conn_reap(struct vsock_conn *c)
{
	conn_unlink(&c->vs->dead, c);
	conn_destroy(c);
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

/* A connection for the host socket `fd` (the caller closes it on NULL): at most
 * VSOCK_MAX_CONNS, each one descriptor of the budget. */
static struct vsock_conn *conn_new(struct virtio_vsock *vs, int fd, enum conn_state state)
{
	bool host = state == C_HANDSHAKE; /* a host client's, else the guest's */
	struct vsock_conn *c;

	if (vs->nconns >= VSOCK_MAX_CONNS ||
	    (!host && vs->nconns - vs->nhost >= VSOCK_MAX_CONNS - VSOCK_HOST_CONNS)) {
		log_warn_guest("vsock: %u connections open; refusing another", vs->nconns);
		return NULL;
	}
	if (!(host ? fd_budget_take_host(vs->fds) : fd_budget_take(vs->fds))) {
		log_warn_guest("vsock: the guest holds every descriptor it may; refusing a "
			       "connection");
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c || !(c->tx = malloc(VSOCK_BUF))) {
		free(c);
		fd_budget_give(vs->fds);
		return NULL;
	}
	c->vs = vs;
	c->state = state;
	c->host = host;
	c->h = (struct ev_handler){.fd = fd, .ready = conn_ready, .opaque = c};
	c->next = vs->conns;
	vs->conns = c;
	vs->nconns++;
	vs->nhost += host;
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

static void vsock_count(_Atomic uint64_t *counter, uint64_t n)
{
	atomic_fetch_add_explicit(counter, n, memory_order_relaxed);
}

void virtio_vsock_counters(struct virtio_vsock *vs, struct vsock_counters *out)
{
	*out = (struct vsock_counters){
	    .rx_packets = atomic_load_explicit(&vs->rx_packets, memory_order_relaxed),
	    .tx_packets = atomic_load_explicit(&vs->tx_packets, memory_order_relaxed),
	    .rx_bytes = atomic_load_explicit(&vs->rx_bytes, memory_order_relaxed),
	    .tx_bytes = atomic_load_explicit(&vs->tx_bytes, memory_order_relaxed),
	    .connections = atomic_load_explicit(&vs->nconns, memory_order_relaxed),
	};
}

/* Fills a taken RX buffer with one packet and returns it to the driver. */
static void rx_give(struct virtio_vsock *vs, const struct vq_chain *chain,
		    const struct vsock_hdr *h, const void *data)
{
	struct virtq *vq = &vs->dev.queues[RXQ];
	struct virtio_vsock_hdr le = hdr_to_le(h);

	if (chain->in_len < sizeof(le) + h->len) {
		/* Smaller than a header: a broken driver. Give the buffer back empty. */
		vq_push(vq, chain->head, 0);
		return;
	}
	vq_chain_write(chain, 0, &le, sizeof(le));
	if (h->len)
		vq_chain_write(chain, sizeof(le), data, h->len);
	vq_push(vq, chain->head, (uint32_t)(sizeof(le) + h->len));
	vsock_count(&vs->rx_packets, 1);
	vsock_count(&vs->rx_bytes, h->len); /* only OP_RW carries a payload */
}

static bool ctrl_pending(const struct virtio_vsock *vs)
{
	return vs->rst_len || vs->ctrl_head;
}

/* The next control packet owed: resets of connections already gone first, then what the
 * oldest connection in the queue owes (its fwd_cnt as of now). */
static struct vsock_hdr ctrl_next_packet(struct virtio_vsock *vs)
{
	struct vsock_conn *c = vs->ctrl_head;
	struct vsock_hdr h;

	if (vs->rst_len) {
		h = (struct vsock_hdr){
		    .src_cid = VMADDR_CID_HOST,
		    .dst_cid = vs->guest_cid,
		    .src_port = vs->rst[vs->rst_head].local,
		    .dst_port = vs->rst[vs->rst_head].peer,
		    .type = VIRTIO_VSOCK_TYPE_STREAM,
		    .op = VIRTIO_VSOCK_OP_RST,
		};
		vs->rst_head = (vs->rst_head + 1) % VSOCK_RST_MAX;
		vs->rst_len--;
		return h;
	}
	if (c->ctrl & CTRL_REQUEST) {
		h = conn_hdr(c, VIRTIO_VSOCK_OP_REQUEST, 0);
		c->ctrl &= ~CTRL_REQUEST;
	} else if (c->ctrl & CTRL_RESPONSE) {
		h = conn_hdr(c, VIRTIO_VSOCK_OP_RESPONSE, 0);
		c->ctrl &= ~CTRL_RESPONSE;
	} else {
		h = conn_hdr(c, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0);
		c->fwd_cnt_sent = c->fwd_cnt;
		c->ctrl &= ~CTRL_CREDIT;
	}
	if (!c->ctrl) {
		vs->ctrl_head = c->ctrl_next;
		if (!vs->ctrl_head)
			vs->ctrl_tail = NULL;
		c->ctrl_next = NULL;
	}
	return h;
}

/* Sends the control packets owed, in order, while the driver has RX buffers. */
static void ctrl_flush(struct virtio_vsock *vs)
{
	struct vq_chain chain;
	bool sent = false;

	while (ctrl_pending(vs) && rx_take(vs, &chain)) {
		struct vsock_hdr h = ctrl_next_packet(vs);

		rx_give(vs, &chain, &h, NULL);
		sent = true;
	}
	if (sent)
		vs->dev.used(&vs->dev, RXQ);
}

/* `c` owes the guest `what` (CTRL_*): queued once per connection, however often owed. */
static void ctrl_owe(struct vsock_conn *c, unsigned what)
{
	struct virtio_vsock *vs = c->vs;

	if (!c->ctrl) {
		if (vs->ctrl_tail)
			vs->ctrl_tail->ctrl_next = c;
		else
			vs->ctrl_head = c;
		vs->ctrl_tail = c;
	}
	c->ctrl |= what;
	ctrl_flush(vs);
}

/* A reset for the guest's `peer` port from our `local` one, about a connection that is gone
 * (or never was). At most VSOCK_RST_MAX wait for RX buffers; a guest that sends more
 * packets to dead connections while it takes none loses the extra resets. */
static void rst_owe(struct virtio_vsock *vs, uint32_t local, uint32_t peer)
{
	unsigned tail = (vs->rst_head + vs->rst_len) % VSOCK_RST_MAX;

	if (vs->rst_len == VSOCK_RST_MAX) {
		if (vs->rst_dropped++ == 0)
			log_warn("vsock: the guest takes no packets and %u resets wait; dropping "
				 "more",
				 VSOCK_RST_MAX);
		return;
	}
	vs->rst[tail].local = local;
	vs->rst[tail].peer = peer;
	vs->rst_len++;
	ctrl_flush(vs);
}

static void conn_reset(struct vsock_conn *c)
{
	struct virtio_vsock *vs = c->vs;
	uint32_t local = c->local_port, peer = c->peer_port;
	bool tell = c->state != C_HANDSHAKE;

	/* Freed first: what it still owed (a RESPONSE, a credit update) must not follow. */
	conn_free(c);
	if (tell)
		rst_owe(vs, local, peer);
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
	if (c->fwd_cnt - c->fwd_cnt_sent >= VSOCK_BUF / 2)
		ctrl_owe(c, CTRL_CREDIT);
	if (!c->tx_len && c->guest_done)
		shutdown(c->h.fd, SHUT_WR);
	return !c->tx_len && c->guest_closed;
}

/* Host -> guest: one packet's worth from the host socket, as credit and buffers allow.
 * The RX buffer is taken first, so that bytes read always have a place to go; a read that
 * finds nothing spends the buffer on a credit update instead. Returns false if it reset
 * (and freed) the connection. */
static bool conn_read_host(struct vsock_conn *c)
{
	static uint8_t buf[VSOCK_READ_MAX];
	struct virtio_vsock *vs = c->vs;
	uint32_t credit = conn_credit(c);
	size_t want = credit < sizeof(buf) ? credit : sizeof(buf);
	struct vq_chain chain;
	struct vsock_hdr h;
	ssize_t n;

	if (!want || ctrl_pending(vs) || !rx_take(vs, &chain))
		return true;
	if (chain.in_len <= VSOCK_HDR_LEN) {
		/* No room for a payload: a broken driver. Give the buffer back empty. */
		vq_push(&vs->dev.queues[RXQ], chain.head, 0);
		vs->dev.used(&vs->dev, RXQ);
		return true;
	}
	if (want > chain.in_len - VSOCK_HDR_LEN)
		want = chain.in_len - VSOCK_HDR_LEN;
	do
		n = read(c->h.fd, buf, want);
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		h = conn_hdr(c, VIRTIO_VSOCK_OP_RW, 0);
		h.len = (uint32_t)n;
		c->rx_cnt += (uint32_t)n;
	} else if (n == 0) {
		/* End of the host's stream: the guest reads EOF, and may still send. */
		h = conn_hdr(c, VIRTIO_VSOCK_OP_SHUTDOWN, VIRTIO_VSOCK_SHUTDOWN_SEND);
		c->host_eof = true;
	} else if (errno == EAGAIN) {
		h = conn_hdr(c, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0);
		c->fwd_cnt_sent = c->fwd_cnt;
	} else {
		h = conn_hdr(c, VIRTIO_VSOCK_OP_RST, 0);
	}
	rx_give(vs, &chain, &h, buf);
	vs->dev.used(&vs->dev, RXQ);
	if (h.op == VIRTIO_VSOCK_OP_RST) {
		conn_free(c);
		return false;
	}
	return true;
}

/* A host connection asks the guest's `port` for a connection (REQUEST). */
static void conn_connect(struct vsock_conn *c, uint32_t port)
{
	struct virtio_vsock *vs = c->vs;

	c->peer_port = port;
	c->local_port = vs->next_host_port++;
	if (vs->next_host_port < VSOCK_FIRST_HOST_PORT)
		vs->next_host_port = VSOCK_FIRST_HOST_PORT;
	c->state = C_CONNECTING;
	ctrl_owe(c, CTRL_REQUEST);
	conn_update_events(c);
}

/* A host client in handshake sent something: the backend reads it, up to its request. */
static void conn_read_request(struct vsock_conn *c)
{
	struct virtio_vsock *vs = c->vs;
	uint32_t port;
	int ret = vs->backend->read_request(vs, c->h.fd, &c->request, &port);

	if (ret < 0) {
		conn_free(c);
	} else if (ret > 0) {
		c->handshake = true;
		conn_connect(c, port);
	}
}

static void conn_ready(struct ev_handler *h, uint32_t events)
{
	struct vsock_conn *c = h->opaque;
	struct virtio_vsock *vs = c->vs;

	pthread_mutex_lock(&vs->dev.lock);
	if (c->dead) {
		/* A driver reset ended it while this event waited for the lock. */
		conn_reap(c);
	} else if (c->state == C_HANDSHAKE) {
		conn_read_request(c);
	} else if (c->state == C_CONNECTING) {
		if (events & (EPOLLHUP | EPOLLERR)) {
			conn_reset(c); /* the client gave up before the guest answered */
		} else {
			c->client_rdhup = true;
			conn_update_events(c);
		}
	} else if (((events & EPOLLOUT) && conn_flush_tx(c) != 0) ||
		   ((events & (EPOLLHUP | EPOLLERR)) && c->host_eof)) {
		/* The host end is gone both ways (and the guest was told of its EOF), or
		 * the guest closed and all it sent is passed on. */
		conn_reset(c);
	} else if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)) || conn_read_host(c)) {
		conn_update_events(c);
	}
	pthread_mutex_unlock(&vs->dev.lock);
}

void vsock_host_client(struct virtio_vsock *vs, int fd)
{
	struct vsock_conn *c;

	pthread_mutex_lock(&vs->dev.lock);
	c = conn_new(vs, fd, C_HANDSHAKE);
	if (c)
		conn_update_events(c);
	else
		close(fd);
	pthread_mutex_unlock(&vs->dev.lock);
}

int virtio_vsock_connect_fd(struct virtio_vsock *vs, int fd, uint32_t port)
{
	struct vsock_conn *c;

	pthread_mutex_lock(&vs->dev.lock);
	c = conn_new(vs, fd, C_HANDSHAKE);
	if (c)
		conn_connect(c, port);
	pthread_mutex_unlock(&vs->dev.lock);
	if (!c) {
		close(fd);
		return -EMFILE;
	}
	return 0;
}

/* Frees the connections a driver reset ended (the reset runs on a vCPU thread). */
static void reaper_ready(struct ev_handler *h, uint32_t events)
{
	struct virtio_vsock *vs = h->opaque;

	(void)events;
	if (!evloop_drain(h))
		return;
	pthread_mutex_lock(&vs->dev.lock);
	while (vs->dead)
		conn_reap(vs->dead);
	pthread_mutex_unlock(&vs->dev.lock);
}

/* The guest connects to host port P: the backend gives the host end. */
static void guest_request(struct virtio_vsock *vs, const struct vsock_hdr *h)
{
	struct vsock_conn *c;
	int fd;

	if (!vs->backend || conn_find(vs, h->dst_port, h->src_port)) {
		rst_owe(vs, h->dst_port, h->src_port);
		return;
	}
	fd = vs->backend->connect(vs, h->dst_port);
	if (fd < 0) {
		rst_owe(vs, h->dst_port, h->src_port);
		return;
	}
	c = conn_new(vs, fd, C_ESTABLISHED);
	if (!c) {
		close(fd);
		rst_owe(vs, h->dst_port, h->src_port);
		return;
	}
	c->local_port = h->dst_port;
	c->peer_port = h->src_port;
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	ctrl_owe(c, CTRL_RESPONSE);
	conn_update_events(c);
}

static void guest_packet(struct virtio_vsock *vs, const struct vsock_hdr *h,
			 const struct vq_chain *chain)
{
	struct vsock_conn *c;

	if (h->op == VIRTIO_VSOCK_OP_REQUEST) {
		guest_request(vs, h);
		return;
	}
	c = conn_find(vs, h->dst_port, h->src_port);
	if (!c) {
		if (h->op != VIRTIO_VSOCK_OP_RST)
			rst_owe(vs, h->dst_port, h->src_port);
		return;
	}
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	switch (h->op) {
	case VIRTIO_VSOCK_OP_RESPONSE:
		if (c->state == C_CONNECTING) {
			c->state = C_ESTABLISHED;
			if (c->handshake && vs->backend->accepted(vs, c->h.fd, c->local_port) < 0) {
				conn_reset(c);
				return;
			}
		}
		break;
	case VIRTIO_VSOCK_OP_RST:
		conn_free(c);
		return;
	case VIRTIO_VSOCK_OP_SHUTDOWN:
		if ((h->flags & (VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND)) ==
		    (VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND)) {
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
		if (h->flags & VIRTIO_VSOCK_SHUTDOWN_SEND) {
			c->guest_done = true;
			conn_flush_tx(c);
		}
		break;
	case VIRTIO_VSOCK_OP_RW:
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
			vq_chain_read(chain, VSOCK_HDR_LEN + done, c->tx + tail, chunk);
			c->tx_len += chunk;
			done += chunk;
		}
		vsock_count(&vs->tx_bytes, h->len);
		if (conn_flush_tx(c) < 0) {
			conn_reset(c);
			return;
		}
		break;
	case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
		ctrl_owe(c, CTRL_CREDIT);
		break;
	default: /* CREDIT_UPDATE: the counters above are all it carries */
		break;
	}
	conn_update_events(c);
}

/* At most VSOCK_TX_BUDGET packets per notification: true if the guest may have left more. */
static bool vsock_tx(struct virtio_vsock *vs)
{
	struct virtq *vq = &vs->dev.queues[TXQ];
	struct virtio_vsock_hdr raw;
	struct vsock_hdr h;
	struct vq_chain chain;
	unsigned served = 0;
	int ret = 0;

	while (served < VSOCK_TX_BUDGET && (ret = vq_pop(vq, &chain)) > 0) {
		size_t got = vq_chain_read(&chain, 0, &raw, sizeof(raw));

		if (vsock_parse(&raw, got, chain.out_len, vs->guest_cid, &h) < 0) {
			log_debug("vsock: dropped a malformed packet from the guest");
		} else {
			vsock_count(&vs->tx_packets, 1);
			guest_packet(vs, &h, &chain);
		}
		vq_push(vq, chain.head, 0);
		served++;
	}
	if (ret < 0)
		vs->dev.failed(&vs->dev);
	vs->dev.used(&vs->dev, TXQ);
	return served == VSOCK_TX_BUDGET;
}

static bool vsock_queue_notify(struct virtio_dev *dev, unsigned index)
{
	struct virtio_vsock *vs = to_vsock(dev);

	if (index == TXQ)
		return vsock_tx(vs);
	if (index == RXQ) {
		/* New RX buffers: send what waited, and read from hosts again. */
		vs->rx_starved = false;
		ctrl_flush(vs);
		for (struct vsock_conn *c = vs->conns; c; c = c->next)
			conn_update_events(c);
	}
	return false;
}

/* The driver reset the device, on a vCPU thread: every connection ends, but the event loop
 * may hold one's event already and be waiting for the device lock to serve it. So nothing is
 * closed or freed here: the connections move to vs->dead and the loop frees them. */
static void vsock_reset(struct virtio_dev *dev)
{
	struct virtio_vsock *vs = to_vsock(dev);
	bool ended = vs->conns != NULL;
	uint64_t one = 1;

	while (vs->conns) {
		struct vsock_conn *c = vs->conns;

		vs->conns = c->next;
		c->dead = true;
		c->ctrl = 0;
		c->ctrl_next = NULL;
		c->next = vs->dead;
		vs->dead = c;
	}
	vs->nconns = 0;
	vs->nhost = 0;
	vs->ctrl_head = vs->ctrl_tail = NULL;
	vs->rst_len = 0;
	vs->rx_starved = false;
	if (ended && write(vs->reaper.fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("vsock: cannot wake the event loop to close connections: %m");
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

int vsock_device_init(struct virtio_vsock *vs, uint64_t cid, struct evloop *loop,
		      struct fd_budget *fds)
{
	uint64_t le_cid = htole64(cid);

	memset(vs, 0, sizeof(*vs));
	vs->dev.ops = &vsock_ops;
	vs->dev.config = vs->config;
	vs->dev.config_len = sizeof(vs->config);
	memcpy(vs->config, &le_cid, sizeof(le_cid));
	vs->guest_cid = cid;
	vs->loop = loop;
	vs->fds = fds;
	vs->next_host_port = VSOCK_FIRST_HOST_PORT;
	vs->reaper = (struct ev_handler){
	    .fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), .ready = reaper_ready, .opaque = vs};
	if (vs->reaper.fd < 0 || evloop_add(loop, &vs->reaper, EPOLLIN) < 0) {
		log_err("vsock: cannot set up its eventfd: %m");
		virtio_vsock_destroy(vs);
		return -ENOMEM;
	}
	return 0;
}

void virtio_vsock_destroy(struct virtio_vsock *vs)
{
	while (vs->conns)
		conn_free(vs->conns);
	while (vs->dead)
		conn_reap(vs->dead);
	evloop_close(vs->loop, &vs->reaper);
	if (vs->backend)
		vs->backend->destroy(vs);
	vs->backend = NULL;
}

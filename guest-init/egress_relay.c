/* The egress relay loop (egress.h): TCP connections accepted on the listeners, each paired
 * with a host end from the connect op and relayed both ways. One epoll loop, level-triggered,
 * everything non-blocking, no globals. */
#include "egress.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* An accept failure that is not the client's (EMFILE, ENOBUFS) leaves the connection in
 * the backlog and the listener readable: the listeners rest this long instead of spinning. */
#define EGRESS_ACCEPT_PAUSE_MS 100

enum { END_CLIENT, END_HOST }; /* the TCP client, the host's end (vsock) */

/* Bytes read from one end and not yet written to the other: a ring of EGRESS_BUF_BYTES. */
struct egress_dir {
	uint8_t *buf;
	size_t head, len;
	bool eof;  /* the end it reads from said EOF */
	bool shut; /* and, every byte written, the other end was shut down for writing */
};

struct egress_end {
	int fd;
	uint32_t events; /* what epoll watches; 0: not in epoll */
	/* The budget: bytes read and written during wake-up `wake`. */
	uint64_t wake;
	size_t read_bytes, written_bytes;
};

struct egress_pair {
	struct egress_end end[2];
	struct egress_dir dir[2]; /* dir[i]: read from end[i], written to end[1 - i] */
	bool live;		  /* the slot is in use */
	bool connecting;	  /* the host end's connect() is in progress */
	bool dead;		  /* ended during this batch of events: skip its events */
	struct egress_pair *next; /* on the free or dead list */
};

struct egress_listener {
	int fd;
	uint16_t port;	     /* the host port connections go to */
	uint16_t local_port; /* as bound */
};

struct egress_relay {
	int epfd, stop_fd;
	struct egress_listener listeners[CLAWVM_EGRESS_MAX_PORTS];
	unsigned nlisteners;
	bool listening;	   /* the listeners are in epoll */
	bool accept_pause; /* an accept failed for want of resources: rest a while */
	const struct egress_relay_ops *ops;
	void *opaque;
	/* Slots freed during a batch go to `dead` and become free after it, so that an event
	 * of the batch for a closed fd never lands on a new pair that reuses its number. */
	struct egress_pair *free, *dead;
	uint64_t wake;
	struct egress_relay_stats stats;
	struct egress_pair pairs[EGRESS_MAX_PAIRS];
};

/* epoll's data: what kind of fd, and which. */
#define TAG_STOP	 0ULL
#define TAG_LISTENER	 1ULL
#define TAG_END		 2ULL
#define TAG(kind, index) (((kind) << 32) | (uint64_t)(index))

static int ep_set(struct egress_relay *r, int fd, uint32_t old, uint32_t events, uint64_t tag)
{
	struct epoll_event ev = {.events = events, .data.u64 = tag};
	int op = !old ? EPOLL_CTL_ADD : !events ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;

	if (old == events)
		return 0;
	return epoll_ctl(r->epfd, op, fd, &ev) < 0 ? -errno : 0;
}

static void budget_renew(struct egress_relay *r, struct egress_end *e)
{
	if (e->wake != r->wake) {
		e->wake = r->wake;
		e->read_bytes = 0;
		e->written_bytes = 0;
	}
}

/* Closes an end; with reset, so that a TCP client sees ECONNRESET rather than EOF. */
static void end_close(struct egress_relay *r, struct egress_end *e, bool reset)
{
	if (e->fd < 0)
		return;
	if (e->events)
		ep_set(r, e->fd, e->events, 0, 0);
	if (reset) {
		struct linger now = {.l_onoff = 1, .l_linger = 0};

		setsockopt(e->fd, SOL_SOCKET, SO_LINGER, &now, sizeof(now));
	}
	close(e->fd);
	e->fd = -1;
	e->events = 0;
}

static void pair_end(struct egress_relay *r, struct egress_pair *p, bool failed)
{
	end_close(r, &p->end[END_CLIENT], failed);
	end_close(r, &p->end[END_HOST], false);
	free(p->dir[0].buf); /* both directions' buffers are one block */
	p->dir[0].buf = p->dir[1].buf = NULL;
	p->live = false;
	p->dead = true;
	p->next = r->dead;
	r->dead = p;
	r->stats.pairs--;
}

static int pair_index(const struct egress_relay *r, const struct egress_pair *p)
{
	return (int)(p - r->pairs);
}

/* Watches what the pair can use now: reading while there is room, writing while there are
 * bytes. An end with nothing to wait for leaves epoll altogether, as EPOLLHUP would
 * otherwise wake the loop for it again and again. */
static int pair_watch(struct egress_relay *r, struct egress_pair *p)
{
	for (int i = END_CLIENT; i <= END_HOST; i++) {
		struct egress_end *e = &p->end[i];
		const struct egress_dir *in = &p->dir[i], *out = &p->dir[1 - i];
		uint32_t events = 0;
		int ret;

		if (p->connecting) {
			events = i == END_HOST ? EPOLLOUT : 0;
		} else {
			if (!in->eof && in->len < EGRESS_BUF_BYTES)
				events |= EPOLLIN;
			if (out->len > 0)
				events |= EPOLLOUT;
		}
		ret = ep_set(r, e->fd, e->events, events,
			     TAG(TAG_END, (uint64_t)pair_index(r, p) * 2 + (uint64_t)i));
		if (ret < 0)
			return ret;
		e->events = events;
	}
	return 0;
}

/* One read from end `i` into its direction's free space, within the end's budget.
 * 0, or a negative errno when the pair must end. */
static int end_read(struct egress_relay *r, struct egress_pair *p, int i)
{
	struct egress_end *e = &p->end[i];
	struct egress_dir *d = &p->dir[i];
	size_t tail = (d->head + d->len) % EGRESS_BUF_BYTES;
	size_t room = EGRESS_BUF_BYTES - d->len, budget;
	struct iovec iov[2];
	struct msghdr msg = {.msg_iov = iov};
	ssize_t n;

	budget_renew(r, e);
	budget = EGRESS_BUDGET_BYTES - e->read_bytes;
	if (d->eof || room == 0 || budget == 0)
		return 0;
	if (room > budget)
		room = budget;
	iov[0].iov_base = d->buf + tail;
	iov[0].iov_len = EGRESS_BUF_BYTES - tail < room ? EGRESS_BUF_BYTES - tail : room;
	iov[1].iov_base = d->buf;
	iov[1].iov_len = room - iov[0].iov_len;
	msg.msg_iovlen = iov[1].iov_len ? 2 : 1;
	n = recvmsg(e->fd, &msg, MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (n == 0)
		d->eof = true;
	d->len += (size_t)n;
	e->read_bytes += (size_t)n;
	return 0;
}

/* One write to end `i` of what the other end sent, within the end's budget; once all of
 * it is written after an EOF, the end is shut down for writing (the half-close passed on).
 * 0, or a negative errno when the pair must end. */
static int end_write(struct egress_relay *r, struct egress_pair *p, int i)
{
	struct egress_end *e = &p->end[i];
	struct egress_dir *d = &p->dir[1 - i];
	size_t len = d->len, budget;
	struct iovec iov[2];
	struct msghdr msg = {.msg_iov = iov};
	ssize_t n;

	budget_renew(r, e);
	budget = EGRESS_BUDGET_BYTES - e->written_bytes;
	if (len > 0 && budget > 0) {
		if (len > budget)
			len = budget;
		iov[0].iov_base = d->buf + d->head;
		iov[0].iov_len =
		    EGRESS_BUF_BYTES - d->head < len ? EGRESS_BUF_BYTES - d->head : len;
		iov[1].iov_base = d->buf;
		iov[1].iov_len = len - iov[0].iov_len;
		msg.msg_iovlen = iov[1].iov_len ? 2 : 1;
		n = sendmsg(e->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		d->head = (d->head + (size_t)n) % EGRESS_BUF_BYTES;
		d->len -= (size_t)n;
		if (d->len == 0)
			d->head = 0;
		e->written_bytes += (size_t)n;
	}
	if (d->eof && d->len == 0 && !d->shut) {
		if (shutdown(e->fd, SHUT_WR) < 0)
			return -errno;
		d->shut = true;
	}
	return 0;
}

/* The host end's connect() finished: 0 once connected, or why not. */
static int pair_connected(struct egress_pair *p)
{
	int soerr = 0;
	socklen_t len = sizeof(soerr);

	if (getsockopt(p->end[END_HOST].fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		return -errno;
	if (soerr)
		return -soerr;
	p->connecting = false;
	return 0;
}

static void pair_event(struct egress_relay *r, struct egress_pair *p, int i, uint32_t events)
{
	int ret = 0;

	if (p->connecting) {
		/* Only the host end is watched while it connects. */
		ret = pair_connected(p);
		if (ret == 0)
			ret = pair_watch(r, p);
		if (ret < 0) {
			r->stats.connect_failed++;
			pair_end(r, p, true);
		}
		return;
	}
	/* Errors and hang-ups surface as the result of the read or write. */
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		ret = end_read(r, p, i);
		/* Passed on at once rather than one epoll round later. */
		if (ret == 0)
			ret = end_write(r, p, 1 - i);
	}
	if (ret == 0 && (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)))
		ret = end_write(r, p, i);
	if (ret == 0 && p->dir[0].shut && p->dir[1].shut) {
		pair_end(r, p, false);
		return;
	}
	if (ret == 0)
		ret = pair_watch(r, p);
	if (ret < 0)
		pair_end(r, p, true);
}

/* A connection accepted on listener l: its host end, connecting. */
static void pair_start(struct egress_relay *r, const struct egress_listener *l, int client_fd)
{
	struct egress_pair *p = r->free;
	uint8_t *bufs;
	int host_fd;

	bufs = malloc(2 * EGRESS_BUF_BYTES);
	host_fd = bufs ? r->ops->connect(r->opaque, l->port) : -ENOMEM;
	if (host_fd < 0) {
		struct egress_end client = {.fd = client_fd};

		free(bufs);
		r->stats.connect_failed++;
		end_close(r, &client, true);
		return;
	}
	r->free = p->next;
	memset(p, 0, sizeof(*p));
	p->end[END_CLIENT].fd = client_fd;
	p->end[END_HOST].fd = host_fd;
	p->dir[0].buf = bufs;
	p->dir[1].buf = bufs + EGRESS_BUF_BYTES;
	p->live = true;
	p->connecting = true;
	r->stats.pairs++;
	if (r->stats.pairs > r->stats.pairs_max)
		r->stats.pairs_max = r->stats.pairs;
	if (pair_watch(r, p) < 0) {
		r->stats.connect_failed++;
		pair_end(r, p, true);
	}
}

static void listener_accept(struct egress_relay *r, const struct egress_listener *l)
{
	for (int i = 0; i < EGRESS_ACCEPT_BUDGET && r->free; i++) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			r->stats.accepted++;
			pair_start(r, l, fd);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
			continue;
		if (errno != EAGAIN)
			r->accept_pause = true;
		return;
	}
}

/* The listeners are watched while a pair can be had: at the cap (or while accept lacks
 * resources) they leave epoll, so that no readable fd stays there unserved, and new
 * clients wait in the backlog. */
static int listeners_watch(struct egress_relay *r)
{
	bool want = r->free && !r->accept_pause;

	if (want == r->listening)
		return 0;
	for (unsigned i = 0; i < r->nlisteners; i++) {
		int ret = ep_set(r, r->listeners[i].fd, want ? 0 : EPOLLIN, want ? EPOLLIN : 0,
				 TAG(TAG_LISTENER, i));

		if (ret < 0)
			return ret;
	}
	r->listening = want;
	return 0;
}

int egress_relay_run(struct egress_relay *r)
{
	struct epoll_event events[EGRESS_MAX_EVENTS];

	for (;;) {
		int ret = listeners_watch(r), n;

		if (ret < 0)
			return ret;
		n = epoll_wait(r->epfd, events, EGRESS_MAX_EVENTS,
			       r->accept_pause ? EGRESS_ACCEPT_PAUSE_MS : -1);
		if (n < 0 && errno != EINTR)
			return -errno;
		r->accept_pause = false;
		r->wake++;
		for (int k = 0; k < n; k++) {
			uint64_t tag = events[k].data.u64;
			uint32_t index = (uint32_t)tag;

			switch (tag >> 32) {
			case TAG_STOP:
				return 0;
			case TAG_LISTENER:
				listener_accept(r, &r->listeners[index]);
				break;
			case TAG_END: {
				struct egress_pair *p = &r->pairs[index / 2];

				if (!p->dead)
					pair_event(r, p, (int)(index % 2), events[k].events);
				break;
			}
			}
		}
		while (r->dead) {
			struct egress_pair *p = r->dead;

			r->dead = p->next;
			p->dead = false;
			p->next = r->free;
			r->free = p;
		}
	}
}

void egress_relay_stop(struct egress_relay *r)
{
	uint64_t one = 1;

	if (write(r->stop_fd, &one, sizeof(one)) < 0) {
		/* The counter is far from overflowing: one write is enough. */
	}
}

uint16_t egress_relay_listen_port(const struct egress_relay *r, unsigned i)
{
	return i < r->nlisteners ? r->listeners[i].local_port : 0;
}

void egress_relay_stats(const struct egress_relay *r, struct egress_relay_stats *out)
{
	*out = r->stats;
}

static int listener_open(struct in_addr addr, uint16_t port, uint16_t *bound, char *err,
			 size_t err_len)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = addr};
	socklen_t len = sizeof(sin);
	int one = 1, fd, saved;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	/* A relay started again finds its old connections in TIME_WAIT. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(fd, EGRESS_BACKLOG) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) < 0)
		goto fail;
	*bound = ntohs(sin.sin_port);
	return fd;
fail:
	saved = errno;
	snprintf(err, err_len, "listen on TCP port %u: %s", (unsigned)port, strerror(saved));
	if (fd >= 0)
		close(fd);
	return -saved;
}

struct egress_relay *egress_relay_create(const struct egress_relay_config *cfg, char *err,
					 size_t err_len)
{
	struct egress_relay *r = calloc(1, sizeof(*r));
	struct epoll_event stop = {.events = EPOLLIN, .data.u64 = TAG(TAG_STOP, 0)};
	int saved;

	if (!r) {
		snprintf(err, err_len, "no memory for the relay");
		return NULL;
	}
	r->ops = cfg->ops;
	r->opaque = cfg->opaque;
	r->stop_fd = -1;
	for (int i = EGRESS_MAX_PAIRS - 1; i >= 0; i--) {
		r->pairs[i].end[END_CLIENT].fd = r->pairs[i].end[END_HOST].fd = -1;
		r->pairs[i].next = r->free;
		r->free = &r->pairs[i];
	}
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r->epfd < 0)
		goto fail_errno;
	r->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->stop_fd < 0 || epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->stop_fd, &stop) < 0)
		goto fail_errno;
	for (unsigned i = 0; i < cfg->ports->n && i < CLAWVM_EGRESS_MAX_PORTS; i++) {
		struct egress_listener *l = &r->listeners[i];
		int fd =
		    listener_open(cfg->bind_addr, cfg->any_listen_port ? 0 : cfg->ports->port[i],
				  &l->local_port, err, err_len);

		if (fd < 0) {
			saved = -fd;
			goto fail;
		}
		l->fd = fd;
		l->port = cfg->ports->port[i];
		r->nlisteners++;
	}
	return r;
fail_errno:
	saved = errno;
	snprintf(err, err_len, "relay: %s", strerror(saved));
fail:
	egress_relay_destroy(r);
	errno = saved;
	return NULL;
}

void egress_relay_destroy(struct egress_relay *r)
{
	if (!r)
		return;
	for (unsigned i = 0; i < EGRESS_MAX_PAIRS; i++) {
		if (r->pairs[i].live)
			pair_end(r, &r->pairs[i], false);
	}
	for (unsigned i = 0; i < r->nlisteners; i++)
		close(r->listeners[i].fd);
	if (r->stop_fd >= 0)
		close(r->stop_fd);
	if (r->epfd >= 0)
		close(r->epfd);
	free(r);
}

/* The control API's connections (server.h's limits): accepting them, reading request
 * lines within each wake-up's budget, queuing replies and events, and dropping the clients
 * that do not keep up. On the server's thread. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/control.h"
#include "base/log.h"
#include "vmm/server_int.h"

/* ---- output ---- */

int outbuf_put(struct outbuf *o, const void *data, size_t len, size_t limit)
{
	if (o->off > 0 && (o->off == o->len || o->off > o->cap / 2)) {
		memmove(o->buf, o->buf + o->off, o->len - o->off);
		o->len -= o->off;
		o->off = 0;
	}
	if (o->len - o->off + len > limit)
		return -ENOBUFS;
	if (o->len + len > o->cap) {
		size_t cap = o->cap ? o->cap : 4096;
		char *bigger;

		while (cap < o->len + len)
			cap *= 2;
		bigger = realloc(o->buf, cap);
		if (!bigger)
			return -ENOMEM;
		o->buf = bigger;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, data, len);
	o->len += len;
	return 0;
}

/* Writes what it can; -errno if the peer is gone. */
int outbuf_flush(struct outbuf *o, int fd)
{
	while (o->off < o->len) {
		ssize_t n = send(fd, o->buf + o->off, o->len - o->off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n < 0)
			return -errno;
		o->off += (size_t)n;
	}
	o->off = o->len = 0;
	return 0;
}

void outbuf_free(struct outbuf *o)
{
	free(o->buf);
	*o = (struct outbuf){0};
}

/* ---- connections ---- */

static void conn_ready(struct ev_handler *h, uint32_t events);

/* The events a connection is watched for, from what it waits for. */
void conn_update(struct conn *c)
{
	uint32_t want = 0;

	if (c->dead)
		return;
	if (c->exec || c->out.off == c->out.len)
		c->stuck_us = 0;
	else if (!c->stuck_us)
		c->stuck_us = log_clock_us();
	/* Not read while whole requests wait (server_backlog serves them): the socket's
	 * buffer, not ours, holds what the client sends meanwhile. */
	if (!c->closing && !c->read_blocked && !c->backlog)
		want |= EPOLLIN;
	if (c->out.off < c->out.len)
		want |= EPOLLOUT;
	if (want == c->watched)
		return;
	if (evloop_mod(&c->s->loop, &c->h, want) < 0)
		log_debug("api: epoll_ctl: %m");
	c->watched = want;
}

/* Frees a connection (an exec attached to it goes on, detached). */
void conn_drop(struct conn *c)
{
	struct server *s = c->s;

	if (c->dead)
		return;
	c->dead = true;
	if (c == s->start_conn)
		s->start_conn = NULL; /* `start` is answered to nobody */
	if (c->exec)
		exec_detach(c->exec);
	evloop_close(&s->loop, &c->h);
	/* Unlinked now, freed after the current dispatch (another handler of the same batch
	 * may still hold it): the loop drops its pending events, so only s->dead keeps it. */
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nconns--;
	c->next = s->dead;
	s->dead = c;
}

void conn_finish(struct conn *c)
{
	if (c->dead)
		return;
	if (c->out.off == c->out.len)
		return conn_drop(c);
	c->closing = true;
	conn_update(c);
}

void conn_free_dead(struct server *s)
{
	while (s->dead) {
		struct conn *c = s->dead;

		s->dead = c->next;
		outbuf_free(&c->out);
		free(c->in);
		free(c);
	}
}

/* Queues a line (built by api/control.c, freed here) for the connection; drops a client
 * that let SERVER_OUT_MAX bytes pile up. */
void conn_send(struct conn *c, char *line)
{
	int ret;

	if (!line) {
		log_warn("api: out of memory building a reply");
		conn_drop(c);
		return;
	}
	ret = outbuf_put(&c->out, line, strlen(line), SERVER_OUT_MAX);
	free(line);
	if (ret < 0) {
		log_warn_guest("api: a client left %d bytes unread; dropping it", SERVER_OUT_MAX);
		conn_drop(c);
		return;
	}
	conn_update(c);
}

void conn_reply(struct conn *c, char *line)
{
	if (c->mute) /* a notification: done, but not answered */
		free(line);
	else
		conn_send(c, line);
}

void reply_error(struct conn *c, const char *id, int code, const char *fmt, ...)
{
	char message[CONTROL_MESSAGE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof(message), fmt, ap);
	va_end(ap);
	if (*id) /* a notification gets no answer, not even an error */
		conn_reply(c, control_reply_error(id, code, message));
}

void server_event(struct server *s, unsigned event, char *line)
{
	if (!line)
		return;
	for (struct conn *c = s->conns, *next; c; c = next) {
		next = c->next;
		if ((c->events & event) && !c->exec)
			conn_send(c, strdup(line));
	}
	free(line);
}

/* Whether the connection's replies leave room to serve another request. */
static bool conn_room(const struct conn *c)
{
	return c->out.len - c->out.off < SERVER_OUT_PAUSE;
}

/* The complete lines in c->in, at most SERVER_LINES_PER_WAKE of them, while their replies
 * have room. */
static void conn_lines(struct conn *c)
{
	struct server *s = c->s;
	size_t start = 0;

	/* After a `start` handed over (server_wait_start), requests wait for the thread's
	 * return: they are answered then, in order. */
	for (int n = 0; n < SERVER_LINES_PER_WAKE && !c->dead && !c->closing && !c->exec &&
			conn_room(c) && !s->handover;
	     n++) {
		char *nl = memchr(c->in + start, '\n', c->in_len - start);
		struct control_request r;
		struct control_error e;
		size_t len;

		if (!nl)
			break;
		len = (size_t)(nl - (c->in + start));
		if (len > 0 && c->in[start + len - 1] == '\r')
			len--;
		if (len == 0) {
			start = (size_t)(nl - c->in) + 1;
			continue;
		}
		if (control_parse_request(c->in + start, len, &r, &e) < 0) {
			c->mute = !e.id[0]; /* a notification, answered by nothing */
			conn_reply(c, control_reply_error(e.id, e.code, e.message));
			c->mute = false;
		} else {
			c->mute = !r.id[0];
			server_handle(s, c, &r);
			c->mute = false;
			control_request_free(&r);
		}
		start = (size_t)(nl - c->in) + 1;
	}
	if (c->dead)
		return;
	memmove(c->in, c->in + start, c->in_len - start);
	c->in_len -= start;
	c->backlog = !c->exec && !c->closing && memchr(c->in, '\n', c->in_len);
	/* What follows an attaching `exec` is its frames. */
	if (c->exec)
		exec_client_input(c->exec);
}

static void conn_read(struct conn *c)
{
	size_t budget = SERVER_BYTES_PER_WAKE;

	while (budget > 0 && !c->dead && !c->read_blocked && !c->backlog && !c->s->handover) {
		size_t room;
		ssize_t n;

		if (c->in_cap - c->in_len < 4096) {
			size_t cap = c->in_cap ? c->in_cap * 2 : 8192;
			char *bigger;

			if (cap > CONTROL_LINE_MAX + 8192)
				cap = CONTROL_LINE_MAX + 8192;
			if (cap <= c->in_cap) {
				/* A whole buffer and no end of line (nothing is read while
				 * whole lines wait): an over-long line. */
				reply_error(c, "null", CONTROL_E_REQUEST,
					    "request line over 1 MiB");
				c->closing = true;
				conn_update(c);
				return;
			}
			bigger = realloc(c->in, cap);
			if (!bigger)
				return conn_drop(c);
			c->in = bigger;
			c->in_cap = cap;
		}
		room = c->in_cap - c->in_len;
		if (room > budget)
			room = budget;
		n = recv(c->sock, c->in + c->in_len, room, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			/* EOF: requests already in are still answered if they can be; an
			 * attached exec loses its client. */
			if (c->exec)
				exec_client_input(c->exec);
			return conn_drop(c);
		}
		c->in_len += (size_t)n;
		budget -= (size_t)n;
		if (c->exec) {
			exec_client_input(c->exec);
			continue;
		}
		conn_lines(c);
	}
}

static void conn_ready(struct ev_handler *h, uint32_t events)
{
	struct conn *c = h->opaque;

	if (events & EPOLLOUT) {
		size_t off = c->out.off;

		if (outbuf_flush(&c->out, c->sock) < 0)
			return conn_drop(c);
		if (c->out.off != off)
			c->stuck_us = log_clock_us(); /* it reads: not stuck (conn_update) */
		if (c->exec && c->out.len - c->out.off < EXEC_CLIENT_ROOM)
			exec_client_room(c->exec);
		if (c->closing && c->out.off == c->out.len)
			return conn_drop(c);
		if (c->backlog && conn_room(c))
			conn_lines(c); /* waited for this room */
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		if (c->backlog) {
			/* Its requests first: the hang-up is seen again once they are done. */
		} else if (c->closing || c->read_blocked) {
			/* Not reading: only a hang-up matters, and it ends the connection. */
			if (events & (EPOLLHUP | EPOLLERR))
				return conn_drop(c);
		} else {
			conn_read(c);
		}
	}
	if (!c->dead)
		conn_update(c); /* lines left after the budget: server_backlog */
}

void server_accept(struct ev_handler *h, uint32_t events)
{
	struct server *s = h->opaque;

	(void)events;
	for (int n = 0; n < 16; n++) {
		int fd = accept4(s->listen.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warn_guest("api: accept: %m");
			return;
		}
		if (s->nconns >= SERVER_MAX_CONNS || !(c = calloc(1, sizeof(*c)))) {
			char *line = control_reply_error("null", CONTROL_E_BUSY,
							 "256 connections are open already");

			if (line && send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
				log_debug("api: %m");
			free(line);
			close(fd);
			continue;
		}
		c->s = s;
		c->sock = fd;
		c->h = (struct ev_handler){.fd = fd, .ready = conn_ready, .opaque = c};
		if (evloop_add(&s->loop, &c->h, EPOLLIN) < 0) {
			close(fd);
			free(c);
			continue;
		}
		c->watched = EPOLLIN;
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
		s->nconns++;
	}
}

/* Connections with whole requests left over from their last wake-up's budget are served
 * here, a budget at a time: true if some are still left. */
bool server_backlog(struct server *s)
{
	bool left = false;

	for (struct conn *c = s->conns, *next; c; c = next) {
		next = c->next;
		if (!c->backlog || !conn_room(c))
			continue; /* ... or served when its client has read (conn_ready) */
		conn_lines(c);
		if (!c->dead) {
			conn_update(c);
			left |= c->backlog && conn_room(c);
		}
	}
	conn_free_dead(s);
	return left;
}

/* Drops the connections whose clients read nothing of their replies for SERVER_STUCK_MS;
 * the milliseconds until the next may be, or -1. */
int server_stuck(struct server *s)
{
	uint64_t now = log_clock_us(), next = UINT64_MAX;

	for (struct conn *c = s->conns, *n; c; c = n) {
		n = c->next;
		if (!c->stuck_us)
			continue;
		if (now - c->stuck_us >= SERVER_STUCK_MS * 1000ull) {
			log_warn_guest(
			    "api: a client read none of its replies for %d s; dropping it",
			    SERVER_STUCK_MS / 1000);
			conn_drop(c);
		} else if (c->stuck_us + SERVER_STUCK_MS * 1000ull < next) {
			next = c->stuck_us + SERVER_STUCK_MS * 1000ull;
		}
	}
	conn_free_dead(s);
	return next == UINT64_MAX ? -1 : (int)((next - now) / 1000) + 1;
}

/* The egress broker's loop (broker.h): listeners, connections from the guest through
 * their states (head, resolving, connecting, TLS, relay), the audit events. One thread
 * (the loop) owns every connection; the resolver's workers only resolve. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "api/audit.h"
#include "base/evloop.h"
#include "base/log.h"
#include "broker/broker.h"
#include "broker/broker_int.h"
#include "broker/http.h"
#include "broker/resolve.h"
#include "broker/tls.h"

static uint64_t now_ms(void)
{
	return log_clock_us() / 1000;
}

/* broker_int.h */
void broker_audit(struct broker *b, char *event)
{
	if (!b->cfg->audit) {
		free(event);
		return;
	}
	if (!event || audit_append(b->cfg->audit, "broker", event, strlen(event)) < 0)
		log_warn("broker: an audit event was lost");
	free(event);
}

static void conn_audit(struct conn *c, bool allowed, const char *reason)
{
	const struct audit_egress e = {
	    .host = c->host[0] ? c->host : "?",
	    .port = c->port,
	    .addr = c->addr[0] ? c->addr : NULL,
	    .allowed = allowed,
	    .reason = reason,
	    .bytes_up = c->bytes_up,
	    .bytes_down = c->bytes_down,
	    .duration_ms = now_ms() - c->t_start_ms,
	};

	broker_audit(c->b, audit_event_egress(&e));
}

static void listeners_watch(struct broker *b, bool on)
{
	if (b->listening == on)
		return;
	for (unsigned i = 0; i < b->nlisteners; i++) {
		if (on) {
			if (evloop_add(&b->loop, &b->listeners[i].h, EPOLLIN) < 0)
				log_warn("broker: cannot watch `%s`", b->listeners[i].path);
		} else {
			evloop_del(&b->loop, &b->listeners[i].h);
		}
	}
	b->listening = on;
}

static void conn_free(struct conn *c)
{
	struct broker *b = c->b;

	evloop_close(&b->loop, &c->guest);
	free(c->upstream_head);
	tls_conn_free(c->tls);
	evloop_close(&b->loop, &c->up);
	LIST_REMOVE(c, link);
	b->nconns--;
	free(c);
	listeners_watch(b, true);
}

/* Ends c after an answer to the guest (an error response), audited as denied with `why`. */
static void conn_refuse(struct conn *c, int status, const char *why)
{
	log_debug("broker: connection %llu: %d, %s", (unsigned long long)c->id, status, why);
	char text[512], resp[1024];
	int len;

	snprintf(text, sizeof(text), "egress to %s:%u refused: %s", c->host[0] ? c->host : "?",
		 c->port, why);
	len = http_error_response(status, text, resp, sizeof(resp));
	if (len > 0 && send(c->guest.fd, resp, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_debug("broker: cannot answer connection %llu: %m", (unsigned long long)c->id);
	conn_audit(c, false, why);
	c->b->denied++;
	conn_free(c);
}

/* The upstream is gone or failed after the decision: closed, audited as allowed. */
static void conn_end(struct conn *c, const char *why)
{
	conn_audit(c, true, why);
	conn_free(c);
}

/* The events each side waits for now. */
static void conn_watch(struct conn *c)
{
	uint32_t g = 0, u = 0;

	if (c->state == C_HEAD) {
		g = EPOLLIN;
	} else if (c->state == C_CONNECTING) {
		u = EPOLLOUT;
	} else if (c->state == C_TLS) {
		u = tls_events(c->tls);
	} else if (c->state == C_RELAY) {
		if (!c->guest_eof && c->g2u_len < BROKER_BUF)
			g |= EPOLLIN;
		if (c->u2g_len)
			g |= EPOLLOUT;
		if (!c->up_eof && c->u2g_len < BROKER_BUF)
			u |= EPOLLIN;
		if (c->g2u_len)
			u |= EPOLLOUT;
		if (c->tls && tls_events(c->tls))
			u |= tls_events(c->tls);
	}
	if (evloop_mod(&c->b->loop, &c->guest, g) < 0 ||
	    (c->up.fd >= 0 && evloop_mod(&c->b->loop, &c->up, u) < 0))
		log_warn("broker: cannot watch connection %llu", (unsigned long long)c->id);
}

static void conn_connect_next(struct conn *c);

/* The head sent upstream in place of the guest's: origin-form, hop-by-hop headers gone,
 * Connection: close; for a secret, the guest's credentials gone and the real one added. */
static int conn_upstream_head(struct conn *c, const struct http_request *req)
{
	static const char *const drop_secret[] = {"x-api-key", "authorization", "host", NULL};
	static const char *const drop_none[] = {NULL};
	struct http_header add[2];
	size_t nadd = 0, cap = req->head_len + 1024;
	char *value = NULL;

	if (c->secret >= 0) {
		const struct broker_secret *s = &c->b->cfg->secrets[c->secret];
		bool bearer = !strcasecmp(s->header, "authorization");

		if (asprintf(&value, "%s%s", bearer ? "Bearer " : "", s->value) < 0)
			return -1;
		add[nadd++] =
		    (struct http_header){s->header, strlen(s->header), value, strlen(value)};
		add[nadd++] = (struct http_header){"Host", 4, s->host, strlen(s->host)};
		cap += strlen(value) + strlen(s->host);
	}
	c->upstream_head = malloc(cap);
	if (c->upstream_head)
		c->upstream_head_len =
		    http_write_upstream_head(req, c->secret >= 0 ? drop_secret : drop_none, add,
					     nadd, c->upstream_head, cap);
	if (value) {
		explicit_bzero(value, strlen(value));
		free(value);
	}
	return c->upstream_head && c->upstream_head_len ? 0 : -1;
}

/* The head is whole: what it asks for, and whether it may. */
static void conn_decide(struct conn *c, const struct http_request *req)
{
	struct broker *b = c->b;

	if (c->secret >= 0) {
		const struct broker_secret *s = &b->cfg->secrets[c->secret];

		if (req->form != HTTP_FORM_ORIGIN) {
			conn_refuse(
			    c, 400,
			    "this endpoint takes plain requests (a path, not a proxy form)");
			return;
		}
		snprintf(c->host, sizeof(c->host), "%s", s->host);
		c->port = s->port;
	} else {
		if (req->form == HTTP_FORM_ORIGIN) {
			conn_refuse(
			    c, 400,
			    "a proxy request names its host (CONNECT host:port, or http://host/)");
			return;
		}
		snprintf(c->host, sizeof(c->host), "%s", req->host);
		c->port = req->port;
		c->tunnel = req->form == HTTP_FORM_AUTHORITY;
		if (!policy_allows_name(&b->cfg->policy, c->host, c->port)) {
			conn_refuse(c, 403, "not in the allowlist");
			return;
		}
	}
	c->head_len = req->head_len;
	if (!c->tunnel && conn_upstream_head(c, req) < 0) {
		conn_refuse(c, 400, "the request head cannot be sent on");
		return;
	}
	if (b->cfg->max_bytes && b->bytes_up + b->bytes_down >= b->cfg->max_bytes) {
		conn_refuse(c, 429, "the sandbox's egress byte limit is reached");
		return;
	}
	if (resolver_submit(b->resolver, c->id, c->host, c->port) < 0) {
		conn_refuse(c, 503, "too many names being resolved");
		return;
	}
	log_debug("broker: connection %llu: %s:%u allowed, resolving", (unsigned long long)c->id,
		  c->host, c->port);
	c->state = C_RESOLVING;
	c->t_state_ms = now_ms();
	conn_watch(c);
}

/* Reads the guest's head; once whole, decides. */
static void conn_read_head(struct conn *c)
{
	struct http_request req;
	enum http_result r;
	ssize_t n;

	n = recv(c->guest.fd, c->g2u + c->g2u_len, HTTP_HEAD_MAX - c->g2u_len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_free(c); /* the guest went before asking anything: nothing to audit */
		return;
	}
	c->g2u_len += (size_t)n;
	r = http_parse_request((const char *)c->g2u, c->g2u_len, &req);
	if (r == HTTP_NEED_MORE) {
		if (c->g2u_len >= HTTP_HEAD_MAX)
			conn_refuse(c, 431, "the request head is too large");
		return;
	}
	if (r != HTTP_OK) {
		conn_refuse(c, (int)r, req.error ? req.error : "a malformed request");
		return;
	}
	conn_decide(c, &req);
}

/* The resolver answered for c: the first address the policy lets through is tried. */
static void conn_resolved(struct conn *c, const struct resolve_result *res)
{
	log_debug("broker: connection %llu: %u addresses (%d)", (unsigned long long)c->id,
		  res->naddrs, res->err);
	c->res = *res;
	c->next_addr = 0;
	if (res->err) {
		snprintf(c->addr, sizeof(c->addr), "%s", "");
		conn_refuse(c, 502, gai_strerror(res->err));
		return;
	}
	conn_connect_next(c);
}

/* The next resolved address the policy allows, connected to without blocking. */
static void conn_connect_next(struct conn *c)
{
	const char *why = "the name has no address";
	int status = 502;

	evloop_close(&c->b->loop, &c->up);
	while (c->next_addr < c->res.naddrs) {
		const struct sockaddr_storage *ss = &c->res.addrs[c->next_addr++];
		const struct sockaddr *sa = (const struct sockaddr *)ss;
		socklen_t len = ss->ss_family == AF_INET ? sizeof(struct sockaddr_in)
							 : sizeof(struct sockaddr_in6);
		int fd;

		inet_ntop(ss->ss_family,
			  ss->ss_family == AF_INET
			      ? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
			      : (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr,
			  c->addr, sizeof(c->addr));
		if (!policy_allows_addr(&c->b->cfg->policy, sa, c->port, &why)) {
			status = 403;
			continue;
		}
		status = 502;
		fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			why = "no socket for the upstream";
			continue;
		}
		if (connect(fd, sa, len) < 0 && errno != EINPROGRESS) {
			close(fd);
			why = "the upstream refused the connection";
			continue;
		}
		c->up = (struct ev_handler){.fd = fd, .ready = c->up.ready, .opaque = c};
		if (evloop_add(&c->b->loop, &c->up, EPOLLOUT) < 0) {
			close(fd);
			c->up.fd = -1;
			why = "cannot watch the upstream";
			continue;
		}
		log_debug("broker: connection %llu: connecting to %s", (unsigned long long)c->id,
			  c->addr);
		c->state = C_CONNECTING;
		c->t_state_ms = now_ms();
		conn_watch(c);
		return;
	}
	conn_refuse(c, status, why);
}

/* Connected (and through TLS, for a secret): what the guest sent goes on. */
static void conn_relay(struct conn *c)
{
	size_t rest = c->g2u_len - c->head_len;
	const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";

	if (c->tunnel) {
		memcpy(c->u2g, ok, sizeof(ok) - 1);
		c->u2g_len = sizeof(ok) - 1;
		memmove(c->g2u, c->g2u + c->head_len, rest);
		c->g2u_len = rest;
	} else {
		/* The new head, then the bytes of the body that came with the old one. */
		if (c->upstream_head_len + rest > BROKER_BUF) {
			conn_refuse(c, 431, "the request head is too large");
			return;
		}
		memmove(c->g2u + c->upstream_head_len, c->g2u + c->head_len, rest);
		memcpy(c->g2u, c->upstream_head, c->upstream_head_len);
		c->g2u_len = c->upstream_head_len + rest;
		explicit_bzero(c->upstream_head, c->upstream_head_len);
		free(c->upstream_head);
		c->upstream_head = NULL;
	}
	if (c->secret >= 0)
		broker_audit(c->b, audit_event_secret(c->b->cfg->secrets[c->secret].name, c->host));
	c->state = C_RELAY;
	c->t_state_ms = now_ms();
}

/* Upstream I/O through TLS or not: bytes, 0 at its end, -EAGAIN, or an error. */
static ssize_t up_read(struct conn *c, void *buf, size_t len)
{
	ssize_t n;

	if (c->tls)
		return tls_read(c->tls, buf, len);
	n = recv(c->up.fd, buf, len, MSG_DONTWAIT);
	return n < 0 ? -errno : n;
}

static ssize_t up_write(struct conn *c, const void *buf, size_t len)
{
	ssize_t n;

	if (c->tls)
		return tls_write(c->tls, buf, len);
	n = send(c->up.fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	return n < 0 ? -errno : n;
}

/* Moves what can be moved, within BROKER_BUDGET; false if c was freed. */
static bool conn_pump(struct conn *c)
{
	size_t budget = BROKER_BUDGET;
	bool progress = true;

	while (progress && budget > 0) {
		ssize_t n;

		progress = false;
		if (!c->guest_eof && c->g2u_len < BROKER_BUF) {
			n = recv(c->guest.fd, c->g2u + c->g2u_len, BROKER_BUF - c->g2u_len,
				 MSG_DONTWAIT);
			if (n > 0) {
				c->g2u_len += (size_t)n;
				progress = true;
			} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
				c->guest_eof = true;
				progress = true;
			}
		}
		if (c->g2u_len) {
			n = up_write(c, c->g2u, c->g2u_len);
			if (n > 0) {
				memmove(c->g2u, c->g2u + n, c->g2u_len - (size_t)n);
				c->g2u_len -= (size_t)n;
				c->bytes_up += (uint64_t)n;
				c->b->bytes_up += (uint64_t)n;
				budget -= (size_t)n < budget ? (size_t)n : budget;
				progress = true;
			} else if (n != -EAGAIN) {
				conn_end(c, c->tls ? tls_error(c->tls) : "the upstream closed");
				return false;
			}
		}
		if (!c->up_eof && c->u2g_len < BROKER_BUF) {
			n = up_read(c, c->u2g + c->u2g_len, BROKER_BUF - c->u2g_len);
			if (n > 0) {
				c->u2g_len += (size_t)n;
				progress = true;
			} else if (n == 0 || n != -EAGAIN) {
				c->up_eof = true;
				progress = true;
			}
		}
		if (c->u2g_len) {
			n = send(c->guest.fd, c->u2g, c->u2g_len, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n > 0) {
				memmove(c->u2g, c->u2g + n, c->u2g_len - (size_t)n);
				c->u2g_len -= (size_t)n;
				c->bytes_down += (uint64_t)n;
				c->b->bytes_down += (uint64_t)n;
				budget -= (size_t)n < budget ? (size_t)n : budget;
				progress = true;
			} else if (errno != EAGAIN && errno != EINTR) {
				conn_end(c, "the guest closed");
				return false;
			}
		}
		/* An end of stream goes on once what came before it has. */
		if (c->guest_eof && !c->g2u_len && !c->up_shut && !c->tls) {
			shutdown(c->up.fd, SHUT_WR);
			c->up_shut = true;
		}
		if (c->up_eof && !c->u2g_len && !c->guest_shut) {
			shutdown(c->guest.fd, SHUT_WR);
			c->guest_shut = true;
		}
	}
	if ((c->up_eof && c->guest_shut && (c->guest_eof || c->tls)) ||
	    (c->guest_eof && c->up_eof && !c->g2u_len && !c->u2g_len)) {
		conn_end(c, NULL);
		return false;
	}
	if (c->b->cfg->max_bytes && c->b->bytes_up + c->b->bytes_down > c->b->cfg->max_bytes) {
		conn_end(c, "the sandbox's egress byte limit is reached");
		return false;
	}
	return true;
}

/* The upstream's socket: connected, TLS, or relay. */
static void conn_up_ready(struct ev_handler *h, uint32_t events)
{
	struct conn *c = h->opaque;
	char why[TLS_ERR_MAX];
	int err = 0, ret;
	socklen_t len = sizeof(err);

	if (c->state == C_CONNECTING) {
		if (getsockopt(c->up.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
			conn_connect_next(c);
			return;
		}
		setsockopt(c->up.fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
		if (c->secret < 0) {
			conn_relay(c);
		} else {
			c->tls = tls_conn_new(c->b->tls, c->up.fd, c->host, why, sizeof(why));
			if (!c->tls) {
				conn_end(c, why);
				return;
			}
			c->state = C_TLS;
		}
	}
	if (c->state == C_TLS) {
		ret = tls_handshake(c->tls);
		if (ret == -EAGAIN) {
			conn_watch(c);
			return;
		}
		if (ret < 0) {
			snprintf(why, sizeof(why), "%s", tls_error(c->tls));
			conn_refuse(c, 502, why);
			return;
		}
		conn_relay(c);
		if (c->state != C_RELAY)
			return;
	}
	(void)events;
	if (conn_pump(c))
		conn_watch(c);
}

/* The guest's socket. */
static void conn_guest_ready(struct ev_handler *h, uint32_t events)
{
	struct conn *c = h->opaque;

	(void)events;
	if (c->state == C_HEAD) {
		conn_read_head(c);
		return;
	}
	if (c->state != C_RELAY) {
		/* Waiting for the resolver or the upstream: a guest that hung up ends it. */
		if (events & (EPOLLHUP | EPOLLERR))
			conn_end(c, "the guest closed");
		return;
	}
	if (conn_pump(c))
		conn_watch(c);
}

static void listener_ready(struct ev_handler *h, uint32_t events)
{
	struct listener *l = h->opaque;
	struct broker *b = l->b;

	(void)events;
	for (int i = 0; i < 16 && b->nconns < BROKER_MAX_CONNS; i++) {
		int fd = accept4(h->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (fd < 0)
			return;
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			return;
		}
		c->b = b;
		c->id = ++b->next_id;
		c->secret = l->secret;
		c->t_start_ms = c->t_state_ms = now_ms();
		c->guest = (struct ev_handler){.fd = fd, .ready = conn_guest_ready, .opaque = c};
		c->up = (struct ev_handler){.fd = -1, .ready = conn_up_ready, .opaque = c};
		if (evloop_add(&b->loop, &c->guest, EPOLLIN) < 0) {
			close(fd);
			free(c);
			return;
		}
		LIST_INSERT_HEAD(&b->conns, c, link);
		b->nconns++;
	}
	if (b->nconns >= BROKER_MAX_CONNS)
		listeners_watch(b, false);
}

static void resolver_ready(struct ev_handler *h, uint32_t events)
{
	struct broker *b = h->opaque;
	struct resolve_result res;

	(void)events;
	while (resolver_next(b->resolver, &res)) {
		struct conn *c;

		LIST_FOREACH(c, &b->conns, link)
		{
			if (c->id == res.id)
				break;
		}
		if (c && c->state == C_RESOLVING)
			conn_resolved(c, &res);
	}
}

/* broker_int.h */
unsigned broker_recheck(struct broker *b)
{
	static const char why[] = "the allowlist no longer allows it (update_egress)";
	struct conn *c, *next;
	unsigned ended = 0;

	for (c = LIST_FIRST(&b->conns); c; c = next) {
		const char *addr_why;
		bool allowed;

		next = LIST_NEXT(c, link);
		/* Not decided yet, or a secret's endpoint (its host is not the allowlist's). */
		if (c->state == C_HEAD || c->secret >= 0)
			continue;
		allowed = policy_allows_name(&b->cfg->policy, c->host, c->port);
		/* The address connected to, once there is one (resolving: checked when the
		 * answer comes, against the policy of then). */
		if (allowed && c->state != C_RESOLVING && c->next_addr > 0)
			allowed = policy_allows_addr(
			    &b->cfg->policy,
			    (const struct sockaddr *)&c->res.addrs[c->next_addr - 1], c->port,
			    &addr_why);
		if (allowed)
			continue;
		ended++;
		if (c->state == C_RELAY)
			conn_end(c, why);
		else
			conn_refuse(c, 403, why);
	}
	return ended;
}

/* Once a second: heads and connects that take too long. */
static void tick_ready(struct ev_handler *h, uint32_t events)
{
	struct broker *b = h->opaque;
	uint64_t now = now_ms();
	struct conn *c, *next;

	(void)events;
	if (!evloop_drain(h))
		return;
	for (c = LIST_FIRST(&b->conns); c; c = next) {
		next = LIST_NEXT(c, link);
		if (c->state == C_HEAD && now - c->t_state_ms > BROKER_HEAD_MS)
			conn_refuse(c, 408, "the request head took too long");
		else if ((c->state == C_CONNECTING || c->state == C_TLS ||
			  c->state == C_RESOLVING) &&
			 now - c->t_state_ms > BROKER_CONNECT_MS)
			conn_refuse(c, 504, "the upstream did not answer in time");
	}
	broker_control_tick(b, now);
}

/* Events from the VMM or the supervisor: each message one event, into the log. */
static void events_ready(struct ev_handler *h, uint32_t events)
{
	struct event_source *src = h->opaque;
	struct broker *b = src->b;
	static char msg[BROKER_MAX_EVENT];

	(void)events;
	for (int i = 0; i < BROKER_EVENTS_BUDGET; i++) {
		ssize_t n = recv(h->fd, msg, sizeof(msg), MSG_DONTWAIT);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			evloop_close(&b->loop, h);
			if (src == &b->supervisor)
				b->done = true;
			return;
		}
		if (b->cfg->audit && audit_append(b->cfg->audit, src->src, msg, (size_t)n) < 0)
			log_warn_guest("broker: an event from the %s was refused: %s", src->src,
				       audit_reason(b->cfg->audit));
	}
}

static int listen_on(struct broker *b, uint16_t port, int secret)
{
	struct listener *l = &b->listeners[b->nlisteners];
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd;

	if ((size_t)snprintf(addr.sun_path, sizeof(addr.sun_path), "%s_%u", b->cfg->prefix, port) >=
	    sizeof(addr.sun_path)) {
		log_err("broker: the socket path `%s_%u` is too long", b->cfg->prefix, port);
		return -1;
	}
	unlink(addr.sun_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 128) < 0) {
		log_err("broker: cannot listen on `%s`: %m", addr.sun_path);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (b->cfg->chown_socks && chown(addr.sun_path, b->cfg->sock_uid, b->cfg->sock_gid) < 0) {
		log_err("broker: cannot give `%s` to the jail user: %m", addr.sun_path);
		close(fd);
		return -1;
	}
	*l = (struct listener){.b = b, .port = port, .secret = secret};
	l->h = (struct ev_handler){.fd = fd, .ready = listener_ready, .opaque = l};
	memcpy(l->path, addr.sun_path, sizeof(l->path));
	b->nlisteners++;
	return 0;
}

int broker_run(struct broker_config *cfg)
{
	struct broker *b = calloc(1, sizeof(*b));
	char err[TLS_ERR_MAX];
	int tick_fd, ret = -1;

	if (!b || evloop_init(&b->loop) < 0) {
		log_err("broker: cannot start: %m");
		free(b);
		return -1;
	}
	b->cfg = cfg;
	b->control.fd = -1;
	LIST_INIT(&b->conns);
	LIST_INIT(&b->clients);
	b->resolver = resolver_create();
	if (!b->resolver) {
		log_err("broker: cannot start its resolver: %m");
		goto out;
	}
	if (cfg->nsecrets) {
		b->tls = tls_ctx_create(cfg->ca_file, err, sizeof(err));
		if (!b->tls) {
			log_err("broker: %s", err);
			goto out;
		}
	}
	if (listen_on(b, BROKER_PROXY_PORT, -1) < 0)
		goto out;
	for (unsigned i = 0; i < cfg->nsecrets; i++)
		if (listen_on(b, (uint16_t)(BROKER_SECRET_PORT + i), (int)i) < 0)
			goto out;
	if (broker_control_listen(b) < 0)
		goto out;
	if (cfg->ready && cfg->ready(cfg->ready_opaque) < 0)
		goto out;
	listeners_watch(b, true);
	if (broker_control_start(b) < 0)
		goto out;
	b->resolver_h = (struct ev_handler){
	    .fd = resolver_fd(b->resolver), .ready = resolver_ready, .opaque = b};
	tick_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	b->tick = (struct ev_handler){.fd = tick_fd, .ready = tick_ready, .opaque = b};
	if (tick_fd < 0 ||
	    timerfd_settime(tick_fd, 0,
			    &(struct itimerspec){.it_interval = {1, 0}, .it_value = {1, 0}},
			    NULL) < 0 ||
	    evloop_add(&b->loop, &b->resolver_h, EPOLLIN) < 0 ||
	    evloop_add(&b->loop, &b->tick, EPOLLIN) < 0) {
		log_err("broker: cannot set up its loop: %m");
		goto out;
	}
	b->vmm = (struct event_source){.b = b, .src = "vmm"};
	b->vmm.h =
	    (struct ev_handler){.fd = cfg->vmm_events_fd, .ready = events_ready, .opaque = &b->vmm};
	b->supervisor = (struct event_source){.b = b, .src = "supervisor"};
	b->supervisor.h = (struct ev_handler){
	    .fd = cfg->supervisor_fd, .ready = events_ready, .opaque = &b->supervisor};
	if ((cfg->vmm_events_fd >= 0 && evloop_add(&b->loop, &b->vmm.h, EPOLLIN) < 0) ||
	    (cfg->supervisor_fd >= 0 && evloop_add(&b->loop, &b->supervisor.h, EPOLLIN) < 0)) {
		log_err("broker: cannot watch its event sockets: %m");
		goto out;
	}
	while (!b->done)
		if (evloop_run_once(&b->loop, -1) < 0 && errno != EINTR)
			break;
	/* The VMM's last events first, then what is still open. */
	if (b->vmm.h.fd >= 0)
		events_ready(&b->vmm.h, EPOLLIN);
	while (!LIST_EMPTY(&b->conns))
		conn_end(LIST_FIRST(&b->conns), "the sandbox ended");
	ret = 0;
out:
	broker_control_stop(b);
	for (unsigned i = 0; i < b->nlisteners; i++) {
		evloop_close(&b->loop, &b->listeners[i].h);
		unlink(b->listeners[i].path);
	}
	resolver_destroy(b->resolver);
	tls_ctx_destroy(b->tls);
	evloop_destroy(&b->loop);
	free(b);
	return ret;
}

/* The control API's server (server.h): connections, requests, state, events. The execs it
 * runs and relays are in server_exec.c. Everything here runs on the server's own thread,
 * but for the few entry points server.h marks as called by the VM's thread, which only set
 * fields under `lock` and wake the loop. */
#include <errno.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "api/control.h"
#include "base/log.h"
#include "vmm/server_int.h"
#include "vmm/vm.h"

static const char *const state_names[] = {"configured", "running", "paused", "stopped"};

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

static void conn_free_dead(struct server *s)
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

/* ---- state ---- */

static uint64_t now_ms_since(uint64_t us)
{
	return us ? (log_clock_us() - us) / 1000 : 0;
}

/* The methods allowed in each state. */
static bool method_allowed(enum control_method m, enum server_state st, const char **need)
{
	switch (m) {
	case CONTROL_SET_MACHINE:
	case CONTROL_SET_BOOT:
	case CONTROL_ADD_SHARE:
	case CONTROL_SET_VSOCK:
	case CONTROL_SET_EXEC_DEFAULTS:
	case CONTROL_START:
		*need = "configured";
		return st == STATE_CONFIGURED;
	case CONTROL_PAUSE:
		*need = "running";
		return st == STATE_RUNNING;
	case CONTROL_RESUME:
		*need = "paused";
		return st == STATE_PAUSED;
	case CONTROL_EXEC:
	case CONTROL_SIGNAL:
		*need = "running or paused";
		return st == STATE_RUNNING || st == STATE_PAUSED;
	case CONTROL_STOP:
		*need = "configured, running or paused";
		return st != STATE_STOPPED;
	default:
		return true;
	}
}

/* The pre-boot methods, through config.h's setters. */
static int apply_config(struct server *s, const struct control_request *r, struct config_err *e)
{
	struct sandbox_config *cfg = s->cfg;

	switch (r->method) {
	case CONTROL_SET_MACHINE:
		if (r->machine.vcpus.set &&
		    config_set_cpus(cfg, "vcpus", r->machine.vcpus.value, e) < 0)
			return -1;
		if (r->machine.memory_mib.set &&
		    config_set_memory(cfg, "memory_mib", r->machine.memory_mib.value, e) < 0)
			return -1;
		return 0;
	case CONTROL_SET_BOOT:
		if (r->boot.kernel && config_set_kernel(cfg, "kernel", r->boot.kernel, e) < 0)
			return -1;
		if (r->boot.initrd && config_set_initrd(cfg, "initrd", r->boot.initrd, e) < 0)
			return -1;
		if (r->boot.rootfs && config_set_rootfs(cfg, "rootfs", r->boot.rootfs, e) < 0)
			return -1;
		if (r->boot.cmdline && config_set_cmdline(cfg, "cmdline", r->boot.cmdline, e) < 0)
			return -1;
		if (r->boot.console_log &&
		    config_set_console_log(cfg, "console_log", r->boot.console_log, e) < 0)
			return -1;
		return 0;
	case CONTROL_ADD_SHARE:
		return config_add_share(cfg, "add_share", r->share.host, r->share.guest,
					r->share.read_only, e);
	case CONTROL_SET_VSOCK:
		if (r->vsock.cid.set && config_set_vsock_cid(cfg, "cid", r->vsock.cid.value, e) < 0)
			return -1;
		if (r->vsock.uds && config_set_vsock_uds(cfg, "uds", r->vsock.uds, e) < 0)
			return -1;
		return 0;
	case CONTROL_SET_EXEC_DEFAULTS:
		for (char **kv = r->defaults.env; kv && *kv; kv++) {
			if (config_add_env(cfg, "env", *kv, e) < 0)
				return -1;
		}
		if ((r->defaults.uid.set || r->defaults.gid.set) &&
		    config_set_user(cfg, "uid/gid",
				    r->defaults.uid.set ? r->defaults.uid.value : cfg->uid,
				    r->defaults.gid.set ? r->defaults.gid.value : cfg->gid, e) < 0)
			return -1;
		if (r->defaults.cwd && config_set_cwd(cfg, "cwd", r->defaults.cwd, e) < 0)
			return -1;
		return 0;
	default:
		return 0;
	}
}

/* `start` (SERVER_VMM): builds the VM here, hands it to the main thread to run. */
static void do_start(struct server *s, struct conn *c, const char *id)
{
	struct config_err e;
	struct guest_dirs dirs;
	struct vm *vm;

	config_guest_dirs(&dirs);
	if (config_find_guest_files(s->cfg, dirs.list, &e) < 0) {
		reply_error(c, id, CONTROL_E_HOST, "%s", e.msg);
		return;
	}
	s->cfg->vm.ready_fd = s->ready.fd;
	if (vm_create(&s->cfg->vm, &vm) < 0) {
		reply_error(c, id, CONTROL_E_HOST, "the VM could not be built: %s",
			    log_last_error());
		return;
	}
	pthread_mutex_lock(&s->lock);
	s->vm = vm;
	s->state = STATE_RUNNING;
	s->start_us = log_clock_us();
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	conn_reply(c, control_reply_empty(id));
}

/* `stop`: the main command (or, without one, every exec) gets SIGTERM; the VM is stopped
 * when the timeout runs out, or at once when nothing runs. */
static void do_stop(struct server *s, struct conn *c, const char *id, uint64_t timeout_ms)
{
	if (s->state == STATE_CONFIGURED) {
		pthread_mutex_lock(&s->lock);
		s->state = STATE_STOPPED;
		s->exit_reason = "stopped";
		s->exit_status = 128 + SIGTERM;
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
		snprintf(s->exit_message, sizeof(s->exit_message), "stopped before it started");
		conn_reply(c, control_reply_empty(id));
		return;
	}
	if (s->stopping) /* one stop at a time: the first one's timeout holds */
		return conn_reply(c, control_reply_empty(id));
	if (s->state == STATE_PAUSED && vm_resume(s->vm) == 0)
		s->state = STATE_RUNNING;
	s->stopping = true;
	vm_stop_later(s->vm, SIGTERM, (unsigned)timeout_ms);
	/* No grace at all is a kill: 137, as after SIGKILL. */
	if (timeout_ms == 0)
		vm_stop_signal(s->vm, SIGKILL);
	else if (exec_signal_for_stop(s) == 0)
		vm_stop_signal(s->vm, SIGTERM);
	conn_reply(c, control_reply_empty(id));
}

static void do_describe(struct server *s, struct conn *c, const char *id)
{
	const struct sandbox_config *cfg = s->cfg;
	struct control_share_info shares[VM_MAX_SHARES];
	struct control_describe d = {
	    .name = cfg->name,
	    .state = state_names[s->state],
	    .pid = getpid(),
	    .uptime_ms = s->state == STATE_CONFIGURED ? 0 : now_ms_since(s->start_us),
	    .ready = s->ready_us != 0,
	    .ready_ms = s->ready_us ? (s->ready_us - s->start_us) / 1000 : 0,
	    .vcpus = cfg->vm.cpus,
	    .memory_mib = cfg->vm.mem_mib,
	    .kernel = cfg->vm.kernel_path,
	    .initrd = cfg->vm.initrd_path,
	    .rootfs = cfg->vm.rootfs,
	    .cmdline = cfg->vm.cmdline,
	    .console_log = cfg->vm.console_log,
	    .shares = shares,
	    .nshares = cfg->vm.nshares,
	    .vsock_cid = cfg->vm.vsock_cid,
	    .vsock_uds = cfg->vm.vsock_uds,
	    .env = (const char *const *)cfg->env,
	    .uid = cfg->uid,
	    .gid = cfg->gid,
	    .cwd = cfg->cwd[0] ? cfg->cwd : "/",
	    .execs = s->nexecs + (s->main_running ? 1 : 0),
	    .exit_reason = s->exit_reason,
	    .exit_status = s->exit_status,
	    .exit_message = s->exit_message[0] ? s->exit_message : NULL,
	};

	if (s->state == STATE_STOPPED)
		d.uptime_ms =
		    s->end_us > s->start_us && s->start_us ? (s->end_us - s->start_us) / 1000 : 0;
	for (unsigned i = 0; i < cfg->vm.nshares; i++)
		shares[i] =
		    (struct control_share_info){cfg->vm.shares[i].host, cfg->vm.shares[i].guest,
						NULL, cfg->vm.shares[i].read_only};
	conn_reply(c, control_reply_describe(id, &d));
}

static void do_metrics(struct server *s, struct conn *c, const char *id)
{
	struct control_metrics m = {0};

	if (s->vm)
		vm_metrics(s->vm, &m);
	conn_reply(c, control_reply_metrics(id, &m));
}

static void do_signal(struct server *s, struct conn *c, const struct control_request *r)
{
	int ret;

	if (!r->signal.id.set || (s->mode == SERVER_RUN && r->signal.id.value == 1)) {
		ret = main_signal(s, r->signal.signo);
		if (ret == -ENOENT)
			return reply_error(c, r->id, CONTROL_E_NOT_FOUND,
					   "there is no main command to signal");
	} else {
		ret = exec_signal(s, r->signal.id.value, r->signal.signo);
		if (ret == -ENOENT)
			return reply_error(c, r->id, CONTROL_E_NOT_FOUND, "no exec with id %llu",
					   (unsigned long long)r->signal.id.value);
	}
	if (ret < 0)
		return reply_error(c, r->id, CONTROL_E_BUSY, "cannot pass the signal on: %s",
				   strerror(-ret));
	conn_reply(c, control_reply_empty(r->id));
}

static void handle_request(struct server *s, struct conn *c, struct control_request *r)
{
	const char *need = "";
	struct config_err e;

	if (!method_allowed(r->method, s->state, &need))
		return reply_error(c, r->id, CONTROL_E_STATE,
				   "`%s` needs state %s; the sandbox is %s",
				   control_method_name(r->method), need, state_names[s->state]);
	switch (r->method) {
	case CONTROL_SET_MACHINE:
	case CONTROL_SET_BOOT:
	case CONTROL_ADD_SHARE:
	case CONTROL_SET_VSOCK:
	case CONTROL_SET_EXEC_DEFAULTS:
		if (apply_config(s, r, &e) < 0)
			return reply_error(c, r->id, CONTROL_E_PARAMS, "%s", e.msg);
		return conn_reply(c, control_reply_empty(r->id));
	case CONTROL_START:
		if (s->mode != SERVER_VMM)
			return reply_error(c, r->id, CONTROL_E_STATE,
					   "this sandbox started itself");
		return do_start(s, c, r->id);
	case CONTROL_PAUSE:
		if (vm_pause(s->vm) < 0)
			return reply_error(c, r->id, CONTROL_E_GUEST,
					   "the VM cannot be paused now");
		s->state = STATE_PAUSED;
		return conn_reply(c, control_reply_empty(r->id));
	case CONTROL_RESUME:
		if (vm_resume(s->vm) < 0)
			return reply_error(c, r->id, CONTROL_E_GUEST,
					   "the VM cannot be resumed now");
		s->state = STATE_RUNNING;
		return conn_reply(c, control_reply_empty(r->id));
	case CONTROL_STOP:
		if (r->stop.timeout_ms.set && r->stop.timeout_ms.value > SERVER_STOP_TIMEOUT_MAX)
			return reply_error(c, r->id, CONTROL_E_PARAMS,
					   "timeout_ms must be between 0 and %d, got %llu",
					   SERVER_STOP_TIMEOUT_MAX,
					   (unsigned long long)r->stop.timeout_ms.value);
		return do_stop(s, c, r->id,
			       r->stop.timeout_ms.set ? r->stop.timeout_ms.value
						      : SERVER_STOP_TIMEOUT_MS);
	case CONTROL_DESCRIBE:
		return do_describe(s, c, r->id);
	case CONTROL_METRICS:
		return do_metrics(s, c, r->id);
	case CONTROL_EXEC:
		return exec_start(s, c, r);
	case CONTROL_SIGNAL:
		return do_signal(s, c, r);
	case CONTROL_SUBSCRIBE:
		c->events = r->subscribe.events;
		return conn_reply(c, control_reply_empty(r->id));
	case CONTROL_METHODS:
		break;
	}
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

	for (int n = 0;
	     n < SERVER_LINES_PER_WAKE && !c->dead && !c->closing && !c->exec && conn_room(c);
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
			handle_request(s, c, &r);
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

	while (budget > 0 && !c->dead && !c->read_blocked && !c->backlog) {
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

static void server_accept(struct ev_handler *h, uint32_t events)
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

/* ---- what the VM's thread tells ---- */

/* Runs on the server's thread, through the wake-up: see server_finish. */
static void server_ended(struct server *s, unsigned linger_ms)
{
	pthread_mutex_lock(&s->lock);
	s->vm = NULL;
	s->state = STATE_STOPPED;
	pthread_mutex_unlock(&s->lock);
	s->finishing = true;
	exec_close_all(s);
	server_event(s, CONTROL_EV_EXIT,
		     control_event_exit(s->exit_reason, s->exit_status,
					s->exit_message[0] ? s->exit_message : NULL));
	/* What fits in the sockets now goes at once, even with no time to linger. */
	for (struct conn *c = s->conns; c; c = c->next) {
		if (outbuf_flush(&c->out, c->sock) < 0)
			c->out.off = c->out.len = 0;
	}
	s->linger_until_us = log_clock_us() + (uint64_t)linger_ms * 1000;
}

static void server_woken(struct ev_handler *h, uint32_t events)
{
	struct server *s = h->opaque;
	bool ready, main_exit, finish;
	int main_status;
	unsigned linger_ms;

	(void)events;
	if (!evloop_drain(h))
		return;
	pthread_mutex_lock(&s->lock);
	ready = s->ready_pending;
	main_exit = s->main_exit_pending;
	main_status = s->main_status;
	finish = s->finish_requested;
	linger_ms = s->linger_ms;
	s->ready_pending = s->main_exit_pending = s->finish_requested = false;
	pthread_mutex_unlock(&s->lock);
	if (ready)
		server_event(s, CONTROL_EV_READY,
			     control_event_ready((s->ready_us - s->start_us) / 1000));
	if (main_exit) {
		s->main_running = false;
		server_event(s, CONTROL_EV_EXEC_EXIT, control_event_exec_exit(1, main_status));
	}
	if (finish && !s->finishing)
		server_ended(s, linger_ms);
}

static void server_guest_listens(struct ev_handler *h, uint32_t events)
{
	struct server *s = h->opaque;

	(void)events;
	if (!evloop_drain(h))
		return;
	evloop_del(&s->loop, h);
	server_guest_ready(s);
}

/* SIGTERM, SIGINT or SIGHUP to `clawvm vmm`: a `stop` with the default grace. */
static void server_signalled(struct ev_handler *h, uint32_t events)
{
	struct server *s = h->opaque;
	struct signalfd_siginfo si;

	(void)events;
	if (read(h->fd, &si, sizeof(si)) != sizeof(si))
		return;
	log_info("signal %u: stopping the sandbox", si.ssi_signo);
	if (s->state == STATE_STOPPED)
		return;
	if (s->state == STATE_CONFIGURED) {
		pthread_mutex_lock(&s->lock);
		s->state = STATE_STOPPED;
		s->exit_reason = "stopped";
		s->exit_status = 128 + (int)si.ssi_signo;
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
		return;
	}
	if (s->state == STATE_PAUSED && vm_resume(s->vm) == 0)
		s->state = STATE_RUNNING;
	s->stopping = true;
	vm_stop_later(s->vm, (int)si.ssi_signo, SERVER_STOP_TIMEOUT_MS);
	if (exec_signal_for_stop(s) == 0)
		vm_stop_signal(s->vm, (int)si.ssi_signo);
}

void server_guest_ready(struct server *s)
{
	pthread_mutex_lock(&s->lock);
	s->ready_us = log_clock_us();
	s->ready_pending = true;
	pthread_mutex_unlock(&s->lock);
	if (eventfd_write(s->wake.fd, 1) < 0)
		log_debug("api: eventfd: %m");
}

void server_main_exited(struct server *s, int status)
{
	pthread_mutex_lock(&s->lock);
	s->main_status = status;
	s->main_exit_pending = true;
	pthread_mutex_unlock(&s->lock);
	if (eventfd_write(s->wake.fd, 1) < 0)
		log_debug("api: eventfd: %m");
}

void server_run_started(struct server *s, struct vm *vm, int main_sig_fd)
{
	pthread_mutex_lock(&s->lock);
	s->vm = vm;
	s->state = STATE_RUNNING;
	s->start_us = log_clock_us();
	s->main_sig_fd = main_sig_fd;
	s->main_running = true;
	s->next_exec_id = 2; /* 1 is the session's command */
	pthread_mutex_unlock(&s->lock);
}

/* ---- the thread ---- */

/* Connections with whole requests left over from their last wake-up's budget are served
 * here, a budget at a time: true if some are still left. */
static bool server_backlog(struct server *s)
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
static int server_stuck(struct server *s)
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

static void *server_thread(void *arg)
{
	struct server *s = arg;

	/* evloop_add and friends are checked to run on the loop's owner thread. */
	s->loop.owner = pthread_self();
	while (!s->finishing || (s->conns && log_clock_us() < s->linger_until_us)) {
		int stuck = server_stuck(s), timeout = server_backlog(s) ? 0 : stuck;

		if (s->finishing) {
			uint64_t left = (s->linger_until_us - log_clock_us()) / 1000;

			timeout = left > 1000 ? 1000 : (int)left + 1;
		}
		if (evloop_run_once(&s->loop, timeout) < 0 && errno != EINTR) {
			log_err("api: the event loop failed: %m");
			break;
		}
		conn_free_dead(s);
		if (s->finishing) {
			/* A connection with nothing to read gets no more: it is closed once its
			 * last bytes are out. */
			for (struct conn *c = s->conns, *next; c; c = next) {
				next = c->next;
				if (!c->closing) {
					c->closing = true;
					conn_update(c);
				}
				if (c->out.off == c->out.len)
					conn_drop(c);
			}
			conn_free_dead(s);
		}
	}
	return NULL;
}

/* The socket at `path`: created mode 0600 (the umask alone would leave a window). */
static int server_listen(const char *path, struct config_err *err)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	mode_t old;
	int fd;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		snprintf(err->msg, sizeof(err->msg), "the API socket path `%s` is too long", path);
		return -1;
	}
	strcpy(addr.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err->msg, sizeof(err->msg), "socket: %s", strerror(errno));
		return -1;
	}
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		umask(old);
		snprintf(err->msg, sizeof(err->msg), "the API socket `%s`: %s", path,
			 errno == EADDRINUSE ? "it exists already" : strerror(errno));
		close(fd);
		return -1;
	}
	umask(old);
	if (chmod(path, 0600) < 0 || listen(fd, 128) < 0) {
		snprintf(err->msg, sizeof(err->msg), "the API socket `%s`: %s", path,
			 strerror(errno));
		unlink(path);
		close(fd);
		return -1;
	}
	return fd;
}

struct server *server_create(enum server_mode mode, struct sandbox_config *cfg,
			     const char *sock_path, struct config_err *err)
{
	struct server *s = calloc(1, sizeof(*s));
	sigset_t mask;

	if (!s) {
		snprintf(err->msg, sizeof(err->msg), "out of memory");
		return NULL;
	}
	s->mode = mode;
	s->cfg = cfg;
	s->state = STATE_CONFIGURED;
	s->next_exec_id = 1;
	s->main_sig_fd = -1;
	s->loop.epfd = -1;
	s->listen.fd = s->wake.fd = s->ready.fd = s->sig.fd = -1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	if (snprintf(s->sock_path, sizeof(s->sock_path), "%s", sock_path) >=
	    (int)sizeof(s->sock_path)) {
		snprintf(err->msg, sizeof(err->msg), "the API socket path is too long");
		goto err;
	}
	if (evloop_init(&s->loop) < 0) {
		snprintf(err->msg, sizeof(err->msg), "cannot make the API's event loop");
		goto err;
	}
	s->listen.fd = server_listen(s->sock_path, err);
	if (s->listen.fd < 0)
		goto err;
	s->wake.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	s->ready.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (mode == SERVER_VMM) {
		sigemptyset(&mask);
		sigaddset(&mask, SIGTERM);
		sigaddset(&mask, SIGINT);
		sigaddset(&mask, SIGHUP);
		pthread_sigmask(SIG_BLOCK, &mask, NULL);
		s->sig.fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	}
	s->listen.ready = server_accept;
	s->wake.ready = server_woken;
	s->ready.ready = server_guest_listens;
	s->sig.ready = server_signalled;
	s->listen.opaque = s->wake.opaque = s->ready.opaque = s->sig.opaque = s;
	if (s->wake.fd < 0 || s->ready.fd < 0 || (mode == SERVER_VMM && s->sig.fd < 0) ||
	    evloop_add(&s->loop, &s->listen, EPOLLIN) < 0 ||
	    evloop_add(&s->loop, &s->wake, EPOLLIN) < 0 ||
	    (mode == SERVER_VMM && (evloop_add(&s->loop, &s->ready, EPOLLIN) < 0 ||
				    evloop_add(&s->loop, &s->sig, EPOLLIN) < 0))) {
		snprintf(err->msg, sizeof(err->msg), "cannot set up the API: %s", strerror(errno));
		goto err;
	}
	return s;
err:
	if (s->listen.fd >= 0)
		unlink(s->sock_path);
	if (s->listen.fd >= 0)
		close(s->listen.fd);
	if (s->wake.fd >= 0)
		close(s->wake.fd);
	if (s->ready.fd >= 0)
		close(s->ready.fd);
	if (s->sig.fd >= 0)
		close(s->sig.fd);
	evloop_destroy(&s->loop);
	free(s);
	return NULL;
}

int server_start(struct server *s)
{
	sigset_t all, saved;
	int ret;

	/* The API thread takes no signal: one it left unblocked would be delivered to it
	 * (and ignored, or kill the process) instead of reaching the signalfd that clawvm run
	 * forwards to its command. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &saved);
	ret = pthread_create(&s->thread, NULL, server_thread, s);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	if (ret) {
		log_err("cannot start the API thread: %s", strerror(ret));
		return -ret;
	}
	s->started = true;
	return 0;
}

struct vm *server_wait_vm(struct server *s, int *status)
{
	struct vm *vm;

	pthread_mutex_lock(&s->lock);
	while (!s->vm && s->state != STATE_STOPPED)
		pthread_cond_wait(&s->cond, &s->lock);
	vm = s->vm;
	*status = s->exit_status;
	pthread_mutex_unlock(&s->lock);
	return vm;
}

/* The `exit` event's reason, from how the VM ended. */
static const char *end_reason(const struct vm *vm, int status)
{
	switch (vm->end) {
	case VM_END_RESET:
		return status == VM_EXIT_FAILURE && atomic_load(&vm->status.status) < 0 ? "error"
											: "exited";
	case VM_END_SIGNAL:
		return "stopped";
	case VM_END_TRIPLE_FAULT:
		return "crashed";
	default:
		return "error";
	}
}

void server_finish(struct server *s, struct vm *vm, int status, unsigned linger_ms)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	if (!vm && !s->exit_reason) {
		s->exit_reason = "error";
		s->exit_status = status;
		snprintf(s->exit_message, sizeof(s->exit_message), "%s", log_last_error());
	}
	if (vm) {
		s->exit_reason = end_reason(vm, status);
		s->exit_status = status;
		if (vm->end == VM_END_ERROR || vm->end == VM_END_TRIPLE_FAULT)
			snprintf(s->exit_message, sizeof(s->exit_message), "%s", vm->end_msg);
	}
	s->end_us = log_clock_us();
	pthread_mutex_unlock(&s->lock);
	if (s->started) {
		/* The rest happens on the server's own thread: ask it, then wait. */
		pthread_mutex_lock(&s->lock);
		s->finish_requested = true;
		s->linger_ms = linger_ms;
		pthread_mutex_unlock(&s->lock);
		if (eventfd_write(s->wake.fd, 1) < 0)
			log_debug("api: eventfd: %m");
		pthread_join(s->thread, NULL);
	}
	/* The thread is gone: whatever is left is ours. */
	s->loop.owner = pthread_self();
	s->vm = NULL;
	exec_close_all(s);
	for (struct conn *c = s->conns, *next; c; c = next) {
		next = c->next;
		conn_drop(c);
	}
	conn_free_dead(s);
	unlink(s->sock_path);
	close(s->listen.fd);
	close(s->wake.fd);
	close(s->ready.fd);
	if (s->sig.fd >= 0)
		close(s->sig.fd);
	evloop_destroy(&s->loop);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s);
}

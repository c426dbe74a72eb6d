/* The control API's execs: each one its own connection to guest-init's exec port (handed
 * to the VM by vm_exec_connect), its REQUEST built from the `exec` method's params and the
 * sandbox's exec defaults. The guest's frames are read whole and passed to the attached
 * client, if any (else dropped), only while that client has room: a slow reader holds back
 * its own exec, through the guest's vsock credit, and nothing else. The client's frames are
 * checked and passed on whole, so that a client that vanishes mid-frame still leaves the
 * guest a well-formed stream, ended by STDIN_EOF. */
#include <errno.h>
#include <sys/epoll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/audit.h"
#include "base/log.h"
#include "vmm/egress.h"
#include "vmm/server_int.h"
#include "vmm/vm.h"

static void exec_ready(struct ev_handler *h, uint32_t events);

static void exec_update(struct exec *e)
{
	uint32_t want = 0;

	if (e->h.fd < 0)
		return;
	if (!e->client || e->client->out.len - e->client->out.off < EXEC_CLIENT_ROOM)
		want |= EPOLLIN;
	if (e->parked) {
		/* Hung up and waiting for its client's room: watched again once there is. */
		if (!(want & EPOLLIN))
			return;
		if (evloop_add(&e->s->loop, &e->h, want) < 0) {
			log_debug("api: epoll_ctl: %m");
			return;
		}
		e->parked = false;
		e->watched = want;
		return;
	}
	if (e->to_guest.off < e->to_guest.len)
		want |= EPOLLOUT;
	if (want == e->watched)
		return;
	if (evloop_mod(&e->s->loop, &e->h, want) < 0)
		log_debug("api: epoll_ctl: %m");
	e->watched = want;
}

static int exec_queue(struct exec *e, uint8_t type, const void *payload, uint32_t len)
{
	uint8_t hdr[EXEC_FRAME_HEADER_LEN];

	exec_frame_header_encode(hdr, type, len);
	/* Signals and the end of input are small and always fit; stdin is held to its room
	 * by exec_client_input. */
	if (outbuf_put(&e->to_guest, hdr, sizeof(hdr), SIZE_MAX) < 0 ||
	    (len && outbuf_put(&e->to_guest, payload, len, SIZE_MAX) < 0))
		return -ENOMEM;
	exec_update(e);
	return 0;
}

static void exec_free(struct exec *e)
{
	struct server *s = e->s;

	if (e->client) {
		e->client->exec = NULL;
		e->client->read_blocked = false;
		conn_finish(e->client); /* its last frames go out, then it is closed */
	}
	evloop_close(&s->loop, &e->h);
	if (e->prev)
		e->prev->next = e->next;
	else
		s->execs = e->next;
	if (e->next)
		e->next->prev = e->prev;
	s->nexecs--;
	if (e->main)
		s->main_running = false;
	outbuf_free(&e->to_guest);
	free(e->frame);
	egress_argv_free(e->argv);
	free(e);
	/* `stop` with no main command: the VM ends when the last exec has. */
	if (s->stopping && s->nexecs == 0 && !s->main_running && s->vm)
		vm_stop_signal(s->vm, SIGTERM);
}

/* A whole frame from the guest. Returns true when the exec is over. */
static bool exec_deliver(struct exec *e)
{
	struct server *s = e->s;
	int status = -1;

	switch (e->frame_type) {
	case EXEC_FRAME_STARTED:
	case EXEC_FRAME_STDOUT:
	case EXEC_FRAME_STDERR:
		break;
	case EXEC_FRAME_EXIT:
		if (e->frame_len != 4)
			return true;
		status = (int)exec_get_le32(e->frame);
		break;
	case EXEC_FRAME_ERROR: {
		char message[CONTROL_MESSAGE_MAX];

		snprintf(message, sizeof(message), "exec %llu: guest-init refused it: %.*s",
			 (unsigned long long)e->id, (int)(e->frame_len < 400 ? e->frame_len : 400),
			 (const char *)e->frame);
		server_event(s, CONTROL_EV_ERROR, control_event_error(CONTROL_E_GUEST, message));
		status = VM_EXIT_FAILURE;
		break;
	}
	default:
		log_warn_guest("api: exec %llu: the guest sent frame type %u",
			       (unsigned long long)e->id, e->frame_type);
		return true;
	}
	if (e->client && !e->client->dead &&
	    (outbuf_put(&e->client->out, e->hdr, sizeof(e->hdr), SIZE_MAX) < 0 ||
	     outbuf_put(&e->client->out, e->frame, e->frame_len, SIZE_MAX) < 0))
		conn_drop(e->client);
	if (e->client)
		conn_update(e->client);
	if (status < 0)
		return false;
	e->done = true;
	server_event(s, CONTROL_EV_EXEC_EXIT, control_event_exec_exit(e->id, status));
	if (e->argv)
		egress_send(s->cfg->vm.audit_fd,
			    audit_event_exec((const char *const *)e->argv, status & 0xff, 0,
					     log_clock_us() / 1000 - e->t_start_ms));
	return true;
}

/* Reads the guest's frames, within this wake-up's budget and the client's room. Returns
 * true when the exec is over (its EXIT, or the connection broke). */
static bool exec_read(struct exec *e)
{
	size_t budget = SERVER_BYTES_PER_WAKE;

	while (budget > 0) {
		bool in_header = e->got < EXEC_FRAME_HEADER_LEN;
		uint8_t *dst;
		size_t want;
		ssize_t n;

		/* At the end, what the guest sent is read whatever the room. */
		if (e->client && e->client->out.len - e->client->out.off >= EXEC_CLIENT_ROOM &&
		    !e->s->finishing)
			break;
		if (in_header) {
			dst = e->hdr + e->got;
			want = EXEC_FRAME_HEADER_LEN - e->got;
		} else {
			dst = e->frame + (e->got - EXEC_FRAME_HEADER_LEN);
			want = e->frame_len - (e->got - EXEC_FRAME_HEADER_LEN);
		}
		n = want ? recv(e->h.fd, dst, want, MSG_DONTWAIT) : 0;
		if (want && n < 0 && errno == EINTR)
			continue;
		if (want && n < 0 && errno == EAGAIN)
			break;
		if (want && n <= 0) {
			/* The guest closed before the EXIT: said, unless the sandbox is ending. */
			char message[128];

			snprintf(message, sizeof(message),
				 "exec %llu: its channel closed before the command's end",
				 (unsigned long long)e->id);
			if (!e->s->finishing)
				server_event(e->s, CONTROL_EV_ERROR,
					     control_event_error(CONTROL_E_GUEST, message));
			return true;
		}
		e->got += (uint32_t)n;
		budget -= (size_t)n;
		if (in_header && e->got == EXEC_FRAME_HEADER_LEN) {
			uint8_t *frame;

			if (exec_frame_header_parse(e->hdr, &e->frame_type, &e->frame_len) < 0)
				return true;
			frame = realloc(e->frame, e->frame_len ? e->frame_len : 1);
			if (!frame)
				return true;
			e->frame = frame;
		}
		if (e->got >= EXEC_FRAME_HEADER_LEN &&
		    e->got - EXEC_FRAME_HEADER_LEN == e->frame_len) {
			e->got = 0;
			if (exec_deliver(e))
				return true;
		}
	}
	return false;
}

static void exec_ready(struct ev_handler *h, uint32_t events)
{
	struct exec *e = h->opaque;

	if (events & EPOLLOUT) {
		if (outbuf_flush(&e->to_guest, h->fd) < 0) {
			e->to_guest.off = e->to_guest.len = 0; /* the guest may still report */
		}
		if (e->client && e->client->read_blocked &&
		    e->to_guest.len - e->to_guest.off < EXEC_GUEST_ROOM) {
			e->client->read_blocked = false;
			exec_client_input(e);
			if (e->client)
				conn_update(e->client);
		}
	}
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && exec_read(e))
		return exec_free(e);
	/* A hang-up with the rest held back by the client's room: epoll reports a hang-up
	 * whatever it is asked, so the fd leaves the set until the client has room. */
	if ((events & (EPOLLHUP | EPOLLERR)) && e->client &&
	    e->client->out.len - e->client->out.off >= EXEC_CLIENT_ROOM) {
		evloop_del(&e->s->loop, &e->h);
		e->parked = true;
		e->watched = 0;
		return;
	}
	exec_update(e);
}

void exec_client_input(struct exec *e)
{
	struct conn *c = e->client;
	size_t off = 0;

	if (!c)
		return;
	while (c->in_len - off >= EXEC_FRAME_HEADER_LEN) {
		uint8_t type;
		uint32_t len;

		if (exec_frame_header_parse((uint8_t *)c->in + off, &type, &len) < 0 ||
		    (type != EXEC_FRAME_STDIN && type != EXEC_FRAME_STDIN_EOF &&
		     type != EXEC_FRAME_SIGNAL && type != EXEC_FRAME_WINSIZE) ||
		    (e->eof_sent && (type == EXEC_FRAME_STDIN || type == EXEC_FRAME_STDIN_EOF))) {
			log_warn_guest("api: exec %llu: the client sent a frame it may not send; "
				       "dropping it",
				       (unsigned long long)e->id);
			conn_drop(c); /* detaches: the exec's stdin ends */
			return;
		}
		if (c->in_len - off < EXEC_FRAME_HEADER_LEN + (size_t)len)
			break;
		if (e->to_guest.len - e->to_guest.off >= EXEC_GUEST_ROOM) {
			c->read_blocked = true;
			break;
		}
		if (outbuf_put(&e->to_guest, c->in + off, EXEC_FRAME_HEADER_LEN + (size_t)len,
			       SIZE_MAX) < 0) {
			conn_drop(c);
			return;
		}
		if (type == EXEC_FRAME_STDIN_EOF)
			e->eof_sent = true;
		off += EXEC_FRAME_HEADER_LEN + (size_t)len;
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
	exec_update(e);
}

void exec_client_room(struct exec *e)
{
	exec_update(e);
}

void exec_detach(struct exec *e)
{
	e->client = NULL;
	if (!e->eof_sent && exec_queue(e, EXEC_FRAME_STDIN_EOF, NULL, 0) == 0)
		e->eof_sent = true;
	exec_update(e);
}

/* The REQUEST: the request's own settings over the sandbox's exec defaults. */
static int exec_encode(struct server *s, const struct control_request *r, struct exec *e)
{
	const struct sandbox_config *cfg = s->cfg;
	const char *envp[CONFIG_MAX_ENV + CONTROL_MAX_ENV];
	struct exec_request req = {
	    .flags = (r->exec.tty ? EXEC_FLAG_PTY : 0) | (r->exec.main ? EXEC_FLAG_MAIN : 0),
	    .uid = r->exec.uid.set ? (uint32_t)r->exec.uid.value : cfg->uid,
	    .gid = r->exec.gid.set ? (uint32_t)r->exec.gid.value : cfg->gid,
	    .rows = (uint16_t)(r->exec.rows.set ? r->exec.rows.value : 0),
	    .cols = (uint16_t)(r->exec.cols.set ? r->exec.cols.value : 0),
	    .argv = (const char **)r->exec.argv,
	    .envp = envp,
	    .cwd = r->exec.cwd ? r->exec.cwd : cfg->cwd,
	};
	uint8_t *frame;
	size_t len;
	int ret;

	while (r->exec.argv[req.argc])
		req.argc++;
	for (unsigned i = 0; i < cfg->nenv; i++) {
		const char *eq = strchr(cfg->env[i], '=');
		bool overridden = false;

		for (char **kv = r->exec.env; kv && *kv && !overridden; kv++)
			overridden = !strncmp(*kv, cfg->env[i], (size_t)(eq - cfg->env[i]) + 1);
		if (!overridden)
			envp[req.envc++] = cfg->env[i];
	}
	for (char **kv = r->exec.env; kv && *kv; kv++)
		envp[req.envc++] = *kv;
	ret = exec_request_encode(&req, &frame, &len);
	if (ret < 0)
		return ret;
	ret = outbuf_put(&e->to_guest, frame, len, SIZE_MAX);
	free(frame);
	return ret;
}

void exec_start(struct server *s, struct conn *c, const struct control_request *r)
{
	int pair[2], ret;
	struct exec *e;

	if (r->exec.main && (s->main_running || s->mode == SERVER_RUN)) {
		reply_error(c, r->id, CONTROL_E_BUSY, "the sandbox has a main command already");
		return;
	}
	if (r->exec.uid.value > CONFIG_MAX_UID || r->exec.gid.value > CONFIG_MAX_UID ||
	    r->exec.rows.value > 0xffff || r->exec.cols.value > 0xffff ||
	    (r->exec.cwd && r->exec.cwd[0] != '/')) {
		reply_error(c, r->id, CONTROL_E_PARAMS,
			    "exec: uid and gid must be at most 4294967294, "
			    "rows and cols at most 65535, cwd absolute");
		return;
	}
	if (s->nexecs >= SERVER_MAX_EXECS) {
		reply_error(c, r->id, CONTROL_E_BUSY, "64 execs run already (the most at once)");
		return;
	}
	e = calloc(1, sizeof(*e));
	if (!e || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) < 0) {
		free(e);
		conn_reply(c, control_reply_error(r->id, CONTROL_E_HOST, "cannot make a socket"));
		return;
	}
	e->s = s;
	e->id = s->next_exec_id;
	e->main = r->exec.main;
	e->h = (struct ev_handler){.fd = pair[0], .ready = exec_ready, .opaque = e};
	ret = exec_encode(s, r, e);
	if (ret == 0 && !r->exec.attach && exec_queue(e, EXEC_FRAME_STDIN_EOF, NULL, 0) == 0)
		e->eof_sent = true;
	if (ret < 0) {
		close(pair[0]);
		close(pair[1]);
		outbuf_free(&e->to_guest);
		free(e);
		reply_error(c, r->id, CONTROL_E_PARAMS, "exec: %s",
			    ret == -E2BIG ? "argv and env are over 1 MiB" : strerror(-ret));
		return;
	}
	ret = vm_exec_connect(s->vm, pair[1]); /* takes pair[1] */
	if (ret < 0 || evloop_add(&s->loop, &e->h, EPOLLIN | EPOLLOUT) < 0) {
		close(pair[0]);
		outbuf_free(&e->to_guest);
		free(e);
		reply_error(c, r->id, ret == -EBUSY ? CONTROL_E_BUSY : CONTROL_E_GUEST,
			    "cannot reach guest-init: %s", strerror(-ret));
		return;
	}
	e->watched = EPOLLIN | EPOLLOUT;
	e->t_start_ms = log_clock_us() / 1000;
	if (s->cfg->vm.audit_fd >= 0)
		e->argv = egress_argv_dup((const char *const *)r->exec.argv);
	s->next_exec_id++;
	e->next = s->execs;
	if (s->execs)
		s->execs->prev = e;
	s->execs = e;
	s->nexecs++;
	if (e->main)
		s->main_running = true;
	conn_reply(c, control_reply_exec(r->id, e->id));
	if (r->exec.attach && !c->dead) {
		e->client = c;
		c->exec = e;
	}
}

static struct exec *exec_find(struct server *s, uint64_t id)
{
	for (struct exec *e = s->execs; e; e = e->next) {
		if (e->id == id)
			return e;
	}
	return NULL;
}

static int exec_send_signal(struct exec *e, int signo)
{
	uint8_t p[4];

	exec_put_le32(p, (uint32_t)signo);
	return exec_queue(e, EXEC_FRAME_SIGNAL, p, sizeof(p));
}

int exec_signal(struct server *s, uint64_t id, int signo)
{
	struct exec *e = exec_find(s, id);

	return e && !e->done ? exec_send_signal(e, signo) : -ENOENT;
}

int main_signal(struct server *s, int signo)
{
	struct signalfd_siginfo si = {.ssi_signo = (uint32_t)signo};

	if (s->mode == SERVER_RUN) {
		if (!s->main_running || s->main_sig_fd < 0)
			return -ENOENT;
		/* A record of the size the session reads from a signalfd. */
		return send(s->main_sig_fd, &si, sizeof(si), MSG_DONTWAIT | MSG_NOSIGNAL) ==
			       (ssize_t)sizeof(si)
			   ? 0
			   : -errno;
	}
	for (struct exec *e = s->execs; e; e = e->next) {
		if (e->main)
			return exec_send_signal(e, signo);
	}
	return -ENOENT;
}

unsigned exec_signal_for_stop(struct server *s)
{
	unsigned n = 0;

	if (main_signal(s, SIGTERM) == 0)
		return 1;
	for (struct exec *e = s->execs; e; e = e->next)
		n += exec_send_signal(e, SIGTERM) == 0;
	return n;
}

void exec_close_all(struct server *s)
{
	s->stopping = false; /* no VM to stop any more */
	while (s->execs) {
		struct exec *e = s->execs;

		/* The last frames (a main command's EXIT comes just before the guest powers
		 * off) are still in the socket: pass them on first. */
		if (e->h.fd >= 0)
			(void)exec_read(e);
		exec_free(e);
	}
}

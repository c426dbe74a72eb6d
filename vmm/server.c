/* The control API's server (server.h): its thread and loop, its socket, what the VM's
 * thread tells it, and its end. Connections are in server_conn.c, the methods in
 * server_methods.c, the execs it runs and relays in server_exec.c. Everything here runs on
 * the server's own thread, but for the few entry points server.h marks as called by the
 * VM's thread, which only set fields under `lock` and wake the loop. */
#include <errno.h>
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
#include "vmm/seccomp.h"
#include "vmm/server_int.h"
#include "vmm/vm.h"

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

static void *server_thread(void *arg)
{
	struct server *s = arg;
	int jail = s->cfg->vm.seccomp ? seccomp_install(SECCOMP_API) : 0;

	/* server_start waits for the filter: no client is served without it. */
	pthread_mutex_lock(&s->lock);
	s->jail_ret = jail;
	s->jail_done = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	if (jail < 0)
		return NULL;
	/* evloop_add and friends are checked to run on the loop's owner thread. */
	s->loop.owner = pthread_self();
	if (s->start_answer) {
		s->start_answer = false;
		if (!s->start_conn || !s->start_id[0])
			; /* gone, or a notification: answered by nothing */
		else if (!s->start_error[0])
			conn_reply(s->start_conn, control_reply_empty(s->start_id));
		else
			reply_error(s->start_conn, s->start_id, CONTROL_E_HOST,
				    "the VM could not be built: %s", s->start_error);
		s->start_conn = NULL;
	}
	while (!s->handover &&
	       (!s->finishing || (s->conns && log_clock_us() < s->linger_until_us))) {
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

unsigned server_fds(const struct server *s, int fds[SERVER_FDS])
{
	const int own[] = {s->loop.epfd, s->listen.fd, s->wake.fd, s->ready.fd, s->sig.fd};
	unsigned n = 0;

	for (unsigned i = 0; i < sizeof(own) / sizeof(own[0]); i++)
		if (own[i] >= 0)
			fds[n++] = own[i];
	for (const struct conn *c = s->conns; c && n < SERVER_FDS; c = c->next)
		fds[n++] = c->sock;
	return n;
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
	pthread_mutex_lock(&s->lock);
	while (!s->jail_done)
		pthread_cond_wait(&s->cond, &s->lock);
	ret = s->jail_ret;
	pthread_mutex_unlock(&s->lock);
	if (ret < 0) {
		/* The thread has ended: join it, and the caller's server_finish cleans up. */
		pthread_join(s->thread, NULL);
		return ret;
	}
	s->started = true;
	return 0;
}

bool server_wait_start(struct server *s, int *status)
{
	bool start;

	pthread_mutex_lock(&s->lock);
	while (!s->handover && s->state != STATE_STOPPED)
		pthread_cond_wait(&s->cond, &s->lock);
	start = s->handover;
	*status = s->exit_status;
	pthread_mutex_unlock(&s->lock);
	if (start) {
		pthread_join(s->thread, NULL);
		s->started = false;
	}
	return start;
}

int server_resume(struct server *s, struct vm *vm)
{
	s->start_error[0] = '\0';
	if (!vm)
		snprintf(s->start_error, sizeof(s->start_error), "%s", log_last_error());
	pthread_mutex_lock(&s->lock);
	if (vm) {
		s->vm = vm;
		s->state = STATE_RUNNING;
		s->start_us = log_clock_us();
	}
	s->handover = false;
	s->start_answer = true;
	pthread_mutex_unlock(&s->lock);
	return server_start(s);
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

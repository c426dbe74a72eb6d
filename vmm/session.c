/* The `clawvm run` session. The VM boots without a command; the session's end of a
 * socketpair is the command's connection: the VM hands the other end to its vsock device as
 * a host connection to guest-init's exec port once guest-init says it listens, and the
 * session runs the command over it as the `main` exec. When it ends, guest-init reports its
 * status and powers off, which ends vm_run.
 *
 * The session owns clawvm's signals (read from a signalfd on its thread; every thread
 * blocks them): until the command's connection is handed over, a stop signal stops the VM;
 * from then on it goes to the command (SIGWINCH becomes a window-size change), and SIGTERM
 * or SIGHUP also stop the VM VM_STOP_GRACE_MS later if it has not ended. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "api/audit.h"
#include "base/log.h"
#include "vmm/exec_client.h"
#include "vmm/seccomp.h"
#include "vmm/server.h"
#include "vmm/egress.h"
#include "vmm/session.h"
#include "vmm/vm.h"

/* The signals the session reads rather than dies of. */
static const int session_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH};

struct session {
	struct exec_request req;
	int fd;		/* our end of the command's connection */
	int sig_fd;	/* signalfd of session_signals */
	int ready_fd;	/* eventfd: the connection went to guest-init, or the VM ended */
	int abort_fd;	/* eventfd: the VM ended otherwise than by its command's end */
	int api_sig_fd; /* signals for the command from the control API (server.h) */
	int audit_fd;	/* the broker's, for the command's audit event (vm_config.audit_fd) */
	int notify_fd;	/* -1, or told "ready" once the command runs (clawvm run -d) */
	struct server *server;
	bool seccomp;	 /* the thread installs its allowlist (vm_config's seccomp) */
	atomic_int done; /* the VM ended */
	int ret;	 /* exec_client result, or -ECANCELED if the command never ran */
	int status;
	/* The client thread reaches the VM through `live` under `lock`: NULL once the VM
	 * is being destroyed. */
	pthread_mutex_t lock;
	struct vm *live;
};

enum session_stop { STOP_NOW, STOP_LATER, STOP_ERROR };

/* Stops the VM from the client thread, if it is still there. */
static void session_stop(struct session *s, enum session_stop how, int signo, const char *why)
{
	pthread_mutex_lock(&s->lock);
	if (s->live && how == STOP_NOW)
		vm_stop_signal(s->live, signo);
	else if (s->live && how == STOP_LATER)
		vm_stop_later(s->live, signo, VM_STOP_GRACE_MS);
	else if (s->live)
		vm_stop(s->live, VM_END_ERROR, "%s", why);
	pthread_mutex_unlock(&s->lock);
}

/* SIGTERM and SIGHUP mean "end": passed on to the command, they also set the VM's end. */
static void session_forwarded(int signo, void *opaque)
{
	if (signo == SIGTERM || signo == SIGHUP)
		session_stop(opaque, STOP_LATER, signo, NULL);
}

/* Until guest-init listens: a stop signal stops the VM. True once the command may run. */
static bool session_wait_ready(struct session *s)
{
	struct pollfd p[2] = {{.fd = s->ready_fd, .events = POLLIN},
			      {.fd = s->sig_fd, .events = POLLIN}};
	struct signalfd_siginfo si;
	uint64_t count;

	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			session_stop(s, STOP_ERROR, 0, "the session cannot wait for the guest");
			return false;
		}
		if (p[0].revents)
			return read(s->ready_fd, &count, sizeof(count)) == sizeof(count) &&
			       !atomic_load(&s->done);
		if (read(s->sig_fd, &si, sizeof(si)) != sizeof(si) || si.ssi_signo == SIGWINCH)
			continue; /* a terminal resize, nobody to tell yet */
		session_stop(s, STOP_NOW, (int)si.ssi_signo, NULL);
		return false;
	}
}

static void *session_client(void *arg)
{
	struct session *s = arg;
	const struct exec_client_opts opts = {
	    .sig_fd = s->sig_fd,
	    .forwarded = session_forwarded,
	    .opaque = s,
	    .abort_fd = s->abort_fd,
	    .more_sig_fd = s->api_sig_fd,
	};
	char why[128];
	uint64_t t0;

	s->ret = -ECANCELED;
	if (s->seccomp && seccomp_install(SECCOMP_CLIENT) < 0) {
		session_stop(s, STOP_ERROR, 0, "the exec client's seccomp filter failed");
		return NULL;
	}
	if (!session_wait_ready(s))
		return NULL;
	if (s->server)
		server_guest_ready(s->server);
	if (s->notify_fd >= 0) {
		if (write(s->notify_fd, "ready\n", 6) != 6)
			log_debug("session: cannot tell the parent: %m");
		close(s->notify_fd);
		s->notify_fd = -1;
		/* Detached: from here on nobody reads clawvm's stderr (it may be the pipe of
		 * the caller's $(...), which must not wait for the sandbox's end). */
		log_silence();
	}
	t0 = log_clock_us();
	s->ret = exec_client_run_opts(s->fd, &s->req, STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO,
				      &opts, &s->status);
	if (s->ret == 0 && s->server)
		server_main_exited(s->server, s->status);
	if (s->ret == 0)
		egress_send(s->audit_fd,
			    audit_event_exec((const char *const *)s->req.argv, s->status & 0xff, 0,
					     (log_clock_us() - t0) / 1000));
	if (s->ret < 0 && !atomic_load(&s->done)) {
		snprintf(why, sizeof(why), "the exec channel to the guest failed: %s",
			 strerror(-s->ret));
		session_stop(s, STOP_ERROR, 0, why);
	}
	return NULL;
}

/* The request for argv: the `main` command, with the sandbox's exec defaults, and a
 * terminal of clawvm's size if `tty`. */
static void session_request(struct exec_request *req, const struct sandbox_config *cfg,
			    char *const *argv, bool tty)
{
	static char term_var[128];
	static const char *env[CONFIG_MAX_ENV + 1];
	struct winsize ws;
	uint32_t argc = 0, envc = 0;

	while (argv[argc])
		argc++;
	for (unsigned i = 0; i < cfg->nenv; i++)
		env[envc++] = cfg->env[i];
	*req = (struct exec_request){
	    .flags = EXEC_FLAG_MAIN | (tty ? EXEC_FLAG_PTY : 0),
	    .uid = cfg->uid,
	    .gid = cfg->gid,
	    .argc = argc,
	    .argv = (const char **)argv,
	    .envp = env,
	    .cwd = cfg->cwd,
	};
	if (tty) {
		if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0) {
			req->rows = ws.ws_row;
			req->cols = ws.ws_col;
		}
		/* The terminal's type, unless -e gave one. */
		if (getenv("TERM") && envc < CONFIG_MAX_ENV) {
			bool given = false;

			for (uint32_t i = 0; i < envc; i++)
				given |= !strncmp(env[i], "TERM=", 5);
			snprintf(term_var, sizeof(term_var), "TERM=%s", getenv("TERM"));
			if (!given)
				env[envc++] = term_var;
		}
	}
	env[envc] = NULL;
	req->envc = envc;
}

void session_signal_set(sigset_t *set)
{
	sigemptyset(set);
	for (size_t i = 0; i < sizeof(session_signals) / sizeof(session_signals[0]); i++)
		sigaddset(set, session_signals[i]);
}

int session_run(struct sandbox_config *sc, char *const *argv, bool tty, struct server *server,
		int notify_fd)
{
	struct session s = {.fd = -1,
			    .sig_fd = -1,
			    .ready_fd = -1,
			    .abort_fd = -1,
			    .api_sig_fd = -1,
			    .notify_fd = notify_fd,
			    .audit_fd = sc->vm.audit_fd,
			    .server = server,
			    .seccomp = sc->vm.seccomp};
	struct vm_config *cfg = &sc->vm;
	int pair[2] = {-1, -1}, sig_pair[2] = {-1, -1}, status = VM_EXIT_FAILURE;
	struct termios saved;
	struct vm *vm;
	bool raw = false;
	pthread_t client;
	sigset_t mask;

	/* Blocked in every thread (the client's and the VM's inherit the mask): the
	 * signalfd is the only place they arrive. */
	session_signal_set(&mask);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN); /* a closed stdout must not kill clawvm before it reports */
	s.sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	s.ready_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	s.abort_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pthread_mutex_init(&s.lock, NULL);
	if (s.sig_fd < 0 || s.ready_fd < 0 || s.abort_fd < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sig_pair) < 0) {
		log_err("cannot set up the session: %m");
		goto out;
	}
	s.fd = pair[0];
	cfg->exec_fd = pair[1];
	cfg->ready_fd = s.ready_fd;
	pair[1] = -1; /* vm_create takes it, whatever happens */
	s.api_sig_fd = sig_pair[0];
	session_request(&s.req, sc, argv, tty);
	if (vm_create(cfg, &vm) < 0)
		goto out;
	s.live = vm;
	if (server)
		server_run_started(server, vm, sig_pair[1]);
	if (tty && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0) {
		struct termios t = saved;

		cfmakeraw(&t);
		raw = tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
	}
	if (pthread_create(&client, NULL, session_client, &s) != 0) {
		log_err("cannot start the exec client thread");
		server_finish(server, vm, VM_EXIT_FAILURE, 0);
		server = NULL;
		vm_destroy(vm);
		goto out_tty;
	}
	status = vm_run(vm);
	atomic_store(&s.done, 1);
	/* Wakes the client if it still waits for the guest to listen; if the VM was stopped
	 * (a signal, an error), it also gives up relaying output nobody may ever read. After
	 * the command's own end, what it wrote is all relayed first. */
	if (eventfd_write(s.ready_fd, 1) < 0 ||
	    (vm->end != VM_END_RESET && eventfd_write(s.abort_fd, 1) < 0))
		log_debug("eventfd: %m");
	pthread_mutex_lock(&s.lock);
	s.live = NULL;
	pthread_mutex_unlock(&s.lock);
	/* The API sends `exit` and lets go of the VM before it goes. */
	server_finish(server, vm, status, 0);
	server = NULL;
	/* With the VM's end of the connection closed (by its vsock device), the client's
	 * session ends if it still runs. */
	vm_destroy(vm);
	pthread_join(client, NULL);
	log_debug("the VM is gone");
	if (s.ret == 0)
		status = s.status;
out_tty:
	if (raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
out:
	server_finish(server, NULL, status, 0);
	for (int i = 0; i < 2; i++) {
		if (pair[i] >= 0)
			close(pair[i]);
		if (sig_pair[i] >= 0)
			close(sig_pair[i]);
	}
	if (s.notify_fd >= 0)
		close(s.notify_fd);
	if (s.sig_fd >= 0)
		close(s.sig_fd);
	if (s.ready_fd >= 0)
		close(s.ready_fd);
	if (s.abort_fd >= 0)
		close(s.abort_fd);
	pthread_mutex_destroy(&s.lock);
	return status;
}

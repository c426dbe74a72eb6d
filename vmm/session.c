/* The `clawvm run` session. The VM boots without a command; a client thread connects to
 * guest-init's exec port through the VM's own hybrid-vsock socket (in a private directory
 * unless --vsock-uds names one) once guest-init says it listens, and runs the command as
 * the `main` exec: when it ends, guest-init reports its status and powers off, which ends
 * vm_run. Until the exec session runs, a stop signal stops the VM; from then on it goes to
 * the command (SIGWINCH becomes a window-size change). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include "clawvm/guest_abi.h"
#include "vmm/exec_client.h"
#include "vmm/log.h"
#include "vmm/session.h"

#define CONNECT_RETRY_NS (5 * 1000 * 1000)

struct session {
	struct vm *vm;
	const char *uds;
	struct exec_request req;
	int sig_read_fd;
	int ready_fd;	 /* eventfd: guest-init's exec channel listens, or the VM ended */
	atomic_int done; /* the VM ended: stop trying to connect */
	int ret;	 /* exec_client result, or -ECANCELED if never connected */
	int status;
};

static void *session_client(void *arg)
{
	struct session *s = arg;
	struct timespec pause = {.tv_nsec = CONNECT_RETRY_NS};
	struct pollfd ready = {.fd = s->ready_fd, .events = POLLIN};
	uint64_t count;
	int fd;

	s->ret = -ECANCELED;
	/* Not a connection before guest-init says its exec channel listens: a booting guest
	 * may drop the request unanswered (its vsock driver not yet up) and the handshake
	 * would wait forever. The word comes once; the VM's end wakes us too. */
	while (poll(&ready, 1, -1) < 0 && errno == EINTR)
		;
	if (read(s->ready_fd, &count, sizeof(count)) != sizeof(count) || atomic_load(&s->done))
		return NULL;
	log_debug("guest-init listens");
	for (;;) {
		fd = exec_client_connect(s->uds, CLAWVM_EXEC_PORT);
		if (fd >= 0)
			break;
		if (atomic_load(&s->done))
			return NULL;
		nanosleep(&pause, NULL);
	}
	log_debug("the exec session is connected");
	vm_forward_signals(s->vm);
	s->ret = exec_client_run_signals(fd, &s->req, STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO,
					 s->sig_read_fd, &s->status);
	close(fd);
	if (s->ret < 0 && !atomic_load(&s->done))
		vm_stop(s->vm, VM_END_ERROR, "the exec channel to the guest failed: %s",
			strerror(-s->ret));
	return NULL;
}

int session_run(struct vm_config *cfg, char *const *argv, bool tty)
{
	char dir[] = "/tmp/clawvm-XXXXXX", uds[64];
	struct session s = {.sig_read_fd = -1, .ready_fd = -1};
	struct termios saved;
	bool raw = false, own_dir = false;
	int sig_pipe[2] = {-1, -1}, status, argc = 0;
	pthread_t client;
	sigset_t mask;

	while (argv[argc])
		argc++;
	if (!cfg->vsock_uds) {
		if (!mkdtemp(dir)) {
			log_err("cannot make a private directory in /tmp: %m");
			return VM_EXIT_FAILURE;
		}
		own_dir = true;
		snprintf(uds, sizeof(uds), "%s/vsock", dir);
		cfg->vsock_uds = uds;
	}
	if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		log_err("pipe: %m");
		status = VM_EXIT_FAILURE;
		goto out_dir;
	}
	s.ready_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s.ready_fd < 0) {
		log_err("eventfd: %m");
		status = VM_EXIT_FAILURE;
		goto out_pipe;
	}
	cfg->signal_fd = sig_pipe[1];
	cfg->ready_fd = s.ready_fd;
	cfg->argv = NULL;
	s.uds = cfg->vsock_uds;
	s.sig_read_fd = sig_pipe[0];
	s.req = (struct exec_request){
	    .flags = EXEC_FLAG_MAIN | (tty ? EXEC_FLAG_PTY : 0),
	    .argc = (uint32_t)argc,
	    .argv = (const char **)argv,
	};
	if (tty) {
		struct winsize ws;
		static const char *term[1];

		if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0) {
			s.req.rows = ws.ws_row;
			s.req.cols = ws.ws_col;
		}
		if (getenv("TERM")) {
			static char term_var[128];

			snprintf(term_var, sizeof(term_var), "TERM=%s", getenv("TERM"));
			term[0] = term_var;
			s.req.envp = term;
			s.req.envc = 1;
		}
	}
	if (vm_create(cfg, &s.vm) < 0) {
		status = VM_EXIT_FAILURE;
		goto out_pipe;
	}
	if (tty && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0) {
		struct termios t = saved;

		cfmakeraw(&t);
		raw = tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0;
	}
	/* The client thread must not take the signals the VM's event loop reads: block them
	 * before it starts, so it inherits the mask (vm_run blocks the same set). */
	vm_signal_set(&mask);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN); /* a closed stdout must not kill clawvm before it reports */
	if (pthread_create(&client, NULL, session_client, &s) != 0) {
		log_err("cannot start the exec client thread");
		vm_destroy(s.vm);
		status = VM_EXIT_FAILURE;
		goto out_tty;
	}
	status = vm_run(s.vm);
	atomic_store(&s.done, 1);
	/* Wakes the client if it still waits for the guest to listen. */
	if (eventfd_write(s.ready_fd, 1) < 0)
		log_debug("eventfd: %m");
	/* Closing the VM's vsock connections ends the client's session if it still runs. */
	vm_destroy(s.vm);
	pthread_join(client, NULL);
	log_debug("the VM is gone");
	if (s.ret == 0)
		status = s.status;
out_tty:
	if (raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
out_pipe:
	if (s.ready_fd >= 0)
		close(s.ready_fd);
	close(sig_pipe[0]);
	close(sig_pipe[1]);
out_dir:
	if (own_dir)
		rmdir(dir);
	return status;
}

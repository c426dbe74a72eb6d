/* The host end of the exec channel (api/exec.md): runs one command in the guest over a
 * connected stream and relays its stdio, like `docker exec`. */
#ifndef CLAWVM_EXEC_CLIENT_H
#define CLAWVM_EXEC_CLIENT_H

#include "api/exec_proto.h"

/* Connects to the VMM's hybrid-vsock Unix socket and asks for guest port `port`
 * (`CONNECT <port>\n`, answered by `OK <hostport>\n`). Returns the connected fd, -EPROTO
 * when the answer is not OK, or another negative errno. */
int exec_client_connect(const char *vsock_uds_path, unsigned int port)
    __attribute__((warn_unused_result));

/* Sends req on fd (made non-blocking here), then relays until the command's EXIT: in_fd's
 * bytes as stdin (STDIN_EOF at its end; in_fd -1 means no input at all), STDOUT to out_fd,
 * STDERR to err_fd (-1: discarded; once a write fails with EPIPE the rest is discarded too,
 * so the status still arrives; the caller should ignore SIGPIPE for that). The
 * shell-style status goes to *status. Returns 0; -EPROTO when the guest sent ERROR (its
 * message is written to err_fd) or broke the protocol; -ECONNRESET when it closed without
 * EXIT; another negative errno on a local failure. */
int exec_client_run(int fd, const struct exec_request *req, int in_fd, int out_fd, int err_fd,
		    int *status) __attribute__((warn_unused_result));

/* The same, also forwarding signals: sig_fd is a signalfd (or -1). SIGWINCH becomes a
 * WINSIZE frame with the window size of in_fd (a terminal), every other signal a SIGNAL
 * frame for the command's process group. */
int exec_client_run_signals(int fd, const struct exec_request *req, int in_fd, int out_fd,
			    int err_fd, int sig_fd, int *status)
    __attribute__((warn_unused_result));

/* What exec_client_run_opts does besides relaying. */
typedef void exec_signal_fn(int signo, void *opaque);
struct exec_client_opts {
	int sig_fd;		   /* a signalfd whose signals are passed on, or -1 */
	exec_signal_fn *forwarded; /* called after each SIGNAL frame queued, or NULL */
	void *opaque;		   /* for `forwarded` */
	int abort_fd;		   /* readable: give up at once (-ECANCELED), or -1 */
	/* Or -1: a stream of struct signalfd_siginfo records (written by the control API's
	 * thread) passed on like sig_fd's, but without `forwarded`. */
	int more_sig_fd;
};

/* exec_client_run_signals with those options. Signals are passed on also while the output
 * waits for a full out_fd or err_fd. `req` NULL: the REQUEST was sent already (the control
 * API's `exec` with attach), the relay starts at once. */
int exec_client_run_opts(int fd, const struct exec_request *req, int in_fd, int out_fd, int err_fd,
			 const struct exec_client_opts *opts, int *status)
    __attribute__((warn_unused_result));

#endif

/* The control API's server (api/control.md): a thread with its own event loop that serves
 * one sandbox's Unix socket. It keeps the sandbox's state (configured, running, paused,
 * stopped), applies pre-boot methods to its sandbox_config through the same setters as
 * `clawvm run`'s flags, starts the VM (`clawvm vmm`) or is told of it (`clawvm run`), runs
 * execs over their own connections to guest-init and relays their frames, and sends events
 * to the connections that subscribed.
 *
 * Limits (every one a client or the guest could otherwise grow without bound):
 * SERVER_MAX_CONNS connections (the next gets a code-5 error line and is closed), a request
 * line of CONTROL_LINE_MAX bytes, SERVER_OUT_MAX bytes of replies and events waiting for a
 * client (past it the client is dropped), SERVER_MAX_EXECS execs at once, and per wake-up a
 * budget of SERVER_LINES_PER_WAKE requests and SERVER_BYTES_PER_WAKE bytes per
 * connection. A connection's requests wait, unread, while SERVER_OUT_PAUSE bytes of its
 * replies do: a client that sends faster than it reads is slowed, and dropped only if it
 * reads nothing for SERVER_STUCK_MS while replies wait (an attached exec's client is
 * never: its output waits, and so does the command). */
#ifndef CLAWVM_SERVER_H
#define CLAWVM_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/config.h"

#define SERVER_MAX_CONNS      256
#define SERVER_OUT_MAX	      (1024 * 1024)
#define SERVER_OUT_PAUSE      (256 * 1024)
#define SERVER_STUCK_MS	      10000
#define SERVER_MAX_EXECS      64
#define SERVER_LINES_PER_WAKE 64
#define SERVER_BYTES_PER_WAKE (256 * 1024)
/* The default grace of `stop` (and of a SIGTERM to `clawvm vmm`). */
#define SERVER_STOP_TIMEOUT_MS	10000
#define SERVER_STOP_TIMEOUT_MAX 3600000

struct server;
struct vm;

/* Who drives the VM. */
enum server_mode {
	SERVER_VMM, /* `clawvm vmm`: configured over the API, started by `start` */
	SERVER_RUN, /* `clawvm run`: configured by flags, already started, its main command
		       run by the session (exec id 1) */
};

/* Binds the socket at `sock_path` (mode 0600) and makes the server; the thread does not run
 * yet. `cfg` belongs to the server from here on (it changes it in state configured).
 * NULL after writing why into err. */
struct server *server_create(enum server_mode mode, struct sandbox_config *cfg,
			     const char *sock_path, struct config_err *err);
/* The fds the server holds (its socket, loop, eventfds, its clients' connections): the
 * jail keeps them open. Returns how many were written (at most SERVER_FDS). */
#define SERVER_FDS (5 + SERVER_MAX_CONNS)
unsigned server_fds(const struct server *s, int fds[SERVER_FDS]);
/* Starts the server's thread. */
__attribute__((warn_unused_result)) int server_start(struct server *s);

/* SERVER_VMM, on the main thread: waits until `start` is asked (true: the API's thread has
 * stopped, so that the caller, alone in the process, may jail it and build the VM; then
 * server_resume) or the sandbox was stopped before it started (false, and *status is the
 * exit status: 128 + the signal). */
bool server_wait_start(struct server *s, int *status);
/* After server_wait_start: `vm` is the VM built for `start` (to be run by vm_run on this
 * thread), or NULL if it could not be (log_last_error() says why, and `start` is answered
 * with it). The API's thread goes on. */
__attribute__((warn_unused_result)) int server_resume(struct server *s, struct vm *vm);

/* SERVER_RUN: the session's VM runs (state running); `main_sig_fd` is the write end of a
 * stream of struct signalfd_siginfo records that the session passes on to its command
 * (`signal` and `stop` for the main command use it). */
void server_run_started(struct server *s, struct vm *vm, int main_sig_fd);
/* Guest-init listens (SERVER_RUN: the session saw it; in SERVER_VMM the server sees it
 * itself): the `ready` event. */
void server_guest_ready(struct server *s);
/* SERVER_RUN: the main command (exec 1) ended with `status`: the `exec.exit` event. */
void server_main_exited(struct server *s, int status);

/* vm_run returned: the server stops reaching the VM (the caller destroys it next), sends
 * `exit` with the VM's reason and status, and waits up to `linger_ms` for its clients to
 * read it and close; then its thread ends and it is freed, socket removed. Called on the
 * thread that ran the VM; vm may be NULL (never started). */
void server_finish(struct server *s, struct vm *vm, int status, unsigned linger_ms);

#endif

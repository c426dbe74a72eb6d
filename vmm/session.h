/* A `clawvm run` session: one VM, and its command run over guest-init's exec channel, with
 * clawvm's stdin, stdout and stderr relayed and its signals forwarded. */
#ifndef CLAWVM_SESSION_H
#define CLAWVM_SESSION_H

#include <signal.h>
#include <stdbool.h>

#include "vmm/config.h"

struct server;

/* Boots the VM of `cfg` and runs `argv` in it as its main command, with cfg's exec
 * defaults; returns clawvm's exit status (the command's, or 125). With `tty`, the command
 * gets a pseudo-terminal and clawvm's terminal is put in raw mode for the session.
 * `server` (or NULL) is the sandbox's control API, told of the VM, of the guest's
 * readiness and of the command's end, and finished (server_finish) before the VM goes.
 * `notify_fd` (or -1) is written "ready\n" and closed once the command runs. */
int session_run(struct sandbox_config *cfg, char *const *argv, bool tty, struct server *server,
		int notify_fd);

/* The signals a session passes on to its command rather than dies of (SIGINT, SIGTERM,
 * SIGHUP, SIGQUIT; SIGWINCH for a terminal's size). */
void session_signal_set(sigset_t *set);

#endif

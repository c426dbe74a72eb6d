/* A `clawvm run` session: one VM, and its command run over guest-init's exec channel, with
 * clawvm's stdin, stdout and stderr relayed and its signals forwarded. */
#ifndef CLAWVM_SESSION_H
#define CLAWVM_SESSION_H

#include <signal.h>
#include <stdbool.h>

#include "vmm/vm_config.h"

/* Boots the VM of `cfg` and runs `argv` in it as its main command; returns clawvm's exit
 * status (the command's, or 125). With `tty`, the command gets a pseudo-terminal and
 * clawvm's terminal is put in raw mode for the session. */
int session_run(struct vm_config *cfg, char *const *argv, bool tty);

/* The signals a session passes on to its command rather than dies of (SIGINT, SIGTERM,
 * SIGHUP, SIGQUIT; SIGWINCH for a terminal's size). */
void session_signal_set(sigset_t *set);

#endif

/* The pure half of guest-init: the files of NUL-terminated strings the VMM appends to the
 * initramfs (/clawvm/mounts), the exit status to report for a command, and which signals
 * it gets. No mounts, no ttys, no reboot, so the unit tests can call all of it from an
 * ordinary process. */
#ifndef CLAWVM_GUEST_INIT_COMMAND_H
#define CLAWVM_GUEST_INIT_COMMAND_H

#include <stdbool.h>
#include <stddef.h>

#include "api/guest_abi.h"

/* The VMM writes a command line; a megabyte is far more than any agent invocation needs
 * and still small next to the guest's memory. */
#define COMMAND_ARGV_MAX_BYTES (1024 * 1024)

/* The parsed argv file. argv points into buf; both are owned by this struct. */
struct command_argv {
	char *buf;
	size_t len;
	char **argv; /* argc entries, then NULL, as execvp wants */
	size_t argc;
};

/* Checks that buf[0..len) is one or more NUL-terminated strings back to back, the first
 * one not empty, and builds the argv array pointing into buf (which the caller keeps
 * alive). Returns 0, or -ENODATA (empty), -EINVAL (malformed) with a message in err. */
int command_argv_parse(char *buf, size_t len, char ***argv_out, size_t *argc_out, char *err,
		       size_t err_len) __attribute__((warn_unused_result));

/* Reads and parses the argv file at path, refusing files larger than max_bytes (-E2BIG).
 * Returns 0 or a negative errno with a message naming the file in err. On success
 * command_argv_release() frees what it allocated. */
int command_argv_read(const char *path, size_t max_bytes, struct command_argv *out, char *err,
		      size_t err_len) __attribute__((warn_unused_result));

void command_argv_release(struct command_argv *cmd);

/* The status a shell would report for a wait(2) status: the exit code, or 128+N when
 * signal N killed the process. -1 when wstatus says the process has not terminated. */
int command_exit_status(int wstatus);

/* Whether PID 1 passes this signal on to the command instead of keeping it. */
bool command_signal_forwarded(int sig);

/* The status guest-init reports when it cannot start the command at all (no argv file,
 * a mount failed): distinct from 126/127, which mean the command itself could not run. */
#define COMMAND_EXIT_INIT_FAILED CLAWVM_EXIT_INIT_FAILED

#endif

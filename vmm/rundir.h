/* Where running sandboxes are found: one directory per sandbox, named after it, below a
 * base directory only its owner can enter — $CLAWVM_RUNTIME_DIR, else
 * $XDG_RUNTIME_DIR/clawvm, else (as root) /run/clawvm, else /tmp/clawvm-UID. Each holds `pid` (the
 * VMM's pid and its start time, so that a recycled pid is not taken for it) and `api.sock` (the API
 * socket, or a symbolic link to the one `clawvm vmm --api-sock` was given). A directory
 * whose VMM is gone is stale: the next lookup or listing removes it. */
#ifndef CLAWVM_RUNDIR_H
#define CLAWVM_RUNDIR_H

#include <limits.h>
#include <stdbool.h>

#include "vmm/config.h"

/* The egress broker's control socket in BASE/NAME, beside api.sock (vmm/egress.h). */
#define RUNDIR_EGRESS_SOCK "egress.sock"

struct rundir {
	char dir[PATH_MAX];  /* BASE/NAME */
	char sock[PATH_MAX]; /* where the API socket is bound */
};

/* The base directory, made (mode 0700) if missing; refused if another user owns it or
 * others may enter it. */
__attribute__((warn_unused_result)) int rundir_base(char base[PATH_MAX], struct config_err *err);

/* Makes BASE/NAME for this process (`api_sock` NULL: the socket goes inside it; else it is
 * bound there and linked from inside). A live sandbox of that name: refused; a stale one is
 * cleared first. Writes `pid` once the socket exists: see rundir_publish. */
__attribute__((warn_unused_result)) int rundir_create(struct rundir *rd, const char *name,
						      const char *api_sock, struct config_err *err);
/* Writes `pid`: from now on `ps` lists the sandbox. */
__attribute__((warn_unused_result)) int rundir_publish(struct rundir *rd, struct config_err *err);
/* Removes the directory (the socket is the server's to unlink). */
void rundir_remove(struct rundir *rd);

/* The API socket of sandbox `name`, if it runs: 0; -1 with err (no such sandbox, or it is
 * gone: then its directory is removed). */
__attribute__((warn_unused_result)) int rundir_find(const char *name, char sock[PATH_MAX],
						    struct config_err *err);

/* Calls fn for each live sandbox (stale ones are removed), names in order. Returns how many,
 * or -1 with err. */
typedef void rundir_fn(const char *name, const char *sock, void *opaque);
int rundir_list(rundir_fn *fn, void *opaque, struct config_err *err);

/* A name for a sandbox given none: "sb-" and 6 hex digits. */
void rundir_new_name(char name[CONFIG_NAME_MAX + 1]);

#endif

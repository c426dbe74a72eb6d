/* The jail's insides, shared by jail.c (the supervisor and jail_enter) and jail_build.c
 * (what the VMM does to itself in its namespaces). Not for other modules: see jail.h. */
#ifndef CLAWVM_JAIL_INT_H
#define CLAWVM_JAIL_INT_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include "vmm/config.h"

/* What the jail's root holds: host paths bind-mounted at the same path. */
#define JAIL_MAX_BINDS (VM_MAX_SHARES + 8)

struct jail_bind {
	const char *path;
	bool ro;
};

struct jail {
	const struct sandbox_config *cfg;
	char root[PATH_MAX]; /* the mount point of the jail's root, in the sandbox's directory */
	struct jail_bind binds[JAIL_MAX_BINDS];
	unsigned nbinds;
	char dirs[2][PATH_MAX]; /* storage: the console log's and vsock socket's directories */
	int parent_fd; /* the VMM's: read end of a pipe whose write end only the supervisor has */
	bool userns;
	uid_t uid;
	gid_t gid;
};

/* Host `path` bound at its own path in the jail, read-only if `ro` (duplicates skipped). */
void jail_add(struct jail *j, const char *path, bool ro);
/* path's directory, in buf. */
const char *jail_dirname(char buf[PATH_MAX], const char *path);
/* In the VMM, pid 1 of its namespaces: /dev/kvm opened, rlimits, the jail's root, the
 * user, no capability, the binds checked as that user, other fds closed, the environment
 * cleared. 0, or -1 after saying why. */
int jail_build(struct jail *j, struct sandbox_config *cfg, const int *keep, unsigned nkeep);

#endif

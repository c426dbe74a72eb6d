/* The jail: the VMM's own containment, under the KVM boundary (docs/threat-model.md). So
 * that a guest who found a bug in clawvm's device code lands in a process that sees almost
 * nothing of the host and holds no privilege.
 *
 * jail_enter splits clawvm in two. The parent stays outside, as a small supervisor: it
 * keeps the pid that the sandbox's directory names, passes stop signals on, waits, removes
 * what the sandbox left (its directory, its cgroup) and exits with the VMM's status. The
 * child is the VMM, in new mount, pid, ipc, uts and net namespaces (and a user namespace
 * when clawvm is not root), its root a read-only tmpfs holding only what the sandbox names
 * (/dev/kvm, /dev/null, the kernel and initramfs, the root and -v shares, the console log,
 * the vsock socket's directory, a /proc of its own), each bind-mounted at its own path; then
 * with every other fd closed, the environment cleared, a user of its own (as root: the jail
 * user, 65534:65534 unless --jail-user says otherwise; else the caller's own uid), every
 * capability set empty and no_new_privs. The seccomp filters (vmm/seccomp.h) go on per
 * thread later, before the guest runs. */
#ifndef CLAWVM_JAIL_H
#define CLAWVM_JAIL_H

#include <stdbool.h>
#include <sys/types.h>

#include "vmm/config.h"
#include "vmm/rundir.h"

/* The jail user as root, unless --jail-user names one: nobody/nogroup. */
#define JAIL_DEFAULT_UID 65534
#define JAIL_DEFAULT_GID 65534

/* The environment variables the jailed VMM keeps (everything else is cleared); the last is
 * read only by a -Dseccomp_selftest build. */
#define JAIL_KEEP_ENV                                                                              \
	"TERM", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "CLAWVM_SECCOMP_SELFTEST"

/* Jails the VMM of `cfg` (nothing if cfg->no_jail, but a warning). `keep` lists the fds
 * the VMM goes on with besides 0-2 (the API server's, the -d pipe), -1 entries skipped.
 * Returns 0 in the jailed child, 1 in a child whose jail failed (it said why, and must
 * end: it holds nothing of the jail). In the parent it returns only if the jail could not
 * be begun (-1, said why); otherwise the parent supervises and exits with the VMM's
 * status. `detached` (clawvm run -d): the supervisor lets go of stderr at once (the VMM
 * does once its command runs), so that a caller's $(...) does not wait for the sandbox. */
int jail_enter(struct sandbox_config *cfg, struct rundir *rd, const int *keep, unsigned nkeep,
	       bool detached);

/* The most fds jail_close_fds keeps. */
#define JAIL_KEEP_FDS_MAX 32
/* Closes every fd but 0, 1, 2 and the `keep` ones (negative ones ignored): what a process
 * of the sandbox (the jailed VMM, the egress broker) must not inherit. */
void jail_close_fds(const int *keep, unsigned nkeep);

/* What a process of the sandbox gives up for good (the VMM in its jail, the egress
 * broker): with `clear_bounds`, the bounding and ambient capability sets (that takes
 * CAP_SETPCAP, so before the user changes); with `change_user`, uid:gid without
 * supplementary groups; then every capability set empty and no_new_privs. `who` starts
 * the messages. 0, or -1 (said). */
__attribute__((warn_unused_result)) int jail_drop_privileges(uid_t uid, gid_t gid, bool change_user,
							     bool clear_bounds, const char *who);

#endif

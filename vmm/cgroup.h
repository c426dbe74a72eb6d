/* The host limits of one sandbox's VMM: a cgroup v2 with cpu.max, memory.max,
 * memory.swap.max and pids.max from the sandbox's configuration, and the rlimits the VMM
 * runs under.
 *
 * Who calls what, with the jail's fork (a supervisor that stays outside, the VMM child that
 * jails itself):
 *   supervisor, before the fork:  cgroup_limits_build, then cgroup_create
 *   supervisor, after the fork:   cgroup_attach(child pid)  (or clone3 with
 *                                 CLONE_INTO_CGROUP and cgroup.fd instead of fork+attach)
 *   child, before it jails:       rlimits_apply
 *   supervisor, once the child was reaped:  cgroup_remove
 *
 * Where the cgroup goes. cgroup v2 lets only a cgroup without member processes hand
 * controllers to its children (the root excepted: "no internal processes"), and clawvm is
 * itself a member of its own cgroup, so:
 *   - in the root cgroup: `/sys/fs/cgroup/clawvm-NAME`;
 *   - alone in its cgroup (a delegated scope made for it, `systemd-run --user --scope -p
 *     Delegate=yes clawvm run ...`): clawvm moves itself to the leaf `<its cgroup>/supervisor`
 *     (left there: a process cannot remove the cgroup it is in; its scope goes with it) and
 *     makes `<its cgroup>/clawvm-NAME` beside it;
 *   - else, as root: under `/sys/fs/cgroup/clawvm/` (kept, shared by the sandboxes), as
 *     Firecracker's jailer does, rather than moving the caller's other processes;
 *   - else: no cgroup (CGROUP_NONE), and the sandbox runs without these limits.
 */
#ifndef CLAWVM_CGROUP_H
#define CLAWVM_CGROUP_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include "vmm/config.h"

#define CGROUP_MOUNT "/sys/fs/cgroup"

/* memory.max is the guest's RAM plus this much for the VMM itself. Measured: a release VMM
 * holds ~2 MiB besides guest RAM. The cgroup is also charged with what the kernel keeps for
 * it: KVM's memslot maps and page tables (shadow ones under PVM; 8 bytes per 4 KiB page
 * and up, hence RAM/64), the vCPUs' kernel state and thread stacks (1 MiB each), and the
 * page cache of the files the guest reads through virtio-fs (reclaimable: at the limit it
 * is dropped, not fatal). 64 MiB covers the rest with room. A build with AddressSanitizer
 * (an idle one holds 9.5 MiB, measured) keeps up to 256 MiB of freed heap in its
 * quarantine, plus shadow memory (1/8 of the heap) and its allocator's caches: 384 MiB
 * more there. A guest that makes the VMM pin many host inodes (one descriptor per FUSE
 * inode it keeps, up to FD_BUDGET_NOFILE) meets this limit before the descriptor cap. */
#define CGROUP_VMM_MIB	    64
#define CGROUP_VCPU_MIB	    1
#define CGROUP_RAM_FRACTION 64 /* RAM/64 for KVM's own tables */
#if defined(__SANITIZE_ADDRESS__)
#define CGROUP_SANITIZER_MIB 384
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CGROUP_SANITIZER_MIB 384
#endif
#endif
#ifndef CGROUP_SANITIZER_MIB
#define CGROUP_SANITIZER_MIB 0
#endif

/* A `clawvm-*` cgroup with no member, older than this, is a dead sandbox's: cgroup_create
 * removes it (a supervisor killed with SIGKILL cannot remove its own). */
#define CGROUP_SWEEP_AGE_S 5

/* cpu.max's period: 100 ms, the kernel's default; the quota is vCPUs times it. */
#define CGROUP_CPU_PERIOD_US 100000

#define CGROUP_NLIMITS 4

/* One limit file and what to write there. */
struct cgroup_limit {
	const char *file; /* "cpu.max", ... */
	char value[32];
	bool optional; /* a kernel without it (memory.swap.max without swap support) is fine */
};
struct cgroup_limits {
	struct cgroup_limit files[CGROUP_NLIMITS];
};

/* A sandbox's cgroup; fd -1 and path "" when there is none. */
struct cgroup {
	int fd;		     /* the directory, O_RDONLY: for clone3's CLONE_INTO_CGROUP */
	char path[PATH_MAX]; /* /sys/fs/cgroup/.../clawvm-NAME */
};

/* cgroup_create's outcomes besides -1 (an error, err->msg says which). */
enum {
	CGROUP_MADE = 0,
	/* No limits on this host or for this user: err->msg says why, for one warning. The
	 * sandbox runs without the limits. */
	CGROUP_NONE = 1,
};

/* The VMM's allowance above guest RAM, in MiB (see CGROUP_VMM_MIB). */
uint64_t cgroup_allowance_mib(const struct sandbox_config *c);

/* The limit files for c: cpu.max "<vcpus*100000> 100000", memory.max (RAM + allowance, in
 * bytes), memory.swap.max "0", pids.max c->pids. Pure: no file is touched. */
void cgroup_limits_build(const struct sandbox_config *c, struct cgroup_limits *l);

/* The cgroup v2 path in /proc/self/cgroup's text ("0::/path"), into out; -1 if there is
 * none (a cgroup v1 only host). */
__attribute__((warn_unused_result)) int cgroup_self_path(const char *text, char *out, size_t size);

/* Makes the sandbox's cgroup `clawvm-<c->name>` (see above for where), enabling the cpu,
 * memory and pids controllers above it as needed, and writes l into it. CGROUP_MADE with
 * cg filled, CGROUP_NONE (no cgroup v2 with those controllers, or not writable and not
 * root: err->msg is the warning), or -1 (err->msg). A leftover empty cgroup of the same
 * name (a supervisor that died) is replaced; a populated one is an error. Dead sandboxes'
 * cgroups beside it are swept (CGROUP_SWEEP_AGE_S). */
__attribute__((warn_unused_result)) int cgroup_create(struct cgroup *cg,
						      const struct sandbox_config *c,
						      const struct cgroup_limits *l,
						      struct config_err *err);

/* Moves process `pid` (all its threads) into cg; 0 means the caller. 0 or -1 (err->msg). */
__attribute__((warn_unused_result)) int cgroup_attach(const struct cgroup *cg, pid_t pid,
						      struct config_err *err);

/* Kills what is left in cg (cgroup.kill, or SIGKILL to each member on kernels before 5.14),
 * removes it, retrying for up to 2 s while the kernel lets go of exited members, and
 * closes its fd. Nothing to do for a cgroup not made. 0 or -1 (err->msg). */
__attribute__((warn_unused_result)) int cgroup_remove(struct cgroup *cg, struct config_err *err);

/* How many processes the kernel's OOM killer killed in cg for reaching memory.max
 * (memory.events' oom_kill); 0 without a cgroup. */
unsigned long cgroup_oom_kills(const struct cgroup *cg);

/* In the VMM child, before it jails (raising the hard limit needs CAP_SYS_RESOURCE):
 * RLIMIT_NOFILE soft and hard FD_BUDGET_NOFILE (at most fs.nr_open; unprivileged, at most
 * the hard limit it has), RLIMIT_CORE 0 (no core file of a process that holds guest
 * memory). No RLIMIT_NPROC: it counts the user's processes host-wide, pids.max counts the
 * sandbox's. 0 or -1 (err->msg). */
__attribute__((warn_unused_result)) int rlimits_apply(struct config_err *err);

#endif

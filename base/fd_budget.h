/* The host file descriptors that guest activity makes the VMM hold (FUSE inodes and open
 * handles, vsock connections) are counted against one budget per process, kept below
 * RLIMIT_NOFILE with a reserve for the VMM's own descriptors (KVM, vCPUs, eventfds, the
 * event loop, the FUSE servers' transient descriptors, the session). A guest that spends
 * the budget gets errors (ENFILE, a refused connection); the VMM keeps working. */
#ifndef CLAWVM_FD_BUDGET_H
#define CLAWVM_FD_BUDGET_H

#include <stdatomic.h>
#include <stdbool.h>

/* Descriptors the VMM keeps for itself below the open-file limit: its fixed ones (at most
 * about 160 with 32 vCPUs and 11 devices, see docs/threat-model.md) with room to spare. */
#define FD_BUDGET_RESERVE 256
/* Of the budget, descriptors only host clients (clawvm exec, an orchestrator) may take, so
 * that a guest holding all it may never locks the host out of its own sandbox. */
#define FD_BUDGET_HOST 64
/* The open-file limit the VMM wants, soft and hard: a guest walking a large tree holds a
 * host descriptor per FUSE inode it keeps. 1 << 20 is the kernel's default fs.nr_open, the
 * highest a hard limit may be without a sysctl. The jail sets it (cgroup.h's
 * rlimits_apply); vm.c raises the soft limit to it otherwise. */
#define FD_BUDGET_NOFILE (1u << 20)

struct fd_budget {
	atomic_uint used;
	unsigned limit;	       /* `used` never passes it */
	unsigned host_reserve; /* the last this many go to fd_budget_take_host only */
};

/* The budget for this process: the soft RLIMIT_NOFILE (read now, so raise it first) less
 * `reserve`; 0 if the limit is not above the reserve. FD_BUDGET_HOST of it (at most half)
 * are kept for host clients. */
void fd_budget_init(struct fd_budget *b, unsigned reserve);
/* A budget of exactly `limit` descriptors, none kept for host clients (tests). */
void fd_budget_init_limit(struct fd_budget *b, unsigned limit);
/* Takes one descriptor for something the guest holds; false (nothing taken) when all but
 * the host's reserve is spent. */
__attribute__((warn_unused_result)) bool fd_budget_take(struct fd_budget *b);
/* Takes one descriptor for a host client's connection: the host's reserve too. */
__attribute__((warn_unused_result)) bool fd_budget_take_host(struct fd_budget *b);
/* Gives back one taken by fd_budget_take or fd_budget_take_host. */
void fd_budget_give(struct fd_budget *b);
/* Descriptors taken now. */
unsigned fd_budget_used(struct fd_budget *b);

#endif

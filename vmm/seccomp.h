/* Seccomp allowlists, one per kind of thread (libseccomp). A thread that makes a system call
 * its list does not allow gets SIGSYS: one line on stderr names the thread's kind and the
 * call, and the process dies by SIGSYS (status 159 in a shell).
 *
 * Filters stack: a thread inherits the filter of the thread that created it and adds its
 * own, and what it may call is the intersection. So the order is:
 *   1. the API thread (server_thread) installs SECCOMP_API first thing; it is created by
 *      the main thread before any filter exists, and creates no thread itself;
 *   2. the exec client thread of `clawvm run` (session_client) installs SECCOMP_CLIENT
 *      first thing; it too is created before any filter exists;
 *   3. the main thread installs SECCOMP_LOOP in vm_run, after its own set-up and before it
 *      starts the vCPU threads: from then on it is the device loop, and what is left of the
 *      process's teardown (vm_destroy, the sandbox directory, exit) runs under it too;
 *   4. each vCPU thread inherits SECCOMP_LOOP and installs SECCOMP_VCPU before its first
 *      KVM_RUN: so SECCOMP_LOOP allows all SECCOMP_VCPU does (test_seccomp checks it), and
 *      also the thread start-up and the seccomp() call that vCPU threads make;
 *   5. virtio-fs workers are started by the loop (queue notifications reach it only) and
 *      keep SECCOMP_LOOP, which holds the FUSE server's calls.
 * Before vm_run the main thread is unfiltered: it builds the VM (`clawvm run`) or only
 * waits for the API thread to build one (`clawvm vmm`). */
#ifndef CLAWVM_VMM_SECCOMP_H
#define CLAWVM_VMM_SECCOMP_H

#include <stdbool.h>

enum seccomp_kind {
	SECCOMP_VCPU,	/* a vCPU thread: KVM_RUN and the exits it handles */
	SECCOMP_LOOP,	/* the device loop (vm_run's thread) and the virtio-fs workers */
	SECCOMP_API,	/* the control API thread, which also builds the VM for `clawvm vmm` */
	SECCOMP_CLIENT, /* the exec client thread of `clawvm run` (session.c) */
	SECCOMP_KINDS,
};

/* The kind's name in messages: "vCPU", "loop", "API", "exec client"; SECCOMP_KINDS, for a
 * thread that inherited its filter without adding one, names the virtio-fs workers. */
const char *seccomp_kind_name(enum seccomp_kind kind);

/* Installs `kind`'s filter on the calling thread (no other), and the process's SIGSYS
 * handler the first time. 0, or a negative errno with the reason logged. */
__attribute__((warn_unused_result)) int seccomp_install(enum seccomp_kind kind);

/* For tests: entry `i` of `kind`'s list, its system call's number and its reason; 0 past
 * the end. */
unsigned seccomp_entries(enum seccomp_kind kind, unsigned i, int *nr, const char **reason);

#ifdef CLAWVM_SECCOMP_SELFTEST
/* Test builds only (meson -Dseccomp_selftest=true): if CLAWVM_SECCOMP_SELFTEST names
 * `kind` ("vcpu"), make a call no list allows, socket(AF_INET), to show the filter bites. */
void seccomp_selftest(enum seccomp_kind kind);
#else
static inline void seccomp_selftest(enum seccomp_kind kind)
{
	(void)kind;
}
#endif

#endif

/* One vCPU: its KVM fd and kvm_run mapping, its set-up (CPUID, LAPIC, MSRs, boot registers)
 * and its thread, which runs KVM_RUN and dispatches exits. A vCPU knows nothing of the VM
 * around it: what it needs of the machine comes in a struct vcpu_machine that the builder
 * (vm.c) fills. */
#ifndef CLAWVM_VCPU_H
#define CLAWVM_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/iobus.h"
#include "vmm/kernel.h"
#include "vmm/kvm.h"

/* Why a vCPU ended the VM. */
enum vcpu_stop {
	VCPU_STOP_RESET,	/* the guest asked for a reset (a system event) */
	VCPU_STOP_TRIPLE_FAULT, /* the vCPU shut down */
	VCPU_STOP_ERROR,	/* KVM failed */
};

/* Where the vCPU threads of a machine park while it is paused (vcpu_pause_all), shared by
 * them all. Every field is under `lock`. */
struct vcpu_park {
	pthread_mutex_t lock;
	pthread_cond_t changed; /* any field below changed */
	atomic_bool paused;	/* threads park before their next KVM_RUN (read unlocked too) */
	bool ended;		/* the VM ends: nobody parks, parked threads leave */
	unsigned parked;	/* threads parked now */
	unsigned live;		/* threads started and not yet returned */
};

/* What the vCPUs need of their machine. Every vCPU of a VM shares one; it outlives them. */
struct vcpu_machine {
	const struct kvm *kvm;		   /* the VM fd, kvm_run's size, the base CPUID */
	unsigned cpus;			   /* how many vCPUs the VM has in the end (topology) */
	const struct kernel_image *kernel; /* where the boot vCPU starts, and how */
	struct iobus *io;		   /* port I/O exits */
	/* An MMIO exit: true if a device took the access (where none does, reads see zeros
	 * and writes vanish). Called on the vCPU's thread. */
	bool (*mmio)(void *opaque, uint64_t gpa, uint8_t *data, unsigned len, bool is_write);
	/* Ends the VM (thread-safe): the vCPU's thread ends after it. `msg` says why, for
	 * people, or is NULL for a reset. */
	void (*stop)(void *opaque, enum vcpu_stop why, const char *msg);
	void *opaque;		    /* for mmio and stop */
	const atomic_int *stopping; /* set once the VM ends: the threads leave KVM_RUN */
	struct vcpu_park *park;	    /* pausing (vcpu_park_init) */
	bool seccomp;		    /* each thread installs SECCOMP_VCPU first (seccomp.h) */
};

struct vcpu {
	const struct vcpu_machine *m;
	unsigned index;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	int started; /* on the thread that starts and joins it; vcpu_kick_all reads it under
		      * the park lock */
	/* Exits by kind: written by the vCPU's thread only, read by any (relaxed atomics). */
	_Atomic uint64_t io_exits, mmio_exits, hlt_exits, intr_exits, other_exits;
};

__attribute__((warn_unused_result)) int vcpu_create(const struct vcpu_machine *m, struct vcpu *v,
						    unsigned index);
/* Registers for the boot vCPU: the kernel's entry, in the mode it asks for. */
__attribute__((warn_unused_result)) int vcpu_boot_setup(struct vcpu *v);
__attribute__((warn_unused_result)) int vcpu_start(struct vcpu *v);
/* Makes a running vCPU leave KVM_RUN (after `stopping` is set). */
void vcpu_kick(struct vcpu *v);
/* Joins the vCPU's thread (kick it first) and frees the vCPU. */
void vcpu_destroy(struct vcpu *v);
/* The signal used to kick vCPU threads out of KVM_RUN. */
#define VCPU_KICK_SIGNAL SIGRTMIN
void vcpu_install_kick_handler(void);

/* Pausing. The park outlives every vCPU thread of its machine. */
void vcpu_park_init(struct vcpu_park *p);
void vcpu_park_destroy(struct vcpu_park *p);
/* Returns once each of the `n` vCPUs whose thread runs has left KVM_RUN and parked (a
 * vCPU started later parks before its first KVM_RUN): 0; -EINVAL if already paused;
 * -ESRCH if the VM ends (vcpu_park_end) before or meanwhile; -EINTR if vcpu_resume_all
 * came first. Thread-safe. */
__attribute__((warn_unused_result)) int vcpu_pause_all(struct vcpu_park *p, struct vcpu *vcpus,
						       unsigned n);
/* Lets parked threads go on: 0; -EINVAL if not paused; -ESRCH once the VM ends. */
__attribute__((warn_unused_result)) int vcpu_resume_all(struct vcpu_park *p);
bool vcpu_paused(struct vcpu_park *p);
/* The VM ends: pausing is refused from now on and parked threads leave (they see
 * `stopping`, which the caller set before). Then the caller kicks and joins them. */
void vcpu_park_end(struct vcpu_park *p);

#endif

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
};

struct vcpu {
	const struct vcpu_machine *m;
	unsigned index;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	int started;
	uint64_t io_exits, mmio_exits; /* for --verbose: what the guest made the VMM do */
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

#endif

/* The KVM system and VM file descriptors: opening /dev/kvm with clear errors, checking
 * what clawvm needs, creating the VM with its in-kernel interrupt chips, memory slots. */
#ifndef CLAWVM_KVM_H
#define CLAWVM_KVM_H

#include <linux/kvm.h>
#include <stddef.h>

#include "base/guest_mem.h"

struct kvm {
	int dev_fd;
	int vm_fd;
	size_t run_size;	  /* size of each vCPU's kvm_run mapping */
	struct kvm_cpuid2 *cpuid; /* KVM_GET_SUPPORTED_CPUID, the base of every vCPU's */
};

/* Opens `path` (normally /dev/kvm) read-write: its fd, or -1 after saying why in words a
 * new user can act on (no KVM, no permission). */
int kvm_open_device(const char *path);
/* Opens `path` (normally /dev/kvm), or takes `fd` if >= 0, and creates a VM able to run `cpus`
 * vCPUs. */
__attribute__((warn_unused_result)) int kvm_open(struct kvm *k, const char *path, int fd,
						 unsigned cpus);
__attribute__((warn_unused_result)) int kvm_set_memory(struct kvm *k, const struct guest_mem *gm);
/* An edge on a GSI of the in-kernel PIC/IOAPIC. */
void kvm_irq_pulse(struct kvm *k, unsigned gsi);
void kvm_close(struct kvm *k);

#endif

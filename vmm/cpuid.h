/* What the guest sees of the CPU: KVM's supported CPUID, with the topology of this VM set
 * and what a sandbox must not use taken out. Pure: works on a kvm_cpuid2 table. */
#ifndef CLAWVM_CPUID_H
#define CLAWVM_CPUID_H

#include <linux/kvm.h>

/* Adjusts `c` (from KVM_GET_SUPPORTED_CPUID) for vCPU `index` of `count`. */
void cpuid_setup(struct kvm_cpuid2 *c, unsigned index, unsigned count);

#endif

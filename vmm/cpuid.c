/* CPUID for one vCPU. Topology: `count` cores of one thread each in one package, APIC ID =
 * vCPU index. Taken out: VMX and SVM (no nested virtualization inside a sandbox). */
#include "vmm/cpuid.h"

#define LEAF1_ECX_VMX	     (1u << 5)
#define LEAF1_ECX_HYPERVISOR (1u << 31)
#define LEAF1_EDX_HTT	     (1u << 28)
#define EXT1_ECX_SVM	     (1u << 2)
#define EXT1_ECX_CMP_LEGACY  (1u << 1)

/* Bits needed to number `count` cores (the x2APIC ID shift of the core level). */
static unsigned bits_for(unsigned count)
{
	unsigned bits = 0;

	while ((1u << bits) < count)
		bits++;
	return bits;
}

static void topology_leaf(struct kvm_cpuid_entry2 *e, unsigned index, unsigned count)
{
	/* Sub-leaf 0: the thread level; 1: the core level; higher: invalid. */
	switch (e->index) {
	case 0:
		e->eax = 0;
		e->ebx = 1;
		e->ecx = (1u << 8) | 0;
		break;
	case 1:
		e->eax = bits_for(count);
		e->ebx = count;
		e->ecx = (2u << 8) | 1;
		break;
	default:
		e->eax = 0;
		e->ebx = 0;
		e->ecx = e->index & 0xff;
		break;
	}
	e->edx = index;
}

void cpuid_setup(struct kvm_cpuid2 *c, unsigned index, unsigned count)
{
	for (unsigned i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		switch (e->function) {
		case 0x1:
			/* APIC ID, logical processor count, CLFLUSH line size (8 * 8 bytes). */
			e->ebx = (index << 24) | (count << 16) | (8u << 8);
			e->ecx &= ~LEAF1_ECX_VMX;
			e->ecx |= LEAF1_ECX_HYPERVISOR;
			if (count > 1)
				e->edx |= LEAF1_EDX_HTT;
			else
				e->edx &= ~LEAF1_EDX_HTT;
			break;
		case 0x4: {
			/* Deterministic cache parameters: cores per package, and who shares the
			 * cache (L1/L2 private, L3 shared by all). */
			unsigned level = (e->eax >> 5) & 0x7;
			unsigned sharing = level >= 3 ? count : 1;

			if ((e->eax & 0x1f) == 0)
				break; /* no more caches */
			e->eax &= 0x3ff;
			e->eax |= ((count - 1) << 26) | ((sharing - 1) << 14);
			break;
		}
		case 0xb:
		case 0x1f:
			topology_leaf(e, index, count);
			break;
		case 0x80000001:
			e->ecx &= ~EXT1_ECX_SVM;
			if (count > 1)
				e->ecx |= EXT1_ECX_CMP_LEGACY;
			else
				e->ecx &= ~EXT1_ECX_CMP_LEGACY;
			break;
		case 0x80000008:
			/* AMD: number of cores - 1, with the APIC ID size derived from it. */
			e->ecx = (e->ecx & ~0xf0ffu) | (count - 1);
			break;
		case 0x8000001e:
			/* AMD extended APIC ID; one thread per core, core ID = index. */
			e->eax = index;
			e->ebx = index & 0xff;
			e->ecx = 0;
			break;
		default:
			break;
		}
	}
}

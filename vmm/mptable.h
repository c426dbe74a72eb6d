/* The Intel MultiProcessor table, which tells a kernel without ACPI about the CPUs, the
 * I/O APIC and how ISA interrupts are wired. */
#ifndef CLAWVM_MPTABLE_H
#define CLAWVM_MPTABLE_H

#include "base/guest_mem.h"

#define MPTABLE_MAX_CPUS 32
#define MPTABLE_IRQS	 24 /* I/O APIC pins, all wired 1:1 from ISA bus 0 */

/* Writes the table for `cpus` CPUs at the EBDA; -E2BIG if it does not fit there. */
__attribute__((warn_unused_result)) int mptable_write(struct guest_mem *gm, unsigned cpus);

#endif

/* Where things live in guest-physical memory on x86-64. One place, so that the boot code,
 * the e820 map and the tests agree. */
#ifndef CLAWVM_LAYOUT_H
#define CLAWVM_LAYOUT_H

#include "base/guest_mem.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

/* Low memory: the first page is left alone (real-mode IVT, BIOS data area). */
#define LAYOUT_GDT	   0x500ULL
#define LAYOUT_GDT_ENTRIES 4
#define LAYOUT_IDT	   0x520ULL
#define LAYOUT_PVH_INFO	   0x6000ULL
#define LAYOUT_PVH_MODLIST 0x6040ULL
#define LAYOUT_PVH_MEMMAP  0x6080ULL
#define LAYOUT_ZERO_PAGE   0x7000ULL
#define LAYOUT_BOOT_STACK  0x8ff0ULL
#define LAYOUT_PML4	   0x9000ULL
#define LAYOUT_PDPT	   0xa000ULL
#define LAYOUT_PD	   0xb000ULL
#define LAYOUT_CMDLINE	   0x20000ULL
#define LAYOUT_CMDLINE_MAX 2048ULL /* COMMAND_LINE_SIZE of x86 Linux */

/* The extended BIOS data area: the MP table goes here, where Linux looks for it. */
#define LAYOUT_EBDA	0x9fc00ULL
#define LAYOUT_EBDA_END 0xa0000ULL
#define LAYOUT_HIGH_RAM 0x100000ULL /* 1 MiB: RAM again above the legacy hole */

/* bzImage protected-mode code is loaded at 1 MiB; vmlinux at its own physical addresses. */
#define LAYOUT_BZIMAGE_LOAD 0x100000ULL

/* The 32-bit MMIO hole (IOAPIC, LAPIC, virtio-mmio): RAM above 3 GiB moves to 4 GiB. */
#define LAYOUT_MMIO_HOLE     GM_MMIO_HOLE /* where guest RAM splits (base/guest_mem.h) */
#define LAYOUT_MMIO_HOLE_END GM_MMIO_HOLE_END
#define LAYOUT_IOAPIC	     0xfec00000ULL
#define LAYOUT_LAPIC	     0xfee00000ULL

/* Memory limits the CLI accepts, in MiB. The kernel and initramfs need a few tens of MiB;
 * the top is what a 48-bit guest-physical space allows, further bounded by the host. */
#define LAYOUT_MIN_MEM_MIB 64ULL
#define LAYOUT_MAX_MEM_MIB (1ULL << 20)

#endif

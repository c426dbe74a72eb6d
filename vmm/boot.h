/* What the guest kernel finds when it starts: the zero page (boot_params) or the PVH
 * start_info, the e820 map, the command line, the initrd, identity page tables, a flat GDT
 * and the boot vCPU's registers. Pure: writes into guest memory and fills KVM structs, so
 * every layout decision can be tested without KVM. */
#ifndef CLAWVM_BOOT_H
#define CLAWVM_BOOT_H

#include <asm/bootparam.h>
#include <linux/kvm.h>

#include "base/guest_mem.h"
#include "vmm/kernel.h"

/* The PVH boot ABI (xen/include/public/arch-x86/hvm/start_info.h), version 1. */
#define PVH_START_MAGIC 0x336ec578
struct pvh_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};
struct pvh_module {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};
struct pvh_memmap_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};

#define BOOT_E820_MAX 4

struct boot_info {
	uint64_t cmdline_len; /* without its NUL */
	uint64_t initrd_gpa;
	uint64_t initrd_size; /* 0: no initrd */
};

/* The guest's RAM as an e820 map; returns the number of entries. */
unsigned boot_e820(const struct guest_mem *gm, struct boot_e820_entry e[BOOT_E820_MAX]);

/* Where an initrd of `size` bytes goes: page-aligned at the top of low RAM, above the
 * kernel and below what the kernel says it can reach. */
__attribute__((warn_unused_result)) int boot_place_initrd(const struct guest_mem *gm,
							  const struct kernel_image *k,
							  uint64_t size, uint64_t *gpa);

__attribute__((warn_unused_result)) int
boot_write_cmdline(struct guest_mem *gm, const struct kernel_image *k, const char *cmdline);

/* boot_params for the 64-bit entry, or start_info for PVH (k->has_pvh decides). */
__attribute__((warn_unused_result)) int
boot_write_info(struct guest_mem *gm, const struct kernel_image *k, const struct boot_info *bi);

/* Identity-maps the first 1 GiB with 2 MiB pages and writes the GDT. */
__attribute__((warn_unused_result)) int boot_write_tables(struct guest_mem *gm);

/* Boot vCPU state: 32-bit flat protected mode for PVH, else 64-bit long mode. */
void boot_sregs(struct kvm_sregs *s, bool pvh);
void boot_regs(struct kvm_regs *r, const struct kernel_image *k);

/* A GDT entry as KVM wants it in kvm_sregs. */
struct kvm_segment boot_gdt_to_segment(uint64_t entry, uint16_t selector);

#endif

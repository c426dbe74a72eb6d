/* Linux direct boot: the structures a kernel expects from its loader, laid out as
 * vmm/layout.h says. */
#include <errno.h>
#include <string.h>

#include "base/log.h"
#include "vmm/boot.h"
#include "vmm/layout.h"

#define E820_RAM  1
#define PAGE_SIZE 4096ULL

/* Flat segments: null, 64-bit code, 32-bit code, data. The selectors are the indices *8. */
enum { GDT_NULL, GDT_CODE64, GDT_CODE32, GDT_DATA };
static const uint64_t boot_gdt[LAYOUT_GDT_ENTRIES] = {
    [GDT_NULL] = 0,
    [GDT_CODE64] = 0x00af9b000000ffffULL, /* L=1, present, DPL 0, exec/read, 4 GiB */
    [GDT_CODE32] = 0x00cf9b000000ffffULL, /* D=1, present, DPL 0, exec/read, 4 GiB */
    [GDT_DATA] = 0x00cf93000000ffffULL,	  /* D=1, present, DPL 0, read/write, 4 GiB */
};

/* x86 control bits used to enter the kernel. */
#define X86_CR0_PE   (1ULL << 0)
#define X86_CR0_ET   (1ULL << 4)
#define X86_CR0_PG   (1ULL << 31)
#define X86_CR4_PAE  (1ULL << 5)
#define X86_EFER_LME (1ULL << 8)
#define X86_EFER_LMA (1ULL << 10)

unsigned boot_e820(const struct guest_mem *gm, struct boot_e820_entry e[BOOT_E820_MAX])
{
	unsigned n = 0;

	e[n++] = (struct boot_e820_entry){.addr = 0, .size = LAYOUT_EBDA, .type = E820_RAM};
	if (gm_low_end(gm) > LAYOUT_HIGH_RAM)
		e[n++] = (struct boot_e820_entry){.addr = LAYOUT_HIGH_RAM,
						  .size = gm_low_end(gm) - LAYOUT_HIGH_RAM,
						  .type = E820_RAM};
	if (gm->nr_regions > 1)
		e[n++] = (struct boot_e820_entry){
		    .addr = gm->regions[1].gpa, .size = gm->regions[1].size, .type = E820_RAM};
	return n;
}

int boot_place_initrd(const struct guest_mem *gm, const struct kernel_image *k, uint64_t size,
		      uint64_t *gpa)
{
	uint64_t top = gm_low_end(gm), addr;

	/* bzImage says how high it can reach; a vmlinux is entered with 64-bit paging and
	 * reads the initrd through its own direct map, and low RAM ends below 4 GiB anyway. */
	if (k->kind == KERNEL_BZIMAGE && (uint64_t)k->hdr.initrd_addr_max + 1 < top)
		top = (uint64_t)k->hdr.initrd_addr_max + 1;
	if (size > top) {
		log_err("initrd: %llu MiB do not fit in guest memory",
			(unsigned long long)(size >> 20));
		return -ENOMEM;
	}
	addr = (top - size) & ~(PAGE_SIZE - 1);
	if (addr < k->end) {
		log_err("initrd: %llu MiB do not fit in guest memory beside the kernel; give the "
			"guest more memory",
			(unsigned long long)(size >> 20) + 1);
		return -ENOMEM;
	}
	*gpa = addr;
	return 0;
}

int boot_write_cmdline(struct guest_mem *gm, const struct kernel_image *k, const char *cmdline)
{
	uint64_t max = LAYOUT_CMDLINE_MAX;
	size_t len = strlen(cmdline);
	char *dst;

	/* cmdline_size is the longest line the kernel takes, its NUL not counted. */
	if (k->kind == KERNEL_BZIMAGE && k->hdr.cmdline_size &&
	    (uint64_t)k->hdr.cmdline_size + 1 < max)
		max = (uint64_t)k->hdr.cmdline_size + 1;
	if (len + 1 > max) {
		log_err("kernel command line is %zu bytes; the kernel takes at most %llu", len,
			(unsigned long long)max - 1);
		return -E2BIG;
	}
	dst = gm_ptr(gm, LAYOUT_CMDLINE, len + 1);
	if (!dst)
		return -ENOMEM;
	memcpy(dst, cmdline, len + 1);
	return 0;
}

static int boot_write_zero_page(struct guest_mem *gm, const struct kernel_image *k,
				const struct boot_info *bi)
{
	struct boot_params *bp = gm_ptr(gm, LAYOUT_ZERO_PAGE, sizeof(*bp));

	if (!bp)
		return -ENOMEM;
	memset(bp, 0, sizeof(*bp));
	if (k->kind == KERNEL_BZIMAGE)
		bp->hdr = k->hdr;
	bp->hdr.type_of_loader = 0xff; /* "undefined" loader */
	bp->hdr.boot_flag = 0xaa55;
	bp->hdr.header = 0x53726448;
	bp->hdr.loadflags |= LOADED_HIGH;
	bp->hdr.cmd_line_ptr = (uint32_t)LAYOUT_CMDLINE;
	bp->hdr.cmdline_size = (uint32_t)bi->cmdline_len;
	if (k->kind == KERNEL_ELF)
		bp->hdr.kernel_alignment = 0x1000000;
	if (bi->initrd_size) {
		bp->hdr.ramdisk_image = (uint32_t)bi->initrd_gpa;
		bp->hdr.ramdisk_size = (uint32_t)bi->initrd_size;
		bp->ext_ramdisk_image = (uint32_t)(bi->initrd_gpa >> 32);
		bp->ext_ramdisk_size = (uint32_t)(bi->initrd_size >> 32);
	}
	bp->e820_entries = (uint8_t)boot_e820(gm, bp->e820_table);
	return 0;
}

static int boot_write_pvh(struct guest_mem *gm, const struct boot_info *bi)
{
	struct pvh_start_info *si = gm_ptr(gm, LAYOUT_PVH_INFO, sizeof(*si));
	struct pvh_module *mod = gm_ptr(gm, LAYOUT_PVH_MODLIST, sizeof(*mod));
	struct pvh_memmap_entry *mm =
	    gm_ptr(gm, LAYOUT_PVH_MEMMAP, BOOT_E820_MAX * sizeof(struct pvh_memmap_entry));
	struct boot_e820_entry e820[BOOT_E820_MAX];
	unsigned n;

	if (!si || !mod || !mm)
		return -ENOMEM;
	n = boot_e820(gm, e820);
	for (unsigned i = 0; i < n; i++)
		mm[i] = (struct pvh_memmap_entry){
		    .addr = e820[i].addr, .size = e820[i].size, .type = e820[i].type};
	*si = (struct pvh_start_info){
	    .magic = PVH_START_MAGIC,
	    .version = 1,
	    .cmdline_paddr = LAYOUT_CMDLINE,
	    .memmap_paddr = LAYOUT_PVH_MEMMAP,
	    .memmap_entries = n,
	};
	if (bi->initrd_size) {
		*mod = (struct pvh_module){.paddr = bi->initrd_gpa, .size = bi->initrd_size};
		si->nr_modules = 1;
		si->modlist_paddr = LAYOUT_PVH_MODLIST;
	}
	return 0;
}

int boot_write_info(struct guest_mem *gm, const struct kernel_image *k, const struct boot_info *bi)
{
	return k->has_pvh ? boot_write_pvh(gm, bi) : boot_write_zero_page(gm, k, bi);
}

int boot_write_tables(struct guest_mem *gm)
{
	uint64_t *pml4 = gm_ptr(gm, LAYOUT_PML4, PAGE_SIZE);
	uint64_t *pdpt = gm_ptr(gm, LAYOUT_PDPT, PAGE_SIZE);
	uint64_t *pd = gm_ptr(gm, LAYOUT_PD, PAGE_SIZE);
	uint64_t *gdt = gm_ptr(gm, LAYOUT_GDT, sizeof(boot_gdt));
	uint64_t *idt = gm_ptr(gm, LAYOUT_IDT, sizeof(uint64_t));

	if (!pml4 || !pdpt || !pd || !gdt || !idt)
		return -ENOMEM;
	memset(pml4, 0, PAGE_SIZE);
	memset(pdpt, 0, PAGE_SIZE);
	pml4[0] = LAYOUT_PDPT | 0x3; /* present, writable */
	pdpt[0] = LAYOUT_PD | 0x3;
	for (uint64_t i = 0; i < 512; i++)
		pd[i] = (i << 21) | 0x83; /* present, writable, 2 MiB page */
	memcpy(gdt, boot_gdt, sizeof(boot_gdt));
	*idt = 0;
	return 0;
}

struct kvm_segment boot_gdt_to_segment(uint64_t entry, uint16_t selector)
{
	uint32_t limit = (uint32_t)((entry & 0xffff) | ((entry >> 32) & 0xf0000));
	bool granular = (entry >> 55) & 1;

	return (struct kvm_segment){
	    .base = ((entry >> 16) & 0xffffff) | (((entry >> 56) & 0xff) << 24),
	    .limit = granular ? (limit << 12) | 0xfff : limit,
	    .selector = selector,
	    .type = (entry >> 40) & 0xf,
	    .present = (entry >> 47) & 1,
	    .dpl = (entry >> 45) & 3,
	    .db = (entry >> 54) & 1,
	    .s = (entry >> 44) & 1,
	    .l = (entry >> 53) & 1,
	    .g = granular,
	    .avl = (entry >> 52) & 1,
	    .unusable = !((entry >> 47) & 1),
	};
}

void boot_sregs(struct kvm_sregs *s, bool pvh)
{
	unsigned code = pvh ? GDT_CODE32 : GDT_CODE64;
	struct kvm_segment data = boot_gdt_to_segment(boot_gdt[GDT_DATA], GDT_DATA * 8);

	s->gdt.base = LAYOUT_GDT;
	s->gdt.limit = sizeof(boot_gdt) - 1;
	s->idt.base = LAYOUT_IDT;
	s->idt.limit = sizeof(uint64_t) - 1;
	s->cs = boot_gdt_to_segment(boot_gdt[code], code * 8);
	s->ds = s->es = s->fs = s->gs = s->ss = data;
	/* A TSS is needed for the segment state to be valid in VMX; Linux loads its own. */
	s->tr =
	    (struct kvm_segment){.limit = 0x67, .selector = 0, .type = 11, .present = 1, .s = 0};
	if (pvh) {
		/* PVH: 32-bit protected mode, paging off, as the Xen PVH ABI says. */
		s->cr0 = X86_CR0_PE | X86_CR0_ET;
		s->cr3 = 0;
		s->cr4 = 0;
		s->efer = 0;
	} else {
		s->cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_PG;
		s->cr3 = LAYOUT_PML4;
		s->cr4 = X86_CR4_PAE;
		s->efer = X86_EFER_LME | X86_EFER_LMA;
	}
}

void boot_regs(struct kvm_regs *r, const struct kernel_image *k)
{
	memset(r, 0, sizeof(*r));
	r->rflags = 0x2; /* bit 1 is reserved and always set */
	if (k->has_pvh) {
		r->rip = k->pvh_entry;
		r->rbx = LAYOUT_PVH_INFO;
	} else {
		r->rip = k->entry64;
		r->rsi = LAYOUT_ZERO_PAGE;
		r->rsp = r->rbp = LAYOUT_BOOT_STACK;
	}
}

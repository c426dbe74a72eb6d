/* What the kernel finds at boot: e820 map, zero page, PVH start_info, initrd placement,
 * command line, page tables, GDT and the boot vCPU's registers, read back from fake guest
 * RAM and checked field by field. */
#include "unit.h"

#include <errno.h>

#include "vmm/boot.h"

#define E820_RAM	 1
#define FILL		 0xa5
#define HDRS_MAGIC	 0x53726448 /* "HdrS" */
#define INITRD_GPA	 0x3c00000ULL
#define INITRD_SIZE	 0x123456ULL
#define CR0_PE		 (1ULL << 0)
#define CR0_PG		 (1ULL << 31)
#define CR4_PAE		 (1ULL << 5)
#define EFER_LME	 (1ULL << 8)
#define EFER_LMA	 (1ULL << 10)
#define GDT_CODE64_ENTRY 0x00af9b000000ffffULL
#define GDT_CODE32_ENTRY 0x00cf9b000000ffffULL
#define GDT_DATA_ENTRY	 0x00cf93000000ffffULL
#define SEG_TYPE_CODE_XR 0xb /* execute/read, accessed */
#define SEG_TYPE_DATA_RW 0x3 /* read/write, accessed */
#define BZ_CMDLINE_SIZE	 255
#define BZ_INITRD_MAX	 0x1ffffffULL /* 32 MiB - 1 */
#define BZ_KERNEL_ALIGN	 0x200000
#define BZ_VERSION	 0x020f

static int ram_setup(void **state)
{
	return fake_ram_fixture(state, TEST_RAM_SIZE, FILL);
}

static int ram_teardown(void **state)
{
	return fake_ram_fixture_free(state);
}

static struct kernel_image elf_kernel(void)
{
	return (struct kernel_image){
	    .kind = KERNEL_ELF, .entry64 = 0x1000000, .start = 0x1000000, .end = 0x2000000};
}

static struct kernel_image pvh_kernel(void)
{
	struct kernel_image k = elf_kernel();

	k.has_pvh = true;
	k.pvh_entry = 0x1000400;
	return k;
}

static struct kernel_image bz_kernel(void)
{
	struct kernel_image k = {.kind = KERNEL_BZIMAGE,
				 .entry64 = 0x100200,
				 .start = 0x100000,
				 .end = 0x100000 + 0x800000};

	k.hdr.setup_sects = 27;
	k.hdr.version = BZ_VERSION;
	k.hdr.initrd_addr_max = (uint32_t)BZ_INITRD_MAX;
	k.hdr.kernel_alignment = BZ_KERNEL_ALIGN;
	k.hdr.cmdline_size = BZ_CMDLINE_SIZE;
	k.hdr.xloadflags = XLF_KERNEL_64;
	k.hdr.init_size = 0x800000;
	return k;
}

static void check_e820(const struct boot_e820_entry *e, uint64_t addr, uint64_t size)
{
	assert_int_equal(e->addr, addr);
	assert_int_equal(e->size, size);
	assert_int_equal(e->type, E820_RAM);
}

/* e820 */

static void e820_small_ram(void **state)
{
	struct guest_mem *gm = *state;
	struct boot_e820_entry e[BOOT_E820_MAX];

	assert_int_equal(boot_e820(gm, e), 2);
	/* Below 640 KiB up to the EBDA (where the MP table goes), then from 1 MiB. */
	check_e820(&e[0], 0, 0x9fc00);
	check_e820(&e[1], 0x100000, TEST_RAM_SIZE - 0x100000);
}

static void e820_large_ram(void **state)
{
	struct boot_e820_entry e[BOOT_E820_MAX];
	struct guest_mem gm;

	(void)state;
	sparse_ram_init(&gm, 5 * GiB);
	assert_int_equal(boot_e820(&gm, e), 3);
	check_e820(&e[0], 0, 0x9fc00);
	check_e820(&e[1], 0x100000, 3 * GiB - 0x100000);
	check_e820(&e[2], 4 * GiB, 2 * GiB);
	sparse_ram_free(&gm);
}

/* Zero page */

static void check_zero_page_e820(const struct boot_params *bp, unsigned n)
{
	static const struct boot_e820_entry zero;

	assert_int_equal(bp->e820_entries, n);
	check_e820(&bp->e820_table[0], 0, 0x9fc00);
	for (unsigned i = n; i < E820_MAX_ENTRIES_ZEROPAGE; i++)
		assert_memory_equal(&bp->e820_table[i], &zero, sizeof(zero));
}

static void zero_page_for_bzimage(void **state)
{
	struct guest_mem *gm = *state;
	struct kernel_image k = bz_kernel();
	struct boot_info bi = {
	    .cmdline_len = 42, .initrd_gpa = INITRD_GPA, .initrd_size = INITRD_SIZE};
	struct boot_params *bp = gm_ptr(gm, LAYOUT_ZERO_PAGE, sizeof(*bp));

	assert_int_equal(boot_write_info(gm, &k, &bi), 0);
	assert_int_equal(bp->hdr.boot_flag, 0xaa55);
	assert_memory_equal(&bp->hdr.header, "HdrS", 4);
	assert_int_equal(bp->hdr.type_of_loader, 0xff);
	assert_true(bp->hdr.loadflags & LOADED_HIGH);
	assert_int_equal(bp->hdr.cmd_line_ptr, LAYOUT_CMDLINE);
	assert_int_equal(bp->ext_cmd_line_ptr, 0);
	assert_int_equal(bp->hdr.ramdisk_image, INITRD_GPA);
	assert_int_equal(bp->hdr.ramdisk_size, INITRD_SIZE);
	assert_int_equal(bp->ext_ramdisk_image, 0);
	assert_int_equal(bp->ext_ramdisk_size, 0);
	/* The kernel's own setup header is passed on. */
	assert_int_equal(bp->hdr.version, BZ_VERSION);
	assert_int_equal(bp->hdr.setup_sects, 27);
	assert_int_equal(bp->hdr.kernel_alignment, BZ_KERNEL_ALIGN);
	assert_int_equal(bp->hdr.xloadflags, XLF_KERNEL_64);
	assert_int_equal(bp->hdr.initrd_addr_max, BZ_INITRD_MAX);
	/* Everything else is zero, not what was in guest RAM before. */
	assert_true(all_bytes(&bp->screen_info, sizeof(bp->screen_info), 0));
	assert_int_equal(bp->hdr.setup_data, 0);
	check_zero_page_e820(bp, 2);
	check_e820(&bp->e820_table[1], 0x100000, TEST_RAM_SIZE - 0x100000);
	/* Nothing written past the zero page. */
	assert_int_equal(*(uint8_t *)gm_ptr(gm, LAYOUT_ZERO_PAGE + sizeof(*bp), 1), FILL);
	assert_int_equal(*(uint8_t *)gm_ptr(gm, LAYOUT_ZERO_PAGE - 1, 1), FILL);
}

static void zero_page_for_elf(void **state)
{
	struct guest_mem *gm = *state;
	struct kernel_image k = elf_kernel();
	struct boot_info bi = {.cmdline_len = 7};
	struct boot_params *bp = gm_ptr(gm, LAYOUT_ZERO_PAGE, sizeof(*bp));

	assert_int_equal(boot_write_info(gm, &k, &bi), 0);
	assert_int_equal(bp->hdr.boot_flag, 0xaa55);
	assert_int_equal(bp->hdr.header, HDRS_MAGIC);
	assert_int_equal(bp->hdr.type_of_loader, 0xff);
	assert_int_equal(bp->hdr.cmd_line_ptr, LAYOUT_CMDLINE);
	assert_int_equal(bp->hdr.version, 0);
	assert_int_equal(bp->hdr.kernel_alignment, 0x1000000);
	/* No initrd: none announced. */
	assert_int_equal(bp->hdr.ramdisk_image, 0);
	assert_int_equal(bp->hdr.ramdisk_size, 0);
	check_zero_page_e820(bp, 2);
	check_e820(&bp->e820_table[1], 0x100000, TEST_RAM_SIZE - 0x100000);
	/* Not a PVH boot: start_info left alone. */
	assert_true(all_bytes(gm_ptr(gm, LAYOUT_PVH_INFO, 64), 64, FILL));
}

static void zero_page_large_ram_and_high_initrd(void **state)
{
	struct kernel_image k = elf_kernel();
	struct boot_info bi = {.initrd_gpa = 0x123456000ULL, .initrd_size = 0x100000000ULL + 5};
	struct boot_params *bp;
	struct guest_mem gm;

	(void)state;
	sparse_ram_init(&gm, 5 * GiB);
	bp = gm_ptr(&gm, LAYOUT_ZERO_PAGE, sizeof(*bp));
	assert_int_equal(boot_write_info(&gm, &k, &bi), 0);
	/* 64-bit values are split into the low and ext_ halves. */
	assert_int_equal(bp->hdr.ramdisk_image, 0x23456000);
	assert_int_equal(bp->ext_ramdisk_image, 1);
	assert_int_equal(bp->hdr.ramdisk_size, 5);
	assert_int_equal(bp->ext_ramdisk_size, 1);
	check_zero_page_e820(bp, 3);
	check_e820(&bp->e820_table[1], 0x100000, 3 * GiB - 0x100000);
	check_e820(&bp->e820_table[2], 4 * GiB, 2 * GiB);
	sparse_ram_free(&gm);
}

/* PVH start_info */

static void pvh_start_info_with_initrd(void **state)
{
	struct guest_mem *gm = *state;
	struct kernel_image k = pvh_kernel();
	struct boot_info bi = {
	    .cmdline_len = 42, .initrd_gpa = INITRD_GPA, .initrd_size = INITRD_SIZE};
	struct pvh_start_info *si = gm_ptr(gm, LAYOUT_PVH_INFO, sizeof(*si));
	struct pvh_memmap_entry *mm;
	struct pvh_module *mod;

	assert_int_equal(boot_write_info(gm, &k, &bi), 0);
	assert_int_equal(si->magic, 0x336ec578);
	assert_int_equal(si->version, 1);
	assert_int_equal(si->flags, 0);
	assert_int_equal(si->cmdline_paddr, LAYOUT_CMDLINE);
	assert_int_equal(si->rsdp_paddr, 0);
	assert_int_equal(si->reserved, 0);
	assert_int_equal(si->nr_modules, 1);
	mod = gm_ptr(gm, si->modlist_paddr, sizeof(*mod));
	assert_non_null(mod);
	assert_int_equal(mod->paddr, INITRD_GPA);
	assert_int_equal(mod->size, INITRD_SIZE);
	assert_int_equal(mod->cmdline_paddr, 0);
	assert_int_equal(mod->reserved, 0);
	assert_int_equal(si->memmap_entries, 2);
	mm = gm_ptr(gm, si->memmap_paddr, 2 * sizeof(*mm));
	assert_non_null(mm);
	assert_int_equal(mm[0].addr, 0);
	assert_int_equal(mm[0].size, 0x9fc00);
	assert_int_equal(mm[0].type, E820_RAM);
	assert_int_equal(mm[0].reserved, 0);
	assert_int_equal(mm[1].addr, 0x100000);
	assert_int_equal(mm[1].size, TEST_RAM_SIZE - 0x100000);
	assert_int_equal(mm[1].type, E820_RAM);
	/* A PVH kernel gets no zero page. */
	assert_true(all_bytes(gm_ptr(gm, LAYOUT_ZERO_PAGE, 4096), 4096, FILL));
}

static void pvh_start_info_without_initrd(void **state)
{
	struct guest_mem *gm = *state;
	struct kernel_image k = pvh_kernel();
	struct boot_info bi = {.cmdline_len = 3};
	struct pvh_start_info *si = gm_ptr(gm, LAYOUT_PVH_INFO, sizeof(*si));

	assert_int_equal(boot_write_info(gm, &k, &bi), 0);
	assert_int_equal(si->magic, PVH_START_MAGIC);
	assert_int_equal(si->nr_modules, 0);
	assert_int_equal(si->modlist_paddr, 0);
	assert_int_equal(si->memmap_entries, 2);
}

static void pvh_memmap_large_ram(void **state)
{
	struct kernel_image k = pvh_kernel();
	struct boot_info bi = {0};
	struct pvh_start_info *si;
	struct pvh_memmap_entry *mm;
	struct guest_mem gm;

	(void)state;
	sparse_ram_init(&gm, 5 * GiB);
	assert_int_equal(boot_write_info(&gm, &k, &bi), 0);
	si = gm_ptr(&gm, LAYOUT_PVH_INFO, sizeof(*si));
	assert_int_equal(si->memmap_entries, 3);
	mm = gm_ptr(&gm, si->memmap_paddr, 3 * sizeof(*mm));
	assert_int_equal(mm[1].size, 3 * GiB - 0x100000);
	assert_int_equal(mm[2].addr, 4 * GiB);
	assert_int_equal(mm[2].size, 2 * GiB);
	assert_int_equal(mm[2].type, E820_RAM);
	sparse_ram_free(&gm);
}

/* The PVH structures as xen/include/public/arch-x86/hvm/start_info.h lays them out. */
static void pvh_abi_layout(void **state)
{
	(void)state;
	assert_int_equal(sizeof(struct pvh_start_info), 56);
	assert_int_equal(offsetof(struct pvh_start_info, nr_modules), 12);
	assert_int_equal(offsetof(struct pvh_start_info, modlist_paddr), 16);
	assert_int_equal(offsetof(struct pvh_start_info, cmdline_paddr), 24);
	assert_int_equal(offsetof(struct pvh_start_info, rsdp_paddr), 32);
	assert_int_equal(offsetof(struct pvh_start_info, memmap_paddr), 40);
	assert_int_equal(offsetof(struct pvh_start_info, memmap_entries), 48);
	assert_int_equal(sizeof(struct pvh_module), 32);
	assert_int_equal(sizeof(struct pvh_memmap_entry), 24);
	assert_int_equal(offsetof(struct pvh_memmap_entry, type), 16);
}

/* The fixed boot structures must not overlap one another or what the e820 map calls RAM
 * for the kernel to reuse early (the first page is left alone). */
static void layout_regions_are_disjoint(void **state)
{
	static const struct {
		uint64_t start, len;
	} r[] = {
	    {LAYOUT_GDT, LAYOUT_GDT_ENTRIES * 8},
	    {LAYOUT_IDT, 8},
	    {LAYOUT_PVH_INFO, sizeof(struct pvh_start_info)},
	    {LAYOUT_PVH_MODLIST, sizeof(struct pvh_module)},
	    {LAYOUT_PVH_MEMMAP, BOOT_E820_MAX * sizeof(struct pvh_memmap_entry)},
	    {LAYOUT_ZERO_PAGE, sizeof(struct boot_params)},
	    {LAYOUT_PML4, 4096},
	    {LAYOUT_PDPT, 4096},
	    {LAYOUT_PD, 4096},
	    {LAYOUT_CMDLINE, LAYOUT_CMDLINE_MAX},
	    {LAYOUT_EBDA, LAYOUT_EBDA_END - LAYOUT_EBDA},
	};
	const size_t n = sizeof(r) / sizeof(r[0]);

	(void)state;
	for (size_t i = 0; i < n; i++) {
		assert_true(r[i].start >= 0x500);
		assert_true(r[i].start + r[i].len <= LAYOUT_HIGH_RAM);
		for (size_t j = i + 1; j < n; j++)
			assert_true(r[i].start + r[i].len <= r[j].start ||
				    r[j].start + r[j].len <= r[i].start);
	}
	/* The boot stack grows down from below the page tables, above the zero page. */
	assert_true(LAYOUT_BOOT_STACK > LAYOUT_ZERO_PAGE + sizeof(struct boot_params));
	assert_true(LAYOUT_BOOT_STACK < LAYOUT_PML4);
}

/* Initrd placement */

static void initrd_at_top_of_ram(void **state)
{
	struct guest_mem *gm = *state;
	struct kernel_image k = elf_kernel();
	uint64_t gpa = 0;

	assert_int_equal(boot_place_initrd(gm, &k, 0x100000 + 123, &gpa), 0);
	/* Rounded down to a page, so that it still ends inside RAM. */
	assert_int_equal(gpa, TEST_RAM_SIZE - 0x100000 - 4096);
	assert_int_equal(boot_place_initrd(gm, &k, 0x100000, &gpa), 0);
	assert_int_equal(gpa, TEST_RAM_SIZE - 0x100000);
	assert_int_equal(boot_place_initrd(gm, &k, 1, &gpa), 0);
	assert_int_equal(gpa, TEST_RAM_SIZE - 4096);
	assert_int_equal(gpa % 4096, 0);
}

static void initrd_below_bzimage_initrd_addr_max(void **state)
{
	struct guest_mem *gm = *state;
	struct kernel_image k = bz_kernel();
	uint64_t gpa = 0;

	assert_int_equal(boot_place_initrd(gm, &k, 0x100000, &gpa), 0);
	assert_int_equal(gpa, BZ_INITRD_MAX + 1 - 0x100000);
	assert_int_equal(boot_place_initrd(gm, &k, 0x100000 + 1, &gpa), 0);
	assert_int_equal(gpa, BZ_INITRD_MAX + 1 - 0x101000);
	/* A limit above RAM changes nothing. */
	k.hdr.initrd_addr_max = 0xffffffff;
	assert_int_equal(boot_place_initrd(gm, &k, 0x100000, &gpa), 0);
	assert_int_equal(gpa, TEST_RAM_SIZE - 0x100000);
	/* An unaligned limit still gives an aligned address that ends below it. */
	k.hdr.initrd_addr_max = 0x1234567;
	assert_int_equal(boot_place_initrd(gm, &k, 0x1000, &gpa), 0);
	assert_int_equal(gpa, 0x1233000);
	assert_true(gpa + 0x1000 <= 0x1234568);
}

static void initrd_refused_over_kernel(void **state)
{
	struct guest_mem *gm = *state;
	struct kernel_image k = elf_kernel();
	uint64_t gpa = 0x1234;

	k.end = 60 * MiB;
	/* Ends right at the kernel's end: fits. */
	assert_int_equal(boot_place_initrd(gm, &k, 4 * MiB, &gpa), 0);
	assert_int_equal(gpa, 60 * MiB);
	gpa = 0x1234;
	assert_int_equal(boot_place_initrd(gm, &k, 4 * MiB + 1, &gpa), -ENOMEM);
	assert_int_equal(boot_place_initrd(gm, &k, TEST_RAM_SIZE, &gpa), -ENOMEM);
	assert_int_equal(boot_place_initrd(gm, &k, TEST_RAM_SIZE + 1, &gpa), -ENOMEM);
	assert_int_equal(boot_place_initrd(gm, &k, UINT64_MAX, &gpa), -ENOMEM);
	assert_int_equal(gpa, 0x1234);
}

static void initrd_refused_over_bzimage(void **state)
{
	struct guest_mem *gm = *state;
	struct kernel_image k = bz_kernel();
	uint64_t gpa = 0x1234;

	/* The kernel occupies up to 9 MiB, the initrd must end below 32 MiB. */
	assert_int_equal(boot_place_initrd(gm, &k, 23 * MiB, &gpa), 0);
	assert_int_equal(gpa, 9 * MiB);
	gpa = 0x1234;
	assert_int_equal(boot_place_initrd(gm, &k, 23 * MiB + 1, &gpa), -ENOMEM);
	assert_int_equal(gpa, 0x1234);
}

static void initrd_in_low_ram_of_large_guest(void **state)
{
	struct kernel_image k = elf_kernel();
	struct guest_mem gm;
	uint64_t gpa = 0;

	(void)state;
	sparse_ram_init(&gm, 5 * GiB);
	assert_int_equal(boot_place_initrd(&gm, &k, 100 * MiB + 10, &gpa), 0);
	assert_int_equal(gpa, 3 * GiB - 100 * MiB - 4096);
	assert_non_null(gm_ptr(&gm, gpa, 100 * MiB + 10));
	sparse_ram_free(&gm);
}

/* Command line */

static void cmdline_written_with_nul(void **state)
{
	struct guest_mem *gm = *state;
	struct kernel_image k = elf_kernel();
	const char line[] = "console=ttyS0 quiet";

	assert_int_equal(boot_write_cmdline(gm, &k, line), 0);
	assert_memory_equal(gm_ptr(gm, LAYOUT_CMDLINE, sizeof(line)), line, sizeof(line));
	assert_int_equal(*(uint8_t *)gm_ptr(gm, LAYOUT_CMDLINE + sizeof(line), 1), FILL);
	assert_int_equal(*(uint8_t *)gm_ptr(gm, LAYOUT_CMDLINE - 1, 1), FILL);
}

/* A command line of `len` bytes in `buf` (which holds len + 1). */
static const char *line_of(char *buf, size_t len)
{
	memset(buf, 'x', len);
	buf[len] = '\0';
	return buf;
}

static void cmdline_length_limit(void **state)
{
	struct guest_mem *gm = *state;
	struct kernel_image k = elf_kernel();
	char buf[LAYOUT_CMDLINE_MAX + 1];

	assert_int_equal(boot_write_cmdline(gm, &k, line_of(buf, LAYOUT_CMDLINE_MAX)), -E2BIG);
	assert_true(all_bytes(gm_ptr(gm, LAYOUT_CMDLINE, LAYOUT_CMDLINE_MAX + 1),
			      LAYOUT_CMDLINE_MAX + 1, FILL));
	assert_int_equal(boot_write_cmdline(gm, &k, line_of(buf, LAYOUT_CMDLINE_MAX - 1)), 0);
	assert_int_equal(*(uint8_t *)gm_ptr(gm, LAYOUT_CMDLINE + LAYOUT_CMDLINE_MAX - 1, 1), 0);
	assert_int_equal(*(uint8_t *)gm_ptr(gm, LAYOUT_CMDLINE + LAYOUT_CMDLINE_MAX, 1), FILL);
	assert_int_equal(boot_write_cmdline(gm, &k, ""), 0);
	assert_int_equal(*(uint8_t *)gm_ptr(gm, LAYOUT_CMDLINE, 1), 0);
}

/* A bzImage's cmdline_size is "the maximum size of the command line without the
 * terminating zero" (Documentation/arch/x86/boot.rst): a line of exactly that many bytes
 * fits, one byte more does not. */
static void cmdline_bzimage_cmdline_size(void **state)
{
	struct guest_mem *gm = *state;
	struct kernel_image k = bz_kernel();
	char buf[BZ_CMDLINE_SIZE + 2];

	assert_int_equal(boot_write_cmdline(gm, &k, line_of(buf, BZ_CMDLINE_SIZE + 1)), -E2BIG);
	assert_int_equal(*(uint8_t *)gm_ptr(gm, LAYOUT_CMDLINE, 1), FILL);
	assert_int_equal(boot_write_cmdline(gm, &k, line_of(buf, BZ_CMDLINE_SIZE - 1)), 0);
	assert_int_equal(boot_write_cmdline(gm, &k, line_of(buf, BZ_CMDLINE_SIZE)), 0);
	assert_int_equal(*(uint8_t *)gm_ptr(gm, LAYOUT_CMDLINE + BZ_CMDLINE_SIZE, 1), 0);
}

static void cmdline_bzimage_without_cmdline_size(void **state)
{
	struct guest_mem *gm = *state;
	struct kernel_image k = bz_kernel();
	char buf[LAYOUT_CMDLINE_MAX + 1];

	/* Protocol before 2.06 leaves it 0; and a kernel may allow more than we place. */
	k.hdr.cmdline_size = 0;
	assert_int_equal(boot_write_cmdline(gm, &k, line_of(buf, LAYOUT_CMDLINE_MAX - 1)), 0);
	assert_int_equal(boot_write_cmdline(gm, &k, line_of(buf, LAYOUT_CMDLINE_MAX)), -E2BIG);
	k.hdr.cmdline_size = 1 << 20;
	assert_int_equal(boot_write_cmdline(gm, &k, line_of(buf, LAYOUT_CMDLINE_MAX - 1)), 0);
	assert_int_equal(boot_write_cmdline(gm, &k, line_of(buf, LAYOUT_CMDLINE_MAX)), -E2BIG);
}

/* Page tables and GDT */

static void tables_identity_map_first_gib(void **state)
{
	struct guest_mem *gm = *state;
	const uint64_t *pml4 = gm_ptr(gm, LAYOUT_PML4, 4096);
	const uint64_t *pdpt = gm_ptr(gm, LAYOUT_PDPT, 4096);
	const uint64_t *pd = gm_ptr(gm, LAYOUT_PD, 4096);

	assert_int_equal(boot_write_tables(gm), 0);
	assert_int_equal(pml4[0], LAYOUT_PDPT | 0x3);
	assert_int_equal(pdpt[0], LAYOUT_PD | 0x3);
	for (unsigned i = 1; i < 512; i++) {
		assert_int_equal(pml4[i], 0);
		assert_int_equal(pdpt[i], 0);
	}
	for (uint64_t i = 0; i < 512; i++)
		assert_int_equal(pd[i], (i * 2 * MiB) | 0x83);
	assert_int_equal(pd[511], 0x3fe00083);
}

/* Walks the tables that boot_write_tables() wrote, as the MMU would. */
static uint64_t walk(const struct guest_mem *gm, uint64_t va)
{
	const uint64_t *pml4 = gm_ptr(gm, LAYOUT_PML4, 4096), *pdpt, *pd;
	uint64_t e;

	e = pml4[(va >> 39) & 511];
	if (!(e & 1))
		return UINT64_MAX;
	pdpt = gm_ptr(gm, e & ~0xfffULL, 4096);
	e = pdpt[(va >> 30) & 511];
	if (!(e & 1) || (e & 0x80))
		return UINT64_MAX;
	pd = gm_ptr(gm, e & ~0xfffULL, 4096);
	e = pd[(va >> 21) & 511];
	if (!(e & 1) || !(e & 0x80))
		return UINT64_MAX;
	return (e & ~0x1fffffULL) | (va & 0x1fffff);
}

static void tables_translate_as_identity(void **state)
{
	struct guest_mem *gm = *state;

	assert_int_equal(boot_write_tables(gm), 0);
	assert_int_equal(walk(gm, 0), 0);
	assert_int_equal(walk(gm, 0x1000000 + 0x1234), 0x1000000 + 0x1234);
	assert_int_equal(walk(gm, GiB - 1), GiB - 1);
	assert_int_equal(walk(gm, GiB), UINT64_MAX);
	assert_int_equal(walk(gm, 512 * GiB), UINT64_MAX);
}

static void tables_gdt_contents(void **state)
{
	struct guest_mem *gm = *state;
	const uint64_t *gdt = gm_ptr(gm, LAYOUT_GDT, 4 * 8);

	assert_int_equal(boot_write_tables(gm), 0);
	assert_int_equal(gdt[0], 0);
	assert_int_equal(gdt[1], GDT_CODE64_ENTRY);
	assert_int_equal(gdt[2], GDT_CODE32_ENTRY);
	assert_int_equal(gdt[3], GDT_DATA_ENTRY);
	assert_true(all_bytes(gm_ptr(gm, LAYOUT_IDT, 8), 8, 0));
}

static void tables_need_low_ram(void **state)
{
	struct guest_mem gm;

	(void)state;
	/* RAM that ends inside the page directory. */
	fake_ram_init(&gm, LAYOUT_PD + 4095, FILL);
	assert_int_equal(boot_write_tables(&gm), -ENOMEM);
	assert_true(all_bytes(gm.host, gm.size, FILL));
	fake_ram_free(&gm);
}

/* Segments */

static void check_flat(const struct kvm_segment *s, uint16_t selector, uint8_t type)
{
	assert_int_equal(s->base, 0);
	assert_int_equal(s->limit, 0xffffffff);
	assert_int_equal(s->selector, selector);
	assert_int_equal(s->type, type);
	assert_int_equal(s->present, 1);
	assert_int_equal(s->dpl, 0);
	assert_int_equal(s->s, 1);
	assert_int_equal(s->g, 1);
	assert_int_equal(s->avl, 0);
	assert_int_equal(s->unusable, 0);
}

static void gdt_code64_segment(void **state)
{
	struct kvm_segment s = boot_gdt_to_segment(GDT_CODE64_ENTRY, 0x08);

	(void)state;
	check_flat(&s, 0x08, SEG_TYPE_CODE_XR);
	assert_int_equal(s.l, 1);
	assert_int_equal(s.db, 0);
}

static void gdt_code32_segment(void **state)
{
	struct kvm_segment s = boot_gdt_to_segment(GDT_CODE32_ENTRY, 0x10);

	(void)state;
	check_flat(&s, 0x10, SEG_TYPE_CODE_XR);
	assert_int_equal(s.l, 0);
	assert_int_equal(s.db, 1);
}

static void gdt_data_segment(void **state)
{
	struct kvm_segment s = boot_gdt_to_segment(GDT_DATA_ENTRY, 0x18);

	(void)state;
	check_flat(&s, 0x18, SEG_TYPE_DATA_RW);
	assert_int_equal(s.l, 0);
	assert_int_equal(s.db, 1);
}

static void gdt_byte_granular_segment_with_base(void **state)
{
	/* base 0x12345678, limit 0xabcde, G=0, AVL=1, DPL 3, not present, data r/w. */
	uint64_t entry = 0xbcdeULL | (0x345678ULL << 16) | (0x63ULL << 40) | (0xaULL << 48) |
			 (0x1ULL << 52) | (0x12ULL << 56);
	struct kvm_segment s = boot_gdt_to_segment(entry, 0x2b);

	(void)state;
	assert_int_equal(s.base, 0x12345678);
	assert_int_equal(s.limit, 0xabcde);
	assert_int_equal(s.selector, 0x2b);
	assert_int_equal(s.type, 3);
	assert_int_equal(s.s, 0);
	assert_int_equal(s.dpl, 3);
	assert_int_equal(s.present, 0);
	assert_int_equal(s.unusable, 1);
	assert_int_equal(s.avl, 1);
	assert_int_equal(s.g, 0);
	assert_int_equal(s.l, 0);
	assert_int_equal(s.db, 0);
}

/* vCPU registers */

/* The segments boot_sregs() loads must match the GDT that boot_write_tables() writes,
 * since the CPU reloads them from there. */
static void check_segment_matches_gdt(const struct guest_mem *gm, const struct kvm_sregs *s,
				      const struct kvm_segment *seg)
{
	struct kvm_segment from_gdt;
	const uint64_t *entry;

	assert_true(seg->selector + 8u <= s->gdt.limit + 1u);
	entry = gm_ptr(gm, s->gdt.base + seg->selector, 8);
	assert_non_null(entry);
	from_gdt = boot_gdt_to_segment(*entry, seg->selector);
	assert_memory_equal(&from_gdt, seg, sizeof(from_gdt));
}

static void check_common_sregs(const struct guest_mem *gm, const struct kvm_sregs *s)
{
	const struct kvm_segment *data[] = {&s->ds, &s->es, &s->fs, &s->gs, &s->ss};

	assert_int_equal(s->gdt.base, LAYOUT_GDT);
	assert_int_equal(s->gdt.limit, 4 * 8 - 1);
	assert_int_equal(s->idt.base, LAYOUT_IDT);
	assert_int_equal(s->idt.limit, 7);
	check_segment_matches_gdt(gm, s, &s->cs);
	for (size_t i = 0; i < sizeof(data) / sizeof(data[0]); i++) {
		check_flat(data[i], 0x18, SEG_TYPE_DATA_RW);
		check_segment_matches_gdt(gm, s, data[i]);
	}
	assert_int_equal(s->cr0 & CR0_PE, CR0_PE);
	assert_int_equal(s->tr.present, 1);
	assert_int_equal(s->tr.type, 11);
}

static void sregs_long_mode(void **state)
{
	struct guest_mem *gm = *state;
	struct kvm_sregs s;

	memset(&s, 0, sizeof(s));
	assert_int_equal(boot_write_tables(gm), 0);
	boot_sregs(&s, false);
	check_common_sregs(gm, &s);
	assert_int_equal(s.cr0 & CR0_PG, CR0_PG);
	assert_int_equal(s.cr4 & CR4_PAE, CR4_PAE);
	assert_int_equal(s.efer, EFER_LME | EFER_LMA);
	assert_int_equal(s.cr3, LAYOUT_PML4);
	check_flat(&s.cs, 0x08, SEG_TYPE_CODE_XR);
	assert_int_equal(s.cs.l, 1);
	assert_int_equal(s.cs.db, 0);
}

static void sregs_pvh(void **state)
{
	struct guest_mem *gm = *state;
	struct kvm_sregs s;

	memset(&s, 0xff, sizeof(s));
	assert_int_equal(boot_write_tables(gm), 0);
	boot_sregs(&s, true);
	check_common_sregs(gm, &s);
	assert_int_equal(s.cr0 & CR0_PG, 0);
	assert_int_equal(s.cr4, 0);
	assert_int_equal(s.efer, 0);
	assert_int_equal(s.cr3, 0);
	check_flat(&s.cs, 0x10, SEG_TYPE_CODE_XR);
	assert_int_equal(s.cs.db, 1);
	assert_int_equal(s.cs.l, 0);
}

static void regs_pvh(void **state)
{
	struct kernel_image k = pvh_kernel();
	struct kvm_regs r;

	(void)state;
	memset(&r, 0xff, sizeof(r));
	boot_regs(&r, &k);
	assert_int_equal(r.rip, 0x1000400);
	assert_int_equal(r.rbx, LAYOUT_PVH_INFO);
	assert_int_equal(r.rsi, 0);
	assert_int_equal(r.rflags, 0x2);
	assert_int_equal(r.rax, 0);
}

static void regs_long_mode(void **state)
{
	struct kernel_image k = bz_kernel();
	struct kvm_regs r;

	(void)state;
	memset(&r, 0xff, sizeof(r));
	boot_regs(&r, &k);
	assert_int_equal(r.rip, 0x100200);
	assert_int_equal(r.rsi, LAYOUT_ZERO_PAGE);
	assert_int_equal(r.rbx, 0);
	assert_int_equal(r.rflags, 0x2);
	assert_int_equal(r.rsp, LAYOUT_BOOT_STACK);
	assert_int_equal(r.rbp, LAYOUT_BOOT_STACK);
	assert_int_equal(r.rdi, 0);
	k = elf_kernel();
	boot_regs(&r, &k);
	assert_int_equal(r.rip, 0x1000000);
	assert_int_equal(r.rsi, LAYOUT_ZERO_PAGE);
}

#define RAM_TEST(f) cmocka_unit_test_setup_teardown(f, ram_setup, ram_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    RAM_TEST(e820_small_ram),
	    cmocka_unit_test(e820_large_ram),
	    RAM_TEST(zero_page_for_bzimage),
	    RAM_TEST(zero_page_for_elf),
	    cmocka_unit_test(zero_page_large_ram_and_high_initrd),
	    RAM_TEST(pvh_start_info_with_initrd),
	    RAM_TEST(pvh_start_info_without_initrd),
	    cmocka_unit_test(pvh_memmap_large_ram),
	    cmocka_unit_test(pvh_abi_layout),
	    cmocka_unit_test(layout_regions_are_disjoint),
	    RAM_TEST(initrd_at_top_of_ram),
	    RAM_TEST(initrd_below_bzimage_initrd_addr_max),
	    RAM_TEST(initrd_refused_over_kernel),
	    RAM_TEST(initrd_refused_over_bzimage),
	    cmocka_unit_test(initrd_in_low_ram_of_large_guest),
	    RAM_TEST(cmdline_written_with_nul),
	    RAM_TEST(cmdline_length_limit),
	    RAM_TEST(cmdline_bzimage_cmdline_size),
	    RAM_TEST(cmdline_bzimage_without_cmdline_size),
	    RAM_TEST(tables_identity_map_first_gib),
	    RAM_TEST(tables_translate_as_identity),
	    RAM_TEST(tables_gdt_contents),
	    cmocka_unit_test(tables_need_low_ram),
	    cmocka_unit_test(gdt_code64_segment),
	    cmocka_unit_test(gdt_code32_segment),
	    cmocka_unit_test(gdt_data_segment),
	    cmocka_unit_test(gdt_byte_granular_segment_with_base),
	    RAM_TEST(sregs_long_mode),
	    RAM_TEST(sregs_pvh),
	    cmocka_unit_test(regs_pvh),
	    cmocka_unit_test(regs_long_mode),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

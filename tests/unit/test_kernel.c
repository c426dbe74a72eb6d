/* Kernel loading from hostile files: small ELF64 and bzImage images built here, then
 * broken one field at a time. Each image is copied into a heap block of exactly its size
 * and guest RAM is a heap block of exactly its size, so ASan reports any read past the
 * file or write past guest RAM. */
#include "unit.h"

#include <elf.h>
#include <errno.h>

#include "vmm/kernel.h"

#define FILL	    0xcc
#define LOAD_A	    0x100000ULL
#define LOAD_B	    0x200000ULL
#define A_FILESZ    0x100
#define A_MEMSZ	    0x300
#define B_SIZE	    0x10
#define ENTRY	    (LOAD_A + 0x10)
#define PVH_ENTRY   (LOAD_A + 0x40)
#define MAX_SEGS    4
#define MAX_IMAGE   0x4000
#define XEN_PHYS32  18	      /* XEN_ELFNOTE_PHYS32_ENTRY */
#define BZ_SETUP    (5 * 512) /* setup_sects 4, plus the boot sector */
#define BZ_PAYLOAD  0x1000
#define BZ_INIT	    0x10000
#define BZ_VERSION  0x020f
#define BZ_HDR_SIZE (0x1f1 + sizeof(struct setup_header))

struct seg {
	uint32_t type;
	uint64_t paddr, filesz, memsz;
	const void *data;
};

/* An image under construction; `size` bytes of `buf` are the file. */
struct image {
	uint8_t buf[MAX_IMAGE];
	size_t size;
};

static Elf64_Ehdr *ehdr(struct image *im)
{
	return (Elf64_Ehdr *)im->buf;
}

static Elf64_Phdr *phdr(struct image *im, unsigned i)
{
	return (Elf64_Phdr *)(im->buf + sizeof(Elf64_Ehdr)) + i;
}

/* ELF header, program headers, then each segment's bytes in order. */
static void elf_build(struct image *im, uint64_t entry, const struct seg *segs, unsigned n)
{
	Elf64_Ehdr *eh = ehdr(im);
	size_t pos = sizeof(Elf64_Ehdr) + n * sizeof(Elf64_Phdr);

	memset(im, 0, sizeof(*im));
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_X86_64;
	eh->e_version = EV_CURRENT;
	eh->e_entry = entry;
	eh->e_phoff = sizeof(Elf64_Ehdr);
	eh->e_ehsize = sizeof(Elf64_Ehdr);
	eh->e_phentsize = sizeof(Elf64_Phdr);
	eh->e_phnum = (uint16_t)n;
	for (unsigned i = 0; i < n; i++) {
		Elf64_Phdr *ph = phdr(im, i);

		assert_true(pos + segs[i].filesz <= sizeof(im->buf));
		*ph = (Elf64_Phdr){.p_type = segs[i].type,
				   .p_flags = PF_R | PF_X,
				   .p_offset = pos,
				   .p_vaddr = segs[i].paddr + 0xffffffff80000000ULL,
				   .p_paddr = segs[i].paddr,
				   .p_filesz = segs[i].filesz,
				   .p_memsz = segs[i].memsz,
				   .p_align = 0x1000};
		if (segs[i].data)
			memcpy(im->buf + pos, segs[i].data, segs[i].filesz);
		pos += segs[i].filesz;
	}
	im->size = pos;
}

static uint8_t seg_a[A_FILESZ], seg_b[B_SIZE];

static void fill_pattern(uint8_t *p, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

/* Two loadable segments; the first has a bss tail. */
static void good_elf(struct image *im)
{
	const struct seg segs[] = {
	    {PT_LOAD, LOAD_A, A_FILESZ, A_MEMSZ, seg_a},
	    {PT_LOAD, LOAD_B, B_SIZE, B_SIZE, seg_b},
	};

	fill_pattern(seg_a, sizeof(seg_a), 1);
	fill_pattern(seg_b, sizeof(seg_b), 100);
	elf_build(im, ENTRY, segs, 2);
}

/* Appends one ELF note to `p`; returns the bytes written. */
static size_t put_note(uint8_t *p, const char *name, uint32_t namesz, uint32_t type,
		       const void *desc, uint32_t descsz)
{
	Elf64_Nhdr nh = {.n_namesz = namesz, .n_descsz = descsz, .n_type = type};
	size_t pos = sizeof(nh);

	memset(p, 0, sizeof(nh) + ((namesz + 3) & ~3u) + ((descsz + 3) & ~3u));
	memcpy(p, &nh, sizeof(nh));
	memcpy(p + pos, name, namesz);
	pos += (namesz + 3) & ~3u;
	memcpy(p + pos, desc, descsz);
	pos += (descsz + 3) & ~3u;
	return pos;
}

/* The good ELF with a PT_NOTE segment holding `notes`, placed last in the file. */
static void elf_with_notes(struct image *im, const uint8_t *notes, size_t len)
{
	const struct seg segs[] = {
	    {PT_LOAD, LOAD_A, A_FILESZ, A_MEMSZ, seg_a},
	    {PT_LOAD, LOAD_B, B_SIZE, B_SIZE, seg_b},
	    {PT_NOTE, 0, len, len, notes},
	};

	fill_pattern(seg_a, sizeof(seg_a), 1);
	fill_pattern(seg_b, sizeof(seg_b), 100);
	elf_build(im, ENTRY, segs, 3);
}

static void pvh_elf(struct image *im)
{
	uint8_t notes[128];
	uint64_t entry = PVH_ENTRY, other = 0xdeadbeef;
	uint8_t build_id[20];
	size_t len = 0;

	memset(build_id, 0x42, sizeof(build_id));
	/* Notes the loader must step over: another owner, and another Xen note type. */
	len += put_note(notes + len, "GNU", 4, NT_GNU_BUILD_ID, build_id, sizeof(build_id));
	len += put_note(notes + len, "Xen", 4, 1, &other, sizeof(other));
	/* Linux emits the PVH entry as a 64-bit value (_ASM_PTR). */
	len += put_note(notes + len, "Xen", 4, XEN_PHYS32, &entry, sizeof(entry));
	elf_with_notes(im, notes, len);
}

/* A bzImage: boot sector and setup (with the setup header at 0x1f1), then the
 * protected-mode code. */
static void good_bzimage(struct image *im)
{
	struct setup_header hdr = {0};
	uint32_t magic = 0x53726448;

	memset(im, 0, sizeof(*im));
	hdr.setup_sects = 4;
	hdr.boot_flag = 0xaa55;
	hdr.version = BZ_VERSION;
	hdr.xloadflags = XLF_KERNEL_64;
	hdr.init_size = BZ_INIT;
	hdr.initrd_addr_max = 0x7fffffff;
	hdr.cmdline_size = 2047;
	memcpy(&hdr.header, &magic, sizeof(magic));
	memcpy(im->buf + 0x1f1, &hdr, sizeof(hdr));
	fill_pattern(im->buf + BZ_SETUP, BZ_PAYLOAD, 9);
	im->size = BZ_SETUP + BZ_PAYLOAD;
}

static struct setup_header *bz_hdr(struct image *im)
{
	return (struct setup_header *)(im->buf + 0x1f1);
}

/* Loads the first `size` bytes of `im` from an exact-size heap copy. */
static int load(struct guest_mem *gm, const struct image *im, size_t size, struct kernel_image *k)
{
	uint8_t *file = malloc(size ? size : 1);
	int ret;

	assert_non_null(file);
	memcpy(file, im->buf, size);
	ret = kernel_load(gm, file, size, "test", k);
	free(file);
	return ret;
}

static int ram_setup(void **state)
{
	return fake_ram_fixture(state, TEST_RAM_SIZE, FILL);
}

static int ram_teardown(void **state)
{
	return fake_ram_fixture_free(state);
}

/* Nothing was copied into guest RAM. */
static void assert_ram_untouched(const struct guest_mem *gm)
{
	assert_true(all_bytes(gm->host, gm->size, FILL));
}

/* ELF: good images */

static void elf_loads_segments_and_zeroes_bss(void **state)
{
	struct guest_mem *gm = *state;
	struct kernel_image k;
	struct image im;
	uint8_t *a, *b;

	good_elf(&im);
	assert_int_equal(load(gm, &im, im.size, &k), 0);
	a = gm_ptr(gm, LOAD_A, A_MEMSZ + 1);
	b = gm_ptr(gm, LOAD_B, B_SIZE + 1);
	assert_memory_equal(a, seg_a, A_FILESZ);
	assert_true(all_bytes(a + A_FILESZ, A_MEMSZ - A_FILESZ, 0));
	assert_int_equal(a[A_MEMSZ], FILL);
	assert_int_equal(a[-1], FILL);
	assert_memory_equal(b, seg_b, B_SIZE);
	assert_int_equal(b[B_SIZE], FILL);
	assert_int_equal(k.kind, KERNEL_ELF);
	assert_int_equal(k.entry64, ENTRY);
	assert_int_equal(k.start, LOAD_A);
	assert_int_equal(k.end, LOAD_B + B_SIZE);
	assert_false(k.has_pvh);
}

static void elf_finds_pvh_note(void **state)
{
	struct guest_mem *gm = *state;
	struct kernel_image k;
	struct image im;

	pvh_elf(&im);
	assert_int_equal(load(gm, &im, im.size, &k), 0);
	assert_true(k.has_pvh);
	assert_int_equal(k.pvh_entry, PVH_ENTRY);
	assert_int_equal(k.entry64, ENTRY);
	assert_int_equal(k.kind, KERNEL_ELF);
	/* A later load of an image without the note does not keep the old one. */
	good_elf(&im);
	assert_int_equal(load(gm, &im, im.size, &k), 0);
	assert_false(k.has_pvh);
	assert_int_equal(k.pvh_entry, 0);
}

static void elf_pvh_note_with_4_byte_desc(void **state)
{
	struct guest_mem *gm = *state;
	uint32_t entry = PVH_ENTRY;
	struct kernel_image k;
	uint8_t notes[32];
	struct image im;

	elf_with_notes(&im, notes, put_note(notes, "Xen", 4, XEN_PHYS32, &entry, 4));
	assert_int_equal(load(gm, &im, im.size, &k), 0);
	assert_true(k.has_pvh);
	assert_int_equal(k.pvh_entry, PVH_ENTRY);
}

static void elf_skips_empty_and_other_segments(void **state)
{
	struct guest_mem *gm = *state;
	const struct seg segs[] = {
	    {PT_LOAD, 0x10, 0, 0, NULL}, /* memsz 0: nothing to load, paddr not checked */
	    {PT_LOAD, LOAD_A, A_FILESZ, A_MEMSZ, seg_a},
	    {PT_GNU_STACK, 0, 0, 0, NULL},
	    {PT_DYNAMIC, 0x10, 0, 0x10, NULL},
	};
	struct kernel_image k;
	struct image im;

	elf_build(&im, ENTRY, segs, 4);
	assert_int_equal(load(gm, &im, im.size, &k), 0);
	assert_int_equal(k.start, LOAD_A);
	assert_int_equal(k.end, LOAD_A + A_MEMSZ);
	assert_true(all_bytes(gm->host, LOAD_A, FILL));
}

static void elf_segment_at_end_of_ram(void **state)
{
	struct guest_mem *gm = *state;
	const struct seg segs[] = {{PT_LOAD, TEST_RAM_SIZE - 0x100, 0x10, 0x100, seg_b}};
	struct kernel_image k;
	struct image im;

	elf_build(&im, TEST_RAM_SIZE - 0x100, segs, 1);
	assert_int_equal(load(gm, &im, im.size, &k), 0);
	assert_int_equal(k.end, TEST_RAM_SIZE);
	assert_true(all_bytes(gm->host + TEST_RAM_SIZE - 0xf0, 0xf0, 0));
}

/* ELF: malformed headers */

static void elf_truncated_header(void **state)
{
	struct guest_mem *gm = *state;
	struct kernel_image k;
	struct image im;

	good_elf(&im);
	assert_int_equal(load(gm, &im, sizeof(Elf64_Ehdr) - 1, &k), -EINVAL);
	assert_int_equal(load(gm, &im, SELFMAG, &k), -EINVAL);
	assert_int_equal(load(gm, &im, SELFMAG + 1, &k), -EINVAL);
	/* Header complete, program headers cut off. */
	assert_int_equal(load(gm, &im, sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr), &k), -EINVAL);
	assert_ram_untouched(gm);
}

static void elf_wrong_identity(void **state)
{
	struct guest_mem *gm = *state;
	struct kernel_image k;
	struct image im;

	good_elf(&im);
	ehdr(&im)->e_ident[EI_CLASS] = ELFCLASS32;
	assert_int_equal(load(gm, &im, im.size, &k), -EINVAL);
	good_elf(&im);
	ehdr(&im)->e_ident[EI_DATA] = ELFDATA2MSB;
	assert_int_equal(load(gm, &im, im.size, &k), -EINVAL);
	good_elf(&im);
	ehdr(&im)->e_machine = EM_386;
	assert_int_equal(load(gm, &im, im.size, &k), -EINVAL);
	good_elf(&im);
	ehdr(&im)->e_machine = EM_AARCH64;
	assert_int_equal(load(gm, &im, im.size, &k), -EINVAL);
	good_elf(&im);
	ehdr(&im)->e_type = ET_DYN;
	assert_int_equal(load(gm, &im, im.size, &k), -EINVAL);
	good_elf(&im);
	ehdr(&im)->e_type = ET_REL;
	assert_int_equal(load(gm, &im, im.size, &k), -EINVAL);
	assert_ram_untouched(gm);
}

static void elf_bad_program_header_table(void **state)
{
	struct guest_mem *gm = *state;
	struct kernel_image k;
	struct image im;

	good_elf(&im);
	ehdr(&im)->e_phnum = 0;
	assert_int_equal(load(gm, &im, im.size, &k), -EINVAL);
	good_elf(&im);
	ehdr(&im)->e_phnum = 3; /* the third runs into segment data, then off the file */
	ehdr(&im)->e_phoff = im.size - 2 * sizeof(Elf64_Phdr);
	assert_int_equal(load(gm, &im, im.size, &k), -EINVAL);
	good_elf(&im);
	ehdr(&im)->e_phnum = 0xffff;
	assert_int_equal(load(gm, &im, im.size, &k), -EINVAL);
	good_elf(&im);
	ehdr(&im)->e_phentsize = sizeof(Elf64_Phdr) - 1;
	assert_int_equal(load(gm, &im, im.size, &k), -EINVAL);
	good_elf(&im);
	ehdr(&im)->e_phentsize = 0xffff;
	ehdr(&im)->e_phnum = 0xffff;
	assert_int_equal(load(gm, &im, im.size, &k), -EINVAL);
	assert_ram_untouched(gm);
}

static void elf_phoff_out_of_file(void **state)
{
	static const uint64_t bad_phoff[] = {
	    MAX_IMAGE,
	    UINT64_MAX,
	    UINT64_MAX - sizeof(Elf64_Phdr) + 1, /* phoff + phnum * phentsize wraps */
	    UINT64_MAX - 2 * sizeof(Elf64_Phdr) + 2,
	    1ULL << 63,
	};
	struct guest_mem *gm = *state;
	struct kernel_image k;
	struct image im;

	for (size_t i = 0; i < sizeof(bad_phoff) / sizeof(bad_phoff[0]); i++) {
		good_elf(&im);
		ehdr(&im)->e_phoff = bad_phoff[i];
		assert_int_equal(load(gm, &im, im.size, &k), -EINVAL);
	}
	good_elf(&im);
	ehdr(&im)->e_phoff = im.size; /* just past the end */
	assert_int_equal(load(gm, &im, im.size, &k), -EINVAL);
	good_elf(&im);
	ehdr(&im)->e_phoff = im.size - 2 * sizeof(Elf64_Phdr) + 1; /* one byte past */
	assert_int_equal(load(gm, &im, im.size, &k), -EINVAL);
	assert_ram_untouched(gm);
}

/* ELF: malformed segments */

static void elf_segment_outside_file(void **state)
{
	struct guest_mem *gm = *state;
	struct kernel_image k;
	struct image im;

	good_elf(&im);
	phdr(&im, 0)->p_offset = im.size - A_FILESZ + 1;
	assert_int_equal(load(gm, &im, im.size, &k), -EINVAL);
	good_elf(&im);
	phdr(&im, 0)->p_offset = UINT64_MAX - 0x10; /* offset + filesz wraps */
	assert_int_equal(load(gm, &im, im.size, &k), -EINVAL);
	good_elf(&im);
	phdr(&im, 0)->p_filesz = UINT64_MAX;
	phdr(&im, 0)->p_memsz = UINT64_MAX;
	assert_int_equal(load(gm, &im, im.size, &k), -EINVAL);
	assert_ram_untouched(gm);
	/* The file cut short inside its last segment (the first one is loaded by then). */
	good_elf(&im);
	assert_int_equal(load(gm, &im, im.size - 1, &k), -EINVAL);
}

static void elf_filesz_above_memsz(void **state)
{
	struct guest_mem *gm = *state;
	struct kernel_image k;
	struct image im;

	good_elf(&im);
	phdr(&im, 0)->p_memsz = A_FILESZ - 1;
	assert_int_equal(load(gm, &im, im.size, &k), -EINVAL);
	assert_ram_untouched(gm);
}

static void elf_segment_below_1mib(void **state)
{
	static const uint64_t bad_paddr[] = {0, 0x7000, 0x9fc00, 0xfffff};
	struct guest_mem *gm = *state;
	struct kernel_image k;
	struct image im;

	for (size_t i = 0; i < sizeof(bad_paddr) / sizeof(bad_paddr[0]); i++) {
		good_elf(&im);
		phdr(&im, 0)->p_paddr = bad_paddr[i];
		assert_int_equal(load(gm, &im, im.size, &k), -EINVAL);
	}
	assert_ram_untouched(gm);
}

static void elf_segment_beyond_ram(void **state)
{
	static const struct {
		uint64_t paddr, memsz;
	} bad[] = {
	    {TEST_RAM_SIZE - 0x100, 0x101},
	    {TEST_RAM_SIZE, A_MEMSZ},
	    {LAYOUT_MMIO_HOLE, A_MEMSZ},
	    {4 * GiB, A_MEMSZ},
	    {LOAD_A, UINT64_MAX},	       /* paddr + memsz wraps */
	    {LOAD_A, UINT64_MAX - LOAD_A + 1}, /* wraps to exactly 0 */
	    {UINT64_MAX - 0xff, A_MEMSZ},
	};
	struct guest_mem *gm = *state;
	struct kernel_image k;
	struct image im;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		good_elf(&im);
		phdr(&im, 0)->p_paddr = bad[i].paddr;
		phdr(&im, 0)->p_memsz = bad[i].memsz;
		assert_int_equal(load(gm, &im, im.size, &k), -ENOMEM);
		assert_ram_untouched(gm);
	}
}

static void elf_entry_outside_image(void **state)
{
	static const uint64_t bad_entry[] = {0, LOAD_A - 1, LOAD_B + B_SIZE, UINT64_MAX};
	struct guest_mem *gm = *state;
	struct kernel_image k;
	struct image im;

	for (size_t i = 0; i < sizeof(bad_entry) / sizeof(bad_entry[0]); i++) {
		good_elf(&im);
		ehdr(&im)->e_entry = bad_entry[i];
		assert_int_equal(load(gm, &im, im.size, &k), -EINVAL);
	}
	/* The last byte of the image is still a valid entry. */
	good_elf(&im);
	ehdr(&im)->e_entry = LOAD_B + B_SIZE - 1;
	assert_int_equal(load(gm, &im, im.size, &k), 0);
}

static void elf_pvh_entry_outside_image(void **state)
{
	struct guest_mem *gm = *state;
	uint32_t entry = 0x1000;
	struct kernel_image k;
	uint8_t notes[32];
	struct image im;

	elf_with_notes(&im, notes, put_note(notes, "Xen", 4, XEN_PHYS32, &entry, 4));
	assert_int_equal(load(gm, &im, im.size, &k), -EINVAL);
	entry = LOAD_B + B_SIZE;
	elf_with_notes(&im, notes, put_note(notes, "Xen", 4, XEN_PHYS32, &entry, 4));
	assert_int_equal(load(gm, &im, im.size, &k), -EINVAL);
}

static void elf_nothing_to_load(void **state)
{
	struct guest_mem *gm = *state;
	const struct seg segs[] = {{PT_NOTE, 0, 4, 4, "abc"}, {PT_LOAD, LOAD_A, 0, 0, NULL}};
	struct kernel_image k;
	struct image im;

	elf_build(&im, ENTRY, segs, 2);
	assert_int_equal(load(gm, &im, im.size, &k), -EINVAL);
	assert_ram_untouched(gm);
}

/* ELF: malformed notes. The note segment is the last bytes of the file, so a read past it
 * is a read past the heap block. */

static void elf_note_sizes_past_segment(void **state)
{
	static const struct {
		uint32_t namesz, descsz;
	} bad[] = {
	    {4, 5}, {4, 100}, {4, 0xffffffff}, {0xffffffff, 4}, {0xfffffffd, 0xfffffffd}, {100, 0},
	};
	struct guest_mem *gm = *state;
	struct kernel_image k;
	struct image im;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		Elf64_Nhdr nh = {
		    .n_namesz = bad[i].namesz, .n_descsz = bad[i].descsz, .n_type = XEN_PHYS32};
		uint8_t notes[sizeof(nh) + 8];
		uint32_t entry = PVH_ENTRY;

		memcpy(notes, &nh, sizeof(nh));
		memcpy(notes + sizeof(nh), "Xen", 4);
		memcpy(notes + sizeof(nh) + 4, &entry, 4);
		elf_with_notes(&im, notes, sizeof(notes));
		/* Not a PVH kernel, but still a loadable 64-bit one. */
		assert_int_equal(load(gm, &im, im.size, &k), 0);
		assert_false(k.has_pvh);
	}
}

static void elf_note_too_short(void **state)
{
	struct guest_mem *gm = *state;
	uint32_t entry = PVH_ENTRY;
	struct kernel_image k;
	uint8_t notes[32];
	struct image im;
	size_t len;

	/* A segment shorter than a note header. */
	elf_with_notes(&im, (const uint8_t *)"Xen\0Xen", 7);
	assert_int_equal(load(gm, &im, im.size, &k), 0);
	assert_false(k.has_pvh);
	/* descsz too small for the entry. */
	len = put_note(notes, "Xen", 4, XEN_PHYS32, &entry, 2);
	elf_with_notes(&im, notes, len);
	assert_int_equal(load(gm, &im, im.size, &k), 0);
	assert_false(k.has_pvh);
	/* The right note cut off by the end of its segment. */
	len = put_note(notes, "Xen", 4, XEN_PHYS32, &entry, 4);
	elf_with_notes(&im, notes, len - 1);
	assert_int_equal(load(gm, &im, im.size, &k), 0);
	assert_false(k.has_pvh);
	/* Wrong owner name, or right name with the wrong length. */
	len = put_note(notes, "Xex", 4, XEN_PHYS32, &entry, 4);
	elf_with_notes(&im, notes, len);
	assert_int_equal(load(gm, &im, im.size, &k), 0);
	assert_false(k.has_pvh);
	len = put_note(notes, "Xen", 3, XEN_PHYS32, &entry, 4);
	elf_with_notes(&im, notes, len);
	assert_int_equal(load(gm, &im, im.size, &k), 0);
	assert_false(k.has_pvh);
}

static void elf_note_segment_outside_file(void **state)
{
	struct guest_mem *gm = *state;
	struct kernel_image k;
	struct image im;

	pvh_elf(&im);
	phdr(&im, 2)->p_filesz += 1;
	assert_int_equal(load(gm, &im, im.size, &k), -EINVAL);
	pvh_elf(&im);
	phdr(&im, 2)->p_offset = UINT64_MAX - 2;
	assert_int_equal(load(gm, &im, im.size, &k), -EINVAL);
}

/* bzImage */

static void bzimage_loads_at_1mib(void **state)
{
	struct guest_mem *gm = *state;
	struct kernel_image k;
	struct image im;
	uint8_t *dst;

	good_bzimage(&im);
	assert_int_equal(load(gm, &im, im.size, &k), 0);
	assert_int_equal(k.kind, KERNEL_BZIMAGE);
	assert_int_equal(k.start, 0x100000);
	assert_int_equal(k.entry64, 0x100200);
	assert_int_equal(k.end, 0x100000 + BZ_INIT);
	assert_false(k.has_pvh);
	assert_int_equal(k.hdr.version, BZ_VERSION);
	assert_int_equal(k.hdr.init_size, BZ_INIT);
	assert_int_equal(k.hdr.initrd_addr_max, 0x7fffffff);
	dst = gm_ptr(gm, 0x100000, BZ_PAYLOAD + 1);
	assert_memory_equal(dst, im.buf + BZ_SETUP, BZ_PAYLOAD);
	/* The setup code stays out of guest RAM; nothing below 1 MiB is written. */
	assert_int_equal(dst[BZ_PAYLOAD], FILL);
	assert_true(all_bytes(gm->host, 0x100000, FILL));
}

static void bzimage_setup_sects_zero_means_4(void **state)
{
	struct guest_mem *gm = *state;
	struct kernel_image k;
	struct image im;

	good_bzimage(&im);
	bz_hdr(&im)->setup_sects = 0;
	assert_int_equal(load(gm, &im, im.size, &k), 0);
	assert_memory_equal(gm_ptr(gm, 0x100000, BZ_PAYLOAD), im.buf + BZ_SETUP, BZ_PAYLOAD);
}

static void bzimage_payload_bigger_than_init_size(void **state)
{
	struct guest_mem *gm = *state;
	struct kernel_image k;
	struct image im;

	good_bzimage(&im);
	bz_hdr(&im)->init_size = 0x10;
	assert_int_equal(load(gm, &im, im.size, &k), 0);
	assert_int_equal(k.end, 0x100000 + BZ_PAYLOAD);
}

/* A bzImage entered at startup_64 does not run where it was loaded: it relocates itself
 * to max(load address aligned up to kernel_alignment, LOAD_PHYSICAL_ADDR) and uses
 * init_size bytes from there (arch/x86/boot/compressed/head_64.S); LOAD_PHYSICAL_ADDR is
 * what the header calls pref_address. The initrd is placed above `end`, so `end` must
 * cover that window or the decompressor overwrites the initrd. */
static void bzimage_end_covers_relocated_kernel(void **state)
{
	struct guest_mem *gm = *state;
	struct kernel_image k;
	struct image im;

	good_bzimage(&im);
	bz_hdr(&im)->relocatable_kernel = 1;
	bz_hdr(&im)->kernel_alignment = 0x200000;
	bz_hdr(&im)->pref_address = 0x1000000; /* 16 MiB, the x86-64 default */
	assert_int_equal(load(gm, &im, im.size, &k), 0);
	assert_int_equal(k.entry64, 0x100200);
	assert_true(k.end >= 0x1000000 + BZ_INIT);
}

static void bzimage_relocated_kernel_beyond_ram(void **state)
{
	struct guest_mem *gm = *state;
	struct kernel_image k;
	struct image im;

	/* Fits from 1 MiB, not from 16 MiB. */
	good_bzimage(&im);
	bz_hdr(&im)->relocatable_kernel = 1;
	bz_hdr(&im)->kernel_alignment = 0x200000;
	bz_hdr(&im)->pref_address = 0x1000000;
	bz_hdr(&im)->init_size = TEST_RAM_SIZE - 0x1000000 + 0x1000;
	assert_int_equal(load(gm, &im, im.size, &k), -ENOMEM);
}

static void bzimage_malformed(void **state)
{
	struct guest_mem *gm = *state;
	struct kernel_image k;
	struct image im;

	good_bzimage(&im);
	/* Magic present but the setup header cut short. */
	assert_int_equal(load(gm, &im, BZ_HDR_SIZE - 1, &k), -EINVAL);
	assert_int_equal(load(gm, &im, 0x206, &k), -EINVAL);
	/* Setup only, no protected-mode code. */
	assert_int_equal(load(gm, &im, BZ_SETUP, &k), -EINVAL);
	good_bzimage(&im);
	bz_hdr(&im)->version = 0x020b;
	assert_int_equal(load(gm, &im, im.size, &k), -EINVAL);
	good_bzimage(&im);
	bz_hdr(&im)->xloadflags = 0;
	assert_int_equal(load(gm, &im, im.size, &k), -EINVAL);
	good_bzimage(&im);
	bz_hdr(&im)->setup_sects = 0xff; /* 128 KiB of setup in a 6.5 KiB file */
	assert_int_equal(load(gm, &im, im.size, &k), -EINVAL);
	good_bzimage(&im);
	bz_hdr(&im)->setup_sects = 12; /* (12 + 1) * 512 == the file size */
	assert_int_equal(load(gm, &im, im.size, &k), -EINVAL);
	assert_ram_untouched(gm);
}

static void bzimage_init_size_beyond_ram(void **state)
{
	struct guest_mem *gm = *state;
	struct kernel_image k;
	struct image im;

	good_bzimage(&im);
	bz_hdr(&im)->init_size = TEST_RAM_SIZE - 0x100000 + 1;
	assert_int_equal(load(gm, &im, im.size, &k), -ENOMEM);
	good_bzimage(&im);
	bz_hdr(&im)->init_size = 0xffffffff;
	assert_int_equal(load(gm, &im, im.size, &k), -ENOMEM);
	assert_ram_untouched(gm);
	/* Exactly up to the end of RAM fits. */
	good_bzimage(&im);
	bz_hdr(&im)->init_size = TEST_RAM_SIZE - 0x100000;
	assert_int_equal(load(gm, &im, im.size, &k), 0);
	assert_int_equal(k.end, TEST_RAM_SIZE);
}

static void bzimage_magic_needs_boot_flag(void **state)
{
	struct guest_mem *gm = *state;
	struct kernel_image k;
	struct image im;

	good_bzimage(&im);
	bz_hdr(&im)->boot_flag = 0x55aa;
	assert_int_equal(load(gm, &im, im.size, &k), -EINVAL);
	good_bzimage(&im);
	bz_hdr(&im)->header = 0x53726449;
	assert_int_equal(load(gm, &im, im.size, &k), -EINVAL);
	assert_ram_untouched(gm);
}

/* Anything else */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void empty_and_garbage_refused(void **state)
{
	struct guest_mem *gm = *state;
	struct kernel_image k;
	struct image im;

	memset(&im, 0, sizeof(im));
	assert_int_equal(load(gm, &im, 0, &k), -EINVAL);
	assert_int_equal(kernel_load(gm, NULL, 0, "empty", &k), -EINVAL);
	assert_int_equal(load(gm, &im, MAX_IMAGE, &k), -EINVAL);
	for (unsigned i = 0; i < 500; i++) {
		size_t size = rng() % MAX_IMAGE;

		for (size_t j = 0; j < size; j++)
			im.buf[j] = (uint8_t)rng();
		im.buf[0] = 'M';     /* never the ELF magic */
		im.buf[0x202] = 'X'; /* never "HdrS" */
		assert_int_equal(load(gm, &im, size, &k), -EINVAL);
	}
	assert_ram_untouched(gm);
}

/* Random corruption of valid images: whatever is accepted must lie inside guest RAM above
 * the boot area, and nothing may be read or written out of bounds (ASan). */
static void mutated_images_stay_in_bounds(void **state)
{
	struct guest_mem *gm = *state;
	struct kernel_image k;
	struct image im;

	for (unsigned i = 0; i < 3000; i++) {
		unsigned flips = 1 + rng() % 8;
		size_t size;

		if (i % 3 == 0)
			good_elf(&im);
		else if (i % 3 == 1)
			pvh_elf(&im);
		else
			good_bzimage(&im);
		/* Mostly the headers, where the offsets and sizes are. */
		for (unsigned f = 0; f < flips; f++) {
			size_t at = rng() % (i % 3 == 2 ? BZ_HDR_SIZE : 0x100);

			im.buf[at] = (uint8_t)rng();
		}
		size = rng() % 8 ? im.size : rng() % (im.size + 1);
		if (load(gm, &im, size, &k) == 0) {
			assert_true(k.start >= LAYOUT_HIGH_RAM);
			assert_true(k.end > k.start);
			assert_non_null(gm_ptr(gm, k.start, k.end - k.start));
		}
	}
}

#define RAM_TEST(f) cmocka_unit_test_setup_teardown(f, ram_setup, ram_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    RAM_TEST(elf_loads_segments_and_zeroes_bss),
	    RAM_TEST(elf_finds_pvh_note),
	    RAM_TEST(elf_pvh_note_with_4_byte_desc),
	    RAM_TEST(elf_skips_empty_and_other_segments),
	    RAM_TEST(elf_segment_at_end_of_ram),
	    RAM_TEST(elf_truncated_header),
	    RAM_TEST(elf_wrong_identity),
	    RAM_TEST(elf_bad_program_header_table),
	    RAM_TEST(elf_phoff_out_of_file),
	    RAM_TEST(elf_segment_outside_file),
	    RAM_TEST(elf_filesz_above_memsz),
	    RAM_TEST(elf_segment_below_1mib),
	    RAM_TEST(elf_segment_beyond_ram),
	    RAM_TEST(elf_entry_outside_image),
	    RAM_TEST(elf_pvh_entry_outside_image),
	    RAM_TEST(elf_nothing_to_load),
	    RAM_TEST(elf_note_sizes_past_segment),
	    RAM_TEST(elf_note_too_short),
	    RAM_TEST(elf_note_segment_outside_file),
	    RAM_TEST(bzimage_loads_at_1mib),
	    RAM_TEST(bzimage_setup_sects_zero_means_4),
	    RAM_TEST(bzimage_payload_bigger_than_init_size),
	    RAM_TEST(bzimage_end_covers_relocated_kernel),
	    RAM_TEST(bzimage_relocated_kernel_beyond_ram),
	    RAM_TEST(bzimage_malformed),
	    RAM_TEST(bzimage_init_size_beyond_ram),
	    RAM_TEST(bzimage_magic_needs_boot_flag),
	    RAM_TEST(empty_and_garbage_refused),
	    RAM_TEST(mutated_images_stay_in_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Kernel image loaders. Every offset and length read from the file is checked against the
 * file size, and every destination against guest RAM, before a byte is copied: a
 * malformed or truncated image is refused with a message that says what is wrong. */
#include <elf.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "base/log.h"
#include "vmm/kernel.h"
#include "vmm/layout.h"

#define ELF_MAX_PHDRS		 64
#define XEN_ELFNOTE_PHYS32_ENTRY 18

/* bzImage: the setup header starts at 0x1f1; 2.12 (0x20c) is the first version with the
 * 64-bit entry point flagged in xloadflags. */
#define BZ_SETUP_HEADER	  0x1f1
#define BZ_MIN_VERSION	  0x020c
#define BZ_MAGIC	  0x53726448 /* "HdrS" */
#define BZ_ENTRY64_OFFSET 0x200

static bool in_file(size_t size, uint64_t offset, uint64_t len)
{
	uint64_t end;

	return !__builtin_add_overflow(offset, len, &end) && end <= size;
}

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22 /* Linux 5.14 */
#endif

/* The image is a file mapping: fault in, in one call, the part about to be copied (a vmlinux
 * is twice the size of what it loads). Elsewhere (a buffer, an older host) a no-op: the copy
 * faults it in as it goes. */
static void populate_read(const uint8_t *src, size_t len)
{
	madvise_pages(src, len, MADV_POPULATE_READ);
}

/* Looks through one PT_NOTE segment for the PVH entry note. */
static void elf_find_pvh(const uint8_t *notes, uint64_t len, struct kernel_image *out)
{
	uint64_t pos = 0;

	while (len - pos >= sizeof(Elf64_Nhdr)) {
		Elf64_Nhdr nh;
		uint64_t name_len, desc_len, next;

		memcpy(&nh, notes + pos, sizeof(nh));
		name_len = ((uint64_t)nh.n_namesz + 3) & ~3ULL;
		desc_len = ((uint64_t)nh.n_descsz + 3) & ~3ULL;
		next = pos + sizeof(nh) + name_len + desc_len; /* no overflow: all < 2^34 */
		if (next > len)
			return;
		if (nh.n_type == XEN_ELFNOTE_PHYS32_ENTRY && nh.n_namesz == 4 &&
		    memcmp(notes + pos + sizeof(nh), "Xen", 4) == 0 && nh.n_descsz >= 4) {
			uint32_t entry;

			memcpy(&entry, notes + pos + sizeof(nh) + name_len, sizeof(entry));
			out->has_pvh = true;
			out->pvh_entry = entry;
			return;
		}
		pos = next;
	}
}

static int elf_load(struct guest_mem *gm, const uint8_t *image, size_t size, const char *name,
		    struct kernel_image *out)
{
	Elf64_Ehdr eh;
	uint64_t lowest = UINT64_MAX, highest = 0;

	if (size < sizeof(eh)) {
		log_err("kernel `%s`: truncated ELF header", name);
		return -EINVAL;
	}
	memcpy(&eh, image, sizeof(eh));
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh.e_machine != EM_X86_64) {
		log_err("kernel `%s`: not a 64-bit x86 ELF file", name);
		return -EINVAL;
	}
	if (eh.e_type != ET_EXEC) {
		log_err("kernel `%s`: ELF is not an executable (e_type %u)", name, eh.e_type);
		return -EINVAL;
	}
	if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > ELF_MAX_PHDRS ||
	    !in_file(size, eh.e_phoff, (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr))) {
		log_err("kernel `%s`: malformed ELF program headers", name);
		return -EINVAL;
	}

	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		uint8_t *dst;

		memcpy(&ph, image + eh.e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type == PT_NOTE) {
			if (!in_file(size, ph.p_offset, ph.p_filesz)) {
				log_err("kernel `%s`: ELF note segment %u lies outside the file",
					name, i);
				return -EINVAL;
			}
			elf_find_pvh(image + ph.p_offset, ph.p_filesz, out);
			continue;
		}
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		if (ph.p_filesz > ph.p_memsz || !in_file(size, ph.p_offset, ph.p_filesz)) {
			log_err("kernel `%s`: ELF segment %u lies outside the file (truncated?)",
				name, i);
			return -EINVAL;
		}
		if (ph.p_paddr < LAYOUT_HIGH_RAM) {
			log_err("kernel `%s`: ELF segment %u at 0x%llx overlaps the boot area "
				"below 1 MiB",
				name, i, (unsigned long long)ph.p_paddr);
			return -EINVAL;
		}
		dst = gm_ptr(gm, ph.p_paddr, ph.p_memsz);
		if (!dst) {
			log_err(
			    "kernel `%s`: ELF segment %u [0x%llx, +0x%llx) does not fit in guest "
			    "memory",
			    name, i, (unsigned long long)ph.p_paddr,
			    (unsigned long long)ph.p_memsz);
			return -ENOMEM;
		}
		gm_prefault(gm, ph.p_paddr, ph.p_memsz);
		populate_read(image + ph.p_offset, ph.p_filesz);
		memcpy(dst, image + ph.p_offset, ph.p_filesz);
		memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
		if (ph.p_paddr < lowest)
			lowest = ph.p_paddr;
		if (ph.p_paddr + ph.p_memsz > highest)
			highest = ph.p_paddr + ph.p_memsz;
	}
	if (highest == 0) {
		log_err("kernel `%s`: ELF has nothing to load", name);
		return -EINVAL;
	}
	out->kind = KERNEL_ELF;
	out->start = lowest;
	out->end = highest;
	out->entry64 = eh.e_entry;
	if (out->has_pvh && (out->pvh_entry < lowest || out->pvh_entry >= highest)) {
		log_err("kernel `%s`: PVH entry 0x%x is outside the loaded image", name,
			out->pvh_entry);
		return -EINVAL;
	}
	if (!out->has_pvh && (eh.e_entry < lowest || eh.e_entry >= highest)) {
		log_err("kernel `%s`: ELF entry 0x%llx is outside the loaded image", name,
			(unsigned long long)eh.e_entry);
		return -EINVAL;
	}
	return 0;
}

static int bzimage_load(struct guest_mem *gm, const uint8_t *image, size_t size, const char *name,
			struct kernel_image *out)
{
	struct setup_header hdr;
	uint64_t setup_size, payload, footprint, run;
	uint8_t *dst;

	if (!in_file(size, BZ_SETUP_HEADER, sizeof(hdr))) {
		log_err("kernel `%s`: too short to be a bzImage", name);
		return -EINVAL;
	}
	memcpy(&hdr, image + BZ_SETUP_HEADER, sizeof(hdr));
	if (hdr.version < BZ_MIN_VERSION) {
		log_err("kernel `%s`: boot protocol %u.%02u is too old (2.12 or later needed)",
			name, hdr.version >> 8, hdr.version & 0xff);
		return -EINVAL;
	}
	if (!(hdr.xloadflags & XLF_KERNEL_64)) {
		log_err("kernel `%s`: bzImage has no 64-bit entry point", name);
		return -EINVAL;
	}
	setup_size = ((uint64_t)(hdr.setup_sects ? hdr.setup_sects : 4) + 1) * 512;
	if (setup_size >= size) {
		log_err("kernel `%s`: bzImage is truncated (no protected-mode code)", name);
		return -EINVAL;
	}
	payload = size - setup_size;
	footprint = hdr.init_size > payload ? hdr.init_size : payload;
	dst = gm_ptr(gm, LAYOUT_BZIMAGE_LOAD, footprint);
	if (!dst) {
		log_err("kernel `%s`: needs %llu MiB at 1 MiB, more than guest memory holds", name,
			(unsigned long long)(footprint >> 20) + 1);
		return -ENOMEM;
	}
	/* Entered at startup_64, the kernel moves itself to where it runs: its load address
	 * aligned up to kernel_alignment (if relocatable), but no lower than pref_address,
	 * and uses init_size bytes from there. Nothing else may go in that range. */
	run = LAYOUT_BZIMAGE_LOAD;
	if (hdr.relocatable_kernel && hdr.kernel_alignment &&
	    !(hdr.kernel_alignment & (hdr.kernel_alignment - 1)))
		run = (run + hdr.kernel_alignment - 1) & ~((uint64_t)hdr.kernel_alignment - 1);
	if (hdr.pref_address > run)
		run = hdr.pref_address;
	if (!gm_ptr(gm, run, hdr.init_size)) {
		log_err(
		    "kernel `%s`: runs at 0x%llx and needs %u MiB there, more than guest memory "
		    "holds",
		    name, (unsigned long long)run, (hdr.init_size >> 20) + 1);
		return -ENOMEM;
	}
	gm_prefault(gm, LAYOUT_BZIMAGE_LOAD, payload);
	populate_read(image + setup_size, payload);
	memcpy(dst, image + setup_size, payload);
	out->kind = KERNEL_BZIMAGE;
	out->hdr = hdr;
	out->start = LAYOUT_BZIMAGE_LOAD;
	out->end = LAYOUT_BZIMAGE_LOAD + footprint;
	if (run + hdr.init_size > out->end)
		out->end = run + hdr.init_size;
	out->entry64 = LAYOUT_BZIMAGE_LOAD + BZ_ENTRY64_OFFSET;
	return 0;
}

int kernel_load(struct guest_mem *gm, const uint8_t *image, size_t size, const char *name,
		struct kernel_image *out)
{
	uint32_t magic;

	memset(out, 0, sizeof(*out));
	if (size >= SELFMAG && memcmp(image, ELFMAG, SELFMAG) == 0)
		return elf_load(gm, image, size, name, out);
	if (in_file(size, 0x202, sizeof(magic))) {
		uint16_t boot_flag;

		memcpy(&magic, image + 0x202, sizeof(magic));
		memcpy(&boot_flag, image + 0x1fe, sizeof(boot_flag));
		if (magic == BZ_MAGIC && boot_flag == 0xaa55)
			return bzimage_load(gm, image, size, name, out);
	}
	log_err("kernel `%s`: neither an ELF vmlinux nor a bzImage", name);
	return -EINVAL;
}

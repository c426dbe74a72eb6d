/* Tiny guest "kernels" for the local KVM smoke test (this machine's KVM cannot boot Linux).
 * Built as a PVH ELF (32-bit entry, found through the Xen note, -DPVH) or as a plain ELF
 * entered in 64-bit mode, and in three behaviours:
 *   default      write a line to the console (ttyS0), start the other vCPUs and write one
 *                line for each vCPU that checked in and one with their count (see smp_boot),
 *                report exit status 42 on clawvm's status port (1 if a vCPU is missing),
 *                pulse the i8042 reset line: what guest-init does
 *   -DPANIC      write a kernel-style panic line to the console and reset without
 *                reporting a status: what a panicking guest kernel does with panic=-1
 *   -DTRIPLE     load an empty IDT and trap: a triple fault
 * Code shared by both entries uses 32-bit registers and addresses below 4 GiB, which mean
 * the same in 32-bit protected mode (PVH: paging off) and in 64-bit mode (identity map). */
#define COM1 0x3f8
#define STATUS_PORT 0x600

#define LAPIC 0xfee00000 /* the local APIC, where the MP table says (vmm/layout.h) */
#define LAPIC_SVR 0xf0
#define LAPIC_SVR_ENABLE 0x100
#define LAPIC_ICR_LOW 0x300
#define LAPIC_ICR_HIGH 0x310
#define ICR_BUSY 0x1000
#define ICR_INIT_ASSERT 0xc500 /* INIT, level-triggered, assert */
#define ICR_INIT_DEASSERT 0x8500
#define ICR_STARTUP 0x600 /* SIPI; the vector is the start page number */

/* Where the APs start, in real mode: a page of guest RAM below 1 MiB that clawvm leaves free
 * (vmm/layout.h: nothing between the IDT at 0x520 and the PVH start info at 0x6000). ELF
 * segments may not lie below 1 MiB, so the BSP copies ap_start..ap_end there. */
#define TRAMPOLINE 0x1000
#define AP_CHECKED_IN (TRAMPOLINE + (ap_checked_in - ap_start))
#define AP_MASK (TRAMPOLINE + (ap_mask - ap_start))

#define MAX_CPUS 256 /* APIC IDs are 8 bits in the MP table */
#define MP_PROCESSOR 0
#define MP_PROCESSOR_LEN 20
#define MP_OTHER_LEN 8 /* every other entry type */
#define MP_CPU_ENABLED 1
#define MP_CPU_BOOT 2
/* The BSP waits for the APs at most 2^35 TSC ticks (10 to 20 s at 1.7 to 3.4 GHz). */
#define WAIT_TSC_HIGH 8

	.section .text
	.globl _start
#ifdef PVH
	.code32
#else
	.code64
#endif
_start:
#ifdef TRIPLE
	lidt empty_idt
	int3
#endif
	cli
	cld
	mov $stack_top, %esp /* PVH gives no stack; in 64-bit mode this zero-extends */
#ifdef PANIC
	lea msg, %esi
	call puts
#else
#ifndef PVH
	call map_lapic
#endif
	lea msg, %esi
	call puts
	call smp_boot
	mov status, %eax
	mov $STATUS_PORT, %dx
	outl %eax, %dx
#endif
	mov $0xfe, %al
	outb %al, $0x64
3:	hlt
	jmp 3b

/* puts: writes the NUL-terminated string at %esi to the console. Clobbers %eax, %edx, %esi. */
puts:
	mov $COM1, %dx
1:	movb (%esi), %al
	test %al, %al
	jz 2f
	outb %al, %dx
	inc %esi
	jmp 1b
2:	ret

#ifndef PANIC
/* putdec: writes %eax in decimal. Clobbers %eax, %ecx, %edx, %esi, %edi. */
putdec:
	lea digits_end, %edi
	mov $10, %ecx
1:	xor %edx, %edx
	div %ecx
	add $'0', %dl
	dec %edi
	movb %dl, (%edi)
	test %eax, %eax
	jnz 1b
	mov %edi, %esi
	jmp puts

#ifndef PVH
/* 64-bit entry: clawvm's page tables map the first GiB only. Maps the 2 MiB page that holds
 * the local APIC (uncached) through a page directory of our own for the fourth GiB, found
 * through CR3 (PML4[0] -> PDPT, its entry 3). */
map_lapic:
	lea lapic_pd, %rdi
	mov $(LAPIC | 0x9b), %eax /* P, RW, PWT, PCD, PS; zero-extended */
	mov %rax, ((LAPIC >> 21) & 511) * 8(%rdi)
	mov %cr3, %rax
	and $~0xfff, %rax
	mov (%rax), %rax
	and $~0xfff, %rax
	or $3, %rdi /* P, RW */
	mov %rdi, 3 * 8(%rax)
	mov %cr3, %rax
	mov %rax, %cr3
	ret
#endif

/* check_in: this CPU sets the bit of its initial APIC ID (CPUID leaf 1) in the mask and
 * counts itself in. Clobbers %eax, %ebx, %ecx, %edx. */
check_in:
	mov $1, %eax
	cpuid
	shr $24, %ebx
	lock btsl %ebx, AP_MASK
	lock incl AP_CHECKED_IN
	ret

/* send_ipi: ICR low %edx to APIC ID %eax, then waits (bounded) until the local APIC has
 * sent it. Clobbers %eax, %ecx, %edi. */
send_ipi:
	mov $LAPIC, %edi
	shl $24, %eax
	mov %eax, LAPIC_ICR_HIGH(%edi)
	mov %edx, LAPIC_ICR_LOW(%edi)
	mov $1000000, %ecx
1:	testl $ICR_BUSY, LAPIC_ICR_LOW(%edi)
	jz 2f
	pause
	loop 1b
2:	ret

/* mp_find: the MP floating pointer ("_MP_", on a 16-byte boundary) in [%esi, %edi); %esi
 * is 0 if there is none. */
mp_find:
1:	cmp %edi, %esi
	jae 2f
	cmpl $0x5f504d5f, (%esi)
	je 3f
	add $16, %esi
	jmp 1b
2:	xor %esi, %esi
3:	ret

/* mp_read: the enabled CPUs of the MP table, counted in mp_cpus, and the APIC IDs of the
 * APs among them in ap_ids (ap_count of them). clawvm writes the table in the last KB of
 * base memory (vmm/mptable.c); a BIOS (QEMU's, to try this there) in its ROM area. */
mp_read:
	mov $0x9fc00, %esi
	mov $0xa0000, %edi
	call mp_find
	test %esi, %esi
	jnz 1f
	mov $0xf0000, %esi
	mov $0x100000, %edi
	call mp_find
	test %esi, %esi
	jz 9f
1:	mov 4(%esi), %esi /* the configuration table */
	test %esi, %esi
	jz 9f
	cmpl $0x504d4350, (%esi) /* "PCMP" */
	jne 9f
	movzwl 34(%esi), %ecx /* entry count */
	add $44, %esi /* the first entry */
2:	test %ecx, %ecx
	jz 9f
	cmpb $MP_PROCESSOR, (%esi)
	jne 4f
	testb $MP_CPU_ENABLED, 3(%esi)
	jz 3f
	incl mp_cpus
	testb $MP_CPU_BOOT, 3(%esi)
	jnz 3f
	movzbl 1(%esi), %eax
	mov ap_count, %edx
	movb %al, ap_ids(%edx)
	incl ap_count
3:	add $MP_PROCESSOR_LEN, %esi
	dec %ecx
	jmp 2b
4:	add $MP_OTHER_LEN, %esi
	dec %ecx
	jmp 2b
9:	ret

/* smp_boot: under KVM every vCPU but the first waits for INIT and SIPI. The BSP reads the
 * MP table that clawvm wrote, sends each AP it lists INIT then SIPI (twice, as the MP
 * specification says; a running CPU ignores a SIPI) to the trampoline, and waits until
 * every CPU has checked in (check_in) or the time is up. Then it writes "cpu N up" for each
 * APIC ID N in the mask, lowest first, and "C cpus up" with their count. Sets status: 42,
 * or 1 if the table was not found or a CPU did not check in (and says so). */
smp_boot:
	call mp_read
	cmpl $0, mp_cpus
	jne 1f
	lea no_mp_msg, %esi
	call puts
	movl $1, status
	ret
1:	lea ap_start, %esi
	mov $TRAMPOLINE, %edi
	mov $(ap_end - ap_start), %ecx
	rep movsb
	mov $LAPIC, %edi
	orl $(LAPIC_SVR_ENABLE | 0xff), LAPIC_SVR(%edi) /* spurious vector 0xff */
	call check_in
	movl $0, ap_next
2:	mov ap_next, %ebx
	cmp ap_count, %ebx
	jae 3f
	movzbl ap_ids(%ebx), %eax
	mov $ICR_INIT_ASSERT, %edx
	call send_ipi
	movzbl ap_ids(%ebx), %eax
	mov $ICR_INIT_DEASSERT, %edx
	call send_ipi
	movzbl ap_ids(%ebx), %eax
	mov $(ICR_STARTUP | TRAMPOLINE >> 12), %edx
	call send_ipi
	movzbl ap_ids(%ebx), %eax
	mov $(ICR_STARTUP | TRAMPOLINE >> 12), %edx
	call send_ipi
	incl ap_next
	jmp 2b
3:	rdtsc
	add $WAIT_TSC_HIGH, %edx
	mov %edx, deadline
4:	mov AP_CHECKED_IN, %eax
	cmp mp_cpus, %eax
	jae 5f
	pause
	rdtsc
	cmp deadline, %edx
	jb 4b
5:	xor %ebx, %ebx /* APIC ID */
6:	bt %ebx, AP_MASK
	jnc 7f
	lea cpu_msg, %esi
	call puts
	mov %ebx, %eax
	call putdec
	lea up_msg, %esi
	call puts
	incl cpus_up
7:	inc %ebx
	cmp $MAX_CPUS, %ebx
	jb 6b
	mov AP_CHECKED_IN, %eax
	cmp mp_cpus, %eax
	jne 8f
	mov cpus_up, %eax
	call putdec
	lea cpus_up_msg, %esi
	cmpl $1, cpus_up
	jne 1f
	lea cpu_up_msg, %esi
1:	call puts
	movl $42, status
	ret
8:	lea only_msg, %esi
	call puts
	mov AP_CHECKED_IN, %eax
	call putdec
	lea of_msg, %esi
	call puts
	mov mp_cpus, %eax
	call putdec
	lea checked_in_msg, %esi
	call puts
	movl $1, status
	ret

/* The APs' start, copied to TRAMPOLINE: real mode, CS = TRAMPOLINE >> 4, offsets from
 * ap_start. Each AP checks in as the BSP did and halts for good. */
	.code16
	.p2align 6
ap_start:
	cli
	mov %cs, %ax
	mov %ax, %ds
	mov $1, %eax
	cpuid
	shr $24, %ebx
	lock btsl %ebx, ap_mask - ap_start
	lock incl ap_checked_in - ap_start
1:	hlt
	jmp 1b
	.p2align 2
ap_checked_in:
	.long 0
	.p2align 5 /* a locked bts stays inside one cache line */
ap_mask:
	.fill MAX_CPUS / 8, 1, 0
ap_end:
#endif

	.section .rodata
empty_idt:
	.word 0
	.quad 0
msg:
#if defined(PANIC)
	.asciz "[    0.1] Kernel panic - not syncing: smoke test\r\n"
#elif defined(PVH)
	.asciz "hello from a PVH payload\n"
#else
	.asciz "hello from a 64-bit payload\n"
#endif
#ifndef PANIC
no_mp_msg:
	.asciz "no MP table\n"
cpu_msg:
	.asciz "cpu "
up_msg:
	.asciz " up\n"
cpus_up_msg:
	.asciz " cpus up\n"
cpu_up_msg:
	.asciz " cpu up\n"
only_msg:
	.asciz "only "
of_msg:
	.asciz " of "
checked_in_msg:
	.asciz " cpus checked in\n"

	.section .data
	.p2align 2
status:
	.long 1
mp_cpus:
	.long 0
ap_count:
	.long 0
ap_next:
	.long 0
cpus_up:
	.long 0
deadline:
	.long 0
ap_ids:
	.fill MAX_CPUS, 1, 0
digits:
	.fill 10, 1, 0
digits_end:
	.byte 0
#endif

	.section .bss
#if !defined(PVH) && !defined(PANIC)
	.p2align 12
lapic_pd:
	.skip 4096
#endif
	.p2align 4
	.skip 4096
stack_top:

#ifdef PVH
	.section .note.Xen, "a", @note
	.p2align 2
	.long 4          /* name size */
	.long 4          /* desc size */
	.long 18         /* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.long _start
#endif

/* Tiny guest "kernels" for the local KVM smoke test (this machine's KVM cannot boot Linux).
 * Built as a PVH ELF (32-bit entry, found through the Xen note, -DPVH) or as a plain ELF
 * entered in 64-bit mode, and in three behaviours:
 *   default      write a line to the console (ttyS0), report exit status 42 on clawvm's
 *                status port, pulse the i8042 reset line: what guest-init does
 *   -DPANIC      write a kernel-style panic line to the console and reset without
 *                reporting a status: what a panicking guest kernel does with panic=-1
 *   -DTRIPLE     load an empty IDT and trap: a triple fault */
#define COM1 0x3f8
#define STATUS_PORT 0x600

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
	lea msg, %esi
	mov $COM1, %dx
1:	movb (%esi), %al
	test %al, %al
	jz 2f
	outb %al, %dx
	inc %esi
	jmp 1b
2:
#ifndef PANIC
	mov $42, %eax
	mov $STATUS_PORT, %dx
	outl %eax, %dx
#endif
	mov $0xfe, %al
	outb %al, $0x64
3:	hlt
	jmp 3b

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

#ifdef PVH
	.section .note.Xen, "a", @note
	.p2align 2
	.long 4          /* name size */
	.long 4          /* desc size */
	.long 18         /* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.long _start
#endif

/* vCPU threads: set-up of each vCPU (CPUID, LAPIC wiring, MSRs, boot registers) and the
 * KVM_RUN loop that dispatches exits. Nothing the guest does here may end the VMM other
 * than through the machine's stop callback. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/log.h"
#include "vmm/boot.h"
#include "vmm/cpuid.h"
#include "vmm/vcpu.h"

#define APIC_LVT0	 0x350
#define APIC_LVT1	 0x360
#define APIC_MODE_NMI	 0x4
#define APIC_MODE_EXTINT 0x7

#define MSR_IA32_MISC_ENABLE		 0x1a0
#define MSR_IA32_MISC_ENABLE_FAST_STRING 1ULL
#define MSR_MTRR_DEF_TYPE		 0x2ff
#define MTRR_ENABLE_WRITEBACK		 ((1ULL << 11) | 6)

static void vcpu_kick_handler(int sig)
{
	(void)sig; /* only here to interrupt KVM_RUN */
}

void vcpu_install_kick_handler(void)
{
	struct sigaction sa = {.sa_handler = vcpu_kick_handler};

	sigemptyset(&sa.sa_mask);
	sigaction(VCPU_KICK_SIGNAL, &sa, NULL);
}

static uint32_t lapic_reg(const struct kvm_lapic_state *s, unsigned reg)
{
	uint32_t v;

	memcpy(&v, s->regs + reg, sizeof(v));
	return v;
}

static void lapic_set_mode(struct kvm_lapic_state *s, unsigned reg, unsigned mode)
{
	uint32_t v = (lapic_reg(s, reg) & ~0x700u) | (mode << 8);

	memcpy(s->regs + reg, &v, sizeof(v));
}

/* LINT0 carries the PIC's interrupts (ExtINT) and LINT1 NMIs, as the MP table says. */
static int vcpu_setup_lapic(struct vcpu *v)
{
	struct kvm_lapic_state lapic;

	if (ioctl(v->fd, KVM_GET_LAPIC, &lapic) < 0)
		return -errno;
	lapic_set_mode(&lapic, APIC_LVT0, APIC_MODE_EXTINT);
	lapic_set_mode(&lapic, APIC_LVT1, APIC_MODE_NMI);
	if (ioctl(v->fd, KVM_SET_LAPIC, &lapic) < 0)
		return -errno;
	return 0;
}

static int vcpu_setup_cpuid(struct vcpu *v)
{
	const struct kvm_cpuid2 *base = v->m->kvm->cpuid;
	size_t size = sizeof(*base) + base->nent * sizeof(base->entries[0]);
	struct kvm_cpuid2 *c = malloc(size);
	int ret = 0;

	if (!c)
		return -ENOMEM;
	memcpy(c, base, size);
	/* The final count, not nr_vcpus: that one grows as the vCPUs are created. */
	cpuid_setup(c, v->index, v->m->cpus);
	if (ioctl(v->fd, KVM_SET_CPUID2, c) < 0)
		ret = -errno;
	free(c);
	return ret;
}

static void vcpu_setup_msrs(struct vcpu *v)
{
	static const struct kvm_msr_entry entries[] = {
	    {.index = MSR_IA32_MISC_ENABLE, .data = MSR_IA32_MISC_ENABLE_FAST_STRING},
	    {.index = MSR_MTRR_DEF_TYPE, .data = MTRR_ENABLE_WRITEBACK},
	};
	const unsigned count = sizeof(entries) / sizeof(entries[0]);
	struct kvm_msrs *msrs = calloc(1, sizeof(*msrs) + sizeof(entries));

	if (!msrs)
		return;
	msrs->nmsrs = count;
	memcpy(msrs->entries, entries, sizeof(entries));
	/* Nice to have, not needed to boot: a KVM that refuses them only gets a note. */
	if (ioctl(v->fd, KVM_SET_MSRS, msrs) != (int)count)
		log_debug("vcpu %u: KVM_SET_MSRS set fewer MSRs than asked", v->index);
	free(msrs);
}

int vcpu_create(const struct vcpu_machine *m, struct vcpu *v, unsigned index)
{
	void *run;
	int ret;

	v->m = m;
	v->index = index;
	v->started = 0;
	v->fd = ioctl(m->kvm->vm_fd, KVM_CREATE_VCPU, index);
	if (v->fd < 0) {
		log_err("vcpu %u: KVM_CREATE_VCPU: %m", index);
		return -errno;
	}
	run = mmap(NULL, m->kvm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (run == MAP_FAILED) {
		ret = -errno;
		log_err("vcpu %u: cannot map kvm_run: %m", index);
		goto err_close;
	}
	v->run = run;
	ret = vcpu_setup_cpuid(v);
	if (ret < 0) {
		log_err("vcpu %u: KVM_SET_CPUID2: %s", index, strerror(-ret));
		goto err_unmap;
	}
	ret = vcpu_setup_lapic(v);
	if (ret < 0) {
		log_err("vcpu %u: local APIC set-up: %s", index, strerror(-ret));
		goto err_unmap;
	}
	vcpu_setup_msrs(v);
	return 0;
err_unmap:
	munmap(v->run, m->kvm->run_size);
	v->run = NULL;
err_close:
	close(v->fd);
	v->fd = -1;
	return ret;
}

int vcpu_boot_setup(struct vcpu *v)
{
	struct kvm_fpu fpu = {.fcw = 0x37f, .mxcsr = 0x1f80}; /* the x86 reset values */
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
		goto err;
	boot_sregs(&sregs, v->m->kernel->has_pvh);
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0)
		goto err;
	boot_regs(&regs, v->m->kernel);
	if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0)
		goto err;
	if (ioctl(v->fd, KVM_SET_FPU, &fpu) < 0)
		goto err;
	return 0;
err:
	log_err("vcpu %u: setting boot registers: %m", v->index);
	return -errno;
}

static void vcpu_handle_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;

	for (uint32_t i = 0; i < run->io.count; i++) {
		iobus_access(v->m->io, run->io.port, run->io.size,
			     run->io.direction == KVM_EXIT_IO_OUT, data);
		data += run->io.size;
	}
}

/* Ends the VM, saying why (fmt NULL: nothing to say). */
__attribute__((format(printf, 3, 4))) static void vcpu_stop(struct vcpu *v, enum vcpu_stop why,
							    const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
	}
	v->m->stop(v->m->opaque, why, fmt ? msg : NULL);
}

/* The reset vector's rip, which is all KVM on AMD leaves after a shutdown: it reinitialises
 * the vCPU, so the faulting rip is gone. */
#define RESET_RIP 0xfff0

static void vcpu_report_triple_fault(struct vcpu *v)
{
	struct kvm_regs regs;
	char where[48] = "";

	if (ioctl(v->fd, KVM_GET_REGS, &regs) == 0 && regs.rip != RESET_RIP)
		snprintf(where, sizeof(where), ", rip 0x%llx", (unsigned long long)regs.rip);
	vcpu_stop(v, VCPU_STOP_TRIPLE_FAULT,
		  "the guest triple-faulted (vCPU %u%s): its kernel crashed before it could say "
		  "why; --console-log FILE --verbose may show more",
		  v->index, where);
}

/* Returns 0 to go on running, -1 when this vCPU is done. */
static int vcpu_handle_exit(struct vcpu *v)
{
	struct kvm_run *run = v->run;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		v->io_exits++;
		vcpu_handle_io(v);
		return 0;
	case KVM_EXIT_MMIO:
		v->mmio_exits++;
		if (run->mmio.len > sizeof(run->mmio.data))
			return 0;
		/* Where no device sits, reads see zeros and writes vanish. */
		if (!v->m->mmio(v->m->opaque, run->mmio.phys_addr, run->mmio.data, run->mmio.len,
				run->mmio.is_write) &&
		    !run->mmio.is_write)
			memset(run->mmio.data, 0, sizeof(run->mmio.data));
		return 0;
	case KVM_EXIT_INTR:
	case KVM_EXIT_HLT:
		return 0;
	case KVM_EXIT_SHUTDOWN:
		vcpu_report_triple_fault(v);
		return -1;
	case KVM_EXIT_SYSTEM_EVENT:
		vcpu_stop(v, VCPU_STOP_RESET, NULL);
		return -1;
	case KVM_EXIT_FAIL_ENTRY:
		vcpu_stop(v, VCPU_STOP_ERROR,
			  "KVM could not enter the guest on vCPU %u (hardware reason 0x%llx)",
			  v->index,
			  (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		return -1;
	case KVM_EXIT_INTERNAL_ERROR:
		vcpu_stop(v, VCPU_STOP_ERROR, "KVM internal error %u on vCPU %u",
			  run->internal.suberror, v->index);
		return -1;
	default:
		vcpu_stop(v, VCPU_STOP_ERROR, "unexpected KVM exit %u on vCPU %u", run->exit_reason,
			  v->index);
		return -1;
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	sigset_t kick;

	sigemptyset(&kick);
	sigaddset(&kick, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);

	while (!atomic_load(v->m->stopping)) {
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			vcpu_stop(v, VCPU_STOP_ERROR, "KVM_RUN on vCPU %u: %s", v->index,
				  strerror(errno));
			break;
		}
		if (vcpu_handle_exit(v) < 0)
			break;
	}
	return NULL;
}

int vcpu_start(struct vcpu *v)
{
	int ret = pthread_create(&v->thread, NULL, vcpu_thread, v);

	if (ret) {
		log_err("vcpu %u: cannot start its thread: %s", v->index, strerror(ret));
		return -ret;
	}
	v->started = 1;
	return 0;
}

void vcpu_kick(struct vcpu *v)
{
	if (!v->started)
		return;
	/* immediate_exit covers the window between the stopping check and KVM_RUN. */
	v->run->immediate_exit = 1;
	pthread_kill(v->thread, VCPU_KICK_SIGNAL);
}

void vcpu_destroy(struct vcpu *v)
{
	if (v->started) {
		pthread_join(v->thread, NULL);
		v->started = 0;
		log_debug("vcpu %u: %llu I/O exits, %llu MMIO exits", v->index,
			  (unsigned long long)v->io_exits, (unsigned long long)v->mmio_exits);
	}
	if (v->run)
		munmap(v->run, v->m->kvm->run_size);
	if (v->fd >= 0)
		close(v->fd);
	v->run = NULL;
	v->fd = -1;
}

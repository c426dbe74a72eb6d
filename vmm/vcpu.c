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
#include "vmm/seccomp.h"
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
	atomic_init(&v->io_exits, 0);
	atomic_init(&v->mmio_exits, 0);
	atomic_init(&v->hlt_exits, 0);
	atomic_init(&v->intr_exits, 0);
	atomic_init(&v->other_exits, 0);
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

/* One more exit of a kind. Only this vCPU's thread writes its counters: a relaxed load and
 * store, not a locked add, is enough for readers on other threads. */
static void vcpu_count(_Atomic uint64_t *counter)
{
	atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/* Returns 0 to go on running, -1 when this vCPU is done. */
static int vcpu_handle_exit(struct vcpu *v)
{
	struct kvm_run *run = v->run;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		vcpu_count(&v->io_exits);
		vcpu_handle_io(v);
		return 0;
	case KVM_EXIT_MMIO:
		vcpu_count(&v->mmio_exits);
		if (run->mmio.len > sizeof(run->mmio.data))
			return 0;
		/* Where no device sits, reads see zeros and writes vanish. */
		if (!v->m->mmio(v->m->opaque, run->mmio.phys_addr, run->mmio.data, run->mmio.len,
				run->mmio.is_write) &&
		    !run->mmio.is_write)
			memset(run->mmio.data, 0, sizeof(run->mmio.data));
		return 0;
	case KVM_EXIT_INTR:
		vcpu_count(&v->intr_exits);
		return 0;
	case KVM_EXIT_HLT:
		vcpu_count(&v->hlt_exits);
		return 0;
	}
	vcpu_count(&v->other_exits);
	switch (run->exit_reason) {
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

/* ---- pausing ------------------------------------------------------------------------------
 *
 * Who writes kvm_run's immediate_exit, and why no kick is lost:
 * - a pause sets `paused`, then immediate_exit, then sends the kick signal, to each thread,
 *   all under the park lock: a thread in KVM_RUN leaves it (the signal), a thread about to
 *   enter it returns at once (immediate_exit), a thread handling an exit sees `paused` at
 *   the top of its loop;
 * - the end sets `ended` under the lock (vcpu_park_end), then immediate_exit and the signal
 *   (vcpu_kick);
 * - a vCPU thread clears immediate_exit (or it could never enter the guest again after a
 *   resume) only under the lock and only before the end: when it parks, and when KVM_RUN
 *   said EINTR. A pause's kick after such a clear finds `paused` set for the thread's next
 *   look, or immediate_exit set for its next KVM_RUN; a clear after a pause's kick comes
 *   after that pause set `paused` (same lock), so the thread parks next. The end's kick is
 *   never cleared, and `stopping` is set before it anyway. */

void vcpu_park_init(struct vcpu_park *p)
{
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->changed, NULL);
	atomic_init(&p->paused, false);
	p->ended = false;
	p->parked = p->live = 0;
}

void vcpu_park_destroy(struct vcpu_park *p)
{
	pthread_cond_destroy(&p->changed);
	pthread_mutex_destroy(&p->lock);
}

/* The thread's KVM_RUN was interrupted: if by a pause's kick, immediate_exit must not stay
 * set for the runs after the resume (see above). */
static void vcpu_kicked(struct vcpu *v)
{
	struct vcpu_park *p = v->m->park;

	pthread_mutex_lock(&p->lock);
	if (!p->ended)
		v->run->immediate_exit = 0;
	pthread_mutex_unlock(&p->lock);
}

/* Parks the thread while the machine is paused; true if the VM ends. */
static bool vcpu_park_here(struct vcpu *v)
{
	struct vcpu_park *p = v->m->park;
	bool ended;

	pthread_mutex_lock(&p->lock);
	if (atomic_load(&p->paused) && !p->ended) {
		v->run->immediate_exit = 0;
		p->parked++;
		pthread_cond_broadcast(&p->changed);
		while (atomic_load(&p->paused) && !p->ended)
			pthread_cond_wait(&p->changed, &p->lock);
		p->parked--;
	}
	ended = p->ended;
	pthread_mutex_unlock(&p->lock);
	return ended;
}

int vcpu_pause_all(struct vcpu_park *p, struct vcpu *vcpus, unsigned n)
{
	int ret = 0;

	pthread_mutex_lock(&p->lock);
	if (p->ended) {
		ret = -ESRCH;
	} else if (atomic_load(&p->paused)) {
		ret = -EINVAL;
	} else {
		atomic_store(&p->paused, true);
		/* `started` is set under this lock, and cleared only after the end: the threads
		 * kicked here exist, and their kvm_run is mapped. */
		for (unsigned i = 0; i < n; i++) {
			if (vcpus[i].started) {
				vcpus[i].run->immediate_exit = 1;
				pthread_kill(vcpus[i].thread, VCPU_KICK_SIGNAL);
			}
		}
		/* A thread that ended on its own (a triple fault) is out of `live`. */
		while (atomic_load(&p->paused) && !p->ended && p->parked < p->live)
			pthread_cond_wait(&p->changed, &p->lock);
		if (p->ended)
			ret = -ESRCH;
		else if (!atomic_load(&p->paused))
			ret = -EINTR; /* resumed before every thread parked */
	}
	pthread_mutex_unlock(&p->lock);
	return ret;
}

int vcpu_resume_all(struct vcpu_park *p)
{
	int ret = 0;

	pthread_mutex_lock(&p->lock);
	if (p->ended) {
		ret = -ESRCH;
	} else if (!atomic_load(&p->paused)) {
		ret = -EINVAL;
	} else {
		atomic_store(&p->paused, false);
		pthread_cond_broadcast(&p->changed);
	}
	pthread_mutex_unlock(&p->lock);
	return ret;
}

bool vcpu_paused(struct vcpu_park *p)
{
	bool paused;

	pthread_mutex_lock(&p->lock);
	paused = atomic_load(&p->paused) && !p->ended;
	pthread_mutex_unlock(&p->lock);
	return paused;
}

void vcpu_park_end(struct vcpu_park *p)
{
	pthread_mutex_lock(&p->lock);
	p->ended = true;
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct vcpu_park *p = v->m->park;
	sigset_t kick;

	/* Before the first KVM_RUN: the guest never runs on an unfiltered thread. */
	if (v->m->seccomp && seccomp_install(SECCOMP_VCPU) < 0) {
		vcpu_stop(v, VCPU_STOP_ERROR, "vCPU %u: cannot install its seccomp filter",
			  v->index);
		goto out;
	}
	seccomp_selftest(SECCOMP_VCPU);
	sigemptyset(&kick);
	sigaddset(&kick, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);

	while (!atomic_load(v->m->stopping)) {
		/* Read without the lock first: a pause sets it before it kicks. */
		if (atomic_load(&p->paused) && vcpu_park_here(v))
			break;
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			int err = errno;

			if (err == EINTR)
				vcpu_kicked(v);
			if (err == EINTR || err == EAGAIN)
				continue;
			vcpu_stop(v, VCPU_STOP_ERROR, "KVM_RUN on vCPU %u: %s", v->index,
				  strerror(err));
			break;
		}
		if (vcpu_handle_exit(v) < 0)
			break;
	}
out:
	pthread_mutex_lock(&p->lock);
	p->live--;
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int vcpu_start(struct vcpu *v)
{
	struct vcpu_park *p = v->m->park;
	int ret;

	/* Counted live before it runs (it may end at once), and marked started under the
	 * lock, so that a pause kicks only threads that exist. */
	pthread_mutex_lock(&p->lock);
	p->live++;
	ret = pthread_create(&v->thread, NULL, vcpu_thread, v);
	if (ret)
		p->live--;
	else
		v->started = 1;
	pthread_mutex_unlock(&p->lock);
	if (ret) {
		log_err("vcpu %u: cannot start its thread: %s", v->index, strerror(ret));
		return -ret;
	}
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
			  (unsigned long long)atomic_load(&v->io_exits),
			  (unsigned long long)atomic_load(&v->mmio_exits));
	}
	if (v->run)
		munmap(v->run, v->m->kvm->run_size);
	if (v->fd >= 0)
		close(v->fd);
	v->run = NULL;
	v->fd = -1;
}

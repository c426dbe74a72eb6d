/* /dev/kvm and the VM fd. Errors here are the first thing a new user meets, so each names
 * the cause and what to do about it. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "base/log.h"
#include "vmm/kvm.h"
#include "vmm/layout.h"

/* Three pages just below the BIOS area for Intel's real-mode TSS and identity map. */
#define KVM_TSS_ADDR	      0xfffbd000ULL
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000ULL

static const struct {
	int cap;
	const char *name;
} kvm_required_caps[] = {
    {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},
    {KVM_CAP_PIT2, "KVM_CAP_PIT2"},
    {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
    {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
    {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
    {KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"},
    {KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING"},
};

int kvm_open_device(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd >= 0)
		return fd;
	if (errno == ENOENT)
		log_err("%s does not exist: this machine has no KVM (enable virtualization in the "
			"firmware, or load kvm_intel or kvm_amd)",
			path);
	else if (errno == EACCES || errno == EPERM)
		log_err("no permission to open %s: add your user to its group (usually `kvm`: "
			"sudo usermod -aG kvm $USER) and log in again",
			path);
	else
		log_err("cannot open %s: %m", path);
	return -1;
}

#define LEAF1_ECX_TSC_DEADLINE (1u << 24)

/* KVM emulates the LAPIC's TSC-deadline timer mode but leaves it out of its supported
 * CPUID (it depends on the in-kernel LAPIC, which the VMM chooses): announce it when KVM
 * says it has it. A deadline is one MSR write, where the one-shot timer's countdown is an
 * MMIO write KVM must decode. */
static void kvm_add_emulated_cpuid(struct kvm *k)
{
	if (ioctl(k->dev_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) <= 0)
		return;
	for (unsigned i = 0; i < k->cpuid->nent; i++) {
		if (k->cpuid->entries[i].function == 0x1)
			k->cpuid->entries[i].ecx |= LEAF1_ECX_TSC_DEADLINE;
	}
}

static int kvm_get_cpuid(struct kvm *k)
{
	for (unsigned nent = 128; nent <= 4096; nent *= 2) {
		struct kvm_cpuid2 *c =
		    calloc(1, sizeof(*c) + nent * sizeof(struct kvm_cpuid_entry2));

		if (!c)
			return -ENOMEM;
		c->nent = nent;
		if (ioctl(k->dev_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			k->cpuid = c;
			kvm_add_emulated_cpuid(k);
			return 0;
		}
		free(c);
		if (errno != E2BIG) {
			log_err("KVM_GET_SUPPORTED_CPUID: %m");
			return -errno;
		}
	}
	log_err("KVM_GET_SUPPORTED_CPUID: more than 4096 entries");
	return -E2BIG;
}

int kvm_open(struct kvm *k, const char *path, int fd, unsigned cpus)
{
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
	int version, max_cpus, run_size;

	k->vm_fd = -1;
	k->cpuid = NULL;
	k->dev_fd = fd >= 0 ? fd : kvm_open_device(path);
	if (k->dev_fd < 0)
		return -ENODEV;
	version = ioctl(k->dev_fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION) {
		log_err("%s speaks KVM API %d, clawvm needs %d", path, version, KVM_API_VERSION);
		goto err;
	}
	for (size_t i = 0; i < sizeof(kvm_required_caps) / sizeof(kvm_required_caps[0]); i++) {
		if (ioctl(k->dev_fd, KVM_CHECK_EXTENSION, kvm_required_caps[i].cap) <= 0) {
			log_err("this KVM lacks %s, which clawvm needs", kvm_required_caps[i].name);
			goto err;
		}
	}
	max_cpus = ioctl(k->dev_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (max_cpus <= 0)
		max_cpus = ioctl(k->dev_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (max_cpus > 0 && (unsigned)max_cpus < cpus) {
		log_err("this KVM runs at most %d vCPUs per VM; %u asked", max_cpus, cpus);
		goto err;
	}
	run_size = ioctl(k->dev_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (run_size <= 0) {
		log_err("KVM_GET_VCPU_MMAP_SIZE: %m");
		goto err;
	}
	k->run_size = (size_t)run_size;
	if (kvm_get_cpuid(k) < 0)
		goto err;

	do
		k->vm_fd = ioctl(k->dev_fd, KVM_CREATE_VM, 0);
	while (k->vm_fd < 0 && errno == EINTR);
	if (k->vm_fd < 0) {
		log_err("cannot create a KVM VM: %m");
		goto err;
	}
	if (ioctl(k->vm_fd, KVM_SET_TSS_ADDR, KVM_TSS_ADDR) < 0) {
		log_err("KVM_SET_TSS_ADDR: %m");
		goto err;
	}
	if (ioctl(k->dev_fd, KVM_CHECK_EXTENSION, KVM_CAP_SET_IDENTITY_MAP_ADDR) > 0) {
		uint64_t addr = KVM_IDENTITY_MAP_ADDR;

		if (ioctl(k->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &addr) < 0) {
			log_err("KVM_SET_IDENTITY_MAP_ADDR: %m");
			goto err;
		}
	}
	if (ioctl(k->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		log_err("KVM_CREATE_IRQCHIP: %m");
		goto err;
	}
	if (ioctl(k->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
		log_err("KVM_CREATE_PIT2: %m");
		goto err;
	}
	return 0;
err:
	kvm_close(k);
	return -ENODEV;
}

int kvm_set_memory(struct kvm *k, const struct guest_mem *gm)
{
	for (unsigned i = 0; i < gm->nr_regions; i++) {
		struct kvm_userspace_memory_region slot = {
		    .slot = i,
		    .guest_phys_addr = gm->regions[i].gpa,
		    .memory_size = gm->regions[i].size,
		    .userspace_addr = (uintptr_t)(gm->host + gm->regions[i].offset),
		};

		if (ioctl(k->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
			log_err("KVM_SET_USER_MEMORY_REGION (%llu MiB at 0x%llx): %m",
				(unsigned long long)(slot.memory_size >> 20),
				(unsigned long long)slot.guest_phys_addr);
			return -errno;
		}
	}
	return 0;
}

void kvm_irq_pulse(struct kvm *k, unsigned gsi)
{
	struct kvm_irq_level irq = {.irq = gsi, .level = 1};

	if (ioctl(k->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		log_warn("KVM_IRQ_LINE %u: %m", gsi);
	irq.level = 0;
	if (ioctl(k->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		log_warn("KVM_IRQ_LINE %u: %m", gsi);
}

void kvm_close(struct kvm *k)
{
	if (k->vm_fd >= 0)
		close(k->vm_fd);
	if (k->dev_fd >= 0)
		close(k->dev_fd);
	free(k->cpuid);
	k->vm_fd = k->dev_fd = -1;
	k->cpuid = NULL;
}

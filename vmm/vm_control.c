/* What the control API asks of a running VM (vm.h): pause and resume its vCPUs, its
 * counters and memory for `metrics`, its times. Called from the API's thread: only atomic
 * counters, the park's own lock and the devices' counter calls are touched. */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "vmm/vm.h"

int vm_pause(struct vm *vm)
{
	if (atomic_load(&vm->stopping))
		return -ESRCH;
	return vcpu_pause_all(&vm->park, vm->vcpus, vm->nr_vcpus);
}

int vm_resume(struct vm *vm)
{
	if (atomic_load(&vm->stopping))
		return -ESRCH;
	return vcpu_resume_all(&vm->park);
}

bool vm_paused(struct vm *vm)
{
	return vcpu_paused(&vm->park);
}

/* The VMM's resident memory in KiB: /proc/self/statm's second field, in pages. */
static uint64_t vm_rss_kib(void)
{
	unsigned long long size, resident = 0;
	FILE *f = fopen("/proc/self/statm", "re");

	if (!f)
		return 0;
	if (fscanf(f, "%llu %llu", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return resident * (uint64_t)sysconf(_SC_PAGESIZE) / 1024;
}

_Static_assert(CONTROL_METRICS_MAX_FS >= VM_MAX_SHARES + 1, "metrics hold every share");

void vm_metrics(struct vm *vm, struct control_metrics *m)
{
	struct vsock_counters vsock = {0};
	uint64_t touched = 0;

	*m = (struct control_metrics){0};
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		m->exits_io += atomic_load_explicit(&v->io_exits, memory_order_relaxed);
		m->exits_mmio += atomic_load_explicit(&v->mmio_exits, memory_order_relaxed);
		m->exits_hlt += atomic_load_explicit(&v->hlt_exits, memory_order_relaxed);
		m->exits_intr += atomic_load_explicit(&v->intr_exits, memory_order_relaxed);
		m->exits_other += atomic_load_explicit(&v->other_exits, memory_order_relaxed);
	}
	if (vm->vsock_ready)
		virtio_vsock_counters(&vm->vsock, &vsock);
	m->vsock_rx_packets = vsock.rx_packets;
	m->vsock_tx_packets = vsock.tx_packets;
	m->vsock_rx_bytes = vsock.rx_bytes;
	m->vsock_tx_bytes = vsock.tx_bytes;
	m->vsock_connections = vsock.connections;
	for (unsigned i = 0; i < vm->fs_ready && i < CONTROL_METRICS_MAX_FS; i++) {
		struct fuse_counters fs;

		virtio_fs_counters(&vm->fs[i], &fs);
		m->fs[i].tag = vm->fs_tags[i];
		m->fs[i].requests = fs.requests;
		m->fs[i].bytes_read = fs.bytes_read;
		m->fs[i].bytes_written = fs.bytes_written;
		m->nfs = i + 1;
	}
	m->rng_bytes = virtio_rng_bytes(&vm->rng);
	m->vmm_rss_kib = vm_rss_kib();
	if (vm->mem.host && gm_resident(&vm->mem, &touched) == 0)
		m->guest_rss_kib = touched / 1024;
}

unsigned vm_nr_vcpus(const struct vm *vm)
{
	return vm->nr_vcpus;
}

uint64_t vm_started_us(struct vm *vm)
{
	return atomic_load(&vm->started_us);
}

uint64_t vm_ready_us(struct vm *vm)
{
	return atomic_load(&vm->ready_us);
}

/* One microVM: built from a vm_config in one visible order (vm_create), run until the
 * guest resets or something ends it (vm_run), then torn down. */
#ifndef CLAWVM_VM_H
#define CLAWVM_VM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdint.h>

#include "base/evloop.h"
#include "base/fd_budget.h"
#include "api/control.h"
#include "base/guest_mem.h"
#include "virtio/fs.h"
#include "virtio/rng.h"
#include "virtio/vsock.h"
#include "vmm/console_log.h"
#include "vmm/devices.h"
#include "vmm/exec_queue.h"
#include "vmm/iobus.h"
#include "vmm/kernel.h"
#include "vmm/kvm.h"
#include "vmm/ports.h"
#include "vmm/uart.h"
#include "vmm/vcpu.h"
#include "vmm/vm_config.h"

#define VM_CONSOLE_TAIL 4096
/* After a SIGTERM or SIGHUP passed on to the command, `clawvm run` stops the sandbox this
 * much later if it has not ended (as `docker stop` does), whatever the guest does. */
#define VM_STOP_GRACE_MS 10000
/* Exec connections handed in (vm_exec_connect) and not yet passed to the guest: more are
 * refused. Past these, the vsock device's own cap on connections applies. */
#define VM_MAX_PENDING_EXECS EXECQ_MAX

enum vm_end {
	VM_END_NONE,
	VM_END_RESET,	     /* the guest rebooted: the normal end */
	VM_END_TRIPLE_FAULT, /* a vCPU shut down */
	VM_END_ERROR,	     /* KVM or the VMM failed */
	VM_END_SIGNAL,	     /* clawvm was told to stop */
};

struct vm {
	const struct vm_config *cfg;
	struct kvm kvm;
	struct guest_mem mem;
	struct kernel_image kernel;
	struct iobus io;
	struct uart console; /* ttyS0, kernel messages */
	struct i8042 kbd;
	struct status_port status;
	struct ready_port ready;
	struct vcpu_machine machine; /* what the vCPUs reach of the VM */
	struct vcpu_park park;	     /* where they wait while the VM is paused */
	unsigned nr_vcpus;
	struct vcpu vcpus[VM_MAX_VCPUS];
	struct evloop loop;
	struct fd_budget fds; /* what guest activity may hold open */
	struct devices devices;
	struct virtio_rng rng;
	struct virtio_vsock vsock;
	int vsock_ready;
	struct virtio_fs fs[VM_MAX_SHARES + 1]; /* the root first, if any */
	unsigned nfs, fs_ready;			/* shares; devices set up */
	/* Every share, the root ("/") first, with its tag, and as /clawvm/mounts records
	 * (guest_abi.h), NULL-terminated. */
	struct vm_share fs_shares[VM_MAX_SHARES + 1];
	char fs_tags[VM_MAX_SHARES + 1][24];
	char *mount_records[3 * (VM_MAX_SHARES + 1) + 1];
	/* cfg's egress ports as /clawvm/egress records (guest_abi.h), NULL-terminated. */
	char egress_ports[CLAWVM_EGRESS_MAX_PORTS][sizeof("65535")];
	char *egress_records[CLAWVM_EGRESS_MAX_PORTS + 1];
	struct ev_handler stop_handler;
	struct ev_handler ready_handler; /* ready.fd, an eventfd: guest-init listens */
	/* Exec connections (cfg->exec_fd first) until guest-init listens; then the loop passes
	 * each to the vsock device as it comes. */
	struct exec_queue execs;
	struct ev_handler exec_handler; /* execs.wake_fd */
	bool guest_ready;		/* on the loop's thread */
	struct ev_handler grace;	/* timerfd: vm_stop_later's time */
	atomic_int grace_signal;	/* the signal vm_stop_later was given, 0 before */
	atomic_uint grace_ms;		/* and its time */
	/* log_clock_us() when vm_run started the vCPUs, and when guest-init said it listens;
	 * 0 before. Read by any thread. */
	_Atomic uint64_t started_us, ready_us;

	atomic_int stopping;
	int stop_fd; /* eventfd: a vCPU thread ended the VM */
	pthread_mutex_t end_lock;
	enum vm_end end;
	int end_signal;
	char end_msg[512];

	struct console_log console_log;	    /* --console-log, fd -1 without */
	char console_tail[VM_CONSOLE_TAIL]; /* ring of the last console bytes */
	size_t console_pos;
	int console_wrapped;
};

__attribute__((warn_unused_result)) int vm_create(const struct vm_config *cfg, struct vm **out);
/* Runs the VM to its end; returns the exit status for clawvm (the command's, or 125). */
int vm_run(struct vm *vm);
void vm_destroy(struct vm *vm);

/* Ends the VM (first caller's reason wins) and wakes the main loop. Thread-safe. */
void vm_stop(struct vm *vm, enum vm_end why, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Ends the VM because of signal `signo`: clawvm exits with 128 + signo. Thread-safe. */
void vm_stop_signal(struct vm *vm, int signo);

/* Ends the VM `ms` milliseconds from now, as vm_stop_signal(signo) would, unless it ended
 * before: signal `signo` was passed on to the command, which may ignore it. The first call
 * counts (later ones change neither the time nor the signal). Thread-safe. */
void vm_stop_later(struct vm *vm, int signo, unsigned ms);

/* The functions below are for the control API's thread, while vm_run runs on another (or
 * before it, or after it returned, until vm_destroy). All are thread-safe. */

/* Returns once every vCPU thread has left KVM_RUN and waits (a vCPU started later waits
 * before its first run): 0; -EINVAL if already paused; -ESRCH once the VM is stopping
 * (also if it began to while this waited). Devices go on (the event loop runs): only the
 * guest's CPUs stop. */
__attribute__((warn_unused_result)) int vm_pause(struct vm *vm);
/* Lets the vCPUs go on: 0; -EINVAL if not paused; -ESRCH once the VM is stopping. A stop
 * while paused needs no resume: it ends vm_run as promptly as ever. */
__attribute__((warn_unused_result)) int vm_resume(struct vm *vm);
bool vm_paused(struct vm *vm);

/* Hands `fd` (the host end of a connected AF_UNIX stream socket, nonblocking), which the VM
 * takes whatever happens (closed on failure), to the guest's CLAWVM_EXEC_PORT as a host
 * connection once guest-init listens there: at once if it does already. 0; -EBUSY with
 * VM_MAX_PENDING_EXECS waiting; -ESRCH once the VM is stopping. After 0, what went wrong
 * later (the device's connection cap, the VM's end) the peer sees as EOF. */
__attribute__((warn_unused_result)) int vm_exec_connect(struct vm *vm, int fd);

/* The counters the control API's `metrics` reports. */
void vm_metrics(struct vm *vm, struct control_metrics *m);
/* How many vCPUs the VM has. */
unsigned vm_nr_vcpus(const struct vm *vm);
/* log_clock_us() when vm_run started the vCPUs, and when guest-init became ready (its exec
 * channel listens); 0 before. */
uint64_t vm_started_us(struct vm *vm);
uint64_t vm_ready_us(struct vm *vm);

#endif

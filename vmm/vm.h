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
#include "base/guest_mem.h"
#include "virtio/fs.h"
#include "virtio/rng.h"
#include "virtio/vsock.h"
#include "vmm/console_log.h"
#include "vmm/devices.h"
#include "vmm/iobus.h"
#include "vmm/kernel.h"
#include "vmm/kvm.h"
#include "vmm/ports.h"
#include "vmm/uart.h"
#include "vmm/vcpu.h"
#include "vmm/vm_config.h"

#define VM_CONSOLE_TAIL 4096
/* After a SIGTERM or SIGHUP passed on to the command, the sandbox is stopped this much later
 * if it has not ended (as `docker stop` does), whatever the guest does. */
#define VM_STOP_GRACE_MS 10000

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
	struct ev_handler stop_handler;
	struct ev_handler ready_handler; /* ready.fd, an eventfd: guest-init listens */
	int exec_fd;			 /* cfg->exec_fd until it goes to the device */
	struct ev_handler grace;	 /* timerfd: vm_stop_later's time */
	atomic_int grace_signal;	 /* the signal vm_stop_later was given, 0 before */

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

/* Ends the VM VM_STOP_GRACE_MS from now, as vm_stop_signal(signo) would, unless it ended
 * before: signal `signo` was passed on to the command, which may ignore it. The first call
 * counts. Thread-safe. */
void vm_stop_later(struct vm *vm, int signo);

#endif

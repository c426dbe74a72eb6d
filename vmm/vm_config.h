/* What a microVM is made of, as the CLI (or, later, the API) fills it in and vm_create
 * (vm.h) builds it: plain values and their limits, nothing of the machine itself. */
#ifndef CLAWVM_VM_CONFIG_H
#define CLAWVM_VM_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "api/guest_abi.h"

#define VM_MAX_VCPUS  32
#define VM_MAX_SHARES 8 /* -v shares, besides the root */

/* The guest's vsock CID unless told otherwise (2 is the host's). */
#define VSOCK_DEFAULT_GUEST_CID 3

/* clawvm's own failures exit with this status, as docker's do, apart from 0-124 that a
 * command may return and 126-255 that shells give for "cannot run" and signals. */
#define VM_EXIT_FAILURE 125

/* A host directory shared with the guest over virtio-fs. */
struct vm_share {
	const char *host;  /* an existing directory */
	const char *guest; /* absolute path in the guest, "/" for the root */
	bool read_only;
};

struct vm_config {
	const char *kvm_path; /* /dev/kvm */
	int kvm_fd;	      /* -1, or kvm_path already open (the jail opens it before it drops
				 its user), which vm_create takes */
	unsigned cpus;
	uint64_t mem_mib;
	const char *kernel_path;
	const char *initrd_path;
	const char *console_log; /* NULL: console only kept for error messages */
	int verbose;
	uint64_t vsock_cid;    /* the guest's vsock CID */
	const char *vsock_uds; /* hybrid vsock host socket, or NULL */
	int exec_fd;	       /* -1, or a connected stream socket, which vm_create takes
				(closed by vm_destroy, also when vm_create fails): when
				guest-init's exec channel listens (CLAWVM_READY_PORT), it
				becomes a host connection to the guest's CLAWVM_EXEC_PORT */
	int ready_fd;	       /* -1, or an eventfd the VM adds 1 to once that is done */
	const char *cmdline;   /* extra kernel command-line words after clawvm's own, or NULL */
	const char *rootfs;    /* the guest root as a read-only share; NULL: the initramfs */
	struct vm_share shares[VM_MAX_SHARES];
	unsigned nshares;
	/* Host ports the guest reaches as TCP 127.0.0.1:P (CLAWVM_EGRESS_PATH): 1 to 65535,
	 * none twice (vm_create refuses others). */
	uint16_t egress_ports[CLAWVM_EGRESS_MAX_PORTS];
	unsigned negress_ports;
	bool seccomp; /* each thread under its allowlist (vmm/seccomp.h); off: --no-jail */
};

#endif

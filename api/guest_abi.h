/* The contract between the VMM and guest-init, the only two parties that speak it.
 * Written down for people in api/guest-abi.md. */
#ifndef CLAWVM_GUEST_ABI_H
#define CLAWVM_GUEST_ABI_H

/* guest-init writes the command's exit status here with a 32-bit `outl`, just before it
 * reboots the guest: 0-255 as a shell reports it (128+N when signal N killed it). The VMM
 * exits with that status once the guest resets. Four ports wide so that `outl` fits. */
#define CLAWVM_STATUS_PORT     0x0600
#define CLAWVM_STATUS_PORT_LEN 4

/* The shared folders to mount (virtio-fs): a file in the initramfs that the VMM appends,
 * as a second newc cpio archive, after the guest image. One record per share, in mount
 * order, each three NUL-terminated strings: the virtio-fs tag, the absolute guest
 * path, and "ro" or "rw". A record for "/" is the root: guest-init mounts it read-only
 * under an overlay whose upper layer is tmpfs and switches into it before any other. */
#define CLAWVM_MOUNTS_PATH "/clawvm/mounts"

/* The host ports the guest may reach (egress): a file in the same appended archive as
 * CLAWVM_MOUNTS_PATH, there only when the VM has at least one. One record per port, each a
 * single NUL-terminated decimal string from 1 to 65535 without leading zeros, no port twice,
 * at most CLAWVM_EGRESS_MAX_PORTS records. For each port P guest-init listens on TCP
 * 127.0.0.1:P and carries every connection accepted there, byte for byte, to the host as a
 * vsock connection to CID 2 (VMADDR_CID_HOST), port P. The guest has no network device. */
#define CLAWVM_EGRESS_PATH	"/clawvm/egress"
#define CLAWVM_EGRESS_MAX_PORTS 16

/* The vsock port guest-init listens on for the exec channel (api/exec.md): one connection
 * runs one command. It is the only way a command reaches the guest. */
#define CLAWVM_EXEC_PORT 1024

/* guest-init writes 1 here with one 8-bit `outb` once it listens on CLAWVM_EXEC_PORT, so
 * that the VMM connects the command's session at once rather than polling while the guest
 * boots (each refused attempt is a vsock round trip through the booting guest). */
#define CLAWVM_READY_PORT  0x0604
#define CLAWVM_READY_VALUE 1

/* Exit statuses guest-init uses for its own failures, as shells do. */
#define CLAWVM_EXIT_NOT_EXECUTABLE 126
#define CLAWVM_EXIT_NOT_FOUND	   127
/* guest-init could not set up or start the command (details on the console, ttyS0). */
#define CLAWVM_EXIT_INIT_FAILED 125

#endif

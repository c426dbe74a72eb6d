/* The small port devices a PC guest expects or clawvm's guest-init uses: the i8042 reset
 * line (how Linux reboots with reboot=k), the POST code port, and the exit-status and ready
 * ports. */
#ifndef CLAWVM_PORTS_H
#define CLAWVM_PORTS_H

#include <stdatomic.h>

#include "vmm/iobus.h"

#define I8042_DATA_PORT	   0x60
#define I8042_COMMAND_PORT 0x64
#define POST_PORT	   0x80

struct i8042 {
	void (*reset)(void *opaque); /* the guest pulsed the CPU reset line */
	void *opaque;
};
/* Claims 0x60-0x64 (the keyboard controller's data and command ports). */
extern const struct io_device_ops i8042_ops;

/* Writes to the POST diagnostic port (Linux uses it as an I/O delay): ignored. */
extern const struct io_device_ops post_port_ops;

struct status_port {
	atomic_int status; /* -1 until guest-init reports */
};
extern const struct io_device_ops status_port_ops;

/* guest-init's "the exec channel listens" (CLAWVM_READY_PORT): adds 1 to the eventfd. */
struct ready_port {
	int fd; /* -1: nobody waits for it */
};
extern const struct io_device_ops ready_port_ops;

#endif

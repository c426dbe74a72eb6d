/* Port I/O dispatch: which device answers which x86 I/O port. Reads nobody answers return
 * all ones (an empty ISA bus), writes nobody answers are dropped. */
#ifndef CLAWVM_IOBUS_H
#define CLAWVM_IOBUS_H

#include <stdint.h>

#define IOBUS_MAX_DEVICES 8

struct io_device_ops {
	uint32_t (*read)(void *opaque, uint16_t offset, unsigned size);
	void (*write)(void *opaque, uint16_t offset, unsigned size, uint32_t value);
};

struct iobus {
	unsigned count;
	struct {
		uint16_t base, len;
		const struct io_device_ops *ops;
		void *opaque;
	} dev[IOBUS_MAX_DEVICES];
};

/* Claims [base, base+len); -EBUSY if it overlaps a claimed range, -ENOSPC if full. */
__attribute__((warn_unused_result)) int iobus_add(struct iobus *bus, uint16_t base, uint16_t len,
						  const struct io_device_ops *ops, void *opaque);

/* One access of `size` bytes (1, 2 or 4) at `port`; `data` is KVM's little-endian buffer. */
void iobus_access(const struct iobus *bus, uint16_t port, unsigned size, int is_write,
		  uint8_t *data);

#endif

/* i8042 reset, POST port, exit-status and ready ports. */
#include <stdint.h>
#include <unistd.h>

#include "api/guest_abi.h"
#include "base/log.h"
#include "vmm/ports.h"

#define I8042_CMD_RESET 0xfe

static uint32_t i8042_read(void *opaque, uint16_t offset, unsigned size)
{
	(void)opaque;
	(void)offset;
	(void)size;
	/* Status 0: output buffer empty, input buffer empty, so the kernel's reset path
	 * (which waits for "input buffer empty") goes on at once. */
	return 0;
}

static void i8042_write(void *opaque, uint16_t offset, unsigned size, uint32_t value)
{
	struct i8042 *kbd = opaque;

	(void)size;
	if (offset == I8042_COMMAND_PORT - I8042_DATA_PORT && (value & 0xff) == I8042_CMD_RESET)
		kbd->reset(kbd->opaque);
}

const struct io_device_ops i8042_ops = {.read = i8042_read, .write = i8042_write};

static uint32_t post_read(void *opaque, uint16_t offset, unsigned size)
{
	(void)opaque;
	(void)offset;
	(void)size;
	return 0;
}

static void post_write(void *opaque, uint16_t offset, unsigned size, uint32_t value)
{
	(void)opaque;
	(void)offset;
	(void)size;
	(void)value;
}

const struct io_device_ops post_port_ops = {.read = post_read, .write = post_write};

static uint32_t status_read(void *opaque, uint16_t offset, unsigned size)
{
	(void)opaque;
	(void)offset;
	(void)size;
	return 0xffffffff;
}

static void status_write(void *opaque, uint16_t offset, unsigned size, uint32_t value)
{
	struct status_port *sp = opaque;

	if (offset != 0 || size != 4 || value > 255) {
		log_debug("status port: ignored write of %u bytes at +%u (0x%x)", size, offset,
			  value);
		return;
	}
	atomic_store(&sp->status, (int)value);
}

const struct io_device_ops status_port_ops = {.read = status_read, .write = status_write};

static void ready_write(void *opaque, uint16_t offset, unsigned size, uint32_t value)
{
	struct ready_port *rp = opaque;
	uint64_t one = 1;

	if (offset != 0 || size != 1 || value != CLAWVM_READY_VALUE) {
		log_debug("ready port: ignored write of %u bytes at +%u (0x%x)", size, offset,
			  value);
		return;
	}
	/* An eventfd only fails to count past 2^64 - 2: the waiter is woken either way. */
	if (rp->fd >= 0 && write(rp->fd, &one, sizeof(one)) < 0)
		log_debug("ready port: %m");
}

const struct io_device_ops ready_port_ops = {.read = status_read, .write = ready_write};

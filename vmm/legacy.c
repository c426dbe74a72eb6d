/* i8042 reset, POST port, exit-status port. */
#include "clawvm/guest_abi.h"
#include "vmm/legacy.h"
#include "vmm/log.h"

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

/* Port I/O dispatch, a short linear list: a VM has a handful of port devices. */
#include <errno.h>
#include <string.h>

#include "vmm/iobus.h"

int iobus_add(struct iobus *bus, uint16_t base, uint16_t len, const struct io_device_ops *ops,
	      void *opaque)
{
	if (len == 0 || (uint32_t)base + len > 0x10000)
		return -EINVAL;
	for (unsigned i = 0; i < bus->count; i++) {
		if (base < bus->dev[i].base + bus->dev[i].len && bus->dev[i].base < base + len)
			return -EBUSY;
	}
	if (bus->count == IOBUS_MAX_DEVICES)
		return -ENOSPC;
	bus->dev[bus->count].base = base;
	bus->dev[bus->count].len = len;
	bus->dev[bus->count].ops = ops;
	bus->dev[bus->count].opaque = opaque;
	bus->count++;
	return 0;
}

void iobus_access(const struct iobus *bus, uint16_t port, unsigned size, int is_write,
		  uint8_t *data)
{
	uint32_t value = 0;

	if (size != 1 && size != 2 && size != 4)
		return;
	for (unsigned i = 0; i < bus->count; i++) {
		uint16_t offset = port - bus->dev[i].base;

		if (port < bus->dev[i].base || (uint32_t)offset + size > bus->dev[i].len)
			continue;
		if (is_write) {
			memcpy(&value, data, size);
			bus->dev[i].ops->write(bus->dev[i].opaque, offset, size, value);
		} else {
			value = bus->dev[i].ops->read(bus->dev[i].opaque, offset, size);
			memcpy(data, &value, size);
		}
		return;
	}
	if (!is_write)
		memset(data, 0xff, size);
}

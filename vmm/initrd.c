/* newc cpio writer, just enough for the directory clawvm/ and the files in it. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "api/guest_abi.h"
#include "vmm/initrd.h"

#define NEWC_HEADER 110
#define ALIGN4(x)   (((x) + 3) & ~(size_t)3)

static size_t strings_bytes(char *const strings[])
{
	size_t n = 0;

	for (size_t i = 0; strings[i]; i++)
		n += strlen(strings[i]) + 1;
	return n;
}

static size_t entry_size(const char *name, size_t data_len)
{
	return ALIGN4(NEWC_HEADER + strlen(name) + 1) + ALIGN4(data_len);
}

size_t initrd_archive_size(const struct initrd_file *files, unsigned count)
{
	size_t size = entry_size("clawvm", 0) + entry_size("TRAILER!!!", 0);

	for (unsigned i = 0; i < count; i++)
		size += entry_size(files[i].name, strings_bytes(files[i].strings));
	return size;
}

/* One entry's header and name, padded; its data follows, then pad4(). */
static uint8_t *put_header(uint8_t *p, unsigned ino, unsigned mode, const char *name,
			   size_t data_len)
{
	size_t name_len = strlen(name) + 1;
	char header[NEWC_HEADER + 1];

	snprintf(header, sizeof(header),
		 "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", ino, mode, 0, 0,
		 mode & S_IFDIR ? 2 : 1, 0, (unsigned)data_len, 0, 0, 0, 0, (unsigned)name_len, 0);
	memcpy(p, header, NEWC_HEADER);
	memcpy(p + NEWC_HEADER, name, name_len);
	memset(p + NEWC_HEADER + name_len, 0,
	       ALIGN4(NEWC_HEADER + name_len) - NEWC_HEADER - name_len);
	return p + ALIGN4(NEWC_HEADER + name_len);
}

static uint8_t *pad4(uint8_t *start, uint8_t *p)
{
	while ((size_t)(p - start) % 4)
		*p++ = 0;
	return p;
}

size_t initrd_archive(uint8_t *dst, size_t cap, const struct initrd_file *files, unsigned count)
{
	size_t need = initrd_archive_size(files, count);
	uint8_t *p = dst;

	if (cap < need)
		return 0;
	for (unsigned i = 0; i < count; i++) {
		if (strings_bytes(files[i].strings) > 0xffffffffu)
			return 0;
	}
	p = put_header(p, 1, S_IFDIR | 0755, "clawvm", 0);
	for (unsigned i = 0; i < count; i++) {
		char *const *strings = files[i].strings;
		uint8_t *data;

		p = put_header(p, 2 + i, S_IFREG | 0444, files[i].name, strings_bytes(strings));
		data = p;
		for (size_t j = 0; strings[j]; j++) {
			size_t len = strlen(strings[j]) + 1;

			memcpy(p, strings[j], len);
			p += len;
		}
		p = pad4(data, p);
	}
	p = put_header(p, 0, 0, "TRAILER!!!", 0);
	return (size_t)(p - dst);
}

/* The guest console log, capped by rotation (see console_log.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "vmm/console_log.h"

int console_log_open(struct console_log *log, const char *path, uint64_t max)
{
	*log = (struct console_log){.path = path, .max = max};
	log->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (log->fd < 0) {
		int err = errno;

		log_err("--console-log `%s`: %s", path, strerror(err));
		return -err;
	}
	return 0;
}

/* FILE -> FILE.1, and a new FILE. If FILE.1 cannot be named, the file starts over. */
static void console_log_rotate(struct console_log *log)
{
	char old[PATH_MAX];
	int fd;

	if (snprintf(old, sizeof(old), "%s.1", log->path) >= (int)sizeof(old) ||
	    rename(log->path, old) < 0) {
		if (ftruncate(log->fd, 0) == 0 && lseek(log->fd, 0, SEEK_SET) == 0) {
			log->bytes = 0;
			return;
		}
	}
	fd = open(log->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		log_warn("--console-log `%s`: cannot start a new file: %m; the rest is not kept",
			 log->path);
	close(log->fd);
	log->fd = fd;
	log->bytes = 0;
}

void console_log_write(struct console_log *log, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len && log->fd >= 0) {
		size_t chunk = len;
		ssize_t n;

		if (log->bytes >= log->max)
			console_log_rotate(log);
		if (log->fd < 0)
			return;
		if (chunk > log->max - log->bytes)
			chunk = (size_t)(log->max - log->bytes);
		n = write(log->fd, p, chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* a full disk: drop it, the guest must not wait for us */
		p += n;
		len -= (size_t)n;
		log->bytes += (uint64_t)n;
	}
}

void console_log_close(struct console_log *log)
{
	if (log->fd >= 0)
		close(log->fd);
	log->fd = -1;
}

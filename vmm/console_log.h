/* --console-log FILE: the guest kernel's console, written as the guest prints it, with a
 * cap, because the guest decides how much it prints. At CONSOLE_LOG_MAX bytes FILE moves to
 * FILE.1 (replacing an older one) and a new FILE starts: the host keeps the last 16 to 32
 * MiB of console, never more. */
#ifndef CLAWVM_CONSOLE_LOG_H
#define CLAWVM_CONSOLE_LOG_H

#include <stdint.h>

#define CONSOLE_LOG_MAX (16u << 20)

struct console_log {
	int fd; /* -1: no log, or it could not be reopened after a rotation */
	const char *path;
	uint64_t bytes, max; /* written to the current file; the cap */
};

/* Creates (truncates) `path`; -errno after logging a line that names it. */
__attribute__((warn_unused_result)) int console_log_open(struct console_log *log, const char *path,
							 uint64_t max);
/* Appends guest output; rotates at the cap. Never blocks on anything but the file. */
void console_log_write(struct console_log *log, const void *buf, size_t len);
void console_log_close(struct console_log *log);

#endif

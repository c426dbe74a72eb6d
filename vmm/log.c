/* The one logger. Messages go to stderr as one write each, so that lines from vCPU threads
 * do not interleave. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "vmm/log.h"

enum log_level log_max_level = LOG_WARN;

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *const prefix[] = {"error: ", "warning: ", "", "debug: "};
	char line[1024];
	int saved_errno = errno;
	va_list ap;
	int len;

	if (level > log_max_level) {
		errno = saved_errno;
		return;
	}
	len = snprintf(line, sizeof(line), "clawvm: %s", prefix[level]);
	va_start(ap, fmt);
	len += vsnprintf(line + len, sizeof(line) - len - 1, fmt, ap);
	va_end(ap);
	if (len > (int)sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	if (write(STDERR_FILENO, line, len) < 0) {
		/* Nowhere left to report it. */
	}
	errno = saved_errno;
}

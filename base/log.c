/* The one logger. Messages go to stderr as one write each, so that lines from vCPU threads
 * do not interleave. Debug lines carry the milliseconds since start-up: with --verbose they
 * are the timeline of a boot. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"

enum log_level log_max_level = LOG_WARN;

static uint64_t start_us;

uint64_t log_clock_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

__attribute__((constructor)) static void log_start(void)
{
	start_us = log_clock_us();
}

/* The thread's last error line, without its prefix (log_last_error). */
static __thread char last_error[512];

const char *log_last_error(void)
{
	return last_error[0] ? last_error : "no reason logged";
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *const prefix[] = {"error: ", "warning: ", ""};
	char line[1024];
	int saved_errno = errno;
	va_list ap;
	int len;

	if (level > log_max_level) {
		errno = saved_errno;
		return;
	}
	if (level == LOG_DEBUG)
		len = snprintf(line, sizeof(line), "clawvm: debug: +%llu ms: ",
			       (unsigned long long)(log_clock_us() - start_us) / 1000);
	else
		len = snprintf(line, sizeof(line), "clawvm: %s", prefix[level]);
	va_start(ap, fmt);
	len += vsnprintf(line + len, sizeof(line) - len - 1, fmt, ap);
	va_end(ap);
	if (level == LOG_ERR) {
		size_t from = strlen("clawvm: error: "), n = strlen(line + from);

		if (n >= sizeof(last_error))
			n = sizeof(last_error) - 1;
		memcpy(last_error, line + from, n);
		last_error[n] = '\0';
	}
	if (len > (int)sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	if (write(STDERR_FILENO, line, len) < 0) {
		/* Nowhere left to report it. */
	}
	errno = saved_errno;
}

void log_silence(void)
{
	int saved = errno, fd = open("/dev/null", O_WRONLY | O_CLOEXEC);

	if (fd >= 0) {
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
	errno = saved;
}

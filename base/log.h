/* The one logger: a subsystem prefix, a level, errno left as the caller had it. */
#ifndef CLAWVM_LOG_H
#define CLAWVM_LOG_H

#include <stdatomic.h>
#include <stdint.h>

enum log_level { LOG_ERR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Messages above this level are dropped; set once at start-up (--verbose). */
extern enum log_level log_max_level;

/* CLOCK_MONOTONIC in microseconds. */
uint64_t log_clock_us(void);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The calling thread's last log_err() message (so that an API can pass on why a step that
 * logs its errors failed), or "no reason logged". */
const char *log_last_error(void);

/* From here on, log lines go nowhere: stderr becomes /dev/null (a detached sandbox, once
 * nobody reads its stderr; opened write-only, as the VMM's seccomp filter allows).
 * errno is kept. */
void log_silence(void);

#define log_err(...)   log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* A warning a guest can cause again and again (a refused connection, a broken ring after
 * each reset): of each call site only the 1st, 2nd, 4th, 8th... are logged, with the count
 * so far, so that a guest grows the log by the logarithm of its tries at most. */
#define log_warn_guest(fmt, ...)                                                                   \
	do {                                                                                       \
		static atomic_ullong log_count_;                                                   \
		unsigned long long log_n_ = atomic_fetch_add(&log_count_, 1) + 1;                  \
                                                                                                   \
		if ((log_n_ & (log_n_ - 1)) == 0)                                                  \
			log_msg(LOG_WARN, fmt " (%llu so far)", ##__VA_ARGS__, log_n_);            \
	} while (0)

#endif

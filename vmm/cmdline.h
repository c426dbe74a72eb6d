/* Building the guest kernel command line, with its length checked as it grows. */
#ifndef CLAWVM_CMDLINE_H
#define CLAWVM_CMDLINE_H

#include <stddef.h>

#define CMDLINE_CAPACITY 2048 /* x86 COMMAND_LINE_SIZE, NUL included */

struct cmdline {
	char buf[CMDLINE_CAPACITY];
	size_t len;
	int overflow; /* set once something did not fit; the line is then unusable */
};

void cmdline_init(struct cmdline *c);
/* Appends one space-separated argument; refuses (sets overflow) on spaces, quotes or
 * control characters, which the kernel's parser would split or mangle. */
void cmdline_add(struct cmdline *c, const char *arg);
/* Appends a user-supplied fragment verbatim (already several arguments). */
void cmdline_add_raw(struct cmdline *c, const char *fragment);
/* Appends the user's extra words (struct vm_config's cmdline) verbatim: 0; -EINVAL for a
 * control character; -E2BIG if the line would pass CMDLINE_CAPACITY - 1 bytes. Logs why,
 * naming the limit. */
__attribute__((warn_unused_result)) int cmdline_add_user(struct cmdline *c, const char *words);
/* The line, or NULL if anything overflowed or was refused. */
const char *cmdline_get(const struct cmdline *c);

/* The arguments every clawvm guest boots with (console, reboot and panic behaviour). */
void cmdline_add_defaults(struct cmdline *c, int verbose);

#endif

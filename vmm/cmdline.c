/* The guest kernel command line. Why each default is there is said beside it: the boot
 * path must do no work a minimal kernel does not need. */
#include <errno.h>
#include <string.h>

#include "base/log.h"
#include "vmm/cmdline.h"

void cmdline_init(struct cmdline *c)
{
	c->buf[0] = '\0';
	c->len = 0;
	c->overflow = 0;
}

static void cmdline_append(struct cmdline *c, const char *text)
{
	size_t len = strlen(text);
	size_t sep = c->len ? 1 : 0;

	if (c->overflow || len == 0)
		return;
	if (c->len + sep + len + 1 > sizeof(c->buf)) {
		c->overflow = 1;
		return;
	}
	if (sep)
		c->buf[c->len++] = ' ';
	memcpy(c->buf + c->len, text, len + 1);
	c->len += len;
}

void cmdline_add(struct cmdline *c, const char *arg)
{
	for (const char *p = arg; *p; p++) {
		if (*p == ' ' || *p == '"' || (unsigned char)*p < 0x20 || *p == 0x7f) {
			c->overflow = 1;
			return;
		}
	}
	cmdline_append(c, arg);
}

void cmdline_add_raw(struct cmdline *c, const char *fragment)
{
	for (const char *p = fragment; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			c->overflow = 1;
			return;
		}
	}
	cmdline_append(c, fragment);
}

int cmdline_add_user(struct cmdline *c, const char *words)
{
	size_t len = strlen(words), sep = c->len && len ? 1 : 0;

	for (const char *p = words; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			log_err("the extra kernel command line holds a control character (0x%02x)",
				(unsigned char)*p);
			return -EINVAL;
		}
	}
	if (c->len + sep + len + 1 > sizeof(c->buf)) {
		log_err("the kernel command line would be %zu bytes with the extra words (%zu of "
			"them, after clawvm's own %zu); the limit is %zu bytes",
			c->len + sep + len, len, c->len, sizeof(c->buf) - 1);
		return -E2BIG;
	}
	cmdline_add_raw(c, words);
	return 0;
}

const char *cmdline_get(const struct cmdline *c)
{
	return c->overflow ? NULL : c->buf;
}

void cmdline_add_defaults(struct cmdline *c, int verbose)
{
	static const char *const defaults[] = {
	    "console=ttyS0",   /* kernel messages to the first UART (--console-log) */
	    "8250.nr_uarts=1", /* ttyS0, the console: probe no more */
	    "reboot=k",	       /* reboot through the i8042 reset line, which ends the VMM */
	    "panic=-1",	       /* on panic reboot at once: the VMM reports it */
	    "nomodule",	       /* there are no modules */
	    "tsc=reliable",    /* KVM's TSC is stable: skip the clocksource watchdog */
	    "no_timer_check",  /* skip the I/O APIC timer check, slow and pointless here */
	    "i8042.noaux",     /* no PS/2 controller behind the reset port */
	    "rdinit=/init",    /* guest-init is PID 1 */
	};

	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
		cmdline_add(c, defaults[i]);
	/* Every console byte is a trap to the VMM: keep the kernel quiet unless asked. */
	if (verbose) {
		cmdline_add(c, "loglevel=7");
		cmdline_add(c, "printk.time=1");
	} else {
		cmdline_add(c, "quiet");
	}
}

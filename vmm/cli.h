/* The `clawvm` command line: parsing into a vm_config, help texts, exit statuses. */
#ifndef CLAWVM_CLI_H
#define CLAWVM_CLI_H

#include "vmm/vm_config.h"

#include <limits.h>
#include <stdbool.h>

struct run_args {
	struct vm_config vm;
	char *const *argv;	       /* the command, NULL-terminated */
	bool tty;		       /* -t */
	char default_kernel[PATH_MAX]; /* storage for the defaults found (guest_files.h) */
	char default_initrd[PATH_MAX];
	char rootfs[PATH_MAX];			  /* --rootfs or CLAWVM_ROOTFS resolved, or found */
	char share_host[VM_MAX_SHARES][PATH_MAX]; /* -v HOST, resolved */
	char share_guest[VM_MAX_SHARES][PATH_MAX]; /* -v GUEST, normalized */
};

/* Parses one -v HOST:GUEST[:ro|:rw] into `share` (of `args`' storage slot `index`):
 * HOST must be a directory (made absolute), GUEST an absolute guest path that is not the
 * root nor under /proc, /sys or /dev, without `.` or `..`. -1 with a message if not. */
__attribute__((warn_unused_result)) int cli_parse_volume(const char *spec, struct run_args *args,
							 unsigned index);

/* Parses `clawvm run ...` arguments (argv[0] is "run"). The guest files not given, by
 * option or CLAWVM_* variable, are looked for below each of `dirs` (NULL-terminated), in
 * order. Returns 0 and fills `args`, 1 if help was printed, or -1 after printing one line
 * that says what is wrong. */
__attribute__((warn_unused_result)) int cli_parse_run(int argc, char **argv, struct run_args *args,
						      const char *const *dirs);

/* Parses a whole decimal number in [min, max]; -1 with a message naming `what` if not. */
__attribute__((warn_unused_result)) int cli_parse_uint(const char *what, const char *text,
						       unsigned long long min,
						       unsigned long long max,
						       unsigned long long *out);

int cli_main(int argc, char **argv);

#endif

/* `clawvm audit verify FILE` and `clawvm audit show FILE`: a sandbox's audit log
 * (api/audit.md) checked line by line, or printed for people. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api/audit.h"
#include "base/log.h"
#include "vmm/verbs.h"
#include "vmm/vm_config.h"

static const char usage_audit[] =
    "Usage: clawvm audit verify FILE\n"
    "       clawvm audit show FILE\n"
    "\n"
    "A sandbox's audit log (clawvm run --audit-log FILE): one JSON line per event, each\n"
    "carrying the SHA-256 of the line before it.\n"
    "\n"
    "  verify  checks every line (whole, well-formed, numbered 1, 2, 3..., each with the\n"
    "          hash of the one before, time never going back) and names the first line\n"
    "          that was edited, removed, moved or cut; exit status 0 if the log is intact,\n"
    "          1 if not, 125 if it cannot be read. A log that ends without a stop event\n"
    "          (a sandbox still running, or a cut log) is said, not a failure.\n"
    "  show    prints one line per event for people; it does not verify (run verify).\n";

int verb_audit(int argc, char **argv)
{
	FILE *in;
	int ret;

	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		fputs(usage_audit, stdout);
		return 0;
	}
	if (argc != 3 || (strcmp(argv[1], "verify") && strcmp(argv[1], "show"))) {
		fputs(usage_audit, stderr);
		return VM_EXIT_FAILURE;
	}
	in = fopen(argv[2], "re");
	if (!in) {
		log_err("cannot open the audit log `%s`: %m", argv[2]);
		return VM_EXIT_FAILURE;
	}
	ret = !strcmp(argv[1], "verify") ? audit_verify(in, stdout) : audit_show(in, stdout);
	fclose(in);
	if (ret < 0) {
		log_err("cannot read the audit log `%s`: %s", argv[2], strerror(-ret));
		return VM_EXIT_FAILURE;
	}
	return ret;
}

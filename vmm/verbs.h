/* The `clawvm` commands that are clients of a sandbox's control API (api/control.md):
 * exec, ps, inspect, stop, kill. */
#ifndef CLAWVM_VERBS_H
#define CLAWVM_VERBS_H

#include <stddef.h>

struct cli_verb {
	const char *name;
	int (*fn)(int argc, char **argv); /* argv[0] is the verb; returns the exit status */
};

extern const struct cli_verb cli_verbs[8];

/* clawvm audit verify|show FILE (verb_audit.c): not an API client, a reader of the log. */
int verb_audit(int argc, char **argv);

/* clawvm image build|ls (verb_image.c): agent images, not a sandbox's API either. */
int verb_image(int argc, char **argv);

#endif

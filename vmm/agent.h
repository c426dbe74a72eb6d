/* `clawvm run --agent NAME` (agent.c): a known agent's sandbox, from its image (image.h),
 * on top of what the user gave. Each default applies only where the user said nothing:
 *   - the root: the agent's image (`clawvm image build NAME` made it);
 *   - the command: the agent's CLI, with the arguments after `--` as its own;
 *   - the user in the guest: the image's unprivileged `agent` (1000:1000), its HOME, the
 *     working directory /workspace;
 *   - the model API: a secret for the agent's API host, read from the host's environment
 *     (claude: ANTHROPIC=env:ANTHROPIC_API_KEY@api.anthropic.com, so the guest gets
 *     ANTHROPIC_BASE_URL and a placeholder key; without the host variable, no secret and
 *     a warning); no other host is allowed but by --allow;
 *   - memory: AGENT_MEMORY_MIB;
 *   - as root, the jail user: the owner of the host folder shared at /workspace (what the
 *     agent writes there is the workspace owner's), unless that is root. */
#ifndef CLAWVM_AGENT_H
#define CLAWVM_AGENT_H

#include <stdbool.h>

#include "vmm/config.h"

#define AGENT_MEMORY_MIB 1024

/* What the user set on the command line, which the agent's defaults leave alone. */
struct agent_given {
	bool rootfs, memory, user, cwd;
};

/* Applies agent `name`'s defaults to cfg, and makes its command: *argv (malloc()ed,
 * NULL-terminated, its strings borrowed from args) = the agent's CLI then args. 0, or -1
 * with a message in err (an unknown agent names the known ones; a missing image says how
 * to build it). */
__attribute__((warn_unused_result)) int agent_apply(struct sandbox_config *cfg, const char *name,
						    const struct agent_given *given,
						    char *const *args, char ***argv,
						    struct config_err *err);

#endif

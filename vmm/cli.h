/* The `clawvm` command line: parsing into a vm_config, help texts, exit statuses. */
#ifndef CLAWVM_CLI_H
#define CLAWVM_CLI_H

#include "vmm/agent.h"
#include "vmm/config.h"

#include <limits.h>
#include <stdbool.h>

struct run_args {
	struct sandbox_config cfg;
	char *const *argv;	  /* the command, NULL-terminated (NULL for clawvm vmm) */
	bool tty;		  /* -t */
	bool detach;		  /* -d */
	const char *api_sock;	  /* clawvm vmm --api-sock */
	const char *agent;	  /* clawvm run --agent NAME */
	struct agent_given given; /* what the options set, which --agent leaves alone */
	char **agent_argv;	  /* the agent's command (argv points to it), malloc()ed */
};

/* Parses `clawvm run ...` or `clawvm vmm ...` arguments (argv[0] is "run" or "vmm"). For
 * run, the guest files not given, by option or CLAWVM_* variable, are looked for below
 * each of `dirs` (NULL-terminated), in order (vmm looks at `start`). Returns 0 and fills
 * `args` (config_release it), 1 if help was printed, or -1 after printing one line that
 * says what is wrong. */
__attribute__((warn_unused_result)) int cli_parse_run(int argc, char **argv, struct run_args *args,
						      const char *const *dirs);

/* Parses a whole decimal number in [min, max]; -1 with a message naming `what` if not. */
__attribute__((warn_unused_result)) int cli_parse_uint(const char *what, const char *text,
						       unsigned long long min,
						       unsigned long long max,
						       unsigned long long *out);

int cli_main(int argc, char **argv);

#endif

/* `clawvm run --agent NAME` (agent.h): each agent's defaults, applied where the user said
 * nothing. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "vmm/agent.h"
#include "vmm/image.h"

struct agent {
	const char *name;   /* --agent NAME */
	const char *image;  /* image.h's name */
	const char *cli;    /* the command in the guest */
	const char *secret; /* --secret's spec for the model API */
	const char *secret_name;
	const char *secret_var; /* the host's variable the secret reads */
	const char *const *env; /* "K=V", for every exec */
	const char *user;	/* UID:GID in the guest */
	const char *cwd;
};

static const char *const claude_env[] = {
    "HOME=/home/agent",
    /* Without this, Claude Code calls its vendor's API host directly, whatever
     * ANTHROPIC_BASE_URL says (tests/agent/mock_anthropic.py): metrics, bootstrap, event
     * logging. */
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
    "DISABLE_TELEMETRY=1",
    "DISABLE_ERROR_REPORTING=1",
    "DISABLE_AUTOUPDATER=1",
    NULL,
};

static const struct agent agents[] = {
    {
	.name = "claude",
	.image = "claude",
	.cli = "claude",
	.secret = "ANTHROPIC=env:ANTHROPIC_API_KEY@api.anthropic.com",
	.secret_name = "ANTHROPIC",
	.secret_var = "ANTHROPIC_API_KEY",
	.env = claude_env,
	.user = "1000:1000",
	.cwd = "/workspace",
    },
};

static const struct agent *agent_find(const char *name, struct config_err *err)
{
	char known[128] = "";

	for (size_t i = 0; i < sizeof(agents) / sizeof(agents[0]); i++) {
		if (!strcmp(agents[i].name, name))
			return &agents[i];
		snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s%s",
			 i ? ", " : "", agents[i].name);
	}
	config_fail(err, "--agent: no agent `%s` (known: %s)", name, known);
	return NULL;
}

static bool has_secret(const struct sandbox_config *cfg, const char *name)
{
	for (unsigned i = 0; i < cfg->nsecrets; i++) {
		if (!strcmp(cfg->secrets[i].name, name))
			return true;
	}
	return false;
}

/* As root, without --jail-user: the VMM becomes the owner of the workspace's host folder,
 * so that what the agent writes there is that user's (never root's: then the default). */
static int jail_user_from_workspace(struct sandbox_config *cfg, const char *cwd,
				    struct config_err *err)
{
	char spec[32];
	struct stat st;

	if (geteuid() != 0 || cfg->jail_user_set || cfg->no_jail)
		return 0;
	for (unsigned i = 0; i < cfg->vm.nshares; i++) {
		if (strcmp(cfg->vm.shares[i].guest, cwd) != 0 || cfg->vm.shares[i].read_only)
			continue;
		if (stat(cfg->vm.shares[i].host, &st) < 0 || st.st_uid == 0)
			return 0;
		snprintf(spec, sizeof(spec), "%u:%u", (unsigned)st.st_uid, (unsigned)st.st_gid);
		return config_set_jail_user(cfg, "--agent", spec, err);
	}
	return 0;
}

int agent_apply(struct sandbox_config *cfg, const char *name, const struct agent_given *given,
		char *const *args, char ***argv, struct config_err *err)
{
	const struct agent *a = agent_find(name, err);
	char root[PATH_MAX];
	size_t n = 0;

	*argv = NULL;
	if (!a)
		return -1;
	if (!given->rootfs) {
		if (image_root(a->image, root, err->msg, sizeof(err->msg)) < 0 ||
		    config_set_rootfs(cfg, "--agent", root, err) < 0)
			return -1;
	}
	if (!given->memory && config_set_memory(cfg, "--agent", AGENT_MEMORY_MIB, err) < 0)
		return -1;
	if (!given->user && config_parse_user(cfg, "--agent", a->user, err) < 0)
		return -1;
	if (!given->cwd && config_set_cwd(cfg, "--agent", a->cwd, err) < 0)
		return -1;
	for (const char *const *kv = a->env; *kv; kv++) {
		if (config_env_find(cfg, *kv) < 0 && config_add_env(cfg, "--agent", *kv, err) < 0)
			return -1;
	}
	/* Without the key on the host, the sandbox still runs (`claude --version`), without
	 * the model API: said. */
	if (!has_secret(cfg, a->secret_name)) {
		const char *key = getenv(a->secret_var);

		if (!key || !*key)
			log_warn(
			    "--agent %s: the host's environment has no %s: the model API is not "
			    "reachable in this sandbox",
			    a->name, a->secret_var);
		else if (config_add_secret(cfg, "--agent", a->secret, err) < 0)
			return -1;
	}
	if (jail_user_from_workspace(cfg, cfg->cwd, err) < 0)
		return -1;
	while (args && args[n])
		n++;
	*argv = calloc(n + 2, sizeof(**argv));
	if (!*argv)
		return config_fail(err, "--agent: out of memory");
	(*argv)[0] = (char *)a->cli;
	memcpy(*argv + 1, args, n * sizeof(**argv));
	return 0;
}

/* A sandbox's configuration, as `clawvm run`'s flags and the control API's pre-boot methods
 * set it: one setter per setting, shared by both, each checking its value and saying what
 * is wrong in words that name the setting as the caller knows it (`what`: "--memory" for
 * the CLI, "memory_mib" for the API). The strings the vm_config points to live here. */
#ifndef CLAWVM_CONFIG_H
#define CLAWVM_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "broker/policy.h"
#include "vmm/vm_config.h"

#define CONFIG_DEFAULT_CPUS    1
#define CONFIG_DEFAULT_MEM_MIB 512
/* Host tasks (threads) of the VMM, its cgroup's pids.max: at most 53 with 32 vCPUs and 9
 * shares (the main thread, the control server's, `clawvm run`'s session client, a thread
 * per vCPU and two virtio-fs workers per share), and LeakSanitizer's tracer at exit; 128
 * leaves room and still stops a VMM that forks or spawns without end. The guest's own
 * processes are not host tasks and do not count. */
#define CONFIG_DEFAULT_PIDS 128
#define CONFIG_MIN_PIDS	    16 /* a 1-vCPU VMM with a share takes 7 tasks */
#define CONFIG_MAX_PIDS	    65536
#define CONFIG_MAX_ENV	    256	 /* exec defaults' environment */
#define CONFIG_MAX_CMDLINE  1024 /* extra kernel command-line bytes */
#define CONFIG_NAME_MAX	    63	 /* [A-Za-z0-9][A-Za-z0-9_.-]* */
#define CONFIG_MAX_UID	    0xfffffffeu
#define CONFIG_ERR_MAX	    512
#define CONFIG_MAX_SECRETS  4 /* broker.h's BROKER_MAX_SECRETS */

/* Why a setter refused, for people. */
struct config_err {
	char msg[CONFIG_ERR_MAX];
};

/* Sets err's message from fmt; returns -1, for `return config_fail(err, ...)`. */
__attribute__((format(printf, 2, 3))) int config_fail(struct config_err *err, const char *fmt, ...);

/* A credential the egress broker adds (--secret NAME=env:VAR@HOST[:PORT][/HEADER]). The
 * value is not here: the process that starts the broker reads VAR then. */
struct config_secret {
	char name[64];	 /* [A-Z][A-Z0-9_]*: the guest gets NAME_BASE_URL, NAME_API_KEY */
	char var[128];	 /* the host's environment variable that holds the value */
	char host[254];	 /* the upstream, over TLS */
	uint16_t port;	 /* default 443 */
	char header[64]; /* default x-api-key; authorization is sent as "Bearer <value>" */
};

struct sandbox_config {
	struct vm_config vm;
	char name[CONFIG_NAME_MAX + 1];
	/* What every exec gets unless it says otherwise. */
	char *env[CONFIG_MAX_ENV + 1]; /* "K=V", owned, NULL-terminated */
	unsigned nenv;
	uint32_t uid, gid;
	char cwd[PATH_MAX]; /* "" means / */
	unsigned pids;	    /* host tasks the VMM may have: cgroup.h's pids.max */
	/* Storage for vm's strings. */
	char kernel[PATH_MAX], initrd[PATH_MAX], rootfs[PATH_MAX], console_log[PATH_MAX];
	char vsock_uds[PATH_MAX], cmdline[CONFIG_MAX_CMDLINE + 1];
	char share_host[VM_MAX_SHARES][PATH_MAX];
	char share_guest[VM_MAX_SHARES][PATH_MAX];
	/* Egress (vmm/egress.h): the allowlist, the secrets, the audit log. */
	struct policy egress;
	struct config_secret secrets[CONFIG_MAX_SECRETS];
	unsigned nsecrets;
	char audit_log[PATH_MAX], ca_file[PATH_MAX]; /* "": none, the system's CA store */
	uint64_t egress_max_bytes;		     /* 0: no limit */
	/* The VMM's containment (jail.h). */
	bool no_jail;
	bool jail_user_set;
	uint32_t jail_uid, jail_gid;
};

/* The defaults: 1 vCPU, 512 MiB (or the host's RAM if less), 128 tasks, CID 3, no shares,
 * root. */
void config_init(struct sandbox_config *c);
/* Frees the environment strings. */
void config_release(struct sandbox_config *c);

/* The largest guest memory this host allows, in MiB. */
uint64_t config_max_memory_mib(void);

/* Each: 0, or -1 with err->msg filled. */
__attribute__((warn_unused_result)) int config_set_cpus(struct sandbox_config *c, const char *what,
							uint64_t cpus, struct config_err *err);
__attribute__((warn_unused_result)) int
config_set_memory(struct sandbox_config *c, const char *what, uint64_t mib, struct config_err *err);
/* The VMM's host tasks, CONFIG_MIN_PIDS to CONFIG_MAX_PIDS. */
__attribute__((warn_unused_result)) int config_set_pids(struct sandbox_config *c, const char *what,
							uint64_t pids, struct config_err *err);
/* The guest kernel or initramfs: an existing regular file, kept as an absolute path. */
__attribute__((warn_unused_result)) int config_set_kernel(struct sandbox_config *c,
							  const char *what, const char *path,
							  struct config_err *err);
__attribute__((warn_unused_result)) int config_set_initrd(struct sandbox_config *c,
							  const char *what, const char *path,
							  struct config_err *err);
/* The guest root: an existing directory, shared read-only. */
__attribute__((warn_unused_result)) int config_set_rootfs(struct sandbox_config *c,
							  const char *what, const char *path,
							  struct config_err *err);
/* Extra kernel command-line words: printable ASCII, at most CONFIG_MAX_CMDLINE bytes. */
__attribute__((warn_unused_result)) int config_set_cmdline(struct sandbox_config *c,
							   const char *what, const char *text,
							   struct config_err *err);
__attribute__((warn_unused_result)) int config_set_console_log(struct sandbox_config *c,
							       const char *what, const char *path,
							       struct config_err *err);
/* HOST must be a directory (made absolute), GUEST an absolute guest path that is not the
 * root nor under /proc, /sys or /dev, without `.` or `..`, not shared twice; at most
 * VM_MAX_SHARES. */
__attribute__((warn_unused_result)) int config_add_share(struct sandbox_config *c, const char *what,
							 const char *host, const char *guest,
							 bool read_only, struct config_err *err);
/* One -v HOST:GUEST[:ro|:rw], into config_add_share. */
__attribute__((warn_unused_result)) int config_add_volume(struct sandbox_config *c,
							  const char *spec, struct config_err *err);
/* A host port the guest reaches as TCP 127.0.0.1:PORT (egress, guest_abi.h): 1 to 65535,
 * not given twice, at most CLAWVM_EGRESS_MAX_PORTS. */
__attribute__((warn_unused_result)) int config_add_egress_port(struct sandbox_config *c,
							       const char *what, uint64_t port,
							       struct config_err *err);
/* The guest's CID, 3 to 4294967294. */
__attribute__((warn_unused_result)) int config_set_vsock_cid(struct sandbox_config *c,
							     const char *what, uint64_t cid,
							     struct config_err *err);
__attribute__((warn_unused_result)) int config_set_vsock_uds(struct sandbox_config *c,
							     const char *what, const char *path,
							     struct config_err *err);
/* Where c's environment sets K of `kv` ("K=V", or "K" alone), or -1. */
int config_env_find(const struct sandbox_config *c, const char *kv);
/* K=V with a non-empty K without `=`; a K set again is replaced. */
__attribute__((warn_unused_result)) int config_add_env(struct sandbox_config *c, const char *what,
						       const char *kv, struct config_err *err);
__attribute__((warn_unused_result)) int config_set_user(struct sandbox_config *c, const char *what,
							uint64_t uid, uint64_t gid,
							struct config_err *err);
/* UID[:GID] (GID defaults to UID), into config_set_user. */
__attribute__((warn_unused_result)) int config_parse_user(struct sandbox_config *c,
							  const char *what, const char *spec,
							  struct config_err *err);
/* The user the jailed VMM becomes as root (jail.h): UID[:GID], numbers. */
__attribute__((warn_unused_result)) int config_set_jail_user(struct sandbox_config *c,
							     const char *what, const char *spec,
							     struct config_err *err);
/* An absolute guest directory. */
__attribute__((warn_unused_result)) int config_set_cwd(struct sandbox_config *c, const char *what,
						       const char *cwd, struct config_err *err);
/* A sandbox name: 1 to 63 of [A-Za-z0-9_.-], starting with a letter or digit. */
__attribute__((warn_unused_result)) int config_set_name(struct sandbox_config *c, const char *what,
							const char *name, struct config_err *err);

/* One --allow rule (broker/policy.h says what a rule may be). */
__attribute__((warn_unused_result)) int config_add_allow(struct sandbox_config *c, const char *what,
							 const char *spec, struct config_err *err);
/* One --secret NAME=env:VAR@HOST[:PORT][/HEADER], at most CONFIG_MAX_SECRETS, each NAME
 * once. */
__attribute__((warn_unused_result)) int config_add_secret(struct sandbox_config *c,
							  const char *what, const char *spec,
							  struct config_err *err);
/* The audit log: a file (made if missing) in an existing directory, kept absolute. */
__attribute__((warn_unused_result)) int config_set_audit_log(struct sandbox_config *c,
							     const char *what, const char *path,
							     struct config_err *err);
/* The CA certificates (PEM) the broker trusts for secrets' upstreams, instead of the
 * system's: an existing regular file. */
__attribute__((warn_unused_result)) int config_set_ca_file(struct sandbox_config *c,
							   const char *what, const char *path,
							   struct config_err *err);

/* The guest kernel, initramfs and root not set: from the CLAWVM_* variables that stand
 * for them, else found below `dirs` (guest_files.h). */
__attribute__((warn_unused_result)) int
config_find_guest_files(struct sandbox_config *c, const char *const *dirs, struct config_err *err);

/* Where the defaults are looked for: the running binary's directory (a build tree), then
 * the install's data directory. */
struct guest_dirs {
	char self[PATH_MAX];
	const char *list[3]; /* NULL-terminated */
};
void config_guest_dirs(struct guest_dirs *g);

#endif

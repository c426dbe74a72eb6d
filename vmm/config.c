/* A sandbox's configuration and its checks (config.h), shared by the CLI and the API. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/config.h"
#include "vmm/guest_files.h"
#include "vmm/layout.h"

int config_fail(struct config_err *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return -1;
}

static int config_range(const char *what, uint64_t value, uint64_t min, uint64_t max,
			struct config_err *err)
{
	if (value >= min && value <= max)
		return 0;
	return config_fail(err, "%s must be between %llu and %llu, got %llu", what,
			   (unsigned long long)min, (unsigned long long)max,
			   (unsigned long long)value);
}

uint64_t config_max_memory_mib(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGESIZE);
	uint64_t mib;

	if (pages <= 0 || page_size <= 0)
		return LAYOUT_MAX_MEM_MIB;
	mib = (uint64_t)pages * (uint64_t)page_size / MiB;
	return mib < LAYOUT_MAX_MEM_MIB ? mib : LAYOUT_MAX_MEM_MIB;
}

void config_init(struct sandbox_config *c)
{
	uint64_t mem_max = config_max_memory_mib();

	memset(c, 0, sizeof(*c));
	c->vm = (struct vm_config){
	    .kvm_path = "/dev/kvm",
	    .kvm_fd = -1,
	    .cpus = CONFIG_DEFAULT_CPUS,
	    .mem_mib = CONFIG_DEFAULT_MEM_MIB < mem_max ? CONFIG_DEFAULT_MEM_MIB : mem_max,
	    .vsock_cid = VSOCK_DEFAULT_GUEST_CID,
	    .exec_fd = -1,
	    .ready_fd = -1,
	    .seccomp = true,
	};
	c->vm.audit_fd = -1;
	c->pids = CONFIG_DEFAULT_PIDS;
	policy_init(&c->egress);
}

void config_release(struct sandbox_config *c)
{
	for (unsigned i = 0; i < c->nenv; i++)
		free(c->env[i]);
	c->nenv = 0;
	c->env[0] = NULL;
	policy_release(&c->egress);
}

int config_set_cpus(struct sandbox_config *c, const char *what, uint64_t cpus,
		    struct config_err *err)
{
	if (config_range(what, cpus, 1, VM_MAX_VCPUS, err) < 0)
		return -1;
	c->vm.cpus = (unsigned)cpus;
	return 0;
}

int config_set_memory(struct sandbox_config *c, const char *what, uint64_t mib,
		      struct config_err *err)
{
	if (config_range(what, mib, LAYOUT_MIN_MEM_MIB, config_max_memory_mib(), err) < 0)
		return -1;
	c->vm.mem_mib = mib;
	return 0;
}

int config_set_pids(struct sandbox_config *c, const char *what, uint64_t pids,
		    struct config_err *err)
{
	if (config_range(what, pids, CONFIG_MIN_PIDS, CONFIG_MAX_PIDS, err) < 0)
		return -1;
	c->pids = (unsigned)pids;
	return 0;
}

/* `path` as an absolute path to an existing file of type `type` (S_IFREG, S_IFDIR), into
 * out[PATH_MAX]. */
static int config_host_path(const char *what, const char *path, mode_t type, char *out,
			    struct config_err *err)
{
	char resolved[PATH_MAX];
	struct stat st;

	if (!*path)
		return config_fail(err, "%s: the path is empty", what);
	if (!realpath(path, resolved))
		return config_fail(err, "%s `%s`: %s", what, path, strerror(errno));
	if (stat(resolved, &st) < 0)
		return config_fail(err, "%s `%s`: %s", what, path, strerror(errno));
	if ((st.st_mode & S_IFMT) != type)
		return config_fail(err, "%s `%s`: not a %s", what, path,
				   type == S_IFDIR ? "directory" : "regular file");
	memcpy(out, resolved, strlen(resolved) + 1);
	return 0;
}

int config_set_kernel(struct sandbox_config *c, const char *what, const char *path,
		      struct config_err *err)
{
	if (config_host_path(what, path, S_IFREG, c->kernel, err) < 0)
		return -1;
	c->vm.kernel_path = c->kernel;
	return 0;
}

int config_set_initrd(struct sandbox_config *c, const char *what, const char *path,
		      struct config_err *err)
{
	if (config_host_path(what, path, S_IFREG, c->initrd, err) < 0)
		return -1;
	c->vm.initrd_path = c->initrd;
	return 0;
}

int config_set_rootfs(struct sandbox_config *c, const char *what, const char *path,
		      struct config_err *err)
{
	if (config_host_path(what, path, S_IFDIR, c->rootfs, err) < 0)
		return -1;
	c->vm.rootfs = c->rootfs;
	return 0;
}

int config_set_cmdline(struct sandbox_config *c, const char *what, const char *text,
		       struct config_err *err)
{
	size_t len = strlen(text);

	if (len > CONFIG_MAX_CMDLINE)
		return config_fail(err, "%s is %zu bytes long; at most %d", what, len,
				   CONFIG_MAX_CMDLINE);
	for (size_t i = 0; i < len; i++) {
		if (text[i] < 0x20 || text[i] > 0x7e)
			return config_fail(err, "%s: byte %zu is not printable ASCII", what, i);
	}
	memcpy(c->cmdline, text, len + 1);
	c->vm.cmdline = len ? c->cmdline : NULL;
	return 0;
}

/* A path clawvm will create: not empty, fits. */
static int config_new_path(const char *what, const char *path, char *out, struct config_err *err)
{
	size_t len = strlen(path);

	if (len == 0)
		return config_fail(err, "%s: the path is empty", what);
	if (len >= PATH_MAX)
		return config_fail(err, "%s: the path is too long", what);
	memcpy(out, path, len + 1);
	return 0;
}

int config_set_console_log(struct sandbox_config *c, const char *what, const char *path,
			   struct config_err *err)
{
	if (config_new_path(what, path, c->console_log, err) < 0)
		return -1;
	c->vm.console_log = c->console_log;
	return 0;
}

/* Whether `path` is `dir` or lies below it. */
static bool path_under(const char *path, const char *dir)
{
	size_t len = strlen(dir);

	return !strncmp(path, dir, len) && (path[len] == '\0' || path[len] == '/');
}

/* An absolute guest path without empty, `.` or `..` components, trailing slashes dropped,
 * into out[PATH_MAX]. `root_ok`: "/" itself is allowed. */
static int config_guest_path(const char *what, const char *path, size_t len, bool root_ok,
			     char *out, struct config_err *err)
{
	size_t n = 0;

	if (len == 0 || path[0] != '/')
		return config_fail(err, "%s: the guest path must be absolute", what);
	if (len >= PATH_MAX)
		return config_fail(err, "%s: the guest path is too long", what);
	for (size_t i = 0; i < len;) {
		size_t start, comp;

		while (i < len && path[i] == '/')
			i++;
		start = i;
		while (i < len && path[i] != '/')
			i++;
		comp = i - start;
		if (comp == 0)
			break;
		if ((comp == 1 && path[start] == '.') ||
		    (comp == 2 && path[start] == '.' && path[start + 1] == '.'))
			return config_fail(err, "%s: the guest path may not contain `.` or `..`",
					   what);
		if (memchr(path + start, '\0', comp))
			return config_fail(err, "%s: the guest path holds a NUL byte", what);
		out[n++] = '/';
		memcpy(out + n, path + start, comp);
		n += comp;
	}
	out[n] = '\0';
	if (n == 0 && !root_ok)
		return config_fail(err, "%s: the guest root is the rootfs, not a share", what);
	if (n == 0) {
		out[n++] = '/';
		out[n] = '\0';
	}
	return 0;
}

int config_add_share(struct sandbox_config *c, const char *what, const char *host,
		     const char *guest, bool read_only, struct config_err *err)
{
	static const char *const reserved[] = {"/proc", "/sys", "/dev"};
	unsigned index = c->vm.nshares;

	if (index == VM_MAX_SHARES)
		return config_fail(err, "%s: at most %d shares", what, VM_MAX_SHARES);
	if (config_host_path(what, host, S_IFDIR, c->share_host[index], err) < 0)
		return -1;
	if (config_guest_path(what, guest, strlen(guest), false, c->share_guest[index], err) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
		if (path_under(c->share_guest[index], reserved[i]))
			return config_fail(err, "%s: %s belongs to the guest kernel", what,
					   reserved[i]);
	}
	for (unsigned i = 0; i < index; i++) {
		if (!strcmp(c->share_guest[i], c->share_guest[index]))
			return config_fail(err, "%s: %s is shared twice", what,
					   c->share_guest[index]);
	}
	c->vm.shares[index] =
	    (struct vm_share){c->share_host[index], c->share_guest[index], read_only};
	c->vm.nshares++;
	return 0;
}

int config_add_volume(struct sandbox_config *c, const char *spec, struct config_err *err)
{
	const char *end = spec + strlen(spec), *colon;
	char what[64], host[PATH_MAX], guest[PATH_MAX];
	bool read_only = false;

	if (strlen(spec) + 4 > sizeof(what))
		snprintf(what, sizeof(what), "-v %.40s...", spec);
	else
		snprintf(what, sizeof(what), "-v %s", spec);
	if (end - spec > 3 && (!strcmp(end - 3, ":ro") || !strcmp(end - 3, ":rw"))) {
		read_only = end[-1] == 'o';
		end -= 3;
	}
	/* The guest path holds no colon of its own; the host path may. */
	for (colon = end; colon > spec && colon[-1] != ':'; colon--)
		;
	if (colon == spec || colon - 1 == spec)
		return config_fail(err, "%s: want HOST:GUEST[:ro] (see clawvm run --help)", what);
	if ((size_t)(colon - 1 - spec) >= sizeof(host) || (size_t)(end - colon) >= sizeof(guest))
		return config_fail(err, "%s: the path is too long", what);
	memcpy(host, spec, (size_t)(colon - 1 - spec));
	host[colon - 1 - spec] = '\0';
	memcpy(guest, colon, (size_t)(end - colon));
	guest[end - colon] = '\0';
	return config_add_share(c, what, host, guest, read_only, err);
}

int config_add_egress_port(struct sandbox_config *c, const char *what, uint64_t port,
			   struct config_err *err)
{
	struct vm_config *vm = &c->vm;

	if (config_range(what, port, 1, 65535, err) < 0)
		return -1;
	for (unsigned i = 0; i < vm->negress_ports; i++) {
		if (vm->egress_ports[i] == port)
			return config_fail(err, "%s: port %llu is given twice", what,
					   (unsigned long long)port);
	}
	if (vm->negress_ports == CLAWVM_EGRESS_MAX_PORTS)
		return config_fail(err, "%s: at most %d egress ports", what,
				   CLAWVM_EGRESS_MAX_PORTS);
	vm->egress_ports[vm->negress_ports++] = (uint16_t)port;
	return 0;
}

int config_set_vsock_cid(struct sandbox_config *c, const char *what, uint64_t cid,
			 struct config_err *err)
{
	/* 0-2 are the hypervisor, local and host; -1 is VMADDR_CID_ANY. */
	if (config_range(what, cid, 3, 0xfffffffe, err) < 0)
		return -1;
	c->vm.vsock_cid = cid;
	return 0;
}

int config_set_vsock_uds(struct sandbox_config *c, const char *what, const char *path,
			 struct config_err *err)
{
	if (config_new_path(what, path, c->vsock_uds, err) < 0)
		return -1;
	c->vm.vsock_uds = c->vsock_uds;
	return 0;
}

int config_env_find(const struct sandbox_config *c, const char *kv)
{
	size_t name_len = strcspn(kv, "=") + 1;

	for (unsigned i = 0; i < c->nenv; i++) {
		if (!strncmp(c->env[i], kv, name_len))
			return (int)i;
	}
	return -1;
}

int config_add_env(struct sandbox_config *c, const char *what, const char *kv,
		   struct config_err *err)
{
	const char *eq = strchr(kv, '=');
	char *copy;
	int i;

	if (!eq || eq == kv)
		return config_fail(err, "%s: want K=V, got `%s`", what, kv);
	i = config_env_find(c, kv);
	if (i >= 0) {
		if (!(copy = strdup(kv)))
			return config_fail(err, "%s: out of memory", what);
		free(c->env[i]);
		c->env[i] = copy;
		return 0;
	}
	if (c->nenv == CONFIG_MAX_ENV)
		return config_fail(err, "%s: at most %d variables", what, CONFIG_MAX_ENV);
	if (!(copy = strdup(kv)))
		return config_fail(err, "%s: out of memory", what);
	c->env[c->nenv++] = copy;
	c->env[c->nenv] = NULL;
	return 0;
}

int config_set_user(struct sandbox_config *c, const char *what, uint64_t uid, uint64_t gid,
		    struct config_err *err)
{
	if (config_range(what, uid, 0, CONFIG_MAX_UID, err) < 0 ||
	    config_range(what, gid, 0, CONFIG_MAX_UID, err) < 0)
		return -1;
	c->uid = (uint32_t)uid;
	c->gid = (uint32_t)gid;
	return 0;
}

/* A whole decimal number, or -1. */
static int config_number(const char *text, size_t len, uint64_t *out)
{
	uint64_t value = 0;

	if (len == 0 || len > 10)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)text[i]))
			return -1;
		value = value * 10 + (uint64_t)(text[i] - '0');
	}
	*out = value;
	return 0;
}

/* UID[:GID] into *uid and *gid (GID defaults to UID), in range. */
static int config_uid_gid(const char *what, const char *spec, uint32_t *uid, uint32_t *gid,
			  struct config_err *err)
{
	const char *colon = strchr(spec, ':');
	uint64_t u, g;

	if (config_number(spec, colon ? (size_t)(colon - spec) : strlen(spec), &u) < 0 ||
	    (colon && config_number(colon + 1, strlen(colon + 1), &g) < 0))
		return config_fail(err, "%s: want UID[:GID] (numbers), got `%s`", what, spec);
	if (!colon)
		g = u;
	if (config_range(what, u, 0, CONFIG_MAX_UID, err) < 0 ||
	    config_range(what, g, 0, CONFIG_MAX_UID, err) < 0)
		return -1;
	*uid = (uint32_t)u;
	*gid = (uint32_t)g;
	return 0;
}

int config_parse_user(struct sandbox_config *c, const char *what, const char *spec,
		      struct config_err *err)
{
	return config_uid_gid(what, spec, &c->uid, &c->gid, err);
}

int config_set_jail_user(struct sandbox_config *c, const char *what, const char *spec,
			 struct config_err *err)
{
	if (config_uid_gid(what, spec, &c->jail_uid, &c->jail_gid, err) < 0)
		return -1;
	c->jail_user_set = true;
	return 0;
}

int config_add_allow(struct sandbox_config *c, const char *what, const char *spec,
		     struct config_err *err)
{
	return policy_add_as(&c->egress, what, spec, err->msg, sizeof(err->msg)) < 0 ? -1 : 0;
}

/* Whether text is 1 to max-1 of [A-Za-z0-9_] starting with a letter or '_' (upper-case
 * letters only when `upper`). */
static bool config_word(const char *text, size_t len, size_t max, bool upper)
{
	if (len == 0 || len >= max || isdigit((unsigned char)text[0]))
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)text[i];

		if (!(isdigit(ch) || ch == '_' || (upper ? isupper(ch) : isalpha(ch))))
			return false;
	}
	return true;
}

int config_add_secret(struct sandbox_config *c, const char *what, const char *spec,
		      struct config_err *err)
{
	const char *eq = strchr(spec, '='), *at = strrchr(spec, '@'), *var, *host, *colon, *slash;
	struct config_secret *s = &c->secrets[c->nsecrets];
	size_t host_len;
	uint64_t port = 443;

	if (!eq || !at || at < eq || strncmp(eq + 1, "env:", 4))
		return config_fail(err, "%s '%s': expected NAME=env:VAR@HOST[:PORT][/HEADER]", what,
				   spec);
	if (c->nsecrets == CONFIG_MAX_SECRETS)
		return config_fail(err, "%s '%s': at most %d secrets", what, spec,
				   CONFIG_MAX_SECRETS);
	*s = (struct config_secret){.port = 443};
	if (!config_word(spec, (size_t)(eq - spec), sizeof(s->name) - 12, true))
		return config_fail(err,
				   "%s '%s': NAME must be A-Z, 0-9 and _ (it names the "
				   "guest's NAME_BASE_URL and NAME_API_KEY)",
				   what, spec);
	memcpy(s->name, spec, (size_t)(eq - spec));
	var = eq + 5;
	if (!config_word(var, (size_t)(at - var), sizeof(s->var), false))
		return config_fail(err, "%s '%s': VAR must be an environment variable's name", what,
				   spec);
	memcpy(s->var, var, (size_t)(at - var));
	host = at + 1;
	slash = strchr(host, '/');
	snprintf(s->header, sizeof(s->header), "%s", slash ? slash + 1 : "x-api-key");
	for (const char *p = s->header; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
			return config_fail(err, "%s '%s': HEADER must be a header name", what,
					   spec);
	if (!s->header[0] || (slash && strlen(slash + 1) >= sizeof(s->header)))
		return config_fail(err, "%s '%s': HEADER must be a header name", what, spec);
	host_len = slash ? (size_t)(slash - host) : strlen(host);
	colon = memchr(host, ':', host_len);
	if (colon) {
		if (config_number(colon + 1, host_len - (size_t)(colon + 1 - host), &port) < 0 ||
		    port == 0 || port > 65535)
			return config_fail(err, "%s '%s': PORT must be 1-65535", what, spec);
		host_len = (size_t)(colon - host);
	}
	if (host_len == 0 || host_len >= sizeof(s->host))
		return config_fail(err, "%s '%s': HOST must be a host name", what, spec);
	memcpy(s->host, host, host_len);
	for (char *p = s->host; *p; p++) {
		*p = (char)tolower((unsigned char)*p);
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
			return config_fail(err, "%s '%s': HOST must be a host name", what, spec);
	}
	s->port = (uint16_t)port;
	for (unsigned i = 0; i < c->nsecrets; i++)
		if (!strcmp(c->secrets[i].name, s->name))
			return config_fail(err, "%s '%s': %s is given twice", what, spec, s->name);
	c->nsecrets++;
	return 0;
}

int config_set_audit_log(struct sandbox_config *c, const char *what, const char *path,
			 struct config_err *err)
{
	char dir[PATH_MAX], *slash;
	struct stat st;

	if (config_new_path(what, path, c->audit_log, err) < 0)
		return -1;
	if (c->audit_log[0] != '/') {
		char cwd[PATH_MAX];

		if (!getcwd(cwd, sizeof(cwd)) ||
		    (size_t)snprintf(dir, sizeof(dir), "%s/%s", cwd, path) >= sizeof(dir))
			return config_fail(err, "%s: the path is too long", what);
		memcpy(c->audit_log, dir, strlen(dir) + 1);
	}
	memcpy(dir, c->audit_log, strlen(c->audit_log) + 1);
	slash = strrchr(dir, '/');
	*slash = '\0';
	if (stat(dir[0] ? dir : "/", &st) < 0 || !S_ISDIR(st.st_mode))
		return config_fail(err, "%s `%s`: its directory does not exist", what, path);
	return 0;
}

int config_set_ca_file(struct sandbox_config *c, const char *what, const char *path,
		       struct config_err *err)
{
	return config_host_path(what, path, S_IFREG, c->ca_file, err);
}

int config_set_cwd(struct sandbox_config *c, const char *what, const char *cwd,
		   struct config_err *err)
{
	return config_guest_path(what, cwd, strlen(cwd), true, c->cwd, err);
}

int config_set_name(struct sandbox_config *c, const char *what, const char *name,
		    struct config_err *err)
{
	size_t len = strlen(name);

	if (len == 0 || len > CONFIG_NAME_MAX || !isalnum((unsigned char)name[0]))
		goto bad;
	for (size_t i = 0; i < len; i++) {
		if (!isalnum((unsigned char)name[i]) && !strchr("_.-", name[i]))
			goto bad;
	}
	memcpy(c->name, name, len + 1);
	return 0;
bad:
	return config_fail(err,
			   "%s: `%s` is not a sandbox name (1 to %d of A-Z a-z 0-9 _ . -, "
			   "starting with a letter or digit)",
			   what, name, CONFIG_NAME_MAX);
}

int config_find_guest_files(struct sandbox_config *c, const char *const *dirs,
			    struct config_err *err)
{
	struct vm_config *vm = &c->vm;
	const char *kernel = vm->kernel_path, *initrd = vm->initrd_path, *rootfs = vm->rootfs;

	if (guest_file_given(&guest_kernel, &kernel, err->msg, sizeof(err->msg)) < 0 ||
	    guest_file_given(&guest_initrd, &initrd, err->msg, sizeof(err->msg)) < 0 ||
	    guest_file_given(&guest_rootfs, &rootfs, err->msg, sizeof(err->msg)) < 0)
		return -1;
	/* The CLAWVM_* variables, checked as the options are. */
	if (kernel != vm->kernel_path && config_set_kernel(c, guest_kernel.env, kernel, err) < 0)
		return -1;
	if (initrd != vm->initrd_path && config_set_initrd(c, guest_initrd.env, initrd, err) < 0)
		return -1;
	if (rootfs != vm->rootfs && config_set_rootfs(c, guest_rootfs.env, rootfs, err) < 0)
		return -1;
	if (guest_file_find(&guest_kernel, dirs, c->kernel, &vm->kernel_path, err->msg,
			    sizeof(err->msg)) < 0)
		return -1;
	/* Without an initramfs the root is a share, and the initramfs holds guest-init alone. */
	if (!vm->initrd_path && guest_file_find(&guest_rootfs, dirs, c->rootfs, &vm->rootfs,
						err->msg, sizeof(err->msg)) < 0)
		return -1;
	if (guest_file_find(&guest_initrd, dirs, c->initrd, &vm->initrd_path, err->msg,
			    sizeof(err->msg)) < 0)
		return -1;
	return 0;
}

void config_guest_dirs(struct guest_dirs *g)
{
	char exe[PATH_MAX], *slash;
	ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (len <= 0)
		len = snprintf(exe, sizeof(exe), ".");
	exe[len] = '\0';
	slash = strrchr(exe, '/');
	if (slash && slash != exe)
		*slash = '\0';
	memcpy(g->self, exe, sizeof(g->self));
	g->list[0] = g->self;
	g->list[1] = CLAWVM_DATADIR;
	g->list[2] = NULL;
}

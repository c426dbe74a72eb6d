/* The sandbox's egress broker as a process (egress.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api/audit.h"
#include "base/log.h"
#include "broker/broker.h"
#include "vmm/egress.h"
#include "vmm/jail.h"

/* A change in a share (the FUSE server, on a share's worker thread): its audit event. */
static void egress_file_changed(void *opaque, enum fuse_change change, const char *path,
				const char *to)
{
	static const enum audit_file_op ops[] = {
	    [FUSE_CHANGE_CREATED] = AUDIT_FILE_CREATED,
	    [FUSE_CHANGE_WRITTEN] = AUDIT_FILE_WRITTEN,
	    [FUSE_CHANGE_RENAMED] = AUDIT_FILE_RENAMED,
	    [FUSE_CHANGE_DELETED] = AUDIT_FILE_DELETED,
	};

	egress_send(*(const int *)opaque, audit_event_file(ops[change], path, to));
}

/* The guest's exec environment: the proxy for every client that honours the variables,
 * and each secret's base URL and placeholder. */
static int egress_env(struct sandbox_config *cfg)
{
	struct config_err e, *err = &e;
	static const char *const proxy_vars[] = {"HTTP_PROXY", "HTTPS_PROXY", "http_proxy",
						 "https_proxy"};
	char kv[512];

	for (size_t i = 0; i < sizeof(proxy_vars) / sizeof(proxy_vars[0]); i++) {
		snprintf(kv, sizeof(kv), "%s=http://127.0.0.1:%u", proxy_vars[i],
			 BROKER_PROXY_PORT);
		if (config_add_env(cfg, "egress", kv, err) < 0)
			goto fail;
	}
	if (config_add_env(cfg, "egress", "NO_PROXY=localhost,127.0.0.1,::1", err) < 0 ||
	    config_add_env(cfg, "egress", "no_proxy=localhost,127.0.0.1,::1", err) < 0)
		goto fail;
	for (unsigned i = 0; i < cfg->nsecrets; i++) {
		snprintf(kv, sizeof(kv), "%s_BASE_URL=http://127.0.0.1:%u", cfg->secrets[i].name,
			 BROKER_SECRET_PORT + i);
		if (config_add_env(cfg, "egress", kv, err) < 0)
			goto fail;
		snprintf(kv, sizeof(kv), "%s_API_KEY=%s", cfg->secrets[i].name, EGRESS_PLACEHOLDER);
		if (config_add_env(cfg, "egress", kv, err) < 0)
			goto fail;
	}
	return 0;
fail:
	log_err("egress: %s", err->msg);
	return -1;
}

/* Where the broker listens: the sandbox's --vsock-uds, or <dir>/vsock/v in a directory
 * the jail user owns (the VMM connects there from inside its jail). */
static int egress_socket_dir(struct sandbox_config *cfg, const struct rundir *rd, uid_t uid,
			     gid_t gid)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct config_err err;

	if (cfg->vm.vsock_uds)
		return 0;
	if ((size_t)snprintf(dir, sizeof(dir), "%s/vsock", rd->dir) >= sizeof(dir) ||
	    (size_t)snprintf(path, sizeof(path), "%s/v", dir) >= sizeof(path)) {
		log_err("egress: the sandbox's directory `%s` is too long", rd->dir);
		return -1;
	}
	if ((mkdir(dir, 0700) < 0 && errno != EEXIST) ||
	    (geteuid() == 0 && chown(dir, uid, gid) < 0)) {
		log_err("egress: cannot make `%s`: %m", dir);
		return -1;
	}
	if (config_set_vsock_uds(cfg, "egress", path, &err) < 0) {
		log_err("egress: %s", err.msg);
		return -1;
	}
	return 0;
}

/* The secrets' values, from the host's environment: read here, in the process that
 * forks the broker; the VMM's copy of the configuration never holds them. */
static int egress_secret_values(const struct sandbox_config *cfg, struct broker_config *bc)
{
	for (unsigned i = 0; i < cfg->nsecrets; i++) {
		const struct config_secret *s = &cfg->secrets[i];
		struct broker_secret *b = &bc->secrets[i];
		const char *value = getenv(s->var);

		if (!value || !*value) {
			log_err("--secret %s: the host's environment has no %s (or it is empty)",
				s->name, s->var);
			return -1;
		}
		snprintf(b->name, sizeof(b->name), "%s", s->name);
		snprintf(b->host, sizeof(b->host), "%s", s->host);
		snprintf(b->header, sizeof(b->header), "%s", s->header);
		b->port = s->port;
		b->value = strdup(value);
		if (!b->value)
			return -1;
		/* The only copy left is the broker's: not this process's environment (the VMM,
		 * forked later, would inherit it, however cleared its environment is). */
		explicit_bzero((char *)value, strlen(value));
		unsetenv(s->var);
	}
	bc->nsecrets = cfg->nsecrets;
	return 0;
}

/* In the broker's process: stdin and stdout (and stderr when `quiet`: nobody reads it,
 * and a caller's pipe must not wait for the broker) on /dev/null, every inherited
 * descriptor but `keep` closed. */
static void egress_fds(const int *keep, unsigned nkeep, bool quiet)
{
	int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (null_fd >= 0) {
		dup2(null_fd, STDIN_FILENO);
		dup2(null_fd, STDOUT_FILENO);
		if (quiet)
			dup2(null_fd, STDERR_FILENO);
		close(null_fd);
	}
	jail_close_fds(keep, nkeep);
}

struct egress_drop_args {
	uid_t uid;
	gid_t gid;
	int parent_fd;
};

/* In the broker's process, once its sockets listen: the jail user (as root), no
 * capability, no_new_privs, gone with its parent. Only then does it read anything the
 * guest sends. */
static int egress_drop(void *opaque)
{
	const struct egress_drop_args *a = opaque;
	uid_t uid = a->uid;
	gid_t gid = a->gid;
	int parent_fd = a->parent_fd;

	struct pollfd p = {.fd = parent_fd, .events = POLLRDHUP};
	bool root = geteuid() == 0;

	/* Not root, it has no capability to give up, and nothing to gain them back with
	 * (no_new_privs). */
	if (jail_drop_privileges(uid, gid, root, root, "egress") < 0)
		return -1;
	/* After the change of user, which clears it; then the parent checked for (a hang-up
	 * only: the supervisor's start event may be waiting already). */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (poll(&p, 1, 0) < 0 || (p.revents & (POLLHUP | POLLRDHUP)))
		return -1;
	/* Ready: egress_start waits for this. */
	if (send(parent_fd, "r", 1, MSG_NOSIGNAL) != 1)
		return -1;
	return 0;
}

/* The broker's first message: "r" once it serves, or its end (it said why). */
static int egress_wait_ready(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char ready = 0;

	if (poll(&p, 1, EGRESS_READY_MS) != 1 || recv(fd, &ready, 1, 0) != 1 || ready != 'r') {
		log_err("egress: the broker did not start%s", p.revents ? "" : " in time");
		return -1;
	}
	return 0;
}

int egress_start(struct sandbox_config *cfg, const struct rundir *rd, uid_t uid, gid_t gid,
		 bool quiet, struct egress *e)
{
	struct broker_config *bc;
	int sup[2] = {-1, -1}, vmm[2] = {-1, -1};
	char why[AUDIT_REASON_MAX];
	pid_t pid;

	*e = (struct egress){.pid = -1, .supervisor_fd = -1, .vmm_fd = -1};
	bc = calloc(1, sizeof(*bc));
	if (!bc) {
		log_err("egress: out of memory");
		return -1;
	}
	if (egress_socket_dir(cfg, rd, uid, gid) < 0 || egress_env(cfg) < 0 ||
	    egress_secret_values(cfg, bc) < 0)
		goto fail;
	/* The guest's relay ports: set anew at each start (`clawvm vmm` may start again). */
	cfg->vm.negress_ports = 0;
	for (unsigned i = 0; i < 1 + cfg->nsecrets; i++) {
		struct config_err err;

		if (config_add_egress_port(cfg, "egress", BROKER_PROXY_PORT + i, &err) < 0) {
			log_err("%s", err.msg);
			goto fail;
		}
	}
	snprintf(bc->prefix, sizeof(bc->prefix), "%s", cfg->vm.vsock_uds);
	if ((size_t)snprintf(bc->control_path, sizeof(bc->control_path), "%s/%s", rd->dir,
			     RUNDIR_EGRESS_SOCK) >= sizeof(bc->control_path)) {
		log_err("egress: the sandbox's directory `%s` is too long for its control socket",
			rd->dir);
		goto fail;
	}
	bc->control_uid = getuid();
	if (policy_copy(&bc->policy, &cfg->egress) < 0) {
		log_err("egress: out of memory");
		goto fail;
	}
	bc->ca_file = cfg->ca_file[0] ? cfg->ca_file : NULL;
	bc->max_bytes = cfg->egress_max_bytes;
	if (cfg->audit_log[0]) {
		bc->audit = audit_open(cfg->audit_log, why, sizeof(why));
		if (!bc->audit) {
			log_err("--audit-log: %s", why);
			goto fail;
		}
	}
	/* The VMM's events only matter to a log. */
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sup) < 0 ||
	    (bc->audit && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, vmm) < 0)) {
		log_err("egress: socketpair: %m");
		goto fail;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		log_err("egress: fork: %m");
		goto fail;
	}
	if (pid == 0) {
		close(sup[0]);
		if (vmm[0] >= 0)
			close(vmm[0]);
		int keep[3] = {sup[1], vmm[1], bc->audit ? audit_fd(bc->audit) : -1};

		prctl(PR_SET_NAME, "clawvm-broker", 0, 0, 0);
		egress_fds(keep, 3, quiet);
		struct egress_drop_args drop = {uid, gid, sup[1]};

		bc->supervisor_fd = sup[1];
		bc->vmm_events_fd = vmm[1];
		bc->ready = egress_drop;
		bc->ready_opaque = &drop;
		bc->chown_socks = geteuid() == 0;
		bc->sock_uid = uid;
		bc->sock_gid = gid;
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		_exit(broker_run(bc) < 0 ? VM_EXIT_FAILURE : 0);
	}
	close(sup[1]);
	sup[1] = -1;
	if (vmm[1] >= 0)
		close(vmm[1]);
	vmm[1] = -1;
	if (egress_wait_ready(sup[0]) < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		goto fail;
	}
	e->pid = pid;
	e->supervisor_fd = sup[0];
	e->vmm_fd = vmm[0];
	e->audit = bc->audit != NULL;
	cfg->vm.audit_fd = vmm[0];
	if (vmm[0] >= 0) {
		cfg->vm.file_changed = egress_file_changed;
		cfg->vm.file_opaque = &cfg->vm.audit_fd;
	}
	if (bc->audit)
		audit_close(bc->audit);
	for (unsigned i = 0; i < bc->nsecrets; i++) {
		explicit_bzero(bc->secrets[i].value, strlen(bc->secrets[i].value));
		free(bc->secrets[i].value);
	}
	policy_release(&bc->policy);
	free(bc);
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (sup[i] >= 0)
			close(sup[i]);
		if (vmm[i] >= 0)
			close(vmm[i]);
	}
	if (bc->audit)
		audit_close(bc->audit);
	for (unsigned i = 0; i < BROKER_MAX_SECRETS; i++)
		free(bc->secrets[i].value);
	policy_release(&bc->policy);
	free(bc);
	return -1;
}

void egress_event(struct egress *e, char *event)
{
	if (e->audit && e->supervisor_fd >= 0 && event &&
	    send(e->supervisor_fd, event, strlen(event), MSG_NOSIGNAL) < 0)
		log_warn("egress: an audit event was lost: %m");
	free(event);
}

void egress_stop(struct egress *e)
{
	const struct timespec pause = {0, 10 * 1000 * 1000};
	int status;

	if (e->supervisor_fd >= 0)
		close(e->supervisor_fd);
	e->supervisor_fd = -1;
	if (e->vmm_fd >= 0)
		close(e->vmm_fd);
	e->vmm_fd = -1;
	if (e->pid <= 0)
		return;
	for (int waited = 0; waitpid(e->pid, &status, WNOHANG) == 0; waited += 10) {
		if (waited >= EGRESS_STOP_MS) {
			log_warn("egress: the broker did not end in %d ms; killed", EGRESS_STOP_MS);
			kill(e->pid, SIGKILL);
			waitpid(e->pid, &status, 0);
			break;
		}
		nanosleep(&pause, NULL);
	}
	e->pid = -1;
}

void egress_send(int fd, char *event)
{
	static atomic_bool said;
	static atomic_uint_fast64_t lost;
	uint64_t n = atomic_exchange(&lost, 0);

	if (fd < 0) {
		free(event);
		return;
	}
	/* The count of those dropped before, once there is room again: the log says so. */
	if (n) {
		char *marker = audit_event_lost(n);

		if (!marker || send(fd, marker, strlen(marker), MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			atomic_fetch_add(&lost, n);
		free(marker);
	}
	if (!event || send(fd, event, strlen(event), MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
		atomic_fetch_add(&lost, 1);
		if (!atomic_exchange(&said, true))
			log_warn("egress: audit events are dropped (the broker's socket is full): "
				 "the log will count them");
	}
	free(event);
}

char **egress_argv_dup(const char *const *argv)
{
	size_t n = 0;
	char **copy;

	while (argv[n])
		n++;
	copy = calloc(n + 1, sizeof(*copy));
	for (size_t i = 0; copy && i < n; i++) {
		copy[i] = strdup(argv[i]);
		if (!copy[i]) {
			egress_argv_free(copy);
			return NULL;
		}
	}
	return copy;
}

void egress_argv_free(char **argv)
{
	for (size_t i = 0; argv && argv[i]; i++)
		free(argv[i]);
	free(argv);
}

/* A sandbox's cgroup v2 and rlimits (cgroup.h): the limit files built from the
 * configuration, the cgroup made where cgroup v2's rules allow it, the VMM moved in,
 * and the cgroup removed once the VMM is gone. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "base/fd_budget.h"
#include "vmm/cgroup.h"
#include "vmm/layout.h"

/* The controllers the limits need, each enabled for the sandbox's cgroup by its parent. */
static const char *const controllers[] = {"cpu", "memory", "pids"};

#define CGROUP_REMOVE_TRIES 200 /* of 10 ms: 2 s */

uint64_t cgroup_allowance_mib(const struct sandbox_config *c)
{
	return CGROUP_VMM_MIB + (uint64_t)c->vm.cpus * CGROUP_VCPU_MIB +
	       c->vm.mem_mib / CGROUP_RAM_FRACTION + CGROUP_SANITIZER_MIB;
}

void cgroup_limits_build(const struct sandbox_config *c, struct cgroup_limits *l)
{
	uint64_t mem_bytes = (c->vm.mem_mib + cgroup_allowance_mib(c)) * MiB;
	struct cgroup_limit *f = l->files;

	memset(l, 0, sizeof(*l));
	f[0].file = "cpu.max";
	snprintf(f[0].value, sizeof(f[0].value), "%llu %u",
		 (unsigned long long)c->vm.cpus * CGROUP_CPU_PERIOD_US, CGROUP_CPU_PERIOD_US);
	f[1].file = "memory.max";
	snprintf(f[1].value, sizeof(f[1].value), "%llu", (unsigned long long)mem_bytes);
	/* Guest RAM swapped out by the host would leave the limit's bound and slow the
	 * guest unseen; a kernel without swap accounting has no such file. */
	f[2].file = "memory.swap.max";
	snprintf(f[2].value, sizeof(f[2].value), "0");
	f[2].optional = true;
	f[3].file = "pids.max";
	snprintf(f[3].value, sizeof(f[3].value), "%u", c->pids);
}

int cgroup_self_path(const char *text, char *out, size_t size)
{
	const char *line = text;

	while (line && *line) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);

		if (len > 3 && !strncmp(line, "0::", 3) && line[3] == '/') {
			if (len - 3 >= size)
				return -1;
			memcpy(out, line + 3, len - 3);
			out[len - 3] = '\0';
			return 0;
		}
		line = end ? end + 1 : NULL;
	}
	return -1;
}

/* A small file's text (cgroup files, /proc), NUL-terminated; -1 with errno. */
static int read_text(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, size - 1);
	if (n < 0) {
		int saved = errno;

		close(fd);
		errno = saved;
		return -1;
	}
	close(fd);
	buf[n] = '\0';
	return 0;
}

/* Writes `text` to fd (from open: closed here) as one write, as cgroup files take one
 * value per write; -1 with errno. */
static int write_fd(int fd, const char *text)
{
	size_t len = strlen(text);
	ssize_t n;
	int saved;

	if (fd < 0)
		return -1;
	n = write(fd, text, len);
	saved = errno;
	close(fd);
	errno = saved;
	return n == (ssize_t)len ? 0 : -1;
}

/* Writes `text` to the file `file` of the cgroup open as dir_fd. */
static int write_at(int dir_fd, const char *file, const char *text)
{
	return write_fd(openat(dir_fd, file, O_WRONLY | O_CLOEXEC), text);
}

/* Writes `text` to dir/file. */
static int write_in(const char *dir, const char *file, const char *text)
{
	char path[PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return write_fd(open(path, O_WRONLY | O_CLOEXEC), text);
}

/* Sets err's message and returns CGROUP_NONE: no limits, which is a warning. */
__attribute__((format(printf, 2, 3))) static int no_limits(struct config_err *err, const char *fmt,
							   ...)
{
	va_list ap;
	int n;

	n = snprintf(err->msg, sizeof(err->msg), "no cgroup limits: ");
	va_start(ap, fmt);
	vsnprintf(err->msg + n, sizeof(err->msg) - (size_t)n, fmt, ap);
	va_end(ap);
	return CGROUP_NONE;
}

/* Whether the space-separated `list` holds `word`. */
static bool has_word(const char *list, const char *word)
{
	size_t len = strlen(word);

	for (const char *p = list; (p = strstr(p, word)); p += len) {
		if ((p == list || p[-1] == ' ') &&
		    (p[len] == '\0' || p[len] == ' ' || p[len] == '\n'))
			return true;
	}
	return false;
}

/* Why a cgroup write failed: a warning (CGROUP_NONE) for a user without delegation, an
 * error otherwise. */
static int refused(const char *what, const char *path, int errnum, struct config_err *err)
{
	if ((errnum == EACCES || errnum == EPERM || errnum == EROFS) && geteuid() != 0)
		return no_limits(err,
				 "`%s` is not writable (run as root, or under a systemd delegated "
				 "scope)",
				 path);
	if (errnum == EBUSY)
		return config_fail(err,
				   "cannot %s `%s`: it holds processes (cgroup v2 lets only a "
				   "cgroup without processes hand controllers to its children)",
				   what, path);
	return config_fail(err, "cannot %s `%s`: %s", what, path, strerror(errnum));
}

/* Whether dir has the controllers to hand on: 0, or CGROUP_NONE (err->msg). */
static int controllers_available(const char *dir, struct config_err *err)
{
	char path[PATH_MAX + 32], list[512];

	snprintf(path, sizeof(path), "%s/cgroup.controllers", dir);
	if (read_text(path, list, sizeof(list)) < 0)
		return no_limits(err, "cannot read `%s`: %s", path, strerror(errno));
	for (size_t i = 0; i < sizeof(controllers) / sizeof(controllers[0]); i++) {
		if (!has_word(list, controllers[i]))
			return no_limits(err, "the %s controller is not available in `%s`",
					 controllers[i], dir);
	}
	return 0;
}

/* Enables the controllers for dir's children: 0, CGROUP_NONE or -1 (err->msg). */
static int controllers_enable(const char *dir, struct config_err *err)
{
	char path[PATH_MAX + 32], enabled[512], word[16];
	int ret = controllers_available(dir, err);

	if (ret)
		return ret;
	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", dir);
	if (read_text(path, enabled, sizeof(enabled)) < 0)
		return refused("read", path, errno, err);
	for (size_t i = 0; i < sizeof(controllers) / sizeof(controllers[0]); i++) {
		if (has_word(enabled, controllers[i]))
			continue;
		snprintf(word, sizeof(word), "+%s", controllers[i]);
		if (write_in(dir, "cgroup.subtree_control", word) < 0)
			return refused("enable the controllers in", path, errno, err);
	}
	return 0;
}

/* mkdir that finds an existing directory fine. */
static int make_dir(const char *path, struct config_err *err)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return refused("make the cgroup", path, errno, err);
	return 0;
}

/* Whether the only member of cgroup dir is this process. */
static bool alone_in(const char *dir)
{
	char path[PATH_MAX + 32], procs[64], self[24];

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	snprintf(self, sizeof(self), "%d\n", (int)getpid());
	return read_text(path, procs, sizeof(procs)) == 0 && !strcmp(procs, self);
}

/* The directory the sandbox's cgroup goes in, with the controllers enabled for its
 * children (the rules in cgroup.h): 0, CGROUP_NONE or -1 (err->msg). */
static int pick_parent(char *parent, size_t size, struct config_err *err)
{
	char text[4096], self[PATH_MAX], leaf[PATH_MAX + 16];
	struct statfs fs;
	int ret;

	if (statfs(CGROUP_MOUNT, &fs) < 0 || fs.f_type != CGROUP2_SUPER_MAGIC)
		return no_limits(err,
				 "no cgroup v2 at " CGROUP_MOUNT " (a cgroup v1 or hybrid host)");
	if (read_text("/proc/self/cgroup", text, sizeof(text)) < 0 ||
	    cgroup_self_path(text, self, sizeof(self)) < 0)
		return no_limits(err, "this process is in no cgroup v2");
	if (!strcmp(self, "/")) {
		snprintf(parent, size, "%s", CGROUP_MOUNT);
		return controllers_enable(parent, err);
	}
	if ((size_t)snprintf(parent, size, "%s%s", CGROUP_MOUNT, self) >= size)
		return config_fail(err, "cannot use the cgroup `%s`: the path is too long", self);
	if (alone_in(parent)) {
		/* Out of the way into a leaf, so that our cgroup may have children with
		 * controllers. */
		ret = controllers_available(parent, err);
		if (ret)
			return ret;
		snprintf(leaf, sizeof(leaf), "%s/supervisor", parent);
		if ((ret = make_dir(leaf, err)) != 0)
			return ret;
		if (write_in(leaf, "cgroup.procs", "0") < 0)
			return refused("move clawvm into", leaf, errno, err);
		return controllers_enable(parent, err);
	}
	if (geteuid() != 0)
		return no_limits(err,
				 "`%s` holds other processes, so it cannot hold the sandbox's (run "
				 "as root, or alone under a systemd delegated scope)",
				 parent);
	snprintf(parent, size, "%s", CGROUP_MOUNT);
	if ((ret = controllers_enable(parent, err)) != 0)
		return ret;
	snprintf(parent, size, "%s/clawvm", CGROUP_MOUNT);
	if ((ret = make_dir(parent, err)) != 0)
		return ret;
	return controllers_enable(parent, err);
}

/* Whether cgroup dir has no member process left (cgroup.events' "populated 0"). */
static bool empty_cgroup(const char *dir)
{
	char file[PATH_MAX + 16], events[256];

	snprintf(file, sizeof(file), "%s/cgroup.events", dir);
	return read_text(file, events, sizeof(events)) == 0 && strstr(events, "populated 0");
}

/* Removes the sandbox cgroups in parent that supervisors killed with SIGKILL left: every
 * `clawvm-*` without a member, made over CGROUP_SWEEP_AGE_S ago. A live sandbox's cgroup
 * always has its VMM in it, except from its making to the VMM's birth (milliseconds, and
 * the age spares it) and after the VMM ended (its supervisor is removing it, and takes an
 * already removed one fine). Best effort: one that fails is left for the next sweep. */
static void sweep(const char *parent)
{
	DIR *d = opendir(parent);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		char path[PATH_MAX];
		struct stat st;

		if (strncmp(e->d_name, "clawvm-", 7) ||
		    (size_t)snprintf(path, sizeof(path), "%s/%s", parent, e->d_name) >=
			sizeof(path) ||
		    stat(path, &st) < 0 || !S_ISDIR(st.st_mode) ||
		    time(NULL) - st.st_ctime < CGROUP_SWEEP_AGE_S || !empty_cgroup(path))
			continue;
		rmdir(path);
	}
	closedir(d);
}

/* Removes a cgroup of ours that a dead supervisor left, if nothing runs in it. */
static int remove_leftover(const struct cgroup *cg, struct config_err *err)
{
	if (empty_cgroup(cg->path) && rmdir(cg->path) == 0)
		return 0;
	return config_fail(err,
			   "cannot make the sandbox's cgroup `%s`: it exists and is in use "
			   "(another sandbox of that name?)",
			   cg->path);
}

int cgroup_create(struct cgroup *cg, const struct sandbox_config *c, const struct cgroup_limits *l,
		  struct config_err *err)
{
	char parent[PATH_MAX];
	int ret;

	cg->path[0] = '\0';
	cg->fd = -1;
	ret = pick_parent(parent, sizeof(parent), err);
	if (ret)
		return ret;
	sweep(parent);
	if (c->name[0])
		ret = snprintf(cg->path, sizeof(cg->path), "%s/clawvm-%s", parent, c->name);
	else
		ret = snprintf(cg->path, sizeof(cg->path), "%s/clawvm-%d", parent, (int)getpid());
	if ((size_t)ret >= sizeof(cg->path)) {
		cg->path[0] = '\0';
		return config_fail(err, "cannot make the sandbox's cgroup in `%s`: too long",
				   parent);
	}
	if (mkdir(cg->path, 0755) < 0) {
		if (errno != EEXIST)
			ret = refused("make the sandbox's cgroup", cg->path, errno, err);
		else if ((ret = remove_leftover(cg, err)) == 0 && mkdir(cg->path, 0755) < 0)
			ret = refused("make the sandbox's cgroup", cg->path, errno, err);
		if (ret) {
			cg->path[0] = '\0';
			return ret;
		}
	}
	cg->fd = open(cg->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg->fd < 0) {
		config_fail(err, "cannot open the sandbox's cgroup `%s`: %s", cg->path,
			    strerror(errno));
		goto err_dir;
	}
	for (size_t i = 0; i < CGROUP_NLIMITS; i++) {
		const struct cgroup_limit *f = &l->files[i];

		if (write_at(cg->fd, f->file, f->value) == 0 || (f->optional && errno == ENOENT))
			continue;
		config_fail(err, "cannot set %s to %s in `%s`: %s", f->file, f->value, cg->path,
			    strerror(errno));
		goto err_fd;
	}
	return CGROUP_MADE;
err_fd:
	close(cg->fd);
	cg->fd = -1;
err_dir:
	rmdir(cg->path);
	cg->path[0] = '\0';
	return -1;
}

int cgroup_attach(const struct cgroup *cg, pid_t pid, struct config_err *err)
{
	char text[24];

	snprintf(text, sizeof(text), "%d", (int)pid);
	if (write_at(cg->fd, "cgroup.procs", text) < 0)
		return config_fail(err, "cannot move process %d into the cgroup `%s`: %s", (int)pid,
				   cg->path, strerror(errno));
	return 0;
}

/* SIGKILL to every member, for kernels without cgroup.kill (before 5.14). */
static void kill_members(const struct cgroup *cg)
{
	char path[PATH_MAX + 16], procs[4096];

	snprintf(path, sizeof(path), "%s/cgroup.procs", cg->path);
	if (read_text(path, procs, sizeof(procs)) < 0)
		return;
	for (char *p = procs, *end; *p; p = end) {
		long pid = strtol(p, &end, 10);

		if (end == p)
			break;
		if (pid > 0)
			kill((pid_t)pid, SIGKILL);
	}
}

int cgroup_remove(struct cgroup *cg, struct config_err *err)
{
	const struct timespec pause = {0, 10 * 1000 * 1000};
	int ret = 0;

	if (cg->fd < 0)
		return 0;
	if (write_at(cg->fd, "cgroup.kill", "1") < 0)
		kill_members(cg);
	/* Members that exited are let go of asynchronously: rmdir says EBUSY till then. */
	for (int i = 0; rmdir(cg->path) < 0 && errno != ENOENT; i++) {
		if (errno != EBUSY || i == CGROUP_REMOVE_TRIES) {
			ret = config_fail(err, "cannot remove the sandbox's cgroup `%s`: %s",
					  cg->path, strerror(errno));
			break;
		}
		if (i % 20 == 19)
			kill_members(cg);
		nanosleep(&pause, NULL);
	}
	close(cg->fd);
	cg->fd = -1;
	cg->path[0] = '\0';
	return ret;
}

unsigned long cgroup_oom_kills(const struct cgroup *cg)
{
	char path[PATH_MAX + 32], events[512];
	const char *at;

	if (cg->fd < 0)
		return 0;
	snprintf(path, sizeof(path), "%s/memory.events", cg->path);
	if (read_text(path, events, sizeof(events)) < 0)
		return 0;
	for (at = events; (at = strstr(at, "oom_kill ")); at++)
		if (at == events || at[-1] == '\n')
			return strtoul(at + 9, NULL, 10);
	return 0;
}

int rlimits_apply(struct config_err *err)
{
	const struct rlimit no_core = {0, 0};
	struct rlimit files = {FD_BUDGET_NOFILE, FD_BUDGET_NOFILE}, now;
	char text[32];

	/* The hard limit cannot pass fs.nr_open, whoever asks. */
	if (read_text("/proc/sys/fs/nr_open", text, sizeof(text)) == 0) {
		unsigned long nr_open = strtoul(text, NULL, 10);

		if (nr_open > 0 && nr_open < files.rlim_max)
			files.rlim_cur = files.rlim_max = nr_open;
	}
	if (setrlimit(RLIMIT_NOFILE, &files) < 0) {
		/* Without CAP_SYS_RESOURCE: as many as the hard limit allows. */
		if (errno != EPERM || getrlimit(RLIMIT_NOFILE, &now) < 0)
			return config_fail(err, "cannot set the open-file limit to %llu: %s",
					   (unsigned long long)files.rlim_max, strerror(errno));
		now.rlim_cur = now.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &now) < 0)
			return config_fail(err, "cannot set the open-file limit to %llu: %s",
					   (unsigned long long)now.rlim_max, strerror(errno));
	}
	if (setrlimit(RLIMIT_CORE, &no_core) < 0)
		return config_fail(err, "cannot turn core dumps off: %s", strerror(errno));
	return 0;
}

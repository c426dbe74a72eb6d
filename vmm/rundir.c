/* Sandbox directories (rundir.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "vmm/rundir.h"

/* A directory we own that nobody else may enter. */
static int rundir_private(const char *dir, struct config_err *err)
{
	struct stat st;

	if (lstat(dir, &st) < 0)
		return config_fail(err, "`%s`: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid())
		return config_fail(err, "`%s` is not a directory of this user", dir);
	if (st.st_mode & 077)
		return config_fail(err,
				   "`%s` can be entered by others (mode %03o); it must be 0700",
				   dir, st.st_mode & 0777);
	return 0;
}

int rundir_base(char base[PATH_MAX], struct config_err *err)
{
	const char *env = getenv("CLAWVM_RUNTIME_DIR"), *xdg = getenv("XDG_RUNTIME_DIR");
	int n;

	if (env && *env)
		n = snprintf(base, PATH_MAX, "%s", env);
	else if (xdg && *xdg)
		n = snprintf(base, PATH_MAX, "%s/clawvm", xdg);
	else if (geteuid() == 0)
		n = snprintf(base, PATH_MAX, "/run/clawvm");
	else /* as tmux does: private, and checked so below */
		n = snprintf(base, PATH_MAX, "/tmp/clawvm-%u", (unsigned)geteuid());
	if (n <= 0 || n >= PATH_MAX - 80)
		return config_fail(err, "the runtime directory path is too long");
	if (mkdir(base, 0700) < 0 && errno != EEXIST)
		return config_fail(err, "cannot make `%s`: %s", base, strerror(errno));
	return rundir_private(base, err);
}

/* The pid file's second word: the process's start time in clock ticks since boot. */
static unsigned long long proc_start_time(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long start = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* After the command name in parentheses (which may hold anything): field 3 on;
	 * starttime is field 22. */
	p = strrchr(buf, ')');
	if (!p)
		return 0;
	for (int field = 2; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (p)
		start = strtoull(p + 1, NULL, 10);
	return start;
}

/* Whether DIR's `pid` names a live process (the same one that wrote it). */
static bool rundir_alive(const char *dir)
{
	char path[PATH_MAX + 8], buf[64];
	unsigned long long start;
	ssize_t n;
	int fd, pid;

	if (snprintf(path, sizeof(path), "%s/pid", dir) >= (int)sizeof(path))
		return false;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	if (sscanf(buf, "%d %llu", &pid, &start) != 2 || pid <= 0)
		return false;
	return proc_start_time(pid) == start && start != 0;
}

/* Removes DIR and what clawvm puts in it. */
static void rundir_clear(const char *dir)
{
	static const char *const names[] = {"api.sock", RUNDIR_EGRESS_SOCK, "pid", "pid.tmp"};
	char path[PATH_MAX + 16];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (snprintf(path, sizeof(path), "%s/%s", dir, names[i]) < (int)sizeof(path))
			unlink(path);
	}
	/* The egress sockets' directory (vmm/egress.h): the VMM's and the broker's sockets,
	 * left there by a VMM or broker killed before it could unlink them. */
	if (snprintf(path, sizeof(path), "%s/vsock", dir) < (int)sizeof(path)) {
		DIR *d = opendir(path);
		struct dirent *e;

		while (d && (e = readdir(d)))
			if (e->d_name[0] != '.')
				unlinkat(dirfd(d), e->d_name, 0);
		if (d)
			closedir(d);
		rmdir(path);
	}
	/* The jail's root: a mount point in the jail's own mount namespace only. */
	if (snprintf(path, sizeof(path), "%s/root", dir) < (int)sizeof(path))
		rmdir(path);
	rmdir(dir);
}

/* A directory that has no pid yet may be a sandbox starting right now: only one older than
 * a minute without a pid is stale. */
static bool rundir_stale(const char *dir)
{
	char path[PATH_MAX + 8];
	struct stat st;

	if (rundir_alive(dir))
		return false;
	if (snprintf(path, sizeof(path), "%s/pid", dir) < (int)sizeof(path) &&
	    access(path, F_OK) == 0)
		return true;
	return stat(dir, &st) == 0 && st.st_mtime + 60 < time(NULL);
}

int rundir_create(struct rundir *rd, const char *name, const char *api_sock, struct config_err *err)
{
	char base[PATH_MAX], link[PATH_MAX + 16];

	if (rundir_base(base, err) < 0)
		return -1;
	if (snprintf(rd->dir, sizeof(rd->dir), "%s/%s", base, name) >= (int)sizeof(rd->dir))
		return config_fail(err, "the runtime directory path is too long");
	if (mkdir(rd->dir, 0700) < 0) {
		if (errno != EEXIST)
			return config_fail(err, "cannot make `%s`: %s", rd->dir, strerror(errno));
		if (!rundir_stale(rd->dir))
			return config_fail(err, "a sandbox named `%s` exists already", name);
		rundir_clear(rd->dir);
		if (mkdir(rd->dir, 0700) < 0)
			return config_fail(err, "cannot make `%s`: %s", rd->dir, strerror(errno));
	}
	if (!api_sock) {
		if (snprintf(rd->sock, sizeof(rd->sock), "%s/api.sock", rd->dir) >=
		    (int)sizeof(rd->sock))
			return config_fail(err, "the runtime directory path is too long");
		return 0;
	}
	if (!realpath(api_sock, rd->sock)) {
		/* The socket does not exist yet: its directory does. */
		char dir[PATH_MAX], *slash;
		const char *leaf;

		snprintf(dir, sizeof(dir), "%s", api_sock);
		slash = strrchr(dir, '/');
		leaf = slash ? slash + 1 : api_sock;
		if (slash)
			*slash = '\0';
		if (!realpath(slash ? (dir[0] ? dir : "/") : ".", rd->sock) ||
		    strlen(rd->sock) + strlen(leaf) + 2 > sizeof(rd->sock)) {
			rundir_clear(rd->dir);
			return config_fail(err, "--api-sock `%s`: %s", api_sock, strerror(errno));
		}
		if (rundir_private(rd->sock, err) < 0) {
			rundir_clear(rd->dir);
			return -1;
		}
		strcat(rd->sock, "/");
		strcat(rd->sock, leaf);
	}
	if (snprintf(link, sizeof(link), "%s/api.sock", rd->dir) >= (int)sizeof(link))
		return config_fail(err, "the runtime directory path is too long");
	if (symlink(rd->sock, link) < 0) {
		rundir_clear(rd->dir);
		return config_fail(err, "cannot link `%s`: %s", link, strerror(errno));
	}
	return 0;
}

int rundir_publish(struct rundir *rd, struct config_err *err)
{
	char path[PATH_MAX + 8], tmp[PATH_MAX + 8], line[64];
	int fd, len;

	if (snprintf(path, sizeof(path), "%s/pid", rd->dir) >= (int)sizeof(path) ||
	    snprintf(tmp, sizeof(tmp), "%s/pid.tmp", rd->dir) >= (int)sizeof(tmp))
		return config_fail(err, "the runtime directory path is too long");
	len = snprintf(line, sizeof(line), "%d %llu\n", (int)getpid(), proc_start_time(getpid()));
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, line, (size_t)len) != len || close(fd) < 0 || rename(tmp, path) < 0)
		return config_fail(err, "cannot write `%s`: %s", path, strerror(errno));
	return 0;
}

void rundir_remove(struct rundir *rd)
{
	if (rd->dir[0])
		rundir_clear(rd->dir);
}

int rundir_find(const char *name, char sock[PATH_MAX], struct config_err *err)
{
	char base[PATH_MAX], dir[PATH_MAX + 80];
	struct sandbox_config probe;

	if (config_set_name(&probe, "sandbox", name, err) < 0 || rundir_base(base, err) < 0)
		return -1;
	if (snprintf(dir, sizeof(dir), "%s/%s", base, name) >= (int)sizeof(dir))
		return config_fail(err, "the runtime directory path is too long");
	if (access(dir, F_OK) < 0)
		return config_fail(err, "no sandbox named `%s` (see clawvm ps)", name);
	if (!rundir_alive(dir)) {
		if (rundir_stale(dir))
			rundir_clear(dir);
		return config_fail(err, "sandbox `%s` is not running (its VMM is gone)", name);
	}
	if (snprintf(sock, PATH_MAX, "%s/api.sock", dir) >= PATH_MAX)
		return config_fail(err, "the runtime directory path is too long");
	return 0;
}

static int name_order(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int rundir_list(rundir_fn *fn, void *opaque, struct config_err *err)
{
	char base[PATH_MAX], dir[PATH_MAX + 300], sock[PATH_MAX + 310];
	char *names[1024];
	struct dirent *de;
	unsigned n = 0, live = 0;
	DIR *d;

	if (rundir_base(base, err) < 0)
		return -1;
	d = opendir(base);
	if (!d)
		return config_fail(err, "cannot read `%s`: %s", base, strerror(errno));
	while ((de = readdir(d)) && n < sizeof(names) / sizeof(names[0])) {
		if (de->d_name[0] == '.')
			continue;
		names[n] = strdup(de->d_name);
		if (names[n])
			n++;
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), name_order);
	for (unsigned i = 0; i < n; i++) {
		if (snprintf(dir, sizeof(dir), "%s/%s", base, names[i]) >= (int)sizeof(dir)) {
			free(names[i]);
			continue;
		}
		if (rundir_alive(dir)) {
			if (snprintf(sock, sizeof(sock), "%s/api.sock", dir) < (int)sizeof(sock))
				fn(names[i], sock, opaque);
			live++;
		} else if (rundir_stale(dir)) {
			rundir_clear(dir);
		}
		free(names[i]);
	}
	return (int)live;
}

void rundir_new_name(char name[CONFIG_NAME_MAX + 1])
{
	unsigned char r[3] = {0};

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		unsigned v = (unsigned)getpid() ^ (unsigned)time(NULL);

		memcpy(r, &v, sizeof(r));
	}
	snprintf(name, CONFIG_NAME_MAX + 1, "sb-%02x%02x%02x", r[0], r[1], r[2]);
}

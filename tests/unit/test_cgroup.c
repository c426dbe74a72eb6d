/* The sandbox's cgroup (vmm/cgroup.h): the limit files, exactly, for several
 * configurations; the cgroup v2 path of /proc/self/cgroup; and where this host allows
 * it (root on cgroup v2 with cpu, memory and pids), a real cgroup made, a fork()ed child
 * moved in, the limits read back from the kernel and everything removed. */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmm/cgroup.h"
#include "config_fixture.h"
#include "vmm/config.h"

/* The limit file `name` of l. */
static const char *limit(const struct cgroup_limits *l, const char *name)
{
	for (size_t i = 0; i < CGROUP_NLIMITS; i++) {
		if (l->files[i].file && !strcmp(l->files[i].file, name))
			return l->files[i].value;
	}
	fail_msg("no limit file %s", name);
	return NULL;
}

static void expect_memory_max(const struct cgroup_limits *l, uint64_t mib)
{
	char want[32];

	snprintf(want, sizeof(want), "%llu", (unsigned long long)(mib * MiB));
	assert_string_equal(limit(l, "memory.max"), want);
}

static void limits_of_the_defaults(void **state)
{
	struct cgroup_limits l;
	struct config_err e;

	(void)state;
	assert_int_equal(config_set_memory(&cfg, "m", 512, &e), 0);
	cgroup_limits_build(&cfg, &l);
	assert_string_equal(limit(&l, "cpu.max"), "100000 100000");
	/* 512 guest + 64 VMM + 1 vCPU + 512/64 for KVM's tables. */
	assert_int_equal(cgroup_allowance_mib(&cfg), 73 + CGROUP_SANITIZER_MIB);
	expect_memory_max(&l, 512 + 73 + CGROUP_SANITIZER_MIB);
	assert_string_equal(limit(&l, "memory.swap.max"), "0");
	assert_string_equal(limit(&l, "pids.max"), "128");
	/* Only memory.swap.max may be missing from a kernel. */
	for (size_t i = 0; i < CGROUP_NLIMITS; i++)
		assert_int_equal(l.files[i].optional, !strcmp(l.files[i].file, "memory.swap.max"));
}

static void limits_of_larger_sandboxes(void **state)
{
	struct cgroup_limits l;
	struct config_err e;

	(void)state;
	assert_int_equal(config_set_cpus(&cfg, "c", 4, &e), 0);
	assert_int_equal(config_set_memory(&cfg, "m", 64, &e), 0);
	assert_int_equal(config_set_pids(&cfg, "p", 16, &e), 0);
	cgroup_limits_build(&cfg, &l);
	assert_string_equal(limit(&l, "cpu.max"), "400000 100000");
	expect_memory_max(&l, 64 + 64 + 4 + 1 + CGROUP_SANITIZER_MIB);
	assert_string_equal(limit(&l, "pids.max"), "16");

	assert_int_equal(config_set_cpus(&cfg, "c", 32, &e), 0);
	assert_int_equal(config_set_pids(&cfg, "p", 65536, &e), 0);
	cfg.vm.mem_mib = 65536; /* past this host's RAM perhaps: set directly */
	cgroup_limits_build(&cfg, &l);
	assert_string_equal(limit(&l, "cpu.max"), "3200000 100000");
	expect_memory_max(&l, 65536 + 64 + 32 + 1024 + CGROUP_SANITIZER_MIB);
	assert_string_equal(limit(&l, "pids.max"), "65536");
}

static void self_path(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(cgroup_self_path("0::/\n", out, sizeof(out)), 0);
	assert_string_equal(out, "/");
	assert_int_equal(cgroup_self_path("12:pids:/a\n1:name=systemd:/b\n0::/user.slice/x.scope\n",
					  out, sizeof(out)),
			 0);
	assert_string_equal(out, "/user.slice/x.scope");
	assert_int_equal(cgroup_self_path("0::/no/newline", out, sizeof(out)), 0);
	assert_string_equal(out, "/no/newline");
	/* cgroup v1 only; a path that does not fit; not a path. */
	assert_int_equal(cgroup_self_path("4:memory:/a\n3:cpu:/\n", out, sizeof(out)), -1);
	assert_int_equal(cgroup_self_path("0::/0123456789\n", out, 8), -1);
	assert_int_equal(cgroup_self_path("0::\n", out, sizeof(out)), -1);
	assert_int_equal(cgroup_self_path("", out, sizeof(out)), -1);
}

static void rlimits(void **state)
{
	struct rlimit files, core;
	pid_t pid;
	int status;

	(void)state;
	/* In a child: the hard limits it sets stay set. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct config_err e;
		struct rlimit before;

		if (getrlimit(RLIMIT_NOFILE, &before) < 0 || rlimits_apply(&e) < 0 ||
		    getrlimit(RLIMIT_NOFILE, &files) < 0 || getrlimit(RLIMIT_CORE, &core) < 0)
			_exit(1);
		if (core.rlim_cur != 0 || core.rlim_max != 0)
			_exit(2);
		if (files.rlim_cur != files.rlim_max)
			_exit(3);
		/* Exactly FD_BUDGET_NOFILE (fs.nr_open allowing); without CAP_SYS_RESOURCE
		 * (not even root has it on some hosts) a lower hard limit stays. */
		if (files.rlim_max != FD_BUDGET_NOFILE &&
		    !(files.rlim_max == before.rlim_max && before.rlim_max < FD_BUDGET_NOFILE))
			_exit(4);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* Why this host cannot hold a real cgroup test, or NULL. */
static const char *no_real_cgroup(void)
{
	static char why[256];
	char controllers[512] = "";
	struct statfs fs;
	int fd;

	if (statfs(CGROUP_MOUNT, &fs) < 0 || fs.f_type != CGROUP2_SUPER_MAGIC)
		return "no cgroup v2 at " CGROUP_MOUNT " (a cgroup v1 or hybrid host)";
	if (geteuid() != 0)
		return "not root";
	fd = open(CGROUP_MOUNT "/cgroup.controllers", O_RDONLY);
	if (fd >= 0) {
		ssize_t n = read(fd, controllers, sizeof(controllers) - 1);

		controllers[n > 0 ? n : 0] = '\0';
		close(fd);
	}
	if (!strstr(controllers, "memory") || !strstr(controllers, "pids") ||
	    !strstr(controllers, "cpu")) {
		snprintf(why, sizeof(why), "the root cgroup's controllers are `%s`", controllers);
		return why;
	}
	return NULL;
}

static void read_file(const char *dir, const char *file, char *out, size_t size)
{
	char path[PATH_MAX + 32];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, out, size - 1);
	close(fd);
	assert_true(n > 0);
	out[n] = '\0';
}

/* Where no cgroup can be made, the status says so with its reason; nothing is made. */
static void none_where_unavailable(void **state)
{
	const char *why = no_real_cgroup();
	struct cgroup_limits l;
	struct cgroup cg;

	(void)state;
	if (!why || geteuid() != 0 || strncmp(why, "no cgroup v2", 12)) {
		printf("skipped: this host has cgroup v2 (tested by real_cgroup)\n");
		skip();
	}
	cgroup_limits_build(&cfg, &l);
	assert_int_equal(cgroup_create(&cg, &cfg, &l, &err), CGROUP_NONE);
	assert_string_equal(err.msg, "no cgroup limits: no cgroup v2 at /sys/fs/cgroup (a cgroup "
				     "v1 or hybrid host)");
	assert_int_equal(cg.fd, -1);
	assert_string_equal(cg.path, "");
	assert_int_equal(cgroup_remove(&cg, &err), 0); /* nothing to remove */
}

static void real_cgroup(void **state)
{
	const char *why = no_real_cgroup();
	char name[32], text[256], want[64], path[PATH_MAX];
	struct cgroup_limits l;
	struct cgroup cg;
	struct stat st;
	int pipefd[2], status;
	pid_t child;

	(void)state;
	if (why) {
		printf("skipped: %s\n", why);
		skip();
	}
	snprintf(name, sizeof(name), "test-cgroup-%d", (int)getpid());
	assert_int_equal(config_set_name(&cfg, "n", name, &err), 0);
	assert_int_equal(config_set_cpus(&cfg, "c", 2, &err), 0);
	assert_int_equal(config_set_memory(&cfg, "m", 128, &err), 0);
	assert_int_equal(config_set_pids(&cfg, "p", 40, &err), 0);
	cgroup_limits_build(&cfg, &l);
	assert_int_equal(cgroup_create(&cg, &cfg, &l, &err), CGROUP_MADE);
	printf("made %s\n", cg.path);
	assert_non_null(strstr(cg.path, "/clawvm-test-cgroup-"));
	assert_true(cg.fd >= 0);

	assert_int_equal(pipe(pipefd), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		char byte;

		close(pipefd[1]);
		(void)!read(pipefd[0], &byte, 1); /* till the test is done with us */
		_exit(0);
	}
	close(pipefd[0]);
	assert_int_equal(cgroup_attach(&cg, child, &err), 0);

	read_file(cg.path, "cgroup.procs", text, sizeof(text));
	snprintf(want, sizeof(want), "%d\n", (int)child);
	assert_string_equal(text, want);
	read_file(cg.path, "cpu.max", text, sizeof(text));
	assert_string_equal(text, "200000 100000\n");
	read_file(cg.path, "memory.max", text, sizeof(text));
	snprintf(want, sizeof(want), "%llu\n",
		 (unsigned long long)((128 + 64 + 2 + 2 + CGROUP_SANITIZER_MIB) * MiB));
	assert_string_equal(text, want);
	read_file(cg.path, "pids.max", text, sizeof(text));
	assert_string_equal(text, "40\n");

	/* The child exits; the cgroup goes, and nothing is left behind. */
	close(pipefd[1]);
	assert_int_equal(waitpid(child, &status, 0), child);
	memcpy(path, cg.path, sizeof(path));
	assert_int_equal(cgroup_remove(&cg, &err), 0);
	assert_int_equal(cg.fd, -1);
	assert_int_equal(stat(path, &st), -1);
	assert_int_equal(errno, ENOENT);
}

/* cgroup_remove kills what still runs in the cgroup. */
static void remove_kills_members(void **state)
{
	const char *why = no_real_cgroup();
	struct cgroup_limits l;
	struct cgroup cg;
	int status;
	pid_t child;

	(void)state;
	if (why) {
		printf("skipped: %s\n", why);
		skip();
	}
	assert_int_equal(config_set_name(&cfg, "n", "test-cgroup-kill", &err), 0);
	cgroup_limits_build(&cfg, &l);
	assert_int_equal(cgroup_create(&cg, &cfg, &l, &err), CGROUP_MADE);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		for (;;)
			pause();
	}
	assert_int_equal(cgroup_attach(&cg, child, &err), 0);
	assert_int_equal(cgroup_remove(&cg, &err), 0);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
}

static int put(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY), ret;

	if (fd < 0)
		return -1;
	ret = write(fd, text, strlen(text)) == (ssize_t)strlen(text) ? 0 : -1;
	close(fd);
	return ret;
}

/* In a child: cgroup_create as a process of the cgroup `outer` (made by the caller), as
 * `uid`; its status, its path relative to the mount, and its message, checked against
 * the wanted ones. An exit code: 0 if all match. */
static int create_in(const char *outer, uid_t uid, int want_status, const char *want_path,
		     const char *want_msg)
{
	struct cgroup_limits l;
	struct cgroup cg;
	char path[PATH_MAX + 32];
	int status;

	snprintf(path, sizeof(path), "%s/%s/cgroup.procs", CGROUP_MOUNT, outer);
	if (put(path, "0") < 0)
		return 10;
	if (uid && setuid(uid) < 0)
		return 11;
	cgroup_limits_build(&cfg, &l);
	status = cgroup_create(&cg, &cfg, &l, &err);
	if (status != want_status) {
		printf("status %d: %s\n", status, err.msg);
		return 12;
	}
	if (want_msg && strcmp(err.msg, want_msg)) {
		printf("message `%s`, not `%s`\n", err.msg, want_msg);
		return 13;
	}
	if (want_path && strcmp(cg.path, want_path)) {
		printf("path `%s`, not `%s`\n", cg.path, want_path);
		return 14;
	}
	if (cgroup_remove(&cg, &err) < 0)
		return 15;
	/* Back to the root, so that the caller can remove `outer`. */
	if (!uid && put(CGROUP_MOUNT "/cgroup.procs", "0") < 0)
		return 16;
	return 0;
}

static void expect_exit(pid_t pid, int code)
{
	int status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), code);
}

/* Where the cgroup goes when clawvm is not in the root cgroup (cgroup.h). */
static void placement(void **state)
{
	const char *why = no_real_cgroup();
	char alone[64], crowd[64], dir[128], want[PATH_MAX], msg[CONFIG_ERR_MAX];
	pid_t sleeper, child;

	(void)state;
	if (why) {
		printf("skipped: %s\n", why);
		skip();
	}
	assert_int_equal(config_set_name(&cfg, "n", "placed", &err), 0);
	snprintf(alone, sizeof(alone), "test-alone-%d", (int)getpid());
	snprintf(crowd, sizeof(crowd), "test-crowd-%d", (int)getpid());

	/* Alone in its cgroup: into a leaf `supervisor`, the sandbox's beside it. */
	snprintf(dir, sizeof(dir), "%s/%s", CGROUP_MOUNT, alone);
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(want, sizeof(want), "%s/clawvm-placed", dir);
	child = fork();
	assert_true(child >= 0);
	if (child == 0)
		_exit(create_in(alone, 0, CGROUP_MADE, want, NULL));
	expect_exit(child, 0);
	snprintf(want, sizeof(want), "%s/supervisor", dir);
	assert_int_equal(rmdir(want), 0);
	assert_int_equal(rmdir(dir), 0);

	/* With another process, as root: under /sys/fs/cgroup/clawvm. */
	snprintf(dir, sizeof(dir), "%s/%s", CGROUP_MOUNT, crowd);
	assert_int_equal(mkdir(dir, 0755), 0);
	sleeper = fork();
	assert_true(sleeper >= 0);
	if (sleeper == 0) {
		for (;;)
			pause();
	}
	snprintf(want, sizeof(want), "%d", (int)sleeper);
	snprintf(msg, sizeof(msg), "%s/cgroup.procs", dir);
	assert_int_equal(put(msg, want), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0)
		_exit(create_in(crowd, 0, CGROUP_MADE, CGROUP_MOUNT "/clawvm/clawvm-placed", NULL));
	expect_exit(child, 0);
	/* Not root: no limits, one warning that says why. */
	snprintf(msg, sizeof(msg),
		 "no cgroup limits: `%s` holds other processes, so it cannot hold the sandbox's "
		 "(run as root, or alone under a systemd delegated scope)",
		 dir);
	child = fork();
	assert_true(child >= 0);
	if (child == 0)
		_exit(create_in(crowd, 65534, CGROUP_NONE, "", msg));
	expect_exit(child, 0);
	kill(sleeper, SIGKILL);
	assert_int_equal(waitpid(sleeper, NULL, 0), sleeper);
	assert_int_equal(rmdir(dir), 0);
	rmdir(CGROUP_MOUNT "/clawvm"); /* kept for sandboxes; empty here but for another run's */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(limits_of_the_defaults, fresh, release),
	    cmocka_unit_test_setup_teardown(limits_of_larger_sandboxes, fresh, release),
	    cmocka_unit_test(self_path),
	    cmocka_unit_test(rlimits),
	    cmocka_unit_test_setup_teardown(none_where_unavailable, fresh, release),
	    cmocka_unit_test_setup_teardown(real_cgroup, fresh, release),
	    cmocka_unit_test_setup_teardown(remove_kills_members, fresh, release),
	    cmocka_unit_test_setup_teardown(placement, fresh, release),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

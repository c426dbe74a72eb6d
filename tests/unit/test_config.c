/* The sandbox configuration's setters (vmm/config.h), shared by clawvm run's flags and the
 * control API's pre-boot methods: each value accepted or refused with the exact message
 * that names the setting as its caller knows it. */
#include "unit.h"

#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_fixture.h"
#include "vmm/config.h"

static char dir[] = "/tmp/clawvm-test-config-XXXXXX", file[PATH_MAX];

static int setup(void **state)
{
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(file, sizeof(file), "%s/vmlinux", dir);
	f = fopen(file, "w");
	assert_non_null(f);
	fclose(f);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(file);
	rmdir(dir);
	return 0;
}

#define REFUSED(call, want)                                                                        \
	do {                                                                                       \
		assert_int_equal((call), -1);                                                      \
		assert_string_equal(err.msg, want);                                                \
	} while (0)

static void defaults(void **state)
{
	(void)state;
	assert_int_equal(cfg.vm.cpus, 1);
	assert_true(cfg.vm.mem_mib == 512 || cfg.vm.mem_mib == config_max_memory_mib());
	assert_int_equal(cfg.vm.vsock_cid, 3);
	assert_int_equal(cfg.vm.exec_fd, -1);
	assert_int_equal(cfg.vm.ready_fd, -1);
	assert_int_equal(cfg.uid, 0);
	assert_int_equal(cfg.pids, 128);
	assert_null(cfg.env[0]);
}

static void numbers(void **state)
{
	char want[128];

	(void)state;
	REFUSED(config_set_cpus(&cfg, "vcpus", 0, &err), "vcpus must be between 1 and 32, got 0");
	REFUSED(config_set_cpus(&cfg, "--cpus", 33, &err),
		"--cpus must be between 1 and 32, got 33");
	assert_int_equal(config_set_cpus(&cfg, "vcpus", 32, &err), 0);
	assert_int_equal(cfg.vm.cpus, 32);
	REFUSED(config_set_pids(&cfg, "--pids", 3, &err),
		"--pids must be between 16 and 65536, got 3");
	REFUSED(config_set_pids(&cfg, "pids", 65537, &err),
		"pids must be between 16 and 65536, got 65537");
	assert_int_equal(cfg.pids, 128); /* a refused value changes nothing */
	assert_int_equal(config_set_pids(&cfg, "pids", 16, &err), 0);
	assert_int_equal(cfg.pids, 16);
	assert_int_equal(config_set_pids(&cfg, "pids", 65536, &err), 0);
	assert_int_equal(cfg.pids, 65536);
	REFUSED(config_set_memory(&cfg, "memory_mib", 12, &err),
		(snprintf(want, sizeof(want), "memory_mib must be between 64 and %llu, got 12",
			  (unsigned long long)config_max_memory_mib()),
		 want));
	REFUSED(config_set_memory(&cfg, "memory_mib", UINT64_MAX, &err),
		(snprintf(want, sizeof(want),
			  "memory_mib must be between 64 and %llu, got 18446744073709551615",
			  (unsigned long long)config_max_memory_mib()),
		 want));
	assert_int_equal(config_set_memory(&cfg, "memory_mib", 64, &err), 0);
	assert_int_equal(cfg.vm.mem_mib, 64);
	REFUSED(config_set_vsock_cid(&cfg, "cid", 2, &err),
		"cid must be between 3 and 4294967294, got 2");
	REFUSED(config_set_vsock_cid(&cfg, "cid", 0xffffffff, &err),
		"cid must be between 3 and 4294967294, got 4294967295");
	assert_int_equal(config_set_vsock_cid(&cfg, "cid", 0xfffffffe, &err), 0);
	REFUSED(config_set_user(&cfg, "uid/gid", 0xffffffffull, 0, &err),
		"uid/gid must be between 0 and 4294967294, got 4294967295");
	assert_int_equal(config_set_user(&cfg, "uid/gid", 1000, 100, &err), 0);
	assert_int_equal(cfg.uid, 1000);
	assert_int_equal(cfg.gid, 100);
}

static void files(void **state)
{
	char want[PATH_MAX + 64];

	(void)state;
	REFUSED(config_set_kernel(&cfg, "kernel", "/nonexistent", &err),
		"kernel `/nonexistent`: No such file or directory");
	snprintf(want, sizeof(want), "kernel `%s`: not a regular file", dir);
	REFUSED(config_set_kernel(&cfg, "kernel", dir, &err), want);
	REFUSED(config_set_kernel(&cfg, "kernel", "", &err), "kernel: the path is empty");
	assert_int_equal(config_set_kernel(&cfg, "kernel", file, &err), 0);
	assert_string_equal(cfg.vm.kernel_path, file);
	snprintf(want, sizeof(want), "rootfs `%s`: not a directory", file);
	REFUSED(config_set_rootfs(&cfg, "rootfs", file, &err), want);
	assert_int_equal(config_set_rootfs(&cfg, "rootfs", dir, &err), 0);
	assert_string_equal(cfg.vm.rootfs, dir);
	REFUSED(config_set_console_log(&cfg, "console_log", "", &err),
		"console_log: the path is empty");
}

static void cmdline(void **state)
{
	char long_line[CONFIG_MAX_CMDLINE + 2];

	(void)state;
	memset(long_line, 'a', sizeof(long_line) - 1);
	long_line[sizeof(long_line) - 1] = '\0';
	REFUSED(config_set_cmdline(&cfg, "cmdline", long_line, &err),
		"cmdline is 1025 bytes long; at most 1024");
	REFUSED(config_set_cmdline(&cfg, "cmdline", "quiet\ninit=/x", &err),
		"cmdline: byte 5 is not printable ASCII");
	assert_int_equal(config_set_cmdline(&cfg, "cmdline", "quiet loglevel=3", &err), 0);
	assert_string_equal(cfg.vm.cmdline, "quiet loglevel=3");
	assert_int_equal(config_set_cmdline(&cfg, "cmdline", "", &err), 0);
	assert_null(cfg.vm.cmdline);
}

static void shares(void **state)
{
	char guest[16];

	(void)state;
	REFUSED(config_add_share(&cfg, "add_share", "/nonexistent", "/w", false, &err),
		"add_share `/nonexistent`: No such file or directory");
	REFUSED(config_add_share(&cfg, "add_share", dir, "w", false, &err),
		"add_share: the guest path must be absolute");
	REFUSED(config_add_share(&cfg, "add_share", dir, "/", false, &err),
		"add_share: the guest root is the rootfs, not a share");
	REFUSED(config_add_share(&cfg, "add_share", dir, "/a/../b", false, &err),
		"add_share: the guest path may not contain `.` or `..`");
	REFUSED(config_add_share(&cfg, "add_share", dir, "/sys/x", false, &err),
		"add_share: /sys belongs to the guest kernel");
	REFUSED(config_add_volume(&cfg, "nocolon", &err),
		"-v nocolon: want HOST:GUEST[:ro] (see clawvm run --help)");
	assert_int_equal(config_add_share(&cfg, "add_share", dir, "//w//x/", true, &err), 0);
	assert_string_equal(cfg.vm.shares[0].guest, "/w/x");
	assert_string_equal(cfg.vm.shares[0].host, dir);
	assert_true(cfg.vm.shares[0].read_only);
	REFUSED(config_add_share(&cfg, "add_share", dir, "/w/x", false, &err),
		"add_share: /w/x is shared twice");
	for (int i = 1; i < VM_MAX_SHARES; i++) {
		char spec[PATH_MAX + 32];

		snprintf(spec, sizeof(spec), "%s:/s%d:rw", dir, i);
		assert_int_equal(config_add_volume(&cfg, spec, &err), 0);
	}
	assert_int_equal(cfg.vm.nshares, VM_MAX_SHARES);
	assert_false(cfg.vm.shares[1].read_only);
	snprintf(guest, sizeof(guest), "/s%d", VM_MAX_SHARES);
	REFUSED(config_add_share(&cfg, "add_share", dir, guest, false, &err),
		"add_share: at most 8 shares");
}

static void egress_ports(void **state)
{
	(void)state;
	assert_int_equal(cfg.vm.negress_ports, 0);
	REFUSED(config_add_egress_port(&cfg, "egress_port", 0, &err),
		"egress_port must be between 1 and 65535, got 0");
	REFUSED(config_add_egress_port(&cfg, "egress_port", 65536, &err),
		"egress_port must be between 1 and 65535, got 65536");
	assert_int_equal(config_add_egress_port(&cfg, "egress_port", 3128, &err), 0);
	REFUSED(config_add_egress_port(&cfg, "egress_port", 3128, &err),
		"egress_port: port 3128 is given twice");
	for (unsigned i = 1; i < CLAWVM_EGRESS_MAX_PORTS; i++)
		assert_int_equal(config_add_egress_port(&cfg, "egress_port", 65535 - i, &err), 0);
	assert_int_equal(cfg.vm.negress_ports, CLAWVM_EGRESS_MAX_PORTS);
	REFUSED(config_add_egress_port(&cfg, "egress_port", 65535, &err),
		"egress_port: at most 16 egress ports");
	assert_int_equal(cfg.vm.egress_ports[0], 3128);
	assert_int_equal(cfg.vm.egress_ports[1], 65534);
	assert_int_equal(cfg.vm.egress_ports[CLAWVM_EGRESS_MAX_PORTS - 1], 65520);
}

static void exec_defaults(void **state)
{
	(void)state;
	REFUSED(config_add_env(&cfg, "-e", "FOO", &err), "-e: want K=V, got `FOO`");
	REFUSED(config_add_env(&cfg, "-e", "=x", &err), "-e: want K=V, got `=x`");
	assert_int_equal(config_add_env(&cfg, "-e", "A=1", &err), 0);
	assert_int_equal(config_add_env(&cfg, "-e", "AB=2", &err), 0);
	assert_int_equal(config_add_env(&cfg, "-e", "A=3", &err), 0); /* replaces A, not AB */
	assert_int_equal(cfg.nenv, 2);
	assert_string_equal(cfg.env[0], "A=3");
	assert_string_equal(cfg.env[1], "AB=2");
	assert_null(cfg.env[2]);
	REFUSED(config_parse_user(&cfg, "-u", "root", &err),
		"-u: want UID[:GID] (numbers), got `root`");
	REFUSED(config_parse_user(&cfg, "-u", "1:", &err),
		"-u: want UID[:GID] (numbers), got `1:`");
	assert_int_equal(config_parse_user(&cfg, "-u", "1000", &err), 0);
	assert_int_equal(cfg.gid, 1000);
	assert_int_equal(config_parse_user(&cfg, "-u", "1000:5", &err), 0);
	assert_int_equal(cfg.gid, 5);
	REFUSED(config_set_cwd(&cfg, "cwd", "tmp", &err), "cwd: the guest path must be absolute");
	assert_int_equal(config_set_cwd(&cfg, "cwd", "/", &err), 0);
	assert_string_equal(cfg.cwd, "/");
	assert_int_equal(config_set_cwd(&cfg, "cwd", "/home//agent/", &err), 0);
	assert_string_equal(cfg.cwd, "/home/agent");
}

static void names(void **state)
{
	char long_name[CONFIG_NAME_MAX + 2];

	(void)state;
	assert_int_equal(config_set_name(&cfg, "--name", "agent-1.test_x", &err), 0);
	assert_string_equal(cfg.name, "agent-1.test_x");
	REFUSED(config_set_name(&cfg, "--name", "../x", &err),
		"--name: `../x` is not a sandbox name (1 to 63 of A-Z a-z 0-9 _ . -, starting "
		"with a letter or digit)");
	assert_int_equal(config_set_name(&cfg, "--name", "a/b", &err), -1);
	assert_int_equal(config_set_name(&cfg, "--name", "", &err), -1);
	assert_int_equal(config_set_name(&cfg, "--name", "-x", &err), -1);
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	assert_int_equal(config_set_name(&cfg, "--name", long_name, &err), -1);
	long_name[CONFIG_NAME_MAX] = '\0';
	assert_int_equal(config_set_name(&cfg, "--name", long_name, &err), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(defaults, fresh, release),
	    cmocka_unit_test_setup_teardown(numbers, fresh, release),
	    cmocka_unit_test_setup_teardown(files, fresh, release),
	    cmocka_unit_test_setup_teardown(cmdline, fresh, release),
	    cmocka_unit_test_setup_teardown(shares, fresh, release),
	    cmocka_unit_test_setup_teardown(egress_ports, fresh, release),
	    cmocka_unit_test_setup_teardown(exec_defaults, fresh, release),
	    cmocka_unit_test_setup_teardown(names, fresh, release),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

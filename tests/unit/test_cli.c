/* `clawvm run` argument parsing: every bad value refused with one message, good ones
 * filling the vm_config, and the command's own options left to the command; where the
 * guest files come from when not given. */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/cli.h"

#define MAX_ARGS 24

/* Guest files in a temporary tree (made by make_tree): `self` and `data` stand for the
 * binary's directory and the install's data directory, each with a kernel, an initramfs
 * and a root; `env` holds a set for the CLAWVM_* variables; `part` holds a root alone;
 * `none` is empty. */
static char tree[] = "/tmp/clawvm-test-cli-XXXXXX";
static char self_dir[64], data_dir[64], env_dir[64], part_dir[64], none_dir[64];
/* Where cli_parse_run() looks for what it was not given: by default self, then data. */
static const char *search[3];

/* Writes dir/name (a file, or a directory if `name` ends in "/"), making its parents. */
static void make_path(const char *dir, const char *name)
{
	char path[PATH_MAX];
	size_t len = (size_t)snprintf(path, sizeof(path), "%s/%s", dir, name);
	int ret, fd;

	for (char *slash = strchr(path + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		ret = mkdir(path, 0755);
		assert_true(ret == 0 || errno == EEXIST);
		*slash = '/';
	}
	if (path[len - 1] == '/')
		return;
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	close(fd);
}

static int make_tree(void **state)
{
	char *const dirs[] = {self_dir, data_dir, env_dir, part_dir, none_dir};
	const char *const names[] = {"self", "data", "env", "part", "none"};
	char real[PATH_MAX];

	(void)state;
	assert_non_null(mkdtemp(tree));
	assert_non_null(realpath(tree, real)); /* CLAWVM_ROOTFS comes back resolved */
	for (int i = 0; i < 5; i++) {
		assert_true(snprintf(dirs[i], sizeof(self_dir), "%s/%s", real, names[i]) <
			    (int)sizeof(self_dir));
		make_path(dirs[i], "");
	}
	for (int i = 0; i < 3; i++) {
		make_path(dirs[i], "kernel/vmlinux");
		make_path(dirs[i], "guest/init.cpio");
		make_path(dirs[i], "guest/rootfs/");
	}
	make_path(part_dir, "guest/rootfs/");
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int remove_tree(void **state)
{
	(void)state;
	return nftw(tree, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Each test starts with the default search and no CLAWVM_* variables. */
static int lookup_reset(void **state)
{
	(void)state;
	search[0] = self_dir;
	search[1] = data_dir;
	search[2] = NULL;
	unsetenv("CLAWVM_KERNEL");
	unsetenv("CLAWVM_INITRD");
	unsetenv("CLAWVM_ROOTFS");
	return 0;
}

/* dir/name, in one of a few buffers that outlive a statement's other calls. */
static const char *in(const char *dir, const char *name)
{
	static char paths[4][PATH_MAX];
	static unsigned next;
	char *path = paths[next++ % 4];

	snprintf(path, PATH_MAX, "%s/%s", dir, name);
	return path;
}

/* Writable copies of the words, kept after parsing since vm_config.argv points into them. */
static char words[MAX_ARGS][64];
static char *args[MAX_ARGS + 1];

/* Runs cli_parse_run() on `w`, with getopt as a fresh process would have it. */
static int parse_raw(struct run_args *ra, const char *const *w)
{
	int argc = 0;

	for (; w[argc]; argc++) {
		assert_true(argc < MAX_ARGS);
		assert_true(strlen(w[argc]) < sizeof(words[0]));
		strcpy(words[argc], w[argc]);
		args[argc] = words[argc];
	}
	args[argc] = NULL;
	memset(ra, 0xa5, sizeof(*ra));
	return cli_parse_run(argc, args, ra, search);
}

/* glibc fully resets getopt only when optind is 0 (see reparse_after_bad_option), and
 * takes the ordering ('+': stop at the first non-option) from the optstring of that first
 * call only; do both here so that each test starts as a fresh process would. */
static void getopt_reset(void)
{
	char arg0[] = "reset", *argv[] = {arg0, NULL};

	optind = 0;
	opterr = 0;
	assert_int_equal(getopt(1, argv, "+"), -1);
}

static int parse(struct run_args *ra, const char *const *w)
{
	getopt_reset();
	return parse_raw(ra, w);
}

#define PARSE(ra, ...) parse(ra, (const char *const[]){"run", __VA_ARGS__, NULL})

/* What cli_parse_run() wrote to stderr while parsing `w`. */
static const char *parse_stderr(int *ret, const char *const *w)
{
	static char text[1024];
	struct run_args ra;
	FILE *capture = tmpfile();
	int saved;

	assert_non_null(capture);
	memset(text, 0, sizeof(text));
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fileno(capture), STDERR_FILENO) >= 0);
	*ret = parse(&ra, w);
	fflush(stderr);
	config_release(&ra.cfg);
	free(ra.agent_argv);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	rewind(capture);
	assert_true(fread(text, 1, sizeof(text) - 1, capture) < sizeof(text) - 1);
	fclose(capture);
	return text;
}

static void refuses_bad_cpus(void **state)
{
	static const char *const bad[] = {"0",
					  "33",
					  "300",
					  "abc",
					  "-1",
					  "1e3",
					  "",
					  " 2",
					  "2 ",
					  "+2",
					  "0x2",
					  "2.0",
					  "18446744073709551617"};
	struct run_args ra;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(PARSE(&ra, "--cpus", bad[i], "true"), -1);
}

static void refuses_bad_memory(void **state)
{
	static const char *const bad[] = {"1", "63", "99999999999", "1G", "512M", "-512", ""};
	struct run_args ra;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(PARSE(&ra, "--memory", bad[i], "true"), -1);
}

static void refuses_bad_pids(void **state)
{
	static const char *const bad[] = {"3", "15", "65537", "-1", "64k", ""};
	struct run_args ra;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(PARSE(&ra, "--pids", bad[i], "true"), -1);
}

static void refuses_bad_usage(void **state)
{
	struct run_args ra;

	(void)state;
	assert_int_equal(parse(&ra, (const char *const[]){"run", NULL}), -1);
	assert_int_equal(PARSE(&ra, "--cpus", "2"), -1);
	assert_int_equal(PARSE(&ra, "--"), -1);
	assert_int_equal(PARSE(&ra, "--bogus", "true"), -1);
	assert_int_equal(PARSE(&ra, "-x", "true"), -1);
	assert_int_equal(PARSE(&ra, "--cpus"), -1);
	assert_int_equal(PARSE(&ra, "--memory"), -1);
	assert_int_equal(PARSE(&ra, "--kernel"), -1);
	assert_int_equal(PARSE(&ra, "--", ""), -1); /* an empty command name */
	assert_int_equal(PARSE(&ra, "--verbose=yes", "true"), -1);
}

static void fills_config(void **state)
{
	struct run_args ra;
	const struct vm_config *cfg = &ra.cfg.vm;

	(void)state;
	assert_int_equal(
	    PARSE(&ra, "--cpus", "2", "--memory", "256", "--pids", "40", "--", "echo", "hi"), 0);
	assert_int_equal(cfg->cpus, 2);
	assert_int_equal(cfg->mem_mib, 256);
	assert_int_equal(ra.cfg.pids, 40);
	assert_ptr_equal(ra.argv, &args[8]);
	assert_string_equal(ra.argv[0], "echo");
	assert_string_equal(ra.argv[1], "hi");
	assert_null(ra.argv[2]);
	assert_string_equal(cfg->kvm_path, "/dev/kvm");
	assert_null(cfg->console_log);
	assert_int_equal(cfg->verbose, 0);
	assert_string_equal(cfg->kernel_path, in(self_dir, "kernel/vmlinux"));
	assert_string_equal(cfg->initrd_path, in(self_dir, "guest/init.cpio"));
	assert_string_equal(cfg->rootfs, in(self_dir, "guest/rootfs"));
	assert_int_equal(cfg->nshares, 0);
}

static void defaults(void **state)
{
	struct run_args ra;

	(void)state;
	assert_int_equal(PARSE(&ra, "true"), 0);
	assert_int_equal(ra.cfg.vm.cpus, 1);
	assert_int_equal(ra.cfg.pids, CONFIG_DEFAULT_PIDS);
	assert_true(ra.cfg.vm.mem_mib >= LAYOUT_MIN_MEM_MIB && ra.cfg.vm.mem_mib <= 512);
	assert_string_equal(ra.cfg.vm.kernel_path, in(self_dir, "kernel/vmlinux"));
	assert_ptr_equal(ra.cfg.vm.kernel_path, ra.cfg.kernel);
	assert_string_equal(ra.cfg.vm.initrd_path, in(self_dir, "guest/init.cpio"));
	assert_ptr_equal(ra.cfg.vm.initrd_path, ra.cfg.initrd);
	assert_string_equal(ra.cfg.vm.rootfs, in(self_dir, "guest/rootfs"));
	assert_string_equal(ra.argv[0], "true");
	assert_null(ra.argv[1]);
}

static void all_options(void **state)
{
	struct run_args ra;
	char initrd[80];

	(void)state;
	snprintf(initrd, sizeof(initrd), "--initrd=%s", in(data_dir, "guest/init.cpio"));
	assert_int_equal(PARSE(&ra, "--kernel", in(data_dir, "kernel/vmlinux"), initrd,
			       "--console-log", "/c", "--verbose", "--cpus=32", "--memory", "64",
			       "sh"),
			 0);
	assert_string_equal(ra.cfg.vm.kernel_path, in(data_dir, "kernel/vmlinux"));
	assert_string_equal(ra.cfg.vm.initrd_path, in(data_dir, "guest/init.cpio"));
	assert_null(ra.cfg.vm.rootfs); /* --initrd alone: the initramfs is the root */
	assert_string_equal(ra.cfg.vm.console_log, "/c");
	assert_int_equal(ra.cfg.vm.verbose, 1);
	assert_int_equal(ra.cfg.vm.cpus, 32);
	assert_int_equal(ra.cfg.vm.mem_mib, 64);
	assert_string_equal(ra.argv[0], "sh");
}

static void stops_at_command(void **state)
{
	struct run_args ra;

	(void)state;
	assert_int_equal(PARSE(&ra, "echo", "--cpus", "3"), 0);
	assert_int_equal(ra.cfg.vm.cpus, 1);
	assert_ptr_equal(ra.argv, &args[1]);
	assert_string_equal(ra.argv[0], "echo");
	assert_string_equal(ra.argv[1], "--cpus");
	assert_string_equal(ra.argv[2], "3");
	assert_null(ra.argv[3]);
	/* Options after `--` are the command's too. */
	assert_int_equal(PARSE(&ra, "--cpus", "4", "--", "--cpus", "5"), 0);
	assert_int_equal(ra.cfg.vm.cpus, 4);
	assert_string_equal(ra.argv[0], "--cpus");
}

static void help(void **state)
{
	struct run_args ra;

	(void)state;
	assert_int_equal(PARSE(&ra, "--help"), 1);
	assert_int_equal(PARSE(&ra, "-h", "true"), 1);
}

/* Parses one after another in one process, as tests and fuzzers do. */
static void repeated_parses(void **state)
{
	struct run_args ra;

	(void)state;
	assert_int_equal(PARSE(&ra, "--cpus", "bad", "true"), -1);
	assert_int_equal(PARSE(&ra, "--cpus", "3", "true"), 0);
	assert_int_equal(ra.cfg.vm.cpus, 3);
	assert_int_equal(PARSE(&ra, "true"), 0);
	assert_int_equal(ra.cfg.vm.cpus, 1);
	assert_int_equal(PARSE(&ra, "--verbose", "x"), 0);
	assert_int_equal(PARSE(&ra, "x"), 0);
	assert_int_equal(ra.cfg.vm.verbose, 0);
}

/* getopt keeps a pointer into the last argv when it stops inside an option word
 * ("-x" is refused after reading "x"). Resetting with optind = 1 keeps that pointer, so
 * the next cli_parse_run() reads the old argv (here: its reused memory, "--cpus" from
 * the third byte, taken as unknown short options). optind = 0 resets it. */
static void reparse_after_bad_option(void **state)
{
	struct run_args ra;

	(void)state;
	getopt_reset();
	assert_int_equal(parse_raw(&ra, (const char *const[]){"run", "-x", "true", NULL}), -1);
	assert_int_equal(parse_raw(&ra, (const char *const[]){"run", "--cpus", "2", "true", NULL}),
			 0);
	assert_int_equal(ra.cfg.vm.cpus, 2);
}

static void messages_name_the_problem(void **state)
{
	const char *text;
	int ret;

	(void)state;
	text = parse_stderr(&ret, (const char *const[]){"run", "--cpus", "33", "true", NULL});
	assert_int_equal(ret, -1);
	assert_non_null(strstr(text, "--cpus"));
	assert_non_null(strstr(text, "33"));
	assert_non_null(strstr(text, "--cpus must be between 1 and 32, got 33"));
	text = parse_stderr(&ret, (const char *const[]){"run", "--bogus", "true", NULL});
	assert_int_equal(ret, -1);
	assert_non_null(strstr(text, "unknown option `--bogus`"));
	text = parse_stderr(&ret, (const char *const[]){"run", NULL});
	assert_int_equal(ret, -1);
	assert_non_null(strstr(text, "no command"));
}

/* `clawvm run --cpus` (value missing) must say so, not call --cpus unknown. */
static void missing_value_message(void **state)
{
	const char *text;
	int ret;

	(void)state;
	text = parse_stderr(&ret, (const char *const[]){"run", "--cpus", NULL});
	assert_int_equal(ret, -1);
	assert_non_null(strstr(text, "--cpus needs a value"));
	assert_null(strstr(text, "unknown option"));
}

static void parse_uint(void **state)
{
	unsigned long long v = 77;

	(void)state;
	assert_int_equal(cli_parse_uint("n", "0", 0, 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(cli_parse_uint("n", "10", 0, 10, &v), 0);
	assert_int_equal(v, 10);
	assert_int_equal(cli_parse_uint("n", "007", 0, 10, &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(cli_parse_uint("n", "18446744073709551615", 0, ULLONG_MAX, &v), 0);
	assert_int_equal(v, ULLONG_MAX);
	v = 77;
	assert_int_equal(cli_parse_uint("n", "11", 0, 10, &v), -1);
	assert_int_equal(cli_parse_uint("n", "4", 5, 10, &v), -1);
	assert_int_equal(cli_parse_uint("n", "18446744073709551616", 0, ULLONG_MAX, &v), -1);
	assert_int_equal(cli_parse_uint("n", "", 0, 10, &v), -1);
	assert_int_equal(cli_parse_uint("n", "5x", 0, 10, &v), -1);
	assert_int_equal(cli_parse_uint("n", "-0", 0, 10, &v), -1);
	assert_int_equal(cli_parse_uint("n", "\t5", 0, 10, &v), -1);
	assert_int_equal(cli_parse_uint("n", "5\n", 0, 10, &v), -1);
	assert_int_equal(v, 77); /* untouched on failure */
}

static void main_exit_statuses(void **state)
{
	char *no_args[] = {"clawvm", NULL};
	char *bogus[] = {"clawvm", "bogus", NULL};
	char *version[] = {"clawvm", "--version", NULL};
	char *bad_run[] = {"clawvm", "run", "--cpus", "0", "true", NULL};
	char *no_kernel[] = {"clawvm", "run", "--kernel", "/nonexistent/vmlinux", "true", NULL};

	(void)state;
	getopt_reset();
	assert_int_equal(cli_main(1, no_args), 125);
	assert_int_equal(cli_main(2, bogus), 125);
	assert_int_equal(cli_main(2, version), 0);
	assert_int_equal(cli_main(5, bad_run), 125);
	/* A missing kernel is reported before /dev/kvm is opened. */
	assert_int_equal(cli_main(5, no_kernel), 125);
}

/* -v HOST:GUEST[:ro]: host paths resolved, guest paths normalized, bad ones refused. */
static void volumes(void **state)
{
	char dir[] = "/tmp/clawvm-test-cli-XXXXXX", colon[64], file[64], want[PATH_MAX];
	char spec[9][128];
	struct run_args ra;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(colon, sizeof(colon), "%s/a:b", dir);
	assert_int_equal(mkdir(colon, 0755), 0);
	snprintf(file, sizeof(file), "%s/file", dir);
	fd = open(file, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	close(fd);

	snprintf(spec[0], sizeof(spec[0]), "%s:/workspace", dir);
	snprintf(spec[1], sizeof(spec[1]), "%s/a:b://data//set/:ro", dir);
	snprintf(spec[2], sizeof(spec[2]), "%s/./a:b/..:/w2:rw", dir);
	assert_int_equal(
	    PARSE(&ra, "-v", spec[0], "--volume", spec[1], "-v", spec[2], "--rootfs", dir, "true"),
	    0);
	assert_int_equal(ra.cfg.vm.nshares, 3);
	assert_non_null(realpath(dir, want));
	assert_string_equal(ra.cfg.vm.shares[0].host, want);
	assert_string_equal(ra.cfg.vm.shares[0].guest, "/workspace");
	assert_false(ra.cfg.vm.shares[0].read_only);
	assert_string_equal(ra.cfg.vm.shares[1].guest, "/data/set");
	assert_true(ra.cfg.vm.shares[1].read_only);
	assert_non_null(strstr(ra.cfg.vm.shares[1].host, "/a:b"));
	assert_string_equal(ra.cfg.vm.shares[2].host, want); /* a:b/.. is dir itself */
	assert_string_equal(ra.cfg.vm.shares[2].guest, "/w2");
	assert_false(ra.cfg.vm.shares[2].read_only);
	assert_string_equal(ra.cfg.vm.rootfs, want);
	assert_string_equal(ra.cfg.vm.initrd_path, in(self_dir, "guest/init.cpio"));

	/* Refused: missing host, a file, relative / root / `..` / kernel guest paths, twice. */
	snprintf(spec[0], sizeof(spec[0]), "%s/nope:/w", dir);
	snprintf(spec[1], sizeof(spec[1]), "%s:/w", file);
	snprintf(spec[2], sizeof(spec[2]), "%s:w", dir);
	snprintf(spec[3], sizeof(spec[3]), "%s:/", dir);
	snprintf(spec[4], sizeof(spec[4]), "%s:/w/../etc", dir);
	snprintf(spec[5], sizeof(spec[5]), "%s:/proc/x", dir);
	snprintf(spec[6], sizeof(spec[6]), "%s:/dev", dir);
	snprintf(spec[7], sizeof(spec[7]), "%s:/w:rx", dir);
	snprintf(spec[8], sizeof(spec[8]), "%s", dir);
	for (int i = 0; i < 9; i++)
		assert_int_equal(PARSE(&ra, "-v", spec[i], "true"), -1);
	snprintf(spec[0], sizeof(spec[0]), "%s:/w", dir);
	snprintf(spec[1], sizeof(spec[1]), "%s:/w/:ro", dir);
	assert_int_equal(PARSE(&ra, "-v", spec[0], "-v", spec[1], "true"), -1);
	assert_int_equal(PARSE(&ra, "-v", ":/w", "true"), -1);
	assert_int_equal(PARSE(&ra, "--rootfs", file, "true"), -1);
	assert_int_equal(PARSE(&ra, "-v"), -1);
	/* At most VM_MAX_SHARES. */
	for (int i = 0; i < 9; i++)
		snprintf(spec[i], sizeof(spec[i]), "%s:/w%d", dir, i);
	assert_int_equal(PARSE(&ra, "-v", spec[0], "-v", spec[1], "-v", spec[2], "-v", spec[3],
			       "-v", spec[4], "-v", spec[5], "-v", spec[6], "-v", spec[7], "true"),
			 0);
	assert_int_equal(ra.cfg.vm.nshares, 8);
	assert_int_equal(PARSE(&ra, "-v", spec[0], "-v", spec[1], "-v", spec[2], "-v", spec[3],
			       "-v", spec[4], "-v", spec[5], "-v", spec[6], "-v", spec[7], "-v",
			       spec[8], "true"),
			 -1);
	unlink(file);
	rmdir(colon);
	rmdir(dir);
}

/* Not given, each guest file is taken from beside the binary before the data directory. */
static void lookup_beside_binary_first(void **state)
{
	struct run_args ra;

	(void)state;
	assert_int_equal(PARSE(&ra, "true"), 0);
	assert_string_equal(ra.cfg.vm.kernel_path, in(self_dir, "kernel/vmlinux"));
	assert_string_equal(ra.cfg.vm.initrd_path, in(self_dir, "guest/init.cpio"));
	assert_string_equal(ra.cfg.vm.rootfs, in(self_dir, "guest/rootfs"));
}

/* What is not beside the binary comes from the data directory, file by file. */
static void lookup_data_dir_next(void **state)
{
	struct run_args ra;

	(void)state;
	search[0] = none_dir;
	assert_int_equal(PARSE(&ra, "true"), 0);
	assert_string_equal(ra.cfg.vm.kernel_path, in(data_dir, "kernel/vmlinux"));
	assert_string_equal(ra.cfg.vm.initrd_path, in(data_dir, "guest/init.cpio"));
	assert_string_equal(ra.cfg.vm.rootfs, in(data_dir, "guest/rootfs"));
	search[0] = part_dir;
	assert_int_equal(PARSE(&ra, "true"), 0);
	assert_string_equal(ra.cfg.vm.kernel_path, in(data_dir, "kernel/vmlinux"));
	assert_string_equal(ra.cfg.vm.initrd_path, in(data_dir, "guest/init.cpio"));
	assert_string_equal(ra.cfg.vm.rootfs, in(part_dir, "guest/rootfs"));
}

static void set_env_files(void)
{
	setenv("CLAWVM_KERNEL", in(env_dir, "kernel/vmlinux"), 1);
	setenv("CLAWVM_INITRD", in(env_dir, "guest/init.cpio"), 1);
	setenv("CLAWVM_ROOTFS", in(env_dir, "guest/rootfs"), 1);
}

/* CLAWVM_KERNEL, CLAWVM_INITRD and CLAWVM_ROOTFS win over both directories; an empty one
 * counts as unset. */
static void lookup_env_wins(void **state)
{
	struct run_args ra;

	(void)state;
	set_env_files();
	assert_int_equal(PARSE(&ra, "true"), 0);
	assert_string_equal(ra.cfg.vm.kernel_path, in(env_dir, "kernel/vmlinux"));
	assert_string_equal(ra.cfg.vm.initrd_path, in(env_dir, "guest/init.cpio"));
	assert_string_equal(ra.cfg.vm.rootfs, in(env_dir, "guest/rootfs"));
	setenv("CLAWVM_KERNEL", "", 1);
	assert_int_equal(PARSE(&ra, "true"), 0);
	assert_string_equal(ra.cfg.vm.kernel_path, in(self_dir, "kernel/vmlinux"));
}

/* A variable counts as its option: CLAWVM_INITRD without a root given boots from that
 * initramfs alone, as --initrd does; CLAWVM_ROOTFS is a root given. */
static void lookup_env_is_option(void **state)
{
	struct run_args ra;

	(void)state;
	setenv("CLAWVM_INITRD", in(env_dir, "guest/init.cpio"), 1);
	assert_int_equal(PARSE(&ra, "true"), 0);
	assert_null(ra.cfg.vm.rootfs);
	assert_string_equal(ra.cfg.vm.initrd_path, in(env_dir, "guest/init.cpio"));
	unsetenv("CLAWVM_INITRD");
	setenv("CLAWVM_ROOTFS", in(env_dir, "guest/rootfs"), 1);
	assert_int_equal(PARSE(&ra, "--initrd", in(data_dir, "guest/init.cpio"), "true"), 0);
	assert_string_equal(ra.cfg.vm.rootfs, in(env_dir, "guest/rootfs"));
	assert_string_equal(ra.cfg.vm.initrd_path, in(data_dir, "guest/init.cpio"));
}

/* Options win over the variables. */
static void lookup_options_win(void **state)
{
	struct run_args ra;

	(void)state;
	set_env_files();
	assert_int_equal(PARSE(&ra, "--kernel", in(data_dir, "kernel/vmlinux"), "--initrd",
			       in(data_dir, "guest/init.cpio"), "--rootfs",
			       in(data_dir, "guest/rootfs"), "true"),
			 0);
	assert_string_equal(ra.cfg.vm.kernel_path, in(data_dir, "kernel/vmlinux"));
	assert_string_equal(ra.cfg.vm.initrd_path, in(data_dir, "guest/init.cpio"));
	assert_string_equal(ra.cfg.vm.rootfs, in(data_dir, "guest/rootfs"));
}

/* Asserts that parsing `w` fails with exactly one line: the error that `fmt` makes. */
__attribute__((format(printf, 2, 3))) static void refused(const char *const *w, const char *fmt,
							  ...)
{
	char want[3 * PATH_MAX];
	size_t len = (size_t)snprintf(want, sizeof(want), "clawvm: error: ");
	const char *text;
	va_list ap;
	int ret;

	va_start(ap, fmt);
	vsnprintf(want + len, sizeof(want) - len - 1, fmt, ap);
	va_end(ap);
	strcat(want, "\n");
	text = parse_stderr(&ret, w);
	assert_int_equal(ret, -1);
	assert_string_equal(text, want);
}

/* A path given that names nothing is refused with where it came from; a default not
 * found is refused with every place looked, and how else to give it. */
static void lookup_messages(void **state)
{
	static const char *const run_true[] = {"run", "true", NULL};

	(void)state;
	refused((const char *const[]){"run", "--kernel", "/nonexistent", "true", NULL},
		"--kernel `/nonexistent`: No such file or directory");
	setenv("CLAWVM_KERNEL", in(none_dir, "vmlinux"), 1);
	refused(run_true, "no guest kernel at %s (from CLAWVM_KERNEL): No such file or directory",
		in(none_dir, "vmlinux"));
	setenv("CLAWVM_KERNEL", in(env_dir, "kernel/vmlinux"), 1);
	setenv("CLAWVM_ROOTFS", in(env_dir, "kernel/vmlinux"), 1);
	refused(run_true, "CLAWVM_ROOTFS `%s`: not a directory", in(env_dir, "kernel/vmlinux"));
	unsetenv("CLAWVM_KERNEL");
	unsetenv("CLAWVM_ROOTFS");

	search[0] = none_dir;
	search[1] = part_dir;
	refused(run_true,
		"no guest kernel: looked in %s and %s; run ./setup or set CLAWVM_KERNEL or pass "
		"--kernel",
		in(none_dir, "kernel/vmlinux"), in(part_dir, "kernel/vmlinux"));
	setenv("CLAWVM_KERNEL", in(env_dir, "kernel/vmlinux"), 1);
	refused(run_true,
		"no guest image: looked in %s and %s; run ./setup or set CLAWVM_INITRD or pass "
		"--initrd",
		in(none_dir, "guest/init.cpio"), in(part_dir, "guest/init.cpio"));
	search[1] = NULL;
	refused(run_true,
		"no guest root: looked in %s; run ./setup or set CLAWVM_ROOTFS or pass --rootfs",
		in(none_dir, "guest/rootfs"));
}

/* --agent claude: the image's root, the agent's user, directory, environment, memory and
 * secret, its CLI before the arguments; each yields to the option that sets it. */
static void agent_defaults(void **state)
{
	char cache[128], root[256], link[256], real[PATH_MAX];
	const char *old_key = getenv("ANTHROPIC_API_KEY");
	char *saved_key = old_key ? strdup(old_key) : NULL;
	struct run_args ra;
	int ret;

	(void)state;
	snprintf(cache, sizeof(cache), "%s/cache", none_dir);
	snprintf(root, sizeof(root), "%s/clawvm/images/claude/k1/root/", cache);
	make_path(root, "");
	snprintf(link, sizeof(link), "%s/clawvm/images/claude/current", cache);
	assert_int_equal(symlink("k1", link), 0);
	assert_non_null(realpath(root, real));
	setenv("XDG_CACHE_HOME", cache, 1);
	setenv("ANTHROPIC_API_KEY", "sk-unit", 1);

	assert_int_equal(PARSE(&ra, "--agent", "claude", "--", "-p", "fix it"), 0);
	assert_string_equal(ra.cfg.vm.rootfs, real);
	assert_int_equal(ra.cfg.vm.mem_mib, AGENT_MEMORY_MIB);
	assert_int_equal(ra.cfg.uid, 1000);
	assert_int_equal(ra.cfg.gid, 1000);
	assert_string_equal(ra.cfg.cwd, "/workspace");
	assert_string_equal(ra.cfg.env[0], "HOME=/home/agent");
	assert_string_equal(ra.cfg.env[1], "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1");
	assert_int_equal(ra.cfg.nsecrets, 1);
	assert_string_equal(ra.cfg.secrets[0].name, "ANTHROPIC");
	assert_string_equal(ra.cfg.secrets[0].var, "ANTHROPIC_API_KEY");
	assert_string_equal(ra.cfg.secrets[0].host, "api.anthropic.com");
	assert_int_equal(ra.cfg.secrets[0].port, 443);
	assert_string_equal(ra.argv[0], "claude");
	assert_string_equal(ra.argv[1], "-p");
	assert_string_equal(ra.argv[2], "fix it");
	assert_null(ra.argv[3]);
	config_release(&ra.cfg);
	free(ra.agent_argv);

	/* As root, the VMM becomes the owner of the workspace's host folder. */
	if (geteuid() == 0) {
		char vol[300];

		assert_int_equal(chown(part_dir, 1234, 5678), 0);
		snprintf(vol, sizeof(vol), "%s:/workspace", part_dir);
		assert_int_equal(PARSE(&ra, "--agent", "claude", "-v", vol, "--", "-p", "x"), 0);
		assert_true(ra.cfg.jail_user_set);
		assert_int_equal(ra.cfg.jail_uid, 1234);
		assert_int_equal(ra.cfg.jail_gid, 5678);
		config_release(&ra.cfg);
		free(ra.agent_argv);
		assert_int_equal(chown(part_dir, 0, 0), 0);
	}

	/* The user's options win; no arguments: claude alone. */
	assert_int_equal(PARSE(&ra, "--agent", "claude", "--rootfs", part_dir, "--memory", "300",
			       "-u", "5:6", "-w", "/src", "-e", "HOME=/h", "--secret",
			       "ANTHROPIC=env:K@api.test:9443"),
			 0);
	assert_string_equal(ra.cfg.vm.rootfs, part_dir);
	assert_int_equal(ra.cfg.vm.mem_mib, 300);
	assert_int_equal(ra.cfg.uid, 5);
	assert_string_equal(ra.cfg.cwd, "/src");
	assert_string_equal(ra.cfg.env[0], "HOME=/h");
	assert_int_equal(ra.cfg.nsecrets, 1);
	assert_string_equal(ra.cfg.secrets[0].host, "api.test");
	assert_string_equal(ra.argv[0], "claude");
	assert_null(ra.argv[1]);
	config_release(&ra.cfg);
	free(ra.agent_argv);

	/* No key on the host: no secret (a warning), the sandbox still runs. */
	unsetenv("ANTHROPIC_API_KEY");
	assert_string_equal(parse_stderr(&ret, (const char *const[]){"run", "--agent", "claude",
								     "--", "--version", NULL}),
			    "clawvm: warning: --agent claude: the host's environment has no "
			    "ANTHROPIC_API_KEY: the model API is not reachable in this sandbox\n");
	assert_int_equal(ret, 0);
	assert_string_equal(
	    parse_stderr(&ret, (const char *const[]){"run", "--agent", "codex", NULL}),
	    "clawvm: error: --agent: no agent `codex` (known: claude)\n");
	assert_int_equal(ret, -1);
	/* Not built (what else it says depends on where the recipes are: image.c's tests). */
	assert_int_equal(unlink(link), 0);
	{
		const char *text =
		    parse_stderr(&ret, (const char *const[]){"run", "--agent", "claude", NULL});
		const char want[] = "clawvm: error: image `claude` is not built";

		assert_memory_equal(text, want, sizeof(want) - 1);
	}
	assert_int_equal(ret, -1);
	unsetenv("XDG_CACHE_HOME");
	if (saved_key)
		setenv("ANTHROPIC_API_KEY", saved_key, 1);
	free(saved_key);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(refuses_bad_cpus),
	    cmocka_unit_test(refuses_bad_memory),
	    cmocka_unit_test(refuses_bad_pids),
	    cmocka_unit_test(refuses_bad_usage),
	    cmocka_unit_test(fills_config),
	    cmocka_unit_test(defaults),
	    cmocka_unit_test(all_options),
	    cmocka_unit_test(stops_at_command),
	    cmocka_unit_test(help),
	    cmocka_unit_test(repeated_parses),
	    cmocka_unit_test(reparse_after_bad_option),
	    cmocka_unit_test(messages_name_the_problem),
	    cmocka_unit_test(missing_value_message),
	    cmocka_unit_test(parse_uint),
	    cmocka_unit_test(main_exit_statuses),
	    cmocka_unit_test(volumes),
	    cmocka_unit_test_teardown(lookup_beside_binary_first, lookup_reset),
	    cmocka_unit_test_teardown(lookup_data_dir_next, lookup_reset),
	    cmocka_unit_test_teardown(lookup_env_wins, lookup_reset),
	    cmocka_unit_test_teardown(lookup_env_is_option, lookup_reset),
	    cmocka_unit_test_teardown(lookup_options_win, lookup_reset),
	    cmocka_unit_test_teardown(lookup_messages, lookup_reset),
	    cmocka_unit_test(agent_defaults),
	};

	lookup_reset(NULL);
	return cmocka_run_group_tests(tests, make_tree, remove_tree);
}

/* Unit tests for the pure half of guest-init (command.c, shares.c): the files of strings
 * the VMM writes, the exit status reported for a wait status. */
#include "command.h"
#include "shares.h"

#include "api/guest_abi.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

/* A fresh file holding exactly len bytes of content; its path goes to path_out. */
static void write_temp_file(const void *content, size_t len, char *path_out, size_t path_len)
{
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	int fd;

	snprintf(path_out, path_len, "%s/clawvm-test-argv-XXXXXX", dir);
	fd = mkstemp(path_out);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

/* Writes content to a temp file and runs command_argv_read on it with max_bytes. */
static int read_argv_file(const void *content, size_t len, size_t max_bytes,
			  struct command_argv *cmd, char *err, size_t err_len)
{
	char path[256];
	int ret;

	write_temp_file(content, len, path, sizeof(path));
	err[0] = '\0';
	ret = command_argv_read(path, max_bytes, cmd, err, err_len);
	unlink(path);
	return ret;
}

static void test_argv_read_well_formed(void **state)
{
	static const char content[] = "echo\0hello world\0\0last"; /* sizeof adds the final NUL */
	struct command_argv cmd;
	char err[256];

	(void)state;
	assert_int_equal(read_argv_file(content, sizeof(content), COMMAND_ARGV_MAX_BYTES, &cmd, err,
					sizeof(err)),
			 0);
	assert_int_equal(cmd.argc, 4);
	assert_string_equal(cmd.argv[0], "echo");
	assert_string_equal(cmd.argv[1], "hello world");
	assert_string_equal(cmd.argv[2], ""); /* empty arguments are legitimate */
	assert_string_equal(cmd.argv[3], "last");
	assert_null(cmd.argv[4]);
	assert_int_equal(cmd.len, sizeof(content));
	command_argv_release(&cmd);
	assert_null(cmd.argv);
	assert_null(cmd.buf);
}

static void test_argv_read_single_string(void **state)
{
	struct command_argv cmd;
	char err[256];

	(void)state;
	assert_int_equal(read_argv_file("true", 5, COMMAND_ARGV_MAX_BYTES, &cmd, err, sizeof(err)),
			 0);
	assert_int_equal(cmd.argc, 1);
	assert_string_equal(cmd.argv[0], "true");
	assert_null(cmd.argv[1]);
	command_argv_release(&cmd);
}

static void test_argv_read_empty_file(void **state)
{
	struct command_argv cmd;
	char err[256];

	(void)state;
	assert_int_equal(read_argv_file("", 0, COMMAND_ARGV_MAX_BYTES, &cmd, err, sizeof(err)),
			 -ENODATA);
	assert_non_null(strstr(err, "is not a valid argv file: it is empty"));
	assert_null(cmd.argv);
	assert_null(cmd.buf);
}

static void test_argv_read_no_trailing_nul(void **state)
{
	struct command_argv cmd;
	char err[256];

	(void)state;
	assert_int_equal(
	    read_argv_file("ls\0-l", 5, COMMAND_ARGV_MAX_BYTES, &cmd, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "it does not end in a NUL byte (5 bytes)"));
	assert_null(cmd.argv);
}

static void test_argv_read_empty_program_name(void **state)
{
	struct command_argv cmd;
	char err[256];

	(void)state;
	assert_int_equal(read_argv_file("\0x", 3, COMMAND_ARGV_MAX_BYTES, &cmd, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "the program name (first string) is empty"));
	assert_int_equal(read_argv_file("", 1, COMMAND_ARGV_MAX_BYTES, &cmd, err, sizeof(err)),
			 -EINVAL);
}

/* The limit is inclusive: max_bytes passes, max_bytes + 1 is refused, whatever the content. */
static void test_argv_read_size_limit(void **state)
{
	const size_t max = 10000; /* larger than the first read buffer, to cover growth */
	char *content = malloc(max + 1);
	struct command_argv cmd;
	char err[256];

	(void)state;
	assert_non_null(content);
	memset(content, 'a', max + 1);
	content[max - 1] = '\0';
	assert_int_equal(read_argv_file(content, max, max, &cmd, err, sizeof(err)), 0);
	assert_int_equal(cmd.argc, 1);
	assert_int_equal(strlen(cmd.argv[0]), max - 1);
	command_argv_release(&cmd);

	content[max - 1] = 'a';
	content[max] = '\0';
	assert_int_equal(read_argv_file(content, max + 1, max, &cmd, err, sizeof(err)), -E2BIG);
	assert_non_null(strstr(err, "is larger than 10000 bytes"));
	assert_null(cmd.argv);
	free(content);
}

static void test_argv_read_too_big_for_default_limit(void **state)
{
	const size_t len = COMMAND_ARGV_MAX_BYTES + 1;
	char *content = calloc(1, len); /* all NULs: would parse, if it were accepted */
	struct command_argv cmd;
	char err[256];

	(void)state;
	assert_non_null(content);
	content[0] = 'x';
	assert_int_equal(
	    read_argv_file(content, len, COMMAND_ARGV_MAX_BYTES, &cmd, err, sizeof(err)), -E2BIG);
	free(content);
}

static void test_argv_read_missing_file(void **state)
{
	struct command_argv cmd;
	char err[256];

	(void)state;
	assert_int_equal(command_argv_read("/nonexistent/clawvm/argv", COMMAND_ARGV_MAX_BYTES, &cmd,
					   err, sizeof(err)),
			 -ENOENT);
	assert_string_equal(err, "open `/nonexistent/clawvm/argv`: No such file or directory");
}

static void test_argv_read_directory(void **state)
{
	struct command_argv cmd;
	char err[256];

	(void)state;
	assert_int_equal(command_argv_read("/", COMMAND_ARGV_MAX_BYTES, &cmd, err, sizeof(err)),
			 -EISDIR);
	assert_string_equal(err, "read `/`: Is a directory");
}

static void test_argv_parse_counts_strings(void **state)
{
	char buf[] = {'a', 0, 'b', 'c', 0, 0};
	char **argv = NULL;
	size_t argc = 0;
	char err[128];

	(void)state;
	assert_int_equal(command_argv_parse(buf, sizeof(buf), &argv, &argc, err, sizeof(err)), 0);
	assert_int_equal(argc, 3);
	assert_ptr_equal(argv[0], &buf[0]);
	assert_ptr_equal(argv[1], &buf[2]);
	assert_ptr_equal(argv[2], &buf[5]);
	assert_null(argv[3]);
	free(argv);
}

static void test_exit_status_exited(void **state)
{
	(void)state;
	assert_int_equal(command_exit_status(W_EXITCODE(0, 0)), 0);
	assert_int_equal(command_exit_status(W_EXITCODE(7, 0)), 7);
	assert_int_equal(command_exit_status(W_EXITCODE(255, 0)), 255);
	assert_int_equal(command_exit_status(W_EXITCODE(CLAWVM_EXIT_NOT_FOUND, 0)), 127);
}

static void test_exit_status_signaled(void **state)
{
	(void)state;
	assert_int_equal(command_exit_status(W_EXITCODE(0, SIGKILL)), 137);
	assert_int_equal(command_exit_status(W_EXITCODE(0, SIGTERM)), 143);
	assert_int_equal(command_exit_status(W_EXITCODE(0, SIGHUP)), 129);
	/* A core dump sets bit 7 of the status; the signal number is still SIGSEGV. */
	assert_int_equal(command_exit_status(W_EXITCODE(0, SIGSEGV) | 0x80), 139);
}

static void test_exit_status_not_terminated(void **state)
{
	(void)state;
	assert_int_equal(command_exit_status(W_STOPCODE(SIGSTOP)), -1);
	assert_int_equal(command_exit_status(0xffff), -1); /* continued */
}

/* The statuses the real kernel produces, not just the macros' idea of them. */
static void test_exit_status_from_real_children(void **state)
{
	int wstatus;
	pid_t pid;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(7);
	assert_int_equal(waitpid(pid, &wstatus, 0), pid);
	assert_int_equal(command_exit_status(wstatus), 7);

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		for (;;)
			pause();
	}
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &wstatus, 0), pid);
	assert_int_equal(command_exit_status(wstatus), 137);
}

static void test_signal_forwarded(void **state)
{
	static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
	int count = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		assert_true(command_signal_forwarded(forwarded[i]));
	for (int sig = 0; sig < NSIG; sig++)
		count += command_signal_forwarded(sig);
	assert_int_equal(count, 6);
	assert_false(command_signal_forwarded(SIGCHLD));
	assert_false(command_signal_forwarded(SIGKILL));
}

/* The /clawvm/mounts records: the root first and read-only, then shares in order. */
static void test_shares_parse_well_formed(void **state)
{
	char *strings[] = {"clawvm0",	    "/", "ro", "clawvm1", "/workspace", "rw", "clawvm2",
			   "/opt/data set", "ro"};
	struct share shares[SHARES_MAX];
	char err[256] = "";
	size_t n = 99;

	(void)state;
	assert_int_equal(shares_parse(strings, 9, shares, SHARES_MAX, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 3);
	assert_string_equal(shares[0].tag, "clawvm0");
	assert_string_equal(shares[0].path, "/");
	assert_true(shares[0].read_only);
	assert_string_equal(shares[1].path, "/workspace");
	assert_false(shares[1].read_only);
	assert_string_equal(shares[2].path, "/opt/data set");
	assert_true(shares[2].read_only);
	assert_int_equal(shares_parse(strings, 0, shares, SHARES_MAX, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 0);
}

static void expect_refused(char **strings, size_t count, size_t cap, const char *want)
{
	struct share shares[SHARES_MAX];
	char err[256] = "";
	size_t n = 99;

	assert_int_equal(shares_parse(strings, count, shares, cap, &n, err, sizeof(err)), -EINVAL);
	assert_int_equal(n, 0);
	assert_non_null(strstr(err, want));
}

static void test_shares_parse_refuses(void **state)
{
	char *two[] = {"clawvm0", "/"};
	char *long_tag[] = {"0123456789012345678901234567890123456", "/w", "rw"};
	char *relative[] = {"t", "workspace", "rw"};
	char *dotdot[] = {"t", "/w/../etc", "rw"};
	char *dot[] = {"t", "/w/./x", "rw"};
	char *empty_tag[] = {"", "/w", "rw"};
	char *bad_opt[] = {"t", "/w", "rx"};
	char *root_rw[] = {"t", "/", "rw"};
	char *root_second[] = {"a", "/w", "rw", "b", "/", "ro"};
	char *many[] = {"a", "/a", "rw", "b", "/b", "rw"};

	(void)state;
	expect_refused(two, 2, SHARES_MAX, "three per share");
	expect_refused(long_tag, 3, SHARES_MAX, "1 to 36 bytes");
	expect_refused(empty_tag, 3, SHARES_MAX, "1 to 36 bytes");
	expect_refused(relative, 3, SHARES_MAX, "not a clean absolute path");
	expect_refused(dotdot, 3, SHARES_MAX, "not a clean absolute path");
	expect_refused(dot, 3, SHARES_MAX, "not a clean absolute path");
	expect_refused(bad_opt, 3, SHARES_MAX, "neither ro nor rw");
	expect_refused(root_rw, 3, SHARES_MAX, "the root must be the first share");
	expect_refused(root_second, 6, SHARES_MAX, "the root must be the first share");
	expect_refused(many, 6, 1, "at most 1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_argv_read_well_formed),
	    cmocka_unit_test(test_argv_read_single_string),
	    cmocka_unit_test(test_argv_read_empty_file),
	    cmocka_unit_test(test_argv_read_no_trailing_nul),
	    cmocka_unit_test(test_argv_read_empty_program_name),
	    cmocka_unit_test(test_argv_read_size_limit),
	    cmocka_unit_test(test_argv_read_too_big_for_default_limit),
	    cmocka_unit_test(test_argv_read_missing_file),
	    cmocka_unit_test(test_argv_read_directory),
	    cmocka_unit_test(test_argv_parse_counts_strings),
	    cmocka_unit_test(test_exit_status_exited),
	    cmocka_unit_test(test_exit_status_signaled),
	    cmocka_unit_test(test_exit_status_not_terminated),
	    cmocka_unit_test(test_exit_status_from_real_children),
	    cmocka_unit_test(test_signal_forwarded),
	    cmocka_unit_test(test_shares_parse_well_formed),
	    cmocka_unit_test(test_shares_parse_refuses),
	};

	return cmocka_run_group_tests_name("guest-init", tests, NULL, NULL);
}

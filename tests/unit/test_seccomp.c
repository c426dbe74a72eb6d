/* The seccomp allowlists, for real: each case forks a child that installs a kind's filter,
 * makes a call the list allows (it must come back) and one it does not (the child must die
 * of SIGSYS, with the one line naming the kind and the call on its stderr). And the tables
 * themselves: every entry names a real x86-64 system call and says why. */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <pthread.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmm/seccomp.h"

/* What a child did: how it ended, and its stderr. */
struct outcome {
	int status;
	char err[1024];
};

/* Runs `fn` in a child with stderr to a pipe; `fn` returns the child's exit status, if it
 * is still alive by then. */
static void run_child(int (*fn)(void *), void *arg, struct outcome *out)
{
	int pipefd[2];
	size_t len = 0;
	ssize_t n;
	pid_t pid;

	assert_int_equal(pipe(pipefd), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(pipefd[0]);
		dup2(pipefd[1], STDERR_FILENO);
		close(pipefd[1]);
		_exit(fn(arg));
	}
	close(pipefd[1]);
	while ((n = read(pipefd[0], out->err + len, sizeof(out->err) - 1 - len)) > 0)
		len += (size_t)n;
	out->err[len] = '\0';
	close(pipefd[0]);
	assert_int_equal(waitpid(pid, &out->status, 0), pid);
}

/* The handler's line for `kind` and system call `name`. */
static void expect_line(char *buf, size_t cap, enum seccomp_kind kind, const char *name)
{
	int nr = seccomp_syscall_resolve_name(name);

	snprintf(buf, cap,
		 "clawvm: seccomp: the %s thread made a forbidden system call: %s (%d); stopping\n",
		 seccomp_kind_name(kind), name, nr);
}

static void assert_died_of(const struct outcome *o, const char *before, enum seccomp_kind kind,
			   const char *name)
{
	char want[512], line[256];

	expect_line(line, sizeof(line), kind, name);
	snprintf(want, sizeof(want), "%s%s", before, line);
	if (!WIFSIGNALED(o->status))
		print_error("the child exited with %d, stderr: %s\n", WEXITSTATUS(o->status),
			    o->err);
	assert_true(WIFSIGNALED(o->status));
	assert_int_equal(WTERMSIG(o->status), SIGSYS);
	assert_string_equal(o->err, want);
}

/* One kind's case: an allowed call, then a forbidden one. */
struct kind_case {
	enum seccomp_kind kind;
	int (*allowed)(void); /* returns 0 if the call came back as expected */
	void (*forbidden)(void);
	const char *forbidden_name;
};

static int allow_kvm_run(void)
{
	/* Not a vCPU fd: ENOTTY, but the filter let it through. */
	return ioctl(STDIN_FILENO, KVM_RUN, 0) < 0 && errno == ENOTTY ? 0 : 1;
}

static int allow_open(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	return fd >= 0 && close(fd) == 0 ? 0 : 1;
}

static int allow_socketpair(void)
{
	int pair[2];

	return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0 ? 0 : 1;
}

static int allow_poll(void)
{
	struct pollfd p = {.fd = STDERR_FILENO, .events = POLLOUT};

	return poll(&p, 1, 0) == 1 ? 0 : 1;
}

static void forbid_inet(void)
{
	(void)socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
}

static void forbid_terminal_ioctl(void)
{
	struct winsize ws;

	(void)ioctl(STDIN_FILENO, TIOCGWINSZ, &ws);
}

static void forbid_kvm_run(void)
{
	(void)ioctl(STDIN_FILENO, KVM_RUN, 0);
}

static void forbid_execve(void)
{
	char *const argv[] = {"true", NULL};

	execve("/bin/true", argv, NULL);
}

static int kind_child(void *arg)
{
	const struct kind_case *c = arg;
	sigset_t all;

	/* As the API thread does: SIGSYS must still reach the handler. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	if (seccomp_install(c->kind) < 0)
		return 2;
	if (c->allowed() != 0)
		return 3;
	fprintf(stderr, "allowed\n");
	c->forbidden();
	return 4;
}

static void check_kind(const struct kind_case *c)
{
	struct outcome o;

	run_child(kind_child, (void *)c, &o);
	assert_died_of(&o, "allowed\n", c->kind, c->forbidden_name);
}

static void vcpu_kind(void **state)
{
	const struct kind_case c = {SECCOMP_VCPU, allow_kvm_run, forbid_terminal_ioctl, "ioctl"};

	(void)state;
	check_kind(&c);
}

static void loop_kind(void **state)
{
	const struct kind_case c = {SECCOMP_LOOP, allow_open, forbid_inet, "socket"};

	(void)state;
	check_kind(&c);
}

static void api_kind(void **state)
{
	const struct kind_case c = {SECCOMP_API, allow_socketpair, forbid_execve, "execve"};

	(void)state;
	check_kind(&c);
}

static void client_kind(void **state)
{
	const struct kind_case c = {SECCOMP_CLIENT, allow_poll, forbid_kvm_run, "ioctl"};

	(void)state;
	check_kind(&c);
}

/* Nobody may take the SIGSYS handler over, or ignore SIGSYS. */
static int sigsys_child(void *arg)
{
	struct sigaction sa = {.sa_handler = SIG_IGN};

	(void)arg;
	if (seccomp_install(SECCOMP_LOOP) < 0)
		return 2;
	sigaction(SIGSYS, &sa, NULL);
	return 4;
}

static void sigsys_handler_is_locked(void **state)
{
	struct outcome o;

	(void)state;
	run_child(sigsys_child, NULL, &o);
	assert_died_of(&o, "", SECCOMP_LOOP, "rt_sigaction");
}

/* The loop starts threads, never processes. */
static int fork_child(void *arg)
{
	(void)arg;
	if (seccomp_install(SECCOMP_LOOP) < 0)
		return 2;
	if (fork() == 0)
		_exit(0);
	return 4;
}

static void loop_cannot_fork(void **state)
{
	struct outcome o;

	(void)state;
	run_child(fork_child, NULL, &o);
	assert_died_of(&o, "", SECCOMP_LOOP, "clone");
}

/* The order seccomp.h gives: the loop's filter first, then a vCPU thread started under it
 * adds its own; at the end the process exits normally (in sanitized builds, LeakSanitizer's
 * check runs under the loop's filter). */
static void *vcpu_like_thread(void *arg)
{
	int *result = arg;

	*result = seccomp_install(SECCOMP_VCPU) < 0 ? 5 : allow_kvm_run();
	return NULL;
}

static int order_child(void *arg)
{
	pthread_t t;
	int result = -1;

	(void)arg;
	if (seccomp_install(SECCOMP_LOOP) < 0)
		return 2;
	if (pthread_create(&t, NULL, vcpu_like_thread, &result) != 0)
		return 3;
	pthread_join(t, NULL);
	if (result != 0)
		return 10 + result;
	fflush(NULL);
	exit(0);
}

static void vcpu_thread_under_loop(void **state)
{
	struct outcome o;

	(void)state;
	run_child(order_child, NULL, &o);
	assert_string_equal(o.err, "");
	assert_true(WIFEXITED(o.status));
	assert_int_equal(WEXITSTATUS(o.status), 0);
}

/* A thread the loop starts that adds no filter of its own (a virtio-fs worker) keeps the
 * loop's, and is named for what it is. */
static void *worker_thread(void *arg)
{
	(void)arg;
	forbid_execve();
	return NULL;
}

static int worker_child(void *arg)
{
	pthread_t t;

	(void)arg;
	if (seccomp_install(SECCOMP_LOOP) < 0)
		return 2;
	if (pthread_create(&t, NULL, worker_thread, NULL) != 0)
		return 3;
	pthread_join(t, NULL);
	return 4;
}

static void worker_inherits_loop(void **state)
{
	struct outcome o;
	char want[256];

	(void)state;
	run_child(worker_child, NULL, &o);
	expect_line(want, sizeof(want), SECCOMP_KINDS, "execve");
	assert_true(WIFSIGNALED(o.status));
	assert_int_equal(WTERMSIG(o.status), SIGSYS);
	assert_string_equal(o.err, want);
	assert_non_null(strstr(want, "the virtio-fs worker thread"));
}

/* Every entry names an x86-64 system call and says why. */
static void tables_are_sound(void **state)
{
	(void)state;
	for (int k = 0; k < SECCOMP_KINDS; k++) {
		const char *reason;
		unsigned i;
		int nr;

		for (i = 0; seccomp_entries(k, i, &nr, &reason); i++) {
			char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_X86_64, nr);

			assert_true(nr >= 0);
			assert_non_null(name);
			free(name);
			assert_non_null(reason);
			assert_true(strlen(reason) > 0);
		}
		assert_true(i > 10);
	}
}

/* vCPU threads inherit the loop's filter: all a vCPU may call, the loop allows. */
static void vcpu_list_within_loop(void **state)
{
	const char *reason;
	int nr, lnr;

	(void)state;
	for (unsigned i = 0; seccomp_entries(SECCOMP_VCPU, i, &nr, &reason); i++) {
		bool found = false;

		for (unsigned j = 0; !found && seccomp_entries(SECCOMP_LOOP, j, &lnr, &reason); j++)
			found = lnr == nr;
		assert_true(found);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(tables_are_sound),
	    cmocka_unit_test(vcpu_list_within_loop),
	    cmocka_unit_test(vcpu_kind),
	    cmocka_unit_test(loop_kind),
	    cmocka_unit_test(api_kind),
	    cmocka_unit_test(client_kind),
	    cmocka_unit_test(sigsys_handler_is_locked),
	    cmocka_unit_test(loop_cannot_fork),
	    cmocka_unit_test(vcpu_thread_under_loop),
	    cmocka_unit_test(worker_inherits_loop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

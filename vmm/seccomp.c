/* The seccomp allowlists (seccomp.h says who installs which, in what order). Each allowed
 * system call is one entry with its reason; blocks of entries are shared between kinds.
 * What is not listed traps: the SIGSYS handler names the thread's kind and the call, then
 * the process dies by SIGSYS. */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "base/log.h"
#include "vmm/seccomp.h"
#include "vmm/vcpu.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
#define SECCOMP_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define SECCOMP_SANITIZED 1
#endif
#endif

/* Beyond the plain "allow": a tgkill entry allows only signals to this process, and one
 * signal (`sig`, or the vCPU kick if 0); an `errno` entry fails the call instead. */
enum entry_type { ENTRY_ALLOW, ENTRY_TGKILL, ENTRY_ERRNO };

struct entry {
	int nr;
	const char *reason;
	enum entry_type type;
	int value; /* ENTRY_TGKILL: the signal (0: VCPU_KICK_SIGNAL); ENTRY_ERRNO: the errno */
	unsigned nargs;
	struct scmp_arg_cmp args[2];
};

/* clang-format off */
#define ALLOW(name, why)	 {.nr = SCMP_SYS(name), .reason = why, .type = ENTRY_ALLOW}
#define ALLOW_IF(name, why, cmp) {.nr = SCMP_SYS(name), .reason = why, .type = ENTRY_ALLOW, \
				  .nargs = 1, .args = {cmp}}
#define ALLOW_TGKILL(sig, why)	 {.nr = SCMP_SYS(tgkill), .reason = why, .type = ENTRY_TGKILL, \
				  .value = sig}
#define FAIL(name, err, why)	 {.nr = SCMP_SYS(name), .reason = why, .type = ENTRY_ERRNO, \
				  .value = err}
/* clang-format on */
#define ARG_EQ(n, v)	       SCMP_CMP(n, SCMP_CMP_EQ, (scmp_datum_t)(v))
#define ARG_NE(n, v)	       SCMP_CMP(n, SCMP_CMP_NE, (scmp_datum_t)(v))
#define ARG_MASKED_EQ(n, m, v) SCMP_CMP(n, SCMP_CMP_MASKED_EQ, (scmp_datum_t)(m), (scmp_datum_t)(v))
#define IOCTL(req, why)	       ALLOW_IF(ioctl, why, ARG_EQ(1, req))
#define COUNT(a)	       (sizeof(a) / sizeof((a)[0]))

/* pthread_create's flags; namespaces and anything else are refused. */
#define THREAD_FLAGS                                                                               \
	(CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM |        \
	 CLONE_SETTLS | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID)

/* What every thread of clawvm does: memory, locks, logging, its own end. */
static const struct entry base_entries[] = {
    ALLOW(futex, "pthread locks, condition variables and joins"),
    ALLOW(write, "log lines to stderr (one write each), eventfd wake-ups, the console log"),
    ALLOW(close, "descriptors let go of (on a vCPU: a virtio-fs reset drops the FUSE nodes)"),
    ALLOW_IF(mmap, "malloc's arenas and large blocks; never executable",
	     ARG_MASKED_EQ(2, PROT_EXEC, 0)),
    ALLOW_IF(mprotect, "malloc's arenas and stack guards; never executable",
	     ARG_MASKED_EQ(2, PROT_EXEC, 0)),
    ALLOW(munmap, "free() of large blocks, unmapping at the end"),
    ALLOW(madvise, "free() gives pages back; a thread's stack at its end"),
    ALLOW(brk, "malloc's main arena"),
    ALLOW(rt_sigprocmask, "pthread, raise(), and the SIGSYS handler unblocking SIGSYS"),
    ALLOW(rt_sigreturn, "return from a signal handler (the vCPU kick's)"),
    ALLOW_IF(rt_sigaction, "abort() resets SIGABRT; never SIGSYS, whose handler stays ours",
	     ARG_NE(0, SIGSYS)),
    ALLOW(getpid, "raise() (abort, the SIGSYS handler) names the process"),
    ALLOW(gettid, "raise() names the thread"),
    ALLOW_TGKILL(SIGSYS, "the SIGSYS handler raises SIGSYS again to die of it"),
    ALLOW_TGKILL(SIGABRT, "abort() on a failed assertion"),
    ALLOW(clock_gettime, "the clock, when the vDSO does not answer (log times, budgets)"),
    ALLOW(gettimeofday, "the clock, when the vDSO does not answer"),
    ALLOW(restart_syscall, "a call interrupted by a signal restarts"),
    ALLOW(exit, "a thread's end"),
    ALLOW(exit_group, "the process's end"),
};

/* A vCPU thread: KVM_RUN and the exits it handles on its own thread (port and MMIO
 * devices, which log, wake the loop through eventfds and pulse interrupt lines). */
static const struct entry vcpu_entries[] = {
    IOCTL(KVM_RUN, "the vCPU runs the guest"),
    IOCTL(KVM_GET_REGS, "where a triple fault left the vCPU, for the error message"),
    IOCTL(KVM_IRQ_LINE, "the UART pulses its interrupt line after a guest's access"),
    /* --console-log rotates on the vCPU that wrote the UART byte (console_log.c): */
    ALLOW(rename, "--console-log: FILE becomes FILE.1 when it is full"),
    ALLOW_IF(openat, "--console-log: the new FILE; never for reading",
	     ARG_EQ(2, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC)),
    ALLOW(ftruncate, "--console-log: FILE starts over when FILE.1 cannot be named"),
    ALLOW(lseek, "--console-log: FILE starts over when FILE.1 cannot be named"),
};

/* The device loop: every device's host side (vsock sockets, virtio-rng, the FUSE server
 * of the virtio-fs workers it starts), timers, the threads it starts, and the teardown of
 * the process after the guest (the main thread runs the loop). */
static const struct entry loop_entries[] = {
    ALLOW(read, "eventfds, timerfds and vsock host sockets"),
    ALLOW(epoll_wait, "the loop's wait"),
    ALLOW(epoll_pwait, "the loop's wait (glibc may use this one)"),
    ALLOW(epoll_ctl, "watching and unwatching descriptors"),
    ALLOW(recvfrom, "vsock: data from host sockets (recv)"),
    ALLOW(sendto, "vsock: data to host sockets (send)"),
    ALLOW_IF(socket, "vsock: a guest's connection to the host's <uds>_PORT (AF_UNIX only)",
	     ARG_EQ(0, AF_UNIX)),
    ALLOW(connect, "vsock: a guest's connection to the host's <uds>_PORT"),
    ALLOW(accept4, "vsock: a host client on the hybrid vsock socket"),
    ALLOW(shutdown, "vsock: a half-closed connection"),
    ALLOW(getrandom, "virtio-rng's bytes"),
    ALLOW(timerfd_settime, "the stop's grace timer"),
    ALLOW_TGKILL(0, "kicks a vCPU out of KVM_RUN (the end, a pause)"),
    IOCTL(TCSETS, "the terminal set back after `clawvm run -t`"),
    IOCTL(TCGETS, "isatty() on the terminal"),
    ALLOW_IF(clone, "starts the vCPU threads and virtio-fs workers: threads only",
	     ARG_MASKED_EQ(0,
			   THREAD_FLAGS | CLONE_NEWNS | CLONE_NEWUSER | CLONE_NEWPID |
			       CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP,
			   THREAD_FLAGS)),
    FAIL(clone3, ENOSYS, "glibc then falls back to clone, whose flags a filter can see"),
    ALLOW(set_robust_list, "a new thread's start in glibc"),
    ALLOW(rseq, "a new thread's start in glibc"),
    ALLOW_IF(seccomp, "a new vCPU thread adds its own filter", ARG_EQ(0, SECCOMP_SET_MODE_FILTER)),
    ALLOW_IF(prctl, "libseccomp sets no_new_privs before a new vCPU thread's filter",
	     ARG_EQ(0, PR_SET_NO_NEW_PRIVS)),
    /* The FUSE server (virtio/fuse*.c), confined to its shares by openat2's RESOLVE_BENEATH
     * from its own O_PATH descriptors: */
    ALLOW(openat, "FUSE: a node opened again through /proc/self/fd for I/O"),
    ALLOW(openat2, "FUSE: every lookup, beneath the share's root"),
    ALLOW(newfstatat, "FUSE: attributes of a node"),
    ALLOW(fstat, "FUSE: attributes of an open node"),
    ALLOW(statx, "FUSE: attributes (glibc's fstatat may use statx)"),
    ALLOW(readlinkat, "FUSE: READLINK"),
    ALLOW(mkdirat, "FUSE: MKDIR"),
    ALLOW(mknodat, "FUSE: MKNOD, CREATE"),
    ALLOW(symlinkat, "FUSE: SYMLINK"),
    ALLOW(linkat, "FUSE: LINK"),
    ALLOW(unlinkat, "FUSE: UNLINK, RMDIR"),
    ALLOW(renameat2, "FUSE: RENAME2 with flags"),
    ALLOW(renameat, "FUSE: RENAME (glibc's renameat2 without flags)"),
    ALLOW(fchmod, "FUSE: SETATTR's mode"),
    ALLOW(fchmodat, "FUSE: SETATTR's mode, through /proc/self/fd"),
    ALLOW(fchownat, "FUSE: SETATTR's owner"),
    ALLOW(utimensat, "FUSE: SETATTR's times"),
    ALLOW(ftruncate, "FUSE: SETATTR's size"),
    ALLOW(fallocate, "FUSE: FALLOCATE"),
    ALLOW(fsync, "FUSE: FSYNC"),
    ALLOW(fdatasync, "FUSE: FSYNC with the data-only flag"),
    ALLOW(preadv, "FUSE: READ into the guest's buffers"),
    ALLOW(pwritev, "FUSE: WRITE from the guest's buffers"),
    ALLOW(getdents64, "FUSE: READDIR, READDIRPLUS"),
    ALLOW(lseek, "FUSE: LSEEK, and READDIR's offsets"),
    ALLOW(fstatfs, "FUSE: STATFS"),
    ALLOW(fgetxattr, "FUSE: GETXATTR"),
    ALLOW(fsetxattr, "FUSE: SETXATTR"),
    ALLOW(flistxattr, "FUSE: LISTXATTR"),
    ALLOW(fremovexattr, "FUSE: REMOVEXATTR"),
    ALLOW(copy_file_range, "FUSE: COPY_FILE_RANGE"),
    ALLOW(faccessat2, "FUSE: ACCESS"),
    /* After the guest, on the main thread: */
    ALLOW(unlink, "the end: the vsock and API sockets and the sandbox directory's files"),
    ALLOW(rmdir, "the end: the sandbox directory"),
};

/* The control API thread: its clients, the execs it relays, and for `clawvm vmm` the whole
 * builder (vm_create: KVM, guest memory, kernel and initrd files, devices' descriptors). */
static const struct entry api_entries[] = {
    ALLOW(read, "eventfds and the signalfd"),
    ALLOW(epoll_wait, "the API loop's wait"),
    ALLOW(epoll_pwait, "the API loop's wait (glibc may use this one)"),
    ALLOW(epoll_ctl, "watching and unwatching clients"),
    ALLOW(accept4, "a new client"),
    ALLOW(recvfrom, "a client's requests, an exec's frames (recv)"),
    ALLOW(sendto, "replies and events, an exec's frames (send)"),
    ALLOW_IF(socketpair, "an exec's connection to the guest (AF_UNIX)", ARG_EQ(0, AF_UNIX)),
    ALLOW_TGKILL(0, "pause: kicks the vCPUs out of KVM_RUN"),
    ALLOW(timerfd_settime, "stop, SIGTERM: arms the stop's grace timer (vm_stop_later)"),
    /* `clawvm vmm`'s start builds the VM here: */
    ALLOW(openat, "start: /dev/kvm, the kernel, the initrd, the console log, the shares; "
		  "metrics: /proc/self/statm"),
    ALLOW(fstat, "start: the kernel's and initrd's sizes; fopen"),
    ALLOW(newfstatat, "start: the kernel's and initrd's sizes"),
    ALLOW(pread64, "start: the initrd into guest memory"),
    ALLOW(prlimit64, "start: the open-file limit raised for the FUSE servers"),
    ALLOW(eventfd2, "start: the VM's and devices' eventfds"),
    ALLOW(timerfd_create, "start: the stop's grace timer"),
    ALLOW(epoll_create1, "start: the device loop"),
    ALLOW_IF(socket, "start: the hybrid vsock socket (AF_UNIX)", ARG_EQ(0, AF_UNIX)),
    ALLOW(bind, "start: the hybrid vsock socket"),
    ALLOW(listen, "start: the hybrid vsock socket"),
    ALLOW(unlink, "start: a failed start removes its hybrid vsock socket"),
    ALLOW(fstatfs, "start: the FUSE server checks /proc/self/fd is procfs"),
    ALLOW(lseek, "metrics: fclose() of /proc/self/statm's stream"),
    ALLOW(mincore, "metrics: how much of guest memory is resident"),
    ALLOW(sysinfo, "set_machine: the host's RAM bounds the guest's"),
    ALLOW(readlink, "add_share, set_boot: realpath() resolves the paths given; start: "
		    "/proc/self/exe, where the guest files are looked for"),
    ALLOW(access, "start: is the kernel or initrd there (guest_files.c)"),
    ALLOW(geteuid, "start: the FUSE server's owner for new files"),
    ALLOW(getegid, "start: the FUSE server's group for new files"),
    ALLOW_IF(ioctl, "start: KVM's ioctls (type KVMIO) only", ARG_MASKED_EQ(1, 0xff00, KVMIO << 8)),
};

/* The exec client thread of `clawvm run`: the command's stdio and signals. */
static const struct entry client_entries[] = {
    ALLOW(read, "stdin, the signalfd, eventfds"),
    ALLOW(poll, "the client's wait"),
    ALLOW(ppoll, "the client's wait (glibc may use this one)"),
    ALLOW(recvfrom, "the command's frames (recv)"),
    ALLOW(sendto, "stdin and signals to the command (send)"),
    IOCTL(TIOCGWINSZ, "the terminal's size after SIGWINCH"),
    ALLOW_IF(openat, "-d: /dev/null to replace stderr once the command runs (write only)",
	     ARG_EQ(2, O_WRONLY | O_CLOEXEC)),
    ALLOW(dup2, "-d: stderr replaced by /dev/null"),
    ALLOW(timerfd_settime, "SIGTERM: the stop's grace timer"),
    ALLOW_IF(fcntl, "is stdout non-blocking (F_GETFL)", ARG_EQ(1, F_GETFL)),
    ALLOW_IF(fcntl, "the command's connection made non-blocking (F_SETFL)", ARG_EQ(1, F_SETFL)),
};

#ifdef SECCOMP_SANITIZED
/* ASan, LSan and UBSan's runtime in test builds: reports read /proc/self/maps; LeakSanitizer
 * at exit stops the world with a tracer task (a clone that is no thread) and ptrace; a
 * thread's start asks its stack (sched_getaffinity) and sets an alternate signal stack. */
static const struct entry sanitizer_entries[] = {
    ALLOW(openat, "sanitizers: /proc/self/maps, /proc/self/task"),
    ALLOW(open, "sanitizers: /proc files (their runtime calls open, not openat, on x86-64)"),
    ALLOW(stat, "sanitizers: files they look at"),
    ALLOW(read, "sanitizers: /proc files"),
    ALLOW(getdents64, "sanitizers: /proc/self/task's threads"),
    ALLOW(getdents, "sanitizers: /proc/self/task's threads (the old call, on x86-64)"),
    ALLOW(readlink, "sanitizers: /proc/self/exe"),
    ALLOW(fstat, "sanitizers: /proc files"),
    ALLOW(newfstatat, "sanitizers: /proc files"),
    ALLOW(lseek, "sanitizers: /proc files"),
    ALLOW(sched_yield, "sanitizers: spin locks, waiting for the leak check's tracer"),
    ALLOW(sched_getaffinity, "sanitizers: a new thread's stack bounds (pthread_getattr_np)"),
    ALLOW(sigaltstack, "sanitizers: each thread's alternate signal stack"),
    ALLOW_IF(clone, "LeakSanitizer's tracer task",
	     ARG_EQ(0, CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_UNTRACED)),
    ALLOW(ptrace, "LeakSanitizer's tracer stops and reads the threads"),
    ALLOW(wait4, "LeakSanitizer waits for its tracer and the stopped threads"),
    ALLOW(prctl, "LeakSanitizer: PR_SET_PTRACER, PR_SET_PDEATHSIG, PR_*_DUMPABLE"),
    ALLOW(getppid, "LeakSanitizer's tracer watches its parent"),
    ALLOW(kill, "LeakSanitizer's tracer, when its parent died"),
    ALLOW(mremap, "sanitizers: growing internal buffers"),
    ALLOW(fcntl, "sanitizers: the symbolizer's descriptors"),
};
#endif

struct block {
	const struct entry *entries;
	unsigned count;
};

#define BLOCK(a)                                                                                   \
	{                                                                                          \
		a, COUNT(a)                                                                        \
	}

/* Each kind's blocks. The loop's include the vCPU's: vCPU threads inherit its filter. */
static const struct block kind_blocks[SECCOMP_KINDS][4] = {
    [SECCOMP_VCPU] = {BLOCK(base_entries), BLOCK(vcpu_entries)},
    [SECCOMP_LOOP] = {BLOCK(base_entries), BLOCK(vcpu_entries), BLOCK(loop_entries)},
    [SECCOMP_API] = {BLOCK(base_entries), BLOCK(api_entries)},
    [SECCOMP_CLIENT] = {BLOCK(base_entries), BLOCK(client_entries)},
};

static const char *const kind_names[SECCOMP_KINDS] = {
    [SECCOMP_VCPU] = "vCPU",
    [SECCOMP_LOOP] = "loop",
    [SECCOMP_API] = "API",
    [SECCOMP_CLIENT] = "exec client",
};

/* A filtered thread that installed no filter of its own inherited one: only the loop starts
 * threads under its filter, and those that do not install their own are virtio-fs workers. */
const char *seccomp_kind_name(enum seccomp_kind kind)
{
	return kind < SECCOMP_KINDS ? kind_names[kind] : "virtio-fs worker";
}

static const struct entry *kind_entry(enum seccomp_kind kind, unsigned i)
{
	const struct block *b = kind_blocks[kind];

	for (unsigned k = 0; k < 4 && b[k].entries; k++) {
		if (i < b[k].count)
			return &b[k].entries[i];
		i -= b[k].count;
	}
#ifdef SECCOMP_SANITIZED
	if (i < COUNT(sanitizer_entries))
		return &sanitizer_entries[i];
#endif
	return NULL;
}

unsigned seccomp_entries(enum seccomp_kind kind, unsigned i, int *nr, const char **reason)
{
	const struct entry *e = kind < SECCOMP_KINDS ? kind_entry(kind, i) : NULL;

	if (!e)
		return 0;
	*nr = e->nr;
	*reason = e->reason;
	return 1;
}

/* ---- the violation ---- */

/* System call names, resolved before any filter (libseccomp's resolver allocates, which a
 * signal handler must not), for the SIGSYS handler to read. */
#define NAMES_MAX 512
#define NAME_LEN  28
static char syscall_names[NAMES_MAX][NAME_LEN];
static __thread enum seccomp_kind thread_kind = SECCOMP_KINDS;

static size_t append(char *buf, size_t at, size_t cap, const char *s)
{
	while (*s && at < cap)
		buf[at++] = *s++;
	return at;
}

static size_t append_uint(char *buf, size_t at, size_t cap, unsigned long v)
{
	char digits[24];
	size_t n = 0;

	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n && at < cap)
		buf[at++] = digits[--n];
	return at;
}

/* Async-signal-safe only: one write, then die of SIGSYS. The handler was installed with
 * SA_RESETHAND, so SIGSYS is SIG_DFL again by now (the filter refuses rt_sigaction on
 * SIGSYS, so nobody else can have changed it); it is blocked while we run, so unblock it and
 * raise it. */
static void seccomp_violation(int sig, siginfo_t *info, void *ucontext)
{
	int saved = errno, nr = info->si_syscall;
	char line[192];
	size_t n = 0;
	sigset_t set;

	(void)ucontext;
	n = append(line, n, sizeof(line), "clawvm: seccomp: the ");
	n = append(line, n, sizeof(line), seccomp_kind_name(thread_kind));
	n = append(line, n, sizeof(line), " thread made a forbidden system call: ");
	n = append(line, n, sizeof(line),
		   nr >= 0 && nr < NAMES_MAX && syscall_names[nr][0] ? syscall_names[nr] : "?");
	n = append(line, n, sizeof(line), " (");
	n = append_uint(line, n, sizeof(line), (unsigned long)(unsigned)nr);
	n = append(line, n, sizeof(line), "); stopping\n");
	if (write(STDERR_FILENO, line, n) < 0) {
		/* nobody to tell */
	}
	sigemptyset(&set);
	sigaddset(&set, sig);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	raise(sig);
	/* Still here: the jailed VMM is pid 1 of its pid namespace, and the kernel drops a
	 * signal with the default action that such a process sends itself. End with the
	 * status a death by SIGSYS gives (the supervisor passes it on). */
	syscall(SYS_exit_group, 128 + SIGSYS);
	errno = saved;
}

#ifdef CLAWVM_SECCOMP_SELFTEST
static const char *selftest_kind;
#endif

static int prepare_error;

/* Once per process, before the first filter: the names, the handler, libseccomp's probe of
 * the kernel (it makes system calls of its own the first time only). */
static void seccomp_prepare(void)
{
	struct sigaction sa = {.sa_sigaction = seccomp_violation,
			       .sa_flags = SA_SIGINFO | SA_RESETHAND};

	for (int nr = 0; nr < NAMES_MAX; nr++) {
		char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);

		if (name) {
			strncpy(syscall_names[nr], name, NAME_LEN - 1);
			free(name);
		}
	}
	(void)seccomp_api_get();
#ifdef CLAWVM_SECCOMP_SELFTEST
	selftest_kind = getenv("CLAWVM_SECCOMP_SELFTEST");
#endif
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0)
		prepare_error = -errno;
}

static int add_entry(scmp_filter_ctx ctx, const struct entry *e)
{
	struct scmp_arg_cmp args[4];
	unsigned n = e->nargs;
	uint32_t action = SCMP_ACT_ALLOW;

	memcpy(args, e->args, n * sizeof(args[0]));
	if (e->type == ENTRY_TGKILL) {
		args[n++] = SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid());
		args[n++] =
		    SCMP_A2(SCMP_CMP_EQ, (scmp_datum_t)(e->value ? e->value : VCPU_KICK_SIGNAL));
	} else if (e->type == ENTRY_ERRNO) {
		action = SCMP_ACT_ERRNO((uint32_t)e->value);
	}
	return seccomp_rule_add_array(ctx, action, e->nr, n, args);
}

int seccomp_install(enum seccomp_kind kind)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	const struct entry *e;
	scmp_filter_ctx ctx;
	sigset_t sys;
	int ret = 0;

	pthread_once(&once, seccomp_prepare);
	if (prepare_error) {
		log_err("seccomp: cannot install the SIGSYS handler: %s", strerror(-prepare_error));
		return prepare_error;
	}
	ctx = seccomp_init(SCMP_ACT_TRAP);
	if (!ctx) {
		log_err("seccomp: cannot make the %s thread's filter", seccomp_kind_name(kind));
		return -ENOMEM;
	}
	for (unsigned i = 0; (e = kind_entry(kind, i)) && ret == 0; i++) {
		ret = add_entry(ctx, e);
		if (ret < 0)
			log_err("seccomp: the %s thread's filter refuses entry %u (%s): %s",
				seccomp_kind_name(kind), i, e->reason, strerror(-ret));
	}
	/* A blocked SIGSYS would be forced to SIG_DFL by the kernel: death without a word. */
	sigemptyset(&sys);
	sigaddset(&sys, SIGSYS);
	if (ret == 0)
		ret = -pthread_sigmask(SIG_UNBLOCK, &sys, NULL);
	thread_kind = kind;
	if (ret == 0) {
		ret = seccomp_load(ctx);
		if (ret < 0)
			log_err("seccomp: cannot load the %s thread's filter: %s",
				seccomp_kind_name(kind), strerror(-ret));
	}
	seccomp_release(ctx);
	return ret;
}

#ifdef CLAWVM_SECCOMP_SELFTEST
void seccomp_selftest(enum seccomp_kind kind)
{
	static const char *const env_names[SECCOMP_KINDS] = {
	    [SECCOMP_VCPU] = "vcpu",
	    [SECCOMP_LOOP] = "loop",
	    [SECCOMP_API] = "api",
	    [SECCOMP_CLIENT] = "client",
	};

	if (selftest_kind && !strcmp(selftest_kind, env_names[kind])) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		log_err("seccomp: self-test: socket(AF_INET) was allowed (fd %d)", fd);
	}
}
#endif

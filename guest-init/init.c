/* guest-init: the static PID 1 of a clawvm guest (catatonit is the model).
 *
 * It mounts the kernel filesystems and the shares the VMM put in /clawvm/mounts, brings
 * loopback up and starts the egress relay for the ports of /clawvm/egress, serves the
 * exec channel on vsock (api/exec.md), forwards signals to the `main` command and reaps
 * every zombie; when the `main` command ends it kills what is left, reports the command's
 * exit status on the status port and reboots, which makes the VMM exit. Its own messages go
 * to the kernel console (ttyS0).
 *
 * Once it serves, PID 1 never exits on an error: the kernel would panic and the VMM would
 * never learn the status. */
#include "command.h"
#include "egress.h"
#include "exec.h"
#include "shares.h"

#include "api/guest_abi.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <sys/io.h>
#endif

/* How long the processes left behind get to die after SIGKILL: one stuck in the kernel
 * (an unkillable wait on a device) must not keep the VM from reporting its status. */
#define REAP_LEFTOVERS_TIMEOUT_MS 2000

struct mount_spec {
	const char *source;
	const char *target;
	const char *fstype;
	unsigned long flags;
	const char *options;
	mode_t dir_mode;
	bool essential;
};

/* In this order: /dev/pts needs /dev. */
static const struct mount_spec mounts[] = {
    {"proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, 0555, true},
    {"sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, 0555, true},
    {"devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755", 0755, true},
    {"devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "mode=0620,ptmxmode=0666", 0755, false},
    {"tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", 01777, true},
    {"tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755", 0755, true},
};

/* What udev would add to /dev and programs expect (bash process substitution, `cat
 * /dev/stdin`). */
static const struct {
	const char *target;
	const char *path;
} dev_links[] = {
    {"/proc/self/fd", "/dev/fd"},
    {"/proc/self/fd/0", "/dev/stdin"},
    {"/proc/self/fd/1", "/dev/stdout"},
    {"/proc/self/fd/2", "/dev/stderr"},
};

__attribute__((format(printf, 1, 2))) static void console_msg(const char *fmt, ...)
{
	int saved_errno = errno;
	char line[512];
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (len < 0)
		len = 0;
	if ((size_t)len >= sizeof(line))
		len = sizeof(line) - 1;
	/* One write per line, so lines of PID 1 and of the kernel do not interleave. */
	if (dprintf(STDERR_FILENO, "clawvm-init: %.*s\n", len, line) < 0) {
		/* No console: nowhere left to say it. */
	}
	errno = saved_errno;
}

/* A filesystem the kernel mounted already (CONFIG_DEVTMPFS_MOUNT does so for /dev on a disk
 * root) or a test harness set up is left alone. */
static bool is_mount_point(const char *path)
{
	struct stat st, parent;
	char parent_path[64];
	const char *slash = strrchr(path, '/');
	size_t parent_len = slash && slash != path ? (size_t)(slash - path) : 1;

	if (parent_len >= sizeof(parent_path))
		return false;
	memcpy(parent_path, path, parent_len);
	parent_path[parent_len] = '\0';
	if (stat(path, &st) < 0 || stat(parent_path, &parent) < 0)
		return false;
	return st.st_dev != parent.st_dev;
}

__attribute__((warn_unused_result)) static int mount_all(void)
{
	for (size_t i = 0; i < sizeof(mounts) / sizeof(mounts[0]); i++) {
		const struct mount_spec *m = &mounts[i];

		if (mkdir(m->target, m->dir_mode) < 0 && errno != EEXIST) {
			console_msg("mkdir `%s`: %s", m->target, strerror(errno));
			if (m->essential)
				return -1;
			continue;
		}
		if (is_mount_point(m->target))
			continue;
		if (mount(m->source, m->target, m->fstype, m->flags, m->options) < 0) {
			console_msg("mount %s on `%s`: %s", m->fstype, m->target, strerror(errno));
			if (m->essential)
				return -1;
		}
	}
	for (size_t i = 0; i < sizeof(dev_links) / sizeof(dev_links[0]); i++) {
		if (symlink(dev_links[i].target, dev_links[i].path) < 0 && errno != EEXIST)
			console_msg("symlink `%s`: %s", dev_links[i].path, strerror(errno));
	}
	return 0;
}

/* The kernel gives PID 1 /dev/console as fds 0-2 only if the initramfs has that node (the
 * kernel's built-in default one does). Without it they are closed, and the first files we
 * open would land there; devtmpfs, once mounted, has the console. */
static void ensure_std_fds(void)
{
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) >= 0)
			continue;
		/* open() takes the lowest free number, which is this one. */
		if (open("/dev/console", O_RDWR | O_NOCTTY) < 0 && open("/dev/null", O_RDWR) < 0)
			return;
	}
}

/* Tells the VMM that the exec channel listens (guest_abi.h): its session connects now. */
static void report_ready(void)
{
#if defined(__x86_64__) || defined(__i386__)
	if (ioperm(CLAWVM_READY_PORT, 1, 1) < 0) {
		console_msg("cannot tell the VMM the exec channel listens: ioperm: %s",
			    strerror(errno));
		return;
	}
	outb(CLAWVM_READY_VALUE, CLAWVM_READY_PORT);
#endif
}

static void report_status(int status)
{
#if defined(__x86_64__) || defined(__i386__)
	if (ioperm(CLAWVM_STATUS_PORT, CLAWVM_STATUS_PORT_LEN, 1) < 0) {
		console_msg("cannot report exit status %d to the VMM: ioperm: %s", status,
			    strerror(errno));
		return;
	}
	outl((uint32_t)status, CLAWVM_STATUS_PORT);
#else
	console_msg("cannot report exit status %d to the VMM: no status port on this machine",
		    status);
#endif
}

/* The end of every path once PID 1 runs: flush, report, reboot. Never returns. */
__attribute__((noreturn)) static void power_off(int status)
{
	sync();
	report_status(status);
	reboot(RB_AUTOBOOT);
	console_msg("reboot: %s", strerror(errno));
	for (;;)
		pause();
}

/* Reaps every zombie it can without blocking: the exec server's commands (whose EXIT
 * frames follow from it), the egress relay (*egress_pid, 0 once it is gone) and orphans. */
static void reap_zombies(struct exec_server *srv, pid_t *egress_pid)
{
	int wstatus;
	pid_t pid;

	while ((pid = waitpid(-1, &wstatus, WNOHANG)) != 0) {
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			break; /* ECHILD: nobody left */
		}
		if (exec_server_child_exited(srv, pid, wstatus))
			continue;
		if (pid == *egress_pid) {
			console_msg("the egress relay ended (status %d); no egress from now on",
				    command_exit_status(wstatus));
			*egress_pid = 0; /* its pid may be reused */
		}
	}
}

/* Serves exec connections until the `main` command ends, passing the signals PID 1
 * receives on to it; reaps orphans on the way. Returns the `main` command's status. */
static int supervise(int sfd, struct exec_server *srv, pid_t egress_pid)
{
	int status = COMMAND_EXIT_INIT_FAILED;

	for (;;) {
		struct pollfd fds[2] = {
		    {.fd = sfd, .events = POLLIN},
		    {.fd = exec_server_fd(srv), .events = POLLIN},
		};

		/* Without a signalfd, reaping falls back to a poll every 100 ms. */
		if (poll(fds, 2, sfd >= 0 ? -1 : 100) < 0 && errno != EINTR)
			console_msg("poll: %s", strerror(errno));
		while (sfd >= 0 && (fds[0].revents & POLLIN)) {
			struct signalfd_siginfo si;
			ssize_t n = read(sfd, &si, sizeof(si));

			if (n == (ssize_t)sizeof(si)) {
				if (command_signal_forwarded((int)si.ssi_signo))
					exec_server_signal_main(srv, (int)si.ssi_signo);
				continue;
			}
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				break;
			/* Never happens with a valid signalfd; if it does, keep reaping by
			 * polling instead of spinning on a broken fd. */
			console_msg("read signalfd: %s; signals no longer forwarded",
				    n < 0 ? strerror(errno) : "short read");
			close(sfd);
			sfd = -1;
		}
		if (fds[1].revents)
			exec_server_dispatch(srv);
		reap_zombies(srv, &egress_pid);
		if (exec_server_main_done(srv, &status))
			return status;
	}
}

static long elapsed_ms(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
}

/* SIGCHLD is blocked; sigtimedwait on it is how we sleep until the next one dies. */
static void kill_leftovers(void)
{
	struct timespec start, tick = {.tv_sec = 0, .tv_nsec = 50 * 1000 * 1000};
	sigset_t chld;

	if (kill(-1, SIGKILL) < 0 && errno != ESRCH)
		console_msg("kill leftover processes: %s", strerror(errno));
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		pid_t pid = waitpid(-1, NULL, WNOHANG);

		if (pid > 0 || (pid < 0 && errno == EINTR))
			continue;
		if (pid < 0)
			return; /* ECHILD: all gone */
		if (elapsed_ms(&start) >= REAP_LEFTOVERS_TIMEOUT_MS) {
			console_msg("some processes did not die within %d ms; going on",
				    REAP_LEFTOVERS_TIMEOUT_MS);
			return;
		}
		sigtimedwait(&chld, NULL, &tick);
	}
}

/* The exec channel: NULL (said on the console) if the machine has no vsock. */
static struct exec_server *start_exec_server(void)
{
	struct exec_server *srv;
	int listen_fd = exec_listen_vsock(CLAWVM_EXEC_PORT);

	if (listen_fd < 0) {
		console_msg("no exec channel on vsock port %d: %s", CLAWVM_EXEC_PORT,
			    listen_fd == -ENODEV ? "no vsock device" : strerror(-listen_fd));
		return NULL;
	}
	srv = exec_server_create();
	if (!srv) {
		console_msg("no exec channel: %s", strerror(errno));
		close(listen_fd);
		return NULL;
	}
	if (exec_server_add_listener(srv, listen_fd) < 0) {
		console_msg("no exec channel: cannot watch the vsock listener");
		exec_server_destroy(srv);
		return NULL;
	}
	return srv;
}

/* The shares of /clawvm/mounts, if the VMM gave any: the root switched to the overlay over
 * the root share, the others mounted in it. Must run before anything opens a file that
 * should come from the new root. */
static int mount_shares(void)
{
	struct command_argv records;
	struct share shares[SHARES_MAX];
	char err[512];
	size_t n;
	int ret;

	ret = command_argv_read(CLAWVM_MOUNTS_PATH, COMMAND_ARGV_MAX_BYTES, &records, err,
				sizeof(err));
	if (ret == -ENOENT)
		return 0;
	if (ret == 0)
		ret = shares_parse(records.argv, records.argc, shares, SHARES_MAX, &n, err,
				   sizeof(err));
	if (ret == 0)
		ret = shares_mount(shares, n, err, sizeof(err));
	if (ret < 0)
		console_msg("shared folders: %s", err);
	/* The records stay allocated: nothing else needs that memory back. */
	return ret;
}

/* The egress ports, read before mount_shares: a root share hides the initramfs, and the
 * file with it. A bad file means no egress, not no command. */
static void read_egress(struct egress_ports *ports)
{
	char err[512];
	int ret = egress_read(CLAWVM_EGRESS_PATH, ports, err, sizeof(err));

	if (ret < 0 && ret != -ENOENT)
		console_msg("egress: %s; no egress", err);
}

/* Loopback, which every guest has, then the relay if there are egress ports. The relay's
 * pid, or 0. Nothing here is fatal: the command runs, without egress if need be. */
static pid_t start_egress(const struct egress_ports *ports)
{
	char err[512];
	pid_t pid;

	if (egress_loopback_up(err, sizeof(err)) < 0)
		console_msg("loopback: %s", err);
	if (ports->n == 0)
		return 0;
	pid = egress_start(ports, err, sizeof(err));
	if (pid < 0) {
		console_msg("egress: %s; no egress", err);
		return 0;
	}
	return pid;
}

int main(void)
{
	struct egress_ports egress = {.n = 0};
	struct exec_server *srv;
	sigset_t all, watched;
	pid_t egress_pid;
	int sfd;

	if (getpid() != 1) {
		fprintf(stderr,
			"guest-init: this is the PID 1 of a clawvm guest and runs only as "
			"PID 1 (this is PID %d); it would mount and reboot.\n",
			(int)getpid());
		return 1;
	}

	/* Blocked before anything can arrive: PID 1 keeps only signals it has a handler for,
	 * and a blocked signal is queued for the signalfd instead. */
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);
	signal(SIGCHLD, SIG_DFL); /* not SIG_IGN: that would reap the command for us */
	umask(022);

	/* Early messages need fds 0-2, and files opened later must not take their numbers.
	 * Once more after mounting /dev: the console may only exist on devtmpfs. */
	ensure_std_fds();
	if (mount_all() < 0) {
		ensure_std_fds();
		console_msg("cannot mount the filesystems the command needs");
		power_off(COMMAND_EXIT_INIT_FAILED);
	}
	ensure_std_fds();

	read_egress(&egress);
	if (mount_shares() < 0)
		power_off(COMMAND_EXIT_INIT_FAILED);
	/* Before the exec channel: the command finds egress listening from its first step,
	 * and the relay inherits none of the channel's fds. */
	egress_pid = start_egress(&egress);
	/* Commands come only over the exec channel: without it there is nothing to run. */
	srv = start_exec_server();
	if (!srv)
		power_off(COMMAND_EXIT_INIT_FAILED);
	report_ready();

	sigemptyset(&watched);
	sigaddset(&watched, SIGCHLD);
	for (int sig = 1; sig < NSIG; sig++) {
		if (command_signal_forwarded(sig))
			sigaddset(&watched, sig);
	}
	sfd = signalfd(-1, &watched, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		console_msg("signalfd: %s", strerror(errno));
		power_off(COMMAND_EXIT_INIT_FAILED);
	}

	/* From here on we never bail: every path ends in power_off(). */
	int status = supervise(sfd, srv, egress_pid);
	kill_leftovers();
	power_off(status);
}

/* The jail (jail.h), its outer half: jail_enter forks, the supervisor it stays as, and the
 * plan of what the VMM's root holds. The VMM's own steps are jail_build.c's. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/magic.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "api/audit.h"
#include "base/log.h"
#include "vmm/cgroup.h"
#include "vmm/egress.h"
#include "vmm/jail.h"
#include "vmm/jail_int.h"
#include "vmm/session.h"

static int jail_write(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : write(fd, text, strlen(text));

	if (fd >= 0)
		close(fd);
	if (n != (ssize_t)strlen(text)) {
		log_err("jail: cannot write `%s`: %m", path);
		return -1;
	}
	return 0;
}

/* The user namespace's maps: the caller's uid and gid, as themselves. */
static int jail_map(pid_t pid, uid_t uid, gid_t gid)
{
	char path[64], map[64];

	snprintf(path, sizeof(path), "/proc/%d/setgroups", (int)pid);
	if (jail_write(path, "deny") < 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
	snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)uid, (unsigned)uid);
	if (jail_write(path, map) < 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/gid_map", (int)pid);
	snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)gid, (unsigned)gid);
	return jail_write(path, map);
}

/* What a sandbox leaves on the host: its broker, its directory, its cgroup. */
static void jail_cleanup(struct rundir *rd, struct cgroup *cg, struct egress *eg)
{
	struct config_err err;

	egress_stop(eg);

	if (cgroup_remove(cg, &err) < 0)
		log_warn("%s", err.msg);
	rundir_remove(rd);
}

/* Until the VMM ends: stop signals sent to the supervisor (its pid is the sandbox's) go on
 * to the VMM; those a terminal sent reached it already (it is in clawvm's process group).
 * Then what the sandbox left is removed, and the VMM's status is clawvm's. */
static void jail_supervise(pid_t vmm, int sig_fd, const struct sandbox_config *cfg,
			   struct rundir *rd, struct cgroup *cg, struct egress *eg,
			   const struct termios *tty)
{
	int status = VM_EXIT_FAILURE << 8;
	unsigned long oom_kills;

	for (;;) {
		struct signalfd_siginfo si;
		pid_t pid;

		if (read(sig_fd, &si, sizeof(si)) != sizeof(si)) {
			if (errno == EINTR)
				continue;
			log_err(
			    "jail: the supervisor cannot read its signals: %m; stopping the VMM");
			kill(vmm, SIGKILL);
			waitpid(vmm, &status, 0);
			break;
		}
		if (si.ssi_signo != SIGCHLD) {
			if (si.ssi_code != SI_KERNEL)
				kill(vmm, (int)si.ssi_signo);
			continue;
		}
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0 && pid != vmm)
			;
		if (pid == vmm)
			break;
	}
	oom_kills = cgroup_oom_kills(cg);
	egress_event(
	    eg, audit_event_stop(WIFEXITED(status) ? "exited" : "killed",
				 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)));
	jail_cleanup(rd, cg, eg);
	if (WIFEXITED(status))
		exit(WEXITSTATUS(status));
	/* Killed: its terminal may still be raw, and it said nothing. */
	if (tty)
		tcsetattr(STDIN_FILENO, TCSANOW, tty);
	if (WTERMSIG(status) == SIGKILL && oom_kills)
		log_err("the sandbox's VMM was killed by the kernel's OOM killer: the sandbox "
			"reached its memory limit (%llu MiB of guest RAM + %llu MiB for the VMM); "
			"files the guest writes into a share on tmpfs count against it too: "
			"raise --memory, or share a folder on disk",
			(unsigned long long)cfg->vm.mem_mib,
			(unsigned long long)cgroup_allowance_mib(cfg));
	else
		log_err("the sandbox's VMM was killed by signal %d (%s)", WTERMSIG(status),
			strsignal(WTERMSIG(status)));
	exit(VM_EXIT_FAILURE);
}

/* The sandbox's first audit event: what it was given. */
static void jail_audit_start(struct egress *eg, const struct sandbox_config *cfg)
{
	struct audit_share shares[VM_MAX_SHARES];

	for (unsigned i = 0; i < cfg->vm.nshares; i++)
		shares[i] = (struct audit_share){cfg->vm.shares[i].host, cfg->vm.shares[i].guest,
						 cfg->vm.shares[i].read_only};
	egress_event(eg, audit_event_start(cfg->name, cfg->vm.cpus, cfg->vm.mem_mib, shares,
					   cfg->vm.nshares));
}

/* The user the VMM becomes, and whether a user namespace gives it its privileges. */
static void jail_user(struct jail *j, const struct sandbox_config *cfg)
{
	j->userns = geteuid() != 0;
	if (j->userns) {
		j->uid = getuid();
		j->gid = getgid();
	} else {
		j->uid = cfg->jail_user_set ? cfg->jail_uid : JAIL_DEFAULT_UID;
		j->gid = cfg->jail_user_set ? cfg->jail_gid : JAIL_DEFAULT_GID;
	}
}

/* What the VMM will open by path: each bound at its own path. */
static void jail_plan(struct jail *j, const struct sandbox_config *cfg)
{
	const struct vm_config *vm = &cfg->vm;

	jail_add(j, vm->kernel_path, true);
	jail_add(j, vm->initrd_path, true);
	jail_add(j, vm->rootfs, true);
	for (unsigned i = 0; i < vm->nshares; i++)
		jail_add(j, vm->shares[i].host, vm->shares[i].read_only);
	/* Files the VMM makes, and renames (the console log's rotation): their directories. */
	if (vm->console_log)
		jail_add(j, jail_dirname(j->dirs[0], vm->console_log), false);
	if (vm->vsock_uds)
		jail_add(j, jail_dirname(j->dirs[1], vm->vsock_uds), false);
	/* For clawvm run -d's stderr, once the command runs. */
	if (access("/dev/null", F_OK) == 0)
		jail_add(j, "/dev/null", false);
}

/* Shares of /proc or /sys: the jailed VMM has a /proc of its own, and the host's kernel
 * files are no folder to hand a guest anyway. */
static int jail_check_shares(const struct sandbox_config *cfg)
{
	for (unsigned i = 0; i < cfg->vm.nshares; i++) {
		const char *path = cfg->vm.shares[i].host;
		struct statfs fs;

		if (statfs(path, &fs) == 0 &&
		    (fs.f_type == PROC_SUPER_MAGIC || fs.f_type == SYSFS_MAGIC)) {
			log_err("jail: `%s` is in %s, the host kernel's own files: a jailed "
				"sandbox cannot share it (--no-jail can, for debugging)",
				path, fs.f_type == PROC_SUPER_MAGIC ? "/proc" : "/sys");
			return -1;
		}
	}
	return 0;
}

/* Each bind must be usable by the jail user, or the sandbox would fail later, deep in a
 * share; the message says how to mend it. Checked from fds opened before the switch (in
 * the jail, the directories above a bind are the jail's, open to all), as that user:
 * faccessat(AT_EMPTY_PATH) asks with the real ids. 0 or -1 (said). */
static int jail_check_binds(const struct jail *j)
{
	int fds[JAIL_MAX_BINDS], ret = 0;
	unsigned n;

	for (n = 0; n < j->nbinds; n++) {
		fds[n] = open(j->binds[n].path, O_PATH | O_CLOEXEC);
		if (fds[n] < 0) {
			log_err("jail: cannot open `%s`: %m", j->binds[n].path);
			ret = -1;
			goto out;
		}
	}
	if (!j->userns && (setgroups(0, NULL) < 0 || setresgid(j->gid, j->gid, j->gid) < 0 ||
			   setresuid(j->uid, j->uid, j->uid) < 0)) {
		log_err("jail: cannot become the jail user %u:%u: %m", (unsigned)j->uid,
			(unsigned)j->gid);
		ret = -1;
		goto out;
	}
	for (unsigned i = 0; i < n && ret == 0; i++) {
		const struct jail_bind *b = &j->binds[i];
		struct stat st;
		int mode = R_OK;

		if (fstat(fds[i], &st) == 0 && S_ISDIR(st.st_mode))
			mode |= X_OK | (b->ro ? 0 : W_OK);
		if (faccessat(fds[i], "", mode, AT_EMPTY_PATH) == 0)
			continue;
		log_err("jail: the jail user %u:%u cannot %s `%s`: give it to that user (chown), "
			"run with --jail-user OWNER%s",
			(unsigned)j->uid, (unsigned)j->gid, mode & W_OK ? "write" : "read", b->path,
			b->ro ? "" : ", or share it read-only (:ro)");
		ret = -1;
	}
out:
	while (n > 0)
		close(fds[--n]);
	return ret;
}

/* The binds checked before anything is made, so that a refused `start` leaves the
 * sandbox as it was: as root, in a child that becomes the jail user; unprivileged, the
 * jail user is the caller. 0 or -1 (said). */
static int jail_check_access(const struct jail *j)
{
	int status = VM_EXIT_FAILURE << 8;
	pid_t pid;

	if (j->userns)
		return jail_check_binds(j);
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		log_err("jail: fork: %m");
		return -1;
	}
	if (pid == 0)
		_exit(jail_check_binds(j) < 0);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int jail_enter(struct sandbox_config *cfg, struct rundir *rd, const int *keep, unsigned nkeep,
	       bool detached)
{
	struct jail j = {.cfg = cfg, .parent_fd = -1};
	int to_vmm[2] = {-1, -1}, from_vmm[2] = {-1, -1}, sig_fd;
	sigset_t set, old;
	pid_t mid, vmm = -1;
	struct cgroup cg = {.fd = -1};
	struct egress eg = {.pid = -1, .supervisor_fd = -1, .vmm_fd = -1};
	struct cgroup_limits limits;
	struct config_err err;
	struct termios tty;
	bool tty_saved;
	int ret;
	char go = 'g';
	int status;

	if (cfg->no_jail) {
		log_warn("--no-jail: the VMM runs unconfined, with all of clawvm's privileges; "
			 "a guest that broke out of KVM would have them too (debugging only)");
		cfg->vm.seccomp = false;
		/* Its broker ends with clawvm (its parent); no supervisor to audit the end. */
		if (egress_start(cfg, rd, getuid(), getgid(), detached, &eg) < 0)
			return -1;
		jail_audit_start(&eg, cfg);
		return 0;
	}
	jail_user(&j, cfg);
	if (jail_check_shares(cfg) < 0 || egress_start(cfg, rd, j.uid, j.gid, detached, &eg) < 0)
		return -1;
	jail_plan(&j, cfg);
	if (jail_check_access(&j) < 0) {
		egress_stop(&eg);
		return -1;
	}
	/* The terminal as it is now, for a VMM that dies with it raw (clawvm run -t). */
	tty_saved = tcgetattr(STDIN_FILENO, &tty) == 0;
	if (snprintf(j.root, sizeof(j.root), "%s/root", rd->dir) >= (int)sizeof(j.root) ||
	    (mkdir(j.root, 0700) < 0 && errno != EEXIST)) {
		log_err("jail: cannot make `%s`: %m", j.root);
		return -1;
	}
	/* The signals the supervisor reads (blocked before the fork, so none is missed). */
	session_signal_set(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, &old);
	sig_fd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sig_fd < 0 || pipe2(to_vmm, O_CLOEXEC) < 0 || pipe2(from_vmm, O_CLOEXEC) < 0 ||
	    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
		log_err("jail: cannot set up the supervisor: %m");
		goto fail;
	}
	/* The sandbox's cgroup: its limits (none, with a warning, where cgroup v2 is not
	 * ours to write). */
	cgroup_limits_build(cfg, &limits);
	ret = cgroup_create(&cg, cfg, &limits, &err);
	if (ret < 0) {
		log_err("%s", err.msg);
		goto fail;
	}
	/* Not root, that is the common case (a login's cgroup is not delegated): said with
	 * --verbose only. */
	if (ret == CGROUP_NONE && !j.userns)
		log_warn("%s", err.msg);
	else if (ret == CGROUP_NONE)
		log_info("%s", err.msg);
	fflush(NULL);
	mid = fork();
	if (mid < 0) {
		log_err("jail: fork: %m");
		if (cgroup_remove(&cg, &err) < 0)
			log_warn("%s", err.msg);
		goto fail;
	}
	if (mid == 0) {
		/* In between: into the namespaces, then the VMM is its child, pid 1 of the new
		 * pid namespace; this one goes, and the supervisor (a subreaper) adopts it. */
		close(sig_fd);
		/* Only the supervisor may hold the write end: its death must read as EOF. */
		close(to_vmm[1]);
		close(from_vmm[0]);
		if (j.userns && unshare(CLONE_NEWUSER) < 0) {
			log_err(
			    "jail: cannot make a user namespace: %m (unprivileged user namespaces "
			    "may be off: sysctl kernel.unprivileged_userns_clone)");
			_exit(VM_EXIT_FAILURE);
		}
		if (write(from_vmm[1], "u", 1) != 1 || read(to_vmm[0], &go, 1) != 1)
			_exit(VM_EXIT_FAILURE); /* the supervisor said why */
		if (unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS |
			    CLONE_NEWNET) < 0) {
			log_err("jail: cannot make the namespaces: %m");
			_exit(VM_EXIT_FAILURE);
		}
		vmm = fork();
		if (vmm != 0) {
			if (vmm < 0)
				log_err("jail: fork: %m");
			_exit(vmm > 0 && write(from_vmm[1], &vmm, sizeof(vmm)) == sizeof(vmm)
				  ? 0
				  : VM_EXIT_FAILURE);
		}
		/* The VMM. Its supervisor's end makes it end too (SIGKILL): once adopted. */
		close(from_vmm[1]);
		if (read(to_vmm[0], &go, 1) != 1)
			_exit(VM_EXIT_FAILURE);
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		if (poll(&(struct pollfd){.fd = to_vmm[0], .events = POLLIN}, 1, 0) != 0)
			_exit(VM_EXIT_FAILURE); /* the supervisor went before the line above */
		sigprocmask(SIG_SETMASK, &old, NULL);
		sigprocmask(SIG_BLOCK, &set, NULL); /* session.c reads them; SIGCHLD: none */
		j.parent_fd = to_vmm[0];	    /* jail_build checks it again, and closes it */
		/* Failed, it has said why; its caller may still answer a client, then ends. */
		return jail_build(&j, cfg, keep, nkeep) < 0 ? 1 : 0;
	}
	if (detached)
		log_silence();
	/* The supervisor: it serves nothing of the VMM's. */
	for (unsigned i = 0; i < nkeep; i++)
		if (keep[i] >= 0)
			close(keep[i]);
	close(eg.vmm_fd);
	eg.vmm_fd = -1;
	close(to_vmm[0]);
	close(from_vmm[1]);
	/* Into the cgroup before the namespaces: the VMM, its child, is born in it. */
	if (read(from_vmm[0], &go, 1) != 1 || (j.userns && jail_map(mid, j.uid, j.gid) < 0) ||
	    (cg.fd >= 0 && cgroup_attach(&cg, mid, &err) < 0 && (log_err("%s", err.msg), 1)) ||
	    write(to_vmm[1], "g", 1) != 1 || read(from_vmm[0], &vmm, sizeof(vmm)) != sizeof(vmm)) {
		kill(mid, SIGKILL);
		waitpid(mid, NULL, 0);
		jail_cleanup(rd, &cg, &eg);
		exit(VM_EXIT_FAILURE);
	}
	waitpid(mid, &status, 0);
	if (write(to_vmm[1], "g", 1) != 1) {
		kill(vmm, SIGKILL);
		waitpid(vmm, NULL, 0);
		jail_cleanup(rd, &cg, &eg);
		exit(VM_EXIT_FAILURE);
	}
	jail_audit_start(&eg, cfg);
	jail_supervise(vmm, sig_fd, cfg, rd, &cg, &eg, tty_saved ? &tty : NULL);
	return -1; /* not reached */
fail:
	for (int i = 0; i < 2; i++) {
		if (to_vmm[i] >= 0)
			close(to_vmm[i]);
		if (from_vmm[i] >= 0)
			close(from_vmm[i]);
	}
	if (sig_fd >= 0)
		close(sig_fd);
	sigprocmask(SIG_SETMASK, &old, NULL);
	egress_stop(&eg);
	return -1;
}

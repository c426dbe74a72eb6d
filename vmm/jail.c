/* The jail (jail.h): a supervisor outside, the VMM inside namespaces, a root of its own,
 * its own user, no capability. The order of the child's steps matters: mounts need
 * CAP_SYS_ADMIN, the bounding set needs CAP_SETPCAP, so the user and the capabilities go
 * last; /dev/kvm is opened before the user changes (the jail user may not open it). */
#include <cap-ng.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "base/log.h"
#include "vmm/cgroup.h"
#include "vmm/jail.h"
#include "vmm/kvm.h"
#include "vmm/session.h"

/* What the jail's root holds: host paths bind-mounted at the same path. */
#define JAIL_MAX_BINDS (VM_MAX_SHARES + 8)

struct jail_bind {
	const char *path;
	bool ro;
};

struct jail {
	const struct sandbox_config *cfg;
	char root[PATH_MAX]; /* the mount point of the jail's root, in the sandbox's directory */
	struct jail_bind binds[JAIL_MAX_BINDS];
	unsigned nbinds;
	char dirs[2][PATH_MAX]; /* storage: the console log's and vsock socket's directories */
	bool userns;
	uid_t uid;
	gid_t gid;
};

/* ---- the child: building the jail ---- */

static void jail_add(struct jail *j, const char *path, bool ro)
{
	if (!path || !*path || j->nbinds == JAIL_MAX_BINDS)
		return;
	j->binds[j->nbinds++] = (struct jail_bind){.path = path, .ro = ro};
}

/* path's directory, in buf. */
static const char *jail_dirname(char buf[PATH_MAX], const char *path)
{
	char *slash;

	snprintf(buf, PATH_MAX, "%s", path);
	slash = strrchr(buf, '/');
	if (!slash)
		return ".";
	if (slash == buf)
		slash[1] = '\0';
	else
		*slash = '\0';
	return buf;
}

/* Parents first, so that a bind below another is not hidden by it. */
static int jail_bind_cmp(const void *a, const void *b)
{
	return (int)strlen(((const struct jail_bind *)a)->path) -
	       (int)strlen(((const struct jail_bind *)b)->path);
}

/* The mount flags a bind's remount must keep (a user namespace may not clear them). */
static unsigned long jail_locked_flags(const char *path)
{
	struct statvfs sv;
	unsigned long f = 0;

	if (statvfs(path, &sv) < 0)
		return 0;
	f |= sv.f_flag & ST_NODEV ? MS_NODEV : 0;
	f |= sv.f_flag & ST_NOEXEC ? MS_NOEXEC : 0;
	f |= sv.f_flag & ST_RDONLY ? MS_RDONLY : 0;
	f |= sv.f_flag & ST_NOATIME ? MS_NOATIME : 0;
	f |= sv.f_flag & ST_NODIRATIME ? MS_NODIRATIME : 0;
	f |= sv.f_flag & ST_RELATIME ? MS_RELATIME : 0;
	return f;
}

/* Host `b->path` at the same path below the jail's root, read-only if b->ro, never setuid. */
static int jail_bind(struct jail *j, const struct jail_bind *b)
{
	char target[PATH_MAX * 2];
	struct stat st;
	int fd;

	if (stat(b->path, &st) < 0) {
		log_err("jail: `%s`: %m", b->path);
		return -1;
	}
	if (snprintf(target, sizeof(target), "%s%s", j->root, b->path) >= (int)sizeof(target)) {
		log_err("jail: `%s`: the path is too long", b->path);
		return -1;
	}
	for (char *p = target + strlen(j->root) + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		if (mkdir(target, 0755) < 0 && errno != EEXIST) {
			log_err("jail: cannot make `%s`: %m", target);
			return -1;
		}
		*p = '/';
	}
	if (S_ISDIR(st.st_mode)) {
		if (mkdir(target, 0755) < 0 && errno != EEXIST) {
			log_err("jail: cannot make `%s`: %m", target);
			return -1;
		}
	} else {
		fd = open(target, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0) {
			log_err("jail: cannot make `%s`: %m", target);
			return -1;
		}
		close(fd);
	}
	if (mount(b->path, target, NULL, MS_BIND | MS_REC, NULL) < 0 ||
	    mount(NULL, target, NULL,
		  MS_BIND | MS_REMOUNT | MS_NOSUID | (b->ro ? MS_RDONLY : 0) |
		      jail_locked_flags(b->path),
		  NULL) < 0) {
		log_err("jail: cannot bind `%s` into the jail: %m", b->path);
		return -1;
	}
	return 0;
}

/* The jail's root: a tmpfs with the binds and a /proc, made the root (pivot_root); the
 * host's root is let go of. */
static int jail_mount(struct jail *j)
{
	char proc[PATH_MAX + 8];

	/* Nothing we mount propagates back to the host. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		log_err("jail: cannot make the mounts private: %m");
		return -1;
	}
	if (mount("clawvm-jail", j->root, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "mode=0755,size=1m") < 0) {
		log_err("jail: cannot mount its root on `%s`: %m", j->root);
		return -1;
	}
	qsort(j->binds, j->nbinds, sizeof(j->binds[0]), jail_bind_cmp);
	for (unsigned i = 0; i < j->nbinds; i++) {
		if (i > 0 && !strcmp(j->binds[i].path, j->binds[i - 1].path))
			continue;
		if (jail_bind(j, &j->binds[i]) < 0)
			return -1;
	}
	/* A /proc of the jail's pid namespace: the VMM reads its own (statm, fd links). */
	snprintf(proc, sizeof(proc), "%s/proc", j->root);
	if ((mkdir(proc, 0555) < 0 && errno != EEXIST) ||
	    mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
		log_err("jail: cannot mount /proc: %m");
		return -1;
	}
	/* pivot_root(".", ".") stacks the old root under the new one, then it goes. */
	if (chdir(j->root) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 ||
	    umount2(".", MNT_DETACH) < 0 || chdir("/") < 0) {
		log_err("jail: cannot switch to its root: %m");
		return -1;
	}
	if (mount(NULL, "/", NULL,
		  MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
		log_err("jail: cannot make its root read-only: %m");
		return -1;
	}
	sethostname("clawvm", 6);
	return 0;
}

/* The jail user, then no capability in any set, and no_new_privs. */
static int jail_drop(struct jail *j)
{
	/* The bounding and ambient sets first: clearing them takes CAP_SETPCAP. */
	capng_clear(CAPNG_SELECT_BOUNDS);
	if (capng_apply(CAPNG_SELECT_BOUNDS) < 0 ||
	    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0) {
		log_err("jail: cannot clear the bounding and ambient capability sets");
		return -1;
	}
	if (!j->userns && (setgroups(0, NULL) < 0 || setresgid(j->gid, j->gid, j->gid) < 0 ||
			   setresuid(j->uid, j->uid, j->uid) < 0)) {
		log_err("jail: cannot become the jail user %u:%u: %m", (unsigned)j->uid,
			(unsigned)j->gid);
		return -1;
	}
	capng_clear(CAPNG_SELECT_BOTH);
	if (capng_apply(CAPNG_SELECT_BOTH) < 0) {
		log_err("jail: cannot clear the capability sets");
		return -1;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		log_err("jail: cannot set no_new_privs: %m");
		return -1;
	}
	return 0;
}

/* As the jail user: each bind must be usable, or the sandbox would fail later, deep in a
 * share. The message says how to mend it. */
static int jail_check_access(struct jail *j)
{
	for (unsigned i = 0; i < j->nbinds; i++) {
		const struct jail_bind *b = &j->binds[i];
		struct stat st;
		int mode = R_OK;

		if (stat(b->path, &st) == 0 && S_ISDIR(st.st_mode))
			mode |= X_OK | (b->ro ? 0 : W_OK);
		if (access(b->path, mode) == 0)
			continue;
		log_err("jail: the jail user %u:%u cannot %s `%s`: give it to that user (chown), "
			"run with --jail-user OWNER%s",
			(unsigned)j->uid, (unsigned)j->gid, mode & W_OK ? "write" : "read", b->path,
			b->ro ? "" : ", or share it read-only (:ro)");
		return -1;
	}
	return 0;
}

/* Closes every fd but 0-2 and those in keep. */
static void jail_close_fds(const int *keep, unsigned nkeep)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	if (!d) {
		log_warn("jail: cannot list the open fds (%m); inherited ones stay open");
		return;
	}
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name);
		bool kept = fd <= 2 || fd == dirfd(d) || !isdigit((unsigned char)e->d_name[0]);

		for (unsigned i = 0; i < nkeep && !kept; i++)
			kept = keep[i] == fd;
		if (!kept)
			close(fd);
	}
	closedir(d);
}

/* Everything but JAIL_KEEP_ENV. */
static void jail_clear_env(void)
{
	static const char *const names[] = {JAIL_KEEP_ENV};
	char *values[sizeof(names) / sizeof(names[0])];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *v = getenv(names[i]);

		values[i] = v ? strdup(v) : NULL;
	}
	clearenv();
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (values[i])
			setenv(names[i], values[i], 1);
		free(values[i]);
	}
}

/* In the VMM, pid 1 of its namespace: the jail, from the mounts to the last capability. */
static int jail_build(struct jail *j, struct sandbox_config *cfg, const int *keep, unsigned nkeep)
{
	int kvm_fd, fds[JAIL_MAX_BINDS + 8];
	struct config_err err;
	unsigned nfds = 0;

	/* Before the jail's root hides it and the jail user could not open it. */
	kvm_fd = kvm_open_device(cfg->vm.kvm_path);
	if (kvm_fd < 0)
		return -1;
	cfg->vm.kvm_fd = kvm_fd;
	if (rlimits_apply(&err) < 0) {
		log_err("jail: %s", err.msg);
		return -1;
	}
	if (jail_mount(j) < 0 || jail_drop(j) < 0 || jail_check_access(j) < 0)
		return -1;
	for (unsigned i = 0; i < nkeep && nfds < sizeof(fds) / sizeof(fds[0]) - 1; i++)
		if (keep[i] >= 0)
			fds[nfds++] = keep[i];
	fds[nfds++] = kvm_fd;
	jail_close_fds(fds, nfds);
	jail_clear_env();
	log_debug("jail: the VMM runs as %u:%u%s in its namespaces, %u paths bound",
		  (unsigned)j->uid, (unsigned)j->gid, j->userns ? " (a user namespace)" : "",
		  j->nbinds);
	return 0;
}

/* ---- the parent: the supervisor ---- */

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

/* What a sandbox leaves on the host: its directory, its cgroup. */
static void jail_cleanup(struct rundir *rd, struct cgroup *cg)
{
	struct config_err err;

	if (cgroup_remove(cg, &err) < 0)
		log_warn("%s", err.msg);
	rundir_remove(rd);
}

/* Until the VMM ends: stop signals sent to the supervisor (its pid is the sandbox's) go on
 * to the VMM; those a terminal sent reached it already (it is in clawvm's process group).
 * Then what the sandbox left is removed, and the VMM's status is clawvm's. */
static void jail_supervise(pid_t vmm, int sig_fd, struct rundir *rd, struct cgroup *cg,
			   const struct termios *tty)
{
	int status = VM_EXIT_FAILURE << 8;

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
	jail_cleanup(rd, cg);
	if (WIFEXITED(status))
		exit(WEXITSTATUS(status));
	/* Killed: its terminal may still be raw, and it said nothing. */
	if (tty)
		tcsetattr(STDIN_FILENO, TCSANOW, tty);
	log_err("the sandbox's VMM was killed by signal %d (%s)", WTERMSIG(status),
		strsignal(WTERMSIG(status)));
	exit(VM_EXIT_FAILURE);
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

int jail_enter(struct sandbox_config *cfg, struct rundir *rd, const int *keep, unsigned nkeep)
{
	struct jail j = {.cfg = cfg};
	int to_vmm[2] = {-1, -1}, from_vmm[2] = {-1, -1}, sig_fd;
	sigset_t set, old;
	pid_t mid, vmm = -1;
	struct cgroup cg = {.fd = -1};
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
		return 0;
	}
	jail_user(&j, cfg);
	jail_plan(&j, cfg);
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
		close(to_vmm[0]);
		/* Failed, it has said why; its caller may still answer a client, then ends. */
		return jail_build(&j, cfg, keep, nkeep) < 0 ? 1 : 0;
	}
	/* The supervisor: it serves nothing of the VMM's. */
	for (unsigned i = 0; i < nkeep; i++)
		if (keep[i] >= 0)
			close(keep[i]);
	close(to_vmm[0]);
	close(from_vmm[1]);
	/* Into the cgroup before the namespaces: the VMM, its child, is born in it. */
	if (read(from_vmm[0], &go, 1) != 1 || (j.userns && jail_map(mid, j.uid, j.gid) < 0) ||
	    (cg.fd >= 0 && cgroup_attach(&cg, mid, &err) < 0 && (log_err("%s", err.msg), 1)) ||
	    write(to_vmm[1], "g", 1) != 1 || read(from_vmm[0], &vmm, sizeof(vmm)) != sizeof(vmm)) {
		kill(mid, SIGKILL);
		waitpid(mid, NULL, 0);
		jail_cleanup(rd, &cg);
		exit(VM_EXIT_FAILURE);
	}
	waitpid(mid, &status, 0);
	if (write(to_vmm[1], "g", 1) != 1) {
		kill(vmm, SIGKILL);
		waitpid(vmm, NULL, 0);
		jail_cleanup(rd, &cg);
		exit(VM_EXIT_FAILURE);
	}
	jail_supervise(vmm, sig_fd, rd, &cg, tty_saved ? &tty : NULL);
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
	return -1;
}

/* What the jailed VMM does to itself (jail.h): in its new namespaces, before it drops
 * what allows it, the mounts of its root; then its user, its capabilities, its fds and its
 * environment. The order matters: mounts need CAP_SYS_ADMIN, the bounding set needs
 * CAP_SETPCAP, so the user and the capabilities go last; /dev/kvm is opened first (the jail
 * user may not open it, and the jail has no node). */
#include <cap-ng.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/log.h"
#include "vmm/cgroup.h"
#include "vmm/jail.h"
#include "vmm/jail_int.h"
#include "vmm/kvm.h"

void jail_add(struct jail *j, const char *path, bool ro)
{
	if (!path || !*path || j->nbinds == JAIL_MAX_BINDS)
		return;
	j->binds[j->nbinds++] = (struct jail_bind){.path = path, .ro = ro};
}

/* path's directory, in buf. */
const char *jail_dirname(char buf[PATH_MAX], const char *path)
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

/* Whether binds[i] is there already: the same path, or inside a directory bound before it
 * (recursively, so as it is on the host) that is writable or that it is read-only too. A
 * separate bind there would be a mount below the outer share, which its server does not
 * cross (-v DIR and -v DIR/SUB both work so). */
static bool jail_bound_below(const struct jail *j, unsigned i)
{
	const struct jail_bind *b = &j->binds[i];

	for (unsigned k = 0; k < i; k++) {
		const struct jail_bind *o = &j->binds[k];
		size_t n = strlen(o->path);

		if (!strcmp(o->path, b->path) ||
		    (!strncmp(o->path, b->path, n) &&
		     (b->path[n] == '/' || !strcmp(o->path, "/")) && (!o->ro || b->ro)))
			return true;
	}
	return false;
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
		if (jail_bound_below(j, i))
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

int jail_drop_privileges(uid_t uid, gid_t gid, bool change_user, bool clear_bounds, const char *who)
{
	/* The bounding and ambient sets first: clearing them takes CAP_SETPCAP. */
	capng_clear(CAPNG_SELECT_BOUNDS);
	if (clear_bounds && (capng_apply(CAPNG_SELECT_BOUNDS) < 0 ||
			     prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)) {
		log_err("%s: cannot clear the bounding and ambient capability sets", who);
		return -1;
	}
	if (change_user && (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
			    setresuid(uid, uid, uid) < 0)) {
		log_err("%s: cannot become the jail user %u:%u: %m", who, (unsigned)uid,
			(unsigned)gid);
		return -1;
	}
	capng_clear(CAPNG_SELECT_CAPS);
	if (capng_apply(CAPNG_SELECT_CAPS) < 0) {
		log_err("%s: cannot clear the capability sets", who);
		return -1;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		log_err("%s: cannot set no_new_privs: %m", who);
		return -1;
	}
	return 0;
}

/* The jail user, then no capability in any set, and no_new_privs. */
static int jail_drop(struct jail *j)
{
	return jail_drop_privileges(j->uid, j->gid, !j->userns, true, "jail");
}

/* jail.h */
void jail_close_fds(const int *keep, unsigned nkeep)
{
	unsigned from = 3, n = 0;
	int sorted[JAIL_KEEP_FDS_MAX];

	/* keep, ascending (insertion sort: it is short); what does not fit stays open. */
	for (unsigned i = 0; i < nkeep && n < JAIL_KEEP_FDS_MAX; i++) {
		unsigned j = n++;

		for (; j > 0 && sorted[j - 1] > keep[i]; j--)
			sorted[j] = sorted[j - 1];
		sorted[j] = keep[i];
	}
	for (unsigned i = 0; i < n; i++) {
		if (sorted[i] < (int)from)
			continue;
		if ((unsigned)sorted[i] > from && close_range(from, (unsigned)sorted[i] - 1, 0) < 0)
			log_warn("jail: cannot close the inherited fds: %m");
		from = (unsigned)sorted[i] + 1;
	}
	if (close_range(from, ~0u, 0) < 0)
		log_warn("jail: cannot close the inherited fds: %m");
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
int jail_build(struct jail *j, struct sandbox_config *cfg, const int *keep, unsigned nkeep)
{
	int kvm_fd, fds[JAIL_MAX_BINDS + 8];
	_Static_assert(JAIL_MAX_BINDS + 8 <= JAIL_KEEP_FDS_MAX, "jail_close_fds keeps them all");
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
	if (jail_mount(j) < 0 || jail_drop(j) < 0)
		return -1;
	/* Becoming the jail user cleared PR_SET_PDEATHSIG (any change of credentials does):
	 * set again, then the supervisor checked for still being there. */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (poll(&(struct pollfd){.fd = j->parent_fd, .events = POLLIN}, 1, 0) != 0)
		_exit(VM_EXIT_FAILURE);
	close(j->parent_fd);
	j->parent_fd = -1;
	for (unsigned i = 0; i < nkeep && nfds < sizeof(fds) / sizeof(fds[0]) - 1; i++)
		if (keep[i] >= 0)
			fds[nfds++] = keep[i];
	fds[nfds++] = kvm_fd;
	if (cfg->vm.audit_fd >= 0)
		fds[nfds++] = cfg->vm.audit_fd;
	jail_close_fds(fds, nfds);
	jail_clear_env();
	log_debug("jail: the VMM runs as %u:%u%s in its namespaces, %u paths bound",
		  (unsigned)j->uid, (unsigned)j->gid, j->userns ? " (a user namespace)" : "",
		  j->nbinds);
	return 0;
}

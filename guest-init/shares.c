/* Mounting the shared folders in the guest. The root share is the read-only lower layer of
 * an overlay whose upper layer is tmpfs: the task may change anything and nothing of it
 * reaches the host or the next task. Writable shares (-v HOST:GUEST) are plain virtio-fs
 * mounts in that root; the VMM, not the guest, enforces what read-only means. */
#include "shares.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/virtio_fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define VIRTIO_FS_TAG_MAX sizeof(((struct virtio_fs_config *)0)->tag) /* 36 */
#define NEW_ROOT	  "/clawvm/root"

/* Kernel filesystems guest-init mounted in the initramfs, taken along into the new root. */
static const char *const moved_mounts[] = {"/dev", "/proc", "/sys", "/tmp", "/run"};

static bool clean_absolute(const char *path)
{
	const char *p = path;

	if (path[0] != '/')
		return false;
	while (*p) {
		const char *start;
		size_t len;

		while (*p == '/')
			p++;
		start = p;
		while (*p && *p != '/')
			p++;
		len = (size_t)(p - start);
		if ((len == 1 && start[0] == '.') ||
		    (len == 2 && start[0] == '.' && start[1] == '.'))
			return false;
	}
	return strlen(path) < PATH_MAX - sizeof(NEW_ROOT);
}

int shares_parse(char *const *strings, size_t count, struct share *out, size_t cap, size_t *n,
		 char *err, size_t err_len)
{
	*n = 0;
	if (count % 3) {
		snprintf(err, err_len, "%zu strings: want three per share (tag, path, ro/rw)",
			 count);
		return -EINVAL;
	}
	if (count / 3 > cap) {
		snprintf(err, err_len, "%zu shares: at most %zu", count / 3, cap);
		return -EINVAL;
	}
	for (size_t i = 0; i < count / 3; i++) {
		const char *tag = strings[3 * i], *path = strings[3 * i + 1],
			   *opt = strings[3 * i + 2];
		bool root = !strcmp(path, "/");

		if (tag[0] == '\0' || strlen(tag) > VIRTIO_FS_TAG_MAX) {
			snprintf(err, err_len, "share %zu: tag `%s` must be 1 to %zu bytes", i, tag,
				 VIRTIO_FS_TAG_MAX);
			return -EINVAL;
		}
		if (!clean_absolute(path)) {
			snprintf(err, err_len, "share `%s`: path `%s` is not a clean absolute path",
				 tag, path);
			return -EINVAL;
		}
		if (strcmp(opt, "ro") && strcmp(opt, "rw")) {
			snprintf(err, err_len, "share `%s`: option `%s` is neither ro nor rw", tag,
				 opt);
			return -EINVAL;
		}
		if (root && (i != 0 || strcmp(opt, "ro"))) {
			snprintf(err, err_len,
				 "share `%s`: the root must be the first share, read-only", tag);
			return -EINVAL;
		}
		out[i] = (struct share){tag, path, !strcmp(opt, "ro")};
	}
	*n = count / 3;
	return 0;
}

/* mkdir -p, for mount points in the overlay (writable) or the initramfs. */
static int make_dirs(const char *path)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;

		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = saved;
		if (!saved)
			return 0;
	}
}

static int fail(char *err, size_t err_len, const char *what, const char *path)
{
	int saved = errno;

	snprintf(err, err_len, "%s `%s`: %s", what, path, strerror(saved));
	return -saved;
}

static int mount_share(const struct share *s, const char *prefix, char *err, size_t err_len)
{
	char target[PATH_MAX];
	int ret;

	snprintf(target, sizeof(target), "%s%s", prefix, s->path);
	ret = make_dirs(target);
	if (ret < 0) {
		errno = -ret;
		return fail(err, err_len, "make the mount point", target);
	}
	if (mount(s->tag, target, "virtiofs", s->read_only ? MS_RDONLY : 0, NULL) < 0)
		return fail(err, err_len, "mount virtio-fs share on", target);
	return 0;
}

/* The overlay root: the root share read-only below, guest memory above. */
static int mount_root(const struct share *root, char *err, size_t err_len)
{
	static const char *const dirs[] = {"/clawvm/lower", "/clawvm/rw", NEW_ROOT};

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (mkdir(dirs[i], 0755) < 0 && errno != EEXIST)
			return fail(err, err_len, "mkdir", dirs[i]);
	}
	if (mount(root->tag, "/clawvm/lower", "virtiofs", MS_RDONLY, NULL) < 0)
		return fail(err, err_len, "mount the root share", root->tag);
	if (mount("tmpfs", "/clawvm/rw", "tmpfs", 0, "mode=0755") < 0)
		return fail(err, err_len, "mount tmpfs on", "/clawvm/rw");
	if (mkdir("/clawvm/rw/upper", 0755) < 0 || mkdir("/clawvm/rw/work", 0755) < 0)
		return fail(err, err_len, "mkdir", "/clawvm/rw/upper");
	if (mount("overlay", NEW_ROOT, "overlay", 0,
		  "lowerdir=/clawvm/lower,upperdir=/clawvm/rw/upper,workdir=/clawvm/rw/work") < 0)
		return fail(err, err_len, "mount the overlay root on", NEW_ROOT);
	return 0;
}

/* What switch_root does, minus deleting the initramfs (guest-init is all that is in it). */
static int switch_root(char *err, size_t err_len)
{
	for (size_t i = 0; i < sizeof(moved_mounts) / sizeof(moved_mounts[0]); i++) {
		char target[PATH_MAX];

		snprintf(target, sizeof(target), NEW_ROOT "%s", moved_mounts[i]);
		if (make_dirs(target) < 0 ||
		    mount(moved_mounts[i], target, NULL, MS_MOVE, NULL) < 0)
			return fail(err, err_len, "move the mount", moved_mounts[i]);
	}
	if (chdir(NEW_ROOT) < 0)
		return fail(err, err_len, "chdir", NEW_ROOT);
	if (mount(".", "/", NULL, MS_MOVE, NULL) < 0)
		return fail(err, err_len, "move the new root onto", "/");
	if (chroot(".") < 0 || chdir("/") < 0)
		return fail(err, err_len, "chroot into", NEW_ROOT);
	return 0;
}

int shares_mount(const struct share *shares, size_t n, char *err, size_t err_len)
{
	bool root = n > 0 && !strcmp(shares[0].path, "/");
	const char *prefix = root ? NEW_ROOT : "";
	int ret;

	if (root) {
		ret = mount_root(&shares[0], err, err_len);
		if (ret < 0)
			return ret;
	}
	for (size_t i = root ? 1 : 0; i < n; i++) {
		ret = mount_share(&shares[i], prefix, err, err_len);
		if (ret < 0)
			return ret;
	}
	return root ? switch_root(err, err_len) : 0;
}

/* The reopen race of the FUSE ops that make a node by name (MKNOD, MKDIR, SYMLINK, LINK),
 * made deterministic. The test is linked with --wrap for mknodat, mkdirat, symlinkat,
 * linkat and fchmod: once armed, the wrapper does what the guest's RENAME on another worker
 * thread could do right there, once the call made its node (before it, for fchmod): it moves
 * the new node aside and renames a planted hard link to a file outside the share over its
 * name. The server must then refuse the request (EIO) without touching the outside file, or
 * (a regular file, made as CREATE makes one) serve the very node it made. */
#include "tests/unit/unit.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/unit/fuse_driver.h"

int __real_mknodat(int dir_fd, const char *name, mode_t mode, dev_t dev);
int __real_mkdirat(int dir_fd, const char *name, mode_t mode);
int __real_symlinkat(const char *target, int dir_fd, const char *name);
int __real_linkat(int old_dir_fd, const char *old_name, int dir_fd, const char *name, int flags);
int __real_fchmod(int fd, mode_t mode);
int __wrap_mknodat(int dir_fd, const char *name, mode_t mode, dev_t dev);
int __wrap_mkdirat(int dir_fd, const char *name, mode_t mode);
int __wrap_symlinkat(const char *target, int dir_fd, const char *name);
int __wrap_linkat(int old_dir_fd, const char *old_name, int dir_fd, const char *name, int flags);
int __wrap_fchmod(int fd, mode_t mode);

/* The swap the next wrapped call makes, host paths all. */
static struct {
	bool armed;
	unsigned fired;
	char name[256];	   /* the name the request makes */
	char aside[256];   /* where what it made goes */
	char planted[256]; /* the hard link renamed over `name` */
	char outside[256]; /* its other link, outside the share */
} race;

static void race_swap(void)
{
	int saved = errno;

	if (!race.armed)
		return;
	race.armed = false;
	assert_int_equal(rename(race.name, race.aside), 0);
	assert_int_equal(rename(race.planted, race.name), 0);
	race.fired++;
	errno = saved;
}

int __wrap_mknodat(int dir_fd, const char *name, mode_t mode, dev_t dev)
{
	int ret = __real_mknodat(dir_fd, name, mode, dev);

	if (ret == 0)
		race_swap();
	return ret;
}

int __wrap_mkdirat(int dir_fd, const char *name, mode_t mode)
{
	int ret = __real_mkdirat(dir_fd, name, mode);

	if (ret == 0)
		race_swap();
	return ret;
}

int __wrap_symlinkat(const char *target, int dir_fd, const char *name)
{
	int ret = __real_symlinkat(target, dir_fd, name);

	if (ret == 0)
		race_swap();
	return ret;
}

int __wrap_linkat(int old_dir_fd, const char *old_name, int dir_fd, const char *name, int flags)
{
	int ret = __real_linkat(old_dir_fd, old_name, dir_fd, name, flags);

	if (ret == 0)
		race_swap();
	return ret;
}

/* Before: the file is made and open, its mode not set yet. */
int __wrap_fchmod(int fd, mode_t mode)
{
	race_swap();
	return __real_fchmod(fd, mode);
}

/* Plants "planted" in the share, a hard link to `outside` (a file, or a FIFO, of mode 0600)
 * beside it, and arms the swap over `name`. */
static void arm(struct fx *f, const char *name, bool fifo)
{
	struct stat st;

	snprintf(race.outside, sizeof(race.outside), "%s/secret", f->outside);
	if (fifo) {
		assert_int_equal(mkfifo(race.outside, 0600), 0);
	} else {
		host_write(race.outside, "secret");
		assert_int_equal(chmod(race.outside, 0600), 0);
	}
	host_path(f, "planted", race.planted, sizeof(race.planted));
	assert_int_equal(link(race.outside, race.planted), 0);
	host_path(f, name, race.name, sizeof(race.name));
	host_path(f, "aside", race.aside, sizeof(race.aside));
	assert_int_equal(lstat(race.outside, &st), 0);
	assert_int_equal(st.st_nlink, 2);
	race.armed = true;
}

/* The outside file's mode: never changed by the request. */
static mode_t outside_mode(void)
{
	struct stat st;

	assert_int_equal(lstat(race.outside, &st), 0);
	return st.st_mode;
}

/* What every refused request must leave: the swap happened, the outside file untouched, no
 * node handed out (so no descriptor held). */
static void assert_refused(struct fx *f, int error, mode_t outside)
{
	assert_int_equal(race.fired, 1);
	assert_int_equal(outside_mode(), outside);
	assert_int_equal(error, -EIO);
	assert_int_equal(fd_budget_used(&f->fds), 0);
}

static void test_race_mknod_fifo(void **state)
{
	struct fx *f = *state;

	arm(f, "fifo", false);
	assert_refused(f, mknod_(f, 1, "fifo", S_IFIFO | 0666, 0), S_IFREG | 0600);
}

static void test_race_mknod_socket(void **state)
{
	struct fx *f = *state;

	arm(f, "sock", false);
	assert_refused(f, mknod_(f, 1, "sock", S_IFSOCK | 0666, 0), S_IFREG | 0600);
}

/* A planted node of the very type made: its other link still gives it away. */
static void test_race_mknod_same_type(void **state)
{
	struct fx *f = *state;

	arm(f, "fifo", true);
	assert_refused(f, mknod_(f, 1, "fifo", S_IFIFO | 0666, 0), S_IFIFO | 0600);
}

static void test_race_mkdir(void **state)
{
	struct fx *f = *state;

	arm(f, "dir", false);
	assert_refused(f, mkdir_(f, 1, "dir", 0777), S_IFREG | 0600);
}

static void test_race_symlink(void **state)
{
	struct fx *f = *state;

	arm(f, "lnk", false);
	assert_refused(f, name_op(f, FUSE_SYMLINK, 1, NULL, 0, "lnk", "target"), S_IFREG | 0600);
}

static void test_race_link(void **state)
{
	struct fx *f = *state;
	uint64_t src;

	share_write(f, "src", "src");
	src = lookup_ok(f, 1, "src");
	arm(f, "l", false);
	assert_int_equal(link_(f, src, 1, "l"), -EIO);
	assert_int_equal(race.fired, 1);
	assert_int_equal(outside_mode(), S_IFREG | 0600);
	assert_int_equal(fd_budget_used(&f->fds), 1); /* "src" alone */
	assert_int_equal(forget(f, src, 1), 0);
}

/* A regular file (MKNOD and CREATE): served from the descriptor that made it, so the swap
 * changes nothing: the entry and the mode are those of the node made, now at "aside". */
static void check_made_file(struct fx *f, const struct fuse_entry_out *entry)
{
	struct stat made;

	assert_int_equal(race.fired, 1);
	assert_int_equal(outside_mode(), S_IFREG | 0600);
	assert_int_equal(lstat(race.aside, &made), 0);
	assert_int_equal(made.st_mode, S_IFREG | 0640);
	assert_int_equal(entry->attr.ino, made.st_ino);
	assert_int_equal(entry->attr.mode, S_IFREG | 0640);
	assert_int_equal(fd_budget_used(&f->fds), 1);
}

static void test_race_mknod_regular(void **state)
{
	struct fx *f = *state;
	struct fuse_entry_out entry;

	arm(f, "reg", false);
	assert_int_equal(mknod_(f, 1, "reg", S_IFREG | 0640, 0), 0);
	memcpy(&entry, payload(f), sizeof(entry));
	check_made_file(f, &entry);
	assert_int_equal(forget(f, entry.nodeid, 1), 0);
}

static void test_race_create(void **state)
{
	struct fx *f = *state;
	uint64_t id = 0, fh = 0;
	struct fuse_entry_out entry;

	arm(f, "c", false);
	assert_int_equal(create(f, 1, "c", O_RDWR | O_EXCL, 0640, &id, &fh), 0);
	memcpy(&entry, payload(f), sizeof(entry));
	assert_int_equal(write_fh(f, fh, 0, "made", 4), 4);
	assert_string_equal(host_read(race.aside), "made");
	assert_string_equal(host_read(race.outside), "secret");
	assert_int_equal(release(f, FUSE_RELEASE, id, fh), 0);
	check_made_file(f, &entry);
	assert_int_equal(forget(f, id, 1), 0);
}

static int race_setup(void **state)
{
	memset(&race, 0, sizeof(race));
	return fx_setup(state);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, race_setup, fx_teardown)
	const struct CMUnitTest tests[] = {
	    T(test_race_mknod_fifo),	T(test_race_mknod_socket), T(test_race_mknod_same_type),
	    T(test_race_mkdir),		T(test_race_symlink),	   T(test_race_link),
	    T(test_race_mknod_regular), T(test_race_create),
	};

	return cmocka_run_group_tests_name("reopen races", tests, NULL, NULL);
#undef T
}

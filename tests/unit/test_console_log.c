/* The capped console log (vmm/console_log.c): a guest that prints without end costs the
 * host at most two files of CONSOLE_LOG_MAX bytes, holding its latest output. */
#include "tests/unit/unit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/console_log.h"

#define MAX 4096

struct fixture {
	char dir[64];
	char path[128], old[160];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	strcpy(f->dir, "/tmp/clawvm-console-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/console", f->dir);
	snprintf(f->old, sizeof(f->old), "%s.1", f->path);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char inner[192];

	snprintf(inner, sizeof(inner), "%s/x", f->old);
	unlink(inner);
	unlink(f->path);
	unlink(f->old);
	rmdir(f->old);
	rmdir(f->dir);
	free(f);
	return 0;
}

static uint8_t pattern(size_t i)
{
	return (uint8_t)(i % 251);
}

/* The file holds exactly bytes [from, from + len) of the pattern. */
static void assert_file_holds(const char *path, size_t from, size_t len)
{
	uint8_t buf[2 * MAX];
	int fd = open(path, O_RDONLY);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	assert_int_equal(n, (ssize_t)len);
	for (size_t i = 0; i < len; i++)
		assert_int_equal(buf[i], pattern(from + i));
}

static void write_pattern(struct console_log *log, size_t total, size_t chunk)
{
	uint8_t buf[3 * MAX];

	for (size_t done = 0; done < total;) {
		size_t n = total - done < chunk ? total - done : chunk;

		for (size_t i = 0; i < n; i++)
			buf[i] = pattern(done + i);
		console_log_write(log, buf, n);
		done += n;
	}
}

/* 10,000 bytes with a cap of 4096: FILE.1 holds the second 4096, FILE the last 1808. */
static void rotates_at_the_cap(void **state)
{
	struct fixture *f = *state;
	static const size_t chunks[] = {1, 7, 1000, 3 * MAX};

	for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
		struct console_log log;

		unlink(f->old);
		assert_int_equal(console_log_open(&log, f->path, MAX), 0);
		write_pattern(&log, 10000, chunks[c]);
		console_log_close(&log);
		assert_file_holds(f->old, MAX, MAX);
		assert_file_holds(f->path, 2 * MAX, 10000 - 2 * MAX);
	}
}

/* When FILE.1 cannot be made (here a directory that is not empty), the file starts over. */
static void truncates_when_it_cannot_rotate(void **state)
{
	struct fixture *f = *state;
	struct console_log log;
	char inner[192];
	int fd;

	assert_int_equal(mkdir(f->old, 0755), 0);
	snprintf(inner, sizeof(inner), "%s/x", f->old);
	fd = open(inner, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(console_log_open(&log, f->path, MAX), 0);
	write_pattern(&log, 10000, 100);
	console_log_close(&log);
	assert_file_holds(f->path, 2 * MAX, 10000 - 2 * MAX);
}

static void open_failure_names_the_file(void **state)
{
	struct console_log log;

	(void)state;
	assert_int_equal(console_log_open(&log, "/nonexistent-dir/console", MAX), -ENOENT);
	console_log_write(&log, "x", 1); /* no log: nothing happens */
	console_log_close(&log);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(rotates_at_the_cap, setup, teardown),
	    cmocka_unit_test_setup_teardown(truncates_when_it_cannot_rotate, setup, teardown),
	    cmocka_unit_test(open_failure_names_the_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

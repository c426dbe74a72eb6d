/* The archive of string records guest-init reads (/clawvm/mounts): parsed back with a small newc
 * reader written here (independently of the writer), and, where the host has it, listed and
 * extracted by cpio(1). */
#include "unit.h"

#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api/guest_abi.h"
#include "vmm/initrd.h"

#define NEWC_HEADER 110
#define MAX_ENTRIES 8

/* The archive of the mounts file alone, as the VMM builds it. */
static size_t initrd_strings_size(char *const strings[])
{
	const struct initrd_file file = {&CLAWVM_MOUNTS_PATH[1], strings};

	return initrd_archive_size(&file, 1);
}

static size_t initrd_strings_archive(uint8_t *dst, size_t cap, char *const strings[])
{
	const struct initrd_file file = {&CLAWVM_MOUNTS_PATH[1], strings};

	return initrd_archive(dst, cap, &file, 1);
}

struct newc_entry {
	unsigned long ino, mode, nlink, filesize, namesize;
	const char *name;
	const uint8_t *data;
};

static unsigned long hex8(const uint8_t *p)
{
	char field[9];
	char *end;
	unsigned long v;

	memcpy(field, p, 8);
	field[8] = '\0';
	v = strtoul(field, &end, 16);
	assert_true(end == field + 8);
	return v;
}

static size_t align4(size_t x)
{
	return (x + 3) & ~(size_t)3;
}

/* Parses `len` bytes of archive up to and including its trailer; returns the entry count
 * (trailer included) and checks the format along the way. */
static unsigned newc_parse(const uint8_t *a, size_t len, struct newc_entry *e, size_t *end)
{
	size_t pos = 0;
	unsigned n = 0;

	for (;;) {
		size_t name_end, data_end;

		assert_true(n < MAX_ENTRIES);
		assert_true(pos % 4 == 0);
		assert_true(pos + NEWC_HEADER <= len);
		assert_memory_equal(a + pos, "070701", 6);
		e[n].ino = hex8(a + pos + 6);
		e[n].mode = hex8(a + pos + 14);
		assert_int_equal(hex8(a + pos + 22), 0); /* uid */
		assert_int_equal(hex8(a + pos + 30), 0); /* gid */
		e[n].nlink = hex8(a + pos + 38);
		e[n].filesize = hex8(a + pos + 54);
		e[n].namesize = hex8(a + pos + 94);
		assert_int_equal(hex8(a + pos + 102), 0); /* check, unused by newc */
		assert_true(e[n].namesize >= 1);
		name_end = pos + NEWC_HEADER + e[n].namesize;
		assert_true(name_end <= len);
		e[n].name = (const char *)a + pos + NEWC_HEADER;
		assert_int_equal(e[n].name[e[n].namesize - 1], '\0');
		assert_int_equal(strlen(e[n].name), e[n].namesize - 1);
		assert_true(align4(name_end) <= len);
		assert_true(all_bytes(a + name_end, align4(name_end) - name_end, 0));
		e[n].data = a + align4(name_end);
		data_end = align4(name_end) + e[n].filesize;
		assert_true(align4(data_end) <= len);
		assert_true(all_bytes(a + data_end, align4(data_end) - data_end, 0));
		pos = align4(data_end);
		if (strcmp(e[n++].name, "TRAILER!!!") == 0)
			break;
	}
	*end = pos;
	return n;
}

/* The strings strings, each with its NUL, back to back. */
static size_t strings_blob(char *const strings[], uint8_t *out)
{
	size_t n = 0;

	for (size_t i = 0; strings[i]; i++) {
		memcpy(out + n, strings[i], strlen(strings[i]) + 1);
		n += strlen(strings[i]) + 1;
	}
	return n;
}

/* Builds the archive for `strings` in an exact-size heap block and checks every entry. */
static void check_archive(char *const strings[])
{
	size_t size = initrd_strings_size(strings), end;
	uint8_t *archive = malloc(size), *expect = malloc(size);
	struct newc_entry e[MAX_ENTRIES];
	size_t expect_len;

	assert_non_null(archive);
	assert_non_null(expect);
	assert_int_equal(initrd_strings_archive(archive, size, strings), size);
	assert_int_equal(size % 4, 0);
	assert_int_equal(newc_parse(archive, size, e, &end), 3);
	assert_int_equal(end, size);

	assert_string_equal(e[0].name, "clawvm");
	assert_true(S_ISDIR(e[0].mode));
	assert_int_equal(e[0].mode & 07777, 0755);
	assert_int_equal(e[0].filesize, 0);
	assert_int_equal(e[0].nlink, 2);

	assert_string_equal(e[1].name, &CLAWVM_MOUNTS_PATH[1]);
	assert_string_equal(e[1].name, "clawvm/mounts");
	assert_true(S_ISREG(e[1].mode));
	assert_int_equal(e[1].mode & 0222, 0); /* read-only */
	assert_true(e[1].mode & 0400);
	assert_int_equal(e[1].nlink, 1);
	assert_true(e[1].ino != e[0].ino);
	expect_len = strings_blob(strings, expect);
	assert_int_equal(e[1].filesize, expect_len);
	assert_memory_equal(e[1].data, expect, expect_len);

	assert_string_equal(e[2].name, "TRAILER!!!");
	assert_int_equal(e[2].filesize, 0);
	free(archive);
	free(expect);
}

static void echo_hi(void **state)
{
	char *strings[] = {"echo", "hi", NULL};

	(void)state;
	check_archive(strings);
}

static void every_padding(void **state)
{
	/* Data of 2, 3, 4 and 5 bytes: every remainder mod 4. */
	char *a[] = {"a", NULL}, *ab[] = {"ab", NULL}, *abc[] = {"abc", NULL};
	char *abcd[] = {"abcd", NULL};

	(void)state;
	check_archive(a);
	check_archive(ab);
	check_archive(abc);
	check_archive(abcd);
}

static void empty_string_args(void **state)
{
	char *only_empty[] = {"", NULL};
	char *empty_middle[] = {"printf", "", "x", NULL};
	uint8_t archive[512];
	struct newc_entry e[MAX_ENTRIES];
	size_t end, size;

	(void)state;
	check_archive(only_empty);
	check_archive(empty_middle);
	size = initrd_strings_archive(archive, sizeof(archive), empty_middle);
	assert_true(size > 0);
	newc_parse(archive, size, e, &end);
	assert_int_equal(e[1].filesize, 10);
	assert_memory_equal(e[1].data, "printf\0\0x\0", 10);
}

static void shell_metacharacters_kept(void **state)
{
	char *strings[] = {"sh", "-c", "echo \"$HOME\" | tr a-z A-Z; exit 3", "with\nnewline",
			   NULL};

	(void)state;
	check_archive(strings);
}

static void many_long_args(void **state)
{
	char *strings[1001];
	char *arg = malloc(101);

	(void)state;
	assert_non_null(arg);
	memset(arg, 'q', 100);
	arg[100] = '\0';
	for (size_t i = 0; i < 1000; i++)
		strings[i] = arg;
	strings[1000] = NULL;
	check_archive(strings);
	assert_int_equal(initrd_strings_size(strings), align4(NEWC_HEADER + 7) +
							   align4(NEWC_HEADER + 12) + 1000 * 101 +
							   align4(NEWC_HEADER + 11));
	free(arg);
}

static void no_args(void **state)
{
	char *strings[] = {NULL};

	(void)state;
	check_archive(strings);
}

static void cap_too_small(void **state)
{
	char *strings[] = {"echo", "hi", NULL};
	size_t size = initrd_strings_size(strings);
	uint8_t *buf = malloc(size);

	(void)state;
	assert_non_null(buf);
	memset(buf, 0xee, size);
	assert_int_equal(initrd_strings_archive(buf, size - 1, strings), 0);
	assert_int_equal(initrd_strings_archive(buf, 0, strings), 0);
	assert_int_equal(initrd_strings_archive(buf, 1, strings), 0);
	/* Refused before anything was written. */
	assert_true(all_bytes(buf, size, 0xee));
	assert_int_equal(initrd_strings_archive(buf, size, strings), size);
	free(buf);
}

/* Runs `cmd` with the archive on its stdin; returns what it printed (malloc'd). */
static char *run_with_stdin(const char *cmd, const uint8_t *archive, size_t size)
{
	char path[] = "/tmp/clawvm-test-initrd-XXXXXX";
	char *full, *out = calloc(1, 4096);
	int fd = mkstemp(path);
	FILE *p;

	assert_true(fd >= 0);
	assert_non_null(out);
	assert_int_equal(write(fd, archive, size), (ssize_t)size);
	close(fd);
	assert_true(asprintf(&full, "%s < %s 2>/dev/null", cmd, path) > 0);
	p = popen(full, "r");
	assert_non_null(p);
	assert_true(fread(out, 1, 4095, p) < 4095);
	assert_int_equal(pclose(p), 0);
	unlink(path);
	free(full);
	return out;
}

static void cpio_reads_it(void **state)
{
	char *strings[] = {"ls", "-l", "/tmp dir", NULL};
	size_t size = initrd_strings_size(strings);
	uint8_t *archive = malloc(size);
	char *listing, *data;

	(void)state;
	if (system("command -v cpio >/dev/null 2>&1") != 0) {
		free(archive);
		skip();
	}
	assert_non_null(archive);
	assert_int_equal(initrd_strings_archive(archive, size, strings), size);
	listing = run_with_stdin("cpio -it --quiet", archive, size);
	assert_string_equal(listing, "clawvm\nclawvm/mounts\n");
	data = run_with_stdin("cpio -i --quiet --to-stdout clawvm/mounts", archive, size);
	assert_memory_equal(data, "ls\0-l\0/tmp dir\0", 15);
	assert_int_equal(data[15], '\0');
	free(listing);
	free(data);
	free(archive);
}

/* Two files in one archive (the archive takes any number; the VMM writes the mounts). */
static void two_files(void **state)
{
	char *strings[] = {"make", "-j2", NULL};
	char *mounts[] = {"clawvm0", "/", "ro", "clawvm1", "/workspace dir", "rw", NULL};
	const struct initrd_file files[] = {{"clawvm/first", strings}, {"clawvm/mounts", mounts}};
	size_t size = initrd_archive_size(files, 2), end;
	uint8_t *archive = malloc(size);
	struct newc_entry e[MAX_ENTRIES];
	static const char want_mounts[] = "clawvm0\0/\0ro\0clawvm1\0/workspace dir\0rw";

	(void)state;
	assert_non_null(archive);
	assert_int_equal(initrd_archive(archive, size - 1, files, 2), 0);
	assert_int_equal(initrd_archive(archive, size, files, 2), size);
	assert_int_equal(newc_parse(archive, size, e, &end), 4);
	assert_int_equal(end, size);
	assert_string_equal(e[1].name, "clawvm/first");
	assert_int_equal(e[1].filesize, 9);
	assert_memory_equal(e[1].data, "make\0-j2\0", 9);
	assert_string_equal(e[2].name, "clawvm/mounts");
	assert_int_equal(e[2].filesize, sizeof(want_mounts));
	assert_memory_equal(e[2].data, want_mounts, sizeof(want_mounts));
	assert_true(e[1].ino != e[2].ino && e[2].ino != e[0].ino);
	free(archive);
}

/* The files as vm_load_initrd writes them: the mounts (when there are shares), then the
 * egress ports (when there are any), each port one decimal string; guest-init reads both. */
static void mounts_and_egress(void **state)
{
	char *mounts[] = {"clawvm0", "/", "ro", NULL};
	char *ports[] = {"3128", "3129", "65535", NULL};
	const struct initrd_file both[] = {{&CLAWVM_MOUNTS_PATH[1], mounts},
					   {&CLAWVM_EGRESS_PATH[1], ports}};
	static const char want_ports[] = "3128\0003129\00065535";
	struct newc_entry e[MAX_ENTRIES];
	uint8_t archive[1024];
	size_t size, end;

	(void)state;
	size = initrd_archive_size(both, 2);
	assert_true(size <= sizeof(archive));
	assert_int_equal(initrd_archive(archive, sizeof(archive), both, 2), size);
	assert_int_equal(newc_parse(archive, size, e, &end), 4);
	assert_int_equal(end, size);
	assert_string_equal(e[1].name, "clawvm/mounts");
	assert_string_equal(e[2].name, "clawvm/egress");
	assert_true(S_ISREG(e[2].mode));
	assert_int_equal(e[2].mode & 0222, 0);
	assert_int_equal(e[2].filesize, sizeof(want_ports));
	assert_memory_equal(e[2].data, want_ports, sizeof(want_ports));
	assert_true(e[1].ino != e[2].ino);

	/* Egress without shares: the egress file alone. */
	size = initrd_archive_size(&both[1], 1);
	assert_int_equal(initrd_archive(archive, sizeof(archive), &both[1], 1), size);
	assert_int_equal(newc_parse(archive, size, e, &end), 3);
	assert_string_equal(e[0].name, "clawvm");
	assert_string_equal(e[1].name, "clawvm/egress");
	assert_memory_equal(e[1].data, want_ports, sizeof(want_ports));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(echo_hi),		 cmocka_unit_test(every_padding),
	    cmocka_unit_test(empty_string_args), cmocka_unit_test(shell_metacharacters_kept),
	    cmocka_unit_test(many_long_args),	 cmocka_unit_test(no_args),
	    cmocka_unit_test(cap_too_small),	 cmocka_unit_test(cpio_reads_it),
	    cmocka_unit_test(two_files),	 cmocka_unit_test(mounts_and_egress),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

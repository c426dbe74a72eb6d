/* The guest kernel command line: defaults, separators, refused characters and the
 * 2048-byte limit (NUL included). */
#include "unit.h"

#include <errno.h>

#include "vmm/cmdline.h"

/* Whether `word` is one of the space-separated words of `line`. */
static int has_word(const char *line, const char *word)
{
	size_t len = strlen(word);

	for (const char *p = line; *p;) {
		const char *end = strchr(p, ' ');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		if (n == len && memcmp(p, word, len) == 0)
			return 1;
		if (!end)
			break;
		p = end + 1;
	}
	return 0;
}

/* Words separated by exactly one space, none empty. */
static void assert_well_formed(const char *line)
{
	size_t len = strlen(line);

	assert_true(len > 0);
	assert_true(line[0] != ' ');
	assert_true(line[len - 1] != ' ');
	assert_null(strstr(line, "  "));
}

static void defaults_quiet(void **state)
{
	struct cmdline c;
	const char *line;

	(void)state;
	cmdline_init(&c);
	cmdline_add_defaults(&c, 0);
	line = cmdline_get(&c);
	assert_non_null(line);
	assert_well_formed(line);
	assert_true(has_word(line, "console=ttyS0"));
	assert_true(has_word(line, "reboot=k"));
	assert_true(has_word(line, "panic=-1"));
	assert_true(has_word(line, "quiet"));
	assert_false(has_word(line, "loglevel=7"));
	assert_int_equal(c.len, strlen(line));
}

static void defaults_verbose(void **state)
{
	struct cmdline c;
	const char *line;

	(void)state;
	cmdline_init(&c);
	cmdline_add_defaults(&c, 1);
	line = cmdline_get(&c);
	assert_non_null(line);
	assert_well_formed(line);
	assert_true(has_word(line, "console=ttyS0"));
	assert_true(has_word(line, "reboot=k"));
	assert_true(has_word(line, "panic=-1"));
	assert_true(has_word(line, "loglevel=7"));
	assert_false(has_word(line, "quiet"));
}

static void empty_line(void **state)
{
	struct cmdline c;

	(void)state;
	cmdline_init(&c);
	assert_string_equal(cmdline_get(&c), "");
	assert_int_equal(c.len, 0);
}

static void separators(void **state)
{
	struct cmdline c;

	(void)state;
	cmdline_init(&c);
	cmdline_add(&c, "a");
	assert_string_equal(cmdline_get(&c), "a");
	cmdline_add(&c, "b=c");
	assert_string_equal(cmdline_get(&c), "a b=c");
	/* An empty argument adds nothing, not even a separator. */
	cmdline_add(&c, "");
	assert_string_equal(cmdline_get(&c), "a b=c");
	cmdline_add_raw(&c, "x=1 y=\"two words\"");
	assert_string_equal(cmdline_get(&c), "a b=c x=1 y=\"two words\"");
	cmdline_add(&c, "d");
	assert_string_equal(cmdline_get(&c), "a b=c x=1 y=\"two words\" d");
	assert_int_equal(c.len, strlen("a b=c x=1 y=\"two words\" d"));
	cmdline_init(&c);
	cmdline_add_raw(&c, "first");
	assert_string_equal(cmdline_get(&c), "first");
}

static void add_refuses_splitting_characters(void **state)
{
	static const char *const bad[] = {
	    "a b", " a", "a ", "x=\"y\"", "\"", "a\nb", "a\tb", "\r", "\x01", "a\x7f", "\x1b[0m",
	};
	struct cmdline c;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cmdline_init(&c);
		cmdline_add(&c, "ok");
		cmdline_add(&c, bad[i]);
		assert_null(cmdline_get(&c));
		/* Once refused, the line stays unusable. */
		cmdline_add(&c, "more");
		assert_null(cmdline_get(&c));
	}
	/* Printable non-ASCII (UTF-8) passes. */
	cmdline_init(&c);
	cmdline_add(&c, "name=\xc3\xa9t\xc3\xa9");
	assert_string_equal(cmdline_get(&c), "name=\xc3\xa9t\xc3\xa9");
}

static void raw_refuses_control_characters(void **state)
{
	struct cmdline c;

	(void)state;
	cmdline_init(&c);
	cmdline_add_raw(&c, "a=1\nb=2");
	assert_null(cmdline_get(&c));
	cmdline_init(&c);
	cmdline_add_raw(&c, "a=1\x7f");
	assert_null(cmdline_get(&c));
	cmdline_init(&c);
	assert_non_null(cmdline_get(&c));
}

/* A word of `len` bytes `ch` in `buf` (which holds len + 1). */
static const char *word_of(char *buf, size_t len, char ch)
{
	memset(buf, ch, len);
	buf[len] = '\0';
	return buf;
}

static void limit_one_word(void **state)
{
	char buf[CMDLINE_CAPACITY + 1];
	struct cmdline c;

	(void)state;
	cmdline_init(&c);
	cmdline_add(&c, word_of(buf, CMDLINE_CAPACITY - 1, 'a'));
	assert_non_null(cmdline_get(&c));
	assert_int_equal(c.len, CMDLINE_CAPACITY - 1);
	assert_int_equal(strlen(cmdline_get(&c)), CMDLINE_CAPACITY - 1);
	/* Full: even one more byte overflows. */
	cmdline_add(&c, "b");
	assert_null(cmdline_get(&c));

	cmdline_init(&c);
	cmdline_add(&c, word_of(buf, CMDLINE_CAPACITY, 'a'));
	assert_null(cmdline_get(&c));
}

static void limit_counts_separators(void **state)
{
	char first[1001], second[1048];
	struct cmdline c;

	(void)state;
	/* 1000 + 1 + 1046 = 2047 bytes, plus the NUL: exactly full. */
	cmdline_init(&c);
	cmdline_add(&c, word_of(first, 1000, 'a'));
	cmdline_add(&c, word_of(second, 1046, 'b'));
	assert_non_null(cmdline_get(&c));
	assert_int_equal(strlen(cmdline_get(&c)), 2047);
	assert_int_equal(cmdline_get(&c)[1000], ' ');
	cmdline_add(&c, "c");
	assert_null(cmdline_get(&c));

	/* One more byte in the second word does not fit. */
	cmdline_init(&c);
	cmdline_add(&c, first);
	cmdline_add_raw(&c, word_of(second, 1047, 'b'));
	assert_null(cmdline_get(&c));
}

static void defaults_then_overflow(void **state)
{
	char big[CMDLINE_CAPACITY];
	struct cmdline c;

	(void)state;
	cmdline_init(&c);
	cmdline_add_defaults(&c, 0);
	cmdline_add_raw(&c, word_of(big, CMDLINE_CAPACITY - 10, 'z'));
	assert_null(cmdline_get(&c));
	/* cmdline_init makes it usable again. */
	cmdline_init(&c);
	assert_string_equal(cmdline_get(&c), "");
}

/* struct vm_config's extra words: after clawvm's own, refused whole (the line unchanged) if
 * they would pass the limit, accepted up to its last byte. */
static void user_words_limit(void **state)
{
	char big[CMDLINE_CAPACITY];
	char before[CMDLINE_CAPACITY];
	struct cmdline c;
	size_t room;

	(void)state;
	cmdline_init(&c);
	cmdline_add_defaults(&c, 0);
	strcpy(before, cmdline_get(&c));
	room = CMDLINE_CAPACITY - 1 - c.len - 1; /* the separator */
	assert_int_equal(cmdline_add_user(&c, word_of(big, room + 1, 'u')), -E2BIG);
	assert_string_equal(cmdline_get(&c), before);
	/* A control character is refused, the line unchanged too. */
	assert_int_equal(cmdline_add_user(&c, "a=1\nb=2"), -EINVAL);
	assert_string_equal(cmdline_get(&c), before);

	cmdline_init(&c);
	cmdline_add_defaults(&c, 0);
	assert_int_equal(cmdline_add_user(&c, word_of(big, room, 'u')), 0);
	assert_int_equal(c.len, CMDLINE_CAPACITY - 1);
	assert_true(has_word(cmdline_get(&c), big));
	assert_memory_equal(cmdline_get(&c), before, strlen(before)); /* clawvm's own first */
	/* Several words at once, and nothing at all. */
	cmdline_init(&c);
	assert_int_equal(cmdline_add_user(&c, "a=1 b=2"), 0);
	assert_int_equal(cmdline_add_user(&c, ""), 0);
	assert_string_equal(cmdline_get(&c), "a=1 b=2");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(defaults_quiet),
	    cmocka_unit_test(defaults_verbose),
	    cmocka_unit_test(empty_line),
	    cmocka_unit_test(separators),
	    cmocka_unit_test(add_refuses_splitting_characters),
	    cmocka_unit_test(raw_refuses_control_characters),
	    cmocka_unit_test(limit_one_word),
	    cmocka_unit_test(limit_counts_separators),
	    cmocka_unit_test(defaults_then_overflow),
	    cmocka_unit_test(user_words_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

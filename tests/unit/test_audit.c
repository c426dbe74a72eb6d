/* Unit tests for the audit log (api/audit.c, audit_schema.c, audit_read.c): a chain written
 * by the writer and checked line by line against a SHA-256 computed here; tampering
 * (an edited byte, a removed line, two lines swapped, a last line cut short) named by
 * verify; a log resumed; hostile event texts refused with their exact reason and the log
 * left as it was; strings escaped so that every line stays one line; builders cutting
 * what would not fit; a write cut short by a file size limit undone; show's exact output.
 * Every event text is passed as a heap copy of exactly its length, so that ASan sees a read
 * past its end. Logs live in mkstemp files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/audit.h"

#define ZEROS "0000000000000000000000000000000000000000000000000000000000000000"

/* ---- files ---- */

static void tmp_log(char path[64])
{
	int fd;

	snprintf(path, 64, "/tmp/test_audit.XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	if (len)
		*len = (size_t)n;
	return buf;
}

static void spill(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* Where line n (from 1) of text starts, and its length without "\n". */
static size_t line_at(const char *text, unsigned n, size_t *len)
{
	const char *p = text, *end;

	for (unsigned i = 1; i < n; i++) {
		p = strchr(p, '\n');
		assert_non_null(p);
		p++;
	}
	end = strchr(p, '\n');
	*len = end ? (size_t)(end - p) : strlen(p);
	return (size_t)(p - text);
}

/* A reader's return, and what it wrote (malloc()ed into *out), on the file at path. */
static int run_reader(int (*reader)(FILE *in, FILE *out), const char *path, char **out)
{
	FILE *in = fopen(path, "rb"), *mem;
	size_t size;
	int ret;

	assert_non_null(in);
	mem = open_memstream(out, &size);
	assert_non_null(mem);
	ret = reader(in, mem);
	fclose(mem);
	fclose(in);
	return ret;
}

static int verify(const char *path, char **report)
{
	return run_reader(audit_verify, path, report);
}

/* verify finds the log intact, with that many lines. */
static void assert_intact(const char *path, unsigned lines)
{
	char *report, want[64];

	assert_int_equal(verify(path, &report), 0);
	snprintf(want, sizeof(want), "intact: %u lines, ", lines);
	assert_memory_equal(report, want, strlen(want));
	free(report);
}

static void verify_is(const char *path, int want, const char *want_report)
{
	char *report;

	assert_int_equal(verify(path, &report), want);
	assert_string_equal(report, want_report);
	free(report);
}

static int show(const char *path, char **text)
{
	return run_reader(audit_show, path, text);
}

static void sha256_hex(const char *data, size_t len, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;

	assert_true(EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL));
	assert_int_equal(mdlen, 32);
	for (unsigned i = 0; i < mdlen; i++)
		sprintf(hex + 2 * i, "%02x", md[i]);
}

/* ---- the writer ---- */

static struct audit_log *open_ok(const char *path)
{
	char err[AUDIT_REASON_MAX] = "";
	struct audit_log *log = audit_open(path, err, sizeof(err));

	if (!log)
		fail_msg("audit_open: %s", err);
	return log;
}

/* The text as a heap block of exactly len bytes: ASan sees a read past it. */
static char *exact_copy(const char *text, size_t len)
{
	char *copy = malloc(len ? len : 1);

	assert_non_null(copy);
	return memcpy(copy, text, len);
}

static int append_len(struct audit_log *log, const char *src, const char *text, size_t len)
{
	char *copy = exact_copy(text, len);
	int ret = audit_append(log, src, copy, len);

	free(copy);
	return ret;
}

static void append_ok(struct audit_log *log, const char *src, const char *text)
{
	int ret = append_len(log, src, text, strlen(text));

	if (ret != 0)
		fail_msg("audit_append(%s): %d %s", text, ret, audit_reason(log));
}

/* Appends a builder's text (and frees it). */
static void append_built(struct audit_log *log, const char *src, char *text)
{
	assert_non_null(text);
	append_ok(log, src, text);
	free(text);
}

static const char *const echo_argv[] = {"echo", "hi", NULL};

/* Five events, one of each kind but secret, from three sources. */
static void write_five(const char *path)
{
	struct audit_share share = {"/src", "/workspace", true};
	struct audit_egress denied = {"evil.com", 443, NULL, false, "not in the allowlist",
				      0,	  0,   1};
	struct audit_log *log = open_ok(path);

	append_built(log, "supervisor", audit_event_start("demo", 2, 512, &share, 1));
	append_built(log, "vmm", audit_event_exec(echo_argv, 0, 0, 12));
	append_built(log, "broker", audit_event_egress(&denied));
	append_built(log, "vmm", audit_event_file(AUDIT_FILE_RENAMED, "/a", "/b"));
	append_built(log, "supervisor", audit_event_stop("exited", 0));
	audit_close(log);
}

static void test_chain_intact(void **state)
{
	static const char *const tails[] = {
	    "\"src\":\"supervisor\",\"event\":\"start\",\"name\":\"demo\",\"cpus\":2,\"memory_"
	    "mib\":"
	    "512,\"shares\":[{\"host\":\"/src\",\"guest\":\"/workspace\",\"read_only\":true}]}",
	    "\"src\":\"vmm\",\"event\":\"exec\",\"argv\":[\"echo\",\"hi\"],\"status\":0,"
	    "\"duration_ms\":12}",
	    "\"src\":\"broker\",\"event\":\"egress\",\"host\":\"evil.com\",\"port\":443,\"addr\":"
	    "null,\"decision\":\"denied\",\"reason\":\"not in the allowlist\",\"bytes_up\":0,"
	    "\"bytes_down\":0,\"duration_ms\":1}",
	    "\"src\":\"vmm\",\"event\":\"file\",\"op\":\"renamed\",\"path\":\"/a\",\"to\":\"/b\"}",
	    "\"src\":\"supervisor\",\"event\":\"stop\",\"reason\":\"exited\",\"status\":0}",
	};
	char path[64], prev[65] = ZEROS, want[256], report[256], last_ts[25] = "";
	size_t len, start = 0, line_len = 0;
	char *text;

	(void)state;
	tmp_log(path);
	write_five(path);
	text = slurp(path, &len);
	assert_int_equal(text[len - 1], '\n');
	for (unsigned n = 1; n <= 5; n++) {
		const char *line, *ts;

		start = line_at(text, n, &line_len);
		line = text + start;
		snprintf(want, sizeof(want), "{\"seq\":%u,\"ts\":\"", n);
		assert_memory_equal(line, want, strlen(want));
		ts = line + strlen(want);
		/* 2026-12-04T18:52:19.123Z, never going back */
		assert_int_equal(ts[4], '-');
		assert_int_equal(ts[10], 'T');
		assert_int_equal(ts[19], '.');
		assert_memory_equal(ts + 23, "Z\",\"prev\":\"", 11);
		assert_true(memcmp(ts, last_ts, 24) >= 0);
		memcpy(last_ts, ts, 24);
		/* prev is the SHA-256 of the line above, computed here. */
		assert_memory_equal(ts + 34, prev, 64);
		assert_memory_equal(ts + 98, "\",", 2);
		assert_int_equal(line_len, (size_t)(ts + 100 - line) + strlen(tails[n - 1]));
		assert_memory_equal(ts + 100, tails[n - 1], strlen(tails[n - 1]));
		sha256_hex(line, line_len, prev);
	}
	/* Line 5 is the last. */
	assert_int_equal(start + line_len + 1, len);
	snprintf(report, sizeof(report), "intact: 5 lines, the last one's hash %s\n", prev);
	verify_is(path, 0, report);
	free(text);
	unlink(path);
}

/* Changes the log at path: `edit` gets its text and length, and changes them in place. */
static void tamper(const char *path, void (*edit)(char *text, size_t *len))
{
	size_t len;
	char *text = slurp(path, &len);

	edit(text, &len);
	spill(path, text, len);
	free(text);
}

/* "hi" of line 2 (the exec) becomes "ho": still a well-formed line. */
static void edit_byte(char *text, size_t *len)
{
	size_t line_len, start = line_at(text, 2, &line_len);
	char *hi = memmem(text + start, line_len, "\"hi\"", 4);

	(void)len;
	assert_non_null(hi);
	hi[2] = 'o';
}

/* A byte of line 3 that breaks its JSON. */
static void break_json(char *text, size_t *len)
{
	size_t line_len, start = line_at(text, 3, &line_len);

	(void)len;
	text[start + line_len - 1] = ']';
}

static void remove_line_3(char *text, size_t *len)
{
	size_t line_len, start = line_at(text, 3, &line_len);

	memmove(text + start, text + start + line_len + 1, *len - start - line_len - 1);
	*len -= line_len + 1;
}

static void swap_lines_2_3(char *text, size_t *len)
{
	size_t len2, len3, start2 = line_at(text, 2, &len2), start3 = line_at(text, 3, &len3);
	char *copy = malloc(*len);

	assert_non_null(copy);
	memcpy(copy, text, *len);
	memcpy(text + start2, copy + start3, len3 + 1);
	memcpy(text + start2 + len3 + 1, copy + start2, len2 + 1);
	free(copy);
}

static void cut_mid_last(char *text, size_t *len)
{
	size_t line_len;

	line_at(text, 5, &line_len);
	*len -= line_len / 2;
}

static void cut_newline(char *text, size_t *len)
{
	(void)text;
	(*len)--;
}

static void drop_last(char *text, size_t *len)
{
	size_t line_len, start = line_at(text, 5, &line_len);

	*len = start;
}

static void tampered_is(void (*edit)(char *, size_t *), int want, const char *want_report)
{
	char path[64];

	tmp_log(path);
	write_five(path);
	tamper(path, edit);
	verify_is(path, want, want_report);
	unlink(path);
}

static void test_tampering_found(void **state)
{
	char path[64], *report;

	(void)state;
	tampered_is(edit_byte, 1,
		    "line 3: prev does not match the hash of line 2 (edited or removed line)\n");
	tampered_is(remove_line_3, 1,
		    "line 3: seq is 4, expected 3 (lines before it removed or moved)\n");
	tampered_is(swap_lines_2_3, 1,
		    "line 2: seq is 3, expected 2 (lines before it removed or moved)\n");
	tampered_is(cut_mid_last, 1,
		    "line 5: cut short: no newline at its end (the log was cut while being "
		    "written, or cut since)\n");
	tampered_is(cut_newline, 1,
		    "line 5: cut short: no newline at its end (the log was cut while being "
		    "written, or cut since)\n");

	/* A byte that breaks the JSON names its own line. */
	tmp_log(path);
	write_five(path);
	tamper(path, break_json);
	assert_int_equal(verify(path, &report), 1);
	assert_memory_equal(report, "line 3: not JSON: ", 18);
	assert_ptr_equal(strchr(report, '\n'), report + strlen(report) - 1);
	free(report);
	unlink(path);

	/* Cut at a line's end: intact, but without the stop, which is noted. */
	tmp_log(path);
	write_five(path);
	tamper(path, drop_last);
	assert_int_equal(verify(path, &report), 0);
	assert_non_null(strstr(report, "intact: 4 lines, the last one's hash "));
	assert_non_null(strstr(report, "\nnote: the log ends without a stop event: the sandbox is "
				       "running or the log was cut\n"));
	free(report);
	unlink(path);
}

static void test_resume(void **state)
{
	struct audit_egress allowed = {
	    "api.example.com", 443, "93.184.216.34", true, NULL, 512, 2048, 40};
	char path[64], err[AUDIT_REASON_MAX], hash[65], *text, *report;
	struct audit_log *log, *second;
	size_t len, line_len;
	uint64_t seq;

	(void)state;
	tmp_log(path);
	log = open_ok(path);
	audit_head(log, &seq, hash);
	assert_int_equal(seq, 0);
	assert_string_equal(hash, ZEROS);
	append_built(log, "vmm", audit_event_exec(echo_argv, 0, 0, 1));
	append_built(log, "broker", audit_event_egress(&allowed));
	/* One writer: a second open is refused while the first holds the log. */
	second = audit_open(path, err, sizeof(err));
	assert_null(second);
	assert_int_equal(errno, EWOULDBLOCK);
	assert_non_null(strstr(err, "another writer has it open"));
	audit_close(log);

	log = open_ok(path);
	text = slurp(path, &len);
	{
		size_t start2 = line_at(text, 2, &line_len);

		sha256_hex(text + start2, line_len, hash);
	}
	{
		char head[65];

		audit_head(log, &seq, head);
		assert_int_equal(seq, 2);
		assert_string_equal(head, hash);
	}
	free(text);
	append_built(log, "broker", audit_event_secret("OPENAI_API_KEY", "api.openai.com"));
	append_built(log, "supervisor", audit_event_stop("stopped", 0));
	audit_close(log);
	text = slurp(path, &len);
	assert_non_null(strstr(text, "{\"seq\":3,"));
	assert_non_null(strstr(text, "{\"seq\":4,"));
	/* Line 3 chains to line 2 of the first open. */
	{
		char want[80];
		size_t start3 = line_at(text, 3, &line_len);

		snprintf(want, sizeof(want), "\"prev\":\"%s\"", hash);
		assert_non_null(memmem(text + start3, line_len, want, strlen(want)));
	}
	free(text);
	assert_int_equal(verify(path, &report), 0);
	assert_non_null(strstr(report, "intact: 4 lines"));
	assert_null(strstr(report, "note:"));
	free(report);

	/* A log whose last line is cut short, or is not a line, is not resumed. */
	tamper(path, cut_newline);
	assert_null(audit_open(path, err, sizeof(err)));
	assert_int_equal(errno, EINVAL);
	assert_non_null(strstr(err, "cannot be resumed: its last line is cut short"));
	spill(path, "{\"seq\":1}\n", 10);
	assert_null(audit_open(path, err, sizeof(err)));
	assert_non_null(
	    strstr(err, "cannot be resumed: a line starts with seq, ts, prev, src and event"));
	spill(path, "\n", 1);
	assert_null(audit_open(path, err, sizeof(err)));
	assert_non_null(strstr(err, "cannot be resumed: not JSON: "));
	unlink(path);
}

static void test_open_refused(void **state)
{
	char dir[] = "/tmp/test_audit_dir.XXXXXX", path[128], err[AUDIT_REASON_MAX];
	mode_t old_umask = umask(0);
	struct audit_log *log;
	struct stat st;

	(void)state;
	assert_non_null(mkdtemp(dir));
	/* A new log is created 0600 whatever the umask. */
	snprintf(path, sizeof(path), "%s/log", dir);
	log = open_ok(path);
	audit_close(log);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	umask(old_umask);
	/* A symbolic link is not followed. */
	snprintf(path, sizeof(path), "%s/link", dir);
	assert_int_equal(symlink("log", path), 0);
	assert_null(audit_open(path, err, sizeof(err)));
	assert_int_equal(errno, ELOOP);
	unlink(path);
	/* Not a regular file. */
	snprintf(path, sizeof(path), "%s/fifo", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_null(audit_open(path, err, sizeof(err)));
	assert_int_equal(errno, EINVAL);
	assert_non_null(strstr(err, "not a regular file"));
	unlink(path);
	assert_null(audit_open(dir, err, sizeof(err)));
	assert_int_equal(errno, EISDIR);
	snprintf(path, sizeof(path), "%s/log", dir);
	unlink(path);
	rmdir(dir);
}

/* ---- hostile senders ---- */

static const char *refused_len(struct audit_log *log, const char *src, const char *text, size_t len,
			       int want)
{
	int ret = append_len(log, src, text, len);

	if (ret != want)
		fail_msg("%s: got %d (%s), not %d", text, ret, audit_reason(log), want);
	return audit_reason(log);
}

static void refused(struct audit_log *log, const char *text, const char *reason)
{
	assert_string_equal(refused_len(log, "vmm", text, strlen(text), -EINVAL), reason);
}

/* A stop event whose text is exactly `len` bytes (its reason padded with c). */
static char *stop_of_size(size_t len, char c)
{
	static const char head[] = "{\"event\":\"stop\",\"status\":0,\"reason\":\"";
	char *text = malloc(len + 1);

	assert_non_null(text);
	memcpy(text, head, strlen(head));
	memset(text + strlen(head), c, len - strlen(head) - 2);
	memcpy(text + len - 2, "\"}", 3);
	return text;
}

static void test_hostile_events(void **state)
{
	static const char exec_ok[] = "{\"event\":\"exec\",\"argv\":[\"a\"],\"status\":0,"
				      "\"duration_ms\":1";
	char path[64], text[512], *big;
	const char *reason;
	size_t len;

	(void)state;
	tmp_log(path);
	struct audit_log *log = open_ok(path);

	refused(log, "[1,2]", "event not a JSON object but an array");
	refused(log, "\"exec\"", "event not a JSON object but a string");
	refused(log, "{}", "no `event` member");
	refused(log, "{\"event\":7}", "event must be a string, got a number");
	refused(log, "{\"event\":\"reboot\"}", "no event `reboot`");
	refused(log, "{\"event\":\"a_very_long_name_that_goes_on_and_on_and_on_and_on\"}",
		"no event `a_very_long_name_that_goes_on_an...`");
	snprintf(text, sizeof(text), "%s,\"x\":1}", exec_ok);
	refused(log, text, "exec: unknown field `x`");
	snprintf(text, sizeof(text), "%s,\"seq\":9}", exec_ok);
	refused(log, text, "`seq` is the writer's to stamp, not the sender's");
	snprintf(text, sizeof(text), "{\"prev\":\"%s\",%s}", ZEROS, exec_ok + 1);
	refused(log, text, "`prev` is the writer's to stamp, not the sender's");
	snprintf(text, sizeof(text), "%s,\"src\":\"broker\"}", exec_ok);
	refused(log, text, "`src` is the writer's to stamp, not the sender's");
	snprintf(text, sizeof(text), "%s,\"ts\":\"2026-12-04T18:52:19.123Z\"}", exec_ok);
	refused(log, text, "`ts` is the writer's to stamp, not the sender's");
	/* Wrong types and ranges. */
	refused(log, "{\"event\":\"exec\",\"argv\":\"ls\",\"status\":0,\"duration_ms\":1}",
		"exec: argv must be a non-empty array of strings, got a string");
	refused(log, "{\"event\":\"exec\",\"argv\":[],\"status\":0,\"duration_ms\":1}",
		"exec: argv must be a non-empty array of strings, got an empty one");
	refused(log, "{\"event\":\"exec\",\"argv\":[\"a\",1],\"status\":0,\"duration_ms\":1}",
		"exec: argv[1] must be a string, got a number");
	refused(log, "{\"event\":\"exec\",\"argv\":[\"a\"],\"status\":300,\"duration_ms\":1}",
		"exec: status must be 0 to 255, got 300");
	refused(log, "{\"event\":\"exec\",\"argv\":[\"a\"],\"status\":0.5,\"duration_ms\":1}",
		"exec: status must be a whole number, got 0.5");
	refused(log, "{\"event\":\"exec\",\"argv\":[\"a\"],\"status\":0,\"duration_ms\":-1}",
		"exec: duration_ms must be 0 to 9223372036854775807, got -1");
	refused(log,
		"{\"event\":\"exec\",\"argv\":[\"a\"],\"status\":0,\"signal\":9,\"duration_ms\":1}",
		"exec: exactly one of status and signal must be given");
	refused(log, "{\"event\":\"exec\",\"argv\":[\"a\"],\"duration_ms\":1}",
		"exec: exactly one of status and signal must be given");
	snprintf(text, sizeof(text), "%s,\"cut\":false}", exec_ok);
	refused(log, text, "exec: cut is true or left out");
	refused(log,
		"{\"event\":\"egress\",\"host\":\"a\",\"port\":\"443\",\"addr\":null,\"decision\":"
		"\"denied\",\"reason\":null,\"bytes_up\":0,\"bytes_down\":0,\"duration_ms\":0}",
		"egress: port must be a whole number, got a string");
	refused(log,
		"{\"event\":\"egress\",\"host\":\"a\",\"port\":70000,\"addr\":null,\"decision\":"
		"\"denied\",\"reason\":null,\"bytes_up\":0,\"bytes_down\":0,\"duration_ms\":0}",
		"egress: port must be 0 to 65535, got 70000");
	refused(log,
		"{\"event\":\"egress\",\"host\":\"a\",\"port\":1,\"addr\":null,\"decision\":"
		"\"maybe\",\"reason\":null,\"bytes_up\":0,\"bytes_down\":0,\"duration_ms\":0}",
		"egress: decision must be one of allowed, denied");
	refused(log,
		"{\"event\":\"egress\",\"host\":null,\"port\":1,\"addr\":null,\"decision\":"
		"\"denied\",\"reason\":null,\"bytes_up\":0,\"bytes_down\":0,\"duration_ms\":0}",
		"egress: host must be a string, got null");
	refused(log,
		"{\"event\":\"egress\",\"host\":\"a\",\"port\":1,\"addr\":1,\"decision\":"
		"\"denied\",\"reason\":null,\"bytes_up\":0,\"bytes_down\":0,\"duration_ms\":0}",
		"egress: addr must be a string or null, got a number");
	refused(log, "{\"event\":\"stop\",\"reason\":\"x\"}", "stop: missing field `status`");
	refused(log, "{\"event\":\"lost\",\"count\":0}",
		"lost: count must be 1 to 9223372036854775807, got 0");
	refused(log, "{\"event\":\"policy\",\"allowed\":[],\"rules\":1,\"closed\":0,\"uid\":0}",
		"policy: allowed must be a non-empty array of strings, got an empty one");
	refused(log, "{\"event\":\"policy\",\"revoked\":[1],\"rules\":1,\"closed\":0,\"uid\":0}",
		"policy: revoked[0] must be a string, got a number");
	refused(log, "{\"event\":\"secret\",\"name\":\"K\",\"host\":\"h\",\"value\":\"hunter2\"}",
		"secret: unknown field `value`");
	refused(log, "{\"event\":\"file\",\"op\":\"renamed\",\"path\":\"/a\"}",
		"file: a rename needs `to`");
	refused(log, "{\"event\":\"file\",\"op\":\"deleted\",\"path\":\"/a\",\"to\":\"/b\"}",
		"file: `to` is given for a rename only");
	refused(log,
		"{\"event\":\"start\",\"name\":\"d\",\"cpus\":1,\"memory_mib\":1,\"shares\":[{"
		"\"host\":\"/h\",\"guest\":\"/g\",\"read_only\":true,\"mode\":1}]}",
		"start: shares[0]: unknown field `mode`");
	refused(log,
		"{\"event\":\"start\",\"name\":\"d\",\"cpus\":1,\"memory_mib\":1,\"shares\":[{"
		"\"host\":\"/h\",\"read_only\":1}]}",
		"start: shares[0]: read_only must be true or false, got a number");
	refused(log,
		"{\"event\":\"start\",\"name\":\"d\",\"cpus\":1,\"memory_mib\":1,\"shares\":[7]}",
		"start: shares[0] must be an object, got a number");
	/* Nesting deeper than 4, however it is spelled; brackets in a string do not count. */
	refused(log,
		"{\"event\":\"start\",\"name\":\"d\",\"cpus\":1,\"memory_mib\":1,\"shares\":[{"
		"\"host\":[[1]]}]}",
		"event nested deeper than 4");
	memset(text, '[', 400);
	text[400] = '\0';
	refused(log, text, "event nested deeper than 4");
	append_ok(log, "vmm",
		  "{\"event\":\"stop\",\"reason\":\"[[[[[{{{{{\\\"[[[[\",\"status\":0}");
	/* Not JSON: duplicates, trailing bytes, a NUL escaped, bad UTF-8, a raw control
	 * character, a text cut short by its length. */
	reason = refused_len(log, "vmm", "{\"event\":\"stop\",\"event\":\"stop\"}", 31, -EINVAL);
	assert_non_null(strstr(reason, "event not JSON: duplicate object key"));
	reason = refused_len(log, "vmm", "{\"event\":\"stop\"} {}", 19, -EINVAL);
	assert_non_null(strstr(reason, "event not JSON: "));
	reason = refused_len(
	    log, "vmm", "{\"event\":\"stop\",\"reason\":\"a\\u0000b\",\"status\":0}", 46, -EINVAL);
	assert_non_null(strstr(reason, "event not JSON: \\u0000 is not allowed"));
	reason = refused_len(
	    log, "vmm", "{\"event\":\"stop\",\"reason\":\"\xff\xfe\",\"status\":0}", 40, -EINVAL);
	assert_non_null(strstr(reason, "event not JSON: unable to decode byte 0xff"));
	for (const char *p = reason; *p; p++)
		assert_true(*p >= 0x20 && *p < 0x7f);
	reason = refused_len(log, "vmm", "{\"event\":\"stop\",\"reason\":\"a\x01\",\"status\":0}",
			     39, -EINVAL);
	assert_non_null(strstr(reason, "event not JSON: control character 0x1"));
	reason = refused_len(log, "vmm", exec_ok, strlen(exec_ok) - 3, -EINVAL);
	assert_non_null(strstr(reason, "event not JSON: "));
	/* An embedded NUL byte in a text given by its length, and one after it. */
	assert_string_equal(refused_len(log, "vmm",
					"{\"event\":\"stop\",\"reason\":\"a\0b\",\"status\":0}", 40,
					-EINVAL),
			    "event contains a NUL byte");
	assert_string_equal(refused_len(log, "vmm",
					"{\"event\":\"stop\",\"reason\":\"a\",\"status\":0}\0", 41,
					-EINVAL),
			    "event contains a NUL byte");
	assert_memory_equal(refused_len(log, "vmm", "", 0, -EINVAL), "event not JSON: ", 16);
	/* Bad sources. */
	assert_string_equal(refused_len(log, "VMM", exec_ok, strlen(exec_ok), -EINVAL),
			    "src must be 1 to 32 of a-z, 0-9, _ and -");
	assert_string_equal(refused_len(log, "", exec_ok, strlen(exec_ok), -EINVAL),
			    "src must be 1 to 32 of a-z, 0-9, _ and -");
	assert_string_equal(refused_len(log, "vmm\n", exec_ok, strlen(exec_ok), -EINVAL),
			    "src must be 1 to 32 of a-z, 0-9, _ and -");
	assert_string_equal(refused_len(log, "abcdefghijklmnopqrstuvwxyz0123456", exec_ok,
					strlen(exec_ok), -EINVAL),
			    "src must be 1 to 32 of a-z, 0-9, _ and -");
	/* 64 KiB is taken; one byte more, or 65 KiB, is not. */
	big = stop_of_size(AUDIT_EVENT_MAX + 1, 'x');
	assert_string_equal(refused_len(log, "vmm", big, AUDIT_EVENT_MAX + 1, -EMSGSIZE),
			    "event over 65536 bytes");
	free(big);
	big = stop_of_size(65 * 1024, 'x');
	assert_string_equal(refused_len(log, "vmm", big, 65 * 1024, -EMSGSIZE),
			    "event over 65536 bytes");
	free(big);
	big = stop_of_size(AUDIT_EVENT_MAX, 'x');
	append_ok(log, "vmm", big);
	free(big);
	audit_close(log);

	/* Only the two events taken are in the log, and it verifies. */
	big = slurp(path, &len);
	assert_non_null(strstr(big, "{\"seq\":2,"));
	assert_null(strstr(big, "{\"seq\":3,"));
	free(big);
	assert_intact(path, 2);
	unlink(path);
}

/* ---- escaping and builders ---- */

static void test_strings_escaped(void **state)
{
	const char *const argv[] = {"say", "a \"quoted\"\nline\r\t\x1b[31m\x7f\\", "\xff\xc3",
				    "\xe2\x80\xa8", NULL};
	char path[64], *text, *report;
	size_t len;

	(void)state;
	tmp_log(path);
	struct audit_log *log = open_ok(path);

	append_built(log, "vmm", audit_event_exec(argv, 1, 0, 5));
	/* A sender's own escapes, blanks and key order do not reach the log: its values do. */
	append_ok(log, "vmm",
		  "{ \"status\" : 2 ,\n \"reason\": \"\\u0041\\/\\b\\u001f\\ud83d\\ude00\","
		  " \"event\":\"stop\"}");
	audit_close(log);
	text = slurp(path, &len);
	/* Two events, two lines. */
	assert_int_equal(text[len - 1], '\n');
	{
		size_t newlines = 0;

		for (size_t i = 0; i < len; i++)
			newlines += text[i] == '\n';
		assert_int_equal(newlines, 2);
	}
	/* Invalid UTF-8 became U+FFFD, byte by byte; U+2028 stays (it is not a newline). */
	assert_non_null(strstr(text,
			       "\"event\":\"exec\",\"argv\":[\"say\",\"a \\\"quoted\\\"\\nline"
			       "\\r\\t\\u001B[31m\x7f\\\\\",\"\xef\xbf\xbd\xef\xbf\xbd\","
			       "\"\xe2\x80\xa8\"],\"status\":1,\"duration_ms\":5}\n"));
	assert_non_null(strstr(text,
			       "\"event\":\"stop\",\"reason\":\"A/\\b\\u001F\xf0\x9f\x98\x80\","
			       "\"status\":2}\n"));
	free(text);
	assert_int_equal(verify(path, &report), 0);
	free(report);
	unlink(path);
}

static void test_builders(void **state)
{
	const char *const sleep_argv[] = {"sleep", "100", NULL}, *const no_argv[] = {NULL};
	struct audit_share shares[] = {{"/src", "/workspace", true}, {"/d", "/d", false}};
	struct audit_egress allowed = {
	    "api.example.com", 443, "93.184.216.34", true, NULL, 512, 2048, 40};
	struct audit_egress no_host = {NULL, 443, NULL, false, NULL, 0, 0, 0};
	char *text;

	(void)state;
#define BUILT(call, want)                                                                          \
	do {                                                                                       \
		text = call;                                                                       \
		assert_non_null(text);                                                             \
		assert_string_equal(text, want);                                                   \
		free(text);                                                                        \
	} while (0)
#define INVALID(call)                                                                              \
	do {                                                                                       \
		errno = 0;                                                                         \
		assert_null(call);                                                                 \
		assert_int_equal(errno, EINVAL);                                                   \
	} while (0)
	BUILT(audit_event_start("demo", 2, 512, shares, 2),
	      "{\"event\":\"start\",\"name\":\"demo\",\"cpus\":2,\"memory_mib\":512,\"shares\":[{"
	      "\"host\":\"/src\",\"guest\":\"/workspace\",\"read_only\":true},{\"host\":\"/d\","
	      "\"guest\":\"/d\",\"read_only\":false}]}");
	BUILT(audit_event_start("demo", 1, 1, NULL, 0),
	      "{\"event\":\"start\",\"name\":\"demo\",\"cpus\":1,\"memory_mib\":1,\"shares\":[]}");
	BUILT(audit_event_stop("error", -1),
	      "{\"event\":\"stop\",\"reason\":\"error\",\"status\":-1}");
	BUILT(audit_event_exec(echo_argv, 0, 0, 12),
	      "{\"event\":\"exec\",\"argv\":[\"echo\",\"hi\"],\"status\":0,\"duration_ms\":12}");
	BUILT(
	    audit_event_exec(sleep_argv, 0, 9, 30000),
	    "{\"event\":\"exec\",\"argv\":[\"sleep\",\"100\"],\"signal\":9,\"duration_ms\":30000}");
	BUILT(audit_event_egress(&allowed),
	      "{\"event\":\"egress\",\"host\":\"api.example.com\",\"port\":443,\"addr\":"
	      "\"93.184.216.34\",\"decision\":\"allowed\",\"reason\":null,\"bytes_up\":512,"
	      "\"bytes_down\":2048,\"duration_ms\":40}");
	allowed.bytes_up = UINT64_MAX;
	text = audit_event_egress(&allowed);
	assert_non_null(strstr(text, "\"bytes_up\":9223372036854775807,"));
	free(text);
	BUILT(audit_event_secret("OPENAI_API_KEY", "api.openai.com"),
	      "{\"event\":\"secret\",\"name\":\"OPENAI_API_KEY\",\"host\":\"api.openai.com\"}");
	{
		const char *const added[] = {"a.example.com:80,443", NULL}, *const none[] = {NULL};

		BUILT(audit_event_policy(added, none, 3, 1, 0),
		      "{\"event\":\"policy\",\"allowed\":[\"a.example.com:80,443\"],\"rules\":3,"
		      "\"closed\":1,\"uid\":0}");
		BUILT(audit_event_policy(NULL, added, 0, 0, 1000),
		      "{\"event\":\"policy\",\"revoked\":[\"a.example.com:80,443\"],\"rules\":0,"
		      "\"closed\":0,\"uid\":1000}");
	}
	BUILT(audit_event_lost(17), "{\"event\":\"lost\",\"count\":17}");
	INVALID(audit_event_lost(0));
	BUILT(audit_event_file(AUDIT_FILE_RENAMED, "/a", "/b"),
	      "{\"event\":\"file\",\"op\":\"renamed\",\"path\":\"/a\",\"to\":\"/b\"}");
	BUILT(audit_event_file(AUDIT_FILE_WRITTEN, "/w", NULL),
	      "{\"event\":\"file\",\"op\":\"written\",\"path\":\"/w\"}");

	INVALID(audit_event_start(NULL, 1, 1, NULL, 0));
	INVALID(audit_event_start("d", 1, 1, NULL, 1));
	shares[1].guest = NULL;
	INVALID(audit_event_start("d", 1, 1, shares, 2));
	INVALID(audit_event_stop(NULL, 0));
	INVALID(audit_event_exec(NULL, 0, 0, 0));
	INVALID(audit_event_exec(no_argv, 0, 0, 0));
	INVALID(audit_event_exec(echo_argv, 256, 0, 0));
	INVALID(audit_event_exec(echo_argv, -1, 0, 0));
	INVALID(audit_event_exec(echo_argv, 0, 65, 0));
	INVALID(audit_event_egress(NULL));
	INVALID(audit_event_egress(&no_host));
	INVALID(audit_event_secret("K", NULL));
	INVALID(audit_event_file(AUDIT_FILE_RENAMED, "/a", NULL));
	INVALID(audit_event_file(AUDIT_FILE_CREATED, "/a", "/b"));
	INVALID(audit_event_file(AUDIT_FILE_DELETED, NULL, NULL));
	INVALID(audit_event_file((enum audit_file_op)7, "/a", NULL));
#undef BUILT
#undef INVALID
}

/* What would not fit is cut, and says so: the event is still logged. */
static void test_builders_cut(void **state)
{
	enum { ARGS = 100000 };
	const char **argv = calloc(ARGS + 1, sizeof(*argv));
	char path[64], *big = malloc(40000), *text;
	struct audit_share *shares = calloc(2000, sizeof(*shares));

	(void)state;
	assert_non_null(argv);
	assert_non_null(big);
	assert_non_null(shares);
	tmp_log(path);
	struct audit_log *log = open_ok(path);

	/* Many short arguments: the first ones are kept. */
	for (int i = 0; i < ARGS; i++)
		argv[i] = "x";
	text = audit_event_exec(argv, 0, 0, 1);
	assert_non_null(text);
	assert_true(strlen(text) <= AUDIT_EVENT_MAX);
	assert_memory_equal(text, "{\"event\":\"exec\",\"argv\":[\"x\",\"x\",", 32);
	assert_non_null(strstr(text, "],\"status\":0,\"duration_ms\":1,\"cut\":true}"));
	append_built(log, "vmm", text);
	/* Few long ones: each cut to AUDIT_STRING_CUT of text, at a character's start. */
	for (int i = 0; i < 39999; i += 2)
		memcpy(big + i, "\xc3\xa9", 2); /* é */
	big[39999] = '\0';
	argv[0] = "sh";
	for (int i = 1; i < 10; i++)
		argv[i] = big;
	argv[10] = NULL;
	text = audit_event_exec(argv, 0, 0, 1);
	assert_non_null(text);
	assert_true(strlen(text) <= AUDIT_EVENT_MAX);
	assert_non_null(strstr(text, "\"cut\":true}"));
	append_built(log, "vmm", text);
	/* Control characters take six bytes of text each: counted so. */
	memset(big, '\x01', 39999);
	text = audit_event_file(AUDIT_FILE_RENAMED, big, big);
	assert_non_null(text);
	assert_true(strlen(text) <= AUDIT_EVENT_MAX);
	assert_true(strlen(text) > 2 * (AUDIT_STRING_CUT - 6));
	assert_non_null(strstr(text, "\"cut\":true}"));
	append_built(log, "vmm", text);
	/* Many shares. */
	memset(big, 'p', 1000);
	big[1000] = '\0';
	for (int i = 0; i < 2000; i++)
		shares[i] = (struct audit_share){big, big, false};
	text = audit_event_start("many", 1, 1, shares, 2000);
	assert_non_null(text);
	assert_true(strlen(text) <= AUDIT_EVENT_MAX);
	assert_non_null(strstr(text, "}],\"cut\":true}"));
	append_built(log, "vmm", text);
	/* What fits is not cut. */
	text = audit_event_file(AUDIT_FILE_CREATED, big, NULL);
	assert_null(strstr(text, "cut"));
	append_built(log, "vmm", text);
	audit_close(log);
	assert_intact(path, 5);
	unlink(path);
	free(shares);
	free(big);
	free(argv);
}

/* A write the file size limit cuts short is cut off again, and the log goes on. */
static void test_short_write_undone(void **state)
{
	void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
	char path[64], *before, *after;
	struct rlimit old, limit;
	size_t before_len, after_len;

	(void)state;
	tmp_log(path);
	struct audit_log *log = open_ok(path);

	append_built(log, "vmm", audit_event_exec(echo_argv, 0, 0, 1));
	before = slurp(path, &before_len);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	limit = old;
	limit.rlim_cur = before_len + 20;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &limit), 0);
	assert_int_equal(
	    append_len(log, "vmm", "{\"event\":\"stop\",\"reason\":\"x\",\"status\":0}", 40), -EIO);
	assert_non_null(strstr(audit_reason(log), "write: 20 of "));
	assert_non_null(strstr(audit_reason(log), "bytes (cut off again)"));
	limit.rlim_cur = before_len;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &limit), 0);
	assert_int_equal(
	    append_len(log, "vmm", "{\"event\":\"stop\",\"reason\":\"x\",\"status\":0}", 40),
	    -EFBIG);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, old_handler);
	after = slurp(path, &after_len);
	assert_int_equal(after_len, before_len);
	assert_memory_equal(after, before, before_len);
	free(after);
	free(before);
	append_ok(log, "vmm", "{\"event\":\"stop\",\"reason\":\"x\",\"status\":0}");
	audit_close(log);
	assert_intact(path, 2);
	unlink(path);
}

/* ---- hand-made logs, for the readers ---- */

struct handmade {
	FILE *f;
	unsigned n;
	char prev[65];
};

static void hm_start(struct handmade *hm, const char *path)
{
	hm->f = fopen(path, "wb");
	assert_non_null(hm->f);
	hm->n = 0;
	snprintf(hm->prev, sizeof(hm->prev), ZEROS);
}

static void hm_raw(struct handmade *hm, const char *line)
{
	fprintf(hm->f, "%s\n", line);
	sha256_hex(line, strlen(line), hm->prev);
	hm->n++;
}

/* A line as the writer writes it, with the right seq and prev. */
static void hm_add(struct handmade *hm, const char *ts, const char *body)
{
	char line[1024];

	snprintf(line, sizeof(line),
		 "{\"seq\":%u,\"ts\":\"%s\",\"prev\":\"%s\",\"src\":\"vmm\",%s}", hm->n + 1, ts,
		 hm->prev, body);
	hm_raw(hm, line);
}

static void hm_end(struct handmade *hm)
{
	assert_int_equal(fclose(hm->f), 0);
}

#define STOP_BODY "\"event\":\"stop\",\"reason\":\"exited\",\"status\":0"

static void test_verify_handmade(void **state)
{
	char path[64], line[512];
	struct handmade hm;

	(void)state;
	tmp_log(path);
	/* Written by hand to the format: intact. */
	hm_start(&hm, path);
	hm_add(&hm, "2026-12-04T18:52:19.100Z", STOP_BODY);
	hm_add(&hm, "2026-12-04T18:52:19.100Z", STOP_BODY);
	hm_end(&hm);
	snprintf(line, sizeof(line), "intact: 2 lines, the last one's hash %s\n", hm.prev);
	verify_is(path, 0, line);
	/* Time going back. */
	hm_start(&hm, path);
	hm_add(&hm, "2026-12-04T18:52:19.100Z", STOP_BODY);
	hm_add(&hm, "2026-12-04T18:52:19.099Z", STOP_BODY);
	hm_end(&hm);
	verify_is(path, 1,
		  "line 2: ts 2026-12-04T18:52:19.099Z is before line 1's "
		  "2026-12-04T18:52:19.100Z (edited or moved line)\n");
	/* A first line whose prev is not zeros. */
	hm_start(&hm, path);
	snprintf(hm.prev, sizeof(hm.prev), "%s", ZEROS);
	hm.prev[63] = '1';
	hm_add(&hm, "2026-12-04T18:52:19.100Z", STOP_BODY);
	hm_end(&hm);
	verify_is(path, 1, "line 1: prev is not 64 zeros, as the first line's must be\n");
	/* Chained right, but not what the writer writes. */
	hm_start(&hm, path);
	hm_add(&hm, "2026-12-04T18:52:19.100Z", STOP_BODY);
	snprintf(line, sizeof(line),
		 "{\"ts\":\"2026-12-04T18:52:19.100Z\",\"seq\":2,\"prev\":\"%s\",\"src\":\"vmm\","
		 "%s}",
		 hm.prev, STOP_BODY);
	hm_raw(&hm, line);
	hm_end(&hm);
	verify_is(path, 1,
		  "line 2: a line starts with seq, ts, prev, src and event, in that order\n");
	hm_start(&hm, path);
	hm_add(&hm, "2026-12-04T18:52:19.100Z", "\"event\":\"reboot\"");
	hm_end(&hm);
	verify_is(path, 1, "line 1: no event `reboot`\n");
	hm_start(&hm, path);
	hm_add(&hm, "2026-13-04T18:52:19.100Z", STOP_BODY);
	hm_end(&hm);
	verify_is(path, 1, "line 1: ts must be UTC time as 2026-12-04T18:52:19.123Z\n");
	hm_start(&hm, path);
	hm_add(&hm, "2026-12-04T18:52:19.100Z", STOP_BODY ",\"extra\":1");
	hm_end(&hm);
	verify_is(path, 1, "line 1: stop: unknown field `extra`\n");
	hm_start(&hm, path);
	hm_raw(&hm, "[]");
	hm_end(&hm);
	verify_is(path, 1, "line 1: not a JSON object but an array\n");
	/* Empty. */
	spill(path, "", 0);
	verify_is(path, 0, "intact: the log is empty\n");
	unlink(path);
}

/* A clock behind the log's last ts (set back, or a log resumed from a faster host): the
 * last ts is repeated, so that ts never goes back. */
static void test_clock_behind(void **state)
{
	char path[64], *text;
	struct handmade hm;
	size_t len;

	(void)state;
	tmp_log(path);
	hm_start(&hm, path);
	hm_add(&hm, "2999-12-31T23:59:59.999Z", STOP_BODY);
	hm_end(&hm);
	struct audit_log *log = open_ok(path);

	append_built(log, "vmm", audit_event_exec(echo_argv, 0, 0, 1));
	audit_close(log);
	text = slurp(path, &len);
	assert_non_null(strstr(text, "{\"seq\":2,\"ts\":\"2999-12-31T23:59:59.999Z\","));
	free(text);
	assert_intact(path, 2);
	unlink(path);
}

/* A line past AUDIT_LINE_MAX is refused by both readers; show goes on after it. */
static void test_long_line(void **state)
{
	size_t long_len = AUDIT_LINE_MAX + 100;
	char path[64], *text = malloc(long_len + 1), *shown;
	struct handmade hm;

	(void)state;
	assert_non_null(text);
	memset(text, 'x', long_len);
	text[long_len] = '\0';
	tmp_log(path);
	hm_start(&hm, path);
	hm_raw(&hm, text);
	hm_add(&hm, "2026-12-04T18:52:19.100Z", STOP_BODY);
	hm_end(&hm);
	verify_is(path, 1, "line 1: over 66048 bytes\n");
	assert_int_equal(show(path, &shown), 1);
	assert_string_equal(shown, "line 1: cannot be read: over 66048 bytes\n"
				   "2026-12-04 (UTC)\n"
				   "18:52:19.100  stop     exited, status 0\n");
	free(shown);
	free(text);
	unlink(path);
}

static void test_show(void **state)
{
	char path[64], *shown;
	struct handmade hm;

	(void)state;
	tmp_log(path);
	hm_start(&hm, path);
	hm_add(&hm, "2026-12-04T18:52:19.100Z",
	       "\"event\":\"start\",\"name\":\"demo\",\"cpus\":1,\"memory_mib\":512,\"shares\":[{"
	       "\"host\":\"/src\",\"guest\":\"/workspace\",\"read_only\":true},{\"host\":\"/data\","
	       "\"guest\":\"/data\",\"read_only\":false}]");
	hm_add(&hm, "2026-12-04T18:52:19.123Z",
	       "\"event\":\"exec\",\"argv\":[\"echo\",\"hi\"],\"status\":0,\"duration_ms\":12");
	hm_add(&hm, "2026-12-04T18:52:20.001Z",
	       "\"event\":\"exec\",\"argv\":[\"sh\",\"-c\",\"sleep \\\"1\\\"\",\"\"],\"signal\":9,"
	       "\"duration_ms\":30000");
	hm_add(&hm, "2026-12-04T18:52:21.700Z",
	       "\"event\":\"egress\",\"host\":\"evil.com\",\"port\":443,\"addr\":null,\"decision\":"
	       "\"denied\",\"reason\":\"not in the allowlist\",\"bytes_up\":0,\"bytes_down\":0,"
	       "\"duration_ms\":1");
	hm_add(&hm, "2026-12-04T18:52:21.800Z",
	       "\"event\":\"egress\",\"host\":\"2001:db8::1\",\"port\":80,\"addr\":\"2001:db8::1\","
	       "\"decision\":\"allowed\",\"reason\":null,\"bytes_up\":10,\"bytes_down\":20,"
	       "\"duration_ms\":5");
	hm_add(&hm, "2026-12-04T18:52:21.900Z", "\"event\":\"reboot\"");
	hm_raw(&hm, "garbage");
	hm_add(&hm, "2026-12-05T00:00:01.000Z",
	       "\"event\":\"secret\",\"name\":\"OPENAI_API_KEY\",\"host\":\"api.openai.com\"");
	hm_add(&hm, "2026-12-05T00:00:02.000Z",
	       "\"event\":\"file\",\"op\":\"renamed\",\"path\":\"/a\\u001b[2Jb\\\\c\\u0085\","
	       "\"to\":\"/b\xe2\x80\xae\xc3\xa9\"");
	hm_add(&hm, "2026-12-05T00:00:03.000Z",
	       "\"event\":\"file\",\"op\":\"created\",\"path\":\"/x\",\"cut\":true");
	hm_add(&hm, "2026-12-05T00:00:04.000Z",
	       "\"event\":\"exec\",\"argv\":[\"kill\"],\"signal\":40,\"duration_ms\":0");
	hm_add(&hm, "2026-12-05T00:00:04.500Z",
	       "\"event\":\"policy\",\"allowed\":[\"a.example.com:80,443\"],\"revoked\":[\"*.b."
	       "example.com:*\",\"10.0.0.0/8:443\"],\"rules\":3,\"closed\":1,\"uid\":0");
	hm_add(&hm, "2026-12-05T00:00:04.600Z",
	       "\"event\":\"policy\",\"rules\":3,\"closed\":0,\"uid\":1000");
	hm_add(&hm, "2026-12-05T00:00:04.700Z", "\"event\":\"lost\",\"count\":17");
	hm_add(&hm, "2026-12-05T00:00:05.000Z", STOP_BODY);
	hm_end(&hm);
	assert_int_equal(show(path, &shown), 1);
	assert_string_equal(
	    shown,
	    "2026-12-04 (UTC)\n"
	    "18:52:19.100  start    demo, 1 cpu, 512 MiB, shares: /src -> /workspace (ro), /data "
	    "-> "
	    "/data\n"
	    "18:52:19.123  exec     [echo hi] -> 0 (12 ms)\n"
	    "18:52:20.001  exec     [sh -c \"sleep \\\"1\\\"\" \"\"] -> SIGKILL (30000 ms)\n"
	    "18:52:21.700  egress   denied  evil.com:443 (not in the allowlist)\n"
	    "18:52:21.800  egress   allowed [2001:db8::1]:80 at 2001:db8::1, 10 B up, 20 B down, "
	    "5 ms\n"
	    "line 6: cannot be read: no event `reboot`\n"
	    "line 7: cannot be read: not JSON: invalid token near 'garbage' (at byte 7)\n"
	    "2026-12-05 (UTC)\n"
	    "00:00:01.000  secret   OPENAI_API_KEY for api.openai.com\n"
	    "00:00:02.000  file     renamed  /a\\x1b[2Jb\\\\c\\u0085 -> /b\\u202e\xc3\xa9\n"
	    "00:00:03.000  file     created  /x (cut)\n"
	    "00:00:04.000  exec     [kill] -> signal 40 (0 ms)\n"
	    "00:00:04.500  policy   +a.example.com:80,443 -*.b.example.com:* -10.0.0.0/8:443 "
	    "(rules now: 3, connections closed: 1, by uid 0)\n"
	    "00:00:04.600  policy   (rules now: 3, connections closed: 0, by uid 1000)\n"
	    "00:00:04.700  lost     17 events of this source were never logged (its socket was "
	    "full)\n"
	    "00:00:05.000  stop     exited, status 0\n");
	free(shown);
	/* It does not verify: a log whose chain is broken is shown all the same. */
	hm_start(&hm, path);
	hm_add(&hm, "2026-12-04T18:52:19.123Z", STOP_BODY);
	snprintf(hm.prev, sizeof(hm.prev), ZEROS);
	hm_add(&hm, "2026-12-04T18:52:19.124Z", STOP_BODY);
	hm_end(&hm);
	assert_int_equal(show(path, &shown), 0);
	assert_string_equal(shown, "2026-12-04 (UTC)\n"
				   "18:52:19.123  stop     exited, status 0\n"
				   "18:52:19.124  stop     exited, status 0\n");
	free(shown);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_chain_intact),
	    cmocka_unit_test(test_tampering_found),
	    cmocka_unit_test(test_resume),
	    cmocka_unit_test(test_open_refused),
	    cmocka_unit_test(test_hostile_events),
	    cmocka_unit_test(test_strings_escaped),
	    cmocka_unit_test(test_builders),
	    cmocka_unit_test(test_builders_cut),
	    cmocka_unit_test(test_short_write_undone),
	    cmocka_unit_test(test_verify_handmade),
	    cmocka_unit_test(test_clock_behind),
	    cmocka_unit_test(test_long_line),
	    cmocka_unit_test(test_show),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

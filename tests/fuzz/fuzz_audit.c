/* libFuzzer target for the audit log (api/audit.c, audit_schema.c, audit_read.c): the input
 * is an event's text as a hostile sender would send it to the writer, and then a log file
 * as a hostile hand would leave it for the readers. Besides the sanitizers, the target
 * checks what the module promises: an event taken adds exactly one line and the log still
 * verifies; an event refused leaves the file as it was and says why in printable ASCII;
 * whatever bytes a builder gets, its event is taken; the readers return 0 or 1 on any file.
 * The log is a temporary file, started anew every LOG_EVENTS events taken. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_check.h"
#include "api/audit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LOG_EVENTS 16

static char log_path[] = "/tmp/fuzz_audit.XXXXXX";
static struct audit_log *log_now;
static unsigned log_events;

static void cleanup(void)
{
	audit_close(log_now);
	unlink(log_path);
}

/* The log, created on the first call and started anew when it has LOG_EVENTS events. */
static struct audit_log *the_log(void)
{
	char err[AUDIT_REASON_MAX];
	int fd;

	if (log_now && log_events < LOG_EVENTS)
		return log_now;
	if (!log_now) {
		fd = mkstemp(log_path);
		CHECK(fd >= 0);
		close(fd);
		atexit(cleanup);
	}
	audit_close(log_now);
	CHECK(truncate(log_path, 0) == 0);
	log_now = audit_open(log_path, err, sizeof(err));
	CHECK(log_now);
	log_events = 0;
	return log_now;
}

static off_t log_size(void)
{
	struct stat st;

	CHECK(stat(log_path, &st) == 0);
	return st.st_size;
}

static int run_reader(int (*reader)(FILE *in, FILE *out), FILE *in)
{
	FILE *out = fopen("/dev/null", "w");
	int ret;

	CHECK(out);
	ret = reader(in, out);
	fclose(out);
	return ret;
}

/* Appends text[len]; checks what the file shows of it. */
static void append(const char *text, size_t len, bool must_take)
{
	struct audit_log *log = the_log();
	off_t before = log_size(), after;
	int ret = audit_append(log, "vmm", text, len);
	const char *reason = audit_reason(log);
	FILE *in;

	if (ret != 0) {
		CHECK(!must_take);
		CHECK(ret == -EINVAL || ret == -EMSGSIZE);
		CHECK(log_size() == before);
		CHECK(reason[0]);
		for (const char *p = reason; *p; p++)
			CHECK(*p >= 0x20 && *p < 0x7f);
		return;
	}
	log_events++;
	after = log_size();
	CHECK(after > before);
	in = fopen(log_path, "rb");
	CHECK(in);
	CHECK(fseeko(in, before, SEEK_SET) == 0);
	for (off_t i = before; i < after - 1; i++)
		CHECK(getc(in) != '\n');
	CHECK(getc(in) == '\n');
	rewind(in);
	CHECK(run_reader(audit_verify, in) == 0);
	fclose(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The event from a copy of exactly `size` bytes: no NUL after them to lean on. */
	char *text = malloc(size ? size : 1), *str = malloc(size + 1), *built;
	FILE *in;

	CHECK(text && str);
	memcpy(text, data, size);
	append(text, size, false);
	/* The same bytes as a log file. */
	in = fmemopen(text, size ? size : 1, "rb");
	CHECK(in);
	if (size == 0)
		fgetc(in); /* an empty file: fmemopen wants a size above 0 */
	CHECK((unsigned)run_reader(audit_verify, in) <= 1);
	rewind(in);
	if (size == 0)
		fgetc(in);
	CHECK((unsigned)run_reader(audit_show, in) <= 1);
	fclose(in);
	/* The same bytes (up to a NUL) as a string in a builder: always taken. */
	memcpy(str, data, size);
	str[size] = '\0';
	built = audit_event_file(AUDIT_FILE_RENAMED, str, str);
	CHECK(built);
	append(built, strlen(built), true);
	free(built);
	free(text);
	free(str);
	return 0;
}

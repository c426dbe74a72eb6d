/* The audit log's readers (api/audit.h, api/audit.md): audit_verify walks the chain and
 * names the first line that breaks it; audit_show prints each event for people. Both read
 * a file that may have been tampered with: a line is read up to AUDIT_LINE_MAX bytes, and
 * what show prints of a string never holds a control character. */
#include "api/audit_int.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

enum line_status {
	LINE_END,   /* no more lines */
	LINE_WHOLE, /* a line and its "\n" */
	LINE_CUT,   /* the last line, without "\n" */
	LINE_LONG,  /* a line over AUDIT_LINE_MAX (skipped to its end) */
};

/* The next line into buf[AUDIT_LINE_MAX] (without "\n"): a line_status, or a negative
 * errno. Byte by byte, so that a NUL byte is read like any other. */
static int read_line(FILE *in, char *buf, size_t *len)
{
	size_t n = 0;
	int c;

	errno = 0;
	while ((c = getc(in)) != EOF && c != '\n') {
		if (n == AUDIT_LINE_MAX) {
			while ((c = getc(in)) != EOF && c != '\n')
				;
			if (ferror(in))
				break;
			return LINE_LONG;
		}
		buf[n++] = (char)c;
	}
	if (ferror(in))
		return errno ? -errno : -EIO;
	*len = n;
	if (c == '\n')
		return LINE_WHOLE;
	return n ? LINE_CUT : LINE_END;
}

/* A line read and checked as the writer writes it; NULL with why[AUDIT_REASON_MAX]. */
static json_t *read_event(int status, const char *buf, size_t len, char *why)
{
	json_t *obj;

	if (status == LINE_LONG) {
		snprintf(why, AUDIT_REASON_MAX, "over %d bytes", AUDIT_LINE_MAX);
		return NULL;
	}
	obj = audit_parse(buf, len, AUDIT_LINE_MAX, why);
	if (obj && audit_check(obj, true, why) < 0) {
		json_decref(obj);
		return NULL;
	}
	return obj;
}

static const char *member(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

static int64_t number(const json_t *obj, const char *key)
{
	return json_integer_value(json_object_get(obj, key));
}

/* ---- verify ---- */

struct chain {
	uint64_t lines;
	char hash[AUDIT_HASH_HEX + 1]; /* the last line's */
	char ts[AUDIT_TS_LEN + 1];
	bool stopped; /* the last event is a stop */
};

/* Line n against the chain so far; 0, or -1 with why. */
static int check_link(const struct chain *c, const json_t *obj, char *why)
{
	uint64_t n = c->lines + 1, seq = (uint64_t)number(obj, "seq");

	if (seq != n) {
		snprintf(why, AUDIT_REASON_MAX, "seq is %" PRIu64 ", expected %" PRIu64 " (%s)",
			 seq, n,
			 seq > n ? "lines before it removed or moved" : "a line copied or moved");
		return -1;
	}
	if (strcmp(member(obj, "prev"), c->hash) != 0) {
		if (n == 1)
			snprintf(why, AUDIT_REASON_MAX,
				 "prev is not 64 zeros, as the first line's must be");
		else
			snprintf(why, AUDIT_REASON_MAX,
				 "prev does not match the hash of line %" PRIu64
				 " (edited or removed line)",
				 n - 1);
		return -1;
	}
	if (strcmp(member(obj, "ts"), c->ts) < 0) {
		snprintf(why, AUDIT_REASON_MAX,
			 "ts %s is before line %" PRIu64 "'s %s (edited or moved line)",
			 member(obj, "ts"), n - 1, c->ts);
		return -1;
	}
	return 0;
}

int audit_verify(FILE *in, FILE *report)
{
	struct chain c = {.lines = 0};
	char why[AUDIT_REASON_MAX], *buf = malloc(AUDIT_LINE_MAX);
	int status, ret = 0;
	size_t len = 0;

	if (!buf)
		return -ENOMEM;
	memset(c.hash, '0', AUDIT_HASH_HEX);
	while ((status = read_line(in, buf, &len)) > LINE_END) {
		json_t *obj = NULL;

		if (status == LINE_CUT)
			snprintf(why, AUDIT_REASON_MAX,
				 "cut short: no newline at its end (the log was cut while being "
				 "written, or cut since)");
		else
			obj = read_event(status, buf, len, why);
		if (!obj || check_link(&c, obj, why) < 0) {
			fprintf(report, "line %" PRIu64 ": %s\n", c.lines + 1, why);
			json_decref(obj);
			ret = 1;
			break;
		}
		c.lines++;
		audit_hash(buf, len, c.hash);
		memcpy(c.ts, member(obj, "ts"), sizeof(c.ts));
		c.stopped = strcmp(member(obj, "event"), "stop") == 0;
		json_decref(obj);
	}
	free(buf);
	if (status < 0)
		return status;
	if (ret == 0 && c.lines == 0)
		fprintf(report, "intact: the log is empty\n");
	else if (ret == 0)
		fprintf(report, "intact: %" PRIu64 " lines, the last one's hash %s\n", c.lines,
			c.hash);
	if (ret == 0 && c.lines > 0 && !c.stopped)
		fprintf(report, "note: the log ends without a stop event: the sandbox is running "
				"or the log was cut\n");
	return ferror(report) ? -EIO : ret;
}

/* ---- show ---- */

/* The code point of the (valid: jansson checked it) UTF-8 character at s, and its length. */
static uint32_t decode(const unsigned char *s, size_t *n)
{
	if (s[0] < 0x80) {
		*n = 1;
		return s[0];
	}
	if (s[0] < 0xe0) {
		*n = 2;
		return (uint32_t)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
	}
	if (s[0] < 0xf0) {
		*n = 3;
		return (uint32_t)(s[0] & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
	}
	*n = 4;
	return (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3f) << 12 |
	       (uint32_t)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
}

/* Characters a terminal acts on or that reorder or break what follows them: C0 and C1
 * controls, DEL, the line and paragraph separators and the bidirectional overrides. */
static bool unsafe(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0x2028 && cp <= 0x202e) ||
	       (cp >= 0x2066 && cp <= 0x2069);
}

/* A string from the log, each unsafe character written as \xNN or \uNNNN and a backslash
 * as "\\"; in double quotes (with \" inside) when `quoted`. */
static void put_text(FILE *out, const char *s, bool quoted)
{
	const unsigned char *p = (const unsigned char *)s;

	if (quoted)
		putc('"', out);
	for (size_t n; *p; p += n) {
		uint32_t cp = decode(p, &n);

		if (cp == '\\' || (quoted && cp == '"'))
			fprintf(out, "\\%c", (char)cp);
		else if (unsafe(cp))
			fprintf(out, cp < 0x80 ? "\\x%02" PRIx32 : "\\u%04" PRIx32, cp);
		else
			fwrite(p, 1, n, out);
	}
	if (quoted)
		putc('"', out);
}

/* An argument as a person would type it: quoted when empty or holding a blank or a quote. */
static void put_arg(FILE *out, const char *s)
{
	put_text(out, s, !*s || strpbrk(s, " \t\"'"));
}

/* host:port, with [host] when the host holds a colon (an IPv6 address). */
static void put_host_port(FILE *out, const char *host, int64_t port)
{
	bool v6 = strchr(host, ':');

	fputs(v6 ? "[" : "", out);
	put_text(out, host, false);
	fprintf(out, "%s:%" PRId64, v6 ? "]" : "", port);
}

static void show_start(FILE *out, const json_t *obj)
{
	const json_t *shares = json_object_get(obj, "shares"), *share;
	int64_t cpus = number(obj, "cpus");
	size_t i;

	put_text(out, member(obj, "name"), false);
	fprintf(out, ", %" PRId64 " cpu%s, %" PRId64 " MiB, ", cpus, cpus == 1 ? "" : "s",
		number(obj, "memory_mib"));
	fputs(json_array_size(shares) ? "shares: " : "no shares", out);
	json_array_foreach(shares, i, share)
	{
		fputs(i ? ", " : "", out);
		put_text(out, member(share, "host"), false);
		fputs(" -> ", out);
		put_text(out, member(share, "guest"), false);
		fputs(json_is_true(json_object_get(share, "read_only")) ? " (ro)" : "", out);
	}
}

static void show_exec(FILE *out, const json_t *obj)
{
	const json_t *argv = json_object_get(obj, "argv"), *arg;
	size_t i;

	putc('[', out);
	json_array_foreach(argv, i, arg)
	{
		fputs(i ? " " : "", out);
		put_arg(out, json_string_value(arg));
	}
	fputs("] -> ", out);
	if (json_object_get(obj, "signal")) {
		int signo = (int)number(obj, "signal");
		const char *abbrev = sigabbrev_np(signo);

		if (abbrev)
			fprintf(out, "SIG%s", abbrev);
		else
			fprintf(out, "signal %d", signo);
	} else {
		fprintf(out, "%" PRId64, number(obj, "status"));
	}
	fprintf(out, " (%" PRId64 " ms)", number(obj, "duration_ms"));
}

static void show_egress(FILE *out, const json_t *obj)
{
	bool allowed = strcmp(member(obj, "decision"), "allowed") == 0;

	fprintf(out, "%-7s ", member(obj, "decision"));
	put_host_port(out, member(obj, "host"), number(obj, "port"));
	if (member(obj, "addr")) {
		fputs(" at ", out);
		put_text(out, member(obj, "addr"), false);
	}
	if (allowed)
		fprintf(out, ", %" PRId64 " B up, %" PRId64 " B down, %" PRId64 " ms",
			number(obj, "bytes_up"), number(obj, "bytes_down"),
			number(obj, "duration_ms"));
	if (member(obj, "reason")) {
		fputs(" (", out);
		put_text(out, member(obj, "reason"), false);
		putc(')', out);
	}
}

/* "+a.example.com:80,443 -x.example.com:* (rules now: 3, connections closed: 1, by uid 0)". */
static void show_policy(FILE *out, const json_t *obj)
{
	static const char *const keys[] = {"allowed", "revoked"};
	const json_t *rule;
	size_t i;
	bool first = true;

	for (int k = 0; k < 2; k++) {
		json_array_foreach(json_object_get(obj, keys[k]), i, rule)
		{
			fputs(first ? (k ? "-" : "+") : (k ? " -" : " +"), out);
			put_text(out, json_string_value(rule), false);
			first = false;
		}
	}
	fprintf(out,
		"%s(rules now: %" PRId64 ", connections closed: %" PRId64 ", by uid %" PRId64 ")",
		first ? "" : " ", number(obj, "rules"), number(obj, "closed"), number(obj, "uid"));
}

/* One event: "18:52:19.123  exec     [echo hi] -> 0 (12 ms)". */
static void show_event(FILE *out, const json_t *obj)
{
	const char *event = member(obj, "event");

	fprintf(out, "%.12s  %-8s ", member(obj, "ts") + 11, event);
	if (strcmp(event, "start") == 0) {
		show_start(out, obj);
	} else if (strcmp(event, "stop") == 0) {
		put_text(out, member(obj, "reason"), false);
		fprintf(out, ", status %" PRId64, number(obj, "status"));
	} else if (strcmp(event, "exec") == 0) {
		show_exec(out, obj);
	} else if (strcmp(event, "egress") == 0) {
		show_egress(out, obj);
	} else if (strcmp(event, "secret") == 0) {
		put_text(out, member(obj, "name"), false);
		fputs(" for ", out);
		put_text(out, member(obj, "host"), false);
	} else if (strcmp(event, "policy") == 0) {
		show_policy(out, obj);
	} else if (strcmp(event, "lost") == 0) {
		fprintf(out,
			"%" PRId64 " events of this source were never logged (its socket was full)",
			number(obj, "count"));
	} else if (strcmp(event, "file") == 0) {
		fprintf(out, "%-8s ", member(obj, "op"));
		put_text(out, member(obj, "path"), false);
		if (member(obj, "to")) {
			fputs(" -> ", out);
			put_text(out, member(obj, "to"), false);
		}
	}
	fputs(json_is_true(json_object_get(obj, "cut")) ? " (cut)\n" : "\n", out);
}

int audit_show(FILE *in, FILE *out)
{
	char why[AUDIT_REASON_MAX], date[11] = "", *buf = malloc(AUDIT_LINE_MAX);
	int status, ret = 0;
	uint64_t n = 0;
	size_t len = 0;

	if (!buf)
		return -ENOMEM;
	while ((status = read_line(in, buf, &len)) > LINE_END) {
		json_t *obj = read_event(status, buf, len, why);

		n++;
		if (!obj) {
			fprintf(out, "line %" PRIu64 ": cannot be read: %s\n", n, why);
			ret = 1;
			continue;
		}
		if (strncmp(member(obj, "ts"), date, 10) != 0) {
			memcpy(date, member(obj, "ts"), 10);
			fprintf(out, "%s (UTC)\n", date);
		}
		show_event(out, obj);
		json_decref(obj);
	}
	free(buf);
	if (status < 0)
		return status;
	return ferror(out) ? -EIO : ret;
}

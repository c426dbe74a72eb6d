/* The audit log's writer and the builders of its events (api/audit.h, api/audit.md). The
 * writer holds the only open of a log (flock) and appends each event as one line, with one
 * write(2), after checking the sender's text against the event's fields (audit_schema.c);
 * what it writes is its own serialisation of that text, never the text itself. */
#include "api/audit_int.h"
#include "api/json_text.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- builders ---- */

/* What an event's text may take, less room for its keys, numbers and punctuation (at most
 * a few hundred bytes in any event), so that a built event always fits AUDIT_EVENT_MAX. */
#define EVENT_BUDGET (AUDIT_EVENT_MAX - 1024)
/* The room an array item takes besides its strings (a comma; a share's keys), counted
 * before it is added. */
#define ITEM_COST  8
#define SHARE_COST 48

struct budget {
	size_t left;
	bool cut; /* something was shortened or left out: the event says "cut": true */
};

/* How many bytes of JSON text the byte c takes in a string, at most. */
static size_t escaped_width(unsigned char c)
{
	if (c == '"' || c == '\\')
		return 2;
	return c < 0x20 || c == 0x7f ? 6 : 1;
}

/* s as a JSON string (null for NULL) of at most AUDIT_STRING_CUT bytes of text and what the
 * budget has left, cut at a character's start; NULL when memory runs out. */
static json_t *cut_string(struct budget *b, const char *s)
{
	size_t cap = b->left < AUDIT_STRING_CUT ? b->left : AUDIT_STRING_CUT;
	json_t *v = jtext_string(s), *shorter;
	size_t used = 2, n, i; /* the quotes */
	const char *text;

	if (!v || json_is_null(v))
		return v;
	text = json_string_value(v);
	n = json_string_length(v);
	for (i = 0; i < n && used + escaped_width((unsigned char)text[i]) <= cap; i++)
		used += escaped_width((unsigned char)text[i]);
	if (i < n) {
		b->cut = true;
		while (i > 0 && ((unsigned char)text[i] & 0xc0) == 0x80)
			used -= escaped_width((unsigned char)text[--i]);
		shorter = json_stringn(text, i);
		json_decref(v);
		v = shorter;
	}
	b->left -= used <= b->left ? used : b->left;
	return v;
}

/* Whether an array item of `cost` bytes (and more than its strings) still fits; when not,
 * the items from here on are left out. */
static bool take(struct budget *b, size_t cost)
{
	if (b->left < cost + ITEM_COST) {
		b->cut = true;
		return false;
	}
	b->left -= cost;
	return true;
}

static json_int_t clamp(uint64_t v)
{
	return v > INT64_MAX ? INT64_MAX : (json_int_t)v;
}

static char *invalid(void)
{
	errno = EINVAL;
	return NULL;
}

/* The event's text; takes obj. */
static char *finish(json_t *obj, const struct budget *b)
{
	char *text;

	if (obj && b->cut && json_object_set_new(obj, "cut", json_true()) < 0) {
		json_decref(obj);
		obj = NULL;
	}
	text = jtext_dump(obj, false);
	if (!text)
		errno = ENOMEM;
	return text;
}

char *audit_event_start(const char *name, unsigned cpus, uint64_t memory_mib,
			const struct audit_share *shares, size_t nshares)
{
	struct budget b = {EVENT_BUDGET, false};
	json_t *obj, *list;

	if (!name || (nshares && !shares))
		return invalid();
	for (size_t i = 0; i < nshares; i++) {
		if (!shares[i].host || !shares[i].guest)
			return invalid();
	}
	obj = json_pack("{ss so sI sI s[]}", "event", "start", "name", cut_string(&b, name), "cpus",
			(json_int_t)cpus, "memory_mib", clamp(memory_mib), "shares");
	list = json_object_get(obj, "shares");
	for (size_t i = 0; obj && i < nshares && take(&b, SHARE_COST); i++) {
		if (json_array_append_new(list, json_pack("{so so sb}", "host",
							  cut_string(&b, shares[i].host), "guest",
							  cut_string(&b, shares[i].guest),
							  "read_only", shares[i].read_only)) < 0) {
			json_decref(obj);
			obj = NULL;
		}
	}
	return finish(obj, &b);
}

char *audit_event_stop(const char *reason, int status)
{
	struct budget b = {EVENT_BUDGET, false};

	if (!reason)
		return invalid();
	return finish(json_pack("{ss so si}", "event", "stop", "reason", cut_string(&b, reason),
				"status", status),
		      &b);
}

char *audit_event_exec(const char *const *argv, int status, int signal, uint64_t duration_ms)
{
	struct budget b = {EVENT_BUDGET, false};
	json_t *obj, *list;

	if (!argv || !argv[0] || signal < 0 || signal > 64 ||
	    (signal == 0 && (status < 0 || status > 255)))
		return invalid();
	obj = json_pack("{ss s[]}", "event", "exec", "argv");
	list = json_object_get(obj, "argv");
	for (size_t i = 0; obj && argv[i] && take(&b, ITEM_COST); i++) {
		if (json_array_append_new(list, cut_string(&b, argv[i])) < 0) {
			json_decref(obj);
			obj = NULL;
		}
	}
	if (obj && json_object_set_new(obj, signal ? "signal" : "status",
				       json_integer(signal ? signal : status)) < 0) {
		json_decref(obj);
		obj = NULL;
	}
	if (obj && json_object_set_new(obj, "duration_ms", json_integer(clamp(duration_ms))) < 0) {
		json_decref(obj);
		obj = NULL;
	}
	return finish(obj, &b);
}

char *audit_event_egress(const struct audit_egress *e)
{
	struct budget b = {EVENT_BUDGET, false};

	if (!e || !e->host)
		return invalid();
	return finish(
	    json_pack("{ss so sI so ss so sI sI sI}", "event", "egress", "host",
		      cut_string(&b, e->host), "port", (json_int_t)e->port, "addr",
		      cut_string(&b, e->addr), "decision", e->allowed ? "allowed" : "denied",
		      "reason", cut_string(&b, e->reason), "bytes_up", clamp(e->bytes_up),
		      "bytes_down", clamp(e->bytes_down), "duration_ms", clamp(e->duration_ms)),
	    &b);
}

char *audit_event_secret(const char *name, const char *host)
{
	struct budget b = {EVENT_BUDGET, false};

	if (!name || !host)
		return invalid();
	return finish(json_pack("{ss so so}", "event", "secret", "name", cut_string(&b, name),
				"host", cut_string(&b, host)),
		      &b);
}

char *audit_event_file(enum audit_file_op op, const char *path, const char *to)
{
	static const char *const ops[] = {
	    [AUDIT_FILE_CREATED] = "created",
	    [AUDIT_FILE_WRITTEN] = "written",
	    [AUDIT_FILE_RENAMED] = "renamed",
	    [AUDIT_FILE_DELETED] = "deleted",
	};
	struct budget b = {EVENT_BUDGET, false};
	json_t *obj;

	if ((unsigned)op > AUDIT_FILE_DELETED || !path || (op == AUDIT_FILE_RENAMED) != !!to)
		return invalid();
	obj = json_pack("{ss ss so}", "event", "file", "op", ops[op], "path", cut_string(&b, path));
	if (obj && to && json_object_set_new(obj, "to", cut_string(&b, to)) < 0) {
		json_decref(obj);
		obj = NULL;
	}
	return finish(obj, &b);
}

/* obj[key] = the strings (NULL-terminated), unless there are none; obj NULL on failure. */
static json_t *put_strings(json_t *obj, struct budget *b, const char *key, const char *const *strs)
{
	json_t *list;

	if (!obj || !strs || !strs[0])
		return obj;
	list = json_array();
	for (size_t i = 0; list && strs[i] && take(b, ITEM_COST); i++) {
		if (json_array_append_new(list, cut_string(b, strs[i])) < 0) {
			json_decref(list);
			list = NULL;
		}
	}
	if (!list || json_object_set_new(obj, key, list) < 0) {
		json_decref(obj);
		return NULL;
	}
	return obj;
}

char *audit_event_policy(const char *const *allowed, const char *const *revoked, unsigned rules,
			 unsigned closed, uint64_t uid)
{
	struct budget b = {EVENT_BUDGET, false};
	json_t *obj = json_pack("{ss}", "event", "policy");

	obj = put_strings(obj, &b, "allowed", allowed);
	obj = put_strings(obj, &b, "revoked", revoked);
	if (obj && (json_object_set_new(obj, "rules", json_integer(rules)) < 0 ||
		    json_object_set_new(obj, "closed", json_integer(closed)) < 0 ||
		    json_object_set_new(obj, "uid", json_integer(clamp(uid))) < 0)) {
		json_decref(obj);
		obj = NULL;
	}
	return finish(obj, &b);
}

char *audit_event_lost(uint64_t count)
{
	struct budget b = {EVENT_BUDGET, false};

	if (count == 0)
		return invalid();
	return finish(json_pack("{ss sI}", "event", "lost", "count", clamp(count)), &b);
}

/* ---- the writer ---- */

struct audit_log {
	int fd;
	uint64_t seq;		       /* the last line's; 0 for an empty log */
	char prev[AUDIT_HASH_HEX + 1]; /* the last line's hash */
	char ts[AUDIT_TS_LEN + 1];     /* the last line's ts, "" for an empty log */
	bool broken;		       /* a cut-short line could not be cut off */
	char reason[AUDIT_REASON_MAX];
};

__attribute__((format(printf, 3, 4))) static void say(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!buf || len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

static int pread_all(int fd, char *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, buf + done, len - done, off + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += (size_t)n;
	}
	return 0;
}

/* Takes up the chain from the last line of a log of `size` bytes. */
static int resume(struct audit_log *log, off_t size, char *why)
{
	/* The last line, its "\n", and the "\n" before it. */
	size_t window = (uint64_t)size < AUDIT_LINE_MAX + 2 ? (size_t)size : AUDIT_LINE_MAX + 2;
	size_t start = window - 1, len;
	char *buf = malloc(window);
	json_t *obj = NULL;
	int ret;

	if (!buf) {
		snprintf(why, AUDIT_REASON_MAX, "out of memory");
		return -ENOMEM;
	}
	ret = pread_all(log->fd, buf, window, size - (off_t)window);
	if (ret < 0) {
		snprintf(why, AUDIT_REASON_MAX, "read: %s", strerror(-ret));
		goto out;
	}
	ret = -EINVAL;
	if (buf[window - 1] != '\n') {
		snprintf(why, AUDIT_REASON_MAX,
			 "its last line is cut short (no newline at its end)");
		goto out;
	}
	while (start > 0 && buf[start - 1] != '\n')
		start--;
	len = window - 1 - start;
	if (len > AUDIT_LINE_MAX || (start == 0 && window < (uint64_t)size)) {
		snprintf(why, AUDIT_REASON_MAX, "its last line is over %d bytes", AUDIT_LINE_MAX);
		goto out;
	}
	obj = audit_parse(buf + start, len, AUDIT_LINE_MAX, why);
	if (!obj || audit_check(obj, true, why) < 0)
		goto out;
	log->seq = (uint64_t)json_integer_value(json_object_get(obj, "seq"));
	snprintf(log->ts, sizeof(log->ts), "%s", json_string_value(json_object_get(obj, "ts")));
	audit_hash(buf + start, len, log->prev);
	ret = 0;
out:
	json_decref(obj);
	free(buf);
	return ret;
}

struct audit_log *audit_open(const char *path, char *err, size_t errlen)
{
	struct audit_log *log = calloc(1, sizeof(*log));
	char why[AUDIT_REASON_MAX];
	struct stat st;
	int ret;

	if (!log) {
		say(err, errlen, "audit log `%s`: out of memory", path);
		errno = ENOMEM;
		return NULL;
	}
	memset(log->prev, '0', AUDIT_HASH_HEX);
	/* O_NOFOLLOW: the log is a file of its own, never a link put where it should be. */
	log->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (log->fd < 0) {
		ret = -errno;
		say(err, errlen, "open audit log `%s`: %s", path, strerror(-ret));
		goto err;
	}
	if (flock(log->fd, LOCK_EX | LOCK_NB) < 0) {
		ret = -errno;
		say(err, errlen, "audit log `%s`: %s", path,
		    ret == -EWOULDBLOCK ? "another writer has it open" : strerror(-ret));
		goto err;
	}
	if (fstat(log->fd, &st) < 0) {
		ret = -errno;
		say(err, errlen, "audit log `%s`: %s", path, strerror(-ret));
		goto err;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -EINVAL;
		say(err, errlen, "audit log `%s`: not a regular file", path);
		goto err;
	}
	if (st.st_size > 0) {
		ret = resume(log, st.st_size, why);
		if (ret < 0) {
			say(err, errlen, "audit log `%s` cannot be resumed: %s", path, why);
			goto err;
		}
	}
	return log;
err:
	if (log->fd >= 0)
		close(log->fd);
	free(log);
	errno = -ret;
	return NULL;
}

__attribute__((format(printf, 3, 4))) static int refuse(struct audit_log *log, int ret,
							const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(log->reason, sizeof(log->reason), fmt, ap);
	va_end(ap);
	return ret;
}

/* Now as a line's ts; never before the last line's, so that a clock set back does not make
 * the log look tampered with (the time then stands still until the clock catches up). */
static void stamp(const struct audit_log *log, char ts[AUDIT_TS_LEN + 1])
{
	struct timespec now;
	char date[32];
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	if (strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) != AUDIT_TS_LEN - 5)
		snprintf(date, sizeof(date), "9999-12-31T23:59:59"); /* a clock gone mad */
	snprintf(ts, AUDIT_TS_LEN + 1, "%.19s.%03uZ", date,
		 (unsigned)(now.tv_nsec / 1000000) % 1000u);
	if (strcmp(ts, log->ts) < 0)
		memcpy(ts, log->ts, AUDIT_TS_LEN + 1);
}

/* The line for a checked event: the chain keys, then the event's members in the order
 * audit_member gives; "\n"-terminated text, or NULL when memory runs out. */
static char *build_line(const struct audit_log *log, const char *src, const json_t *event,
			const char ts[AUDIT_TS_LEN + 1])
{
	const char *name = json_string_value(json_object_get(event, "event")), *member;
	json_t *line = json_pack("{sI ss ss ss ss}", "seq", (json_int_t)(log->seq + 1), "ts", ts,
				 "prev", log->prev, "src", src, "event", name);

	for (size_t i = 0; line && (member = audit_member(name, i)); i++) {
		json_t *v = json_object_get(event, member);

		if (v && json_object_set(line, member, v) < 0) {
			json_decref(line);
			line = NULL;
		}
	}
	return jtext_dump(line, true);
}

/* One write(2) of the whole line; a line written in part is cut off again. */
static int write_line(struct audit_log *log, const char *text, size_t len)
{
	struct stat st;
	ssize_t n;
	int ret;

	if (fstat(log->fd, &st) < 0)
		return refuse(log, -errno, "stat: %s", strerror(errno));
	do {
		n = write(log->fd, text, len);
	} while (n < 0 && errno == EINTR);
	if (n == (ssize_t)len)
		return 0;
	ret = n < 0 ? -errno : -EIO;
	if (n > 0 && ftruncate(log->fd, st.st_size) < 0) {
		log->broken = true;
		return refuse(log, ret,
			      "write: %zd of %zu bytes, and the part could not be cut off", n, len);
	}
	if (n >= 0)
		return refuse(log, ret, "write: %zd of %zu bytes (cut off again)", n, len);
	return refuse(log, ret, "write: %s", strerror(-ret));
}

int audit_append(struct audit_log *log, const char *src, const char *event_json, size_t len)
{
	char why[AUDIT_REASON_MAX], ts[AUDIT_TS_LEN + 1], *text;
	json_t *event;
	size_t text_len;
	int ret;

	log->reason[0] = '\0';
	if (log->broken)
		return refuse(log, -EIO, "the log ends in a cut-short line (an earlier write)");
	if (!src || !audit_src_ok(src))
		return refuse(log, -EINVAL, "src must be 1 to %d of a-z, 0-9, _ and -",
			      AUDIT_SRC_MAX);
	if (!event_json)
		return refuse(log, -EINVAL, "no event");
	if (len > AUDIT_EVENT_MAX)
		return refuse(log, -EMSGSIZE, "event over %d bytes", AUDIT_EVENT_MAX);
	if (log->seq >= INT64_MAX)
		return refuse(log, -EOVERFLOW, "seq is at its end");
	event = audit_parse(event_json, len, AUDIT_EVENT_MAX, why);
	if (!event)
		return refuse(log, -EINVAL, "event %s", why);
	if (audit_check(event, false, why) < 0) {
		json_decref(event);
		return refuse(log, -EINVAL, "%s", why);
	}
	stamp(log, ts);
	text = build_line(log, src, event, ts);
	json_decref(event);
	if (!text)
		return refuse(log, -ENOMEM, "out of memory");
	text_len = strlen(text);
	/* Never longer than the sender's text and the chain keys, but the readers refuse a
	 * line past AUDIT_LINE_MAX: it must not be written. */
	ret = text_len - 1 > AUDIT_LINE_MAX
		  ? refuse(log, -EMSGSIZE, "line over %d bytes", AUDIT_LINE_MAX)
		  : write_line(log, text, text_len);
	if (ret == 0) {
		log->seq++;
		audit_hash(text, text_len - 1, log->prev);
		memcpy(log->ts, ts, sizeof(log->ts));
	}
	free(text);
	return ret;
}

const char *audit_reason(const struct audit_log *log)
{
	return log->reason;
}

void audit_head(const struct audit_log *log, uint64_t *seq, char hash[AUDIT_HASH_HEX + 1])
{
	*seq = log->seq;
	memcpy(hash, log->prev, AUDIT_HASH_HEX + 1);
}

void audit_close(struct audit_log *log)
{
	if (!log)
		return;
	close(log->fd);
	free(log);
}

int audit_fd(const struct audit_log *log)
{
	return log->fd;
}

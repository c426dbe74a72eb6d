/* The audit log's events as tables of fields (api/audit.md), and the one check that both
 * the writer (an untrusted sender's event) and the readers (a line of a log) apply. */
#include "api/audit_int.h"
#include "api/json_text.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
/* How much of a sender's name (an unknown key or event) a reason quotes. */
#define NAME_QUOTE_MAX 32

enum kind {
	K_STRING,      /* a string */
	K_STRING_NULL, /* a string or null */
	K_INT,	       /* a whole number from min to max */
	K_BOOL,	       /* true or false */
	K_ONE_OF,      /* one of the strings in one_of */
	K_STRINGS,     /* a non-empty array of strings */
	K_OBJECTS,     /* an array of objects, each checked against sub */
};

struct field {
	const char *name;
	enum kind kind;
	bool required;
	int64_t min, max;
	const char *const *one_of;
	const struct field *sub;
	size_t nsub;
};

#define STRING(name)                                                                               \
	{                                                                                          \
		name, K_STRING, true, 0, 0, NULL, NULL, 0                                          \
	}
#define STRING_NULL(name)                                                                          \
	{                                                                                          \
		name, K_STRING_NULL, true, 0, 0, NULL, NULL, 0                                     \
	}
#define INT(name, min, max)                                                                        \
	{                                                                                          \
		name, K_INT, true, min, max, NULL, NULL, 0                                         \
	}
#define OPTIONAL_INT(name, min, max)                                                               \
	{                                                                                          \
		name, K_INT, false, min, max, NULL, NULL, 0                                        \
	}
#define ONE_OF(name, list)                                                                         \
	{                                                                                          \
		name, K_ONE_OF, true, 0, 0, list, NULL, 0                                          \
	}

static const char *const decisions[] = {"allowed", "denied", NULL};
/* What audit_event_file writes for each enum audit_file_op. */
static const char *const file_ops[] = {"created", "written", "renamed", "deleted", NULL};

static const struct field share_fields[] = {
    STRING("host"),
    STRING("guest"),
    {"read_only", K_BOOL, true, 0, 0, NULL, NULL, 0},
};
static const struct field start_fields[] = {
    STRING("name"),
    INT("cpus", 0, UINT32_MAX),
    INT("memory_mib", 0, INT64_MAX),
    {"shares", K_OBJECTS, true, 0, 0, NULL, share_fields, ARRAY_LEN(share_fields)},
};
static const struct field stop_fields[] = {
    STRING("reason"),
    INT("status", INT32_MIN, INT32_MAX),
};
static const struct field exec_fields[] = {
    {"argv", K_STRINGS, true, 0, 0, NULL, NULL, 0},
    OPTIONAL_INT("status", 0, 255),
    OPTIONAL_INT("signal", 1, 64),
    INT("duration_ms", 0, INT64_MAX),
};
static const struct field egress_fields[] = {
    STRING("host"),
    INT("port", 0, 65535),
    STRING_NULL("addr"),
    ONE_OF("decision", decisions),
    STRING_NULL("reason"),
    INT("bytes_up", 0, INT64_MAX),
    INT("bytes_down", 0, INT64_MAX),
    INT("duration_ms", 0, INT64_MAX),
};
static const struct field secret_fields[] = {
    STRING("name"),
    STRING("host"),
};
static const struct field file_fields[] = {
    ONE_OF("op", file_ops),
    STRING("path"),
    {"to", K_STRING, false, 0, 0, NULL, NULL, 0},
};

static const struct field policy_fields[] = {
    {"allowed", K_STRINGS, false, 0, 0, NULL, NULL, 0},
    {"revoked", K_STRINGS, false, 0, 0, NULL, NULL, 0},
    INT("rules", 0, UINT32_MAX),
    INT("closed", 0, UINT32_MAX),
    INT("uid", 0, UINT32_MAX),
};
static const struct field lost_fields[] = {
    INT("count", 1, INT64_MAX),
};

/* Every event may end with "cut": true, set by a builder that had to shorten it. */
static const struct field cut_field = {"cut", K_BOOL, false, 0, 0, NULL, NULL, 0};

struct event_spec {
	const char *name;
	const struct field *fields;
	size_t nfields;
	/* What one field's type cannot say; NULL when nothing. */
	const char *(*rule)(const json_t *obj);
};

static const char *exec_rule(const json_t *obj)
{
	if (!json_object_get(obj, "status") == !json_object_get(obj, "signal"))
		return "exactly one of status and signal must be given";
	return NULL;
}

static const char *file_rule(const json_t *obj)
{
	bool renamed = strcmp(json_string_value(json_object_get(obj, "op")), "renamed") == 0;

	if (renamed && !json_object_get(obj, "to"))
		return "a rename needs `to`";
	if (!renamed && json_object_get(obj, "to"))
		return "`to` is given for a rename only";
	return NULL;
}

#define EVENT(name, fields, rule)                                                                  \
	{                                                                                          \
		name, fields, ARRAY_LEN(fields), rule                                              \
	}
static const struct event_spec events[] = {
    EVENT("start", start_fields, NULL),	   EVENT("stop", stop_fields, NULL),
    EVENT("exec", exec_fields, exec_rule), EVENT("egress", egress_fields, NULL),
    EVENT("secret", secret_fields, NULL),  EVENT("file", file_fields, file_rule),
    EVENT("policy", policy_fields, NULL),  EVENT("lost", lost_fields, NULL),
};

/* The keys the writer stamps, in the order a line starts with them (then "event"). */
static const char *const chain_keys[] = {"seq", "ts", "prev", "src"};

/* A reason, with every byte that is not printable ASCII made '?': a reason is logged and
 * shown, and a sender's bytes in it must not start a new line or move a terminal's cursor. */
__attribute__((format(printf, 2, 3))) static int fail(char *why, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, AUDIT_REASON_MAX, fmt, ap);
	va_end(ap);
	for (char *p = why; *p; p++) {
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?';
	}
	return -1;
}

/* A sender's name for a reason: at most NAME_QUOTE_MAX bytes, "..." when cut. */
static const char *quote(const char *s, char buf[NAME_QUOTE_MAX + 4])
{
	snprintf(buf, NAME_QUOTE_MAX + 4, "%.*s%s", NAME_QUOTE_MAX, s,
		 strlen(s) > NAME_QUOTE_MAX ? "..." : "");
	return buf;
}

/* Whether the text nests objects and arrays deeper than AUDIT_DEPTH_MAX, told before
 * jansson parses it (whose own limit is 2048). Brackets inside strings do not count. */
static bool too_deep(const char *text, size_t len)
{
	bool in_string = false;
	unsigned depth = 0;

	for (size_t i = 0; i < len; i++) {
		char c = text[i];

		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
		} else if (c == '"') {
			in_string = true;
		} else if (c == '{' || c == '[') {
			if (++depth > AUDIT_DEPTH_MAX)
				return true;
		} else if ((c == '}' || c == ']') && depth > 0) {
			depth--;
		}
	}
	return false;
}

json_t *audit_parse(const char *text, size_t len, size_t max, char *why)
{
	json_error_t jerr;
	json_t *obj;

	if (len > max) {
		fail(why, "over %zu bytes", max);
		return NULL;
	}
	if (memchr(text, '\0', len)) {
		fail(why, "contains a NUL byte");
		return NULL;
	}
	if (too_deep(text, len)) {
		fail(why, "nested deeper than %d", AUDIT_DEPTH_MAX);
		return NULL;
	}
	obj = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
	if (!obj) {
		fail(why, "not JSON: %s (at byte %d)", jerr.text, jerr.position);
		return NULL;
	}
	if (!json_is_object(obj)) {
		fail(why, "not a JSON object but %s", jtext_type_name(obj));
		json_decref(obj);
		return NULL;
	}
	return obj;
}

static int check_field(const char *what, const struct field *f, const json_t *v, char *why);

/* Whether a key is one that audit_check looks at before an event's fields. */
static bool stamped(const char *key)
{
	for (size_t i = 0; i < ARRAY_LEN(chain_keys); i++) {
		if (strcmp(key, chain_keys[i]) == 0)
			return true;
	}
	return strcmp(key, "event") == 0;
}

/* The members of obj against fields; `what` names obj in a reason ("exec", "start:
 * shares[2]"). An event's own object (`top`) may also hold "cut", and its stamped keys
 * (checked before) are passed over. */
static int check_fields(const char *what, const struct field *fields, size_t nfields, bool top,
			const json_t *obj, char *why)
{
	char qbuf[NAME_QUOTE_MAX + 4];
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)obj, key, v)
	{
		const struct field *f = NULL;

		if (top && stamped(key))
			continue;
		for (size_t i = 0; i < nfields && !f; i++) {
			if (strcmp(key, fields[i].name) == 0)
				f = &fields[i];
		}
		if (!f && top && strcmp(key, cut_field.name) == 0) {
			if (!json_is_true(v))
				return fail(why, "%s: cut is true or left out", what);
			continue;
		}
		if (!f)
			return fail(why, "%s: unknown field `%s`", what, quote(key, qbuf));
		if (check_field(what, f, v, why) < 0)
			return -1;
	}
	for (size_t i = 0; i < nfields; i++) {
		if (fields[i].required && !json_object_get(obj, fields[i].name))
			return fail(why, "%s: missing field `%s`", what, fields[i].name);
	}
	return 0;
}

static int check_field(const char *what, const struct field *f, const json_t *v, char *why)
{
	char item[64], list[64];
	size_t i;
	json_t *elem;

	switch (f->kind) {
	case K_STRING_NULL:
		if (json_is_null(v))
			return 0;
		/* fall through */
	case K_STRING:
		if (!json_is_string(v))
			return fail(why, "%s: %s must be a string%s, got %s", what, f->name,
				    f->kind == K_STRING_NULL ? " or null" : "", jtext_type_name(v));
		return 0;
	case K_INT:
		if (json_is_real(v))
			return fail(why, "%s: %s must be a whole number, got %g", what, f->name,
				    json_real_value(v));
		if (!json_is_integer(v))
			return fail(why, "%s: %s must be a whole number, got %s", what, f->name,
				    jtext_type_name(v));
		if (json_integer_value(v) < f->min || json_integer_value(v) > f->max)
			return fail(why, "%s: %s must be %" PRId64 " to %" PRId64 ", got %" PRId64,
				    what, f->name, f->min, f->max, (int64_t)json_integer_value(v));
		return 0;
	case K_BOOL:
		if (!json_is_boolean(v))
			return fail(why, "%s: %s must be true or false, got %s", what, f->name,
				    jtext_type_name(v));
		return 0;
	case K_ONE_OF:
		list[0] = '\0';
		for (i = 0; f->one_of[i]; i++) {
			if (json_is_string(v) && strcmp(json_string_value(v), f->one_of[i]) == 0)
				return 0;
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
				 i ? ", " : "", f->one_of[i]);
		}
		return fail(why, "%s: %s must be one of %s", what, f->name, list);
	case K_STRINGS:
		if (!json_is_array(v) || json_array_size(v) == 0)
			return fail(why, "%s: %s must be a non-empty array of strings, got %s",
				    what, f->name,
				    json_is_array(v) ? "an empty one" : jtext_type_name(v));
		json_array_foreach(v, i, elem)
		{
			if (!json_is_string(elem))
				return fail(why, "%s: %s[%zu] must be a string, got %s", what,
					    f->name, i, jtext_type_name(elem));
		}
		return 0;
	case K_OBJECTS:
		if (!json_is_array(v))
			return fail(why, "%s: %s must be an array, got %s", what, f->name,
				    jtext_type_name(v));
		json_array_foreach(v, i, elem)
		{
			snprintf(item, sizeof(item), "%s: %s[%zu]", what, f->name, i);
			if (!json_is_object(elem))
				return fail(why, "%s must be an object, got %s", item,
					    jtext_type_name(elem));
			if (check_fields(item, f->sub, f->nsub, false, elem, why) < 0)
				return -1;
		}
		return 0;
	}
	return fail(why, "%s: %s has no type", what, f->name);
}

bool audit_src_ok(const char *src)
{
	size_t n = strspn(src, "abcdefghijklmnopqrstuvwxyz0123456789_-");

	return n > 0 && n <= AUDIT_SRC_MAX && src[n] == '\0';
}

/* "2026-12-04T18:52:19.123Z": digits where the pattern has '0', each part in its range. */
static bool ts_ok(const char *ts)
{
	static const char pattern[] = "0000-00-00T00:00:00.000Z";
	int month, day, hour, minute, second;

	if (strlen(ts) != AUDIT_TS_LEN)
		return false;
	for (size_t i = 0; i < AUDIT_TS_LEN; i++) {
		if (pattern[i] == '0' ? ts[i] < '0' || ts[i] > '9' : ts[i] != pattern[i])
			return false;
	}
	if (sscanf(ts + 5, "%2d-%2dT%2d:%2d:%2d", &month, &day, &hour, &minute, &second) != 5)
		return false;
	return month >= 1 && month <= 12 && day >= 1 && day <= 31 && hour <= 23 && minute <= 59 &&
	       second <= 60;
}

static bool hash_ok(const char *hex)
{
	return strlen(hex) == AUDIT_HASH_HEX && strspn(hex, "0123456789abcdef") == AUDIT_HASH_HEX;
}

/* A line's first members: the chain keys, then "event", in that order. */
static int check_chain(const json_t *obj, char *why)
{
	void *it = json_object_iter((json_t *)obj);
	const json_t *v;

	for (size_t i = 0; i <= ARRAY_LEN(chain_keys); i++) {
		const char *want = i < ARRAY_LEN(chain_keys) ? chain_keys[i] : "event";

		if (!it || strcmp(json_object_iter_key(it), want) != 0)
			return fail(why, "a line starts with seq, ts, prev, src and event, in that "
					 "order");
		it = json_object_iter_next((json_t *)obj, it);
	}
	v = json_object_get(obj, "seq");
	if (!json_is_integer(v) || json_integer_value(v) < 1)
		return fail(why, "seq must be a whole number from 1");
	v = json_object_get(obj, "ts");
	if (!json_is_string(v) || !ts_ok(json_string_value(v)))
		return fail(why, "ts must be UTC time as 2026-12-04T18:52:19.123Z");
	v = json_object_get(obj, "prev");
	if (!json_is_string(v) || !hash_ok(json_string_value(v)))
		return fail(why, "prev must be a SHA-256 in lowercase hex");
	v = json_object_get(obj, "src");
	if (!json_is_string(v) || !audit_src_ok(json_string_value(v)))
		return fail(why, "src must be 1 to %d of a-z, 0-9, _ and -", AUDIT_SRC_MAX);
	return 0;
}

static const struct event_spec *find_event(const char *name)
{
	for (size_t i = 0; i < ARRAY_LEN(events); i++) {
		if (strcmp(name, events[i].name) == 0)
			return &events[i];
	}
	return NULL;
}

int audit_check(const json_t *obj, bool line, char *why)
{
	char qbuf[NAME_QUOTE_MAX + 4];
	const struct event_spec *spec;
	const json_t *name;
	const char *broken;

	if (line && check_chain(obj, why) < 0)
		return -1;
	for (size_t i = 0; !line && i < ARRAY_LEN(chain_keys); i++) {
		if (json_object_get(obj, chain_keys[i]))
			return fail(why, "`%s` is the writer's to stamp, not the sender's",
				    chain_keys[i]);
	}
	name = json_object_get(obj, "event");
	if (!name)
		return fail(why, "no `event` member");
	if (!json_is_string(name))
		return fail(why, "event must be a string, got %s", jtext_type_name(name));
	spec = find_event(json_string_value(name));
	if (!spec)
		return fail(why, "no event `%s`", quote(json_string_value(name), qbuf));
	if (check_fields(spec->name, spec->fields, spec->nfields, true, obj, why) < 0)
		return -1;
	broken = spec->rule ? spec->rule(obj) : NULL;
	if (broken)
		return fail(why, "%s: %s", spec->name, broken);
	return 0;
}

const char *audit_member(const char *event, size_t i)
{
	const struct event_spec *spec = find_event(event);

	if (!spec || i > spec->nfields)
		return NULL;
	return i < spec->nfields ? spec->fields[i].name : cut_field.name;
}

void audit_hash(const void *data, size_t len, char hex[AUDIT_HASH_HEX + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	/* SHA-256 of memory we hold cannot fail but for a broken libcrypto: then the hash is
	 * all 'x', which no prev can match, so the log reads as broken rather than intact. */
	if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen * 2 != AUDIT_HASH_HEX) {
		memset(hex, 'x', AUDIT_HASH_HEX);
		hex[AUDIT_HASH_HEX] = '\0';
		return;
	}
	for (unsigned int i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

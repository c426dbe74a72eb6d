/* The control API's request parser (api/control.h, api/control.md): one JSON-RPC 2.0 line
 * into a struct control_request, or a code and a message that names what is wrong. Each
 * method's parameters are a table (name, kind, where it goes), so that parsing, the
 * "did you mean" hints and freeing all read the same description. */
#include "api/control.h"
#include "api/json_text.h"

#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
/* How much of a client's string an error message quotes. */
#define QUOTE_MAX 64

enum param_kind {
	P_UINT,	   /* struct control_uint: an integer >= 0 */
	P_STRING,  /* char *: a string without NUL bytes */
	P_BOOL,	   /* bool */
	P_ARGV,	   /* char **: a non-empty array of strings, the first not empty */
	P_ENV,	   /* char **: an array of "K=V" strings */
	P_STRINGS, /* char **: an array of strings, maybe empty */
	P_SIGNAL,  /* int: 1..64, or a signal's name */
	P_EVENTS,  /* unsigned: control_event bits from an array of event names */
};

struct param {
	const char *name;
	enum param_kind kind;
	bool required;
	size_t offset; /* in struct control_request */
};

#define PARAM(name, kind, member)                                                                  \
	{                                                                                          \
		name, kind, false, offsetof(struct control_request, member)                        \
	}
#define REQUIRED(name, kind, member)                                                               \
	{                                                                                          \
		name, kind, true, offsetof(struct control_request, member)                         \
	}

static const struct param machine_params[] = {
    PARAM("vcpus", P_UINT, machine.vcpus),
    PARAM("memory_mib", P_UINT, machine.memory_mib),
    PARAM("pids", P_UINT, machine.pids),
};
static const struct param boot_params[] = {
    PARAM("kernel", P_STRING, boot.kernel),	      PARAM("initrd", P_STRING, boot.initrd),
    PARAM("rootfs", P_STRING, boot.rootfs),	      PARAM("cmdline", P_STRING, boot.cmdline),
    PARAM("console_log", P_STRING, boot.console_log),
};
static const struct param share_params[] = {
    REQUIRED("host", P_STRING, share.host),
    REQUIRED("guest", P_STRING, share.guest),
    PARAM("read_only", P_BOOL, share.read_only),
};
static const struct param vsock_params[] = {
    PARAM("cid", P_UINT, vsock.cid),
    PARAM("uds", P_STRING, vsock.uds),
};
static const struct param defaults_params[] = {
    PARAM("env", P_ENV, defaults.env),
    PARAM("uid", P_UINT, defaults.uid),
    PARAM("gid", P_UINT, defaults.gid),
    PARAM("cwd", P_STRING, defaults.cwd),
};
static const struct param egress_params[] = {
    PARAM("allow", P_STRINGS, egress.allow),
    PARAM("secrets", P_STRINGS, egress.secrets),
    PARAM("audit_log", P_STRING, egress.audit_log),
    PARAM("ca_file", P_STRING, egress.ca_file),
};
static const struct param update_egress_params[] = {
    PARAM("allow", P_STRINGS, egress.allow),
    PARAM("revoke", P_STRINGS, egress.revoke),
};
static const struct param stop_params[] = {
    PARAM("timeout_ms", P_UINT, stop.timeout_ms),
};
static const struct param exec_params[] = {
    REQUIRED("argv", P_ARGV, exec.argv), PARAM("env", P_ENV, exec.env),
    PARAM("cwd", P_STRING, exec.cwd),	 PARAM("uid", P_UINT, exec.uid),
    PARAM("gid", P_UINT, exec.gid),	 PARAM("tty", P_BOOL, exec.tty),
    PARAM("rows", P_UINT, exec.rows),	 PARAM("cols", P_UINT, exec.cols),
    PARAM("main", P_BOOL, exec.main),	 PARAM("attach", P_BOOL, exec.attach),
};
static const struct param signal_params[] = {
    REQUIRED("signal", P_SIGNAL, signal.signo),
    PARAM("id", P_UINT, signal.id),
};
static const struct param subscribe_params[] = {
    PARAM("events", P_EVENTS, subscribe.events),
};

struct method_spec {
	const char *name;
	const struct param *params;
	size_t nparams;
};

#define METHOD(name, params)                                                                       \
	{                                                                                          \
		name, params, ARRAY_LEN(params)                                                    \
	}
static const struct method_spec methods[CONTROL_METHODS] = {
    [CONTROL_SET_MACHINE] = METHOD("set_machine", machine_params),
    [CONTROL_SET_BOOT] = METHOD("set_boot", boot_params),
    [CONTROL_ADD_SHARE] = METHOD("add_share", share_params),
    [CONTROL_SET_VSOCK] = METHOD("set_vsock", vsock_params),
    [CONTROL_SET_EXEC_DEFAULTS] = METHOD("set_exec_defaults", defaults_params),
    [CONTROL_SET_EGRESS] = METHOD("set_egress", egress_params),
    [CONTROL_START] = {"start", NULL, 0},
    [CONTROL_PAUSE] = {"pause", NULL, 0},
    [CONTROL_RESUME] = {"resume", NULL, 0},
    [CONTROL_STOP] = METHOD("stop", stop_params),
    [CONTROL_DESCRIBE] = {"describe", NULL, 0},
    [CONTROL_METRICS] = {"metrics", NULL, 0},
    [CONTROL_EXEC] = METHOD("exec", exec_params),
    [CONTROL_SIGNAL] = METHOD("signal", signal_params),
    [CONTROL_SUBSCRIBE] = METHOD("subscribe", subscribe_params),
    [CONTROL_UPDATE_EGRESS] = METHOD("update_egress", update_egress_params),
    [CONTROL_DESCRIBE_EGRESS] = {"describe_egress", NULL, 0},
};

static const char *const event_names[] = {"ready", "exec.exit", "exit", "error"};

const char *control_method_name(enum control_method m)
{
	return (unsigned)m < CONTROL_METHODS ? methods[m].name : NULL;
}

__attribute__((format(printf, 3, 4))) static int fail(struct control_error *err, int code,
						      const char *fmt, ...)
{
	va_list ap;

	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return -1;
}

/* A client's string for an error message: at most QUOTE_MAX bytes, cut at a character
 * boundary (jansson gave us valid UTF-8), "..." when cut. */
static const char *quote(const char *s, char buf[QUOTE_MAX + 4])
{
	size_t n = strlen(s);

	if (n <= QUOTE_MAX)
		return s;
	n = QUOTE_MAX;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	memcpy(buf, s, n);
	memcpy(buf + n, "...", 4);
	return buf;
}

/* Levenshtein distance, given up (returns 3) past 2 or for long strings. */
static unsigned edit_distance(const char *a, const char *b)
{
	unsigned row[QUOTE_MAX + 1];
	size_t la = strlen(a), lb = strlen(b);

	if (la > QUOTE_MAX || lb > QUOTE_MAX || (la > lb ? la - lb : lb - la) > 2)
		return 3;
	for (size_t j = 0; j <= lb; j++)
		row[j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++) {
		unsigned diag = row[0];

		row[0] = (unsigned)i;
		for (size_t j = 1; j <= lb; j++) {
			unsigned up = row[j];
			unsigned best = diag + (a[i - 1] != b[j - 1]);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb] > 2 ? 3 : row[lb];
}

/* The known name nearest to `s` (within 2 edits), or NULL. `names` has `stride`-byte
 * elements starting with a const char *. */
static const char *nearest(const char *s, const void *names, size_t count, size_t stride)
{
	const char *best = NULL;
	unsigned best_distance = 3;

	for (size_t i = 0; i < count; i++) {
		const char *name = *(const char *const *)((const char *)names + i * stride);
		unsigned d = edit_distance(s, name);

		if (d < best_distance) {
			best = name;
			best_distance = d;
		}
	}
	return best;
}

/* " (did you mean `x`?)" or "". */
static const char *did_you_mean(const char *near, char buf[64])
{
	if (!near)
		return "";
	snprintf(buf, 64, " (did you mean `%s`?)", near);
	return buf;
}

static bool has_nul(const json_t *s)
{
	return strlen(json_string_value(s)) != json_string_length(s);
}

struct ctx {
	const char *method;
	struct control_error *err;
};

static int parse_uint(const struct ctx *c, const char *name, const json_t *v,
		      struct control_uint *out)
{
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		out->set = true;
		out->value = (uint64_t)json_integer_value(v);
		return 0;
	}
	if (json_is_integer(v))
		return fail(c->err, CONTROL_E_PARAMS,
			    "%s: %s must be a whole number >= 0, got %" PRId64, c->method, name,
			    (int64_t)json_integer_value(v));
	if (json_is_real(v))
		return fail(c->err, CONTROL_E_PARAMS, "%s: %s must be a whole number >= 0, got %g",
			    c->method, name, json_real_value(v));
	return fail(c->err, CONTROL_E_PARAMS, "%s: %s must be a whole number, got %s", c->method,
		    name, jtext_type_name(v));
}

/* A string member (name is "cwd" or "env[2]") copied into *out. */
static int parse_string(const struct ctx *c, const char *name, const json_t *v, char **out)
{
	if (!json_is_string(v))
		return fail(c->err, CONTROL_E_PARAMS, "%s: %s must be a string, got %s", c->method,
			    name, jtext_type_name(v));
	if (has_nul(v))
		return fail(c->err, CONTROL_E_PARAMS, "%s: %s must not contain a NUL byte",
			    c->method, name);
	*out = strdup(json_string_value(v));
	if (!*out)
		return fail(c->err, CONTROL_E_HOST, "out of memory");
	return 0;
}

static void free_strings(char **strs)
{
	for (size_t i = 0; strs && strs[i]; i++)
		free(strs[i]);
	free(strs);
}

/* argv or env: an array of at most `max` strings, into a NULL-terminated copy. */
static int parse_strings(const struct ctx *c, const char *name, const json_t *v,
			 enum param_kind kind, char ***out)
{
	bool is_env = kind == P_ENV, is_argv = kind == P_ARGV;
	size_t n = json_array_size(v), max = is_argv ? CONTROL_MAX_ARGS : CONTROL_MAX_ENV;
	char item[32], qbuf[QUOTE_MAX + 4];
	char **strs;

	if (!json_is_array(v) || (is_argv && n == 0))
		return fail(c->err, CONTROL_E_PARAMS, "%s: %s must be a%s array of strings, got %s",
			    c->method, name, is_argv ? " non-empty" : "n",
			    json_is_array(v) ? "an empty one" : jtext_type_name(v));
	if (n > max)
		return fail(c->err, CONTROL_E_PARAMS, "%s: %s has %zu strings, at most %zu",
			    c->method, name, n, max);
	strs = calloc(n + 1, sizeof(*strs));
	if (!strs)
		return fail(c->err, CONTROL_E_HOST, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const char *eq;

		snprintf(item, sizeof(item), "%s[%zu]", name, i);
		if (parse_string(c, item, json_array_get(v, i), &strs[i]) < 0)
			goto err;
		eq = strchr(strs[i], '=');
		if (is_env && (!eq || eq == strs[i])) {
			fail(c->err, CONTROL_E_PARAMS, "%s: %s must be K=V, got `%s`", c->method,
			     item, quote(strs[i], qbuf));
			goto err;
		}
	}
	if (is_argv && strs[0][0] == '\0') {
		fail(c->err, CONTROL_E_PARAMS, "%s: argv[0] must not be empty", c->method);
		goto err;
	}
	*out = strs;
	return 0;
err:
	free_strings(strs);
	return -1;
}

/* "TERM", "SIGTERM", "RTMIN+3", "SIGRTMAX-1" (case aside): the host's numbering, which is
 * the guest's (both are x86-64 Linux with glibc). 0 if unknown. */
static int signal_by_name(const char *name)
{
	const char *rt;
	int base, sign;
	char *end;
	long off;

	if (strncasecmp(name, "SIG", 3) == 0)
		name += 3;
	for (int signo = 1; signo < SIGRTMIN; signo++) {
		const char *abbrev = sigabbrev_np(signo);

		if (abbrev && strcasecmp(name, abbrev) == 0)
			return signo;
	}
	if (strncasecmp(name, "RTMIN", 5) == 0) {
		base = SIGRTMIN;
		sign = 1;
	} else if (strncasecmp(name, "RTMAX", 5) == 0) {
		base = SIGRTMAX;
		sign = -1;
	} else {
		return 0;
	}
	rt = name + 5;
	if (*rt == '\0')
		return base;
	if (*rt != (sign > 0 ? '+' : '-') || rt[1] < '0' || rt[1] > '9')
		return 0;
	off = strtol(rt + 1, &end, 10);
	if (*end || off > SIGRTMAX - SIGRTMIN)
		return 0;
	return base + sign * (int)off;
}

static int parse_signal(const struct ctx *c, const json_t *v, int *out)
{
	char qbuf[QUOTE_MAX + 4];

	if (json_is_integer(v)) {
		json_int_t n = json_integer_value(v);

		if (n < 1 || n > 64)
			return fail(c->err, CONTROL_E_PARAMS,
				    "%s: signal must be 1 to 64, got %" PRId64, c->method,
				    (int64_t)n);
		*out = (int)n;
		return 0;
	}
	if (!json_is_string(v))
		return fail(c->err, CONTROL_E_PARAMS,
			    "%s: signal must be a number or a name, got %s", c->method,
			    jtext_type_name(v));
	if (has_nul(v))
		return fail(c->err, CONTROL_E_PARAMS, "%s: signal must not contain a NUL byte",
			    c->method);
	*out = signal_by_name(json_string_value(v));
	if (*out == 0)
		return fail(c->err, CONTROL_E_PARAMS, "%s: no signal `%s`", c->method,
			    quote(json_string_value(v), qbuf));
	return 0;
}

static int parse_events(const struct ctx *c, const json_t *v, unsigned *out)
{
	char qbuf[QUOTE_MAX + 4], hint[64];
	size_t i;
	json_t *item;

	if (!json_is_array(v))
		return fail(c->err, CONTROL_E_PARAMS,
			    "%s: events must be an array of event names, got %s", c->method,
			    jtext_type_name(v));
	*out = 0;
	json_array_foreach(v, i, item)
	{
		const char *name = json_string_value(item);
		size_t e;

		if (!name)
			return fail(c->err, CONTROL_E_PARAMS,
				    "%s: events[%zu] must be a string, got %s", c->method, i,
				    jtext_type_name(item));
		if (has_nul(item))
			return fail(c->err, CONTROL_E_PARAMS,
				    "%s: events[%zu] must not contain a NUL byte", c->method, i);
		for (e = 0; e < ARRAY_LEN(event_names); e++) {
			if (strcmp(name, event_names[e]) == 0)
				break;
		}
		if (e == ARRAY_LEN(event_names))
			return fail(c->err, CONTROL_E_PARAMS, "%s: no event `%s`%s", c->method,
				    quote(name, qbuf),
				    did_you_mean(nearest(name, event_names, ARRAY_LEN(event_names),
							 sizeof(event_names[0])),
						 hint));
		*out |= 1u << e;
	}
	return 0;
}

static int parse_param(const struct ctx *c, const struct param *p, const json_t *v, void *field)
{
	switch (p->kind) {
	case P_UINT:
		return parse_uint(c, p->name, v, field);
	case P_STRING:
		return parse_string(c, p->name, v, field);
	case P_BOOL:
		if (!json_is_boolean(v))
			return fail(c->err, CONTROL_E_PARAMS,
				    "%s: %s must be true or false, got %s", c->method, p->name,
				    jtext_type_name(v));
		*(bool *)field = json_is_true(v);
		return 0;
	case P_ARGV:
	case P_ENV:
	case P_STRINGS:
		return parse_strings(c, p->name, v, p->kind, field);
	case P_SIGNAL:
		return parse_signal(c, v, field);
	case P_EVENTS:
		return parse_events(c, v, field);
	}
	return -1;
}

static int parse_params(const struct method_spec *spec, const json_t *params,
			struct control_request *req, struct control_error *err)
{
	const struct ctx c = {spec->name, err};
	char qbuf[QUOTE_MAX + 4], hint[64];
	const char *key;
	json_t *v;

	if (params && !json_is_object(params))
		return fail(err, CONTROL_E_PARAMS, "%s: params must be an object, got %s",
			    spec->name, jtext_type_name(params));
	json_object_foreach((json_t *)params, key, v)
	{
		size_t i;

		for (i = 0; i < spec->nparams; i++) {
			if (strcmp(key, spec->params[i].name) == 0)
				break;
		}
		if (i == spec->nparams)
			return fail(err, CONTROL_E_PARAMS, "%s: unknown parameter `%s`%s",
				    spec->name, quote(key, qbuf),
				    did_you_mean(nearest(key, spec->params, spec->nparams,
							 sizeof(spec->params[0])),
						 hint));
	}
	for (size_t i = 0; i < spec->nparams; i++) {
		const struct param *p = &spec->params[i];

		v = params ? json_object_get(params, p->name) : NULL;
		if (!v && p->required)
			return fail(err, CONTROL_E_PARAMS, "%s: missing parameter `%s`", spec->name,
				    p->name);
		if (v && parse_param(&c, p, v, (char *)req + p->offset) < 0)
			return -1;
	}
	if (req->method == CONTROL_SUBSCRIBE && !json_object_get(params, "events"))
		req->subscribe.events = CONTROL_EV_ALL;
	return 0;
}

/* The id's JSON text into id[CONTROL_ID_MAX]: "" when absent. */
static int parse_id(const json_t *root, char *id, struct control_error *err)
{
	const json_t *v = json_object_get(root, "id");
	size_t n;

	if (!v) {
		id[0] = '\0';
		return 0;
	}
	if (!json_is_integer(v) && !json_is_string(v))
		return fail(err, CONTROL_E_REQUEST, "id must be a whole number or a string, got %s",
			    jtext_type_name(v));
	n = json_dumpb(v, id, CONTROL_ID_MAX - 1, JSON_COMPACT | JSON_ENCODE_ANY);
	if (n == 0 || n > CONTROL_ID_MAX - 1)
		return fail(err, CONTROL_E_REQUEST, "id longer than %d characters",
			    CONTROL_ID_MAX - 1);
	id[n] = '\0';
	return 0;
}

static int parse_root(const json_t *root, struct control_request *req, struct control_error *err)
{
	const char *method, *key;
	char qbuf[QUOTE_MAX + 4], hint[64];
	const json_t *version, *v;
	size_t m;

	if (json_is_array(root))
		return fail(err, CONTROL_E_REQUEST,
			    "batches are not supported: send one request a line");
	if (!json_is_object(root))
		return fail(err, CONTROL_E_REQUEST, "a request is a JSON object, got %s",
			    jtext_type_name(root));
	if (parse_id(root, req->id, err) < 0)
		return -1;
	snprintf(err->id, sizeof(err->id), "%s", req->id[0] ? req->id : "null");
	json_object_foreach((json_t *)root, key, v)
	{
		if (strcmp(key, "jsonrpc") && strcmp(key, "method") && strcmp(key, "params") &&
		    strcmp(key, "id"))
			return fail(err, CONTROL_E_REQUEST, "unknown member `%s` in the request",
				    quote(key, qbuf));
	}
	version = json_object_get(root, "jsonrpc");
	if (!json_is_string(version) || json_string_length(version) != 3 ||
	    memcmp(json_string_value(version), "2.0", 3) != 0)
		return fail(err, CONTROL_E_REQUEST, "\"jsonrpc\" must be \"2.0\"");
	v = json_object_get(root, "method");
	if (!json_is_string(v) || has_nul(v))
		return fail(err, CONTROL_E_REQUEST, "\"method\" must be a string%s",
			    v && json_is_string(v) ? " without NUL bytes" : "");
	/* From here on the request is well formed: a notification's errors go unanswered. */
	memcpy(err->id, req->id, sizeof(req->id));
	method = json_string_value(v);
	for (m = 0; m < CONTROL_METHODS; m++) {
		if (strcmp(method, methods[m].name) == 0)
			break;
	}
	if (m == CONTROL_METHODS)
		return fail(
		    err, CONTROL_E_METHOD, "no method `%s`%s", quote(method, qbuf),
		    did_you_mean(nearest(method, methods, CONTROL_METHODS, sizeof(methods[0])),
				 hint));
	req->method = (enum control_method)m;
	return parse_params(&methods[m], json_object_get(root, "params"), req, err);
}

int control_parse_request(const char *line, size_t len, struct control_request *req,
			  struct control_error *err)
{
	json_error_t jerr;
	json_t *root;
	int ret;

	memset(req, 0, sizeof(*req));
	memset(err, 0, sizeof(*err));
	strcpy(err->id, "null");
	if (len > CONTROL_LINE_MAX)
		return fail(err, CONTROL_E_REQUEST, "request line over 1 MiB");
	/* NUL bytes are allowed in strings so that they are refused by name (-32602) rather
	 * than by position; an object key with one is still a parse error. */
	root =
	    json_loadb(line, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (!root)
		return fail(err, CONTROL_E_PARSE, "not JSON: %s at byte %d", jerr.text,
			    jerr.position);
	ret = parse_root(root, req, err);
	json_decref(root);
	if (ret < 0) {
		control_request_free(req);
		memset(req, 0, sizeof(*req));
	}
	return ret;
}

void control_request_free(struct control_request *req)
{
	const struct method_spec *spec;

	if ((unsigned)req->method >= CONTROL_METHODS)
		return;
	spec = &methods[req->method];
	for (size_t i = 0; i < spec->nparams; i++) {
		void *field = (char *)req + spec->params[i].offset;

		if (spec->params[i].kind == P_STRING) {
			free(*(char **)field);
			*(char **)field = NULL;
		} else if (spec->params[i].kind == P_ARGV || spec->params[i].kind == P_ENV ||
			   spec->params[i].kind == P_STRINGS) {
			free_strings(*(char ***)field);
			*(char ***)field = NULL;
		}
	}
}

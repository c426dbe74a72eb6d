/* The control API's wire format (control.h), with jansson: the only JSON in clawvm. */
#include <ctype.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/control.h"

static const char *const method_names[CONTROL_METHODS] = {
    [CONTROL_SET_MACHINE] = "set_machine",
    [CONTROL_SET_BOOT] = "set_boot",
    [CONTROL_ADD_SHARE] = "add_share",
    [CONTROL_SET_VSOCK] = "set_vsock",
    [CONTROL_SET_EXEC_DEFAULTS] = "set_exec_defaults",
    [CONTROL_START] = "start",
    [CONTROL_PAUSE] = "pause",
    [CONTROL_RESUME] = "resume",
    [CONTROL_STOP] = "stop",
    [CONTROL_DESCRIBE] = "describe",
    [CONTROL_METRICS] = "metrics",
    [CONTROL_EXEC] = "exec",
    [CONTROL_SIGNAL] = "signal",
    [CONTROL_SUBSCRIBE] = "subscribe",
};

/* Each method's parameters, NULL-terminated: anything else is refused by name. */
static const char *const method_params[CONTROL_METHODS][11] = {
    [CONTROL_SET_MACHINE] = {"vcpus", "memory_mib"},
    [CONTROL_SET_BOOT] = {"kernel", "initrd", "rootfs", "cmdline", "console_log"},
    [CONTROL_ADD_SHARE] = {"host", "guest", "read_only"},
    [CONTROL_SET_VSOCK] = {"cid", "uds"},
    [CONTROL_SET_EXEC_DEFAULTS] = {"env", "uid", "gid", "cwd"},
    [CONTROL_STOP] = {"timeout_ms"},
    [CONTROL_EXEC] = {"argv", "env", "cwd", "uid", "gid", "tty", "rows", "cols", "main", "attach"},
    [CONTROL_SIGNAL] = {"signal", "id"},
    [CONTROL_SUBSCRIBE] = {"events"},
};

static const char *const event_names[] = {"ready", "exec.exit", "exit", "error"};

const char *control_method_name(enum control_method m)
{
	return (unsigned)m < CONTROL_METHODS ? method_names[m] : "?";
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

/* Edit distance, for "did you mean"; small strings only. */
static unsigned distance(const char *a, const char *b)
{
	unsigned row[64], la = (unsigned)strlen(a), lb = (unsigned)strlen(b);

	if (la >= 63 || lb >= 63)
		return 99;
	for (unsigned j = 0; j <= lb; j++)
		row[j] = j;
	for (unsigned i = 1; i <= la; i++) {
		unsigned diag = row[0], next;

		row[0] = i;
		for (unsigned j = 1; j <= lb; j++) {
			next = row[j];
			row[j] = diag + (a[i - 1] != b[j - 1]);
			if (row[j - 1] + 1 < row[j])
				row[j] = row[j - 1] + 1;
			if (next + 1 < row[j])
				row[j] = next + 1;
			diag = next;
		}
	}
	return row[lb];
}

/* The nearest of `names` within 2 edits, or NULL. */
static const char *nearest(const char *word, const char *const *names, size_t n)
{
	const char *best = NULL;
	unsigned best_d = 3;

	for (size_t i = 0; i < n && names[i]; i++) {
		unsigned d = distance(word, names[i]);

		if (d < best_d) {
			best_d = d;
			best = names[i];
		}
	}
	return best;
}

/* The JSON type of v, in words. */
static const char *type_words(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "a number";
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	default:
		return "null";
	}
}

static int get_uint(const char *m, const json_t *params, const char *key, struct control_uint *out,
		    struct control_error *err)
{
	json_t *v = json_object_get(params, key);

	if (!v)
		return 0;
	if (json_is_real(v) || (json_is_integer(v) && json_integer_value(v) < 0))
		return fail(err, CONTROL_E_PARAMS, "%s: %s must be a whole number >= 0, got %s", m,
			    key, json_is_real(v) ? "a fraction" : "a negative number");
	if (!json_is_integer(v))
		return fail(err, CONTROL_E_PARAMS, "%s: %s must be a whole number, got %s", m, key,
			    type_words(v));
	out->set = true;
	out->value = (uint64_t)json_integer_value(v);
	return 0;
}

static int get_bool(const char *m, const json_t *params, const char *key, bool *out,
		    struct control_error *err)
{
	json_t *v = json_object_get(params, key);

	if (!v)
		return 0;
	if (!json_is_boolean(v))
		return fail(err, CONTROL_E_PARAMS, "%s: %s must be true or false, got %s", m, key,
			    type_words(v));
	*out = json_is_true(v);
	return 0;
}

/* A string without NUL bytes, copied. */
static int get_string(const char *m, const json_t *params, const char *key, bool required,
		      char **out, struct control_error *err)
{
	json_t *v = json_object_get(params, key);

	if (!v) {
		if (required)
			return fail(err, CONTROL_E_PARAMS, "%s: %s is required", m, key);
		return 0;
	}
	if (!json_is_string(v))
		return fail(err, CONTROL_E_PARAMS, "%s: %s must be a string, got %s", m, key,
			    type_words(v));
	if (strlen(json_string_value(v)) != json_string_length(v))
		return fail(err, CONTROL_E_PARAMS, "%s: %s holds a NUL byte", m, key);
	*out = strdup(json_string_value(v));
	if (!*out)
		return fail(err, CONTROL_E_PARAMS, "%s: out of memory", m);
	return 0;
}

static void free_strings(char **list)
{
	for (char **p = list; p && *p; p++)
		free(*p);
	free(list);
}

/* An array of at most `max` strings; `kv`: each K=V with a non-empty K. */
static int get_strings(const char *m, const json_t *params, const char *key, size_t max, bool kv,
		       bool required, char ***out, struct control_error *err)
{
	json_t *v = json_object_get(params, key), *item;
	size_t i, n;
	char **list;

	if (!v) {
		if (required)
			return fail(err, CONTROL_E_PARAMS, "%s: %s is required", m, key);
		return 0;
	}
	n = json_is_array(v) ? json_array_size(v) : 0;
	if (!json_is_array(v) || (required && n == 0))
		return fail(err, CONTROL_E_PARAMS, "%s: %s must be a%s array of strings, got %s", m,
			    key, required ? " non-empty" : "n", type_words(v));
	if (n > max)
		return fail(err, CONTROL_E_PARAMS, "%s: %s holds %zu strings; at most %zu", m, key,
			    n, max);
	list = calloc(n + 1, sizeof(*list));
	if (!list)
		return fail(err, CONTROL_E_PARAMS, "%s: out of memory", m);
	json_array_foreach(v, i, item)
	{
		const char *s = json_string_value(item);

		if (!json_is_string(item) || strlen(s) != json_string_length(item)) {
			free_strings(list);
			return fail(err, CONTROL_E_PARAMS,
				    "%s: %s[%zu] must be a string without NUL", m, key, i);
		}
		if (kv && (!strchr(s, '=') || s[0] == '=')) {
			free_strings(list);
			return fail(err, CONTROL_E_PARAMS, "%s: %s[%zu] must be K=V, got `%.64s`",
				    m, key, i, s);
		}
		if (!(list[i] = strdup(s))) {
			free_strings(list);
			return fail(err, CONTROL_E_PARAMS, "%s: out of memory", m);
		}
	}
	if (required && list[0][0] == '\0') {
		free_strings(list);
		return fail(err, CONTROL_E_PARAMS, "%s: %s[0], the program, is empty", m, key);
	}
	*out = list;
	return 0;
}

static const struct {
	const char *name;
	int signo;
} signal_names[] = {
    {"HUP", SIGHUP},	   {"INT", SIGINT},   {"QUIT", SIGQUIT},   {"ILL", SIGILL},
    {"TRAP", SIGTRAP},	   {"ABRT", SIGABRT}, {"BUS", SIGBUS},	   {"FPE", SIGFPE},
    {"KILL", SIGKILL},	   {"USR1", SIGUSR1}, {"SEGV", SIGSEGV},   {"USR2", SIGUSR2},
    {"PIPE", SIGPIPE},	   {"ALRM", SIGALRM}, {"TERM", SIGTERM},   {"CHLD", SIGCHLD},
    {"CONT", SIGCONT},	   {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN},
    {"TTOU", SIGTTOU},	   {"URG", SIGURG},   {"XCPU", SIGXCPU},   {"XFSZ", SIGXFSZ},
    {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},
    {"PWR", SIGPWR},	   {"SYS", SIGSYS},
};

/* A signal by number (1..64) or name (TERM, SIGTERM, RTMIN+3). */
static int get_signal(const json_t *params, int *out, struct control_error *err)
{
	json_t *v = json_object_get(params, "signal");
	const char *name;

	if (!v)
		return fail(err, CONTROL_E_PARAMS, "signal: signal is required");
	if (json_is_integer(v)) {
		if (json_integer_value(v) < 1 || json_integer_value(v) > 64)
			return fail(err, CONTROL_E_PARAMS,
				    "signal: signal must be between 1 and 64, got %lld",
				    (long long)json_integer_value(v));
		*out = (int)json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v))
		return fail(err, CONTROL_E_PARAMS,
			    "signal: signal must be a number or a name, got %s", type_words(v));
	name = json_string_value(v);
	if (!strncmp(name, "SIG", 3))
		name += 3;
	for (size_t i = 0; i < sizeof(signal_names) / sizeof(signal_names[0]); i++) {
		if (!strcmp(name, signal_names[i].name)) {
			*out = signal_names[i].signo;
			return 0;
		}
	}
	if (!strncmp(name, "RTMIN", 5) || !strncmp(name, "RTMAX", 5)) {
		int base = name[3] == 'I' ? SIGRTMIN : SIGRTMAX, off = 0;
		char sign = name[5];

		if ((sign == '+' || sign == '-') && isdigit((unsigned char)name[6]) &&
		    strlen(name + 6) <= 2)
			off = atoi(name + 6) * (sign == '-' ? -1 : 1);
		else if (sign != '\0')
			off = 1000;
		if (base + off >= 1 && base + off <= 64) {
			*out = base + off;
			return 0;
		}
	}
	return fail(err, CONTROL_E_PARAMS, "signal: no signal named `%.32s`", json_string_value(v));
}

static int get_events(const json_t *params, unsigned *out, struct control_error *err)
{
	json_t *v = json_object_get(params, "events"), *item;
	size_t i;

	*out = CONTROL_EV_ALL;
	if (!v)
		return 0;
	if (!json_is_array(v))
		return fail(err, CONTROL_E_PARAMS, "subscribe: events must be an array of names");
	*out = 0;
	json_array_foreach(v, i, item)
	{
		size_t k;

		for (k = 0; k < 4; k++) {
			if (json_is_string(item) &&
			    !strcmp(json_string_value(item), event_names[k]))
				break;
		}
		if (k == 4)
			return fail(err, CONTROL_E_PARAMS,
				    "subscribe: events[%zu] must be one of ready, exec.exit, exit, "
				    "error",
				    i);
		*out |= 1u << k;
	}
	return 0;
}

static int parse_params(struct control_request *r, const json_t *p, struct control_error *err)
{
	const char *m = method_names[r->method];

	switch (r->method) {
	case CONTROL_SET_MACHINE:
		return get_uint(m, p, "vcpus", &r->machine.vcpus, err) < 0 ||
			       get_uint(m, p, "memory_mib", &r->machine.memory_mib, err) < 0
			   ? -1
			   : 0;
	case CONTROL_SET_BOOT:
		return get_string(m, p, "kernel", false, &r->boot.kernel, err) < 0 ||
			       get_string(m, p, "initrd", false, &r->boot.initrd, err) < 0 ||
			       get_string(m, p, "rootfs", false, &r->boot.rootfs, err) < 0 ||
			       get_string(m, p, "cmdline", false, &r->boot.cmdline, err) < 0 ||
			       get_string(m, p, "console_log", false, &r->boot.console_log, err) < 0
			   ? -1
			   : 0;
	case CONTROL_ADD_SHARE:
		return get_string(m, p, "host", true, &r->share.host, err) < 0 ||
			       get_string(m, p, "guest", true, &r->share.guest, err) < 0 ||
			       get_bool(m, p, "read_only", &r->share.read_only, err) < 0
			   ? -1
			   : 0;
	case CONTROL_SET_VSOCK:
		return get_uint(m, p, "cid", &r->vsock.cid, err) < 0 ||
			       get_string(m, p, "uds", false, &r->vsock.uds, err) < 0
			   ? -1
			   : 0;
	case CONTROL_SET_EXEC_DEFAULTS:
		return get_strings(m, p, "env", CONTROL_MAX_ENV, true, false, &r->defaults.env,
				   err) < 0 ||
			       get_uint(m, p, "uid", &r->defaults.uid, err) < 0 ||
			       get_uint(m, p, "gid", &r->defaults.gid, err) < 0 ||
			       get_string(m, p, "cwd", false, &r->defaults.cwd, err) < 0
			   ? -1
			   : 0;
	case CONTROL_STOP:
		return get_uint(m, p, "timeout_ms", &r->stop.timeout_ms, err);
	case CONTROL_EXEC:
		return get_strings(m, p, "argv", CONTROL_MAX_ARGS, false, true, &r->exec.argv,
				   err) < 0 ||
			       get_strings(m, p, "env", CONTROL_MAX_ENV, true, false, &r->exec.env,
					   err) < 0 ||
			       get_string(m, p, "cwd", false, &r->exec.cwd, err) < 0 ||
			       get_uint(m, p, "uid", &r->exec.uid, err) < 0 ||
			       get_uint(m, p, "gid", &r->exec.gid, err) < 0 ||
			       get_uint(m, p, "rows", &r->exec.rows, err) < 0 ||
			       get_uint(m, p, "cols", &r->exec.cols, err) < 0 ||
			       get_bool(m, p, "tty", &r->exec.tty, err) < 0 ||
			       get_bool(m, p, "main", &r->exec.main, err) < 0 ||
			       get_bool(m, p, "attach", &r->exec.attach, err) < 0
			   ? -1
			   : 0;
	case CONTROL_SIGNAL:
		return get_signal(p, &r->signal.signo, err) < 0 ||
			       get_uint(m, p, "id", &r->signal.id, err) < 0
			   ? -1
			   : 0;
	case CONTROL_SUBSCRIBE:
		return get_events(p, &r->subscribe.events, err);
	default:
		return 0;
	}
}

void control_request_free(struct control_request *r)
{
	switch (r->method) {
	case CONTROL_SET_BOOT:
		free(r->boot.kernel);
		free(r->boot.initrd);
		free(r->boot.rootfs);
		free(r->boot.cmdline);
		free(r->boot.console_log);
		break;
	case CONTROL_ADD_SHARE:
		free(r->share.host);
		free(r->share.guest);
		break;
	case CONTROL_SET_VSOCK:
		free(r->vsock.uds);
		break;
	case CONTROL_SET_EXEC_DEFAULTS:
		free_strings(r->defaults.env);
		free(r->defaults.cwd);
		break;
	case CONTROL_EXEC:
		free_strings(r->exec.argv);
		free_strings(r->exec.env);
		free(r->exec.cwd);
		break;
	default:
		break;
	}
	memset(r, 0, sizeof(*r));
}

/* The id's JSON text into out[CONTROL_ID_MAX]: 0, or -1 if it is not a valid id. */
static int id_text(const json_t *id, char *out)
{
	char *text;
	size_t len;

	if (!id) {
		out[0] = '\0';
		return 0;
	}
	if (!json_is_integer(id) && !json_is_string(id))
		return -1;
	text = json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT);
	if (!text)
		return -1;
	len = strlen(text);
	if (len >= CONTROL_ID_MAX) {
		free(text);
		return -1;
	}
	memcpy(out, text, len + 1);
	free(text);
	return 0;
}

int control_parse_request(const char *line, size_t len, struct control_request *req,
			  struct control_error *err)
{
	json_error_t jerr;
	json_t *root, *v, *params;
	const char *key, *name;
	int ret = -1;
	size_t m;

	memset(req, 0, sizeof(*req));
	snprintf(err->id, sizeof(err->id), "null");
	if (len > CONTROL_LINE_MAX)
		return fail(err, CONTROL_E_REQUEST, "request line over 1 MiB");
	root = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (!root)
		return fail(err, CONTROL_E_PARSE, "not JSON: %s at byte %d", jerr.text,
			    jerr.position);
	if (json_is_array(root)) {
		fail(err, CONTROL_E_REQUEST, "batches are not supported: one request per line");
		goto out;
	}
	if (!json_is_object(root)) {
		fail(err, CONTROL_E_REQUEST, "a request is a JSON object, got %s",
		     type_words(root));
		goto out;
	}
	if (id_text(json_object_get(root, "id"), req->id) < 0) {
		fail(err, CONTROL_E_REQUEST,
		     "id must be a whole number or a string of at most %d bytes",
		     CONTROL_ID_MAX - 8);
		goto out;
	}
	if (req->id[0])
		memcpy(err->id, req->id, sizeof(err->id));
	v = json_object_get(root, "jsonrpc");
	if (!json_is_string(v) || strcmp(json_string_value(v), "2.0")) {
		fail(err, CONTROL_E_REQUEST, "\"jsonrpc\": \"2.0\" is missing");
		goto out;
	}
	json_object_foreach(root, key, v)
	{
		if (strcmp(key, "jsonrpc") && strcmp(key, "id") && strcmp(key, "method") &&
		    strcmp(key, "params")) {
			fail(err, CONTROL_E_REQUEST, "unknown member `%.32s` in the request", key);
			goto out;
		}
	}
	v = json_object_get(root, "method");
	if (!json_is_string(v)) {
		fail(err, CONTROL_E_REQUEST, "method must be a string");
		goto out;
	}
	name = json_string_value(v);
	for (m = 0; m < CONTROL_METHODS; m++) {
		if (!strcmp(name, method_names[m]))
			break;
	}
	if (m == CONTROL_METHODS) {
		const char *near = nearest(name, method_names, CONTROL_METHODS);

		if (near)
			fail(err, CONTROL_E_METHOD, "no method `%.64s` (did you mean `%s`?)", name,
			     near);
		else
			fail(err, CONTROL_E_METHOD, "no method `%.64s`", name);
		goto out;
	}
	req->method = (enum control_method)m;
	params = json_object_get(root, "params");
	if (params && !json_is_object(params)) {
		fail(err, CONTROL_E_PARAMS, "%s: params must be an object, got %s", name,
		     type_words(params));
		goto out;
	}
	json_object_foreach(params, key, v)
	{
		const char *const *known = method_params[m];
		size_t k;

		for (k = 0; known[k] && strcmp(key, known[k]); k++)
			;
		if (!known[k]) {
			const char *near = nearest(key, known, 11);

			if (near)
				fail(err, CONTROL_E_PARAMS,
				     "%s: unknown parameter `%.32s` (did you mean `%s`?)", name,
				     key, near);
			else
				fail(err, CONTROL_E_PARAMS, "%s: unknown parameter `%.32s`", name,
				     key);
			goto out;
		}
	}
	if (parse_params(req, params, err) < 0) {
		control_request_free(req);
		goto out;
	}
	ret = 0;
out:
	json_decref(root);
	return ret;
}

/* ---- building lines ---- */

/* s as a JSON string, its invalid UTF-8 replaced by U+FFFD. NULL -> null. */
static json_t *str(const char *s)
{
	json_t *v;
	char *clean;
	size_t n = 0, len;

	if (!s)
		return json_null();
	v = json_string(s);
	if (v)
		return v;
	len = strlen(s);
	clean = malloc(len * 3 + 1);
	if (!clean)
		return json_null();
	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)s[i];
		size_t want = c < 0x80	       ? 1
			      : (c >> 5) == 6  ? 2
			      : (c >> 4) == 14 ? 3
			      : (c >> 3) == 30 ? 4
					       : 0;
		json_t *probe = NULL;

		if (want && i + want <= len) {
			char chunk[5] = {0};

			memcpy(chunk, s + i, want);
			probe = json_string(chunk);
		}
		if (probe) {
			memcpy(clean + n, s + i, want);
			n += want;
			i += want;
			json_decref(probe);
		} else {
			memcpy(clean + n, "\xef\xbf\xbd", 3);
			n += 3;
			i++;
		}
	}
	clean[n] = '\0';
	v = json_string(clean);
	free(clean);
	return v ? v : json_null();
}

/* The line for `root` (taken), compact, with "\n". */
static char *line_of(json_t *root)
{
	char *text, *line;
	size_t len;

	if (!root)
		return NULL;
	text = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (!text)
		return NULL;
	len = strlen(text);
	line = realloc(text, len + 2);
	if (!line) {
		free(text);
		return NULL;
	}
	line[len] = '\n';
	line[len + 1] = '\0';
	return line;
}

/* The id text back into JSON ("" or unreadable: null). */
static json_t *id_value(const char *id)
{
	json_t *v = id && *id ? json_loads(id, JSON_DECODE_ANY, NULL) : NULL;

	return v ? v : json_null();
}

static char *reply(const char *id, json_t *result)
{
	return line_of(json_pack("{s:s, s:o, s:o}", "jsonrpc", "2.0", "id", id_value(id), "result",
				 result ? result : json_object()));
}

static char *event(const char *name, json_t *params)
{
	return line_of(json_pack("{s:s, s:s, s:o}", "jsonrpc", "2.0", "method", name, "params",
				 params ? params : json_object()));
}

char *control_reply_error(const char *id, int code, const char *message)
{
	return line_of(json_pack("{s:s, s:o, s:{s:i, s:o}}", "jsonrpc", "2.0", "id", id_value(id),
				 "error", "code", code, "message", str(message)));
}

char *control_reply_empty(const char *id)
{
	return reply(id, NULL);
}

char *control_reply_exec(const char *id, uint64_t exec_id)
{
	return reply(id, json_pack("{s:I}", "id", (json_int_t)exec_id));
}

static json_t *strings(const char *const *list)
{
	json_t *a = json_array();

	for (const char *const *p = list; a && p && *p; p++)
		json_array_append_new(a, str(*p));
	return a;
}

char *control_reply_describe(const char *id, const struct control_describe *d)
{
	json_t *shares = json_array(), *exit_info;

	for (unsigned i = 0; shares && i < d->nshares; i++)
		json_array_append_new(
		    shares, json_pack("{s:o, s:o, s:o, s:b}", "host", str(d->shares[i].host),
				      "guest", str(d->shares[i].guest), "tag",
				      str(d->shares[i].tag), "read_only", d->shares[i].read_only));
	exit_info = d->exit_reason
			? json_pack("{s:s, s:i, s:o}", "reason", d->exit_reason, "status",
				    d->exit_status, "message", str(d->exit_message))
			: json_null();
	return reply(
	    id,
	    json_pack("{s:i, s:o, s:s, s:I, s:I, s:o, s:{s:i, s:I, s:o, s:o, s:o, s:o, s:o, "
		      "s:o, s:{s:I, s:o}, s:{s:o, s:I, s:I, s:o}}, s:i, s:o}",
		      "protocol", CONTROL_PROTOCOL, "name", str(d->name), "state", d->state, "pid",
		      (json_int_t)d->pid, "uptime_ms", (json_int_t)d->uptime_ms, "ready_ms",
		      d->ready ? json_integer((json_int_t)d->ready_ms) : json_null(), "config",
		      "vcpus", (int)d->vcpus, "memory_mib", (json_int_t)d->memory_mib, "kernel",
		      str(d->kernel), "initrd", str(d->initrd), "rootfs", str(d->rootfs), "cmdline",
		      str(d->cmdline), "console_log", str(d->console_log), "shares",
		      shares ? shares : json_array(), "vsock", "cid", (json_int_t)d->vsock_cid,
		      "uds", str(d->vsock_uds), "exec_defaults", "env", strings(d->env), "uid",
		      (json_int_t)d->uid, "gid", (json_int_t)d->gid, "cwd", str(d->cwd), "execs",
		      (int)d->execs, "exit", exit_info ? exit_info : json_null()));
}

char *control_reply_metrics(const char *id, const struct control_metrics *m)
{
	json_t *fs = json_array();

	for (unsigned i = 0; fs && i < m->nfs && i < CONTROL_METRICS_MAX_FS; i++)
		json_array_append_new(
		    fs, json_pack("{s:o, s:I, s:I, s:I}", "tag", str(m->fs[i].tag), "requests",
				  (json_int_t)m->fs[i].requests, "bytes_read",
				  (json_int_t)m->fs[i].bytes_read, "bytes_written",
				  (json_int_t)m->fs[i].bytes_written));
	return reply(
	    id,
	    json_pack("{s:{s:I, s:I, s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I, s:I}, s:o, s:{s:I}, "
		      "s:{s:I, s:I}}",
		      "vcpu_exits", "io", (json_int_t)m->exits_io, "mmio",
		      (json_int_t)m->exits_mmio, "hlt", (json_int_t)m->exits_hlt, "intr",
		      (json_int_t)m->exits_intr, "other", (json_int_t)m->exits_other, "vsock",
		      "rx_packets", (json_int_t)m->vsock_rx_packets, "tx_packets",
		      (json_int_t)m->vsock_tx_packets, "rx_bytes", (json_int_t)m->vsock_rx_bytes,
		      "tx_bytes", (json_int_t)m->vsock_tx_bytes, "connections",
		      (json_int_t)m->vsock_connections, "fs", fs ? fs : json_array(), "rng",
		      "bytes", (json_int_t)m->rng_bytes, "memory", "vmm_rss_kib",
		      (json_int_t)m->vmm_rss_kib, "guest_rss_kib", (json_int_t)m->guest_rss_kib));
}

char *control_event_ready(uint64_t ms_since_start)
{
	return event("ready", json_pack("{s:I}", "ms", (json_int_t)ms_since_start));
}

char *control_event_exec_exit(uint64_t exec_id, int status)
{
	return event("exec.exit",
		     json_pack("{s:I, s:i}", "id", (json_int_t)exec_id, "status", status));
}

char *control_event_exit(const char *reason, int status, const char *message)
{
	return event("exit", json_pack("{s:o, s:i, s:o}", "reason", str(reason), "status", status,
				       "message", str(message)));
}

char *control_event_error(int code, const char *message)
{
	return event("error", json_pack("{s:i, s:o}", "code", code, "message", str(message)));
}

/* ---- the client side ---- */

char *control_request_line(uint64_t id, const char *method, const char *params_json)
{
	json_t *params = params_json ? json_loads(params_json, 0, NULL) : NULL;
	json_t *root =
	    json_pack("{s:s, s:I, s:s}", "jsonrpc", "2.0", "id", (json_int_t)id, "method", method);

	if (root && params)
		json_object_set_new(root, "params", params);
	else if (params)
		json_decref(params);
	return line_of(root);
}

char *control_exec_params(const char *const *argv, const char *const *env, const char *cwd,
			  bool tty, unsigned rows, unsigned cols, bool attach)
{
	json_t *p =
	    json_pack("{s:o, s:b, s:b}", "argv", strings(argv), "tty", tty, "attach", attach);
	char *text;

	if (!p)
		return NULL;
	if (env)
		json_object_set_new(p, "env", strings(env));
	if (cwd)
		json_object_set_new(p, "cwd", str(cwd));
	if (rows)
		json_object_set_new(p, "rows", json_integer(rows));
	if (cols)
		json_object_set_new(p, "cols", json_integer(cols));
	text = json_dumps(p, JSON_COMPACT);
	json_decref(p);
	return text;
}

int control_parse_reply(const char *line, size_t len, struct control_reply *r)
{
	json_t *root = json_loadb(line, len, 0, NULL), *v, *err;

	memset(r, 0, sizeof(*r));
	r->id = -1;
	if (!json_is_object(root))
		goto bad;
	v = json_object_get(root, "method");
	if (json_is_string(v)) {
		r->is_event = true;
		snprintf(r->method, sizeof(r->method), "%s", json_string_value(v));
		v = json_object_get(root, "params");
		r->result = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
		json_decref(root);
		return 0;
	}
	v = json_object_get(root, "id");
	if (json_is_integer(v))
		r->id = (int64_t)json_integer_value(v);
	err = json_object_get(root, "error");
	if (json_is_object(err)) {
		v = json_object_get(err, "code");
		r->code = json_is_integer(v) && json_integer_value(v) != 0
			      ? (int)json_integer_value(v)
			      : CONTROL_E_REQUEST;
		v = json_object_get(err, "message");
		r->message = strdup(json_is_string(v) ? json_string_value(v) : "no message");
	} else if ((v = json_object_get(root, "result"))) {
		r->result = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	} else {
		goto bad;
	}
	json_decref(root);
	return 0;
bad:
	json_decref(root);
	return -1;
}

void control_reply_free(struct control_reply *r)
{
	free(r->message);
	free(r->result);
	r->message = r->result = NULL;
}

/* The member at a dotted path of the JSON text `json` (held by *root; decref it). */
static json_t *at_path(const char *json, const char *path, json_t **root)
{
	char key[64];
	json_t *v;

	*root = json ? json_loads(json, JSON_DECODE_ANY, NULL) : NULL;
	v = *root;
	while (v && *path) {
		const char *dot = strchr(path, '.');
		size_t n = dot ? (size_t)(dot - path) : strlen(path);

		if (n >= sizeof(key))
			return NULL;
		memcpy(key, path, n);
		key[n] = '\0';
		v = json_object_get(v, key);
		path += n + (dot ? 1 : 0);
	}
	return v;
}

int control_json_int(const char *json, const char *path, int64_t *out)
{
	json_t *root, *v = at_path(json, path, &root);
	int ret = -1;

	if (json_is_integer(v)) {
		*out = (int64_t)json_integer_value(v);
		ret = 0;
	}
	json_decref(root);
	return ret;
}

int control_json_string(const char *json, const char *path, char *out, size_t cap)
{
	json_t *root, *v = at_path(json, path, &root);
	int ret = -1;

	if (json_is_string(v) || json_is_null(v)) {
		snprintf(out, cap, "%s", json_is_string(v) ? json_string_value(v) : "");
		ret = 0;
	}
	json_decref(root);
	return ret;
}

char *control_json_pretty(const char *json)
{
	json_t *root = json ? json_loads(json, JSON_DECODE_ANY, NULL) : NULL;
	char *text;

	if (!root)
		return NULL;
	text = json_dumps(root, JSON_INDENT(2) | JSON_ENCODE_ANY);
	json_decref(root);
	return text;
}

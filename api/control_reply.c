/* The control API's other lines (api/control.h): replies and events built by the VMM,
 * request lines built by clients, and a client's reading of replies and events. Every line
 * is jansson's compact output, which escapes control characters, so no raw newline gets in
 * before the final "\n"; strings from the host may be any bytes and are made valid UTF-8
 * (U+FFFD for each invalid byte) before jansson sees them. */
#include "api/control.h"
#include "api/json_text.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* jansson's integers are signed: a count past INT64_MAX (never reached) is capped there. */
static json_t *juint(uint64_t value)
{
	return json_integer(value > INT64_MAX ? INT64_MAX : (json_int_t)value);
}

/* A request's id from its JSON text (control_request.id): a number or a string; null for
 * "" or anything else. */
static json_t *jid(const char *id)
{
	json_t *v;

	if (!id || !*id)
		return json_null();
	v = json_loads(id, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	if (v && (json_is_integer(v) || json_is_string(v)))
		return v;
	json_decref(v);
	return json_null();
}

/* Sets obj[key] = v (taking v); on failure frees both and returns NULL, so that calls can
 * be chained and checked once. */
static json_t *put(json_t *obj, const char *key, json_t *v)
{
	if (json_object_set_new(obj, key, v) < 0) {
		json_decref(obj);
		return NULL;
	}
	return obj;
}

static char *reply_line(const char *id, const char *key, json_t *value)
{
	return jtext_dump(put(put(json_pack("{ss}", "jsonrpc", "2.0"), "id", jid(id)), key, value),
			  true);
}

static char *event_line(const char *name, json_t *params)
{
	return jtext_dump(
	    put(json_pack("{ssss}", "jsonrpc", "2.0", "method", name), "params", params), true);
}

char *control_reply_error(const char *id, int code, const char *message)
{
	json_t *error =
	    put(json_pack("{si}", "code", code), "message", jtext_string(message ? message : ""));

	return reply_line(id, "error", error);
}

char *control_reply_empty(const char *id)
{
	return reply_line(id, "result", json_object());
}

char *control_reply_exec(const char *id, uint64_t exec_id)
{
	return reply_line(id, "result", put(json_object(), "id", juint(exec_id)));
}

/* A NULL-terminated list of strings (NULL: none) as an array. */
static json_t *jstrings(const char *const *strs)
{
	json_t *array = json_array();

	for (size_t i = 0; array && strs && strs[i]; i++) {
		if (json_array_append_new(array, jtext_string(strs[i])) < 0) {
			json_decref(array);
			return NULL;
		}
	}
	return array;
}

static json_t *describe_shares(const struct control_describe *d)
{
	json_t *shares = json_array();

	for (unsigned i = 0; shares && i < d->nshares; i++) {
		const struct control_share_info *s = &d->shares[i];
		json_t *share = json_object();

		share = put(share, "host", jtext_string(s->host));
		share = put(share, "guest", jtext_string(s->guest));
		share = put(share, "tag", jtext_string(s->tag));
		share = put(share, "read_only", json_boolean(s->read_only));
		if (json_array_append_new(shares, share) < 0) {
			json_decref(shares);
			return NULL;
		}
	}
	return shares;
}

static json_t *describe_config(const struct control_describe *d)
{
	json_t *config = json_object(), *vsock = json_object(), *defaults = json_object();

	config = put(config, "vcpus", juint(d->vcpus));
	config = put(config, "memory_mib", juint(d->memory_mib));
	config = put(config, "pids", juint(d->pids));
	config = put(config, "kernel", jtext_string(d->kernel));
	config = put(config, "initrd", jtext_string(d->initrd));
	config = put(config, "rootfs", jtext_string(d->rootfs));
	config = put(config, "cmdline", jtext_string(d->cmdline));
	config = put(config, "console_log", jtext_string(d->console_log));
	config = put(config, "shares", describe_shares(d));
	vsock = put(vsock, "cid", d->vsock_cid ? juint(d->vsock_cid) : json_null());
	vsock = put(vsock, "uds", jtext_string(d->vsock_uds));
	config = put(config, "vsock", vsock);
	defaults = put(defaults, "env", jstrings(d->env));
	defaults = put(defaults, "uid", juint(d->uid));
	defaults = put(defaults, "gid", juint(d->gid));
	defaults = put(defaults, "cwd", jtext_string(d->cwd));
	return put(config, "exec_defaults", defaults);
}

char *control_reply_describe(const char *id, const struct control_describe *d)
{
	json_t *result = json_pack("{si}", "protocol", CONTROL_PROTOCOL);
	json_t *exit = json_null();

	if (d->exit_reason) {
		exit = json_object();
		exit = put(exit, "reason", jtext_string(d->exit_reason));
		exit = put(exit, "status", json_integer(d->exit_status));
		exit = put(exit, "message", jtext_string(d->exit_message));
	}
	result = put(result, "name", jtext_string(d->name));
	result = put(result, "state", jtext_string(d->state));
	result = put(result, "pid", json_integer(d->pid));
	result = put(result, "uptime_ms", juint(d->uptime_ms));
	result = put(result, "ready_ms", d->ready ? juint(d->ready_ms) : json_null());
	result = put(result, "config", describe_config(d));
	result = put(result, "execs", juint(d->execs));
	result = put(result, "exit", exit);
	return reply_line(id, "result", result);
}

char *control_reply_egress(const char *id, const struct control_egress *e)
{
	json_t *result = json_object(), *secrets = json_array();

	for (size_t i = 0; secrets && i < e->nsecrets; i++) {
		json_t *one = json_object();

		one = put(one, "name", jtext_string(e->secrets[i].name));
		one = put(one, "host", jtext_string(e->secrets[i].host));
		one = put(one, "port", juint(e->secrets[i].port));
		if (json_array_append_new(secrets, one) < 0) {
			json_decref(secrets);
			secrets = NULL;
		}
	}
	result = put(result, "allow", jstrings(e->allow));
	result = put(result, "secrets", secrets);
	result = put(result, "connections", juint(e->connections));
	result = put(result, "connections_total", juint(e->connections_total));
	result = put(result, "denied_total", juint(e->denied_total));
	result = put(result, "bytes_up", juint(e->bytes_up));
	result = put(result, "bytes_down", juint(e->bytes_down));
	if (e->closed >= 0)
		result = put(result, "closed", json_integer(e->closed));
	return reply_line(id, "result", result);
}

char *control_reply_metrics(const char *id, const struct control_metrics *m)
{
	json_t *result = json_object(), *exits = json_object(), *vsock = json_object();
	json_t *fs = json_array(), *rng = json_object(), *memory = json_object();

	exits = put(exits, "io", juint(m->exits_io));
	exits = put(exits, "mmio", juint(m->exits_mmio));
	exits = put(exits, "hlt", juint(m->exits_hlt));
	exits = put(exits, "intr", juint(m->exits_intr));
	exits = put(exits, "other", juint(m->exits_other));
	vsock = put(vsock, "rx_packets", juint(m->vsock_rx_packets));
	vsock = put(vsock, "tx_packets", juint(m->vsock_tx_packets));
	vsock = put(vsock, "rx_bytes", juint(m->vsock_rx_bytes));
	vsock = put(vsock, "tx_bytes", juint(m->vsock_tx_bytes));
	vsock = put(vsock, "connections", juint(m->vsock_connections));
	for (unsigned i = 0; fs && i < m->nfs && i < CONTROL_METRICS_MAX_FS; i++) {
		json_t *one = json_object();

		one = put(one, "tag", jtext_string(m->fs[i].tag));
		one = put(one, "requests", juint(m->fs[i].requests));
		one = put(one, "bytes_read", juint(m->fs[i].bytes_read));
		one = put(one, "bytes_written", juint(m->fs[i].bytes_written));
		if (json_array_append_new(fs, one) < 0) {
			json_decref(fs);
			fs = NULL;
		}
	}
	rng = put(rng, "bytes", juint(m->rng_bytes));
	memory = put(memory, "vmm_rss_kib", juint(m->vmm_rss_kib));
	memory = put(memory, "guest_rss_kib", juint(m->guest_rss_kib));
	result = put(result, "vcpu_exits", exits);
	result = put(result, "vsock", vsock);
	result = put(result, "fs", fs);
	result = put(result, "rng", rng);
	result = put(result, "memory", memory);
	return reply_line(id, "result", result);
}

char *control_event_ready(uint64_t ms_since_start)
{
	return event_line("ready", put(json_object(), "ms", juint(ms_since_start)));
}

char *control_event_exec_exit(uint64_t exec_id, int status)
{
	json_t *params = put(json_object(), "id", juint(exec_id));

	return event_line("exec.exit", put(params, "status", json_integer(status)));
}

char *control_event_exit(const char *reason, int status, const char *message)
{
	json_t *params = put(json_object(), "reason", jtext_string(reason ? reason : ""));

	params = put(params, "status", json_integer(status));
	return event_line("exit", put(params, "message", jtext_string(message)));
}

char *control_event_error(int code, const char *message)
{
	json_t *params =
	    put(json_pack("{si}", "code", code), "message", jtext_string(message ? message : ""));

	return event_line("error", params);
}

char *control_request_line(uint64_t id, const char *method, const char *params_json)
{
	json_t *request = put(json_pack("{ss}", "jsonrpc", "2.0"), "id", juint(id));

	request = put(request, "method", jtext_string(method ? method : ""));
	if (params_json) {
		json_t *params = json_loads(params_json, JSON_ALLOW_NUL, NULL);

		if (!json_is_object(params)) {
			json_decref(params);
			json_decref(request);
			return NULL;
		}
		request = put(request, "params", params);
	}
	return jtext_dump(request, true);
}

char *control_exec_params(const char *const *argv, const char *const *env, const char *cwd,
			  bool tty, unsigned rows, unsigned cols, bool attach)
{
	json_t *params = put(json_object(), "argv", jstrings(argv));

	if (env)
		params = put(params, "env", jstrings(env));
	if (cwd)
		params = put(params, "cwd", jtext_string(cwd));
	params = put(params, "tty", json_boolean(tty));
	if (rows)
		params = put(params, "rows", json_integer(rows));
	if (cols)
		params = put(params, "cols", json_integer(cols));
	if (attach)
		params = put(params, "attach", json_true());
	return jtext_dump(params, false);
}

char *control_update_egress_params(const char *const *allow, const char *const *revoke)
{
	json_t *params = json_object();

	if (allow && allow[0])
		params = put(params, "allow", jstrings(allow));
	if (revoke && revoke[0])
		params = put(params, "revoke", jstrings(revoke));
	return jtext_dump(params, false);
}

/* Fills r from a parsed reply or notification; -1 if it is neither. */
static int read_reply(const json_t *root, struct control_reply *r)
{
	const json_t *version = json_object_get(root, "jsonrpc");
	const json_t *method = json_object_get(root, "method"), *id = json_object_get(root, "id");
	const json_t *result = json_object_get(root, "result"),
		     *error = json_object_get(root, "error");

	if (!json_is_string(version) || strcmp(json_string_value(version), "2.0") != 0)
		return -1;
	r->id = -1;
	if (method) {
		const json_t *params = json_object_get(root, "params");

		if (!json_is_string(method) || id || result || error ||
		    json_string_length(method) >= sizeof(r->method))
			return -1;
		r->is_event = true;
		strcpy(r->method, json_string_value(method));
		result = params;
	} else {
		if (!id || !result == !error)
			return -1;
		if (json_is_integer(id))
			r->id = json_integer_value(id);
	}
	if (error) {
		const json_t *code = json_object_get(error, "code");
		const json_t *message = json_object_get(error, "message");

		if (!json_is_integer(code) || json_integer_value(code) == 0 ||
		    json_integer_value(code) < INT32_MIN || json_integer_value(code) > INT32_MAX ||
		    !json_is_string(message))
			return -1;
		r->code = (int)json_integer_value(code);
		r->message = strdup(json_string_value(message));
		if (!r->message)
			return -1;
	}
	if (result) {
		r->result = jtext_dump(json_incref((json_t *)result), false);
		if (!r->result)
			return -1;
	}
	return 0;
}

int control_parse_reply(const char *line, size_t len, struct control_reply *r)
{
	json_t *root;
	int ret;

	memset(r, 0, sizeof(*r));
	if (len > CONTROL_LINE_MAX)
		return -1;
	root = json_loadb(line, len, JSON_ALLOW_NUL, NULL);
	if (!json_is_object(root)) {
		json_decref(root);
		return -1;
	}
	ret = read_reply(root, r);
	json_decref(root);
	if (ret < 0) {
		control_reply_free(r);
		memset(r, 0, sizeof(*r));
	}
	return ret;
}

void control_reply_free(struct control_reply *r)
{
	free(r->message);
	free(r->result);
	r->message = NULL;
	r->result = NULL;
}

/* The member of json's text at a dotted path ("exit.status"); *root to decref. */
static const json_t *lookup(const char *json, const char *path, json_t **root)
{
	const json_t *v;

	*root = json ? json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL) : NULL;
	v = *root;
	while (v && path && *path) {
		const char *dot = strchr(path, '.');
		size_t n = dot ? (size_t)(dot - path) : strlen(path);

		if (json_is_array(v) && n > 0 && strspn(path, "0123456789") == n && n < 10)
			v = json_array_get(v, strtoul(path, NULL, 10));
		else
			v = json_object_getn(v, path, n);
		path = dot ? dot + 1 : NULL;
	}
	return v;
}

int control_json_int(const char *json, const char *path, int64_t *out)
{
	json_t *root;
	const json_t *v = lookup(json, path, &root);
	int ret = -1;

	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		ret = 0;
	}
	json_decref(root);
	return ret;
}

int control_json_string(const char *json, const char *path, char *out, size_t cap)
{
	json_t *root;
	const json_t *v = lookup(json, path, &root);
	const char *s = json_is_null(v) ? "" : json_string_value(v);
	int ret = -1;

	if (s && cap > strlen(s)) {
		memcpy(out, s, strlen(s) + 1);
		ret = 0;
	}
	json_decref(root);
	return ret;
}

char *control_json_pretty(const char *json)
{
	json_t *root = json ? json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL) : NULL;
	char *text = root ? json_dumps(root, JSON_INDENT(2) | JSON_ENCODE_ANY) : NULL;

	json_decref(root);
	return text;
}

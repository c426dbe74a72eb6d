/* Unit tests for the control API's wire format (api/control.c, api/control_reply.c): every
 * method's parameters parsed into their fields, every refusal with its exact code, id and
 * message, hostile lines (deep nesting, huge numbers, NUL bytes, bad UTF-8, 1 MiB + 1), and
 * every builder's line read back. Each request line is parsed from a heap copy of exactly
 * its length (no NUL after it), so that ASan sees any read past its end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/control.h"

#define REQ(method, params)                                                                        \
	"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"" method "\",\"params\":" params "}"

static int parse_len(const char *line, size_t len, struct control_request *req,
		     struct control_error *err)
{
	char *copy = malloc(len ? len : 1);
	int ret;

	assert_non_null(copy);
	memcpy(copy, line, len);
	ret = control_parse_request(copy, len, req, err);
	free(copy);
	return ret;
}

static void parse_ok(const char *line, struct control_request *req)
{
	struct control_error err;
	int ret = parse_len(line, strlen(line), req, &err);

	if (ret != 0)
		fail_msg("%s: %d %s", line, err.code, err.message);
}

/* The line is refused with code, the error's id text and message. */
static void refused_len(const char *line, size_t len, int code, const char *id, const char *message)
{
	struct control_request req;
	struct control_error err;

	assert_int_equal(parse_len(line, len, &req, &err), -1);
	assert_int_equal(err.code, code);
	assert_string_equal(err.id, id);
	assert_string_equal(err.message, message);
}

static void refused(const char *line, int code, const char *id, const char *message)
{
	refused_len(line, strlen(line), code, id, message);
}

static void params_refused(const char *line, const char *message)
{
	refused(line, CONTROL_E_PARAMS, "7", message);
}

static void test_method_names(void **state)
{
	(void)state;
	assert_string_equal(control_method_name(CONTROL_SET_MACHINE), "set_machine");
	assert_string_equal(control_method_name(CONTROL_SET_EXEC_DEFAULTS), "set_exec_defaults");
	assert_string_equal(control_method_name(CONTROL_SUBSCRIBE), "subscribe");
	assert_null(control_method_name(CONTROL_METHODS));
	for (int m = 0; m < CONTROL_METHODS; m++) {
		char line[128];
		struct control_request req;

		snprintf(line, sizeof(line), "{\"jsonrpc\":\"2.0\",\"method\":\"%s\",\"id\":%d}",
			 control_method_name(m), m);
		/* Only add_share, exec and signal have required parameters. */
		if (m == CONTROL_ADD_SHARE || m == CONTROL_EXEC || m == CONTROL_SIGNAL)
			continue;
		parse_ok(line, &req);
		assert_int_equal(req.method, m);
		control_request_free(&req);
	}
}

static void test_set_machine(void **state)
{
	struct control_request req;

	(void)state;
	parse_ok(REQ("set_machine", "{\"vcpus\":4,\"memory_mib\":512,\"pids\":40}"), &req);
	assert_int_equal(req.method, CONTROL_SET_MACHINE);
	assert_string_equal(req.id, "7");
	assert_true(req.machine.vcpus.set);
	assert_int_equal(req.machine.vcpus.value, 4);
	assert_true(req.machine.memory_mib.set);
	assert_int_equal(req.machine.memory_mib.value, 512);
	assert_true(req.machine.pids.set);
	assert_int_equal(req.machine.pids.value, 40);
	control_request_free(&req);

	parse_ok(REQ("set_machine", "{\"memory_mib\":0}"), &req);
	assert_false(req.machine.vcpus.set);
	assert_false(req.machine.pids.set);
	assert_true(req.machine.memory_mib.set);
	assert_int_equal(req.machine.memory_mib.value, 0);
	control_request_free(&req);

	parse_ok(REQ("set_machine", "{\"vcpus\":9223372036854775807}"), &req);
	assert_true(req.machine.vcpus.value == INT64_MAX);
	control_request_free(&req);

	params_refused(REQ("set_machine", "{\"vcpu\":1}"),
		       "set_machine: unknown parameter `vcpu` (did you mean `vcpus`?)");
	params_refused(REQ("set_machine", "{\"cpus_and_more\":1}"),
		       "set_machine: unknown parameter `cpus_and_more`");
	params_refused(REQ("set_machine", "{\"vcpus\":\"2\"}"),
		       "set_machine: vcpus must be a whole number, got a string");
	params_refused(REQ("set_machine", "{\"vcpus\":null}"),
		       "set_machine: vcpus must be a whole number, got null");
	params_refused(REQ("set_machine", "{\"vcpus\":true}"),
		       "set_machine: vcpus must be a whole number, got true");
	params_refused(REQ("set_machine", "{\"memory_mib\":-3}"),
		       "set_machine: memory_mib must be a whole number >= 0, got -3");
	params_refused(REQ("set_machine", "{\"pids\":\"64\"}"),
		       "set_machine: pids must be a whole number, got a string");
	params_refused(REQ("set_machine", "{\"memory_mib\":1.5}"),
		       "set_machine: memory_mib must be a whole number >= 0, got 1.5");
	params_refused(REQ("set_machine", "{\"memory_mib\":512.0}"),
		       "set_machine: memory_mib must be a whole number >= 0, got 512");
	params_refused(REQ("set_machine", "[4,512]"),
		       "set_machine: params must be an object, got an array");
	params_refused(REQ("set_machine", "\"vcpus=4\""),
		       "set_machine: params must be an object, got a string");
}

static void test_set_boot(void **state)
{
	struct control_request req;

	(void)state;
	parse_ok(REQ("set_boot", "{\"kernel\":\"/k/vmlinux\",\"initrd\":\"/k/initrd\","
				 "\"rootfs\":\"/r\",\"cmdline\":\"quiet loglevel=3\","
				 "\"console_log\":\"/tmp/c.log\"}"),
		 &req);
	assert_int_equal(req.method, CONTROL_SET_BOOT);
	assert_string_equal(req.boot.kernel, "/k/vmlinux");
	assert_string_equal(req.boot.initrd, "/k/initrd");
	assert_string_equal(req.boot.rootfs, "/r");
	assert_string_equal(req.boot.cmdline, "quiet loglevel=3");
	assert_string_equal(req.boot.console_log, "/tmp/c.log");
	control_request_free(&req);

	parse_ok(REQ("set_boot", "{\"kernel\":\"/\u00e9\\u00e9\"}"), &req);
	assert_string_equal(req.boot.kernel, "/\u00e9\u00e9");
	assert_null(req.boot.initrd);
	assert_null(req.boot.console_log);
	control_request_free(&req);

	params_refused(REQ("set_boot", "{\"kernel\":1}"),
		       "set_boot: kernel must be a string, got a number");
	params_refused(REQ("set_boot", "{\"kernel\":\"/a\\u0000b\"}"),
		       "set_boot: kernel must not contain a NUL byte");
	params_refused(REQ("set_boot", "{\"kernal\":\"/k\"}"),
		       "set_boot: unknown parameter `kernal` (did you mean `kernel`?)");
}

static void test_add_share(void **state)
{
	struct control_request req;

	(void)state;
	parse_ok(REQ("add_share", "{\"host\":\"/srv\",\"guest\":\"/mnt\",\"read_only\":true}"),
		 &req);
	assert_int_equal(req.method, CONTROL_ADD_SHARE);
	assert_string_equal(req.share.host, "/srv");
	assert_string_equal(req.share.guest, "/mnt");
	assert_true(req.share.read_only);
	control_request_free(&req);

	parse_ok(REQ("add_share", "{\"host\":\"/srv\",\"guest\":\"/mnt\"}"), &req);
	assert_false(req.share.read_only);
	control_request_free(&req);

	params_refused(REQ("add_share", "{\"host\":\"/srv\"}"),
		       "add_share: missing parameter `guest`");
	params_refused(REQ("add_share", "{}"), "add_share: missing parameter `host`");
	params_refused(REQ("add_share", "{\"host\":\"/srv\",\"guest\":\"/mnt\",\"read_only\":1}"),
		       "add_share: read_only must be true or false, got a number");
	/* No params at all: the required ones are missing. */
	refused("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"add_share\"}", CONTROL_E_PARAMS, "7",
		"add_share: missing parameter `host`");
}

static void test_set_vsock_and_defaults(void **state)
{
	struct control_request req;

	(void)state;
	parse_ok(REQ("set_vsock", "{\"cid\":4294967294,\"uds\":\"/run/v.sock\"}"), &req);
	assert_int_equal(req.method, CONTROL_SET_VSOCK);
	assert_true(req.vsock.cid.set);
	assert_int_equal(req.vsock.cid.value, 4294967294u);
	assert_string_equal(req.vsock.uds, "/run/v.sock");
	control_request_free(&req);

	parse_ok(
	    REQ("set_exec_defaults",
		"{\"env\":[\"A=1\",\"PATH=/bin\",\"E=\"],\"uid\":1000,\"gid\":0,\"cwd\":\"/w\"}"),
	    &req);
	assert_int_equal(req.method, CONTROL_SET_EXEC_DEFAULTS);
	assert_string_equal(req.defaults.env[0], "A=1");
	assert_string_equal(req.defaults.env[1], "PATH=/bin");
	assert_string_equal(req.defaults.env[2], "E=");
	assert_null(req.defaults.env[3]);
	assert_int_equal(req.defaults.uid.value, 1000);
	assert_true(req.defaults.gid.set);
	assert_int_equal(req.defaults.gid.value, 0);
	assert_string_equal(req.defaults.cwd, "/w");
	control_request_free(&req);

	parse_ok(REQ("set_exec_defaults", "{\"env\":[]}"), &req);
	assert_non_null(req.defaults.env);
	assert_null(req.defaults.env[0]);
	assert_false(req.defaults.uid.set);
	control_request_free(&req);

	params_refused(REQ("set_exec_defaults", "{\"env\":[\"A=1\",\"B=2\",\"FOO\"]}"),
		       "set_exec_defaults: env[2] must be K=V, got `FOO`");
	params_refused(REQ("set_exec_defaults", "{\"env\":[\"=x\"]}"),
		       "set_exec_defaults: env[0] must be K=V, got `=x`");
	params_refused(REQ("set_exec_defaults", "{\"env\":\"A=1\"}"),
		       "set_exec_defaults: env must be an array of strings, got a string");
	params_refused(REQ("set_exec_defaults", "{\"env\":[\"A=1\",2]}"),
		       "set_exec_defaults: env[1] must be a string, got a number");
	params_refused(REQ("set_exec_defaults", "{\"env\":[\"A=\\u0000\"]}"),
		       "set_exec_defaults: env[0] must not contain a NUL byte");
	params_refused(REQ("set_vsock", "{\"cid\":\"3\"}"),
		       "set_vsock: cid must be a whole number, got a string");
}

static void test_no_param_methods(void **state)
{
	static const char *const names[] = {"start",	"pause",   "resume",
					    "describe", "metrics", "describe_egress"};
	struct control_request req;
	char line[160], message[128];

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(line, sizeof(line), "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"%s\"}",
			 names[i]);
		parse_ok(line, &req);
		assert_string_equal(control_method_name(req.method), names[i]);
		control_request_free(&req);
		snprintf(line, sizeof(line), REQ("%s", "{}"), names[i]);
		parse_ok(line, &req);
		assert_string_equal(control_method_name(req.method), names[i]);
		snprintf(line, sizeof(line), REQ("%s", "{\"force\":true}"), names[i]);
		snprintf(message, sizeof(message), "%s: unknown parameter `force`", names[i]);
		params_refused(line, message);
		snprintf(line, sizeof(line), REQ("%s", "[]"), names[i]);
		snprintf(message, sizeof(message), "%s: params must be an object, got an array",
			 names[i]);
		params_refused(line, message);
		snprintf(line, sizeof(line), REQ("%s", "null"), names[i]);
		snprintf(message, sizeof(message), "%s: params must be an object, got null",
			 names[i]);
		params_refused(line, message);
	}
}

/* The broker's update_egress: rules to add and to remove, both optional. */
static void test_update_egress(void **state)
{
	struct control_request req;

	(void)state;
	parse_ok(
	    REQ("update_egress", "{\"allow\":[\"a.example.com\"],\"revoke\":[\"b:443\",\"c\"]}"),
	    &req);
	assert_int_equal(req.method, CONTROL_UPDATE_EGRESS);
	assert_string_equal(req.egress.allow[0], "a.example.com");
	assert_null(req.egress.allow[1]);
	assert_string_equal(req.egress.revoke[0], "b:443");
	assert_string_equal(req.egress.revoke[1], "c");
	assert_null(req.egress.revoke[2]);
	control_request_free(&req);
	parse_ok(REQ("update_egress", "{}"), &req);
	assert_null(req.egress.allow);
	assert_null(req.egress.revoke);
	control_request_free(&req);
	params_refused(REQ("update_egress", "{\"revoke\":\"a.example.com\"}"),
		       "update_egress: revoke must be an array of strings, got a string");
	params_refused(REQ("update_egress", "{\"revok\":[]}"),
		       "update_egress: unknown parameter `revok` (did you mean `revoke`?)");
	params_refused(REQ("update_egress", "{\"secrets\":[]}"),
		       "update_egress: unknown parameter `secrets`");
}

static void test_egress_lines(void **state)
{
	const char *const allow[] = {"a.example.com", "*.b.example.com:443", NULL};
	const char *const revoke[] = {"c\"d", NULL}, *const none[] = {NULL};
	const struct control_egress_secret secrets[] = {{"ANTHROPIC", "api.anthropic.com", 443}};
	const struct control_egress e = {allow, secrets, 1, 2, 10, 3, 100, 2000, 1};
	const struct control_egress described = {none, NULL, 0, 0, 0, 0, 0, 0, -1};
	char *text;

	(void)state;
	text = control_update_egress_params(allow, revoke);
	assert_string_equal(text, "{\"allow\":[\"a.example.com\",\"*.b.example.com:443\"],"
				  "\"revoke\":[\"c\\\"d\"]}");
	free(text);
	text = control_update_egress_params(NULL, none);
	assert_string_equal(text, "{}");
	free(text);
	text = control_reply_egress("4", &e);
	assert_string_equal(
	    text, "{\"jsonrpc\":\"2.0\",\"id\":4,\"result\":{\"allow\":[\"a.example.com\",\"*.b."
		  "example.com:443\"],\"secrets\":[{\"name\":\"ANTHROPIC\",\"host\":\"api."
		  "anthropic.com\",\"port\":443}],\"connections\":2,\"connections_total\":10,"
		  "\"denied_total\":3,\"bytes_up\":100,\"bytes_down\":2000,\"closed\":1}}\n");
	free(text);
	text = control_reply_egress("\"x\"", &described);
	assert_string_equal(text, "{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"result\":{\"allow\":[],"
				  "\"secrets\":[],\"connections\":0,\"connections_total\":0,"
				  "\"denied_total\":0,\"bytes_up\":0,\"bytes_down\":0}}\n");
	free(text);
}

static void test_stop(void **state)
{
	struct control_request req;

	(void)state;
	parse_ok(REQ("stop", "{\"timeout_ms\":2500}"), &req);
	assert_int_equal(req.method, CONTROL_STOP);
	assert_true(req.stop.timeout_ms.set);
	assert_int_equal(req.stop.timeout_ms.value, 2500);
	parse_ok(REQ("stop", "{}"), &req);
	assert_false(req.stop.timeout_ms.set);
	params_refused(REQ("stop", "{\"timout_ms\":5}"),
		       "stop: unknown parameter `timout_ms` (did you mean `timeout_ms`?)");
	/* Three edits away: no guess. */
	params_refused(REQ("stop", "{\"timeout\":5}"), "stop: unknown parameter `timeout`");
}

static void test_exec(void **state)
{
	struct control_request req;

	(void)state;
	parse_ok(REQ("exec", "{\"argv\":[\"sh\",\"-c\",\"echo $X\",\"\"],\"env\":[\"X=1\"],"
			     "\"cwd\":\"/tmp\",\"uid\":1000,\"gid\":100,\"tty\":true,\"rows\":24,"
			     "\"cols\":80,\"main\":true,\"attach\":true}"),
		 &req);
	assert_int_equal(req.method, CONTROL_EXEC);
	assert_string_equal(req.exec.argv[0], "sh");
	assert_string_equal(req.exec.argv[1], "-c");
	assert_string_equal(req.exec.argv[2], "echo $X");
	assert_string_equal(req.exec.argv[3], "");
	assert_null(req.exec.argv[4]);
	assert_string_equal(req.exec.env[0], "X=1");
	assert_null(req.exec.env[1]);
	assert_string_equal(req.exec.cwd, "/tmp");
	assert_int_equal(req.exec.uid.value, 1000);
	assert_int_equal(req.exec.gid.value, 100);
	assert_int_equal(req.exec.rows.value, 24);
	assert_int_equal(req.exec.cols.value, 80);
	assert_true(req.exec.tty && req.exec.main && req.exec.attach);
	control_request_free(&req);

	parse_ok(REQ("exec", "{\"argv\":[\"true\"]}"), &req);
	assert_null(req.exec.env);
	assert_null(req.exec.cwd);
	assert_false(req.exec.uid.set || req.exec.rows.set);
	assert_false(req.exec.tty || req.exec.main || req.exec.attach);
	control_request_free(&req);

	params_refused(REQ("exec", "{}"), "exec: missing parameter `argv`");
	params_refused(REQ("exec", "{\"argv\":[]}"),
		       "exec: argv must be a non-empty array of strings, got an empty one");
	params_refused(REQ("exec", "{\"argv\":\"ls -l\"}"),
		       "exec: argv must be a non-empty array of strings, got a string");
	params_refused(REQ("exec", "{\"argv\":[\"\",\"x\"]}"), "exec: argv[0] must not be empty");
	params_refused(REQ("exec", "{\"argv\":[\"ls\",null]}"),
		       "exec: argv[1] must be a string, got null");
	params_refused(REQ("exec", "{\"argv\":[\"l\\u0000s\"]}"),
		       "exec: argv[0] must not contain a NUL byte");
	params_refused(REQ("exec", "{\"argv\":[\"ls\"],\"env\":[\"A=1\",\"B=2\",\"FOO\"]}"),
		       "exec: env[2] must be K=V, got `FOO`");
	params_refused(REQ("exec", "{\"argv\":[\"ls\"],\"tty\":\"yes\"}"),
		       "exec: tty must be true or false, got a string");
	params_refused(REQ("exec", "{\"argv\":[\"ls\"],\"uid\":-1}"),
		       "exec: uid must be a whole number >= 0, got -1");
	params_refused(REQ("exec", "{\"args\":[\"ls\"]}"),
		       "exec: unknown parameter `args` (did you mean `argv`?)");
}

/* An exec request with n argv strings (or n env strings). */
static char *exec_line(size_t n, bool env)
{
	size_t cap = 128 + n * 8;
	char *line = malloc(cap), *p = line;

	if (!line)
		abort();
	p +=
	    sprintf(p, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"exec\",\"params\":{\"argv\":[%s",
		    env ? "\"x\"],\"env\":[" : "");
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "%s\"%s\"", i ? "," : "", env ? "A=1" : "a");
	strcpy(p, "]}}");
	return line;
}

static void test_exec_limits(void **state)
{
	struct control_request req;
	char *line;

	(void)state;
	line = exec_line(CONTROL_MAX_ARGS, false);
	parse_ok(line, &req);
	assert_string_equal(req.exec.argv[CONTROL_MAX_ARGS - 1], "a");
	assert_null(req.exec.argv[CONTROL_MAX_ARGS]);
	control_request_free(&req);
	free(line);
	line = exec_line(CONTROL_MAX_ARGS + 1, false);
	params_refused(line, "exec: argv has 4097 strings, at most 4096");
	free(line);

	line = exec_line(CONTROL_MAX_ENV, true);
	parse_ok(line, &req);
	assert_null(req.exec.env[CONTROL_MAX_ENV]);
	control_request_free(&req);
	free(line);
	line = exec_line(CONTROL_MAX_ENV + 1, true);
	params_refused(line, "exec: env has 257 strings, at most 256");
	free(line);
}

static void test_signal(void **state)
{
	static const struct {
		const char *given;
		int signo;
	} names[] = {
	    {"9", SIGKILL},
	    {"\"SIGTERM\"", SIGTERM},
	    {"\"TERM\"", SIGTERM},
	    {"\"hup\"", SIGHUP},
	    {"\"SIGINT\"", SIGINT},
	    {"\"QUIT\"", SIGQUIT},
	    {"\"USR1\"", SIGUSR1},
	    {"\"SIGUSR2\"", SIGUSR2},
	    {"\"PIPE\"", SIGPIPE},
	    {"\"ALRM\"", SIGALRM},
	    {"\"CONT\"", SIGCONT},
	    {"\"STOP\"", SIGSTOP},
	    {"\"TSTP\"", SIGTSTP},
	    {"\"WINCH\"", SIGWINCH},
	    {"\"SIGRTMIN\"", 0},
	    {"\"SIGRTMIN+3\"", 3},
	    {"\"RTMAX\"", -1},
	    {"\"RTMAX-2\"", -3},
	    {"64", 64},
	    {"1", 1},
	};
	struct control_request req;
	char line[160];

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int want = names[i].signo;

		if (strstr(names[i].given, "RTMIN"))
			want += SIGRTMIN;
		else if (strstr(names[i].given, "RTMAX"))
			want += SIGRTMAX + 1;
		snprintf(line, sizeof(line), REQ("signal", "{\"signal\":%s}"), names[i].given);
		parse_ok(line, &req);
		assert_int_equal(req.method, CONTROL_SIGNAL);
		assert_int_equal(req.signal.signo, want);
		assert_false(req.signal.id.set);
		control_request_free(&req);
	}
	parse_ok(REQ("signal", "{\"signal\":\"KILL\",\"id\":3}"), &req);
	assert_true(req.signal.id.set);
	assert_int_equal(req.signal.id.value, 3);

	params_refused(REQ("signal", "{}"), "signal: missing parameter `signal`");
	params_refused(REQ("signal", "{\"signal\":0}"), "signal: signal must be 1 to 64, got 0");
	params_refused(REQ("signal", "{\"signal\":65}"), "signal: signal must be 1 to 64, got 65");
	params_refused(REQ("signal", "{\"signal\":-9}"), "signal: signal must be 1 to 64, got -9");
	params_refused(REQ("signal", "{\"signal\":\"SIGFOO\"}"), "signal: no signal `SIGFOO`");
	params_refused(REQ("signal", "{\"signal\":\"RTMIN+99\"}"), "signal: no signal `RTMIN+99`");
	params_refused(REQ("signal", "{\"signal\":\"RTMIN-1\"}"), "signal: no signal `RTMIN-1`");
	params_refused(REQ("signal", "{\"signal\":\"RTMIN+\"}"), "signal: no signal `RTMIN+`");
	params_refused(REQ("signal", "{\"signal\":\"\"}"), "signal: no signal ``");
	params_refused(REQ("signal", "{\"signal\":\"TERM\\u0000\"}"),
		       "signal: signal must not contain a NUL byte");
	params_refused(REQ("signal", "{\"signal\":9.0}"),
		       "signal: signal must be a number or a name, got a number");
	params_refused(REQ("signal", "{\"signal\":\"TERM\",\"id\":\"1\"}"),
		       "signal: id must be a whole number, got a string");
}

static void test_subscribe(void **state)
{
	struct control_request req;

	(void)state;
	parse_ok(REQ("subscribe", "{}"), &req);
	assert_int_equal(req.subscribe.events, CONTROL_EV_ALL);
	parse_ok("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"subscribe\"}", &req);
	assert_int_equal(req.subscribe.events, CONTROL_EV_ALL);
	parse_ok(REQ("subscribe", "{\"events\":[\"exit\",\"exec.exit\",\"exit\"]}"), &req);
	assert_int_equal(req.subscribe.events, CONTROL_EV_EXIT | CONTROL_EV_EXEC_EXIT);
	parse_ok(REQ("subscribe", "{\"events\":[\"ready\",\"error\"]}"), &req);
	assert_int_equal(req.subscribe.events, CONTROL_EV_READY | CONTROL_EV_ERROR);
	parse_ok(REQ("subscribe", "{\"events\":[]}"), &req);
	assert_int_equal(req.subscribe.events, 0);

	params_refused(REQ("subscribe", "{\"events\":[\"exec-exit\"]}"),
		       "subscribe: no event `exec-exit` (did you mean `exec.exit`?)");
	params_refused(REQ("subscribe", "{\"events\":[\"everything\"]}"),
		       "subscribe: no event `everything`");
	params_refused(REQ("subscribe", "{\"events\":[\"exit\\u0000\"]}"),
		       "subscribe: events[0] must not contain a NUL byte");
	params_refused(REQ("subscribe", "{\"events\":\"exit\"}"),
		       "subscribe: events must be an array of event names, got a string");
	params_refused(REQ("subscribe", "{\"events\":[1]}"),
		       "subscribe: events[0] must be a string, got a number");
}

static void test_ids(void **state)
{
	char line[256], id[200];
	struct control_request req;

	(void)state;
	parse_ok("{\"jsonrpc\":\"2.0\",\"method\":\"start\",\"id\":-12}", &req);
	assert_string_equal(req.id, "-12");
	parse_ok("{\"jsonrpc\":\"2.0\",\"method\":\"start\",\"id\":\"a\\\"b\\u0000\"}", &req);
	assert_string_equal(req.id, "\"a\\\"b\\u0000\"");
	/* A notification: no id. */
	parse_ok("{\"jsonrpc\":\"2.0\",\"method\":\"start\"}", &req);
	assert_string_equal(req.id, "");

	refused("{\"jsonrpc\":\"2.0\",\"method\":\"start\",\"id\":null}", CONTROL_E_REQUEST, "null",
		"id must be a whole number or a string, got null");
	refused("{\"jsonrpc\":\"2.0\",\"method\":\"start\",\"id\":1.5}", CONTROL_E_REQUEST, "null",
		"id must be a whole number or a string, got a number");
	refused("{\"jsonrpc\":\"2.0\",\"method\":\"start\",\"id\":[1]}", CONTROL_E_REQUEST, "null",
		"id must be a whole number or a string, got an array");
	refused("{\"jsonrpc\":\"2.0\",\"method\":\"start\",\"id\":{}}", CONTROL_E_REQUEST, "null",
		"id must be a whole number or a string, got an object");
	refused("{\"jsonrpc\":\"2.0\",\"method\":\"start\",\"id\":false}", CONTROL_E_REQUEST,
		"null", "id must be a whole number or a string, got false");

	/* 127 characters of id text (125 and its quotes) fit, 128 do not. */
	memset(id, 'x', 125);
	id[125] = '\0';
	snprintf(line, sizeof(line), "{\"jsonrpc\":\"2.0\",\"method\":\"start\",\"id\":\"%s\"}",
		 id);
	parse_ok(line, &req);
	assert_int_equal(strlen(req.id), CONTROL_ID_MAX - 1);
	strcat(id, "x");
	snprintf(line, sizeof(line), "{\"jsonrpc\":\"2.0\",\"method\":\"start\",\"id\":\"%s\"}",
		 id);
	refused(line, CONTROL_E_REQUEST, "null", "id longer than 127 characters");
	/* Escapes count as written: 22 NULs are 132 characters of \u0000. */
	snprintf(line, sizeof(line), "{\"jsonrpc\":\"2.0\",\"method\":\"start\",\"id\":\"%s\"}",
		 "\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000"
		 "\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000");
	refused(line, CONTROL_E_REQUEST, "null", "id longer than 127 characters");
}

static void test_envelope_refusals(void **state)
{
	(void)state;
	refused("[{\"jsonrpc\":\"2.0\",\"method\":\"start\",\"id\":1}]", CONTROL_E_REQUEST, "null",
		"batches are not supported: send one request a line");
	refused("[]", CONTROL_E_REQUEST, "null",
		"batches are not supported: send one request a line");
	refused("\"start\"", CONTROL_E_REQUEST, "null", "a request is a JSON object, got a string");
	refused("{\"method\":\"start\",\"id\":1}", CONTROL_E_REQUEST, "1",
		"\"jsonrpc\" must be \"2.0\"");
	refused("{\"jsonrpc\":\"2.1\",\"method\":\"start\",\"id\":1}", CONTROL_E_REQUEST, "1",
		"\"jsonrpc\" must be \"2.0\"");
	refused("{\"jsonrpc\":2.0,\"method\":\"start\",\"id\":1}", CONTROL_E_REQUEST, "1",
		"\"jsonrpc\" must be \"2.0\"");
	refused("{\"jsonrpc\":\"2.0\\u0000\",\"method\":\"start\",\"id\":1}", CONTROL_E_REQUEST,
		"1", "\"jsonrpc\" must be \"2.0\"");
	refused("{\"jsonrpc\":\"2.0\",\"id\":\"x\"}", CONTROL_E_REQUEST, "\"x\"",
		"\"method\" must be a string");
	refused("{\"jsonrpc\":\"2.0\",\"method\":5,\"id\":1}", CONTROL_E_REQUEST, "1",
		"\"method\" must be a string");
	refused("{\"jsonrpc\":\"2.0\",\"method\":\"start\\u0000\",\"id\":1}", CONTROL_E_REQUEST,
		"1", "\"method\" must be a string without NUL bytes");
	/* Not answered either way, but still "null" rather than "": the request is malformed. */
	refused("{\"jsonrpc\":\"2.0\",\"method\":5}", CONTROL_E_REQUEST, "null",
		"\"method\" must be a string");
	refused("{\"jsonrpc\":\"2.0\",\"method\":\"start\",\"id\":1,\"param\":{}}",
		CONTROL_E_REQUEST, "1", "unknown member `param` in the request");

	refused("{\"jsonrpc\":\"2.0\",\"method\":\"strat\",\"id\":1}", CONTROL_E_METHOD, "1",
		"no method `strat` (did you mean `start`?)");
	refused("{\"jsonrpc\":\"2.0\",\"method\":\"describ\",\"id\":1}", CONTROL_E_METHOD, "1",
		"no method `describ` (did you mean `describe`?)");
	refused("{\"jsonrpc\":\"2.0\",\"method\":\"reboot\",\"id\":1}", CONTROL_E_METHOD, "1",
		"no method `reboot`");
	refused("{\"jsonrpc\":\"2.0\",\"method\":\"\",\"id\":1}", CONTROL_E_METHOD, "1",
		"no method ``");
	/* A well-formed notification's error keeps its empty id: it is not answered. */
	refused("{\"jsonrpc\":\"2.0\",\"method\":\"strat\"}", CONTROL_E_METHOD, "",
		"no method `strat` (did you mean `start`?)");
	refused("{\"jsonrpc\":\"2.0\",\"method\":\"stop\",\"params\":{\"timeout_ms\":-1}}",
		CONTROL_E_PARAMS, "", "stop: timeout_ms must be a whole number >= 0, got -1");
}

/* A long client string is quoted cut short, at a character boundary. */
static void test_long_names_quoted_short(void **state)
{
	char line[400], name[200], message[300];

	(void)state;
	memset(name, 'a', 63);
	strcpy(name + 63, "\u00e9\u00e9\u00e9"); /* é is 2 bytes: the 64th byte is inside one */
	snprintf(line, sizeof(line), "{\"jsonrpc\":\"2.0\",\"method\":\"%s\",\"id\":1}", name);
	name[63] = '\0';
	snprintf(message, sizeof(message), "no method `%s...`", name);
	refused(line, CONTROL_E_METHOD, "1", message);
}

static void test_parse_errors(void **state)
{
	(void)state;
	refused("", CONTROL_E_PARSE, "null",
		"not JSON: unexpected token near end of file at byte 0");
	refused("{\"jsonrpc\":\"2.0\",\"method\":\"start\",\"id\":1} x", CONTROL_E_PARSE, "null",
		"not JSON: end of file expected near 'x' at byte 43");
	refused("{\"jsonrpc\":\"2.0\",\"method\":\"start\",\"id\":1}{}", CONTROL_E_PARSE, "null",
		"not JSON: end of file expected near '{' at byte 42");
	refused("{\"jsonrpc\":\"2.0\",\"method\":\"start\",\"id\":1", CONTROL_E_PARSE, "null",
		"not JSON: '}' expected near end of file at byte 40");
	refused("{\"a\":1,\"a\":2}", CONTROL_E_PARSE, "null",
		"not JSON: duplicate object key near '\"a\"' at byte 10");
	refused("{\"x\":\"\xff\"}", CONTROL_E_PARSE, "null",
		"not JSON: unable to decode byte 0xff near '\"' at byte 6");
	refused("{\"x\":\"\xc0\xaf\"}", CONTROL_E_PARSE, "null",
		"not JSON: unable to decode byte 0xc0 near '\"' at byte 6");
	refused("{\"k\\u0000\":1}", CONTROL_E_PARSE, "null",
		"not JSON: NUL byte in object key not supported near '\"k\\u0000\"' at byte 10");
	refused_len("{\"jsonrpc\":\"2.0\",\0\"method\":\"start\"}", 35, CONTROL_E_PARSE, "null",
		    "not JSON: string or '}' expected near end of file at byte 18");
	/* Past int64: jansson refuses the line rather than wrap it. */
	refused(REQ("set_machine", "{\"vcpus\":9223372036854775808}"), CONTROL_E_PARSE, "null",
		"not JSON: too big integer near '9223372036854775808' at byte 84");
	refused(REQ("set_machine", "{\"vcpus\":-99999999999999999999}"), CONTROL_E_PARSE, "null",
		"not JSON: too big negative integer at byte 86");
	refused(REQ("set_machine", "{\"vcpus\":1e999}"), CONTROL_E_PARSE, "null",
		"not JSON: real number overflow near '1e999' at byte 70");
	params_refused(REQ("set_machine", "{\"vcpus\":1e300}"),
		       "set_machine: vcpus must be a whole number >= 0, got 1e+300");
}

static void test_deep_nesting(void **state)
{
	static const char head[] =
	    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"start\",\"params\":{\"a\":";
	size_t depth = 100000;
	char *line = malloc(2 * depth);
	struct control_request req;
	struct control_error err;

	(void)state;
	assert_non_null(line);
	memset(line, '[', depth);
	memset(line + depth, ']', depth);
	assert_int_equal(parse_len(line, 2 * depth, &req, &err), -1);
	assert_int_equal(err.code, CONTROL_E_PARSE);
	assert_non_null(strstr(err.message, "maximum parsing depth reached"));
	/* Deep inside params: refused the same way. */
	memcpy(line, head, sizeof(head) - 1);
	assert_int_equal(parse_len(line, depth, &req, &err), -1);
	assert_int_equal(err.code, CONTROL_E_PARSE);
	free(line);
}

static void test_line_limit(void **state)
{
	const char *head = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"start\"}";
	char *line = malloc(CONTROL_LINE_MAX + 1);
	struct control_request req;
	struct control_error err;

	(void)state;
	assert_non_null(line);
	/* Exactly 1 MiB (trailing blanks are allowed JSON): parsed. */
	memset(line, ' ', CONTROL_LINE_MAX + 1);
	memcpy(line, head, strlen(head));
	assert_int_equal(parse_len(line, CONTROL_LINE_MAX, &req, &err), 0);
	assert_int_equal(req.method, CONTROL_START);
	/* One byte more: refused before parsing, whatever it holds. */
	refused_len(line, CONTROL_LINE_MAX + 1, CONTROL_E_REQUEST, "null",
		    "request line over 1 MiB");
	free(line);
}

/* Parses a built line: one line ending in "\n", with no other newline, that
 * control_parse_reply reads. */
static void read_line(char *line, struct control_reply *r)
{
	size_t len;

	assert_non_null(line);
	len = strlen(line);
	assert_true(len > 0 && line[len - 1] == '\n');
	assert_ptr_equal(strchr(line, '\n'), line + len - 1);
	assert_int_equal(control_parse_reply(line, len - 1, r), 0);
	free(line);
}

static void test_reply_builders(void **state)
{
	struct control_reply r;
	char *line;
	int64_t n;

	(void)state;
	line = control_reply_error("7", CONTROL_E_STATE, "`start` needs state configured");
	assert_string_equal(line, "{\"jsonrpc\":\"2.0\",\"id\":7,\"error\":{\"code\":1,"
				  "\"message\":\"`start` needs state configured\"}}\n");
	read_line(line, &r);
	assert_false(r.is_event);
	assert_int_equal(r.id, 7);
	assert_int_equal(r.code, CONTROL_E_STATE);
	assert_string_equal(r.message, "`start` needs state configured");
	assert_null(r.result);
	control_reply_free(&r);

	/* A string id is echoed as such; "null" and "" give null. */
	line = control_reply_error("\"a\\u0000\"", CONTROL_E_PARSE, "x\ny");
	assert_string_equal(line,
			    "{\"jsonrpc\":\"2.0\",\"id\":\"a\\u0000\",\"error\":{\"code\":-32700,"
			    "\"message\":\"x\\ny\"}}\n");
	read_line(line, &r);
	assert_int_equal(r.id, -1);
	assert_string_equal(r.message, "x\ny");
	control_reply_free(&r);
	line = control_reply_error("null", CONTROL_E_REQUEST, NULL);
	assert_string_equal(line, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32600,"
				  "\"message\":\"\"}}\n");
	free(line);
	line = control_reply_empty("");
	assert_string_equal(line, "{\"jsonrpc\":\"2.0\",\"id\":null,\"result\":{}}\n");
	free(line);

	line = control_reply_empty("12");
	read_line(line, &r);
	assert_int_equal(r.id, 12);
	assert_int_equal(r.code, 0);
	assert_null(r.message);
	assert_string_equal(r.result, "{}");
	control_reply_free(&r);

	line = control_reply_exec("3", 42);
	assert_string_equal(line, "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"id\":42}}\n");
	read_line(line, &r);
	assert_int_equal(control_json_int(r.result, "id", &n), 0);
	assert_int_equal(n, 42);
	control_reply_free(&r);
	/* Past int64: capped, not wrapped. */
	line = control_reply_exec("3", UINT64_MAX);
	read_line(line, &r);
	assert_int_equal(control_json_int(r.result, "id", &n), 0);
	assert_true(n == INT64_MAX);
	control_reply_free(&r);
}

static void test_reply_describe(void **state)
{
	const struct control_share_info shares[] = {
	    {"/srv/a", "/mnt/a", "share0", true},
	    {"/srv/\xff\xfe", NULL, "share1", false},
	};
	const char *const env[] = {"A=1", "B=\xc3", NULL};
	const struct control_describe d = {
	    .name = "box",
	    .state = "stopped",
	    .pid = 4242,
	    .uptime_ms = 1500,
	    .ready = true,
	    .ready_ms = 120,
	    .vcpus = 2,
	    .memory_mib = 256,
	    .pids = 128,
	    .kernel = "/k/vmlinux",
	    .cmdline = "quiet\n",
	    .shares = shares,
	    .nshares = 2,
	    .vsock_cid = 3,
	    .vsock_uds = "/run/v.sock",
	    .env = env,
	    .uid = 1000,
	    .gid = 1000,
	    .cwd = "/",
	    .execs = 1,
	    .exit_reason = "exited",
	    .exit_status = 3,
	};
	char s[64], *expected;
	struct control_reply r;
	int64_t n;

	(void)state;
	read_line(control_reply_describe("9", &d), &r);
	assert_int_equal(r.id, 9);
	expected =
	    "{\"protocol\":1,\"name\":\"box\",\"state\":\"stopped\",\"pid\":4242,"
	    "\"uptime_ms\":1500,\"ready_ms\":120,\"config\":{\"vcpus\":2,\"memory_mib\":256,"
	    "\"pids\":128,"
	    "\"kernel\":\"/k/vmlinux\",\"initrd\":null,\"rootfs\":null,\"cmdline\":"
	    "\"quiet\\n\",\"console_log\":null,\"shares\":[{\"host\":\"/srv/a\",\"guest\":"
	    "\"/mnt/a\",\"tag\":\"share0\",\"read_only\":true},{\"host\":\"/srv/\xef\xbf\xbd"
	    "\xef\xbf\xbd\",\"guest\":null,\"tag\":\"share1\",\"read_only\":false}],\"vsock\":"
	    "{\"cid\":3,\"uds\":\"/run/v.sock\"},\"exec_defaults\":{\"env\":[\"A=1\",\"B="
	    "\xef\xbf\xbd\"],\"uid\":1000,\"gid\":1000,\"cwd\":\"/\"}},\"execs\":1,\"exit\":"
	    "{\"reason\":\"exited\",\"status\":3,\"message\":null}}";
	assert_string_equal(r.result, expected);
	assert_int_equal(control_json_int(r.result, "exit.status", &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(control_json_int(r.result, "config.vsock.cid", &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(control_json_string(r.result, "exit.reason", s, sizeof(s)), 0);
	assert_string_equal(s, "exited");
	assert_int_equal(control_json_string(r.result, "exit.message", s, sizeof(s)), 0);
	assert_string_equal(s, "");
	assert_int_equal(control_json_string(r.result, "config.initrd", s, sizeof(s)), 0);
	assert_string_equal(s, "");
	/* An array's items by their index. */
	assert_int_equal(control_json_string(r.result, "config.shares.1.tag", s, sizeof(s)), 0);
	assert_string_equal(s, "share1");
	assert_int_equal(control_json_string(r.result, "config.exec_defaults.env.0", s, sizeof(s)),
			 0);
	assert_string_equal(s, "A=1");
	assert_int_equal(control_json_string(r.result, "config.shares.2.tag", s, sizeof(s)), -1);
	assert_int_equal(control_json_string(r.result, "config.shares.x", s, sizeof(s)), -1);
	control_reply_free(&r);

	/* Before start: no ready time, no exit, no vsock, no env. */
	const struct control_describe fresh = {.name = "b", .state = "configured", .pid = 1};
	read_line(control_reply_describe("1", &fresh), &r);
	assert_int_equal(control_json_int(r.result, "ready_ms", &n), -1);
	assert_int_equal(control_json_int(r.result, "exit.status", &n), -1);
	assert_non_null(strstr(r.result, "\"ready_ms\":null,"));
	assert_non_null(strstr(r.result, "\"vsock\":{\"cid\":null,\"uds\":null}"));
	assert_non_null(strstr(r.result, "\"env\":[]"));
	assert_non_null(strstr(r.result, "\"shares\":[]"));
	assert_non_null(strstr(r.result, "\"exit\":null}"));
	control_reply_free(&r);
}

static void test_reply_metrics(void **state)
{
	struct control_metrics m = {
	    .exits_io = 1,
	    .exits_mmio = 2,
	    .exits_hlt = 3,
	    .exits_intr = 4,
	    .exits_other = 5,
	    .vsock_rx_packets = 6,
	    .vsock_tx_packets = 7,
	    .vsock_rx_bytes = 8,
	    .vsock_tx_bytes = 9,
	    .vsock_connections = 10,
	    .fs = {{"share0", 11, 12, 13}},
	    .nfs = 1,
	    .rng_bytes = 14,
	    .vmm_rss_kib = 15,
	    .guest_rss_kib = 16,
	};
	struct control_reply r;

	(void)state;
	read_line(control_reply_metrics("2", &m), &r);
	assert_string_equal(
	    r.result,
	    "{\"vcpu_exits\":{\"io\":1,\"mmio\":2,\"hlt\":3,\"intr\":4,\"other\":5},\"vsock\":"
	    "{\"rx_packets\":6,\"tx_packets\":7,\"rx_bytes\":8,\"tx_bytes\":9,\"connections\":10},"
	    "\"fs\":[{\"tag\":\"share0\",\"requests\":11,\"bytes_read\":12,\"bytes_written\":13}],"
	    "\"rng\":{\"bytes\":14},\"memory\":{\"vmm_rss_kib\":15,\"guest_rss_kib\":16}}");
	control_reply_free(&r);
	/* nfs past the array is capped at its size. */
	m.nfs = 1000;
	read_line(control_reply_metrics("2", &m), &r);
	control_reply_free(&r);
}

static void test_events(void **state)
{
	struct control_reply r;
	char *line;
	int64_t n;

	(void)state;
	line = control_event_ready(87);
	assert_string_equal(line,
			    "{\"jsonrpc\":\"2.0\",\"method\":\"ready\",\"params\":{\"ms\":87}}\n");
	read_line(line, &r);
	assert_true(r.is_event);
	assert_string_equal(r.method, "ready");
	assert_int_equal(r.id, -1);
	assert_string_equal(r.result, "{\"ms\":87}");
	control_reply_free(&r);

	read_line(control_event_exec_exit(5, 143), &r);
	assert_string_equal(r.method, "exec.exit");
	assert_string_equal(r.result, "{\"id\":5,\"status\":143}");
	control_reply_free(&r);

	line = control_event_exit("error", 125, "kernel `/x`: \xff");
	assert_string_equal(
	    line, "{\"jsonrpc\":\"2.0\",\"method\":\"exit\",\"params\":{\"reason\":"
		  "\"error\",\"status\":125,\"message\":\"kernel `/x`: \xef\xbf\xbd\"}}\n");
	read_line(line, &r);
	assert_int_equal(control_json_int(r.result, "status", &n), 0);
	assert_int_equal(n, 125);
	control_reply_free(&r);
	read_line(control_event_exit("exited", 0, NULL), &r);
	assert_string_equal(r.result, "{\"reason\":\"exited\",\"status\":0,\"message\":null}");
	control_reply_free(&r);

	read_line(control_event_error(CONTROL_E_GUEST, "the guest\r\nfailed"), &r);
	assert_string_equal(r.method, "error");
	assert_string_equal(r.result, "{\"code\":4,\"message\":\"the guest\\r\\nfailed\"}");
	control_reply_free(&r);
}

/* Invalid UTF-8 of every kind becomes U+FFFD per bad byte; valid sequences stay. */
static void test_invalid_utf8_replaced(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"ok \xe2\x82\xac \xf0\x9f\x98\x80", "ok \xe2\x82\xac \xf0\x9f\x98\x80"},
	    {"\x80", "\xef\xbf\xbd"},
	    {"a\xc3", "a\xef\xbf\xbd"},				      /* cut short */
	    {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},		      /* overlong */
	    {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* a surrogate */
	    {"\xf4\x90\x80\x80",
	     "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* > U+10FFFF */
	    {"\xe0\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
	    {"\xff\xfex", "\xef\xbf\xbd\xef\xbf\xbdx"},
	};
	struct control_reply r;
	char s[64];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		read_line(control_event_error(1, cases[i].in), &r);
		assert_int_equal(control_json_string(r.result, "message", s, sizeof(s)), 0);
		assert_string_equal(s, cases[i].out);
		control_reply_free(&r);
	}
}

static void test_request_lines(void **state)
{
	const char *argv[] = {"sh", "-c", "printf '%s\\n' \"$X\"", NULL};
	const char *env[] = {"X=\xff", NULL};
	struct control_request req;
	char *params, *line;

	(void)state;
	line = control_request_line(1, "describe", NULL);
	assert_string_equal(line, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"describe\"}\n");
	parse_ok(line, &req);
	free(line);

	params = control_exec_params(argv, env, "/tmp", true, 24, 80, true);
	assert_string_equal(params, "{\"argv\":[\"sh\",\"-c\",\"printf '%s\\\\n' \\\"$X\\\"\"],"
				    "\"env\":[\"X=\xef\xbf\xbd\"],\"cwd\":\"/tmp\",\"tty\":true,"
				    "\"rows\":24,\"cols\":80,\"attach\":true}");
	line = control_request_line(5, "exec", params);
	free(params);
	assert_ptr_equal(strchr(line, '\n'), line + strlen(line) - 1);
	assert_int_equal(parse_len(line, strlen(line) - 1, &req, &(struct control_error){0}), 0);
	free(line);
	assert_int_equal(req.method, CONTROL_EXEC);
	assert_string_equal(req.id, "5");
	assert_string_equal(req.exec.argv[2], argv[2]);
	assert_null(req.exec.argv[3]);
	assert_string_equal(req.exec.env[0], "X=\xef\xbf\xbd");
	assert_string_equal(req.exec.cwd, "/tmp");
	assert_true(req.exec.tty && req.exec.attach);
	assert_false(req.exec.main);
	assert_int_equal(req.exec.rows.value, 24);
	assert_int_equal(req.exec.cols.value, 80);
	control_request_free(&req);

	params = control_exec_params(argv, NULL, NULL, false, 0, 0, false);
	assert_string_equal(params, "{\"argv\":[\"sh\",\"-c\",\"printf '%s\\\\n' \\\"$X\\\"\"],"
				    "\"tty\":false}");
	free(params);
	/* params must be an object's JSON text. */
	assert_null(control_request_line(1, "exec", "[1]"));
	assert_null(control_request_line(1, "exec", "{"));
}

static void test_parse_reply_refusals(void **state)
{
	static const char *const bad[] = {
	    "",
	    "not json",
	    "[]",
	    "{\"id\":1,\"result\":{}}",
	    "{\"jsonrpc\":\"1.0\",\"id\":1,\"result\":{}}",
	    "{\"jsonrpc\":\"2.0\",\"result\":{}}",
	    "{\"jsonrpc\":\"2.0\",\"id\":1}",
	    "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{},\"error\":{\"code\":1,\"message\":\"\"}}",
	    "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":0,\"message\":\"\"}}",
	    "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":\"1\",\"message\":\"\"}}",
	    "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":4294967297,\"message\":\"\"}}",
	    "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1}}",
	    "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":[]}",
	    "{\"jsonrpc\":\"2.0\",\"method\":1,\"params\":{}}",
	    "{\"jsonrpc\":\"2.0\",\"method\":\"exit\",\"id\":1}",
	    "{\"jsonrpc\":\"2.0\",\"method\":\"a-name-of-thirty-two-characters!\"}",
	};
	struct control_reply r;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (control_parse_reply(bad[i], strlen(bad[i]), &r) != -1)
			fail_msg("accepted: %s", bad[i]);
		assert_null(r.message);
		assert_null(r.result);
	}
	/* An event without params, and a reply with a string id. */
	assert_int_equal(control_parse_reply("{\"jsonrpc\":\"2.0\",\"method\":\"x\"}", 30, &r), 0);
	assert_true(r.is_event);
	assert_null(r.result);
	assert_int_equal(
	    control_parse_reply("{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"result\":5}", 37, &r), 0);
	assert_int_equal(r.id, -1);
	assert_string_equal(r.result, "5");
	control_reply_free(&r);
}

static void test_json_helpers(void **state)
{
	const char *json = "{\"a\":{\"b\":-5,\"s\":\"hi\",\"r\":1.5,\"n\":null},\"u\":18446744073}";
	char s[8], *pretty;
	int64_t n;

	(void)state;
	assert_int_equal(control_json_int(json, "a.b", &n), 0);
	assert_int_equal(n, -5);
	assert_int_equal(control_json_int(json, "u", &n), 0);
	assert_true(n == 18446744073LL);
	assert_int_equal(control_json_int(json, "a.s", &n), -1);
	assert_int_equal(control_json_int(json, "a.r", &n), -1);
	assert_int_equal(control_json_int(json, "a.b.c", &n), -1);
	assert_int_equal(control_json_int(json, "a.x", &n), -1);
	assert_int_equal(control_json_int(json, "a", &n), -1);
	assert_int_equal(control_json_int("{", "a", &n), -1);
	assert_int_equal(control_json_string(json, "a.s", s, sizeof(s)), 0);
	assert_string_equal(s, "hi");
	assert_int_equal(control_json_string(json, "a.s", s, 3), 0);
	assert_int_equal(control_json_string(json, "a.s", s, 2), -1); /* does not fit */
	assert_int_equal(control_json_string(json, "a.n", s, sizeof(s)), 0);
	assert_string_equal(s, "");
	assert_int_equal(control_json_string(json, "a.b", s, sizeof(s)), -1);
	assert_int_equal(control_json_string(json, "nope", s, sizeof(s)), -1);

	pretty = control_json_pretty("{\"a\":[1,2],\"b\":{}}");
	assert_string_equal(pretty, "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": {}\n}");
	free(pretty);
	pretty = control_json_pretty("\"x\"");
	assert_string_equal(pretty, "\"x\"");
	free(pretty);
	/* NULs escaped in strings read as they were written (a reply may carry them). */
	pretty = control_json_pretty("{\"a\":\"x\\u0000\"}");
	assert_string_equal(pretty, "{\n  \"a\": \"x\\u0000\"\n}");
	free(pretty);
	assert_int_equal(control_json_string("{\"a\":\"x\\u0000y\"}", "a", s, sizeof(s)), 0);
	assert_string_equal(s, "x");
	assert_null(control_json_pretty("{\"a\":"));
	assert_null(control_json_pretty(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_method_names),
	    cmocka_unit_test(test_set_machine),
	    cmocka_unit_test(test_set_boot),
	    cmocka_unit_test(test_add_share),
	    cmocka_unit_test(test_set_vsock_and_defaults),
	    cmocka_unit_test(test_no_param_methods),
	    cmocka_unit_test(test_update_egress),
	    cmocka_unit_test(test_egress_lines),
	    cmocka_unit_test(test_stop),
	    cmocka_unit_test(test_exec),
	    cmocka_unit_test(test_exec_limits),
	    cmocka_unit_test(test_signal),
	    cmocka_unit_test(test_subscribe),
	    cmocka_unit_test(test_ids),
	    cmocka_unit_test(test_envelope_refusals),
	    cmocka_unit_test(test_long_names_quoted_short),
	    cmocka_unit_test(test_parse_errors),
	    cmocka_unit_test(test_deep_nesting),
	    cmocka_unit_test(test_line_limit),
	    cmocka_unit_test(test_reply_builders),
	    cmocka_unit_test(test_reply_describe),
	    cmocka_unit_test(test_reply_metrics),
	    cmocka_unit_test(test_events),
	    cmocka_unit_test(test_invalid_utf8_replaced),
	    cmocka_unit_test(test_request_lines),
	    cmocka_unit_test(test_parse_reply_refusals),
	    cmocka_unit_test(test_json_helpers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

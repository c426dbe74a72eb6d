/* libFuzzer target for the control API's wire format (api/control.c, control_reply.c): the
 * input is one line as a client would send it. Besides the sanitizers, the target checks
 * what the module promises: a parsed request has a known method and an id that fits, an
 * exec's argv is non-empty; a refusal has a known code and a message; the reply built from
 * either is one line that control_parse_reply reads back with the same code; and whatever
 * bytes go into a builder come out as a line that parses (invalid UTF-8 replaced). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "api/control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A built line: one "\n" at its end and no other; read back, its error code is `code`. */
static void check_line(char *line, int code)
{
	struct control_reply r;
	size_t len;

	CHECK(line);
	len = strlen(line);
	CHECK(len > 0 && line[len - 1] == '\n');
	CHECK(strchr(line, '\n') == line + len - 1);
	CHECK(control_parse_reply(line, len - 1, &r) == 0);
	CHECK(r.code == code);
	control_reply_free(&r);
	free(line);
}

static bool known_code(int code)
{
	return code == CONTROL_E_PARSE || code == CONTROL_E_REQUEST || code == CONTROL_E_METHOD ||
	       code == CONTROL_E_PARAMS;
}

static void fuzz_request(const char *line, size_t size)
{
	struct control_request req;
	struct control_error err;

	if (control_parse_request(line, size, &req, &err) == 0) {
		CHECK((unsigned)req.method < CONTROL_METHODS);
		CHECK(strlen(req.id) < CONTROL_ID_MAX);
		if (req.method == CONTROL_EXEC)
			CHECK(req.exec.argv && req.exec.argv[0] && req.exec.argv[0][0]);
		if (req.method == CONTROL_SIGNAL)
			CHECK(req.signal.signo >= 1 && req.signal.signo <= 64);
		check_line(control_reply_empty(req.id), 0);
		control_request_free(&req);
		return;
	}
	CHECK(known_code(err.code));
	CHECK(memchr(err.message, '\0', sizeof(err.message)) && err.message[0]);
	CHECK(memchr(err.id, '\0', sizeof(err.id)));
	/* Only a well-formed notification's error has no id. */
	CHECK(err.id[0] || err.code == CONTROL_E_METHOD || err.code == CONTROL_E_PARAMS);
	check_line(control_reply_error(err.id, err.code, err.message), err.code);
}

static void fuzz_reply(const char *line, size_t size)
{
	struct control_reply r;
	char text[64];
	int64_t n;

	if (control_parse_reply(line, size, &r) != 0)
		return;
	CHECK(r.is_event ? r.code == 0 && r.id == -1 : !r.code == !r.message);
	if (r.result) {
		char *pretty = control_json_pretty(r.result);

		CHECK(pretty);
		free(pretty);
		(void)!control_json_int(r.result, "id", &n);
		(void)!control_json_string(r.result, "exit.reason", text, sizeof(text));
	}
	control_reply_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Parsed from a copy of exactly `size` bytes: no NUL after them to lean on. */
	char *line = malloc(size ? size : 1), *str = malloc(size + 1);

	if (!line || !str) {
		free(line);
		free(str);
		return 0;
	}
	memcpy(line, data, size);
	fuzz_request(line, size);
	fuzz_reply(line, size);
	/* The same bytes as a host string (up to a NUL) in builders. */
	memcpy(str, data, size);
	str[size] = '\0';
	check_line(control_event_error(CONTROL_E_HOST, str), 0);
	check_line(control_reply_error("1", CONTROL_E_HOST, str), CONTROL_E_HOST);
	free(line);
	free(str);
	return 0;
}

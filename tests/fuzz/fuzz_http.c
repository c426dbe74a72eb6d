/* libFuzzer target for the broker's request-head parser (broker/http.c): the input is the
 * bytes a guest sent on a proxy or key-injection port. Besides the sanitizers, the target
 * checks what the module promises: a refusal has one of the documented statuses, a reason
 * and an answer (http_error_response); a parsed head ends in CRLFCRLF within the input and
 * the limits, every span lies inside it, the host and port fit the form, and one byte less
 * of it asks for more; its upstream head (guest credentials dropped, a key added) parses
 * again as the same request in origin-form, with no hop-by-hop field and nothing dropped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_http: %s:%d: %s\n", __FILE__, __LINE__, #cond);      \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* span[0..len) lies inside buf[0..size). */
static bool inside(const char *buf, size_t size, const char *span, size_t len)
{
	return span >= buf && span <= buf + size && len <= (size_t)(buf + size - span);
}

static void check_refusal(enum http_result r, const struct http_request *req)
{
	char out[512];

	CHECK(r == HTTP_BAD_REQUEST || r == HTTP_METHOD_NOT_ALLOWED || r == HTTP_URI_TOO_LONG ||
	      r == HTTP_HEADERS_TOO_LARGE || r == HTTP_NOT_IMPLEMENTED ||
	      r == HTTP_VERSION_NOT_SUPPORTED);
	CHECK(req->error && req->error[0]);
	CHECK(http_error_response((int)r, req->error, out, sizeof(out)) > 0);
}

static void check_parsed(const char *buf, size_t size, const struct http_request *req)
{
	CHECK(req->head_len >= 4 && req->head_len <= size && req->head_len <= HTTP_HEAD_MAX);
	CHECK(memcmp(buf + req->head_len - 4, "\r\n\r\n", 4) == 0);
	CHECK(!req->error);
	CHECK(http_method_name(req->method));
	CHECK(req->minor == 0 || req->minor == 1);
	CHECK(req->nheaders <= HTTP_HEADERS_MAX);
	for (size_t i = 0; i < req->nheaders; i++) {
		const struct http_header *h = &req->headers[i];

		CHECK(h->name_len > 0 && inside(buf, req->head_len, h->name, h->name_len));
		CHECK(inside(buf, req->head_len, h->value, h->value_len));
		CHECK(!memchr(h->name, ':', h->name_len));
		CHECK(!memchr(h->value, '\r', h->value_len) &&
		      !memchr(h->value, '\n', h->value_len));
	}
	CHECK((req->method == HTTP_CONNECT) == (req->form == HTTP_FORM_AUTHORITY));
	if (req->form == HTTP_FORM_ORIGIN) {
		CHECK(req->host_kind == HTTP_HOST_NONE && !req->host[0] && req->port == 0);
		CHECK(req->path_len > 0 && req->path[0] == '/' && !req->path_slash);
	} else {
		size_t host_len = strnlen(req->host, sizeof(req->host));

		CHECK(req->host_kind != HTTP_HOST_NONE && req->port >= 1);
		CHECK(host_len > 0 && host_len <= HTTP_HOST_MAX && req->host[host_len - 1] != '.');
		for (size_t i = 0; i < host_len; i++)
			CHECK(req->host[i] < 'A' || req->host[i] > 'Z');
	}
	if (req->path_len)
		CHECK(inside(buf, req->head_len, req->path, req->path_len) &&
		      req->path_len <= HTTP_TARGET_MAX);
	if (req->form == HTTP_FORM_AUTHORITY)
		CHECK(req->path_len == 0 && req->body == HTTP_BODY_NONE);
	CHECK(req->body != HTTP_BODY_CHUNKED || req->minor == 1);
	CHECK(req->content_length <= HTTP_CONTENT_LENGTH_MAX);
	CHECK(req->body == HTTP_BODY_LENGTH || req->content_length == 0);
}

/* Fields the upstream head must not carry from the guest. */
static const char *const gone[] = {
    "proxy-connection", "proxy-authorization", "keep-alive",	 "te", "trailer", "upgrade",
    "authorization",	"transfer-encoding",   "content-length", NULL};

static bool is_gone(const struct http_header *h)
{
	for (const char *const *g = gone; *g; g++) {
		if (strlen(*g) == h->name_len && strncasecmp(h->name, *g, h->name_len) == 0)
			return true;
	}
	return false;
}

static void check_upstream(const struct http_request *req)
{
	static const char *const drop[] = {"x-api-key", "authorization", NULL};
	static char out[HTTP_HEAD_MAX * 2];
	const struct http_header add[] = {
	    {"Host", 4, "api.example", 11},
	    {"x-api-key", 9, "sk-host", 7},
	};
	bool origin = req->form == HTTP_FORM_ORIGIN;
	struct http_request again;
	size_t n, keys = 0, connections = 0, hosts = 0;
	enum http_result r;

	n = http_write_upstream_head(req, drop, origin ? add : add + 1, origin ? 2 : 1, out,
				     sizeof(out));
	if (req->method == HTTP_CONNECT) {
		CHECK(n == 0);
		return;
	}
	CHECK(n > 0);
	CHECK(http_write_upstream_head(req, drop, origin ? add : add + 1, origin ? 2 : 1, out,
				       n - 1) == 0);
	r = http_parse_request(out, n, &again);
	/* Fields added may carry it past a limit; nothing else may fail. */
	if (r == HTTP_HEADERS_TOO_LARGE)
		return;
	if (r != HTTP_OK)
		fprintf(stderr, "fuzz_http: upstream head refused (%d, %s):\n%.*s\n", r,
			again.error, (int)n, out);
	CHECK(r == HTTP_OK);
	CHECK(again.head_len == n && again.form == HTTP_FORM_ORIGIN && again.minor == 1);
	CHECK(again.method == req->method && again.body == req->body &&
	      again.content_length == req->content_length);
	CHECK(again.path_len == req->path_len + req->path_slash);
	for (size_t i = 0; i < again.nheaders; i++) {
		const struct http_header *h = &again.headers[i];

		CHECK(!is_gone(h) || (h->name[0] == 'C' && again.body == HTTP_BODY_LENGTH) ||
		      (h->name[0] == 'T' && again.body == HTTP_BODY_CHUNKED));
		if (h->name_len == 9 && strncasecmp(h->name, "x-api-key", 9) == 0) {
			CHECK(h->value_len == 7 && memcmp(h->value, "sk-host", 7) == 0);
			keys++;
		}
		if (h->name_len == 10 && strncasecmp(h->name, "connection", 10) == 0) {
			CHECK(h->value_len == 5 && memcmp(h->value, "close", 5) == 0);
			connections++;
		}
		hosts += h->name_len == 4 && strncasecmp(h->name, "host", 4) == 0;
	}
	CHECK(keys == 1 && connections == 1 && hosts == 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Parsed from a copy of exactly `size` bytes: no NUL after them to lean on. */
	char *buf = malloc(size ? size : 1);
	struct http_request req, shorter;
	enum http_result r;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	r = http_parse_request(buf, size, &req);
	if (r == HTTP_NEED_MORE) {
		CHECK(size < HTTP_HEAD_MAX && !req.error);
	} else if (r != HTTP_OK) {
		check_refusal(r, &req);
	} else {
		check_parsed(buf, size, &req);
		CHECK(http_parse_request(buf, req.head_len - 1, &shorter) == HTTP_NEED_MORE);
		check_upstream(&req);
	}
	free(buf);
	return 0;
}

/* Unit tests for the broker's request-head parser (broker/http.c): each request form with
 * every field it fills, HTTP_NEED_MORE on every prefix of valid heads, the exact status and
 * reason of each refusal (smuggling shapes, bad bytes, hosts and ports, every limit at and
 * one past it), the upstream head's exact bytes, and the error responses. Each head is
 * parsed from a heap copy of exactly its length, so that ASan sees any read past its end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/http.h"

/* A parse of a heap copy; its spans live until parsed_free. */
struct parsed {
	char *buf;
	struct http_request req;
	enum http_result r;
};

static void parse_len(struct parsed *p, const char *s, size_t len)
{
	p->buf = malloc(len ? len : 1);
	assert_non_null(p->buf);
	memcpy(p->buf, s, len);
	p->r = http_parse_request(p->buf, len, &p->req);
}

static void parsed_free(struct parsed *p)
{
	free(p->buf);
	p->buf = NULL;
}

/* s parses whole: its head is all of it. */
static void parse_ok(struct parsed *p, const char *s)
{
	parse_len(p, s, strlen(s));
	if (p->r != HTTP_OK)
		fail_msg("%s: %d %s", s, p->r, p->req.error);
	assert_int_equal(p->req.head_len, strlen(s));
}

static void refused_len(const char *s, size_t len, enum http_result status, const char *why)
{
	struct parsed p;

	parse_len(&p, s, len);
	if (p.r != status)
		fail_msg("%.*s: %d (%s), not %d", (int)(len > 200 ? 200 : len), s, p.r,
			 p.req.error ? p.req.error : "", status);
	assert_string_equal(p.req.error, why);
	parsed_free(&p);
}

static void refused(const char *s, enum http_result status, const char *why)
{
	refused_len(s, strlen(s), status, why);
}

static void assert_span(const char *span, size_t len, const char *want)
{
	if (len != strlen(want) || memcmp(span, want, len) != 0)
		fail_msg("span `%.*s`, not `%s`", (int)len, span, want);
}

static void assert_header(const struct http_request *req, size_t i, const char *name,
			  const char *value)
{
	assert_true(i < req->nheaders);
	assert_span(req->headers[i].name, req->headers[i].name_len, name);
	assert_span(req->headers[i].value, req->headers[i].value_len, value);
}

/* The request's method, form, and where it goes. */
static void assert_where(const struct http_request *req, enum http_method method,
			 enum http_form form, enum http_host_kind kind, const char *host,
			 unsigned port)
{
	assert_int_equal(req->method, method);
	assert_int_equal(req->form, form);
	assert_int_equal(req->host_kind, kind);
	assert_string_equal(req->host, host);
	assert_int_equal(req->port, port);
}

/* Every proper prefix of the head s asks for more; s itself parses, with or without a body
 * after it. */
static void prefixes_need_more(const char *s, const char *body)
{
	size_t head = strlen(s), total = head + strlen(body);
	char *whole = malloc(total + 1);
	struct parsed p;

	assert_non_null(whole);
	snprintf(whole, total + 1, "%s%s", s, body);
	for (size_t n = 0; n < head; n++) {
		parse_len(&p, whole, n);
		if (p.r != HTTP_NEED_MORE)
			fail_msg("prefix of %zu bytes: %d (%s)", n, p.r, p.req.error);
		parsed_free(&p);
	}
	for (size_t n = head; n <= total; n++) {
		parse_len(&p, whole, n);
		assert_int_equal(p.r, HTTP_OK);
		assert_int_equal(p.req.head_len, head);
		parsed_free(&p);
	}
	free(whole);
}

static void test_connect(void **state)
{
	struct parsed p;

	(void)state;
	parse_ok(&p, "CONNECT Api.Example.COM.:443 HTTP/1.1\r\nUser-Agent: curl\r\n\r\n");
	assert_where(&p.req, HTTP_CONNECT, HTTP_FORM_AUTHORITY, HTTP_HOST_NAME, "api.example.com",
		     443);
	assert_int_equal(p.req.minor, 1);
	assert_int_equal(p.req.path_len, 0);
	assert_int_equal(p.req.body, HTTP_BODY_NONE);
	assert_int_equal(p.req.nheaders, 1);
	assert_header(&p.req, 0, "User-Agent", "curl");
	parsed_free(&p);

	parse_ok(&p, "CONNECT [2001:DB8:0:0::1]:8443 HTTP/1.1\r\n\r\n");
	assert_where(&p.req, HTTP_CONNECT, HTTP_FORM_AUTHORITY, HTTP_HOST_IPV6, "2001:db8::1",
		     8443);
	parsed_free(&p);

	parse_ok(&p, "CONNECT 10.0.0.1:1 HTTP/1.0\r\n\r\n");
	assert_where(&p.req, HTTP_CONNECT, HTTP_FORM_AUTHORITY, HTTP_HOST_IPV4, "10.0.0.1", 1);
	assert_int_equal(p.req.minor, 0);
	parsed_free(&p);

	parse_ok(&p, "CONNECT a_b-c.d:65535 HTTP/1.1\r\nHost: a_b-c.d:65535\r\n"
		     "Content-Length: 0\r\n\r\n");
	assert_where(&p.req, HTTP_CONNECT, HTTP_FORM_AUTHORITY, HTTP_HOST_NAME, "a_b-c.d", 65535);
	assert_int_equal(p.req.body, HTTP_BODY_NONE);
	parsed_free(&p);

	refused("CONNECT example.com HTTP/1.1\r\n\r\n", HTTP_BAD_REQUEST,
		"CONNECT takes host:port, with the port");
	refused("CONNECT /x HTTP/1.1\r\n\r\n", HTTP_BAD_REQUEST,
		"CONNECT takes host:port, with the port");
	refused("CONNECT http://a:80/ HTTP/1.1\r\n\r\n", HTTP_BAD_REQUEST,
		"CONNECT takes host:port, with the port");
	refused("CONNECT a:443 HTTP/1.1\r\nContent-Length: 5\r\n\r\n", HTTP_BAD_REQUEST,
		"a body in a CONNECT request");
	refused("CONNECT a:443 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP_BAD_REQUEST,
		"a body in a CONNECT request");
}

static void test_absolute_form(void **state)
{
	struct parsed p;

	(void)state;
	parse_ok(&p, "GET HtTp://WWW.Example.org./a/b?x=1&y=%20 HTTP/1.1\r\n"
		     "Host: other.example:99\r\nAccept: */*\r\n\r\n");
	/* The URI's host and port, not the Host header's. */
	assert_where(&p.req, HTTP_GET, HTTP_FORM_ABSOLUTE, HTTP_HOST_NAME, "www.example.org", 80);
	assert_false(p.req.path_slash);
	assert_span(p.req.path, p.req.path_len, "/a/b?x=1&y=%20");
	assert_int_equal(p.req.nheaders, 2);
	assert_header(&p.req, 0, "Host", "other.example:99");
	assert_header(&p.req, 1, "Accept", "*/*");
	parsed_free(&p);

	parse_ok(&p, "HEAD http://h:8080 HTTP/1.1\r\nHost: h\r\n\r\n");
	assert_where(&p.req, HTTP_HEAD, HTTP_FORM_ABSOLUTE, HTTP_HOST_NAME, "h", 8080);
	assert_true(p.req.path_slash);
	assert_int_equal(p.req.path_len, 0);
	parsed_free(&p);

	parse_ok(&p, "DELETE http://[::FFFF:1.2.3.4]?q HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_where(&p.req, HTTP_DELETE, HTTP_FORM_ABSOLUTE, HTTP_HOST_IPV6, "::ffff:1.2.3.4", 80);
	assert_true(p.req.path_slash);
	assert_span(p.req.path, p.req.path_len, "?q");
	parsed_free(&p);

	/* HTTP/1.0 needs no Host. */
	parse_ok(&p, "OPTIONS http://1.2.3.4:81/ HTTP/1.0\r\n\r\n");
	assert_where(&p.req, HTTP_OPTIONS, HTTP_FORM_ABSOLUTE, HTTP_HOST_IPV4, "1.2.3.4", 81);
	parsed_free(&p);

	refused("GET https://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n", HTTP_BAD_REQUEST,
		"https:// in absolute-form (a client asks for TLS with CONNECT)");
	refused("GET HTTPS://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n", HTTP_BAD_REQUEST,
		"https:// in absolute-form (a client asks for TLS with CONNECT)");
	refused("GET ftp://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n", HTTP_BAD_REQUEST,
		"a scheme other than http:// in the target");
	refused("GET http:/example.com/ HTTP/1.1\r\nHost: e\r\n\r\n", HTTP_BAD_REQUEST,
		"a target that is neither /path nor http://host/");
	refused("GET example.com/ HTTP/1.1\r\nHost: e\r\n\r\n", HTTP_BAD_REQUEST,
		"a target that is neither /path nor http://host/");
	refused("GET http://user:pw@example.com/ HTTP/1.1\r\nHost: e\r\n\r\n", HTTP_BAD_REQUEST,
		"userinfo (user@host) in an authority");
	refused("GET http:///x HTTP/1.1\r\nHost: e\r\n\r\n", HTTP_BAD_REQUEST, "an empty host");
	refused("GET http://e/x#frag HTTP/1.1\r\nHost: e\r\n\r\n", HTTP_BAD_REQUEST,
		"a fragment ('#') in the target");
	refused("OPTIONS * HTTP/1.1\r\nHost: e\r\n\r\n", HTTP_BAD_REQUEST,
		"the asterisk-form (OPTIONS *) is not served");
}

static void test_origin_form(void **state)
{
	struct parsed p;

	(void)state;
	parse_ok(&p, "POST /v1/messages?beta=true HTTP/1.1\r\nHost: 127.0.0.1:3129\r\n"
		     "content-length: 5\r\nX-Obs:  caf\xc3\xa9 \t\r\nX-Empty:\r\n\r\n");
	assert_where(&p.req, HTTP_POST, HTTP_FORM_ORIGIN, HTTP_HOST_NONE, "", 0);
	assert_span(p.req.path, p.req.path_len, "/v1/messages?beta=true");
	assert_false(p.req.path_slash);
	assert_int_equal(p.req.body, HTTP_BODY_LENGTH);
	assert_int_equal(p.req.content_length, 5);
	assert_int_equal(p.req.nheaders, 4);
	assert_header(&p.req, 1, "content-length", "5");
	assert_header(&p.req, 2, "X-Obs", "caf\xc3\xa9");
	assert_header(&p.req, 3, "X-Empty", "");
	assert_null(p.req.error);
	parsed_free(&p);

	parse_ok(&p, "PUT / HTTP/1.1\r\nHost: [::1]\r\nTransfer-Encoding: ChUnKeD\r\n\r\n");
	assert_where(&p.req, HTTP_PUT, HTTP_FORM_ORIGIN, HTTP_HOST_NONE, "", 0);
	assert_int_equal(p.req.body, HTTP_BODY_CHUNKED);
	parsed_free(&p);

	/* One number, said twice (on two lines, or as a list), is one length. */
	parse_ok(&p, "PATCH /x HTTP/1.1\r\nHost: h\r\nContent-Length: 7, 7\r\n"
		     "Content-Length: 007\r\n\r\n");
	assert_int_equal(p.req.method, HTTP_PATCH);
	assert_int_equal(p.req.content_length, 7);
	parsed_free(&p);

	parse_ok(&p, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9007199254740992\r\n\r\n");
	assert_true(p.req.content_length == HTTP_CONTENT_LENGTH_MAX);
	parsed_free(&p);

	parse_ok(&p, "GET //x/../y HTTP/1.0\r\n\r\n");
	assert_span(p.req.path, p.req.path_len, "//x/../y");
	assert_int_equal(p.req.body, HTTP_BODY_NONE);
	parsed_free(&p);
}

static void test_prefixes(void **state)
{
	(void)state;
	prefixes_need_more("CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n", "\x16\x03\x01");
	prefixes_need_more("GET http://example.com/a?b HTTP/1.1\r\nHost: example.com\r\n"
			   "Content-Length: 4\r\n\r\n",
			   "body");
	prefixes_need_more("POST /v1/messages HTTP/1.1\r\nHost: api\r\nx-api-key: guest\r\n"
			   "Transfer-Encoding: chunked\r\n\r\n",
			   "4\r\nbody\r\n0\r\n\r\n");
	prefixes_need_more("GET / HTTP/1.0\r\n\r\n", "");
}

static void test_line_ends_and_bytes(void **state)
{
	(void)state;
	refused("GET / HTTP/1.1\nHost: h\r\n\r\n", HTTP_BAD_REQUEST,
		"a line ends with a bare LF (CRLF only)");
	refused("GET / HTTP/1.1\r\nHost: h\n\r\n", HTTP_BAD_REQUEST,
		"a line ends with a bare LF (CRLF only)");
	refused("GET / HTTP/1.1\r\nHost: h\r\n\n", HTTP_BAD_REQUEST,
		"a line ends with a bare LF (CRLF only)");
	/* Refused before the head ends. */
	refused("GET / HTTP/1.1\n", HTTP_BAD_REQUEST, "a line ends with a bare LF (CRLF only)");
	refused("GET / HTTP/1.1\rHost: h\r\n\r\n", HTTP_BAD_REQUEST, "a bare CR in the head");
	refused("GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", HTTP_BAD_REQUEST,
		"a bare CR in the head");
	refused("GET / HTTP/1.1\r\nX: a\r\r\n\r\n", HTTP_BAD_REQUEST, "a bare CR in the head");
	refused_len("GET / HTTP/1.1\r\nHost: h\0x\r\n\r\n", 28, HTTP_BAD_REQUEST,
		    "a NUL byte in the head");
	refused_len("GET /\0 HTTP/1.1\r\n", 17, HTTP_BAD_REQUEST, "a NUL byte in the head");
	refused("GET / HTTP/1.1\r\nHost: h\r\nX: a\x01"
		"b\r\n\r\n",
		HTTP_BAD_REQUEST, "a control byte in a header value");
	refused("GET / HTTP/1.1\r\nHost: h\r\nX: a\x7f\r\n\r\n", HTTP_BAD_REQUEST,
		"a control byte in a header value");
	refused("GET /\x80 HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_BAD_REQUEST,
		"a byte outside visible ASCII in the target");
	refused("GET /\x7f HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_BAD_REQUEST,
		"a byte outside visible ASCII in the target");
	refused("\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_BAD_REQUEST,
		"an empty line before the request line");
}

static void test_request_line(void **state)
{
	(void)state;
	refused("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_BAD_REQUEST,
		"a request line that is not METHOD TARGET VERSION");
	refused("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", HTTP_BAD_REQUEST,
		"a request line that is not METHOD TARGET VERSION");
	refused("GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_BAD_REQUEST,
		"a request line that is not METHOD TARGET VERSION");
	refused("GET /\r\nHost: h\r\n\r\n", HTTP_BAD_REQUEST,
		"a request line that is not METHOD TARGET VERSION");
	refused("GET / http/1.1\r\nHost: h\r\n\r\n", HTTP_BAD_REQUEST,
		"a request line that is not METHOD TARGET VERSION");
	refused("GET / HTTP/1.10\r\nHost: h\r\n\r\n", HTTP_BAD_REQUEST,
		"a request line that is not METHOD TARGET VERSION");
	refused("G(T / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_BAD_REQUEST,
		"a method that is not a token");
	refused("GET / HTTP/2.0\r\nHost: h\r\n\r\n", HTTP_VERSION_NOT_SUPPORTED,
		"an HTTP version other than 1.0 and 1.1");
	refused("GET / HTTP/1.2\r\nHost: h\r\n\r\n", HTTP_VERSION_NOT_SUPPORTED,
		"an HTTP version other than 1.0 and 1.1");
	refused("GET / HTTP/0.9\r\n\r\n", HTTP_VERSION_NOT_SUPPORTED,
		"an HTTP version other than 1.0 and 1.1");
	refused("TRACE / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_METHOD_NOT_ALLOWED,
		"TRACE is not served");
	refused("PROPFIND / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_NOT_IMPLEMENTED,
		"a method not served");
	refused("get / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_NOT_IMPLEMENTED, "a method not served");
	/* The version is judged before the method: an HTTP/2 preface is 505. */
	refused("PRI * HTTP/2.0\r\n\r\n", HTTP_VERSION_NOT_SUPPORTED,
		"an HTTP version other than 1.0 and 1.1");
}

static void test_fields(void **state)
{
	(void)state;
	refused("GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n", HTTP_BAD_REQUEST,
		"a folded header line (obs-fold)");
	refused("GET / HTTP/1.1\r\n\tX: y\r\nHost: h\r\n\r\n", HTTP_BAD_REQUEST,
		"a folded header line (obs-fold)");
	refused("GET / HTTP/1.1\r\nHost : h\r\n\r\n", HTTP_BAD_REQUEST,
		"whitespace between a header name and its colon");
	refused("GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", HTTP_BAD_REQUEST,
		"whitespace between a header name and its colon");
	refused("GET / HTTP/1.1\r\nHo(st: h\r\n\r\n", HTTP_BAD_REQUEST,
		"a header name that is not a token");
	refused("GET / HTTP/1.1\r\nX\x80: h\r\n\r\n", HTTP_BAD_REQUEST,
		"a header name that is not a token");
	refused("GET / HTTP/1.1\r\nX Y: h\r\n\r\n", HTTP_BAD_REQUEST,
		"a header name that is not a token");
	refused("GET / HTTP/1.1\r\n: h\r\n\r\n", HTTP_BAD_REQUEST,
		"a header name that is not a token");
	refused("GET / HTTP/1.1\r\nHost h\r\n\r\n", HTTP_BAD_REQUEST,
		"a header line without a colon");
}

static void test_host_header(void **state)
{
	(void)state;
	refused("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", HTTP_BAD_REQUEST,
		"no Host header (HTTP/1.1 requires one)");
	refused("GET http://h/ HTTP/1.1\r\n\r\n", HTTP_BAD_REQUEST,
		"no Host header (HTTP/1.1 requires one)");
	refused("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", HTTP_BAD_REQUEST,
		"more than one Host header");
	refused("GET / HTTP/1.1\r\nHost:\r\n\r\n", HTTP_BAD_REQUEST,
		"a Host header that is not host[:port]");
	refused("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", HTTP_BAD_REQUEST,
		"a Host header that is not host[:port]");
	refused("GET / HTTP/1.1\r\nHost: a:0\r\n\r\n", HTTP_BAD_REQUEST,
		"a Host header that is not host[:port]");
	refused("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", HTTP_BAD_REQUEST,
		"a Host header that is not host[:port]");
}

static void test_framing(void **state)
{
	static const char *const not_numbers[] = {"+5", "-1", "5a",  "0x5", "",
						  "5,", ",5", "5 5", "1e3"};

	(void)state;
	refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
		"Transfer-Encoding: chunked\r\n\r\n",
		HTTP_BAD_REQUEST, "both Transfer-Encoding and Content-Length (request smuggling)");
	refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
		"Content-Length: 5\r\n\r\n",
		HTTP_BAD_REQUEST, "both Transfer-Encoding and Content-Length (request smuggling)");
	refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
		HTTP_BAD_REQUEST, "Content-Length values that differ");
	refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\n", HTTP_BAD_REQUEST,
		"Content-Length values that differ");
	refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9007199254740993\r\n\r\n",
		HTTP_BAD_REQUEST, "a Content-Length above 2^53");
	refused("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n",
		HTTP_BAD_REQUEST, "a Content-Length above 2^53");
	for (size_t i = 0; i < sizeof(not_numbers) / sizeof(not_numbers[0]); i++) {
		char head[128];

		snprintf(head, sizeof(head),
			 "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %s\r\n\r\n",
			 not_numbers[i]);
		refused(head, HTTP_BAD_REQUEST, "a Content-Length that is not a number");
	}
	refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
		HTTP_NOT_IMPLEMENTED, "a transfer coding other than chunked");
	refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		HTTP_NOT_IMPLEMENTED, "a transfer coding other than chunked");
	refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
		"Transfer-Encoding: identity\r\n\r\n",
		HTTP_NOT_IMPLEMENTED, "a transfer coding other than chunked");
	refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
		HTTP_BAD_REQUEST, "chunked applied more than once");
	refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
		"Transfer-Encoding: chunked\r\n\r\n",
		HTTP_BAD_REQUEST, "chunked applied more than once");
	refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;q=1\r\n\r\n",
		HTTP_BAD_REQUEST, "a Transfer-Encoding that is not a list of codings");
	refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n", HTTP_BAD_REQUEST,
		"a Transfer-Encoding that is not a list of codings");
	refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ,chunked\r\n\r\n",
		HTTP_BAD_REQUEST, "a Transfer-Encoding that is not a list of codings");
	refused("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP_BAD_REQUEST,
		"Transfer-Encoding in an HTTP/1.0 request");
}

static void authority_refused(const char *authority, const char *why)
{
	char head[512];

	snprintf(head, sizeof(head), "CONNECT %s HTTP/1.1\r\n\r\n", authority);
	refused(head, HTTP_BAD_REQUEST, why);
}

static void test_hosts_and_ports(void **state)
{
	const char *port = "a port that is not 1..65535";
	const char *numeric = "a host that reads as an IPv4 address but is not a dotted quad";
	char name[300], head[512];
	struct parsed p;

	(void)state;
	authority_refused("a:0", port);
	authority_refused("a:65536", port);
	authority_refused("a:+1", port);
	authority_refused("a:08x", port);
	authority_refused("a:", port);
	authority_refused("a:000443", port);
	authority_refused("[::1]:", port);
	authority_refused("a:-1", port);
	authority_refused("user@a:443", "userinfo (user@host) in an authority");
	authority_refused("::1:443", "an IPv6 address not between '[' and ']'");
	authority_refused("2001:db8::1", "an IPv6 address not between '[' and ']'");
	authority_refused("[::1:443", "an IPv6 address without its ']'");
	authority_refused("[::1]443", "bytes after an IPv6 address's ']'");
	authority_refused("[fe80::1%25eth0]:443", "not an IPv6 address between '[' and ']'");
	authority_refused("[v1.x]:443", "not an IPv6 address between '[' and ']'");
	authority_refused("[]:443", "not an IPv6 address between '[' and ']'");
	authority_refused("[example.com]:443", "not an IPv6 address between '[' and ']'");
	authority_refused("[1.2.3.4]:443", "not an IPv6 address between '[' and ']'");
	authority_refused(":443", "an empty host");
	authority_refused(".:443", "an empty host");
	authority_refused("a..b:443", "an empty label in a host name");
	authority_refused(".a:443", "an empty label in a host name");
	authority_refused("a..:443", "an empty label in a host name");
	authority_refused("ex%41mple.com:443", "a byte not allowed in a host name");
	authority_refused("a!b:443", "a byte not allowed in a host name");
	/* What the resolver would read as an address it was not shown. */
	authority_refused("127.1:443", numeric);
	authority_refused("0x7f.0.0.1:443", numeric);
	authority_refused("2130706433:443", numeric);
	authority_refused("010.0.0.1:443", numeric);
	authority_refused("0x7F000001:443", numeric);

	/* A label of 63 bytes and a name of 253 are the most. */
	memset(name, 'a', 63);
	snprintf(name + 63, sizeof(name) - 63, ".b");
	snprintf(head, sizeof(head), "CONNECT %s:443 HTTP/1.1\r\n\r\n", name);
	parse_ok(&p, head);
	assert_string_equal(p.req.host, name);
	parsed_free(&p);
	memset(name, 'a', 64);
	snprintf(name + 64, sizeof(name) - 64, ".b:443");
	authority_refused(name, "a host name label longer than 63 bytes");
	/* Three labels of 63 and one of 61, then a trailing dot (not counted). */
	for (int l = 0; l < 3; l++) {
		memset(name + l * 64, 'a' + l, 63);
		name[l * 64 + 63] = '.';
	}
	memset(name + 192, 'd', 61);
	name[253] = '\0';
	snprintf(head, sizeof(head), "CONNECT %s.:443 HTTP/1.1\r\n\r\n", name);
	parse_ok(&p, head);
	assert_string_equal(p.req.host, name);
	parsed_free(&p);
	snprintf(head, sizeof(head), "CONNECT x%s:443 HTTP/1.1\r\n\r\n", name);
	refused(head, HTTP_BAD_REQUEST, "a host name longer than 253 bytes");
}

/* A head with a request target of n bytes ("/aaa..."). */
static char *head_with_target(size_t n, bool complete)
{
	char *head = malloc(n + 64);

	assert_non_null(head);
	memcpy(head, "GET /", 5);
	memset(head + 5, 'a', n - 1);
	strcpy(head + 4 + n, complete ? " HTTP/1.1\r\nHost: h\r\n\r\n" : "");
	return head;
}

/* A head of exactly len bytes: a request line, then X-Pad fields; complete or not. */
static char *head_of(size_t len, bool complete)
{
	char *head = malloc(len + 1);
	size_t at;

	assert_non_null(head);
	at = (size_t)sprintf(head, "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: ");
	memset(head + at, 'p', len - at);
	if (complete)
		memcpy(head + len - 4, "\r\n\r\n", 4);
	head[len] = '\0';
	return head;
}

static void test_limits(void **state)
{
	struct parsed p;
	char *head;
	char fields[HTTP_HEADERS_MAX * 8 + 64];
	size_t at;

	(void)state;
	head = head_with_target(HTTP_TARGET_MAX, true);
	parse_ok(&p, head);
	assert_int_equal(p.req.path_len, HTTP_TARGET_MAX);
	parsed_free(&p);
	free(head);
	head = head_with_target(HTTP_TARGET_MAX + 1, true);
	refused(head, HTTP_URI_TOO_LONG, "a request target longer than 8 KiB");
	free(head);
	/* Before the line ends: with no more than the target so far, and with its end. */
	head = head_with_target(HTTP_TARGET_MAX, false);
	parse_len(&p, head, strlen(head));
	assert_int_equal(p.r, HTTP_NEED_MORE);
	parsed_free(&p);
	free(head);
	head = head_with_target(HTTP_TARGET_MAX + 1, false);
	refused(head, HTTP_URI_TOO_LONG, "a request target longer than 8 KiB");
	strcat(head, " HTTP/1");
	refused(head, HTTP_URI_TOO_LONG, "a request target longer than 8 KiB");
	free(head);

	/* 100 fields, then 101. */
	at = (size_t)sprintf(fields, "GET / HTTP/1.1\r\nHost: h\r\n");
	for (int i = 1; i < HTTP_HEADERS_MAX; i++)
		at += (size_t)sprintf(fields + at, "X%02d: v\r\n", i);
	strcpy(fields + at, "\r\n");
	parse_ok(&p, fields);
	assert_int_equal(p.req.nheaders, HTTP_HEADERS_MAX);
	assert_header(&p.req, 99, "X99", "v");
	parsed_free(&p);
	strcpy(fields + at, "X: v\r\n\r\n");
	refused(fields, HTTP_HEADERS_TOO_LARGE, "more than 100 header fields");
	/* Refused as soon as the 101st field has ended, not with the head. */
	strcpy(fields + at, "X: v\r\n");
	refused(fields, HTTP_HEADERS_TOO_LARGE, "more than 100 header fields");

	/* A head of 16 KiB is the most; one past it is refused, ended or not. */
	head = head_of(HTTP_HEAD_MAX, true);
	parse_ok(&p, head);
	parsed_free(&p);
	free(head);
	head = head_of(HTTP_HEAD_MAX + 1, true);
	refused(head, HTTP_HEADERS_TOO_LARGE, "a request head longer than 16 KiB");
	free(head);
	head = head_of(HTTP_HEAD_MAX + 1, false);
	refused(head, HTTP_HEADERS_TOO_LARGE, "a request head longer than 16 KiB");
	free(head);
	/* 16 KiB without its end: it cannot end within the limit any more. */
	head = head_of(HTTP_HEAD_MAX, false);
	refused(head, HTTP_HEADERS_TOO_LARGE, "a request head longer than 16 KiB");
	parse_len(&p, head, HTTP_HEAD_MAX - 1);
	assert_int_equal(p.r, HTTP_NEED_MORE);
	parsed_free(&p);
	free(head);
	/* A request line alone that long (its target within 8 KiB). */
	head = malloc(HTTP_HEAD_MAX);
	assert_non_null(head);
	memcpy(head, "GET / ", 6);
	memset(head + 6, 'H', HTTP_HEAD_MAX - 6);
	refused_len(head, HTTP_HEAD_MAX, HTTP_HEADERS_TOO_LARGE,
		    "a request head longer than 16 KiB");
	free(head);
}

/* Writes req's upstream head and checks it byte for byte, and that it does not fit in one
 * byte less (nor in any shorter buffer). */
static void upstream_is(const struct http_request *req, const char *const *drop,
			const struct http_header *add, size_t nadd, const char *want)
{
	size_t want_len = strlen(want);
	char out[1024];

	assert_true(want_len < sizeof(out));
	memset(out, '#', sizeof(out));
	assert_int_equal(http_write_upstream_head(req, drop, add, nadd, out, sizeof(out)),
			 want_len);
	if (memcmp(out, want, want_len) != 0)
		fail_msg("upstream head:\n%.*s\nnot:\n%s", (int)want_len, out, want);
	assert_int_equal(out[want_len], '#');
	for (size_t n = 0; n < want_len; n++)
		assert_int_equal(http_write_upstream_head(req, drop, add, nadd, out, n), 0);
	assert_int_equal(http_write_upstream_head(req, drop, add, nadd, out, want_len), want_len);
}

#define FIELD(n, v)                                                                                \
	{                                                                                          \
		n, sizeof(n) - 1, v, sizeof(v) - 1                                                 \
	}

static void test_upstream_absolute(void **state)
{
	static const char *const drop[] = {"authorization", "X-Api-Key", NULL};
	struct parsed p;

	(void)state;
	parse_ok(&p, "GET http://Example.com/a?b=1 HTTP/1.0\r\n"
		     "Host: elsewhere\r\n"
		     "Connection: keep-alive, X-Secret ,, Upgrade\r\n"
		     "Accept: */*\r\n"
		     "Proxy-Connection: keep-alive\r\n"
		     "Proxy-Authorization: Basic eDp5\r\n"
		     "Keep-Alive: timeout=5\r\n"
		     "TE: trailers\r\n"
		     "Trailer: X-T\r\n"
		     "Upgrade: websocket\r\n"
		     "authorization: Bearer guest\r\n"
		     "x-api-key: guest\r\n"
		     "x-secret: 1\r\n"
		     "connection: x-other\r\n"
		     "X-Other: 2\r\n"
		     "User-Agent: t/1\r\n"
		     "Content-Length: 3, 3\r\n\r\n");
	upstream_is(&p.req, drop, NULL, 0,
		    "GET /a?b=1 HTTP/1.1\r\n"
		    "Host: example.com\r\n"
		    "Accept: */*\r\n"
		    "User-Agent: t/1\r\n"
		    "Content-Length: 3\r\n"
		    "Connection: close\r\n\r\n");
	/* Without a drop list, the guest's credentials stay (the broker decides). */
	upstream_is(&p.req, NULL, NULL, 0,
		    "GET /a?b=1 HTTP/1.1\r\n"
		    "Host: example.com\r\n"
		    "Accept: */*\r\n"
		    "authorization: Bearer guest\r\n"
		    "x-api-key: guest\r\n"
		    "User-Agent: t/1\r\n"
		    "Content-Length: 3\r\n"
		    "Connection: close\r\n\r\n");
	parsed_free(&p);

	parse_ok(&p, "POST http://[::1]:8080?q HTTP/1.1\r\nHost: x\r\n"
		     "Transfer-Encoding: chunked\r\n\r\n");
	upstream_is(&p.req, NULL, NULL, 0,
		    "POST /?q HTTP/1.1\r\n"
		    "Host: [::1]:8080\r\n"
		    "Transfer-Encoding: chunked\r\n"
		    "Connection: close\r\n\r\n");
	parsed_free(&p);

	parse_ok(&p, "GET http://h HTTP/1.1\r\nHost: h\r\n\r\n");
	upstream_is(&p.req, NULL, NULL, 0,
		    "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
	parsed_free(&p);
}

static void test_upstream_origin(void **state)
{
	static const char *const drop[] = {"x-api-key", "authorization", NULL};
	const struct http_header add[] = {
	    FIELD("Host", "api.anthropic.com"),
	    FIELD("x-api-key", "sk-real"),
	};
	const struct http_header bad_name[] = {FIELD("x key", "v")};
	const struct http_header bad_value[] = {FIELD("x-key", "v\r\nInjected: 1")};
	char out[512];
	struct parsed p;

	(void)state;
	parse_ok(&p, "POST /v1/messages HTTP/1.1\r\n"
		     "Host: 127.0.0.1:3129\r\n"
		     "X-API-Key: sk-fake\r\n"
		     "Authorization: Bearer fake\r\n"
		     "anthropic-version: 2023-06-01\r\n"
		     "Content-Type: application/json\r\n"
		     "Content-Length: 2\r\n"
		     "Connection: Keep-Alive\r\n\r\n");
	upstream_is(&p.req, drop, add, 2,
		    "POST /v1/messages HTTP/1.1\r\n"
		    "anthropic-version: 2023-06-01\r\n"
		    "Content-Type: application/json\r\n"
		    "Content-Length: 2\r\n"
		    "Host: api.anthropic.com\r\n"
		    "x-api-key: sk-real\r\n"
		    "Connection: close\r\n\r\n");
	/* An added field that would break the head is refused. */
	assert_int_equal(http_write_upstream_head(&p.req, drop, bad_name, 1, out, sizeof(out)), 0);
	assert_int_equal(http_write_upstream_head(&p.req, drop, bad_value, 1, out, sizeof(out)), 0);
	parsed_free(&p);

	/* A tunnel has no upstream head. */
	parse_ok(&p, "CONNECT h:443 HTTP/1.1\r\n\r\n");
	assert_int_equal(http_write_upstream_head(&p.req, NULL, NULL, 0, out, sizeof(out)), 0);
	parsed_free(&p);
}

static void test_error_response(void **state)
{
	const char *want = "HTTP/1.1 403 Forbidden\r\n"
			   "Content-Type: text/plain\r\n"
			   "Content-Length: 61\r\n"
			   "Connection: close\r\n\r\n"
			   "clawvm: egress to evil.com:443 denied (not in the allowlist)\n";
	const char *text = "egress to evil.com:443 denied (not in the allowlist)";
	size_t want_len = strlen(want);
	char out[512];

	(void)state;
	assert_int_equal(http_error_response(403, text, out, sizeof(out)), want_len);
	assert_string_equal(out, want);
	/* It fits in its length and the NUL, not in one byte less. */
	assert_int_equal(http_error_response(403, text, out, want_len + 1), want_len);
	assert_int_equal(http_error_response(403, text, out, want_len), -ENOSPC);
	assert_int_equal(http_error_response(403, text, out, 0), -ENOSPC);
	assert_int_equal(http_error_response(418, text, out, sizeof(out)), -EINVAL);
	assert_int_equal(http_error_response(0, NULL, out, sizeof(out)), -EINVAL);

	assert_true(http_error_response(405, "TRACE is not served", out, sizeof(out)) > 0);
	assert_string_equal(out, "HTTP/1.1 405 Method Not Allowed\r\n"
				 "Content-Type: text/plain\r\n"
				 "Content-Length: 28\r\n"
				 "Allow: GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, CONNECT\r\n"
				 "Connection: close\r\n\r\n"
				 "clawvm: TRACE is not served\n");
	assert_true(http_error_response(431, NULL, out, sizeof(out)) > 0);
	assert_string_equal(out, "HTTP/1.1 431 Request Header Fields Too Large\r\n"
				 "Content-Type: text/plain\r\n"
				 "Content-Length: 40\r\n"
				 "Connection: close\r\n\r\n"
				 "clawvm: Request Header Fields Too Large\n");
	assert_true(http_error_response(502, "a\r\n\x1b[2Jb", out, sizeof(out)) > 0);
	assert_non_null(strstr(out, "\r\n\r\nclawvm: a???[2Jb\n"));
	assert_non_null(strstr(out, "Content-Length: 17\r\n"));
	assert_string_equal(http_method_name(HTTP_CONNECT), "CONNECT");
	assert_null(http_method_name((enum http_method)99));
}

/* Every refusal's status and text make a response. */
static void test_refusals_answerable(void **state)
{
	static const char *const heads[] = {
	    "GET / HTTP/1.1\n",
	    "TRACE / HTTP/1.1\r\n\r\n",
	    "GET / HTTP/3.0\r\n\r\n",
	    "FOO / HTTP/1.1\r\n\r\n",
	    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: br\r\n\r\n",
	};
	char out[512];
	struct parsed p;

	(void)state;
	for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
		parse_len(&p, heads[i], strlen(heads[i]));
		assert_true(p.r >= 400);
		assert_true(http_error_response((int)p.r, p.req.error, out, sizeof(out)) > 0);
		assert_non_null(strstr(out, p.req.error));
		parsed_free(&p);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_connect),
	    cmocka_unit_test(test_absolute_form),
	    cmocka_unit_test(test_origin_form),
	    cmocka_unit_test(test_prefixes),
	    cmocka_unit_test(test_line_ends_and_bytes),
	    cmocka_unit_test(test_request_line),
	    cmocka_unit_test(test_fields),
	    cmocka_unit_test(test_host_header),
	    cmocka_unit_test(test_framing),
	    cmocka_unit_test(test_hosts_and_ports),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_upstream_absolute),
	    cmocka_unit_test(test_upstream_origin),
	    cmocka_unit_test(test_error_response),
	    cmocka_unit_test(test_refusals_answerable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

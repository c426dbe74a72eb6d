/* The egress broker's HTTP/1.1 request-head parser (http.h says what is refused and why; the
 * heads the broker writes are in http_write.c). Every head is re-read from its first byte on
 * each call: a head is at most HTTP_HEAD_MAX bytes, so a call costs at most that, and nothing
 * is kept between calls for a hostile guest to steer. */
#include "broker/http.h"
#include "broker/http_int.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

static const char *const method_names[] = {
    [HTTP_GET] = "GET",		[HTTP_HEAD] = "HEAD",	    [HTTP_POST] = "POST",
    [HTTP_PUT] = "PUT",		[HTTP_DELETE] = "DELETE",   [HTTP_PATCH] = "PATCH",
    [HTTP_OPTIONS] = "OPTIONS", [HTTP_CONNECT] = "CONNECT",
};
#define METHODS (sizeof(method_names) / sizeof(method_names[0]))

const char *http_method_name(enum http_method m)
{
	return (unsigned)m < METHODS ? method_names[m] : NULL;
}

/* A host and port as an authority gives them (the target's, or a Host header's). */
struct authority {
	char host[HTTP_HOST_MAX + 1];
	enum http_host_kind kind;
	uint16_t port;
};

/* What the field lines said about framing, gathered while they are read. */
struct framing {
	unsigned hosts;	 /* Host lines */
	unsigned te;	 /* Transfer-Encoding lines */
	bool has_length; /* a Content-Length line */
	uint64_t length;
};

static enum http_result fail(struct http_request *req, enum http_result status, const char *why)
{
	req->error = why;
	return status;
}

/* RFC 9110 5.6.2: tchar. */
static bool is_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

bool http_is_token(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!is_tchar((unsigned char)s[i]))
			return false;
	}
	return n > 0;
}

bool http_is_field_value(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c != '\t' && (c < 0x20 || c == 0x7f))
			return false;
	}
	return true;
}

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

bool http_word_is(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

/* The next element of a comma list s[0..n) from *at: its span, OWS trimmed; false at the
 * end. An element may be empty ("a,,b"); the caller decides what that means. */
static bool list_next(const char *s, size_t n, size_t *at, const char **elem, size_t *elen)
{
	size_t start = *at, end;

	if (start > n)
		return false;
	end = start;
	while (end < n && s[end] != ',')
		end++;
	*at = end + 1;
	while (start < end && is_ows(s[start]))
		start++;
	while (end > start && is_ows(s[end - 1]))
		end--;
	*elem = s + start;
	*elen = end - start;
	return true;
}

bool http_next_element(const struct http_request *req, const char *name, struct http_elements *it,
		       const char **elem, size_t *elen)
{
	for (; it->field < req->nheaders; it->field++, it->at = 0) {
		const struct http_header *h = &req->headers[it->field];

		if (http_word_is(h->name, h->name_len, name) &&
		    list_next(h->value, h->value_len, &it->at, elem, elen))
			return true;
	}
	return false;
}

/* Finds the CRLF that ends the line starting at pos, looking no further than limit:
 * HTTP_OK with *eol at its CR, HTTP_NEED_MORE if it is not there yet, 400 for a byte no head
 * may hold where it stands. */
static enum http_result line_end(const char *buf, size_t pos, size_t limit, size_t *eol,
				 struct http_request *req)
{
	for (size_t i = pos; i < limit; i++) {
		switch (buf[i]) {
		case '\0':
			return fail(req, HTTP_BAD_REQUEST, "a NUL byte in the head");
		case '\n':
			return fail(req, HTTP_BAD_REQUEST,
				    "a line ends with a bare LF (CRLF only)");
		case '\r':
			if (i + 1 == limit)
				return HTTP_NEED_MORE;
			if (buf[i + 1] != '\n')
				return fail(req, HTTP_BAD_REQUEST, "a bare CR in the head");
			*eol = i;
			return HTTP_OK;
		}
	}
	return HTTP_NEED_MORE;
}

static enum http_result parse_port(const char *p, size_t n, uint16_t *port,
				   struct http_request *req)
{
	unsigned value = 0;

	if (n == 0 || n > 5)
		return fail(req, HTTP_BAD_REQUEST, "a port that is not 1..65535");
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return fail(req, HTTP_BAD_REQUEST, "a port that is not 1..65535");
		value = value * 10 + (unsigned)(p[i] - '0');
	}
	if (value < 1 || value > 65535)
		return fail(req, HTTP_BAD_REQUEST, "a port that is not 1..65535");
	*port = (uint16_t)value;
	return HTTP_OK;
}

/* An IPv6 address from between brackets, stored in canonical text. */
static enum http_result ipv6_host(const char *h, size_t n, struct authority *out,
				  struct http_request *req)
{
	char text[INET6_ADDRSTRLEN];
	struct in6_addr addr;

	if (n == 0 || n >= sizeof(text))
		return fail(req, HTTP_BAD_REQUEST, "not an IPv6 address between '[' and ']'");
	memcpy(text, h, n);
	text[n] = '\0';
	if (inet_pton(AF_INET6, text, &addr) != 1 ||
	    !inet_ntop(AF_INET6, &addr, out->host, sizeof(out->host)))
		return fail(req, HTTP_BAD_REQUEST, "not an IPv6 address between '[' and ']'");
	out->kind = HTTP_HOST_IPV6;
	return HTTP_OK;
}

/* A name or a dotted quad, lowercased, without its trailing dot. */
static enum http_result name_host(const char *h, size_t n, struct authority *out,
				  struct http_request *req)
{
	struct in_addr addr;
	size_t label = 0;

	if (n && h[n - 1] == '.')
		n--;
	if (n == 0)
		return fail(req, HTTP_BAD_REQUEST, "an empty host");
	if (n > HTTP_HOST_MAX)
		return fail(req, HTTP_BAD_REQUEST, "a host name longer than 253 bytes");
	for (size_t i = 0; i < n; i++) {
		char c = h[i];

		if (c == '.') {
			if (label == 0)
				return fail(req, HTTP_BAD_REQUEST, "an empty label in a host name");
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
			   c == '_') {
			label++;
		} else if (c >= 'A' && c <= 'Z') {
			c = (char)(c - 'A' + 'a');
			label++;
		} else {
			return fail(req, HTTP_BAD_REQUEST, "a byte not allowed in a host name");
		}
		if (label > 63)
			return fail(req, HTTP_BAD_REQUEST,
				    "a host name label longer than 63 bytes");
		out->host[i] = c;
	}
	if (label == 0) /* "a.." less its one trailing dot */
		return fail(req, HTTP_BAD_REQUEST, "an empty label in a host name");
	out->host[n] = '\0';
	out->kind = HTTP_HOST_NAME;
	if (inet_pton(AF_INET, out->host, &addr) == 1)
		out->kind = HTTP_HOST_IPV4;
	else if (inet_aton(out->host, &addr))
		/* The resolver would connect to an address the allowlist never saw written. */
		return fail(req, HTTP_BAD_REQUEST,
			    "a host that reads as an IPv4 address but is not a dotted quad");
	return HTTP_OK;
}

/* host[:port] or [ipv6][:port]; without a port, default_port (0: the port is required). */
static enum http_result parse_authority(const char *a, size_t n, uint16_t default_port,
					struct authority *out, struct http_request *req)
{
	const char *port = NULL, *end = a + n;
	enum http_result r;

	if (memchr(a, '@', n))
		return fail(req, HTTP_BAD_REQUEST, "userinfo (user@host) in an authority");
	if (n && a[0] == '[') {
		const char *close = memchr(a, ']', n);

		if (!close)
			return fail(req, HTTP_BAD_REQUEST, "an IPv6 address without its ']'");
		if (close + 1 < end && close[1] != ':')
			return fail(req, HTTP_BAD_REQUEST, "bytes after an IPv6 address's ']'");
		if (close + 1 < end)
			port = close + 2;
		r = ipv6_host(a + 1, (size_t)(close - a - 1), out, req);
	} else {
		const char *colon = memchr(a, ':', n);

		if (colon) {
			port = colon + 1;
			if (memchr(port, ':', (size_t)(end - port)))
				return fail(req, HTTP_BAD_REQUEST,
					    "an IPv6 address not between '[' and ']'");
		}
		r = name_host(a, colon ? (size_t)(colon - a) : n, out, req);
	}
	if (r != HTTP_OK)
		return r;
	if (port)
		return parse_port(port, (size_t)(end - port), &out->port, req);
	if (!default_port)
		return fail(req, HTTP_BAD_REQUEST, "CONNECT takes host:port, with the port");
	out->port = default_port;
	return HTTP_OK;
}

/* The authority's host and port become the request's. */
static enum http_result target_authority(const char *a, size_t n, uint16_t default_port,
					 struct http_request *req)
{
	struct authority auth;
	enum http_result r = parse_authority(a, n, default_port, &auth, req);

	if (r != HTTP_OK)
		return r;
	memcpy(req->host, auth.host, sizeof(req->host));
	req->host_kind = auth.kind;
	req->port = auth.port;
	return HTTP_OK;
}

/* "http://authority[/path][?query]". */
static enum http_result absolute_form(const char *t, size_t n, struct http_request *req)
{
	const char *colon = memchr(t, ':', n), *auth, *end = t + n, *path;
	enum http_result r;

	if (!colon || end - colon < 3 || memcmp(colon, "://", 3) != 0)
		return fail(req, HTTP_BAD_REQUEST,
			    "a target that is neither /path nor http://host/");
	if (http_word_is(t, (size_t)(colon - t), "https"))
		return fail(req, HTTP_BAD_REQUEST,
			    "https:// in absolute-form (a client asks for TLS with CONNECT)");
	if (!http_word_is(t, (size_t)(colon - t), "http"))
		return fail(req, HTTP_BAD_REQUEST, "a scheme other than http:// in the target");
	auth = colon + 3;
	for (path = auth; path < end && *path != '/' && *path != '?'; path++)
		;
	r = target_authority(auth, (size_t)(path - auth), 80, req);
	if (r != HTTP_OK)
		return r;
	req->form = HTTP_FORM_ABSOLUTE;
	req->path = path;
	req->path_len = (size_t)(end - path);
	req->path_slash = path == end || *path == '?';
	return HTTP_OK;
}

static enum http_result parse_target(const char *t, size_t n, struct http_request *req)
{
	for (size_t i = 0; i < n; i++) {
		if (t[i] < 0x21 || t[i] > 0x7e)
			return fail(req, HTTP_BAD_REQUEST,
				    "a byte outside visible ASCII in the target");
		if (t[i] == '#')
			return fail(req, HTTP_BAD_REQUEST, "a fragment ('#') in the target");
	}
	if (req->method == HTTP_CONNECT) {
		if (t[0] == '/' || memmem(t, n, "://", 3))
			return fail(req, HTTP_BAD_REQUEST,
				    "CONNECT takes host:port, with the port");
		req->form = HTTP_FORM_AUTHORITY;
		return target_authority(t, n, 0, req);
	}
	if (t[0] == '/') {
		req->form = HTTP_FORM_ORIGIN;
		req->path = t;
		req->path_len = n;
		return HTTP_OK;
	}
	if (n == 1 && t[0] == '*')
		return fail(req, HTTP_BAD_REQUEST, "the asterisk-form (OPTIONS *) is not served");
	return absolute_form(t, n, req);
}

/* METHOD SP TARGET SP HTTP/x.y, from a line without its CRLF. Shape first (400), then the
 * target's length (414), the version (505), the method (405, 501), the target's form. */
static enum http_result request_line(const char *line, size_t n, struct http_request *req)
{
	const char *sp1 = memchr(line, ' ', n), *sp2 = NULL, *target, *version;
	size_t target_len, version_len;

	if (sp1)
		sp2 = memchr(sp1 + 1, ' ', (size_t)(line + n - sp1 - 1));
	if (!sp2 || sp2 == sp1 + 1)
		return fail(req, HTTP_BAD_REQUEST,
			    "a request line that is not METHOD TARGET VERSION");
	if (!http_is_token(line, (size_t)(sp1 - line)))
		return fail(req, HTTP_BAD_REQUEST, "a method that is not a token");
	target = sp1 + 1;
	target_len = (size_t)(sp2 - target);
	version = sp2 + 1;
	version_len = (size_t)(line + n - version);
	if (target_len > HTTP_TARGET_MAX)
		return fail(req, HTTP_URI_TOO_LONG, "a request target longer than 8 KiB");
	if (version_len != 8 || memcmp(version, "HTTP/", 5) != 0 || version[5] < '0' ||
	    version[5] > '9' || version[6] != '.' || version[7] < '0' || version[7] > '9')
		return fail(req, HTTP_BAD_REQUEST,
			    "a request line that is not METHOD TARGET VERSION");
	if (version[5] != '1' || version[7] > '1')
		return fail(req, HTTP_VERSION_NOT_SUPPORTED,
			    "an HTTP version other than 1.0 and 1.1");
	req->minor = version[7] - '0';
	for (size_t m = 0;; m++) {
		if (m == METHODS) {
			if (sp1 - line == 5 && memcmp(line, "TRACE", 5) == 0)
				return fail(req, HTTP_METHOD_NOT_ALLOWED, "TRACE is not served");
			return fail(req, HTTP_NOT_IMPLEMENTED, "a method not served");
		}
		if (strlen(method_names[m]) == (size_t)(sp1 - line) &&
		    memcmp(line, method_names[m], (size_t)(sp1 - line)) == 0) {
			req->method = (enum http_method)m;
			break;
		}
	}
	return parse_target(target, target_len, req);
}

/* The first line has not ended yet: 414 as soon as its target is too long, 431 once it
 * cannot end within the head's limit. */
static enum http_result partial_request_line(const char *buf, size_t limit, size_t len,
					     struct http_request *req)
{
	const char *sp = limit ? memchr(buf, ' ', limit) : NULL, *end;

	if (sp) {
		end = memchr(sp + 1, ' ', (size_t)(buf + limit - sp - 1));
		if ((size_t)((end ? end : buf + limit) - sp - 1) > HTTP_TARGET_MAX)
			return fail(req, HTTP_URI_TOO_LONG, "a request target longer than 8 KiB");
	}
	if (len >= HTTP_HEAD_MAX)
		return fail(req, HTTP_HEADERS_TOO_LARGE, "a request head longer than 16 KiB");
	return HTTP_NEED_MORE;
}

/* Content-Length: 1#DIGIT values, all the same number (RFC 9110 8.6). */
static enum http_result content_length(const char *v, size_t n, struct framing *fr,
				       struct http_request *req)
{
	const char *elem;
	size_t elen, at = 0;

	while (list_next(v, n, &at, &elem, &elen)) {
		uint64_t value = 0;

		if (elen == 0)
			return fail(req, HTTP_BAD_REQUEST, "a Content-Length that is not a number");
		for (size_t i = 0; i < elen; i++) {
			if (elem[i] < '0' || elem[i] > '9')
				return fail(req, HTTP_BAD_REQUEST,
					    "a Content-Length that is not a number");
			value = value * 10 + (uint64_t)(elem[i] - '0');
			if (value > HTTP_CONTENT_LENGTH_MAX)
				return fail(req, HTTP_BAD_REQUEST, "a Content-Length above 2^53");
		}
		if (fr->has_length && fr->length != value)
			return fail(req, HTTP_BAD_REQUEST, "Content-Length values that differ");
		fr->has_length = true;
		fr->length = value;
	}
	return HTTP_OK;
}

/* A field line without its CRLF: stored, and Host and Content-Length checked. */
static enum http_result field_line(const char *line, size_t n, struct framing *fr,
				   struct http_request *req)
{
	const char *colon, *value, *end = line + n;
	struct http_header *h;
	size_t name_len;

	if (is_ows(line[0]))
		return fail(req, HTTP_BAD_REQUEST, "a folded header line (obs-fold)");
	colon = memchr(line, ':', n);
	if (!colon)
		return fail(req, HTTP_BAD_REQUEST, "a header line without a colon");
	name_len = (size_t)(colon - line);
	if (name_len && is_ows(colon[-1]))
		return fail(req, HTTP_BAD_REQUEST,
			    "whitespace between a header name and its colon");
	if (!http_is_token(line, name_len))
		return fail(req, HTTP_BAD_REQUEST, "a header name that is not a token");
	for (value = colon + 1; value < end && is_ows(*value); value++)
		;
	while (end > value && is_ows(end[-1]))
		end--;
	if (!http_is_field_value(value, (size_t)(end - value)))
		return fail(req, HTTP_BAD_REQUEST, "a control byte in a header value");
	h = &req->headers[req->nheaders++];
	*h = (struct http_header){line, name_len, value, (size_t)(end - value)};
	if (http_word_is(line, name_len, "host")) {
		struct authority auth;

		if (fr->hosts++)
			return fail(req, HTTP_BAD_REQUEST, "more than one Host header");
		if (parse_authority(h->value, h->value_len, 80, &auth, req) != HTTP_OK)
			return fail(req, HTTP_BAD_REQUEST, "a Host header that is not host[:port]");
	} else if (http_word_is(line, name_len, "content-length")) {
		return content_length(h->value, h->value_len, fr, req);
	} else if (http_word_is(line, name_len, "transfer-encoding")) {
		fr->te++;
	}
	return HTTP_OK;
}

/* Every Transfer-Encoding line's codings, in order: exactly one, "chunked". */
static enum http_result transfer_encoding(struct http_request *req)
{
	struct http_elements it = {0, 0};
	bool other = false;
	unsigned chunked = 0;
	const char *elem;
	size_t elen;

	while (http_next_element(req, "transfer-encoding", &it, &elem, &elen)) {
		if (!http_is_token(elem, elen))
			return fail(req, HTTP_BAD_REQUEST,
				    "a Transfer-Encoding that is not a list of codings");
		if (http_word_is(elem, elen, "chunked"))
			chunked++;
		else
			other = true;
	}
	if (other)
		return fail(req, HTTP_NOT_IMPLEMENTED, "a transfer coding other than chunked");
	if (chunked != 1)
		return fail(req, HTTP_BAD_REQUEST, "chunked applied more than once");
	return HTTP_OK;
}

/* The head has ended: its framing and Host, as a whole. */
static enum http_result finish(const struct framing *fr, struct http_request *req)
{
	enum http_result r;

	if (fr->te) {
		if (fr->has_length)
			return fail(
			    req, HTTP_BAD_REQUEST,
			    "both Transfer-Encoding and Content-Length (request smuggling)");
		if (req->minor == 0)
			return fail(req, HTTP_BAD_REQUEST,
				    "Transfer-Encoding in an HTTP/1.0 request");
		r = transfer_encoding(req);
		if (r != HTTP_OK)
			return r;
		req->body = HTTP_BODY_CHUNKED;
	} else if (fr->has_length) {
		req->body = HTTP_BODY_LENGTH;
		req->content_length = fr->length;
	}
	if (req->method == HTTP_CONNECT) {
		if (req->body == HTTP_BODY_CHUNKED || req->content_length)
			return fail(req, HTTP_BAD_REQUEST, "a body in a CONNECT request");
		req->body = HTTP_BODY_NONE;
	} else if (req->minor == 1 && !fr->hosts) {
		return fail(req, HTTP_BAD_REQUEST, "no Host header (HTTP/1.1 requires one)");
	}
	return HTTP_OK;
}

enum http_result http_parse_request(const char *buf, size_t len, struct http_request *req)
{
	size_t limit = len < HTTP_HEAD_MAX ? len : HTTP_HEAD_MAX, pos, eol = 0;
	struct framing fr = {0};
	enum http_result r;

	memset(req, 0, sizeof(*req));
	r = line_end(buf, 0, limit, &eol, req);
	if (r == HTTP_NEED_MORE)
		return partial_request_line(buf, limit, len, req);
	if (r != HTTP_OK)
		return r;
	if (eol == 0)
		return fail(req, HTTP_BAD_REQUEST, "an empty line before the request line");
	r = request_line(buf, eol, req);
	for (pos = eol + 2; r == HTTP_OK; pos = eol + 2) {
		r = line_end(buf, pos, limit, &eol, req);
		if (r == HTTP_NEED_MORE && len >= HTTP_HEAD_MAX)
			return fail(req, HTTP_HEADERS_TOO_LARGE,
				    "a request head longer than 16 KiB");
		if (r != HTTP_OK || eol == pos)
			break;
		if (req->nheaders == HTTP_HEADERS_MAX)
			return fail(req, HTTP_HEADERS_TOO_LARGE, "more than 100 header fields");
		r = field_line(buf + pos, eol - pos, &fr, req);
	}
	if (r != HTTP_OK)
		return r;
	req->head_len = eol + 2;
	return finish(&fr, req);
}

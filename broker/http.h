/* The egress broker's HTTP/1.1 request-head parser. The guest's relay carries raw bytes from
 * its proxy port (127.0.0.1:3128) and its key-injection endpoints (3129..) to the broker, so
 * every head parsed here is written by a possibly hostile guest. Pure: no I/O, no allocation,
 * no global state.
 *
 * Strictness is the point: wherever two HTTP implementations could read one head two ways
 * (the broker and the upstream server, request smuggling), the head is refused instead:
 *   - lines end with CRLF only: a bare LF or a bare CR anywhere in the head is 400, and so is
 *     a NUL byte or any other control byte but HTAB in a field value;
 *   - request line: exactly METHOD SP TARGET SP HTTP/x.y, single spaces; an empty line before
 *     it is 400 (not skipped);
 *   - field lines: the name an RFC 9110 token directly followed by ':' (whitespace before the
 *     colon is 400); obs-fold (a line starting with SP or HTAB) is 400; the value is trimmed
 *     of SP/HTAB at both ends and may hold obs-text (0x80-0xff);
 *   - framing: Content-Length is digits only, at most 2^53, and every value (several lines, or
 *     a comma list) must be the same number; Transfer-Encoding with Content-Length is 400, in
 *     an HTTP/1.0 request 400; a Transfer-Encoding that is not exactly one "chunked" (any
 *     case) is 501 if it names another coding, 400 if malformed or "chunked" twice;
 *   - Host: at most one, a valid host[:port] (an empty value is refused too); required in an
 *     HTTP/1.1 request other than CONNECT.
 *
 * Request forms (RFC 9112 3.2), by method:
 *   - CONNECT: authority-form only, "host:port" (port required), the TLS tunnel through the
 *     proxy. It has no body: a Content-Length other than 0, or a Transfer-Encoding, is 400.
 *   - others: absolute-form "http://host[:port][/path][?query]" (plain HTTP through the proxy;
 *     the scheme in any case, default port 80, an empty path read as "/"), or origin-form
 *     "/path[?query]" (the key-injection endpoints, whose upstream host is configured, not
 *     taken from the request). "https://" in absolute-form is 400 (a client that wants TLS
 *     through a proxy uses CONNECT), as are other schemes, userinfo ("user@host"), a fragment
 *     ('#'), the asterisk-form ("OPTIONS *") and any target byte outside 0x21-0x7e.
 * In absolute-form the URI names the upstream; a Host header that says otherwise is only
 * checked for syntax, and the upstream head gets the URI's host (RFC 9112 3.2.2).
 *
 * Hosts: a name is lowercased, loses one trailing dot, and keeps to letters, digits, '-', '_'
 * and '.', in labels of 1-63 bytes, 253 bytes at most. A dotted quad is an IPv4 address; a
 * name that the C library's resolver would read as an IPv4 address but is not a canonical
 * dotted quad ("127.1", "0x7f.0.0.1", "2130706433", "010.0.0.1") is 400, so that the broker's
 * allowlist and the resolver cannot disagree about it. An IPv6 address comes in brackets
 * (without them it is 400), is stored without them, in canonical text ("[0:0::1]" is "::1");
 * zone ids and IPvFuture are 400. A port is 1-5 digits, 1..65535 ("+1", "0", "08x" are 400). */
#ifndef CLAWVM_BROKER_HTTP_H
#define CLAWVM_BROKER_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits, each refused with its own status (see enum http_result). */
#define HTTP_HEAD_MAX		(16 * 1024) /* bytes of a head, its final CRLFCRLF included */
#define HTTP_TARGET_MAX		(8 * 1024)  /* bytes of the request-target */
#define HTTP_HEADERS_MAX	100	    /* field lines of a head */
#define HTTP_HOST_MAX		253	    /* bytes of a host name (an IPv6 text is shorter) */
#define HTTP_CONTENT_LENGTH_MAX (1ull << 53)

/* What http_parse_request found. An error's value is the status the broker should answer
 * with (http_error_response), after which it closes the connection. */
enum http_result {
	HTTP_OK = 0,
	HTTP_NEED_MORE = 1,		  /* the head has not ended yet: read more, call again */
	HTTP_BAD_REQUEST = 400,		  /* malformed, or a form refused here */
	HTTP_METHOD_NOT_ALLOWED = 405,	  /* TRACE */
	HTTP_URI_TOO_LONG = 414,	  /* target > HTTP_TARGET_MAX */
	HTTP_HEADERS_TOO_LARGE = 431,	  /* head > HTTP_HEAD_MAX, or > HTTP_HEADERS_MAX fields */
	HTTP_NOT_IMPLEMENTED = 501,	  /* an unknown method, a transfer coding not "chunked" */
	HTTP_VERSION_NOT_SUPPORTED = 505, /* neither HTTP/1.0 nor HTTP/1.1 */
};

/* The methods served; every other token is 501, TRACE 405 (it would echo the head, with any
 * credential in it, back to the guest). */
enum http_method {
	HTTP_GET,
	HTTP_HEAD,
	HTTP_POST,
	HTTP_PUT,
	HTTP_DELETE,
	HTTP_PATCH,
	HTTP_OPTIONS,
	HTTP_CONNECT,
};

/* The method's name on the wire ("GET"...); NULL for a value outside the enum. */
const char *http_method_name(enum http_method m);

enum http_form {
	HTTP_FORM_ORIGIN,    /* "/path?query": host and port are not set */
	HTTP_FORM_ABSOLUTE,  /* "http://host[:port]/path?query" */
	HTTP_FORM_AUTHORITY, /* "host:port", CONNECT's */
};

enum http_host_kind {
	HTTP_HOST_NONE, /* origin-form */
	HTTP_HOST_NAME,
	HTTP_HOST_IPV4,
	HTTP_HOST_IPV6,
};

enum http_body {
	HTTP_BODY_NONE,	   /* no Content-Length, no Transfer-Encoding (or CONNECT) */
	HTTP_BODY_LENGTH,  /* content_length bytes follow the head */
	HTTP_BODY_CHUNKED, /* Transfer-Encoding: chunked */
};

/* A field line: spans into the caller's buffer (parsed), or the caller's strings (added). */
struct http_header {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

/* One parsed head. Its spans point into the buffer given to http_parse_request, which must
 * outlive them. */
struct http_request {
	enum http_method method;
	enum http_form form;
	int minor;		       /* HTTP/1.<minor>: 0 or 1 */
	enum http_host_kind host_kind; /* HTTP_HOST_NONE in origin-form */
	char host[HTTP_HOST_MAX + 1];  /* "" in origin-form; lowercased, IPv6 without brackets */
	uint16_t port;		       /* 1..65535; 0 in origin-form */
	/* The origin-form target (path and query): path[0..path_len), after a "/" when
	 * path_slash is set (absolute-form with an empty path: "http://h?q" is "/?q"). Empty for
	 * CONNECT. */
	const char *path;
	size_t path_len;
	bool path_slash;
	struct http_header headers[HTTP_HEADERS_MAX]; /* in the order sent */
	size_t nheaders;
	enum http_body body;
	uint64_t content_length; /* HTTP_BODY_LENGTH's */
	size_t head_len;	 /* bytes of the head, CRLFCRLF included; the body follows */
	const char *error;	 /* why, on an error (a static sentence, no newline) */
};

/* Parses the head at the start of buf[0..len). Stateless: with HTTP_NEED_MORE, call again
 * with the same bytes and more after them (each call reads at most HTTP_HEAD_MAX bytes).
 * Errors come as soon as the bytes so far prove them: a head with no end in its first
 * HTTP_HEAD_MAX bytes is 431 at once, a target past HTTP_TARGET_MAX 414 before its line
 * ends, a bad line when it ends. Every proper prefix of a head that parses is
 * HTTP_NEED_MORE. On HTTP_OK req is filled; on an error req->error says why. */
enum http_result http_parse_request(const char *buf, size_t len, struct http_request *req)
    __attribute__((warn_unused_result));

/* Writes the head to send upstream for a parsed non-CONNECT request into out[0..outlen)
 * (no NUL after it), and returns its length; 0 if it does not fit, for CONNECT (a tunnel has
 * no upstream head), or if an added field would break the head (a name that is not a token,
 * a control byte but HTAB in a value). The version is the broker's own, HTTP/1.1, whatever
 * the guest's. It is, in this order:
 *   METHOD SP origin-target SP "HTTP/1.1"
 *   "Host: host[:port]" (absolute-form only: the port left out when 80, IPv6 in brackets;
 *       in origin-form the caller adds Host, its upstream's, in `add`)
 *   the guest's fields in their order, less: Host, Content-Length, Transfer-Encoding (written
 *       again below, so upstream sees the framing the broker read), the hop-by-hop fields
 *       (Connection and every name it lists, Proxy-Connection, Proxy-Authorization,
 *       Keep-Alive, TE, Trailer, Upgrade) and the names in `drop` (a NULL-ended list, may be
 *       NULL; any case)
 *   "Content-Length: N" or "Transfer-Encoding: chunked", as req->body says
 *   the `add` fields, in order
 *   "Connection: close", and the empty line. */
size_t http_write_upstream_head(const struct http_request *req, const char *const *drop,
				const struct http_header *add, size_t nadd, char *out,
				size_t outlen) __attribute__((warn_unused_result));

/* Writes a whole response refusing the request into out[0..len), NUL-terminated: the status
 * line with its standard reason phrase, Content-Type: text/plain, Content-Length, Connection:
 * close (and for 405, Allow: the methods served), then the body "clawvm: <text>\n" (text
 * NULL: the reason phrase; its control bytes written as '?'). Returns the length without the
 * NUL, -EINVAL for a status it has no reason phrase for (400, 403, 404, 405, 407, 408, 413,
 * 414, 431, 500, 501, 502, 503, 504, 505 it has), -ENOSPC if it does not fit. */
int http_error_response(int status, const char *text, char *out, size_t len)
    __attribute__((warn_unused_result));

#endif

/* The heads the egress broker writes (http.h): the request head it sends upstream, rebuilt
 * from a parsed one without what ends at this hop, and the response refusing a request. */
#include "broker/http.h"
#include "broker/http_int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* A head being written: once something does not fit, nothing more is. */
struct head_out {
	char *buf;
	size_t len, cap;
	bool full;
};

static void put(struct head_out *o, const char *s, size_t n)
{
	if (n == 0)
		return;
	if (o->full || n > o->cap - o->len) {
		o->full = true;
		return;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}

static void put_str(struct head_out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void put_field(struct head_out *o, const char *name, size_t name_len, const char *value,
		      size_t value_len)
{
	put(o, name, name_len);
	put(o, ": ", 2);
	put(o, value, value_len);
	put(o, "\r\n", 2);
}

/* Fields the broker writes itself or that end at this hop (RFC 9110 7.6.1). */
static const char *const not_forwarded[] = {
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "proxy-connection",
    "proxy-authorization",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    NULL,
};

static bool name_listed(const char *name, size_t n, const char *const *list)
{
	for (; list && *list; list++) {
		if (http_word_is(name, n, *list))
			return true;
	}
	return false;
}

/* The name is one of those a Connection field lists. */
static bool named_by_connection(const struct http_request *req, const char *name, size_t n)
{
	struct http_elements it = {0, 0};
	const char *elem;
	size_t elen;

	while (http_next_element(req, "connection", &it, &elem, &elen)) {
		if (elen == n && strncasecmp(elem, name, n) == 0)
			return true;
	}
	return false;
}

size_t http_write_upstream_head(const struct http_request *req, const char *const *drop,
				const struct http_header *add, size_t nadd, char *out,
				size_t outlen)
{
	struct head_out o = {out, 0, outlen, false};
	char number[32];

	if (req->method == HTTP_CONNECT || !http_method_name(req->method))
		return 0;
	for (size_t i = 0; i < nadd; i++) {
		if (!http_is_token(add[i].name, add[i].name_len) ||
		    !http_is_field_value(add[i].value, add[i].value_len))
			return 0;
	}
	put_str(&o, http_method_name(req->method));
	put_str(&o, req->path_slash ? " /" : " ");
	put(&o, req->path, req->path_len);
	put_str(&o, " HTTP/1.1\r\n");
	if (req->form == HTTP_FORM_ABSOLUTE) {
		bool v6 = req->host_kind == HTTP_HOST_IPV6;

		put_str(&o, v6 ? "Host: [" : "Host: ");
		put_str(&o, req->host);
		put_str(&o, v6 ? "]" : "");
		if (req->port != 80) {
			snprintf(number, sizeof(number), ":%u", (unsigned)req->port);
			put_str(&o, number);
		}
		put_str(&o, "\r\n");
	}
	for (size_t i = 0; i < req->nheaders; i++) {
		const struct http_header *h = &req->headers[i];

		if (name_listed(h->name, h->name_len, not_forwarded) ||
		    name_listed(h->name, h->name_len, drop) ||
		    named_by_connection(req, h->name, h->name_len))
			continue;
		put_field(&o, h->name, h->name_len, h->value, h->value_len);
	}
	if (req->body == HTTP_BODY_LENGTH) {
		snprintf(number, sizeof(number), "%llu", (unsigned long long)req->content_length);
		put_field(&o, "Content-Length", 14, number, strlen(number));
	} else if (req->body == HTTP_BODY_CHUNKED) {
		put_str(&o, "Transfer-Encoding: chunked\r\n");
	}
	for (size_t i = 0; i < nadd; i++)
		put_field(&o, add[i].name, add[i].name_len, add[i].value, add[i].value_len);
	put_str(&o, "Connection: close\r\n\r\n");
	return o.full ? 0 : o.len;
}

static const struct {
	int status;
	const char *phrase;
} phrases[] = {
    {400, "Bad Request"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {407, "Proxy Authentication Required"},
    {408, "Request Timeout"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
};

int http_error_response(int status, const char *text, char *out, size_t len)
{
	struct head_out o = {out, 0, len ? len - 1 : 0, len == 0};
	const char *phrase = NULL;
	char number[32];
	size_t text_len;

	for (size_t i = 0; i < sizeof(phrases) / sizeof(phrases[0]); i++) {
		if (phrases[i].status == status)
			phrase = phrases[i].phrase;
	}
	if (!phrase)
		return -EINVAL;
	if (!text)
		text = phrase;
	text_len = strlen(text);
	snprintf(number, sizeof(number), "HTTP/1.1 %d ", status);
	put_str(&o, number);
	put_str(&o, phrase);
	put_str(&o, "\r\nContent-Type: text/plain\r\nContent-Length: ");
	snprintf(number, sizeof(number), "%zu", strlen("clawvm: \n") + text_len);
	put_str(&o, number);
	put_str(&o, "\r\n");
	if (status == HTTP_METHOD_NOT_ALLOWED) {
		put_str(&o, "Allow: ");
		for (int m = 0; http_method_name((enum http_method)m); m++) {
			put_str(&o, m ? ", " : "");
			put_str(&o, http_method_name((enum http_method)m));
		}
		put_str(&o, "\r\n");
	}
	put_str(&o, "Connection: close\r\n\r\nclawvm: ");
	for (size_t i = 0; i < text_len; i++) {
		unsigned char c = (unsigned char)text[i];

		/* The text may name what the guest sent; no escape sequence reaches a terminal. */
		put(&o, c < 0x20 || c == 0x7f ? "?" : text + i, 1);
	}
	put(&o, "\n", 1);
	if (o.full || o.len > INT_MAX)
		return -ENOSPC;
	out[o.len] = '\0';
	return (int)o.len;
}

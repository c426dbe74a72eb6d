/* Runs the request-head fuzz target without libFuzzer (gcc builds, CI under ASan/UBSan):
 *   fuzz_http_replay FILE...          replays inputs (crashes, a corpus)
 *   fuzz_http_replay [RUNS [SEED]]    RUNS generated inputs, 100000 by default
 * Generated inputs are heads of each form (the seeds of seeds/http/ and a few more), then a
 * few mutations of the kinds that reach the parser's refusals: a token inserted (line ends,
 * NUL, framing and hop-by-hop fields, schemes, brackets, ports), bytes flipped, dropped or cut,
 * the method swapped, a field line repeated up to past the field limit, a run of bytes up to past
 * the target's and the head's limits. */
#include <stdlib.h>
#include <string.h>

#include "broker/http.h"
#include "replay.h"

#define CAP (HTTP_HEAD_MAX + 4096)

static const char *const seeds[] = {
    "CONNECT api.anthropic.com:443 HTTP/1.1\r\nHost: api.anthropic.com:443\r\n"
    "User-Agent: curl/7.88.1\r\nProxy-Connection: Keep-Alive\r\n\r\n\x16\x03\x01",
    "CONNECT [2001:db8::1]:8443 HTTP/1.0\r\n\r\n",
    "GET http://Example.com:8080/search?q=a%20b HTTP/1.1\r\nHost: example.com:8080\r\n"
    "Accept: */*\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nContent-Length: 5\r\n\r\nhello",
    "HEAD http://10.1.2.3?x HTTP/1.0\r\nTE: trailers\r\nUpgrade: h2c\r\n\r\n",
    "POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:3129\r\nx-api-key: sk-guest\r\n"
    "anthropic-version: 2023-06-01\r\nContent-Type: application/json\r\n"
    "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    "PUT /a/b HTTP/1.1\r\nHost: [::1]:3130\r\nAuthorization: Bearer x\r\nContent-Length: 3, 3\r\n"
    "X-Obs: caf\xc3\xa9\r\n\r\nabc",
};

static const char *const tokens[] = {
    "\r\n",
    "\n",
    "\r",
    "\r\n\r\n",
    " ",
    "\t",
    ":",
    ",",
    "@",
    "[",
    "]",
    "#",
    "?",
    "/",
    ".",
    "\x80",
    "\x7f",
    "\r\n ",
    "Host: h\r\n",
    "Host: [::1]:0\r\n",
    "Content-Length: 5\r\n",
    "Content-Length: 6\r\n",
    "Content-Length: 9007199254740993\r\n",
    "Transfer-Encoding: chunked\r\n",
    "Transfer-Encoding: gzip\r\n",
    "Connection: x-a, upgrade, host\r\n",
    "Proxy-Authorization: x\r\n",
    "x-api-key: guest\r\n",
    "http://",
    "https://",
    "HTTP://",
    "[::ffff:127.0.0.1]",
    "127.1",
    "0x7f.1",
    ":65536",
    ":0",
    ":443",
    "TRACE",
    "CONNECT",
    "HTTP/2.0",
    "HTTP/1.0",
};

/* A run of one byte, long enough to reach a limit, or one past it. */
static size_t pad(uint8_t *in, size_t len, size_t cap, size_t at)
{
	static const size_t sizes[] = {
	    HTTP_TARGET_MAX - 16, HTTP_TARGET_MAX, HTTP_HEAD_MAX - 64, HTTP_HEAD_MAX, 63, 64, 253};
	size_t n = sizes[below(sizeof(sizes) / sizeof(sizes[0]))] + below(3);

	if (len + n > cap)
		return len;
	memmove(in + at + n, in + at, len - at);
	memset(in + at, "aZ9-. "[below(6)], n);
	return len + n;
}

/* The field line around `at`, repeated until the head has about HTTP_HEADERS_MAX of them. */
static size_t repeat_line(uint8_t *in, size_t len, size_t cap, size_t at)
{
	size_t start = at, end = at, times = HTTP_HEADERS_MAX - 5 + below(10);

	while (start > 0 && in[start - 1] != '\n')
		start--;
	while (end < len && in[end] != '\n')
		end++;
	if (end == len || end == start)
		return len;
	end++;
	for (size_t i = 0; i < times; i++)
		len = replay_insert(in, len, cap, end, in + start, end - start);
	return len;
}

/* The request line's method (all before its first space) replaced. */
static size_t swap_method(uint8_t *in, size_t len, size_t cap)
{
	static const char *const methods[] = {"TRACE", "CONNECT", "GET", "OPTIONS", "PRI", "get"};
	const char *m = methods[below(sizeof(methods) / sizeof(methods[0]))];
	uint8_t *sp = memchr(in, ' ', len);
	size_t old = sp ? (size_t)(sp - in) : 0;

	memmove(in, in + old, len - old);
	return replay_insert(in, len - old, cap, 0, m, strlen(m));
}

static size_t generate(uint8_t *in, size_t cap)
{
	size_t len = replay_seed(in, seeds, sizeof(seeds) / sizeof(seeds[0]));

	for (unsigned n = (unsigned)below(4); n > 0; n--) {
		size_t at = below(len + 1);

		switch (below(9)) {
		case 0:
			len = replay_insert(in, len, cap, at, "", 1); /* a NUL */
			break;
		case 1:
			len = pad(in, len, cap, at);
			break;
		case 2:
			len = repeat_line(in, len, cap, at);
			break;
		case 3:
			len = swap_method(in, len, cap);
			break;
		default:
			len =
			    replay_mutate(in, len, cap, tokens, sizeof(tokens) / sizeof(tokens[0]));
		}
	}
	return len;
}

const struct replay_target replay_target = {"fuzz_http_replay", CAP, 100000, generate};

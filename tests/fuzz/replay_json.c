/* The mutations the JSON targets' generators share (replay.h): what reaches a JSON parser's
 * refusals from a valid line. */
#include <string.h>

#include "replay.h"

/* Tokens any JSON parser must refuse or take with care, put in place of a value or between
 * bytes as often as a target's own. */
static const char *const json_tokens[] = {
    "null",
    "true",
    "-3",
    "1.5",
    "9223372036854775807",
    "9223372036854775808",
    "1e999",
    "[]",
    "{}",
    "\"\"",
    "\"\\u0000\"",
    "\"\xff\"",
    "\"\xc3\"",
    ",",
    ":",
    "\"",
    "[",
    "{",
    "}",
    "]",
    "\\",
};

static size_t insert(uint8_t *in, size_t len, size_t cap, size_t at, const char *s, size_t n)
{
	if (len + n > cap)
		return len;
	memmove(in + at + n, in + at, len - at);
	memcpy(in + at, s, n);
	return len + n;
}

size_t replay_mutate_json(uint8_t *in, size_t len, size_t cap, const char *const *tokens,
			  size_t ntokens)
{
	for (unsigned n = (unsigned)below(4); n > 0; n--) {
		size_t at = below(len + 1);
		const char *token =
		    below(2) ? tokens[below(ntokens)]
			     : json_tokens[below(sizeof(json_tokens) / sizeof(json_tokens[0]))];

		switch (below(6)) {
		case 0:
		case 1:
			len = insert(in, len, cap, at, token, strlen(token));
			break;
		case 2:
			if (at < len)
				in[at] = (uint8_t)rnd();
			break;
		case 3:
			len = at; /* cut short */
			break;
		case 4: {
			size_t depth = below(8) ? below(64) : below(cap / 2);

			for (size_t i = 0; i < depth && len < cap; i++)
				len = insert(in, len, cap, at, "[", 1);
			break;
		}
		default:
			if (at < len) { /* drop a byte */
				memmove(in + at, in + at + 1, len - at - 1);
				len--;
			}
		}
	}
	return len;
}

size_t replay_generate_json(uint8_t *in, size_t cap, const char *const *seeds, size_t nseeds,
			    const char *const *tokens, size_t ntokens)
{
	const char *seed = seeds[below(nseeds)];
	size_t len = strlen(seed);

	memcpy(in, seed, len);
	return replay_mutate_json(in, len, cap, tokens, ntokens);
}

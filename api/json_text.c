/* JSON helpers shared by the files of api/ (api/json_text.h). */
#include "api/json_text.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The length of the valid UTF-8 sequence at s (RFC 3629: no overlong forms, no surrogates,
 * nothing past U+10FFFF), or 0. */
static size_t utf8_sequence(const unsigned char *s)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++) {
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	}
	return n;
}

json_t *jtext_string(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len, out_len = 0, bad = 0;
	json_t *v;
	char *out;

	if (!s)
		return json_null();
	len = strlen(s);
	for (size_t i = 0; i < len;) {
		size_t n = utf8_sequence(p + i);

		bad += n == 0;
		i += n ? n : 1;
	}
	if (bad == 0)
		return json_stringn(s, len);
	out = malloc(len + 2 * bad + 1); /* each bad byte becomes 3 */
	if (!out)
		return NULL;
	for (size_t i = 0; i < len;) {
		size_t n = utf8_sequence(p + i);

		if (n) {
			memcpy(out + out_len, s + i, n);
			out_len += n;
			i += n;
		} else {
			memcpy(out + out_len, "\xef\xbf\xbd", 3);
			out_len += 3;
			i++;
		}
	}
	v = json_stringn(out, out_len);
	free(out);
	return v;
}

char *jtext_dump(json_t *v, bool newline)
{
	size_t flags = JSON_COMPACT | JSON_ENCODE_ANY, len;
	char *text = NULL;

	if (!v)
		return NULL;
	len = json_dumpb(v, NULL, 0, flags);
	if (len > 0)
		text = malloc(len + 2);
	if (text) {
		json_dumpb(v, text, len, flags);
		if (newline)
			text[len++] = '\n';
		text[len] = '\0';
	}
	json_decref(v);
	return text;
}

const char *jtext_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
		return "true";
	case JSON_FALSE:
		return "false";
	default:
		return "null";
	}
}

/* What broker/http.c (the parser) shares with broker/http_write.c (the heads written):
 * RFC 9110's lexical rules, and a walk over the elements of comma-list fields. */
#ifndef CLAWVM_BROKER_HTTP_INT_H
#define CLAWVM_BROKER_HTTP_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "broker/http.h"

/* s[0..n) is a token (RFC 9110 5.6.2), at least one byte. */
bool http_is_token(const char *s, size_t n);
/* s[0..n) holds only a field value's bytes: HTAB, SP, VCHAR, obs-text. */
bool http_is_field_value(const char *s, size_t n);
/* s[0..n) equals the lowercase word, in any case. */
bool http_word_is(const char *s, size_t n, const char *word);

/* Where http_next_element is: start it at {0, 0}. */
struct http_elements {
	size_t field, at;
};
/* The next element (OWS trimmed, maybe empty) of the comma lists of every field called name
 * (lowercase; any case in the head), in the head's order; false after the last. */
bool http_next_element(const struct http_request *req, const char *name, struct http_elements *it,
		       const char **elem, size_t *elen);

#endif

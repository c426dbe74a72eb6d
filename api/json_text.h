/* JSON helpers shared by the files of api/ (the only code that sees jansson): any bytes made
 * a JSON string, a value written as one compact line, and a value's type named for an error
 * message. */
#ifndef CLAWVM_JSON_TEXT_H
#define CLAWVM_JSON_TEXT_H

#include <jansson.h>
#include <stdbool.h>

/* A JSON string of s (any bytes: each byte that is not part of valid UTF-8 becomes U+FFFD),
 * null for NULL; NULL when memory runs out. */
json_t *jtext_string(const char *s);
/* v as compact JSON text, with "\n" when `newline`, malloc()ed; takes v (NULL gives NULL). */
char *jtext_dump(json_t *v, bool newline);
/* "a string", "an object", "a number", "true", ... */
const char *jtext_type_name(const json_t *v);

#endif

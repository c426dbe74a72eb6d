/* What the audit log's writer (api/audit.c) and readers (api/audit_read.c) share: one
 * description of the events and one check of a line or an event against it (so that the
 * writer refuses exactly what the verifier would call bad), the parser's limits, and the
 * chain's hash. Inside api/ only: it speaks jansson. */
#ifndef CLAWVM_AUDIT_INT_H
#define CLAWVM_AUDIT_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "api/audit.h"

#define AUDIT_HASH_HEX 64 /* a SHA-256 in lowercase hex */
#define AUDIT_TS_LEN   24 /* "2026-12-04T18:52:19.123Z" */

/* Parses text[len] as one JSON object of at most `max` bytes: no NUL byte, valid UTF-8,
 * no member twice, nested at most AUDIT_DEPTH_MAX deep. NULL with why[AUDIT_REASON_MAX]. */
json_t *audit_parse(const char *text, size_t len, size_t max, char *why);

/* Checks an event object against its event's fields: a sender's (`line` false: the chain
 * keys are refused, they are the writer's) or a log line's (`line` true: seq, ts, prev, src
 * and event come first, in that order, with well-formed values). 0, or -1 with
 * why[AUDIT_REASON_MAX]. */
int audit_check(const json_t *obj, bool line, char *why);

/* The i-th member an event of that (known) name may carry after "event", in the order a
 * line holds them; NULL past the last. */
const char *audit_member(const char *event, size_t i);

/* Whether src is a source's name (1 to AUDIT_SRC_MAX of a-z, 0-9, '_', '-'). */
bool audit_src_ok(const char *src);

/* The SHA-256 of data[len] in lowercase hex. */
void audit_hash(const void *data, size_t len, char hex[AUDIT_HASH_HEX + 1]);

#endif

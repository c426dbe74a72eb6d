/* An agent image's SBOM, the sbom.json that dist/images/build-image writes beside the image's
 * root directory:
 *   {"image": NAME, "key": KEY, "built": ISO 8601 UTC time, "size": bytes of root/,
 *    "debian": [{"name", "version"}...], "npm": [{"name", "version"}...]}
 * read into a plain summary, and that summary written as JSON (`clawvm image ls --json`).
 * Pure: no I/O, no global state. */
#ifndef CLAWVM_IMAGE_SBOM_H
#define CLAWVM_IMAGE_SBOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An SBOM longer than this is refused (the claude image's is about 10 KiB). */
#define SBOM_TEXT_MAX (4 * 1024 * 1024)
/* A name, key, time or version longer than this (with its NUL) is refused. */
#define SBOM_FIELD_MAX 128

struct sbom_summary {
	char image[SBOM_FIELD_MAX];
	char key[SBOM_FIELD_MAX];
	char built[SBOM_FIELD_MAX];
	uint64_t size;
	unsigned debian_count, npm_count;
	/* The versions ls shows: Debian's nodejs and npm's @anthropic-ai/claude-code, "" when
	 * the image has none. */
	char nodejs[SBOM_FIELD_MAX];
	char claude_code[SBOM_FIELD_MAX];
};

/* Reads the SBOM `text` (len bytes) into *s: 0, or -1 with why in err[cap] (not JSON, a
 * field missing or of the wrong type, a string too long). */
__attribute__((warn_unused_result)) int sbom_parse(const char *text, size_t len,
						   struct sbom_summary *s, char *err, size_t cap);

/* *s as one JSON object on one line (no "\n"), with the image's root directory, its SBOM's
 * path and whether it is its image's current build: {"image", "key", "built", "current",
 * "size", "nodejs", "claude_code", "debian_packages", "npm_packages", "root", "sbom"}; a
 * version the image lacks is null. malloc()ed; NULL when memory runs out. */
char *sbom_summary_json(const struct sbom_summary *s, bool current, const char *root,
			const char *sbom);

#endif

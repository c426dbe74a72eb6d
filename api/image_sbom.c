/* An agent image's SBOM read into a summary, and the summary written as JSON
 * (api/image_sbom.h). */
#include "api/image_sbom.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "api/json_text.h"

__attribute__((format(printf, 3, 4))) static int sbom_fail(char *err, size_t cap, const char *fmt,
							   ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, cap, fmt, ap);
	va_end(ap);
	return -1;
}

/* Copies the string `value` (named `what`) into out[SBOM_FIELD_MAX]. */
static int sbom_string(const json_t *value, const char *what, char *out, char *err, size_t cap)
{
	if (!value)
		return sbom_fail(err, cap, "`%s` is missing", what);
	if (!json_is_string(value))
		return sbom_fail(err, cap, "`%s` is %s, not a string", what,
				 jtext_type_name(value));
	if (json_string_length(value) >= SBOM_FIELD_MAX ||
	    strlen(json_string_value(value)) != json_string_length(value))
		return sbom_fail(err, cap, "`%s` is longer than %d bytes or holds a NUL", what,
				 SBOM_FIELD_MAX - 1);
	memcpy(out, json_string_value(value), json_string_length(value) + 1);
	return 0;
}

/* Checks the list `what` ([{"name", "version"}...]), counts it into *count and copies the
 * version of `wanted` into version[SBOM_FIELD_MAX] ("" if it is not there). */
static int sbom_packages(const json_t *list, const char *what, const char *wanted, unsigned *count,
			 char *version, char *err, size_t cap)
{
	const json_t *entry;
	size_t i;

	if (!list)
		return sbom_fail(err, cap, "`%s` is missing", what);
	if (!json_is_array(list))
		return sbom_fail(err, cap, "`%s` is %s, not an array", what, jtext_type_name(list));
	version[0] = '\0';
	json_array_foreach(list, i, entry)
	{
		const json_t *name = json_object_get(entry, "name");
		char field[64];

		snprintf(field, sizeof(field), "%s[%zu].name", what, i);
		if (!json_is_object(entry) || !json_is_string(name))
			return sbom_fail(err, cap, "`%s` is not a string", field);
		snprintf(field, sizeof(field), "%s[%zu].version", what, i);
		if (!json_is_string(json_object_get(entry, "version")))
			return sbom_fail(err, cap, "`%s` is not a string", field);
		if (!strcmp(json_string_value(name), wanted) &&
		    sbom_string(json_object_get(entry, "version"), field, version, err, cap) < 0)
			return -1;
	}
	*count = (unsigned)json_array_size(list);
	return 0;
}

int sbom_parse(const char *text, size_t len, struct sbom_summary *s, char *err, size_t cap)
{
	json_error_t jerr;
	json_t *root, *size;
	int ret = -1;

	memset(s, 0, sizeof(*s));
	if (len > SBOM_TEXT_MAX)
		return sbom_fail(err, cap, "longer than %d bytes", SBOM_TEXT_MAX);
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return sbom_fail(err, cap, "not JSON: %s (line %d)", jerr.text, jerr.line);
	size = json_object_get(root, "size");
	if (!json_is_object(root)) {
		sbom_fail(err, cap, "not a JSON object");
	} else if (sbom_string(json_object_get(root, "image"), "image", s->image, err, cap) < 0 ||
		   sbom_string(json_object_get(root, "key"), "key", s->key, err, cap) < 0 ||
		   sbom_string(json_object_get(root, "built"), "built", s->built, err, cap) < 0) {
		/* said why */
	} else if (!json_is_integer(size) || json_integer_value(size) < 0) {
		sbom_fail(err, cap, "`size` is not a whole number of bytes");
	} else if (sbom_packages(json_object_get(root, "debian"), "debian", "nodejs",
				 &s->debian_count, s->nodejs, err, cap) == 0 &&
		   sbom_packages(json_object_get(root, "npm"), "npm", "@anthropic-ai/claude-code",
				 &s->npm_count, s->claude_code, err, cap) == 0) {
		s->size = (uint64_t)json_integer_value(size);
		ret = 0;
	}
	json_decref(root);
	return ret;
}

/* A version, or null for "". */
static json_t *sbom_version(const char *version)
{
	return version[0] ? jtext_string(version) : json_null();
}

char *sbom_summary_json(const struct sbom_summary *s, bool current, const char *root,
			const char *sbom)
{
	json_t *obj = json_object();

	if (!obj)
		return NULL;
	/* The _new setters take their value even when it is NULL (out of memory) and fail:
	 * one check of the sum tells. */
	int failed =
	    json_object_set_new(obj, "image", jtext_string(s->image)) |
	    json_object_set_new(obj, "key", jtext_string(s->key)) |
	    json_object_set_new(obj, "built", jtext_string(s->built)) |
	    json_object_set_new(obj, "current", json_boolean(current)) |
	    json_object_set_new(
		obj, "size", json_integer(s->size > INT64_MAX ? INT64_MAX : (json_int_t)s->size)) |
	    json_object_set_new(obj, "nodejs", sbom_version(s->nodejs)) |
	    json_object_set_new(obj, "claude_code", sbom_version(s->claude_code)) |
	    json_object_set_new(obj, "debian_packages", json_integer(s->debian_count)) |
	    json_object_set_new(obj, "npm_packages", json_integer(s->npm_count)) |
	    json_object_set_new(obj, "root", jtext_string(root)) |
	    json_object_set_new(obj, "sbom", jtext_string(sbom));
	if (failed) {
		json_decref(obj);
		return NULL;
	}
	return jtext_dump(obj, false);
}

/* Agent images: the SBOM reader and its JSON summary (api/image_sbom.h), the cache's place
 * and the current build's root (vmm/image.h), against a cache made here. */
#include "unit.h"

#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/image_sbom.h"
#include "vmm/image.h"

static const char sbom_text[] =
    "{\n"
    " \"image\": \"claude\",\n"
    " \"key\": \"0123456789abcdef\",\n"
    " \"built\": \"2026-12-04T22:43:32Z\",\n"
    " \"size\": 748711936,\n"
    " \"debian\": [\n"
    "  {\"name\":\"git\",\"version\":\"1:2.39.5-0+deb12u3\"},\n"
    "  {\"name\":\"nodejs\",\"version\":\"18.20.4+dfsg-1~deb12u3\"}\n"
    " ],\n"
    " \"npm\": [\n"
    "  {\"name\":\"@anthropic-ai/claude-code\",\"version\":\"2.1.332\"},\n"
    "  {\"name\":\"@anthropic-ai/claude-code-linux-x64\",\"version\":\"2.1.332\"}\n"
    " ]\n"
    "}\n";

static void sbom_read(void **state)
{
	struct sbom_summary s;
	char err[256];
	char *json;

	(void)state;
	assert_int_equal(sbom_parse(sbom_text, strlen(sbom_text), &s, err, sizeof(err)), 0);
	assert_string_equal(s.image, "claude");
	assert_string_equal(s.key, "0123456789abcdef");
	assert_string_equal(s.built, "2026-12-04T22:43:32Z");
	assert_int_equal(s.size, 748711936);
	assert_int_equal(s.debian_count, 2);
	assert_int_equal(s.npm_count, 2);
	assert_string_equal(s.nodejs, "18.20.4+dfsg-1~deb12u3");
	/* The launcher's version, not its platform package's that follows it. */
	assert_string_equal(s.claude_code, "2.1.332");
	json = sbom_summary_json(&s, true, "/c/claude/k/root", "/c/claude/k/sbom.json");
	assert_non_null(json);
	assert_string_equal(
	    json,
	    "{\"image\":\"claude\",\"key\":\"0123456789abcdef\",\"built\":\"2026-12-04T22:43:32Z\","
	    "\"current\":true,\"size\":748711936,\"nodejs\":\"18.20.4+dfsg-1~deb12u3\","
	    "\"claude_code\":\"2.1.332\",\"debian_packages\":2,\"npm_packages\":2,"
	    "\"root\":\"/c/claude/k/root\",\"sbom\":\"/c/claude/k/sbom.json\"}");
	free(json);
}

static void sbom_without_the_versions(void **state)
{
	static const char text[] =
	    "{\"image\":\"x\",\"key\":\"k\",\"built\":\"t\",\"size\":0,"
	    "\"debian\":[],\"npm\":[{\"name\":\"left-pad\",\"version\":\"1\"}]}";
	struct sbom_summary s;
	char err[256];
	char *json;

	(void)state;
	assert_int_equal(sbom_parse(text, strlen(text), &s, err, sizeof(err)), 0);
	assert_string_equal(s.nodejs, "");
	assert_string_equal(s.claude_code, "");
	json = sbom_summary_json(&s, false, "/r", "/s");
	assert_non_null(json);
	assert_string_equal(json,
			    "{\"image\":\"x\",\"key\":\"k\",\"built\":\"t\",\"current\":false,"
			    "\"size\":0,\"nodejs\":null,\"claude_code\":null,"
			    "\"debian_packages\":0,\"npm_packages\":1,\"root\":\"/r\","
			    "\"sbom\":\"/s\"}");
	free(json);
}

/* Each bad SBOM is refused, saying why. */
static void sbom_refused(void **state)
{
	static const struct {
		const char *text, *why;
	} cases[] = {
	    {"{", "not JSON: string or '}' expected near end of file (line 1)"},
	    {"[]", "not a JSON object"},
	    {"{\"key\":\"k\",\"built\":\"t\",\"size\":0,\"debian\":[],\"npm\":[]}",
	     "`image` is missing"},
	    {"{\"image\":1,\"key\":\"k\",\"built\":\"t\",\"size\":0,\"debian\":[],\"npm\":[]}",
	     "`image` is a number, not a string"},
	    {"{\"image\":\"x\",\"key\":\"k\",\"built\":\"t\",\"size\":-1,\"debian\":[],\"npm\":[]}",
	     "`size` is not a whole number of bytes"},
	    {"{\"image\":\"x\",\"key\":\"k\",\"built\":\"t\",\"size\":0,\"debian\":[]}",
	     "`npm` is missing"},
	    {"{\"image\":\"x\",\"key\":\"k\",\"built\":null,\"size\":0,\"debian\":[],\"npm\":[]}",
	     "`built` is null, not a string"},
	    {"{\"image\":\"x\",\"key\":\"k\",\"built\":\"t\",\"size\":0,\"debian\":{},\"npm\":[]}",
	     "`debian` is an object, not an array"},
	    {"{\"image\":\"x\",\"key\":\"k\",\"built\":\"t\",\"size\":0,\"debian\":[],"
	     "\"npm\":[{\"name\":\"a\",\"version\":\"1\"},{\"name\":\"b\"}]}",
	     "`npm[1].version` is not a string"},
	    {"{\"image\":\"x\",\"key\":\"k\",\"built\":\"t\",\"size\":0,\"debian\":[\"nodejs\"],"
	     "\"npm\":[]}",
	     "`debian[0].name` is not a string"},
	    {"{\"image\":\"x\",\"image\":\"y\"}", "not JSON: duplicate object key near '\"image\"' "
						  "(line 1)"},
	};
	struct sbom_summary s;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(
		    sbom_parse(cases[i].text, strlen(cases[i].text), &s, err, sizeof(err)), -1);
		assert_string_equal(err, cases[i].why);
	}
}

static void sbom_long_version_refused(void **state)
{
	char text[SBOM_FIELD_MAX + 256], err[256];
	struct sbom_summary s;
	int n;

	(void)state;
	n = snprintf(text, sizeof(text),
		     "{\"image\":\"x\",\"key\":\"k\",\"built\":\"t\",\"size\":0,\"npm\":[],"
		     "\"debian\":[{\"name\":\"nodejs\",\"version\":\"%0*d\"}]}",
		     SBOM_FIELD_MAX, 0);
	assert_true(n > 0 && (size_t)n < sizeof(text));
	assert_int_equal(sbom_parse(text, (size_t)n, &s, err, sizeof(err)), -1);
	assert_string_equal(err, "`debian[0].version` is longer than 127 bytes or holds a NUL");
}

static void cache_dir_from_the_environment(void **state)
{
	char out[PATH_MAX], err[256];

	(void)state;
	setenv("XDG_CACHE_HOME", "/x/cache", 1);
	setenv("HOME", "/home/h", 1);
	assert_int_equal(image_cache_dir(out, err, sizeof(err)), 0);
	assert_string_equal(out, "/x/cache/clawvm/images");
	setenv("XDG_CACHE_HOME", "", 1);
	assert_int_equal(image_cache_dir(out, err, sizeof(err)), 0);
	assert_string_equal(out, "/home/h/.cache/clawvm/images");
	unsetenv("XDG_CACHE_HOME");
	assert_int_equal(image_cache_dir(out, err, sizeof(err)), 0);
	assert_string_equal(out, "/home/h/.cache/clawvm/images");
}

static void names_checked(void **state)
{
	char err[256];

	(void)state;
	assert_int_equal(image_check_name("claude", err, sizeof(err)), 0);
	assert_int_equal(image_check_name("a.b_c-1", err, sizeof(err)), 0);
	assert_int_equal(image_check_name("", err, sizeof(err)), -1);
	assert_int_equal(image_check_name("-x", err, sizeof(err)), -1);
	assert_int_equal(image_check_name("Claude", err, sizeof(err)), -1);
	assert_int_equal(image_check_name("../etc", err, sizeof(err)), -1);
	assert_string_equal(err, "`../etc` is not an image name: 1 to 63 of a-z 0-9 . _ -, "
				 "starting with a letter or a digit");
}

/* image_root resolves CACHE/NAME/current/root, and says what to do when it is missing. */
static void root_of_the_current_build(void **state)
{
	char dir[] = "/tmp/clawvm-test-image.XXXXXX", path[PATH_MAX], out[PATH_MAX], err[768];
	char recipes[PATH_MAX], want[PATH_MAX + 1024], msg[512];

	(void)state;
	assert_non_null(mkdtemp(dir));
	setenv("XDG_CACHE_HOME", dir, 1);
	snprintf(path, sizeof(path), "%s/clawvm", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	strcat(path, "/images");
	assert_int_equal(mkdir(path, 0755), 0);
	strcat(path, "/claude");
	assert_int_equal(mkdir(path, 0755), 0);
	strcat(path, "/current");
	assert_int_equal(symlink("k1", path), 0);
	snprintf(path, sizeof(path), "%s/clawvm/images/claude/k1", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	strcat(path, "/root");
	assert_int_equal(mkdir(path, 0755), 0);

	assert_int_equal(image_root("claude", out, err, sizeof(err)), 0);
	assert_string_equal(out, path);
	/* Not built: which message depends on whether this program finds recipes (in the
	 * source tree beside its build directory, or installed), as clawvm would. */
	assert_int_equal(image_root("other", out, err, sizeof(err)), -1);
	if (image_recipe_dir(recipes, msg, sizeof(msg)) == 0) {
		char names[512];

		image_names(recipes, names, sizeof(names));
		snprintf(want, sizeof(want), "no image `other`: the images are %s (recipes in %s)",
			 names[0] ? names : "none", recipes);
	} else {
		snprintf(want, sizeof(want),
			 "image `other` is not built (no %s/clawvm/images/other/current/root), and "
			 "this clawvm has %s",
			 dir, msg);
	}
	assert_string_equal(err, want);
	assert_int_equal(image_root("Bad/name", out, err, sizeof(err)), -1);
	assert_string_equal(err, "`Bad/name` is not an image name: 1 to 63 of a-z 0-9 . _ -, "
				 "starting with a letter or a digit");

	rmdir(path);
	snprintf(path, sizeof(path), "%s/clawvm/images/claude/k1", dir);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/clawvm/images/claude/current", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/clawvm/images/claude", dir);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/clawvm/images", dir);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/clawvm", dir);
	rmdir(path);
	assert_int_equal(rmdir(dir), 0);
	unsetenv("XDG_CACHE_HOME");
}

/* A recipe directory's names: *.recipe that are image names, sorted. */
static void names_of_the_recipes(void **state)
{
	char dir[] = "/tmp/clawvm-test-recipes.XXXXXX", path[PATH_MAX], names[64];
	static const char *const files[] = {"zeta.recipe", "claude.recipe", "Bad.recipe",
					    "notes.txt",   ".recipe",	    "build-image"};

	(void)state;
	assert_non_null(mkdtemp(dir));
	image_names(dir, names, sizeof(names));
	assert_string_equal(names, "");
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		f = fopen(path, "w");
		assert_non_null(f);
		fclose(f);
	}
	image_names(dir, names, sizeof(names));
	assert_string_equal(names, "claude, zeta");
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		assert_int_equal(unlink(path), 0);
	}
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(sbom_read),
	    cmocka_unit_test(sbom_without_the_versions),
	    cmocka_unit_test(sbom_refused),
	    cmocka_unit_test(sbom_long_version_refused),
	    cmocka_unit_test(cache_dir_from_the_environment),
	    cmocka_unit_test(names_checked),
	    cmocka_unit_test(root_of_the_current_build),
	    cmocka_unit_test(names_of_the_recipes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

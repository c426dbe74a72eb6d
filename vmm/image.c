/* Where agent images' recipes and builds are (image.h). */
#include "vmm/image.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/config.h"

#define RECIPE_SUFFIX ".recipe"

int image_check_name(const char *name, char *err, size_t cap)
{
	size_t len = strlen(name);

	if (len == 0 || len > 63 ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789._-") != len ||
	    !strchr("abcdefghijklmnopqrstuvwxyz0123456789", name[0])) {
		snprintf(err, cap,
			 "`%s` is not an image name: 1 to 63 of a-z 0-9 . _ -, starting with a "
			 "letter or a digit",
			 name);
		return -1;
	}
	return 0;
}

int image_cache_dir(char *out, char *err, size_t cap)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	struct passwd *pw;
	int n;

	/* As build-kernel and build-image have it: ${XDG_CACHE_HOME:-$HOME/.cache}. */
	if (xdg && *xdg) {
		n = snprintf(out, PATH_MAX, "%s/clawvm/images", xdg);
	} else {
		if (!home || !*home) {
			pw = getpwuid(getuid());
			home = pw ? pw->pw_dir : NULL;
		}
		if (!home || !*home) {
			snprintf(err, cap,
				 "no cache directory for images: set XDG_CACHE_HOME or HOME");
			return -1;
		}
		n = snprintf(out, PATH_MAX, "%s/.cache/clawvm/images", home);
	}
	if (n < 0 || n >= PATH_MAX) {
		snprintf(err, cap, "the cache directory for images is too long a path");
		return -1;
	}
	return 0;
}

int image_recipe_dir(char *out, char *err, size_t cap)
{
	struct guest_dirs dirs;
	char builder[PATH_MAX + 16];
	const char *places[2];

	config_guest_dirs(&dirs);
	places[0] = dirs.self;
	places[1] = dirs.list[1];
	for (unsigned i = 0; i < 2; i++) {
		int n =
		    snprintf(out, PATH_MAX, i == 0 ? "%s/../dist/images" : "%s/images", places[i]);

		snprintf(builder, sizeof(builder), "%s/build-image", out);
		if (n > 0 && n < PATH_MAX && access(builder, X_OK) == 0) {
			char real[PATH_MAX];

			/* bin/../dist/images said plainly */
			if (realpath(out, real))
				memcpy(out, real, PATH_MAX);
			return 0;
		}
	}
	snprintf(err, cap,
		 "no image recipes: looked for build-image in %s/../dist/images and %s/images",
		 places[0], places[1]);
	return -1;
}

static int image_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void image_names(const char *dir, char *out, size_t cap)
{
	char *names[64];
	size_t count = 0, len = 0;
	struct dirent *ent;
	DIR *d = opendir(dir);

	out[0] = '\0';
	if (!d)
		return;
	while ((ent = readdir(d)) && count < sizeof(names) / sizeof(names[0])) {
		size_t n = strlen(ent->d_name);
		char msg[8];

		if (n <= strlen(RECIPE_SUFFIX) ||
		    strcmp(ent->d_name + n - strlen(RECIPE_SUFFIX), RECIPE_SUFFIX))
			continue;
		names[count] = strndup(ent->d_name, n - strlen(RECIPE_SUFFIX));
		if (names[count] && image_check_name(names[count], msg, sizeof(msg)) == 0)
			count++;
		else
			free(names[count]);
	}
	closedir(d);
	qsort(names, count, sizeof(names[0]), image_name_cmp);
	for (size_t i = 0; i < count; i++) {
		int n = snprintf(out + len, cap - len, "%s%s", i ? ", " : "", names[i]);

		if (n > 0 && (size_t)n < cap - len)
			len += (size_t)n;
		free(names[i]);
	}
}

int image_root(const char *name, char *out, char *err, size_t cap)
{
	char cache[PATH_MAX], recipes[PATH_MAX], recipe[PATH_MAX + 80], known[512], msg[512];
	char current[PATH_MAX + 80];
	int n;

	if (image_check_name(name, err, cap) < 0 || image_cache_dir(cache, err, cap) < 0)
		return -1;
	n = snprintf(current, sizeof(current), "%s/%s/current/root", cache, name);
	if (n > 0 && (size_t)n < sizeof(current) && realpath(current, out))
		return 0;
	/* Not built: say whether it could be. */
	if (image_recipe_dir(recipes, msg, sizeof(msg)) < 0) {
		snprintf(err, cap, "image `%s` is not built (no %s), and this clawvm has %s", name,
			 current, msg);
		return -1;
	}
	snprintf(recipe, sizeof(recipe), "%s/%s" RECIPE_SUFFIX, recipes, name);
	if (access(recipe, R_OK) < 0) {
		image_names(recipes, known, sizeof(known));
		snprintf(err, cap, "no image `%s`: the images are %s (recipes in %s)", name,
			 known[0] ? known : "none", recipes);
		return -1;
	}
	snprintf(err, cap, "image `%s` is not built: run clawvm image build %s (as root)", name,
		 name);
	return -1;
}

/* `clawvm image build NAME [--force]` and `clawvm image ls [--json]`: agent images
 * (image.h). build runs the image's builder, which does the work and says what it does;
 * ls reads each build's SBOM (api/image_sbom.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api/image_sbom.h"
#include "base/log.h"
#include "vmm/image.h"
#include "vmm/verbs.h"
#include "vmm/vm_config.h"

static const char usage_image[] =
    "Usage: clawvm image build [--force] NAME\n"
    "       clawvm image ls [--json]\n"
    "\n"
    "Agent images: root directories for clawvm run --rootfs, each built from its recipe\n"
    "(NAME.recipe: Debian packages, by mmdebstrap from this machine's apt sources, and npm\n"
    "packages at pinned versions) and cached in\n"
    "${XDG_CACHE_HOME:-$HOME/.cache}/clawvm/images/NAME/KEY/ (root/ and sbom.json, the\n"
    "versions of every Debian and npm package in it), KEY being the hash of the recipe\n"
    "and of its builder; NAME/current links the newest build.\n"
    "\n"
    "  build NAME  build image NAME, as root, unless the build of its recipe's KEY is\n"
    "              there already (then it says so at once); the builder's output is\n"
    "              shown; a failed build leaves nothing behind. Exit status 0 once the\n"
    "              image is there, 125 if not\n"
    "  ls          list the built images: name, key, when built, size, Claude Code's and\n"
    "              Node.js's versions, and whether it is its image's current build\n"
    "\n"
    "Options:\n"
    "  --force     build even if the image is up to date\n"
    "  --json      print a JSON array of the builds' summaries instead (with their\n"
    "              root directories and SBOMs' paths)\n"
    "  -h, --help  show this help\n";

static int image_usage(bool ok)
{
	fputs(usage_image, ok ? stdout : stderr);
	if (ok) {
		char dir[PATH_MAX], names[512], err[512];

		/* One line that says which images can be built (bash completion reads it). */
		if (image_recipe_dir(dir, err, sizeof(err)) < 0) {
			printf("\nNo images: %s\n", err);
		} else {
			image_names(dir, names, sizeof(names));
			if (names[0])
				printf("\nImages: %s (recipes in %s)\n", names, dir);
			else
				printf("\nNo images: no recipes in %s\n", dir);
		}
	}
	return ok ? 0 : VM_EXIT_FAILURE;
}

/* Runs the builder, whose output goes straight to ours; clawvm waits for it even when a
 * Ctrl-C stops it, so that the prompt comes back after its clean-up. */
static int image_build(const char *name, bool force)
{
	char dir[PATH_MAX], cache[PATH_MAX], names[512], err[768];
	char builder[PATH_MAX + 16], recipe[PATH_MAX + 80];
	struct sigaction ignore = {.sa_handler = SIG_IGN}, old_int, old_quit;
	int status;
	pid_t pid;

	if (image_check_name(name, err, sizeof(err)) < 0 ||
	    image_recipe_dir(dir, err, sizeof(err)) < 0 ||
	    image_cache_dir(cache, err, sizeof(err)) < 0) {
		log_err("%s", err);
		return VM_EXIT_FAILURE;
	}
	snprintf(builder, sizeof(builder), "%s/build-image", dir);
	snprintf(recipe, sizeof(recipe), "%s/%s.recipe", dir, name);
	if (access(recipe, R_OK) < 0) {
		image_names(dir, names, sizeof(names));
		log_err("no image `%s`: the images are %s (recipes in %s)", name,
			names[0] ? names : "none", dir);
		return VM_EXIT_FAILURE;
	}
	char *argv[] = {builder, (char *)"--cache", cache, recipe, NULL, NULL};
	if (force) {
		argv[4] = argv[3];
		argv[3] = argv[2];
		argv[2] = argv[1];
		argv[1] = (char *)"--force";
	}
	fflush(stdout);
	sigaction(SIGINT, &ignore, &old_int);
	sigaction(SIGQUIT, &ignore, &old_quit);
	pid = fork();
	if (pid == 0) {
		sigaction(SIGINT, &old_int, NULL);
		sigaction(SIGQUIT, &old_quit, NULL);
		execv(builder, argv);
		log_err("cannot run %s: %m", builder);
		_exit(127);
	}
	if (pid < 0)
		log_err("fork: %m");
	while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGQUIT, &old_quit, NULL);
	if (pid < 0)
		return VM_EXIT_FAILURE;
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	if (WEXITSTATUS(status) != 0) {
		log_err("image `%s` was not built", name);
		return VM_EXIT_FAILURE;
	}
	return 0;
}

/* What ls gathered of one build. */
struct image_entry {
	struct sbom_summary s;
	bool current;
	char root[PATH_MAX];
	char sbom[PATH_MAX];
};

struct image_list {
	struct image_entry *v;
	size_t n, cap;
};

/* Reads CACHE/NAME/KEY/sbom.json into a new entry; a build without a readable SBOM is said
 * and skipped. */
static void image_add(struct image_list *list, const char *image_dir, const char *key,
		      const char *current)
{
	struct image_entry *e;
	char *text = NULL, err[512];
	size_t len = 0;
	FILE *f;
	int n;

	if (list->n == list->cap) {
		size_t cap = list->cap ? 2 * list->cap : 8;
		struct image_entry *v = realloc(list->v, cap * sizeof(*v));

		if (!v)
			return;
		list->v = v;
		list->cap = cap;
	}
	e = &list->v[list->n];
	n = snprintf(e->root, sizeof(e->root), "%s/%s/root", image_dir, key);
	if (n < 0 || n >= (int)sizeof(e->root) ||
	    snprintf(e->sbom, sizeof(e->sbom), "%s/%s/sbom.json", image_dir, key) >=
		(int)sizeof(e->sbom))
		return;
	f = fopen(e->sbom, "re");
	if (!f)
		return; /* not a build: the builder writes sbom.json before it renames */
	text = malloc(SBOM_TEXT_MAX + 1);
	if (text)
		len = fread(text, 1, SBOM_TEXT_MAX + 1, f);
	fclose(f);
	if (!text || sbom_parse(text, len, &e->s, err, sizeof(err)) < 0) {
		log_warn("%s: %s", e->sbom, text ? err : "out of memory");
		free(text);
		return;
	}
	free(text);
	e->current = !strcmp(key, current);
	list->n++;
}

/* Each build CACHE/NAME/KEY of each image NAME. */
static int image_scan(const char *cache, struct image_list *list)
{
	struct dirent *img, *build;
	DIR *top = opendir(cache), *d;

	if (!top)
		return errno == ENOENT ? 0 : -errno;
	while ((img = readdir(top))) {
		char image_dir[PATH_MAX], link[PATH_MAX + 16], current[128] = "";
		ssize_t len;

		if (img->d_name[0] == '.' || snprintf(image_dir, sizeof(image_dir), "%s/%s", cache,
						      img->d_name) >= (int)sizeof(image_dir))
			continue;
		snprintf(link, sizeof(link), "%s/current", image_dir);
		len = readlink(link, current, sizeof(current) - 1);
		current[len > 0 ? len : 0] = '\0';
		d = opendir(image_dir);
		if (!d)
			continue;
		while ((build = readdir(d))) {
			if (build->d_name[0] != '.' && strcmp(build->d_name, "current"))
				image_add(list, image_dir, build->d_name, current);
		}
		closedir(d);
	}
	closedir(top);
	return 0;
}

/* By image, its current build first, then the newest. */
static int image_entry_cmp(const void *pa, const void *pb)
{
	const struct image_entry *a = pa, *b = pb;
	int c = strcmp(a->s.image, b->s.image);

	if (c)
		return c;
	if (a->current != b->current)
		return a->current ? -1 : 1;
	return strcmp(b->s.built, a->s.built);
}

static int image_ls(bool json)
{
	struct image_list list = {0};
	char cache[PATH_MAX], err[512];
	int ret;

	if (image_cache_dir(cache, err, sizeof(err)) < 0) {
		log_err("%s", err);
		return VM_EXIT_FAILURE;
	}
	ret = image_scan(cache, &list);
	if (ret < 0) {
		log_err("cannot read %s: %s", cache, strerror(-ret));
		return VM_EXIT_FAILURE;
	}
	if (list.n)
		qsort(list.v, list.n, sizeof(list.v[0]), image_entry_cmp);
	if (!json)
		printf("%-16s %-12s %-20s %8s %-12s %-24s %s\n", "NAME", "KEY", "BUILT", "SIZE_MIB",
		       "CLAUDE_CODE", "NODEJS", "CURRENT");
	else
		printf("[");
	for (size_t i = 0; i < list.n; i++) {
		const struct image_entry *e = &list.v[i];

		if (json) {
			char *obj = sbom_summary_json(&e->s, e->current, e->root, e->sbom);

			if (!obj) {
				log_err("out of memory");
				free(list.v);
				return VM_EXIT_FAILURE;
			}
			printf("%s\n%s", i ? "," : "", obj);
			free(obj);
			continue;
		}
		printf("%-16s %-12.12s %-20s %8llu %-12s %-24s %s\n", e->s.image, e->s.key,
		       e->s.built, (unsigned long long)(e->s.size / (1024 * 1024)),
		       e->s.claude_code[0] ? e->s.claude_code : "-",
		       e->s.nodejs[0] ? e->s.nodejs : "-", e->current ? "yes" : "no");
	}
	if (json)
		printf("%s]\n", list.n ? "\n" : "");
	free(list.v);
	return 0;
}

int verb_image(int argc, char **argv)
{
	static const struct option options[] = {
	    {"force", no_argument, NULL, 'f'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	bool force = false, json = false;
	const char *sub;
	int opt;

	optind = 0;
	opterr = 0;
	/* Options may come anywhere: `clawvm image build claude --force` too. */
	while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (opt) {
		case 'f':
			force = true;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			return image_usage(true);
		default:
			log_err("unknown option `%s` (see clawvm image --help)", argv[optind - 1]);
			return VM_EXIT_FAILURE;
		}
	}
	sub = optind < argc ? argv[optind] : "";
	if (!strcmp(sub, "build") && optind + 2 == argc && !json)
		return image_build(argv[optind + 1], force);
	if (!strcmp(sub, "ls") && optind + 1 == argc && !force)
		return image_ls(json);
	if (!strcmp(sub, "build") || !strcmp(sub, "ls"))
		log_err("usage: clawvm image build [--force] NAME, or clawvm image ls [--json]");
	else if (sub[0])
		log_err("unknown image command `%s`: build or ls (see clawvm image --help)", sub);
	else
		log_err("no image command: build or ls (see clawvm image --help)");
	return VM_EXIT_FAILURE;
}

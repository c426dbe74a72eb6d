/* Agent images (`clawvm image`): root directories for `clawvm run --rootfs`, each built
 * from a recipe, NAME.recipe, by dist/images/build-image, and cached by the hash of both:
 *   recipes and builder  BIN/../dist/images/ (the source tree beside a build directory
 *                        BIN, as build/ and build-asan/ are), else DATADIR/images/
 *   builds               CACHE/NAME/KEY/root/ and CACHE/NAME/KEY/sbom.json, with
 *                        CACHE/NAME/current -> KEY the newest, where CACHE is
 *                        ${XDG_CACHE_HOME:-$HOME/.cache}/clawvm/images
 * Every function that fails writes one line for people into err[cap]. */
#ifndef CLAWVM_IMAGE_H
#define CLAWVM_IMAGE_H

#include <stddef.h>

/* The root directory of image `name`'s current build, resolved (a later build of the image
 * does not change what it names) into out[PATH_MAX]. -1 if `name` is not an image
 * (the message lists those there are) or has not been built (the message says to run
 * `clawvm image build NAME`). */
__attribute__((warn_unused_result)) int image_root(const char *name, char *out, char *err,
						   size_t cap);

/* CACHE above, into out[PATH_MAX]; -1 when neither XDG_CACHE_HOME nor HOME says where. */
__attribute__((warn_unused_result)) int image_cache_dir(char *out, char *err, size_t cap);

/* The directory holding the recipes and build-image, into out[PATH_MAX]; -1 (saying where
 * it looked) when neither place has build-image. */
__attribute__((warn_unused_result)) int image_recipe_dir(char *out, char *err, size_t cap);

/* The names of the recipes in `dir`, sorted, separated by ", ", into out[cap] ("" when it
 * has none). */
void image_names(const char *dir, char *out, size_t cap);

/* 0 if `name` may name an image (1 to 63 of a-z 0-9 . _ -, starting with a letter or a
 * digit: build-image's rule); -1 with why. */
__attribute__((warn_unused_result)) int image_check_name(const char *name, char *err, size_t cap);

#endif

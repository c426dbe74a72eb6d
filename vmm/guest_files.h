/* Where `clawvm run` finds the guest kernel, initramfs and root that it was not given:
 * each one's CLAWVM_* variable counts as its option; failing that, it is looked for below
 * a list of directories (the binary's own, for a build tree, then the install's data
 * directory). */
#ifndef CLAWVM_GUEST_FILES_H
#define CLAWVM_GUEST_FILES_H

#include <stddef.h>

struct guest_file {
	const char *what;   /* "guest kernel", for messages */
	const char *option; /* "--kernel", which gives it */
	const char *env;    /* "CLAWVM_KERNEL", which stands for the option */
	const char *name;   /* "kernel/vmlinux", its place below each directory searched */
};

extern const struct guest_file guest_kernel, guest_initrd, guest_rootfs;

/* `*path` as given: the option's value if not NULL, else $env if set and not empty, else
 * NULL. A path given must exist: -1 with a line in err[cap] that names it and where it
 * came from. */
__attribute__((warn_unused_result)) int guest_file_given(const struct guest_file *file,
							 const char **path, char *err, size_t cap);

/* If `*path` is NULL, sets it to `out`, filled with the first DIR/name that exists for DIR
 * in `dirs` (NULL-terminated): out holds PATH_MAX bytes. -1 with a line in err[cap] that
 * names every place looked and how else to give the file. */
__attribute__((warn_unused_result)) int guest_file_find(const struct guest_file *file,
							const char *const *dirs, char *out,
							const char **path, char *err, size_t cap);

#endif

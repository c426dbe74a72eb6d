/* Finding the guest kernel, initramfs and root (guest_files.h). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "vmm/guest_files.h"

const struct guest_file guest_kernel = {"guest kernel", "--kernel", "CLAWVM_KERNEL",
					"kernel/vmlinux"};
const struct guest_file guest_initrd = {"guest image", "--initrd", "CLAWVM_INITRD",
					"guest/init.cpio"};
const struct guest_file guest_rootfs = {"guest root", "--rootfs", "CLAWVM_ROOTFS", "guest/rootfs"};

int guest_file_given(const struct guest_file *file, const char **path, char *err, size_t cap)
{
	const char *from = file->option, *env = getenv(file->env);

	if (!*path && env && *env) {
		*path = env;
		from = file->env;
	}
	if (*path && access(*path, F_OK) < 0) {
		snprintf(err, cap, "no %s at %s (from %s): %m", file->what, *path, from);
		return -1;
	}
	return 0;
}

int guest_file_find(const struct guest_file *file, const char *const *dirs, char *out,
		    const char **path, char *err, size_t cap)
{
	char looked[2 * PATH_MAX] = "";
	size_t len = 0;

	if (*path)
		return 0;
	for (unsigned i = 0; dirs[i]; i++) {
		int n = snprintf(out, PATH_MAX, "%s/%s", dirs[i], file->name);

		if (n > 0 && n < PATH_MAX && access(out, F_OK) == 0) {
			*path = out;
			return 0;
		}
		/* "A", "A and B", "A, B and C" */
		n = snprintf(looked + len, sizeof(looked) - len, "%s%s",
			     i == 0 ? "" : (dirs[i + 1] ? ", " : " and "), out);
		if (n > 0)
			len +=
			    (size_t)n < sizeof(looked) - len ? (size_t)n : sizeof(looked) - len - 1;
	}
	snprintf(err, cap, "no %s: looked in %s; run ./setup or set %s or pass %s", file->what,
		 looked[0] ? looked : "no directory", file->env, file->option);
	return -1;
}

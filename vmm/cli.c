/* `clawvm` and `clawvm run`. Every bad input ends in one line on stderr that says what was
 * wrong and exit status 125, never a crash. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/signalfd.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/guest_abi.h"
#include "vmm/cli.h"
#include "vmm/exec_client.h"
#include "vmm/guest_files.h"
#include "vmm/session.h"
#include "vmm/layout.h"
#include "base/log.h"

#define DEFAULT_CPUS	1
#define DEFAULT_MEM_MIB 512

static const char usage_main[] =
    "Usage: clawvm COMMAND [OPTIONS]\n"
    "\n"
    "Runs commands in disposable, hardware-isolated microVMs (Linux KVM).\n"
    "\n"
    "Commands:\n"
    "  run       Boot a sandbox, run one command in it, exit with its status\n"
    "  exec      Run a command in a running sandbox through its vsock socket\n"
    "\n"
    "Options:\n"
    "  -h, --help     Show this help (clawvm run --help shows run's options)\n"
    "  --version      Show the version\n";

static const char usage_run[] =
    "Usage: clawvm run [OPTIONS] [--] COMMAND [ARG...]\n"
    "\n"
    "Boots a microVM, runs COMMAND in it as root over guest-init's exec channel (vsock),\n"
    "passes clawvm's stdin to it, its stdout and stderr to clawvm's, signals to clawvm on\n"
    "to it, and exits with its exit status. Nothing the command does survives it, but\n"
    "what it writes in a shared folder (-v). A SIGTERM or SIGHUP goes to the command too;\n"
    "if the sandbox has not ended 10 s later, clawvm stops it (exit 143 or 129).\n"
    "\n"
    "Options:\n"
    "  -v, --volume HOST:GUEST[:ro]\n"
    "                      share the host directory HOST at GUEST in the guest (virtio-fs;\n"
    "                      :ro refuses every write on the host side); repeatable, up to 8.\n"
    "                      Mounts below HOST are not crossed\n"
    "  --rootfs DIR        the guest's root: DIR shared read-only under an overlay whose\n"
    "                      upper layer is guest memory, so every run starts clean\n"
    "                      (default: guest/rootfs, unless --initrd is given)\n"
    "  --cpus N            vCPUs, 1 to 32 (default 1)\n"
    "  --memory MiB        guest memory in MiB, 64 up to the host's RAM (default 512)\n"
    "  --kernel PATH       guest kernel: ELF vmlinux (PVH or 64-bit entry) or bzImage\n"
    "                      (default: kernel/vmlinux)\n"
    "  --initrd PATH       cpio initramfs whose /init is guest-init; without --rootfs it\n"
    "                      is the guest's root (default: guest/init.cpio, which holds\n"
    "                      guest-init alone)\n"
    "  --console-log FILE  write the guest kernel's console to FILE; at 16 MiB it moves\n"
    "                      to FILE.1 and FILE starts over (at most 32 MiB are kept)\n"
    "  --vsock-uds PATH    host side of the guest's vsock: clients of the Unix socket\n"
    "                      PATH write `CONNECT <port>\\n` to reach a guest port; guest\n"
    "                      connections to host port P go to the socket PATH_P\n"
    "  --vsock-cid N       the guest's vsock CID, 3 to 4294967294 (default 3)\n"
    "  -t, --tty           run COMMAND on a pseudo-terminal (clawvm's terminal goes raw;\n"
    "                      window-size changes are passed on)\n"
    "  -i, --interactive   accepted for docker's sake: stdin is always passed on\n"
    "  --verbose           log what clawvm does, and boot the kernel with loglevel=7\n"
    "  -h, --help          show this help\n"
    "\n"
    "Guest files (--kernel, --initrd, --rootfs): the option wins; else CLAWVM_KERNEL,\n"
    "CLAWVM_INITRD or CLAWVM_ROOTFS, if set and not empty, counts as that option; else\n"
    "the default is looked for beside the clawvm binary (a build tree), then below\n"
    "  " CLAWVM_DATADIR "\n"
    "\n"
    "Exit status: the command's (128+N if signal N killed it; 126 if it could not be\n"
    "run, 127 if it was not found); 125 if clawvm itself failed; 128+N if clawvm was\n"
    "stopped by signal N.\n";

static const char usage_exec[] =
    "Usage: clawvm exec --vsock-uds PATH [-t] [-e K=V]... [--cwd DIR] [--] COMMAND [ARG...]\n"
    "\n"
    "Runs COMMAND in the running sandbox whose vsock host socket is PATH (see clawvm run\n"
    "--vsock-uds), over guest-init's exec channel (api/exec.md). stdin, stdout and\n"
    "stderr are relayed separately; signals to clawvm go to the command; clawvm exits\n"
    "with the command's status (125 if the exec could not be started).\n"
    "\n"
    "Options:\n"
    "  --vsock-uds PATH   the sandbox's vsock host socket\n"
    "  -t, --tty          run the command on a pseudo-terminal of the current size\n"
    "  -e, --env K=V      set an environment variable (repeatable)\n"
    "  --cwd DIR          working directory in the guest (default /)\n"
    "  -h, --help         show this help\n";

int cli_parse_uint(const char *what, const char *text, unsigned long long min,
		   unsigned long long max, unsigned long long *out)
{
	unsigned long long value;
	char *end;

	if (!isdigit((unsigned char)text[0])) {
		log_err("%s: `%s` is not a whole number", what, text);
		return -1;
	}
	errno = 0;
	value = strtoull(text, &end, 10);
	if (*end != '\0') {
		log_err("%s: `%s` is not a whole number", what, text);
		return -1;
	}
	if (errno == ERANGE || value < min || value > max) {
		log_err("%s: %s is out of range (%llu to %llu)", what, text, min, max);
		return -1;
	}
	*out = value;
	return 0;
}

static unsigned long long host_mem_mib(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGESIZE);

	if (pages <= 0 || page_size <= 0)
		return LAYOUT_MAX_MEM_MIB;
	return (unsigned long long)pages * (unsigned long long)page_size / MiB;
}

/* `path` as an absolute path to an existing directory, into out[PATH_MAX]. */
static int cli_host_dir(const char *what, const char *path, char *out)
{
	struct stat st;

	if (!realpath(path, out)) {
		log_err("%s `%s`: %m", what, path);
		return -1;
	}
	if (stat(out, &st) < 0 || !S_ISDIR(st.st_mode)) {
		log_err("%s `%s`: not a directory", what, path);
		return -1;
	}
	return 0;
}

/* Whether `path` is `dir` or lies below it. */
static bool path_under(const char *path, const char *dir)
{
	size_t len = strlen(dir);

	return !strncmp(path, dir, len) && (path[len] == '\0' || path[len] == '/');
}

/* An absolute guest path without empty, `.` or `..` components, trailing slashes dropped. */
static int cli_guest_path(const char *spec, const char *path, size_t len, char *out)
{
	static const char *const reserved[] = {"/proc", "/sys", "/dev"};
	size_t n = 0;

	if (len == 0 || path[0] != '/') {
		log_err("-v %s: the guest path must be absolute", spec);
		return -1;
	}
	if (len >= PATH_MAX) {
		log_err("-v %s: the guest path is too long", spec);
		return -1;
	}
	for (size_t i = 0; i < len;) {
		size_t start, comp;

		while (i < len && path[i] == '/')
			i++;
		start = i;
		while (i < len && path[i] != '/')
			i++;
		comp = i - start;
		if (comp == 0)
			break;
		if ((comp == 1 && path[start] == '.') ||
		    (comp == 2 && path[start] == '.' && path[start + 1] == '.')) {
			log_err("-v %s: the guest path may not contain `.` or `..`", spec);
			return -1;
		}
		out[n++] = '/';
		memcpy(out + n, path + start, comp);
		n += comp;
	}
	out[n] = '\0';
	if (n == 0) {
		log_err("-v %s: the guest root is --rootfs, not a volume", spec);
		return -1;
	}
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
		if (path_under(out, reserved[i])) {
			log_err("-v %s: %s belongs to the guest kernel", spec, reserved[i]);
			return -1;
		}
	}
	return 0;
}

int cli_parse_volume(const char *spec, struct run_args *args, unsigned index)
{
	struct vm_share *share = &args->vm.shares[index];
	const char *end = spec + strlen(spec), *colon;
	char host[PATH_MAX];
	bool read_only = false;

	if (end - spec > 3 && (!strcmp(end - 3, ":ro") || !strcmp(end - 3, ":rw"))) {
		read_only = end[-1] == 'o';
		end -= 3;
	}
	/* The guest path holds no colon of its own; the host path may. */
	for (colon = end; colon > spec && colon[-1] != ':'; colon--)
		;
	if (colon == spec || colon - 1 == spec) {
		log_err("-v %s: want HOST:GUEST[:ro] (see clawvm run --help)", spec);
		return -1;
	}
	if ((size_t)(colon - 1 - spec) >= sizeof(host)) {
		log_err("-v %s: the host path is too long", spec);
		return -1;
	}
	memcpy(host, spec, (size_t)(colon - 1 - spec));
	host[colon - 1 - spec] = '\0';
	if (cli_host_dir("-v", host, args->share_host[index]) < 0)
		return -1;
	if (cli_guest_path(spec, colon, (size_t)(end - colon), args->share_guest[index]) < 0)
		return -1;
	for (unsigned i = 0; i < index; i++) {
		if (!strcmp(args->share_guest[i], args->share_guest[index])) {
			log_err("-v %s: %s is shared twice", spec, args->share_guest[index]);
			return -1;
		}
	}
	*share = (struct vm_share){args->share_host[index], args->share_guest[index], read_only};
	return 0;
}

enum {
	OPT_CPUS = 256,
	OPT_MEMORY,
	OPT_KERNEL,
	OPT_INITRD,
	OPT_CONSOLE_LOG,
	OPT_VERBOSE,
	OPT_VSOCK_UDS,
	OPT_VSOCK_CID,
	OPT_ROOTFS,
};

static const struct option run_options[] = {
    {"cpus", required_argument, NULL, OPT_CPUS},
    {"memory", required_argument, NULL, OPT_MEMORY},
    {"kernel", required_argument, NULL, OPT_KERNEL},
    {"initrd", required_argument, NULL, OPT_INITRD},
    {"console-log", required_argument, NULL, OPT_CONSOLE_LOG},
    {"verbose", no_argument, NULL, OPT_VERBOSE},
    {"vsock-uds", required_argument, NULL, OPT_VSOCK_UDS},
    {"vsock-cid", required_argument, NULL, OPT_VSOCK_CID},
    {"rootfs", required_argument, NULL, OPT_ROOTFS},
    {"volume", required_argument, NULL, 'v'},
    {"tty", no_argument, NULL, 't'},
    {"interactive", no_argument, NULL, 'i'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* The guest kernel, initramfs and root: from the options, else from the CLAWVM_* variables
 * that stand for them, else found below `dirs` (guest_files.h). */
static int cli_guest_files(struct run_args *args, const char *const *dirs)
{
	struct vm_config *cfg = &args->vm;
	const char *rootfs = cfg->rootfs;

	if (guest_file_given(&guest_kernel, &cfg->kernel_path) < 0 ||
	    guest_file_given(&guest_initrd, &cfg->initrd_path) < 0 ||
	    guest_file_given(&guest_rootfs, &rootfs) < 0)
		return -1;
	/* CLAWVM_ROOTFS, resolved as --rootfs is. */
	if (rootfs != cfg->rootfs) {
		if (cli_host_dir(guest_rootfs.env, rootfs, args->rootfs) < 0)
			return -1;
		cfg->rootfs = args->rootfs;
	}
	if (guest_file_find(&guest_kernel, dirs, args->default_kernel, &cfg->kernel_path) < 0)
		return -1;
	/* Without an initramfs the root is a share, and the initramfs holds guest-init alone. */
	if (!cfg->initrd_path &&
	    guest_file_find(&guest_rootfs, dirs, args->rootfs, &cfg->rootfs) < 0)
		return -1;
	if (guest_file_find(&guest_initrd, dirs, args->default_initrd, &cfg->initrd_path) < 0)
		return -1;
	return 0;
}

int cli_parse_run(int argc, char **argv, struct run_args *args, const char *const *dirs)
{
	unsigned long long value, mem_max = host_mem_mib();
	struct vm_config *cfg = &args->vm;
	int opt;

	if (mem_max > LAYOUT_MAX_MEM_MIB)
		mem_max = LAYOUT_MAX_MEM_MIB;
	*cfg = (struct vm_config){
	    .kvm_path = "/dev/kvm",
	    .cpus = DEFAULT_CPUS,
	    .mem_mib = DEFAULT_MEM_MIB,
	    .vsock_cid = VSOCK_DEFAULT_GUEST_CID,
	    .exec_fd = -1,
	    .ready_fd = -1,
	};
	if (mem_max < cfg->mem_mib)
		cfg->mem_mib = mem_max;
	optind = 0; /* 0, not 1: makes glibc forget any earlier parse */
	opterr = 0;
	/* '+': stop at the command, so its own options are not taken for ours; ':': tell a
	 * missing value from an unknown option. */
	args->tty = false;
	while ((opt = getopt_long(argc, argv, "+:hitv:", run_options, NULL)) != -1) {
		switch (opt) {
		case OPT_CPUS:
			if (cli_parse_uint("--cpus", optarg, 1, VM_MAX_VCPUS, &value) < 0)
				return -1;
			cfg->cpus = (unsigned)value;
			break;
		case OPT_MEMORY:
			if (cli_parse_uint("--memory", optarg, LAYOUT_MIN_MEM_MIB, mem_max,
					   &value) < 0)
				return -1;
			cfg->mem_mib = value;
			break;
		case OPT_KERNEL:
			cfg->kernel_path = optarg;
			break;
		case OPT_INITRD:
			cfg->initrd_path = optarg;
			break;
		case OPT_CONSOLE_LOG:
			cfg->console_log = optarg;
			break;
		case OPT_VERBOSE:
			cfg->verbose = 1;
			break;
		case OPT_VSOCK_UDS:
			cfg->vsock_uds = optarg;
			break;
		case OPT_VSOCK_CID:
			/* 0-2 are the hypervisor, local and host; -1 is VMADDR_CID_ANY. */
			if (cli_parse_uint("--vsock-cid", optarg, 3, 0xfffffffe, &value) < 0)
				return -1;
			cfg->vsock_cid = value;
			break;
		case OPT_ROOTFS:
			if (cli_host_dir("--rootfs", optarg, args->rootfs) < 0)
				return -1;
			cfg->rootfs = args->rootfs;
			break;
		case 'v':
			if (cfg->nshares == VM_MAX_SHARES) {
				log_err("-v %s: at most %d shares", optarg, VM_MAX_SHARES);
				return -1;
			}
			if (cli_parse_volume(optarg, args, cfg->nshares) < 0)
				return -1;
			cfg->nshares++;
			break;
		case 't':
			args->tty = true;
			break;
		case 'i':
			break; /* stdin is always passed through; accepted as docker takes it */
		case 'h':
			fputs(usage_run, stdout);
			return 1;
		case ':':
			log_err("%s needs a value (see clawvm run --help)", argv[optind - 1]);
			return -1;
		default:
			log_err("unknown option `%s` (see clawvm run --help)", argv[optind - 1]);
			return -1;
		}
	}
	if (optind >= argc) {
		log_err("no command to run: clawvm run [OPTIONS] -- COMMAND [ARG...]");
		return -1;
	}
	for (int i = optind; i < argc; i++) {
		if (argv[i][0] == '\0' && i == optind) {
			log_err("the command name is empty");
			return -1;
		}
	}
	args->argv = argv + optind;
	return cli_guest_files(args, dirs);
}

/* The directory of the running binary: default guest files are found beside it. */
static void self_dir(char *dir, size_t cap)
{
	ssize_t len = readlink("/proc/self/exe", dir, cap - 1);
	char *slash;

	if (len <= 0) {
		snprintf(dir, cap, ".");
		return;
	}
	dir[len] = '\0';
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
}

static int cli_run(int argc, char **argv)
{
	char dir[PATH_MAX];
	/* A build tree's own guest files first, then the installed ones. */
	const char *const dirs[] = {dir, CLAWVM_DATADIR, NULL};
	struct run_args args;
	unsigned long long t0;
	int ret;

	self_dir(dir, sizeof(dir));
	ret = cli_parse_run(argc, argv, &args, dirs);
	if (ret != 0)
		return ret > 0 ? 0 : VM_EXIT_FAILURE;
	if (args.vm.verbose)
		log_max_level = LOG_DEBUG;
	t0 = log_clock_us();
	ret = session_run(&args.vm, args.argv, args.tty);
	log_debug("session %llu ms", (unsigned long long)(log_clock_us() - t0) / 1000);
	return ret;
}

#define EXEC_MAX_ENV 256

static int cli_exec(int argc, char **argv)
{
	static const struct option options[] = {
	    {"vsock-uds", required_argument, NULL, 'u'},
	    {"tty", no_argument, NULL, 't'},
	    {"env", required_argument, NULL, 'e'},
	    {"cwd", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *uds = NULL, *envp[EXEC_MAX_ENV];
	struct exec_request req = {0};
	struct winsize ws;
	sigset_t mask;
	int opt, fd, sfd, status, ret;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+:te:h", options, NULL)) != -1) {
		switch (opt) {
		case 'u':
			uds = optarg;
			break;
		case 't':
			req.flags |= EXEC_FLAG_PTY;
			break;
		case 'e':
			if (!strchr(optarg, '=') || req.envc == EXEC_MAX_ENV) {
				log_err("--env `%s`: want K=V (at most %d)", optarg, EXEC_MAX_ENV);
				return VM_EXIT_FAILURE;
			}
			envp[req.envc++] = optarg;
			break;
		case 'c':
			req.cwd = optarg;
			break;
		case 'h':
			fputs(usage_exec, stdout);
			return 0;
		case ':':
			log_err("%s needs a value (see clawvm exec --help)", argv[optind - 1]);
			return VM_EXIT_FAILURE;
		default:
			log_err("unknown option `%s` (see clawvm exec --help)", argv[optind - 1]);
			return VM_EXIT_FAILURE;
		}
	}
	if (!uds || optind >= argc) {
		log_err("usage: clawvm exec --vsock-uds PATH [--] COMMAND [ARG...]");
		return VM_EXIT_FAILURE;
	}
	req.argc = (uint32_t)(argc - optind);
	req.argv = (const char **)(argv + optind);
	req.envp = envp;
	if ((req.flags & EXEC_FLAG_PTY) && ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0) {
		req.rows = ws.ws_row;
		req.cols = ws.ws_col;
	}
	fd = exec_client_connect(uds, CLAWVM_EXEC_PORT);
	if (fd < 0) {
		log_err("cannot reach the sandbox's exec channel through `%s`: %s", uds,
			fd == -EPROTO ? "the guest refused the connection" : strerror(-fd));
		return VM_EXIT_FAILURE;
	}
	session_signal_set(&mask);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	signal(SIGPIPE, SIG_IGN);
	ret = exec_client_run_signals(fd, &req, STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO, sfd,
				      &status);
	close(fd);
	if (sfd >= 0)
		close(sfd);
	if (ret < 0) {
		log_err("the exec channel failed: %s", strerror(-ret));
		return VM_EXIT_FAILURE;
	}
	return status;
}

int cli_main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage_main, stderr);
		return VM_EXIT_FAILURE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		fputs(usage_main, stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("clawvm %s\n", CLAWVM_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "run"))
		return cli_run(argc - 1, argv + 1);
	if (!strcmp(argv[1], "exec"))
		return cli_exec(argc - 1, argv + 1);
	log_err("unknown command `%s` (see clawvm --help)", argv[1]);
	return VM_EXIT_FAILURE;
}

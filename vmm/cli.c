/* `clawvm` and `clawvm run`. Every bad input ends in one line on stderr that says what was
 * wrong and exit status 125, never a crash. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
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
#include "vmm/jail.h"
#include "vmm/rundir.h"
#include "vmm/server.h"
#include "vmm/session.h"
#include "vmm/verbs.h"
#include "vmm/vm.h"
#include "base/log.h"

static const char usage_main[] =
    "Usage: clawvm COMMAND [OPTIONS]\n"
    "\n"
    "Runs commands in disposable, hardware-isolated microVMs (Linux KVM).\n"
    "\n"
    "Commands:\n"
    "  run       Boot a sandbox, run one command in it, exit with its status\n"
    "  exec      Run a command in a running sandbox\n"
    "  ps        List the running sandboxes\n"
    "  inspect   Show a sandbox's state and configuration (JSON)\n"
    "  stop      Stop a sandbox: SIGTERM to its command, then the VM after a timeout\n"
    "  kill      Stop a sandbox's VM at once, or send its command a signal\n"
    "  vmm       Start a VMM that an orchestrator configures through its API socket\n"
    "  egress    Show a running sandbox's egress policy, or change it (--allow, --revoke)\n"
    "  audit     Verify a sandbox's audit log, or show it (clawvm audit verify|show FILE)\n"
    "  image     Build an agent image (clawvm image build claude), or list them\n"
    "\n"
    "Options:\n"
    "  -h, --help     Show this help (clawvm COMMAND --help shows a command's options)\n"
    "  --version      Show the version\n"
    "\n"
    "Each sandbox has a directory with its control API socket (api/control.md) below\n"
    "$CLAWVM_RUNTIME_DIR, else $XDG_RUNTIME_DIR/clawvm, else (as root) /run/clawvm,\n"
    "else /tmp/clawvm-UID.\n";

#define USAGE_SANDBOX_OPTIONS                                                                      \
	"  -v, --volume HOST:GUEST[:ro]\n"                                                         \
	"                      share the host directory HOST at GUEST in the guest (virtio-fs;\n"  \
	"                      :ro refuses every write on the host side); repeatable, up to 8.\n"  \
	"                      Mounts below HOST are not crossed\n"                                \
	"  --rootfs DIR        the guest's root: DIR shared read-only under an overlay whose\n"    \
	"                      upper layer is guest memory, so every run starts clean\n"           \
	"                      (default: guest/rootfs, unless --initrd is given)\n"                \
	"  --cpus N            vCPUs, 1 to 32 (default 1)\n"                                       \
	"  --memory MiB        guest memory in MiB, 64 up to the host's RAM (default 512)\n"       \
	"  --pids N            host tasks (threads) the VMM may have, its cgroup's pids.max,\n"    \
	"                      16 to 65536 (default 128); the guest's processes do not count\n"    \
	"  --kernel PATH       guest kernel: ELF vmlinux (PVH or 64-bit entry) or bzImage\n"       \
	"                      (default: kernel/vmlinux)\n"                                        \
	"  --initrd PATH       cpio initramfs whose /init is guest-init; without --rootfs it\n"    \
	"                      is the guest's root (default: guest/init.cpio, which holds\n"       \
	"                      guest-init alone)\n"                                                \
	"  --console-log FILE  write the guest kernel's console to FILE; at 16 MiB it moves\n"     \
	"                      to FILE.1 and FILE starts over (at most 32 MiB are kept)\n"         \
	"  --vsock-uds PATH    host side of the guest's vsock: clients of the Unix socket\n"       \
	"                      PATH write `CONNECT <port>\\n` to reach a guest port; guest\n"      \
	"                      connections to host port P go to the socket PATH_P\n"               \
	"  --vsock-cid N       the guest's vsock CID, 3 to 4294967294 (default 3)\n"               \
	"  -e, --env K=V       set K for the command (and every exec); repeatable\n"               \
	"  -u, --user UID[:GID]  run commands as UID (and GID, default UID) in the guest\n"        \
	"  -w, --workdir DIR   the commands' working directory in the guest (default /)\n"         \
	"  --name NAME         the sandbox's name (default: sb- and 6 hex digits), for the\n"      \
	"                      other commands: 1 to 63 of A-Z a-z 0-9 _ . -\n"                     \
	"  --jail-user UID[:GID]  as root, the user the jailed VMM becomes (default 65534,\n"      \
	"                      nobody): it must be able to read the guest files and the\n"         \
	"                      shares, and write the writable ones (0 keeps root's uid, still\n"   \
	"                      without any capability). CLAWVM_JAIL_USER, if set, counts as\n"     \
	"                      this option\n"                                                      \
	"  --no-jail           run the VMM unconfined (UNSAFE: for debugging clawvm only)\n"       \
	"  --allow HOST[:PORT] let the guest reach HOST through the egress proxy (repeatable):\n"  \
	"                      a name, *.domain (its subdomains), an IP address or CIDR;\n"        \
	"                      PORT a number or *, default 80 and 443. Nothing else is\n"          \
	"                      reachable; private, loopback, link-local and metadata\n"            \
	"                      addresses only when an address rule names them\n"                   \
	"  --secret NAME=env:VAR@HOST[:PORT][/HEADER]\n"                                           \
	"                      the host adds $VAR's value as HEADER (default x-api-key;\n"         \
	"                      authorization: Bearer) to requests the guest sends to\n"            \
	"                      $NAME_BASE_URL, and speaks TLS to HOST:PORT (default 443);\n"       \
	"                      the guest's $NAME_API_KEY is a placeholder (up to 4)\n"             \
	"  --audit-log FILE    append the sandbox's audit events to FILE (JSON lines, hash\n"      \
	"                      chained: clawvm audit verify FILE)\n"                               \
	"  --ca-file FILE      CA certificates (PEM) for the secrets' upstreams, instead of\n"     \
	"                      the system's\n"                                                     \
	"  --verbose           log what clawvm does, and boot the kernel with loglevel=7\n"        \
	"  -h, --help          show this help\n"                                                   \
	"\n"                                                                                       \
	"Guest files (--kernel, --initrd, --rootfs): the option wins; else CLAWVM_KERNEL,\n"       \
	"CLAWVM_INITRD or CLAWVM_ROOTFS, if set and not empty, counts as that option; else\n"      \
	"the default is looked for beside the clawvm binary (a build tree), then below\n"          \
	"  " CLAWVM_DATADIR "\n"

static const char usage_run[] =
    "Usage: clawvm run [OPTIONS] [--] COMMAND [ARG...]\n"
    "\n"
    "Boots a microVM, runs COMMAND in it as root over guest-init's exec channel (vsock),\n"
    "passes clawvm's stdin to it, its stdout and stderr to clawvm's, signals to clawvm on\n"
    "to it, and exits with its exit status. Nothing the command does survives it, but\n"
    "what it writes in a shared folder (-v). A SIGTERM or SIGHUP goes to the command too;\n"
    "if the sandbox has not ended 10 s later, clawvm stops it (exit 143 or 129). While it\n"
    "runs, the sandbox serves its control API, so that clawvm exec, ps, stop... reach it.\n"
    "\n"
    "The VMM is jailed (unless --no-jail): clawvm stays outside as its supervisor, and the\n"
    "VMM runs in new mount, pid, ipc, uts and net namespaces (and a user namespace when\n"
    "not root), its root a read-only tmpfs with only the files the sandbox names bound in,\n"
    "as the jail user (root) or the caller, with no capability, no_new_privs, and a\n"
    "seccomp allowlist per thread. A host path named by an option is visible to the VMM\n"
    "at its own path (--console-log and --vsock-uds: their directories); shares in /proc\n"
    "or /sys are refused. As root, its own cgroup limits CPU (--cpus), memory (guest RAM\n"
    "and an allowance for the VMM; files written into a share on tmpfs count too) and\n"
    "tasks (--pids).\n"
    "\n"
    "Options:\n"
    "  -d, --detach        run in the background: print the sandbox's name and return\n"
    "                      once COMMAND runs (its stdin is empty, its output discarded;\n"
    "                      the sandbox ends with it, or with clawvm stop NAME)\n"
    "  -t, --tty           run COMMAND on a pseudo-terminal (clawvm's terminal goes raw;\n"
    "                      window-size changes are passed on)\n"
    "  -i, --interactive   accepted for docker's sake: stdin is always passed "
    "on\n" USAGE_SANDBOX_OPTIONS "\n"
    "Exit status: the command's (128+N if signal N killed it; 126 if it could not be\n"
    "run, 127 if it was not found); 125 if clawvm itself failed; 128+N if clawvm was\n"
    "stopped by signal N (or by clawvm stop: 143, clawvm kill: 137). With -d: 0 once the\n"
    "command runs, 125 if the sandbox could not start.\n";

static const char usage_vmm[] =
    "Usage: clawvm vmm [--name NAME] [--api-sock PATH] [OPTIONS]\n"
    "\n"
    "Starts a VMM that waits, configured by OPTIONS (those of clawvm run) and then by\n"
    "requests on its control API socket (JSON-RPC 2.0, one object per line; see\n"
    "api/control.md), for `start`; commands run through the API's `exec`. It exits\n"
    "when the sandbox has stopped and its clients have closed (at most 10 s later),\n"
    "with the main command's status (or 128+N after a stop by signal N). SIGTERM,\n"
    "SIGINT and SIGHUP stop the sandbox as the API's `stop` does.\n"
    "\n"
    "Options:\n"
    "  --api-sock PATH     the API socket (made mode 0600; PATH's directory must be this\n"
    "                      user's and closed to others); default: api.sock in the\n"
    "                      sandbox's directory\n" USAGE_SANDBOX_OPTIONS;

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
	OPT_NAME,
	OPT_API_SOCK,
	OPT_NO_JAIL,
	OPT_JAIL_USER,
	OPT_PIDS,
	OPT_ALLOW,
	OPT_SECRET,
	OPT_AUDIT_LOG,
	OPT_CA_FILE,
	OPT_AGENT,
};

static const struct option run_options[] = {
    {"cpus", required_argument, NULL, OPT_CPUS},
    {"memory", required_argument, NULL, OPT_MEMORY},
    {"pids", required_argument, NULL, OPT_PIDS},
    {"kernel", required_argument, NULL, OPT_KERNEL},
    {"initrd", required_argument, NULL, OPT_INITRD},
    {"console-log", required_argument, NULL, OPT_CONSOLE_LOG},
    {"verbose", no_argument, NULL, OPT_VERBOSE},
    {"vsock-uds", required_argument, NULL, OPT_VSOCK_UDS},
    {"vsock-cid", required_argument, NULL, OPT_VSOCK_CID},
    {"rootfs", required_argument, NULL, OPT_ROOTFS},
    {"name", required_argument, NULL, OPT_NAME},
    {"api-sock", required_argument, NULL, OPT_API_SOCK},
    {"no-jail", no_argument, NULL, OPT_NO_JAIL},
    {"jail-user", required_argument, NULL, OPT_JAIL_USER},
    {"allow", required_argument, NULL, OPT_ALLOW},
    {"secret", required_argument, NULL, OPT_SECRET},
    {"audit-log", required_argument, NULL, OPT_AUDIT_LOG},
    {"ca-file", required_argument, NULL, OPT_CA_FILE},
    {"agent", required_argument, NULL, OPT_AGENT},
    {"volume", required_argument, NULL, 'v'},
    {"env", required_argument, NULL, 'e'},
    {"user", required_argument, NULL, 'u'},
    {"workdir", required_argument, NULL, 'w'},
    {"tty", no_argument, NULL, 't'},
    {"interactive", no_argument, NULL, 'i'},
    {"detach", no_argument, NULL, 'd'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* A number for `what`, then the setter: the CLI's half of a setting. */
static int cli_number(const char *what, const char *text, uint64_t *out)
{
	unsigned long long value;

	if (cli_parse_uint(what, text, 0, ULLONG_MAX, &value) < 0)
		return -1;
	*out = value;
	return 0;
}

/* Applies one of run's options to the config; -1 after printing why not. */
static int cli_run_option(struct run_args *args, int opt, const char *arg)
{
	struct sandbox_config *cfg = &args->cfg;
	struct config_err err;
	uint64_t value = 0;
	int ret = 0;

	if ((opt == OPT_CPUS || opt == OPT_MEMORY || opt == OPT_PIDS || opt == OPT_VSOCK_CID) &&
	    cli_number(opt == OPT_CPUS	   ? "--cpus"
		       : opt == OPT_MEMORY ? "--memory"
		       : opt == OPT_PIDS   ? "--pids"
					   : "--vsock-cid",
		       arg, &value) < 0)
		return -1; /* said why */
	switch (opt) {
	case OPT_CPUS:
		ret = config_set_cpus(cfg, "--cpus", value, &err);
		break;
	case OPT_MEMORY:
		ret = config_set_memory(cfg, "--memory", value, &err);
		args->given.memory = true;
		break;
	case OPT_PIDS:
		ret = config_set_pids(cfg, "--pids", value, &err);
		break;
	case OPT_VSOCK_CID:
		ret = config_set_vsock_cid(cfg, "--vsock-cid", value, &err);
		break;
	case OPT_KERNEL:
		ret = config_set_kernel(cfg, "--kernel", arg, &err);
		break;
	case OPT_INITRD:
		ret = config_set_initrd(cfg, "--initrd", arg, &err);
		args->given.rootfs = true;
		break;
	case OPT_ROOTFS:
		ret = config_set_rootfs(cfg, "--rootfs", arg, &err);
		args->given.rootfs = true;
		break;
	case OPT_CONSOLE_LOG:
		ret = config_set_console_log(cfg, "--console-log", arg, &err);
		break;
	case OPT_VSOCK_UDS:
		ret = config_set_vsock_uds(cfg, "--vsock-uds", arg, &err);
		break;
	case 'v':
		ret = config_add_volume(cfg, arg, &err);
		break;
	case 'e':
		ret = config_add_env(cfg, "-e", arg, &err);
		break;
	case 'u':
		ret = config_parse_user(cfg, "-u", arg, &err);
		args->given.user = true;
		break;
	case 'w':
		ret = config_set_cwd(cfg, "--workdir", arg, &err);
		args->given.cwd = true;
		break;
	case OPT_AGENT:
		args->agent = arg;
		break;
	case OPT_NAME:
		ret = config_set_name(cfg, "--name", arg, &err);
		break;
	case OPT_API_SOCK:
		args->api_sock = arg;
		break;
	case OPT_NO_JAIL:
		cfg->no_jail = true;
		break;
	case OPT_JAIL_USER:
		ret = config_set_jail_user(cfg, "--jail-user", arg, &err);
		break;
	case OPT_ALLOW:
		ret = config_add_allow(cfg, "--allow", arg, &err);
		break;
	case OPT_SECRET:
		ret = config_add_secret(cfg, "--secret", arg, &err);
		break;
	case OPT_AUDIT_LOG:
		ret = config_set_audit_log(cfg, "--audit-log", arg, &err);
		break;
	case OPT_CA_FILE:
		ret = config_set_ca_file(cfg, "--ca-file", arg, &err);
		break;
	}
	if (ret < 0)
		log_err("%s", err.msg);
	return ret;
}

int cli_parse_run(int argc, char **argv, struct run_args *args, const char *const *dirs)
{
	struct config_err err;
	bool vmm = !strcmp(argv[0], "vmm");
	int opt;

	config_init(&args->cfg);
	args->tty = args->detach = false;
	args->api_sock = NULL;
	args->argv = NULL;
	args->agent = NULL;
	args->given = (struct agent_given){0};
	args->agent_argv = NULL;
	if (getenv("CLAWVM_JAIL_USER") && *getenv("CLAWVM_JAIL_USER") &&
	    config_set_jail_user(&args->cfg, "CLAWVM_JAIL_USER", getenv("CLAWVM_JAIL_USER"), &err) <
		0) {
		log_err("%s", err.msg);
		return -1;
	}
	optind = 0; /* 0, not 1: makes glibc forget any earlier parse */
	opterr = 0;
	/* '+': stop at the command, so its own options are not taken for ours; ':': tell a
	 * missing value from an unknown option. */
	while ((opt = getopt_long(argc, argv, "+:hitdv:e:u:w:", run_options, NULL)) != -1) {
		switch (opt) {
		case OPT_VERBOSE:
			args->cfg.vm.verbose = 1;
			break;
		case 't':
			args->tty = true;
			break;
		case 'i':
			break; /* stdin is always passed through; accepted as docker takes it */
		case 'd':
			args->detach = true;
			break;
		case 'h':
			fputs(vmm ? usage_vmm : usage_run, stdout);
			return 1;
		case ':':
			log_err("%s needs a value (see clawvm %s --help)", argv[optind - 1],
				argv[0]);
			return -1;
		case '?':
			log_err("unknown option `%s` (see clawvm %s --help)", argv[optind - 1],
				argv[0]);
			return -1;
		default:
			if (cli_run_option(args, opt, optarg) < 0)
				return -1;
		}
	}
	if (vmm) {
		if (optind < argc || args->tty || args->detach || args->agent) {
			log_err("clawvm vmm takes no command, -t, -d or --agent: its commands come "
				"through the API (see clawvm vmm --help)");
			return -1;
		}
		return 0;
	}
	if (args->api_sock) {
		log_err("--api-sock is clawvm vmm's; clawvm run's socket is in its sandbox "
			"directory (see clawvm run --help)");
		return -1;
	}
	if (args->agent) {
		/* The guest files named by variables count as given, as options would. */
		args->given.rootfs |= (getenv("CLAWVM_ROOTFS") && *getenv("CLAWVM_ROOTFS")) ||
				      (getenv("CLAWVM_INITRD") && *getenv("CLAWVM_INITRD"));
		if (agent_apply(&args->cfg, args->agent, &args->given, argv + optind,
				&args->agent_argv, &err) < 0) {
			log_err("%s", err.msg);
			return -1;
		}
		args->argv = args->agent_argv;
	} else if (optind >= argc) {
		log_err("no command to run: clawvm run [OPTIONS] -- COMMAND [ARG...]");
		return -1;
	} else if (argv[optind][0] == '\0') {
		log_err("the command name is empty");
		return -1;
	} else {
		args->argv = argv + optind;
	}
	if (config_find_guest_files(&args->cfg, dirs, &err) < 0) {
		log_err("%s", err.msg);
		return -1;
	}
	return 0;
}

/* The sandbox's directory and API socket, named by --name or newly. */
static struct server *cli_serve(struct run_args *args, struct rundir *rd, enum server_mode mode)
{
	struct config_err err;
	struct server *srv;

	if (rundir_create(rd, args->cfg.name, args->api_sock, &err) < 0) {
		log_err("%s", err.msg);
		return NULL;
	}
	srv = server_create(mode, &args->cfg, rd->sock, &err);
	if (!srv) {
		log_err("%s", err.msg);
		rundir_remove(rd);
		return NULL;
	}
	if (rundir_publish(rd, &err) < 0) {
		log_err("%s", err.msg);
		server_finish(srv, NULL, VM_EXIT_FAILURE, 0);
		rundir_remove(rd);
		return NULL;
	}
	return srv;
}

/* clawvm run -d: the parent returns once the command runs (printing the sandbox's name);
 * the child, in a session of its own, is the sandbox. Returns in the child (with its end of
 * the pipe in *notify_fd), exits in the parent. */
static void cli_detach(const char *name, int *notify_fd)
{
	int pipefd[2], status, null_fd;
	char buf[8];
	pid_t pid;
	ssize_t n;

	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		log_err("pipe: %m");
		exit(VM_EXIT_FAILURE);
	}
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		log_err("fork: %m");
		exit(VM_EXIT_FAILURE);
	}
	if (pid == 0) {
		close(pipefd[0]);
		setsid();
		/* The command's stdin is empty and its output goes nowhere (use clawvm exec);
		 * clawvm's own errors still reach the terminal until the command runs. */
		null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null_fd >= 0) {
			dup2(null_fd, STDIN_FILENO);
			dup2(null_fd, STDOUT_FILENO);
			close(null_fd);
		}
		*notify_fd = pipefd[1];
		return;
	}
	close(pipefd[1]);
	n = read(pipefd[0], buf, sizeof(buf));
	if (n > 0) {
		printf("%s\n", name);
		exit(0);
	}
	/* It ended before its command ran: its messages said why. */
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		exit(VM_EXIT_FAILURE);
	exit(WEXITSTATUS(status) ? WEXITSTATUS(status) : VM_EXIT_FAILURE);
}

static void run_args_release(struct run_args *args)
{
	config_release(&args->cfg);
	free(args->agent_argv);
	args->agent_argv = NULL;
}

static int cli_run(int argc, char **argv)
{
	struct guest_dirs dirs;
	struct run_args args;
	struct server *srv;
	struct rundir rd = {0};
	unsigned long long t0;
	int ret, notify_fd = -1;
	sigset_t signals;

	config_guest_dirs(&dirs);
	ret = cli_parse_run(argc, argv, &args, dirs.list);
	if (ret != 0) {
		run_args_release(&args);
		return ret > 0 ? 0 : VM_EXIT_FAILURE;
	}
	if (args.cfg.vm.verbose)
		log_max_level = LOG_DEBUG;
	if (!args.cfg.name[0])
		rundir_new_name(args.cfg.name);
	if (args.detach) {
		if (args.tty) {
			log_err("-d and -t do not go together: a detached command has no terminal");
			run_args_release(&args);
			return VM_EXIT_FAILURE;
		}
		cli_detach(args.cfg.name, &notify_fd);
	}
	/* From before the sandbox's directory is made: a SIGINT or SIGTERM that comes while it
	 * starts waits for the supervisor or the session (signalfd), which ends the sandbox
	 * and removes what it made, rather than killing clawvm on the spot. */
	session_signal_set(&signals);
	sigprocmask(SIG_BLOCK, &signals, NULL);
	srv = cli_serve(&args, &rd, SERVER_RUN);
	if (srv) {
		int keep[SERVER_FDS + 1];
		unsigned nkeep = server_fds(srv, keep);

		keep[nkeep++] = notify_fd;
		/* Returns in the jailed VMM; the supervisor exits from there. */
		if (jail_enter(&args.cfg, &rd, keep, nkeep, args.detach) != 0) {
			server_finish(srv, NULL, VM_EXIT_FAILURE, 0);
			srv = NULL;
		}
	}
	if (!srv || server_start(srv) < 0) {
		if (srv)
			server_finish(srv, NULL, VM_EXIT_FAILURE, 0);
		rundir_remove(&rd);
		run_args_release(&args);
		return VM_EXIT_FAILURE;
	}
	t0 = log_clock_us();
	ret = session_run(&args.cfg, args.argv, args.tty, srv, notify_fd);
	log_debug("session %llu ms", (unsigned long long)(log_clock_us() - t0) / 1000);
	rundir_remove(&rd);
	run_args_release(&args);
	return ret;
}

/* How long a stopped `clawvm vmm` waits for its clients to read `exit` and close. */
#define VMM_LINGER_MS 10000

static int cli_vmm(int argc, char **argv)
{
	struct guest_dirs dirs;
	struct run_args args;
	struct server *srv;
	struct rundir rd = {0};
	struct vm *vm;
	bool jailed = false;
	int ret, status;

	config_guest_dirs(&dirs);
	ret = cli_parse_run(argc, argv, &args, dirs.list);
	if (ret != 0) {
		config_release(&args.cfg);
		return ret > 0 ? 0 : VM_EXIT_FAILURE;
	}
	if (args.cfg.vm.verbose)
		log_max_level = LOG_DEBUG;
	signal(SIGPIPE, SIG_IGN);
	if (!args.cfg.name[0])
		rundir_new_name(args.cfg.name);
	srv = cli_serve(&args, &rd, SERVER_VMM);
	if (!srv || server_start(srv) < 0) {
		if (srv)
			server_finish(srv, NULL, VM_EXIT_FAILURE, 0);
		rundir_remove(&rd);
		config_release(&args.cfg);
		return VM_EXIT_FAILURE;
	}
	log_debug("sandbox %s: API at %s", args.cfg.name, rd.sock);
	/* `start`: the API's thread waits while this one, alone in the process, jails it (the
	 * first time: its paths are those of this start) and builds the VM. */
	vm = NULL;
	while (server_wait_start(srv, &status)) {
		if (!jailed) {
			int keep[SERVER_FDS];

			ret = jail_enter(&args.cfg, &rd, keep, server_fds(srv, keep), false);
			if (ret != 0) {
				/* Not begun: still configured. Failed in the VMM: it ends. */
				if (server_resume(srv, NULL) < 0 || ret > 0) {
					status = VM_EXIT_FAILURE;
					break;
				}
				continue;
			}
			jailed = true;
		}
		if (vm_create(&args.cfg.vm, &vm) < 0) {
			vm = NULL;
			args.cfg.vm.kvm_fd = -1; /* closed by vm_create */
		}
		if (server_resume(srv, vm) < 0) {
			log_err("the API cannot go on after start");
			status = VM_EXIT_FAILURE;
			break;
		}
		if (vm) {
			status = vm_run(vm);
			break;
		}
	}
	server_finish(srv, vm, status, VMM_LINGER_MS);
	vm_destroy(vm);
	rundir_remove(&rd);
	config_release(&args.cfg);
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
	if (!strcmp(argv[1], "vmm"))
		return cli_vmm(argc - 1, argv + 1);
	for (size_t i = 0; i < sizeof(cli_verbs) / sizeof(cli_verbs[0]); i++) {
		if (!strcmp(argv[1], cli_verbs[i].name))
			return cli_verbs[i].fn(argc - 1, argv + 1);
	}
	log_err("unknown command `%s` (see clawvm --help)", argv[1]);
	return VM_EXIT_FAILURE;
}

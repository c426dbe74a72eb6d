/* `clawvm exec`, `ps`, `inspect`, `stop`, `kill` and `egress` (verbs.h): each finds the sandbox's
 * API socket by name (rundir.h), sends requests and reads replies (api/control.h); exec then relays
 * the command's frames as `clawvm run` does. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "api/control.h"
#include "api/guest_abi.h"
#include "base/log.h"
#include "vmm/cli.h"
#include "vmm/exec_client.h"
#include "vmm/rundir.h"
#include "vmm/session.h"
#include "vmm/verbs.h"
#include "vmm/vm_config.h"

/* How long a client waits for a reply. */
#define VERB_REPLY_TIMEOUT_MS 30000

/* A connection to one sandbox's API, with what was read past the last line. */
struct api_conn {
	int fd;
	char buf[65536];
	size_t len, consumed; /* bytes in buf; of those, the line handed out last */
	uint64_t next_id;
};

static int api_open_path(struct api_conn *c, const char *sock)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};

	c->len = c->consumed = 0;
	c->next_id = 1;
	if (strlen(sock) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	strcpy(addr.sun_path, sock);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int ret = -errno;

		close(c->fd);
		c->fd = -1;
		return ret;
	}
	return 0;
}

/* Connects to sandbox `name`; -1 after saying why. */
static int api_open(struct api_conn *c, const char *name)
{
	char sock[PATH_MAX];
	struct config_err err;
	int ret;

	if (rundir_find(name, sock, &err) < 0) {
		log_err("%s", err.msg);
		return -1;
	}
	ret = api_open_path(c, sock);
	if (ret < 0) {
		log_err("cannot reach sandbox `%s` at %s: %s", name, sock, strerror(-ret));
		return -1;
	}
	return 0;
}

static void api_close(struct api_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* The next line into *line (NUL-terminated in c->buf, valid until the next call).
 * `bytewise`: read no byte past it (frames follow an exec's reply). 0; -1 at EOF or on an
 * error or time-out. */
static int api_line(struct api_conn *c, char **line, size_t *len, bool bytewise, int timeout_ms)
{
	/* Drop the line handed out last time. */
	memmove(c->buf, c->buf + c->consumed, c->len - c->consumed);
	c->len -= c->consumed;
	c->consumed = 0;
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		ssize_t n;

		if (nl) {
			*nl = '\0';
			*line = c->buf;
			*len = (size_t)(nl - c->buf);
			c->consumed = *len + 1;
			return 0;
		}
		if (c->len == sizeof(c->buf) - 1)
			return -1; /* no reply this client reads is that long */
		if (timeout_ms >= 0 && poll(&p, 1, timeout_ms) <= 0)
			return -1;
		n = read(c->fd, c->buf + c->len, bytewise ? 1 : sizeof(c->buf) - 1 - c->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		c->len += (size_t)n;
	}
}

/* Sends a request and waits for its reply (events before it are skipped): 0 with *r filled
 * (r->code 0: a result), -1 after saying why it could not. */
static int api_call(struct api_conn *c, const char *method, const char *params,
		    struct control_reply *r, bool bytewise)
{
	uint64_t id = c->next_id++;
	char *req = control_request_line(id, method, params), *line;
	size_t len, sent = 0;

	if (!req) {
		log_err("out of memory");
		return -1;
	}
	while (sent < strlen(req)) {
		ssize_t n = send(c->fd, req + sent, strlen(req) - sent, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			log_err("the sandbox's API: %m");
			free(req);
			return -1;
		}
		sent += (size_t)n;
	}
	free(req);
	for (;;) {
		if (api_line(c, &line, &len, bytewise, VERB_REPLY_TIMEOUT_MS) < 0) {
			log_err("the sandbox did not answer `%s`", method);
			return -1;
		}
		if (control_parse_reply(line, len, r) < 0) {
			log_err("the sandbox answered `%s` with something that is not JSON-RPC",
				method);
			return -1;
		}
		if (!r->is_event && r->id == (int64_t)id)
			return 0;
		control_reply_free(r);
	}
}

/* api_call, with an error reply said and turned into -1. */
static int api_call_ok(struct api_conn *c, const char *method, const char *params,
		       struct control_reply *r)
{
	if (api_call(c, method, params, r, false) < 0)
		return -1;
	if (r->code != 0) {
		log_err("%s: %s", method, r->message ? r->message : "failed");
		control_reply_free(r);
		return -1;
	}
	return 0;
}

/* Waits for the sandbox's `exit` event (or for its end of the connection). */
static void api_wait_exit(struct api_conn *c)
{
	struct control_reply r;
	char *line;
	size_t len;

	while (api_line(c, &line, &len, false, -1) == 0) {
		if (control_parse_reply(line, len, &r) < 0)
			continue;
		if (r.is_event && !strcmp(r.method, "exit")) {
			control_reply_free(&r);
			return;
		}
		control_reply_free(&r);
	}
}

/* Parses options with getopt_long; each verb's own. */
static int verb_usage(const char *usage, bool ok)
{
	fputs(usage, ok ? stdout : stderr);
	return ok ? 0 : VM_EXIT_FAILURE;
}

static const char usage_exec[] =
    "Usage: clawvm exec [-t] [-e K=V]... [--cwd DIR] NAME [--] COMMAND [ARG...]\n"
    "       clawvm exec --vsock-uds PATH [-t] [-e K=V]... [--cwd DIR] [--] COMMAND [ARG...]\n"
    "\n"
    "Runs COMMAND in the running sandbox NAME (through its control API), or in the\n"
    "sandbox whose vsock host socket is PATH (clawvm run --vsock-uds), over guest-init's\n"
    "exec channel (api/exec.md). By NAME, the command gets the sandbox's -e, -u and -w\n"
    "defaults; by --vsock-uds, none of them (root, in /). stdin, stdout and stderr are\n"
    "relayed separately; signals to clawvm go to the command; clawvm exits with the\n"
    "command's status (125 if the exec could not be started).\n"
    "\n"
    "Options:\n"
    "  --vsock-uds PATH   the sandbox's vsock host socket, instead of NAME\n"
    "  -t, --tty          run the command on a pseudo-terminal of the current size\n"
    "  -e, --env K=V      set an environment variable (repeatable)\n"
    "  --cwd DIR          working directory in the guest (default: the sandbox's, by NAME)\n"
    "  -h, --help         show this help\n";

#define EXEC_MAX_ENV 256

/* Relays the command whose channel is `fd`; `req` NULL: the REQUEST went already. */
static int verb_exec_relay(int fd, const struct exec_request *req)
{
	int sfd, status, ret;
	sigset_t mask;

	session_signal_set(&mask);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	signal(SIGPIPE, SIG_IGN);
	const struct exec_client_opts opts = {.sig_fd = sfd, .abort_fd = -1, .more_sig_fd = -1};
	ret = exec_client_run_opts(fd, req, STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO, &opts,
				   &status);
	if (sfd >= 0)
		close(sfd);
	if (ret < 0) {
		log_err("the exec channel failed: %s", ret == -ECONNRESET
							   ? "the sandbox ended before the command"
							   : strerror(-ret));
		return VM_EXIT_FAILURE;
	}
	return status;
}

static int verb_exec(int argc, char **argv)
{
	static const struct option options[] = {
	    {"vsock-uds", required_argument, NULL, 'U'},
	    {"tty", no_argument, NULL, 't'},
	    {"env", required_argument, NULL, 'e'},
	    {"cwd", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *uds = NULL, *envp[EXEC_MAX_ENV + 1], *name = NULL;
	struct exec_request req = {0};
	struct control_reply r;
	struct api_conn c;
	struct winsize ws;
	char *params;
	int opt, fd, ret;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+:te:h", options, NULL)) != -1) {
		switch (opt) {
		case 'U':
			uds = optarg;
			break;
		case 't':
			req.flags |= EXEC_FLAG_PTY;
			break;
		case 'e':
			if (!strchr(optarg, '=') || optarg[0] == '=' || req.envc == EXEC_MAX_ENV) {
				log_err("--env `%s`: want K=V (at most %d)", optarg, EXEC_MAX_ENV);
				return VM_EXIT_FAILURE;
			}
			envp[req.envc++] = optarg;
			break;
		case 'c':
			req.cwd = optarg;
			break;
		case 'h':
			return verb_usage(usage_exec, true);
		case ':':
			log_err("%s needs a value (see clawvm exec --help)", argv[optind - 1]);
			return VM_EXIT_FAILURE;
		default:
			log_err("unknown option `%s` (see clawvm exec --help)", argv[optind - 1]);
			return VM_EXIT_FAILURE;
		}
	}
	envp[req.envc] = NULL;
	if (!uds && optind < argc)
		name = argv[optind++];
	if (optind < argc && !strcmp(argv[optind], "--") && argv[optind - 1] != argv[0] &&
	    strcmp(argv[optind - 1], "--"))
		optind++;
	if ((!uds && !name) || optind >= argc) {
		log_err("usage: clawvm exec NAME [--] COMMAND [ARG...] (see clawvm exec --help)");
		return VM_EXIT_FAILURE;
	}
	req.argc = (uint32_t)(argc - optind);
	req.argv = (const char **)(argv + optind);
	req.envp = envp;
	if ((req.flags & EXEC_FLAG_PTY) && ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0) {
		req.rows = ws.ws_row;
		req.cols = ws.ws_col;
	}
	if (uds) {
		fd = exec_client_connect(uds, CLAWVM_EXEC_PORT);
		if (fd < 0) {
			log_err("cannot reach the sandbox's exec channel through `%s`: %s", uds,
				fd == -EPROTO ? "the guest refused the connection" : strerror(-fd));
			return VM_EXIT_FAILURE;
		}
		ret = verb_exec_relay(fd, &req);
		close(fd);
		return ret;
	}
	if (api_open(&c, name) < 0)
		return VM_EXIT_FAILURE;
	params = control_exec_params(req.argv, req.envc ? envp : NULL, req.cwd,
				     req.flags & EXEC_FLAG_PTY, req.rows, req.cols, true);
	/* Byte by byte: what follows the reply is the command's frames. */
	if (!params || api_call(&c, "exec", params, &r, true) < 0) {
		free(params);
		api_close(&c);
		return VM_EXIT_FAILURE;
	}
	free(params);
	if (r.code != 0) {
		log_err("exec: %s", r.message ? r.message : "refused");
		control_reply_free(&r);
		api_close(&c);
		return VM_EXIT_FAILURE;
	}
	control_reply_free(&r);
	ret = verb_exec_relay(c.fd, NULL);
	api_close(&c);
	return ret;
}

static const char usage_ps[] =
    "Usage: clawvm ps [--json]\n"
    "\n"
    "Lists the running sandboxes of this user: a table, or with --json an\n"
    "array of their `describe` results (api/control.md).\n";

struct ps_state {
	bool json;
	unsigned n;
};

static void ps_one(const char *name, const char *sock, void *opaque)
{
	struct ps_state *ps = opaque;
	struct control_reply r = {0};
	struct api_conn c;
	char state[32] = "?";
	int64_t pid = 0, cpus = 0, mem = 0, up = 0, execs = 0;

	if (api_open_path(&c, sock) < 0)
		return; /* gone since the listing, or not answering: not running */
	if (api_call(&c, "describe", NULL, &r, false) < 0 || r.code != 0 || !r.result) {
		if (r.code == 0)
			control_reply_free(&r);
		api_close(&c);
		return;
	}
	if (ps->json) {
		printf("%s%s", ps->n ? ",\n  " : "  ", r.result);
	} else {
		if (control_json_string(r.result, "state", state, sizeof(state)) < 0 ||
		    control_json_int(r.result, "pid", &pid) < 0 ||
		    control_json_int(r.result, "config.vcpus", &cpus) < 0 ||
		    control_json_int(r.result, "config.memory_mib", &mem) < 0 ||
		    control_json_int(r.result, "uptime_ms", &up) < 0 ||
		    control_json_int(r.result, "execs", &execs) < 0)
			snprintf(state, sizeof(state), "?");
		printf("%-20s %-10s %8lld %4lld %7lld %5lld %9.1f\n", name, state, (long long)pid,
		       (long long)cpus, (long long)mem, (long long)execs, (double)up / 1000.0);
	}
	ps->n++;
	control_reply_free(&r);
	api_close(&c);
}

static int verb_ps(int argc, char **argv)
{
	struct ps_state ps = {0};
	struct config_err err;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			ps.json = true;
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return verb_usage(usage_ps, true);
		else
			return verb_usage(usage_ps, false);
	}
	if (ps.json)
		printf("[\n");
	else
		printf("%-20s %-10s %8s %4s %7s %5s %9s\n", "NAME", "STATE", "PID", "CPUS",
		       "MEM_MIB", "EXECS", "UPTIME_S");
	if (rundir_list(ps_one, &ps, &err) < 0) {
		log_err("%s", err.msg);
		return VM_EXIT_FAILURE;
	}
	if (ps.json)
		printf("%s]\n", ps.n ? "\n" : "");
	return 0;
}

static const char usage_inspect[] = "Usage: clawvm inspect NAME\n"
				    "\n"
				    "Prints sandbox NAME's `describe` result (api/control.md) as "
				    "indented JSON.\n";

static int verb_inspect(int argc, char **argv)
{
	struct control_reply r;
	struct api_conn c;
	char *pretty;

	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
		return verb_usage(usage_inspect, true);
	if (argc != 2 || argv[1][0] == '-')
		return verb_usage(usage_inspect, false);
	if (api_open(&c, argv[1]) < 0)
		return VM_EXIT_FAILURE;
	if (api_call_ok(&c, "describe", NULL, &r) < 0) {
		api_close(&c);
		return VM_EXIT_FAILURE;
	}
	pretty = control_json_pretty(r.result);
	printf("%s\n", pretty ? pretty : r.result);
	free(pretty);
	control_reply_free(&r);
	api_close(&c);
	return 0;
}

/* Asks sandbox `name` to stop (`method` with `params`), then waits for its end. */
static int stop_and_wait(const char *name, const char *method, const char *params)
{
	struct control_reply r;
	struct api_conn c;

	if (api_open(&c, name) < 0)
		return VM_EXIT_FAILURE;
	if (api_call_ok(&c, "subscribe", "{\"events\":[\"exit\"]}", &r) < 0) {
		api_close(&c);
		return VM_EXIT_FAILURE;
	}
	control_reply_free(&r);
	if (api_call_ok(&c, method, params, &r) < 0) {
		api_close(&c);
		return VM_EXIT_FAILURE;
	}
	control_reply_free(&r);
	if (!strcmp(method, "stop"))
		api_wait_exit(&c);
	api_close(&c);
	return 0;
}

static const char usage_stop[] =
    "Usage: clawvm stop [--timeout SECONDS] NAME...\n"
    "\n"
    "Stops each sandbox as `docker stop` does: SIGTERM to its command, and the VM stopped\n"
    "SECONDS later (default 10) if it has not ended; returns once it has.\n";

static int verb_stop(int argc, char **argv)
{
	unsigned long long seconds = 10;
	char params[64];
	int i = 1, status = 0;

	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
		return verb_usage(usage_stop, true);
	if (i + 1 < argc && (!strcmp(argv[i], "--timeout") || !strcmp(argv[i], "-t"))) {
		if (cli_parse_uint("--timeout", argv[i + 1], 0, 3600, &seconds) < 0)
			return VM_EXIT_FAILURE;
		i += 2;
	}
	if (i >= argc || argv[i][0] == '-')
		return verb_usage(usage_stop, false);
	snprintf(params, sizeof(params), "{\"timeout_ms\":%llu}", seconds * 1000);
	for (; i < argc; i++) {
		if (stop_and_wait(argv[i], "stop", params) != 0)
			status = VM_EXIT_FAILURE;
		else
			printf("%s\n", argv[i]);
	}
	return status;
}

static const char usage_kill[] =
    "Usage: clawvm kill [-s SIGNAL] NAME...\n"
    "\n"
    "Without -s, stops each sandbox's VM at once (its command's status is 137, as after\n"
    "SIGKILL). With -s, sends SIGNAL (a number or a name: TERM, SIGUSR1...) to its main\n"
    "command and returns.\n";

static int verb_kill(int argc, char **argv)
{
	const char *sig = NULL;
	char params[96];
	int i = 1, status = 0;

	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
		return verb_usage(usage_kill, true);
	if (i + 1 < argc && (!strcmp(argv[i], "-s") || !strcmp(argv[i], "--signal"))) {
		sig = argv[i + 1];
		i += 2;
	}
	if (i >= argc || argv[i][0] == '-')
		return verb_usage(usage_kill, false);
	if (sig) {
		bool digits = *sig != '\0', word = *sig != '\0';

		for (const char *p = sig; *p; p++) {
			digits &= isdigit((unsigned char)*p) != 0;
			word &= isalnum((unsigned char)*p) || *p == '+' || *p == '-';
		}
		if (!word || strlen(sig) > 20) {
			log_err("-s `%s`: not a signal name or number", sig);
			return VM_EXIT_FAILURE;
		}
		snprintf(params, sizeof(params), digits ? "{\"signal\":%s}" : "{\"signal\":\"%s\"}",
			 sig);
	}
	for (; i < argc; i++) {
		int ret = sig ? stop_and_wait(argv[i], "signal", params)
			      : stop_and_wait(argv[i], "stop", "{\"timeout_ms\":0}");

		if (ret != 0)
			status = VM_EXIT_FAILURE;
		else
			printf("%s\n", argv[i]);
	}
	return status;
}

static const char usage_egress[] =
    "Usage: clawvm egress NAME [--allow SPEC]... [--revoke SPEC]... [--json]\n"
    "\n"
    "Shows the egress policy of sandbox NAME, or changes it while the sandbox runs:\n"
    "  --allow SPEC   adds a rule, as `clawvm run --allow` (HOST[:PORT], *.domain, an\n"
    "                 address or CIDR)\n"
    "  --revoke SPEC  removes a rule, written as it was added or as shown here; the open\n"
    "                 connections the policy no longer allows are ended\n"
    "  --json         prints the broker's reply (api/control.md, describe_egress)\n"
    "All the changes of one call are made, or none. The sandbox's egress broker serves this\n"
    "on egress.sock in the sandbox's directory, for the user who started it and root;\n"
    "the VMM cannot reach it.\n";

/* The broker's reply, for people: the rules, the secrets' hosts, the counters. */
static void egress_print(const char *result)
{
	char text[512], host[512];
	int64_t n, port, total, denied, up, down;
	char key[64];

	for (int i = 0;; i++) {
		snprintf(key, sizeof(key), "allow.%d", i);
		if (control_json_string(result, key, text, sizeof(text)) < 0)
			break;
		printf("allow   %s\n", text);
	}
	for (int i = 0;; i++) {
		snprintf(key, sizeof(key), "secrets.%d.name", i);
		if (control_json_string(result, key, text, sizeof(text)) < 0)
			break;
		snprintf(key, sizeof(key), "secrets.%d.host", i);
		if (control_json_string(result, key, host, sizeof(host)) < 0)
			break;
		snprintf(key, sizeof(key), "secrets.%d.port", i);
		if (control_json_int(result, key, &port) < 0)
			break;
		printf("secret  %s for %s:%lld\n", text, host, (long long)port);
	}
	if (control_json_int(result, "connections", &n) == 0 &&
	    control_json_int(result, "connections_total", &total) == 0 &&
	    control_json_int(result, "denied_total", &denied) == 0 &&
	    control_json_int(result, "bytes_up", &up) == 0 &&
	    control_json_int(result, "bytes_down", &down) == 0)
		printf("connections: %lld open, %lld in all, %lld denied; %lld B up, %lld B down\n",
		       (long long)n, (long long)total, (long long)denied, (long long)up,
		       (long long)down);
	if (control_json_int(result, "closed", &n) == 0 && n > 0)
		printf("ended %lld open connection%s that the policy no longer allows\n",
		       (long long)n, n == 1 ? "" : "s");
}

static int verb_egress(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"allow", required_argument, NULL, 'a'},
	    {"revoke", required_argument, NULL, 'r'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	const char **allow = calloc((size_t)argc, sizeof(*allow));
	const char **revoke = calloc((size_t)argc, sizeof(*revoke));
	char sock[PATH_MAX], *params = NULL, *pretty;
	struct control_reply r;
	struct config_err err;
	struct api_conn c;
	size_t nallow = 0, nrevoke = 0;
	bool json = false;
	int opt, status = VM_EXIT_FAILURE;

	if (!allow || !revoke) {
		log_err("out of memory");
		goto out;
	}
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (opt == 'a') {
			allow[nallow++] = optarg;
		} else if (opt == 'r') {
			revoke[nrevoke++] = optarg;
		} else if (opt == 'j') {
			json = true;
		} else {
			status = verb_usage(usage_egress, opt == 'h');
			goto out;
		}
	}
	if (optind != argc - 1) {
		status = verb_usage(usage_egress, false);
		goto out;
	}
	if (rundir_find(argv[optind], sock, &err) < 0) {
		log_err("%s", err.msg);
		goto out;
	}
	/* egress.sock, beside api.sock. */
	strcpy(strrchr(sock, '/') + 1, RUNDIR_EGRESS_SOCK);
	opt = api_open_path(&c, sock);
	if (opt < 0) {
		log_err("cannot reach the egress broker of sandbox `%s` at %s: %s", argv[optind],
			sock, strerror(-opt));
		goto out;
	}
	if (nallow || nrevoke) {
		params = control_update_egress_params(allow, revoke);
		if (!params) {
			log_err("out of memory");
			api_close(&c);
			goto out;
		}
	}
	if (api_call_ok(&c, params ? "update_egress" : "describe_egress", params, &r) == 0) {
		pretty = json ? control_json_pretty(r.result) : NULL;
		if (json)
			printf("%s\n", pretty ? pretty : r.result);
		else
			egress_print(r.result);
		free(pretty);
		control_reply_free(&r);
		status = 0;
	}
	api_close(&c);
out:
	free(params);
	free(allow);
	free(revoke);
	return status;
}

const struct cli_verb cli_verbs[8] = {
    {"exec", verb_exec}, {"ps", verb_ps},	{"inspect", verb_inspect}, {"stop", verb_stop},
    {"kill", verb_kill}, {"audit", verb_audit}, {"egress", verb_egress},   {"image", verb_image},
};

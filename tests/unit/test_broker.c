/* The egress broker's loop (broker/broker.h) with real sockets and no VM: the broker runs in
 * a child process, the test is the guest (it connects to the broker's <prefix>_3128 as the
 * VMM would for guest-init's relay) and the upstream (a TCP server on 127.0.0.1, opened by
 * an address rule: loopback is refused otherwise). Checked: a CONNECT tunnel carrying 1 MiB
 * each way intact; a host not allowed (403, exact answer); a name allowed but resolving to
 * loopback (403); a plain request sent on in origin-form with Connection: close; a proxy
 * request without a host (400); the control socket (describe_egress, update_egress:
 * a revoked rule ends the tunnel it allowed and refuses the next, all-or-nothing updates,
 * errors named, pipelined requests, notifications, the client cap, an over-long line, a
 * client that stalls mid-request, a client of another uid); and the audit log of it all,
 * intact. */
#include "unit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api/audit.h"
#include "base/log.h"
#include "broker/broker.h"

static char dir[] = "/tmp/clawvm-test-broker-XXXXXX";
static char prefix[64], log_path[256], ctl_path[64];
static int up_fd, sup_fd = -1;
static uint16_t up_port;
static pid_t broker_pid;
static char seen_head[4096]; /* the plain request's head as the upstream got it */

/* The upstream: each connection either echoes (after a CONNECT) or, if it starts with a
 * request head, records it and answers. */
static void *upstream(void *arg)
{
	(void)arg;
	for (;;) {
		char buf[65536];
		ssize_t n;
		int fd = accept(up_fd, NULL, NULL);

		if (fd < 0)
			return NULL;
		while ((n = read(fd, buf, sizeof(buf))) > 0) {
			if (!memcmp(buf, "GET ", 4)) {
				const char reply[] =
				    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

				memcpy(seen_head, buf,
				       (size_t)n < sizeof(seen_head) - 1 ? (size_t)n : 0);
				assert_true(write(fd, reply, sizeof(reply) - 1) > 0);
				break;
			}
			assert_int_equal(write(fd, buf, (size_t)n), n);
		}
		close(fd);
	}
}

static int guest_connect(void)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s_%d", prefix, BROKER_PROXY_PORT);
	for (int i = 0; i < 200; i++) {
		if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
			return fd;
		usleep(10000);
	}
	fail_msg("the broker does not listen on %s", addr.sun_path);
	return -1;
}

/* Everything the broker sends until it closes (or `max` bytes). */
static size_t read_all(int fd, char *buf, size_t max)
{
	size_t got = 0;
	ssize_t n;

	while (got < max && (n = read(fd, buf + got, max - got)) > 0)
		got += (size_t)n;
	buf[got < max ? got : max - 1] = '\0';
	return got;
}

static int setup(void **state)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	struct broker_config *cfg = calloc(1, sizeof(*cfg));
	char err[256], rule[64];
	int sup[2];
	pthread_t t;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(prefix, sizeof(prefix), "%s/v", dir);
	snprintf(log_path, sizeof(log_path), "%s/audit.jsonl", dir);
	snprintf(ctl_path, sizeof(ctl_path), "%s/egress.sock", dir);
	up_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(up_fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(up_fd, 16), 0);
	assert_int_equal(getsockname(up_fd, (struct sockaddr *)&sin, &len), 0);
	up_port = ntohs(sin.sin_port);

	snprintf(cfg->prefix, sizeof(cfg->prefix), "%s", prefix);
	snprintf(cfg->control_path, sizeof(cfg->control_path), "%s", ctl_path);
	cfg->control_uid = getuid();
	policy_init(&cfg->policy);
	snprintf(rule, sizeof(rule), "127.0.0.1:%u", up_port);
	assert_int_equal(policy_add(&cfg->policy, rule, err, sizeof(err)), 0);
	snprintf(rule, sizeof(rule), "localhost:%u", up_port == 65535 ? 1 : up_port + 1);
	assert_int_equal(policy_add(&cfg->policy, rule, err, sizeof(err)), 0);
	cfg->audit = audit_open(log_path, err, sizeof(err));
	assert_non_null(cfg->audit);
	cfg->vmm_events_fd = -1;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sup), 0);
	broker_pid = fork();
	assert_true(broker_pid >= 0);
	if (broker_pid == 0) {
		close(sup[0]);
		close(up_fd);
		cfg->supervisor_fd = sup[1];
		if (getenv("BROKER_DEBUG"))
			log_max_level = LOG_DEBUG;
		_exit(broker_run(cfg) < 0 ? 1 : 0);
	}
	close(sup[1]);
	sup_fd = sup[0];
	/* The upstream's thread only now: a child forked while other threads run may find a
	 * lock of theirs held for good (AddressSanitizer's, the resolver's libc). */
	assert_int_equal(pthread_create(&t, NULL, upstream, NULL), 0);
	pthread_detach(t);
	audit_close(cfg->audit);
	policy_release(&cfg->policy);
	free(cfg);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	if (broker_pid > 0) {
		kill(broker_pid, SIGKILL);
		waitpid(broker_pid, NULL, 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static void tunnel(void **state)
{
	static char out[1 << 20], back[1 << 20];
	char req[128], resp[64];
	const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
	int fd = guest_connect();
	size_t got = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (char)(i * 7 + i / 251);
	snprintf(req, sizeof(req), "CONNECT 127.0.0.1:%u HTTP/1.1\r\nHost: x\r\n\r\n", up_port);
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	memset(resp, 0, sizeof(resp));
	if (read(fd, resp, sizeof(ok) - 1) != (ssize_t)sizeof(ok) - 1 ||
	    memcmp(resp, ok, sizeof(ok) - 1))
		fail_msg("CONNECT answered: %.*s", (int)sizeof(resp), resp);
	assert_memory_equal(resp, ok, sizeof(ok) - 1);
	/* Written and read in turns of 64 KiB: the echo never has to hold more. */
	for (size_t off = 0; off < sizeof(out); off += 65536) {
		size_t want = off + 65536;

		assert_int_equal(write(fd, out + off, 65536), 65536);
		while (got < want) {
			ssize_t n = read(fd, back + got, want - got);

			assert_true(n > 0);
			got += (size_t)n;
		}
	}
	assert_memory_equal(out, back, sizeof(out));
	close(fd);
}

static void refused(void **state)
{
	char req[1024], resp[1024], want[256];
	int fd;

	(void)state;
	fd = guest_connect();
	snprintf(req, sizeof(req), "CONNECT denied.example:443 HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_true(write(fd, req, strlen(req)) > 0);
	read_all(fd, resp, sizeof(resp));
	close(fd);
	snprintf(want, sizeof(want),
		 "clawvm: egress to denied.example:443 refused: not in the allowlist\n");
	snprintf(req, sizeof(req),
		 "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
		 "Connection: close\r\n\r\n%s",
		 strlen(want), want);
	assert_string_equal(resp, req);

	fd = guest_connect();
	snprintf(req, sizeof(req), "CONNECT localhost:%u HTTP/1.1\r\nHost: x\r\n\r\n",
		 up_port == 65535 ? 1 : up_port + 1);
	assert_true(write(fd, req, strlen(req)) > 0);
	read_all(fd, resp, sizeof(resp));
	close(fd);
	snprintf(want, sizeof(want),
		 "clawvm: egress to localhost:%u refused: resolves to a loopback address\n",
		 up_port == 65535 ? 1 : up_port + 1);
	assert_non_null(strstr(resp, "HTTP/1.1 403 Forbidden\r\n"));
	assert_non_null(strstr(resp, want));

	fd = guest_connect();
	snprintf(req, sizeof(req), "GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_true(write(fd, req, strlen(req)) > 0);
	read_all(fd, resp, sizeof(resp));
	close(fd);
	assert_non_null(strstr(resp, "HTTP/1.1 400 Bad Request\r\n"));
}

static void plain_request(void **state)
{
	char req[256], resp[256];
	int fd = guest_connect();

	(void)state;
	snprintf(req, sizeof(req),
		 "GET http://127.0.0.1:%u/a/b?c=d HTTP/1.1\r\nHost: 127.0.0.1\r\n"
		 "Proxy-Connection: keep-alive\r\nX-Mine: 1\r\n\r\n",
		 up_port);
	assert_true(write(fd, req, strlen(req)) > 0);
	read_all(fd, resp, sizeof(resp));
	close(fd);
	assert_non_null(strstr(resp, "HTTP/1.1 200 OK\r\n"));
	assert_memory_equal(seen_head, "GET /a/b?c=d HTTP/1.1\r\n", 23);
	assert_non_null(strstr(seen_head, "\r\nX-Mine: 1\r\n"));
	assert_non_null(strstr(seen_head, "\r\nConnection: close\r\n"));
	assert_null(strstr(seen_head, "Proxy-Connection"));
}

static int ctl_connect(void)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", ctl_path);
	assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	return fd;
}

/* One reply line (without its "\n") into buf, within timeout_ms; false if none came. */
static bool ctl_read_line(int fd, char *buf, size_t max, int timeout_ms)
{
	size_t got = 0;

	while (got < max - 1) {
		struct pollfd p = {.fd = fd, .events = POLLIN};

		if (poll(&p, 1, timeout_ms) != 1 || read(fd, buf + got, 1) != 1)
			break;
		if (buf[got] == '\n') {
			buf[got] = '\0';
			return true;
		}
		got++;
	}
	buf[got] = '\0';
	return false;
}

/* Sends `req` (with its "\n") and returns the reply line in buf. */
static void ctl_call(int fd, const char *req, char *buf, size_t max)
{
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	if (!ctl_read_line(fd, buf, max, 5000))
		fail_msg("no reply to %s (got: %s)", req, buf);
}

/* A CONNECT to the upstream, answered 200 (true) or not (its answer in resp). */
static bool tunnel_open(int *fd, char *resp, size_t max)
{
	const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
	char req[128];
	ssize_t n;

	*fd = guest_connect();
	snprintf(req, sizeof(req), "CONNECT 127.0.0.1:%u HTTP/1.1\r\nHost: x\r\n\r\n", up_port);
	assert_int_equal(write(*fd, req, strlen(req)), (ssize_t)strlen(req));
	n = read(*fd, resp, sizeof(ok) - 1);
	resp[n > 0 ? n : 0] = '\0';
	if (n == (ssize_t)sizeof(ok) - 1 && !memcmp(resp, ok, sizeof(ok) - 1))
		return true;
	read_all(*fd, resp + (n > 0 ? n : 0), max - (size_t)(n > 0 ? n : 0));
	return false;
}

static void control_describe(void **state)
{
	char want[512], reply[4096];
	int fd = ctl_connect();

	(void)state;
	ctl_call(fd, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"describe_egress\"}\n", reply,
		 sizeof(reply));
	snprintf(
	    want, sizeof(want),
	    "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"allow\":[\"127.0.0.1:%u\",\"localhost:%u"
	    "\"],\"secrets\":[],\"connections\":0,\"connections_total\":",
	    up_port, up_port == 65535 ? 1 : up_port + 1);
	assert_memory_equal(reply, want, strlen(want));
	assert_non_null(strstr(reply, ",\"denied_total\":3,\"bytes_up\":"));
	close(fd);
}

static void control_update(void **state)
{
	char req[512], want[512], reply[4096], resp[1024], rule[64];
	int ctl = ctl_connect(), t;

	(void)state;
	snprintf(rule, sizeof(rule), "127.0.0.1:%u", up_port);
	assert_true(tunnel_open(&t, resp, sizeof(resp)));
	assert_int_equal(write(t, "ping", 4), 4);
	assert_int_equal(read(t, resp, 4), 4);
	/* Revoked: the open tunnel ends, and the next CONNECT is refused. */
	snprintf(req, sizeof(req),
		 "{\"jsonrpc\":\"2.0\",\"id\":\"r\",\"method\":\"update_egress\",\"params\":{"
		 "\"revoke\":[\"%s\"]}}\n",
		 rule);
	ctl_call(ctl, req, reply, sizeof(reply));
	snprintf(want, sizeof(want),
		 "{\"jsonrpc\":\"2.0\",\"id\":\"r\",\"result\":{\"allow\":[\"localhost:%u\"],",
		 up_port == 65535 ? 1 : up_port + 1);
	assert_memory_equal(reply, want, strlen(want));
	assert_non_null(strstr(reply, ",\"closed\":1}}"));
	assert_int_equal(read_all(t, resp, sizeof(resp)), 0);
	close(t);
	assert_false(tunnel_open(&t, resp, sizeof(resp)));
	close(t);
	assert_non_null(strstr(resp, "HTTP/1.1 403 Forbidden\r\n"));
	assert_non_null(strstr(resp, "refused: not in the allowlist\n"));

	/* All or nothing: one bad rule, none added; each error names its rule. */
	snprintf(req, sizeof(req),
		 "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"update_egress\",\"params\":{"
		 "\"allow\":[\"%s\",\"exa mple.com\"]}}\n",
		 rule);
	ctl_call(ctl, req, reply, sizeof(reply));
	assert_string_equal(reply, "{\"jsonrpc\":\"2.0\",\"id\":2,\"error\":{\"code\":-32602,"
				   "\"message\":\"allow 'exa mple.com': invalid host name\"}}");
	ctl_call(ctl,
		 "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"update_egress\",\"params\":{"
		 "\"revoke\":[\"x.example.com\"]}}\n",
		 reply, sizeof(reply));
	assert_string_equal(reply, "{\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":-32602,"
				   "\"message\":\"revoke 'x.example.com': no such rule\"}}");
	assert_false(tunnel_open(&t, resp, sizeof(resp)));
	close(t);

	/* Allowed again, by a notification (no reply), then seen by describe_egress. */
	snprintf(
	    req, sizeof(req),
	    "{\"jsonrpc\":\"2.0\",\"method\":\"update_egress\",\"params\":{\"allow\":[\"%s\"]}}"
	    "\n{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"describe_egress\"}\n",
	    rule);
	ctl_call(ctl, req, reply, sizeof(reply));
	assert_memory_equal(reply, "{\"jsonrpc\":\"2.0\",\"id\":4,\"result\":{\"allow\":[", 43);
	assert_non_null(strstr(reply, rule));
	assert_null(strstr(reply, "\"closed\""));
	assert_true(tunnel_open(&t, resp, sizeof(resp)));
	close(t);

	/* Pipelined: answered in order. The VMM's methods and broken lines: errors. */
	ctl_call(ctl,
		 "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"start\"}\nnot json\n"
		 "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"describe_egres\"}\n",
		 reply, sizeof(reply));
	assert_string_equal(reply, "{\"jsonrpc\":\"2.0\",\"id\":5,\"error\":{\"code\":-32601,"
				   "\"message\":\"`start` is the VMM's (api.sock); this socket "
				   "serves update_egress and describe_egress\"}}");
	assert_true(ctl_read_line(ctl, reply, sizeof(reply), 5000));
	assert_memory_equal(reply, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,",
			    49);
	assert_true(ctl_read_line(ctl, reply, sizeof(reply), 5000));
	assert_memory_equal(reply, "{\"jsonrpc\":\"2.0\",\"id\":6,\"error\":{\"code\":-32601,", 46);
	assert_non_null(strstr(reply, "describe_egress"));
	close(ctl);
}

/* BROKER_CONTROL_CLIENTS at once; the next waits until one goes. A line over the cap gets
 * its error and the end. */
static void control_limits(void **state)
{
	static char big[BROKER_CONTROL_LINE + 64];
	const char describe[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"describe_egress\"}\n";
	int fds[BROKER_CONTROL_CLIENTS], extra;
	char reply[4096];
	size_t sent = 0;

	(void)state;
	for (int i = 0; i < BROKER_CONTROL_CLIENTS; i++) {
		fds[i] = ctl_connect();
		ctl_call(fds[i], describe, reply, sizeof(reply));
	}
	extra = ctl_connect(); /* in the backlog */
	assert_int_equal(write(extra, describe, strlen(describe)), (ssize_t)strlen(describe));
	assert_false(ctl_read_line(extra, reply, sizeof(reply), 300));
	close(fds[0]);
	assert_true(ctl_read_line(extra, reply, sizeof(reply), 5000));
	assert_memory_equal(reply, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":", 33);
	for (int i = 1; i < BROKER_CONTROL_CLIENTS; i++)
		close(fds[i]);

	memset(big, ' ', sizeof(big));
	while (sent < sizeof(big)) {
		ssize_t n = send(extra, big + sent, sizeof(big) - sent, MSG_NOSIGNAL);

		if (n <= 0)
			break; /* closed once it said why */
		sent += (size_t)n;
	}
	assert_true(ctl_read_line(extra, reply, sizeof(reply), 5000));
	assert_string_equal(reply, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32600,"
				   "\"message\":\"request line over 256 KiB\"}}");
	assert_int_equal(read_all(extra, reply, sizeof(reply)), 0);
	close(extra);
}

/* A client that begins a request and stalls is dropped after BROKER_CONTROL_MS; one that
 * stays idle between requests is not. */
static void control_slow_client(void **state)
{
	const char describe[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"describe_egress\"}\n";
	int slow = ctl_connect(), idle = ctl_connect();
	char reply[4096];

	(void)state;
	assert_int_equal(write(slow, "{\"jsonrpc\":", 11), 11);
	/* The broker checks once a second: gone within the deadline and two ticks. */
	assert_false(ctl_read_line(slow, reply, sizeof(reply), BROKER_CONTROL_MS - 1000));
	assert_int_equal(read_all(slow, reply, sizeof(reply)), 0);
	close(slow);
	ctl_call(idle, describe, reply, sizeof(reply));
	assert_memory_equal(reply, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":", 33);
	close(idle);
}

/* A client of another uid is closed unanswered, even when the socket's mode lets it in. */
static void control_other_uid(void **state)
{
	pid_t pid;
	int status;

	(void)state;
	if (geteuid() != 0)
		skip(); /* needs root to be another uid */
	assert_int_equal(chmod(ctl_path, 0666), 0);
	assert_int_equal(chmod(dir, 0755), 0);
	pid = fork();
	if (pid == 0) {
		char reply[256];
		int fd;

		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(2);
		fd = ctl_connect();
		/* It may be closed already: the request may not even go. */
		(void)!send(fd, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"describe_egress\"}\n",
			    52, MSG_NOSIGNAL);
		_exit(recv(fd, reply, sizeof(reply), 0) <= 0 ? 0 : 4);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(chmod(ctl_path, 0600), 0);
	assert_int_equal(chmod(dir, 0700), 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* Last: the supervisor's socket closes, the broker audits and ends; the log is intact
 * and holds each decision. */
static void audited(void **state)
{
	char report[512], line[2048];
	int status, allowed = 0, denied = 0, policy_lines = 0;
	FILE *in, *out;

	(void)state;
	close(sup_fd);
	assert_int_equal(waitpid(broker_pid, &status, 0), broker_pid);
	broker_pid = 0;
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	in = fopen(log_path, "re");
	assert_non_null(in);
	out = fmemopen(report, sizeof(report), "w");
	assert_int_equal(audit_verify(in, out), 0);
	fclose(out);
	rewind(in);
	while (fgets(line, sizeof(line), in)) {
		allowed += strstr(line, "\"decision\":\"allowed\"") != NULL;
		denied += strstr(line, "\"decision\":\"denied\"") != NULL;
		policy_lines += strstr(line, "\"event\":\"policy\"") != NULL;
	}
	fclose(in);
	/* The tunnel, the plain request; the control tests' tunnels: ended by the revoke,
	 * opened after it was allowed again. */
	assert_int_equal(allowed, 4);
	/* Not allowed, loopback, no host; the control tests': refused twice while revoked. */
	assert_int_equal(denied, 5);
	assert_int_equal(policy_lines, 2); /* the revoke; the allow (the refused ones: none) */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(tunnel),
	    cmocka_unit_test(refused),
	    cmocka_unit_test(plain_request),
	    cmocka_unit_test(control_describe),
	    cmocka_unit_test(control_update),
	    cmocka_unit_test(control_limits),
	    cmocka_unit_test(control_slow_client),
	    cmocka_unit_test(control_other_uid),
	    cmocka_unit_test(audited),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}

/* The egress broker's loop (broker/broker.h) with real sockets and no VM: the broker runs in
 * a child process, the test is the guest (it connects to the broker's <prefix>_3128 as the
 * VMM would for guest-init's relay) and the upstream (a TCP server on 127.0.0.1, opened by
 * an address rule: loopback is refused otherwise). Checked: a CONNECT tunnel carrying 1 MiB
 * each way intact; a host not allowed (403, exact answer); a name allowed but resolving to
 * loopback (403); a plain request sent on in origin-form with Connection: close; a proxy
 * request without a host (400); and the audit log of it all, intact. */
#include "unit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api/audit.h"
#include "base/log.h"
#include "broker/broker.h"

static char dir[] = "/tmp/clawvm-test-broker-XXXXXX";
static char prefix[64], log_path[256];
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
	up_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(up_fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(up_fd, 16), 0);
	assert_int_equal(getsockname(up_fd, (struct sockaddr *)&sin, &len), 0);
	up_port = ntohs(sin.sin_port);

	snprintf(cfg->prefix, sizeof(cfg->prefix), "%s", prefix);
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

/* Last: the supervisor's socket closes, the broker audits and ends; the log is intact
 * and holds each decision. */
static void audited(void **state)
{
	char report[512], line[2048];
	int status, allowed = 0, denied = 0;
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
	}
	fclose(in);
	assert_int_equal(allowed, 2); /* the tunnel, the plain request */
	assert_int_equal(denied, 3);  /* not allowed, loopback, no host */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(tunnel),
	    cmocka_unit_test(refused),
	    cmocka_unit_test(plain_request),
	    cmocka_unit_test(audited),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}

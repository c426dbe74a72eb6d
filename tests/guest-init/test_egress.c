/* guest-init's egress relay (egress.c) on this machine: the relay loop in a thread, listening
 * on an ephemeral port of 127.0.0.1, with a connect op that reaches a test "host" over an
 * AF_UNIX socket in place of vsock; clients and that host driven from the test thread.
 * Then /clawvm/egress's parser, loopback in a fresh network namespace, and the relay
 * process as guest-init starts it. */
#include "egress.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define HOST_PORT  3128 /* what the relay is told; it listens on an ephemeral port instead */
#define TIMEOUT_MS 20000

/* ---- the test host: where the connect op leads ---- */

enum upstream_mode {
	UP_UNIX,	/* connect to the test host's AF_UNIX listener */
	UP_FAIL,	/* the op fails at once */
	UP_TCP_REFUSED, /* the op's connect is in progress, then refused */
};

struct upstream {
	int listen_fd;
	struct sockaddr_un addr;
	socklen_t addr_len;
	int refused_fd; /* a bound TCP socket that does not listen: connecting is refused */
	struct sockaddr_in refused_addr;
	_Atomic int mode;
	atomic_uint connects;
	atomic_uint last_port;
};

static int test_connect(void *opaque, uint16_t port)
{
	struct upstream *up = opaque;
	int fd, ret;

	atomic_fetch_add(&up->connects, 1);
	atomic_store(&up->last_port, port);
	switch (atomic_load(&up->mode)) {
	case UP_FAIL:
		return -ECONNREFUSED;
	case UP_TCP_REFUSED:
		fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *)&up->refused_addr, sizeof(up->refused_addr)) <
			0 &&
		    errno != EINPROGRESS) {
			ret = -errno;
			close(fd);
			return ret;
		}
		return fd;
	default:
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *)&up->addr, up->addr_len) < 0 &&
		    errno != EINPROGRESS) {
			ret = -errno;
			close(fd);
			return ret;
		}
		return fd;
	}
}

static const struct egress_relay_ops test_ops = {.connect = test_connect};

static void upstream_open(struct upstream *up)
{
	static atomic_uint serial;
	socklen_t len = sizeof(up->refused_addr);

	memset(up, 0, sizeof(*up));
	/* Abstract: nothing to clean up in the file system. */
	up->addr.sun_family = AF_UNIX;
	snprintf(up->addr.sun_path + 1, sizeof(up->addr.sun_path) - 1, "clawvm-test-egress-%d-%u",
		 (int)getpid(), atomic_fetch_add(&serial, 1));
	up->addr_len =
	    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(up->addr.sun_path + 1));
	up->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(up->listen_fd >= 0);
	assert_int_equal(bind(up->listen_fd, (struct sockaddr *)&up->addr, up->addr_len), 0);
	assert_int_equal(listen(up->listen_fd, 1024), 0);

	up->refused_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(up->refused_fd >= 0);
	up->refused_addr =
	    (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(
	    bind(up->refused_fd, (struct sockaddr *)&up->refused_addr, sizeof(up->refused_addr)),
	    0);
	assert_int_equal(getsockname(up->refused_fd, (struct sockaddr *)&up->refused_addr, &len),
			 0);
}

static void upstream_close(struct upstream *up)
{
	close(up->listen_fd);
	close(up->refused_fd);
}

/* The host end of the next relayed connection, blocking; -1 after timeout_ms. */
static int upstream_accept(struct upstream *up, int timeout_ms)
{
	struct pollfd pfd = {.fd = up->listen_fd, .events = POLLIN};

	if (poll(&pfd, 1, timeout_ms) != 1)
		return -1;
	return accept4(up->listen_fd, NULL, NULL, SOCK_CLOEXEC);
}

/* ---- the relay in a thread ---- */

struct fixture {
	struct upstream up;
	struct egress_ports ports;
	struct egress_relay *relay;
	pthread_t thread;
	int run_ret;
	uint16_t tcp_port; /* where clients connect */
	struct egress_relay_stats stats;
};

static void *relay_thread(void *arg)
{
	struct fixture *fx = arg;

	fx->run_ret = egress_relay_run(fx->relay);
	return NULL;
}

static int fixture_setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	struct egress_relay_config cfg;
	char err[256];

	assert_non_null(fx);
	upstream_open(&fx->up);
	fx->ports = (struct egress_ports){.port = {HOST_PORT}, .n = 1};
	cfg = (struct egress_relay_config){
	    .ports = &fx->ports,
	    .bind_addr = {.s_addr = htonl(INADDR_LOOPBACK)},
	    .any_listen_port = true,
	    .ops = &test_ops,
	    .opaque = &fx->up,
	};
	fx->relay = egress_relay_create(&cfg, err, sizeof(err));
	if (!fx->relay)
		fail_msg("egress_relay_create: %s", err);
	fx->tcp_port = egress_relay_listen_port(fx->relay, 0);
	assert_true(fx->tcp_port != 0);
	assert_int_equal(pthread_create(&fx->thread, NULL, relay_thread, fx), 0);
	*state = fx;
	return 0;
}

/* Stops the relay and keeps its counters in fx->stats. */
static void fixture_stop(struct fixture *fx)
{
	if (!fx->relay)
		return;
	egress_relay_stop(fx->relay);
	assert_int_equal(pthread_join(fx->thread, NULL), 0);
	assert_int_equal(fx->run_ret, 0);
	egress_relay_stats(fx->relay, &fx->stats);
	egress_relay_destroy(fx->relay);
	fx->relay = NULL;
}

static int fixture_teardown(void **state)
{
	struct fixture *fx = *state;

	fixture_stop(fx);
	upstream_close(&fx->up);
	free(fx);
	return 0;
}

/* A client of the relay, connected (blocking). */
static int client_connect(const struct fixture *fx, int rcvbuf)
{
	struct sockaddr_in addr = {.sin_family = AF_INET,
				   .sin_port = htons(fx->tcp_port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	if (rcvbuf)
		assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	return fd;
}

static void set_timeout(int fd, int ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
}

/* ---- both ends of a connection, driven together ---- */

struct endpoint {
	int fd;
	const uint8_t *out; /* sent, then shut down for writing */
	size_t out_len, sent;
	bool send_after_eof; /* sends only once the peer's EOF came */
	bool shut;
	uint8_t *in; /* what arrives; more than in_cap is an error */
	size_t in_cap, got;
	bool eof;
	int error;
};

static bool endpoint_done(const struct endpoint *e)
{
	return e->error || (e->eof && e->shut);
}

static void endpoint_step(struct endpoint *e, short revents)
{
	if (revents & (POLLIN | POLLHUP | POLLERR)) {
		uint8_t spill;
		bool full = e->got == e->in_cap;
		ssize_t n = recv(e->fd, full ? &spill : e->in + e->got,
				 full ? 1 : e->in_cap - e->got, MSG_DONTWAIT);

		if (n > 0 && full)
			e->error = EOVERFLOW;
		else if (n > 0)
			e->got += (size_t)n;
		else if (n == 0)
			e->eof = true;
		else if (errno != EAGAIN && errno != EINTR)
			e->error = errno;
	}
	if (e->error || e->shut || (e->send_after_eof && !e->eof))
		return;
	if (e->sent < e->out_len && (revents & POLLOUT)) {
		ssize_t n = send(e->fd, e->out + e->sent, e->out_len - e->sent,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n > 0)
			e->sent += (size_t)n;
		else if (n < 0 && errno != EAGAIN && errno != EINTR)
			e->error = errno;
	}
	if (e->sent == e->out_len && !e->error) {
		if (shutdown(e->fd, SHUT_WR) < 0)
			e->error = errno;
		e->shut = true;
	}
}

/* Runs the endpoints until each has sent all, shut down and seen EOF (or failed). */
static void drive(struct endpoint *eps, size_t n, int timeout_ms)
{
	struct pollfd *pfds = calloc(n, sizeof(*pfds));
	struct timespec start, now;

	assert_non_null(pfds);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		bool all_done = true;
		long elapsed;

		for (size_t i = 0; i < n; i++) {
			struct endpoint *e = &eps[i];

			pfds[i] = (struct pollfd){.fd = endpoint_done(e) ? -1 : e->fd};
			if (!endpoint_done(e))
				all_done = false;
			if (!e->eof)
				pfds[i].events |= POLLIN;
			if (!e->shut && (!e->send_after_eof || e->eof))
				pfds[i].events |= POLLOUT;
		}
		if (all_done)
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		elapsed =
		    (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
		if (elapsed > timeout_ms)
			fail_msg("connections not done after %d ms", timeout_ms);
		assert_true(poll(pfds, n, 100) >= 0);
		for (size_t i = 0; i < n; i++) {
			/* A shut-down end with nothing to read polls no events: step it too. */
			if (pfds[i].fd >= 0)
				endpoint_step(&eps[i], pfds[i].revents);
		}
	}
	free(pfds);
}

static uint8_t *random_bytes(size_t len, uint64_t seed)
{
	uint8_t *buf = malloc(len);
	uint64_t x = seed | 1;

	assert_non_null(buf);
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (uint8_t)x;
	}
	return buf;
}

/* len bytes each way through one connection; both ends half-close when done sending. */
static void round_trip(struct fixture *fx, size_t len, uint64_t seed)
{
	uint8_t *up_data = random_bytes(len, seed), *down_data = random_bytes(len, seed * 3 + 7);
	uint8_t *at_host = malloc(len), *at_client = malloc(len);
	int client = client_connect(fx, 0), host = upstream_accept(&fx->up, TIMEOUT_MS);
	struct endpoint eps[2] = {
	    {.fd = client, .out = up_data, .out_len = len, .in = at_client, .in_cap = len},
	    {.fd = host, .out = down_data, .out_len = len, .in = at_host, .in_cap = len},
	};

	assert_true(host >= 0);
	assert_non_null(at_host);
	assert_non_null(at_client);
	drive(eps, 2, TIMEOUT_MS);
	assert_int_equal(eps[0].error, 0);
	assert_int_equal(eps[1].error, 0);
	assert_int_equal(eps[0].got, len);
	assert_int_equal(eps[1].got, len);
	assert_memory_equal(at_host, up_data, len);
	assert_memory_equal(at_client, down_data, len);
	close(client);
	close(host);
	free(up_data);
	free(down_data);
	free(at_host);
	free(at_client);
}

/* (a) A MiB each way through one pair, byte for byte; the connect op is told the host port,
 * not the port the relay happens to listen on. */
static void test_mib_each_way(void **state)
{
	struct fixture *fx = *state;

	round_trip(fx, 1024 * 1024, 42);
	assert_int_equal(atomic_load(&fx->up.last_port), HOST_PORT);
	fixture_stop(fx);
	assert_int_equal(fx->stats.accepted, 1);
	assert_int_equal(fx->stats.connect_failed, 0);
	assert_int_equal(fx->stats.pairs, 0);
	assert_int_equal(fx->stats.pairs_max, 1);
}

/* (b) Half-close both ways: a client that shut down its writing still gets the reply the
 * host sends after the EOF; a host that shut down first still gets what the client sends
 * after its EOF. */
static void test_half_close(void **state)
{
	static const char request[] = "GET / HTTP/1.0\r\n\r\n",
			  reply[] = "HTTP/1.0 200 OK\r\n\r\nhi";
	struct fixture *fx = *state;
	char at_host[64], at_client[64];

	for (int host_first = 0; host_first <= 1; host_first++) {
		int client = client_connect(fx, 0), host = upstream_accept(&fx->up, TIMEOUT_MS);
		struct endpoint eps[2] = {
		    {.fd = client,
		     .out = (const uint8_t *)request,
		     .out_len = strlen(request),
		     .send_after_eof = host_first,
		     .in = (uint8_t *)at_client,
		     .in_cap = sizeof(at_client)},
		    {.fd = host,
		     .out = (const uint8_t *)reply,
		     .out_len = strlen(reply),
		     .send_after_eof = !host_first,
		     .in = (uint8_t *)at_host,
		     .in_cap = sizeof(at_host)},
		};

		assert_true(host >= 0);
		drive(eps, 2, TIMEOUT_MS);
		assert_int_equal(eps[0].error, 0);
		assert_int_equal(eps[1].error, 0);
		assert_int_equal(eps[1].got, strlen(request));
		assert_memory_equal(at_host, request, strlen(request));
		assert_int_equal(eps[0].got, strlen(reply));
		assert_memory_equal(at_client, reply, strlen(reply));
		close(client);
		close(host);
	}
	fixture_stop(fx);
	assert_int_equal(fx->stats.pairs, 0);
	assert_int_equal(fx->stats.accepted, 2);
}

/* A client whose connection the relay resets: ECONNRESET within a second. */
static void expect_reset(struct fixture *fx)
{
	int client = client_connect(fx, 0);
	struct timespec start, end;
	char byte;

	set_timeout(client, 3000);
	clock_gettime(CLOCK_MONOTONIC, &start);
	assert_int_equal(recv(client, &byte, 1, 0), -1);
	assert_int_equal(errno, ECONNRESET);
	clock_gettime(CLOCK_MONOTONIC, &end);
	assert_true(end.tv_sec - start.tv_sec < 2);
	close(client);
}

/* (c) The host side unreachable, at once or after connect() was in progress: the client
 * is reset, not left hanging; the relay serves the next connection. */
static void test_connect_fails(void **state)
{
	struct fixture *fx = *state;

	atomic_store(&fx->up.mode, UP_FAIL);
	expect_reset(fx);
	atomic_store(&fx->up.mode, UP_TCP_REFUSED);
	expect_reset(fx);
	assert_int_equal(atomic_load(&fx->up.connects), 2);
	atomic_store(&fx->up.mode, UP_UNIX);
	round_trip(fx, 4096, 5);
	fixture_stop(fx);
	assert_int_equal(fx->stats.accepted, 3);
	assert_int_equal(fx->stats.connect_failed, 2);
	assert_int_equal(fx->stats.pairs, 0);
}

/* (c') A client that resets mid-connection: the host end sees the connection end, and the
 * pair is gone. */
static void test_client_resets(void **state)
{
	struct fixture *fx = *state;
	struct linger now = {.l_onoff = 1, .l_linger = 0};
	int client = client_connect(fx, 0), host = upstream_accept(&fx->up, TIMEOUT_MS);
	char buf[16];
	ssize_t n;

	assert_true(host >= 0);
	assert_int_equal(send(client, "abc", 3, 0), 3);
	set_timeout(host, 5000);
	assert_int_equal(recv(host, buf, sizeof(buf), MSG_WAITALL), 3);
	assert_int_equal(setsockopt(client, SOL_SOCKET, SO_LINGER, &now, sizeof(now)), 0);
	close(client);
	n = recv(host, buf, sizeof(buf), 0);
	assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
	close(host);
	round_trip(fx, 100, 9);
	fixture_stop(fx);
	assert_int_equal(fx->stats.pairs, 0);
	assert_int_equal(fx->stats.accepted, 2);
}

static uint64_t thread_cpu_ns(pthread_t thread)
{
	clockid_t clock;
	struct timespec ts;

	assert_int_equal(pthread_getcpuclockid(thread, &clock), 0);
	assert_int_equal(clock_gettime(clock, &ts), 0);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#define MANY_CLIENTS 300
#define REPLY_MASK   0x5a5a5a5au

/* The host's side of one (d) connection: the client's 4-byte id and EOF, then the id
 * masked, and the end. */
static void serve_id(int host)
{
	uint32_t id;
	char extra;

	set_timeout(host, TIMEOUT_MS);
	assert_int_equal(recv(host, &id, sizeof(id), MSG_WAITALL), sizeof(id));
	assert_int_equal(recv(host, &extra, 1, 0), 0);
	id ^= REPLY_MASK;
	assert_int_equal(send(host, &id, sizeof(id), MSG_NOSIGNAL), sizeof(id));
	close(host);
}

/* (d) More clients than EGRESS_MAX_PAIRS at once: exactly the cap is relayed while the host
 * holds them, the rest wait in the backlog, and every one is served once pairs end. */
static void test_pair_cap(void **state)
{
	struct fixture *fx = *state;
	int clients[MANY_CLIENTS], hosts[EGRESS_MAX_PAIRS];
	unsigned served = 0;
	uint64_t cpu_before;

	for (uint32_t i = 0; i < MANY_CLIENTS; i++) {
		clients[i] = client_connect(fx, 0);
		assert_int_equal(send(clients[i], &i, sizeof(i), 0), sizeof(i));
		assert_int_equal(shutdown(clients[i], SHUT_WR), 0);
	}
	for (int i = 0; i < EGRESS_MAX_PAIRS; i++) {
		hosts[i] = upstream_accept(&fx->up, TIMEOUT_MS);
		assert_true(hosts[i] >= 0);
	}
	/* At the cap: not one more reaches the host while these are held, and the relay
	 * waits for a pair to end without polling its listeners (readable all along). */
	cpu_before = thread_cpu_ns(fx->thread);
	assert_int_equal(upstream_accept(&fx->up, 500), -1);
	assert_true(thread_cpu_ns(fx->thread) - cpu_before < 50 * 1000 * 1000);
	for (int i = 0; i < EGRESS_MAX_PAIRS; i++)
		serve_id(hosts[i]);
	served = EGRESS_MAX_PAIRS;
	while (served < MANY_CLIENTS) {
		int host = upstream_accept(&fx->up, TIMEOUT_MS);

		assert_true(host >= 0);
		serve_id(host);
		served++;
	}
	for (uint32_t i = 0; i < MANY_CLIENTS; i++) {
		uint32_t reply;
		char extra;

		set_timeout(clients[i], TIMEOUT_MS);
		assert_int_equal(recv(clients[i], &reply, sizeof(reply), MSG_WAITALL),
				 sizeof(reply));
		assert_int_equal(reply, i ^ REPLY_MASK);
		assert_int_equal(recv(clients[i], &extra, 1, 0), 0);
		close(clients[i]);
	}
	fixture_stop(fx);
	assert_int_equal(fx->stats.accepted, MANY_CLIENTS);
	assert_int_equal(fx->stats.pairs_max, EGRESS_MAX_PAIRS);
	assert_int_equal(fx->stats.pairs, 0);
	assert_int_equal(fx->stats.connect_failed, 0);
}

#define FLOOD_BYTES (10 * 1024 * 1024)

/* (e) A client that never reads while the host sends 10 MiB: the relay holds back (it stops
 * reading the host) without spinning, and another pair keeps working meanwhile. */
static void test_slow_reader(void **state)
{
	struct fixture *fx = *state;
	uint8_t *flood = random_bytes(FLOOD_BYTES, 77);
	int client = client_connect(fx, 4096), host = upstream_accept(&fx->up, TIMEOUT_MS);
	size_t sent = 0;
	uint64_t cpu_before, cpu_after;

	assert_true(host >= 0);
	assert_int_equal(fcntl(host, F_SETFL, O_NONBLOCK), 0);
	/* Send until nothing moves for half a second. */
	for (;;) {
		struct pollfd pfd = {.fd = host, .events = POLLOUT};
		ssize_t n;

		if (sent == FLOOD_BYTES || poll(&pfd, 1, 500) == 0)
			break;
		n = send(host, flood + sent, FLOOD_BYTES - sent, MSG_NOSIGNAL);
		assert_true(n > 0 || errno == EAGAIN);
		if (n > 0)
			sent += (size_t)n;
	}
	assert_true(sent < FLOOD_BYTES);
	assert_true(sent >= EGRESS_BUF_BYTES);

	cpu_before = thread_cpu_ns(fx->thread);
	usleep(1000 * 1000);
	cpu_after = thread_cpu_ns(fx->thread);
	/* A relay polling a full buffer or an unwritable socket burns the whole second. */
	assert_true(cpu_after - cpu_before < 50 * 1000 * 1000);

	round_trip(fx, 256 * 1024, 11);

	/* The slow client reads now: every byte arrives, in order. */
	{
		uint8_t *got = malloc(sent);
		size_t have = 0;

		assert_non_null(got);
		set_timeout(client, TIMEOUT_MS);
		while (have < sent) {
			ssize_t n = recv(client, got + have, sent - have, 0);

			assert_true(n > 0);
			have += (size_t)n;
		}
		assert_memory_equal(got, flood, sent);
		free(got);
	}
	close(client);
	close(host);
	free(flood);
	fixture_stop(fx);
	assert_int_equal(fx->stats.accepted, 2);
}

/* ---- /clawvm/egress ---- */

static void expect_parse_refused(char **strings, size_t count, const char *want)
{
	struct egress_ports ports = {.n = 99};
	char err[256] = "";

	assert_int_equal(egress_parse(strings, count, &ports, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, want);
	assert_int_equal(ports.n, 0);
}

static void test_parse(void **state)
{
	char *good[] = {"3128", "3129", "1", "65535"};
	char *two[] = {"3128", "3128"};
	char *many[CLAWVM_EGRESS_MAX_PORTS + 1];
	char names[CLAWVM_EGRESS_MAX_PORTS + 1][8];
	struct egress_ports ports;
	char err[256];

	(void)state;
	assert_int_equal(egress_parse(good, 4, &ports, err, sizeof(err)), 0);
	assert_int_equal(ports.n, 4);
	assert_int_equal(ports.port[0], 3128);
	assert_int_equal(ports.port[1], 3129);
	assert_int_equal(ports.port[2], 1);
	assert_int_equal(ports.port[3], 65535);

	expect_parse_refused((char *[]){"0"}, 1, "record 0: `0` is not a port (1 to 65535)");
	expect_parse_refused((char *[]){"3128", "65536"}, 2,
			     "record 1: `65536` is not a port (1 to 65535)");
	expect_parse_refused((char *[]){"abc"}, 1, "record 0: `abc` is not a port (1 to 65535)");
	expect_parse_refused((char *[]){""}, 1, "record 0: `` is not a port (1 to 65535)");
	expect_parse_refused((char *[]){"03128"}, 1,
			     "record 0: `03128` is not a port (1 to 65535)");
	expect_parse_refused((char *[]){"-1"}, 1, "record 0: `-1` is not a port (1 to 65535)");
	expect_parse_refused((char *[]){"+80"}, 1, "record 0: `+80` is not a port (1 to 65535)");
	expect_parse_refused((char *[]){"80 "}, 1, "record 0: `80 ` is not a port (1 to 65535)");
	expect_parse_refused((char *[]){"99999999999999999999"}, 1,
			     "record 0: `9999999999999999` is not a port (1 to 65535)");
	expect_parse_refused(two, 2, "record 1: port 3128 given twice");
	expect_parse_refused(NULL, 0, "0 ports: want 1 to 16");

	for (int i = 0; i <= CLAWVM_EGRESS_MAX_PORTS; i++) {
		snprintf(names[i], sizeof(names[i]), "%d", 3128 + i);
		many[i] = names[i];
	}
	assert_int_equal(egress_parse(many, CLAWVM_EGRESS_MAX_PORTS, &ports, err, sizeof(err)), 0);
	assert_int_equal(ports.n, CLAWVM_EGRESS_MAX_PORTS);
	assert_int_equal(ports.port[CLAWVM_EGRESS_MAX_PORTS - 1], 3128 + 15);
	expect_parse_refused(many, CLAWVM_EGRESS_MAX_PORTS + 1, "17 ports: want 1 to 16");
}

/* Writes len bytes to a fresh file and runs egress_read on it. */
static int read_file(const void *content, size_t len, struct egress_ports *ports, char *err,
		     size_t err_len)
{
	char path[] = "/tmp/clawvm-test-egress-XXXXXX";
	int fd = mkstemp(path), ret;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, len), (ssize_t)len);
	close(fd);
	ret = egress_read(path, ports, err, err_len);
	unlink(path);
	return ret;
}

static void test_read_file(void **state)
{
	static const char good[] = "3128\0003129"; /* the final NUL is sizeof's */
	struct egress_ports ports;
	char err[512], *big;

	(void)state;
	assert_int_equal(read_file(good, sizeof(good), &ports, err, sizeof(err)), 0);
	assert_int_equal(ports.n, 2);
	assert_int_equal(ports.port[0], 3128);
	assert_int_equal(ports.port[1], 3129);

	assert_int_equal(egress_read("/nonexistent/clawvm/egress", &ports, err, sizeof(err)),
			 -ENOENT);
	assert_int_equal(ports.n, 0);
	/* No final NUL; nothing at all; a bad record. */
	assert_int_equal(read_file("3128", 4, &ports, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "does not end in a NUL byte"));
	assert_int_equal(read_file("", 0, &ports, err, sizeof(err)), -ENODATA);
	assert_int_equal(read_file("3128\0abc", 9, &ports, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "record 1: `abc` is not a port"));
	assert_int_equal(ports.n, 0);
	/* Bigger than any valid file could be. */
	big = malloc(EGRESS_FILE_MAX_BYTES + 1);
	assert_non_null(big);
	memset(big, '1', EGRESS_FILE_MAX_BYTES);
	big[EGRESS_FILE_MAX_BYTES] = '\0';
	assert_int_equal(read_file(big, EGRESS_FILE_MAX_BYTES + 1, &ports, err, sizeof(err)),
			 -E2BIG);
	free(big);
}

/* ---- in a network namespace of its own: loopback, and the relay process ---- */

/* Runs fn in a child in a new network namespace (lo down, nothing listening) and expects
 * it to return 0 (another number says which step failed); skips when this machine does not
 * let us make one. */
static void in_netns(int (*fn)(void))
{
	int wstatus;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		if (unshare(CLONE_NEWNET) < 0 && unshare(CLONE_NEWUSER | CLONE_NEWNET) < 0)
			_exit(200);
		_exit(fn());
	}
	assert_int_equal(waitpid(pid, &wstatus, 0), pid);
	assert_true(WIFEXITED(wstatus));
	if (WEXITSTATUS(wstatus) == 200)
		skip();
	assert_int_equal(WEXITSTATUS(wstatus), 0);
}

static int tcp_to(uint16_t port)
{
	struct sockaddr_in addr = {.sin_family = AF_INET,
				   .sin_port = htons(port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int saved = errno;

		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

static int loopback_check(void)
{
	struct sockaddr_in addr = {.sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(addr);
	char err[256];
	int lfd, fd;

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(lfd, 1) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&addr, &len) < 0)
		return 1;
	/* Down: a listener binds, but nothing reaches it. */
	fd = tcp_to(ntohs(addr.sin_port));
	if (fd >= 0 || errno != ENETUNREACH)
		return 2;
	if (egress_loopback_up(err, sizeof(err)) < 0)
		return 3;
	if (egress_loopback_up(err, sizeof(err)) < 0) /* already up: fine */
		return 4;
	fd = tcp_to(ntohs(addr.sin_port));
	if (fd < 0)
		return 5;
	close(fd);
	close(lfd);
	return 0;
}

static void test_loopback_up(void **state)
{
	(void)state;
	in_netns(loopback_check);
}

/* The field of /proc/PID/status named `name` (such as "SigBlk:"), in out. */
static int proc_status(pid_t pid, const char *name, char *out, size_t out_len)
{
	char path[64], line[256];
	FILE *f;
	int ret = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, name, strlen(name)) == 0) {
			snprintf(out, out_len, "%s",
				 line + strlen(name) + strspn(line + strlen(name), "\t "));
			out[strcspn(out, "\n")] = '\0';
			ret = 0;
			break;
		}
	}
	fclose(f);
	return ret;
}

/* As PID 1 starts it: every signal blocked here, the relay process unblocks them. */
static int relay_process_steps(pid_t *relay)
{
	struct egress_ports ports = {.port = {3128, 3129}, .n = 2};
	char err[256], field[64];
	sigset_t all;
	pid_t pid, busy_pid;
	int fd, wstatus, busy;
	char byte;

	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);
	if (egress_loopback_up(err, sizeof(err)) < 0)
		return 1;
	pid = *relay = egress_start(&ports, err, sizeof(err));
	if (pid <= 0)
		return 2;
	/* Listening at once, on both ports. */
	fd = tcp_to(3129);
	if (fd < 0)
		return 3;
	/* No host on vsock here: the client is reset (now, or once vsock gives up). */
	{
		struct timeval tv = {.tv_sec = 5};

		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (recv(fd, &byte, 1, 0) != -1 || errno != ECONNRESET)
			return 4;
		close(fd);
	}
	if (proc_status(pid, "Name:", field, sizeof(field)) < 0 || strcmp(field, "clawvm-egress"))
		return 5;
	if (proc_status(pid, "SigBlk:", field, sizeof(field)) < 0 ||
	    strcmp(field, "0000000000000000"))
		return 6;
	/* SIGPIPE (13) ignored, nothing else. */
	if (proc_status(pid, "SigIgn:", field, sizeof(field)) < 0 ||
	    strcmp(field, "0000000000001000"))
		return 7;
	if (getsid(pid) != pid || getpgid(pid) != pid)
		return 8;

	/* A port taken: refused, with a message, and nothing left to reap. */
	busy = socket(AF_INET, SOCK_STREAM, 0);
	{
		struct sockaddr_in addr = {.sin_family = AF_INET,
					   .sin_port = htons(4000),
					   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

		if (bind(busy, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(busy, 1) < 0)
			return 9;
	}
	ports = (struct egress_ports){.port = {4001, 4000}, .n = 2};
	busy_pid = egress_start(&ports, err, sizeof(err));
	if (busy_pid != -EADDRINUSE ||
	    strcmp(err, "listen on TCP port 4000: Address already in use"))
		return 10;

	/* Default dispositions: SIGTERM ends it. */
	if (kill(pid, SIGTERM) < 0 || waitpid(pid, &wstatus, 0) != pid)
		return 11;
	*relay = 0;
	if (!WIFSIGNALED(wstatus) || WTERMSIG(wstatus) != SIGTERM)
		return 12;
	if (waitpid(-1, NULL, WNOHANG) != -1 || errno != ECHILD)
		return 13;
	return 0;
}

/* The relay has a session of its own: a failed step must not leave it running. */
static int relay_process_check(void)
{
	pid_t relay = 0;
	int ret = relay_process_steps(&relay);

	if (relay > 0) {
		kill(relay, SIGKILL);
		waitpid(relay, NULL, 0);
	}
	return ret;
}

static void test_relay_process(void **state)
{
	(void)state;
	in_netns(relay_process_check);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_mib_each_way, fixture_setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_half_close, fixture_setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_connect_fails, fixture_setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_client_resets, fixture_setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_pair_cap, fixture_setup, fixture_teardown),
	    cmocka_unit_test_setup_teardown(test_slow_reader, fixture_setup, fixture_teardown),
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_read_file),
	    cmocka_unit_test(test_loopback_up),
	    cmocka_unit_test(test_relay_process),
	};
	struct rlimit lim;

	/* 300 clients, their relayed pairs and the host's ends. */
	if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < 4096) {
		lim.rlim_cur = lim.rlim_max < 4096 ? lim.rlim_max : 4096;
		setrlimit(RLIMIT_NOFILE, &lim);
	}
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

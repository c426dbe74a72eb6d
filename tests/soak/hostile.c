/* hostile: the guest end of the soak test (tests/soak/run). It runs in the sandbox as root
 * and attacks the VMM through its devices, one phase per run, each bounded in time:
 *
 *   hostile lookups DIR N HOLD      stat and open DIR/f00000 .. N-1 and keep them open for
 *                                   HOLD seconds: FUSE inodes and handles the VMM must hold
 *                                   (no FORGET, no RELEASE) until its descriptor budget is
 *                                   spent. Prints how many opened and the first error.
 *   hostile vsock-flood SECONDS PORT HOLD_PORT HOLD
 *                                   rounds of as many AF_VSOCK connections to the host as it
 *                                   can open, to PORT (where the host listens) and to ports
 *                                   nobody listens on, closed abruptly; meanwhile accepts
 *                                   host connections on HOLD_PORT and never reads them, and
 *                                   holds them HOLD seconds more once the rounds are over
 *   hostile mmio SECONDS [SEED [SPARE]]
 *                                   drives the spare devices (virtio-rng, and the virtio-fs
 *                                   device mounted at SPARE, default /spare) through /dev/mem
 *                                   with hostile register writes and rings (hostile_mmio.c);
 *                                   SEED (default 1) fixes every random choice
 *   hostile vsock-reset PORT N      opens N connections to the host's PORT, then resets the
 *                                   vsock device under them and the other live connections
 *                                   (the exec session of this very command is one); the
 *                                   last phase, since the guest loses its vsock with it
 *
 * Results are single lines on stdout that tests/soak/run reads; a phase that cannot run at
 * all (no /dev/mem, no device) says why on stderr and exits 1. */
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hostile.h"

uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void raise_nofile(unsigned want)
{
	struct rlimit lim = {want, want};

	if (setrlimit(RLIMIT_NOFILE, &lim) < 0)
		fprintf(stderr, "hostile: cannot raise the open-file limit to %u: %m\n", want);
}

const char *errno_name(int err)
{
	const char *name = err ? strerrorname_np(err) : "none";

	return name ? name : "unknown";
}

void rng_seed(struct rng64 *r, uint64_t seed)
{
	r->state = seed ? seed : 0x9e3779b97f4a7c15ULL; /* xorshift never leaves 0 */
}

uint64_t rng_next(struct rng64 *r)
{
	r->state ^= r->state >> 12;
	r->state ^= r->state << 25;
	r->state ^= r->state >> 27;
	return r->state * 0x2545f4914f6cdd1dULL;
}

uint32_t rng_below(struct rng64 *r, uint32_t n)
{
	return (uint32_t)((rng_next(r) >> 32) % n);
}

/* --- lookups ----------------------------------------------------------------------------- */

/* Each file costs the VMM two descriptors: the inode (a LOOKUP the guest never FORGETs while
 * the dentry is cached) and the open handle (no RELEASE while we hold the fd). Going on
 * after the first failure keeps asking, as a hostile guest would. */
static int phase_lookups(const char *dir, unsigned n, unsigned hold_s)
{
	unsigned opened = 0;
	int first_err = 0;
	char path[4096];

	raise_nofile(n + 64);
	for (unsigned i = 0; i < n; i++) {
		struct stat st;
		int fd = -1;

		snprintf(path, sizeof(path), "%s/f%05u", dir, i);
		if (stat(path, &st) == 0)
			fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			if (!first_err)
				first_err = errno;
			continue;
		}
		opened++; /* kept open on purpose until we exit */
	}
	printf("lookups: opened %u of %u; first error %s\n", opened, n, errno_name(first_err));
	printf("lookups: holding them for %u s\n", hold_s);
	fflush(stdout);
	sleep(hold_s);
	return 0;
}

/* --- vsock-flood ------------------------------------------------------------------------- */

#define FLOOD_PER_ROUND	    1500 /* beyond the VMM's connection cap (1024) */
#define FLOOD_DEAD_PORT	    40000
#define FLOOD_CONNECT_WAIT  3000 /* ms for a round's connects to finish */
#define FLOOD_ROUND_SECONDS 1

struct flood_stats {
	unsigned rounds, opened, connected, reset, timed_out, other;
	int other_err;
};

/* Starts a non-blocking connect to the host's `port`; -1 if no socket could be made. */
static int flood_connect(unsigned port)
{
	struct sockaddr_vm addr = {
	    .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_HOST, .svm_port = port};
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

static void flood_tally(struct flood_stats *st, int err)
{
	if (err == 0) {
		st->connected++;
	} else if (err == ECONNRESET || err == ECONNREFUSED) {
		st->reset++;
	} else if (err == ETIMEDOUT) {
		st->timed_out++;
	} else {
		st->other++;
		if (!st->other_err)
			st->other_err = err;
	}
}

/* One round: two of three connections to the listening port (they stay open in the VMM
 * and on the host until we close them), one to a dead port (the VMM answers RST). All are
 * then closed at once, connected or not, with a byte or two sent on some and none read. */
static void flood_round(unsigned listen_port, struct flood_stats *st)
{
	static struct pollfd pfd[FLOOD_PER_ROUND];
	unsigned n = 0, pending;
	uint64_t until;

	for (unsigned i = 0; i < FLOOD_PER_ROUND; i++) {
		unsigned port = i % 3 == 2 ? FLOOD_DEAD_PORT + i : listen_port;
		int fd = flood_connect(port);

		if (fd < 0) {
			flood_tally(st, errno);
			continue;
		}
		pfd[n++] = (struct pollfd){.fd = fd, .events = POLLOUT};
	}
	st->opened += n;
	pending = n;
	until = now_ms() + FLOOD_CONNECT_WAIT;
	while (pending && now_ms() < until) {
		if (poll(pfd, n, 100) <= 0)
			continue;
		for (unsigned i = 0; i < n; i++) {
			int err = 0;
			socklen_t len = sizeof(err);

			if (pfd[i].fd < 0 || !pfd[i].revents)
				continue;
			getsockopt(pfd[i].fd, SOL_SOCKET, SO_ERROR, &err, &len);
			flood_tally(st, err);
			if (err == 0 && i % 2 && write(pfd[i].fd, "x", 1) < 0) {
				/* The host may have gone already: that is the point. */
			}
			pfd[i].events = 0;
			pfd[i].revents = 0;
			pfd[i].fd = -pfd[i].fd - 1; /* poll skips negative fds; keep it for close */
			pending--;
		}
	}
	st->timed_out += pending;
	for (unsigned i = 0; i < n; i++)
		close(pfd[i].fd < 0 ? -pfd[i].fd - 1 : pfd[i].fd);
	st->rounds++;
}

/* A guest port that accepts host connections and never reads them. The host's data stops
 * at our credit (the guest's 256 KiB receive buffer); once the host closes, the VMM holds a
 * host socket that has hung up with data it may not pass on yet. A VMM that waits on such a
 * socket with level-triggered epoll spins for as long as we hold it. */
#define HOLD_MAX 256

struct held {
	int listener;
	int fd[HOLD_MAX];
	unsigned n;
};

static void hold_listen(struct held *h, unsigned port)
{
	struct sockaddr_vm addr = {
	    .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};

	h->n = 0;
	h->listener = socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (h->listener < 0 || bind(h->listener, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    listen(h->listener, 64) < 0)
		fprintf(stderr, "hostile: cannot listen on vsock port %u: %m\n", port);
}

static void hold_accept(struct held *h)
{
	int fd;

	while (h->listener >= 0 && h->n < HOLD_MAX &&
	       (fd = accept4(h->listener, NULL, NULL, SOCK_CLOEXEC)) >= 0)
		h->fd[h->n++] = fd; /* never read */
}

static int phase_vsock_flood(unsigned seconds, unsigned listen_port, unsigned hold_port,
			     unsigned hold_s)
{
	struct flood_stats st = {0};
	struct held held;
	uint64_t end = now_ms() + (uint64_t)seconds * 1000;

	raise_nofile(FLOOD_PER_ROUND + HOLD_MAX + 64);
	hold_listen(&held, hold_port);
	while (now_ms() < end) {
		flood_round(listen_port, &st);
		hold_accept(&held);
		sleep(FLOOD_ROUND_SECONDS); /* let the closes reach the VMM before the next burst */
	}
	hold_accept(&held);
	printf("vsock-flood: %u rounds, %u sockets, %u connected, %u reset, %u timed out, %u other "
	       "(first %s)\n",
	       st.rounds, st.opened, st.connected, st.reset, st.timed_out, st.other,
	       errno_name(st.other_err));
	printf("vsock-flood: holding %u unread host connections for %u s\n", held.n, hold_s);
	fflush(stdout);
	sleep(hold_s);
	return 0;
}

/* --- main -------------------------------------------------------------------------------- */

static unsigned arg_uint(const char *s, const char *what)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || end == s || *end || v > 0xffffffffUL) {
		fprintf(stderr, "hostile: %s: not a number: '%s'\n", what, s);
		exit(2);
	}
	return (unsigned)v;
}

static int usage(void)
{
	fprintf(stderr, "usage: hostile lookups DIR N HOLD_SECONDS\n"
			"       hostile vsock-flood SECONDS PORT HOLD_PORT HOLD_SECONDS\n"
			"       hostile mmio SECONDS [SEED [SPARE_MOUNT]]\n"
			"       hostile vsock-reset PORT N\n");
	return 2;
}

int main(int argc, char **argv)
{
	/* Our results are read line by line through a pipe. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 5 && !strcmp(argv[1], "lookups"))
		return phase_lookups(argv[2], arg_uint(argv[3], "N"), arg_uint(argv[4], "HOLD"));
	if (argc == 6 && !strcmp(argv[1], "vsock-flood"))
		return phase_vsock_flood(arg_uint(argv[2], "SECONDS"), arg_uint(argv[3], "PORT"),
					 arg_uint(argv[4], "HOLD_PORT"), arg_uint(argv[5], "HOLD"));
	if (argc >= 3 && argc <= 5 && !strcmp(argv[1], "mmio"))
		return phase_mmio(arg_uint(argv[2], "SECONDS"),
				  argc > 3 ? arg_uint(argv[3], "SEED") : MMIO_DEFAULT_SEED,
				  argc > 4 ? argv[4] : MMIO_DEFAULT_SPARE);
	if (argc == 4 && !strcmp(argv[1], "vsock-reset"))
		return phase_vsock_reset(arg_uint(argv[2], "PORT"), arg_uint(argv[3], "N"));
	return usage();
}

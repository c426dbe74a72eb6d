/* uds-flood: the host side of the soak test's vsock floods (tests/soak/run).
 *
 *   uds-flood listen PATH SECONDS        listen on the Unix socket PATH (what a guest
 *                                        connection to host port P reaches, PATH being
 *                                        <--vsock-uds>_P), accept everything, read and drop
 *                                        what comes, hold each until its peer closes
 *   uds-flood connect UDS SECONDS N      rounds of N clients of clawvm's socket UDS at once,
 *                                        each writing `CONNECT <port>\n` for a guest port
 *                                        nobody listens on; half close at once, the others
 *                                        once the VMM closes or after a second
 *   uds-flood stuff UDS PORT N           N clients, one after the other, of the guest's PORT
 *                                        (where it accepts and never reads): each writes
 *                                        until the guest's credit and the socket buffers are
 *                                        full, then closes with its data still unread
 *
 * Each prints one line of counts at the end. One process and poll(): under the emulated
 * test host, a process per connection (socat with fork) would cost more than the flood. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_FDS	       8192
#define DEAD_PORT_BASE 50000
#define CLIENT_WAIT_MS 1000

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int unix_addr(const char *path, struct sockaddr_un *addr)
{
	*addr = (struct sockaddr_un){.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(addr->sun_path)) {
		fprintf(stderr, "uds-flood: path too long: %s\n", path);
		return -1;
	}
	strcpy(addr->sun_path, path);
	return 0;
}

static void raise_nofile(void)
{
	struct rlimit lim = {MAX_FDS + 64, MAX_FDS + 64};

	if (setrlimit(RLIMIT_NOFILE, &lim) < 0)
		fprintf(stderr, "uds-flood: cannot raise the open-file limit: %m\n");
}

static int flood_listen(const char *path, unsigned seconds)
{
	static struct pollfd pfd[MAX_FDS];
	static char sink[65536];
	struct sockaddr_un addr;
	unsigned n = 1, most = 0;
	unsigned long accepted = 0;
	uint64_t end = now_ms() + seconds * 1000ULL;

	raise_nofile();
	if (unix_addr(path, &addr) < 0)
		return 1;
	unlink(path); /* left by an earlier listener that was killed */
	pfd[0].fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	pfd[0].events = POLLIN;
	if (pfd[0].fd < 0 || bind(pfd[0].fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    listen(pfd[0].fd, 4096) < 0) {
		fprintf(stderr, "uds-flood: listen on %s: %m\n", path);
		return 1;
	}
	while (now_ms() < end) {
		if (poll(pfd, n, 200) <= 0)
			continue;
		for (unsigned i = n; i-- > 1;) {
			ssize_t got;

			if (!pfd[i].revents)
				continue;
			got = read(pfd[i].fd, sink, sizeof(sink));
			if (got > 0 || (got < 0 && errno == EAGAIN))
				continue;
			close(pfd[i].fd); /* the peer is gone: so is our end */
			pfd[i] = pfd[--n];
		}
		while ((pfd[0].revents & POLLIN) && n < MAX_FDS) {
			int fd = accept4(pfd[0].fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

			if (fd < 0)
				break;
			pfd[n++] = (struct pollfd){.fd = fd, .events = POLLIN};
			accepted++;
		}
		if (n - 1 > most)
			most = n - 1;
	}
	printf("uds-flood listen: %lu accepted, at most %u at once\n", accepted, most);
	unlink(path);
	return 0;
}

/* One round of `clients` connections; counts how each ended. */
struct connect_stats {
	unsigned long clients, refused, ours, closed_by_vmm, answered;
};

static void connect_round(const struct sockaddr_un *addr, unsigned clients,
			  struct connect_stats *st)
{
	static struct pollfd pfd[MAX_FDS];
	unsigned n = 0;
	uint64_t until;

	for (unsigned i = 0; i < clients && i < MAX_FDS; i++) {
		char line[32];
		/* Non-blocking: a full backlog (or a VMM that stopped accepting) is counted,
		 * not waited for. */
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		int len = snprintf(line, sizeof(line), "CONNECT %u\n", DEAD_PORT_BASE + i);

		st->clients++;
		if (fd < 0 || connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) < 0 ||
		    write(fd, line, (size_t)len) != len) {
			st->refused++; /* the VMM's backlog is full, or it hung up at once */
			if (fd >= 0)
				close(fd);
			continue;
		}
		if (i % 2) {
			close(fd); /* before the guest could answer */
			st->ours++;
			continue;
		}
		pfd[n++] = (struct pollfd){.fd = fd, .events = POLLIN};
	}
	until = now_ms() + CLIENT_WAIT_MS;
	while (now_ms() < until && poll(pfd, n, 50) >= 0) {
		for (unsigned i = 0; i < n; i++) {
			char reply[64];
			ssize_t got;

			if (pfd[i].fd < 0 || !pfd[i].revents)
				continue;
			got = read(pfd[i].fd, reply, sizeof(reply));
			if (got < 0 && errno == EAGAIN)
				continue;
			if (got > 0)
				st->answered++; /* "OK": somebody listened after all */
			else
				st->closed_by_vmm++;
			close(pfd[i].fd);
			pfd[i].fd = -1;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		if (pfd[i].fd >= 0) {
			close(pfd[i].fd);
			st->ours++;
		}
	}
}

static int flood_connect(const char *uds, unsigned seconds, unsigned clients)
{
	struct connect_stats st = {0};
	struct sockaddr_un addr;
	uint64_t end = now_ms() + seconds * 1000ULL;

	raise_nofile();
	if (unix_addr(uds, &addr) < 0)
		return 1;
	while (now_ms() < end)
		connect_round(&addr, clients, &st);
	printf("uds-flood connect: %lu clients, %lu refused, %lu closed by the VMM, %lu closed by "
	       "us, %lu answered\n",
	       st.clients, st.refused, st.closed_by_vmm, st.ours, st.answered);
	return 0;
}

/* Reads the handshake's answer line ("OK <port>\n") within `ms`; 0 if it came. */
static int read_ok(int fd, unsigned ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char line[64];
	size_t len = 0;
	uint64_t until = now_ms() + ms;

	while (len < sizeof(line) && now_ms() < until && poll(&p, 1, 100) >= 0) {
		ssize_t got;

		if (!p.revents)
			continue;
		got = read(fd, line + len, 1); /* one byte at a time: nothing past the line */
		if (got <= 0)
			return -1;
		if (line[len++] == '\n')
			return strncmp(line, "OK ", 3) == 0 ? 0 : -1;
	}
	return -1;
}

static int flood_stuff(const char *uds, unsigned port, unsigned clients)
{
	static char chunk[65536];
	struct sockaddr_un addr;
	unsigned connected = 0;
	unsigned long long bytes = 0;

	if (unix_addr(uds, &addr) < 0)
		return 1;
	memset(chunk, 's', sizeof(chunk));
	for (unsigned i = 0; i < clients; i++) {
		char line[32];
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int len = snprintf(line, sizeof(line), "CONNECT %u\n", port);
		uint64_t stalled_since = 0;

		if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
		    write(fd, line, (size_t)len) != len || read_ok(fd, 5000) < 0) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		connected++;
		fcntl(fd, F_SETFL, O_NONBLOCK);
		/* Until nothing more goes for half a second: the guest's credit is spent and
		 * the socket buffers between us are full. */
		while (!stalled_since || now_ms() - stalled_since < 500) {
			ssize_t n = write(fd, chunk, sizeof(chunk));

			if (n > 0) {
				bytes += (unsigned long long)n;
				stalled_since = 0;
			} else if (n < 0 && errno == EAGAIN) {
				if (!stalled_since)
					stalled_since = now_ms();
				usleep(20000);
			} else {
				break;
			}
		}
		close(fd);
	}
	printf("uds-flood stuff: %u of %u clients connected, %llu bytes written, then closed\n",
	       connected, clients, bytes);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "listen"))
		return flood_listen(argv[2], (unsigned)atoi(argv[3]));
	if (argc == 5 && !strcmp(argv[1], "connect"))
		return flood_connect(argv[2], (unsigned)atoi(argv[3]), (unsigned)atoi(argv[4]));
	if (argc == 5 && !strcmp(argv[1], "stuff"))
		return flood_stuff(argv[2], (unsigned)atoi(argv[3]), (unsigned)atoi(argv[4]));
	fprintf(stderr, "usage: uds-flood listen PATH SECONDS\n"
			"       uds-flood connect UDS SECONDS CLIENTS\n"
			"       uds-flood stuff UDS PORT CLIENTS\n");
	return 2;
}

/* exec-vsock: runs one command as the `main` exec through guest-init's exec channel over
 * this machine's AF_VSOCK, as clawvm does through its own device: on the machine's own
 * vsock (the loopback transport, CID 1; the PID-1 test, tests/guest-init/pid1) or in a
 * QEMU guest with vhost-vsock (its CID; the benchmarks' reference runs).
 *
 *   exec-vsock [--cid CID] [--wait SECONDS] -- COMMAND [ARG...]
 *   exec-vsock --probe     exits 0 if this machine's vsock reaches its own ports at all
 *
 * Connects to port CLAWVM_EXEC_PORT, trying again until guest-init listens (at most
 * --wait seconds, default 20), relays stdin, stdout and stderr, passes SIGINT, SIGTERM and
 * SIGHUP on, and exits with the command's status; 125 with a message if it cannot. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

#include "api/guest_abi.h"
#include "vmm/exec_client.h"

#define RETRY_NS (50 * 1000 * 1000)

static int connect_exec(unsigned cid, unsigned wait_s)
{
	const struct sockaddr_vm addr = {
	    .svm_family = AF_VSOCK,
	    .svm_cid = cid,
	    .svm_port = CLAWVM_EXEC_PORT,
	};
	const struct timespec pause = {.tv_nsec = RETRY_NS};
	unsigned long tries = (unsigned long)wait_s * (1000000000 / RETRY_NS);

	for (unsigned long i = 0;; i++) {
		int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0)
			return -errno;
		if (connect(fd, (const struct sockaddr *)&addr, sizeof(addr)) == 0)
			return fd;
		close(fd);
		/* Nobody listens yet (refused), the listener or the guest's driver is still
		 * coming up. */
		if ((errno != ECONNREFUSED && errno != ECONNRESET && errno != ETIMEDOUT &&
		     errno != ENODEV) ||
		    i >= tries)
			return -errno;
		nanosleep(&pause, NULL);
	}
}

/* A connect to a port nobody listens on: refused at once with a loopback transport, else
 * it fails otherwise (no transport: ENODEV, or a timeout). */
static int probe(void)
{
	const struct sockaddr_vm addr = {
	    .svm_family = AF_VSOCK,
	    .svm_cid = VMADDR_CID_LOCAL,
	    .svm_port = CLAWVM_EXEC_PORT + 1,
	};
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return 1;
	if (connect(fd, (const struct sockaddr *)&addr, sizeof(addr)) == 0 ||
	    errno == ECONNREFUSED || errno == ECONNRESET) {
		close(fd);
		return 0;
	}
	close(fd);
	return 1;
}

int main(int argc, char **argv)
{
	struct exec_request req = {.flags = EXEC_FLAG_MAIN};
	unsigned cid = VMADDR_CID_LOCAL, wait_s = 20;
	int first = 1, fd, sfd, ret, status;
	sigset_t mask;

	if (argc == 2 && strcmp(argv[1], "--probe") == 0)
		return probe();
	while (first + 1 < argc &&
	       (strcmp(argv[first], "--wait") == 0 || strcmp(argv[first], "--cid") == 0)) {
		unsigned value = (unsigned)strtoul(argv[first + 1], NULL, 10);

		if (argv[first][2] == 'w')
			wait_s = value;
		else
			cid = value;
		first += 2;
	}
	if (first < argc && strcmp(argv[first], "--") == 0)
		first++;
	if (first >= argc) {
		fprintf(stderr,
			"usage: exec-vsock [--cid CID] [--wait SECONDS] -- COMMAND [ARG...]\n");
		return 2;
	}
	req.argc = (uint32_t)(argc - first);
	req.argv = (const char **)(argv + first);

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);

	fd = connect_exec(cid, wait_s);
	if (fd < 0) {
		fprintf(stderr, "exec-vsock: cannot connect to vsock %u:%u: %s\n", cid,
			CLAWVM_EXEC_PORT, strerror(-fd));
		return 125;
	}
	ret = exec_client_run_signals(fd, &req, STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO, sfd,
				      &status);
	close(fd);
	if (ret < 0) {
		fprintf(stderr, "exec-vsock: the exec channel failed: %s\n", strerror(-ret));
		return 125;
	}
	return status;
}

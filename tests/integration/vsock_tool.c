/* vsock-tool: the guest end of the vsock integration tests (busybox has no AF_VSOCK).
 *   vsock-tool listen PORT    accept one connection on PORT, echo every byte back, close
 *   vsock-tool connect PORT   connect to the host (CID 2) PORT, send stdin, shut down the
 *                             sending side, copy what comes back to stdout */
#include <errno.h>
#include <linux/vm_sockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Copies in -> out until EOF; returns 0, or -1 on an error. */
static int copy(int in, int out)
{
	static char buf[65536];
	ssize_t n;

	while ((n = read(in, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || write_all(out, buf, (size_t)n) < 0)
			return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_vm addr = {.svm_family = AF_VSOCK};
	int fd, conn;

	if (argc != 3) {
		fprintf(stderr, "usage: vsock-tool listen|connect PORT\n");
		return 2;
	}
	addr.svm_port = (unsigned)strtoul(argv[2], NULL, 10);
	fd = socket(AF_VSOCK, SOCK_STREAM, 0);
	if (fd < 0) {
		perror("vsock-tool: socket");
		return 1;
	}
	if (!strcmp(argv[1], "listen")) {
		addr.svm_cid = VMADDR_CID_ANY;
		if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 1) < 0) {
			perror("vsock-tool: listen");
			return 1;
		}
		fprintf(stderr, "listening\n");
		conn = accept(fd, NULL, NULL);
		if (conn < 0) {
			perror("vsock-tool: accept");
			return 1;
		}
		return copy(conn, conn) < 0 || close(conn) < 0;
	}
	addr.svm_cid = VMADDR_CID_HOST;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		perror("vsock-tool: connect");
		return 1;
	}
	if (copy(STDIN_FILENO, fd) < 0 || shutdown(fd, SHUT_WR) < 0) {
		perror("vsock-tool: send");
		return 1;
	}
	if (copy(fd, STDOUT_FILENO) < 0) {
		perror("vsock-tool: receive");
		return 1;
	}
	return 0;
}

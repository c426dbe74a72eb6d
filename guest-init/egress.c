/* Egress in the guest (egress.h), all but the relay loop (egress_relay.c): /clawvm/egress
 * checked, loopback brought up, vsock as the way to the host, and the relay process that
 * guest-init starts. */
#include "egress.h"

#include "command.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- /clawvm/egress ---- */

/* Decimal digits only, no sign, no leading zero, 1 to 65535: one spelling per port. */
static bool parse_port(const char *s, uint16_t *port)
{
	unsigned long value = 0;
	size_t len = strlen(s);

	if (len == 0 || len > 5 || s[0] == '0')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		value = value * 10 + (unsigned long)(s[i] - '0');
	}
	if (value > 65535)
		return false;
	*port = (uint16_t)value;
	return true;
}

int egress_parse(char *const *strings, size_t count, struct egress_ports *out, char *err,
		 size_t err_len)
{
	out->n = 0;
	if (count == 0 || count > CLAWVM_EGRESS_MAX_PORTS) {
		snprintf(err, err_len, "%zu ports: want 1 to %d", count, CLAWVM_EGRESS_MAX_PORTS);
		return -EINVAL;
	}
	for (size_t i = 0; i < count; i++) {
		uint16_t port;

		/* %.16s: the record is the VMM's, but a broken one must not flood the console. */
		if (!parse_port(strings[i], &port)) {
			snprintf(err, err_len, "record %zu: `%.16s` is not a port (1 to 65535)", i,
				 strings[i]);
			out->n = 0;
			return -EINVAL;
		}
		for (unsigned j = 0; j < out->n; j++) {
			if (out->port[j] == port) {
				snprintf(err, err_len, "record %zu: port %u given twice", i,
					 (unsigned)port);
				out->n = 0;
				return -EINVAL;
			}
		}
		out->port[out->n++] = port;
	}
	return 0;
}

int egress_read(const char *path, struct egress_ports *out, char *err, size_t err_len)
{
	struct command_argv records;
	char parse_err[128];
	int ret;

	out->n = 0;
	ret = command_argv_read(path, EGRESS_FILE_MAX_BYTES, &records, err, err_len);
	if (ret < 0)
		return ret;
	ret = egress_parse(records.argv, records.argc, out, parse_err, sizeof(parse_err));
	if (ret < 0)
		snprintf(err, err_len, "`%s`: %s", path, parse_err);
	command_argv_release(&records);
	return ret;
}

int egress_loopback_up(char *err, size_t err_len)
{
	struct ifreq ifr;
	int fd, ret = 0;

	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, "lo", sizeof("lo"));
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, err_len, "socket(AF_INET): %s", strerror(-ret));
		return ret;
	}
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) {
		ret = -errno;
		snprintf(err, err_len, "get the flags of `lo`: %s", strerror(-ret));
	} else if (!(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0) {
			ret = -errno;
			snprintf(err, err_len, "bring `lo` up: %s", strerror(-ret));
		}
	}
	close(fd);
	return ret;
}

/* ---- the guest's relay process ---- */

static int vsock_connect(void *opaque, uint16_t port)
{
	struct sockaddr_vm addr = {
	    .svm_family = AF_VSOCK,
	    .svm_cid = VMADDR_CID_HOST,
	    .svm_port = port,
	};
	int fd, ret;

	(void)opaque;
	fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 && errno != EINPROGRESS) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

const struct egress_relay_ops egress_vsock_ops = {.connect = vsock_connect};

/* What the relay process tells egress_start through the pipe: its errno (0: it listens),
 * then a message. */
struct egress_start_report {
	int error;
	char msg[256];
};

/* The relay process: undoes what PID 1 set for itself, listens, reports, relays. */
__attribute__((noreturn)) static void relay_process(const struct egress_ports *ports, int report_fd)
{
	struct egress_start_report report = {0};
	struct egress_relay_config cfg = {
	    .ports = ports,
	    .bind_addr = {.s_addr = htonl(INADDR_LOOPBACK)},
	    .ops = &egress_vsock_ops,
	};
	struct egress_relay *relay;
	sigset_t none;
	int ret;

	/* PID 1 blocks every signal and reads them from a signalfd: this process takes the
	 * defaults, so that the end of the VM (SIGKILL to all) or an admin's SIGTERM ends it. */
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL); /* fails harmlessly for SIGKILL, SIGSTOP, RT internals */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	setsid();
	prctl(PR_SET_NAME, "clawvm-egress", 0, 0, 0);

	relay = egress_relay_create(&cfg, report.msg, sizeof(report.msg));
	if (!relay)
		report.error = errno ? errno : EIO;
	if (write(report_fd, &report, sizeof(report)) != (ssize_t)sizeof(report) || !relay)
		_exit(1);
	close(report_fd);

	ret = egress_relay_run(relay);
	dprintf(STDERR_FILENO, "clawvm-egress: epoll: %s; no egress from now on\n", strerror(-ret));
	_exit(1);
}

pid_t egress_start(const struct egress_ports *ports, char *err, size_t err_len)
{
	struct egress_start_report report;
	size_t got = 0;
	int pipe_fds[2], saved;
	pid_t pid;

	if (pipe2(pipe_fds, O_CLOEXEC) < 0) {
		saved = errno;
		snprintf(err, err_len, "pipe: %s", strerror(saved));
		return -saved;
	}
	pid = fork();
	if (pid < 0) {
		saved = errno;
		snprintf(err, err_len, "fork the relay: %s", strerror(saved));
		close(pipe_fds[0]);
		close(pipe_fds[1]);
		return -saved;
	}
	if (pid == 0) {
		close(pipe_fds[0]);
		relay_process(ports, pipe_fds[1]);
	}
	close(pipe_fds[1]);
	while (got < sizeof(report)) {
		ssize_t n = read(pipe_fds[0], (char *)&report + got, sizeof(report) - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(pipe_fds[0]);
	if (got == sizeof(report) && report.error == 0)
		return pid;
	/* It ends by itself once it has reported (or died before): reaped here, since the
	 * caller never learns its pid. */
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	if (got < sizeof(report)) {
		snprintf(err, err_len, "the relay process ended before it listened");
		return -ECHILD;
	}
	report.msg[sizeof(report.msg) - 1] = '\0';
	snprintf(err, err_len, "%s", report.msg);
	return -report.error;
}

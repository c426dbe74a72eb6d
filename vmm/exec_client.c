/* The host end of the exec channel (api/exec.md): the hybrid-vsock handshake, then one
 * poll loop that sends the REQUEST, stdin and forwarded signals, and writes the command's
 * output where the caller wants it until the EXIT frame. */
#include "exec_client.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
#include <termios.h>
#include <unistd.h>

/* Stdin is read only while less than this waits to be sent: the guest's credit, not our
 * memory, sets the pace. */
#define TX_LIMIT	   (EXEC_FRAME_HEADER_LEN + EXEC_FRAME_MAX_PAYLOAD)
#define RX_CHUNK	   (64 * 1024)
#define HANDSHAKE_LINE_MAX 64

int exec_client_connect(const char *vsock_uds_path, unsigned int port)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	char line[HANDSHAKE_LINE_MAX];
	size_t len = 0;
	int fd, ret;

	if (strlen(vsock_uds_path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	strcpy(addr.sun_path, vsock_uds_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		goto err_errno;
	ret = snprintf(line, sizeof(line), "CONNECT %u\n", port);
	if (send(fd, line, (size_t)ret, MSG_NOSIGNAL) != ret)
		goto err_errno;
	/* One byte at a time: whatever follows the line belongs to the guest. */
	for (;;) {
		ssize_t n = read(fd, line + len, 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto err_errno;
		if (n == 0 || ++len == sizeof(line)) {
			ret = -EPROTO;
			goto err;
		}
		if (line[len - 1] == '\n')
			break;
	}
	if (len < 3 || memcmp(line, "OK ", 3) != 0) {
		ret = -EPROTO;
		goto err;
	}
	return fd;
err_errno:
	ret = errno ? -errno : -EIO;
err:
	close(fd);
	return ret;
}

struct client {
	int fd, in_fd, out_fd, err_fd;
	struct exec_client_opts opts;
	uint8_t *tx;
	size_t tx_head, tx_len, tx_cap;
	uint8_t *rx;
	size_t rx_len, rx_cap;
	bool tx_broken; /* the guest stopped reading: nothing more is sent */
	bool in_done;
	bool out_broken, err_broken;
};

static int tx_append(struct client *c, uint8_t type, const void *payload, uint32_t len)
{
	size_t need = EXEC_FRAME_HEADER_LEN + len;

	if (c->tx_head > 0) {
		memmove(c->tx, c->tx + c->tx_head, c->tx_len - c->tx_head);
		c->tx_len -= c->tx_head;
		c->tx_head = 0;
	}
	if (c->tx_cap - c->tx_len < need) {
		size_t cap = c->tx_len + need;
		uint8_t *bigger = realloc(c->tx, cap);

		if (!bigger)
			return -ENOMEM;
		c->tx = bigger;
		c->tx_cap = cap;
	}
	exec_frame_header_encode(c->tx + c->tx_len, type, len);
	if (len)
		memcpy(c->tx + c->tx_len + EXEC_FRAME_HEADER_LEN, payload, len);
	c->tx_len += need;
	return 0;
}

static int forward_signal(struct client *c, int fd);
static int flush_tx(struct client *c);

/* Writes all of buf to fd (the command's output), waiting while it is full. Signals are
 * still passed on meanwhile, so that a reader who stopped reading cannot keep a SIGTERM
 * from the command (and from the VM's stop timer); opts.abort_fd ends the wait. fd may be
 * in blocking mode (clawvm's stdout is not ours to change): then each write follows a
 * POLLOUT and takes at most PIPE_BUF bytes, which a pipe with room never blocks on. */
static int write_all(struct client *c, int fd, const uint8_t *buf, size_t len)
{
	int flags = fcntl(fd, F_GETFL);
	bool nonblock = flags >= 0 && (flags & O_NONBLOCK);

	while (len > 0) {
		struct pollfd p[4] = {{.fd = fd, .events = POLLOUT},
				      {.fd = c->opts.sig_fd, .events = POLLIN},
				      {.fd = c->opts.abort_fd, .events = POLLIN},
				      {.fd = c->opts.more_sig_fd, .events = POLLIN}};
		size_t chunk = nonblock || len < PIPE_BUF ? len : PIPE_BUF;
		ssize_t n;
		int ret;

		if (poll(p, 4, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (p[2].revents)
			return -ECANCELED;
		for (int i = 1; i < 4; i += 2) {
			if (!p[i].revents)
				continue;
			ret = forward_signal(c, p[i].fd);
			if (ret == 0)
				ret = flush_tx(c);
			if (ret < 0)
				return ret;
		}
		if (!p[0].revents)
			continue;
		n = write(fd, buf, chunk);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int relay_output(struct client *c, int fd, bool *broken, const uint8_t *p, uint32_t len)
{
	int ret;

	if (fd < 0 || *broken)
		return 0;
	ret = write_all(c, fd, p, len);
	if (ret == -EPIPE) {
		*broken = true;
		return 0;
	}
	return ret;
}

/* 1 when the EXIT frame was handled, 0 to go on, or a negative errno. */
static int handle_frame(struct client *c, uint8_t type, const uint8_t *p, uint32_t len, int *status)
{
	switch (type) {
	case EXEC_FRAME_STARTED:
		return len == 4 ? 0 : -EPROTO;
	case EXEC_FRAME_STDOUT:
		return relay_output(c, c->out_fd, &c->out_broken, p, len);
	case EXEC_FRAME_STDERR:
		return relay_output(c, c->err_fd, &c->err_broken, p, len);
	case EXEC_FRAME_EXIT:
		if (len != 4)
			return -EPROTO;
		*status = (int)exec_get_le32(p);
		return 1;
	case EXEC_FRAME_ERROR:
		if (c->err_fd >= 0)
			dprintf(c->err_fd, "clawvm: exec: %.*s\n", (int)len, (const char *)p);
		return -EPROTO;
	default:
		return -EPROTO;
	}
}

/* Reads what the guest sent and handles every whole frame. */
static int read_guest(struct client *c, int *status)
{
	size_t off = 0;
	ssize_t n;
	int ret = 0;

	if (c->rx_cap - c->rx_len < RX_CHUNK) {
		uint8_t *bigger = realloc(c->rx, c->rx_len + RX_CHUNK);

		if (!bigger)
			return -ENOMEM;
		c->rx = bigger;
		c->rx_cap = c->rx_len + RX_CHUNK;
	}
	n = read(c->fd, c->rx + c->rx_len, RX_CHUNK);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -errno;
	if (n == 0)
		return -ECONNRESET;
	c->rx_len += (size_t)n;

	while (c->rx_len - off >= EXEC_FRAME_HEADER_LEN) {
		uint32_t len;
		uint8_t type;

		if (exec_frame_header_parse(c->rx + off, &type, &len) < 0 ||
		    type == EXEC_FRAME_REQUEST)
			return -EPROTO;
		if (c->rx_len - off - EXEC_FRAME_HEADER_LEN < len)
			break;
		ret = handle_frame(c, type, c->rx + off + EXEC_FRAME_HEADER_LEN, len, status);
		off += EXEC_FRAME_HEADER_LEN + len;
		if (ret != 0)
			break;
	}
	memmove(c->rx, c->rx + off, c->rx_len - off);
	c->rx_len -= off;
	return ret;
}

static int read_stdin(struct client *c)
{
	uint8_t chunk[EXEC_FRAME_MAX_PAYLOAD];
	ssize_t n = read(c->in_fd, chunk, sizeof(chunk));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	/* EIO: a terminal that hung up; as good as the end of input. */
	if (n <= 0) {
		if (n < 0 && errno != EIO)
			return -errno;
		c->in_done = true;
		return tx_append(c, EXEC_FRAME_STDIN_EOF, NULL, 0);
	}
	return tx_append(c, EXEC_FRAME_STDIN, chunk, (uint32_t)n);
}

static int forward_signal(struct client *c, int fd)
{
	struct signalfd_siginfo si;
	uint8_t p[4];
	ssize_t n = read(fd, &si, sizeof(si));
	int ret;

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n != (ssize_t)sizeof(si))
		return n < 0 ? -errno : -EIO;
	if (si.ssi_signo == SIGWINCH) {
		struct winsize ws;

		if (c->in_fd < 0 || ioctl(c->in_fd, TIOCGWINSZ, &ws) < 0)
			return 0;
		exec_put_le16(p, ws.ws_row);
		exec_put_le16(p + 2, ws.ws_col);
		return tx_append(c, EXEC_FRAME_WINSIZE, p, sizeof(p));
	}
	exec_put_le32(p, si.ssi_signo);
	ret = tx_append(c, EXEC_FRAME_SIGNAL, p, sizeof(p));
	if (ret == 0 && c->opts.forwarded && fd == c->opts.sig_fd)
		c->opts.forwarded((int)si.ssi_signo, c->opts.opaque);
	return ret;
}

static int flush_tx(struct client *c)
{
	while (!c->tx_broken && c->tx_head < c->tx_len) {
		ssize_t n = send(c->fd, c->tx + c->tx_head, c->tx_len - c->tx_head, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
			/* The guest may still have output and the EXIT to send. */
			c->tx_broken = true;
			c->in_done = true;
			return 0;
		}
		if (n < 0)
			return -errno;
		c->tx_head += (size_t)n;
	}
	if (c->tx_head == c->tx_len)
		c->tx_head = c->tx_len = 0;
	return 0;
}

static int set_nonblock(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

static int run_loop(struct client *c, int *status)
{
	int ret;

	for (;;) {
		struct pollfd p[5];
		nfds_t np = 1;
		bool tx_pending = !c->tx_broken && c->tx_head < c->tx_len;
		bool want_in = !c->in_done && c->tx_len - c->tx_head < TX_LIMIT;

		p[0] = (struct pollfd){.fd = c->fd, .events = POLLIN | (tx_pending ? POLLOUT : 0)};
		if (want_in)
			p[np++] = (struct pollfd){.fd = c->in_fd, .events = POLLIN};
		if (c->opts.sig_fd >= 0)
			p[np++] = (struct pollfd){.fd = c->opts.sig_fd, .events = POLLIN};
		if (c->opts.abort_fd >= 0)
			p[np++] = (struct pollfd){.fd = c->opts.abort_fd, .events = POLLIN};
		if (c->opts.more_sig_fd >= 0)
			p[np++] = (struct pollfd){.fd = c->opts.more_sig_fd, .events = POLLIN};
		if (poll(p, np, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (nfds_t i = 1; i < np; i++) {
			if (!p[i].revents)
				continue;
			if (p[i].fd == c->opts.abort_fd)
				return -ECANCELED;
			if (p[i].fd == c->opts.sig_fd || p[i].fd == c->opts.more_sig_fd)
				ret = forward_signal(c, p[i].fd);
			else
				ret = read_stdin(c);
			if (ret < 0)
				return ret;
		}
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			ret = read_guest(c, status);
			if (ret != 0)
				return ret < 0 ? ret : 0;
		}
		ret = flush_tx(c);
		if (ret < 0)
			return ret;
	}
}

int exec_client_run_opts(int fd, const struct exec_request *req, int in_fd, int out_fd, int err_fd,
			 const struct exec_client_opts *opts, int *status)
{
	struct client c = {
	    .fd = fd,
	    .in_fd = in_fd,
	    .out_fd = out_fd,
	    .err_fd = err_fd,
	    .opts = *opts,
	    .in_done = in_fd < 0,
	};
	int ret;

	ret = set_nonblock(fd);
	if (ret < 0)
		return ret;
	if (req) {
		ret = exec_request_encode(req, &c.tx, &c.tx_len);
		if (ret < 0)
			return ret;
		c.tx_cap = c.tx_len;
	}
	if (in_fd < 0)
		ret = tx_append(&c, EXEC_FRAME_STDIN_EOF, NULL, 0);
	if (ret == 0)
		ret = run_loop(&c, status);
	free(c.tx);
	free(c.rx);
	return ret;
}

int exec_client_run_signals(int fd, const struct exec_request *req, int in_fd, int out_fd,
			    int err_fd, int sig_fd, int *status)
{
	const struct exec_client_opts opts = {.sig_fd = sig_fd, .abort_fd = -1, .more_sig_fd = -1};

	return exec_client_run_opts(fd, req, in_fd, out_fd, err_fd, &opts, status);
}

int exec_client_run(int fd, const struct exec_request *req, int in_fd, int out_fd, int err_fd,
		    int *status)
{
	return exec_client_run_signals(fd, req, in_fd, out_fd, err_fd, -1, status);
}

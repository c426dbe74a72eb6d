/* The vsock device's Unix-socket host side (Firecracker's hybrid vsock), a backend behind
 * struct vsock_backend_ops: a listener on PATH whose clients ask for a guest port with
 * `CONNECT <port>\n` and are answered `OK <hostport>\n` once the guest accepts; the guest's
 * connections to host port P go to the Unix socket PATH_P. When the process runs out of
 * descriptors the listener stops accepting for a while (backing off up to a second) rather
 * than spin on a client it cannot take. Everything runs on the event loop. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/log.h"
#include "virtio/vsock.h"
#include "virtio/vsock_backend.h"

#define UDS_BACKOFF_FIRST_MS 10
#define UDS_BACKOFF_MAX_MS   1000

/* The guest connects to host port `port`: to PATH_<port>. */
static int uds_connect(struct virtio_vsock *vs, uint32_t port)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd, err;

	if (snprintf(addr.sun_path, sizeof(addr.sun_path), "%s_%u", vs->uds_path, port) >=
	    (int)sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		err = errno;
		close(fd);
		return -err;
	}
	return fd;
}

/* "CONNECT <port>\n" from a host client. Read only up to the newline (peeked first), so
 * that bytes the client sends after it stay in the socket for the guest. */
static int uds_read_request(struct virtio_vsock *vs, int fd, struct vsock_request *req,
			    uint32_t *port)
{
	size_t room = sizeof(req->line) - 1 - req->len;
	char peek[VSOCK_REQUEST_MAX], *nl, *end;
	unsigned long value;
	ssize_t n;

	(void)vs;
	n = recv(fd, peek, room, MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0)
		return -ECONNRESET;
	nl = memchr(peek, '\n', (size_t)n);
	if (nl)
		n = nl - peek + 1;
	if (read(fd, req->line + req->len, (size_t)n) != n)
		return -EIO;
	req->len += (size_t)n;
	req->line[req->len] = '\0';
	if (!nl) /* no newline in 63 bytes: not our protocol */
		return req->len == sizeof(req->line) - 1 ? -EPROTO : 0;
	req->line[--req->len] = '\0';
	if (req->len && req->line[req->len - 1] == '\r')
		req->line[--req->len] = '\0';
	errno = 0;
	value = strncmp(req->line, "CONNECT ", 8) == 0 && req->line[8] >= '0' && req->line[8] <= '9'
		    ? strtoul(req->line + 8, &end, 10)
		    : (end = req->line, 0);
	if (end == req->line || *end != '\0' || errno || value > UINT32_MAX) {
		log_debug("vsock: host client sent `%s`, not CONNECT <port>", req->line);
		return -EPROTO;
	}
	*port = (uint32_t)value;
	return 1;
}

static int uds_accepted(struct virtio_vsock *vs, int fd, uint32_t local_port)
{
	char ok[32];
	int len = snprintf(ok, sizeof(ok), "OK %u\n", local_port);

	(void)vs;
	return write(fd, ok, (size_t)len) == len ? 0 : -EIO;
}

static void uds_destroy(struct virtio_vsock *vs)
{
	evloop_close(vs->loop, &vs->listener);
	evloop_close(vs->loop, &vs->backoff);
	if (vs->uds_path) {
		unlink(vs->uds_path);
		free(vs->uds_path);
		vs->uds_path = NULL;
	}
}

static const struct vsock_backend_ops uds_ops = {
    .connect = uds_connect,
    .read_request = uds_read_request,
    .accepted = uds_accepted,
    .destroy = uds_destroy,
};

/* Accepting again after the process ran out of descriptors. */
static void backoff_ready(struct ev_handler *h, uint32_t events)
{
	struct virtio_vsock *vs = h->opaque;

	(void)events;
	if (!evloop_drain(h))
		return;
	if (evloop_add(vs->loop, &vs->listener, EPOLLIN) < 0)
		log_warn("vsock: cannot watch `%s` again; host clients cannot connect",
			 vs->uds_path);
}

/* accept() failed for want of descriptors or memory: the pending client stays pending, so
 * the listener stays readable and the loop would spin. Stop watching it for a while. */
static void listener_back_off(struct virtio_vsock *vs, int err)
{
	vs->backoff_ms = vs->backoff_ms ? vs->backoff_ms * 2 : UDS_BACKOFF_FIRST_MS;
	if (vs->backoff_ms > UDS_BACKOFF_MAX_MS)
		vs->backoff_ms = UDS_BACKOFF_MAX_MS;
	if (evloop_timer_once(vs->backoff.fd, vs->backoff_ms) < 0)
		return; /* keep watching: spinning beats never accepting again */
	evloop_del(vs->loop, &vs->listener);
	log_warn_guest("vsock: cannot accept host clients (%s); trying again in %u ms",
		       strerror(err), vs->backoff_ms);
}

static void listener_ready(struct ev_handler *h, uint32_t events)
{
	struct virtio_vsock *vs = h->opaque;
	int fd;

	(void)events;
	fd = accept4(h->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
			listener_back_off(vs, errno);
		return;
	}
	vs->backoff_ms = 0;
	vsock_host_client(vs, fd);
}

/* The listener on `uds_path` and the timer it backs off with. An existing file there is
 * refused (bind fails), and left alone. */
static int uds_listen(struct virtio_vsock *vs, const char *uds_path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd;

	vs->listener.fd = vs->backoff.fd = -1;
	/* Room for the "_<port>" of the guest's connections too. */
	if (strlen(uds_path) + 12 >= sizeof(addr.sun_path)) {
		log_err("vsock: cannot listen on `%s`: too long for a Unix socket path", uds_path);
		return -ENAMETOOLONG;
	}
	strcpy(addr.sun_path, uds_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 64) < 0) {
		int err = errno;

		log_err("vsock: cannot listen on `%s`: %s", uds_path, strerror(err));
		if (fd >= 0)
			close(fd);
		return -err;
	}
	/* From here on, uds_destroy undoes what was done. */
	vs->backend = &uds_ops;
	vs->uds_path = strdup(uds_path);
	vs->listener = (struct ev_handler){.fd = fd, .ready = listener_ready, .opaque = vs};
	fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	vs->backoff = (struct ev_handler){.fd = fd, .ready = backoff_ready, .opaque = vs};
	if (!vs->uds_path || fd < 0 || evloop_add(vs->loop, &vs->listener, EPOLLIN) < 0 ||
	    evloop_add(vs->loop, &vs->backoff, EPOLLIN) < 0)
		return -ENOMEM;
	return 0;
}

int virtio_vsock_init(struct virtio_vsock *vs, uint64_t cid, const char *uds_path,
		      struct evloop *loop, struct fd_budget *fds)
{
	int ret = vsock_device_init(vs, cid, loop, fds);

	if (ret < 0 || !uds_path)
		return ret;
	ret = uds_listen(vs, uds_path);
	if (ret < 0)
		virtio_vsock_destroy(vs);
	return ret;
}

/* Between the vsock device (vsock.c: queues, packets, the connection state machine) and
 * its host side, a backend (vsock_uds.c, the Unix-socket one): what a backend does for the
 * device, behind struct vsock_backend_ops, and what the device offers a backend. The
 * device never knows which backend it talks to. Not a public header: the VM sees only
 * virtio/vsock.h. */
#ifndef CLAWVM_VIRTIO_VSOCK_BACKEND_H
#define CLAWVM_VIRTIO_VSOCK_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "virtio/vsock.h"

/* What a host client sends to ask for a guest port, kept across reads ("CONNECT <port>\n"
 * for the Unix-socket backend). */
#define VSOCK_REQUEST_MAX 64
struct vsock_request {
	char line[VSOCK_REQUEST_MAX];
	size_t len;
};

/* A host side. Called on the event loop's thread with the device lock held. */
struct vsock_backend_ops {
	/* The guest connects to host port `port`: a connected, non-blocking stream socket for
	 * it, or a negative errno (the guest gets a reset). */
	int (*connect)(struct virtio_vsock *vs, uint32_t port);
	/* Reads what the host client on `fd` (see vsock_host_client) sends to ask for a guest
	 * port, into `req` across calls, and no further: bytes after the request are the
	 * guest's. 1 and *port once it has asked, 0 while it has not finished, a negative
	 * errno if it never will (the connection ends). */
	int (*read_request)(struct virtio_vsock *vs, int fd, struct vsock_request *req,
			    uint32_t *port);
	/* The guest accepted what the client on `fd` asked for, from our port `local_port`:
	 * tells the client. A negative errno if it cannot be told (the connection resets). */
	int (*accepted)(struct virtio_vsock *vs, int fd, uint32_t local_port);
	/* Ends the host side, when the device is destroyed. */
	void (*destroy)(struct virtio_vsock *vs);
};

/* The device with no host side yet: set vs->backend to give it one. On failure the device
 * is already destroyed. */
__attribute__((warn_unused_result)) int vsock_device_init(struct virtio_vsock *vs, uint64_t cid,
							  struct evloop *loop,
							  struct fd_budget *fds);

/* A host client connected on `fd`, a non-blocking stream socket: the device owns it from
 * now on (it is closed at once when no connection or descriptor is left), and hands what
 * the client sends to the backend's read_request until it names a guest port. On the event
 * loop's thread; takes the device lock. */
void vsock_host_client(struct virtio_vsock *vs, int fd);

#endif

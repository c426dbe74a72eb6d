/* virtio-vsock in the VMM (no vhost). The device and its connections are in vsock.c; its
 * host side is a backend behind an ops struct (vsock_backend.h). The one there is,
 * vsock_uds.c, is compatible with Firecracker's hybrid vsock: a host client connects to the
 * Unix socket PATH and writes `CONNECT <port>\n`, gets `OK <hostport>\n` and a byte stream
 * to the guest's port; a guest connection to CID 2 port P goes to the Unix socket `PATH_P`
 * (reset if nobody listens there). */
#ifndef CLAWVM_VIRTIO_VSOCK_H
#define CLAWVM_VIRTIO_VSOCK_H

#include <linux/virtio_vsock.h>
#include <linux/vm_sockets.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/evloop.h"
#include "base/fd_budget.h"
#include "virtio/virtio.h"

/* A packet header (virtio 1.2, 5.10.6) in host byte order: struct virtio_vsock_hdr of
 * <linux/virtio_vsock.h>, field for field, decoded by vsock_parse. Ops, types and shutdown
 * flags are that header's VIRTIO_VSOCK_* constants; the host's CID is VMADDR_CID_HOST. */
struct vsock_hdr {
	uint64_t src_cid;
	uint64_t dst_cid;
	uint32_t src_port;
	uint32_t dst_port;
	uint32_t len;
	uint16_t type;
	uint16_t op;
	uint32_t flags;
	uint32_t buf_alloc;
	uint32_t fwd_cnt;
};

struct vsock_conn;
struct vsock_backend_ops;

/* Resets owed to the guest for connections already gone, kept until RX buffers come. */
#define VSOCK_RST_MAX 256

struct virtio_vsock {
	struct virtio_dev dev;
	uint8_t config[8]; /* le64 guest_cid */
	uint64_t guest_cid;
	struct evloop *loop;
	struct fd_budget *fds;			 /* each connection holds one descriptor of it */
	const struct vsock_backend_ops *backend; /* the host side; NULL: none */
	struct vsock_conn *conns; /* every live connection, host- or guest-initiated */
	atomic_uint nconns;	  /* live connections (read by any thread) */
	unsigned nhost;		  /* of them, host clients' */
	/* Packets to (rx) and from (tx) the guest, and their stream payload bytes: counted with
	 * the device lock held, read by any thread (virtio_vsock_counters). */
	_Atomic uint64_t rx_packets, tx_packets, rx_bytes, tx_bytes;
	/* Connections a driver reset ended (on a vCPU thread): the loop frees them (reaper). */
	struct vsock_conn *dead;
	struct ev_handler reaper; /* eventfd: the reset found connections to reap */
	uint32_t next_host_port;
	bool rx_starved; /* the driver had no RX buffer free: wait for its RX kick */
	/* Control packets waiting for a free RX buffer: connections that owe some (REQUEST,
	 * RESPONSE, CREDIT_UPDATE; each at most once), in order, and resets of connections
	 * already gone, in a ring (more are dropped and counted). */
	struct vsock_conn *ctrl_head, *ctrl_tail;
	struct {
		uint32_t local, peer;
	} rst[VSOCK_RST_MAX];
	unsigned rst_head, rst_len;
	uint64_t rst_dropped;
	/* The Unix-socket host side's own state (vsock_uds.c; the device never touches it):
	 * PATH, the listener on it, and the timerfd after which the listener accepts again
	 * when the process ran out of descriptors (backoff_ms doubles up to a second). */
	struct {
		char *uds_path; /* NULL: no Unix-socket host side */
		struct ev_handler listener;
		struct ev_handler backoff;
		unsigned backoff_ms;
	};
};

/* Sets the device up; with `uds_path`, its host side is the Unix socket there (an existing
 * socket file is refused). In vsock_uds.c, which wires the two. */
__attribute__((warn_unused_result)) int virtio_vsock_init(struct virtio_vsock *vs, uint64_t cid,
							  const char *uds_path, struct evloop *loop,
							  struct fd_budget *fds);
void virtio_vsock_destroy(struct virtio_vsock *vs);

/* Connects `fd`, a stream socket of the VMM's own (one end of a socketpair), to the guest's
 * `port`, as a host client that said CONNECT would be, but without the handshake: the bytes
 * written to its other end go to the guest once the guest accepts, and the end sees EOF if
 * the guest refuses. The device owns `fd` from then on (also on failure: -EMFILE when no
 * connection or descriptor is left, and fd is closed). On the event loop's thread. */
__attribute__((warn_unused_result)) int virtio_vsock_connect_fd(struct virtio_vsock *vs, int fd,
								uint32_t port);

/* What the device did so far, for the control API's metrics. */
struct vsock_counters {
	uint64_t rx_packets, tx_packets; /* to / from the guest: every packet, any op */
	uint64_t rx_bytes, tx_bytes;	 /* of them, stream payload (OP_RW) bytes */
	uint64_t connections;		 /* open now */
};
/* Thread-safe (relaxed atomics: each counter is exact, the set is not one snapshot). */
void virtio_vsock_counters(struct virtio_vsock *vs, struct vsock_counters *out);

/* Parses a header from a TX chain's first bytes; -EINVAL if it is not a packet this device
 * accepts from the guest (wrong CIDs, type, op, or a length beyond the chain). Pure. */
__attribute__((warn_unused_result)) int vsock_parse(const void *buf, size_t len, size_t chain_len,
						    uint64_t guest_cid, struct vsock_hdr *out);

#endif

/* The guest half of egress: a guest has no network device, so every connection out goes to
 * a TCP port on 127.0.0.1 (3128, the HTTP proxy; 3129 and up, the endpoints where the host
 * adds API keys), where guest-init's relay process accepts it and carries it, byte for
 * byte, over vsock to the same port of the host (guest_abi.h, CLAWVM_EGRESS_PATH). What
 * the connection may reach is the host's to decide; the relay only moves bytes.
 *
 * The relay is one epoll loop in a process of its own (egress_start), with no globals, so
 * that tests run it in a thread with another connect op in place of vsock. Its caps:
 *   EGRESS_MAX_PAIRS      connections relayed at once; at the cap the listeners leave
 *                         epoll until one ends, and new clients wait in the listen backlog;
 *   EGRESS_BUF_BYTES      buffered per direction of a connection, allocated while it lives
 *                         (at most 2 * EGRESS_BUF_BYTES * EGRESS_MAX_PAIRS = 32 MiB);
 *   EGRESS_MAX_EVENTS     events taken per wake-up;
 *   EGRESS_BUDGET_BYTES   bytes one fd reads, and as many it writes, per wake-up, so that
 *                         one busy connection cannot starve the others;
 *   EGRESS_ACCEPT_BUDGET  connections one listener accepts per wake-up;
 *   EGRESS_BACKLOG        clients waiting to be accepted, per port. */
#ifndef CLAWVM_GUEST_INIT_EGRESS_H
#define CLAWVM_GUEST_INIT_EGRESS_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "api/guest_abi.h"

#define EGRESS_MAX_PAIRS     256
#define EGRESS_BUF_BYTES     (64 * 1024)
#define EGRESS_MAX_EVENTS    64
#define EGRESS_BUDGET_BYTES  EGRESS_BUF_BYTES
#define EGRESS_ACCEPT_BUDGET 64
#define EGRESS_BACKLOG	     128
/* The file holds at most 16 records of 6 bytes ("65535" and its NUL). */
#define EGRESS_FILE_MAX_BYTES 1024

/* The ports of /clawvm/egress, in file order. */
struct egress_ports {
	uint16_t port[CLAWVM_EGRESS_MAX_PORTS];
	unsigned n;
};

/* Checks the records (one port each: decimal digits, no leading zero, 1 to 65535, none
 * twice, at most CLAWVM_EGRESS_MAX_PORTS) into out. 0, or -EINVAL with a message. */
__attribute__((warn_unused_result)) int egress_parse(char *const *strings, size_t count,
						     struct egress_ports *out, char *err,
						     size_t err_len);

/* Reads and checks the file at path (CLAWVM_EGRESS_PATH in the guest). 0; -ENOENT when
 * there is no such file (no egress); another negative errno with a message naming the file. */
__attribute__((warn_unused_result)) int egress_read(const char *path, struct egress_ports *out,
						    char *err, size_t err_len);

/* Brings the loopback interface up (the kernel then gives it 127.0.0.1), as every guest
 * needs, egress or not. 0, or a negative errno with a message. */
__attribute__((warn_unused_result)) int egress_loopback_up(char *err, size_t err_len);

/* How the relay reaches the host for a connection accepted on `port`: a new non-blocking,
 * close-on-exec stream socket on which connect() was called, done or in progress (the relay
 * waits for it to be writable, then reads SO_ERROR), or a negative errno, in which case the
 * client is reset. */
struct egress_relay_ops {
	int (*connect)(void *opaque, uint16_t port);
};

/* The guest's: AF_VSOCK to {VMADDR_CID_HOST, port}; opaque unused. */
extern const struct egress_relay_ops egress_vsock_ops;

struct egress_relay_config {
	const struct egress_ports *ports; /* each: the local TCP port and the host port */
	struct in_addr bind_addr;	  /* 127.0.0.1 in the guest */
	/* Tests: listen on ports the kernel picks (egress_relay_listen_port) while connecting
	 * to `ports` still. */
	bool any_listen_port;
	const struct egress_relay_ops *ops;
	void *opaque;
};

/* Counters, for tests and messages. */
struct egress_relay_stats {
	unsigned long long accepted;	   /* TCP connections accepted */
	unsigned long long connect_failed; /* of those, reset because the host side failed */
	unsigned pairs;			   /* relayed now */
	unsigned pairs_max;		   /* the most ever relayed at once */
};

struct egress_relay;

/* Listens on every port. NULL with a message (and errno set) if one cannot be had. */
struct egress_relay *egress_relay_create(const struct egress_relay_config *cfg, char *err,
					 size_t err_len);

/* Relays until egress_relay_stop() (0) or until epoll fails (a negative errno). The caller
 * must block or ignore SIGPIPE; the relay sends with MSG_NOSIGNAL anyway. */
int egress_relay_run(struct egress_relay *relay);

/* Makes egress_relay_run return; from any thread. */
void egress_relay_stop(struct egress_relay *relay);

/* The local port of listener i (i < ports->n), as bound. */
uint16_t egress_relay_listen_port(const struct egress_relay *relay, unsigned i);

/* Only while egress_relay_run is not running (before, or after it returned). */
void egress_relay_stats(const struct egress_relay *relay, struct egress_relay_stats *out);

/* Closes the listeners and every connection. */
void egress_relay_destroy(struct egress_relay *relay);

/* Forks the relay process for ports on 127.0.0.1 over vsock: named clawvm-egress, in a
 * session of its own (signals meant for the `main` command's process group never reach
 * it), with an empty signal mask and default dispositions but SIGPIPE ignored, and its
 * listeners bound before this returns, so that a client connecting at once is not refused.
 * Its pid, or a negative errno with a message. The caller reaps it. */
__attribute__((warn_unused_result)) pid_t egress_start(const struct egress_ports *ports, char *err,
						       size_t err_len);

#endif

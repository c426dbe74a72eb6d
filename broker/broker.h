/* The egress broker: the only way out of a sandbox. One process per sandbox, outside the
 * VMM's jail, started by the supervisor before the VMM (jail.c). The guest has no network
 * device; guest-init's relay carries each TCP connection made to 127.0.0.1:PORT in the
 * guest over vsock to host port PORT, which the VMM connects to the Unix socket
 * `<prefix>_PORT` this broker listens on:
 *   - BROKER_PROXY_PORT (3128): an HTTP proxy. CONNECT host:port (then bytes both ways)
 *     and plain http://host/ requests (sent on in origin-form, with Connection: close).
 *     The host must be allowed by the policy (policy.h), and every address it resolves
 *     to is checked again (private, loopback, link-local and metadata addresses only
 *     when a rule names them); the address checked is the one connected to.
 *   - BROKER_SECRET_PORT + i: secret i's endpoint. Plain HTTP in origin-form from the
 *     guest; the broker drops the guest's own credential headers, adds the secret's header
 *     with the real value, and speaks TLS to the secret's host. The value never enters
 *     the guest.
 * Every decision is an audit event (audit.h), and so is each secret use; the VMM and the
 * supervisor send theirs over sockets the broker reads, so that one writer keeps the hash
 * chain.
 *
 * Caps: BROKER_MAX_CONNS connections at once (more wait in the listen backlog: the
 * listeners leave the loop while full); BROKER_BUF bytes buffered per direction per
 * connection; a request head of at most HTTP_HEAD_MAX bytes within BROKER_HEAD_MS; a
 * connect within BROKER_CONNECT_MS; `max_bytes` in all per sandbox, when set; per wake-up
 * a connection moves at most BROKER_BUDGET bytes and an event socket gives at most
 * BROKER_EVENTS_BUDGET events. The control socket: BROKER_CONTROL_CLIENTS clients (its
 * listener leaves the loop while full), one request of at most BROKER_CONTROL_LINE bytes
 * at a time each, BROKER_CONTROL_MS for a request to arrive and its reply to be read. */
#ifndef CLAWVM_BROKER_H
#define CLAWVM_BROKER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "broker/policy.h"

#define BROKER_PROXY_PORT    3128
#define BROKER_SECRET_PORT   3129
#define BROKER_MAX_SECRETS   4
#define BROKER_MAX_CONNS     256
#define BROKER_BUF	     (64 * 1024)
#define BROKER_BUDGET	     (256 * 1024)
#define BROKER_HEAD_MS	     30000
#define BROKER_CONNECT_MS    10000
#define BROKER_EVENTS_BUDGET 64
#define BROKER_MAX_EVENT     (64 * 1024)
/* The control socket: clients at once, a request line's bytes, and how long a request may
 * take to arrive or its reply to be read. */
#define BROKER_CONTROL_CLIENTS 8
#define BROKER_CONTROL_LINE    (256 * 1024)
#define BROKER_CONTROL_MS      10000
#define BROKER_CONTROL_BUDGET  16 /* requests a client gets answered per wake-up */

/* A credential the broker adds for the guest. */
struct broker_secret {
	char name[64];	 /* the guest sees NAME_BASE_URL and NAME_API_KEY (a placeholder) */
	char host[256];	 /* the upstream, spoken to over TLS */
	uint16_t port;	 /* default 443 */
	char header[64]; /* "x-api-key" (default), or "authorization" (sent as Bearer) */
	char *value;	 /* the real value: in this process only */
};

struct audit_log;

struct broker_config {
	char prefix[108]; /* listens on <prefix>_<port> */
	struct policy policy;
	struct broker_secret secrets[BROKER_MAX_SECRETS];
	unsigned nsecrets;
	const char *ca_file;	 /* NULL: the system's CA store */
	uint64_t max_bytes;	 /* 0: no limit */
	struct audit_log *audit; /* NULL: no audit log */
	/* SOCK_SEQPACKET sockets whose messages are audit events (one JSON object each):
	 * the VMM's ("vmm"), the supervisor's ("supervisor"); -1 if none. The broker ends
	 * when the supervisor's closes. */
	int vmm_events_fd;
	int supervisor_fd;
	/* Called once the sockets listen, before anything is served (the process drops its
	 * privileges there: the sockets may lie where only root can go); -1 ends the broker.
	 * The sockets are given to sock_uid:sock_gid first, when chown_socks. */
	int (*ready)(void *opaque);
	void *ready_opaque;
	bool chown_socks;
	uid_t sock_uid;
	gid_t sock_gid;
	/* The control socket (api/control.md, "The egress socket": update_egress changes the
	 * policy of the running sandbox, describe_egress shows it), "" for none. Made mode
	 * 0600 before `ready`; only control_uid and root may use it (SO_PEERCRED). It lies
	 * where the VMM cannot reach it: the sandbox never widens its own way out. */
	char control_path[108];
	uid_t control_uid;
};

/* The broker's loop, in its own process (jail.c forks it): listens, serves, and returns
 * once the supervisor's socket closes, with every connection ended and audited. 0, or -1
 * if it could not start (said). */
int broker_run(struct broker_config *c);

#endif

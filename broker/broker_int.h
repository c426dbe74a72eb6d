/* What the broker's files share (broker.c: the loop and the guest's connections;
 * control.c: the control socket): its state. Not for other modules. */
#ifndef CLAWVM_BROKER_INT_H
#define CLAWVM_BROKER_INT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "base/evloop.h"
#include "broker/broker.h"
#include "broker/resolve.h"

enum conn_state { C_HEAD, C_RESOLVING, C_CONNECTING, C_TLS, C_RELAY };

struct broker;

struct conn {
	struct broker *b;
	uint64_t id;
	enum conn_state state;
	struct ev_handler guest; /* the guest's end: a Unix socket the VMM connected */
	struct ev_handler up;	 /* the upstream: TCP */
	struct tls_conn *tls;	 /* for a secret's upstream */
	int secret;		 /* its index, or -1 for the proxy */
	bool tunnel;		 /* CONNECT: "200" once connected, then bytes */
	char host[256];
	uint16_t port;
	char addr[INET6_ADDRSTRLEN];
	struct resolve_result res;
	unsigned next_addr;
	size_t head_len;     /* the guest's request head, at the start of g2u */
	char *upstream_head; /* what replaces it (plain HTTP, secrets), malloc()ed */
	size_t upstream_head_len;
	uint8_t g2u[BROKER_BUF], u2g[BROKER_BUF];
	size_t g2u_len, u2g_len;
	bool guest_eof, up_eof, up_shut, guest_shut;
	uint64_t bytes_up, bytes_down, t_start_ms, t_state_ms;
	LIST_ENTRY(conn) link;
};

struct listener {
	struct ev_handler h;
	struct broker *b;
	uint16_t port;
	int secret; /* -1: the proxy */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

struct event_source {
	struct ev_handler h;
	struct broker *b;
	const char *src;
};

/* A client of the control socket (control.c): one request at a time, its reply sent
 * before the next is read. */
struct control_client {
	struct ev_handler h;
	struct broker *b;
	uid_t uid;     /* who, from SO_PEERCRED */
	char *in;      /* BROKER_CONTROL_LINE + 1 bytes, once it sends */
	size_t in_len; /* bytes in `in` */
	char *out;     /* the reply being sent, malloc()ed; NULL: none */
	size_t out_len, out_off;
	uint64_t t_busy_ms; /* since a request began to arrive or a reply waits; 0: idle */
	bool closing;	    /* close once `out` is sent */
	LIST_ENTRY(control_client) link;
};

struct broker {
	struct broker_config *cfg;
	struct evloop loop;
	struct resolver *resolver;
	struct ev_handler resolver_h, tick;
	struct tls_ctx *tls;
	struct listener listeners[1 + BROKER_MAX_SECRETS];
	unsigned nlisteners;
	bool listening; /* the listeners are in the loop (not while full) */
	struct event_source vmm, supervisor;
	LIST_HEAD(, conn) conns;
	unsigned nconns;
	uint64_t next_id, bytes_up, bytes_down, denied; /* since the start */
	struct ev_handler control;	       /* the control socket's listener; fd -1: none */
	bool control_serving, control_watched; /* started; in the loop (not while full) */
	LIST_HEAD(, control_client) clients;   /* on it */
	unsigned nclients;
	bool done;
};

/* One audit event, built by api/audit's builders (NULL: out of memory, said); freed. */
void broker_audit(struct broker *b, char *event);
/* After a policy change: ends each connection that the policy no longer allows (its name,
 * or the address it connected to), saying so to the guest when it is still waiting for
 * an answer. How many were ended. */
unsigned broker_recheck(struct broker *b);

/* control.c. Binds the control socket (cfg->control_path; nothing if it is ""), mode 0600:
 * 0, or -1 after saying why. */
int broker_control_listen(struct broker *b);
/* Starts serving it (after the privileges are dropped). */
int broker_control_start(struct broker *b);
/* Once a second: drops the clients stuck for BROKER_CONTROL_MS. */
void broker_control_tick(struct broker *b, uint64_t now_ms);
/* Closes every client and the socket, and unlinks it. */
void broker_control_stop(struct broker *b);

#endif

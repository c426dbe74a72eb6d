/* Host names resolved off the broker's event loop. getaddrinfo blocks (for seconds, on a
 * slow or dead DNS server), so RESOLVE_THREADS workers do it and the loop hears of each
 * answer through an eventfd. The guest never resolves: the broker does, so that the
 * address it checks is the address it connects to (pinned for the connection).
 *
 * Caps: at most RESOLVE_MAX_PENDING names asked and not yet taken back (a full resolver
 * refuses with -EAGAIN: the broker answers 503); at most RESOLVE_MAX_ADDRS addresses kept
 * per name. */
#ifndef CLAWVM_BROKER_RESOLVE_H
#define CLAWVM_BROKER_RESOLVE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define RESOLVE_THREADS	    4
#define RESOLVE_MAX_PENDING 64
#define RESOLVE_MAX_ADDRS   8
#define RESOLVE_HOST_MAX    255

struct resolve_result {
	uint64_t id; /* the caller's, from resolver_submit */
	int err;     /* 0, or an EAI_* code (gai_strerror says what) */
	unsigned naddrs;
	struct sockaddr_storage addrs[RESOLVE_MAX_ADDRS]; /* with the port set */
};

struct resolver;

/* NULL with errno set on failure. */
struct resolver *resolver_create(void);
/* Stops the workers (a name being resolved is waited for) and frees everything. */
void resolver_destroy(struct resolver *r);
/* Readable (an eventfd) while answers wait for resolver_next. */
int resolver_fd(const struct resolver *r);
/* Asks for host's TCP addresses (IPv4 and IPv6) with port set. 0, -EAGAIN (full: see
 * RESOLVE_MAX_PENDING) or -EINVAL (host too long). */
__attribute__((warn_unused_result)) int resolver_submit(struct resolver *r, uint64_t id,
							const char *host, uint16_t port);
/* Takes one answer; false when none waits (the eventfd is then cleared). */
bool resolver_next(struct resolver *r, struct resolve_result *out);

#endif

/* What broker/policy.c and broker/addr.c share: addresses and networks as plain bytes, and
 * the class of an address with the special block it lies in. Not for other modules. */
#ifndef CLAWVM_POLICY_INT_H
#define CLAWVM_POLICY_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "broker/policy.h"

/* An IPv4 or IPv6 address or network; an IPv4 one in the first 4 bytes, the rest zero. */
struct ip_net {
	int family;
	uint8_t addr[16];
	unsigned prefix; /* 32 or 128 for one address */
};

/* An address's class and the prefix length of the block it was found in (in its own
 * family's bits): a rule unlocks it only from inside that block. */
struct addr_kind {
	enum addr_class cls;
	unsigned block;
};

/* A mapped IPv6 address or network (::ffff:a.b.c.d, prefix 96 or more) becomes the IPv4
 * one; anything else is left as it is. */
void addr_unmap(struct ip_net *n);

/* Whether a lies in net (same family, same first net->prefix bits). */
bool addr_net_covers(const struct ip_net *net, const struct ip_net *a);

/* Zeroes the bits of addr past the first `bits`. */
void addr_clear_host_bits(uint8_t addr[16], unsigned bits);

/* The class of a (an address, unmapped) and its block. */
struct addr_kind addr_kind_of(const struct ip_net *a);

/* sa's address, a mapped one as IPv4; false if sa is NULL or not AF_INET or AF_INET6. */
bool addr_from_sockaddr(const struct sockaddr *sa, struct ip_net *a);

/* Why an address of class c is refused: "resolves to a loopback address"... */
const char *addr_refusal(enum addr_class c);

#endif

/* The egress broker's decisions: which destinations a sandbox may reach. The guest has no
 * network device; its HTTP proxy carries each connection over vsock to the host broker,
 * which asks this module twice: may the guest name this host and port (policy_allows_name),
 * and, once the host's resolver has answered, may it reach this address (policy_allows_addr).
 * Pure: no sockets, no DNS, no global state, no logging.
 *
 * Rules (`--allow SPEC`, policy_add), SPEC one of
 *   HOST            ports 80 and 443 ("web")
 *   HOST:PORT       that port, 1-65535, decimal digits only: no sign, no leading zero
 *                   ("x.com:0443" is refused rather than guessed at)
 *   HOST:*          any port
 * and HOST one of
 *   a DNS name      labels of letters, digits and '-' (not first or last), 1-63 characters
 *                   each, 253 in all; case-insensitive (kept lowercase), one trailing dot
 *                   ignored. Its last label may not be all digits, and a name the C library
 *                   would read as an IPv4 address ("127.1", "0x7f000001") is refused: only
 *                   four decimal numbers are an address here.
 *   *.SUFFIX        any name with at least one label more than SUFFIX: "*.npmjs.org" matches
 *                   "a.npmjs.org" and "a.b.npmjs.org", not "npmjs.org" nor "evilnpmjs.org".
 *                   SUFFIX needs at least two labels ("*" and "*.com" are refused).
 *   an IPv4 address "10.1.2.3", or a network "10.0.0.0/8" (host bits must be zero)
 *   an IPv6 address or network, in brackets: "[2001:db8::1]:443", "[fd00::/8]:*"
 * An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is its IPv4 address everywhere: in rules
 * (a mapped network of prefix 96 or more is kept as the IPv4 network) and in the addresses
 * decided on. A rule given twice is kept once.
 *
 * Names: a requested name is allowed if a name or wildcard rule matches it and its port.
 * A requested IP address (a literal in the guest's request, "10.1.2.3" or "[::1]") is
 * matched only against address rules, and a name only against name rules. An empty policy
 * allows nothing.
 *
 * Addresses: what the name resolved to (or the literal) is classified (addr_classify). A
 * public address is allowed: its name was already. Any other one only if an address rule
 * covers it and the port, and that rule lies within the special block the address is in: so
 * `--allow 10.1.2.3:443` or `--allow 10.0.0.0/8:443` lets a name that resolves to 10.1.2.3
 * through on 443, but `--allow 0.0.0.0/0:*` ("every address") opens no private, loopback or
 * link-local address, and only a rule naming a cloud metadata address itself opens it. The
 * unspecified, multicast and broadcast addresses are never allowed, whatever the rules.
 * An IPv6 address with an IPv4 one in it (NAT64, 6to4, IPv4-compatible; see addr_classify)
 * meets the IPv6 rules only: `--allow 169.254.169.254` does not open 64:ff9b::a9fe:a9fe,
 * `--allow [64:ff9b::a9fe:a9fe]` does.
 *
 * A policy is a value that only policy_add changes: a running broker builds a new one (or
 * policy_copy()s the old one and adds to it) and swaps it in whole, under its own lock. */
#ifndef CLAWVM_POLICY_H
#define CLAWVM_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The most rules a policy holds: input (flags, the API) grows the table. */
#define POLICY_MAX_RULES 256
/* The longest SPEC taken: a 253-character name with "*." and ":65535", or a bracketed IPv6
 * network with a port, fits. */
#define POLICY_SPEC_MAX 272
/* A DNS name's most characters, without the trailing dot. */
#define POLICY_NAME_MAX 253
/* The longest text of one rule (policy_rule_text), NUL included. */
#define POLICY_RULE_TEXT_MAX (POLICY_NAME_MAX + sizeof("*.:80,443"))

struct policy_rule;

struct policy {
	struct policy_rule *rules;
	size_t n, cap;
};

/* An empty policy (allows nothing). Needs no release until a rule is added, but may have
 * one. */
void policy_init(struct policy *p);

/* Frees p's rules; p is empty again. */
void policy_release(struct policy *p);

/* dst (initialised; its old rules are released) becomes an independent copy of src.
 * 0, or -ENOMEM with dst left empty. */
__attribute__((warn_unused_result)) int policy_copy(struct policy *dst, const struct policy *src);

/* Adds the rule of one --allow SPEC (see above). 0 (added, or already there), or a
 * negative errno with a message naming the spec in err: -EINVAL (bad spec; "--allow
 * 'exa mple.com': invalid host name"), -ENOSPC (POLICY_MAX_RULES reached), -ENOMEM. p is
 * unchanged on error. */
__attribute__((warn_unused_result)) int policy_add(struct policy *p, const char *spec, char *err,
						   size_t errlen);

/* Removes the rule of SPEC (as given to policy_add: the same rule, however written, so
 * "Example.com." removes "example.com"). 0, or a negative errno with a message in err:
 * -EINVAL (bad spec), -ENOENT ("no such rule"). p is unchanged on error. */
__attribute__((warn_unused_result)) int policy_remove(struct policy *p, const char *spec, char *err,
						      size_t errlen);
/* As policy_add and policy_remove, with `what` instead of "--allow" in the messages (the
 * API's parameter: "allow 'x': ...", "revoke 'x': ..."). */
__attribute__((warn_unused_result)) int policy_add_as(struct policy *p, const char *what,
						      const char *spec, char *err, size_t errlen);
__attribute__((warn_unused_result)) int
policy_remove_as(struct policy *p, const char *what, const char *spec, char *err, size_t errlen);

/* Whether the guest may ask for host:port. host as the guest sent it: a name (any case, one
 * trailing dot ignored), an IPv4 address, or an IPv6 address with or without brackets.
 * Anything else (an invalid name, a non-decimal IPv4 form, port 0) is false. */
bool policy_allows_name(const struct policy *p, const char *host, uint16_t port);

enum addr_class {
	ADDR_PUBLIC,	  /* global unicast */
	ADDR_UNSPECIFIED, /* 0.0.0.0/8, :: (Linux connects 0.0.0.0 to the host itself) */
	ADDR_LOOPBACK,	  /* 127.0.0.0/8, ::1 */
	ADDR_PRIVATE,	  /* 10/8, 172.16/12, 192.168/16, 100.64/10 (CGNAT), 198.18/15
			     (benchmarking), fc00::/7 (ULA), fec0::/10, 64:ff9b:1::/48 */
	ADDR_LINK_LOCAL,  /* 169.254/16, fe80::/10 */
	ADDR_METADATA,	  /* 169.254.169.254, 169.254.170.2, 100.100.100.200, fd00:ec2::254 */
	ADDR_MULTICAST,	  /* 224.0.0.0/4, ff00::/8 */
	ADDR_BROADCAST,	  /* 255.255.255.255 */
	ADDR_RESERVED,	  /* 240/4, 192.0.0/24, the documentation networks, 2001::/23,
			     2001:db8::/32, IPv6 outside 2000::/3 and the above */
	ADDR_INVALID,	  /* not an AF_INET or AF_INET6 address */
};

/* The class of sa's address (its port is not looked at). An IPv6 address with an IPv4
 * address in it has that address's class: IPv4-mapped ::ffff:a.b.c.d, IPv4-compatible
 * ::a.b.c.d, NAT64 64:ff9b::a.b.c.d, 6to4 2002:AABB:CCDD::. The metadata addresses are
 * told apart from the blocks that hold them. */
enum addr_class addr_classify(const struct sockaddr *sa);

/* "public", "loopback", "metadata", ... for logs. */
const char *addr_class_name(enum addr_class c);

/* Whether the broker may connect to sa on port, for a host that policy_allows_name() let
 * through (see above). why (if not NULL) is set to a short reason for the log, such as
 * "resolves to a loopback address". */
bool policy_allows_addr(const struct policy *p, const struct sockaddr *sa, uint16_t port,
			const char **why);

/* How many rules p has. */
size_t policy_count(const struct policy *p);

/* The canonical text of rule i, for the control API and logs: "*.npmjs.org:443",
 * "api.example.com:80,443" (a spec without a port), "10.0.0.0/8:*", "[fd00::/8]:443". As
 * snprintf: the length of the whole text, buf holding as much as fits; -ENOENT if there is
 * no rule i. */
int policy_rule_text(const struct policy *p, size_t i, char *buf, size_t len);

/* All the rules' texts, in the order added, separated by one space ("" for none). As
 * snprintf: the length of the whole text, buf (NULL if len is 0) holding as much as fits. */
size_t policy_describe(const struct policy *p, char *buf, size_t len);

#endif

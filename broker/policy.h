/* The egress broker's decisions (broker.h): which hosts a sandbox may reach, and which
 * addresses a name may lead to. Pure: no sockets, no DNS.
 *
 * A rule (`--allow SPEC`): HOST, HOST:PORT or HOST:*. HOST is
 *   - a DNS name (labels of 1 to 63 letters, digits and inner hyphens, 253 bytes at most;
 *     case and one trailing dot do not count): that name only;
 *   - `*.` and a name of at least two labels (`*.npmjs.org`): every name below it, with
 *     at least one more label (`a.npmjs.org`, `a.b.npmjs.org`), never the name itself;
 *   - an IPv4 address or CIDR (`10.0.0.0/8`, host bits zero), or an IPv6 one in brackets
 *     (`[2001:db8::1]`, `[fd00::/8]`): requests naming such an address, and names that
 *     resolve into it.
 * PORT is 1 to 65535 in decimal without a sign or leading zero; omitted, it means 80 and
 * 443; `*` means any.
 *
 * Names: a request's host is allowed if a name or wildcard rule matches it and its port
 * (an IP literal as host matches address rules only). Addresses: whatever the name, the
 * address connected to must be public; any other class (loopback, private, link-local,
 * metadata, shared CGNAT...) only when an address rule covers that address and port, and
 * unspecified, multicast and reserved addresses never. An IPv6 address that carries an
 * IPv4 one (mapped, compatible, NAT64, 6to4) is the IPv4 one's class. */
#ifndef CLAWVM_BROKER_POLICY_H
#define CLAWVM_BROKER_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define POLICY_MAX_RULES 256
#define POLICY_NAME_MAX	 253
#define POLICY_PORT_WEB	 0  /* 80 and 443 */
#define POLICY_PORT_ANY	 -1 /* any port */

enum policy_kind { POLICY_NAME, POLICY_WILDCARD, POLICY_ADDR };

struct policy_rule {
	enum policy_kind kind;
	char name[POLICY_NAME_MAX + 1]; /* lower-case; for a wildcard, the part after `*.` */
	int family;			/* AF_INET or AF_INET6, for an address */
	uint8_t addr[16];
	unsigned prefix; /* bits that count */
	int32_t port;	 /* 1..65535, POLICY_PORT_WEB or POLICY_PORT_ANY */
};

struct policy {
	struct policy_rule *rules;
	unsigned n;
};

enum addr_class {
	ADDR_PUBLIC,
	ADDR_UNSPECIFIED, /* 0.0.0.0/8, :: */
	ADDR_LOOPBACK,	  /* 127/8, ::1 */
	ADDR_PRIVATE,	  /* 10/8, 172.16/12, 192.168/16, fc00::/7 */
	ADDR_SHARED,	  /* 100.64/10 (carrier-grade NAT) */
	ADDR_LINK_LOCAL,  /* 169.254/16, fe80::/10 */
	ADDR_METADATA,	  /* 169.254.169.254, 100.100.100.200, fd00:ec2::254 */
	ADDR_MULTICAST,	  /* 224/4, ff00::/8 */
	ADDR_RESERVED,	  /* 240/4 (with 255.255.255.255) */
};

void policy_init(struct policy *p);
void policy_release(struct policy *p);
/* dst (initialised, its rules replaced) gets a copy of src's. 0 or -ENOMEM. */
__attribute__((warn_unused_result)) int policy_copy(struct policy *dst, const struct policy *src);
/* Adds the rule `spec`; -1 with a message in err (naming the spec) if it is not one, or
 * when POLICY_MAX_RULES are there. */
__attribute__((warn_unused_result)) int policy_add(struct policy *p, const char *spec, char *err,
						   size_t errlen);
/* Whether `host` (a request's host: a name, or an IP literal without brackets) and port
 * are allowed. */
bool policy_allows_name(const struct policy *p, const char *host, uint16_t port);
enum addr_class addr_classify(const struct sockaddr *sa);
const char *addr_class_name(enum addr_class c);
/* Whether the broker may connect to sa (AF_INET or AF_INET6) on port; if not, *why says so
 * ("resolves to a loopback address"). */
bool policy_allows_addr(const struct policy *p, const struct sockaddr *sa, uint16_t port,
			const char **why);
/* Rule i as text, canonical ("*.npmjs.org:443", "api.example.com:80,443", "10.0.0.0/8:*"). */
void policy_rule_text(const struct policy_rule *r, char *out, size_t len);

#endif

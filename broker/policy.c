/* The egress broker's allowlist and address filter (policy.h). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/policy.h"

#define SPEC_MAX 300

void policy_init(struct policy *p)
{
	p->rules = NULL;
	p->n = 0;
}

void policy_release(struct policy *p)
{
	free(p->rules);
	policy_init(p);
}

int policy_copy(struct policy *dst, const struct policy *src)
{
	struct policy_rule *rules = NULL;

	if (src->n) {
		rules = malloc(src->n * sizeof(*rules));
		if (!rules)
			return -ENOMEM;
		memcpy(rules, src->rules, src->n * sizeof(*rules));
	}
	free(dst->rules);
	dst->rules = rules;
	dst->n = src->n;
	return 0;
}

/* A DNS name of len bytes (no trailing dot) into out, lower-case: labels of 1 to 63
 * letters, digits and inner hyphens, the last not all digits (getaddrinfo would read
 * "127.1" as an address). At least min_labels labels. */
static bool name_parse(const char *s, size_t len, unsigned min_labels, char *out)
{
	size_t label = 0;
	unsigned labels = 1;
	bool digits_only = true;

	if (len == 0 || len > POLICY_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			labels++;
			digits_only = true;
			out[i] = '.';
			continue;
		}
		if (!isalnum(ch) && ch != '-')
			return false;
		if (ch == '-' && label == 0)
			return false;
		if (!isdigit(ch))
			digits_only = false;
		if (++label > 63)
			return false;
		out[i] = (char)tolower(ch);
	}
	out[len] = '\0';
	return label > 0 && s[len - 1] != '-' && !digits_only && labels >= min_labels;
}

/* An address, or a CIDR when `cidr`, of len bytes: 0 or -1. */
static int addr_parse(const char *s, size_t len, bool v6, struct policy_rule *r)
{
	char text[INET6_ADDRSTRLEN + 8];
	const char *slash = memchr(s, '/', len);
	size_t alen = slash ? (size_t)(slash - s) : len;
	unsigned max = v6 ? 128 : 32, prefix = max;

	if (alen == 0 || alen >= INET6_ADDRSTRLEN)
		return -1;
	memcpy(text, s, alen);
	text[alen] = '\0';
	r->family = v6 ? AF_INET6 : AF_INET;
	if (inet_pton(r->family, text, r->addr) != 1)
		return -1;
	if (slash) {
		const char *p = slash + 1, *end = s + len;

		if (p == end || end - p > 3 || (*p == '0' && end - p > 1))
			return -1;
		prefix = 0;
		for (; p < end; p++) {
			if (!isdigit((unsigned char)*p))
				return -1;
			prefix = prefix * 10 + (unsigned)(*p - '0');
		}
		if (prefix > max)
			return -1;
		/* Host bits must be zero: 10.1.0.0/8 is a typo, not a rule. */
		for (unsigned bit = prefix; bit < max; bit++)
			if (r->addr[bit / 8] & (0x80 >> (bit % 8)))
				return -2;
	}
	r->prefix = prefix;
	r->kind = POLICY_ADDR;
	return 0;
}

static int port_parse(const char *s, int32_t *port)
{
	long value = 0;

	if (!strcmp(s, "*")) {
		*port = POLICY_PORT_ANY;
		return 0;
	}
	if (!*s || *s == '0' || strlen(s) > 5)
		return -1;
	for (const char *p = s; *p; p++) {
		if (!isdigit((unsigned char)*p))
			return -1;
		value = value * 10 + (*p - '0');
	}
	if (value < 1 || value > 65535)
		return -1;
	*port = (int32_t)value;
	return 0;
}

__attribute__((format(printf, 3, 4))) static int refuse(char *err, size_t errlen, const char *fmt,
							...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

int policy_add(struct policy *p, const char *spec, char *err, size_t errlen)
{
	struct policy_rule r = {.port = POLICY_PORT_WEB};
	const char *host = spec, *colon, *port = NULL;
	size_t len = strnlen(spec, SPEC_MAX + 1), host_len;
	struct policy_rule *rules;
	bool bracket = spec[0] == '[';
	int ret;

	if (len > SPEC_MAX)
		return refuse(err, errlen, "--allow '%.40s...': longer than %d bytes", spec,
			      SPEC_MAX);
	if (p->n == POLICY_MAX_RULES)
		return refuse(err, errlen, "--allow '%s': at most %d rules", spec,
			      POLICY_MAX_RULES);
	if (bracket) {
		const char *close = strchr(spec, ']');

		if (!close || (close[1] && close[1] != ':'))
			return refuse(
			    err, errlen,
			    "--allow '%s': an IPv6 address is [ADDRESS] or [ADDRESS]:PORT", spec);
		host = spec + 1;
		host_len = (size_t)(close - host);
		if (close[1] == ':')
			port = close + 2;
	} else {
		colon = strchr(spec, ':');
		host_len = colon ? (size_t)(colon - spec) : len;
		if (colon)
			port = colon + 1;
		if (colon && strchr(port, ':'))
			return refuse(
			    err, errlen,
			    "--allow '%s': an IPv6 address goes in brackets: [ADDRESS]:PORT", spec);
	}
	if (port && port_parse(port, &r.port) < 0)
		return refuse(err, errlen, "--allow '%s': PORT must be 1-65535 or *", spec);
	if (bracket) {
		ret = addr_parse(host, host_len, true, &r);
		if (ret == -2)
			return refuse(err, errlen,
				      "--allow '%s': the CIDR has bits set past its prefix", spec);
		if (ret < 0)
			return refuse(err, errlen, "--allow '%s': invalid IPv6 address or CIDR",
				      spec);
	} else if (host_len > 2 && !strncmp(host, "*.", 2)) {
		r.kind = POLICY_WILDCARD;
		if (host[host_len - 1] == '.')
			host_len--;
		if (!name_parse(host + 2, host_len - 2, 2, r.name))
			return refuse(err, errlen,
				      "--allow '%s': a wildcard is *. and a name of two labels or "
				      "more (*.example.com)",
				      spec);
	} else {
		ret = addr_parse(host, host_len, false, &r);
		if (ret == -2)
			return refuse(err, errlen,
				      "--allow '%s': the CIDR has bits set past its prefix", spec);
		if (ret < 0) {
			r.kind = POLICY_NAME;
			if (host_len && host[host_len - 1] == '.')
				host_len--;
			if (!name_parse(host, host_len, 1, r.name))
				return refuse(err, errlen, "--allow '%s': invalid host name", spec);
		}
	}
	rules = realloc(p->rules, (p->n + 1) * sizeof(*rules));
	if (!rules)
		return refuse(err, errlen, "--allow '%s': out of memory", spec);
	rules[p->n++] = r;
	p->rules = rules;
	return 0;
}

static bool port_matches(const struct policy_rule *r, uint16_t port)
{
	return r->port == POLICY_PORT_ANY ||
	       (r->port == POLICY_PORT_WEB && (port == 80 || port == 443)) || r->port == port;
}

/* Whether the address rule r covers addr (of r's family). */
static bool addr_matches(const struct policy_rule *r, int family, const uint8_t *addr)
{
	if (r->kind != POLICY_ADDR || r->family != family)
		return false;
	for (unsigned bit = 0; bit < r->prefix; bit++) {
		uint8_t mask = (uint8_t)(0x80 >> (bit % 8));

		if ((r->addr[bit / 8] & mask) != (addr[bit / 8] & mask))
			return false;
	}
	return true;
}

bool policy_allows_name(const struct policy *p, const char *host, uint16_t port)
{
	char name[POLICY_NAME_MAX + 1];
	uint8_t addr[16];
	size_t len = strnlen(host, POLICY_NAME_MAX + 2);

	for (int family = AF_INET; family; family = family == AF_INET ? AF_INET6 : 0) {
		if (inet_pton(family, host, addr) != 1)
			continue;
		for (unsigned i = 0; i < p->n; i++)
			if (addr_matches(&p->rules[i], family, addr) &&
			    port_matches(&p->rules[i], port))
				return true;
		return false;
	}
	if (len && host[len - 1] == '.')
		len--;
	if (!name_parse(host, len, 1, name))
		return false;
	for (unsigned i = 0; i < p->n; i++) {
		const struct policy_rule *r = &p->rules[i];
		size_t rlen = strlen(r->name);

		if (!port_matches(r, port))
			continue;
		if (r->kind == POLICY_NAME && !strcmp(r->name, name))
			return true;
		if (r->kind == POLICY_WILDCARD && len > rlen + 1 &&
		    !strcmp(name + len - rlen, r->name) && name[len - rlen - 1] == '.')
			return true;
	}
	return false;
}

static enum addr_class classify_v4(const uint8_t *a)
{
	uint32_t v = (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 | (uint32_t)a[2] << 8 | a[3];

	if (v == 0xa9fea9feu /* 169.254.169.254 */ || v == 0x646464c8u /* 100.100.100.200 */)
		return ADDR_METADATA;
	if (a[0] == 0)
		return ADDR_UNSPECIFIED;
	if (a[0] == 127)
		return ADDR_LOOPBACK;
	if (a[0] == 10 || (a[0] == 172 && (a[1] & 0xf0) == 16) || (a[0] == 192 && a[1] == 168))
		return ADDR_PRIVATE;
	if (a[0] == 100 && (a[1] & 0xc0) == 64)
		return ADDR_SHARED;
	if (a[0] == 169 && a[1] == 254)
		return ADDR_LINK_LOCAL;
	if ((a[0] & 0xf0) == 224)
		return ADDR_MULTICAST;
	if ((a[0] & 0xf0) == 240)
		return ADDR_RESERVED;
	return ADDR_PUBLIC;
}

/* The IPv4 address an IPv6 one carries (mapped, compatible, NAT64, 6to4), or NULL. */
static const uint8_t *embedded_v4(const uint8_t *a)
{
	static const uint8_t zeros[12], mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff},
					nat64[12] = {0, 0x64, 0xff, 0x9b};

	if (!memcmp(a, mapped, 12) || !memcmp(a, nat64, 12))
		return a + 12;
	/* ::a.b.c.d, but not :: and ::1 themselves */
	if (!memcmp(a, zeros, 12) && (a[12] || a[13] || a[14] || a[15] > 1))
		return a + 12;
	if (a[0] == 0x20 && a[1] == 0x02)
		return a + 2;
	return NULL;
}

static enum addr_class classify_v6(const uint8_t *a)
{
	static const uint8_t zeros[16],
	    metadata[16] = {0xfd, 0, 0x0e, 0xc2, [14] = 0x02, [15] = 0x54};
	const uint8_t *v4 = embedded_v4(a);

	if (v4)
		return classify_v4(v4);
	if (!memcmp(a, zeros, 15))
		return a[15] == 1 ? ADDR_LOOPBACK : a[15] == 0 ? ADDR_UNSPECIFIED : ADDR_PUBLIC;
	if (!memcmp(a, metadata, 16))
		return ADDR_METADATA;
	if ((a[0] & 0xfe) == 0xfc)
		return ADDR_PRIVATE;
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
		return ADDR_LINK_LOCAL;
	if (a[0] == 0xff)
		return ADDR_MULTICAST;
	return ADDR_PUBLIC;
}

enum addr_class addr_classify(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return classify_v4((const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr);
	if (sa->sa_family == AF_INET6)
		return classify_v6((const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr);
	return ADDR_RESERVED;
}

const char *addr_class_name(enum addr_class c)
{
	static const char *const names[] = {
	    [ADDR_PUBLIC] = "public",	      [ADDR_UNSPECIFIED] = "unspecified",
	    [ADDR_LOOPBACK] = "loopback",     [ADDR_PRIVATE] = "private",
	    [ADDR_SHARED] = "shared (CGNAT)", [ADDR_LINK_LOCAL] = "link-local",
	    [ADDR_METADATA] = "metadata",     [ADDR_MULTICAST] = "multicast",
	    [ADDR_RESERVED] = "reserved",
	};

	return (unsigned)c < sizeof(names) / sizeof(names[0]) ? names[c] : "unknown";
}

bool policy_allows_addr(const struct policy *p, const struct sockaddr *sa, uint16_t port,
			const char **why)
{
	static const char *const whys[] = {
	    [ADDR_UNSPECIFIED] = "resolves to an unspecified address",
	    [ADDR_LOOPBACK] = "resolves to a loopback address",
	    [ADDR_PRIVATE] = "resolves to a private address",
	    [ADDR_SHARED] = "resolves to a shared (CGNAT) address",
	    [ADDR_LINK_LOCAL] = "resolves to a link-local address",
	    [ADDR_METADATA] = "resolves to a cloud metadata address",
	    [ADDR_MULTICAST] = "resolves to a multicast address",
	    [ADDR_RESERVED] = "resolves to a reserved address",
	};
	enum addr_class c = addr_classify(sa);
	const uint8_t *a, *v4 = NULL;

	if (c == ADDR_PUBLIC)
		return true;
	*why = whys[c];
	if (c == ADDR_UNSPECIFIED || c == ADDR_MULTICAST || c == ADDR_RESERVED)
		return false;
	if (sa->sa_family == AF_INET) {
		v4 = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
		a = NULL;
	} else {
		a = (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
		v4 = embedded_v4(a);
	}
	for (unsigned i = 0; i < p->n; i++) {
		const struct policy_rule *r = &p->rules[i];

		if (!port_matches(r, port))
			continue;
		if ((v4 && addr_matches(r, AF_INET, v4)) || (a && addr_matches(r, AF_INET6, a)))
			return true;
	}
	return false;
}

void policy_rule_text(const struct policy_rule *r, char *out, size_t len)
{
	char host[INET6_ADDRSTRLEN + 8], port[16];

	if (r->kind == POLICY_ADDR) {
		char text[INET6_ADDRSTRLEN];
		unsigned whole = r->family == AF_INET ? 32u : 128u;

		inet_ntop(r->family, r->addr, text, sizeof(text));
		if (r->prefix == whole)
			snprintf(host, sizeof(host), r->family == AF_INET6 ? "[%s]" : "%s", text);
		else
			snprintf(host, sizeof(host), r->family == AF_INET6 ? "[%s/%u]" : "%s/%u",
				 text, r->prefix);
	}
	if (r->port == POLICY_PORT_ANY)
		snprintf(port, sizeof(port), "*");
	else if (r->port == POLICY_PORT_WEB)
		snprintf(port, sizeof(port), "80,443");
	else
		snprintf(port, sizeof(port), "%d", (int)r->port);
	snprintf(out, len, "%s%s:%s", r->kind == POLICY_WILDCARD ? "*." : "",
		 r->kind == POLICY_ADDR ? host : r->name, port);
}

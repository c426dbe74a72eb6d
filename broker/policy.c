/* The egress broker's allowlist (broker/policy.h): --allow specs parsed into rules, the
 * names and ports a guest asks for matched against them, and the addresses those names
 * resolve to classified and decided on. */
#include "broker/policy.h"
#include "broker/policy_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How much of a refused spec an error message quotes. */
#define SPEC_QUOTE_MAX 64
#define MSG_MAX	       128

enum rule_kind { RULE_NAME, RULE_WILDCARD, RULE_NET };
enum rule_ports { PORTS_WEB, PORTS_ANY, PORTS_ONE };

struct policy_rule {
	enum rule_kind kind;
	enum rule_ports ports;
	uint16_t port;	   /* PORTS_ONE */
	bool cidr;	   /* RULE_NET written with a prefix length shorter than the address */
	struct ip_net net; /* RULE_NET */
	char name[POLICY_NAME_MAX + 1]; /* RULE_NAME: the name; RULE_WILDCARD: what follows "*." */
};

/* ---- names and numbers ---- */

enum name_check { NAME_OK, NAME_BAD, NAME_LONG, NAME_NUMERIC };

/* Checks the DNS name text[0, len) (one trailing dot dropped) and writes it lowercase into
 * out, with its number of labels. NAME_NUMERIC: digits and dots only, or a form the C
 * library's resolver would take for an IPv4 address ("0x7f000001", "127.1"). */
static enum name_check name_normalize(const char *text, size_t len, char out[POLICY_NAME_MAX + 1],
				      size_t *labels)
{
	size_t label = 0, count = 1;
	bool label_digits = true, all_numeric = true;
	struct in_addr ignored;

	if (len > 0 && text[len - 1] == '.')
		len--;
	if (len == 0)
		return NAME_BAD;
	if (len > POLICY_NAME_MAX)
		return NAME_LONG;
	for (size_t i = 0; i < len; i++) {
		char c = text[i];

		if (c == '.') {
			if (label == 0 || text[i - 1] == '-')
				return NAME_BAD;
			out[i] = c;
			label = 0;
			count++;
			label_digits = true;
			continue;
		}
		if (c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return NAME_BAD;
		if ((c == '-' && label == 0) || ++label > 63)
			return NAME_BAD;
		if (c < '0' || c > '9')
			label_digits = all_numeric = false;
		out[i] = c;
	}
	out[len] = '\0';
	if (text[len - 1] == '-')
		return NAME_BAD;
	if (all_numeric || inet_aton(out, &ignored))
		return NAME_NUMERIC;
	/* No top-level domain is all digits; a resolver might read such a name as a number. */
	if (label_digits)
		return NAME_BAD;
	*labels = count;
	return NAME_OK;
}

/* A decimal number 0..max: digits only, no sign, no leading zero. */
static bool parse_decimal(const char *s, unsigned max, unsigned *out)
{
	unsigned v = 0;

	if (s[0] < '0' || s[0] > '9' || (s[0] == '0' && s[1] != '\0'))
		return false;
	for (size_t i = 0; s[i]; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
		if (v > max)
			return false;
	}
	*out = v;
	return true;
}

/* An IP address as a guest request names it: "10.1.2.3", "::1" or "[::1]". 1 (an address,
 * into a), 0 (not one: a name, perhaps), -1 (a broken IPv6 literal). */
static int parse_literal(const char *host, size_t len, struct ip_net *a)
{
	char text[INET6_ADDRSTRLEN];
	int family = AF_INET;

	memset(a, 0, sizeof(*a));
	if (host[0] == '[') {
		if (len < 2 || host[len - 1] != ']')
			return -1;
		host++;
		len -= 2;
		family = AF_INET6;
	} else if (memchr(host, ':', len)) {
		family = AF_INET6;
	}
	if (len >= sizeof(text))
		return family == AF_INET6 ? -1 : 0;
	memcpy(text, host, len);
	text[len] = '\0';
	if (inet_pton(family, text, a->addr) != 1)
		return family == AF_INET6 ? -1 : 0;
	a->family = family;
	a->prefix = family == AF_INET ? 32 : 128;
	addr_unmap(a);
	return 1;
}

/* ---- specs ---- */

__attribute__((format(printf, 2, 3))) static int refuse(char msg[MSG_MAX], const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, MSG_MAX, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* An address or network ("10.0.0.0/8", "fd00::/8", in place) of family into r. */
static int parse_net(char *text, int family, struct policy_rule *r, char msg[MSG_MAX])
{
	unsigned max = family == AF_INET ? 32 : 128;
	char *slash = strchr(text, '/');
	struct ip_net *net = &r->net;

	if (slash)
		*slash = '\0';
	if (inet_pton(family, text, net->addr) != 1)
		return refuse(msg,
			      family == AF_INET ? "invalid IPv4 address" : "invalid IPv6 address");
	net->family = family;
	net->prefix = max;
	if (slash && !parse_decimal(slash + 1, max, &net->prefix))
		return refuse(msg, "prefix length must be 0-%u", max);
	if (slash) {
		uint8_t masked[16];
		char shown[INET6_ADDRSTRLEN];

		memcpy(masked, net->addr, sizeof(masked));
		addr_clear_host_bits(masked, net->prefix);
		if (memcmp(masked, net->addr, sizeof(masked))) {
			inet_ntop(family, masked, shown, sizeof(shown));
			return refuse(msg, "host bits set (the network is %s/%u)", shown,
				      net->prefix);
		}
	}
	addr_unmap(net);
	r->kind = RULE_NET;
	r->cidr = net->prefix < (net->family == AF_INET ? 32u : 128u);
	return 0;
}

/* A HOST not in brackets (NUL-terminated, in place): an IPv4 address or network, a
 * wildcard or a name. */
static int parse_host(char *host, struct policy_rule *r, char msg[MSG_MAX])
{
	uint8_t ignored[4];
	const char *name = host;
	size_t labels = 0;
	enum name_check check;

	if (strchr(host, '/') || inet_pton(AF_INET, host, ignored) == 1)
		return parse_net(host, AF_INET, r, msg);
	r->kind = RULE_NAME;
	if (host[0] == '*' && (host[1] == '.' || host[1] == '\0')) {
		r->kind = RULE_WILDCARD;
		name = host[1] ? host + 2 : "";
	}
	if (strchr(name, '*'))
		return refuse(msg, "'*' goes only first and alone, as in '*.example.com'");
	check = name_normalize(name, strlen(name), r->name, &labels);
	if (r->kind == RULE_WILDCARD && (check == NAME_OK || name[0] == '\0') && labels < 2)
		return refuse(msg, "a wildcard needs at least two labels after '*.'");
	if (check == NAME_LONG)
		return refuse(msg, "host name longer than %d characters", POLICY_NAME_MAX);
	if (check == NAME_NUMERIC && r->kind == RULE_NAME)
		return refuse(msg, "invalid IPv4 address");
	if (check != NAME_OK)
		return refuse(msg, "invalid host name");
	return 0;
}

static int parse_spec(const char *spec, struct policy_rule *r, char msg[MSG_MAX])
{
	size_t len = strnlen(spec, POLICY_SPEC_MAX + 1);
	char host[POLICY_SPEC_MAX + 1];
	const char *ports = NULL; /* none: the web's */
	unsigned port;
	int rc;

	memset(r, 0, sizeof(*r));
	if (len > POLICY_SPEC_MAX)
		return refuse(msg, "longer than %d characters", POLICY_SPEC_MAX);
	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');

		if (!close)
			return refuse(msg, "missing ']' after the IPv6 address");
		if (close[1] != '\0' && close[1] != ':')
			return refuse(msg, "expected ':PORT' after ']'");
		memcpy(host, spec + 1, (size_t)(close - spec - 1));
		host[close - spec - 1] = '\0';
		if (close[1] == ':')
			ports = close + 2;
		rc = parse_net(host, AF_INET6, r, msg);
	} else {
		const char *colon = strchr(spec, ':');
		size_t host_len = colon ? (size_t)(colon - spec) : len;

		if (colon && strchr(colon + 1, ':'))
			return refuse(msg, "an IPv6 address needs brackets, as in '[::1]:443'");
		if (host_len == 0)
			return refuse(msg, "missing host");
		memcpy(host, spec, host_len);
		host[host_len] = '\0';
		if (colon)
			ports = colon + 1;
		rc = parse_host(host, r, msg);
	}
	if (rc)
		return rc;
	if (!ports) {
		r->ports = PORTS_WEB;
	} else if (!strcmp(ports, "*")) {
		r->ports = PORTS_ANY;
	} else if (parse_decimal(ports, 65535, &port) && port != 0) {
		r->ports = PORTS_ONE;
		r->port = (uint16_t)port;
	} else {
		return refuse(msg, "port must be 1-65535 or *");
	}
	return 0;
}

/* "WHAT 'SPEC': msg" into err; SPEC cut short and its unprintable bytes shown as '?'. */
static int explain(char *err, size_t errlen, const char *what, const char *spec, const char *msg,
		   int rc)
{
	char quoted[SPEC_QUOTE_MAX + sizeof("...")];
	size_t n = 0;

	for (; spec[n] && n < SPEC_QUOTE_MAX; n++)
		quoted[n] = spec[n] >= 0x20 && spec[n] < 0x7f ? spec[n] : '?';
	strcpy(quoted + n, spec[n] ? "..." : "");
	if (err && errlen)
		snprintf(err, errlen, "%s '%s': %s", what, quoted, msg);
	return rc;
}

/* ---- the policy ---- */

void policy_init(struct policy *p)
{
	*p = (struct policy){0};
}

void policy_release(struct policy *p)
{
	free(p->rules);
	policy_init(p);
}

int policy_copy(struct policy *dst, const struct policy *src)
{
	if (dst == src)
		return 0;
	policy_release(dst);
	if (src->n == 0)
		return 0;
	dst->rules = malloc(src->n * sizeof(*dst->rules));
	if (!dst->rules)
		return -ENOMEM;
	memcpy(dst->rules, src->rules, src->n * sizeof(*dst->rules));
	dst->n = dst->cap = src->n;
	return 0;
}

static bool rule_equal(const struct policy_rule *a, const struct policy_rule *b)
{
	if (a->kind != b->kind || a->ports != b->ports || a->port != b->port)
		return false;
	if (a->kind != RULE_NET)
		return !strcmp(a->name, b->name);
	return a->net.family == b->net.family && a->net.prefix == b->net.prefix &&
	       !memcmp(a->net.addr, b->net.addr, sizeof(a->net.addr));
}

/* The rule of spec, and where p has it (p->n if nowhere); a negative errno, explained, if
 * spec is not a rule. */
static int find_rule(const struct policy *p, const char *what, const char *spec,
		     struct policy_rule *r, size_t *at, char *err, size_t errlen)
{
	char msg[MSG_MAX];
	int rc = parse_spec(spec ? spec : "", r, msg);

	if (rc)
		return explain(err, errlen, what, spec ? spec : "", msg, rc);
	for (*at = 0; *at < p->n && !rule_equal(&p->rules[*at], r); (*at)++)
		;
	return 0;
}

int policy_add(struct policy *p, const char *spec, char *err, size_t errlen)
{
	return policy_add_as(p, "--allow", spec, err, errlen);
}

int policy_add_as(struct policy *p, const char *what, const char *spec, char *err, size_t errlen)
{
	struct policy_rule r;
	char msg[MSG_MAX];
	size_t at;
	int rc = find_rule(p, what, spec, &r, &at, err, errlen);

	if (rc || at < p->n)
		return rc; /* not a rule, or there already */
	if (p->n >= POLICY_MAX_RULES) {
		snprintf(msg, sizeof(msg), "more than %d rules", POLICY_MAX_RULES);
		return explain(err, errlen, what, spec, msg, -ENOSPC);
	}
	if (p->n == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 16;
		struct policy_rule *grown;

		if (cap > POLICY_MAX_RULES)
			cap = POLICY_MAX_RULES;
		grown = realloc(p->rules, cap * sizeof(*grown));
		if (!grown)
			return explain(err, errlen, what, spec, "out of memory", -ENOMEM);
		p->rules = grown;
		p->cap = cap;
	}
	p->rules[p->n++] = r;
	return 0;
}

int policy_remove(struct policy *p, const char *spec, char *err, size_t errlen)
{
	return policy_remove_as(p, "--allow", spec, err, errlen);
}

int policy_remove_as(struct policy *p, const char *what, const char *spec, char *err, size_t errlen)
{
	struct policy_rule r;
	size_t at;
	int rc = find_rule(p, what, spec, &r, &at, err, errlen);

	if (rc)
		return rc;
	if (at < p->n) {
		memmove(&p->rules[at], &p->rules[at + 1], (p->n - at - 1) * sizeof(r));
		p->n--;
		return 0;
	}
	return explain(err, errlen, what, spec, "no such rule", -ENOENT);
}

static bool port_matches(const struct policy_rule *r, uint16_t port)
{
	switch (r->ports) {
	case PORTS_WEB:
		return port == 80 || port == 443;
	case PORTS_ANY:
		return port != 0;
	case PORTS_ONE:
		return port == r->port;
	}
	return false;
}

/* Whether name (normalized, len characters) is one label or more followed by suffix. */
static bool under_suffix(const char *name, size_t len, const char *suffix)
{
	size_t suffix_len = strlen(suffix);

	return len > suffix_len + 1 && name[len - suffix_len - 1] == '.' &&
	       !memcmp(name + len - suffix_len, suffix, suffix_len);
}

bool policy_allows_name(const struct policy *p, const char *host, uint16_t port)
{
	char name[POLICY_NAME_MAX + 1];
	struct ip_net literal;
	size_t len, labels;
	int is_literal;

	if (!host || port == 0)
		return false;
	len = strnlen(host, POLICY_NAME_MAX + 2);
	if (len == 0 || len > POLICY_NAME_MAX + 1)
		return false;
	is_literal = parse_literal(host, len, &literal);
	if (is_literal < 0)
		return false;
	if (!is_literal) {
		if (name_normalize(host, len, name, &labels) != NAME_OK)
			return false;
		len = strlen(name);
	}
	for (size_t i = 0; i < p->n; i++) {
		const struct policy_rule *r = &p->rules[i];

		if (!port_matches(r, port))
			continue;
		if (is_literal ? r->kind == RULE_NET && addr_net_covers(&r->net, &literal)
			       : (r->kind == RULE_NAME && !strcmp(r->name, name)) ||
				     (r->kind == RULE_WILDCARD && under_suffix(name, len, r->name)))
			return true;
	}
	return false;
}

bool policy_allows_addr(const struct policy *p, const struct sockaddr *sa, uint16_t port,
			const char **why)
{
	const char *reason;
	struct ip_net a;
	struct addr_kind kind = {ADDR_INVALID, 0};
	bool allowed = false;

	if (addr_from_sockaddr(sa, &a))
		kind = addr_kind_of(&a);
	reason = addr_refusal(kind.cls);
	switch (kind.cls) {
	case ADDR_INVALID:
	case ADDR_UNSPECIFIED:
	case ADDR_MULTICAST:
	case ADDR_BROADCAST:
		break;
	default:
		if (port == 0) {
			reason = "port 0";
		} else if (kind.cls == ADDR_PUBLIC) {
			allowed = true;
		} else {
			for (size_t i = 0; i < p->n && !allowed; i++) {
				const struct policy_rule *r = &p->rules[i];

				allowed = r->kind == RULE_NET && r->net.prefix >= kind.block &&
					  addr_net_covers(&r->net, &a) && port_matches(r, port);
			}
			if (allowed)
				reason = "allowed by an --allow rule for this address";
		}
	}
	if (why)
		*why = reason;
	return allowed;
}

size_t policy_count(const struct policy *p)
{
	return p->n;
}

int policy_rule_text(const struct policy *p, size_t i, char *buf, size_t len)
{
	const struct policy_rule *r;
	char addr[INET6_ADDRSTRLEN], prefix[8] = "", ports[8];
	const struct ip_net *net;

	if (i >= p->n)
		return -ENOENT;
	r = &p->rules[i];
	net = &r->net;
	if (r->ports == PORTS_WEB)
		strcpy(ports, "80,443");
	else if (r->ports == PORTS_ANY)
		strcpy(ports, "*");
	else
		snprintf(ports, sizeof(ports), "%u", r->port);
	if (r->kind == RULE_NAME)
		return snprintf(buf, len, "%s:%s", r->name, ports);
	if (r->kind == RULE_WILDCARD)
		return snprintf(buf, len, "*.%s:%s", r->name, ports);
	inet_ntop(net->family, net->addr, addr, sizeof(addr));
	if (r->cidr)
		snprintf(prefix, sizeof(prefix), "/%u", net->prefix);
	if (net->family == AF_INET6)
		return snprintf(buf, len, "[%s%s]:%s", addr, prefix, ports);
	return snprintf(buf, len, "%s%s:%s", addr, prefix, ports);
}

size_t policy_describe(const struct policy *p, char *buf, size_t len)
{
	size_t total = 0;

	if (len)
		buf[0] = '\0';
	for (size_t i = 0; i < p->n; i++) {
		char text[POLICY_RULE_TEXT_MAX];
		int n = policy_rule_text(p, i, text, sizeof(text));

		/* Never short: text holds the longest rule. */
		if (n < 0)
			break;
		if (total + (i > 0) < len)
			snprintf(buf + total, len - total, "%s%s", i > 0 ? " " : "", text);
		total += (i > 0) + (size_t)n;
	}
	return total;
}

/* The egress broker's allowlist (broker/policy.h): --allow specs accepted with their
 * canonical text or refused with their exact message; names matched by exact and wildcard
 * rules at their boundaries; IP literals matched only by address rules; every address class
 * with its edge addresses, embedded IPv4 included; address rules unlocking non-public
 * addresses only from inside their block; the rule cap; copies and descriptions. */
#include "unit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/un.h>

#include "broker/policy.h"

static struct policy pol;
static char err[256];

static int fresh(void **state)
{
	(void)state;
	policy_init(&pol);
	memset(err, 0, sizeof(err));
	return 0;
}

static int release(void **state)
{
	(void)state;
	policy_release(&pol);
	return 0;
}

static void add(const char *spec)
{
	int rc = policy_add(&pol, spec, err, sizeof(err));

	if (rc != 0)
		fail_msg("%s: %d %s", spec, rc, err);
}

/* A sockaddr_in or sockaddr_in6 of the text address. */
static struct sockaddr_storage addr(const char *text)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(text, ':')) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		in6->sin6_family = AF_INET6;
		if (inet_pton(AF_INET6, text, &in6->sin6_addr) != 1)
			fail_msg("bad test address %s", text);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		in->sin_family = AF_INET;
		if (inet_pton(AF_INET, text, &in->sin_addr) != 1)
			fail_msg("bad test address %s", text);
	}
	return ss;
}

static enum addr_class classify(const char *text)
{
	struct sockaddr_storage ss = addr(text);

	return addr_classify((struct sockaddr *)&ss);
}

/* The text of the last rule. */
static const char *last_text(void)
{
	static char text[POLICY_RULE_TEXT_MAX];

	assert_true(policy_count(&pol) > 0);
	assert_true(policy_rule_text(&pol, policy_count(&pol) - 1, text, sizeof(text)) > 0);
	return text;
}

static void accepted_specs(void **state)
{
	static const struct {
		const char *spec, *text;
	} cases[] = {
	    {"example.com", "example.com:80,443"},
	    {"Mixed.Example.COM.", "mixed.example.com:80,443"},
	    {"api.example.com:8443", "api.example.com:8443"},
	    {"x.com:*", "x.com:*"},
	    {"y.com:1", "y.com:1"},
	    {"y.com:65535", "y.com:65535"},
	    {"localhost", "localhost:80,443"},
	    {"1password.com", "1password.com:80,443"},
	    {"123.example.com:22", "123.example.com:22"},
	    {"a-b.c--d.com", "a-b.c--d.com:80,443"},
	    {"xn--bcher-kva.example", "xn--bcher-kva.example:80,443"},
	    {"*.npmjs.org:443", "*.npmjs.org:443"},
	    {"*.NPMJS.org.", "*.npmjs.org:80,443"},
	    {"*.a.b.c:*", "*.a.b.c:*"},
	    {"10.1.2.3:443", "10.1.2.3:443"},
	    {"10.0.0.0/8:*", "10.0.0.0/8:*"},
	    {"10.1.2.4/32", "10.1.2.4:80,443"},
	    {"0.0.0.0/0:*", "0.0.0.0/0:*"},
	    {"192.168.0.0/16:5432", "192.168.0.0/16:5432"},
	    {"[2001:db8::1]:443", "[2001:db8::1]:443"},
	    {"[2001:DB8:0:0::2]", "[2001:db8::2]:80,443"},
	    {"[fd00::/8]:443", "[fd00::/8]:443"},
	    {"[::/0]:*", "[::/0]:*"},
	    {"[::1]:8080", "[::1]:8080"},
	    /* IPv4-mapped: kept as the IPv4 address or network. */
	    {"[::ffff:10.9.0.0/112]:*", "10.9.0.0/16:*"},
	    {"[::ffff:10.9.9.9]", "10.9.9.9:80,443"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		add(cases[i].spec);
		assert_int_equal(policy_count(&pol), i + 1);
		assert_string_equal(last_text(), cases[i].text);
	}
}

static void refused_specs(void **state)
{
	static const struct {
		const char *spec, *msg;
	} cases[] = {
	    {"exa mple.com", "invalid host name"},
	    {"x.com:70000", "port must be 1-65535 or *"},
	    {"a..b", "invalid host name"},
	    {"-a.com", "invalid host name"},
	    {"a-.com", "invalid host name"},
	    {"a.-b.com", "invalid host name"},
	    {".a.com", "invalid host name"},
	    {"a.com..", "invalid host name"},
	    {".", "invalid host name"},
	    {"a_b.com", "invalid host name"},
	    {"ex@mple.com", "invalid host name"},
	    {"b\xc3\xbc"
	     "cher.example",
	     "invalid host name"},
	    {"foo.123", "invalid host name"},
	    {"[::1", "missing ']' after the IPv6 address"},
	    {"[::1]x", "expected ':PORT' after ']'"},
	    {"[::1]]", "expected ':PORT' after ']'"},
	    {"[::1]:", "port must be 1-65535 or *"},
	    {"[]", "invalid IPv6 address"},
	    {"[1.2.3.4]", "invalid IPv6 address"},
	    {"[fe80::1%eth0]", "invalid IPv6 address"},
	    {"[example.com]:443", "invalid IPv6 address"},
	    {"[::/129]", "prefix length must be 0-128"},
	    {"[fd00::1/8]", "host bits set (the network is fd00::/8)"},
	    {"1.2.3.4/33", "prefix length must be 0-32"},
	    {"10.0.0.0/08", "prefix length must be 0-32"},
	    {"10.0.0.0/", "prefix length must be 0-32"},
	    {"10.0.0.0/-1", "prefix length must be 0-32"},
	    {"10.0.0.0/8/8", "prefix length must be 0-32"},
	    {"10.0.0.1/8", "host bits set (the network is 10.0.0.0/8)"},
	    {"172.16.0.1/12:443", "host bits set (the network is 172.16.0.0/12)"},
	    {"example.com/8", "invalid IPv4 address"},
	    {"1.2.3", "invalid IPv4 address"},
	    {"1.2.3.999", "invalid IPv4 address"},
	    {"127.1", "invalid IPv4 address"},
	    {"2130706433", "invalid IPv4 address"},
	    {"0x7f000001", "invalid IPv4 address"},
	    {"0x7f.0.0.1", "invalid IPv4 address"},
	    {"01.2.3.4", "invalid IPv4 address"},
	    {":443", "missing host"},
	    {"", "missing host"},
	    {"host:", "port must be 1-65535 or *"},
	    {"host:0", "port must be 1-65535 or *"},
	    {"host:+1", "port must be 1-65535 or *"},
	    {"host:-1", "port must be 1-65535 or *"},
	    {"host:0443", "port must be 1-65535 or *"},
	    {"host:1x", "port must be 1-65535 or *"},
	    {"host: 80", "port must be 1-65535 or *"},
	    {"host:**", "port must be 1-65535 or *"},
	    {"host:99999999999999999999", "port must be 1-65535 or *"},
	    {"::1", "an IPv6 address needs brackets, as in '[::1]:443'"},
	    {"2001:db8::1:443", "an IPv6 address needs brackets, as in '[::1]:443'"},
	    {"*", "a wildcard needs at least two labels after '*.'"},
	    {"*:443", "a wildcard needs at least two labels after '*.'"},
	    {"*.", "a wildcard needs at least two labels after '*.'"},
	    {"*.com", "a wildcard needs at least two labels after '*.'"},
	    {"*.com.:443", "a wildcard needs at least two labels after '*.'"},
	    {"*..com", "invalid host name"},
	    {"*.-a.com", "invalid host name"},
	    {"*.1.2.3.4", "invalid host name"},
	    {"*example.com", "'*' goes only first and alone, as in '*.example.com'"},
	    {"a.*.com", "'*' goes only first and alone, as in '*.example.com'"},
	    {"**.x.com", "'*' goes only first and alone, as in '*.example.com'"},
	    {"*.*.x.com", "'*' goes only first and alone, as in '*.example.com'"},
	    {"a\nb.com", "invalid host name"},
	};

	(void)state;
	add("kept.example.com");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char want[256], shown[128];
		size_t n = 0;

		/* Unprintable bytes are shown as '?'. */
		for (; cases[i].spec[n]; n++) {
			char c = cases[i].spec[n];

			shown[n] = c >= 0x20 && c < 0x7f ? c : '?';
		}
		shown[n] = '\0';
		snprintf(want, sizeof(want), "--allow '%s': %s", shown, cases[i].msg);
		memset(err, 0, sizeof(err));
		assert_int_equal(policy_add(&pol, cases[i].spec, err, sizeof(err)), -EINVAL);
		assert_string_equal(err, want);
		/* A refused spec changes nothing. */
		assert_int_equal(policy_count(&pol), 1);
	}
	assert_string_equal(last_text(), "kept.example.com:80,443");

	/* No spec at all; no room for a message. */
	assert_int_equal(policy_add(&pol, NULL, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "--allow '': missing host");
	assert_int_equal(policy_add(&pol, "a..b", NULL, 0), -EINVAL);
	memset(err, 'x', sizeof(err));
	assert_int_equal(policy_add(&pol, "a..b", err, 12), -EINVAL);
	assert_string_equal(err, "--allow 'a.");
	assert_int_equal(policy_count(&pol), 1);
}

/* A name of `len` characters: labels of 63 'a's (the last shorter), ending in ".com". */
static void long_name(char *out, size_t len)
{
	size_t label = 0;

	for (size_t i = 0; i + 4 < len; i++) {
		bool dot = label == 63 && i + 5 < len;

		out[i] = dot ? '.' : 'a';
		label = dot ? 0 : label + 1;
	}
	memcpy(out + len - 4, ".com", 5);
}

static void long_specs(void **state)
{
	char name[400], spec[400], want[256];

	(void)state;
	/* 253 characters: the most; with a trailing dot too. */
	long_name(name, POLICY_NAME_MAX);
	assert_int_equal(strlen(name), 253);
	add(name);
	assert_true(policy_allows_name(&pol, name, 443));
	snprintf(spec, sizeof(spec), "%s.", name);
	assert_true(policy_allows_name(&pol, spec, 443));
	snprintf(spec, sizeof(spec), "%s.:*", name);
	add(spec);
	assert_int_equal(policy_count(&pol), 2);

	/* 254: refused; a request for it too. */
	long_name(name, POLICY_NAME_MAX + 1);
	assert_int_equal(policy_add(&pol, name, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "--allow '%.64s...': host name longer than 253 characters",
		 name);
	assert_string_equal(err, want);
	assert_false(policy_allows_name(&pol, name, 443));

	/* A label of 63 characters is fine, of 64 not. */
	memset(name, 'b', 63);
	strcpy(name + 63, ".com");
	add(name);
	memset(name, 'b', 64);
	strcpy(name + 64, ".com");
	assert_int_equal(policy_add(&pol, name, err, sizeof(err)), -EINVAL);
	assert_false(policy_allows_name(&pol, name, 443));

	/* Past POLICY_SPEC_MAX, refused before it is parsed. */
	memset(spec, 'a', sizeof(spec) - 1);
	spec[sizeof(spec) - 1] = '\0';
	assert_int_equal(policy_add(&pol, spec, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "--allow '%.64s...': longer than 272 characters", spec);
	assert_string_equal(err, want);
	assert_false(policy_allows_name(&pol, spec, 443));
	assert_int_equal(policy_count(&pol), 3);
}

/* A host and port a guest asks for, and whether the policy lets it. */
struct name_case {
	const char *host;
	uint16_t port;
	bool allowed;
};

#define check_names(...)                                                                           \
	check_name_cases((const struct name_case[]){__VA_ARGS__},                                  \
			 sizeof((const struct name_case[]){__VA_ARGS__}) /                         \
			     sizeof(struct name_case))

static void check_name_cases(const struct name_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (policy_allows_name(&pol, cases[i].host, cases[i].port) != cases[i].allowed)
			fail_msg("%s port %u: %s, should be %s",
				 cases[i].host ? cases[i].host : "NULL", cases[i].port,
				 cases[i].allowed ? "refused" : "allowed",
				 cases[i].allowed ? "allowed" : "refused");
	}
}

static void wildcard_boundaries(void **state)
{
	(void)state;
	add("*.npmjs.org:443");
	check_names(
	    {"a.npmjs.org", 443, true}, {"registry.npmjs.org", 443, true},
	    {"a.b.npmjs.org", 443, true}, {"A.NPMJS.ORG", 443, true}, {"a.npmjs.org.", 443, true},
	    {"1.npmjs.org", 443, true},
	    /* Not the suffix itself, nor a name that only ends with its text. */
	    {"npmjs.org", 443, false}, {"npmjs.org.", 443, false}, {"evilnpmjs.org", 443, false},
	    {"a.evilnpmjs.org", 443, false}, {"a.npmjs.org.evil.com", 443, false},
	    {"npmjs.org.evil.com", 443, false}, {"a.npmjs.orgx", 443, false},
	    /* Broken names are never matched. */
	    {".npmjs.org", 443, false}, {"a..npmjs.org", 443, false}, {"a.npmjs.org..", 443, false},
	    {"-.npmjs.org", 443, false}, {"a b.npmjs.org", 443, false}, {"*.npmjs.org", 443, false},
	    {"a.npmjs.org\n", 443, false},
	    /* Only its port. */
	    {"a.npmjs.org", 80, false}, {"a.npmjs.org", 8443, false}, {"a.npmjs.org", 0, false});
}

static void exact_names_and_ports(void **state)
{
	(void)state;
	add("api.example.com");
	add("ssh.example.com:22");
	add("any.example.com:*");
	check_names(/* No port: the web's. */
		    {"api.example.com", 80, true}, {"API.Example.Com.", 443, true},
		    {"api.example.com", 8080, false}, {"api.example.com", 22, false},
		    {"x.api.example.com", 443, false}, {"example.com", 443, false},
		    {"api.example.co", 443, false}, {"api.example.com.evil", 443, false},
		    /* One port. */
		    {"ssh.example.com", 22, true}, {"ssh.example.com", 443, false},
		    /* Any port but 0. */
		    {"any.example.com", 1, true}, {"any.example.com", 65535, true},
		    {"any.example.com", 0, false},
		    /* Hostile hosts. */
		    {NULL, 443, false}, {"", 443, false}, {".", 443, false},
		    {"api.example.com:443", 443, false}, {"api.example.com/", 443, false},
		    {"api\x00.example.com", 443, false});

	/* An empty policy allows nothing. */
	policy_release(&pol);
	check_names({"api.example.com", 443, false});
}

static void ip_literals(void **state)
{
	(void)state;
	add("example.com:*");
	add("10.0.0.0/8:*");
	add("[2001:db8::/32]:443");
	add("8.8.8.8:53");
	check_names(/* An address in a request meets only the address rules. */
		    {"10.1.2.3", 22, true}, {"::ffff:10.1.2.3", 22, true},
		    {"[::ffff:10.1.2.3]", 22, true}, {"11.1.2.3", 22, false}, {"8.8.8.8", 53, true},
		    {"8.8.8.8", 443, false}, {"8.8.4.4", 53, false}, {"2001:db8::1", 443, true},
		    {"[2001:DB8::1]", 443, true}, {"[2001:db8::1]", 80, false},
		    {"[2001:db9::1]", 443, false},
		    /* Broken or non-decimal forms are no address and no name. */
		    {"[10.1.2.3]", 22, false}, {"[2001:db8::1", 443, false},
		    {"2001:db8::1]", 443, false}, {"[2001:db8::1]:443", 443, false},
		    {"[]", 443, false}, {"[", 443, false}, {"10.1", 22, false},
		    {"0xa010203", 22, false}, {"012.1.2.3", 22, false}, {"167837699", 22, false},
		    {"10.1.2.3.", 22, false});

	/* A name rule never covers an address, an address rule never a name. */
	policy_release(&pol);
	add("*.example.com:*");
	add("10.1.2.3:*");
	check_names({"93.184.216.34", 443, false}, {"3.example.com.10.1.2.3", 443, false},
		    {"10.1.2.3", 443, true});
}

static void address_classes(void **state)
{
	static const struct {
		const char *addr;
		enum addr_class cls;
	} cases[] = {
	    {"8.8.8.8", ADDR_PUBLIC},
	    {"1.1.1.1", ADDR_PUBLIC},
	    {"0.0.0.0", ADDR_UNSPECIFIED},
	    {"0.255.255.255", ADDR_UNSPECIFIED},
	    {"1.0.0.0", ADDR_PUBLIC},
	    {"127.0.0.1", ADDR_LOOPBACK},
	    {"127.255.255.255", ADDR_LOOPBACK},
	    {"126.255.255.255", ADDR_PUBLIC},
	    {"9.255.255.255", ADDR_PUBLIC},
	    {"10.0.0.0", ADDR_PRIVATE},
	    {"10.255.255.255", ADDR_PRIVATE},
	    {"11.0.0.0", ADDR_PUBLIC},
	    {"172.15.255.255", ADDR_PUBLIC},
	    {"172.16.0.0", ADDR_PRIVATE},
	    {"172.31.255.255", ADDR_PRIVATE},
	    {"172.32.0.0", ADDR_PUBLIC},
	    {"192.167.255.255", ADDR_PUBLIC},
	    {"192.168.0.1", ADDR_PRIVATE},
	    {"192.169.0.0", ADDR_PUBLIC},
	    {"100.63.255.255", ADDR_PUBLIC},
	    {"100.64.0.1", ADDR_PRIVATE},
	    {"100.127.255.255", ADDR_PRIVATE},
	    {"100.128.0.0", ADDR_PUBLIC},
	    {"198.17.255.255", ADDR_PUBLIC},
	    {"198.18.0.1", ADDR_PRIVATE},
	    {"198.19.255.255", ADDR_PRIVATE},
	    {"198.20.0.0", ADDR_PUBLIC},
	    {"169.253.255.255", ADDR_PUBLIC},
	    {"169.254.0.1", ADDR_LINK_LOCAL},
	    {"169.254.169.253", ADDR_LINK_LOCAL},
	    {"169.254.169.254", ADDR_METADATA},
	    {"169.254.170.2", ADDR_METADATA},
	    {"100.100.100.200", ADDR_METADATA},
	    {"100.100.100.201", ADDR_PRIVATE},
	    {"192.0.0.1", ADDR_RESERVED},
	    {"192.0.2.1", ADDR_RESERVED},
	    {"198.51.100.1", ADDR_RESERVED},
	    {"203.0.113.255", ADDR_RESERVED},
	    {"223.255.255.255", ADDR_PUBLIC},
	    {"224.0.0.1", ADDR_MULTICAST},
	    {"239.255.255.255", ADDR_MULTICAST},
	    {"240.0.0.0", ADDR_RESERVED},
	    {"255.255.255.254", ADDR_RESERVED},
	    {"255.255.255.255", ADDR_BROADCAST},
	    /* IPv6. */
	    {"::", ADDR_UNSPECIFIED},
	    {"::1", ADDR_LOOPBACK},
	    {"::2", ADDR_UNSPECIFIED}, /* IPv4-compatible 0.0.0.2 */
	    {"2606:4700::1111", ADDR_PUBLIC},
	    {"2000::1", ADDR_PUBLIC},
	    {"3fff:ffff::1", ADDR_PUBLIC},
	    {"4000::1", ADDR_RESERVED},
	    {"100::1", ADDR_RESERVED},
	    {"fbff::1", ADDR_RESERVED},
	    {"fc00::1", ADDR_PRIVATE},
	    {"fdff:ffff::1", ADDR_PRIVATE},
	    {"fe80::1", ADDR_LINK_LOCAL},
	    {"febf::1", ADDR_LINK_LOCAL},
	    {"fec0::1", ADDR_PRIVATE},
	    {"ff02::1", ADDR_MULTICAST},
	    {"fd00:ec2::254", ADDR_METADATA},
	    {"fd00:ec2::253", ADDR_PRIVATE},
	    {"2001:db8::1", ADDR_RESERVED},
	    {"2001::1", ADDR_RESERVED},
	    {"2001:200::1", ADDR_PUBLIC},
	    {"64:ff9b:1::1", ADDR_PRIVATE},
	    /* IPv4 inside IPv6. */
	    {"::ffff:127.0.0.1", ADDR_LOOPBACK},
	    {"::ffff:8.8.8.8", ADDR_PUBLIC},
	    {"::ffff:169.254.169.254", ADDR_METADATA},
	    {"::ffff:0.0.0.0", ADDR_UNSPECIFIED},
	    {"::ffff:255.255.255.255", ADDR_BROADCAST},
	    {"::127.0.0.1", ADDR_LOOPBACK},
	    {"::10.0.0.1", ADDR_PRIVATE},
	    {"::8.8.8.8", ADDR_PUBLIC},
	    {"64:ff9b::a9fe:a9fe", ADDR_METADATA},
	    {"64:ff9b::7f00:1", ADDR_LOOPBACK},
	    {"64:ff9b::808:808", ADDR_PUBLIC},
	    {"64:ff9b::e000:1", ADDR_MULTICAST},
	    {"2002:7f00:1::", ADDR_LOOPBACK},
	    {"2002:a9fe:a9fe::1", ADDR_METADATA},
	    {"2002:ac10::1", ADDR_PRIVATE},
	    {"2002:808:808::1", ADDR_PUBLIC},
	};
	struct sockaddr_un un = {.sun_family = AF_UNIX};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum addr_class got = classify(cases[i].addr);

		if (got != cases[i].cls)
			fail_msg("%s: %s, not %s", cases[i].addr, addr_class_name(got),
				 addr_class_name(cases[i].cls));
	}
	assert_int_equal(addr_classify((struct sockaddr *)&un), ADDR_INVALID);
	assert_int_equal(addr_classify(NULL), ADDR_INVALID);
}

static void class_names(void **state)
{
	(void)state;
	assert_string_equal(addr_class_name(ADDR_PUBLIC), "public");
	assert_string_equal(addr_class_name(ADDR_UNSPECIFIED), "unspecified");
	assert_string_equal(addr_class_name(ADDR_LOOPBACK), "loopback");
	assert_string_equal(addr_class_name(ADDR_PRIVATE), "private");
	assert_string_equal(addr_class_name(ADDR_LINK_LOCAL), "link-local");
	assert_string_equal(addr_class_name(ADDR_METADATA), "metadata");
	assert_string_equal(addr_class_name(ADDR_MULTICAST), "multicast");
	assert_string_equal(addr_class_name(ADDR_BROADCAST), "broadcast");
	assert_string_equal(addr_class_name(ADDR_RESERVED), "reserved");
	assert_string_equal(addr_class_name(ADDR_INVALID), "invalid");
	assert_string_equal(addr_class_name((enum addr_class)99), "unknown");
	assert_string_equal(addr_class_name((enum addr_class) - 1), "unknown");
}

/* An address the broker would connect to, the port, whether the policy lets it, and why
 * (NULL: not checked). */
struct addr_case {
	const char *addr;
	uint16_t port;
	bool allowed;
	const char *why;
};

#define check_addrs(...)                                                                           \
	check_addr_cases((const struct addr_case[]){__VA_ARGS__},                                  \
			 sizeof((const struct addr_case[]){__VA_ARGS__}) /                         \
			     sizeof(struct addr_case))

static void check_addr_cases(const struct addr_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct sockaddr_storage ss = addr(cases[i].addr);
		const char *why = NULL;

		if (policy_allows_addr(&pol, (struct sockaddr *)&ss, cases[i].port, &why) !=
		    cases[i].allowed)
			fail_msg("%s port %u: %s (%s)", cases[i].addr, cases[i].port,
				 cases[i].allowed ? "refused" : "allowed", why);
		if (cases[i].why && strcmp(why, cases[i].why))
			fail_msg("%s port %u: \"%s\", not \"%s\"", cases[i].addr, cases[i].port,
				 why, cases[i].why);
	}
}

static void addresses_without_rules(void **state)
{
	const char *why = NULL;
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	struct sockaddr_storage ss;

	(void)state;
	check_addrs(
	    {"8.8.8.8", 443, true, "a public address"}, {"2606:4700::1111", 443, true, NULL},
	    {"::ffff:8.8.8.8", 443, true, NULL}, {"8.8.8.8", 0, false, "port 0"},
	    {"10.1.2.3", 443, false, "resolves to a private address"},
	    {"127.0.0.1", 443, false, "resolves to a loopback address"},
	    {"::ffff:127.0.0.1", 443, false, "resolves to a loopback address"},
	    {"169.254.1.1", 443, false, "resolves to a link-local address"},
	    {"169.254.169.254", 80, false, "resolves to a cloud metadata address"},
	    {"64:ff9b::a9fe:a9fe", 80, false, "resolves to a cloud metadata address"},
	    {"240.0.0.1", 443, false, "resolves to a reserved address"},
	    {"0.0.0.0", 443, false, "resolves to an unspecified address, never allowed"},
	    {"ff02::1", 443, false, "resolves to a multicast address, never allowed"},
	    {"255.255.255.255", 443, false, "resolves to the broadcast address, never allowed"});
	assert_false(policy_allows_addr(&pol, (struct sockaddr *)&un, 443, &why));
	assert_string_equal(why, "not an IPv4 or IPv6 address");
	assert_false(policy_allows_addr(&pol, NULL, 443, &why));
	/* No reason asked for. */
	ss = addr("8.8.8.8");
	assert_true(policy_allows_addr(&pol, (struct sockaddr *)&ss, 443, NULL));
}

static void addresses_unlocked_by_rules(void **state)
{
	(void)state;
	/* One address and port: that one only. */
	add("10.1.2.3:443");
	check_addrs({"10.1.2.3", 443, true, "allowed by an --allow rule for this address"},
		    {"::ffff:10.1.2.3", 443, true, NULL},
		    {"10.1.2.3", 80, false, "resolves to a private address"},
		    {"10.1.2.4", 443, false, NULL}, {"10.1.2.3", 0, false, "port 0"});

	/* A network inside the block. */
	add("172.16.0.0/12:*");
	check_addrs({"172.31.255.255", 22, true, NULL},
		    {"172.32.0.0", 22, true, "a public address"});
	add("[fd00::/8]:443");
	check_addrs({"fd12::1", 443, true, NULL}, {"fc00::1", 443, false, NULL});

	/* Loopback, link-local and metadata each need their own rule. */
	add("127.0.0.0/8:8080");
	check_addrs({"127.0.0.1", 8080, true, NULL}, {"::ffff:127.0.0.2", 8080, true, NULL},
		    {"::1", 8080, false, NULL});
	add("[::1]:8080");
	check_addrs({"::1", 8080, true, NULL});
	add("169.254.0.0/16:*");
	check_addrs({"169.254.1.1", 80, true, NULL},
		    {"169.254.169.254", 80, false, "resolves to a cloud metadata address"});
	add("169.254.169.254:80");
	check_addrs({"169.254.169.254", 80, true, NULL}, {"169.254.169.254", 443, false, NULL});
}

static void broad_rules_open_no_special_block(void **state)
{
	(void)state;
	add("0.0.0.0/0:*");
	add("[::/0]:*");
	add("10.0.0.0/7:*");  /* wider than 10/8 */
	add("100.0.0.0/9:*"); /* wider than 100.64/10 */
	check_addrs({"8.8.8.8", 443, true, NULL},
		    {"10.1.2.3", 443, false, "resolves to a private address"},
		    {"11.1.2.3", 443, true, "a public address"}, {"100.64.0.1", 443, false, NULL},
		    {"127.0.0.1", 443, false, NULL}, {"169.254.169.254", 80, false, NULL},
		    {"::1", 443, false, NULL}, {"fd00::1", 443, false, NULL},
		    {"fe80::1", 443, false, NULL});

	/* Embedded IPv4: a rule in the IPv6 space, narrower than the embedded block. */
	add("169.254.169.254:*");
	check_addrs({"64:ff9b::a9fe:a9fe", 80, false, NULL});
	add("[64:ff9b::/96]:*");
	check_addrs({"64:ff9b::a9fe:a9fe", 80, false, NULL});
	add("[64:ff9b::a9fe:a9fe]:80");
	check_addrs({"64:ff9b::a9fe:a9fe", 80, true, NULL});
	add("[2002::/16]:*");
	check_addrs({"2002:7f00:1::", 80, false, NULL});
	add("[2002:7f00::/24]:*");
	check_addrs({"2002:7f00:1::", 80, true, NULL}, {"2002:7fff:ffff::1", 80, true, NULL});
}

static void never_allowed(void **state)
{
	(void)state;
	add("0.0.0.0/8:*");
	add("224.0.0.0/4:*");
	add("255.255.255.255:*");
	add("[::]:*");
	add("[ff00::/8]:*");
	add("[::ffff:0.0.0.0]:*");
	check_addrs(
	    {"0.0.0.0", 443, false, "resolves to an unspecified address, never allowed"},
	    {"0.1.2.3", 443, false, NULL}, {"::", 443, false, NULL},
	    {"::ffff:0.0.0.0", 443, false, NULL},
	    {"224.0.0.1", 443, false, "resolves to a multicast address, never allowed"},
	    {"ff02::1", 443, false, NULL},
	    {"255.255.255.255", 443, false, "resolves to the broadcast address, never allowed"});
	/* The literals pass the name step, and the address step still refuses them. */
	assert_true(policy_allows_name(&pol, "224.0.0.1", 443));
}

static void rule_cap(void **state)
{
	char spec[64];

	(void)state;
	for (int i = 0; i < POLICY_MAX_RULES; i++) {
		snprintf(spec, sizeof(spec), "h%d.example.com", i);
		add(spec);
	}
	assert_int_equal(policy_count(&pol), POLICY_MAX_RULES);
	assert_int_equal(policy_add(&pol, "h256.example.com", err, sizeof(err)), -ENOSPC);
	assert_string_equal(err, "--allow 'h256.example.com': more than 256 rules");
	/* A rule already there is still fine; a bad spec is still named as such. */
	add("H7.example.com.");
	assert_int_equal(policy_add(&pol, "a..b", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "--allow 'a..b': invalid host name");
	assert_int_equal(policy_count(&pol), POLICY_MAX_RULES);
	assert_true(policy_allows_name(&pol, "h255.example.com", 443));
	assert_false(policy_allows_name(&pol, "h256.example.com", 443));
}

static void duplicates_kept_once(void **state)
{
	(void)state;
	add("x.com");
	add("X.COM.");
	assert_int_equal(policy_count(&pol), 1);
	add("x.com:80");
	add("*.x.com");
	assert_int_equal(policy_count(&pol), 3);
	add("10.1.2.3");
	add("10.1.2.3/32");
	add("[::ffff:10.1.2.3]");
	assert_int_equal(policy_count(&pol), 4);
	add("10.1.2.3:*");
	assert_int_equal(policy_count(&pol), 5);
}

static void describe_and_copy(void **state)
{
	static const char all[] =
	    "*.npmjs.org:443 api.example.com:80,443 10.0.0.0/8:* [fd00::/8]:443";
	struct policy copy;
	char buf[256], text[POLICY_RULE_TEXT_MAX];

	(void)state;
	assert_int_equal(policy_describe(&pol, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	assert_int_equal(policy_rule_text(&pol, 0, text, sizeof(text)), -ENOENT);

	add("*.npmjs.org:443");
	add("api.example.com");
	add("10.0.0.0/8:*");
	add("[fd00::/8]:443");
	assert_int_equal(policy_describe(&pol, buf, sizeof(buf)), strlen(all));
	assert_string_equal(buf, all);
	/* Cut short as snprintf does; the length needed without a buffer. */
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(policy_describe(&pol, buf, 20), strlen(all));
	assert_string_equal(buf, "*.npmjs.org:443 api");
	assert_int_equal(buf[20], 'x');
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(policy_describe(&pol, buf, 17), strlen(all));
	assert_string_equal(buf, "*.npmjs.org:443 ");
	assert_int_equal(policy_describe(&pol, NULL, 0), strlen(all));
	assert_int_equal(policy_rule_text(&pol, 3, text, sizeof(text)), 14);
	assert_string_equal(text, "[fd00::/8]:443");
	assert_int_equal(policy_rule_text(&pol, 3, text, 5), 14);
	assert_string_equal(text, "[fd0");
	assert_int_equal(policy_rule_text(&pol, 4, text, sizeof(text)), -ENOENT);

	/* A copy is independent: the original changed or released, the copy stays. */
	policy_init(&copy);
	assert_int_equal(policy_copy(&copy, &pol), 0);
	add("late.example.com");
	assert_int_equal(policy_count(&copy), 4);
	assert_false(policy_allows_name(&copy, "late.example.com", 443));
	policy_release(&pol);
	assert_int_equal(policy_count(&pol), 0);
	assert_true(policy_allows_name(&copy, "a.npmjs.org", 443));
	assert_int_equal(policy_describe(&copy, buf, sizeof(buf)), strlen(all));
	assert_string_equal(buf, all);
	/* Onto itself: unchanged; from an empty one: empty; a copy replaces what was there. */
	assert_int_equal(policy_copy(&copy, &copy), 0);
	assert_int_equal(policy_count(&copy), 4);
	add("z.example.com");
	assert_int_equal(policy_copy(&copy, &pol), 0);
	assert_int_equal(policy_count(&copy), 1);
	assert_true(policy_allows_name(&copy, "z.example.com", 443));
	assert_false(policy_allows_name(&copy, "a.npmjs.org", 443));
	policy_release(&pol);
	assert_int_equal(policy_copy(&copy, &pol), 0);
	assert_int_equal(policy_count(&copy), 0);
	policy_release(&copy);
}

/* Rules removed by the spec of the rule, however written; the others keep their order. */
static void remove_rules(void **state)
{
	char buf[256], err[256];

	(void)state;
	add("*.npmjs.org:443");
	add("api.example.com");
	add("10.0.0.0/8:*");
	assert_int_equal(policy_remove(&pol, "API.Example.com.", err, sizeof(err)), 0);
	assert_false(policy_allows_name(&pol, "api.example.com", 443));
	assert_true(policy_allows_name(&pol, "a.npmjs.org", 443));
	policy_describe(&pol, buf, sizeof(buf));
	assert_string_equal(buf, "*.npmjs.org:443 10.0.0.0/8:*");
	/* Not there (the port counts), or not a rule: an error naming it, nothing changed. */
	assert_int_equal(policy_remove(&pol, "*.npmjs.org", err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "--allow '*.npmjs.org': no such rule");
	assert_int_equal(policy_remove(&pol, "exa mple.com", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "--allow 'exa mple.com': invalid host name");
	assert_int_equal(policy_count(&pol), 2);
	assert_int_equal(policy_remove(&pol, "10.0.0.0/8:*", err, sizeof(err)), 0);
	assert_int_equal(policy_remove(&pol, "*.npmjs.org:443", err, sizeof(err)), 0);
	assert_int_equal(policy_count(&pol), 0);
	assert_false(policy_allows_name(&pol, "a.npmjs.org", 443));
	/* Room again for as many as the cap. */
	add("again.example.com");
	assert_int_equal(policy_count(&pol), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(accepted_specs, fresh, release),
	    cmocka_unit_test_setup_teardown(refused_specs, fresh, release),
	    cmocka_unit_test_setup_teardown(long_specs, fresh, release),
	    cmocka_unit_test_setup_teardown(wildcard_boundaries, fresh, release),
	    cmocka_unit_test_setup_teardown(exact_names_and_ports, fresh, release),
	    cmocka_unit_test_setup_teardown(ip_literals, fresh, release),
	    cmocka_unit_test(address_classes),
	    cmocka_unit_test(class_names),
	    cmocka_unit_test_setup_teardown(addresses_without_rules, fresh, release),
	    cmocka_unit_test_setup_teardown(addresses_unlocked_by_rules, fresh, release),
	    cmocka_unit_test_setup_teardown(broad_rules_open_no_special_block, fresh, release),
	    cmocka_unit_test_setup_teardown(never_allowed, fresh, release),
	    cmocka_unit_test_setup_teardown(rule_cap, fresh, release),
	    cmocka_unit_test_setup_teardown(duplicates_kept_once, fresh, release),
	    cmocka_unit_test_setup_teardown(describe_and_copy, fresh, release),
	    cmocka_unit_test_setup_teardown(remove_rules, fresh, release),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The egress broker's allowlist and address filter (broker/policy.h): rules accepted and
 * refused with their exact messages, names matched (wildcards at their boundaries, ports),
 * every address class at its edges, and address rules that open a private address. */
#include "unit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>

#include "broker/policy.h"

static struct policy pol;

static int fresh(void **state)
{
	(void)state;
	policy_init(&pol);
	return 0;
}

static int release(void **state)
{
	(void)state;
	policy_release(&pol);
	return 0;
}

/* Adds spec; the message (or "" when accepted). */
static const char *add(const char *spec)
{
	static char err[512];

	err[0] = '\0';
	if (policy_add(&pol, spec, err, sizeof(err)) == 0)
		return "";
	assert_true(err[0] != '\0');
	return err;
}

static const char *text_of(unsigned i)
{
	static char text[300];

	policy_rule_text(&pol.rules[i], text, sizeof(text));
	return text;
}

static void rules_parsed(void **state)
{
	(void)state;
	assert_string_equal(add("Api.Example.COM."), "");
	assert_string_equal(text_of(0), "api.example.com:80,443");
	assert_string_equal(add("*.npmjs.org:443"), "");
	assert_string_equal(text_of(1), "*.npmjs.org:443");
	assert_string_equal(add("10.0.0.0/8:*"), "");
	assert_string_equal(text_of(2), "10.0.0.0/8:*");
	assert_string_equal(add("[2001:db8::1]:8443"), "");
	assert_string_equal(text_of(3), "[2001:db8::1]:8443");
	assert_string_equal(add("[fd00::/8]"), "");
	assert_string_equal(text_of(4), "[fd00::/8]:80,443");
	assert_string_equal(add("192.0.2.7:65535"), "");
	assert_string_equal(text_of(5), "192.0.2.7:65535");
	assert_int_equal(pol.n, 6);
}

static void rules_refused(void **state)
{
	static const struct {
		const char *spec, *msg;
	} bad[] = {
	    {"exa mple.com", "--allow 'exa mple.com': invalid host name"},
	    {"a..b", "--allow 'a..b': invalid host name"},
	    {"-a.com", "--allow '-a.com': invalid host name"},
	    {"a-.com", "--allow 'a-.com': invalid host name"},
	    {"1.2.3", "--allow '1.2.3': invalid host name"},
	    {"x.com:70000", "--allow 'x.com:70000': PORT must be 1-65535 or *"},
	    {"x.com:0", "--allow 'x.com:0': PORT must be 1-65535 or *"},
	    {"x.com:0443", "--allow 'x.com:0443': PORT must be 1-65535 or *"},
	    {"x.com:+1", "--allow 'x.com:+1': PORT must be 1-65535 or *"},
	    {"host:", "--allow 'host:': PORT must be 1-65535 or *"},
	    {":443", "--allow ':443': invalid host name"},
	    {"*", "--allow '*': invalid host name"},
	    {"*.com", "--allow '*.com': a wildcard is *. and a name of two labels or more "
		      "(*.example.com)"},
	    {"a.*.com", "--allow 'a.*.com': invalid host name"},
	    {"[::1", "--allow '[::1': an IPv6 address is [ADDRESS] or [ADDRESS]:PORT"},
	    {"[::1]x", "--allow '[::1]x': an IPv6 address is [ADDRESS] or [ADDRESS]:PORT"},
	    {"::1", "--allow '::1': an IPv6 address goes in brackets: [ADDRESS]:PORT"},
	    {"[zz::1]", "--allow '[zz::1]': invalid IPv6 address or CIDR"},
	    {"1.2.3.4/33", "--allow '1.2.3.4/33': invalid host name"},
	    {"10.1.0.0/8", "--allow '10.1.0.0/8': the CIDR has bits set past its prefix"},
	    {"[fd00::1/8]", "--allow '[fd00::1/8]': the CIDR has bits set past its prefix"},
	};
	char longer[400];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_string_equal(add(bad[i].spec), bad[i].msg);
	memset(longer, 'a', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	assert_string_equal(
	    add(longer),
	    "--allow 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...': longer than 300 bytes");
	assert_int_equal(pol.n, 0);
}

static void rule_cap(void **state)
{
	char spec[32];

	(void)state;
	for (unsigned i = 0; i < POLICY_MAX_RULES; i++) {
		snprintf(spec, sizeof(spec), "h%u.example", i);
		assert_string_equal(add(spec), "");
	}
	assert_string_equal(add("one.more"), "--allow 'one.more': at most 256 rules");
}

static void names_matched(void **state)
{
	(void)state;
	assert_string_equal(add("*.npmjs.org:443"), "");
	assert_string_equal(add("api.example.com"), "");
	assert_string_equal(add("any.example:*"), "");
	assert_true(policy_allows_name(&pol, "registry.npmjs.org", 443));
	assert_true(policy_allows_name(&pol, "a.b.npmjs.org", 443));
	assert_true(policy_allows_name(&pol, "A.NPMJS.ORG.", 443));
	assert_false(policy_allows_name(&pol, "npmjs.org", 443));
	assert_false(policy_allows_name(&pol, "evilnpmjs.org", 443));
	assert_false(policy_allows_name(&pol, "a.npmjs.org.evil", 443));
	assert_false(policy_allows_name(&pol, "registry.npmjs.org", 80));
	assert_true(policy_allows_name(&pol, "api.example.com", 80));
	assert_true(policy_allows_name(&pol, "api.example.com", 443));
	assert_false(policy_allows_name(&pol, "api.example.com", 8080));
	assert_false(policy_allows_name(&pol, "x.api.example.com", 443));
	assert_true(policy_allows_name(&pol, "any.example", 1));
	assert_false(policy_allows_name(&pol, "", 443));
	assert_false(policy_allows_name(&pol, "a..npmjs.org", 443));
	assert_false(policy_allows_name(&pol, "api.example.com\n", 443));
}

static void literals_need_address_rules(void **state)
{
	(void)state;
	assert_string_equal(add("203.0.113.0/24:8080"), "");
	assert_string_equal(add("[2001:db8::/32]:*"), "");
	assert_true(policy_allows_name(&pol, "203.0.113.9", 8080));
	assert_false(policy_allows_name(&pol, "203.0.113.9", 80));
	assert_false(policy_allows_name(&pol, "203.0.114.1", 8080));
	assert_true(policy_allows_name(&pol, "2001:db8::5", 22));
	assert_false(policy_allows_name(&pol, "2001:db9::5", 22));
}

static enum addr_class class4(const char *text)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};

	assert_int_equal(inet_pton(AF_INET, text, &sin.sin_addr), 1);
	return addr_classify((struct sockaddr *)&sin);
}

static enum addr_class class6(const char *text)
{
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};

	assert_int_equal(inet_pton(AF_INET6, text, &sin6.sin6_addr), 1);
	return addr_classify((struct sockaddr *)&sin6);
}

static void address_classes(void **state)
{
	(void)state;
	assert_int_equal(class4("8.8.8.8"), ADDR_PUBLIC);
	assert_int_equal(class4("0.0.0.0"), ADDR_UNSPECIFIED);
	assert_int_equal(class4("0.1.2.3"), ADDR_UNSPECIFIED);
	assert_int_equal(class4("127.0.0.1"), ADDR_LOOPBACK);
	assert_int_equal(class4("127.255.255.254"), ADDR_LOOPBACK);
	assert_int_equal(class4("10.0.0.1"), ADDR_PRIVATE);
	assert_int_equal(class4("172.15.255.255"), ADDR_PUBLIC);
	assert_int_equal(class4("172.16.0.0"), ADDR_PRIVATE);
	assert_int_equal(class4("172.31.255.255"), ADDR_PRIVATE);
	assert_int_equal(class4("172.32.0.0"), ADDR_PUBLIC);
	assert_int_equal(class4("192.168.1.1"), ADDR_PRIVATE);
	assert_int_equal(class4("100.63.255.255"), ADDR_PUBLIC);
	assert_int_equal(class4("100.64.0.1"), ADDR_SHARED);
	assert_int_equal(class4("100.127.255.255"), ADDR_SHARED);
	assert_int_equal(class4("100.128.0.0"), ADDR_PUBLIC);
	assert_int_equal(class4("169.254.1.1"), ADDR_LINK_LOCAL);
	assert_int_equal(class4("169.254.169.254"), ADDR_METADATA);
	assert_int_equal(class4("100.100.100.200"), ADDR_METADATA);
	assert_int_equal(class4("224.0.0.1"), ADDR_MULTICAST);
	assert_int_equal(class4("239.255.255.255"), ADDR_MULTICAST);
	assert_int_equal(class4("240.0.0.1"), ADDR_RESERVED);
	assert_int_equal(class4("255.255.255.255"), ADDR_RESERVED);
	assert_int_equal(class4("203.0.113.10"), ADDR_PUBLIC);
	assert_int_equal(class6("2606:4700::1111"), ADDR_PUBLIC);
	assert_int_equal(class6("::"), ADDR_UNSPECIFIED);
	assert_int_equal(class6("::1"), ADDR_LOOPBACK);
	assert_int_equal(class6("fc00::1"), ADDR_PRIVATE);
	assert_int_equal(class6("fdff::1"), ADDR_PRIVATE);
	assert_int_equal(class6("fd00:ec2::254"), ADDR_METADATA);
	assert_int_equal(class6("fe80::1"), ADDR_LINK_LOCAL);
	assert_int_equal(class6("febf::1"), ADDR_LINK_LOCAL);
	assert_int_equal(class6("fec0::1"), ADDR_PUBLIC);
	assert_int_equal(class6("ff02::1"), ADDR_MULTICAST);
	assert_int_equal(class6("::ffff:127.0.0.1"), ADDR_LOOPBACK);
	assert_int_equal(class6("::ffff:8.8.8.8"), ADDR_PUBLIC);
	assert_int_equal(class6("::10.0.0.1"), ADDR_PRIVATE);
	assert_int_equal(class6("64:ff9b::a9fe:a9fe"), ADDR_METADATA);
	assert_int_equal(class6("2002:7f00:1::"), ADDR_LOOPBACK);
	assert_int_equal(class6("2002:808:808::"), ADDR_PUBLIC);
	assert_string_equal(addr_class_name(ADDR_METADATA), "metadata");
}

static bool allows4(const char *text, uint16_t port, const char **why)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};

	assert_int_equal(inet_pton(AF_INET, text, &sin.sin_addr), 1);
	return policy_allows_addr(&pol, (struct sockaddr *)&sin, port, why);
}

static bool allows6(const char *text, uint16_t port, const char **why)
{
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};

	assert_int_equal(inet_pton(AF_INET6, text, &sin6.sin6_addr), 1);
	return policy_allows_addr(&pol, (struct sockaddr *)&sin6, port, why);
}

static void addresses_decided(void **state)
{
	const char *why = "";

	(void)state;
	assert_true(allows4("93.184.216.34", 443, &why));
	assert_false(allows4("127.0.0.1", 443, &why));
	assert_string_equal(why, "resolves to a loopback address");
	assert_false(allows4("169.254.169.254", 80, &why));
	assert_string_equal(why, "resolves to a cloud metadata address");
	assert_false(allows6("::ffff:10.1.2.3", 443, &why));
	assert_string_equal(why, "resolves to a private address");
	/* Opened by an address rule, on its port only. */
	assert_string_equal(add("10.1.2.3:443"), "");
	assert_string_equal(add("[fd00::/8]:*"), "");
	assert_true(allows4("10.1.2.3", 443, &why));
	assert_false(allows4("10.1.2.3", 80, &why));
	assert_false(allows4("10.1.2.4", 443, &why));
	assert_true(allows6("::ffff:10.1.2.3", 443, &why));
	assert_true(allows6("fd12::1", 22, &why));
	/* Never, whatever the rules. */
	assert_string_equal(add("0.0.0.0/0:*"), "");
	assert_true(allows4("127.0.0.1", 1, &why));
	assert_false(allows4("0.0.0.0", 80, &why));
	assert_string_equal(why, "resolves to an unspecified address");
	assert_false(allows4("224.0.0.1", 80, &why));
	assert_false(allows4("255.255.255.255", 80, &why));
	assert_string_equal(why, "resolves to a reserved address");
}

static void copy_replaces(void **state)
{
	struct policy other;

	(void)state;
	policy_init(&other);
	assert_string_equal(add("a.example"), "");
	assert_int_equal(policy_copy(&other, &pol), 0);
	assert_true(policy_allows_name(&other, "a.example", 443));
	policy_release(&pol);
	assert_true(policy_allows_name(&other, "a.example", 443));
	assert_false(policy_allows_name(&pol, "a.example", 443));
	policy_release(&other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(rules_parsed, fresh, release),
	    cmocka_unit_test_setup_teardown(rules_refused, fresh, release),
	    cmocka_unit_test_setup_teardown(rule_cap, fresh, release),
	    cmocka_unit_test_setup_teardown(names_matched, fresh, release),
	    cmocka_unit_test_setup_teardown(literals_need_address_rules, fresh, release),
	    cmocka_unit_test_setup_teardown(address_classes, fresh, release),
	    cmocka_unit_test_setup_teardown(addresses_decided, fresh, release),
	    cmocka_unit_test_setup_teardown(copy_replaces, fresh, release),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

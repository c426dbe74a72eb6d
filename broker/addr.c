/* The classes of IPv4 and IPv6 addresses (broker/policy.h's addr_classify), and the
 * address arithmetic the policy's rules need (broker/policy_int.h). */
#include "broker/policy.h"
#include "broker/policy_int.h"

#include <netinet/in.h>
#include <string.h>

static const uint8_t v4_mapped_prefix[12] = {[10] = 0xff, [11] = 0xff};

/* A mapped IPv6 address or network (::ffff:a.b.c.d, prefix 96 or more) becomes the IPv4 one:
 * the same destination for a dual-stack socket, so it must meet the same rules. */
void addr_unmap(struct ip_net *n)
{
	if (n->family != AF_INET6 || n->prefix < 96 || memcmp(n->addr, v4_mapped_prefix, 12))
		return;
	memmove(n->addr, n->addr + 12, 4);
	memset(n->addr + 4, 0, 12);
	n->family = AF_INET;
	n->prefix -= 96;
}

static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned bytes = bits / 8, rest = bits % 8;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));

	if (memcmp(a, b, bytes))
		return false;
	return rest == 0 || (a[bytes] & mask) == (b[bytes] & mask);
}

bool addr_net_covers(const struct ip_net *net, const struct ip_net *a)
{
	return net->family == a->family && prefix_equal(net->addr, a->addr, net->prefix);
}

void addr_clear_host_bits(uint8_t addr[16], unsigned bits)
{
	for (unsigned i = 0; i < 16; i++) {
		if (bits >= 8 * (i + 1))
			continue;
		addr[i] &= bits > 8 * i ? (uint8_t)(0xff << (8 - (bits - 8 * i))) : 0;
	}
}

/* A special block: addresses in net/len have class cls, or, if v4_at is not 0, the class
 * of the IPv4 address at that byte. */
struct addr_block {
	uint8_t net[16];
	uint8_t len;
	uint8_t cls;
	uint8_t v4_at;
};

/* First match wins: the metadata addresses before the blocks that hold them. */
static const struct addr_block v4_blocks[] = {
    {{169, 254, 169, 254}, 32, ADDR_METADATA, 0}, /* AWS, GCP, Azure, OCI... */
    {{169, 254, 170, 2}, 32, ADDR_METADATA, 0},	  /* AWS ECS task credentials */
    {{100, 100, 100, 200}, 32, ADDR_METADATA, 0}, /* Alibaba Cloud */
    {{0}, 8, ADDR_UNSPECIFIED, 0},
    {{127}, 8, ADDR_LOOPBACK, 0},
    {{10}, 8, ADDR_PRIVATE, 0},
    {{172, 16}, 12, ADDR_PRIVATE, 0},
    {{192, 168}, 16, ADDR_PRIVATE, 0},
    {{100, 64}, 10, ADDR_PRIVATE, 0}, /* carrier-grade NAT */
    {{198, 18}, 15, ADDR_PRIVATE, 0}, /* benchmarking; some hosts' fake-IP DNS */
    {{169, 254}, 16, ADDR_LINK_LOCAL, 0},
    {{192, 0, 0}, 24, ADDR_RESERVED, 0},
    {{192, 0, 2}, 24, ADDR_RESERVED, 0}, /* the documentation networks */
    {{198, 51, 100}, 24, ADDR_RESERVED, 0},
    {{203, 0, 113}, 24, ADDR_RESERVED, 0},
    {{224}, 4, ADDR_MULTICAST, 0},
    {{255, 255, 255, 255}, 32, ADDR_BROADCAST, 0},
    {{240}, 4, ADDR_RESERVED, 0},
    {{0}, 0, ADDR_PUBLIC, 0},
};

static const struct addr_block v6_blocks[] = {
    {{0}, 128, ADDR_UNSPECIFIED, 0},
    {{[15] = 1}, 128, ADDR_LOOPBACK, 0},
    {{0xfd, 0x00, 0x0e, 0xc2, [14] = 0x02, [15] = 0x54}, 128, ADDR_METADATA, 0}, /* AWS */
    {{0}, 96, 0, 12},						 /* IPv4-compatible ::a.b.c.d */
    {{0x00, 0x64, 0xff, 0x9b}, 96, 0, 12},			 /* NAT64 */
    {{0x20, 0x02}, 16, 0, 2},					 /* 6to4 */
    {{0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}, 48, ADDR_PRIVATE, 0}, /* local-use NAT64 */
    {{0x20, 0x01, 0x0d, 0xb8}, 32, ADDR_RESERVED, 0},		 /* documentation */
    {{0x20, 0x01}, 23, ADDR_RESERVED, 0}, /* IETF protocols: Teredo, ORCHID... */
    {{0x20}, 3, ADDR_PUBLIC, 0},	  /* global unicast */
    {{0xfc}, 7, ADDR_PRIVATE, 0},
    {{0xfe, 0x80}, 10, ADDR_LINK_LOCAL, 0},
    {{0xfe, 0xc0}, 10, ADDR_PRIVATE, 0}, /* site-local, deprecated */
    {{0xff}, 8, ADDR_MULTICAST, 0},
    {{0}, 0, ADDR_RESERVED, 0},
};

struct addr_kind addr_kind_of(const struct ip_net *a)
{
	const struct addr_block *b = a->family == AF_INET ? v4_blocks : v6_blocks;

	/* Both tables end with a /0 block, which every address matches. */
	while (!prefix_equal(a->addr, b->net, b->len))
		b++;
	if (b->v4_at) {
		struct ip_net v4 = {.family = AF_INET, .prefix = 32};
		struct addr_kind k;

		memcpy(v4.addr, a->addr + b->v4_at, 4);
		k = addr_kind_of(&v4);
		return (struct addr_kind){k.cls, 8u * b->v4_at + k.block};
	}
	return (struct addr_kind){b->cls, b->len};
}

bool addr_from_sockaddr(const struct sockaddr *sa, struct ip_net *a)
{
	memset(a, 0, sizeof(*a));
	if (!sa)
		return false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		memcpy(a->addr, &in->sin_addr, 4);
		a->family = AF_INET;
		a->prefix = 32;
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		memcpy(a->addr, &in6->sin6_addr, 16);
		a->family = AF_INET6;
		a->prefix = 128;
		addr_unmap(a);
	} else {
		return false;
	}
	return true;
}

enum addr_class addr_classify(const struct sockaddr *sa)
{
	struct ip_net a;

	if (!addr_from_sockaddr(sa, &a))
		return ADDR_INVALID;
	return addr_kind_of(&a).cls;
}

static const char *const class_names[] = {
    [ADDR_PUBLIC] = "public",	      [ADDR_UNSPECIFIED] = "unspecified",
    [ADDR_LOOPBACK] = "loopback",     [ADDR_PRIVATE] = "private",
    [ADDR_LINK_LOCAL] = "link-local", [ADDR_METADATA] = "metadata",
    [ADDR_MULTICAST] = "multicast",   [ADDR_BROADCAST] = "broadcast",
    [ADDR_RESERVED] = "reserved",     [ADDR_INVALID] = "invalid",
};

const char *addr_class_name(enum addr_class c)
{
	if ((unsigned)c >= sizeof(class_names) / sizeof(class_names[0]))
		return "unknown";
	return class_names[c];
}

/* Why an address of each class is refused. */
static const char *const class_refusals[] = {
    [ADDR_PUBLIC] = "a public address",
    [ADDR_UNSPECIFIED] = "resolves to an unspecified address, never allowed",
    [ADDR_LOOPBACK] = "resolves to a loopback address",
    [ADDR_PRIVATE] = "resolves to a private address",
    [ADDR_LINK_LOCAL] = "resolves to a link-local address",
    [ADDR_METADATA] = "resolves to a cloud metadata address",
    [ADDR_MULTICAST] = "resolves to a multicast address, never allowed",
    [ADDR_BROADCAST] = "resolves to the broadcast address, never allowed",
    [ADDR_RESERVED] = "resolves to a reserved address",
    [ADDR_INVALID] = "not an IPv4 or IPv6 address",
};

const char *addr_refusal(enum addr_class c)
{
	if ((unsigned)c >= sizeof(class_refusals) / sizeof(class_refusals[0]))
		return class_refusals[ADDR_INVALID];
	return class_refusals[c];
}

/* CPUID as each vCPU sees it: a synthetic KVM_GET_SUPPORTED_CPUID table (values modelled
 * on a real host, with the bits clawvm must change set the wrong way) run through
 * cpuid_setup() for several topologies. */
#include "unit.h"

#include "vmm/cpuid.h"

#define L1_ECX_VMX	  (1u << 5)
#define L1_ECX_HV	  (1u << 31)
#define L1_EDX_HTT	  (1u << 28)
#define E1_ECX_CMP_LEGACY (1u << 1)
#define E1_ECX_SVM	  (1u << 2)

/* Leaf 4 EAX: type in 4:0, level in 7:5, self-initialising (bit 8); the host claims 8
 * cores and, for L3, 16 sharing threads. */
#define CACHE(type, level) (0x1c000000u | (level) << 5 | 0x100u | (type))
#define HOST_L3_SHARING	   (15u << 14)

static const struct kvm_cpuid_entry2 host_entries[] = {
    {.function = 0x0, .eax = 0x1f, .ebx = 0x756e6547, .ecx = 0x6c65746e, .edx = 0x49656e69},
    {.function = 0x1,
     .eax = 0x000906ea,
     .ebx = 0x0c100800, /* APIC id 12, 16 logical processors */
     .ecx = 0x7ffafbff, /* VMX set, hypervisor clear */
     .edx = 0xbfebfbff},
    {.function = 0x4,
     .index = 0,
     .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
     .eax = CACHE(1, 1),
     .ebx = 0x01c0003f,
     .ecx = 0x3f,
     .edx = 0},
    {.function = 0x4,
     .index = 1,
     .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
     .eax = CACHE(2, 1),
     .ebx = 0x01c0003f,
     .ecx = 0x3f,
     .edx = 0},
    {.function = 0x4,
     .index = 2,
     .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
     .eax = CACHE(3, 2),
     .ebx = 0x00c0003f,
     .ecx = 0x3ff,
     .edx = 0},
    {.function = 0x4,
     .index = 3,
     .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
     .eax = CACHE(3, 3) | HOST_L3_SHARING,
     .ebx = 0x03c0003f,
     .ecx = 0x2fff,
     .edx = 6},
    {.function = 0x4, .index = 4, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX}, /* no more */
    {.function = 0x7, .eax = 0, .ebx = 0x029c67af, .ecx = 0x40000000, .edx = 0xbc000400},
    {.function = 0xb,
     .index = 0,
     .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
     .eax = 1,
     .ebx = 2,
     .ecx = 0x100,
     .edx = 12},
    {.function = 0xb,
     .index = 1,
     .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
     .eax = 4,
     .ebx = 16,
     .ecx = 0x201,
     .edx = 12},
    {.function = 0xb,
     .index = 2,
     .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
     .eax = 7,
     .ebx = 9,
     .ecx = 0x302,
     .edx = 12},
    {.function = 0x80000001, .eax = 0, .ebx = 0, .ecx = 0x00000121 | E1_ECX_SVM, .edx = 0x2c100800},
    {.function = 0x80000008, .eax = 0x3030, .ebx = 0, .ecx = 0x0001b00f, .edx = 0},
    {.function = 0x8000001e, .eax = 0x2a, .ebx = 0x0105, .ecx = 0x0301, .edx = 0x77},
};

#define NENT (sizeof(host_entries) / sizeof(host_entries[0]))

static struct kvm_cpuid2 *host_table(void)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + NENT * sizeof(c->entries[0]));

	assert_non_null(c);
	c->nent = NENT;
	memcpy(c->entries, host_entries, sizeof(host_entries));
	return c;
}

static const struct kvm_cpuid_entry2 *find(const struct kvm_cpuid2 *c, uint32_t function,
					   uint32_t index)
{
	for (unsigned i = 0; i < c->nent; i++) {
		if (c->entries[i].function == function && c->entries[i].index == index)
			return &c->entries[i];
	}
	fail_msg("no leaf 0x%x.%u", function, index);
	return NULL;
}

static const struct kvm_cpuid_entry2 *host(uint32_t function, uint32_t index)
{
	for (unsigned i = 0; i < NENT; i++) {
		if (host_entries[i].function == function && host_entries[i].index == index)
			return &host_entries[i];
	}
	fail_msg("no host leaf 0x%x.%u", function, index);
	return NULL;
}

static unsigned ceil_log2(unsigned n)
{
	unsigned bits = 0;

	while ((1u << bits) < n)
		bits++;
	return bits;
}

static void check_leaf1(const struct kvm_cpuid2 *c, unsigned index, unsigned count)
{
	const struct kvm_cpuid_entry2 *e = find(c, 0x1, 0), *h = host(0x1, 0);

	assert_int_equal(e->ebx >> 24, index);
	assert_int_equal((e->ebx >> 16) & 0xff, count);
	assert_int_equal((e->ebx >> 8) & 0xff, 8); /* CLFLUSH line, 64 bytes */
	assert_int_equal(e->ecx & L1_ECX_HV, L1_ECX_HV);
	assert_int_equal(e->ecx & L1_ECX_VMX, 0);
	assert_int_equal(e->ecx & ~(L1_ECX_HV | L1_ECX_VMX), h->ecx & ~(L1_ECX_HV | L1_ECX_VMX));
	assert_int_equal(e->edx & L1_EDX_HTT, count > 1 ? L1_EDX_HTT : 0);
	assert_int_equal(e->edx & ~L1_EDX_HTT, h->edx & ~L1_EDX_HTT);
	assert_int_equal(e->eax, h->eax);
}

static void check_leaf4(const struct kvm_cpuid2 *c, unsigned count)
{
	for (unsigned sub = 0; sub < 4; sub++) {
		const struct kvm_cpuid_entry2 *e = find(c, 0x4, sub), *h = host(0x4, sub);
		unsigned level = (h->eax >> 5) & 7;

		assert_int_equal(e->eax >> 26, count - 1);
		/* Threads sharing the cache: one for private L1/L2, all for L3. */
		assert_int_equal((e->eax >> 14) & 0xfff, level == 3 ? count - 1 : 0);
		assert_int_equal(e->eax & 0x3ff, h->eax & 0x3ff);
		assert_int_equal(e->ebx, h->ebx);
		assert_int_equal(e->ecx, h->ecx);
		assert_int_equal(e->edx, h->edx);
	}
	/* The terminating null entry is left as it is. */
	assert_memory_equal(find(c, 0x4, 4), host(0x4, 4), sizeof(struct kvm_cpuid_entry2));
}

static void check_leaf_b(const struct kvm_cpuid2 *c, unsigned index, unsigned count)
{
	const struct kvm_cpuid_entry2 *smt = find(c, 0xb, 0), *core = find(c, 0xb, 1),
				      *end = find(c, 0xb, 2);

	/* One thread per core. */
	assert_int_equal(smt->eax, 0);
	assert_int_equal(smt->ebx, 1);
	assert_int_equal(smt->ecx, 0x100);
	assert_int_equal(smt->edx, index);
	/* `count` cores; the shift makes every APIC id land in package 0. */
	assert_int_equal(core->eax & 0x1f, ceil_log2(count));
	assert_int_equal(index >> (core->eax & 0x1f), 0);
	assert_int_equal(core->ebx & 0xffff, count);
	assert_int_equal(core->ecx, 0x201);
	assert_int_equal(core->edx, index);
	/* Level 2 is invalid: type 0, level number kept. */
	assert_int_equal(end->eax, 0);
	assert_int_equal(end->ebx, 0);
	assert_int_equal(end->ecx, 2);
	assert_int_equal(end->edx, index);
}

static void check_amd(const struct kvm_cpuid2 *c, unsigned index, unsigned count)
{
	const struct kvm_cpuid_entry2 *e1 = find(c, 0x80000001, 0), *h1 = host(0x80000001, 0);
	const struct kvm_cpuid_entry2 *e8 = find(c, 0x80000008, 0), *h8 = host(0x80000008, 0);
	const struct kvm_cpuid_entry2 *e1e = find(c, 0x8000001e, 0);

	assert_int_equal(e1->ecx & E1_ECX_SVM, 0);
	assert_int_equal(e1->ecx & E1_ECX_CMP_LEGACY, count > 1 ? E1_ECX_CMP_LEGACY : 0);
	assert_int_equal(e1->ecx & ~(E1_ECX_SVM | E1_ECX_CMP_LEGACY),
			 h1->ecx & ~(E1_ECX_SVM | E1_ECX_CMP_LEGACY));
	assert_int_equal(e1->edx, h1->edx);
	/* NC = cores - 1; ApicIdCoreIdSize 0 means "derive it from NC". */
	assert_int_equal(e8->ecx & 0xff, count - 1);
	assert_int_equal((e8->ecx >> 12) & 0xf, 0);
	assert_int_equal(e8->ecx & ~0xf0ffu, h8->ecx & ~0xf0ffu);
	assert_int_equal(e8->eax, h8->eax);
	assert_int_equal(e1e->eax, index);
	assert_int_equal(e1e->ebx & 0xff, index);
	assert_int_equal((e1e->ebx >> 8) & 0xff, 0); /* one thread per core */
	assert_int_equal(e1e->ecx, 0);
}

static void check_untouched(const struct kvm_cpuid2 *c)
{
	assert_memory_equal(find(c, 0x0, 0), host(0x0, 0), sizeof(struct kvm_cpuid_entry2));
	assert_memory_equal(find(c, 0x7, 0), host(0x7, 0), sizeof(struct kvm_cpuid_entry2));
	assert_int_equal(c->nent, NENT);
	for (unsigned i = 0; i < NENT; i++) {
		assert_int_equal(c->entries[i].function, host_entries[i].function);
		assert_int_equal(c->entries[i].index, host_entries[i].index);
		assert_int_equal(c->entries[i].flags, host_entries[i].flags);
	}
}

static void check_topology(unsigned index, unsigned count)
{
	struct kvm_cpuid2 *c = host_table();

	cpuid_setup(c, index, count);
	check_leaf1(c, index, count);
	check_leaf4(c, count);
	check_leaf_b(c, index, count);
	check_amd(c, index, count);
	check_untouched(c);
	free(c);
}

static void single_cpu(void **state)
{
	(void)state;
	check_topology(0, 1);
}

static void two_cpus(void **state)
{
	(void)state;
	check_topology(0, 2);
	check_topology(1, 2);
}

static void non_power_of_two(void **state)
{
	(void)state;
	check_topology(2, 3);
	check_topology(4, 5);
	check_topology(6, 7);
}

static void max_cpus(void **state)
{
	(void)state;
	check_topology(0, 32);
	check_topology(17, 32);
	check_topology(31, 32);
}

static void every_topology(void **state)
{
	(void)state;
	for (unsigned count = 1; count <= 32; count++) {
		for (unsigned index = 0; index < count; index++)
			check_topology(index, count);
	}
}

/* Setting up the same table twice (vCPU by vCPU from one copy) gives the same result. */
static void idempotent(void **state)
{
	struct kvm_cpuid2 *once = host_table(), *twice = host_table();

	(void)state;
	cpuid_setup(once, 3, 4);
	cpuid_setup(twice, 1, 2);
	cpuid_setup(twice, 3, 4);
	assert_memory_equal(once->entries, twice->entries, NENT * sizeof(once->entries[0]));
	free(once);
	free(twice);
}

static void empty_table(void **state)
{
	struct kvm_cpuid2 c = {.nent = 0};

	(void)state;
	cpuid_setup(&c, 0, 1);
	assert_int_equal(c.nent, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(single_cpu),	cmocka_unit_test(two_cpus),
	    cmocka_unit_test(non_power_of_two), cmocka_unit_test(max_cpus),
	    cmocka_unit_test(every_topology),	cmocka_unit_test(idempotent),
	    cmocka_unit_test(empty_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

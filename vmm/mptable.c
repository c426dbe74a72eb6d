/* MP table (MultiProcessor Specification 1.4): a floating pointer, then the configuration
 * table with one entry per CPU, the ISA bus, the I/O APIC, its 24 interrupt sources and
 * the two local interrupt lines (ExtINT on LINT0, NMI on LINT1). */
#include <errno.h>
#include <string.h>

#include "vmm/layout.h"
#include "vmm/mptable.h"

struct mpf_intel {
	char signature[4]; /* "_MP_" */
	uint32_t physptr;
	uint8_t length; /* in 16-byte units */
	uint8_t specification;
	uint8_t checksum;
	uint8_t feature[5];
} __attribute__((packed));

struct mpc_table {
	char signature[4]; /* "PCMP" */
	uint16_t length;
	uint8_t spec;
	uint8_t checksum;
	char oem[8];
	char productid[12];
	uint32_t oemptr;
	uint16_t oemsize;
	uint16_t oemcount;
	uint32_t lapic;
	uint32_t reserved;
} __attribute__((packed));

struct mpc_cpu {
	uint8_t type;
	uint8_t apicid;
	uint8_t apicver;
	uint8_t cpuflag;
	uint32_t cpufeature;
	uint32_t featureflag;
	uint32_t reserved[2];
} __attribute__((packed));

struct mpc_bus {
	uint8_t type;
	uint8_t busid;
	char bustype[6];
} __attribute__((packed));

struct mpc_ioapic {
	uint8_t type;
	uint8_t apicid;
	uint8_t apicver;
	uint8_t flags;
	uint32_t apicaddr;
} __attribute__((packed));

struct mpc_intsrc {
	uint8_t type;
	uint8_t irqtype;
	uint16_t irqflag;
	uint8_t srcbus;
	uint8_t srcbusirq;
	uint8_t dstapic;
	uint8_t dstirq;
} __attribute__((packed));

enum { MP_PROCESSOR, MP_BUS, MP_IOAPIC, MP_INTSRC, MP_LINTSRC };
enum { MP_IRQ_INT = 0, MP_IRQ_NMI = 1, MP_IRQ_EXTINT = 3 };

#define MP_CPU_ENABLED	  1
#define MP_CPU_BOOT	  2
#define MP_APIC_VERSION	  0x14
#define MP_IOAPIC_VERSION 0x11
#define MP_CPU_FEATURE	  0x600 /* family 6 */
#define MP_CPU_FLAGS	  0x201 /* FPU, APIC */
#define MP_ALL_APICS	  0xff

static uint8_t mp_checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	while (len--)
		sum += *p++;
	return (uint8_t)-sum;
}

int mptable_write(struct guest_mem *gm, unsigned cpus)
{
	size_t table_len = sizeof(struct mpc_table) + cpus * sizeof(struct mpc_cpu) +
			   sizeof(struct mpc_bus) + sizeof(struct mpc_ioapic) +
			   (MPTABLE_IRQS + 2) * sizeof(struct mpc_intsrc);
	size_t total = sizeof(struct mpf_intel) + table_len;
	uint8_t ioapic_id = (uint8_t)cpus;
	struct mpf_intel *mpf;
	struct mpc_table *mpc;
	uint8_t *base, *p;

	if (cpus == 0 || cpus > MPTABLE_MAX_CPUS || total > LAYOUT_EBDA_END - LAYOUT_EBDA)
		return -E2BIG;
	base = gm_ptr(gm, LAYOUT_EBDA, total);
	if (!base)
		return -ENOMEM;
	memset(base, 0, total);

	mpf = (struct mpf_intel *)base;
	mpc = (struct mpc_table *)(base + sizeof(*mpf));
	p = (uint8_t *)(mpc + 1);

	for (unsigned i = 0; i < cpus; i++) {
		struct mpc_cpu cpu = {
		    .type = MP_PROCESSOR,
		    .apicid = (uint8_t)i,
		    .apicver = MP_APIC_VERSION,
		    .cpuflag = MP_CPU_ENABLED | (i == 0 ? MP_CPU_BOOT : 0),
		    .cpufeature = MP_CPU_FEATURE,
		    .featureflag = MP_CPU_FLAGS,
		};
		memcpy(p, &cpu, sizeof(cpu));
		p += sizeof(cpu);
	}
	struct mpc_bus bus = {
	    .type = MP_BUS, .busid = 0, .bustype = {'I', 'S', 'A', ' ', ' ', ' '}};
	memcpy(p, &bus, sizeof(bus));
	p += sizeof(bus);
	struct mpc_ioapic ioapic = {.type = MP_IOAPIC,
				    .apicid = ioapic_id,
				    .apicver = MP_IOAPIC_VERSION,
				    .flags = 1,
				    .apicaddr = (uint32_t)LAYOUT_IOAPIC};
	memcpy(p, &ioapic, sizeof(ioapic));
	p += sizeof(ioapic);
	for (unsigned irq = 0; irq < MPTABLE_IRQS; irq++) {
		struct mpc_intsrc src = {.type = MP_INTSRC,
					 .irqtype = MP_IRQ_INT,
					 .srcbus = 0,
					 .srcbusirq = (uint8_t)irq,
					 .dstapic = ioapic_id,
					 .dstirq = (uint8_t)irq};
		memcpy(p, &src, sizeof(src));
		p += sizeof(src);
	}
	struct mpc_intsrc lint[2] = {
	    {.type = MP_LINTSRC, .irqtype = MP_IRQ_EXTINT, .dstapic = MP_ALL_APICS, .dstirq = 0},
	    {.type = MP_LINTSRC, .irqtype = MP_IRQ_NMI, .dstapic = MP_ALL_APICS, .dstirq = 1},
	};
	memcpy(p, lint, sizeof(lint));
	p += sizeof(lint);

	memcpy(mpc->signature, "PCMP", 4);
	mpc->length = (uint16_t)table_len;
	mpc->spec = 4;
	memcpy(mpc->oem, "CLAWVM  ", 8);
	memcpy(mpc->productid, "MICROVM     ", 12);
	mpc->oemcount = (uint16_t)(cpus + 1 + 1 + MPTABLE_IRQS + 2);
	mpc->lapic = (uint32_t)LAYOUT_LAPIC;
	mpc->checksum = mp_checksum((uint8_t *)mpc, table_len);

	memcpy(mpf->signature, "_MP_", 4);
	mpf->physptr = (uint32_t)(LAYOUT_EBDA + sizeof(*mpf));
	mpf->length = 1;
	mpf->specification = 4;
	mpf->checksum = mp_checksum((uint8_t *)mpf, sizeof(*mpf));
	return (size_t)(p - base) == total ? 0 : -EFAULT;
}

/* The mmio and vsock-reset phases of the hostile guest program: it finds the virtio-mmio
 * windows through /dev/mem (the guest kernel has CONFIG_DEVMEM for this), takes the spare
 * devices away from the guest kernel's drivers and drives them itself from rings in its own
 * locked memory, whose guest-physical addresses /proc/self/pagemap gives.
 *
 * Spare devices only: the virtio-rng device and the virtio-fs device of a share the test
 * adds for this purpose. Never the vsock device (the guest's exec channel, until the last
 * phase) nor the other shares (the guest's root). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <linux/vm_sockets.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_mmio.h>
#include <linux/virtio_ring.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hostile_mmio.h"

/* clawvm's layout (vmm/devices.c): 4 KiB windows from 0xd0000000, in the order the devices
 * were added; the guest kernel names the slot-K device virtio-mmio.K. */
#define MMIO_BASE  0xd0000000ULL
#define MMIO_SLOTS 16
#define MMIO_MAGIC 0x74726976 /* "virt" */

#define FS_TAG_MAX 36 /* the tag at the start of virtio-fs config space */

/* --- registers ----------------------------------------------------------------------------- */

uint32_t reg_read(struct spare *s, unsigned offset)
{
	return s->regs[offset / 4];
}

void reg_write(struct mmio_ctx *c, struct spare *s, unsigned offset, uint32_t value)
{
	s->regs[offset / 4] = value;
	c->st.writes++;
}

void dev_reset(struct mmio_ctx *c, struct spare *s)
{
	reg_write(c, s, VIRTIO_MMIO_STATUS, 0);
	c->st.resets++;
}

void dev_notify(struct mmio_ctx *c, struct spare *s, uint32_t queue)
{
	reg_write(c, s, VIRTIO_MMIO_QUEUE_NOTIFY, queue);
	c->st.notifies++;
}

bool dev_needs_reset(struct spare *s)
{
	return reg_read(s, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET;
}

bool drv_begin(struct mmio_ctx *c, struct spare *s, uint64_t want)
{
	uint32_t status = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER;
	uint64_t offered;

	dev_reset(c, s);
	reg_write(c, s, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	reg_write(c, s, VIRTIO_MMIO_STATUS, status);
	reg_write(c, s, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	offered = (uint64_t)reg_read(s, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
	reg_write(c, s, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	offered |= reg_read(s, VIRTIO_MMIO_DEVICE_FEATURES);
	want &= offered;
	reg_write(c, s, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	reg_write(c, s, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)want);
	reg_write(c, s, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	reg_write(c, s, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(want >> 32));
	reg_write(c, s, VIRTIO_MMIO_STATUS, status | VIRTIO_CONFIG_S_FEATURES_OK);
	return reg_read(s, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK;
}

static void write_gpa(struct mmio_ctx *c, struct spare *s, unsigned low_reg, uint64_t gpa)
{
	reg_write(c, s, low_reg, (uint32_t)gpa);
	reg_write(c, s, low_reg + 4, (uint32_t)(gpa >> 32));
}

bool queue_begin(struct mmio_ctx *c, struct spare *s, unsigned q, uint32_t num)
{
	struct ring *r = &s->ring;

	reg_write(c, s, VIRTIO_MMIO_QUEUE_SEL, q);
	reg_write(c, s, VIRTIO_MMIO_QUEUE_NUM, num);
	write_gpa(c, s, VIRTIO_MMIO_QUEUE_DESC_LOW, r->desc.gpa);
	write_gpa(c, s, VIRTIO_MMIO_QUEUE_AVAIL_LOW, r->avail.gpa);
	write_gpa(c, s, VIRTIO_MMIO_QUEUE_USED_LOW, r->used.gpa);
	reg_write(c, s, VIRTIO_MMIO_QUEUE_READY, 1);
	return reg_read(s, VIRTIO_MMIO_QUEUE_READY) == 1;
}

void drv_go(struct mmio_ctx *c, struct spare *s)
{
	reg_write(c, s, VIRTIO_MMIO_STATUS,
		  VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
		      VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
}

bool drv_start(struct mmio_ctx *c, struct spare *s, uint64_t want, uint16_t num)
{
	ring_clear(&s->ring);
	s->ring.size = num;
	if (!drv_begin(c, s, want) || !queue_begin(c, s, s->queue, num))
		return false;
	drv_go(c, s);
	return true;
}

/* --- rings --------------------------------------------------------------------------------- */

void ring_clear(struct ring *r)
{
	memset(r->desc.va, 0, PAGE_SIZE);
	memset(r->avail.va, 0, PAGE_SIZE);
	memset(r->used.va, 0, PAGE_SIZE);
	memset(r->indirect.va, 0, PAGE_SIZE);
	r->next_avail = 0;
}

void desc_set(struct page *table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
	      uint16_t next)
{
	struct vring_desc *d = (struct vring_desc *)table->va + i % (PAGE_SIZE / sizeof(*d));

	d->addr = addr;
	d->len = len;
	d->flags = flags;
	d->next = next;
}

/* Publishes `head` the way a driver must: the entry, a release fence, then the index. */
void ring_offer(struct ring *r, uint16_t head)
{
	uint16_t *avail = (uint16_t *)r->avail.va;

	avail[2 + r->next_avail % r->size] = head;
	r->next_avail++;
	__atomic_store_n(&avail[1], r->next_avail, __ATOMIC_RELEASE);
}

uint16_t ring_used_idx(struct ring *r)
{
	return __atomic_load_n((uint16_t *)r->used.va + 1, __ATOMIC_ACQUIRE);
}

uint32_t fuse_request(struct spare *s, uint32_t opcode, uint64_t nodeid, const void *body,
		      uint32_t body_len)
{
	struct fuse_in_header h = {
	    .len = (uint32_t)sizeof(h) + body_len,
	    .opcode = opcode,
	    .unique = ++s->fuse_unique,
	    .nodeid = nodeid,
	};

	memcpy(s->ring.buf.va, &h, sizeof(h));
	memcpy(s->ring.buf.va + sizeof(h), body, body_len);
	return h.len;
}

uint16_t chain_valid(struct spare *s, unsigned first)
{
	struct ring *r = &s->ring;

	if (s->device_id == VIRTIO_ID_RNG) {
		desc_set(&r->desc, first, r->buf.gpa, PAGE_SIZE, VRING_DESC_F_WRITE, 0);
	} else {
		struct fuse_getattr_in getattr = {0};
		uint32_t len =
		    fuse_request(s, FUSE_GETATTR, FUSE_ROOT_ID, &getattr, sizeof(getattr));

		desc_set(&r->desc, first, r->buf.gpa, len, VRING_DESC_F_NEXT, first + 1);
		desc_set(&r->desc, first + 1, r->reply.gpa, PAGE_SIZE, VRING_DESC_F_WRITE, 0);
	}
	return (uint16_t)first;
}

enum outcome wait_outcome(struct mmio_ctx *c, struct spare *s, uint16_t want, unsigned ms)
{
	uint64_t until = now_ms() + ms;

	do {
		if ((uint16_t)(ring_used_idx(&s->ring) - want) < 0x8000) {
			c->st.served++;
			return SERVED;
		}
		if (dev_needs_reset(s)) {
			c->st.needs_reset++;
			return NEEDS_RESET;
		}
		usleep(1000);
	} while (now_ms() < until);
	return IGNORED;
}

const char *outcome_name(enum outcome o)
{
	return o == SERVED ? "served" : o == NEEDS_RESET ? "needs-reset" : "ignored";
}

/* --- our memory ---------------------------------------------------------------------------- */

/* Guest-physical address of a locked page of ours (root sees PFNs in pagemap). */
static int page_gpa(int pagemap, const void *va, uint64_t *gpa)
{
	uint64_t entry;
	off_t at = (off_t)((uintptr_t)va / PAGE_SIZE) * (off_t)sizeof(entry);

	if (pread(pagemap, &entry, sizeof(entry), at) != sizeof(entry))
		return -1;
	if (!(entry >> 63) || !(entry & ((1ULL << 55) - 1)))
		return -1; /* not present, or the PFN hidden from us */
	*gpa = (entry & ((1ULL << 55) - 1)) * PAGE_SIZE;
	return 0;
}

/* The six pages of a spare's ring, locked so that their guest-physical addresses hold. */
static int ring_alloc(struct ring *r)
{
	struct page *pages[] = {&r->desc, &r->avail, &r->used, &r->indirect, &r->buf, &r->reply};
	unsigned n = sizeof(pages) / sizeof(pages[0]);
	uint8_t *mem = mmap(NULL, n * PAGE_SIZE, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	int pagemap, ret = 0;

	if (mem == MAP_FAILED || mlock(mem, n * PAGE_SIZE) < 0) {
		fprintf(stderr, "hostile: cannot lock ring memory: %m\n");
		return -1;
	}
	memset(mem, 0, n * PAGE_SIZE);
	pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	for (unsigned i = 0; i < n && ret == 0; i++) {
		pages[i]->va = mem + i * PAGE_SIZE;
		ret = pagemap < 0 ? -1 : page_gpa(pagemap, pages[i]->va, &pages[i]->gpa);
	}
	if (ret < 0)
		fprintf(stderr, "hostile: no guest-physical addresses in /proc/self/pagemap\n");
	if (pagemap >= 0)
		close(pagemap);
	return ret;
}

/* The end of the highest "System RAM" range in /proc/iomem: nothing at or above it is RAM,
 * so the device may be pointed there at will. */
static uint64_t ram_end(void)
{
	FILE *f = fopen("/proc/iomem", "r");
	unsigned long long start, end, top = 0;
	char line[256];

	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx-%llx", &start, &end) == 2 && strstr(line, ": System RAM") &&
		    end + 1 > top)
			top = end + 1;
	}
	if (f)
		fclose(f);
	return top;
}

/* --- finding and taking the devices -------------------------------------------------------- */

static volatile uint32_t *map_window(int mem, unsigned slot)
{
	void *p = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, mem,
		       (off_t)(MMIO_BASE + (uint64_t)slot * PAGE_SIZE));

	return p == MAP_FAILED ? NULL : p;
}

/* The window of slot `slot` if it holds a virtio-mmio device; its DEVICE_ID in *id. */
static volatile uint32_t *probe_window(int mem, unsigned slot, uint32_t *id)
{
	volatile uint32_t *regs = map_window(mem, slot);

	if (!regs)
		return NULL;
	if (regs[VIRTIO_MMIO_MAGIC_VALUE / 4] != MMIO_MAGIC) {
		munmap((void *)regs, PAGE_SIZE);
		return NULL;
	}
	*id = regs[VIRTIO_MMIO_DEVICE_ID / 4];
	return regs;
}

static void fs_tag(volatile uint32_t *regs, char tag[FS_TAG_MAX + 1])
{
	volatile uint8_t *config = (volatile uint8_t *)regs + VIRTIO_MMIO_CONFIG;

	for (unsigned i = 0; i < FS_TAG_MAX; i++)
		tag[i] = (char)config[i];
	tag[FS_TAG_MAX] = '\0';
}

/* The virtio-fs tag mounted at `mount` (the source field of mountinfo). */
static int mount_tag(const char *mount, char *tag, size_t len)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[1024], point[512], type[64], source[128];
	int ret = -1;

	while (f && ret < 0 && fgets(line, sizeof(line), f)) {
		char *sep = strstr(line, " - ");

		if (sscanf(line, "%*s %*s %*s %*s %511s", point) == 1 && sep &&
		    sscanf(sep, " - %63s %127s", type, source) == 2 && !strcmp(point, mount) &&
		    !strcmp(type, "virtiofs")) {
			snprintf(tag, len, "%s", source);
			ret = 0;
		}
	}
	if (f)
		fclose(f);
	return ret;
}

/* Unbinds the guest kernel's driver from the device in slot `slot`, so that it neither
 * races with us nor wakes to find its queues gone. The driver resets the device as it goes. */
static int unbind_slot(unsigned slot)
{
	DIR *dir = opendir("/sys/bus/virtio/devices");
	char want[64], link[512], path[512];
	struct dirent *e;
	int ret = -1;

	snprintf(want, sizeof(want), "/virtio-mmio.%u/", slot);
	while (dir && ret < 0 && (e = readdir(dir))) {
		ssize_t n;
		FILE *f;

		snprintf(path, sizeof(path), "/sys/bus/virtio/devices/%s", e->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (!strstr(link, want))
			continue;
		snprintf(path, sizeof(path), "/sys/bus/virtio/devices/%s/driver/unbind", e->d_name);
		f = fopen(path, "w");
		if (!f) {
			ret = errno == ENOENT ? 0 : -1; /* no driver bound: nothing to do */
			break;
		}
		ret = fputs(e->d_name, f) < 0 ? -1 : 0;
		ret = fclose(f) < 0 ? -1 : ret;
	}
	if (dir)
		closedir(dir);
	return ret;
}

static int take_spare(struct mmio_ctx *c, const char *name, unsigned slot, volatile uint32_t *regs,
		      uint32_t id)
{
	struct spare *s = &c->spare[c->nspare];

	if (unbind_slot(slot) < 0) {
		fprintf(stderr, "hostile: cannot unbind the guest's %s driver: %m\n", name);
		return -1;
	}
	*s = (struct spare){.name = name, .slot = slot, .regs = regs, .device_id = id};
	s->queue = id == VIRTIO_ID_FS ? 1 : 0; /* fs: the request queue, not hiprio */
	s->num_queues = id == VIRTIO_ID_FS ? 2 : 1;
	reg_write(c, s, VIRTIO_MMIO_QUEUE_SEL, s->queue);
	s->queue_max = reg_read(s, VIRTIO_MMIO_QUEUE_NUM_MAX);
	if (s->queue_max == 0 || s->queue_max > SAFE_QUEUE_SIZE) {
		fprintf(stderr, "hostile: %s: QueueNumMax %u is not in 1..%u\n", name, s->queue_max,
			SAFE_QUEUE_SIZE);
		return -1;
	}
	if (ring_alloc(&s->ring) < 0)
		return -1;
	c->nspare++;
	printf("mmio: took %s in slot %u (QueueNumMax %u)\n", name, slot, s->queue_max);
	return 0;
}

/* Finds the rng device and the fs device mounted at `spare_mount`, unmounts the share and
 * takes both from the guest kernel. */
static int take_spares(struct mmio_ctx *c, int mem, const char *spare_mount)
{
	char want_tag[128], tag[FS_TAG_MAX + 1];
	bool rng_done = false, fs_done = false;

	if (mount_tag(spare_mount, want_tag, sizeof(want_tag)) < 0) {
		fprintf(stderr, "hostile: no virtio-fs share is mounted at %s\n", spare_mount);
		return -1;
	}
	if (umount2(spare_mount, 0) < 0) {
		fprintf(stderr, "hostile: umount %s: %m\n", spare_mount);
		return -1;
	}
	for (unsigned slot = 0; slot < MMIO_SLOTS; slot++) {
		uint32_t id;
		volatile uint32_t *regs = probe_window(mem, slot, &id);

		if (!regs)
			break;
		if (id == VIRTIO_ID_RNG && !rng_done) {
			if (take_spare(c, "rng", slot, regs, id) < 0)
				return -1;
			rng_done = true;
			continue;
		}
		if (id == VIRTIO_ID_FS && !fs_done) {
			fs_tag(regs, tag);
			if (!strcmp(tag, want_tag)) {
				if (take_spare(c, "fs", slot, regs, id) < 0)
					return -1;
				fs_done = true;
				continue;
			}
		}
		munmap((void *)regs, PAGE_SIZE); /* the vsock device, or a share the guest uses */
	}
	if (!rng_done || !fs_done) {
		fprintf(stderr, "hostile: found%s%s of the spare devices\n", rng_done ? " rng" : "",
			fs_done ? " fs" : " no fs,");
		return -1;
	}
	return 0;
}

static int open_devmem(void)
{
	int mem = open("/dev/mem", O_RDWR | O_SYNC | O_CLOEXEC);

	if (mem < 0)
		fprintf(stderr, "hostile: /dev/mem: %m (the guest kernel needs CONFIG_DEVMEM)\n");
	return mem;
}

/* --- the phases ---------------------------------------------------------------------------- */

/* A fixed share of the time for the random register writes, the rest for the rings that
 * never run dry (long enough that a VMM they starve fails the soak's 15 s bound on a second
 * command); the rule-breaking rings and queue sizes first, untimed (they are quick). */
#define RANDOM_SHARE_PERCENT 30

int phase_mmio(unsigned seconds, uint64_t seed, const char *spare_mount)
{
	static struct mmio_ctx ctx;
	struct mmio_ctx *c = &ctx;
	uint64_t start = now_ms(), random_end, end = start + (uint64_t)seconds * 1000;
	int mem = open_devmem();

	if (mem < 0)
		return 1;
	rng_seed(&c->rng, seed);
	c->ram_end = ram_end();
	if (c->ram_end == 0 || c->ram_end > MMIO_BASE) {
		/* The hostile addresses below assume no RAM at or above the MMIO windows. */
		fprintf(stderr, "hostile: guest RAM must end below 0x%llx (ends at 0x%llx)\n",
			MMIO_BASE, (unsigned long long)c->ram_end);
		return 1;
	}
	if (take_spares(c, mem, spare_mount) < 0)
		return 1;
	for (unsigned i = 0; i < c->nspare; i++) {
		attack_ring_cases(c, &c->spare[i]);
		attack_queue_num(c, &c->spare[i]);
	}
	random_end = now_ms() + (end - now_ms()) * RANDOM_SHARE_PERCENT / 100;
	if (random_end < end)
		attack_random(c, random_end);
	if (now_ms() < end)
		attack_never_dry(c, end);
	/* Leave nothing the device could still write to once our pages are freed. */
	for (unsigned i = 0; i < c->nspare; i++)
		dev_reset(c, &c->spare[i]);
	printf("mmio: done in %llu s (seed %llu): %lu register writes, %lu notifies, %lu resets, "
	       "%lu chains served, needs-reset %lu times\n",
	       (unsigned long long)(now_ms() - start) / 1000, (unsigned long long)seed,
	       c->st.writes, c->st.notifies, c->st.resets, c->st.served, c->st.needs_reset);
	printf("mmio: QueueNum above QueueNumMax accepted: %u\n", c->st.over_max_accepted);
	return 0;
}

/* Many open connections make the reset long (it ends each of them), and so give the VMM's
 * event loop time to take an event of a connection the reset is ending. */
static unsigned open_connections(unsigned port, unsigned n)
{
	struct sockaddr_vm addr = {
	    .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_HOST, .svm_port = port};
	unsigned opened = 0;

	raise_nofile(n + 64);
	for (unsigned i = 0; i < n; i++) {
		int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
			opened++; /* kept open */
		else if (fd >= 0)
			close(fd);
	}
	return opened;
}

int phase_vsock_reset(unsigned port, unsigned connections)
{
	unsigned opened = open_connections(port, connections);
	int mem = open_devmem();

	if (mem < 0)
		return 1;
	for (unsigned slot = 0; slot < MMIO_SLOTS; slot++) {
		uint32_t id;
		volatile uint32_t *regs = probe_window(mem, slot, &id);

		if (!regs)
			break;
		if (id == VIRTIO_ID_VSOCK) {
			/* Our own exec session rides on this device: what follows is the VMM's
			 * to handle, and this line may never reach anyone. */
			printf("vsock-reset: resetting the vsock device in slot %u under %u more "
			       "connections\n",
			       slot, opened);
			regs[VIRTIO_MMIO_STATUS / 4] = 0;
			sleep(60);
			return 0;
		}
		munmap((void *)regs, PAGE_SIZE);
	}
	fprintf(stderr, "hostile: no vsock device found\n");
	return 1;
}

/* virtio-fs (virtio/fs.c) through the virtio-mmio transport with fake guest RAM and a real
 * temporary directory as the share: config space, FUSE requests served from the request
 * queue by the worker threads and FORGETs from the high-priority queue, a guest that breaks
 * the ring rules (NEEDS_RESET, no crash), and a reset that starts the FUSE session over. */
#include "tests/unit/unit.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "tests/fixtures/vq_driver.h"
#include "virtio/fs.h"

#define HIPRIO	0
#define REQUEST 1

#define RAM	(4 * MiB)
#define QSIZE	64
#define RING(q) (0x10000 + 0x4000ULL * (q)) /* desc; avail at +0x1000, used at +0x2000 */
#define REQ_BUF 0x100000ULL		    /* one request at a time */
#define REP_BUF 0x200000ULL
#define WAIT_MS 5000

struct fixture {
	struct guest_mem gm;
	struct virtio_fs fs;
	struct virtio_mmio mmio;
	char dir[64];
	struct vqd_mmio drv; /* the guest's driver: rings at RING(q) */
	uint64_t unique;
};

static uint32_t rd(struct fixture *f, uint64_t off)
{
	return vqd_mmio_read(&f->mmio, off);
}

static void wr(struct fixture *f, uint64_t off, uint32_t value)
{
	vqd_mmio_write(&f->mmio, off, value);
}

static void no_irq(void *opaque)
{
	(void)opaque;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char path[128];
	int fd;

	assert_non_null(f);
	fake_ram_init(&f->gm, RAM, 0);
	strcpy(f->dir, "/tmp/clawvm-fs-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(path, sizeof(path), "%s/hello", f->dir);
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "hello, guest", 12), 12);
	close(fd);
	assert_int_equal(virtio_fs_init(&f->fs, "workspace", f->dir, false, &unlimited_fds), 0);
	virtio_mmio_init(&f->mmio, &f->fs.dev, &f->gm, no_irq, f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char path[128];

	virtio_fs_destroy(&f->fs);
	virtio_mmio_destroy(&f->mmio);
	snprintf(path, sizeof(path), "%s/hello", f->dir);
	unlink(path);
	rmdir(f->dir);
	fake_ram_free(&f->gm);
	free(f);
	return 0;
}

/* A reset, then the driver's start on fresh rings: VERSION_1, both queues, DRIVER_OK. */
static void driver_start(struct fixture *f)
{
	wr(f, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(vqd_mmio_start(&f->drv, &f->mmio, 1ULL << VIRTIO_F_VERSION_1, 2, QSIZE,
					RING(0), RING(1) - RING(0)),
			 0);
}

static struct vq_driver *vq(struct fixture *f, unsigned q)
{
	return &f->drv.vq[q];
}

/* Waits (the workers are threads) until queue q's used index reaches `want`. */
static void wait_used(struct fixture *f, unsigned q, uint16_t want)
{
	struct timespec tick = {.tv_nsec = 1000 * 1000};

	for (int i = 0; i < WAIT_MS && vqd_used_idx(vq(f, q)) != want; i++)
		nanosleep(&tick, NULL);
	assert_int_equal(vqd_used_idx(vq(f, q)), want);
}

/* One request (header + args) in one readable buffer, the reply in one writable buffer of
 * `room` bytes; returns the reply's length, the reply left at REP_BUF. */
static uint32_t request(struct fixture *f, uint32_t opcode, uint64_t nodeid, const void *args,
			size_t args_len, uint32_t room)
{
	struct fuse_in_header in = {
	    .len = (uint32_t)(sizeof(in) + args_len),
	    .opcode = opcode,
	    .unique = ++f->unique,
	    .nodeid = nodeid,
	};
	uint8_t *req = gm_ptr(&f->gm, REQ_BUF, sizeof(in) + args_len);
	const struct vqd_buf bufs[] = {{REQ_BUF, (uint32_t)(sizeof(in) + args_len), false},
				       {REP_BUF, room, true}};
	uint16_t before = vqd_used_idx(vq(f, REQUEST));

	memcpy(req, &in, sizeof(in));
	if (args_len)
		memcpy(req + sizeof(in), args, args_len);
	memset(gm_ptr(&f->gm, REP_BUF, 0x10000), 0xee, 0x10000);
	vqd_chain(vq(f, REQUEST), 0, bufs, room ? 2 : 1);
	vqd_mmio_offer(&f->drv, REQUEST, 0);
	wait_used(f, REQUEST, (uint16_t)(before + 1));
	return vqd_used_elem(vq(f, REQUEST), before).len;
}

static const struct fuse_out_header *reply(struct fixture *f)
{
	return gm_ptr(&f->gm, REP_BUF, sizeof(struct fuse_out_header));
}

static void fuse_init(struct fixture *f)
{
	struct fuse_init_in init = {.major = FUSE_KERNEL_VERSION,
				    .minor = FUSE_KERNEL_MINOR_VERSION,
				    .max_readahead = 65536};
	uint32_t len = request(f, FUSE_INIT, 0, &init, sizeof(init), 4096);
	const struct fuse_init_out *out = gm_ptr(&f->gm, REP_BUF + 16, sizeof(*out));

	assert_int_equal(len, sizeof(struct fuse_out_header) + sizeof(struct fuse_init_out));
	assert_int_equal(reply(f)->error, 0);
	assert_int_equal(reply(f)->unique, f->unique);
	assert_int_equal(out->major, FUSE_KERNEL_VERSION);
}

static void config_space(void **state)
{
	struct fixture *f = *state;
	uint8_t config[40];

	assert_int_equal(rd(f, VIRTIO_MMIO_DEVICE_ID), 26);
	for (unsigned i = 0; i < sizeof(config); i++)
		virtio_mmio_access(&f->mmio, VIRTIO_MMIO_CONFIG + i, &config[i], 1, false);
	assert_memory_equal(config, "workspace", 9);
	assert_true(all_bytes(config + 9, 36 - 9, 0));
	assert_int_equal(config[36] | config[37] << 8 | config[38] << 16 | config[39] << 24, 1);
}

static void bad_tags_refused(void **state)
{
	struct virtio_fs vfs;
	struct fixture *f = *state;

	assert_int_equal(virtio_fs_init(&vfs, "", f->dir, false, &unlimited_fds), -EINVAL);
	assert_int_equal(virtio_fs_init(&vfs, "0123456789012345678901234567890123456", f->dir,
					false, &unlimited_fds),
			 -EINVAL);
	assert_int_equal(virtio_fs_init(&vfs, "t", "/no/such/dir", false, &unlimited_fds), -ENOENT);
}

/* INIT, LOOKUP, OPEN, READ: the host file's bytes in the guest's buffer. */
static void serves_requests(void **state)
{
	struct fixture *f = *state;
	struct fuse_entry_out entry;
	const struct fuse_entry_out *miss;
	struct fuse_open_in open_in = {.flags = O_RDONLY};
	struct fuse_open_out open_out;
	struct fuse_read_in read_in = {.size = 4096};
	uint32_t len;

	driver_start(f);
	fuse_init(f);
	len = request(f, FUSE_LOOKUP, FUSE_ROOT_ID, "hello", 6, 4096);
	assert_int_equal(len, 16 + sizeof(entry));
	assert_int_equal(reply(f)->error, 0);
	memcpy(&entry, gm_ptr(&f->gm, REP_BUF + 16, sizeof(entry)), sizeof(entry));
	assert_int_equal(entry.attr.size, 12);
	len = request(f, FUSE_OPEN, entry.nodeid, &open_in, sizeof(open_in), 4096);
	assert_int_equal(reply(f)->error, 0);
	memcpy(&open_out, gm_ptr(&f->gm, REP_BUF + 16, sizeof(open_out)), sizeof(open_out));
	read_in.fh = open_out.fh;
	len = request(f, FUSE_READ, entry.nodeid, &read_in, sizeof(read_in), 4096);
	assert_int_equal(len, 16 + 12);
	assert_int_equal(reply(f)->error, 0);
	assert_memory_equal(gm_ptr(&f->gm, REP_BUF + 16, 12), "hello, guest", 12);
	/* The writable buffer is only as long as the reply: nothing beyond it was touched. */
	assert_true(all_bytes(gm_ptr(&f->gm, REP_BUF + 28, 64), 64, 0xee));
	/* A name that does not exist (an entry with node id 0: a miss the guest may cache),
	 * an unknown opcode. */
	len = request(f, FUSE_LOOKUP, FUSE_ROOT_ID, "nothing", 8, 4096);
	assert_int_equal(len, 16 + sizeof(*miss));
	assert_int_equal(reply(f)->error, 0);
	miss = gm_ptr(&f->gm, REP_BUF + 16, sizeof(*miss));
	assert_int_equal(miss->nodeid, 0);
	len = request(f, 9999, FUSE_ROOT_ID, NULL, 0, 4096);
	assert_int_equal(len, 16);
	assert_int_equal(reply(f)->error, -ENOSYS);
}

/* FORGET goes on the high-priority queue and takes no reply: the chain comes back empty. */
static void forget_on_hiprio(void **state)
{
	struct fixture *f = *state;
	struct {
		struct fuse_in_header in;
		struct fuse_forget_in forget;
	} req = {{.len = sizeof(req), .opcode = FUSE_FORGET, .unique = 77, .nodeid = 2},
		 {.nlookup = 1}};

	driver_start(f);
	fuse_init(f);
	memcpy(gm_ptr(&f->gm, REQ_BUF + 0x8000, sizeof(req)), &req, sizeof(req));
	vqd_desc(vq(f, HIPRIO), 0, REQ_BUF + 0x8000, sizeof(req), 0, 0);
	vqd_mmio_offer(&f->drv, HIPRIO, 0);
	wait_used(f, HIPRIO, 1);
	assert_int_equal(vqd_used_elem(vq(f, HIPRIO), 0).len, 0);
}

/* A request without a writable buffer, and one whose header claims more than it holds:
 * each comes back with nothing written, and the device goes on serving. */
static void malformed_requests_answered_or_dropped(void **state)
{
	struct fixture *f = *state;
	uint8_t *req = gm_ptr(&f->gm, REQ_BUF, 64);
	uint32_t len;

	driver_start(f);
	fuse_init(f);
	assert_int_equal(request(f, FUSE_GETATTR, FUSE_ROOT_ID, NULL, 0, 0), 0);
	len = request(f, FUSE_GETATTR, FUSE_ROOT_ID, NULL, 0, 8); /* reply room < header */
	assert_int_equal(len, 0);
	/* A header saying 4 KiB in a 40-byte buffer. */
	memset(req, 0, 64);
	req[0] = 0x00, req[1] = 0x10; /* len = 4096 */
	req[4] = FUSE_GETATTR;
	vqd_desc(vq(f, REQUEST), 0, REQ_BUF, 40, VRING_DESC_F_NEXT, 1);
	vqd_desc(vq(f, REQUEST), 1, REP_BUF, 4096, VRING_DESC_F_WRITE, 0);
	vqd_mmio_offer(&f->drv, REQUEST, 0);
	wait_used(f, REQUEST, (uint16_t)(vq(f, REQUEST)->avail_idx));
	assert_int_equal(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
	len = request(f, FUSE_LOOKUP, FUSE_ROOT_ID, "hello", 6, 4096);
	assert_int_equal(reply(f)->error, 0);
}

/* A head beyond the queue: the device needs a reset, the VMM goes on; after the reset the
 * FUSE session starts over (a fresh INIT is accepted) and requests are served again. */
static void broken_ring_then_reset(void **state)
{
	struct fixture *f = *state;
	struct timespec tick = {.tv_nsec = 1000 * 1000};

	uint16_t served;

	driver_start(f);
	fuse_init(f);
	served = vqd_used_idx(vq(f, REQUEST));
	vqd_mmio_offer(&f->drv, REQUEST, QSIZE + 5);
	for (int i = 0; i < WAIT_MS && !(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	     i++)
		nanosleep(&tick, NULL);
	assert_true(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET);
	assert_int_equal(vqd_used_idx(vq(f, REQUEST)), served);

	driver_start(f);
	assert_int_equal(rd(f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
	f->unique = 100;
	fuse_init(f);
	request(f, FUSE_LOOKUP, FUSE_ROOT_ID, "hello", 6, 4096);
	assert_int_equal(reply(f)->error, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(config_space, setup, teardown),
	    cmocka_unit_test_setup_teardown(bad_tags_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(serves_requests, setup, teardown),
	    cmocka_unit_test_setup_teardown(forget_on_hiprio, setup, teardown),
	    cmocka_unit_test_setup_teardown(malformed_requests_answered_or_dropped, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(broken_ring_then_reset, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

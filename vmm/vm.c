/* The builder (vm_create) wires one microVM in the order the guest needs it: KVM, memory,
 * kernel, initrd with the command, command line, boot tables, devices, vCPUs. vm_run waits
 * for its end and turns that into an exit status. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "api/guest_abi.h"
#include "base/log.h"
#include "vmm/boot.h"
#include "vmm/cmdline.h"
#include "vmm/initrd.h"
#include "vmm/layout.h"
#include "vmm/mptable.h"
#include "vmm/seccomp.h"
#include "vmm/vm.h"

#define COM1_PORT 0x3f8
#define COM1_IRQ  4

void vm_stop(struct vm *vm, enum vm_end why, const char *fmt, ...)
{
	uint64_t one = 1;

	pthread_mutex_lock(&vm->end_lock);
	if (vm->end == VM_END_NONE) {
		vm->end = why;
		if (fmt) {
			va_list ap;

			va_start(ap, fmt);
			vsnprintf(vm->end_msg, sizeof(vm->end_msg), fmt, ap);
			va_end(ap);
		}
	}
	pthread_mutex_unlock(&vm->end_lock);
	atomic_store(&vm->stopping, 1);
	if (write(vm->stop_fd, &one, sizeof(one)) < 0) {
		/* The counter is already set: the main loop wakes anyway. */
	}
}

static void console_output(void *opaque, uint8_t byte)
{
	struct vm *vm = opaque;

	vm->console_tail[vm->console_pos++] = (char)byte;
	if (vm->console_pos == sizeof(vm->console_tail)) {
		vm->console_pos = 0;
		vm->console_wrapped = 1;
	}
	console_log_write(&vm->console_log, &byte, 1);
}

static void console_irq(void *opaque)
{
	kvm_irq_pulse(&((struct vm *)opaque)->kvm, COM1_IRQ);
}

static const struct uart_ops console_uart_ops = {.output = console_output, .irq = console_irq};

static uint32_t uart_port_read(void *opaque, uint16_t offset, unsigned size)
{
	(void)size;
	return uart_read(opaque, offset);
}

static void uart_port_write(void *opaque, uint16_t offset, unsigned size, uint32_t value)
{
	(void)size;
	uart_write(opaque, offset, (uint8_t)value);
}

static const struct io_device_ops uart_port_ops = {.read = uart_port_read,
						   .write = uart_port_write};

static void vm_reset(void *opaque)
{
	vm_stop(opaque, VM_END_RESET, NULL);
}

/* What the vCPUs reach of the VM (struct vcpu_machine). */
static bool vm_vcpu_mmio(void *opaque, uint64_t gpa, uint8_t *data, unsigned len, bool is_write)
{
	return devices_mmio(&((struct vm *)opaque)->devices, gpa, data, len, is_write);
}

static void vm_vcpu_stop(void *opaque, enum vcpu_stop why, const char *msg)
{
	static const enum vm_end ends[] = {
	    [VCPU_STOP_RESET] = VM_END_RESET,
	    [VCPU_STOP_TRIPLE_FAULT] = VM_END_TRIPLE_FAULT,
	    [VCPU_STOP_ERROR] = VM_END_ERROR,
	};

	if (msg)
		vm_stop(opaque, ends[why], "%s", msg);
	else
		vm_stop(opaque, ends[why], NULL);
}

static int vm_load_kernel(struct vm *vm)
{
	const char *path = vm->cfg->kernel_path;
	struct stat st;
	void *image;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log_err("kernel `%s`: %m", path);
		return -errno;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
		log_err("kernel `%s`: not a regular, non-empty file", path);
		close(fd);
		return -EINVAL;
	}
	/* Not MAP_POPULATE: the loader faults in only the parts it copies. */
	image = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (image == MAP_FAILED) {
		log_err("kernel `%s`: cannot map: %m", path);
		return -errno;
	}
	ret = kernel_load(&vm->mem, image, (size_t)st.st_size, path, &vm->kernel);
	munmap(image, (size_t)st.st_size);
	return ret;
}

/* The FUSE servers hold one O_PATH descriptor per inode the guest keeps looked up (a
 * build tree, 10,000 files): lift the soft limit to the hard one, and the hard one as far
 * as the kernel allows (1M) when we may. */
static void vm_raise_fd_limit(void)
{
	struct rlimit lim;

	if (getrlimit(RLIMIT_NOFILE, &lim) < 0)
		return;
	if (lim.rlim_max < FD_BUDGET_NOFILE) {
		struct rlimit more = {FD_BUDGET_NOFILE, FD_BUDGET_NOFILE};

		if (setrlimit(RLIMIT_NOFILE, &more) == 0)
			return;
	}
	lim.rlim_cur = lim.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &lim) < 0)
		log_debug("cannot raise the open-file limit: %m");
}

/* Every share, the root first, then the -v shares in order, with its tag and its
 * /clawvm/mounts record. */
static void vm_list_shares(struct vm *vm)
{
	const struct vm_config *cfg = vm->cfg;
	unsigned r = 0;

	vm->nfs = 0;
	if (cfg->rootfs)
		vm->fs_shares[vm->nfs++] = (struct vm_share){cfg->rootfs, "/", true};
	for (unsigned i = 0; i < cfg->nshares; i++)
		vm->fs_shares[vm->nfs++] = cfg->shares[i];
	for (unsigned i = 0; i < vm->nfs; i++) {
		snprintf(vm->fs_tags[i], sizeof(vm->fs_tags[i]), "clawvm%u", i);
		vm->mount_records[r++] = vm->fs_tags[i];
		vm->mount_records[r++] = (char *)vm->fs_shares[i].guest;
		vm->mount_records[r++] = vm->fs_shares[i].read_only ? "ro" : "rw";
	}
	vm->mount_records[r] = NULL;
}

/* The egress ports as /clawvm/egress records, checked as guest-init will check them (a
 * port it refuses would cost the guest all its egress). */
static int vm_list_egress(struct vm *vm)
{
	const struct vm_config *cfg = vm->cfg;

	if (cfg->negress_ports > CLAWVM_EGRESS_MAX_PORTS) {
		log_err("%u egress ports: at most %d", cfg->negress_ports, CLAWVM_EGRESS_MAX_PORTS);
		return -EINVAL;
	}
	for (unsigned i = 0; i < cfg->negress_ports; i++) {
		uint16_t port = cfg->egress_ports[i];

		if (port == 0) {
			log_err("egress port 0: ports are 1 to 65535");
			return -EINVAL;
		}
		for (unsigned j = 0; j < i; j++) {
			if (cfg->egress_ports[j] == port) {
				log_err("egress port %u given twice", (unsigned)port);
				return -EINVAL;
			}
		}
		snprintf(vm->egress_ports[i], sizeof(vm->egress_ports[i]), "%u", (unsigned)port);
		vm->egress_records[i] = vm->egress_ports[i];
	}
	vm->egress_records[cfg->negress_ports] = NULL;
	return 0;
}

/* The guest image, then (4-byte aligned) the archive with the mounts and the egress ports,
 * each file there only if it has records. */
static int vm_load_initrd(struct vm *vm, struct boot_info *bi)
{
	const char *path = vm->cfg->initrd_path;
	struct initrd_file files[2];
	unsigned nfiles = 0;
	size_t archive_size = 0;
	uint64_t image_size, padded, total, gpa;
	struct stat st;
	uint8_t *dst;
	int fd, ret;

	if (vm->mount_records[0])
		files[nfiles++] = (struct initrd_file){&CLAWVM_MOUNTS_PATH[1], vm->mount_records};
	if (vm->egress_records[0])
		files[nfiles++] = (struct initrd_file){&CLAWVM_EGRESS_PATH[1], vm->egress_records};
	if (nfiles)
		archive_size = initrd_archive_size(files, nfiles);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log_err("initrd `%s`: %m", path);
		return -errno;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		log_err("initrd `%s`: not a regular file", path);
		close(fd);
		return -EINVAL;
	}
	image_size = (uint64_t)st.st_size;
	padded = (image_size + 3) & ~3ULL;
	total = padded + archive_size;
	ret = boot_place_initrd(&vm->mem, &vm->kernel, total, &gpa);
	if (ret < 0)
		goto out;
	dst = gm_ptr(&vm->mem, gpa, total);
	if (!dst) {
		ret = -ENOMEM;
		goto out;
	}
	gm_prefault(&vm->mem, gpa, total);
	for (uint64_t done = 0; done < image_size;) {
		ssize_t n = pread(fd, dst + done, image_size - done, (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_err("initrd `%s`: read failed%s%s", path,
				n < 0 ? ": " : " (file shrank)", n < 0 ? strerror(errno) : "");
			ret = -EIO;
			goto out;
		}
		done += (uint64_t)n;
	}
	memset(dst + image_size, 0, padded - image_size);
	if (archive_size &&
	    initrd_archive(dst + padded, archive_size, files, nfiles) != archive_size) {
		ret = -EFAULT;
		goto out;
	}
	bi->initrd_gpa = gpa;
	bi->initrd_size = total;
out:
	close(fd);
	return ret;
}

static int vm_write_cmdline(struct vm *vm, struct cmdline *cl, struct boot_info *bi)
{
	const char *line = cmdline_get(cl);

	if (!line) {
		log_err("the kernel command line is too long");
		return -E2BIG;
	}
	log_debug("kernel command line: %s", line);
	bi->cmdline_len = strlen(line);
	return boot_write_cmdline(&vm->mem, &vm->kernel, line);
}

static int vm_add_devices(struct vm *vm, struct cmdline *cl)
{
	int ret;

	uart_init(&vm->console, &console_uart_ops, vm);
	vm->kbd = (struct i8042){.reset = vm_reset, .opaque = vm};
	atomic_init(&vm->status.status, -1);

	ret = iobus_add(&vm->io, COM1_PORT, UART_PORT_COUNT, &uart_port_ops, &vm->console);
	if (!ret)
		ret = iobus_add(&vm->io, I8042_DATA_PORT, I8042_COMMAND_PORT - I8042_DATA_PORT + 1,
				&i8042_ops, &vm->kbd);
	if (!ret)
		ret = iobus_add(&vm->io, POST_PORT, 1, &post_port_ops, NULL);
	if (!ret)
		ret = iobus_add(&vm->io, CLAWVM_STATUS_PORT, CLAWVM_STATUS_PORT_LEN,
				&status_port_ops, &vm->status);
	if (!ret)
		ret = iobus_add(&vm->io, CLAWVM_READY_PORT, 1, &ready_port_ops, &vm->ready);
	if (ret) {
		log_err("cannot register port devices: %s", strerror(-ret));
		return ret;
	}
	virtio_rng_init(&vm->rng);
	ret = devices_add_virtio(&vm->devices, &vm->kvm, &vm->loop, &vm->mem, &vm->rng.dev, cl);
	if (ret < 0)
		return ret;
	ret = virtio_vsock_init(&vm->vsock, vm->cfg->vsock_cid, vm->cfg->vsock_uds, &vm->loop,
				&vm->fds);
	if (ret < 0)
		return ret;
	vm->vsock_ready = 1;
	ret = devices_add_virtio(&vm->devices, &vm->kvm, &vm->loop, &vm->mem, &vm->vsock.dev, cl);
	if (ret < 0)
		return ret;
	for (unsigned i = 0; i < vm->nfs; i++) {
		ret = virtio_fs_init(&vm->fs[i], vm->fs_tags[i], vm->fs_shares[i].host,
				     vm->fs_shares[i].read_only, &vm->fds);
		if (ret < 0)
			return ret;
		vm->fs_ready++;
		/* Shares the guest may write (the root is read-only): their changes told. */
		if (vm->cfg->file_changed && !vm->fs_shares[i].read_only)
			fuse_server_watch(vm->fs[i].server, vm->cfg->file_changed,
					  vm->cfg->file_opaque);
		ret = devices_add_virtio(&vm->devices, &vm->kvm, &vm->loop, &vm->mem,
					 &vm->fs[i].dev, cl);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int vm_create(const struct vm_config *cfg, struct vm **out)
{
	struct boot_info bi = {0};
	struct cmdline cl;
	struct vm *vm;
	int ret;

	vm = calloc(1, sizeof(*vm));
	if (!vm) {
		if (cfg->exec_fd >= 0)
			close(cfg->exec_fd);
		return -ENOMEM;
	}
	vm->cfg = cfg;
	/* The session's connection is the first exec connection: one path into the guest. */
	ret = execq_init(&vm->execs); /* checked with the other eventfds below */
	if (cfg->exec_fd >= 0 && execq_push(&vm->execs, cfg->exec_fd, true) < 0)
		log_err("exec: cannot queue the command's connection"); /* an empty, open queue */
	vm->exec_handler.fd = -1;
	vcpu_park_init(&vm->park);
	vm->kvm.dev_fd = vm->kvm.vm_fd = -1;
	vm->console_log.fd = -1;
	vm->grace.fd = -1;
	vm->ready.fd = -1;
	vm->loop.epfd = -1;
	vm->nr_vcpus = 0;
	pthread_mutex_init(&vm->end_lock, NULL);
	vm->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vm->ready.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vm->grace.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (ret < 0 || vm->stop_fd < 0 || vm->ready.fd < 0 || vm->grace.fd < 0) {
		ret = -errno;
		log_err("eventfd/timerfd: %m");
		goto err;
	}
	if (cfg->console_log) {
		ret = console_log_open(&vm->console_log, cfg->console_log, CONSOLE_LOG_MAX);
		if (ret < 0)
			goto err;
	}

	ret = evloop_init(&vm->loop);
	if (ret < 0)
		goto err;
	/* 1. KVM: the VM with its interrupt controllers and timer. */
	ret = kvm_open(&vm->kvm, cfg->kvm_path, cfg->kvm_fd, cfg->cpus);
	if (ret < 0)
		goto err;
	/* 2. Guest RAM. */
	ret = gm_create(&vm->mem, cfg->mem_mib * MiB);
	if (ret < 0)
		goto err;
	ret = kvm_set_memory(&vm->kvm, &vm->mem);
	if (ret < 0)
		goto err;
	/* 3. Kernel, and the initrd with the shares to mount and the egress ports. */
	vm_list_shares(vm);
	ret = vm_list_egress(vm);
	if (ret < 0)
		goto err;
	if (vm->nfs)
		vm_raise_fd_limit();
	fd_budget_init(&vm->fds, FD_BUDGET_RESERVE);
	ret = vm_load_kernel(vm);
	if (ret < 0)
		goto err;
	ret = vm_load_initrd(vm, &bi);
	if (ret < 0)
		goto err;
	/* 4. Devices, which announce themselves on the command line. */
	cmdline_init(&cl);
	cmdline_add_defaults(&cl, cfg->verbose);
	ret = vm_add_devices(vm, &cl);
	if (ret < 0)
		goto err;
	if (cfg->cmdline) {
		ret = cmdline_add_user(&cl, cfg->cmdline);
		if (ret < 0)
			goto err;
	}
	ret = vm_write_cmdline(vm, &cl, &bi);
	if (ret < 0)
		goto err;
	/* The tables the kernel reads. */
	ret = boot_write_info(&vm->mem, &vm->kernel, &bi);
	if (!ret)
		ret = boot_write_tables(&vm->mem);
	if (!ret)
		ret = mptable_write(&vm->mem, cfg->cpus);
	if (ret < 0) {
		log_err("cannot write the boot tables into guest memory: %s", strerror(-ret));
		goto err;
	}
	/* 5. vCPUs; the first one starts at the kernel's entry, the others wait for SIPI. */
	vm->machine = (struct vcpu_machine){
	    .kvm = &vm->kvm,
	    .cpus = cfg->cpus,
	    .kernel = &vm->kernel,
	    .io = &vm->io,
	    .mmio = vm_vcpu_mmio,
	    .stop = vm_vcpu_stop,
	    .opaque = vm,
	    .stopping = &vm->stopping,
	    .park = &vm->park,
	    .seccomp = cfg->seccomp,
	};
	for (unsigned i = 0; i < cfg->cpus; i++) {
		ret = vcpu_create(&vm->machine, &vm->vcpus[i], i);
		if (ret < 0)
			goto err;
		vm->nr_vcpus++;
	}
	ret = vcpu_boot_setup(&vm->vcpus[0]);
	if (ret < 0)
		goto err;
	*out = vm;
	return 0;
err:
	vm_destroy(vm);
	return ret;
}

/* The last console line holding `needle`, for an error message; NULL if none. */
static const char *console_find_line(struct vm *vm, const char *needle, char *line, size_t cap)
{
	char text[VM_CONSOLE_TAIL + 1];
	size_t len = 0;
	char *hit, *next, *end;

	if (vm->console_wrapped) {
		memcpy(text, vm->console_tail + vm->console_pos, VM_CONSOLE_TAIL - vm->console_pos);
		len = VM_CONSOLE_TAIL - vm->console_pos;
	}
	memcpy(text + len, vm->console_tail, vm->console_pos);
	len += vm->console_pos;
	text[len] = '\0';
	for (size_t i = 0; i < len; i++) {
		if (text[i] == '\0')
			text[i] = ' ';
	}
	hit = strstr(text, needle);
	if (!hit)
		return NULL;
	while ((next = strstr(hit + 1, needle)))
		hit = next;
	end = strpbrk(hit, "\r\n");
	if (end)
		*end = '\0';
	snprintf(line, cap, "%s", hit);
	return line;
}

static int vm_result(struct vm *vm)
{
	char line[256];
	int status;

	switch (vm->end) {
	case VM_END_RESET:
		status = atomic_load(&vm->status.status);
		if (status >= 0)
			return status;
		if (console_find_line(vm, "Kernel panic", line, sizeof(line)))
			log_err("the guest kernel panicked: %s", line);
		else
			log_err("the guest rebooted before its command finished (no exit status "
				"from guest-init)%s",
				vm->cfg->console_log ? ""
						     : "; --console-log FILE shows its console");
		return VM_EXIT_FAILURE;
	case VM_END_SIGNAL:
		return 128 + vm->end_signal;
	case VM_END_TRIPLE_FAULT:
	case VM_END_ERROR:
		log_err("%s", vm->end_msg);
		return VM_EXIT_FAILURE;
	case VM_END_NONE:
	default:
		log_err("the VM ended for no known reason");
		return VM_EXIT_FAILURE;
	}
}

void vm_stop_signal(struct vm *vm, int signo)
{
	pthread_mutex_lock(&vm->end_lock);
	if (vm->end == VM_END_NONE)
		vm->end_signal = signo;
	pthread_mutex_unlock(&vm->end_lock);
	vm_stop(vm, VM_END_SIGNAL, NULL);
}

/* vm_stop_later's time is up, and the VM still runs: the guest ignored the signal, or
 * cannot act on it (it may be stuck). */
static void vm_grace_over(struct ev_handler *h, uint32_t events)
{
	struct vm *vm = h->opaque;
	int signo = atomic_load(&vm->grace_signal);
	unsigned ms = atomic_load(&vm->grace_ms);

	(void)events;
	if (!evloop_drain(h))
		return;
	if (ms % 1000 == 0)
		log_warn("the sandbox did not end within %u s of signal %d; stopping it", ms / 1000,
			 signo);
	else
		log_warn("the sandbox did not end within %u ms of signal %d; stopping it", ms,
			 signo);
	vm_stop_signal(vm, signo);
}

void vm_stop_later(struct vm *vm, int signo, unsigned ms)
{
	int none = 0;

	/* The time is stored before the timer can fire, by the one caller that won. */
	if (!atomic_compare_exchange_strong(&vm->grace_signal, &none, signo))
		return;
	atomic_store(&vm->grace_ms, ms);
	if (evloop_timer_once(vm->grace.fd, ms) < 0)
		log_warn("cannot arm the stop timer: %m; only the guest can end the sandbox now");
}

/* Passes the exec connections queued to the guest, once it listens. On the loop's thread. */
static void vm_exec_flush(struct vm *vm)
{
	struct exec_conn conns[EXECQ_MAX];
	unsigned n;

	if (!vm->guest_ready)
		return;
	n = execq_take(&vm->execs, conns);
	for (unsigned i = 0; i < n; i++) {
		/* The device owns the fd from here on, failing or not: when the guest or a reset
		 * ends the connection, the device's close is the peer's EOF. */
		if (virtio_vsock_connect_fd(&vm->vsock, conns[i].fd, CLAWVM_EXEC_PORT) == 0)
			continue;
		if (conns[i].vital)
			vm_stop(vm, VM_END_ERROR, "cannot connect the command to the guest");
		else
			log_warn("exec: the vsock device refuses another connection (at its cap)");
	}
}

static void vm_exec_wake(struct ev_handler *h, uint32_t events)
{
	(void)events;
	if (evloop_drain(h))
		vm_exec_flush(h->opaque);
}

int vm_exec_connect(struct vm *vm, int fd)
{
	/* A push after this check (the VM began to stop meanwhile) stays queued until
	 * vm_destroy closes it: the peer sees EOF all the same. */
	if (atomic_load(&vm->stopping)) {
		close(fd);
		return -ESRCH;
	}
	return execq_push(&vm->execs, fd, false);
}

/* guest-init listens on its exec port: the exec connections waiting (the session's
 * first) go to it now, and later ones as they come. */
static void vm_guest_ready(struct ev_handler *h, uint32_t events)
{
	struct vm *vm = h->opaque;
	uint64_t one = 1;

	(void)events;
	if (!evloop_drain(h))
		return;
	/* The word counts once: later writes of the port (a guest may repeat it at will) only
	 * count up an eventfd nobody watches. */
	evloop_del(&vm->loop, h);
	atomic_store(&vm->ready_us, log_clock_us());
	log_debug("guest-init listens: exec connections go to it");
	vm->guest_ready = true;
	vm_exec_flush(vm);
	if (atomic_load(&vm->stopping))
		return; /* the command's connection failed */
	if (vm->cfg->ready_fd >= 0 && write(vm->cfg->ready_fd, &one, sizeof(one)) < 0)
		log_debug("eventfd: %m");
}

static void vm_stopped(struct ev_handler *h, uint32_t events)
{
	(void)h;
	(void)events; /* vm->stopping is already set: the loop below ends */
}

int vm_run(struct vm *vm)
{
	uint64_t start = log_clock_us();
	sigset_t mask;
	int ret = 0;

	log_debug("the guest starts");
	/* The loop is the running thread's, wherever the VM was built (clawvm vmm's `start`
	 * builds it on the API thread). */
	vm->loop.owner = pthread_self();
	/* vCPU threads inherit the mask and take the kick signal only inside KVM_RUN. */
	sigemptyset(&mask);
	sigaddset(&mask, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	vm->stop_handler =
	    (struct ev_handler){.fd = vm->stop_fd, .ready = vm_stopped, .opaque = vm};
	vm->ready_handler =
	    (struct ev_handler){.fd = vm->ready.fd, .ready = vm_guest_ready, .opaque = vm};
	vm->grace.ready = vm_grace_over;
	vm->grace.opaque = vm;
	vm->exec_handler =
	    (struct ev_handler){.fd = vm->execs.wake_fd, .ready = vm_exec_wake, .opaque = vm};
	if (evloop_add(&vm->loop, &vm->stop_handler, EPOLLIN) < 0 ||
	    evloop_add(&vm->loop, &vm->ready_handler, EPOLLIN) < 0 ||
	    evloop_add(&vm->loop, &vm->grace, EPOLLIN) < 0 ||
	    evloop_add(&vm->loop, &vm->exec_handler, EPOLLIN) < 0) {
		vm_stop(vm, VM_END_ERROR, "event loop: cannot watch the VM's own descriptors");
		vcpu_park_end(&vm->park);
		execq_close(&vm->execs);
		return vm_result(vm);
	}
	vcpu_install_kick_handler();
	signal(SIGPIPE, SIG_IGN);

	atomic_store(&vm->started_us, start);
	/* This thread is the device loop from here on; the vCPU threads inherit its filter and
	 * add their own (seccomp.h). */
	if (vm->cfg->seccomp && seccomp_install(SECCOMP_LOOP) < 0) {
		vm_stop(vm, VM_END_ERROR, "cannot install the device loop's seccomp filter");
		ret = -EPERM;
	}
	for (unsigned i = 0; i < vm->nr_vcpus && ret == 0; i++)
		ret = vcpu_start(&vm->vcpus[i]);
	if (ret < 0 && !atomic_load(&vm->stopping))
		vm_stop(vm, VM_END_ERROR, "cannot start the vCPU threads");

	while (!atomic_load(&vm->stopping)) {
		ret = evloop_run_once(&vm->loop, -1);
		if (ret < 0) {
			vm_stop(vm, VM_END_ERROR, "event loop: %s", strerror(-ret));
			break;
		}
	}
	/* Parked vCPUs leave (and no pause parks them again) before the kicks reach the
	 * others; exec connections are refused from here on (queued ones vm_destroy closes). */
	vcpu_park_end(&vm->park);
	execq_close(&vm->execs);
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	/* vcpu_destroy leaves the exit counters, and may run again in vm_destroy. */
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_destroy(&vm->vcpus[i]);
	log_debug("the guest ran for %llu ms", (unsigned long long)(log_clock_us() - start) / 1000);
	return vm_result(vm);
}

void vm_destroy(struct vm *vm)
{
	if (!vm)
		return;
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_destroy(&vm->vcpus[i]);
	if (vm->io.count) {
		uart_destroy(&vm->console);
	}
	if (vm->vsock_ready)
		virtio_vsock_destroy(&vm->vsock);
	/* Before the transports: the workers run under their device locks. */
	for (unsigned i = 0; i < vm->fs_ready; i++)
		virtio_fs_destroy(&vm->fs[i]);
	devices_destroy(&vm->devices);
	if (vm->grace.fd >= 0)
		close(vm->grace.fd);
	if (vm->ready.fd >= 0)
		close(vm->ready.fd);
	execq_destroy(&vm->execs);
	evloop_destroy(&vm->loop);
	kvm_close(&vm->kvm);
	if (vm->mem.host)
		gm_destroy(&vm->mem);
	console_log_close(&vm->console_log);
	if (vm->stop_fd >= 0)
		close(vm->stop_fd);
	pthread_mutex_destroy(&vm->end_lock);
	vcpu_park_destroy(&vm->park);
	free(vm);
}

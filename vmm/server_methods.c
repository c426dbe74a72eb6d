/* The control API's methods (api/control.md): which state each is allowed in, the
 * pre-boot setters (vmm/config.c's, as clawvm run's flags), start, stop, describe,
 * metrics, signal; `exec` is server_exec.c's. On the server's thread. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/control.h"
#include "base/log.h"
#include "vmm/server_int.h"
#include "vmm/vm.h"

static const char *const state_names[] = {"configured", "running", "paused", "stopped"};

static uint64_t now_ms_since(uint64_t us)
{
	return us ? (log_clock_us() - us) / 1000 : 0;
}

/* The methods allowed in each state. */
static bool method_allowed(enum control_method m, enum server_state st, const char **need)
{
	switch (m) {
	case CONTROL_SET_MACHINE:
	case CONTROL_SET_BOOT:
	case CONTROL_ADD_SHARE:
	case CONTROL_SET_VSOCK:
	case CONTROL_SET_EXEC_DEFAULTS:
	case CONTROL_SET_EGRESS:
	case CONTROL_START:
		*need = "configured";
		return st == STATE_CONFIGURED;
	case CONTROL_PAUSE:
		*need = "running";
		return st == STATE_RUNNING;
	case CONTROL_RESUME:
		*need = "paused";
		return st == STATE_PAUSED;
	case CONTROL_EXEC:
	case CONTROL_SIGNAL:
		*need = "running or paused";
		return st == STATE_RUNNING || st == STATE_PAUSED;
	case CONTROL_STOP:
		*need = "configured, running or paused";
		return st != STATE_STOPPED;
	default:
		return true;
	}
}

/* The pre-boot methods, through config.h's setters. */
static int apply_config(struct server *s, const struct control_request *r, struct config_err *e)
{
	struct sandbox_config *cfg = s->cfg;

	switch (r->method) {
	case CONTROL_SET_MACHINE:
		if (r->machine.vcpus.set &&
		    config_set_cpus(cfg, "vcpus", r->machine.vcpus.value, e) < 0)
			return -1;
		if (r->machine.memory_mib.set &&
		    config_set_memory(cfg, "memory_mib", r->machine.memory_mib.value, e) < 0)
			return -1;
		if (r->machine.pids.set &&
		    config_set_pids(cfg, "pids", r->machine.pids.value, e) < 0)
			return -1;
		return 0;
	case CONTROL_SET_BOOT:
		if (r->boot.kernel && config_set_kernel(cfg, "kernel", r->boot.kernel, e) < 0)
			return -1;
		if (r->boot.initrd && config_set_initrd(cfg, "initrd", r->boot.initrd, e) < 0)
			return -1;
		if (r->boot.rootfs && config_set_rootfs(cfg, "rootfs", r->boot.rootfs, e) < 0)
			return -1;
		if (r->boot.cmdline && config_set_cmdline(cfg, "cmdline", r->boot.cmdline, e) < 0)
			return -1;
		if (r->boot.console_log &&
		    config_set_console_log(cfg, "console_log", r->boot.console_log, e) < 0)
			return -1;
		return 0;
	case CONTROL_ADD_SHARE:
		return config_add_share(cfg, "add_share", r->share.host, r->share.guest,
					r->share.read_only, e);
	case CONTROL_SET_VSOCK:
		if (r->vsock.cid.set && config_set_vsock_cid(cfg, "cid", r->vsock.cid.value, e) < 0)
			return -1;
		if (r->vsock.uds && config_set_vsock_uds(cfg, "uds", r->vsock.uds, e) < 0)
			return -1;
		return 0;
	case CONTROL_SET_EGRESS:
		for (char **spec = r->egress.allow; spec && *spec; spec++)
			if (config_add_allow(cfg, "allow", *spec, e) < 0)
				return -1;
		for (char **spec = r->egress.secrets; spec && *spec; spec++)
			if (config_add_secret(cfg, "secrets", *spec, e) < 0)
				return -1;
		if (r->egress.audit_log &&
		    config_set_audit_log(cfg, "audit_log", r->egress.audit_log, e) < 0)
			return -1;
		if (r->egress.ca_file &&
		    config_set_ca_file(cfg, "ca_file", r->egress.ca_file, e) < 0)
			return -1;
		return 0;
	case CONTROL_SET_EXEC_DEFAULTS:
		for (char **kv = r->defaults.env; kv && *kv; kv++) {
			if (config_add_env(cfg, "env", *kv, e) < 0)
				return -1;
		}
		if ((r->defaults.uid.set || r->defaults.gid.set) &&
		    config_set_user(cfg, "uid/gid",
				    r->defaults.uid.set ? r->defaults.uid.value : cfg->uid,
				    r->defaults.gid.set ? r->defaults.gid.value : cfg->gid, e) < 0)
			return -1;
		if (r->defaults.cwd && config_set_cwd(cfg, "cwd", r->defaults.cwd, e) < 0)
			return -1;
		return 0;
	default:
		return 0;
	}
}

/* `start` (SERVER_VMM): builds the VM here, hands it to the main thread to run. */
static void do_start(struct server *s, struct conn *c, const char *id)
{
	struct config_err e;
	struct guest_dirs dirs;
	struct vm *vm;

	config_guest_dirs(&dirs);
	if (config_find_guest_files(s->cfg, dirs.list, &e) < 0) {
		reply_error(c, id, CONTROL_E_HOST, "%s", e.msg);
		return;
	}
	s->cfg->vm.ready_fd = s->ready.fd;
	if (s->mode == SERVER_VMM) {
		/* The main thread jails the process and builds the VM, alone in it: this
		 * thread ends after this dispatch, and server_resume answers. */
		pthread_mutex_lock(&s->lock);
		s->handover = true;
		s->start_conn = c;
		snprintf(s->start_id, sizeof(s->start_id), "%s", id);
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
		return;
	}
	if (vm_create(&s->cfg->vm, &vm) < 0) {
		reply_error(c, id, CONTROL_E_HOST, "the VM could not be built: %s",
			    log_last_error());
		return;
	}
	pthread_mutex_lock(&s->lock);
	s->vm = vm;
	s->state = STATE_RUNNING;
	s->start_us = log_clock_us();
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	conn_reply(c, control_reply_empty(id));
}

/* `stop`: the main command (or, without one, every exec) gets SIGTERM; the VM is stopped
 * when the timeout runs out, or at once when nothing runs. */
static void do_stop(struct server *s, struct conn *c, const char *id, uint64_t timeout_ms)
{
	if (s->state == STATE_CONFIGURED) {
		pthread_mutex_lock(&s->lock);
		s->state = STATE_STOPPED;
		s->exit_reason = "stopped";
		s->exit_status = 128 + SIGTERM;
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
		snprintf(s->exit_message, sizeof(s->exit_message), "stopped before it started");
		conn_reply(c, control_reply_empty(id));
		return;
	}
	if (s->stopping) /* one stop at a time: the first one's timeout holds */
		return conn_reply(c, control_reply_empty(id));
	if (s->state == STATE_PAUSED && vm_resume(s->vm) == 0)
		s->state = STATE_RUNNING;
	s->stopping = true;
	vm_stop_later(s->vm, SIGTERM, (unsigned)timeout_ms);
	/* No grace at all is a kill: 137, as after SIGKILL. */
	if (timeout_ms == 0)
		vm_stop_signal(s->vm, SIGKILL);
	else if (exec_signal_for_stop(s) == 0)
		vm_stop_signal(s->vm, SIGTERM);
	conn_reply(c, control_reply_empty(id));
}

static void do_describe(struct server *s, struct conn *c, const char *id)
{
	const struct sandbox_config *cfg = s->cfg;
	struct control_share_info shares[VM_MAX_SHARES];
	struct control_describe d = {
	    .name = cfg->name,
	    .state = state_names[s->state],
	    .pid = getpid(),
	    .uptime_ms = s->state == STATE_CONFIGURED ? 0 : now_ms_since(s->start_us),
	    .ready = s->ready_us != 0,
	    .ready_ms = s->ready_us ? (s->ready_us - s->start_us) / 1000 : 0,
	    .vcpus = cfg->vm.cpus,
	    .memory_mib = cfg->vm.mem_mib,
	    .pids = cfg->pids,
	    .kernel = cfg->vm.kernel_path,
	    .initrd = cfg->vm.initrd_path,
	    .rootfs = cfg->vm.rootfs,
	    .cmdline = cfg->vm.cmdline,
	    .console_log = cfg->vm.console_log,
	    .shares = shares,
	    .nshares = cfg->vm.nshares,
	    .vsock_cid = cfg->vm.vsock_cid,
	    .vsock_uds = cfg->vm.vsock_uds,
	    .env = (const char *const *)cfg->env,
	    .uid = cfg->uid,
	    .gid = cfg->gid,
	    .cwd = cfg->cwd[0] ? cfg->cwd : "/",
	    .execs = s->nexecs + (s->main_running ? 1 : 0),
	    .exit_reason = s->exit_reason,
	    .exit_status = s->exit_status,
	    .exit_message = s->exit_message[0] ? s->exit_message : NULL,
	};

	if (s->state == STATE_STOPPED)
		d.uptime_ms =
		    s->end_us > s->start_us && s->start_us ? (s->end_us - s->start_us) / 1000 : 0;
	for (unsigned i = 0; i < cfg->vm.nshares; i++)
		shares[i] =
		    (struct control_share_info){cfg->vm.shares[i].host, cfg->vm.shares[i].guest,
						NULL, cfg->vm.shares[i].read_only};
	conn_reply(c, control_reply_describe(id, &d));
}

static void do_metrics(struct server *s, struct conn *c, const char *id)
{
	struct control_metrics m = {0};

	if (s->vm)
		vm_metrics(s->vm, &m);
	conn_reply(c, control_reply_metrics(id, &m));
}

static void do_signal(struct server *s, struct conn *c, const struct control_request *r)
{
	int ret;

	if (!r->signal.id.set || (s->mode == SERVER_RUN && r->signal.id.value == 1)) {
		ret = main_signal(s, r->signal.signo);
		if (ret == -ENOENT)
			return reply_error(c, r->id, CONTROL_E_NOT_FOUND,
					   "there is no main command to signal");
	} else {
		ret = exec_signal(s, r->signal.id.value, r->signal.signo);
		if (ret == -ENOENT)
			return reply_error(c, r->id, CONTROL_E_NOT_FOUND, "no exec with id %llu",
					   (unsigned long long)r->signal.id.value);
	}
	if (ret < 0)
		return reply_error(c, r->id, CONTROL_E_BUSY, "cannot pass the signal on: %s",
				   strerror(-ret));
	conn_reply(c, control_reply_empty(r->id));
}

void server_handle(struct server *s, struct conn *c, struct control_request *r)
{
	const char *need = "";
	struct config_err e;

	if (!method_allowed(r->method, s->state, &need))
		return reply_error(c, r->id, CONTROL_E_STATE,
				   "`%s` needs state %s; the sandbox is %s",
				   control_method_name(r->method), need, state_names[s->state]);
	switch (r->method) {
	case CONTROL_SET_MACHINE:
	case CONTROL_SET_BOOT:
	case CONTROL_ADD_SHARE:
	case CONTROL_SET_VSOCK:
	case CONTROL_SET_EXEC_DEFAULTS:
	case CONTROL_SET_EGRESS:
		if (apply_config(s, r, &e) < 0)
			return reply_error(c, r->id, CONTROL_E_PARAMS, "%s", e.msg);
		return conn_reply(c, control_reply_empty(r->id));
	case CONTROL_START:
		if (s->mode != SERVER_VMM)
			return reply_error(c, r->id, CONTROL_E_STATE,
					   "this sandbox started itself");
		return do_start(s, c, r->id);
	case CONTROL_PAUSE:
		if (vm_pause(s->vm) < 0)
			return reply_error(c, r->id, CONTROL_E_GUEST,
					   "the VM cannot be paused now");
		s->state = STATE_PAUSED;
		return conn_reply(c, control_reply_empty(r->id));
	case CONTROL_RESUME:
		if (vm_resume(s->vm) < 0)
			return reply_error(c, r->id, CONTROL_E_GUEST,
					   "the VM cannot be resumed now");
		s->state = STATE_RUNNING;
		return conn_reply(c, control_reply_empty(r->id));
	case CONTROL_STOP:
		if (r->stop.timeout_ms.set && r->stop.timeout_ms.value > SERVER_STOP_TIMEOUT_MAX)
			return reply_error(c, r->id, CONTROL_E_PARAMS,
					   "timeout_ms must be between 0 and %d, got %llu",
					   SERVER_STOP_TIMEOUT_MAX,
					   (unsigned long long)r->stop.timeout_ms.value);
		return do_stop(s, c, r->id,
			       r->stop.timeout_ms.set ? r->stop.timeout_ms.value
						      : SERVER_STOP_TIMEOUT_MS);
	case CONTROL_DESCRIBE:
		return do_describe(s, c, r->id);
	case CONTROL_METRICS:
		return do_metrics(s, c, r->id);
	case CONTROL_EXEC:
		return exec_start(s, c, r);
	case CONTROL_SIGNAL:
		return do_signal(s, c, r);
	case CONTROL_SUBSCRIBE:
		c->events = r->subscribe.events;
		return conn_reply(c, control_reply_empty(r->id));
	case CONTROL_UPDATE_EGRESS:
	case CONTROL_DESCRIBE_EGRESS:
		/* Never the VMM's: a VMM that could widen its own egress would undo the broker. */
		return reply_error(c, r->id, CONTROL_E_METHOD,
				   "`%s` is served by the sandbox's egress broker, on egress.sock "
				   "beside this socket, not by the VMM",
				   control_method_name(r->method));
	case CONTROL_METHODS:
		break;
	}
}

/* The sandbox's egress broker (broker/broker.h) as a process: started by the jail's
 * supervisor before the VMM (by clawvm itself with --no-jail), ended after it. It runs
 * outside the VMM's jail (it needs the network) as the jail user, without capabilities
 * and with no_new_privs, dies with its parent, and owns the audit log: the supervisor and
 * the VMM send it their events over sockets.
 *
 * Its sockets, <vsock_uds>_<port>: the sandbox's --vsock-uds if given, else
 * `<sandbox dir>/vsock/v` (the directory given to the jail user, bound into the jail).
 * The guest's commands get HTTP_PROXY, HTTPS_PROXY, NO_PROXY (and lower-case) pointing at
 * guest-init's relay, and for each secret NAME: NAME_BASE_URL and a placeholder
 * NAME_API_KEY. Its control socket, `<sandbox dir>/egress.sock` (RUNDIR_EGRESS_SOCK),
 * serves update_egress and describe_egress to the user who started the sandbox (and root):
 * outside the jail, so the VMM cannot widen its own egress. */
#ifndef CLAWVM_EGRESS_H
#define CLAWVM_EGRESS_H

#include <stdbool.h>
#include <sys/types.h>

#include "vmm/config.h"
#include "vmm/rundir.h"

/* What the guest's NAME_API_KEY holds: never the value. */
#define EGRESS_PLACEHOLDER "clawvm-placeholder-the-host-adds-the-key"
/* How long the broker gets to audit its last connections once the VMM ended. */
#define EGRESS_STOP_MS 3000
/* How long egress_start waits for the broker to serve (its sockets bound, its privileges
 * dropped). */
#define EGRESS_READY_MS 10000

struct egress {
	pid_t pid;	   /* the broker, or -1 */
	int supervisor_fd; /* ours: events for the audit log; closing it ends the broker */
	int vmm_fd;	   /* the VMM's end (vm_config.audit_fd), -1 once handed over */
	bool audit;	   /* an audit log is kept: events are worth sending */
};

/* Before the VMM's fork: the socket directory, the exec environment, the guest's relay
 * ports, the audit log opened, the broker forked as uid:gid (dropped to when root). 0, or
 * -1 (said). e->pid is -1 on failure. `quiet`: the broker's stderr goes nowhere (a
 * detached sandbox). */
__attribute__((warn_unused_result)) int egress_start(struct sandbox_config *cfg,
						     const struct rundir *rd, uid_t uid, gid_t gid,
						     bool quiet, struct egress *e);
/* The supervisor's own events: start, then stop (event text from api/audit.h's builders,
 * freed here). */
void egress_event(struct egress *e, char *event);
/* Closes the supervisor's socket (the broker audits what is left and exits), waits up to
 * EGRESS_STOP_MS, then kills it. */
void egress_stop(struct egress *e);

/* From the VMM (its API's execs, clawvm run's command, the shares' file changes; any
 * thread): an event for the audit log on the broker's socket `fd` (vm_config.audit_fd; -1:
 * none), never blocking: one the socket has no room for is dropped (said once on stderr),
 * and counted: the next send that finds room sends a `lost` event with the count first.
 * The event is freed. */
void egress_send(int fd, char *event);
/* A NULL-terminated copy of argv, for an event sent when the command ends (NULL when out
 * of memory: that event is not sent). */
char **egress_argv_dup(const char *const *argv);
void egress_argv_free(char **argv);

#endif

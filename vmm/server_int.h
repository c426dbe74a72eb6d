/* The control API server's insides, shared by server.c (the thread, connections, events),
 * server_methods.c (requests and state) and server_exec.c (execs and their relays). Not for other
 * modules: they use server.h. */
#ifndef CLAWVM_SERVER_INT_H
#define CLAWVM_SERVER_INT_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/control.h"
#include "api/exec_proto.h"
#include "base/evloop.h"
#include "vmm/server.h"

/* An attached exec's guest output is read only while its client has less than this
 * waiting: the guest's vsock credit does the rest. */
#define EXEC_CLIENT_ROOM (256 * 1024)
/* Frames from an attached client waiting for the guest. */
#define EXEC_GUEST_ROOM (256 * 1024)

enum server_state { STATE_CONFIGURED, STATE_RUNNING, STATE_PAUSED, STATE_STOPPED };

/* Bytes waiting for a socket. */
struct outbuf {
	char *buf;
	size_t off, len, cap;
};

struct exec;

struct conn {
	struct ev_handler h;
	struct server *s;
	struct conn *prev, *next;
	int sock;
	char *in; /* request bytes not handled yet (an attached exec's frames after attach) */
	size_t in_len, in_cap;
	struct outbuf out;
	uint32_t watched;
	unsigned events;   /* control_event bits subscribed to */
	struct exec *exec; /* attached: the connection carries this exec's frames */
	bool closing;	   /* send what is queued, read nothing more, then close */
	bool read_blocked; /* attached and the guest side is full */
	bool backlog;	   /* whole requests left over a wake-up's budget: read no more */
	uint64_t stuck_us; /* since when its replies wait and it reads none (0: they don't) */
	bool dead;	   /* dropped, freed after the dispatch */
	bool mute;	   /* handling a notification: no reply */
};

struct exec {
	struct ev_handler h; /* our end of the connection to guest-init */
	struct server *s;
	struct exec *prev, *next;
	uint64_t id;
	struct conn *client; /* attached client, or NULL */
	struct outbuf to_guest;
	uint8_t hdr[EXEC_FRAME_HEADER_LEN]; /* the guest frame being read */
	uint8_t *frame;
	uint32_t frame_len, got;
	uint8_t frame_type;
	uint32_t watched;
	bool main;     /* its end ends the sandbox */
	bool eof_sent; /* STDIN_EOF queued */
	bool done;     /* EXIT or ERROR seen */
	bool parked;   /* hung up, out of the epoll set until its client has room */
	char **argv;   /* a copy, for its audit event */
	uint64_t t_start_ms;
};

struct server {
	enum server_mode mode;
	struct sandbox_config *cfg;
	char sock_path[PATH_MAX];
	struct evloop loop;
	struct ev_handler listen, wake, ready, sig;
	pthread_t thread;
	bool started;
	/* The thread's seccomp filter: installed (0) or not (a negative errno), once
	 * jail_done; under lock. */
	bool jail_done;
	int jail_ret;

	struct conn *conns, *dead;
	unsigned nconns;
	struct exec *execs;
	unsigned nexecs;
	uint64_t next_exec_id;
	bool main_running; /* SERVER_RUN: the session's command runs */
	int main_sig_fd;   /* SERVER_RUN: to the session's command */
	bool stopping;	   /* `stop` asked: execs ending may end the VM */

	/* Set by the server's thread, read by others under lock. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	enum server_state state;
	struct vm *vm;
	uint64_t start_us, ready_us, end_us;
	/* From the VM's thread, under lock. */
	bool ready_pending, main_exit_pending, finish_requested;
	int main_status;
	unsigned linger_ms;

	const char *exit_reason; /* once stopped */
	int exit_status;
	char exit_message[512];
	bool finishing;
	uint64_t linger_until_us;

	/* SERVER_VMM's `start` (server_wait_start): the thread stops, the main thread builds. */
	bool handover;		 /* `start` asked: the thread ends after this dispatch */
	struct conn *start_conn; /* who asked (NULL if it went meanwhile) */
	char start_id[CONTROL_ID_MAX];
	bool start_answer; /* server_resume: answer start_conn when the thread runs again */
	char start_error[CONTROL_MESSAGE_MAX];
};

int outbuf_put(struct outbuf *o, const void *data, size_t len, size_t limit);
int outbuf_flush(struct outbuf *o, int fd);
void outbuf_free(struct outbuf *o);

/* server_conn.c */
void server_accept(struct ev_handler *h, uint32_t events);
/* Serves the requests left over from their connection's last budget: true if some are
 * still left (the loop goes on at once). */
bool server_backlog(struct server *s);
/* Drops the clients stuck for SERVER_STUCK_MS: ms until the next may be, or -1. */
int server_stuck(struct server *s);
/* Frees the connections dropped during the last dispatch. */
void conn_free_dead(struct server *s);
void conn_update(struct conn *c);
void conn_drop(struct conn *c);
/* Drops the connection once what is queued for it is sent (at once if nothing is). */
void conn_finish(struct conn *c);
void conn_send(struct conn *c, char *line);
/* conn_send for the reply to the request being handled (dropped for a notification). */
void conn_reply(struct conn *c, char *line);
/* An error reply to request `id` (none to a notification, whose id is ""). */
void reply_error(struct conn *c, const char *id, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Sends an event line to every connection that subscribed to `event`; frees `line`. */
void server_event(struct server *s, unsigned event, char *line);

/* server_methods.c: carries out one request (checked by api/control.c) for c. */
void server_handle(struct server *s, struct conn *c, struct control_request *r);

/* server_exec.c */
void exec_start(struct server *s, struct conn *c, const struct control_request *r);
/* The attached client sent bytes (c->in) or hung up (c->dead soon): frames go on. */
void exec_client_input(struct exec *e);
/* The attached client's output has room again. */
void exec_client_room(struct exec *e);
/* The client is gone: the exec runs on, its output discarded. */
void exec_detach(struct exec *e);
/* Signal `signo` to exec `id`: 0, -ENOENT. */
int exec_signal(struct server *s, uint64_t id, int signo);
/* Signal `signo` to the main command: 0, -ENOENT if there is none. */
int main_signal(struct server *s, int signo);
/* For `stop`: SIGTERM to the main command, or to every exec if none is main. Returns how
 * many were signalled (0: nothing runs, the VM may stop at once). */
unsigned exec_signal_for_stop(struct server *s);
/* Ends every exec (the VM is gone): attached clients get EOF. */
void exec_close_all(struct server *s);

#endif

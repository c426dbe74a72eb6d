/* The control API's wire format (api/control.md): JSON-RPC 2.0, one object per line, on a
 * sandbox's Unix socket. This module is the only one that sees JSON (jansson): it parses
 * request lines into plain C structs, checking shape and types (values and their ranges are
 * the setters' business, api/config.h), and builds reply, event and request lines from plain
 * C structs. Pure: no I/O, no global state. Every line built ends in "\n" and is malloc()ed
 * (free() it); NULL only when memory runs out. Strings given to builders may be any bytes:
 * invalid UTF-8 is replaced by U+FFFD. Unsigned numbers past INT64_MAX (which JSON integers
 * here cannot hold) are written as INT64_MAX. */
#ifndef CLAWVM_CONTROL_H
#define CLAWVM_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* `describe` reports it; bumped only by a change that breaks a client. */
#define CONTROL_PROTOCOL 1
/* A request or reply line longer than this (without its "\n") is refused. */
#define CONTROL_LINE_MAX (1024 * 1024)
/* Limits on what one request may carry. */
#define CONTROL_MAX_ARGS    4096 /* exec argv */
#define CONTROL_MAX_ENV	    256	 /* exec env, set_exec_defaults env */
#define CONTROL_ID_MAX	    128	 /* a request id's JSON text */
#define CONTROL_MESSAGE_MAX 512	 /* an error message built here */

/* Error codes: JSON-RPC's own, then clawvm's (stable; api/control.md). */
enum control_code {
	CONTROL_E_PARSE = -32700,   /* not JSON */
	CONTROL_E_REQUEST = -32600, /* not a request: no "jsonrpc":"2.0", no method, a batch */
	CONTROL_E_METHOD = -32601,  /* unknown method */
	CONTROL_E_PARAMS = -32602,  /* parameters of the wrong shape, type or value */
	CONTROL_E_STATE = 1,	    /* the method is not allowed in the sandbox's state */
	CONTROL_E_NOT_FOUND = 2,    /* no such exec */
	CONTROL_E_HOST = 3,	    /* a host resource is missing or failed (a kernel file) */
	CONTROL_E_GUEST = 4,	    /* the guest failed */
	CONTROL_E_BUSY = 5,	    /* a limit is reached */
};

enum control_method {
	/* Pre-boot (state configured). */
	CONTROL_SET_MACHINE,	   /* {vcpus?, memory_mib?, pids?} */
	CONTROL_SET_BOOT,	   /* {kernel?, initrd?, rootfs?, cmdline?, console_log?} */
	CONTROL_ADD_SHARE,	   /* {host, guest, read_only?} */
	CONTROL_SET_VSOCK,	   /* {cid?, uds?} */
	CONTROL_SET_EXEC_DEFAULTS, /* {env?, uid?, gid?, cwd?} */
	CONTROL_SET_EGRESS,	   /* {allow?, secrets?, audit_log?, ca_file?} */
	/* Runtime. */
	CONTROL_START,	   /* {} */
	CONTROL_PAUSE,	   /* {} */
	CONTROL_RESUME,	   /* {} */
	CONTROL_STOP,	   /* {timeout_ms?} */
	CONTROL_DESCRIBE,  /* {} */
	CONTROL_METRICS,   /* {} */
	CONTROL_EXEC,	   /* {argv, env?, cwd?, uid?, gid?, tty?, rows?, cols?, main?, attach?} */
	CONTROL_SIGNAL,	   /* {signal, id?} */
	CONTROL_SUBSCRIBE, /* {events?} */
	/* The egress broker's, on its own socket (egress.sock): the VMM refuses them. */
	CONTROL_UPDATE_EGRESS,	 /* {allow?, revoke?} */
	CONTROL_DESCRIBE_EGRESS, /* {} */
	CONTROL_METHODS,	 /* how many */
};

/* The method's name on the wire ("set_machine"...); NULL past CONTROL_METHODS. */
const char *control_method_name(enum control_method m);

/* Events, as bits for `subscribe`. */
enum control_event {
	CONTROL_EV_READY = 1u << 0,	/* "ready" */
	CONTROL_EV_EXEC_EXIT = 1u << 1, /* "exec.exit" */
	CONTROL_EV_EXIT = 1u << 2,	/* "exit" */
	CONTROL_EV_ERROR = 1u << 3,	/* "error" */
	CONTROL_EV_ALL = 0xf,
};

/* An optional unsigned number: `set` tells whether the request carried it. */
struct control_uint {
	bool set;
	uint64_t value;
};

/* One parsed request. Strings and string arrays are owned by it (control_request_free);
 * an optional string not given is NULL; string arrays end with NULL. */
struct control_request {
	enum control_method method;
	/* The id's JSON text (a number, or a string with its quotes), to echo in the reply;
	 * "" for a notification (no id: nothing is answered). */
	char id[CONTROL_ID_MAX];
	union {
		struct {
			struct control_uint vcpus, memory_mib, pids;
		} machine;
		struct {
			char *kernel, *initrd, *rootfs, *cmdline, *console_log;
		} boot;
		struct {
			char *host, *guest;
			bool read_only;
		} share;
		struct {
			struct control_uint cid;
			char *uds;
		} vsock;
		struct {
			char **env; /* "K=V" strings, or NULL if not given */
			struct control_uint uid, gid;
			char *cwd;
		} defaults;
		struct {
			char **allow;	/* --allow rules, or NULL */
			char **secrets; /* --secret specs, or NULL */
			char *audit_log, *ca_file;
			char **revoke; /* update_egress: rules to remove, or NULL */
		} egress;
		struct {
			struct control_uint timeout_ms;
		} stop;
		struct {
			char **argv; /* at least one string, the first not empty */
			char **env;  /* "K=V" strings, or NULL */
			char *cwd;
			struct control_uint uid, gid, rows, cols;
			bool tty, main, attach;
		} exec;
		struct {
			int signo; /* 1..64: given as a number or a name ("SIGTERM", "TERM") */
			struct control_uint id; /* not set: the main command */
		} signal;
		struct {
			unsigned events; /* control_event bits; all if "events" is not given */
		} subscribe;
	};
};

/* What went wrong with a request line: the code and a message a person can act on
 * ("exec: argv must be a non-empty array of strings"). `id` is the request's id text if it
 * could be read (so the error reply can carry it), else "null"; "" when the request is a
 * well-formed notification (no id) refused for its method or params: JSON-RPC answers no
 * notification, so the server sends nothing (control_reply_error would write id null). */
struct control_error {
	int code;
	char id[CONTROL_ID_MAX];
	char message[CONTROL_MESSAGE_MAX];
};

/* Parses one request line of `len` bytes (no "\n"; need not be NUL-terminated). Refuses:
 * bad UTF-8 or JSON (-32700), a batch, no "jsonrpc":"2.0", a method that is not a string
 * (-32600), an unknown method (-32601, naming the nearest known one if it is close), and
 * params that are not an object or hold an unknown member, a member of the wrong type or a
 * number out of its type's range (-32602). Returns 0 and fills *req, or -1 and fills *err
 * (*req then needs no freeing). */
__attribute__((warn_unused_result)) int control_parse_request(const char *line, size_t len,
							      struct control_request *req,
							      struct control_error *err);
void control_request_free(struct control_request *req);

/* {"jsonrpc":"2.0","id":ID,"error":{"code":CODE,"message":MESSAGE}} */
char *control_reply_error(const char *id, int code, const char *message);
/* {"jsonrpc":"2.0","id":ID,"result":{}} */
char *control_reply_empty(const char *id);
/* {"jsonrpc":"2.0","id":ID,"result":{"id":EXEC_ID}} */
char *control_reply_exec(const char *id, uint64_t exec_id);

/* What `describe` reports. Strings may be NULL (JSON null). */
struct control_share_info {
	const char *host, *guest, *tag;
	bool read_only;
};
struct control_describe {
	const char *name;
	const char *state;  /* "configured", "running", "paused", "stopped" */
	int64_t pid;	    /* the VMM's */
	uint64_t uptime_ms; /* since start; 0 before */
	bool ready;	    /* guest-init listens */
	uint64_t ready_ms;  /* from start to ready, if ready */
	unsigned vcpus;
	uint64_t memory_mib;
	unsigned pids; /* the VMM's host tasks at most (its cgroup's pids.max) */
	const char *kernel, *initrd, *rootfs, *cmdline, *console_log;
	const struct control_share_info *shares;
	unsigned nshares;
	uint64_t vsock_cid; /* 0: no vsock device (JSON null) */
	const char *vsock_uds;
	const char *const *env; /* exec defaults, NULL-terminated (or NULL) */
	uint32_t uid, gid;
	const char *cwd;
	unsigned execs;		 /* execs running */
	const char *exit_reason; /* once stopped: "exited", "stopped", "error", ... ; else NULL */
	int exit_status;
	const char *exit_message; /* NULL or why, for people */
};
/* {"jsonrpc":"2.0","id":ID,"result":{"protocol":1,"name":...,"state":...,"pid":...,
 * "uptime_ms":...,"ready_ms":N|null,"config":{"vcpus","memory_mib","pids","kernel","initrd",
 * "rootfs","cmdline","console_log","shares":[{"host","guest","tag","read_only"}],
 * "vsock":{"cid","uds"},"exec_defaults":{"env":[...],"uid","gid","cwd"}},"execs":N,
 * "exit":null|{"reason","status","message"}}} */
char *control_reply_describe(const char *id, const struct control_describe *d);

#define CONTROL_METRICS_MAX_FS 9
struct control_metrics {
	/* vCPU exits, all vCPUs together, by kind. */
	uint64_t exits_io, exits_mmio, exits_hlt, exits_intr, exits_other;
	uint64_t vsock_rx_packets, vsock_tx_packets; /* to / from the guest */
	uint64_t vsock_rx_bytes, vsock_tx_bytes;     /* stream payload bytes */
	uint64_t vsock_connections;		     /* open now */
	struct {
		const char *tag;
		uint64_t requests, bytes_read, bytes_written; /* read: guest reads host files */
	} fs[CONTROL_METRICS_MAX_FS];
	unsigned nfs;
	uint64_t rng_bytes;
	uint64_t vmm_rss_kib;	/* the VMM process's resident memory (guest RAM included) */
	uint64_t guest_rss_kib; /* of that, guest RAM the guest touched */
};
/* {"jsonrpc":"2.0","id":ID,"result":{"vcpu_exits":{"io","mmio","hlt","intr","other"},
 * "vsock":{"rx_packets","tx_packets","rx_bytes","tx_bytes","connections"},
 * "fs":[{"tag","requests","bytes_read","bytes_written"}],"rng":{"bytes"},
 * "memory":{"vmm_rss_kib","guest_rss_kib"}}} */
char *control_reply_metrics(const char *id, const struct control_metrics *m);

/* Notifications (no id): {"jsonrpc":"2.0","method":"ready","params":{"ms":N}} */
char *control_event_ready(uint64_t ms_since_start);
/* "exec.exit" {"id":EXEC_ID,"status":STATUS} (status: shell-style, 128+N for signal N) */
char *control_event_exec_exit(uint64_t exec_id, int status);
/* "exit" {"reason":REASON,"status":STATUS,"message":MESSAGE|null} */
char *control_event_exit(const char *reason, int status, const char *message);
/* "error" {"code":CODE,"message":MESSAGE} */
char *control_event_error(int code, const char *message);

/* The egress broker's state, for describe_egress and update_egress. */
struct control_egress_secret {
	const char *name, *host;
	unsigned port;
};
struct control_egress {
	const char *const *allow; /* the rules' canonical texts (broker/policy.h), NULL-ended */
	const struct control_egress_secret *secrets;
	size_t nsecrets;
	unsigned connections; /* open now */
	uint64_t connections_total, denied_total, bytes_up, bytes_down;
	int closed; /* update_egress: connections ended as no longer allowed; -1: not sent */
};
char *control_reply_egress(const char *id, const struct control_egress *e);
/* The client side (the `clawvm` verbs). A request line; params_json is the params object's
 * JSON text (NULL: no params). */
char *control_request_line(uint64_t id, const char *method, const char *params_json);
/* Builds an exec request's params object: {"argv":[...],"env":[...],"cwd":..,"tty":..,
 * "rows":..,"cols":..,"attach":true}; env/cwd may be NULL, rows/cols 0 = not sent, attach
 * sent only when true. Compact JSON text without "\n" (for control_request_line). */
char *control_exec_params(const char *const *argv, const char *const *env, const char *cwd,
			  bool tty, unsigned rows, unsigned cols, bool attach);

/* update_egress's params object: {"allow":[...],"revoke":[...]}, each left out when NULL or
 * empty. Compact JSON text (for control_request_line). */
char *control_update_egress_params(const char *const *allow, const char *const *revoke);

/* A reply or event line, read by a client. */
struct control_reply {
	bool is_event;	 /* a notification: `method` holds its name */
	char method[32]; /* an event's name */
	int64_t id;	 /* a reply's id, if a number; -1 otherwise */
	int code;	 /* 0: a result; else the error's code */
	char *message;	 /* the error's message, or NULL */
	char *result;	 /* the result (or an event's params) as compact JSON text, or NULL */
};
/* 0, or -1 if the line is not a JSON-RPC reply or notification. */
__attribute__((warn_unused_result)) int control_parse_reply(const char *line, size_t len,
							    struct control_reply *r);
void control_reply_free(struct control_reply *r);
/* Reads one unsigned or signed integer or string member of a JSON object's text (a result),
 * by a dotted path ("exit.status"; a number picks an array's item: "secrets.0.name"); -1
 * if absent or of another type. */
__attribute__((warn_unused_result)) int control_json_int(const char *json, const char *path,
							 int64_t *out);
/* The string is copied into out[cap]; a JSON null gives "". -1 also when it does not fit. */
__attribute__((warn_unused_result)) int control_json_string(const char *json, const char *path,
							    char *out, size_t cap);
/* The JSON text indented for people (inspect), malloc()ed, without a final "\n"; NULL if
 * it is not JSON. */
char *control_json_pretty(const char *json);

#endif

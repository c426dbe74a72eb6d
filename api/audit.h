/* A sandbox's audit log (api/audit.md): one JSON object per line, one line per event, each
 * line carrying the SHA-256 of the line before it, so that audit_verify finds a line that was
 * edited, removed, moved or cut short after it was written. One process writes a sandbox's
 * log (the egress broker); the others (the VMM, the supervisor) send it events as JSON
 * object text, built by the audit_event_* functions below so that they never touch JSON.
 * The writer takes that text as untrusted: it is checked against its event's fields before
 * anything is written, and the writer alone stamps seq, ts, prev and src. */
#ifndef CLAWVM_AUDIT_H
#define CLAWVM_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* An event's JSON text, as sent to the writer: at most this many bytes. */
#define AUDIT_EVENT_MAX (64 * 1024)
/* Objects and arrays nest at most this deep in an event or a line (the outer object is 1). */
#define AUDIT_DEPTH_MAX 4
/* A source's name ("vmm", "broker", "supervisor"): 1 to 32 of a-z, 0-9, '_' and '-'. */
#define AUDIT_SRC_MAX 32
/* A log line without its "\n": an event and what the writer adds to it. The readers refuse a
 * longer line, so that they never hold more than this of a hostile file. */
#define AUDIT_LINE_MAX (AUDIT_EVENT_MAX + 512)
/* A reason (why an event was refused, why a log cannot be opened), with its NUL. */
#define AUDIT_REASON_MAX 256
/* A builder cuts each string to at most this many bytes of JSON text (escapes counted), and
 * stops adding argv strings or shares when the event's text would pass AUDIT_EVENT_MAX; the
 * event then carries "cut": true. So that no event is too long to be logged. */
#define AUDIT_STRING_CUT (8 * 1024)

/* Builders: an event's JSON object text for audit_append, compact, without "\n",
 * malloc()ed (free() it). Strings may be any bytes: each byte that is not valid UTF-8
 * becomes U+FFFD. NULL with errno EINVAL when an argument is out of the event's range (a
 * NULL string where one is needed, an empty argv, an exit status past 255), ENOMEM when
 * memory runs out. */
struct audit_share {
	const char *host, *guest;
	bool read_only;
};
/* {"event":"start","name","cpus","memory_mib","shares":[{"host","guest","read_only"}]} */
char *audit_event_start(const char *name, unsigned cpus, uint64_t memory_mib,
			const struct audit_share *shares, size_t nshares);
/* {"event":"stop","reason","status"}: why the sandbox ended ("exited", "stopped",
 * "error", ...) and its status. */
char *audit_event_stop(const char *reason, int status);
/* {"event":"exec","argv":[...],"status"|"signal","duration_ms"}: argv NULL-terminated and
 * not empty; signal 1..64 when the command was killed by it (status is then not written),
 * else 0 and status the exit status (0..255). */
char *audit_event_exec(const char *const *argv, int status, int signal, uint64_t duration_ms);

/* One connection the guest asked for. addr (the address connected to) is NULL when there
 * was none (denied before resolving), reason NULL when there is nothing to say. */
struct audit_egress {
	const char *host;
	uint16_t port;
	const char *addr;
	bool allowed;
	const char *reason;
	uint64_t bytes_up, bytes_down, duration_ms;
};
/* {"event":"egress","host","port","addr","decision":"allowed"|"denied","reason",
 * "bytes_up","bytes_down","duration_ms"} */
char *audit_event_egress(const struct audit_egress *e);
/* {"event":"secret","name","host"}: the broker added secret `name` to a request to `host`.
 * There is no value: a secret's value never enters the log. */
char *audit_event_secret(const char *name, const char *host);

enum audit_file_op {
	AUDIT_FILE_CREATED,
	AUDIT_FILE_WRITTEN,
	AUDIT_FILE_RENAMED,
	AUDIT_FILE_DELETED,
};
/* {"event":"file","op","path"} and, for AUDIT_FILE_RENAMED only, "to" (NULL otherwise). */
char *audit_event_file(enum audit_file_op op, const char *path, const char *to);

/* {"event":"policy","allowed":[...],"revoked":[...],"rules","closed","uid"}: the egress
 * policy of the running sandbox changed (update_egress): the rules added and removed
 * (NULL-terminated; a list left out when NULL or empty), how many rules there are now, how
 * many open connections were ended as no longer allowed, and the uid that asked. */
char *audit_event_policy(const char *const *allowed, const char *const *revoked, unsigned rules,
			 unsigned closed, uint64_t uid);
/* {"event":"lost","count"}: `count` (> 0) events of this source were never sent (the
 * writer's socket was full); sent once the socket has room again. */
char *audit_event_lost(uint64_t count);

/* The writer. Not thread-safe: one thread appends to a log. */
struct audit_log;

/* Opens (or creates, mode 0600) the log at `path` for appending, and takes an exclusive
 * lock on it so that a second writer is refused. A log that is not empty is resumed: its
 * last line must be a whole, well-formed log line (ending in "\n"); its seq and hash go on.
 * Only the last line is read (audit_verify checks them all). NULL with a message in
 * err[errlen] (errno set) on failure. */
__attribute__((warn_unused_result)) struct audit_log *audit_open(const char *path, char *err,
								 size_t errlen);
/* Checks the untrusted event text (len bytes, need not end in NUL) from source `src`, and
 * appends it as one line with a single write(2). 0, or a negative errno: -EMSGSIZE for a
 * text over AUDIT_EVENT_MAX, -EINVAL for a text or src that is refused, -ENOMEM, or the
 * write's error (a partly written line is cut off again, so the log stays well-formed);
 * audit_reason() then says why. A refused event leaves the log as it was. */
__attribute__((warn_unused_result)) int audit_append(struct audit_log *log, const char *src,
						     const char *event_json, size_t len);
/* Why the last audit_append failed; "" when it did not. */
const char *audit_reason(const struct audit_log *log);
/* The last line's seq (0 for an empty log) and its SHA-256 in hex (64 zeros when empty):
 * kept somewhere else, they let a later check see that lines were cut off the end. */
void audit_head(const struct audit_log *log, uint64_t *seq, char hash[65]);
void audit_close(struct audit_log *log);
/* The log's descriptor, for a process that must keep it open across a fork. */
int audit_fd(const struct audit_log *log);

/* The readers. audit_verify checks every line of `in` (a whole line and JSON object, with
 * the keys and values the writer writes; seq 1, 2, 3...; prev the SHA-256 of the line
 * before; ts never going back) and writes to `report` the first bad line and why, or that
 * the log is intact; it notes, without failing, a log that ends without a stop event.
 * 0 when intact (an empty log is), 1 when not, a negative errno when reading fails. */
__attribute__((warn_unused_result)) int audit_verify(FILE *in, FILE *report);
/* Writes one line a person can read per event ("18:52:19.123  exec     [echo hi] -> 0
 * (12 ms)"), with a line naming the date (UTC) before the first event and whenever it
 * changes. It does not verify the chain: a line it cannot read is shown as such, and the
 * others are shown. 0, 1 when a line could not be read, a negative errno when reading
 * fails. */
__attribute__((warn_unused_result)) int audit_show(FILE *in, FILE *out);

#endif

/* The broker's control socket (broker.h, api/control.md "The egress socket"): the owner of
 * the sandbox changes the policy of the running sandbox (update_egress) or reads it
 * (describe_egress), in the control API's framing (one JSON-RPC request per line, parsed by
 * api/control.h). It lies in the sandbox's directory, which the jailed VMM cannot see, and
 * serves only the uid that started the sandbox and root. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/audit.h"
#include "api/control.h"
#include "base/log.h"
#include "broker/broker_int.h"

static uint64_t now_ms(void)
{
	return log_clock_us() / 1000;
}

static void listener_watch(struct broker *b, bool on);

static void client_free(struct control_client *cc)
{
	struct broker *b = cc->b;

	evloop_close(&b->loop, &cc->h);
	LIST_REMOVE(cc, link);
	b->nclients--;
	free(cc->in);
	free(cc->out);
	free(cc);
	listener_watch(b, true);
}

/* What the client waits for now: room for its reply, or a whole request already read
 * (EPOLLOUT: served at once), else its next bytes. */
static void client_watch(struct control_client *cc)
{
	bool more = cc->out || memchr(cc->in, '\n', cc->in_len);

	if (evloop_mod(&cc->b->loop, &cc->h, more ? EPOLLOUT : EPOLLIN) < 0) {
		log_warn("broker: cannot watch a control client: %m");
		client_free(cc);
	}
}

/* The policy's rules as texts, NULL-terminated, for the reply and the audit log. */
static char **rule_texts(const struct policy *p)
{
	size_t n = policy_count(p);
	char **texts = calloc(n + 1, sizeof(*texts));

	for (size_t i = 0; texts && i < n; i++) {
		texts[i] = malloc(POLICY_RULE_TEXT_MAX);
		if (!texts[i] || policy_rule_text(p, i, texts[i], POLICY_RULE_TEXT_MAX) < 0) {
			for (size_t j = 0; j <= i; j++)
				free(texts[j]);
			free(texts);
			return NULL;
		}
	}
	return texts;
}

static void free_texts(char **texts)
{
	for (size_t i = 0; texts && texts[i]; i++)
		free(texts[i]);
	free(texts);
}

/* describe_egress's result (and update_egress's, with `closed`). */
static char *reply_state(struct broker *b, const char *id, int closed)
{
	struct control_egress_secret secrets[BROKER_MAX_SECRETS];
	char **rules = rule_texts(&b->cfg->policy);
	struct control_egress e = {
	    .allow = (const char *const *)rules,
	    .secrets = secrets,
	    .nsecrets = b->cfg->nsecrets,
	    .connections = b->nconns,
	    .connections_total = b->next_id,
	    .denied_total = b->denied,
	    .bytes_up = b->bytes_up,
	    .bytes_down = b->bytes_down,
	    .closed = closed,
	};
	char *line;

	if (!rules)
		return control_reply_error(id, CONTROL_E_HOST, "out of memory");
	for (unsigned i = 0; i < b->cfg->nsecrets; i++)
		secrets[i] = (struct control_egress_secret){
		    b->cfg->secrets[i].name, b->cfg->secrets[i].host, b->cfg->secrets[i].port};
	line = control_reply_egress(id, &e);
	free_texts(rules);
	return line;
}

/* update_egress: revoke, then allow, on a copy; the copy replaces the policy only when
 * every rule was taken (all or nothing), then the open connections are checked again. */
static char *update(struct control_client *cc, const struct control_request *r)
{
	struct broker *b = cc->b;
	struct policy next;
	char err[CONTROL_MESSAGE_MAX];
	unsigned closed;

	policy_init(&next);
	if (policy_copy(&next, &b->cfg->policy) < 0)
		return control_reply_error(r->id, CONTROL_E_HOST, "out of memory");
	for (char **spec = r->egress.revoke; spec && *spec; spec++) {
		if (policy_remove_as(&next, "revoke", *spec, err, sizeof(err)) < 0)
			goto refused;
	}
	for (char **spec = r->egress.allow; spec && *spec; spec++) {
		if (policy_add_as(&next, "allow", *spec, err, sizeof(err)) < 0)
			goto refused;
	}
	policy_release(&b->cfg->policy);
	b->cfg->policy = next;
	closed = broker_recheck(b);
	log_info("broker: the policy was changed by uid %u: %zu rules now, %u connections ended",
		 (unsigned)cc->uid, policy_count(&b->cfg->policy), closed);
	broker_audit(b,
		     audit_event_policy((const char *const *)r->egress.allow,
					(const char *const *)r->egress.revoke,
					(unsigned)policy_count(&b->cfg->policy), closed, cc->uid));
	return reply_state(b, r->id, (int)closed);
refused:
	policy_release(&next);
	return control_reply_error(r->id, CONTROL_E_PARAMS, err);
}

/* One request line: its reply (NULL for a notification, or when out of memory). */
static char *handle(struct control_client *cc, const char *line, size_t len)
{
	struct control_request r;
	struct control_error err;
	char *reply = NULL, msg[CONTROL_MESSAGE_MAX];

	if (control_parse_request(line, len, &r, &err) < 0)
		return err.id[0] ? control_reply_error(err.id, err.code, err.message) : NULL;
	switch (r.method) {
	case CONTROL_UPDATE_EGRESS:
		reply = update(cc, &r);
		break;
	case CONTROL_DESCRIBE_EGRESS:
		reply = reply_state(cc->b, r.id, -1);
		break;
	default:
		snprintf(msg, sizeof(msg),
			 "`%s` is the VMM's (api.sock); this socket serves update_egress and "
			 "describe_egress",
			 control_method_name(r.method));
		reply = control_reply_error(r.id, CONTROL_E_METHOD, msg);
		break;
	}
	if (!r.id[0]) {
		free(reply); /* a notification: carried out, never answered */
		reply = NULL;
	}
	control_request_free(&r);
	return reply;
}

/* Sends what is left of the reply; 0, or -1 once the client is gone (freed). */
static int client_send(struct control_client *cc)
{
	while (cc->out_off < cc->out_len) {
		ssize_t n = send(cc->h.fd, cc->out + cc->out_off, cc->out_len - cc->out_off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0) {
			client_free(cc);
			return -1;
		}
		cc->out_off += (size_t)n;
	}
	free(cc->out);
	cc->out = NULL;
	cc->out_len = cc->out_off = 0;
	if (cc->closing) {
		client_free(cc);
		return -1;
	}
	/* The clock starts again for what was read past the request. */
	cc->t_busy_ms = cc->in_len ? now_ms() : 0;
	return 0;
}

/* The reply to the line at the start of `in` (len bytes, then its "\n"), which is dropped. */
static void client_answer(struct control_client *cc, size_t len)
{
	char *reply = handle(cc, cc->in, len);

	memmove(cc->in, cc->in + len + 1, cc->in_len - len - 1);
	cc->in_len -= len + 1;
	if (reply) {
		cc->out = reply;
		cc->out_len = strlen(reply);
	}
	cc->t_busy_ms = cc->out || cc->in_len ? now_ms() : 0;
}

/* Reads until a request is whole: 1 if one is, 0 if more must come, -1 if the client is
 * gone (freed). A line past BROKER_CONTROL_LINE gets its error, then the client is closed. */
static int client_read(struct control_client *cc)
{
	ssize_t n;

	if (memchr(cc->in, '\n', cc->in_len))
		return 1;
	if (cc->in_len > BROKER_CONTROL_LINE) {
		cc->out = control_reply_error(NULL, CONTROL_E_REQUEST, "request line over 256 KiB");
		if (!cc->out) {
			client_free(cc);
			return -1;
		}
		cc->out_len = strlen(cc->out);
		cc->in_len = 0;
		cc->closing = true;
		return 0;
	}
	n = recv(cc->h.fd, cc->in + cc->in_len, BROKER_CONTROL_LINE + 1 - cc->in_len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0) {
		client_free(cc);
		return -1;
	}
	if (!cc->t_busy_ms)
		cc->t_busy_ms = now_ms();
	cc->in_len += (size_t)n;
	return memchr(cc->in, '\n', cc->in_len) ? 1 : 0;
}

/* At most BROKER_CONTROL_BUDGET requests per wake-up, each answered before the next. */
static void client_ready(struct ev_handler *h, uint32_t events)
{
	struct control_client *cc = h->opaque;

	(void)events;
	if (!cc->in) {
		cc->in = malloc(BROKER_CONTROL_LINE + 1);
		if (!cc->in) {
			client_free(cc);
			return;
		}
	}
	for (int budget = BROKER_CONTROL_BUDGET; budget > 0; budget--) {
		int ret;

		if (cc->out) {
			if (client_send(cc) < 0)
				return;
			if (cc->out)
				break; /* until there is room */
		}
		ret = client_read(cc);
		if (ret < 0)
			return;
		if (ret == 0 && !cc->out)
			break;
		if (ret == 1)
			client_answer(cc,
				      (size_t)((char *)memchr(cc->in, '\n', cc->in_len) - cc->in));
	}
	client_watch(cc);
}

static void listener_ready(struct ev_handler *h, uint32_t events)
{
	struct broker *b = h->opaque;

	(void)events;
	for (int i = 0; i < 4 && b->nclients < BROKER_CONTROL_CLIENTS; i++) {
		struct ucred cred;
		socklen_t len = sizeof(cred);
		struct control_client *cc;
		int fd = accept4(h->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
		    (cred.uid != b->cfg->control_uid && cred.uid != 0)) {
			log_warn("broker: a control client of uid %d refused (only the sandbox's "
				 "owner, uid %u, and root may)",
				 len == sizeof(cred) ? (int)cred.uid : -1,
				 (unsigned)b->cfg->control_uid);
			close(fd);
			continue;
		}
		cc = calloc(1, sizeof(*cc));
		if (!cc) {
			close(fd);
			return;
		}
		cc->b = b;
		cc->uid = cred.uid;
		cc->h = (struct ev_handler){.fd = fd, .ready = client_ready, .opaque = cc};
		if (evloop_add(&b->loop, &cc->h, EPOLLIN) < 0) {
			close(fd);
			free(cc);
			return;
		}
		LIST_INSERT_HEAD(&b->clients, cc, link);
		b->nclients++;
	}
	if (b->nclients >= BROKER_CONTROL_CLIENTS)
		listener_watch(b, false);
}

/* The listener is in the loop while it serves and there is room for a client. */
static void listener_watch(struct broker *b, bool on)
{
	on = on && b->control_serving && b->nclients < BROKER_CONTROL_CLIENTS;
	if (on == b->control_watched)
		return;
	if (on && evloop_add(&b->loop, &b->control, EPOLLIN) < 0) {
		log_warn("broker: cannot watch its control socket: %m");
		return;
	}
	if (!on)
		evloop_del(&b->loop, &b->control);
	b->control_watched = on;
}

int broker_control_listen(struct broker *b)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	const char *path = b->cfg->control_path;
	int fd;

	b->control = (struct ev_handler){.fd = -1, .ready = listener_ready, .opaque = b};
	if (!path[0])
		return 0;
	if (strlen(path) >= sizeof(addr.sun_path)) {
		log_err("broker: the control socket path `%s` is too long", path);
		return -1;
	}
	strcpy(addr.sun_path, path);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    chmod(path, 0600) < 0 || listen(fd, 16) < 0) {
		log_err("broker: cannot listen on `%s`: %m", path);
		if (fd >= 0)
			close(fd);
		unlink(path);
		return -1;
	}
	b->control.fd = fd;
	return 0;
}

int broker_control_start(struct broker *b)
{
	if (b->control.fd < 0)
		return 0;
	b->control_serving = true;
	listener_watch(b, true);
	return b->control_watched ? 0 : -1;
}

void broker_control_tick(struct broker *b, uint64_t now)
{
	struct control_client *cc, *next;

	for (cc = LIST_FIRST(&b->clients); cc; cc = next) {
		next = LIST_NEXT(cc, link);
		if (cc->t_busy_ms && now - cc->t_busy_ms > BROKER_CONTROL_MS) {
			log_warn("broker: a control client took over %d s to %s; dropped",
				 BROKER_CONTROL_MS / 1000,
				 cc->out ? "read its reply" : "send its request");
			client_free(cc);
		}
	}
}

void broker_control_stop(struct broker *b)
{
	b->control_serving = false;
	listener_watch(b, false);
	while (!LIST_EMPTY(&b->clients))
		client_free(LIST_FIRST(&b->clients));
	if (b->control.fd < 0)
		return;
	close(b->control.fd);
	b->control.fd = -1;
	unlink(b->cfg->control_path);
}

/* The guest end of the exec channel (api/exec.md): one session per connection, a REQUEST
 * frame starts one command in a child, then bytes flow both ways as frames until the EXIT
 * frame, sent once the command was reaped and its output drained.
 *
 * Flow control both ways: the command's output is read only while less than
 * EXEC_OUT_LIMIT bytes wait for the connection, and the connection only while less than
 * EXEC_IN_LIMIT bytes wait for the command's stdin. A host that closes the connection early
 * gets its command SIGKILLed. */
#include "exec.h"

#include "command.h"

#include "api/exec_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

#define EXEC_OUT_LIMIT	(256 * 1024)
#define EXEC_IN_LIMIT	(256 * 1024)
#define EXEC_READ_CHUNK EXEC_FRAME_MAX_PAYLOAD
#define EXEC_MAX_EVENTS 64
/* How long closing the main connection may wait for the host to take the last frames. */
#define EXEC_MAIN_LINGER_S 5

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* A byte queue: data lives in [head, len). */
struct buf {
	uint8_t *data;
	size_t head, len, cap;
};

enum watch_kind { W_CONN, W_OUT, W_ERR, W_IN, W_COUNT, W_LISTEN = W_COUNT };

struct exec_session;

struct watch {
	struct exec_session *s; /* NULL for the listener */
	int kind;
	int fd;
	uint32_t events;
	bool added;
};

struct exec_session {
	struct exec_server *srv;
	struct exec_session *next;
	struct watch w[W_COUNT];
	unsigned int id;
	struct buf rx; /* from the connection, frames not yet handled */
	struct buf tx; /* frames for the connection */
	struct buf in; /* bytes for the command's stdin */
	pid_t pid;     /* 0 until started */
	bool pty, main;
	bool reaped;
	int status;
	bool stdin_eof;	  /* the host sent STDIN_EOF */
	bool closing;	  /* protocol error or host gone: read nothing more from it */
	bool exit_queued; /* EXIT is in tx */
	bool doomed;	  /* to be freed at the end of the dispatch */
};

struct exec_server {
	int epfd;
	struct watch listener;
	struct exec_session *sessions;
	unsigned int next_id;
	bool in_dispatch;
	bool main_done;
	int main_status;
};

__attribute__((format(printf, 1, 2))) static void exec_log(const char *fmt, ...)
{
	int saved_errno = errno;
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (dprintf(STDERR_FILENO, "clawvm-init: exec: %s\n", line) < 0) {
		/* no console: nowhere left to say it */
	}
	errno = saved_errno;
}

static size_t buf_used(const struct buf *b)
{
	return b->len - b->head;
}

/* Room for n more bytes at the end; -ENOMEM. */
static int buf_reserve(struct buf *b, size_t n)
{
	if (b->head > 0 && (b->head == b->len || b->cap - b->len < n)) {
		memmove(b->data, b->data + b->head, b->len - b->head);
		b->len -= b->head;
		b->head = 0;
	}
	if (b->cap - b->len < n) {
		size_t cap = b->cap ? b->cap : 4096;
		uint8_t *bigger;

		while (cap - b->len < n)
			cap *= 2;
		bigger = realloc(b->data, cap);
		if (!bigger)
			return -ENOMEM;
		b->data = bigger;
		b->cap = cap;
	}
	return 0;
}

static void buf_consume(struct buf *b, size_t n)
{
	b->head += n;
	if (b->head == b->len)
		b->head = b->len = 0;
}

static void buf_free(struct buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static int queue_frame(struct exec_session *s, uint8_t type, const void *payload, uint32_t len)
{
	if (buf_reserve(&s->tx, EXEC_FRAME_HEADER_LEN + len) < 0)
		return -ENOMEM;
	exec_frame_header_encode(s->tx.data + s->tx.len, type, len);
	if (len)
		memcpy(s->tx.data + s->tx.len + EXEC_FRAME_HEADER_LEN, payload, len);
	s->tx.len += EXEC_FRAME_HEADER_LEN + len;
	return 0;
}

static void queue_u32(struct exec_session *s, uint8_t type, uint32_t v)
{
	uint8_t p[4];

	exec_put_le32(p, v);
	if (queue_frame(s, type, p, sizeof(p)) < 0)
		exec_log("connection %u: no memory for a frame", s->id);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void watch_set(struct exec_server *srv, struct watch *w, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = w};

	if (w->fd < 0) {
		w->added = false;
		return;
	}
	/* Removed rather than set to no events: epoll reports hang-ups even then, which would
	 * spin on a pipe we do not want to read yet. */
	if (events == 0) {
		if (w->added && epoll_ctl(srv->epfd, EPOLL_CTL_DEL, w->fd, NULL) < 0)
			exec_log("epoll del: %s", strerror(errno));
		w->added = false;
	} else if (!w->added) {
		if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, w->fd, &ev) < 0)
			exec_log("epoll add: %s", strerror(errno));
		else
			w->added = true;
	} else if (events != w->events && epoll_ctl(srv->epfd, EPOLL_CTL_MOD, w->fd, &ev) < 0) {
		exec_log("epoll mod: %s", strerror(errno));
	}
	w->events = events;
}

static void watch_close(struct exec_server *srv, struct watch *w)
{
	watch_set(srv, w, 0);
	close_fd(&w->fd);
}

static void kill_command(struct exec_session *s, int sig)
{
	if (s->pid <= 0 || s->reaped)
		return;
	/* Its own process group once it ran setsid(); before that, only the process. */
	if (kill(-s->pid, sig) < 0 && kill(s->pid, sig) < 0 && errno != ESRCH)
		exec_log("connection %u: kill %d: %s", s->id, (int)s->pid, strerror(errno));
}

/* Sends what the host must know and stops listening to it; the connection closes once tx
 * is flushed. */
__attribute__((format(printf, 2, 3))) static void fail(struct exec_session *s, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (s->closing)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	exec_log("connection %u: %s", s->id, msg);
	if (queue_frame(s, EXEC_FRAME_ERROR, msg, (uint32_t)strlen(msg)) < 0)
		exec_log("connection %u: no memory for the error frame", s->id);
	s->closing = true;
	kill_command(s, SIGKILL);
}

/* The host is gone (or unusable): nothing more can be sent. */
static void drop_connection(struct exec_session *s)
{
	s->closing = true;
	watch_close(s->srv, &s->w[W_CONN]);
	buf_free(&s->tx);
	kill_command(s, SIGKILL);
	for (int k = W_OUT; k < W_COUNT; k++)
		watch_close(s->srv, &s->w[k]);
}

/* ---- starting the command ---- */

/* The command's environment: the request's, plus a default PATH when it has none. */
static char **build_env(const struct exec_request *req)
{
	bool has_path = false;
	char **env = calloc((size_t)req->envc + 2, sizeof(*env));
	size_t n = 0;

	if (!env)
		return NULL;
	for (uint32_t i = 0; i < req->envc; i++) {
		if (strncmp(req->envp[i], "PATH=", 5) == 0)
			has_path = true;
		env[n++] = (char *)req->envp[i];
	}
	if (!has_path)
		env[n++] = (char *)DEFAULT_PATH;
	env[n] = NULL;
	return env;
}

__attribute__((noreturn)) static void child_fail(const char *prog, const char *what, int err,
						 int status)
{
	dprintf(STDERR_FILENO, "clawvm: cannot run '%s': %s%s%s\n", prog, what ? what : "",
		what ? ": " : "", strerror(err));
	_exit(status);
}

/* In the child: stdio on fds[0..2], its own session, ids, cwd, environment, exec. */
__attribute__((noreturn)) static void child_exec(const struct exec_request *req, char **env,
						 const int fds[3], bool pty)
{
	const char *prog = req->argv[0];
	const char *cwd = req->cwd[0] ? req->cwd : "/";
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL); /* fails harmlessly for SIGKILL, SIGSTOP, RT internals */
	if (setsid() < 0)
		child_fail(prog, "setsid", errno, CLAWVM_EXIT_NOT_EXECUTABLE);
	if (pty && ioctl(fds[0], TIOCSCTTY, 0) < 0)
		child_fail(prog, "set the controlling terminal", errno, CLAWVM_EXIT_NOT_EXECUTABLE);
	for (int i = 0; i < 3; i++) {
		if (dup2(fds[i], i) < 0)
			_exit(COMMAND_EXIT_INIT_FAILED);
	}
	if (getuid() == 0 && setgroups(0, NULL) < 0)
		child_fail(prog, "setgroups", errno, CLAWVM_EXIT_NOT_EXECUTABLE);
	if (req->gid != (uint32_t)getgid() && setgid((gid_t)req->gid) < 0)
		child_fail(prog, "setgid", errno, CLAWVM_EXIT_NOT_EXECUTABLE);
	if (req->uid != (uint32_t)getuid() && setuid((uid_t)req->uid) < 0)
		child_fail(prog, "setuid", errno, CLAWVM_EXIT_NOT_EXECUTABLE);
	if (chdir(cwd) < 0)
		child_fail(prog, "chdir", errno, CLAWVM_EXIT_NOT_EXECUTABLE);

	/* execvp searches the PATH of the environment in force. */
	environ = env;
	execvp(prog, (char *const *)req->argv);
	child_fail(prog, NULL, errno,
		   errno == ENOENT ? CLAWVM_EXIT_NOT_FOUND : CLAWVM_EXIT_NOT_EXECUTABLE);
}

static int open_pty(const struct exec_request *req, int *master_out, int *slave_out)
{
	struct winsize ws = {.ws_row = req->rows, .ws_col = req->cols};
	char name[64];
	int master, slave;

	master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	if (master < 0)
		return -errno;
	if (grantpt(master) < 0 || unlockpt(master) < 0 ||
	    ptsname_r(master, name, sizeof(name)) != 0)
		goto err;
	slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		goto err;
	if ((ws.ws_row || ws.ws_col) && ioctl(master, TIOCSWINSZ, &ws) < 0)
		exec_log("TIOCSWINSZ: %s", strerror(errno));
	if (fchown(slave, (uid_t)req->uid, (gid_t)-1) < 0)
		exec_log("chown `%s`: %s", name, strerror(errno));
	*master_out = master;
	*slave_out = slave;
	return 0;
err : {
	int ret = -errno;

	close(master);
	return ret;
}
}

static int set_nonblock(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* Child ends in child_fds (closed here after the fork), our ends in the watches. */
static int make_stdio(struct exec_session *s, const struct exec_request *req, int child_fds[3])
{
	int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
	int master = -1, slave = -1;

	if (s->pty) {
		int ret = open_pty(req, &master, &slave);

		if (ret < 0)
			return ret;
		s->w[W_OUT].fd = master;
		s->w[W_IN].fd = fcntl(master, F_DUPFD_CLOEXEC, 0);
		if (s->w[W_IN].fd < 0) {
			ret = -errno;
			close(slave);
			return ret;
		}
		child_fds[0] = child_fds[1] = child_fds[2] = slave;
		return 0;
	}
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
		goto err;
	if (set_nonblock(in[1]) < 0 || set_nonblock(out[0]) < 0 || set_nonblock(err[0]) < 0)
		goto err;
	s->w[W_IN].fd = in[1];
	s->w[W_OUT].fd = out[0];
	s->w[W_ERR].fd = err[0];
	child_fds[0] = in[0];
	child_fds[1] = out[1];
	child_fds[2] = err[1];
	return 0;
err : {
	int ret = -errno;

	for (int i = 0; i < 2; i++) {
		close_fd(&in[i]);
		close_fd(&out[i]);
		close_fd(&err[i]);
	}
	return ret;
}
}

static void close_child_fds(int fds[3])
{
	for (int i = 0; i < 3; i++) {
		/* With a pty all three are the same slave fd. */
		if (fds[i] >= 0 && (i == 0 || fds[i] != fds[i - 1]))
			close(fds[i]);
		fds[i] = -1;
	}
}

static void start_command(struct exec_session *s, const uint8_t *payload, uint32_t len)
{
	struct exec_request req;
	int child_fds[3] = {-1, -1, -1};
	char **env;
	pid_t pid;
	int ret;

	ret = exec_request_decode(payload, len, &req);
	if (ret < 0) {
		fail(s, "malformed REQUEST: %s", strerror(-ret));
		return;
	}
	s->pty = req.flags & EXEC_FLAG_PTY;
	s->main = req.flags & EXEC_FLAG_MAIN;
	env = build_env(&req);
	if (!env) {
		fail(s, "no memory for the environment");
		goto out;
	}
	ret = make_stdio(s, &req, child_fds);
	if (ret < 0) {
		fail(s, "cannot set up stdio for '%s': %s", req.argv[0], strerror(-ret));
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		fail(s, "fork: %s", strerror(errno));
		close_child_fds(child_fds);
		for (int k = W_OUT; k < W_COUNT; k++)
			close_fd(&s->w[k].fd);
		goto out;
	}
	if (pid == 0)
		child_exec(&req, env, child_fds, s->pty);
	close_child_fds(child_fds);
	s->pid = pid;
	queue_u32(s, EXEC_FRAME_STARTED, (uint32_t)pid);
out:
	free(env);
	exec_request_release(&req);
}

/* ---- frames from the host ---- */

static void handle_frame(struct exec_session *s, uint8_t type, const uint8_t *p, uint32_t len)
{
	if (s->pid == 0) {
		if (type != EXEC_FRAME_REQUEST)
			fail(s, "the first frame must be a REQUEST (got type %u)", type);
		else
			start_command(s, p, len);
		return;
	}
	switch (type) {
	case EXEC_FRAME_STDIN:
		if (s->stdin_eof) {
			fail(s, "STDIN after STDIN_EOF");
		} else if (s->w[W_IN].fd >= 0 && len > 0) {
			if (buf_reserve(&s->in, len) < 0) {
				fail(s, "no memory for stdin");
				return;
			}
			memcpy(s->in.data + s->in.len, p, len);
			s->in.len += len;
		}
		/* else the command closed its stdin: the bytes have nowhere to go */
		break;
	case EXEC_FRAME_STDIN_EOF:
		if (len != 0)
			fail(s, "STDIN_EOF with a payload");
		s->stdin_eof = true;
		break;
	case EXEC_FRAME_SIGNAL: {
		uint32_t sig = len == 4 ? exec_get_le32(p) : 0;

		if (sig == 0 || sig >= NSIG)
			fail(s, "bad SIGNAL frame");
		else
			kill_command(s, (int)sig);
		break;
	}
	case EXEC_FRAME_WINSIZE: {
		struct winsize ws;

		if (len != 4) {
			fail(s, "bad WINSIZE frame");
			break;
		}
		ws = (struct winsize){.ws_row = exec_get_le16(p), .ws_col = exec_get_le16(p + 2)};
		/* Without a pty there is no window: ignored. */
		if (s->pty && s->w[W_OUT].fd >= 0 && ioctl(s->w[W_OUT].fd, TIOCSWINSZ, &ws) < 0)
			exec_log("connection %u: TIOCSWINSZ: %s", s->id, strerror(errno));
		break;
	}
	default:
		fail(s, "unexpected frame type %u", type);
	}
}

/* Reads what the connection has and handles every whole frame. */
static bool read_conn(struct exec_session *s)
{
	bool progress = false;

	while (s->w[W_CONN].fd >= 0 && !s->closing && buf_used(&s->in) < EXEC_IN_LIMIT) {
		ssize_t n;

		if (buf_reserve(&s->rx, EXEC_READ_CHUNK) < 0) {
			fail(s, "no memory for the connection");
			break;
		}
		n = read(s->w[W_CONN].fd, s->rx.data + s->rx.len, EXEC_READ_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			/* Gone before EXIT: nobody is left to read the output. */
			if (n < 0 || !s->exit_queued)
				drop_connection(s);
			else
				s->closing = true;
			return true;
		}
		s->rx.len += (size_t)n;
		progress = true;

		while (!s->closing && buf_used(&s->rx) >= EXEC_FRAME_HEADER_LEN) {
			const uint8_t *hdr = s->rx.data + s->rx.head;
			uint32_t len;
			uint8_t type;

			if (exec_frame_header_parse(hdr, &type, &len) < 0) {
				fail(s, "frame of type %u too large (%u bytes)", hdr[0],
				     exec_get_le32(hdr + 1));
				break;
			}
			if (buf_used(&s->rx) - EXEC_FRAME_HEADER_LEN < len) {
				/* Room for the whole frame at the next read. */
				if (buf_reserve(&s->rx, EXEC_FRAME_HEADER_LEN + len) < 0)
					fail(s, "no memory for a frame");
				break;
			}
			handle_frame(s, type, hdr + EXEC_FRAME_HEADER_LEN, len);
			buf_consume(&s->rx, EXEC_FRAME_HEADER_LEN + len);
		}
	}
	return progress;
}

/* ---- bytes to and from the command ---- */

static bool write_stdin(struct exec_session *s)
{
	struct watch *w = &s->w[W_IN];
	bool progress = false;

	while (w->fd >= 0 && buf_used(&s->in) > 0) {
		ssize_t n = write(w->fd, s->in.data + s->in.head, buf_used(&s->in));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return progress;
		if (n < 0) {
			/* EPIPE: the command closed its stdin; what is left is dropped. */
			buf_free(&s->in);
			watch_close(s->srv, w);
			return true;
		}
		buf_consume(&s->in, (size_t)n);
		progress = true;
	}
	if (w->fd >= 0 && s->stdin_eof && buf_used(&s->in) == 0) {
		if (s->pty) {
			/* A terminal has no end of input, only its EOF character. */
			static const char eof_char = 4;

			if (write(w->fd, &eof_char, 1) < 0 && errno != EAGAIN)
				exec_log("connection %u: EOF to the pty: %s", s->id,
					 strerror(errno));
		}
		watch_close(s->srv, w);
		progress = true;
	}
	return progress;
}

/* Reads the command's output into frames while tx has room. After the command was reaped,
 * an empty pipe means drained: it is closed even if a background process still holds the
 * other end, so that EXIT is not held back by it. */
static bool pump_output(struct exec_session *s)
{
	bool progress = false;

	for (int k = W_OUT; k <= W_ERR; k++) {
		struct watch *w = &s->w[k];
		uint8_t type = k == W_OUT ? EXEC_FRAME_STDOUT : EXEC_FRAME_STDERR;

		while (w->fd >= 0 && buf_used(&s->tx) < EXEC_OUT_LIMIT) {
			uint8_t *frame;
			ssize_t n;

			if (buf_reserve(&s->tx, EXEC_FRAME_HEADER_LEN + EXEC_READ_CHUNK) < 0)
				break;
			frame = s->tx.data + s->tx.len;
			n = read(w->fd, frame + EXEC_FRAME_HEADER_LEN, EXEC_READ_CHUNK);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN) {
				if (s->reaped) {
					watch_close(s->srv, w);
					progress = true;
				}
				break;
			}
			if (n <= 0) {
				/* EOF, or EIO from a pty master whose slave is closed. */
				watch_close(s->srv, w);
				progress = true;
				break;
			}
			exec_frame_header_encode(frame, type, (uint32_t)n);
			s->tx.len += EXEC_FRAME_HEADER_LEN + (size_t)n;
			progress = true;
		}
	}
	return progress;
}

static bool flush_tx(struct exec_session *s)
{
	bool progress = false;

	while (s->w[W_CONN].fd >= 0 && buf_used(&s->tx) > 0) {
		ssize_t n =
		    send(s->w[W_CONN].fd, s->tx.data + s->tx.head, buf_used(&s->tx), MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) {
			drop_connection(s);
			return true;
		}
		buf_consume(&s->tx, (size_t)n);
		progress = true;
	}
	return progress;
}

static void update_watches(struct exec_session *s)
{
	struct exec_server *srv = s->srv;
	uint32_t conn = 0;

	if (!s->closing && buf_used(&s->in) < EXEC_IN_LIMIT)
		conn |= EPOLLIN;
	if (buf_used(&s->tx) > 0)
		conn |= EPOLLOUT;
	watch_set(srv, &s->w[W_CONN], conn);
	for (int k = W_OUT; k <= W_ERR; k++)
		watch_set(srv, &s->w[k], buf_used(&s->tx) < EXEC_OUT_LIMIT ? EPOLLIN : 0);
	watch_set(srv, &s->w[W_IN], buf_used(&s->in) > 0 ? EPOLLOUT : 0);
}

static void session_free(struct exec_session *s)
{
	struct exec_session **pp = &s->srv->sessions;

	while (*pp && *pp != s)
		pp = &(*pp)->next;
	if (*pp)
		*pp = s->next;
	for (int k = 0; k < W_COUNT; k++)
		watch_close(s->srv, &s->w[k]);
	buf_free(&s->rx);
	buf_free(&s->tx);
	buf_free(&s->in);
	free(s);
}

/* Does all I/O that can be done now, then decides whether the session is over. */
static void session_step(struct exec_session *s)
{
	for (int round = 0; round < 8; round++) {
		bool progress = read_conn(s);

		progress |= write_stdin(s);
		progress |= pump_output(s);
		if (s->reaped && !s->exit_queued && s->w[W_OUT].fd < 0 && s->w[W_ERR].fd < 0 &&
		    !s->closing) {
			queue_u32(s, EXEC_FRAME_EXIT, (uint32_t)s->status);
			s->exit_queued = true;
			watch_close(s->srv, &s->w[W_IN]);
			progress = true;
		}
		progress |= flush_tx(s);
		if (!progress)
			break;
	}
	if (s->w[W_CONN].fd >= 0 && buf_used(&s->tx) == 0 && (s->exit_queued || s->closing)) {
		/* The VM powers off when the main command ends, and the frames written last
		 * may still wait in the kernel's vsock queue: close only once the host has
		 * them (its reset of the closed connection ends the wait). */
		if (s->main) {
			struct linger l = {.l_onoff = 1, .l_linger = EXEC_MAIN_LINGER_S};

			if (setsockopt(s->w[W_CONN].fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)) < 0)
				exec_log("connection %u: SO_LINGER: %s", s->id, strerror(errno));
		}
		watch_close(s->srv, &s->w[W_CONN]);
	}
	if (s->w[W_CONN].fd < 0) {
		/* Nobody to send output to any more. */
		for (int k = W_OUT; k < W_COUNT; k++)
			watch_close(s->srv, &s->w[k]);
		if (s->pid <= 0 || s->reaped) {
			if (s->main && s->reaped && !s->srv->main_done) {
				s->srv->main_done = true;
				s->srv->main_status = s->status;
			}
			s->doomed = true;
			return;
		}
	}
	update_watches(s);
}

/* ---- the server ---- */

struct exec_server *exec_server_create(void)
{
	struct exec_server *srv = calloc(1, sizeof(*srv));

	if (!srv)
		return NULL;
	srv->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (srv->epfd < 0) {
		free(srv);
		return NULL;
	}
	srv->listener.fd = -1;
	srv->listener.kind = W_LISTEN;
	return srv;
}

void exec_server_destroy(struct exec_server *srv)
{
	if (!srv)
		return;
	while (srv->sessions) {
		kill_command(srv->sessions, SIGKILL);
		session_free(srv->sessions);
	}
	watch_close(srv, &srv->listener);
	close(srv->epfd);
	free(srv);
}

int exec_server_fd(const struct exec_server *srv)
{
	return srv->epfd;
}

int exec_server_add_conn(struct exec_server *srv, int fd)
{
	struct exec_session *s;
	int ret;

	ret = set_nonblock(fd);
	if (ret == 0 && fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		ret = -errno;
	s = ret == 0 ? calloc(1, sizeof(*s)) : NULL;
	if (!s) {
		close(fd);
		return ret < 0 ? ret : -ENOMEM;
	}
	s->srv = srv;
	s->id = ++srv->next_id;
	for (int k = 0; k < W_COUNT; k++) {
		s->w[k].s = s;
		s->w[k].kind = k;
		s->w[k].fd = -1;
	}
	s->w[W_CONN].fd = fd;
	s->next = srv->sessions;
	srv->sessions = s;
	watch_set(srv, &s->w[W_CONN], EPOLLIN);
	if (!s->w[W_CONN].added) {
		session_free(s);
		return -EIO;
	}
	return 0;
}

int exec_server_add_listener(struct exec_server *srv, int listen_fd)
{
	int ret = set_nonblock(listen_fd);

	if (ret < 0) {
		close(listen_fd);
		return ret;
	}
	watch_close(srv, &srv->listener);
	srv->listener.fd = listen_fd;
	watch_set(srv, &srv->listener, EPOLLIN);
	return srv->listener.added ? 0 : -EIO;
}

int exec_listen_vsock(unsigned int port)
{
	struct sockaddr_vm addr = {
	    .svm_family = AF_VSOCK,
	    .svm_port = port,
	    .svm_cid = VMADDR_CID_ANY,
	};
	unsigned int cid = VMADDR_CID_ANY;
	int dev, fd, ret;

	/* Without a transport the socket still binds and listens, and waits forever. */
	dev = open("/dev/vsock", O_RDONLY | O_CLOEXEC);
	if (dev < 0)
		return -ENODEV;
	ret = ioctl(dev, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid);
	close(dev);
	if (ret < 0 || cid == VMADDR_CID_ANY)
		return -ENODEV;

	fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 64) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

static void accept_all(struct exec_server *srv)
{
	for (;;) {
		int fd = accept4(srv->listener.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN)
				exec_log("accept: %s", strerror(errno));
			return;
		}
		if (exec_server_add_conn(srv, fd) < 0)
			exec_log("cannot serve a new connection");
	}
}

static void reap_doomed(struct exec_server *srv)
{
	struct exec_session *s = srv->sessions, *next;

	for (; s; s = next) {
		next = s->next;
		if (s->doomed)
			session_free(s);
	}
}

void exec_server_dispatch(struct exec_server *srv)
{
	struct epoll_event events[EXEC_MAX_EVENTS];
	int n;

	n = epoll_wait(srv->epfd, events, EXEC_MAX_EVENTS, 0);
	if (n < 0 && errno != EINTR)
		exec_log("epoll_wait: %s", strerror(errno));
	for (int i = 0; i < n; i++) {
		struct watch *w = events[i].data.ptr;

		if (w->kind == W_LISTEN) {
			accept_all(srv);
			continue;
		}
		/* A session freed earlier in this batch is only doomed yet, not freed. */
		if (!w->s->doomed)
			session_step(w->s);
	}
	reap_doomed(srv);
}

bool exec_server_child_exited(struct exec_server *srv, pid_t pid, int wstatus)
{
	for (struct exec_session *s = srv->sessions; s; s = s->next) {
		if (s->pid != pid || s->reaped)
			continue;
		s->reaped = true;
		s->status = command_exit_status(wstatus);
		if (s->status < 0)
			s->status = COMMAND_EXIT_INIT_FAILED;
		session_step(s);
		reap_doomed(srv);
		return true;
	}
	return false;
}

unsigned int exec_server_sessions(const struct exec_server *srv)
{
	unsigned int n = 0;

	for (const struct exec_session *s = srv->sessions; s; s = s->next)
		n++;
	return n;
}

void exec_server_signal_main(struct exec_server *srv, int sig)
{
	for (struct exec_session *s = srv->sessions; s; s = s->next) {
		if (s->main)
			kill_command(s, sig);
	}
}

bool exec_server_main_done(const struct exec_server *srv, int *status)
{
	if (srv->main_done)
		*status = srv->main_status;
	return srv->main_done;
}

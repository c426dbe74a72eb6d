/* The exec channel end to end without a VM: guest-init's exec server (exec.c) runs in a
 * forked process on one end of AF_UNIX socketpairs, the VMM's client (vmm/exec_client.c)
 * or hand-made frames on the other, and real commands of this machine in between. */
#include "exec.h"

#include "vmm/exec_client.h"

#include "api/exec_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define SERVER_NO_MAIN 255

/* The guest side: serves conns[] until every session is over, reaping its commands as
 * PID 1 would. Exits with the `main` exec's status, or SERVER_NO_MAIN. */
static pid_t server_start(const int *conns, int n, const int *others, int n_others)
{
	struct exec_server *srv;
	sigset_t chld;
	int sfd, status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid > 0)
		return pid;
	for (int i = 0; i < n_others; i++)
		close(others[i]);
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
	srv = exec_server_create();
	if (sfd < 0 || !srv)
		_exit(100);
	for (int i = 0; i < n; i++) {
		if (exec_server_add_conn(srv, conns[i]) < 0)
			_exit(101);
	}
	while (exec_server_sessions(srv) > 0) {
		struct pollfd p[2] = {{.fd = sfd, .events = POLLIN},
				      {.fd = exec_server_fd(srv), .events = POLLIN}};
		struct signalfd_siginfo si;
		int wstatus;
		pid_t child;

		poll(p, 2, 1000);
		while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
			;
		exec_server_dispatch(srv);
		while ((child = waitpid(-1, &wstatus, WNOHANG)) > 0)
			exec_server_child_exited(srv, child, wstatus);
	}
	_exit(exec_server_main_done(srv, &status) ? status : SERVER_NO_MAIN);
}

static int server_wait(pid_t pid)
{
	int wstatus;

	assert_int_equal(waitpid(pid, &wstatus, 0), pid);
	assert_true(WIFEXITED(wstatus));
	return WEXITSTATUS(wstatus);
}

static void make_pair(int sp[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
}

static int memfd_with(const void *data, size_t len)
{
	int fd = memfd_create("exec-test", MFD_CLOEXEC);

	assert_true(fd >= 0);
	if (len)
		assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

/* The whole content of a memfd, NUL-terminated; its length in *len. */
static char *memfd_read(int fd, size_t *len)
{
	off_t size = lseek(fd, 0, SEEK_END);
	char *buf = malloc((size_t)size + 1);

	assert_non_null(buf);
	assert_true(size >= 0);
	assert_int_equal(pread(fd, buf, (size_t)size, 0), size);
	buf[size] = '\0';
	*len = (size_t)size;
	return buf;
}

struct run {
	/* in */
	const char **argv;
	const char **envp;
	const char *cwd;
	uint32_t flags;
	uint16_t rows, cols;
	const void *in;
	size_t in_len;
	bool no_stdin;
	int conn;
	/* out */
	int ret, status;
	char *out, *err;
	size_t out_len, err_len;
};

static void run_client(struct run *r)
{
	struct exec_request req = {
	    .flags = r->flags,
	    .uid = getuid(),
	    .gid = getgid(),
	    .rows = r->rows,
	    .cols = r->cols,
	    .argv = r->argv,
	    .envp = r->envp,
	    .cwd = r->cwd,
	};
	int in = r->no_stdin ? -1 : memfd_with(r->in, r->in_len);
	int out = memfd_with(NULL, 0), err = memfd_with(NULL, 0);

	while (r->argv[req.argc])
		req.argc++;
	while (r->envp && r->envp[req.envc])
		req.envc++;
	r->status = -1;
	r->ret = exec_client_run(r->conn, &req, in, out, err, &r->status);
	r->out = memfd_read(out, &r->out_len);
	r->err = memfd_read(err, &r->err_len);
	if (in >= 0)
		close(in);
	close(out);
	close(err);
	close(r->conn);
}

/* One exec against its own server; returns the server's exit code. */
static int run_one(struct run *r)
{
	int sp[2];
	pid_t server;

	make_pair(sp);
	server = server_start(&sp[1], 1, &sp[0], 1);
	close(sp[1]);
	r->conn = sp[0];
	run_client(r);
	return server_wait(server);
}

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

#define ARGV(...) ((const char *[]){__VA_ARGS__, NULL})

static void expect(const char **argv, int status, const char *out, const char *err)
{
	struct run r = {.argv = argv};

	assert_int_equal(run_one(&r), SERVER_NO_MAIN);
	assert_int_equal(r.ret, 0);
	assert_string_equal(r.out, out);
	assert_string_equal(r.err, err);
	assert_int_equal(r.status, status);
	run_free(&r);
}

static void test_statuses_and_streams(void **state)
{
	(void)state;
	expect(ARGV("/bin/echo", "hello", "world"), 0, "hello world\n", "");
	expect(ARGV("sh", "-c", "echo out; echo err >&2; printf 'a\\001\\377'; exit 1"), 1,
	       "out\na\001\377", "err\n");
	expect(ARGV("sh", "-c", "exit 7"), 7, "", "");
	expect(ARGV("sh", "-c", "echo before; kill -9 $$; echo after"), 137, "before\n", "");
	expect(ARGV("no-such-command-clawvm", "x"), 127, "",
	       "clawvm: cannot run 'no-such-command-clawvm': No such file or directory\n");
	expect(ARGV("/etc/passwd"), 126, "",
	       "clawvm: cannot run '/etc/passwd': Permission denied\n");
}

static void test_env_cwd_and_no_stdin(void **state)
{
	struct run r = {
	    .argv = ARGV("sh", "-c", "pwd; echo \"$FOO\"; echo \"$PATH\"; cat; echo end"),
	    .envp = ARGV("FOO=bar baz"),
	    .cwd = "/tmp",
	    .no_stdin = true,
	};

	(void)state;
	assert_int_equal(run_one(&r), SERVER_NO_MAIN);
	assert_int_equal(r.ret, 0);
	assert_string_equal(
	    r.out,
	    "/tmp\nbar baz\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nend\n");
	assert_int_equal(r.status, 0);
	run_free(&r);

	/* Exactly the request's environment, plus PATH since it has none. */
	r = (struct run){.argv = ARGV("env"), .envp = ARGV("FOO=bar", "EMPTY=")};
	assert_int_equal(run_one(&r), SERVER_NO_MAIN);
	assert_string_equal(
	    r.out,
	    "FOO=bar\nEMPTY=\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n");
	run_free(&r);
	r = (struct run){.argv = ARGV("env"), .envp = ARGV("PATH=/bin")};
	assert_int_equal(run_one(&r), SERVER_NO_MAIN);
	assert_string_equal(r.out, "PATH=/bin\n");
	run_free(&r);
}

static void fill_pattern(uint8_t *buf, size_t len, unsigned int seed)
{
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (uint8_t)(x >> 16);
	}
}

static void test_stdin_one_mib(void **state)
{
	size_t len = 1024 * 1024 + 17;
	uint8_t *data = malloc(len);
	struct run r = {.argv = ARGV("cat")};

	(void)state;
	assert_non_null(data);
	fill_pattern(data, len, 1);
	r.in = data;
	r.in_len = len;
	assert_int_equal(run_one(&r), SERVER_NO_MAIN);
	assert_int_equal(r.ret, 0);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.out_len, len);
	assert_memory_equal(r.out, data, len);
	assert_int_equal(r.err_len, 0);
	run_free(&r);
	free(data);
}

static void test_large_output(void **state)
{
	struct run r = {.argv = ARGV("sh", "-c", "yes | head -c 3000000; echo tail >&2")};

	(void)state;
	assert_int_equal(run_one(&r), SERVER_NO_MAIN);
	assert_int_equal(r.ret, 0);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.out_len, 3000000);
	for (size_t i = 0; i < r.out_len; i++) {
		if (r.out[i] != (i % 2 ? '\n' : 'y'))
			fail_msg("byte %zu is %d", i, r.out[i]);
	}
	assert_string_equal(r.err, "tail\n");
	run_free(&r);
}

#define N_CONCURRENT  20
#define CONCURRENT_IN (200 * 1024)

static void *client_thread(void *arg)
{
	run_client(arg);
	return NULL;
}

static void test_concurrent(void **state)
{
	static struct run runs[N_CONCURRENT];
	static char names[N_CONCURRENT][8];
	static const char *argvs[N_CONCURRENT][5];
	static uint8_t inputs[N_CONCURRENT][CONCURRENT_IN];
	pthread_t threads[N_CONCURRENT];
	int conns[N_CONCURRENT], peers[N_CONCURRENT];
	pid_t server;

	(void)state;
	for (int i = 0; i < N_CONCURRENT; i++) {
		int sp[2];

		make_pair(sp);
		peers[i] = sp[0];
		conns[i] = sp[1];
		fill_pattern(inputs[i], CONCURRENT_IN, (unsigned int)i + 100);
		/* argv[3] is $0: a different exit status and stderr line per exec. */
		snprintf(names[i], sizeof(names[i]), "%d", i);
		argvs[i][0] = "sh";
		argvs[i][1] = "-c";
		argvs[i][2] = "cat; echo \"err $0\" >&2; exit $0";
		argvs[i][3] = names[i];
		argvs[i][4] = NULL;
		runs[i] = (struct run){
		    .argv = argvs[i],
		    .in = inputs[i],
		    .in_len = CONCURRENT_IN,
		    .conn = sp[0],
		};
	}
	server = server_start(conns, N_CONCURRENT, peers, N_CONCURRENT);
	for (int i = 0; i < N_CONCURRENT; i++)
		close(conns[i]);
	for (int i = 0; i < N_CONCURRENT; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, client_thread, &runs[i]), 0);
	for (int i = 0; i < N_CONCURRENT; i++)
		assert_int_equal(pthread_join(threads[i], NULL), 0);
	assert_int_equal(server_wait(server), SERVER_NO_MAIN);
	for (int i = 0; i < N_CONCURRENT; i++) {
		char err[32];

		snprintf(err, sizeof(err), "err %d\n", i);
		assert_int_equal(runs[i].ret, 0);
		assert_int_equal(runs[i].status, i);
		assert_int_equal(runs[i].out_len, CONCURRENT_IN);
		assert_memory_equal(runs[i].out, inputs[i], CONCURRENT_IN);
		assert_string_equal(runs[i].err, err);
		run_free(&runs[i]);
	}
}

struct sig_run {
	struct run r;
	int out_pipe;
	int sig_fd;
};

static void *signal_client_thread(void *arg)
{
	struct sig_run *s = arg;
	struct exec_request req = {.uid = getuid(), .gid = getgid(), .argc = 3, .argv = s->r.argv};

	s->r.ret =
	    exec_client_run_signals(s->r.conn, &req, -1, s->out_pipe, -1, s->sig_fd, &s->r.status);
	close(s->out_pipe);
	return NULL;
}

/* SIGINT reaches the command's whole process group: `yes` dies of it, and so does the
 * shell (no "after"), with the status 130. Output proves `yes` runs before the signal is
 * sent; the output is drained all along, or the client would block writing it. */
static void test_signal(void **state)
{
	struct sig_run s = {.r.argv = ARGV("sh", "-c", "yes; echo after")};
	char buf[4096], tail[16] = {0};
	sigset_t intr, old;
	pthread_t thread;
	int sp[2], out[2];
	bool sent = false;
	pid_t server;
	ssize_t n;

	(void)state;
	sigemptyset(&intr);
	sigaddset(&intr, SIGINT);
	assert_int_equal(pthread_sigmask(SIG_BLOCK, &intr, &old), 0);
	s.sig_fd = signalfd(-1, &intr, SFD_CLOEXEC);
	assert_true(s.sig_fd >= 0);
	make_pair(sp);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	server = server_start(&sp[1], 1, &sp[0], 1);
	close(sp[1]);
	s.r.conn = sp[0];
	s.out_pipe = out[1];
	assert_int_equal(pthread_create(&thread, NULL, signal_client_thread, &s), 0);
	while ((n = read(out[0], buf, sizeof(buf))) > 0) {
		if (!sent) {
			assert_int_equal(buf[0], 'y');
			assert_int_equal(kill(getpid(), SIGINT), 0);
			sent = true;
		}
		/* The last bytes seen, across reads. */
		for (ssize_t i = 0; i < n; i++) {
			memmove(tail, tail + 1, sizeof(tail) - 2);
			tail[sizeof(tail) - 2] = buf[i];
		}
	}
	assert_int_equal(pthread_join(thread, NULL), 0);
	assert_true(sent);
	assert_null(strstr(tail, "after"));
	assert_int_equal(s.r.ret, 0);
	assert_int_equal(s.r.status, 130);
	assert_int_equal(server_wait(server), SERVER_NO_MAIN);
	close(out[0]);
	close(sp[0]);
	close(s.sig_fd);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void test_pty(void **state)
{
	struct run tty = {.argv = ARGV("tty"), .flags = EXEC_FLAG_PTY, .rows = 33, .cols = 101};
	struct run size = {.argv = ARGV("sh", "-c", "stty size; echo err >&2"),
			   .flags = EXEC_FLAG_PTY,
			   .rows = 33,
			   .cols = 101};

	(void)state;
	assert_int_equal(run_one(&tty), SERVER_NO_MAIN);
	assert_int_equal(tty.ret, 0);
	assert_int_equal(tty.status, 0);
	assert_true(strncmp(tty.out, "/dev/pts/", 9) == 0);
	assert_true(tty.out_len > 11 && strcmp(tty.out + tty.out_len - 2, "\r\n") == 0);
	run_free(&tty);

	/* With a pty, stderr goes to stdout too. */
	assert_int_equal(run_one(&size), SERVER_NO_MAIN);
	assert_int_equal(size.ret, 0);
	assert_int_equal(size.status, 0);
	assert_string_equal(size.out, "33 101\r\nerr\r\n");
	assert_string_equal(size.err, "");
	run_free(&size);
}

static void test_main_exec(void **state)
{
	struct run r = {.argv = ARGV("sh", "-c", "exit 5"), .flags = EXEC_FLAG_MAIN};

	(void)state;
	assert_int_equal(run_one(&r), 5);
	assert_int_equal(r.status, 5);
	run_free(&r);
}

/* ---- hand-made frames ---- */

static void send_frame(int fd, uint8_t type, const void *payload, uint32_t len)
{
	uint8_t hdr[EXEC_FRAME_HEADER_LEN];

	exec_frame_header_encode(hdr, type, len);
	assert_int_equal(send(fd, hdr, sizeof(hdr), MSG_NOSIGNAL), (ssize_t)sizeof(hdr));
	if (len)
		assert_int_equal(send(fd, payload, len, MSG_NOSIGNAL), (ssize_t)len);
}

static bool read_full(int fd, void *buf, size_t len)
{
	for (size_t got = 0; got < len;) {
		ssize_t n = read(fd, (uint8_t *)buf + got, len - got);

		if (n <= 0)
			return false;
		got += (size_t)n;
	}
	return true;
}

/* The next frame; false at EOF. payload holds up to cap bytes, NUL-terminated. */
static bool read_frame(int fd, uint8_t *type, char *payload, size_t cap, uint32_t *len)
{
	uint8_t hdr[EXEC_FRAME_HEADER_LEN];

	if (!read_full(fd, hdr, sizeof(hdr)))
		return false;
	*type = hdr[0];
	*len = exec_get_le32(hdr + 1);
	assert_true(*len < cap);
	assert_true(read_full(fd, payload, *len));
	payload[*len] = '\0';
	return true;
}

static void send_request(int fd, uint32_t flags, const char **argv)
{
	struct exec_request req = {.flags = flags, .uid = getuid(), .gid = getgid(), .argv = argv};
	uint8_t *frame;
	size_t len;

	while (argv[req.argc])
		req.argc++;
	assert_int_equal(exec_request_encode(&req, &frame, &len), 0);
	assert_int_equal(send(fd, frame, len, MSG_NOSIGNAL), (ssize_t)len);
	free(frame);
}

/* Sends the frames `send` builds, then expects only an ERROR (after STARTED, if started)
 * and the end of the connection. */
static void expect_error(void (*send_frames)(int fd), bool started)
{
	char payload[4096];
	int sp[2];
	uint32_t len;
	uint8_t type;
	pid_t server;

	make_pair(sp);
	server = server_start(&sp[1], 1, &sp[0], 1);
	close(sp[1]);
	send_frames(sp[0]);
	assert_true(read_frame(sp[0], &type, payload, sizeof(payload), &len));
	if (started) {
		assert_int_equal(type, EXEC_FRAME_STARTED);
		assert_true(read_frame(sp[0], &type, payload, sizeof(payload), &len));
	}
	assert_int_equal(type, EXEC_FRAME_ERROR);
	assert_true(len > 0);
	assert_false(read_frame(sp[0], &type, payload, sizeof(payload), &len));
	close(sp[0]);
	assert_int_equal(server_wait(server), SERVER_NO_MAIN);
}

static void stdin_first(int fd)
{
	send_frame(fd, EXEC_FRAME_STDIN, "x", 1);
}

static void garbage_request(int fd)
{
	send_frame(fd, EXEC_FRAME_REQUEST, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1\0\0\0ls", 22);
}

static void oversized_frame(int fd)
{
	uint8_t hdr[EXEC_FRAME_HEADER_LEN];

	exec_frame_header_encode(hdr, EXEC_FRAME_STDIN, EXEC_FRAME_MAX_PAYLOAD + 1);
	assert_int_equal(send(fd, hdr, sizeof(hdr), MSG_NOSIGNAL), (ssize_t)sizeof(hdr));
}

static void unknown_after_start(int fd)
{
	send_request(fd, 0, ARGV("cat"));
	send_frame(fd, 99, NULL, 0);
}

static void second_request(int fd)
{
	send_request(fd, 0, ARGV("cat"));
	send_request(fd, 0, ARGV("cat"));
}

static void bad_signal(int fd)
{
	send_request(fd, 0, ARGV("cat"));
	send_frame(fd, EXEC_FRAME_SIGNAL, "\0\0\0\0", 4);
}

static void test_malformed(void **state)
{
	(void)state;
	expect_error(stdin_first, false);
	expect_error(garbage_request, false);
	expect_error(oversized_frame, false);
	/* The running `cat` is killed: the server ends instead of waiting for its stdin. */
	expect_error(unknown_after_start, true);
	expect_error(second_request, true);
	expect_error(bad_signal, true);
}

/* WINSIZE resizes the pty: stty sees the new size. */
static void test_winsize_frame(void **state)
{
	char payload[4096], out[4096] = "";
	uint8_t ws[4];
	int sp[2], status = -1;
	uint32_t len;
	uint8_t type;
	pid_t server;

	(void)state;
	make_pair(sp);
	server = server_start(&sp[1], 1, &sp[0], 1);
	close(sp[1]);
	send_request(sp[0], EXEC_FLAG_PTY, ARGV("sh", "-c", "read x; stty size"));
	exec_put_le16(ws, 40);
	exec_put_le16(ws + 2, 120);
	send_frame(sp[0], EXEC_FRAME_WINSIZE, ws, sizeof(ws));
	send_frame(sp[0], EXEC_FRAME_STDIN, "go\n", 3);
	while (read_frame(sp[0], &type, payload, sizeof(payload), &len)) {
		if (type == EXEC_FRAME_STDOUT)
			strncat(out, payload, sizeof(out) - strlen(out) - 1);
		if (type == EXEC_FRAME_EXIT)
			status = (int)exec_get_le32((uint8_t *)payload);
	}
	assert_int_equal(status, 0);
	assert_non_null(strstr(out, "40 120\r\n"));
	close(sp[0]);
	assert_int_equal(server_wait(server), SERVER_NO_MAIN);
}

/* The host reads nothing until the command has exited with output still in its pipe
 * (the guest's send buffer made tiny, its queue full): EXIT must still come after all of it. */
static void test_exit_after_all_output(void **state)
{
	const size_t total = 300 * 1024;
	static char payload[EXEC_FRAME_MAX_PAYLOAD + 1];
	size_t got = 0;
	int sp[2], sndbuf = 4096, status = -1;
	char cmd[64];
	uint32_t len;
	uint8_t type;
	pid_t server;

	(void)state;
	make_pair(sp);
	assert_int_equal(setsockopt(sp[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
	server = server_start(&sp[1], 1, &sp[0], 1);
	close(sp[1]);
	snprintf(cmd, sizeof(cmd), "head -c %zu /dev/zero", total);
	send_request(sp[0], 0, ARGV("sh", "-c", cmd));
	usleep(500 * 1000);
	while (read_frame(sp[0], &type, payload, sizeof(payload), &len)) {
		if (type == EXEC_FRAME_STDOUT) {
			assert_int_equal(status, -1);
			got += len;
		}
		if (type == EXEC_FRAME_EXIT)
			status = (int)exec_get_le32((uint8_t *)payload);
	}
	assert_int_equal(status, 0);
	assert_int_equal(got, total);
	close(sp[0]);
	assert_int_equal(server_wait(server), SERVER_NO_MAIN);
}

/* A host that goes away takes its command with it. */
static void test_host_closes_early(void **state)
{
	struct timespec start, end;
	int sp[2];
	pid_t server;
	uint8_t type;
	char payload[64];
	uint32_t len;

	(void)state;
	make_pair(sp);
	server = server_start(&sp[1], 1, &sp[0], 1);
	close(sp[1]);
	clock_gettime(CLOCK_MONOTONIC, &start);
	send_request(sp[0], 0, ARGV("sleep", "30"));
	assert_true(read_frame(sp[0], &type, payload, sizeof(payload), &len));
	assert_int_equal(type, EXEC_FRAME_STARTED);
	close(sp[0]);
	assert_int_equal(server_wait(server), SERVER_NO_MAIN);
	clock_gettime(CLOCK_MONOTONIC, &end);
	assert_true(end.tv_sec - start.tv_sec < 10);
}

static void test_connect_handshake(void **state)
{
	char path[108], line[64];
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int lfd, fd, peer;
	ssize_t n;

	(void)state;
	snprintf(path, sizeof(path), "%s/clawvm-exec-%d.sock",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
	unlink(path);
	strcpy(addr.sun_path, path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(listen(lfd, 2), 0);

	/* The answer is queued before connecting: the listen backlog takes the connection. */
	for (int round = 0; round < 2; round++) {
		pid_t answerer = fork();

		assert_true(answerer >= 0);
		if (answerer == 0) {
			peer = accept(lfd, NULL, NULL);
			n = read(peer, line, sizeof(line));
			if (n != 13 || memcmp(line, "CONNECT 1024\n", 13) != 0)
				_exit(1);
			if (round == 0 && write(peer, "OK 1073741824\nX", 15) != 15)
				_exit(2);
			if (round == 1 && write(peer, "NO\n", 3) != 3)
				_exit(2);
			_exit(0);
		}
		fd = exec_client_connect(path, 1024);
		if (round == 0) {
			assert_true(fd >= 0);
			/* Only the line was consumed. */
			assert_int_equal(read(fd, line, 1), 1);
			assert_int_equal(line[0], 'X');
			close(fd);
		} else {
			assert_int_equal(fd, -EPROTO);
		}
		assert_int_equal(server_wait(answerer), 0);
	}
	close(lfd);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_statuses_and_streams),
	    cmocka_unit_test(test_env_cwd_and_no_stdin),
	    cmocka_unit_test(test_stdin_one_mib),
	    cmocka_unit_test(test_large_output),
	    cmocka_unit_test(test_concurrent),
	    cmocka_unit_test(test_signal),
	    cmocka_unit_test(test_pty),
	    cmocka_unit_test(test_main_exec),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_winsize_frame),
	    cmocka_unit_test(test_exit_after_all_output),
	    cmocka_unit_test(test_host_closes_early),
	    cmocka_unit_test(test_connect_handshake),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

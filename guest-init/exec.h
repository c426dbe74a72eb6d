/* The guest end of the exec channel (api/exec.md): each connected stream is one command,
 * run in a child process with its stdio on pipes or a pseudo-terminal and relayed as frames.
 * Many connections at once, all in the calling thread: the server is one epoll fd that the
 * caller polls, plus exec_server_child_exited() from the caller's SIGCHLD handling (the
 * server never calls wait itself, since PID 1 reaps every process in one place).
 *
 * The caller must block or ignore SIGPIPE: the server writes to pipes of commands that may
 * be gone. Children get an empty signal mask and default dispositions. */
#ifndef CLAWVM_GUEST_INIT_EXEC_H
#define CLAWVM_GUEST_INIT_EXEC_H

#include <stdbool.h>
#include <sys/types.h>

struct exec_server;

/* NULL with errno set when the epoll fd or the memory cannot be had. */
struct exec_server *exec_server_create(void);

/* Closes every connection and SIGKILLs every command still running (their zombies are left
 * to the caller's reaping). */
void exec_server_destroy(struct exec_server *srv);

/* Readable (POLLIN) whenever exec_server_dispatch() has work to do. */
int exec_server_fd(const struct exec_server *srv);

/* Serves one connected stream (vsock, or a socketpair in tests); takes ownership of fd and
 * makes it non-blocking and close-on-exec. 0 or a negative errno (fd then closed). */
int exec_server_add_conn(struct exec_server *srv, int fd) __attribute__((warn_unused_result));

/* Accepts connections on a listening socket from now on; takes ownership of listen_fd. */
int exec_server_add_listener(struct exec_server *srv, int listen_fd)
    __attribute__((warn_unused_result));

/* A non-blocking AF_VSOCK socket listening on port, any CID. -ENODEV when the machine has
 * no vsock transport (no device: the socket would bind but never see a connection), or
 * another negative errno. */
int exec_listen_vsock(unsigned int port) __attribute__((warn_unused_result));

/* Handles whatever is ready, without blocking. */
void exec_server_dispatch(struct exec_server *srv);

/* Tells the server that pid ended with wait status wstatus. Returns false when pid is not
 * one of its commands (an orphan, or a command of someone else). */
bool exec_server_child_exited(struct exec_server *srv, pid_t pid, int wstatus);

/* Connections and commands still being served. */
unsigned int exec_server_sessions(const struct exec_server *srv);

/* Passes sig on to the process group of every running `main` command. */
void exec_server_signal_main(struct exec_server *srv, int sig);

/* True once a `main` command has ended and its EXIT frame has been sent (or its connection
 * is gone); *status is then its shell-style status. */
bool exec_server_main_done(const struct exec_server *srv, int *status);

#endif

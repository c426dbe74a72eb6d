/* Exec connections waiting for guest-init: host ends of stream sockets handed in by any
 * thread (the control API's, the session's) and taken by the event loop, which passes them
 * to the vsock device once guest-init listens on its exec port. A mutex-protected array
 * with a cap, and an eventfd the loop watches. */
#ifndef CLAWVM_EXEC_QUEUE_H
#define CLAWVM_EXEC_QUEUE_H

#include <pthread.h>
#include <stdbool.h>

/* Connections queued and not yet taken: more are refused (-EBUSY). */
#define EXECQ_MAX 64

struct exec_conn {
	int fd;
	bool vital; /* the VM's own command (clawvm run): the VM cannot go on without it */
};

struct exec_queue {
	pthread_mutex_t lock;
	struct exec_conn q[EXECQ_MAX]; /* oldest first */
	unsigned len;
	bool closed; /* execq_close: no more */
	int wake_fd; /* eventfd, counted up by every push; -1 if it could not be made */
};

/* Always leaves `q` usable and destroyable; -errno if the eventfd could not be made (then
 * pushes still queue, but wake nobody). */
__attribute__((warn_unused_result)) int execq_init(struct exec_queue *q);
/* Queues `fd`, which the queue takes whatever happens (closed on failure), and wakes the
 * loop: 0; -EBUSY with EXECQ_MAX waiting; -ESRCH after execq_close. Thread-safe. */
__attribute__((warn_unused_result)) int execq_push(struct exec_queue *q, int fd, bool vital);
/* Moves every connection queued into out[EXECQ_MAX], oldest first; returns how many (the
 * caller owns their fds). Thread-safe. */
unsigned execq_take(struct exec_queue *q, struct exec_conn *out);
/* Refuses pushes from now on; what is queued stays until execq_destroy. Thread-safe. */
void execq_close(struct exec_queue *q);
/* Closes every fd still queued (their peers see EOF) and the eventfd. */
void execq_destroy(struct exec_queue *q);

#endif

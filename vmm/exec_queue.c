/* The exec connections' queue between the threads that hand them in and the event loop. */
#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vmm/exec_queue.h"

int execq_init(struct exec_queue *q)
{
	pthread_mutex_init(&q->lock, NULL);
	q->len = 0;
	q->closed = false;
	q->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return q->wake_fd < 0 ? -errno : 0;
}

int execq_push(struct exec_queue *q, int fd, bool vital)
{
	uint64_t one = 1;
	int ret = 0;

	pthread_mutex_lock(&q->lock);
	if (q->closed)
		ret = -ESRCH;
	else if (q->len == EXECQ_MAX)
		ret = -EBUSY;
	else
		q->q[q->len++] = (struct exec_conn){.fd = fd, .vital = vital};
	pthread_mutex_unlock(&q->lock);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	if (q->wake_fd >= 0 && write(q->wake_fd, &one, sizeof(one)) < 0) {
		/* The counter is at its maximum: the loop wakes anyway. */
	}
	return 0;
}

unsigned execq_take(struct exec_queue *q, struct exec_conn *out)
{
	unsigned n;

	pthread_mutex_lock(&q->lock);
	n = q->len;
	for (unsigned i = 0; i < n; i++)
		out[i] = q->q[i];
	q->len = 0;
	pthread_mutex_unlock(&q->lock);
	return n;
}

void execq_close(struct exec_queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->closed = true;
	pthread_mutex_unlock(&q->lock);
}

void execq_destroy(struct exec_queue *q)
{
	for (unsigned i = 0; i < q->len; i++)
		close(q->q[i].fd);
	q->len = 0;
	if (q->wake_fd >= 0)
		close(q->wake_fd);
	q->wake_fd = -1;
	pthread_mutex_destroy(&q->lock);
}

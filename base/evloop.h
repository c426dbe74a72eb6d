/* The event loop: one epoll set, each fd with its handler. Runs on the main thread:
 * ioeventfds of virtio queues, backends, the stop eventfd, signals. It is the owning thread
 * of everything it watches: only it adds, changes or removes a watched fd (checked), so that
 * a handler it is about to run can never be freed under it by another thread. A handler
 * must serve its fd or stop watching it: epoll reports EPOLLHUP and EPOLLERR whatever the
 * events asked for, and a level-triggered fd left unserved makes the loop spin. */
#ifndef CLAWVM_EVLOOP_H
#define CLAWVM_EVLOOP_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct ev_handler {
	int fd;
	void (*ready)(struct ev_handler *h, uint32_t events);
	void *opaque;
};

struct evloop {
	int epfd;
	pthread_t owner; /* the thread that called evloop_init, and runs the loop */
	/* The batch being dispatched, so that evloop_del can drop a handler's pending event
	 * (another handler may free it mid-batch). */
	void *batch;
	int batch_len;
};

__attribute__((warn_unused_result)) int evloop_init(struct evloop *l);
void evloop_destroy(struct evloop *l);
/* Watches h->fd for `events` (EPOLLIN...) until evloop_del. These three must be called on
 * the loop's own thread. */
__attribute__((warn_unused_result)) int evloop_add(struct evloop *l, struct ev_handler *h,
						   uint32_t events);
/* Changes the events watched on h->fd. */
__attribute__((warn_unused_result)) int evloop_mod(struct evloop *l, struct ev_handler *h,
						   uint32_t events);
/* Stops watching h->fd (before it is closed); h may be freed right after. */
void evloop_del(struct evloop *l, struct ev_handler *h);
/* evloop_del, then closes h->fd and sets it to -1; nothing if it is -1 already. */
void evloop_close(struct evloop *l, struct ev_handler *h);
/* For handlers of an eventfd or a timerfd: reads (and so clears) its counter; false if it
 * held nothing, a spurious wake-up. */
bool evloop_drain(struct ev_handler *h);
/* Arms the timerfd `fd` to fire once, `ms` milliseconds from now. */
__attribute__((warn_unused_result)) int evloop_timer_once(int fd, unsigned ms);
/* Waits up to timeout_ms (-1: forever) and runs the handlers of ready fds. */
int evloop_run_once(struct evloop *l, int timeout_ms);

#endif

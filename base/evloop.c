/* epoll-based event loop. */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "base/evloop.h"
#include "base/log.h"

#define EVLOOP_BATCH 32

int evloop_init(struct evloop *l)
{
	l->batch = NULL;
	l->batch_len = 0;
	l->owner = pthread_self();
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		log_err("epoll_create1: %m");
		return -errno;
	}
	return 0;
}

void evloop_destroy(struct evloop *l)
{
	if (l->epfd >= 0)
		close(l->epfd);
	l->epfd = -1;
}

/* Only the loop's thread may change what it watches: another thread could free a handler
 * the loop is about to run (it found the vsock device's reset doing that). */
static bool on_owner(const struct evloop *l)
{
	return pthread_equal(pthread_self(), l->owner);
}

int evloop_add(struct evloop *l, struct ev_handler *h, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = h};

	assert(on_owner(l));
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, h->fd, &ev) < 0) {
		log_err("epoll_ctl add fd %d: %m", h->fd);
		return -errno;
	}
	return 0;
}

int evloop_mod(struct evloop *l, struct ev_handler *h, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = h};

	assert(on_owner(l));
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, h->fd, &ev) < 0)
		return -errno;
	return 0;
}

void evloop_del(struct evloop *l, struct ev_handler *h)
{
	struct epoll_event *batch = l->batch;

	assert(on_owner(l));
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, h->fd, NULL);
	for (int i = 0; i < l->batch_len; i++) {
		if (batch[i].data.ptr == h)
			batch[i].data.ptr = NULL;
	}
}

void evloop_close(struct evloop *l, struct ev_handler *h)
{
	if (h->fd < 0)
		return;
	evloop_del(l, h);
	close(h->fd);
	h->fd = -1;
}

bool evloop_drain(struct ev_handler *h)
{
	uint64_t count;

	return read(h->fd, &count, sizeof(count)) == sizeof(count);
}

int evloop_timer_once(int fd, unsigned ms)
{
	struct itimerspec when = {
	    .it_value = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L}};

	return timerfd_settime(fd, 0, &when, NULL) < 0 ? -errno : 0;
}

int evloop_run_once(struct evloop *l, int timeout_ms)
{
	struct epoll_event events[EVLOOP_BATCH];
	int n = epoll_wait(l->epfd, events, EVLOOP_BATCH, timeout_ms);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	l->batch = events;
	l->batch_len = n;
	for (int i = 0; i < n; i++) {
		struct ev_handler *h = events[i].data.ptr;

		if (h)
			h->ready(h, events[i].events);
	}
	l->batch = NULL;
	l->batch_len = 0;
	return n;
}

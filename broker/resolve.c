/* The broker's resolver (resolve.h): a fixed table of jobs, worker threads that take the
 * oldest queued one, and an eventfd that tells the loop an answer waits. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "broker/resolve.h"

enum job_state { JOB_FREE, JOB_QUEUED, JOB_RUNNING, JOB_DONE };

struct job {
	enum job_state state;
	uint64_t seq; /* submission order: the oldest queued job goes first */
	char host[RESOLVE_HOST_MAX + 1];
	uint16_t port;
	struct resolve_result result;
};

struct resolver {
	pthread_mutex_t lock;
	pthread_cond_t work;
	pthread_t threads[RESOLVE_THREADS];
	unsigned nthreads;
	bool stop;
	uint64_t next_seq;
	int event_fd;
	struct job jobs[RESOLVE_MAX_PENDING];
};

/* The oldest queued job, or NULL. Under the lock. */
static struct job *oldest_queued(struct resolver *r)
{
	struct job *best = NULL;

	for (unsigned i = 0; i < RESOLVE_MAX_PENDING; i++)
		if (r->jobs[i].state == JOB_QUEUED && (!best || r->jobs[i].seq < best->seq))
			best = &r->jobs[i];
	return best;
}

/* getaddrinfo's answer into res: TCP only, at most RESOLVE_MAX_ADDRS, port set. */
static void lookup(const char *host, uint16_t port, struct resolve_result *res)
{
	const struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *list, *ai;

	res->naddrs = 0;
	res->err = getaddrinfo(host, NULL, &hints, &list);
	if (res->err)
		return;
	for (ai = list; ai && res->naddrs < RESOLVE_MAX_ADDRS; ai = ai->ai_next) {
		struct sockaddr_storage *ss = &res->addrs[res->naddrs];

		if (ai->ai_family == AF_INET && ai->ai_addrlen == sizeof(struct sockaddr_in)) {
			memcpy(ss, ai->ai_addr, sizeof(struct sockaddr_in));
			((struct sockaddr_in *)ss)->sin_port = htons(port);
		} else if (ai->ai_family == AF_INET6 &&
			   ai->ai_addrlen == sizeof(struct sockaddr_in6)) {
			memcpy(ss, ai->ai_addr, sizeof(struct sockaddr_in6));
			((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
		} else {
			continue;
		}
		res->naddrs++;
	}
	freeaddrinfo(list);
	if (!res->naddrs)
		res->err = EAI_NONAME;
}

static void *worker(void *arg)
{
	struct resolver *r = arg;
	const uint64_t one = 1;

	pthread_mutex_lock(&r->lock);
	for (;;) {
		struct job *j = NULL;

		while (!r->stop && !(j = oldest_queued(r)))
			pthread_cond_wait(&r->work, &r->lock);
		if (r->stop)
			break;
		j->state = JOB_RUNNING;
		pthread_mutex_unlock(&r->lock);
		lookup(j->host, j->port, &j->result);
		pthread_mutex_lock(&r->lock);
		j->state = JOB_DONE;
		if (write(r->event_fd, &one, sizeof(one)) < 0) {
			/* The counter cannot overflow with 64 jobs; nothing to do. */
		}
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

struct resolver *resolver_create(void)
{
	struct resolver *r = calloc(1, sizeof(*r));
	sigset_t all, old;

	if (!r)
		return NULL;
	r->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->event_fd < 0) {
		free(r);
		return NULL;
	}
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->work, NULL);
	/* The workers take no signal: the loop's thread reads them. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (; r->nthreads < RESOLVE_THREADS; r->nthreads++)
		if (pthread_create(&r->threads[r->nthreads], NULL, worker, r) != 0)
			break;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!r->nthreads) {
		resolver_destroy(r);
		errno = EAGAIN;
		return NULL;
	}
	return r;
}

void resolver_destroy(struct resolver *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_cond_broadcast(&r->work);
	pthread_mutex_unlock(&r->lock);
	for (unsigned i = 0; i < r->nthreads; i++)
		pthread_join(r->threads[i], NULL);
	pthread_cond_destroy(&r->work);
	pthread_mutex_destroy(&r->lock);
	close(r->event_fd);
	free(r);
}

int resolver_fd(const struct resolver *r)
{
	return r->event_fd;
}

int resolver_submit(struct resolver *r, uint64_t id, const char *host, uint16_t port)
{
	size_t len = strlen(host);
	int ret = -EAGAIN;

	if (len == 0 || len > RESOLVE_HOST_MAX)
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	for (unsigned i = 0; i < RESOLVE_MAX_PENDING; i++) {
		struct job *j = &r->jobs[i];

		if (j->state != JOB_FREE)
			continue;
		memcpy(j->host, host, len + 1);
		j->port = port;
		j->result = (struct resolve_result){.id = id};
		j->seq = r->next_seq++;
		j->state = JOB_QUEUED;
		pthread_cond_signal(&r->work);
		ret = 0;
		break;
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

bool resolver_next(struct resolver *r, struct resolve_result *out)
{
	bool found = false;
	uint64_t count;

	pthread_mutex_lock(&r->lock);
	for (unsigned i = 0; i < RESOLVE_MAX_PENDING && !found; i++) {
		struct job *j = &r->jobs[i];

		if (j->state != JOB_DONE)
			continue;
		*out = j->result;
		j->state = JOB_FREE;
		found = true;
	}
	if (!found && read(r->event_fd, &count, sizeof(count)) < 0) {
		/* EAGAIN: already clear. */
	}
	pthread_mutex_unlock(&r->lock);
	return found;
}

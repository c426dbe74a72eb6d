/* The exec connections' queue (vmm/exec_queue.c): order, the cap, refusal after close,
 * every fd closed that is not handed on (its peer sees EOF), pushes from several threads. */
#include "unit.h"

#include <errno.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmm/exec_queue.h"

/* A connected pair: *mine is what the test keeps, the other end is returned. */
static int pair(int *mine)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	*mine = sv[0];
	return sv[1];
}

/* The other end of `fd` was closed: EOF, not EAGAIN. */
static void assert_peer_closed(int fd)
{
	char c;

	assert_int_equal(recv(fd, &c, 1, MSG_DONTWAIT), 0);
}

static uint64_t wakes(struct exec_queue *q)
{
	uint64_t n = 0;

	if (read(q->wake_fd, &n, sizeof(n)) != sizeof(n))
		return 0;
	return n;
}

static void order_and_wake(void **state)
{
	struct exec_conn out[EXECQ_MAX];
	struct exec_queue q;
	int mine[3], theirs[3];

	(void)state;
	assert_int_equal(execq_init(&q), 0);
	for (int i = 0; i < 3; i++) {
		theirs[i] = pair(&mine[i]);
		assert_int_equal(execq_push(&q, theirs[i], i == 0), 0);
	}
	assert_int_equal(wakes(&q), 3);
	assert_int_equal(execq_take(&q, out), 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(out[i].fd, theirs[i]);
		assert_int_equal(out[i].vital, i == 0);
	}
	assert_int_equal(execq_take(&q, out), 0);
	execq_destroy(&q);
	/* Taken: the caller's to close, not the queue's. */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(write(mine[i], "x", 1), 1);
		close(theirs[i]);
		close(mine[i]);
	}
}

static void cap_refuses_and_closes(void **state)
{
	struct exec_conn out[EXECQ_MAX];
	int mine[EXECQ_MAX], extra;
	struct exec_queue q;

	(void)state;
	assert_int_equal(execq_init(&q), 0);
	for (int i = 0; i < EXECQ_MAX; i++)
		assert_int_equal(execq_push(&q, pair(&mine[i]), false), 0);
	assert_int_equal(execq_push(&q, pair(&extra), false), -EBUSY);
	assert_peer_closed(extra);
	close(extra);
	/* Taking makes room again. */
	assert_int_equal(execq_take(&q, out), EXECQ_MAX);
	assert_int_equal(execq_push(&q, pair(&extra), false), 0);
	for (int i = 0; i < EXECQ_MAX; i++) {
		close(out[i].fd);
		close(mine[i]);
	}
	/* Destroy closes what is still queued. */
	execq_destroy(&q);
	assert_peer_closed(extra);
	close(extra);
}

static void closed_refuses(void **state)
{
	struct exec_queue q;
	int queued, late;

	(void)state;
	assert_int_equal(execq_init(&q), 0);
	assert_int_equal(execq_push(&q, pair(&queued), false), 0);
	execq_close(&q);
	assert_int_equal(execq_push(&q, pair(&late), true), -ESRCH);
	assert_peer_closed(late);
	close(late);
	/* What was queued before stays until the end, then its peer sees EOF. */
	assert_int_equal(q.len, 1);
	execq_destroy(&q);
	assert_peer_closed(queued);
	close(queued);
}

#define PUSHERS	   4
#define PER_PUSHER (EXECQ_MAX / PUSHERS)

struct pusher {
	struct exec_queue *q;
	int mine[PER_PUSHER], theirs[PER_PUSHER];
};

static void *push_some(void *arg)
{
	struct pusher *p = arg;

	for (int i = 0; i < PER_PUSHER; i++)
		if (execq_push(p->q, p->theirs[i], false) != 0)
			return (void *)1;
	return NULL;
}

/* Pushes from several threads while another takes: every fd comes out exactly once. */
static void threads_push_while_taken(void **state)
{
	static struct pusher pushers[PUSHERS];
	struct exec_conn out[EXECQ_MAX];
	pthread_t threads[PUSHERS];
	struct exec_queue q;
	unsigned total = 0, seen = 0;
	void *ret;

	(void)state;
	assert_int_equal(execq_init(&q), 0);
	for (int t = 0; t < PUSHERS; t++) {
		pushers[t].q = &q;
		for (int i = 0; i < PER_PUSHER; i++)
			pushers[t].theirs[i] = pair(&pushers[t].mine[i]);
		assert_int_equal(pthread_create(&threads[t], NULL, push_some, &pushers[t]), 0);
	}
	while (total < PUSHERS * PER_PUSHER) {
		unsigned n = execq_take(&q, out);

		for (unsigned i = 0; i < n; i++) {
			for (int t = 0; t < PUSHERS; t++)
				for (int j = 0; j < PER_PUSHER; j++)
					seen += pushers[t].theirs[j] == out[i].fd;
			close(out[i].fd);
		}
		total += n;
	}
	for (int t = 0; t < PUSHERS; t++) {
		assert_int_equal(pthread_join(threads[t], &ret), 0);
		assert_null(ret);
		for (int i = 0; i < PER_PUSHER; i++)
			close(pushers[t].mine[i]);
	}
	assert_int_equal(total, PUSHERS * PER_PUSHER);
	assert_int_equal(seen, PUSHERS * PER_PUSHER);
	assert_int_equal(wakes(&q), PUSHERS * PER_PUSHER);
	execq_destroy(&q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(order_and_wake),
	    cmocka_unit_test(cap_refuses_and_closes),
	    cmocka_unit_test(closed_refuses),
	    cmocka_unit_test(threads_push_while_taken),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

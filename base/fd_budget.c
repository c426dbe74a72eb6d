/* One counter for the descriptors guest activity holds, shared by every device. */
#include <sys/resource.h>

#include "base/fd_budget.h"

void fd_budget_init_limit(struct fd_budget *b, unsigned limit)
{
	atomic_init(&b->used, 0);
	b->limit = limit;
	b->host_reserve = 0;
}

void fd_budget_init(struct fd_budget *b, unsigned reserve)
{
	struct rlimit lim;
	rlim_t soft = 1024;

	if (getrlimit(RLIMIT_NOFILE, &lim) == 0)
		soft = lim.rlim_cur;
	if (soft > (1u << 30))
		soft = 1u << 30; /* RLIM_INFINITY: the kernel's nr_open caps it anyway */
	fd_budget_init_limit(b, soft > reserve ? (unsigned)soft - reserve : 0);
	b->host_reserve = b->limit / 2 < FD_BUDGET_HOST ? b->limit / 2 : FD_BUDGET_HOST;
}

static bool take_below(struct fd_budget *b, unsigned max)
{
	unsigned used = atomic_load(&b->used);

	do {
		if (used >= max)
			return false;
	} while (!atomic_compare_exchange_weak(&b->used, &used, used + 1));
	return true;
}

bool fd_budget_take(struct fd_budget *b)
{
	return take_below(b, b->limit - b->host_reserve);
}

bool fd_budget_take_host(struct fd_budget *b)
{
	return take_below(b, b->limit);
}

void fd_budget_give(struct fd_budget *b)
{
	atomic_fetch_sub(&b->used, 1);
}

unsigned fd_budget_used(struct fd_budget *b)
{
	return atomic_load(&b->used);
}

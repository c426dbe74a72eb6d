/* The FUSE server's tables: node ids and file handles are (generation, slot) indices into
 * arrays of our own, never host pointers, so a stale or made-up id from the guest finds
 * nothing. Inodes are deduplicated by (st_dev, st_ino) and counted by the guest's lookups;
 * entries in use by a request are freed only when that request lets go of them. One mutex
 * guards everything here; no system call but close() runs under it. Every inode and handle
 * holds one descriptor of the process's budget from its insertion until its close. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "virtio/fuse_server.h"

#define HASH_BUCKETS   (1u << 16)
#define LINKED_BUCKETS (1u << 12)

struct fuse_linked {
	dev_t dev;
	ino_t ino;
	uint32_t links;
	struct fuse_linked *next;
};

static unsigned hash_of(dev_t dev, ino_t ino, unsigned buckets)
{
	uint64_t h =
	    ((uint64_t)dev * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)ino * 0xff51afd7ed558ccdULL);

	return (unsigned)(h >> 40) & (buckets - 1);
}

/* ---- generic slot table ---------------------------------------------------------------- */

static void table_init(struct fuse_table *t, uint32_t max)
{
	memset(t, 0, sizeof(*t));
	t->max = max;
}

static void table_fini(struct fuse_table *t)
{
	free(t->entry);
	free(t->gen);
	free(t->free_slot);
	memset(t, 0, sizeof(*t));
}

static __attribute__((warn_unused_result)) int table_grow(struct fuse_table *t)
{
	uint32_t size = t->size ? t->size * 2 : 64;
	void **entry;
	uint32_t *gen, *free_slot;

	if (size > t->max)
		size = t->max;
	if (size <= t->size)
		return -ENFILE;
	entry = realloc(t->entry, size * sizeof(*entry));
	if (!entry)
		return -ENOMEM;
	t->entry = entry;
	gen = realloc(t->gen, size * sizeof(*gen));
	if (!gen)
		return -ENOMEM;
	t->gen = gen;
	free_slot = realloc(t->free_slot, size * sizeof(*free_slot));
	if (!free_slot)
		return -ENOMEM;
	t->free_slot = free_slot;
	for (uint32_t i = size; i > t->size; i--) {
		t->entry[i - 1] = NULL;
		t->gen[i - 1] = 1;
		t->free_slot[t->nfree++] = i - 1;
	}
	t->size = size;
	return 0;
}

static __attribute__((warn_unused_result)) int table_insert(struct fuse_table *t, void *entry,
							    uint64_t *id)
{
	uint32_t slot;

	if (t->nfree == 0) {
		int ret = table_grow(t);

		if (ret < 0)
			return ret;
	}
	slot = t->free_slot[--t->nfree];
	t->entry[slot] = entry;
	t->used++;
	*id = (uint64_t)t->gen[slot] << 32 | (slot + 1);
	return 0;
}

static void *table_find(const struct fuse_table *t, uint64_t id)
{
	uint32_t slot = (uint32_t)id - 1;

	if ((uint32_t)id == 0 || slot >= t->size || t->gen[slot] != id >> 32)
		return NULL;
	return t->entry[slot];
}

static void table_remove(struct fuse_table *t, uint64_t id)
{
	uint32_t slot = (uint32_t)id - 1;

	t->entry[slot] = NULL;
	/* Generation 0 is never handed out, so that no id is ever FUSE_ROOT_ID's twin. */
	if (++t->gen[slot] == 0)
		t->gen[slot] = 1;
	t->free_slot[t->nfree++] = slot;
	t->used--;
}

/* ---- inodes ----------------------------------------------------------------------------- */

static void hash_unlink(struct fuse_nodes *t, struct fuse_inode *inode)
{
	struct fuse_inode **p = &t->hash[hash_of(inode->dev, inode->ino, HASH_BUCKETS)];

	while (*p && *p != inode)
		p = &(*p)->hash_next;
	if (*p)
		*p = inode->hash_next;
	inode->hash_next = NULL;
}

/* One descriptor of the budget for an inode or handle about to be kept; false when the
 * budget is spent (said once per server: the guest holding that many is its own doing). */
static bool budget_take(struct fuse_nodes *t)
{
	if (fd_budget_take(t->fds))
		return true;
	if (!atomic_exchange(&t->fds_warned, true))
		fuse_warn("the %u host descriptors guests may hold are all held: ENFILE until "
			  "the guest forgets or releases some",
			  t->fds->limit);
	return false;
}

static void inode_free(struct fuse_nodes *t, struct fuse_inode *inode)
{
	close(inode->fd);
	fd_budget_give(t->fds);
	free(inode);
}

/* The guest's last reference went: the id dies now, the descriptor when no request uses
 * it any more. Called with the lock held. */
static void inode_drop(struct fuse_nodes *t, struct fuse_inode *inode)
{
	hash_unlink(t, inode);
	table_remove(&t->inodes, inode->id);
	inode->id = 0;
	inode->nlookup = 0;
	if (inode->busy == 0)
		inode_free(t, inode);
}

int fuse_nodes_init(struct fuse_nodes *t, int root_fd, const struct stat *st, struct fd_budget *fds)
{
	memset(t, 0, sizeof(*t));
	t->hash = calloc(HASH_BUCKETS, sizeof(*t->hash));
	t->linked = calloc(LINKED_BUCKETS, sizeof(*t->linked));
	if (!t->hash || !t->linked) {
		free(t->hash);
		free(t->linked);
		return -ENOMEM;
	}
	pthread_mutex_init(&t->lock, NULL);
	t->fds = fds;
	atomic_init(&t->fds_warned, false);
	table_init(&t->inodes, FUSE_MAX_INODES);
	table_init(&t->handles, FUSE_MAX_HANDLES);
	t->root.fd = root_fd;
	t->root.dev = st->st_dev;
	t->root.ino = st->st_ino;
	t->root.type = st->st_mode & S_IFMT;
	t->root.nlookup = 1;
	t->root.id = FUSE_ROOT_ID;
	t->hash[hash_of(st->st_dev, st->st_ino, HASH_BUCKETS)] = &t->root;
	return 0;
}

static void handle_free(struct fuse_nodes *t, struct fuse_handle *h)
{
	close(h->fd);
	fd_budget_give(t->fds);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

void fuse_nodes_reset(struct fuse_nodes *t)
{
	pthread_mutex_lock(&t->lock);
	for (uint32_t slot = 0; slot < t->inodes.size; slot++) {
		struct fuse_inode *inode = t->inodes.entry[slot];

		if (inode)
			inode_drop(t, inode);
	}
	for (uint32_t slot = 0; slot < t->handles.size; slot++) {
		struct fuse_handle *h = t->handles.entry[slot];

		if (!h)
			continue;
		table_remove(&t->handles, h->id);
		h->id = 0;
		if (h->busy == 0)
			handle_free(t, h);
	}
	t->root.nlookup = 1;
	pthread_mutex_unlock(&t->lock);
}

void fuse_nodes_fini(struct fuse_nodes *t)
{
	fuse_nodes_reset(t);
	for (unsigned b = 0; b < LINKED_BUCKETS; b++) {
		while (t->linked[b]) {
			struct fuse_linked *next = t->linked[b]->next;

			free(t->linked[b]);
			t->linked[b] = next;
		}
	}
	close(t->root.fd);
	table_fini(&t->inodes);
	table_fini(&t->handles);
	free(t->hash);
	free(t->linked);
	pthread_mutex_destroy(&t->lock);
}

struct fuse_inode *fuse_inode_get(struct fuse_nodes *t, uint64_t id)
{
	struct fuse_inode *inode;

	pthread_mutex_lock(&t->lock);
	inode = id == FUSE_ROOT_ID ? &t->root : table_find(&t->inodes, id);
	if (inode)
		inode->busy++;
	pthread_mutex_unlock(&t->lock);
	return inode;
}

/* Ends a request's use of an entry: true if that was the last use of one already dropped. */
static bool unbusy(struct fuse_nodes *t, uint32_t *busy, const uint64_t *id)
{
	bool dead;

	pthread_mutex_lock(&t->lock);
	dead = --*busy == 0 && *id == 0;
	pthread_mutex_unlock(&t->lock);
	return dead;
}

void fuse_inode_put(struct fuse_nodes *t, struct fuse_inode *inode)
{
	if (unbusy(t, &inode->busy, &inode->id))
		inode_free(t, inode);
}

/* One more lookup of an inode already known; false if it is not. Called with the lock. */
static bool known_lookup(struct fuse_nodes *t, unsigned bucket, const struct stat *st, uint64_t *id)
{
	struct fuse_inode *inode = t->hash[bucket];

	while (inode && (inode->dev != st->st_dev || inode->ino != st->st_ino))
		inode = inode->hash_next;
	if (!inode)
		return false;
	inode->nlookup++;
	*id = inode->id;
	return true;
}

int fuse_inode_add(struct fuse_nodes *t, int fd, const struct stat *st, uint64_t *id)
{
	unsigned bucket = hash_of(st->st_dev, st->st_ino, HASH_BUCKETS);
	struct fuse_inode *fresh = NULL;
	bool taken = false;
	int ret = 0;

	pthread_mutex_lock(&t->lock);
	if (known_lookup(t, bucket, st, id))
		goto out_locked;
	pthread_mutex_unlock(&t->lock);

	/* A new inode keeps `fd`: one descriptor of the budget. It and the entry are taken
	 * outside the lock; the table is searched again in case another thread entered the
	 * same inode meanwhile (then both go back). */
	taken = budget_take(t);
	if (!taken) {
		ret = -ENFILE;
		goto out;
	}
	fresh = calloc(1, sizeof(*fresh));
	if (!fresh) {
		ret = -ENOMEM;
		goto out;
	}
	pthread_mutex_lock(&t->lock);
	if (known_lookup(t, bucket, st, id))
		goto out_locked;
	fresh->fd = fd;
	fresh->dev = st->st_dev;
	fresh->ino = st->st_ino;
	fresh->type = st->st_mode & S_IFMT;
	fresh->nlookup = 1;
	ret = table_insert(&t->inodes, fresh, &fresh->id);
	if (ret == 0) {
		fresh->hash_next = t->hash[bucket];
		t->hash[bucket] = fresh;
		*id = fresh->id;
		pthread_mutex_unlock(&t->lock);
		return 0;
	}
	/* Known after all (ret 0), or the table is full: `fd` is not kept. */
out_locked:
	pthread_mutex_unlock(&t->lock);
out:
	close(fd);
	if (taken)
		fd_budget_give(t->fds);
	free(fresh);
	return ret;
}

void fuse_inode_forget(struct fuse_nodes *t, uint64_t id, uint64_t nlookup)
{
	struct fuse_inode *inode;

	if (id == FUSE_ROOT_ID)
		return;
	pthread_mutex_lock(&t->lock);
	inode = table_find(&t->inodes, id);
	if (inode) {
		if (nlookup >= inode->nlookup)
			inode_drop(t, inode);
		else
			inode->nlookup -= nlookup;
	}
	pthread_mutex_unlock(&t->lock);
}

/* ---- handles ---------------------------------------------------------------------------- */

int fuse_handle_add(struct fuse_nodes *t, int fd, bool dir, uint64_t *id)
{
	struct fuse_handle *h;
	int ret;

	if (!budget_take(t)) {
		close(fd);
		return -ENFILE;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		close(fd);
		fd_budget_give(t->fds);
		return -ENOMEM;
	}
	h->fd = fd;
	h->dir = dir;
	pthread_mutex_init(&h->lock, NULL);
	pthread_mutex_lock(&t->lock);
	ret = table_insert(&t->handles, h, &h->id);
	*id = h->id;
	pthread_mutex_unlock(&t->lock);
	if (ret < 0)
		handle_free(t, h); /* its descriptor and budget unit go back */
	return ret;
}

struct fuse_handle *fuse_handle_get(struct fuse_nodes *t, uint64_t id)
{
	struct fuse_handle *h;

	pthread_mutex_lock(&t->lock);
	h = table_find(&t->handles, id);
	if (h)
		h->busy++;
	pthread_mutex_unlock(&t->lock);
	return h;
}

void fuse_handle_put(struct fuse_nodes *t, struct fuse_handle *h)
{
	if (unbusy(t, &h->busy, &h->id))
		handle_free(t, h);
}

int fuse_handle_release(struct fuse_nodes *t, uint64_t id)
{
	struct fuse_handle *h;
	bool dead = false;

	pthread_mutex_lock(&t->lock);
	h = table_find(&t->handles, id);
	if (h) {
		table_remove(&t->handles, id);
		h->id = 0;
		dead = h->busy == 0;
	}
	pthread_mutex_unlock(&t->lock);
	if (dead)
		handle_free(t, h);
	return h ? 0 : -EBADF;
}

/* ---- hard links made by us ---------------------------------------------------------------- */

static struct fuse_linked **linked_find(struct fuse_nodes *t, dev_t dev, ino_t ino)
{
	struct fuse_linked **p = &t->linked[hash_of(dev, ino, LINKED_BUCKETS)];

	while (*p && ((*p)->dev != dev || (*p)->ino != ino))
		p = &(*p)->next;
	return p;
}

int fuse_linked_add(struct fuse_nodes *t, dev_t dev, ino_t ino)
{
	struct fuse_linked **p, *fresh = NULL;
	int ret = 0;

	pthread_mutex_lock(&t->lock);
	p = linked_find(t, dev, ino);
	if (*p) {
		(*p)->links++;
	} else if (t->nlinked >= FUSE_MAX_LINKED) {
		ret = -EMLINK;
	} else if (!(fresh = calloc(1, sizeof(*fresh)))) {
		ret = -ENOMEM;
	} else {
		fresh->dev = dev;
		fresh->ino = ino;
		fresh->links = 1;
		*p = fresh;
		t->nlinked++;
	}
	pthread_mutex_unlock(&t->lock);
	return ret;
}

void fuse_linked_drop(struct fuse_nodes *t, dev_t dev, ino_t ino)
{
	struct fuse_linked **p, *gone = NULL;

	pthread_mutex_lock(&t->lock);
	p = linked_find(t, dev, ino);
	if (*p && --(*p)->links == 0) {
		gone = *p;
		*p = gone->next;
		t->nlinked--;
	}
	pthread_mutex_unlock(&t->lock);
	free(gone);
}

uint32_t fuse_linked_count(struct fuse_nodes *t, dev_t dev, ino_t ino)
{
	struct fuse_linked **p;
	uint32_t links;

	pthread_mutex_lock(&t->lock);
	p = linked_find(t, dev, ino);
	links = *p ? (*p)->links : 0;
	pthread_mutex_unlock(&t->lock);
	return links;
}

/* Removing blobs safely while others store: holds, the set of blobs used
 * while a collection runs, and the listing and removal the collector does.
 *
 * A writer (a snapshot for a submit, a run's outputs, an upload, a model or
 * dataset registration) stores blobs in the thread pool and records them in
 * the database later, on the loop. Between the two, nothing in the database
 * refers to its blobs; so every writer takes a hold before it looks at the
 * store and releases it once its rows are committed. A collection:
 *
 *   1. blob_gc_begin: writes a new epoch (stat caches stop trusting their
 *      records), starts noting every blob a writer uses (blob_exists is
 *      called before every put, and before a stat cache's record is
 *      believed), and turns the holds taken so far into "old" ones;
 *   2. waits until every old hold is released (blob_gc_quiet): every
 *      writer that might have used a blob without it being noted has then
 *      committed its rows;
 *   3. reads what the database refers to (the caller), lists the blobs and
 *      removes each one that nothing refers to and no writer used since 1
 *      (blob_gc_remove checks and unlinks under the same lock a writer's
 *      note takes, so a writer either is seen or sees the blob gone and
 *      stores it again);
 *   4. blob_gc_end.
 *
 * The noted set keeps 64-bit prefixes of the names: two blobs sharing one
 * only keep an unused blob one collection longer. */
#include "blob_priv.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct blob_gc {
	pthread_mutex_t mu;
	_Atomic bool marking;
	uint64_t gen;       /* bumped by each collection */
	int64_t holds_cur;  /* holds taken in generation gen */
	int64_t holds_old;  /* holds taken before: a collection waits for them */
	struct blob_keyset noted; /* the blobs writers used since the collection began */
	/* Noting failed for lack of memory: nothing may be removed. */
	_Atomic bool note_failed;
};

struct blob_gc *blob_gc_create(void)
{
	struct blob_gc *g = calloc(1, sizeof(*g));

	if (g && pthread_mutex_init(&g->mu, NULL) != 0) {
		free(g);
		return NULL;
	}
	return g;
}

void blob_gc_destroy(struct blob_gc *g)
{
	if (!g) {
		return;
	}
	pthread_mutex_destroy(&g->mu);
	blob_keyset_finish(&g->noted);
	free(g);
}

uint64_t blob_key(const char *hex)
{
	uint64_t k = 0;

	for (int i = 0; i < 16; i++) {
		char c = hex[i];
		k = k << 4 | (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
	}
	return k ? k : 1;
}

static size_t slot_of(uint64_t k, size_t cap)
{
	return (size_t)((k * 0x9e3779b97f4a7c15ULL) >> 7) & (cap - 1);
}

int blob_keyset_add(struct blob_keyset *s, uint64_t k)
{
	if ((s->n + 1) * 2 > s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 1024;
		uint64_t *nt = calloc(ncap, sizeof(*nt));
		if (!nt) {
			return -ENOMEM;
		}
		for (size_t i = 0; i < s->cap; i++) {
			if (s->t[i]) {
				size_t j = slot_of(s->t[i], ncap);
				while (nt[j]) {
					j = (j + 1) & (ncap - 1);
				}
				nt[j] = s->t[i];
			}
		}
		free(s->t);
		s->t = nt;
		s->cap = ncap;
	}
	size_t j = slot_of(k, s->cap);
	while (s->t[j] && s->t[j] != k) {
		j = (j + 1) & (s->cap - 1);
	}
	if (s->t[j]) {
		return 0;
	}
	s->t[j] = k;
	s->n++;
	return 1;
}

bool blob_keyset_has(const struct blob_keyset *s, uint64_t k)
{
	if (!s->cap) {
		return false;
	}
	for (size_t j = slot_of(k, s->cap); s->t[j]; j = (j + 1) & (s->cap - 1)) {
		if (s->t[j] == k) {
			return true;
		}
	}
	return false;
}

void blob_keyset_clear(struct blob_keyset *s)
{
	if (s->t) {
		memset(s->t, 0, s->cap * sizeof(*s->t));
	}
	s->n = 0;
}

void blob_keyset_finish(struct blob_keyset *s)
{
	free(s->t);
	s->t = NULL;
	s->cap = s->n = 0;
}

void blob_gc_note(struct blob_gc *g, const char *hex)
{
	/* No collection: nothing to note. A writer that took its hold before
	 * a collection began is waited for, so missing the flag's change here
	 * is harmless; one that took it after sees the flag (the hold's lock
	 * orders them). */
	if (!g || !atomic_load(&g->marking)) {
		return;
	}
	pthread_mutex_lock(&g->mu);
	if (g->marking && blob_keyset_add(&g->noted, blob_key(hex)) < 0) {
		atomic_store(&g->note_failed, true);
	}
	pthread_mutex_unlock(&g->mu);
}

uint64_t blob_hold(struct blobstore *bs)
{
	struct blob_gc *g = blob_store_gc(bs);
	uint64_t gen;

	pthread_mutex_lock(&g->mu);
	gen = g->gen;
	g->holds_cur++;
	pthread_mutex_unlock(&g->mu);
	return gen + 1; /* never 0, so 0 can mean "no hold" */
}

void blob_release(struct blobstore *bs, uint64_t hold)
{
	struct blob_gc *g;

	if (!bs || !hold) {
		return;
	}
	g = blob_store_gc(bs);
	pthread_mutex_lock(&g->mu);
	if (hold - 1 == g->gen) {
		g->holds_cur--;
	} else {
		g->holds_old--;
	}
	pthread_mutex_unlock(&g->mu);
}

int blob_gc_begin(struct blobstore *bs)
{
	struct blob_gc *g = blob_store_gc(bs);
	int r;

	/* The epoch first: from here a stat cache checks every blob it would
	 * have trusted, and that check notes it. */
	r = blob_store_new_epoch(bs);
	if (r < 0) {
		return r;
	}
	pthread_mutex_lock(&g->mu);
	blob_keyset_clear(&g->noted);
	atomic_store(&g->note_failed, false);
	atomic_store(&g->marking, true);
	g->holds_old += g->holds_cur;
	g->holds_cur = 0;
	g->gen++;
	pthread_mutex_unlock(&g->mu);
	return 0;
}

int64_t blob_gc_waiting(struct blobstore *bs)
{
	struct blob_gc *g = blob_store_gc(bs);
	int64_t n;

	pthread_mutex_lock(&g->mu);
	n = g->holds_old;
	pthread_mutex_unlock(&g->mu);
	return n;
}

void blob_gc_end(struct blobstore *bs)
{
	struct blob_gc *g = blob_store_gc(bs);

	pthread_mutex_lock(&g->mu);
	atomic_store(&g->marking, false);
	blob_keyset_finish(&g->noted);
	pthread_mutex_unlock(&g->mu);
}

int blob_gc_remove(struct blobstore *bs, const char *hex)
{
	struct blob_gc *g = blob_store_gc(bs);
	char rel[66];
	int r = 0;

	if (!blob_valid_hex(hex)) {
		return -EINVAL;
	}
	rel[0] = hex[0];
	rel[1] = hex[1];
	rel[2] = '/';
	memcpy(rel + 3, hex + 2, 62);
	rel[65] = '\0';
	pthread_mutex_lock(&g->mu);
	if (!g->marking || atomic_load(&g->note_failed)) {
		r = -EAGAIN;
	} else if (blob_keyset_has(&g->noted, blob_key(hex))) {
		r = -EBUSY;
	} else if (unlinkat(blob_store_shafd(bs), rel, 0) < 0) {
		r = -errno;
	}
	pthread_mutex_unlock(&g->mu);
	return r;
}

int blob_foreach(struct blobstore *bs, blob_list_fn cb, void *ud)
{
	int shafd = blob_store_shafd(bs);
	int r = 0;

	for (int i = 0; i < 256 && r == 0; i++) {
		static const char hx[] = "0123456789abcdef";
		char dir[3] = {hx[i >> 4], hx[i & 15], '\0'};
		int fd = openat(shafd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		struct dirent *de;
		DIR *d;

		if (fd < 0) {
			if (errno == ENOENT) {
				continue;
			}
			return -errno;
		}
		d = fdopendir(fd);
		if (!d) {
			r = -errno;
			close(fd);
			return r;
		}
		while (r == 0 && (de = readdir(d))) {
			char hex[65];
			struct stat st;

			if (strlen(de->d_name) != 62) {
				continue;
			}
			memcpy(hex, dir, 2);
			memcpy(hex + 2, de->d_name, 63);
			if (!blob_valid_hex(hex) ||
			    fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
			    !S_ISREG(st.st_mode)) {
				continue;
			}
			r = cb(ud, hex, (uint64_t)st.st_size, (uint64_t)st.st_blocks * 512);
		}
		closedir(d);
	}
	return r < 0 ? r : 0;
}

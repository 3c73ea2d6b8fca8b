/* Reclaiming and measuring the store (docs/operations.md, "Life cycle"):
 * the blob collector, by reachability from what the database refers to,
 * and the sizes `runyard du` prints. Both walk the disk in the thread
 * pool, and read the database there through a read-only connection of
 * their own, so the loop is never held by a large history.
 *
 * A collection (see snapshot/blob_gc.c for the protocol with writers):
 *   loop:  blob_gc_begin; wait (a 20 ms timer) for the holds taken before
 *          it;
 *   pool:  read every root the store refers to, through a read-only
 *          connection of its own (one WAL snapshot; the loop writes on);
 *          expand the roots that are snapshot manifests into their files;
 *          list the blobs; remove each one not reached (unless a writer used
 *          it meanwhile); sort what went by what it was;
 *   loop:  blob_gc_end; give free database pages back; report.
 * Killed at any point, it leaves only unreferenced blobs behind or gone:
 * nothing it removes is referred to, so the next collection finishes. */
#include "gc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <uv.h>

#include "blob.h"
#include "context.h"
#include "log.h"
#include "msg.h"
#include "snapshot.h"
#include "store.h"
#include "util.h"

/* How long a collection waits for writes that began before it. */
#define GC_WAIT_MAX_MS (10 * 60 * 1000)
#define GC_WAIT_TICK_MS 20
/* Free database pages given back by one collection (100 MiB of 4 KiB pages). */
#define GC_VACUUM_PAGES 25600

/* A manifest starts so (snapshot_manifest.c); anything else is a file. */
#define MANIFEST_PREFIX "{\"version\":1,\"entries\":["

/* ---- a set of 64-bit name prefixes (a shared prefix only keeps a blob) ---- */

/* ---- the collection ---- */

struct tree_root {
	char hex[65];
};

/* A blob nothing refers to. */
struct cand {
	char hex[65];
	uint64_t size, disk;
	int kind; /* KIND_* */
};

enum { KIND_FILE, KIND_MANIFEST, KIND_SNAPSHOT_FILE, KIND__MAX };
static const char *const kind_names[KIND__MAX] = {
	[KIND_FILE] = "file",
	[KIND_MANIFEST] = "snapshot manifest",
	[KIND_SNAPSHOT_FILE] = "snapshot file",
};

struct gc {
	struct daemon *d;
	uv_work_t work;
	uv_timer_t timer;
	bool dry_run;
	gc_done_fn cb;
	void *ud;
	int64_t waited_ms;
	/* roots, read on the loop */
	struct blob_keyset reach;
	struct blob_keyset strict; /* what must be stored: rows' own names, manifests' files */
	struct tree_root *trees;
	size_t ntrees, trees_cap;
	int64_t refs; /* distinct names referred to */
	/* the pool's findings */
	struct blob_keyset ondisk;
	struct cand *c;
	size_t nc, ccap;
	uint64_t blobs, bytes, disk_bytes;          /* stored before */
	uint64_t removed, removed_bytes, removed_disk; /* gone */
	uint64_t busy;                              /* kept: a writer used it */
	uint64_t by_kind[KIND__MAX], by_kind_bytes[KIND__MAX];
	int64_t missing; /* referred to, not stored */
	int64_t bad_manifests;
	char *db_path; /* read through a connection of the pool's own */
	int err;
	char *cause;
};

static struct gc *running; /* one collection at a time (per process) */

bool gc_running(struct daemon *d)
{
	return running && running->d == d;
}

static int root_cb(void *ud, const char *hex, const char *kind, bool tree)
{
	struct gc *g = ud;
	int added;

	if (!blob_valid_hex(hex)) {
		return 0;
	}
	/* Names found inside JSON, and the hash a user asked an input to
	 * have, may name no blob at all: only the others are checked. */
	if (strcmp(kind, "sweep") != 0 && strcmp(kind, "environment") != 0 &&
	    strcmp(kind, "input") != 0 && blob_keyset_add(&g->strict, blob_key(hex)) < 0) {
		return -ENOMEM;
	}
	added = blob_keyset_add(&g->reach, blob_key(hex));
	if (added < 0) {
		return added;
	}
	if (!added) {
		return 0;
	}
	g->refs++;
	if (tree) {
		if (g->ntrees == g->trees_cap) {
			size_t ncap = g->trees_cap ? g->trees_cap * 2 : 256;
			struct tree_root *nt = realloc(g->trees, ncap * sizeof(*nt));
			if (!nt) {
				return -ENOMEM;
			}
			g->trees = nt;
			g->trees_cap = ncap;
		}
		memcpy(g->trees[g->ntrees++].hex, hex, 65);
	}
	return 0;
}

/* Whether blob hex is a manifest: read its first bytes. */
static bool is_manifest(struct blobstore *bs, const char *hex)
{
	char path[PATH_MAX], buf[sizeof(MANIFEST_PREFIX)];
	ssize_t n;
	int fd;

	if (blob_path(bs, hex, path, sizeof(path)) < 0) {
		return false;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		return false;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n == (ssize_t)sizeof(buf) - 1 && memcmp(buf, MANIFEST_PREFIX, (size_t)n) == 0;
}

struct expand {
	struct blob_keyset *set, *also;
	int err;
};

static int expand_cb(void *ud, const struct snapshot_entry *e)
{
	struct expand *x = ud;

	if (e->type == SNAPSHOT_FILE && e->sha256) {
		int r = blob_keyset_add(x->set, blob_key(e->sha256));
		if (r >= 0 && x->also) {
			r = blob_keyset_add(x->also, blob_key(e->sha256));
		}
		if (r < 0) {
			x->err = r;
			return r;
		}
	}
	return 0;
}

static int list_cb(void *ud, const char *hex, uint64_t size, uint64_t disk)
{
	struct gc *g = ud;
	int r;

	g->blobs++;
	g->bytes += size;
	g->disk_bytes += disk;
	r = blob_keyset_add(&g->ondisk, blob_key(hex));
	if (r < 0) {
		return r;
	}
	if (blob_keyset_has(&g->reach, blob_key(hex))) {
		return 0;
	}
	if (g->nc == g->ccap) {
		size_t ncap = g->ccap ? g->ccap * 2 : 256;
		struct cand *nc = realloc(g->c, ncap * sizeof(*nc));
		if (!nc) {
			return -ENOMEM;
		}
		g->c = nc;
		g->ccap = ncap;
	}
	memcpy(g->c[g->nc].hex, hex, 65);
	g->c[g->nc].size = size;
	g->c[g->nc].disk = disk;
	g->c[g->nc].kind = KIND_FILE;
	g->nc++;
	return 0;
}

static void gc_work(uv_work_t *w)
{
	struct gc *g = w->data;
	struct blobstore *bs = g->d->blobs;
	struct blob_keyset orphan_files = {0};
	struct store *reader = NULL;
	int r = 0;

	/* 0. what the store refers to, in one snapshot read here, off the
	 * loop: every write that began before the collection has committed
	 * by now (its hold is released after its commit) */
	r = store_open_reader(g->db_path, &reader);
	if (r == 0 && (r = store_read_begin(reader)) == 0) {
		r = store_blob_roots(reader, root_cb, g);
		store_read_end(reader);
	}
	store_close(reader);
	if (r < 0) {
		g->err = r;
		g->cause = msg_strdupf("reading what the store refers to failed: %s", strerror(-r));
		return;
	}

	/* 1. the files of every manifest referred to */
	for (size_t i = 0; i < g->ntrees && r == 0; i++) {
		struct expand x = {.set = &g->reach, .also = &g->strict};
		char *cause = NULL;
		if (!is_manifest(bs, g->trees[i].hex)) {
			continue;
		}
		r = snapshot_foreach(bs, g->trees[i].hex, expand_cb, &x, &cause);
		free(cause);
		if (x.err < 0) {
			r = x.err;
		} else if (r < 0) {
			/* A damaged manifest: its files cannot be known, so
			 * nothing may be removed. */
			g->bad_manifests++;
			r = 0;
		}
	}
	if (r < 0) {
		g->err = r;
		g->cause = msg_strdupf("reading the manifests failed: %s", strerror(-r));
		return;
	}
	if (g->bad_manifests > 0) {
		g->err = -EBADMSG;
		g->cause = msg_strdupf("%lld snapshot manifest(s) referred to cannot be read; "
				       "nothing was removed",
				       (long long)g->bad_manifests);
		return;
	}
	/* 2. what is stored, and what of it nothing reaches */
	r = blob_foreach(bs, list_cb, g);
	if (r < 0) {
		g->err = r;
		g->cause = msg_strdupf("listing the blobs failed: %s", strerror(-r));
		return;
	}
	/* 3. what the unreached blobs were: a manifest's files are its
	 * snapshot's */
	for (size_t i = 0; i < g->nc; i++) {
		if (g->c[i].size >= sizeof(MANIFEST_PREFIX) && is_manifest(bs, g->c[i].hex)) {
			struct expand x = {.set = &orphan_files};
			char *cause = NULL;
			g->c[i].kind = KIND_MANIFEST;
			snapshot_foreach(bs, g->c[i].hex, expand_cb, &x, &cause);
			free(cause);
		}
	}
	for (size_t i = 0; i < g->nc; i++) {
		struct cand *c = &g->c[i];
		if (c->kind == KIND_FILE && blob_keyset_has(&orphan_files, blob_key(c->hex))) {
			c->kind = KIND_SNAPSHOT_FILE;
		}
	}
	blob_keyset_finish(&orphan_files);
	/* 4. remove */
	for (size_t i = 0; i < g->nc; i++) {
		struct cand *c = &g->c[i];
		if (!g->dry_run) {
			r = blob_gc_remove(bs, c->hex);
			if (r == -EBUSY) {
				g->busy++;
				continue;
			}
			if (r == -EAGAIN) {
				g->err = -ENOMEM;
				g->cause = msg_strdupf("out of memory while noting the blobs in "
						       "use; stopped removing");
				break;
			}
			if (r < 0 && r != -ENOENT) {
				g->err = r;
				g->cause = msg_strdupf("removing blob %s failed: %s", c->hex,
						       strerror(-r));
				break;
			}
		}
		g->removed++;
		g->removed_bytes += c->size;
		g->removed_disk += c->disk;
		g->by_kind[c->kind]++;
		g->by_kind_bytes[c->kind] += c->size;
	}
}

static void gc_free(struct gc *g)
{
	blob_keyset_finish(&g->reach);
	blob_keyset_finish(&g->strict);
	blob_keyset_finish(&g->ondisk);
	free(g->trees);
	free(g->c);
	free(g->cause);
	free(g->db_path);
	free(g);
}

static void timer_close_cb(uv_handle_t *h)
{
	gc_free(h->data);
}

static void finish(struct gc *g)
{
	cJSON *rep = NULL;

	blob_gc_end(g->d->blobs);
	running = NULL;
	if (g->err == 0) {
		rep = cJSON_CreateObject();
		cJSON_AddBoolToObject(rep, "dry_run", g->dry_run);
		cJSON_AddNumberToObject(rep, "blobs_before", (double)g->blobs);
		cJSON_AddNumberToObject(rep, "bytes_before", (double)g->bytes);
		cJSON_AddNumberToObject(rep, "referenced", (double)g->refs);
		cJSON_AddNumberToObject(rep, "blobs", (double)g->removed);
		cJSON_AddNumberToObject(rep, "bytes", (double)g->removed_bytes);
		cJSON_AddNumberToObject(rep, "disk_bytes", (double)g->removed_disk);
		cJSON_AddNumberToObject(rep, "kept_in_use", (double)g->busy);
		cJSON_AddNumberToObject(rep, "missing", (double)g->missing);
		cJSON *kinds = cJSON_AddArrayToObject(rep, "kinds");
		for (int k = 0; k < KIND__MAX; k++) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "kind", kind_names[k]);
			cJSON_AddNumberToObject(o, "blobs", (double)g->by_kind[k]);
			cJSON_AddNumberToObject(o, "bytes", (double)g->by_kind_bytes[k]);
			cJSON_AddItemToArray(kinds, o);
		}
		cJSON_AddNumberToObject(rep, "waited_ms", (double)g->waited_ms);
		if (!g->dry_run) {
			/* Pages freed by deleting history go back to the disk too:
			 * up to GC_VACUUM_PAGES at once (on the loop, so bounded);
			 * the rest at the next collection. */
			store_vacuum_step(g->d->store, GC_VACUUM_PAGES);
			log_info("gc: removed %llu blobs, %llu bytes (%llu kept: in use)",
				 (unsigned long long)g->removed,
				 (unsigned long long)g->removed_bytes, (unsigned long long)g->busy);
		}
	}
	g->cb(g->ud, g->err, g->cause, rep);
	uv_close((uv_handle_t *)&g->timer, timer_close_cb);
}

static void gc_done(uv_work_t *w, int status)
{
	struct gc *g = w->data;

	if (status < 0 && g->err == 0) {
		g->err = status;
		g->cause = msg_strdupf("the collection was canceled");
	}
	if (g->err == 0) {
		/* Referred to but not stored: a sign of damage, reported. */
		struct blob_keyset *r = &g->strict;
		for (size_t i = 0; i < r->cap; i++) {
			if (r->t[i] && !blob_keyset_has(&g->ondisk, r->t[i])) {
				g->missing++;
			}
		}
	}
	finish(g);
}

/* The writes that began before the collection have all been recorded:
 * read the roots and walk, in the pool. */
static void begin_walk(struct gc *g)
{
	int r;

	g->work.data = g;
	r = uv_queue_work(g->d->loop, &g->work, gc_work, gc_done);
	if (r < 0) {
		g->err = r;
		g->cause = msg_strdupf("cannot queue the collection: %s", uv_strerror(r));
		finish(g);
	}
}

static void wait_cb(uv_timer_t *t)
{
	struct gc *g = t->data;

	if (g->d->stopping) {
		uv_timer_stop(t);
		g->err = -ECANCELED;
		g->cause = msg_strdupf("runyardd is stopping; the collection was not done");
		finish(g);
		return;
	}
	if (blob_gc_waiting(g->d->blobs) > 0) {
		g->waited_ms += GC_WAIT_TICK_MS;
		if (g->waited_ms >= GC_WAIT_MAX_MS) {
			uv_timer_stop(t);
			g->err = -ETIMEDOUT;
			g->cause = msg_strdupf("%lld write(s) into the store that began before the "
					       "collection are still going after %d s; nothing was "
					       "removed, try again later",
					       (long long)blob_gc_waiting(g->d->blobs),
					       GC_WAIT_MAX_MS / 1000);
			finish(g);
		}
		return;
	}
	uv_timer_stop(t);
	begin_walk(g);
}

int gc_start(struct daemon *d, bool dry_run, gc_done_fn cb, void *ud)
{
	struct gc *g;
	int r;

	if (running) {
		return -EBUSY;
	}
	g = calloc(1, sizeof(*g));
	if (!g) {
		return -ENOMEM;
	}
	g->d = d;
	g->dry_run = dry_run;
	g->cb = cb;
	g->ud = ud;
	g->db_path = util_path_join(d->state_dir, "runyard.db");
	if (!g->db_path) {
		free(g);
		return -ENOMEM;
	}
	r = uv_timer_init(d->loop, &g->timer);
	if (r < 0) {
		free(g->db_path);
		free(g);
		return r;
	}
	g->timer.data = g;
	r = blob_gc_begin(d->blobs);
	if (r < 0) {
		uv_close((uv_handle_t *)&g->timer, timer_close_cb);
		return r;
	}
	running = g;
	r = uv_timer_start(&g->timer, wait_cb, 0, GC_WAIT_TICK_MS);
	if (r < 0) {
		blob_gc_end(d->blobs);
		running = NULL;
		uv_close((uv_handle_t *)&g->timer, timer_close_cb);
		return r;
	}
	return 0;
}

/* ---- du ---- */

struct du {
	struct daemon *d;
	uv_work_t work;
	char *experiment;
	char *db_path;
	cJSON *rep; /* the store's part, read in the pool */
	gc_done_fn cb;
	void *ud;
	cJSON *dirs; /* {name: bytes} of the state directory's entries */
	uint64_t blob_count, blob_bytes, blob_disk;
	struct statvfs vfs;
	bool have_vfs;
};

static uint64_t tree_bytes(int dirfd, const char *name, int depth)
{
	struct stat st;
	uint64_t total = 0;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		return 0;
	}
	total = (uint64_t)st.st_blocks * 512;
	if (S_ISDIR(st.st_mode) && depth < 64) {
		int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
		struct dirent *de;
		if (!dir) {
			if (fd >= 0) {
				close(fd);
			}
			return total;
		}
		while ((de = readdir(dir))) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
				continue;
			}
			total += tree_bytes(fd, de->d_name, depth + 1);
		}
		closedir(dir);
	}
	return total;
}

static int du_blob_cb(void *ud, const char *hex, uint64_t size, uint64_t disk)
{
	struct du *u = ud;

	(void)hex;
	u->blob_count++;
	u->blob_bytes += size;
	u->blob_disk += disk;
	return 0;
}

static void du_work(uv_work_t *w)
{
	struct du *u = w->data;
	int fd = open(u->d->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	uint64_t db = 0;

	struct store *reader = NULL;

	if (store_open_reader(u->db_path, &reader) == 0 && store_read_begin(reader) == 0) {
		store_du_json(reader, u->experiment, 10, &u->rep);
		store_read_end(reader);
	}
	store_close(reader);
	u->dirs = cJSON_CreateObject();
	if (statvfs(u->d->state_dir, &u->vfs) == 0) {
		u->have_vfs = true;
	}
	blob_foreach(u->d->blobs, du_blob_cb, u);
	if (!dir) {
		if (fd >= 0) {
			close(fd);
		}
		return;
	}
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.') {
			continue;
		}
		uint64_t b = tree_bytes(fd, de->d_name, 0);
		if (strncmp(de->d_name, "runyard.db", 10) == 0) {
			db += b;
			continue;
		}
		if (strlen(de->d_name) < 64 && u->dirs) {
			cJSON_AddNumberToObject(u->dirs, de->d_name, (double)b);
		}
	}
	closedir(dir);
	if (u->dirs) {
		cJSON_AddNumberToObject(u->dirs, "runyard.db", (double)db);
	}
}

static void du_done(uv_work_t *w, int status)
{
	struct du *u = w->data;
	cJSON *rep = NULL;
	int err = 0;

	rep = u->rep;
	u->rep = NULL;
	if (status == 0 && rep) {
		cJSON *kinds = cJSON_AddObjectToObject(rep, "kinds");
		const cJSON *it;
		cJSON_AddNumberToObject(kinds, "blobs", (double)u->blob_disk);
		cJSON_ArrayForEach(it, u->dirs) {
			const char *n = it->string;
			const char *k = strcmp(n, "blobs") == 0        ? NULL
			                : strcmp(n, "runyard.db") == 0 ? "database"
			                : strcmp(n, "runs") == 0       ? "run_directories"
			                : strcmp(n, "envs") == 0       ? "environments"
			                : strcmp(n, "downloads") == 0  ? "cache"
			                                               : NULL;
			if (k) {
				cJSON_AddNumberToObject(kinds, k, it->valuedouble);
			} else if (strcmp(n, "blobs") != 0) {
				cJSON *other = cJSON_GetObjectItemCaseSensitive(kinds, "other");
				if (!other) {
					other = cJSON_AddNumberToObject(kinds, "other", 0);
				}
				cJSON_SetNumberValue(other, other->valuedouble + it->valuedouble);
			}
		}
		/* logs live inside the database: shown apart, not added twice */
		double total = 0;
		cJSON_ArrayForEach(it, kinds) {
			total += it->valuedouble;
		}
		cJSON_AddNumberToObject(rep, "total_bytes", total);
		cJSON_AddNumberToObject(rep, "blob_count", (double)u->blob_count);
		cJSON_AddNumberToObject(rep, "blob_bytes", (double)u->blob_bytes);
		if (u->have_vfs) {
			gc_add_free_space(rep, &u->vfs);
		}
	} else {
		err = status < 0 ? status : -EIO;
	}
	u->cb(u->ud, err, err ? "measuring the store failed" : NULL, rep);
	cJSON_Delete(u->dirs);
	cJSON_Delete(u->rep);
	free(u->experiment);
	free(u->db_path);
	free(u);
}

int gc_du(struct daemon *d, const char *experiment, gc_done_fn cb, void *ud)
{
	struct du *u = calloc(1, sizeof(*u));
	int r;

	if (!u) {
		return -ENOMEM;
	}
	u->d = d;
	u->cb = cb;
	u->ud = ud;
	u->experiment = experiment ? strdup(experiment) : NULL;
	u->db_path = util_path_join(d->state_dir, "runyard.db");
	u->work.data = u;
	if ((experiment && !u->experiment) || !u->db_path) {
		free(u->experiment);
		free(u->db_path);
		free(u);
		return -ENOMEM;
	}
	r = uv_queue_work(d->loop, &u->work, du_work, du_done);
	if (r < 0) {
		free(u->experiment);
		free(u->db_path);
		free(u);
	}
	return r;
}

void gc_add_free_space(cJSON *o, const struct statvfs *v)
{
	cJSON_AddNumberToObject(o, "free_bytes", (double)v->f_bavail * (double)v->f_frsize);
	cJSON_AddNumberToObject(o, "fs_bytes", (double)v->f_blocks * (double)v->f_frsize);
}

int gc_free_space(struct daemon *d, uint64_t *ret_free, uint64_t *ret_total)
{
	struct statvfs v;

	/* One system call on the loop: statvfs does not walk anything. */
	if (statvfs(d->state_dir, &v) < 0) {
		return -errno;
	}
	*ret_free = (uint64_t)v.f_bavail * v.f_frsize;
	*ret_total = (uint64_t)v.f_blocks * v.f_frsize;
	return 0;
}

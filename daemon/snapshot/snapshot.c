/* Taking a snapshot: the walk's hooks collect the entries of a tree (or
 * of an archive, through the snapshot_build calls), check the limits and
 * write the over-limit message with its suggestions, store the files'
 * contents on up to STORE_THREADS_MAX threads (or take them from the stat
 * cache), and store the manifest (written by snapshot_manifest.c). Reading a
 * stored snapshot back is in snapshot_manifest.c, recreating its tree in
 * snapshot_materialise.c. */
#include "snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "msg.h"
#include "snapshot_priv.h"
#include "statcache.h"

#define TOP_N SNAPSHOT_TOP_N

/* Threads storing files at most, and when it is worth starting them. */
#define STORE_THREADS_MAX 4
#define PARALLEL_MIN_BYTES (16u * 1000 * 1000)
#define PARALLEL_MIN_FILES 500

const char *const snapshot_type_names[] = {
    [E_FILE] = "file", [E_DIR] = "dir", [E_SYMLINK] = "symlink"};

/* One of the largest files or directories, for the over-limit message. */
struct top {
	char *path;
	uint64_t bytes;
	uint64_t files;
};

/* Files by name extension, for suggesting a pattern such as "*.csv". */
#define EXTS_MAX 64
struct ext {
	char name[16];
	uint64_t files, bytes;
};

/* Totals of a directory being walked. */
struct frame {
	uint64_t bytes;
	uint64_t files;
};

struct snapshot_build {
	struct blobstore *bs;
	char *source;
	const struct walk_ops *m;
	void *mud;
	const char *ignore_file; /* for the message's suggestion */
	uint64_t max_bytes, max_files;
	uint64_t cutoff; /* entries after which the walk gives up counting */
	bool list_only;

	struct entry *ents;
	size_t n, cap;
	size_t *files; /* indices of the file entries, in walk order */
	size_t nfiles, fcap;
	bool over; /* over a limit: stop keeping entries, only count */
	bool cut;  /* stopped at cutoff */
	uint64_t seen, nfile, bytes;

	cJSON *skipped;
	uint64_t skipped_total;
	int state_skip; /* listing the state directory as skipped failed */

	struct frame *stack;
	size_t depth, scap;
	struct top top_files[TOP_N];
	struct top top_dirs_bytes[TOP_N];
	struct top top_dirs_files[TOP_N];
	struct ext exts[EXTS_MAX];
	size_t nexts;

	int rootfd;  /* the walked root, for reopening files to store them */
	char *cause; /* set by callbacks */
	uint64_t read_files, read_bytes, cached_files, cached_bytes;
};

const char *snapshot_errstr(int err, char buf[128])
{
	return strerror_r(err, buf, 128);
}

/* Sizes in SI units, as limits are given (300 MB = 300,000,000 bytes). */
static void human(uint64_t b, char buf[32])
{
	static const char *const units[] = {"kB", "MB", "GB", "TB", "PB", "EB"};
	double v = (double)b;
	int u = -1;

	if (b < 1000) {
		snprintf(buf, 32, "%" PRIu64 " B", b);
		return;
	}
	while (v >= 999.95 && u < 5) {
		v /= 1000;
		u++;
	}
	snprintf(buf, 32, "%.1f %s", v, units[u]);
}

bool snapshot_link_inside(const char *linkpath, const char *target)
{
	long depth = 0;
	const char *p;

	if (target[0] == '/' || target[0] == '\0') {
		return false;
	}
	for (p = linkpath; *p; p++) {
		depth += *p == '/';
	}
	p = target;
	for (;;) {
		const char *s = strchr(p, '/');
		size_t l = s ? (size_t)(s - p) : strlen(p);
		if (l == 2 && p[0] == '.' && p[1] == '.') {
			if (--depth < 0) {
				return false;
			}
		} else if (l > 0 && !(l == 1 && p[0] == '.')) {
			depth++;
		}
		if (!s) {
			return true;
		}
		p = s + 1;
	}
}

#define link_inside snapshot_link_inside

static void top_offer(struct top top[TOP_N], uint64_t key_of_new, bool by_files, const char *path,
                      uint64_t bytes, uint64_t files)
{
	int i = TOP_N;
	char *copy;

	/* Strictly larger to get in, so ties keep walk order. */
	while (i > 0 && (!top[i - 1].path ||
	                 (by_files ? top[i - 1].files : top[i - 1].bytes) < key_of_new)) {
		i--;
	}
	if (i >= TOP_N) {
		return;
	}
	copy = strdup(path);
	if (!copy) {
		return; /* only a message gets shorter */
	}
	free(top[TOP_N - 1].path);
	memmove(&top[i + 1], &top[i], (TOP_N - 1 - (size_t)i) * sizeof(top[0]));
	top[i] = (struct top){.path = copy, .bytes = bytes, .files = files};
}

static void top_clear(struct top top[TOP_N])
{
	for (int i = 0; i < TOP_N; i++) {
		free(top[i].path);
		top[i].path = NULL;
	}
}

/* A name as it may travel in JSON: invalid UTF-8 replaced. */
static cJSON *json_name(const char *path)
{
	char *clean = utf8_sanitize(path, strlen(path), NULL);
	cJSON *s = clean ? cJSON_CreateString(clean) : NULL;

	free(clean);
	return s;
}

static int skip(struct snapshot_build *t, const char *path, const char *reason)
{
	cJSON *o, *p;

	t->skipped_total++;
	if (t->skipped_total > SNAPSHOT_SKIPPED_MAX) {
		return 0;
	}
	o = cJSON_CreateObject();
	if (!o || !cJSON_AddItemToArray(t->skipped, o)) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	p = json_name(path);
	if (!p || !cJSON_AddItemToObject(o, "path", p)) {
		cJSON_Delete(p);
		return -ENOMEM;
	}
	if (!cJSON_AddStringToObject(o, "reason", reason)) {
		return -ENOMEM;
	}
	return 0;
}

static struct entry *entry_add(struct snapshot_build *t, const char *path, enum etype type)
{
	struct entry *e;

	if (t->n == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 256;
		struct entry *ne = realloc(t->ents, ncap * sizeof(*ne));
		if (!ne) {
			return NULL;
		}
		t->ents = ne;
		t->cap = ncap;
	}
	if (type == E_FILE && t->nfiles == t->fcap) {
		size_t ncap = t->fcap ? t->fcap * 2 : 256;
		size_t *nf = realloc(t->files, ncap * sizeof(*nf));
		if (!nf) {
			return NULL;
		}
		t->files = nf;
		t->fcap = ncap;
	}
	e = &t->ents[t->n];
	memset(e, 0, sizeof(*e));
	e->path = strdup(path);
	if (!e->path) {
		return NULL;
	}
	e->type = type;
	if (type == E_FILE) {
		t->files[t->nfiles++] = t->n;
	}
	t->n++;
	return e;
}

/* The target of the symlink e, malloc'd. */
static int read_link(const struct walk_entry *e, char **ret)
{
	size_t sz = e->st->st_size > 0 ? (size_t)e->st->st_size + 1 : 256;

	if (e->dirfd < 0) {
		*ret = strdup(e->link_target ? e->link_target : "");
		return *ret ? 0 : -ENOMEM;
	}
	for (;;) {
		char *buf = malloc(sz);
		ssize_t n;
		if (!buf) {
			return -ENOMEM;
		}
		n = readlinkat(e->dirfd, e->name, buf, sz);
		if (n < 0) {
			int r = -errno;
			free(buf);
			return r;
		}
		if ((size_t)n < sz) {
			buf[n] = '\0';
			*ret = buf;
			return 0;
		}
		free(buf);
		sz *= 2; /* the link changed since lstat */
	}
}

static int take_enter_cb(void *ud, const char *path, int dirfd)
{
	struct snapshot_build *t = ud;
	int r;

	if (t->depth == t->scap) {
		size_t ncap = t->scap ? t->scap * 2 : 32;
		struct frame *ns = realloc(t->stack, ncap * sizeof(*ns));
		if (!ns) {
			return -ENOMEM;
		}
		t->stack = ns;
		t->scap = ncap;
	}
	if (t->depth == 0 && dirfd >= 0) {
		/* Keep the root open: files are reopened from it to be stored. */
		t->rootfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
		if (t->rootfd < 0) {
			return -errno;
		}
	}
	t->stack[t->depth++] = (struct frame){0, 0};
	if (t->m && t->m->enter_dir) {
		r = t->m->enter_dir(t->mud, path, dirfd);
		if (r < 0) {
			t->depth--;
			if (!t->cause && t->m->take_error) {
				t->cause = t->m->take_error(t->mud);
			}
			if (!t->cause) {
				char eb[128];
				t->cause = msg_strdupf("cannot read the ignore rules of %s%s%s: %s",
				                       t->source, *path ? "/" : "", path,
				                       snapshot_errstr(-r, eb));
			}
			return r;
		}
	}
	return 0;
}

static void take_leave_cb(void *ud, const char *path)
{
	struct snapshot_build *t = ud;
	struct frame f;

	if (t->m && t->m->leave_dir) {
		t->m->leave_dir(t->mud, path);
	}
	f = t->stack[--t->depth];
	if (t->depth > 0) {
		t->stack[t->depth - 1].bytes += f.bytes;
		t->stack[t->depth - 1].files += f.files;
		if (f.files > 0) {
			top_offer(t->top_dirs_bytes, f.bytes, false, path, f.bytes, f.files);
			top_offer(t->top_dirs_files, f.files, true, path, f.bytes, f.files);
		}
	}
}

static bool take_ignored_cb(void *ud, const struct walk_entry *e)
{
	struct snapshot_build *t = ud;

	/* A source above the daemon's state directory (a submit from $HOME)
	 * must not take the store itself, runs inside runs. Said in the
	 * skipped list, whatever the ignore rules say. */
	if (e->kind == WALK_DIR && e->st && blob_store_is_root(t->bs, e->st)) {
		t->state_skip = skip(t, e->path, "runyard's state directory");
		return true;
	}
	return t->m && t->m->ignored && t->m->ignored(t->mud, e);
}

static int take_unreadable_cb(void *ud, const struct walk_entry *e, int err)
{
	(void)err;
	return skip(ud, e->path, e->kind == WALK_DIR ? "unreadable directory" : "unreadable");
}

static void ext_count(struct snapshot_build *t, const char *name, uint64_t size)
{
	const char *dot = strrchr(name, '.');
	size_t l;

	if (!dot || dot == name || !dot[1] || (l = strlen(dot + 1)) >= sizeof(t->exts[0].name) ||
	    strpbrk(dot + 1, "*?[\\ ")) {
		return;
	}
	for (size_t i = 0; i < t->nexts; i++) {
		if (strcmp(t->exts[i].name, dot + 1) == 0) {
			t->exts[i].files++;
			t->exts[i].bytes += size;
			return;
		}
	}
	if (t->nexts < EXTS_MAX) {
		memcpy(t->exts[t->nexts].name, dot + 1, l + 1);
		t->exts[t->nexts].files = 1;
		t->exts[t->nexts].bytes = size;
		t->nexts++;
	}
}

static int take_visit_cb(void *ud, const struct walk_entry *e)
{
	struct snapshot_build *t = ud;
	struct entry *en;
	char *target = NULL;
	uint64_t size;
	int r;

	if (++t->seen > t->cutoff) {
		t->cut = true;
		return -ECANCELED;
	}
	switch (e->kind) {
	case WALK_FILE:
		size = (uint64_t)e->st->st_size;
		t->nfile++;
		t->bytes += size;
		t->stack[t->depth - 1].files++;
		t->stack[t->depth - 1].bytes += size;
		top_offer(t->top_files, size, false, e->path, size, 1);
		ext_count(t, e->name, size);
		if (t->nfile > t->max_files || t->bytes > t->max_bytes) {
			/* Nothing is stored, so stop keeping entries and
			 * only count, for the message. */
			t->over = true;
		}
		if (t->over) {
			return 0;
		}
		en = entry_add(t, e->path, E_FILE);
		if (!en) {
			return -ENOMEM;
		}
		en->size = size;
		en->mode = e->st->st_mode & 07777;
		en->st = *e->st;
		return 0;
	case WALK_DIR:
		if (t->over) {
			return 0;
		}
		en = entry_add(t, e->path, E_DIR);
		if (!en) {
			return -ENOMEM;
		}
		en->mode = e->st->st_mode & 07777;
		return 0;
	case WALK_SYMLINK:
		r = read_link(e, &target);
		if (r < 0) {
			char eb[128];
			t->cause = msg_strdupf("cannot read symlink %s/%s: %s", t->source, e->path,
			                       snapshot_errstr(-r, eb));
			return r;
		}
		if (!link_inside(e->path, target)) {
			free(target);
			return skip(t, e->path, "symlink outside the tree");
		}
		if (t->over) {
			free(target);
			return 0;
		}
		en = entry_add(t, e->path, E_SYMLINK);
		if (!en) {
			free(target);
			return -ENOMEM;
		}
		en->target = target;
		return 0;
	case WALK_FIFO:
		return skip(t, e->path, "fifo");
	case WALK_SOCKET:
		return skip(t, e->path, "socket");
	case WALK_DEVICE:
		return skip(t, e->path, "device");
	}
	return 0;
}

const struct walk_ops snapshot_build_walk_ops = {
    .enter_dir = take_enter_cb,
    .leave_dir = take_leave_cb,
    .ignored = take_ignored_cb,
    .visit = take_visit_cb,
    .unreadable = take_unreadable_cb,
};

static void fmt_limit(uint64_t v, bool bytes, char buf[48])
{
	if (v == UINT64_MAX) {
		snprintf(buf, 48, "no limit");
	} else if (bytes) {
		human(v, buf);
	} else {
		snprintf(buf, 48, "%" PRIu64 " file%s", v, v == 1 ? "" : "s");
	}
}

/* A path as a gitignore pattern that matches it literally. A single
 * component is anchored with a leading '/' (else it would match at any
 * depth); a longer path is anchored by its own '/'. */
static void put_pattern(FILE *f, const char *path)
{
	if (!strchr(path, '/')) {
		fputc('/', f);
	} else if (path[0] == '#' || path[0] == '!') {
		fputc('\\', f);
	}
	for (const char *p = path; *p; p++) {
		if (strchr("*?[\\", *p) || (*p == ' ' && p[1] == '\0')) {
			fputc('\\', f);
		}
		fputc(*p, f);
	}
}

/* The over-limit message: totals, the largest files and directories, and
 * patterns to ignore. Directories are ranked by size when the size is over,
 * else by their number of files, so that a node_modules/ of many small
 * files is the one named. */
static char *over_message(struct snapshot_build *t)
{
	bool by_files = t->bytes <= t->max_bytes;
	struct top *dirs = by_files ? t->top_dirs_files : t->top_dirs_bytes;
	char *s = NULL, *clean;
	size_t sl = 0;
	char a[48], b[48];
	FILE *f = open_memstream(&s, &sl);

	if (!f) {
		return NULL;
	}
	human(t->bytes, a);
	if (t->cut) {
		fprintf(f,
		        "snapshot of %s has more than %" PRIu64 " entries (%" PRIu64
		        " files, %s when the walk stopped)",
		        t->source, t->cutoff, t->nfile, a);
	} else {
		fprintf(f, "snapshot of %s is %s in %" PRIu64 " file%s", t->source, a, t->nfile,
		        t->nfile == 1 ? "" : "s");
	}
	fmt_limit(t->max_bytes, true, a);
	fmt_limit(t->max_files, false, b);
	fprintf(f, ", over the limit of %s / %s", a, b);
	for (int i = 0; i < TOP_N && t->top_files[i].path; i++) {
		human(t->top_files[i].bytes, a);
		fprintf(f, "%s%s (%s)", i ? ", " : "; largest files: ", t->top_files[i].path, a);
	}
	for (int i = 0; i < TOP_N && dirs[i].path; i++) {
		human(dirs[i].bytes, a);
		fprintf(f, "%s%s/ (%s in %" PRIu64 " file%s)",
		        i ? ", " : "; largest directories: ", dirs[i].path, a, dirs[i].files,
		        dirs[i].files == 1 ? "" : "s");
	}
	/* Suggest: the top directory when it holds more than the largest file
	 * alone (or, counting files, at all); the most common extension when
	 * it holds a quarter of what is over; and the largest file when the
	 * size is over and neither covers it. Never an ignore file itself. */
	{
		const char *d = dirs[0].path;
		const char *fl = t->top_files[0].path;
		const struct ext *x = NULL;
		size_t dl;
		int n = 0;
		if (d && !by_files && dirs[0].bytes < t->top_files[0].bytes) {
			d = NULL;
		}
		/* An extension only when no directory holds half of it all. */
		for (size_t i = 0;
		     i < t->nexts && !(d && (by_files ? dirs[0].files * 2 >= t->nfile
		                                      : dirs[0].bytes * 2 >= t->bytes));
		     i++) {
			uint64_t v = by_files ? t->exts[i].files : t->exts[i].bytes;
			if (v * 4 >= (by_files ? t->nfile : t->bytes) && t->exts[i].files > 1 &&
			    (!x || v > (by_files ? x->files : x->bytes))) {
				x = &t->exts[i];
			}
		}
		dl = d ? strlen(d) : 0;
		if (fl && (by_files || (d && strncmp(fl, d, dl) == 0 && fl[dl] == '/'))) {
			fl = NULL;
		}
		if (fl) {
			const char *base = strrchr(fl, '/') ? strrchr(fl, '/') + 1 : fl;
			const char *dot = strrchr(base, '.');
			if (strcmp(base, ".amlignore") == 0 || strcmp(base, ".gitignore") == 0 ||
			    (x && dot && dot != base && strcmp(dot + 1, x->name) == 0)) {
				fl = NULL;
			}
		}
		if (d || x || fl) {
			fputs("; add patterns such as ", f);
			if (d) {
				fputc('\'', f);
				put_pattern(f, d);
				fputs("/'", f);
				n++;
			}
			if (x) {
				fprintf(f, "%s'*.%s'", n ? (fl ? ", " : " or ") : "", x->name);
				n++;
			}
			if (fl) {
				fputs(n ? " or '" : "'", f);
				put_pattern(f, fl);
				fputc('\'', f);
			}
			fprintf(f,
			        " to %s, or raise the limit (--max-snapshot-mb, "
			        "--max-snapshot-files)",
			        t->ignore_file);
		} else {
			fputs("; raise the limit (--max-snapshot-mb, --max-snapshot-files)", f);
		}
	}
	if (fclose(f) != 0) {
		free(s);
		return NULL;
	}
	/* Paths are bytes; the message goes to a client as JSON. */
	clean = utf8_sanitize(s, sl, NULL);
	free(s);
	return clean;
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->path, ((const struct entry *)b)->path);
}

/* Open path below dirfd. Paths longer than the kernel takes at once are
 * opened one directory at a time (never through a symlink), since the walk
 * has no depth limit. */
static int open_beneath(int dirfd, const char *path, int flags)
{
	char comp[NAME_MAX + 1];
	const char *p = path;
	int fd = dirfd;

	if (strlen(path) < PATH_MAX) {
		return openat(dirfd, path, flags);
	}
	for (;;) {
		const char *s = strchr(p, '/');
		size_t l = s ? (size_t)(s - p) : strlen(p);
		int nfd;
		if (l > NAME_MAX) {
			errno = ENAMETOOLONG;
			nfd = -1;
		} else {
			memcpy(comp, p, l);
			comp[l] = '\0';
			nfd = openat(fd, comp,
			             s ? O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC : flags);
		}
		if (fd != dirfd) {
			int e = errno;
			close(fd);
			errno = e;
		}
		if (nfd < 0 || !s) {
			return nfd;
		}
		fd = nfd;
		p = s + 1;
	}
}

/* Store the file entry e (opened again from the root) into the batch. A
 * file that cannot be read is marked skipped, not an error. */
static int store_file(struct snapshot_build *t, struct blob_batch *batch, struct entry *e,
                      char **cause)
{
	struct stat st;
	char eb[128];
	int fd, r;

	/* O_NOFOLLOW and the inode check below make sure what is stored is the
	 * file that was walked, not something swapped in since. */
	fd = open_beneath(t->rootfd, e->path,
	                  O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		goto fail;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto fail;
	}
	if (!S_ISREG(st.st_mode) || st.st_dev != e->st.st_dev || st.st_ino != e->st.st_ino) {
		r = -ESTALE;
		goto fail;
	}
	r = blob_batch_put_fd_upto(batch, fd, (uint64_t)st.st_size, e->hex, &e->size);
	if (r < 0) {
		goto fail;
	}
	e->mode = st.st_mode & 07777;
	e->st = st;
	e->hashed = true;
	close(fd);
	return 0;

fail:
	if (fd >= 0) {
		close(fd);
	}
	if (r == -EACCES || r == -EPERM) {
		e->skipped = true;
		return 0;
	}
	if (r == -ENOENT || r == -ELOOP || r == -ENOTDIR || r == -ESTALE) {
		*cause = msg_strdupf("%s/%s changed while the snapshot was taken; submit again",
		                     t->source, e->path);
		return -EAGAIN;
	}
	*cause = msg_strdupf("cannot store %s/%s: %s", t->source, e->path, snapshot_errstr(-r, eb));
	return r;
}

/* One thread storing files: entries are handed out one at a time from a
 * shared counter, each into the storer's own batch. */
struct storer {
	struct snapshot_build *t;
	struct blob_batch *batch;
	atomic_size_t *next;
	atomic_bool *stop;
	pthread_t thread;
	bool started;
	int r;
	size_t failed; /* index of the entry that failed */
	char *cause;
	uint64_t files, bytes;
};

static void store_files(struct storer *s)
{
	struct snapshot_build *t = s->t;

	while (!atomic_load(s->stop)) {
		size_t i = atomic_fetch_add(s->next, 1);
		struct entry *e;
		if (i >= t->nfiles) {
			break;
		}
		e = &t->ents[t->files[i]];
		if (e->hashed) {
			continue; /* from the stat cache */
		}
		s->r = store_file(t, s->batch, e, &s->cause);
		if (s->r < 0) {
			s->failed = i;
			atomic_store(s->stop, true);
			break;
		}
		if (e->hashed) {
			s->files++;
			s->bytes += e->size;
		}
	}
}

static void *storer_main_cb(void *arg)
{
	store_files(arg);
	return NULL;
}

/* Store every file entry not known yet, on up to STORE_THREADS_MAX threads
 * (the caller's included) when there is enough to do: hashing and copying
 * are CPU-bound from the page cache, and a submit waits for them. Every
 * batch ends up merged into batch[0]. On failure the error of the first
 * failing entry is returned, with its cause. */
static int store_all(struct snapshot_build *t, struct blob_batch **batches, size_t nthreads,
                     char **cause)
{
	struct storer st[STORE_THREADS_MAX] = {0};
	atomic_size_t next = 0;
	atomic_bool stop = false;
	size_t best = SIZE_MAX, first = 0;
	int r = 0;

	for (size_t k = 0; k < nthreads; k++) {
		st[k] = (struct storer){.t = t, .batch = batches[k], .next = &next, .stop = &stop};
	}
	for (size_t k = 1; k < nthreads; k++) {
		/* A thread that cannot be started just leaves more to the others. */
		st[k].started = pthread_create(&st[k].thread, NULL, storer_main_cb, &st[k]) == 0;
	}
	store_files(&st[0]);
	for (size_t k = 1; k < nthreads; k++) {
		if (st[k].started) {
			pthread_join(st[k].thread, NULL);
		}
	}
	for (size_t k = 0; k < nthreads; k++) {
		t->read_files += st[k].files;
		t->read_bytes += st[k].bytes;
		if (st[k].r < 0 && st[k].failed < best) {
			best = st[k].failed;
			r = st[k].r;
			first = k;
		}
	}
	if (r < 0 && cause) {
		*cause = st[first].cause;
		st[first].cause = NULL;
	}
	for (size_t k = 0; k < nthreads; k++) {
		free(st[k].cause);
	}
	for (size_t k = 1; k < nthreads && r == 0; k++) {
		r = blob_batch_merge(batches[0], batches[k]);
	}
	return r;
}

static size_t store_threads(uint64_t files, uint64_t bytes)
{
	long ncpu;

	if (bytes < PARALLEL_MIN_BYTES && files < PARALLEL_MIN_FILES) {
		return 1;
	}
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpu < 1) {
		return 1;
	}
	return (size_t)ncpu < STORE_THREADS_MAX ? (size_t)ncpu : STORE_THREADS_MAX;
}

/* The entries of a dry run: [{"path", "type", "size"}], sorted. */
static int list_entries(struct snapshot_build *t, struct snapshot_info *ret)
{
	cJSON *arr = cJSON_CreateArray();
	size_t listed = 0;

	if (!arr) {
		return -ENOMEM;
	}
	if (t->n > 1) {
		qsort(t->ents, t->n, sizeof(*t->ents), cmp_entry);
	}
	for (size_t i = 0; i < t->n; i++) {
		const struct entry *e = &t->ents[i];
		cJSON *o, *p;
		if (listed == SNAPSHOT_LIST_MAX) {
			ret->entries_truncated = true;
			break;
		}
		o = cJSON_CreateObject();
		p = json_name(e->path);
		if (!o || !cJSON_AddItemToArray(arr, o) || !p ||
		    !cJSON_AddItemToObject(o, "path", p) ||
		    !cJSON_AddStringToObject(o, "type", snapshot_type_names[e->type]) ||
		    (e->type == E_FILE && !cJSON_AddNumberToObject(o, "size", (double)e->size)) ||
		    (e->type == E_SYMLINK && !cJSON_AddStringToObject(o, "target", e->target))) {
			if (!p || !cJSON_IsString(cJSON_GetObjectItem(o, "path"))) {
				cJSON_Delete(p);
			}
			cJSON_Delete(arr);
			return -ENOMEM;
		}
		listed++;
	}
	ret->entries = arr;
	if (t->over) {
		ret->entries_truncated = true;
	}
	return 0;
}

static void held_tree_free(struct held_tree *h)
{
	if (!h) {
		return;
	}
	for (size_t i = 0; i < h->n; i++) {
		free(h->ents[i].path);
		free(h->ents[i].target);
	}
	free(h->ents);
	free(h);
}

void snapshot_info_finish(struct snapshot_info *info)
{
	if (!info) {
		return;
	}
	cJSON_Delete(info->skipped);
	info->skipped = NULL;
	cJSON_Delete(info->entries);
	info->entries = NULL;
	held_tree_free(info->tree);
	info->tree = NULL;
}

int snapshot_build_create(struct blobstore *bs, const char *source,
                          const struct snapshot_opts *opts, struct snapshot_build **ret)
{
	struct snapshot_build *t = calloc(1, sizeof(*t));
	const struct snapshot_limits *lim = &opts->limits;

	if (!t) {
		return -ENOMEM;
	}
	t->bs = bs;
	t->source = strdup(source);
	t->m = opts->matcher;
	t->mud = opts->matcher_ud;
	t->ignore_file = opts->ignore_file ? opts->ignore_file : ".amlignore";
	t->max_bytes = lim->max_bytes ? lim->max_bytes : SNAPSHOT_DEFAULT_MAX_BYTES;
	t->max_files = lim->max_files ? lim->max_files : SNAPSHOT_DEFAULT_MAX_FILES;
	t->list_only = opts->list_only;
	t->rootfd = -1;
	/* Past this many entries the tree is hopeless (someone submitted their
	 * home directory): stop walking rather than count to the end. */
	t->cutoff = t->max_files > UINT64_MAX / 16 ? UINT64_MAX : t->max_files * 16;
	if (t->cutoff < 100000) {
		t->cutoff = 100000;
	}
	t->skipped = cJSON_CreateArray();
	if (!t->source || !t->skipped) {
		snapshot_build_destroy(t);
		return -ENOMEM;
	}
	*ret = t;
	return 0;
}

void snapshot_build_destroy(struct snapshot_build *t)
{
	if (!t) {
		return;
	}
	for (size_t i = 0; i < t->n; i++) {
		free(t->ents[i].path);
		free(t->ents[i].target);
	}
	free(t->ents);
	free(t->files);
	free(t->stack);
	top_clear(t->top_files);
	top_clear(t->top_dirs_bytes);
	top_clear(t->top_dirs_files);
	cJSON_Delete(t->skipped);
	free(t->cause);
	free(t->source);
	if (t->rootfd >= 0) {
		close(t->rootfd);
	}
	free(t);
}

char *snapshot_build_take_cause(struct snapshot_build *b)
{
	char *c = b->cause;

	b->cause = NULL;
	return c;
}

int snapshot_build_check(struct snapshot_build *b, char **cause)
{
	if (b->cut) {
		b->over = true;
	}
	if (!b->over) {
		return 0;
	}
	if (cause) {
		*cause = over_message(b);
	}
	return -EFBIG;
}

size_t snapshot_build_files(const struct snapshot_build *b)
{
	return b->nfiles;
}

const char *snapshot_build_file_path(const struct snapshot_build *b, size_t i)
{
	return b->ents[b->files[i]].path;
}

void snapshot_build_set_file(struct snapshot_build *b, size_t i, const char hex[65], uint64_t size)
{
	struct entry *e = &b->ents[b->files[i]];

	memcpy(e->hex, hex, 65);
	e->size = size;
	e->hashed = true;
	b->read_files++;
	b->read_bytes += size;
}

int snapshot_build_skip_file(struct snapshot_build *b, size_t i, const char *reason)
{
	struct entry *e = &b->ents[b->files[i]];

	e->skipped = true;
	e->listed = true;
	return skip(b, e->path, reason);
}

static struct entry *find_entry(struct snapshot_build *t, const char *path)
{
	struct entry key = {.path = (char *)path};

	return bsearch(&key, t->ents, t->n, sizeof(*t->ents), cmp_entry);
}

/* Whether the symlink e, resolved through the tree's own symlinks as the
 * kernel would in the materialised tree, stays inside it. The walk judged
 * each link on its text alone, which a chain defeats: q -> . and p -> q/..
 * each look inside, yet p is the tree's parent. Conservative: too many
 * hops, or a name after a file, count as outside. */
static int link_resolves_inside(struct snapshot_build *t, const struct entry *e, bool *ret)
{
	const char *slash = strrchr(e->path, '/');
	char *cur = strndup(e->path, slash ? (size_t)(slash - e->path) : 0);
	char *rest = strdup(e->target), *next;
	size_t pos = 0;
	int hops = 0, r = 0;

	*ret = false;
	if (!cur || !rest) {
		r = -ENOMEM;
		goto out;
	}
	while (rest[pos]) {
		char *c = rest + pos, *s = strchr(c, '/');
		size_t l = s ? (size_t)(s - c) : strlen(c), keep = strlen(cur);
		pos = s ? (size_t)(s - rest) + 1 : pos + l;
		if (l == 0 || (l == 1 && c[0] == '.')) {
			continue;
		}
		if (l == 2 && c[0] == '.' && c[1] == '.') {
			if (!*cur) {
				goto out; /* above the root */
			}
			char *up = strrchr(cur, '/');
			*(up ? up : cur) = '\0';
			continue;
		}
		if (asprintf(&next, "%s%s%.*s", cur, *cur ? "/" : "", (int)l, c) < 0) {
			r = -ENOMEM;
			goto out;
		}
		free(cur);
		cur = next;
		const struct entry *f = find_entry(t, cur);
		if (!f || f->type == E_DIR) {
			continue; /* a missing name goes on as text: lexically */
		}
		if (f->type == E_FILE) {
			*ret = !s; /* a name after a file resolves nowhere */
			goto out;
		}
		if (++hops > 40) {
			goto out;
		}
		cur[keep] = '\0'; /* the link's directory, then its target */
		if (asprintf(&next, "%s%s%s", f->target, s ? "/" : "", s ? s + 1 : "") < 0) {
			r = -ENOMEM;
			goto out;
		}
		free(rest);
		rest = next;
		pos = 0;
	}
	*ret = true;
out:
	free(cur);
	free(rest);
	return r;
}

/* Symlinks that resolve outside the tree through others are left out and
 * listed like those that point outside on their face. ents is sorted. */
static int drop_escaping_links(struct snapshot_build *t)
{
	for (size_t i = 0; i < t->n; i++) {
		struct entry *e = &t->ents[i];
		bool inside;
		int r;
		if (e->type != E_SYMLINK || e->skipped) {
			continue;
		}
		if ((r = link_resolves_inside(t, e, &inside)) < 0) {
			return r;
		}
		if (!inside) {
			e->skipped = e->listed = true;
			if ((r = skip(t, e->path, "symlink outside the tree")) < 0) {
				return r;
			}
		}
	}
	return 0;
}

/* Files found unreadable while storing go to the skipped list, in path
 * order (the threads met them in any order). */
static int collect_unreadable(struct snapshot_build *t)
{
	for (size_t i = 0; i < t->n; i++) {
		if (t->ents[i].type == E_FILE && t->ents[i].skipped && !t->ents[i].listed) {
			int r = skip(t, t->ents[i].path, "unreadable");
			if (r < 0) {
				return r;
			}
			t->ents[i].listed = true;
		}
	}
	return 0;
}

int snapshot_build_finish(struct snapshot_build *t, struct blob_batch *batch,
                          struct snapshot_info *ret, char **cause)
{
	char *manifest = NULL;
	uint64_t files = 0, bytes = 0, dirs = 0, links = 0;
	size_t new_blobs = blob_batch_count(batch);
	char id[65];
	int r;

	if (t->n > 1) {
		qsort(t->ents, t->n, sizeof(*t->ents), cmp_entry);
	}
	/* The file index refers to walk order; it is no use after sorting. */
	t->nfiles = 0;
	r = drop_escaping_links(t);
	if (r == 0) {
		r = collect_unreadable(t);
	}
	if (r < 0) {
		goto out;
	}
	for (size_t i = 0; i < t->n; i++) {
		const struct entry *e = &t->ents[i];
		if (e->skipped) {
			continue;
		}
		if (e->type == E_FILE) {
			if (!e->hashed) {
				r = -EINVAL; /* the caller gave no content for it */
				goto out;
			}
			files++;
			bytes += e->size;
		} else if (e->type == E_DIR) {
			dirs++;
		} else {
			links++;
		}
	}
	manifest = snapshot_manifest_print(t->ents, t->n);
	if (!manifest) {
		r = -ENOMEM;
		goto out;
	}
	r = blob_batch_put_buf(batch, manifest, strlen(manifest), id);
	if (r < 0) {
		goto out;
	}
	r = blob_batch_commit(batch);
	if (r < 0) {
		if (cause) {
			char eb[128];
			*cause = msg_strdupf("cannot store the snapshot of %s: %s", t->source,
			                     snapshot_errstr(-r, eb));
		}
		goto out;
	}
	memset(ret, 0, sizeof(*ret));
	memcpy(ret->id, id, sizeof(id));
	ret->files = files;
	ret->bytes = bytes;
	ret->dirs = dirs;
	ret->symlinks = links;
	ret->skipped = t->skipped;
	ret->skipped_total = t->skipped_total;
	ret->read_files = t->read_files;
	ret->read_bytes = t->read_bytes;
	ret->cached_files = t->cached_files;
	ret->new_blobs = new_blobs;
	t->skipped = NULL;
	/* The entries go with the info (sorted, skipped ones included). */
	{
		struct held_tree *h = malloc(sizeof(*h));
		if (h) {
			h->ents = t->ents;
			h->n = t->n;
			t->ents = NULL;
			t->n = t->cap = 0;
			ret->tree = h;
		}
	}
out:
	free(manifest);
	return r;
}

int snapshot_build_list(struct snapshot_build *t, struct snapshot_info *ret, char **cause)
{
	struct snapshot_info info = {0};
	int r = snapshot_build_check(t, cause);

	if (list_entries(t, &info) < 0) {
		return -ENOMEM;
	}
	for (size_t i = 0; i < t->n; i++) {
		info.dirs += t->ents[i].type == E_DIR;
		info.symlinks += t->ents[i].type == E_SYMLINK;
	}
	info.files = t->nfile;
	info.bytes = t->bytes;
	info.skipped = t->skipped;
	info.skipped_total = t->skipped_total;
	t->skipped = NULL;
	*ret = info;
	return r;
}

/* Look each file up in the stat cache; a hit whose blob is stored needs no
 * reading. */
static void use_stat_cache(struct snapshot_build *t, const struct statcache *c)
{
	unsigned char digest[32];
	bool trusted = statcache_same_epoch(c);

	for (size_t i = 0; i < t->nfiles; i++) {
		struct entry *e = &t->ents[t->files[i]];
		if (!statcache_lookup(c, e->path, &e->st, digest)) {
			continue;
		}
		blob_hex(digest, e->hex);
		/* No blob has been removed since the cache was written when
		 * the epoch is the same; else look. */
		if (!trusted && !blob_exists(t->bs, e->hex)) {
			continue;
		}
		e->hashed = true;
		t->cached_files++;
		t->cached_bytes += e->size;
	}
}

static void save_stat_cache(struct snapshot_build *t, const char *path, const char *epoch,
                            int64_t now)
{
	struct statcache_rec *recs = calloc(t->nfiles ? t->nfiles : 1, sizeof(*recs));
	size_t n = 0;

	if (!recs) {
		return;
	}
	for (size_t i = 0; i < t->nfiles; i++) {
		const struct entry *e = &t->ents[t->files[i]];
		if (!e->hashed || e->skipped) {
			continue;
		}
		recs[n].path = e->path;
		statcache_rec_from_stat(&recs[n], &e->st);
		for (int k = 0; k < 32; k++) {
			unsigned hi = (unsigned)(e->hex[2 * k] <= '9' ? e->hex[2 * k] - '0'
			                                              : e->hex[2 * k] - 'a' + 10);
			unsigned lo =
			    (unsigned)(e->hex[2 * k + 1] <= '9' ? e->hex[2 * k + 1] - '0'
			                                        : e->hex[2 * k + 1] - 'a' + 10);
			recs[n].digest[k] = (unsigned char)(hi << 4 | lo);
		}
		n++;
	}
	/* Only saves reading next time: a failure here is not the snapshot's. */
	statcache_save(path, epoch, recs, n, now);
	free(recs);
}

/* A source inside the state directory would take the store's own files
 * (and change while it is taken); only a run's working directory, where a
 * run submits its children from, is a source there. */
static int source_outside_store(struct blobstore *bs, const char *source, char **cause)
{
	const char *root = blob_store_real_root(bs);
	char *real = realpath(source, NULL), *runs = NULL;
	size_t n = strlen(root);
	int r = 0;

	if (!real) {
		return 0; /* the walk says what is wrong with it */
	}
	if (strncmp(real, root, n) == 0 && (real[n] == '\0' || real[n] == '/')) {
		if (asprintf(&runs, "%s/" SNAPSHOT_RUNS_DIR "/", root) < 0) {
			runs = NULL;
			r = -ENOMEM;
		} else if (strncmp(real, runs, strlen(runs)) != 0 || !real[strlen(runs)]) {
			r = -EINVAL;
			if (cause) {
				*cause = msg_strdupf("%s is inside runyard's state directory %s: a "
				                     "snapshot of it would take the store itself; "
				                     "submit from the project's own directory",
				                     source, root);
			}
		}
	}
	free(runs);
	free(real);
	return r;
}

int snapshot_take_with(struct blobstore *bs, const char *source, const struct snapshot_opts *opts,
                       struct snapshot_info *ret, char **cause)
{
	struct snapshot_build *t = NULL;
	struct blob_batch *batches[STORE_THREADS_MAX] = {0};
	struct statcache *sc = NULL;
	size_t nthreads;
	char *walk_cause = NULL;
	int64_t read_done;
	char epoch[33];
	int r;

	r = source_outside_store(bs, source, cause);
	if (r < 0) {
		return r;
	}
	/* The epoch before anything is looked at: if a collection starts
	 * meanwhile, the cache saved below is written against the old one and
	 * so is checked, not trusted, next time. */
	memcpy(epoch, blob_store_epoch(bs), sizeof(epoch));
	r = snapshot_build_create(bs, source, opts, &t);
	if (r < 0) {
		return r;
	}
	r = walk_tree(source, &snapshot_build_walk_ops, t, &walk_cause);
	if (r == 0 && t->state_skip < 0) {
		r = t->state_skip;
	}
	if (r == -ECANCELED && t->cut) {
		r = 0;
	}
	if (r < 0) {
		if (cause) {
			*cause = t->cause ? t->cause : walk_cause;
			if (t->cause) {
				t->cause = NULL;
			} else {
				walk_cause = NULL;
			}
		}
		goto out;
	}
	if (t->list_only) {
		r = snapshot_build_list(t, ret, cause);
		goto out;
	}
	r = snapshot_build_check(t, cause);
	if (r < 0) {
		goto out;
	}

	if (opts->stat_cache) {
		r = statcache_load(opts->stat_cache, epoch, &sc);
		if (r < 0) {
			goto out;
		}
		use_stat_cache(t, sc);
	}
	/* Threads for what is left to read: none for an unchanged tree. */
	nthreads = store_threads(t->nfile - t->cached_files, t->bytes - t->cached_bytes);
	for (size_t k = 0; k < nthreads; k++) {
		r = blob_batch_create(bs, &batches[k]);
		if (r < 0) {
			goto out;
		}
	}
	r = store_all(t, batches, nthreads, cause);
	if (r < 0) {
		goto out;
	}
	/* Every file has been read by now: what the cache records from here is
	 * racy only if it changed after this moment. */
	read_done = statcache_now_ns();
	/* A cache that answered for every file, and knows no other, would be
	 * written again the same (its old time is as good as a new one). */
	if (opts->stat_cache &&
	    !(t->cached_files == t->nfile && statcache_count(sc) == t->nfile &&
	      statcache_same_epoch(sc))) {
		save_stat_cache(t, opts->stat_cache, epoch, read_done);
	}
	r = snapshot_build_finish(t, batches[0], ret, cause);
out:
	for (size_t k = 0; k < STORE_THREADS_MAX; k++) {
		blob_batch_destroy(batches[k]);
	}
	statcache_destroy(sc);
	snapshot_build_destroy(t);
	free(walk_cause);
	return r;
}

int snapshot_take(struct blobstore *bs, const char *source, const struct walk_ops *matcher,
                  void *matcher_ud, const struct snapshot_limits *lim, struct snapshot_info *ret,
                  char **cause)
{
	struct snapshot_opts opts = {.matcher = matcher, .matcher_ud = matcher_ud};

	if (lim) {
		opts.limits = *lim;
	}
	return snapshot_take_with(bs, source, &opts, ret, cause);
}

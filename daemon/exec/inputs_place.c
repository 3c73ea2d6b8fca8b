/* Placing a run's inputs in Preparing: loading what was recorded at
 * submit, downloading URLs through the fetch manager (with progress),
 * copying each input into the working directory or making its mount point
 * on the thread pool, creating the output directories and recording what
 * was placed; then what the run is started with (its RUNYARD_INPUT_ and
 * RUNYARD_OUTPUT_ variables, the supervisor's bind mounts) and the inputs'
 * part of the run object. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>
#include <uv.h>

#include "blob.h"
#include "context.h"
#include "datasets.h"
#include "fetch.h"
#include "inputs_priv.h"
#include "logs.h"
#include "msg.h"
#include "run.h"
#include "snapshot.h"
#include "store.h"
#include "util.h"

#define PROGRESS_MS 1000

/* ---- Preparing ---- */

struct item {
	struct inputs_job *job;
	int64_t idx;
	char *name, *source, *mode, *path, *sha256, *hash;
	enum src_kind kind;
	/* a download */
	struct fetch_req *req;
	struct fetch_progress prog;
	bool prog_new, fetched_cached;
	char *fetched; /* the cached file */
	/* what was placed */
	const char *out_kind; /* "file" or "dir" */
	char out_hash[65];
	uint64_t size, files;
};

struct inputs_job {
	struct inputs_job *next; /* jobs list */
	struct run *r;
	inputs_ready_fn cb;
	struct item *items;
	size_t n;
	char **outdirs; /* output paths to create, NULL-terminated */
	uv_timer_t tick;
	uv_work_t work;
	int fetching;
	bool working; /* in the thread pool */
	bool canceled;
	bool finishing; /* cb called or about to be: no more progress */
	bool closed;    /* tick closed */
	bool mounts;
	int err;
	char *cause;
	/* the blob store's hold, from placing until what was placed is recorded */
	struct blobstore *bs;
	uint64_t hold;
};

static struct inputs_job *jobs;

static void item_finish(struct item *it)
{
	free(it->name);
	free(it->source);
	free(it->mode);
	free(it->path);
	free(it->sha256);
	free(it->hash);
	free(it->fetched);
}

static void job_free(struct inputs_job *j)
{
	blob_release(j->bs, j->hold);
	for (size_t i = 0; i < j->n; i++) {
		item_finish(&j->items[i]);
	}
	free(j->items);
	for (char **p = j->outdirs; p && *p; p++) {
		free(*p);
	}
	free(j->outdirs);
	free(j->cause);
	free(j);
}

static void job_unlink(struct inputs_job *j)
{
	for (struct inputs_job **pp = &jobs; *pp; pp = &(*pp)->next) {
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	}
}

static void tick_close_cb(uv_handle_t *h)
{
	struct inputs_job *j = h->data;

	j->closed = true;
	if (!j->working) {
		job_free(j);
	}
}

char *inputs_dup_col(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? strdup((const char *)t) : NULL;
}

/* The run's declared inputs and outputs from the store. */
static int job_load(struct inputs_job *j)
{
	struct daemon *d = j->r->d;
	sqlite3_stmt *st;
	size_t cap = 0, nout = 0;
	int err = 0;

	st = store_prepare(d->store, "inputs",
	                   "SELECT idx, name, source, mode, path, sha256, hash FROM run_inputs "
	                   "WHERE run_seq = ?1 ORDER BY idx");
	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, j->r->seq);
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (j->n == cap) {
			cap = cap ? cap * 2 : 4;
			struct item *n = realloc(j->items, cap * sizeof(*n));
			if (!n) {
				err = -ENOMEM;
				break;
			}
			j->items = n;
		}
		struct item *it = &j->items[j->n++];
		memset(it, 0, sizeof(*it));
		it->job = j;
		it->idx = sqlite3_column_int64(st, 0);
		it->name = inputs_dup_col(st, 1);
		it->source = inputs_dup_col(st, 2);
		it->mode = inputs_dup_col(st, 3);
		it->path = inputs_dup_col(st, 4);
		it->sha256 = inputs_dup_col(st, 5);
		it->hash = inputs_dup_col(st, 6);
		if (!it->name || !it->source || !it->mode || !it->path) {
			err = -ENOMEM;
			break;
		}
		it->kind = inputs_source_kind(it->source);
		j->mounts |= strcmp(it->mode, "mount") == 0;
	}
	sqlite3_finalize(st);
	if (err < 0) {
		return err;
	}
	st = store_prepare(d->store, "inputs",
	                   "SELECT path FROM run_outputs WHERE run_seq = ?1 ORDER BY name");
	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, j->r->seq);
	j->outdirs = calloc(INPUTS_MAX + 1, sizeof(char *));
	while (j->outdirs && nout < INPUTS_MAX && sqlite3_step(st) == SQLITE_ROW) {
		j->outdirs[nout++] = inputs_dup_col(st, 0);
	}
	sqlite3_finalize(st);
	return j->outdirs ? 0 : -ENOMEM;
}

static void human_size(double b, char buf[32])
{
	const char *u[] = {"B", "KB", "MB", "GB", "TB"};
	int i = 0;

	while (b >= 1000 && i < 4) {
		b /= 1000;
		i++;
	}
	snprintf(buf, 32, i ? "%.1f %s" : "%.0f %s", b, u[i]);
}

static void progress_line(struct item *it)
{
	char done[32], total[32], rate[32], *line;

	human_size((double)it->prog.done, done);
	human_size(it->prog.rate, rate);
	if (it->prog.total) {
		human_size((double)it->prog.total, total);
		line = msg_strdupf("input %s: %s of %s (%.0f%%), %s/s from %s", it->name, done,
		                   total, 100.0 * (double)it->prog.done / (double)it->prog.total,
		                   rate, it->source);
	} else {
		line = msg_strdupf("input %s: %s, %s/s from %s", it->name, done, rate, it->source);
	}
	if (line) {
		logs_append(it->job->r, LOGS_STREAM_INPUT, line);
	}
	free(line);
}

static void tick_cb(uv_timer_t *t)
{
	struct inputs_job *j = t->data;

	for (size_t i = 0; i < j->n && !j->finishing; i++) {
		if (j->items[i].prog_new) {
			j->items[i].prog_new = false;
			progress_line(&j->items[i]);
		}
	}
}

/* Record what was placed (loop thread). */
static int job_store(struct inputs_job *j)
{
	struct daemon *d = j->r->d;
	sqlite3_stmt *st =
	    store_prepare(d->store, "inputs",
	                  "UPDATE run_inputs SET kind = ?3, hash = ?4, size = ?5, "
	                  "files = ?6, placed_at = ?7 WHERE run_seq = ?1 AND idx = ?2");
	double now = util_now();
	int err = 0;

	if (!st || store_begin(d->store) < 0) {
		sqlite3_finalize(st);
		return -EIO;
	}
	for (size_t i = 0; i < j->n && err == 0; i++) {
		struct item *it = &j->items[i];
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, j->r->seq);
		sqlite3_bind_int64(st, 2, it->idx);
		sqlite3_bind_text(st, 3, it->out_kind ? it->out_kind : "dir", -1, SQLITE_STATIC);
		if (it->out_hash[0]) {
			sqlite3_bind_text(st, 4, it->out_hash, -1, SQLITE_TRANSIENT);
		} else {
			sqlite3_bind_null(st, 4);
		}
		if (it->out_hash[0] || it->out_kind) {
			sqlite3_bind_int64(st, 5, (int64_t)it->size);
			sqlite3_bind_int64(st, 6, (int64_t)it->files);
		}
		sqlite3_bind_double(st, 7, now);
		err = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
	}
	sqlite3_finalize(st);
	if (err == 0 && store_commit(d->store) == 0) {
		return 0;
	}
	store_rollback(d->store);
	return -EIO;
}

static void job_finish(struct inputs_job *j)
{
	struct run *r = j->r;
	inputs_ready_fn cb = j->cb;
	char *cause = j->cause;
	int err = j->err;

	if (j->finishing) {
		return;
	}
	j->finishing = true;
	j->cause = NULL;
	if (j->canceled) {
		err = -ECANCELED;
	}
	if (err == 0 && job_store(j) < 0) {
		err = -EIO;
		free(cause);
		cause =
		    msg_strdupf("recording the run's inputs failed: %s", store_errmsg(r->d->store));
	}
	if (err == 0 && j->n) {
		char *line = msg_strdupf("inputs: %zu placed", j->n);
		if (line) {
			logs_append(r, LOGS_STREAM_INPUT, line);
		}
		free(line);
	}
	r->inputs = NULL;
	r->busy = false;
	job_unlink(j);
	if (!uv_is_closing((uv_handle_t *)&j->tick)) {
		uv_close((uv_handle_t *)&j->tick, tick_close_cb);
	}
	cb(r, err, cause);
	free(cause);
}

static void finish_later_cb(uv_timer_t *t)
{
	job_finish(t->data);
}

/* Whether this process may make mount namespaces: what the supervisor
 * does for mounted inputs, tried once in a child that does nothing else. */
static int mount_ns_probe(void)
{
	static int known = 1; /* 1: not tried yet */
	int status;
	pid_t pid;

	if (known <= 0) {
		return known;
	}
	pid = fork();
	if (pid < 0) {
		return -errno;
	}
	if (pid == 0) {
		int flags = CLONE_NEWNS | (geteuid() != 0 ? CLONE_NEWUSER : 0);
		_exit(unshare(flags) == 0 ? 0 : (errno & 0x7f));
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			return -errno;
		}
	}
	known = WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0
	        : WIFEXITED(status)                           ? -WEXITSTATUS(status)
	                                                      : -EPERM;
	return known;
}

/* mkdir -p of the parent of path (relative) inside the working directory,
 * through real directories: a snapshot's symlink there (inputs -> ..) would
 * have the daemon write outside the run's directory. */
static int make_parent(const char *workdir, const char *path, char **cause, const char *what)
{
	char *p = strdup(path), *slash, *link = NULL;
	int err = 0;

	if (!p) {
		return -ENOMEM;
	}
	slash = strrchr(p, '/');
	if (slash) {
		*slash = '\0';
		err = util_mkdir_beneath(workdir, p, 0755, &link);
	}
	if (err == -ELOOP) {
		*cause = msg_strdupf("%s: %s is a symlink in the working directory (the snapshot "
		                     "has it); inputs and outputs go only through real directories",
		                     what, link ? link : p);
	} else if (err < 0) {
		*cause = msg_strdupf("%s: cannot create the directories of %s: %s", what, path,
		                     strerror(-err));
	}
	free(link);
	free(p);
	return err;
}

/* Place one input at workdir/path (thread pool). */
static int place(struct inputs_job *j, struct item *it, char **cause)
{
	struct daemon *d = j->r->d;
	bool mount = strcmp(it->mode, "mount") == 0, download = strcmp(it->mode, "download") == 0;
	char *dest = util_path_join(j->r->workdir, it->path), *file = NULL, *target = NULL;
	struct snapshot_info info = {0};
	struct stat st;
	int err;

	if (!dest) {
		return -ENOMEM;
	}
	if (lstat(dest, &st) == 0) {
		*cause = msg_strdupf("input %s: %s already exists in the working directory (the "
		                     "snapshot has it); choose another path",
		                     it->name, it->path);
		err = -EEXIST;
		goto out;
	}
	char what[300];
	snprintf(what, sizeof(what), "input %s", it->name);
	err = make_parent(j->r->workdir, it->path, cause, what);
	if (err < 0) {
		goto out;
	}
	if (mount) {
		/* A mount point; the supervisor binds the source read-only over
		 * it in the run's own mount namespace. */
		if (it->kind == SRC_DATASET) {
			char *dir = NULL;
			err = datasets_mount_dir(d, it->hash, &dir, cause);
			free(dir);
			if (err < 0) {
				goto out;
			}
		} else if (stat(it->source, &st) < 0 || !S_ISDIR(st.st_mode)) {
			err = -ENOTDIR;
			*cause = msg_strdupf("input %s: %s is no longer a directory", it->name,
			                     it->source);
			goto out;
		}
		if (mkdir(dest, 0755) < 0) {
			err = -errno;
			*cause = msg_strdupf("input %s: cannot create %s: %s", it->name, it->path,
			                     strerror(errno));
			goto out;
		}
		it->out_kind = "dir";
		if (it->kind == SRC_DATASET) {
			snprintf(it->out_hash, sizeof(it->out_hash), "%s", it->hash);
		}
		err = 0;
		goto out;
	}
	if (it->kind == SRC_DATASET) {
		it->out_kind = "dir";
		snprintf(it->out_hash, sizeof(it->out_hash), "%s", it->hash);
		if (mkdir(dest, 0755) < 0) {
			err = -errno;
			goto out;
		}
		err = snapshot_materialise(d->blobs, it->hash, dest, cause);
		if (err == 0) {
			/* size and files came with the submit */
			it->out_kind = "dir";
		}
		goto out;
	}
	const char *from = it->kind == SRC_URL ? it->fetched : it->source;
	if (stat(from, &st) < 0) {
		err = -errno;
		*cause = msg_strdupf("input %s: %s: %s", it->name, it->source, strerror(errno));
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		/* A tree is stored like a snapshot and materialised from it, so
		 * the run's record names its contents by one hash. */
		struct snapshot_limits lim = {UINT64_MAX, UINT64_MAX};
		err = snapshot_take(d->blobs, from, NULL, NULL, &lim, &info, cause);
		if (err < 0) {
			goto out;
		}
		if (mkdir(dest, 0755) < 0) {
			err = -errno;
			goto out;
		}
		err = snapshot_materialise(d->blobs, info.id, dest, cause);
		if (err < 0) {
			goto out;
		}
		it->out_kind = "dir";
		snprintf(it->out_hash, sizeof(it->out_hash), "%s", info.id);
		it->size = info.bytes;
		it->files = info.files;
		goto out;
	}
	err = blob_put_file(d->blobs, AT_FDCWD, from, it->out_hash, &it->size);
	if (err < 0) {
		*cause = msg_strdupf("input %s: cannot read %s: %s", it->name, it->source,
		                     strerror(-err));
		goto out;
	}
	if (it->sha256 && strcmp(it->sha256, it->out_hash) != 0) {
		err = -EBADMSG;
		*cause = msg_strdupf("input %s: %s has sha256 %s, not the expected %s", it->name,
		                     it->source, it->out_hash, it->sha256);
		goto out;
	}
	it->files = 1;
	if (download) {
		/* download: a directory holding the file under its own name */
		file = it->kind == SRC_URL ? inputs_url_filename(it->source)
		                           : strdup(strrchr(it->source, '/') + 1);
		target = file ? util_path_join(dest, file) : NULL;
		if (!target) {
			err = -ENOMEM;
			goto out;
		}
		if (mkdir(dest, 0755) < 0) {
			err = -errno;
			goto out;
		}
		it->out_kind = "dir";
	} else {
		it->out_kind = "file";
	}
	err = blob_copy_out(d->blobs, it->out_hash, AT_FDCWD, target ? target : dest,
	                    it->kind == SRC_URL ? 0644 : (st.st_mode & 0755) | 0600);
	if (err < 0) {
		*cause = msg_strdupf("input %s: cannot write %s: %s", it->name, it->path,
		                     strerror(-err));
	}
out:
	if (err < 0 && !*cause) {
		*cause = msg_strdupf("input %s (%s): %s", it->name, it->source, strerror(-err));
	}
	snapshot_info_finish(&info);
	free(file);
	free(target);
	free(dest);
	return err;
}

static void work_cb(uv_work_t *w)
{
	struct inputs_job *j = w->data;

	if (j->mounts) {
		int err = mount_ns_probe();
		if (err < 0) {
			j->err = err;
			j->cause = msg_strdupf("mounted inputs need a mount namespace for the run, "
			                       "and making one failed: %s; use mode copy instead",
			                       strerror(-err));
			return;
		}
	}
	for (size_t i = 0; i < j->n && !j->canceled; i++) {
		j->err = place(j, &j->items[i], &j->cause);
		if (j->err < 0) {
			return;
		}
	}
	for (char **p = j->outdirs; p && *p; p++) {
		char *link = NULL;
		j->err = util_mkdir_beneath(j->r->workdir, *p, 0755, &link);
		if (j->err < 0) {
			j->cause = j->err == -ELOOP
			               ? msg_strdupf("the output directory %s: %s is a symlink in the "
			                             "working directory (the snapshot has it); outputs "
			                             "go only through real directories",
			                             *p, link ? link : *p)
			               : msg_strdupf("cannot create the output directory %s: %s", *p,
			                             strerror(-j->err));
			free(link);
			return;
		}
	}
}

static void work_done_cb(uv_work_t *w, int status)
{
	struct inputs_job *j = w->data;

	j->working = false;
	if (j->closed || j->r->d->stopping) {
		/* let go of at shutdown while working */
		struct run *r = j->r;
		r->busy = false;
		run_release(r);
		if (j->closed) {
			job_free(j);
		}
		return;
	}
	if (status == UV_ECANCELED) {
		j->canceled = true;
	}
	job_finish(j);
}

static void start_work(struct inputs_job *j)
{
	int err;

	if (j->err < 0 || j->canceled) {
		uv_timer_start(&j->tick, finish_later_cb, 0, 0);
		return;
	}
	j->work.data = j;
	if (!j->hold) {
		j->bs = j->r->d->blobs;
		j->hold = blob_hold(j->bs);
	}
	err = uv_queue_work(j->r->d->loop, &j->work, work_cb, work_done_cb);
	if (err < 0) {
		j->err = err;
		j->cause = msg_strdupf("cannot queue the placing of inputs: %s", uv_strerror(err));
		uv_timer_start(&j->tick, finish_later_cb, 0, 0);
		return;
	}
	j->working = true;
}

static void item_progress_cb(void *ud, const struct fetch_progress *p)
{
	struct item *it = ud;

	it->prog = *p;
	it->prog_new = true;
}

static void item_done_cb(void *ud, const struct fetch_result *res)
{
	struct item *it = ud;
	struct inputs_job *j = it->job;

	it->req = NULL;
	j->fetching--;
	if (res->err < 0) {
		if (j->err == 0) {
			j->err = res->err;
			j->cause = msg_strdupf("input %s: %s", it->name,
			                       res->cause ? res->cause : strerror(-res->err));
			/* the others are not needed any more */
			for (size_t i = 0; i < j->n; i++) {
				if (j->items[i].req) {
					fetch_cancel(j->items[i].req);
					j->items[i].req = NULL;
					j->fetching--;
				}
			}
		}
	} else {
		it->fetched = strdup(res->path);
		it->fetched_cached = res->from_cache;
		it->prog.done = it->prog.total = res->size;
		if (!it->fetched && j->err == 0) {
			j->err = -ENOMEM;
		}
		char *line = msg_strdupf("input %s: %s %s (%llu bytes, sha256 %.12s)", it->name,
		                         res->from_cache ? "cached" : "downloaded", it->source,
		                         (unsigned long long)res->size, res->sha256);
		if (line) {
			logs_append(j->r, LOGS_STREAM_INPUT, line);
		}
		free(line);
		it->prog_new = false;
	}
	if (j->fetching == 0) {
		start_work(j);
	}
}

int inputs_prepare(struct run *r, inputs_ready_fn cb, char **cause)
{
	struct inputs_job *j = calloc(1, sizeof(*j));
	int err;

	if (!j) {
		return -ENOMEM;
	}
	j->r = r;
	j->cb = cb;
	err = job_load(j);
	if (err < 0) {
		*cause = msg_strdupf("reading the run's inputs failed: %s", strerror(-err));
		job_free(j);
		return err;
	}
	if (j->n == 0 && (!j->outdirs || !j->outdirs[0])) {
		job_free(j);
		return 0;
	}
	uv_timer_init(r->d->loop, &j->tick);
	j->tick.data = j;
	j->next = jobs;
	jobs = j;
	r->inputs = j;
	r->busy = true;
	for (size_t i = 0; i < j->n && j->err == 0; i++) {
		struct item *it = &j->items[i];
		struct fetch_opts o = {.url = it->source, .sha256 = it->sha256};
		if (it->kind != SRC_URL) {
			continue;
		}
		if (!r->d->fetch) {
			j->err = -ENOTSUP;
			j->cause = msg_strdupf("input %s: this runyardd cannot download %s",
			                       it->name, it->source);
			break;
		}
		err = fetch_start(r->d->fetch, &o, item_progress_cb, item_done_cb, it, &it->req);
		if (err < 0) {
			j->err = err;
			j->cause = msg_strdupf("input %s: cannot start downloading %s: %s",
			                       it->name, it->source, strerror(-err));
			break;
		}
		j->fetching++;
	}
	if (j->err < 0) {
		for (size_t i = 0; i < j->n; i++) {
			fetch_cancel(j->items[i].req);
			j->items[i].req = NULL;
		}
		j->fetching = 0;
	}
	if (j->fetching > 0) {
		uv_timer_start(&j->tick, tick_cb, PROGRESS_MS, PROGRESS_MS);
	} else {
		start_work(j);
	}
	return 1;
}

void inputs_cancel(struct run *r)
{
	struct inputs_job *j = r->inputs;

	if (!j || j->canceled || j->finishing) {
		return;
	}
	j->canceled = true;
	for (size_t i = 0; i < j->n; i++) {
		fetch_cancel(j->items[i].req);
		j->items[i].req = NULL;
	}
	if (j->fetching > 0) {
		j->fetching = 0;
		uv_timer_stop(&j->tick);
		uv_timer_start(&j->tick, finish_later_cb, 0, 0);
	}
	/* placing in the thread pool: it stops between inputs, and its done
	 * callback finishes */
}

void inputs_shutdown(struct daemon *d)
{
	struct inputs_job **pp = &jobs;

	while (*pp) {
		struct inputs_job *j = *pp;
		if (j->r->d != d) {
			pp = &j->next;
			continue;
		}
		*pp = j->next;
		j->finishing = true;
		j->canceled = true;
		for (size_t i = 0; i < j->n; i++) {
			fetch_cancel(j->items[i].req);
			j->items[i].req = NULL;
		}
		j->r->inputs = NULL;
		if (!j->working) {
			/* else the thread uses the run till its done callback */
			j->r->busy = false;
			run_release(j->r);
		}
		uv_close((uv_handle_t *)&j->tick, tick_close_cb);
	}
	datasets_shutdown(d);
}

/* ---- the run's world ---- */

static int count_rows(struct daemon *d, const char *sql, int64_t seq)
{
	sqlite3_stmt *st = store_prepare(d->store, "inputs", sql);
	int n = 0;

	if (st) {
		sqlite3_bind_int64(st, 1, seq);
		if (sqlite3_step(st) == SQLITE_ROW) {
			n = sqlite3_column_int(st, 0);
		}
		sqlite3_finalize(st);
	}
	return n;
}

size_t inputs_env_count(struct run *r)
{
	return (size_t)count_rows(r->d,
	                          "SELECT (SELECT count(*) FROM run_inputs WHERE run_seq = ?1) "
	                          "+ (SELECT count(*) FROM run_outputs WHERE run_seq = ?1)",
	                          r->seq);
}

int inputs_env_add(struct run *r, char **env, size_t *n)
{
	static const char *const sql[2] = {
	    "SELECT name, path FROM run_inputs WHERE run_seq = ?1 ORDER BY idx",
	    "SELECT name, path FROM run_outputs WHERE run_seq = ?1 ORDER BY name",
	};
	size_t max = inputs_env_count(r), added = 0;

	for (int k = 0; k < 2; k++) {
		sqlite3_stmt *st = store_prepare(r->d->store, "inputs", sql[k]);
		if (!st) {
			return -EIO;
		}
		sqlite3_bind_int64(st, 1, r->seq);
		while (added < max && sqlite3_step(st) == SQLITE_ROW) {
			env[(*n)++] = msg_strdupf("RUNYARD_%s_%s=%s/%s", k ? "OUTPUT" : "INPUT",
			                          sqlite3_column_text(st, 0), r->workdir,
			                          sqlite3_column_text(st, 1));
			added++;
		}
		sqlite3_finalize(st);
	}
	return 0;
}

char **inputs_supervisor_args(struct run *r)
{
	sqlite3_stmt *st = store_prepare(r->d->store, "inputs",
	                                 "SELECT source, path, hash FROM run_inputs WHERE "
	                                 "run_seq = ?1 AND mode = 'mount' ORDER BY idx");
	char **v = calloc(3 * INPUTS_MAX + 1, sizeof(char *));
	size_t n = 0;

	if (!st || !v) {
		sqlite3_finalize(st);
		free(v);
		return NULL;
	}
	sqlite3_bind_int64(st, 1, r->seq);
	while (n + 3 <= 3 * INPUTS_MAX && sqlite3_step(st) == SQLITE_ROW) {
		const char *src = (const char *)sqlite3_column_text(st, 0);
		char *dir = NULL, *cause = NULL;
		if (inputs_source_kind(src) == SRC_DATASET) {
			/* made in Preparing; this only names it */
			datasets_mount_dir(r->d, (const char *)sqlite3_column_text(st, 2), &dir,
			                   &cause);
			free(cause);
		} else {
			dir = strdup(src);
		}
		v[n++] = strdup("--ro-bind");
		v[n++] = dir;
		v[n++] = msg_strdupf("%s/%s", r->workdir, sqlite3_column_text(st, 1));
		if (!v[n - 3] || !v[n - 2] || !v[n - 1]) {
			for (size_t i = 0; i < n; i++) {
				free(v[i]);
			}
			free(v);
			v = NULL;
			break;
		}
	}
	sqlite3_finalize(st);
	return v;
}

/* ---- the run object ---- */

static void add_col(cJSON *o, const char *key, sqlite3_stmt *st, int i)
{
	switch (sqlite3_column_type(st, i)) {
	case SQLITE_NULL:
		cJSON_AddNullToObject(o, key);
		break;
	case SQLITE_INTEGER:
	case SQLITE_FLOAT:
		cJSON_AddNumberToObject(o, key, sqlite3_column_double(st, i));
		break;
	default:
		cJSON_AddStringToObject(o, key, (const char *)sqlite3_column_text(st, i));
	}
}

int inputs_json(struct daemon *d, int64_t seq, cJSON *run)
{
	sqlite3_stmt *st = store_prepare(d->store, "inputs",
	                                 "SELECT idx, name, source, mode, path, sha256, dataset, "
	                                 "dataset_version, kind, hash, size, files, placed_at FROM "
	                                 "run_inputs WHERE run_seq = ?1 ORDER BY idx");
	cJSON *arr = cJSON_AddArrayToObject(run, "inputs"), *outs;
	struct run *r = run_find(d, seq);
	struct inputs_job *j = r ? r->inputs : NULL;

	if (!st || !arr) {
		sqlite3_finalize(st);
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	while (sqlite3_step(st) == SQLITE_ROW) {
		static const char *const keys[] = {NULL,   "name",   "source",  "mode",
		                                   "path", "sha256", "dataset", "version",
		                                   "kind", "hash",   "size",    "files"};
		cJSON *o = cJSON_CreateObject();
		int64_t idx = sqlite3_column_int64(st, 0);
		for (int i = 1; i < 12; i++) {
			add_col(o, keys[i], st, i);
		}
		if (sqlite3_column_type(st, 12) != SQLITE_NULL) {
			msg_add_time(o, "placed_at", sqlite3_column_double(st, 12));
		} else {
			cJSON_AddNullToObject(o, "placed_at");
		}
		for (size_t i = 0; j && i < j->n; i++) {
			struct item *it = &j->items[i];
			if (it->idx == idx && it->kind == SRC_URL) {
				cJSON *p = cJSON_AddObjectToObject(o, "progress");
				cJSON_AddStringToObject(p, "state",
				                        it->req       ? "downloading"
				                        : it->fetched ? "downloaded"
				                                      : "waiting");
				cJSON_AddNumberToObject(p, "bytes", (double)it->prog.done);
				cJSON_AddNumberToObject(p, "total", (double)it->prog.total);
				cJSON_AddNumberToObject(p, "rate", it->prog.rate);
			}
		}
		cJSON_AddItemToArray(arr, o);
	}
	sqlite3_finalize(st);
	st = store_prepare(d->store, "inputs",
	                   "SELECT name, path, dest, stored, files, bytes, manifest, error FROM "
	                   "run_outputs WHERE run_seq = ?1 ORDER BY name");
	outs = cJSON_AddArrayToObject(run, "outputs_to");
	if (!st || !outs) {
		sqlite3_finalize(st);
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	while (sqlite3_step(st) == SQLITE_ROW) {
		static const char *const keys[] = {"name",  "path",  "dir",      "stored",
		                                   "files", "bytes", "manifest", "error"};
		cJSON *o = cJSON_CreateObject();
		for (int i = 0; i < 8; i++) {
			add_col(o, keys[i], st, i);
		}
		cJSON_AddItemToArray(outs, o);
	}
	sqlite3_finalize(st);
	return 0;
}

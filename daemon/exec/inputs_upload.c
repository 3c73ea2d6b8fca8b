/* Uploading a run's outputs to datastores at Finalizing: each declared
 * output is snapshotted and copied to a datastore directory (materialised
 * under a temporary name, flushed, renamed) or PUT file by file to an
 * HTTP datastore, on the thread pool; an upload found already done is
 * recognised and not repeated, and the result is recorded per output. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <uv.h>

#include "blob.h"
#include "context.h"
#include "fetch.h"
#include "inputs_priv.h"
#include "log.h"
#include "msg.h"
#include "run.h"
#include "snapshot.h"
#include "store.h"
#include "util.h"

/* ---- Finalizing: outputs to datastores ---- */

struct upload {
	uv_work_t work;
	struct run *r;
	inputs_ready_fn cb;
	size_t n;
	struct {
		char *name, *path, *dir;
		char *stored, *error;
		struct snapshot_info info;
	} o[INPUTS_MAX];
	int err;
	char *cause;
	struct blobstore *bs;
	uint64_t hold; /* the blob store's, until the manifests are recorded */
};

static void upload_free(struct upload *u)
{
	blob_release(u->bs, u->hold);
	for (size_t i = 0; i < u->n; i++) {
		free(u->o[i].name);
		free(u->o[i].path);
		free(u->o[i].dir);
		free(u->o[i].stored);
		free(u->o[i].error);
		snapshot_info_finish(&u->o[i].info);
	}
	free(u->cause);
	free(u);
}

struct put_ctx {
	struct daemon *d;
	const char *src;  /* the output directory */
	const char *base; /* URL/<run id> */
	long timeout_ms;  /* the whole output's limit, for the message */
	uint64_t deadline; /* uv_hrtime() by which every PUT must have ended */
	char *cause;
};

/* The body a datastore answers a PUT with is not ours to keep: without
 * this, curl writes it to the daemon's stdout, as much as the server sends. */
static size_t put_discard_cb(char *data, size_t size, size_t nmemb, void *ud)
{
	(void)data;
	(void)ud;
	return size * nmemb;
}

/* A PUT stops when the daemon does: a datastore that takes the body and
 * never answers would otherwise hold the worker thread, and the daemon's
 * stop, for as long as it likes. d->stopping is written on the loop; a
 * relaxed read here is enough to see it soon. */
static int put_progress_cb(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                           curl_off_t ulnow)
{
	struct put_ctx *pc = ud;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return __atomic_load_n(&pc->d->stopping, __ATOMIC_RELAXED) ? 1 : 0;
}

/* PUT one file of an output to base/<its path, each component escaped>:
 * an HTTP datastore. Blocking, on a worker thread. */
static int put_cb(void *ud, const struct snapshot_entry *e)
{
	struct put_ctx *pc = ud;
	char *path = NULL, *url = NULL, errbuf[CURL_ERROR_SIZE] = "";
	CURL *c = NULL;
	FILE *f = NULL;
	long status = 0;
	size_t ulen = 0;
	int err = 0;

	if (e->type != SNAPSHOT_FILE) {
		return 0;
	}
	uint64_t now = uv_hrtime();
	if (now >= pc->deadline) {
		pc->cause = msg_strdupf("%s: the upload did not end within its time limit of %g s "
		                        "(runyardd --download-timeout)",
		                        pc->base, pc->timeout_ms / 1000.0);
		return -ETIMEDOUT;
	}
	/* What is left of the output's time, rounded up: at least 1 ms (0 is
	 * no limit for curl). */
	long left_ms = (long)((pc->deadline - now + 999999) / 1000000);
	path = util_path_join(pc->src, e->path);
	c = curl_easy_init();
	FILE *u = open_memstream(&url, &ulen);
	if (!path || !c || !u) {
		if (u) {
			fclose(u);
		}
		err = -ENOMEM;
		goto out;
	}
	fputs(pc->base, u);
	for (const char *p = e->path; *p;) {
		size_t n = strcspn(p, "/");
		char *esc = curl_easy_escape(c, p, (int)n);
		fprintf(u, "/%s", esc ? esc : "");
		curl_free(esc);
		p += n;
		p += *p == '/';
	}
	if (fclose(u) != 0) {
		err = -ENOMEM;
		goto out;
	}
	f = fopen(path, "rb");
	if (!f) {
		err = -errno;
		pc->cause = msg_strdupf("cannot read %s: %s", path, strerror(errno));
		goto out;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_READDATA, f);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, put_discard_cb);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, put_progress_cb);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, pc);
	curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)e->size);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, left_ms > 0 ? left_ms : 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	CURLcode rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (rc == CURLE_OPERATION_TIMEDOUT && uv_hrtime() + 50000000 >= pc->deadline) {
		/* Ours, not curl's stall or connect limit: say which limit it was.
		 * curl counts in whole milliseconds and may stop a hair early, so
		 * "at the deadline" is within 50 ms of it. */
		err = -ETIMEDOUT;
		pc->cause = msg_strdupf("PUT %s: the upload did not end within its time limit of "
		                        "%g s (runyardd --download-timeout)",
		                        url, pc->timeout_ms / 1000.0);
	} else if (rc != CURLE_OK) {
		err = -EIO;
		pc->cause =
		    msg_strdupf("PUT %s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
	} else if (status < 200 || status > 299) {
		err = -EIO;
		pc->cause = msg_strdupf("PUT %s: HTTP %ld", url, status);
	}
out:
	if (f) {
		fclose(f);
	}
	curl_easy_cleanup(c);
	free(url);
	free(path);
	return err;
}

/* Remove dir/.<run id>.*.tmp: what an upload of this run left when the
 * daemon died in the middle of it (the run is finalized again after a
 * restart, under a new random name). Run ids are unique, so nothing of
 * another run or of the user's matches. */
static void remove_stale_tmps(const char *dir, const char *run_id)
{
	DIR *dh = opendir(dir);
	struct dirent *de;
	size_t idlen = strlen(run_id);

	if (!dh) {
		return;
	}
	while ((de = readdir(dh))) {
		const char *n = de->d_name;
		size_t len = strlen(n);
		if (n[0] == '.' && len > idlen + 6 && strncmp(n + 1, run_id, idlen) == 0 &&
		    n[idlen + 1] == '.' && strcmp(n + len - 4, ".tmp") == 0) {
			char *p = util_path_join(dir, n);
			if (p) {
				util_rm_rf(p);
			}
			free(p);
		}
	}
	closedir(dh);
}

/* ---- an upload found done ---- */

struct same_ctx {
	const char *root; /* DIR/<run id> */
	uint64_t entries; /* the manifest's, so far */
	bool same;
};

/* The SHA-256 of a regular file (not following a symlink), as hex. */
static int file_sha256(const char *path, char ret_hex[65])
{
	unsigned char buf[65536], md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int fd = util_open_regular(AT_FDCWD, path, O_NOFOLLOW);
	ssize_t n;
	int err = 0;

	if (fd < 0 || !ctx) {
		err = fd < 0 ? fd : -ENOMEM;
		goto out;
	}
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		err = -EIO;
		goto out;
	}
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			err = -errno;
			goto out;
		}
		if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1) {
			err = -EIO;
			goto out;
		}
	}
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32) {
		err = -EIO;
		goto out;
	}
	blob_hex(md, ret_hex);
out:
	if (fd >= 0) {
		close(fd);
	}
	EVP_MD_CTX_free(ctx);
	return err;
}

/* One manifest entry against what is at its path under the root: a file of
 * the same size and SHA-256, a directory, a symlink to the same target.
 * The first difference stops the walk. */
static int same_entry_cb(void *ud, const struct snapshot_entry *e)
{
	struct same_ctx *sc = ud;
	char *p = util_path_join(sc->root, e->path), hex[65], target[4096];
	struct stat st;
	ssize_t n;
	bool same = false;

	if (!p) {
		return -ENOMEM;
	}
	sc->entries++;
	if (lstat(p, &st) == 0) {
		switch (e->type) {
		case SNAPSHOT_FILE:
			same = S_ISREG(st.st_mode) && (uint64_t)st.st_size == e->size &&
			       file_sha256(p, hex) == 0 && strcmp(hex, e->sha256) == 0;
			break;
		case SNAPSHOT_DIR:
			same = S_ISDIR(st.st_mode);
			break;
		case SNAPSHOT_SYMLINK:
			n = S_ISLNK(st.st_mode) ? readlink(p, target, sizeof(target) - 1) : -1;
			if (n >= 0) {
				target[n] = '\0';
				same = strcmp(target, e->target) == 0;
			}
			break;
		}
	}
	free(p);
	sc->same = same;
	return same ? 0 : 1;
}

/* Count the entries below the directory dirfd (which this takes), all of
 * them, .git too, stopping past max: a tree deeper than that is not the
 * one we want, so the recursion is bounded by the upload's own size. */
static int count_entries(int dirfd, uint64_t max, uint64_t *n)
{
	DIR *dh = fdopendir(dirfd);
	struct dirent *de;
	int err = 0;

	if (!dh) {
		close(dirfd);
		return -errno;
	}
	while (*n <= max && (de = readdir(dh))) {
		struct stat st;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
			continue;
		}
		++*n;
		if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			err = -errno;
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			int fd = openat(dirfd, de->d_name,
			                O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			err = fd < 0 ? -errno : count_entries(fd, max, n);
			if (err < 0) {
				break;
			}
		}
	}
	closedir(dh);
	return err;
}

/* Whether dst, an existing DIR/<run id>, holds exactly the snapshot id:
 * the same paths, and files of the same sizes and SHA-256. */
static int same_upload(struct blobstore *bs, const char *id, const char *dst, bool *ret,
                       char **cause)
{
	struct same_ctx sc = {.root = dst, .same = true};
	uint64_t n = 0;
	int err, fd;

	*ret = false;
	err = snapshot_foreach(bs, id, same_entry_cb, &sc, cause);
	if (err < 0 || !sc.same) {
		return err;
	}
	fd = open(dst, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		return -errno;
	}
	err = count_entries(fd, sc.entries, &n);
	if (err == 0) {
		*ret = n == sc.entries;
	}
	return err;
}

/* Materialise the snapshot id under tmp, flush the file system, rename tmp
 * to dst; on failure tmp is removed. */
static int place_upload(struct blobstore *bs, const char *id, const char *tmp, const char *dst,
                        char **cause)
{
	struct stat st;
	int err, fd;

	if (mkdir(tmp, 0755) < 0) {
		err = -errno;
		*cause = msg_strdupf("cannot create %s: %s", tmp, strerror(errno));
		return err;
	}
	err = snapshot_materialise(bs, id, tmp, cause);
	if (err < 0) {
		util_rm_rf(tmp);
		return err;
	}
	fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		syncfs(fd);
		close(fd);
	}
	/* Never over an existing DIR/<run id>: rename(2) alone replaces an
	 * empty directory. */
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dst, RENAME_NOREPLACE) < 0 &&
	    (errno != EINVAL || lstat(dst, &st) == 0 || rename(tmp, dst) < 0)) {
		err = errno == EINVAL ? -EEXIST : -errno;
		*cause = msg_strdupf("cannot rename %s to %s: %s", tmp, dst, strerror(-err));
		util_rm_rf(tmp);
		return err;
	}
	return 0;
}

/* Copy workdir/path into dir/<run id>: snapshot it (so the record names its
 * contents by one hash), materialise it under a temporary name, flush the
 * file system, rename. A reader never sees a half upload. */
static int upload_one(struct upload *u, size_t i)
{
	struct daemon *d = u->r->d;
	struct snapshot_limits lim = {UINT64_MAX, UINT64_MAX};
	char *src = util_path_join(u->r->workdir, u->o[i].path), *tmp = NULL, *dst = NULL;
	char *cause = NULL, hex[9];
	struct stat st;
	int err, fd;

	util_random_hex(hex, 4);
	tmp = msg_strdupf("%s/.%s.%s.tmp", u->o[i].dir, u->r->id, hex);
	dst = msg_strdupf("%s/%s", u->o[i].dir, u->r->id);
	if (!src || !tmp || !dst) {
		err = -ENOMEM;
		goto out;
	}
	if (lstat(src, &st) < 0 || !S_ISDIR(st.st_mode)) {
		/* the run removed it, or never had it: an empty upload */
		if (lstat(src, &st) == 0) {
			err = -ENOTDIR;
			cause = msg_strdupf("%s is not a directory", u->o[i].path);
			goto out;
		}
		err = util_mkdir_p(src, 0755);
		if (err < 0) {
			cause = msg_strdupf("cannot create %s: %s", src, strerror(-err));
			goto out;
		}
	}
	err = snapshot_take(d->blobs, src, NULL, NULL, &lim, &u->o[i].info, &cause);
	if (err < 0) {
		goto out;
	}
	if (inputs_is_url(u->o[i].dir)) {
		/* The whole output, every PUT, within the download time limit: curl's
		 * stall limit alone lets a datastore that trickles its answers keep
		 * the run in Finalizing, and this worker thread, for ever. */
		long limit = d->download_timeout_ms > 0 ? d->download_timeout_ms
		                                        : FETCH_DEFAULT_TIMEOUT_MS;
		struct put_ctx pc = {.d = d, .src = src, .base = dst, .timeout_ms = limit,
		                     .deadline = uv_hrtime() + (uint64_t)limit * 1000000};
		err = snapshot_foreach(d->blobs, u->o[i].info.id, put_cb, &pc, &cause);
		if (err < 0 && !cause) {
			cause = pc.cause;
			pc.cause = NULL;
		}
		free(pc.cause);
		if (err == 0) {
			u->o[i].stored = dst;
			dst = NULL;
		}
		goto out;
	}
	remove_stale_tmps(u->o[i].dir, u->r->id);
	/* DIR/<run id> is there already. When it holds exactly what this upload
	 * would put there, it is this upload, done: the daemon died after the
	 * rename of an earlier attempt and before recording it, and the run is
	 * finalized again after the restart. Anything else (another content, or
	 * it cannot be read) is never replaced: the rename refuses it. */
	bool done = false;
	if (lstat(dst, &st) == 0 && S_ISDIR(st.st_mode)) {
		char *why = NULL;
		if (same_upload(d->blobs, u->o[i].info.id, dst, &done, &why) < 0) {
			done = false;
		}
		free(why);
	}
	if (!done) {
		err = place_upload(d->blobs, u->o[i].info.id, tmp, dst, &cause);
		if (err < 0) {
			goto out;
		}
	}
	fd = open(u->o[i].dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	u->o[i].stored = dst;
	dst = NULL;
out:
	if (err < 0) {
		u->o[i].error = msg_strdupf("output %s to %s: %s", u->o[i].name, u->o[i].dir,
		                            cause ? cause : strerror(-err));
	}
	free(cause);
	free(src);
	free(tmp);
	free(dst);
	return err;
}

static void upload_work_cb(uv_work_t *w)
{
	struct upload *u = w->data;

	for (size_t i = 0; i < u->n; i++) {
		int err = upload_one(u, i);
		if (err < 0 && u->err == 0) {
			u->err = err;
			u->cause = strdup(u->o[i].error);
		}
	}
}

static void upload_done_cb(uv_work_t *w, int status)
{
	struct upload *u = w->data;
	struct run *r = u->r;
	struct daemon *d = r->d;
	sqlite3_stmt *st;

	r->busy = false;
	if (r->ended || d->stopping) {
		run_release(r);
		upload_free(u);
		return;
	}
	st = store_prepare(
	    d->store, "inputs",
	    "UPDATE run_outputs SET stored = ?3, files = ?4, bytes = ?5, manifest = ?6, "
	    "error = ?7 WHERE run_seq = ?1 AND name = ?2");
	for (size_t i = 0; st && i < u->n; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, r->seq);
		sqlite3_bind_text(st, 2, u->o[i].name, -1, SQLITE_TRANSIENT);
		if (u->o[i].stored) {
			sqlite3_bind_text(st, 3, u->o[i].stored, -1, SQLITE_TRANSIENT);
			sqlite3_bind_int64(st, 4, (int64_t)u->o[i].info.files);
			sqlite3_bind_int64(st, 5, (int64_t)u->o[i].info.bytes);
			sqlite3_bind_text(st, 6, u->o[i].info.id, -1, SQLITE_TRANSIENT);
		} else {
			for (int k = 3; k <= 6; k++) {
				sqlite3_bind_null(st, k);
			}
		}
		if (u->o[i].error) {
			sqlite3_bind_text(st, 7, u->o[i].error, -1, SQLITE_TRANSIENT);
		} else {
			sqlite3_bind_null(st, 7);
		}
		if (sqlite3_step(st) != SQLITE_DONE) {
			log_error("run %s: recording output %s failed: %s", r->id, u->o[i].name,
			          store_errmsg(d->store));
		}
	}
	sqlite3_finalize(st);
	u->cb(r, u->err, u->cause);
	upload_free(u);
}

int inputs_finalize(struct run *r, inputs_ready_fn cb)
{
	struct daemon *d = r->d;
	sqlite3_stmt *st =
	    store_prepare(d->store, "inputs",
	                  "SELECT name, path, dest FROM run_outputs WHERE run_seq = ?1 "
	                  "ORDER BY name");
	struct upload *u;
	int err;

	if (!st) {
		return 0;
	}
	u = calloc(1, sizeof(*u));
	if (!u) {
		sqlite3_finalize(st);
		return -ENOMEM;
	}
	sqlite3_bind_int64(st, 1, r->seq);
	while (u->n < INPUTS_MAX && sqlite3_step(st) == SQLITE_ROW) {
		u->o[u->n].name = inputs_dup_col(st, 0);
		u->o[u->n].path = inputs_dup_col(st, 1);
		u->o[u->n].dir = inputs_dup_col(st, 2);
		u->n++;
	}
	sqlite3_finalize(st);
	if (u->n == 0) {
		upload_free(u);
		return 0;
	}
	u->r = r;
	u->cb = cb;
	u->work.data = u;
	u->bs = d->blobs;
	u->hold = blob_hold(d->blobs);
	err = uv_queue_work(d->loop, &u->work, upload_work_cb, upload_done_cb);
	if (err < 0) {
		upload_free(u);
		return err;
	}
	r->busy = true;
	return 1;
}

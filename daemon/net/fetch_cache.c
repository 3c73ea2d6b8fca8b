/* The download cache on disk: the index entry of each URL (its
 * validators and the object it gave), a partial download's metadata, and
 * the work items run on the loop's thread pool: rehashing a partial left
 * by an earlier process, moving a finished download into objects/ with its
 * index entry, and copying a file:// source in. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "fetch_priv.h"
#include "msg.h"
#include "util.h"

#define INDEX_MAX (64 * 1024)
#define COPY_BUF (1 << 20)

/* -- the index and the partial's metadata --------------------------------- */

static char *json_str(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
}

/* Read the index entry of x's URL; an entry is only used when its object
 * is there with the size it says. The file is a few hundred bytes, read on
 * the loop. */
bool fetch_entry_load(struct fetch_mgr *m, const char *url, const char *key, struct entry *e)
{
	char name[80], *path, *buf = NULL, *obj = NULL;
	cJSON *o = NULL;
	const cJSON *v;
	struct stat st;
	bool ok = false;

	snprintf(name, sizeof(name), "%s.json", key);
	path = util_path_join(m->index, name);
	if (!path || util_read_file(path, INDEX_MAX, &buf, NULL) < 0) {
		goto out;
	}
	o = cJSON_Parse(buf);
	v = cJSON_GetObjectItemCaseSensitive(o, "url");
	if (!cJSON_IsString(v) || strcmp(v->valuestring, url) != 0) {
		goto out;
	}
	v = cJSON_GetObjectItemCaseSensitive(o, "sha256");
	if (!cJSON_IsString(v) || !fetch_valid_digest(v->valuestring)) {
		goto out;
	}
	memcpy(e->sha256, v->valuestring, 65);
	v = cJSON_GetObjectItemCaseSensitive(o, "size");
	if (!cJSON_IsNumber(v) || v->valuedouble < 0) {
		goto out;
	}
	e->size = (uint64_t)v->valuedouble;
	obj = util_path_join(m->objects, e->sha256);
	if (!obj || stat(obj, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != e->size) {
		goto out;
	}
	e->etag = json_str(o, "etag");
	e->last_modified = json_str(o, "last_modified");
	ok = true;
out:
	if (!ok) {
		fetch_entry_clear(e);
	}
	cJSON_Delete(o);
	free(buf);
	free(path);
	free(obj);
	return ok;
}

/* Write the index entry (in a work item: it is fsync'd). */
static int entry_store(struct fetch_mgr *m, const char *url, const char *key, const struct entry *e)
{
	char name[80], *path, *text = NULL;
	cJSON *o = cJSON_CreateObject();
	int r = -ENOMEM;

	snprintf(name, sizeof(name), "%s.json", key);
	path = util_path_join(m->index, name);
	if (!o || !path || !cJSON_AddStringToObject(o, "url", url) ||
	    !cJSON_AddStringToObject(o, "sha256", e->sha256) ||
	    !cJSON_AddNumberToObject(o, "size", (double)e->size) ||
	    (e->etag && !cJSON_AddStringToObject(o, "etag", e->etag)) ||
	    (e->last_modified && !cJSON_AddStringToObject(o, "last_modified", e->last_modified)) ||
	    !cJSON_AddNumberToObject(o, "fetched_at", util_now())) {
		goto out;
	}
	text = cJSON_PrintUnformatted(o);
	if (!text) {
		goto out;
	}
	r = util_write_file_atomic(path, text, strlen(text), 0644);
out:
	cJSON_Delete(o);
	free(text);
	free(path);
	return r;
}

/* The partial's validators, so a later process resumes it only while the
 * server still has the same body (If-Range). Not fsync'd: losing it only
 * costs the resume. */
void fetch_meta_store(struct xfer *x)
{
	cJSON *o = cJSON_CreateObject();
	char *text = NULL;
	FILE *f = NULL;

	if (!x->part_etag && !x->part_lm) {
		unlink(x->meta_path);
		goto out;
	}
	if (!o || !cJSON_AddStringToObject(o, "url", x->url) ||
	    (x->part_etag && !cJSON_AddStringToObject(o, "etag", x->part_etag)) ||
	    (x->part_lm && !cJSON_AddStringToObject(o, "last_modified", x->part_lm))) {
		goto out;
	}
	text = cJSON_PrintUnformatted(o);
	f = text ? fopen(x->meta_path, "we") : NULL;
	if (f) {
		fputs(text, f);
		fclose(f);
	}
out:
	cJSON_Delete(o);
	free(text);
}

/* Whether a Range request for the rest of the partial can carry an
 * If-Range, so that a body changed since comes back whole (200) rather
 * than as the new body's tail spliced onto the old one's head. A weak
 * ETag cannot be used there (RFC 9110 13.1.5). */
bool fetch_if_range_ok(const struct xfer *x)
{
	return (x->part_etag && strncmp(x->part_etag, "W/", 2) != 0) || x->part_lm;
}

bool fetch_meta_load(struct xfer *x)
{
	char *buf = NULL;
	cJSON *o = NULL;
	const cJSON *v;
	bool ok = false;

	if (util_read_file(x->meta_path, INDEX_MAX, &buf, NULL) < 0) {
		goto out;
	}
	o = cJSON_Parse(buf);
	v = cJSON_GetObjectItemCaseSensitive(o, "url");
	if (!cJSON_IsString(v) || strcmp(v->valuestring, x->url) != 0) {
		goto out;
	}
	x->part_etag = json_str(o, "etag");
	x->part_lm = json_str(o, "last_modified");
	ok = fetch_if_range_ok(x);
out:
	cJSON_Delete(o);
	free(buf);
	return ok;
}

void fetch_part_discard(struct xfer *x)
{
	if (x->fd >= 0) {
		close(x->fd);
		x->fd = -1;
	}
	unlink(x->part_path);
	unlink(x->meta_path);
	free(x->part_etag);
	free(x->part_lm);
	x->part_etag = x->part_lm = NULL;
	x->done = 0;
	x->total = 0;
	x->resumable = false;
	EVP_DigestInit_ex(x->md, EVP_sha256(), NULL);
}

/* -- work items ---------------------------------------------------------- */

/* Hash fd from its start into md; the number of bytes in *ret. */
static int hash_fd(int fd, EVP_MD_CTX *md, uint64_t *ret)
{
	char *buf = malloc(COPY_BUF);
	uint64_t n = 0;
	int r = 0;

	if (!buf) {
		return -ENOMEM;
	}
	for (;;) {
		ssize_t got = pread(fd, buf, COPY_BUF, (off_t)n);
		if (got < 0) {
			if (errno == EINTR) {
				continue;
			}
			r = -errno;
			goto out;
		}
		if (got == 0) {
			break;
		}
		EVP_DigestUpdate(md, buf, (size_t)got);
		n += (uint64_t)got;
	}
	*ret = n;
out:
	free(buf);
	return r;
}

static void fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/* Move the finished file at tmp (open as fd) to objects/<sha256>. An object
 * already there is the same bytes: tmp is dropped. */
static int object_commit(struct fetch_mgr *m, int fd, const char *tmp, const char *sha256)
{
	char *obj = util_path_join(m->objects, sha256);
	int r = 0;

	if (!obj) {
		return -ENOMEM;
	}
	if (access(obj, F_OK) == 0) {
		unlink(tmp);
		goto out;
	}
	/* Immutable: runs read objects in place. */
	if (fchmod(fd, 0444) < 0 || fsync(fd) < 0) {
		r = -errno;
		goto out;
	}
	if (rename(tmp, obj) < 0) {
		r = -errno;
		goto out;
	}
	fsync_dir(m->objects);
out:
	free(obj);
	return r;
}

static void work_rehash(struct xfer *x)
{
	uint64_t n = 0;

	x->fd = open(x->part_path, O_RDWR | O_CLOEXEC);
	if (x->fd < 0) {
		x->work_err = -errno;
		return;
	}
	x->work_err = hash_fd(x->fd, x->md, &n);
	x->done = n;
}

static void work_finish(struct xfer *x)
{
	struct fetch_mgr *m = x->m;
	struct entry e = {0};
	int r;

	r = object_commit(m, x->fd, x->part_path, x->work_sha);
	close(x->fd);
	x->fd = -1;
	if (r < 0) {
		x->work_err = r;
		x->work_reason =
		    msg_strdupf("cannot store the download in %s: %s", m->objects, strerror(-r));
		return;
	}
	unlink(x->meta_path);
	memcpy(e.sha256, x->work_sha, 65);
	e.size = x->work_size;
	e.etag = x->etag;
	e.last_modified = x->last_modified;
	/* A lost index entry only costs a download: not an error. */
	entry_store(m, x->url, x->key, &e);
}

/* file:// sources are copied into the cache, so a run sees the bytes of
 * the moment it was prepared. The source's identity (device, inode, size,
 * times) stands in for an ETag: an unchanged file is not copied again. */
static void work_file(struct xfer *x)
{
	struct fetch_mgr *m = x->m;
	struct entry e = {0};
	struct stat st;
	char validator[160], *buf = NULL;
	EVP_MD_CTX *md = NULL;
	int in = -1, out = -1;
	uint64_t n = 0;

	in = open(x->file_path, O_RDONLY | O_CLOEXEC);
	if (in < 0 || fstat(in, &st) < 0) {
		x->work_err = -errno;
		x->work_reason = strdup(strerror(errno));
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		x->work_err = -EISDIR;
		x->work_reason = strdup("is a directory, not a file");
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		x->work_err = -EINVAL;
		x->work_reason = strdup("is not a regular file");
		goto out;
	}
	if ((uint64_t)st.st_size > x->work_max) {
		x->work_err = -EFBIG;
		x->work_reason =
		    msg_strdupf("%" PRIu64 " bytes is over the limit of %" PRIu64 " bytes",
		                (uint64_t)st.st_size, x->work_max);
		goto out;
	}
	snprintf(validator, sizeof(validator), "file:%ju:%ju:%jd:%jd.%09ld:%jd.%09ld",
	         (uintmax_t)st.st_dev, (uintmax_t)st.st_ino, (intmax_t)st.st_size,
	         (intmax_t)st.st_mtim.tv_sec, st.st_mtim.tv_nsec, (intmax_t)st.st_ctim.tv_sec,
	         st.st_ctim.tv_nsec);
	if (x->have_cached && x->cached.etag && strcmp(x->cached.etag, validator) == 0) {
		memcpy(x->work_sha, x->cached.sha256, 65);
		x->work_size = x->cached.size;
		x->work_from_cache = true;
		goto out;
	}
	md = EVP_MD_CTX_new();
	buf = malloc(COPY_BUF);
	out = open(x->part_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (!md || !buf || out < 0 || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		x->work_err = out < 0 ? -errno : -ENOMEM;
		x->work_reason =
		    msg_strdupf("cannot copy into %s: %s", m->tmp, strerror(-x->work_err));
		goto out;
	}
	for (;;) {
		ssize_t got = read(in, buf, COPY_BUF);
		if (got < 0 && errno == EINTR) {
			continue;
		}
		if (got < 0) {
			x->work_err = -errno;
			x->work_reason = msg_strdupf("reading failed: %s", strerror(errno));
			goto out;
		}
		if (got == 0) {
			break;
		}
		/* The file may grow while it is copied. */
		if (n + (uint64_t)got > x->work_max) {
			x->work_err = -EFBIG;
			x->work_reason =
			    msg_strdupf("over the limit of %" PRIu64 " bytes", x->work_max);
			goto out;
		}
		for (ssize_t off = 0; off < got;) {
			ssize_t w = write(out, buf + off, (size_t)(got - off));
			if (w < 0 && errno == EINTR) {
				continue;
			}
			if (w < 0) {
				x->work_err = -errno;
				x->work_reason = msg_strdupf("cannot write into %s: %s", m->tmp,
				                             strerror(errno));
				goto out;
			}
			off += w;
		}
		EVP_DigestUpdate(md, buf, (size_t)got);
		n += (uint64_t)got;
	}
	fetch_md_final_hex(md, x->work_sha);
	x->work_size = n;
	x->work_err = object_commit(m, out, x->part_path, x->work_sha);
	if (x->work_err < 0) {
		x->work_reason = msg_strdupf("cannot store the copy in %s: %s", m->objects,
		                             strerror(-x->work_err));
		goto out;
	}
	memcpy(e.sha256, x->work_sha, 65);
	e.size = n;
	e.etag = validator;
	entry_store(m, x->url, x->key, &e);
out:
	if (x->work_err < 0 && out >= 0) {
		unlink(x->part_path);
	}
	if (out >= 0) {
		close(out);
	}
	if (in >= 0) {
		close(in);
	}
	EVP_MD_CTX_free(md);
	free(buf);
}

static void work_cb(uv_work_t *w)
{
	struct xfer *x = w->data;

	switch (x->work_kind) {
	case WORK_REHASH:
		work_rehash(x);
		break;
	case WORK_FINISH:
		work_finish(x);
		break;
	case WORK_FILE:
		work_file(x);
		break;
	}
}

static void after_work_cb(uv_work_t *w, int status)
{
	struct xfer *x = w->data;
	struct fetch_mgr *m = x->m;

	x->busy = false;
	m->works--;
	if (x->orphan) {
		if (m->closing || !x->waiters) {
			fetch_xfer_free(x);
			fetch_mgr_release(m);
			return;
		}
		x->orphan = false; /* a new request came for it meanwhile */
	}
	switch (x->work_kind) {
	case WORK_REHASH:
		if (x->work_err < 0) {
			fetch_part_discard(x);
		} else {
			x->resumable = x->done > 0;
		}
		if (x->done > x->max_bytes) {
			fetch_part_discard(x);
		}
		fetch_attempt_start(x);
		break;
	case WORK_FINISH:
		if (x->work_err < 0) {
			fetch_xfer_fail(x, x->work_err, "%s", x->work_reason);
		} else {
			fetch_xfer_succeed(x, x->work_sha, x->work_size, false);
		}
		break;
	case WORK_FILE:
		if (x->work_err < 0) {
			fetch_xfer_fail(x, x->work_err, "%s", x->work_reason);
		} else {
			fetch_xfer_succeed(x, x->work_sha, x->work_size, x->work_from_cache);
		}
		break;
	}
}

void fetch_work_queue(struct xfer *x, enum work_kind kind)
{
	int r;

	x->work_kind = kind;
	x->work_err = 0;
	x->work_max = x->max_bytes;
	x->work.data = x;
	r = uv_queue_work(x->m->loop, &x->work, work_cb, after_work_cb);
	if (r < 0) {
		fetch_xfer_fail(x, r, "cannot queue work: %s", uv_strerror(r));
		return;
	}
	x->busy = true;
	x->m->works++;
}

/* The dataset ops: dataset.register, dataset.list, dataset.show,
 * dataset.download and dataset.delete, over the registry's datasets. */
#include "optable.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>
#include <uv.h>

#include "blob.h"
#include "context.h"
#include "datasets.h"
#include "fetch.h"
#include "log.h"
#include "msg.h"
#include "proto.h"
#include "request.h"
#include "snapshot.h"
#include "store.h"
#include "util.h"

#define DESCRIPTION_MAX 10000
#define SOURCES_MAX 64
#define SOURCE_MAX_LEN 4096 /* a path or URL, as for run inputs */
#define SHOW_FILES_MAX 10000
/* Registrations in progress at once, and the downloads they may have in
 * flight: a client that sends register after register (or dies after
 * each) must not start transfers, open files and hold connections
 * without bound. One registration at its SOURCES_MAX always fits. */
#define REGISTERS_MAX 16
#define REGISTER_FETCHES_MAX SOURCES_MAX

/* ---- the dataset object ---- */

static cJSON *row_json(sqlite3_stmt *st)
{
	cJSON *o = cJSON_CreateObject();
	const char *name = (const char *)sqlite3_column_text(st, 0);
	int64_t version = sqlite3_column_int64(st, 1);
	char *id = msg_strdupf("%s:%lld", name, (long long)version);
	cJSON *sources = cJSON_Parse((const char *)sqlite3_column_text(st, 5));

	cJSON_AddStringToObject(o, "id", id ? id : "");
	free(id);
	cJSON_AddStringToObject(o, "name", name);
	cJSON_AddNumberToObject(o, "version", (double)version);
	cJSON_AddStringToObject(o, "manifest", (const char *)sqlite3_column_text(st, 2));
	cJSON_AddNumberToObject(o, "files", (double)sqlite3_column_int64(st, 3));
	cJSON_AddNumberToObject(o, "bytes", (double)sqlite3_column_int64(st, 4));
	cJSON_AddItemToObject(o, "sources", sources ? sources : cJSON_CreateArray());
	if (sqlite3_column_type(st, 6) == SQLITE_NULL) {
		cJSON_AddNullToObject(o, "description");
	} else {
		cJSON_AddStringToObject(o, "description", (const char *)sqlite3_column_text(st, 6));
	}
	msg_add_time(o, "created_at", sqlite3_column_double(st, 7));
	return o;
}

/* ---- dataset.register ---- */

struct source {
	char *given;   /* as the client gave it */
	char *url;     /* a URL without its #sha256= */
	char *sha256;  /* expected, or NULL */
	char *fetched; /* the downloaded file */
	struct fetch_req *req;
	struct stat st;
};

struct reg {
	struct reg *next; /* pending list */
	uv_work_t work;
	struct request *req;
	struct daemon *d;
	uint64_t hold; /* the blob store's, until the version is recorded */
	char *name;
	char *description;
	struct source src[SOURCES_MAX];
	size_t n;
	int fetching;
	/* results of the work */
	char manifest[65];
	uint64_t files, bytes;
	int err;
	char *cause;
};

static struct reg *pending;
static int registering; /* registrations between their request and reg_free */

static void reg_free(struct reg *g)
{
	blob_release(g->d ? g->d->blobs : NULL, g->hold);
	registering--;
	for (struct reg **pp = &pending; *pp; pp = &(*pp)->next) {
		if (*pp == g) {
			*pp = g->next;
			break;
		}
	}
	for (size_t i = 0; i < g->n; i++) {
		fetch_cancel(g->src[i].req);
		free(g->src[i].given);
		free(g->src[i].url);
		free(g->src[i].sha256);
		free(g->src[i].fetched);
	}
	request_release(g->req);
	free(g->name);
	free(g->description);
	free(g->cause);
	free(g);
}

/* Daemon stopping (datasets_shutdown): drop the registrations waiting
 * for downloads. */
static void drop_pending(struct daemon *d)
{
	struct reg *g = pending, *next;

	for (; g; g = next) {
		next = g->next;
		if (g->d == d) {
			reg_free(g);
		}
	}
}

static char *basename_of(const char *s)
{
	const char *p = strstr(s, "://");
	const char *end, *slash;

	p = p ? p + 3 : s;
	end = p + strcspn(p, "?#");
	while (end > p && end[-1] == '/') {
		end--;
	}
	slash = memrchr(p, '/', (size_t)(end - p));
	if (!slash || slash + 1 >= end) {
		return strdup("download");
	}
	return strndup(slash + 1, (size_t)(end - slash - 1));
}

/* Entries of the new manifest, by path. */
struct compose {
	cJSON *entries; /* object: path -> entry */
	uint64_t files, bytes;
	char *cause;
};

static int add_entry(struct compose *c, cJSON *e)
{
	const char *path = cJSON_GetObjectItem(e, "path")->valuestring;
	const cJSON *old = cJSON_GetObjectItemCaseSensitive(c->entries, path);
	const char *type = cJSON_GetObjectItem(e, "type")->valuestring;

	if (old) {
		/* the same directory from two sources merges; anything else
		 * is two different things at one path */
		bool same = strcmp(type, "dir") == 0 &&
		            strcmp(cJSON_GetObjectItem(old, "type")->valuestring, "dir") == 0;
		if (!same) {
			c->cause = msg_strdupf("two sources give '%s'; register them as separate "
			                       "datasets or rename one",
			                       path);
			cJSON_Delete(e);
			return -EINVAL;
		}
		cJSON_Delete(e);
		return 0;
	}
	if (strcmp(type, "file") == 0) {
		c->files++;
		c->bytes += (uint64_t)cJSON_GetObjectItem(e, "size")->valuedouble;
	}
	cJSON_AddItemToObject(c->entries, path, e);
	return 0;
}

static cJSON *file_entry(const char *path, uint64_t size, uint32_t mode, const char *sha)
{
	cJSON *e = cJSON_CreateObject();

	cJSON_AddStringToObject(e, "path", path);
	cJSON_AddStringToObject(e, "type", "file");
	cJSON_AddNumberToObject(e, "size", (double)size);
	cJSON_AddNumberToObject(e, "mode", mode);
	cJSON_AddStringToObject(e, "sha256", sha);
	return e;
}

static int tree_cb(void *ud, const struct snapshot_entry *se)
{
	struct compose *c = ud;
	cJSON *e = cJSON_CreateObject();

	cJSON_AddStringToObject(e, "path", se->path);
	if (se->type == SNAPSHOT_FILE) {
		cJSON_Delete(e);
		return add_entry(c, file_entry(se->path, se->size, se->mode, se->sha256));
	}
	if (se->type == SNAPSHOT_DIR) {
		cJSON_AddStringToObject(e, "type", "dir");
		cJSON_AddNumberToObject(e, "mode", se->mode);
	} else {
		cJSON_AddStringToObject(e, "type", "symlink");
		cJSON_AddStringToObject(e, "target", se->target);
	}
	return add_entry(c, e);
}

static int cmp_path(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;

	return strcmp(x->string, y->string);
}

/* Thread pool: every source into the blob store, one manifest over all. */
static void reg_work_cb(uv_work_t *w)
{
	struct reg *g = w->data;
	struct daemon *d = g->d;
	struct compose c = {.entries = cJSON_CreateObject()};
	cJSON *man = NULL, *arr, **sorted = NULL;
	char *text = NULL;
	size_t n = 0;
	int err = 0;

	for (size_t i = 0; i < g->n && err == 0; i++) {
		struct source *s = &g->src[i];
		const char *from = s->fetched ? s->fetched : s->given;
		char hex[65], *base;
		uint64_t size;
		if (!s->fetched && S_ISDIR(s->st.st_mode)) {
			/* a directory's contents go at the top */
			struct snapshot_limits lim = {UINT64_MAX, UINT64_MAX};
			struct snapshot_info info = {0};
			err = snapshot_take(d->blobs, from, NULL, NULL, &lim, &info, &g->cause);
			if (err == 0) {
				err = snapshot_foreach(d->blobs, info.id, tree_cb, &c, &g->cause);
			}
			snapshot_info_finish(&info);
			continue;
		}
		err = blob_put_file(d->blobs, AT_FDCWD, from, hex, &size);
		if (err < 0) {
			g->cause = msg_strdupf("cannot read %s: %s", s->given, strerror(-err));
			break;
		}
		if (s->sha256 && strcmp(s->sha256, hex) != 0) {
			err = -EBADMSG;
			g->cause = msg_strdupf("%s has sha256 %s, not the expected %s", s->given,
			                       hex, s->sha256);
			break;
		}
		base = basename_of(s->url ? s->url : s->given);
		if (!base) {
			err = -ENOMEM;
			break;
		}
		err = add_entry(
		    &c,
		    file_entry(base, size, s->fetched ? 0644 : (s->st.st_mode & 0755) | 0600, hex));
		free(base);
	}
	if (err < 0) {
		if (!g->cause) {
			g->cause = c.cause;
			c.cause = NULL;
		}
		goto out;
	}
	/* The manifest: entries sorted by path, as snapshots have them. */
	n = (size_t)cJSON_GetArraySize(c.entries);
	sorted = calloc(n ? n : 1, sizeof(*sorted));
	man = cJSON_CreateObject();
	if (!sorted || !man) {
		err = -ENOMEM;
		goto out;
	}
	n = 0;
	for (cJSON *e = c.entries->child; e; e = e->next) {
		sorted[n++] = e;
	}
	qsort(sorted, n, sizeof(*sorted), cmp_path);
	cJSON_AddNumberToObject(man, "version", 1);
	arr = cJSON_AddArrayToObject(man, "entries");
	for (size_t i = 0; i < n; i++) {
		cJSON_AddItemToArray(arr, cJSON_Duplicate(sorted[i], true));
	}
	text = cJSON_PrintUnformatted(man);
	if (!text) {
		err = -ENOMEM;
		goto out;
	}
	err = blob_put_buf(d->blobs, text, strlen(text), g->manifest);
	if (err < 0) {
		g->cause = msg_strdupf("storing the manifest failed: %s", strerror(-err));
		goto out;
	}
	g->files = c.files;
	g->bytes = c.bytes;
out:
	g->err = err;
	free(c.cause);
	free(text);
	free(sorted);
	cJSON_Delete(man);
	cJSON_Delete(c.entries);
}

static void reg_done_cb(uv_work_t *w, int status)
{
	struct reg *g = w->data;
	struct daemon *d = g->d;
	sqlite3_stmt *st = NULL, *row = NULL;
	cJSON *sources = NULL;
	char *stext = NULL;
	int64_t version = 0;

	if (g->err < 0 || status < 0) {
		request_error_errno(g->req, g->err < 0 ? g->err : status, g->cause);
		goto out;
	}
	sources = cJSON_CreateArray();
	for (size_t i = 0; i < g->n; i++) {
		cJSON_AddItemToArray(sources, cJSON_CreateString(g->src[i].given));
	}
	stext = cJSON_PrintUnformatted(sources);
	/* The version and the row in one transaction; the loop is the only
	 * writer, so the version cannot be taken twice. */
	if (!stext || store_begin(d->store) < 0) {
		request_error(g->req, PROTO_E_INTERNAL, "recording the dataset failed");
		goto out;
	}
	st = store_prepare(d->store, "datasets",
	                   "INSERT INTO dataset_names(name, last_version) VALUES(?1, 1) "
	                   "ON CONFLICT(name) DO UPDATE SET last_version = last_version + 1 "
	                   "RETURNING last_version");
	if (st) {
		sqlite3_bind_text(st, 1, g->name, -1, SQLITE_TRANSIENT);
		if (sqlite3_step(st) == SQLITE_ROW) {
			version = sqlite3_column_int64(st, 0);
		}
		sqlite3_finalize(st);
	}
	st = version ? store_prepare(d->store, "datasets", "INSERT INTO datasets(" DATASETS_COLUMNS ") "
	                       "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
	             : NULL;
	if (st) {
		sqlite3_bind_text(st, 1, g->name, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 2, version);
		sqlite3_bind_text(st, 3, g->manifest, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 4, (int64_t)g->files);
		sqlite3_bind_int64(st, 5, (int64_t)g->bytes);
		sqlite3_bind_text(st, 6, stext, -1, SQLITE_TRANSIENT);
		if (g->description) {
			sqlite3_bind_text(st, 7, g->description, -1, SQLITE_TRANSIENT);
		}
		sqlite3_bind_double(st, 8, util_now());
	}
	if (!st || sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_finalize(st);
		store_rollback(d->store);
		request_error(g->req, PROTO_E_INTERNAL, "recording the dataset failed: %s",
		              store_errmsg(d->store));
		goto out;
	}
	sqlite3_finalize(st);
	if (store_commit(d->store) < 0) {
		store_rollback(d->store);
		request_error(g->req, PROTO_E_INTERNAL, "recording the dataset failed: %s",
		              store_errmsg(d->store));
		goto out;
	}
	log_info("dataset %s:%lld registered: %llu files, manifest %.12s", g->name,
	         (long long)version, (unsigned long long)g->files, g->manifest);
	if (datasets_find(d, g->name, version, &row) == 0) {
		request_reply(g->req, row_json(row));
		sqlite3_finalize(row);
	} else {
		request_error(g->req, PROTO_E_INTERNAL, "reading the dataset back failed");
	}
out:
	free(stext);
	cJSON_Delete(sources);
	reg_free(g);
}

static void reg_start_work(struct reg *g)
{
	int err;

	if (g->err < 0) {
		/* a download that failed for the server's or the network's
		 * reasons: neither the daemon's fault nor the request's */
		bool remote = g->err != -ENOENT && g->err != -EACCES && g->err != -EFBIG &&
		              g->err != -EBADMSG && g->err != -ENOMEM && g->err != -EINVAL;
		if (remote) {
			request_error(g->req, PROTO_E_UNAVAILABLE, "%s",
			              g->cause ? g->cause : strerror(-g->err));
		} else {
			request_error_errno(g->req, g->err, g->cause);
		}
		reg_free(g);
		return;
	}
	g->work.data = g;
	err = uv_queue_work(g->d->loop, &g->work, reg_work_cb, reg_done_cb);
	if (err < 0) {
		request_error(g->req, PROTO_E_INTERNAL, "cannot queue the registration: %s",
		              uv_strerror(err));
		reg_free(g);
		return;
	}
	/* in the thread pool now: not one of the pending downloads */
	for (struct reg **pp = &pending; *pp; pp = &(*pp)->next) {
		if (*pp == g) {
			*pp = g->next;
			break;
		}
	}
}

static void reg_fetched_cb(void *ud, const struct fetch_result *res)
{
	struct source *s = ud;
	struct reg *g = NULL;

	for (struct reg *p = pending; p && !g; p = p->next) {
		if (s >= p->src && s < p->src + SOURCES_MAX) {
			g = p;
		}
	}
	if (!g) {
		return;
	}
	s->req = NULL;
	g->fetching--;
	if (res->err < 0 && g->err == 0) {
		g->err = res->err;
		g->cause = strdup(res->cause ? res->cause : strerror(-res->err));
		for (size_t i = 0; i < g->n; i++) {
			if (g->src[i].req) {
				fetch_cancel(g->src[i].req);
				g->src[i].req = NULL;
				g->fetching--;
			}
		}
	} else if (res->err == 0) {
		s->fetched = strdup(res->path);
		if (!s->fetched && g->err == 0) {
			g->err = -ENOMEM;
		}
	}
	if (g->fetching == 0) {
		reg_start_work(g);
	}
}

static void ops_dataset_register(struct request *req)
{
	struct daemon *d = req->d;
	const char *name = NULL, *description = NULL;
	const cJSON *sources = NULL, *it;
	char *cause = NULL;
	struct reg *g;

	if (msg_arg_string(req->args, "name", true, &name, &cause) < 0 ||
	    msg_arg_string_array(req->args, "sources", true, &sources, &cause) < 0 ||
	    msg_arg_string(req->args, "description", false, &description, &cause) < 0) {
		request_arg_error(req, cause);
		return;
	}
	if (!util_valid_dataset_name(name)) {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
		              "'%s' is not a dataset name: names are 1 to 255 letters, digits, "
		              "'.', '_', '-' and spaces, starting with a letter or digit and not "
		              "ending with a space",
		              name);
		return;
	}
	if (cJSON_GetArraySize(sources) > SOURCES_MAX) {
		request_error(req, PROTO_E_TOO_LARGE, "at most %d sources per dataset",
		              SOURCES_MAX);
		return;
	}
	cJSON_ArrayForEach(it, sources)
	{
		if (strlen(it->valuestring) > SOURCE_MAX_LEN) {
			request_error(req, PROTO_E_TOO_LARGE,
			              "a source is longer than %d bytes: '%.64s...'", SOURCE_MAX_LEN,
			              it->valuestring);
			return;
		}
	}
	if (description && strlen(description) > DESCRIPTION_MAX) {
		request_error(req, PROTO_E_TOO_LARGE, "the description is longer than %d bytes",
		              DESCRIPTION_MAX);
		return;
	}
	int urls = 0, fetching = 0;
	cJSON_ArrayForEach(it, sources)
	{
		urls += strstr(it->valuestring, "://") != NULL;
	}
	for (struct reg *p = pending; p; p = p->next) {
		fetching += p->fetching;
	}
	if (registering >= REGISTERS_MAX || (urls > 0 && fetching + urls > REGISTER_FETCHES_MAX)) {
		request_error(req, PROTO_E_CONFLICT,
		              "%d dataset registrations are in progress, with %d downloads; "
		              "try again when some have ended (at most %d registrations and "
		              "%d downloads at once)",
		              registering, fetching, REGISTERS_MAX, REGISTER_FETCHES_MAX);
		return;
	}
	g = calloc(1, sizeof(*g));
	if (!g) {
		request_error(req, PROTO_E_INTERNAL, "out of memory");
		return;
	}
	registering++;
	g->d = d;
	g->hold = blob_hold(d->blobs);
	g->req = request_hold(req);
	g->name = strdup(name);
	g->description = description ? strdup(description) : NULL;
	g->next = pending;
	pending = g;
	datasets_shutdown_hook(drop_pending);
	/* Check every source before fetching any, so a bad one changes
	 * nothing. */
	cJSON_ArrayForEach(it, sources)
	{
		struct source *s = &g->src[g->n++];
		const char *v = it->valuestring;
		s->given = strdup(v);
		if (!s->given) {
			request_error(req, PROTO_E_INTERNAL, "out of memory");
			goto fail;
		}
		if (strstr(v, "://")) {
			const char *frag = strchr(v, '#');
			if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0 &&
			    strncmp(v, "file://", 7) != 0) {
				request_error(req, PROTO_E_INVALID_ARGUMENT,
				              "unsupported URL '%s' (http://, https:// or file://)",
				              v);
				goto fail;
			}
			if (frag &&
			    (strncmp(frag, "#sha256=", 8) != 0 || !blob_valid_hex(frag + 8))) {
				request_error(req, PROTO_E_INVALID_ARGUMENT,
				              "a URL's fragment must be #sha256=<64 lowercase hex "
				              "digits>: '%s'",
				              v);
				goto fail;
			}
			s->url = frag ? strndup(v, (size_t)(frag - v)) : strdup(v);
			s->sha256 = frag ? strdup(frag + 8) : NULL;
			continue;
		}
		if (v[0] != '/') {
			request_error(req, PROTO_E_INVALID_ARGUMENT,
			              "source '%s' must be an absolute path or a URL", v);
			goto fail;
		}
		if (stat(v, &s->st) < 0 || (!S_ISREG(s->st.st_mode) && !S_ISDIR(s->st.st_mode))) {
			request_error(req, PROTO_E_INVALID_ARGUMENT, "source %s: %s", v,
			              errno && !S_ISREG(s->st.st_mode) && !S_ISDIR(s->st.st_mode)
			                  ? strerror(errno)
			                  : "neither a file nor a directory");
			goto fail;
		}
	}
	for (size_t i = 0; i < g->n; i++) {
		struct source *s = &g->src[i];
		struct fetch_opts o = {.url = s->url, .sha256 = s->sha256};
		int err;
		if (!s->url) {
			continue;
		}
		if (!d->fetch) {
			request_error(req, PROTO_E_UNAVAILABLE, "this runyardd cannot download %s",
			              s->url);
			goto fail;
		}
		err = fetch_start(d->fetch, &o, NULL, reg_fetched_cb, s, &s->req);
		if (err < 0) {
			request_error(req, PROTO_E_INTERNAL, "cannot start downloading %s: %s",
			              s->url, strerror(-err));
			goto fail;
		}
		g->fetching++;
	}
	if (g->fetching == 0) {
		reg_start_work(g);
	}
	return;
fail:
	reg_free(g);
}

/* ---- list, show, delete, download ---- */

static void ops_dataset_list(struct request *req)
{
	const char *name = NULL;
	char *cause = NULL;
	sqlite3_stmt *st;
	cJSON *list, *res;
	int rc;

	if (msg_arg_string(req->args, "name", false, &name, &cause) < 0) {
		request_arg_error(req, cause);
		return;
	}
	st = name ? store_prepare(req->d->store, "datasets",
	                          "SELECT " DATASETS_COLUMNS " FROM datasets WHERE name = ?1 ORDER BY "
	                          "version")
	          : store_prepare(req->d->store, "datasets",
	                          "SELECT " DATASETS_COLUMNS " FROM datasets ORDER BY name, version");
	if (!st) {
		request_error(req, PROTO_E_INTERNAL, "listing datasets failed");
		return;
	}
	if (name) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	}
	list = cJSON_CreateArray();
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		cJSON_AddItemToArray(list, row_json(st));
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		cJSON_Delete(list);
		request_error(req, PROTO_E_INTERNAL, "listing datasets failed: %s",
		              store_errmsg(req->d->store));
		return;
	}
	res = cJSON_CreateObject();
	cJSON_AddItemToObject(res, "datasets", list);
	request_reply(req, res);
}

/* args.dataset as NAME[:VERSION] to its row; replies the error itself. */
static int resolve_arg(struct request *req, sqlite3_stmt **ret, char **ret_name,
                       int64_t *ret_version)
{
	const char *ref = NULL;
	char *cause = NULL, *name = NULL;
	int64_t version;
	int err;

	if (msg_arg_string(req->args, "dataset", true, &ref, &cause) < 0 ||
	    util_parse_ref(ref, "dataset", &name, &version, &cause) < 0) {
		request_arg_error(req, cause);
		return -EINVAL;
	}
	err = datasets_find(req->d, name, version, ret);
	if (err < 0) {
		cause = err == -ENOENT ? util_ref_not_found("dataset", name, version) : NULL;
		request_error(req, err == -ENOENT ? PROTO_E_NOT_FOUND : PROTO_E_INTERNAL, "%s",
		              cause ? cause : "reading the dataset failed");
		free(cause);
		free(name);
		return err;
	}
	if (ret_name) {
		*ret_name = name;
		*ret_version = version;
	} else {
		free(name);
	}
	return 0;
}

static void ops_dataset_show(struct request *req)
{
	sqlite3_stmt *st, *runs;
	cJSON *o, *files, *used;
	char *cause = NULL;
	int err;

	if (resolve_arg(req, &st, NULL, NULL) < 0) {
		return;
	}
	o = row_json(st);
	err = snapshot_files_json(req->d->blobs, (const char *)sqlite3_column_text(st, 2),
	                          SHOW_FILES_MAX, &files, &cause);
	cJSON_AddItemToObject(o, "file_list", files);
	if (err < 0) {
		log_warn("dataset %s: %s", cJSON_GetObjectItem(o, "id")->valuestring,
		         cause ? cause : strerror(-err));
	}
	free(cause);
	cJSON_AddBoolToObject(o, "file_list_truncated", err > 0);
	/* the runs that consumed this version */
	used = cJSON_AddArrayToObject(o, "runs");
	runs = store_prepare(req->d->store, "datasets",
	                     "SELECT r.seq, r.id, i.name FROM run_inputs i JOIN runs r ON r.seq = "
	                     "i.run_seq WHERE i.dataset = ?1 AND i.dataset_version = ?2 ORDER BY "
	                     "r.seq LIMIT 1000");
	if (runs) {
		sqlite3_bind_text(runs, 1, (const char *)sqlite3_column_text(st, 0), -1,
		                  SQLITE_TRANSIENT);
		sqlite3_bind_int64(runs, 2, sqlite3_column_int64(st, 1));
		while (sqlite3_step(runs) == SQLITE_ROW) {
			cJSON *r = cJSON_CreateObject();
			cJSON_AddNumberToObject(r, "seq", (double)sqlite3_column_int64(runs, 0));
			cJSON_AddStringToObject(r, "id",
			                        (const char *)sqlite3_column_text(runs, 1));
			cJSON_AddStringToObject(r, "input",
			                        (const char *)sqlite3_column_text(runs, 2));
			cJSON_AddItemToArray(used, r);
		}
		sqlite3_finalize(runs);
	}
	sqlite3_finalize(st);
	request_reply(req, o);
}

static void ops_dataset_delete(struct request *req)
{
	sqlite3_stmt *st, *del;
	char *name = NULL;
	int64_t version = 0;
	cJSON *res, *gone;
	int rc;

	if (resolve_arg(req, &st, &name, &version) < 0) {
		return;
	}
	sqlite3_finalize(st);
	/* NAME alone: every version. Runs keep their record of what they
	 * used (name, version, hashes); the blobs stay. */
	res = cJSON_CreateObject();
	cJSON_AddStringToObject(res, "name", name);
	gone = cJSON_AddArrayToObject(res, "deleted");
	del = version ? store_prepare(req->d->store, "datasets",
	                              "DELETE FROM datasets WHERE name = ?1 AND version = ?2 "
	                              "RETURNING version")
	              : store_prepare(req->d->store, "datasets",
	                              "DELETE FROM datasets WHERE name = ?1 RETURNING version");
	if (!del) {
		cJSON_Delete(res);
		free(name);
		request_error(req, PROTO_E_INTERNAL, "deleting the dataset failed");
		return;
	}
	sqlite3_bind_text(del, 1, name, -1, SQLITE_TRANSIENT);
	if (version) {
		sqlite3_bind_int64(del, 2, version);
	}
	while ((rc = sqlite3_step(del)) == SQLITE_ROW) {
		cJSON_AddItemToArray(gone, cJSON_CreateNumber(sqlite3_column_double(del, 0)));
	}
	sqlite3_finalize(del);
	free(name);
	if (rc != SQLITE_DONE) {
		cJSON_Delete(res);
		request_error(req, PROTO_E_INTERNAL, "deleting the dataset failed: %s",
		              store_errmsg(req->d->store));
		return;
	}
	request_reply(req, res);
}

struct dl {
	uv_work_t work;
	struct request *req;
	struct daemon *d;
	char manifest[65];
	char *dir;
	char *id;
	int err;
	char *cause;
};

static void dl_work_cb(uv_work_t *w)
{
	struct dl *x = w->data;
	int fd;

	x->err = util_mkdir_p(x->dir, 0755);
	if (x->err < 0) {
		x->cause = msg_strdupf("cannot create %s: %s", x->dir, strerror(-x->err));
		return;
	}
	fd = open(x->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		/* materialising wants an empty directory: never overwrite */
		DIR *dir = fdopendir(fd);
		struct dirent *e;
		bool empty = true;
		while (dir && (e = readdir(dir))) {
			if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
				empty = false;
				break;
			}
		}
		if (dir) {
			closedir(dir);
		} else {
			close(fd);
		}
		if (!empty) {
			x->err = -ENOTEMPTY;
			x->cause =
			    msg_strdupf("%s is not empty; give a new or empty directory", x->dir);
			return;
		}
	}
	x->err = snapshot_materialise(x->d->blobs, x->manifest, x->dir, &x->cause);
}

static void dl_done_cb(uv_work_t *w, int status)
{
	struct dl *x = w->data;

	if (x->err == -ENOTEMPTY) {
		request_error(x->req, PROTO_E_CONFLICT, "%s", x->cause);
	} else if (x->err < 0) {
		request_error_errno(x->req, x->err, x->cause);
	} else {
		cJSON *res = cJSON_CreateObject();
		cJSON_AddStringToObject(res, "dataset", x->id);
		cJSON_AddStringToObject(res, "dir", x->dir);
		request_reply(x->req, res);
	}
	request_release(x->req);
	free(x->dir);
	free(x->id);
	free(x->cause);
	free(x);
}

static void ops_dataset_download(struct request *req)
{
	const char *dir = NULL;
	char *cause = NULL;
	sqlite3_stmt *st;
	struct dl *x;
	int err;

	if (msg_arg_string(req->args, "dir", true, &dir, &cause) < 0) {
		request_arg_error(req, cause);
		return;
	}
	if (dir[0] != '/') {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
		              "directory '%s' must be an absolute "
		              "path",
		              dir);
		return;
	}
	if (resolve_arg(req, &st, NULL, NULL) < 0) {
		return;
	}
	x = calloc(1, sizeof(*x));
	if (!x) {
		sqlite3_finalize(st);
		request_error(req, PROTO_E_INTERNAL, "out of memory");
		return;
	}
	snprintf(x->manifest, sizeof(x->manifest), "%s", sqlite3_column_text(st, 2));
	x->id = msg_strdupf("%s:%lld", sqlite3_column_text(st, 0),
	                    (long long)sqlite3_column_int64(st, 1));
	sqlite3_finalize(st);
	x->d = req->d;
	x->dir = strdup(dir);
	x->req = request_hold(req);
	x->work.data = x;
	err = uv_queue_work(req->d->loop, &x->work, dl_work_cb, dl_done_cb);
	if (err < 0) {
		request_error(req, PROTO_E_INTERNAL, "cannot queue the download: %s",
		              uv_strerror(err));
		request_release(x->req);
		free(x->dir);
		free(x->id);
		free(x);
	}
}

const struct op_entry ops_dataset_entries[] = {
	{"dataset.register", ops_dataset_register, OP_NEW_WORK},
	{"dataset.list", ops_dataset_list, 0},
	{"dataset.show", ops_dataset_show, 0},
	{"dataset.download", ops_dataset_download, OP_NEW_WORK},
	{"dataset.delete", ops_dataset_delete, 0},
	{0},
};

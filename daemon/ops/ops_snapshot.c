/* ignore.check explains what a snapshot would take and why; snapshot.export
 * writes a run's snapshot as an archive into an unnamed temporary file,
 * which the client then reads in chunks with snapshot.export_read.
 *
 * Exports live in a small list of this module (the loop thread's only):
 * one is dropped when read to its end, when not read for
 * SNAPOPS_EXPORT_IDLE_S, or with the daemon; its file has no name (O_TMPFILE,
 * else unlinked at once), so nothing is left on disk whatever happens. */
#include "optable.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <uv.h>

#include "blob.h"
#include "context.h"
#include "ignore.h"
#include "msg.h"
#include "proto.h"
#include "request.h"
#include "snaparchive.h"
#include "snapshot.h"
#include "store.h"
#include "util.h"

/* Exports not read for this long are dropped (their temporary file goes). */
#define SNAPOPS_EXPORT_IDLE_S 600
/* At most this many exports are kept at once. */
#define SNAPOPS_EXPORTS_MAX 16
/* snapshot.export_read's largest chunk. */
#define SNAPOPS_CHUNK (4 * 1024 * 1024)

/* Paths one ignore.check may ask about. */
#define CHECK_PATHS_MAX 10000

static char *clean_str(const char *s)
{
	return utf8_sanitize(s, strlen(s), NULL);
}

static void add_clean(cJSON *o, const char *key, const char *value)
{
	char *c = clean_str(value);

	cJSON_AddStringToObject(o, key, c ? c : "");
	free(c);
}

/* ---- ignore.check ---- */

struct check {
	uv_work_t work;
	struct request *req;
	char *source;
	char **paths;
	size_t n;
	cJSON *result;
	int err;
	char *cause;
};

static void check_free(struct check *c)
{
	request_release(c->req);
	free(c->source);
	for (size_t i = 0; i < c->n; i++) {
		free(c->paths[i]);
	}
	free(c->paths);
	cJSON_Delete(c->result);
	free(c->cause);
	free(c);
}

static bool has_git_component(const char *p)
{
	for (;;) {
		const char *s = strchr(p, '/');
		size_t l = s ? (size_t)(s - p) : strlen(p);
		if (l == 4 && memcmp(p, ".git", 4) == 0) {
			return true;
		}
		if (!s) {
			return false;
		}
		p = s + 1;
	}
}

static const char *kind_name(mode_t m)
{
	if (S_ISREG(m)) {
		return "file";
	}
	if (S_ISDIR(m)) {
		return "dir";
	}
	if (S_ISLNK(m)) {
		return "symlink";
	}
	if (S_ISFIFO(m)) {
		return "fifo";
	}
	if (S_ISSOCK(m)) {
		return "socket";
	}
	return "device";
}

/* Whether the snapshot's reads would succeed on it. */
static bool readable(int rootfd, const char *path, bool dir)
{
	struct stat st;
	int fd = openat(rootfd, path,
	                O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | (dir ? O_DIRECTORY : 0));
	bool ok = fd >= 0;

	if (ok && dir) {
		ok = fstatat(fd, ".", &st, 0) == 0;
	}
	if (fd >= 0) {
		close(fd);
	}
	return ok;
}

/* One path's verdict: {"path", "status", "kind", "source", "line",
 * "pattern", "directory", "reason"}. */
static cJSON *check_one(int rootfd, const char *filename, const char *given)
{
	struct ignore_explanation ex = {0};
	cJSON *o = cJSON_CreateObject();
	char *cause = NULL, *path = NULL, *reason = NULL, *match = NULL;
	const char *status = "taken", *kind = "missing";
	size_t gl = strlen(given);
	int r;

	if (!o) {
		return NULL;
	}
	add_clean(o, "path", given);
	if (util_rel_normalise(given, false, &path, NULL) < 0) {
		cJSON_Delete(o);
		return NULL;
	}
	if (has_git_component(path)) {
		kind = "unknown";
		cJSON_AddStringToObject(o, "status", "never");
		cJSON_AddStringToObject(o, "reason", ".git is never taken");
		goto out;
	}
	r = ignore_explain(rootfd, filename, given, gl > 0 && given[gl - 1] == '/', &ex, &cause);
	if (r < 0) {
		cJSON_AddStringToObject(o, "status", "error");
		if (cause) {
			add_clean(o, "reason", cause);
		} else {
			cJSON_AddStringToObject(o, "reason", strerror(-r));
		}
		goto out;
	}
	if (ex.source) {
		match = msg_strdupf("%s:%u:%s", ex.source, ex.line, ex.pattern);
		add_clean(o, "source", ex.source);
		cJSON_AddNumberToObject(o, "line", ex.line);
		add_clean(o, "pattern", ex.pattern);
	}
	if (!ex.missing && !ex.not_dir) {
		kind = kind_name(ex.mode);
	}
	if (ex.not_dir) {
		status = "skipped";
		kind = "unknown";
		reason = msg_strdupf("not in the tree: %s is not a directory", ex.not_dir);
	} else if (ex.result == IGNORE_EXCLUDED && ex.excluded_dir) {
		status = "ignored";
		add_clean(o, "directory", ex.excluded_dir);
		reason = msg_strdupf("its directory %s/ is ignored by %s", ex.excluded_dir, match);
	} else if (ex.result == IGNORE_EXCLUDED) {
		status = "ignored";
		reason = msg_strdupf("ignored by %s", match);
	} else if (ex.missing) {
		reason = msg_strdupf("does not exist; it would be taken%s%s",
		                     match ? ", re-included by " : "", match ? match : "");
	} else if (S_ISREG(ex.mode) || S_ISDIR(ex.mode)) {
		if (!readable(rootfd, path, S_ISDIR(ex.mode))) {
			status = "skipped";
			reason = strdup(S_ISDIR(ex.mode) ? "the directory cannot be read"
			                                 : "the file cannot be read");
		} else if (match) {
			reason = msg_strdupf("re-included by %s", match);
		}
	} else if (S_ISLNK(ex.mode)) {
		char target[4096];
		ssize_t n = readlinkat(rootfd, path, target, sizeof(target) - 1);
		if (n < 0 || (target[n] = '\0', !snapshot_link_inside(path, target))) {
			status = "skipped";
			reason = strdup("a symlink that points outside the tree");
		} else {
			reason = msg_strdupf("kept as a symlink to %s%s%s", target,
			                     match ? ", re-included by " : "", match ? match : "");
		}
	} else {
		status = "skipped";
		reason = msg_strdupf("a %s is never taken", kind_name(ex.mode));
	}
	cJSON_AddStringToObject(o, "status", status);
	if (reason) {
		add_clean(o, "reason", reason);
	}
out:
	if (!cJSON_GetObjectItem(o, "kind")) {
		cJSON_AddStringToObject(o, "kind", kind);
	}
	free(reason);
	free(match);
	free(cause);
	free(path);
	ignore_explanation_finish(&ex);
	return o;
}

static void check_work(uv_work_t *w)
{
	struct check *c = w->data;
	const char *filename;
	cJSON *arr;
	int fd = open(c->source, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0) {
		c->err = -errno;
		c->cause = msg_strdupf("cannot open the source directory %s: %s", c->source,
		                       strerror(errno));
		return;
	}
	filename = ignore_choose(fd);
	c->result = cJSON_CreateObject();
	arr = cJSON_AddArrayToObject(c->result, "results");
	cJSON_AddStringToObject(c->result, "ignore_file", filename);
	add_clean(c->result, "source", c->source);
	for (size_t i = 0; i < c->n && arr; i++) {
		cJSON *o = check_one(fd, filename, c->paths[i]);
		if (!o) {
			c->err = -ENOMEM;
			break;
		}
		cJSON_AddItemToArray(arr, o);
	}
	close(fd);
}

static void check_done(uv_work_t *w, int status)
{
	struct check *c = w->data;

	(void)status;
	if (c->err < 0) {
		char *clean = c->cause ? clean_str(c->cause) : NULL;
		request_error_errno(c->req, c->err, clean);
		free(clean);
	} else {
		request_reply(c->req, c->result);
		c->result = NULL;
	}
	check_free(c);
}

static void ops_ignore_check(struct request *req)
{
	const char *source = NULL;
	const cJSON *paths = NULL, *it;
	char *cause = NULL;
	struct check *c;
	struct stat st;
	int err;

	if (msg_arg_string(req->args, "source", true, &source, &cause) < 0 ||
	    msg_arg_string_array(req->args, "paths", true, &paths, &cause) < 0) {
		request_arg_error(req, cause);
		return;
	}
	if (cJSON_GetArraySize(paths) > CHECK_PATHS_MAX) {
		request_error(req, PROTO_E_TOO_LARGE, "at most %d paths at once", CHECK_PATHS_MAX);
		return;
	}
	if (source[0] != '/') {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
		              "source directory '%s' must be an absolute path", source);
		return;
	}
	if (stat(source, &st) < 0 || !S_ISDIR(st.st_mode)) {
		request_error(req, errno == EACCES ? PROTO_E_PERMISSION : PROTO_E_INVALID_ARGUMENT,
		              "source %s is not a directory", source);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		request_error(req, PROTO_E_INTERNAL, "out of memory");
		return;
	}
	c->req = request_hold(req);
	c->source = strdup(source);
	c->paths = calloc((size_t)cJSON_GetArraySize(paths) + 1, sizeof(*c->paths));
	if (!c->req || !c->source || !c->paths) {
		request_error(req, PROTO_E_INTERNAL, "out of memory");
		check_free(c);
		return;
	}
	cJSON_ArrayForEach(it, paths)
	{
		c->paths[c->n] = strdup(it->valuestring);
		if (!c->paths[c->n++]) {
			request_error(req, PROTO_E_INTERNAL, "out of memory");
			check_free(c);
			return;
		}
	}
	c->work.data = c;
	err = uv_queue_work(req->d->loop, &c->work, check_work, check_done);
	if (err < 0) {
		request_error(req, PROTO_E_INTERNAL, "cannot queue the check: %s",
		              uv_strerror(err));
		check_free(c);
	}
}

/* ---- snapshot.export ---- */

struct export
{
	int64_t id;
	int fd;
	uint64_t size;
	double last_used;
	struct export *next;
};

static struct export *exports;
static int64_t last_export_id;

static void export_drop(struct export **pp)
{
	struct export *e = *pp;

	*pp = e->next;
	close(e->fd);
	free(e);
}

/* Drop exports nobody has read for a while; count those left. */
static size_t exports_sweep(void)
{
	double now = util_now();
	size_t n = 0;

	for (struct export **pp = &exports; *pp;) {
		if (now - (*pp)->last_used > SNAPOPS_EXPORT_IDLE_S) {
			export_drop(pp);
		} else {
			n++;
			pp = &(*pp)->next;
		}
	}
	return n;
}

struct exporting {
	uv_work_t work;
	struct request *req;
	struct blobstore *bs;
	char id[65];
	char *tmpdir;
	enum snaparchive_format format;
	int64_t mtime;
	int fd;
	uint64_t size;
	char sha[65];
	int err;
	char *cause;
};

static void exporting_free(struct exporting *x)
{
	request_release(x->req);
	if (x->fd >= 0) {
		close(x->fd);
	}
	free(x->tmpdir);
	free(x->cause);
	free(x);
}

/* A file without a name in dir: O_TMPFILE, else a temporary unlinked at once. */
static int unnamed_file(const char *dir)
{
	char *tmpl;
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)) {
		return fd < 0 ? -errno : fd;
	}
	if (asprintf(&tmpl, "%s/export-XXXXXX", dir) < 0) {
		return -ENOMEM;
	}
	fd = mkostemp(tmpl, O_CLOEXEC);
	if (fd >= 0) {
		unlink(tmpl);
	}
	free(tmpl);
	return fd < 0 ? -errno : fd;
}

static void export_work(uv_work_t *w)
{
	struct exporting *x = w->data;
	int fd = unnamed_file(x->tmpdir);

	if (fd < 0) {
		x->err = fd;
		x->cause = msg_strdupf("cannot create a temporary file in %s: %s", x->tmpdir,
		                       strerror(-fd));
		return;
	}
	x->fd = fd;
	x->err =
	    snaparchive_export(x->bs, x->id, x->format, fd, x->mtime, &x->size, x->sha, &x->cause);
}

static void export_done(uv_work_t *w, int status)
{
	struct exporting *x = w->data;
	struct export *e;
	cJSON *res;

	(void)status;
	if (x->err < 0) {
		char *clean = x->cause ? clean_str(x->cause) : NULL;
		request_error_errno(x->req, x->err == -ENOTSUP ? -EINVAL : x->err, clean);
		free(clean);
		goto out;
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		request_error(x->req, PROTO_E_INTERNAL, "out of memory");
		goto out;
	}
	e->id = ++last_export_id;
	e->fd = x->fd;
	x->fd = -1;
	e->size = x->size;
	e->last_used = util_now();
	e->next = exports;
	exports = e;
	res = cJSON_CreateObject();
	cJSON_AddNumberToObject(res, "export", (double)e->id);
	cJSON_AddStringToObject(res, "format", snaparchive_format_name(x->format));
	cJSON_AddNumberToObject(res, "size", (double)e->size);
	cJSON_AddStringToObject(res, "sha256", x->sha);
	cJSON_AddStringToObject(res, "snapshot", x->id);
	request_reply(x->req, res);
out:
	exporting_free(x);
}

static void ops_snapshot_export(struct request *req)
{
	const char *fmt = "tar.gz", *snap, *created;
	enum snaparchive_format format;
	struct exporting *x;
	cJSON *run = NULL;
	char *cause = NULL;
	double created_at = 0;
	int64_t seq;
	int err;

	if (request_resolve_run(req, &seq) < 0) {
		return;
	}
	if (msg_arg_string(req->args, "format", false, &fmt, &cause) < 0) {
		request_arg_error(req, cause);
		return;
	}
	if (snaparchive_format_parse(fmt, &format) < 0) {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
		              "unknown archive format '%s' (tar, tar.gz, tar.zst or zip)", fmt);
		return;
	}
	if (exports_sweep() >= SNAPOPS_EXPORTS_MAX) {
		request_error(req, PROTO_E_CONFLICT,
		              "%d exports are being read already; finish one or wait %d s",
		              SNAPOPS_EXPORTS_MAX, SNAPOPS_EXPORT_IDLE_S);
		return;
	}
	if (store_run_json(req->d->store, seq, false, &run) < 0 || !run) {
		request_error(req, PROTO_E_INTERNAL, "reading run #%lld failed: %s", (long long)seq,
		              store_errmsg(req->d->store));
		return;
	}
	snap = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(run, "snapshot"));
	created = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(run, "created_at"));
	if (created) {
		msg_parse_time(created, &created_at);
	}
	if (!snap || !blob_valid_hex(snap)) {
		request_error(req, PROTO_E_INTERNAL, "run #%lld has no snapshot", (long long)seq);
		cJSON_Delete(run);
		return;
	}
	x = calloc(1, sizeof(*x));
	if (!x) {
		cJSON_Delete(run);
		request_error(req, PROTO_E_INTERNAL, "out of memory");
		return;
	}
	x->fd = -1;
	x->req = request_hold(req);
	x->bs = req->d->blobs;
	memcpy(x->id, snap, 65);
	cJSON_Delete(run);
	x->format = format;
	x->mtime = (int64_t)created_at;
	x->tmpdir = util_path_join(blob_store_root(req->d->blobs), "tmp");
	x->work.data = x;
	if (!x->req || !x->tmpdir) {
		request_error(req, PROTO_E_INTERNAL, "out of memory");
		exporting_free(x);
		return;
	}
	err = uv_queue_work(req->d->loop, &x->work, export_work, export_done);
	if (err < 0) {
		request_error(req, PROTO_E_INTERNAL, "cannot queue the export: %s",
		              uv_strerror(err));
		exporting_free(x);
	}
}

static void ops_snapshot_export_read(struct request *req)
{
	int64_t id = 0, offset = 0, length = SNAPOPS_CHUNK;
	struct export **pp, *e;
	unsigned char *raw = NULL;
	char *b64 = NULL, *cause = NULL;
	ssize_t got = 0;
	cJSON *res;
	bool eof;

	if (msg_arg_int(req->args, "export", true, 1, INT64_MAX / 2, &id, &cause) < 0 ||
	    msg_arg_int(req->args, "offset", false, 0, INT64_MAX / 2, &offset, &cause) < 0 ||
	    msg_arg_int(req->args, "length", false, 1, SNAPOPS_CHUNK, &length, &cause) < 0) {
		request_arg_error(req, cause);
		return;
	}
	exports_sweep();
	for (pp = &exports; *pp && (*pp)->id != id; pp = &(*pp)->next) {
	}
	e = *pp;
	if (!e) {
		request_error(req, PROTO_E_NOT_FOUND,
		              "no export %lld (it was read to its end, or not read for %d s; "
		              "export again)",
		              (long long)id, SNAPOPS_EXPORT_IDLE_S);
		return;
	}
	e->last_used = util_now();
	if ((uint64_t)offset > e->size) {
		offset = (int64_t)e->size;
	}
	if ((uint64_t)length > e->size - (uint64_t)offset) {
		length = (int64_t)(e->size - (uint64_t)offset);
	}
	raw = malloc((size_t)length + 1);
	b64 = malloc(4 * (((size_t)length + 2) / 3) + 1);
	if (!raw || !b64) {
		request_error(req, PROTO_E_INTERNAL, "out of memory");
		goto out;
	}
	while (got < length) {
		ssize_t n = pread(e->fd, raw + got, (size_t)(length - got), (off_t)(offset + got));
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			request_error(req, PROTO_E_INTERNAL, "reading export %lld failed: %s",
			              (long long)id, n < 0 ? strerror(errno) : "short file");
			goto out;
		}
		got += n;
	}
	EVP_EncodeBlock((unsigned char *)b64, raw, (int)got);
	eof = (uint64_t)(offset + got) >= e->size;
	res = cJSON_CreateObject();
	cJSON_AddStringToObject(res, "data", b64);
	cJSON_AddNumberToObject(res, "size", (double)e->size);
	cJSON_AddBoolToObject(res, "eof", eof);
	request_reply(req, res);
	if (eof) {
		export_drop(pp);
	}
out:
	free(raw);
	free(b64);
}

const struct op_entry ops_snapshot_entries[] = {
	{"ignore.check", ops_ignore_check, OP_NEW_WORK},
	{"snapshot.export", ops_snapshot_export, OP_NEW_WORK},
	{"snapshot.export_read", ops_snapshot_export_read, 0},
	{0},
};

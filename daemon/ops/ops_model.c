/* The model ops: model.register, model.list, model.show, model.read and
 * model.delete. The registry keeps the models; services say which use one. */
#include "optable.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>
#include <uv.h>

#include "blob.h"
#include "context.h"
#include "log.h"
#include "models.h"
#include "ops_tracking.h"
#include "msg.h"
#include "proto.h"
#include "request.h"
#include "run.h"
#include "services.h"
#include "store.h"
#include "tracking.h"
#include "util.h"
#include "walk.h"

/* Limits of what a model carries, as for runs (docs/models.md). */
#define MODEL_DESCRIPTION_MAX 10000 /* characters */
#define MODEL_FILES_MAX 100000
#define MODEL_READ_CHUNK (4 * 1024 * 1024)

/* Frameworks: the cloud original's names, and what the CLI accepts for
 * them (compared without case, '-' and '_'). */
static const struct {
	const char *name;
	const char *alias[3];
} frameworks[] = {
    {"ScikitLearn", {"scikitlearn", "sklearn", NULL}},
    {"Onnx", {"onnx", NULL, NULL}},
    {"TensorFlow", {"tensorflow", "tf", NULL}},
    {"TfKeras", {"tfkeras", "keras", NULL}},
    {"PyTorch", {"pytorch", "torch", NULL}},
    {"Custom", {"custom", NULL, NULL}},
    {"Multi", {"multi", NULL, NULL}},
};

static const char *framework_canonical(const char *given)
{
	char key[32];
	size_t n = 0;

	for (const char *p = given; *p; p++) {
		if (*p == '-' || *p == '_') {
			continue;
		}
		if (n + 1 >= sizeof(key)) {
			return NULL;
		}
		key[n++] = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
	}
	key[n] = '\0';
	for (size_t i = 0; i < sizeof(frameworks) / sizeof(frameworks[0]); i++) {
		for (size_t k = 0; k < 3 && frameworks[i].alias[k]; k++) {
			if (strcmp(key, frameworks[i].alias[k]) == 0) {
				return frameworks[i].name;
			}
		}
	}
	return NULL;
}

static size_t utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s; s++) {
		n += ((unsigned char)*s & 0xc0) != 0x80;
	}
	return n;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

/* ---- model.register ---- */

struct reg {
	uv_work_t work;
	struct request *req;
	struct daemon *d;
	uint64_t hold; /* the blob store's, until the model is recorded */
	/* what to register */
	char *name;
	char *framework;
	char *framework_version;
	double cpu, memory_gb; /* 0: not given */
	char *description;
	cJSON *tags;
	cJSON *properties;
	int64_t run_seq; /* 0: a local file */
	char *path;      /* the run's artifact path, or the local absolute path */
	char *workdir;   /* the run's working directory, when read from there */
	/* its files: [{path, size, sha256, mode}] */
	cJSON *files;
	int err;
	char *cause;
};

static void reg_free(struct reg *g)
{
	blob_release(g->d ? g->d->blobs : NULL, g->hold);
	request_release(g->req);
	free(g->name);
	free(g->framework);
	free(g->framework_version);
	free(g->description);
	cJSON_Delete(g->tags);
	cJSON_Delete(g->properties);
	free(g->path);
	free(g->workdir);
	cJSON_Delete(g->files);
	free(g->cause);
	free(g);
}

static void add_file(cJSON *files, const char *path, uint64_t size, const char *sha, int mode)
{
	cJSON *f = cJSON_CreateObject();

	cJSON_AddStringToObject(f, "path", path);
	cJSON_AddNumberToObject(f, "size", (double)size);
	cJSON_AddStringToObject(f, "sha256", sha);
	cJSON_AddNumberToObject(f, "mode", mode);
	cJSON_AddItemToArray(files, f);
}

/* Artifacts of the run at path (a file) or below it (a folder), named
 * from path's last component on: outputs/model.joblib is "model.joblib",
 * the folder outputs/m is "m/...". */
static int files_from_artifacts(struct reg *g)
{
	sqlite3_stmt *st = store_prepare(g->d->store, "models",
	                                 "SELECT path, size, sha256, mode FROM artifacts "
	                                 "WHERE run_seq = ?1 AND (path = ?2 OR "
	                                 "(substr(path, 1, length(?2) + 1) = ?2 || '/')) "
	                                 "ORDER BY path");
	const char *slash = strrchr(g->path, '/');
	size_t skip = slash ? (size_t)(slash - g->path + 1) : 0;
	int rc;

	if (!st) {
		return -EIO;
	}
	g->files = cJSON_CreateArray();
	sqlite3_bind_int64(st, 1, g->run_seq);
	sqlite3_bind_text(st, 2, g->path, -1, SQLITE_TRANSIENT);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		add_file(g->files, col_text(st, 0) + skip, (uint64_t)sqlite3_column_int64(st, 1),
		         col_text(st, 2), sqlite3_column_int(st, 3));
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

/* Reading files in the thread pool into one blob batch. */
struct collect {
	struct blob_batch *batch;
	cJSON *files;
	const char *prefix; /* the folder's own name */
	char *cause;
};

static int collect_visit(void *ud, const struct walk_entry *e)
{
	struct collect *c = ud;
	char hex[65], *name;
	uint64_t size;
	int err, fd;

	if (e->kind != WALK_FILE) {
		return 0; /* folders are walked; links and the like are left out */
	}
	if (cJSON_GetArraySize(c->files) >= MODEL_FILES_MAX) {
		c->cause = msg_strdupf("the model has more than %d files", MODEL_FILES_MAX);
		return -E2BIG;
	}
	fd = util_open_regular(e->dirfd, e->name, O_NOFOLLOW);
	err = fd < 0 ? fd : blob_batch_put_fd(c->batch, fd, hex, &size);
	if (fd >= 0) {
		close(fd);
	}
	if (err < 0) {
		c->cause =
		    msg_strdupf("cannot store %s/%s: %s", c->prefix, e->path, strerror(-err));
		return err;
	}
	name = msg_strdupf("%s/%s", c->prefix, e->path);
	if (!name) {
		return -ENOMEM;
	}
	add_file(c->files, name, size, hex, (int)(e->st->st_mode & 07777));
	free(name);
	return 0;
}

/* Open rel below root, following no symlink on the way. */
static int open_beneath(const char *root, const char *rel)
{
	char *copy = strdup(rel), *save = NULL, *comp, *next;
	int dfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC), fd = -1;

	if (!copy || dfd < 0) {
		fd = dfd < 0 ? -errno : -ENOMEM;
		goto out;
	}
	comp = strtok_r(copy, "/", &save);
	while (comp) {
		next = strtok_r(NULL, "/", &save);
		/* O_NONBLOCK: the last may be a FIFO (the caller wants a file or
		 * a folder), whose open would wait for a writer. */
		int nfd = openat(dfd, comp,
		                 O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY |
		                     (next ? O_DIRECTORY : O_NONBLOCK));
		if (nfd < 0) {
			fd = -errno;
			goto out;
		}
		close(dfd);
		dfd = nfd;
		comp = next;
	}
	fd = dfd;
	dfd = -1;
out:
	if (dfd >= 0) {
		close(dfd);
	}
	free(copy);
	return fd;
}

static void reg_work(uv_work_t *w)
{
	struct reg *g = w->data;
	struct blob_batch *batch = NULL;
	const char *base = strrchr(g->path, '/');
	char *full = NULL;
	struct stat st;
	int fd = -1, err;

	base = base && base[1] ? base + 1 : g->path;
	g->files = cJSON_CreateArray();
	err = blob_batch_create(g->d->blobs, &batch);
	if (err < 0) {
		goto out;
	}
	if (g->workdir) {
		fd = open_beneath(g->workdir, g->path);
		full = util_path_join(g->workdir, g->path);
	} else {
		fd = open(g->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		fd = fd < 0 ? -errno : fd;
		full = strdup(g->path);
	}
	if (fd < 0) {
		err = fd;
		g->cause = err == -ENOENT ? NULL
		                          : msg_strdupf("cannot open %s: %s", full ? full : g->path,
		                                        strerror(-err));
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		err = -errno;
		goto out;
	}
	if (S_ISREG(st.st_mode)) {
		char hex[65];
		uint64_t size;
		err = blob_batch_put_fd(batch, fd, hex, &size);
		if (err < 0) {
			g->cause = msg_strdupf("cannot store %s: %s", full, strerror(-err));
			goto out;
		}
		add_file(g->files, base, size, hex, (int)(st.st_mode & 07777));
	} else if (S_ISDIR(st.st_mode)) {
		struct collect c = {.batch = batch, .files = g->files, .prefix = base};
		const struct walk_ops ops = {.visit = collect_visit};
		char *cause = NULL;
		err = walk_tree(full, &ops, &c, &cause);
		if (err < 0) {
			g->cause = c.cause ? c.cause : cause;
			if (c.cause) {
				free(cause);
			}
			goto out;
		}
		free(cause);
		if (cJSON_GetArraySize(g->files) == 0) {
			err = -ENOENT;
			g->cause = msg_strdupf("the folder %s holds no file to register", full);
			goto out;
		}
	} else {
		err = -EINVAL;
		g->cause = msg_strdupf("%s is neither a file nor a folder", full);
		goto out;
	}
	err = blob_batch_commit(batch);
	if (err < 0) {
		g->cause = msg_strdupf("storing the model's files failed: %s", strerror(-err));
	}
out:
	if (fd >= 0) {
		close(fd);
	}
	blob_batch_destroy(batch);
	free(full);
	g->err = err;
}

static int insert_kv(struct daemon *d, const char *table, int64_t id, const cJSON *map)
{
	char sql[128];
	const cJSON *kv;
	sqlite3_stmt *st;
	int rc = SQLITE_DONE;

	snprintf(sql, sizeof(sql), "INSERT INTO %s(model_id, key, value) VALUES(?1, ?2, ?3)",
	         table);
	st = store_prepare(d->store, "models", sql);
	if (!st) {
		return -EIO;
	}
	cJSON_ArrayForEach(kv, map)
	{
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_text(st, 2, kv->string, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 3, kv->valuestring, -1, SQLITE_TRANSIENT);
		rc = sqlite3_step(st);
		if (rc != SQLITE_DONE) {
			break;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

/* One transaction: the next version of the name, the model, its files,
 * tags and properties. The loop is the only writer, and the version comes
 * from a per-name counter, so versions are distinct and never reused (not
 * even after the latest is deleted). */
static int reg_insert(struct reg *g, int64_t *ret_id)
{
	struct daemon *d = g->d;
	sqlite3_stmt *st = NULL;
	int64_t version = 0, id = 0;
	const cJSON *f;
	int err = store_begin(d->store);

	if (err < 0) {
		return err;
	}
	err = -EIO;
	st = store_prepare(d->store, "models", "INSERT INTO model_names(name, last_version) VALUES(?1, 1) "
	             "ON CONFLICT(name) DO UPDATE SET last_version = last_version + 1 "
	             "RETURNING last_version");
	if (!st) {
		goto fail;
	}
	sqlite3_bind_text(st, 1, g->name, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_ROW) {
		goto fail;
	}
	version = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	st = store_prepare(d->store, "models",
	                   "INSERT INTO models(name, version, framework, framework_version, cpu, "
	                   "memory_gb, description, run_seq, source, created_at) "
	                   "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
	if (!st) {
		goto fail;
	}
	sqlite3_bind_text(st, 1, g->name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, version);
	if (g->framework) {
		sqlite3_bind_text(st, 3, g->framework, -1, SQLITE_TRANSIENT);
	}
	if (g->framework_version) {
		sqlite3_bind_text(st, 4, g->framework_version, -1, SQLITE_TRANSIENT);
	}
	if (g->cpu > 0) {
		sqlite3_bind_double(st, 5, g->cpu);
	}
	if (g->memory_gb > 0) {
		sqlite3_bind_double(st, 6, g->memory_gb);
	}
	if (g->description) {
		sqlite3_bind_text(st, 7, g->description, -1, SQLITE_TRANSIENT);
	}
	if (g->run_seq) {
		sqlite3_bind_int64(st, 8, g->run_seq);
	}
	sqlite3_bind_text(st, 9, g->path, -1, SQLITE_TRANSIENT);
	sqlite3_bind_double(st, 10, util_now());
	if (sqlite3_step(st) != SQLITE_DONE) {
		goto fail;
	}
	id = sqlite3_last_insert_rowid(store_db(d->store));
	sqlite3_finalize(st);
	st = store_prepare(d->store, "models",
	                   "INSERT INTO model_files(model_id, path, size, sha256, mode) "
	                   "VALUES(?1, ?2, ?3, ?4, ?5)");
	if (!st) {
		goto fail;
	}
	cJSON_ArrayForEach(f, g->files)
	{
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_text(st, 2, cJSON_GetObjectItem(f, "path")->valuestring, -1,
		                  SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 3, (int64_t)cJSON_GetObjectItem(f, "size")->valuedouble);
		sqlite3_bind_text(st, 4, cJSON_GetObjectItem(f, "sha256")->valuestring, -1,
		                  SQLITE_TRANSIENT);
		sqlite3_bind_int(st, 5, cJSON_GetObjectItem(f, "mode")->valueint);
		if (sqlite3_step(st) != SQLITE_DONE) {
			goto fail;
		}
	}
	sqlite3_finalize(st);
	st = NULL;
	if (insert_kv(d, "model_tags", id, g->tags) < 0 ||
	    insert_kv(d, "model_properties", id, g->properties) < 0) {
		goto fail;
	}
	err = store_commit(d->store);
	if (err < 0) {
		goto fail;
	}
	*ret_id = id;
	return 0;
fail:
	sqlite3_finalize(st);
	store_rollback(d->store);
	return err < 0 ? err : -EIO;
}

static void reg_finish(struct reg *g)
{
	struct request *req = g->req;
	int64_t id;
	cJSON *model;

	if (cJSON_GetArraySize(g->files) == 0) {
		if (g->run_seq) {
			request_error(req, PROTO_E_NOT_FOUND,
			              "run #%lld has no output '%s' (see 'runyard outputs %lld')",
			              (long long)g->run_seq, g->path, (long long)g->run_seq);
		} else {
			request_error(req, PROTO_E_NOT_FOUND, "%s holds no file", g->path);
		}
		return;
	}
	if (reg_insert(g, &id) < 0) {
		request_error(req, PROTO_E_INTERNAL, "recording model '%s' failed: %s", g->name,
		              store_errmsg(g->d->store));
		return;
	}
	if (models_json(g->d, id, services_of_model_json, &model) < 0) {
		request_error(req, PROTO_E_INTERNAL, "reading model '%s' back failed", g->name);
		return;
	}
	log_info("model %s:%lld registered (%d file(s))", g->name,
	         (long long)cJSON_GetObjectItem(model, "version")->valuedouble,
	         cJSON_GetArraySize(g->files));
	request_reply(req, model);
}

static void reg_done(uv_work_t *w, int status)
{
	struct reg *g = w->data;

	if (g->err == -ENOENT && g->run_seq) {
		/* The run may have ended meanwhile, its outputs stored and its
		 * directory gone: look at its artifacts once more. */
		cJSON_Delete(g->files);
		g->files = NULL;
		if (files_from_artifacts(g) < 0) {
			request_error(g->req, PROTO_E_INTERNAL, "reading run outputs failed");
			goto out;
		}
		reg_finish(g);
		goto out;
	}
	if (g->err < 0) {
		char *clean = g->cause ? utf8_sanitize(g->cause, strlen(g->cause), NULL) : NULL;
		request_error_errno(g->req, g->err == -ENOENT ? -ENOENT : g->err,
		                    clean ? clean
		                          : (g->err == -ENOENT ? "no such file or folder" : NULL));
		free(clean);
		goto out;
	}
	reg_finish(g);
out:
	reg_free(g);
}

/* Check tags or properties: an object of strings within the limits. */
static int check_kv(struct request *req, const char *what, const cJSON *map)
{
	const cJSON *kv;
	int n = 0;

	cJSON_ArrayForEach(kv, map)
	{
		size_t kc = utf8_chars(kv->string);
		if (!utf8_valid(kv->string, strlen(kv->string)) || kc == 0 ||
		    kc > TRACKING_KEY_MAX) {
			request_error(req, PROTO_E_INVALID_ARGUMENT,
			              "%s key '%.40s' must be 1 to %d characters", what, kv->string,
			              TRACKING_KEY_MAX);
			return -EINVAL;
		}
		if (utf8_chars(kv->valuestring) > TRACKING_VALUE_MAX) {
			request_error(req, PROTO_E_INVALID_ARGUMENT,
			              "the value of %s '%s' is longer than %d characters", what,
			              kv->string, TRACKING_VALUE_MAX);
			return -EINVAL;
		}
		n++;
	}
	if (n > TRACKING_TAGS_MAX) {
		request_error(req, PROTO_E_TOO_LARGE, "a model has at most %d %s; %d were given",
		              TRACKING_TAGS_MAX, strcmp(what, "tag") == 0 ? "tags" : "properties",
		              n);
		return -E2BIG;
	}
	return 0;
}

/* A run's artifact path: relative, "./" and doubled or trailing slashes
 * dropped, no "." or ".." component. NULL when it is not one. */
static char *normalize_path(const char *p)
{
	char *out = malloc(strlen(p) + 1), *o = out;

	if (!out) {
		return NULL;
	}
	while (*p) {
		while (*p == '/') {
			p++;
		}
		if (p[0] == '.' && (p[1] == '/' || p[1] == '\0')) {
			p++;
			continue;
		}
		if (!*p) {
			break;
		}
		if (o != out) {
			*o++ = '/';
		}
		while (*p && *p != '/') {
			*o++ = *p++;
		}
	}
	*o = '\0';
	if (!*out || !tracking_valid_path(out)) {
		free(out);
		return NULL;
	}
	return out;
}

static void ops_model_register(struct request *req)
{
	struct daemon *d = req->d;
	const char *name = NULL, *path = NULL, *file = NULL, *framework = NULL, *fversion = NULL;
	const char *description = NULL;
	const cJSON *tags = NULL, *props = NULL;
	double cpu = 0, memory = 0;
	char *cause = NULL;
	struct reg *g = NULL;
	int err;

	if (msg_arg_string(req->args, "name", true, &name, &cause) < 0 ||
	    msg_arg_string(req->args, "path", false, &path, &cause) < 0 ||
	    msg_arg_string(req->args, "file", false, &file, &cause) < 0 ||
	    msg_arg_string(req->args, "framework", false, &framework, &cause) < 0 ||
	    msg_arg_string(req->args, "framework_version", false, &fversion, &cause) < 0 ||
	    msg_arg_string(req->args, "description", false, &description, &cause) < 0 ||
	    msg_arg_number(req->args, "cpu", false, 1e-3, 1024, &cpu, &cause) < 0 ||
	    msg_arg_number(req->args, "memory_gb", false, 1e-3, 1 << 20, &memory, &cause) < 0 ||
	    msg_arg_string_map(req->args, "tags", false, &tags, &cause) < 0 ||
	    msg_arg_string_map(req->args, "properties", false, &props, &cause) < 0) {
		request_arg_error(req, cause);
		return;
	}
	if (!util_valid_name(name)) {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
		              "'%s' is not a model name: names are 1 to 255 letters, digits, '.', "
		              "'_' and '-', starting with a letter or digit",
		              name);
		return;
	}
	if (framework && !framework_canonical(framework)) {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
		              "unknown framework '%s' (one of scikit-learn, onnx, tensorflow, "
		              "tfkeras, pytorch, custom, multi)",
		              framework);
		return;
	}
	if (fversion && !framework) {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
		              "a framework version ('%s') needs a framework: give the framework "
		              "too",
		              fversion);
		return;
	}
	if (fversion && (!*fversion || strlen(fversion) > 100)) {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
		              "the framework version must be 1 to 100 characters");
		return;
	}
	if (description && utf8_chars(description) > MODEL_DESCRIPTION_MAX) {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
		              "the description is longer than %d characters",
		              MODEL_DESCRIPTION_MAX);
		return;
	}
	if (check_kv(req, "tag", tags) < 0 || check_kv(req, "property", props) < 0) {
		return;
	}
	if (!path == !file) {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
		              "give either 'path' (a run's output, with 'run' or a run's token) or "
		              "'file' (an absolute local path)");
		return;
	}
	g = calloc(1, sizeof(*g));
	if (!g) {
		request_error(req, PROTO_E_INTERNAL, "out of memory");
		return;
	}
	g->d = d;
	g->hold = blob_hold(d->blobs);
	g->work.data = g;
	g->name = strdup(name);
	g->framework = framework ? strdup(framework_canonical(framework)) : NULL;
	g->framework_version = fversion ? strdup(fversion) : NULL;
	g->description = description ? strdup(description) : NULL;
	g->cpu = cpu;
	g->memory_gb = memory;
	g->tags = tags ? cJSON_Duplicate(tags, true) : cJSON_CreateObject();
	g->properties = props ? cJSON_Duplicate(props, true) : cJSON_CreateObject();
	if (file) {
		if (cJSON_GetObjectItem(req->args, "run") ||
		    cJSON_GetObjectItem(req->args, "token")) {
			request_error(req, PROTO_E_INVALID_ARGUMENT,
			              "'file' registers a local file; a run's output is registered "
			              "with 'path'");
			goto fail;
		}
		if (file[0] != '/') {
			request_error(req, PROTO_E_INVALID_ARGUMENT,
			              "'file' must be an absolute path, not '%s'", file);
			goto fail;
		}
		g->path = strdup(file);
	} else {
		struct run *r;
		if (ops_tracking_resolve_run(req, &g->run_seq) < 0) {
			goto fail;
		}
		g->path = normalize_path(path);
		if (!g->path) {
			request_error(
			    req, PROTO_E_INVALID_ARGUMENT,
			    "'%s' is not a path among a run's outputs (a relative path like "
			    "outputs/model.joblib, without '..')",
			    path);
			goto fail;
		}
		if (files_from_artifacts(g) < 0) {
			request_error(req, PROTO_E_INTERNAL, "reading the run's outputs failed: %s",
			              store_errmsg(d->store));
			goto fail;
		}
		r = run_find(d, g->run_seq);
		if (cJSON_GetArraySize(g->files) > 0 || !r || !r->workdir ||
		    r->status < RUN_RUNNING) {
			/* Stored outputs: the model's files are those blobs. */
			g->req = request_hold(req);
			if (!g->req) {
				request_error(req, PROTO_E_INTERNAL, "out of memory");
				goto fail;
			}
			reg_finish(g);
			reg_free(g);
			return;
		}
		/* Still running: read the file from its working directory. */
		cJSON_Delete(g->files);
		g->files = NULL;
		g->workdir = strdup(r->workdir);
	}
	if (!g->name || !g->path || !g->tags || !g->properties) {
		request_error(req, PROTO_E_INTERNAL, "out of memory");
		goto fail;
	}
	g->req = request_hold(req);
	if (!g->req) {
		request_error(req, PROTO_E_INTERNAL, "out of memory");
		goto fail;
	}
	err = uv_queue_work(d->loop, &g->work, reg_work, reg_done);
	if (err < 0) {
		request_error(req, PROTO_E_INTERNAL, "cannot queue the registration: %s",
		              uv_strerror(err));
		goto fail;
	}
	return;
fail:
	reg_free(g);
}

/* ---- model.list, model.show, model.read, model.delete ---- */

static void ops_model_list(struct request *req)
{
	const char *name = NULL;
	char *cause = NULL;
	cJSON *list, *res;
	int err;

	if (msg_arg_string(req->args, "name", false, &name, &cause) < 0) {
		request_arg_error(req, cause);
		return;
	}
	err = models_list_json(req->d, name, services_of_model_json, &list);
	if (err == -ENOMEM) {
		request_error(req, PROTO_E_INTERNAL, "listing models failed");
		return;
	}
	if (err < 0) {
		request_error(req, PROTO_E_INTERNAL, "listing models failed: %s",
		              store_errmsg(req->d->store));
		return;
	}
	res = cJSON_CreateObject();
	cJSON_AddItemToObject(res, "models", list);
	request_reply(req, res);
}

/* args.model as NAME[:VERSION] (require_version: NAME:VERSION) into the
 * model's id; replies the error itself. */
static int resolve_model(struct request *req, bool require_version, int64_t *ret_id)
{
	const char *ref = NULL;
	char *cause = NULL, *name = NULL;
	int64_t version;
	int err;

	if (msg_arg_string(req->args, "model", true, &ref, &cause) < 0) {
		request_arg_error(req, cause);
		return -EINVAL;
	}
	if (models_parse_ref(ref, &name, &version, &cause) < 0) {
		request_arg_error(req, cause);
		return -EINVAL;
	}
	if (require_version && !version) {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
		              "name the version to delete: '%s:VERSION' (see 'runyard model list "
		              "%s')",
		              name, name);
		free(name);
		return -EINVAL;
	}
	err = models_find_id(req->d, name, version, ret_id);
	if (err < 0) {
		char *m = util_ref_not_found("model", name, version);
		if (err == -ENOENT) {
			request_error(req, PROTO_E_NOT_FOUND, "%s", m ? m : "no such model");
		} else {
			request_error(req, PROTO_E_INTERNAL, "reading models failed: %s",
			              store_errmsg(req->d->store));
		}
		free(m);
		free(name);
		return err;
	}
	free(name);
	return 0;
}

static void ops_model_show(struct request *req)
{
	int64_t id;
	cJSON *m;

	if (resolve_model(req, false, &id) < 0) {
		return;
	}
	if (models_json(req->d, id, services_of_model_json, &m) < 0) {
		request_error(req, PROTO_E_INTERNAL, "reading the model failed: %s",
		              store_errmsg(req->d->store));
		return;
	}
	request_reply(req, m);
}

static void ops_model_read(struct request *req)
{
	int64_t id, offset = 0, length = MODEL_READ_CHUNK, size = 0;
	const char *path = NULL;
	char *cause = NULL, hex[65] = "";
	sqlite3_stmt *st;

	if (resolve_model(req, false, &id) < 0) {
		return;
	}
	if (msg_arg_string(req->args, "path", true, &path, &cause) < 0 ||
	    msg_arg_int(req->args, "offset", false, 0, INT64_MAX / 2, &offset, &cause) < 0 ||
	    msg_arg_int(req->args, "length", false, 1, MODEL_READ_CHUNK, &length, &cause) < 0) {
		request_arg_error(req, cause);
		return;
	}
	st =
	    store_prepare(req->d->store, "models",
	                  "SELECT sha256, size FROM model_files WHERE model_id = ?1 AND path = ?2");
	if (!st) {
		request_error(req, PROTO_E_INTERNAL, "reading the model failed");
		return;
	}
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, path, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(hex, sizeof(hex), "%s", col_text(st, 0));
		size = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	if (!hex[0]) {
		request_error(req, PROTO_E_NOT_FOUND,
		              "the model has no file '%s' (see 'runyard model show')", path);
		return;
	}
	request_reply_blob_chunk(req, hex, size, offset, length, path);
}

static void ops_model_delete(struct request *req)
{
	struct daemon *d = req->d;
	char *service = NULL;
	sqlite3_stmt *st = NULL;
	int64_t id;
	cJSON *m = NULL;
	int err;

	if (resolve_model(req, true, &id) < 0) {
		return;
	}
	if (models_json(d, id, NULL, &m) < 0) {
		request_error(req, PROTO_E_INTERNAL, "reading the model failed");
		return;
	}
	const char *mid = cJSON_GetObjectItem(m, "id")->valuestring;
	if (services_model_in_use(d, id, &service)) {
		request_error(req, PROTO_E_CONFLICT,
		              "model %s is deployed by service '%s'; delete the service first "
		              "('runyard service delete %s') or deploy another version to it",
		              mid, service ? service : "?", service ? service : "SERVICE");
		goto out;
	}
	err = store_begin(d->store);
	if (err == 0) {
		st = store_prepare(d->store, "models", "DELETE FROM models WHERE id = ?1");
		err = -EIO;
		if (st) {
			sqlite3_bind_int64(st, 1, id);
			err = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
			sqlite3_finalize(st);
		}
		err = err == 0 ? store_commit(d->store) : err;
		if (err < 0) {
			store_rollback(d->store);
		}
	}
	if (err < 0) {
		request_error(req, PROTO_E_INTERNAL, "deleting model %s failed: %s", mid,
		              store_errmsg(d->store));
		goto out;
	}
	/* The blobs stay: a run's outputs or another model may share them. */
	log_info("model %s deleted", mid);
	cJSON *res = cJSON_CreateObject();
	cJSON_AddStringToObject(res, "id", mid);
	cJSON_AddBoolToObject(res, "deleted", true);
	request_reply(req, res);
out:
	free(service);
	cJSON_Delete(m);
}

const struct op_entry ops_model_entries[] = {
	{"model.register", ops_model_register, OP_NEW_WORK},
	{"model.list", ops_model_list, 0},
	{"model.show", ops_model_show, 0},
	{"model.read", ops_model_read, 0},
	{"model.delete", ops_model_delete, 0},
	{0},
};

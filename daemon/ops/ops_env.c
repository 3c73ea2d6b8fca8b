/* The environment ops: env.create, env.list, env.show, env.delete and
 * env.prune, over the registry's environments. */
#include "optable.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>
#include <uv.h>

#include "context.h"
#include "envs.h"
#include "msg.h"
#include "proto.h"
#include "request.h"
#include "services.h"
#include "store.h"
#include "util.h"

/* e.build = {size, last_used} when e's build is in the cache, else null. */
static void add_build_info(struct daemon *d, cJSON *e)
{
	const char *hash = cJSON_GetStringValue(cJSON_GetObjectItem(e, "hash"));
	char *ready = hash ? envs_path(d, hash, "/.ready") : NULL;
	char *size_path = hash ? envs_path(d, hash, "/.size") : NULL, *text = NULL;
	struct stat st;
	size_t len;

	if (ready && stat(ready, &st) == 0) {
		cJSON *b = cJSON_AddObjectToObject(e, "build");
		char ts[32];
		double kb = 0;
		if (size_path && util_read_file(size_path, 64, &text, &len) == 0) {
			kb = strtod(text, NULL);
		}
		cJSON_AddNumberToObject(b, "size", kb * 1024);
		msg_format_time((double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec / 1e9, ts);
		cJSON_AddStringToObject(b, "last_used", ts);
	} else {
		cJSON_AddNullToObject(e, "build");
	}
	free(text);
	free(ready);
	free(size_path);
}

static void ops_env_create(struct request *req)
{
	struct daemon *d = req->d;
	const char *name = NULL;
	char *cause = NULL, *text = NULL, hash[65];
	cJSON *def = NULL, *latest = NULL, *res;
	sqlite3_stmt *st = NULL;
	int64_t version = 1;
	int err;

	if (msg_arg_string(req->args, "name", true, &name, &cause) < 0) {
		request_arg_error(req, cause);
		return;
	}
	if (!util_valid_name(name)) {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
		              "'%s' is not an environment name: names are 1 to 255 letters, "
		              "digits, '.', '_' and '-', starting with a letter or digit",
		              name);
		return;
	}
	if (envs_is_builtin(name)) {
		request_error(req, PROTO_E_CONFLICT,
		              "'%s' is a built-in environment; choose another name", name);
		return;
	}
	err = envs_definition_from_args(req->args, &def, &cause);
	if (err < 0) {
		if (err == -ENOMEM) {
			request_error(req, PROTO_E_INTERNAL, "out of memory");
			free(cause);
		} else {
			request_arg_error(req, cause);
		}
		return;
	}
	text = cJSON_PrintUnformatted(def);
	if (!text || envs_hash_text(text, hash) < 0) {
		request_error(req, PROTO_E_INTERNAL, "cannot hash the definition");
		goto out;
	}
	err = envs_find(d, name, 0, &latest);
	if (err == 0) {
		const char *h = cJSON_GetObjectItem(latest, "hash")->valuestring;
		if (strcmp(h, hash) == 0) {
			cJSON_AddBoolToObject(latest, "created", false);
			request_reply(req, latest);
			latest = NULL;
			goto out;
		}
	} else if (err != -ENOENT) {
		request_error(req, PROTO_E_INTERNAL, "reading environments failed: %s",
		              store_errmsg(d->store));
		goto out;
	}
	/* versions count on past deleted ones: a number names one definition */
	st = store_prepare(d->store, "envs",
	                   "INSERT INTO environment_names(name, last_version) VALUES (?1, 1) "
	                   "ON CONFLICT(name) DO UPDATE SET last_version = last_version + 1 "
	                   "RETURNING last_version");
	if (!st) {
		request_error(req, PROTO_E_INTERNAL, "storing the environment failed");
		goto out;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_ROW) {
		request_error(req, PROTO_E_INTERNAL, "storing the environment failed: %s",
		              store_errmsg(d->store));
		goto out;
	}
	version = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	st = store_prepare(d->store, "envs",
	                   "INSERT INTO environments(name, version, hash, definition, created_at) "
	                   "VALUES (?1, ?2, ?3, ?4, ?5)");
	if (!st) {
		request_error(req, PROTO_E_INTERNAL, "storing the environment failed");
		goto out;
	}
	double now = util_now();
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, version);
	sqlite3_bind_text(st, 3, hash, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 4, text, -1, SQLITE_TRANSIENT);
	sqlite3_bind_double(st, 5, now);
	if (sqlite3_step(st) != SQLITE_DONE) {
		request_error(req, PROTO_E_INTERNAL, "storing the environment failed: %s",
		              store_errmsg(d->store));
		goto out;
	}
	res = envs_json(name, version, hash, def, now, false);
	def = NULL;
	cJSON_AddBoolToObject(res, "created", true);
	request_reply(req, res);
out:
	sqlite3_finalize(st);
	cJSON_Delete(latest);
	cJSON_Delete(def);
	free(text);
}

static void ops_env_list(struct request *req)
{
	sqlite3_stmt *st =
	    store_prepare(req->d->store, "envs", "SELECT " ENVS_COLUMNS "ORDER BY name, version");
	cJSON *list, *res;
	int rc;

	if (!st) {
		request_error(req, PROTO_E_INTERNAL, "listing environments failed");
		return;
	}
	list = cJSON_CreateArray();
	envs_add_builtins(list);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		cJSON *def = cJSON_Parse((const char *)sqlite3_column_text(st, 3));
		if (!def) {
			rc = SQLITE_ERROR;
			break;
		}
		cJSON *one =
		    envs_json((const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1),
		             (const char *)sqlite3_column_text(st, 2), def,
		             sqlite3_column_double(st, 4), false);
		add_build_info(req->d, one);
		cJSON_AddItemToArray(list, one);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		cJSON_Delete(list);
		request_error(req, PROTO_E_INTERNAL, "listing environments failed: %s",
		              store_errmsg(req->d->store));
		return;
	}
	res = cJSON_CreateObject();
	cJSON_AddItemToObject(res, "environments", list);
	request_reply(req, res);
}

static void ops_env_show(struct request *req)
{
	const char *ref = NULL;
	char *cause = NULL;
	cJSON *e = NULL;
	int err;

	if (msg_arg_string(req->args, "environment", true, &ref, &cause) < 0) {
		request_arg_error(req, cause);
		return;
	}
	err = envs_lookup(req->d, ref, &e, &cause);
	if (err < 0) {
		request_error(req,
		              err == -ENOENT   ? PROTO_E_NOT_FOUND
		              : err == -EINVAL ? PROTO_E_INVALID_ARGUMENT
		                               : PROTO_E_INTERNAL,
		              "%s", cause ? cause : "cannot read the environment");
		free(cause);
		return;
	}
	add_build_info(req->d, e);
	request_reply(req, e);
}

static void ops_env_delete(struct request *req)
{
	const char *ref = NULL;
	char *cause = NULL, *name = NULL;
	int64_t version = 0;
	sqlite3_stmt *st;
	cJSON *res;

	if (msg_arg_string(req->args, "environment", true, &ref, &cause) < 0 ||
	    envs_parse_ref(ref, &name, &version, &cause) < 0) {
		request_arg_error(req, cause);
		return;
	}
	if (envs_is_builtin(name)) {
		request_error(req, PROTO_E_CONFLICT, "'%s' is built in and cannot be deleted",
		              name);
		goto out;
	}
	st = version
	         ? store_prepare(req->d->store, "envs",
	                         "DELETE FROM environments WHERE name = ?1 AND version = ?2")
	         : store_prepare(req->d->store, "envs", "DELETE FROM environments WHERE name = ?1");
	if (!st) {
		request_error(req, PROTO_E_INTERNAL, "deleting the environment failed");
		goto out;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	if (version) {
		sqlite3_bind_int64(st, 2, version);
	}
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_finalize(st);
		request_error(req, PROTO_E_INTERNAL, "deleting the environment failed: %s",
		              store_errmsg(req->d->store));
		goto out;
	}
	sqlite3_finalize(st);
	int n = sqlite3_changes(store_db(req->d->store));
	if (n == 0) {
		request_error(req, PROTO_E_NOT_FOUND, "no environment '%s'", ref);
		goto out;
	}
	res = cJSON_CreateObject();
	cJSON_AddStringToObject(res, "id", ref);
	cJSON_AddNumberToObject(res, "deleted", n);
	request_reply(req, res);
out:
	free(name);
}

/* ---- prune ---- */

struct prune_job {
	uv_work_t work;
	char *path;
};

static void prune_work(uv_work_t *w)
{
	struct prune_job *j = w->data;
	util_rm_rf(j->path);
}

static void prune_done(uv_work_t *w, int status)
{
	struct prune_job *j = w->data;
	free(j->path);
	free(j);
}

struct cached {
	char hash[65];
	double used;
	double size;
};

static int cmp_used_desc(const void *a, const void *b)
{
	double x = ((const struct cached *)a)->used, y = ((const struct cached *)b)->used;
	return x < y ? 1 : x > y ? -1 : 0;
}

/* Is the build of hash in use: being built, the interpreter of a run that
 * has not ended, or of a service? */
static bool in_use(struct daemon *d, const char *hash)
{
	char *dir;
	bool used;

	if (envs_build_in_use(d, hash)) {
		return true;
	}
	dir = envs_path(d, hash, "/");
	used = !dir || services_use_python_under(d, dir);
	free(dir);
	return used;
}

static void ops_env_prune(struct request *req)
{
	struct daemon *d = req->d;
	int64_t keep = 3;
	char *cause = NULL, *dir = NULL;
	struct cached *list = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *dh;
	cJSON *res, *pruned;
	double freed = 0;

	if (msg_arg_int(req->args, "keep", false, 0, 1000000, &keep, &cause) < 0) {
		request_arg_error(req, cause);
		return;
	}
	dir = msg_strdupf("%s/envs", d->state_dir);
	dh = dir ? opendir(dir) : NULL;
	res = cJSON_CreateObject();
	pruned = cJSON_AddArrayToObject(res, "pruned");
	while (dh && (de = readdir(dh))) {
		struct stat st;
		char *ready, *size_path, *text = NULL;
		size_t len;
		if (strlen(de->d_name) != 64 || strspn(de->d_name, "0123456789abcdef") != 64) {
			continue;
		}
		if (n == cap) {
			struct cached *m = realloc(list, (cap ? cap * 2 : 16) * sizeof(*list));
			if (!m) {
				break;
			}
			list = m;
			cap = cap ? cap * 2 : 16;
		}
		memset(&list[n], 0, sizeof(list[n]));
		memcpy(list[n].hash, de->d_name, 65);
		ready = envs_path(d, de->d_name, "/.ready");
		size_path = envs_path(d, de->d_name, "/.size");
		/* a half-made build (no .ready) counts as least recently used */
		if (ready && stat(ready, &st) == 0) {
			list[n].used = (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec / 1e9;
		}
		if (size_path && util_read_file(size_path, 64, &text, &len) == 0) {
			list[n].size = strtod(text, NULL) * 1024;
		}
		free(text);
		free(ready);
		free(size_path);
		n++;
	}
	if (dh) {
		closedir(dh);
	}
	if (n > 1) {
		qsort(list, n, sizeof(*list), cmp_used_desc);
	}
	for (size_t i = 0; i < n; i++) {
		char *from, *to, hex[9];
		struct prune_job *j;
		if ((int64_t)i < keep && list[i].used > 0) {
			continue;
		}
		if (in_use(d, list[i].hash)) {
			continue;
		}
		/* moved aside at once (a new run builds afresh), removed in the pool */
		util_random_hex(hex, 4);
		from = envs_path(d, list[i].hash, "");
		to = msg_strdupf("%s/envs/.pruned-%s-%s", d->state_dir, list[i].hash, hex);
		j = calloc(1, sizeof(*j));
		if (from && to && j && rename(from, to) == 0) {
			j->work.data = j;
			j->path = to;
			to = NULL;
			if (uv_queue_work(d->loop, &j->work, prune_work, prune_done) < 0) {
				free(j->path);
				free(j);
			}
			j = NULL;
			cJSON_AddItemToArray(pruned, cJSON_CreateString(list[i].hash));
			freed += list[i].size;
		}
		free(j);
		free(from);
		free(to);
	}
	cJSON_AddNumberToObject(res, "freed", freed);
	cJSON_AddNumberToObject(res, "kept", (double)(n - (size_t)cJSON_GetArraySize(pruned)));
	free(list);
	free(dir);
	request_reply(req, res);
}

const struct op_entry ops_env_entries[] = {
	{"env.create", ops_env_create, OP_NEW_WORK},
	{"env.list", ops_env_list, 0},
	{"env.show", ops_env_show, 0},
	{"env.delete", ops_env_delete, 0},
	{"env.prune", ops_env_prune, 0},
	{0},
};

/* The model registry: model.register, model.list, model.show, model.read,
 * model.delete, and what deployments need of a model. */
#include "models.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <sqlite3.h>
#include <uv.h>

#include "blob.h"
#include "context.h"
#include "msg.h"
#include "run.h"
#include "store.h"
#include "util.h"

/* ---- SQL ---- */

static const char *col_text(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

static void add_text_or_null(cJSON *o, const char *name, sqlite3_stmt *st, int i)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL) {
		cJSON_AddNullToObject(o, name);
	} else {
		cJSON_AddStringToObject(o, name, col_text(st, i));
	}
}

#define MODEL_COLUMNS                                                                              \
	"m.id, m.name, m.version, m.framework, m.framework_version, m.cpu, m.memory_gb, "          \
	"m.description, m.run_seq, r.id, m.source, m.created_at "                                  \
	"FROM models m LEFT JOIN runs r ON r.seq = m.run_seq "

static cJSON *model_row_json(sqlite3_stmt *st)
{
	cJSON *m = cJSON_CreateObject();
	char id[300];

	snprintf(id, sizeof(id), "%s:%lld", col_text(st, 1),
	         (long long)sqlite3_column_int64(st, 2));
	cJSON_AddStringToObject(m, "id", id);
	cJSON_AddStringToObject(m, "name", col_text(st, 1));
	cJSON_AddNumberToObject(m, "version", (double)sqlite3_column_int64(st, 2));
	add_text_or_null(m, "framework", st, 3);
	add_text_or_null(m, "framework_version", st, 4);
	if (sqlite3_column_type(st, 5) == SQLITE_NULL &&
	    sqlite3_column_type(st, 6) == SQLITE_NULL) {
		cJSON_AddNullToObject(m, "resource_configuration");
	} else {
		cJSON *rc = cJSON_AddObjectToObject(m, "resource_configuration");
		if (sqlite3_column_type(st, 5) == SQLITE_NULL) {
			cJSON_AddNullToObject(rc, "cpu");
		} else {
			cJSON_AddNumberToObject(rc, "cpu", sqlite3_column_double(st, 5));
		}
		if (sqlite3_column_type(st, 6) == SQLITE_NULL) {
			cJSON_AddNullToObject(rc, "memory_in_gb");
		} else {
			cJSON_AddNumberToObject(rc, "memory_in_gb", sqlite3_column_double(st, 6));
		}
	}
	add_text_or_null(m, "description", st, 7);
	if (sqlite3_column_type(st, 8) == SQLITE_NULL) {
		cJSON_AddNullToObject(m, "run");
	} else {
		cJSON *run = cJSON_AddObjectToObject(m, "run");
		add_text_or_null(run, "id", st, 9);
		cJSON_AddNumberToObject(run, "seq", (double)sqlite3_column_int64(st, 8));
	}
	cJSON_AddStringToObject(m, "path", col_text(st, 10));
	msg_add_time(m, "created_at", sqlite3_column_double(st, 11));
	return m;
}

static int files_json(struct daemon *d, int64_t id, cJSON **ret, double *ret_total)
{
	sqlite3_stmt *st = store_prepare(d->store, "models",
	                                 "SELECT path, size, sha256, mode FROM model_files "
	                                 "WHERE model_id = ?1 ORDER BY path");
	cJSON *arr = cJSON_CreateArray();
	double total = 0;
	int rc;

	if (!st) {
		cJSON_Delete(arr);
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		cJSON *f = cJSON_CreateObject();
		cJSON_AddStringToObject(f, "path", col_text(st, 0));
		cJSON_AddNumberToObject(f, "size", (double)sqlite3_column_int64(st, 1));
		cJSON_AddStringToObject(f, "sha256", col_text(st, 2));
		cJSON_AddNumberToObject(f, "mode", sqlite3_column_int(st, 3));
		total += (double)sqlite3_column_int64(st, 1);
		cJSON_AddItemToArray(arr, f);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		cJSON_Delete(arr);
		return -EIO;
	}
	*ret = arr;
	if (ret_total) {
		*ret_total = total;
	}
	return 0;
}

static int kv_json(struct daemon *d, const char *table, int64_t id, cJSON **ret)
{
	char sql[128];
	sqlite3_stmt *st;
	cJSON *obj = cJSON_CreateObject();
	int rc;

	snprintf(sql, sizeof(sql), "SELECT key, value FROM %s WHERE model_id = ?1 ORDER BY key",
	         table);
	st = store_prepare(d->store, "models", sql);
	if (!st) {
		cJSON_Delete(obj);
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		cJSON_AddStringToObject(obj, col_text(st, 0), col_text(st, 1));
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		cJSON_Delete(obj);
		return -EIO;
	}
	*ret = obj;
	return 0;
}

/* Everything about one model: its row, files, tags, properties, and the
 * services the caller's services names (none when NULL). */
static int model_full_json(struct daemon *d, sqlite3_stmt *row, bool with_files,
                           models_services_fn services, cJSON **ret)
{
	int64_t id = sqlite3_column_int64(row, 0);
	cJSON *m = model_row_json(row), *files = NULL, *tags = NULL, *props = NULL, *svcs = NULL;
	double total = 0;

	if (files_json(d, id, &files, &total) < 0 || kv_json(d, "model_tags", id, &tags) < 0 ||
	    kv_json(d, "model_properties", id, &props) < 0 ||
	    (services && services(d, id, &svcs) < 0)) {
		cJSON_Delete(m);
		cJSON_Delete(files);
		cJSON_Delete(tags);
		cJSON_Delete(props);
		return -EIO;
	}
	cJSON_AddItemToObject(m, "tags", tags);
	cJSON_AddItemToObject(m, "properties", props);
	cJSON_AddNumberToObject(m, "file_count", cJSON_GetArraySize(files));
	cJSON_AddNumberToObject(m, "size", total);
	if (with_files) {
		cJSON_AddItemToObject(m, "files", files);
	} else {
		cJSON_Delete(files);
	}
	if (services) {
		cJSON_AddItemToObject(m, "services", svcs);
	}
	*ret = m;
	return 0;
}

int models_json(struct daemon *d, int64_t id, models_services_fn services, cJSON **ret)
{
	sqlite3_stmt *st = store_prepare(d->store, "models", "SELECT " MODEL_COLUMNS "WHERE m.id = ?1");
	int rc, err = -ENOENT;

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		err = model_full_json(d, st, true, services, ret);
	} else if (rc != SQLITE_DONE) {
		err = -EIO;
	}
	sqlite3_finalize(st);
	return err;
}

int models_parse_ref(const char *ref, char **ret_name, int64_t *ret_version, char **cause)
{
	return util_parse_ref(ref, "model", ret_name, ret_version, cause);
}

void models_model_finish(struct models_model *m)
{
	if (m) {
		free(m->name);
		free(m->framework);
		cJSON_Delete(m->files);
		memset(m, 0, sizeof(*m));
	}
}

static int model_fill(struct daemon *d, sqlite3_stmt *st, struct models_model *ret)
{
	struct models_model m = {0};

	m.id = sqlite3_column_int64(st, 0);
	m.name = strdup(col_text(st, 1));
	m.version = sqlite3_column_int64(st, 2);
	m.framework = col_text(st, 3) ? strdup(col_text(st, 3)) : NULL;
	m.cpu = sqlite3_column_type(st, 5) == SQLITE_NULL ? 0 : sqlite3_column_double(st, 5);
	m.memory_gb = sqlite3_column_type(st, 6) == SQLITE_NULL ? 0 : sqlite3_column_double(st, 6);
	if (!m.name || files_json(d, m.id, &m.files, NULL) < 0) {
		models_model_finish(&m);
		return -ENOMEM;
	}
	*ret = m;
	return 0;
}

int models_get_id(struct daemon *d, int64_t id, struct models_model *ret)
{
	sqlite3_stmt *st = store_prepare(d->store, "models", "SELECT " MODEL_COLUMNS "WHERE m.id = ?1");
	int err = -ENOENT;

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) == SQLITE_ROW) {
		err = model_fill(d, st, ret);
	}
	sqlite3_finalize(st);
	return err;
}

/* The row of NAME[:VERSION]; the latest version when version is 0. */
static int find_model(struct daemon *d, const char *name, int64_t version, sqlite3_stmt **ret_row)
{
	return store_find_version(d->store, "models",
				  "SELECT " MODEL_COLUMNS "WHERE m.name = ?1 AND m.version = ?2",
				  "SELECT " MODEL_COLUMNS
				  "WHERE m.name = ?1 ORDER BY m.version DESC LIMIT 1",
				  name, version, ret_row);
}

int models_get(struct daemon *d, const char *ref, struct models_model *ret, char **cause)
{
	sqlite3_stmt *st = NULL;
	char *name = NULL;
	int64_t version;
	int err;

	err = models_parse_ref(ref, &name, &version, cause);
	if (err < 0) {
		return err;
	}
	err = find_model(d, name, version, &st);
	if (err == -ENOENT) {
		*cause = util_ref_not_found("model", name, version);
	} else if (err == 0) {
		err = model_fill(d, st, ret);
		sqlite3_finalize(st);
	}
	free(name);
	return err;
}

int models_link(struct daemon *d, const struct models_model *m, const char *dir, char **ret_dir,
                char **cause)
{
	char *root = msg_strdupf("%s/%s/%lld", dir, m->name, (long long)m->version);
	const cJSON *f;
	int err = 0;

	if (!root) {
		return -ENOMEM;
	}
	err = util_mkdir_p(root, 0700);
	if (err < 0) {
		*cause = msg_strdupf("cannot create %s: %s", root, strerror(-err));
		goto out;
	}
	cJSON_ArrayForEach(f, m->files)
	{
		const char *path = cJSON_GetObjectItem(f, "path")->valuestring;
		const char *sha = cJSON_GetObjectItem(f, "sha256")->valuestring;
		char blob[4096], *link = msg_strdupf("%s/%s", root, path), *slash;
		if (!link) {
			err = -ENOMEM;
			goto out;
		}
		slash = strrchr(link, '/');
		*slash = '\0';
		err = util_mkdir_p(link, 0700);
		*slash = '/';
		if (err == 0 && blob_path(d->blobs, sha, blob, sizeof(blob)) < 0) {
			err = -EINVAL;
		}
		if (err == 0) {
			unlink(link);
			if (symlink(blob, link) < 0) {
				err = -errno;
			}
		}
		if (err < 0) {
			*cause =
			    msg_strdupf("cannot link %s to its blob: %s", link, strerror(-err));
			free(link);
			goto out;
		}
		free(link);
	}
out:
	if (err < 0) {
		free(root);
	} else {
		*ret_dir = root;
	}
	return err;
}

int models_find_id(struct daemon *d, const char *name, int64_t version, int64_t *ret_id)
{
	sqlite3_stmt *st = NULL;
	int err = find_model(d, name, version, &st);

	if (err < 0) {
		return err;
	}
	*ret_id = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return 0;
}

int models_list_json(struct daemon *d, const char *name, models_services_fn services,
                     cJSON **ret)
{
	sqlite3_stmt *st;
	cJSON *list;
	int rc;

	st = name ? store_prepare(d->store, "models",
	                          "SELECT " MODEL_COLUMNS "WHERE m.name = ?1 ORDER BY m.version")
	          : store_prepare(d->store, "models",
	                          "SELECT " MODEL_COLUMNS "ORDER BY m.name, m.version");
	if (!st) {
		return -ENOMEM;
	}
	if (name) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	}
	list = cJSON_CreateArray();
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		cJSON *m;
		if (model_full_json(d, st, false, services, &m) < 0) {
			rc = SQLITE_ERROR;
			break;
		}
		cJSON_AddItemToArray(list, m);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		cJSON_Delete(list);
		return -EIO;
	}
	*ret = list;
	return 0;
}

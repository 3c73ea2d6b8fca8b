/* Datasets: dataset.register, dataset.list, dataset.show, dataset.download,
 * dataset.delete, and what runs need of them (docs/inputs.md). */
#include "datasets.h"

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
#include "log.h"
#include "msg.h"
#include "snapshot.h"
#include "store.h"
#include "util.h"

void datasets_version_finish(struct datasets_version *v)
{
	if (v) {
		free(v->name);
		memset(v, 0, sizeof(*v));
	}
}

int datasets_find(struct daemon *d, const char *name, int64_t version, sqlite3_stmt **ret)
{
	return store_find_version(d->store, "datasets",
				  "SELECT " DATASETS_COLUMNS " FROM datasets WHERE name = ?1 AND version = ?2",
				  "SELECT " DATASETS_COLUMNS " FROM datasets WHERE name = ?1 "
				  "ORDER BY version DESC LIMIT 1",
				  name, version, ret);
}

int datasets_resolve(struct daemon *d, const char *ref, struct datasets_version *ret, char **cause)
{
	sqlite3_stmt *st = NULL;
	char *name = NULL;
	int64_t version;
	int err = util_parse_ref(ref, "dataset", &name, &version, cause);

	if (err < 0) {
		return err;
	}
	err = datasets_find(d, name, version, &st);
	if (err == -ENOENT) {
		*cause = util_ref_not_found("dataset", name, version);
	}
	if (err < 0) {
		free(name);
		return err;
	}
	ret->name = name;
	ret->version = sqlite3_column_int64(st, 1);
	snprintf(ret->manifest, sizeof(ret->manifest), "%s", sqlite3_column_text(st, 2));
	ret->files = sqlite3_column_int64(st, 3);
	ret->bytes = sqlite3_column_int64(st, 4);
	sqlite3_finalize(st);
	return 0;
}

int datasets_mount_dir(struct daemon *d, const char *manifest, char **ret_dir, char **cause)
{
	char *dir = NULL, *tmp = NULL, hex[9];
	struct stat st;
	int err = 0;

	if (!manifest || !blob_valid_hex(manifest)) {
		return -EINVAL;
	}
	dir = msg_strdupf("%s/datasets/%s", d->state_dir, manifest);
	if (!dir) {
		return -ENOMEM;
	}
	if (stat(dir, &st) == 0) {
		goto out;
	}
	/* Made under a temporary name and renamed, so a tree under the real
	 * name is always whole; two runs making it at once both succeed. */
	util_random_hex(hex, 4);
	tmp = msg_strdupf("%s/datasets/.%s.%s", d->state_dir, manifest, hex);
	if (!tmp) {
		err = -ENOMEM;
		goto out;
	}
	err = util_mkdir_p(tmp, 0755);
	if (err == 0) {
		err = snapshot_materialise(d->blobs, manifest, tmp, cause);
	}
	if (err == 0 && rename(tmp, dir) < 0 && errno != EEXIST && errno != ENOTEMPTY) {
		err = -errno;
		*cause = msg_strdupf("cannot rename %s: %s", tmp, strerror(errno));
	}
	util_rm_rf(tmp);
out:
	free(tmp);
	if (err < 0) {
		free(dir);
		return err;
	}
	*ret_dir = dir;
	return 0;
}

/* Whether name is .<64 hex>.<8 hex>: a tree datasets_mount_dir was making.
 * Only these are swept; a real tree is named by its manifest alone. */
static bool is_mount_tmp(const char *name)
{
	char manifest[65];

	if (strlen(name) != 1 + 64 + 1 + 8 || name[0] != '.' || name[65] != '.') {
		return false;
	}
	memcpy(manifest, name + 1, 64);
	manifest[64] = '\0';
	if (!blob_valid_hex(manifest)) {
		return false;
	}
	for (int i = 66; i < 74; i++) {
		if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f'))) {
			return false;
		}
	}
	return true;
}

void datasets_sweep(struct daemon *d)
{
	char *dir = util_path_join(d->state_dir, "datasets");
	DIR *dh = dir ? opendir(dir) : NULL;
	struct dirent *de;

	while (dh && (de = readdir(dh))) {
		if (!is_mount_tmp(de->d_name)) {
			continue;
		}
		char *p = util_path_join(dir, de->d_name);
		if (p) {
			log_info("removing the unfinished dataset tree %s", p);
			util_rm_rf(p);
		}
		free(p);
	}
	if (dh) {
		closedir(dh);
	}
	free(dir);
}

/* The registrations waiting for downloads are the ops' (ops_dataset.c),
 * which tell this how to drop them. */
static void (*shutdown_hook)(struct daemon *d);

void datasets_shutdown_hook(void (*fn)(struct daemon *d))
{
	shutdown_hook = fn;
}

void datasets_shutdown(struct daemon *d)
{
	if (shutdown_hook) {
		shutdown_hook(d);
	}
}

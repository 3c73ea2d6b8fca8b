/* A run's data: its inputs placed in Preparing, its outputs uploaded to
 * datastores at Finalizing. docs/inputs.md describes both. This file holds
 * what is done at submit: checking the names, paths and sources of the
 * inputs and outputs a run declares, resolving a dataset to its version
 * and manifest, and recording them; placing them is in inputs_place.c, the
 * uploads to datastores in inputs_upload.c. */
#include "inputs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "blob.h"
#include "context.h"
#include "datasets.h"
#include "inputs_priv.h"
#include "msg.h"
#include "store.h"

#define NAME_MAX_LEN 64
#define SOURCE_MAX_LEN 4096
#define PATH_MAX_LEN 1024

/* ---- names, paths, sources ---- */

/* [A-Za-z_][A-Za-z0-9_]{0,63}: it becomes part of an environment
 * variable's name. */
static bool valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > NAME_MAX_LEN || (s[0] >= '0' && s[0] <= '9')) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_')) {
			return false;
		}
	}
	return true;
}

/* A path inside the working directory: relative, no "..", no empty, "." or
 * ".." component, so it can neither climb out nor name the directory
 * itself. */
static bool valid_relpath(const char *p)
{
	const char *s = p;

	if (!*p || p[0] == '/' || strlen(p) > PATH_MAX_LEN) {
		return false;
	}
	while (*s) {
		const char *e = strchr(s, '/');
		size_t n = e ? (size_t)(e - s) : strlen(s);
		if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) {
			return false;
		}
		s += n;
		if (*s == '/') {
			s++;
			if (!*s) {
				return false;
			}
		}
	}
	return true;
}

enum src_kind inputs_source_kind(const char *s)
{
	if (strncmp(s, "dataset:", 8) == 0) {
		return SRC_DATASET;
	}
	if (strstr(s, "://")) {
		return SRC_URL;
	}
	return SRC_LOCAL;
}

static bool url_scheme_ok(const char *s)
{
	return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0 ||
	       strncmp(s, "file://", 7) == 0;
}

bool inputs_is_url(const char *s)
{
	return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

/* The last component of a URL's path, for a downloaded file's name. */
char *inputs_url_filename(const char *url)
{
	const char *p = strstr(url, "://");
	const char *end, *slash;

	p = p ? p + 3 : url;
	end = p + strcspn(p, "?#");
	slash = memrchr(p, '/', (size_t)(end - p));
	if (!slash || slash + 1 >= end) {
		return strdup("download");
	}
	char *name = strndup(slash + 1, (size_t)(end - slash - 1));
	if (name && (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)) {
		free(name);
		name = strdup("download");
	}
	return name;
}

/* A URL that libcurl would refuse later (white space, control bytes) is
 * refused at submit, before the run does any work. */
static bool url_chars_ok(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p <= ' ' || *p == 0x7f) {
			return false;
		}
	}
	return true;
}

static bool valid_sha(const char *s)
{
	return s && blob_valid_hex(s);
}

/* ---- submit ---- */

/* One entry of "inputs", checked, into the normalised array. */
static int check_input(struct daemon *d, const cJSON *in, cJSON *out, char **cause)
{
	const char *name = NULL, *source = NULL, *mode = NULL, *path = NULL, *sha = NULL;
	char *url = NULL, *real = NULL, *p = NULL;
	struct datasets_version dv = {0};
	enum src_kind kind;
	cJSON *o = NULL;
	int err = -EINVAL;

	if (!cJSON_IsObject(in)) {
		*cause = msg_strdupf("argument 'inputs' must be an array of objects "
		                     "{name, source, mode, path}");
		return -EINVAL;
	}
	if (msg_arg_string(in, "name", true, &name, cause) < 0 ||
	    msg_arg_string(in, "source", true, &source, cause) < 0 ||
	    msg_arg_string(in, "mode", false, &mode, cause) < 0 ||
	    msg_arg_string(in, "path", false, &path, cause) < 0 ||
	    msg_arg_string(in, "sha256", false, &sha, cause) < 0) {
		return -EINVAL;
	}
	if (!valid_name(name)) {
		*cause = msg_strdupf("input name '%s' is not valid: use letters, digits and '_', "
		                     "not starting with a digit, at most %d characters",
		                     name, NAME_MAX_LEN);
		return -EINVAL;
	}
	if (!*source || strlen(source) > SOURCE_MAX_LEN) {
		*cause = msg_strdupf("input %s: the source is empty or longer than %d bytes", name,
		                     SOURCE_MAX_LEN);
		return -EINVAL;
	}
	kind = inputs_source_kind(source);
	if (!mode) {
		mode = "copy";
	}
	if (strcmp(mode, "copy") != 0 && strcmp(mode, "mount") != 0 &&
	    strcmp(mode, "download") != 0) {
		*cause = msg_strdupf("input %s: unknown mode '%s' (copy, mount or download)", name,
		                     mode);
		return -EINVAL;
	}
	if (path && !valid_relpath(path)) {
		*cause = msg_strdupf("input %s: path '%s' must stay inside the working directory: "
		                     "a relative path without '..', '.' or empty components",
		                     name, path);
		return -EINVAL;
	}
	p = path ? strdup(path) : msg_strdupf("inputs/%s", name);
	o = cJSON_CreateObject();
	if (!p || !o) {
		err = -ENOMEM;
		goto out;
	}
	if (sha && !valid_sha(sha)) {
		*cause = msg_strdupf("input %s: sha256 must be 64 lowercase hex digits", name);
		goto out;
	}
	if (kind == SRC_URL) {
		const char *frag = strchr(source, '#');
		if (!url_scheme_ok(source)) {
			*cause = msg_strdupf("input %s: unsupported URL '%s' (http://, https:// or "
			                     "file://)",
			                     name, source);
			goto out;
		}
		if (!url_chars_ok(source)) {
			*cause = msg_strdupf("input %s: the URL holds white space or control "
			                     "characters; percent-escape them",
			                     name);
			goto out;
		}
		url = frag ? strndup(source, (size_t)(frag - source)) : strdup(source);
		if (!url) {
			err = -ENOMEM;
			goto out;
		}
		if (frag) {
			if (strncmp(frag, "#sha256=", 8) != 0 || !valid_sha(frag + 8)) {
				*cause = msg_strdupf("input %s: a URL's fragment must be "
				                     "#sha256=<64 lowercase hex digits>, not '%s'",
				                     name, frag);
				goto out;
			}
			if (sha && strcmp(sha, frag + 8) != 0) {
				*cause = msg_strdupf("input %s: two different sha256 given", name);
				goto out;
			}
			sha = frag + 8;
		}
		if (strcmp(mode, "mount") == 0) {
			*cause = msg_strdupf(
			    "input %s: a URL cannot be mounted; use copy or download", name);
			goto out;
		}
		cJSON_AddStringToObject(o, "source", url);
	} else if (kind == SRC_DATASET) {
		err = datasets_resolve(d, source + 8, &dv, cause);
		if (err < 0) {
			goto out;
		}
		err = -EINVAL;
		if (sha) {
			*cause = msg_strdupf("input %s: a dataset is pinned already; sha256 is for "
			                     "URLs",
			                     name);
			goto out;
		}
		char *src = msg_strdupf("dataset:%s:%lld", dv.name, (long long)dv.version);
		if (!src) {
			err = -ENOMEM;
			goto out;
		}
		cJSON_AddStringToObject(o, "source", src);
		free(src);
		cJSON_AddStringToObject(o, "dataset", dv.name);
		cJSON_AddNumberToObject(o, "version", (double)dv.version);
		cJSON_AddStringToObject(o, "hash", dv.manifest);
		cJSON_AddNumberToObject(o, "size", (double)dv.bytes);
		cJSON_AddNumberToObject(o, "files", (double)dv.files);
	} else {
		struct stat st;
		if (source[0] != '/') {
			*cause = msg_strdupf("input %s: local source '%s' must be an absolute path",
			                     name, source);
			goto out;
		}
		if (sha) {
			*cause = msg_strdupf("input %s: sha256 is for URLs", name);
			goto out;
		}
		real = realpath(source, NULL);
		if (!real || stat(real, &st) < 0) {
			*cause = msg_strdupf("input %s: local source %s: %s", name, source,
			                     strerror(errno));
			goto out;
		}
		if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
			*cause = msg_strdupf("input %s: local source %s is neither a file nor a "
			                     "directory",
			                     name, source);
			goto out;
		}
		if (access(real, R_OK | (S_ISDIR(st.st_mode) ? X_OK : 0)) < 0) {
			*cause = msg_strdupf("input %s: local source %s: %s", name, source,
			                     strerror(errno));
			goto out;
		}
		if (strcmp(mode, "mount") == 0 && !S_ISDIR(st.st_mode)) {
			*cause =
			    msg_strdupf("input %s: only a directory can be mounted, and %s is a "
			                "file; use copy or download",
			                name, source);
			goto out;
		}
		cJSON_AddStringToObject(o, "source", real);
	}
	cJSON_AddStringToObject(o, "name", name);
	cJSON_AddStringToObject(o, "mode", mode);
	cJSON_AddStringToObject(o, "path", p);
	if (sha) {
		cJSON_AddStringToObject(o, "sha256", sha);
	}
	cJSON_AddItemToArray(out, o);
	o = NULL;
	err = 0;
out:
	datasets_version_finish(&dv);
	cJSON_Delete(o);
	free(url);
	free(real);
	free(p);
	return err;
}

static int check_output(const cJSON *in, cJSON *out, char **cause)
{
	const char *name = NULL, *dir = NULL, *path = NULL;
	struct stat st;
	cJSON *o;
	char *p;

	if (!cJSON_IsObject(in)) {
		*cause = msg_strdupf("argument 'outputs' must be an array of objects {name, dir}");
		return -EINVAL;
	}
	if (msg_arg_string(in, "name", true, &name, cause) < 0 ||
	    msg_arg_string(in, "dir", true, &dir, cause) < 0 ||
	    msg_arg_string(in, "path", false, &path, cause) < 0) {
		return -EINVAL;
	}
	if (!valid_name(name)) {
		*cause = msg_strdupf("output name '%s' is not valid: use letters, digits and '_', "
		                     "not starting with a digit, at most %d characters",
		                     name, NAME_MAX_LEN);
		return -EINVAL;
	}
	if (path && !valid_relpath(path)) {
		*cause = msg_strdupf("output %s: path '%s' must stay inside the working directory: "
		                     "a relative path without '..', '.' or empty components",
		                     name, path);
		return -EINVAL;
	}
	if (inputs_is_url(dir) && strlen(dir) <= SOURCE_MAX_LEN && !strpbrk(dir, "?#") &&
	    url_chars_ok(dir)) {
		/* an HTTP datastore: files are PUT below DIR/<run id>/ */
		goto checked;
	}
	if (dir[0] != '/' || strlen(dir) > SOURCE_MAX_LEN) {
		*cause = msg_strdupf("output %s: datastore '%s' must be an absolute path or an "
		                     "http:// or https:// URL without query, fragment, white "
		                     "space or control characters",
		                     name, dir);
		return -EINVAL;
	}
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		*cause = msg_strdupf("output %s: datastore directory %s: %s", name, dir,
		                     errno && !S_ISDIR(st.st_mode) ? strerror(errno)
		                                                   : "not a directory");
		return -EINVAL;
	}
	if (access(dir, W_OK | X_OK) < 0) {
		*cause = msg_strdupf("output %s: datastore directory %s is not writable: %s", name,
		                     dir, strerror(errno));
		return -EINVAL;
	}
checked:
	p = path ? strdup(path) : msg_strdupf("outputs/%s", name);
	o = cJSON_CreateObject();
	if (!p || !o) {
		free(p);
		cJSON_Delete(o);
		return -ENOMEM;
	}
	cJSON_AddStringToObject(o, "name", name);
	cJSON_AddStringToObject(o, "dir", dir);
	cJSON_AddStringToObject(o, "path", p);
	free(p);
	cJSON_AddItemToArray(out, o);
	return 0;
}

/* Whether path a is b or lies below it, or the other way round: two inputs
 * cannot be placed one inside the other. */
static bool paths_overlap(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), n = la < lb ? la : lb;

	return strncmp(a, b, n) == 0 && (la == lb || (la < lb ? b[n] : a[n]) == '/');
}

int inputs_submit_check(struct daemon *d, const cJSON *args, cJSON **ret_inputs,
                        cJSON **ret_outputs, char **cause)
{
	const cJSON *ins = cJSON_GetObjectItemCaseSensitive(args, "inputs");
	const cJSON *outs = cJSON_GetObjectItemCaseSensitive(args, "outputs");
	cJSON *ri = cJSON_CreateArray(), *ro = cJSON_CreateArray(), *all = NULL;
	const cJSON *it;
	int err = -EINVAL;

	if (!ri || !ro) {
		err = -ENOMEM;
		goto out;
	}
	if (ins && !cJSON_IsNull(ins) && !cJSON_IsArray(ins)) {
		*cause = msg_strdupf("argument 'inputs' must be an array");
		goto out;
	}
	if (outs && !cJSON_IsNull(outs) && !cJSON_IsArray(outs)) {
		*cause = msg_strdupf("argument 'outputs' must be an array");
		goto out;
	}
	if (cJSON_GetArraySize(ins) > INPUTS_MAX || cJSON_GetArraySize(outs) > INPUTS_MAX) {
		*cause =
		    msg_strdupf("at most %d inputs and %d outputs per run", INPUTS_MAX, INPUTS_MAX);
		err = -E2BIG;
		goto out;
	}
	cJSON_ArrayForEach(it, (cJSON_IsArray(ins) ? ins : NULL))
	{
		err = check_input(d, it, ri, cause);
		if (err < 0) {
			goto out;
		}
	}
	cJSON_ArrayForEach(it, (cJSON_IsArray(outs) ? outs : NULL))
	{
		err = check_output(it, ro, cause);
		if (err < 0) {
			goto out;
		}
	}
	/* Names unique among inputs and among outputs; no two places
	 * overlapping, nor a place on top of what every run has. */
	err = -EINVAL;
	all = cJSON_CreateArray();
	if (!all) {
		err = -ENOMEM;
		goto out;
	}
	for (int k = 0; k < 2; k++) {
		cJSON *arr = k ? ro : ri;
		cJSON_ArrayForEach(it, arr)
		{
			const char *name = cJSON_GetObjectItem(it, "name")->valuestring;
			const char *path = cJSON_GetObjectItem(it, "path")->valuestring;
			const cJSON *o;
			cJSON_ArrayForEach(o, arr)
			{
				if (o == it) {
					break;
				}
				if (strcmp(cJSON_GetObjectItem(o, "name")->valuestring, name) ==
				    0) {
					*cause = msg_strdupf("%s name '%s' is given twice",
					                     k ? "output" : "input", name);
					goto out;
				}
			}
			if ((!k &&
			     (paths_overlap(path, "outputs") || paths_overlap(path, "logs"))) ||
			    (k && strcmp(path, "outputs") == 0) || paths_overlap(path, "logs")) {
				*cause = msg_strdupf("%s %s: path '%s' is taken by the run's own "
				                     "outputs/ or logs/",
				                     k ? "output" : "input", name, path);
				goto out;
			}
			cJSON_ArrayForEach(o, all)
			{
				if (paths_overlap(o->valuestring, path)) {
					*cause = msg_strdupf("%s %s: path '%s' overlaps another "
					                     "input's or output's path '%s'",
					                     k ? "output" : "input", name, path,
					                     o->valuestring);
					goto out;
				}
			}
			cJSON_AddItemToArray(all, cJSON_CreateString(path));
		}
	}
	*ret_inputs = ri;
	*ret_outputs = ro;
	ri = ro = NULL;
	err = 0;
out:
	cJSON_Delete(all);
	cJSON_Delete(ri);
	cJSON_Delete(ro);
	return err;
}

static void bind_str(sqlite3_stmt *st, int i, const cJSON *o, const char *key)
{
	const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));

	if (v) {
		sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
	} else {
		sqlite3_bind_null(st, i);
	}
}

static void bind_num(sqlite3_stmt *st, int i, const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (cJSON_IsNumber(v)) {
		sqlite3_bind_int64(st, i, (int64_t)v->valuedouble);
	} else {
		sqlite3_bind_null(st, i);
	}
}

int inputs_record(struct daemon *d, int64_t seq, const cJSON *inputs, const cJSON *outputs)
{
	sqlite3_stmt *si = NULL, *so = NULL;
	const cJSON *it;
	int idx = 0, err = 0;

	if (cJSON_GetArraySize(inputs) == 0 && cJSON_GetArraySize(outputs) == 0) {
		return 0;
	}
	si = store_prepare(d->store, "inputs",
	                   "INSERT INTO run_inputs(run_seq, idx, name, source, mode, path, sha256, "
	                   "dataset, dataset_version, kind, hash, size, files) "
	                   "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)");
	so = store_prepare(
	    d->store, "inputs",
	    "INSERT INTO run_outputs(run_seq, name, path, dest) VALUES(?1, ?2, ?3, ?4)");
	if (!si || !so || store_begin(d->store) < 0) {
		err = -EIO;
		goto out;
	}
	cJSON_ArrayForEach(it, inputs)
	{
		bool ds = cJSON_GetObjectItemCaseSensitive(it, "dataset") != NULL;
		sqlite3_reset(si);
		sqlite3_bind_int64(si, 1, seq);
		sqlite3_bind_int64(si, 2, idx++);
		bind_str(si, 3, it, "name");
		bind_str(si, 4, it, "source");
		bind_str(si, 5, it, "mode");
		bind_str(si, 6, it, "path");
		bind_str(si, 7, it, "sha256");
		bind_str(si, 8, it, "dataset");
		bind_num(si, 9, it, "version");
		if (ds) {
			sqlite3_bind_text(si, 10, "dir", -1, SQLITE_STATIC);
		} else {
			sqlite3_bind_null(si, 10);
		}
		bind_str(si, 11, it, "hash");
		bind_num(si, 12, it, "size");
		bind_num(si, 13, it, "files");
		if (sqlite3_step(si) != SQLITE_DONE) {
			err = -EIO;
			break;
		}
	}
	cJSON_ArrayForEach(it, (err == 0 ? outputs : NULL))
	{
		sqlite3_reset(so);
		sqlite3_bind_int64(so, 1, seq);
		bind_str(so, 2, it, "name");
		bind_str(so, 3, it, "path");
		bind_str(so, 4, it, "dir");
		if (sqlite3_step(so) != SQLITE_DONE) {
			err = -EIO;
			break;
		}
	}
	if (err == 0 && store_commit(d->store) == 0) {
		goto out;
	}
	err = -EIO;
	store_rollback(d->store);
out:
	sqlite3_finalize(si);
	sqlite3_finalize(so);
	return err;
}

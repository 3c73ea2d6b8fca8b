/* A run's data: its inputs placed in Preparing, its outputs uploaded to
 * datastores at Finalizing. docs/inputs.md describes both. */
#include "inputs.h"

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

#include <curl/curl.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <uv.h>

#include "blob.h"
#include "daemon.h"
#include "datasets.h"
#include "fetch.h"
#include "log.h"
#include "logs.h"
#include "msg.h"
#include "run.h"
#include "snapshot.h"
#include "store.h"
#include "util.h"

#define NAME_MAX_LEN 64
#define SOURCE_MAX_LEN 4096
#define PATH_MAX_LEN 1024
#define PROGRESS_MS 1000

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

enum src_kind { SRC_LOCAL, SRC_URL, SRC_DATASET };

static enum src_kind source_kind(const char *s)
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

static bool is_url(const char *s)
{
	return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

/* The last component of a URL's path, for a downloaded file's name. */
static char *url_filename(const char *url)
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
	kind = source_kind(source);
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
	if (is_url(dir) && strlen(dir) <= SOURCE_MAX_LEN && !strpbrk(dir, "?#") &&
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

static char *dup_col(sqlite3_stmt *st, int i)
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
		it->name = dup_col(st, 1);
		it->source = dup_col(st, 2);
		it->mode = dup_col(st, 3);
		it->path = dup_col(st, 4);
		it->sha256 = dup_col(st, 5);
		it->hash = dup_col(st, 6);
		if (!it->name || !it->source || !it->mode || !it->path) {
			err = -ENOMEM;
			break;
		}
		it->kind = source_kind(it->source);
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
		j->outdirs[nout++] = dup_col(st, 0);
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

/* mkdir -p of path's parent inside the working directory. */
static int make_parent(const char *dest)
{
	char *p = strdup(dest), *slash;
	int err = 0;

	if (!p) {
		return -ENOMEM;
	}
	slash = strrchr(p, '/');
	if (slash && slash != p) {
		*slash = '\0';
		err = util_mkdir_p(p, 0755);
	}
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
	err = make_parent(dest);
	if (err < 0) {
		*cause = msg_strdupf("input %s: cannot create the directories of %s: %s", it->name,
		                     it->path, strerror(-err));
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
		file = it->kind == SRC_URL ? url_filename(it->source)
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
		char *dir = util_path_join(j->r->workdir, *p);
		j->err = dir ? util_mkdir_p(dir, 0755) : -ENOMEM;
		if (j->err < 0) {
			j->cause = msg_strdupf("cannot create the output directory %s: %s", *p,
			                       strerror(-j->err));
			free(dir);
			return;
		}
		free(dir);
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
		if (source_kind(src) == SRC_DATASET) {
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
};

static void upload_free(struct upload *u)
{
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
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t n;
	int err = 0;

	if (fd < 0 || !ctx) {
		err = fd < 0 ? -errno : -ENOMEM;
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
	if (is_url(u->o[i].dir)) {
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
		u->o[u->n].name = dup_col(st, 0);
		u->o[u->n].path = dup_col(st, 1);
		u->o[u->n].dir = dup_col(st, 2);
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
	err = uv_queue_work(d->loop, &u->work, upload_work_cb, upload_done_cb);
	if (err < 0) {
		upload_free(u);
		return err;
	}
	r->busy = true;
	return 1;
}

/* The download cache's bound and its listing: objects/<sha256> are used
 * least recently first out when the cache is over its size (runyardd
 * --cache-max-size), or all of them on `runyard cache clear`.
 *
 * An object's mtime is when it was last handed to a request (fetch.c
 * touches it on every answer); that is the order of eviction. What is
 * never removed:
 *   - a transfer in flight: its bytes are a partial under tmp/, not an
 *     object;
 *   - an object handed out in the last FETCH_CACHE_GRACE_S seconds: the
 *     request's owner copies it into the blob store in its next work item
 *     (inputs, dataset registration), and runs never read objects in place
 *     (a URL input cannot be mounted), so once that copy has opened the
 *     file, removing its name harms nobody.
 * An evicted object's index entries go with it; a later request for the
 * URL downloads it again. */
#include "fetch.h"
#include "fetch_priv.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "util.h"

/* At most this many objects are listed or considered at once. */
#define CACHE_LIST_MAX 100000

/* Object names are 64 lowercase hex digits (as fetch.c checks them). */
static bool valid_name(const char *s)
{
	size_t i = 0;

	for (; s[i]; i++) {
		if (i >= 64 || !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
			return false;
		}
	}
	return i == 64;
}

struct obj {
	char sha[65];
	uint64_t size;
	double used_at;
};

static int cmp_used(const void *a, const void *b)
{
	const struct obj *x = a, *y = b;
	return x->used_at < y->used_at ? -1 : x->used_at > y->used_at;
}

/* The objects, oldest use first; *ret malloc'd. */
static int list_objects(const char *dir, struct obj **ret, size_t *ret_n)
{
	DIR *d = opendir(dir);
	struct obj *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;

	if (!d) {
		return -errno;
	}
	while ((de = readdir(d)) && n < CACHE_LIST_MAX) {
		struct stat st;
		if (!valid_name(de->d_name) ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode)) {
			continue;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct obj *nv = realloc(v, ncap * sizeof(*nv));
			if (!nv) {
				free(v);
				closedir(d);
				return -ENOMEM;
			}
			v = nv;
			cap = ncap;
		}
		memcpy(v[n].sha, de->d_name, 65);
		v[n].size = (uint64_t)st.st_size;
		v[n].used_at = (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec / 1e9;
		n++;
	}
	closedir(d);
	if (n > 1) {
		qsort(v, n, sizeof(*v), cmp_used);
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

/* The URLs of the index whose object is sha (each entry file is small). */
static void index_urls(const char *index, cJSON *byobj)
{
	DIR *d = opendir(index);
	struct dirent *de;

	if (!d) {
		return;
	}
	while ((de = readdir(d))) {
		char *path, *buf = NULL;
		cJSON *o;
		const cJSON *sha, *url;
		if (!strstr(de->d_name, ".json")) {
			continue;
		}
		path = util_path_join(index, de->d_name);
		if (!path || util_read_file(path, 64 * 1024, &buf, NULL) < 0) {
			free(path);
			continue;
		}
		o = cJSON_Parse(buf);
		sha = cJSON_GetObjectItemCaseSensitive(o, "sha256");
		url = cJSON_GetObjectItemCaseSensitive(o, "url");
		if (cJSON_IsString(sha) && cJSON_IsString(url)) {
			cJSON *arr = cJSON_GetObjectItemCaseSensitive(byobj, sha->valuestring);
			if (!arr) {
				arr = cJSON_AddArrayToObject(byobj, sha->valuestring);
			}
			/* the entry's file name, so eviction can drop it */
			cJSON *e = cJSON_CreateObject();
			cJSON_AddStringToObject(e, "url", url->valuestring);
			cJSON_AddStringToObject(e, "entry", de->d_name);
			cJSON_AddItemToArray(arr, e);
		}
		cJSON_Delete(o);
		free(buf);
		free(path);
	}
	closedir(d);
}

void fetch_cache_touch(struct fetch_mgr *m, const char *sha256)
{
	char *obj = util_path_join(m->objects, sha256);

	/* the order of eviction; a failure only makes it look older */
	if (obj) {
		utimensat(AT_FDCWD, obj, NULL, 0);
	}
	free(obj);
}

int fetch_cache_list(struct fetch_mgr *m, cJSON **ret)
{
	struct obj *v = NULL;
	size_t n = 0;
	cJSON *byobj = cJSON_CreateObject(), *arr = cJSON_CreateArray();
	double now = (double)time(NULL);
	int r;

	if (!byobj || !arr) {
		r = -ENOMEM;
		goto fail;
	}
	r = list_objects(m->objects, &v, &n);
	if (r < 0) {
		goto fail;
	}
	index_urls(m->index, byobj);
	/* most recently used first */
	for (size_t i = n; i-- > 0;) {
		cJSON *o = cJSON_CreateObject();
		const cJSON *e, *urls = cJSON_GetObjectItemCaseSensitive(byobj, v[i].sha);
		cJSON *u = cJSON_AddArrayToObject(o, "urls");
		cJSON_AddStringToObject(o, "sha256", v[i].sha);
		cJSON_AddNumberToObject(o, "size", (double)v[i].size);
		cJSON_AddNumberToObject(o, "used_at", v[i].used_at);
		cJSON_AddBoolToObject(o, "in_use", now - v[i].used_at < FETCH_CACHE_GRACE_S);
		cJSON_ArrayForEach(e, urls) {
			cJSON_AddItemToArray(
			    u, cJSON_CreateString(cJSON_GetObjectItemCaseSensitive(e, "url")->valuestring));
		}
		cJSON_AddItemToArray(arr, o);
	}
	free(v);
	cJSON_Delete(byobj);
	*ret = arr;
	return 0;
fail:
	free(v);
	cJSON_Delete(byobj);
	cJSON_Delete(arr);
	return r;
}

/* One trim, in the thread pool. */
struct trim {
	uv_work_t work;
	struct fetch_mgr *m;
	uint64_t max; /* keep at most this many bytes */
	fetch_trim_cb cb;
	void *ud;
	struct fetch_trim_result res;
	int err;
};

static void trim_work(uv_work_t *w)
{
	struct trim *t = w->data;
	struct fetch_mgr *m = t->m;
	struct obj *v = NULL;
	size_t n = 0;
	uint64_t total = 0;
	double now = (double)time(NULL);
	cJSON *byobj = cJSON_CreateObject();

	t->err = list_objects(m->objects, &v, &n);
	if (t->err < 0 || !byobj) {
		t->err = t->err < 0 ? t->err : -ENOMEM;
		goto out;
	}
	index_urls(m->index, byobj);
	for (size_t i = 0; i < n; i++) {
		total += v[i].size;
	}
	t->res.bytes_before = total;
	for (size_t i = 0; i < n && total > t->max; i++) {
		char *obj;
		const cJSON *e;
		if (now - v[i].used_at < FETCH_CACHE_GRACE_S) {
			t->res.kept_in_use++;
			continue;
		}
		/* the index first: an entry never names a missing object for long,
		 * and one that does is ignored (fetch_entry_load checks) */
		cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(byobj, v[i].sha)) {
			char *p = util_path_join(
			    m->index, cJSON_GetObjectItemCaseSensitive(e, "entry")->valuestring);
			if (p) {
				unlink(p);
			}
			free(p);
		}
		obj = util_path_join(m->objects, v[i].sha);
		if (obj && unlink(obj) == 0) {
			t->res.removed++;
			t->res.bytes += v[i].size;
			total -= v[i].size;
		}
		free(obj);
	}
	t->res.bytes_after = total;
out:
	cJSON_Delete(byobj);
	free(v);
}

static void trim_done(uv_work_t *w, int status)
{
	struct trim *t = w->data;
	struct fetch_mgr *m = t->m;

	m->works--;
	if (t->cb) {
		t->cb(t->ud, m->closing ? -ECANCELED : status < 0 ? status : t->err, &t->res);
	}
	free(t);
	/* through the manager's hook: this file never calls fetch.c back */
	m->release(m);
}

int fetch_cache_trim(struct fetch_mgr *m, uint64_t max_bytes, fetch_trim_cb cb, void *ud)
{
	struct trim *t;
	int r;

	if (m->closing) {
		return -ECANCELED;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		return -ENOMEM;
	}
	t->m = m;
	t->max = max_bytes;
	t->cb = cb;
	t->ud = ud;
	t->work.data = t;
	r = uv_queue_work(m->loop, &t->work, trim_work, trim_done);
	if (r < 0) {
		free(t);
		return r;
	}
	m->works++;
	return 0;
}

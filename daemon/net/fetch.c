/* The download manager: the requests waiting for a URL and their
 * answers (delivered from the idle handle, never from inside curl or a work
 * item), the transfers they share (one per URL, single flight), starting a
 * request (from the cache, joining a transfer, or a new one), cancelling,
 * and the manager's own handles; below them, the cache on disk (the index
 * entry of each URL with its validators and object, a partial download's
 * metadata) and the work items run on the loop's thread pool (rehashing a
 * partial left by an earlier process, moving a finished download into
 * objects/ with its index entry, copying a file:// source in). An HTTP
 * transfer's attempts are in fetch_http.c. */
#include "fetch.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/evp.h>

#include "fetch_priv.h"
#include "http.h"
#include "msg.h"
#include "util.h"

/* Sizes in MB of 1,000,000 bytes, as the daemon's options count them. */
#define DEFAULT_MAX_BYTES (10240ull * 1000 * 1000)
#define DEFAULT_TIMEOUT_MS FETCH_DEFAULT_TIMEOUT_MS
#define DEFAULT_RETRIES 3

static void deliver_cb(uv_idle_t *h);

uint64_t fetch_now_ms(void)
{
	return uv_hrtime() / 1000000;
}

void fetch_entry_clear(struct entry *e)
{
	free(e->etag);
	free(e->last_modified);
	memset(e, 0, sizeof(*e));
}

static void hex(const unsigned char *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int n = sizeof(md);

	EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
	hex(md, 32, out);
}

void fetch_md_final_hex(EVP_MD_CTX *ctx, char out[65])
{
	unsigned char md[32];
	unsigned int n = sizeof(md);

	EVP_DigestFinal_ex(ctx, md, &n);
	hex(md, 32, out);
}

bool fetch_valid_digest(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++) {
		if (!isxdigit((unsigned char)s[i])) {
			return false;
		}
	}
	return i == 64;
}

/* -- request lists ------------------------------------------------------- */

static void req_link(struct fetch_req **head, struct fetch_req *q)
{
	struct fetch_req **p = head, *prev = NULL;

	/* Appended, so requests are answered in the order they came. */
	while (*p) {
		prev = *p;
		p = &(*p)->next;
	}
	*p = q;
	q->prev = prev;
	q->next = NULL;
	q->head = head;
}

static void req_unlink(struct fetch_req *q)
{
	if (!q->head) {
		return;
	}
	if (q->m->qiter == q) {
		q->m->qiter = q->next;
	}
	if (q->prev) {
		q->prev->next = q->next;
	} else {
		*q->head = q->next;
	}
	if (q->next) {
		q->next->prev = q->prev;
	}
	q->prev = q->next = NULL;
	q->head = NULL;
}

static void req_free(struct fetch_req *q)
{
	req_unlink(q);
	free(q->cause);
	free(q->path);
	free(q);
}

/* Give q its result and queue it for the idle handle. */
static void req_answer(struct fetch_req *q, int err, const char *cause, const char *sha256,
                       uint64_t size, bool from_cache)
{
	struct fetch_mgr *m = q->m;

	req_unlink(q);
	q->x = NULL;
	q->err = err;
	if (err < 0) {
		q->cause = strdup(cause ? cause : strerror(-err));
	} else {
		char *obj = util_path_join(m->objects, sha256);

		q->path = obj;
		fetch_cache_touch(m, sha256);
		memcpy(q->sha256, sha256, 65);
		q->size = size;
		q->from_cache = from_cache;
		if (!obj) {
			q->err = -ENOMEM;
		}
	}
	req_link(&m->ready, q);
	if (!m->closing) {
		uv_idle_start(&m->deliver, deliver_cb);
	}
}

static void deliver_cb(uv_idle_t *h)
{
	struct fetch_mgr *m = h->data;
	struct fetch_req *q;

	uv_idle_stop(h);
	/* A callback may start, cancel or close anything: take one at a time
	 * from the head, and stop when the manager closes. */
	while (!m->closing && (q = m->ready)) {
		struct fetch_result res = {
		    .err = q->err,
		    .path = q->err ? NULL : q->path,
		    .sha256 = q->err ? NULL : q->sha256,
		    .size = q->err ? 0 : q->size,
		    .from_cache = q->err ? false : q->from_cache,
		    .cause = q->err ? (q->cause ? q->cause : "out of memory") : NULL,
		};

		req_unlink(q);
		q->in_cb = true;
		q->done(q->ud, &res);
		req_free(q);
	}
}

/* The result for one waiter of a body with this digest: its own checksum
 * and size limit apply. */
static void answer_body(struct xfer *x, struct fetch_req *q, const char *sha256, uint64_t size,
                        bool from_cache)
{
	char *cause = NULL;

	if (q->want[0] && strcmp(q->want, sha256) != 0) {
		cause = msg_strdupf("%s: checksum mismatch: expected sha256 %s, got %s", x->url,
		                    q->want, sha256);
		req_answer(q, -EBADMSG, cause, NULL, 0, false);
	} else if (size > q->max_bytes) {
		cause = msg_strdupf("%s: %" PRIu64 " bytes is over the limit of %" PRIu64 " bytes",
		                    x->url, size, q->max_bytes);
		req_answer(q, -EFBIG, cause, NULL, 0, false);
	} else {
		req_answer(q, 0, NULL, sha256, size, from_cache);
	}
	free(cause);
}

void fetch_xfer_succeed(struct xfer *x, const char *sha256, uint64_t size, bool from_cache)
{
	struct fetch_mgr *m = x->m;

	while (x->waiters) {
		answer_body(x, x->waiters, sha256, size, from_cache);
	}
	fetch_xfer_free(x);
	/* A new object may take the cache over its bound: the least recently
	 * used ones go (never this one: it was just handed out). */
	if (!from_cache && m->cache_max > 0) {
		fetch_cache_trim(m, m->cache_max, NULL, NULL);
	}
}

/* Every waiter fails with "URL: <reason>". */
void fetch_xfer_fail(struct xfer *x, int err, const char *fmt, ...)
{
	char *reason = NULL, *cause = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&reason, fmt, ap) < 0) {
		reason = NULL;
	}
	va_end(ap);
	cause = msg_strdupf("%s: %s", x->url, reason ? reason : "out of memory");
	while (x->waiters) {
		req_answer(x->waiters, err, cause, NULL, 0, false);
	}
	free(reason);
	free(cause);
	fetch_xfer_free(x);
}

/* -- the transfer's life ------------------------------------------------- */

static void xfer_unlink(struct xfer *x)
{
	struct fetch_mgr *m = x->m;

	if (!x->linked) {
		return;
	}
	if (m->xiter == x) {
		m->xiter = x->next;
	}
	if (x->prev) {
		x->prev->next = x->next;
	} else {
		m->xfers = x->next;
	}
	if (x->next) {
		x->next->prev = x->prev;
	}
	x->prev = x->next = NULL;
	x->linked = false;
}

void fetch_response_reset(struct xfer *x)
{
	free(x->etag);
	free(x->last_modified);
	x->etag = x->last_modified = NULL;
	x->status = 0;
	x->reason[0] = '\0';
	x->clen = x->crange_start = x->crange_total = -1;
	x->body = false;
}

void fetch_mgr_release(struct fetch_mgr *m)
{
	if (m->closing && m->handles == 0 && m->works == 0) {
		free(m->dir);
		free(m->objects);
		free(m->index);
		free(m->tmp);
		free(m);
	}
}

/* Free x, or leave it to its work item, which frees it when it returns.
 * Until then it stays in the list, so a new request for its URL joins it
 * rather than racing it for the same partial file. */
void fetch_xfer_free(struct xfer *x)
{
	if (x->busy) {
		x->orphan = true;
		if (x->m->closing) {
			xfer_unlink(x);
		}
		return;
	}
	xfer_unlink(x);
	http_cancel(x->hx);
	if (x->easy) {
		curl_easy_cleanup(x->easy);
	}
	curl_slist_free_all(x->hdrs);
	if (x->fd >= 0) {
		close(x->fd);
	}
	EVP_MD_CTX_free(x->md);
	fetch_response_reset(x);
	fetch_entry_clear(&x->cached);
	free(x->part_etag);
	free(x->part_lm);
	free(x->work_reason);
	free(x->file_path);
	free(x->part_path);
	free(x->meta_path);
	free(x->url);
	free(x);
}

/* Nobody waits for x any more: stop it. A partial download stays for a
 * later request to resume. */
static void xfer_abandon(struct xfer *x)
{
	fetch_xfer_free(x);
}

/* -- starting ------------------------------------------------------------ */

static int from_hex(int c)
{
	return isdigit(c) ? c - '0' : tolower(c) - 'a' + 10;
}

/* The local path of a file:// URL (empty host or localhost), decoded. */
static char *file_url_path(const char *url)
{
	const char *p = url + 7;
	char *out, *o;

	if (strncasecmp(p, "localhost/", 10) == 0) {
		p += 9;
	}
	if (*p != '/') {
		return NULL;
	}
	out = malloc(strlen(p) + 1);
	if (!out) {
		return NULL;
	}
	for (o = out; *p && *p != '?' && *p != '#'; p++) {
		if (*p == '%' && isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2])) {
			*o++ = (char)(from_hex((unsigned char)p[1]) * 16 +
			              from_hex((unsigned char)p[2]));
			p += 2;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	if (strlen(out) != (size_t)(o - out)) {
		free(out); /* %00 */
		return NULL;
	}
	return out;
}

static int xfer_create(struct fetch_mgr *m, const char *url, enum xfer_kind kind, long timeout_ms,
                       struct xfer **ret)
{
	struct xfer *x = calloc(1, sizeof(*x));
	char name[96];

	if (!x) {
		return -ENOMEM;
	}
	x->m = m;
	x->kind = kind;
	x->fd = -1;
	x->retries = m->retries;
	x->started = fetch_now_ms();
	x->deadline = x->started + (uint64_t)timeout_ms;
	x->url = strdup(url);
	x->md = EVP_MD_CTX_new();
	sha256_hex(url, strlen(url), x->key);
	snprintf(name, sizeof(name), "%s.part", x->key);
	x->part_path = util_path_join(m->tmp, name);
	snprintf(name, sizeof(name), "%s.part.json", x->key);
	x->meta_path = util_path_join(m->tmp, name);
	fetch_response_reset(x);
	if (!x->url || !x->md || !x->part_path || !x->meta_path ||
	    !EVP_DigestInit_ex(x->md, EVP_sha256(), NULL)) {
		fetch_xfer_free(x);
		return -ENOMEM;
	}
	x->next = m->xfers;
	if (x->next) {
		x->next->prev = x;
	}
	m->xfers = x;
	x->linked = true;
	*ret = x;
	return 0;
}

/* Start x: look in the index, pick up a partial left from before, go. */
static void xfer_begin(struct xfer *x)
{
	struct stat st;

	x->have_cached = fetch_entry_load(x->m, x->url, x->key, &x->cached);
	if (x->kind == XFER_FILE) {
		fetch_work_queue(x, WORK_FILE);
		return;
	}
	if (stat(x->part_path, &st) == 0) {
		if (fetch_meta_load(x) && (uint64_t)st.st_size <= x->max_bytes) {
			/* Hashing a large partial takes a while: not on the loop. */
			fetch_work_queue(x, WORK_REHASH);
			return;
		}
		fetch_part_discard(x);
	}
	fetch_attempt_start(x);
}

int fetch_start(struct fetch_mgr *m, const struct fetch_opts *o, fetch_progress_cb progress,
                fetch_done_cb done, void *ud, struct fetch_req **ret)
{
	struct fetch_req *q;
	struct xfer *x;
	char *cause = NULL, *path = NULL;
	enum xfer_kind kind;
	int r = 0;

	if (!m || !o || !o->url || !done) {
		return -EINVAL;
	}
	if (m->closing) {
		return -ECANCELED;
	}
	q = calloc(1, sizeof(*q));
	if (!q) {
		return -ENOMEM;
	}
	q->m = m;
	q->progress = progress;
	q->done = done;
	q->ud = ud;
	q->max_bytes = o->max_bytes ? o->max_bytes : m->max_bytes;
	long timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : m->timeout_ms;

	/* What is wrong with the request itself is an answer, not a failure
	 * to start: it comes through done, with a cause, like the rest. */
	if (strncasecmp(o->url, "http://", 7) == 0 || strncasecmp(o->url, "https://", 8) == 0) {
		kind = XFER_HTTP;
		if (strpbrk(o->url, " \t\r\n")) {
			cause = msg_strdupf("%s: not a valid URL (it holds white space)", o->url);
			req_answer(q, -EINVAL, cause, NULL, 0, false);
			goto out;
		}
	} else if (strncasecmp(o->url, "file://", 7) == 0) {
		kind = XFER_FILE;
		path = file_url_path(o->url);
		if (!path) {
			cause = msg_strdupf("%s: only file:///absolute/path URLs of this machine "
			                    "can be fetched",
			                    o->url);
			req_answer(q, -EINVAL, cause, NULL, 0, false);
			goto out;
		}
	} else {
		cause = msg_strdupf("%s: runyard fetches http://, https:// and file:// URLs only",
		                    o->url);
		req_answer(q, -EPROTONOSUPPORT, cause, NULL, 0, false);
		goto out;
	}
	if (o->sha256) {
		if (!fetch_valid_digest(o->sha256)) {
			cause = msg_strdupf("%s: '%s' is not a SHA-256 digest (64 hex digits)",
			                    o->url, o->sha256);
			req_answer(q, -EINVAL, cause, NULL, 0, false);
			goto out;
		}
		for (int i = 0; i < 64; i++) {
			q->want[i] = (char)tolower((unsigned char)o->sha256[i]);
		}
		/* The cache is content addressed: bytes with the expected digest
		 * are the answer, from whatever URL they came. */
		char *obj = util_path_join(m->objects, q->want);
		struct stat st;
		if (obj && stat(obj, &st) == 0 && S_ISREG(st.st_mode) &&
		    (uint64_t)st.st_size <= q->max_bytes) {
			free(obj);
			req_answer(q, 0, NULL, q->want, (uint64_t)st.st_size, true);
			goto out;
		}
		free(obj);
	}
	for (x = m->xfers; x; x = x->next) {
		if (strcmp(x->url, o->url) == 0) {
			break;
		}
	}
	if (!x) {
		r = xfer_create(m, o->url, kind, timeout_ms, &x);
		if (r < 0) {
			free(q);
			q = NULL;
			goto out;
		}
		x->max_bytes = q->max_bytes;
		x->file_path = path;
		path = NULL;
		q->x = x;
		req_link(&x->waiters, q);
		xfer_begin(x);
	} else {
		/* Single flight: one transfer, with the largest limit asked. */
		if (q->max_bytes > x->max_bytes) {
			x->max_bytes = q->max_bytes;
		}
		q->x = x;
		req_link(&x->waiters, q);
	}
out:
	free(cause);
	free(path);
	if (r == 0 && ret) {
		*ret = q;
	}
	return r;
}

void fetch_cancel(struct fetch_req *q)
{
	struct xfer *x;

	if (!q || q->in_cb) {
		return;
	}
	x = q->x;
	req_free(q);
	if (x && !x->waiters) {
		xfer_abandon(x);
	}
}

/* -- the manager --------------------------------------------------------- */

static void handle_close_cb(uv_handle_t *h)
{
	struct fetch_mgr *m = h->data;

	m->handles--;
	fetch_mgr_release(m);
}

static void http_gone_cb(void *ud)
{
	struct fetch_mgr *m = ud;

	m->handles--;
	fetch_mgr_release(m);
}

int fetch_mgr_create(uv_loop_t *loop, const char *cache_dir, const struct fetch_limits *lim,
                     struct fetch_mgr **ret)
{
	struct fetch_mgr *m = calloc(1, sizeof(*m));
	int r = -ENOMEM;

	if (!m) {
		return -ENOMEM;
	}
	m->loop = loop;
	m->max_bytes = lim && lim->max_bytes ? lim->max_bytes : DEFAULT_MAX_BYTES;
	m->timeout_ms = lim && lim->timeout_ms > 0 ? lim->timeout_ms : DEFAULT_TIMEOUT_MS;
	m->retries = lim && lim->retries >= 0 ? lim->retries : DEFAULT_RETRIES;
	m->cache_max = lim ? lim->cache_max_bytes : 0;
	m->release = fetch_mgr_release;
	m->dir = strdup(cache_dir);
	m->objects = util_path_join(cache_dir, "objects");
	m->index = util_path_join(cache_dir, "index");
	m->tmp = util_path_join(cache_dir, "tmp");
	if (!m->dir || !m->objects || !m->index || !m->tmp) {
		goto fail;
	}
	if ((r = util_mkdir_p(m->objects, 0700)) < 0 || (r = util_mkdir_p(m->index, 0700)) < 0 ||
	    (r = util_mkdir_p(m->tmp, 0700)) < 0) {
		goto fail;
	}
	r = http_mgr_create(loop, &m->http);
	if (r < 0) {
		goto fail;
	}
	uv_idle_init(loop, &m->deliver);
	m->deliver.data = m;
	uv_timer_init(loop, &m->tick);
	m->tick.data = m;
	uv_timer_init(loop, &m->wake);
	m->wake.data = m;
	m->handles = 4;
	if (m->cache_max > 0) {
		/* the bound may have been lowered since the last start */
		fetch_cache_trim(m, m->cache_max, NULL, NULL);
	}
	*ret = m;
	return 0;
fail:
	free(m->dir);
	free(m->objects);
	free(m->index);
	free(m->tmp);
	free(m);
	return r;
}

void fetch_mgr_close(struct fetch_mgr *m)
{
	if (!m || m->closing) {
		return;
	}
	m->closing = true;
	while (m->ready) {
		req_free(m->ready);
	}
	while (m->xfers) {
		struct xfer *x = m->xfers;
		while (x->waiters) {
			req_free(x->waiters);
		}
		xfer_unlink(x);
		fetch_xfer_free(x);
	}
	http_mgr_close(m->http, http_gone_cb, m);
	m->http = NULL;
	uv_close((uv_handle_t *)&m->deliver, handle_close_cb);
	uv_close((uv_handle_t *)&m->tick, handle_close_cb);
	uv_close((uv_handle_t *)&m->wake, handle_close_cb);
}

/* -- the cache on disk ----------------------------------------------------- */

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

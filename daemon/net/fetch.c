/* The download manager: the requests waiting for a URL and their
 * answers (delivered from the idle handle, never from inside curl or a work
 * item), the transfers they share (one per URL, single flight), starting a
 * request (from the cache, joining a transfer, or a new one), cancelling,
 * and the manager's own handles. The cache on disk and the work items are
 * in fetch_cache.c, an HTTP transfer's attempts in fetch_http.c. */
#include "fetch.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

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
	while (x->waiters) {
		answer_body(x, x->waiters, sha256, size, from_cache);
	}
	fetch_xfer_free(x);
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

/* One transfer's HTTP side: an attempt with its request headers (a
 * conditional request from the cached validators, a Range to resume a
 * partial), the response's headers and body written to the partial and
 * hashed as they come, progress once a second, stalls, and retries with
 * back-off on transient failures until the transfer succeeds or fails. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "fetch_priv.h"
#include "http.h"
#include "msg.h"

#define BACKOFF_FIRST_MS 500
#define BACKOFF_MAX_MS 30000
#define CONNECT_TIMEOUT_MS 30000L
/* A transfer that moves nothing for this long is broken, whatever the
 * whole-fetch timeout says; it is retried like a reset connection. */
#define STALL_SECONDS 60L
#define PROGRESS_MS 1000
/* A validator (ETag, Last-Modified) longer than this is not kept: real ones
 * are short, and a server's 100 KB one would make the index entry and the
 * partial's metadata too large to read back (INDEX_MAX), so the cache
 * would never revalidate nor resume that URL. */
#define VALIDATOR_MAX 1024

static void wake_cb(uv_timer_t *t);

/* -- HTTP ---------------------------------------------------------------- */

static bool header_is(const char *line, size_t n, const char *name, const char **ret_value,
                      size_t *ret_len)
{
	size_t k = strlen(name);

	if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':') {
		return false;
	}
	line += k + 1;
	n -= k + 1;
	while (n > 0 && (*line == ' ' || *line == '\t')) {
		line++;
		n--;
	}
	while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == '\n' || line[n - 1] == ' ')) {
		n--;
	}
	*ret_value = line;
	*ret_len = n;
	return true;
}

/* The headers of a body have all come: decide where its bytes go. */
static int body_begin(struct xfer *x)
{
	struct fetch_mgr *m = x->m;

	if (x->status == 206) {
		if (x->crange_start < 0 || (uint64_t)x->crange_start != x->done) {
			/* Not the range asked for: start over on the next attempt. */
			x->resumable = false;
			x->local_err = -EPROTO;
			return -1;
		}
		x->total = x->crange_total >= 0 ? (uint64_t)x->crange_total
		           : x->clen >= 0       ? x->done + (uint64_t)x->clen
		                                : 0;
	} else {
		/* A whole body: whatever was kept from before is not part of it. */
		if (x->done > 0) {
			if (x->fd >= 0 && ftruncate(x->fd, 0) < 0) {
				x->local_err = -errno;
				return -1;
			}
			x->done = 0;
			EVP_DigestInit_ex(x->md, EVP_sha256(), NULL);
		}
		x->total = x->clen >= 0 ? (uint64_t)x->clen : 0;
		free(x->part_etag);
		free(x->part_lm);
		x->part_etag = x->etag ? strdup(x->etag) : NULL;
		x->part_lm = x->last_modified ? strdup(x->last_modified) : NULL;
		x->resumable = fetch_if_range_ok(x);
		fetch_meta_store(x);
	}
	if (x->total > x->max_bytes) {
		x->too_big = true;
		return -1;
	}
	if (x->fd < 0) {
		/* Nothing kept yet: whatever an earlier process left is not ours. */
		x->fd = open(x->part_path,
		             O_WRONLY | O_CREAT | O_CLOEXEC | (x->done == 0 ? O_TRUNC : 0), 0600);
		if (x->fd < 0) {
			x->local_err = -errno;
			return -1;
		}
	}
	if (lseek(x->fd, (off_t)x->done, SEEK_SET) < 0) {
		x->local_err = -errno;
		return -1;
	}
	(void)m;
	x->body = true;
	return 0;
}

static size_t header_cb(char *line, size_t size, size_t nitems, void *ud)
{
	struct xfer *x = ud;
	size_t n = size * nitems, vlen;
	const char *v;

	if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
		/* A new response: after a redirect, or a 100 Continue. */
		const char *p = memchr(line, ' ', n), *end = line + n;
		fetch_response_reset(x);
		if (p) {
			char *e;
			x->status = strtol(p + 1, &e, 10);
			while (e < end && *e == ' ') {
				e++;
			}
			size_t rl = (size_t)(end - e);
			while (rl > 0 && (e[rl - 1] == '\r' || e[rl - 1] == '\n')) {
				rl--;
			}
			if (rl >= sizeof(x->reason)) {
				rl = sizeof(x->reason) - 1;
			}
			memcpy(x->reason, e, rl);
			x->reason[rl] = '\0';
		}
		return n;
	}
	if (n <= 2 && (line[0] == '\r' || line[0] == '\n')) {
		if ((x->status == 200 || x->status == 206) && body_begin(x) < 0) {
			return 0; /* curl stops the transfer */
		}
		return n;
	}
	if (header_is(line, n, "etag", &v, &vlen)) {
		free(x->etag);
		x->etag = vlen <= VALIDATOR_MAX ? strndup(v, vlen) : NULL;
	} else if (header_is(line, n, "last-modified", &v, &vlen)) {
		free(x->last_modified);
		x->last_modified = vlen <= VALIDATOR_MAX ? strndup(v, vlen) : NULL;
	} else if (header_is(line, n, "content-length", &v, &vlen)) {
		char tmp[32];
		if (vlen < sizeof(tmp)) {
			memcpy(tmp, v, vlen);
			tmp[vlen] = '\0';
			x->clen = strtoll(tmp, NULL, 10);
		}
	} else if (header_is(line, n, "content-range", &v, &vlen)) {
		/* bytes START-END/TOTAL */
		char tmp[96];
		long long a, b, t;
		if (vlen < sizeof(tmp)) {
			memcpy(tmp, v, vlen);
			tmp[vlen] = '\0';
			if (sscanf(tmp, "bytes %lld-%lld/%lld", &a, &b, &t) == 3) {
				x->crange_start = a;
				x->crange_total = t;
			} else if (sscanf(tmp, "bytes %lld-%lld/*", &a, &b) == 2) {
				x->crange_start = a;
			}
		}
	}
	return n;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	size_t n = size * nmemb;

	if (!x->body) {
		return n; /* an error page or a redirect's text: not kept */
	}
	if (x->done + n > x->max_bytes) {
		x->too_big = true;
		return 0;
	}
	for (size_t off = 0; off < n;) {
		ssize_t w = write(x->fd, data + off, n - off);
		if (w < 0 && errno == EINTR) {
			continue;
		}
		if (w < 0) {
			x->local_err = -errno;
			return 0;
		}
		off += (size_t)w;
	}
	EVP_DigestUpdate(x->md, data, n);
	x->done += n;
	return n;
}

static void wake_schedule(struct fetch_mgr *m)
{
	uint64_t next = 0, now = fetch_now_ms();

	for (struct xfer *x = m->xfers; x; x = x->next) {
		if (x->retry_at && (!next || x->retry_at < next)) {
			next = x->retry_at;
		}
	}
	if (next) {
		uv_timer_start(&m->wake, wake_cb, next > now ? next - now : 0, 0);
	} else {
		uv_timer_stop(&m->wake);
	}
}

static void wake_cb(uv_timer_t *t)
{
	struct fetch_mgr *m = t->data;
	uint64_t now = fetch_now_ms();

	for (struct xfer *x = m->xfers, *next; x; x = next) {
		next = x->next;
		if (x->retry_at && x->retry_at <= now) {
			x->retry_at = 0;
			fetch_attempt_start(x);
		}
	}
	wake_schedule(m);
}

/* A transient failure: try again after a back-off while attempts and time
 * are left, else fail with what the last attempt said. */
static void retry_or_fail(struct xfer *x, int err, const char *reason)
{
	struct fetch_mgr *m = x->m;
	uint64_t now = fetch_now_ms(), delay;

	x->attempts++;
	delay = BACKOFF_FIRST_MS;
	for (int i = 1; i < x->attempts && delay < BACKOFF_MAX_MS; i++) {
		delay *= 2;
	}
	if (delay > BACKOFF_MAX_MS) {
		delay = BACKOFF_MAX_MS;
	}
	if (x->attempts <= x->retries && now + delay < x->deadline) {
		x->retry_at = now + delay;
		wake_schedule(m);
		return;
	}
	if (x->attempts > 1) {
		fetch_xfer_fail(x, err, "%d attempts failed: %s", x->attempts, reason);
	} else {
		fetch_xfer_fail(x, err, "%s", reason);
	}
}

static bool transient(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_GOT_NOTHING:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	default:
		return false;
	}
}

static void done_cb(void *ud, CURL *easy, CURLcode rc)
{
	struct xfer *x = ud;
	long status = 0, os_errno = 0;
	char reason[CURL_ERROR_SIZE + 64];

	x->hx = NULL;
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &os_errno);
	if (x->too_big) {
		uint64_t total = x->total;
		fetch_part_discard(x);
		if (total) {
			fetch_xfer_fail(x, -EFBIG,
			                "%" PRIu64 " bytes is over the limit of %" PRIu64 " bytes",
			                total, x->max_bytes);
		} else {
			fetch_xfer_fail(x, -EFBIG, "more than the limit of %" PRIu64 " bytes",
			                x->max_bytes);
		}
		return;
	}
	if (x->local_err == -EPROTO || (status == 416 && x->done > 0)) {
		/* The partial does not fit what the server has now (another
		 * range came back, or none is left to ask for): start over at
		 * once. Without a partial no Range is asked, so this cannot
		 * repeat. */
		fetch_part_discard(x);
		fetch_attempt_start(x);
		return;
	}
	if (x->local_err < 0) {
		int err = x->local_err;
		fetch_part_discard(x);
		fetch_xfer_fail(x, err, "cannot write the download into %s: %s", x->m->tmp,
		                strerror(-err));
		return;
	}
	if (rc == CURLE_OK) {
		if (x->body) {
			char sha[65];

			fetch_md_final_hex(x->md, sha);
			memcpy(x->work_sha, sha, 65);
			x->work_size = x->done;
			fetch_work_queue(x, WORK_FINISH);
			return;
		}
		if (status == 304 && x->have_cached) {
			fetch_xfer_succeed(x, x->cached.sha256, x->cached.size, true);
			return;
		}
		snprintf(reason, sizeof(reason), "HTTP %ld%s%s", status, x->reason[0] ? " " : "",
		         x->reason);
		if (status >= 500) {
			retry_or_fail(x, -EIO, reason);
		} else if (status == 404 || status == 410) {
			fetch_xfer_fail(x, -ENOENT, "%s", reason);
		} else if (status == 401 || status == 403) {
			fetch_xfer_fail(x, -EACCES, "%s", reason);
		} else {
			fetch_xfer_fail(x, -EIO, "%s", reason);
		}
		return;
	}
	if (rc == CURLE_OPERATION_TIMEDOUT && fetch_now_ms() + 50 >= x->deadline) {
		if (x->total) {
			fetch_xfer_fail(
			    x, -ETIMEDOUT,
			    "timed out after %.1f s with %" PRIu64 " of %" PRIu64 " bytes",
			    (double)(fetch_now_ms() - x->started) / 1000, x->done, x->total);
		} else {
			fetch_xfer_fail(x, -ETIMEDOUT, "timed out after %.1f s",
			                (double)(fetch_now_ms() - x->started) / 1000);
		}
		return;
	}
	if (rc == CURLE_COULDNT_CONNECT) {
		snprintf(reason, sizeof(reason), "%s",
		         os_errno ? strerror((int)os_errno) : "cannot connect");
		/* strerror capitalises; causes read better in lower case. */
		reason[0] = (char)tolower((unsigned char)reason[0]);
	} else if (rc == CURLE_PARTIAL_FILE) {
		snprintf(reason, sizeof(reason),
		         "the connection closed after %" PRIu64 " of %" PRIu64 " bytes", x->done,
		         x->total);
	} else {
		snprintf(reason, sizeof(reason), "%s",
		         x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc));
	}
	if (transient(rc)) {
		retry_or_fail(x, rc == CURLE_PARTIAL_FILE ? -EIO : http_errno(rc), reason);
	} else {
		fetch_xfer_fail(x, http_errno(rc), "%s", reason);
	}
}

static void tick_cb(uv_timer_t *t);

void fetch_attempt_start(struct xfer *x)
{
	struct fetch_mgr *m = x->m;
	uint64_t now = fetch_now_ms();
	long left = x->deadline > now ? (long)(x->deadline - now) : 1;
	char *h = NULL;
	int r;

	if (x->easy) {
		curl_easy_cleanup(x->easy);
	}
	curl_slist_free_all(x->hdrs);
	x->hdrs = NULL;
	x->easy = curl_easy_init();
	if (!x->easy) {
		fetch_xfer_fail(x, -ENOMEM, "out of memory");
		return;
	}
	fetch_response_reset(x);
	x->errbuf[0] = '\0';
	x->too_big = false;
	x->local_err = 0;
	if (x->done > 0 && !x->resumable) {
		fetch_part_discard(x);
	}
	if (x->done > 0) {
		/* Go on from the partial, if the server still has the same body.
		 * CURLOPT_RANGE, not CURLOPT_RESUME_FROM_LARGE: with the latter
		 * curl fails a 200 answer (the body changed, or the server does
		 * not do ranges), which body_begin takes as a fresh start. */
		char range[32];
		snprintf(range, sizeof(range), "%" PRIu64 "-", x->done);
		curl_easy_setopt(x->easy, CURLOPT_RANGE, range);
		if (x->part_etag && strncmp(x->part_etag, "W/", 2) != 0) {
			h = msg_strdupf("If-Range: %s", x->part_etag);
		} else if (x->part_lm) {
			h = msg_strdupf("If-Range: %s", x->part_lm);
		}
		if (h) {
			x->hdrs = curl_slist_append(x->hdrs, h);
			free(h);
		}
	} else if (x->have_cached) {
		if (x->cached.etag) {
			h = msg_strdupf("If-None-Match: %s", x->cached.etag);
			x->hdrs = h ? curl_slist_append(x->hdrs, h) : x->hdrs;
			free(h);
		}
		if (x->cached.last_modified) {
			h = msg_strdupf("If-Modified-Since: %s", x->cached.last_modified);
			x->hdrs = h ? curl_slist_append(x->hdrs, h) : x->hdrs;
			free(h);
		}
	}
	curl_easy_setopt(x->easy, CURLOPT_URL, x->url);
	curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->hdrs);
	curl_easy_setopt(x->easy, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(x->easy, CURLOPT_MAXREDIRS, 10L);
	curl_easy_setopt(x->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(x->easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	/* Verified against the system's CA bundle: curl's defaults, said
	 * aloud so nobody turns them off by accident. */
	curl_easy_setopt(x->easy, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(x->easy, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, left);
	curl_easy_setopt(x->easy, CURLOPT_CONNECTTIMEOUT_MS,
	                 left < CONNECT_TIMEOUT_MS ? left : CONNECT_TIMEOUT_MS);
	curl_easy_setopt(x->easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(x->easy, CURLOPT_LOW_SPEED_TIME, STALL_SECONDS);
	curl_easy_setopt(x->easy, CURLOPT_USERAGENT, "runyardd/" RUNYARD_VERSION);
	curl_easy_setopt(x->easy, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(x->easy, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(x->easy, CURLOPT_ERRORBUFFER, x->errbuf);
	r = http_start(m->http, x->easy, done_cb, x, &x->hx);
	if (r < 0) {
		fetch_xfer_fail(x, r, "cannot start the transfer: %s", strerror(-r));
		return;
	}
	x->prog_done = x->done;
	x->prog_at = now;
	if (!uv_is_active((uv_handle_t *)&m->tick)) {
		uv_timer_start(&m->tick, tick_cb, PROGRESS_MS, PROGRESS_MS);
	}
}

static void tick_cb(uv_timer_t *t)
{
	struct fetch_mgr *m = t->data;
	uint64_t now = fetch_now_ms();
	bool any = false;

	/* Progress callbacks may cancel or start requests, or close the
	 * manager: the walks follow xiter and qiter, which move on when
	 * their item leaves its list. */
	for (struct xfer *x = m->xfers; x && !m->closing; x = m->xiter) {
		struct fetch_progress p;

		m->xiter = x->next;
		if (!x->hx) {
			continue;
		}
		any = true;
		if (now > x->prog_at) {
			double inst =
			    (double)(x->done - x->prog_done) * 1000.0 / (double)(now - x->prog_at);
			/* Recent, but not jumpy. */
			x->rate = x->rate > 0 ? 0.5 * x->rate + 0.5 * inst : inst;
		}
		x->prog_done = x->done;
		x->prog_at = now;
		if (!x->body) {
			continue;
		}
		p.done = x->done;
		p.total = x->total;
		p.rate = x->rate;
		for (struct fetch_req *q = x->waiters; q && !m->closing; q = m->qiter) {
			m->qiter = q->next;
			if (q->progress) {
				q->progress(q->ud, &p);
			}
		}
		m->qiter = NULL;
	}
	m->xiter = NULL;
	if (!any && !m->closing) {
		uv_timer_stop(t);
	}
}

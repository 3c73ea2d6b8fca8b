#include "httpcheck.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "http.h"

struct httpcheck_mgr {
	struct http_mgr *http;
	struct httpcheck *checks;
};

struct httpcheck {
	struct httpcheck_mgr *m;
	struct httpcheck *prev, *next;
	CURL *easy;
	struct http_xfer *xfer;
	httpcheck_cb cb;
	void *ud;
	size_t len;
	char body[HTTPCHECK_BODY_MAX + 1];
	char errbuf[CURL_ERROR_SIZE];
};

static void unlink_check(struct httpcheck *c)
{
	if (c->prev) {
		c->prev->next = c->next;
	} else {
		c->m->checks = c->next;
	}
	if (c->next) {
		c->next->prev = c->prev;
	}
	c->prev = c->next = NULL;
}

static int curl_errno(CURLcode rc)
{
	/* What services.c has always seen: a reset is just an I/O error. */
	int err = http_errno(rc);

	return err == -EHOSTUNREACH || err == -ECONNRESET ? -EIO : err;
}

static void done_cb(void *ud, CURL *easy, CURLcode rc)
{
	struct httpcheck *c = ud;
	long status = 0;
	int err = 0;

	if (rc == CURLE_OK) {
		curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	} else {
		const char *text = c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc);

		err = curl_errno(rc);
		c->len = strlen(text) < HTTPCHECK_BODY_MAX ? strlen(text) : HTTPCHECK_BODY_MAX;
		memcpy(c->body, text, c->len);
	}
	c->body[c->len] = '\0';
	unlink_check(c);
	curl_easy_cleanup(c->easy);
	c->cb(c->ud, err, status, c->body, c->len);
	free(c);
}

int httpcheck_mgr_create(uv_loop_t *loop, struct httpcheck_mgr **ret)
{
	struct httpcheck_mgr *m = calloc(1, sizeof(*m));
	int err;

	if (!m) {
		return -ENOMEM;
	}
	err = http_mgr_create(loop, &m->http);
	if (err < 0) {
		free(m);
		return err;
	}
	*ret = m;
	return 0;
}

void httpcheck_mgr_close(struct httpcheck_mgr *m)
{
	if (!m) {
		return;
	}
	while (m->checks) {
		httpcheck_cancel(m->checks);
	}
	/* The driver frees itself once its handles have closed. */
	http_mgr_close(m->http, NULL, NULL);
	free(m);
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *ud)
{
	struct httpcheck *c = ud;
	size_t n = size * nmemb, room = HTTPCHECK_BODY_MAX - c->len;

	memcpy(c->body + c->len, data, n < room ? n : room);
	c->len += n < room ? n : room;
	return n;
}

int httpcheck_get(struct httpcheck_mgr *m, const char *url, long timeout_ms, httpcheck_cb cb,
                  void *ud, struct httpcheck **ret)
{
	struct httpcheck *c;
	int err;

	c = calloc(1, sizeof(*c));
	if (!c) {
		return -ENOMEM;
	}
	c->m = m;
	c->cb = cb;
	c->ud = ud;
	c->easy = curl_easy_init();
	if (!c->easy) {
		free(c);
		return -ENOMEM;
	}
	curl_easy_setopt(c->easy, CURLOPT_URL, url);
	curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c->easy, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c->easy, CURLOPT_NOPROXY, "*");
	/* One connection per check: a check must see the server as a new
	 * client would, and leaves nothing idle behind. */
	curl_easy_setopt(c->easy, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(c->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c->easy, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(c->easy, CURLOPT_USERAGENT, "runyardd/" RUNYARD_VERSION);
	curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(c->easy, CURLOPT_ERRORBUFFER, c->errbuf);
	err = http_start(m->http, c->easy, done_cb, c, &c->xfer);
	if (err < 0) {
		curl_easy_cleanup(c->easy);
		free(c);
		return err;
	}
	c->next = m->checks;
	if (c->next) {
		c->next->prev = c;
	}
	m->checks = c;
	if (ret) {
		*ret = c;
	}
	return 0;
}

void httpcheck_cancel(struct httpcheck *c)
{
	if (!c) {
		return;
	}
	unlink_check(c);
	http_cancel(c->xfer);
	curl_easy_cleanup(c->easy);
	free(c);
}

#include "rest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "http.h"
#include "msg.h"

struct rest_client {
	struct http_mgr *http;
	struct rest_req *reqs;
};

struct rest_req {
	struct rest_client *c;
	struct rest_req *prev, *next;
	CURL *easy;
	struct http_xfer *xfer;
	struct curl_slist *headers;
	char *socket_path; /* NULL: TCP */
	rest_cb cb;
	void *ud;
	char *body;
	size_t len, cap, max;
	bool too_big;
	char errbuf[CURL_ERROR_SIZE];
};

bool rest_base_valid(const char *base, char **cause)
{
	if (strncmp(base, "unix:", 5) == 0) {
		const char *p = base + 5;
		if (p[0] != '/') {
			*cause =
			    msg_strdupf("'%s': a Unix socket URL is unix:/absolute/path", base);
			return false;
		}
		if (strlen(p) >= 108) {
			*cause = msg_strdupf("'%s': the socket path is longer than a Unix socket "
			                     "address can hold (107 bytes)",
			                     base);
			return false;
		}
		return true;
	}
	if (strncmp(base, "http://", 7) == 0 || strncmp(base, "https://", 8) == 0) {
		const char *host = base + (base[4] == 's' ? 8 : 7);
		if (!*host || *host == '/' || strpbrk(base, " \t\r\n?#")) {
			*cause =
			    msg_strdupf("'%s' is not a valid http(s) URL (http://host:port)", base);
			return false;
		}
		return true;
	}
	*cause = msg_strdupf("'%s' is not a URL runyard can use: give unix:/path/to/socket or "
	                     "http(s)://host:port",
	                     base);
	return false;
}

static void unlink_req(struct rest_req *q)
{
	if (q->prev) {
		q->prev->next = q->next;
	} else {
		q->c->reqs = q->next;
	}
	if (q->next) {
		q->next->prev = q->prev;
	}
	q->prev = q->next = NULL;
}

static void req_free(struct rest_req *q)
{
	if (q->easy) {
		curl_easy_cleanup(q->easy);
	}
	curl_slist_free_all(q->headers);
	free(q->socket_path);
	free(q->body);
	free(q);
}

static int curl_errno(CURLcode rc)
{
	/* What slurm.c has always seen: a reset is just an I/O error. */
	int err = http_errno(rc);

	return err == -ECONNRESET ? -EIO : err;
}

static void done_cb(void *ud, CURL *easy, CURLcode rc)
{
	struct rest_req *q = ud;
	struct rest_reply rep = {0};
	char *message = NULL;

	if (rc == CURLE_OK) {
		curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &rep.status);
		rep.body = q->body ? q->body : "";
		rep.len = q->len;
	} else if (q->too_big) {
		rep.err = -EFBIG;
		message = msg_strdupf("the response is larger than %zu bytes", q->max);
	} else {
		long os_errno = 0;
		curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &os_errno);
		rep.err = curl_errno(rc);
		if (rc == CURLE_COULDNT_CONNECT && q->socket_path) {
			/* curl speaks of port 80 of localhost: say what it was. */
			if (os_errno == ENOENT) {
				rep.err = -ENOENT;
			}
			message =
			    msg_strdupf("cannot connect to the Unix socket %s: %s", q->socket_path,
			                os_errno ? strerror((int)os_errno) : "connection refused");
		} else {
			message = strdup(q->errbuf[0] ? q->errbuf : curl_easy_strerror(rc));
		}
	}
	rep.message = message ? message : "out of memory";
	unlink_req(q);
	q->xfer = NULL;
	q->cb(q->ud, &rep);
	free(message);
	req_free(q);
}

int rest_client_create(uv_loop_t *loop, struct rest_client **ret)
{
	struct rest_client *c = calloc(1, sizeof(*c));
	int err;

	if (!c) {
		return -ENOMEM;
	}
	err = http_mgr_create(loop, &c->http);
	if (err < 0) {
		free(c);
		return err;
	}
	*ret = c;
	return 0;
}

void rest_client_close(struct rest_client *c)
{
	if (!c) {
		return;
	}
	while (c->reqs) {
		rest_cancel(c->reqs);
	}
	/* The driver frees itself once its handles have closed. */
	http_mgr_close(c->http, NULL, NULL);
	free(c);
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *ud)
{
	struct rest_req *q = ud;
	size_t n = size * nmemb;

	if (q->len + n > q->max) {
		q->too_big = true;
		return 0; /* curl fails the transfer */
	}
	if (q->len + n + 1 > q->cap) {
		size_t cap = q->cap ? q->cap : 4096;
		while (cap < q->len + n + 1) {
			cap *= 2;
		}
		char *b = realloc(q->body, cap);
		if (!b) {
			return 0;
		}
		q->body = b;
		q->cap = cap;
	}
	memcpy(q->body + q->len, data, n);
	q->len += n;
	q->body[q->len] = '\0';
	return n;
}

int rest_request(struct rest_client *c, const struct rest_call *call, rest_cb cb, void *ud,
                 struct rest_req **ret)
{
	struct rest_req *q;
	char *url = NULL;
	int err = -ENOMEM;

	q = calloc(1, sizeof(*q));
	if (!q) {
		return -ENOMEM;
	}
	q->c = c;
	q->cb = cb;
	q->ud = ud;
	q->max = call->max_body ? call->max_body : 1 << 20;
	q->easy = curl_easy_init();
	if (!q->easy) {
		goto fail;
	}
	if (strncmp(call->base, "unix:", 5) == 0) {
		q->socket_path = strdup(call->base + 5);
		url = msg_strdupf("http://localhost%s", call->path);
		if (!q->socket_path) {
			goto fail;
		}
		curl_easy_setopt(q->easy, CURLOPT_UNIX_SOCKET_PATH, q->socket_path);
		curl_easy_setopt(q->easy, CURLOPT_NOPROXY, "*");
	} else {
		size_t bl = strlen(call->base);
		while (bl > 0 && call->base[bl - 1] == '/') {
			bl--;
		}
		url = msg_strdupf("%.*s%s", (int)bl, call->base, call->path);
	}
	if (!url) {
		goto fail;
	}
	for (const char *const *h = call->headers; h && *h; h++) {
		struct curl_slist *l = curl_slist_append(q->headers, *h);
		if (!l) {
			goto fail;
		}
		q->headers = l;
	}
	static const char *const ours[] = {"Accept: application/json",
	                                   "Content-Type: application/json", "Expect:"};
	for (size_t i = 0; i < (call->body ? 3u : 1u); i++) {
		struct curl_slist *l = curl_slist_append(q->headers, ours[i]);
		if (!l) {
			goto fail;
		}
		q->headers = l;
	}
	curl_easy_setopt(q->easy, CURLOPT_URL, url);
	curl_easy_setopt(q->easy, CURLOPT_HTTPHEADER, q->headers);
	if (call->body) {
		curl_easy_setopt(q->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(call->body));
		curl_easy_setopt(q->easy, CURLOPT_COPYPOSTFIELDS, call->body);
	}
	if (strcmp(call->method, "GET") != 0 && strcmp(call->method, "POST") != 0) {
		curl_easy_setopt(q->easy, CURLOPT_CUSTOMREQUEST, call->method);
	} else if (strcmp(call->method, "POST") == 0 && !call->body) {
		curl_easy_setopt(q->easy, CURLOPT_POST, 1L);
		curl_easy_setopt(q->easy, CURLOPT_POSTFIELDSIZE, 0L);
	}
	curl_easy_setopt(q->easy, CURLOPT_TIMEOUT_MS, call->timeout_ms);
	curl_easy_setopt(q->easy, CURLOPT_CONNECTTIMEOUT_MS, call->timeout_ms);
	curl_easy_setopt(q->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(q->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(q->easy, CURLOPT_USERAGENT, "runyardd/" RUNYARD_VERSION);
	curl_easy_setopt(q->easy, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(q->easy, CURLOPT_WRITEDATA, q);
	curl_easy_setopt(q->easy, CURLOPT_ERRORBUFFER, q->errbuf);
	free(url);
	url = NULL;
	err = http_start(c->http, q->easy, done_cb, q, &q->xfer);
	if (err < 0) {
		goto fail;
	}
	q->next = c->reqs;
	if (q->next) {
		q->next->prev = q;
	}
	c->reqs = q;
	if (ret) {
		*ret = q;
	}
	return 0;
fail:
	free(url);
	if (q->easy) {
		curl_easy_cleanup(q->easy);
		q->easy = NULL;
	}
	req_free(q);
	return err;
}

void rest_cancel(struct rest_req *q)
{
	if (!q) {
		return;
	}
	unlink_req(q);
	http_cancel(q->xfer);
	req_free(q);
}

#include "rest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "msg.h"

struct rest_client {
	uv_loop_t *loop;
	CURLM *multi;
	uv_timer_t timer;
	int handles; /* the timer and each socket's poll, until closed */
	bool closing;
	struct rest_req *reqs;
};

struct rest_req {
	struct rest_client *c;
	struct rest_req *prev, *next;
	CURL *easy;
	struct curl_slist *headers;
	char *socket_path; /* NULL: TCP */
	rest_cb cb;
	void *ud;
	char *body;
	size_t len, cap, max;
	bool too_big;
	char errbuf[CURL_ERROR_SIZE];
};

/* A socket curl wants watched. */
struct sock {
	uv_poll_t poll;
	struct rest_client *c;
	curl_socket_t fd;
};

bool rest_base_valid(const char *base, char **cause)
{
	if (strncmp(base, "unix:", 5) == 0) {
		const char *p = base + 5;
		if (p[0] != '/') {
			*cause = msg_strdupf("'%s': a Unix socket URL is unix:/absolute/path", base);
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
			*cause = msg_strdupf("'%s' is not a valid http(s) URL (http://host:port)", base);
			return false;
		}
		return true;
	}
	*cause = msg_strdupf("'%s' is not a URL runyard can use: give unix:/path/to/socket or "
			     "http(s)://host:port",
			     base);
	return false;
}

static void client_release(struct rest_client *c)
{
	if (--c->handles == 0 && c->closing) {
		free(c);
	}
}

static void sock_close_cb(uv_handle_t *h)
{
	struct sock *k = h->data;
	struct rest_client *c = k->c;

	free(k);
	client_release(c);
}

static void timer_close_cb(uv_handle_t *h)
{
	client_release(h->data);
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
		if (q->c->multi) {
			curl_multi_remove_handle(q->c->multi, q->easy);
		}
		curl_easy_cleanup(q->easy);
	}
	curl_slist_free_all(q->headers);
	free(q->socket_path);
	free(q->body);
	free(q);
}

static int curl_errno(CURLcode rc)
{
	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
		return -EHOSTUNREACH;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

/* Hand every finished transfer to its callback. */
static void collect(struct rest_client *c)
{
	CURLMsg *msg;
	int left;

	while (!c->closing && (msg = curl_multi_info_read(c->multi, &left))) {
		struct rest_req *q = NULL;
		CURLcode rc = msg->data.result;
		struct rest_reply rep = {0};
		char *message = NULL;

		if (msg->msg != CURLMSG_DONE) {
			continue;
		}
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&q);
		if (rc == CURLE_OK) {
			curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &rep.status);
			rep.body = q->body ? q->body : "";
			rep.len = q->len;
		} else if (q->too_big) {
			rep.err = -EFBIG;
			message = msg_strdupf("the response is larger than %zu bytes", q->max);
		} else {
			long os_errno = 0;
			curl_easy_getinfo(q->easy, CURLINFO_OS_ERRNO, &os_errno);
			rep.err = curl_errno(rc);
			if (rc == CURLE_COULDNT_CONNECT && q->socket_path) {
				/* curl speaks of port 80 of localhost: say what it was. */
				if (os_errno == ENOENT) {
					rep.err = -ENOENT;
				}
				message = msg_strdupf("cannot connect to the Unix socket %s: %s",
						      q->socket_path,
						      os_errno ? strerror((int)os_errno)
							       : "connection refused");
			} else {
				message = strdup(q->errbuf[0] ? q->errbuf : curl_easy_strerror(rc));
			}
		}
		rep.message = message ? message : "out of memory";
		unlink_req(q);
		/* msg belongs to the multi handle: nothing of it is used below. */
		curl_multi_remove_handle(c->multi, q->easy);
		curl_easy_cleanup(q->easy);
		q->easy = NULL;
		q->cb(q->ud, &rep);
		free(message);
		req_free(q);
	}
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
	struct sock *k = h->data;
	struct rest_client *c = k->c;
	int flags = 0, running;

	if (status < 0) {
		flags = CURL_CSELECT_ERR;
	}
	if (events & UV_READABLE) {
		flags |= CURL_CSELECT_IN;
	}
	if (events & UV_WRITABLE) {
		flags |= CURL_CSELECT_OUT;
	}
	/* k may be closed by the socket callback inside this call. */
	curl_multi_socket_action(c->multi, k->fd, flags, &running);
	collect(c);
}

static void timer_cb(uv_timer_t *t)
{
	struct rest_client *c = t->data;
	int running;

	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	collect(c);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct rest_client *c = userp;
	struct sock *k = socketp;
	int events = 0;

	if (what == CURL_POLL_REMOVE) {
		if (k) {
			if (!c->closing) {
				curl_multi_assign(c->multi, fd, NULL);
			}
			/* Stopping first takes the fd out of the loop at once, so a
			 * new socket curl opens on the same number can be watched. */
			uv_poll_stop(&k->poll);
			uv_close((uv_handle_t *)&k->poll, sock_close_cb);
		}
		return 0;
	}
	if (c->closing) {
		return -1;
	}
	if (!k) {
		k = calloc(1, sizeof(*k));
		if (!k) {
			return -1;
		}
		k->c = c;
		k->fd = fd;
		if (uv_poll_init_socket(c->loop, &k->poll, fd) < 0) {
			free(k);
			return -1;
		}
		k->poll.data = k;
		c->handles++;
		curl_multi_assign(c->multi, fd, k);
	}
	if (what & CURL_POLL_IN) {
		events |= UV_READABLE;
	}
	if (what & CURL_POLL_OUT) {
		events |= UV_WRITABLE;
	}
	return uv_poll_start(&k->poll, events, poll_cb) < 0 ? -1 : 0;
}

static int timer_function(CURLM *multi, long timeout_ms, void *userp)
{
	struct rest_client *c = userp;

	if (c->closing) {
		return 0;
	}
	/* Never act from inside curl: a timeout of 0 runs on the next turn. */
	if (timeout_ms < 0) {
		uv_timer_stop(&c->timer);
	} else {
		uv_timer_start(&c->timer, timer_cb, (uint64_t)timeout_ms, 0);
	}
	return 0;
}

int rest_client_create(uv_loop_t *loop, struct rest_client **ret)
{
	static bool global_done;
	struct rest_client *c;

	if (!global_done) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			return -EIO;
		}
		global_done = true;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		return -ENOMEM;
	}
	c->loop = loop;
	c->multi = curl_multi_init();
	if (!c->multi) {
		free(c);
		return -ENOMEM;
	}
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_function);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	uv_timer_init(loop, &c->timer);
	c->timer.data = c;
	c->handles = 1;
	*ret = c;
	return 0;
}

void rest_client_close(struct rest_client *c)
{
	if (!c || c->closing) {
		return;
	}
	while (c->reqs) {
		rest_cancel(c->reqs);
	}
	c->closing = true;
	/* Closes what sockets are left; the socket callback closes their polls. */
	curl_multi_cleanup(c->multi);
	c->multi = NULL;
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->timer, timer_close_cb);
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

	if (c->closing) {
		return -ECANCELED;
	}
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
	curl_easy_setopt(q->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(q->easy, CURLOPT_TIMEOUT_MS, call->timeout_ms);
	curl_easy_setopt(q->easy, CURLOPT_CONNECTTIMEOUT_MS, call->timeout_ms);
	curl_easy_setopt(q->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(q->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(q->easy, CURLOPT_USERAGENT, "runyardd/" RUNYARD_VERSION);
	curl_easy_setopt(q->easy, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(q->easy, CURLOPT_WRITEDATA, q);
	curl_easy_setopt(q->easy, CURLOPT_ERRORBUFFER, q->errbuf);
	curl_easy_setopt(q->easy, CURLOPT_PRIVATE, q);
	free(url);
	url = NULL;
	q->next = c->reqs;
	if (q->next) {
		q->next->prev = q;
	}
	c->reqs = q;
	if (curl_multi_add_handle(c->multi, q->easy) != CURLM_OK) {
		unlink_req(q);
		goto fail;
	}
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
	req_free(q);
}

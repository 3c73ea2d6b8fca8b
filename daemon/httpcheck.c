#include "httpcheck.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

struct httpcheck_mgr {
	uv_loop_t *loop;
	CURLM *multi;
	uv_timer_t timer;
	int handles; /* the timer and each socket's poll, until closed */
	bool closing;
	struct httpcheck *checks;
};

struct httpcheck {
	struct httpcheck_mgr *m;
	struct httpcheck *prev, *next;
	CURL *easy;
	httpcheck_cb cb;
	void *ud;
	size_t len;
	char body[HTTPCHECK_BODY_MAX + 1];
	char errbuf[CURL_ERROR_SIZE];
};

/* A socket curl wants watched. */
struct sock {
	uv_poll_t poll;
	struct httpcheck_mgr *m;
	curl_socket_t fd;
};

static void mgr_release(struct httpcheck_mgr *m)
{
	if (--m->handles == 0 && m->closing) {
		free(m);
	}
}

static void sock_close_cb(uv_handle_t *h)
{
	struct sock *k = h->data;
	struct httpcheck_mgr *m = k->m;

	free(k);
	mgr_release(m);
}

static void timer_close_cb(uv_handle_t *h)
{
	mgr_release(h->data);
}

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
	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

/* Hand every finished transfer to its callback. */
static void collect(struct httpcheck_mgr *m)
{
	CURLMsg *msg;
	int left;

	while (!m->closing && (msg = curl_multi_info_read(m->multi, &left))) {
		struct httpcheck *c = NULL;
		CURLcode rc = msg->data.result;
		long status = 0;
		int err = 0;

		if (msg->msg != CURLMSG_DONE) {
			continue;
		}
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
		if (rc == CURLE_OK) {
			curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
		} else {
			err = curl_errno(rc);
			const char *text = c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc);
			c->len =
			    strlen(text) < HTTPCHECK_BODY_MAX ? strlen(text) : HTTPCHECK_BODY_MAX;
			memcpy(c->body, text, c->len);
		}
		c->body[c->len] = '\0';
		unlink_check(c);
		/* msg belongs to the multi handle: nothing of it is used below. */
		curl_multi_remove_handle(m->multi, c->easy);
		curl_easy_cleanup(c->easy);
		c->cb(c->ud, err, status, c->body, c->len);
		free(c);
	}
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
	struct sock *k = h->data;
	struct httpcheck_mgr *m = k->m;
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
	curl_multi_socket_action(m->multi, k->fd, flags, &running);
	collect(m);
}

static void timer_cb(uv_timer_t *t)
{
	struct httpcheck_mgr *m = t->data;
	int running;

	curl_multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	collect(m);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct httpcheck_mgr *m = userp;
	struct sock *k = socketp;
	int events = 0;

	if (what == CURL_POLL_REMOVE) {
		if (k) {
			if (!m->closing) {
				curl_multi_assign(m->multi, fd, NULL);
			}
			uv_poll_stop(&k->poll);
			uv_close((uv_handle_t *)&k->poll, sock_close_cb);
		}
		return 0;
	}
	if (m->closing) {
		return -1;
	}
	if (!k) {
		k = calloc(1, sizeof(*k));
		if (!k) {
			return -1;
		}
		k->m = m;
		k->fd = fd;
		if (uv_poll_init_socket(m->loop, &k->poll, fd) < 0) {
			free(k);
			return -1;
		}
		k->poll.data = k;
		m->handles++;
		curl_multi_assign(m->multi, fd, k);
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
	struct httpcheck_mgr *m = userp;

	if (m->closing) {
		return 0;
	}
	/* Never act from inside curl: a timeout of 0 runs on the next turn. */
	if (timeout_ms < 0) {
		uv_timer_stop(&m->timer);
	} else {
		uv_timer_start(&m->timer, timer_cb, (uint64_t)timeout_ms, 0);
	}
	return 0;
}

int httpcheck_mgr_create(uv_loop_t *loop, struct httpcheck_mgr **ret)
{
	static bool global_done;
	struct httpcheck_mgr *m;

	if (!global_done) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			return -EIO;
		}
		global_done = true;
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		return -ENOMEM;
	}
	m->loop = loop;
	m->multi = curl_multi_init();
	if (!m->multi) {
		free(m);
		return -ENOMEM;
	}
	curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m);
	curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, timer_function);
	curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m);
	uv_timer_init(loop, &m->timer);
	m->timer.data = m;
	m->handles = 1;
	*ret = m;
	return 0;
}

void httpcheck_mgr_close(struct httpcheck_mgr *m)
{
	if (!m || m->closing) {
		return;
	}
	while (m->checks) {
		httpcheck_cancel(m->checks);
	}
	m->closing = true;
	/* Closes what sockets are left; the socket callback closes their polls. */
	curl_multi_cleanup(m->multi);
	m->multi = NULL;
	uv_timer_stop(&m->timer);
	uv_close((uv_handle_t *)&m->timer, timer_close_cb);
}

/* curl's sockets are not close-on-exec: without this, a check in flight
 * while the daemon spawns a run's supervisor or a server would hand the
 * child a connection it keeps open. The loop is the only thread that
 * spawns, so nothing forks between the socket's creation and this. */
static int sockopt_cb(void *ud, curl_socket_t fd, curlsocktype purpose)
{
	int flags = fcntl(fd, F_GETFD);

	if (flags >= 0) {
		fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
	}
	return CURL_SOCKOPT_OK;
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

	if (m->closing) {
		return -ECANCELED;
	}
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
	curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c->easy, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c->easy, CURLOPT_NOPROXY, "*");
	/* One connection per check: a check must see the server as a new
	 * client would, and leaves nothing idle behind. */
	curl_easy_setopt(c->easy, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(c->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c->easy, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(c->easy, CURLOPT_USERAGENT, "runyardd/" RUNYARD_VERSION);
	curl_easy_setopt(c->easy, CURLOPT_SOCKOPTFUNCTION, sockopt_cb);
	curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(c->easy, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(c->easy, CURLOPT_PRIVATE, c);
	c->next = m->checks;
	if (c->next) {
		c->next->prev = c;
	}
	m->checks = c;
	if (curl_multi_add_handle(m->multi, c->easy) != CURLM_OK) {
		unlink_check(c);
		curl_easy_cleanup(c->easy);
		free(c);
		return -ENOMEM;
	}
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
	curl_multi_remove_handle(c->m->multi, c->easy);
	curl_easy_cleanup(c->easy);
	free(c);
}

#include "http.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>

struct http_mgr {
	uv_loop_t *loop;
	CURLM *multi;
	uv_timer_t timer;
	int handles; /* the timer and each socket's poll, until closed */
	bool closing;
	struct http_xfer *xfers;
	http_closed_cb closed;
	void *closed_ud;
};

struct http_xfer {
	struct http_mgr *m;
	struct http_xfer *prev, *next;
	CURL *easy;
	http_done_cb done;
	void *ud;
};

/* A socket curl wants watched. */
struct sock {
	uv_poll_t poll;
	struct http_mgr *m;
	curl_socket_t fd;
};

static void mgr_release(struct http_mgr *m)
{
	if (--m->handles == 0 && m->closing) {
		http_closed_cb closed = m->closed;
		void *ud = m->closed_ud;

		free(m);
		if (closed) {
			closed(ud);
		}
	}
}

static void sock_close_cb(uv_handle_t *h)
{
	struct sock *k = h->data;
	struct http_mgr *m = k->m;

	free(k);
	mgr_release(m);
}

static void timer_close_cb(uv_handle_t *h)
{
	mgr_release(h->data);
}

static void unlink_xfer(struct http_xfer *x)
{
	if (x->prev) {
		x->prev->next = x->next;
	} else {
		x->m->xfers = x->next;
	}
	if (x->next) {
		x->next->prev = x->prev;
	}
	x->prev = x->next = NULL;
}

int http_errno(CURLcode rc)
{
	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
		return -ECONNRESET;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

/* Hand every finished transfer to its callback. A callback may start,
 * cancel or close anything: the next message is read only after it returns,
 * and not at all once the driver is closing. */
static void collect(struct http_mgr *m)
{
	CURLMsg *msg;
	int left;

	while (!m->closing && (msg = curl_multi_info_read(m->multi, &left))) {
		struct http_xfer *x = NULL;
		CURL *easy = msg->easy_handle;
		CURLcode rc = msg->data.result;

		if (msg->msg != CURLMSG_DONE) {
			continue;
		}
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
		unlink_xfer(x);
		/* msg belongs to the multi handle: nothing of it is used below. */
		curl_multi_remove_handle(m->multi, easy);
		http_done_cb done = x->done;
		void *ud = x->ud;
		free(x);
		done(ud, easy, rc);
	}
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
	struct sock *k = h->data;
	struct http_mgr *m = k->m;
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
	struct http_mgr *m = t->data;
	int running;

	curl_multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	collect(m);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct http_mgr *m = userp;
	struct sock *k = socketp;
	int events = 0;

	if (what == CURL_POLL_REMOVE) {
		if (k) {
			if (!m->closing) {
				curl_multi_assign(m->multi, fd, NULL);
			}
			/* Stopping first takes the fd out of the loop at once, so a
			 * new socket curl opens on the same number can be watched. */
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
	struct http_mgr *m = userp;

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

int http_mgr_create(uv_loop_t *loop, struct http_mgr **ret)
{
	static bool global_done;
	struct http_mgr *m;

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

void http_mgr_close(struct http_mgr *m, http_closed_cb closed, void *ud)
{
	if (!m || m->closing) {
		return;
	}
	while (m->xfers) {
		http_cancel(m->xfers);
	}
	m->closing = true;
	m->closed = closed;
	m->closed_ud = ud;
	/* Closes what sockets are left; the socket callback closes their polls. */
	curl_multi_cleanup(m->multi);
	m->multi = NULL;
	uv_timer_stop(&m->timer);
	uv_close((uv_handle_t *)&m->timer, timer_close_cb);
}

/* curl's sockets are not close-on-exec: without this, a transfer in flight
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

int http_start(struct http_mgr *m, CURL *easy, http_done_cb done, void *ud, struct http_xfer **ret)
{
	struct http_xfer *x;

	if (m->closing) {
		return -ECANCELED;
	}
	x = calloc(1, sizeof(*x));
	if (!x) {
		return -ENOMEM;
	}
	x->m = m;
	x->easy = easy;
	x->done = done;
	x->ud = ud;
	curl_easy_setopt(easy, CURLOPT_PRIVATE, x);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_SOCKOPTFUNCTION, sockopt_cb);
	/* curl_multi_add_handle only arms the timer: the transfer starts, and
	 * can end, on a later turn of the loop. */
	if (curl_multi_add_handle(m->multi, easy) != CURLM_OK) {
		free(x);
		return -ENOMEM;
	}
	x->next = m->xfers;
	if (x->next) {
		x->next->prev = x;
	}
	m->xfers = x;
	if (ret) {
		*ret = x;
	}
	return 0;
}

void http_cancel(struct http_xfer *x)
{
	if (!x) {
		return;
	}
	unlink_xfer(x);
	curl_multi_remove_handle(x->m->multi, x->easy);
	free(x);
}

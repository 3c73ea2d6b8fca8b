/* libmicrohttpd on a libuv loop. MHD runs with no thread of its own
 * (MHD_USE_EPOLL without an internal polling thread): its epoll
 * descriptor is watched by a uv_poll_t, and MHD_run is called when it is
 * readable and when MHD's own timeout (connection time-outs) comes, after
 * which the timer is set again. A stream that has nothing to send
 * suspends its connection; waking it resumes the connection and runs MHD
 * at the end of the tick, so a slow or idle reader costs no CPU and no
 * buffer here: bytes are pulled only as the socket takes them. */
#include "httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "log.h"
#include "msg.h"

/* Open connections at most; a client past them is refused by MHD. */
#define CONN_MAX 64
/* Per connection: headers, and MHD's read and write buffers. */
#define CONN_MEMORY (64 * 1024)
/* An idle (not suspended) connection is closed after this many seconds. */
#define CONN_TIMEOUT_S 60

struct httpd {
	uv_loop_t *loop;
	struct MHD_Daemon *mhd;
	int fd; /* the listening socket; MHD closes it */
	int port;
	uv_poll_t poll;
	uv_timer_t timer;
	int handles; /* open uv handles; h is freed when none are left */
	bool stopping;
	httpd_fn fn;
	void *ud;
	struct httpd_stream *streams;
};

struct httpd_req {
	struct httpd *h;
	struct MHD_Connection *conn;
	const char *method;
	char *path;
	char *body;
	size_t len;
	bool too_big;
	bool answered;
};

struct httpd_stream {
	struct httpd *h;
	struct httpd_stream *prev, *next;
	struct MHD_Connection *conn;
	httpd_pull_fn pull;
	httpd_done_fn done;
	void *ud;
	bool suspended;
};

static void run(struct httpd *h);

static void timer_cb(uv_timer_t *t)
{
	run(t->data);
}

static void poll_cb(uv_poll_t *p, int status, int events)
{
	run(p->data);
}

/* MHD's work now, then its next deadline. */
static void run(struct httpd *h)
{
	MHD_UNSIGNED_LONG_LONG ms = 0;

	if (!h->mhd) {
		return;
	}
	MHD_run(h->mhd);
	if (MHD_get_timeout(h->mhd, &ms) == MHD_YES) {
		uv_timer_start(&h->timer, timer_cb, ms, 0);
	} else {
		uv_timer_stop(&h->timer);
	}
}

/* Run MHD soon (a resumed connection is only seen by MHD_run). */
static void kick(struct httpd *h)
{
	if (h->mhd) {
		uv_timer_start(&h->timer, timer_cb, 0, 0);
	}
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	log_warn("http: %s", buf);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *data,
			      size_t *data_size, void **con_cls)
{
	struct httpd *h = cls;
	struct httpd_req *r = *con_cls;

	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r || !(r->path = strdup(url))) {
			free(r);
			return MHD_NO;
		}
		r->h = h;
		r->conn = conn;
		r->method = method;
		*con_cls = r;
		return MHD_YES;
	}
	if (*data_size > 0) {
		/* The body is kept whole up to its bound; past it, read and dropped. */
		if (!r->too_big && r->len + *data_size <= HTTPD_BODY_MAX) {
			char *nb = realloc(r->body, r->len + *data_size + 1);
			if (!nb) {
				return MHD_NO;
			}
			memcpy(nb + r->len, data, *data_size);
			r->body = nb;
			r->len += *data_size;
			r->body[r->len] = '\0';
		} else {
			r->too_big = true;
		}
		*data_size = 0;
		return MHD_YES;
	}
	if (r->answered) {
		return MHD_YES;
	}
	r->conn = conn;
	r->method = method;
	if (r->too_big) {
		httpd_reply_error(r, 413, "TooLarge", "the request body is over %d bytes",
				  HTTPD_BODY_MAX);
	} else {
		h->fn(h->ud, r);
	}
	if (!r->answered) {
		httpd_reply_error(r, 500, "Internal", "the request was not answered");
	}
	return MHD_YES;
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct httpd_req *r = *con_cls;

	if (r) {
		free(r->path);
		free(r->body);
		free(r);
		*con_cls = NULL;
	}
}

/* A listening socket on addr:port; -errno with *cause. */
static int listen_on(const char *addr, int port, int *ret_fd, int *ret_port, char **cause)
{
	struct sockaddr_storage ss = {0};
	socklen_t sl;
	int fd, one = 1, err;

	if (inet_pton(AF_INET, addr, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
		sl = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, addr, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
		sl = sizeof(struct sockaddr_in6);
	} else {
		*cause = msg_strdupf("'%s' is not an IPv4 or IPv6 address", addr);
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		*cause = msg_strdupf("cannot make a socket: %s", strerror(errno));
		return err;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 128) < 0) {
		err = -errno;
		*cause = msg_strdupf("cannot listen on %s:%d: %s", addr, port, strerror(errno));
		close(fd);
		return err;
	}
	sl = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	*ret_port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
						  : ((struct sockaddr_in6 *)&ss)->sin6_port);
	*ret_fd = fd;
	return 0;
}

int httpd_start(uv_loop_t *loop, const char *addr, int port, httpd_fn fn, void *ud,
		struct httpd **ret, char **cause)
{
	struct httpd *h = calloc(1, sizeof(*h));
	const union MHD_DaemonInfo *info;
	int err;

	if (!h) {
		return -ENOMEM;
	}
	h->loop = loop;
	h->fn = fn;
	h->ud = ud;
	err = listen_on(addr, port, &h->fd, &h->port, cause);
	if (err < 0) {
		free(h);
		return err;
	}
	h->mhd = MHD_start_daemon(
	    MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL, NULL, handle, h,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h, MHD_OPTION_LISTEN_SOCKET, h->fd, MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONN_MAX,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned)CONN_TIMEOUT_S, MHD_OPTION_NOTIFY_COMPLETED, completed, h, MHD_OPTION_END);
	info = h->mhd ? MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
	if (!info) {
		*cause = msg_strdupf("libmicrohttpd could not start on %s:%d", addr, h->port);
		if (h->mhd) {
			MHD_stop_daemon(h->mhd);
		} else {
			close(h->fd);
		}
		free(h);
		return -EIO;
	}
	uv_poll_init(loop, &h->poll, info->epoll_fd);
	uv_timer_init(loop, &h->timer);
	h->poll.data = h->timer.data = h;
	h->handles = 2;
	uv_poll_start(&h->poll, UV_READABLE, poll_cb);
	run(h);
	*ret = h;
	return 0;
}

int httpd_port(const struct httpd *h)
{
	return h->port;
}

static void close_cb(uv_handle_t *handle)
{
	struct httpd *h = handle->data;

	if (--h->handles == 0) {
		free(h);
	}
}

void httpd_stop(struct httpd *h)
{
	if (!h || h->stopping) {
		return;
	}
	h->stopping = true;
	/* MHD may not be stopped with a suspended connection: each is
	 * resumed, and pulls nothing more (its pull is not called again once
	 * stopping), then MHD ends it. */
	for (struct httpd_stream *s = h->streams; s; s = s->next) {
		if (s->suspended) {
			s->suspended = false;
			MHD_resume_connection(s->conn);
		}
	}
	MHD_stop_daemon(h->mhd);
	h->mhd = NULL;
	uv_close((uv_handle_t *)&h->poll, close_cb);
	uv_close((uv_handle_t *)&h->timer, close_cb);
}

/* ---- the request ---- */

const char *httpd_method(const struct httpd_req *r)
{
	return r->method;
}

const char *httpd_path(const struct httpd_req *r)
{
	return r->path;
}

const char *httpd_arg(const struct httpd_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *httpd_header(const struct httpd_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *httpd_cookie(const struct httpd_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, name);
}

const char *httpd_body(const struct httpd_req *r, size_t *ret_len)
{
	*ret_len = r->len;
	return r->body ? r->body : "";
}

/* ---- answers ---- */

static void queue(struct httpd_req *r, int status, struct MHD_Response *resp, const char *ctype,
		  const char *const *headers)
{
	if (!resp) {
		r->answered = true;
		return; /* MHD closes the connection */
	}
	if (ctype) {
		MHD_add_response_header(resp, "Content-Type", ctype);
	}
	/* Nothing here is to be guessed at or framed by another site. */
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2) {
		MHD_add_response_header(resp, headers[i], headers[i + 1]);
	}
	MHD_queue_response(r->conn, (unsigned)status, resp);
	MHD_destroy_response(resp);
	r->answered = true;
}

void httpd_reply(struct httpd_req *r, int status, const char *ctype, const void *body, size_t len,
		 const char *const *headers)
{
	if (r->answered) {
		return;
	}
	queue(r, status,
	      MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY), ctype,
	      headers);
}

static void free_text(void *p)
{
	cJSON_free(p);
}

void httpd_reply_json(struct httpd_req *r, int status, cJSON *body)
{
	char *text = body ? cJSON_PrintUnformatted(body) : NULL;
	static const char *const nocache[] = {"Cache-Control", "no-store", NULL};

	cJSON_Delete(body);
	if (!text) {
		httpd_reply(r, 500, "application/json",
			    "{\"error\":{\"code\":\"Internal\",\"message\":\"out of memory\"}}", 55,
			    nocache);
		return;
	}
	if (r->answered) {
		cJSON_free(text);
		return;
	}
	queue(r, status,
	      MHD_create_response_from_buffer_with_free_callback(strlen(text), text, free_text),
	      "application/json", nocache);
}

void httpd_reply_error(struct httpd_req *r, int status, const char *code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	cJSON *o = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(o, "error");

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cJSON_AddStringToObject(e, "code", code);
	/* The message may quote what the client sent, in any bytes; the
	 * answer is JSON, so UTF-8. */
	char *clean = utf8_sanitize(msg, strlen(msg), NULL);
	cJSON_AddStringToObject(e, "message", clean ? clean : msg);
	free(clean);
	httpd_reply_json(r, status, o);
}

void httpd_reply_fd(struct httpd_req *r, const char *ctype, int fd, uint64_t size,
		    const char *const *headers)
{
	if (r->answered) {
		close(fd);
		return;
	}
	/* MHD owns fd from here, and closes it. */
	queue(r, 200, MHD_create_response_from_fd64(size, fd), ctype, headers);
}

/* ---- streams ---- */

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct httpd_stream *s = cls;
	ssize_t n;

	if (s->h->stopping) {
		return MHD_CONTENT_READER_END_OF_STREAM;
	}
	n = s->pull(s->ud, buf, max);
	if (n < 0) {
		return MHD_CONTENT_READER_END_OF_STREAM;
	}
	if (n == 0) {
		/* Nothing to send: wait, at no cost, for httpd_stream_wake. */
		s->suspended = true;
		MHD_suspend_connection(s->conn);
	}
	return n;
}

static void stream_free(void *cls)
{
	struct httpd_stream *s = cls;

	if (s->prev) {
		s->prev->next = s->next;
	} else {
		s->h->streams = s->next;
	}
	if (s->next) {
		s->next->prev = s->prev;
	}
	s->done(s->ud);
	free(s);
}

int httpd_reply_stream(struct httpd_req *r, const char *ctype, const char *const *headers,
		       httpd_pull_fn pull, httpd_done_fn done, void *ud,
		       struct httpd_stream **ret)
{
	struct httpd_stream *s = calloc(1, sizeof(*s));
	struct MHD_Response *resp;

	if (!s) {
		return -ENOMEM;
	}
	s->h = r->h;
	s->conn = r->conn;
	s->pull = pull;
	s->done = done;
	s->ud = ud;
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, s,
						 stream_free);
	if (!resp) {
		free(s);
		return -ENOMEM;
	}
	s->next = r->h->streams;
	if (s->next) {
		s->next->prev = s;
	}
	r->h->streams = s;
	*ret = s;
	/* From here MHD owns s: stream_free runs when the response goes. */
	queue(r, 200, resp, ctype, headers);
	return 0;
}

void httpd_stream_wake(struct httpd_stream *s)
{
	if (s->suspended && !s->h->stopping) {
		s->suspended = false;
		MHD_resume_connection(s->conn);
		kick(s->h);
	}
}

#include "server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <uv.h>

#include "frame.h"
#include "log.h"
#include "msg.h"
#include "proto.h"
#include "util.h"

struct server {
	uv_loop_t *loop;
	struct server_hooks hooks;
	uv_pipe_t listener;
	char *path;
	struct conn *conns;
	bool closing;
	bool listener_closed;
	bool activated; /* the socket belongs to the service manager */
};

struct conn {
	struct server *srv;
	struct conn *prev, *next;
	uv_pipe_t pipe;
	struct frame_reader fr;
	int refs;
	bool closing;
	bool paused; /* reading stopped until the output drains */
	bool hello_done;
	unsigned long id;
};

struct write_req {
	uv_write_t req;
	struct conn *conn;
	struct wbuf *buf;
};

static unsigned long next_conn_id;

struct wbuf *wbuf_from_json(const cJSON *msg)
{
	size_t len;
	char *text = msg_print(msg, &len);
	struct wbuf *b = NULL;

	if (!text || len > PROTO_FRAME_MAX) {
		goto out;
	}
	b = malloc(sizeof(*b) + PROTO_HEADER_LEN + len);
	if (!b) {
		goto out;
	}
	b->refs = 1;
	b->len = PROTO_HEADER_LEN + len;
	frame_header(b->data, (uint32_t)len);
	memcpy(b->data + PROTO_HEADER_LEN, text, len);
out:
	free(text);
	return b;
}

void wbuf_unref(struct wbuf *b)
{
	if (b && --b->refs == 0) {
		free(b);
	}
}

void *conn_context(const struct conn *c)
{
	return c->srv->hooks.ud;
}

bool conn_hello_done(const struct conn *c)
{
	return c->hello_done;
}

void conn_set_hello_done(struct conn *c)
{
	c->hello_done = true;
}

bool conn_closing(const struct conn *c)
{
	return c->closing;
}

size_t conn_backlog(const struct conn *c)
{
	return c->closing ? 0 : c->pipe.write_queue_size;
}

bool conn_congested(const struct conn *c)
{
	return conn_backlog(c) > CONN_OUTPUT_CAP;
}

void conn_ref(struct conn *c)
{
	c->refs++;
}

void conn_unref(struct conn *c)
{
	if (--c->refs == 0) {
		frame_reader_finish(&c->fr);
		free(c);
	}
}

static void server_free(struct server *srv)
{
	free(srv->path);
	free(srv);
}

static void conn_close_cb(uv_handle_t *h)
{
	struct conn *c = h->data;
	struct server *srv = c->srv;

	if (c->prev) {
		c->prev->next = c->next;
	} else {
		srv->conns = c->next;
	}
	if (c->next) {
		c->next->prev = c->prev;
	}
	c->prev = c->next = NULL;
	conn_unref(c);
	/* The server goes once its listener and its last connection have. */
	if (srv->listener_closed && !srv->conns) {
		server_free(srv);
	}
}

void conn_close(struct conn *c)
{
	if (c->closing) {
		return;
	}
	c->closing = true;
	uv_read_stop((uv_stream_t *)&c->pipe);
	/* Watches go first so nothing new is queued on a closing stream;
	 * pending writes are canceled by uv_close and free their buffers. */
	if (c->srv->hooks.on_closed) {
		c->srv->hooks.on_closed(c->srv->hooks.ud, c);
	}
	if (!uv_is_closing((uv_handle_t *)&c->pipe)) {
		uv_close((uv_handle_t *)&c->pipe, conn_close_cb);
	}
}

static void resume_reading(struct conn *c);

static void write_cb(uv_write_t *req, int status)
{
	struct write_req *wr = (struct write_req *)req;
	struct conn *c = wr->conn;

	wbuf_unref(wr->buf);
	free(wr);
	if (status < 0) {
		if (status != UV_ECANCELED) {
			log_debug("connection %lu: write failed: %s", c->id, uv_strerror(status));
			conn_close(c);
		}
		conn_unref(c);
		return;
	}
	if (!c->closing && conn_backlog(c) < CONN_OUTPUT_CAP / 2) {
		if (c->paused) {
			resume_reading(c);
		}
		if (c->srv->hooks.on_drained) {
			c->srv->hooks.on_drained(c->srv->hooks.ud, c);
		}
	}
	conn_unref(c);
}

int conn_send_wbuf(struct conn *c, struct wbuf *b)
{
	struct write_req *wr;
	uv_buf_t buf;
	int r;

	if (c->closing) {
		return 0;
	}
	wr = malloc(sizeof(*wr));
	if (!wr) {
		return -ENOMEM;
	}
	wr->conn = c;
	wr->buf = b;
	b->refs++;
	conn_ref(c);
	buf = uv_buf_init(b->data, (unsigned)b->len);
	r = uv_write(&wr->req, (uv_stream_t *)&c->pipe, &buf, 1, write_cb);
	if (r < 0) {
		/* The callback will never run: undo here. */
		wbuf_unref(b);
		free(wr);
		conn_unref(c);
		conn_close(c);
		return r;
	}
	return 0;
}

int conn_send(struct conn *c, const cJSON *msg)
{
	struct wbuf *b;
	int r;

	if (c->closing) {
		return 0;
	}
	b = wbuf_from_json(msg);
	if (!b) {
		return -ENOMEM;
	}
	r = conn_send_wbuf(c, b);
	wbuf_unref(b);
	return r;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = h->data;
	size_t room = 0;
	char *p = frame_reader_space(&c->fr, suggested < 65536 ? 65536 : suggested, &room);

	*buf = uv_buf_init(p, (unsigned)room);
}

/* Handle every whole frame in the buffer. A frame that cannot be a frame
 * (wrong magic, announced length over the limit) closes the connection:
 * there is no way to find the next frame boundary after it. */
static void take_frames(struct conn *c)
{
	const char *payload;
	size_t len;
	int r;

	while (!c->closing && (r = frame_reader_next(&c->fr, &payload, &len)) == 1) {
		cJSON *msg = cJSON_ParseWithLength(payload, len);
		c->srv->hooks.on_message(c->srv->hooks.ud, c, msg,
					 msg ? msg_payload_problem(payload, len) : NULL);
		cJSON_Delete(msg);
	}
	if (c->closing) {
		return;
	}
	if (r < 0) {
		log_info("connection %lu: %s; closing it", c->id,
			 r == -EMSGSIZE ? "frame over the 16 MiB limit" : "bad frame magic");
		conn_close(c);
		return;
	}
	if (conn_congested(c)) {
		/* The client sends requests faster than it reads replies. */
		uv_read_stop((uv_stream_t *)&c->pipe);
		c->paused = true;
	}
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct conn *c = s->data;

	if (n < 0) {
		conn_close(c);
		return;
	}
	if (n == 0) {
		return;
	}
	frame_reader_commit(&c->fr, (size_t)n);
	conn_ref(c);
	take_frames(c);
	conn_unref(c);
}

static void resume_reading(struct conn *c)
{
	c->paused = false;
	conn_ref(c);
	take_frames(c);
	if (!c->closing && !c->paused) {
		uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb);
	}
	conn_unref(c);
}

/* Only the daemon's own user may talk to it: the socket's mode keeps
 * others out, and this check holds even if someone loosens the mode. */
static bool peer_allowed(struct conn *c)
{
	uv_os_fd_t fd;
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (uv_fileno((uv_handle_t *)&c->pipe, &fd) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		return false;
	}
	if (cred.uid != getuid()) {
		log_warn("connection %lu: refused peer pid %d with uid %u (runyardd runs as uid %u)",
			 c->id, (int)cred.pid, (unsigned)cred.uid, (unsigned)getuid());
		return false;
	}
	return true;
}

static void connection_cb(uv_stream_t *listener, int status)
{
	struct server *srv = listener->data;
	struct conn *c;

	if (status < 0) {
		log_warn("accepting a connection failed: %s", uv_strerror(status));
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		return;
	}
	c->srv = srv;
	c->refs = 1;
	c->id = ++next_conn_id;
	frame_reader_init(&c->fr, PROTO_FRAME_MAX);
	uv_pipe_init(srv->loop, &c->pipe, 0);
	c->pipe.data = c;
	c->next = srv->conns;
	if (srv->conns) {
		srv->conns->prev = c;
	}
	srv->conns = c;
	if (uv_accept(listener, (uv_stream_t *)&c->pipe) < 0 || srv->closing || !peer_allowed(c)) {
		conn_close(c);
		return;
	}
	uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb);
}

/* Is something already answering on path? Then it is not ours to remove. */
static bool socket_in_use(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool used;

	if (fd < 0) {
		return false;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	used = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return used;
}

static void listener_close_cb(uv_handle_t *h)
{
	struct server *srv = h->data;

	srv->listener_closed = true;
	if (!srv->conns) {
		server_free(srv);
	}
}

int server_listen(uv_loop_t *loop, const struct server_hooks *hooks, const char *path,
		  struct server **ret, char **cause)
{
	struct server *srv = NULL;
	char *dir = NULL;
	mode_t old_umask;
	int r;

	if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		*cause = msg_strdupf("socket path %s is too long for a Unix socket (%zu bytes max)",
				     path, sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
		return -ENAMETOOLONG;
	}
	dir = strdup(path);
	if (!dir) {
		return -ENOMEM;
	}
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		r = util_mkdir_p(dir, 0700);
		if (r < 0) {
			*cause = msg_strdupf("cannot create the socket directory %s: %s", dir,
					     strerror(-r));
			goto fail;
		}
	}
	if (socket_in_use(path)) {
		*cause = msg_strdupf("another runyardd is already listening on %s", path);
		r = -EADDRINUSE;
		goto fail;
	}
	unlink(path);
	srv = calloc(1, sizeof(*srv));
	if (!srv || !(srv->path = strdup(path))) {
		r = -ENOMEM;
		goto fail;
	}
	srv->loop = loop;
	srv->hooks = *hooks;
	uv_pipe_init(loop, &srv->listener, 0);
	srv->listener.data = srv;
	/* Created 0600 from the start, not chmod'ed after: no window in which
	 * another user could connect. */
	old_umask = umask(0177);
	r = uv_pipe_bind(&srv->listener, path);
	umask(old_umask);
	if (r == 0) {
		r = uv_listen((uv_stream_t *)&srv->listener, 128, connection_cb);
	}
	if (r < 0) {
		*cause = msg_strdupf("cannot listen on %s: %s", path, uv_strerror(r));
		/* The struct goes in the close callback, like at a normal stop. */
		uv_close((uv_handle_t *)&srv->listener, listener_close_cb);
		srv = NULL;
		goto fail;
	}
	chmod(path, 0600);
	free(dir);
	*ret = srv;
	return 0;
fail:
	if (srv) {
		free(srv->path);
		free(srv);
	}
	free(dir);
	return r;
}

int server_adopt(uv_loop_t *loop, const struct server_hooks *hooks, int fd, struct server **ret,
		 char **cause)
{
	struct server *srv = calloc(1, sizeof(*srv));
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);
	int r;

	if (!srv) {
		return -ENOMEM;
	}
	memset(&sa, 0, sizeof(sa));
	getsockname(fd, (struct sockaddr *)&sa, &len);
	srv->path = strndup(sa.sun_path, sizeof(sa.sun_path));
	if (!srv->path) {
		free(srv);
		return -ENOMEM;
	}
	srv->loop = loop;
	srv->hooks = *hooks;
	srv->activated = true;
	uv_pipe_init(loop, &srv->listener, 0);
	srv->listener.data = srv;
	r = uv_pipe_open(&srv->listener, fd);
	if (r == 0) {
		r = uv_listen((uv_stream_t *)&srv->listener, 128, connection_cb);
	}
	if (r < 0) {
		*cause = msg_strdupf("cannot serve on the activated socket %s: %s", srv->path,
				     uv_strerror(r));
		uv_close((uv_handle_t *)&srv->listener, listener_close_cb);
		return r;
	}
	*ret = srv;
	return 0;
}

const char *server_path(const struct server *srv)
{
	return srv->path;
}

void server_close(struct server *srv)
{
	if (!srv || srv->closing) {
		return;
	}
	srv->closing = true;
	for (struct conn *c = srv->conns, *next; c; c = next) {
		next = c->next;
		conn_close(c);
	}
	if (!srv->activated) {
		/* An activated socket stays: the manager listens on it again. */
		unlink(srv->path);
	}
	uv_close((uv_handle_t *)&srv->listener, listener_close_cb);
}

/* net/server.c on its own: built from the server's source, base/ and
 * proto/ only (tests/unit/meson.build), so it does not link if the server
 * names the op table, the watchers or the daemon. A real client on a real
 * Unix socket sends frames; the hooks hear each message (NULL for a payload
 * that is not JSON) and the client's close; a reply queued from the hook
 * reaches the client; the loop closes cleanly. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "frame.h"
#include "msg.h"
#include "server.h"
#include "test.h"
#include "util.h"

struct state {
	uv_loop_t loop;
	struct server *srv;
	uv_pipe_t client;
	uv_connect_t connect;
	uv_write_t write;
	char *out;
	struct frame_reader fr;
	int messages, nulls, closed, drained, replies;
	int64_t last_id;
	void *ctx_seen;
};

static void on_message(void *ud, struct conn *c, const cJSON *msg, const char *bad)
{
	struct state *s = ud;

	s->ctx_seen = conn_context(c);
	if (!msg) {
		s->nulls++;
		return;
	}
	s->messages++;
	s->last_id = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(msg, "id"));
	cJSON *reply = msg_reply_ok(s->last_id, cJSON_CreateString("pong"));
	EXPECT_INT(conn_send(c, reply), 0);
	cJSON_Delete(reply);
}

static void on_closed(void *ud, struct conn *c)
{
	struct state *s = ud;

	s->closed++;
}

static void on_drained(void *ud, struct conn *c)
{
	struct state *s = ud;

	s->drained++;
}

static void client_closed_cb(uv_handle_t *h)
{
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct state *s = h->data;
	size_t room = 0;
	char *p = frame_reader_space(&s->fr, 65536, &room);

	*buf = uv_buf_init(p, (unsigned)room);
}

static void read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	struct state *s = st->data;
	const char *payload;
	size_t len;

	if (n < 0) {
		uv_close((uv_handle_t *)&s->client, client_closed_cb);
		return;
	}
	frame_reader_commit(&s->fr, (size_t)n);
	while (frame_reader_next(&s->fr, &payload, &len) == 1) {
		cJSON *m = cJSON_ParseWithLength(payload, len);
		EXPECT(cJSON_IsTrue(cJSON_GetObjectItem(m, "ok")));
		EXPECT_STR(cJSON_GetStringValue(cJSON_GetObjectItem(m, "result")), "pong");
		cJSON_Delete(m);
		s->replies++;
	}
	if (s->replies == 2) {
		/* Both answered: hang up, which the server must notice. */
		uv_read_stop(st);
		uv_close((uv_handle_t *)&s->client, client_closed_cb);
	}
}

static void write_cb(uv_write_t *req, int status)
{
	struct state *s = req->data;

	EXPECT_INT(status, 0);
	free(s->out);
	s->out = NULL;
	uv_read_start((uv_stream_t *)&s->client, alloc_cb, read_cb);
}

static void append_frame(char **buf, size_t *len, const char *payload)
{
	size_t n = 0;
	char *f = frame_encode(payload, strlen(payload), &n);

	*buf = realloc(*buf, *len + n);
	memcpy(*buf + *len, f, n);
	*len += n;
	free(f);
}

static void connect_cb(uv_connect_t *req, int status)
{
	struct state *s = req->data;
	size_t len = 0;

	EXPECT_INT(status, 0);
	/* Three frames in one write: two requests and a payload that is not
	 * JSON at all. */
	append_frame(&s->out, &len, "{\"id\":1,\"op\":\"hello\"}");
	append_frame(&s->out, &len, "not json");
	append_frame(&s->out, &len, "{\"id\":2,\"op\":\"x\"}");
	uv_buf_t b = uv_buf_init(s->out, (unsigned)len);
	s->write.data = s;
	EXPECT_INT(uv_write(&s->write, (uv_stream_t *)&s->client, &b, 1, write_cb), 0);
}

static void stop_timer_cb(uv_timer_t *t)
{
	struct state *s = t->data;

	if (s->closed || uv_now(&s->loop) > 10000) {
		server_close(s->srv);
		uv_close((uv_handle_t *)t, NULL);
	}
}

static void test_hooks(void)
{
	char dir[] = "/tmp/runyard-test-server-XXXXXX";
	struct state s;
	char *cause = NULL, *path;
	uv_timer_t t;

	memset(&s, 0, sizeof(s));
	EXPECT(mkdtemp(dir) != NULL);
	path = util_path_join(dir, "sub/runyard.sock");
	EXPECT_INT(uv_loop_init(&s.loop), 0);
	frame_reader_init(&s.fr, 1 << 20);
	struct server_hooks hooks = {
		.on_message = on_message,
		.on_closed = on_closed,
		.on_drained = on_drained,
		.ud = &s,
	};
	EXPECT_INT(server_listen(&s.loop, &hooks, path, &s.srv, &cause), 0);
	EXPECT_STR(server_path(s.srv), path);

	uv_pipe_init(&s.loop, &s.client, 0);
	s.client.data = &s;
	s.connect.data = &s;
	uv_pipe_connect(&s.connect, &s.client, path, connect_cb);
	uv_timer_init(&s.loop, &t);
	t.data = &s;
	uv_timer_start(&t, stop_timer_cb, 10, 10);
	EXPECT_INT(uv_run(&s.loop, UV_RUN_DEFAULT), 0);

	EXPECT_INT(s.messages, 2);
	EXPECT_INT(s.nulls, 1);
	EXPECT_INT(s.last_id, 2);
	EXPECT_INT(s.replies, 2);
	EXPECT_INT(s.closed, 1);
	EXPECT(s.ctx_seen == &s);
	EXPECT_INT(uv_loop_close(&s.loop), 0);
	frame_reader_finish(&s.fr);
	free(s.out);
	util_rm_rf(dir);
	free(path);
	free(cause);
}

/* A path too long for a Unix socket is refused with a cause, before any
 * handle is made. */
static void test_long_path(void)
{
	uv_loop_t loop;
	struct server *srv = NULL;
	char *cause = NULL, path[200];
	struct server_hooks hooks = {.on_message = on_message};

	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	EXPECT_INT(uv_loop_init(&loop), 0);
	EXPECT_INT(server_listen(&loop, &hooks, path, &srv, &cause), -ENAMETOOLONG);
	EXPECT(cause != NULL && strstr(cause, "too long"));
	EXPECT(srv == NULL);
	EXPECT_INT(uv_loop_close(&loop), 0);
	free(cause);
}

int main(void)
{
	test_hooks();
	test_long_path();
	TEST_DONE();
}

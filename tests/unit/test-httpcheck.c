/* httpcheck: GETs driven by the loop against a small HTTP server in a
 * thread: an answer, a refused port, a timeout, a long body, many at once,
 * cancel, and closing the manager with checks in flight. Each part checks
 * that the loop closes cleanly. */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "httpcheck.h"
#include "test.h"

struct server {
	int fd;
	int port;
	pthread_t thread;
};

static int listen_any(int *ret_port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 128) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
		perror("listen");
		exit(1);
	}
	*ret_port = ntohs(sa.sin_port);
	return fd;
}

/* Answers GET / with "Healthy", /big with 10000 bytes, /500 with an error;
 * one request per connection. */
static void *serve(void *ud)
{
	struct server *s = ud;

	for (;;) {
		char req[4096], *resp;
		size_t got = 0;
		int c = accept(s->fd, NULL, NULL);
		if (c < 0) {
			return NULL;
		}
		while (got < sizeof(req) - 1) {
			ssize_t n = read(c, req + got, sizeof(req) - 1 - got);
			if (n <= 0) {
				break;
			}
			got += (size_t)n;
			req[got] = '\0';
			if (strstr(req, "\r\n\r\n")) {
				break;
			}
		}
		req[got] = '\0';
		if (strncmp(req, "GET /big ", 9) == 0) {
			size_t len = 10000;
			resp = malloc(len + 200);
			int h = snprintf(resp, 200,
			                 "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: "
			                 "close\r\n\r\n",
			                 len);
			memset(resp + h, 'x', len);
			resp[h + (int)len] = '\0';
		} else if (strncmp(req, "GET /500 ", 9) == 0) {
			resp = strdup("HTTP/1.1 500 Oops\r\nContent-Length: 4\r\nConnection: "
			              "close\r\n\r\nbad!");
		} else {
			resp = strdup("HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: "
			              "close\r\n\r\nHealthy");
		}
		if (write(c, resp, strlen(resp)) < 0) {
			/* the client went away */
		}
		free(resp);
		close(c);
	}
}

struct result {
	int calls;
	int err;
	long status;
	size_t len;
	char body[HTTPCHECK_BODY_MAX + 1];
};

static void done_cb(void *ud, int err, long status, const char *body, size_t len)
{
	struct result *r = ud;

	r->calls++;
	r->err = err;
	r->status = status;
	r->len = len;
	memcpy(r->body, body, len + 1);
}

static void never_cb(void *ud, int err, long status, const char *body, size_t len)
{
	int *n = ud;
	(*n)++;
}

static void run_and_close(uv_loop_t *loop, struct httpcheck_mgr *m)
{
	uv_run(loop, UV_RUN_DEFAULT);
	httpcheck_mgr_close(m);
	uv_run(loop, UV_RUN_DEFAULT);
	EXPECT_INT(uv_loop_close(loop), 0);
}

static void test_answers(int port, int silent_port, int closed_port)
{
	uv_loop_t loop;
	struct httpcheck_mgr *m;
	struct result ok = {0}, refused = {0}, slow = {0}, big = {0}, err500 = {0};
	char url[64];

	uv_loop_init(&loop);
	EXPECT_INT(httpcheck_mgr_create(&loop, &m), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
	EXPECT_INT(httpcheck_get(m, url, 5000, done_cb, &ok, NULL), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/big", port);
	EXPECT_INT(httpcheck_get(m, url, 5000, done_cb, &big, NULL), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/500", port);
	EXPECT_INT(httpcheck_get(m, url, 5000, done_cb, &err500, NULL), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", closed_port);
	EXPECT_INT(httpcheck_get(m, url, 5000, done_cb, &refused, NULL), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", silent_port);
	EXPECT_INT(httpcheck_get(m, url, 300, done_cb, &slow, NULL), 0);
	run_and_close(&loop, m);

	EXPECT_INT(ok.calls, 1);
	EXPECT_INT(ok.err, 0);
	EXPECT_INT(ok.status, 200);
	EXPECT_STR(ok.body, "Healthy");
	EXPECT_INT(big.calls, 1);
	EXPECT_INT(big.status, 200);
	EXPECT_INT(big.len, HTTPCHECK_BODY_MAX);
	EXPECT_INT(err500.status, 500);
	EXPECT_STR(err500.body, "bad!");
	EXPECT_INT(refused.calls, 1);
	EXPECT_INT(refused.err, -ECONNREFUSED);
	EXPECT(refused.len > 0); /* curl's message */
	EXPECT_INT(slow.calls, 1);
	EXPECT_INT(slow.err, -ETIMEDOUT);
}

static void test_many(int port)
{
	uv_loop_t loop;
	struct httpcheck_mgr *m;
	struct result r[64];
	char url[64];

	memset(r, 0, sizeof(r));
	uv_loop_init(&loop);
	EXPECT_INT(httpcheck_mgr_create(&loop, &m), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
	for (int i = 0; i < 64; i++) {
		EXPECT_INT(httpcheck_get(m, url, 10000, done_cb, &r[i], NULL), 0);
	}
	run_and_close(&loop, m);
	for (int i = 0; i < 64; i++) {
		EXPECT_INT(r[i].calls, 1);
		EXPECT_INT(r[i].status, 200);
	}
}

static void test_cancel_and_close(int port, int silent_port)
{
	uv_loop_t loop;
	struct httpcheck_mgr *m;
	struct httpcheck *c = NULL;
	struct result after = {0};
	int calls = 0;
	char url[64];

	uv_loop_init(&loop);
	EXPECT_INT(httpcheck_mgr_create(&loop, &m), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
	/* Canceled before the loop ever ran. */
	EXPECT_INT(httpcheck_get(m, url, 5000, never_cb, &calls, &c), 0);
	httpcheck_cancel(c);
	/* Canceled mid-way: connected to a server that does not answer. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", silent_port);
	EXPECT_INT(httpcheck_get(m, url, 5000, never_cb, &calls, &c), 0);
	uv_run(&loop, UV_RUN_NOWAIT);
	uv_run(&loop, UV_RUN_NOWAIT);
	httpcheck_cancel(c);
	/* The manager still works afterwards. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
	EXPECT_INT(httpcheck_get(m, url, 5000, done_cb, &after, NULL), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	EXPECT_INT(after.calls, 1);
	EXPECT_INT(after.status, 200);
	/* Closed with checks in flight: none calls back, every handle closes. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", silent_port);
	for (int i = 0; i < 3; i++) {
		EXPECT_INT(httpcheck_get(m, url, 5000, never_cb, &calls, NULL), 0);
	}
	uv_run(&loop, UV_RUN_NOWAIT);
	httpcheck_mgr_close(m);
	uv_run(&loop, UV_RUN_DEFAULT);
	EXPECT_INT(uv_loop_close(&loop), 0);
	EXPECT_INT(calls, 0);
}

int main(void)
{
	struct server s;
	int silent_port, closed_port, silent, closed;

	s.fd = listen_any(&s.port);
	pthread_create(&s.thread, NULL, serve, &s);
	/* Listens, never accepts: connections complete, nothing is answered. */
	silent = listen_any(&silent_port);
	/* Bound and closed: nothing listens there. */
	closed = listen_any(&closed_port);
	close(closed);

	test_answers(s.port, silent_port, closed_port);
	test_many(s.port);
	test_cancel_and_close(s.port, silent_port);

	shutdown(s.fd, SHUT_RDWR);
	close(s.fd);
	pthread_join(s.thread, NULL);
	close(silent);
	TEST_DONE();
}

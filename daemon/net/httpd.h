/* An HTTP listener on the daemon's libuv loop: libmicrohttpd parses and
 * answers, driven through its epoll descriptor from a uv_poll_t, so no
 * thread of its own and never a blocked loop (docs/web.md). A handler is
 * called once per request, with the whole request (its body bounded), and
 * answers exactly once before it returns, or starts a stream it feeds later. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cjson/cJSON.h>
#include <uv.h>

struct httpd;
struct httpd_req;
struct httpd_stream;

/* The largest request body read; a larger one is answered 413. */
#define HTTPD_BODY_MAX (64 * 1024)

typedef void (*httpd_fn)(void *ud, struct httpd_req *req);

/* Listen on addr:port (port 0: any free one), an IPv4 or IPv6 literal.
 * -errno with a message in *cause. */
int httpd_start(uv_loop_t *loop, const char *addr, int port, httpd_fn fn, void *ud,
		struct httpd **ret, char **cause);
/* The port listened on. */
int httpd_port(const struct httpd *h);
/* Stop listening, end every connection and free h once its handles have
 * closed. */
void httpd_stop(struct httpd *h);

/* Of the request, while the handler runs: the method, the path without
 * its query, a query argument, a header, a cookie (NULL: none). */
const char *httpd_method(const struct httpd_req *r);
const char *httpd_path(const struct httpd_req *r);
const char *httpd_arg(const struct httpd_req *r, const char *name);
const char *httpd_header(const struct httpd_req *r, const char *name);
const char *httpd_cookie(const struct httpd_req *r, const char *name);
/* The body ("" and 0 without one). */
const char *httpd_body(const struct httpd_req *r, size_t *ret_len);

/* Answers. headers: name, value, ..., NULL (may be NULL). */
void httpd_reply(struct httpd_req *r, int status, const char *ctype, const void *body, size_t len,
		 const char *const *headers);
/* body is taken; NULL answers 500. */
void httpd_reply_json(struct httpd_req *r, int status, cJSON *body);
/* {"error": {"code", "message"}} */
void httpd_reply_error(struct httpd_req *r, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* A file's contents (fd is taken, size bytes of it from offset 0). */
void httpd_reply_fd(struct httpd_req *r, const char *ctype, int fd, uint64_t size,
		    const char *const *headers);

/* A stream: pull writes at most max bytes into buf and returns how many;
 * 0 when there is nothing now (the connection waits, sending nothing,
 * until httpd_stream_wake), < 0 to end it. done is called once when the
 * stream is over (ended, or the client went away, or the listener
 * stopped); ud is then the caller's to free. The stream handle is valid
 * until done. */
typedef ssize_t (*httpd_pull_fn)(void *ud, char *buf, size_t max);
typedef void (*httpd_done_fn)(void *ud);
int httpd_reply_stream(struct httpd_req *r, const char *ctype, const char *const *headers,
		       httpd_pull_fn pull, httpd_done_fn done, void *ud,
		       struct httpd_stream **ret);
/* There may be more to pull now. */
void httpd_stream_wake(struct httpd_stream *s);

/* HTTP requests to REST services (slurmrestd) that never block the loop,
 * run by the libcurl-on-libuv driver in http.c. A service is named by a
 * base URL: "unix:/path/to/socket" (HTTP over a Unix socket) or
 * "http://host:port[/prefix]" / "https://...". */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

struct rest_client;
struct rest_req;

/* How a request ended. err is 0 when an HTTP response came back (status is
 * its code, body its bytes, NUL-terminated), else a negative errno
 * (-ETIMEDOUT, -ECONNREFUSED, -ENOENT for a missing socket, -EFBIG for a
 * body over the limit, -EIO) with curl's words in message. */
struct rest_reply {
	int err;
	long status;
	const char *body;
	size_t len;
	const char *message;
};

/* Called once per request that was not canceled; the request is freed when
 * it returns. */
typedef void (*rest_cb)(void *ud, const struct rest_reply *reply);

/* What to send. headers: NULL-terminated "Name: value" lines, or NULL. */
struct rest_call {
	const char *method; /* GET, POST, DELETE */
	const char *base;   /* the service's base URL */
	const char *path;   /* appended to base; starts with '/' */
	const char *const *headers;
	const char *body; /* JSON, or NULL */
	long timeout_ms;
	size_t max_body; /* a longer response body fails with -EFBIG */
};

/* Whether base is a URL this module can talk to; when not, a message for
 * the user in *cause. */
bool rest_base_valid(const char *base, char **cause);

int rest_client_create(uv_loop_t *loop, struct rest_client **ret);

/* Cancel every request (no callback runs) and close the client's handles;
 * it frees itself once they have closed. Accepts NULL. */
void rest_client_close(struct rest_client *c);

/* Start a request. *ret (may be NULL) stays valid until the callback runs
 * or the request is canceled. */
int rest_request(struct rest_client *c, const struct rest_call *call, rest_cb cb, void *ud,
		 struct rest_req **ret);

/* Stop a request that has not called back; its callback never runs.
 * Accepts NULL. */
void rest_cancel(struct rest_req *q);

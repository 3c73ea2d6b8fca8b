/* libcurl's multi interface driven by libuv: a uv_poll_t per socket curl
 * asks about and one uv_timer_t for curl's timeouts. The one place that
 * plumbing lives; httpcheck.c, rest.c and fetch.c each build their own easy
 * handles and hand them here. */
#pragma once

#include <curl/curl.h>
#include <uv.h>

struct http_mgr;
struct http_xfer;

/* A transfer ended with rc. The easy handle has left the multi handle and
 * belongs to the caller again: inspect it, re-add it, or clean it up. */
typedef void (*http_done_cb)(void *ud, CURL *easy, CURLcode rc);

/* Called once the manager's handles have closed and it is freed. */
typedef void (*http_closed_cb)(void *ud);

/* Make a driver on loop (curl_global_init is done once, here). */
int http_mgr_create(uv_loop_t *loop, struct http_mgr **ret);

/* Stop every transfer still added (no callback runs; their easy handles
 * stay the callers') and close the handles; closed (may be NULL) runs once
 * they have closed and the driver is freed. Accepts NULL. */
void http_mgr_close(struct http_mgr *m, http_closed_cb closed, void *ud);

/* Add easy and run it. The driver sets CURLOPT_PRIVATE, CURLOPT_NOSIGNAL
 * and a socket option callback that makes curl's sockets close-on-exec.
 * done runs on the loop, never from inside this call. *ret (may be NULL)
 * is valid until done runs or http_cancel. */
int http_start(struct http_mgr *m, CURL *easy, http_done_cb done, void *ud, struct http_xfer **ret);

/* Take a transfer out of the driver; done never runs and the easy handle is
 * the caller's again. Must not be called from inside a curl callback (write,
 * header, progress) of the same driver. Accepts NULL. */
void http_cancel(struct http_xfer *x);

/* A curl result as a negative errno: -ETIMEDOUT, -ECONNREFUSED,
 * -EHOSTUNREACH, -ECONNRESET, -ENOMEM, else -EIO. */
int http_errno(CURLcode rc);

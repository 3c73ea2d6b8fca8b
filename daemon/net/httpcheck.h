/* HTTP GETs that never block the loop, run by the libcurl-on-libuv driver
 * in http.c. The service manager checks its scoring servers with it. */
#pragma once

#include <stddef.h>

#include <uv.h>

struct httpcheck_mgr;
struct httpcheck;

/* Bytes of a response body kept for the callback; the rest is dropped. */
#define HTTPCHECK_BODY_MAX 4096

/* How a check ended: err is 0 when an HTTP response came back (status is
 * its code, body its first HTTPCHECK_BODY_MAX bytes, NUL-terminated), else
 * a negative errno (-ETIMEDOUT, -ECONNREFUSED, -EIO) with a curl message in
 * body. The check is freed when the callback returns. */
typedef void (*httpcheck_cb)(void *ud, int err, long status, const char *body, size_t len);

/* Make the manager of the loop's checks. */
int httpcheck_mgr_create(uv_loop_t *loop, struct httpcheck_mgr **ret);

/* Cancel every check (no callback runs) and close the manager's handles; it
 * frees itself once they have closed. Accepts NULL. */
void httpcheck_mgr_close(struct httpcheck_mgr *m);

/* Start GET url, ending within timeout_ms. No proxy is used, whatever the
 * environment says: checks go to 127.0.0.1. *ret (may be NULL) is valid
 * until the callback runs or the check is canceled. */
int httpcheck_get(struct httpcheck_mgr *m, const char *url, long timeout_ms, httpcheck_cb cb,
                  void *ud, struct httpcheck **ret);

/* Stop a check that has not called back; its callback never runs. */
void httpcheck_cancel(struct httpcheck *c);

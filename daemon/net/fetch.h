/* Downloads of http://, https:// and file:// URLs for run inputs and
 * datasets (docs/inputs.md): fetched once into a cache that is content
 * addressed and keyed by URL, revalidated with the validators the server
 * gave (ETag, Last-Modified), shared by concurrent requests for the same
 * URL (single flight), resumed after a broken transfer, bounded in size and
 * time, retried with back-off on transient errors, and checked against an
 * expected SHA-256. Driven by the loop; never blocks it. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

struct fetch_mgr;
struct fetch_req;

struct fetch_opts {
	const char *url;     /* http://, https:// or file:// */
	const char *sha256;  /* expected hex digest, or NULL */
	uint64_t max_bytes;  /* 0: the manager's limit */
	long timeout_ms;     /* whole transfer; 0: the manager's limit */
};

/* While bytes arrive, at most about once a second per request. */
struct fetch_progress {
	uint64_t done;
	uint64_t total; /* 0 when the server did not say */
	double rate;    /* bytes per second, recent */
};
typedef void (*fetch_progress_cb)(void *ud, const struct fetch_progress *p);

/* How a request ended. err 0: path names an immutable file in the cache
 * holding the body, sha256 its hex digest, size its length; from_cache
 * says no body was transferred (fresh, or revalidated with 304). Else a
 * negative errno (-EFBIG over the size limit, -ETIMEDOUT, -EBADMSG for a
 * checksum mismatch, -ENOENT, -EIO, ...) and cause says, naming the URL,
 * what went wrong. Nothing here outlives the callback: copy what you keep. */
struct fetch_result {
	int err;
	const char *path;
	const char *sha256;
	uint64_t size;
	bool from_cache;
	const char *cause;
};
typedef void (*fetch_done_cb)(void *ud, const struct fetch_result *res);

/* The whole-fetch time limit when none is given (runyardd --download-timeout). */
#define FETCH_DEFAULT_TIMEOUT_MS (3600L * 1000)

struct fetch_limits {
	uint64_t cache_max_bytes; /* the cache's bound (fetch_cache.c); 0: none */
	uint64_t max_bytes; /* 0: a default */
	long timeout_ms;    /* 0: FETCH_DEFAULT_TIMEOUT_MS */
	int retries;        /* transient failures retried; <0: a default */
};

/* cache_dir holds the cache; it is created when missing. */
int fetch_mgr_create(uv_loop_t *loop, const char *cache_dir, const struct fetch_limits *lim,
		     struct fetch_mgr **ret);

/* Cancel every request (no callback runs) and close the handles; the
 * manager frees itself once they have closed. Accepts NULL. */
void fetch_mgr_close(struct fetch_mgr *m);

/* Start fetching. The callbacks run on the loop, never from inside this
 * call. *ret (may be NULL) is valid until done runs or fetch_cancel. */
int fetch_start(struct fetch_mgr *m, const struct fetch_opts *o, fetch_progress_cb progress,
		fetch_done_cb done, void *ud, struct fetch_req **ret);

/* Stop waiting for a request; its callbacks never run. A transfer others
 * still wait for goes on. Accepts NULL. */
void fetch_cancel(struct fetch_req *q);

/* ---- the cache's bound (fetch_cache.c) ---- */

/* An object handed to a request this recently is never removed: its owner
 * is about to copy it. */
#define FETCH_CACHE_GRACE_S 900

/* The cached objects, most recently used first: [{sha256, size, used_at
 * (unix seconds), in_use, urls: [...]}]. Small files, read on the loop. */
struct cJSON;
int fetch_cache_list(struct fetch_mgr *m, struct cJSON **ret);

struct fetch_trim_result {
	uint64_t removed, bytes;    /* objects removed and their bytes */
	uint64_t kept_in_use;       /* too recently used to remove */
	uint64_t bytes_before, bytes_after;
};
typedef void (*fetch_trim_cb)(void *ud, int err, const struct fetch_trim_result *res);

/* Remove least recently used objects, in the thread pool, until the cache
 * holds at most max_bytes (0: clear it). cb (may be NULL) runs on the loop,
 * with -ECANCELED when the manager closed meanwhile. */
int fetch_cache_trim(struct fetch_mgr *m, uint64_t max_bytes, fetch_trim_cb cb, void *ud);

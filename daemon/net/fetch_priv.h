/* The download manager's insides, shared by fetch.c and fetch_http.c. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <uv.h>

#include "fetch.h"

enum xfer_kind {
	XFER_HTTP,
	XFER_FILE,
};

enum work_kind {
	WORK_REHASH, /* hash a partial file left by an earlier process */
	WORK_FINISH, /* fsync the download, move it into objects/, write the index */
	WORK_FILE,   /* copy a file:// source into the cache */
};

/* What the index says of a URL: its validators and the object it gave. */
struct entry {
	char *etag;
	char *last_modified;
	char sha256[65];
	uint64_t size;
};

struct fetch_mgr {
	uv_loop_t *loop;
	char *dir, *objects, *index, *tmp;
	uint64_t max_bytes;
	long timeout_ms;
	int retries;
	uint64_t cache_max; /* 0: unbounded */
	/* fetch_mgr_release, for fetch_cache.c's work items (which must not
	 * name fetch.c: the files would call one another in a loop) */
	void (*release)(struct fetch_mgr *m);

	struct http_mgr *http;
	struct xfer *xfers;
	/* Requests with their result, waiting for the idle handle to call
	 * them back: callbacks run only from there and from the progress
	 * timer, never from inside curl, a work item or fetch_start. */
	struct fetch_req *ready;
	uv_idle_t deliver;
	uv_timer_t tick; /* progress, once a second while bytes move */
	uv_timer_t wake; /* the next retry */
	int handles;     /* deliver, tick, wake and the http driver, until closed */
	int works;       /* work items queued and not yet called back */
	bool closing;

	/* The next items of lists being walked while user callbacks run, moved
	 * on when the item they point at leaves its list. */
	struct xfer *xiter;
	struct fetch_req *qiter;
};

struct fetch_req {
	struct fetch_mgr *m;
	struct xfer *x; /* the transfer it waits for, NULL once it has a result */
	struct fetch_req *prev, *next;
	struct fetch_req **head; /* the list it is on */
	char want[65];           /* expected digest, "" for none */
	uint64_t max_bytes;
	fetch_progress_cb progress;
	fetch_done_cb done;
	void *ud;
	bool in_cb;

	int err;
	char *cause;
	char *path;
	char sha256[65];
	uint64_t size;
	bool from_cache;
};

/* One transfer of one URL, shared by every request for it. */
struct xfer {
	struct fetch_mgr *m;
	struct xfer *prev, *next;
	bool linked;
	enum xfer_kind kind;
	char *url;
	char key[65]; /* SHA-256 of the URL: names its index entry and partial */
	char *part_path, *meta_path;
	struct fetch_req *waiters;
	uint64_t max_bytes; /* the largest limit among the waiters */
	uint64_t started;   /* ms, monotonic */
	uint64_t deadline;
	int attempts, retries;
	uint64_t retry_at; /* ms; 0 when no retry waits */

	struct entry cached;
	bool have_cached;

	/* The download. done counts the bytes in the partial file, all of
	 * them hashed into md. */
	CURL *easy;
	struct http_xfer *hx;
	struct curl_slist *hdrs;
	int fd;
	EVP_MD_CTX *md;
	uint64_t done, total;
	char *part_etag, *part_lm; /* validators of the partial body */
	bool resumable;            /* the partial may be continued with Range */

	/* The response being received (a redirect starts a new one). */
	long status;
	char reason[96];
	char *etag, *last_modified;
	int64_t clen, crange_start, crange_total;
	bool body;     /* it is the body: 200 or 206 */
	bool too_big;  /* over max_bytes: the transfer was stopped */
	int local_err; /* writing the partial failed */
	char errbuf[CURL_ERROR_SIZE];

	uint64_t prog_done, prog_at;
	double rate;

	/* A work item holds the transfer; orphan: nobody waits any more and
	 * after_work frees it. */
	uv_work_t work;
	enum work_kind work_kind;
	bool busy, orphan;
	int work_err;
	char *work_reason;
	char work_sha[65];
	uint64_t work_size;
	bool work_from_cache;
	uint64_t work_max; /* max_bytes when the work was queued: joins change it */
	char *file_path;   /* file:// */
};

/* fetch_cache.c: an object was handed out (the order of eviction). */
void fetch_cache_touch(struct fetch_mgr *m, const char *sha256);

/* fetch.c */
uint64_t fetch_now_ms(void);
void fetch_entry_clear(struct entry *e);
void fetch_md_final_hex(EVP_MD_CTX *ctx, char out[65]);
bool fetch_valid_digest(const char *s);
void fetch_xfer_succeed(struct xfer *x, const char *sha256, uint64_t size, bool from_cache);
void fetch_xfer_fail(struct xfer *x, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void fetch_response_reset(struct xfer *x);
void fetch_mgr_release(struct fetch_mgr *m);
void fetch_xfer_free(struct xfer *x);

/* fetch.c: the cache on disk and the work items */
bool fetch_entry_load(struct fetch_mgr *m, const char *url, const char *key, struct entry *e);
void fetch_meta_store(struct xfer *x);
bool fetch_if_range_ok(const struct xfer *x);
bool fetch_meta_load(struct xfer *x);
void fetch_part_discard(struct xfer *x);
void fetch_work_queue(struct xfer *x, enum work_kind kind);

/* fetch_http.c: start (or restart) x's HTTP attempt. */
void fetch_attempt_start(struct xfer *x);

/* Retention (docs/operations.md, "Retention"): at start and once a day,
 * the ended top-level runs that a rule names leave the history, as
 * `runyard rm` would remove them, in batches of RETENTION_BATCH runs (one
 * transaction each, one per turn of the loop, so the loop is never held
 * long); a sweep or an array
 * goes with its children. Never a run a model came from, one tagged keep,
 * or one with such a child, an unfinished child, or an unfinished run
 * waiting for it (store_retention_select). When anything went, a blob
 * collection follows, so the bytes come back too. */
#include "retention.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "context.h"
#include "gc.h"
#include "log.h"
#include "store.h"
#include "util.h"

#define RETENTION_BATCH 1000
#define RETENTION_BATCHES_MAX 1000 /* a million runs in one pass at most */
#define RETENTION_PERIOD_MS (24ULL * 3600 * 1000)

struct retention {
	struct daemon *d;
	uv_timer_t timer;
	struct store_retention rules;
	bool timer_on;
	int64_t removed; /* in this pass */
	int batches;
};

/* The runs one batch removes: the rules' choice, with their children. */
struct batch {
	struct daemon *d;
	int64_t *seq;
	size_t n, cap;
	int err;
};

static int add_cb(void *ud, int64_t seq)
{
	struct batch *b = ud;

	if (b->n == b->cap) {
		size_t ncap = b->cap ? b->cap * 2 : 256;
		int64_t *ns = realloc(b->seq, ncap * sizeof(*ns));
		if (!ns) {
			return b->err = -ENOMEM;
		}
		b->seq = ns;
		b->cap = ncap;
	}
	b->seq[b->n++] = seq;
	return 0;
}

static int chosen_cb(void *ud, int64_t seq, const char *rule)
{
	(void)rule;
	return add_cb(ud, seq);
}

static void gc_done_cb(void *ud, int err, const char *cause, cJSON *report)
{
	if (err < 0) {
		log_warn("retention: the collection after it failed: %s", cause ? cause : "?");
	}
	cJSON_Delete(report);
}

/* One batch: at most RETENTION_BATCH top-level runs and their children,
 * in one transaction. Returns whether a full batch went (more may wait). */
static bool apply_batch(struct retention *t)
{
	struct daemon *d = t->d;
	struct store_retention q = t->rules;
	double now = util_now();
	struct batch b = {.d = d};
	char *cause = NULL;
	size_t top;
	int err;

	q.runs_before = q.keep_runs_days > 0 ? now - q.keep_runs_days * 86400 : 0;
	q.failed_before = q.keep_failed_days > 0 ? now - q.keep_failed_days * 86400 : 0;
	err = store_retention_select(d->store, &q, RETENTION_BATCH, chosen_cb, &b);
	top = b.n;
	for (size_t k = 0; err == 0 && k < top; k++) {
		err = store_run_children(d->store, b.seq[k], add_cb, &b);
	}
	if (err == 0 && b.n > 0) {
		err = store_runs_delete(d->store, b.seq, b.n, NULL, &cause);
	}
	if (err < 0) {
		log_error("retention: %s", cause ? cause : strerror(-err));
	} else {
		t->removed += (int64_t)b.n;
	}
	free(cause);
	free(b.seq);
	return err == 0 && top == RETENTION_BATCH;
}

/* A pass is one batch per turn of the loop, so the loop is never held
 * for more than one transaction; then the next pass in a day. */
static void timer_cb(uv_timer_t *h)
{
	struct retention *t = h->data;
	struct daemon *d = t->d;

	if (d->stopping) {
		return;
	}
	if (apply_batch(t) && ++t->batches < RETENTION_BATCHES_MAX) {
		uv_timer_start(&t->timer, timer_cb, 0, 0);
		return;
	}
	if (t->removed > 0) {
		log_info("retention: removed %lld run(s) from the history", (long long)t->removed);
		if (!gc_running(d) && gc_start(d, false, gc_done_cb, NULL) < 0) {
			log_warn("retention: no collection now; 'runyard gc' frees the bytes");
		}
	}
	t->removed = 0;
	t->batches = 0;
	uv_timer_start(&t->timer, timer_cb, RETENTION_PERIOD_MS, 0);
}

int retention_init(struct daemon *d, const struct store_retention *rules)
{
	struct retention *t = calloc(1, sizeof(*t));
	int r;

	if (!t) {
		return -ENOMEM;
	}
	t->d = d;
	t->rules = *rules;
	if (rules->keep_runs_days > 0 || rules->keep_failed_days > 0 || rules->keep_runs > 0) {
		r = uv_timer_init(d->loop, &t->timer);
		if (r < 0) {
			free(t);
			return r;
		}
		t->timer.data = t;
		t->timer_on = true;
	}
	d->retention = t;
	return 0;
}

void retention_start(struct daemon *d)
{
	struct retention *t = d->retention;

	if (t && t->timer_on) {
		/* now (from the loop, after start-up), then once a day */
		uv_timer_start(&t->timer, timer_cb, 0, 0);
	}
}

static void close_cb(uv_handle_t *h)
{
	free(h->data);
}

void retention_close(struct daemon *d)
{
	struct retention *t = d->retention;

	if (!t) {
		return;
	}
	d->retention = NULL;
	if (t->timer_on) {
		uv_close((uv_handle_t *)&t->timer, close_cb);
	} else {
		free(t);
	}
}

void retention_rules(struct daemon *d, struct store_retention *ret)
{
	memset(ret, 0, sizeof(*ret));
	if (d->retention) {
		*ret = d->retention->rules;
	}
}

void retention_describe(struct daemon *d, int64_t seq, cJSON *run)
{
	struct store_retention q;

	retention_rules(d, &q);
	store_run_retention_json(d->store, seq, &q, run);
}

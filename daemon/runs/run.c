#include "run.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"
#include "log.h"
#include "runs_priv.h"
#include "store.h"
#include "util.h"

static const char *const status_names[RUN__MAX] = {
	[RUN_QUEUED] = "Queued",
	[RUN_PREPARING] = "Preparing",
	[RUN_SCALING] = "Scaling",
	[RUN_RUNNING] = "Running",
	[RUN_CANCEL_REQUESTED] = "CancelRequested",
	[RUN_FINALIZING] = "Finalizing",
	[RUN_COMPLETED] = "Completed",
	[RUN_FAILED] = "Failed",
	[RUN_CANCELED] = "Canceled",
};

#define B(s) (1u << (s))

/* The edges of the lifecycle. Failed is reachable from every live status
 * (a failure names the stage it happened in); Canceled only from Queued
 * (at once) or after a cancel was requested and the process is gone. */
static const unsigned edges[RUN__MAX] = {
	[RUN_QUEUED] = B(RUN_PREPARING) | B(RUN_CANCELED) | B(RUN_FAILED),
	[RUN_PREPARING] = B(RUN_SCALING) | B(RUN_CANCEL_REQUESTED) | B(RUN_FAILED),
	[RUN_SCALING] = B(RUN_RUNNING) | B(RUN_CANCEL_REQUESTED) | B(RUN_FAILED),
	[RUN_RUNNING] = B(RUN_FINALIZING) | B(RUN_CANCEL_REQUESTED) | B(RUN_FAILED),
	[RUN_CANCEL_REQUESTED] = B(RUN_FINALIZING) | B(RUN_CANCELED) | B(RUN_FAILED),
	[RUN_FINALIZING] = B(RUN_COMPLETED) | B(RUN_FAILED) | B(RUN_CANCELED),
};

const char *run_status_name(enum run_status s)
{
	return s < RUN__MAX ? status_names[s] : "Unknown";
}

int run_status_parse(const char *name, enum run_status *ret)
{
	for (int i = 0; i < RUN__MAX; i++) {
		if (strcmp(name, status_names[i]) == 0) {
			*ret = (enum run_status)i;
			return 0;
		}
	}
	return -EINVAL;
}

bool run_status_terminal(enum run_status s)
{
	return s == RUN_COMPLETED || s == RUN_FAILED || s == RUN_CANCELED;
}

bool run_transition_allowed(enum run_status from, enum run_status to)
{
	if (from >= RUN__MAX || to >= RUN__MAX) {
		return false;
	}
	return (edges[from] & B(to)) != 0;
}

static void run_free(struct run *r);
static void reap_cb(uv_check_t *h);

int run_events_init(struct daemon *d)
{
	struct runs *rs = calloc(1, sizeof(*rs));

	if (!rs) {
		return -ENOMEM;
	}
	uv_check_init(d->loop, &rs->reaper);
	rs->reaper.data = rs;
	d->runs = rs;
	return 0;
}

int run_subscribe(struct daemon *d, run_event_fn fn, void *ud)
{
	struct runs *rs = d->runs;

	if (rs->n_sinks == RUNS_SINKS_MAX) {
		return -ENOSPC;
	}
	rs->sinks[rs->n_sinks].fn = fn;
	rs->sinks[rs->n_sinks].ud = ud;
	rs->n_sinks++;
	return 0;
}

static void fire(struct run *r, enum run_event ev)
{
	struct runs *rs = r->d->runs;

	for (int i = 0; rs && i < rs->n_sinks; i++) {
		rs->sinks[i].fn(rs->sinks[i].ud, r, ev);
	}
}

static void reaper_closed_cb(uv_handle_t *h)
{
	struct runs *rs = h->data;

	/* The loop is only closing now: nothing is left to call back into
	 * what is freed here. */
	while (rs->dead) {
		struct run *r = rs->dead;
		rs->dead = r->dead_next;
		run_free(r);
	}
	free(rs);
}

void run_events_close(struct daemon *d)
{
	struct runs *rs = d->runs;

	if (!rs) {
		return;
	}
	d->runs = NULL;
	uv_close((uv_handle_t *)&rs->reaper, reaper_closed_cb);
}

struct run *run_create(struct daemon *d, int64_t seq, const char *id, const char *experiment)
{
	struct run *r = calloc(1, sizeof(*r));

	if (!r) {
		return NULL;
	}
	r->d = d;
	r->seq = seq;
	r->req.cpus = 1; /* what a run asks for when it says nothing */
	r->attempt = 1;
	r->retry_on = RUN_RETRY_FAIL | RUN_RETRY_OOM;
	r->id = strdup(id);
	r->experiment = strdup(experiment);
	r->dir = util_path_join(d->runs_dir, id);
	r->workdir = r->dir ? util_path_join(r->dir, "work") : NULL;
	if (!r->id || !r->experiment || !r->dir || !r->workdir) {
		free(r->id);
		free(r->experiment);
		free(r->dir);
		free(r->workdir);
		free(r);
		return NULL;
	}
	r->prev = d->runs_tail;
	if (d->runs_tail) {
		d->runs_tail->next = r;
	} else {
		d->runs_head = r;
	}
	d->runs_tail = r;
	return r;
}

static const struct {
	const char *name;
	unsigned mask;
} retry_names[] = {
	{"fail", RUN_RETRY_FAIL | RUN_RETRY_OOM},
	{"oom", RUN_RETRY_OOM},
	{"restart", RUN_RETRY_RESTART},
	{"any", RUN_RETRY_FAIL | RUN_RETRY_OOM | RUN_RETRY_RESTART},
};

int run_retry_on_parse(const char *text, unsigned *ret, const char **bad)
{
	unsigned mask = 0;
	const char *p = text;

	if (bad) {
		*bad = NULL;
	}
	while (*p || (p > text && p[-1] == ',')) {
		size_t n = strcspn(p, ","), i;
		if (n == 0) {
			/* "fail,,oom" or a trailing comma: surely a typo. */
			if (bad) {
				*bad = p;
			}
			return -EINVAL;
		}
		for (i = 0; i < sizeof(retry_names) / sizeof(retry_names[0]); i++) {
			if (strlen(retry_names[i].name) == n &&
			    strncmp(p, retry_names[i].name, n) == 0) {
				break;
			}
		}
		if (i == sizeof(retry_names) / sizeof(retry_names[0])) {
			if (bad) {
				*bad = p;
			}
			return -EINVAL;
		}
		mask |= retry_names[i].mask;
		p += n + (p[n] == ',');
	}
	if (!mask) {
		return -EINVAL;
	}
	*ret = mask;
	return 0;
}

void run_retry_on_name(unsigned mask, char *buf, size_t len)
{
	size_t at = 0;

	buf[0] = '\0';
	/* "any" when it is everything; else the fewest names that cover it. */
	if (mask == retry_names[3].mask) {
		snprintf(buf, len, "any");
		return;
	}
	for (size_t i = 0; i < 3 && at < len; i++) {
		if ((mask & retry_names[i].mask) == retry_names[i].mask) {
			at += (size_t)snprintf(buf + at, len - at, "%s%s", at ? "," : "",
					       retry_names[i].name);
			mask &= ~retry_names[i].mask;
		}
	}
}

static const char *const dep_names[] = {
	[RUN_DEP_OK] = "ok",
	[RUN_DEP_ANY] = "any",
	[RUN_DEP_FAIL] = "fail",
};

int run_dep_when_parse(const char *name, enum run_dep_when *ret)
{
	for (size_t i = 0; i < sizeof(dep_names) / sizeof(dep_names[0]); i++) {
		if (strcmp(name, dep_names[i]) == 0) {
			*ret = (enum run_dep_when)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *run_dep_when_name(enum run_dep_when w)
{
	return (size_t)w < sizeof(dep_names) / sizeof(dep_names[0]) ? dep_names[w] : "ok";
}

int run_set_deps(struct run *r, const int64_t *seqs, const char *const *conds, size_t n)
{
	struct run_dep *a = n ? calloc(n, sizeof(*a)) : NULL;

	if (n && !a) {
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		a[i].seq = seqs[i];
		if (run_dep_when_parse(conds[i], &a[i].when) < 0) {
			a[i].when = RUN_DEP_OK;
		}
	}
	free(r->after);
	r->after = a;
	r->nafter = (int)n;
	return 0;
}

struct deps_load {
	int64_t seq[RUN_DEPS_MAX];
	const char *cond[RUN_DEPS_MAX];
	char conds[RUN_DEPS_MAX][8];
	size_t n;
};

static int dep_cb(void *ud, int64_t dep_seq, const char *cond)
{
	struct deps_load *l = ud;

	if (l->n < RUN_DEPS_MAX) {
		snprintf(l->conds[l->n], sizeof(l->conds[l->n]), "%s", cond ? cond : "ok");
		l->cond[l->n] = l->conds[l->n];
		l->seq[l->n++] = dep_seq;
	}
	return 0;
}

struct run *run_load(struct daemon *d, const struct store_run_row *row)
{
	struct run *r = run_create(d, row->seq, row->id, row->experiment);

	if (!r) {
		return NULL;
	}
	if (run_status_parse(row->status, &r->status) < 0) {
		r->status = RUN_QUEUED;
	}
	r->priority = row->priority;
	r->created_at = row->created_at;
	r->timeout = row->timeout;
	r->keep = row->keep;
	r->snapshot = strdup(row->snapshot);
	r->argv = cJSON_Parse(row->argv_json);
	r->env = cJSON_Parse(row->env_json ? row->env_json : "{}");
	r->log_offset = row->log_offset;
	r->log_lines = row->log_lines;
	r->sup_pid = row->sup_pid;
	r->parent = row->parent_seq;
	r->interactive = row->kind && strcmp(row->kind, "interactive") == 0;
	r->retries = row->retries;
	r->attempt = row->attempt > 0 ? row->attempt : 1;
	if (row->retry_on && run_retry_on_parse(row->retry_on, &r->retry_on, NULL) < 0) {
		r->retry_on = RUN_RETRY_FAIL | RUN_RETRY_OOM;
	}
	if (row->request_json) {
		cJSON *q = cJSON_Parse(row->request_json);
		if (res_request_parse(q, &r->req) < 0) {
			r->req = (struct res_request){.cpus = 1};
		}
		cJSON_Delete(q);
	}
	if (r->status == RUN_QUEUED) {
		struct deps_load *l = calloc(1, sizeof(*l));
		if (!l || store_run_deps(d->store, r->seq, dep_cb, l) < 0 ||
		    run_set_deps(r, l->seq, l->cond, l->n) < 0) {
			free(l);
			return NULL;
		}
		free(l);
	}
	/* A run past the queue holds what it was given, and keeps it. */
	if (row->grant_json && r->status != RUN_QUEUED && d->pool) {
		cJSON *g = cJSON_Parse(row->grant_json);
		if (res_grant_parse(d->pool, g, &r->grant) == 0 &&
		    res_take_exact(d->pool, &r->grant) == 0) {
			r->holds_resources = true;
		} else {
			log_warn("run %s: the GPUs it was given are no longer on this machine",
				 r->id);
		}
		cJSON_Delete(g);
	}
	if (!r->env) {
		r->env = cJSON_CreateObject();
	}
	if (!r->snapshot || !cJSON_IsArray(r->argv) || !r->env) {
		/* Still on the list: the daemon's start fails and frees it. */
		return NULL;
	}
	return r;
}

struct run *run_find(struct daemon *d, int64_t seq)
{
	for (struct run *r = d->runs_head; r; r = r->next) {
		if (r->seq == seq && !r->ended) {
			return r;
		}
	}
	return NULL;
}

static void run_free(struct run *r)
{
	free(r->after);
	cJSON_Delete(r->argv);
	cJSON_Delete(r->env);
	free(r->id);
	free(r->experiment);
	free(r->snapshot);
	free(r->dir);
	free(r->workdir);
	free(r);
}

/* The end of the tick: free the runs released since the last one. */
static void reap_cb(uv_check_t *h)
{
	struct runs *rs = h->data;

	while (rs->dead) {
		struct run *r = rs->dead;
		rs->dead = r->dead_next;
		run_free(r);
	}
	uv_check_stop(h);
}

void run_release(struct run *r)
{
	struct runs *rs = r->d->runs;

	if (!r->ended || r->handles > 0 || r->busy || r->dead_next || (rs && rs->dead == r)) {
		return;
	}
	if (!rs) {
		/* The daemon is stopping and its loop only closes handles:
		 * no callback chain is left to be inside of. */
		run_free(r);
		return;
	}
	r->dead_next = rs->dead;
	rs->dead = r;
	uv_check_start(&rs->reaper, reap_cb);
}

/* A terminal status: leave the daemon's list and tell the subscribers (the
 * scheduler gives back the slot and closes the run's handles); the struct
 * goes at the end of the tick once they have closed. */
static void run_end(struct run *r)
{
	struct daemon *d = r->d;

	r->ended = true;
	if (r->prev) {
		r->prev->next = r->next;
	} else {
		d->runs_head = r->next;
	}
	if (r->next) {
		r->next->prev = r->prev;
	} else {
		d->runs_tail = r->prev;
	}
	r->prev = r->next = NULL;
	queue_remove(d, r);
	fire(r, RUN_EV_ENDED);
	run_release(r);
}

int run_transition(struct run *r, enum run_status to)
{
	struct daemon *d = r->d;
	double now = util_now();
	int ret;

	if (r->ended || !run_transition_allowed(r->status, to)) {
		return -EINVAL;
	}
	ret = store_run_transition(d->store, r->seq, run_status_name(to), now,
				   run_status_terminal(to));
	if (ret < 0) {
		log_error("run %s: recording status %s failed: %s", r->id, run_status_name(to),
			  store_errmsg(d->store));
		return ret;
	}
	log_debug("run %s: %s -> %s", r->id, run_status_name(r->status), run_status_name(to));
	r->status = to;
	r->status_at = now;
	fire(r, RUN_EV_STATUS);
	if (run_status_terminal(to)) {
		run_end(r);
	}
	return 0;
}

int run_requeue(struct run *r)
{
	struct daemon *d = r->d;
	double now = util_now();
	int ret;

	if (r->ended || r->status == RUN_QUEUED || run_status_terminal(r->status)) {
		return -EINVAL;
	}
	ret = store_run_requeue(d->store, r->seq, run_status_name(RUN_FAILED), now);
	if (ret < 0) {
		log_error("run %s: recording its attempt %d failed: %s", r->id, r->attempt,
			  store_errmsg(d->store));
		return ret;
	}
	log_info("run %s: attempt %d of %d failed; queued again", r->id, r->attempt,
		 r->retries + 1);
	r->attempt++;
	r->status = RUN_QUEUED;
	r->status_at = now;
	/* What belonged to the attempt: the next one starts from nothing but
	 * the run's line count, which goes on so that every line keeps its
	 * number. */
	r->exited = false;
	r->attempt_lost = false;
	r->outcome = RUN_QUEUED;
	r->sup_pid = 0;
	r->log_offset = 0;
	r->tracking_offset = 0;
	r->token[0] = '\0';
	fire(r, RUN_EV_REQUEUED);
	fire(r, RUN_EV_STATUS);
	queue_enqueue(d, r);
	return 0;
}

void run_notify_log(struct run *r)
{
	fire(r, RUN_EV_LOG);
}

void run_notify_metric(struct run *r)
{
	fire(r, RUN_EV_METRIC);
}

int run_fail(struct run *r, const char *code, const char *fmt, ...)
{
	char *msg = NULL;
	va_list ap;
	int ret;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0) {
		msg = NULL;
	}
	va_end(ap);
	ret = store_run_set_error(r->d->store, r->seq, code, msg ? msg : code,
				  run_status_name(r->status));
	if (ret < 0) {
		log_error("run %s: recording its error failed: %s", r->id,
			  store_errmsg(r->d->store));
	}
	log_info("run %s failed in %s: %s: %s", r->id, run_status_name(r->status), code,
		 msg ? msg : "");
	free(msg);
	return run_transition(r, RUN_FAILED);
}

/* Admission from the queue. A run that ends gives back its place on its
 * target; the queue is then looked at again from a check handle at the end
 * of the loop's tick, not from inside the callback chain that ended the
 * run, so admission never re-enters itself through a run that fails while
 * it is being prepared. */
#include "scheduler.h"

#include <errno.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "context.h"
#include "exec.h"
#include "log.h"
#include "queue.h"
#include "resources.h"
#include "run.h"
#include "store.h"
#include "target.h"

struct scheduler {
	uv_check_t later;
	/* Keeps the loop from blocking in poll while a kick waits for the
	 * check phase (an end seen in a timer callback). */
	uv_idle_t awake;
	bool pending;
	int open; /* handles not yet closed; the struct goes with the last */
	struct daemon *d;
};

static void later_cb(uv_check_t *h);

static void idle_cb(uv_idle_t *h)
{
}

int scheduler_init(struct daemon *d)
{
	struct scheduler *s = calloc(1, sizeof(*s));

	if (!s) {
		return -ENOMEM;
	}
	s->d = d;
	uv_check_init(d->loop, &s->later);
	s->later.data = s;
	uv_idle_init(d->loop, &s->awake);
	s->awake.data = s;
	s->open = 2;
	d->scheduler = s;
	return 0;
}

static void closed_cb(uv_handle_t *h)
{
	struct scheduler *s = h->data;

	if (--s->open == 0) {
		free(s);
	}
}

void scheduler_close(struct daemon *d)
{
	struct scheduler *s = d->scheduler;

	if (!s) {
		return;
	}
	d->scheduler = NULL;
	uv_close((uv_handle_t *)&s->awake, closed_cb);
	uv_close((uv_handle_t *)&s->later, closed_cb);
}

/* A local run's resources: whether it may start now, given the first local
 * run in queue order that does not fit (*head, set here when r is it), and
 * if so take them and record what it got. */
static bool admit_local(struct daemon *d, struct run *r, const struct res_request **head)
{
	char *grant;
	cJSON *j;

	if (!d->pool || target_of(r) != d->targets) {
		return true;
	}
	if (!(*head ? res_may_pass(d->pool, *head, &r->req) : res_fits(d->pool, &r->req))) {
		if (!*head) {
			*head = &r->req;
		}
		return false;
	}
	res_take(d->pool, &r->req, &r->grant);
	r->holds_resources = true;
	j = res_grant_json(d->pool, &r->grant);
	grant = j ? cJSON_PrintUnformatted(j) : NULL;
	/* Without the record a restart would not know its devices; the run
	 * still holds them here. */
	if (!grant || store_run_grant_set(d->store, r->seq, grant) < 0) {
		log_error("run %s: recording its resources failed", r->id);
	}
	free(grant);
	cJSON_Delete(j);
	return true;
}

/* Whether r's dependencies allow it to start: 1 all met, 0 one is still
 * running (or is a sweep in progress), -1 one ended the wrong way (r has
 * then ended Canceled, DependencyFailed). */
static int deps_ready(struct daemon *d, struct run *r)
{
	for (int i = 0; i < r->nafter; i++) {
		struct run_dep *dep = &r->after[i];
		enum run_status st;
		char status[32];
		bool ok;

		if (dep->met) {
			continue;
		}
		if (run_find(d, dep->seq) ||
		    store_run_status(d->store, dep->seq, status, sizeof(status)) < 0 ||
		    run_status_parse(status, &st) < 0 || !run_status_terminal(st)) {
			return 0;
		}
		ok = dep->when == RUN_DEP_ANY || (dep->when == RUN_DEP_OK && st == RUN_COMPLETED) ||
		     (dep->when == RUN_DEP_FAIL && st != RUN_COMPLETED);
		if (ok) {
			dep->met = true;
			continue;
		}
		char msg[160];
		snprintf(msg, sizeof(msg), "run #%lld ended %s; this run was to start after it %s",
			 (long long)dep->seq, status,
			 dep->when == RUN_DEP_OK ? "completed" : "failed or was canceled");
		store_run_set_error(d->store, r->seq, "DependencyFailed", msg, "Queued");
		log_info("run %s: %s", r->id, msg);
		run_transition(r, RUN_CANCELED);
		return -1;
	}
	return 1;
}

void scheduler_kick(struct daemon *d)
{
	struct run *r = queue_head(d);
	const struct res_request *head = NULL;

	/* Each run needs a place on its own target: a full target holds back
	 * its runs only, and the others pass them in queue order. On the local
	 * target a run also needs its CPUs, memory and GPUs; one that does not
	 * fit is passed only by runs that take none of what it waits for
	 * (res_may_pass), so it is never delayed by them. */
	/* A run whose dependency ended the wrong way ends now, even when no
	 * target has room; the next in line is taken before it leaves. */
	for (struct run *q = r, *next; q && !d->stopping && !d->resuming; q = next) {
		next = q->qnext;
		if (q->nafter) {
			deps_ready(d, q);
		}
	}
	r = queue_head(d);
	while (!d->stopping && !d->resuming && r && target_any_room(d)) {
		if ((r->nafter && deps_ready(d, r) != 1) || !target_has_room(r) ||
		    !admit_local(d, r, &head)) {
			r = r->qnext;
			continue;
		}
		queue_remove(d, r);
		target_slot_take(r);
		exec_prepare(r);
		/* exec_prepare may fail the run at once; its end only asks for
		 * a later kick, but the line is read again from its head rather
		 * than trusting a pointer kept across the call. */
		r = queue_head(d);
		head = NULL;
	}
}

static void later_cb(uv_check_t *h)
{
	struct scheduler *s = h->data;
	struct daemon *d = s->d;

	s->pending = false;
	uv_check_stop(&s->later);
	uv_idle_stop(&s->awake);
	scheduler_kick(d);
}

void scheduler_run_event(void *ud, struct run *r, enum run_event ev)
{
	struct daemon *d = ud;
	struct scheduler *s = d->scheduler;

	/* An end, or a failed attempt going back in line: both give back
	 * what the run held and look at the queue again. */
	if (ev != RUN_EV_ENDED && ev != RUN_EV_REQUEUED) {
		return;
	}
	target_slot_release(r);
	if (r->holds_resources && d->pool) {
		res_give(d->pool, &r->grant);
		r->holds_resources = false;
	}
	if (!s || d->stopping || s->pending) {
		return;
	}
	s->pending = true;
	uv_check_start(&s->later, later_cb);
	uv_idle_start(&s->awake, idle_cb);
}

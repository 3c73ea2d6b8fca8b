/* The history's life cycle ops (docs/operations.md, "Life cycle"): run.rm
 * and experiment.rm delete terminal runs; store.gc collects the blobs
 * nothing refers to any more; store.du measures the store.
 *
 * run.rm is all or nothing for the runs it is given by name: one that may
 * not go (still active, a model came from it, an unfinished run waits for
 * it) refuses the whole request and changes nothing. Runs that only a
 * selector matched are skipped with the reason instead, so `rm --experiment
 * E` while one of E's runs is still going removes the others. */
#include "optable.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "context.h"
#include "gc.h"
#include "log.h"
#include "msg.h"
#include "proto.h"
#include "request.h"
#include "run.h"
#include "store.h"
#include "sweep.h"
#include "util.h"

/* Most run references one request may name (as the CLI's ranges). */
#define RM_REFS_MAX 100000
/* Most runs one request may remove: a selector that matches more is
 * refused rather than cut, so nothing half done is left to wonder about. */
#define RM_RUNS_MAX 200000
/* Most runs listed in a reply; the counts are whole. */
#define RM_LIST_MAX 10000
/* Most runs deleted in one transaction (one turn of the loop). */
#define RM_STEP 200

/* The set of runs being considered, in the order found, each once. */
struct rm_set {
	int64_t *seq;
	bool *named; /* given by name (refused, not skipped) */
	size_t n, cap;
	bool overflow;
};

/* Repeats are dropped afterwards (set_dedup), in one sort. */
static int set_add(struct rm_set *s, int64_t seq, bool named)
{
	if (s->n >= RM_RUNS_MAX) {
		s->overflow = true;
		return -E2BIG;
	}
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 64;
		int64_t *ns = realloc(s->seq, ncap * sizeof(*ns));
		if (!ns) {
			return -ENOMEM;
		}
		s->seq = ns;
		bool *nn = realloc(s->named, ncap * sizeof(*nn));
		if (!nn) {
			return -ENOMEM;
		}
		s->named = nn;
		s->cap = ncap;
	}
	s->seq[s->n] = seq;
	s->named[s->n] = named;
	s->n++;
	return 0;
}

static void set_finish(struct rm_set *s)
{
	free(s->seq);
	free(s->named);
}

/* A selector's runs (repeats go in set_dedup, so 100,000 of them cost no
 * quadratic scan). */
struct sel_ctx {
	struct rm_set *set;
	int err;
};

static int sel_cb(void *ud, int64_t seq)
{
	struct sel_ctx *c = ud;
	c->err = set_add(c->set, seq, false);
	return c->err;
}

static int cmp_seq(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* Drop repeated runs (a run named and also matched keeps "named"). */
static void set_dedup(struct rm_set *s)
{
	struct pair {
		int64_t seq;
		size_t at;
	};
	struct pair *p;
	size_t k = 0;

	if (s->n < 2) {
		return;
	}
	p = malloc(s->n * sizeof(*p));
	if (!p) {
		return;
	}
	for (size_t i = 0; i < s->n; i++) {
		p[i].seq = s->seq[i];
		p[i].at = i;
	}
	qsort(p, s->n, sizeof(*p), cmp_seq);
	bool *drop = calloc(s->n, sizeof(*drop));
	if (!drop) {
		free(p);
		return;
	}
	for (size_t i = 1; i < s->n; i++) {
		if (p[i].seq == p[i - 1].seq) {
			size_t first = p[i - 1].at < p[i].at ? p[i - 1].at : p[i].at;
			size_t other = first == p[i].at ? p[i - 1].at : p[i].at;
			s->named[first] = s->named[first] || s->named[other];
			drop[other] = true;
			p[i].at = first;
		}
	}
	for (size_t i = 0; i < s->n; i++) {
		if (!drop[i]) {
			s->seq[k] = s->seq[i];
			s->named[k] = s->named[i];
			k++;
		}
	}
	s->n = k;
	free(drop);
	free(p);
}

/* The directories of removed runs that were kept (--keep), in the pool. */
struct rm_dirs {
	uv_work_t work;
	char **paths;
	size_t n;
};

static void dirs_work(uv_work_t *w)
{
	struct rm_dirs *x = w->data;

	for (size_t i = 0; i < x->n; i++) {
		util_rm_rf(x->paths[i]);
	}
}

static void dirs_done(uv_work_t *w, int status)
{
	struct rm_dirs *x = w->data;

	for (size_t i = 0; i < x->n; i++) {
		free(x->paths[i]);
	}
	free(x->paths);
	free(x);
}

static void remove_dirs_later(struct daemon *d, char **paths, size_t n)
{
	struct rm_dirs *x;

	if (n == 0) {
		free(paths);
		return;
	}
	x = calloc(1, sizeof(*x));
	if (!x) {
		goto fail;
	}
	x->paths = paths;
	x->n = n;
	x->work.data = x;
	if (uv_queue_work(d->loop, &x->work, dirs_work, dirs_done) < 0) {
		free(x);
		goto fail;
	}
	return;
fail:
	/* the start-up sweep removes what is left of deleted runs */
	for (size_t i = 0; i < n; i++) {
		free(paths[i]);
	}
	free(paths);
}


/* A removal of more than RM_STEP runs: each step is a transaction of its
 * own, so the loop (runs' output, other clients) is never held for long.
 * Every step leaves a consistent store, and a kill between steps leaves
 * the runs of the steps not yet done. */
struct rm_job {
	struct daemon *d;
	struct request *req;
	cJSON *res;
	int64_t *go;
	size_t ngo, done;
	char **dirs;
	size_t ndirs;
	char *experiment; /* experiment.rm: its name goes after the last step */
	uv_timer_t timer;
};

static void rm_job_close_cb(uv_handle_t *h)
{
	struct rm_job *j = h->data;

	request_release(j->req);
	cJSON_Delete(j->res);
	free(j->go);
	for (size_t i = 0; i < j->ndirs; i++) {
		free(j->dirs[i]);
	}
	free(j->dirs);
	free(j->experiment);
	free(j);
}

static void rm_job_step_cb(uv_timer_t *t)
{
	struct rm_job *j = t->data;
	struct daemon *d = j->d;
	size_t n = j->ngo - j->done < RM_STEP ? j->ngo - j->done : RM_STEP;
	bool last = j->done + n == j->ngo;
	char *cause = NULL;
	int err;

	if (d->stopping) {
		request_error(j->req, PROTO_E_SHUTTING_DOWN,
			      "runyardd is stopping: %zu of %zu runs were removed", j->done, j->ngo);
		goto end;
	}
	/* From the end: children were found after their parents, so a parent
	 * goes in the step after its last child, and a kill between steps
	 * leaves parents with fewer children, never children without parent. */
	err = store_runs_delete(d->store, j->go + (j->ngo - j->done - n), n,
				last ? j->experiment : NULL, &cause);
	if (err < 0) {
		request_error(j->req, PROTO_E_INTERNAL, "%s; %zu of %zu runs were removed before",
			      cause ? cause : "deleting the runs failed", j->done, j->ngo);
		free(cause);
		goto end;
	}
	j->done += n;
	if (!last) {
		return; /* the timer repeats */
	}
	log_info("removed %zu run(s) from the history", j->ngo);
	store_vacuum_step(d->store, 2048);
	remove_dirs_later(d, j->dirs, j->ndirs);
	j->dirs = NULL;
	j->ndirs = 0;
	request_reply(j->req, j->res);
	j->res = NULL;
end:
	uv_timer_stop(t);
	uv_close((uv_handle_t *)t, rm_job_close_cb);
}

/* Takes res, go and dirs (freed on failure too). */
static int rm_job_start(struct request *req, cJSON *res, int64_t *go, size_t ngo, char **dirs,
			size_t ndirs, const char *experiment)
{
	struct rm_job *j = calloc(1, sizeof(*j));
	int r = -ENOMEM;

	if (!j) {
		goto fail;
	}
	j->d = req->d;
	j->res = res;
	j->go = go;
	j->ngo = ngo;
	j->dirs = dirs;
	j->ndirs = ndirs;
	j->experiment = experiment ? strdup(experiment) : NULL;
	j->req = request_hold(req);
	if (!j->req || (experiment && !j->experiment)) {
		goto fail_job;
	}
	r = uv_timer_init(req->d->loop, &j->timer);
	if (r < 0) {
		goto fail_job;
	}
	j->timer.data = j;
	r = uv_timer_start(&j->timer, rm_job_step_cb, 0, 1);
	if (r < 0) {
		uv_close((uv_handle_t *)&j->timer, rm_job_close_cb);
		return r;
	}
	return 0;
fail_job:
	request_release(j->req);
	free(j->experiment);
	free(j);
fail:
	cJSON_Delete(res);
	free(go);
	for (size_t i = 0; i < ndirs; i++) {
		free(dirs[i]);
	}
	free(dirs);
	return r;
}

struct rm_args {
	const char *experiment;
	const char *status;
	double before;
	int64_t parent;
	bool dry_run;
	bool force;
	bool experiment_rm; /* experiment.rm: the name goes with its last run */
};

static const char *rm_refusal(struct daemon *d, const struct store_rm_info *in, bool force,
			      char *buf, size_t len)
{
	enum run_status st;
	bool terminal = run_status_parse(in->status, &st) == 0 && run_status_terminal(st);

	if (!terminal || run_find(d, in->seq) || sweep_active(d, in->seq)) {
		snprintf(buf, len,
			 "run #%lld (%s) is %s: cancel it first ('runyard cancel %lld'), then "
			 "remove it",
			 (long long)in->seq, in->id, in->status, (long long)in->seq);
		return "active";
	}
	if (in->parent_seq > 0 && sweep_active(d, in->parent_seq)) {
		snprintf(buf, len,
			 "run #%lld (%s) is a trial of sweep #%lld, which is still going; cancel "
			 "the sweep or wait for it to end",
			 (long long)in->seq, in->id, (long long)in->parent_seq);
		return "active";
	}
	if (in->models > 0 && !force) {
		snprintf(buf, len,
			 "model %s came from run #%lld (%s); give --force to remove the run anyway "
			 "(the model keeps its files and records that its run is gone)",
			 in->model_names, (long long)in->seq, in->id);
		return "model";
	}
	if (in->active_dependents > 0) {
		snprintf(buf, len,
			 "%lld unfinished run(s) wait for run #%lld (%s) (--after); let them "
			 "start or cancel them first",
			 (long long)in->active_dependents, (long long)in->seq, in->id);
		return "waited-for";
	}
	return NULL;
}

static void do_rm(struct request *req, const cJSON *refs, const struct rm_args *a)
{
	struct daemon *d = req->d;
	struct rm_set set = {0};
	struct store_rm_info info;
	struct store_rm_estimate est;
	char why[1024], *cause = NULL;
	cJSON *res = NULL, *list, *skipped;
	int64_t *go = NULL, models = 0;
	char **dirs = NULL;
	size_t ngo = 0, ndirs = 0, nskipped = 0;
	const cJSON *it;
	int err = 0;

	/* 1. what is named, all of it known or nothing happens */
	cJSON_ArrayForEach(it, refs) {
		int64_t seq;
		if (store_run_resolve(d->store, it->valuestring, &seq) < 0) {
			request_error(req, PROTO_E_NOT_FOUND,
				      "no run '%s' (see 'runyard runs'); nothing was removed",
				      it->valuestring);
			goto out;
		}
		err = set_add(&set, seq, true);
		if (err < 0) {
			goto fail;
		}
	}
	if (a->experiment || a->status || a->before > 0 || a->parent > 0) {
		struct store_run_select q = {
			.experiment = a->experiment,
			.status = a->status,
			.before = a->before,
			.parent_seq = a->parent,
		};
		struct sel_ctx c = {.set = &set};
		err = store_runs_select(d->store, &q, sel_cb, &c);
		if (err < 0 || c.err < 0) {
			err = c.err < 0 ? c.err : err;
			goto fail;
		}
	}
	set_dedup(&set);
	/* 2. a sweep or an array goes with its children (and theirs) */
	for (size_t i = 0; i < set.n; i++) {
		size_t before = set.n;
		struct sel_ctx c = {.set = &set};
		if (store_run_rm_info(d->store, set.seq[i], &info) < 0 ||
		    strcmp(info.kind, "run") == 0) {
			continue;
		}
		err = store_run_children(d->store, set.seq[i], sel_cb, &c);
		if (err < 0 || c.err < 0) {
			err = c.err < 0 ? c.err : err;
			goto fail;
		}
		/* children inherit being named from their parent */
		for (size_t k = before; k < set.n; k++) {
			set.named[k] = set.named[i];
		}
		set_dedup(&set);
	}
	if (set.n == 0) {
		if (a->experiment_rm) {
			/* an experiment with no runs at all: its name alone goes */
			goto decide;
		}
		request_error(req, PROTO_E_NOT_FOUND, "no runs match; nothing was removed");
		goto out;
	}
decide:
	/* 3. what may go */
	go = calloc(set.n ? set.n : 1, sizeof(*go));
	dirs = calloc(set.n ? set.n : 1, sizeof(*dirs));
	res = cJSON_CreateObject();
	if (!go || !dirs || !res) {
		err = -ENOMEM;
		goto fail;
	}
	list = cJSON_AddArrayToObject(res, "runs");
	skipped = cJSON_AddArrayToObject(res, "skipped");
	for (size_t i = 0; i < set.n; i++) {
		const char *reason;
		if (store_run_rm_info(d->store, set.seq[i], &info) < 0) {
			continue;
		}
		reason = rm_refusal(d, &info, a->force, why, sizeof(why));
		if (reason && set.named[i]) {
			request_error(req, PROTO_E_CONFLICT, "%s; nothing was removed", why);
			goto out;
		}
		if (reason) {
			if (nskipped++ < RM_LIST_MAX) {
				cJSON *o = cJSON_CreateObject();
				cJSON_AddStringToObject(o, "id", info.id);
				cJSON_AddNumberToObject(o, "seq", (double)info.seq);
				cJSON_AddStringToObject(o, "reason", reason);
				cJSON_AddStringToObject(o, "message", why);
				cJSON_AddItemToArray(skipped, o);
			}
			continue;
		}
		models += info.models;
		go[ngo++] = info.seq;
		if (info.keep_dir) {
			dirs[ndirs] = util_path_join(d->runs_dir, info.id);
			if (dirs[ndirs]) {
				ndirs++;
			}
		}
		if (ngo <= RM_LIST_MAX) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "id", info.id);
			cJSON_AddNumberToObject(o, "seq", (double)info.seq);
			cJSON_AddStringToObject(o, "status", info.status);
			cJSON_AddStringToObject(o, "experiment", info.experiment);
			cJSON_AddStringToObject(o, "kind", info.kind);
			cJSON_AddItemToArray(list, o);
		}
	}
	/* 4. what it frees, then (unless a dry run) do it */
	err = store_runs_rm_estimate(d->store, go, ngo, &est);
	if (err < 0) {
		goto fail;
	}
	cJSON_AddBoolToObject(res, "dry_run", a->dry_run);
	cJSON_AddNumberToObject(res, "count", (double)ngo);
	cJSON_AddNumberToObject(res, "skipped_count", (double)nskipped);
	cJSON_AddNumberToObject(res, "models_unlinked", (double)models);
	cJSON *freed = cJSON_AddObjectToObject(res, "frees");
	cJSON_AddNumberToObject(freed, "log_bytes", (double)est.log_bytes);
	cJSON_AddNumberToObject(freed, "metric_points", (double)est.metric_points);
	cJSON_AddNumberToObject(freed, "output_blobs", (double)est.output_blobs);
	cJSON_AddNumberToObject(freed, "output_bytes", (double)est.output_bytes);
	cJSON_AddNumberToObject(freed, "snapshots", (double)est.snapshots);
	cJSON_AddNumberToObject(freed, "bytes", (double)(est.log_bytes + est.output_bytes));
	if (!a->dry_run && ngo > RM_STEP) {
		/* many runs: one transaction of RM_STEP runs per turn of the loop */
		err = rm_job_start(req, res, go, ngo, dirs, ndirs,
				   a->experiment_rm ? a->experiment : NULL);
		/* taken, even on failure */
		res = NULL;
		go = NULL;
		dirs = NULL;
		ndirs = 0;
		if (err < 0) {
			request_error(req, PROTO_E_INTERNAL,
				      "cannot start removing the runs: %s; nothing was removed",
				      strerror(-err));
		}
		goto out;
	}
	if (!a->dry_run) {
		err = store_runs_delete(d->store, go, ngo, a->experiment_rm ? a->experiment : NULL,
					&cause);
		if (err < 0) {
			request_error(req, PROTO_E_INTERNAL, "%s; nothing was removed",
				      cause ? cause : "deleting the runs failed");
			goto out;
		}
		log_info("removed %zu run(s) from the history", ngo);
		/* a bounded step: the rest goes back at the next gc */
		store_vacuum_step(d->store, 2048);
		remove_dirs_later(d, dirs, ndirs);
		dirs = NULL;
		ndirs = 0;
	}
	request_reply(req, res);
	res = NULL;
	goto out;
fail:
	if (set.overflow) {
		request_error(req, PROTO_E_TOO_LARGE,
			      "more than %d runs match; narrow the selection (nothing was removed)",
			      RM_RUNS_MAX);
	} else {
		request_error(req, PROTO_E_INTERNAL, "choosing the runs failed: %s",
			      err == -ENOMEM ? "out of memory" : store_errmsg(d->store));
	}
out:
	for (size_t i = 0; i < ndirs; i++) {
		free(dirs[i]);
	}
	free(dirs);
	free(go);
	free(cause);
	cJSON_Delete(res);
	set_finish(&set);
}

/* The arguments run.rm and experiment.rm share; replies and returns < 0. */
static int rm_common_args(struct request *req, struct rm_args *a)
{
	char *cause = NULL;

	if (msg_arg_bool(req->args, "dry_run", false, &a->dry_run, &cause) < 0 ||
	    msg_arg_bool(req->args, "force", false, &a->force, &cause) < 0) {
		request_arg_error(req, cause);
		return -EINVAL;
	}
	return 0;
}

static void ops_run_rm(struct request *req)
{
	struct rm_args a = {0};
	const cJSON *refs = NULL, *it;
	const char *before = NULL;
	char *cause = NULL;
	enum run_status st;
	cJSON *empty = NULL;

	if (rm_common_args(req, &a) < 0) {
		return;
	}
	if (msg_arg_string(req->args, "experiment", false, &a.experiment, &cause) < 0 ||
	    msg_arg_string(req->args, "status", false, &a.status, &cause) < 0 ||
	    msg_arg_string(req->args, "before", false, &before, &cause) < 0) {
		request_arg_error(req, cause);
		return;
	}
	it = cJSON_GetObjectItemCaseSensitive(req->args, "runs");
	if (it && !cJSON_IsNull(it)) {
		if (!cJSON_IsArray(it)) {
			request_error(req, PROTO_E_INVALID_ARGUMENT,
				      "argument 'runs' must be an array of run ids or numbers");
			return;
		}
		if (cJSON_GetArraySize(it) > RM_REFS_MAX) {
			request_error(req, PROTO_E_TOO_LARGE,
				      "at most %d runs may be named at once (%d given); nothing was "
				      "removed",
				      RM_REFS_MAX, cJSON_GetArraySize(it));
			return;
		}
		const cJSON *r;
		cJSON_ArrayForEach(r, it) {
			if (!cJSON_IsString(r) || !r->valuestring[0] ||
			    strlen(r->valuestring) > 255) {
				request_error(req, PROTO_E_INVALID_ARGUMENT,
					      "argument 'runs' must be an array of run ids or numbers "
					      "(strings)");
				return;
			}
		}
		refs = it;
	}
	if (a.status && run_status_parse(a.status, &st) < 0) {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
			      "unknown status '%s' (one of Completed, Failed, Canceled; active "
			      "runs are never removed)",
			      a.status);
		return;
	}
	if (before && msg_parse_time(before, &a.before) < 0) {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
			      "argument 'before' must be a time such as "
			      "2026-11-28T04:03:03.000000Z, not '%s'",
			      before);
		return;
	}
	if (cJSON_GetObjectItemCaseSensitive(req->args, "parent") &&
	    request_resolve_run_arg(req, "parent", &a.parent) < 0) {
		return;
	}
	if (a.experiment && !a.experiment[0]) {
		request_error(req, PROTO_E_INVALID_ARGUMENT, "argument 'experiment' is empty");
		return;
	}
	if (!refs && !a.experiment && !a.status && !before && !a.parent) {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
			      "which runs? give 'runs', or a selector: experiment, status, before, "
			      "parent");
		return;
	}
	empty = refs ? NULL : cJSON_CreateArray();
	do_rm(req, refs ? refs : empty, &a);
	cJSON_Delete(empty);
}

static void ops_experiment_rm(struct request *req)
{
	struct rm_args a = {.experiment_rm = true};
	char *cause = NULL;
	cJSON *exps = NULL, *empty;
	const cJSON *e;
	bool found = false;

	if (rm_common_args(req, &a) < 0) {
		return;
	}
	if (msg_arg_string(req->args, "name", true, &a.experiment, &cause) < 0) {
		request_arg_error(req, cause);
		return;
	}
	if (store_experiments_json(req->d->store, &exps) == 0) {
		cJSON_ArrayForEach(e, exps) {
			const cJSON *n = cJSON_GetObjectItemCaseSensitive(e, "name");
			found |= cJSON_IsString(n) && strcmp(n->valuestring, a.experiment) == 0;
		}
	}
	cJSON_Delete(exps);
	if (!found) {
		request_error(req, PROTO_E_NOT_FOUND,
			      "no experiment '%s' (see 'runyard experiments')", a.experiment);
		return;
	}
	empty = cJSON_CreateArray();
	do_rm(req, empty, &a);
	cJSON_Delete(empty);
}

/* store.gc and store.du reply when the pool is done. */
static void held_reply_cb(void *ud, int err, const char *cause, cJSON *report)
{
	struct request *req = ud;

	if (err < 0) {
		request_error(req, err == -ETIMEDOUT ? PROTO_E_UNAVAILABLE : PROTO_E_INTERNAL, "%s",
			      cause ? cause : strerror(-err));
		cJSON_Delete(report);
	} else {
		request_reply(req, report);
	}
	request_release(req);
}

static void ops_store_gc(struct request *req)
{
	bool dry_run = false;
	char *cause = NULL;
	struct request *held;
	int err;

	if (msg_arg_bool(req->args, "dry_run", false, &dry_run, &cause) < 0) {
		request_arg_error(req, cause);
		return;
	}
	if (gc_running(req->d)) {
		request_error(req, PROTO_E_CONFLICT, "a collection is already running; wait for it");
		return;
	}
	held = request_hold(req);
	if (!held) {
		request_error(req, PROTO_E_INTERNAL, "out of memory");
		return;
	}
	err = gc_start(req->d, dry_run, held_reply_cb, held);
	if (err < 0) {
		request_release(held);
		request_error(req, err == -EBUSY ? PROTO_E_CONFLICT : PROTO_E_INTERNAL,
			      "cannot start the collection: %s", strerror(-err));
	}
}

static void ops_store_du(struct request *req)
{
	const char *experiment = NULL;
	char *cause = NULL;
	struct request *held;
	int err;

	if (msg_arg_string(req->args, "experiment", false, &experiment, &cause) < 0) {
		request_arg_error(req, cause);
		return;
	}
	held = request_hold(req);
	if (!held) {
		request_error(req, PROTO_E_INTERNAL, "out of memory");
		return;
	}
	err = gc_du(req->d, experiment, held_reply_cb, held);
	if (err < 0) {
		request_release(held);
		request_error(req, PROTO_E_INTERNAL, "cannot measure the store: %s",
			      strerror(-err));
	}
}

const struct op_entry ops_history_entries[] = {
	{"run.rm", ops_run_rm, 0},
	{"experiment.rm", ops_experiment_rm, 0},
	{"store.gc", ops_store_gc, 0},
	{"store.du", ops_store_du, 0},
	{0},
};

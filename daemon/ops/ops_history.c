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
	enum run_status pst;
	bool parent_going = in->parent_seq > 0 &&
			    (sweep_active(d, in->parent_seq) ||
			     (in->parent_status[0] && run_status_parse(in->parent_status, &pst) == 0 &&
			      !run_status_terminal(pst)));
	if (parent_going) {
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

/* What one removal has decided so far, filled by decide_cb run by run. */
struct decide {
	struct daemon *d;
	const struct rm_args *a;
	int64_t *go;
	size_t ngo, cap;
	char **dirs;
	size_t ndirs;
	size_t nskipped;
	int64_t models;
	cJSON *list, *skipped;
	char refused[1024]; /* a named run that may not go: nothing happens */
	int err;
};

static int decide_cb(void *ud, const struct store_rm_info *in)
{
	struct decide *x = ud;
	char why[1024];
	const char *reason = rm_refusal(x->d, in, x->a->force, why, sizeof(why));

	if (reason && in->named) {
		snprintf(x->refused, sizeof(x->refused), "%s", why);
		return 1;
	}
	if (reason) {
		if (x->nskipped++ < RM_LIST_MAX) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "id", in->id);
			cJSON_AddNumberToObject(o, "seq", (double)in->seq);
			cJSON_AddStringToObject(o, "reason", reason);
			cJSON_AddStringToObject(o, "message", why);
			cJSON_AddItemToArray(x->skipped, o);
		}
		return 0;
	}
	if (x->ngo == x->cap) {
		size_t ncap = x->cap ? x->cap * 2 : 256;
		int64_t *ng = realloc(x->go, ncap * sizeof(*ng));
		if (!ng) {
			return x->err = -ENOMEM;
		}
		x->go = ng;
		x->cap = ncap;
	}
	x->models += in->models;
	x->go[x->ngo++] = in->seq;
	if (in->keep_dir) {
		char **nd = realloc(x->dirs, (x->ndirs + 1) * sizeof(*nd));
		if (!nd) {
			return x->err = -ENOMEM;
		}
		x->dirs = nd;
		x->dirs[x->ndirs] = util_path_join(x->d->runs_dir, in->id);
		if (x->dirs[x->ndirs]) {
			x->ndirs++;
		}
	}
	if (x->ngo <= RM_LIST_MAX) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "id", in->id);
		cJSON_AddNumberToObject(o, "seq", (double)in->seq);
		cJSON_AddStringToObject(o, "status", in->status);
		cJSON_AddStringToObject(o, "experiment", in->experiment);
		cJSON_AddStringToObject(o, "kind", in->kind);
		cJSON_AddItemToArray(x->list, o);
	}
	return 0;
}

static void do_rm(struct request *req, const cJSON *refs, const struct rm_args *a)
{
	struct daemon *d = req->d;
	struct decide x = {.d = d, .a = a};
	struct store_rm_estimate est;
	char *cause = NULL;
	cJSON *res = NULL;
	const cJSON *it;
	int64_t n;
	int err = 0;

	/* 1. the choice, in the store: what is named (all of it known, or
	 * nothing happens), what the selectors match, and their children */
	if (store_rm_pick_begin(d->store) < 0) {
		goto fail;
	}
	cJSON_ArrayForEach(it, refs) {
		int64_t seq;
		if (store_run_resolve(d->store, it->valuestring, &seq) < 0) {
			request_error(req, PROTO_E_NOT_FOUND,
				      "no run '%s' (see 'runyard runs'); nothing was removed",
				      it->valuestring);
			goto out;
		}
		if (store_rm_pick_add(d->store, seq, true) < 0) {
			goto fail;
		}
	}
	if (a->experiment || a->status || a->before > 0 || a->parent > 0) {
		struct store_run_select q = {
			.experiment = a->experiment,
			.status = a->status,
			.before = a->before,
			.parent_seq = a->parent,
			.limit = RM_RUNS_MAX + 1,
		};
		if (store_rm_pick_select(d->store, &q) < 0) {
			goto fail;
		}
	}
	if (store_rm_pick_expand(d->store) < 0) {
		goto fail;
	}
	n = store_rm_pick_count(d->store);
	if (n > RM_RUNS_MAX) {
		request_error(req, PROTO_E_TOO_LARGE,
			      "more than %d runs match; narrow the selection (nothing was removed)",
			      RM_RUNS_MAX);
		goto out;
	}
	if (n <= 0 && !a->experiment_rm) {
		request_error(req, PROTO_E_NOT_FOUND, "no runs match; nothing was removed");
		goto out;
	}
	/* 2. what may go: a named run that may not refuses it all */
	res = cJSON_CreateObject();
	x.list = cJSON_AddArrayToObject(res, "runs");
	x.skipped = cJSON_AddArrayToObject(res, "skipped");
	if (!x.list || !x.skipped) {
		err = -ENOMEM;
		goto fail;
	}
	err = store_rm_pick_each(d->store, decide_cb, &x);
	if (x.refused[0]) {
		request_error(req, PROTO_E_CONFLICT, "%s; nothing was removed", x.refused);
		goto out;
	}
	if (err < 0 || x.err < 0) {
		err = x.err < 0 ? x.err : err;
		goto fail;
	}
	/* 3. what it frees, then (unless a dry run) do it */
	err = store_runs_rm_estimate(d->store, x.go, x.ngo, &est);
	if (err < 0) {
		goto fail;
	}
	cJSON_AddBoolToObject(res, "dry_run", a->dry_run);
	cJSON_AddNumberToObject(res, "count", (double)x.ngo);
	cJSON_AddNumberToObject(res, "skipped_count", (double)x.nskipped);
	cJSON_AddNumberToObject(res, "models_unlinked", (double)x.models);
	cJSON *freed = cJSON_AddObjectToObject(res, "frees");
	cJSON_AddNumberToObject(freed, "log_bytes", (double)est.log_bytes);
	cJSON_AddNumberToObject(freed, "metric_points", (double)est.metric_points);
	cJSON_AddNumberToObject(freed, "output_blobs", (double)est.output_blobs);
	cJSON_AddNumberToObject(freed, "output_bytes", (double)est.output_bytes);
	cJSON_AddNumberToObject(freed, "snapshots", (double)est.snapshots);
	cJSON_AddNumberToObject(freed, "bytes", (double)(est.log_bytes + est.output_bytes));
	if (!a->dry_run && x.ngo > RM_STEP) {
		/* many runs: one transaction of RM_STEP runs per turn of the loop */
		err = rm_job_start(req, res, x.go, x.ngo, x.dirs, x.ndirs,
				   a->experiment_rm ? a->experiment : NULL);
		/* taken, even on failure */
		res = NULL;
		x.go = NULL;
		x.dirs = NULL;
		x.ndirs = 0;
		if (err < 0) {
			request_error(req, PROTO_E_INTERNAL,
				      "cannot start removing the runs: %s; nothing was removed",
				      strerror(-err));
		}
		goto out;
	}
	if (!a->dry_run) {
		err = store_runs_delete(d->store, x.go, x.ngo,
					a->experiment_rm ? a->experiment : NULL, &cause);
		if (err < 0) {
			request_error(req, PROTO_E_INTERNAL, "%s; nothing was removed",
				      cause ? cause : "deleting the runs failed");
			goto out;
		}
		log_info("removed %zu run(s) from the history", x.ngo);
		/* a bounded step: the rest goes back at the next gc */
		store_vacuum_step(d->store, 2048);
		remove_dirs_later(d, x.dirs, x.ndirs);
		x.dirs = NULL;
		x.ndirs = 0;
	}
	request_reply(req, res);
	res = NULL;
	goto out;
fail:
	request_error(req, PROTO_E_INTERNAL, "choosing the runs failed: %s",
		      err == -ENOMEM ? "out of memory" : store_errmsg(d->store));
out:
	store_rm_pick_end(d->store);
	for (size_t i = 0; i < x.ndirs; i++) {
		free(x.dirs[i]);
	}
	free(x.dirs);
	free(x.go);
	free(cause);
	cJSON_Delete(res);
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

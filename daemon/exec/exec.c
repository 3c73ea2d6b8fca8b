#include "exec.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "blob.h"
#include "context.h"
#include "envs.h"
#include "inputs.h"
#include "enforce.h"
#include "log.h"
#include "logs.h"
#include "queue.h"
#include "msg.h"
#include "resources.h"
#include "run.h"
#include "snapshot.h"
#include "store.h"
#include "target.h"
#include "tracking.h"
#include "util.h"
#include "walk.h"

extern char **environ;

/* How often a run's files are looked at even without an inotify event, and
 * a supervisor that is not our child is checked for being alive. */
#define POLL_MS 1000

struct job {
	uv_work_t req;
	struct run *r;
	int err;
	char *cause;
	cJSON *artifacts; /* finalize: [{path, size, sha256, mode}] */
	char *path;       /* remove: the directory */
	/* finalize: the blob store's hold until the artifacts are recorded */
	struct blobstore *bs;
	uint64_t hold;
};

static void start_running(struct run *r);
static void finalize(struct run *r);

static struct job *job_new(struct run *r)
{
	struct job *j = calloc(1, sizeof(*j));

	if (j) {
		j->r = r;
		j->req.data = j;
		if (r) {
			r->busy = true;
		}
	}
	return j;
}

static void job_free(struct job *j)
{
	blob_release(j->bs, j->hold);
	free(j->cause);
	free(j->path);
	cJSON_Delete(j->artifacts);
	free(j);
}

/* After a job: is the run still ours to carry on? (the daemon may be
 * stopping, or the run may have ended meanwhile). */
static bool job_done(struct job *j)
{
	struct run *r = j->r;

	r->busy = false;
	if (r->ended || r->d->stopping) {
		run_release(r);
		return false;
	}
	return true;
}

/* Preparing */

static void prepare_work(uv_work_t *req)
{
	struct job *j = req->data;
	struct run *r = j->r;
	char *p = NULL;
	int err;

	/* A previous attempt (daemon killed while preparing) may have left
	 * a half-made directory: start clean. */
	util_rm_rf(r->dir);
	err = util_mkdir_p(r->workdir, 0700);
	if (err < 0) {
		j->cause = msg_strdupf("cannot create the run directory %s: %s", r->workdir,
				       strerror(-err));
		goto out;
	}
	err = snapshot_materialise(r->d->blobs, r->snapshot, r->workdir, &j->cause);
	if (err < 0) {
		goto out;
	}
	const char *dirs[] = {"outputs", "logs"};
	for (size_t i = 0; i < 2; i++) {
		p = util_path_join(r->workdir, dirs[i]);
		if (!p) {
			err = -ENOMEM;
			goto out;
		}
		if (mkdir(p, 0755) < 0 && errno != EEXIST) {
			err = -errno;
			j->cause = msg_strdupf("cannot create %s: %s", p, strerror(errno));
			goto out;
		}
		free(p);
		p = NULL;
	}
	if (r->keep) {
		/* Tells the start-up sweep this directory is wanted. */
		p = util_path_join(r->dir, "keep");
		if (p) {
			close(open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
		}
	}
out:
	free(p);
	j->err = err;
}

static void prepared(struct run *r)
{
	/* Scaling: on the local target the slot taken when the run left the
	 * queue is its capacity, so this stage is only a step through. */
	if (r->status == RUN_PREPARING && run_transition(r, RUN_SCALING) < 0) {
		return;
	}
	start_running(r);
}

/* The run's inputs (inputs.c) once its environment is ready. */
static void inputs_ready_cb(struct run *r, int err, const char *cause)
{
	if (r->ended || r->d->stopping) {
		run_release(r);
		return;
	}
	if (r->status == RUN_CANCEL_REQUESTED) {
		run_transition(r, RUN_CANCELED);
		return;
	}
	if (err < 0) {
		run_fail(r, "PreparationFailed", "%s", cause ? cause : strerror(-err));
		return;
	}
	prepared(r);
}

static void prepare_inputs(struct run *r)
{
	char *cause = NULL;
	int err = inputs_prepare(r, inputs_ready_cb, &cause);

	if (err < 0) {
		run_fail(r, "PreparationFailed", "%s", cause ? cause : strerror(-err));
	} else if (err == 0) {
		prepared(r);
	}
	free(cause);
}

static void env_ready_cb(struct run *r, int err, const char *cause)
{
	if (r->ended || r->d->stopping) {
		run_release(r);
		return;
	}
	if (err < 0) {
		run_fail(r, "PreparationFailed", "%s", cause ? cause : strerror(-err));
		return;
	}
	if (r->status == RUN_CANCEL_REQUESTED) {
		run_transition(r, RUN_CANCELED);
		return;
	}
	prepare_inputs(r);
}

static void prepare_done(uv_work_t *req, int status)
{
	struct job *j = req->data;
	struct run *r = j->r;

	if (!job_done(j)) {
		goto out;
	}
	if (j->err < 0) {
		run_fail(r, "PreparationFailed", "%s",
			 j->cause ? j->cause : strerror(-j->err));
		goto out;
	}
	if (r->status == RUN_CANCEL_REQUESTED) {
		run_transition(r, RUN_CANCELED);
		goto out;
	}
	/* The run's environment (envs.c): built once per definition, the
	 * runs that need it wait here. */
	int err = envs_prepare(r, env_ready_cb, &j->cause);
	if (err < 0) {
		run_fail(r, "PreparationFailed", "%s",
			 j->cause ? j->cause : strerror(-err));
		goto out;
	}
	if (err == 0) {
		prepare_inputs(r);
	}
out:
	job_free(j);
}

void exec_prepare(struct run *r)
{
	struct job *j;
	int err;

	if (r->status == RUN_QUEUED && run_transition(r, RUN_PREPARING) < 0) {
		run_fail(r, "PreparationFailed", "the store refused the status change");
		return;
	}
	j = job_new(r);
	if (!j) {
		run_fail(r, "PreparationFailed", "out of memory");
		return;
	}
	err = uv_queue_work(r->d->loop, &j->req, prepare_work, prepare_done);
	if (err < 0) {
		r->busy = false;
		job_free(j);
		run_fail(r, "PreparationFailed", "cannot queue the preparation: %s",
			 uv_strerror(err));
	}
}

/* Watching a running run */

/* The driver's handles on a run whose directory it watches (r->exec),
 * apart from struct run so that nothing else reaches for them. */
struct exec_run {
	struct run *r;
	uv_fs_event_t fsev;
	uv_timer_t poll;
	uv_timer_t ingest_later; /* more of output.log is waiting */
	int open;                /* handles not closed yet */
	bool closing;
	/* The run's end waits: its Finalizing, its last lines or its terminal
	 * status could not be stored (a full disk); tried again at each poll.
	 * end_dir: the directory to remove once it has ended. */
	enum { HOLD_NONE, HOLD_FINALIZE, HOLD_END } hold;
	bool hold_warned;
	char *end_dir;
	char *err_code, *err_msg; /* an error to record first, when it could not be */
};

static void handle_close_cb(uv_handle_t *h)
{
	struct exec_run *x = h->data;
	struct run *r = x->r;

	r->handles--;
	if (--x->open == 0) {
		if (r->exec == x) {
			r->exec = NULL;
		}
		free(x->end_dir);
		free(x->err_code);
		free(x->err_msg);
		free(x);
	}
	run_release(r);
}

static bool attached(const struct run *r)
{
	return r->exec && !r->exec->closing;
}

static void ingest_later_cb(uv_timer_t *t);

/* Store what output.log has; ingest reads a bounded amount per call, and
 * says when more is waiting, to be read after the loop has served
 * everyone else. */
static void ingest(struct run *r, bool final)
{
	if (logs_ingest(r, final) == 1 && attached(r)) {
		uv_timer_start(&r->exec->ingest_later, ingest_later_cb, 0, 0);
	}
}

static void ingest_later_cb(uv_timer_t *t)
{
	struct exec_run *x = t->data;

	ingest(x->r, false);
}

static void check_exit(struct run *r);
static void lost(struct run *r);
static void end_or_hold(struct run *r, char *dir, bool again);
static void finish_limits(struct run *r, const struct enforce_sup *sup, struct enforce_end *ret);

/* A run a cluster target holds in Scaling is Running once its supervisor
 * runs: supervisor.json says so before the target's own poll can. */
static void started_if_supervised(struct run *r)
{
	char *p;

	if (r->status != RUN_SCALING) {
		return;
	}
	p = util_path_join(r->dir, "supervisor.json");
	if (p && access(p, F_OK) == 0) {
		exec_started(r);
	}
	free(p);
}

void exec_started(struct run *r)
{
	if (r->status == RUN_SCALING && !r->ended) {
		run_transition(r, RUN_RUNNING);
	}
}

static void fsev_cb(uv_fs_event_t *h, const char *filename, int events, int status)
{
	struct exec_run *x = h->data;
	struct run *r = x->r;

	if (r->exited) {
		return;
	}
	if (!filename || strcmp(filename, "supervisor.json") == 0) {
		started_if_supervised(r);
	}
	if (!filename || strcmp(filename, "output.log") == 0) {
		ingest(r, false);
	}
	if (!filename || strcmp(filename, TRACKING_FILE) == 0) {
		tracking_ingest(r, false);
	}
	if (!filename || strcmp(filename, "exit.json") == 0) {
		check_exit(r);
	}
}

static void poll_cb(uv_timer_t *t)
{
	struct exec_run *x = t->data;
	struct run *r = x->r;

	if (x->hold != HOLD_NONE) {
		char *dir = x->end_dir;
		bool end = x->hold == HOLD_END;
		x->end_dir = NULL;
		x->hold = HOLD_NONE;
		if (end) {
			end_or_hold(r, dir, true);
		} else {
			finalize(r);
		}
		return;
	}
	if (r->exited) {
		return;
	}
	started_if_supervised(r);
	ingest(r, false);
	tracking_ingest(r, false);
	check_exit(r);
	if (!r->exited && !target_ops_of(r)->alive(r)) {
		/* Gone without a word: killed, most likely. */
		check_exit(r);
		if (!r->exited) {
			lost(r);
		}
	}
}

static void remove_dir_later(struct daemon *d, char *dir);

/* The supervisor is gone and left no exit.json: the target says how the
 * run ended. A run whose supervisor never ran (a cluster job that ended
 * while it waited for nodes) ends from the stage it is in. */
static void lost(struct run *r)
{
	struct target_verdict v = {.outcome = RUN_FAILED};
	struct daemon *d = r->d;
	struct enforce_end lim;
	char *sup = util_path_join(r->dir, "supervisor.json");
	bool ran = r->status == RUN_RUNNING || (sup && access(sup, F_OK) == 0);

	free(sup);
	target_ops_of(r)->lost(r, &v);
	r->exited = true;
	finish_limits(r, NULL, &lim);
	ingest(r, true);
	tracking_ingest(r, true);
	if (!ran && r->status != RUN_FINALIZING) {
		char *dir = r->keep ? NULL : strdup(r->dir);
		if (v.outcome == RUN_CANCELED) {
			if (r->status == RUN_SCALING) {
				run_transition(r, RUN_CANCEL_REQUESTED);
			}
			run_transition(r, RUN_CANCELED);
		} else {
			run_fail(r, v.code ? v.code : "ExecutionFailed", "%s",
				 v.message ? v.message : "the run's job ended before it started");
		}
		remove_dir_later(d, dir);
		free(v.message);
		return;
	}
	if (v.outcome == RUN_FAILED) {
		store_run_set_error(d->store, r->seq, v.code ? v.code : "ExecutionFailed",
				    v.message ? v.message : "the run's supervisor vanished",
				    "Running");
		r->attempt_lost = true;
	}
	r->outcome = v.outcome;
	free(v.message);
	exec_started(r);
	finalize(r);
}

static int attach(struct run *r)
{
	uv_loop_t *loop = r->d->loop;
	struct exec_run *x;

	if (attached(r)) {
		return 0;
	}
	/* A watch still closing (a previous attempt's) frees itself; its
	 * close callback leaves r->exec alone once it names the new one. */
	x = calloc(1, sizeof(*x));
	if (!x) {
		/* Not watched: a restart of the daemon finds it again. */
		log_error("run %s: out of memory watching its directory", r->id);
		return -ENOMEM;
	}
	x->r = r;
	r->exec = x;
	uv_timer_init(loop, &x->poll);
	x->poll.data = x;
	uv_timer_start(&x->poll, poll_cb, POLL_MS, POLL_MS);
	uv_timer_init(loop, &x->ingest_later);
	x->ingest_later.data = x;
	uv_fs_event_init(loop, &x->fsev);
	x->fsev.data = x;
	x->open = 3;
	r->handles += 3;
	int err = uv_fs_event_start(&x->fsev, fsev_cb, r->dir, 0);
	if (err < 0) {
		/* The poll timer still sees everything, only later. */
		log_warn("run %s: cannot watch %s (%s); polling it instead", r->id, r->dir,
			 uv_strerror(err));
	}
	return 0;
}

void exec_detach(struct run *r)
{
	if (target_ops_of(r)->detach) {
		target_ops_of(r)->detach(r);
	}
	if (attached(r)) {
		struct exec_run *x = r->exec;
		x->closing = true;
		uv_close((uv_handle_t *)&x->poll, handle_close_cb);
		uv_close((uv_handle_t *)&x->ingest_later, handle_close_cb);
		uv_close((uv_handle_t *)&x->fsev, handle_close_cb);
	}
}

void exec_run_event(void *ud, struct run *r, enum run_event ev)
{
	/* A requeued run lets go of its attempt's process and directory
	 * watch; the next attempt attaches anew once it starts. */
	if (ev == RUN_EV_ENDED || ev == RUN_EV_REQUEUED) {
		exec_detach(r);
	}
}

/* Output the supervisor could not write to output.log (a full disk). */
struct output_loss {
	uint64_t records, bytes;
};

/* Read exit.json if it is there; -ENOENT if not yet. */
static int read_exit(struct run *r, struct store_exit *e, bool *timed_out, bool *canceled,
		     bool *exec_failed, struct enforce_sup *mem, struct output_loss *lost)
{
	char *path = util_path_join(r->dir, "exit.json"), *text = NULL;
	cJSON *j = NULL;
	int err;

	if (!path) {
		return -ENOMEM;
	}
	err = util_read_file(path, 64 * 1024, &text, NULL);
	if (err < 0) {
		goto out;
	}
	j = cJSON_Parse(text);
	if (!cJSON_IsObject(j)) {
		err = -EBADMSG;
		goto out;
	}
	const cJSON *code = cJSON_GetObjectItem(j, "exit_code");
	const cJSON *sig = cJSON_GetObjectItem(j, "signal");
	memset(e, 0, sizeof(*e));
	e->has_exit_code = cJSON_IsNumber(code);
	e->exit_code = e->has_exit_code ? code->valueint : 0;
	e->signal = cJSON_IsNumber(sig) ? sig->valueint : 0;
	e->utime = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "utime"));
	e->stime = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "stime"));
	e->maxrss_kb = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "maxrss_kb"));
	if (e->utime != e->utime) {
		e->utime = 0;
	}
	if (e->stime != e->stime) {
		e->stime = 0;
	}
	if (e->maxrss_kb < 0) {
		e->maxrss_kb = 0;
	}
	*timed_out = cJSON_IsTrue(cJSON_GetObjectItem(j, "timed_out"));
	*canceled = cJSON_IsTrue(cJSON_GetObjectItem(j, "canceled"));
	*exec_failed = cJSON_IsTrue(cJSON_GetObjectItem(j, "exec_failed"));
	/* Only with --mem-limit (the poll tier): whether it killed the run
	 * for memory, and the group's peak. */
	const cJSON *peak = cJSON_GetObjectItem(j, "peak_rss_kb");
	mem->oom = cJSON_IsTrue(cJSON_GetObjectItem(j, "oom"));
	mem->peak_kb = cJSON_IsNumber(peak) ? (int64_t)peak->valuedouble : e->maxrss_kb;
	mem->failed = e->signal > 0 || (e->has_exit_code && e->exit_code != 0);
	double dropped = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "output_dropped"));
	double dropped_bytes = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "output_dropped_bytes"));
	lost->records = dropped > 0 ? (uint64_t)dropped : 0;
	lost->bytes = dropped_bytes > 0 ? (uint64_t)dropped_bytes : 0;
out:
	cJSON_Delete(j);
	free(text);
	free(path);
	return err;
}

/* Limits apply to runs on this machine only: a cluster's scheduler
 * enforces its own. */
static bool local_run(const struct run *r)
{
	return strcmp(target_of(r)->name, TARGET_LOCAL) == 0;
}

/* The run's process is gone: read back its limits (enforce.c), record the
 * tier and the peak, and let go of its cgroups. sup NULL: no exit.json. */
static void finish_limits(struct run *r, const struct enforce_sup *sup, struct enforce_end *ret)
{
	*ret = (struct enforce_end){.peak_mem = -1};
	if (!local_run(r)) {
		return;
	}
	enforce_finish(r, sup, ret);
	if (ret->tier) {
		store_run_set_limits(r->d->store, r->seq, ret->tier, ret->mem, ret->peak_mem);
	}
}

/* The process has ended (exit.json is there): decide the outcome, record
 * it, and go on to Finalizing. Safe to call again after a restart. */
static void check_exit(struct run *r)
{
	struct daemon *d = r->d;
	struct store_exit e;
	bool timed_out = false, canceled = false, exec_failed = false;
	char *msg = NULL;
	const char *code = NULL;
	struct target_verdict v = {0};
	struct enforce_sup mem = {.peak_kb = -1};
	struct output_loss lost = {0, 0};
	struct enforce_end lim;
	int err, verdict = 0;

	if (r->exited) {
		return;
	}
	err = read_exit(r, &e, &timed_out, &canceled, &exec_failed, &mem, &lost);
	if (err == -ENOENT) {
		return;
	}
	if (err == 0 && r->status != RUN_CANCEL_REQUESTED && target_ops_of(r)->judge) {
		/* A cancel we did not ask for, or a kill: the target may know
		 * why (a cluster's time limit, out of memory, a failed node). */
		verdict = target_ops_of(r)->judge(r, &e, canceled, &v);
		if (verdict == -EAGAIN) {
			return;
		}
	}
	r->exited = true;
	exec_started(r);
	ingest(r, true);
	tracking_ingest(r, true);
	finish_limits(r, err == 0 ? &mem : NULL, &lim);
	if (err < 0) {
		code = "ExecutionFailed";
		msg = msg_strdupf("the supervisor's exit.json cannot be read: %s", strerror(-err));
		r->outcome = RUN_FAILED;
		goto record;
	}
	store_run_set_exit(d->store, r->seq, &e);
	if (verdict > 0) {
		r->outcome = v.outcome;
		code = v.outcome == RUN_FAILED ? v.code : NULL;
		msg = v.message;
		v.message = NULL;
	} else if (r->status == RUN_CANCEL_REQUESTED || canceled) {
		r->outcome = RUN_CANCELED;
	} else if (lim.oom) {
		r->outcome = RUN_FAILED;
		code = "OutOfMemory";
		msg = enforce_oom_message(&lim, "the run");
	} else if (timed_out) {
		r->outcome = RUN_FAILED;
		code = "Timeout";
		msg = msg_strdupf("the run exceeded its timeout of %g seconds and was stopped",
				  r->timeout);
	} else if (exec_failed) {
		r->outcome = RUN_FAILED;
		code = "ExecutionFailed";
		msg = msg_strdupf("the program could not be started (see the run's stderr)");
	} else if (lost.records > 0) {
		/* Ended well or not, it cannot end as if its log were whole. */
		r->outcome = RUN_FAILED;
		code = "NoSpace";
		msg = msg_strdupf("%" PRIu64 " lines (%" PRIu64 " bytes) of the run's output could "
				  "not be stored: the file system of the state directory was full%s",
				  lost.records, lost.bytes,
				  e.signal > 0 || (e.has_exit_code && e.exit_code != 0)
				      ? "; the program also failed (see its exit code)"
				      : "");
	} else if (e.signal > 0) {
		r->outcome = RUN_FAILED;
		code = "UserError";
		msg = msg_strdupf("the process was killed by signal %d (%s)", e.signal,
				  strsignal(e.signal));
	} else if (e.has_exit_code && e.exit_code != 0) {
		r->outcome = RUN_FAILED;
		code = "UserError";
		msg = msg_strdupf("the process exited with code %d", e.exit_code);
	} else {
		r->outcome = RUN_COMPLETED;
	}
record:
	if (code) {
		if (store_run_set_error(d->store, r->seq, code, msg ? msg : code, "Running") < 0 &&
		    attached(r)) {
			/* The run must not end without its reason: kept to be
			 * recorded before it ends (end_or_hold). */
			free(r->exec->err_code);
			free(r->exec->err_msg);
			r->exec->err_code = strdup(code);
			r->exec->err_msg = strdup(msg ? msg : code);
			if (!r->exec->err_code || !r->exec->err_msg) {
				free(r->exec->err_code);
				free(r->exec->err_msg);
				r->exec->err_code = r->exec->err_msg = NULL;
			}
		}
		log_info("run %s: %s: %s", r->id, code, msg ? msg : "");
	}
	free(msg);
	free(v.message);
	finalize(r);
}

void exec_supervisor_ended(struct run *r)
{
	if (r->exited || r->d->stopping || r->ended) {
		return;
	}
	check_exit(r);
	if (!r->exited) {
		char *path = util_path_join(r->dir, "supervisor.err"), *text = NULL;
		struct enforce_end lim;
		if (path) {
			util_read_file(path, 4096, &text, NULL);
		}
		r->exited = true;
		finish_limits(r, NULL, &lim);
		ingest(r, true);
		tracking_ingest(r, true);
		if (r->status == RUN_CANCEL_REQUESTED) {
			/* The cancel's SIGTERM can land between the fork and the
			 * supervisor's first instruction, where it still has the
			 * default action: the supervisor dies before there is a
			 * program to stop, which is what the cancel asked for. */
			r->outcome = RUN_CANCELED;
		} else {
			store_run_set_error(r->d->store, r->seq, "ExecutionFailed",
					    text && *text ? text
							  : "the run's supervisor ended without "
							    "recording how the process ended",
					    "Running");
			r->outcome = RUN_FAILED;
			r->attempt_lost = true;
		}
		free(text);
		free(path);
		finalize(r);
	}
}

/* The environment of the run: the daemon's, the run's --env on top, then
 * runyard's own variables, which a run cannot override. */
static char **build_env(struct run *r)
{
	struct daemon *d = r->d;
	size_t n = 0, cap;
	char **env;
	const cJSON *kv;

	while (environ[n]) {
		n++;
	}
	cap = n + (size_t)cJSON_GetArraySize(r->env) + 13 + inputs_env_count(r);
	env = calloc(cap, sizeof(char *));
	if (!env) {
		return NULL;
	}
	n = 0;
	static const char *const ours[] = {"RUNYARD_RUN_ID=",   "RUNYARD_EXPERIMENT=",
					   "RUNYARD_SOCKET=",   "PYTHONUNBUFFERED=",
					   "RUNYARD_RUN_TOKEN=", "RUNYARD_TRACKING_FILE=",
					   "PYTHONPATH=", "CUDA_VISIBLE_DEVICES=",
					   "CUDA_DEVICE_ORDER="};
	for (char **e = environ; *e; e++) {
		bool skip = false;
		for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]) && !skip; i++) {
			skip = strncmp(*e, ours[i], strlen(ours[i])) == 0;
		}
		cJSON_ArrayForEach(kv, r->env) {
			size_t kl = strlen(kv->string);
			if (strncmp(*e, kv->string, kl) == 0 && (*e)[kl] == '=') {
				skip = true;
			}
		}
		if (!skip) {
			env[n++] = strdup(*e);
		}
	}
	cJSON_ArrayForEach(kv, r->env) {
		/* PYTHONPATH comes below, after runyard's own modules. */
		if (cJSON_IsString(kv) && strcmp(kv->string, "PYTHONPATH") != 0) {
			env[n++] = msg_strdupf("%s=%s", kv->string, kv->valuestring);
		}
	}
	env[n++] = msg_strdupf("RUNYARD_RUN_ID=%s", r->id);
	env[n++] = msg_strdupf("RUNYARD_EXPERIMENT=%s", r->experiment);
	env[n++] = msg_strdupf("RUNYARD_SOCKET=%s", d->socket_path);
	env[n++] = strdup("PYTHONUNBUFFERED=1");
	if (r->holds_resources && d->pool && d->pool->ngpus > 0) {
		/* Its own devices, by UUID so the numbering cannot differ; none
		 * for a run that asked for none, which would otherwise take GPU 0. */
		char list[RES_GPUS_MAX * RES_UUID_MAX];
		res_gpu_list(d->pool, &r->grant, list, sizeof(list));
		env[n++] = msg_strdupf("CUDA_VISIBLE_DEVICES=%s", list);
		env[n++] = strdup("CUDA_DEVICE_ORDER=PCI_BUS_ID");
	}
	if (tracking_env_add(r, env, &n) < 0) {
		env[n++] = NULL; /* freed below like a failed strdup */
	}
	if (inputs_env_add(r, env, &n) < 0) {
		env[n++] = NULL;
	}
	env[n] = NULL;
	for (size_t i = 0; i < n; i++) {
		if (!env[i]) {
			for (size_t k = 0; k < n; k++) {
				free(env[k]);
			}
			free(env);
			return NULL;
		}
	}
	return env;
}

static void free_strv(char **v)
{
	if (v) {
		for (char **p = v; *p; p++) {
			free(*p);
		}
		free(v);
	}
}

/* Scaling → Running: hand the process to a new supervisor. */
static void start_running(struct run *r)
{
	struct daemon *d = r->d;
	char **args = NULL, **env = NULL, *cause = NULL;
	char timeout[32], grace[32];
	size_t n = 0, argc = (size_t)cJSON_GetArraySize(r->argv);
	/* mounted inputs: --ro-bind SRC DST (inputs.c) */
	char **binds = inputs_supervisor_args(r);
	/* memory and CPU limits: --cgroup DIR, --mem-limit, --cpus-list (enforce.c) */
	char **lims = NULL;
	const char *tier = NULL;
	size_t nbinds = 0, nlims = 0;
	bool started = false;
	const cJSON *a;
	int err;

	while (binds && binds[nbinds]) {
		nbinds++;
	}
	if (local_run(r) && enforce_args(r, &lims, &tier) < 0) {
		run_fail(r, "ExecutionFailed", "out of memory");
		goto out;
	}
	while (lims && lims[nlims]) {
		nlims++;
	}
	if (tier) {
		store_run_set_limits(d->store, r->seq, tier, r->req.mem, -1);
	}
	args = calloc(argc + 10 + nbinds + nlims, sizeof(char *));
	env = build_env(r);
	if (!args || !env || !binds) {
		run_fail(r, "ExecutionFailed", "out of memory");
		goto out;
	}
	snprintf(timeout, sizeof(timeout), "%.3f", r->timeout > 0 ? r->timeout : 0.0);
	snprintf(grace, sizeof(grace), "%.3f", d->grace);
	args[n++] = d->supervisor_path;
	args[n++] = "--dir";
	args[n++] = r->dir;
	args[n++] = "--timeout";
	args[n++] = timeout;
	args[n++] = "--grace";
	args[n++] = grace;
	for (size_t i = 0; i < nbinds; i++) {
		args[n++] = binds[i];
	}
	for (size_t i = 0; i < nlims; i++) {
		args[n++] = lims[i];
	}
	args[n++] = "--";
	cJSON_ArrayForEach(a, r->argv) {
		args[n++] = a->valuestring;
	}
	args[n] = NULL;

	if (attach(r) < 0) {
		run_fail(r, "ExecutionFailed", "out of memory");
		goto out;
	}
	err = target_ops_of(r)->start(r, args, env, &cause);
	if (err < 0) {
		run_fail(r, "ExecutionFailed", "%s", cause ? cause : strerror(-err));
	} else {
		started = true;
	}
	free(cause);
out:
	if (tier && !started) {
		/* Its cgroups and CPUs go back; the run has failed already. */
		struct enforce_end lim;
		finish_limits(r, NULL, &lim);
	}
	free(args);
	free_strv(env);
	free_strv(binds);
	free_strv(lims);
}

/* Finalizing */

struct collect_ctx {
	struct blob_batch *batch;
	cJSON *arts;
	const char *prefix;
	char *cause;
};

static int collect_visit(void *ud, const struct walk_entry *e)
{
	struct collect_ctx *c = ud;
	char hex[65];
	uint64_t size;
	int err;

	if (e->kind != WALK_FILE) {
		/* Symlinks are not followed out of the run directory. */
		return 0;
	}
	/* O_NOFOLLOW: the run could swap the file for a link after the walk. */
	int fd = util_open_regular(e->dirfd, e->name, O_NOFOLLOW);
	err = fd < 0 ? fd : blob_batch_put_fd(c->batch, fd, hex, &size);
	if (fd >= 0) {
		close(fd);
	}
	if (err < 0) {
		c->cause = msg_strdupf("cannot store %s/%s: %s", c->prefix, e->path, strerror(-err));
		return err;
	}
	cJSON *a = cJSON_CreateObject();
	char *path = msg_strdupf("%s/%s", c->prefix, e->path);
	cJSON_AddStringToObject(a, "path", path ? path : e->path);
	free(path);
	cJSON_AddNumberToObject(a, "size", (double)size);
	cJSON_AddStringToObject(a, "sha256", hex);
	cJSON_AddNumberToObject(a, "mode", e->st->st_mode & 07777);
	cJSON_AddItemToArray(c->arts, a);
	return 0;
}

static void finalize_work(uv_work_t *req)
{
	struct job *j = req->data;
	struct run *r = j->r;
	static const char *const dirs[] = {"outputs", "logs"};
	const struct walk_ops ops = {.visit = collect_visit};
	struct blob_batch *batch = NULL;

	j->artifacts = cJSON_CreateArray();
	/* One durability barrier for all of a run's outputs, not one per file. */
	j->err = blob_batch_create(r->d->blobs, &batch);
	if (j->err < 0) {
		return;
	}
	for (size_t i = 0; i < 2; i++) {
		struct collect_ctx c = {.batch = batch, .arts = j->artifacts, .prefix = dirs[i]};
		char *root = util_path_join(r->workdir, dirs[i]);
		struct stat st;
		if (!root) {
			j->err = -ENOMEM;
			goto out;
		}
		/* The run may have removed or replaced the directory. */
		if (lstat(root, &st) == 0 && S_ISDIR(st.st_mode)) {
			char *cause = NULL;
			int err = walk_tree(root, &ops, &c, &cause);
			if (err < 0) {
				j->err = err;
				j->cause = c.cause ? c.cause : cause;
				if (c.cause) {
					free(cause);
				}
				free(root);
				goto out;
			}
			free(cause);
		}
		free(root);
	}
	j->err = blob_batch_commit(batch);
	if (j->err < 0) {
		j->cause = msg_strdupf("storing the outputs failed: %s", strerror(-j->err));
	}
out:
	blob_batch_destroy(batch);
}

static void remove_work(uv_work_t *req)
{
	struct job *j = req->data;

	util_rm_rf(j->path);
}

static void remove_done(uv_work_t *req, int status)
{
	job_free(req->data);
}

/* The run has ended: its directory (taken over; NULL: none) goes in the
 * background. If the daemon dies first, the start-up sweep removes it. */
static void remove_dir_later(struct daemon *d, char *dir)
{
	struct job *rm;

	if (!dir) {
		return;
	}
	rm = job_new(NULL);
	if (!rm) {
		free(dir);
		return;
	}
	rm->path = dir;
	if (uv_queue_work(d->loop, &rm->req, remove_work, remove_done) < 0) {
		job_free(rm);
	}
}

static void finalize_done(uv_work_t *req, int status)
{
	struct job *j = req->data;
	struct run *r = j->r;
	struct daemon *d = r->d;
	const cJSON *a;

	if (!job_done(j)) {
		goto out;
	}
	if (j->err < 0) {
		run_fail(r, "FinalizationFailed", "%s", j->cause ? j->cause : strerror(-j->err));
		goto out;
	}
	if (store_begin(d->store) == 0) {
		cJSON_ArrayForEach(a, j->artifacts) {
			store_artifact_put(
				d->store, r->seq, cJSON_GetObjectItem(a, "path")->valuestring,
				(int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(a, "size")),
				cJSON_GetObjectItem(a, "sha256")->valuestring,
				(int)cJSON_GetNumberValue(cJSON_GetObjectItem(a, "mode")));
		}
		if (store_commit(d->store) < 0) {
			store_rollback(d->store);
			run_fail(r, "FinalizationFailed", "recording the outputs failed: %s",
				 store_errmsg(d->store));
			goto out;
		}
	}
	end_or_hold(r, r->keep ? NULL : strdup(r->dir), false);
out:
	job_free(j);
}

/* Try again at the next poll (struct exec_run's hold); dir is taken. */
static void hold(struct run *r, int what, char *dir)
{
	struct exec_run *x = r->exec;

	if (!attached(r)) {
		/* No poll to try again: a restart of the daemon finishes it. */
		free(dir);
		return;
	}
	if (!x->hold_warned) {
		x->hold_warned = true;
		log_warn("run %s: its end waits until the store can take the rest of it: %s", r->id,
			 store_errmsg(r->d->store));
	}
	x->hold = what;
	free(x->end_dir);
	x->end_dir = dir;
}

/* Whether every byte of output.log is stored. */
static bool logs_caught_up(struct run *r)
{
	char *path = util_path_join(r->dir, "output.log");
	struct stat st;
	bool all = !path || stat(path, &st) < 0 || st.st_size <= r->log_offset;

	free(path);
	return all;
}

/* End the run with its outcome, and then remove dir (taken). A run whose
 * last lines or terminal status the store cannot take now (SQLITE_FULL) is
 * held in Finalizing, its directory and output.log kept, and tried again
 * at each poll: once there is room it ends with nothing lost. */
static void end_or_hold(struct run *r, char *dir, bool again)
{
	struct exec_run *x = r->exec;

	/* The process's end ingested both files; the log is read again if it
	 * is behind (a long one goes in steps), the tracking file only when
	 * trying again after the store refused. */
	if (again || !logs_caught_up(r)) {
		ingest(r, true);
	}
	if (again) {
		tracking_ingest(r, true);
	}
	if (attached(r) && x->err_code) {
		if (store_run_set_error(r->d->store, r->seq, x->err_code, x->err_msg, "Running") < 0) {
			hold(r, HOLD_END, dir);
			return;
		}
		free(x->err_code);
		free(x->err_msg);
		x->err_code = x->err_msg = NULL;
	}
	if (logs_caught_up(r) && run_transition(r, r->outcome) == 0) {
		remove_dir_later(r->d, dir);
		return;
	}
	hold(r, HOLD_END, dir);
}

static void finalize_collect(struct run *r);

/* Outputs declared for datastores (inputs.c) have been uploaded. */
static void uploaded_cb(struct run *r, int err, const char *cause)
{
	if (r->ended || r->d->stopping) {
		run_release(r);
		return;
	}
	if (err < 0) {
		run_fail(r, "FinalizationFailed", "%s", cause ? cause : strerror(-err));
		return;
	}
	finalize_collect(r);
}

/* Whether the attempt that has just ended Failed is to be tried again
 * (--retries, --retry-on; docs/scheduling.md, "Retries"). */
static bool retry_wanted(struct run *r)
{
	char code[64];
	unsigned kind;

	if (r->outcome != RUN_FAILED || r->attempt > r->retries || r->d->stopping ||
	    r->status == RUN_CANCEL_REQUESTED) {
		return false;
	}
	if (r->attempt_lost) {
		kind = RUN_RETRY_RESTART;
	} else if (store_run_error_code(r->d->store, r->seq, code, sizeof(code)) < 0) {
		return false;
	} else {
		kind = strcmp(code, "OutOfMemory") == 0 ? RUN_RETRY_OOM : RUN_RETRY_FAIL;
	}
	return (r->retry_on & kind) != 0;
}

static void finalize(struct run *r)
{
	int err;

	/* A failed attempt that is retried keeps its lines and its record,
	 * not its outputs: the run's outputs are those of the attempt that
	 * ends it. */
	if (retry_wanted(r) && run_requeue(r) == 0) {
		return;
	}
	if (r->status != RUN_FINALIZING && run_transition(r, RUN_FINALIZING) < 0) {
		hold(r, HOLD_FINALIZE, NULL);
		return;
	}
	err = inputs_finalize(r, uploaded_cb);
	if (err < 0) {
		run_fail(r, "FinalizationFailed", "cannot upload the outputs: %s", strerror(-err));
	} else if (err == 0) {
		finalize_collect(r);
	}
}

/* Store ./outputs and ./logs. */
static void finalize_collect(struct run *r)
{
	struct job *j;
	int err;

	j = job_new(r);
	if (!j) {
		run_fail(r, "FinalizationFailed", "out of memory");
		return;
	}
	j->bs = r->d->blobs;
	j->hold = blob_hold(j->bs);
	err = uv_queue_work(r->d->loop, &j->req, finalize_work, finalize_done);
	if (err < 0) {
		r->busy = false;
		job_free(j);
		run_fail(r, "FinalizationFailed", "cannot queue finalization: %s",
			 uv_strerror(err));
	}
}

/* Cancel */

int exec_cancel(struct run *r)
{
	switch (r->status) {
	case RUN_QUEUED:
		return run_transition(r, RUN_CANCELED);
	case RUN_PREPARING:
	case RUN_SCALING:
	case RUN_RUNNING: {
		int err = run_transition(r, RUN_CANCEL_REQUESTED);
		if (err < 0) {
			return err;
		}
		/* Downloads of its inputs stop now (inputs.c). */
		inputs_cancel(r);
		/* A run being prepared: the preparation job sees this when it
		 * is done. A run handed to its target (a cluster job waiting
		 * for nodes, a running supervisor): the target stops it. */
		if (attached(r) && !r->busy) {
			target_ops_of(r)->cancel(r);
		}
		return 0;
	}
	default:
		return -EALREADY;
	}
}

/* Resume after a restart */

static bool file_exists(const char *dir, const char *name)
{
	char *p = util_path_join(dir, name);
	bool yes = p && access(p, F_OK) == 0;

	free(p);
	return yes;
}

static int64_t read_sup_pid(struct run *r)
{
	char *p = util_path_join(r->dir, "supervisor.json"), *text = NULL;
	int64_t pid = 0;

	if (p && util_read_file(p, 4096, &text, NULL) == 0) {
		cJSON *j = cJSON_Parse(text);
		const cJSON *v = cJSON_GetObjectItem(j, "supervisor_pid");
		if (cJSON_IsNumber(v)) {
			pid = (int64_t)v->valuedouble;
		}
		cJSON_Delete(j);
	}
	free(text);
	free(p);
	return pid;
}

void exec_resume(struct run *r)
{
	struct daemon *d = r->d;
	bool has_exit = file_exists(r->dir, "exit.json");
	bool has_sup = file_exists(r->dir, "supervisor.json");

	if (r->status == RUN_QUEUED) {
		return;
	}
	target_slot_take(r);
	/* A cluster target finds the run's job again by its recorded id. */
	bool adopted = target_ops_of(r)->adopt && target_ops_of(r)->adopt(r);
	if (has_exit) {
		/* The process ended; maybe we were even finalizing it. */
		attach(r);
		check_exit(r);
		return;
	}
	if (adopted) {
		log_info("run %s: watching its job on compute target %s again", r->id,
			 target_of(r)->name);
		attach(r);
		if (r->status == RUN_CANCEL_REQUESTED) {
			target_ops_of(r)->cancel(r);
		}
		started_if_supervised(r);
		ingest(r, false);
		tracking_ingest(r, false);
		check_exit(r);
		return;
	}
	if (has_sup && !target_ops_of(r)->adopt) {
		int64_t pid = read_sup_pid(r);
		if (pid > 0) {
			r->sup_pid = pid;
		}
		if (target_ops_of(r)->alive(r)) {
			log_info("run %s: re-attached to its supervisor (pid %lld)", r->id,
				 (long long)r->sup_pid);
			attach(r);
			if (r->status == RUN_SCALING) {
				run_transition(r, RUN_RUNNING);
			} else if (r->status == RUN_CANCEL_REQUESTED) {
				target_ops_of(r)->cancel(r);
			}
			ingest(r, false);
			tracking_ingest(r, false);
			/* It may have ended between our two looks. */
			check_exit(r);
			return;
		}
		struct enforce_end lim;
		r->exited = true;
		ingest(r, true);
		tracking_ingest(r, true);
		finish_limits(r, NULL, &lim);
		if (r->status == RUN_CANCEL_REQUESTED) {
			r->outcome = RUN_CANCELED;
		} else {
			store_run_set_error(d->store, r->seq, "DaemonRestart",
					    "the run's process ended while runyardd was down and "
					    "left no exit status",
					    "Running");
			r->outcome = RUN_FAILED;
			r->attempt_lost = true;
		}
		finalize(r);
		return;
	}
	switch (r->status) {
	case RUN_PREPARING:
	case RUN_SCALING:
		/* Never started: prepare again from the snapshot. */
		exec_prepare(r);
		break;
	case RUN_CANCEL_REQUESTED:
		run_transition(r, RUN_CANCELED);
		break;
	default:
		run_fail(r, "DaemonRestart",
			 "runyardd stopped before the run's process was started");
		break;
	}
}

void exec_shutdown(struct daemon *d)
{
	struct run *r = d->runs_head;

	while (r) {
		struct run *next = r->next;
		/* Not ended, only let go of: the store keeps its status. */
		r->ended = true;
		r->prev = r->next = NULL;
		exec_detach(r);
		run_release(r);
		r = next;
	}
	d->runs_head = d->runs_tail = NULL;
	queue_clear(d);
	envs_shutdown(d);
	inputs_shutdown(d);
}

void exec_sweep_dirs(struct daemon *d)
{
	DIR *dir = opendir(d->runs_dir);
	struct dirent *de;

	if (!dir) {
		return;
	}
	while ((de = readdir(dir))) {
		bool wanted = false;
		if (de->d_name[0] == '.') {
			continue;
		}
		for (struct run *r = d->runs_head; r && !wanted; r = r->next) {
			wanted = strcmp(r->id, de->d_name) == 0;
		}
		char *p = util_path_join(d->runs_dir, de->d_name);
		int64_t seq;
		/* A kept directory stays, unless its run was removed from the
		 * history (run.rm killed between its commit and the removal). */
		if (p && !wanted &&
		    (!file_exists(p, "keep") ||
		     store_run_resolve(d->store, de->d_name, &seq) == -ENOENT)) {
			log_info("removing the leftover run directory %s", p);
			util_rm_rf(p);
		}
		free(p);
	}
	closedir(dir);
}

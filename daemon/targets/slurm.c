#include "slurm_priv.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "compute.h"
#include "context.h"
#include "exec.h"
#include "log.h"
#include "msg.h"
#include "rest.h"
#include "run.h"
#include "store.h"
#include "util.h"

/* Polling: one GET of all jobs per target, at most every POLL_MIN_MS;
 * the interval doubles while nothing changes, up to POLL_IDLE_MAX_MS, and
 * while slurmrestd does not answer, up to POLL_ERROR_MAX_MS. */
#define POLL_MIN_MS 1000
#define POLL_IDLE_MAX_MS 10000
#define POLL_ERROR_MAX_MS 20000
#define NUDGE_MS 100
/* Clocks of the daemon and of slurmctld may differ a little: update_time
 * asks for what changed since a bit before the last answered poll. */
#define CLOCK_SLACK_S 2
#define REQUEST_TIMEOUT_MS 30000
#define JOBS_BODY_MAX (256u << 20)
/* A job that ran and ended may have an exit.json the daemon cannot see yet
 * (a network file system's caches): its run stays alive this long. */
#define EXIT_GRACE_S 5.0
/* How long a supervisor's unexplained cancel waits for Slurm's word. */
#define JUDGE_WAIT_S 30.0
/* Lists that must miss a job before it counts as gone. */
#define MISSING_LISTS 2

/* Targets and their runs */

enum step {
	STEP_IDLE,       /* not handed to Slurm yet */
	STEP_SUBMITTING, /* the submit request is out */
	STEP_RETRY,      /* slurmrestd was not reached: submit again */
	STEP_LOOKUP,     /* a submit may have reached Slurm: find the job by name */
	STEP_ACTIVE,     /* the job's id is known */
	STEP_GONE,       /* no job, and none will come (canceled before submit, or
			    the job is no longer known to Slurm) */
};

struct slurm_target {
	struct target *t;
	struct daemon *d;
	struct rest_client *rest;
	const struct slurm_api *api;
	char *base, *token_env, *user, *partition, *shared_dir;
	struct slurm_run *runs;  /* runs handed to Slurm */
	struct slurm_run *limbo; /* let go of by their runs, a request still out */
	uv_timer_t timer;
	struct rest_req *poll_req;
	double poll_started;
	double last_ok; /* start of the last poll that was answered; 0: none */
	int interval_ms;
	int failures;
	bool nudged; /* something happened while a poll was out */
	bool closing;
};

struct slurm_run {
	struct slurm_run *next;
	struct slurm_target *st;
	struct run *r; /* NULL once let go of */
	struct slurm_resources res;
	char *body; /* the submit request, kept for retries */
	int64_t job_id;
	enum step step;
	enum slurm_phase phase;
	char state[32];
	char *reason;
	int64_t exit_code;
	int64_t time_limit;
	bool ran;  /* seen running (or ending) */
	double ended_seen;
	double judge_since;
	double known_at; /* when the job id became known */
	int missing; /* answers in a row that did not list the job */
	bool seen;
	bool maybe_submitted; /* restarted in Scaling without a job id */
	bool reprepare;       /* ... and not found: prepare and submit again */
	bool tracked;         /* in st->runs */
	bool cancel_wanted, cancel_done;
	struct rest_req *req; /* a submit or cancel */
};

static void nudge(struct slurm_target *st);
static void schedule(struct slurm_target *st, int ms);

/* Errors that say slurmctld was not reached: worth trying again. */
static bool transient_errors(const char *msg)
{
	return msg && (strstr(msg, "Unable to contact slurm controller") ||
		       strstr(msg, "Socket timed out") || strstr(msg, "Zero Bytes were transmitted") ||
		       strstr(msg, "Communication connection failure"));
}

static int send_request(struct slurm_target *st, const char *method, const char *path,
			const char *body, size_t max_body, rest_cb cb, void *ud,
			struct rest_req **ret, char **cause)
{
	struct slurm_auth a;
	int err = slurm_auth_make(st->token_env, st->user, &a, cause);

	if (err == 0) {
		const struct rest_call call = {
			.method = method,
			.base = st->base,
			.path = path,
			.headers = (const char *const *)a.lines,
			.body = body,
			.timeout_ms = REQUEST_TIMEOUT_MS,
			.max_body = max_body,
		};
		err = rest_request(st->rest, &call, cb, ud, ret);
	}
	slurm_auth_finish(&a);
	return err;
}

static void track(struct slurm_run *sr)
{
	if (!sr->tracked) {
		sr->next = sr->st->runs;
		sr->st->runs = sr;
		sr->tracked = true;
	}
}

static void srun_free(struct slurm_run *sr)
{
	free(sr->body);
	free(sr->reason);
	free(sr);
}

static void list_remove(struct slurm_run **head, struct slurm_run *sr)
{
	for (struct slurm_run **pp = head; *pp; pp = &(*pp)->next) {
		if (*pp == sr) {
			*pp = sr->next;
			sr->next = NULL;
			return;
		}
	}
}

/* A request of a run that was let go of has come back. */
static void limbo_done(struct slurm_run *sr)
{
	list_remove(&sr->st->limbo, sr);
	srun_free(sr);
}

static void failure(struct slurm_target *st, const char *what, const char *msg)
{
	if (st->failures++ == 0) {
		log_warn("compute target %s: %s failed: %s (retrying with back-off; runs keep "
			 "their status)",
			 st->t->name, what, msg);
	} else {
		log_debug("compute target %s: %s failed again: %s", st->t->name, what, msg);
	}
}

static void recovered(struct slurm_target *st)
{
	if (st->failures > 0) {
		log_info("compute target %s: slurmrestd answers again", st->t->name);
	}
	st->failures = 0;
}

/* Cancel */

static void cancel_send(struct slurm_run *sr);

static void fire_and_forget_cb(void *ud, const struct rest_reply *rep)
{
	limbo_done(ud);
}

static void cancel_done_cb(void *ud, const struct rest_reply *rep)
{
	struct slurm_run *sr = ud;
	struct slurm_target *st = sr->st;
	cJSON *j = NULL;
	char *msg = NULL;

	sr->req = NULL;
	if (!sr->r) {
		limbo_done(sr);
		return;
	}
	if (rep->err < 0) {
		failure(st, "canceling a job", rep->message);
		schedule(st, st->interval_ms);
		return;
	}
	if (rep->status != 200) {
		j = cJSON_ParseWithLength(rep->body, rep->len);
		msg = slurm_reply_message(rep, j);
		if (transient_errors(msg)) {
			failure(st, "canceling a job", msg);
			goto out;
		}
		/* Invalid job id, already completing: nothing left to cancel. */
		log_info("run %s: canceling Slurm job %lld: %s", sr->r->id, (long long)sr->job_id,
			 msg);
	}
	recovered(st);
	sr->cancel_done = true;
	nudge(st);
out:
	free(msg);
	cJSON_Delete(j);
}

static void cancel_send(struct slurm_run *sr)
{
	struct slurm_target *st = sr->st;
	char path[128], *cause = NULL;
	int err;

	if (sr->req || sr->job_id <= 0 || sr->cancel_done) {
		return;
	}
	snprintf(path, sizeof(path), st->api->job_fmt, (long long)sr->job_id);
	err = send_request(st, "DELETE", path, NULL, 1 << 20, cancel_done_cb, sr, &sr->req, &cause);
	if (err < 0) {
		failure(st, "canceling a job", cause ? cause : strerror(-err));
	}
	free(cause);
}

/* Submit */

static void submit_send(struct slurm_run *sr);

static void submit_done_cb(void *ud, const struct rest_reply *rep)
{
	struct slurm_run *sr = ud;
	struct slurm_target *st = sr->st;
	struct run *r = sr->r;
	cJSON *j = NULL;
	char *msg = NULL;
	int64_t id = 0;

	sr->req = NULL;
	if (rep->err == 0 && rep->status == 200) {
		j = cJSON_ParseWithLength(rep->body, rep->len);
		if (st->api->submit_job_id(j, &id) < 0) {
			msg = slurm_reply_message(rep, j);
		}
	}
	if (!r) {
		/* The run was let go of while its job was being submitted. */
		if (id > 0) {
			char path[128];
			snprintf(path, sizeof(path), st->api->job_fmt, (long long)id);
			if (send_request(st, "DELETE", path, NULL, 1 << 20, fire_and_forget_cb, sr,
					 &sr->req, NULL) == 0) {
				goto out;
			}
		}
		limbo_done(sr);
		goto out;
	}
	if (id > 0) {
		recovered(st);
		sr->job_id = id;
		sr->step = STEP_ACTIVE;
		sr->phase = SLURM_PHASE_PENDING;
		snprintf(sr->state, sizeof(sr->state), "PENDING");
		sr->known_at = util_now();
		compute_run_job_set(r, id);
		log_info("run %s: Slurm job %lld submitted to %s", r->id, (long long)id, st->t->name);
		msg = slurm_reply_errors(j);
		if (msg) {
			/* Accepted, but it may wait for good (a request the partition
			 * cannot meet): the run's warnings say what Slurm said. */
			char *w = msg_strdupf("Slurm accepted job %lld with a warning: %s",
					      (long long)id, msg);
			if (w && store_run_warning_add(st->d->store, r->seq, util_now(), w) < 0) {
				log_warn("run %s: %s", r->id, w);
			}
			free(w);
		}
		if (sr->cancel_wanted) {
			cancel_send(sr);
		}
		nudge(st);
		goto out;
	}
	if (rep->err < 0) {
		/* Not reached at all: send it again. Reached but no answer: the
		 * job may exist; look for it by name before sending it again. */
		bool unreached = rep->err == -ECONNREFUSED || rep->err == -ENOENT ||
				 rep->err == -EHOSTUNREACH;
		failure(st, "submitting a job", rep->message);
		sr->step = unreached ? STEP_RETRY : STEP_LOOKUP;
		sr->known_at = util_now();
		schedule(st, st->interval_ms);
		goto out;
	}
	if (!msg) {
		j = j ? j : cJSON_ParseWithLength(rep->body, rep->len);
		msg = slurm_reply_message(rep, j);
	}
	if (rep->status == 502 || rep->status == 503 || rep->status == 504 ||
	    transient_errors(msg)) {
		failure(st, "submitting a job", msg);
		sr->step = rep->status == 504 ? STEP_LOOKUP : STEP_RETRY;
		sr->known_at = util_now();
		schedule(st, st->interval_ms);
		goto out;
	}
	/* Slurm refused the job: the run fails (and lets go of sr). */
	if (rep->status == 401 || rep->status == 403) {
		run_fail(r, "ExecutionFailed",
			 "slurmrestd of compute target %s refused runyard's credentials (%s); check "
			 "the target's --token-env and --user",
			 st->t->name, msg);
	} else {
		run_fail(r, "ExecutionFailed", "Slurm refused the job of compute target %s: %s",
			 st->t->name, msg);
	}
out:
	free(msg);
	cJSON_Delete(j);
}

static void submit_send(struct slurm_run *sr)
{
	struct slurm_target *st = sr->st;
	char *cause = NULL;
	int err;

	if (sr->req) {
		return;
	}
	if (sr->cancel_wanted) {
		/* Never reached Slurm, and no longer wanted. */
		sr->step = STEP_GONE;
		return;
	}
	sr->step = STEP_SUBMITTING;
	err = send_request(st, "POST", st->api->submit_path, sr->body, 1 << 20, submit_done_cb, sr,
			   &sr->req, &cause);
	if (err < 0) {
		failure(st, "submitting a job", cause ? cause : strerror(-err));
		sr->step = STEP_RETRY;
		schedule(st, st->interval_ms);
	}
	free(cause);
}

/* Polling */

static struct slurm_run *find_job(struct slurm_target *st, int64_t id)
{
	for (struct slurm_run *sr = st->runs; sr; sr = sr->next) {
		if (sr->job_id == id) {
			return sr;
		}
	}
	return NULL;
}

/* Whether anything needs the target's timer: a job to watch, a submit or a
 * cancel to retry, a job to look for. */
static struct slurm_run *find_lookup(struct slurm_target *st, const char *name)
{
	for (struct slurm_run *sr = st->runs; sr; sr = sr->next) {
		if (sr->step == STEP_LOOKUP && sr->r && strcmp(sr->r->id, name) == 0) {
			return sr;
		}
	}
	return NULL;
}

static bool needs_poll(struct slurm_target *st)
{
	for (struct slurm_run *sr = st->runs; sr; sr = sr->next) {
		if (sr->step == STEP_ACTIVE || sr->step == STEP_RETRY || sr->step == STEP_LOOKUP) {
			return true;
		}
	}
	return false;
}

static void tick_cb(uv_timer_t *t);

static void schedule(struct slurm_target *st, int ms)
{
	if (st->closing) {
		return;
	}
	if (!needs_poll(st)) {
		uv_timer_stop(&st->timer);
		return;
	}
	uv_timer_start(&st->timer, tick_cb, (uint64_t)ms, 0);
}

/* Something happened (a job submitted or canceled): look soon, and often. */
static void nudge(struct slurm_target *st)
{
	st->interval_ms = POLL_MIN_MS;
	if (st->poll_req) {
		st->nudged = true;
	} else {
		schedule(st, NUDGE_MS);
	}
}

static void update_job(struct slurm_run *sr, const struct slurm_job *job, bool *changed)
{
	enum slurm_phase phase = slurm_state_phase(job->state);

	sr->missing = 0;
	sr->exit_code = job->exit_code;
	sr->time_limit = job->time_limit;
	if (strcmp(sr->state, job->state) == 0) {
		return;
	}
	*changed = true;
	if (phase == SLURM_PHASE_UNKNOWN) {
		log_warn("run %s: Slurm job %lld is in state %s, which runyard does not know; "
			 "taken as unchanged",
			 sr->r ? sr->r->id : "?", (long long)sr->job_id, job->state);
	} else {
		sr->phase = phase;
	}
	snprintf(sr->state, sizeof(sr->state), "%s", job->state);
	free(sr->reason);
	sr->reason = job->reason ? strdup(job->reason) : NULL;
	if (phase == SLURM_PHASE_RUNNING || phase == SLURM_PHASE_ENDING) {
		sr->ran = true;
	}
	if (phase == SLURM_PHASE_ENDED && sr->ended_seen == 0) {
		sr->ended_seen = util_now();
	}
	if (sr->r) {
		log_debug("run %s: Slurm job %lld is %s", sr->r->id, (long long)sr->job_id,
			  job->state);
	}
}

static void poll_done_cb(void *ud, const struct rest_reply *rep)
{
	struct slurm_target *st = ud;
	const cJSON *jobs, *item;
	cJSON *j = NULL;
	bool changed = false, full;
	double started = st->poll_started;
	struct run *again[64];
	size_t n_again = 0;

	st->poll_req = NULL;
	if (rep->err < 0 || (rep->status != 200 && rep->status != 304)) {
		char *msg = rep->err < 0 ? strdup(rep->message) : slurm_reply_message(rep, NULL);
		failure(st, "polling the jobs", msg ? msg : "out of memory");
		free(msg);
		st->interval_ms = st->interval_ms * 2 > POLL_ERROR_MAX_MS ? POLL_ERROR_MAX_MS
									  : st->interval_ms * 2;
		schedule(st, st->interval_ms);
		return;
	}
	recovered(st);
	full = rep->status == 200;
	if (full) {
		j = cJSON_ParseWithLength(rep->body, rep->len);
		jobs = cJSON_GetObjectItemCaseSensitive(j, "jobs");
		if (!cJSON_IsArray(jobs)) {
			char *msg = slurm_reply_message(rep, j);
			failure(st, "reading the job list", msg ? msg : "not JSON");
			free(msg);
			cJSON_Delete(j);
			schedule(st, st->interval_ms);
			return;
		}
		for (struct slurm_run *sr = st->runs; sr; sr = sr->next) {
			sr->seen = false;
		}
		cJSON_ArrayForEach(item, jobs) {
			struct slurm_job job;
			struct slurm_run *sr;
			if (st->api->parse_job(item, &job) < 0) {
				continue;
			}
			sr = find_job(st, job.id);
			if (!sr && job.name) {
				sr = find_lookup(st, job.name);
				if (sr) {
					/* A submit whose answer was lost: the job carries
					 * the run's id as its name. */
					sr->job_id = job.id;
					sr->step = STEP_ACTIVE;
					compute_run_job_set(sr->r, job.id);
					log_info("run %s: found its Slurm job %lld", sr->r->id,
						 (long long)job.id);
					if (sr->cancel_wanted) {
						cancel_send(sr);
					}
				}
			}
			if (sr) {
				sr->seen = true;
				update_job(sr, &job, &changed);
			}
		}
		/* A 200 answer lists every job slurmctld knows. */
		for (struct slurm_run *sr = st->runs; sr; sr = sr->next) {
			if (sr->seen || started <= sr->known_at) {
				continue;
			}
			if (sr->step == STEP_LOOKUP) {
				/* Not there: the submit never reached Slurm. */
				changed = true;
				if (sr->cancel_wanted) {
					sr->step = STEP_GONE;
				} else if (sr->reprepare && n_again < 64) {
					/* Found again after a restart, before its
					 * directory was made anew: make it now. */
					sr->reprepare = false;
					sr->step = STEP_IDLE;
					again[n_again++] = sr->r;
				} else if (!sr->reprepare) {
					sr->step = STEP_RETRY;
				}
			} else if (sr->step == STEP_ACTIVE && ++sr->missing >= MISSING_LISTS) {
				log_warn("run %s: Slurm no longer knows job %lld", sr->r->id,
					 (long long)sr->job_id);
				sr->step = STEP_GONE;
				changed = true;
			}
		}
		cJSON_Delete(j);
	}
	st->last_ok = started;
	if (st->nudged) {
		st->nudged = false;
		st->interval_ms = POLL_MIN_MS;
		schedule(st, NUDGE_MS);
	} else if (changed) {
		st->interval_ms = POLL_MIN_MS;
	} else {
		st->interval_ms = st->interval_ms * 2 > POLL_IDLE_MAX_MS ? POLL_IDLE_MAX_MS
									 : st->interval_ms * 2;
	}
	/* Runs whose job started move to Running; nothing here ends a run
	 * (the run's own check sees alive() turn false), so the list holds. */
	for (struct slurm_run *sr = st->runs; sr; sr = sr->next) {
		if (sr->r && sr->ran) {
			exec_started(sr->r);
		}
	}
	/* Last: a preparation that fails at once ends its run, which leaves
	 * the list. */
	for (size_t i = 0; i < n_again; i++) {
		exec_prepare(again[i]);
	}
	if (!uv_is_active((uv_handle_t *)&st->timer)) {
		schedule(st, st->interval_ms);
	}
}

static void poll_send(struct slurm_target *st)
{
	char path[256], *cause = NULL;
	bool full = st->last_ok == 0;
	int err;

	for (struct slurm_run *sr = st->runs; sr && !full; sr = sr->next) {
		full = sr->step == STEP_LOOKUP;
	}
	if (full) {
		snprintf(path, sizeof(path), "%s", st->api->jobs_path);
	} else {
		snprintf(path, sizeof(path), "%s?update_time=%lld", st->api->jobs_path,
			 (long long)st->last_ok - CLOCK_SLACK_S);
	}
	st->poll_started = util_now();
	err = send_request(st, "GET", path, NULL, JOBS_BODY_MAX, poll_done_cb, st, &st->poll_req,
			   &cause);
	if (err < 0) {
		failure(st, "polling the jobs", cause ? cause : strerror(-err));
		schedule(st, POLL_ERROR_MAX_MS);
	}
	free(cause);
}

static void tick_cb(uv_timer_t *t)
{
	struct slurm_target *st = t->data;
	bool poll = false;

	for (struct slurm_run *sr = st->runs; sr; sr = sr->next) {
		if (sr->step == STEP_RETRY) {
			submit_send(sr);
		}
		if (sr->step == STEP_ACTIVE && sr->cancel_wanted && !sr->cancel_done) {
			cancel_send(sr);
		}
		poll = poll || sr->step == STEP_ACTIVE || sr->step == STEP_LOOKUP;
	}
	if (poll && !st->poll_req) {
		poll_send(st);
	} else if (!st->poll_req) {
		schedule(st, st->interval_ms);
	}
}

/* The target */

static void timer_close_cb(uv_handle_t *h)
{
	struct slurm_target *st = h->data;

	free(st->base);
	free(st->token_env);
	free(st->user);
	free(st->partition);
	free(st->shared_dir);
	free(st);
}

int slurm_target_init(struct target *t, char **cause)
{
	struct slurm_target *st = calloc(1, sizeof(*st));
	int err;

	if (!st) {
		return -ENOMEM;
	}
	st->t = t;
	st->d = t->d;
	st->base = slurm_config_str(t->config, "rest");
	st->token_env = slurm_config_str(t->config, "token_env");
	st->user = slurm_config_str(t->config, "user");
	st->partition = slurm_config_str(t->config, "partition");
	st->shared_dir = slurm_config_str(t->config, "shared_dir");
	st->api = slurm_api_find(slurm_json_str(t->config, "api"));
	st->interval_ms = POLL_MIN_MS;
	if (!st->api) {
		/* Stored by a runyardd that knew more versions. */
		st->api = &slurm_apis[0];
		log_warn("compute target %s: API version %s is unknown to this runyardd; using %s",
			 t->name, slurm_json_str(t->config, "api") ? slurm_json_str(t->config, "api") : "(none)",
			 st->api->version);
	}
	if (!st->base || !st->shared_dir) {
		*cause = msg_strdupf("compute target %s has no REST URL or shared directory",
				     t->name);
		err = -EINVAL;
		goto fail;
	}
	err = rest_client_create(t->d->loop, &st->rest);
	if (err < 0) {
		goto fail;
	}
	uv_timer_init(t->d->loop, &st->timer);
	st->timer.data = st;
	t->impl = st;
	return 0;
fail:
	free(st->base);
	free(st->token_env);
	free(st->user);
	free(st->partition);
	free(st->shared_dir);
	free(st);
	return err;
}

void slurm_target_close(struct target *t)
{
	struct slurm_target *st = t->impl;

	if (!st || st->closing) {
		return;
	}
	st->closing = true;
	t->impl = NULL;
	/* Requests go without their callbacks: what they were for carries
	 * on in Slurm and is found again at the next start. */
	rest_client_close(st->rest);
	while (st->limbo) {
		struct slurm_run *sr = st->limbo;
		st->limbo = sr->next;
		srun_free(sr);
	}
	for (struct slurm_run *sr = st->runs; sr; sr = sr->next) {
		sr->req = NULL;
		sr->st = NULL;
	}
	st->runs = NULL;
	uv_timer_stop(&st->timer);
	uv_close((uv_handle_t *)&st->timer, timer_close_cb);
}

/* Runs */

int slurm_run_bind(struct run *r, struct target *t, const struct slurm_resources *res,
		   int64_t job_id)
{
	struct slurm_target *st = t->impl;
	struct slurm_run *sr;
	char *dir, *workdir;

	if (!st) {
		return -ESHUTDOWN;
	}
	sr = calloc(1, sizeof(*sr));
	dir = util_path_join(st->shared_dir, r->id);
	workdir = dir ? util_path_join(dir, "work") : NULL;
	if (!sr || !workdir) {
		free(sr);
		free(dir);
		free(workdir);
		return -ENOMEM;
	}
	sr->st = st;
	sr->r = r;
	sr->res = *res;
	sr->job_id = job_id;
	sr->maybe_submitted = job_id == 0 && r->status == RUN_SCALING;
	free(r->dir);
	free(r->workdir);
	r->dir = dir;
	r->workdir = workdir;
	r->target = t;
	r->target_data = sr;
	/* Slurm counts time limits in minutes; the supervisor stops the run
	 * at the second asked for (see slurm_start). */
	if (res->time_limit > 0 && (r->timeout <= 0 || res->time_limit < r->timeout)) {
		r->timeout = res->time_limit;
	}
	return 0;
}

static struct slurm_run *srun_of(struct run *r)
{
	struct slurm_run *sr = r->target_data;
	return sr && sr->st ? sr : NULL;
}

/* The batch script: exec the supervisor's command line, each word quoted
 * for the shell. */
static char *make_script(const struct run *r, char *const *argv)
{
	size_t cap = 256, len;
	char *s;

	for (char *const *a = argv; *a; a++) {
		cap += strlen(*a) * 4 + 3;
	}
	cap += strlen(r->id);
	s = malloc(cap);
	if (!s) {
		return NULL;
	}
	len = (size_t)snprintf(s, cap, "#!/bin/sh\n# runyard run %s\nexec", r->id);
	for (char *const *a = argv; *a; a++) {
		s[len++] = ' ';
		s[len++] = '\'';
		for (const char *c = *a; *c; c++) {
			if (*c == '\'') {
				memcpy(s + len, "'\\''", 4);
				len += 4;
			} else {
				s[len++] = *c;
			}
		}
		s[len++] = '\'';
	}
	s[len++] = '\n';
	s[len] = '\0';
	return s;
}

static int slurm_start(struct run *r, char **argv, char **env, char **cause)
{
	struct slurm_run *sr = srun_of(r);
	struct slurm_target *st;
	char *script = NULL, *output = NULL;
	cJSON *body = NULL;
	int err = -ENOMEM;

	if (!sr) {
		*cause = msg_strdupf("compute target %s is closing", r->target ? r->target->name : "?");
		return -ESHUTDOWN;
	}
	st = sr->st;
	script = make_script(r, argv);
	output = util_path_join(r->dir, "slurm.out");
	if (!script || !output) {
		goto out;
	}
	/* Slurm's limit is a backstop, in whole minutes, that leaves the
	 * supervisor its grace period to stop the run and record it. */
	double limit = sr->res.time_limit;
	const struct slurm_spec spec = {
		.name = r->id,
		.script = script,
		.cwd = r->workdir,
		.output = output,
		.env = env,
		.partition = st->partition,
		.res = &sr->res,
		.time_limit_min = limit > 0 ? (int64_t)ceil((limit + st->d->grace + 5) / 60.0) : 0,
	};
	body = st->api->submit_body(&spec);
	free(sr->body);
	sr->body = body ? cJSON_PrintUnformatted(body) : NULL;
	if (!sr->body) {
		goto out;
	}
	track(sr);
	err = 0;
	if (sr->job_id > 0) {
		/* Restarted with the job recorded: watch it, do not submit. */
		sr->step = STEP_ACTIVE;
		nudge(st);
	} else if (sr->maybe_submitted) {
		/* The daemon stopped while this run was being submitted: the
		 * job may exist. Look for it before submitting again. */
		sr->maybe_submitted = false;
		sr->step = STEP_LOOKUP;
		sr->known_at = util_now();
		nudge(st);
	} else {
		submit_send(sr);
	}
out:
	cJSON_Delete(body);
	free(script);
	free(output);
	return err;
}

static void slurm_cancel(struct run *r)
{
	struct slurm_run *sr = srun_of(r);

	if (!sr) {
		return;
	}
	sr->cancel_wanted = true;
	switch (sr->step) {
	case STEP_IDLE:
	case STEP_RETRY:
		/* Nothing reached Slurm: nothing to cancel there. */
		sr->step = STEP_GONE;
		break;
	case STEP_ACTIVE:
		cancel_send(sr);
		nudge(sr->st);
		break;
	default:
		/* Submitting or looking: the answer sends the cancel. */
		break;
	}
}

static bool slurm_alive(struct run *r)
{
	struct slurm_run *sr = srun_of(r);

	if (!sr) {
		return true; /* closing: nothing is decided now */
	}
	switch (sr->step) {
	case STEP_GONE:
		return false;
	case STEP_ACTIVE:
		if (sr->phase != SLURM_PHASE_ENDED) {
			return true;
		}
		return sr->ran && util_now() - sr->ended_seen < EXIT_GRACE_S;
	default:
		return true;
	}
}

/* The job's output file (Slurm's own messages, the supervisor's stderr):
 * its last lines, for an error message. */
static char *output_tail(struct run *r)
{
	char *p = util_path_join(r->dir, "slurm.out"), *text = NULL, *out = NULL;
	size_t len = 0;

	if (p && util_read_file(p, 1 << 20, &text, &len) == 0 && len > 0) {
		size_t from = len > 400 ? len - 400 : 0;
		while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' ')) {
			text[--len] = '\0';
		}
		if (len > from) {
			char *clean = utf8_sanitize(text + from, len - from, NULL);
			out = clean ? msg_strdupf("; the job's output ends: %s", clean) : NULL;
			free(clean);
		}
	}
	free(text);
	free(p);
	return out;
}

static void describe_exit(int64_t status, char *buf, size_t n)
{
	if (status & 0x7f) {
		snprintf(buf, n, "signal %lld", (long long)(status & 0x7f));
	} else {
		snprintf(buf, n, "exit code %lld", (long long)((status >> 8) & 0xff));
	}
}

static void slurm_lost(struct run *r, struct target_verdict *v)
{
	struct slurm_run *sr = srun_of(r);
	char how[64], *tail = NULL;
	const char *code;

	v->outcome = RUN_FAILED;
	if (r->status == RUN_CANCEL_REQUESTED) {
		v->outcome = RUN_CANCELED;
		return;
	}
	if (!sr || sr->step != STEP_ACTIVE) {
		v->code = "ExecutionFailed";
		v->message = sr && sr->job_id > 0
				     ? msg_strdupf("Slurm no longer knows job %lld, and its "
						   "supervisor left no exit status",
						   (long long)sr->job_id)
				     : msg_strdupf("the run's Slurm job was never submitted");
		return;
	}
	tail = output_tail(r);
	describe_exit(sr->exit_code, how, sizeof(how));
	code = slurm_state_code(sr->state);
	if (strcmp(sr->state, "CANCELLED") == 0) {
		v->outcome = RUN_CANCELED;
		log_info("run %s: Slurm job %lld was canceled outside runyard", r->id,
			 (long long)sr->job_id);
	} else if (code) {
		v->code = code;
		v->message = msg_strdupf("Slurm job %lld ended %s (%s, reason %s) before its "
					 "supervisor recorded how the run ended%s",
					 (long long)sr->job_id, sr->state, how,
					 sr->reason ? sr->reason : "none", tail ? tail : "");
	} else {
		v->code = "ExecutionFailed";
		v->message = msg_strdupf("Slurm job %lld ended %s (%s) but its supervisor left no "
					 "exit status%s",
					 (long long)sr->job_id, sr->state, how, tail ? tail : "");
	}
	free(tail);
}

static int slurm_judge(struct run *r, const struct store_exit *e, bool canceled,
		       struct target_verdict *v)
{
	struct slurm_run *sr = srun_of(r);
	const char *code;

	if ((!canceled && e->signal == 0) || !sr) {
		return 0;
	}
	if (sr->step == STEP_ACTIVE && sr->phase == SLURM_PHASE_ENDED) {
		code = slurm_state_code(sr->state);
		if (strcmp(sr->state, "CANCELLED") == 0 && canceled) {
			v->outcome = RUN_CANCELED;
			log_info("run %s: Slurm job %lld was canceled outside runyard", r->id,
				 (long long)sr->job_id);
			return 1;
		}
		if (!code || strcmp(code, "JobFailed") == 0) {
			return 0; /* the supervisor's account stands */
		}
		v->outcome = RUN_FAILED;
		v->code = code;
		if (strcmp(code, "Timeout") == 0) {
			v->message = msg_strdupf("Slurm stopped job %lld at its time limit of %lld "
						 "minute(s) (%s)",
						 (long long)sr->job_id, (long long)sr->time_limit,
						 sr->state);
		} else {
			v->message = msg_strdupf("Slurm job %lld ended %s (reason %s)",
						 (long long)sr->job_id, sr->state,
						 sr->reason ? sr->reason : "none");
		}
		return 1;
	}
	if (sr->step != STEP_ACTIVE) {
		return 0;
	}
	/* Stopped from outside: Slurm knows why; ask it now. */
	if (sr->judge_since == 0) {
		sr->judge_since = util_now();
		nudge(sr->st);
	}
	return util_now() - sr->judge_since > JUDGE_WAIT_S ? 0 : -EAGAIN;
}

static bool slurm_adopt(struct run *r)
{
	struct slurm_run *sr = srun_of(r);

	if (!sr) {
		return false;
	}
	if (sr->job_id > 0) {
		/* Watch the recorded job. */
		track(sr);
		sr->step = STEP_ACTIVE;
		nudge(sr->st);
		return true;
	}
	if (sr->maybe_submitted) {
		/* The daemon stopped while the job was being submitted: look for
		 * it by name before the run's directory is made anew. */
		sr->maybe_submitted = false;
		sr->reprepare = true;
		track(sr);
		sr->step = STEP_LOOKUP;
		sr->known_at = util_now();
		nudge(sr->st);
		return true;
	}
	return false;
}

static void slurm_detach(struct run *r)
{
	struct slurm_run *sr = r->target_data;

	r->target_data = NULL;
	if (!sr) {
		return;
	}
	sr->r = NULL;
	if (!sr->st) {
		/* The target closed first. */
		srun_free(sr);
		return;
	}
	list_remove(&sr->st->runs, sr);
	sr->tracked = false;
	if (sr->req) {
		sr->next = sr->st->limbo;
		sr->st->limbo = sr;
		return;
	}
	srun_free(sr);
}

const struct target_ops slurm_ops = {
	.type = "slurm",
	.start = slurm_start,
	.cancel = slurm_cancel,
	.alive = slurm_alive,
	.lost = slurm_lost,
	.judge = slurm_judge,
	.adopt = slurm_adopt,
	.detach = slurm_detach,
};

/* A run in flight, and the state machine every run follows. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "resources.h"

struct daemon;
struct inputs_job;
struct exec_run;
struct store_run_row;

enum run_status {
	RUN_QUEUED,
	RUN_PREPARING,
	RUN_SCALING,
	RUN_RUNNING,
	RUN_CANCEL_REQUESTED,
	RUN_FINALIZING,
	RUN_COMPLETED,
	RUN_FAILED,
	RUN_CANCELED,
	RUN__MAX,
};

struct run {
	struct daemon *d;
	struct run *prev, *next; /* d->runs_head list */
	struct run *qnext;       /* the queue's order, while Queued (queue.c) */
	struct run *dead_next;   /* ended, waiting to be freed at the end of the tick */

	int64_t seq;
	char *id;
	char *experiment;
	char *snapshot;
	enum run_status status;
	double status_at; /* when it was entered (unix seconds) */
	int priority;
	double created_at;
	double timeout;
	bool keep;
	cJSON *argv;
	cJSON *env;
	int64_t parent; /* the sweep it is a trial of (its seq); 0: none */

	char *dir;     /* state/runs/<id>: the supervisor's files */
	char *workdir; /* dir/work: the process's cwd */

	/* Execution. Every libuv handle that refers to the run is counted in
	 * handles, and the run is freed only after each has closed: the
	 * driver's own (exec.c, in exec while it watches the run directory)
	 * and the target's (target_data). */
	struct exec_run *exec;
	int handles;
	bool holds_slot;
	bool busy;         /* a threadpool job works on this run */
	bool exited;       /* exit.json has been seen and handled */
	bool ended;        /* terminal; waiting for handles and jobs */
	int64_t sup_pid;
	int64_t log_offset; /* bytes of output.log stored */
	int64_t log_lines;  /* lines stored */
	char token[33];          /* RUNYARD_RUN_TOKEN; "" until the process is started */
	int64_t tracking_offset; /* bytes of tracking.jsonl stored (tracking.c) */
	enum run_status outcome; /* decided when the process ended */

	/* Inputs being placed in Preparing (inputs.c); NULL: none. */
	struct inputs_job *inputs;

	/* What it asks of the local machine, and what it holds once admitted
	 * (resources.h; docs/scheduling.md). */
	struct res_request req;
	struct res_grant grant;
	bool holds_resources;

	/* Retries (--retries, --retry-on): attempt counts from 1, and a failed
	 * attempt is tried again while attempt <= retries and its kind of
	 * failure is in retry_on (RUN_RETRY_*). attempt_lost: this attempt
	 * was lost to a restart rather than failed by the program. */
	int retries;
	unsigned retry_on;
	int attempt;
	bool attempt_lost;

	/* The runs it waits for while Queued (--after), and how each must end. */
	struct run_dep *after;
	int nafter;

	/* An interactive run (kind "interactive", exec/interactive.c): no
	 * process of the daemon's; the client that started it (a notebook)
	 * writes its tracking file and sends heartbeats. timeout holds the
	 * seconds a heartbeat may be late before the run fails. */
	bool interactive;
	double heartbeat_at; /* the last heartbeat (unix seconds) */

	/* The compute target (target.h); NULL: local. */
	struct target *target;
	void *target_data; /* the target's own state for the run */
};

/* What the state machine tells its subscribers. */
enum run_event {
	/* A transition was persisted; r->status is the new status. */
	RUN_EV_STATUS,
	/* The status was terminal: r has left the daemon's list, and is freed
	 * at the end of the loop's tick once nothing refers to it. */
	RUN_EV_ENDED,
	/* New lines of the run are stored (streams/logs.c). */
	RUN_EV_LOG,
	/* New metric points of the run are stored (streams/tracking.c). */
	RUN_EV_METRIC,
	/* An attempt failed and the run is Queued again for the next one
	 * (run_requeue): what the attempt held is to be given back. Fired
	 * before the RUN_EV_STATUS of its Queued. */
	RUN_EV_REQUEUED,
};

typedef void (*run_event_fn)(void *ud, struct run *r, enum run_event ev);

/* Most runs one run may wait for. */
#define RUN_DEPS_MAX 64

/* A run another waits for, and how it must end: RUN_DEP_OK (Completed),
 * RUN_DEP_FAIL (Failed or Canceled) or RUN_DEP_ANY (any end). */
enum run_dep_when { RUN_DEP_OK, RUN_DEP_ANY, RUN_DEP_FAIL };
struct run_dep {
	int64_t seq;
	enum run_dep_when when;
	bool met;
};
/* "ok", "any", "fail"; -EINVAL for anything else. */
int run_dep_when_parse(const char *name, enum run_dep_when *ret);
const char *run_dep_when_name(enum run_dep_when w);
/* Set r's dependencies (copied). -ENOMEM. */
int run_set_deps(struct run *r, const int64_t *seqs, const char *const *conds, size_t n);

/* The kinds of failure a run may be retried for. "fail" is any failure of
 * the program (its exit, a signal, a timeout, running out of memory),
 * "oom" only running out of memory, "restart" an attempt lost to a restart
 * of runyardd or the machine, "any" all of them. */
enum {
	RUN_RETRY_FAIL = 1u << 0,
	RUN_RETRY_OOM = 1u << 1,
	RUN_RETRY_RESTART = 1u << 2,
};
#define RUN_RETRIES_MAX 100
/* "fail,oom" (names separated by commas) into a mask. -EINVAL, with the
 * offending name in *bad (pointing into text; NULL for an empty list). */
int run_retry_on_parse(const char *text, unsigned *ret, const char **bad);
/* The mask as the canonical list ("fail", "oom,restart", ...) in buf. */
void run_retry_on_name(unsigned mask, char *buf, size_t len);

/* The state of runs/ (subscribers, the runs waiting to be freed, the
 * queue's order), made at start-up. */
int run_events_init(struct daemon *d);
/* Call fn for every event, after the subscribers before it. -ENOSPC past
 * a handful: subscribers are the daemon's parts, not clients. */
int run_subscribe(struct daemon *d, run_event_fn fn, void *ud);
/* Daemon stopping: close the reaper; the runs it still holds, and any
 * released from now on, are freed at once (the loop is only closing). */
void run_events_close(struct daemon *d);

const char *run_status_name(enum run_status s);
/* -EINVAL for a name that is not a status. */
int run_status_parse(const char *name, enum run_status *ret);
bool run_status_terminal(enum run_status s);
/* Whether the state machine has an edge from -> to. Statuses never go back. */
bool run_transition_allowed(enum run_status from, enum run_status to);

/* A new in-memory run, added to the daemon's list. */
struct run *run_create(struct daemon *d, int64_t seq, const char *id, const char *experiment);

/* A run the store says is in flight, as its row describes it, added to the
 * daemon's list. NULL when out of memory or the row does not parse. */
struct run *run_load(struct daemon *d, const struct store_run_row *row);

/* Find an in-flight run by sequence number; NULL when terminal or unknown. */
struct run *run_find(struct daemon *d, int64_t seq);

/* Move to status to: persist it with its time, fire RUN_EV_STATUS, and on
 * a terminal status take the run off the list, fire RUN_EV_ENDED and
 * release it. -EINVAL when the edge is not allowed. */
int run_transition(struct run *r, enum run_status to);

/* The attempt has ended Failed and is to be tried again: keep it in the
 * history as an attempt (store_run_requeue), fire RUN_EV_REQUEUED and the
 * RUN_EV_STATUS of Queued, and put the run back in line. -EINVAL when the
 * run is not between its start and its end. */
int run_requeue(struct run *r);

/* End the run Failed with {code, message, stage = the current status}. */
int run_fail(struct run *r, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Tell the subscribers that lines of the run were stored. */
void run_notify_log(struct run *r);
/* Tell the subscribers that metric points of the run were stored. */
void run_notify_metric(struct run *r);

/* Drop a handle reference or a job reference; once the run has ended and
 * nothing refers to it any more, it is freed at the end of the loop's tick,
 * never inside the callback chain that ended it. */
void run_release(struct run *r);

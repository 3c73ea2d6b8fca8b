/* A run in flight, and the state machine every run follows. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <uv.h>

struct daemon;
struct inputs_job;

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
	struct run *qnext;       /* scheduler queue, while Queued */

	int64_t seq;
	char *id;
	char *experiment;
	char *snapshot;
	enum run_status status;
	int priority;
	double created_at;
	double timeout;
	bool keep;
	cJSON *argv;
	cJSON *env;

	char *dir;     /* state/runs/<id>: the supervisor's files */
	char *workdir; /* dir/work: the process's cwd */

	/* Execution (exec.c). Each handle is embedded and counted in handles;
	 * the run is freed only after every one of them has closed. */
	uv_process_t proc;
	uv_fs_event_t fsev;
	uv_timer_t poll;
	uv_timer_t ingest_later;
	int handles;
	bool proc_alive;   /* we are the supervisor's parent and it runs */
	bool attached;     /* the run dir is watched */
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

	/* The compute target (target.h); NULL: local. */
	struct target *target;
	void *target_data; /* the target's own state for the run */
};

const char *run_status_name(enum run_status s);
/* -EINVAL for a name that is not a status. */
int run_status_parse(const char *name, enum run_status *ret);
bool run_status_terminal(enum run_status s);
/* Whether the state machine has an edge from -> to. Statuses never go back. */
bool run_transition_allowed(enum run_status from, enum run_status to);

/* A new in-memory run, added to the daemon's list. */
struct run *run_create(struct daemon *d, int64_t seq, const char *id, const char *experiment);

/* Find an in-flight run by sequence number; NULL when terminal or unknown. */
struct run *run_find(struct daemon *d, int64_t seq);

/* Move to status to: persist it with its time, tell watchers, and on a
 * terminal status release the run. -EINVAL when the edge is not allowed. */
int run_transition(struct run *r, enum run_status to);

/* End the run Failed with {code, message, stage = the current status}. */
int run_fail(struct run *r, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Drop a handle reference or a job reference; frees the run when it has
 * ended and nothing refers to it any more. */
void run_release(struct run *r);

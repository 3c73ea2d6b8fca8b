/* The run history: one SQLite database in WAL mode. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct store;

/* What a new run is inserted with; it starts Queued. */
struct store_run_new {
	const char *id;
	const char *experiment;
	int priority;
	const char *command_json; /* what the user gave */
	const char *argv_json;    /* what the supervisor executes */
	const char *python;
	const char *source;
	const char *snapshot;
	const char *env_json;
	double timeout; /* 0: none */
	bool keep;
	double created_at;
	const char *skipped_json; /* what the snapshot left out; NULL: none */
	const char *target;         /* a compute target's name; NULL: local */
	const char *resources_json; /* what the run asks of its target */
	const char *kind;           /* "run" (NULL) or "sweep" */
	const char *request_json;   /* a local run's resources (runs/resources.h); NULL: none */
	/* Runs it waits for (--after) and how each must end ("ok", "any",
	 * "fail"); nafter 0: none. */
	const int64_t *after_seq;
	const char *const *after_cond;
	size_t nafter;
	int64_t parent_seq;         /* the sweep it is a trial of; 0: none */
	int retries;                /* attempts after the first (--retries) */
	const char *retry_on;       /* which failures are retried ("fail,oom"); NULL: fail */
	/* Called inside the insert's transaction with the new run's seq, for
	 * writes that must land with it (a sweep's state); NULL: none. */
	int (*in_txn)(void *ud, int64_t seq);
	void *in_txn_ud;
};

/* A stored run as the daemon needs it to carry on after a restart. Strings
 * point into the store's memory and are valid during the callback only. */
struct store_run_row {
	int64_t seq;
	const char *id;
	const char *experiment;
	const char *status;
	int priority;
	const char *argv_json;
	const char *env_json;
	const char *snapshot;
	double timeout;
	bool keep;
	double created_at;
	double started_at;
	int64_t log_offset;
	int64_t log_lines;
	int64_t sup_pid;
	int64_t parent_seq; /* 0: none */
	const char *request_json; /* NULL: the defaults */
	const char *grant_json;   /* NULL: holds nothing */
	int retries;
	const char *retry_on; /* NULL: the default */
	int attempt;          /* 1 for the first */
	const char *kind;     /* "run" or "interactive" */
};

/* How the process ended, as the supervisor recorded it. */
struct store_exit {
	bool has_exit_code;
	int exit_code;
	int signal; /* 0: none */
	double utime, stime;
	int64_t maxrss_kb;
};

/* Open (creating if needed) and migrate the database at path. */
int store_open(const char *path, struct store **ret, char **cause);

/* Finalise every statement and close; accepts NULL. */
void store_close(struct store *s);

/* A second, read-only connection to the database at path, for one thread
 * of the pool to read a consistent snapshot (WAL: the loop's writes go on)
 * without holding the loop: the blob collector's roots, du's sizes. Only
 * the read functions that say so may be called on it; close with
 * store_close. */
int store_open_reader(const char *path, struct store **ret);
/* One snapshot for the reads between them. */
int store_read_begin(struct store *s);
void store_read_end(struct store *s);

/* Short explicit transactions, for writes that must land together. */
int store_begin(struct store *s);
int store_commit(struct store *s);
void store_rollback(struct store *s);

/* Insert a Queued run (creating its experiment) and its first transition. */
int store_run_insert(struct store *s, const struct store_run_new *r, int64_t *ret_seq);

/* Record a status change with its time; sets started_at on Running and
 * ended_at on a terminal status. */
int store_run_transition(struct store *s, int64_t seq, const char *status, double at,
			 bool terminal);

int store_run_set_error(struct store *s, int64_t seq, const char *code, const char *message,
			const char *stage);
int store_run_set_exit(struct store *s, int64_t seq, const struct store_exit *e);
int store_run_set_supervisor(struct store *s, int64_t seq, int64_t pid, int64_t pgid);
/* How the run's resources were enforced (docs/scheduling.md, "Enforcement"):
 * tier "cgroup2", "cgroup1" or "poll", the memory limit in bytes (0: none)
 * and the peak memory in bytes (< 0: not known yet). The run object shows
 * them as "limits"; a run never limited has all three null. */
int store_run_set_limits(struct store *s, int64_t seq, const char *tier, int64_t mem,
			 int64_t peak_mem);

/* Append a chunk of log records (the supervisor's record format) holding
 * lines first_seq..first_seq+nlines-1, and move the run's read offset to
 * new_offset, atomically: after a crash the offset and the lines agree. */
int store_log_append(struct store *s, int64_t seq, int64_t first_seq, int64_t nlines,
		     const void *data, size_t len, int64_t new_offset);

/* Call cb for each chunk holding lines after after_seq, in order, until cb
 * returns non-zero (a positive return stops without error). */
typedef int (*store_chunk_fn)(void *ud, int64_t first_seq, int64_t nlines, const void *data,
			      size_t len);
int store_log_read(struct store *s, int64_t seq, int64_t after_seq, store_chunk_fn cb, void *ud);

int store_artifact_put(struct store *s, int64_t seq, const char *path, int64_t size,
		       const char *sha256, int mode);
int store_artifact_get(struct store *s, int64_t seq, const char *path, char ret_sha[65],
		       int64_t *ret_size);

/* Set a tag (mutable); value NULL removes it. A new key past max_tags
 * (when > 0) is refused with -E2BIG. */
int store_run_tag_set(struct store *s, int64_t seq, const char *key, const char *value,
		      int64_t max_tags);

/* Add a property (immutable): the same value again is a no-op, another
 * value -EEXIST; a new key past max_properties (when > 0) -E2BIG. */
int store_run_property_add(struct store *s, int64_t seq, const char *key, const char *value,
			   int64_t max_properties);

/* The runs seq waits for, in the order given: cb(ud, dep_seq, cond). */
typedef int (*store_dep_fn)(void *ud, int64_t dep_seq, const char *cond);
int store_run_deps(struct store *s, int64_t seq, store_dep_fn cb, void *ud);
/* A run's status into buf (at least 16 bytes); -ENOENT. */
int store_run_status(struct store *s, int64_t seq, char *buf, size_t len);

int store_run_priority_set(struct store *s, int64_t seq, int priority);
/* A queued local run's request (runs/resources.h, as JSON). */
int store_run_request_set(struct store *s, int64_t seq, const char *request_json);

/* A run's error code into buf; "" when it has none. -ENOENT. */
int store_run_error_code(struct store *s, int64_t seq, char *buf, size_t len);

/* The run's attempt has ended with status (its error and exit as recorded):
 * in one transaction keep it in run_attempts, with its transitions and the
 * log lines it wrote, and make the run Queued at `at` for its next attempt,
 * its per-attempt columns cleared. */
int store_run_requeue(struct store *s, int64_t seq, const char *status, double at);

/* What a local run was given when admitted (JSON; NULL: nothing). */
int store_run_grant_set(struct store *s, int64_t seq, const char *grant_json);

/* What the snapshot skipped, as a JSON array of {path, reason}. */
int store_run_set_skipped(struct store *s, int64_t seq, const char *skipped_json);

/* Resolve "17", "#17" or an id to the run's sequence number; -ENOENT. */
int store_run_resolve(struct store *s, const char *ref, int64_t *ret_seq);

/* Non-terminal runs, oldest first, for the scheduler at start. */
typedef int (*store_run_fn)(void *ud, const struct store_run_row *row);
int store_runs_active(struct store *s, store_run_fn cb, void *ud);

/* Read side: rows handed out as the protocol's JSON objects, so a row is
 * read once and not converted twice. */
int store_run_json(struct store *s, int64_t seq, bool transitions, cJSON **ret);
/* parent_seq > 0: only that sweep's children. */
int store_run_list_json(struct store *s, const char *experiment, const char *status,
			int64_t parent_seq, int limit, cJSON **ret);
/* A page of runs, newest first, for the web view: those before seq
 * before (0: from the newest) that pass every filter given (NULL or 0:
 * any), at most limit; each run object also has "tags" and "metrics" (the
 * last value of each numeric scalar series). *ret_next is the before of
 * the next page, 0 when this is the last. */
struct store_run_filter {
	const char *experiment;
	const char *status;
	const char *kind;      /* run, sweep, array */
	const char *tag;       /* a key, or KEY=VALUE */
	const char *text;      /* in the command line */
	int64_t parent_seq;
	/* NULL: by number; else by the last value of this numeric series
	 * (runs without one are left out), ties by number. */
	const char *sort_metric;
	bool ascending; /* else newest, or largest, first */
};
/* Where a page starts: after this run (and, sorting by a metric, value)
 * in the page's order; seq 0: the first page. */
struct store_run_cursor {
	int64_t seq;
	double value;
};
/* A page of runs matching f, at most limit, from the cursor on; ret_next
 * the cursor of the next page (seq 0: none). */
int store_run_page_json(struct store *s, const struct store_run_filter *f,
			const struct store_run_cursor *from, int limit, cJSON **ret,
			struct store_run_cursor *ret_next);
int store_artifacts_json(struct store *s, int64_t seq, cJSON **ret);
int store_experiments_json(struct store *s, cJSON **ret);
int store_counts_json(struct store *s, cJSON **ret);

/* The last SQLite error message, for logs. */
const char *store_errmsg(struct store *s);

/* Tracking: what a run writes from inside (schema version 3,
 * docs/tracking.md). */

/* Most warnings kept per run; later ones are only counted. */
#define STORE_WARNINGS_MAX 100

/* A run's token ("" when it has none yet) and how far its tracking file has
 * been read. */
int store_run_tracking_get(struct store *s, int64_t seq, char ret_token[33],
			   int64_t *ret_offset);
int store_run_token_set(struct store *s, int64_t seq, const char *token);
/* The run a token belongs to; -ENOENT. */
int store_run_by_token(struct store *s, const char *token, int64_t *ret_seq);
int store_run_tracking_offset_set(struct store *s, int64_t seq, int64_t offset);

/* A metric series of a run. kind: scalar, list, row, table or image. */
struct store_metric {
	int64_t id;
	char kind[16];
	int64_t count; /* points stored; the next point's index */
};

/* Find the series name of run seq; with kind non-NULL, create it (with no
 * points) when there is none. -ENOENT when it does not exist and is not
 * created. */
int store_metric_series(struct store *s, int64_t seq, const char *name, const char *kind,
			struct store_metric *ret);

/* One point: index in its series, step, time, and a number or a text
 * (text NULL: the number). */
int store_metric_point_add(struct store *s, int64_t metric_id, int64_t idx, int64_t step,
			   double ts, double num, const char *text);

/* What a batch of points did to a series' summary. */
struct store_metric_summary {
	int64_t count;   /* points in the series now */
	int64_t numeric; /* numeric points added */
	double min, max; /* over the numeric points added, when numeric > 0 */
	int64_t last_step;
	double last_ts;
	double last_num;
	const char *last_text; /* NULL: last_num */
};
int store_metric_summary_update(struct store *s, int64_t metric_id,
				const struct store_metric_summary *sum);

/* Rollups of a numeric series, kept as its points are stored so a chart
 * of any length reads a bounded number of rows (docs/web.md, "Charts"):
 * at each level, the points in buckets of 2^shift consecutive indexes give
 * their count, smallest and largest value with index and step. Points
 * are appended in index order; an accumulator holds the bucket being
 * filled at each level and writes it (merging with what is stored) when
 * the next point leaves it or when flushed, which must happen before the
 * transaction commits. */
#define STORE_ROLLUP_LEVELS 3
extern const int store_rollup_shift[STORE_ROLLUP_LEVELS]; /* 5, 10, 15 */
struct store_rollup_bucket {
	int64_t bucket; /* -1: empty */
	int64_t n;
	double lo, hi;
	int64_t lo_idx, lo_step, hi_idx, hi_step;
};
struct store_rollup {
	int64_t metric_id;
	struct store_rollup_bucket lv[STORE_ROLLUP_LEVELS];
};
void store_rollup_init(struct store_rollup *r, int64_t metric_id);
int store_rollup_add(struct store *s, struct store_rollup *r, int64_t idx, int64_t step, double v);
int store_rollup_flush(struct store *s, struct store_rollup *r);

/* The run's series as [{name, kind, count, last, last_step, last_ts, min,
 * max}] in the order they were first logged; with spark > 1, numeric scalar
 * series also carry "spark": up to spark values sampled evenly. A last value
 * longer than STORE_SUMMARY_VALUE_MAX is left out. */
int store_metrics_json(struct store *s, int64_t seq, int spark, cJSON **ret);

/* Points of one series from index after on, at most limit of them and
 * about max_bytes of values (at least one point): {name, kind, count,
 * points: [{step, ts, value}], next, more}. -ENOENT when the run has no
 * such series. */
int store_metric_points_json(struct store *s, int64_t seq, const char *name, int64_t after,
			     int64_t limit, size_t max_bytes, cJSON **ret);

/* A numeric series drawn in at most max_points points, for a chart:
 * {name, count, points: [[step, value], ...], downsampled}. A longer
 * series is cut into at most (max_points-1)/2 buckets of consecutive points
 * and each bucket gives its smallest and its largest value, in the order
 * they came, so a spike is never smoothed away; the last point is always
 * there. Buckets of more than 32 points are read from the rollups, so the
 * rows read stay under 32 per bucket however long the series. Points
 * that are not numbers are left out. -ENOENT: no series. */
int store_metric_chart_json(struct store *s, int64_t seq, const char *name, int64_t max_points,
			    cJSON **ret);

/* How many series the run has. */
int store_metric_count(struct store *s, int64_t seq, int64_t *ret);

/* Summaries leave out a last value longer than this ("last": null,
 * "last_omitted": true), so a run's summary stays small. */
#define STORE_SUMMARY_VALUE_MAX 1024

/* Record a warning about a run (a tracking line that was skipped); past
 * STORE_WARNINGS_MAX only counted. */
int store_run_warning_add(struct store *s, int64_t seq, double at, const char *message);

/* The database handle, for a subsystem that keeps its own SQL (the model
 * registry and the services: daemon/registry/models.c, daemon/services/services.c). Used from
 * the loop thread only, like the rest of the store. */
struct sqlite3;
struct sqlite3_stmt;
struct sqlite3 *store_db(struct store *s);

/* Prepare sql on the store's connection; NULL on failure, logged as the
 * failure of who (the subsystem's name). */
struct sqlite3_stmt *store_prepare(struct store *s, const char *who, const char *sql);

/* The row of NAME[:VERSION] of a versioned registry (models, datasets):
 * sql_exact binds ?1 name and ?2 version, sql_latest binds ?1 name and
 * orders the newest first; version 0 takes sql_latest. 0 with the row
 * stepped in *ret (the caller finalizes it), -ENOENT, or -EIO. */
int store_find_version(struct store *s, const char *who, const char *sql_exact,
		       const char *sql_latest, const char *name, int64_t version,
		       struct sqlite3_stmt **ret);

/* Compute targets (schema 5, docs/compute-targets.md). */
typedef int (*store_target_fn)(void *ud, const char *name, const char *type,
			       const char *config_json, double created_at);
/* -EEXIST when the name is taken. */
int store_target_insert(struct store *s, const char *name, const char *type,
			const char *config_json, double created_at);
/* -ENOENT when there is none. */
int store_target_delete(struct store *s, const char *name);
int store_targets(struct store *s, store_target_fn cb, void *ud);
/* How many runs of the target have not ended. */
int store_target_active_runs(struct store *s, const char *name, int64_t *ret);
/* The target a run was submitted to, its resources (JSON) and job id (0:
 * none yet), malloc'd; -ENOENT for a local run. */
int store_run_target_get(struct store *s, int64_t seq, char **ret_target,
			 char **ret_resources, int64_t *ret_job_id);
int store_run_job_set(struct store *s, int64_t seq, int64_t job_id);

/* Sweeps (schema 8, docs/sweeps.md). */

/* A sweep still Running, as the controller needs it after a restart;
 * strings valid during the callback only. */
struct store_sweep_row {
	int64_t seq;
	const char *id;
	const char *experiment;
	double created_at, started_at;
	const char *definition;    /* JSON */
	const char *template_json; /* JSON: what every child is made from */
	const char *state;         /* JSON: the sampler's state */
	int64_t trials;            /* children made */
};
typedef int (*store_sweep_fn)(void *ud, const struct store_sweep_row *row);

/* One child of a sweep. */
struct store_trial_row {
	int64_t seq;
	const char *status;
	int64_t trial; /* 0, 1, ... in the order they were made */
	const char *params;
	bool decided; /* the policy stopped it */
};
typedef int (*store_trial_fn)(void *ud, const struct store_trial_row *row);

/* Inside the transaction that inserts the sweep's run (store_run_new's
 * in_txn): its definition, template and first state; it is Running from
 * then on. */
int store_sweep_insert(struct store *s, int64_t seq, const char *definition,
		       const char *template_json, const char *state, double at);
/* Inside the transaction that inserts a child: its trial number and
 * parameters, and the sweep's state after drawing them. */
int store_sweep_trial_add(struct store *s, int64_t sweep_seq, int64_t child_seq, int64_t trial,
			  const char *params, const char *state);
/* The decision that stopped a child (one per child; a second is a no-op). */
int store_sweep_decision_add(struct store *s, int64_t sweep_seq, int64_t child_seq, double at,
			     int64_t interval, const char *policy, const char *message,
			     const char *detail);
int store_sweeps_active(struct store *s, store_sweep_fn cb, void *ud);
int store_sweep_trials(struct store *s, int64_t sweep_seq, store_trial_fn cb, void *ud);
/* Up to max values of run seq's scalar series name from index after on,
 * into ret (room for max); a point that is not a number is NaN. */
int store_metric_numbers(struct store *s, int64_t seq, const char *name, int64_t after,
			 int64_t max, double *ret, int64_t *ret_n);
/* sweep.show (explain false) or sweep.explain's reply; -ENOENT when seq is
 * not a sweep. */
int store_sweep_json(struct store *s, int64_t seq, bool explain, cJSON **ret);
int store_sweep_list_json(struct store *s, const char *experiment, int limit, cJSON **ret);

/* The history's life cycle (store_history.c, docs/operations.md). */

typedef int (*store_seq_fn)(void *ud, int64_t seq);

/* Which runs a batch of rm (or a retention rule) is about; NULL or 0: any. */
struct store_run_select {
	const char *experiment;
	const char *status;
	double before;      /* created before (unix seconds) */
	int64_t parent_seq; /* children of this sweep or array */
	bool top_level;     /* no parent */
	int64_t limit;      /* at most; 0: all */
};
/* cb(ud, seq) for each matching run, oldest first. */
int store_runs_select(struct store *s, const struct store_run_select *q, store_seq_fn cb,
		      void *ud);
/* A sweep's or array's children. */
int store_run_children(struct store *s, int64_t parent, store_seq_fn cb, void *ud);

/* What decides whether a run may go (store_rm_pick_each). */
struct store_rm_info {
	int64_t seq;
	char id[320];
	char status[24];
	char kind[16];
	char experiment[260];
	int64_t parent_seq;
	int64_t models;            /* registered models that came from it */
	char model_names[160];     /* the first few, NAME:VERSION, ... */
	int64_t active_dependents; /* unfinished runs waiting for it (--after) */
	bool keep_dir;             /* submitted with --keep */
	bool keep_tag;             /* tagged keep */
	double created_at;
	bool named;                /* store_rm_pick_each: named, or a child of one named */
	char parent_status[24];    /* store_rm_pick_each: its parent's status, "" for none */
};

/* Choosing the runs of one removal in bulk: begin, add the runs named
 * (named true) and those a selector matches, expand to their children
 * (named when an ancestor is), then each one's store_rm_info in seq order
 * (parents before their children), end. */
int store_rm_pick_begin(struct store *s);
int store_rm_pick_add(struct store *s, int64_t seq, bool named);
int store_rm_pick_select(struct store *s, const struct store_run_select *q);
int store_rm_pick_expand(struct store *s);
int64_t store_rm_pick_count(struct store *s);
typedef int (*store_rm_fn)(void *ud, const struct store_rm_info *in);
int store_rm_pick_each(struct store *s, store_rm_fn cb, void *ud);
void store_rm_pick_end(struct store *s);

/* What deleting seqs[0..n) frees in the store (outputs no other run or
 * model has), for a dry run. */
struct store_rm_estimate {
	int64_t log_bytes;
	int64_t metric_points;
	int64_t output_blobs;
	int64_t output_bytes;
	int64_t snapshots; /* snapshots no other run was submitted from */
};
int store_runs_rm_estimate(struct store *s, const int64_t *seqs, size_t n,
			   struct store_rm_estimate *ret);

/* Delete runs seqs[0..n) and every row of theirs in one transaction; a model
 * that came from one loses its run and gains the property
 * runyard.run_removed (the run's id). With experiment, that experiment's
 * name goes too when no run of it is left. */
int store_runs_delete(struct store *s, const int64_t *seqs, size_t n, const char *experiment,
		      char **cause);

/* Every blob name the store refers to, with what refers to it and whether
 * it may be a snapshot manifest (whose files are then referred to too).
 * Works on a reader (store_open_reader). */
typedef int (*store_root_fn)(void *ud, const char *hex, const char *kind, bool tree);
int store_blob_roots(struct store *s, store_root_fn cb, void *ud);

/* The database's size and the largest experiments and runs (at most limit
 * each): {database_bytes, database_free_bytes, log_bytes, experiments: [...],
 * runs: [...]}. Works on a reader (store_open_reader). */
int store_du_json(struct store *s, const char *experiment, int limit, cJSON **ret);

/* Give up to pages free pages back to the file system (auto_vacuum is
 * INCREMENTAL). */
int store_vacuum_step(struct store *s, int64_t pages);

/* Retention rules (registry/retention.c): 0 is "no such rule". */
struct store_retention {
	double keep_runs_days;   /* --keep-runs-days */
	double keep_failed_days; /* --keep-failed-days */
	int64_t keep_runs;       /* --keep-runs, per experiment */
	double runs_before;      /* resolved: now - keep_runs_days (0: none) */
	double failed_before;    /* now - keep_failed_days (0: none) */
};
/* cb(ud, seq, rule) for each top-level run the rules remove now (at most
 * limit), which is never one a model came from or tagged keep. */
typedef int (*store_retention_fn)(void *ud, int64_t seq, const char *rule);
int store_retention_select(struct store *s, const struct store_retention *q, int64_t limit,
			   store_retention_fn cb, void *ud);
/* run.show's "retention": {rules, kept, reason, removed_after, ...}. */
int store_run_retention_json(struct store *s, int64_t seq, const struct store_retention *q,
			     cJSON *run);

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
int store_run_list_json(struct store *s, const char *experiment, const char *status, int limit,
			cJSON **ret);
int store_artifacts_json(struct store *s, int64_t seq, cJSON **ret);
int store_experiments_json(struct store *s, cJSON **ret);
int store_counts_json(struct store *s, cJSON **ret);

/* The last SQLite error message, for logs. */
const char *store_errmsg(struct store *s);

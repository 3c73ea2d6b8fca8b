/* The store's insides, shared by its files: statements, connection, row helpers. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "store.h"

/* The statements every connection caches, prepared on first use. */
enum stmt_id {
	STMT_BEGIN,
	STMT_COMMIT,
	STMT_ROLLBACK,
	STMT_EXPERIMENT_INSERT,
	STMT_EXPERIMENT_ID,
	STMT_RUN_INSERT,
	STMT_TRANSITION_INSERT,
	STMT_RUN_STATUS,
	STMT_RUN_STARTED,
	STMT_RUN_ENDED,
	STMT_RUN_ERROR,
	STMT_RUN_EXIT,
	STMT_RUN_SUPERVISOR,
	STMT_RUN_LIMITS,
	STMT_LOG_INSERT,
	STMT_LOG_OFFSET,
	STMT_LOG_READ,
	STMT_ARTIFACT_PUT,
	STMT_ARTIFACT_GET,
	STMT_RUN_BY_SEQ,
	STMT_RUN_BY_ID,
	STMT_RUNS_ACTIVE,
	STMT_RUN_JSON,
	STMT_TRANSITIONS,
	STMT_ARTIFACTS,
	STMT_EXPERIMENTS,
	STMT_COUNTS,
	STMT_TAG_SET,
	STMT_TAG_DELETE,
	STMT_PROPERTY_GET,
	STMT_PROPERTY_INSERT,
	STMT_TAGS,
	STMT_PROPERTIES,
	STMT_TAG_COUNT,
	STMT_PROPERTY_COUNT,
	STMT_RUN_SKIPPED,
	/* tracking (schema 3) */
	STMT_TRACKING_GET,
	STMT_TOKEN_SET,
	STMT_RUN_BY_TOKEN,
	STMT_TRACKING_OFFSET,
	STMT_METRIC_GET,
	STMT_METRIC_INSERT,
	STMT_METRIC_UPDATE,
	STMT_POINT_INSERT,
	STMT_METRICS,
	STMT_METRIC_BY_NAME,
	STMT_POINTS,
	STMT_POINT_NUM,
	STMT_ROLLUP_MERGE,
	STMT_ROLLUPS,
	STMT_POINT_LAST_NUM,
	STMT_WARNING_COUNT,
	STMT_WARNING_INSERT,
	STMT_WARNING_DROPPED,
	STMT_WARNINGS,
	STMT_METRIC_COUNT,
	STMT_SWEEP_TRIAL_INSERT,
	STMT_RUN_GRANT,
	STMT_RUN_PRIORITY,
	STMT_RUN_REQUEST,
	STMT_DEP_INSERT,
	STMT_DEPS,
	STMT_DEPS_JSON,
	STMT_STATUS,
	STMT_SWEEP_STATE,
	STMT_SWEEP_PROPERTIES,
	STMT_METRIC_NUMBERS,
	STMT_METRIC_LASTS,
	STMT__MAX,
};

#define RUN_COLUMNS                                                                        \
	"r.seq, r.id, e.name, r.status, r.priority, r.command, r.python, r.source, "       \
	"r.snapshot, r.env, r.timeout, r.keep, r.created_at, r.started_at, r.ended_at, "   \
	"r.exit_code, r.signal, r.error_code, r.error_message, r.error_stage, r.utime, "   \
	"r.stime, r.maxrss_kb, r.log_lines, r.skipped, r.kind, "                         \
	"(SELECT p.id FROM runs p WHERE p.seq = r.parent_seq), r.res_request, r.res_grant, "  \
	"r.limits, r.attempt, r.retries, r.retry_on "
#define RUN_FROM " FROM runs r JOIN experiments e ON e.id = r.experiment_id "

/* The SQL of each cached statement (store.c). */
extern const char *const store_stmt_sql[STMT__MAX];

struct store {
	sqlite3 *db;
	sqlite3_stmt *stmts[STMT__MAX];
	bool reader; /* store_open_reader's: read-only, never checkpoints */
};

/* store.c */
int store_sqlite_errno(int rc);
sqlite3_stmt *store_stmt(struct store *s, enum stmt_id id);
int store_exec_stmt(sqlite3_stmt *st);
const char *store_col_text(sqlite3_stmt *st, int i);
cJSON *store_json_column(sqlite3_stmt *st, int i);
void store_add_int_or_null(cJSON *o, const char *name, sqlite3_stmt *st, int i);
/* The first column of the statement id bound to seq (a count); 0 without a row. */
int store_count_of(struct store *s, enum stmt_id id, int64_t seq, int64_t *ret);

/* store_schema.c: bring the database up to the latest schema version. */
int store_migrate(struct store *s, char **cause);

/* store_tracking.c: the run's warnings, for the detailed run object. */
int store_run_warnings_json(struct store *s, int64_t seq, cJSON *run);

/* store_targets.c: a run's target row, and its part of the run object. */
int store_run_target_insert(struct store *s, int64_t seq, const char *target,
			    const char *resources_json);
int store_run_target_json(struct store *s, int64_t seq, cJSON *run);

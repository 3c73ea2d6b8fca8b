/* The store's connection: opening it (the schema comes from
 * store_schema.c), the table of cached statements every part of the store
 * prepares from, SQLite codes turned into errnos, transactions, the row
 * helpers the other files share, and the raw handle for subsystems that keep
 * their own SQL. The statements themselves are used by store_runs.c,
 * store_tracking.c and store_targets.c. */
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "log.h"
#include "msg.h"
#include "store_priv.h"

const char *const store_stmt_sql[STMT__MAX] = {
	[STMT_BEGIN] = "BEGIN IMMEDIATE",
	[STMT_COMMIT] = "COMMIT",
	[STMT_ROLLBACK] = "ROLLBACK",
	[STMT_EXPERIMENT_INSERT] =
		"INSERT INTO experiments(name, created_at) VALUES(?1, ?2) ON CONFLICT(name) DO NOTHING",
	[STMT_EXPERIMENT_ID] = "SELECT id FROM experiments WHERE name = ?1",
	[STMT_RUN_INSERT] = "INSERT INTO runs(id, experiment_id, status, priority, command, argv, "
			    "python, source, snapshot, env, timeout, keep, created_at, skipped, kind, "
			    "parent_seq, res_request, retries, retry_on) "
			    "VALUES(?1, ?2, 'Queued', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, "
			    "?14, ?15, ?16, ?17, ?18)",
	[STMT_TRANSITION_INSERT] =
		"INSERT INTO transitions(run_seq, status, at) VALUES(?1, ?2, ?3) "
		"ON CONFLICT(run_seq, status) DO NOTHING",
	[STMT_RUN_STATUS] = "UPDATE runs SET status = ?2 WHERE seq = ?1",
	[STMT_RUN_STARTED] = "UPDATE runs SET started_at = ?2 WHERE seq = ?1 AND started_at IS NULL",
	[STMT_RUN_ENDED] = "UPDATE runs SET ended_at = ?2 WHERE seq = ?1",
	[STMT_RUN_ERROR] = "UPDATE runs SET error_code = ?2, error_message = ?3, error_stage = ?4 "
			   "WHERE seq = ?1",
	[STMT_RUN_EXIT] = "UPDATE runs SET exit_code = ?2, signal = ?3, utime = ?4, stime = ?5, "
			  "maxrss_kb = ?6 WHERE seq = ?1",
	[STMT_RUN_SUPERVISOR] = "UPDATE runs SET sup_pid = ?2, pgid = ?3 WHERE seq = ?1",
	[STMT_RUN_LIMITS] = "UPDATE runs SET limits = ?2 WHERE seq = ?1",
	[STMT_LOG_INSERT] =
		"INSERT INTO log_chunks(run_seq, first_seq, nlines, data) VALUES(?1, ?2, ?3, ?4)",
	[STMT_LOG_OFFSET] = "UPDATE runs SET log_offset = ?2, log_lines = ?3 WHERE seq = ?1",
	[STMT_LOG_READ] = "SELECT first_seq, nlines, data FROM log_chunks "
			  "WHERE run_seq = ?1 AND first_seq + nlines > ?2 + 1 ORDER BY first_seq",
	[STMT_ARTIFACT_PUT] = "INSERT OR REPLACE INTO artifacts(run_seq, path, size, sha256, mode) "
			      "VALUES(?1, ?2, ?3, ?4, ?5)",
	[STMT_ARTIFACT_GET] = "SELECT sha256, size FROM artifacts WHERE run_seq = ?1 AND path = ?2",
	[STMT_RUN_BY_SEQ] = "SELECT seq FROM runs WHERE seq = ?1",
	[STMT_RUN_BY_ID] = "SELECT seq FROM runs WHERE id = ?1",
	[STMT_RUNS_ACTIVE] =
		"SELECT r.seq, r.id, e.name, r.status, r.priority, r.argv, r.env, r.snapshot, "
		"r.timeout, r.keep, r.created_at, r.started_at, r.log_offset, r.log_lines, r.sup_pid, "
		"r.parent_seq, r.res_request, r.res_grant, r.retries, r.retry_on, r.attempt, r.kind"
		RUN_FROM "WHERE r.status NOT IN ('Completed', 'Failed', 'Canceled') "
		"AND r.kind IN ('run', 'interactive') "
		"ORDER BY r.seq",
	[STMT_RUN_JSON] = "SELECT " RUN_COLUMNS RUN_FROM "WHERE r.seq = ?1",
	[STMT_TRANSITIONS] = "SELECT status, at FROM transitions WHERE run_seq = ?1 ORDER BY at, "
			     "CASE status WHEN 'Queued' THEN 0 WHEN 'Preparing' THEN 1 "
			     "WHEN 'Scaling' THEN 2 WHEN 'Running' THEN 3 "
			     "WHEN 'CancelRequested' THEN 4 WHEN 'Finalizing' THEN 5 ELSE 6 END",
	[STMT_ARTIFACTS] = "SELECT path, size, sha256, mode FROM artifacts WHERE run_seq = ?1 "
			   "ORDER BY path",
	[STMT_EXPERIMENTS] = "SELECT e.name, COUNT(r.seq), MAX(r.created_at) FROM experiments e "
			     "LEFT JOIN runs r ON r.experiment_id = e.id GROUP BY e.id ORDER BY e.name",
	[STMT_COUNTS] = "SELECT status, COUNT(*) FROM runs WHERE kind = 'run' GROUP BY status",
	[STMT_TAG_SET] = "INSERT INTO run_tags(run_seq, key, value) VALUES(?1, ?2, ?3) "
			 "ON CONFLICT(run_seq, key) DO UPDATE SET value = excluded.value",
	[STMT_TAG_DELETE] = "DELETE FROM run_tags WHERE run_seq = ?1 AND key = ?2",
	[STMT_PROPERTY_GET] = "SELECT value FROM run_properties WHERE run_seq = ?1 AND key = ?2",
	[STMT_PROPERTY_INSERT] =
		"INSERT INTO run_properties(run_seq, key, value) VALUES(?1, ?2, ?3)",
	[STMT_TAGS] = "SELECT key, value FROM run_tags WHERE run_seq = ?1 ORDER BY key",
	[STMT_PROPERTIES] = "SELECT key, value FROM run_properties WHERE run_seq = ?1 ORDER BY key",
	[STMT_TAG_COUNT] = "SELECT COUNT(*) FROM run_tags WHERE run_seq = ?1",
	[STMT_PROPERTY_COUNT] = "SELECT COUNT(*) FROM run_properties WHERE run_seq = ?1",
	[STMT_RUN_SKIPPED] = "UPDATE runs SET skipped = ?2 WHERE seq = ?1",
	[STMT_TRACKING_GET] = "SELECT token, tracking_offset FROM runs WHERE seq = ?1",
	[STMT_TOKEN_SET] = "UPDATE runs SET token = ?2 WHERE seq = ?1",
	[STMT_RUN_BY_TOKEN] = "SELECT seq FROM runs WHERE token = ?1",
	[STMT_TRACKING_OFFSET] = "UPDATE runs SET tracking_offset = ?2 WHERE seq = ?1",
	[STMT_METRIC_GET] = "SELECT id, kind, count FROM metrics WHERE run_seq = ?1 AND name = ?2",
	[STMT_METRIC_INSERT] = "INSERT INTO metrics(run_seq, name, kind) VALUES(?1, ?2, ?3)",
	[STMT_METRIC_UPDATE] =
		"UPDATE metrics SET count = ?2, numeric = numeric + ?3, "
		"min = coalesce(min(min, ?4), min, ?4), max = coalesce(max(max, ?5), max, ?5), "
		"last_step = ?6, last_ts = ?7, last_num = ?8, last_text = ?9 WHERE id = ?1",
	[STMT_POINT_INSERT] = "INSERT INTO metric_points(metric_id, idx, step, ts, num, text) "
			      "VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
	[STMT_METRICS] = "SELECT id, name, kind, count, numeric, min, max, last_step, last_ts, "
			 "last_num, last_text FROM metrics WHERE run_seq = ?1 ORDER BY id",
	[STMT_METRIC_BY_NAME] = "SELECT id, name, kind, count, numeric, min, max, last_step, "
				"last_ts, last_num, last_text FROM metrics "
				"WHERE run_seq = ?1 AND name = ?2",
	[STMT_POINTS] = "SELECT idx, step, ts, num, text FROM metric_points "
			"WHERE metric_id = ?1 AND idx >= ?2 ORDER BY idx LIMIT ?3",
	[STMT_POINT_NUM] = "SELECT num FROM metric_points WHERE metric_id = ?1 AND idx = ?2",
	/* Ties keep the stored extreme: the earlier point, as a scan would. */
	[STMT_ROLLUP_MERGE] =
	    "INSERT INTO metric_rollups(metric_id, shift, bucket, n, lo, lo_idx, lo_step, hi, "
	    "hi_idx, hi_step) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
	    "ON CONFLICT DO UPDATE SET n = n + excluded.n, "
	    "lo_idx = iif(excluded.lo < lo, excluded.lo_idx, lo_idx), "
	    "lo_step = iif(excluded.lo < lo, excluded.lo_step, lo_step), "
	    "lo = min(lo, excluded.lo), "
	    "hi_idx = iif(excluded.hi > hi, excluded.hi_idx, hi_idx), "
	    "hi_step = iif(excluded.hi > hi, excluded.hi_step, hi_step), "
	    "hi = max(hi, excluded.hi)",
	[STMT_ROLLUPS] = "SELECT bucket, lo, lo_idx, lo_step, hi, hi_idx, hi_step FROM metric_rollups "
			 "WHERE metric_id = ?1 AND shift = ?2 ORDER BY bucket",
	[STMT_POINT_LAST_NUM] = "SELECT idx, step, num FROM metric_points WHERE metric_id = ?1 "
				"AND num IS NOT NULL ORDER BY idx DESC LIMIT 1",
	[STMT_WARNING_COUNT] = "SELECT COUNT(*) FROM run_warnings WHERE run_seq = ?1",
	[STMT_WARNING_INSERT] = "INSERT INTO run_warnings(run_seq, at, message) VALUES(?1, ?2, ?3)",
	[STMT_WARNING_DROPPED] =
		"UPDATE runs SET warnings_dropped = warnings_dropped + 1 WHERE seq = ?1",
	[STMT_METRIC_COUNT] = "SELECT COUNT(*) FROM metrics WHERE run_seq = ?1",
	[STMT_WARNINGS] = "SELECT at, message, (SELECT warnings_dropped FROM runs WHERE seq = ?1) "
			  "FROM run_warnings WHERE run_seq = ?1 ORDER BY rowid",
	[STMT_SWEEP_TRIAL_INSERT] = "INSERT INTO sweep_trials(child_seq, sweep_seq, trial, params) "
				    "VALUES(?1, ?2, ?3, ?4)",
	[STMT_RUN_GRANT] = "UPDATE runs SET res_grant = ?2 WHERE seq = ?1",
	[STMT_RUN_PRIORITY] = "UPDATE runs SET priority = ?2 WHERE seq = ?1",
	[STMT_RUN_REQUEST] = "UPDATE runs SET res_request = ?2 WHERE seq = ?1",
	[STMT_DEP_INSERT] = "INSERT INTO run_deps(run_seq, idx, dep_seq, cond) VALUES(?1, ?2, ?3, ?4)",
	[STMT_DEPS] = "SELECT dep_seq, cond FROM run_deps WHERE run_seq = ?1 ORDER BY idx",
	[STMT_DEPS_JSON] = "SELECT r.id, d.dep_seq, d.cond, r.status FROM run_deps d "
			   "JOIN runs r ON r.seq = d.dep_seq WHERE d.run_seq = ?1 ORDER BY d.idx",
	[STMT_STATUS] = "SELECT status FROM runs WHERE seq = ?1",
	[STMT_SWEEP_STATE] = "UPDATE sweeps SET state = ?2, trials = ?3 WHERE run_seq = ?1",
	[STMT_SWEEP_PROPERTIES] = "INSERT INTO run_properties(run_seq, key, value) "
				  "SELECT ?1, key, value FROM run_properties WHERE run_seq = ?2 "
				  "ON CONFLICT(run_seq, key) DO NOTHING",
	[STMT_METRIC_NUMBERS] = "SELECT p.num, p.text FROM metrics m "
				"JOIN metric_points p ON p.metric_id = m.id "
				"WHERE m.run_seq = ?1 AND m.name = ?2 AND m.kind = 'scalar' "
				"AND p.idx >= ?3 ORDER BY p.idx LIMIT ?4",
	/* A run's last numbers, for the columns of a page of runs. */
	[STMT_METRIC_LASTS] = "SELECT name, last_num FROM metrics WHERE run_seq = ?1 "
			      "AND kind = 'scalar' AND last_text IS NULL AND last_num IS NOT NULL "
			      "ORDER BY id LIMIT 32",
};

/* SQLite codes become negative errnos where they enter our modules. */
int store_sqlite_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return 0;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_TOOBIG:
		return -E2BIG;
	default:
		return -EIO;
	}
}

/* The prepared statement for id, reset and with its bindings cleared. */
sqlite3_stmt *store_stmt(struct store *s, enum stmt_id id)
{
	sqlite3_stmt *st = s->stmts[id];

	if (!st) {
		if (sqlite3_prepare_v3(s->db, store_stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
				       &st, NULL) != SQLITE_OK) {
			return NULL;
		}
		s->stmts[id] = st;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

/* Step a statement that returns no rows, then reset it. */
int store_exec_stmt(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : store_sqlite_errno(rc);
}

int store_open(const char *path, struct store **ret, char **cause)
{
	struct store *s = calloc(1, sizeof(*s));
	int rc, r;

	if (!s) {
		return -ENOMEM;
	}
	rc = sqlite3_open_v2(path, &s->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		if (cause) {
			*cause = msg_strdupf("cannot open the database %s: %s", path,
					     s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		}
		r = store_sqlite_errno(rc) ? store_sqlite_errno(rc) : -EIO;
		goto fail;
	}
	sqlite3_busy_timeout(s->db, 5000);
	/* WAL with synchronous=NORMAL: a committed transaction survives the
	 * daemon being killed at any moment; only a power cut can take the
	 * last few, and never corrupts. That keeps commits off fsync. */
	/* auto_vacuum first: on a new database it takes effect with the first
	 * table, so only stores made before it need the migration's VACUUM. */
	rc = sqlite3_exec(s->db,
			  "PRAGMA auto_vacuum = INCREMENTAL;"
			  "PRAGMA journal_mode = WAL;"
			  "PRAGMA synchronous = NORMAL;"
			  "PRAGMA foreign_keys = ON;"
			  "PRAGMA temp_store = MEMORY;",
			  NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		if (cause) {
			*cause = msg_strdupf("cannot set up the database %s: %s", path,
					     sqlite3_errmsg(s->db));
		}
		r = store_sqlite_errno(rc) ? store_sqlite_errno(rc) : -EIO;
		goto fail;
	}
	r = store_migrate(s, cause);
	if (r < 0) {
		goto fail;
	}
	*ret = s;
	return 0;
fail:
	store_close(s);
	return r;
}

int store_open_reader(const char *path, struct store **ret)
{
	struct store *s = calloc(1, sizeof(*s));
	int rc;

	if (!s) {
		return -ENOMEM;
	}
	s->reader = true;
	rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		store_close(s);
		return store_sqlite_errno(rc) ? store_sqlite_errno(rc) : -EIO;
	}
	sqlite3_busy_timeout(s->db, 5000);
	*ret = s;
	return 0;
}

int store_read_begin(struct store *s)
{
	/* BEGIN, then a first read: the snapshot is taken here, not later */
	int rc = sqlite3_exec(s->db, "BEGIN; SELECT COUNT(*) FROM sqlite_master;", NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : (store_sqlite_errno(rc) ? store_sqlite_errno(rc) : -EIO);
}

void store_read_end(struct store *s)
{
	sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
}

void store_close(struct store *s)
{
	if (!s) {
		return;
	}
	for (int i = 0; i < STMT__MAX; i++) {
		sqlite3_finalize(s->stmts[i]);
	}
	if (s->db && s->reader) {
		sqlite3_close(s->db);
	} else if (s->db) {
		/* Fold the WAL back so the file stands alone after a clean stop. */
		sqlite3_exec(s->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
		sqlite3_close(s->db);
	}
	free(s);
}

const char *store_errmsg(struct store *s)
{
	return s && s->db ? sqlite3_errmsg(s->db) : "no database";
}

int store_begin(struct store *s)
{
	sqlite3_stmt *st = store_stmt(s, STMT_BEGIN);
	return st ? store_exec_stmt(st) : -EIO;
}

int store_commit(struct store *s)
{
	sqlite3_stmt *st = store_stmt(s, STMT_COMMIT);
	return st ? store_exec_stmt(st) : -EIO;
}

void store_rollback(struct store *s)
{
	sqlite3_stmt *st = store_stmt(s, STMT_ROLLBACK);
	if (st) {
		store_exec_stmt(st);
	}
}

const char *store_col_text(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

/* Parse a JSON column, falling back to null if it is somehow not JSON. */
cJSON *store_json_column(sqlite3_stmt *st, int i)
{
	const char *t = store_col_text(st, i);
	cJSON *j = t ? cJSON_Parse(t) : NULL;
	return j ? j : cJSON_CreateNull();
}

void store_add_int_or_null(cJSON *o, const char *name, sqlite3_stmt *st, int i)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL) {
		cJSON_AddNullToObject(o, name);
	} else {
		cJSON_AddNumberToObject(o, name, (double)sqlite3_column_int64(st, i));
	}
}

int store_count_of(struct store *s, enum stmt_id id, int64_t seq, int64_t *ret)
{
	sqlite3_stmt *st = store_stmt(s, id);

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	*ret = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	return 0;
}

sqlite3 *store_db(struct store *s)
{
	return s->db;
}

sqlite3_stmt *store_prepare(struct store *s, const char *who, const char *sql)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		log_error("%s: preparing a statement failed: %s", who, sqlite3_errmsg(s->db));
		return NULL;
	}
	return st;
}

int store_find_version(struct store *s, const char *who, const char *sql_exact,
		       const char *sql_latest, const char *name, int64_t version,
		       sqlite3_stmt **ret)
{
	sqlite3_stmt *st = store_prepare(s, who, version ? sql_exact : sql_latest);
	int rc;

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	if (version) {
		sqlite3_bind_int64(st, 2, version);
	}
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(st);
		return rc == SQLITE_DONE ? -ENOENT : -EIO;
	}
	*ret = st;
	return 0;
}

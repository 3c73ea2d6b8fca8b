#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "log.h"
#include "msg.h"

/* Forward migrations: entry i takes the schema from user_version i to i+1.
 * Never edit an entry once released; append a new one. */
static const char *const migrations[] = {
	"CREATE TABLE experiments("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  created_at REAL NOT NULL);"
	"CREATE TABLE runs("
	"  seq INTEGER PRIMARY KEY,"
	"  id TEXT NOT NULL UNIQUE,"
	"  experiment_id INTEGER NOT NULL REFERENCES experiments(id),"
	"  status TEXT NOT NULL,"
	"  priority INTEGER NOT NULL DEFAULT 0,"
	"  command TEXT NOT NULL,"
	"  argv TEXT NOT NULL,"
	"  python TEXT NOT NULL,"
	"  source TEXT NOT NULL,"
	"  snapshot TEXT NOT NULL,"
	"  env TEXT NOT NULL DEFAULT '{}',"
	"  timeout REAL,"
	"  keep INTEGER NOT NULL DEFAULT 0,"
	"  created_at REAL NOT NULL,"
	"  started_at REAL,"
	"  ended_at REAL,"
	"  exit_code INTEGER,"
	"  signal INTEGER,"
	"  error_code TEXT,"
	"  error_message TEXT,"
	"  error_stage TEXT,"
	"  utime REAL,"
	"  stime REAL,"
	"  maxrss_kb INTEGER,"
	"  sup_pid INTEGER,"
	"  pgid INTEGER,"
	"  log_offset INTEGER NOT NULL DEFAULT 0,"
	"  log_lines INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX runs_by_experiment ON runs(experiment_id, seq);"
	"CREATE INDEX runs_by_status ON runs(status, seq);"
	"CREATE TABLE transitions("
	"  run_seq INTEGER NOT NULL REFERENCES runs(seq),"
	"  status TEXT NOT NULL,"
	"  at REAL NOT NULL,"
	"  PRIMARY KEY(run_seq, status)) WITHOUT ROWID;"
	"CREATE TABLE log_chunks("
	"  run_seq INTEGER NOT NULL REFERENCES runs(seq),"
	"  first_seq INTEGER NOT NULL,"
	"  nlines INTEGER NOT NULL,"
	"  data BLOB NOT NULL,"
	"  UNIQUE(run_seq, first_seq));"
	"CREATE TABLE artifacts("
	"  run_seq INTEGER NOT NULL REFERENCES runs(seq),"
	"  path TEXT NOT NULL,"
	"  size INTEGER NOT NULL,"
	"  sha256 TEXT NOT NULL,"
	"  mode INTEGER NOT NULL,"
	"  PRIMARY KEY(run_seq, path)) WITHOUT ROWID;",

	"CREATE TABLE run_tags("
	"  run_seq INTEGER NOT NULL REFERENCES runs(seq),"
	"  key TEXT NOT NULL,"
	"  value TEXT NOT NULL,"
	"  PRIMARY KEY(run_seq, key)) WITHOUT ROWID;"
	"CREATE TABLE run_properties("
	"  run_seq INTEGER NOT NULL REFERENCES runs(seq),"
	"  key TEXT NOT NULL,"
	"  value TEXT NOT NULL,"
	"  PRIMARY KEY(run_seq, key)) WITHOUT ROWID;"
	"ALTER TABLE runs ADD COLUMN skipped TEXT NOT NULL DEFAULT '[]';",

	/* 3: what runs write from inside (docs/tracking.md). A series per
	 * (run, name) keeps its summary, so listing a run's metrics never
	 * reads its points; points are keyed by (series, index). */
	"ALTER TABLE runs ADD COLUMN token TEXT;"
	"ALTER TABLE runs ADD COLUMN tracking_offset INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE runs ADD COLUMN warnings_dropped INTEGER NOT NULL DEFAULT 0;"
	"CREATE UNIQUE INDEX runs_by_token ON runs(token) WHERE token IS NOT NULL;"
	"CREATE TABLE metrics("
	"  id INTEGER PRIMARY KEY,"
	"  run_seq INTEGER NOT NULL REFERENCES runs(seq),"
	"  name TEXT NOT NULL,"
	"  kind TEXT NOT NULL,"
	"  count INTEGER NOT NULL DEFAULT 0,"
	"  numeric INTEGER NOT NULL DEFAULT 0,"
	"  min REAL,"
	"  max REAL,"
	"  last_step INTEGER,"
	"  last_ts REAL,"
	"  last_num REAL,"
	"  last_text TEXT,"
	"  UNIQUE(run_seq, name));"
	"CREATE TABLE metric_points("
	"  metric_id INTEGER NOT NULL,"
	"  idx INTEGER NOT NULL,"
	"  step INTEGER NOT NULL,"
	"  ts REAL NOT NULL,"
	"  num REAL,"
	"  text TEXT,"
	"  PRIMARY KEY(metric_id, idx)) WITHOUT ROWID;"
	"CREATE TABLE run_warnings("
	"  run_seq INTEGER NOT NULL REFERENCES runs(seq),"
	"  at REAL NOT NULL,"
	"  message TEXT NOT NULL);"
	"CREATE INDEX run_warnings_by_run ON run_warnings(run_seq);",

	/* 4: the model registry and deployed services (docs/models.md). Versions
	 * come from a per-name counter, so a deleted version is never reused. */
	"CREATE TABLE model_names("
	"  name TEXT PRIMARY KEY,"
	"  last_version INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE models("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  name TEXT NOT NULL,"
	"  version INTEGER NOT NULL,"
	"  framework TEXT,"
	"  framework_version TEXT,"
	"  cpu REAL,"
	"  memory_gb REAL,"
	"  description TEXT,"
	"  run_seq INTEGER REFERENCES runs(seq),"
	"  source TEXT NOT NULL,"
	"  created_at REAL NOT NULL,"
	"  UNIQUE(name, version));"
	"CREATE TABLE model_files("
	"  model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,"
	"  path TEXT NOT NULL,"
	"  size INTEGER NOT NULL,"
	"  sha256 TEXT NOT NULL,"
	"  mode INTEGER NOT NULL,"
	"  PRIMARY KEY(model_id, path)) WITHOUT ROWID;"
	"CREATE TABLE model_tags("
	"  model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,"
	"  key TEXT NOT NULL,"
	"  value TEXT NOT NULL,"
	"  PRIMARY KEY(model_id, key)) WITHOUT ROWID;"
	"CREATE TABLE model_properties("
	"  model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,"
	"  key TEXT NOT NULL,"
	"  value TEXT NOT NULL,"
	"  PRIMARY KEY(model_id, key)) WITHOUT ROWID;"
	"CREATE TABLE services("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  name TEXT NOT NULL UNIQUE,"
	"  model_id INTEGER NOT NULL REFERENCES models(id),"
	"  port INTEGER NOT NULL,"
	"  python TEXT NOT NULL,"
	"  entry_script TEXT,"
	"  snapshot TEXT,"
	"  source TEXT,"
	"  timeout REAL NOT NULL,"
	"  healthy_once INTEGER NOT NULL DEFAULT 0,"
	"  created_at REAL NOT NULL,"
	"  updated_at REAL NOT NULL);",

	/* 5: compute targets (docs/compute-targets.md): their definitions,
	 * and which target a run was submitted to, with the resources it
	 * asked for and its job there. Local runs have no row. */
	"CREATE TABLE compute_targets("
	"  name TEXT PRIMARY KEY,"
	"  type TEXT NOT NULL,"
	"  config TEXT NOT NULL,"
	"  created_at REAL NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE run_targets("
	"  run_seq INTEGER PRIMARY KEY REFERENCES runs(seq),"
	"  target TEXT NOT NULL,"
	"  resources TEXT NOT NULL DEFAULT '{}',"
	"  job_id INTEGER);"
	"CREATE INDEX run_targets_by_target ON run_targets(target);",

	/* 6: environments (docs/environments.md): each version of a named
	 * definition, its normalised JSON and that JSON's hash; the last
	 * version given per name, so a deleted version's number is not
	 * reused. */
	"CREATE TABLE environment_names("
	"  name TEXT PRIMARY KEY,"
	"  last_version INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE environments("
	"  name TEXT NOT NULL,"
	"  version INTEGER NOT NULL,"
	"  hash TEXT NOT NULL,"
	"  definition TEXT NOT NULL,"
	"  created_at REAL NOT NULL,"
	"  PRIMARY KEY(name, version)) WITHOUT ROWID;",

	/* 7: datasets and the data of runs (docs/inputs.md). A dataset
	 * version's contents are a manifest (a snapshot id) pinned at
	 * registration; the last version given per name, so a deleted
	 * version's number is not reused. A run's inputs are recorded at
	 * submit (what was asked, a dataset already resolved to its version
	 * and manifest) and completed in Preparing (what was placed); its
	 * outputs to datastores at Finalizing. Neither refers to datasets,
	 * so deleting a version keeps every run's record of what it used. */
	"CREATE TABLE dataset_names("
	"  name TEXT PRIMARY KEY,"
	"  last_version INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE datasets("
	"  name TEXT NOT NULL,"
	"  version INTEGER NOT NULL,"
	"  manifest TEXT NOT NULL,"
	"  files INTEGER NOT NULL,"
	"  bytes INTEGER NOT NULL,"
	"  sources TEXT NOT NULL,"
	"  description TEXT,"
	"  created_at REAL NOT NULL,"
	"  PRIMARY KEY(name, version)) WITHOUT ROWID;"
	"CREATE TABLE run_inputs("
	"  run_seq INTEGER NOT NULL REFERENCES runs(seq),"
	"  idx INTEGER NOT NULL,"
	"  name TEXT NOT NULL,"
	"  source TEXT NOT NULL,"
	"  mode TEXT NOT NULL,"
	"  path TEXT NOT NULL,"
	"  sha256 TEXT,"
	"  dataset TEXT,"
	"  dataset_version INTEGER,"
	"  kind TEXT,"
	"  hash TEXT,"
	"  size INTEGER,"
	"  files INTEGER,"
	"  placed_at REAL,"
	"  PRIMARY KEY(run_seq, idx)) WITHOUT ROWID;"
	"CREATE TABLE run_outputs("
	"  run_seq INTEGER NOT NULL REFERENCES runs(seq),"
	"  name TEXT NOT NULL,"
	"  path TEXT NOT NULL,"
	"  dest TEXT NOT NULL,"
	"  stored TEXT,"
	"  files INTEGER,"
	"  bytes INTEGER,"
	"  manifest TEXT,"
	"  error TEXT,"
	"  PRIMARY KEY(run_seq, name)) WITHOUT ROWID;",
};

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
	STMT_WARNING_COUNT,
	STMT_WARNING_INSERT,
	STMT_WARNING_DROPPED,
	STMT_WARNINGS,
	STMT_METRIC_COUNT,
	STMT__MAX,
};

#define RUN_COLUMNS                                                                        \
	"r.seq, r.id, e.name, r.status, r.priority, r.command, r.python, r.source, "       \
	"r.snapshot, r.env, r.timeout, r.keep, r.created_at, r.started_at, r.ended_at, "   \
	"r.exit_code, r.signal, r.error_code, r.error_message, r.error_stage, r.utime, "   \
	"r.stime, r.maxrss_kb, r.log_lines, r.skipped "
#define RUN_FROM " FROM runs r JOIN experiments e ON e.id = r.experiment_id "

static const char *const stmt_sql[STMT__MAX] = {
	[STMT_BEGIN] = "BEGIN IMMEDIATE",
	[STMT_COMMIT] = "COMMIT",
	[STMT_ROLLBACK] = "ROLLBACK",
	[STMT_EXPERIMENT_INSERT] =
		"INSERT INTO experiments(name, created_at) VALUES(?1, ?2) ON CONFLICT(name) DO NOTHING",
	[STMT_EXPERIMENT_ID] = "SELECT id FROM experiments WHERE name = ?1",
	[STMT_RUN_INSERT] = "INSERT INTO runs(id, experiment_id, status, priority, command, argv, "
			    "python, source, snapshot, env, timeout, keep, created_at, skipped) "
			    "VALUES(?1, ?2, 'Queued', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
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
		"r.timeout, r.keep, r.created_at, r.started_at, r.log_offset, r.log_lines, r.sup_pid"
		RUN_FROM "WHERE r.status NOT IN ('Completed', 'Failed', 'Canceled') ORDER BY r.seq",
	[STMT_RUN_JSON] = "SELECT " RUN_COLUMNS RUN_FROM "WHERE r.seq = ?1",
	[STMT_TRANSITIONS] = "SELECT status, at FROM transitions WHERE run_seq = ?1 ORDER BY at, "
			     "CASE status WHEN 'Queued' THEN 0 WHEN 'Preparing' THEN 1 "
			     "WHEN 'Scaling' THEN 2 WHEN 'Running' THEN 3 "
			     "WHEN 'CancelRequested' THEN 4 WHEN 'Finalizing' THEN 5 ELSE 6 END",
	[STMT_ARTIFACTS] = "SELECT path, size, sha256, mode FROM artifacts WHERE run_seq = ?1 "
			   "ORDER BY path",
	[STMT_EXPERIMENTS] = "SELECT e.name, COUNT(r.seq), MAX(r.created_at) FROM experiments e "
			     "LEFT JOIN runs r ON r.experiment_id = e.id GROUP BY e.id ORDER BY e.name",
	[STMT_COUNTS] = "SELECT status, COUNT(*) FROM runs GROUP BY status",
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
	[STMT_WARNING_COUNT] = "SELECT COUNT(*) FROM run_warnings WHERE run_seq = ?1",
	[STMT_WARNING_INSERT] = "INSERT INTO run_warnings(run_seq, at, message) VALUES(?1, ?2, ?3)",
	[STMT_WARNING_DROPPED] =
		"UPDATE runs SET warnings_dropped = warnings_dropped + 1 WHERE seq = ?1",
	[STMT_METRIC_COUNT] = "SELECT COUNT(*) FROM metrics WHERE run_seq = ?1",
	[STMT_WARNINGS] = "SELECT at, message, (SELECT warnings_dropped FROM runs WHERE seq = ?1) "
			  "FROM run_warnings WHERE run_seq = ?1 ORDER BY rowid",
};

struct store {
	sqlite3 *db;
	sqlite3_stmt *stmts[STMT__MAX];
};

/* SQLite codes become negative errnos where they enter our modules. */
static int sqlite_errno(int rc)
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
static sqlite3_stmt *stmt(struct store *s, enum stmt_id id)
{
	sqlite3_stmt *st = s->stmts[id];

	if (!st) {
		if (sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &st,
				       NULL) != SQLITE_OK) {
			return NULL;
		}
		s->stmts[id] = st;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

/* Step a statement that returns no rows, then reset it. */
static int exec_stmt(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sqlite_errno(rc);
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *v)
{
	if (v) {
		sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
	} else {
		sqlite3_bind_null(st, i);
	}
}

static int migrate(struct store *s, char **cause)
{
	sqlite3_stmt *st = NULL;
	int version = 0, r = 0;
	const int latest = (int)(sizeof(migrations) / sizeof(migrations[0]));

	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK) {
		goto sqlfail;
	}
	if (sqlite3_step(st) == SQLITE_ROW) {
		version = sqlite3_column_int(st, 0);
	}
	sqlite3_finalize(st);
	if (version > latest) {
		if (cause) {
			*cause = msg_strdupf("the database has schema version %d, newer than this "
					     "runyardd knows (%d); use a newer runyardd",
					     version, latest);
		}
		return -EPROTO;
	}
	for (int v = version; v < latest; v++) {
		char *sql = msg_strdupf("BEGIN IMMEDIATE; %s PRAGMA user_version = %d; COMMIT;",
					migrations[v], v + 1);
		if (!sql) {
			return -ENOMEM;
		}
		int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
		free(sql);
		if (rc != SQLITE_OK) {
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
			if (cause) {
				*cause = msg_strdupf("migrating the database to schema version %d "
						     "failed: %s",
						     v + 1, sqlite3_errmsg(s->db));
			}
			return sqlite_errno(rc) ? sqlite_errno(rc) : -EIO;
		}
	}
	return r;
sqlfail:
	if (cause) {
		*cause = msg_strdupf("reading the schema version failed: %s", sqlite3_errmsg(s->db));
	}
	return -EIO;
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
		r = sqlite_errno(rc) ? sqlite_errno(rc) : -EIO;
		goto fail;
	}
	sqlite3_busy_timeout(s->db, 5000);
	/* WAL with synchronous=NORMAL: a committed transaction survives the
	 * daemon being killed at any moment; only a power cut can take the
	 * last few, and never corrupts. That keeps commits off fsync. */
	rc = sqlite3_exec(s->db,
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
		r = sqlite_errno(rc) ? sqlite_errno(rc) : -EIO;
		goto fail;
	}
	r = migrate(s, cause);
	if (r < 0) {
		goto fail;
	}
	*ret = s;
	return 0;
fail:
	store_close(s);
	return r;
}

void store_close(struct store *s)
{
	if (!s) {
		return;
	}
	for (int i = 0; i < STMT__MAX; i++) {
		sqlite3_finalize(s->stmts[i]);
	}
	if (s->db) {
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
	sqlite3_stmt *st = stmt(s, STMT_BEGIN);
	return st ? exec_stmt(st) : -EIO;
}

int store_commit(struct store *s)
{
	sqlite3_stmt *st = stmt(s, STMT_COMMIT);
	return st ? exec_stmt(st) : -EIO;
}

void store_rollback(struct store *s)
{
	sqlite3_stmt *st = stmt(s, STMT_ROLLBACK);
	if (st) {
		exec_stmt(st);
	}
}

static int experiment_ensure(struct store *s, const char *name, double now, int64_t *ret_id)
{
	sqlite3_stmt *st = stmt(s, STMT_EXPERIMENT_INSERT);
	int r;

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_double(st, 2, now);
	r = exec_stmt(st);
	if (r < 0) {
		return r;
	}
	st = stmt(s, STMT_EXPERIMENT_ID);
	if (!st) {
		return -EIO;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return -EIO;
	}
	*ret_id = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return 0;
}

static int transition_insert(struct store *s, int64_t seq, const char *status, double at)
{
	sqlite3_stmt *st = stmt(s, STMT_TRANSITION_INSERT);

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
	sqlite3_bind_double(st, 3, at);
	return exec_stmt(st);
}

static int run_target_insert(struct store *s, int64_t seq, const char *target,
			     const char *resources_json);
static int run_target_json(struct store *s, int64_t seq, cJSON *run);

int store_run_insert(struct store *s, const struct store_run_new *n, int64_t *ret_seq)
{
	int64_t exp_id, seq;
	sqlite3_stmt *st;
	int r = store_begin(s);

	if (r < 0) {
		return r;
	}
	r = experiment_ensure(s, n->experiment, n->created_at, &exp_id);
	if (r < 0) {
		goto fail;
	}
	st = stmt(s, STMT_RUN_INSERT);
	if (!st) {
		r = -EIO;
		goto fail;
	}
	sqlite3_bind_text(st, 1, n->id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, exp_id);
	sqlite3_bind_int(st, 3, n->priority);
	sqlite3_bind_text(st, 4, n->command_json, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 5, n->argv_json, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 6, n->python, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 7, n->source, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 8, n->snapshot, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 9, n->env_json ? n->env_json : "{}", -1, SQLITE_TRANSIENT);
	if (n->timeout > 0) {
		sqlite3_bind_double(st, 10, n->timeout);
	} else {
		sqlite3_bind_null(st, 10);
	}
	sqlite3_bind_int(st, 11, n->keep);
	sqlite3_bind_double(st, 12, n->created_at);
	sqlite3_bind_text(st, 13, n->skipped_json ? n->skipped_json : "[]", -1, SQLITE_TRANSIENT);
	r = exec_stmt(st);
	if (r < 0) {
		goto fail;
	}
	seq = sqlite3_last_insert_rowid(s->db);
	r = transition_insert(s, seq, "Queued", n->created_at);
	if (r < 0) {
		goto fail;
	}
	if (n->target) {
		r = run_target_insert(s, seq, n->target, n->resources_json);
		if (r < 0) {
			goto fail;
		}
	}
	r = store_commit(s);
	if (r < 0) {
		goto fail;
	}
	*ret_seq = seq;
	return 0;
fail:
	store_rollback(s);
	return r;
}

int store_run_transition(struct store *s, int64_t seq, const char *status, double at,
			 bool terminal)
{
	sqlite3_stmt *st;
	int r = store_begin(s);

	if (r < 0) {
		return r;
	}
	st = stmt(s, STMT_RUN_STATUS);
	if (!st) {
		r = -EIO;
		goto fail;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
	if ((r = exec_stmt(st)) < 0) {
		goto fail;
	}
	if ((r = transition_insert(s, seq, status, at)) < 0) {
		goto fail;
	}
	if (strcmp(status, "Running") == 0 || terminal) {
		st = stmt(s, terminal ? STMT_RUN_ENDED : STMT_RUN_STARTED);
		if (!st) {
			r = -EIO;
			goto fail;
		}
		sqlite3_bind_int64(st, 1, seq);
		sqlite3_bind_double(st, 2, at);
		if ((r = exec_stmt(st)) < 0) {
			goto fail;
		}
	}
	return store_commit(s);
fail:
	store_rollback(s);
	return r;
}

int store_run_set_error(struct store *s, int64_t seq, const char *code, const char *message,
			const char *stage)
{
	sqlite3_stmt *st = stmt(s, STMT_RUN_ERROR);

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	bind_text_or_null(st, 2, code);
	bind_text_or_null(st, 3, message);
	bind_text_or_null(st, 4, stage);
	return exec_stmt(st);
}

int store_run_set_exit(struct store *s, int64_t seq, const struct store_exit *e)
{
	sqlite3_stmt *st = stmt(s, STMT_RUN_EXIT);

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	if (e->has_exit_code) {
		sqlite3_bind_int(st, 2, e->exit_code);
	}
	if (e->signal > 0) {
		sqlite3_bind_int(st, 3, e->signal);
	}
	sqlite3_bind_double(st, 4, e->utime);
	sqlite3_bind_double(st, 5, e->stime);
	sqlite3_bind_int64(st, 6, e->maxrss_kb);
	return exec_stmt(st);
}

int store_run_set_supervisor(struct store *s, int64_t seq, int64_t pid, int64_t pgid)
{
	sqlite3_stmt *st = stmt(s, STMT_RUN_SUPERVISOR);

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_int64(st, 2, pid);
	sqlite3_bind_int64(st, 3, pgid);
	return exec_stmt(st);
}

int store_log_append(struct store *s, int64_t seq, int64_t first_seq, int64_t nlines,
		     const void *data, size_t len, int64_t new_offset)
{
	sqlite3_stmt *st;
	int r = store_begin(s);

	if (r < 0) {
		return r;
	}
	if (nlines > 0) {
		st = stmt(s, STMT_LOG_INSERT);
		if (!st) {
			r = -EIO;
			goto fail;
		}
		sqlite3_bind_int64(st, 1, seq);
		sqlite3_bind_int64(st, 2, first_seq);
		sqlite3_bind_int64(st, 3, nlines);
		sqlite3_bind_blob64(st, 4, data, len, SQLITE_STATIC);
		if ((r = exec_stmt(st)) < 0) {
			goto fail;
		}
	}
	st = stmt(s, STMT_LOG_OFFSET);
	if (!st) {
		r = -EIO;
		goto fail;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_int64(st, 2, new_offset);
	sqlite3_bind_int64(st, 3, first_seq + nlines - 1);
	if ((r = exec_stmt(st)) < 0) {
		goto fail;
	}
	return store_commit(s);
fail:
	store_rollback(s);
	return r;
}

int store_log_read(struct store *s, int64_t seq, int64_t after_seq, store_chunk_fn cb, void *ud)
{
	/* Its own statement rather than the cached one: a callback may read
	 * other things from the store while this one is stepping. */
	sqlite3_stmt *st = NULL;
	int r = 0, rc;

	if (sqlite3_prepare_v2(s->db, stmt_sql[STMT_LOG_READ], -1, &st, NULL) != SQLITE_OK) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_int64(st, 2, after_seq);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		r = cb(ud, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
		       sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2));
		if (r != 0) {
			break;
		}
	}
	if (r == 0 && rc != SQLITE_DONE) {
		r = sqlite_errno(rc) ? sqlite_errno(rc) : -EIO;
	}
	sqlite3_finalize(st);
	return r < 0 ? r : 0;
}

int store_artifact_put(struct store *s, int64_t seq, const char *path, int64_t size,
		       const char *sha256, int mode)
{
	sqlite3_stmt *st = stmt(s, STMT_ARTIFACT_PUT);

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_text(st, 2, path, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, size);
	sqlite3_bind_text(st, 4, sha256, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 5, mode);
	return exec_stmt(st);
}

int store_artifact_get(struct store *s, int64_t seq, const char *path, char ret_sha[65],
		       int64_t *ret_size)
{
	sqlite3_stmt *st = stmt(s, STMT_ARTIFACT_GET);
	int r = -ENOENT;

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_text(st, 2, path, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) == SQLITE_ROW) {
		const char *h = (const char *)sqlite3_column_text(st, 0);
		if (h && strlen(h) == 64) {
			memcpy(ret_sha, h, 65);
			*ret_size = sqlite3_column_int64(st, 1);
			r = 0;
		} else {
			r = -EIO;
		}
	}
	sqlite3_reset(st);
	return r;
}

int store_run_resolve(struct store *s, const char *ref, int64_t *ret_seq)
{
	sqlite3_stmt *st;
	const char *p = ref[0] == '#' ? ref + 1 : ref;
	char *end;
	int r = -ENOENT;

	errno = 0;
	long long n = strtoll(p, &end, 10);
	bool numeric = *p && *end == '\0' && errno == 0;

	st = stmt(s, numeric ? STMT_RUN_BY_SEQ : STMT_RUN_BY_ID);
	if (!st) {
		return -EIO;
	}
	if (numeric) {
		sqlite3_bind_int64(st, 1, n);
	} else {
		sqlite3_bind_text(st, 1, ref, -1, SQLITE_TRANSIENT);
	}
	if (sqlite3_step(st) == SQLITE_ROW) {
		*ret_seq = sqlite3_column_int64(st, 0);
		r = 0;
	}
	sqlite3_reset(st);
	return r;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

int store_runs_active(struct store *s, store_run_fn cb, void *ud)
{
	sqlite3_stmt *st = NULL;
	int r = 0, rc;

	if (sqlite3_prepare_v2(s->db, stmt_sql[STMT_RUNS_ACTIVE], -1, &st, NULL) != SQLITE_OK) {
		return -EIO;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_run_row row = {
			.seq = sqlite3_column_int64(st, 0),
			.id = col_text(st, 1),
			.experiment = col_text(st, 2),
			.status = col_text(st, 3),
			.priority = sqlite3_column_int(st, 4),
			.argv_json = col_text(st, 5),
			.env_json = col_text(st, 6),
			.snapshot = col_text(st, 7),
			.timeout = sqlite3_column_double(st, 8),
			.keep = sqlite3_column_int(st, 9) != 0,
			.created_at = sqlite3_column_double(st, 10),
			.started_at = sqlite3_column_double(st, 11),
			.log_offset = sqlite3_column_int64(st, 12),
			.log_lines = sqlite3_column_int64(st, 13),
			.sup_pid = sqlite3_column_int64(st, 14),
		};
		r = cb(ud, &row);
		if (r != 0) {
			break;
		}
	}
	if (r == 0 && rc != SQLITE_DONE) {
		r = sqlite_errno(rc) ? sqlite_errno(rc) : -EIO;
	}
	sqlite3_finalize(st);
	return r < 0 ? r : 0;
}

/* Parse a JSON column, falling back to null if it is somehow not JSON. */
static cJSON *json_column(sqlite3_stmt *st, int i)
{
	const char *t = col_text(st, i);
	cJSON *j = t ? cJSON_Parse(t) : NULL;
	return j ? j : cJSON_CreateNull();
}

static void add_int_or_null(cJSON *o, const char *name, sqlite3_stmt *st, int i)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL) {
		cJSON_AddNullToObject(o, name);
	} else {
		cJSON_AddNumberToObject(o, name, (double)sqlite3_column_int64(st, i));
	}
}

/* One row of RUN_COLUMNS as the protocol's run object. */
static cJSON *run_row_json(sqlite3_stmt *st)
{
	cJSON *o = cJSON_CreateObject();
	double started = sqlite3_column_double(st, 13), ended = sqlite3_column_double(st, 14);

	cJSON_AddStringToObject(o, "id", col_text(st, 1));
	cJSON_AddNumberToObject(o, "seq", (double)sqlite3_column_int64(st, 0));
	cJSON_AddStringToObject(o, "experiment", col_text(st, 2));
	cJSON_AddStringToObject(o, "status", col_text(st, 3));
	cJSON_AddNumberToObject(o, "priority", sqlite3_column_int(st, 4));
	cJSON_AddItemToObject(o, "command", json_column(st, 5));
	cJSON_AddStringToObject(o, "python", col_text(st, 6));
	cJSON_AddStringToObject(o, "source", col_text(st, 7));
	cJSON_AddStringToObject(o, "snapshot", col_text(st, 8));
	if (sqlite3_column_type(st, 10) == SQLITE_NULL) {
		cJSON_AddNullToObject(o, "timeout");
	} else {
		cJSON_AddNumberToObject(o, "timeout", sqlite3_column_double(st, 10));
	}
	cJSON_AddItemToObject(o, "env", json_column(st, 9));
	cJSON_AddBoolToObject(o, "keep", sqlite3_column_int(st, 11) != 0);
	msg_add_time(o, "created_at", sqlite3_column_double(st, 12));
	msg_add_time(o, "started_at", started);
	msg_add_time(o, "ended_at", ended);
	if (started > 0 && ended > 0) {
		cJSON_AddNumberToObject(o, "duration", ended - started);
	} else {
		cJSON_AddNullToObject(o, "duration");
	}
	add_int_or_null(o, "exit_code", st, 15);
	add_int_or_null(o, "signal", st, 16);
	if (sqlite3_column_type(st, 17) == SQLITE_NULL) {
		cJSON_AddNullToObject(o, "error");
	} else {
		cJSON *e = cJSON_AddObjectToObject(o, "error");
		cJSON_AddStringToObject(e, "code", col_text(st, 17));
		cJSON_AddStringToObject(e, "message", col_text(st, 18) ? col_text(st, 18) : "");
		if (col_text(st, 19)) {
			cJSON_AddStringToObject(e, "stage", col_text(st, 19));
		} else {
			cJSON_AddNullToObject(e, "stage");
		}
	}
	if (sqlite3_column_type(st, 20) == SQLITE_NULL) {
		cJSON_AddNullToObject(o, "usage");
	} else {
		cJSON *u = cJSON_AddObjectToObject(o, "usage");
		cJSON_AddNumberToObject(u, "utime", sqlite3_column_double(st, 20));
		cJSON_AddNumberToObject(u, "stime", sqlite3_column_double(st, 21));
		cJSON_AddNumberToObject(u, "maxrss_kb", (double)sqlite3_column_int64(st, 22));
	}
	cJSON_AddNumberToObject(o, "log_lines", (double)sqlite3_column_int64(st, 23));
	cJSON_AddItemToObject(o, "skipped", json_column(st, 24));
	return o;
}

static int warnings_json(struct store *s, int64_t seq, cJSON *run);

int store_run_json(struct store *s, int64_t seq, bool transitions, cJSON **ret)
{
	sqlite3_stmt *st = stmt(s, STMT_RUN_JSON);
	cJSON *o;

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return -ENOENT;
	}
	o = run_row_json(st);
	sqlite3_reset(st);
	if (transitions) {
		/* The detailed view also carries the key-value pairs. */
		static const enum stmt_id kv[2] = {STMT_TAGS, STMT_PROPERTIES};
		static const char *const names[2] = {"tags", "properties"};
		for (int k = 0; k < 2; k++) {
			cJSON *m = cJSON_AddObjectToObject(o, names[k]);
			st = stmt(s, kv[k]);
			if (!st) {
				cJSON_Delete(o);
				return -EIO;
			}
			sqlite3_bind_int64(st, 1, seq);
			while (sqlite3_step(st) == SQLITE_ROW) {
				cJSON_AddStringToObject(m, col_text(st, 0), col_text(st, 1));
			}
			sqlite3_reset(st);
		}
		cJSON *t = cJSON_AddObjectToObject(o, "transitions");
		st = stmt(s, STMT_TRANSITIONS);
		if (!st) {
			cJSON_Delete(o);
			return -EIO;
		}
		sqlite3_bind_int64(st, 1, seq);
		while (sqlite3_step(st) == SQLITE_ROW) {
			msg_add_time(t, col_text(st, 0), sqlite3_column_double(st, 1));
		}
		sqlite3_reset(st);
		if (warnings_json(s, seq, o) < 0) {
			cJSON_Delete(o);
			return -EIO;
		}
		if (run_target_json(s, seq, o) < 0) {
			cJSON_Delete(o);
			return -EIO;
		}
	}
	*ret = o;
	return 0;
}

int store_run_list_json(struct store *s, const char *experiment, const char *status, int limit,
			cJSON **ret)
{
	/* Built per call: the filters change its shape, and listing is rare. */
	char sql[1024];
	sqlite3_stmt *st = NULL;
	cJSON *arr;
	int i = 1, rc;

	snprintf(sql, sizeof(sql), "SELECT " RUN_COLUMNS RUN_FROM "WHERE 1 %s %s ORDER BY r.seq DESC LIMIT ?",
		 experiment ? "AND e.name = ?" : "", status ? "AND r.status = ?" : "");
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		return -EIO;
	}
	if (experiment) {
		sqlite3_bind_text(st, i++, experiment, -1, SQLITE_TRANSIENT);
	}
	if (status) {
		sqlite3_bind_text(st, i++, status, -1, SQLITE_TRANSIENT);
	}
	sqlite3_bind_int(st, i, limit);
	arr = cJSON_CreateArray();
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		cJSON_AddItemToArray(arr, run_row_json(st));
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		cJSON_Delete(arr);
		return sqlite_errno(rc) ? sqlite_errno(rc) : -EIO;
	}
	*ret = arr;
	return 0;
}

int store_artifacts_json(struct store *s, int64_t seq, cJSON **ret)
{
	sqlite3_stmt *st = stmt(s, STMT_ARTIFACTS);
	cJSON *arr;

	if (!st) {
		return -EIO;
	}
	arr = cJSON_CreateArray();
	sqlite3_bind_int64(st, 1, seq);
	while (sqlite3_step(st) == SQLITE_ROW) {
		cJSON *a = cJSON_CreateObject();
		cJSON_AddStringToObject(a, "path", col_text(st, 0));
		cJSON_AddNumberToObject(a, "size", (double)sqlite3_column_int64(st, 1));
		cJSON_AddStringToObject(a, "sha256", col_text(st, 2));
		cJSON_AddNumberToObject(a, "mode", sqlite3_column_int(st, 3));
		cJSON_AddItemToArray(arr, a);
	}
	sqlite3_reset(st);
	*ret = arr;
	return 0;
}

int store_experiments_json(struct store *s, cJSON **ret)
{
	sqlite3_stmt *st = stmt(s, STMT_EXPERIMENTS);
	cJSON *arr;

	if (!st) {
		return -EIO;
	}
	arr = cJSON_CreateArray();
	while (sqlite3_step(st) == SQLITE_ROW) {
		cJSON *e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "name", col_text(st, 0));
		cJSON_AddNumberToObject(e, "runs", (double)sqlite3_column_int64(st, 1));
		msg_add_time(e, "last_run_at", sqlite3_column_double(st, 2));
		cJSON_AddItemToArray(arr, e);
	}
	sqlite3_reset(st);
	*ret = arr;
	return 0;
}

int store_counts_json(struct store *s, cJSON **ret)
{
	sqlite3_stmt *st = stmt(s, STMT_COUNTS);
	cJSON *o;

	if (!st) {
		return -EIO;
	}
	o = cJSON_CreateObject();
	while (sqlite3_step(st) == SQLITE_ROW) {
		cJSON_AddNumberToObject(o, col_text(st, 0), (double)sqlite3_column_int64(st, 1));
	}
	sqlite3_reset(st);
	*ret = o;
	return 0;
}

static int count_of(struct store *s, enum stmt_id id, int64_t seq, int64_t *ret)
{
	sqlite3_stmt *st = stmt(s, id);

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	*ret = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	return 0;
}

int store_run_tag_set(struct store *s, int64_t seq, const char *key, const char *value,
		      int64_t max_tags)
{
	sqlite3_stmt *st;
	int64_t n;
	int r;

	if (!value) {
		st = stmt(s, STMT_TAG_DELETE);
		if (!st) {
			return -EIO;
		}
		sqlite3_bind_int64(st, 1, seq);
		sqlite3_bind_text(st, 2, key, -1, SQLITE_TRANSIENT);
		return exec_stmt(st);
	}
	if (max_tags > 0) {
		/* A new key past the limit is refused; updating one is not. */
		sqlite3_stmt *g = stmt(s, STMT_TAGS);
		bool exists = false;
		if (!g) {
			return -EIO;
		}
		sqlite3_bind_int64(g, 1, seq);
		while (!exists && sqlite3_step(g) == SQLITE_ROW) {
			exists = strcmp(col_text(g, 0), key) == 0;
		}
		sqlite3_reset(g);
		if (!exists) {
			if ((r = count_of(s, STMT_TAG_COUNT, seq, &n)) < 0) {
				return r;
			}
			if (n >= max_tags) {
				return -E2BIG;
			}
		}
	}
	st = stmt(s, STMT_TAG_SET);
	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, value, -1, SQLITE_TRANSIENT);
	return exec_stmt(st);
}

int store_run_property_add(struct store *s, int64_t seq, const char *key, const char *value,
			   int64_t max_properties)
{
	sqlite3_stmt *st = stmt(s, STMT_PROPERTY_GET);
	int64_t n;
	int r;

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) == SQLITE_ROW) {
		/* Properties are immutable: the same value again is fine. */
		bool same = strcmp(col_text(st, 0), value) == 0;
		sqlite3_reset(st);
		return same ? 0 : -EEXIST;
	}
	sqlite3_reset(st);
	if (max_properties > 0) {
		if ((r = count_of(s, STMT_PROPERTY_COUNT, seq, &n)) < 0) {
			return r;
		}
		if (n >= max_properties) {
			return -E2BIG;
		}
	}
	st = stmt(s, STMT_PROPERTY_INSERT);
	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, value, -1, SQLITE_TRANSIENT);
	return exec_stmt(st);
}

int store_run_set_skipped(struct store *s, int64_t seq, const char *skipped_json)
{
	sqlite3_stmt *st = stmt(s, STMT_RUN_SKIPPED);

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_text(st, 2, skipped_json, -1, SQLITE_TRANSIENT);
	return exec_stmt(st);
}

/* Tracking (schema version 3). */

int store_run_tracking_get(struct store *s, int64_t seq, char ret_token[33], int64_t *ret_offset)
{
	sqlite3_stmt *st = stmt(s, STMT_TRACKING_GET);
	int r = -ENOENT;

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	if (sqlite3_step(st) == SQLITE_ROW) {
		const char *t = col_text(st, 0);
		snprintf(ret_token, 33, "%s", t && strlen(t) == 32 ? t : "");
		*ret_offset = sqlite3_column_int64(st, 1);
		r = 0;
	}
	sqlite3_reset(st);
	return r;
}

int store_run_token_set(struct store *s, int64_t seq, const char *token)
{
	sqlite3_stmt *st = stmt(s, STMT_TOKEN_SET);

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_text(st, 2, token, -1, SQLITE_TRANSIENT);
	return exec_stmt(st);
}

int store_run_by_token(struct store *s, const char *token, int64_t *ret_seq)
{
	sqlite3_stmt *st = stmt(s, STMT_RUN_BY_TOKEN);
	int r = -ENOENT;

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_text(st, 1, token, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) == SQLITE_ROW) {
		*ret_seq = sqlite3_column_int64(st, 0);
		r = 0;
	}
	sqlite3_reset(st);
	return r;
}

int store_run_tracking_offset_set(struct store *s, int64_t seq, int64_t offset)
{
	sqlite3_stmt *st = stmt(s, STMT_TRACKING_OFFSET);

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_int64(st, 2, offset);
	return exec_stmt(st);
}

int store_metric_series(struct store *s, int64_t seq, const char *name, const char *kind,
			struct store_metric *ret)
{
	sqlite3_stmt *st = stmt(s, STMT_METRIC_GET);
	int r;

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) == SQLITE_ROW) {
		ret->id = sqlite3_column_int64(st, 0);
		snprintf(ret->kind, sizeof(ret->kind), "%s", col_text(st, 1) ? col_text(st, 1) : "");
		ret->count = sqlite3_column_int64(st, 2);
		sqlite3_reset(st);
		return 0;
	}
	sqlite3_reset(st);
	if (!kind) {
		return -ENOENT;
	}
	st = stmt(s, STMT_METRIC_INSERT);
	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, kind, -1, SQLITE_TRANSIENT);
	if ((r = exec_stmt(st)) < 0) {
		return r;
	}
	ret->id = sqlite3_last_insert_rowid(s->db);
	snprintf(ret->kind, sizeof(ret->kind), "%s", kind);
	ret->count = 0;
	return 0;
}

int store_metric_point_add(struct store *s, int64_t metric_id, int64_t idx, int64_t step,
			   double ts, double num, const char *text)
{
	sqlite3_stmt *st = stmt(s, STMT_POINT_INSERT);

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, metric_id);
	sqlite3_bind_int64(st, 2, idx);
	sqlite3_bind_int64(st, 3, step);
	sqlite3_bind_double(st, 4, ts);
	if (text) {
		sqlite3_bind_text(st, 6, text, -1, SQLITE_STATIC);
	} else {
		sqlite3_bind_double(st, 5, num);
	}
	return exec_stmt(st);
}

int store_metric_summary_update(struct store *s, int64_t metric_id,
				const struct store_metric_summary *sum)
{
	sqlite3_stmt *st = stmt(s, STMT_METRIC_UPDATE);

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, metric_id);
	sqlite3_bind_int64(st, 2, sum->count);
	sqlite3_bind_int64(st, 3, sum->numeric);
	if (sum->numeric > 0) {
		sqlite3_bind_double(st, 4, sum->min);
		sqlite3_bind_double(st, 5, sum->max);
	}
	sqlite3_bind_int64(st, 6, sum->last_step);
	sqlite3_bind_double(st, 7, sum->last_ts);
	if (sum->last_text) {
		sqlite3_bind_text(st, 9, sum->last_text, -1, SQLITE_TRANSIENT);
	} else {
		sqlite3_bind_double(st, 8, sum->last_num);
	}
	return exec_stmt(st);
}

/* A stored value as JSON: scalars are a number (num) or a string (text);
 * the other kinds keep their value as JSON text, which the daemon wrote. */
static cJSON *point_value(sqlite3_stmt *st, int num_col, int text_col, bool scalar)
{
	if (sqlite3_column_type(st, text_col) != SQLITE_NULL) {
		const char *t = col_text(st, text_col);
		return scalar ? cJSON_CreateString(t) : cJSON_CreateRaw(t);
	}
	if (sqlite3_column_type(st, num_col) != SQLITE_NULL) {
		return cJSON_CreateNumber(sqlite3_column_double(st, num_col));
	}
	return cJSON_CreateNull();
}

static void add_real_or_null(cJSON *o, const char *name, sqlite3_stmt *st, int i)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL) {
		cJSON_AddNullToObject(o, name);
	} else {
		cJSON_AddNumberToObject(o, name, sqlite3_column_double(st, i));
	}
}

/* One row of STMT_METRICS / STMT_METRIC_BY_NAME as a summary object. */
static cJSON *metric_row_json(sqlite3_stmt *st)
{
	cJSON *m = cJSON_CreateObject();
	const char *kind = col_text(st, 2);

	cJSON_AddStringToObject(m, "name", col_text(st, 1));
	cJSON_AddStringToObject(m, "kind", kind);
	cJSON_AddNumberToObject(m, "count", (double)sqlite3_column_int64(st, 3));
	if (sqlite3_column_bytes(st, 10) > STORE_SUMMARY_VALUE_MAX) {
		cJSON_AddNullToObject(m, "last");
		cJSON_AddTrueToObject(m, "last_omitted");
	} else {
		cJSON_AddItemToObject(m, "last",
				      point_value(st, 9, 10, strcmp(kind, "scalar") == 0));
	}
	add_int_or_null(m, "last_step", st, 7);
	if (sqlite3_column_type(st, 8) == SQLITE_NULL) {
		cJSON_AddNullToObject(m, "last_ts");
	} else {
		msg_add_time(m, "last_ts", sqlite3_column_double(st, 8));
	}
	add_real_or_null(m, "min", st, 5);
	add_real_or_null(m, "max", st, 6);
	return m;
}

/* Up to n values of a numeric series, sampled evenly by index: n point
 * lookups rather than a scan, however long the series. */
static int spark_json(struct store *s, int64_t metric_id, int64_t count, int n, cJSON **ret)
{
	sqlite3_stmt *st = stmt(s, STMT_POINT_NUM);
	cJSON *arr;

	if (!st) {
		return -EIO;
	}
	arr = cJSON_CreateArray();
	int64_t k = count < n ? count : n;
	for (int64_t i = 0; i < k; i++) {
		int64_t idx = k > 1 ? i * (count - 1) / (k - 1) : count - 1;
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, metric_id);
		sqlite3_bind_int64(st, 2, idx);
		if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
			cJSON_AddItemToArray(arr, cJSON_CreateNumber(sqlite3_column_double(st, 0)));
		} else {
			cJSON_AddItemToArray(arr, cJSON_CreateNull());
		}
	}
	sqlite3_reset(st);
	*ret = arr;
	return 0;
}

int store_metrics_json(struct store *s, int64_t seq, int spark, cJSON **ret)
{
	/* Its own statement: spark_json uses the cached ones meanwhile. */
	sqlite3_stmt *st = NULL;
	cJSON *arr;
	int rc, r = 0;

	if (sqlite3_prepare_v2(s->db, stmt_sql[STMT_METRICS], -1, &st, NULL) != SQLITE_OK) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	arr = cJSON_CreateArray();
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		cJSON *m = metric_row_json(st);
		cJSON_AddItemToArray(arr, m);
		if (spark > 1 && strcmp(col_text(st, 2), "scalar") == 0 &&
		    sqlite3_column_int64(st, 4) > 0) {
			cJSON *sp = NULL;
			if ((r = spark_json(s, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 3),
					    spark, &sp)) < 0) {
				break;
			}
			cJSON_AddItemToObject(m, "spark", sp);
		}
	}
	if (r == 0 && rc != SQLITE_DONE) {
		r = sqlite_errno(rc) ? sqlite_errno(rc) : -EIO;
	}
	sqlite3_finalize(st);
	if (r < 0) {
		cJSON_Delete(arr);
		return r;
	}
	*ret = arr;
	return 0;
}

int store_metric_points_json(struct store *s, int64_t seq, const char *name, int64_t after,
			     int64_t limit, size_t max_bytes, cJSON **ret)
{
	size_t bytes = 0;
	sqlite3_stmt *st = stmt(s, STMT_METRIC_BY_NAME);
	cJSON *o, *points;
	int64_t id, count, next = after;
	bool scalar;
	int rc = SQLITE_DONE;

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		return -ENOENT;
	}
	id = sqlite3_column_int64(st, 0);
	count = sqlite3_column_int64(st, 3);
	scalar = strcmp(col_text(st, 2), "scalar") == 0;
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", col_text(st, 1));
	cJSON_AddStringToObject(o, "kind", col_text(st, 2));
	cJSON_AddNumberToObject(o, "count", (double)count);
	sqlite3_reset(st);

	points = cJSON_AddArrayToObject(o, "points");
	st = stmt(s, STMT_POINTS);
	if (!st) {
		cJSON_Delete(o);
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, after);
	sqlite3_bind_int64(st, 3, limit);
	while (bytes < max_bytes && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		cJSON *p = cJSON_CreateObject();
		char ts[32];
		bytes += 64 + (size_t)sqlite3_column_bytes(st, 4);
		cJSON_AddNumberToObject(p, "step", (double)sqlite3_column_int64(st, 1));
		msg_format_time(sqlite3_column_double(st, 2), ts);
		cJSON_AddStringToObject(p, "ts", ts);
		cJSON_AddItemToObject(p, "value", point_value(st, 3, 4, scalar));
		cJSON_AddItemToArray(points, p);
		next = sqlite3_column_int64(st, 0) + 1;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		cJSON_Delete(o);
		return sqlite_errno(rc) ? sqlite_errno(rc) : -EIO;
	}
	cJSON_AddNumberToObject(o, "next", (double)next);
	cJSON_AddBoolToObject(o, "more", next < count);
	*ret = o;
	return 0;
}

int store_run_warning_add(struct store *s, int64_t seq, double at, const char *message)
{
	sqlite3_stmt *st;
	int64_t n;
	int r;

	if ((r = count_of(s, STMT_WARNING_COUNT, seq, &n)) < 0) {
		return r;
	}
	if (n >= STORE_WARNINGS_MAX) {
		st = stmt(s, STMT_WARNING_DROPPED);
		if (!st) {
			return -EIO;
		}
		sqlite3_bind_int64(st, 1, seq);
		return exec_stmt(st);
	}
	st = stmt(s, STMT_WARNING_INSERT);
	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_double(st, 2, at);
	sqlite3_bind_text(st, 3, message, -1, SQLITE_TRANSIENT);
	return exec_stmt(st);
}

/* The run's warnings, for the detailed run object. */
static int warnings_json(struct store *s, int64_t seq, cJSON *run)
{
	sqlite3_stmt *st = stmt(s, STMT_WARNINGS);
	cJSON *arr = cJSON_AddArrayToObject(run, "warnings");
	int64_t dropped = 0;

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	while (sqlite3_step(st) == SQLITE_ROW) {
		cJSON *w = cJSON_CreateObject();
		msg_add_time(w, "at", sqlite3_column_double(st, 0));
		cJSON_AddStringToObject(w, "message", col_text(st, 1));
		cJSON_AddItemToArray(arr, w);
		dropped = sqlite3_column_int64(st, 2);
	}
	sqlite3_reset(st);
	cJSON_AddNumberToObject(run, "warnings_dropped", (double)dropped);
	return 0;
}

int store_metric_count(struct store *s, int64_t seq, int64_t *ret)
{
	return count_of(s, STMT_METRIC_COUNT, seq, ret);
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

/* Compute targets (schema 5). Their statements are rare (a target made or
 * listed, a run submitted to one, a job id recorded): prepared per call. */

static int one_shot(struct store *s, const char *sql, sqlite3_stmt **ret)
{
	return sqlite3_prepare_v2(s->db, sql, -1, ret, NULL) == SQLITE_OK ? 0 : -EIO;
}

/* Step a one-shot statement that returns no rows, and finalize it. */
static int one_shot_exec(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sqlite_errno(rc);
}

static int run_target_insert(struct store *s, int64_t seq, const char *target,
			     const char *resources_json)
{
	sqlite3_stmt *st;

	if (one_shot(s, "INSERT INTO run_targets(run_seq, target, resources) VALUES(?1, ?2, ?3)",
		     &st) < 0) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_text(st, 2, target, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, resources_json ? resources_json : "{}", -1, SQLITE_TRANSIENT);
	return one_shot_exec(st);
}

/* The run object's "target" (local when the run has no row), and for a
 * cluster run its "resources" and "job_id". */
static int run_target_json(struct store *s, int64_t seq, cJSON *run)
{
	sqlite3_stmt *st;

	if (one_shot(s, "SELECT target, resources, job_id FROM run_targets WHERE run_seq = ?1",
		     &st) < 0) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	if (sqlite3_step(st) == SQLITE_ROW) {
		cJSON_AddStringToObject(run, "target", col_text(st, 0));
		cJSON_AddItemToObject(run, "resources", json_column(st, 1));
		add_int_or_null(run, "job_id", st, 2);
	} else {
		cJSON_AddStringToObject(run, "target", "local");
	}
	sqlite3_finalize(st);
	return 0;
}

int store_target_insert(struct store *s, const char *name, const char *type,
			const char *config_json, double created_at)
{
	sqlite3_stmt *st;

	if (one_shot(s, "INSERT INTO compute_targets(name, type, config, created_at) "
			"VALUES(?1, ?2, ?3, ?4)",
		     &st) < 0) {
		return -EIO;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, type, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, config_json, -1, SQLITE_TRANSIENT);
	sqlite3_bind_double(st, 4, created_at);
	return one_shot_exec(st);
}

int store_target_delete(struct store *s, const char *name)
{
	sqlite3_stmt *st;
	int r;

	if (one_shot(s, "DELETE FROM compute_targets WHERE name = ?1", &st) < 0) {
		return -EIO;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	r = one_shot_exec(st);
	if (r == 0 && sqlite3_changes(s->db) == 0) {
		r = -ENOENT;
	}
	return r;
}

int store_targets(struct store *s, store_target_fn cb, void *ud)
{
	sqlite3_stmt *st;
	int r = 0, rc;

	if (one_shot(s, "SELECT name, type, config, created_at FROM compute_targets "
			"ORDER BY created_at, name",
		     &st) < 0) {
		return -EIO;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		r = cb(ud, col_text(st, 0), col_text(st, 1), col_text(st, 2),
		       sqlite3_column_double(st, 3));
		if (r != 0) {
			break;
		}
	}
	if (r == 0 && rc != SQLITE_DONE) {
		r = sqlite_errno(rc) ? sqlite_errno(rc) : -EIO;
	}
	sqlite3_finalize(st);
	return r < 0 ? r : 0;
}

int store_target_active_runs(struct store *s, const char *name, int64_t *ret)
{
	sqlite3_stmt *st;
	int r = -EIO;

	if (one_shot(s, "SELECT COUNT(*) FROM run_targets t JOIN runs r ON r.seq = t.run_seq "
			"WHERE t.target = ?1 AND r.status NOT IN ('Completed', 'Failed', 'Canceled')",
		     &st) < 0) {
		return -EIO;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) == SQLITE_ROW) {
		*ret = sqlite3_column_int64(st, 0);
		r = 0;
	}
	sqlite3_finalize(st);
	return r;
}

int store_run_target_get(struct store *s, int64_t seq, char **ret_target,
			 char **ret_resources, int64_t *ret_job_id)
{
	sqlite3_stmt *st;
	int r = -ENOENT;

	if (one_shot(s, "SELECT target, resources, job_id FROM run_targets WHERE run_seq = ?1",
		     &st) < 0) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	if (sqlite3_step(st) == SQLITE_ROW) {
		char *t = strdup(col_text(st, 0)), *res = strdup(col_text(st, 1));
		if (!t || !res) {
			free(t);
			free(res);
			r = -ENOMEM;
		} else {
			*ret_target = t;
			*ret_resources = res;
			*ret_job_id = sqlite3_column_int64(st, 2);
			r = 0;
		}
	}
	sqlite3_finalize(st);
	return r;
}

int store_run_job_set(struct store *s, int64_t seq, int64_t job_id)
{
	sqlite3_stmt *st;

	if (one_shot(s, "UPDATE run_targets SET job_id = ?2 WHERE run_seq = ?1", &st) < 0) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_int64(st, 2, job_id);
	return one_shot_exec(st);
}

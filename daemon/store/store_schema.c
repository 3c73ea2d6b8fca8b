/* The store's schema: the forward migrations, one entry per schema
 * version, and the step that brings an opened database up to the latest
 * (or refuses one newer than this daemon knows). */

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "msg.h"
#include "store_priv.h"

/* Migration 14 rolls up the points stored before it, one level at a time,
 * merging point by point in index order as the ingest does
 * (STMT_ROLLUP_MERGE). */
#define ROLLUP_BACKFILL(S)                                                                      \
	"INSERT INTO metric_rollups SELECT metric_id, " #S ", idx >> " #S ", 1, num, idx, step, "  \
	"  num, idx, step FROM metric_points WHERE num IS NOT NULL ORDER BY metric_id, idx "     \
	"  ON CONFLICT DO UPDATE SET n = n + 1, "                                                \
	"  lo_idx = iif(excluded.lo < lo, excluded.lo_idx, lo_idx), "                            \
	"  lo_step = iif(excluded.lo < lo, excluded.lo_step, lo_step), lo = min(lo, excluded.lo), " \
	"  hi_idx = iif(excluded.hi > hi, excluded.hi_idx, hi_idx), "                            \
	"  hi_step = iif(excluded.hi > hi, excluded.hi_step, hi_step), hi = max(hi, excluded.hi);"

/* An entry that starts so runs outside a transaction (a VACUUM). */
#define MIGRATE_OUTSIDE "--outside\n"

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

	/* 8: sweeps (docs/sweeps.md). A sweep is a run of kind 'sweep'; its
	 * children are ordinary runs naming it as their parent. Its row in
	 * sweeps holds the definition, the template every child is made from
	 * and the sampler's state, updated in the transaction that inserts a
	 * child, so a restart neither loses nor repeats a trial. A child has
	 * at most one decision: the one that stopped it. */
	"ALTER TABLE runs ADD COLUMN kind TEXT NOT NULL DEFAULT 'run';"
	"ALTER TABLE runs ADD COLUMN parent_seq INTEGER REFERENCES runs(seq);"
	"CREATE INDEX runs_by_parent ON runs(parent_seq, seq) WHERE parent_seq IS NOT NULL;"
	"CREATE TABLE sweeps("
	"  run_seq INTEGER PRIMARY KEY REFERENCES runs(seq),"
	"  definition TEXT NOT NULL,"
	"  template TEXT NOT NULL,"
	"  state TEXT NOT NULL,"
	"  trials INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE sweep_trials("
	"  child_seq INTEGER PRIMARY KEY REFERENCES runs(seq),"
	"  sweep_seq INTEGER NOT NULL REFERENCES runs(seq),"
	"  trial INTEGER NOT NULL,"
	"  params TEXT NOT NULL);"
	"CREATE UNIQUE INDEX sweep_trials_by_sweep ON sweep_trials(sweep_seq, trial);"
	"CREATE TABLE sweep_decisions("
	"  child_seq INTEGER PRIMARY KEY REFERENCES runs(seq),"
	"  sweep_seq INTEGER NOT NULL REFERENCES runs(seq),"
	"  at REAL NOT NULL,"
	"  interval INTEGER NOT NULL,"
	"  policy TEXT NOT NULL,"
	"  message TEXT NOT NULL,"
	"  detail TEXT NOT NULL);"
	"CREATE INDEX sweep_decisions_by_sweep ON sweep_decisions(sweep_seq, at);",

	/* 9: what a local run asks of the machine (CPUs, memory, GPUs) and
	 * what it was given once admitted (docs/scheduling.md), so a restart
	 * gives a re-attached run back the same devices. */
	"ALTER TABLE runs ADD COLUMN res_request TEXT;"
	"ALTER TABLE runs ADD COLUMN res_grant TEXT;",

	/* 10: what a run waits for before it may start (--after): another
	 * run, and how that one must end (docs/scheduling.md). */
	"CREATE TABLE run_deps("
	"  run_seq INTEGER NOT NULL REFERENCES runs(seq),"
	"  idx INTEGER NOT NULL,"
	"  dep_seq INTEGER NOT NULL REFERENCES runs(seq),"
	"  cond TEXT NOT NULL,"
	"  PRIMARY KEY(run_seq, idx)) WITHOUT ROWID;",

	/* 11: how a run's resources were enforced (exec/enforce.c): JSON
	 * {"tier", "mem", "peak_mem"}; NULL for a run never limited. */
	"ALTER TABLE runs ADD COLUMN limits TEXT;",

	/* 12: retries (docs/scheduling.md, "Retries"). A run may be tried
	 * again after a failed attempt; each attempt that ended is kept with
	 * how it ended, its transitions and the range of the run's log lines
	 * it wrote, and the run's own columns describe the attempt now. */
	"ALTER TABLE runs ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE runs ADD COLUMN retry_on TEXT;"
	"ALTER TABLE runs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;"
	"CREATE TABLE run_attempts("
	"  run_seq INTEGER NOT NULL REFERENCES runs(seq),"
	"  attempt INTEGER NOT NULL,"
	"  status TEXT NOT NULL,"
	"  started_at REAL,"
	"  ended_at REAL NOT NULL,"
	"  exit_code INTEGER,"
	"  signal INTEGER,"
	"  error_code TEXT,"
	"  error_message TEXT,"
	"  error_stage TEXT,"
	"  maxrss_kb INTEGER,"
	"  first_line INTEGER NOT NULL,"
	"  nlines INTEGER NOT NULL,"
	"  res_grant TEXT,"
	"  limits TEXT,"
	"  transitions TEXT NOT NULL,"
	"  PRIMARY KEY(run_seq, attempt)) WITHOUT ROWID;",

	/* 13: what a service's instances are held to (docs/models.md,
	 * "Resources"): the deployment's cpu and memory_gb, or its model's
	 * ResourceConfiguration; NULL: none. */
	"ALTER TABLE services ADD COLUMN cpu REAL;"
	"ALTER TABLE services ADD COLUMN memory_gb REAL;",

	/* 14: rollups of numeric series for charts (store.h, docs/web.md):
	 * per series, level (shift) and bucket of 2^shift indexes, the count
	 * and the extremes with where they were. Written by the ingest as
	 * points are stored; the series already stored are rolled up here.
	 * And runs sorted by a metric's last value (the web view's runs
	 * table) in keyset pages. */
	"CREATE TABLE metric_rollups("
	"  metric_id INTEGER NOT NULL,"
	"  shift INTEGER NOT NULL,"
	"  bucket INTEGER NOT NULL,"
	"  n INTEGER NOT NULL,"
	"  lo REAL NOT NULL, lo_idx INTEGER NOT NULL, lo_step INTEGER NOT NULL,"
	"  hi REAL NOT NULL, hi_idx INTEGER NOT NULL, hi_step INTEGER NOT NULL,"
	"  PRIMARY KEY(metric_id, shift, bucket)) WITHOUT ROWID;"
	"CREATE INDEX metrics_by_value ON metrics(name, last_num, run_seq);"
	ROLLUP_BACKFILL(5) ROLLUP_BACKFILL(10) ROLLUP_BACKFILL(15),

	/* 15 (see MIGRATE_OUTSIDE): the database gives
	 * the pages that deleting history frees back to the file system
	 * (docs/operations.md, "Life cycle"). Changing auto_vacuum takes a
	 * VACUUM, which cannot run inside a transaction; it is atomic itself,
	 * and a daemon killed before the version is written does it again. */
	MIGRATE_OUTSIDE
	/* and what choosing runs to remove asks of every run: which models
	 * came from it, which runs wait for it (IF NOT EXISTS: a kill before
	 * the version is written does it all again) */
	"CREATE INDEX IF NOT EXISTS models_by_run ON models(run_seq) WHERE run_seq IS NOT NULL;"
	"CREATE INDEX IF NOT EXISTS run_deps_by_dep ON run_deps(dep_seq);"
	"PRAGMA auto_vacuum = INCREMENTAL; VACUUM;",
};

int store_migrate(struct store *s, char **cause)
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
		bool outside = strncmp(migrations[v], MIGRATE_OUTSIDE, strlen(MIGRATE_OUTSIDE)) == 0;
		char *sql = outside ? msg_strdupf("%s PRAGMA user_version = %d;", migrations[v], v + 1)
				    : msg_strdupf("BEGIN IMMEDIATE; %s PRAGMA user_version = %d; COMMIT;",
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
			return store_sqlite_errno(rc) ? store_sqlite_errno(rc) : -EIO;
		}
	}
	return r;
sqlfail:
	if (cause) {
		*cause = msg_strdupf("reading the schema version failed: %s", sqlite3_errmsg(s->db));
	}
	return -EIO;
}

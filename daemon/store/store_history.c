/* The history's life cycle in the store: choosing runs to delete, what
 * stops their deletion, deleting them in one transaction, what the store
 * still refers to (for the blob collector) and how big each part is.
 *
 * A set of runs is kept in a temporary table (temp.rm_set) for the time of
 * one call, so the questions about it are one statement each whatever its
 * size. */
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "msg.h"
#include "store_priv.h"

static int exec_sql(struct store *s, const char *sql)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : (store_sqlite_errno(rc) ? store_sqlite_errno(rc) : -EIO);
}

/* temp.rm_set holds exactly seqs[0..n). */
static int set_load(struct store *s, const int64_t *seqs, size_t n)
{
	sqlite3_stmt *st = NULL;
	int r;

	r = exec_sql(s, "CREATE TEMP TABLE IF NOT EXISTS rm_set(seq INTEGER PRIMARY KEY);"
			"DELETE FROM temp.rm_set;");
	if (r < 0) {
		return r;
	}
	if (sqlite3_prepare_v2(s->db, "INSERT OR IGNORE INTO temp.rm_set(seq) VALUES(?1)", -1,
			       &st, NULL) != SQLITE_OK) {
		return -EIO;
	}
	for (size_t i = 0; i < n && r == 0; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, seqs[i]);
		if (sqlite3_step(st) != SQLITE_DONE) {
			r = -EIO;
		}
	}
	sqlite3_finalize(st);
	return r;
}

static void set_clear(struct store *s)
{
	sqlite3_exec(s->db, "DELETE FROM temp.rm_set", NULL, NULL, NULL);
}

int store_runs_select(struct store *s, const struct store_run_select *q, store_seq_fn cb,
		      void *ud)
{
	sqlite3_stmt *st = NULL;
	int rc, r = 0;

	if (sqlite3_prepare_v2(s->db,
			       "SELECT r.seq FROM runs r JOIN experiments e ON e.id = r.experiment_id "
			       "WHERE (?1 IS NULL OR e.name = ?1) AND (?2 IS NULL OR r.status = ?2) "
			       "AND (?3 IS NULL OR r.created_at < ?3) "
			       "AND (?4 IS NULL OR r.parent_seq = ?4) "
			       "AND (?5 IS NULL OR r.parent_seq IS NULL) "
			       "ORDER BY r.seq LIMIT ?6",
			       -1, &st, NULL) != SQLITE_OK) {
		return -EIO;
	}
	if (q->experiment) {
		sqlite3_bind_text(st, 1, q->experiment, -1, SQLITE_TRANSIENT);
	}
	if (q->status) {
		sqlite3_bind_text(st, 2, q->status, -1, SQLITE_TRANSIENT);
	}
	if (q->before > 0) {
		sqlite3_bind_double(st, 3, q->before);
	}
	if (q->parent_seq > 0) {
		sqlite3_bind_int64(st, 4, q->parent_seq);
	}
	if (q->top_level) {
		sqlite3_bind_int(st, 5, 1);
	}
	sqlite3_bind_int64(st, 6, q->limit > 0 ? q->limit : -1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && r == 0) {
		r = cb(ud, sqlite3_column_int64(st, 0));
	}
	if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW) {
		r = -EIO;
	}
	sqlite3_finalize(st);
	return r < 0 ? r : 0;
}

int store_run_children(struct store *s, int64_t parent, store_seq_fn cb, void *ud)
{
	struct store_run_select q = {.parent_seq = parent};
	return store_runs_select(s, &q, cb, ud);
}

/* One number from a statement over temp.rm_set. */
static int64_t set_number(struct store *s, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int64_t v = 0;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		return -1;
	}
	if (sqlite3_step(st) == SQLITE_ROW) {
		v = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	return v;
}

int store_runs_rm_estimate(struct store *s, const int64_t *seqs, size_t n,
			   struct store_rm_estimate *ret)
{
	int r = set_load(s, seqs, n);

	if (r < 0) {
		return r;
	}
	memset(ret, 0, sizeof(*ret));
	ret->log_bytes = set_number(s, "SELECT coalesce(SUM(length(data)), 0) FROM log_chunks "
				       "WHERE run_seq IN (SELECT seq FROM temp.rm_set)");
	ret->metric_points = set_number(s, "SELECT coalesce(SUM(count), 0) FROM metrics "
					   "WHERE run_seq IN (SELECT seq FROM temp.rm_set)");
	/* Outputs whose content nothing else keeps: no run left, no model.
	 * Sets rather than a question per row: artifacts has no index by
	 * content, and a NOT EXISTS per artifact would be quadratic; each NOT
	 * IN list is built once. */
	{
		sqlite3_stmt *st = NULL;
		if (sqlite3_prepare_v2(
			s->db,
			"SELECT COUNT(*), coalesce(SUM(size), 0) FROM ("
			" SELECT sha256, MAX(size) AS size FROM artifacts "
			" WHERE run_seq IN (SELECT seq FROM temp.rm_set) GROUP BY sha256) "
			"WHERE sha256 NOT IN (SELECT sha256 FROM artifacts WHERE run_seq NOT IN "
			" (SELECT seq FROM temp.rm_set)) "
			"AND sha256 NOT IN (SELECT sha256 FROM model_files)",
			-1, &st, NULL) == SQLITE_OK &&
		    sqlite3_step(st) == SQLITE_ROW) {
			ret->output_blobs = sqlite3_column_int64(st, 0);
			ret->output_bytes = sqlite3_column_int64(st, 1);
		}
		sqlite3_finalize(st);
	}
	ret->snapshots = set_number(
	    s, "SELECT COUNT(*) FROM (SELECT snapshot, "
	       "SUM(seq NOT IN (SELECT seq FROM temp.rm_set)) AS others FROM runs "
	       "WHERE snapshot IN (SELECT snapshot FROM runs WHERE seq IN "
	       "(SELECT seq FROM temp.rm_set) AND snapshot <> '') GROUP BY snapshot) "
	       "WHERE others = 0");
	set_clear(s);
	return 0;
}

/* Every row of a run, children tables first (foreign keys are on). A model
 * that came from a removed run keeps its files and says which run it was. */
static const char rm_sql[] =
	"DELETE FROM metric_points WHERE metric_id IN (SELECT id FROM metrics WHERE run_seq IN "
	" (SELECT seq FROM temp.rm_set));"
	"DELETE FROM metrics WHERE run_seq IN (SELECT seq FROM temp.rm_set);"
	"DELETE FROM transitions WHERE run_seq IN (SELECT seq FROM temp.rm_set);"
	"DELETE FROM log_chunks WHERE run_seq IN (SELECT seq FROM temp.rm_set);"
	"DELETE FROM artifacts WHERE run_seq IN (SELECT seq FROM temp.rm_set);"
	"DELETE FROM run_tags WHERE run_seq IN (SELECT seq FROM temp.rm_set);"
	"DELETE FROM run_properties WHERE run_seq IN (SELECT seq FROM temp.rm_set);"
	"DELETE FROM run_warnings WHERE run_seq IN (SELECT seq FROM temp.rm_set);"
	"DELETE FROM run_targets WHERE run_seq IN (SELECT seq FROM temp.rm_set);"
	"DELETE FROM run_inputs WHERE run_seq IN (SELECT seq FROM temp.rm_set);"
	"DELETE FROM run_outputs WHERE run_seq IN (SELECT seq FROM temp.rm_set);"
	"DELETE FROM run_attempts WHERE run_seq IN (SELECT seq FROM temp.rm_set);"
	"DELETE FROM run_deps WHERE run_seq IN (SELECT seq FROM temp.rm_set) OR dep_seq IN "
	" (SELECT seq FROM temp.rm_set);"
	"DELETE FROM sweep_decisions WHERE child_seq IN (SELECT seq FROM temp.rm_set) OR "
	" sweep_seq IN (SELECT seq FROM temp.rm_set);"
	"DELETE FROM sweep_trials WHERE child_seq IN (SELECT seq FROM temp.rm_set) OR "
	" sweep_seq IN (SELECT seq FROM temp.rm_set);"
	"DELETE FROM sweeps WHERE run_seq IN (SELECT seq FROM temp.rm_set);"
	"UPDATE runs SET parent_seq = NULL WHERE parent_seq IN (SELECT seq FROM temp.rm_set) "
	" AND seq NOT IN (SELECT seq FROM temp.rm_set);"
	"INSERT OR REPLACE INTO model_properties(model_id, key, value) "
	" SELECT m.id, 'runyard.run_removed', r.id FROM models m JOIN runs r ON r.seq = m.run_seq "
	" WHERE m.run_seq IN (SELECT seq FROM temp.rm_set);"
	"UPDATE models SET run_seq = NULL WHERE run_seq IN (SELECT seq FROM temp.rm_set);"
	"DELETE FROM runs WHERE seq IN (SELECT seq FROM temp.rm_set);";

/* Tables rm_sql knows (and models, whose run_seq is cleared, not deleted). */
static const char *const known_tables[] = {
	"metric_points", "metrics", "transitions", "log_chunks", "artifacts", "run_tags",
	"run_properties", "run_warnings", "run_targets", "run_inputs", "run_outputs",
	"run_attempts", "run_deps", "sweep_decisions", "sweep_trials", "sweeps", "runs", "models",
};

/* Rows of tables added after this code was written that hang off a run
 * (a run_seq column) or off one of its series (metric_id): they go too, so
 * a later migration's per-run data (and metric ids, which SQLite may give
 * again) never outlives its run unnoticed. */
static int delete_unknown(struct store *s)
{
	sqlite3_stmt *st = NULL;
	int rc, r = 0;

	if (sqlite3_prepare_v2(s->db,
			       "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p "
			       "WHERE m.type = 'table' AND p.name IN ('run_seq', 'metric_id') "
			       "ORDER BY p.name DESC",
			       -1, &st, NULL) != SQLITE_OK) {
		return -EIO;
	}
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *table = store_col_text(st, 0), *col = store_col_text(st, 1);
		bool known = false;
		char *sql;

		for (size_t i = 0; i < sizeof(known_tables) / sizeof(known_tables[0]); i++) {
			known |= strcmp(table, known_tables[i]) == 0;
		}
		if (known || strchr(table, '"')) {
			continue;
		}
		sql = strcmp(col, "metric_id") == 0
			  ? msg_strdupf("DELETE FROM \"%s\" WHERE metric_id IN (SELECT id FROM metrics "
					"WHERE run_seq IN (SELECT seq FROM temp.rm_set))",
					table)
			  : msg_strdupf("DELETE FROM \"%s\" WHERE run_seq IN "
					"(SELECT seq FROM temp.rm_set)",
					table);
		r = sql ? exec_sql(s, sql) : -ENOMEM;
		free(sql);
	}
	sqlite3_finalize(st);
	return r;
}

int store_runs_delete(struct store *s, const int64_t *seqs, size_t n, const char *experiment,
		      char **cause)
{
	int r;

	r = store_begin(s);
	if (r < 0) {
		goto fail;
	}
	r = set_load(s, seqs, n);
	if (r < 0) {
		goto fail;
	}
	r = delete_unknown(s);
	if (r < 0) {
		goto fail;
	}
	r = exec_sql(s, rm_sql);
	if (r < 0) {
		goto fail;
	}
	if (experiment) {
		/* experiments rm: the name goes too once it has no run left */
		sqlite3_stmt *st = NULL;
		if (sqlite3_prepare_v2(s->db,
				       "DELETE FROM experiments WHERE name = ?1 AND NOT EXISTS "
				       "(SELECT 1 FROM runs r WHERE r.experiment_id = experiments.id)",
				       -1, &st, NULL) != SQLITE_OK) {
			r = -EIO;
			goto fail;
		}
		sqlite3_bind_text(st, 1, experiment, -1, SQLITE_TRANSIENT);
		r = store_exec_stmt(st);
		sqlite3_finalize(st);
		if (r < 0) {
			goto fail;
		}
	}
	set_clear(s);
	r = store_commit(s);
	if (r < 0) {
		goto fail;
	}
	return 0;
fail:
	if (cause) {
		*cause = msg_strdupf("deleting the runs failed: %s", sqlite3_errmsg(s->db));
	}
	store_rollback(s);
	set_clear(s);
	return r < 0 ? r : -EIO;
}

/* What the store refers to. Text columns that hold JSON (a sweep's
 * template, an environment's definition, a run's inputs) are searched for
 * every 64-hex word: keeping a blob that only looks referenced costs a
 * little space, losing one costs a run. */
static const struct {
	const char *sql;
	const char *kind;
	bool json; /* find the names inside */
	bool tree; /* may be a manifest */
} roots[] = {
	{"SELECT snapshot FROM runs WHERE snapshot <> ''", "snapshot", false, true},
	{"SELECT sha256 FROM artifacts", "output", false, false},
	{"SELECT sha256 FROM model_files", "model", false, false},
	{"SELECT manifest FROM datasets", "dataset", false, true},
	{"SELECT snapshot FROM services WHERE snapshot IS NOT NULL", "service", false, true},
	{"SELECT manifest FROM run_outputs WHERE manifest IS NOT NULL", "datastore output", false,
	 true},
	{"SELECT sha256 FROM run_inputs WHERE sha256 IS NOT NULL", "input", false, true},
	{"SELECT hash FROM run_inputs WHERE hash IS NOT NULL", "input", false, true},
	{"SELECT template FROM sweeps", "sweep", true, true},
	{"SELECT definition FROM environments", "environment", true, true},
};

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

int store_blob_roots(struct store *s, store_root_fn cb, void *ud)
{
	int r = 0;

	for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]) && r == 0; i++) {
		sqlite3_stmt *st = NULL;
		int rc;

		if (sqlite3_prepare_v2(s->db, roots[i].sql, -1, &st, NULL) != SQLITE_OK) {
			return -EIO;
		}
		while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
			const char *t = store_col_text(st, 0);
			if (!t) {
				continue;
			}
			if (!roots[i].json) {
				r = cb(ud, t, roots[i].kind, roots[i].tree);
				continue;
			}
			for (const char *p = t; *p && r == 0; p++) {
				size_t k = 0;
				if (p > t && is_hex(p[-1])) {
					continue;
				}
				while (k < 65 && is_hex(p[k])) {
					k++;
				}
				if (k == 64) {
					char hex[65];
					memcpy(hex, p, 64);
					hex[64] = '\0';
					r = cb(ud, hex, roots[i].kind, roots[i].tree);
					p += 63;
				}
			}
		}
		if (r == 0 && rc != SQLITE_DONE) {
			r = -EIO;
		}
		sqlite3_finalize(st);
	}
	return r;
}

/* The largest runs and experiments by what they hold in the store. */
static cJSON *largest(struct store *s, const char *sql, const char *experiment, int limit)
{
	sqlite3_stmt *st = NULL;
	cJSON *arr = cJSON_CreateArray();

	if (!arr || sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		cJSON_Delete(arr);
		return NULL;
	}
	if (experiment) {
		sqlite3_bind_text(st, 1, experiment, -1, SQLITE_TRANSIENT);
	}
	sqlite3_bind_int(st, 2, limit);
	while (sqlite3_step(st) == SQLITE_ROW) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", store_col_text(st, 0));
		if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
			cJSON_AddNumberToObject(o, "seq", (double)sqlite3_column_int64(st, 4));
		}
		cJSON_AddNumberToObject(o, "outputs", (double)sqlite3_column_int64(st, 1));
		cJSON_AddNumberToObject(o, "logs", (double)sqlite3_column_int64(st, 2));
		cJSON_AddNumberToObject(o, "bytes", (double)sqlite3_column_int64(st, 3));
		cJSON_AddItemToArray(arr, o);
	}
	sqlite3_finalize(st);
	return arr;
}

#define PER_RUN                                                                               \
	"SELECT r.seq AS seq, e.name AS experiment, r.id AS id, "                              \
	"coalesce((SELECT SUM(size) FROM artifacts a WHERE a.run_seq = r.seq), 0) AS outputs, " \
	"coalesce((SELECT SUM(length(data)) FROM log_chunks l WHERE l.run_seq = r.seq), 0) "    \
	"AS logs FROM runs r JOIN experiments e ON e.id = r.experiment_id "                     \
	"WHERE ?1 IS NULL OR e.name = ?1"

int store_du_json(struct store *s, const char *experiment, int limit, cJSON **ret)
{
	cJSON *o = cJSON_CreateObject();
	int64_t pages, page_size, freelist;

	if (!o) {
		return -ENOMEM;
	}
	pages = set_number(s, "PRAGMA page_count");
	page_size = set_number(s, "PRAGMA page_size");
	freelist = set_number(s, "PRAGMA freelist_count");
	cJSON_AddNumberToObject(o, "database_bytes", (double)(pages * page_size));
	cJSON_AddNumberToObject(o, "database_free_bytes", (double)(freelist * page_size));
	cJSON_AddNumberToObject(o, "log_bytes",
				(double)set_number(s, "SELECT coalesce(SUM(length(data)), 0) "
						      "FROM log_chunks"));
	cJSON_AddItemToObject(
	    o, "experiments",
	    largest(s,
		    "SELECT experiment, SUM(outputs), SUM(logs), SUM(outputs) + SUM(logs) AS b, "
		    "NULL FROM (" PER_RUN ") GROUP BY experiment ORDER BY b DESC, experiment "
		    "LIMIT ?2",
		    experiment, limit));
	cJSON_AddItemToObject(o, "runs",
			      largest(s,
				      "SELECT id, outputs, logs, outputs + logs AS b, seq FROM (" PER_RUN
				      ") ORDER BY b DESC, seq LIMIT ?2",
				      experiment, limit));
	*ret = o;
	return 0;
}

int store_vacuum_step(struct store *s, int64_t pages)
{
	char sql[64];

	snprintf(sql, sizeof(sql), "PRAGMA incremental_vacuum(%lld)", (long long)pages);
	return exec_sql(s, sql);
}

/* Runs a retention rule would remove now: ended top-level runs (a sweep
 * or an array with its children) past one of the rules, but not one that
 * a model came from, that is tagged keep, or that has such a child, an
 * unfinished child, or an unfinished run waiting for it. */
static const char retention_sql[] =
	"WITH top AS ("
	" SELECT r.seq, r.status, r.experiment_id, coalesce(r.ended_at, r.created_at) AS t, "
	" ROW_NUMBER() OVER (PARTITION BY r.experiment_id ORDER BY r.seq DESC) AS rank "
	" FROM runs r WHERE r.parent_seq IS NULL) "
	"SELECT top.seq, CASE "
	"  WHEN ?1 > 0 AND top.t < ?1 THEN 'keep-runs-days' "
	"  WHEN ?2 > 0 AND top.status IN ('Failed', 'Canceled') AND top.t < ?2 "
	"   THEN 'keep-failed-days' "
	"  ELSE 'keep-runs' END "
	"FROM top WHERE top.status IN ('Completed', 'Failed', 'Canceled') "
	"AND ((?1 > 0 AND top.t < ?1) "
	"  OR (?2 > 0 AND top.status IN ('Failed', 'Canceled') AND top.t < ?2) "
	"  OR (?3 > 0 AND top.rank > ?3)) "
	"AND NOT EXISTS (SELECT 1 FROM runs c WHERE (c.seq = top.seq OR c.parent_seq = top.seq) "
	" AND (EXISTS (SELECT 1 FROM models m WHERE m.run_seq = c.seq) "
	"  OR EXISTS (SELECT 1 FROM run_tags g WHERE g.run_seq = c.seq AND g.key = 'keep') "
	"  OR c.status NOT IN ('Completed', 'Failed', 'Canceled') "
	"  OR EXISTS (SELECT 1 FROM run_deps d JOIN runs w ON w.seq = d.run_seq "
	"   WHERE d.dep_seq = c.seq AND w.status NOT IN ('Completed', 'Failed', 'Canceled')))) "
	"ORDER BY top.seq LIMIT ?4";

int store_retention_select(struct store *s, const struct store_retention *q, int64_t limit,
			   store_retention_fn cb, void *ud)
{
	sqlite3_stmt *st = NULL;
	int rc, r = 0;

	if (sqlite3_prepare_v2(s->db, retention_sql, -1, &st, NULL) != SQLITE_OK) {
		return -EIO;
	}
	sqlite3_bind_double(st, 1, q->runs_before);
	sqlite3_bind_double(st, 2, q->failed_before);
	sqlite3_bind_int64(st, 3, q->keep_runs);
	sqlite3_bind_int64(st, 4, limit);
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		r = cb(ud, sqlite3_column_int64(st, 0), store_col_text(st, 1));
	}
	if (r == 0 && rc != SQLITE_DONE) {
		r = -EIO;
	}
	sqlite3_finalize(st);
	return r < 0 ? r : 0;
}

int store_run_retention_json(struct store *s, int64_t seq, const struct store_retention *q,
			     cJSON *run)
{
	sqlite3_stmt *st = NULL;
	cJSON *o;
	int r = 0;

	if (sqlite3_prepare_v2(
		s->db,
		"SELECT (SELECT group_concat(m.name || ':' || m.version, ', ') FROM models m "
		" WHERE m.run_seq = r.seq), "
		"EXISTS (SELECT 1 FROM run_tags g WHERE g.run_seq = r.seq AND g.key = 'keep'), "
		"coalesce(r.ended_at, r.created_at), r.status, r.parent_seq, "
		"(SELECT COUNT(*) FROM runs o WHERE o.experiment_id = r.experiment_id AND "
		" o.parent_seq IS NULL AND o.seq > r.seq) "
		"FROM runs r WHERE r.seq = ?1",
		-1, &st, NULL) != SQLITE_OK) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	if (sqlite3_step(st) != SQLITE_ROW) {
		r = -ENOENT;
		goto out;
	}
	o = cJSON_AddObjectToObject(run, "retention");
	const char *models = store_col_text(st, 0);
	bool tagged = sqlite3_column_int(st, 1) != 0;
	double t = sqlite3_column_double(st, 2);
	const char *status = store_col_text(st, 3);
	bool failed = status && (strcmp(status, "Failed") == 0 || strcmp(status, "Canceled") == 0);
	bool child = sqlite3_column_type(st, 4) != SQLITE_NULL;
	int64_t newer = sqlite3_column_int64(st, 5);
	bool rules = q->keep_runs_days > 0 || q->keep_failed_days > 0 || q->keep_runs > 0;

	cJSON_AddBoolToObject(o, "rules", rules);
	if (models || tagged) {
		char *why = models ? msg_strdupf("model %s came from it", models)
				   : msg_strdupf("tagged keep");
		cJSON_AddBoolToObject(o, "kept", true);
		cJSON_AddStringToObject(o, "reason", why ? why : "kept");
		free(why);
		goto out;
	}
	cJSON_AddBoolToObject(o, "kept", false);
	if (child) {
		cJSON_AddStringToObject(o, "reason", "goes with its sweep or array");
		goto out;
	}
	double until = 0;
	if (q->keep_runs_days > 0) {
		until = t + q->keep_runs_days * 86400;
	}
	if (failed && q->keep_failed_days > 0 &&
	    (until == 0 || t + q->keep_failed_days * 86400 < until)) {
		until = t + q->keep_failed_days * 86400;
	}
	if (until > 0) {
		msg_add_time(o, "removed_after", until);
	}
	if (q->keep_runs > 0) {
		cJSON_AddNumberToObject(o, "newer_runs", (double)newer);
		cJSON_AddNumberToObject(o, "keep_runs", (double)q->keep_runs);
	}
out:
	sqlite3_finalize(st);
	return r;
}

/* ---- choosing the runs of one rm, in bulk (temp.rm_pick) ----
 *
 * One statement over the whole choice rather than a few per run: a
 * removal of 100,000 runs is decided in a fraction of a second. */

int store_rm_pick_begin(struct store *s)
{
	return exec_sql(s, "CREATE TEMP TABLE IF NOT EXISTS rm_pick("
			   "seq INTEGER PRIMARY KEY, named INTEGER NOT NULL);"
			   "DELETE FROM temp.rm_pick;");
}

int store_rm_pick_add(struct store *s, int64_t seq, bool named)
{
	sqlite3_stmt *st = NULL;
	int r;

	if (sqlite3_prepare_v3(s->db,
			       "INSERT INTO temp.rm_pick(seq, named) VALUES(?1, ?2) "
			       "ON CONFLICT(seq) DO UPDATE SET named = max(named, excluded.named)",
			       -1, 0, &st, NULL) != SQLITE_OK) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_int(st, 2, named);
	r = store_exec_stmt(st);
	sqlite3_finalize(st);
	return r;
}

int store_rm_pick_select(struct store *s, const struct store_run_select *q)
{
	sqlite3_stmt *st = NULL;
	int r;

	if (sqlite3_prepare_v2(s->db,
			       "INSERT OR IGNORE INTO temp.rm_pick(seq, named) "
			       "SELECT r.seq, 0 FROM runs r JOIN experiments e ON e.id = r.experiment_id "
			       "WHERE (?1 IS NULL OR e.name = ?1) AND (?2 IS NULL OR r.status = ?2) "
			       "AND (?3 IS NULL OR r.created_at < ?3) "
			       "AND (?4 IS NULL OR r.parent_seq = ?4) ORDER BY r.seq LIMIT ?5",
			       -1, &st, NULL) != SQLITE_OK) {
		return -EIO;
	}
	if (q->experiment) {
		sqlite3_bind_text(st, 1, q->experiment, -1, SQLITE_TRANSIENT);
	}
	if (q->status) {
		sqlite3_bind_text(st, 2, q->status, -1, SQLITE_TRANSIENT);
	}
	if (q->before > 0) {
		sqlite3_bind_double(st, 3, q->before);
	}
	if (q->parent_seq > 0) {
		sqlite3_bind_int64(st, 4, q->parent_seq);
	}
	sqlite3_bind_int64(st, 5, q->limit > 0 ? q->limit : -1);
	r = store_exec_stmt(st);
	sqlite3_finalize(st);
	return r;
}

int store_rm_pick_expand(struct store *s)
{
	/* children, and theirs, each named when an ancestor was */
	return exec_sql(s, "INSERT INTO temp.rm_pick(seq, named) "
			   "WITH RECURSIVE kids(seq, named) AS ("
			   " SELECT r.seq, p.named FROM runs r JOIN temp.rm_pick p "
			   "  ON r.parent_seq = p.seq "
			   " UNION SELECT r.seq, k.named FROM runs r JOIN kids k ON r.parent_seq = k.seq) "
			   "SELECT seq, max(named) FROM kids WHERE true GROUP BY seq "
			   "ON CONFLICT(seq) DO UPDATE SET named = max(named, excluded.named)");
}

int64_t store_rm_pick_count(struct store *s)
{
	return set_number(s, "SELECT COUNT(*) FROM temp.rm_pick");
}

int store_rm_pick_each(struct store *s, store_rm_fn cb, void *ud)
{
	sqlite3_stmt *st = NULL;
	int rc, r = 0;

	if (sqlite3_prepare_v2(
		s->db,
		"SELECT r.seq, r.id, r.status, r.kind, coalesce(r.parent_seq, 0), e.name, "
		"(SELECT COUNT(*) FROM models m WHERE m.run_seq = r.seq), "
		"(SELECT group_concat(m.name || ':' || m.version, ', ') FROM "
		" (SELECT name, version FROM models WHERE run_seq = r.seq ORDER BY id LIMIT 5) m), "
		"(SELECT COUNT(*) FROM run_deps d JOIN runs w ON w.seq = d.run_seq "
		" WHERE d.dep_seq = r.seq AND w.status NOT IN ('Completed', 'Failed', 'Canceled')), "
		"r.keep, r.created_at, p.named, "
		"coalesce((SELECT status FROM runs q WHERE q.seq = r.parent_seq), '') "
		"FROM temp.rm_pick p JOIN runs r ON r.seq = p.seq "
		"JOIN experiments e ON e.id = r.experiment_id ORDER BY r.seq",
		-1, &st, NULL) != SQLITE_OK) {
		return -EIO;
	}
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_rm_info in = {0};
		in.seq = sqlite3_column_int64(st, 0);
		snprintf(in.id, sizeof(in.id), "%s", store_col_text(st, 1));
		snprintf(in.status, sizeof(in.status), "%s", store_col_text(st, 2));
		snprintf(in.kind, sizeof(in.kind), "%s", store_col_text(st, 3));
		in.parent_seq = sqlite3_column_int64(st, 4);
		snprintf(in.experiment, sizeof(in.experiment), "%s", store_col_text(st, 5));
		in.models = sqlite3_column_int64(st, 6);
		snprintf(in.model_names, sizeof(in.model_names), "%s",
			 store_col_text(st, 7) ? store_col_text(st, 7) : "");
		in.active_dependents = sqlite3_column_int64(st, 8);
		in.keep_dir = sqlite3_column_int(st, 9) != 0;
		in.created_at = sqlite3_column_double(st, 10);
		in.named = sqlite3_column_int(st, 11) != 0;
		snprintf(in.parent_status, sizeof(in.parent_status), "%s", store_col_text(st, 12));
		r = cb(ud, &in);
	}
	if (r == 0 && rc != SQLITE_DONE) {
		r = -EIO;
	}
	sqlite3_finalize(st);
	return r < 0 ? r : 0;
}

void store_rm_pick_end(struct store *s)
{
	sqlite3_exec(s->db, "DELETE FROM temp.rm_pick", NULL, NULL, NULL);
}

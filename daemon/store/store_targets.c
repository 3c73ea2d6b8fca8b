/* The store's compute targets (schema 5, docs/compute-targets.md): their
 * definitions, and which target a run was submitted to, with the resources
 * it asked for and its job there. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store_priv.h"

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
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : store_sqlite_errno(rc);
}

int store_run_target_insert(struct store *s, int64_t seq, const char *target,
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
int store_run_target_json(struct store *s, int64_t seq, cJSON *run)
{
	sqlite3_stmt *st;

	if (one_shot(s, "SELECT target, resources, job_id FROM run_targets WHERE run_seq = ?1",
		     &st) < 0) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	if (sqlite3_step(st) == SQLITE_ROW) {
		cJSON_AddStringToObject(run, "target", store_col_text(st, 0));
		cJSON_AddItemToObject(run, "resources", store_json_column(st, 1));
		store_add_int_or_null(run, "job_id", st, 2);
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
		r = cb(ud, store_col_text(st, 0), store_col_text(st, 1), store_col_text(st, 2),
		       sqlite3_column_double(st, 3));
		if (r != 0) {
			break;
		}
	}
	if (r == 0 && rc != SQLITE_DONE) {
		r = store_sqlite_errno(rc) ? store_sqlite_errno(rc) : -EIO;
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
		char *t = strdup(store_col_text(st, 0)), *res = strdup(store_col_text(st, 1));
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

/* The store's runs: inserting a run and recording its transitions,
 * errors, exit and supervisor; its log chunks and artifacts; resolving a
 * reference; the runs still active at start; the read side handed out as the
 * protocol's JSON (a run, a listing, artifacts, experiments, counts); and a
 * run's tags, properties and what its snapshot skipped. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "msg.h"
#include "store_priv.h"

static void deps_json(struct store *s, int64_t seq, cJSON *run);

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *v)
{
	if (v) {
		sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
	} else {
		sqlite3_bind_null(st, i);
	}
}

static int experiment_ensure(struct store *s, const char *name, double now, int64_t *ret_id)
{
	sqlite3_stmt *st = store_stmt(s, STMT_EXPERIMENT_INSERT);
	int r;

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_double(st, 2, now);
	r = store_exec_stmt(st);
	if (r < 0) {
		return r;
	}
	st = store_stmt(s, STMT_EXPERIMENT_ID);
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
	sqlite3_stmt *st = store_stmt(s, STMT_TRANSITION_INSERT);

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
	sqlite3_bind_double(st, 3, at);
	return store_exec_stmt(st);
}

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
	st = store_stmt(s, STMT_RUN_INSERT);
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
	sqlite3_bind_text(st, 14, n->kind ? n->kind : "run", -1, SQLITE_STATIC);
	if (n->parent_seq > 0) {
		sqlite3_bind_int64(st, 15, n->parent_seq);
	} else {
		sqlite3_bind_null(st, 15);
	}
	bind_text_or_null(st, 16, n->request_json);
	sqlite3_bind_int(st, 17, n->retries);
	bind_text_or_null(st, 18, n->retry_on);
	r = store_exec_stmt(st);
	if (r < 0) {
		goto fail;
	}
	seq = sqlite3_last_insert_rowid(s->db);
	r = transition_insert(s, seq, "Queued", n->created_at);
	if (r < 0) {
		goto fail;
	}
	if (n->target) {
		r = store_run_target_insert(s, seq, n->target, n->resources_json);
		if (r < 0) {
			goto fail;
		}
	}
	for (size_t i = 0; i < n->nafter; i++) {
		st = store_stmt(s, STMT_DEP_INSERT);
		if (!st) {
			r = -EIO;
			goto fail;
		}
		sqlite3_bind_int64(st, 1, seq);
		sqlite3_bind_int64(st, 2, (int64_t)i);
		sqlite3_bind_int64(st, 3, n->after_seq[i]);
		sqlite3_bind_text(st, 4, n->after_cond[i], -1, SQLITE_STATIC);
		if ((r = store_exec_stmt(st)) < 0) {
			goto fail;
		}
	}
	if (n->in_txn && (r = n->in_txn(n->in_txn_ud, seq)) < 0) {
		goto fail;
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
	st = store_stmt(s, STMT_RUN_STATUS);
	if (!st) {
		r = -EIO;
		goto fail;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
	if ((r = store_exec_stmt(st)) < 0) {
		goto fail;
	}
	if ((r = transition_insert(s, seq, status, at)) < 0) {
		goto fail;
	}
	if (strcmp(status, "Running") == 0 || terminal) {
		st = store_stmt(s, terminal ? STMT_RUN_ENDED : STMT_RUN_STARTED);
		if (!st) {
			r = -EIO;
			goto fail;
		}
		sqlite3_bind_int64(st, 1, seq);
		sqlite3_bind_double(st, 2, at);
		if ((r = store_exec_stmt(st)) < 0) {
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
	sqlite3_stmt *st = store_stmt(s, STMT_RUN_ERROR);

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	bind_text_or_null(st, 2, code);
	bind_text_or_null(st, 3, message);
	bind_text_or_null(st, 4, stage);
	return store_exec_stmt(st);
}

int store_run_set_exit(struct store *s, int64_t seq, const struct store_exit *e)
{
	sqlite3_stmt *st = store_stmt(s, STMT_RUN_EXIT);

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
	return store_exec_stmt(st);
}

int store_run_set_supervisor(struct store *s, int64_t seq, int64_t pid, int64_t pgid)
{
	sqlite3_stmt *st = store_stmt(s, STMT_RUN_SUPERVISOR);

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_int64(st, 2, pid);
	sqlite3_bind_int64(st, 3, pgid);
	return store_exec_stmt(st);
}

int store_run_set_limits(struct store *s, int64_t seq, const char *tier, int64_t mem,
			 int64_t peak_mem)
{
	sqlite3_stmt *st = store_stmt(s, STMT_RUN_LIMITS);
	cJSON *o = cJSON_CreateObject();
	char *text = NULL;
	int r = -ENOMEM;

	if (!st) {
		r = -EIO;
		goto out;
	}
	if (!o) {
		goto out;
	}
	if (tier) {
		cJSON_AddStringToObject(o, "tier", tier);
	} else {
		cJSON_AddNullToObject(o, "tier");
	}
	if (mem > 0) {
		cJSON_AddNumberToObject(o, "mem", (double)mem);
	} else {
		cJSON_AddNullToObject(o, "mem");
	}
	if (peak_mem >= 0) {
		cJSON_AddNumberToObject(o, "peak_mem", (double)peak_mem);
	} else {
		cJSON_AddNullToObject(o, "peak_mem");
	}
	text = cJSON_PrintUnformatted(o);
	if (!text) {
		goto out;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_text(st, 2, text, -1, SQLITE_TRANSIENT);
	r = store_exec_stmt(st);
out:
	free(text);
	cJSON_Delete(o);
	return r;
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
		st = store_stmt(s, STMT_LOG_INSERT);
		if (!st) {
			r = -EIO;
			goto fail;
		}
		sqlite3_bind_int64(st, 1, seq);
		sqlite3_bind_int64(st, 2, first_seq);
		sqlite3_bind_int64(st, 3, nlines);
		sqlite3_bind_blob64(st, 4, data, len, SQLITE_STATIC);
		if ((r = store_exec_stmt(st)) < 0) {
			goto fail;
		}
	}
	st = store_stmt(s, STMT_LOG_OFFSET);
	if (!st) {
		r = -EIO;
		goto fail;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_int64(st, 2, new_offset);
	sqlite3_bind_int64(st, 3, first_seq + nlines - 1);
	if ((r = store_exec_stmt(st)) < 0) {
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

	if (sqlite3_prepare_v2(s->db, store_stmt_sql[STMT_LOG_READ], -1, &st, NULL) != SQLITE_OK) {
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
		r = store_sqlite_errno(rc) ? store_sqlite_errno(rc) : -EIO;
	}
	sqlite3_finalize(st);
	return r < 0 ? r : 0;
}

int store_artifact_put(struct store *s, int64_t seq, const char *path, int64_t size,
		       const char *sha256, int mode)
{
	sqlite3_stmt *st = store_stmt(s, STMT_ARTIFACT_PUT);

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_text(st, 2, path, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, size);
	sqlite3_bind_text(st, 4, sha256, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 5, mode);
	return store_exec_stmt(st);
}

int store_artifact_get(struct store *s, int64_t seq, const char *path, char ret_sha[65],
		       int64_t *ret_size)
{
	sqlite3_stmt *st = store_stmt(s, STMT_ARTIFACT_GET);
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

	st = store_stmt(s, numeric ? STMT_RUN_BY_SEQ : STMT_RUN_BY_ID);
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

int store_runs_active(struct store *s, store_run_fn cb, void *ud)
{
	sqlite3_stmt *st = NULL;
	int r = 0, rc;

	if (sqlite3_prepare_v2(s->db, store_stmt_sql[STMT_RUNS_ACTIVE], -1, &st, NULL) !=
	    SQLITE_OK) {
		return -EIO;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_run_row row = {
			.seq = sqlite3_column_int64(st, 0),
			.id = store_col_text(st, 1),
			.experiment = store_col_text(st, 2),
			.status = store_col_text(st, 3),
			.priority = sqlite3_column_int(st, 4),
			.argv_json = store_col_text(st, 5),
			.env_json = store_col_text(st, 6),
			.snapshot = store_col_text(st, 7),
			.timeout = sqlite3_column_double(st, 8),
			.keep = sqlite3_column_int(st, 9) != 0,
			.created_at = sqlite3_column_double(st, 10),
			.started_at = sqlite3_column_double(st, 11),
			.log_offset = sqlite3_column_int64(st, 12),
			.log_lines = sqlite3_column_int64(st, 13),
			.sup_pid = sqlite3_column_int64(st, 14),
			.parent_seq = sqlite3_column_int64(st, 15),
			.request_json = store_col_text(st, 16),
			.grant_json = store_col_text(st, 17),
			.retries = sqlite3_column_int(st, 18),
			.retry_on = store_col_text(st, 19),
			.attempt = sqlite3_column_int(st, 20),
			.kind = store_col_text(st, 21),
		};
		r = cb(ud, &row);
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

/* One row of RUN_COLUMNS as the protocol's run object. */
static cJSON *run_row_json(sqlite3_stmt *st)
{
	cJSON *o = cJSON_CreateObject();
	double started = sqlite3_column_double(st, 13), ended = sqlite3_column_double(st, 14);

	cJSON_AddStringToObject(o, "id", store_col_text(st, 1));
	cJSON_AddNumberToObject(o, "seq", (double)sqlite3_column_int64(st, 0));
	cJSON_AddStringToObject(o, "experiment", store_col_text(st, 2));
	cJSON_AddStringToObject(o, "status", store_col_text(st, 3));
	cJSON_AddNumberToObject(o, "priority", sqlite3_column_int(st, 4));
	cJSON_AddItemToObject(o, "command", store_json_column(st, 5));
	cJSON_AddStringToObject(o, "python", store_col_text(st, 6));
	cJSON_AddStringToObject(o, "source", store_col_text(st, 7));
	cJSON_AddStringToObject(o, "snapshot", store_col_text(st, 8));
	if (sqlite3_column_type(st, 10) == SQLITE_NULL) {
		cJSON_AddNullToObject(o, "timeout");
	} else {
		cJSON_AddNumberToObject(o, "timeout", sqlite3_column_double(st, 10));
	}
	cJSON_AddItemToObject(o, "env", store_json_column(st, 9));
	cJSON_AddBoolToObject(o, "keep", sqlite3_column_int(st, 11) != 0);
	msg_add_time(o, "created_at", sqlite3_column_double(st, 12));
	msg_add_time(o, "started_at", started);
	msg_add_time(o, "ended_at", ended);
	if (started > 0 && ended > 0) {
		cJSON_AddNumberToObject(o, "duration", ended - started);
	} else {
		cJSON_AddNullToObject(o, "duration");
	}
	store_add_int_or_null(o, "exit_code", st, 15);
	store_add_int_or_null(o, "signal", st, 16);
	if (sqlite3_column_type(st, 17) == SQLITE_NULL) {
		cJSON_AddNullToObject(o, "error");
	} else {
		cJSON *e = cJSON_AddObjectToObject(o, "error");
		cJSON_AddStringToObject(e, "code", store_col_text(st, 17));
		cJSON_AddStringToObject(e, "message",
					store_col_text(st, 18) ? store_col_text(st, 18) : "");
		if (store_col_text(st, 19)) {
			cJSON_AddStringToObject(e, "stage", store_col_text(st, 19));
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
	cJSON_AddItemToObject(o, "skipped", store_json_column(st, 24));
	cJSON_AddStringToObject(o, "kind", store_col_text(st, 25) ? store_col_text(st, 25) : "run");
	if (store_col_text(st, 26)) {
		cJSON_AddStringToObject(o, "parent", store_col_text(st, 26));
	} else {
		cJSON_AddNullToObject(o, "parent");
	}
	/* A local run's request and, once admitted, what it holds. */
	cJSON_AddItemToObject(o, "request", store_col_text(st, 27) ? store_json_column(st, 27)
								   : cJSON_CreateNull());
	cJSON_AddItemToObject(o, "allocation", store_col_text(st, 28)
						       ? store_json_column(st, 28)
						       : cJSON_CreateNull());
	/* NULL for a run that was never limited, and for runs from before
	 * the column: the same shape either way. */
	cJSON *lim = sqlite3_column_type(st, 29) == SQLITE_NULL ? NULL : store_json_column(st, 29);
	if (!cJSON_IsObject(lim)) {
		cJSON_Delete(lim);
		lim = cJSON_CreateObject();
		cJSON_AddNullToObject(lim, "tier");
		cJSON_AddNullToObject(lim, "mem");
		cJSON_AddNullToObject(lim, "peak_mem");
	}
	cJSON_AddItemToObject(o, "limits", lim);
	cJSON_AddNumberToObject(o, "attempt", sqlite3_column_int(st, 30));
	cJSON_AddNumberToObject(o, "retries", sqlite3_column_int(st, 31));
	cJSON_AddStringToObject(o, "retry_on", store_col_text(st, 32) ? store_col_text(st, 32)
								      : "fail");
	return o;
}

/* The detailed run object's "attempts": those that ended and were tried
 * again, oldest first. */
static int attempts_json(struct store *s, int64_t seq, cJSON *run)
{
	static const char sql[] =
		"SELECT attempt, status, started_at, ended_at, exit_code, signal, error_code, "
		"error_message, error_stage, maxrss_kb, first_line, nlines, res_grant, limits, "
		"transitions FROM run_attempts WHERE run_seq = ?1 ORDER BY attempt";
	cJSON *arr = cJSON_AddArrayToObject(run, "attempts");
	sqlite3_stmt *st = NULL;
	int rc;

	if (!arr || sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		cJSON *a = cJSON_CreateObject();
		cJSON_AddItemToArray(arr, a);
		cJSON_AddNumberToObject(a, "attempt", sqlite3_column_int(st, 0));
		cJSON_AddStringToObject(a, "status", store_col_text(st, 1));
		msg_add_time(a, "started_at", sqlite3_column_double(st, 2));
		msg_add_time(a, "ended_at", sqlite3_column_double(st, 3));
		store_add_int_or_null(a, "exit_code", st, 4);
		store_add_int_or_null(a, "signal", st, 5);
		if (store_col_text(st, 6)) {
			cJSON *e = cJSON_AddObjectToObject(a, "error");
			cJSON_AddStringToObject(e, "code", store_col_text(st, 6));
			cJSON_AddStringToObject(e, "message",
						store_col_text(st, 7) ? store_col_text(st, 7) : "");
			cJSON_AddStringToObject(e, "stage",
						store_col_text(st, 8) ? store_col_text(st, 8) : "");
		} else {
			cJSON_AddNullToObject(a, "error");
		}
		store_add_int_or_null(a, "maxrss_kb", st, 9);
		/* Log line numbers start at 1, as run.logs counts them. */
		cJSON_AddNumberToObject(a, "first_line", (double)sqlite3_column_int64(st, 10) + 1);
		cJSON_AddNumberToObject(a, "lines", (double)sqlite3_column_int64(st, 11));
		cJSON_AddItemToObject(a, "allocation", store_col_text(st, 12)
							       ? store_json_column(st, 12)
							       : cJSON_CreateNull());
		cJSON_AddItemToObject(a, "limits", store_col_text(st, 13)
							   ? store_json_column(st, 13)
							   : cJSON_CreateNull());
		/* Stored as unix seconds; shown like the run's own. */
		cJSON *raw = store_json_column(st, 14), *kv;
		cJSON *tr = cJSON_AddObjectToObject(a, "transitions");
		cJSON_ArrayForEach(kv, raw) {
			if (cJSON_IsNumber(kv)) {
				msg_add_time(tr, kv->string, kv->valuedouble);
			}
		}
		cJSON_Delete(raw);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

int store_run_error_code(struct store *s, int64_t seq, char *buf, size_t len)
{
	sqlite3_stmt *st = NULL;
	int r = -ENOENT;

	if (sqlite3_prepare_v2(s->db, "SELECT error_code FROM runs WHERE seq = ?1", -1, &st,
			       NULL) != SQLITE_OK) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	if (sqlite3_step(st) == SQLITE_ROW) {
		const char *code = store_col_text(st, 0);
		snprintf(buf, len, "%s", code ? code : "");
		r = 0;
	}
	sqlite3_finalize(st);
	return r;
}

int store_run_requeue(struct store *s, int64_t seq, const char *status, double at)
{
	/* The attempt's transitions go with it as one JSON object; the run
	 * starts its next attempt with a new Queued time only. */
	static const char *const sql[] = {
		"INSERT INTO run_attempts(run_seq, attempt, status, started_at, ended_at, "
		"exit_code, signal, error_code, error_message, error_stage, maxrss_kb, first_line, "
		"nlines, res_grant, limits, transitions) "
		"SELECT r.seq, r.attempt, ?2, r.started_at, ?3, r.exit_code, r.signal, r.error_code, "
		"r.error_message, r.error_stage, r.maxrss_kb, "
		"(SELECT COALESCE(MAX(a.first_line + a.nlines), 0) FROM run_attempts a "
		"  WHERE a.run_seq = r.seq), "
		"r.log_lines - (SELECT COALESCE(MAX(a.first_line + a.nlines), 0) "
		"  FROM run_attempts a WHERE a.run_seq = r.seq), "
		"r.res_grant, r.limits, "
		"(SELECT json_group_object(t.status, t.at) FROM transitions t "
		"  WHERE t.run_seq = r.seq) "
		"FROM runs r WHERE r.seq = ?1",
		"DELETE FROM transitions WHERE run_seq = ?1",
		"INSERT INTO transitions(run_seq, status, at) VALUES(?1, 'Queued', ?3)",
		"UPDATE runs SET status = 'Queued', attempt = attempt + 1, started_at = NULL, "
		"ended_at = NULL, exit_code = NULL, signal = NULL, error_code = NULL, "
		"error_message = NULL, error_stage = NULL, utime = NULL, stime = NULL, "
		"maxrss_kb = NULL, sup_pid = NULL, pgid = NULL, log_offset = 0, token = NULL, "
		"tracking_offset = 0, res_grant = NULL, limits = NULL WHERE seq = ?1",
	};
	int r = store_begin(s);

	if (r < 0) {
		return r;
	}
	for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
		sqlite3_stmt *st = NULL;
		if (sqlite3_prepare_v2(s->db, sql[i], -1, &st, NULL) != SQLITE_OK) {
			r = -EIO;
			goto fail;
		}
		sqlite3_bind_int64(st, 1, seq);
		if (sqlite3_bind_parameter_count(st) >= 2) {
			sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
		}
		if (sqlite3_bind_parameter_count(st) >= 3) {
			sqlite3_bind_double(st, 3, at);
		}
		r = store_exec_stmt(st);
		sqlite3_finalize(st);
		if (r < 0) {
			goto fail;
		}
	}
	return store_commit(s);
fail:
	store_rollback(s);
	return r;
}

int store_run_json(struct store *s, int64_t seq, bool transitions, cJSON **ret)
{
	sqlite3_stmt *st = store_stmt(s, STMT_RUN_JSON);
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
			st = store_stmt(s, kv[k]);
			if (!st) {
				cJSON_Delete(o);
				return -EIO;
			}
			sqlite3_bind_int64(st, 1, seq);
			while (sqlite3_step(st) == SQLITE_ROW) {
				cJSON_AddStringToObject(m, store_col_text(st, 0),
							store_col_text(st, 1));
			}
			sqlite3_reset(st);
		}
		cJSON *t = cJSON_AddObjectToObject(o, "transitions");
		st = store_stmt(s, STMT_TRANSITIONS);
		if (!st) {
			cJSON_Delete(o);
			return -EIO;
		}
		sqlite3_bind_int64(st, 1, seq);
		while (sqlite3_step(st) == SQLITE_ROW) {
			msg_add_time(t, store_col_text(st, 0), sqlite3_column_double(st, 1));
		}
		sqlite3_reset(st);
		if (store_run_warnings_json(s, seq, o) < 0) {
			cJSON_Delete(o);
			return -EIO;
		}
		if (store_run_target_json(s, seq, o) < 0) {
			cJSON_Delete(o);
			return -EIO;
		}
		deps_json(s, seq, o);
		if (attempts_json(s, seq, o) < 0) {
			cJSON_Delete(o);
			return -EIO;
		}
	}
	*ret = o;
	return 0;
}

int store_run_list_json(struct store *s, const char *experiment, const char *status,
			int64_t parent_seq, int limit, cJSON **ret)
{
	/* Built per call: the filters change its shape, and listing is rare. */
	char sql[1024];
	sqlite3_stmt *st = NULL;
	cJSON *arr;
	int i = 1, rc;

	snprintf(sql, sizeof(sql),
		 "SELECT " RUN_COLUMNS RUN_FROM "WHERE 1 %s %s %s ORDER BY r.seq DESC LIMIT ?",
		 experiment ? "AND e.name = ?" : "", status ? "AND r.status = ?" : "",
		 parent_seq > 0 ? "AND r.parent_seq = ?" : "");
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		return -EIO;
	}
	if (experiment) {
		sqlite3_bind_text(st, i++, experiment, -1, SQLITE_TRANSIENT);
	}
	if (status) {
		sqlite3_bind_text(st, i++, status, -1, SQLITE_TRANSIENT);
	}
	if (parent_seq > 0) {
		sqlite3_bind_int64(st, i++, parent_seq);
	}
	sqlite3_bind_int(st, i, limit);
	arr = cJSON_CreateArray();
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		cJSON_AddItemToArray(arr, run_row_json(st));
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		cJSON_Delete(arr);
		return store_sqlite_errno(rc) ? store_sqlite_errno(rc) : -EIO;
	}
	*ret = arr;
	return 0;
}

/* Text as a LIKE pattern that matches it anywhere, '\\' escaping. */
static char *like_anywhere(const char *text)
{
	size_t n = strlen(text);
	char *p = malloc(2 * n + 3), *o = p;

	if (!p) {
		return NULL;
	}
	*o++ = '%';
	for (const char *c = text; *c; c++) {
		if (*c == '%' || *c == '_' || *c == '\\') {
			*o++ = '\\';
		}
		*o++ = *c;
	}
	*o++ = '%';
	*o = '\0';
	return p;
}

/* A run's tags and last numeric scalar values, into o. */
static int add_page_extras(struct store *s, int64_t seq, cJSON *o)
{
	sqlite3_stmt *st = store_stmt(s, STMT_TAGS);
	cJSON *m = cJSON_AddObjectToObject(o, "tags");

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	while (sqlite3_step(st) == SQLITE_ROW) {
		cJSON_AddStringToObject(m, store_col_text(st, 0), store_col_text(st, 1));
	}
	sqlite3_reset(st);
	st = store_stmt(s, STMT_METRIC_LASTS);
	if (!st) {
		return -EIO;
	}
	m = cJSON_AddObjectToObject(o, "metrics");
	sqlite3_bind_int64(st, 1, seq);
	while (sqlite3_step(st) == SQLITE_ROW) {
		cJSON_AddNumberToObject(m, store_col_text(st, 0), sqlite3_column_double(st, 1));
	}
	sqlite3_reset(st);
	return 0;
}

int store_run_page_json(struct store *s, const struct store_run_filter *f,
			const struct store_run_cursor *from, int limit, cJSON **ret,
			struct store_run_cursor *ret_next)
{
	/* Built per call: the filters change its shape. Keyset paging on
	 * (value,) seq, so a page deep in 100,000 runs costs what the first
	 * does. */
	char sql[2560], *like = NULL, *tag_key = NULL;
	const char *tag_value = NULL, *cmp = f->ascending ? ">" : "<";
	const char *dir = f->ascending ? "ASC" : "DESC";
	bool by_metric = f->sort_metric != NULL, paged = from && from->seq > 0;
	char keyset[160] = "", order[96];
	sqlite3_stmt *st = NULL;
	struct store_run_cursor last = {0, 0};
	int i = 1, rc, n = 0, err = 0;
	cJSON *arr = NULL;

	if (f->text && !(like = like_anywhere(f->text))) {
		return -ENOMEM;
	}
	if (f->tag) {
		tag_key = strdup(f->tag);
		if (!tag_key) {
			free(like);
			return -ENOMEM;
		}
		char *eq = strchr(tag_key, '=');
		if (eq) {
			*eq = '\0';
			tag_value = eq + 1;
		}
	}
	if (paged) {
		if (by_metric) {
			/* A row value, so the index is walked from the cursor on. */
			snprintf(keyset, sizeof(keyset), "AND (m.last_num, m.run_seq) %s (?, ?)", cmp);
		} else {
			snprintf(keyset, sizeof(keyset), "AND r.seq %s ?", cmp);
		}
	}
	if (by_metric) {
		snprintf(order, sizeof(order), "m.last_num %s, m.run_seq %s", dir, dir);
	} else {
		snprintf(order, sizeof(order), "r.seq %s", dir);
	}
	snprintf(sql, sizeof(sql),
		 "SELECT " RUN_COLUMNS ", %s" RUN_FROM "%s WHERE 1 %s %s %s %s %s %s %s ORDER BY %s "
		 "LIMIT ?",
		 by_metric ? "m.last_num" : "NULL",
		 by_metric ? "JOIN metrics m ON m.run_seq = r.seq AND m.name = ? AND m.kind = "
			     "'scalar' AND m.last_num IS NOT NULL "
			   : "",
		 keyset, f->experiment ? "AND e.name = ?" : "",
		 f->status ? "AND r.status = ?" : "", f->kind ? "AND r.kind = ?" : "",
		 f->parent_seq > 0 ? "AND r.parent_seq = ?" : "",
		 like ? "AND (SELECT group_concat(value, ' ') FROM json_each(r.command)) LIKE ? "
			"ESCAPE '\\'"
		      : "",
		 !tag_key ? ""
		 : tag_value
		     ? "AND EXISTS (SELECT 1 FROM run_tags t WHERE t.run_seq = r.seq AND t.key = ? "
		       "AND t.value = ?)"
		     : "AND EXISTS (SELECT 1 FROM run_tags t WHERE t.run_seq = r.seq AND t.key = ?)",
		 order);
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		err = -EIO;
		goto out;
	}
	if (by_metric) {
		sqlite3_bind_text(st, i++, f->sort_metric, -1, SQLITE_TRANSIENT);
	}
	if (paged && by_metric) {
		sqlite3_bind_double(st, i++, from->value);
	}
	if (paged) {
		sqlite3_bind_int64(st, i++, from->seq);
	}
	if (f->experiment) {
		sqlite3_bind_text(st, i++, f->experiment, -1, SQLITE_TRANSIENT);
	}
	if (f->status) {
		sqlite3_bind_text(st, i++, f->status, -1, SQLITE_TRANSIENT);
	}
	if (f->kind) {
		sqlite3_bind_text(st, i++, f->kind, -1, SQLITE_TRANSIENT);
	}
	if (f->parent_seq > 0) {
		sqlite3_bind_int64(st, i++, f->parent_seq);
	}
	if (like) {
		sqlite3_bind_text(st, i++, like, -1, SQLITE_TRANSIENT);
	}
	if (tag_key) {
		sqlite3_bind_text(st, i++, tag_key, -1, SQLITE_TRANSIENT);
		if (tag_value) {
			sqlite3_bind_text(st, i++, tag_value, -1, SQLITE_TRANSIENT);
		}
	}
	/* One more than asked: whether there is a next page. */
	sqlite3_bind_int(st, i, limit + 1);
	arr = cJSON_CreateArray();
	*ret_next = (struct store_run_cursor){0, 0};
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == limit) {
			*ret_next = last;
			break;
		}
		cJSON *o = run_row_json(st);
		last.seq = sqlite3_column_int64(st, 0);
		last.value = sqlite3_column_double(st, sqlite3_column_count(st) - 1);
		cJSON_AddItemToArray(arr, o);
		n++;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		err = store_sqlite_errno(rc) ? store_sqlite_errno(rc) : -EIO;
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	cJSON *o;
	cJSON_ArrayForEach(o, arr)
	{
		err = add_page_extras(s, (int64_t)cJSON_GetObjectItem(o, "seq")->valuedouble, o);
		if (err < 0) {
			goto out;
		}
	}
	*ret = arr;
	arr = NULL;
out:
	sqlite3_finalize(st);
	cJSON_Delete(arr);
	free(like);
	free(tag_key);
	return err;
}

int store_artifacts_json(struct store *s, int64_t seq, cJSON **ret)
{
	sqlite3_stmt *st = store_stmt(s, STMT_ARTIFACTS);
	cJSON *arr;

	if (!st) {
		return -EIO;
	}
	arr = cJSON_CreateArray();
	sqlite3_bind_int64(st, 1, seq);
	while (sqlite3_step(st) == SQLITE_ROW) {
		cJSON *a = cJSON_CreateObject();
		cJSON_AddStringToObject(a, "path", store_col_text(st, 0));
		cJSON_AddNumberToObject(a, "size", (double)sqlite3_column_int64(st, 1));
		cJSON_AddStringToObject(a, "sha256", store_col_text(st, 2));
		cJSON_AddNumberToObject(a, "mode", sqlite3_column_int(st, 3));
		cJSON_AddItemToArray(arr, a);
	}
	sqlite3_reset(st);
	*ret = arr;
	return 0;
}

int store_experiments_json(struct store *s, cJSON **ret)
{
	sqlite3_stmt *st = store_stmt(s, STMT_EXPERIMENTS);
	cJSON *arr;

	if (!st) {
		return -EIO;
	}
	arr = cJSON_CreateArray();
	while (sqlite3_step(st) == SQLITE_ROW) {
		cJSON *e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "name", store_col_text(st, 0));
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
	sqlite3_stmt *st = store_stmt(s, STMT_COUNTS);
	cJSON *o;

	if (!st) {
		return -EIO;
	}
	o = cJSON_CreateObject();
	while (sqlite3_step(st) == SQLITE_ROW) {
		cJSON_AddNumberToObject(o, store_col_text(st, 0),
					(double)sqlite3_column_int64(st, 1));
	}
	sqlite3_reset(st);
	*ret = o;
	return 0;
}

int store_run_tag_set(struct store *s, int64_t seq, const char *key, const char *value,
		      int64_t max_tags)
{
	sqlite3_stmt *st;
	int64_t n;
	int r;

	if (!value) {
		st = store_stmt(s, STMT_TAG_DELETE);
		if (!st) {
			return -EIO;
		}
		sqlite3_bind_int64(st, 1, seq);
		sqlite3_bind_text(st, 2, key, -1, SQLITE_TRANSIENT);
		return store_exec_stmt(st);
	}
	if (max_tags > 0) {
		/* A new key past the limit is refused; updating one is not. */
		sqlite3_stmt *g = store_stmt(s, STMT_TAGS);
		bool exists = false;
		if (!g) {
			return -EIO;
		}
		sqlite3_bind_int64(g, 1, seq);
		while (!exists && sqlite3_step(g) == SQLITE_ROW) {
			exists = strcmp(store_col_text(g, 0), key) == 0;
		}
		sqlite3_reset(g);
		if (!exists) {
			if ((r = store_count_of(s, STMT_TAG_COUNT, seq, &n)) < 0) {
				return r;
			}
			if (n >= max_tags) {
				return -E2BIG;
			}
		}
	}
	st = store_stmt(s, STMT_TAG_SET);
	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, value, -1, SQLITE_TRANSIENT);
	return store_exec_stmt(st);
}

int store_run_property_add(struct store *s, int64_t seq, const char *key, const char *value,
			   int64_t max_properties)
{
	sqlite3_stmt *st = store_stmt(s, STMT_PROPERTY_GET);
	int64_t n;
	int r;

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) == SQLITE_ROW) {
		/* Properties are immutable: the same value again is fine. */
		bool same = strcmp(store_col_text(st, 0), value) == 0;
		sqlite3_reset(st);
		return same ? 0 : -EEXIST;
	}
	sqlite3_reset(st);
	if (max_properties > 0) {
		if ((r = store_count_of(s, STMT_PROPERTY_COUNT, seq, &n)) < 0) {
			return r;
		}
		if (n >= max_properties) {
			return -E2BIG;
		}
	}
	st = store_stmt(s, STMT_PROPERTY_INSERT);
	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, value, -1, SQLITE_TRANSIENT);
	return store_exec_stmt(st);
}

int store_run_set_skipped(struct store *s, int64_t seq, const char *skipped_json)
{
	sqlite3_stmt *st = store_stmt(s, STMT_RUN_SKIPPED);

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_text(st, 2, skipped_json, -1, SQLITE_TRANSIENT);
	return store_exec_stmt(st);
}

int store_run_grant_set(struct store *s, int64_t seq, const char *grant_json)
{
	sqlite3_stmt *st = store_stmt(s, STMT_RUN_GRANT);

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	bind_text_or_null(st, 2, grant_json);
	return store_exec_stmt(st);
}

int store_run_deps(struct store *s, int64_t seq, store_dep_fn cb, void *ud)
{
	sqlite3_stmt *st = store_stmt(s, STMT_DEPS);
	int r = 0;

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	while (r == 0 && sqlite3_step(st) == SQLITE_ROW) {
		r = cb(ud, sqlite3_column_int64(st, 0), store_col_text(st, 1));
	}
	sqlite3_reset(st);
	return r < 0 ? r : 0;
}

int store_run_status(struct store *s, int64_t seq, char *buf, size_t len)
{
	sqlite3_stmt *st = store_stmt(s, STMT_STATUS);
	int r = -ENOENT;

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(buf, len, "%s", store_col_text(st, 0));
		r = 0;
	}
	sqlite3_reset(st);
	return r;
}

/* The detailed run object's "after": what it waits for, and how those are. */
static void deps_json(struct store *s, int64_t seq, cJSON *run)
{
	sqlite3_stmt *st = store_stmt(s, STMT_DEPS_JSON);
	cJSON *arr = cJSON_CreateArray();

	if (st) {
		sqlite3_bind_int64(st, 1, seq);
		while (sqlite3_step(st) == SQLITE_ROW) {
			cJSON *d = cJSON_CreateObject();
			cJSON_AddStringToObject(d, "run", store_col_text(st, 0));
			cJSON_AddNumberToObject(d, "seq", (double)sqlite3_column_int64(st, 1));
			cJSON_AddStringToObject(d, "when", store_col_text(st, 2));
			cJSON_AddStringToObject(d, "status", store_col_text(st, 3));
			cJSON_AddItemToArray(arr, d);
		}
		sqlite3_reset(st);
	}
	cJSON_AddItemToObject(run, "after", arr);
}

int store_run_priority_set(struct store *s, int64_t seq, int priority)
{
	sqlite3_stmt *st = store_stmt(s, STMT_RUN_PRIORITY);

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_int(st, 2, priority);
	return store_exec_stmt(st);
}

int store_run_request_set(struct store *s, int64_t seq, const char *request_json)
{
	sqlite3_stmt *st = store_stmt(s, STMT_RUN_REQUEST);

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_text(st, 2, request_json, -1, SQLITE_TRANSIENT);
	return store_exec_stmt(st);
}

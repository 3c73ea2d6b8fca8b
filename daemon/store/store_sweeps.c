/* The store's sweeps (schema 8, docs/sweeps.md): a sweep's definition,
 * template and sampler state beside its run row; its trials with their
 * parameters; the decisions that stopped trials; the numbers of a metric
 * the controller reads back; and the read side (show, explain, list) as
 * the protocol's JSON, computed from the rows so an ended sweep and a
 * running one read the same way. */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "msg.h"
#include "store_priv.h"

/* Most values of one child's series that sweep.explain hands out. */
#define EXPLAIN_VALUES_MAX 10000

static sqlite3_stmt *prepare(struct store *s, const char *sql)
{
	return store_prepare(s, "sweeps", sql);
}

int store_sweep_insert(struct store *s, int64_t seq, const char *definition,
		       const char *template_json, const char *state, double at)
{
	sqlite3_stmt *st = prepare(s, "INSERT INTO sweeps(run_seq, definition, template, state) "
				      "VALUES(?1, ?2, ?3, ?4)");
	int r;

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_text(st, 2, definition, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, template_json, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, state, -1, SQLITE_STATIC);
	r = store_exec_stmt(st);
	sqlite3_finalize(st);
	if (r < 0) {
		return r;
	}
	/* A sweep has no process: it is Running from the start. The caller's
	 * transaction holds this with the insert. */
	st = prepare(s, "UPDATE runs SET status = 'Running', started_at = ?2 WHERE seq = ?1");
	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_double(st, 2, at);
	r = store_exec_stmt(st);
	sqlite3_finalize(st);
	if (r < 0) {
		return r;
	}
	st = prepare(s, "INSERT INTO transitions(run_seq, status, at) VALUES(?1, 'Running', ?2) "
			"ON CONFLICT(run_seq, status) DO NOTHING");
	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_double(st, 2, at);
	r = store_exec_stmt(st);
	sqlite3_finalize(st);
	return r;
}

int store_sweep_trial_add(struct store *s, int64_t sweep_seq, int64_t child_seq, int64_t trial,
			  const char *params, const char *state)
{
	/* Cached statements: these run once per trial. */
	sqlite3_stmt *st = store_stmt(s, STMT_SWEEP_TRIAL_INSERT);
	int r;

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, child_seq);
	sqlite3_bind_int64(st, 2, sweep_seq);
	sqlite3_bind_int64(st, 3, trial);
	sqlite3_bind_text(st, 4, params, -1, SQLITE_STATIC);
	if ((r = store_exec_stmt(st)) < 0) {
		return r;
	}
	/* The sweep's properties (git, environment) describe every child. */
	st = store_stmt(s, STMT_SWEEP_PROPERTIES);
	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, child_seq);
	sqlite3_bind_int64(st, 2, sweep_seq);
	if ((r = store_exec_stmt(st)) < 0) {
		return r;
	}
	st = store_stmt(s, STMT_SWEEP_STATE);
	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, sweep_seq);
	sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, trial + 1);
	return store_exec_stmt(st);
}

int store_sweep_decision_add(struct store *s, int64_t sweep_seq, int64_t child_seq, double at,
			     int64_t interval, const char *policy, const char *message,
			     const char *detail)
{
	sqlite3_stmt *st = prepare(s, "INSERT INTO sweep_decisions(child_seq, sweep_seq, at, "
				      "interval, policy, message, detail) "
				      "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7) "
				      "ON CONFLICT(child_seq) DO NOTHING");
	int r;

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, child_seq);
	sqlite3_bind_int64(st, 2, sweep_seq);
	sqlite3_bind_double(st, 3, at);
	sqlite3_bind_int64(st, 4, interval);
	sqlite3_bind_text(st, 5, policy, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, message, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, detail ? detail : "{}", -1, SQLITE_STATIC);
	r = store_exec_stmt(st);
	sqlite3_finalize(st);
	return r;
}

int store_sweeps_active(struct store *s, store_sweep_fn cb, void *ud)
{
	sqlite3_stmt *st = prepare(s, "SELECT r.seq, r.id, e.name, r.created_at, r.started_at, "
				      "w.definition, w.template, w.state, w.trials" RUN_FROM
				      "JOIN sweeps w ON w.run_seq = r.seq "
				      "WHERE r.status = 'Running' ORDER BY r.seq");
	int r = 0, rc;

	if (!st) {
		return -EIO;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_sweep_row row = {
			.seq = sqlite3_column_int64(st, 0),
			.id = store_col_text(st, 1),
			.experiment = store_col_text(st, 2),
			.created_at = sqlite3_column_double(st, 3),
			.started_at = sqlite3_column_double(st, 4),
			.definition = store_col_text(st, 5),
			.template_json = store_col_text(st, 6),
			.state = store_col_text(st, 7),
			.trials = sqlite3_column_int64(st, 8),
		};
		if ((r = cb(ud, &row)) != 0) {
			break;
		}
	}
	sqlite3_finalize(st);
	if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW) {
		r = -EIO;
	}
	return r < 0 ? r : 0;
}

int store_sweep_trials(struct store *s, int64_t sweep_seq, store_trial_fn cb, void *ud)
{
	sqlite3_stmt *st = prepare(s, "SELECT r.seq, r.status, t.trial, t.params, "
				      "d.child_seq IS NOT NULL FROM sweep_trials t "
				      "JOIN runs r ON r.seq = t.child_seq "
				      "LEFT JOIN sweep_decisions d ON d.child_seq = t.child_seq "
				      "WHERE t.sweep_seq = ?1 ORDER BY t.trial");
	int r = 0, rc;

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, sweep_seq);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_trial_row row = {
			.seq = sqlite3_column_int64(st, 0),
			.status = store_col_text(st, 1),
			.trial = sqlite3_column_int64(st, 2),
			.params = store_col_text(st, 3),
			.decided = sqlite3_column_int(st, 4) != 0,
		};
		if ((r = cb(ud, &row)) != 0) {
			break;
		}
	}
	sqlite3_finalize(st);
	if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW) {
		r = -EIO;
	}
	return r < 0 ? r : 0;
}

int store_metric_numbers(struct store *s, int64_t seq, const char *name, int64_t after,
			 int64_t max, double *ret, int64_t *ret_n)
{
	sqlite3_stmt *st = store_stmt(s, STMT_METRIC_NUMBERS);
	int64_t n = 0;
	int rc;

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, after);
	sqlite3_bind_int64(st, 4, max);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		/* A point that is text ("NaN", a string) still counts as an
		 * interval: it is the k-th value logged. */
		ret[n++] = sqlite3_column_type(st, 1) == SQLITE_NULL ? sqlite3_column_double(st, 0)
								     : NAN;
	}
	sqlite3_reset(st);
	*ret_n = n;
	return rc == SQLITE_DONE ? 0 : -EIO;
}

/* Read side */

struct sweep_head {
	cJSON *def;
	const char *metric;
	bool maximize;
};

static int head_parse(struct sweep_head *h, const char *definition)
{
	const cJSON *m, *g;

	h->def = cJSON_Parse(definition ? definition : "");
	m = cJSON_GetObjectItemCaseSensitive(h->def, "metric");
	g = cJSON_GetObjectItemCaseSensitive(h->def, "goal");
	if (!cJSON_IsString(m) || !cJSON_IsString(g)) {
		cJSON_Delete(h->def);
		h->def = NULL;
		return -EIO;
	}
	h->metric = m->valuestring;
	h->maximize = strcmp(g->valuestring, "maximize") == 0;
	return 0;
}

/* The child with the best score (docs/protocol.md, BEST), or JSON null. */
static cJSON *best_json(struct store *s, int64_t seq, const struct sweep_head *h)
{
	char sql[640];
	sqlite3_stmt *st;
	cJSON *b;

	snprintf(sql, sizeof(sql),
		 "SELECT r.seq, r.id, r.status, t.params, r.command, m.%s FROM sweep_trials t "
		 "JOIN runs r ON r.seq = t.child_seq "
		 "JOIN metrics m ON m.run_seq = t.child_seq AND m.name = ?2 "
		 "WHERE t.sweep_seq = ?1 AND r.status <> 'Failed' AND m.kind = 'scalar' "
		 "AND m.numeric > 0 ORDER BY m.%s %s, t.trial LIMIT 1",
		 h->maximize ? "max" : "min", h->maximize ? "max" : "min",
		 h->maximize ? "DESC" : "ASC");
	st = prepare(s, sql);
	if (!st) {
		return cJSON_CreateNull();
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_text(st, 2, h->metric, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return cJSON_CreateNull();
	}
	b = cJSON_CreateObject();
	cJSON_AddStringToObject(b, "id", store_col_text(st, 1));
	cJSON_AddNumberToObject(b, "seq", (double)sqlite3_column_int64(st, 0));
	cJSON_AddNumberToObject(b, "value", sqlite3_column_double(st, 5));
	cJSON_AddItemToObject(b, "params", store_json_column(st, 3));
	cJSON *cmd = store_json_column(st, 4), *args = cJSON_CreateArray();
	/* The arguments after the program, as the cloud's runDefinition has them. */
	for (const cJSON *a = cJSON_IsArray(cmd) && cmd->child ? cmd->child->next : NULL; a;
	     a = a->next) {
		cJSON_AddItemToArray(args, cJSON_Duplicate(a, true));
	}
	cJSON_Delete(cmd);
	cJSON_AddItemToObject(b, "arguments", args);
	cJSON_AddStringToObject(b, "status", store_col_text(st, 2));
	sqlite3_finalize(st);
	return b;
}

static cJSON *decision_json(sqlite3_stmt *st, int first)
{
	cJSON *d = cJSON_CreateObject();

	cJSON_AddStringToObject(d, "child", store_col_text(st, first));
	cJSON_AddNumberToObject(d, "child_seq", (double)sqlite3_column_int64(st, first + 1));
	msg_add_time(d, "at", sqlite3_column_double(st, first + 2));
	cJSON_AddNumberToObject(d, "interval", (double)sqlite3_column_int64(st, first + 3));
	cJSON_AddStringToObject(d, "policy", store_col_text(st, first + 4));
	cJSON_AddStringToObject(d, "message", store_col_text(st, first + 5));
	cJSON_AddItemToObject(d, "detail", store_json_column(st, first + 6));
	return d;
}

#define DECISION_COLUMNS "c.id, d.child_seq, d.at, d.interval, d.policy, d.message, d.detail"

static cJSON *decisions_json(struct store *s, int64_t seq)
{
	sqlite3_stmt *st = prepare(s, "SELECT " DECISION_COLUMNS " FROM sweep_decisions d "
				      "JOIN runs c ON c.seq = d.child_seq WHERE d.sweep_seq = ?1 "
				      "ORDER BY d.at, d.child_seq");
	cJSON *arr = cJSON_CreateArray();

	if (!st) {
		return arr;
	}
	sqlite3_bind_int64(st, 1, seq);
	while (sqlite3_step(st) == SQLITE_ROW) {
		cJSON_AddItemToArray(arr, decision_json(st, 0));
	}
	sqlite3_finalize(st);
	return arr;
}

static const char *const statuses[] = {
	"Queued",    "Preparing", "Scaling", "Running",  "CancelRequested",
	"Finalizing", "Completed", "Failed",  "Canceled",
};

static cJSON *counts_json(struct store *s, int64_t seq)
{
	sqlite3_stmt *st = prepare(s, "SELECT status, COUNT(*) FROM runs WHERE parent_seq = ?1 "
				      "GROUP BY status");
	cJSON *c = cJSON_CreateObject();

	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		cJSON_AddNumberToObject(c, statuses[i], 0);
	}
	if (!st) {
		return c;
	}
	sqlite3_bind_int64(st, 1, seq);
	while (sqlite3_step(st) == SQLITE_ROW) {
		cJSON *n = cJSON_GetObjectItemCaseSensitive(c, store_col_text(st, 0));
		if (n) {
			cJSON_SetNumberValue(n, (double)sqlite3_column_int64(st, 1));
		}
	}
	sqlite3_finalize(st);
	return c;
}

/* Every child in trial order with its parameters, its series of the
 * primary metric (bounded), its score and the decision that stopped it. */
static cJSON *children_json(struct store *s, int64_t seq, const struct sweep_head *h)
{
	sqlite3_stmt *st = prepare(s, "SELECT r.id, r.seq, r.status, t.params, m.id, m.numeric, "
				      "m.max, m.min, " DECISION_COLUMNS " FROM sweep_trials t "
				      "JOIN runs r ON r.seq = t.child_seq "
				      "LEFT JOIN metrics m ON m.run_seq = t.child_seq "
				      "AND m.name = ?2 AND m.kind = 'scalar' "
				      "LEFT JOIN sweep_decisions d ON d.child_seq = t.child_seq "
				      "LEFT JOIN runs c ON c.seq = d.child_seq "
				      "WHERE t.sweep_seq = ?1 ORDER BY t.trial");
	sqlite3_stmt *pts = prepare(s, "SELECT num, text FROM metric_points WHERE metric_id = ?1 "
				       "ORDER BY idx LIMIT ?2");
	cJSON *arr = cJSON_CreateArray();

	if (!st || !pts) {
		sqlite3_finalize(st);
		sqlite3_finalize(pts);
		return arr;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_text(st, 2, h->metric, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		cJSON *c = cJSON_CreateObject(), *vals = cJSON_CreateArray();
		const char *status = store_col_text(st, 2);

		cJSON_AddStringToObject(c, "id", store_col_text(st, 0));
		cJSON_AddNumberToObject(c, "seq", (double)sqlite3_column_int64(st, 1));
		cJSON_AddStringToObject(c, "status", status);
		cJSON_AddItemToObject(c, "params", store_json_column(st, 3));
		if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
			sqlite3_reset(pts);
			sqlite3_bind_int64(pts, 1, sqlite3_column_int64(st, 4));
			sqlite3_bind_int(pts, 2, EXPLAIN_VALUES_MAX);
			while (sqlite3_step(pts) == SQLITE_ROW) {
				cJSON_AddItemToArray(vals, sqlite3_column_type(pts, 1) == SQLITE_NULL
								   ? cJSON_CreateNumber(
									     sqlite3_column_double(pts, 0))
								   : cJSON_CreateNull());
			}
		}
		cJSON_AddItemToObject(c, "values", vals);
		if (sqlite3_column_int64(st, 5) > 0 && strcmp(status, "Failed") != 0) {
			cJSON_AddNumberToObject(c, "score",
						sqlite3_column_double(st, h->maximize ? 6 : 7));
		} else {
			cJSON_AddNullToObject(c, "score");
		}
		if (sqlite3_column_type(st, 8) != SQLITE_NULL) {
			cJSON_AddItemToObject(c, "decision", decision_json(st, 8));
		} else {
			cJSON_AddNullToObject(c, "decision");
		}
		cJSON_AddItemToArray(arr, c);
	}
	sqlite3_finalize(st);
	sqlite3_finalize(pts);
	return arr;
}

int store_sweep_json(struct store *s, int64_t seq, bool explain, cJSON **ret)
{
	sqlite3_stmt *st = prepare(s, "SELECT r.id, e.name, r.status, r.created_at, r.ended_at, "
				      "r.error_code, r.error_message, w.definition, w.trials" RUN_FROM
				      "JOIN sweeps w ON w.run_seq = r.seq WHERE r.seq = ?1");
	struct sweep_head h = {0};
	cJSON *o = NULL;
	int r = -ENOENT;

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	if (sqlite3_step(st) != SQLITE_ROW) {
		goto out;
	}
	if ((r = head_parse(&h, store_col_text(st, 7))) < 0) {
		goto out;
	}
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", store_col_text(st, 0));
	cJSON_AddNumberToObject(o, "seq", (double)seq);
	cJSON_AddStringToObject(o, "experiment", store_col_text(st, 1));
	cJSON_AddStringToObject(o, "status", store_col_text(st, 2));
	msg_add_time(o, "created_at", sqlite3_column_double(st, 3));
	msg_add_time(o, "ended_at", sqlite3_column_double(st, 4));
	cJSON_AddStringToObject(o, "metric", h.metric);
	cJSON_AddStringToObject(o, "goal", h.maximize ? "maximize" : "minimize");
	cJSON_AddNumberToObject(o, "trials", (double)sqlite3_column_int64(st, 8));
	if (explain) {
		cJSON *pol = cJSON_DetachItemFromObjectCaseSensitive(h.def, "policy");
		cJSON_AddItemToObject(o, "policy", pol ? pol : cJSON_CreateNull());
		cJSON_AddItemToObject(o, "decisions", decisions_json(s, seq));
		cJSON_AddItemToObject(o, "children", children_json(s, seq, &h));
	} else {
		cJSON_AddItemToObject(o, "counts", counts_json(s, seq));
		cJSON_AddItemToObject(o, "best", best_json(s, seq, &h));
		cJSON_AddItemToObject(o, "decisions", decisions_json(s, seq));
		if (sqlite3_column_type(st, 5) == SQLITE_NULL) {
			cJSON_AddNullToObject(o, "error");
		} else {
			cJSON *e = cJSON_AddObjectToObject(o, "error");
			cJSON_AddStringToObject(e, "code", store_col_text(st, 5));
			cJSON_AddStringToObject(e, "message",
						store_col_text(st, 6) ? store_col_text(st, 6) : "");
		}
		cJSON_AddItemToObject(o, "definition", h.def);
		h.def = NULL;
	}
	*ret = o;
	o = NULL;
	r = 0;
out:
	sqlite3_finalize(st);
	cJSON_Delete(h.def);
	cJSON_Delete(o);
	return r;
}

int store_sweep_list_json(struct store *s, const char *experiment, int limit, cJSON **ret)
{
	char sql[512];
	sqlite3_stmt *st;
	cJSON *arr;
	int rc;

	snprintf(sql, sizeof(sql),
		 "SELECT r.seq, r.id, e.name, r.status, r.created_at, r.ended_at, w.definition, "
		 "w.trials" RUN_FROM "JOIN sweeps w ON w.run_seq = r.seq "
		 "WHERE r.kind = 'sweep' %s ORDER BY r.seq DESC LIMIT ?1",
		 experiment ? "AND e.name = ?2" : "");
	st = prepare(s, sql);
	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int(st, 1, limit);
	if (experiment) {
		sqlite3_bind_text(st, 2, experiment, -1, SQLITE_STATIC);
	}
	arr = cJSON_CreateArray();
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct sweep_head h;
		int64_t seq = sqlite3_column_int64(st, 0);
		cJSON *o;

		if (head_parse(&h, store_col_text(st, 6)) < 0) {
			continue;
		}
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "id", store_col_text(st, 1));
		cJSON_AddNumberToObject(o, "seq", (double)seq);
		cJSON_AddStringToObject(o, "experiment", store_col_text(st, 2));
		cJSON_AddStringToObject(o, "status", store_col_text(st, 3));
		msg_add_time(o, "created_at", sqlite3_column_double(st, 4));
		msg_add_time(o, "ended_at", sqlite3_column_double(st, 5));
		cJSON_AddStringToObject(o, "metric", h.metric);
		cJSON_AddStringToObject(o, "goal", h.maximize ? "maximize" : "minimize");
		const cJSON *smp = cJSON_GetObjectItemCaseSensitive(h.def, "sampling");
		const cJSON *mt = cJSON_GetObjectItemCaseSensitive(h.def, "max_total");
		cJSON_AddStringToObject(o, "sampling", cJSON_IsString(smp) ? smp->valuestring : "");
		cJSON_AddNumberToObject(o, "trials", (double)sqlite3_column_int64(st, 7));
		cJSON_AddNumberToObject(o, "max_total", cJSON_IsNumber(mt) ? mt->valuedouble : 0);
		cJSON_AddItemToObject(o, "best", best_json(s, seq, &h));
		cJSON_AddItemToArray(arr, o);
		cJSON_Delete(h.def);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		cJSON_Delete(arr);
		return -EIO;
	}
	*ret = arr;
	return 0;
}

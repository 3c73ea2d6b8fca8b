/* The store's tracking: what a run writes from inside (schema version 3,
 * docs/tracking.md): its token and how far its tracking file has been read,
 * metric series with their summaries and points, and the warnings about a
 * run, with the JSON the protocol hands out for them. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "msg.h"
#include "store_priv.h"

/* Tracking (schema version 3). */

int store_run_tracking_get(struct store *s, int64_t seq, char ret_token[33], int64_t *ret_offset)
{
	sqlite3_stmt *st = store_stmt(s, STMT_TRACKING_GET);
	int r = -ENOENT;

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	if (sqlite3_step(st) == SQLITE_ROW) {
		const char *t = store_col_text(st, 0);
		snprintf(ret_token, 33, "%s", t && strlen(t) == 32 ? t : "");
		*ret_offset = sqlite3_column_int64(st, 1);
		r = 0;
	}
	sqlite3_reset(st);
	return r;
}

int store_run_token_set(struct store *s, int64_t seq, const char *token)
{
	sqlite3_stmt *st = store_stmt(s, STMT_TOKEN_SET);

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_text(st, 2, token, -1, SQLITE_TRANSIENT);
	return store_exec_stmt(st);
}

int store_run_by_token(struct store *s, const char *token, int64_t *ret_seq)
{
	sqlite3_stmt *st = store_stmt(s, STMT_RUN_BY_TOKEN);
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
	sqlite3_stmt *st = store_stmt(s, STMT_TRACKING_OFFSET);

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_int64(st, 2, offset);
	return store_exec_stmt(st);
}

int store_metric_series(struct store *s, int64_t seq, const char *name, const char *kind,
			struct store_metric *ret)
{
	sqlite3_stmt *st = store_stmt(s, STMT_METRIC_GET);
	int r;

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) == SQLITE_ROW) {
		ret->id = sqlite3_column_int64(st, 0);
		snprintf(ret->kind, sizeof(ret->kind), "%s",
			 store_col_text(st, 1) ? store_col_text(st, 1) : "");
		ret->count = sqlite3_column_int64(st, 2);
		sqlite3_reset(st);
		return 0;
	}
	sqlite3_reset(st);
	if (!kind) {
		return -ENOENT;
	}
	st = store_stmt(s, STMT_METRIC_INSERT);
	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, kind, -1, SQLITE_TRANSIENT);
	if ((r = store_exec_stmt(st)) < 0) {
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
	sqlite3_stmt *st = store_stmt(s, STMT_POINT_INSERT);

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
	return store_exec_stmt(st);
}

int store_metric_summary_update(struct store *s, int64_t metric_id,
				const struct store_metric_summary *sum)
{
	sqlite3_stmt *st = store_stmt(s, STMT_METRIC_UPDATE);

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
	return store_exec_stmt(st);
}

/* A stored value as JSON: scalars are a number (num) or a string (text);
 * the other kinds keep their value as JSON text, which the daemon wrote. */
static cJSON *point_value(sqlite3_stmt *st, int num_col, int text_col, bool scalar)
{
	if (sqlite3_column_type(st, text_col) != SQLITE_NULL) {
		const char *t = store_col_text(st, text_col);
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
	const char *kind = store_col_text(st, 2);

	cJSON_AddStringToObject(m, "name", store_col_text(st, 1));
	cJSON_AddStringToObject(m, "kind", kind);
	cJSON_AddNumberToObject(m, "count", (double)sqlite3_column_int64(st, 3));
	if (sqlite3_column_bytes(st, 10) > STORE_SUMMARY_VALUE_MAX) {
		cJSON_AddNullToObject(m, "last");
		cJSON_AddTrueToObject(m, "last_omitted");
	} else {
		cJSON_AddItemToObject(m, "last",
				      point_value(st, 9, 10, strcmp(kind, "scalar") == 0));
	}
	store_add_int_or_null(m, "last_step", st, 7);
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
	sqlite3_stmt *st = store_stmt(s, STMT_POINT_NUM);
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

	if (sqlite3_prepare_v2(s->db, store_stmt_sql[STMT_METRICS], -1, &st, NULL) != SQLITE_OK) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	arr = cJSON_CreateArray();
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		cJSON *m = metric_row_json(st);
		cJSON_AddItemToArray(arr, m);
		if (spark > 1 && strcmp(store_col_text(st, 2), "scalar") == 0 &&
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
		r = store_sqlite_errno(rc) ? store_sqlite_errno(rc) : -EIO;
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
	sqlite3_stmt *st = store_stmt(s, STMT_METRIC_BY_NAME);
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
	scalar = strcmp(store_col_text(st, 2), "scalar") == 0;
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", store_col_text(st, 1));
	cJSON_AddStringToObject(o, "kind", store_col_text(st, 2));
	cJSON_AddNumberToObject(o, "count", (double)count);
	sqlite3_reset(st);

	points = cJSON_AddArrayToObject(o, "points");
	st = store_stmt(s, STMT_POINTS);
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
		return store_sqlite_errno(rc) ? store_sqlite_errno(rc) : -EIO;
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

	if ((r = store_count_of(s, STMT_WARNING_COUNT, seq, &n)) < 0) {
		return r;
	}
	if (n >= STORE_WARNINGS_MAX) {
		st = store_stmt(s, STMT_WARNING_DROPPED);
		if (!st) {
			return -EIO;
		}
		sqlite3_bind_int64(st, 1, seq);
		return store_exec_stmt(st);
	}
	st = store_stmt(s, STMT_WARNING_INSERT);
	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_double(st, 2, at);
	sqlite3_bind_text(st, 3, message, -1, SQLITE_TRANSIENT);
	return store_exec_stmt(st);
}

/* The run's warnings, for the detailed run object. */
int store_run_warnings_json(struct store *s, int64_t seq, cJSON *run)
{
	sqlite3_stmt *st = store_stmt(s, STMT_WARNINGS);
	cJSON *arr = cJSON_AddArrayToObject(run, "warnings");
	int64_t dropped = 0;

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, seq);
	while (sqlite3_step(st) == SQLITE_ROW) {
		cJSON *w = cJSON_CreateObject();
		msg_add_time(w, "at", sqlite3_column_double(st, 0));
		cJSON_AddStringToObject(w, "message", store_col_text(st, 1));
		cJSON_AddItemToArray(arr, w);
		dropped = sqlite3_column_int64(st, 2);
	}
	sqlite3_reset(st);
	cJSON_AddNumberToObject(run, "warnings_dropped", (double)dropped);
	return 0;
}

int store_metric_count(struct store *s, int64_t seq, int64_t *ret)
{
	return store_count_of(s, STMT_METRIC_COUNT, seq, ret);
}

const int store_rollup_shift[STORE_ROLLUP_LEVELS] = {5, 10, 15};

void store_rollup_init(struct store_rollup *r, int64_t metric_id)
{
	r->metric_id = metric_id;
	for (int i = 0; i < STORE_ROLLUP_LEVELS; i++) {
		r->lv[i].bucket = -1;
	}
}

static int rollup_write(struct store *s, int64_t metric_id, int shift, struct store_rollup_bucket *b)
{
	sqlite3_stmt *st = store_stmt(s, STMT_ROLLUP_MERGE);

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, metric_id);
	sqlite3_bind_int(st, 2, shift);
	sqlite3_bind_int64(st, 3, b->bucket);
	sqlite3_bind_int64(st, 4, b->n);
	sqlite3_bind_double(st, 5, b->lo);
	sqlite3_bind_int64(st, 6, b->lo_idx);
	sqlite3_bind_int64(st, 7, b->lo_step);
	sqlite3_bind_double(st, 8, b->hi);
	sqlite3_bind_int64(st, 9, b->hi_idx);
	sqlite3_bind_int64(st, 10, b->hi_step);
	b->bucket = -1;
	return store_exec_stmt(st);
}

int store_rollup_add(struct store *s, struct store_rollup *r, int64_t idx, int64_t step, double v)
{
	int err;

	for (int i = 0; i < STORE_ROLLUP_LEVELS; i++) {
		struct store_rollup_bucket *b = &r->lv[i];
		int64_t bucket = idx >> store_rollup_shift[i];

		if (b->bucket != bucket) {
			if (b->bucket >= 0 &&
			    (err = rollup_write(s, r->metric_id, store_rollup_shift[i], b)) < 0) {
				return err;
			}
			*b = (struct store_rollup_bucket){bucket, 0, v, v, idx, step, idx, step};
		} else if (v < b->lo) {
			b->lo = v, b->lo_idx = idx, b->lo_step = step;
		} else if (v > b->hi) {
			b->hi = v, b->hi_idx = idx, b->hi_step = step;
		}
		b->n++;
	}
	return 0;
}

int store_rollup_flush(struct store *s, struct store_rollup *r)
{
	int err;

	for (int i = 0; i < STORE_ROLLUP_LEVELS; i++) {
		if (r->lv[i].bucket >= 0 &&
		    (err = rollup_write(s, r->metric_id, store_rollup_shift[i], &r->lv[i])) < 0) {
			return err;
		}
	}
	return 0;
}

static void add_point(cJSON *pts, int64_t step, double v)
{
	cJSON *p = cJSON_CreateArray();

	cJSON_AddItemToArray(p, cJSON_CreateNumber((double)step));
	cJSON_AddItemToArray(p, cJSON_CreateNumber(v));
	cJSON_AddItemToArray(pts, p);
}

/* The chart's bucket being filled: its extremes and where they were. */
struct chart_bucket {
	int64_t bucket; /* -1: none yet */
	double lo, hi;
	int64_t lo_idx, lo_step, hi_idx, hi_step;
};

/* The two extremes of a bucket in the order they came (one, if the same). */
static void chart_emit(cJSON *pts, const struct chart_bucket *b)
{
	bool lo_first = b->lo_idx <= b->hi_idx;

	if (b->bucket < 0) {
		return;
	}
	add_point(pts, lo_first ? b->lo_step : b->hi_step, lo_first ? b->lo : b->hi);
	if (b->lo_idx != b->hi_idx) {
		add_point(pts, lo_first ? b->hi_step : b->lo_step, lo_first ? b->hi : b->lo);
	}
}

/* Fold a span [idx of its lo, its hi] into the chart's bucket; a new
 * bucket emits the one before. */
static void chart_fold(cJSON *pts, struct chart_bucket *b, int64_t bucket,
		       const struct chart_bucket *in)
{
	if (b->bucket != bucket) {
		chart_emit(pts, b);
		*b = *in;
		b->bucket = bucket;
		return;
	}
	if (in->lo < b->lo) {
		b->lo = in->lo, b->lo_idx = in->lo_idx, b->lo_step = in->lo_step;
	}
	if (in->hi > b->hi) {
		b->hi = in->hi, b->hi_idx = in->hi_idx, b->hi_step = in->hi_step;
	}
}

int store_metric_chart_json(struct store *s, int64_t seq, const char *name, int64_t max_points,
			    cJSON **ret)
{
	struct store_metric m;
	struct chart_bucket cur = {.bucket = -1};
	sqlite3_stmt *st = NULL;
	int64_t width;
	int shift = -1;
	cJSON *o = NULL, *pts;
	int rc, err;

	err = store_metric_series(s, seq, name, NULL, &m);
	if (err < 0) {
		return err;
	}
	/* Two points a bucket and the last one: at most max_points. Buckets
	 * are counted over every point, numbers or not. */
	int64_t buckets = max_points > 2 ? (max_points - 1) / 2 : 1;
	width = m.count <= max_points ? 1 : (m.count + buckets - 1) / buckets;
	/* The coarsest rollup that fits in a bucket, and buckets widened to a
	 * multiple of it, so each rollup falls in one bucket. */
	for (int i = STORE_ROLLUP_LEVELS - 1; i >= 0 && shift < 0; i--) {
		if (width >= (INT64_C(1) << store_rollup_shift[i])) {
			shift = store_rollup_shift[i];
		}
	}
	if (shift >= 0) {
		int64_t size = INT64_C(1) << shift;
		width = (width + size - 1) / size * size;
		st = store_stmt(s, STMT_ROLLUPS);
	} else {
		st = store_stmt(s, STMT_POINTS);
	}
	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, m.id);
	if (shift >= 0) {
		sqlite3_bind_int(st, 2, shift);
	} else {
		sqlite3_bind_int64(st, 2, 0);
		sqlite3_bind_int64(st, 3, m.count);
	}
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", name);
	cJSON_AddNumberToObject(o, "count", (double)m.count);
	pts = cJSON_AddArrayToObject(o, "points");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct chart_bucket in;
		int64_t first; /* the row's first index */

		if (shift >= 0) {
			first = sqlite3_column_int64(st, 0) << shift;
			in.lo = sqlite3_column_double(st, 1);
			in.lo_idx = sqlite3_column_int64(st, 2);
			in.lo_step = sqlite3_column_int64(st, 3);
			in.hi = sqlite3_column_double(st, 4);
			in.hi_idx = sqlite3_column_int64(st, 5);
			in.hi_step = sqlite3_column_int64(st, 6);
		} else {
			if (sqlite3_column_type(st, 3) == SQLITE_NULL) {
				continue; /* not a number */
			}
			first = in.lo_idx = in.hi_idx = sqlite3_column_int64(st, 0);
			in.lo_step = in.hi_step = sqlite3_column_int64(st, 1);
			in.lo = in.hi = sqlite3_column_double(st, 3);
		}
		if (width == 1) {
			add_point(pts, in.lo_step, in.lo);
		} else {
			chart_fold(pts, &cur, first / width, &in);
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		err = -EIO;
		goto fail;
	}
	chart_emit(pts, &cur);
	if (width > 1 && cur.bucket >= 0) {
		/* The last point exact, unless the last bucket gave it already. */
		st = store_stmt(s, STMT_POINT_LAST_NUM);
		if (!st) {
			err = -EIO;
			goto fail;
		}
		sqlite3_bind_int64(st, 1, m.id);
		if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) != cur.lo_idx &&
		    sqlite3_column_int64(st, 0) != cur.hi_idx) {
			add_point(pts, sqlite3_column_int64(st, 1), sqlite3_column_double(st, 2));
		}
		sqlite3_reset(st);
	}
	cJSON_AddBoolToObject(o, "downsampled", width > 1);
	*ret = o;
	return 0;
fail:
	cJSON_Delete(o);
	return err;
}

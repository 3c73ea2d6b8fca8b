/* The SQLite run history: schema, runs, transitions, log chunks, artifacts. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store.h"
#include "test.h"
#include "util.h"

static char dir[] = "/tmp/runyard-test-store-XXXXXX";
static char dbpath[256];

static int64_t insert(struct store *s, const char *id, const char *exp)
{
	struct store_run_new n = {
		.id = id,
		.experiment = exp,
		.priority = 5,
		.command_json = "[\"train.py\",\"--x\"]",
		.argv_json = "[\"/usr/bin/python3\",\"train.py\",\"--x\"]",
		.python = "python3",
		.source = "/src",
		.snapshot = "ab",
		.env_json = "{\"K\":\"V\"}",
		.timeout = 30,
		.created_at = 1000.5,
	};
	int64_t seq = 0;

	EXPECT_INT(store_run_insert(s, &n, &seq), 0);
	return seq;
}

struct chunks {
	int calls;
	int64_t first[8];
	int64_t n[8];
};

static int chunk_cb(void *ud, int64_t first, int64_t n, const void *data, size_t len)
{
	struct chunks *c = ud;

	if (c->calls < 8) {
		c->first[c->calls] = first;
		c->n[c->calls] = n;
	}
	c->calls++;
	return 0;
}

static int count_active(void *ud, const struct store_run_row *row)
{
	(*(int *)ud)++;
	return 0;
}

static void test_runs(void)
{
	struct store *s = NULL;
	char *cause = NULL;
	cJSON *j = NULL;

	EXPECT_INT(store_open(dbpath, &s, &cause), 0);
	int64_t a = insert(s, "exp_1_aaaaaaaa", "exp");
	int64_t b = insert(s, "other_1_bbbbbbbb", "other");
	EXPECT_INT(a, 1);
	EXPECT_INT(b, 2);

	int64_t seq = 0;
	EXPECT_INT(store_run_resolve(s, "2", &seq), 0);
	EXPECT_INT(seq, 2);
	EXPECT_INT(store_run_resolve(s, "#1", &seq), 0);
	EXPECT_INT(seq, 1);
	EXPECT_INT(store_run_resolve(s, "other_1_bbbbbbbb", &seq), 0);
	EXPECT_INT(seq, 2);
	EXPECT_INT(store_run_resolve(s, "99", &seq), -ENOENT);
	EXPECT_INT(store_run_resolve(s, "nope", &seq), -ENOENT);

	EXPECT_INT(store_run_transition(s, a, "Preparing", 1001, false), 0);
	EXPECT_INT(store_run_transition(s, a, "Running", 1002, false), 0);
	EXPECT_INT(store_run_transition(s, a, "Failed", 1004.25, true), 0);
	EXPECT_INT(store_run_set_error(s, a, "UserError", "exited 3", "Running"), 0);
	struct store_exit e = {.has_exit_code = true, .exit_code = 3, .utime = 1.5, .maxrss_kb = 42};
	EXPECT_INT(store_run_set_exit(s, a, &e), 0);

	EXPECT_INT(store_run_json(s, a, true, &j), 0);
	EXPECT_STR(cJSON_GetObjectItem(j, "status")->valuestring, "Failed");
	EXPECT_STR(cJSON_GetObjectItem(j, "experiment")->valuestring, "exp");
	EXPECT_INT(cJSON_GetObjectItem(j, "exit_code")->valueint, 3);
	EXPECT(cJSON_IsNull(cJSON_GetObjectItem(j, "signal")));
	EXPECT(cJSON_GetObjectItem(j, "duration")->valuedouble == 2.25);
	cJSON *err = cJSON_GetObjectItem(j, "error");
	EXPECT_STR(cJSON_GetObjectItem(err, "code")->valuestring, "UserError");
	EXPECT_STR(cJSON_GetObjectItem(err, "stage")->valuestring, "Running");
	cJSON *t = cJSON_GetObjectItem(j, "transitions");
	EXPECT_INT(cJSON_GetArraySize(t), 4);
	EXPECT_STR(t->child->string, "Queued");
	EXPECT_STR(t->child->next->next->next->string, "Failed");
	EXPECT_STR(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "command"), 1)->valuestring, "--x");
	EXPECT_STR(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "env"), "K")->valuestring, "V");
	cJSON_Delete(j);
	EXPECT_INT(store_run_json(s, 77, false, &j), -ENOENT);

	/* Listing: newest first, filters. */
	EXPECT_INT(store_run_list_json(s, NULL, NULL, 0, 10, &j), 0);
	EXPECT_INT(cJSON_GetArraySize(j), 2);
	EXPECT_INT(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 0), "seq")->valueint, 2);
	cJSON_Delete(j);
	EXPECT_INT(store_run_list_json(s, "exp", NULL, 0, 10, &j), 0);
	EXPECT_INT(cJSON_GetArraySize(j), 1);
	cJSON_Delete(j);
	EXPECT_INT(store_run_list_json(s, NULL, "Queued", 0, 10, &j), 0);
	EXPECT_INT(cJSON_GetArraySize(j), 1);
	cJSON_Delete(j);

	int active = 0;
	EXPECT_INT(store_runs_active(s, count_active, &active), 0);
	EXPECT_INT(active, 1);

	/* Log chunks: lines and the read offset move together. */
	const char *c1 = "o 1 2 hi\ne 2 3 err\n";
	const char *c2 = "o 3 1 x\n";
	EXPECT_INT(store_log_append(s, b, 1, 2, c1, strlen(c1), (int64_t)strlen(c1)), 0);
	EXPECT_INT(store_log_append(s, b, 3, 1, c2, strlen(c2), (int64_t)(strlen(c1) + strlen(c2))), 0);
	struct chunks ch = {0};
	EXPECT_INT(store_log_read(s, b, 0, chunk_cb, &ch), 0);
	EXPECT_INT(ch.calls, 2);
	EXPECT_INT(ch.first[1], 3);
	memset(&ch, 0, sizeof(ch));
	EXPECT_INT(store_log_read(s, b, 2, chunk_cb, &ch), 0);
	EXPECT_INT(ch.calls, 1);
	EXPECT_INT(ch.first[0], 3);
	/* The same chunk twice is refused, so a replay cannot duplicate lines. */
	EXPECT(store_log_append(s, b, 3, 1, c2, strlen(c2), 99) < 0);

	char sha[65];
	int64_t size;
	char hex[65];
	memset(hex, 'a', 64);
	hex[64] = '\0';
	EXPECT_INT(store_artifact_put(s, b, "outputs/m.bin", 12, hex, 0644), 0);
	EXPECT_INT(store_artifact_get(s, b, "outputs/m.bin", sha, &size), 0);
	EXPECT_STR(sha, hex);
	EXPECT_INT(size, 12);
	EXPECT_INT(store_artifact_get(s, b, "outputs/none", sha, &size), -ENOENT);

	EXPECT_INT(store_experiments_json(s, &j), 0);
	EXPECT_INT(cJSON_GetArraySize(j), 2);
	cJSON_Delete(j);

	/* Tags change; properties do not; both have a count limit. */
	EXPECT_INT(store_run_tag_set(s, b, "stage", "dev", 2), 0);
	EXPECT_INT(store_run_tag_set(s, b, "stage", "prod", 2), 0);
	EXPECT_INT(store_run_tag_set(s, b, "owner", "me", 2), 0);
	EXPECT_INT(store_run_tag_set(s, b, "third", "x", 2), -E2BIG);
	EXPECT_INT(store_run_tag_set(s, b, "owner", "you", 2), 0);
	EXPECT_INT(store_run_property_add(s, b, "git.commit", "abc", 1), 0);
	EXPECT_INT(store_run_property_add(s, b, "git.commit", "abc", 1), 0);
	EXPECT_INT(store_run_property_add(s, b, "git.commit", "def", 1), -EEXIST);
	EXPECT_INT(store_run_property_add(s, b, "other", "x", 1), -E2BIG);
	EXPECT_INT(store_run_json(s, b, true, &j), 0);
	EXPECT_STR(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "tags"), "stage")->valuestring, "prod");
	EXPECT_STR(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "properties"), "git.commit")->valuestring, "abc");
	EXPECT(cJSON_IsArray(cJSON_GetObjectItem(j, "skipped")));
	cJSON_Delete(j);
	EXPECT_INT(store_run_tag_set(s, b, "stage", NULL, 2), 0);
	store_close(s);

	/* Reopened: everything is still there. */
	s = NULL;
	EXPECT_INT(store_open(dbpath, &s, &cause), 0);
	EXPECT_INT(store_run_json(s, b, false, &j), 0);
	EXPECT_INT(cJSON_GetObjectItem(j, "log_lines")->valueint, 3);
	cJSON_Delete(j);
	store_close(s);
}

/* The chart of a series as a plain scan would draw it in buckets of width
 * points: each bucket's extremes in the order they came, then the last
 * numeric point unless the last bucket gave it. */
static int ref_chart(const double *v, const bool *isnum, int64_t n, int64_t width, double *out_v,
		     int64_t *out_idx)
{
	int64_t k = 0, bucket = -1, lo = 0, hi = 0, last = -1;

	for (int64_t i = 0; i <= n; i++) {
		if (i < n && !isnum[i]) {
			continue;
		}
		if (i == n || i / width != bucket) {
			if (bucket >= 0) {
				int64_t a = lo <= hi ? lo : hi, b = lo <= hi ? hi : lo;
				out_idx[k] = a, out_v[k++] = v[a];
				if (a != b) {
					out_idx[k] = b, out_v[k++] = v[b];
				}
			}
			if (i == n) {
				break;
			}
			bucket = i / width, lo = hi = i;
		} else if (v[i] < v[lo]) {
			lo = i;
		} else if (v[i] > v[hi]) {
			hi = i;
		}
		last = i;
	}
	if (width > 1 && last >= 0 && out_idx[k - 1] != last && (k < 2 || out_idx[k - 2] != last)) {
		out_idx[k] = last, out_v[k++] = v[last];
	}
	return (int)k;
}

/* What store_metric_chart_json draws must be what the scan draws, in the
 * widened buckets the rollups allow, for any length and point budget. */
static void expect_chart(struct store *s, int64_t seq, const char *name, const double *v,
			 const bool *isnum, int64_t n, int64_t max_points)
{
	static double rv[4096];
	static int64_t ri[4096];
	int64_t buckets = max_points > 2 ? (max_points - 1) / 2 : 1;
	int64_t width = n <= max_points ? 1 : (n + buckets - 1) / buckets;
	cJSON *j = NULL;

	for (int i = 2; i >= 0; i--) {
		int64_t size = INT64_C(1) << (5 * (i + 1));
		if (width >= size) {
			width = (width + size - 1) / size * size;
			break;
		}
	}
	int k = ref_chart(v, isnum, n, width, rv, ri);
	EXPECT_INT(store_metric_chart_json(s, seq, name, max_points, &j), 0);
	if (!j) {
		return;
	}
	cJSON *pts = cJSON_GetObjectItem(j, "points");
	EXPECT(cJSON_GetArraySize(pts) <= max_points);
	EXPECT_INT(cJSON_GetArraySize(pts), k);
	int i = 0, bad = 0;
	for (cJSON *p = pts ? pts->child : NULL; p && i < k; p = p->next, i++) {
		/* Steps are 10 * index here. */
		bad += cJSON_GetArrayItem(p, 0)->valuedouble != (double)(ri[i] * 10) ||
		       cJSON_GetArrayItem(p, 1)->valuedouble != rv[i];
	}
	if (bad) {
		fprintf(stderr, "chart of %s (%lld points, at most %lld): %d points differ\n", name,
			(long long)n, (long long)max_points, bad);
	}
	EXPECT_INT(bad, 0);
	EXPECT_INT(cJSON_IsTrue(cJSON_GetObjectItem(j, "downsampled")), width > 1);
	cJSON_Delete(j);
}

static void test_charts(void)
{
	static const int64_t lengths[] = {1, 40, 1000, 70000, 300000};
	static const int64_t budgets[] = {3, 100, 999, 2000};
	struct store *s = NULL;
	char *cause = NULL;
	uint64_t x = 88172645463325252ULL;
	const int64_t max = 300000;
	double *v = malloc(sizeof(*v) * max);
	bool *isnum = malloc(sizeof(*isnum) * max);

	EXPECT_INT(store_open(dbpath, &s, &cause), 0);
	int64_t seq = insert(s, "charts_1_cccccccc", "charts");
	for (size_t li = 0; li < sizeof(lengths) / sizeof(lengths[0]); li++) {
		int64_t n = lengths[li];
		char name[32];
		struct store_metric m;
		struct store_rollup roll;

		snprintf(name, sizeof(name), "m%lld", (long long)n);
		EXPECT_INT(store_metric_series(s, seq, name, "scalar", &m), 0);
		/* Written in transactions of odd sizes, the accumulator
		 * flushed and taken anew at each, as the ingest does. */
		for (int64_t i = 0; i < n;) {
			int64_t end = i + 1 + (int64_t)(x % 7777);
			EXPECT_INT(store_begin(s), 0);
			store_rollup_init(&roll, m.id);
			for (; i < n && i < end; i++) {
				x ^= x << 13, x ^= x >> 7, x ^= x << 17;
				v[i] = (double)(x % 1000) / 10.0 + (x % 997 == 0 ? 1e6 : 0);
				isnum[i] = x % 23 != 0;
				EXPECT_INT(store_metric_point_add(s, m.id, i, i * 10, 1.0, v[i],
								  isnum[i] ? NULL : "NaN"),
					   0);
				if (isnum[i]) {
					EXPECT_INT(store_rollup_add(s, &roll, i, i * 10, v[i]), 0);
				}
			}
			EXPECT_INT(store_rollup_flush(s, &roll), 0);
			EXPECT_INT(store_commit(s), 0);
		}
		struct store_metric_summary sum = {.count = n, .last_step = (n - 1) * 10};
		EXPECT_INT(store_metric_summary_update(s, m.id, &sum), 0);
		for (size_t bi = 0; bi < sizeof(budgets) / sizeof(budgets[0]); bi++) {
			expect_chart(s, seq, name, v, isnum, n, budgets[bi]);
		}
	}
	store_close(s);

	/* A store from before the rollups: migration 14 rolls up what it has. */
	sqlite3 *db;
	sqlite3_open(dbpath, &db);
	EXPECT_INT(sqlite3_exec(db,
				"DROP TABLE metric_rollups; DROP INDEX metrics_by_value; "
				"PRAGMA user_version = 13",
				NULL, NULL, NULL),
		   SQLITE_OK);
	sqlite3_close(db);
	s = NULL;
	EXPECT_INT(store_open(dbpath, &s, &cause), 0);
	if (!s) {
		goto out;
	}
	expect_chart(s, seq, "m300000", v, isnum, 300000, 1000);
	expect_chart(s, seq, "m300000", v, isnum, 300000, 2000);
	EXPECT_INT(store_metric_chart_json(s, seq, "nope", 100, &(cJSON *){NULL}), -ENOENT);
	store_close(s);
out:
	free(v);
	free(isnum);
}

static void test_schema_version(void)
{
	sqlite3 *db;
	struct store *s = NULL;
	char *cause = NULL;

	/* A database from a newer runyardd is refused, not mangled. */
	sqlite3_open(dbpath, &db);
	sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL);
	sqlite3_close(db);
	EXPECT_INT(store_open(dbpath, &s, &cause), -EPROTO);
	EXPECT(cause && strstr(cause, "99"));
	free(cause);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(dbpath, sizeof(dbpath), "%s/runyard.db", dir);
	test_runs();
	test_charts();
	test_schema_version();
	util_rm_rf(dir);
	TEST_DONE();
}

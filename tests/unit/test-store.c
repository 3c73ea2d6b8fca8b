/* The SQLite run history: schema, runs, transitions, log chunks, artifacts. */
#include <errno.h>
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
	test_schema_version();
	util_rm_rf(dir);
	TEST_DONE();
}

/* Tracking lines: parsing and checking each line of tracking.jsonl, finding
 * whole lines in what was read, artifact names, and the store's series. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"
#include "test.h"
#include "tracking.h"
#include "util.h"

static int parse(const char *text, struct tracking_line *l, char **cause)
{
	*cause = NULL;
	return tracking_line_parse(text, strlen(text), l, cause);
}

/* The line must be refused, with a message that contains want. */
static void expect_bad(const char *text, const char *want, int line)
{
	struct tracking_line l;
	char *cause = NULL;
	int r = parse(text, &l, &cause);

	if (r != -EINVAL) {
		fprintf(stderr, "%s:%d: expected %s to be refused, got %d\n", __FILE__, line, text,
		        r);
		test_failures++;
		tracking_line_finish(&l);
	} else if (!cause || !strstr(cause, want)) {
		fprintf(stderr,
		        "%s:%d: expected the message for %s to contain \"%s\", got \"%s\"\n",
		        __FILE__, line, text, want, cause ? cause : "(null)");
		test_failures++;
	}
	free(cause);
}
#define EXPECT_BAD(text, want) expect_bad(text, want, __LINE__)

static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static void test_metrics(void)
{
	struct tracking_line l;
	char *cause;

	EXPECT_INT(parse("{\"op\":\"metric\",\"name\":\"loss\",\"values\":[0.5,0.25,\"x\"],"
	                 "\"ts\":[1.5,2.5,3.5]}",
	                 &l, &cause),
	           0);
	EXPECT_INT(l.op, TRACKING_METRIC);
	EXPECT_INT(l.kind, TRACKING_SCALAR);
	EXPECT_STR(l.name, "loss");
	EXPECT_INT(l.count, 3);
	EXPECT(l.steps == NULL);
	tracking_line_finish(&l);

	/* One time for every point, explicit steps, and each kind. */
	EXPECT_INT(parse("{\"op\":\"metric\",\"name\":\"a\",\"values\":[1,2],\"ts\":7,"
	                 "\"steps\":[10,20]}",
	                 &l, &cause),
	           0);
	EXPECT(l.steps != NULL);
	tracking_line_finish(&l);
	EXPECT_INT(
	    parse("{\"op\":\"metric\",\"kind\":\"list\",\"name\":\"l\",\"values\":[[1,\"a\"]],"
	          "\"ts\":1}",
	          &l, &cause),
	    0);
	EXPECT_INT(l.kind, TRACKING_LIST);
	tracking_line_finish(&l);
	EXPECT_INT(parse("{\"op\":\"metric\",\"kind\":\"row\",\"name\":\"r\",\"values\":[{\"a\":1,"
	                 "\"b\":\"x\"}],\"ts\":1}",
	                 &l, &cause),
	           0);
	tracking_line_finish(&l);
	EXPECT_INT(parse("{\"op\":\"metric\",\"kind\":\"table\",\"name\":\"t\",\"values\":[{\"a\":"
	                 "[1,2],\"b\":[]}],\"ts\":1}",
	                 &l, &cause),
	           0);
	tracking_line_finish(&l);
	EXPECT_INT(
	    parse("{\"op\":\"metric\",\"kind\":\"image\",\"name\":\"i\",\"values\":[{\"path\":"
	          "\"images/i.png\"}],\"ts\":1}",
	          &l, &cause),
	    0);
	EXPECT_INT(l.kind, TRACKING_IMAGE);
	tracking_line_finish(&l);

	EXPECT_BAD("{\"op\":\"metric\",\"name\":\"\",\"values\":[1],\"ts\":1}", "empty");
	EXPECT_BAD("{\"op\":\"metric\",\"values\":[1],\"ts\":1}", "must be a string");
	EXPECT_BAD("{\"op\":\"metric\",\"name\":\"a\",\"values\":[],\"ts\":1}", "non-empty");
	EXPECT_BAD("{\"op\":\"metric\",\"name\":\"a\",\"values\":[1,2],\"ts\":[1]}", "'ts'");
	EXPECT_BAD("{\"op\":\"metric\",\"name\":\"a\",\"values\":[1],\"ts\":-1}", "unix seconds");
	EXPECT_BAD("{\"op\":\"metric\",\"name\":\"a\",\"values\":[1],\"ts\":1,\"steps\":[-1]}",
	           "steps");
	EXPECT_BAD("{\"op\":\"metric\",\"name\":\"a\",\"values\":[1],\"ts\":1,\"steps\":[0.5]}",
	           "steps");
	EXPECT_BAD("{\"op\":\"metric\",\"name\":\"a\",\"values\":[null],\"ts\":1}",
	           "number or a string");
	EXPECT_BAD("{\"op\":\"metric\",\"name\":\"a\",\"values\":[[1]],\"ts\":1}",
	           "number or a string");
	EXPECT_BAD(
	    "{\"op\":\"metric\",\"kind\":\"list\",\"name\":\"a\",\"values\":[[[1]]],\"ts\":1}",
	    "list items");
	EXPECT_BAD("{\"op\":\"metric\",\"kind\":\"row\",\"name\":\"a\",\"values\":[{}],\"ts\":1}",
	           "object of columns");
	EXPECT_BAD("{\"op\":\"metric\",\"kind\":\"row\",\"name\":\"a\",\"values\":[{\"c\":[1]}],"
	           "\"ts\":1}",
	           "column 'c'");
	EXPECT_BAD("{\"op\":\"metric\",\"kind\":\"table\",\"name\":\"a\",\"values\":[{\"c\":1}],"
	           "\"ts\":1}",
	           "must be an array");
	EXPECT_BAD("{\"op\":\"metric\",\"kind\":\"image\",\"name\":\"a\",\"values\":[{\"path\":"
	           "\"../x\"}],\"ts\":1}",
	           "image");
	EXPECT_BAD("{\"op\":\"metric\",\"kind\":\"chart\",\"name\":\"a\",\"values\":[1],\"ts\":1}",
	           "kind must be");

	/* Names: 255 characters (not bytes) pass, 256 do not. */
	char *name = repeat('n', 255), *line = NULL;
	EXPECT(asprintf(&line, "{\"op\":\"metric\",\"name\":\"%s\",\"values\":[1],\"ts\":1}",
	                name) > 0);
	EXPECT_INT(parse(line, &l, &cause), 0);
	tracking_line_finish(&l);
	free(line);
	free(name);
	name = repeat('n', 256);
	EXPECT(asprintf(&line, "{\"op\":\"metric\",\"name\":\"%s\",\"values\":[1],\"ts\":1}",
	                name) > 0);
	EXPECT_BAD(line, "the limit is 255");
	free(line);
	free(name);
	/* 255 two-byte characters are 510 bytes and still fine. */
	line = NULL;
	{
		char buf[1024];
		size_t o = 0;
		for (int i = 0; i < 255; i++) {
			buf[o++] = (char)0xc3;
			buf[o++] = (char)0xa9;
		}
		buf[o] = '\0';
		EXPECT(asprintf(&line,
		                "{\"op\":\"metric\",\"name\":\"%s\",\"values\":[1],\"ts\":1}",
		                buf) > 0);
		EXPECT_INT(parse(line, &l, &cause), 0);
		tracking_line_finish(&l);
		free(line);
	}
	name = repeat('c', 256);
	EXPECT(asprintf(&line,
	                "{\"op\":\"metric\",\"kind\":\"row\",\"name\":\"r\",\"values\":"
	                "[{\"%s\":1}],\"ts\":1}",
	                name) > 0);
	EXPECT_BAD(line, "column name");
	free(line);
	free(name);
}

static void test_packed(void)
{
	struct tracking_line l;
	char *cause;

	/* [1.5, 2.0] at [10.0, 11.0], as the Python module writes them. */
	EXPECT_INT(parse("{\"op\":\"metric\",\"name\":\"p\",\"values_f64\":"
	                 "\"AAAAAAAA+D8AAAAAAAAAQA==\",\"ts_f64\":\"AAAAAAAAJEAAAAAAAAAmQA==\"}",
	                 &l, &cause),
	           0);
	EXPECT_INT(l.count, 2);
	EXPECT(l.values == NULL && l.f64 && l.ts64);
	EXPECT(l.f64[0] == 1.5 && l.f64[1] == 2.0);
	EXPECT(l.ts64[0] == 10.0 && l.ts64[1] == 11.0);
	tracking_line_finish(&l);
	/* JSON values with packed times, and packed values with one time. */
	EXPECT_INT(parse("{\"op\":\"metric\",\"name\":\"p\",\"values\":[\"a\"],"
	                 "\"ts_f64\":\"AAAAAAAAJEA=\"}",
	                 &l, &cause),
	           0);
	EXPECT_INT(l.count, 1);
	EXPECT(l.ts64 && l.ts64[0] == 10.0);
	tracking_line_finish(&l);
	EXPECT_INT(parse("{\"op\":\"metric\",\"name\":\"p\",\"values_f64\":\"AAAAAAAA+H8=\","
	                 "\"ts\":3}",
	                 &l, &cause),
	           0);
	EXPECT(l.f64 && l.f64[0] != l.f64[0]); /* NaN */
	tracking_line_finish(&l);

	EXPECT_BAD("{\"op\":\"metric\",\"name\":\"p\",\"values_f64\":\"AAAAAAAA+D8AAAAAAAAAQA==\","
	           "\"ts_f64\":\"AAAAAAAAJEA=\"}",
	           "as many times");
	EXPECT_BAD("{\"op\":\"metric\",\"name\":\"p\",\"values_f64\":\"not base64!\",\"ts\":1}",
	           "base64");
	EXPECT_BAD("{\"op\":\"metric\",\"name\":\"p\",\"values_f64\":\"AAAA\",\"ts\":1}",
	           "base64 of doubles");
	EXPECT_BAD("{\"op\":\"metric\",\"name\":\"p\",\"values_f64\":7,\"ts\":1}",
	           "base64 strings");
	EXPECT_BAD("{\"op\":\"metric\",\"kind\":\"list\",\"name\":\"p\",\"values_f64\":"
	           "\"AAAAAAAA+D8=\",\"ts\":1}",
	           "scalars only");
	/* A NaN time is not a time. */
	EXPECT_BAD("{\"op\":\"metric\",\"name\":\"p\",\"values\":[1],\"ts_f64\":\"AAAAAAAA+H8=\"}",
	           "unix seconds");
}

static void test_tags_properties_uploads(void)
{
	struct tracking_line l;
	char *cause, *key, *value, *line;

	EXPECT_INT(parse("{\"op\":\"tag\",\"key\":\"k\",\"value\":\"v\"}", &l, &cause), 0);
	EXPECT_INT(l.op, TRACKING_TAG);
	EXPECT_STR(l.name, "k");
	EXPECT_STR(l.value, "v");
	tracking_line_finish(&l);
	EXPECT_INT(parse("{\"op\":\"tag\",\"key\":\"k\",\"value\":null}", &l, &cause), 0);
	EXPECT(l.value == NULL);
	tracking_line_finish(&l);
	EXPECT_INT(parse("{\"op\":\"property\",\"key\":\"k\",\"value\":\"\"}", &l, &cause), 0);
	EXPECT_INT(l.op, TRACKING_PROPERTY);
	EXPECT_STR(l.value, "");
	tracking_line_finish(&l);
	EXPECT_BAD("{\"op\":\"property\",\"key\":\"k\",\"value\":null}", "must be a string");
	EXPECT_BAD("{\"op\":\"tag\",\"key\":\"\",\"value\":\"v\"}", "empty");

	key = repeat('k', 101);
	EXPECT(asprintf(&line, "{\"op\":\"tag\",\"key\":\"%s\",\"value\":\"v\"}", key) > 0);
	EXPECT_BAD(line, "the limit is 100");
	free(line);
	free(key);
	value = repeat('v', 1001);
	EXPECT(asprintf(&line, "{\"op\":\"property\",\"key\":\"k\",\"value\":\"%s\"}", value) > 0);
	EXPECT_BAD(line, "the limit is 1000");
	free(line);
	free(value);
	value = repeat('v', 1000);
	EXPECT(asprintf(&line, "{\"op\":\"property\",\"key\":\"k\",\"value\":\"%s\"}", value) > 0);
	EXPECT_INT(parse(line, &l, &cause), 0);
	tracking_line_finish(&l);
	free(line);
	free(value);

	EXPECT_INT(parse("{\"op\":\"upload\",\"name\":\"outputs/a b.txt\",\"file\":\"1-1-a\"}", &l,
	                 &cause),
	           0);
	EXPECT_INT(l.op, TRACKING_UPLOAD);
	EXPECT_STR(l.name, "outputs/a b.txt");
	EXPECT_STR(l.file, "1-1-a");
	tracking_line_finish(&l);
	EXPECT_BAD("{\"op\":\"upload\",\"name\":\"../etc/passwd\",\"file\":\"x\"}",
	           "relative path");
	EXPECT_BAD("{\"op\":\"upload\",\"name\":\"/abs\",\"file\":\"x\"}", "relative path");
	EXPECT_BAD("{\"op\":\"upload\",\"name\":\"a\",\"file\":\"../x\"}", "file name");
	EXPECT_BAD("{\"op\":\"upload\",\"name\":\"a\",\"file\":\"..\"}", "file name");

	EXPECT_BAD("not json", "not a JSON object");
	EXPECT_BAD("[1,2]", "not a JSON object");
	EXPECT_BAD("{\"key\":\"k\"}", "no \"op\"");
	EXPECT_BAD("{\"op\":\"explode\"}", "unknown op");
	EXPECT_BAD("{\"op\":\"tag\",\"key\":\"\xff\",\"value\":\"v\"}", "UTF-8");
}

static void test_paths(void)
{
	EXPECT(tracking_valid_path("outputs/model.joblib"));
	EXPECT(tracking_valid_path("a"));
	EXPECT(tracking_valid_path("images/plot-1.png"));
	EXPECT(!tracking_valid_path(""));
	EXPECT(!tracking_valid_path("/etc/passwd"));
	EXPECT(!tracking_valid_path("a/../b"));
	EXPECT(!tracking_valid_path(".."));
	EXPECT(!tracking_valid_path("./a"));
	EXPECT(!tracking_valid_path("a//b"));
	EXPECT(!tracking_valid_path("a/"));
	EXPECT(!tracking_valid_path("a\nb"));
	EXPECT(!tracking_valid_path("a\\b"));
	char *long_path = repeat('p', TRACKING_PATH_MAX + 1);
	EXPECT(!tracking_valid_path(long_path));
	long_path[TRACKING_PATH_MAX] = '\0';
	EXPECT(tracking_valid_path(long_path));
	free(long_path);
}

static void test_next_line(void)
{
	size_t len = 99;

	EXPECT_INT(tracking_next_line("abc\ndef", 7, &len), TRACKING_NEXT_LINE);
	EXPECT_INT(len, 3);
	EXPECT_INT(tracking_next_line("\n", 1, &len), TRACKING_NEXT_LINE);
	EXPECT_INT(len, 0);
	EXPECT_INT(tracking_next_line("abc", 3, &len), TRACKING_NEXT_PARTIAL);
	EXPECT_INT(tracking_next_line("", 0, &len), TRACKING_NEXT_PARTIAL);

	/* A longest line fits; one byte more without a newline is too long. */
	size_t n = TRACKING_LINE_MAX + 2;
	char *buf = repeat('x', n);
	buf[TRACKING_LINE_MAX] = '\n';
	EXPECT_INT(tracking_next_line(buf, n, &len), TRACKING_NEXT_LINE);
	EXPECT_INT(len, TRACKING_LINE_MAX);
	buf[TRACKING_LINE_MAX] = 'x';
	EXPECT_INT(tracking_next_line(buf, TRACKING_LINE_MAX, &len), TRACKING_NEXT_PARTIAL);
	EXPECT_INT(tracking_next_line(buf, TRACKING_LINE_MAX + 1, &len), TRACKING_NEXT_TOO_LONG);
	buf[TRACKING_LINE_MAX + 1] = '\n';
	EXPECT_INT(tracking_next_line(buf, n, &len), TRACKING_NEXT_TOO_LONG);
	free(buf);
}

static void test_store_series(void)
{
	char dir[] = "/tmp/runyard-test-tracking-XXXXXX", path[256], token[33];
	struct store *s = NULL;
	struct store_metric m;
	char *cause = NULL;
	int64_t seq = 0, off = -1, found = 0;
	cJSON *j = NULL;

	EXPECT(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/runyard.db", dir);
	EXPECT_INT(store_open(path, &s, &cause), 0);
	struct store_run_new n = {
	    .id = "exp_1_aaaaaaaa",
	    .experiment = "exp",
	    .command_json = "[\"t.py\"]",
	    .argv_json = "[\"t.py\"]",
	    .python = "python3",
	    .source = "/src",
	    .snapshot = "ab",
	    .created_at = 1000,
	};
	EXPECT_INT(store_run_insert(s, &n, &seq), 0);

	EXPECT_INT(store_run_tracking_get(s, seq, token, &off), 0);
	EXPECT_STR(token, "");
	EXPECT_INT(off, 0);
	EXPECT_INT(store_run_token_set(s, seq, "0123456789abcdef0123456789abcdef"), 0);
	EXPECT_INT(store_run_tracking_offset_set(s, seq, 42), 0);
	EXPECT_INT(store_run_tracking_get(s, seq, token, &off), 0);
	EXPECT_STR(token, "0123456789abcdef0123456789abcdef");
	EXPECT_INT(off, 42);
	EXPECT_INT(store_run_by_token(s, "0123456789abcdef0123456789abcdef", &found), 0);
	EXPECT_INT(found, seq);
	EXPECT_INT(store_run_by_token(s, "ffffffffffffffffffffffffffffffff", &found), -ENOENT);

	EXPECT_INT(store_metric_series(s, seq, "loss", NULL, &m), -ENOENT);
	EXPECT_INT(store_metric_series(s, seq, "loss", "scalar", &m), 0);
	EXPECT_INT(m.count, 0);
	EXPECT_STR(m.kind, "scalar");
	for (int i = 0; i < 5; i++) {
		EXPECT_INT(store_metric_point_add(s, m.id, i, i, 10 + i, 5 - i, NULL), 0);
	}
	struct store_metric_summary sum = {.count = 5,
	                                   .numeric = 5,
	                                   .min = 1,
	                                   .max = 5,
	                                   .last_step = 4,
	                                   .last_ts = 14,
	                                   .last_num = 1};
	EXPECT_INT(store_metric_summary_update(s, m.id, &sum), 0);
	EXPECT_INT(store_metric_point_add(s, m.id, 5, 5, 15, 0, "text"), 0);
	struct store_metric_summary sum2 = {
	    .count = 6, .last_step = 5, .last_ts = 15, .last_text = "text"};
	EXPECT_INT(store_metric_summary_update(s, m.id, &sum2), 0);
	EXPECT_INT(store_metric_series(s, seq, "loss", "list", &m), 0);
	EXPECT_STR(m.kind, "scalar"); /* an existing series keeps its kind */
	EXPECT_INT(m.count, 6);

	EXPECT_INT(store_metrics_json(s, seq, 3, &j), 0);
	EXPECT_INT(cJSON_GetArraySize(j), 1);
	cJSON *e = cJSON_GetArrayItem(j, 0);
	EXPECT_STR(cJSON_GetObjectItem(e, "name")->valuestring, "loss");
	EXPECT_INT(cJSON_GetObjectItem(e, "count")->valuedouble, 6);
	EXPECT_STR(cJSON_GetObjectItem(e, "last")->valuestring, "text");
	EXPECT_INT(cJSON_GetObjectItem(e, "min")->valuedouble, 1);
	EXPECT_INT(cJSON_GetObjectItem(e, "max")->valuedouble, 5);
	EXPECT_INT(cJSON_GetArraySize(cJSON_GetObjectItem(e, "spark")), 3);
	cJSON_Delete(j);

	EXPECT_INT(store_metric_points_json(s, seq, "loss", 2, 3, 1 << 20, &j), 0);
	EXPECT_INT(cJSON_GetArraySize(cJSON_GetObjectItem(j, "points")), 3);
	EXPECT_INT(cJSON_GetObjectItem(j, "next")->valuedouble, 5);
	EXPECT(cJSON_IsTrue(cJSON_GetObjectItem(j, "more")));
	EXPECT_INT(
	    cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "points"), 0), "value")
	        ->valuedouble,
	    3);
	cJSON_Delete(j);
	EXPECT_INT(store_metric_points_json(s, seq, "nope", 0, 3, 1 << 20, &j), -ENOENT);
	/* A byte budget ends a page early, but never before its first point. */
	EXPECT_INT(store_metric_points_json(s, seq, "loss", 0, 100, 1, &j), 0);
	EXPECT_INT(cJSON_GetArraySize(cJSON_GetObjectItem(j, "points")), 1);
	EXPECT_INT(cJSON_GetObjectItem(j, "next")->valuedouble, 1);
	EXPECT(cJSON_IsTrue(cJSON_GetObjectItem(j, "more")));
	cJSON_Delete(j);
	int64_t nseries = 0;
	EXPECT_INT(store_metric_count(s, seq, &nseries), 0);
	EXPECT_INT(nseries, 1);

	/* A long last value is left out of the summary. */
	struct store_metric big;
	char *long_text = repeat('x', STORE_SUMMARY_VALUE_MAX + 1);
	EXPECT_INT(store_metric_series(s, seq, "big", "scalar", &big), 0);
	EXPECT_INT(store_metric_point_add(s, big.id, 0, 0, 1, 0, long_text), 0);
	struct store_metric_summary sum3 = {.count = 1, .last_ts = 1, .last_text = long_text};
	EXPECT_INT(store_metric_summary_update(s, big.id, &sum3), 0);
	free(long_text);
	EXPECT_INT(store_metrics_json(s, seq, 0, &j), 0);
	e = cJSON_GetArrayItem(j, 1);
	EXPECT(cJSON_IsNull(cJSON_GetObjectItem(e, "last")));
	EXPECT(cJSON_IsTrue(cJSON_GetObjectItem(e, "last_omitted")));
	cJSON_Delete(j);

	for (int i = 0; i < STORE_WARNINGS_MAX + 3; i++) {
		EXPECT_INT(store_run_warning_add(s, seq, 1000 + i, "bad line"), 0);
	}
	EXPECT_INT(store_run_json(s, seq, true, &j), 0);
	EXPECT_INT(cJSON_GetArraySize(cJSON_GetObjectItem(j, "warnings")), STORE_WARNINGS_MAX);
	EXPECT_INT(cJSON_GetObjectItem(j, "warnings_dropped")->valuedouble, 3);
	cJSON_Delete(j);

	store_close(s);
	util_rm_rf(dir);
}

int main(void)
{
	test_metrics();
	test_packed();
	test_tags_properties_uploads();
	test_paths();
	test_next_line();
	test_store_series();
	TEST_DONE();
}

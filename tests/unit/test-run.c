/* The run state machine: its edges, and transitions persisted to a real store. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"
#include "msg.h"
#include "run.h"
#include "queue.h"
#include "store.h"
#include "test.h"
#include "util.h"

static void test_edges(void)
{
	/* The happy path, in order. */
	EXPECT(run_transition_allowed(RUN_QUEUED, RUN_PREPARING));
	EXPECT(run_transition_allowed(RUN_PREPARING, RUN_SCALING));
	EXPECT(run_transition_allowed(RUN_SCALING, RUN_RUNNING));
	EXPECT(run_transition_allowed(RUN_RUNNING, RUN_FINALIZING));
	EXPECT(run_transition_allowed(RUN_FINALIZING, RUN_COMPLETED));
	/* Never backwards, never skipping to Completed. */
	EXPECT(!run_transition_allowed(RUN_RUNNING, RUN_QUEUED));
	EXPECT(!run_transition_allowed(RUN_SCALING, RUN_PREPARING));
	EXPECT(!run_transition_allowed(RUN_RUNNING, RUN_COMPLETED));
	EXPECT(!run_transition_allowed(RUN_QUEUED, RUN_RUNNING));
	/* Terminal is terminal. */
	for (int to = 0; to < RUN__MAX; to++) {
		EXPECT(!run_transition_allowed(RUN_COMPLETED, (enum run_status)to));
		EXPECT(!run_transition_allowed(RUN_FAILED, (enum run_status)to));
		EXPECT(!run_transition_allowed(RUN_CANCELED, (enum run_status)to));
	}
	/* Failure from every live stage; cancel at once only when queued. */
	for (int from = RUN_QUEUED; from <= RUN_FINALIZING; from++) {
		EXPECT(run_transition_allowed((enum run_status)from, RUN_FAILED));
	}
	EXPECT(run_transition_allowed(RUN_QUEUED, RUN_CANCELED));
	EXPECT(!run_transition_allowed(RUN_RUNNING, RUN_CANCELED));
	EXPECT(run_transition_allowed(RUN_RUNNING, RUN_CANCEL_REQUESTED));
	EXPECT(run_transition_allowed(RUN_CANCEL_REQUESTED, RUN_CANCELED));
	EXPECT(!run_transition_allowed(RUN_CANCEL_REQUESTED, RUN_RUNNING));

	enum run_status s;
	EXPECT_INT(run_status_parse("CancelRequested", &s), 0);
	EXPECT_INT(s, RUN_CANCEL_REQUESTED);
	EXPECT_INT(run_status_parse("running", &s), -EINVAL);
	for (int i = 0; i < RUN__MAX; i++) {
		EXPECT_INT(run_status_parse(run_status_name((enum run_status)i), &s), 0);
		EXPECT_INT(s, i);
	}
}

static void test_persisted(void)
{
	char dir[] = "/tmp/runyard-test-run-XXXXXX";
	struct daemon d;
	char *cause = NULL, *db;
	cJSON *j = NULL;

	uv_loop_t loop;

	memset(&d, 0, sizeof(d));
	EXPECT_INT(uv_loop_init(&loop), 0);
	d.loop = &loop;
	EXPECT_INT(run_events_init(&d), 0);
	EXPECT(mkdtemp(dir) != NULL);
	d.runs_dir = dir;
	d.max_runs = 0; /* nothing gets admitted: this test drives the runs by hand */
	db = util_path_join(dir, "runyard.db");
	EXPECT_INT(store_open(db, &d.store, &cause), 0);

	struct store_run_new n = {
		.id = "e_1_00000000", .experiment = "e", .command_json = "[\"x\"]",
		.argv_json = "[\"x\"]", .python = "python3", .source = "/", .snapshot = "s",
		.created_at = util_now(),
	};
	int64_t seq;
	EXPECT_INT(store_run_insert(d.store, &n, &seq), 0);
	struct run *r = run_create(&d, seq, n.id, n.experiment);
	EXPECT(r != NULL);
	EXPECT(run_find(&d, seq) == r);

	EXPECT_INT(run_transition(r, RUN_PREPARING), 0);
	EXPECT_INT(run_transition(r, RUN_RUNNING), -EINVAL); /* skips Scaling */
	EXPECT_INT(run_transition(r, RUN_SCALING), 0);
	EXPECT_INT(run_transition(r, RUN_RUNNING), 0);
	EXPECT_INT(r->status, RUN_RUNNING);
	EXPECT_INT(run_fail(r, "UserError", "exited with %d", 3), 0);
	/* Terminal: gone from the in-flight list, freed (no handles). */
	EXPECT(run_find(&d, seq) == NULL);
	EXPECT(d.runs_head == NULL);

	EXPECT_INT(store_run_json(d.store, seq, true, &j), 0);
	EXPECT_STR(cJSON_GetObjectItem(j, "status")->valuestring, "Failed");
	cJSON *err = cJSON_GetObjectItem(j, "error");
	EXPECT_STR(cJSON_GetObjectItem(err, "stage")->valuestring, "Running");
	EXPECT_STR(cJSON_GetObjectItem(err, "message")->valuestring, "exited with 3");
	cJSON *t = cJSON_GetObjectItem(j, "transitions");
	EXPECT_INT(cJSON_GetArraySize(t), 5);
	const char *order[] = {"Queued", "Preparing", "Scaling", "Running", "Failed"};
	double prev = 0;
	int i = 0;
	for (cJSON *it = t->child; it && i < 5; it = it->next, i++) {
		double at;
		EXPECT_STR(it->string, order[i]);
		EXPECT(msg_parse_time(it->valuestring, &at) == 0);
		EXPECT(at >= prev);
		prev = at;
	}
	EXPECT(!cJSON_IsNull(cJSON_GetObjectItem(j, "started_at")));
	EXPECT(!cJSON_IsNull(cJSON_GetObjectItem(j, "ended_at")));
	cJSON_Delete(j);

	run_events_close(&d);
	EXPECT_INT(uv_run(&loop, UV_RUN_DEFAULT), 0);
	EXPECT_INT(uv_loop_close(&loop), 0);
	store_close(d.store);
	util_rm_rf(dir);
	free(db);
}

int main(void)
{
	test_edges();
	test_persisted();
	TEST_DONE();
}

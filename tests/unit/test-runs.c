/* runs/ on its own: built from the sources of runs/, store/ and base/ only
 * (tests/unit/meson.build), so it does not link if the state machine calls
 * anything above it. Transitions persist and fire events to subscribers; a
 * terminal run leaves the list, fires RUN_EV_ENDED and is freed only at the
 * end of the loop's tick; the queue keeps priority, then submit order;
 * capacity is counted per target. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"
#include "queue.h"
#include "run.h"
#include "store.h"
#include "target.h"
#include "test.h"
#include "util.h"

struct heard {
	int n;
	enum run_event ev[16];
	enum run_status status[16];
	bool listed[16]; /* still on the daemon's list when heard */
	bool ended[16];
};

static bool on_list(struct daemon *d, struct run *r)
{
	for (struct run *x = d->runs_head; x; x = x->next) {
		if (x == r) {
			return true;
		}
	}
	return false;
}

static struct daemon *heard_d;

static void sink_cb(void *ud, struct run *r, enum run_event ev)
{
	struct heard *h = ud;

	if (h->n < 16) {
		h->ev[h->n] = ev;
		h->status[h->n] = r->status;
		h->listed[h->n] = on_list(heard_d, r);
		h->ended[h->n] = r->ended;
		h->n++;
	}
}

static void noop_cb(void *ud, struct run *r, enum run_event ev)
{
}

struct fixture {
	char dir[64];
	char *db;
	uv_loop_t loop;
	struct daemon d;
};

static void setup(struct fixture *f)
{
	char *cause = NULL;

	memset(f, 0, sizeof(*f));
	strcpy(f->dir, "/tmp/runyard-test-runs-XXXXXX");
	EXPECT(mkdtemp(f->dir) != NULL);
	EXPECT_INT(uv_loop_init(&f->loop), 0);
	f->d.loop = &f->loop;
	f->d.runs_dir = f->dir;
	f->db = util_path_join(f->dir, "runyard.db");
	EXPECT_INT(store_open(f->db, &f->d.store, &cause), 0);
	EXPECT_INT(run_events_init(&f->d), 0);
}

static void teardown(struct fixture *f)
{
	run_events_close(&f->d);
	EXPECT_INT(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	EXPECT_INT(uv_loop_close(&f->loop), 0);
	store_close(f->d.store);
	util_rm_rf(f->dir);
	free(f->db);
}

static struct run *new_run(struct fixture *f, const char *id, int priority)
{
	struct store_run_new n = {
		.id = id, .experiment = "e", .command_json = "[\"x\"]", .argv_json = "[\"x\"]",
		.python = "python3", .source = "/", .snapshot = "s", .created_at = util_now(),
		.priority = priority,
	};
	int64_t seq = 0;

	EXPECT_INT(store_run_insert(f->d.store, &n, &seq), 0);
	struct run *r = run_create(&f->d, seq, id, "e");
	EXPECT(r != NULL);
	if (r) {
		r->priority = priority;
	}
	return r;
}

static void test_events(void)
{
	struct fixture f;
	struct heard h = {0};

	setup(&f);
	heard_d = &f.d;
	EXPECT_INT(run_subscribe(&f.d, sink_cb, &h), 0);
	struct run *r = new_run(&f, "e_1_00000001", 0);
	int64_t seq = r->seq;

	EXPECT_INT(run_transition(r, RUN_PREPARING), 0);
	EXPECT_INT(run_transition(r, RUN_RUNNING), -EINVAL); /* no edge: nothing fired */
	EXPECT_INT(run_transition(r, RUN_SCALING), 0);
	run_notify_log(r);
	EXPECT_INT(run_transition(r, RUN_CANCEL_REQUESTED), 0);
	EXPECT_INT(run_transition(r, RUN_CANCELED), 0);

	EXPECT_INT(h.n, 6);
	enum run_event want_ev[] = {RUN_EV_STATUS, RUN_EV_STATUS, RUN_EV_LOG,
				    RUN_EV_STATUS, RUN_EV_STATUS, RUN_EV_ENDED};
	enum run_status want_st[] = {RUN_PREPARING, RUN_SCALING, RUN_SCALING,
				     RUN_CANCEL_REQUESTED, RUN_CANCELED, RUN_CANCELED};
	for (int i = 0; i < 6 && i < h.n; i++) {
		EXPECT_INT(h.ev[i], want_ev[i]);
		EXPECT_INT(h.status[i], want_st[i]);
	}
	/* The terminal status is heard while the run is listed; the end after
	 * it has left the list. */
	EXPECT(h.listed[4] && !h.ended[4]);
	EXPECT(!h.listed[5] && h.ended[5]);
	EXPECT(run_find(&f.d, seq) == NULL);

	/* Persisted before it was fired. */
	cJSON *j = NULL;
	EXPECT_INT(store_run_json(f.d.store, seq, false, &j), 0);
	EXPECT_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "status")), "Canceled");
	cJSON_Delete(j);

	/* Freed at the end of the tick, not inside run_transition: the struct
	 * is still readable here (ASan would say otherwise), and the reaper is
	 * what keeps the loop alive until that tick. */
	EXPECT(r->ended);
	EXPECT(uv_loop_alive(&f.loop));
	uv_run(&f.loop, UV_RUN_NOWAIT);
	EXPECT(!uv_loop_alive(&f.loop));
	teardown(&f);
}

/* A run that still holds a handle or a job is not freed when it ends, but
 * when the last reference is released. */
static void test_release_later(void)
{
	struct fixture f;

	setup(&f);
	struct run *r = new_run(&f, "e_1_00000002", 0);
	r->busy = true;
	EXPECT_INT(run_fail(r, "ExecutionFailed", "failed in %s", "a test"), 0);
	uv_run(&f.loop, UV_RUN_NOWAIT);
	EXPECT(r->ended); /* still ours: busy */
	r->busy = false;
	run_release(r);
	run_release(r); /* twice is harmless: it is queued to be freed once */
	EXPECT(uv_loop_alive(&f.loop));
	uv_run(&f.loop, UV_RUN_NOWAIT);
	EXPECT(!uv_loop_alive(&f.loop));
	teardown(&f);
}

static void test_subscribers_bounded(void)
{
	struct fixture f;
	int ok = 0;

	setup(&f);
	for (int i = 0; i < 100; i++) {
		if (run_subscribe(&f.d, noop_cb, NULL) == 0) {
			ok++;
		}
	}
	EXPECT(ok > 0 && ok < 100);
	EXPECT_INT(run_subscribe(&f.d, noop_cb, NULL), -ENOSPC);
	teardown(&f);
}

static void test_queue_order(void)
{
	struct fixture f;
	const char *ids[] = {"e_1_0000000a", "e_1_0000000b", "e_1_0000000c", "e_1_0000000d"};
	int prio[] = {0, 5, 0, 5};
	struct run *r[4];

	setup(&f);
	for (int i = 0; i < 4; i++) {
		r[i] = new_run(&f, ids[i], prio[i]);
		queue_enqueue(&f.d, r[i]);
	}
	/* Higher priority first, then submit order. */
	struct run *want[] = {r[1], r[3], r[0], r[2]};
	struct run *q = queue_head(&f.d);
	for (int i = 0; i < 4; i++, q = q ? q->qnext : NULL) {
		EXPECT(q == want[i]);
	}
	EXPECT(q == NULL);
	/* An ended run leaves the line by itself. */
	EXPECT_INT(run_transition(r[3], RUN_CANCELED), 0);
	EXPECT(queue_head(&f.d) == r[1] && r[1]->qnext == r[0]);
	queue_remove(&f.d, r[1]);
	queue_remove(&f.d, r[1]); /* absent: no-op */
	EXPECT(queue_head(&f.d) == r[0] && r[0]->qnext == r[2] && r[2]->qnext == NULL);
	for (int i = 0; i < 3; i++) {
		run_fail(r[i], "Test", "done");
	}
	EXPECT(queue_head(&f.d) == NULL);
	teardown(&f);
}

static void test_capacity(void)
{
	struct fixture f;
	struct target local = {.name = TARGET_LOCAL, .max_jobs = 1};
	struct target other = {.name = "other", .max_jobs = 2};

	setup(&f);
	local.d = other.d = &f.d;
	local.next = &other;
	f.d.targets = &local;
	struct run *a = new_run(&f, "e_1_00000010", 0);
	struct run *b = new_run(&f, "e_1_00000011", 0);
	struct run *c = new_run(&f, "e_1_00000012", 0);
	c->target = &other;

	EXPECT(target_of(a) == &local && target_of(c) == &other);
	EXPECT(target_has_room(a));
	target_slot_take(a);
	target_slot_take(a); /* a run holds one place at most */
	EXPECT_INT(local.active, 1);
	/* The local target is full; another target is not held back by it. */
	EXPECT(!target_has_room(b));
	EXPECT(target_has_room(c));
	EXPECT(target_any_room(&f.d));
	target_slot_take(c);
	other.max_jobs = 1;
	EXPECT(!target_any_room(&f.d));
	target_slot_release(a);
	target_slot_release(a);
	EXPECT_INT(local.active, 0);
	EXPECT(target_has_room(b));
	target_slot_release(c);
	EXPECT_INT(other.active, 0);
	for (struct run *x = f.d.runs_head, *next; x; x = next) {
		next = x->next;
		run_fail(x, "Test", "done");
	}
	f.d.targets = NULL;
	teardown(&f);
}

int main(void)
{
	test_events();
	test_release_later();
	test_subscribers_bounded();
	test_queue_order();
	test_capacity();
	TEST_DONE();
}

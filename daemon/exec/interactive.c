/* Interactive runs: started and ended by a client, kept alive by its
 * heartbeats (interactive.h). */
#include "interactive.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "context.h"
#include "log.h"
#include "msg.h"
#include "store.h"
#include "tracking.h"
#include "util.h"

#define CHECK_MS 500

struct interactive {
	uv_timer_t timer; /* freed in its close callback */
};

static bool live(const struct run *r)
{
	return r->interactive && !r->ended &&
	       (r->status == RUN_RUNNING || r->status == RUN_CANCEL_REQUESTED);
}

static void check_cb(uv_timer_t *t)
{
	struct daemon *d = t->data;
	double now = util_now();

	for (struct run *r = d->runs_head, *next; r; r = next) {
		next = r->next;
		if (!live(r) || now - r->heartbeat_at <= r->timeout) {
			continue;
		}
		char *msg = msg_strdupf("no heartbeat for %g seconds from the process that "
		                        "started this interactive run: it ended or stopped "
		                        "without completing the run",
		                        r->timeout);
		log_info("run %s: interactive, no heartbeat for %gs", r->id, r->timeout);
		interactive_end(r, RUN_FAILED, "HeartbeatLost", msg ? msg : "no heartbeat");
		free(msg);
	}
}

int interactive_init(struct daemon *d)
{
	struct interactive *it = calloc(1, sizeof(*it));

	if (!it) {
		return -ENOMEM;
	}
	uv_timer_init(d->loop, &it->timer);
	it->timer.data = d;
	uv_timer_start(&it->timer, check_cb, CHECK_MS, CHECK_MS);
	uv_unref((uv_handle_t *)&it->timer);
	d->interactive = it;
	return 0;
}

static void closed_cb(uv_handle_t *h)
{
	/* the timer is the struct's first member */
	free((struct interactive *)(void *)h);
}

void interactive_close(struct daemon *d)
{
	struct interactive *it = d->interactive;

	if (!it) {
		return;
	}
	d->interactive = NULL;
	uv_close((uv_handle_t *)&it->timer, closed_cb);
}

/* The run's directory with uploads/ and an empty tracking file, mode 0700:
 * the client (the same user) writes there. */
static int make_dir(struct run *r, char **cause)
{
	char *up = util_path_join(r->dir, TRACKING_UPLOADS);
	char *tf = util_path_join(r->dir, TRACKING_FILE);
	int err = 0, fd;

	if (!up || !tf) {
		err = -ENOMEM;
		*cause = msg_strdupf("out of memory");
		goto out;
	}
	if ((err = util_mkdir_p(up, 0700)) < 0) {
		*cause =
		    msg_strdupf("cannot make the run's directory %s: %s", r->dir, strerror(-err));
		goto out;
	}
	fd = open(tf, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		err = -errno;
		*cause = msg_strdupf("cannot make %s: %s", tf, strerror(errno));
		goto out;
	}
	close(fd);
out:
	free(up);
	free(tf);
	return err;
}

int interactive_begin(struct daemon *d, const struct store_run_new *n, cJSON **argv, cJSON **env,
                      struct run **ret, char **cause)
{
	struct run *r = NULL;
	char token[33];
	int64_t seq;
	int err;

	*ret = NULL;
	err = store_run_insert(d->store, n, &seq);
	if (err < 0) {
		*cause = msg_strdupf("recording the run failed: %s", store_errmsg(d->store));
		return err;
	}
	r = run_create(d, seq, n->id, n->experiment);
	if (!r) {
		*cause = msg_strdupf("out of memory");
		return -ENOMEM;
	}
	r->status = RUN_QUEUED;
	r->interactive = true;
	r->priority = n->priority;
	r->created_at = n->created_at;
	r->timeout = n->timeout;
	r->keep = n->keep;
	r->parent = n->parent_seq;
	r->snapshot = strdup(n->snapshot);
	r->argv = *argv;
	*argv = NULL;
	r->env = *env;
	*env = NULL;
	r->heartbeat_at = util_now();
	if (!r->snapshot) {
		*cause = msg_strdupf("out of memory");
		err = -ENOMEM;
		goto fail;
	}
	if ((err = make_dir(r, cause)) < 0) {
		goto fail;
	}
	if ((err = util_random_hex(token, 16)) < 0 ||
	    (err = store_run_token_set(d->store, seq, token)) < 0) {
		*cause = msg_strdupf("recording the run's token failed");
		goto fail;
	}
	memcpy(r->token, token, sizeof(token));
	if ((err = run_transition(r, RUN_PREPARING)) < 0 ||
	    (err = run_transition(r, RUN_SCALING)) < 0 ||
	    (err = run_transition(r, RUN_RUNNING)) < 0) {
		*cause = msg_strdupf("recording the run's start failed");
		goto fail;
	}
	*ret = r;
	return 0;
fail:
	/* Recorded, so it ends visibly; nothing of it stays in flight. */
	if (!r->ended) {
		run_fail(r, "PreparationFailed", "%s", *cause ? *cause : "starting it failed");
	}
	return err;
}

void interactive_resume(struct run *r)
{
	r->heartbeat_at = util_now();
	if (r->status != RUN_RUNNING && r->status != RUN_CANCEL_REQUESTED) {
		/* Stopped between its statuses: it never reached its client. */
		run_fail(r, "DaemonRestart", "runyardd stopped while the interactive run started");
		return;
	}
	log_info("run %s: interactive, waiting for its client's heartbeat (%gs)", r->id,
	         r->timeout);
	tracking_ingest(r, false);
}

void interactive_heartbeat(struct run *r)
{
	r->heartbeat_at = util_now();
	tracking_ingest(r, false);
}

int interactive_end(struct run *r, enum run_status to, const char *code, const char *message)
{
	char *dir = NULL;
	int err;

	if (!live(r) || (to != RUN_COMPLETED && to != RUN_FAILED && to != RUN_CANCELED)) {
		return -EINVAL;
	}
	dir = r->keep ? NULL : strdup(r->dir);
	tracking_ingest(r, true);
	if (to == RUN_FAILED) {
		err = run_fail(r, code ? code : "UserError", "%s",
		               message ? message : "the run was marked failed");
	} else if (to == RUN_CANCELED) {
		err =
		    r->status == RUN_CANCEL_REQUESTED ? 0 : run_transition(r, RUN_CANCEL_REQUESTED);
		if (err == 0) {
			err = run_transition(r, RUN_CANCELED);
		}
	} else if (r->status == RUN_CANCEL_REQUESTED) {
		/* A cancel came first (run.cancel): it wins. */
		err = run_transition(r, RUN_CANCELED);
	} else {
		err = run_transition(r, RUN_FINALIZING);
		if (err == 0) {
			err = run_transition(r, RUN_COMPLETED);
		}
	}
	if (dir && err == 0) {
		util_rm_rf(dir);
	}
	free(dir);
	return err;
}

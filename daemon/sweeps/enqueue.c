/* Making a queued run from its row: the store, the in-memory run, its
 * inputs, its target, the queue. */
#include "enqueue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "compute.h"
#include "context.h"
#include "inputs.h"
#include "log.h"
#include "msg.h"
#include "queue.h"
#include "run.h"
#include "store.h"

int enqueue_run(struct daemon *d, const struct store_run_new *n, cJSON **argv, cJSON **env,
		const cJSON *inputs, const cJSON *outputs, struct run **ret, char **cause)
{
	struct run *r;
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
	r->priority = n->priority;
	r->created_at = n->created_at;
	r->timeout = n->timeout;
	r->keep = n->keep;
	r->parent = n->parent_seq;
	r->retries = n->retries;
	if (n->retry_on && run_retry_on_parse(n->retry_on, &r->retry_on, NULL) < 0) {
		r->retry_on = RUN_RETRY_FAIL | RUN_RETRY_OOM;
	}
	if (n->request_json) {
		cJSON *q = cJSON_Parse(n->request_json);
		res_request_parse(q, &r->req);
		cJSON_Delete(q);
	}
	r->snapshot = strdup(n->snapshot);
	if (run_set_deps(r, n->after_seq, n->after_cond, n->nafter) < 0) {
		*cause = msg_strdupf("out of memory");
		run_fail(r, "PreparationFailed", "out of memory");
		return -ENOMEM;
	}
	r->argv = *argv;
	*argv = NULL;
	r->env = *env;
	*env = NULL;
	if (inputs_record(d, seq, inputs, outputs) < 0) {
		/* Without its inputs the run would start without its data. */
		log_error("run %s: recording its inputs failed: %s", n->id, store_errmsg(d->store));
		*cause = msg_strdupf("recording the run's inputs failed: %s", store_errmsg(d->store));
		run_fail(r, "PreparationFailed", "recording the run's inputs failed");
		return -EIO;
	}
	if (compute_run_bind(r, n->target, n->resources_json, 0) < 0) {
		log_error("run %s: binding it to compute target %s failed", n->id, n->target);
	}
	queue_enqueue(d, r);
	*ret = r;
	return 0;
}

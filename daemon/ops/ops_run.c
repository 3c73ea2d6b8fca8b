/* The run ops: run.list, run.show, run.logs, run.watch, run.unwatch,
 * run.cancel, run.outputs, artifact.read and experiment.list. */
#include "optable.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


#include "context.h"
#include "request.h"
#include "exec.h"
#include "inputs.h"
#include "interactive.h"
#include "compute.h"
#include "log.h"
#include "logs.h"
#include "msg.h"
#include "proto.h"
#include "queue.h"
#include "resources.h"
#include "retention.h"
#include "run.h"
#include "scheduler.h"
#include "slurm.h"
#include "store.h"
#include "sweep.h"
#include "target.h"
#include "watch.h"

static void ops_run_list(struct request *req)
{
	const char *experiment = NULL, *status = NULL;
	int64_t limit = 100, parent = 0;
	enum run_status st;
	char *cause = NULL;
	cJSON *runs;
	int err;

	if (msg_arg_string(req->args, "experiment", false, &experiment, &cause) < 0 ||
	    msg_arg_string(req->args, "status", false, &status, &cause) < 0 ||
	    msg_arg_int(req->args, "limit", false, 1, 100000, &limit, &cause) < 0) {
		request_arg_error(req, cause);
		return;
	}
	if (cJSON_GetObjectItemCaseSensitive(req->args, "parent") &&
	    request_resolve_run_arg(req, "parent", &parent) < 0) {
		return;
	}
	if (status && run_status_parse(status, &st) < 0) {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
		              "unknown status '%s' (one of Queued, Preparing, Scaling, Running, "
		              "CancelRequested, Finalizing, Completed, Failed, Canceled)",
		              status);
		return;
	}
	err = store_run_list_json(req->d->store, experiment, status, parent, (int)limit, &runs);
	if (err < 0) {
		request_error(req, PROTO_E_INTERNAL, "listing runs failed: %s",
		              store_errmsg(req->d->store));
		return;
	}
	cJSON *res = cJSON_CreateObject();
	cJSON_AddItemToObject(res, "runs", runs);
	request_reply(req, res);
}

static void ops_run_show(struct request *req)
{
	int64_t seq;
	cJSON *run;

	if (request_resolve_run(req, &seq) < 0) {
		return;
	}
	if (store_run_json(req->d->store, seq, true, &run) < 0) {
		request_error(req, PROTO_E_INTERNAL, "reading run #%lld failed: %s", (long long)seq,
		              store_errmsg(req->d->store));
		return;
	}
	/* its data: inputs (with download progress) and outputs to datastores */
	inputs_json(req->d, seq, run);
	retention_describe(req->d, seq, run);
	request_reply(req, run);
}

static void ops_run_logs(struct request *req)
{
	int64_t seq, after = 0, limit = 10000, next;
	const char *stream_name = NULL;
	char stream, *cause = NULL;
	cJSON *lines, *run = NULL;
	bool more;

	if (request_resolve_run(req, &seq) < 0) {
		return;
	}
	if (msg_arg_int(req->args, "after_seq", false, 0, INT64_MAX / 2, &after, &cause) < 0 ||
	    msg_arg_int(req->args, "limit", false, 1, 100000, &limit, &cause) < 0 ||
	    msg_arg_string(req->args, "stream", false, &stream_name, &cause) < 0) {
		request_arg_error(req, cause);
		return;
	}
	if (logs_stream_parse(stream_name, &stream) < 0) {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
			      "argument 'stream' must be \"stdout\", \"stderr\", \"environment\" or "
			      "\"input\"");
		return;
	}
	if (store_run_json(req->d->store, seq, false, &run) < 0) {
		request_error(req, PROTO_E_INTERNAL, "reading run #%lld failed", (long long)seq);
		return;
	}
	if (logs_read_json(req->d, seq, cJSON_GetObjectItem(run, "id")->valuestring, after, limit,
	                   stream, &lines, &next, &more) < 0) {
		cJSON_Delete(run);
		request_error(req, PROTO_E_INTERNAL, "reading the log failed: %s",
		              store_errmsg(req->d->store));
		return;
	}
	cJSON *res = cJSON_CreateObject();
	cJSON_AddItemToObject(res, "lines", lines);
	cJSON_AddNumberToObject(res, "next_seq", (double)next);
	cJSON_AddBoolToObject(res, "more", more);
	cJSON_AddBoolToObject(res, "terminal", !more && !run_find(req->d, seq));
	cJSON_Delete(run);
	request_reply(req, res);
}

static void ops_run_watch(struct request *req)
{
	int64_t seq, after = 0, sub;
	bool logs = true;
	const char *stream_name = NULL;
	char stream, *cause = NULL;
	cJSON *run;

	if (request_resolve_run(req, &seq) < 0) {
		return;
	}
	if (sweep_active(req->d, seq)) {
		/* It has no lines and no process: its end is its last child's. */
		request_error(req, PROTO_E_INVALID_ARGUMENT,
			      "run #%lld is a sweep in progress; follow it with sweep.show "
			      "('runyard sweep show')",
			      (long long)seq);
		return;
	}
	if (msg_arg_bool(req->args, "logs", false, &logs, &cause) < 0 ||
	    msg_arg_int(req->args, "after_seq", false, 0, INT64_MAX / 2, &after, &cause) < 0 ||
	    msg_arg_string(req->args, "stream", false, &stream_name, &cause) < 0) {
		request_arg_error(req, cause);
		return;
	}
	if (logs_stream_parse(stream_name, &stream) < 0) {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
			      "argument 'stream' must be \"stdout\", \"stderr\", \"environment\" or "
			      "\"input\"");
		return;
	}
	if (store_run_json(req->d->store, seq, true, &run) < 0) {
		request_error(req, PROTO_E_INTERNAL, "reading run #%lld failed", (long long)seq);
		return;
	}
	if (watch_add(req->d, req->conn, seq, cJSON_GetObjectItem(run, "id")->valuestring,
	                   logs, stream, after, &sub) < 0) {
		cJSON_Delete(run);
		request_error(req, PROTO_E_INTERNAL, "out of memory");
		return;
	}
	cJSON *res = cJSON_CreateObject();
	cJSON_AddNumberToObject(res, "sub", (double)sub);
	cJSON_AddItemToObject(res, "run", run);
	request_reply(req, res);
	watch_start(req->d, sub);
}

static void ops_run_unwatch(struct request *req)
{
	int64_t sub;
	char *cause = NULL;

	if (msg_arg_int(req->args, "sub", true, 1, INT64_MAX / 2, &sub, &cause) < 0) {
		request_arg_error(req, cause);
		return;
	}
	if (watch_remove(req->d, req->conn, sub) < 0) {
		request_error(req, PROTO_E_NOT_FOUND, "no watch %lld on this connection",
		              (long long)sub);
		return;
	}
	request_reply(req, NULL);
}

static void ops_run_cancel(struct request *req)
{
	int64_t seq;
	struct run *r;
	cJSON *run;

	if (request_resolve_run(req, &seq) < 0) {
		return;
	}
	if (sweep_active(req->d, seq)) {
		ops_sweep_cancel_reply(req, seq);
		return;
	}
	r = run_find(req->d, seq);
	if (!r) {
		const char *status = "ended";
		if (store_run_json(req->d->store, seq, false, &run) == 0) {
			request_error(req, PROTO_E_CONFLICT,
			              "run #%lld has already ended (%s); nothing to cancel",
			              (long long)seq,
			              cJSON_GetObjectItem(run, "status")->valuestring);
			cJSON_Delete(run);
			return;
		}
		request_error(req, PROTO_E_CONFLICT, "run #%lld has already %s", (long long)seq,
		              status);
		return;
	}
	/* A queued run ends inside exec_cancel and r goes with it. */
	bool was_cancel_requested = r->status == RUN_CANCEL_REQUESTED;
	log_info("run %s: cancel requested", r->id);
	/* An interactive run's process is its client's: it ends at once, and
	 * the client learns it from its next heartbeat. */
	int err = r->interactive ? interactive_end(r, RUN_CANCELED, NULL, NULL) : exec_cancel(r);
	if (err == -EALREADY) {
		request_error(req, PROTO_E_CONFLICT, "run #%lld is already %s", (long long)seq,
		              was_cancel_requested ? "being canceled"
		                                   : "finalizing and will end shortly");
		return;
	}
	if (err < 0) {
		request_error(req, PROTO_E_INTERNAL, "canceling run #%lld failed: %s",
		              (long long)seq, strerror(-err));
		return;
	}
	cJSON *res = cJSON_CreateObject();
	if (store_run_json(req->d->store, seq, false, &run) == 0) {
		cJSON_AddStringToObject(res, "id", cJSON_GetObjectItem(run, "id")->valuestring);
		cJSON_AddNumberToObject(res, "seq", (double)seq);
		cJSON_AddStringToObject(res, "status",
		                        cJSON_GetObjectItem(run, "status")->valuestring);
		cJSON_Delete(run);
	}
	request_reply(req, res);
}

static const char *const request_keys[] = {"cpus", "mem", "gpus", "gpu_mem"};

/* run.update's request fields over r's current request, checked as a
 * submit's are (compute_submit_args). *ret_changed: any was given. */
static int update_request(struct request *req, struct run *r, struct res_request *ret,
			  bool *ret_changed, char **cause)
{
	struct daemon *d = req->d;
	cJSON *merged = res_request_json(&r->req);
	struct slurm_resources res;
	const char *target = NULL;
	int err;

	*ret_changed = false;
	if (!merged) {
		return -ENOMEM;
	}
	/* An unbound CPU count is the default, not a request to hold to. */
	if (!r->req.bound) {
		cJSON_DeleteItemFromObjectCaseSensitive(merged, "cpus");
	}
	for (size_t i = 0; i < sizeof(request_keys) / sizeof(request_keys[0]); i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(req->args, request_keys[i]);
		if (v) {
			cJSON_DeleteItemFromObjectCaseSensitive(merged, request_keys[i]);
			cJSON_AddItemToObject(merged, request_keys[i], cJSON_Duplicate(v, true));
			*ret_changed = true;
		}
	}
	cJSON_DeleteItemFromObjectCaseSensitive(merged, "bound");
	err = compute_submit_args(d, merged, &target, &res, ret, cause);
	cJSON_Delete(merged);
	return err;
}

/* run.update: what may change while a run waits in the queue: its
 * priority, and on the local machine its request (cpus, mem, gpus,
 * gpu_mem). All or nothing: a value that is refused changes nothing. */
static void ops_run_update(struct request *req)
{
	struct daemon *d = req->d;
	int64_t seq, priority = 0;
	bool have_priority = cJSON_GetObjectItemCaseSensitive(req->args, "priority") != NULL;
	bool have_request = false;
	struct res_request q;
	char *cause = NULL, *qtext = NULL;
	struct run *r;

	if (request_resolve_run(req, &seq) < 0) {
		return;
	}
	if (msg_arg_int(req->args, "priority", false, -1000, 1000, &priority, &cause) < 0) {
		request_arg_error(req, cause);
		return;
	}
	r = run_find(d, seq);
	if (!r || r->status != RUN_QUEUED) {
		request_error(req, PROTO_E_CONFLICT,
			      "run #%lld is not queued: only a queued run's priority and request "
			      "can change",
			      (long long)seq);
		return;
	}
	for (size_t i = 0; i < sizeof(request_keys) / sizeof(request_keys[0]); i++) {
		have_request |= cJSON_GetObjectItemCaseSensitive(req->args, request_keys[i]) != NULL;
	}
	if (!have_priority && !have_request) {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
			      "nothing to change: give priority, cpus, mem, gpus or gpu_mem");
		return;
	}
	if (have_request) {
		if (target_of(r) != d->targets) {
			request_error(req, PROTO_E_INVALID_ARGUMENT,
				      "run #%lld runs on compute target %s: its request is its "
				      "target's and is fixed at submit",
				      (long long)seq, target_of(r)->name);
			return;
		}
		int err = update_request(req, r, &q, &have_request, &cause);
		if (err < 0) {
			if (err == -ENOMEM) {
				request_error(req, PROTO_E_INTERNAL, "out of memory");
				free(cause);
			} else {
				request_arg_error(req, cause);
			}
			return;
		}
		cJSON *qj = res_request_json(&q);
		qtext = qj ? cJSON_PrintUnformatted(qj) : NULL;
		cJSON_Delete(qj);
		if (!qtext) {
			request_error(req, PROTO_E_INTERNAL, "out of memory");
			return;
		}
	}
	if (store_begin(d->store) < 0 ||
	    (have_priority && store_run_priority_set(d->store, seq, (int)priority) < 0) ||
	    (qtext && store_run_request_set(d->store, seq, qtext) < 0) ||
	    store_commit(d->store) < 0) {
		store_rollback(d->store);
		request_error(req, PROTO_E_INTERNAL, "recording the change failed: %s",
			      store_errmsg(d->store));
		free(qtext);
		return;
	}
	free(qtext);
	if (have_priority) {
		/* Its place in the line follows its priority. */
		queue_remove(d, r);
		r->priority = (int)priority;
		queue_enqueue(d, r);
	}
	if (have_request) {
		r->req = q;
	}
	scheduler_kick(d);
	cJSON *res = cJSON_CreateObject();
	cJSON_AddStringToObject(res, "id", r->id);
	cJSON_AddNumberToObject(res, "seq", (double)seq);
	cJSON_AddNumberToObject(res, "priority", (double)r->priority);
	cJSON_AddItemToObject(res, "request", res_request_json(&r->req));
	request_reply(req, res);
}

static void ops_run_outputs(struct request *req)
{
	int64_t seq;
	cJSON *arts;

	if (request_resolve_run(req, &seq) < 0) {
		return;
	}
	if (store_artifacts_json(req->d->store, seq, &arts) < 0) {
		request_error(req, PROTO_E_INTERNAL, "reading outputs failed: %s",
		              store_errmsg(req->d->store));
		return;
	}
	cJSON *res = cJSON_CreateObject();
	cJSON_AddItemToObject(res, "artifacts", arts);
	request_reply(req, res);
}

#define ARTIFACT_CHUNK (4 * 1024 * 1024)

static void ops_artifact_read(struct request *req)
{
	int64_t seq, offset = 0, length = ARTIFACT_CHUNK, size;
	const char *path = NULL;
	char *cause = NULL, hex[65];

	if (request_resolve_run(req, &seq) < 0) {
		return;
	}
	if (msg_arg_string(req->args, "path", true, &path, &cause) < 0 ||
	    msg_arg_int(req->args, "offset", false, 0, INT64_MAX / 2, &offset, &cause) < 0 ||
	    msg_arg_int(req->args, "length", false, 1, ARTIFACT_CHUNK, &length, &cause) < 0) {
		request_arg_error(req, cause);
		return;
	}
	if (store_artifact_get(req->d->store, seq, path, hex, &size) < 0) {
		request_error(req, PROTO_E_NOT_FOUND,
		              "run #%lld has no output '%s' (see 'runyard outputs %lld')",
		              (long long)seq, path, (long long)seq);
		return;
	}
	request_reply_blob_chunk(req, hex, size, offset, length, path);
}

static void ops_experiment_list(struct request *req)
{
	cJSON *exps;

	if (store_experiments_json(req->d->store, &exps) < 0) {
		request_error(req, PROTO_E_INTERNAL, "listing experiments failed: %s",
		              store_errmsg(req->d->store));
		return;
	}
	cJSON *res = cJSON_CreateObject();
	cJSON_AddItemToObject(res, "experiments", exps);
	request_reply(req, res);
}

const struct op_entry ops_run_entries[] = {
	{"run.list", ops_run_list, 0},
	{"run.update", ops_run_update, 0},
	{"run.show", ops_run_show, 0},
	{"run.logs", ops_run_logs, 0},
	{"run.watch", ops_run_watch, 0},
	{"run.unwatch", ops_run_unwatch, 0},
	{"run.cancel", ops_run_cancel, 0},
	{"run.outputs", ops_run_outputs, 0},
	{"artifact.read", ops_artifact_read, 0},
	{"experiment.list", ops_experiment_list, 0},
	{0},
};

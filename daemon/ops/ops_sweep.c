/* The sweep ops: sweep.list, sweep.show, sweep.explain and sweep.cancel
 * (sweep.submit is beside run.submit, whose checks and snapshot it
 * shares). Replies are read from the store, so an ended sweep and one in
 * progress answer alike. */
#include "optable.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"
#include "log.h"
#include "msg.h"
#include "proto.h"
#include "request.h"
#include "store.h"
#include "sweep.h"

/* The sweep args.sweep names; replies the error itself and returns < 0. */
static int resolve_sweep(struct request *req, bool explain, int64_t *ret_seq, cJSON **ret)
{
	int err;

	if (request_resolve_run_arg(req, "sweep", ret_seq) < 0) {
		return -EINVAL;
	}
	err = store_sweep_json(req->d->store, *ret_seq, explain, ret);
	if (err == -ENOENT) {
		request_error(req, PROTO_E_NOT_FOUND,
			      "run #%lld is not a sweep (see 'runyard sweep list')",
			      (long long)*ret_seq);
	} else if (err < 0) {
		request_error(req, PROTO_E_INTERNAL, "reading the sweep failed: %s",
			      store_errmsg(req->d->store));
	}
	return err;
}

static void ops_sweep_show(struct request *req)
{
	int64_t seq;
	cJSON *res;

	if (resolve_sweep(req, false, &seq, &res) == 0) {
		request_reply(req, res);
	}
}

static void ops_sweep_explain(struct request *req)
{
	int64_t seq;
	cJSON *res;

	if (resolve_sweep(req, true, &seq, &res) == 0) {
		request_reply(req, res);
	}
}

static void ops_sweep_list(struct request *req)
{
	const char *experiment = NULL;
	int64_t limit = 100;
	char *cause = NULL;
	cJSON *arr;

	if (msg_arg_string(req->args, "experiment", false, &experiment, &cause) < 0 ||
	    msg_arg_int(req->args, "limit", false, 1, 100000, &limit, &cause) < 0) {
		request_arg_error(req, cause);
		return;
	}
	if (store_sweep_list_json(req->d->store, experiment, (int)limit, &arr) < 0) {
		request_error(req, PROTO_E_INTERNAL, "listing sweeps failed: %s",
			      store_errmsg(req->d->store));
		return;
	}
	cJSON *res = cJSON_CreateObject();
	cJSON_AddItemToObject(res, "sweeps", arr);
	request_reply(req, res);
}

void ops_sweep_cancel_reply(struct request *req, int64_t seq)
{
	cJSON *sw = NULL;
	int n = 0;

	if (sweep_cancel(req->d, seq, &n) < 0) {
		const char *status = "ended";
		if (store_sweep_json(req->d->store, seq, false, &sw) == 0) {
			status = cJSON_GetStringValue(cJSON_GetObjectItem(sw, "status"));
		}
		if (status && strcmp(status, "Running") == 0) {
			request_error(req, PROTO_E_CONFLICT,
				      "sweep #%lld is already being canceled: it ends once its "
				      "last trial has stopped",
				      (long long)seq);
		} else {
			request_error(req, PROTO_E_CONFLICT, "sweep #%lld has already ended (%s)",
				      (long long)seq, status ? status : "ended");
		}
		cJSON_Delete(sw);
		return;
	}
	log_info("sweep #%lld: canceled, %d trial(s) stopped", (long long)seq, n);
	cJSON *res = cJSON_CreateObject();
	if (store_sweep_json(req->d->store, seq, false, &sw) == 0) {
		cJSON_AddStringToObject(res, "id", cJSON_GetStringValue(cJSON_GetObjectItem(sw, "id")));
		cJSON_Delete(sw);
	}
	cJSON_AddNumberToObject(res, "seq", (double)seq);
	cJSON_AddStringToObject(res, "status", "Canceled");
	cJSON_AddNumberToObject(res, "canceled", n);
	request_reply(req, res);
}

static void ops_sweep_cancel(struct request *req)
{
	int64_t seq;
	cJSON *sw;

	if (resolve_sweep(req, false, &seq, &sw) < 0) {
		return;
	}
	cJSON_Delete(sw);
	ops_sweep_cancel_reply(req, seq);
}

const struct op_entry ops_sweep_entries[] = {
	{"sweep.list", ops_sweep_list, 0},
	{"sweep.show", ops_sweep_show, 0},
	{"sweep.explain", ops_sweep_explain, 0},
	{"sweep.cancel", ops_sweep_cancel, 0},
	{0},
};

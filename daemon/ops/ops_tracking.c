/* The tracking ops a run's SDK and the CLI send: run.context, run.metrics
 * and run.tag; with a run's token, only about that run. */
#include "optable.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


#include "context.h"
#include "interactive.h"
#include "msg.h"
#include "ops_tracking.h"
#include "proto.h"
#include "request.h"
#include "run.h"
#include "store.h"
#include "tracking.h"

/* Ops */

/* Bytes an op with "sync" may ingest before it answers anyway. */
#define SYNC_BUDGET (64 * 1024 * 1024)
/* run.metrics: points per reply. */
#define POINTS_LIMIT 10000
#define POINTS_LIMIT_MAX 100000
/* run.metrics: text per reply, so a page of big values still fits a frame. */
#define POINTS_BYTES_MAX (8 * 1024 * 1024)
#define SPARK_MAX 200

/* Characters (code points) of a valid UTF-8 string. */
static size_t chars(const char *s)
{
	size_t n = 0;

	for (; *s; s++) {
		n += ((unsigned char)*s & 0xC0) != 0x80;
	}
	return n;
}

/* The run an op acts on. With a token, only the token's own run: args.run
 * may be left out, and naming any other run is PermissionDenied. Replies
 * the error itself and returns < 0. */
static int resolve(struct request *req, int64_t *ret_seq)
{
	const cJSON *run = cJSON_GetObjectItemCaseSensitive(req->args, "run");
	const char *token = NULL;
	char *cause = NULL, ref[32];
	int64_t own, seq;

	if (msg_arg_string(req->args, "token", false, &token, &cause) < 0) {
		request_arg_error(req, cause);
		return -EINVAL;
	}
	if (!token) {
		return request_resolve_run(req, ret_seq);
	}
	if (store_run_by_token(req->d->store, token, &own) < 0) {
		request_error(req, PROTO_E_PERMISSION,
		              "the token is not the token of any run (RUNYARD_RUN_TOKEN of a run)");
		return -EACCES;
	}
	if (!run || cJSON_IsNull(run)) {
		*ret_seq = own;
		return 0;
	}
	const char *name = NULL;
	if (cJSON_IsString(run)) {
		name = run->valuestring;
	} else if (cJSON_IsNumber(run) && run->valuedouble >= 1 && run->valuedouble < 1e15) {
		snprintf(ref, sizeof(ref), "%lld", (long long)run->valuedouble);
		name = ref;
	}
	if (!name || store_run_resolve(req->d->store, name, &seq) < 0 || seq != own) {
		request_error(req, PROTO_E_PERMISSION,
		              "a run's token gives access to its own run (#%lld) only, not to run "
		              "'%s'",
		              (long long)own, name ? name : "?");
		return -EACCES;
	}
	*ret_seq = seq;
	return 0;
}

/* args.sync: the byte offset of tracking.jsonl the caller has written up
 * to; what it wrote is stored before the op answers (read your writes). */
static int sync_arg(struct request *req, int64_t seq)
{
	int64_t until = -1;
	char *cause = NULL;
	struct run *r;

	if (msg_arg_int(req->args, "sync", false, 0, INT64_MAX / 2, &until, &cause) < 0) {
		request_arg_error(req, cause);
		return -EINVAL;
	}
	r = run_find(req->d, seq);
	if (until > 0 && r && (r->status == RUN_RUNNING || r->status == RUN_CANCEL_REQUESTED) &&
	    r->tracking_offset < until) {
		int64_t want = until - r->tracking_offset;
		tracking_sync(r, want < SYNC_BUDGET ? want : SYNC_BUDGET);
	}
	return 0;
}

static void ops_tracking_context(struct request *req)
{
	static const char *const keep[] = {"id",     "seq",  "experiment",
	                                   "status", "tags", "properties"};
	int64_t seq;
	cJSON *run = NULL, *res;

	if (resolve(req, &seq) < 0 || sync_arg(req, seq) < 0) {
		return;
	}
	if (store_run_json(req->d->store, seq, true, &run) < 0) {
		request_error(req, PROTO_E_INTERNAL, "reading run #%lld failed: %s", (long long)seq,
		              store_errmsg(req->d->store));
		return;
	}
	res = cJSON_CreateObject();
	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		cJSON *it = cJSON_DetachItemFromObjectCaseSensitive(run, keep[i]);
		if (it) {
			cJSON_AddItemToObject(res, keep[i], it);
		}
	}
	cJSON_Delete(run);
	request_reply(req, res);
}

static void ops_tracking_metrics(struct request *req)
{
	const char *name = NULL;
	int64_t seq, after = 0, limit = POINTS_LIMIT, spark = 0;
	char *cause = NULL;
	cJSON *res = NULL, *list = NULL;
	int err;

	if (resolve(req, &seq) < 0) {
		return;
	}
	if (msg_arg_string(req->args, "name", false, &name, &cause) < 0 ||
	    msg_arg_int(req->args, "after", false, 0, INT64_MAX / 2, &after, &cause) < 0 ||
	    msg_arg_int(req->args, "limit", false, 1, POINTS_LIMIT_MAX, &limit, &cause) < 0 ||
	    msg_arg_int(req->args, "spark", false, 0, SPARK_MAX, &spark, &cause) < 0) {
		request_arg_error(req, cause);
		return;
	}
	if (sync_arg(req, seq) < 0) {
		return;
	}
	if (name) {
		err = store_metric_points_json(req->d->store, seq, name, after, limit,
		                               POINTS_BYTES_MAX, &res);
		if (err == -ENOENT) {
			request_error(req, PROTO_E_NOT_FOUND,
			              "run #%lld has no metric '%s' (see 'runyard metrics %lld')",
			              (long long)seq, name, (long long)seq);
			return;
		}
	} else {
		err = store_metrics_json(req->d->store, seq, (int)spark, &list);
		if (err == 0) {
			res = cJSON_CreateObject();
			cJSON_AddItemToObject(res, "metrics", list);
		}
	}
	if (err < 0) {
		request_error(req, PROTO_E_INTERNAL, "reading the metrics of run #%lld failed: %s",
		              (long long)seq, store_errmsg(req->d->store));
		return;
	}
	cJSON_AddNumberToObject(res, "seq", (double)seq);
	request_reply(req, res);
}

/* Check the tags or properties of a run.tag request before anything is
 * written, so a bad one changes nothing. */
static int check_kv(struct request *req, const cJSON *map, bool tags)
{
	const char *what = tags ? "tag" : "property";
	const cJSON *kv, *obj = cJSON_IsObject(map) ? map : NULL;

	if (map && !cJSON_IsNull(map) && !cJSON_IsObject(map)) {
		request_error(req, PROTO_E_INVALID_ARGUMENT, "argument '%s' must be an object",
		              tags ? "tags" : "properties");
		return -EINVAL;
	}
	cJSON_ArrayForEach(kv, obj)
	{
		size_t kn = strlen(kv->string);
		if (!utf8_valid(kv->string, kn) || chars(kv->string) == 0 ||
		    chars(kv->string) > TRACKING_KEY_MAX) {
			request_error(req, PROTO_E_INVALID_ARGUMENT,
			              "%s key '%.40s' must be 1 to %d characters", what, kv->string,
			              TRACKING_KEY_MAX);
			return -EINVAL;
		}
		if (!(cJSON_IsString(kv) || (tags && cJSON_IsNull(kv)))) {
			request_error(req, PROTO_E_INVALID_ARGUMENT,
			              "the value of %s '%s' must be a "
			              "string%s",
			              what, kv->string, tags ? " (or null to remove it)" : "");
			return -EINVAL;
		}
		if (cJSON_IsString(kv) && !utf8_valid(kv->valuestring, strlen(kv->valuestring))) {
			request_error(req, PROTO_E_INVALID_ARGUMENT,
			              "the value of %s '%s' is not valid UTF-8", what, kv->string);
			return -EINVAL;
		}
		if (cJSON_IsString(kv) && chars(kv->valuestring) > TRACKING_VALUE_MAX) {
			request_error(
			    req, PROTO_E_INVALID_ARGUMENT,
			    "the value of %s '%s' is %zu characters long; the limit is %d", what,
			    kv->string, chars(kv->valuestring), TRACKING_VALUE_MAX);
			return -EINVAL;
		}
	}
	return 0;
}

static void ops_tracking_tag(struct request *req)
{
	const cJSON *tags = cJSON_GetObjectItemCaseSensitive(req->args, "tags");
	const cJSON *props = cJSON_GetObjectItemCaseSensitive(req->args, "properties"), *kv;
	const cJSON *tag_obj = cJSON_IsObject(tags) ? tags : NULL;
	const cJSON *prop_obj = cJSON_IsObject(props) ? props : NULL;
	struct store *s = req->d->store;
	int64_t seq;
	cJSON *run = NULL, *res;
	int err;

	if (resolve(req, &seq) < 0 || check_kv(req, tags, true) < 0 ||
	    check_kv(req, props, false) < 0) {
		return;
	}
	if ((err = store_begin(s)) < 0) {
		goto fail;
	}
	cJSON_ArrayForEach(kv, tag_obj)
	{
		err = store_run_tag_set(s, seq, kv->string,
		                        cJSON_IsString(kv) ? kv->valuestring : NULL,
		                        TRACKING_TAGS_MAX);
		if (err == -E2BIG) {
			store_rollback(s);
			request_error(req, PROTO_E_TOO_LARGE,
			              "run #%lld already has %d tags, the limit; tag '%s' was not "
			              "added (nothing was changed)",
			              (long long)seq, TRACKING_TAGS_MAX, kv->string);
			return;
		}
		if (err < 0) {
			goto fail;
		}
	}
	cJSON_ArrayForEach(kv, prop_obj)
	{
		err = store_run_property_add(s, seq, kv->string, kv->valuestring,
		                             TRACKING_PROPERTIES_MAX);
		if (err == -E2BIG || err == -EEXIST) {
			store_rollback(s);
			if (err == -E2BIG) {
				request_error(req, PROTO_E_TOO_LARGE,
				              "run #%lld already has %d properties, the limit; "
				              "property '%s' was not added (nothing was changed)",
				              (long long)seq, TRACKING_PROPERTIES_MAX, kv->string);
			} else {
				request_error(
				    req, PROTO_E_CONFLICT,
				    "property '%s' of run #%lld is already set to another "
				    "value; properties cannot change (nothing was changed)",
				    kv->string, (long long)seq);
			}
			return;
		}
		if (err < 0) {
			goto fail;
		}
	}
	if ((err = store_commit(s)) < 0) {
		goto fail;
	}
	if (store_run_json(s, seq, true, &run) < 0) {
		request_error(req, PROTO_E_INTERNAL, "reading run #%lld failed", (long long)seq);
		return;
	}
	res = cJSON_CreateObject();
	cJSON_AddNumberToObject(res, "seq", (double)seq);
	cJSON_AddItemToObject(res, "tags", cJSON_DetachItemFromObjectCaseSensitive(run, "tags"));
	cJSON_AddItemToObject(res, "properties",
	                      cJSON_DetachItemFromObjectCaseSensitive(run, "properties"));
	cJSON_Delete(run);
	request_reply(req, res);
	return;
fail:
	store_rollback(s);
	request_error(req, PROTO_E_INTERNAL, "setting tags of run #%lld failed: %s", (long long)seq,
	              store_errmsg(s));
}

/* The interactive run an op acts on, in flight; replies the error itself
 * and returns NULL. */
static struct run *resolve_interactive(struct request *req, int64_t *ret_seq)
{
	struct run *r;
	cJSON *run = NULL;

	if (resolve(req, ret_seq) < 0) {
		return NULL;
	}
	r = run_find(req->d, *ret_seq);
	if (r && r->interactive) {
		return r;
	}
	if (!r && store_run_json(req->d->store, *ret_seq, false, &run) == 0) {
		const cJSON *kind = cJSON_GetObjectItem(run, "kind");
		const cJSON *status = cJSON_GetObjectItem(run, "status");
		bool inter = cJSON_IsString(kind) && strcmp(kind->valuestring, "interactive") == 0;
		if (inter) {
			request_error(req, PROTO_E_CONFLICT, "run #%lld has already ended (%s)",
			              (long long)*ret_seq,
			              cJSON_IsString(status) ? status->valuestring : "?");
			cJSON_Delete(run);
			return NULL;
		}
		cJSON_Delete(run);
	}
	request_error(req, PROTO_E_CONFLICT,
	              "run #%lld is not an interactive run: its process is the daemon's, and it "
	              "ends when that process does",
	              (long long)*ret_seq);
	return NULL;
}

/* Reply {id, seq, status} of a run, read from the store. */
static void reply_status(struct request *req, int64_t seq)
{
	cJSON *run = NULL, *res;

	if (store_run_json(req->d->store, seq, false, &run) < 0) {
		request_error(req, PROTO_E_INTERNAL, "reading run #%lld failed: %s", (long long)seq,
		              store_errmsg(req->d->store));
		return;
	}
	res = cJSON_CreateObject();
	cJSON_AddItemToObject(res, "id", cJSON_DetachItemFromObjectCaseSensitive(run, "id"));
	cJSON_AddNumberToObject(res, "seq", (double)seq);
	cJSON_AddItemToObject(res, "status",
	                      cJSON_DetachItemFromObjectCaseSensitive(run, "status"));
	cJSON_Delete(run);
	request_reply(req, res);
}

/* run.heartbeat: the client of an interactive run is alive. An ended run
 * answers its status (not an error), so the client learns of a cancel. */
static void ops_tracking_heartbeat(struct request *req)
{
	int64_t seq;
	struct run *r;

	if (resolve(req, &seq) < 0) {
		return;
	}
	r = run_find(req->d, seq);
	if (r && !r->interactive) {
		request_error(req, PROTO_E_CONFLICT,
		              "run #%lld is not an interactive run; it needs no heartbeat",
		              (long long)seq);
		return;
	}
	if (r) {
		interactive_heartbeat(r);
	}
	reply_status(req, seq);
}

/* run.finish: the client ends its interactive run. */
static void ops_tracking_finish(struct request *req)
{
	const char *status = NULL, *code = NULL, *message = NULL;
	char *cause = NULL;
	enum run_status to;
	int64_t seq;
	struct run *r;

	if (msg_arg_string(req->args, "status", true, &status, &cause) < 0 ||
	    msg_arg_string(req->args, "error_code", false, &code, &cause) < 0 ||
	    msg_arg_string(req->args, "error_message", false, &message, &cause) < 0) {
		request_arg_error(req, cause);
		return;
	}
	if (run_status_parse(status, &to) < 0 ||
	    (to != RUN_COMPLETED && to != RUN_FAILED && to != RUN_CANCELED)) {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
		              "argument 'status' must be \"Completed\", \"Failed\" or \"Canceled\", "
		              "not \"%s\"",
		              status);
		return;
	}
	if ((code || message) && to != RUN_FAILED) {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
		              "'error_code' and 'error_message' are for status \"Failed\" only");
		return;
	}
	if (code && (!*code || strlen(code) > 64 || !utf8_valid(code, strlen(code)))) {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
		              "argument 'error_code' must be 1 to 64 bytes of text");
		return;
	}
	if (message && (strlen(message) > 10000 || !utf8_valid(message, strlen(message)))) {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
		              "argument 'error_message' must be at most 10000 bytes of text");
		return;
	}
	if (!(r = resolve_interactive(req, &seq))) {
		return;
	}
	int err = interactive_end(r, to, code, message);
	if (err < 0) {
		request_error(req, PROTO_E_INTERNAL, "ending run #%lld failed: %s", (long long)seq,
		              strerror(-err));
		return;
	}
	reply_status(req, seq);
}

int ops_tracking_resolve_run(struct request *req, int64_t *ret_seq)
{
	int64_t seq;

	if (resolve(req, &seq) < 0 || sync_arg(req, seq) < 0) {
		return -EINVAL;
	}
	*ret_seq = seq;
	return 0;
}

const struct op_entry ops_tracking_entries[] = {
	{"run.context", ops_tracking_context, 0},
	{"run.metrics", ops_tracking_metrics, 0},
	{"run.tag", ops_tracking_tag, 0},
	{"run.heartbeat", ops_tracking_heartbeat, 0},
	{"run.finish", ops_tracking_finish, 0},
	{0},
};

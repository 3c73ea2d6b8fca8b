/* The download cache's ops: cache.list and cache.clear (docs/inputs.md,
 * "The download cache"; its bound is runyardd --cache-max-size). */
#include "optable.h"

#include <errno.h>
#include <string.h>

#include "context.h"
#include "fetch.h"
#include "msg.h"
#include "proto.h"
#include "request.h"

static void ops_cache_list(struct request *req)
{
	cJSON *objs = NULL, *res;
	double total = 0;
	const cJSON *o;
	int err;

	err = fetch_cache_list(req->d->fetch, &objs);
	if (err < 0) {
		request_error(req, PROTO_E_INTERNAL, "listing the download cache failed: %s",
			      strerror(-err));
		return;
	}
	cJSON_ArrayForEach(o, objs) {
		total += cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "size"));
	}
	res = cJSON_CreateObject();
	cJSON_AddItemToObject(res, "objects", objs);
	cJSON_AddNumberToObject(res, "bytes", total);
	cJSON_AddNumberToObject(res, "max_bytes", (double)req->d->cache_max_bytes);
	request_reply(req, res);
}

static void trimmed_cb(void *ud, int err, const struct fetch_trim_result *r)
{
	struct request *req = ud;

	if (err < 0) {
		request_error(req, err == -ECANCELED ? PROTO_E_SHUTTING_DOWN : PROTO_E_INTERNAL,
			      "clearing the download cache failed: %s", strerror(-err));
	} else {
		cJSON *res = cJSON_CreateObject();
		cJSON_AddNumberToObject(res, "removed", (double)r->removed);
		cJSON_AddNumberToObject(res, "bytes", (double)r->bytes);
		cJSON_AddNumberToObject(res, "kept_in_use", (double)r->kept_in_use);
		cJSON_AddNumberToObject(res, "bytes_after", (double)r->bytes_after);
		request_reply(req, res);
	}
	request_release(req);
}

static void ops_cache_clear(struct request *req)
{
	struct request *held = request_hold(req);
	int err;

	if (!held) {
		request_error(req, PROTO_E_INTERNAL, "out of memory");
		return;
	}
	err = fetch_cache_trim(req->d->fetch, 0, trimmed_cb, held);
	if (err < 0) {
		request_release(held);
		request_error(req, PROTO_E_INTERNAL, "cannot clear the download cache: %s",
			      strerror(-err));
	}
}

const struct op_entry ops_cache_entries[] = {
	{"cache.list", ops_cache_list, 0},
	{"cache.clear", ops_cache_clear, 0},
	{0},
};

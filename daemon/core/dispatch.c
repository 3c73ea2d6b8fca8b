/* The op table: every group's entries, searched by name; and the checks
 * every request passes before its handler (handshake, stopping). */
#include "dispatch.h"

#include <stdint.h>
#include <string.h>

#include "context.h"
#include "optable.h"
#include "proto.h"
#include "request.h"
#include "server.h"

/* Every group's entries; op names are unique across them. */
static const struct op_entry *const groups[] = {
	ops_model_entries,
	ops_dataset_entries,
	ops_env_entries,
	ops_compute_entries,
	ops_tracking_entries,
	ops_daemon_entries,
	ops_run_entries,
	ops_submit_entries,
	ops_snapshot_entries,
	ops_service_entries,
	ops_sweep_entries,
	ops_history_entries,
	ops_cache_entries,
};

static const struct op_entry *find_op(const char *name)
{
	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
		for (const struct op_entry *e = groups[g]; e->name; e++) {
			if (strcmp(e->name, name) == 0) {
				return e;
			}
		}
	}
	return NULL;
}

void dispatch_message(struct conn *c, const cJSON *msg, const char *bad)
{
	struct request req = {.d = conn_context(c), .conn = c};
	const cJSON *id, *op, *args;

	if (!cJSON_IsObject(msg)) {
		request_error(&req, PROTO_E_BAD_REQUEST,
			      "the frame's payload is not a JSON object");
		return;
	}
	id = cJSON_GetObjectItemCaseSensitive(msg, "id");
	op = cJSON_GetObjectItemCaseSensitive(msg, "op");
	args = cJSON_GetObjectItemCaseSensitive(msg, "args");
	if (!cJSON_IsNumber(id) || id->valuedouble < 1 || id->valuedouble > 9007199254740991.0 ||
	    id->valuedouble != (double)(int64_t)id->valuedouble) {
		request_error(&req, PROTO_E_BAD_REQUEST,
			      "a request needs a positive integer 'id'");
		return;
	}
	req.id = (int64_t)id->valuedouble;
	if (bad) {
		/* Refused whole, before any op sees it: stored, such text would
		 * make every later reply that shows it invalid too. */
		request_error(&req, PROTO_E_BAD_REQUEST, "%s", bad);
		return;
	}
	if (!cJSON_IsString(op)) {
		request_error(&req, PROTO_E_BAD_REQUEST, "a request needs a string 'op'");
		return;
	}
	if (args && !cJSON_IsNull(args) && !cJSON_IsObject(args)) {
		request_error(&req, PROTO_E_BAD_REQUEST, "'args' must be an object");
		return;
	}
	req.args = cJSON_IsObject(args) ? args : NULL;
	const struct op_entry *e = find_op(op->valuestring);
	if (!e) {
		request_error(&req, PROTO_E_UNKNOWN_OP, "unknown op '%s'", op->valuestring);
		return;
	}
	if (!conn_hello_done(c) && !(e->flags & OP_BEFORE_HELLO)) {
		request_error(&req, PROTO_E_HANDSHAKE,
			      "send 'hello' before '%s' (the first request on a connection must "
			      "be hello)",
			      e->name);
		return;
	}
	if (req.d->stopping && (e->flags & OP_NEW_WORK)) {
		request_error(&req, PROTO_E_SHUTTING_DOWN, "runyardd is stopping; '%s' refused",
			      e->name);
		return;
	}
	e->handler(&req);
}

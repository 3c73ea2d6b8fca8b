/* The ops about the daemon itself: hello (the handshake), daemon.status
 * and daemon.stop. */
#include "optable.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


#include "context.h"
#include "gc.h"
#include "log.h"
#include "msg.h"
#include "proto.h"
#include "resources.h"
#include "request.h"
#include "scheduler.h"
#include "server.h"
#include "store.h"
#include "target.h"
#include "web.h"

static void ops_daemon_hello(struct request *req)
{
	int64_t proto = 0;
	const char *client = NULL;
	char *cause = NULL;

	if (msg_arg_int(req->args, "proto", true, 0, 1 << 30, &proto, &cause) < 0 ||
	    msg_arg_string(req->args, "client", false, &client, &cause) < 0) {
		request_arg_error(req, cause);
		return;
	}
	if (proto != PROTO_VERSION) {
		request_error(req, PROTO_E_VERSION_MISMATCH,
		              "client %s speaks protocol %lld, runyardd %s speaks protocol %d; use "
		              "a runyard CLI of the same version as the daemon",
		              client ? client : "(unnamed)", (long long)proto, RUNYARD_VERSION,
		              PROTO_VERSION);
		return;
	}
	conn_set_hello_done(req->conn);
	cJSON *res = cJSON_CreateObject();
	cJSON_AddNumberToObject(res, "proto", PROTO_VERSION);
	cJSON_AddStringToObject(res, "server", "runyardd/" RUNYARD_VERSION);
	cJSON_AddNumberToObject(res, "pid", getpid());
	request_reply(req, res);
}

static void ops_daemon_status(struct request *req)
{
	struct daemon *d = req->d;
	cJSON *counts = NULL;
	cJSON *res = cJSON_CreateObject();

	cJSON_AddNumberToObject(res, "pid", getpid());
	cJSON_AddStringToObject(res, "version", RUNYARD_VERSION);
	cJSON_AddNumberToObject(res, "proto", PROTO_VERSION);
	cJSON_AddStringToObject(res, "state_dir", d->state_dir);
	cJSON_AddStringToObject(res, "socket", d->socket_path);
	msg_add_time(res, "started_at", d->started_at);
	const struct target *local = target_find(d, TARGET_LOCAL);
	cJSON_AddNumberToObject(res, "max_runs", local->max_jobs);
	cJSON_AddNumberToObject(res, "active", local->active);
	if (store_counts_json(d->store, &counts) == 0) {
		cJSON_AddItemToObject(res, "counts", counts);
	}
	if (d->pool) {
		cJSON_AddItemToObject(res, "resources", res_pool_json(d->pool));
	}
	/* The web view's address when it listens (daemon.ui starts it). */
	char *url = web_listening(d) ? web_url(d) : NULL;
	if (url) {
		cJSON_AddStringToObject(res, "web_url", url);
	} else {
		cJSON_AddNullToObject(res, "web_url");
	}
	free(url);
	uint64_t free_bytes, fs_bytes;
	if (gc_free_space(d, &free_bytes, &fs_bytes) == 0) {
		cJSON *disk = cJSON_AddObjectToObject(res, "disk");
		cJSON_AddNumberToObject(disk, "free_bytes", (double)free_bytes);
		cJSON_AddNumberToObject(disk, "fs_bytes", (double)fs_bytes);
		cJSON_AddNumberToObject(disk, "min_free_bytes", (double)d->min_free_bytes);
		cJSON_AddNumberToObject(disk, "warn_free_bytes", (double)d->warn_free_bytes);
		cJSON_AddBoolToObject(disk, "low", free_bytes < d->warn_free_bytes);
		cJSON_AddBoolToObject(disk, "submits_refused", free_bytes < d->min_free_bytes);
	}
	request_reply(req, res);
}

/* daemon.set: the limits that change without a restart. */
static void ops_daemon_set(struct request *req)
{
	struct daemon *d = req->d;
	struct target *local = target_find(d, TARGET_LOCAL);
	int64_t max_runs = local->max_jobs;
	char *cause = NULL;

	if (msg_arg_int(req->args, "max_runs", true, 1, 100000, &max_runs, &cause) < 0) {
		request_arg_error(req, cause);
		return;
	}
	/* Runs in flight beyond a lower limit finish; only admission waits. */
	local->max_jobs = (int)max_runs;
	d->max_runs = (int)max_runs;
	log_info("max runs set to %lld", (long long)max_runs);
	scheduler_kick(d);
	cJSON *res = cJSON_CreateObject();
	cJSON_AddNumberToObject(res, "max_runs", (double)max_runs);
	cJSON_AddNumberToObject(res, "active", local->active);
	request_reply(req, res);
}

/* daemon.ui: the web view's URL, listening first when it is not (on
 * 127.0.0.1 and the port asked for, else a free one). */
static void ops_daemon_ui(struct request *req)
{
	struct daemon *d = req->d;
	int64_t port = 0;
	char *cause = NULL, *url;
	bool started = false;
	int err;

	if (msg_arg_int(req->args, "port", false, 0, 65535, &port, &cause) < 0) {
		request_arg_error(req, cause);
		return;
	}
	if (!web_listening(d)) {
		err = web_start(d, "127.0.0.1", (int)port, false, &cause);
		if (err < 0) {
			request_error(req, err == -EADDRINUSE ? PROTO_E_CONFLICT : PROTO_E_INTERNAL,
				      "cannot start the web view: %s",
				      cause ? cause : strerror(-err));
			free(cause);
			return;
		}
		started = true;
	}
	url = web_url(d);
	if (!url) {
		request_error(req, PROTO_E_INTERNAL, "out of memory");
		return;
	}
	cJSON *res = cJSON_CreateObject();
	cJSON_AddStringToObject(res, "url", url);
	char *login = msg_strdupf("%s?token=%s", url, web_token(d));
	cJSON_AddStringToObject(res, "login_url", login ? login : url);
	cJSON_AddBoolToObject(res, "started", started);
	free(login);
	free(url);
	request_reply(req, res);
}

static void ops_daemon_stop(struct request *req)
{
	log_info("stop requested by a client");
	request_reply(req, NULL);
	/* The daemon's SIGTERM handler stops it, as for any other stop; the
	 * signal is handled on a later turn of the loop, after this reply. */
	kill(getpid(), SIGTERM);
}

const struct op_entry ops_daemon_entries[] = {
	{"hello", ops_daemon_hello, OP_BEFORE_HELLO},
	{"daemon.status", ops_daemon_status, 0},
	{"daemon.set", ops_daemon_set, 0},
	{"daemon.stop", ops_daemon_stop, 0},
	{"daemon.ui", ops_daemon_ui, 0},
	{0},
};

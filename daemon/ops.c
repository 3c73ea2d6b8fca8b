#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <uv.h>

#include "blob.h"
#include "daemon.h"
#include "dispatch.h"
#include "exec.h"
#include "log.h"
#include "logs.h"
#include "msg.h"
#include "proto.h"
#include "run.h"
#include "queue.h"
#include "server.h"
#include "snapshot.h"
#include "store.h"
#include "util.h"

void ops_arg_error(struct request *req, char *cause)
{
	request_error(req, PROTO_E_INVALID_ARGUMENT, "%s", cause ? cause : "invalid argument");
	free(cause);
}

int ops_resolve_run(struct request *req, int64_t *ret_seq)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(req->args, "run");
	char buf[32];
	const char *ref;

	if (cJSON_IsNumber(v) && v->valuedouble >= 1 && v->valuedouble < 1e15 &&
	    v->valuedouble == (double)(int64_t)v->valuedouble) {
		snprintf(buf, sizeof(buf), "%lld", (long long)v->valuedouble);
		ref = buf;
	} else if (cJSON_IsString(v) && v->valuestring[0]) {
		ref = v->valuestring;
	} else {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
			      "argument 'run' must be a run id or a run number");
		return -EINVAL;
	}
	if (store_run_resolve(req->d->store, ref, ret_seq) < 0) {
		request_error(req, PROTO_E_NOT_FOUND,
			      "no run '%s' (see 'runyard runs' for the runs there are)", ref);
		return -ENOENT;
	}
	return 0;
}

void ops_hello(struct request *req)
{
	int64_t proto = 0;
	const char *client = NULL;
	char *cause = NULL;

	if (msg_arg_int(req->args, "proto", true, 0, 1 << 30, &proto, &cause) < 0 ||
	    msg_arg_string(req->args, "client", false, &client, &cause) < 0) {
		ops_arg_error(req, cause);
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

/* run.submit: validation here, the snapshot in the threadpool, the rest
 * back on the loop. */

struct submit {
	uv_work_t work;
	struct request *req;
	struct daemon *d;
	char *source;
	char *experiment;
	char *python;
	char *path_env;
	cJSON *command;
	cJSON *env;
	double timeout;
	int priority;
	bool keep;
	struct snapshot_limits limits;
	/* results of the work */
	struct snapshot_info info;
	cJSON *argv;
	int err;
	char *cause;
};

static void submit_free(struct submit *s)
{
	request_release(s->req);
	free(s->source);
	free(s->experiment);
	free(s->python);
	free(s->path_env);
	cJSON_Delete(s->command);
	cJSON_Delete(s->env);
	cJSON_Delete(s->argv);
	snapshot_info_finish(&s->info);
	free(s->cause);
	free(s);
}

static bool has_dotdot(const char *p)
{
	const char *s = p;

	while ((s = strstr(s, ".."))) {
		bool start = s == p || s[-1] == '/';
		bool end = s[2] == '\0' || s[2] == '/';
		if (start && end) {
			return true;
		}
		s += 2;
	}
	return false;
}

/* Work out what the supervisor executes; see docs/protocol.md. */
static int resolve_program(struct submit *s)
{
	const char *prog = cJSON_GetArrayItem(s->command, 0)->valuestring;
	size_t plen = strlen(prog);
	bool py = plen > 3 && strcmp(prog + plen - 3, ".py") == 0;
	char *resolved = NULL, *python = NULL;
	bool in_snapshot = false;
	const char *rel = prog;
	int err = 0;

	if (plen == 0) {
		s->cause = msg_strdupf("the program name is empty");
		return -EINVAL;
	}
	while (strncmp(rel, "./", 2) == 0) {
		rel += 2;
	}
	if (prog[0] != '/') {
		if (has_dotdot(rel)) {
			s->cause = msg_strdupf("program '%s' climbs out of the source directory; "
					       "give a path inside it",
					       prog);
			return -EINVAL;
		}
		err = snapshot_has_file(s->d->blobs, s->info.id, rel, &in_snapshot);
		if (err < 0) {
			s->cause = msg_strdupf("cannot read the snapshot: %s", strerror(-err));
			return err;
		}
	}
	if (py) {
		if (!in_snapshot) {
			s->cause = msg_strdupf("program '%s' is not a file in the source directory "
					       "%s (or it is ignored by .amlignore/.gitignore)",
					       prog, s->source);
			return -EINVAL;
		}
		if (strchr(s->python, '/')) {
			if (access(s->python, X_OK) < 0) {
				s->cause = msg_strdupf("python interpreter '%s': %s", s->python,
						       strerror(errno));
				return -EINVAL;
			}
			python = strdup(s->python);
		} else {
			python = util_which(s->python, s->path_env);
			if (!python) {
				s->cause = msg_strdupf("python interpreter '%s' was not found on "
						       "PATH; pass --python /path/to/python",
						       s->python);
				return -EINVAL;
			}
		}
		resolved = msg_strdupf("%s", rel);
	} else if (in_snapshot) {
		resolved = msg_strdupf("./%s", rel);
	} else if (prog[0] == '/') {
		if (access(prog, X_OK) < 0) {
			s->cause = msg_strdupf("program '%s': %s", prog, strerror(errno));
			return -EINVAL;
		}
		resolved = strdup(prog);
	} else if (strchr(prog, '/')) {
		s->cause = msg_strdupf("program '%s' is not a file in the source directory %s",
				       prog, s->source);
		return -EINVAL;
	} else {
		resolved = util_which(prog, s->path_env);
		if (!resolved) {
			s->cause = msg_strdupf("program '%s' was found neither in the source "
					       "directory %s nor on PATH",
					       prog, s->source);
			return -EINVAL;
		}
	}
	s->argv = cJSON_CreateArray();
	if (python) {
		cJSON_AddItemToArray(s->argv, cJSON_CreateString(python));
	}
	cJSON_AddItemToArray(s->argv, cJSON_CreateString(resolved));
	for (int i = 1; i < cJSON_GetArraySize(s->command); i++) {
		cJSON_AddItemToArray(s->argv,
				     cJSON_CreateString(cJSON_GetArrayItem(s->command, i)->valuestring));
	}
	free(python);
	free(resolved);
	return 0;
}

static void submit_work(uv_work_t *w)
{
	struct submit *s = w->data;

	s->err = snapshot_take(s->d->blobs, s->source, NULL, NULL, &s->limits, &s->info, &s->cause);
	if (s->err < 0) {
		return;
	}
	s->err = resolve_program(s);
}

static void submit_done(uv_work_t *w, int status)
{
	struct submit *s = w->data;
	struct daemon *d = s->d;
	struct request *req = s->req;
	char hex[9], *id = NULL, *cmd = NULL, *argv = NULL, *env = NULL, *skipped = NULL;
	int64_t seq;
	double now = util_now();
	struct run *r;
	int err;

	if (s->err < 0) {
		request_error_errno(req, s->err, s->cause);
		goto out;
	}
	if (d->stopping) {
		request_error(req, PROTO_E_SHUTTING_DOWN, "runyardd is stopping; submit refused");
		goto out;
	}
	util_random_hex(hex, 4);
	id = msg_strdupf("%s_%lld_%s", s->experiment, (long long)now, hex);
	cmd = cJSON_PrintUnformatted(s->command);
	argv = cJSON_PrintUnformatted(s->argv);
	env = cJSON_PrintUnformatted(s->env);
	skipped = s->info.skipped ? cJSON_PrintUnformatted(s->info.skipped) : NULL;
	if (!id || !cmd || !argv || !env) {
		request_error(req, PROTO_E_INTERNAL, "out of memory");
		goto out;
	}
	struct store_run_new n = {
		.id = id,
		.experiment = s->experiment,
		.priority = s->priority,
		.command_json = cmd,
		.argv_json = argv,
		.python = s->python,
		.source = s->source,
		.snapshot = s->info.id,
		.env_json = env,
		.timeout = s->timeout,
		.keep = s->keep,
		.created_at = now,
		.skipped_json = skipped,
	};
	err = store_run_insert(d->store, &n, &seq);
	if (err < 0) {
		request_error(req, PROTO_E_INTERNAL, "recording the run failed: %s",
			      store_errmsg(d->store));
		goto out;
	}
	r = run_create(d, seq, id, s->experiment);
	if (!r) {
		request_error(req, PROTO_E_INTERNAL, "out of memory");
		goto out;
	}
	r->status = RUN_QUEUED;
	r->priority = s->priority;
	r->created_at = now;
	r->timeout = s->timeout;
	r->keep = s->keep;
	r->snapshot = strdup(s->info.id);
	r->argv = s->argv;
	s->argv = NULL;
	r->env = s->env;
	s->env = NULL;
	log_info("run %s (#%lld) queued: snapshot %.12s, %llu files", id, (long long)seq,
		 s->info.id, (unsigned long long)s->info.files);

	cJSON *res = cJSON_CreateObject();
	cJSON_AddStringToObject(res, "id", id);
	cJSON_AddNumberToObject(res, "seq", (double)seq);
	cJSON_AddStringToObject(res, "status", "Queued");
	cJSON_AddStringToObject(res, "experiment", s->experiment);
	cJSON_AddStringToObject(res, "snapshot", s->info.id);
	cJSON_AddNumberToObject(res, "files", (double)s->info.files);
	cJSON_AddNumberToObject(res, "bytes", (double)s->info.bytes);
	cJSON_AddItemToObject(res, "skipped",
			      s->info.skipped ? cJSON_Duplicate(s->info.skipped, true)
					      : cJSON_CreateArray());
	request_reply(req, res);
	queue_enqueue(d, r);
	queue_kick(d);
out:
	free(id);
	free(cmd);
	free(argv);
	free(env);
	free(skipped);
	submit_free(s);
}

void ops_run_submit(struct request *req)
{
	struct daemon *d = req->d;
	const cJSON *command = NULL, *env = NULL, *kv;
	const char *source = NULL, *experiment = "default", *python = "python3";
	double timeout = 0;
	int64_t priority = 0, max_bytes = (int64_t)d->limits.max_bytes,
		max_files = (int64_t)d->limits.max_files;
	bool keep = false;
	char *cause = NULL;
	struct stat st;
	struct submit *s;

	if (msg_arg_string_array(req->args, "command", true, &command, &cause) < 0 ||
	    msg_arg_string(req->args, "source", true, &source, &cause) < 0 ||
	    msg_arg_string(req->args, "experiment", false, &experiment, &cause) < 0 ||
	    msg_arg_string(req->args, "python", false, &python, &cause) < 0 ||
	    msg_arg_number(req->args, "timeout", false, 0.001, 1e9, &timeout, &cause) < 0 ||
	    msg_arg_int(req->args, "priority", false, -1000, 1000, &priority, &cause) < 0 ||
	    msg_arg_string_map(req->args, "env", false, &env, &cause) < 0 ||
	    msg_arg_bool(req->args, "keep", false, &keep, &cause) < 0 ||
	    msg_arg_int(req->args, "max_snapshot_bytes", false, 1, INT64_MAX / 2, &max_bytes,
			&cause) < 0 ||
	    msg_arg_int(req->args, "max_snapshot_files", false, 1, 100000000, &max_files,
			&cause) < 0) {
		ops_arg_error(req, cause);
		return;
	}
	if (!util_valid_name(experiment)) {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
			      "experiment name '%s' is not valid: use letters, digits, '.', '_' "
			      "and '-', starting with a letter or digit, at most 255 characters",
			      experiment);
		return;
	}
	if (!*python) {
		request_error(req, PROTO_E_INVALID_ARGUMENT, "argument 'python' is empty");
		return;
	}
	cJSON_ArrayForEach(kv, env) {
		if (!kv->string[0] || strchr(kv->string, '=')) {
			request_error(req, PROTO_E_INVALID_ARGUMENT,
				      "environment variable name '%s' is not valid", kv->string);
			return;
		}
	}
	if (source[0] != '/') {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
			      "source directory '%s' must be an absolute path", source);
		return;
	}
	if (stat(source, &st) < 0) {
		request_error(req, errno == EACCES ? PROTO_E_PERMISSION : PROTO_E_INVALID_ARGUMENT,
			      "source directory %s: %s", source, strerror(errno));
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		request_error(req, PROTO_E_INVALID_ARGUMENT, "source %s is not a directory",
			      source);
		return;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		request_error(req, PROTO_E_INTERNAL, "out of memory");
		return;
	}
	s->d = d;
	s->req = request_hold(req);
	s->source = strdup(source);
	s->experiment = strdup(experiment);
	s->python = strdup(python);
	const cJSON *path = env ? cJSON_GetObjectItemCaseSensitive(env, "PATH") : NULL;
	s->path_env = strdup(path ? path->valuestring : (getenv("PATH") ? getenv("PATH") : ""));
	s->command = cJSON_Duplicate(command, true);
	s->env = env ? cJSON_Duplicate(env, true) : cJSON_CreateObject();
	s->timeout = timeout;
	s->priority = (int)priority;
	s->keep = keep;
	s->limits.max_bytes = (uint64_t)max_bytes;
	s->limits.max_files = (uint64_t)max_files;
	s->work.data = s;
	if (!s->req || !s->source || !s->experiment || !s->python || !s->path_env ||
	    !s->command || !s->env) {
		request_error(req, PROTO_E_INTERNAL, "out of memory");
		submit_free(s);
		return;
	}
	int err = uv_queue_work(d->loop, &s->work, submit_work, submit_done);
	if (err < 0) {
		request_error(req, PROTO_E_INTERNAL, "cannot queue the snapshot: %s",
			      uv_strerror(err));
		submit_free(s);
	}
}

void ops_run_list(struct request *req)
{
	const char *experiment = NULL, *status = NULL;
	int64_t limit = 100;
	enum run_status st;
	char *cause = NULL;
	cJSON *runs;
	int err;

	if (msg_arg_string(req->args, "experiment", false, &experiment, &cause) < 0 ||
	    msg_arg_string(req->args, "status", false, &status, &cause) < 0 ||
	    msg_arg_int(req->args, "limit", false, 1, 100000, &limit, &cause) < 0) {
		ops_arg_error(req, cause);
		return;
	}
	if (status && run_status_parse(status, &st) < 0) {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
			      "unknown status '%s' (one of Queued, Preparing, Scaling, Running, "
			      "CancelRequested, Finalizing, Completed, Failed, Canceled)",
			      status);
		return;
	}
	err = store_run_list_json(req->d->store, experiment, status, (int)limit, &runs);
	if (err < 0) {
		request_error(req, PROTO_E_INTERNAL, "listing runs failed: %s",
			      store_errmsg(req->d->store));
		return;
	}
	cJSON *res = cJSON_CreateObject();
	cJSON_AddItemToObject(res, "runs", runs);
	request_reply(req, res);
}

void ops_run_show(struct request *req)
{
	int64_t seq;
	cJSON *run;

	if (ops_resolve_run(req, &seq) < 0) {
		return;
	}
	if (store_run_json(req->d->store, seq, true, &run) < 0) {
		request_error(req, PROTO_E_INTERNAL, "reading run #%lld failed: %s",
			      (long long)seq, store_errmsg(req->d->store));
		return;
	}
	request_reply(req, run);
}

void ops_run_logs(struct request *req)
{
	int64_t seq, after = 0, limit = 10000, next;
	const char *stream_name = NULL;
	char stream, *cause = NULL;
	cJSON *lines, *run = NULL;
	bool more;

	if (ops_resolve_run(req, &seq) < 0) {
		return;
	}
	if (msg_arg_int(req->args, "after_seq", false, 0, INT64_MAX / 2, &after, &cause) < 0 ||
	    msg_arg_int(req->args, "limit", false, 1, 100000, &limit, &cause) < 0 ||
	    msg_arg_string(req->args, "stream", false, &stream_name, &cause) < 0) {
		ops_arg_error(req, cause);
		return;
	}
	if (logs_stream_parse(stream_name, &stream) < 0) {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
			      "argument 'stream' must be \"stdout\" or \"stderr\"");
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

void ops_run_watch(struct request *req)
{
	int64_t seq, after = 0, sub;
	bool logs = true;
	const char *stream_name = NULL;
	char stream, *cause = NULL;
	cJSON *run;

	if (ops_resolve_run(req, &seq) < 0) {
		return;
	}
	if (msg_arg_bool(req->args, "logs", false, &logs, &cause) < 0 ||
	    msg_arg_int(req->args, "after_seq", false, 0, INT64_MAX / 2, &after, &cause) < 0 ||
	    msg_arg_string(req->args, "stream", false, &stream_name, &cause) < 0) {
		ops_arg_error(req, cause);
		return;
	}
	if (logs_stream_parse(stream_name, &stream) < 0) {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
			      "argument 'stream' must be \"stdout\" or \"stderr\"");
		return;
	}
	if (store_run_json(req->d->store, seq, true, &run) < 0) {
		request_error(req, PROTO_E_INTERNAL, "reading run #%lld failed", (long long)seq);
		return;
	}
	if (logs_watch_add(req->d, req->conn, seq, cJSON_GetObjectItem(run, "id")->valuestring,
			   logs, stream, after, &sub) < 0) {
		cJSON_Delete(run);
		request_error(req, PROTO_E_INTERNAL, "out of memory");
		return;
	}
	cJSON *res = cJSON_CreateObject();
	cJSON_AddNumberToObject(res, "sub", (double)sub);
	cJSON_AddItemToObject(res, "run", run);
	request_reply(req, res);
	logs_watch_start(req->d, sub);
}

void ops_run_unwatch(struct request *req)
{
	int64_t sub;
	char *cause = NULL;

	if (msg_arg_int(req->args, "sub", true, 1, INT64_MAX / 2, &sub, &cause) < 0) {
		ops_arg_error(req, cause);
		return;
	}
	if (logs_watch_remove(req->d, req->conn, sub) < 0) {
		request_error(req, PROTO_E_NOT_FOUND, "no watch %lld on this connection",
			      (long long)sub);
		return;
	}
	request_reply(req, NULL);
}

void ops_run_cancel(struct request *req)
{
	int64_t seq;
	struct run *r;
	cJSON *run;

	if (ops_resolve_run(req, &seq) < 0) {
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
	int err = exec_cancel(r);
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

void ops_run_outputs(struct request *req)
{
	int64_t seq;
	cJSON *arts;

	if (ops_resolve_run(req, &seq) < 0) {
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

void ops_artifact_read(struct request *req)
{
	int64_t seq, offset = 0, length = ARTIFACT_CHUNK, size;
	const char *path = NULL;
	char *cause = NULL, hex[65], bpath[4096];
	unsigned char *raw = NULL;
	char *b64 = NULL;
	int fd = -1;

	if (ops_resolve_run(req, &seq) < 0) {
		return;
	}
	if (msg_arg_string(req->args, "path", true, &path, &cause) < 0 ||
	    msg_arg_int(req->args, "offset", false, 0, INT64_MAX / 2, &offset, &cause) < 0 ||
	    msg_arg_int(req->args, "length", false, 1, ARTIFACT_CHUNK, &length, &cause) < 0) {
		ops_arg_error(req, cause);
		return;
	}
	if (store_artifact_get(req->d->store, seq, path, hex, &size) < 0) {
		request_error(req, PROTO_E_NOT_FOUND,
			      "run #%lld has no output '%s' (see 'runyard outputs %lld')",
			      (long long)seq, path, (long long)seq);
		return;
	}
	if (blob_path(req->d->blobs, hex, bpath, sizeof(bpath)) < 0 ||
	    (fd = open(bpath, O_RDONLY | O_CLOEXEC)) < 0) {
		request_error(req, PROTO_E_INTERNAL, "the stored content of '%s' is missing", path);
		goto out;
	}
	if (offset > size) {
		offset = size;
	}
	if (length > size - offset) {
		length = size - offset;
	}
	raw = malloc((size_t)length + 1);
	b64 = malloc(4 * (((size_t)length + 2) / 3) + 1);
	if (!raw || !b64) {
		request_error(req, PROTO_E_INTERNAL, "out of memory");
		goto out;
	}
	ssize_t got = 0;
	while (got < length) {
		ssize_t n = pread(fd, raw + got, (size_t)(length - got), (off_t)(offset + got));
		if (n <= 0) {
			break;
		}
		got += n;
	}
	EVP_EncodeBlock((unsigned char *)b64, raw, (int)got);
	cJSON *res = cJSON_CreateObject();
	cJSON_AddStringToObject(res, "data", b64);
	cJSON_AddNumberToObject(res, "size", (double)size);
	cJSON_AddBoolToObject(res, "eof", offset + got >= size);
	request_reply(req, res);
out:
	if (fd >= 0) {
		close(fd);
	}
	free(raw);
	free(b64);
}

void ops_experiment_list(struct request *req)
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

void ops_daemon_status(struct request *req)
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
	cJSON_AddNumberToObject(res, "max_runs", d->max_runs);
	cJSON_AddNumberToObject(res, "active", d->active);
	if (store_counts_json(d->store, &counts) == 0) {
		cJSON_AddItemToObject(res, "counts", counts);
	}
	request_reply(req, res);
}

void ops_daemon_stop(struct request *req)
{
	log_info("stop requested by a client");
	request_reply(req, NULL);
	daemon_stop(req->d);
}

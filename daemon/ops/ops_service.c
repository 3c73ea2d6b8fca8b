/* The service ops: model.deploy (the model's files, environment and source
 * made ready first), service.list, service.show, service.wait,
 * service.restart, service.delete and service.logs. */
#include "optable.h"

#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "context.h"
#include "envs.h"
#include "ignore.h"
#include "log.h"
#include "models.h"
#include "resources.h"
#include "msg.h"
#include "proto.h"
#include "request.h"
#include "services.h"
#include "snapshot.h"
#include "store.h"
#include "util.h"

/* Refuse when the services are stopping; replies the error itself. */
static bool services_up(struct request *req)
{
	if (!services_open(req->d)) {
		request_error(req, PROTO_E_SHUTTING_DOWN, "runyardd is stopping");
		return false;
	}
	return true;
}

/* args.service: an existing service; replies the error itself. */
static struct service *resolve_service(struct request *req)
{
	const char *name = NULL;
	char *cause = NULL;
	struct service *svc;

	if (!services_up(req)) {
		return NULL;
	}
	if (msg_arg_string(req->args, "service", true, &name, &cause) < 0) {
		request_arg_error(req, cause);
		return NULL;
	}
	svc = services_find(req->d, name);
	if (!svc) {
		request_error(req, PROTO_E_NOT_FOUND,
		              "no service '%s' (see 'runyard service list')", name);
	}
	return svc;
}

/* A held request's answer, when what it waited for happened. */
static void reply_held(void *ud, cJSON *service, const char *code, const char *msg)
{
	struct request *req = ud;

	if (service) {
		request_reply(req, service);
	} else {
		request_error(req, code, "%s", msg);
	}
	request_release(req);
}

/* model.deploy */

/* service.logs' largest read. */
#define LOG_READ_MAX (4 * 1024 * 1024)

struct deploy {
	uv_work_t work;
	struct request *req;
	struct daemon *d;
	uint64_t hold; /* the blob store's, until the service is recorded */
	char *service;
	int port; /* 0: any free port */
	bool port_given;
	bool wait;
	struct services_config cfg;
	struct snapshot_info info;
	int err;
	char *cause;
	char *env_hash; /* the environment's build it waits for; NULL: none */
};

static void deploy_free(struct deploy *dp)
{
	blob_release(dp->d ? dp->d->blobs : NULL, dp->hold);
	request_release(dp->req);
	free(dp->service);
	free(dp->env_hash);
	services_config_finish(&dp->cfg);
	snapshot_info_finish(&dp->info);
	free(dp->cause);
	free(dp);
}

/* In the thread pool: snapshot the entry script's source directory, with
 * its ignore rules, as run.submit does. */
static void deploy_work(uv_work_t *w)
{
	struct deploy *dp = w->data;
	struct snapshot_opts opts = {
		.limits = {dp->d->snapshot_max_bytes, dp->d->snapshot_max_files}};
	struct ignore *ig = NULL;
	bool has = false;
	int fd;

	fd = open(dp->cfg.source, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		dp->err = -errno;
		dp->cause = msg_strdupf("cannot open the source directory %s: %s", dp->cfg.source,
		                        strerror(errno));
		return;
	}
	dp->err = ignore_create(ignore_choose(fd), &ig);
	close(fd);
	if (dp->err < 0) {
		return;
	}
	opts.matcher = &ignore_walk_ops;
	opts.matcher_ud = ig;
	opts.ignore_file = ignore_filename(ig);
	dp->err = snapshot_take_with(dp->d->blobs, dp->cfg.source, &opts, &dp->info, &dp->cause);
	ignore_destroy(ig);
	if (dp->err < 0) {
		return;
	}
	dp->err = snapshot_has_file(dp->d->blobs, dp->info.id, dp->cfg.entry_script, &has);
	if (dp->err == 0 && !has) {
		dp->err = -EINVAL;
		dp->cause = msg_strdupf("the entry script '%s' is not a file in %s (or it is "
		                        "ignored by .amlignore/.gitignore)",
		                        dp->cfg.entry_script, dp->cfg.source);
	}
}

static void deploy_continue(struct deploy *dp)
{
	struct services_deploy_args a = {
	    .service = dp->service, .port = dp->port, .port_given = dp->port_given};
	const char *code = NULL;
	char *cause = NULL;
	cJSON *now = NULL;

	if (dp->wait) {
		a.cb = reply_held;
		a.ud = request_hold(dp->req);
		if (!a.ud) {
			request_error(dp->req, PROTO_E_INTERNAL, "out of memory");
			return;
		}
	}
	if (services_deploy(dp->d, &a, &dp->cfg, &now, &code, &cause) < 0) {
		request_release(a.ud);
		request_error(dp->req, code, "%s", cause ? cause : "out of memory");
		free(cause);
		return;
	}
	if (!dp->wait) {
		request_reply(dp->req, now);
	}
}

static void deploy_built_cb(void *ud, int err, const char *cause)
{
	struct deploy *dp = ud;

	if (err == -ECANCELED) {
		request_error(dp->req, PROTO_E_SHUTTING_DOWN,
		              "runyardd is stopping; deploy refused (environment %s was being "
		              "built)",
		              dp->cfg.environment);
	} else if (err < 0) {
		request_error(dp->req, PROTO_E_DEPLOYMENT_FAILED, "environment %s: %s",
		              dp->cfg.environment, cause ? cause : "its build failed");
	} else {
		deploy_continue(dp);
	}
	deploy_free(dp);
}

/* The deployment's environment is built (once, shared with runs that need
 * it: envs.c) before anything of the service changes, so a build that
 * fails deploys nothing. Takes dp. */
static void deploy_prepared(struct deploy *dp)
{
	char *cause = NULL;
	int err = 0;

	if (dp->env_hash) {
		err = envs_build(dp->d, dp->env_hash, deploy_built_cb, dp, &cause);
		if (err == 1) {
			return; /* deploy_built_cb goes on */
		}
	}
	if (err < 0) {
		request_error(dp->req, PROTO_E_DEPLOYMENT_FAILED,
		              "environment %s cannot be built: %s", dp->cfg.environment,
		              cause ? cause : strerror(-err));
	} else {
		deploy_continue(dp);
	}
	free(cause);
	deploy_free(dp);
}

static void deploy_done(uv_work_t *w, int status)
{
	struct deploy *dp = w->data;

	if (dp->err < 0) {
		char *clean = dp->cause ? utf8_sanitize(dp->cause, strlen(dp->cause), NULL) : NULL;
		request_error_errno(dp->req, dp->err, clean ? clean : dp->cause);
		free(clean);
		deploy_free(dp);
		return;
	}
	dp->cfg.snapshot = strdup(dp->info.id);
	deploy_prepared(dp);
}

/* A relative path inside the source, without "..", "./" dropped. */
static bool clean_rel(const char *p)
{
	const char *s = p;

	if (!*p || *p == '/') {
		return false;
	}
	while ((s = strstr(s, ".."))) {
		if ((s == p || s[-1] == '/') && (s[2] == '\0' || s[2] == '/')) {
			return false;
		}
		s += 2;
	}
	return true;
}

/* Whether an instance held to cpu and memory_gb can ever run here; else
 * the error, with the machine's totals. Services are not admitted like
 * runs (they would hold their share for good): they are only held to it. */
static bool deploy_fits(struct request *req, double cpu, double memory_gb)
{
	/* A request counts at least one CPU, as a run's does. */
	struct res_request q = {.cpus = cpu > 1 ? (int64_t)ceil(cpu) : 1,
	                        .mem = (int64_t)(memory_gb * 1024 * 1024 * 1024)};
	char *cause = NULL;

	if (!req->d->pool || res_check(req->d->pool, &q, &cause) == 0) {
		return true;
	}
	request_error(req, PROTO_E_INVALID_ARGUMENT, "the deployment %s",
	              cause ? cause : "does not fit this machine");
	free(cause);
	return false;
}

static void ops_model_deploy(struct request *req)
{
	struct daemon *d = req->d;
	const char *ref = NULL, *service = NULL, *python = NULL, *script = NULL, *source = NULL;
	const char *environment = NULL;
	int64_t port = 0;
	double timeout = SERVICES_START_TIMEOUT_DEFAULT, cpu = 0, memory_gb = 0;
	bool wait = true;
	char *cause = NULL;
	struct models_model model = {0};
	struct envs_resolved envr = {0};
	struct deploy *dp = NULL;
	int err;

	if (!services_up(req)) {
		return;
	}
	if (msg_arg_string(req->args, "model", true, &ref, &cause) < 0 ||
	    msg_arg_string(req->args, "service", true, &service, &cause) < 0 ||
	    msg_arg_int(req->args, "port", false, 0, 65535, &port, &cause) < 0 ||
	    msg_arg_string(req->args, "python", false, &python, &cause) < 0 ||
	    msg_arg_string(req->args, "entry_script", false, &script, &cause) < 0 ||
	    msg_arg_string(req->args, "source", false, &source, &cause) < 0 ||
	    msg_arg_string(req->args, "environment", false, &environment, &cause) < 0 ||
	    msg_arg_number(req->args, "timeout", false, 1, 86400, &timeout, &cause) < 0 ||
	    msg_arg_number(req->args, "cpu", false, 1e-3, 1 << 16, &cpu, &cause) < 0 ||
	    msg_arg_number(req->args, "memory_gb", false, 1e-3, 1 << 20, &memory_gb, &cause) < 0 ||
	    msg_arg_bool(req->args, "wait", false, &wait, &cause) < 0) {
		request_arg_error(req, cause);
		return;
	}
	if (!util_valid_name(service)) {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
		              "'%s' is not a service name: names are 1 to 255 letters, digits, "
		              "'.', '_' and '-', starting with a letter or digit",
		              service);
		return;
	}
	if (environment && python) {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
		              "give --environment or --python, not both: the environment "
		              "chooses the interpreter");
		return;
	}
	err = models_get(d, ref, &model, &cause);
	if (err < 0) {
		request_error_errno(req, err, cause);
		free(cause);
		return;
	}
	if (environment) {
		err = envs_resolve(d, environment, NULL, &envr, &cause);
		if (err < 0) {
			request_error(req,
			              err == -ENOENT   ? PROTO_E_NOT_FOUND
			              : err == -ENOMEM ? PROTO_E_INTERNAL
			                               : PROTO_E_INVALID_ARGUMENT,
			              "%s", cause ? cause : "cannot resolve the environment");
			free(cause);
			goto out;
		}
	}
	if (script) {
		if (!source || source[0] != '/') {
			request_error(req, PROTO_E_INVALID_ARGUMENT,
			              "an entry script needs 'source', the absolute path of the "
			              "directory that holds it");
			goto out;
		}
		while (strncmp(script, "./", 2) == 0) {
			script += 2;
		}
		if (!clean_rel(script)) {
			request_error(req, PROTO_E_INVALID_ARGUMENT,
			              "the entry script '%s' must be a path inside the source "
			              "directory",
			              script);
			goto out;
		}
	} else if (source) {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
		              "'source' goes with an entry script ('entry_script')");
		goto out;
	} else if (!model.framework || strcmp(model.framework, "ScikitLearn") != 0) {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
		              "model %s:%lld has %s%s; a no-code deployment serves ScikitLearn "
		              "models only: register it with the scikit-learn framework, or give "
		              "an entry script (--entry-script score.py --source DIR)",
		              model.name, (long long)model.version,
		              model.framework ? "framework " : "no framework",
		              model.framework ? model.framework : "");
		goto out;
	}
	/* The deployment's own resources, else its model's ResourceConfiguration. */
	cpu = cpu > 0 ? cpu : model.cpu;
	memory_gb = memory_gb > 0 ? memory_gb : model.memory_gb;
	if (!deploy_fits(req, cpu, memory_gb)) {
		goto out;
	}
	dp = calloc(1, sizeof(*dp));
	if (!dp) {
		request_error(req, PROTO_E_INTERNAL, "out of memory");
		goto out;
	}
	dp->d = d;
	dp->hold = blob_hold(d->blobs);
	dp->cfg.cpu = cpu;
	dp->cfg.memory_gb = memory_gb;
	dp->work.data = dp;
	dp->service = strdup(service);
	dp->port = (int)port;
	dp->port_given = port > 0;
	dp->wait = wait;
	dp->cfg.model_id = model.id;
	dp->cfg.model_ref = msg_strdupf("%s:%lld", model.name, (long long)model.version);
	dp->cfg.timeout = timeout;
	dp->cfg.entry_script = script ? strdup(script) : NULL;
	dp->cfg.source = source ? strdup(source) : NULL;
	if (environment) {
		/* a venv or conda environment's python is made by its build */
		dp->cfg.environment = msg_strdupf("%s:%lld", envr.name, (long long)envr.version);
		dp->cfg.vars = cJSON_Duplicate(envr.vars, true);
		dp->env_hash = envr.built ? strdup(envr.hash) : NULL;
		dp->cfg.python = strdup(envr.python);
		if (!dp->cfg.environment || !dp->cfg.vars || (envr.built && !dp->env_hash)) {
			request_error(req, PROTO_E_INTERNAL, "out of memory");
			goto out;
		}
	} else if (!python) {
		python = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
	}
	if (environment) {
		/* resolved above */
	} else if (strchr(python, '/')) {
		if (access(python, X_OK) < 0) {
			request_error(req, PROTO_E_INVALID_ARGUMENT, "python interpreter '%s': %s",
			              python, strerror(errno));
			goto out;
		}
		dp->cfg.python = strdup(python);
	} else {
		dp->cfg.python = util_which(python, getenv("PATH"));
		if (!dp->cfg.python) {
			request_error(
			    req, PROTO_E_INVALID_ARGUMENT,
			    "python interpreter '%s' was not found on runyardd's PATH; give "
			    "its absolute path",
			    python);
			goto out;
		}
	}
	dp->req = request_hold(req);
	if (!dp->service || !dp->cfg.model_ref || !dp->cfg.python || !dp->req ||
	    (script && (!dp->cfg.entry_script || !dp->cfg.source))) {
		request_error(req, PROTO_E_INTERNAL, "out of memory");
		goto out;
	}
	if (script) {
		err = uv_queue_work(d->loop, &dp->work, deploy_work, deploy_done);
		if (err < 0) {
			request_error(req, PROTO_E_INTERNAL, "cannot queue the deployment: %s",
			              uv_strerror(err));
			goto out;
		}
		dp = NULL;
		goto out;
	}
	deploy_prepared(dp);
	dp = NULL;
out:
	if (dp) {
		deploy_free(dp);
	}
	envs_resolved_finish(&envr);
	models_model_finish(&model);
}

static void ops_service_list(struct request *req)
{
	cJSON *list, *res;

	if (!services_up(req)) {
		return;
	}
	list = services_list_json(req->d);
	if (!list) {
		request_error(req, PROTO_E_INTERNAL, "out of memory");
		return;
	}
	res = cJSON_CreateObject();
	cJSON_AddItemToObject(res, "services", list);
	request_reply(req, res);
}

static void ops_service_show(struct request *req)
{
	struct service *svc = resolve_service(req);

	if (svc) {
		request_reply(req, services_json(svc));
	}
}

static void ops_service_wait(struct request *req)
{
	struct service *svc = resolve_service(req);

	if (!svc) {
		return;
	}
	if (!services_busy(svc)) {
		request_reply(req, services_json(svc));
		return;
	}
	struct request *held = request_hold(req);
	if (!held || services_add_waiter(svc, SERVICES_WAIT_SETTLED, reply_held, held) < 0) {
		request_release(held);
		request_error(req, PROTO_E_INTERNAL, "out of memory");
	}
}

static void ops_service_restart(struct request *req)
{
	struct service *svc = resolve_service(req);
	struct request *held = NULL;
	bool wait = true;
	char *cause = NULL;

	if (!svc) {
		return;
	}
	if (msg_arg_bool(req->args, "wait", false, &wait, &cause) < 0) {
		request_arg_error(req, cause);
		return;
	}
	if (services_busy(svc)) {
		request_error(req, PROTO_E_CONFLICT,
		              "service '%s' is already starting model %s; wait for it",
		              services_name(svc), services_attempt_model_ref(svc));
		return;
	}
	if (services_restart_prepare(svc) < 0) {
		request_error(req, PROTO_E_INTERNAL, "out of memory");
		return;
	}
	if (wait && (!(held = request_hold(req)) ||
	             services_add_waiter(svc, SERVICES_WAIT_ATTEMPT, reply_held, held) < 0)) {
		request_release(held);
		request_error(req, PROTO_E_INTERNAL, "out of memory");
		return;
	}
	services_begin_attempt(svc);
	if (!wait) {
		request_reply(req, services_json(svc));
	}
}

static void ops_service_delete(struct request *req)
{
	struct service *svc = resolve_service(req);
	char *name;
	cJSON *res;

	if (!svc) {
		return;
	}
	name = strdup(services_name(svc));
	if (!name) {
		request_error(req, PROTO_E_INTERNAL, "out of memory");
		return;
	}
	if (services_delete(svc) < 0) {
		request_error(req, PROTO_E_INTERNAL, "deleting service '%s' failed: %s", name,
		              store_errmsg(req->d->store));
		free(name);
		return;
	}
	res = cJSON_CreateObject();
	cJSON_AddStringToObject(res, "name", name);
	cJSON_AddBoolToObject(res, "deleted", true);
	free(name);
	request_reply(req, res);
}

static void ops_service_logs(struct request *req)
{
	struct service *svc = resolve_service(req);
	int64_t after = -1, limit = 1024 * 1024, lines = 0;
	char *cause = NULL, *buf = NULL, *clean = NULL;
	struct stat st;
	bool reset = false;
	int fd = -1;
	off_t from;
	ssize_t got = 0;

	if (!svc) {
		return;
	}
	if (msg_arg_int(req->args, "after", false, 0, INT64_MAX / 2, &after, &cause) < 0 ||
	    msg_arg_int(req->args, "limit", false, 1, LOG_READ_MAX, &limit, &cause) < 0 ||
	    msg_arg_int(req->args, "lines", false, 0, 1000000, &lines, &cause) < 0) {
		request_arg_error(req, cause);
		return;
	}
	fd = open(services_log_path(svc), O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		st.st_size = 0;
	}
	if (after > st.st_size) {
		/* The log was cut since: start again from its beginning. */
		after = 0;
		reset = true;
	}
	from = after >= 0 ? (off_t)after : (st.st_size > limit ? st.st_size - limit : 0);
	buf = malloc((size_t)limit + 1);
	if (!buf) {
		request_error(req, PROTO_E_INTERNAL, "out of memory");
		goto out;
	}
	if (fd >= 0) {
		while (got < limit) {
			ssize_t n = pread(fd, buf + got, (size_t)(limit - got), from + got);
			if (n <= 0) {
				break;
			}
			got += n;
		}
	}
	buf[got] = '\0';
	const char *text = buf;
	size_t len = (size_t)got;
	if (after >= 0) {
		/* Whole lines only, unless one line fills the whole read. */
		char *nl = memrchr(buf, '\n', len);
		if (nl) {
			len = (size_t)(nl - buf) + 1;
		} else if (len < (size_t)limit) {
			len = 0;
		}
	} else if (from > 0) {
		/* The tail starts mid-line: drop that piece. */
		char *nl = memchr(buf, '\n', len);
		if (nl) {
			from += nl + 1 - buf;
			len -= (size_t)(nl + 1 - buf);
			text = nl + 1;
		}
	}
	int64_t next = (int64_t)from + (int64_t)len;
	if (after < 0 && lines > 0) {
		/* Only the last lines. */
		size_t k = len;
		int64_t seen = 0;
		while (k > 0) {
			if (text[k - 1] == '\n' && k != len && ++seen == lines) {
				break;
			}
			k--;
		}
		text += k;
		len -= k;
	}
	clean = utf8_sanitize(text, len, NULL);
	cJSON *res = cJSON_CreateObject();
	cJSON_AddStringToObject(res, "text", clean ? clean : "");
	cJSON_AddNumberToObject(res, "next", (double)next);
	cJSON_AddNumberToObject(res, "size", (double)st.st_size);
	cJSON_AddBoolToObject(res, "reset", reset);
	request_reply(req, res);
out:
	if (fd >= 0) {
		close(fd);
	}
	free(buf);
	free(clean);
}

const struct op_entry ops_service_entries[] = {
	{"model.deploy", ops_model_deploy, OP_NEW_WORK},
	{"service.list", ops_service_list, 0},
	{"service.show", ops_service_show, 0},
	{"service.logs", ops_service_logs, 0},
	{"service.wait", ops_service_wait, 0},
	{"service.restart", ops_service_restart, OP_NEW_WORK},
	{"service.delete", ops_service_delete, 0},
	{0},
};

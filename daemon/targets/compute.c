#include "compute.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "request.h"
#include "exec.h"
#include "log.h"
#include "msg.h"
#include "ops.h"
#include "proto.h"
#include "rest.h"
#include "run.h"
#include "slurm.h"
#include "store.h"
#include "target.h"
#include "util.h"

#define DEFAULT_MAX_JOBS 100
#define MAX_MAX_JOBS 100000

/* A compute.create waiting for its server's answer. */
struct compute_create {
	struct compute_create *next;
	struct daemon *d;
	struct request *req;
	char *name;
	cJSON *config;
	struct slurm_probe *probe;
};

static void target_free(struct target *t)
{
	if (t) {
		free(t->name);
		cJSON_Delete(t->config);
		free(t);
	}
}

static struct target *target_new(struct daemon *d, const char *name,
				 const struct target_ops *ops)
{
	struct target *t = calloc(1, sizeof(*t));

	if (!t || !(t->name = strdup(name))) {
		free(t);
		return NULL;
	}
	t->d = d;
	t->ops = ops;
	return t;
}

/* Append after the local target, keeping the list in creation order. */
static void target_add(struct daemon *d, struct target *t)
{
	struct target **pp = &d->targets;

	while (*pp) {
		pp = &(*pp)->next;
	}
	*pp = t;
}

/* A stand-in for a target that a stored run names but the daemon does not
 * have (removed from the store by hand, or its definition is broken): its
 * runs fail with a clear error instead of running somewhere else. */
static int missing_start(struct run *r, char **argv, char **env, char **cause)
{
	*cause = msg_strdupf("the run's compute target '%s' is not available (see 'runyard "
			     "compute list' and runyardd's log)",
			     r->target_data ? (char *)r->target_data : "?");
	return -ENOENT;
}

static void missing_cancel(struct run *r)
{
}

static bool missing_alive(struct run *r)
{
	return false;
}

static void missing_lost(struct run *r, struct target_verdict *v)
{
	v->outcome = r->status == RUN_CANCEL_REQUESTED ? RUN_CANCELED : RUN_FAILED;
	v->code = "ExecutionFailed";
	v->message = msg_strdupf("the run's compute target '%s' is not available, so what "
				 "became of its job is unknown",
				 r->target_data ? (char *)r->target_data : "?");
}

static bool missing_adopt(struct run *r)
{
	return false;
}

static void missing_detach(struct run *r)
{
	free(r->target_data);
	r->target_data = NULL;
}

static const struct target_ops missing_ops = {
	.type = "unavailable",
	.start = missing_start,
	.cancel = missing_cancel,
	.alive = missing_alive,
	.lost = missing_lost,
	.adopt = missing_adopt,
	.detach = missing_detach,
};

static struct target *missing_target(struct daemon *d)
{
	static const char name[] = "(unavailable)";
	struct target *t = target_find(d, name);

	if (!t && (t = target_new(d, name, &missing_ops))) {
		t->max_jobs = MAX_MAX_JOBS;
		target_add(d, t);
	}
	return t;
}

static int open_target(struct daemon *d, struct target *t, char **cause)
{
	const cJSON *mj = cJSON_GetObjectItemCaseSensitive(t->config, "max_jobs");

	t->max_jobs = cJSON_IsNumber(mj) && mj->valueint > 0 ? mj->valueint : DEFAULT_MAX_JOBS;
	return slurm_target_init(t, cause);
}

static int load_cb(void *ud, const char *name, const char *type, const char *config_json,
		   double created_at)
{
	struct daemon *d = ud;
	struct target *t;
	char *cause = NULL;

	if (strcmp(type, "slurm") != 0) {
		log_error("compute target %s has type '%s', which this runyardd does not know; "
			  "its runs will fail",
			  name, type);
		return 0;
	}
	t = target_new(d, name, &slurm_ops);
	if (!t) {
		return -ENOMEM;
	}
	t->created_at = created_at;
	t->config = cJSON_Parse(config_json);
	if (!cJSON_IsObject(t->config) || open_target(d, t, &cause) < 0) {
		log_error("compute target %s cannot be set up: %s; its runs will fail", name,
			  cause ? cause : "its stored definition is not valid");
		free(cause);
		target_free(t);
		return 0;
	}
	target_add(d, t);
	return 0;
}

int compute_init(struct daemon *d, char **cause)
{
	struct target *local = target_new(d, TARGET_LOCAL, &exec_local_ops);
	int err;

	if (!local) {
		return -ENOMEM;
	}
	d->targets = local;
	err = store_targets(d->store, load_cb, d);
	if (err < 0) {
		*cause = msg_strdupf("loading the compute targets failed: %s",
				     store_errmsg(d->store));
		return err;
	}
	return 0;
}

void compute_shutdown(struct daemon *d)
{
	while (d->creates) {
		struct compute_create *c = d->creates;
		d->creates = c->next;
		slurm_probe_cancel(c->probe);
		request_error(c->req, PROTO_E_SHUTTING_DOWN,
			      "runyardd is stopping; compute target '%s' was not created", c->name);
		request_release(c->req);
		free(c->name);
		cJSON_Delete(c->config);
		free(c);
	}
	for (struct target *t = d->targets; t; t = t->next) {
		if (t->ops == &slurm_ops) {
			slurm_target_close(t);
		}
	}
}

void compute_finish(struct daemon *d)
{
	while (d->targets) {
		struct target *t = d->targets;
		d->targets = t->next;
		target_free(t);
	}
}

/* Submitting */

int compute_submit_args(struct daemon *d, const cJSON *args, const char **ret_target,
			struct slurm_resources *ret_res, char **cause)
{
	const char *name = NULL;
	int64_t nodes = 0, cpus = 0;
	double mem = 0, limit = 0;
	struct target *t;

	memset(ret_res, 0, sizeof(*ret_res));
	*ret_target = NULL;
	if (msg_arg_string(args, "target", false, &name, cause) < 0 ||
	    msg_arg_int(args, "nodes", false, 1, 100000, &nodes, cause) < 0 ||
	    msg_arg_int(args, "cpus", false, 1, 100000, &cpus, cause) < 0 ||
	    msg_arg_number(args, "memory_gb", false, 0.001, 1e6, &mem, cause) < 0 ||
	    msg_arg_number(args, "time_limit", false, 1, 1e9, &limit, cause) < 0) {
		return -EINVAL;
	}
	if (!name || strcmp(name, TARGET_LOCAL) == 0) {
		if (nodes || cpus || mem > 0 || limit > 0) {
			*cause = msg_strdupf("nodes, cpus, memory_gb and time_limit are passed to a "
					     "cluster target (--target NAME); a local run has "
					     "--timeout");
			return -EINVAL;
		}
		return 0;
	}
	t = target_find(d, name);
	if (!t || t->ops == &missing_ops) {
		*cause = msg_strdupf("there is no compute target '%s' (see 'runyard compute "
				     "list')",
				     name);
		return -ENOENT;
	}
	ret_res->nodes = (int)nodes;
	ret_res->cpus = (int)cpus;
	ret_res->memory_gb = mem;
	ret_res->time_limit = limit;
	*ret_target = t->name;
	return 0;
}

char *compute_resources_json(const struct slurm_resources *res)
{
	cJSON *o = cJSON_CreateObject();
	char *s;

	if (res->nodes > 0) {
		cJSON_AddNumberToObject(o, "nodes", res->nodes);
	}
	if (res->cpus > 0) {
		cJSON_AddNumberToObject(o, "cpus", res->cpus);
	}
	if (res->memory_gb > 0) {
		cJSON_AddNumberToObject(o, "memory_gb", res->memory_gb);
	}
	if (res->time_limit > 0) {
		cJSON_AddNumberToObject(o, "time_limit", res->time_limit);
	}
	s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

int compute_run_bind(struct run *r, const char *target, const char *resources_json,
		     int64_t job_id)
{
	struct daemon *d = r->d;
	struct slurm_resources res = {0};
	struct target *t = target ? target_find(d, target) : NULL;
	cJSON *o;
	int err;

	if (!target || strcmp(target, TARGET_LOCAL) == 0) {
		return 0;
	}
	o = cJSON_Parse(resources_json ? resources_json : "{}");
	res.nodes = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "nodes"));
	res.cpus = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "cpus"));
	res.memory_gb = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "memory_gb"));
	res.time_limit = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "time_limit"));
	cJSON_Delete(o);
	/* cJSON's "not a number" is NaN. */
	res.nodes = res.nodes > 0 ? res.nodes : 0;
	res.cpus = res.cpus > 0 ? res.cpus : 0;
	res.memory_gb = res.memory_gb > 0 ? res.memory_gb : 0;
	res.time_limit = res.time_limit > 0 ? res.time_limit : 0;
	if (t && t->ops == &slurm_ops) {
		err = slurm_run_bind(r, t, &res, job_id);
		if (err != -ESHUTDOWN) {
			return err;
		}
	}
	log_error("run %s: its compute target '%s' is not available; the run will fail", r->id,
		  target);
	t = missing_target(d);
	if (!t || !(r->target_data = strdup(target))) {
		return -ENOMEM;
	}
	r->target = t;
	return 0;
}

int compute_run_load(struct run *r)
{
	char *target = NULL, *resources = NULL;
	int64_t job_id = 0;
	int err = store_run_target_get(r->d->store, r->seq, &target, &resources, &job_id);

	if (err == -ENOENT) {
		return 0; /* a local run */
	}
	if (err == 0) {
		err = compute_run_bind(r, target, resources, job_id);
	}
	free(target);
	free(resources);
	return err;
}

void compute_run_job_set(struct run *r, int64_t job_id)
{
	if (store_run_job_set(r->d->store, r->seq, job_id) < 0) {
		log_error("run %s: recording its Slurm job id %lld failed: %s", r->id,
			  (long long)job_id, store_errmsg(r->d->store));
	}
}

/* Ops */

static bool valid_word(const char *s, const char *extra)
{
	if (!*s || strlen(s) > 255) {
		return false;
	}
	for (const char *c = s; *c; c++) {
		if (!isalnum((unsigned char)*c) && !strchr(extra, *c)) {
			return false;
		}
	}
	return true;
}

static bool valid_env_name(const char *s)
{
	if (!*s || isdigit((unsigned char)*s)) {
		return false;
	}
	return valid_word(s, "_");
}

static void create_remove(struct daemon *d, struct compute_create *c)
{
	for (struct compute_create **pp = &d->creates; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	request_release(c->req);
	free(c->name);
	cJSON_Delete(c->config);
	free(c);
}

static void probe_cb(void *ud, int err, const char *version, const char *message)
{
	struct compute_create *c = ud;
	struct daemon *d = c->d;
	struct target *t = NULL;
	char *config = NULL, *cause = NULL;
	double now = util_now();

	c->probe = NULL;
	if (err < 0) {
		const char *code = err == -EACCES	   ? PROTO_E_PERMISSION
				   : err == -EPROTONOSUPPORT ? PROTO_E_INVALID_ARGUMENT
							     : PROTO_E_UNAVAILABLE;
		request_error(c->req, code, "compute target '%s' was not created: %s", c->name,
			      message);
		goto out;
	}
	if (d->stopping) {
		request_error(c->req, PROTO_E_SHUTTING_DOWN, "runyardd is stopping");
		goto out;
	}
	cJSON_AddStringToObject(c->config, "api", version);
	config = cJSON_PrintUnformatted(c->config);
	t = target_new(d, c->name, &slurm_ops);
	if (!config || !t) {
		request_error(c->req, PROTO_E_INTERNAL, "out of memory");
		goto out;
	}
	t->config = c->config;
	c->config = NULL;
	t->created_at = now;
	err = open_target(d, t, &cause);
	if (err < 0) {
		request_error(c->req, PROTO_E_INTERNAL, "compute target '%s' cannot be set up: %s",
			      c->name, cause ? cause : strerror(-err));
		goto out;
	}
	err = store_target_insert(d->store, t->name, "slurm", config, now);
	if (err < 0) {
		if (err == -EEXIST) {
			request_error(c->req, PROTO_E_CONFLICT, "compute target '%s' already exists",
				      c->name);
		} else {
			request_error(c->req, PROTO_E_INTERNAL, "recording compute target '%s' "
				      "failed: %s", c->name, store_errmsg(d->store));
		}
		slurm_target_close(t);
		goto out;
	}
	target_add(d, t);
	log_info("compute target %s created (slurm at %s, API %s)", t->name,
		 cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t->config, "rest")), version);
	request_reply(c->req, target_json(t));
	t = NULL;
out:
	target_free(t);
	free(config);
	free(cause);
	create_remove(d, c);
}

void compute_op_create(struct request *req)
{
	struct daemon *d = req->d;
	const char *name, *type = NULL, *rest = NULL, *token_env = NULL, *user = NULL,
			  *partition = NULL, *shared_dir = NULL;
	int64_t max_jobs = DEFAULT_MAX_JOBS;
	char *cause = NULL, *dir = NULL;
	struct compute_create *c = NULL;
	struct stat st;

	if (msg_arg_string(req->args, "name", true, &name, &cause) < 0 ||
	    msg_arg_string(req->args, "type", true, &type, &cause) < 0 ||
	    msg_arg_string(req->args, "rest", true, &rest, &cause) < 0 ||
	    msg_arg_string(req->args, "token_env", false, &token_env, &cause) < 0 ||
	    msg_arg_string(req->args, "user", false, &user, &cause) < 0 ||
	    msg_arg_string(req->args, "partition", false, &partition, &cause) < 0 ||
	    msg_arg_string(req->args, "shared_dir", false, &shared_dir, &cause) < 0 ||
	    msg_arg_int(req->args, "max_jobs", false, 1, MAX_MAX_JOBS, &max_jobs, &cause) < 0) {
		request_arg_error(req, cause);
		return;
	}
	if (!util_valid_name(name) || name[0] == '(') {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
			      "compute target name '%s' is not valid: use letters, digits, '.', '_' "
			      "and '-', starting with a letter or digit",
			      name);
		return;
	}
	if (target_find(d, name)) {
		request_error(req, PROTO_E_CONFLICT, "compute target '%s' already exists%s", name,
			      strcmp(name, TARGET_LOCAL) == 0 ? " (it is built in)" : "");
		return;
	}
	for (struct compute_create *p = d->creates; p; p = p->next) {
		if (strcmp(p->name, name) == 0) {
			request_error(req, PROTO_E_CONFLICT,
				      "compute target '%s' is being created already", name);
			return;
		}
	}
	if (strcmp(type, "slurm") != 0) {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
			      "compute target type '%s' is not known (runyard knows: slurm)", type);
		return;
	}
	if (!rest_base_valid(rest, &cause)) {
		request_error(req, PROTO_E_INVALID_ARGUMENT, "--rest %s", cause ? cause : rest);
		free(cause);
		return;
	}
	if (token_env) {
		if (!valid_env_name(token_env)) {
			request_error(req, PROTO_E_INVALID_ARGUMENT,
				      "--token-env '%s' is not an environment variable name",
				      token_env);
			return;
		}
		if (!getenv(token_env) || !*getenv(token_env)) {
			request_error(req, PROTO_E_INVALID_ARGUMENT,
				      "the environment variable %s (--token-env) is not set in "
				      "runyardd's environment; start runyardd with it set to a Slurm "
				      "JWT (the token itself is never stored)",
				      token_env);
			return;
		}
	}
	if (user && !valid_word(user, "._-")) {
		request_error(req, PROTO_E_INVALID_ARGUMENT, "--user '%s' is not a user name", user);
		return;
	}
	if (partition && !valid_word(partition, "._-,")) {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
			      "--partition '%s' is not a partition name", partition);
		return;
	}
	if (shared_dir) {
		if (shared_dir[0] != '/') {
			request_error(req, PROTO_E_INVALID_ARGUMENT,
				      "--shared-dir '%s' must be an absolute path", shared_dir);
			return;
		}
		if (stat(shared_dir, &st) < 0) {
			request_error(req, PROTO_E_INVALID_ARGUMENT, "--shared-dir %s: %s",
				      shared_dir, strerror(errno));
			return;
		}
		if (!S_ISDIR(st.st_mode)) {
			request_error(req, PROTO_E_INVALID_ARGUMENT,
				      "--shared-dir %s is not a directory", shared_dir);
			return;
		}
		if (access(shared_dir, W_OK | X_OK) < 0) {
			request_error(req, PROTO_E_PERMISSION,
				      "--shared-dir %s is not writable by runyardd: %s", shared_dir,
				      strerror(errno));
			return;
		}
		dir = realpath(shared_dir, NULL);
	} else {
		dir = strdup(d->runs_dir);
	}
	c = calloc(1, sizeof(*c));
	if (!dir || !c) {
		goto oom;
	}
	c->d = d;
	c->name = strdup(name);
	c->config = cJSON_CreateObject();
	c->req = request_hold(req);
	if (!c->name || !c->config || !c->req) {
		goto oom;
	}
	cJSON_AddStringToObject(c->config, "rest", rest);
	cJSON_AddStringToObject(c->config, "shared_dir", dir);
	cJSON_AddNumberToObject(c->config, "max_jobs", (double)max_jobs);
	if (token_env) {
		cJSON_AddStringToObject(c->config, "token_env", token_env);
	}
	if (user) {
		cJSON_AddStringToObject(c->config, "user", user);
	}
	if (partition) {
		cJSON_AddStringToObject(c->config, "partition", partition);
	}
	free(dir);
	c->next = d->creates;
	d->creates = c;
	int err = slurm_probe_start(d, c->config, probe_cb, c, &c->probe);
	if (err < 0) {
		/* Nothing was sent: the probe's callback will not run. */
		request_error(req, PROTO_E_INTERNAL, "cannot ask slurmrestd: %s", strerror(-err));
		create_remove(d, c);
	}
	return;
oom:
	request_error(req, PROTO_E_INTERNAL, "out of memory");
	free(dir);
	if (c) {
		request_release(c->req);
		free(c->name);
		cJSON_Delete(c->config);
		free(c);
	}
}

void compute_op_list(struct request *req)
{
	cJSON *res = cJSON_CreateObject();
	cJSON *arr = cJSON_AddArrayToObject(res, "targets");

	for (struct target *t = req->d->targets; t; t = t->next) {
		if (t->ops != &missing_ops) {
			cJSON_AddItemToArray(arr, target_json(t));
		}
	}
	request_reply(req, res);
}

static struct target *arg_target(struct request *req)
{
	const char *name;
	char *cause = NULL;
	struct target *t;

	if (msg_arg_string(req->args, "name", true, &name, &cause) < 0) {
		request_arg_error(req, cause);
		return NULL;
	}
	t = target_find(req->d, name);
	if (!t || t->ops == &missing_ops) {
		request_error(req, PROTO_E_NOT_FOUND,
			      "there is no compute target '%s' (see 'runyard compute list')", name);
		return NULL;
	}
	return t;
}

void compute_op_show(struct request *req)
{
	struct target *t = arg_target(req);

	if (t) {
		request_reply(req, target_json(t));
	}
}

void compute_op_delete(struct request *req)
{
	struct daemon *d = req->d;
	struct target *t = arg_target(req);
	int64_t n = 0;
	int err;

	if (!t) {
		return;
	}
	if (strcmp(t->name, TARGET_LOCAL) == 0) {
		request_error(req, PROTO_E_CONFLICT, "the local target is built in and cannot be "
						     "deleted");
		return;
	}
	err = store_target_active_runs(d->store, t->name, &n);
	if (err == 0 && n > 0) {
		request_error(req, PROTO_E_CONFLICT,
			      "compute target '%s' has %lld run(s) that have not ended; cancel "
			      "them or wait, then delete it",
			      t->name, (long long)n);
		return;
	}
	if (err == 0) {
		err = store_target_delete(d->store, t->name);
	}
	if (err < 0) {
		request_error(req, PROTO_E_INTERNAL, "deleting compute target '%s' failed: %s",
			      t->name, store_errmsg(d->store));
		return;
	}
	for (struct target **pp = &d->targets; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	}
	log_info("compute target %s deleted", t->name);
	cJSON *res = cJSON_CreateObject();
	cJSON_AddStringToObject(res, "name", t->name);
	slurm_target_close(t);
	target_free(t);
	request_reply(req, res);
}

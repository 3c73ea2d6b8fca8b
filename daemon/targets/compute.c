#include "compute.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "context.h"
#include "exec.h"
#include "local.h"
#include "log.h"
#include "msg.h"
#include "resources.h"
#include "run.h"
#include "slurm.h"
#include "store.h"
#include "target.h"

void compute_target_free(struct target *t)
{
	if (t) {
		free(t->name);
		cJSON_Delete(t->config);
		free(t);
	}
}

struct target *compute_target_new(struct daemon *d, const char *name,
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
void compute_target_add(struct daemon *d, struct target *t)
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

	if (!t && (t = compute_target_new(d, name, &missing_ops))) {
		t->max_jobs = COMPUTE_MAX_JOBS_MAX;
		compute_target_add(d, t);
	}
	return t;
}

int compute_target_open(struct daemon *d, struct target *t, char **cause)
{
	const cJSON *mj = cJSON_GetObjectItemCaseSensitive(t->config, "max_jobs");

	t->max_jobs = cJSON_IsNumber(mj) && mj->valueint > 0 ? mj->valueint : COMPUTE_MAX_JOBS_DEFAULT;
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
	t = compute_target_new(d, name, &slurm_ops);
	if (!t) {
		return -ENOMEM;
	}
	t->created_at = created_at;
	t->config = cJSON_Parse(config_json);
	if (!cJSON_IsObject(t->config) || compute_target_open(d, t, &cause) < 0) {
		log_error("compute target %s cannot be set up: %s; its runs will fail", name,
			  cause ? cause : "its stored definition is not valid");
		free(cause);
		compute_target_free(t);
		return 0;
	}
	compute_target_add(d, t);
	return 0;
}

int compute_init(struct daemon *d, char **cause)
{
	struct target *local = compute_target_new(d, TARGET_LOCAL, &local_target_ops);
	int err;

	if (!local) {
		return -ENOMEM;
	}
	/* The local target's places are runyardd's --max-runs slots. */
	local->max_jobs = d->max_runs;
	d->targets = local;
	err = store_targets(d->store, load_cb, d);
	if (err < 0) {
		*cause = msg_strdupf("loading the compute targets failed: %s",
				     store_errmsg(d->store));
		return err;
	}
	return 0;
}

/* The creates waiting for a server's answer are the ops' (ops_compute.c),
 * which tell this how to end them. */
static void (*shutdown_hook)(struct daemon *d);

void compute_shutdown_hook(void (*fn)(struct daemon *d))
{
	shutdown_hook = fn;
}

bool compute_target_missing(const struct target *t)
{
	return t->ops == &missing_ops;
}

void compute_shutdown(struct daemon *d)
{
	if (shutdown_hook) {
		shutdown_hook(d);
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
		compute_target_free(t);
	}
}

/* Submitting */

/* A size argument: a number of bytes, or a string such as "512M". */
static int size_arg(const cJSON *args, const char *name, int64_t *ret, char **cause)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(args, name);

	if (!v || cJSON_IsNull(v)) {
		return 0;
	}
	if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 9e18) {
		*ret = (int64_t)v->valuedouble;
		return 0;
	}
	if (cJSON_IsString(v) && res_size_parse(v->valuestring, ret) == 0) {
		return 0;
	}
	*cause = msg_strdupf("argument '%s' must be a size: bytes, or a string such as \"512M\" "
			     "or \"2G\"",
			     name);
	return -EINVAL;
}

int compute_submit_args(struct daemon *d, const cJSON *args, const char **ret_target,
			struct slurm_resources *ret_res, struct res_request *ret_req,
			char **cause)
{
	const char *name = NULL;
	int64_t nodes = 0, cpus = 0, gpus = 0, mem = 0, gpu_mem = 0;
	double mem_gb = 0, limit = 0;
	struct target *t;

	memset(ret_res, 0, sizeof(*ret_res));
	*ret_req = (struct res_request){.cpus = 1};
	*ret_target = NULL;
	if (msg_arg_string(args, "target", false, &name, cause) < 0 ||
	    msg_arg_int(args, "nodes", false, 1, 100000, &nodes, cause) < 0 ||
	    msg_arg_int(args, "cpus", false, 1, 100000, &cpus, cause) < 0 ||
	    msg_arg_int(args, "gpus", false, 0, RES_GPUS_MAX, &gpus, cause) < 0 ||
	    msg_arg_number(args, "memory_gb", false, 0.001, 1e6, &mem_gb, cause) < 0 ||
	    msg_arg_number(args, "time_limit", false, 1, 1e9, &limit, cause) < 0 ||
	    size_arg(args, "mem", &mem, cause) < 0 || size_arg(args, "gpu_mem", &gpu_mem, cause) < 0) {
		return -EINVAL;
	}
	if (!name || strcmp(name, TARGET_LOCAL) == 0) {
		if (nodes || mem_gb > 0 || limit > 0) {
			*cause = msg_strdupf("nodes, memory_gb and time_limit are passed to a "
					     "cluster target (--target NAME); a local run has "
					     "--cpus, --mem, --gpus, --gpu-mem and --timeout");
			return -EINVAL;
		}
		ret_req->cpus = cpus > 0 ? cpus : 1;
		ret_req->bound = cpus > 0;
		ret_req->mem = mem;
		ret_req->gpus = gpus;
		ret_req->gpu_mem = gpu_mem;
		return d->pool ? res_check(d->pool, ret_req, cause) : 0;
	}
	if (mem || gpus || gpu_mem) {
		*cause = msg_strdupf("mem, gpus and gpu_mem are for the local machine; a cluster "
				     "target takes cpus, nodes, memory_gb and time_limit");
		return -EINVAL;
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
	ret_res->memory_gb = mem_gb;
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

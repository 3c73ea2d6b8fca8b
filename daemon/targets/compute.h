/* Compute targets as the user manages them: the targets kept in the store,
 * and which target a run belongs to (docs/compute-targets.md). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct daemon;
struct run;
struct slurm_resources;
struct target;
struct target_ops;

/* A target's jobs at once: by default, and at most. */
#define COMPUTE_MAX_JOBS_DEFAULT 100
#define COMPUTE_MAX_JOBS_MAX 100000

/* Make the built-in local target and load the stored ones. */
int compute_init(struct daemon *d, char **cause);

/* Daemon stopping: end pending creates, close the targets' handles. */
void compute_shutdown(struct daemon *d);

/* Free the targets, after the loop has ended. */
void compute_finish(struct daemon *d);

/* run.submit: read "target", "nodes", "cpus", "memory_gb", "time_limit"
 * (a cluster target's) and "cpus", "mem", "gpus", "gpu_mem" (the local
 * machine's, into *ret_req, checked against what the machine has) from
 * args. *ret_target is NULL for the local target. < 0 with *cause (a
 * message for the user) when they are not valid: -E2BIG when the request
 * can never fit the machine. */
struct res_request;
int compute_submit_args(struct daemon *d, const cJSON *args, const char **ret_target,
			struct slurm_resources *ret_res, struct res_request *ret_req,
			char **cause);

/* The resources as stored with the run: a JSON object, malloc'd. */
char *compute_resources_json(const struct slurm_resources *res);

/* Bind a new run, or one loaded at start, to its stored target (none:
 * local). A loaded run's target must exist; when it does not (its
 * definition was removed from the store by hand), the run is bound to a
 * stand-in that fails it with a clear error. */
int compute_run_bind(struct run *r, const char *target, const char *resources_json,
		     int64_t job_id);
int compute_run_load(struct run *r);

/* Record the Slurm job id of a run. */
void compute_run_job_set(struct run *r, int64_t job_id);

/* What the compute ops (ops_compute.c) use of the targets. */

/* A new target of name on ops, not yet in the daemon's list. */
struct target *compute_target_new(struct daemon *d, const char *name,
				  const struct target_ops *ops);

/* Append t after the local target, keeping the list in creation order. */
void compute_target_add(struct daemon *d, struct target *t);

void compute_target_free(struct target *t);

/* Set a slurm target up from its config (max_jobs, its server). */
int compute_target_open(struct daemon *d, struct target *t, char **cause);

/* Whether t stands in for a stored target the daemon does not have. */
bool compute_target_missing(const struct target *t);

/* How compute_shutdown ends the creates waiting for a server's answer. */
void compute_shutdown_hook(void (*fn)(struct daemon *d));

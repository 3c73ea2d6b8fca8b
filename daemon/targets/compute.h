/* Compute targets as the user manages them: the compute.* ops, the targets
 * kept in the store, and which target a run belongs to
 * (docs/compute-targets.md). */
#pragma once

#include <stdint.h>

#include <cjson/cJSON.h>

struct daemon;
struct request;
struct run;
struct slurm_resources;

/* Make the built-in local target and load the stored ones. */
int compute_init(struct daemon *d, char **cause);

/* Daemon stopping: end pending creates, close the targets' handles. */
void compute_shutdown(struct daemon *d);

/* Free the targets, after the loop has ended. */
void compute_finish(struct daemon *d);

/* run.submit: read "target", "nodes", "cpus", "memory_gb", "time_limit"
 * from args. *ret_target is NULL for the local target. < 0 with *cause (a
 * message for the user) when they are not valid. */
int compute_submit_args(struct daemon *d, const cJSON *args, const char **ret_target,
			struct slurm_resources *ret_res, char **cause);

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

void compute_op_create(struct request *req);
void compute_op_list(struct request *req);
void compute_op_show(struct request *req);
void compute_op_delete(struct request *req);

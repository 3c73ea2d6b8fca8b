/* The slurm target type: a run's supervisor becomes a Slurm batch job,
 * submitted, watched and canceled through slurmrestd's REST API
 * (docs/compute-targets.md). The run's directory is under the target's
 * shared directory, so the daemon tails the supervisor's files there as
 * for a local run; Slurm only says where the job is (PENDING: Scaling,
 * RUNNING: Running) and why it ended when the supervisor could not say. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "target.h"

struct daemon;
struct run;
struct slurm_probe;

extern const struct target_ops slurm_ops;

/* What a run asks of Slurm (submit's --nodes, --cpus, --memory-gb,
 * --time-limit); 0: Slurm's default. */
struct slurm_resources {
	int nodes;
	int cpus;
	double memory_gb;
	double time_limit; /* seconds */
};

/* Set up a slurm target's state from t->config (loaded or just created). */
int slurm_target_init(struct target *t, char **cause);

/* Stop the target's polling and requests and close its handles; the state
 * frees itself once they have closed. Runs' jobs carry on. */
void slurm_target_close(struct target *t);

/* Give a run of target t its per-run state (r->target_data): its resources
 * and, after a restart, the job id recorded for it (0: none). */
int slurm_run_bind(struct run *r, struct target *t, const struct slurm_resources *res,
		   int64_t job_id);

/* compute.create: which API version the server at config's "rest" offers
 * that runyard knows, and whether its controller answers. cb gets 0 and
 * the version, or a negative errno and a message for the user. */
typedef void (*slurm_probe_cb)(void *ud, int err, const char *version, const char *message);
int slurm_probe_start(struct daemon *d, const cJSON *config, slurm_probe_cb cb, void *ud,
		      struct slurm_probe **ret);
/* Stop a probe; its callback never runs. Accepts NULL. */
void slurm_probe_cancel(struct slurm_probe *p);

/* The API versions runyard speaks, newest first, as "v0.0.38, ...". */
const char *slurm_versions_known(void);

/* How Slurm's job_state strings are read: the phase of a job in that
 * state. Flag states (COMPLETING, CONFIGURING, ...) count as the part of
 * the job's life they refine. Exposed for the unit tests. */
enum slurm_phase {
	SLURM_PHASE_UNKNOWN,  /* not a state runyard knows: keep the last phase */
	SLURM_PHASE_PENDING,  /* waiting for resources, held, requeued, nodes booting */
	SLURM_PHASE_RUNNING,  /* the batch script runs (also suspended, signaled) */
	SLURM_PHASE_ENDING,   /* ended, processes being cleaned up: not final yet */
	SLURM_PHASE_ENDED,    /* final */
};
enum slurm_phase slurm_state_phase(const char *state);

/* The error code runyard gives a run whose job ended in state (final);
 * NULL for COMPLETED and CANCELLED. */
const char *slurm_state_code(const char *state);

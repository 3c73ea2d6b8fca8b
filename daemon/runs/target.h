/* Compute targets: where a run's supervisor is started and how its life is
 * judged. Every run belongs to one: the built-in "local" target (this
 * machine, --max-runs slots; exec.c) or a cluster target (slurm.c). The
 * run's files work the same on all of them: the supervisor writes
 * output.log, supervisor.json and exit.json, the run writes
 * tracking.jsonl, in the run's directory, and exec.c tails them; only the
 * operations below differ. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct daemon;
struct run;
struct store_exit;

/* A run's fate as a target judges it (see target_ops.judge and .lost). */
struct target_verdict {
	int outcome;      /* enum run_status: RUN_FAILED or RUN_CANCELED */
	const char *code; /* the error code when Failed */
	char *message;    /* malloc'd; the caller frees it */
};

struct target_ops {
	const char *type;
	/* Scaling: hand the run to the target. argv is the supervisor's
	 * command line (absolute supervisor path first), env the run's
	 * environment, both NULL-terminated and valid during the call only.
	 * The target moves the run to Running once its process runs (at
	 * once for local). < 0 with *cause: the run fails ExecutionFailed. */
	int (*start)(struct run *r, char **argv, char **env, char **cause);
	/* Stop a started run: SIGTERM to the supervisor, or the job's cancel.
	 * The run then ends when its supervisor records the cancel, or when
	 * the target reports it gone. */
	void (*cancel)(struct run *r);
	/* Whether the run's supervisor (or the job that holds it) may still
	 * be running; false once it is known to be gone. */
	bool (*alive)(struct run *r);
	/* The supervisor is gone without an exit.json: how the run ended. */
	void (*lost)(struct run *r, struct target_verdict *v);
	/* The supervisor recorded a cancel the daemon did not ask for, or a
	 * kill by a signal: the target may know better why (a cluster's time
	 * limit, out of memory, a node failure). 1: *v says; 0: no opinion;
	 * -EAGAIN: not known yet, ask again at the next poll. NULL: no opinion. */
	int (*judge)(struct run *r, const struct store_exit *e, bool canceled,
		     struct target_verdict *v);
	/* After a daemon restart: whether the target still holds the run's
	 * process (a job it knows by its recorded id), so it can be
	 * re-attached. NULL: the local way (supervisor.json's pid). */
	bool (*adopt)(struct run *r);
	/* The run has ended or the daemon stops: forget it (its process, if
	 * any, carries on). */
	void (*detach)(struct run *r);
	/* Free the per-run state (r->target_data), when the run is freed. */
	void (*run_free)(struct run *r);
};

/* A compute target the daemon knows. */
struct target {
	struct target *next;
	struct daemon *d;
	char *name;
	const struct target_ops *ops;
	int max_jobs; /* runs it takes at once; the local target's is --max-runs */
	int active;   /* runs holding one of those places */
	cJSON *config; /* the stored definition (type specific) */
	double created_at;
	void *impl; /* the type's state (slurm.c) */
};

/* The built-in target's name. */
#define TARGET_LOCAL "local"

/* The target named name; NULL if there is none. */
struct target *target_find(struct daemon *d, const char *name);

/* The run's target (the local one when the run names none). */
struct target *target_of(const struct run *r);
const struct target_ops *target_ops_of(const struct run *r);

/* Capacity: whether the run's target has a free place, and taking and
 * giving back the run's place (r->holds_slot). */
bool target_has_room(const struct run *r);
void target_slot_take(struct run *r);
/* Whether any target has a free place (the queue need not be looked at
 * otherwise). */
bool target_any_room(struct daemon *d);
void target_slot_release(struct run *r);

/* The target as the protocol shows it: {name, type, max_jobs, active, ...}. */
cJSON *target_json(const struct target *t);

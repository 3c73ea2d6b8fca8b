/* The sweep controller: a sweep is a run of kind "sweep" whose children are
 * ordinary queued runs. It draws each child's parameters, keeps at most
 * max_concurrent children unfinished, stops children through the driver's
 * cancel when the policy condemns them, and ends the sweep when no trial
 * remains. Everything it decides is in the store before it acts on it, so
 * a restart carries on (docs/sweeps.md). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "run.h"

struct daemon;

/* Its state, made at start-up; closed when the daemon stops. */
int sweeps_init(struct daemon *d);
void sweeps_close(struct daemon *d);

/* The run events it listens to (subscribed by core): a child's metric
 * points and its end. */
void sweeps_run_event(void *ud, struct run *r, enum run_event ev);

/* After the runs in flight are back in hand: the sweeps still Running,
 * their trials and what each has logged, and on with sampling. */
int sweeps_resume(struct daemon *d);

/* Check sweep.submit's own arguments (metric, goal, sampling, params,
 * max_total, max_concurrent, max_duration, policy, seed) and give the
 * definition as it is stored (every default filled in, the policy as an
 * object). -EINVAL with a message in *cause; -ENOMEM. */
int sweep_definition(const cJSON *args, cJSON **ret, char **cause);

/* run.submit's "array": "FIRST-LAST[:STEP][%K]" as the definition of an
 * array, a parent of kind "array" whose elements are the run once per
 * index (RUNYARD_ARRAY_INDEX, "{index}" in its arguments), at most K
 * unfinished at once; it is made and kept like a sweep. -EINVAL with a
 * message in *cause. */
int sweep_array_definition(const char *spec, cJSON **ret, char **cause);

/* What every child is made from: the submit's template. */
struct sweep_template {
	const char *experiment;
	int priority;
	const cJSON *command; /* the program and its fixed arguments */
	const cJSON *argv;    /* what the supervisor executes, before the parameters */
	const char *python;
	const char *source;
	const char *snapshot;
	const cJSON *env;
	double timeout;
	bool keep;
	const char *target;         /* NULL: local */
	const char *resources_json; /* NULL with target NULL */
	const char *request_json;   /* a local run's request; NULL with a target */
	const cJSON *inputs, *outputs;
	int retries;          /* each child's (--retries) */
	const char *retry_on; /* NULL: the default */
};

/* Store the sweep (Running) with its definition (def, from
 * sweep_definition, plus the command) and its template, and start making
 * children. *ret_seq and *ret_id (malloc'd) name it. -ENOMEM or -EIO with
 * a message in *cause. */
int sweep_create(struct daemon *d, const cJSON *def, const struct sweep_template *t,
		 int64_t *ret_seq, char **ret_id, char **cause);

/* Cancel the sweep seq: no more children, and the queued and running ones
 * canceled (error SweepCanceled). *ret_n: how many. -ENOENT when seq is not
 * a sweep in progress. */
int sweep_cancel(struct daemon *d, int64_t seq, int *ret_n);

/* Whether seq is a sweep in progress. */
bool sweep_active(struct daemon *d, int64_t seq);

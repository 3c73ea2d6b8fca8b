/* A run's data: named inputs (local files and directories, URLs, datasets)
 * placed in its working directory in Preparing, and outputs uploaded to
 * datastore directories at Finalizing (docs/inputs.md). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct daemon;
struct run;

/* Most inputs, and most outputs, a run may declare. */
#define INPUTS_MAX 64

/* Check run.submit's "inputs" and "outputs" (either may be absent) and
 * resolve them: a dataset to the version it has now, a local path to a
 * real one. *ret_inputs and *ret_outputs are the normalised arrays (empty
 * when absent) for inputs_record. -EINVAL (or -ENOENT for an unknown
 * dataset) with a message in *cause. Reads the store: loop thread only. */
int inputs_submit_check(struct daemon *d, const cJSON *args, cJSON **ret_inputs,
                        cJSON **ret_outputs, char **cause);

/* Store what inputs_submit_check gave for the new run seq. */
int inputs_record(struct daemon *d, int64_t seq, const cJSON *inputs, const cJSON *outputs);

typedef void (*inputs_ready_fn)(struct run *r, int err, const char *cause);

/* Preparing, after the environment: place the run's inputs (fetching URLs,
 * copying, making mount points) and create its output directories. 0 when
 * the run has none (nothing to wait for), 1 when cb is called later (the
 * run is busy till then), a negative errno with a cause when they cannot
 * even start. cb gets -ECANCELED after inputs_cancel. */
int inputs_prepare(struct run *r, inputs_ready_fn cb, char **cause);

/* Cancel the preparation of r's inputs, if one runs: downloads are let go
 * of, and cb is called (from the loop, not from inside this call). */
void inputs_cancel(struct run *r);

/* How many RUNYARD_INPUT_/RUNYARD_OUTPUT_ variables the run gets, and
 * adding them to env at *n (env has room for that many more). */
size_t inputs_env_count(struct run *r);
int inputs_env_add(struct run *r, char **env, size_t *n);

/* The supervisor's --ro-bind SRC DST options for mounted inputs, as a
 * NULL-terminated array of malloc'd strings (an empty one when none). */
char **inputs_supervisor_args(struct run *r);

/* Finalizing, before the run's own outputs are stored: upload the declared
 * outputs to their datastores. 0 when there are none, 1 when cb is called
 * later (the run is busy till then). */
int inputs_finalize(struct run *r, inputs_ready_fn cb);

/* Add "inputs" (with progress while downloads run) and "outputs_to" to a
 * run object of the protocol. */
int inputs_json(struct daemon *d, int64_t seq, cJSON *run);

/* Daemon stopping: let go of every preparation (downloads and timers). */
void inputs_shutdown(struct daemon *d);

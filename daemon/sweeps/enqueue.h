/* Making a queued run: the steps run.submit and every child of a sweep
 * share once the snapshot is taken and the row is known. */
#pragma once

#include <cjson/cJSON.h>

struct daemon;
struct run;
struct store_run_new;

/* Store the run (n), make it in memory with *argv and *env (taken: set to
 * NULL on success), record its inputs and outputs (as inputs_submit_check
 * gave them; NULL: none), bind it to n->target and put it in the queue. The
 * caller kicks the scheduler. -ENOMEM or -EIO with a message in *cause;
 * when the run was stored but its inputs could not be, it has ended Failed
 * and *ret is NULL. */
int enqueue_run(struct daemon *d, const struct store_run_new *n, cJSON **argv, cJSON **env,
		const cJSON *inputs, const cJSON *outputs, struct run **ret, char **cause);

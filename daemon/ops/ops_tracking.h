/* What the other ops use of the tracking ops: the run a run's process names. */
#pragma once

#include <stdint.h>

struct request;

/* The run an op from a run's process acts on, as run.context resolves it:
 * with args.token only the token's own run (args.run may be left out), and
 * args.sync stored first. Replies the error itself and returns < 0. */
int ops_tracking_resolve_run(struct request *req, int64_t *ret_seq);

/* Carrying a run on the local target: Preparing, Scaling, Running under a
 * supervisor, Finalizing. */
#pragma once

#include "run.h"

struct daemon;
struct target_ops;

/* The run has a slot: materialise its snapshot, then start it. */
void exec_prepare(struct run *r);

/* Cancel: a queued run ends at once, a started one gets CancelRequested and
 * its supervisor SIGTERM. -EALREADY when it is already finalizing or
 * canceling. */
int exec_cancel(struct run *r);

/* Carry on with a run the store says was in flight when the daemon last
 * stopped: re-attach to its supervisor, finish it, or fail it. */
void exec_resume(struct run *r);

/* A run held in Scaling by its target (a cluster job waiting for nodes)
 * has started: move it to Running. No-op in any other status. */
void exec_started(struct run *r);

/* The supervisor process the target started has ended (its parent saw it
 * go): finish the run from exit.json, or fail it ExecutionFailed with what
 * supervisor.err says when there is none. */
void exec_supervisor_ended(struct run *r);

/* Close the run's handles (the run has ended, or the daemon stops). */
void exec_detach(struct run *r);

/* The run events the driver listens to (subscribed by core): an ended run's
 * handles are closed. */
void exec_run_event(void *ud, struct run *r, enum run_event ev);

/* Daemon stopping: let go of every run; their supervisors carry on. */
void exec_shutdown(struct daemon *d);

/* Remove working directories that no run needs any more (left behind by a
 * crash between a run's end and their removal). */
void exec_sweep_dirs(struct daemon *d);

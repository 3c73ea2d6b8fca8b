/* The scheduler: runs leave the queue when their target has room, and it
 * alone hands them to the driver (exec_prepare). */
#pragma once

#include "run.h"

struct daemon;

/* Its state, made at start-up; closed when the daemon stops. */
int scheduler_init(struct daemon *d);
void scheduler_close(struct daemon *d);

/* Start as many queued runs as their targets have room for. */
void scheduler_kick(struct daemon *d);

/* The run events it listens to (subscribed by core): an ended run gives
 * back its place, and the queue is looked at again at the end of the tick. */
void scheduler_run_event(void *ud, struct run *r, enum run_event ev);

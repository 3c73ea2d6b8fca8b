/* The order of Queued runs: higher priority first, then submit order. The
 * scheduler (exec/scheduler.c) walks it when a target has room. */
#pragma once

struct daemon;
struct run;

/* Put a Queued run in line. */
void queue_enqueue(struct daemon *d, struct run *r);

/* Take a run out of the line (it is leaving Queued, or has ended); no-op if
 * absent. */
void queue_remove(struct daemon *d, struct run *r);

/* The first run in line, NULL when none; the next is r->qnext. */
struct run *queue_head(struct daemon *d);

/* Forget the line (daemon stopping: the runs stay Queued in the store). */
void queue_clear(struct daemon *d);

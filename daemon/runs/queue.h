/* The queue of Queued runs and admission into the capacity slots. */
#pragma once

struct daemon;
struct run;

/* Put a Queued run in line: higher priority first, then submit order. */
void queue_enqueue(struct daemon *d, struct run *r);

/* Take a run out of the line (canceled, failed or ended); no-op if absent. */
void queue_remove(struct daemon *d, struct run *r);

/* Start as many queued runs as free slots allow (the local target's
 * capacity is --max-runs slots). */
void queue_kick(struct daemon *d);

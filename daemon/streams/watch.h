/* Followers of runs: status changes and stored lines pushed to connections. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "run.h"

struct conn;
struct daemon;

/* The watchers' state, made at start-up and freed after the loop. */
int watch_init(struct daemon *d);
void watch_finish(struct daemon *d);

/* Start a watch; lines (when logs) and events then flow on their own. */
int watch_add(struct daemon *d, struct conn *c, int64_t seq, const char *run_id, bool logs,
	      char stream, int64_t after_seq, int64_t *ret_sub);
/* Send what a new watch is owed; called after the op has replied, so the
 * reply comes before the first event. */
void watch_start(struct daemon *d, int64_t sub);
int watch_remove(struct daemon *d, struct conn *c, int64_t sub);

/* The run events the watchers listen to (subscribed by core): a status is
 * pushed, new lines are sent, an end finishes the run's watches. */
void watch_run_event(void *ud, struct run *r, enum run_event ev);

/* The server's hooks: a closing connection's watches go; a drained one's
 * catch up. */
void watch_conn_closed(struct daemon *d, struct conn *c);
void watch_conn_drained(struct daemon *d, struct conn *c);

/* Drop every watch (daemon stopping). */
void watch_clear(struct daemon *d);

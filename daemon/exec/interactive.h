/* Interactive runs (kind "interactive"): runs in the history whose process
 * is a client's own, a notebook's, not one the daemon starts. The client
 * makes one with run.submit and "interactive", writes its tracking file
 * (metrics, tags, uploads) as a run's process does, sends heartbeats and
 * ends it with run.finish; the daemon fails it with code HeartbeatLost when
 * the heartbeats stop (docs/protocol.md, "Interactive runs"). */
#pragma once

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "run.h"

struct daemon;
struct store_run_new;

/* Heartbeat timeouts, in seconds: the default and the range allowed. */
#define INTERACTIVE_TIMEOUT_DEFAULT 120.0
#define INTERACTIVE_TIMEOUT_MIN 1.0
#define INTERACTIVE_TIMEOUT_MAX 86400.0

/* The heartbeat check (a timer on the daemon's loop). */
int interactive_init(struct daemon *d);
void interactive_close(struct daemon *d);

/* Record n (kind "interactive", timeout the heartbeat timeout) and start
 * it: its directory, tracking file and token, and the statuses up to
 * Running. Takes *argv and *env. < 0 with *cause. */
int interactive_begin(struct daemon *d, const struct store_run_new *n, cJSON **argv, cJSON **env,
                      struct run **ret, char **cause);

/* After a restart: the client has a whole heartbeat timeout from now. */
void interactive_resume(struct run *r);

/* A heartbeat: the run's tracking file is read too. */
void interactive_heartbeat(struct run *r);

/* End the run as its client says: RUN_COMPLETED, RUN_FAILED (with code and
 * message; NULL: "UserError", "the run was marked failed") or RUN_CANCELED.
 * Its tracking file is read to the end first. -EINVAL for another status. */
int interactive_end(struct run *r, enum run_status to, const char *code, const char *message);

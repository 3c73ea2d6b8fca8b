/* Retention: the daemon's rules for how long ended runs stay in the
 * history (runyardd --keep-runs-days, --keep-runs, --keep-failed-days),
 * applied at start and once a day. */
#pragma once

#include <stdint.h>

#include <cjson/cJSON.h>

struct daemon;
struct store_retention;

/* Keep the rules; with any rule, the timer that applies them. */
int retention_init(struct daemon *d, const struct store_retention *rules);
/* Apply them now (at the end of start-up) and every day from then on. */
void retention_start(struct daemon *d);
/* Daemon stopping: close the timer (it frees itself). Accepts no rules. */
void retention_close(struct daemon *d);
/* The rules, resolved to now; all zero when there are none. */
void retention_rules(struct daemon *d, struct store_retention *ret);
/* Add run.show's "retention" object to run. */
void retention_describe(struct daemon *d, int64_t seq, cJSON *run);

/* Starting runyardd detached and waiting until it answers: daemon start and autostart. */
#pragma once

/* How long daemon start and stop wait for the socket to answer or go quiet. */
#define LAUNCH_WAIT_MS 10000
#define LAUNCH_POLL_MS 20

struct ctx;

/* Start runyardd detached on ctx->socket and wait until it answers; the
 * daemon's pid in *ret_pid. extra: more options for runyardd, as given.
 * Returns 0 or an exit status (said why). */
int launch_daemon(struct ctx *ctx, const char *state_dir, const char *max_runs,
		  const char *grace, const char *const *extra, long long *ret_pid);

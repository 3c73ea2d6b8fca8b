/* The service manager's protocols, spoken without libsystemd: socket
 * activation (LISTEN_FDS), readiness and status (NOTIFY_SOCKET), watchdog. */
#pragma once

#include <stdbool.h>

#include "run.h"

struct daemon;

/* Read and unset the manager's variables, so runs do not inherit them.
 * Returns the activated listening socket's fd (3), -1 when not activated,
 * or a negative errno with a cause when what was passed is unusable. */
int systemd_take_listen_fd(char **cause);

/* Open the notification socket if NOTIFY_SOCKET was set (called before
 * systemd_take_listen_fd unsets it: the address is remembered). */
int systemd_init(struct daemon *d);

/* Send "READY=1", "STOPPING=1", ...; a no-op without a manager. */
void systemd_notify(struct daemon *d, const char *state);

/* STATUS= with the counts of queued and running runs, sent only when it
 * changed since last time. */
void systemd_status(struct daemon *d);

/* The run events it listens to (subscribed at start-up): STATUS= follows
 * every change. */
void systemd_run_event(void *ud, struct run *r, enum run_event ev);

/* Start pinging WATCHDOG=1 at half of WATCHDOG_USEC from the loop. */
void systemd_watchdog_start(struct daemon *d);

/* Stop the watchdog timer (the daemon is stopping). */
void systemd_finish(struct daemon *d);

/* Close the notification socket and free what systemd_init made, after the
 * loop has ended. */
void systemd_free(struct daemon *d);

/* The web view (docs/web.md): an HTTP listener on the daemon's loop that
 * serves the page in web/ and a JSON API under /api/ over the history,
 * behind a token kept in the state directory. */
#pragma once

#include <stdbool.h>

#include "run.h"

struct daemon;

/* Listen on addr:port (port 0: a free one). An address that is not a
 * loopback one is refused unless remote_ok, and then logged as a warning.
 * Makes STATE/web.token (mode 0600) at the first start and writes
 * STATE/web.url. Already listening: 0, and nothing changes. -errno with
 * a message in *cause. */
int web_start(struct daemon *d, const char *addr, int port, bool remote_ok, char **cause);

/* Listen again where the last daemon did (STATE/web.url, written by
 * web_start), so an open page and its live logs carry on across a
 * restart; a loopback address only. Nothing there: 0. A failure is
 * logged, not returned: the daemon runs without its web view. */
void web_resume(struct daemon *d);

/* Whether the listener is up. */
bool web_listening(const struct daemon *d);

/* "http://127.0.0.1:PORT/" (malloc'd), and the token (the daemon's);
 * NULL when not listening. */
char *web_url(const struct daemon *d);
const char *web_token(const struct daemon *d);

/* A run event (subscribed by core at start-up): new lines and ends wake
 * the live logs that follow the run. ud is the daemon. */
void web_run_event(void *ud, struct run *r, enum run_event ev);

/* Stop listening; open streams end. */
void web_stop(struct daemon *d);

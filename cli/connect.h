/* A verb's connection to runyardd: the socket, autostart, calls, and saying why one failed. */
#pragma once

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "client.h"

struct ctx;

/* Resolve ctx->socket once; 0 or VERB_EXIT_USAGE (said why). */
int connect_socket(struct ctx *ctx);

/* Connect ctx->client once, starting a daemon for the default socket when
 * none answers; 0 or an exit status (said why). */
int connect_daemon(struct ctx *ctx);

/* Call op; on failure say why and return the exit status, else 0. */
int connect_call(struct ctx *ctx, const char *op, const cJSON *args, cJSON **ret_result);

/* Call a listing op and find the array key of its reply for a table. With
 * --json the reply is printed instead, and when the array is empty the
 * line none is: *ret_items is then NULL. 0 or an exit status; *ret_result
 * (the reply) is the caller's to free either way. */
int connect_list(struct ctx *ctx, const char *op, const cJSON *args, const char *key,
		 const char *none, cJSON **ret_result, const cJSON **ret_items);

/* Say why a call of op failed; returns the exit status that goes with it. */
int connect_report(const char *op, const struct client_error *err, int r);

/* Say why a connect failed, with a hint; returns the exit status. */
int connect_report_failure(const struct client_error *err, int r);

/* Whether a connect's error means that no daemon listens there. */
bool connect_absent(int r);

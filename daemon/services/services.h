/* Deployed models: scoring servers the daemon starts, checks over HTTP,
 * restarts when they die, and swaps without dropping a request. How it all
 * works is in docs/models.md. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct daemon;
struct request;

/* At start: bring every stored service up again. A server left running by
 * an earlier daemon keeps serving until its replacement is healthy. */
int services_start(struct daemon *d);

/* Daemon stopping: close every handle the services hold. Servers that serve
 * keep serving (they hold their listening sockets themselves) and are
 * replaced at the next start; servers still starting are killed. */
void services_shutdown(struct daemon *d);

/* Whether a service serves the model or is being switched to it; *ret_name
 * (malloc'd) names one. */
bool services_model_in_use(struct daemon *d, int64_t model_id, char **ret_name);

/* Whether a service's interpreter (serving or being started) is under dir:
 * an environment's build that env prune must keep. */
bool services_use_python_under(struct daemon *d, const char *dir);

/* The names of the services that serve the model, as a JSON array. */
int services_of_model_json(struct daemon *d, int64_t model_id, cJSON **ret);

/* Ops (the table is in dispatch.c). */
void services_op_deploy(struct request *req); /* model.deploy */
void services_op_list(struct request *req);
void services_op_show(struct request *req);
void services_op_logs(struct request *req);
void services_op_restart(struct request *req);
void services_op_delete(struct request *req);
void services_op_wait(struct request *req);

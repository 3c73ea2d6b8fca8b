/* Deployed models: scoring servers the daemon starts, checks over HTTP,
 * restarts when they die, and swaps without dropping a request. How it all
 * works is in docs/models.md. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct daemon;

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

/* ---- what the service ops (ops_service.c) ask and do ---- */

/* How long an instance may take to answer Healthy, by default (seconds). */
#define SERVICES_START_TIMEOUT_DEFAULT 120.0
/* The error code of a deployment whose instance did not start. */
#define PROTO_E_DEPLOYMENT_FAILED "DeploymentFailed"

struct service;

/* What an instance runs. */
struct services_config {
	int64_t model_id;
	char *model_ref; /* "name:version" */
	char *python;
	char *entry_script; /* relative to the source; NULL: no-code */
	char *snapshot;     /* the source's snapshot, with an entry script */
	char *source;       /* the directory it was taken from (for show) */
	double timeout;     /* seconds to answer Healthy */
	char *environment;  /* "NAME:VERSION" whose python this is; NULL: none */
	cJSON *vars;        /* that environment's variables; NULL: none */
	double cpu;         /* CPUs each instance is held to; 0: none */
	double memory_gb;   /* memory each instance is held to; 0: none */
};

void services_config_finish(struct services_config *c);

enum services_wait_kind {
	SERVICES_WAIT_ATTEMPT, /* deploy, restart: the attempt's outcome, an error if it failed */
	SERVICES_WAIT_SETTLED, /* service.wait: the service once nothing is starting */
};

/* Called once when what was waited for happened: with the service object
 * (the callee's to keep), or with an error code and message. */
typedef void (*services_wait_fn)(void *ud, cJSON *service, const char *code, const char *msg);

/* Whether the services are up (not stopping). */
bool services_open(struct daemon *d);

/* The service called name, or NULL. */
struct service *services_find(struct daemon *d, const char *name);

/* Whether an instance is being started or prepared, or a swap is pending. */
bool services_busy(const struct service *svc);

/* The service object of the protocol; every service's, sorted by name
 * (NULL when out of memory). */
cJSON *services_json(struct service *svc);
cJSON *services_list_json(struct daemon *d);

const char *services_name(const struct service *svc);
const char *services_log_path(const struct service *svc);
/* The model the current attempt starts (or serves). */
const char *services_attempt_model_ref(struct service *svc);

/* Call cb(ud, ...) once the current attempt ends (or the service settles). */
int services_add_waiter(struct service *svc, enum services_wait_kind kind, services_wait_fn cb,
                        void *ud);

/* service.restart: set the next attempt up (a swap when one serves), then
 * begin it with services_begin_attempt. */
int services_restart_prepare(struct service *svc);
void services_begin_attempt(struct service *svc);

/* Remove svc from the store and stop its instances; its waiters get
 * NotFound. -EIO when the store failed (svc is untouched then). */
int services_delete(struct service *svc);

/* model.deploy, once its files and environment are ready. */
struct services_deploy_args {
	const char *service;
	int port; /* 0: any free port */
	bool port_given;
	services_wait_fn cb; /* NULL: answer at once with *ret_now */
	void *ud;
};

/* Deploy cfg (taken, zeroed) to a new or existing service and begin an
 * attempt. < 0 with the reply's code and message (malloc'd) when it cannot;
 * a->ud is the caller's again then. */
int services_deploy(struct daemon *d, const struct services_deploy_args *a,
                    struct services_config *cfg, cJSON **ret_now, const char **ret_code,
                    char **ret_cause);

/* Environments: named, versioned definitions of the interpreter a run uses
 * (docs/environments.md). */
#pragma once

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

struct daemon;
struct request;
struct run;

/* An environment resolved for a run: its interpreter and variables. */
struct envs_resolved {
	char *name;
	int64_t version;
	char *hash;
	char *kind;
	char *python; /* the interpreter a .py program runs with */
	cJSON *vars;  /* object of strings */
	bool built;   /* python is made by a build in Preparing */
};

void envs_resolved_finish(struct envs_resolved *r);

/* Parse a conda specification (YAML text) into ret_spec {name, channels,
 * dependencies, pip}; a malformed one gets a cause naming line and column. */
int envs_conda_parse(const char *yaml, size_t len, const char *filename, cJSON **ret_spec,
                     char **cause);

/* Resolve NAME[:VERSION] (built-ins included) for a run. A venv or conda
 * environment's python is in its cache directory, built in Preparing. */
int envs_resolve(struct daemon *d, const char *ref, const char *path_env, struct envs_resolved *ret,
                 char **cause);

void envs_op_create(struct request *req);
void envs_op_list(struct request *req);
void envs_op_show(struct request *req);
void envs_op_delete(struct request *req);
void envs_op_prune(struct request *req);

/* Called when the environment a run waits for is ready (err 0) or failed. */
typedef void (*envs_ready_fn)(struct run *r, int err, const char *cause);
/* The same for anything else that waits for a build (a service). */
typedef void (*envs_built_fn)(void *ud, int err, const char *cause);

/* Before a run starts: 0 when its environment is ready (or it has none),
 * 1 when it waits for a build (cb is called later; the run is busy till
 * then), a negative errno with a cause when a build cannot start. */
int envs_prepare(struct run *r, envs_ready_fn cb, char **cause);

/* The same for anything else that needs hash's build (a service): 0 when it
 * is cached, 1 when cb(ud, ...) is called once it is built or failed (or
 * with -ECANCELED at shutdown), a negative errno with a cause when a build
 * cannot start. */
int envs_build(struct daemon *d, const char *hash, envs_built_fn cb, void *ud, char **cause);

/* At shutdown: stop builds and let go of the runs waiting for them. */
void envs_shutdown(struct daemon *d);

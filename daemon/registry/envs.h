/* Environments: named, versioned definitions of the interpreter a run uses
 * (docs/environments.md). */
#pragma once

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

struct daemon;
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

/* What the env ops (ops_env.c) use of the registry. */

/* The columns of an environment row, then the table: "SELECT " ENVS_COLUMNS
 * "WHERE ...". */
#define ENVS_COLUMNS "name, version, hash, definition, created_at FROM environments "

/* The create request's arguments into the normalised definition: every key
 * present, in a fixed order, so equal definitions print (and hash) alike. */
int envs_definition_from_args(const cJSON *args, cJSON **ret, char **cause);

/* The SHA-256 of a definition's text, as hex. */
int envs_hash_text(const char *text, char ret[65]);

/* Is name one of the built-in environments? */
bool envs_is_builtin(const char *name);

/* The environment object of the protocol; takes ownership of def. */
cJSON *envs_json(const char *name, int64_t version, const char *hash, cJSON *def,
                 double created, bool builtin);

/* Append the built-in environments' objects to list. */
void envs_add_builtins(cJSON *list);

/* Parse NAME[:VERSION]; -EINVAL with a message in *cause. */
int envs_parse_ref(const char *ref, char **ret_name, int64_t *ret_version, char **cause);

/* The row of name (version 0: the latest) into ret (an env object). */
int envs_find(struct daemon *d, const char *name, int64_t version, cJSON **ret);

/* Look NAME[:VERSION] up, built-ins included; cause on failure. */
int envs_lookup(struct daemon *d, const char *ref, cJSON **ret, char **cause);

/* <state>/envs/<hash><suffix>, malloc'd (NULL when out of memory). */
char *envs_path(struct daemon *d, const char *hash, const char *suffix);

/* Is the build of hash in use here: being built, or the interpreter of a
 * run that has not ended? (Services are asked by whoever prunes.) */
bool envs_build_in_use(struct daemon *d, const char *hash);

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

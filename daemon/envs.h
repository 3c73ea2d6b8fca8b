/* Environments: named, versioned definitions of the interpreter a run uses
 * (docs/environments.md). */
#pragma once

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

struct daemon;
struct request;

/* An environment resolved for a run: its interpreter and variables. */
struct envs_resolved {
	char *name;
	int64_t version;
	char *hash;
	char *kind;
	char *python; /* the interpreter a .py program runs with */
	cJSON *vars;  /* object of strings */
};

void envs_resolved_finish(struct envs_resolved *r);

/* Parse a conda specification (YAML text) into ret_spec {name, channels,
 * dependencies, pip}; a malformed one gets a cause naming line and column. */
int envs_conda_parse(const char *yaml, size_t len, const char *filename, cJSON **ret_spec,
                     char **cause);

/* Resolve NAME[:VERSION] (built-ins included) for a run. Kinds that need a
 * build are refused with a cause until builds exist. */
int envs_resolve(struct daemon *d, const char *ref, const char *path_env, struct envs_resolved *ret,
                 char **cause);

void envs_op_create(struct request *req);
void envs_op_list(struct request *req);
void envs_op_show(struct request *req);
void envs_op_delete(struct request *req);

/* What slurm.c (the target) and slurm_probe.c (discovery) share: the REST
 * API's versions and shapes, and talking to slurmrestd (slurm_api.c). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "rest.h"
#include "slurm.h"

/* One API version: its paths and JSON shapes. Another version is one more
 * entry (and functions where its shapes differ). */
struct slurm_job {
	int64_t id;
	const char *name;
	const char *state;
	const char *reason;
	int64_t exit_code; /* a wait status: code << 8 | signal */
	int64_t time_limit; /* minutes */
};

struct slurm_spec {
	const char *name;
	const char *script;
	const char *cwd;
	const char *output;
	char *const *env;
	const char *partition;
	const struct slurm_resources *res;
	int64_t time_limit_min;
};

struct slurm_api {
	const char *version;
	const char *submit_path; /* POST */
	const char *jobs_path;   /* GET, ?update_time=UNIX */
	const char *job_fmt;     /* DELETE; printf with the job id */
	const char *ping_path;   /* GET */
	cJSON *(*submit_body)(const struct slurm_spec *spec);
	int (*submit_job_id)(const cJSON *reply, int64_t *ret);
	int (*parse_job)(const cJSON *item, struct slurm_job *ret);
};

extern const struct slurm_api slurm_apis[];
extern const size_t slurm_n_apis;

/* The API of that version; NULL when it is not one runyard speaks. */
const struct slurm_api *slurm_api_find(const char *version);

const char *slurm_json_str(const cJSON *o, const char *name);
int64_t slurm_json_int(const cJSON *o, const char *name, int64_t dflt);
/* A string member of a target's config, copied; NULL when absent or empty. */
char *slurm_config_str(const cJSON *config, const char *name);

const char *slurm_daemon_user(void);

/* Headers for slurmrestd: a JWT from the daemon's environment when the
 * target names one (rest_auth/jwt); nothing for rest_auth/local, which
 * knows the caller from the Unix socket. */
struct slurm_auth {
	char *lines[3];
};

int slurm_auth_make(const char *token_env, const char *user, struct slurm_auth *a, char **cause);
void slurm_auth_finish(struct slurm_auth *a);

/* Slurm's own words from a reply: errors[].error and .description. */
char *slurm_reply_errors(const cJSON *reply);
/* "HTTP <status>: <Slurm's words, or the start of the body>". */
char *slurm_reply_message(const struct rest_reply *rep, cJSON *j);

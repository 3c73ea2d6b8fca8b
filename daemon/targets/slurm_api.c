/* The Slurm REST API as runyard speaks it: one entry per API version with
 * its paths and JSON shapes, Slurm's job states, and the few helpers every
 * request to slurmrestd needs (authentication headers, Slurm's own error
 * words). The target (slurm.c) and discovery (slurm_probe.c) use them. */
#include "slurm_priv.h"

#include <errno.h>
#include <math.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "msg.h"

const char *slurm_json_str(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

int64_t slurm_json_int(const cJSON *o, const char *name, int64_t dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : dflt;
}

/* v0.0.38 (Slurm 22.05): environment is an object, nodes [min, max],
 * memory in MB, time limits in minutes, job_state a string. */
static cJSON *v38_submit_body(const struct slurm_spec *s)
{
	cJSON *body = cJSON_CreateObject(), *job, *env;

	cJSON_AddStringToObject(body, "script", s->script);
	job = cJSON_AddObjectToObject(body, "job");
	cJSON_AddStringToObject(job, "name", s->name);
	cJSON_AddStringToObject(job, "comment", "runyard");
	cJSON_AddStringToObject(job, "current_working_directory", s->cwd);
	cJSON_AddStringToObject(job, "standard_output", s->output);
	cJSON_AddStringToObject(job, "standard_error", s->output);
	cJSON_AddBoolToObject(job, "requeue", false);
	cJSON_AddNumberToObject(job, "tasks", s->res->nodes > 1 ? s->res->nodes : 1);
	if (s->partition) {
		cJSON_AddStringToObject(job, "partition", s->partition);
	}
	if (s->res->nodes > 0) {
		cJSON *n = cJSON_AddArrayToObject(job, "nodes");
		cJSON_AddItemToArray(n, cJSON_CreateNumber(s->res->nodes));
		cJSON_AddItemToArray(n, cJSON_CreateNumber(s->res->nodes));
	}
	if (s->res->cpus > 0) {
		cJSON_AddNumberToObject(job, "cpus_per_task", s->res->cpus);
	}
	if (s->res->memory_gb > 0) {
		cJSON_AddNumberToObject(job, "memory_per_node", ceil(s->res->memory_gb * 1024));
	}
	if (s->time_limit_min > 0) {
		cJSON_AddNumberToObject(job, "time_limit", (double)s->time_limit_min);
	}
	env = cJSON_AddObjectToObject(job, "environment");
	for (char *const *e = s->env; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		if (eq && eq > *e) {
			char *k = strndup(*e, (size_t)(eq - *e));
			if (k && !cJSON_GetObjectItemCaseSensitive(env, k)) {
				cJSON_AddStringToObject(env, k, eq + 1);
			}
			free(k);
		}
	}
	return body;
}

static int v38_submit_job_id(const cJSON *reply, int64_t *ret)
{
	int64_t id = slurm_json_int(reply, "job_id", 0);

	if (id <= 0) {
		return -EBADMSG;
	}
	*ret = id;
	return 0;
}

static int v38_parse_job(const cJSON *item, struct slurm_job *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->id = slurm_json_int(item, "job_id", 0);
	ret->name = slurm_json_str(item, "name");
	ret->state = slurm_json_str(item, "job_state");
	ret->reason = slurm_json_str(item, "state_reason");
	ret->exit_code = slurm_json_int(item, "exit_code", 0);
	ret->time_limit = slurm_json_int(item, "time_limit", 0);
	return ret->id > 0 && ret->state ? 0 : -EBADMSG;
}

const struct slurm_api slurm_apis[] = {
	{
		.version = "v0.0.38",
		.submit_path = "/slurm/v0.0.38/job/submit",
		.jobs_path = "/slurm/v0.0.38/jobs",
		.job_fmt = "/slurm/v0.0.38/job/%lld",
		.ping_path = "/slurm/v0.0.38/ping",
		.submit_body = v38_submit_body,
		.submit_job_id = v38_submit_job_id,
		.parse_job = v38_parse_job,
	},
};
const size_t slurm_n_apis = sizeof(slurm_apis) / sizeof(slurm_apis[0]);

const char *slurm_versions_known(void)
{
	return "v0.0.38";
}

const struct slurm_api *slurm_api_find(const char *version)
{
	for (size_t i = 0; version && i < slurm_n_apis; i++) {
		if (strcmp(slurm_apis[i].version, version) == 0) {
			return &slurm_apis[i];
		}
	}
	return NULL;
}

/* Job states */

static const struct {
	const char *state;
	enum slurm_phase phase;
	const char *code; /* final states: the run's error code */
} states[] = {
	{"PENDING", SLURM_PHASE_PENDING, NULL},
	{"CONFIGURING", SLURM_PHASE_PENDING, NULL}, /* allocated, nodes booting */
	{"POWER_UP_NODE", SLURM_PHASE_PENDING, NULL},
	{"STAGE_IN", SLURM_PHASE_PENDING, NULL},
	{"REQUEUED", SLURM_PHASE_PENDING, NULL},
	{"REQUEUE_FED", SLURM_PHASE_PENDING, NULL},
	{"REQUEUE_HOLD", SLURM_PHASE_PENDING, NULL},
	{"RESV_DEL_HOLD", SLURM_PHASE_PENDING, NULL},
	{"SPECIAL_EXIT", SLURM_PHASE_PENDING, NULL},
	{"RUNNING", SLURM_PHASE_RUNNING, NULL},
	{"SUSPENDED", SLURM_PHASE_RUNNING, NULL},
	{"STOPPED", SLURM_PHASE_RUNNING, NULL},
	{"SIGNALING", SLURM_PHASE_RUNNING, NULL},
	{"RESIZING", SLURM_PHASE_RUNNING, NULL},
	{"COMPLETING", SLURM_PHASE_ENDING, NULL},
	{"STAGE_OUT", SLURM_PHASE_ENDING, NULL},
	{"UPDATE_DB", SLURM_PHASE_ENDING, NULL},
	{"COMPLETED", SLURM_PHASE_ENDED, NULL},
	{"CANCELLED", SLURM_PHASE_ENDED, NULL},
	{"FAILED", SLURM_PHASE_ENDED, "JobFailed"},
	{"TIMEOUT", SLURM_PHASE_ENDED, "Timeout"},
	{"DEADLINE", SLURM_PHASE_ENDED, "Timeout"},
	{"NODE_FAIL", SLURM_PHASE_ENDED, "NodeFail"},
	{"BOOT_FAIL", SLURM_PHASE_ENDED, "BootFail"},
	{"OUT_OF_MEMORY", SLURM_PHASE_ENDED, "OutOfMemory"},
	{"PREEMPTED", SLURM_PHASE_ENDED, "Preempted"},
	{"REVOKED", SLURM_PHASE_ENDED, "Revoked"},
};

enum slurm_phase slurm_state_phase(const char *state)
{
	for (size_t i = 0; state && i < sizeof(states) / sizeof(states[0]); i++) {
		if (strcmp(states[i].state, state) == 0) {
			return states[i].phase;
		}
	}
	return SLURM_PHASE_UNKNOWN;
}

const char *slurm_state_code(const char *state)
{
	for (size_t i = 0; state && i < sizeof(states) / sizeof(states[0]); i++) {
		if (strcmp(states[i].state, state) == 0) {
			return states[i].code;
		}
	}
	return NULL;
}

/* Talking to slurmrestd */

const char *slurm_daemon_user(void)
{
	struct passwd *pw = getpwuid(geteuid());
	return pw ? pw->pw_name : "root";
}

int slurm_auth_make(const char *token_env, const char *user, struct slurm_auth *a, char **cause)
{
	memset(a, 0, sizeof(*a));
	if (!token_env) {
		return 0;
	}
	const char *tok = getenv(token_env);
	if (!tok || !*tok) {
		*cause = msg_strdupf("the environment variable %s (--token-env) is not set in "
				     "runyardd's environment; start runyardd with it set to a "
				     "Slurm JWT (scontrol token)",
				     token_env);
		return -EINVAL;
	}
	a->lines[0] = msg_strdupf("X-SLURM-USER-TOKEN: %s", tok);
	a->lines[1] = msg_strdupf("X-SLURM-USER-NAME: %s", user ? user : slurm_daemon_user());
	if (!a->lines[0] || !a->lines[1]) {
		return -ENOMEM;
	}
	return 0;
}

void slurm_auth_finish(struct slurm_auth *a)
{
	free(a->lines[0]);
	free(a->lines[1]);
}

/* Slurm's own words from a reply: errors[].error and .description. */
char *slurm_reply_errors(const cJSON *reply)
{
	const cJSON *errs = cJSON_GetObjectItemCaseSensitive(reply, "errors"), *e;
	char *out = NULL;

	cJSON_ArrayForEach(e, errs) {
		const char *what = slurm_json_str(e, "description");
		const char *err = slurm_json_str(e, "error");
		char *next;
		if (!what || !*what) {
			what = err;
		}
		if (!what || !*what) {
			continue;
		}
		next = out ? msg_strdupf("%s; %s", out, what) : strdup(what);
		free(out);
		out = next;
	}
	return out;
}

char *slurm_reply_message(const struct rest_reply *rep, cJSON *j)
{
	char *errs = j ? slurm_reply_errors(j) : NULL;

	if (errs) {
		char *m = msg_strdupf("HTTP %ld: %s", rep->status, errs);
		free(errs);
		return m;
	}
	return msg_strdupf("HTTP %ld: %.200s", rep->status, rep->len ? rep->body : "(no body)");
}

char *slurm_config_str(const cJSON *config, const char *name)
{
	const char *v = slurm_json_str(config, name);
	return v && *v ? strdup(v) : NULL;
}

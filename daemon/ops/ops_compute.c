/* The compute ops: compute.create (which asks the Slurm server first),
 * compute.list, compute.show and compute.delete. */
#include "optable.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compute.h"
#include "context.h"
#include "log.h"
#include "msg.h"
#include "proto.h"
#include "request.h"
#include "rest.h"
#include "slurm.h"
#include "store.h"
#include "target.h"
#include "util.h"

/* A compute.create waiting for its server's answer. */
struct compute_create {
	struct compute_create *next;
	struct daemon *d;
	struct request *req;
	char *name;
	cJSON *config;
	struct slurm_probe *probe;
};

static bool valid_word(const char *s, const char *extra)
{
	if (!*s || strlen(s) > 255) {
		return false;
	}
	for (const char *c = s; *c; c++) {
		if (!isalnum((unsigned char)*c) && !strchr(extra, *c)) {
			return false;
		}
	}
	return true;
}

static bool valid_env_name(const char *s)
{
	if (!*s || isdigit((unsigned char)*s)) {
		return false;
	}
	return valid_word(s, "_");
}

static void create_remove(struct daemon *d, struct compute_create *c)
{
	for (struct compute_create **pp = &d->creates; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	request_release(c->req);
	free(c->name);
	cJSON_Delete(c->config);
	free(c);
}

/* Daemon stopping (compute_shutdown): end the creates still waiting. */
static void drop_creates(struct daemon *d)
{
	while (d->creates) {
		struct compute_create *c = d->creates;
		d->creates = c->next;
		slurm_probe_cancel(c->probe);
		request_error(c->req, PROTO_E_SHUTTING_DOWN,
			      "runyardd is stopping; compute target '%s' was not created", c->name);
		request_release(c->req);
		free(c->name);
		cJSON_Delete(c->config);
		free(c);
	}
}

static void probe_cb(void *ud, int err, const char *version, const char *message)
{
	struct compute_create *c = ud;
	struct daemon *d = c->d;
	struct target *t = NULL;
	char *config = NULL, *cause = NULL;
	double now = util_now();

	c->probe = NULL;
	if (err < 0) {
		const char *code = err == -EACCES	   ? PROTO_E_PERMISSION
				   : err == -EPROTONOSUPPORT ? PROTO_E_INVALID_ARGUMENT
							     : PROTO_E_UNAVAILABLE;
		request_error(c->req, code, "compute target '%s' was not created: %s", c->name,
			      message);
		goto out;
	}
	if (d->stopping) {
		request_error(c->req, PROTO_E_SHUTTING_DOWN, "runyardd is stopping");
		goto out;
	}
	cJSON_AddStringToObject(c->config, "api", version);
	config = cJSON_PrintUnformatted(c->config);
	t = compute_target_new(d, c->name, &slurm_ops);
	if (!config || !t) {
		request_error(c->req, PROTO_E_INTERNAL, "out of memory");
		goto out;
	}
	t->config = c->config;
	c->config = NULL;
	t->created_at = now;
	err = compute_target_open(d, t, &cause);
	if (err < 0) {
		request_error(c->req, PROTO_E_INTERNAL, "compute target '%s' cannot be set up: %s",
			      c->name, cause ? cause : strerror(-err));
		goto out;
	}
	err = store_target_insert(d->store, t->name, "slurm", config, now);
	if (err < 0) {
		if (err == -EEXIST) {
			request_error(c->req, PROTO_E_CONFLICT, "compute target '%s' already exists",
				      c->name);
		} else {
			request_error(c->req, PROTO_E_INTERNAL, "recording compute target '%s' "
				      "failed: %s", c->name, store_errmsg(d->store));
		}
		slurm_target_close(t);
		goto out;
	}
	compute_target_add(d, t);
	log_info("compute target %s created (slurm at %s, API %s)", t->name,
		 cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t->config, "rest")), version);
	request_reply(c->req, target_json(t));
	t = NULL;
out:
	compute_target_free(t);
	free(config);
	free(cause);
	create_remove(d, c);
}

static void ops_compute_create(struct request *req)
{
	struct daemon *d = req->d;
	const char *name, *type = NULL, *rest = NULL, *token_env = NULL, *user = NULL,
			  *partition = NULL, *shared_dir = NULL;
	int64_t max_jobs = COMPUTE_MAX_JOBS_DEFAULT;
	char *cause = NULL, *dir = NULL;
	struct compute_create *c = NULL;
	struct stat st;

	if (msg_arg_string(req->args, "name", true, &name, &cause) < 0 ||
	    msg_arg_string(req->args, "type", true, &type, &cause) < 0 ||
	    msg_arg_string(req->args, "rest", true, &rest, &cause) < 0 ||
	    msg_arg_string(req->args, "token_env", false, &token_env, &cause) < 0 ||
	    msg_arg_string(req->args, "user", false, &user, &cause) < 0 ||
	    msg_arg_string(req->args, "partition", false, &partition, &cause) < 0 ||
	    msg_arg_string(req->args, "shared_dir", false, &shared_dir, &cause) < 0 ||
	    msg_arg_int(req->args, "max_jobs", false, 1, COMPUTE_MAX_JOBS_MAX, &max_jobs, &cause) < 0) {
		request_arg_error(req, cause);
		return;
	}
	if (!util_valid_name(name) || name[0] == '(') {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
			      "compute target name '%s' is not valid: use letters, digits, '.', '_' "
			      "and '-', starting with a letter or digit",
			      name);
		return;
	}
	if (target_find(d, name)) {
		request_error(req, PROTO_E_CONFLICT, "compute target '%s' already exists%s", name,
			      strcmp(name, TARGET_LOCAL) == 0 ? " (it is built in)" : "");
		return;
	}
	for (struct compute_create *p = d->creates; p; p = p->next) {
		if (strcmp(p->name, name) == 0) {
			request_error(req, PROTO_E_CONFLICT,
				      "compute target '%s' is being created already", name);
			return;
		}
	}
	if (strcmp(type, "slurm") != 0) {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
			      "compute target type '%s' is not known (runyard knows: slurm)", type);
		return;
	}
	if (!rest_base_valid(rest, &cause)) {
		request_error(req, PROTO_E_INVALID_ARGUMENT, "--rest %s", cause ? cause : rest);
		free(cause);
		return;
	}
	if (token_env) {
		if (!valid_env_name(token_env)) {
			request_error(req, PROTO_E_INVALID_ARGUMENT,
				      "--token-env '%s' is not an environment variable name",
				      token_env);
			return;
		}
		if (!getenv(token_env) || !*getenv(token_env)) {
			request_error(req, PROTO_E_INVALID_ARGUMENT,
				      "the environment variable %s (--token-env) is not set in "
				      "runyardd's environment; start runyardd with it set to a Slurm "
				      "JWT (the token itself is never stored)",
				      token_env);
			return;
		}
	}
	if (user && !valid_word(user, "._-")) {
		request_error(req, PROTO_E_INVALID_ARGUMENT, "--user '%s' is not a user name", user);
		return;
	}
	if (partition && !valid_word(partition, "._-,")) {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
			      "--partition '%s' is not a partition name", partition);
		return;
	}
	if (shared_dir) {
		if (shared_dir[0] != '/') {
			request_error(req, PROTO_E_INVALID_ARGUMENT,
				      "--shared-dir '%s' must be an absolute path", shared_dir);
			return;
		}
		if (stat(shared_dir, &st) < 0) {
			request_error(req, PROTO_E_INVALID_ARGUMENT, "--shared-dir %s: %s",
				      shared_dir, strerror(errno));
			return;
		}
		if (!S_ISDIR(st.st_mode)) {
			request_error(req, PROTO_E_INVALID_ARGUMENT,
				      "--shared-dir %s is not a directory", shared_dir);
			return;
		}
		if (access(shared_dir, W_OK | X_OK) < 0) {
			request_error(req, PROTO_E_PERMISSION,
				      "--shared-dir %s is not writable by runyardd: %s", shared_dir,
				      strerror(errno));
			return;
		}
		dir = realpath(shared_dir, NULL);
	} else {
		dir = strdup(d->runs_dir);
	}
	c = calloc(1, sizeof(*c));
	if (!dir || !c) {
		goto oom;
	}
	c->d = d;
	c->name = strdup(name);
	c->config = cJSON_CreateObject();
	c->req = request_hold(req);
	if (!c->name || !c->config || !c->req) {
		goto oom;
	}
	cJSON_AddStringToObject(c->config, "rest", rest);
	cJSON_AddStringToObject(c->config, "shared_dir", dir);
	cJSON_AddNumberToObject(c->config, "max_jobs", (double)max_jobs);
	if (token_env) {
		cJSON_AddStringToObject(c->config, "token_env", token_env);
	}
	if (user) {
		cJSON_AddStringToObject(c->config, "user", user);
	}
	if (partition) {
		cJSON_AddStringToObject(c->config, "partition", partition);
	}
	free(dir);
	c->next = d->creates;
	d->creates = c;
	compute_shutdown_hook(drop_creates);
	int err = slurm_probe_start(d, c->config, probe_cb, c, &c->probe);
	if (err < 0) {
		/* Nothing was sent: the probe's callback will not run. */
		request_error(req, PROTO_E_INTERNAL, "cannot ask slurmrestd: %s", strerror(-err));
		create_remove(d, c);
	}
	return;
oom:
	request_error(req, PROTO_E_INTERNAL, "out of memory");
	free(dir);
	if (c) {
		request_release(c->req);
		free(c->name);
		cJSON_Delete(c->config);
		free(c);
	}
}

static void ops_compute_list(struct request *req)
{
	cJSON *res = cJSON_CreateObject();
	cJSON *arr = cJSON_AddArrayToObject(res, "targets");

	for (struct target *t = req->d->targets; t; t = t->next) {
		if (!compute_target_missing(t)) {
			cJSON_AddItemToArray(arr, target_json(t));
		}
	}
	request_reply(req, res);
}

static struct target *arg_target(struct request *req)
{
	const char *name;
	char *cause = NULL;
	struct target *t;

	if (msg_arg_string(req->args, "name", true, &name, &cause) < 0) {
		request_arg_error(req, cause);
		return NULL;
	}
	t = target_find(req->d, name);
	if (!t || compute_target_missing(t)) {
		request_error(req, PROTO_E_NOT_FOUND,
			      "there is no compute target '%s' (see 'runyard compute list')", name);
		return NULL;
	}
	return t;
}

static void ops_compute_show(struct request *req)
{
	struct target *t = arg_target(req);

	if (t) {
		request_reply(req, target_json(t));
	}
}

static void ops_compute_delete(struct request *req)
{
	struct daemon *d = req->d;
	struct target *t = arg_target(req);
	int64_t n = 0;
	int err;

	if (!t) {
		return;
	}
	if (strcmp(t->name, TARGET_LOCAL) == 0) {
		request_error(req, PROTO_E_CONFLICT, "the local target is built in and cannot be "
						     "deleted");
		return;
	}
	err = store_target_active_runs(d->store, t->name, &n);
	if (err == 0 && n > 0) {
		request_error(req, PROTO_E_CONFLICT,
			      "compute target '%s' has %lld run(s) that have not ended; cancel "
			      "them or wait, then delete it",
			      t->name, (long long)n);
		return;
	}
	if (err == 0) {
		err = store_target_delete(d->store, t->name);
	}
	if (err < 0) {
		request_error(req, PROTO_E_INTERNAL, "deleting compute target '%s' failed: %s",
			      t->name, store_errmsg(d->store));
		return;
	}
	for (struct target **pp = &d->targets; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	}
	log_info("compute target %s deleted", t->name);
	cJSON *res = cJSON_CreateObject();
	cJSON_AddStringToObject(res, "name", t->name);
	slurm_target_close(t);
	compute_target_free(t);
	request_reply(req, res);
}

const struct op_entry ops_compute_entries[] = {
	{"compute.create", ops_compute_create, OP_NEW_WORK},
	{"compute.list", ops_compute_list, 0},
	{"compute.show", ops_compute_show, 0},
	{"compute.delete", ops_compute_delete, 0},
	{0},
};

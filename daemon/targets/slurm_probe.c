/* Discovery: which Slurm REST API versions a server offers (its OpenAPI
 * document, else a ping per known version), before a target is created. */
#include "slurm_priv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "context.h"
#include "msg.h"
#include "rest.h"

#define PROBE_TIMEOUT_MS 10000

/* Discovery: which versions the server offers */

struct slurm_probe {
	struct daemon *d;
	struct rest_client *rest;
	struct rest_req *req;
	char *base, *token_env, *user;
	slurm_probe_cb cb;
	void *ud;
	int step; /* 0: /openapi/v3, 1: /openapi, 2..: ping of slurm_apis[step - 2], then the ping */
	const struct slurm_api *found;
	bool pinging;
};

static void probe_free(struct slurm_probe *p)
{
	rest_client_close(p->rest);
	free(p->base);
	free(p->token_env);
	free(p->user);
	free(p);
}

static void probe_finish(struct slurm_probe *p, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void probe_finish(struct slurm_probe *p, int err, const char *fmt, ...)
{
	char *msg = NULL;

	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		if (vasprintf(&msg, fmt, ap) < 0) {
			msg = NULL;
		}
		va_end(ap);
	}
	p->cb(p->ud, err, err == 0 ? p->found->version : NULL, msg ? msg : "");
	free(msg);
	probe_free(p);
}

static void probe_next(struct slurm_probe *p);

/* The versions an OpenAPI document offers, as "v0.0.39, v0.0.40". */
static char *offered_versions(const cJSON *paths)
{
	const cJSON *kv;
	char *out = NULL;

	cJSON_ArrayForEach(kv, paths) {
		const char *k = kv->string;
		char v[32];
		if (strncmp(k, "/slurm/", 7) != 0 || sscanf(k + 7, "%31[^/]", v) != 1) {
			continue;
		}
		if (out && strstr(out, v)) {
			continue;
		}
		char *next = out ? msg_strdupf("%s, %s", out, v) : strdup(v);
		free(out);
		out = next;
	}
	return out;
}

static void probe_reply_cb(void *ud, const struct rest_reply *rep)
{
	struct slurm_probe *p = ud;
	cJSON *j = NULL;

	p->req = NULL;
	if (rep->err < 0) {
		probe_finish(p, rep->err, "cannot reach slurmrestd at %s: %s", p->base,
			     rep->message);
		return;
	}
	if (rep->status == 401 || rep->status == 403) {
		char *msg = slurm_reply_message(rep, NULL);
		probe_finish(p, -EACCES,
			     "slurmrestd at %s refused runyard's credentials (%s); check --token-env "
			     "and --user",
			     p->base, msg ? msg : "");
		free(msg);
		return;
	}
	if (p->pinging) {
		char *msg = NULL;
		j = cJSON_ParseWithLength(rep->body, rep->len);
		msg = j ? slurm_reply_errors(j) : NULL;
		if (rep->status != 200 || msg) {
			char *m = msg ? msg : slurm_reply_message(rep, j);
			probe_finish(p, -EIO,
				     "slurmrestd at %s answers, but its controller does not (%s)",
				     p->base, m ? m : "");
			free(m);
		} else {
			probe_finish(p, 0, NULL);
		}
		cJSON_Delete(j);
		return;
	}
	if (p->step <= 1) {
		const cJSON *paths;
		j = rep->status == 200 ? cJSON_ParseWithLength(rep->body, rep->len) : NULL;
		paths = cJSON_GetObjectItemCaseSensitive(j, "paths");
		if (cJSON_IsObject(paths)) {
			for (size_t i = 0; i < slurm_n_apis && !p->found; i++) {
				if (cJSON_GetObjectItemCaseSensitive(paths, slurm_apis[i].submit_path) &&
				    cJSON_GetObjectItemCaseSensitive(paths, slurm_apis[i].jobs_path)) {
					p->found = &slurm_apis[i];
				}
			}
			if (!p->found) {
				char *offered = offered_versions(paths);
				probe_finish(p, -EPROTONOSUPPORT,
					     "slurmrestd at %s offers API version(s) %s; runyard "
					     "speaks %s (start slurmrestd with -s openapi/%s)",
					     p->base, offered ? offered : "(none)",
					     slurm_versions_known(), slurm_apis[0].version);
				free(offered);
				cJSON_Delete(j);
				return;
			}
			cJSON_Delete(j);
			p->pinging = true;
			probe_next(p);
			return;
		}
		cJSON_Delete(j);
		p->step++;
		probe_next(p);
		return;
	}
	/* Trying each known version's ping. */
	if (rep->status == 200) {
		p->found = &slurm_apis[p->step - 2];
		p->pinging = true;
		probe_next(p);
		return;
	}
	p->step++;
	if ((size_t)p->step - 2 >= slurm_n_apis) {
		probe_finish(p, -EPROTONOSUPPORT,
			     "slurmrestd at %s serves none of the API versions runyard speaks (%s)",
			     p->base, slurm_versions_known());
		return;
	}
	probe_next(p);
}

static void probe_next(struct slurm_probe *p)
{
	struct slurm_auth a;
	char *cause = NULL;
	const char *path;
	int err;

	if (p->pinging) {
		path = p->found->ping_path;
	} else if (p->step == 0) {
		path = "/openapi/v3";
	} else if (p->step == 1) {
		path = "/openapi";
	} else {
		path = slurm_apis[p->step - 2].ping_path;
	}
	err = slurm_auth_make(p->token_env, p->user, &a, &cause);
	if (err == 0) {
		const struct rest_call call = {
			.method = "GET",
			.base = p->base,
			.path = path,
			.headers = (const char *const *)a.lines,
			.timeout_ms = PROBE_TIMEOUT_MS,
			.max_body = 64u << 20,
		};
		err = rest_request(p->rest, &call, probe_reply_cb, p, &p->req);
	}
	slurm_auth_finish(&a);
	if (err < 0) {
		probe_finish(p, err, "%s", cause ? cause : strerror(-err));
	}
	free(cause);
}

int slurm_probe_start(struct daemon *d, const cJSON *config, slurm_probe_cb cb, void *ud,
		      struct slurm_probe **ret)
{
	struct slurm_probe *p = calloc(1, sizeof(*p));
	int err;

	if (!p) {
		return -ENOMEM;
	}
	p->d = d;
	p->cb = cb;
	p->ud = ud;
	p->base = slurm_config_str(config, "rest");
	p->token_env = slurm_config_str(config, "token_env");
	p->user = slurm_config_str(config, "user");
	err = p->base ? rest_client_create(d->loop, &p->rest) : -EINVAL;
	if (err < 0) {
		probe_free(p);
		return err;
	}
	*ret = p;
	probe_next(p);
	return 0;
}

void slurm_probe_cancel(struct slurm_probe *p)
{
	if (p) {
		probe_free(p);
	}
}

/* The instances of the services: a service's log and its rotation; an
 * instance's process, checks, drain and exit; and starting one (its
 * source, its environment, the restart backoff). */
#include "services_priv.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sqlite3.h>
#include <uv.h>
#include "context.h"
#include "enforce.h"
#include "httpcheck.h"
#include "log.h"
#include "models.h"
#include "msg.h"
#include "snapshot.h"
#include "tracking.h"
#include "util.h"

extern char **environ;

/* ---- the log ---- */

/* Cutting a log that outgrew LOG_MAX: copy it to output.log.1, then empty
 * it. Servers write with O_APPEND, so they go on at the new end; what they
 * write between the copy and the truncation is lost (logrotate's
 * copytruncate). */
struct rotate_job {
	uv_work_t work;
	struct service *svc;
	char *path;
};

static void rotate_work(uv_work_t *w)
{
	struct rotate_job *j = w->data;
	char *old = msg_strdupf("%s.1", j->path), *tmp = msg_strdupf("%s.1.tmp", j->path);
	char buf[65536];
	int in = -1, out = -1;
	ssize_t n;
	bool ok = true;

	if (!old || !tmp) {
		goto out;
	}
	in = open(j->path, O_RDONLY | O_CLOEXEC);
	out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (in < 0 || out < 0) {
		goto out;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		if (write(out, buf, (size_t)n) != n) {
			ok = false;
			break;
		}
	}
	if (ok && n == 0 && rename(tmp, old) == 0) {
		if (truncate(j->path, 0) < 0) {
			/* the log grows on; the next check tries again */
		}
	} else {
		unlink(tmp);
	}
out:
	if (in >= 0) {
		close(in);
	}
	if (out >= 0) {
		close(out);
	}
	free(old);
	free(tmp);
}

static void rotate_done(uv_work_t *w, int status)
{
	struct rotate_job *j = w->data;

	j->svc->rotating = false;
	free(j->path);
	services_unref(j->svc);
	free(j);
}

static void maybe_rotate(struct service *svc)
{
	struct rotate_job *j;
	struct stat st;

	if (svc->rotating || svc->deleted || stat(svc->log_path, &st) < 0 ||
	    st.st_size <= LOG_MAX) {
		return;
	}
	j = calloc(1, sizeof(*j));
	if (!j || !(j->path = strdup(svc->log_path))) {
		free(j);
		return;
	}
	j->work.data = j;
	j->svc = svc;
	svc->refs++;
	svc->rotating = true;
	if (uv_queue_work(svc->mgr->d->loop, &j->work, rotate_work, rotate_done) < 0) {
		svc->rotating = false;
		svc->refs--;
		free(j->path);
		free(j);
	}
}

/* ---- instances ---- */

static void instance_close_cb(uv_handle_t *h)
{
	struct instance *inst = h->data;

	if (--inst->handles > 0) {
		return;
	}
	struct services *m = inst->mgr;
	free(inst->model_ref);
	free(inst);
	services_mgr_unref(m);
}

struct instance *serve_proc_instance_create(struct services *m, struct service *svc,
                                        const char *model_ref)
{
	struct instance *inst = calloc(1, sizeof(*inst));

	if (!inst) {
		return NULL;
	}
	inst->mgr = m;
	inst->svc = svc;
	inst->n = ++m->next_n;
	inst->model_ref = model_ref ? strdup(model_ref) : NULL;
	inst->started_at = util_now();
	inst->peak_mem = -1;
	uv_timer_init(m->d->loop, &inst->timer);
	inst->timer.data = inst;
	uv_timer_init(m->d->loop, &inst->mem_timer);
	inst->mem_timer.data = inst;
	inst->proc.data = inst;
	inst->handles = 2;
	inst->next = m->instances;
	if (inst->next) {
		inst->next->prev = inst;
	}
	m->instances = inst;
	m->refs++;
	return inst;
}

/* Take the instance out of everything and close its handles. */
void serve_proc_instance_close(struct instance *inst)
{
	struct services *m = inst->mgr;

	if (inst->closing) {
		return;
	}
	inst->closing = true;
	httpcheck_cancel(inst->check);
	inst->check = NULL;
	if (inst->svc) {
		if (inst->svc->serving == inst) {
			inst->svc->serving = NULL;
		}
		if (inst->svc->starting == inst) {
			inst->svc->starting = NULL;
		}
	}
	if (inst->prev) {
		inst->prev->next = inst->next;
	} else {
		m->instances = inst->next;
	}
	if (inst->next) {
		inst->next->prev = inst->prev;
	}
	if (inst->proc_open) {
		/* Closing the handle does not touch the process. */
		inst->proc_open = false;
		uv_close((uv_handle_t *)&inst->proc, instance_close_cb);
	}
	uv_close((uv_handle_t *)&inst->timer, instance_close_cb);
	uv_close((uv_handle_t *)&inst->mem_timer, instance_close_cb);
}

void serve_proc_kill_group(struct instance *inst, int sig)
{
	if (inst->pid > 0) {
		/* Each instance leads its own session and process group. */
		if (kill(-(pid_t)inst->pid, sig) < 0 && errno == ESRCH) {
			kill((pid_t)inst->pid, sig);
		}
	}
}

static bool pid_matches(int64_t pid, const char *dir)
{
	char path[64], *cmd = NULL, *stat = NULL;
	size_t len;
	bool yes = false;

	snprintf(path, sizeof(path), "/proc/%lld/stat", (long long)pid);
	if (util_read_file(path, 4096, &stat, NULL) == 0) {
		const char *close = strrchr(stat, ')');
		if (close && close[1] == ' ' && close[2] == 'Z') {
			free(stat);
			return false; /* a zombie has ended */
		}
	}
	free(stat);
	snprintf(path, sizeof(path), "/proc/%lld/cmdline", (long long)pid);
	if (util_read_file(path, 1 << 16, &cmd, &len) < 0) {
		return false;
	}
	for (size_t i = 0; i + 1 < len; i++) {
		if (cmd[i] == '\0') {
			cmd[i] = ' ';
		}
	}
	yes = strstr(cmd, dir) != NULL;
	free(cmd);
	return yes;
}

/* The poll tier: the memory of the instance's process group, which it
 * leads; over its limit the group is killed, as the kernel would. */
static void mem_timer_cb(uv_timer_t *t)
{
	struct instance *inst = t->data;
	int64_t rss = enforce_group_rss(inst->pid);

	if (rss > inst->peak_mem) {
		inst->peak_mem = rss;
	}
	if (!inst->oom && rss > inst->mem && inst->state != INST_EXITED) {
		inst->oom = true;
		if (inst->svc) {
			services_log(inst->svc, "instance %d (pid %lld) uses %.1f MiB, over its "
			             "%.1f MiB limit: killed",
			             inst->n, (long long)inst->pid, (double)rss / (1 << 20),
			             (double)inst->mem / (1 << 20));
		}
		serve_proc_kill_group(inst, SIGKILL);
	}
}

void serve_proc_instance_hold(struct instance *inst, const struct services_config *c,
                              bool started_here)
{
	struct daemon *d = inst->mgr->d;
	bool poll = false;

	inst->mem = c->memory_gb > 0 ? (int64_t)(c->memory_gb * 1024 * 1024 * 1024) : 0;
	inst->mcpu = c->cpu > 0 ? (int64_t)(c->cpu * 1000 + 0.5) : 0;
	if (inst->mcpu == 0 && c->cpu > 0) {
		inst->mcpu = 1;
	}
	if (!inst->mem && !inst->mcpu) {
		return;
	}
	if (started_here) {
		if (enforce_proc_start(d, inst->pid, inst->mem, inst->mcpu, &inst->tier, &poll) < 0) {
			log_warn("instance %d: out of memory setting its limits", inst->n);
		}
	} else {
		/* Left by an earlier daemon: a cgroup it was given holds it still;
		 * in the poll tier nothing did while we were away. */
		inst->tier = enforce_tier_name(d);
		poll = enforce_tier(d) == ENFORCE_POLL && inst->mem > 0;
	}
	if (poll) {
		uv_timer_start(&inst->mem_timer, mem_timer_cb, 0, MEM_POLL_MS);
	}
	if (inst->svc && inst->tier) {
		char mem[48] = "", cpu[48] = "";
		if (inst->mem) {
			snprintf(mem, sizeof(mem), "%.1f MiB of memory", (double)inst->mem / (1 << 20));
		}
		if (inst->mcpu) {
			snprintf(cpu, sizeof(cpu), "%s%g CPUs", inst->mem ? " and " : "",
			         (double)inst->mcpu / 1000);
		}
		services_log(inst->svc, "instance %d is held to %s%s (%s)", inst->n, mem, cpu,
		             inst->tier);
	}
}

/* Its limits read back and its cgroup removed, once; the message of a
 * kill for memory (malloc'd), or NULL. */
static char *instance_limits_end(struct instance *inst, bool failed)
{
	struct enforce_end end;

	/* One left by an earlier daemon may have a cgroup whatever the
	 * service's configuration says now. */
	if (inst->limits_done || (!inst->mem && !inst->mcpu && !inst->adopted)) {
		return NULL;
	}
	inst->limits_done = true;
	uv_timer_stop(&inst->mem_timer);
	enforce_proc_finish(inst->mgr->d, inst->pid, inst->mem, inst->mcpu, failed, &end);
	if (end.peak_mem < 0) {
		end.peak_mem = inst->peak_mem;
	}
	if (!end.oom && !inst->oom) {
		return NULL;
	}
	char *why = enforce_oom_message(&end, "it");
	char *desc = why ? msg_strdupf("ran out of memory (OutOfMemory: %s)", why) : NULL;
	free(why);
	return desc;
}

/* The instance's process has ended (desc says how; failed: not well). */
static void instance_gone(struct instance *inst, const char *desc, bool failed)
{
	struct service *svc = inst->svc;
	enum instance_state was = inst->state;
	char *oom;

	inst->state = INST_EXITED;
	/* Whatever the server started stays in its group: end that too. */
	serve_proc_kill_group(inst, SIGKILL);
	oom = instance_limits_end(inst, failed);
	if (oom) {
		desc = oom;
	}
	if (svc && !svc->deleted) {
		if (was == INST_DRAINING) {
			services_log(svc, "instance %d (pid %lld) stopped: %s", inst->n,
			        (long long)inst->pid, desc);
		}
		if (svc->starting == inst) {
			char *reason = msg_strdupf("the scoring server (pid %lld) %s before it "
			                           "answered Healthy",
			                           (long long)inst->pid, desc);
			svc->starting = NULL;
			serve_proc_attempt_failed(svc, NULL, reason ? reason : desc);
			free(reason);
		} else if (svc->serving == inst) {
			svc->serving = NULL;
			char *reason = msg_strdupf("instance %d (pid %lld) %s while serving",
			                           inst->n, (long long)inst->pid, desc);
			services_log(svc, "%s", reason ? reason : desc);
			services_set_error(svc, reason);
			free(reason);
			services_set_state(svc, SVC_UNHEALTHY);
			if (!svc->starting && !svc->preparing) {
				/* A swap in progress takes over when it succeeds. */
				if (util_now() - svc->serving_since >= BACKOFF_RESET_S) {
					svc->backoff_ms = 0;
				}
				serve_proc_schedule_restart(svc);
			}
		}
	}
	serve_proc_instance_close(inst);
	free(oom);
}

static void proc_exit_cb(uv_process_t *p, int64_t exit_status, int term_signal)
{
	struct instance *inst = p->data;
	char desc[128];

	if (term_signal) {
		snprintf(desc, sizeof(desc), "was killed by signal %d (%s)", term_signal,
		         strsignal(term_signal));
	} else {
		snprintf(desc, sizeof(desc), "exited with code %lld", (long long)exit_status);
	}
	inst->proc_open = false;
	uv_close((uv_handle_t *)p, instance_close_cb);
	instance_gone(inst, desc, term_signal || exit_status);
}

static void check_cb(void *ud, int err, long status, const char *body, size_t len);

/* The instance's timer: the next check, the kill deadline, or a poll. */
void serve_proc_instance_timer_cb(uv_timer_t *t)
{
	struct instance *inst = t->data;
	char url[64];
	int err;

	if (inst->adopted && !pid_matches(inst->pid, inst->svc ? inst->svc->dir : inst->mgr->dir)) {
		/* How it ended is not ours to know: its cgroup may say. */
		instance_gone(inst, "ended", true);
		return;
	}
	switch (inst->state) {
	case INST_STARTING:
	case INST_SERVING:
		if (inst->adopted || inst->check) {
			return;
		}
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/", inst->port);
		err = httpcheck_get(inst->mgr->http, url,
		                    inst->state == INST_STARTING ? CHECK_START_TIMEOUT_MS
		                                                 : CHECK_LIVE_TIMEOUT_MS,
		                    check_cb, inst, &inst->check);
		if (err < 0) {
			inst->check = NULL;
			log_warn("instance %d: cannot start a health check: %s", inst->n,
			         strerror(-err));
		}
		break;
	case INST_DRAINING:
		if (util_now() >= inst->deadline) {
			serve_proc_kill_group(inst, SIGKILL);
		}
		break;
	case INST_EXITED:
		break;
	}
}

static void instance_healthy(struct instance *inst);

static void check_cb(void *ud, int err, long status, const char *body, size_t len)
{
	struct instance *inst = ud;
	struct service *svc = inst->svc;
	bool ok = err == 0 && status == 200 && len >= 7 && strncmp(body, "Healthy", 7) == 0;

	inst->check = NULL;
	if (inst->state == INST_STARTING) {
		if (ok) {
			instance_healthy(inst);
			return;
		}
		if (util_now() >= inst->deadline && svc && svc->starting == inst) {
			char *reason = msg_strdupf(
			    "the scoring server did not answer Healthy within "
			    "%g s (last check: %s)",
			    svc ? services_attempt_cfg(svc)->timeout : 0.0, err ? body : "an HTTP error");
			serve_proc_attempt_failed(svc, inst, reason ? reason : "not healthy in time");
			free(reason);
		}
		return;
	}
	if (inst->state != INST_SERVING) {
		return;
	}
	if (ok) {
		inst->fails = 0;
		if (svc) {
			maybe_rotate(svc);
		}
		return;
	}
	if (++inst->fails >= CHECK_LIVE_FAILS && svc) {
		services_log(svc,
		        "instance %d (pid %lld) failed %d health checks in a row (%s); killing it",
		        inst->n, (long long)inst->pid, inst->fails,
		        err ? body : "it answered, but not Healthy");
		serve_proc_kill_group(inst, SIGKILL);
	}
}

/* A starting instance answered Healthy: switch clients to it, and stop the
 * one it replaces. */
static void instance_healthy(struct instance *inst)
{
	struct service *svc = inst->svc;
	struct instance *old;

	if (!svc || svc->starting != inst) {
		serve_proc_instance_drain(inst);
		return;
	}
	/* The poll tier looks once a second: a server that filled its memory
	 * in init and answered its first health check within that second is
	 * looked at now, before it serves, so it fails as the kernel's limit
	 * would have failed it. Its death says OutOfMemory. */
	if (uv_is_active((uv_handle_t *)&inst->mem_timer)) {
		mem_timer_cb(&inst->mem_timer);
		if (inst->oom) {
			return;
		}
	}
	/* From now on it accepts on the public socket too. */
	if (kill((pid_t)inst->pid, SIGUSR1) < 0) {
		serve_proc_attempt_failed(svc, inst, "the scoring server vanished as it became healthy");
		return;
	}
	old = svc->serving;
	svc->starting = NULL;
	svc->serving = inst;
	inst->state = INST_SERVING;
	inst->fails = 0;
	svc->serving_since = util_now();
	uv_timer_start(&inst->timer, serve_proc_instance_timer_cb, CHECK_LIVE_MS, CHECK_LIVE_MS);
	if (svc->next_cfg) {
		services_config_finish(&svc->cfg);
		svc->cfg = *svc->next_cfg;
		free(svc->next_cfg);
		svc->next_cfg = NULL;
	}
	svc->healthy_once = true;
	svc->updated_at = util_now();
	services_db_update(svc);
	services_set_state(svc, SVC_HEALTHY);
	services_set_error(svc, NULL);
	services_log(svc, "instance %d (pid %lld, model %s) is healthy and serving on 127.0.0.1:%d",
	        inst->n, (long long)inst->pid, inst->model_ref, svc->port);
	/* Stop the instance it replaces, and any left by an earlier daemon. */
	if (old) {
		serve_proc_instance_drain(old);
	}
	for (struct instance *i = svc->mgr->instances; i; i = i->next) {
		if (i->svc == svc && i != inst && i->state == INST_SERVING) {
			serve_proc_instance_drain(i);
		}
	}
	services_settle_waiters(svc, true, NULL);
}

/* SIGTERM: stop accepting, finish what has begun, exit; SIGKILL later. */
void serve_proc_instance_drain(struct instance *inst)
{
	if (inst->state == INST_DRAINING || inst->state == INST_EXITED) {
		return;
	}
	if (inst->svc && inst->svc->serving == inst) {
		inst->svc->serving = NULL;
	}
	if (inst->svc && inst->svc->starting == inst) {
		inst->svc->starting = NULL;
	}
	inst->state = INST_DRAINING;
	httpcheck_cancel(inst->check);
	inst->check = NULL;
	inst->deadline = util_now() + DRAIN_GRACE_MS / 1000.0;
	if (inst->pid > 0) {
		kill((pid_t)inst->pid, SIGTERM);
	}
	/* Past the deadline the timer kills it; an adopted one is polled. */
	uv_timer_start(&inst->timer, serve_proc_instance_timer_cb,
	               inst->adopted ? ADOPTED_POLL_MS : DRAIN_GRACE_MS,
	               inst->adopted ? ADOPTED_POLL_MS : 1000);
}

/* ---- starting an instance ---- */

void serve_proc_backoff_close_cb(uv_handle_t *h)
{
	services_unref(h->data);
}

static void backoff_cb(uv_timer_t *t)
{
	struct service *svc = t->data;

	if (svc->deleted || svc->mgr->closing || svc->serving) {
		return;
	}
	svc->restarts++;
	serve_proc_begin_attempt(svc);
}

/* Start again after the current delay, and grow the next one. */
void serve_proc_schedule_restart(struct service *svc)
{
	int delay = svc->backoff_ms;

	svc->backoff_ms =
	    delay ? (delay * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay * 2) : BACKOFF_FIRST_MS;
	services_log(svc, "restarting in %.1f s", delay / 1000.0);
	uv_timer_start(&svc->backoff, backoff_cb, (uint64_t)delay, 0);
}

/* An attempt to start an instance failed (inst, when given, is killed). */
void serve_proc_attempt_failed(struct service *svc, struct instance *inst, const char *reason)
{
	char *tail = services_log_tail(svc->log_path, FAIL_TAIL_LINES);
	char *msg = msg_strdupf("service '%s': %s%s%s", svc->name, reason,
	                        tail ? "; the last lines of its log:\n" : "", tail ? tail : "");
	const char *text = msg ? msg : reason;

	free(tail);
	if (inst) {
		if (svc->starting == inst) {
			svc->starting = NULL;
		}
		inst->state = INST_DRAINING;
		inst->deadline = util_now();
		httpcheck_cancel(inst->check);
		inst->check = NULL;
		serve_proc_kill_group(inst, SIGKILL);
		uv_timer_start(&inst->timer, serve_proc_instance_timer_cb, 1000, 1000);
	}
	services_log(svc, "starting model %s failed: %s", services_attempt_cfg(svc)->model_ref, reason);
	services_set_error(svc, text);
	if (svc->next_cfg) {
		/* A swap failed: what served goes on serving. */
		services_config_finish(svc->next_cfg);
		free(svc->next_cfg);
		svc->next_cfg = NULL;
		services_settle_waiters(svc, false, text);
		if (svc->serving) {
			free(msg);
			return;
		}
	} else {
		services_settle_waiters(svc, false, text);
	}
	if (svc->healthy_once) {
		services_set_state(svc, SVC_UNHEALTHY);
		if (!svc->backoff_ms) {
			svc->backoff_ms = BACKOFF_FIRST_MS;
		}
		serve_proc_schedule_restart(svc);
	} else {
		/* Never served: nothing to come back to. Clients are refused
		 * rather than left waiting. */
		services_set_state(svc, SVC_FAILED);
		services_close_listener(svc);
	}
	free(msg);
}

/* Whether the variable "KEY=..." e is one of vars' keys. */
static bool in_vars(const char *e, const cJSON *vars)
{
	const cJSON *kv;

	cJSON_ArrayForEach(kv, vars)
	{
		size_t kl = strlen(kv->string);
		if (strncmp(e, kv->string, kl) == 0 && e[kl] == '=') {
			return true;
		}
	}
	return false;
}

/* The daemon's variables, the environment's over them (as a run has them),
 * then runyard's own, which neither may change. */
static char **build_env(struct services *m, struct service *svc, const struct services_config *c,
                        const char *model_dir)
{
	const char *sdk = tracking_sdk_dir(), *pp = getenv("PYTHONPATH");
	const cJSON *kv;
	size_t n = 0;
	char **env;

	while (environ[n]) {
		n++;
	}
	env = calloc(n + (size_t)cJSON_GetArraySize(c->vars) + 8, sizeof(char *));
	if (!env) {
		return NULL;
	}
	n = 0;
	cJSON_ArrayForEach(kv, c->vars)
	{
		if (cJSON_IsString(kv) && strcmp(kv->string, "PYTHONPATH") != 0 &&
		    strncmp(kv->string, "RUNYARD_", 8) != 0 &&
		    strcmp(kv->string, "AZUREML_MODEL_DIR") != 0 &&
		    strcmp(kv->string, "PYTHONUNBUFFERED") != 0) {
			env[n++] = msg_strdupf("%s=%s", kv->string, kv->valuestring);
		}
	}
	for (char **e = environ; *e; e++) {
		if (strncmp(*e, "PYTHONPATH=", 11) == 0 || strncmp(*e, "RUNYARD_", 8) == 0 ||
		    strncmp(*e, "AZUREML_MODEL_DIR=", 18) == 0 ||
		    strncmp(*e, "PYTHONUNBUFFERED=", 17) == 0 || in_vars(*e, c->vars)) {
			continue;
		}
		env[n++] = strdup(*e);
	}
	env[n++] = pp && *pp ? msg_strdupf("PYTHONPATH=%s:%s", sdk, pp)
	                     : msg_strdupf("PYTHONPATH=%s", sdk);
	env[n++] = strdup("PYTHONUNBUFFERED=1");
	env[n++] = msg_strdupf("RUNYARD_SERVICE=%s", svc->name);
	env[n++] = msg_strdupf("RUNYARD_MODEL_DIR=%s", model_dir);
	env[n++] = msg_strdupf("AZUREML_MODEL_DIR=%s", model_dir);
	env[n] = NULL;
	for (size_t i = 0; i < n; i++) {
		if (!env[i]) {
			for (size_t k = 0; k < n; k++) {
				free(env[k]);
			}
			free(env);
			return NULL;
		}
	}
	return env;
}

static void free_strv(char **v)
{
	if (v) {
		for (char **p = v; *p; p++) {
			free(*p);
		}
		free(v);
	}
}

static char *src_dir_of(struct service *svc, const struct services_config *c)
{
	return msg_strdupf("%s/src/%s", svc->dir, c->snapshot);
}

/* Start an instance running the attempt's configuration. */
static void spawn_instance(struct service *svc)
{
	struct services *m = svc->mgr;
	struct daemon *d = m->d;
	struct services_config *c = services_attempt_cfg(svc);
	struct models_model model = {0};
	uv_process_options_t opts = {0};
	uv_stdio_container_t stdio[5];
	char *cause = NULL, *model_dir = NULL, *models_root = NULL, *src = NULL;
	char **env = NULL, *args[24], fdbuf[2][8];
	struct instance *inst = NULL;
	int priv_fd = -1, priv_port = 0, log_fd = -1, n = 0, err;

	err = models_get_id(d, c->model_id, &model);
	if (err < 0) {
		serve_proc_attempt_failed(svc, NULL, "its model is gone from the registry");
		goto out;
	}
	models_root = util_path_join(svc->dir, "models");
	if (!models_root || models_link(d, &model, models_root, &model_dir, &cause) < 0) {
		serve_proc_attempt_failed(svc, NULL, cause ? cause : "cannot lay out the model's files");
		goto out;
	}
	if (svc->listen_fd < 0) {
		int port;
		err = services_open_listener(svc->port, true, &svc->listen_fd, &port);
		if (err < 0) {
			char *why = msg_strdupf("cannot listen on 127.0.0.1:%d: %s", svc->port,
			                        strerror(-err));
			serve_proc_attempt_failed(svc, NULL, why ? why : "cannot listen");
			free(why);
			goto out;
		}
	}
	err = services_open_listener(0, false, &priv_fd, &priv_port);
	if (err < 0) {
		char *why =
		    msg_strdupf("cannot open a socket for health checks: %s", strerror(-err));
		serve_proc_attempt_failed(svc, NULL, why ? why : "cannot listen");
		free(why);
		goto out;
	}
	log_fd = open(svc->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (log_fd < 0) {
		char *why =
		    msg_strdupf("cannot open its log %s: %s", svc->log_path, strerror(errno));
		serve_proc_attempt_failed(svc, NULL, why ? why : "cannot open its log");
		free(why);
		goto out;
	}
	env = build_env(m, svc, c, model_dir);
	if (c->snapshot) {
		src = src_dir_of(svc, c);
	}
	inst = serve_proc_instance_create(m, svc, c->model_ref);
	if (!env || !inst || (c->snapshot && !src)) {
		serve_proc_attempt_failed(svc, NULL, "out of memory");
		goto out;
	}
	snprintf(fdbuf[0], sizeof(fdbuf[0]), "3");
	snprintf(fdbuf[1], sizeof(fdbuf[1]), "4");
	args[n++] = c->python;
	args[n++] = m->serve_py;
	args[n++] = "--service";
	args[n++] = svc->name;
	args[n++] = "--dir";
	args[n++] = svc->dir;
	args[n++] = "--model";
	args[n++] = c->model_ref;
	args[n++] = "--model-dir";
	args[n++] = model_dir;
	if (model.framework) {
		args[n++] = "--framework";
		args[n++] = model.framework;
	}
	if (c->entry_script) {
		args[n++] = "--entry-script";
		args[n++] = c->entry_script;
		args[n++] = "--source-dir";
		args[n++] = src;
	}
	args[n++] = "--listen-fd";
	args[n++] = fdbuf[0];
	args[n++] = "--check-fd";
	args[n++] = fdbuf[1];
	args[n] = NULL;

	stdio[0].flags = UV_IGNORE;
	stdio[1].flags = UV_INHERIT_FD;
	stdio[1].data.fd = log_fd;
	stdio[2].flags = UV_INHERIT_FD;
	stdio[2].data.fd = log_fd;
	stdio[3].flags = UV_INHERIT_FD;
	stdio[3].data.fd = svc->listen_fd;
	stdio[4].flags = UV_INHERIT_FD;
	stdio[4].data.fd = priv_fd;
	opts.file = c->python;
	opts.args = args;
	opts.env = env;
	opts.cwd = src ? src : svc->dir;
	opts.exit_cb = proc_exit_cb;
	/* Its own session: it outlives the daemon, like a run's supervisor. */
	opts.flags = UV_PROCESS_DETACHED;
	opts.stdio = stdio;
	opts.stdio_count = 5;
	services_log(svc, "starting instance %d: model %s, %s%s, python %s", inst->n, c->model_ref,
	        c->entry_script ? "entry script " : "no-code scikit-learn server",
	        c->entry_script ? c->entry_script : "", c->python);
	err = uv_spawn(d->loop, &inst->proc, &opts);
	inst->handles++;
	inst->proc_open = true;
	if (err < 0) {
		char *why = msg_strdupf("cannot start %s: %s", c->python, uv_strerror(err));
		inst->state = INST_EXITED;
		serve_proc_instance_close(inst);
		serve_proc_attempt_failed(svc, NULL, why ? why : "cannot start the server");
		free(why);
		goto out;
	}
	inst->pid = inst->proc.pid;
	serve_proc_instance_hold(inst, c, true);
	inst->port = priv_port;
	inst->state = INST_STARTING;
	inst->deadline = util_now() + c->timeout;
	svc->starting = inst;
	uv_timer_start(&inst->timer, serve_proc_instance_timer_cb, CHECK_START_MS, CHECK_START_MS);
out:
	if (priv_fd >= 0) {
		close(priv_fd);
	}
	if (log_fd >= 0) {
		close(log_fd);
	}
	free_strv(env);
	free(cause);
	free(model_dir);
	free(models_root);
	free(src);
	models_model_finish(&model);
}

/* Preparing an instance's source: the entry script's snapshot,
 * materialised once per service and snapshot. */
struct prep_job {
	uv_work_t work;
	struct service *svc;
	char *dest;
	char *snapshot;
	int err;
	char *cause;
};

static void prep_work(uv_work_t *w)
{
	struct prep_job *j = w->data;
	char *tmp = msg_strdupf("%s.tmp", j->dest);

	if (!tmp) {
		j->err = -ENOMEM;
		return;
	}
	util_rm_rf(tmp);
	j->err = util_mkdir_p(tmp, 0700);
	if (j->err == 0) {
		j->err = snapshot_materialise(j->svc->mgr->d->blobs, j->snapshot, tmp, &j->cause);
	}
	if (j->err == 0 && rename(tmp, j->dest) < 0) {
		j->err = -errno;
	}
	if (j->err < 0) {
		util_rm_rf(tmp);
	}
	free(tmp);
}

static void prep_done(uv_work_t *w, int status)
{
	struct prep_job *j = w->data;
	struct service *svc = j->svc;

	svc->preparing = false;
	if (!svc->deleted && !svc->mgr->closing) {
		if (j->err < 0) {
			char *why = msg_strdupf("cannot lay out its source: %s",
			                        j->cause ? j->cause : strerror(-j->err));
			serve_proc_attempt_failed(svc, NULL, why ? why : "cannot lay out its source");
			free(why);
		} else {
			spawn_instance(svc);
		}
	}
	free(j->dest);
	free(j->snapshot);
	free(j->cause);
	free(j);
	services_unref(svc);
}

/* Start an instance of the attempt's configuration (the service's own, or
 * next_cfg for a swap), preparing its files first when needed. */
void serve_proc_begin_attempt(struct service *svc)
{
	struct services_config *c = services_attempt_cfg(svc);
	struct prep_job *j;
	char *dest;

	if (svc->starting || svc->preparing || svc->deleted || svc->mgr->closing) {
		return;
	}
	uv_timer_stop(&svc->backoff);
	if (!svc->serving && svc->state != SVC_UNHEALTHY) {
		services_set_state(svc, SVC_TRANSITIONING);
	}
	if (!c->snapshot) {
		spawn_instance(svc);
		return;
	}
	dest = src_dir_of(svc, c);
	if (dest && access(dest, F_OK) == 0) {
		free(dest);
		spawn_instance(svc);
		return;
	}
	j = calloc(1, sizeof(*j));
	if (!dest || !j) {
		free(dest);
		free(j);
		serve_proc_attempt_failed(svc, NULL, "out of memory");
		return;
	}
	j->work.data = j;
	j->svc = svc;
	j->dest = dest;
	j->snapshot = strdup(c->snapshot);
	svc->refs++;
	svc->preparing = true;
	if (!j->snapshot || uv_queue_work(svc->mgr->d->loop, &j->work, prep_work, prep_done) < 0) {
		free(j->snapshot);
		free(j->dest);
		free(j);
		svc->preparing = false;
		svc->refs--;
		serve_proc_attempt_failed(svc, NULL, "cannot queue the preparation of its source");
	}
}

/* Scoring services: one supervised server process per deployed model (an
 * "instance"), started by the daemon, checked over HTTP, restarted with
 * backoff when it dies, and swapped for a new one without dropping a
 * request.
 *
 * The daemon binds each service's public socket (127.0.0.1:PORT) itself and
 * hands it to every instance it starts, with a second, private socket on
 * which only the daemon checks that instance. An instance accepts on the
 * public socket only once the daemon has seen it healthy and sent it
 * SIGUSR1; SIGTERM makes it stop accepting, finish what it has begun and
 * exit. Since every instance accepts from the same socket (one accept
 * queue, kept open by the daemon), a connection that arrives while one
 * instance stops and another starts waits in the queue and is never
 * refused: that is the zero-downtime swap. */
#include "services.h"
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
#include "proto.h"
#include "snapshot.h"
#include "store.h"
#include "tracking.h"
#include "util.h"

extern char **environ;

static const char *const state_names[] = {
    [SVC_TRANSITIONING] = "Transitioning",
    [SVC_HEALTHY] = "Healthy",
    [SVC_UNHEALTHY] = "Unhealthy",
    [SVC_FAILED] = "Failed",
};

/* ---- small things ---- */

void services_mgr_unref(struct services *m)
{
	if (--m->refs == 0) {
		if (m->d->services == m) {
			m->d->services = NULL;
		}
		free(m->dir);
		free(m->serve_py);
		free(m);
	}
}

void services_config_finish(struct services_config *c)
{
	if (c) {
		free(c->model_ref);
		free(c->python);
		free(c->entry_script);
		free(c->snapshot);
		free(c->source);
		free(c->environment);
		cJSON_Delete(c->vars);
		memset(c, 0, sizeof(*c));
	}
}

static int cfg_copy(const struct services_config *from, struct services_config *to)
{
	memset(to, 0, sizeof(*to));
	to->model_id = from->model_id;
	to->timeout = from->timeout;
	to->cpu = from->cpu;
	to->memory_gb = from->memory_gb;
	to->model_ref = strdup(from->model_ref);
	to->python = strdup(from->python);
	to->entry_script = from->entry_script ? strdup(from->entry_script) : NULL;
	to->snapshot = from->snapshot ? strdup(from->snapshot) : NULL;
	to->source = from->source ? strdup(from->source) : NULL;
	to->environment = from->environment ? strdup(from->environment) : NULL;
	to->vars = from->vars ? cJSON_Duplicate(from->vars, true) : NULL;
	if (!to->model_ref || !to->python || (from->entry_script && !to->entry_script) ||
	    (from->snapshot && !to->snapshot) || (from->source && !to->source) ||
	    (from->environment && !to->environment) || (from->vars && !to->vars)) {
		services_config_finish(to);
		return -ENOMEM;
	}
	return 0;
}

struct services_config *services_attempt_cfg(struct service *svc)
{
	return svc->next_cfg ? svc->next_cfg : &svc->cfg;
}

void services_unref(struct service *svc)
{
	if (--svc->refs > 0) {
		return;
	}
	struct services *m = svc->mgr;
	services_config_finish(&svc->cfg);
	services_config_finish(svc->next_cfg);
	free(svc->next_cfg);
	free(svc->name);
	free(svc->dir);
	free(svc->log_path);
	free(svc->error);
	free(svc);
	services_mgr_unref(m);
}

static struct service *find_service(struct services *m, const char *name)
{
	for (struct service *s = m ? m->list : NULL; s; s = s->next) {
		if (strcmp(s->name, name) == 0) {
			return s;
		}
	}
	return NULL;
}

/* Append a line of the daemon's own to the service's log. */
void services_log(struct service *svc, const char *fmt, ...)
{
	char ts[32], *text = NULL, *line;
	va_list ap;
	int fd;

	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0) {
		text = NULL;
	}
	va_end(ap);
	if (!text) {
		return;
	}
	msg_format_time(util_now(), ts);
	line = msg_strdupf("%s runyard: %s\n", ts, text);
	fd = line ? open(svc->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600) : -1;
	if (fd >= 0) {
		if (write(fd, line, strlen(line)) < 0) {
			/* the service's log is best effort; the daemon logs too */
		}
		close(fd);
	}
	log_info("service %s: %s", svc->name, text);
	free(line);
	free(text);
}

/* The last n lines of the service's log, UTF-8 clean; NULL when empty. */
char *services_log_tail(const char *path, int n)
{
	char buf[8192];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	ssize_t got;
	off_t from;

	if (fd < 0) {
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		close(fd);
		return NULL;
	}
	from = st.st_size > (off_t)sizeof(buf) - 1 ? st.st_size - (off_t)sizeof(buf) + 1 : 0;
	got = pread(fd, buf, sizeof(buf) - 1, from);
	close(fd);
	if (got <= 0) {
		return NULL;
	}
	while (got > 0 && buf[got - 1] == '\n') {
		got--;
	}
	buf[got] = '\0';
	char *start = buf + got;
	while (start > buf && n > 0) {
		start--;
		if (*start == '\n' && --n == 0) {
			start++;
			break;
		}
	}
	return utf8_sanitize(start, strlen(start), NULL);
}

void services_set_error(struct service *svc, const char *msg)
{
	free(svc->error);
	svc->error = msg ? strdup(msg) : NULL;
}

/* Bind 127.0.0.1:port (0: any free port) and listen. reuse: SO_REUSEPORT,
 * so a daemon that starts again can bind the port a server left running
 * still holds. */
int services_open_listener(int port, bool reuse, int *ret_fd, int *ret_port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	socklen_t len = sizeof(sa);
	int fd, one = 1, err;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		return -errno;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuse) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1024) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	*ret_fd = fd;
	*ret_port = ntohs(sa.sin_port);
	return 0;
}

void services_close_listener(struct service *svc)
{
	if (svc->listen_fd >= 0) {
		close(svc->listen_fd);
		svc->listen_fd = -1;
	}
}

/* ---- the store ---- */

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *v)
{
	if (v) {
		sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
	} else {
		sqlite3_bind_null(st, i);
	}
}

static void bind_limit(sqlite3_stmt *st, int i, double v)
{
	if (v > 0) {
		sqlite3_bind_double(st, i, v);
	} else {
		sqlite3_bind_null(st, i);
	}
}

static int db_insert(struct daemon *d, const char *name, int port, const struct services_config *c,
                     double now, int64_t *ret_id)
{
	sqlite3_stmt *st =
	    store_prepare(d->store, "services",
	                  "INSERT INTO services(name, model_id, port, python, "
	                  "entry_script, snapshot, source, timeout, created_at, "
	                  "updated_at, cpu, memory_gb) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
	                  "?9, ?9, ?10, ?11)");
	int rc;

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, c->model_id);
	sqlite3_bind_int(st, 3, port);
	sqlite3_bind_text(st, 4, c->python, -1, SQLITE_TRANSIENT);
	bind_text_or_null(st, 5, c->entry_script);
	bind_text_or_null(st, 6, c->snapshot);
	bind_text_or_null(st, 7, c->source);
	sqlite3_bind_double(st, 8, c->timeout);
	sqlite3_bind_double(st, 9, now);
	bind_limit(st, 10, c->cpu);
	bind_limit(st, 11, c->memory_gb);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		return rc == SQLITE_CONSTRAINT ? -EEXIST : -EIO;
	}
	*ret_id = sqlite3_last_insert_rowid(store_db(d->store));
	return 0;
}

/* The environment of what the service serves, in SVC_DIR/environment.json
 * rather than a column: the services table has none, and the file is read
 * only when the daemon starts. No environment: no file. */
static void save_environment(struct service *svc)
{
	char *path = util_path_join(svc->dir, "environment.json"), *text = NULL;
	cJSON *o;

	if (!path) {
		return;
	}
	if (!svc->cfg.environment) {
		unlink(path);
		free(path);
		return;
	}
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "environment", svc->cfg.environment);
	cJSON_AddItemToObject(
	    o, "vars", svc->cfg.vars ? cJSON_Duplicate(svc->cfg.vars, true) : cJSON_CreateObject());
	text = cJSON_PrintUnformatted(o);
	if (!text || util_write_file_atomic(path, text, strlen(text), 0600) < 0) {
		log_error("service %s: recording its environment in %s failed", svc->name, path);
	}
	cJSON_Delete(o);
	free(text);
	free(path);
}

static void load_environment(struct service *svc)
{
	char *path = util_path_join(svc->dir, "environment.json"), *text = NULL;
	size_t len;
	cJSON *o = NULL;

	if (path && util_read_file(path, 1 << 20, &text, &len) == 0 &&
	    (o = cJSON_ParseWithLength(text, len)) &&
	    cJSON_IsString(cJSON_GetObjectItem(o, "environment"))) {
		svc->cfg.environment = strdup(cJSON_GetObjectItem(o, "environment")->valuestring);
		svc->cfg.vars = cJSON_DetachItemFromObject(o, "vars");
	}
	cJSON_Delete(o);
	free(text);
	free(path);
}

/* Record what the service serves now, and whether that has served. */
void services_db_update(struct service *svc)
{
	struct daemon *d = svc->mgr->d;
	sqlite3_stmt *st =
	    store_prepare(d->store, "services",
	                  "UPDATE services SET model_id = ?2, python = ?3, "
	                  "entry_script = ?4, snapshot = ?5, source = ?6, timeout = ?7, "
	                  "healthy_once = ?8, updated_at = ?9, cpu = ?10, memory_gb = ?11 "
	                  "WHERE id = ?1");

	if (!st) {
		return;
	}
	sqlite3_bind_int64(st, 1, svc->id);
	sqlite3_bind_int64(st, 2, svc->cfg.model_id);
	sqlite3_bind_text(st, 3, svc->cfg.python, -1, SQLITE_TRANSIENT);
	bind_text_or_null(st, 4, svc->cfg.entry_script);
	bind_text_or_null(st, 5, svc->cfg.snapshot);
	bind_text_or_null(st, 6, svc->cfg.source);
	sqlite3_bind_double(st, 7, svc->cfg.timeout);
	sqlite3_bind_int(st, 8, svc->healthy_once);
	sqlite3_bind_double(st, 9, svc->updated_at);
	bind_limit(st, 10, svc->cfg.cpu);
	bind_limit(st, 11, svc->cfg.memory_gb);
	if (sqlite3_step(st) != SQLITE_DONE) {
		log_error("service %s: recording it failed: %s", svc->name, store_errmsg(d->store));
	}
	sqlite3_finalize(st);
	save_environment(svc);
}

static int db_delete(struct daemon *d, int64_t id)
{
	sqlite3_stmt *st = store_prepare(d->store, "services", "DELETE FROM services WHERE id = ?1");
	int rc;

	if (!st) {
		return -EIO;
	}
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

/* ---- service objects ---- */

static struct service *service_create(struct services *m, int64_t id, const char *name, int port)
{
	struct service *svc = calloc(1, sizeof(*svc));

	if (!svc) {
		return NULL;
	}
	svc->mgr = m;
	svc->id = id;
	svc->port = port;
	svc->listen_fd = -1;
	svc->name = strdup(name);
	svc->dir = msg_strdupf("%s/%s.%lld", m->dir, name, (long long)id);
	svc->log_path = svc->dir ? util_path_join(svc->dir, "output.log") : NULL;
	if (!svc->name || !svc->dir || !svc->log_path || util_mkdir_p(svc->dir, 0700) < 0) {
		free(svc->name);
		free(svc->dir);
		free(svc->log_path);
		free(svc);
		return NULL;
	}
	uv_timer_init(m->d->loop, &svc->backoff);
	svc->backoff.data = svc;
	svc->backoff_open = true;
	svc->refs = 1; /* the backoff timer */
	m->refs++;
	svc->next = m->list;
	m->list = svc;
	return svc;
}

static void add_limit(cJSON *o, const char *name, double v)
{
	if (v > 0) {
		cJSON_AddNumberToObject(o, name, v);
	} else {
		cJSON_AddNullToObject(o, name);
	}
}

static cJSON *instance_json(const struct instance *inst)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddNumberToObject(o, "pid", (double)inst->pid);
	cJSON_AddStringToObject(o, "model", inst->model_ref ? inst->model_ref : "?");
	msg_add_time(o, "started_at", inst->started_at);
	if (inst->tier) {
		cJSON_AddStringToObject(o, "tier", inst->tier);
	} else {
		cJSON_AddNullToObject(o, "tier");
	}
	return o;
}

static cJSON *service_json(struct service *svc)
{
	cJSON *o = cJSON_CreateObject();
	char uri[64];

	cJSON_AddStringToObject(o, "name", svc->name);
	cJSON_AddStringToObject(o, "state", state_names[svc->state]);
	cJSON_AddStringToObject(o, "model", svc->cfg.model_ref);
	cJSON_AddNumberToObject(o, "port", svc->port);
	snprintf(uri, sizeof(uri), "http://127.0.0.1:%d/score", svc->port);
	cJSON_AddStringToObject(o, "scoring_uri", uri);
	cJSON_AddStringToObject(o, "kind", svc->cfg.entry_script ? "entry-script" : "no-code");
	if (svc->cfg.entry_script) {
		cJSON_AddStringToObject(o, "entry_script", svc->cfg.entry_script);
		cJSON_AddStringToObject(o, "snapshot", svc->cfg.snapshot ? svc->cfg.snapshot : "");
		cJSON_AddStringToObject(o, "source", svc->cfg.source ? svc->cfg.source : "");
	} else {
		cJSON_AddNullToObject(o, "entry_script");
	}
	cJSON_AddStringToObject(o, "python", svc->cfg.python);
	if (svc->cfg.environment) {
		cJSON_AddStringToObject(o, "environment", svc->cfg.environment);
	} else {
		cJSON_AddNullToObject(o, "environment");
	}
	cJSON *res = cJSON_AddObjectToObject(o, "resources");
	add_limit(res, "cpu", svc->cfg.cpu);
	add_limit(res, "memory_gb", svc->cfg.memory_gb);
	if (svc->serving) {
		cJSON_AddNumberToObject(o, "pid", (double)svc->serving->pid);
		msg_add_time(o, "serving_since", svc->serving_since);
	} else {
		cJSON_AddNullToObject(o, "pid");
		cJSON_AddNullToObject(o, "serving_since");
	}
	if (svc->next_cfg || svc->starting) {
		cJSON *p = cJSON_AddObjectToObject(o, "pending");
		cJSON_AddStringToObject(p, "model", services_attempt_cfg(svc)->model_ref);
		if (svc->starting) {
			cJSON_AddNumberToObject(p, "pid", (double)svc->starting->pid);
		} else {
			cJSON_AddNullToObject(p, "pid");
		}
	} else {
		cJSON_AddNullToObject(o, "pending");
	}
	cJSON_AddNumberToObject(o, "restarts", svc->restarts);
	if (svc->error) {
		cJSON_AddStringToObject(o, "error", svc->error);
	} else {
		cJSON_AddNullToObject(o, "error");
	}
	cJSON *insts = cJSON_AddArrayToObject(o, "instances");
	for (struct instance *i = svc->mgr->instances; i; i = i->next) {
		if (i->svc == svc && i->state != INST_EXITED) {
			cJSON *j = instance_json(i);
			static const char *const names[] = {"starting", "serving", "stopping",
			                                    "exited"};
			cJSON_AddStringToObject(j, "state",
			                        i->adopted && i->state == INST_SERVING
			                            ? "left by an earlier runyardd"
			                            : names[i->state]);
			cJSON_AddItemToArray(insts, j);
		}
	}
	msg_add_time(o, "created_at", svc->created_at);
	msg_add_time(o, "updated_at", svc->updated_at);
	cJSON_AddStringToObject(o, "log", svc->log_path);
	return o;
}

void services_set_state(struct service *svc, enum service_state st)
{
	if (svc->state != st) {
		svc->state = st;
	}
}

/* The attempt to start an instance has ended: answer who waited for it. */
void services_settle_waiters(struct service *svc, bool ok, const char *msg)
{
	struct waiter *w = svc->waiters;

	svc->waiters = NULL;
	while (w) {
		struct waiter *next = w->next;
		if (ok || w->kind == SERVICES_WAIT_SETTLED) {
			w->cb(w->ud, service_json(svc), NULL, NULL);
		} else {
			w->cb(w->ud, NULL, PROTO_E_DEPLOYMENT_FAILED, msg ? msg : "failed");
		}
		free(w);
		w = next;
	}
}

int services_add_waiter(struct service *svc, enum services_wait_kind kind, services_wait_fn cb,
                        void *ud)
{
	struct waiter *w = calloc(1, sizeof(*w));

	if (!w) {
		return -ENOMEM;
	}
	w->cb = cb;
	w->ud = ud;
	w->kind = kind;
	w->next = svc->waiters;
	svc->waiters = w;
	return 0;
}

/* ---- start and shutdown of the daemon ---- */

/* Servers an earlier daemon started that still run: found by the service
 * directory in their command line. Those of a service that still exists
 * serve until its new instance is healthy; others are stopped. */
static void adopt_leftovers(struct services *m)
{
	DIR *proc = opendir("/proc");
	struct dirent *de;
	char prefix[4096];

	if (!proc) {
		return;
	}
	snprintf(prefix, sizeof(prefix), "%s/", m->dir);
	while ((de = readdir(proc))) {
		char path[64], *cmd = NULL;
		size_t len;
		const char *dir = NULL;
		char *end;
		long long pid = strtoll(de->d_name, &end, 10);

		if (*end || pid <= 1 || pid == getpid()) {
			continue;
		}
		snprintf(path, sizeof(path), "/proc/%lld/cmdline", pid);
		if (util_read_file(path, 1 << 16, &cmd, &len) < 0) {
			continue;
		}
		/* argv: python, .../_serve.py, ..., "--dir", DIR, ... */
		bool serve = false;
		for (size_t i = 0; i < len;) {
			const char *arg = cmd + i;
			size_t alen = strnlen(arg, len - i);
			if (i + alen >= len) {
				break; /* not NUL-terminated: not a whole argument */
			}
			if (alen >= 9 && strcmp(arg + alen - 9, "_serve.py") == 0) {
				serve = true;
			}
			if (strcmp(arg, "--dir") == 0 && i + alen + 1 < len) {
				dir = arg + alen + 1;
				break;
			}
			i += alen + 1;
		}
		if (!serve || !dir || strncmp(dir, prefix, strlen(prefix)) != 0) {
			free(cmd);
			continue;
		}
		struct service *svc = NULL;
		for (struct service *s = m->list; s; s = s->next) {
			if (strcmp(s->dir, dir) == 0) {
				svc = s;
			}
		}
		struct instance *inst = serve_proc_instance_create(m, svc, NULL);
		if (inst) {
			inst->pid = pid;
			inst->adopted = true;
			inst->state = INST_SERVING;
			inst->model_ref = strdup(svc ? svc->cfg.model_ref : "?");
			log_info("found scoring server pid %lld of %s left by an earlier runyardd",
			         pid, svc ? svc->name : "a deleted service");
			if (svc) {
				serve_proc_instance_hold(inst, &svc->cfg, false);
				uv_timer_start(&inst->timer, serve_proc_instance_timer_cb, ADOPTED_POLL_MS,
				               ADOPTED_POLL_MS);
			} else {
				serve_proc_instance_drain(inst);
			}
		}
		free(cmd);
	}
	closedir(proc);
}

static int load_services(struct services *m)
{
	sqlite3_stmt *st = store_prepare(m->d->store, "services",
	                                 "SELECT s.id, s.name, s.port, s.model_id, s.python, "
	                                 "s.entry_script, s.snapshot, s.source, s.timeout, "
	                                 "s.healthy_once, s.created_at, s.updated_at, m.name, "
	                                 "m.version, s.cpu, s.memory_gb FROM services s JOIN "
	                                 "models m ON m.id = s.model_id ORDER BY s.id");
	int rc;

	if (!st) {
		return -EIO;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct service *svc = service_create(m, sqlite3_column_int64(st, 0),
		                                     (const char *)sqlite3_column_text(st, 1),
		                                     sqlite3_column_int(st, 2));
		if (!svc) {
			rc = SQLITE_NOMEM;
			break;
		}
		struct services_config *c = &svc->cfg;
		c->model_id = sqlite3_column_int64(st, 3);
		c->python = strdup((const char *)sqlite3_column_text(st, 4));
		if (sqlite3_column_type(st, 5) != SQLITE_NULL) {
			c->entry_script = strdup((const char *)sqlite3_column_text(st, 5));
			c->snapshot = strdup((const char *)sqlite3_column_text(st, 6));
			c->source = strdup((const char *)sqlite3_column_text(st, 7));
		}
		c->timeout = sqlite3_column_double(st, 8);
		svc->healthy_once = sqlite3_column_int(st, 9);
		svc->created_at = sqlite3_column_double(st, 10);
		svc->updated_at = sqlite3_column_double(st, 11);
		c->model_ref = msg_strdupf("%s:%lld", sqlite3_column_text(st, 12),
		                           (long long)sqlite3_column_int64(st, 13));
		c->cpu = sqlite3_column_double(st, 14);
		c->memory_gb = sqlite3_column_double(st, 15);
		load_environment(svc);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

/* The cgroups of servers that ended while no daemon looked go; those of
 * the adopted ones stay until they end. */
static void sweep_cgroups(struct services *m)
{
	size_t n = 0, i = 0;
	int64_t *keep;

	for (struct instance *inst = m->instances; inst; inst = inst->next) {
		n++;
	}
	keep = calloc(n ? n : 1, sizeof(*keep));
	if (!keep) {
		return;
	}
	for (struct instance *inst = m->instances; inst; inst = inst->next) {
		keep[i++] = inst->pid;
	}
	enforce_proc_sweep(m->d, keep, n);
	free(keep);
}

int services_start(struct daemon *d)
{
	struct services *m = calloc(1, sizeof(*m));
	int err;

	if (!m) {
		return -ENOMEM;
	}
	m->d = d;
	m->refs = 1;
	m->dir = util_path_join(d->state_dir, "services");
	m->serve_py = msg_strdupf("%s/runyard/_serve.py", tracking_sdk_dir());
	if (!m->dir || !m->serve_py) {
		free(m->dir);
		free(m->serve_py);
		free(m);
		return -ENOMEM;
	}
	err = httpcheck_mgr_create(d->loop, &m->http);
	if (err < 0) {
		free(m->dir);
		free(m->serve_py);
		free(m);
		return err;
	}
	d->services = m;
	util_mkdir_p(m->dir, 0700);
	err = load_services(m);
	if (err < 0) {
		log_error("loading the services failed: %s", store_errmsg(d->store));
	}
	adopt_leftovers(m);
	sweep_cgroups(m);
	int n = 0;
	for (struct service *svc = m->list; svc; svc = svc->next) {
		services_log(svc, "runyardd started: starting the service again (model %s)",
		        svc->cfg.model_ref);
		serve_proc_begin_attempt(svc);
		n++;
	}
	if (n > 0) {
		log_info("starting %d service(s) again", n);
	}
	return err;
}

void services_shutdown(struct daemon *d)
{
	struct services *m = d->services;

	if (!m || m->closing) {
		return;
	}
	m->closing = true;
	while (m->list) {
		struct service *svc = m->list;
		m->list = svc->next;
		svc->deleted = true;
		for (struct waiter *w = svc->waiters, *next; w; w = next) {
			next = w->next;
			w->cb(w->ud, NULL, PROTO_E_SHUTTING_DOWN,
			      "runyardd is stopping; the service goes on");
			free(w);
		}
		svc->waiters = NULL;
		services_close_listener(svc);
		if (svc->backoff_open) {
			svc->backoff_open = false;
			uv_close((uv_handle_t *)&svc->backoff, serve_proc_backoff_close_cb);
		}
	}
	while (m->instances) {
		struct instance *inst = m->instances;
		if (inst->state == INST_STARTING) {
			/* It never served; the next daemon starts another. */
			serve_proc_kill_group(inst, SIGKILL);
		}
		inst->svc = NULL;
		serve_proc_instance_close(inst);
	}
	httpcheck_mgr_close(m->http);
	m->http = NULL;
	services_mgr_unref(m);
}

/* ---- what the registry asks ---- */

bool services_use_python_under(struct daemon *d, const char *dir)
{
	struct services *m = d->services;
	size_t n = strlen(dir);

	for (struct service *s = m ? m->list : NULL; s; s = s->next) {
		if ((s->cfg.python && strncmp(s->cfg.python, dir, n) == 0) ||
		    (s->next_cfg && s->next_cfg->python &&
		     strncmp(s->next_cfg->python, dir, n) == 0)) {
			return true;
		}
	}
	return false;
}

bool services_model_in_use(struct daemon *d, int64_t model_id, char **ret_name)
{
	struct services *m = d->services;

	for (struct service *s = m ? m->list : NULL; s; s = s->next) {
		if (s->cfg.model_id == model_id ||
		    (s->next_cfg && s->next_cfg->model_id == model_id)) {
			if (ret_name) {
				*ret_name = strdup(s->name);
			}
			return true;
		}
	}
	return false;
}

int services_of_model_json(struct daemon *d, int64_t model_id, cJSON **ret)
{
	struct services *m = d->services;
	cJSON *arr = cJSON_CreateArray();

	if (!arr) {
		return -ENOMEM;
	}
	for (struct service *s = m ? m->list : NULL; s; s = s->next) {
		if (s->cfg.model_id == model_id) {
			cJSON_AddItemToArray(arr, cJSON_CreateString(s->name));
		}
	}
	*ret = arr;
	return 0;
}

/* ---- what the service ops ask and do (ops_service.c) ---- */

bool services_open(struct daemon *d)
{
	return d->services && !d->services->closing;
}

struct service *services_find(struct daemon *d, const char *name)
{
	return find_service(d->services, name);
}

bool services_busy(const struct service *svc)
{
	return svc->starting || svc->preparing || svc->next_cfg;
}

cJSON *services_json(struct service *svc)
{
	return service_json(svc);
}

const char *services_name(const struct service *svc)
{
	return svc->name;
}

const char *services_attempt_model_ref(struct service *svc)
{
	return services_attempt_cfg(svc)->model_ref;
}

const char *services_log_path(const struct service *svc)
{
	return svc->log_path;
}

static int service_cmp(const void *a, const void *b)
{
	const struct service *x = *(const struct service *const *)a;
	const struct service *y = *(const struct service *const *)b;

	return strcmp(x->name, y->name);
}

cJSON *services_list_json(struct daemon *d)
{
	struct services *m = d->services;
	struct service **v = NULL;
	size_t n = 0, i = 0;
	cJSON *list;

	for (struct service *s = m->list; s; s = s->next) {
		n++;
	}
	v = calloc(n ? n : 1, sizeof(*v));
	if (!v) {
		return NULL;
	}
	for (struct service *s = m->list; s; s = s->next) {
		v[i++] = s;
	}
	qsort(v, n, sizeof(*v), service_cmp);
	list = cJSON_CreateArray();
	for (i = 0; i < n; i++) {
		cJSON_AddItemToArray(list, service_json(v[i]));
	}
	free(v);
	return list;
}

int services_restart_prepare(struct service *svc)
{
	if (svc->serving) {
		/* A new instance of the same model, swapped in. */
		svc->next_cfg = malloc(sizeof(*svc->next_cfg));
		if (!svc->next_cfg || cfg_copy(&svc->cfg, svc->next_cfg) < 0) {
			free(svc->next_cfg);
			svc->next_cfg = NULL;
			return -ENOMEM;
		}
	} else {
		svc->backoff_ms = 0;
	}
	services_log(svc, "restart requested");
	return 0;
}

void services_begin_attempt(struct service *svc)
{
	serve_proc_begin_attempt(svc);
}

static void rm_work(uv_work_t *w)
{
	util_rm_rf(w->data);
}

static void rm_done(uv_work_t *w, int status)
{
	free(w->data);
	free(w);
}

int services_delete(struct service *svc)
{
	struct services *m = svc->mgr;
	char *msg;
	uv_work_t *w;

	if (db_delete(m->d, svc->id) < 0) {
		return -EIO;
	}
	for (struct service **pp = &m->list; *pp; pp = &(*pp)->next) {
		if (*pp == svc) {
			*pp = svc->next;
			break;
		}
	}
	svc->deleted = true;
	log_info("service %s deleted", svc->name);
	msg = msg_strdupf("service '%s' was deleted", svc->name);
	for (struct waiter *w2 = svc->waiters, *next; w2; w2 = next) {
		next = w2->next;
		w2->cb(w2->ud, NULL, PROTO_E_NOT_FOUND, msg ? msg : "the service was deleted");
		free(w2);
	}
	free(msg);
	svc->waiters = NULL;
	for (struct instance *i = m->instances; i; i = i->next) {
		if (i->svc == svc) {
			if (i->state == INST_STARTING) {
				serve_proc_kill_group(i, SIGKILL);
			}
			serve_proc_instance_drain(i);
			i->svc = NULL;
		}
	}
	services_close_listener(svc);
	w = calloc(1, sizeof(*w));
	if (w) {
		w->data = strdup(svc->dir);
		if (!w->data || uv_queue_work(m->d->loop, w, rm_work, rm_done) < 0) {
			free(w->data);
			free(w);
		}
	}
	if (svc->backoff_open) {
		svc->backoff_open = false;
		uv_close((uv_handle_t *)&svc->backoff, serve_proc_backoff_close_cb);
	}
	return 0;
}

/* Fail a deployment: the code and message its reply carries. */
static int deploy_fail(const char **ret_code, char **ret_cause, const char *code,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int deploy_fail(const char **ret_code, char **ret_cause, const char *code,
                       const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(ret_cause, fmt, ap) < 0) {
		*ret_cause = NULL;
	}
	va_end(ap);
	*ret_code = code;
	return -EINVAL;
}

int services_deploy(struct daemon *d, const struct services_deploy_args *a,
                    struct services_config *cfg, cJSON **ret_now, const char **ret_code,
                    char **ret_cause)
{
	struct services *m = d->services;
	struct service *svc;
	double now = util_now();

	if (!m || m->closing) {
		return deploy_fail(ret_code, ret_cause, PROTO_E_SHUTTING_DOWN,
		                   "runyardd is stopping; deploy refused");
	}
	svc = find_service(m, a->service);
	if (svc) {
		if (services_busy(svc)) {
			return deploy_fail(
			    ret_code, ret_cause, PROTO_E_CONFLICT,
			    "a deployment to service '%s' is in progress (model %s); wait "
			    "for it ('runyard service show %s')",
			    svc->name, services_attempt_cfg(svc)->model_ref, svc->name);
		}
		if (a->port_given && a->port != svc->port) {
			return deploy_fail(
			    ret_code, ret_cause, PROTO_E_CONFLICT,
			    "service '%s' listens on port %d; leave out --port, or delete "
			    "the service first",
			    svc->name, svc->port);
		}
		if (svc->serving) {
			/* A swap: the new instance starts beside the one that serves. */
			svc->next_cfg = malloc(sizeof(*svc->next_cfg));
			if (!svc->next_cfg) {
				return deploy_fail(ret_code, ret_cause, PROTO_E_INTERNAL,
				                   "out of memory");
			}
			*svc->next_cfg = *cfg;
			memset(cfg, 0, sizeof(*cfg));
			services_log(svc, "deploying model %s in place of %s", svc->next_cfg->model_ref,
			        svc->cfg.model_ref);
		} else {
			services_config_finish(&svc->cfg);
			svc->cfg = *cfg;
			memset(cfg, 0, sizeof(*cfg));
			svc->healthy_once = false;
			svc->backoff_ms = 0;
			svc->restarts = 0;
			svc->updated_at = now;
			services_db_update(svc);
			services_set_state(svc, SVC_TRANSITIONING);
			services_log(svc, "deploying model %s", svc->cfg.model_ref);
		}
	} else {
		int fd, port;
		int64_t id;
		/* Public sockets share their port with servers of the same service
		 * left by an earlier daemon (SO_REUSEPORT), so the kernel would let
		 * two services share one: it is checked here. */
		for (struct service *o = m->list; o && a->port_given; o = o->next) {
			if (o->port == a->port) {
				return deploy_fail(
				    ret_code, ret_cause, PROTO_E_CONFLICT,
				    "port %d is service '%s''s; choose another --port, or "
				    "leave it out for a free one",
				    a->port, o->name);
			}
		}
		int err = services_open_listener(a->port, true, &fd, &port);
		if (err < 0) {
			return deploy_fail(
			    ret_code, ret_cause,
			    err == -EADDRINUSE ? PROTO_E_CONFLICT : PROTO_E_INTERNAL,
			    "cannot listen on 127.0.0.1:%d: %s%s", a->port, strerror(-err),
			    err == -EADDRINUSE ? " (choose another --port, or leave it out "
			                         "for a free one)"
			                       : "");
		}
		err = db_insert(d, a->service, port, cfg, now, &id);
		if (err < 0) {
			close(fd);
			return deploy_fail(ret_code, ret_cause, PROTO_E_INTERNAL,
			                   "recording service '%s' failed: %s", a->service,
			                   store_errmsg(d->store));
		}
		svc = service_create(m, id, a->service, port);
		if (!svc) {
			close(fd);
			db_delete(d, id);
			return deploy_fail(ret_code, ret_cause, PROTO_E_INTERNAL, "out of memory");
		}
		svc->listen_fd = fd;
		svc->cfg = *cfg;
		memset(cfg, 0, sizeof(*cfg));
		save_environment(svc);
		svc->created_at = svc->updated_at = now;
		svc->state = SVC_TRANSITIONING;
		services_log(svc, "deploying model %s on 127.0.0.1:%d", svc->cfg.model_ref, port);
	}
	if (a->cb && services_add_waiter(svc, SERVICES_WAIT_ATTEMPT, a->cb, a->ud) < 0) {
		return deploy_fail(ret_code, ret_cause, PROTO_E_INTERNAL, "out of memory");
	}
	serve_proc_begin_attempt(svc);
	if (!a->cb) {
		*ret_now = service_json(svc);
	}
	return 0;
}

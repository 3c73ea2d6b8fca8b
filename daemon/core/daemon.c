#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blob.h"
#include "compute.h"
#include "datasets.h"
#include "dispatch.h"
#include "exec.h"
#include "fetch.h"
#include "enforce.h"
#include "log.h"
#include "machine.h"
#include "logs.h"
#include "msg.h"
#include "queue.h"
#include "retention.h"
#include "run.h"
#include "scheduler.h"
#include "snapshot.h"
#include "server.h"
#include "services.h"
#include "store.h"
#include "sweep.h"
#include "interactive.h"
#include "systemd.h"
#include "tracking.h"
#include "util.h"
#include "watch.h"
#include "web.h"

static char *default_state_dir(void)
{
	const char *xdg = getenv("XDG_STATE_HOME");
	const char *home = getenv("HOME");

	if (xdg && xdg[0] == '/') {
		return msg_strdupf("%s/runyard", xdg);
	}
	return msg_strdupf("%s/.local/state/runyard", home && *home ? home : "/tmp");
}

static char *default_socket(const char *state_dir)
{
	const char *rt = getenv("XDG_RUNTIME_DIR");

	if (rt && rt[0] == '/') {
		return msg_strdupf("%s/runyard/runyard.sock", rt);
	}
	return msg_strdupf("%s/runyard.sock", state_dir);
}

/* The supervisor lives beside runyardd (installed or in the build tree). */
static char *find_supervisor(void)
{
	const char *env = getenv("RUNYARD_SUPERVISOR");
	char exe[4096];
	size_t len = sizeof(exe);

	if (env && *env) {
		return strdup(env);
	}
	if (uv_exepath(exe, &len) < 0) {
		return NULL;
	}
	return msg_strdupf("%s/runyard-supervisor", dirname(exe));
}

static void signal_cb(uv_signal_t *h, int signum)
{
	struct daemon *d = h->data;

	log_info("received %s; stopping (runs keep running and are re-attached at the next "
		 "start)",
		 strsignal(signum));
	daemon_stop(d);
}

/* The server's hooks: a message goes to the op table, a closing or drained
 * connection to its watchers. */
static void message_cb(void *ud, struct conn *c, const cJSON *msg, const char *bad)
{
	dispatch_message(c, msg, bad);
}

static void conn_closed_cb(void *ud, struct conn *c)
{
	watch_conn_closed(ud, c);
}

static void conn_drained_cb(void *ud, struct conn *c)
{
	watch_conn_drained(ud, c);
}

/* The state directory holds every run's token and source: it is the
 * daemon user's alone. One made 0755 by hand, or by an older version, is
 * made private (said in the log); one of another user is refused. */
static int state_dir_private(const char *dir, char **cause)
{
	struct stat st;

	if (stat(dir, &st) < 0) {
		*cause = msg_strdupf("cannot look at the state directory %s: %s", dir,
				     strerror(errno));
		return -errno;
	}
	if (st.st_uid != geteuid()) {
		*cause = msg_strdupf("the state directory %s belongs to uid %u, not to this daemon's "
				     "user (uid %u); give each user a state directory of their own",
				     dir, (unsigned)st.st_uid, (unsigned)geteuid());
		return -EPERM;
	}
	if ((st.st_mode & 077) != 0) {
		if (chmod(dir, st.st_mode & 0700) < 0) {
			*cause = msg_strdupf("the state directory %s is open to other users (mode "
					     "%04o) and cannot be made private: %s",
					     dir, (unsigned)(st.st_mode & 07777), strerror(errno));
			return -errno;
		}
		log_warn("the state directory %s was open to other users (mode %04o): made 0700",
			 dir, (unsigned)(st.st_mode & 07777));
	}
	return 0;
}

int daemon_init(struct daemon *d, uv_loop_t *loop, const struct daemon_config *cfg, char **cause)
{
	char *p = NULL;
	int r;

	memset(d, 0, sizeof(*d));
	d->loop = loop;
	d->lock_fd = -1;
	r = systemd_init(d);
	if (r < 0) {
		return r;
	}
	int listen_fd = systemd_take_listen_fd(cause);
	if (listen_fd < -1) {
		return listen_fd;
	}
	d->started_at = util_now();
	d->grace = cfg->grace > 0 ? cfg->grace : 10;
	d->max_runs = cfg->max_runs > 0 ? cfg->max_runs : (int)uv_available_parallelism();
	d->snapshot_max_bytes = cfg->snapshot_max_bytes ? cfg->snapshot_max_bytes
						       : SNAPSHOT_DEFAULT_MAX_BYTES;
	d->snapshot_max_files = cfg->snapshot_max_files ? cfg->snapshot_max_files
						       : SNAPSHOT_DEFAULT_MAX_FILES;
	d->download_timeout_ms = cfg->download_timeout_ms > 0 ? cfg->download_timeout_ms
							      : FETCH_DEFAULT_TIMEOUT_MS;
	d->min_free_bytes = cfg->min_free == UINT64_MAX ? DAEMON_MIN_FREE_DEFAULT : cfg->min_free;
	d->warn_free_bytes = cfg->warn_free == UINT64_MAX ? DAEMON_WARN_FREE_DEFAULT : cfg->warn_free;
	d->cache_max_bytes = cfg->cache_max == UINT64_MAX ? DAEMON_CACHE_MAX_DEFAULT : cfg->cache_max;
	d->state_dir = cfg->state_dir ? realpath(cfg->state_dir, NULL) : NULL;
	if (!d->state_dir) {
		/* realpath needs it to exist; make it, then resolve. */
		char *want = cfg->state_dir ? strdup(cfg->state_dir) : default_state_dir();
		if (!want) {
			return -ENOMEM;
		}
		r = util_mkdir_p(want, 0700);
		if (r < 0) {
			*cause = msg_strdupf("cannot create the state directory %s: %s", want,
					     strerror(-r));
			free(want);
			return r;
		}
		d->state_dir = realpath(want, NULL);
		free(want);
		if (!d->state_dir) {
			return -errno;
		}
	}
	r = state_dir_private(d->state_dir, cause);
	if (r < 0) {
		return r;
	}
	d->socket_path = cfg->socket_path ? strdup(cfg->socket_path) : default_socket(d->state_dir);
	d->runs_dir = util_path_join(d->state_dir, SNAPSHOT_RUNS_DIR);
	d->supervisor_path = find_supervisor();
	if (!d->socket_path || !d->runs_dir || !d->supervisor_path) {
		return -ENOMEM;
	}
	if (access(d->supervisor_path, X_OK) < 0) {
		*cause = msg_strdupf("the run supervisor %s is missing or not executable (set "
				     "RUNYARD_SUPERVISOR to its path)",
				     d->supervisor_path);
		return -ENOENT;
	}
	r = util_mkdir_p(d->runs_dir, 0700);
	if (r < 0) {
		*cause = msg_strdupf("cannot create %s: %s", d->runs_dir, strerror(-r));
		return r;
	}

	/* Two daemons on one state directory would each think they own the
	 * runs; the lock is released by the kernel however we die. */
	p = util_path_join(d->state_dir, "runyardd.lock");
	d->lock_fd = p ? open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600) : -1;
	if (d->lock_fd < 0 || flock(d->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		r = -errno;
		*cause = r == -EWOULDBLOCK
				 ? msg_strdupf("another runyardd is using the state directory %s",
					       d->state_dir)
				 : msg_strdupf("cannot lock %s: %s", p, strerror(errno));
		free(p);
		return r;
	}
	free(p);

	p = util_path_join(d->state_dir, "runyard.db");
	if (!p) {
		return -ENOMEM;
	}
	r = store_open(p, &d->store, cause);
	free(p);
	if (r < 0) {
		return r;
	}
	r = compute_init(d, cause);
	if (r < 0) {
		return r;
	}
	d->pool = calloc(1, sizeof(*d->pool));
	if (!d->pool) {
		return -ENOMEM;
	}
	const char *gpu_source;
	machine_discover(d->pool, cfg->gpus, cfg->gpu_mem, &gpu_source);
	if (cfg->cpus > 0) {
		d->pool->cpus = cfg->cpus;
	}
	log_info("this machine: %lld CPUs, %.1f GiB of memory, %d GPUs (%s)",
		 (long long)d->pool->cpus, (double)d->pool->mem / (1 << 30), d->pool->ngpus,
		 gpu_source);
	/* The state machine's listeners, in the order they hear an event: an
	 * ended run gives back its place and its handles before its watchers
	 * get run.end, and systemd's STATUS= counts what the others settled. */
	r = run_events_init(d);
	if (r < 0 || (r = scheduler_init(d)) < 0 || (r = enforce_init(d)) < 0 ||
	    (r = watch_init(d)) < 0 || (r = sweeps_init(d)) < 0 ||
	    (r = interactive_init(d)) < 0) {
		return r;
	}
	run_subscribe(d, scheduler_run_event, d);
	run_subscribe(d, exec_run_event, d);
	run_subscribe(d, sweeps_run_event, d);
	run_subscribe(d, watch_run_event, d);
	run_subscribe(d, systemd_run_event, d);
	run_subscribe(d, web_run_event, d);
	struct store_retention rules = {.keep_runs_days = cfg->keep_runs_days,
					.keep_failed_days = cfg->keep_failed_days,
					.keep_runs = cfg->keep_runs};
	r = retention_init(d, &rules);
	if (r < 0) {
		*cause = msg_strdupf("cannot set up retention: %s", strerror(-r));
		return r;
	}
	r = blob_store_open(d->state_dir, &d->blobs);
	if (r < 0) {
		*cause = msg_strdupf("cannot set up the blob store in %s: %s", d->state_dir,
				     strerror(-r));
		return r;
	}
	p = util_path_join(d->state_dir, "downloads");
	if (!p) {
		return -ENOMEM;
	}
	struct fetch_limits fl = {.cache_max_bytes = d->cache_max_bytes,
				  .max_bytes = cfg->download_max_bytes,
				  .timeout_ms = d->download_timeout_ms,
				  .retries = -1};
	r = fetch_mgr_create(loop, p, &fl, &d->fetch);
	if (r < 0) {
		*cause = msg_strdupf("cannot set up the download cache in %s: %s", p,
				     strerror(-r));
		free(p);
		return r;
	}
	free(p);
	struct server_hooks hooks = {
		.on_message = message_cb,
		.on_closed = conn_closed_cb,
		.on_drained = conn_drained_cb,
		.ud = d,
	};
	if (listen_fd >= 0) {
		r = server_adopt(loop, &hooks, listen_fd, &d->server, cause);
		if (r < 0) {
			return r;
		}
		/* Runs and status report the socket clients really use. */
		free(d->socket_path);
		d->socket_path = strdup(server_path(d->server));
		if (!d->socket_path) {
			return -ENOMEM;
		}
	} else {
		r = server_listen(loop, &hooks, d->socket_path, &d->server, cause);
		if (r < 0) {
			return r;
		}
	}
	uv_signal_init(loop, &d->sig_term);
	d->sig_term.data = d;
	uv_signal_start(&d->sig_term, signal_cb, SIGTERM);
	uv_signal_init(loop, &d->sig_int);
	d->sig_int.data = d;
	uv_signal_start(&d->sig_int, signal_cb, SIGINT);
	d->signals = true;
	log_info("runyardd %s listening on %s%s (state %s, %d slots, grace %gs)", RUNYARD_VERSION,
		 d->socket_path, listen_fd >= 0 ? " (socket-activated)" : "", d->state_dir,
		 d->max_runs, d->grace);
	if (cfg->http_addr) {
		r = web_start(d, cfg->http_addr, cfg->http_port, cfg->http_remote, cause);
		if (r < 0) {
			return r;
		}
	} else {
		web_resume(d);
	}
	return 0;
}

static int load_run_cb(void *ud, const struct store_run_row *row)
{
	struct run *r = run_load(ud, row);

	if (!r || tracking_run_load(r) < 0 || compute_run_load(r) < 0) {
		return -ENOMEM;
	}
	return 0;
}

int daemon_resume(struct daemon *d)
{
	int r = store_runs_active(d->store, load_run_cb, d);
	int n = 0;

	if (r < 0) {
		log_error("loading the runs in flight failed: %s", store_errmsg(d->store));
		return r;
	}
	/* Before the runs resume: a resumed run's preparation may make a
	 * dataset tree of its own, under a temporary name, in the thread pool. */
	datasets_sweep(d);
	d->resuming = true;
	for (struct run *run = d->runs_head, *next; run; run = next) {
		next = run->next;
		n++;
		if (run->interactive) {
			interactive_resume(run);
		} else if (run->status == RUN_QUEUED) {
			queue_enqueue(d, run);
		} else {
			exec_resume(run);
		}
	}
	d->resuming = false;
	if (n > 0) {
		log_info("resumed %d run(s) from the store", n);
	}
	/* After their children are back in hand: a sweep finds each one. */
	if ((r = sweeps_resume(d)) < 0) {
		return r;
	}
	exec_sweep_dirs(d);
	retention_start(d);
	if (services_start(d) < 0) {
		log_error("starting the services failed; they start at the next restart");
	}
	scheduler_kick(d);
	/* Ready: the store is open, the socket listens, the runs in flight are
	 * back in hand. */
	systemd_notify(d, "READY=1");
	systemd_status(d);
	systemd_watchdog_start(d);
	return 0;
}

static void close_noop_cb(uv_handle_t *h)
{
}

void daemon_stop(struct daemon *d)
{
	if (d->stopping) {
		return;
	}
	d->stopping = true;
	systemd_notify(d, "STOPPING=1");
	systemd_finish(d);
	if (d->signals) {
		uv_close((uv_handle_t *)&d->sig_term, close_noop_cb);
		uv_close((uv_handle_t *)&d->sig_int, close_noop_cb);
	}
	/* A start-up failure may stop the daemon before the watchers exist. */
	if (d->watchers) {
		watch_clear(d);
	}
	server_close(d->server);
	d->server = NULL;
	exec_shutdown(d);
	scheduler_close(d);
	sweeps_close(d);
	interactive_close(d);
	run_events_close(d);
	compute_shutdown(d);
	services_shutdown(d);
	web_stop(d);
	retention_close(d);
	/* After the parts that may wait for downloads have let go of them. */
	fetch_mgr_close(d->fetch);
	d->fetch = NULL;
}

void daemon_finish(struct daemon *d)
{
	compute_finish(d);
	enforce_close(d);
	store_close(d->store);
	blob_store_close(d->blobs);
	if (d->lock_fd >= 0) {
		close(d->lock_fd);
	}
	free(d->ingest_buf);
	free(d->pool);
	systemd_free(d);
	watch_finish(d);
	free(d->state_dir);
	free(d->socket_path);
	free(d->runs_dir);
	free(d->supervisor_path);
}

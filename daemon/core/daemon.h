/* The daemon's context: configuration, the loop, and the parts it owns. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "snapshot.h"

struct store;
struct blobstore;
struct server;
struct run;
struct watch;
struct target;
struct compute_create;
struct fetch_mgr;

struct daemon_config {
	const char *state_dir;   /* NULL: $XDG_STATE_HOME/runyard */
	const char *socket_path; /* NULL: $XDG_RUNTIME_DIR/runyard/runyard.sock, else in state_dir */
	int max_runs;            /* 0: number of CPUs */
	double grace;            /* seconds between SIGTERM and SIGKILL */
	uint64_t snapshot_max_bytes; /* 0: SNAPSHOT_DEFAULT_MAX_BYTES */
	uint64_t snapshot_max_files; /* 0: SNAPSHOT_DEFAULT_MAX_FILES */
	uint64_t download_max_bytes; /* 0: fetch.c's default */
	long download_timeout_ms;    /* 0: fetch.c's default */
};

struct daemon {
	uv_loop_t *loop;
	char *state_dir;
	char *socket_path;
	char *runs_dir;
	char *supervisor_path;
	int max_runs;
	double grace;
	double started_at;
	struct snapshot_limits limits;
	/* runyardd --download-timeout, resolved: the fetch manager's limit, and
	 * an upload's to an HTTP datastore (inputs.c). */
	long download_timeout_ms;

	struct store *store;
	struct blobstore *blobs;
	struct server *server;

	/* Every run that is not terminal, in submit order. */
	struct run *runs_head, *runs_tail;
	/* Queued runs in the order they will start (queue.c). */
	struct run *queue_head;
	/* Runs holding a capacity slot (left Queued, not yet ended). */
	int active;

	/* Compute targets, the local one first (target.h, compute.c), and
	 * compute.create requests waiting for their server. */
	struct target *targets;
	struct compute_create *creates;

	struct watch *watches;
	/* Deployed models' scoring services (services.c). */
	struct services *services;
	/* Downloads for inputs and datasets (fetch.c). */
	struct fetch_mgr *fetch;
	char *ingest_buf;
	int64_t next_sub;

	uv_signal_t sig_term;
	uv_signal_t sig_int;
	int lock_fd;

	/* The service manager (systemd.c). */
	int notify_fd;
	char *notify_path;
	uint64_t watchdog_usec;
	uv_timer_t watchdog;
	bool watchdog_on;
	int status_queued, status_running;

	bool signals; /* sig_term and sig_int are initialised */
	bool stopping;
	bool resuming; /* holds admission back until every resumed run has its slot */
};

/* Resolve paths, open the store and blobs, listen; start-up failures are the
 * only ones that stop the daemon, so they come back with a cause. */
int daemon_init(struct daemon *d, uv_loop_t *loop, const struct daemon_config *cfg, char **cause);

/* Re-attach or re-queue what the store says was in flight. */
int daemon_resume(struct daemon *d);

/* Begin a clean stop: stop accepting, close every connection and handle;
 * uv_run returns once all are closed. Runs keep running under their
 * supervisors. */
void daemon_stop(struct daemon *d);

/* Free what daemon_init made, after the loop has ended. */
void daemon_finish(struct daemon *d);

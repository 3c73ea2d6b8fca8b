/* The daemon's context: configuration, the loop, and a pointer to each
 * part's own state, which the part defines in its own files. No code: the
 * layers above base/ include it; net/, store/ and snapshot/ never do. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

struct store;
struct blobstore;
struct server;
struct run;
struct runs;
struct res_pool;
struct scheduler;
struct enforce;
struct sweeps;
struct interactive;
struct watchers;
struct target;
struct compute_create;
struct fetch_mgr;
struct services;
struct systemd;
struct web;
struct retention;

struct daemon {
	uv_loop_t *loop;
	char *state_dir;
	char *socket_path;
	char *runs_dir;
	char *supervisor_path;
	int max_runs;
	double grace;
	double started_at;
	/* Snapshot limits (runyardd --snapshot-max-mb, --snapshot-max-files),
	 * resolved: a run's submit and a deploy's snapshot take these. */
	uint64_t snapshot_max_bytes;
	uint64_t snapshot_max_files;
	/* runyardd --download-timeout, resolved: the fetch manager's limit, and
	 * an upload's to an HTTP datastore (inputs.c). */
	long download_timeout_ms;
	/* runyardd --min-free and --warn-free, in bytes (docs/operations.md). */
	uint64_t min_free_bytes;
	uint64_t warn_free_bytes;
	/* runyardd --cache-max-size: the download cache's bound; 0: none. */
	uint64_t cache_max_bytes;

	struct store *store;
	struct blobstore *blobs;
	struct server *server;

	/* Every run that is not terminal, in submit order. */
	struct run *runs_head, *runs_tail;
	/* runs/: event subscribers, runs waiting to be freed, the queue. */
	struct runs *runs;
	/* exec/scheduler.c: admission from the queue; the local machine's
	 * CPUs, memory and GPUs and what runs hold of them (runs/resources.h). */
	struct scheduler *scheduler;
	struct res_pool *pool;
	/* exec/enforce.c: how runs' memory and CPUs are enforced here. */
	struct enforce *enforce;
	/* sweeps/sweep.c: the sweeps still making or waiting for trials. */
	struct sweeps *sweeps;
	/* exec/interactive.c: the heartbeat check of interactive runs. */
	struct interactive *interactive;

	/* Compute targets, the local one first (target.h, compute.c), and
	 * compute.create requests waiting for their server. */
	struct target *targets;
	struct compute_create *creates;

	/* Deployed models' scoring services (services.c). */
	struct services *services;
	/* Downloads for inputs and datasets (fetch.c). */
	struct fetch_mgr *fetch;
	/* streams/: the watchers (watch.c), and ingest's one read buffer
	 * (logs.c; ingest never runs twice at once). */
	struct watchers *watchers;
	char *ingest_buf;

	uv_signal_t sig_term;
	uv_signal_t sig_int;
	int lock_fd;

	/* The web view's listener (web/web.c); NULL when not listening. */
	struct web *web;

	/* Retention rules and their daily timer (registry/retention.c). */
	struct retention *retention;

	/* The service manager (core/systemd.c). */
	struct systemd *systemd;

	bool signals; /* sig_term and sig_int are initialised */
	bool stopping;
	bool resuming; /* holds admission back until every resumed run has its slot */
};

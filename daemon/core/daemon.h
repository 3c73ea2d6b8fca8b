/* Starting and stopping the daemon: the parts made, wired and let go of. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "context.h"

/* Free space floors by default: 100 MiB to submit, 1 GiB before a warning. */
#define DAEMON_MIN_FREE_DEFAULT (100ULL << 20)
#define DAEMON_WARN_FREE_DEFAULT (1ULL << 30)
/* The download cache holds 20 GiB by default (a download may be 10 GB). */
#define DAEMON_CACHE_MAX_DEFAULT (20ULL << 30)

struct daemon_config {
	const char *state_dir;   /* NULL: $XDG_STATE_HOME/runyard */
	const char *socket_path; /* NULL: $XDG_RUNTIME_DIR/runyard/runyard.sock, else in state_dir */
	int max_runs;            /* 0: number of CPUs */
	double grace;            /* seconds between SIGTERM and SIGKILL */
	uint64_t snapshot_max_bytes; /* 0: SNAPSHOT_DEFAULT_MAX_BYTES */
	uint64_t snapshot_max_files; /* 0: SNAPSHOT_DEFAULT_MAX_FILES */
	uint64_t download_max_bytes; /* 0: fetch.c's default */
	long download_timeout_ms;    /* 0: fetch.c's default */
	int cpus;                    /* declared CPUs; 0: the affinity mask */
	int gpus;                    /* declared GPUs; -1: discover them */
	int64_t gpu_mem;             /* bytes on each declared GPU */
	const char *http_addr;       /* the web view's address; NULL: none at start */
	int http_port;               /* 0: a free port */
	bool http_remote;            /* a non-loopback address is meant */
	/* Free space on the state directory's file system: below min_free a
	 * submit is refused, below warn_free daemon.status warns. UINT64_MAX:
	 * the default; 0: no floor. */
	uint64_t min_free;
	uint64_t warn_free;
	/* The download cache's bound; UINT64_MAX: the default; 0: none. */
	uint64_t cache_max;
	/* Retention (docs/operations.md): 0 is no such rule. */
	double keep_runs_days;
	double keep_failed_days;
	int64_t keep_runs;
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

/* The state of runs/, shared by run.c and queue.c only. */
#pragma once

#include <uv.h>

#include "queue.h"
#include "run.h"

#define RUNS_SINKS_MAX 8

struct run_sink {
	run_event_fn fn;
	void *ud;
};

struct runs {
	struct run_sink sinks[RUNS_SINKS_MAX];
	int n_sinks;
	/* Ended runs that nothing refers to, freed at the end of the tick. */
	uv_check_t reaper;
	struct run *dead;
	/* Queued runs in the order they will start (queue.c). */
	struct run *queue_head;
};


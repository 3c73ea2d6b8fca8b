/* Following a run: its lines as they come, its end, and the summary of how it ended. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <cjson/cJSON.h>

struct ctx;
struct render_json_array;

struct follow {
	const char *run;		      /* as the user gave it */
	bool logs;			      /* subscribe to its lines */
	const char *stream;		      /* "stdout", "stderr", "environment"; NULL: all */
	bool timestamps;		      /* prefix lines with their ts */
	FILE *out;			      /* where lines go */
	struct render_json_array *json_lines; /* or: lines as JSON into this array */
	double timeout;			      /* give up after this many seconds; 0: never */
	size_t printed;			      /* lines printed so far */
	double last_seq;
};

/* Print an array of log lines; 0 or an exit status. */
int follow_print_lines(struct follow *f, const cJSON *lines);

/* Watch f->run until it ends, printing its lines when f->logs. Returns 0
 * with the final run object in *ret_run, or an exit status after saying
 * why (1 also when f->timeout passed first). */
int follow_run(struct ctx *ctx, struct follow *f, cJSON **ret_run);

/* Wait for a run and report how it ended: wait and submit --wait. */
int follow_wait(struct ctx *ctx, const char *run, bool show_output, double timeout);

/* Page through the stored lines with run.logs until there are no more. */
int follow_page(struct ctx *ctx, struct follow *f);

/* The options of a run that 'submit' and 'sweep submit' share, and the JSON file both read. */
#pragma once

#include <getopt.h>
#include <stdbool.h>

#include <cjson/cJSON.h>

#include "verb.h"

/* The shared options' numbers; a verb numbers its own from RUNARGS_OPT_NEXT. */
enum {
	RUNARGS_OPT_EXPERIMENT = VERB_OPT_FIRST,
	RUNARGS_OPT_SOURCE,
	RUNARGS_OPT_PYTHON,
	RUNARGS_OPT_ENVIRONMENT,
	RUNARGS_OPT_TIMEOUT,
	RUNARGS_OPT_PRIORITY,
	RUNARGS_OPT_ENV,
	RUNARGS_OPT_KEEP,
	RUNARGS_OPT_DRY_RUN,
	RUNARGS_OPT_MAX_SNAPSHOT_MB,
	RUNARGS_OPT_MAX_SNAPSHOT_FILES,
	RUNARGS_OPT_TARGET,
	RUNARGS_OPT_NODES,
	RUNARGS_OPT_CPUS,
	RUNARGS_OPT_MEMORY_GB,
	RUNARGS_OPT_TIME_LIMIT,
	RUNARGS_OPT_INPUT,
	RUNARGS_OPT_INPUT_PATH,
	RUNARGS_OPT_OUTPUT,
	RUNARGS_OPT_MEM,
	RUNARGS_OPT_GPUS,
	RUNARGS_OPT_GPU_MEM,
	RUNARGS_OPT_AFTER,
	RUNARGS_OPT_ARRAY,
	RUNARGS_OPT_RETRIES,
	RUNARGS_OPT_RETRY_ON,
	RUNARGS_OPT_NEXT,
};

/* The shared entries of a getopt_long table; with "f:" in its short options. */
#define RUNARGS_OPTIONS                                                                    \
	{"experiment", required_argument, NULL, RUNARGS_OPT_EXPERIMENT},                   \
	{"source", required_argument, NULL, RUNARGS_OPT_SOURCE},                           \
	{"python", required_argument, NULL, RUNARGS_OPT_PYTHON},                           \
	{"environment", required_argument, NULL, RUNARGS_OPT_ENVIRONMENT},                 \
	{"timeout", required_argument, NULL, RUNARGS_OPT_TIMEOUT},                         \
	{"priority", required_argument, NULL, RUNARGS_OPT_PRIORITY},                       \
	{"env", required_argument, NULL, RUNARGS_OPT_ENV},                                 \
	{"keep", no_argument, NULL, RUNARGS_OPT_KEEP},                                     \
	{"file", required_argument, NULL, 'f'},                                            \
	{"dry-run", no_argument, NULL, RUNARGS_OPT_DRY_RUN},                               \
	{"max-snapshot-mb", required_argument, NULL, RUNARGS_OPT_MAX_SNAPSHOT_MB},         \
	{"max-snapshot-files", required_argument, NULL, RUNARGS_OPT_MAX_SNAPSHOT_FILES},   \
	{"target", required_argument, NULL, RUNARGS_OPT_TARGET},                           \
	{"nodes", required_argument, NULL, RUNARGS_OPT_NODES},                             \
	{"cpus", required_argument, NULL, RUNARGS_OPT_CPUS},                               \
	{"memory-gb", required_argument, NULL, RUNARGS_OPT_MEMORY_GB},                     \
	{"time-limit", required_argument, NULL, RUNARGS_OPT_TIME_LIMIT},                   \
	{"input", required_argument, NULL, RUNARGS_OPT_INPUT},                             \
	{"input-path", required_argument, NULL, RUNARGS_OPT_INPUT_PATH},                   \
	{"output", required_argument, NULL, RUNARGS_OPT_OUTPUT},                           \
	{"mem", required_argument, NULL, RUNARGS_OPT_MEM},                                 \
	{"gpus", required_argument, NULL, RUNARGS_OPT_GPUS},                               \
	{"gpu-mem", required_argument, NULL, RUNARGS_OPT_GPU_MEM},                         \
	{"after", required_argument, NULL, RUNARGS_OPT_AFTER},                             \
	{"array", required_argument, NULL, RUNARGS_OPT_ARRAY},                             \
	{"retries", required_argument, NULL, RUNARGS_OPT_RETRIES},                         \
	{"retry-on", required_argument, NULL, RUNARGS_OPT_RETRY_ON}

/* What the shared flags said, until runargs_apply() puts it into the op's args. */
struct runargs {
	const char *file;
	const char *experiment;
	const char *source;
	const char *python;
	const char *environment;
	const char *target;
	double timeout;
	double max_mb;
	double memory_gb;
	double time_limit;
	long long priority;
	long long max_files;
	long long nodes;
	long long cpus;
	long long gpus;
	bool have_gpus;
	const char *mem;     /* a size, as the daemon reads it ("512M") */
	const char *gpu_mem;
	const char *array; /* FIRST-LAST[:STEP][%K], checked by the daemon */
	long long retries;
	bool have_retries;
	const char *retry_on; /* "fail,oom", checked by the daemon */
	bool have_priority;
	bool keep;
	bool dry_run;
	cJSON *env;	    /* the --env flags */
	cJSON *inputs;	    /* --input, in order */
	cJSON *input_paths; /* --input-path, by name */
	cJSON *outputs;	    /* --output, in order */
	cJSON *after;	    /* --after, in order */
};

/* What a verb's JSON file (-f) may hold beyond a run file's keys. */
struct runargs_file {
	const char *noun;		/* "run file", "sweep file": for messages */
	const char *const *keys;	/* NULL-terminated; NULL: none */
	int (*check)(const cJSON *doc, char **cause); /* the values of keys; NULL: none */
};

/* 0, or -ENOMEM. */
int runargs_init(struct runargs *ra);
void runargs_finish(struct runargs *ra);

/* Take option c with its value arg: 0, VERB_EXIT_USAGE (said why), or
 * -ENOENT when c is not one of RUNARGS_OPTIONS. */
int runargs_option(struct ctx *ctx, struct runargs *ra, int c, const char *arg);

/* The file of -f as the op's args, with its source made absolute against
 * the file's directory; an empty object without -f. 0 or an exit status
 * (said why). */
int runargs_load(const struct runargs *ra, const struct runargs_file *kind, cJSON **ret_args);

/* The flags over args (they override the file): source (the current
 * directory when neither says), interpreter, limits, inputs, outputs, env.
 * 0 or an exit status (said why). */
int runargs_apply(struct ctx *ctx, const struct runargs *ra, cJSON *args);

/* runargs_apply, then call op (run.submit, sweep.submit) and print what
 * every submit prints first: a dry run's listing (and *ret_done, the verb
 * has nothing more to say), the snapshot's skipped files. 0 or an exit
 * status; *ret_result is the caller's to free. */
int runargs_submit(struct ctx *ctx, const struct runargs *ra, const char *op, cJSON *args,
		   cJSON **ret_result, bool *ret_done);

/* The notes of a submit reply's "skipped", on stderr. */
void runargs_print_skipped(const cJSON *result);

/* What a dry run would take; VERB_EXIT_REFUSED when it would fail. */
int runargs_print_dry_run(const cJSON *result);

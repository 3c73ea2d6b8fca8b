/* runyard submit: snapshot a source directory, queue a run and, if asked, wait for it. */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "connect.h"
#include "follow.h"
#include "json.h"
#include "msg.h"
#include "print.h"
#include "proto.h"
#include "render.h"
#include "util.h"
#include "verb.h"
#include "commands/commands.h"
#include "commands/runargs.h"


/* Options of submit's own; the run's are runargs.h's. */
enum {
	OPT_WAIT = RUNARGS_OPT_NEXT,
	OPT_SHOW_OUTPUT,
};

static const struct runargs_file run_file = {.noun = "run file"};

static int submit_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		RUNARGS_OPTIONS,
		{"wait", no_argument, NULL, OPT_WAIT},
		{"show-output", no_argument, NULL, OPT_SHOW_OUTPUT},
		VERB_COMMON_OPTIONS,
		{0},
	};
	struct runargs ra;
	bool wait = false, show_output = false, done = false;
	cJSON *args = NULL, *result = NULL;
	int status = 0, c;

	if (runargs_init(&ra) < 0) {
		fprintf(stderr, "runyard: out of memory\n");
		return VERB_EXIT_USAGE;
	}
	/* "+": options end at the program, whose own options follow it. */
	while ((c = getopt_long(argc, argv, "+:f:h", options, NULL)) != -1) {
		switch (c) {
		case OPT_WAIT:
			wait = true;
			break;
		case OPT_SHOW_OUTPUT:
			show_output = wait = true;
			break;
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			status = VERB_HELP;
			goto out;
		default:
			status = runargs_option(ctx, &ra, c, optarg);
			if (status == -ENOENT) {
				status = verb_option_error(ctx, c, argv, options);
			}
			if (status) {
				goto out;
			}
			break;
		}
	}

	status = runargs_load(&ra, &run_file, &args);
	if (status) {
		goto out;
	}
	/* Flags override the file. */
	if (optind < argc) {
		json_set(args, "command",
			 cJSON_CreateStringArray((const char *const *)argv + optind, argc - optind));
	} else if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(args, "command")) &&
		   !ra.dry_run) {
		status = verb_usage_error(ctx, "no program to run: runyard submit [OPTIONS] -- PROGRAM "
					  "[ARGS...]");
		goto out;
	}
	if (ra.dry_run && wait) {
		status = verb_usage_error(ctx, "--dry-run creates no run to wait for");
		goto out;
	}
	status = runargs_submit(ctx, &ra, "run.submit", args, &result, &done);
	if (status || done) {
		goto out;
	}
	if (!ctx->json) {
		printf("Submitted run #%lld %s (experiment %s)\n", json_int(result, "seq", 0),
		       json_str(result, "id") ? json_str(result, "id") : "?",
		       json_str(result, "experiment") ? json_str(result, "experiment") : "?");
	}
	if (!wait) {
		if (ctx->json) {
			status = print_json(result);
		}
		goto out;
	}
	if (!json_str(result, "id")) {
		fprintf(stderr, "runyard: runyardd's submit reply has no run id\n");
		status = VERB_EXIT_REFUSED;
		goto out;
	}
	fflush(stdout);
	status = follow_wait(ctx, json_str(result, "id"), show_output, 0);
out:
	cJSON_Delete(result);
	cJSON_Delete(args);
	runargs_finish(&ra);
	return status;
}

const struct verb cmd_submit_entry = {
	.name = "submit",
	.run = submit_cb,
	.summary = "Snapshot a source directory and queue a run",
	.usage = "Usage: runyard submit [OPTIONS] [--] PROGRAM [ARGS...]\n"
		 "       runyard submit -f run.json [OPTIONS] [-- PROGRAM [ARGS...]]\n"
		 "\n"
		 "Snapshot the source directory and queue PROGRAM ARGS as a run.\n"
		 "\n"
		 "  --experiment NAME  experiment to file the run under (default \"default\")\n"
		 "  --source DIR       directory to snapshot (default: the current one)\n"
		 "  --python PATH      interpreter for a PROGRAM ending in .py\n"
		 "  --environment NAME[:VERSION]\n"
		 "                     run in this environment (see 'runyard env list')\n"
		 "  --timeout S        fail the run with Timeout after S seconds Running\n"
		 "  --priority N       -1000..1000, higher starts first (default 0)\n"
		 "  --env KEY=VALUE    extra environment variable (repeatable)\n"
		 "  --keep             keep the run's working directory after it ends\n"
		 "  --wait             then wait for the run, as 'runyard wait'\n"
		 "  --show-output      then stream its output and wait (implies --wait)\n"
		 "  -f, --file FILE    take arguments from a JSON run file; flags override it\n"
		 "  --target NAME      run on compute target NAME (default: local; see\n"
		 "                     'runyard compute list')\n"
		 "  --cpus N           CPUs the run reserves here (default 1) and is held to\n"
		 "  --mem SIZE         memory it reserves and is held to (512M, 2G)\n"
		 "  --gpus N           GPUs it gets (CUDA_VISIBLE_DEVICES); with --gpu-mem\n"
		 "  --gpu-mem SIZE     it shares them, taking SIZE on each\n"
		 "  --array FIRST-LAST[:STEP][%K]\n"
		 "                     one run per index (RUNYARD_ARRAY_INDEX, {index} in ARGS),\n"
		 "                     at most K at once; listed with 'runyard runs --array ID'\n"
		 "  --after RUN[:ok|any|fail]\n"
		 "                     start only once RUN has completed (ok, the default),\n"
		 "                     ended at all (any) or failed (fail); repeatable\n"
		 "  --retries N        try a failed run again, up to N more times; each\n"
		 "                     attempt is kept ('runyard show' lists them)\n"
		 "  --retry-on KINDS   which failures: fail (the program's, the default),\n"
		 "                     oom, restart (lost to a restart) or any; commas\n"
		 "  --nodes N, --cpus N, --memory-gb G, --time-limit S\n"
		 "                     what the run asks of a cluster target (Slurm)\n"
		 "  --json             print the submit result (with --wait: the final run)\n"
		 "\n"
		 "Options end at PROGRAM; everything after it is its arguments.\n",
	.max_args = VERB_ANY,
};

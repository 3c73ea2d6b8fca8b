/* Acting on runs in flight: runyard cancel (of one run or many, with
 * ranges and selectors) and runyard update (a queued run's priority). */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "connect.h"
#include "json.h"
#include "print.h"
#include "proto.h"
#include "render.h"
#include "select.h"
#include "util.h"
#include "verb.h"
#include "commands/commands.h"

/* One run's cancel, as a line: 0 when it is canceled or being canceled, and
 * in a batch (many) also when it had already ended; else the exit status. */
static int cancel_one(struct ctx *ctx, const char *run, bool many, cJSON *all)
{
	struct client_error err = {0};
	cJSON *args = cJSON_CreateObject(), *result = NULL;
	const char *st;
	int status = 0, r;

	cJSON_AddStringToObject(args, "run", run);
	r = client_call(ctx->client, "run.cancel", args, &result, &err);
	if (r < 0 && many && err.code && strcmp(err.code, PROTO_E_CONFLICT) == 0) {
		/* Ended already, or already being canceled: nothing is left to do. */
		if (!ctx->json) {
			printf("%s: %s\n", run, err.message);
		}
	} else if (r < 0) {
		status = connect_report("run.cancel", &err, r);
	} else if (ctx->json) {
		cJSON_AddItemToArray(all, result);
		result = NULL;
	} else {
		st = json_str(result, "status");
		if (st && strcmp(st, "CancelRequested") == 0) {
			printf("Cancel requested for run #%lld (status %s%s%s)\n",
			       json_int(result, "seq", 0), render_status_color(st), st,
			       render_status_color(st)[0] ? render_color_reset() : "");
		} else {
			printf("Run #%lld canceled (status %s%s%s)\n", json_int(result, "seq", 0),
			       render_status_color(st), st ? st : "?",
			       render_status_color(st)[0] ? render_color_reset() : "");
		}
	}
	client_error_finish(&err);
	cJSON_Delete(result);
	cJSON_Delete(args);
	return status;
}

static int cancel_cb(struct ctx *ctx, int argc, char **argv)
{
	cJSON *runs = NULL, *all = cJSON_CreateArray();
	const cJSON *run;
	int status, failed = 0, many = 0;

	status = select_verb_args(ctx, argc, argv, &runs, &many);
	if (status || (status = connect_daemon(ctx))) {
		goto out;
	}
	cJSON_ArrayForEach(run, runs) {
		failed |= cancel_one(ctx, run->valuestring, many, all) != 0;
	}
	if (ctx->json) {
		status = print_json(many ? all : all->child);
	}
	if (failed) {
		status = VERB_EXIT_REFUSED;
	}
out:
	cJSON_Delete(runs);
	cJSON_Delete(all);
	return status;
}

const struct verb cmd_cancel_entry = {
	.name = "cancel",
	.run = cancel_cb,
	.summary = "Cancel runs",
	.usage = "Usage: runyard cancel RUN... [--experiment E] [--status S] [--parent SWEEP]\n"
		 "                      [--json]\n"
		 "\n"
		 "Cancel runs: a queued run ends Canceled at once; a started one gets\n"
		 "SIGTERM, then SIGKILL after the daemon's grace period. RUN is an id, a\n"
		 "number or a range of numbers (12-20); the selectors add every run that\n"
		 "matches them. A sweep or an array is canceled with its children. Exits 0\n"
		 "when every run named is canceled or had already ended.\n",
	.max_args = VERB_ANY,
};


static int update_cb(struct ctx *ctx, int argc, char **argv)
{
	enum { OPT_PRIORITY = VERB_OPT_FIRST, OPT_CPUS, OPT_MEM, OPT_GPUS, OPT_GPU_MEM };
	static const struct option options[] = {
		{"priority", required_argument, NULL, OPT_PRIORITY},
		{"cpus", required_argument, NULL, OPT_CPUS},
		{"mem", required_argument, NULL, OPT_MEM},
		{"gpus", required_argument, NULL, OPT_GPUS},
		{"gpu-mem", required_argument, NULL, OPT_GPU_MEM},
		VERB_COMMON_OPTIONS,
		{0},
	};
	cJSON *args = cJSON_CreateObject(), *result = NULL;
	long long n = 0;
	const char *run = NULL;
	int status = 0, c;

	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			ctx->json = true;
			break;
		case OPT_PRIORITY:
			if (util_parse_int(optarg, -1000, 1000, &n) < 0) {
				status = verb_usage_error(ctx, "--priority needs an integer from -1000 "
							  "to 1000, not '%s'",
							  optarg);
				goto out;
			}
			json_set(args, "priority", cJSON_CreateNumber((double)n));
			break;
		case OPT_CPUS:
		case OPT_GPUS:
			if (util_parse_int(optarg, c == OPT_CPUS ? 1 : 0, c == OPT_CPUS ? 100000 : 64,
					   &n) < 0) {
				status = verb_usage_error(ctx, "--%s needs a number from %s, not '%s'",
							  c == OPT_CPUS ? "cpus" : "gpus",
							  c == OPT_CPUS ? "1 to 100000" : "0 to 64",
							  optarg);
				goto out;
			}
			json_set(args, c == OPT_CPUS ? "cpus" : "gpus", cJSON_CreateNumber((double)n));
			break;
		case OPT_MEM:
		case OPT_GPU_MEM:
			/* The daemon reads the size and says what is wrong with it. */
			json_set(args, c == OPT_MEM ? "mem" : "gpu_mem", cJSON_CreateString(optarg));
			break;
		case 'h':
			status = VERB_HELP;
			goto out;
		default:
			status = verb_option_error(ctx, c, argv, options);
			goto out;
		}
	}
	status = verb_arg(ctx, argc, argv, &run);
	if (status) {
		goto out;
	}
	if (!args->child) {
		status = verb_usage_error(ctx, "nothing to change: give --priority N, --cpus N, "
					  "--mem SIZE, --gpus N or --gpu-mem SIZE");
		goto out;
	}
	cJSON_AddStringToObject(args, "run", run);
	status = connect_call(ctx, "run.update", args, &result);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(result);
	} else {
		const cJSON *q = cJSON_GetObjectItemCaseSensitive(result, "request");
		printf("Run #%lld now has priority %lld and asks for %lld CPU%s",
		       json_int(result, "seq", 0), json_int(result, "priority", 0),
		       json_int(q, "cpus", 1), json_int(q, "cpus", 1) == 1 ? "" : "s");
		if (json_int(q, "mem", 0) > 0) {
			char size[32];
			render_size((double)json_int(q, "mem", 0), size);
			printf(", %s memory", size);
		}
		if (json_int(q, "gpus", 0) > 0) {
			printf(", %lld GPU%s", json_int(q, "gpus", 0),
			       json_int(q, "gpus", 0) == 1 ? "" : "s");
		}
		putchar('\n');
	}
out:
	cJSON_Delete(result);
	cJSON_Delete(args);
	return status;
}

const struct verb cmd_update_entry = {
	.name = "update",
	.run = update_cb,
	.summary = "Change a queued run's priority or resources",
	.usage = "Usage: runyard update RUN [--priority N] [--cpus N] [--mem SIZE]\n"
		 "                      [--gpus N] [--gpu-mem SIZE] [--json]\n"
		 "\n"
		 "Change what a run that is still queued waits with: its priority\n"
		 "(-1000..1000, higher starts first; it takes its new place in the line at\n"
		 "once) and, on this machine, what it asks for (as 'runyard submit' takes\n"
		 "them; the others stay). A value that is refused changes nothing.\n",
	.min_args = 1,
	.max_args = 1,
	.missing = "which run? give its id or number",
};

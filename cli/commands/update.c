/* runyard update: change what a queued run waits with (its priority). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "connect.h"
#include "json.h"
#include "print.h"
#include "util.h"
#include "verb.h"
#include "commands/commands.h"

static int update_cb(struct ctx *ctx, int argc, char **argv)
{
	enum { OPT_PRIORITY = VERB_OPT_FIRST };
	static const struct option options[] = {
		{"priority", required_argument, NULL, OPT_PRIORITY},
		VERB_COMMON_OPTIONS,
		{0},
	};
	cJSON *args = cJSON_CreateObject(), *result = NULL;
	long long priority = 0;
	bool have = false;
	const char *run = NULL;
	int status = 0, c;

	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			ctx->json = true;
			break;
		case OPT_PRIORITY:
			if (util_parse_int(optarg, -1000, 1000, &priority) < 0) {
				status = verb_usage_error(ctx, "--priority needs an integer from -1000 "
							  "to 1000, not '%s'",
							  optarg);
				goto out;
			}
			have = true;
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
	if (!have) {
		status = verb_usage_error(ctx, "nothing to change: give --priority N");
		goto out;
	}
	cJSON_AddStringToObject(args, "run", run);
	cJSON_AddNumberToObject(args, "priority", (double)priority);
	status = connect_call(ctx, "run.update", args, &result);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(result);
	} else {
		printf("Run #%lld now has priority %lld\n", json_int(result, "seq", 0),
		       json_int(result, "priority", 0));
	}
out:
	cJSON_Delete(result);
	cJSON_Delete(args);
	return status;
}

const struct verb cmd_update_entry = {
	.name = "update",
	.run = update_cb,
	.summary = "Change a queued run's priority",
	.usage = "Usage: runyard update RUN --priority N [--json]\n"
		 "\n"
		 "Change the priority (-1000..1000, higher starts first) of a run that is\n"
		 "still queued; it takes its new place in the line at once.\n",
	.min_args = 1,
	.max_args = 1,
	.missing = "which run? give its id or number",
};

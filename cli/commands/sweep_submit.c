/* runyard sweep submit: the sweep's own flags and file keys over the run options of submit. */

#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connect.h"
#include "json.h"
#include "msg.h"
#include "print.h"
#include "util.h"
#include "verb.h"
#include "commands/runargs.h"
#include "commands/sweep.h"

/* Options of sweep submit's own; the run's are runargs.h's. */
enum {
	OPT_METRIC = RUNARGS_OPT_NEXT,
	OPT_GOAL,
	OPT_SAMPLING,
	OPT_PARAM,
	OPT_MAX_TOTAL,
	OPT_MAX_CONCURRENT,
	OPT_MAX_DURATION,
	OPT_POLICY,
	OPT_SEED,
};

/* The protocol's bounds (docs/protocol.md, sweep.submit). */
#define MAX_TOTAL 100000
#define MAX_CONCURRENT 1000
#define MAX_SEED (INT64_C(1) << 53)

static const char *const sweep_file_keys[] = {
	"metric", "goal", "sampling", "params", "max_total", "max_concurrent",
	"max_duration", "policy", "seed", NULL,
};

static bool one_of(const char *s, const char *a, const char *b, const char *c)
{
	return s && (strcmp(s, a) == 0 || strcmp(s, b) == 0 || (c && strcmp(s, c) == 0));
}

/* A sweep file's own keys, checked as the daemon would, so that a mistake
 * is reported against the file. */
static int check_sweep_file(const cJSON *doc, char **cause)
{
	const cJSON *ignored, *policy = cJSON_GetObjectItemCaseSensitive(doc, "policy");
	const char *goal = NULL, *sampling = NULL, *metric;
	double d = 1;
	int64_t i;
	int r;

	r = msg_arg_string(doc, "metric", false, &metric, cause);
	if (r == 0) {
		r = msg_arg_string(doc, "goal", false, &goal, cause);
	}
	if (r == 0 && goal && !one_of(goal, "maximize", "minimize", NULL)) {
		*cause = strdup("argument 'goal' must be \"maximize\" or \"minimize\"");
		r = -EINVAL;
	}
	if (r == 0) {
		r = msg_arg_string(doc, "sampling", false, &sampling, cause);
	}
	if (r == 0 && sampling && !one_of(sampling, "random", "grid", "bayesian")) {
		*cause = strdup("argument 'sampling' must be \"random\", \"grid\" or \"bayesian\"");
		r = -EINVAL;
	}
	if (r == 0) {
		r = msg_arg_string_map(doc, "params", false, &ignored, cause);
	}
	if (r == 0) {
		r = msg_arg_int(doc, "max_total", false, 1, MAX_TOTAL, &i, cause);
	}
	if (r == 0) {
		r = msg_arg_int(doc, "max_concurrent", false, 1, MAX_CONCURRENT, &i, cause);
	}
	if (r == 0) {
		r = msg_arg_number(doc, "max_duration", false, 0, 1e9, &d, cause);
		if (r == 0 && !(d > 0)) {
			*cause = strdup("argument 'max_duration' must be a number of minutes > 0");
			r = -EINVAL;
		}
	}
	if (r == 0) {
		r = msg_arg_int(doc, "seed", false, 0, MAX_SEED, &i, cause);
	}
	if (r == 0 && policy && !cJSON_IsString(policy) && !cJSON_IsObject(policy)) {
		*cause = strdup("argument 'policy' must be a string or an object");
		r = -EINVAL;
	}
	return r;
}

static const struct runargs_file sweep_file = {
	.noun = "sweep file",
	.keys = sweep_file_keys,
	.check = check_sweep_file,
};

/* What sweep submit's own flags said. */
struct sweep_flags {
	const char *metric;
	const char *goal;
	const char *sampling;
	const char *policy;
	long long max_total;
	long long max_concurrent;
	long long seed;
	bool have_seed;
	double max_duration;
	cJSON *params; /* --param, in order */
};

/* --param NAME=EXPR, split at the first '=' so that an option name such
 * as "--kernel" keeps an expression with '=' in it whole. A name given
 * twice keeps its first place and takes the last expression. */
static int param_flag(struct ctx *ctx, cJSON *params, const char *arg)
{
	const char *eq = strchr(arg, '=');
	cJSON *expr;
	char *name;

	if (!eq || eq == arg || !eq[1]) {
		return verb_usage_error(ctx, "--param needs NAME=EXPRESSION, not '%s'", arg);
	}
	name = strndup(arg, (size_t)(eq - arg));
	expr = cJSON_CreateString(eq + 1);
	if (!name || !expr) {
		free(name);
		cJSON_Delete(expr);
		return VERB_EXIT_USAGE;
	}
	if (cJSON_GetObjectItemCaseSensitive(params, name)) {
		cJSON_ReplaceItemInObjectCaseSensitive(params, name, expr);
	} else {
		cJSON_AddItemToObject(params, name, expr);
	}
	free(name);
	return 0;
}

/* Take one of sweep submit's own options: 0, VERB_EXIT_USAGE (said why),
 * or -ENOENT when c is not one of them. */
static int sweep_option(struct ctx *ctx, struct sweep_flags *sf, int c, const char *arg)
{
	switch (c) {
	case OPT_METRIC:
		sf->metric = arg;
		return 0;
	case OPT_GOAL:
		if (!one_of(arg, "maximize", "minimize", NULL)) {
			return verb_usage_error(ctx, "--goal takes maximize or minimize, not '%s'", arg);
		}
		sf->goal = arg;
		return 0;
	case OPT_SAMPLING:
		if (!one_of(arg, "random", "grid", "bayesian")) {
			return verb_usage_error(ctx, "--sampling takes random, grid or bayesian, not '%s'",
						arg);
		}
		sf->sampling = arg;
		return 0;
	case OPT_PARAM:
		return param_flag(ctx, sf->params, arg);
	case OPT_MAX_TOTAL:
		if (util_parse_int(arg, 1, MAX_TOTAL, &sf->max_total) < 0) {
			return verb_usage_error(ctx, "--max-total needs a number from 1 to %d, not '%s'",
						MAX_TOTAL, arg);
		}
		return 0;
	case OPT_MAX_CONCURRENT:
		if (util_parse_int(arg, 1, MAX_CONCURRENT, &sf->max_concurrent) < 0) {
			return verb_usage_error(ctx, "--max-concurrent needs a number from 1 to %d, "
						"not '%s'", MAX_CONCURRENT, arg);
		}
		return 0;
	case OPT_MAX_DURATION:
		return verb_positive(ctx, "--max-duration", arg, &sf->max_duration);
	case OPT_POLICY:
		sf->policy = arg;
		return 0;
	case OPT_SEED:
		if (util_parse_int(arg, 0, MAX_SEED, &sf->seed) < 0) {
			return verb_usage_error(ctx, "--seed needs an integer from 0 to 2^53, not '%s'",
						arg);
		}
		sf->have_seed = true;
		return 0;
	default:
		return -ENOENT;
	}
}

/* The flags over the file's fields; --param merges into the file's params
 * name by name, as --env does into env. */
static void sweep_apply(const struct sweep_flags *sf, cJSON *args)
{
	cJSON *params = cJSON_GetObjectItemCaseSensitive(args, "params");
	const cJSON *p;

	if (sf->metric) {
		json_set(args, "metric", cJSON_CreateString(sf->metric));
	}
	if (sf->goal) {
		json_set(args, "goal", cJSON_CreateString(sf->goal));
	}
	if (sf->sampling) {
		json_set(args, "sampling", cJSON_CreateString(sf->sampling));
	}
	if (sf->policy) {
		json_set(args, "policy", cJSON_CreateString(sf->policy));
	}
	if (sf->max_total > 0) {
		json_set(args, "max_total", cJSON_CreateNumber((double)sf->max_total));
	}
	if (sf->max_concurrent > 0) {
		json_set(args, "max_concurrent", cJSON_CreateNumber((double)sf->max_concurrent));
	}
	if (sf->max_duration > 0) {
		json_set(args, "max_duration", cJSON_CreateNumber(sf->max_duration));
	}
	if (sf->have_seed) {
		json_set(args, "seed", cJSON_CreateNumber((double)sf->seed));
	}
	if (!sf->params->child) {
		return;
	}
	if (!cJSON_IsObject(params)) {
		params = cJSON_CreateObject();
		json_set(args, "params", params);
	}
	cJSON_ArrayForEach(p, sf->params) {
		cJSON *expr = cJSON_CreateString(p->valuestring);
		if (cJSON_GetObjectItemCaseSensitive(params, p->string)) {
			cJSON_ReplaceItemInObjectCaseSensitive(params, p->string, expr);
		} else {
			cJSON_AddItemToObject(params, p->string, expr);
		}
	}
}

/* What the daemon would refuse for want of it, said as a usage error
 * naming the flag, after the file and the flags are merged. */
static int sweep_complete(struct ctx *ctx, const cJSON *args, bool dry_run)
{
	const char *sampling = json_str(args, "sampling");

	if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(args, "command")) && !dry_run) {
		return verb_usage_error(ctx, "no program to run: runyard sweep submit [OPTIONS] -- "
					"PROGRAM [ARGS...]");
	}
	if (!json_str(args, "metric")) {
		return verb_usage_error(ctx, "no --metric: which metric does the sweep optimise?");
	}
	if (!json_str(args, "goal")) {
		return verb_usage_error(ctx, "no --goal: give --goal maximize or --goal minimize");
	}
	if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(args, "params")) == 0) {
		return verb_usage_error(ctx, "no --param: give at least one --param NAME=EXPRESSION");
	}
	if (!cJSON_GetObjectItemCaseSensitive(args, "max_total") &&
	    !(sampling && strcmp(sampling, "grid") == 0)) {
		return verb_usage_error(ctx, "no --max-total: only a grid sweep has a size of its own");
	}
	return 0;
}

/* "Submitted sweep #SEQ ID (experiment E): maximize M, grid over 2 parameters, 6 trials". */
static void print_submitted(const cJSON *result)
{
	const cJSON *def = cJSON_GetObjectItemCaseSensitive(result, "sweep");
	int nparams = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(def, "params"));
	long long total = json_int(def, "max_total", 0);
	long long concurrent = json_int(def, "max_concurrent", total);

	printf("Submitted sweep #%lld %s (experiment %s): %s %s, %s over %d parameter%s, "
	       "%lld trial%s, %lld at a time\n",
	       json_int(result, "seq", 0), json_str(result, "id") ? json_str(result, "id") : "?",
	       json_str(result, "experiment") ? json_str(result, "experiment") : "?",
	       json_str(def, "goal") ? json_str(def, "goal") : "?",
	       json_str(def, "metric") ? json_str(def, "metric") : "?",
	       json_str(def, "sampling") ? json_str(def, "sampling") : "random", nparams,
	       nparams == 1 ? "" : "s", total, total == 1 ? "" : "s", concurrent);
}

static int sweep_submit_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		RUNARGS_OPTIONS,
		{"metric", required_argument, NULL, OPT_METRIC},
		{"goal", required_argument, NULL, OPT_GOAL},
		{"sampling", required_argument, NULL, OPT_SAMPLING},
		{"param", required_argument, NULL, OPT_PARAM},
		{"max-total", required_argument, NULL, OPT_MAX_TOTAL},
		{"max-concurrent", required_argument, NULL, OPT_MAX_CONCURRENT},
		{"max-duration", required_argument, NULL, OPT_MAX_DURATION},
		{"policy", required_argument, NULL, OPT_POLICY},
		{"seed", required_argument, NULL, OPT_SEED},
		VERB_COMMON_OPTIONS,
		{0},
	};
	struct sweep_flags sf = {.params = cJSON_CreateObject()};
	cJSON *args = NULL, *result = NULL;
	struct runargs ra;
	int status = 0, c;
	bool done = false;

	if (!sf.params || runargs_init(&ra) < 0) {
		cJSON_Delete(sf.params);
		fprintf(stderr, "runyard: out of memory\n");
		return VERB_EXIT_USAGE;
	}
	/* "+": options end at the program, whose own options follow it. */
	while ((c = getopt_long(argc, argv, "+:f:h", options, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			status = VERB_HELP;
			goto out;
		default:
			status = runargs_option(ctx, &ra, c, optarg);
			if (status == -ENOENT) {
				status = sweep_option(ctx, &sf, c, optarg);
			}
			if (status == -ENOENT) {
				status = verb_option_error(ctx, c, argv, options);
			}
			if (status) {
				goto out;
			}
			break;
		}
	}

	status = runargs_load(&ra, &sweep_file, &args);
	if (status) {
		goto out;
	}
	/* Flags override the file. */
	if (optind < argc) {
		json_set(args, "command",
			 cJSON_CreateStringArray((const char *const *)argv + optind, argc - optind));
	}
	sweep_apply(&sf, args);
	status = sweep_complete(ctx, args, ra.dry_run);
	if (status) {
		goto out;
	}
	status = runargs_submit(ctx, &ra, "sweep.submit", args, &result, &done);
	if (status || done) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(result);
	} else {
		print_submitted(result);
	}
out:
	cJSON_Delete(result);
	cJSON_Delete(args);
	cJSON_Delete(sf.params);
	runargs_finish(&ra);
	return status;
}

const struct verb sweep_submit_entry = {
	.name = "submit",
	.run = sweep_submit_cb,
	.summary = "Snapshot a source directory once and queue a sweep of runs",
	.usage = "Usage: runyard sweep submit --metric NAME --goal maximize|minimize\n"
		 "                            --param NAME=EXPRESSION... [OPTIONS] [--] PROGRAM "
		 "[ARGS...]\n"
		 "       runyard sweep submit -f sweep.json [OPTIONS] [-- PROGRAM [ARGS...]]\n"
		 "\n"
		 "Snapshot the source directory once and queue a sweep: runs of PROGRAM ARGS,\n"
		 "each followed by one value of every parameter (NAME VALUE), chosen to find\n"
		 "the best value of a metric the runs log.\n"
		 "\n"
		 "  --metric NAME      the metric to optimise (each run's best value counts)\n"
		 "  --goal G           maximize or minimize it\n"
		 "  --param NAME=EXPR  a parameter and its search space, split at the first\n"
		 "                     '=' (repeatable, in order): choice(a, b, ...),\n"
		 "                     randint(N), uniform(lo, hi), loguniform(lo, hi),\n"
		 "                     normal(mu, sigma), quniform(lo, hi, q), ...\n"
		 "  --sampling S       random (default), grid or bayesian\n"
		 "  --max-total N      runs to start, 1..100000 (default for grid: its size)\n"
		 "  --max-concurrent K runs at a time, 1..1000 (default: N)\n"
		 "  --max-duration MIN cancel what is left after MIN minutes\n"
		 "  --policy P[,k=v...]\n"
		 "                     early termination: bandit, median, truncation, asha or\n"
		 "                     none (default), e.g. bandit,slack_factor=0.2\n"
		 "  --seed S           seed of the sampling, 0..2^53 (default: drawn, recorded)\n"
		 "  -f, --file FILE    take the fields from a JSON sweep file; flags override it\n"
		 "  --json             print the submit result\n"
		 "\n"
		 "And the run options of 'runyard submit', for every run: --experiment,\n"
		 "--source, --python, --environment, --timeout, --priority, --env, --keep,\n"
		 "--dry-run, --max-snapshot-mb, --max-snapshot-files, --target, --nodes,\n"
		 "--cpus, --memory-gb, --time-limit, --input, --input-path, --output, --mem,\n"
		 "--gpus, --gpu-mem, --retries, --retry-on.\n"
		 "\n"
		 "Options end at PROGRAM; everything after it is its arguments.\n",
	.max_args = VERB_ANY,
};


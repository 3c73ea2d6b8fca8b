/* runyard sweep: the group's table, and list, show, explain and cancel of sweeps. */

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connect.h"
#include "json.h"
#include "msg.h"
#include "print.h"
#include "render.h"
#include "util.h"
#include "verb.h"
#include "commands/commands.h"
#include "commands/sweep.h"

/* Long options without a short form. */
enum {
	OPT_EXPERIMENT = VERB_OPT_FIRST,
	OPT_LIMIT,
};

/* The items of obj joined by sep, each "KEY=VALUE" (keys) or "VALUE" with
 * values as render_metric_value() gives them, leaving out the key skip and
 * stopping after max items (max < 1: all); malloc'd, NULL when out of memory. */
static char *join_text(const cJSON *obj, bool keys, const char *skip, const char *sep,
		       long long max)
{
	const cJSON *it;
	char *text = NULL;
	size_t len = 0;
	long long n = 0;
	FILE *out = open_memstream(&text, &len);

	if (!out) {
		return NULL;
	}
	cJSON_ArrayForEach(it, obj) {
		char *v;
		if (max >= 1 && n >= max) {
			break;
		}
		if (skip && it->string && strcmp(it->string, skip) == 0) {
			continue;
		}
		v = render_metric_value(it, 40);
		fprintf(out, "%s%s%s%s", n++ ? sep : "", keys && it->string ? it->string : "",
			keys ? "=" : "", v ? v : "?");
		free(v);
	}
	if (fclose(out) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

/* "bandit (slack_factor=0.2, evaluation_interval=1)", or "none"; malloc'd. */
static char *policy_text(const cJSON *policy)
{
	const char *name = json_str(policy, "name");
	char *fields, *text;

	if (cJSON_IsString(policy)) {
		return strdup(policy->valuestring);
	}
	if (!name) {
		return strdup("none");
	}
	fields = join_text(policy, true, "name", ", ", 0);
	text = fields && fields[0] ? msg_strdupf("%s (%s)", name, fields) : strdup(name);
	free(fields);
	return text;
}

/* A number for people: %.6g, "-" when there is none. */
static void number_text(const cJSON *obj, const char *key, char buf[32])
{
	double v;

	if (json_num(obj, key, &v)) {
		snprintf(buf, 32, "%.6g", v);
	} else {
		snprintf(buf, 32, "-");
	}
}

static int sweep_list_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{"experiment", required_argument, NULL, OPT_EXPERIMENT},
		{"limit", required_argument, NULL, OPT_LIMIT},
		VERB_COMMON_OPTIONS,
		{0},
	};
	static const char *const headers[] = {"#",	"ID",	  "EXPERIMENT", "STATUS",
					      "TRIALS", "METRIC", "BEST",	"CREATED"};
	cJSON *args = cJSON_CreateObject(), *result = NULL;
	struct render_table *t = NULL;
	const cJSON *sweeps, *s;
	long long limit;
	int status = 0, c;

	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPT_EXPERIMENT:
			json_set(args, "experiment", cJSON_CreateString(optarg));
			break;
		case OPT_LIMIT:
			if (util_parse_int(optarg, 1, 100000, &limit) < 0) {
				status = verb_usage_error(ctx, "--limit needs an integer from 1 to 100000, "
							  "not '%s'", optarg);
				goto out;
			}
			json_set(args, "limit", cJSON_CreateNumber((double)limit));
			break;
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			status = VERB_HELP;
			goto out;
		default:
			status = verb_option_error(ctx, c, argv, options);
			goto out;
		}
	}
	status = verb_args(ctx, argc, argv);
	if (status) {
		goto out;
	}
	status = connect_list(ctx, "sweep.list", args, "sweeps", "No sweeps.", &result, &sweeps);
	if (status || !sweeps) {
		goto out;
	}
	t = render_table_create(8, headers);
	if (!t) {
		status = VERB_EXIT_USAGE;
		goto out;
	}
	render_table_align_right(t, 0);
	render_table_align_right(t, 4);
	render_table_align_right(t, 6);
	render_table_status_column(t, 3);
	cJSON_ArrayForEach(s, sweeps) {
		char num[32], trials[64], metric[256], best[32], created[32];
		const char *goal = json_str(s, "goal");

		snprintf(num, sizeof(num), "%lld", json_int(s, "seq", 0));
		snprintf(trials, sizeof(trials), "%lld/%lld", json_int(s, "trials", 0),
			 json_int(s, "max_total", 0));
		snprintf(metric, sizeof(metric), "%s (%s)",
			 json_str(s, "metric") ? json_str(s, "metric") : "?",
			 goal && strcmp(goal, "minimize") == 0 ? "min" : "max");
		number_text(cJSON_GetObjectItemCaseSensitive(s, "best"), "value", best);
		render_time(json_str(s, "created_at"), created);
		const char *cells[] = {num, json_str(s, "id"), json_str(s, "experiment"),
				       json_str(s, "status"), trials, metric, best, created};
		if (render_table_add_row(t, cells) < 0) {
			status = VERB_EXIT_USAGE;
			goto out;
		}
	}
	render_table_print(t, stdout);
out:
	render_table_destroy(t);
	cJSON_Delete(result);
	cJSON_Delete(args);
	return status;
}

static const struct verb sweep_list_entry = {
	.name = "list",
	.run = sweep_list_cb,
	.summary = "List sweeps, newest first",
	.usage = "Usage: runyard sweep list [--experiment NAME] [--limit N] [--json]\n"
		 "\n"
		 "List sweeps, newest first (at most N, default 100): status, runs started of\n"
		 "the most, the metric and the best value so far.\n",
};

/* One call of a sweep op about the sweep named sweep. */
static int sweep_call(struct ctx *ctx, const char *op, const char *sweep, cJSON **ret_result)
{
	cJSON *args = cJSON_CreateObject();
	int status;

	if (!args) {
		return VERB_EXIT_USAGE;
	}
	cJSON_AddStringToObject(args, "sweep", sweep);
	status = connect_call(ctx, op, args, ret_result);
	cJSON_Delete(args);
	return status;
}

/* "Trials:     4 of 6: 2 Completed, 1 Running, 1 Queued". */
static void print_counts(const cJSON *sw)
{
	const cJSON *def = cJSON_GetObjectItemCaseSensitive(sw, "definition");
	const cJSON *n;

	printf("%-11s %lld", "Trials:", json_int(sw, "trials", 0));
	if (json_int(def, "max_total", 0) > 0) {
		printf(" of %lld", json_int(def, "max_total", 0));
	}
	const char *sep = ": ";
	cJSON_ArrayForEach(n, cJSON_GetObjectItemCaseSensitive(sw, "counts")) {
		if (cJSON_IsNumber(n) && n->valuedouble > 0) {
			printf("%s%.0f %s%s%s", sep, n->valuedouble, render_status_color(n->string),
			       n->string, render_status_color(n->string)[0] ? render_color_reset() : "");
			sep = ", ";
		}
	}
	putchar('\n');
}

/* "Best:       #19 ID: 0.97 (Completed)", then its arguments. */
static void print_best(const cJSON *sw)
{
	const cJSON *best = cJSON_GetObjectItemCaseSensitive(sw, "best");
	char value[32], *args;

	if (!cJSON_IsObject(best)) {
		print_field("Best:", "none yet");
		return;
	}
	number_text(best, "value", value);
	printf("%-11s #%lld %s: %s (%s)\n", "Best:", json_int(best, "seq", 0),
	       json_str(best, "id") ? json_str(best, "id") : "?", value,
	       json_str(best, "status") ? json_str(best, "status") : "?");
	args = render_command(cJSON_GetObjectItemCaseSensitive(best, "arguments"));
	print_field("", args);
	free(args);
}

/* The early-termination decisions as a table, oldest first. */
static int print_decisions(const cJSON *decisions)
{
	static const char *const headers[] = {"CHILD", "INTERVAL", "AT", "MESSAGE"};
	struct render_table *t;
	const cJSON *d;
	int r = 0;

	if (cJSON_GetArraySize(decisions) == 0) {
		print_field("Decisions:", "none");
		return 0;
	}
	t = render_table_create(4, headers);
	if (!t) {
		return -ENOMEM;
	}
	render_table_align_right(t, 1);
	cJSON_ArrayForEach(d, decisions) {
		char child[32], interval[32], at[32];
		snprintf(child, sizeof(child), "#%lld", json_int(d, "child_seq", 0));
		snprintf(interval, sizeof(interval), "%lld", json_int(d, "interval", 0));
		render_time(json_str(d, "at"), at);
		const char *cells[] = {child, interval, at, json_str(d, "message")};
		r = render_table_add_row(t, cells);
		if (r < 0) {
			goto out;
		}
	}
	printf("Decisions:\n");
	render_table_print(t, stdout);
out:
	render_table_destroy(t);
	return r;
}

/* What a sweep has done so far: trials by status, the best, the decisions. */
static int print_progress(const cJSON *sw)
{
	print_counts(sw);
	print_best(sw);
	if (print_decisions(cJSON_GetObjectItemCaseSensitive(sw, "decisions")) < 0) {
		fprintf(stderr, "runyard: out of memory\n");
		return VERB_EXIT_USAGE;
	}
	return 0;
}

int sweep_show_summary(struct ctx *ctx, const char *id)
{
	cJSON *sw = NULL;
	int status = sweep_call(ctx, "sweep.show", id, &sw);

	if (status == 0) {
		putchar('\n');
		status = print_progress(sw);
	}
	cJSON_Delete(sw);
	return status;
}

/* "at most 6 trials, 2 at a time, for 30 minutes". */
static void print_limits(const cJSON *def)
{
	double minutes;

	printf("%-11s at most %lld trial%s, %lld at a time", "Limits:", json_int(def, "max_total", 0),
	       json_int(def, "max_total", 0) == 1 ? "" : "s", json_int(def, "max_concurrent", 0));
	if (json_num(def, "max_duration", &minutes)) {
		printf(", for %.6g minute%s", minutes, minutes == 1 ? "" : "s");
	}
	putchar('\n');
}

/* The definition: program, metric and goal, sampling, parameters, limits, policy. */
static void print_definition(const cJSON *sw)
{
	const cJSON *def = cJSON_GetObjectItemCaseSensitive(sw, "definition");
	const cJSON *error = cJSON_GetObjectItemCaseSensitive(sw, "error");
	const char *st = json_str(sw, "status"), *label = "Params:";
	const cJSON *p;
	char buf[64], when[32], *text;

	snprintf(buf, sizeof(buf), "#%lld", json_int(sw, "seq", 0));
	printf("%-11s %s (%s)\n", "Sweep:", json_str(sw, "id") ? json_str(sw, "id") : "?", buf);
	print_field("Experiment:", json_str(sw, "experiment"));
	printf("%-11s %s%s%s\n", "Status:", render_status_color(st), st ? st : "?",
	       render_status_color(st)[0] ? render_color_reset() : "");
	if (cJSON_IsObject(error)) {
		printf("%-11s %s: %s\n", "Error:", json_str(error, "code") ? json_str(error, "code") : "?",
		       json_str(error, "message") ? json_str(error, "message") : "");
	}
	text = render_command(cJSON_GetObjectItemCaseSensitive(def, "command"));
	print_field("Program:", text);
	free(text);
	printf("%-11s %s %s\n", "Metric:", json_str(def, "goal") ? json_str(def, "goal") : "?",
	       json_str(def, "metric") ? json_str(def, "metric") : "?");
	printf("%-11s %s, seed %lld\n", "Sampling:",
	       json_str(def, "sampling") ? json_str(def, "sampling") : "?", json_int(def, "seed", 0));
	cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(def, "params")) {
		printf("%-11s %s = %s\n", label, p->string, cJSON_IsString(p) ? p->valuestring : "?");
		label = "";
	}
	print_limits(def);
	text = policy_text(cJSON_GetObjectItemCaseSensitive(def, "policy"));
	print_field("Policy:", text);
	free(text);
	render_time(json_str(sw, "created_at"), when);
	print_field("Created:", when);
	render_time(json_str(sw, "ended_at"), when);
	print_field("Ended:", when);
}

static int sweep_show_cb(struct ctx *ctx, int argc, char **argv)
{
	const char *sweep = NULL;
	cJSON *sw = NULL;
	int status = verb_simple(ctx, argc, argv, &sweep);

	if (status) {
		return status;
	}
	status = sweep_call(ctx, "sweep.show", sweep, &sw);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(sw);
		goto out;
	}
	print_definition(sw);
	status = print_progress(sw);
out:
	cJSON_Delete(sw);
	return status;
}

static const struct verb sweep_show_entry = {
	.name = "show",
	.run = sweep_show_cb,
	.summary = "Show a sweep: its definition, trials, best run and decisions",
	.usage = "Usage: runyard sweep show SWEEP [--json]\n"
		 "\n"
		 "Show a sweep: program, metric and goal, sampling, each parameter with its\n"
		 "expression, limits and policy; its trials by status, the best so far with\n"
		 "its value and arguments, and every early-termination decision.\n"
		 "SWEEP is the sweep's id or its number (17 or #17).\n",
	.min_args = 1,
	.max_args = 1,
	.missing = "which sweep? give its id or number",
};

static const cJSON *child_by_seq(const cJSON *children, long long seq)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, children) {
		if (json_int(c, "seq", -1) == seq) {
			return c;
		}
	}
	return NULL;
}

/* Each decision replayed: the child, its values up to the interval, the
 * message, and the numbers that made it. */
static void print_replay(const cJSON *ex)
{
	const cJSON *children = cJSON_GetObjectItemCaseSensitive(ex, "children");
	const cJSON *decisions = cJSON_GetObjectItemCaseSensitive(ex, "decisions");
	const cJSON *d;
	int i = 0;

	if (cJSON_GetArraySize(decisions) == 0) {
		printf("No early-termination decisions.\n");
		return;
	}
	cJSON_ArrayForEach(d, decisions) {
		long long seq = json_int(d, "child_seq", 0), interval = json_int(d, "interval", 0);
		const cJSON *child = child_by_seq(children, seq);
		char *values = join_text(cJSON_GetObjectItemCaseSensitive(child, "values"), false, NULL, " ",
					   interval);
		char *detail = join_text(cJSON_GetObjectItemCaseSensitive(d, "detail"), true, NULL, " ", 0);

		printf("Decision %d: run #%lld %s at interval %lld (%s)\n", ++i, seq,
		       json_str(d, "child") ? json_str(d, "child") : "?", interval,
		       json_str(d, "policy") ? json_str(d, "policy") : "?");
		printf("  %-9s %s\n", "values:", values && values[0] ? values : "-");
		printf("  %-9s %s\n", "message:", json_str(d, "message") ? json_str(d, "message") : "-");
		printf("  %-9s %s\n", "detail:", detail && detail[0] ? detail : "-");
		free(values);
		free(detail);
	}
}

/* A line per child: number, id, status, score, values count, parameters. */
static int print_children(const cJSON *ex)
{
	static const char *const headers[] = {"#", "ID", "STATUS", "SCORE", "VALUES", "PARAMS"};
	const cJSON *children = cJSON_GetObjectItemCaseSensitive(ex, "children"), *c;
	struct render_table *t;
	int r = 0;

	if (cJSON_GetArraySize(children) == 0) {
		printf("No trials yet.\n");
		return 0;
	}
	t = render_table_create(6, headers);
	if (!t) {
		return -ENOMEM;
	}
	render_table_align_right(t, 0);
	render_table_align_right(t, 3);
	render_table_align_right(t, 4);
	render_table_status_column(t, 2);
	cJSON_ArrayForEach(c, children) {
		char num[32], score[32], nvalues[32];
		char *params = join_text(cJSON_GetObjectItemCaseSensitive(c, "params"), true, NULL, " ", 0);

		snprintf(num, sizeof(num), "%lld", json_int(c, "seq", 0));
		number_text(c, "score", score);
		snprintf(nvalues, sizeof(nvalues), "%d",
			 cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(c, "values")));
		const char *cells[] = {num, json_str(c, "id"), json_str(c, "status"), score, nvalues,
				       params};
		r = render_table_add_row(t, cells);
		free(params);
		if (r < 0) {
			goto out;
		}
	}
	render_table_print(t, stdout);
out:
	render_table_destroy(t);
	return r;
}

static int sweep_explain_cb(struct ctx *ctx, int argc, char **argv)
{
	const char *sweep = NULL;
	cJSON *ex = NULL;
	char *policy;
	int status = verb_simple(ctx, argc, argv, &sweep);

	if (status) {
		return status;
	}
	status = sweep_call(ctx, "sweep.explain", sweep, &ex);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(ex);
		goto out;
	}
	policy = policy_text(cJSON_GetObjectItemCaseSensitive(ex, "policy"));
	printf("Sweep %s: %s %s, policy %s\n\n", json_str(ex, "id") ? json_str(ex, "id") : "?",
	       json_str(ex, "goal") ? json_str(ex, "goal") : "?",
	       json_str(ex, "metric") ? json_str(ex, "metric") : "?", policy ? policy : "?");
	free(policy);
	print_replay(ex);
	putchar('\n');
	if (print_children(ex) < 0) {
		fprintf(stderr, "runyard: out of memory\n");
		status = VERB_EXIT_USAGE;
	}
out:
	cJSON_Delete(ex);
	return status;
}

static const struct verb sweep_explain_entry = {
	.name = "explain",
	.run = sweep_explain_cb,
	.summary = "Replay a sweep's early-termination decisions",
	.usage = "Usage: runyard sweep explain SWEEP [--json]\n"
		 "\n"
		 "Replay each early-termination decision: the run it stopped, its values of\n"
		 "the metric up to the interval, the policy's message and the numbers behind\n"
		 "it; then a line per run of the sweep (status, score, parameters), so each\n"
		 "decision can be checked by hand.\n",
	.min_args = 1,
	.max_args = 1,
	.missing = "which sweep? give its id or number",
};

static int sweep_cancel_cb(struct ctx *ctx, int argc, char **argv)
{
	const char *sweep = NULL;
	cJSON *result = NULL;
	long long n;
	int status = verb_simple(ctx, argc, argv, &sweep);

	if (status) {
		return status;
	}
	status = sweep_call(ctx, "sweep.cancel", sweep, &result);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(result);
		goto out;
	}
	n = json_int(result, "canceled", 0);
	printf("Sweep #%lld %s canceled (%lld run%s stopped)\n", json_int(result, "seq", 0),
	       json_str(result, "id") ? json_str(result, "id") : "?", n, n == 1 ? "" : "s");
out:
	cJSON_Delete(result);
	return status;
}

static const struct verb sweep_cancel_entry = {
	.name = "cancel",
	.run = sweep_cancel_cb,
	.summary = "Cancel a sweep and its queued and running runs",
	.usage = "Usage: runyard sweep cancel SWEEP [--json]\n"
		 "\n"
		 "Cancel a sweep: no more runs start, and its queued and running runs are\n"
		 "canceled (SweepCanceled). A sweep that has ended is refused (Conflict).\n",
	.min_args = 1,
	.max_args = 1,
	.missing = "which sweep? give its id or number",
};

static const struct verb *const sweep_verbs[] = {
	&sweep_submit_entry,
	&sweep_list_entry,
	&sweep_show_entry,
	&sweep_explain_entry,
	&sweep_cancel_entry,
	NULL,
};

const struct verb cmd_sweep_entry = {
	.name = "sweep",
	.subverbs = sweep_verbs,
	.summary = "Submit and follow hyperparameter sweeps",
	.usage = "Usage: runyard sweep submit --metric NAME --goal maximize|minimize "
		 "--param NAME=EXPR...\n"
		 "                            [OPTIONS] [--] PROGRAM [ARGS...]\n"
		 "       runyard sweep submit -f sweep.json [OPTIONS] [-- PROGRAM [ARGS...]]\n"
		 "       runyard sweep list [--experiment NAME] [--limit N]\n"
		 "       runyard sweep show SWEEP\n"
		 "       runyard sweep explain SWEEP\n"
		 "       runyard sweep cancel SWEEP\n"
		 "\n"
		 "Each takes --json. A sweep's runs: 'runyard runs --parent SWEEP'.\n"
		 "See 'runyard help sweep submit'.\n",
};

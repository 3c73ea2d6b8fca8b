/* Tracking: a run's metrics, runs compared side by side, tags and properties. */

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
#include "json.h"
#include "msg.h"
#include "print.h"
#include "render.h"
#include "select.h"
#include "util.h"
#include "verb.h"
#include "commands/commands.h"

/* Points per sparkline in 'runyard metrics' on a terminal. */
#define SPARK_POINTS 24
/* Points per run.metrics page. */
#define POINTS_PAGE 10000

/* A series' last value for a table cell. */
static char *metric_last_cell(const cJSON *m, size_t max)
{
	const cJSON *last = cJSON_GetObjectItemCaseSensitive(m, "last");
	const char *kind = json_str(m, "kind");

	if (kind && strcmp(kind, "image") == 0 && json_str(last, "path")) {
		return strdup(json_str(last, "path"));
	}
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m, "last_omitted"))) {
		return strdup("…"); /* too long for a summary; 'runyard metrics RUN NAME' has it */
	}
	return render_metric_value(last, max);
}

static int print_metric_points(struct ctx *ctx, const char *run, const char *name)
{
	static const char *const headers[] = {"STEP", "TIME", "VALUE"};
	cJSON *args = cJSON_CreateObject(), *result = NULL;
	struct render_json_array array;
	struct render_table *t = NULL;
	double after = 0, next;
	int status = 0;

	cJSON_AddStringToObject(args, "run", run);
	cJSON_AddStringToObject(args, "name", name);
	cJSON_AddNumberToObject(args, "limit", POINTS_PAGE);
	if (ctx->json) {
		render_json_array_begin(&array, stdout);
	} else {
		t = render_table_create(3, headers);
		if (!t) {
			status = VERB_EXIT_USAGE;
			goto out;
		}
		render_table_align_right(t, 0);
	}
	for (;;) {
		const cJSON *p;

		json_set(args, "after", cJSON_CreateNumber(after));
		status = connect_call(ctx, "run.metrics", args, &result);
		if (status) {
			goto out;
		}
		cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(result, "points")) {
			if (ctx->json) {
				if (render_json_array_add(&array, p) < 0) {
					status = VERB_EXIT_USAGE;
					goto out;
				}
				continue;
			}
			char step[32], when[32], *value;
			snprintf(step, sizeof(step), "%lld", json_int(p, "step", 0));
			render_time(json_str(p, "ts"), when);
			value = render_metric_value(cJSON_GetObjectItemCaseSensitive(p, "value"),
						    SIZE_MAX);
			const char *cells[] = {step, when, value};
			int r = value ? render_table_add_row(t, cells) : -ENOMEM;
			free(value);
			if (r < 0) {
				status = VERB_EXIT_USAGE;
				goto out;
			}
		}
		if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(result, "more"))) {
			break;
		}
		if (!json_num(result, "next", &next) || next <= after) {
			fprintf(stderr, "runyard: runyardd's run.metrics reply does not move on "
					"(next)\n");
			status = VERB_EXIT_REFUSED;
			goto out;
		}
		after = next;
		cJSON_Delete(result);
		result = NULL;
	}
	if (ctx->json) {
		render_json_array_end(&array);
	} else {
		render_table_print(t, stdout);
	}
out:
	render_table_destroy(t);
	cJSON_Delete(result);
	cJSON_Delete(args);
	return status;
}

static int metrics_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {VERB_COMMON_OPTIONS, {0}};
	static const char *const headers[] = {"NAME", "LAST", "MIN", "MAX", "COUNT", "TREND"};
	cJSON *args = NULL, *result = NULL;
	struct render_table *t = NULL;
	const cJSON *list, *m;
	const char *run;
	bool spark;
	int status = 0, c;

	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			return VERB_HELP;
		default:
			return verb_option_error(ctx, c, argv, options);
		}
	}
	status = verb_arg(ctx, argc, argv, &run);
	if (status) {
		return status;
	}
	if (optind + 1 < argc) {
		return print_metric_points(ctx, run, argv[optind + 1]);
	}
	spark = !ctx->json && render_stdout_tty();
	args = cJSON_CreateObject();
	cJSON_AddStringToObject(args, "run", run);
	if (spark) {
		cJSON_AddNumberToObject(args, "spark", SPARK_POINTS);
	}
	status = connect_call(ctx, "run.metrics", args, &result);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(result);
		goto out;
	}
	list = cJSON_GetObjectItemCaseSensitive(result, "metrics");
	if (cJSON_GetArraySize(list) == 0) {
		printf("No metrics.\n");
		goto out;
	}
	t = render_table_create(spark ? 6 : 5, headers);
	if (!t) {
		status = VERB_EXIT_USAGE;
		goto out;
	}
	for (size_t i = 2; i <= 4; i++) {
		render_table_align_right(t, i);
	}
	cJSON_ArrayForEach(m, list) {
		const cJSON *sp = cJSON_GetObjectItemCaseSensitive(m, "spark");
		char lo[32] = "-", hi[32] = "-", count[32], line[3 * SPARK_POINTS + 1] = "";
		char *last = metric_last_cell(m, 40);
		double v;
		if (json_num(m, "min", &v)) {
			snprintf(lo, sizeof(lo), "%.6g", v);
		}
		if (json_num(m, "max", &v)) {
			snprintf(hi, sizeof(hi), "%.6g", v);
		}
		snprintf(count, sizeof(count), "%lld", json_int(m, "count", 0));
		if (cJSON_GetArraySize(sp) > 1) {
			double vals[SPARK_POINTS];
			size_t n = 0;
			const cJSON *x;
			cJSON_ArrayForEach(x, sp) {
				if (n < SPARK_POINTS) {
					vals[n++] = cJSON_IsNumber(x) ? x->valuedouble : NAN;
				}
			}
			render_sparkline(vals, n, line);
		}
		const char *cells[] = {json_str(m, "name"), last, lo, hi, count, line};
		int r = last ? render_table_add_row(t, cells) : -ENOMEM;
		free(last);
		if (r < 0) {
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

const struct verb cmd_metrics_entry = {
	.name = "metrics",
	.run = metrics_cb,
	.summary = "Show a run's metrics, or every point of one",
	.usage = "Usage: runyard metrics RUN [NAME] [--json]\n"
		 "\n"
		 "Without NAME: a table of the run's metrics (name, last value, min, max,\n"
		 "number of points; on a terminal a sparkline of each numeric series).\n"
		 "With NAME: every point of that metric (step, time, value).\n"
		 "\n"
		 "  --json  print the run.metrics result; with NAME, a JSON array of points\n",
	.min_args = 1,
	.max_args = 2,
	.missing = "which run? give its id or number",
};

/* The metric names of several runs' summaries, each once, in the order
 * they first appear. */
static cJSON *metric_names(const cJSON *runs)
{
	cJSON *names = cJSON_CreateObject(), *order = cJSON_CreateArray();
	const cJSON *run, *m;

	cJSON_ArrayForEach(run, runs) {
		cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(run, "metrics")) {
			const char *name = json_str(m, "name");
			if (name && !cJSON_GetObjectItemCaseSensitive(names, name)) {
				cJSON_AddTrueToObject(names, name);
				cJSON_AddItemToArray(order, cJSON_CreateString(name));
			}
		}
	}
	cJSON_Delete(names);
	return order;
}

static const cJSON *find_metric(const cJSON *run, const char *name)
{
	const cJSON *m;

	cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(run, "metrics")) {
		if (json_str(m, "name") && strcmp(json_str(m, "name"), name) == 0) {
			return m;
		}
	}
	return NULL;
}

/* One table: a row per name, a column per run. */
static int compare_table(const cJSON *runs, const char *label, const cJSON *names, bool tags)
{
	size_t n = (size_t)cJSON_GetArraySize(runs) + 1, k;
	const char **headers = calloc(n, sizeof(*headers));
	const char **cells = calloc(n, sizeof(*cells));
	char **owned = calloc(n, sizeof(*owned));
	struct render_table *t = NULL;
	const cJSON *run, *name;
	int r = -ENOMEM;

	if (!headers || !cells || !owned) {
		goto out;
	}
	headers[0] = label;
	k = 1;
	cJSON_ArrayForEach(run, runs) {
		headers[k++] = json_str(run, "label");
	}
	t = render_table_create(n, headers);
	if (!t) {
		goto out;
	}
	cJSON_ArrayForEach(name, names) {
		cells[0] = name->valuestring;
		k = 1;
		cJSON_ArrayForEach(run, runs) {
			if (tags) {
				cells[k] = json_str(cJSON_GetObjectItemCaseSensitive(run, "tags"),
						    name->valuestring);
			} else {
				const cJSON *m = find_metric(run, name->valuestring);
				owned[k] = m ? metric_last_cell(m, 24) : NULL;
				cells[k] = owned[k];
			}
			k++;
		}
		r = render_table_add_row(t, cells);
		for (k = 1; k < n; k++) {
			free(owned[k]);
			owned[k] = NULL;
		}
		if (r < 0) {
			goto out;
		}
	}
	render_table_print(t, stdout);
	r = 0;
out:
	render_table_destroy(t);
	free(headers);
	free(cells);
	free(owned);
	return r;
}

static int compare_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {VERB_COMMON_OPTIONS, {0}};
	cJSON *args = NULL, *doc = cJSON_CreateObject(), *runs, *names = NULL, *tag_names = NULL;
	int status = 0, c;

	runs = cJSON_AddArrayToObject(doc, "runs");
	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
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
	for (int i = optind; i < argc; i++) {
		cJSON *run = NULL, *metrics = NULL, *entry;
		args = cJSON_CreateObject();
		cJSON_AddStringToObject(args, "run", argv[i]);
		status = connect_call(ctx, "run.show", args, &run);
		if (!status) {
			status = connect_call(ctx, "run.metrics", args, &metrics);
		}
		cJSON_Delete(args);
		args = NULL;
		if (status) {
			cJSON_Delete(run);
			goto out;
		}
		entry = cJSON_CreateObject();
		static const char *const keep[] = {"id", "seq", "experiment", "status", "tags",
						   "properties"};
		for (size_t k = 0; k < sizeof(keep) / sizeof(keep[0]); k++) {
			cJSON *it = cJSON_DetachItemFromObjectCaseSensitive(run, keep[k]);
			if (it) {
				cJSON_AddItemToObject(entry, keep[k], it);
			}
		}
		cJSON_AddItemToObject(entry, "metrics",
				      cJSON_DetachItemFromObjectCaseSensitive(metrics, "metrics"));
		cJSON_AddItemToArray(runs, entry);
		cJSON_Delete(run);
		cJSON_Delete(metrics);
	}
	if (ctx->json) {
		status = print_json(doc);
		goto out;
	}
	/* A column per run headed #SEQ; the status is the first row. */
	const cJSON *run, *kv;
	cJSON *seen = cJSON_CreateObject();
	names = cJSON_CreateArray();
	tag_names = cJSON_CreateArray();
	cJSON_AddItemToArray(names, cJSON_CreateString("(status)"));
	cJSON_ArrayForEach(run, runs) {
		char *label = msg_strdupf("#%lld", json_int(run, "seq", 0));
		cJSON_AddStringToObject((cJSON *)run, "label", label ? label : "?");
		free(label);
		cJSON *st = cJSON_CreateObject();
		cJSON_AddStringToObject(st, "name", "(status)");
		cJSON_AddStringToObject(st, "kind", "scalar");
		cJSON_AddStringToObject(st, "last", json_str(run, "status") ? json_str(run, "status")
									    : "?");
		cJSON *ms = cJSON_GetObjectItemCaseSensitive(run, "metrics");
		if (!cJSON_IsArray(ms)) {
			ms = cJSON_CreateArray();
			json_set((cJSON *)run, "metrics", ms);
		}
		cJSON_InsertItemInArray(ms, 0, st);
		cJSON_ArrayForEach(kv, cJSON_GetObjectItemCaseSensitive(run, "tags")) {
			if (!cJSON_GetObjectItemCaseSensitive(seen, kv->string)) {
				cJSON_AddTrueToObject(seen, kv->string);
				cJSON_AddItemToArray(tag_names, cJSON_CreateString(kv->string));
			}
		}
	}
	cJSON_Delete(seen);
	cJSON *more = metric_names(runs);
	cJSON *it;
	cJSON_ArrayForEach(it, more) {
		if (strcmp(it->valuestring, "(status)") != 0) {
			cJSON_AddItemToArray(names, cJSON_CreateString(it->valuestring));
		}
	}
	cJSON_Delete(more);
	if (compare_table(runs, "METRIC", names, false) < 0) {
		status = VERB_EXIT_USAGE;
		goto out;
	}
	if (cJSON_GetArraySize(tag_names) > 0) {
		putchar('\n');
		if (compare_table(runs, "TAG", tag_names, true) < 0) {
			status = VERB_EXIT_USAGE;
		}
	}
out:
	cJSON_Delete(names);
	cJSON_Delete(tag_names);
	cJSON_Delete(args);
	cJSON_Delete(doc);
	return status;
}

const struct verb cmd_compare_entry = {
	.name = "compare",
	.run = compare_cb,
	.summary = "Compare runs' metrics and tags side by side",
	.usage = "Usage: runyard compare RUN RUN... [--json]\n"
		 "\n"
		 "A table with a column per run: its status, the last value of each metric\n"
		 "any of the runs logged, then its tags.\n"
		 "\n"
		 "  --json  print {\"runs\": [{id, seq, experiment, status, tags, properties,\n"
		 "          metrics}]}\n",
	.min_args = 2,
	.max_args = VERB_ANY,
	.missing = "compare needs at least two runs",
};

static int tag_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{"remove", required_argument, NULL, 'd'},
		{"property", required_argument, NULL, 'p'},
		SELECT_OPTIONS,
		VERB_COMMON_OPTIONS,
		{0},
	};
	cJSON *args = cJSON_CreateObject(), *result = NULL, *runs = NULL, *all = cJSON_CreateArray();
	cJSON *tags = cJSON_AddObjectToObject(args, "tags");
	cJSON *props = cJSON_AddObjectToObject(args, "properties");
	struct select_opts sel = {0};
	const cJSON *run;
	int status = 0, c, many = 0, refs;

	while ((c = getopt_long(argc, argv, ":hd:p:", options, NULL)) != -1) {
		if (select_option(&sel, c, optarg)) {
			continue;
		}
		switch (c) {
		case 'd':
			if (!optarg[0]) {
				status = verb_usage_error(ctx, "--remove needs a tag key");
				goto out;
			}
			json_set(tags, optarg, cJSON_CreateNull());
			break;
		case 'p':
			status = verb_key_value(ctx, props, optarg, "property");
			if (status) {
				goto out;
			}
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
	/* The first word names a run; more runs may follow it, then the tags.
	 * A word that is neither is left for the tags, which refuse it. */
	refs = optind < argc ? optind + 1 : optind;
	while (refs < argc && select_is_ref(argv[refs])) {
		refs++;
	}
	for (int i = refs; i < argc; i++) {
		status = verb_key_value(ctx, tags, argv[i], "tag");
		if (status) {
			goto out;
		}
	}
	status = select_list(ctx, refs, argv, optind, &sel, &runs, &many);
	if (status) {
		goto out;
	}
	cJSON_ArrayForEach(run, runs) {
		cJSON_DeleteItemFromObjectCaseSensitive(args, "run");
		cJSON_AddStringToObject(args, "run", run->valuestring);
		cJSON_Delete(result);
		result = NULL;
		status = connect_call(ctx, "run.tag", args, &result);
		if (status) {
			goto out;
		}
		if (ctx->json) {
			cJSON_AddItemToArray(all, cJSON_Duplicate(result, true));
			continue;
		}
		printf("Run #%lld\n", json_int(result, "seq", 0));
		print_key_values("Tags:", cJSON_GetObjectItemCaseSensitive(result, "tags"));
		print_key_values("Properties:",
				 cJSON_GetObjectItemCaseSensitive(result, "properties"));
	}
	if (ctx->json) {
		status = print_json(many ? all : all->child);
	}
out:
	cJSON_Delete(result);
	cJSON_Delete(args);
	cJSON_Delete(runs);
	cJSON_Delete(all);
	return status;
}

const struct verb cmd_tag_entry = {
	.name = "tag",
	.run = tag_cb,
	.summary = "Set or remove runs' tags (and add properties)",
	.usage = "Usage: runyard tag RUN... [KEY=VALUE...] [--remove KEY]... "
		 "[--property KEY=VALUE]... [--json]\n"
		 "       [--experiment E] [--status S] [--parent SWEEP]\n"
		 "\n"
		 "Set tags of runs (KEY= sets an empty value), remove tags, add\n"
		 "properties (immutable: another value for a key that has one is refused),\n"
		 "then print the run's tags and properties. Nothing changes unless all of\n"
		 "them are accepted. Limits: 50 tags and 50 properties, keys up to 100\n"
		 "characters, values up to 1000.\n"
		 "\n"
		 "  -d, --remove KEY          remove the tag KEY (repeatable)\n"
		 "  -p, --property KEY=VALUE  add a property (repeatable)\n",
	.max_args = VERB_ANY,
	.missing = "which run? give its id or number",
};

/* Runs: list, show, logs, wait, cancel, and the experiments they are filed under. */

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

#include "client.h"
#include "connect.h"
#include "follow.h"
#include "json.h"
#include "msg.h"
#include "print.h"
#include "render.h"
#include "select.h"
#include "util.h"
#include "verb.h"
#include "commands/commands.h"
#include "commands/sweep.h"

/* Long options without a short form. */
enum {
	OPT_EXPERIMENT = VERB_OPT_FIRST,
	OPT_STATUS,
	OPT_LIMIT,
	OPT_STREAM,
	OPT_TIMESTAMPS,
	OPT_SHOW_OUTPUT,
	OPT_TIMEOUT,
	OPT_PARENT,
};

static const char *const terminal_statuses[] = {"Completed", "Failed", "Canceled"};

static bool is_terminal(const char *status)
{
	for (size_t i = 0; i < sizeof(terminal_statuses) / sizeof(terminal_statuses[0]); i++) {
		if (status && strcmp(status, terminal_statuses[i]) == 0) {
			return true;
		}
	}
	return false;
}

/* "run", "sweep", or for a sweep's child "trial of #SEQ" when its sweep is
 * in the same list (else "trial"), "child of #SEQ" for the child of a run
 * (an interactive run's, a submit_child's): a child's parent is only an
 * id, and looking the parent up apart would cost a call per row. */
static void kind_text(const cJSON *runs, const cJSON *run, char buf[48])
{
	const char *kind = json_str(run, "kind"), *parent = json_str(run, "parent");
	const cJSON *r;

	if (!parent) {
		snprintf(buf, 48, "%s", kind ? kind : "run");
		return;
	}
	cJSON_ArrayForEach(r, runs) {
		if (json_str(r, "id") && strcmp(json_str(r, "id"), parent) == 0) {
			const char *pk = json_str(r, "kind") ? json_str(r, "kind") : "run";
			snprintf(buf, 48, "%s of #%lld",
				 strcmp(pk, "array") == 0   ? "element"
				 : strcmp(pk, "sweep") == 0 ? "trial"
							    : "child",
				 json_int(r, "seq", 0));
			return;
		}
	}
	snprintf(buf, 48, "trial");
}

static int runs_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{"experiment", required_argument, NULL, OPT_EXPERIMENT},
		{"status", required_argument, NULL, OPT_STATUS},
		{"limit", required_argument, NULL, OPT_LIMIT},
		{"parent", required_argument, NULL, OPT_PARENT},
		{"array", required_argument, NULL, OPT_PARENT},
		VERB_COMMON_OPTIONS,
		{0},
	};
	static const char *const headers[] = {"#",	  "ID",	     "KIND",	 "EXPERIMENT",
					      "STATUS",	  "CREATED", "DURATION", "COMMAND"};
	cJSON *args = cJSON_CreateObject(), *result = NULL;
	struct render_table *t = NULL;
	const cJSON *runs, *run;
	long long limit;
	int status = 0, c;

	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPT_EXPERIMENT:
			json_set(args, "experiment", cJSON_CreateString(optarg));
			break;
		case OPT_STATUS:
			json_set(args, "status", cJSON_CreateString(optarg));
			break;
		case OPT_PARENT:
			json_set(args, "parent", cJSON_CreateString(optarg));
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
	status = connect_list(ctx, "run.list", args, "runs", "No runs.", &result, &runs);
	if (status || !runs) {
		goto out;
	}
	t = render_table_create(8, headers);
	if (!t) {
		status = VERB_EXIT_USAGE;
		goto out;
	}
	render_table_align_right(t, 0);
	render_table_status_column(t, 4);
	cJSON_ArrayForEach(run, runs) {
		const char *st = json_str(run, "status");
		char num[32], kind[48], created[32], dur[32];
		double d = -1, started = json_time(run, "started_at");
		char *cmd = render_command(cJSON_GetObjectItemCaseSensitive(run, "command"));

		snprintf(num, sizeof(num), "%lld", json_int(run, "seq", 0));
		render_time(json_str(run, "created_at"), created);
		if (!json_num(run, "duration", &d) && !is_terminal(st) && started > 0) {
			/* Still going: how long so far. */
			d = util_now_wall() - started;
		}
		render_duration(d, dur);
		kind_text(runs, run, kind);
		const char *cells[] = {num, json_str(run, "id"), kind,
				       json_str(run, "experiment"), st, created, dur, cmd};
		int r = render_table_add_row(t, cells);
		free(cmd);
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

const struct verb cmd_runs_entry = {
	.name = "runs",
	.run = runs_cb,
	.summary = "List runs, newest first",
	.usage = "Usage: runyard runs [--experiment NAME] [--status STATUS] [--parent SWEEP]\n"
		 "                    [--array ID] [--limit N] [--json]\n"
		 "\n"
		 "List runs, newest first (at most N, default 100). KIND tells a sweep and\n"
		 "its trials from other runs; --parent lists one sweep's trials, --array\n"
		 "(the same) one array's elements.\n",
};

static const char *const stage_order[] = {
	"Queued",     "Preparing",	 "Scaling",   "Running", "Finalizing",
	"CancelRequested", "Completed", "Failed", "Canceled",
};

struct stage {
	const char *name;
	const char *iso;
	double at;
	size_t order;
	double lasted; /* < 0: terminal, nothing to measure */
	bool ongoing;  /* the current status: lasted is "so far" */
};

static int stage_by_time_cb(const void *a, const void *b)
{
	const struct stage *x = a, *y = b;

	if (x->at != y->at) {
		return x->at < y->at ? -1 : 1;
	}
	return x->order < y->order ? -1 : x->order > y->order;
}

static size_t stage_index(const char *name)
{
	size_t n = sizeof(stage_order) / sizeof(stage_order[0]);

	for (size_t i = 0; i < n; i++) {
		if (strcmp(stage_order[i], name) == 0) {
			return i;
		}
	}
	return n; /* unknown statuses after the known ones */
}

/* How long each status lasted: until the next transition. Shown in time
 * order, ties in lifecycle order: the same as lifecycle order for a run
 * that went the usual way, and the true sequence for one canceled while
 * running (CancelRequested before Finalizing). The last status lasts until
 * now unless it is terminal. */
static int print_stages(const cJSON *transitions)
{
	static const char *const headers[] = {"STAGE", "STARTED", "DURATION"};
	int n = cJSON_GetArraySize(transitions);
	struct stage *st = NULL;
	struct render_table *t = NULL;
	const cJSON *item;
	size_t count = 0;
	int r = 0;

	if (n <= 0) {
		return 0;
	}
	st = calloc((size_t)n, sizeof(*st));
	t = render_table_create(3, headers);
	if (!st || !t) {
		r = -ENOMEM;
		goto out;
	}
	render_table_status_column(t, 0);
	render_table_align_right(t, 2);
	cJSON_ArrayForEach(item, transitions) {
		double at;
		if (!cJSON_IsString(item) || msg_parse_time(item->valuestring, &at) < 0) {
			continue;
		}
		st[count].name = item->string;
		st[count].iso = item->valuestring;
		st[count].at = at;
		st[count].order = stage_index(item->string);
		count++;
	}
	qsort(st, count, sizeof(*st), stage_by_time_cb);
	for (size_t i = 0; i < count; i++) {
		if (i + 1 < count) {
			st[i].lasted = st[i + 1].at - st[i].at;
		} else if (is_terminal(st[i].name)) {
			st[i].lasted = -1;
		} else {
			st[i].lasted = util_now_wall() - st[i].at;
			st[i].ongoing = true;
		}
	}
	for (size_t i = 0; i < count; i++) {
		char at[32], d[32], lasted[48];

		render_time(st[i].iso, at);
		render_duration(st[i].lasted, d);
		snprintf(lasted, sizeof(lasted), "%s%s", d, st[i].ongoing ? " so far" : "");
		const char *cells[] = {st[i].name, at, lasted};
		r = render_table_add_row(t, cells);
		if (r < 0) {
			goto out;
		}
	}
	putchar('\n');
	render_table_print(t, stdout);
out:
	render_table_destroy(t);
	free(st);
	return r;
}

/* A local run's request, what it holds (its GPUs by UUID), how it was held
 * to them, and the runs it waits for (docs/scheduling.md). */
static void print_resources(const cJSON *run)
{
	const cJSON *req = cJSON_GetObjectItemCaseSensitive(run, "request");
	const cJSON *alloc = cJSON_GetObjectItemCaseSensitive(run, "allocation");
	const cJSON *lim = cJSON_GetObjectItemCaseSensitive(run, "limits");
	const cJSON *after = cJSON_GetObjectItemCaseSensitive(run, "after"), *a;
	char line[1024], size[32];
	size_t n;

	if (cJSON_IsObject(req)) {
		n = (size_t)snprintf(line, sizeof(line), "%lld CPU%s", json_int(req, "cpus", 1),
				     json_int(req, "cpus", 1) == 1 ? "" : "s");
		if (json_int(req, "mem", 0) > 0) {
			render_size((double)json_int(req, "mem", 0), size);
			n += (size_t)snprintf(line + n, sizeof(line) - n, ", %s memory", size);
		}
		if (json_int(req, "gpus", 0) > 0 && n < sizeof(line)) {
			n += (size_t)snprintf(line + n, sizeof(line) - n, ", %lld GPU%s",
					      json_int(req, "gpus", 0),
					      json_int(req, "gpus", 0) == 1 ? "" : "s");
			if (json_int(req, "gpu_mem", 0) > 0 && n < sizeof(line)) {
				render_size((double)json_int(req, "gpu_mem", 0), size);
				snprintf(line + n, sizeof(line) - n, " (%s each, shared)", size);
			}
		}
		print_field("Resources:", line);
	}
	const cJSON *gpus = cJSON_IsObject(alloc) ? cJSON_GetObjectItemCaseSensitive(alloc, "gpus")
						  : NULL;
	if (cJSON_GetArraySize(gpus) > 0) {
		n = 0;
		line[0] = '\0';
		cJSON_ArrayForEach(a, gpus) {
			if (n < sizeof(line)) {
				n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%lld (%s)",
						      n ? ", " : "", json_int(a, "index", 0),
						      json_str(a, "uuid") ? json_str(a, "uuid") : "?");
			}
		}
		print_field("GPUs:", line);
	}
	if (cJSON_IsObject(lim) && json_str(lim, "tier")) {
		n = (size_t)snprintf(line, sizeof(line), "%s", json_str(lim, "tier"));
		if (json_int(lim, "peak_mem", 0) > 0) {
			render_size((double)json_int(lim, "peak_mem", 0), size);
			snprintf(line + n, sizeof(line) - n, ", peak %s", size);
		}
		print_field("Held by:", line);
	}
	cJSON_ArrayForEach(a, after) {
		snprintf(line, sizeof(line), "#%lld %s (%s; needs %s)", json_int(a, "seq", 0),
			 json_str(a, "run") ? json_str(a, "run") : "?",
			 json_str(a, "status") ? json_str(a, "status") : "?",
			 json_str(a, "when") ? json_str(a, "when") : "ok");
		print_field(a == after->child ? "After:" : "", line);
	}
}

/* --retries: which attempt this is, and each earlier one that failed, with
 * its error and the log lines it wrote. */
static void print_attempts(const cJSON *run)
{
	const cJSON *attempts = cJSON_GetObjectItemCaseSensitive(run, "attempts"), *a;
	long long retries = json_int(run, "retries", 0);
	char line[1024];

	if (retries <= 0 && cJSON_GetArraySize(attempts) == 0) {
		return;
	}
	snprintf(line, sizeof(line), "%lld of at most %lld (retried on %s)",
		 json_int(run, "attempt", 1), retries + 1,
		 json_str(run, "retry_on") ? json_str(run, "retry_on") : "fail");
	print_field("Attempt:", line);
	cJSON_ArrayForEach(a, attempts) {
		const cJSON *e = cJSON_GetObjectItemCaseSensitive(a, "error");
		long long first = json_int(a, "first_line", 1), n = json_int(a, "lines", 0);
		char lines[64];
		if (n > 0) {
			snprintf(lines, sizeof(lines), "; log lines %lld-%lld", first, first + n - 1);
		} else {
			snprintf(lines, sizeof(lines), "; no log lines");
		}
		size_t at = (size_t)snprintf(line, sizeof(line), "#%lld %s",
					     json_int(a, "attempt", 0),
					     json_str(a, "status") ? json_str(a, "status") : "?");
		if (cJSON_IsObject(e) && at < sizeof(line)) {
			at += (size_t)snprintf(line + at, sizeof(line) - at, ": %s - %s",
					       json_str(e, "code") ? json_str(e, "code") : "?",
					       json_str(e, "message") ? json_str(e, "message") : "");
		}
		if (at < sizeof(line)) {
			snprintf(line + at, sizeof(line) - at, "%s", lines);
		}
		print_field(a == attempts->child ? "Attempts:" : "", line);
	}
}


static void print_run(const cJSON *run)
{
	const char *status = json_str(run, "status");
	const cJSON *error = cJSON_GetObjectItemCaseSensitive(run, "error");
	const cJSON *usage = cJSON_GetObjectItemCaseSensitive(run, "usage");
	const cJSON *env = cJSON_GetObjectItemCaseSensitive(run, "env");
	const cJSON *item;
	char buf[64], when[32];
	char *text = NULL;
	size_t len = 0;
	double v;

	snprintf(buf, sizeof(buf), "#%lld", json_int(run, "seq", 0));
	printf("%-11s %s (%s)\n", "Run:", json_str(run, "id") ? json_str(run, "id") : "?", buf);
	print_field("Experiment:", json_str(run, "experiment"));
	if (json_str(run, "kind") && strcmp(json_str(run, "kind"), "run") != 0) {
		print_field("Kind:", json_str(run, "kind"));
	}
	if (json_str(run, "parent")) {
		print_field("Sweep:", json_str(run, "parent"));
	}
	printf("%-11s %s%s%s\n", "Status:", render_status_color(status), status ? status : "?",
	       render_status_color(status)[0] ? render_color_reset() : "");
	if (cJSON_IsObject(error)) {
		const char *stage = json_str(error, "stage");
		printf("%-11s %s: %s", "Error:", json_str(error, "code") ? json_str(error, "code") : "?",
		       json_str(error, "message") ? json_str(error, "message") : "");
		if (stage) {
			printf(" (stage %s)", stage);
		}
		putchar('\n');
	}
	text = render_command(cJSON_GetObjectItemCaseSensitive(run, "command"));
	print_field("Command:", text);
	free(text);
	text = NULL;
	print_field("Python:", json_str(run, "python"));
	print_field("Source:", json_str(run, "source"));
	snprintf(buf, sizeof(buf), "%.12s", json_str(run, "snapshot") ? json_str(run, "snapshot") : "");
	print_field("Snapshot:", buf);
	cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(run, "skipped")) {
		printf("%-11s %s (%s)\n", item == cJSON_GetObjectItemCaseSensitive(run, "skipped")->child
					     ? "Skipped:" : "",
		       json_str(item, "path") ? json_str(item, "path") : "?",
		       json_str(item, "reason") ? json_str(item, "reason") : "not taken");
	}
	if (json_str(run, "target") && strcmp(json_str(run, "target"), "local") != 0) {
		char *t = NULL;
		const cJSON *res = cJSON_GetObjectItemCaseSensitive(run, "resources");
		char *rs = cJSON_GetArraySize(res) > 0 ? cJSON_PrintUnformatted(res) : NULL;
		if (json_int(run, "job_id", 0) > 0) {
			t = msg_strdupf("%s (Slurm job %lld)%s%s", json_str(run, "target"),
					json_int(run, "job_id", 0), rs ? " " : "", rs ? rs : "");
		} else {
			t = msg_strdupf("%s%s%s", json_str(run, "target"), rs ? " " : "", rs ? rs : "");
		}
		print_field("Target:", t ? t : json_str(run, "target"));
		free(t);
		free(rs);
	}
	print_resources(run);
	snprintf(buf, sizeof(buf), "%lld", json_int(run, "priority", 0));
	print_field("Priority:", buf);
	if (json_num(run, "timeout", &v)) {
		/* An interactive run's timeout is its heartbeat's (docs/protocol.md). */
		bool hb = json_str(run, "kind") && strcmp(json_str(run, "kind"), "interactive") == 0;
		render_duration(v, buf);
		print_field(hb ? "Heartbeat:" : "Timeout:", buf);
	}
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(run, "keep"))) {
		print_field("Keep:", "yes (working directory kept)");
	}
	history_print_retention(cJSON_GetObjectItemCaseSensitive(run, "retention"));
	if (cJSON_GetArraySize(env) > 0) {
		FILE *f = open_memstream(&text, &len);
		if (f) {
			cJSON_ArrayForEach(item, env) {
				fprintf(f, "%s%s=%s", item == env->child ? "" : " ", item->string,
					cJSON_IsString(item) ? item->valuestring : "?");
			}
			if (fclose(f) == 0) {
				print_field("Env:", text);
			}
		}
		free(text);
		text = NULL;
	}
	if (json_num(run, "exit_code", &v)) {
		snprintf(buf, sizeof(buf), "%.0f", v);
		print_field("Exit code:", buf);
	}
	if (json_num(run, "signal", &v)) {
		long long sig = json_int(run, "signal", 0);
		snprintf(buf, sizeof(buf), "%lld (%s)", sig,
			 sig > 0 && sig < 128 ? strsignal((int)sig) : "unknown signal");
		print_field("Signal:", buf);
	}
	if (cJSON_IsObject(usage)) {
		char u[32], s[32], rss[32];
		double x;
		render_duration(json_num(usage, "utime", &x) ? x : -1, u);
		render_duration(json_num(usage, "stime", &x) ? x : -1, s);
		render_size(json_num(usage, "maxrss_kb", &x) ? x * 1024 : -1, rss);
		printf("%-11s user %s, system %s, max RSS %s\n", "Usage:", u, s, rss);
	}
	if (json_num(run, "log_lines", &v)) {
		snprintf(buf, sizeof(buf), "%.0f", v);
		print_field("Log lines:", buf);
	}
	render_time(json_str(run, "created_at"), when);
	print_field("Created:", when);
	render_time(json_str(run, "started_at"), when);
	print_field("Started:", when);
	render_time(json_str(run, "ended_at"), when);
	print_field("Ended:", when);
	render_duration(json_num(run, "duration", &v) ? v : -1, buf);
	print_field("Duration:", buf);
	print_attempts(run);
}

/* show: what data the run used and where its outputs went. */
static void print_run_data(const cJSON *run)
{
	const cJSON *it, *ins = cJSON_GetObjectItemCaseSensitive(run, "inputs");
	const cJSON *outs = cJSON_GetObjectItemCaseSensitive(run, "outputs_to");
	char sz[32];
	double v;

	if (cJSON_GetArraySize(ins) > 0) {
		printf("Inputs:\n");
	}
	cJSON_ArrayForEach(it, ins) {
		const cJSON *prog = cJSON_GetObjectItemCaseSensitive(it, "progress");
		const char *hash = json_str(it, "hash"), *ds = json_str(it, "dataset");
		printf("  %-16s %-8s %s -> %s", json_str(it, "name") ? json_str(it, "name") : "?",
		       json_str(it, "mode") ? json_str(it, "mode") : "?",
		       json_str(it, "source") ? json_str(it, "source") : "?",
		       json_str(it, "path") ? json_str(it, "path") : "?");
		if (ds) {
			printf(" (dataset %s:%lld)", ds, json_int(it, "version", 0));
		}
		if (json_num(it, "size", &v)) {
			render_size(v, sz);
			printf(", %s", sz);
		}
		if (hash) {
			printf(", %s %.12s", json_str(it, "kind") && !strcmp(json_str(it, "kind"), "file")
						     ? "sha256"
						     : "manifest",
			       hash);
		}
		if (cJSON_IsObject(prog) && json_str(prog, "state") &&
		    strcmp(json_str(prog, "state"), "downloading") == 0) {
			char done[32], total[32], rate[32];
			render_size(json_num(prog, "bytes", &v) ? v : 0, done);
			render_size(json_num(prog, "total", &v) ? v : -1, total);
			render_size(json_num(prog, "rate", &v) ? v : 0, rate);
			printf(" [downloading %s of %s, %s/s]", done, total, rate);
		}
		putchar('\n');
	}
	if (cJSON_GetArraySize(outs) > 0) {
		printf("Outputs to:\n");
	}
	cJSON_ArrayForEach(it, outs) {
		printf("  %-16s %s -> %s", json_str(it, "name") ? json_str(it, "name") : "?",
		       json_str(it, "path") ? json_str(it, "path") : "?",
		       json_str(it, "stored") ? json_str(it, "stored")
					      : (json_str(it, "dir") ? json_str(it, "dir") : "?"));
		if (json_num(it, "files", &v)) {
			render_size(json_num(it, "bytes", &v) ? v : 0, sz);
			printf(" (%lld files, %s)", json_int(it, "files", 0), sz);
		}
		if (json_str(it, "error")) {
			printf(" failed: %s", json_str(it, "error"));
		}
		putchar('\n');
	}
}

/* What 'runyard show' adds for tracking: tags, properties, warnings. */
static void print_tracking(const cJSON *run)
{
	const cJSON *w;
	double dropped;

	print_key_values("Tags:", cJSON_GetObjectItemCaseSensitive(run, "tags"));
	print_key_values("Properties:", cJSON_GetObjectItemCaseSensitive(run, "properties"));
	const cJSON *warnings = cJSON_GetObjectItemCaseSensitive(run, "warnings");
	if (cJSON_GetArraySize(warnings) == 0) {
		return;
	}
	const char *label = "Warnings:";
	cJSON_ArrayForEach(w, warnings) {
		print_field(label, json_str(w, "message") ? json_str(w, "message") : "?");
		label = "";
	}
	if (json_num(run, "warnings_dropped", &dropped) && dropped > 0) {
		printf("%-11s ... and %.0f more\n", "", dropped);
	}
}

/* One run's block (or, with --json, its object added to all). */
static int show_one(struct ctx *ctx, const char *run, cJSON *all)
{
	cJSON *args = cJSON_CreateObject(), *result = NULL;
	int status;

	cJSON_AddStringToObject(args, "run", run);
	status = connect_call(ctx, "run.show", args, &result);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		cJSON_AddItemToArray(all, result);
		result = NULL;
		goto out;
	}
	print_run(result);
	print_run_data(result);
	if (print_stages(cJSON_GetObjectItemCaseSensitive(result, "transitions")) < 0) {
		fprintf(stderr, "runyard: out of memory\n");
		status = VERB_EXIT_USAGE;
	}
	print_tracking(result);
	/* A sweep's run object says nothing of its trials: ask for them. */
	if (status == 0 && json_str(result, "kind") && strcmp(json_str(result, "kind"), "sweep") == 0) {
		fflush(stdout);
		status = sweep_show_summary(ctx, json_str(result, "id") ? json_str(result, "id") : run);
	}
out:
	cJSON_Delete(result);
	cJSON_Delete(args);
	return status;
}

static int show_cb(struct ctx *ctx, int argc, char **argv)
{
	cJSON *runs = NULL, *all = cJSON_CreateArray();
	const cJSON *run;
	int status, many = 0;

	status = select_verb_args(ctx, argc, argv, &runs, &many);
	if (status) {
		goto out;
	}
	cJSON_ArrayForEach(run, runs) {
		if (run != runs->child && !ctx->json) {
			printf("\n");
		}
		if ((status = show_one(ctx, run->valuestring, all)) != 0) {
			goto out;
		}
	}
	if (ctx->json) {
		status = print_json(many ? all : all->child);
	}
out:
	cJSON_Delete(runs);
	cJSON_Delete(all);
	return status;
}

const struct verb cmd_show_entry = {
	.name = "show",
	.run = show_cb,
	.summary = "Show runs and how long each stage took",
	.usage = "Usage: runyard show RUN... [--experiment E] [--status S] [--parent SWEEP]\n"
		 "                    [--json]\n"
		 "\n"
		 "Show a run: status and error, command, source, snapshot, exit status,\n"
		 "resource usage, times, and how long each stage lasted; for a sweep,\n"
		 "also its trials by status, its best trial and its decisions.\n"
		 "RUN is the run's id or its number (17 or #17), or a range (12-20); the\n"
		 "selectors add every run that matches. Several runs are shown one after\n"
		 "another (with --json: an array).\n",
	.max_args = VERB_ANY,
	.missing = "which run? give its id or number",
};

static int logs_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{"follow", no_argument, NULL, 'f'},
		{"stream", required_argument, NULL, OPT_STREAM},
		{"timestamps", no_argument, NULL, OPT_TIMESTAMPS},
		VERB_COMMON_OPTIONS,
		{0},
	};
	struct render_json_array array;
	struct follow f = {.out = stdout};
	cJSON *final = NULL;
	bool follow = false;
	int status = 0, c;

	while ((c = getopt_long(argc, argv, ":fh", options, NULL)) != -1) {
		switch (c) {
		case 'f':
			follow = true;
			break;
		case OPT_STREAM:
			if (strcmp(optarg, "stdout") != 0 && strcmp(optarg, "stderr") != 0 &&
			    strcmp(optarg, "environment") != 0 && strcmp(optarg, "input") != 0) {
				return verb_usage_error(ctx,
						   "--stream takes stdout, stderr, environment or "
						   "input, not '%s'",
						   optarg);
			}
			f.stream = optarg;
			break;
		case OPT_TIMESTAMPS:
			f.timestamps = true;
			break;
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			return VERB_HELP;
		default:
			return verb_option_error(ctx, c, argv, options);
		}
	}
	status = verb_arg(ctx, argc, argv, &f.run);
	if (status) {
		return status;
	}
	if (ctx->json) {
		render_json_array_begin(&array, stdout);
		f.json_lines = &array;
	}
	if (follow) {
		f.logs = true;
		status = follow_run(ctx, &f, &final);
		cJSON_Delete(final);
	} else {
		status = follow_page(ctx, &f);
	}
	/* Close the array only when it is whole, so a failure never leaves
	 * something that looks like a complete document. */
	if (ctx->json && status == 0) {
		render_json_array_end(&array);
	}
	return status;
}

const struct verb cmd_logs_entry = {
	.name = "logs",
	.run = logs_cb,
	.summary = "Print a run's output",
	.usage = "Usage: runyard logs RUN [-f|--follow] "
		 "[--stream stdout|stderr|environment|input]\n"
		 "                        [--timestamps] [--json]\n"
		 "\n"
		 "Print a run's stored output lines, in order, to stdout. Lines of building\n"
		 "its environment come first, prefixed '[environment] '.\n"
		 "\n"
		 "  -f, --follow         keep printing lines as they come, until the run ends\n"
		 "  --stream S           only stdout, stderr, environment or input (downloads)\n"
		 "                       lines\n"
		 "  --timestamps         prefix each line with its time (ISO 8601 UTC)\n"
		 "  --json               print one JSON array of line objects\n",
	.min_args = 1,
	.max_args = 1,
	.missing = "which run? give its id or number",
};

/* A sweep or an array has no process to watch: look at it until it ends
 * (twice a second; the ops read the store), then summarise it. 0 when it
 * Completed, 2 when it did not, 1 when timeout passed first. */
static int wait_parent(struct ctx *ctx, const char *run, double timeout)
{
	cJSON *args = cJSON_CreateObject(), *result = NULL;
	double start = util_now_wall();
	const char *st = NULL;
	int status;

	cJSON_AddStringToObject(args, "sweep", run);
	for (;;) {
		cJSON_Delete(result);
		result = NULL;
		status = connect_call(ctx, "sweep.show", args, &result);
		st = json_str(result, "status");
		if (status || (st && strcmp(st, "Running") != 0)) {
			break;
		}
		if (timeout > 0 && util_now_wall() - start >= timeout) {
			fprintf(stderr, "runyard: %s is still running after %gs\n", run, timeout);
			status = VERB_EXIT_USAGE;
			goto out;
		}
		usleep(500 * 1000);
	}
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(result);
	} else {
		fflush(stdout);
		status = sweep_show_summary(ctx, run);
	}
	if (status == 0 && strcmp(st, "Completed") != 0) {
		status = VERB_EXIT_REFUSED;
	}
out:
	cJSON_Delete(result);
	cJSON_Delete(args);
	return status;
}

/* follow_wait, or wait_parent for a sweep or an array. */
static int wait_one(struct ctx *ctx, const char *run, bool show_output, double timeout)
{
	cJSON *args = cJSON_CreateObject(), *result = NULL;
	const char *kind;
	int status;

	cJSON_AddStringToObject(args, "run", run);
	status = connect_call(ctx, "run.show", args, &result);
	kind = json_str(result, "kind");
	if (status == 0 && kind && strcmp(kind, "run") != 0) {
		status = wait_parent(ctx, run, timeout);
	} else if (status == 0) {
		status = follow_wait(ctx, run, show_output, timeout);
	}
	cJSON_Delete(result);
	cJSON_Delete(args);
	return status;
}

static int wait_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{"show-output", no_argument, NULL, OPT_SHOW_OUTPUT},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		SELECT_OPTIONS,
		VERB_COMMON_OPTIONS,
		{0},
	};
	struct select_opts sel = {0};
	cJSON *runs = NULL;
	const cJSON *run;
	bool show_output = false;
	double timeout = 0;
	int status = 0, c, worst = 0, missed = 0, many = 0;

	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		if (select_option(&sel, c, optarg)) {
			continue;
		}
		switch (c) {
		case OPT_SHOW_OUTPUT:
			show_output = true;
			break;
		case OPT_TIMEOUT:
			if (util_parse_seconds(optarg, &timeout) < 0) {
				return verb_usage_error(ctx, "--timeout needs a number of seconds > 0, "
							"not '%s'", optarg);
			}
			break;
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			return VERB_HELP;
		default:
			return verb_option_error(ctx, c, argv, options);
		}
	}
	status = select_list(ctx, argc, argv, optind, &sel, &runs, &many);
	if (status) {
		return status;
	}
	if (!many) {
		status = wait_one(ctx, runs->child->valuestring, show_output, timeout);
		cJSON_Delete(runs);
		return status;
	}
	/* One after another: the total wait is the longest run's, and each is
	 * summarised as it is seen to end. */
	cJSON_ArrayForEach(run, runs) {
		int st = wait_one(ctx, run->valuestring, show_output, timeout);
		if (st != 0) {
			fprintf(stderr, "runyard: run %s did not complete%s\n", run->valuestring,
				st == VERB_EXIT_USAGE ? " in time" : "");
			missed++;
			worst = worst == VERB_EXIT_REFUSED ? worst : st;
		}
	}
	if (missed) {
		fprintf(stderr, "runyard: %d of %d runs did not complete\n", missed,
			cJSON_GetArraySize(runs));
	}
	cJSON_Delete(runs);
	return worst;
}

const struct verb cmd_wait_entry = {
	.name = "wait",
	.run = wait_cb,
	.summary = "Wait for runs to end and summarise them",
	.usage = "Usage: runyard wait RUN... [--experiment E] [--status S] [--parent SWEEP]\n"
		 "                    [--show-output] [--timeout S] [--json]\n"
		 "\n"
		 "Wait until the run ends and print an execution summary. Exits 0 when it\n"
		 "Completed, 2 when it Failed or was Canceled, 1 when S seconds passed first.\n"
		 "With several runs (ids, numbers, ranges such as 12-20, selectors) it waits\n"
		 "for each, exits 0 only when all completed, and names those that did not.\n"
		 "\n"
		 "  --show-output  stream the run's output while waiting\n"
		 "  --timeout S    stop waiting after S seconds (the run goes on)\n"
		 "  --json         print the final run object instead of the summary\n",
	.max_args = VERB_ANY,
	.missing = "which run? give its id or number",
};

static int experiments_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {VERB_COMMON_OPTIONS, {0}};
	static const char *const headers[] = {"NAME", "RUNS", "LAST RUN"};
	cJSON *result = NULL;
	struct render_table *t = NULL;
	const cJSON *list, *e;
	int status = 0, c;

	if (argc >= 2 && strcmp(argv[1], "rm") == 0) {
		return experiments_rm(ctx, argc - 1, argv + 1);
	}
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
	if (optind < argc) {
		return verb_usage_error(ctx, "unexpected argument '%s' (the one sub-command is "
					"'rm NAME')",
					argv[optind]);
	}
	status = connect_call(ctx, "experiment.list", NULL, &result);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(result);
		goto out;
	}
	list = cJSON_GetObjectItemCaseSensitive(result, "experiments");
	if (cJSON_GetArraySize(list) == 0) {
		printf("No experiments.\n");
		goto out;
	}
	t = render_table_create(3, headers);
	if (!t) {
		status = VERB_EXIT_USAGE;
		goto out;
	}
	render_table_align_right(t, 1);
	cJSON_ArrayForEach(e, list) {
		char runs[32], last[32];
		snprintf(runs, sizeof(runs), "%lld", json_int(e, "runs", 0));
		render_time(json_str(e, "last_run_at"), last);
		const char *cells[] = {json_str(e, "name"), runs, last};
		if (render_table_add_row(t, cells) < 0) {
			status = VERB_EXIT_USAGE;
			goto out;
		}
	}
	render_table_print(t, stdout);
out:
	render_table_destroy(t);
	cJSON_Delete(result);
	return status;
}

const struct verb cmd_experiments_entry = {
	.name = "experiments",
	.run = experiments_cb,
	.summary = "List experiments, or remove one's ended runs",
	.usage = "Usage: runyard experiments [--json]\n"
		 "   or: runyard experiments rm NAME [--dry-run] [--force] [--json]\n"
		 "\n"
		 "List experiments with their number of runs and latest run. 'rm' removes\n"
		 "the experiment's ended runs from the history, as 'runyard rm --experiment\n"
		 "NAME' does (runs still going, and runs a model came from unless --force,\n"
		 "are kept), and the experiment's name once no run of it is left.\n",
	.max_args = VERB_ANY,
};

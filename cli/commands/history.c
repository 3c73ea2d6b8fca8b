/* The history's life cycle: runyard rm (runs out of the history), runyard
 * experiments rm (through experiments_rm, called by runs.c), runyard gc
 * (blobs nothing refers to) and runyard du (the store's size). */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connect.h"
#include "json.h"
#include "msg.h"
#include "print.h"
#include "render.h"
#include "select.h"
#include "util.h"
#include "verb.h"
#include "commands/commands.h"

/* "2026-11-01", "2026-11-01T12:00[:00][Z]" (UTC), or an age: "30d", "12h",
 * "2w", "90m"; into the protocol's time text. -1 when it is none of them. */
static int parse_before(const char *s, char out[32])
{
	struct tm tm = {0};
	char unit = 0, tail[8] = "";
	long long n;
	int y, mo, d, h = 0, mi = 0, sec = 0, k;
	double t;

	if (msg_parse_time(s, &t) == 0) {
		msg_format_time(t, out);
		return 0;
	}
	if (sscanf(s, "%lld%c%1s", &n, &unit, tail) == 2 && n > 0 && n < 100000) {
		long long mult = unit == 'w' ? 604800 : unit == 'd' ? 86400 : unit == 'h' ? 3600
				 : unit == 'm' ? 60 : 0;
		if (!mult) {
			return -1;
		}
		msg_format_time((double)time(NULL) - (double)(n * mult), out);
		return 0;
	}
	k = sscanf(s, "%4d-%2d-%2d%*[T ]%2d:%2d:%2d%7s", &y, &mo, &d, &h, &mi, &sec, tail);
	if (k < 3) {
		return -1;
	}
	if (k == 3) {
		int used = 0;
		sscanf(s, "%*4d-%*2d-%*2d%n", &used);
		if (s[used] != '\0') {
			/* HH:MM without seconds */
			k = sscanf(s, "%4d-%2d-%2d%*[T ]%2d:%2d%7s", &y, &mo, &d, &h, &mi, tail);
			if (k < 5 || (k == 6 && strcmp(tail, "Z") != 0)) {
				return -1;
			}
		}
	} else if (k < 6 || (k == 7 && strcmp(tail, "Z") != 0)) {
		return -1;
	}
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || y < 1970) {
		return -1;
	}
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	time_t when = timegm(&tm);
	struct tm back;
	gmtime_r(&when, &back);
	if (back.tm_mday != d || back.tm_mon != mo - 1) {
		return -1; /* 2026-02-30 */
	}
	msg_format_time((double)when, out);
	return 0;
}

static void print_frees(const cJSON *res, bool dry_run)
{
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(res, "frees");
	char out[32], logs[32];

	render_size((double)json_int(f, "output_bytes", 0), out);
	render_size((double)json_int(f, "log_bytes", 0), logs);
	printf("%s %lld run(s): %s of outputs in %lld blob(s) no other run or model has, %s of "
	       "logs, %lld metric point(s)%s\n",
	       dry_run ? "Would remove" : "Removed", json_int(res, "count", 0), out,
	       json_int(f, "output_blobs", 0), logs, json_int(f, "metric_points", 0),
	       dry_run ? "" : "; 'runyard gc' gives the blobs' space back");
}

/* The reply of run.rm or experiment.rm, as lines. */
static int print_rm(struct ctx *ctx, const cJSON *res)
{
	bool dry_run = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "dry_run"));
	const cJSON *r;

	if (ctx->json) {
		return print_json(res);
	}
	cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(res, "runs")) {
		printf("%s #%lld %s (%s)\n", dry_run ? "would remove" : "removed",
		       json_int(r, "seq", 0), json_str(r, "id"), json_str(r, "status"));
	}
	cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(res, "skipped")) {
		printf("kept #%lld: %s\n", json_int(r, "seq", 0), json_str(r, "message"));
	}
	if (json_int(res, "models_unlinked", 0) > 0) {
		printf("%lld model version(s) keep their files; their run is recorded as removed\n",
		       json_int(res, "models_unlinked", 0));
	}
	print_frees(res, dry_run);
	return VERB_EXIT_OK;
}

enum {
	OPT_DRY_RUN = VERB_OPT_FIRST,
	OPT_FORCE,
	OPT_BEFORE,
};

static int rm_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		SELECT_OPTIONS,
		{"before", required_argument, NULL, OPT_BEFORE},
		{"dry-run", no_argument, NULL, OPT_DRY_RUN},
		{"force", no_argument, NULL, OPT_FORCE},
		VERB_COMMON_OPTIONS,
		{0},
	};
	struct select_opts sel = {0};
	cJSON *args = cJSON_CreateObject(), *refs = NULL, *result = NULL;
	char before[32] = "";
	bool dry_run = false, force = false;
	int status = 0, c;

	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		if (select_option(&sel, c, optarg)) {
			continue;
		}
		switch (c) {
		case OPT_JSON:
			ctx->json = true;
			break;
		case OPT_DRY_RUN:
			dry_run = true;
			break;
		case OPT_FORCE:
			force = true;
			break;
		case OPT_BEFORE:
			if (parse_before(optarg, before) < 0) {
				status = verb_usage_error(
				    ctx, "--before needs a date (2026-11-01, 2026-11-01T12:00:00Z, "
					 "UTC) or an age (30d, 12h, 2w), not '%s'",
				    optarg);
				goto out;
			}
			break;
		case 'h':
			status = VERB_HELP;
			goto out;
		default:
			status = verb_option_error(ctx, c, argv, options);
			goto out;
		}
	}
	if (optind >= argc && !select_any(&sel) && !before[0]) {
		status = verb_usage_error(ctx, "which runs? give ids, numbers or ranges, or "
					       "--experiment, --status, --before or --parent");
		goto out;
	}
	status = select_refs(ctx, argv + optind, argc - optind, &refs);
	if (status) {
		goto out;
	}
	if (cJSON_GetArraySize(refs) > 0) {
		cJSON_AddItemToObject(args, "runs", refs);
	} else {
		cJSON_Delete(refs);
	}
	refs = NULL;
	if (sel.experiment) {
		cJSON_AddStringToObject(args, "experiment", sel.experiment);
	}
	if (sel.status) {
		cJSON_AddStringToObject(args, "status", sel.status);
	}
	if (sel.parent) {
		cJSON_AddStringToObject(args, "parent", sel.parent);
	}
	if (before[0]) {
		cJSON_AddStringToObject(args, "before", before);
	}
	cJSON_AddBoolToObject(args, "dry_run", dry_run);
	cJSON_AddBoolToObject(args, "force", force);
	status = connect_call(ctx, "run.rm", args, &result);
	if (status == 0) {
		status = print_rm(ctx, result);
	}
out:
	cJSON_Delete(refs);
	cJSON_Delete(args);
	cJSON_Delete(result);
	return status;
}

const struct verb cmd_rm_entry = {
	.name = "rm",
	.run = rm_cb,
	.summary = "Remove ended runs from the history",
	.usage = "Usage: runyard rm RUN... [--experiment E] [--status S] [--before DATE]\n"
		 "                  [--parent SWEEP] [--dry-run] [--force] [--json]\n"
		 "\n"
		 "Remove ended runs (Completed, Failed, Canceled) from the history: their rows,\n"
		 "log lines, metrics and references to their outputs. RUN is an id, a number or\n"
		 "a range (12-20); the selectors add every run that matches them (DATE: a day\n"
		 "such as 2026-11-01, a UTC time 2026-11-01T12:00:00Z, or an age: 30d, 12h, 2w).\n"
		 "A sweep or an array goes with its children. A run that is still queued or\n"
		 "going is refused (cancel it first), as is one a registered model came from,\n"
		 "unless --force (the model keeps its files). Runs a selector matched that may\n"
		 "not go are kept and listed. Nothing changes when a named run is refused.\n"
		 "--dry-run lists what would go and what it frees. The blobs' space comes back\n"
		 "with 'runyard gc'.\n",
	.max_args = VERB_ANY,
};

int experiments_rm(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{"dry-run", no_argument, NULL, OPT_DRY_RUN},
		{"force", no_argument, NULL, OPT_FORCE},
		VERB_COMMON_OPTIONS,
		{0},
	};
	cJSON *args = cJSON_CreateObject(), *result = NULL;
	bool dry_run = false, force = false;
	int status = 0, c;

	optind = 0; /* a fresh scan: permuting, as every verb's */
	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			ctx->json = true;
			break;
		case OPT_DRY_RUN:
			dry_run = true;
			break;
		case OPT_FORCE:
			force = true;
			break;
		case 'h':
			status = VERB_HELP;
			goto out;
		default:
			status = verb_option_error(ctx, c, argv, options);
			goto out;
		}
	}
	if (argc - optind != 1) {
		status = verb_usage_error(ctx, argc - optind < 1
						   ? "which experiment? give its name"
						   : "give one experiment's name");
		goto out;
	}
	cJSON_AddStringToObject(args, "name", argv[optind]);
	cJSON_AddBoolToObject(args, "dry_run", dry_run);
	cJSON_AddBoolToObject(args, "force", force);
	status = connect_call(ctx, "experiment.rm", args, &result);
	if (status == 0) {
		status = print_rm(ctx, result);
	}
out:
	cJSON_Delete(args);
	cJSON_Delete(result);
	return status;
}

static int gc_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{"dry-run", no_argument, NULL, OPT_DRY_RUN},
		VERB_COMMON_OPTIONS,
		{0},
	};
	cJSON *args = cJSON_CreateObject(), *result = NULL;
	bool dry_run = false;
	int status = 0, c;

	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			ctx->json = true;
			break;
		case OPT_DRY_RUN:
			dry_run = true;
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
	cJSON_AddBoolToObject(args, "dry_run", dry_run);
	if (!ctx->json) {
		fprintf(stderr, "Collecting the blobs nothing refers to...\n");
	}
	status = connect_call(ctx, "store.gc", args, &result);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(result);
		goto out;
	}
	char total[32], kb[32];
	const cJSON *k;
	render_size((double)json_int(result, "bytes", 0), total);
	printf("%s %lld blob(s), %s (of %lld blobs stored; %lld referred to)\n",
	       dry_run ? "Would remove" : "Removed", json_int(result, "blobs", 0), total,
	       json_int(result, "blobs_before", 0), json_int(result, "referenced", 0));
	cJSON_ArrayForEach(k, cJSON_GetObjectItemCaseSensitive(result, "kinds")) {
		if (json_int(k, "blobs", 0) == 0) {
			continue;
		}
		render_size((double)json_int(k, "bytes", 0), kb);
		printf("  %-18s %6lld  %s\n", json_str(k, "kind"), json_int(k, "blobs", 0), kb);
	}
	if (json_int(result, "kept_in_use", 0) > 0) {
		printf("%lld blob(s) kept: a submit, run or upload used them meanwhile\n",
		       json_int(result, "kept_in_use", 0));
	}
	if (json_int(result, "missing", 0) > 0) {
		printf("warning: %lld blob(s) the history refers to are missing from the store\n",
		       json_int(result, "missing", 0));
	}
out:
	cJSON_Delete(args);
	cJSON_Delete(result);
	return status;
}

const struct verb cmd_gc_entry = {
	.name = "gc",
	.run = gc_cb,
	.summary = "Remove the blobs nothing refers to",
	.usage = "Usage: runyard gc [--dry-run] [--json]\n"
		 "\n"
		 "Remove every blob (snapshot file, manifest, output, upload) that nothing in\n"
		 "the history refers to any more: no run's snapshot or outputs, no model, no\n"
		 "dataset version, no service, no sweep, no environment. Runs and submits go on\n"
		 "meanwhile; a blob a submit, run or upload uses while gc runs is kept.\n"
		 "--dry-run counts what would go.\n",
	.max_args = 0,
};

static void print_sizes(const char *title, const cJSON *list)
{
	const cJSON *e;
	char b[32];

	if (cJSON_GetArraySize(list) == 0) {
		return;
	}
	printf("\n%s\n", title);
	cJSON_ArrayForEach(e, list) {
		render_size((double)json_int(e, "bytes", 0), b);
		if (json_int(e, "seq", 0) > 0) {
			printf("  %10s  #%lld %s\n", b, json_int(e, "seq", 0), json_str(e, "name"));
		} else {
			printf("  %10s  %s\n", b, json_str(e, "name"));
		}
	}
}

static int du_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{"experiment", required_argument, NULL, VERB_OPT_FIRST},
		VERB_COMMON_OPTIONS,
		{0},
	};
	cJSON *args = cJSON_CreateObject(), *result = NULL;
	int status = 0, c;

	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			ctx->json = true;
			break;
		case VERB_OPT_FIRST:
			cJSON_AddStringToObject(args, "experiment", optarg);
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
	status = connect_call(ctx, "store.du", args, &result);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(result);
		goto out;
	}
	char b[32];
	const cJSON *k;
	render_size((double)json_int(result, "total_bytes", 0), b);
	printf("Store: %s\n", b);
	cJSON_ArrayForEach(k, cJSON_GetObjectItemCaseSensitive(result, "kinds")) {
		render_size(k->valuedouble, b);
		printf("  %-16s %10s\n", k->string, b);
	}
	render_size((double)json_int(result, "log_bytes", 0), b);
	printf("  %-16s %10s (inside the database)\n", "logs", b);
	double fb;
	if (json_num(result, "free_bytes", &fb)) {
		char fs[32];
		render_size((double)json_int(result, "free_bytes", 0), b);
		render_size((double)json_int(result, "fs_bytes", 0), fs);
		printf("Free: %s of %s\n", b, fs);
	}
	print_sizes("Largest experiments:", cJSON_GetObjectItemCaseSensitive(result, "experiments"));
	print_sizes("Largest runs:", cJSON_GetObjectItemCaseSensitive(result, "runs"));
out:
	cJSON_Delete(args);
	cJSON_Delete(result);
	return status;
}

const struct verb cmd_du_entry = {
	.name = "du",
	.run = du_cb,
	.summary = "Show the store's size",
	.usage = "Usage: runyard du [--experiment E] [--json]\n"
		 "\n"
		 "The state directory's size by kind (blobs, database, run directories,\n"
		 "environments, download cache), the logs' share of the database, the free\n"
		 "space of its file system, and the largest experiments and runs by their\n"
		 "outputs and logs (only E's with --experiment).\n",
	.max_args = 0,
};

static int cache_ls_cb(struct ctx *ctx, int argc, char **argv)
{
	cJSON *result = NULL;
	const cJSON *o, *u;
	char b[32], m[32], when[32];
	const char *unused;
	int status;

	status = verb_simple(ctx, argc, argv, &unused);
	if (status) {
		return status;
	}
	status = connect_call(ctx, "cache.list", NULL, &result);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(result);
		goto out;
	}
	render_size((double)json_int(result, "bytes", 0), b);
	if (json_int(result, "max_bytes", 0) > 0) {
		render_size((double)json_int(result, "max_bytes", 0), m);
	} else {
		snprintf(m, sizeof(m), "no bound");
	}
	printf("Download cache: %s in %d object(s) (bound: %s)\n", b,
	       cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(result, "objects")), m);
	cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(result, "objects")) {
		char iso[32];
		render_size((double)json_int(o, "size", 0), b);
		msg_format_time((double)json_int(o, "used_at", 0), iso);
		render_time(iso, when);
		printf("  %.12s  %10s  used %s%s\n", json_str(o, "sha256"), b, when,
		       cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "in_use")) ? " (in use)" : "");
		cJSON_ArrayForEach(u, cJSON_GetObjectItemCaseSensitive(o, "urls")) {
			printf("      %s\n", cJSON_IsString(u) ? u->valuestring : "?");
		}
	}
out:
	cJSON_Delete(result);
	return status;
}

static const struct verb cache_ls_entry = {
	.name = "ls",
	.run = cache_ls_cb,
	.summary = "List the download cache",
	.usage = "Usage: runyard cache ls [--json]\n"
		 "\n"
		 "The downloads of URL inputs and datasets kept for the next run that asks\n"
		 "for the same URL, most recently used first, with their size and URLs.\n",
	.max_args = 0,
};

static int cache_clear_cb(struct ctx *ctx, int argc, char **argv)
{
	cJSON *result = NULL;
	char b[32];
	const char *unused;
	int status;

	status = verb_simple(ctx, argc, argv, &unused);
	if (status) {
		return status;
	}
	status = connect_call(ctx, "cache.clear", NULL, &result);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(result);
		goto out;
	}
	render_size((double)json_int(result, "bytes", 0), b);
	printf("Removed %lld download(s), %s\n", json_int(result, "removed", 0), b);
	if (json_int(result, "kept_in_use", 0) > 0) {
		printf("%lld kept: handed to a run or a registration in the last 15 minutes\n",
		       json_int(result, "kept_in_use", 0));
	}
out:
	cJSON_Delete(result);
	return status;
}

static const struct verb cache_clear_entry = {
	.name = "clear",
	.run = cache_clear_cb,
	.summary = "Empty the download cache",
	.usage = "Usage: runyard cache clear [--json]\n"
		 "\n"
		 "Remove every cached download, but those handed to a run or a dataset\n"
		 "registration in the last 15 minutes (their owner copies them) and those\n"
		 "still being downloaded. Runs and datasets keep their own copies in the\n"
		 "store; a URL asked for again is downloaded again.\n",
	.max_args = 0,
};

static const struct verb *const cache_verbs[] = {
	&cache_ls_entry,
	&cache_clear_entry,
	NULL,
};

const struct verb cmd_cache_entry = {
	.name = "cache",
	.subverbs = cache_verbs,
	.summary = "List or empty the download cache",
	.usage = "Usage: runyard cache ls\n"
		 "       runyard cache clear\n"
		 "\n"
		 "Each takes --json. The cache's bound is runyardd --cache-max-size.\n",
};

/* What the daemon's retention rules do with the run (runyardd --keep-*):
 * kept by a rule of its own (a model, the tag keep), or when it goes. */
void history_print_retention(const cJSON *r)
{
	char line[320], when[32];
	const char *reason = json_str(r, "reason");

	if (!r) {
		return;
	}
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "kept"))) {
		snprintf(line, sizeof(line), "kept by rule (%s)", reason ? reason : "kept");
		print_field("Retention:", line);
		return;
	}
	if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "rules"))) {
		return;
	}
	if (reason) {
		print_field("Retention:", reason);
	} else if (json_str(r, "removed_after")) {
		render_time(json_str(r, "removed_after"), when);
		snprintf(line, sizeof(line), "removed after %s", when);
		print_field("Retention:", line);
	} else if (json_int(r, "keep_runs", 0) > 0 &&
		   json_int(r, "newer_runs", 0) >= json_int(r, "keep_runs", 0)) {
		snprintf(line, sizeof(line), "removed at the next pass (%lld newer runs in its "
			 "experiment, --keep-runs %lld)",
			 json_int(r, "newer_runs", 0), json_int(r, "keep_runs", 0));
		print_field("Retention:", line);
	} else if (json_int(r, "keep_runs", 0) > 0) {
		snprintf(line, sizeof(line), "kept while among the newest %lld of its experiment "
			 "(%lld newer)",
			 json_int(r, "keep_runs", 0), json_int(r, "newer_runs", 0));
		print_field("Retention:", line);
	}
}

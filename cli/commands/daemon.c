/* runyard daemon start, stop and status. */

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
#include "json.h"
#include "launch.h"
#include "msg.h"
#include "print.h"
#include "render.h"
#include "util.h"
#include "verb.h"
#include "commands/commands.h"

/* Long options without a short form. */
enum {
	OPT_DOWNLOAD_MAX_MB = VERB_OPT_FIRST,
	OPT_DOWNLOAD_TIMEOUT,
	OPT_STATE_DIR,
	OPT_MAX_RUNS,
	OPT_GRACE,
	OPT_MAX_SNAPSHOT_MB,
	OPT_MAX_SNAPSHOT_FILES,
};

static int print_daemon_json(bool flag_value, const char *flag, long long pid, const char *socket)
{
	cJSON *doc = cJSON_CreateObject();
	int status;

	cJSON_AddBoolToObject(doc, flag, flag_value);
	if (pid > 0) {
		cJSON_AddNumberToObject(doc, "pid", (double)pid);
	}
	cJSON_AddStringToObject(doc, "socket", socket);
	status = print_json(doc);
	cJSON_Delete(doc);
	return status;
}

static int daemon_start_cb(struct ctx *ctx, int argc, char **argv)
{
	/* Options only this verb has, numbered apart from the shared enum. */
	enum { OPT_DOWNLOAD_MAX_MB = 1000, OPT_DOWNLOAD_TIMEOUT };
	/* Passed to runyardd as they are (runyardd checks them): the history's
	 * life cycle (docs/operations.md). */
	enum { OPT_PASS_FIRST = 1100 };
	static const char *const pass[] = {"min-free", "warn-free", "cache-max-size",
					   "keep-runs-days", "keep-failed-days", "keep-runs"};
	static const struct option options[] = {
		{"min-free", required_argument, NULL, OPT_PASS_FIRST + 0},
		{"warn-free", required_argument, NULL, OPT_PASS_FIRST + 1},
		{"cache-max-size", required_argument, NULL, OPT_PASS_FIRST + 2},
		{"keep-runs-days", required_argument, NULL, OPT_PASS_FIRST + 3},
		{"keep-failed-days", required_argument, NULL, OPT_PASS_FIRST + 4},
		{"keep-runs", required_argument, NULL, OPT_PASS_FIRST + 5},
		{"state-dir", required_argument, NULL, OPT_STATE_DIR},
		{"max-runs", required_argument, NULL, OPT_MAX_RUNS},
		{"grace", required_argument, NULL, OPT_GRACE},
		{"download-max-mb", required_argument, NULL, OPT_DOWNLOAD_MAX_MB},
		{"download-timeout", required_argument, NULL, OPT_DOWNLOAD_TIMEOUT},
		{"snapshot-max-mb", required_argument, NULL, OPT_MAX_SNAPSHOT_MB},
		{"snapshot-max-files", required_argument, NULL, OPT_MAX_SNAPSHOT_FILES},
		VERB_COMMON_OPTIONS,
		{0},
	};
	struct client_error err = {0};
	struct client *probe = NULL;
	const char *state_dir = NULL, *max_runs = NULL, *grace = NULL;
	const char *extra[21] = {NULL};
	char passed[6][24];
	size_t nextra = 0;
	long long ll;
	double d;
	int status = VERB_EXIT_USAGE, c, r;

	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPT_STATE_DIR:
			state_dir = optarg;
			break;
		case OPT_MAX_RUNS:
			if (util_parse_int(optarg, 1, 1000000, &ll) < 0) {
				return verb_usage_error(ctx, "--max-runs needs a positive integer, not '%s'",
						   optarg);
			}
			max_runs = optarg;
			break;
		case OPT_GRACE:
			if (util_parse_seconds(optarg, &d) < 0) {
				return verb_usage_error(ctx, "--grace needs a number of seconds > 0, not "
							"'%s'", optarg);
			}
			grace = optarg;
			break;
		case OPT_DOWNLOAD_MAX_MB:
		case OPT_DOWNLOAD_TIMEOUT:
			if (util_parse_seconds(optarg, &d) < 0 || d > 1e9) {
				return verb_usage_error(ctx, "%s needs a number > 0, not '%s'",
						   c == OPT_DOWNLOAD_MAX_MB ? "--download-max-mb"
									    : "--download-timeout",
						   optarg);
			}
			if (nextra + 2 < sizeof(extra) / sizeof(extra[0])) {
				extra[nextra++] = c == OPT_DOWNLOAD_MAX_MB ? "--download-max-mb"
									   : "--download-timeout";
				extra[nextra++] = optarg;
			}
			break;
		case OPT_MAX_SNAPSHOT_MB:
		case OPT_MAX_SNAPSHOT_FILES: {
			/* checked as runyardd checks them, so a mistake is a usage
			 * error here rather than a failed start */
			bool mb = c == OPT_MAX_SNAPSHOT_MB;
			char *end;
			double v = strtod(optarg, &end);
			if (mb ? (*end || !(v > 0) || v > 1e9)
			       : util_parse_int(optarg, 1, 100000000, &ll) < 0) {
				return verb_usage_error(ctx,
						   mb ? "--snapshot-max-mb needs a size in MB above 0, "
							"not '%s'"
						      : "--snapshot-max-files needs a number from 1 to "
							"100000000, not '%s'",
						   optarg);
			}
			if (nextra + 2 < sizeof(extra) / sizeof(extra[0])) {
				extra[nextra++] = mb ? "--snapshot-max-mb" : "--snapshot-max-files";
				extra[nextra++] = optarg;
			}
			break;
		}
		case OPT_PASS_FIRST + 0:
		case OPT_PASS_FIRST + 1:
		case OPT_PASS_FIRST + 2:
		case OPT_PASS_FIRST + 3:
		case OPT_PASS_FIRST + 4:
		case OPT_PASS_FIRST + 5: {
			int k = c - OPT_PASS_FIRST;
			char *end;
			double v = strtod(optarg, &end);
			/* sizes take K, M, G or T; days and counts are numbers */
			if (end == optarg || !(v >= 0) ||
			    (k < 3 ? (*end && !strchr("kKmMgGtT", *end)) : (*end || !(v > 0)))) {
				return verb_usage_error(ctx, "--%s needs %s, not '%s'", pass[k],
							k < 3 ? "a size (500M, 2G)" : "a number above 0",
							optarg);
			}
			snprintf(passed[k], sizeof(passed[k]), "--%s", pass[k]);
			if (nextra + 2 < sizeof(extra) / sizeof(extra[0])) {
				extra[nextra++] = passed[k];
				extra[nextra++] = optarg;
			}
			break;
		}
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			return VERB_HELP;
		default:
			return verb_option_error(ctx, c, argv, options);
		}
	}
	status = verb_args(ctx, argc, argv);
	if (!status) {
		status = connect_socket(ctx);
	}
	if (status) {
		return status;
	}

	r = client_connect(ctx->socket, &probe, &err);
	if (r == 0) {
		long long running = json_int(client_hello(probe), "pid", 0);
		cJSON *st = NULL;
		/* A running daemon keeps its own settings: say so rather than let
		 * the flags look as if they were taken. */
		if (max_runs && client_call(probe, "daemon.status", NULL, &st, &err) == 0 &&
		    json_int(st, "max_runs", 0) != strtoll(max_runs, NULL, 10)) {
			fprintf(stderr,
				"runyard: runyardd is already running with --max-runs %lld, not %s; "
				"change it with 'runyard daemon set --max-runs %s'\n",
				json_int(st, "max_runs", 0), max_runs, max_runs);
			status = VERB_EXIT_REFUSED;
		}
		cJSON_Delete(st);
		if (status) {
			goto out;
		}
		if (ctx->json) {
			status = print_daemon_json(false, "started", running, ctx->socket);
		} else {
			printf("runyardd is already running (pid %lld, socket %s)\n", running,
			       ctx->socket);
		}
		goto out;
	}
	if (!connect_absent(r)) {
		/* Something answers there but not as a daemon we can use. */
		status = connect_report_failure(&err, r);
		goto out;
	}
	status = launch_daemon(ctx, state_dir, max_runs, grace, extra, &ll);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_daemon_json(true, "started", ll, ctx->socket);
	} else {
		printf("runyardd started (pid %lld, socket %s)\n", ll, ctx->socket);
	}
out:
	client_destroy(probe);
	client_error_finish(&err);
	return status;
}

static const struct verb daemon_start_entry = {
	.name = "start",
	.run = daemon_start_cb,
	.summary = "Start runyardd in the background",
	.usage = "Usage: runyard daemon start [--state-dir DIR] [--max-runs N] [--grace S] "
		 "[--download-max-mb N] [--download-timeout S]\n"
		 "           [--snapshot-max-mb N] [--snapshot-max-files N] [--min-free SIZE]\n"
		 "           [--warn-free SIZE] [--cache-max-size SIZE] [--keep-runs-days D]\n"
		 "           [--keep-failed-days D] [--keep-runs N] [--json]\n"
		 "\n"
		 "Start runyardd detached on the socket runyard uses, unless one already\n"
		 "answers there, and wait (up to 10s) until it does.\n"
		 "\n"
		 "  --state-dir DIR  state directory (default $XDG_STATE_HOME/runyard)\n"
		 "  --max-runs N     runs that may be Running at once\n"
		 "  --grace S        seconds between SIGTERM and SIGKILL on cancel\n"
		 "  --download-max-mb N    largest download in MB (default 10240)\n"
		 "  --download-timeout S   seconds a download may take (default 3600)\n"
		 "  --snapshot-max-mb N, --snapshot-max-files N\n"
		 "                   the daemon's default snapshot limits (300 MB, 2000)\n"
		 "  --min-free SIZE, --warn-free SIZE, --cache-max-size SIZE\n"
		 "                   free space floors (submits refused below the first,\n"
		 "                   status warns below the second) and the download\n"
		 "                   cache's bound (100M, 1G, 20G)\n"
		 "  --keep-runs-days D, --keep-failed-days D, --keep-runs N\n"
		 "                   retention rules (none by default)\n"
		 "  --json           print {\"started\", \"pid\", \"socket\"}\n"
		 "\n"
		 "The daemon's output is appended to DIR/runyardd.log. The binary is\n"
		 "$RUNYARD_DAEMON, else runyardd beside runyard, else runyardd on PATH.\n",
};

/* Whether pid is a live process (a zombie is not: it has stopped). */
static bool pid_alive(pid_t pid)
{
	char *path, *line = NULL, *close_paren;
	size_t cap = 0;
	bool alive = true;
	FILE *f;

	if (pid <= 0 || (kill(pid, 0) < 0 && errno == ESRCH)) {
		return false;
	}
	path = msg_strdupf("/proc/%ld/stat", (long)pid);
	f = path ? fopen(path, "re") : NULL;
	if (f && getline(&line, &cap, f) > 0 && (close_paren = strrchr(line, ')')) &&
	    close_paren[1] == ' ' && close_paren[2] == 'Z') {
		alive = false;
	}
	if (f) {
		fclose(f);
	}
	free(line);
	free(path);
	return alive;
}

/* Whether anything accepts connections at path, without talking to it: a
 * daemon that is shutting down may accept yet never answer a hello. */
static bool socket_accepts(const char *path)
{
	struct client_error err = {0};
	struct client *c = NULL;
	int r = client_connect(path, &c, &err);

	client_destroy(c);
	client_error_finish(&err);
	return !connect_absent(r);
}

static int daemon_stop_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {VERB_COMMON_OPTIONS, {0}};
	struct client_error err = {0};
	cJSON *result = NULL;
	long long pid;
	int64_t deadline;
	int status, c, r;

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
	status = verb_args(ctx, argc, argv);
	if (!status) {
		status = connect_socket(ctx);
	}
	if (status) {
		return status;
	}
	r = client_connect(ctx->socket, &ctx->client, &err);
	if (connect_absent(r)) {
		/* Stopping what is stopped is done, as with systemctl stop. */
		if (ctx->json) {
			status = print_daemon_json(false, "stopped", 0, ctx->socket);
		} else {
			fprintf(stderr, "runyard: runyardd is not running (nothing answers at %s)\n",
				ctx->socket);
		}
		goto out;
	}
	if (r < 0) {
		status = connect_report_failure(&err, r);
		goto out;
	}
	pid = json_int(client_hello(ctx->client), "pid", 0);
	status = connect_call(ctx, "daemon.stop", NULL, &result);
	if (status) {
		goto out;
	}
	client_destroy(ctx->client);
	ctx->client = NULL;
	deadline = util_now_ms() + LAUNCH_WAIT_MS;
	while (pid_alive((pid_t)pid) || socket_accepts(ctx->socket)) {
		if (util_now_ms() > deadline) {
			fprintf(stderr, "runyard: runyardd (pid %lld) is still running %ds after "
					"daemon.stop\n",
				pid, LAUNCH_WAIT_MS / 1000);
			status = VERB_EXIT_USAGE;
			goto out;
		}
		util_sleep_ms(LAUNCH_POLL_MS);
	}
	if (ctx->json) {
		status = print_daemon_json(true, "stopped", pid, ctx->socket);
	} else {
		printf("runyardd stopped (pid %lld)\n", pid);
	}
out:
	cJSON_Delete(result);
	client_error_finish(&err);
	return status;
}

static const struct verb daemon_stop_entry = {
	.name = "stop",
	.run = daemon_stop_cb,
	.summary = "Stop runyardd (running runs go on)",
	.usage = "Usage: runyard daemon stop [--json]\n"
		 "\n"
		 "Ask runyardd to stop and wait (up to 10s) until it is gone. Runs keep\n"
		 "running under their supervisors and are re-attached at the next start.\n",
};

/* The machine's resources: total, reserved and free of each. */
static void print_pool(const cJSON *res)
{
	const cJSON *cpus = cJSON_GetObjectItemCaseSensitive(res, "cpus");
	const cJSON *mem = cJSON_GetObjectItemCaseSensitive(res, "memory"), *g;
	char a[32], b[32], c[32];

	if (!cJSON_IsObject(res)) {
		return;
	}
	printf("%-11s %lld total, %lld reserved, %lld free\n", "CPUs:", json_int(cpus, "total", 0),
	       json_int(cpus, "reserved", 0), json_int(cpus, "free", 0));
	render_size((double)json_int(mem, "total", 0), a);
	render_size((double)json_int(mem, "reserved", 0), b);
	render_size((double)json_int(mem, "free", 0), c);
	printf("%-11s %s total, %s reserved, %s free\n", "Memory:", a, b, c);
	cJSON_ArrayForEach(g, cJSON_GetObjectItemCaseSensitive(res, "gpus")) {
		char label[32];
		render_size((double)json_int(g, "memory", 0), a);
		render_size((double)json_int(g, "memory_reserved", 0), b);
		snprintf(label, sizeof(label), "GPU %lld:", json_int(g, "index", 0));
		printf("%-11s %s, %s, %s reserved by %lld run(s)%s\n", label,
		       json_str(g, "uuid") ? json_str(g, "uuid") : "?", a, b, json_int(g, "holders", 0),
		       cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(g, "exclusive")) ? " (whole)" : "");
	}
}

static int daemon_status_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {VERB_COMMON_OPTIONS, {0}};
	struct client_error err = {0};
	cJSON *result = NULL;
	const cJSON *counts, *item;
	char when[32], up[32];
	double started;
	bool any = false;
	int status, c, r;

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
	status = verb_args(ctx, argc, argv);
	if (!status) {
		status = connect_socket(ctx);
	}
	if (status) {
		return status;
	}
	r = client_connect(ctx->socket, &ctx->client, &err);
	if (connect_absent(r)) {
		fprintf(stderr,
			"runyard: runyardd is not running: nothing answers at %s: %s (start it "
			"with 'runyard daemon start')\n",
			ctx->socket, strerror(-r));
		status = VERB_EXIT_USAGE;
		goto out;
	}
	if (r < 0) {
		status = connect_report_failure(&err, r);
		goto out;
	}
	status = connect_call(ctx, "daemon.status", NULL, &result);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(result);
		goto out;
	}
	printf("runyardd %s (pid %lld, protocol %lld)\n",
	       json_str(result, "version") ? json_str(result, "version") : "?",
	       json_int(result, "pid", 0), json_int(result, "proto", 0));
	print_field("Socket:", json_str(result, "socket"));
	print_field("State dir:", json_str(result, "state_dir"));
	render_time(json_str(result, "started_at"), when);
	started = json_time(result, "started_at");
	render_duration(started > 0 ? util_now_wall() - started : -1, up);
	printf("%-11s %s (up %s)\n", "Started:", when, up);
	if (json_num(result, "max_runs", &started)) {
		printf("%-11s %.0f\n", "Max runs:", started);
	}
	printf("%-11s", "Runs:");
	counts = cJSON_GetObjectItemCaseSensitive(result, "counts");
	cJSON_ArrayForEach(item, counts) {
		if (cJSON_IsNumber(item) && item->valuedouble > 0) {
			printf("%s %s%s%s %.0f", any ? "," : "", render_status_color(item->string),
			       item->string,
			       render_status_color(item->string)[0] ? render_color_reset() : "",
			       item->valuedouble);
			any = true;
		}
	}
	printf("%s\n", any ? "" : " none");
	print_pool(cJSON_GetObjectItemCaseSensitive(result, "resources"));
	const cJSON *disk = cJSON_GetObjectItemCaseSensitive(result, "disk");
	if (disk) {
		char fb[32], tb[32], floor[32];
		render_size((double)json_int(disk, "free_bytes", 0), fb);
		render_size((double)json_int(disk, "fs_bytes", 0), tb);
		printf("%-11s %s free of %s\n", "Disk:", fb, tb);
		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(disk, "submits_refused"))) {
			render_size((double)json_int(disk, "min_free_bytes", 0), floor);
			printf("warning: free space is below --min-free (%s): submits are refused; "
			       "make room with 'runyard du', 'runyard rm' and 'runyard gc'\n",
			       floor);
		} else if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(disk, "low"))) {
			render_size((double)json_int(disk, "warn_free_bytes", 0), floor);
			printf("warning: free space is low (below %s); see 'runyard du'\n", floor);
		}
	}
out:
	cJSON_Delete(result);
	client_error_finish(&err);
	return status;
}

static const struct verb daemon_status_entry = {
	.name = "status",
	.run = daemon_status_cb,
	.summary = "Show runyardd's pid, socket, state and run counts",
	.usage = "Usage: runyard daemon status [--json]\n"
		 "\n"
		 "Show the daemon's version, pid, socket, state directory, uptime, how\n"
		 "many runs are in each status, and the free space of the state directory's\n"
		 "file system, with a warning when it is low (runyardd --warn-free) or below\n"
		 "the floor under which submits are refused (--min-free). Exits 1 when no\n"
		 "daemon answers.\n",
};

static int daemon_set_cb(struct ctx *ctx, int argc, char **argv)
{
	enum { OPT_MAX_RUNS = VERB_OPT_FIRST };
	static const struct option options[] = {
		{"max-runs", required_argument, NULL, OPT_MAX_RUNS},
		VERB_COMMON_OPTIONS,
		{0},
	};
	cJSON *args = cJSON_CreateObject(), *result = NULL;
	long long n = 0;
	int status = 0, c;

	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			ctx->json = true;
			break;
		case OPT_MAX_RUNS:
			if (util_parse_int(optarg, 1, 100000, &n) < 0) {
				status = verb_usage_error(ctx, "--max-runs needs a number from 1 to "
							  "100000, not '%s'",
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
	status = verb_args(ctx, argc, argv);
	if (status) {
		goto out;
	}
	if (n == 0) {
		status = verb_usage_error(ctx, "nothing to change: give --max-runs N");
		goto out;
	}
	cJSON_AddNumberToObject(args, "max_runs", (double)n);
	status = connect_call(ctx, "daemon.set", args, &result);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(result);
	} else {
		printf("Max runs: %lld (%lld in flight)\n", json_int(result, "max_runs", 0),
		       json_int(result, "active", 0));
	}
out:
	cJSON_Delete(result);
	cJSON_Delete(args);
	return status;
}

static const struct verb daemon_set_entry = {
	.name = "set",
	.run = daemon_set_cb,
	.summary = "Change runyardd's limits without a restart",
	.usage = "Usage: runyard daemon set --max-runs N [--json]\n"
		 "\n"
		 "Change how many runs may be in flight at once. A lower limit lets the\n"
		 "runs in flight finish; only what starts next waits for it.\n",
};

static const struct verb *const daemon_verbs[] = {
	&daemon_start_entry,
	&daemon_stop_entry,
	&daemon_status_entry,
	&daemon_set_entry,
	NULL,
};

const struct verb cmd_daemon_entry = {
	.name = "daemon",
	.subverbs = daemon_verbs,
	.summary = "Start, stop, query or change runyardd",
	.usage = "Usage: runyard daemon start [--state-dir DIR] [--max-runs N] [--grace S]\n"
		 "       runyard daemon stop\n"
		 "       runyard daemon status\n"
		 "       runyard daemon set --max-runs N\n"
		 "\n"
		 "Each takes --json. See 'runyard daemon start --help' and so on.\n",
	.missing = "daemon needs start, stop, status or set",
};

#include "commands.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


#include "client.h"
#include "digest.h"
#include "httppost.h"
#include "msg.h"
#include "proto.h"
#include "render.h"

#define EXIT_USAGE COMMANDS_EXIT_USAGE
#define EXIT_REFUSED COMMANDS_EXIT_REFUSED

/* artifact.read's largest chunk. */
#define ARTIFACT_CHUNK 4194304
/* How long daemon start and stop wait for the socket to answer or go quiet. */
#define DAEMON_WAIT_MS 10000
#define DAEMON_POLL_MS 20
/* How much of a daemon's start-up log to quote when it fails to start. */
#define LOG_TAIL_BYTES 2048

struct ctx;

struct verb {
	const char *name;
	int (*handler)(struct ctx *ctx, int argc, char **argv);
	const char *summary;
	const char *usage;
};

struct ctx {
	const struct commands_options *opts;
	const struct verb *verb;
	char *name; /* "submit", "daemon start": for messages */
	bool json;
	char *socket; /* resolved on first use */
	struct client *client;
};

/* Long options without a short form. */
enum {
	OPT_JSON = 256,
	OPT_EXPERIMENT,
	OPT_SOURCE,
	OPT_PYTHON,
	OPT_TIMEOUT,
	OPT_PRIORITY,
	OPT_ENV,
	OPT_KEEP,
	OPT_WAIT,
	OPT_SHOW_OUTPUT,
	OPT_STREAM,
	OPT_TIMESTAMPS,
	OPT_STATUS,
	OPT_LIMIT,
	OPT_DOWNLOAD,
	OPT_STATE_DIR,
	OPT_MAX_RUNS,
	OPT_GRACE,
	OPT_DRY_RUN,
	OPT_MAX_SNAPSHOT_MB,
	OPT_MAX_SNAPSHOT_FILES,
	OPT_FORMAT,
	/* submit to a compute target; compute create */
	OPT_TARGET,
	OPT_NODES,
	OPT_CPUS,
	OPT_JOB_MEMORY_GB,
	OPT_TIME_LIMIT,
	OPT_TYPE,
	OPT_REST,
	OPT_TOKEN_ENV,
	OPT_USER,
	OPT_PARTITION,
	OPT_SHARED_DIR,
	OPT_MAX_JOBS,
	/* environments; submit --environment */
	OPT_ENVIRONMENT_REF,
	OPT_CONDA_FILE,
	OPT_PIP_REQUIREMENTS,
	OPT_INTERPRETER,
	OPT_SYSTEM_SITE_PACKAGES,
	OPT_VAR,
	OPT_KEEP_N,
};

#define COMMON_OPTIONS {"json", no_argument, NULL, OPT_JSON}, {"help", no_argument, NULL, 'h'}

static const char *const terminal_statuses[] = {"Completed", "Failed", "Canceled"};

/* ---- small helpers ---- */

static double now_wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000};

	nanosleep(&ts, NULL);
}

static const char *json_str(const cJSON *obj, const char *key)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsString(it) ? it->valuestring : NULL;
}

static bool json_num(const cJSON *obj, const char *key, double *ret)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (!cJSON_IsNumber(it)) {
		return false;
	}
	*ret = it->valuedouble;
	return true;
}

static long long json_int(const cJSON *obj, const char *key, long long def)
{
	double v;

	/* Out of range, the cast would be undefined: a reply is not trusted. */
	if (!json_num(obj, key, &v) || !(v > -9e18 && v < 9e18)) {
		return def;
	}
	return (long long)v;
}

/* Seconds between two protocol timestamps; negative when either is missing. */
static double json_time(const cJSON *obj, const char *key)
{
	const char *s = json_str(obj, key);
	double t;

	return s && msg_parse_time(s, &t) == 0 ? t : -1;
}

static bool is_terminal(const char *status)
{
	for (size_t i = 0; i < sizeof(terminal_statuses) / sizeof(terminal_statuses[0]); i++) {
		if (status && strcmp(status, terminal_statuses[i]) == 0) {
			return true;
		}
	}
	return false;
}

/* Replace obj[key] with item (taken). */
static void set_item(cJSON *obj, const char *key, cJSON *item)
{
	cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
	cJSON_AddItemToObject(obj, key, item);
}

static int parse_int(const char *s, long long min, long long max, long long *ret)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

/* A positive, finite number of seconds. */
static int parse_seconds(const char *s, double *ret)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v <= 0) {
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

static int read_file(const char *path, char **ret_text, size_t *ret_len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int r = 0;

	if (!f) {
		return -errno;
	}
	for (;;) {
		if (cap - len < 4096) {
			size_t ncap = cap ? cap * 2 : 8192;
			char *n = realloc(buf, ncap);
			if (!n) {
				r = -ENOMEM;
				goto out;
			}
			buf = n;
			cap = ncap;
		}
		size_t got = fread(buf + len, 1, cap - len - 1, f);
		len += got;
		if (got == 0) {
			break;
		}
	}
	if (ferror(f)) {
		r = -EIO;
		goto out;
	}
	buf[len] = '\0';
	*ret_text = buf;
	*ret_len = len;
	buf = NULL;
out:
	free(buf);
	fclose(f);
	return r;
}

/* mkdir -p: every missing directory of path, with mode. */
static int mkdir_p(const char *path, mode_t mode)
{
	char *copy = strdup(path);
	int r = 0;

	if (!copy) {
		return -ENOMEM;
	}
	for (char *p = copy + 1; *p; p++) {
		if (*p != '/') {
			continue;
		}
		*p = '\0';
		if (mkdir(copy, mode) < 0 && errno != EEXIST) {
			r = -errno;
			goto out;
		}
		*p = '/';
	}
	if (mkdir(copy, mode) < 0 && errno != EEXIST) {
		r = -errno;
	}
out:
	free(copy);
	return r;
}

/* The target of a symlink such as /proc/self/exe, without a fixed-size buffer. */
static char *readlink_alloc(const char *path)
{
	size_t cap = 256;

	for (;;) {
		char *buf = malloc(cap);
		if (!buf) {
			return NULL;
		}
		ssize_t n = readlink(path, buf, cap);
		if (n < 0) {
			free(buf);
			return NULL;
		}
		if ((size_t)n < cap) {
			buf[n] = '\0';
			return buf;
		}
		free(buf);
		cap *= 2;
	}
}

/* ---- messages ---- */

__attribute__((format(printf, 2, 3))) static int usage_error(struct ctx *ctx, const char *fmt,
							     ...)
{
	va_list ap;

	fputs("runyard: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see 'runyard %s --help')\n", ctx->name);
	return EXIT_USAGE;
}

/* What getopt_long's '?' or ':' was about; options is the verb's table. */
static int option_error(struct ctx *ctx, int c, char **argv, const struct option *options)
{
	const char *arg = argv[optind - 1];
	size_t n;

	if (c == ':') {
		return usage_error(ctx, "option '%s' needs a value", arg);
	}
	if (strncmp(arg, "--", 2) != 0) {
		return usage_error(ctx, "unknown option '-%c'", optopt);
	}
	n = strcspn(arg + 2, "=");
	for (const struct option *o = options; o->name; o++) {
		if (strlen(o->name) == n && strncmp(o->name, arg + 2, n) == 0) {
			return usage_error(ctx, "option '--%s' takes no value", o->name);
		}
	}
	return usage_error(ctx, "unknown option '%.*s'", (int)n + 2, arg);
}

static const char *hint_for(const char *op, const char *code)
{
	static const struct {
		const char *op; /* NULL: any */
		const char *code;
		const char *hint;
	} hints[] = {
		{"artifact.read", PROTO_E_NOT_FOUND, "list the run's outputs with 'runyard outputs RUN'"},
		{NULL, PROTO_E_NOT_FOUND, "list runs with 'runyard runs'"},
		{"run.cancel", PROTO_E_CONFLICT, "see how it ended with 'runyard show RUN'"},
		{"run.submit", PROTO_E_TOO_LARGE,
		 "leave out what the run does not need with patterns in .amlignore (or .gitignore) "
		 "in the source directory"},
		{"run.submit", PROTO_E_PERMISSION,
		 "make the files readable, or leave them out with patterns in .amlignore"},
		{NULL, PROTO_E_SHUTTING_DOWN,
		 "runyardd is stopping; start it again with 'runyard daemon start'"},
		{NULL, PROTO_E_VERSION_MISMATCH, "use the runyard that came with this runyardd"},
		{NULL, PROTO_E_UNKNOWN_OP,
		 "runyardd is older than this runyard; restart it with 'runyard daemon stop' and "
		 "'runyard daemon start'"},
		{NULL, PROTO_E_INTERNAL, "see runyardd's log (runyardd.log in its state directory)"},
	};

	for (size_t i = 0; i < sizeof(hints) / sizeof(hints[0]); i++) {
		if ((!hints[i].op || (op && strcmp(op, hints[i].op) == 0)) &&
		    strcmp(code, hints[i].code) == 0) {
			return hints[i].hint;
		}
	}
	return NULL;
}

/* Say why a call failed; returns the exit status that goes with it. */
static int report(const char *op, const struct client_error *err, int r)
{
	const char *message = err->message ? err->message : strerror(-r);

	if (r != -EREMOTEIO || !err->code) {
		fprintf(stderr, "runyard: %s\n", message);
		return EXIT_USAGE;
	}
	fprintf(stderr, "runyard: %s (%s)\n", message, err->code);
	const char *hint = hint_for(op, err->code);
	/* The daemon's message may already say which command to run next. */
	if (hint && !strstr(message, "'runyard ")) {
		fprintf(stderr, "runyard: hint: %s\n", hint);
	}
	return EXIT_REFUSED;
}

static bool not_running(int r)
{
	return r == -ENOENT || r == -ECONNREFUSED;
}

static int report_connect(const struct client_error *err, int r)
{
	const char *hint = NULL;

	if (r == -EREMOTEIO) {
		return report("hello", err, r);
	}
	if (not_running(r)) {
		hint = "is the daemon running? start it with 'runyard daemon start'";
	} else if (r == -EACCES || r == -EPERM) {
		hint = "is the socket another user's? pass --socket PATH or set RUNYARD_SOCKET";
	}
	fprintf(stderr, "runyard: %s%s%s%s\n", err->message ? err->message : strerror(-r),
		hint ? " (" : "", hint ? hint : "", hint ? ")" : "");
	return EXIT_USAGE;
}

/* ---- connection ---- */

static int ctx_socket(struct ctx *ctx)
{
	int r;

	if (ctx->socket) {
		return 0;
	}
	r = client_socket_path(ctx->opts->socket, &ctx->socket);
	if (r < 0) {
		fprintf(stderr,
			"runyard: cannot tell where runyardd's socket is: no home directory "
			"(pass --socket PATH or set RUNYARD_SOCKET)\n");
		return EXIT_USAGE;
	}
	return 0;
}

static int launch_daemon(struct ctx *ctx, const char *state_dir, const char *max_runs,
			 const char *grace, const char *const *extra, long long *ret_pid);

/* Whether runyard's user units are active: then the service manager, not
 * the CLI, decides when the daemon runs. */
static bool unit_active(void)
{
	pid_t pid = fork();
	int status;

	if (pid < 0) {
		return false;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
		}
		execlp("systemctl", "systemctl", "--user", "--quiet", "is-active", "runyard.socket",
		       "runyard.service", (char *)NULL);
		_exit(127);
	}
	return waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* First use: no daemon answers at the default socket, so start one for the
 * user and say so once. Only for the default socket: a socket named with
 * --socket or RUNYARD_SOCKET is someone's deliberate choice. Returns 0 when
 * a daemon was started, -1 when autostart does not apply, else an exit
 * status. */
static int autostart(struct ctx *ctx)
{
	const char *off = getenv("RUNYARD_NO_AUTOSTART");
	long long pid = 0;
	int status;

	if (ctx->opts->socket || getenv("RUNYARD_SOCKET") || (off && *off && strcmp(off, "0")) ||
	    strncmp(ctx->verb->name, "daemon", 6) == 0 || unit_active()) {
		return -1;
	}
	status = launch_daemon(ctx, NULL, NULL, NULL, NULL, &pid);
	if (status) {
		return status;
	}
	fprintf(stderr, "runyard: started runyardd in the background (pid %lld, socket %s); set "
			"RUNYARD_NO_AUTOSTART=1 to turn this off\n",
		pid, ctx->socket);
	return 0;
}

static int ctx_connect(struct ctx *ctx)
{
	struct client_error err = {0};
	int status, r;

	if (ctx->client) {
		return 0;
	}
	status = ctx_socket(ctx);
	if (status) {
		return status;
	}
	r = client_connect(ctx->socket, &ctx->client, &err);
	if (r < 0 && not_running(r)) {
		status = autostart(ctx);
		if (status > 0) {
			client_error_finish(&err);
			return status;
		}
		if (status == 0) {
			client_error_finish(&err);
			r = client_connect(ctx->socket, &ctx->client, &err);
		}
	}
	status = r < 0 ? report_connect(&err, r) : 0;
	client_error_finish(&err);
	return status;
}

/* Call op; on failure say why and return the exit status, else 0. */
static int call(struct ctx *ctx, const char *op, const cJSON *args, cJSON **ret_result)
{
	struct client_error err = {0};
	int status = ctx_connect(ctx);
	int r;

	if (status) {
		return status;
	}
	r = client_call(ctx->client, op, args, ret_result, &err);
	status = r < 0 ? report(op, &err, r) : 0;
	client_error_finish(&err);
	return status;
}

/* Print a document for --json; 0 or an exit status. */
static int print_json(const cJSON *doc)
{
	if (render_json(doc) < 0) {
		fprintf(stderr, "runyard: out of memory printing JSON\n");
		return EXIT_USAGE;
	}
	return 0;
}

/* Exactly one positional argument, the run. */
static int one_run(struct ctx *ctx, int argc, char **argv, const char **ret_run)
{
	if (optind >= argc) {
		return usage_error(ctx, "which run? give its id or number");
	}
	if (optind + 1 < argc) {
		return usage_error(ctx, "unexpected argument '%s'", argv[optind + 1]);
	}
	*ret_run = argv[optind];
	return 0;
}

static int no_args(struct ctx *ctx, int argc, char **argv)
{
	if (optind < argc) {
		return usage_error(ctx, "unexpected argument '%s'", argv[optind]);
	}
	return 0;
}

/* ---- following a run ---- */

struct follow {
	const char *run;      /* as the user gave it */
	bool logs;	      /* subscribe to its lines */
	const char *stream;   /* "stdout", "stderr", "environment"; NULL: all */
	bool timestamps;      /* prefix lines with their ts */
	FILE *out;	      /* where lines go */
	struct render_json_array *json_lines; /* or: lines as JSON into this array */
	double timeout;	      /* give up after this many seconds; 0: never */
	size_t printed;	      /* lines printed so far */
	double last_seq;
};

static int print_line(struct follow *f, const cJSON *line)
{
	const char *text = json_str(line, "text");
	double seq;

	/* The protocol promises no repeats; a daemon that broke the promise
	 * must not make us print a line twice. */
	if (json_num(line, "seq", &seq)) {
		if (seq <= f->last_seq) {
			return 0;
		}
		f->last_seq = seq;
	}
	f->printed++;
	if (f->json_lines) {
		return render_json_array_add(f->json_lines, line);
	}
	if (f->timestamps) {
		const char *ts = json_str(line, "ts");
		fputs(ts ? ts : "-", f->out);
		fputc(' ', f->out);
	}
	fputs(render_log_prefix(line), f->out);
	if (text) {
		fputs(text, f->out);
	}
	fputc('\n', f->out);
	return 0;
}

static int print_lines(struct follow *f, const cJSON *lines)
{
	const cJSON *line;

	cJSON_ArrayForEach(line, lines) {
		if (print_line(f, line) < 0) {
			fprintf(stderr, "runyard: out of memory printing log lines\n");
			return EXIT_USAGE;
		}
	}
	return 0;
}

/* Watch f->run until it ends, printing its lines when f->logs. Returns 0
 * with the final run object in *ret_run, or an exit status after saying
 * why (1 also when f->timeout passed first). */
static int follow_run(struct ctx *ctx, struct follow *f, cJSON **ret_run)
{
	struct client_error err = {0};
	cJSON *args = cJSON_CreateObject();
	cJSON *result = NULL, *ev = NULL;
	const cJSON *run;
	char *status_now = NULL;
	/* A timeout of more than 30 years is as good as none. */
	int64_t deadline = f->timeout > 0 && f->timeout < 1e9
				   ? now_ms() + (int64_t)(f->timeout * 1000)
				   : -1;
	long long seq;
	double sub;
	int status, r;

	cJSON_AddStringToObject(args, "run", f->run);
	cJSON_AddBoolToObject(args, "logs", f->logs);
	if (f->stream) {
		cJSON_AddStringToObject(args, "stream", f->stream);
	}
	status = call(ctx, "run.watch", args, &result);
	if (status) {
		goto out;
	}
	run = cJSON_GetObjectItemCaseSensitive(result, "run");
	seq = json_int(run, "seq", 0);
	status_now = strdup(json_str(run, "status") ? json_str(run, "status") : "unknown");
	if (!json_num(result, "sub", &sub) || !status_now) {
		fprintf(stderr, "runyard: runyardd's run.watch reply has no subscription\n");
		status = EXIT_REFUSED;
		goto out;
	}
	for (;;) {
		int wait_ms = -1;
		cJSON *data;
		const char *name;
		double evsub;

		/* Flush only when nothing more is ready: one write per burst of
		 * lines, not per line, yet a slow run's output shows at once. */
		if (!client_event_pending(ctx->client)) {
			fflush(f->out);
		}
		if (deadline >= 0) {
			int64_t left = deadline - now_ms();
			wait_ms = left > 0 ? (left > INT_MAX ? INT_MAX : (int)left) : 0;
		}
		r = client_next_event(ctx->client, wait_ms, &ev, &err);
		if (r < 0) {
			status = report("run.watch", &err, r);
			goto out;
		}
		if (r == 0) {
			char d[32];
			render_duration(f->timeout, d);
			fflush(f->out);
			fprintf(stderr,
				"runyard: run #%lld is still %s after %s; stopped waiting (the run "
				"goes on: 'runyard wait %lld' waits again)\n",
				seq, status_now, d, seq);
			status = EXIT_USAGE;
			goto out;
		}
		name = json_str(ev, "event");
		data = cJSON_GetObjectItemCaseSensitive(ev, "data");
		if (!name || !json_num(ev, "sub", &evsub) || evsub != sub) {
			cJSON_Delete(ev);
			ev = NULL;
			continue;
		}
		if (strcmp(name, "run.log") == 0) {
			status = print_lines(f, cJSON_GetObjectItemCaseSensitive(data, "lines"));
			if (status) {
				goto out;
			}
		} else if (strcmp(name, "run.status") == 0 && json_str(data, "status")) {
			char *s = strdup(json_str(data, "status"));
			if (s) {
				free(status_now);
				status_now = s;
			}
		} else if (strcmp(name, "run.end") == 0) {
			cJSON *final = cJSON_DetachItemFromObjectCaseSensitive(data, "run");
			if (!cJSON_IsObject(final)) {
				cJSON_Delete(final);
				fprintf(stderr, "runyard: runyardd's run.end event has no run\n");
				status = EXIT_REFUSED;
				goto out;
			}
			*ret_run = final;
			break;
		}
		cJSON_Delete(ev);
		ev = NULL;
	}
	fflush(f->out);
	status = 0;
out:
	cJSON_Delete(ev);
	cJSON_Delete(result);
	cJSON_Delete(args);
	free(status_now);
	client_error_finish(&err);
	return status;
}

static void print_summary(const cJSON *run)
{
	const char *status = json_str(run, "status");
	const cJSON *error = cJSON_GetObjectItemCaseSensitive(run, "error");
	double duration = -1;
	char d[32];

	json_num(run, "duration", &duration);
	render_duration(duration, d);
	printf("Execution Summary\n=================\n");
	printf("RunId: %s (#%lld)\n", json_str(run, "id") ? json_str(run, "id") : "?",
	       json_int(run, "seq", 0));
	printf("Status: %s%s%s\n", render_status_color(status), status ? status : "?",
	       render_status_color(status)[0] ? render_color_reset() : "");
	printf("Duration: %s\n", d);
	if (cJSON_IsObject(error)) {
		const char *stage = json_str(error, "stage");
		printf("Error: %s: %s", json_str(error, "code") ? json_str(error, "code") : "?",
		       json_str(error, "message") ? json_str(error, "message") : "");
		if (stage) {
			printf(" (stage %s)", stage);
		}
		putchar('\n');
	}
}

/* Wait for a run and report how it ended: shared by wait and submit --wait. */
static int wait_run(struct ctx *ctx, const char *run, bool show_output, double timeout)
{
	/* With --json stdout holds only the final document, so shown output
	 * goes to stderr. */
	struct follow f = {
		.run = run,
		.logs = show_output,
		.out = ctx->json ? stderr : stdout,
		.timeout = timeout,
	};
	cJSON *final = NULL;
	int status = follow_run(ctx, &f, &final);

	if (status) {
		return status;
	}
	if (ctx->json) {
		status = print_json(final);
	} else {
		if (f.printed > 0) {
			putchar('\n');
		}
		print_summary(final);
	}
	if (!status && strcmp(json_str(final, "status") ? json_str(final, "status") : "",
			      "Completed") != 0) {
		status = EXIT_REFUSED;
	}
	cJSON_Delete(final);
	return status;
}

/* ---- submit ---- */

static const char *const run_file_keys[] = {
	"command", "source", "experiment", "python", "environment", "timeout", "priority",
	"env", "keep", "max_snapshot_bytes", "max_snapshot_files",
	"target", "nodes", "cpus", "memory_gb", "time_limit", "inputs", "outputs",
};

/* Check a run file's values with the same rules the daemon applies, so a
 * mistake is reported against the file. */
static int check_run_file(const cJSON *doc, char **cause)
{
	const cJSON *ignored;
	const char *s;
	double d;
	int64_t i;
	bool b;
	int r;

	r = msg_arg_string_array(doc, "command", false, &ignored, cause);
	if (r == 0 && cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(doc, "command")) &&
	    cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "command")) == 0) {
		*cause = strdup("argument 'command' must be a non-empty array of strings");
		r = -EINVAL;
	}
	if (r == 0) {
		r = msg_arg_string(doc, "source", false, &s, cause);
	}
	if (r == 0) {
		r = msg_arg_string(doc, "experiment", false, &s, cause);
	}
	if (r == 0) {
		r = msg_arg_string(doc, "python", false, &s, cause);
	}
	if (r == 0) {
		r = msg_arg_string(doc, "environment", false, &s, cause);
	}
	if (r == 0) {
		d = 1;
		r = msg_arg_number(doc, "timeout", false, 0, HUGE_VAL, &d, cause);
		if (r == 0 && d <= 0) {
			*cause = strdup("argument 'timeout' must be a number of seconds > 0");
			r = -EINVAL;
		}
	}
	if (r == 0) {
		r = msg_arg_int(doc, "priority", false, -1000, 1000, &i, cause);
	}
	if (r == 0) {
		r = msg_arg_string_map(doc, "env", false, &ignored, cause);
	}
	if (r == 0) {
		r = msg_arg_bool(doc, "keep", false, &b, cause);
	}
	if (r == 0) {
		r = msg_arg_int(doc, "max_snapshot_bytes", false, 1, INT64_C(1) << 53, &i, cause);
	}
	if (r == 0) {
		r = msg_arg_int(doc, "max_snapshot_files", false, 1, INT64_C(1) << 53, &i, cause);
	}
	if (r == 0) {
		r = msg_arg_string(doc, "target", false, &s, cause);
	}
	if (r == 0) {
		r = msg_arg_int(doc, "nodes", false, 1, 100000, &i, cause);
	}
	if (r == 0) {
		r = msg_arg_int(doc, "cpus", false, 1, 100000, &i, cause);
	}
	if (r == 0) {
		r = msg_arg_number(doc, "memory_gb", false, 0.001, 1e6, &d, cause);
	}
	if (r == 0) {
		r = msg_arg_number(doc, "time_limit", false, 1, 1e9, &d, cause);
	}
	return r;
}

/* Line number of position pos in text, for parse errors. */
static int line_of(const char *text, const char *pos)
{
	int line = 1;

	for (const char *p = text; p < pos && *p; p++) {
		line += *p == '\n';
	}
	return line;
}

/* A source directory as an absolute, resolved path; says why not. */
static int resolve_source(const char *where, const char *path, char **ret_abs)
{
	char *abs = realpath(path, NULL);
	struct stat st;

	if (!abs) {
		fprintf(stderr, "runyard: %ssource directory %s: %s\n", where, path,
			strerror(errno));
		return EXIT_USAGE;
	}
	if (stat(abs, &st) < 0 || !(S_ISDIR(st.st_mode) || S_ISREG(st.st_mode))) {
		fprintf(stderr, "runyard: %ssource %s is neither a directory nor an archive\n",
			where, path);
		free(abs);
		return EXIT_USAGE;
	}
	*ret_abs = abs;
	return 0;
}

/* Read a run file (-f) into submit arguments, with source resolved against
 * the file's directory (the file's directory itself when absent). */
static int load_run_file(const char *path, cJSON **ret_args)
{
	char *text = NULL, *real = NULL, *joined = NULL, *abs = NULL, *cause = NULL, *where = NULL;
	const char *parse_end = NULL, *src;
	cJSON *doc = NULL, *item;
	size_t len = 0;
	int status = EXIT_USAGE, r;

	r = read_file(path, &text, &len);
	if (r < 0) {
		fprintf(stderr, "runyard: cannot read run file %s: %s\n", path, strerror(-r));
		goto out;
	}
	doc = cJSON_ParseWithLengthOpts(text, len, &parse_end, false);
	if (!doc) {
		parse_end = cJSON_GetErrorPtr();
		fprintf(stderr, "runyard: %s: not valid JSON (line %d)\n", path,
			line_of(text, parse_end ? parse_end : text));
		goto out;
	}
	if (!cJSON_IsObject(doc)) {
		fprintf(stderr, "runyard: %s: must hold a JSON object\n", path);
		goto out;
	}
	cJSON_ArrayForEach(item, doc) {
		size_t i, n = sizeof(run_file_keys) / sizeof(run_file_keys[0]);
		for (i = 0; i < n && strcmp(item->string, run_file_keys[i]) != 0; i++) {
		}
		if (i == n) {
			fprintf(stderr,
				"runyard: %s: unknown key '%s' (known: command, source, experiment, "
				"python, environment, timeout, priority, env, keep, "
				"max_snapshot_bytes, max_snapshot_files, target, nodes, cpus, "
				"memory_gb, time_limit)\n",
				path, item->string);
			goto out;
		}
	}
	if (check_run_file(doc, &cause) < 0) {
		/* The checks speak of the op's arguments; in a file they are keys. */
		const char *what = cause ? cause : "invalid value";
		if (strncmp(what, "argument ", 9) == 0) {
			fprintf(stderr, "runyard: %s: key %s\n", path, what + 9);
		} else {
			fprintf(stderr, "runyard: %s: %s\n", path, what);
		}
		goto out;
	}
	real = realpath(path, NULL);
	if (!real) {
		fprintf(stderr, "runyard: %s: %s\n", path, strerror(errno));
		goto out;
	}
	*strrchr(real, '/') = '\0';
	src = json_str(doc, "source");
	if (!src) {
		src = ".";
	}
	joined = src[0] == '/' ? strdup(src) : msg_strdupf("%s/%s", real[0] ? real : "", src);
	where = msg_strdupf("%s: ", path);
	if (!joined || !where) {
		fprintf(stderr, "runyard: out of memory\n");
		goto out;
	}
	status = resolve_source(where, joined, &abs);
	if (status) {
		goto out;
	}
	set_item(doc, "source", cJSON_CreateString(abs));
	*ret_args = doc;
	doc = NULL;
out:
	cJSON_Delete(doc);
	free(where);
	free(abs);
	free(joined);
	free(real);
	free(cause);
	free(text);
	return status;
}

/* What a dry run would take: entries, totals, and whether it would fail. */
static int print_dry_run(const cJSON *result)
{
	const cJSON *it;
	const char *over = json_str(result, "over_limit");
	char sz[32];
	double v;

	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(result, "entries")) {
		const char *type = json_str(it, "type"), *path = json_str(it, "path");
		if (!type || !path) {
			continue;
		}
		if (strcmp(type, "file") == 0) {
			render_size(json_num(it, "size", &v) ? v : -1, sz);
			printf("%10s  %s\n", sz, path);
		} else if (strcmp(type, "dir") == 0) {
			printf("%10s  %s/\n", "-", path);
		} else {
			printf("%10s  %s -> %s\n", "-", path,
			       json_str(it, "target") ? json_str(it, "target") : "?");
		}
	}
	render_size(json_num(result, "bytes", &v) ? v : 0, sz);
	printf("Would take %lld file%s (%s), %lld director%s, %lld symlink%s from %s; nothing "
	       "was stored\n",
	       json_int(result, "files", 0), json_int(result, "files", 0) == 1 ? "" : "s", sz,
	       json_int(result, "dirs", 0), json_int(result, "dirs", 0) == 1 ? "y" : "ies",
	       json_int(result, "symlinks", 0), json_int(result, "symlinks", 0) == 1 ? "" : "s",
	       json_str(result, "source") ? json_str(result, "source") : "?");
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(result, "skipped")) {
		fprintf(stderr, "runyard: note: would skip %s (%s)\n",
			json_str(it, "path") ? json_str(it, "path") : "?",
			json_str(it, "reason") ? json_str(it, "reason") : "not taken");
	}
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(result, "truncated")) && !over) {
		fprintf(stderr, "runyard: note: the list is cut short\n");
	}
	if (over) {
		fprintf(stderr, "runyard: the submit would fail: %s (%s)\n", over,
			PROTO_E_TOO_LARGE);
		return EXIT_REFUSED;
	}
	return 0;
}

/* ---- a run's inputs and outputs (docs/inputs.md) ---- */

enum {
	OPT_INPUT = 1000,
	OPT_INPUT_PATH,
	OPT_OUTPUT_TO,
	OPT_DS_DESCRIPTION,
	OPT_DS_DIR,
};

/* A local path as an absolute one: resolved when it exists, else joined to
 * the current directory so the daemon's error names what was meant. */
static char *absolute_path(const char *p)
{
	char *real = realpath(p, NULL), cwd[4096];

	if (real || p[0] == '/') {
		return real ? real : strdup(p);
	}
	if (!getcwd(cwd, sizeof(cwd))) {
		return strdup(p);
	}
	return msg_strdupf("%s/%s", cwd, p);
}

/* --input NAME=SOURCE[:MODE] into {name, source, mode} in inputs. */
static int input_flag(struct ctx *ctx, cJSON *inputs, const char *arg)
{
	static const char *const modes[] = {"copy", "mount", "download"};
	const char *eq = strchr(arg, '=');
	char *name, *source, *colon;
	const char *mode = NULL;
	cJSON *o;

	if (!eq || eq == arg || !eq[1]) {
		return usage_error(ctx, "--input needs NAME=SOURCE[:MODE], not '%s'", arg);
	}
	name = strndup(arg, (size_t)(eq - arg));
	source = strdup(eq + 1);
	if (!name || !source) {
		free(name);
		free(source);
		return EXIT_USAGE;
	}
	colon = strrchr(source, ':');
	for (size_t i = 0; colon && i < 3; i++) {
		if (strcmp(colon + 1, modes[i]) == 0) {
			mode = modes[i];
			*colon = '\0';
		}
	}
	/* A colon in a local path that exists is part of its name. */
	if (!mode && colon && !strchr(colon + 1, '/') && strncmp(source, "dataset:", 8) != 0 &&
	    !strstr(source, "://") && colon[1] && access(source, F_OK) < 0) {
		int st = usage_error(ctx, "--input %s: unknown mode '%s' (copy, mount or download)",
				     name, colon + 1);
		free(name);
		free(source);
		return st;
	}
	if (strncmp(source, "dataset:", 8) != 0 && !strstr(source, "://")) {
		char *abs = absolute_path(source);
		free(source);
		source = abs;
	}
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", name);
	cJSON_AddStringToObject(o, "source", source ? source : "");
	if (mode) {
		cJSON_AddStringToObject(o, "mode", mode);
	}
	cJSON_AddItemToArray(inputs, o);
	free(name);
	free(source);
	return 0;
}

/* --input-path NAME=PATH and --output NAME=DIR: NAME and the rest. */
static int name_value(struct ctx *ctx, const char *flag, const char *arg, char **ret_name,
		      const char **ret_value)
{
	const char *eq = strchr(arg, '=');

	if (!eq || eq == arg || !eq[1]) {
		return usage_error(ctx, "%s needs NAME=%s, not '%s'", flag,
				   strcmp(flag, "--output") == 0 ? "DIR" : "PATH", arg);
	}
	*ret_name = strndup(arg, (size_t)(eq - arg));
	*ret_value = eq + 1;
	return *ret_name ? 0 : EXIT_USAGE;
}

/* The flags of submit for data into args.inputs and args.outputs. */
static int data_args(struct ctx *ctx, cJSON *args, cJSON *inputs, cJSON *paths, cJSON *outputs)
{
	const cJSON *p, *in;

	cJSON_ArrayForEach(p, paths) {
		bool found = false;
		cJSON_ArrayForEach(in, inputs) {
			if (strcmp(json_str(in, "name"), p->string) == 0) {
				cJSON_AddStringToObject((cJSON *)in, "path", p->valuestring);
				found = true;
			}
		}
		if (!found) {
			return usage_error(ctx, "--input-path %s: there is no --input %s", p->string,
					   p->string);
		}
	}
	if (cJSON_GetArraySize(inputs) > 0) {
		set_item(args, "inputs", cJSON_Duplicate(inputs, true));
	}
	if (cJSON_GetArraySize(outputs) > 0) {
		set_item(args, "outputs", cJSON_Duplicate(outputs, true));
	}
	return 0;
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

static int submit_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{"experiment", required_argument, NULL, OPT_EXPERIMENT},
		{"source", required_argument, NULL, OPT_SOURCE},
		{"python", required_argument, NULL, OPT_PYTHON},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		{"priority", required_argument, NULL, OPT_PRIORITY},
		{"env", required_argument, NULL, OPT_ENV},
		{"keep", no_argument, NULL, OPT_KEEP},
		{"wait", no_argument, NULL, OPT_WAIT},
		{"show-output", no_argument, NULL, OPT_SHOW_OUTPUT},
		{"file", required_argument, NULL, 'f'},
		{"dry-run", no_argument, NULL, OPT_DRY_RUN},
		{"max-snapshot-mb", required_argument, NULL, OPT_MAX_SNAPSHOT_MB},
		{"max-snapshot-files", required_argument, NULL, OPT_MAX_SNAPSHOT_FILES},
		{"target", required_argument, NULL, OPT_TARGET},
		{"nodes", required_argument, NULL, OPT_NODES},
		{"cpus", required_argument, NULL, OPT_CPUS},
		{"memory-gb", required_argument, NULL, OPT_JOB_MEMORY_GB},
		{"time-limit", required_argument, NULL, OPT_TIME_LIMIT},
		{"environment", required_argument, NULL, OPT_ENVIRONMENT_REF},
		{"input", required_argument, NULL, OPT_INPUT},
		{"input-path", required_argument, NULL, OPT_INPUT_PATH},
		{"output", required_argument, NULL, OPT_OUTPUT_TO},
		COMMON_OPTIONS,
		{0},
	};
	cJSON *inputs = cJSON_CreateArray(), *input_paths = cJSON_CreateObject();
	cJSON *outputs = cJSON_CreateArray();
	const char *experiment = NULL, *source = NULL, *python = NULL, *file = NULL;
	const char *environment = NULL;
	const char *target = NULL;
	long long nodes = 0, cpus = 0;
	double memory_gb = 0, time_limit = 0;
	double timeout = 0;
	long long priority = 0;
	bool have_priority = false, keep = false, wait = false, show_output = false;
	bool dry_run = false;
	double max_mb = 0;
	long long max_files = 0;
	cJSON *env = cJSON_CreateObject(); /* the --env flags */
	cJSON *args = NULL, *result = NULL, *fenv;
	const cJSON *skipped, *item;
	char *abs = NULL;
	int status = 0, c;

	/* "+": options end at the program, whose own options follow it. */
	while ((c = getopt_long(argc, argv, "+:f:h", options, NULL)) != -1) {
		switch (c) {
		case OPT_EXPERIMENT:
			experiment = optarg;
			break;
		case OPT_SOURCE:
			source = optarg;
			break;
		case OPT_PYTHON:
			python = optarg;
			break;
		case OPT_ENVIRONMENT_REF:
			environment = optarg;
			break;
		case OPT_INPUT:
			status = input_flag(ctx, inputs, optarg);
			if (status) {
				goto out;
			}
			break;
		case OPT_INPUT_PATH:
		case OPT_OUTPUT_TO: {
			char *name = NULL;
			const char *value = NULL;
			status = name_value(ctx, c == OPT_OUTPUT_TO ? "--output" : "--input-path",
					    optarg, &name, &value);
			if (status) {
				goto out;
			}
			if (c == OPT_INPUT_PATH) {
				set_item(input_paths, name, cJSON_CreateString(value));
			} else {
				/* a directory, or an HTTP datastore (a URL) */
				char *dir = strstr(value, "://") ? strdup(value) : absolute_path(value);
				cJSON *o = cJSON_CreateObject();
				cJSON_AddStringToObject(o, "name", name);
				cJSON_AddStringToObject(o, "dir", dir ? dir : value);
				cJSON_AddItemToArray(outputs, o);
				free(dir);
			}
			free(name);
			break;
		}
		case OPT_TIMEOUT:
			if (parse_seconds(optarg, &timeout) < 0) {
				status = usage_error(ctx, "--timeout needs a number of seconds > 0, "
							  "not '%s'", optarg);
				goto out;
			}
			break;
		case OPT_PRIORITY:
			if (parse_int(optarg, -1000, 1000, &priority) < 0) {
				status = usage_error(ctx, "--priority needs an integer from -1000 to "
							  "1000, not '%s'", optarg);
				goto out;
			}
			have_priority = true;
			break;
		case OPT_ENV: {
			const char *eq = strchr(optarg, '=');
			char *key;
			if (!eq || eq == optarg) {
				status = usage_error(ctx, "--env needs KEY=VALUE, not '%s'", optarg);
				goto out;
			}
			key = strndup(optarg, (size_t)(eq - optarg));
			if (!key) {
				status = EXIT_USAGE;
				goto out;
			}
			set_item(env, key, cJSON_CreateString(eq + 1));
			free(key);
			break;
		}
		case OPT_KEEP:
			keep = true;
			break;
		case OPT_WAIT:
			wait = true;
			break;
		case OPT_SHOW_OUTPUT:
			show_output = wait = true;
			break;
		case OPT_DRY_RUN:
			dry_run = true;
			break;
		case OPT_MAX_SNAPSHOT_MB: {
			char *end;
			max_mb = strtod(optarg, &end);
			if (*end || !(max_mb > 0) || max_mb > 1e9) {
				status = usage_error(ctx, "--max-snapshot-mb needs a size in MB above "
							  "0, not '%s'", optarg);
				goto out;
			}
			break;
		}
		case OPT_MAX_SNAPSHOT_FILES:
			if (parse_int(optarg, 1, 100000000, &max_files) < 0) {
				status = usage_error(ctx, "--max-snapshot-files needs a number from 1 "
							  "to 100000000, not '%s'", optarg);
				goto out;
			}
			break;
		case 'f':
			file = optarg;
			break;
		case OPT_TARGET:
			target = optarg;
			break;
		case OPT_NODES:
		case OPT_CPUS:
			if (parse_int(optarg, 1, 100000, c == OPT_NODES ? &nodes : &cpus) < 0) {
				status = usage_error(ctx, "--%s needs a number from 1 to 100000, not "
							  "'%s'",
						     c == OPT_NODES ? "nodes" : "cpus", optarg);
				goto out;
			}
			break;
		case OPT_JOB_MEMORY_GB: {
			char *end;
			memory_gb = strtod(optarg, &end);
			if (*end || !(memory_gb >= 0.001) || memory_gb > 1e6) {
				status = usage_error(ctx, "--memory-gb needs a size in GB above 0, not "
							  "'%s'", optarg);
				goto out;
			}
			break;
		}
		case OPT_TIME_LIMIT:
			if (parse_seconds(optarg, &time_limit) < 0 || time_limit < 1) {
				status = usage_error(ctx, "--time-limit needs a number of seconds >= 1, "
							  "not '%s'", optarg);
				goto out;
			}
			break;
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			fputs(ctx->verb->usage, stdout);
			goto out;
		default:
			status = option_error(ctx, c, argv, options);
			goto out;
		}
	}

	if (file) {
		status = load_run_file(file, &args);
		if (status) {
			goto out;
		}
	} else {
		args = cJSON_CreateObject();
	}
	/* Flags override the file. */
	if (optind < argc) {
		set_item(args, "command",
			 cJSON_CreateStringArray((const char *const *)argv + optind, argc - optind));
	} else if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(args, "command")) &&
		   !dry_run) {
		status = usage_error(ctx, "no program to run: runyard submit [OPTIONS] -- PROGRAM "
					  "[ARGS...]");
		goto out;
	}
	if (dry_run && wait) {
		status = usage_error(ctx, "--dry-run creates no run to wait for");
		goto out;
	}
	if (dry_run) {
		set_item(args, "dry_run", cJSON_CreateTrue());
	}
	if (max_mb > 0) {
		double bytes = max_mb * 1e6;
		set_item(args, "max_snapshot_bytes", cJSON_CreateNumber(bytes < 1 ? 1 : (double)(long long)bytes));
	}
	if (max_files > 0) {
		set_item(args, "max_snapshot_files", cJSON_CreateNumber((double)max_files));
	}
	if (source || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(args, "source"))) {
		status = resolve_source("", source ? source : ".", &abs);
		if (status) {
			goto out;
		}
		set_item(args, "source", cJSON_CreateString(abs));
	}
	if (experiment) {
		set_item(args, "experiment", cJSON_CreateString(experiment));
	}
	/* Both choose the interpreter: a flag replaces the file's either
	 * (both flags at once are refused by the daemon). */
	if (python && !environment) {
		cJSON_DeleteItemFromObjectCaseSensitive(args, "environment");
	}
	if (environment && !python) {
		cJSON_DeleteItemFromObjectCaseSensitive(args, "python");
	}
	if (python) {
		set_item(args, "python", cJSON_CreateString(python));
	}
	if (environment) {
		set_item(args, "environment", cJSON_CreateString(environment));
	}
	if (timeout > 0) {
		set_item(args, "timeout", cJSON_CreateNumber(timeout));
	}
	if (have_priority) {
		set_item(args, "priority", cJSON_CreateNumber((double)priority));
	}
	if (keep) {
		set_item(args, "keep", cJSON_CreateTrue());
	}
	if (target) {
		set_item(args, "target", cJSON_CreateString(target));
	}
	if (nodes > 0) {
		set_item(args, "nodes", cJSON_CreateNumber((double)nodes));
	}
	if (cpus > 0) {
		set_item(args, "cpus", cJSON_CreateNumber((double)cpus));
	}
	if (memory_gb > 0) {
		set_item(args, "memory_gb", cJSON_CreateNumber(memory_gb));
	}
	if (time_limit > 0) {
		set_item(args, "time_limit", cJSON_CreateNumber(time_limit));
	}
	status = data_args(ctx, args, inputs, input_paths, outputs);
	if (status) {
		goto out;
	}
	if (env->child) {
		fenv = cJSON_GetObjectItemCaseSensitive(args, "env");
		if (!cJSON_IsObject(fenv)) {
			fenv = cJSON_CreateObject();
			set_item(args, "env", fenv);
		}
		cJSON_ArrayForEach(item, env) {
			set_item(fenv, item->string, cJSON_CreateString(item->valuestring));
		}
	}

	status = call(ctx, "run.submit", args, &result);
	if (status) {
		goto out;
	}
	if (dry_run) {
		status = ctx->json ? print_json(result) : print_dry_run(result);
		if (ctx->json && json_str(result, "over_limit")) {
			status = EXIT_REFUSED;
		}
		goto out;
	}
	skipped = cJSON_GetObjectItemCaseSensitive(result, "skipped");
	cJSON_ArrayForEach(item, skipped) {
		fprintf(stderr, "runyard: note: skipped %s (%s)\n",
			json_str(item, "path") ? json_str(item, "path") : "?",
			json_str(item, "reason") ? json_str(item, "reason") : "not taken");
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
		status = EXIT_REFUSED;
		goto out;
	}
	fflush(stdout);
	status = wait_run(ctx, json_str(result, "id"), show_output, 0);
out:
	cJSON_Delete(result);
	cJSON_Delete(args);
	cJSON_Delete(env);
	cJSON_Delete(inputs);
	cJSON_Delete(input_paths);
	cJSON_Delete(outputs);
	free(abs);
	return status;
}

/* ---- runs, show ---- */

static int runs_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{"experiment", required_argument, NULL, OPT_EXPERIMENT},
		{"status", required_argument, NULL, OPT_STATUS},
		{"limit", required_argument, NULL, OPT_LIMIT},
		COMMON_OPTIONS,
		{0},
	};
	static const char *const headers[] = {"#",	 "ID",	     "EXPERIMENT", "STATUS",
					      "CREATED", "DURATION", "COMMAND"};
	cJSON *args = cJSON_CreateObject(), *result = NULL;
	struct render_table *t = NULL;
	const cJSON *runs, *run;
	long long limit;
	int status = 0, c;

	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPT_EXPERIMENT:
			set_item(args, "experiment", cJSON_CreateString(optarg));
			break;
		case OPT_STATUS:
			set_item(args, "status", cJSON_CreateString(optarg));
			break;
		case OPT_LIMIT:
			if (parse_int(optarg, 1, 100000, &limit) < 0) {
				status = usage_error(ctx, "--limit needs an integer from 1 to 100000, "
							  "not '%s'", optarg);
				goto out;
			}
			set_item(args, "limit", cJSON_CreateNumber((double)limit));
			break;
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			fputs(ctx->verb->usage, stdout);
			goto out;
		default:
			status = option_error(ctx, c, argv, options);
			goto out;
		}
	}
	status = no_args(ctx, argc, argv);
	if (status) {
		goto out;
	}
	status = call(ctx, "run.list", args, &result);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(result);
		goto out;
	}
	runs = cJSON_GetObjectItemCaseSensitive(result, "runs");
	if (cJSON_GetArraySize(runs) == 0) {
		printf("No runs.\n");
		goto out;
	}
	t = render_table_create(7, headers);
	if (!t) {
		status = EXIT_USAGE;
		goto out;
	}
	render_table_align_right(t, 0);
	render_table_status_column(t, 3);
	cJSON_ArrayForEach(run, runs) {
		const char *st = json_str(run, "status");
		char num[32], created[32], dur[32];
		double d = -1, started = json_time(run, "started_at");
		char *cmd = render_command(cJSON_GetObjectItemCaseSensitive(run, "command"));

		snprintf(num, sizeof(num), "%lld", json_int(run, "seq", 0));
		render_time(json_str(run, "created_at"), created);
		if (!json_num(run, "duration", &d) && !is_terminal(st) && started > 0) {
			/* Still going: how long so far. */
			d = now_wall() - started;
		}
		render_duration(d, dur);
		const char *cells[] = {num, json_str(run, "id"), json_str(run, "experiment"), st,
				       created, dur, cmd};
		int r = render_table_add_row(t, cells);
		free(cmd);
		if (r < 0) {
			status = EXIT_USAGE;
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
			st[i].lasted = now_wall() - st[i].at;
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

static void field(const char *label, const char *value)
{
	printf("%-11s %s\n", label, value && value[0] ? value : "-");
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
	field("Experiment:", json_str(run, "experiment"));
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
	field("Command:", text);
	free(text);
	text = NULL;
	field("Python:", json_str(run, "python"));
	field("Source:", json_str(run, "source"));
	snprintf(buf, sizeof(buf), "%.12s", json_str(run, "snapshot") ? json_str(run, "snapshot") : "");
	field("Snapshot:", buf);
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
		field("Target:", t ? t : json_str(run, "target"));
		free(t);
		free(rs);
	}
	snprintf(buf, sizeof(buf), "%lld", json_int(run, "priority", 0));
	field("Priority:", buf);
	if (json_num(run, "timeout", &v)) {
		render_duration(v, buf);
		field("Timeout:", buf);
	}
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(run, "keep"))) {
		field("Keep:", "yes (working directory kept)");
	}
	if (cJSON_GetArraySize(env) > 0) {
		FILE *f = open_memstream(&text, &len);
		if (f) {
			cJSON_ArrayForEach(item, env) {
				fprintf(f, "%s%s=%s", item == env->child ? "" : " ", item->string,
					cJSON_IsString(item) ? item->valuestring : "?");
			}
			if (fclose(f) == 0) {
				field("Env:", text);
			}
		}
		free(text);
		text = NULL;
	}
	if (json_num(run, "exit_code", &v)) {
		snprintf(buf, sizeof(buf), "%.0f", v);
		field("Exit code:", buf);
	}
	if (json_num(run, "signal", &v)) {
		long long sig = json_int(run, "signal", 0);
		snprintf(buf, sizeof(buf), "%lld (%s)", sig,
			 sig > 0 && sig < 128 ? strsignal((int)sig) : "unknown signal");
		field("Signal:", buf);
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
		field("Log lines:", buf);
	}
	render_time(json_str(run, "created_at"), when);
	field("Created:", when);
	render_time(json_str(run, "started_at"), when);
	field("Started:", when);
	render_time(json_str(run, "ended_at"), when);
	field("Ended:", when);
	render_duration(json_num(run, "duration", &v) ? v : -1, buf);
	field("Duration:", buf);
}

static void print_tracking(const cJSON *run);

static int show_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {COMMON_OPTIONS, {0}};
	cJSON *args = cJSON_CreateObject(), *result = NULL;
	const char *run = NULL;
	int status = 0, c;

	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			fputs(ctx->verb->usage, stdout);
			goto out;
		default:
			status = option_error(ctx, c, argv, options);
			goto out;
		}
	}
	status = one_run(ctx, argc, argv, &run);
	if (status) {
		goto out;
	}
	cJSON_AddStringToObject(args, "run", run);
	status = call(ctx, "run.show", args, &result);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(result);
		goto out;
	}
	print_run(result);
	print_run_data(result);
	if (print_stages(cJSON_GetObjectItemCaseSensitive(result, "transitions")) < 0) {
		fprintf(stderr, "runyard: out of memory\n");
		status = EXIT_USAGE;
	}
	print_tracking(result);
out:
	cJSON_Delete(result);
	cJSON_Delete(args);
	return status;
}

/* ---- logs, wait, cancel ---- */

/* Page through the stored lines with run.logs until there are no more. */
static int page_logs(struct ctx *ctx, struct follow *f)
{
	cJSON *args = cJSON_CreateObject(), *result = NULL;
	double after = 0;
	int status = 0;

	cJSON_AddStringToObject(args, "run", f->run);
	if (f->stream) {
		cJSON_AddStringToObject(args, "stream", f->stream);
	}
	for (;;) {
		double next;

		set_item(args, "after_seq", cJSON_CreateNumber(after));
		status = call(ctx, "run.logs", args, &result);
		if (status) {
			goto out;
		}
		status = print_lines(f, cJSON_GetObjectItemCaseSensitive(result, "lines"));
		if (status) {
			goto out;
		}
		if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(result, "more"))) {
			break;
		}
		/* A next_seq that does not move on would loop for ever. */
		if (!json_num(result, "next_seq", &next) || next <= after) {
			fprintf(stderr, "runyard: runyardd's run.logs reply does not move on "
					"(next_seq)\n");
			status = EXIT_REFUSED;
			goto out;
		}
		after = next;
		cJSON_Delete(result);
		result = NULL;
	}
out:
	cJSON_Delete(result);
	cJSON_Delete(args);
	return status;
}

static int logs_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{"follow", no_argument, NULL, 'f'},
		{"stream", required_argument, NULL, OPT_STREAM},
		{"timestamps", no_argument, NULL, OPT_TIMESTAMPS},
		COMMON_OPTIONS,
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
				return usage_error(ctx,
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
			fputs(ctx->verb->usage, stdout);
			return 0;
		default:
			return option_error(ctx, c, argv, options);
		}
	}
	status = one_run(ctx, argc, argv, &f.run);
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
		status = page_logs(ctx, &f);
	}
	/* Close the array only when it is whole, so a failure never leaves
	 * something that looks like a complete document. */
	if (ctx->json && status == 0) {
		render_json_array_end(&array);
	}
	return status;
}

static int wait_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{"show-output", no_argument, NULL, OPT_SHOW_OUTPUT},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		COMMON_OPTIONS,
		{0},
	};
	const char *run = NULL;
	bool show_output = false;
	double timeout = 0;
	int status, c;

	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPT_SHOW_OUTPUT:
			show_output = true;
			break;
		case OPT_TIMEOUT:
			if (parse_seconds(optarg, &timeout) < 0) {
				return usage_error(ctx, "--timeout needs a number of seconds > 0, "
							"not '%s'", optarg);
			}
			break;
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			fputs(ctx->verb->usage, stdout);
			return 0;
		default:
			return option_error(ctx, c, argv, options);
		}
	}
	status = one_run(ctx, argc, argv, &run);
	if (status) {
		return status;
	}
	return wait_run(ctx, run, show_output, timeout);
}

/* Verbs whose only argument is RUN and whose only options are the common ones. */
static int run_only(struct ctx *ctx, int argc, char **argv, const char **ret_run, bool *ret_help)
{
	static const struct option options[] = {COMMON_OPTIONS, {0}};
	int c;

	*ret_help = false;
	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			fputs(ctx->verb->usage, stdout);
			*ret_help = true;
			return 0;
		default:
			return option_error(ctx, c, argv, options);
		}
	}
	return one_run(ctx, argc, argv, ret_run);
}

static int cancel_cb(struct ctx *ctx, int argc, char **argv)
{
	cJSON *args = NULL, *result = NULL;
	const char *run = NULL, *st;
	bool help;
	int status = run_only(ctx, argc, argv, &run, &help);

	if (status || help) {
		return status;
	}
	args = cJSON_CreateObject();
	cJSON_AddStringToObject(args, "run", run);
	status = call(ctx, "run.cancel", args, &result);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(result);
		goto out;
	}
	st = json_str(result, "status");
	if (st && strcmp(st, "CancelRequested") == 0) {
		printf("Cancel requested for run #%lld (status %s%s%s)\n", json_int(result, "seq", 0),
		       render_status_color(st), st, render_status_color(st)[0] ? render_color_reset() : "");
	} else {
		printf("Run #%lld canceled (status %s%s%s)\n", json_int(result, "seq", 0),
		       render_status_color(st), st ? st : "?",
		       render_status_color(st)[0] ? render_color_reset() : "");
	}
out:
	cJSON_Delete(result);
	cJSON_Delete(args);
	return status;
}

/* ---- outputs ---- */

/* A path the daemon names an artifact by must stay inside the download
 * directory: relative, and no empty, "." or ".." component. */
static bool safe_path(const char *path)
{
	const char *p = path;

	if (!path[0] || path[0] == '/') {
		return false;
	}
	for (;;) {
		const char *end = strchrnul(p, '/');
		size_t n = (size_t)(end - p);
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
			return false;
		}
		if (!*end) {
			return true;
		}
		p = end + 1;
	}
}

/* Open the directory that will hold path below dirfd, creating what is
 * missing and following no symlink on the way, so nothing lands outside
 * dirfd. Returns the directory's fd and its leaf name in *ret_leaf. */
static int open_parent(int dirfd, const char *path, const char **ret_leaf)
{
	char *copy = strdup(path), *p, *slash;
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = 0;

	if (!copy || fd < 0) {
		r = copy ? -errno : -ENOMEM;
		goto out;
	}
	for (p = copy; (slash = strchr(p, '/')); p = slash + 1) {
		*slash = '\0';
		if (mkdirat(fd, p, 0755) < 0 && errno != EEXIST) {
			r = -errno;
			goto out;
		}
		int nfd = openat(fd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (nfd < 0) {
			r = errno == ELOOP ? -ENOTDIR : -errno;
			goto out;
		}
		close(fd);
		fd = nfd;
	}
	*ret_leaf = path + (p - copy);
out:
	free(copy);
	if (r < 0 && fd >= 0) {
		close(fd);
	}
	return r < 0 ? r : fd;
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

struct download {
	const char *op;  /* NULL: artifact.read */
	const char *key; /* what run names in the op's args; NULL: "run" */
	const char *run;
	const char *dir; /* as given, for messages */
	int dirfd;
	struct digest *md;
	unsigned char *buf;
	size_t cap;
	double total; /* bytes written */
};

static void progress(const char *path, double done, double size)
{
	char a[32], b[32];

	if (!render_stderr_tty()) {
		return;
	}
	render_size(done, a);
	render_size(size, b);
	fprintf(stderr, "\r\033[K%s  %s / %s", path, a, b);
	fflush(stderr);
}

/* Fetch one artifact into dl->dir: to a temporary name, checked against
 * its size and sha256, then renamed into place. */
static int download_one(struct ctx *ctx, struct download *dl, const cJSON *art)
{
	const char *path = json_str(art, "path"), *sha = json_str(art, "sha256"), *leaf = NULL;
	cJSON *args = NULL, *result = NULL;
	char *tmp = NULL, hex[65];
	double size, offset = 0;
	long long mode = json_int(art, "mode", 0644);
	int pfd = -1, tfd = -1, status = EXIT_REFUSED, r;

	if (!path || !safe_path(path)) {
		fprintf(stderr, "runyard: refusing artifact path '%s' from runyardd: it must be "
				"relative and stay inside %s\n",
			path ? path : "(none)", dl->dir);
		goto out;
	}
	if (!json_num(art, "size", &size) || size < 0 || size != floor(size) || !sha) {
		fprintf(stderr, "runyard: runyardd lists %s without a size or sha256\n", path);
		goto out;
	}
	status = EXIT_USAGE;
	pfd = open_parent(dl->dirfd, path, &leaf);
	if (pfd < 0) {
		fprintf(stderr, "runyard: cannot create the directories of %s/%s: %s%s\n", dl->dir,
			path, strerror(-pfd),
			pfd == -ENOTDIR ? " (symlinks inside the download directory are not followed)"
					: "");
		goto out;
	}
	tmp = msg_strdupf(".%s.%ld.part", leaf, (long)getpid());
	if (!tmp) {
		goto out;
	}
	unlinkat(pfd, tmp, 0);
	tfd = openat(pfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (tfd < 0) {
		fprintf(stderr, "runyard: cannot create %s/%s: %s\n", dl->dir, path,
			strerror(errno));
		goto out;
	}
	digest_reset(dl->md);
	args = cJSON_CreateObject();
	cJSON_AddStringToObject(args, dl->key ? dl->key : "run", dl->run);
	cJSON_AddStringToObject(args, "path", path);
	cJSON_AddNumberToObject(args, "length", ARTIFACT_CHUNK);
	for (;;) {
		const char *data;
		double total;
		size_t n;
		bool eof;

		set_item(args, "offset", cJSON_CreateNumber(offset));
		status = call(ctx, dl->op ? dl->op : "artifact.read", args, &result);
		if (status) {
			goto out;
		}
		status = EXIT_REFUSED;
		data = json_str(result, "data");
		eof = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(result, "eof"));
		if (!data || digest_base64_decode(data, &dl->buf, &dl->cap, &n) < 0) {
			fprintf(stderr, "runyard: runyardd sent data for %s that is not base64\n",
				path);
			goto out;
		}
		if ((json_num(result, "size", &total) && total != size) || offset + (double)n > size) {
			fprintf(stderr, "runyard: runyardd sent more of %s than its %.0f bytes\n",
				path, size);
			goto out;
		}
		r = write_all(tfd, dl->buf, n);
		if (r < 0) {
			fprintf(stderr, "runyard: cannot write %s/%s: %s\n", dl->dir, path,
				strerror(-r));
			status = EXIT_USAGE;
			goto out;
		}
		digest_update(dl->md, dl->buf, n);
		offset += (double)n;
		progress(path, offset, size);
		cJSON_Delete(result);
		result = NULL;
		if (eof) {
			break;
		}
		if (n == 0) {
			fprintf(stderr, "runyard: runyardd sent nothing for %s at offset %.0f\n",
				path, offset);
			goto out;
		}
	}
	if (render_stderr_tty()) {
		fputs("\r\033[K", stderr);
	}
	digest_final_hex(dl->md, hex);
	if (offset != size) {
		fprintf(stderr, "runyard: %s: got %.0f bytes from runyardd, expected %.0f\n", path,
			offset, size);
		goto out;
	}
	if (strcasecmp(hex, sha) != 0) {
		fprintf(stderr, "runyard: %s: sha256 %s does not match the listed %s\n", path, hex,
			sha);
		goto out;
	}
	status = EXIT_USAGE;
	/* Only the permission bits: set-id bits from a reply are not ours. */
	if (fchmod(tfd, (mode_t)(mode & 0777)) < 0 || close(tfd) < 0) {
		tfd = -1;
		fprintf(stderr, "runyard: cannot write %s/%s: %s\n", dl->dir, path,
			strerror(errno));
		goto out;
	}
	tfd = -1;
	if (renameat(pfd, tmp, pfd, leaf) < 0) {
		fprintf(stderr, "runyard: cannot rename into %s/%s: %s\n", dl->dir, path,
			strerror(errno));
		goto out;
	}
	free(tmp);
	tmp = NULL;
	dl->total += size;
	status = 0;
out:
	if (tfd >= 0) {
		close(tfd);
	}
	if (tmp) {
		unlinkat(pfd, tmp, 0);
	}
	if (status && render_stderr_tty()) {
		fputs("\r\033[K", stderr);
	}
	if (pfd >= 0) {
		close(pfd);
	}
	free(tmp);
	cJSON_Delete(result);
	cJSON_Delete(args);
	return status;
}

/* Make and open dl->dir and the digest for download_one; 0 or EXIT_USAGE
 * (said on stderr). download_close frees what this made. */
static int download_open(struct download *dl)
{
	char err[256];
	int r = mkdir_p(dl->dir, 0755);

	if (r < 0) {
		fprintf(stderr, "runyard: cannot create %s: %s\n", dl->dir, strerror(-r));
		return EXIT_USAGE;
	}
	dl->dirfd = open(dl->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dl->dirfd < 0) {
		fprintf(stderr, "runyard: cannot open %s: %s\n", dl->dir, strerror(errno));
		return EXIT_USAGE;
	}
	if (digest_new(&dl->md, err, sizeof(err)) < 0) {
		fprintf(stderr, "runyard: %s\n", err);
		return EXIT_USAGE;
	}
	return 0;
}

static void download_close(struct download *dl)
{
	if (dl->dirfd >= 0) {
		close(dl->dirfd);
	}
	digest_free(dl->md);
	free(dl->buf);
}

static int download_all(struct ctx *ctx, const char *run, const cJSON *artifacts,
			const char *dir)
{
	struct download dl = {.run = run, .dir = dir, .dirfd = -1};
	const cJSON *art;
	char size[32];
	int status;

	status = download_open(&dl);
	if (status) {
		goto out;
	}
	cJSON_ArrayForEach(art, artifacts) {
		status = download_one(ctx, &dl, art);
		if (status) {
			goto out;
		}
	}
	status = 0;
	if (!ctx->json) {
		render_size(dl.total, size);
		printf("Downloaded %d file%s (%s) to %s\n", cJSON_GetArraySize(artifacts),
		       cJSON_GetArraySize(artifacts) == 1 ? "" : "s", size, dir);
	}
out:
	download_close(&dl);
	return status;
}

static int outputs_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{"download", required_argument, NULL, OPT_DOWNLOAD},
		COMMON_OPTIONS,
		{0},
	};
	static const char *const headers[] = {"PATH", "SIZE", "SHA256"};
	cJSON *args = NULL, *result = NULL;
	struct render_table *t = NULL;
	const cJSON *artifacts, *art;
	const char *run = NULL, *dir = NULL;
	int status = 0, c;

	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPT_DOWNLOAD:
			dir = optarg;
			break;
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			fputs(ctx->verb->usage, stdout);
			return 0;
		default:
			return option_error(ctx, c, argv, options);
		}
	}
	status = one_run(ctx, argc, argv, &run);
	if (status) {
		return status;
	}
	args = cJSON_CreateObject();
	cJSON_AddStringToObject(args, "run", run);
	status = call(ctx, "run.outputs", args, &result);
	if (status) {
		goto out;
	}
	artifacts = cJSON_GetObjectItemCaseSensitive(result, "artifacts");
	if (ctx->json) {
		status = print_json(result);
	} else if (cJSON_GetArraySize(artifacts) == 0) {
		printf("No outputs.\n");
	} else {
		t = render_table_create(3, headers);
		if (!t) {
			status = EXIT_USAGE;
			goto out;
		}
		render_table_align_right(t, 1);
		cJSON_ArrayForEach(art, artifacts) {
			char size[32], sha[16];
			double v;
			render_size(json_num(art, "size", &v) ? v : -1, size);
			snprintf(sha, sizeof(sha), "%.12s",
				 json_str(art, "sha256") ? json_str(art, "sha256") : "-");
			const char *cells[] = {json_str(art, "path"), size, sha};
			if (render_table_add_row(t, cells) < 0) {
				status = EXIT_USAGE;
				goto out;
			}
		}
		render_table_print(t, stdout);
	}
	if (dir && !status) {
		fflush(stdout);
		status = download_all(ctx, run, artifacts, dir);
	}
out:
	render_table_destroy(t);
	cJSON_Delete(result);
	cJSON_Delete(args);
	return status;
}

/* ---- experiments ---- */

static int experiments_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {COMMON_OPTIONS, {0}};
	static const char *const headers[] = {"NAME", "RUNS", "LAST RUN"};
	cJSON *result = NULL;
	struct render_table *t = NULL;
	const cJSON *list, *e;
	int status = 0, c;

	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			fputs(ctx->verb->usage, stdout);
			return 0;
		default:
			return option_error(ctx, c, argv, options);
		}
	}
	status = no_args(ctx, argc, argv);
	if (status) {
		return status;
	}
	status = call(ctx, "experiment.list", NULL, &result);
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
		status = EXIT_USAGE;
		goto out;
	}
	render_table_align_right(t, 1);
	cJSON_ArrayForEach(e, list) {
		char runs[32], last[32];
		snprintf(runs, sizeof(runs), "%lld", json_int(e, "runs", 0));
		render_time(json_str(e, "last_run_at"), last);
		const char *cells[] = {json_str(e, "name"), runs, last};
		if (render_table_add_row(t, cells) < 0) {
			status = EXIT_USAGE;
			goto out;
		}
	}
	render_table_print(t, stdout);
out:
	render_table_destroy(t);
	cJSON_Delete(result);
	return status;
}

/* ---- daemon ---- */

/* The runyardd to start: $RUNYARD_DAEMON, beside this runyard, in the meson
 * build tree (build/cli/runyard next to build/daemon/runyardd), else PATH. */
static char *find_daemon(void)
{
	static const char *const beside[] = {"runyardd", "../daemon/runyardd"};
	const char *env = getenv("RUNYARD_DAEMON");
	char *self, *found = NULL;

	if (env && env[0]) {
		return strdup(env);
	}
	self = readlink_alloc("/proc/self/exe");
	if (self && strrchr(self, '/')) {
		*strrchr(self, '/') = '\0';
		for (size_t i = 0; i < sizeof(beside) / sizeof(beside[0]) && !found; i++) {
			char *p = msg_strdupf("%s/%s", self, beside[i]);
			if (p && access(p, X_OK) == 0) {
				found = p;
			} else {
				free(p);
			}
		}
	}
	free(self);
	return found ? found : strdup("runyardd");
}

/* Start argv detached: its own session, stdin from /dev/null, stdout and
 * stderr appended to logfd. A pipe closed by exec tells whether exec
 * worked, so "not found" is reported here rather than as a silent timeout. */
static pid_t spawn_detached(char *const argv[], int logfd, int *ret_errno)
{
	int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int pipefd[2] = {-1, -1};
	int e = 0;
	pid_t pid = -1;

	if (nullfd < 0 || pipe2(pipefd, O_CLOEXEC) < 0) {
		e = errno;
		goto out;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		e = errno;
		goto out;
	}
	if (pid == 0) {
		sigset_t none;
		setsid();
		dup2(nullfd, STDIN_FILENO);
		dup2(logfd, STDOUT_FILENO);
		dup2(logfd, STDERR_FILENO);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execvp(argv[0], argv);
		e = errno;
		if (write(pipefd[1], &e, sizeof(e)) < 0) {
			/* Nothing left to tell it with. */
		}
		_exit(127);
	}
	close(pipefd[1]);
	pipefd[1] = -1;
	for (;;) {
		ssize_t n = read(pipefd[0], &e, sizeof(e));
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n != (ssize_t)sizeof(e)) {
			e = 0;
		}
		break;
	}
	if (e) {
		waitpid(pid, NULL, 0);
		pid = -1;
	}
out:
	if (nullfd >= 0) {
		close(nullfd);
	}
	if (pipefd[0] >= 0) {
		close(pipefd[0]);
	}
	if (pipefd[1] >= 0) {
		close(pipefd[1]);
	}
	*ret_errno = e;
	return pid;
}

/* What the log got since offset (its last LOG_TAIL_BYTES at most), to
 * show why a daemon did not start. */
static void print_log_since(const char *path, off_t offset)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf = NULL;

	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size <= offset) {
		goto out;
	}
	if (st.st_size - offset > LOG_TAIL_BYTES) {
		offset = st.st_size - LOG_TAIL_BYTES;
	}
	buf = malloc((size_t)(st.st_size - offset));
	if (!buf) {
		goto out;
	}
	ssize_t n = pread(fd, buf, (size_t)(st.st_size - offset), offset);
	if (n > 0) {
		fputs("runyard: runyardd said:\n", stderr);
		fwrite(buf, 1, (size_t)n, stderr);
		if (buf[n - 1] != '\n') {
			fputc('\n', stderr);
		}
	}
out:
	free(buf);
	if (fd >= 0) {
		close(fd);
	}
}

static void describe_exit(int wstatus, char buf[64])
{
	if (WIFEXITED(wstatus)) {
		snprintf(buf, 64, "exited with status %d", WEXITSTATUS(wstatus));
	} else if (WIFSIGNALED(wstatus)) {
		snprintf(buf, 64, "was killed by signal %d", WTERMSIG(wstatus));
	} else {
		snprintf(buf, 64, "stopped");
	}
}

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

/* Start runyardd detached on ctx->socket and wait until it answers; the
 * daemon's pid in *ret_pid. Returns 0 or an exit status (said why). */
static int launch_daemon(struct ctx *ctx, const char *state_dir, const char *max_runs,
			 const char *grace, const char *const *extra, long long *ret_pid)
{
	struct client_error err = {0};
	struct client *probe = NULL;
	char *state_abs = NULL, *log_dir = NULL, *log_path = NULL, *bin = NULL;
	const char *dargv[24];
	size_t n = 0;
	struct stat st;
	off_t log_start = 0;
	int64_t deadline;
	int logfd = -1, status = EXIT_USAGE, r, e = 0;
	pid_t pid;

	if (state_dir) {
		r = mkdir_p(state_dir, 0700);
		state_abs = r == 0 ? realpath(state_dir, NULL) : NULL;
		if (!state_abs) {
			fprintf(stderr, "runyard: cannot create state directory %s: %s\n", state_dir,
				strerror(r < 0 ? -r : errno));
			goto out;
		}
		log_dir = strdup(state_abs);
	} else if (client_state_dir(&log_dir) == 0) {
		r = mkdir_p(log_dir, 0700);
		if (r < 0) {
			fprintf(stderr, "runyard: cannot create %s: %s\n", log_dir, strerror(-r));
			goto out;
		}
	}
	log_path = log_dir ? msg_strdupf("%s/runyardd.log", log_dir) : NULL;
	bin = find_daemon();
	if (!log_path || !bin) {
		fprintf(stderr, "runyard: cannot tell where runyardd's log goes (no home "
				"directory); pass --state-dir DIR\n");
		goto out;
	}
	logfd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (logfd < 0) {
		fprintf(stderr, "runyard: cannot open %s: %s\n", log_path, strerror(errno));
		goto out;
	}
	if (fstat(logfd, &st) == 0) {
		log_start = st.st_size;
	}

	dargv[n++] = bin;
	dargv[n++] = "--socket";
	dargv[n++] = ctx->socket;
	if (state_abs) {
		dargv[n++] = "--state-dir";
		dargv[n++] = state_abs;
	}
	if (max_runs) {
		dargv[n++] = "--max-runs";
		dargv[n++] = max_runs;
	}
	if (grace) {
		dargv[n++] = "--grace";
		dargv[n++] = grace;
	}
	/* More options for runyardd, as given (daemon start checked them). */
	for (size_t i = 0; extra && extra[i] && n < sizeof(dargv) / sizeof(dargv[0]) - 1; i++) {
		dargv[n++] = extra[i];
	}
	dargv[n] = NULL;
	pid = spawn_detached((char *const *)dargv, logfd, &e);
	if (pid < 0) {
		fprintf(stderr, "runyard: cannot start %s: %s (set RUNYARD_DAEMON to runyardd's path)\n",
			bin, strerror(e));
		goto out;
	}

	deadline = now_ms() + DAEMON_WAIT_MS;
	for (;;) {
		int wstatus;
		char how[64];

		/* A daemon that forks itself away exits 0 here: keep asking the
		 * socket. Any other exit is a failed start. */
		if (pid > 0 && waitpid(pid, &wstatus, WNOHANG) == pid) {
			if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
				describe_exit(wstatus, how);
				fprintf(stderr, "runyard: runyardd %s during start-up (log: %s)\n", how,
					log_path);
				print_log_since(log_path, log_start);
				goto out;
			}
			pid = 0;
		}
		client_error_finish(&err);
		r = client_connect(ctx->socket, &probe, &err);
		if (r == 0) {
			break;
		}
		if (r == -EREMOTEIO) {
			status = report_connect(&err, r);
			goto out;
		}
		if (now_ms() > deadline) {
			fprintf(stderr, "runyard: runyardd did not answer at %s within %ds (log: %s)\n",
				ctx->socket, DAEMON_WAIT_MS / 1000, log_path);
			print_log_since(log_path, log_start);
			goto out;
		}
		sleep_ms(DAEMON_POLL_MS);
	}
	*ret_pid = json_int(client_hello(probe), "pid", pid);
	status = 0;
out:
	if (logfd >= 0) {
		close(logfd);
	}
	client_destroy(probe);
	client_error_finish(&err);
	free(bin);
	free(log_path);
	free(log_dir);
	free(state_abs);
	return status;
}

static int daemon_start_cb(struct ctx *ctx, int argc, char **argv)
{
	/* Options only this verb has, numbered apart from the shared enum. */
	enum { OPT_DOWNLOAD_MAX_MB = 1000, OPT_DOWNLOAD_TIMEOUT };
	static const struct option options[] = {
		{"state-dir", required_argument, NULL, OPT_STATE_DIR},
		{"max-runs", required_argument, NULL, OPT_MAX_RUNS},
		{"grace", required_argument, NULL, OPT_GRACE},
		{"download-max-mb", required_argument, NULL, OPT_DOWNLOAD_MAX_MB},
		{"download-timeout", required_argument, NULL, OPT_DOWNLOAD_TIMEOUT},
		{"snapshot-max-mb", required_argument, NULL, OPT_MAX_SNAPSHOT_MB},
		{"snapshot-max-files", required_argument, NULL, OPT_MAX_SNAPSHOT_FILES},
		COMMON_OPTIONS,
		{0},
	};
	struct client_error err = {0};
	struct client *probe = NULL;
	const char *state_dir = NULL, *max_runs = NULL, *grace = NULL;
	const char *extra[9] = {NULL};
	size_t nextra = 0;
	long long ll;
	double d;
	int status = EXIT_USAGE, c, r;

	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPT_STATE_DIR:
			state_dir = optarg;
			break;
		case OPT_MAX_RUNS:
			if (parse_int(optarg, 1, 1000000, &ll) < 0) {
				return usage_error(ctx, "--max-runs needs a positive integer, not '%s'",
						   optarg);
			}
			max_runs = optarg;
			break;
		case OPT_GRACE:
			if (parse_seconds(optarg, &d) < 0) {
				return usage_error(ctx, "--grace needs a number of seconds > 0, not "
							"'%s'", optarg);
			}
			grace = optarg;
			break;
		case OPT_DOWNLOAD_MAX_MB:
		case OPT_DOWNLOAD_TIMEOUT:
			if (parse_seconds(optarg, &d) < 0 || d > 1e9) {
				return usage_error(ctx, "%s needs a number > 0, not '%s'",
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
			       : parse_int(optarg, 1, 100000000, &ll) < 0) {
				return usage_error(ctx,
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
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			fputs(ctx->verb->usage, stdout);
			return 0;
		default:
			return option_error(ctx, c, argv, options);
		}
	}
	status = no_args(ctx, argc, argv);
	if (!status) {
		status = ctx_socket(ctx);
	}
	if (status) {
		return status;
	}

	r = client_connect(ctx->socket, &probe, &err);
	if (r == 0) {
		long long running = json_int(client_hello(probe), "pid", 0);
		if (ctx->json) {
			status = print_daemon_json(false, "started", running, ctx->socket);
		} else {
			printf("runyardd is already running (pid %lld, socket %s)\n", running,
			       ctx->socket);
		}
		goto out;
	}
	if (!not_running(r)) {
		/* Something answers there but not as a daemon we can use. */
		status = report_connect(&err, r);
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
	return !not_running(r);
}

static int daemon_stop_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {COMMON_OPTIONS, {0}};
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
			fputs(ctx->verb->usage, stdout);
			return 0;
		default:
			return option_error(ctx, c, argv, options);
		}
	}
	status = no_args(ctx, argc, argv);
	if (!status) {
		status = ctx_socket(ctx);
	}
	if (status) {
		return status;
	}
	r = client_connect(ctx->socket, &ctx->client, &err);
	if (not_running(r)) {
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
		status = report_connect(&err, r);
		goto out;
	}
	pid = json_int(client_hello(ctx->client), "pid", 0);
	status = call(ctx, "daemon.stop", NULL, &result);
	if (status) {
		goto out;
	}
	client_destroy(ctx->client);
	ctx->client = NULL;
	deadline = now_ms() + DAEMON_WAIT_MS;
	while (pid_alive((pid_t)pid) || socket_accepts(ctx->socket)) {
		if (now_ms() > deadline) {
			fprintf(stderr, "runyard: runyardd (pid %lld) is still running %ds after "
					"daemon.stop\n",
				pid, DAEMON_WAIT_MS / 1000);
			status = EXIT_USAGE;
			goto out;
		}
		sleep_ms(DAEMON_POLL_MS);
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

static int daemon_status_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {COMMON_OPTIONS, {0}};
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
			fputs(ctx->verb->usage, stdout);
			return 0;
		default:
			return option_error(ctx, c, argv, options);
		}
	}
	status = no_args(ctx, argc, argv);
	if (!status) {
		status = ctx_socket(ctx);
	}
	if (status) {
		return status;
	}
	r = client_connect(ctx->socket, &ctx->client, &err);
	if (not_running(r)) {
		fprintf(stderr,
			"runyard: runyardd is not running: nothing answers at %s: %s (start it "
			"with 'runyard daemon start')\n",
			ctx->socket, strerror(-r));
		status = EXIT_USAGE;
		goto out;
	}
	if (r < 0) {
		status = report_connect(&err, r);
		goto out;
	}
	status = call(ctx, "daemon.status", NULL, &result);
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
	field("Socket:", json_str(result, "socket"));
	field("State dir:", json_str(result, "state_dir"));
	render_time(json_str(result, "started_at"), when);
	started = json_time(result, "started_at");
	render_duration(started > 0 ? now_wall() - started : -1, up);
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
out:
	cJSON_Delete(result);
	client_error_finish(&err);
	return status;
}

static const struct verb daemon_verbs[] = {
	{
		.name = "start",
		.handler = daemon_start_cb,
		.summary = "Start runyardd in the background",
		.usage = "Usage: runyard daemon start [--state-dir DIR] [--max-runs N] [--grace S] "
			 "[--download-max-mb N] [--download-timeout S]\n"
			 "           [--snapshot-max-mb N] [--snapshot-max-files N] [--json]\n"
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
			 "  --json           print {\"started\", \"pid\", \"socket\"}\n"
			 "\n"
			 "The daemon's output is appended to DIR/runyardd.log. The binary is\n"
			 "$RUNYARD_DAEMON, else runyardd beside runyard, else runyardd on PATH.\n",
	},
	{
		.name = "stop",
		.handler = daemon_stop_cb,
		.summary = "Stop runyardd (running runs go on)",
		.usage = "Usage: runyard daemon stop [--json]\n"
			 "\n"
			 "Ask runyardd to stop and wait (up to 10s) until it is gone. Runs keep\n"
			 "running under their supervisors and are re-attached at the next start.\n",
	},
	{
		.name = "status",
		.handler = daemon_status_cb,
		.summary = "Show runyardd's pid, socket, state and run counts",
		.usage = "Usage: runyard daemon status [--json]\n"
			 "\n"
			 "Show the daemon's version, pid, socket, state directory, uptime and how\n"
			 "many runs are in each status. Exits 1 when no daemon answers.\n",
	},
};

static const struct verb *find_verb(const struct verb *table, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(table[i].name, name) == 0) {
			return &table[i];
		}
	}
	return NULL;
}

#define N_DAEMON_VERBS (sizeof(daemon_verbs) / sizeof(daemon_verbs[0]))

static int daemon_cb(struct ctx *ctx, int argc, char **argv)
{
	const struct verb *sub;
	char *name;

	if (argc < 2) {
		return usage_error(ctx, "daemon needs start, stop or status");
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(ctx->verb->usage, stdout);
		return 0;
	}
	sub = find_verb(daemon_verbs, N_DAEMON_VERBS, argv[1]);
	if (!sub) {
		return usage_error(ctx, "unknown daemon command '%s'", argv[1]);
	}
	name = msg_strdupf("daemon %s", sub->name);
	if (!name) {
		return EXIT_USAGE;
	}
	free(ctx->name);
	ctx->name = name;
	ctx->verb = sub;
	return sub->handler(ctx, argc - 1, argv + 1);
}

/* ---- metrics, compare, tag ---- */

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
			status = EXIT_USAGE;
			goto out;
		}
		render_table_align_right(t, 0);
	}
	for (;;) {
		const cJSON *p;

		set_item(args, "after", cJSON_CreateNumber(after));
		status = call(ctx, "run.metrics", args, &result);
		if (status) {
			goto out;
		}
		cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(result, "points")) {
			if (ctx->json) {
				if (render_json_array_add(&array, p) < 0) {
					status = EXIT_USAGE;
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
				status = EXIT_USAGE;
				goto out;
			}
		}
		if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(result, "more"))) {
			break;
		}
		if (!json_num(result, "next", &next) || next <= after) {
			fprintf(stderr, "runyard: runyardd's run.metrics reply does not move on "
					"(next)\n");
			status = EXIT_REFUSED;
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
	static const struct option options[] = {COMMON_OPTIONS, {0}};
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
			fputs(ctx->verb->usage, stdout);
			return 0;
		default:
			return option_error(ctx, c, argv, options);
		}
	}
	if (optind >= argc) {
		return usage_error(ctx, "which run? give its id or number");
	}
	if (optind + 2 < argc) {
		return usage_error(ctx, "unexpected argument '%s'", argv[optind + 2]);
	}
	run = argv[optind];
	if (optind + 1 < argc) {
		return print_metric_points(ctx, run, argv[optind + 1]);
	}
	spark = !ctx->json && render_stdout_tty();
	args = cJSON_CreateObject();
	cJSON_AddStringToObject(args, "run", run);
	if (spark) {
		cJSON_AddNumberToObject(args, "spark", SPARK_POINTS);
	}
	status = call(ctx, "run.metrics", args, &result);
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
		status = EXIT_USAGE;
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
			status = EXIT_USAGE;
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
	static const struct option options[] = {COMMON_OPTIONS, {0}};
	cJSON *args = NULL, *doc = cJSON_CreateObject(), *runs, *names = NULL, *tag_names = NULL;
	int status = 0, c;

	runs = cJSON_AddArrayToObject(doc, "runs");
	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			fputs(ctx->verb->usage, stdout);
			goto out;
		default:
			status = option_error(ctx, c, argv, options);
			goto out;
		}
	}
	if (argc - optind < 2) {
		status = usage_error(ctx, "compare needs at least two runs");
		goto out;
	}
	for (int i = optind; i < argc; i++) {
		cJSON *run = NULL, *metrics = NULL, *entry;
		args = cJSON_CreateObject();
		cJSON_AddStringToObject(args, "run", argv[i]);
		status = call(ctx, "run.show", args, &run);
		if (!status) {
			status = call(ctx, "run.metrics", args, &metrics);
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
			set_item((cJSON *)run, "metrics", ms);
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
		status = EXIT_USAGE;
		goto out;
	}
	if (cJSON_GetArraySize(tag_names) > 0) {
		putchar('\n');
		if (compare_table(runs, "TAG", tag_names, true) < 0) {
			status = EXIT_USAGE;
		}
	}
out:
	cJSON_Delete(names);
	cJSON_Delete(tag_names);
	cJSON_Delete(args);
	cJSON_Delete(doc);
	return status;
}

/* KEY=VALUE into obj; a usage error names what is wrong. */
static int add_key_value(struct ctx *ctx, cJSON *obj, const char *arg, const char *what)
{
	const char *eq = strchr(arg, '=');
	char *key;

	if (!eq || eq == arg) {
		return usage_error(ctx, "'%s' is not KEY=VALUE (a %s)", arg, what);
	}
	key = strndup(arg, (size_t)(eq - arg));
	if (!key) {
		return EXIT_USAGE;
	}
	set_item(obj, key, cJSON_CreateString(eq + 1));
	free(key);
	return 0;
}

/* "Tags:       k=v", further pairs aligned under the first, as field() does. */
static void print_key_values(const char *title, const cJSON *map)
{
	const cJSON *kv;
	const char *label = title;

	if (cJSON_GetArraySize(map) == 0) {
		field(title, "-");
		return;
	}
	cJSON_ArrayForEach(kv, map) {
		printf("%-11s %s=%s\n", label, kv->string, cJSON_IsString(kv) ? kv->valuestring : "");
		label = "";
	}
}

static int tag_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{"remove", required_argument, NULL, 'd'},
		{"property", required_argument, NULL, 'p'},
		COMMON_OPTIONS,
		{0},
	};
	cJSON *args = cJSON_CreateObject(), *result = NULL;
	cJSON *tags = cJSON_AddObjectToObject(args, "tags");
	cJSON *props = cJSON_AddObjectToObject(args, "properties");
	int status = 0, c;

	while ((c = getopt_long(argc, argv, ":hd:p:", options, NULL)) != -1) {
		switch (c) {
		case 'd':
			if (!optarg[0]) {
				status = usage_error(ctx, "--remove needs a tag key");
				goto out;
			}
			set_item(tags, optarg, cJSON_CreateNull());
			break;
		case 'p':
			status = add_key_value(ctx, props, optarg, "property");
			if (status) {
				goto out;
			}
			break;
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			fputs(ctx->verb->usage, stdout);
			goto out;
		default:
			status = option_error(ctx, c, argv, options);
			goto out;
		}
	}
	if (optind >= argc) {
		status = usage_error(ctx, "which run? give its id or number");
		goto out;
	}
	cJSON_AddStringToObject(args, "run", argv[optind]);
	for (int i = optind + 1; i < argc; i++) {
		status = add_key_value(ctx, tags, argv[i], "tag");
		if (status) {
			goto out;
		}
	}
	status = call(ctx, "run.tag", args, &result);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(result);
		goto out;
	}
	printf("Run #%lld\n", json_int(result, "seq", 0));
	print_key_values("Tags:", cJSON_GetObjectItemCaseSensitive(result, "tags"));
	print_key_values("Properties:", cJSON_GetObjectItemCaseSensitive(result, "properties"));
out:
	cJSON_Delete(result);
	cJSON_Delete(args);
	return status;
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
		field(label, json_str(w, "message") ? json_str(w, "message") : "?");
		label = "";
	}
	if (json_num(run, "warnings_dropped", &dropped) && dropped > 0) {
		printf("%-11s ... and %.0f more\n", "", dropped);
	}
}

/* ---- ignore check, snapshot ---- */

/* Lexically normalise an absolute path: "." and empty components go, ".."
 * takes one back. */
static char *lexical_abs(const char *path)
{
	char *out = malloc(strlen(path) + 2);
	size_t o = 0;
	const char *p = path;

	if (!out) {
		return NULL;
	}
	while (*p) {
		const char *s = strchr(p, '/');
		size_t l = s ? (size_t)(s - p) : strlen(p);
		if (l == 2 && p[0] == '.' && p[1] == '.') {
			while (o > 0 && out[o - 1] != '/') {
				o--;
			}
			if (o > 0) {
				o--;
			}
		} else if (l > 0 && !(l == 1 && p[0] == '.')) {
			out[o++] = '/';
			memcpy(out + o, p, l);
			o += l;
		}
		p += l;
		if (*p == '/') {
			p++;
		}
	}
	if (o == 0) {
		out[o++] = '/';
	}
	out[o] = '\0';
	return out;
}

/* PATH as given as a path relative to the source directory src (absolute
 * and resolved): an absolute PATH must be inside src; a relative one is
 * relative to the current directory when that is inside src (as git
 * check-ignore takes it), else to src. A trailing '/' is kept: it says the
 * path is a directory. */
static int path_in_source(const char *src, const char *path, char **ret)
{
	size_t pl = strlen(path), sl = strlen(src);
	bool dir = pl > 0 && path[pl - 1] == '/';
	char *joined = NULL, *abs = NULL, *rel = NULL;
	char cwd[PATH_MAX];

	if (path[0] == '/') {
		joined = strdup(path);
	} else if (getcwd(cwd, sizeof(cwd)) &&
		   (strcmp(cwd, src) == 0 || (strncmp(cwd, src, sl) == 0 && cwd[sl] == '/'))) {
		joined = msg_strdupf("%s/%s", cwd, path);
	} else {
		joined = msg_strdupf("%s/%s", src, path);
	}
	abs = joined ? lexical_abs(joined) : NULL;
	if (abs && !(strncmp(abs, src, sl) == 0 && abs[sl] == '/')) {
		/* Perhaps through a symlink: resolve what exists of it. */
		char *slash = strrchr(abs, '/');
		char *dirpart = slash == abs ? strdup("/") : strndup(abs, (size_t)(slash - abs));
		char *real = dirpart ? realpath(dirpart, NULL) : NULL;
		if (real) {
			char *again = msg_strdupf("%s/%s", strcmp(real, "/") ? real : "", slash + 1);
			free(abs);
			abs = again;
		}
		free(real);
		free(dirpart);
	}
	if (abs && strncmp(abs, src, sl) == 0 && abs[sl] == '/' && abs[sl + 1]) {
		rel = msg_strdupf("%s%s", abs + sl + 1, dir ? "/" : "");
	}
	free(joined);
	free(abs);
	if (!rel) {
		fprintf(stderr, "runyard: %s is not inside the source directory %s\n", path, src);
		return EXIT_USAGE;
	}
	*ret = rel;
	return 0;
}

static int ignore_check_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{"source", required_argument, NULL, OPT_SOURCE},
		COMMON_OPTIONS,
		{0},
	};
	static const char *const headers[] = {"STATUS", "PATH", "WHY"};
	const char *source = NULL;
	cJSON *args = cJSON_CreateObject(), *paths = cJSON_CreateArray(), *result = NULL;
	struct render_table *t = NULL;
	const cJSON *it;
	char *src = NULL;
	int status = 0, c;

	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPT_SOURCE:
			source = optarg;
			break;
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			fputs(ctx->verb->usage, stdout);
			goto out;
		default:
			status = option_error(ctx, c, argv, options);
			goto out;
		}
	}
	if (optind >= argc) {
		status = usage_error(ctx, "no PATH to check");
		goto out;
	}
	src = realpath(source ? source : ".", NULL);
	if (!src) {
		fprintf(stderr, "runyard: source directory %s: %s\n", source ? source : ".",
			strerror(errno));
		status = EXIT_USAGE;
		goto out;
	}
	for (int i = optind; i < argc; i++) {
		char *rel = NULL;
		status = path_in_source(src, argv[i], &rel);
		if (status) {
			goto out;
		}
		cJSON_AddItemToArray(paths, cJSON_CreateString(rel));
		free(rel);
	}
	cJSON_AddStringToObject(args, "source", src);
	cJSON_AddItemToObject(args, "paths", paths);
	paths = NULL;
	status = call(ctx, "ignore.check", args, &result);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(result);
		goto out;
	}
	t = render_table_create(3, headers);
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(result, "results")) {
		const char *st = json_str(it, "status"), *why = json_str(it, "reason");
		char *match = NULL;
		const char *cells[3];
		if (st && strcmp(st, "ignored") == 0 && json_str(it, "source")) {
			match = msg_strdupf("%s:%lld:%s%s%s%s", json_str(it, "source"),
					    json_int(it, "line", 0), json_str(it, "pattern"),
					    json_str(it, "directory") ? " (in ignored directory " : "",
					    json_str(it, "directory") ? json_str(it, "directory") : "",
					    json_str(it, "directory") ? "/)" : "");
			why = match;
		}
		cells[0] = st ? st : "?";
		cells[1] = json_str(it, "path") ? json_str(it, "path") : "?";
		cells[2] = why ? why : "";
		if (t && render_table_add_row(t, cells) < 0) {
			render_table_destroy(t);
			t = NULL;
		}
		free(match);
	}
	if (!t) {
		fprintf(stderr, "runyard: out of memory\n");
		status = EXIT_USAGE;
		goto out;
	}
	render_table_print(t, stdout);
out:
	render_table_destroy(t);
	cJSON_Delete(result);
	cJSON_Delete(paths);
	cJSON_Delete(args);
	free(src);
	return status;
}

static const struct verb ignore_verbs[] = {
	{
		.name = "check",
		.handler = ignore_check_cb,
		.summary = "Explain whether paths would be taken into a snapshot",
		.usage = "Usage: runyard ignore check [--source DIR] [--json] PATH...\n"
			 "\n"
			 "For each PATH, say whether a snapshot of the source directory (default:\n"
			 "the current one) takes it, and if not, why: the ignore file, line and\n"
			 "pattern that exclude it (as 'git check-ignore -v' does), an ignored\n"
			 "directory above it, or its type. A relative PATH is relative to the\n"
			 "current directory when that is inside the source directory, else to\n"
			 "the source directory; a trailing '/' means a directory.\n"
			 "\n"
			 "  --source DIR  the source directory (default: the current one)\n"
			 "  --json        print the ignore.check result\n",
	},
};

#define N_IGNORE_VERBS (sizeof(ignore_verbs) / sizeof(ignore_verbs[0]))

static int ignore_cb(struct ctx *ctx, int argc, char **argv)
{
	if (argc < 2) {
		return usage_error(ctx, "ignore needs a command: check");
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(ctx->verb->usage, stdout);
		return 0;
	}
	if (strcmp(argv[1], "check") != 0) {
		return usage_error(ctx, "unknown ignore command '%s'", argv[1]);
	}
	free(ctx->name);
	ctx->name = strdup("ignore check");
	ctx->verb = &ignore_verbs[0];
	if (!ctx->name) {
		return EXIT_USAGE;
	}
	return ignore_check_cb(ctx, argc - 1, argv + 1);
}

/* The archive format a file name asks for, or NULL. */
static const char *format_of(const char *file)
{
	static const struct {
		const char *ext, *format;
	} exts[] = {
		{".tar.gz", "tar.gz"}, {".tgz", "tar.gz"},   {".tar.zst", "tar.zst"},
		{".tzst", "tar.zst"},  {".tar", "tar"},       {".zip", "zip"},
	};
	size_t fl = strlen(file);

	for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		size_t el = strlen(exts[i].ext);
		if (fl > el && strcmp(file + fl - el, exts[i].ext) == 0) {
			return exts[i].format;
		}
	}
	return NULL;
}

static int snapshot_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{"output", required_argument, NULL, 'o'},
		{"format", required_argument, NULL, OPT_FORMAT},
		COMMON_OPTIONS,
		{0},
	};
	const char *run = NULL, *out_path = NULL, *format = NULL;
	cJSON *args = cJSON_CreateObject(), *result = NULL, *chunk = NULL;
	unsigned char *buf = NULL;
	size_t cap = 0;
	char *tmp = NULL, hex[65] = "", err[256];
	struct digest *hash = NULL;
	double size = 0, done = 0, export_id = 0;
	int status = 0, c, fd = -1;

	while ((c = getopt_long(argc, argv, ":o:h", options, NULL)) != -1) {
		switch (c) {
		case 'o':
			out_path = optarg;
			break;
		case OPT_FORMAT:
			format = optarg;
			break;
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			fputs(ctx->verb->usage, stdout);
			goto out;
		default:
			status = option_error(ctx, c, argv, options);
			goto out;
		}
	}
	status = one_run(ctx, argc, argv, &run);
	if (status) {
		goto out;
	}
	if (!out_path) {
		status = usage_error(ctx, "name the archive to write with -o FILE");
		goto out;
	}
	if (!format) {
		format = format_of(out_path);
	}
	if (!format) {
		status = usage_error(ctx, "cannot tell the archive format of %s: name it .tar, "
					  ".tar.gz, .tar.zst or .zip, or pass --format",
				     out_path);
		goto out;
	}
	if (digest_new(&hash, err, sizeof(err)) < 0) {
		fprintf(stderr, "runyard: %s\n", err);
		status = EXIT_USAGE;
		goto out;
	}
	cJSON_AddStringToObject(args, "run", run);
	cJSON_AddStringToObject(args, "format", format);
	status = call(ctx, "snapshot.export", args, &result);
	if (status) {
		goto out;
	}
	if (!json_num(result, "export", &export_id) || !json_num(result, "size", &size) ||
	    !json_str(result, "sha256")) {
		fprintf(stderr, "runyard: runyardd's snapshot.export reply is incomplete\n");
		status = EXIT_REFUSED;
		goto out;
	}
	{
		const char *slash = strrchr(out_path, '/');
		tmp = slash ? msg_strdupf("%.*s/.%s.%ld.part", (int)(slash - out_path), out_path,
					  slash + 1, (long)getpid())
			    : msg_strdupf(".%s.%ld.part", out_path, (long)getpid());
	}
	fd = tmp ? open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666) : -1;
	if (fd < 0) {
		fprintf(stderr, "runyard: cannot create %s: %s\n", tmp ? tmp : out_path,
			strerror(errno));
		status = EXIT_USAGE;
		goto out;
	}
	for (;;) {
		cJSON *rargs = cJSON_CreateObject();
		const char *data;
		size_t n = 0;
		cJSON_AddNumberToObject(rargs, "export", export_id);
		cJSON_AddNumberToObject(rargs, "offset", done);
		status = call(ctx, "snapshot.export_read", rargs, &chunk);
		cJSON_Delete(rargs);
		if (status) {
			goto out;
		}
		data = json_str(chunk, "data");
		if (!data || digest_base64_decode(data, &buf, &cap, &n) < 0) {
			fprintf(stderr, "runyard: runyardd sent a chunk that is not base64\n");
			status = EXIT_REFUSED;
			goto out;
		}
		if (write_all(fd, buf, n) < 0) {
			fprintf(stderr, "runyard: cannot write %s: %s\n", tmp, strerror(errno));
			status = EXIT_USAGE;
			goto out;
		}
		digest_update(hash, buf, n);
		done += (double)n;
		progress(out_path, done, size);
		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(chunk, "eof")) || n == 0) {
			break;
		}
		cJSON_Delete(chunk);
		chunk = NULL;
	}
	if (render_stderr_tty()) {
		fputs("\r\033[K", stderr);
	}
	digest_final_hex(hash, hex);
	if (done != size || strcmp(hex, json_str(result, "sha256")) != 0) {
		fprintf(stderr, "runyard: the archive received does not match what runyardd "
				"announced (%.0f bytes, sha256 %s; expected %.0f bytes, %s)\n",
			done, hex, size, json_str(result, "sha256"));
		status = EXIT_REFUSED;
		goto out;
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		fd = -1;
		fprintf(stderr, "runyard: cannot write %s: %s\n", tmp, strerror(errno));
		status = EXIT_USAGE;
		goto out;
	}
	fd = -1;
	if (rename(tmp, out_path) < 0) {
		fprintf(stderr, "runyard: cannot rename %s to %s: %s\n", tmp, out_path,
			strerror(errno));
		status = EXIT_USAGE;
		goto out;
	}
	free(tmp);
	tmp = NULL;
	if (ctx->json) {
		cJSON *doc = cJSON_CreateObject();
		cJSON_AddStringToObject(doc, "file", out_path);
		cJSON_AddStringToObject(doc, "format", format);
		cJSON_AddNumberToObject(doc, "size", size);
		cJSON_AddStringToObject(doc, "sha256", hex);
		cJSON_AddStringToObject(doc, "snapshot",
					json_str(result, "snapshot") ? json_str(result, "snapshot")
								     : "");
		status = print_json(doc);
		cJSON_Delete(doc);
	} else {
		char sz[32];
		render_size(size, sz);
		printf("Wrote %s (%s, %s) from snapshot %.12s\n", out_path, format, sz,
		       json_str(result, "snapshot") ? json_str(result, "snapshot") : "?");
	}
out:
	if (fd >= 0) {
		close(fd);
	}
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	digest_free(hash);
	free(buf);
	cJSON_Delete(chunk);
	cJSON_Delete(result);
	cJSON_Delete(args);
	return status;
}

/* ---- models and services ---- */

/* Options of the model and service verbs (above the shared ones). */
enum {
	OPT_RUN = 600,
	OPT_PATH,
	OPT_FILE,
	OPT_FRAMEWORK,
	OPT_FRAMEWORK_VERSION,
	OPT_CPU,
	OPT_MEMORY_GB,
	OPT_TAG,
	OPT_PROPERTY,
	OPT_DESCRIPTION,
	OPT_SERVICE,
	OPT_PORT,
	OPT_ENTRY_SCRIPT,
	OPT_NO_WAIT,
	OPT_ENVIRONMENT,
	OPT_DATA,
	OPT_LINES,
	OPT_FOLLOW,
};

/* A positive number for an option; a usage error names the option. */
static int parse_positive(struct ctx *ctx, const char *opt, const char *s, double *ret)
{
	char *end;
	double v = strtod(s, &end);

	if (!*s || *end || !(v > 0) || v > 1e9) {
		return usage_error(ctx, "%s wants a number above 0, not '%s'", opt, s);
	}
	*ret = v;
	return 0;
}

static void model_summary_line(const cJSON *m, char *buf, size_t n)
{
	const char *fw = json_str(m, "framework"), *fv = json_str(m, "framework_version");
	char size[32];
	long long files = json_int(m, "file_count", 0);
	double bytes = 0;

	json_num(m, "size", &bytes);
	render_size(bytes, size);
	snprintf(buf, n, "%s%s%s%s%lld file%s, %s", fw ? fw : "", fw && fv ? " " : "", fv ? fv : "",
		 fw ? ", " : "", files, files == 1 ? "" : "s", size);
}

static int model_register_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{"run", required_argument, NULL, OPT_RUN},
		{"path", required_argument, NULL, OPT_PATH},
		{"file", required_argument, NULL, OPT_FILE},
		{"framework", required_argument, NULL, OPT_FRAMEWORK},
		{"framework-version", required_argument, NULL, OPT_FRAMEWORK_VERSION},
		{"cpu", required_argument, NULL, OPT_CPU},
		{"memory-gb", required_argument, NULL, OPT_MEMORY_GB},
		{"tag", required_argument, NULL, OPT_TAG},
		{"property", required_argument, NULL, OPT_PROPERTY},
		{"description", required_argument, NULL, OPT_DESCRIPTION},
		COMMON_OPTIONS,
		{0},
	};
	cJSON *args = cJSON_CreateObject(), *result = NULL;
	cJSON *tags = cJSON_CreateObject(), *props = cJSON_CreateObject();
	const char *run = NULL, *path = NULL, *file = NULL;
	char *abs = NULL, summary[256];
	double v;
	int status = 0, c;

	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPT_RUN:
			run = optarg;
			break;
		case OPT_PATH:
			path = optarg;
			break;
		case OPT_FILE:
			file = optarg;
			break;
		case OPT_FRAMEWORK:
			set_item(args, "framework", cJSON_CreateString(optarg));
			break;
		case OPT_FRAMEWORK_VERSION:
			set_item(args, "framework_version", cJSON_CreateString(optarg));
			break;
		case OPT_CPU:
		case OPT_MEMORY_GB:
			status = parse_positive(ctx, c == OPT_CPU ? "--cpu" : "--memory-gb", optarg,
						&v);
			if (status) {
				goto out;
			}
			set_item(args, c == OPT_CPU ? "cpu" : "memory_gb", cJSON_CreateNumber(v));
			break;
		case OPT_TAG:
		case OPT_PROPERTY:
			status = add_key_value(ctx, c == OPT_TAG ? tags : props, optarg,
					       c == OPT_TAG ? "tag" : "property");
			if (status) {
				goto out;
			}
			break;
		case OPT_DESCRIPTION:
			set_item(args, "description", cJSON_CreateString(optarg));
			break;
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			fputs(ctx->verb->usage, stdout);
			goto out;
		default:
			status = option_error(ctx, c, argv, options);
			goto out;
		}
	}
	if (optind >= argc) {
		status = usage_error(ctx, "which name? give the model's name");
		goto out;
	}
	if (optind + 1 < argc) {
		status = usage_error(ctx, "unexpected argument '%s'", argv[optind + 1]);
		goto out;
	}
	if (!file == !(run || path) || (!file && !(run && path))) {
		status = usage_error(ctx, "give --run RUN --path PATH (a run's output) or --file "
					  "LOCAL_PATH");
		goto out;
	}
	cJSON_AddStringToObject(args, "name", argv[optind]);
	if (file) {
		abs = realpath(file, NULL);
		if (!abs) {
			fprintf(stderr, "runyard: %s: %s\n", file, strerror(errno));
			status = EXIT_USAGE;
			goto out;
		}
		cJSON_AddStringToObject(args, "file", abs);
	} else {
		cJSON_AddStringToObject(args, "run", run);
		cJSON_AddStringToObject(args, "path", path);
	}
	set_item(args, "tags", tags);
	tags = NULL;
	set_item(args, "properties", props);
	props = NULL;
	status = call(ctx, "model.register", args, &result);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(result);
		goto out;
	}
	model_summary_line(result, summary, sizeof(summary));
	const cJSON *r = cJSON_GetObjectItemCaseSensitive(result, "run");
	if (cJSON_IsObject(r)) {
		printf("Registered model %s (%s) from run #%lld %s\n", json_str(result, "id"), summary,
		       json_int(r, "seq", 0), json_str(result, "path"));
	} else {
		printf("Registered model %s (%s) from %s\n", json_str(result, "id"), summary,
		       json_str(result, "path"));
	}
out:
	free(abs);
	cJSON_Delete(tags);
	cJSON_Delete(props);
	cJSON_Delete(result);
	cJSON_Delete(args);
	return status;
}

static int model_list_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {COMMON_OPTIONS, {0}};
	static const char *const headers[] = {"NAME", "VERSION", "FRAMEWORK", "RUN", "FILES",
					      "SIZE", "CREATED", "SERVICES"};
	cJSON *args = cJSON_CreateObject(), *result = NULL;
	struct render_table *t = NULL;
	const cJSON *m, *models;
	int status = 0, c;

	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			fputs(ctx->verb->usage, stdout);
			goto out;
		default:
			status = option_error(ctx, c, argv, options);
			goto out;
		}
	}
	if (optind < argc) {
		cJSON_AddStringToObject(args, "name", argv[optind]);
		if (optind + 1 < argc) {
			status = usage_error(ctx, "unexpected argument '%s'", argv[optind + 1]);
			goto out;
		}
	}
	status = call(ctx, "model.list", args, &result);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(result);
		goto out;
	}
	models = cJSON_GetObjectItemCaseSensitive(result, "models");
	if (cJSON_GetArraySize(models) == 0) {
		printf("No models registered yet (see 'runyard model register --help').\n");
		goto out;
	}
	t = render_table_create(8, headers);
	if (!t) {
		status = EXIT_USAGE;
		goto out;
	}
	render_table_align_right(t, 1);
	render_table_align_right(t, 4);
	render_table_align_right(t, 5);
	cJSON_ArrayForEach(m, models) {
		char version[24], run[32], files[24], size[32], created[32], *svcs = NULL;
		const cJSON *r = cJSON_GetObjectItemCaseSensitive(m, "run"), *s;
		double bytes = 0;
		snprintf(version, sizeof(version), "%lld", json_int(m, "version", 0));
		if (cJSON_IsObject(r)) {
			snprintf(run, sizeof(run), "#%lld", json_int(r, "seq", 0));
		} else {
			snprintf(run, sizeof(run), "-");
		}
		snprintf(files, sizeof(files), "%lld", json_int(m, "file_count", 0));
		json_num(m, "size", &bytes);
		render_size(bytes, size);
		render_time(json_str(m, "created_at"), created);
		cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(m, "services")) {
			char *joined = msg_strdupf("%s%s%s", svcs ? svcs : "", svcs ? "," : "",
						   cJSON_IsString(s) ? s->valuestring : "?");
			free(svcs);
			svcs = joined;
		}
		const char *cells[] = {json_str(m, "name"), version, json_str(m, "framework"),
				       run, files, size, created, svcs};
		render_table_add_row(t, cells);
		free(svcs);
	}
	render_table_print(t, stdout);
out:
	render_table_destroy(t);
	cJSON_Delete(result);
	cJSON_Delete(args);
	return status;
}

/* Exactly one positional argument (a model or a service). */
static int one_arg(struct ctx *ctx, int argc, char **argv, const char *what, const char **ret)
{
	if (optind >= argc) {
		return usage_error(ctx, "which %s?", what);
	}
	if (optind + 1 < argc) {
		return usage_error(ctx, "unexpected argument '%s'", argv[optind + 1]);
	}
	*ret = argv[optind];
	return 0;
}

/* Verbs that take only --json and one argument. */
static int simple_args(struct ctx *ctx, int argc, char **argv, const char *what,
		       const char **ret)
{
	static const struct option options[] = {COMMON_OPTIONS, {0}};
	int c;

	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			fputs(ctx->verb->usage, stdout);
			return -1;
		default:
			return option_error(ctx, c, argv, options);
		}
	}
	return one_arg(ctx, argc, argv, what, ret);
}

static int model_show_cb(struct ctx *ctx, int argc, char **argv)
{
	cJSON *args = cJSON_CreateObject(), *m = NULL;
	const char *ref = NULL;
	const cJSON *f, *rc, *r;
	char created[32], size[32];
	double bytes = 0;
	int status = simple_args(ctx, argc, argv, "model", &ref);

	if (status) {
		status = status < 0 ? 0 : status;
		goto out;
	}
	cJSON_AddStringToObject(args, "model", ref);
	status = call(ctx, "model.show", args, &m);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(m);
		goto out;
	}
	printf("Model %s\n", json_str(m, "id"));
	field("Framework:", json_str(m, "framework") ? json_str(m, "framework") : "-");
	field("Version:", json_str(m, "framework_version") ? json_str(m, "framework_version")
							    : "-");
	rc = cJSON_GetObjectItemCaseSensitive(m, "resource_configuration");
	if (cJSON_IsObject(rc)) {
		double cpu = 0, mem = 0;
		char buf[96];
		bool has_cpu = json_num(rc, "cpu", &cpu), has_mem = json_num(rc, "memory_in_gb", &mem);
		snprintf(buf, sizeof(buf), "%s%g%s%s%g%s", has_cpu ? "cpu " : "", has_cpu ? cpu : 0.0,
			 has_cpu && has_mem ? ", " : "", has_mem ? "memory " : "",
			 has_mem ? mem : 0.0, has_mem ? " GB" : "");
		field("Resources:", buf);
	} else {
		field("Resources:", "-");
	}
	r = cJSON_GetObjectItemCaseSensitive(m, "run");
	if (cJSON_IsObject(r)) {
		char buf[512];
		snprintf(buf, sizeof(buf), "#%lld %s, %s", json_int(r, "seq", 0),
			 json_str(r, "id") ? json_str(r, "id") : "", json_str(m, "path"));
		field("From run:", buf);
	} else {
		field("From file:", json_str(m, "path"));
	}
	if (json_str(m, "description")) {
		field("About:", json_str(m, "description"));
	}
	render_time(json_str(m, "created_at"), created);
	field("Created:", created);
	print_key_values("Tags:", cJSON_GetObjectItemCaseSensitive(m, "tags"));
	print_key_values("Properties:", cJSON_GetObjectItemCaseSensitive(m, "properties"));
	const cJSON *svcs = cJSON_GetObjectItemCaseSensitive(m, "services");
	if (cJSON_GetArraySize(svcs) == 0) {
		field("Services:", "-");
	} else {
		const char *label = "Services:";
		cJSON_ArrayForEach(f, svcs) {
			field(label, cJSON_IsString(f) ? f->valuestring : "?");
			label = "";
		}
	}
	json_num(m, "size", &bytes);
	render_size(bytes, size);
	printf("Files (%lld, %s):\n", json_int(m, "file_count", 0), size);
	cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(m, "files")) {
		double fs = 0;
		char s[32];
		json_num(f, "size", &fs);
		render_size(fs, s);
		printf("  %-40s %10s  %.12s\n", json_str(f, "path"), s, json_str(f, "sha256"));
	}
out:
	cJSON_Delete(m);
	cJSON_Delete(args);
	return status;
}

static int model_download_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {COMMON_OPTIONS, {0}};
	cJSON *args = cJSON_CreateObject(), *m = NULL;
	struct download dl = {.op = "model.read", .key = "model", .dirfd = -1};
	const cJSON *f, *files;
	char size[32];
	int status = 0, c;

	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			fputs(ctx->verb->usage, stdout);
			goto out;
		default:
			status = option_error(ctx, c, argv, options);
			goto out;
		}
	}
	if (optind + 2 != argc) {
		status = usage_error(ctx, "give the model (NAME[:VERSION]) and a directory");
		goto out;
	}
	cJSON_AddStringToObject(args, "model", argv[optind]);
	status = call(ctx, "model.show", args, &m);
	if (status) {
		goto out;
	}
	/* Name the exact version, so a newer one registered meanwhile is not mixed in. */
	dl.run = json_str(m, "id");
	dl.dir = argv[optind + 1];
	if (!dl.run) {
		fprintf(stderr, "runyard: runyardd's model.show reply has no id\n");
		status = EXIT_REFUSED;
		goto out;
	}
	status = download_open(&dl);
	if (status) {
		goto out;
	}
	files = cJSON_GetObjectItemCaseSensitive(m, "files");
	cJSON_ArrayForEach(f, files) {
		status = download_one(ctx, &dl, f);
		if (status) {
			goto out;
		}
	}
	if (ctx->json) {
		cJSON *res = cJSON_CreateObject();
		cJSON_AddStringToObject(res, "model", dl.run);
		cJSON_AddStringToObject(res, "directory", dl.dir);
		cJSON_AddItemToObject(res, "files", cJSON_Duplicate(files, true));
		status = print_json(res);
		cJSON_Delete(res);
		goto out;
	}
	render_size(dl.total, size);
	printf("Downloaded model %s (%d file%s, %s) to %s\n", dl.run, cJSON_GetArraySize(files),
	       cJSON_GetArraySize(files) == 1 ? "" : "s", size, dl.dir);
out:
	download_close(&dl);
	cJSON_Delete(m);
	cJSON_Delete(args);
	return status;
}

static int model_delete_cb(struct ctx *ctx, int argc, char **argv)
{
	cJSON *args = cJSON_CreateObject(), *result = NULL;
	const char *ref = NULL;
	int status = simple_args(ctx, argc, argv, "model (NAME:VERSION)", &ref);

	if (status) {
		status = status < 0 ? 0 : status;
		goto out;
	}
	cJSON_AddStringToObject(args, "model", ref);
	status = call(ctx, "model.delete", args, &result);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(result);
	} else {
		printf("Deleted model %s\n", json_str(result, "id"));
	}
out:
	cJSON_Delete(result);
	cJSON_Delete(args);
	return status;
}

static void print_service_line(const cJSON *s)
{
	const char *state = json_str(s, "state");

	printf("Service %s is %s%s%s: %s (model %s)\n", json_str(s, "name"),
	       render_status_color(state ? state : ""), state ? state : "?", render_color_reset(),
	       json_str(s, "scoring_uri"), json_str(s, "model"));
}

static int model_deploy_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{"service", required_argument, NULL, OPT_SERVICE},
		{"port", required_argument, NULL, OPT_PORT},
		{"python", required_argument, NULL, OPT_PYTHON},
		{"entry-script", required_argument, NULL, OPT_ENTRY_SCRIPT},
		{"source", required_argument, NULL, OPT_SOURCE},
		{"environment", required_argument, NULL, OPT_ENVIRONMENT},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		{"no-wait", no_argument, NULL, OPT_NO_WAIT},
		COMMON_OPTIONS,
		{0},
	};
	cJSON *args = cJSON_CreateObject(), *result = NULL;
	const char *service = NULL, *script = NULL, *source = NULL;
	char *abs = NULL;
	long long port;
	double timeout;
	bool wait = true;
	int status = 0, c;

	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPT_SERVICE:
			service = optarg;
			break;
		case OPT_PORT:
			if (parse_int(optarg, 1, 65535, &port) < 0) {
				status = usage_error(ctx, "--port wants a port from 1 to 65535, not '%s'",
						     optarg);
				goto out;
			}
			set_item(args, "port", cJSON_CreateNumber((double)port));
			break;
		case OPT_PYTHON:
			set_item(args, "python", cJSON_CreateString(optarg));
			break;
		case OPT_ENTRY_SCRIPT:
			script = optarg;
			break;
		case OPT_SOURCE:
			source = optarg;
			break;
		case OPT_ENVIRONMENT:
			set_item(args, "environment", cJSON_CreateString(optarg));
			break;
		case OPT_TIMEOUT:
			status = parse_positive(ctx, "--timeout", optarg, &timeout);
			if (status) {
				goto out;
			}
			set_item(args, "timeout", cJSON_CreateNumber(timeout));
			break;
		case OPT_NO_WAIT:
			wait = false;
			break;
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			fputs(ctx->verb->usage, stdout);
			goto out;
		default:
			status = option_error(ctx, c, argv, options);
			goto out;
		}
	}
	if (optind >= argc) {
		status = usage_error(ctx, "which model? give NAME or NAME:VERSION");
		goto out;
	}
	if (optind + 1 < argc) {
		status = usage_error(ctx, "unexpected argument '%s'", argv[optind + 1]);
		goto out;
	}
	if (!service) {
		status = usage_error(ctx, "name the service with --service SVC");
		goto out;
	}
	if (source && !script) {
		status = usage_error(ctx, "--source goes with --entry-script");
		goto out;
	}
	cJSON_AddStringToObject(args, "model", argv[optind]);
	cJSON_AddStringToObject(args, "service", service);
	cJSON_AddBoolToObject(args, "wait", wait);
	if (script) {
		abs = realpath(source ? source : ".", NULL);
		if (!abs) {
			fprintf(stderr, "runyard: %s: %s\n", source ? source : ".", strerror(errno));
			status = EXIT_USAGE;
			goto out;
		}
		cJSON_AddStringToObject(args, "entry_script", script);
		cJSON_AddStringToObject(args, "source", abs);
	}
	if (wait && render_stderr_tty() && !ctx->json) {
		fprintf(stderr, "Deploying %s to service %s ...\n", argv[optind], service);
	}
	status = call(ctx, "model.deploy", args, &result);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(result);
	} else {
		print_service_line(result);
	}
out:
	free(abs);
	cJSON_Delete(result);
	cJSON_Delete(args);
	return status;
}

static int service_list_cb(struct ctx *ctx, int argc, char **argv)
{
	static const char *const headers[] = {"NAME", "STATE", "MODEL", "PORT", "PID", "RESTARTS",
					      "SCORING URI"};
	cJSON *result = NULL;
	struct render_table *t = NULL;
	const cJSON *s, *list;
	static const struct option options[] = {COMMON_OPTIONS, {0}};
	int status = 0, c;

	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			fputs(ctx->verb->usage, stdout);
			return 0;
		default:
			return option_error(ctx, c, argv, options);
		}
	}
	if (optind < argc) {
		return usage_error(ctx, "unexpected argument '%s'", argv[optind]);
	}
	status = call(ctx, "service.list", NULL, &result);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(result);
		goto out;
	}
	list = cJSON_GetObjectItemCaseSensitive(result, "services");
	if (cJSON_GetArraySize(list) == 0) {
		printf("No services (deploy a model with 'runyard model deploy NAME --service SVC').\n");
		goto out;
	}
	t = render_table_create(7, headers);
	if (!t) {
		status = EXIT_USAGE;
		goto out;
	}
	render_table_status_column(t, 1);
	render_table_align_right(t, 3);
	render_table_align_right(t, 4);
	render_table_align_right(t, 5);
	cJSON_ArrayForEach(s, list) {
		char port[16], pid[24], restarts[16];
		snprintf(port, sizeof(port), "%lld", json_int(s, "port", 0));
		if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(s, "pid"))) {
			snprintf(pid, sizeof(pid), "%lld", json_int(s, "pid", 0));
		} else {
			snprintf(pid, sizeof(pid), "-");
		}
		snprintf(restarts, sizeof(restarts), "%lld", json_int(s, "restarts", 0));
		const char *cells[] = {json_str(s, "name"),  json_str(s, "state"), json_str(s, "model"),
				       port, pid, restarts, json_str(s, "scoring_uri")};
		render_table_add_row(t, cells);
	}
	render_table_print(t, stdout);
out:
	render_table_destroy(t);
	cJSON_Delete(result);
	return status;
}

static int service_show_cb(struct ctx *ctx, int argc, char **argv)
{
	cJSON *args = cJSON_CreateObject(), *s = NULL;
	const char *name = NULL;
	const cJSON *p, *i;
	char t1[32];
	int status = simple_args(ctx, argc, argv, "service", &name);

	if (status) {
		status = status < 0 ? 0 : status;
		goto out;
	}
	cJSON_AddStringToObject(args, "service", name);
	status = call(ctx, "service.show", args, &s);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(s);
		goto out;
	}
	print_service_line(s);
	field("Kind:", json_str(s, "kind"));
	if (json_str(s, "entry_script")) {
		char buf[4200];
		snprintf(buf, sizeof(buf), "%s in %s (snapshot %.12s)", json_str(s, "entry_script"),
			 json_str(s, "source") ? json_str(s, "source") : "?",
			 json_str(s, "snapshot") ? json_str(s, "snapshot") : "?");
		field("Script:", buf);
	}
	field("Python:", json_str(s, "python"));
	if (json_str(s, "environment")) {
		field("Environment:", json_str(s, "environment"));
	}
	if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(s, "pid"))) {
		char buf[96];
		render_time(json_str(s, "serving_since"), t1);
		snprintf(buf, sizeof(buf), "%lld, since %s", json_int(s, "pid", 0), t1);
		field("Serving:", buf);
	} else {
		field("Serving:", "-");
	}
	p = cJSON_GetObjectItemCaseSensitive(s, "pending");
	if (cJSON_IsObject(p)) {
		char buf[300];
		snprintf(buf, sizeof(buf), "model %s starting (pid %lld)", json_str(p, "model"),
			 json_int(p, "pid", 0));
		field("Pending:", buf);
	}
	snprintf(t1, sizeof(t1), "%lld", json_int(s, "restarts", 0));
	field("Restarts:", t1);
	cJSON_ArrayForEach(i, cJSON_GetObjectItemCaseSensitive(s, "instances")) {
		char buf[300];
		snprintf(buf, sizeof(buf), "pid %lld, model %s, %s", json_int(i, "pid", 0),
			 json_str(i, "model"), json_str(i, "state"));
		field("Instance:", buf);
	}
	render_time(json_str(s, "created_at"), t1);
	field("Created:", t1);
	render_time(json_str(s, "updated_at"), t1);
	field("Updated:", t1);
	field("Log:", json_str(s, "log"));
	if (json_str(s, "error")) {
		printf("Error:\n%s\n", json_str(s, "error"));
	}
out:
	cJSON_Delete(s);
	cJSON_Delete(args);
	return status;
}

static int service_logs_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{"follow", no_argument, NULL, 'f'},
		{"lines", required_argument, NULL, OPT_LINES},
		COMMON_OPTIONS,
		{0},
	};
	cJSON *args = cJSON_CreateObject(), *result = NULL;
	const char *name = NULL;
	bool follow = false;
	long long lines = 0;
	double next = 0;
	int status = 0, c;

	while ((c = getopt_long(argc, argv, ":hf", options, NULL)) != -1) {
		switch (c) {
		case 'f':
			follow = true;
			break;
		case OPT_LINES:
			if (parse_int(optarg, 1, 1000000, &lines) < 0) {
				status = usage_error(ctx, "--lines wants a number from 1, not '%s'",
						     optarg);
				goto out;
			}
			break;
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			fputs(ctx->verb->usage, stdout);
			goto out;
		default:
			status = option_error(ctx, c, argv, options);
			goto out;
		}
	}
	status = one_arg(ctx, argc, argv, "service", &name);
	if (status) {
		goto out;
	}
	if (follow && ctx->json) {
		status = usage_error(ctx, "--follow and --json do not go together");
		goto out;
	}
	cJSON_AddStringToObject(args, "service", name);
	if (lines > 0) {
		cJSON_AddNumberToObject(args, "lines", (double)lines);
	}
	status = call(ctx, "service.logs", args, &result);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(result);
		goto out;
	}
	for (;;) {
		const char *text = json_str(result, "text");
		if (text) {
			fputs(text, stdout);
			fflush(stdout);
		}
		if (!follow) {
			break;
		}
		json_num(result, "next", &next);
		cJSON_Delete(result);
		result = NULL;
		sleep_ms(250);
		cJSON_DeleteItemFromObject(args, "lines");
		set_item(args, "after", cJSON_CreateNumber(next));
		status = call(ctx, "service.logs", args, &result);
		if (status) {
			goto out;
		}
	}
out:
	cJSON_Delete(result);
	cJSON_Delete(args);
	return status;
}

static int service_restart_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{"no-wait", no_argument, NULL, OPT_NO_WAIT},
		COMMON_OPTIONS,
		{0},
	};
	cJSON *args = cJSON_CreateObject(), *result = NULL;
	const char *name = NULL;
	bool wait = true;
	int status = 0, c;

	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPT_NO_WAIT:
			wait = false;
			break;
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			fputs(ctx->verb->usage, stdout);
			goto out;
		default:
			status = option_error(ctx, c, argv, options);
			goto out;
		}
	}
	status = one_arg(ctx, argc, argv, "service", &name);
	if (status) {
		goto out;
	}
	cJSON_AddStringToObject(args, "service", name);
	cJSON_AddBoolToObject(args, "wait", wait);
	status = call(ctx, "service.restart", args, &result);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(result);
	} else {
		print_service_line(result);
	}
out:
	cJSON_Delete(result);
	cJSON_Delete(args);
	return status;
}

static int service_delete_cb(struct ctx *ctx, int argc, char **argv)
{
	cJSON *args = cJSON_CreateObject(), *result = NULL;
	const char *name = NULL;
	int status = simple_args(ctx, argc, argv, "service", &name);

	if (status) {
		status = status < 0 ? 0 : status;
		goto out;
	}
	cJSON_AddStringToObject(args, "service", name);
	status = call(ctx, "service.delete", args, &result);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(result);
	} else {
		printf("Deleted service %s\n", json_str(result, "name"));
	}
out:
	cJSON_Delete(result);
	cJSON_Delete(args);
	return status;
}

static int service_invoke_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{"data", required_argument, NULL, OPT_DATA},
		{"path", required_argument, NULL, OPT_PATH},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		COMMON_OPTIONS,
		{0},
	};
	cJSON *args = cJSON_CreateObject(), *svc = NULL;
	const char *name = NULL, *data = NULL, *route = "/score";
	char *owned = NULL, *url = NULL, err[256] = "";
	struct httppost_reply body = {0};
	double timeout = 60;
	long code = 0;
	int status = 0, c;

	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPT_DATA:
			data = optarg;
			break;
		case OPT_PATH:
			route = optarg;
			break;
		case OPT_TIMEOUT:
			status = parse_positive(ctx, "--timeout", optarg, &timeout);
			if (status) {
				goto out;
			}
			break;
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			fputs(ctx->verb->usage, stdout);
			goto out;
		default:
			status = option_error(ctx, c, argv, options);
			goto out;
		}
	}
	status = one_arg(ctx, argc, argv, "service", &name);
	if (status) {
		goto out;
	}
	if (!data) {
		status = usage_error(ctx, "give the request body with --data JSON (or --data @FILE)");
		goto out;
	}
	if (route[0] != '/') {
		status = usage_error(ctx, "--path wants a route starting with '/', like /score");
		goto out;
	}
	if (data[0] == '@') {
		size_t len;
		if (read_file(data + 1, &owned, &len) < 0) {
			fprintf(stderr, "runyard: cannot read %s: %s\n", data + 1, strerror(errno));
			status = EXIT_USAGE;
			goto out;
		}
		data = owned;
	}
	cJSON_AddStringToObject(args, "service", name);
	status = call(ctx, "service.show", args, &svc);
	if (status) {
		goto out;
	}
	url = msg_strdupf("http://127.0.0.1:%lld%s", json_int(svc, "port", 0), route);
	if (!url) {
		status = EXIT_USAGE;
		goto out;
	}
	if (httppost_json(url, data, timeout, &body, err, sizeof(err)) < 0) {
		fprintf(stderr, "runyard: posting to %s failed: %s (service %s is %s; see "
				"'runyard service show %s')\n",
			url, err, name, json_str(svc, "state") ? json_str(svc, "state") : "?", name);
		status = EXIT_USAGE;
		goto out;
	}
	code = body.status;
	if (ctx->json) {
		cJSON *res = cJSON_CreateObject(), *doc = body.body ? cJSON_Parse(body.body) : NULL;
		cJSON_AddNumberToObject(res, "status", (double)code);
		cJSON_AddItemToObject(res, "response",
				      doc ? doc : cJSON_CreateString(body.body ? body.body : ""));
		status = print_json(res);
		cJSON_Delete(res);
	} else if (body.body) {
		fputs(body.body, stdout);
		if (body.len && body.body[body.len - 1] != '\n') {
			putchar('\n');
		}
	}
	if (code < 200 || code >= 300) {
		fprintf(stderr, "runyard: service %s answered HTTP %ld\n", name, code);
		status = status ? status : EXIT_REFUSED;
	}
out:
	free(body.body);
	free(url);
	free(owned);
	cJSON_Delete(svc);
	cJSON_Delete(args);
	return status;
}

static const struct verb model_verbs[] = {
	{
		.name = "register",
		.handler = model_register_cb,
		.summary = "Register a run's output or a local file as a model version",
		.usage = "Usage: runyard model register NAME (--run RUN --path PATH | --file LOCAL)\n"
			 "           [--framework F] [--framework-version V] [--cpu N] [--memory-gb G]\n"
			 "           [--tag K=V]... [--property K=V]... [--description TEXT] [--json]\n"
			 "\n"
			 "Register a new version of model NAME (versions count from 1 per name).\n"
			 "A run's output is referenced, not copied; a local file or folder is\n"
			 "stored content-addressed.\n"
			 "\n"
			 "  --run RUN --path PATH   a file or folder among the run's outputs\n"
			 "                          (outputs/model.joblib), or in its working\n"
			 "                          directory while it still runs\n"
			 "  --file LOCAL            a local file or folder\n"
			 "  --framework F           scikit-learn, onnx, tensorflow, tfkeras, pytorch,\n"
			 "                          custom or multi (scikit-learn models can be\n"
			 "                          deployed without code)\n"
			 "  --framework-version V   the framework's version (needs --framework)\n"
			 "  --cpu N, --memory-gb G  the resources a deployment should get\n"
			 "  --tag K=V, --property K=V, --description TEXT\n",
	},
	{
		.name = "list",
		.handler = model_list_cb,
		.summary = "List registered models",
		.usage = "Usage: runyard model list [NAME] [--json]\n"
			 "\n"
			 "List every version of every model, or of model NAME.\n",
	},
	{
		.name = "show",
		.handler = model_show_cb,
		.summary = "Show a model version",
		.usage = "Usage: runyard model show NAME[:VERSION] [--json]\n"
			 "\n"
			 "Show a model version (the latest when VERSION is left out): framework,\n"
			 "resources, origin, tags, properties, services and files.\n",
	},
	{
		.name = "download",
		.handler = model_download_cb,
		.summary = "Download a model's files",
		.usage = "Usage: runyard model download NAME[:VERSION] DIR [--json]\n"
			 "\n"
			 "Fetch the model's files into DIR (made if missing), checked against\n"
			 "their size and sha256.\n",
	},
	{
		.name = "delete",
		.handler = model_delete_cb,
		.summary = "Delete a model version",
		.usage = "Usage: runyard model delete NAME:VERSION [--json]\n"
			 "\n"
			 "Delete one version. Refused while a service serves it. Its version number\n"
			 "is never given again.\n",
	},
	{
		.name = "deploy",
		.handler = model_deploy_cb,
		.summary = "Serve a model as a local web service",
		.usage = "Usage: runyard model deploy NAME[:VERSION] --service SVC [--port N]\n"
			 "           [--python PATH | --environment NAME[:VERSION]]\n"
			 "           [--entry-script FILE [--source DIR]]\n"
			 "           [--timeout S] [--no-wait] [--json]\n"
			 "\n"
			 "Serve the model on http://127.0.0.1:PORT: POST /score with\n"
			 "{\"data\": [[...]], \"method\": \"predict\"|\"predict_proba\"}, MLflow's\n"
			 "POST /invocations, GET / (Healthy). A scikit-learn model needs no code;\n"
			 "other models take an entry script with init() and run(raw_data).\n"
			 "Deploying to an existing service swaps the model in without dropping a\n"
			 "request. Waits until the service is Healthy (or failed).\n"
			 "\n"
			 "  --service SVC        the service to create or update\n"
			 "  --port N             the port (default: a free one; kept across restarts)\n"
			 "  --python PATH        the interpreter (default /usr/bin/python3)\n"
			 "  --environment NAME[:VERSION]\n"
			 "                       run the server in this environment (built first\n"
			 "                       when it needs a build); not with --python\n"
			 "  --entry-script FILE  a scoring script in DIR (default: this directory),\n"
			 "  --source DIR         snapshotted like a run's source\n"
			 "  --timeout S          seconds the server may take to be Healthy (120)\n"
			 "  --no-wait            return at once; see 'runyard service show'\n",
	},
};

static const struct verb service_verbs[] = {
	{
		.name = "list",
		.handler = service_list_cb,
		.summary = "List services",
		.usage = "Usage: runyard service list [--json]\n"
			 "\n"
			 "List the services with their state (Transitioning, Healthy, Unhealthy,\n"
			 "Failed), model, port and scoring URI.\n",
	},
	{
		.name = "show",
		.handler = service_show_cb,
		.summary = "Show a service",
		.usage = "Usage: runyard service show SVC [--json]\n"
			 "\n"
			 "Show a service: state, model, scoring URI, instances, restarts and the\n"
			 "last error with the lines its log ended with.\n",
	},
	{
		.name = "logs",
		.handler = service_logs_cb,
		.summary = "Print a service's log",
		.usage = "Usage: runyard service logs SVC [-f|--follow] [--lines N] [--json]\n"
			 "\n"
			 "Print what the service's servers wrote, with runyard's own notes.\n"
			 "\n"
			 "  -f, --follow  keep printing as the log grows (^C to stop)\n"
			 "  --lines N     only the last N lines\n",
	},
	{
		.name = "restart",
		.handler = service_restart_cb,
		.summary = "Restart a service without dropping a request",
		.usage = "Usage: runyard service restart SVC [--no-wait] [--json]\n"
			 "\n"
			 "Start a new server for the service, switch to it once healthy and stop\n"
			 "the old one.\n",
	},
	{
		.name = "delete",
		.handler = service_delete_cb,
		.summary = "Stop and delete a service",
		.usage = "Usage: runyard service delete SVC [--json]\n",
	},
	{
		.name = "invoke",
		.handler = service_invoke_cb,
		.summary = "Post a request to a service",
		.usage = "Usage: runyard service invoke SVC --data JSON [--path /score] "
			 "[--timeout S] [--json]\n"
			 "\n"
			 "POST JSON (or @FILE) to the service and print its answer. Exits 2 when\n"
			 "the answer is not a success.\n"
			 "\n"
			 "  --path ROUTE  /score (default) or /invocations\n"
			 "  --json        print {\"status\", \"response\"}\n",
	},
};

static int subverb(struct ctx *ctx, int argc, char **argv, const struct verb *table, size_t n)
{
	const struct verb *sub;
	char *name;

	if (argc < 2) {
		fputs(ctx->verb->usage, stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(ctx->verb->usage, stdout);
		return 0;
	}
	sub = find_verb(table, n, argv[1]);
	if (!sub) {
		return usage_error(ctx, "unknown %s command '%s'", ctx->verb->name, argv[1]);
	}
	name = msg_strdupf("%s %s", ctx->verb->name, sub->name);
	if (!name) {
		return EXIT_USAGE;
	}
	free(ctx->name);
	ctx->name = name;
	ctx->verb = sub;
	return sub->handler(ctx, argc - 1, argv + 1);
}

#define N_MODEL_VERBS (sizeof(model_verbs) / sizeof(model_verbs[0]))
#define N_SERVICE_VERBS (sizeof(service_verbs) / sizeof(service_verbs[0]))

static int model_cb(struct ctx *ctx, int argc, char **argv)
{
	return subverb(ctx, argc, argv, model_verbs, N_MODEL_VERBS);
}

static int service_cb(struct ctx *ctx, int argc, char **argv)
{
	return subverb(ctx, argc, argv, service_verbs, N_SERVICE_VERBS);
}

/* ---- compute ---- */

static int compute_create_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{"type", required_argument, NULL, OPT_TYPE},
		{"rest", required_argument, NULL, OPT_REST},
		{"token-env", required_argument, NULL, OPT_TOKEN_ENV},
		{"user", required_argument, NULL, OPT_USER},
		{"partition", required_argument, NULL, OPT_PARTITION},
		{"shared-dir", required_argument, NULL, OPT_SHARED_DIR},
		{"max-jobs", required_argument, NULL, OPT_MAX_JOBS},
		COMMON_OPTIONS,
		{0},
	};
	const char *type = "slurm", *rest = NULL, *token_env = NULL, *user = NULL,
		   *partition = NULL, *shared_dir = NULL;
	long long max_jobs = 0;
	cJSON *args = NULL, *result = NULL;
	char *abs = NULL;
	int status = 0, c;

	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPT_TYPE:
			type = optarg;
			break;
		case OPT_REST:
			rest = optarg;
			break;
		case OPT_TOKEN_ENV:
			token_env = optarg;
			break;
		case OPT_USER:
			user = optarg;
			break;
		case OPT_PARTITION:
			partition = optarg;
			break;
		case OPT_SHARED_DIR:
			shared_dir = optarg;
			break;
		case OPT_MAX_JOBS:
			if (parse_int(optarg, 1, 100000, &max_jobs) < 0) {
				return usage_error(ctx, "--max-jobs needs a number from 1 to 100000, "
							"not '%s'", optarg);
			}
			break;
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			fputs(ctx->verb->usage, stdout);
			return 0;
		default:
			return option_error(ctx, c, argv, options);
		}
	}
	if (optind + 1 != argc) {
		return usage_error(ctx, "give one target NAME: runyard compute create NAME --type "
					"slurm --rest URL");
	}
	if (!rest) {
		return usage_error(ctx, "--rest URL is required (unix:/path/to/slurmrestd.sock or "
					"http://host:port)");
	}
	args = cJSON_CreateObject();
	set_item(args, "name", cJSON_CreateString(argv[optind]));
	set_item(args, "type", cJSON_CreateString(type));
	set_item(args, "rest", cJSON_CreateString(rest));
	if (token_env) {
		set_item(args, "token_env", cJSON_CreateString(token_env));
	}
	if (user) {
		set_item(args, "user", cJSON_CreateString(user));
	}
	if (partition) {
		set_item(args, "partition", cJSON_CreateString(partition));
	}
	if (shared_dir) {
		/* Relative to where the CLI runs, as --source is. */
		abs = shared_dir[0] == '/' ? strdup(shared_dir) : realpath(shared_dir, NULL);
		set_item(args, "shared_dir", cJSON_CreateString(abs ? abs : shared_dir));
	}
	if (max_jobs > 0) {
		set_item(args, "max_jobs", cJSON_CreateNumber((double)max_jobs));
	}
	status = call(ctx, "compute.create", args, &result);
	if (status == 0) {
		if (ctx->json) {
			status = print_json(result);
		} else {
			printf("Created compute target %s (%s at %s, API %s)\n", argv[optind],
			       json_str(result, "type") ? json_str(result, "type") : "?", rest,
			       json_str(result, "api") ? json_str(result, "api") : "?");
		}
	}
	cJSON_Delete(args);
	cJSON_Delete(result);
	free(abs);
	return status;
}

static int compute_list_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {COMMON_OPTIONS, {0}};
	cJSON *result = NULL;
	const cJSON *t;
	int status, c;

	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			fputs(ctx->verb->usage, stdout);
			return 0;
		default:
			return option_error(ctx, c, argv, options);
		}
	}
	status = no_args(ctx, argc, argv);
	if (status) {
		return status;
	}
	status = call(ctx, "compute.list", NULL, &result);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(result);
		goto out;
	}
	printf("%-16s %-6s %9s  %s\n", "NAME", "TYPE", "ACTIVE", "WHERE");
	cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(result, "targets")) {
		char use[32];
		snprintf(use, sizeof(use), "%lld/%lld", json_int(t, "active", 0),
			 json_int(t, "max_jobs", 0));
		printf("%-16s %-6s %9s  %s\n", json_str(t, "name") ? json_str(t, "name") : "?",
		       json_str(t, "type") ? json_str(t, "type") : "?", use,
		       json_str(t, "rest") ? json_str(t, "rest") : "this machine");
	}
out:
	cJSON_Delete(result);
	return status;
}

/* compute show NAME, compute delete NAME */
static int compute_one(struct ctx *ctx, int argc, char **argv, const char *op)
{
	static const struct option options[] = {COMMON_OPTIONS, {0}};
	cJSON *args = NULL, *result = NULL;
	const cJSON *kv;
	int status = 0, c;

	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			fputs(ctx->verb->usage, stdout);
			return 0;
		default:
			return option_error(ctx, c, argv, options);
		}
	}
	if (optind + 1 != argc) {
		return usage_error(ctx, "give one compute target NAME");
	}
	args = cJSON_CreateObject();
	set_item(args, "name", cJSON_CreateString(argv[optind]));
	status = call(ctx, op, args, &result);
	if (status == 0) {
		if (ctx->json) {
			status = print_json(result);
		} else if (strcmp(op, "compute.delete") == 0) {
			printf("Deleted compute target %s\n", argv[optind]);
		} else {
			cJSON_ArrayForEach(kv, result) {
				char *v = cJSON_IsString(kv) ? NULL : cJSON_PrintUnformatted(kv);
				char label[40];
				snprintf(label, sizeof(label), "%s:", kv->string);
				field(label, cJSON_IsString(kv) ? kv->valuestring : v);
				free(v);
			}
		}
	}
	cJSON_Delete(args);
	cJSON_Delete(result);
	return status;
}

static int compute_show_cb(struct ctx *ctx, int argc, char **argv)
{
	return compute_one(ctx, argc, argv, "compute.show");
}

static int compute_delete_cb(struct ctx *ctx, int argc, char **argv)
{
	return compute_one(ctx, argc, argv, "compute.delete");
}

static const struct verb compute_verbs[] = {
	{
		.name = "create",
		.handler = compute_create_cb,
		.summary = "Add a cluster target (Slurm)",
		.usage = "Usage: runyard compute create NAME --type slurm --rest URL [--token-env VAR]\n"
			 "                              [--user NAME] [--partition P] [--shared-dir DIR]\n"
			 "                              [--max-jobs N] [--json]\n"
			 "\n"
			 "Add compute target NAME: runs submitted with --target NAME become Slurm\n"
			 "jobs, handed to slurmrestd at URL. runyardd asks the server which API\n"
			 "versions it offers before the target is made.\n"
			 "\n"
			 "  --rest URL        unix:/path/to/slurmrestd.sock or http(s)://host:port\n"
			 "  --token-env VAR   send the Slurm JWT in runyardd's environment variable VAR\n"
			 "                    (the token itself is never stored)\n"
			 "  --user NAME       the Slurm user the token belongs to (default: runyardd's)\n"
			 "  --partition P     the partition to submit to (default: the cluster's)\n"
			 "  --shared-dir DIR  where runs' directories go; the nodes must see it at the\n"
			 "                    same path (default: runyardd's runs directory)\n"
			 "  --max-jobs N      runs in Slurm at once (default 100); more wait Queued\n",
	},
	{
		.name = "list",
		.handler = compute_list_cb,
		.summary = "List compute targets",
		.usage = "Usage: runyard compute list [--json]\n"
			 "\n"
			 "List the compute targets, the built-in local one first, with the runs\n"
			 "each holds and takes at once.\n",
	},
	{
		.name = "show",
		.handler = compute_show_cb,
		.summary = "Show a compute target",
		.usage = "Usage: runyard compute show NAME [--json]\n",
	},
	{
		.name = "delete",
		.handler = compute_delete_cb,
		.summary = "Delete a compute target that has no runs in flight",
		.usage = "Usage: runyard compute delete NAME [--json]\n",
	},
};

#define N_COMPUTE_VERBS (sizeof(compute_verbs) / sizeof(compute_verbs[0]))

static int compute_cb(struct ctx *ctx, int argc, char **argv)
{
	return subverb(ctx, argc, argv, compute_verbs, N_COMPUTE_VERBS);
}

/* ---- environments ---- */

static void env_summary(const cJSON *e, char *buf, size_t n)
{
	const cJSON *def = cJSON_GetObjectItemCaseSensitive(e, "definition");
	const char *py = json_str(def, "python"), *pin = json_str(def, "python_pin");
	const char *kind = json_str(e, "kind");

	snprintf(buf, n, "%s, %s%s%s, %d requirement%s", kind ? kind : "?",
		 py ? py : "python3", pin ? " pin python " : "", pin ? pin : "",
		 cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(def, "requirements")),
		 cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(def, "requirements")) == 1
			 ? ""
			 : "s");
}

static int env_create_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{"conda-file", required_argument, NULL, OPT_CONDA_FILE},
		{"pip-requirements", required_argument, NULL, OPT_PIP_REQUIREMENTS},
		{"interpreter", required_argument, NULL, OPT_INTERPRETER},
		{"python", required_argument, NULL, OPT_PYTHON},
		{"system-site-packages", no_argument, NULL, OPT_SYSTEM_SITE_PACKAGES},
		{"var", required_argument, NULL, OPT_VAR},
		COMMON_OPTIONS,
		{0},
	};
	cJSON *args = cJSON_CreateObject(), *vars = cJSON_CreateObject(), *result = NULL;
	const char *conda = NULL, *reqs = NULL, *interp = NULL, *python = NULL;
	char *text = NULL, *abs = NULL, summary[512];
	size_t len = 0;
	bool ssp = false;
	int status = 0, c, err;

	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPT_CONDA_FILE:
			conda = optarg;
			break;
		case OPT_PIP_REQUIREMENTS:
			reqs = optarg;
			break;
		case OPT_INTERPRETER:
			interp = optarg;
			break;
		case OPT_PYTHON:
			python = optarg;
			break;
		case OPT_SYSTEM_SITE_PACKAGES:
			ssp = true;
			break;
		case OPT_VAR:
			status = add_key_value(ctx, vars, optarg, "--var");
			if (status) {
				goto out;
			}
			break;
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			fputs(ctx->verb->usage, stdout);
			goto out;
		default:
			status = option_error(ctx, c, argv, options);
			goto out;
		}
	}
	if (optind >= argc) {
		status = usage_error(ctx, "which name? give the environment's name");
		goto out;
	}
	if (optind + 1 < argc) {
		status = usage_error(ctx, "unexpected argument '%s'", argv[optind + 1]);
		goto out;
	}
	if (!!conda + !!reqs + !!interp != 1) {
		status = usage_error(ctx, "give one of --conda-file, --pip-requirements or "
					  "--interpreter");
		goto out;
	}
	cJSON_AddStringToObject(args, "name", argv[optind]);
	if (conda || reqs) {
		err = read_file(conda ? conda : reqs, &text, &len);
		if (err < 0) {
			fprintf(stderr, "runyard: %s: %s\n", conda ? conda : reqs, strerror(-err));
			status = EXIT_USAGE;
			goto out;
		}
		if (strlen(text) != len) {
			fprintf(stderr, "runyard: %s: not a text file\n", conda ? conda : reqs);
			status = EXIT_USAGE;
			goto out;
		}
		cJSON_AddStringToObject(args, conda ? "conda_yaml" : "requirements", text);
		if (conda) {
			cJSON_AddStringToObject(args, "conda_file", conda);
		}
	}
	if (interp) {
		/* absolute, but not through symlinks: python3 -> python3.11
		 * is the user's choice to follow upgrades */
		char cwd[4096];
		if (interp[0] != '/' && getcwd(cwd, sizeof(cwd))) {
			abs = msg_strdupf("%s/%s", cwd, interp);
		}
		cJSON_AddStringToObject(args, "interpreter", abs ? abs : interp);
		free(abs);
		abs = NULL;
	}
	if (python) {
		if (python[0] == '/') {
			cJSON_AddStringToObject(args, "python", python);
		} else {
			status = usage_error(ctx, "--python needs an absolute path, not '%s'",
					     python);
			goto out;
		}
	}
	if (ssp) {
		cJSON_AddBoolToObject(args, "system_site_packages", true);
	}
	cJSON_AddItemToObject(args, "vars", vars);
	vars = NULL;
	status = call(ctx, "env.create", args, &result);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(result);
		goto out;
	}
	env_summary(result, summary, sizeof(summary));
	printf("%s environment %s (%s)\n",
	       cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(result, "created")) ? "Created"
										  : "Unchanged",
	       json_str(result, "id"), summary);
out:
	free(text);
	cJSON_Delete(vars);
	cJSON_Delete(result);
	cJSON_Delete(args);
	return status;
}

static int env_list_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {COMMON_OPTIONS, {0}};
	static const char *const headers[] = {"NAME", "VERSION", "KIND", "PYTHON", "REQS",
					      "HASH", "CREATED", "BUILD", "LAST USED"};
	cJSON *args = cJSON_CreateObject(), *result = NULL;
	struct render_table *t = NULL;
	const cJSON *e;
	int status = 0, c;

	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			fputs(ctx->verb->usage, stdout);
			goto out;
		default:
			status = option_error(ctx, c, argv, options);
			goto out;
		}
	}
	if (optind < argc) {
		status = usage_error(ctx, "unexpected argument '%s'", argv[optind]);
		goto out;
	}
	status = call(ctx, "env.list", args, &result);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(result);
		goto out;
	}
	t = render_table_create(9, headers);
	if (!t) {
		status = EXIT_USAGE;
		goto out;
	}
	render_table_align_right(t, 1);
	render_table_align_right(t, 4);
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(result, "environments")) {
		const cJSON *def = cJSON_GetObjectItemCaseSensitive(e, "definition");
		char version[24], nreq[24], hash[16], created[32], size[32], used[32];
		const cJSON *build = cJSON_GetObjectItemCaseSensitive(e, "build");
		double bytes = 0;
		snprintf(version, sizeof(version), "%lld", json_int(e, "version", 0));
		snprintf(nreq, sizeof(nreq), "%d",
			 cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(def, "requirements")));
		snprintf(hash, sizeof(hash), "%.12s", json_str(e, "hash"));
		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "builtin"))) {
			snprintf(created, sizeof(created), "built in");
		} else {
			render_time(json_str(e, "created_at"), created);
		}
		if (cJSON_IsObject(build)) {
			json_num(build, "size", &bytes);
			render_size(bytes, size);
			render_time(json_str(build, "last_used"), used);
		} else {
			snprintf(size, sizeof(size), "-");
			snprintf(used, sizeof(used), "-");
		}
		const char *cells[] = {json_str(e, "name"),   version, json_str(e, "kind"),
				       json_str(def, "python"), nreq,    hash,
				       created, size, used};
		render_table_add_row(t, cells);
	}
	render_table_print(t, stdout);
out:
	render_table_destroy(t);
	cJSON_Delete(result);
	cJSON_Delete(args);
	return status;
}

static int env_show_cb(struct ctx *ctx, int argc, char **argv)
{
	cJSON *args = cJSON_CreateObject(), *e = NULL;
	const cJSON *def, *item;
	const char *ref = NULL;
	char summary[512];
	int status = simple_args(ctx, argc, argv, "environment", &ref);

	if (status) {
		status = status < 0 ? 0 : status;
		goto out;
	}
	cJSON_AddStringToObject(args, "environment", ref);
	status = call(ctx, "env.show", args, &e);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(e);
		goto out;
	}
	def = cJSON_GetObjectItemCaseSensitive(e, "definition");
	env_summary(e, summary, sizeof(summary));
	field("Environment:", json_str(e, "id"));
	field("Kind:", json_str(e, "kind"));
	field("Python:", json_str(def, "python"));
	if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(def, "python_pin"))) {
		field("Python pin:", json_str(def, "python_pin"));
	}
	field("System site:",
	      cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(def, "system_site_packages")) ? "yes"
											   : "no");
	field("Hash:", json_str(e, "hash"));
	cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(def, "requirements")) {
		field("Requirement:", cJSON_IsString(item) ? item->valuestring : "?");
	}
	cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(def, "skipped")) {
		char *m = msg_strdupf("%s (runyard's compatibility module)",
				      cJSON_IsString(item) ? item->valuestring : "?");
		field("Skipped:", m ? m : "?");
		free(m);
	}
	if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(def, "vars")) > 0) {
		print_key_values("Variables:", cJSON_GetObjectItemCaseSensitive(def, "vars"));
	}
out:
	cJSON_Delete(e);
	cJSON_Delete(args);
	return status;
}

static int env_delete_cb(struct ctx *ctx, int argc, char **argv)
{
	cJSON *args = cJSON_CreateObject(), *result = NULL;
	const char *ref = NULL;
	int status = simple_args(ctx, argc, argv, "environment (NAME[:VERSION])", &ref);

	if (status) {
		status = status < 0 ? 0 : status;
		goto out;
	}
	cJSON_AddStringToObject(args, "environment", ref);
	status = call(ctx, "env.delete", args, &result);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(result);
	} else {
		printf("Deleted environment %s (%lld version%s)\n", json_str(result, "id"),
		       json_int(result, "deleted", 0),
		       json_int(result, "deleted", 0) == 1 ? "" : "s");
	}
out:
	cJSON_Delete(result);
	cJSON_Delete(args);
	return status;
}

static int env_prune_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{"keep", required_argument, NULL, OPT_KEEP_N},
		COMMON_OPTIONS,
		{0},
	};
	cJSON *args = cJSON_CreateObject(), *result = NULL;
	char freed[32], *end;
	double bytes = 0;
	long long keep;
	int status = 0, c;

	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPT_KEEP_N:
			keep = strtoll(optarg, &end, 10);
			if (!*optarg || *end || keep < 0 || keep > 1000000) {
				status = usage_error(ctx, "--keep wants a number from 0, not '%s'",
						     optarg);
				goto out;
			}
			cJSON_AddNumberToObject(args, "keep", (double)keep);
			break;
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			fputs(ctx->verb->usage, stdout);
			goto out;
		default:
			status = option_error(ctx, c, argv, options);
			goto out;
		}
	}
	if (optind < argc) {
		status = usage_error(ctx, "unexpected argument '%s'", argv[optind]);
		goto out;
	}
	status = call(ctx, "env.prune", args, &result);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(result);
		goto out;
	}
	json_num(result, "freed", &bytes);
	render_size(bytes, freed);
	printf("Pruned %d build%s (%s), kept %lld\n",
	       cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(result, "pruned")),
	       cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(result, "pruned")) == 1 ? ""
											   : "s",
	       freed, json_int(result, "kept", 0));
out:
	cJSON_Delete(result);
	cJSON_Delete(args);
	return status;
}

static const struct verb env_verbs[] = {
	{
		.name = "create",
		.handler = env_create_cb,
		.summary = "Create (or find) a version of a named environment",
		.usage = "Usage: runyard env create NAME (--conda-file FILE | --pip-requirements "
			 "FILE |\n"
			 "                          --interpreter PATH) [--python PATH]\n"
			 "                          [--system-site-packages] [--var KEY=VALUE]... "
			 "[--json]\n"
			 "\n"
			 "Create version 1 of NAME, or a new version when the definition changed;\n"
			 "an unchanged definition returns the existing version.\n"
			 "\n"
			 "  --conda-file FILE        a conda specification (name, channels,\n"
			 "                           dependencies with a nested pip: list)\n"
			 "  --pip-requirements FILE  pip requirements for a venv\n"
			 "  --interpreter PATH       an existing interpreter, used as is\n"
			 "  --python PATH            the interpreter a venv is made with\n"
			 "  --system-site-packages   the venv sees the interpreter's packages\n"
			 "  --var KEY=VALUE          a variable of the runs' environment "
			 "(repeatable)\n",
	},
	{
		.name = "list",
		.handler = env_list_cb,
		.summary = "List environments, built-ins first",
		.usage = "Usage: runyard env list [--json]\n",
	},
	{
		.name = "show",
		.handler = env_show_cb,
		.summary = "Show an environment's definition",
		.usage = "Usage: runyard env show NAME[:VERSION] [--json]\n",
	},
	{
		.name = "prune",
		.handler = env_prune_cb,
		.summary = "Remove the least recently used builds from the cache",
		.usage = "Usage: runyard env prune [--keep N] [--json]\n"
			 "\n"
			 "Remove cached builds except the N most recently used (default 3).\n"
			 "Builds in use by a run that has not ended, or being built, stay.\n",
	},
	{
		.name = "delete",
		.handler = env_delete_cb,
		.summary = "Delete a version of an environment, or all of them",
		.usage = "Usage: runyard env delete NAME[:VERSION] [--json]\n",
	},
};

#define N_ENV_VERBS (sizeof(env_verbs) / sizeof(env_verbs[0]))

static int env_cb(struct ctx *ctx, int argc, char **argv)
{
	return subverb(ctx, argc, argv, env_verbs, N_ENV_VERBS);
}

/* ---- datasets (docs/inputs.md) ---- */

static int dataset_register_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{"description", required_argument, NULL, OPT_DS_DESCRIPTION},
		COMMON_OPTIONS,
		{0},
	};
	cJSON *args = cJSON_CreateObject(), *sources = cJSON_CreateArray(), *res = NULL;
	const char *description = NULL;
	int status = 0, c;

	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPT_DS_DESCRIPTION:
			description = optarg;
			break;
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			fputs(ctx->verb->usage, stdout);
			goto out;
		default:
			status = option_error(ctx, c, argv, options);
			goto out;
		}
	}
	if (optind + 2 > argc) {
		status = usage_error(ctx, "runyard dataset register NAME SOURCE... (a file, a "
					  "directory or a URL)");
		goto out;
	}
	for (int i = optind + 1; i < argc; i++) {
		char *src = strstr(argv[i], "://") ? strdup(argv[i]) : absolute_path(argv[i]);
		cJSON_AddItemToArray(sources, cJSON_CreateString(src ? src : argv[i]));
		free(src);
	}
	cJSON_AddStringToObject(args, "name", argv[optind]);
	cJSON_AddItemToObject(args, "sources", sources);
	sources = NULL;
	if (description) {
		cJSON_AddStringToObject(args, "description", description);
	}
	status = call(ctx, "dataset.register", args, &res);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(res);
	} else {
		char sz[32];
		double v = 0;
		json_num(res, "bytes", &v);
		render_size(v, sz);
		printf("Registered dataset %s: %lld files, %s, manifest %.12s\n",
		       json_str(res, "id") ? json_str(res, "id") : "?", json_int(res, "files", 0),
		       sz, json_str(res, "manifest") ? json_str(res, "manifest") : "?");
	}
out:
	cJSON_Delete(res);
	cJSON_Delete(sources);
	cJSON_Delete(args);
	return status;
}

static int dataset_list_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {COMMON_OPTIONS, {0}};
	static const char *const headers[] = {"NAME", "VERSION", "FILES", "SIZE", "CREATED",
					      "DESCRIPTION"};
	cJSON *args = cJSON_CreateObject(), *res = NULL;
	struct render_table *t = NULL;
	const cJSON *it;
	int status = 0, c;

	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			fputs(ctx->verb->usage, stdout);
			goto out;
		default:
			status = option_error(ctx, c, argv, options);
			goto out;
		}
	}
	if (optind + 1 < argc) {
		status = usage_error(ctx, "unexpected argument '%s'", argv[optind + 1]);
		goto out;
	}
	if (optind < argc) {
		cJSON_AddStringToObject(args, "name", argv[optind]);
	}
	status = call(ctx, "dataset.list", args, &res);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(res);
		goto out;
	}
	t = render_table_create(6, headers);
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(res, "datasets")) {
		char ver[32], files[32], sz[32], when[32];
		double v = 0;
		snprintf(ver, sizeof(ver), "%lld", json_int(it, "version", 0));
		snprintf(files, sizeof(files), "%lld", json_int(it, "files", 0));
		json_num(it, "bytes", &v);
		render_size(v, sz);
		render_time(json_str(it, "created_at"), when);
		const char *cells[] = {json_str(it, "name"), ver, files, sz, when,
				       json_str(it, "description") ? json_str(it, "description")
								   : ""};
		render_table_add_row(t, cells);
	}
	render_table_print(t, stdout);
out:
	render_table_destroy(t);
	cJSON_Delete(res);
	cJSON_Delete(args);
	return status;
}

static int dataset_show_cb(struct ctx *ctx, int argc, char **argv)
{
	cJSON *args = cJSON_CreateObject(), *d = NULL;
	const char *ref = NULL;
	const cJSON *it;
	char sz[32], when[32];
	double v = 0;
	int status = simple_args(ctx, argc, argv, "dataset", &ref);

	if (status) {
		status = status < 0 ? 0 : status;
		goto out;
	}
	cJSON_AddStringToObject(args, "dataset", ref);
	status = call(ctx, "dataset.show", args, &d);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(d);
		goto out;
	}
	printf("Dataset %s\n", json_str(d, "id") ? json_str(d, "id") : "?");
	field("Manifest:", json_str(d, "manifest"));
	field("About:", json_str(d, "description"));
	render_time(json_str(d, "created_at"), when);
	field("Created:", when);
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(d, "sources")) {
		field(it == cJSON_GetObjectItemCaseSensitive(d, "sources")->child ? "Sources:" : "",
		      cJSON_IsString(it) ? it->valuestring : "?");
	}
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(d, "runs")) {
		char buf[600];
		snprintf(buf, sizeof(buf), "#%lld %s (input %s)", json_int(it, "seq", 0),
			 json_str(it, "id") ? json_str(it, "id") : "?",
			 json_str(it, "input") ? json_str(it, "input") : "?");
		field(it == cJSON_GetObjectItemCaseSensitive(d, "runs")->child ? "Used by:" : "",
		      buf);
	}
	json_num(d, "bytes", &v);
	render_size(v, sz);
	printf("Files (%lld, %s):\n", json_int(d, "files", 0), sz);
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(d, "file_list")) {
		char s[32];
		render_size(json_num(it, "size", &v) ? v : 0, s);
		printf("  %-40s %10s  %.12s\n", json_str(it, "path"), s, json_str(it, "sha256"));
	}
out:
	cJSON_Delete(d);
	cJSON_Delete(args);
	return status;
}

static int dataset_download_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{"output", required_argument, NULL, 'o'},
		COMMON_OPTIONS,
		{0},
	};
	cJSON *args = cJSON_CreateObject(), *res = NULL;
	const char *dir = NULL, *ref = NULL;
	char *abs = NULL;
	int status = 0, c;

	while ((c = getopt_long(argc, argv, ":o:h", options, NULL)) != -1) {
		switch (c) {
		case 'o':
			dir = optarg;
			break;
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			fputs(ctx->verb->usage, stdout);
			goto out;
		default:
			status = option_error(ctx, c, argv, options);
			goto out;
		}
	}
	status = one_arg(ctx, argc, argv, "dataset", &ref);
	if (status) {
		goto out;
	}
	if (!dir) {
		status = usage_error(ctx, "where to? give -o DIR");
		goto out;
	}
	abs = absolute_path(dir);
	cJSON_AddStringToObject(args, "dataset", ref);
	cJSON_AddStringToObject(args, "dir", abs ? abs : dir);
	status = call(ctx, "dataset.download", args, &res);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(res);
	} else {
		printf("Downloaded dataset %s to %s\n", json_str(res, "dataset"),
		       json_str(res, "dir"));
	}
out:
	free(abs);
	cJSON_Delete(res);
	cJSON_Delete(args);
	return status;
}

static int dataset_delete_cb(struct ctx *ctx, int argc, char **argv)
{
	cJSON *args = cJSON_CreateObject(), *res = NULL;
	const char *ref = NULL;
	const cJSON *it;
	int status = simple_args(ctx, argc, argv, "dataset", &ref);

	if (status) {
		status = status < 0 ? 0 : status;
		goto out;
	}
	cJSON_AddStringToObject(args, "dataset", ref);
	status = call(ctx, "dataset.delete", args, &res);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(res);
		goto out;
	}
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(res, "deleted")) {
		printf("Deleted dataset %s:%lld\n", json_str(res, "name"),
		       (long long)cJSON_GetNumberValue(it));
	}
out:
	cJSON_Delete(res);
	cJSON_Delete(args);
	return status;
}

static const struct verb dataset_verbs[] = {
	{
		.name = "register",
		.handler = dataset_register_cb,
		.summary = "Register files, directories or URLs as a dataset version",
		.usage = "Usage: runyard dataset register NAME SOURCE... [--description TEXT] "
			 "[--json]\n"
			 "\n"
			 "Register a new version of dataset NAME (versions count from 1 per name).\n"
			 "Each SOURCE is a local file (kept under its name), a local directory\n"
			 "(its contents at the top) or an http://, https:// or file:// URL\n"
			 "(downloaded; append #sha256=HEX to check it). The contents are stored\n"
			 "and pinned by hash now: later changes to the sources do not change it.\n",
	},
	{
		.name = "list",
		.handler = dataset_list_cb,
		.summary = "List datasets",
		.usage = "Usage: runyard dataset list [NAME] [--json]\n",
	},
	{
		.name = "show",
		.handler = dataset_show_cb,
		.summary = "Show a dataset version, its files and the runs that used it",
		.usage = "Usage: runyard dataset show NAME[:VERSION] [--json]\n",
	},
	{
		.name = "download",
		.handler = dataset_download_cb,
		.summary = "Write a dataset version's files into a directory",
		.usage = "Usage: runyard dataset download NAME[:VERSION] -o DIR [--json]\n"
			 "\n"
			 "DIR is created when missing and must be empty.\n",
	},
	{
		.name = "delete",
		.handler = dataset_delete_cb,
		.summary = "Delete a dataset version, or every version of a name",
		.usage = "Usage: runyard dataset delete NAME[:VERSION] [--json]\n"
			 "\n"
			 "Runs that used it keep their record of the name, version and hashes.\n",
	},
};

#define N_DATASET_VERBS (sizeof(dataset_verbs) / sizeof(dataset_verbs[0]))

static int dataset_cb(struct ctx *ctx, int argc, char **argv)
{
	return subverb(ctx, argc, argv, dataset_verbs, N_DATASET_VERBS);
}

static int help_cb(struct ctx *ctx, int argc, char **argv);

static const struct verb verbs[] = {
	{
		.name = "submit",
		.handler = submit_cb,
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
			 "  --nodes N, --cpus N, --memory-gb G, --time-limit S\n"
			 "                     what the run asks of a cluster target (Slurm)\n"
			 "  --json             print the submit result (with --wait: the final run)\n"
			 "\n"
			 "Options end at PROGRAM; everything after it is its arguments.\n",
	},
	{
		.name = "runs",
		.handler = runs_cb,
		.summary = "List runs, newest first",
		.usage = "Usage: runyard runs [--experiment NAME] [--status STATUS] [--limit N] "
			 "[--json]\n"
			 "\n"
			 "List runs, newest first (at most N, default 100).\n",
	},
	{
		.name = "show",
		.handler = show_cb,
		.summary = "Show a run and how long each stage took",
		.usage = "Usage: runyard show RUN [--json]\n"
			 "\n"
			 "Show a run: status and error, command, source, snapshot, exit status,\n"
			 "resource usage, times, and how long each stage lasted.\n"
			 "RUN is the run's id or its number (17 or #17).\n",
	},
	{
		.name = "logs",
		.handler = logs_cb,
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
	},
	{
		.name = "wait",
		.handler = wait_cb,
		.summary = "Wait for a run to end and summarise it",
		.usage = "Usage: runyard wait RUN [--show-output] [--timeout S] [--json]\n"
			 "\n"
			 "Wait until the run ends and print an execution summary. Exits 0 when it\n"
			 "Completed, 2 when it Failed or was Canceled, 1 when S seconds passed first.\n"
			 "\n"
			 "  --show-output  stream the run's output while waiting\n"
			 "  --timeout S    stop waiting after S seconds (the run goes on)\n"
			 "  --json         print the final run object instead of the summary\n",
	},
	{
		.name = "cancel",
		.handler = cancel_cb,
		.summary = "Cancel a run",
		.usage = "Usage: runyard cancel RUN [--json]\n"
			 "\n"
			 "Cancel a run: a queued run ends Canceled at once; a started one gets\n"
			 "SIGTERM, then SIGKILL after the daemon's grace period.\n",
	},
	{
		.name = "outputs",
		.handler = outputs_cb,
		.summary = "List or download a run's output files",
		.usage = "Usage: runyard outputs RUN [--download DIR] [--json]\n"
			 "\n"
			 "List the files the run left in ./outputs and ./logs.\n"
			 "\n"
			 "  --download DIR  also fetch them into DIR, keeping their paths, checked\n"
			 "                  against their size and sha256\n",
	},
	{
		.name = "experiments",
		.handler = experiments_cb,
		.summary = "List experiments",
		.usage = "Usage: runyard experiments [--json]\n"
			 "\n"
			 "List experiments with their number of runs and latest run.\n",
	},
	{
		.name = "daemon",
		.handler = daemon_cb,
		.summary = "Start, stop or query runyardd",
		.usage = "Usage: runyard daemon start [--state-dir DIR] [--max-runs N] [--grace S]\n"
			 "       runyard daemon stop\n"
			 "       runyard daemon status\n"
			 "\n"
			 "Each takes --json. See 'runyard daemon start --help' and so on.\n",
	},
	{
		.name = "metrics",
		.handler = metrics_cb,
		.summary = "Show a run's metrics, or every point of one",
		.usage = "Usage: runyard metrics RUN [NAME] [--json]\n"
			 "\n"
			 "Without NAME: a table of the run's metrics (name, last value, min, max,\n"
			 "number of points; on a terminal a sparkline of each numeric series).\n"
			 "With NAME: every point of that metric (step, time, value).\n"
			 "\n"
			 "  --json  print the run.metrics result; with NAME, a JSON array of points\n",
	},
	{
		.name = "compare",
		.handler = compare_cb,
		.summary = "Compare runs' metrics and tags side by side",
		.usage = "Usage: runyard compare RUN RUN... [--json]\n"
			 "\n"
			 "A table with a column per run: its status, the last value of each metric\n"
			 "any of the runs logged, then its tags.\n"
			 "\n"
			 "  --json  print {\"runs\": [{id, seq, experiment, status, tags, properties,\n"
			 "          metrics}]}\n",
	},
	{
		.name = "tag",
		.handler = tag_cb,
		.summary = "Set or remove a run's tags (and add properties)",
		.usage = "Usage: runyard tag RUN [KEY=VALUE...] [--remove KEY]... "
			 "[--property KEY=VALUE]... [--json]\n"
			 "\n"
			 "Set tags of a run (KEY= sets an empty value), remove tags, add\n"
			 "properties (immutable: another value for a key that has one is refused),\n"
			 "then print the run's tags and properties. Nothing changes unless all of\n"
			 "them are accepted. Limits: 50 tags and 50 properties, keys up to 100\n"
			 "characters, values up to 1000.\n"
			 "\n"
			 "  -d, --remove KEY          remove the tag KEY (repeatable)\n"
			 "  -p, --property KEY=VALUE  add a property (repeatable)\n",
	},
	{
		.name = "ignore",
		.handler = ignore_cb,
		.summary = "Explain which paths a snapshot takes (ignore check)",
		.usage = "Usage: runyard ignore check [--source DIR] [--json] PATH...\n"
			 "\n"
			 "See 'runyard ignore check --help'.\n",
	},
	{
		.name = "snapshot",
		.handler = snapshot_cb,
		.summary = "Write a run's snapshot as an archive",
		.usage = "Usage: runyard snapshot RUN -o FILE [--format FMT] [--json]\n"
			 "\n"
			 "Write the source snapshot of RUN to FILE as an archive whose format\n"
			 "follows FILE's name: .tar, .tar.gz (.tgz), .tar.zst (.tzst) or .zip.\n"
			 "\n"
			 "  -o, --output FILE  the archive to write (replaced if it exists)\n"
			 "  --format FMT       tar, tar.gz, tar.zst or zip, whatever FILE's name\n"
			 "  --json             print {file, format, size, sha256, snapshot}\n",
	},
	{
		.name = "model",
		.handler = model_cb,
		.summary = "Register, list, download, delete and deploy models",
		.usage = "Usage: runyard model register NAME (--run RUN --path PATH | --file LOCAL) ...\n"
			 "       runyard model list [NAME]\n"
			 "       runyard model show NAME[:VERSION]\n"
			 "       runyard model download NAME[:VERSION] DIR\n"
			 "       runyard model delete NAME:VERSION\n"
			 "       runyard model deploy NAME[:VERSION] --service SVC ...\n"
			 "\n"
			 "Each takes --json. See 'runyard help model register' and so on.\n",
	},
	{
		.name = "service",
		.handler = service_cb,
		.summary = "List, inspect, restart, delete and call deployed services",
		.usage = "Usage: runyard service list\n"
			 "       runyard service show SVC\n"
			 "       runyard service logs SVC [-f]\n"
			 "       runyard service restart SVC\n"
			 "       runyard service delete SVC\n"
			 "       runyard service invoke SVC --data JSON\n"
			 "\n"
			 "Each takes --json. See 'runyard help service logs' and so on.\n",
	},
	{
		.name = "env",
		.handler = env_cb,
		.summary = "Manage environments (interpreters, venvs, conda specifications)",
		.usage = "Usage: runyard env create NAME (--conda-file FILE | --pip-requirements "
			 "FILE | --interpreter PATH)\n"
			 "       runyard env list\n"
			 "       runyard env show NAME[:VERSION]\n"
			 "       runyard env delete NAME[:VERSION]\n"
			 "       runyard env prune [--keep N]\n"
			 "\n"
			 "Each takes --json. See 'runyard help env create'.\n",
	},
	{
		.name = "compute",
		.handler = compute_cb,
		.summary = "Manage compute targets (local, Slurm clusters)",
		.usage = "Usage: runyard compute create NAME --type slurm --rest URL [OPTIONS]\n"
			 "       runyard compute list\n"
			 "       runyard compute show NAME\n"
			 "       runyard compute delete NAME\n"
			 "\n"
			 "Each takes --json. See 'runyard help compute create'.\n",
	},
	{
		.name = "dataset",
		.handler = dataset_cb,
		.summary = "Register, list, show, download and delete datasets",
		.usage = "Usage: runyard dataset register NAME SOURCE... [--description TEXT]\n"
			 "       runyard dataset list [NAME]\n"
			 "       runyard dataset show NAME[:VERSION]\n"
			 "       runyard dataset download NAME[:VERSION] -o DIR\n"
			 "       runyard dataset delete NAME[:VERSION]\n"
			 "\n"
			 "Each takes --json. See 'runyard help dataset register'.\n",
	},
	{
		.name = "help",
		.handler = help_cb,
		.summary = "Show help for a command",
		.usage = "Usage: runyard help [COMMAND]\n",
	},
};

#define N_VERBS (sizeof(verbs) / sizeof(verbs[0]))

static int help_cb(struct ctx *ctx, int argc, char **argv)
{
	const struct verb *v;

	if (argc < 2) {
		commands_usage(stdout);
		return 0;
	}
	v = find_verb(verbs, N_VERBS, argv[1]);
	if (!v) {
		fprintf(stderr, "runyard: unknown command '%s' (see 'runyard --help')\n", argv[1]);
		return EXIT_USAGE;
	}
	if (v->handler == daemon_cb && argc > 2) {
		const struct verb *sub = find_verb(daemon_verbs, N_DAEMON_VERBS, argv[2]);
		if (sub) {
			v = sub;
		}
	}
	if ((v->handler == model_cb || v->handler == service_cb) && argc > 2) {
		const struct verb *sub =
			v->handler == model_cb ? find_verb(model_verbs, N_MODEL_VERBS, argv[2])
					       : find_verb(service_verbs, N_SERVICE_VERBS, argv[2]);
		if (sub) {
			v = sub;
		}
	}
	if (v->handler == dataset_cb && argc > 2) {
		const struct verb *sub = find_verb(dataset_verbs, N_DATASET_VERBS, argv[2]);
		if (sub) {
			v = sub;
		}
	}
	fputs(v->usage, stdout);
	return 0;
}

void commands_usage(FILE *out)
{
	fprintf(out, "Usage: runyard [--socket PATH] COMMAND [OPTIONS] [ARGS...]\n"
		     "\n"
		     "Submit, follow and inspect runs on a local runyardd.\n"
		     "\n"
		     "Commands:\n");
	for (size_t i = 0; i < N_VERBS; i++) {
		fprintf(out, "  %-12s %s\n", verbs[i].name, verbs[i].summary);
	}
	fprintf(out, "\n"
		     "Options:\n"
		     "  --socket PATH  runyardd's socket (else $RUNYARD_SOCKET, else\n"
		     "                 $XDG_RUNTIME_DIR/runyard/runyard.sock)\n"
		     "  --json         print one JSON document (every command takes it)\n"
		     "  -h, --help     show this help; 'runyard help COMMAND' for a command\n"
		     "  --version      show runyard's version\n"
		     "\n"
		     "Exit status: 0 success, 1 usage or connection error, 2 the daemon refused or\n"
		     "the run failed.\n");
}

int commands_run(const struct commands_options *opts, int argc, char **argv)
{
	struct ctx ctx = {.opts = opts, .json = opts->json};
	const struct verb *v = find_verb(verbs, N_VERBS, argv[0]);
	int status;

	if (!v) {
		fprintf(stderr, "runyard: unknown command '%s' (see 'runyard --help')\n", argv[0]);
		return EXIT_USAGE;
	}
	ctx.verb = v;
	ctx.name = strdup(v->name);
	if (!ctx.name) {
		return EXIT_USAGE;
	}
	/* Each verb parses its own options from a fresh getopt state. */
	optind = 0;
	opterr = 0;
	status = v->handler(&ctx, argc, argv);
	client_destroy(ctx.client);
	free(ctx.socket);
	free(ctx.name);
	return status;
}

/* runyard submit: snapshot a source directory and queue a run (run files, inputs, dry runs). */

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

/* Long options without a short form. */
enum {
	OPT_EXPERIMENT = VERB_OPT_FIRST,
	OPT_SOURCE,
	OPT_PYTHON,
	OPT_TIMEOUT,
	OPT_PRIORITY,
	OPT_ENV,
	OPT_KEEP,
	OPT_WAIT,
	OPT_SHOW_OUTPUT,
	OPT_DRY_RUN,
	OPT_MAX_SNAPSHOT_MB,
	OPT_MAX_SNAPSHOT_FILES,
	OPT_TARGET,
	OPT_NODES,
	OPT_CPUS,
	OPT_JOB_MEMORY_GB,
	OPT_TIME_LIMIT,
	OPT_ENVIRONMENT_REF,
	OPT_INPUT,
	OPT_INPUT_PATH,
	OPT_OUTPUT_TO,
};

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
		return VERB_EXIT_USAGE;
	}
	if (stat(abs, &st) < 0 || !(S_ISDIR(st.st_mode) || S_ISREG(st.st_mode))) {
		fprintf(stderr, "runyard: %ssource %s is neither a directory nor an archive\n",
			where, path);
		free(abs);
		return VERB_EXIT_USAGE;
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
	int status = VERB_EXIT_USAGE, r;

	r = util_read_file(path, &text, &len);
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
	json_set(doc, "source", cJSON_CreateString(abs));
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
		return VERB_EXIT_REFUSED;
	}
	return 0;
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
		return verb_usage_error(ctx, "--input needs NAME=SOURCE[:MODE], not '%s'", arg);
	}
	name = strndup(arg, (size_t)(eq - arg));
	source = strdup(eq + 1);
	if (!name || !source) {
		free(name);
		free(source);
		return VERB_EXIT_USAGE;
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
		int st = verb_usage_error(ctx, "--input %s: unknown mode '%s' (copy, mount or download)",
				     name, colon + 1);
		free(name);
		free(source);
		return st;
	}
	if (strncmp(source, "dataset:", 8) != 0 && !strstr(source, "://")) {
		char *abs = util_absolute_path(source);
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
		return verb_usage_error(ctx, "%s needs NAME=%s, not '%s'", flag,
				   strcmp(flag, "--output") == 0 ? "DIR" : "PATH", arg);
	}
	*ret_name = strndup(arg, (size_t)(eq - arg));
	*ret_value = eq + 1;
	return *ret_name ? 0 : VERB_EXIT_USAGE;
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
			return verb_usage_error(ctx, "--input-path %s: there is no --input %s", p->string,
					   p->string);
		}
	}
	if (cJSON_GetArraySize(inputs) > 0) {
		json_set(args, "inputs", cJSON_Duplicate(inputs, true));
	}
	if (cJSON_GetArraySize(outputs) > 0) {
		json_set(args, "outputs", cJSON_Duplicate(outputs, true));
	}
	return 0;
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
		VERB_COMMON_OPTIONS,
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
				json_set(input_paths, name, cJSON_CreateString(value));
			} else {
				/* a directory, or an HTTP datastore (a URL) */
				char *dir = strstr(value, "://") ? strdup(value) : util_absolute_path(value);
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
			if (util_parse_seconds(optarg, &timeout) < 0) {
				status = verb_usage_error(ctx, "--timeout needs a number of seconds > 0, "
							  "not '%s'", optarg);
				goto out;
			}
			break;
		case OPT_PRIORITY:
			if (util_parse_int(optarg, -1000, 1000, &priority) < 0) {
				status = verb_usage_error(ctx, "--priority needs an integer from -1000 to "
							  "1000, not '%s'", optarg);
				goto out;
			}
			have_priority = true;
			break;
		case OPT_ENV: {
			const char *eq = strchr(optarg, '=');
			char *key;
			if (!eq || eq == optarg) {
				status = verb_usage_error(ctx, "--env needs KEY=VALUE, not '%s'", optarg);
				goto out;
			}
			key = strndup(optarg, (size_t)(eq - optarg));
			if (!key) {
				status = VERB_EXIT_USAGE;
				goto out;
			}
			json_set(env, key, cJSON_CreateString(eq + 1));
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
				status = verb_usage_error(ctx, "--max-snapshot-mb needs a size in MB above "
							  "0, not '%s'", optarg);
				goto out;
			}
			break;
		}
		case OPT_MAX_SNAPSHOT_FILES:
			if (util_parse_int(optarg, 1, 100000000, &max_files) < 0) {
				status = verb_usage_error(ctx, "--max-snapshot-files needs a number from 1 "
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
			if (util_parse_int(optarg, 1, 100000, c == OPT_NODES ? &nodes : &cpus) < 0) {
				status = verb_usage_error(ctx, "--%s needs a number from 1 to 100000, not "
							  "'%s'",
						     c == OPT_NODES ? "nodes" : "cpus", optarg);
				goto out;
			}
			break;
		case OPT_JOB_MEMORY_GB: {
			char *end;
			memory_gb = strtod(optarg, &end);
			if (*end || !(memory_gb >= 0.001) || memory_gb > 1e6) {
				status = verb_usage_error(ctx, "--memory-gb needs a size in GB above 0, not "
							  "'%s'", optarg);
				goto out;
			}
			break;
		}
		case OPT_TIME_LIMIT:
			if (util_parse_seconds(optarg, &time_limit) < 0 || time_limit < 1) {
				status = verb_usage_error(ctx, "--time-limit needs a number of seconds >= 1, "
							  "not '%s'", optarg);
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
		json_set(args, "command",
			 cJSON_CreateStringArray((const char *const *)argv + optind, argc - optind));
	} else if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(args, "command")) &&
		   !dry_run) {
		status = verb_usage_error(ctx, "no program to run: runyard submit [OPTIONS] -- PROGRAM "
					  "[ARGS...]");
		goto out;
	}
	if (dry_run && wait) {
		status = verb_usage_error(ctx, "--dry-run creates no run to wait for");
		goto out;
	}
	if (dry_run) {
		json_set(args, "dry_run", cJSON_CreateTrue());
	}
	if (max_mb > 0) {
		double bytes = max_mb * 1e6;
		json_set(args, "max_snapshot_bytes", cJSON_CreateNumber(bytes < 1 ? 1 : (double)(long long)bytes));
	}
	if (max_files > 0) {
		json_set(args, "max_snapshot_files", cJSON_CreateNumber((double)max_files));
	}
	if (source || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(args, "source"))) {
		status = resolve_source("", source ? source : ".", &abs);
		if (status) {
			goto out;
		}
		json_set(args, "source", cJSON_CreateString(abs));
	}
	if (experiment) {
		json_set(args, "experiment", cJSON_CreateString(experiment));
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
		json_set(args, "python", cJSON_CreateString(python));
	}
	if (environment) {
		json_set(args, "environment", cJSON_CreateString(environment));
	}
	if (timeout > 0) {
		json_set(args, "timeout", cJSON_CreateNumber(timeout));
	}
	if (have_priority) {
		json_set(args, "priority", cJSON_CreateNumber((double)priority));
	}
	if (keep) {
		json_set(args, "keep", cJSON_CreateTrue());
	}
	if (target) {
		json_set(args, "target", cJSON_CreateString(target));
	}
	if (nodes > 0) {
		json_set(args, "nodes", cJSON_CreateNumber((double)nodes));
	}
	if (cpus > 0) {
		json_set(args, "cpus", cJSON_CreateNumber((double)cpus));
	}
	if (memory_gb > 0) {
		json_set(args, "memory_gb", cJSON_CreateNumber(memory_gb));
	}
	if (time_limit > 0) {
		json_set(args, "time_limit", cJSON_CreateNumber(time_limit));
	}
	status = data_args(ctx, args, inputs, input_paths, outputs);
	if (status) {
		goto out;
	}
	if (env->child) {
		fenv = cJSON_GetObjectItemCaseSensitive(args, "env");
		if (!cJSON_IsObject(fenv)) {
			fenv = cJSON_CreateObject();
			json_set(args, "env", fenv);
		}
		cJSON_ArrayForEach(item, env) {
			json_set(fenv, item->string, cJSON_CreateString(item->valuestring));
		}
	}

	status = connect_call(ctx, "run.submit", args, &result);
	if (status) {
		goto out;
	}
	if (dry_run) {
		status = ctx->json ? print_json(result) : print_dry_run(result);
		if (ctx->json && json_str(result, "over_limit")) {
			status = VERB_EXIT_REFUSED;
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
		status = VERB_EXIT_REFUSED;
		goto out;
	}
	fflush(stdout);
	status = follow_wait(ctx, json_str(result, "id"), show_output, 0);
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
		 "  --nodes N, --cpus N, --memory-gb G, --time-limit S\n"
		 "                     what the run asks of a cluster target (Slurm)\n"
		 "  --json             print the submit result (with --wait: the final run)\n"
		 "\n"
		 "Options end at PROGRAM; everything after it is its arguments.\n",
	.max_args = VERB_ANY,
};

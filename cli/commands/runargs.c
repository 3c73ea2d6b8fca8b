/* The run options 'submit' and 'sweep submit' share: flags, the JSON file (-f), dry runs. */

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "connect.h"
#include "json.h"
#include "msg.h"
#include "print.h"
#include "proto.h"
#include "render.h"
#include "util.h"
#include "verb.h"
#include "commands/runargs.h"

static const char *const run_file_keys[] = {
	"command", "source", "experiment", "python", "environment", "timeout", "priority",
	"env", "keep", "max_snapshot_bytes", "max_snapshot_files",
	"target", "nodes", "cpus", "memory_gb", "time_limit", "inputs", "outputs", "mem",
	"gpus", "gpu_mem", "after", "array", "retries", "retry_on", NULL,
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
	if (r == 0) {
		r = msg_arg_int(doc, "retries", false, 0, 100, &i, cause);
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

static bool listed(const char *const *keys, const char *key)
{
	for (size_t i = 0; keys && keys[i]; i++) {
		if (strcmp(keys[i], key) == 0) {
			return true;
		}
	}
	return false;
}

/* "command, source, ...": every key a file of this kind may hold. */
static char *known_keys(const struct runargs_file *kind)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f) {
		return NULL;
	}
	for (size_t i = 0; run_file_keys[i]; i++) {
		fprintf(f, "%s%s", i ? ", " : "", run_file_keys[i]);
	}
	for (size_t i = 0; kind->keys && kind->keys[i]; i++) {
		fprintf(f, ", %s", kind->keys[i]);
	}
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

/* A file's values, checked with the same rules the daemon applies, so a
 * mistake is reported against the file; the checks speak of the op's
 * arguments, and in a file they are keys. 0 or VERB_EXIT_USAGE (said why). */
static int check_file(const char *path, const struct runargs_file *kind, const cJSON *doc)
{
	char *cause = NULL;
	int r = check_run_file(doc, &cause);
	const char *what;

	if (r == 0 && kind->check) {
		r = kind->check(doc, &cause);
	}
	if (r == 0) {
		return 0;
	}
	what = cause ? cause : "invalid value";
	if (strncmp(what, "argument ", 9) == 0) {
		fprintf(stderr, "runyard: %s: key %s\n", path, what + 9);
	} else {
		fprintf(stderr, "runyard: %s: %s\n", path, what);
	}
	free(cause);
	return VERB_EXIT_USAGE;
}

int runargs_load(const struct runargs *ra, const struct runargs_file *kind, cJSON **ret_args)
{
	char *text = NULL, *real = NULL, *joined = NULL, *abs = NULL, *where = NULL, *known = NULL;
	const char *parse_end = NULL, *src, *path = ra->file;
	cJSON *doc = NULL, *item;
	size_t len = 0;
	int status = VERB_EXIT_USAGE, r;

	if (!path) {
		*ret_args = cJSON_CreateObject();
		return *ret_args ? 0 : VERB_EXIT_USAGE;
	}
	r = util_read_file(path, &text, &len);
	if (r < 0) {
		fprintf(stderr, "runyard: cannot read %s %s: %s\n", kind->noun, path, strerror(-r));
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
		if (!listed(run_file_keys, item->string) && !listed(kind->keys, item->string)) {
			known = known_keys(kind);
			fprintf(stderr, "runyard: %s: unknown key '%s' (known: %s)\n", path,
				item->string, known ? known : "see 'runyard help'");
			goto out;
		}
	}
	if (check_file(path, kind, doc)) {
		goto out;
	}
	/* source is relative to the file, and the file's directory when absent. */
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
	free(known);
	free(where);
	free(abs);
	free(joined);
	free(real);
	free(text);
	return status;
}

/* What a dry run would take: entries, totals, and whether it would fail. */
int runargs_print_dry_run(const cJSON *result)
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

int runargs_init(struct runargs *ra)
{
	*ra = (struct runargs){
		.env = cJSON_CreateObject(),
		.inputs = cJSON_CreateArray(),
		.after = cJSON_CreateArray(),
		.input_paths = cJSON_CreateObject(),
		.outputs = cJSON_CreateArray(),
	};
	if (!ra->env || !ra->inputs || !ra->input_paths || !ra->outputs) {
		runargs_finish(ra);
		return -ENOMEM;
	}
	return 0;
}

void runargs_finish(struct runargs *ra)
{
	cJSON_Delete(ra->env);
	cJSON_Delete(ra->inputs);
	cJSON_Delete(ra->after);
	cJSON_Delete(ra->input_paths);
	cJSON_Delete(ra->outputs);
	*ra = (struct runargs){0};
}

/* --input-path NAME=PATH or --output NAME=DIR into ra. */
static int path_flag(struct ctx *ctx, struct runargs *ra, int c, const char *arg)
{
	char *name = NULL, *dir;
	const char *value = NULL;
	cJSON *o;
	int status = name_value(ctx, c == RUNARGS_OPT_OUTPUT ? "--output" : "--input-path", arg,
				&name, &value);

	if (status) {
		return status;
	}
	if (c == RUNARGS_OPT_INPUT_PATH) {
		json_set(ra->input_paths, name, cJSON_CreateString(value));
		free(name);
		return 0;
	}
	/* a directory, or an HTTP datastore (a URL) */
	dir = strstr(value, "://") ? strdup(value) : util_absolute_path(value);
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", name);
	cJSON_AddStringToObject(o, "dir", dir ? dir : value);
	cJSON_AddItemToArray(ra->outputs, o);
	free(dir);
	free(name);
	return 0;
}

/* --env KEY=VALUE into ra->env. */
static int env_flag(struct ctx *ctx, struct runargs *ra, const char *arg)
{
	const char *eq = strchr(arg, '=');
	char *key;

	if (!eq || eq == arg) {
		return verb_usage_error(ctx, "--env needs KEY=VALUE, not '%s'", arg);
	}
	key = strndup(arg, (size_t)(eq - arg));
	if (!key) {
		return VERB_EXIT_USAGE;
	}
	json_set(ra->env, key, cJSON_CreateString(eq + 1));
	free(key);
	return 0;
}

/* A size in MB or GB: above 0, from min, at most max. */
static int size_flag(struct ctx *ctx, const char *opt, const char *unit, const char *arg,
		     double min, double max, double *ret)
{
	char *end;
	double v = strtod(arg, &end);

	if (*end || !(v > 0) || v < min || v > max) {
		return verb_usage_error(ctx, "%s needs a size in %s above 0, not '%s'", opt, unit, arg);
	}
	*ret = v;
	return 0;
}

int runargs_option(struct ctx *ctx, struct runargs *ra, int c, const char *arg)
{
	switch (c) {
	case 'f':
		ra->file = arg;
		return 0;
	case RUNARGS_OPT_EXPERIMENT:
		ra->experiment = arg;
		return 0;
	case RUNARGS_OPT_SOURCE:
		ra->source = arg;
		return 0;
	case RUNARGS_OPT_PYTHON:
		ra->python = arg;
		return 0;
	case RUNARGS_OPT_ENVIRONMENT:
		ra->environment = arg;
		return 0;
	case RUNARGS_OPT_TARGET:
		ra->target = arg;
		return 0;
	case RUNARGS_OPT_INPUT:
		return input_flag(ctx, ra->inputs, arg);
	case RUNARGS_OPT_INPUT_PATH:
	case RUNARGS_OPT_OUTPUT:
		return path_flag(ctx, ra, c, arg);
	case RUNARGS_OPT_ENV:
		return env_flag(ctx, ra, arg);
	case RUNARGS_OPT_KEEP:
		ra->keep = true;
		return 0;
	case RUNARGS_OPT_DRY_RUN:
		ra->dry_run = true;
		return 0;
	case RUNARGS_OPT_TIMEOUT:
		if (util_parse_seconds(arg, &ra->timeout) < 0) {
			return verb_usage_error(ctx, "--timeout needs a number of seconds > 0, not '%s'",
						arg);
		}
		return 0;
	case RUNARGS_OPT_PRIORITY:
		if (util_parse_int(arg, -1000, 1000, &ra->priority) < 0) {
			return verb_usage_error(ctx, "--priority needs an integer from -1000 to 1000, "
						"not '%s'", arg);
		}
		ra->have_priority = true;
		return 0;
	case RUNARGS_OPT_MAX_SNAPSHOT_MB:
		return size_flag(ctx, "--max-snapshot-mb", "MB", arg, 0, 1e9, &ra->max_mb);
	case RUNARGS_OPT_MAX_SNAPSHOT_FILES:
		if (util_parse_int(arg, 1, 100000000, &ra->max_files) < 0) {
			return verb_usage_error(ctx, "--max-snapshot-files needs a number from 1 to "
						"100000000, not '%s'", arg);
		}
		return 0;
	case RUNARGS_OPT_NODES:
	case RUNARGS_OPT_CPUS:
		if (util_parse_int(arg, 1, 100000, c == RUNARGS_OPT_NODES ? &ra->nodes : &ra->cpus) <
		    0) {
			return verb_usage_error(ctx, "--%s needs a number from 1 to 100000, not '%s'",
						c == RUNARGS_OPT_NODES ? "nodes" : "cpus", arg);
		}
		return 0;
	case RUNARGS_OPT_MEMORY_GB:
		return size_flag(ctx, "--memory-gb", "GB", arg, 0.001, 1e6, &ra->memory_gb);
	case RUNARGS_OPT_MEM:
	case RUNARGS_OPT_GPU_MEM:
		/* The daemon reads the size and says what is wrong with it. */
		if (!*arg) {
			return verb_usage_error(ctx, "--%s needs a size such as 512M or 2G",
						c == RUNARGS_OPT_MEM ? "mem" : "gpu-mem");
		}
		*(c == RUNARGS_OPT_MEM ? &ra->mem : &ra->gpu_mem) = arg;
		return 0;
	case RUNARGS_OPT_GPUS:
		if (util_parse_int(arg, 0, 64, &ra->gpus) < 0) {
			return verb_usage_error(ctx, "--gpus needs a number from 0 to 64, not '%s'",
						arg);
		}
		ra->have_gpus = true;
		return 0;
	case RUNARGS_OPT_ARRAY:
		ra->array = arg;
		return 0;
	case RUNARGS_OPT_RETRIES:
		if (util_parse_int(arg, 0, 100, &ra->retries) < 0) {
			return verb_usage_error(ctx, "--retries needs a number from 0 to 100, not "
						"'%s'", arg);
		}
		ra->have_retries = true;
		return 0;
	case RUNARGS_OPT_RETRY_ON:
		if (!*arg) {
			return verb_usage_error(ctx, "--retry-on needs fail, oom, restart or any "
						"(several with commas)");
		}
		ra->retry_on = arg;
		return 0;
	case RUNARGS_OPT_AFTER:
		if (!*arg || !ra->after) {
			return verb_usage_error(ctx, "--after needs RUN or RUN:ok|any|fail");
		}
		cJSON_AddItemToArray(ra->after, cJSON_CreateString(arg));
		return 0;
	case RUNARGS_OPT_TIME_LIMIT:
		if (util_parse_seconds(arg, &ra->time_limit) < 0 || ra->time_limit < 1) {
			return verb_usage_error(ctx, "--time-limit needs a number of seconds >= 1, not "
						"'%s'", arg);
		}
		return 0;
	default:
		return -ENOENT;
	}
}

/* The interpreter flags: both choose it, so a flag replaces the file's
 * either (both flags at once are refused by the daemon). */
static void apply_interpreter(const struct runargs *ra, cJSON *args)
{
	if (ra->python && !ra->environment) {
		cJSON_DeleteItemFromObjectCaseSensitive(args, "environment");
	}
	if (ra->environment && !ra->python) {
		cJSON_DeleteItemFromObjectCaseSensitive(args, "python");
	}
	if (ra->python) {
		json_set(args, "python", cJSON_CreateString(ra->python));
	}
	if (ra->environment) {
		json_set(args, "environment", cJSON_CreateString(ra->environment));
	}
}

/* The --env flags merged into the file's env, key by key. */
static void apply_env(const struct runargs *ra, cJSON *args)
{
	const cJSON *item;
	cJSON *fenv;

	if (!ra->env->child) {
		return;
	}
	fenv = cJSON_GetObjectItemCaseSensitive(args, "env");
	if (!cJSON_IsObject(fenv)) {
		fenv = cJSON_CreateObject();
		json_set(args, "env", fenv);
	}
	cJSON_ArrayForEach(item, ra->env) {
		json_set(fenv, item->string, cJSON_CreateString(item->valuestring));
	}
}

int runargs_apply(struct ctx *ctx, const struct runargs *ra, cJSON *args)
{
	char *abs = NULL;
	int status;

	if (ra->dry_run) {
		json_set(args, "dry_run", cJSON_CreateTrue());
	}
	if (ra->max_mb > 0) {
		double bytes = ra->max_mb * 1e6;
		json_set(args, "max_snapshot_bytes",
			 cJSON_CreateNumber(bytes < 1 ? 1 : (double)(long long)bytes));
	}
	if (ra->max_files > 0) {
		json_set(args, "max_snapshot_files", cJSON_CreateNumber((double)ra->max_files));
	}
	if (ra->source || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(args, "source"))) {
		status = resolve_source("", ra->source ? ra->source : ".", &abs);
		if (status) {
			return status;
		}
		json_set(args, "source", cJSON_CreateString(abs));
		free(abs);
	}
	if (ra->experiment) {
		json_set(args, "experiment", cJSON_CreateString(ra->experiment));
	}
	apply_interpreter(ra, args);
	if (ra->timeout > 0) {
		json_set(args, "timeout", cJSON_CreateNumber(ra->timeout));
	}
	if (ra->have_priority) {
		json_set(args, "priority", cJSON_CreateNumber((double)ra->priority));
	}
	if (ra->keep) {
		json_set(args, "keep", cJSON_CreateTrue());
	}
	if (ra->target) {
		json_set(args, "target", cJSON_CreateString(ra->target));
	}
	if (ra->nodes > 0) {
		json_set(args, "nodes", cJSON_CreateNumber((double)ra->nodes));
	}
	if (ra->cpus > 0) {
		json_set(args, "cpus", cJSON_CreateNumber((double)ra->cpus));
	}
	if (ra->memory_gb > 0) {
		json_set(args, "memory_gb", cJSON_CreateNumber(ra->memory_gb));
	}
	if (ra->time_limit > 0) {
		json_set(args, "time_limit", cJSON_CreateNumber(ra->time_limit));
	}
	if (ra->mem) {
		json_set(args, "mem", cJSON_CreateString(ra->mem));
	}
	if (ra->gpu_mem) {
		json_set(args, "gpu_mem", cJSON_CreateString(ra->gpu_mem));
	}
	if (ra->array) {
		json_set(args, "array", cJSON_CreateString(ra->array));
	}
	if (ra->have_gpus) {
		json_set(args, "gpus", cJSON_CreateNumber((double)ra->gpus));
	}
	if (ra->have_retries) {
		json_set(args, "retries", cJSON_CreateNumber((double)ra->retries));
	}
	if (ra->retry_on) {
		json_set(args, "retry_on", cJSON_CreateString(ra->retry_on));
	}
	if (ra->after && cJSON_GetArraySize(ra->after) > 0) {
		json_set(args, "after", cJSON_Duplicate(ra->after, true));
	}
	status = data_args(ctx, args, ra->inputs, ra->input_paths, ra->outputs);
	if (status) {
		return status;
	}
	apply_env(ra, args);
	return 0;
}

int runargs_submit(struct ctx *ctx, const struct runargs *ra, const char *op, cJSON *args,
		   cJSON **ret_result, bool *ret_done)
{
	int status = runargs_apply(ctx, ra, args);

	*ret_done = false;
	if (status || (status = connect_call(ctx, op, args, ret_result))) {
		return status;
	}
	if (ra->dry_run) {
		*ret_done = true;
		status = ctx->json ? print_json(*ret_result) : runargs_print_dry_run(*ret_result);
		if (ctx->json && json_str(*ret_result, "over_limit")) {
			status = VERB_EXIT_REFUSED;
		}
		return status;
	}
	runargs_print_skipped(*ret_result);
	return 0;
}

void runargs_print_skipped(const cJSON *result)
{
	const cJSON *item;

	cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(result, "skipped")) {
		fprintf(stderr, "runyard: note: skipped %s (%s)\n",
			json_str(item, "path") ? json_str(item, "path") : "?",
			json_str(item, "reason") ? json_str(item, "reason") : "not taken");
	}
}

/* runyard dataset: register, list, show, download and delete datasets. */

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
#include "util.h"
#include "verb.h"
#include "commands/commands.h"

/* Long options without a short form. */
enum {
	OPT_DS_DESCRIPTION = VERB_OPT_FIRST,
};

static int dataset_register_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{"description", required_argument, NULL, OPT_DS_DESCRIPTION},
		VERB_COMMON_OPTIONS,
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
	for (int i = optind + 1; i < argc; i++) {
		char *src = strstr(argv[i], "://") ? strdup(argv[i]) : util_absolute_path(argv[i]);
		cJSON_AddItemToArray(sources, cJSON_CreateString(src ? src : argv[i]));
		free(src);
	}
	cJSON_AddStringToObject(args, "name", argv[optind]);
	cJSON_AddItemToObject(args, "sources", sources);
	sources = NULL;
	if (description) {
		cJSON_AddStringToObject(args, "description", description);
	}
	status = connect_call(ctx, "dataset.register", args, &res);
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

static const struct verb dataset_register_entry = {
	.name = "register",
	.run = dataset_register_cb,
	.summary = "Register files, directories or URLs as a dataset version",
	.usage = "Usage: runyard dataset register NAME SOURCE... [--description TEXT] "
		 "[--json]\n"
		 "\n"
		 "Register a new version of dataset NAME (versions count from 1 per name).\n"
		 "Each SOURCE is a local file (kept under its name), a local directory\n"
		 "(its contents at the top) or an http://, https:// or file:// URL\n"
		 "(downloaded; append #sha256=HEX to check it). The contents are stored\n"
		 "and pinned by hash now: later changes to the sources do not change it.\n",
	.min_args = 2,
	.max_args = VERB_ANY,
	.missing = "runyard dataset register NAME SOURCE... (a file, a directory or a URL)",
};

static int dataset_list_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {VERB_COMMON_OPTIONS, {0}};
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
	if (optind < argc) {
		cJSON_AddStringToObject(args, "name", argv[optind]);
	}
	status = connect_call(ctx, "dataset.list", args, &res);
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

static const struct verb dataset_list_entry = {
	.name = "list",
	.run = dataset_list_cb,
	.summary = "List datasets",
	.usage = "Usage: runyard dataset list [NAME] [--json]\n",
	.max_args = 1,
};

static int dataset_show_cb(struct ctx *ctx, int argc, char **argv)
{
	cJSON *args = cJSON_CreateObject(), *d = NULL;
	const char *ref = NULL;
	const cJSON *it;
	char sz[32], when[32];
	double v = 0;
	int status = verb_simple(ctx, argc, argv, &ref);

	if (status) {
		goto out;
	}
	cJSON_AddStringToObject(args, "dataset", ref);
	status = connect_call(ctx, "dataset.show", args, &d);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(d);
		goto out;
	}
	printf("Dataset %s\n", json_str(d, "id") ? json_str(d, "id") : "?");
	print_field("Manifest:", json_str(d, "manifest"));
	print_field("About:", json_str(d, "description"));
	render_time(json_str(d, "created_at"), when);
	print_field("Created:", when);
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(d, "sources")) {
		print_field(it == cJSON_GetObjectItemCaseSensitive(d, "sources")->child ? "Sources:" : "",
		      cJSON_IsString(it) ? it->valuestring : "?");
	}
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(d, "runs")) {
		char buf[600];
		snprintf(buf, sizeof(buf), "#%lld %s (input %s)", json_int(it, "seq", 0),
			 json_str(it, "id") ? json_str(it, "id") : "?",
			 json_str(it, "input") ? json_str(it, "input") : "?");
		print_field(it == cJSON_GetObjectItemCaseSensitive(d, "runs")->child ? "Used by:" : "",
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

static const struct verb dataset_show_entry = {
	.name = "show",
	.run = dataset_show_cb,
	.summary = "Show a dataset version, its files and the runs that used it",
	.usage = "Usage: runyard dataset show NAME[:VERSION] [--json]\n",
	.min_args = 1,
	.max_args = 1,
	.missing = "which dataset?",
};

static int dataset_download_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{"output", required_argument, NULL, 'o'},
		VERB_COMMON_OPTIONS,
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
			status = VERB_HELP;
			goto out;
		default:
			status = verb_option_error(ctx, c, argv, options);
			goto out;
		}
	}
	status = verb_arg(ctx, argc, argv, &ref);
	if (status) {
		goto out;
	}
	if (!dir) {
		status = verb_usage_error(ctx, "where to? give -o DIR");
		goto out;
	}
	abs = util_absolute_path(dir);
	cJSON_AddStringToObject(args, "dataset", ref);
	cJSON_AddStringToObject(args, "dir", abs ? abs : dir);
	status = connect_call(ctx, "dataset.download", args, &res);
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

static const struct verb dataset_download_entry = {
	.name = "download",
	.run = dataset_download_cb,
	.summary = "Write a dataset version's files into a directory",
	.usage = "Usage: runyard dataset download NAME[:VERSION] -o DIR [--json]\n"
		 "\n"
		 "DIR is created when missing and must be empty.\n",
	.min_args = 1,
	.max_args = 1,
	.missing = "which dataset?",
};

static int dataset_delete_cb(struct ctx *ctx, int argc, char **argv)
{
	cJSON *args = cJSON_CreateObject(), *res = NULL;
	const char *ref = NULL;
	const cJSON *it;
	int status = verb_simple(ctx, argc, argv, &ref);

	if (status) {
		goto out;
	}
	cJSON_AddStringToObject(args, "dataset", ref);
	status = connect_call(ctx, "dataset.delete", args, &res);
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

static const struct verb dataset_delete_entry = {
	.name = "delete",
	.run = dataset_delete_cb,
	.summary = "Delete a dataset version, or every version of a name",
	.usage = "Usage: runyard dataset delete NAME[:VERSION] [--json]\n"
		 "\n"
		 "Runs that used it keep their record of the name, version and hashes.\n",
	.min_args = 1,
	.max_args = 1,
	.missing = "which dataset?",
};

static const struct verb *const dataset_verbs[] = {
	&dataset_register_entry,
	&dataset_list_entry,
	&dataset_show_entry,
	&dataset_download_entry,
	&dataset_delete_entry,
	NULL,
};

const struct verb cmd_dataset_entry = {
	.name = "dataset",
	.subverbs = dataset_verbs,
	.summary = "Register, list, show, download and delete datasets",
	.usage = "Usage: runyard dataset register NAME SOURCE... [--description TEXT]\n"
		 "       runyard dataset list [NAME]\n"
		 "       runyard dataset show NAME[:VERSION]\n"
		 "       runyard dataset download NAME[:VERSION] -o DIR\n"
		 "       runyard dataset delete NAME[:VERSION]\n"
		 "\n"
		 "Each takes --json. See 'runyard help dataset register'.\n",
};

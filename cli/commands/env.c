/* runyard env: create, list, show, delete and prune environments. */

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
	OPT_CONDA_FILE = VERB_OPT_FIRST,
	OPT_PIP_REQUIREMENTS,
	OPT_INTERPRETER,
	OPT_PYTHON,
	OPT_SYSTEM_SITE_PACKAGES,
	OPT_VAR,
	OPT_KEEP_N,
};

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
		VERB_COMMON_OPTIONS,
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
			status = verb_key_value(ctx, vars, optarg, "--var");
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
	status = verb_args(ctx, argc, argv);
	if (status) {
		goto out;
	}
	if (!!conda + !!reqs + !!interp != 1) {
		status = verb_usage_error(ctx, "give one of --conda-file, --pip-requirements or "
					  "--interpreter");
		goto out;
	}
	cJSON_AddStringToObject(args, "name", argv[optind]);
	if (conda || reqs) {
		err = util_read_file(conda ? conda : reqs, &text, &len);
		if (err < 0) {
			fprintf(stderr, "runyard: %s: %s\n", conda ? conda : reqs, strerror(-err));
			status = VERB_EXIT_USAGE;
			goto out;
		}
		if (strlen(text) != len) {
			fprintf(stderr, "runyard: %s: not a text file\n", conda ? conda : reqs);
			status = VERB_EXIT_USAGE;
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
			status = verb_usage_error(ctx, "--python needs an absolute path, not '%s'",
					     python);
			goto out;
		}
	}
	if (ssp) {
		cJSON_AddBoolToObject(args, "system_site_packages", true);
	}
	cJSON_AddItemToObject(args, "vars", vars);
	vars = NULL;
	status = connect_call(ctx, "env.create", args, &result);
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

static const struct verb env_create_entry = {
	.name = "create",
	.run = env_create_cb,
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
	.min_args = 1,
	.max_args = 1,
	.missing = "which name? give the environment's name",
};

static int env_list_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {VERB_COMMON_OPTIONS, {0}};
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
	status = connect_call(ctx, "env.list", args, &result);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(result);
		goto out;
	}
	t = render_table_create(9, headers);
	if (!t) {
		status = VERB_EXIT_USAGE;
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

static const struct verb env_list_entry = {
	.name = "list",
	.run = env_list_cb,
	.summary = "List environments, built-ins first",
	.usage = "Usage: runyard env list [--json]\n",
};

static int env_show_cb(struct ctx *ctx, int argc, char **argv)
{
	cJSON *args = cJSON_CreateObject(), *e = NULL;
	const cJSON *def, *item;
	const char *ref = NULL;
	char summary[512];
	int status = verb_simple(ctx, argc, argv, &ref);

	if (status) {
		goto out;
	}
	cJSON_AddStringToObject(args, "environment", ref);
	status = connect_call(ctx, "env.show", args, &e);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(e);
		goto out;
	}
	def = cJSON_GetObjectItemCaseSensitive(e, "definition");
	env_summary(e, summary, sizeof(summary));
	print_field("Environment:", json_str(e, "id"));
	print_field("Kind:", json_str(e, "kind"));
	print_field("Python:", json_str(def, "python"));
	if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(def, "python_pin"))) {
		print_field("Python pin:", json_str(def, "python_pin"));
	}
	print_field("System site:",
	      cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(def, "system_site_packages")) ? "yes"
											   : "no");
	print_field("Hash:", json_str(e, "hash"));
	cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(def, "requirements")) {
		print_field("Requirement:", cJSON_IsString(item) ? item->valuestring : "?");
	}
	cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(def, "skipped")) {
		char *m = msg_strdupf("%s (runyard's compatibility module)",
				      cJSON_IsString(item) ? item->valuestring : "?");
		print_field("Skipped:", m ? m : "?");
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

static const struct verb env_show_entry = {
	.name = "show",
	.run = env_show_cb,
	.summary = "Show an environment's definition",
	.usage = "Usage: runyard env show NAME[:VERSION] [--json]\n",
	.min_args = 1,
	.max_args = 1,
	.missing = "which environment?",
};

static int env_delete_cb(struct ctx *ctx, int argc, char **argv)
{
	cJSON *args = cJSON_CreateObject(), *result = NULL;
	const char *ref = NULL;
	int status = verb_simple(ctx, argc, argv, &ref);

	if (status) {
		goto out;
	}
	cJSON_AddStringToObject(args, "environment", ref);
	status = connect_call(ctx, "env.delete", args, &result);
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

static const struct verb env_delete_entry = {
	.name = "delete",
	.run = env_delete_cb,
	.summary = "Delete a version of an environment, or all of them",
	.usage = "Usage: runyard env delete NAME[:VERSION] [--json]\n",
	.min_args = 1,
	.max_args = 1,
	.missing = "which environment (NAME[:VERSION])?",
};

static int env_prune_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{"keep", required_argument, NULL, OPT_KEEP_N},
		VERB_COMMON_OPTIONS,
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
				status = verb_usage_error(ctx, "--keep wants a number from 0, not '%s'",
						     optarg);
				goto out;
			}
			cJSON_AddNumberToObject(args, "keep", (double)keep);
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
	status = connect_call(ctx, "env.prune", args, &result);
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

static const struct verb env_prune_entry = {
	.name = "prune",
	.run = env_prune_cb,
	.summary = "Remove the least recently used builds from the cache",
	.usage = "Usage: runyard env prune [--keep N] [--json]\n"
		 "\n"
		 "Remove cached builds except the N most recently used (default 3).\n"
		 "Builds in use by a run that has not ended, or being built, stay.\n",
};

static const struct verb *const env_verbs[] = {
	&env_create_entry,
	&env_list_entry,
	&env_show_entry,
	&env_prune_entry,
	&env_delete_entry,
	NULL,
};

const struct verb cmd_env_entry = {
	.name = "env",
	.subverbs = env_verbs,
	.summary = "Manage environments (interpreters, venvs, conda specifications)",
	.usage = "Usage: runyard env create NAME (--conda-file FILE | --pip-requirements "
		 "FILE | --interpreter PATH)\n"
		 "       runyard env list\n"
		 "       runyard env show NAME[:VERSION]\n"
		 "       runyard env delete NAME[:VERSION]\n"
		 "       runyard env prune [--keep N]\n"
		 "\n"
		 "Each takes --json. See 'runyard help env create'.\n",
};

/* runyard compute: create, list, show and delete compute targets. */

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
	OPT_TYPE = VERB_OPT_FIRST,
	OPT_REST,
	OPT_TOKEN_ENV,
	OPT_USER,
	OPT_PARTITION,
	OPT_SHARED_DIR,
	OPT_MAX_JOBS,
};

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
		VERB_COMMON_OPTIONS,
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
			if (util_parse_int(optarg, 1, 100000, &max_jobs) < 0) {
				return verb_usage_error(ctx, "--max-jobs needs a number from 1 to 100000, "
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
	status = verb_args(ctx, argc, argv);
	if (status) {
		return status;
	}
	if (!rest) {
		return verb_usage_error(ctx, "--rest URL is required (unix:/path/to/slurmrestd.sock or "
					"http://host:port)");
	}
	args = cJSON_CreateObject();
	json_set(args, "name", cJSON_CreateString(argv[optind]));
	json_set(args, "type", cJSON_CreateString(type));
	json_set(args, "rest", cJSON_CreateString(rest));
	if (token_env) {
		json_set(args, "token_env", cJSON_CreateString(token_env));
	}
	if (user) {
		json_set(args, "user", cJSON_CreateString(user));
	}
	if (partition) {
		json_set(args, "partition", cJSON_CreateString(partition));
	}
	if (shared_dir) {
		/* Relative to where the CLI runs, as --source is. */
		abs = shared_dir[0] == '/' ? strdup(shared_dir) : realpath(shared_dir, NULL);
		json_set(args, "shared_dir", cJSON_CreateString(abs ? abs : shared_dir));
	}
	if (max_jobs > 0) {
		json_set(args, "max_jobs", cJSON_CreateNumber((double)max_jobs));
	}
	status = connect_call(ctx, "compute.create", args, &result);
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

static const struct verb compute_create_entry = {
	.name = "create",
	.run = compute_create_cb,
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
	.min_args = 1,
	.max_args = 1,
	.missing = "give one target NAME: runyard compute create NAME --type slurm --rest URL",
	.too_many = "give one target NAME: runyard compute create NAME --type slurm --rest URL",
};

static int compute_list_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {VERB_COMMON_OPTIONS, {0}};
	cJSON *result = NULL;
	const cJSON *t;
	int status, c;

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
	if (status) {
		return status;
	}
	status = connect_call(ctx, "compute.list", NULL, &result);
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

static const struct verb compute_list_entry = {
	.name = "list",
	.run = compute_list_cb,
	.summary = "List compute targets",
	.usage = "Usage: runyard compute list [--json]\n"
		 "\n"
		 "List the compute targets, the built-in local one first, with the runs\n"
		 "each holds and takes at once.\n",
};

/* compute show NAME, compute delete NAME */
static int compute_one(struct ctx *ctx, int argc, char **argv, const char *op)
{
	static const struct option options[] = {VERB_COMMON_OPTIONS, {0}};
	cJSON *args = NULL, *result = NULL;
	const cJSON *kv;
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
	status = verb_args(ctx, argc, argv);
	if (status) {
		return status;
	}
	args = cJSON_CreateObject();
	json_set(args, "name", cJSON_CreateString(argv[optind]));
	status = connect_call(ctx, op, args, &result);
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
				print_field(label, cJSON_IsString(kv) ? kv->valuestring : v);
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

static const struct verb compute_show_entry = {
	.name = "show",
	.run = compute_show_cb,
	.summary = "Show a compute target",
	.usage = "Usage: runyard compute show NAME [--json]\n",
	.min_args = 1,
	.max_args = 1,
	.missing = "give one compute target NAME",
	.too_many = "give one compute target NAME",
};

static int compute_delete_cb(struct ctx *ctx, int argc, char **argv)
{
	return compute_one(ctx, argc, argv, "compute.delete");
}

static const struct verb compute_delete_entry = {
	.name = "delete",
	.run = compute_delete_cb,
	.summary = "Delete a compute target that has no runs in flight",
	.usage = "Usage: runyard compute delete NAME [--json]\n",
	.min_args = 1,
	.max_args = 1,
	.missing = "give one compute target NAME",
	.too_many = "give one compute target NAME",
};

static const struct verb *const compute_verbs[] = {
	&compute_create_entry,
	&compute_list_entry,
	&compute_show_entry,
	&compute_delete_entry,
	NULL,
};

const struct verb cmd_compute_entry = {
	.name = "compute",
	.subverbs = compute_verbs,
	.summary = "Manage compute targets (local, Slurm clusters)",
	.usage = "Usage: runyard compute create NAME --type slurm --rest URL [OPTIONS]\n"
		 "       runyard compute list\n"
		 "       runyard compute show NAME\n"
		 "       runyard compute delete NAME\n"
		 "\n"
		 "Each takes --json. See 'runyard help compute create'.\n",
};

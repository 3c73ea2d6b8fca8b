/* runyard outputs: list a run's output files, or download them. */

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
#include "download.h"
#include "json.h"
#include "msg.h"
#include "print.h"
#include "render.h"
#include "util.h"
#include "verb.h"
#include "commands/commands.h"

/* Long options without a short form. */
enum {
	OPT_DOWNLOAD = VERB_OPT_FIRST,
};

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
		VERB_COMMON_OPTIONS,
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
			return VERB_HELP;
		default:
			return verb_option_error(ctx, c, argv, options);
		}
	}
	status = verb_arg(ctx, argc, argv, &run);
	if (status) {
		return status;
	}
	args = cJSON_CreateObject();
	cJSON_AddStringToObject(args, "run", run);
	status = connect_call(ctx, "run.outputs", args, &result);
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
			status = VERB_EXIT_USAGE;
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
				status = VERB_EXIT_USAGE;
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

const struct verb cmd_outputs_entry = {
	.name = "outputs",
	.run = outputs_cb,
	.summary = "List or download a run's output files",
	.usage = "Usage: runyard outputs RUN [--download DIR] [--json]\n"
		 "\n"
		 "List the files the run left in ./outputs and ./logs.\n"
		 "\n"
		 "  --download DIR  also fetch them into DIR, keeping their paths, checked\n"
		 "                  against their size and sha256\n",
	.min_args = 1,
	.max_args = 1,
	.missing = "which run? give its id or number",
};

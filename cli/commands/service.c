/* runyard service: list, show, follow the log of, restart, delete and call deployed services. */

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
#include "httppost.h"
#include "json.h"
#include "msg.h"
#include "print.h"
#include "render.h"
#include "util.h"
#include "verb.h"
#include "commands/commands.h"

/* Long options without a short form. */
enum {
	OPT_LINES = VERB_OPT_FIRST,
	OPT_NO_WAIT,
	OPT_DATA,
	OPT_PATH,
	OPT_TIMEOUT,
};

static int service_list_cb(struct ctx *ctx, int argc, char **argv)
{
	static const char *const headers[] = {"NAME", "STATE", "MODEL", "PORT", "PID", "RESTARTS",
					      "SCORING URI"};
	cJSON *result = NULL;
	struct render_table *t = NULL;
	const cJSON *s, *list;
	static const struct option options[] = {VERB_COMMON_OPTIONS, {0}};
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
	status = connect_call(ctx, "service.list", NULL, &result);
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
		status = VERB_EXIT_USAGE;
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

static const struct verb service_list_entry = {
	.name = "list",
	.run = service_list_cb,
	.summary = "List services",
	.usage = "Usage: runyard service list [--json]\n"
		 "\n"
		 "List the services with their state (Transitioning, Healthy, Unhealthy,\n"
		 "Failed), model, port and scoring URI.\n",
};

static int service_show_cb(struct ctx *ctx, int argc, char **argv)
{
	cJSON *args = cJSON_CreateObject(), *s = NULL;
	const char *name = NULL;
	const cJSON *p, *i;
	char t1[32];
	int status = verb_simple(ctx, argc, argv, &name);

	if (status) {
		goto out;
	}
	cJSON_AddStringToObject(args, "service", name);
	status = connect_call(ctx, "service.show", args, &s);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(s);
		goto out;
	}
	print_service_line(s);
	print_field("Kind:", json_str(s, "kind"));
	if (json_str(s, "entry_script")) {
		char buf[4200];
		snprintf(buf, sizeof(buf), "%s in %s (snapshot %.12s)", json_str(s, "entry_script"),
			 json_str(s, "source") ? json_str(s, "source") : "?",
			 json_str(s, "snapshot") ? json_str(s, "snapshot") : "?");
		print_field("Script:", buf);
	}
	print_field("Python:", json_str(s, "python"));
	if (json_str(s, "environment")) {
		print_field("Environment:", json_str(s, "environment"));
	}
	if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(s, "pid"))) {
		char buf[96];
		render_time(json_str(s, "serving_since"), t1);
		snprintf(buf, sizeof(buf), "%lld, since %s", json_int(s, "pid", 0), t1);
		print_field("Serving:", buf);
	} else {
		print_field("Serving:", "-");
	}
	p = cJSON_GetObjectItemCaseSensitive(s, "pending");
	if (cJSON_IsObject(p)) {
		char buf[300];
		snprintf(buf, sizeof(buf), "model %s starting (pid %lld)", json_str(p, "model"),
			 json_int(p, "pid", 0));
		print_field("Pending:", buf);
	}
	print_cpu_mem(cJSON_GetObjectItemCaseSensitive(s, "resources"), "cpu", "memory_gb");
	snprintf(t1, sizeof(t1), "%lld", json_int(s, "restarts", 0));
	print_field("Restarts:", t1);
	cJSON_ArrayForEach(i, cJSON_GetObjectItemCaseSensitive(s, "instances")) {
		char buf[300];
		snprintf(buf, sizeof(buf), "pid %lld, model %s, %s%s%s", json_int(i, "pid", 0),
			 json_str(i, "model"), json_str(i, "state"),
			 json_str(i, "tier") ? ", held by " : "",
			 json_str(i, "tier") ? json_str(i, "tier") : "");
		print_field("Instance:", buf);
	}
	render_time(json_str(s, "created_at"), t1);
	print_field("Created:", t1);
	render_time(json_str(s, "updated_at"), t1);
	print_field("Updated:", t1);
	print_field("Log:", json_str(s, "log"));
	if (json_str(s, "error")) {
		printf("Error:\n%s\n", json_str(s, "error"));
	}
out:
	cJSON_Delete(s);
	cJSON_Delete(args);
	return status;
}

static const struct verb service_show_entry = {
	.name = "show",
	.run = service_show_cb,
	.summary = "Show a service",
	.usage = "Usage: runyard service show SVC [--json]\n"
		 "\n"
		 "Show a service: state, model, scoring URI, instances, restarts and the\n"
		 "last error with the lines its log ended with.\n",
	.min_args = 1,
	.max_args = 1,
	.missing = "which service?",
};

static int service_logs_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{"follow", no_argument, NULL, 'f'},
		{"lines", required_argument, NULL, OPT_LINES},
		VERB_COMMON_OPTIONS,
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
			if (util_parse_int(optarg, 1, 1000000, &lines) < 0) {
				status = verb_usage_error(ctx, "--lines wants a number from 1, not '%s'",
						     optarg);
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
	status = verb_arg(ctx, argc, argv, &name);
	if (status) {
		goto out;
	}
	if (follow && ctx->json) {
		status = verb_usage_error(ctx, "--follow and --json do not go together");
		goto out;
	}
	cJSON_AddStringToObject(args, "service", name);
	if (lines > 0) {
		cJSON_AddNumberToObject(args, "lines", (double)lines);
	}
	status = connect_call(ctx, "service.logs", args, &result);
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
		util_sleep_ms(250);
		cJSON_DeleteItemFromObject(args, "lines");
		json_set(args, "after", cJSON_CreateNumber(next));
		status = connect_call(ctx, "service.logs", args, &result);
		if (status) {
			goto out;
		}
	}
out:
	cJSON_Delete(result);
	cJSON_Delete(args);
	return status;
}

static const struct verb service_logs_entry = {
	.name = "logs",
	.run = service_logs_cb,
	.summary = "Print a service's log",
	.usage = "Usage: runyard service logs SVC [-f|--follow] [--lines N] [--json]\n"
		 "\n"
		 "Print what the service's servers wrote, with runyard's own notes.\n"
		 "\n"
		 "  -f, --follow  keep printing as the log grows (^C to stop)\n"
		 "  --lines N     only the last N lines\n",
	.min_args = 1,
	.max_args = 1,
	.missing = "which service?",
};

static int service_restart_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{"no-wait", no_argument, NULL, OPT_NO_WAIT},
		VERB_COMMON_OPTIONS,
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
			status = VERB_HELP;
			goto out;
		default:
			status = verb_option_error(ctx, c, argv, options);
			goto out;
		}
	}
	status = verb_arg(ctx, argc, argv, &name);
	if (status) {
		goto out;
	}
	cJSON_AddStringToObject(args, "service", name);
	cJSON_AddBoolToObject(args, "wait", wait);
	status = connect_call(ctx, "service.restart", args, &result);
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

static const struct verb service_restart_entry = {
	.name = "restart",
	.run = service_restart_cb,
	.summary = "Restart a service without dropping a request",
	.usage = "Usage: runyard service restart SVC [--no-wait] [--json]\n"
		 "\n"
		 "Start a new server for the service, switch to it once healthy and stop\n"
		 "the old one.\n",
	.min_args = 1,
	.max_args = 1,
	.missing = "which service?",
};

static int service_delete_cb(struct ctx *ctx, int argc, char **argv)
{
	cJSON *args = cJSON_CreateObject(), *result = NULL;
	const char *name = NULL;
	int status = verb_simple(ctx, argc, argv, &name);

	if (status) {
		goto out;
	}
	cJSON_AddStringToObject(args, "service", name);
	status = connect_call(ctx, "service.delete", args, &result);
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

static const struct verb service_delete_entry = {
	.name = "delete",
	.run = service_delete_cb,
	.summary = "Stop and delete a service",
	.usage = "Usage: runyard service delete SVC [--json]\n",
	.min_args = 1,
	.max_args = 1,
	.missing = "which service?",
};

static int service_invoke_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{"data", required_argument, NULL, OPT_DATA},
		{"path", required_argument, NULL, OPT_PATH},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		VERB_COMMON_OPTIONS,
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
			status = verb_positive(ctx, "--timeout", optarg, &timeout);
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
	status = verb_arg(ctx, argc, argv, &name);
	if (status) {
		goto out;
	}
	if (!data) {
		status = verb_usage_error(ctx, "give the request body with --data JSON (or --data @FILE)");
		goto out;
	}
	if (route[0] != '/') {
		status = verb_usage_error(ctx, "--path wants a route starting with '/', like /score");
		goto out;
	}
	if (data[0] == '@') {
		size_t len;
		if (util_read_file(data + 1, &owned, &len) < 0) {
			fprintf(stderr, "runyard: cannot read %s: %s\n", data + 1, strerror(errno));
			status = VERB_EXIT_USAGE;
			goto out;
		}
		data = owned;
	}
	cJSON_AddStringToObject(args, "service", name);
	status = connect_call(ctx, "service.show", args, &svc);
	if (status) {
		goto out;
	}
	url = msg_strdupf("http://127.0.0.1:%lld%s", json_int(svc, "port", 0), route);
	if (!url) {
		status = VERB_EXIT_USAGE;
		goto out;
	}
	if (httppost_json(url, data, timeout, &body, err, sizeof(err)) < 0) {
		fprintf(stderr, "runyard: posting to %s failed: %s (service %s is %s; see "
				"'runyard service show %s')\n",
			url, err, name, json_str(svc, "state") ? json_str(svc, "state") : "?", name);
		status = VERB_EXIT_USAGE;
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
		status = status ? status : VERB_EXIT_REFUSED;
	}
out:
	free(body.body);
	free(url);
	free(owned);
	cJSON_Delete(svc);
	cJSON_Delete(args);
	return status;
}

static const struct verb service_invoke_entry = {
	.name = "invoke",
	.run = service_invoke_cb,
	.summary = "Post a request to a service",
	.usage = "Usage: runyard service invoke SVC --data JSON [--path /score] "
		 "[--timeout S] [--json]\n"
		 "\n"
		 "POST JSON (or @FILE) to the service and print its answer. Exits 2 when\n"
		 "the answer is not a success.\n"
		 "\n"
		 "  --path ROUTE  /score (default) or /invocations\n"
		 "  --json        print {\"status\", \"response\"}\n",
	.min_args = 1,
	.max_args = 1,
	.missing = "which service?",
};

static const struct verb *const service_verbs[] = {
	&service_list_entry,
	&service_show_entry,
	&service_logs_entry,
	&service_restart_entry,
	&service_delete_entry,
	&service_invoke_entry,
	NULL,
};

const struct verb cmd_service_entry = {
	.name = "service",
	.subverbs = service_verbs,
	.summary = "List, inspect, restart, delete and call deployed services",
	.usage = "Usage: runyard service list\n"
		 "       runyard service show SVC\n"
		 "       runyard service logs SVC [-f]\n"
		 "       runyard service restart SVC\n"
		 "       runyard service delete SVC\n"
		 "       runyard service invoke SVC --data JSON\n"
		 "\n"
		 "Each takes --json. See 'runyard help service logs' and so on.\n",
};

/* runyard model: register, list, show, download, delete and deploy models. */

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
	OPT_RUN = VERB_OPT_FIRST,
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
	OPT_PYTHON,
	OPT_ENTRY_SCRIPT,
	OPT_SOURCE,
	OPT_ENVIRONMENT,
	OPT_TIMEOUT,
	OPT_NO_WAIT,
};

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

/* --cpu N or --memory-gb G (optarg) into args' cpu or memory_gb. */
static int resource_option(struct ctx *ctx, int c, cJSON *args)
{
	double v;
	int status = verb_positive(ctx, c == OPT_CPU ? "--cpu" : "--memory-gb", optarg, &v);

	if (status == 0) {
		json_set(args, c == OPT_CPU ? "cpu" : "memory_gb", cJSON_CreateNumber(v));
	}
	return status;
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
		VERB_COMMON_OPTIONS,
		{0},
	};
	cJSON *args = cJSON_CreateObject(), *result = NULL;
	cJSON *tags = cJSON_CreateObject(), *props = cJSON_CreateObject();
	const char *run = NULL, *path = NULL, *file = NULL;
	char *abs = NULL, summary[256];
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
			json_set(args, "framework", cJSON_CreateString(optarg));
			break;
		case OPT_FRAMEWORK_VERSION:
			json_set(args, "framework_version", cJSON_CreateString(optarg));
			break;
		case OPT_CPU:
		case OPT_MEMORY_GB:
			status = resource_option(ctx, c, args);
			if (status) {
				goto out;
			}
			break;
		case OPT_TAG:
		case OPT_PROPERTY:
			status = verb_key_value(ctx, c == OPT_TAG ? tags : props, optarg,
					       c == OPT_TAG ? "tag" : "property");
			if (status) {
				goto out;
			}
			break;
		case OPT_DESCRIPTION:
			json_set(args, "description", cJSON_CreateString(optarg));
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
	if (!file == !(run || path) || (!file && !(run && path))) {
		status = verb_usage_error(ctx, "give --run RUN --path PATH (a run's output) or --file "
					  "LOCAL_PATH");
		goto out;
	}
	cJSON_AddStringToObject(args, "name", argv[optind]);
	if (file) {
		abs = realpath(file, NULL);
		if (!abs) {
			fprintf(stderr, "runyard: %s: %s\n", file, strerror(errno));
			status = VERB_EXIT_USAGE;
			goto out;
		}
		cJSON_AddStringToObject(args, "file", abs);
	} else {
		cJSON_AddStringToObject(args, "run", run);
		cJSON_AddStringToObject(args, "path", path);
	}
	json_set(args, "tags", tags);
	tags = NULL;
	json_set(args, "properties", props);
	props = NULL;
	status = connect_call(ctx, "model.register", args, &result);
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

static const struct verb model_register_entry = {
	.name = "register",
	.run = model_register_cb,
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
	.min_args = 1,
	.max_args = 1,
	.missing = "which name? give the model's name",
};

static int model_list_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {VERB_COMMON_OPTIONS, {0}};
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
	status = connect_call(ctx, "model.list", args, &result);
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
		status = VERB_EXIT_USAGE;
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

static const struct verb model_list_entry = {
	.name = "list",
	.run = model_list_cb,
	.summary = "List registered models",
	.usage = "Usage: runyard model list [NAME] [--json]\n"
		 "\n"
		 "List every version of every model, or of model NAME.\n",
	.max_args = 1,
};

static int model_show_cb(struct ctx *ctx, int argc, char **argv)
{
	cJSON *args = cJSON_CreateObject(), *m = NULL;
	const char *ref = NULL;
	const cJSON *f, *rc, *r;
	char created[32], size[32];
	double bytes = 0;
	int status = verb_simple(ctx, argc, argv, &ref);

	if (status) {
		goto out;
	}
	cJSON_AddStringToObject(args, "model", ref);
	status = connect_call(ctx, "model.show", args, &m);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(m);
		goto out;
	}
	printf("Model %s\n", json_str(m, "id"));
	print_field("Framework:", json_str(m, "framework") ? json_str(m, "framework") : "-");
	print_field("Version:", json_str(m, "framework_version") ? json_str(m, "framework_version")
							    : "-");
	rc = cJSON_GetObjectItemCaseSensitive(m, "resource_configuration");
	print_cpu_mem(rc, "cpu", "memory_in_gb");
	r = cJSON_GetObjectItemCaseSensitive(m, "run");
	if (cJSON_IsObject(r)) {
		char buf[512];
		snprintf(buf, sizeof(buf), "#%lld %s, %s", json_int(r, "seq", 0),
			 json_str(r, "id") ? json_str(r, "id") : "", json_str(m, "path"));
		print_field("From run:", buf);
	} else {
		print_field("From file:", json_str(m, "path"));
	}
	if (json_str(m, "description")) {
		print_field("About:", json_str(m, "description"));
	}
	render_time(json_str(m, "created_at"), created);
	print_field("Created:", created);
	print_key_values("Tags:", cJSON_GetObjectItemCaseSensitive(m, "tags"));
	print_key_values("Properties:", cJSON_GetObjectItemCaseSensitive(m, "properties"));
	const cJSON *svcs = cJSON_GetObjectItemCaseSensitive(m, "services");
	if (cJSON_GetArraySize(svcs) == 0) {
		print_field("Services:", "-");
	} else {
		const char *label = "Services:";
		cJSON_ArrayForEach(f, svcs) {
			print_field(label, cJSON_IsString(f) ? f->valuestring : "?");
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

static const struct verb model_show_entry = {
	.name = "show",
	.run = model_show_cb,
	.summary = "Show a model version",
	.usage = "Usage: runyard model show NAME[:VERSION] [--json]\n"
		 "\n"
		 "Show a model version (the latest when VERSION is left out): framework,\n"
		 "resources, origin, tags, properties, services and files.\n",
	.min_args = 1,
	.max_args = 1,
	.missing = "which model?",
};

static int model_download_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {VERB_COMMON_OPTIONS, {0}};
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
	cJSON_AddStringToObject(args, "model", argv[optind]);
	status = connect_call(ctx, "model.show", args, &m);
	if (status) {
		goto out;
	}
	/* Name the exact version, so a newer one registered meanwhile is not mixed in. */
	dl.run = json_str(m, "id");
	dl.dir = argv[optind + 1];
	if (!dl.run) {
		fprintf(stderr, "runyard: runyardd's model.show reply has no id\n");
		status = VERB_EXIT_REFUSED;
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

static const struct verb model_download_entry = {
	.name = "download",
	.run = model_download_cb,
	.summary = "Download a model's files",
	.usage = "Usage: runyard model download NAME[:VERSION] DIR [--json]\n"
		 "\n"
		 "Fetch the model's files into DIR (made if missing), checked against\n"
		 "their size and sha256.\n",
	.min_args = 2,
	.max_args = 2,
	.missing = "give the model (NAME[:VERSION]) and a directory",
	.too_many = "give the model (NAME[:VERSION]) and a directory",
};

static int model_delete_cb(struct ctx *ctx, int argc, char **argv)
{
	cJSON *args = cJSON_CreateObject(), *result = NULL;
	const char *ref = NULL;
	int status = verb_simple(ctx, argc, argv, &ref);

	if (status) {
		goto out;
	}
	cJSON_AddStringToObject(args, "model", ref);
	status = connect_call(ctx, "model.delete", args, &result);
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

static const struct verb model_delete_entry = {
	.name = "delete",
	.run = model_delete_cb,
	.summary = "Delete a model version",
	.usage = "Usage: runyard model delete NAME:VERSION [--json]\n"
		 "\n"
		 "Delete one version. Refused while a service serves it. Its version number\n"
		 "is never given again.\n",
	.min_args = 1,
	.max_args = 1,
	.missing = "which model (NAME:VERSION)?",
};

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
		{"cpu", required_argument, NULL, OPT_CPU},
		{"memory-gb", required_argument, NULL, OPT_MEMORY_GB},
		{"no-wait", no_argument, NULL, OPT_NO_WAIT},
		VERB_COMMON_OPTIONS,
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
			if (util_parse_int(optarg, 1, 65535, &port) < 0) {
				status = verb_usage_error(ctx, "--port wants a port from 1 to 65535, not '%s'",
						     optarg);
				goto out;
			}
			json_set(args, "port", cJSON_CreateNumber((double)port));
			break;
		case OPT_PYTHON:
			json_set(args, "python", cJSON_CreateString(optarg));
			break;
		case OPT_ENTRY_SCRIPT:
			script = optarg;
			break;
		case OPT_SOURCE:
			source = optarg;
			break;
		case OPT_ENVIRONMENT:
			json_set(args, "environment", cJSON_CreateString(optarg));
			break;
		case OPT_TIMEOUT:
			status = verb_positive(ctx, "--timeout", optarg, &timeout);
			if (status) {
				goto out;
			}
			json_set(args, "timeout", cJSON_CreateNumber(timeout));
			break;
		case OPT_CPU:
		case OPT_MEMORY_GB:
			status = resource_option(ctx, c, args);
			if (status) {
				goto out;
			}
			break;
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
	status = verb_args(ctx, argc, argv);
	if (status) {
		goto out;
	}
	if (!service) {
		status = verb_usage_error(ctx, "name the service with --service SVC");
		goto out;
	}
	if (source && !script) {
		status = verb_usage_error(ctx, "--source goes with --entry-script");
		goto out;
	}
	cJSON_AddStringToObject(args, "model", argv[optind]);
	cJSON_AddStringToObject(args, "service", service);
	cJSON_AddBoolToObject(args, "wait", wait);
	if (script) {
		abs = realpath(source ? source : ".", NULL);
		if (!abs) {
			fprintf(stderr, "runyard: %s: %s\n", source ? source : ".", strerror(errno));
			status = VERB_EXIT_USAGE;
			goto out;
		}
		cJSON_AddStringToObject(args, "entry_script", script);
		cJSON_AddStringToObject(args, "source", abs);
	}
	if (wait && render_stderr_tty() && !ctx->json) {
		fprintf(stderr, "Deploying %s to service %s ...\n", argv[optind], service);
	}
	status = connect_call(ctx, "model.deploy", args, &result);
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

static const struct verb model_deploy_entry = {
	.name = "deploy",
	.run = model_deploy_cb,
	.summary = "Serve a model as a local web service",
	.usage = "Usage: runyard model deploy NAME[:VERSION] --service SVC [--port N]\n"
		 "           [--python PATH | --environment NAME[:VERSION]]\n"
		 "           [--entry-script FILE [--source DIR]]\n"
		 "           [--cpu N] [--memory-gb G] [--timeout S] [--no-wait] [--json]\n"
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
		 "  --cpu N, --memory-gb G\n"
		 "                       what each instance is held to (default: the\n"
		 "                       model's ResourceConfiguration; none without one)\n"
		 "  --timeout S          seconds the server may take to be Healthy (120)\n"
		 "  --no-wait            return at once; see 'runyard service show'\n",
	.min_args = 1,
	.max_args = 1,
	.missing = "which model? give NAME or NAME:VERSION",
};

static const struct verb *const model_verbs[] = {
	&model_register_entry,
	&model_list_entry,
	&model_show_entry,
	&model_download_entry,
	&model_delete_entry,
	&model_deploy_entry,
	NULL,
};

const struct verb cmd_model_entry = {
	.name = "model",
	.subverbs = model_verbs,
	.summary = "Register, list, download, delete and deploy models",
	.usage = "Usage: runyard model register NAME (--run RUN --path PATH | --file LOCAL) ...\n"
		 "       runyard model list [NAME]\n"
		 "       runyard model show NAME[:VERSION]\n"
		 "       runyard model download NAME[:VERSION] DIR\n"
		 "       runyard model delete NAME:VERSION\n"
		 "       runyard model deploy NAME[:VERSION] --service SVC ...\n"
		 "\n"
		 "Each takes --json. See 'runyard help model register' and so on.\n",
};

/* The one dispatcher: finds an entry by name, descends into groups, checks arity and prints help. */
#include "verb.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "msg.h"

static const struct verb *find(const struct verb *const *table, const char *name)
{
	for (size_t i = 0; table[i]; i++) {
		if (strcmp(table[i]->name, name) == 0) {
			return table[i];
		}
	}
	return NULL;
}

static bool is_help(const char *arg)
{
	return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

__attribute__((format(printf, 2, 3))) int verb_usage_error(struct ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	fputs("runyard: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see 'runyard %s --help')\n", ctx->name);
	return VERB_EXIT_USAGE;
}

int verb_option_error(struct ctx *ctx, int c, char **argv, const struct option *options)
{
	const char *arg = argv[optind - 1];
	size_t n;

	if (c == ':') {
		return verb_usage_error(ctx, "option '%s' needs a value", arg);
	}
	if (strncmp(arg, "--", 2) != 0) {
		return verb_usage_error(ctx, "unknown option '-%c'", optopt);
	}
	n = strcspn(arg + 2, "=");
	for (const struct option *o = options; o->name; o++) {
		if (strlen(o->name) == n && strncmp(o->name, arg + 2, n) == 0) {
			return verb_usage_error(ctx, "option '--%s' takes no value", o->name);
		}
	}
	return verb_usage_error(ctx, "unknown option '%.*s'", (int)n + 2, arg);
}

int verb_args(struct ctx *ctx, int argc, char **argv)
{
	const struct verb *v = ctx->verb;
	int n = argc - optind;

	if (n < v->min_args) {
		return verb_usage_error(ctx, "%s", v->missing ? v->missing : "missing argument");
	}
	if (v->max_args != VERB_ANY && n > v->max_args) {
		if (v->too_many) {
			return verb_usage_error(ctx, "%s", v->too_many);
		}
		return verb_usage_error(ctx, "unexpected argument '%s'", argv[optind + v->max_args]);
	}
	return 0;
}

int verb_arg(struct ctx *ctx, int argc, char **argv, const char **ret_arg)
{
	int status = verb_args(ctx, argc, argv);

	if (status) {
		return status;
	}
	*ret_arg = optind < argc ? argv[optind] : NULL;
	return 0;
}

int verb_simple(struct ctx *ctx, int argc, char **argv, const char **ret_arg)
{
	static const struct option options[] = {VERB_COMMON_OPTIONS, {0}};
	int c;

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
	return verb_arg(ctx, argc, argv, ret_arg);
}

int verb_key_value(struct ctx *ctx, cJSON *obj, const char *arg, const char *what)
{
	const char *eq = strchr(arg, '=');
	char *key;

	if (!eq || eq == arg) {
		return verb_usage_error(ctx, "'%s' is not KEY=VALUE (a %s)", arg, what);
	}
	key = strndup(arg, (size_t)(eq - arg));
	if (!key) {
		return VERB_EXIT_USAGE;
	}
	cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
	cJSON_AddItemToObject(obj, key, cJSON_CreateString(eq + 1));
	free(key);
	return 0;
}

int verb_positive(struct ctx *ctx, const char *opt, const char *s, double *ret)
{
	char *end;
	double v = strtod(s, &end);

	if (!*s || *end || !(v > 0) || v > 1e9) {
		return verb_usage_error(ctx, "%s wants a number above 0, not '%s'", opt, s);
	}
	*ret = v;
	return 0;
}

/* Run entry v, named argv[0]: a verb runs with a fresh getopt state; a
 * group takes its sub-verb from argv[1], or prints its usage for --help. */
static int dispatch(struct ctx *ctx, const struct verb *v, int argc, char **argv)
{
	const struct verb *sub;
	char *name;
	int status;

	ctx->verb = v;
	if (!v->subverbs) {
		optind = 0;
		opterr = 0;
		status = v->run(ctx, argc, argv);
		if (status == VERB_HELP) {
			fputs(v->usage, stdout);
			status = VERB_EXIT_OK;
		}
		return status;
	}
	if (argc < 2) {
		if (v->missing) {
			return verb_usage_error(ctx, "%s", v->missing);
		}
		fputs(v->usage, stderr);
		return VERB_EXIT_USAGE;
	}
	if (is_help(argv[1])) {
		fputs(v->usage, stdout);
		return VERB_EXIT_OK;
	}
	sub = find(v->subverbs, argv[1]);
	if (!sub) {
		return verb_usage_error(ctx, "unknown %s command '%s'", ctx->name, argv[1]);
	}
	name = msg_strdupf("%s %s", ctx->name, sub->name);
	if (!name) {
		return VERB_EXIT_USAGE;
	}
	free(ctx->name);
	ctx->name = name;
	return dispatch(ctx, sub, argc - 1, argv + 1);
}

int verb_run(const struct verb *const *root, const struct verb_options *opts, int argc,
	     char **argv)
{
	struct ctx ctx = {.opts = opts, .root = root, .json = opts->json};
	const struct verb *v = find(root, argv[0]);
	int status;

	if (!v) {
		fprintf(stderr, "runyard: unknown command '%s' (see 'runyard --help')\n", argv[0]);
		return VERB_EXIT_USAGE;
	}
	ctx.name = strdup(v->name);
	if (!ctx.name) {
		return VERB_EXIT_USAGE;
	}
	status = dispatch(&ctx, v, argc, argv);
	client_destroy(ctx.client);
	free(ctx.socket);
	free(ctx.name);
	return status;
}

void verb_print_overview(const struct verb *const *root, FILE *out)
{
	fprintf(out, "Usage: runyard [--socket PATH] COMMAND [OPTIONS] [ARGS...]\n"
		     "\n"
		     "Submit, follow and inspect runs on a local runyardd.\n"
		     "\n"
		     "Commands:\n");
	for (size_t i = 0; root[i]; i++) {
		fprintf(out, "  %-12s %s\n", root[i]->name, root[i]->summary);
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

/* help [COMMAND [SUBCOMMAND]]: the usage of the entry the names lead to,
 * through the same tables the dispatcher walks. */
static int help_cb(struct ctx *ctx, int argc, char **argv)
{
	const struct verb *v;

	if (argc < 2) {
		verb_print_overview(ctx->root, stdout);
		return VERB_EXIT_OK;
	}
	if (is_help(argv[1])) {
		return VERB_HELP;
	}
	v = find(ctx->root, argv[1]);
	if (!v) {
		fprintf(stderr, "runyard: unknown command '%s' (see 'runyard --help')\n", argv[1]);
		return VERB_EXIT_USAGE;
	}
	for (int i = 2; i < argc && v->subverbs; i++) {
		const struct verb *sub = find(v->subverbs, argv[i]);
		if (!sub) {
			fprintf(stderr,
				"runyard: unknown %s command '%s' (see 'runyard %s --help')\n",
				v->name, argv[i], v->name);
			return VERB_EXIT_USAGE;
		}
		v = sub;
	}
	fputs(v->usage, stdout);
	return VERB_EXIT_OK;
}

const struct verb verb_help_entry = {
	.name = "help",
	.run = help_cb,
	.summary = "Show help for a command",
	.usage = "Usage: runyard help [COMMAND [SUBCOMMAND]]\n",
	.max_args = VERB_ANY,
};

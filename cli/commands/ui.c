/* runyard ui: the web view's address, the daemon listening first when it
 * was not (docs/web.md). */
#include "commands.h"

#include <fcntl.h>
#include <getopt.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "connect.h"
#include "json.h"
#include "print.h"
#include "util.h"

extern char **environ;

/* Start a browser on url, without waiting for it; false when there is none. */
static bool open_browser(const char *url)
{
	const char *env = getenv("BROWSER");
	const char *const tools[] = {env && *env ? env : NULL, "xdg-open", "sensible-browser",
				     "chromium", "firefox", NULL};
	posix_spawn_file_actions_t fa;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
	for (size_t i = env && *env ? 0 : 1; tools[i]; i++) {
		char *argv[] = {(char *)tools[i], (char *)url, NULL};
		pid_t pid;
		if (posix_spawnp(&pid, tools[i], &fa, NULL, argv, environ) == 0) {
			posix_spawn_file_actions_destroy(&fa);
			return true;
		}
	}
	posix_spawn_file_actions_destroy(&fa);
	return false;
}

static int ui_cb(struct ctx *ctx, int argc, char **argv)
{
	enum { OPT_PORT = VERB_OPT_FIRST, OPT_OPEN };
	static const struct option options[] = {
		{"port", required_argument, NULL, OPT_PORT},
		{"open", no_argument, NULL, OPT_OPEN},
		VERB_COMMON_OPTIONS,
		{0},
	};
	cJSON *args = cJSON_CreateObject(), *result = NULL;
	bool open = false;
	long long port;
	int status = 0, c;

	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPT_PORT:
			if (util_parse_int(optarg, 0, 65535, &port) < 0) {
				status = verb_usage_error(ctx, "--port wants a port from 0 to 65535, "
							  "not '%s'",
							  optarg);
				goto out;
			}
			json_set(args, "port", cJSON_CreateNumber((double)port));
			break;
		case OPT_OPEN:
			open = true;
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
	status = connect_call(ctx, "daemon.ui", args, &result);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(result);
	} else {
		printf("%s\n", json_str(result, "login_url"));
	}
	if (open && !open_browser(json_str(result, "login_url"))) {
		fprintf(stderr, "runyard: no browser to open it with (set BROWSER); open the "
				"address above\n");
	}
out:
	cJSON_Delete(result);
	cJSON_Delete(args);
	return status;
}

const struct verb cmd_ui_entry = {
	.name = "ui",
	.run = ui_cb,
	.summary = "Print (and open) the web view's address",
	.usage = "Usage: runyard ui [--port N] [--open] [--json]\n"
		 "\n"
		 "Print the address of the web view of the run history: runs, live logs,\n"
		 "metric charts, sweeps, models. The daemon starts listening on 127.0.0.1\n"
		 "first when it was not (runyardd --http ADDR:PORT listens from the start).\n"
		 "The address carries the access token once; the browser keeps it in a\n"
		 "cookie. Keep it to yourself: it lets whoever has it see and cancel runs.\n"
		 "\n"
		 "  --port N   the port to listen on when not listening yet (default: a\n"
		 "             free one)\n"
		 "  --open     start a browser on it ($BROWSER, xdg-open, ...)\n",
};

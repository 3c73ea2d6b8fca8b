/* A verb's connection to runyardd: the socket, autostart, calls, and saying why one failed. */
#include "connect.h"

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

#include "client.h"
#include "launch.h"
#include "print.h"
#include "proto.h"
#include "verb.h"

static const char *hint_for(const char *op, const char *code)
{
	static const struct {
		const char *op; /* NULL: any */
		const char *code;
		const char *hint;
	} hints[] = {
		{"artifact.read", PROTO_E_NOT_FOUND, "list the run's outputs with 'runyard outputs RUN'"},
		{NULL, PROTO_E_NOT_FOUND, "list runs with 'runyard runs'"},
		{"run.cancel", PROTO_E_CONFLICT, "see how it ended with 'runyard show RUN'"},
		{"run.submit", PROTO_E_TOO_LARGE,
		 "leave out what the run does not need with patterns in .amlignore (or .gitignore) "
		 "in the source directory"},
		{"run.submit", PROTO_E_PERMISSION,
		 "make the files readable, or leave them out with patterns in .amlignore"},
		{NULL, PROTO_E_SHUTTING_DOWN,
		 "runyardd is stopping; start it again with 'runyard daemon start'"},
		{NULL, PROTO_E_VERSION_MISMATCH, "use the runyard that came with this runyardd"},
		{NULL, PROTO_E_UNKNOWN_OP,
		 "runyardd is older than this runyard; restart it with 'runyard daemon stop' and "
		 "'runyard daemon start'"},
		{NULL, PROTO_E_INTERNAL, "see runyardd's log (runyardd.log in its state directory)"},
	};

	for (size_t i = 0; i < sizeof(hints) / sizeof(hints[0]); i++) {
		if ((!hints[i].op || (op && strcmp(op, hints[i].op) == 0)) &&
		    strcmp(code, hints[i].code) == 0) {
			return hints[i].hint;
		}
	}
	return NULL;
}

/* Say why a call failed; returns the exit status that goes with it. */
int connect_report(const char *op, const struct client_error *err, int r)
{
	const char *message = err->message ? err->message : strerror(-r);

	if (r != -EREMOTEIO || !err->code) {
		fprintf(stderr, "runyard: %s\n", message);
		return VERB_EXIT_USAGE;
	}
	fprintf(stderr, "runyard: %s (%s)\n", message, err->code);
	const char *hint = hint_for(op, err->code);
	/* The daemon's message may already say which command to run next. */
	if (hint && !strstr(message, "'runyard ")) {
		fprintf(stderr, "runyard: hint: %s\n", hint);
	}
	return VERB_EXIT_REFUSED;
}

bool connect_absent(int r)
{
	return r == -ENOENT || r == -ECONNREFUSED;
}

int connect_report_failure(const struct client_error *err, int r)
{
	const char *hint = NULL;

	if (r == -EREMOTEIO) {
		return connect_report("hello", err, r);
	}
	if (connect_absent(r)) {
		hint = "is the daemon running? start it with 'runyard daemon start'";
	} else if (r == -EACCES || r == -EPERM) {
		hint = "is the socket another user's? pass --socket PATH or set RUNYARD_SOCKET";
	}
	fprintf(stderr, "runyard: %s%s%s%s\n", err->message ? err->message : strerror(-r),
		hint ? " (" : "", hint ? hint : "", hint ? ")" : "");
	return VERB_EXIT_USAGE;
}

int connect_socket(struct ctx *ctx)
{
	int r;

	if (ctx->socket) {
		return 0;
	}
	r = client_socket_path(ctx->opts->socket, &ctx->socket);
	if (r < 0) {
		fprintf(stderr,
			"runyard: cannot tell where runyardd's socket is: no home directory "
			"(pass --socket PATH or set RUNYARD_SOCKET)\n");
		return VERB_EXIT_USAGE;
	}
	return 0;
}

/* Whether runyard's user units are active: then the service manager, not
 * the CLI, decides when the daemon runs. */
static bool unit_active(void)
{
	pid_t pid = fork();
	int status;

	if (pid < 0) {
		return false;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
		}
		execlp("systemctl", "systemctl", "--user", "--quiet", "is-active", "runyard.socket",
		       "runyard.service", (char *)NULL);
		_exit(127);
	}
	return waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* First use: no daemon answers at the default socket, so start one for the
 * user and say so once. Only for the default socket: a socket named with
 * --socket or RUNYARD_SOCKET is someone's deliberate choice. Returns 0 when
 * a daemon was started, -1 when autostart does not apply, else an exit
 * status. */
static int autostart(struct ctx *ctx)
{
	const char *off = getenv("RUNYARD_NO_AUTOSTART");
	long long pid = 0;
	int status;

	if (ctx->opts->socket || getenv("RUNYARD_SOCKET") || (off && *off && strcmp(off, "0")) ||
	    strncmp(ctx->name, "daemon", 6) == 0 || unit_active()) {
		return -1;
	}
	status = launch_daemon(ctx, NULL, NULL, NULL, NULL, &pid);
	if (status) {
		return status;
	}
	fprintf(stderr, "runyard: started runyardd in the background (pid %lld, socket %s); set "
			"RUNYARD_NO_AUTOSTART=1 to turn this off\n",
		pid, ctx->socket);
	return 0;
}

int connect_daemon(struct ctx *ctx)
{
	struct client_error err = {0};
	int status, r;

	if (ctx->client) {
		return 0;
	}
	status = connect_socket(ctx);
	if (status) {
		return status;
	}
	r = client_connect(ctx->socket, &ctx->client, &err);
	if (r < 0 && connect_absent(r)) {
		status = autostart(ctx);
		if (status > 0) {
			client_error_finish(&err);
			return status;
		}
		if (status == 0) {
			client_error_finish(&err);
			r = client_connect(ctx->socket, &ctx->client, &err);
		}
	}
	status = r < 0 ? connect_report_failure(&err, r) : 0;
	client_error_finish(&err);
	return status;
}

/* Call op; on failure say why and return the exit status, else 0. */
int connect_call(struct ctx *ctx, const char *op, const cJSON *args, cJSON **ret_result)
{
	struct client_error err = {0};
	int status = connect_daemon(ctx);
	int r;

	if (status) {
		return status;
	}
	r = client_call(ctx->client, op, args, ret_result, &err);
	status = r < 0 ? connect_report(op, &err, r) : 0;
	client_error_finish(&err);
	return status;
}

int connect_list(struct ctx *ctx, const char *op, const cJSON *args, const char *key,
		 const char *none, cJSON **ret_result, const cJSON **ret_items)
{
	const cJSON *items;
	int status = connect_call(ctx, op, args, ret_result);

	*ret_items = NULL;
	if (status) {
		return status;
	}
	if (ctx->json) {
		return print_json(*ret_result);
	}
	items = cJSON_GetObjectItemCaseSensitive(*ret_result, key);
	if (cJSON_GetArraySize(items) == 0) {
		printf("%s\n", none);
		return 0;
	}
	*ret_items = items;
	return 0;
}

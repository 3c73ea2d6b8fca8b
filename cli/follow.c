/* Following a run: its lines as they come, its end, and the summary of how it ended. */
#include "follow.h"

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
#include "connect.h"
#include "json.h"
#include "print.h"
#include "render.h"
#include "util.h"
#include "verb.h"

static int print_line(struct follow *f, const cJSON *line)
{
	const char *text = json_str(line, "text");
	double seq;

	/* The protocol promises no repeats; a daemon that broke the promise
	 * must not make us print a line twice. */
	if (json_num(line, "seq", &seq)) {
		if (seq <= f->last_seq) {
			return 0;
		}
		f->last_seq = seq;
	}
	f->printed++;
	if (f->json_lines) {
		return render_json_array_add(f->json_lines, line);
	}
	if (f->timestamps) {
		const char *ts = json_str(line, "ts");
		fputs(ts ? ts : "-", f->out);
		fputc(' ', f->out);
	}
	fputs(render_log_prefix(line), f->out);
	if (text) {
		fputs(text, f->out);
	}
	fputc('\n', f->out);
	return 0;
}

int follow_print_lines(struct follow *f, const cJSON *lines)
{
	const cJSON *line;

	cJSON_ArrayForEach(line, lines) {
		if (print_line(f, line) < 0) {
			fprintf(stderr, "runyard: out of memory printing log lines\n");
			return VERB_EXIT_USAGE;
		}
	}
	return 0;
}

/* Watch f->run until it ends, printing its lines when f->logs. Returns 0
 * with the final run object in *ret_run, or an exit status after saying
 * why (1 also when f->timeout passed first). */
int follow_run(struct ctx *ctx, struct follow *f, cJSON **ret_run)
{
	struct client_error err = {0};
	cJSON *args = cJSON_CreateObject();
	cJSON *result = NULL, *ev = NULL;
	const cJSON *run;
	char *status_now = NULL;
	/* A timeout of more than 30 years is as good as none. */
	int64_t deadline = f->timeout > 0 && f->timeout < 1e9
				   ? util_now_ms() + (int64_t)(f->timeout * 1000)
				   : -1;
	long long seq;
	double sub;
	int status, r;

	cJSON_AddStringToObject(args, "run", f->run);
	cJSON_AddBoolToObject(args, "logs", f->logs);
	if (f->stream) {
		cJSON_AddStringToObject(args, "stream", f->stream);
	}
	status = connect_call(ctx, "run.watch", args, &result);
	if (status) {
		goto out;
	}
	run = cJSON_GetObjectItemCaseSensitive(result, "run");
	seq = json_int(run, "seq", 0);
	status_now = strdup(json_str(run, "status") ? json_str(run, "status") : "unknown");
	if (!json_num(result, "sub", &sub) || !status_now) {
		fprintf(stderr, "runyard: runyardd's run.watch reply has no subscription\n");
		status = VERB_EXIT_REFUSED;
		goto out;
	}
	for (;;) {
		int wait_ms = -1;
		cJSON *data;
		const char *name;
		double evsub;

		/* Flush only when nothing more is ready: one write per burst of
		 * lines, not per line, yet a slow run's output shows at once. */
		if (!client_event_pending(ctx->client)) {
			fflush(f->out);
		}
		if (deadline >= 0) {
			int64_t left = deadline - util_now_ms();
			wait_ms = left > 0 ? (left > INT_MAX ? INT_MAX : (int)left) : 0;
		}
		r = client_next_event(ctx->client, wait_ms, &ev, &err);
		if (r < 0) {
			status = connect_report("run.watch", &err, r);
			goto out;
		}
		if (r == 0) {
			char d[32];
			render_duration(f->timeout, d);
			fflush(f->out);
			fprintf(stderr,
				"runyard: run #%lld is still %s after %s; stopped waiting (the run "
				"goes on: 'runyard wait %lld' waits again)\n",
				seq, status_now, d, seq);
			status = VERB_EXIT_USAGE;
			goto out;
		}
		name = json_str(ev, "event");
		data = cJSON_GetObjectItemCaseSensitive(ev, "data");
		if (!name || !json_num(ev, "sub", &evsub) || evsub != sub) {
			cJSON_Delete(ev);
			ev = NULL;
			continue;
		}
		if (strcmp(name, "run.log") == 0) {
			status = follow_print_lines(f, cJSON_GetObjectItemCaseSensitive(data, "lines"));
			if (status) {
				goto out;
			}
		} else if (strcmp(name, "run.status") == 0 && json_str(data, "status")) {
			char *s = strdup(json_str(data, "status"));
			if (s) {
				free(status_now);
				status_now = s;
			}
		} else if (strcmp(name, "run.end") == 0) {
			cJSON *final = cJSON_DetachItemFromObjectCaseSensitive(data, "run");
			if (!cJSON_IsObject(final)) {
				cJSON_Delete(final);
				fprintf(stderr, "runyard: runyardd's run.end event has no run\n");
				status = VERB_EXIT_REFUSED;
				goto out;
			}
			*ret_run = final;
			break;
		}
		cJSON_Delete(ev);
		ev = NULL;
	}
	fflush(f->out);
	status = 0;
out:
	cJSON_Delete(ev);
	cJSON_Delete(result);
	cJSON_Delete(args);
	free(status_now);
	client_error_finish(&err);
	return status;
}

static void print_summary(const cJSON *run)
{
	const char *status = json_str(run, "status");
	const cJSON *error = cJSON_GetObjectItemCaseSensitive(run, "error");
	double duration = -1;
	char d[32];

	json_num(run, "duration", &duration);
	render_duration(duration, d);
	printf("Execution Summary\n=================\n");
	printf("RunId: %s (#%lld)\n", json_str(run, "id") ? json_str(run, "id") : "?",
	       json_int(run, "seq", 0));
	printf("Status: %s%s%s\n", render_status_color(status), status ? status : "?",
	       render_status_color(status)[0] ? render_color_reset() : "");
	printf("Duration: %s\n", d);
	if (cJSON_IsObject(error)) {
		const char *stage = json_str(error, "stage");
		printf("Error: %s: %s", json_str(error, "code") ? json_str(error, "code") : "?",
		       json_str(error, "message") ? json_str(error, "message") : "");
		if (stage) {
			printf(" (stage %s)", stage);
		}
		putchar('\n');
	}
}

/* Wait for a run and report how it ended: shared by wait and submit --wait. */
int follow_wait(struct ctx *ctx, const char *run, bool show_output, double timeout)
{
	/* With --json stdout holds only the final document, so shown output
	 * goes to stderr. */
	struct follow f = {
		.run = run,
		.logs = show_output,
		.out = ctx->json ? stderr : stdout,
		.timeout = timeout,
	};
	cJSON *final = NULL;
	int status = follow_run(ctx, &f, &final);

	if (status) {
		return status;
	}
	if (ctx->json) {
		status = print_json(final);
	} else {
		if (f.printed > 0) {
			putchar('\n');
		}
		print_summary(final);
	}
	if (!status && strcmp(json_str(final, "status") ? json_str(final, "status") : "",
			      "Completed") != 0) {
		status = VERB_EXIT_REFUSED;
	}
	cJSON_Delete(final);
	return status;
}

/* Page through the stored lines with run.logs until there are no more. */
int follow_page(struct ctx *ctx, struct follow *f)
{
	cJSON *args = cJSON_CreateObject(), *result = NULL;
	double after = 0;
	int status = 0;

	cJSON_AddStringToObject(args, "run", f->run);
	if (f->stream) {
		cJSON_AddStringToObject(args, "stream", f->stream);
	}
	for (;;) {
		double next;

		json_set(args, "after_seq", cJSON_CreateNumber(after));
		status = connect_call(ctx, "run.logs", args, &result);
		if (status) {
			goto out;
		}
		status = follow_print_lines(f, cJSON_GetObjectItemCaseSensitive(result, "lines"));
		if (status) {
			goto out;
		}
		if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(result, "more"))) {
			break;
		}
		/* A next_seq that does not move on would loop for ever. */
		if (!json_num(result, "next_seq", &next) || next <= after) {
			fprintf(stderr, "runyard: runyardd's run.logs reply does not move on "
					"(next_seq)\n");
			status = VERB_EXIT_REFUSED;
			goto out;
		}
		after = next;
		cJSON_Delete(result);
		result = NULL;
	}
out:
	cJSON_Delete(result);
	cJSON_Delete(args);
	return status;
}

/* Followers of runs (run.watch): each watch is sent its run's status
 * changes and, from the store, every line it is owed, in order, exactly
 * once. A watch whose connection is congested is skipped until the
 * connection drains and then catches up from the store, so a slow follower
 * neither slows a run nor grows the daemon's memory. */
#include "watch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"
#include "log.h"
#include "logs.h"
#include "msg.h"
#include "run.h"
#include "server.h"
#include "store.h"

/* Text per pushed event, so events stay well under the frame limit. */
#define EVENT_TEXT_MAX (256 * 1024)
#define EVENT_LINES_MAX 4096

struct watch {
	struct watch *next;
	struct conn *conn;
	int64_t sub;
	int64_t seq;
	char *run_id;
	bool logs;
	char stream;
	int64_t next_seq; /* first line not yet sent */
	bool done;
};

struct watchers {
	struct watch *head;
	int64_t next_sub;
};

int watch_init(struct daemon *d)
{
	d->watchers = calloc(1, sizeof(*d->watchers));
	return d->watchers ? 0 : -ENOMEM;
}


static void free_watch(struct watch *w)
{
	free(w->run_id);
	free(w);
}

static void send_event(struct watch *w, const char *name, cJSON *data)
{
	cJSON *ev = msg_event(name, w->sub, data);

	conn_send(w->conn, ev);
	cJSON_Delete(ev);
}

/* Lines the watch has not had yet, up to the run's stored count. */
static int64_t stored_lines(struct daemon *d, int64_t seq, bool *ret_terminal)
{
	struct run *r = run_find(d, seq);

	if (r) {
		*ret_terminal = false;
		return r->log_lines;
	}
	*ret_terminal = true;
	return INT64_MAX;
}

/* Send the watch what it is owed, from the store, while its connection is
 * not congested; finish it with run.end once the run is over and every
 * line is out. */
static void pump(struct daemon *d, struct watch *w)
{
	bool terminal;

	while (!w->done && !conn_closing(w->conn) && !conn_congested(w->conn)) {
		int64_t have = stored_lines(d, w->seq, &terminal);
		if (w->logs && w->next_seq <= have) {
			cJSON *lines = NULL;
			int64_t last;
			bool full;
			int r = logs_collect_json(d, w->seq, w->next_seq - 1, EVENT_LINES_MAX,
						  EVENT_TEXT_MAX, w->stream, &lines, &last, &full);
			if (r < 0) {
				log_error("reading the log of run %s for a watcher failed: %s",
				          w->run_id, store_errmsg(d->store));
				return;
			}
			if (last >= w->next_seq) {
				w->next_seq = last + 1;
				if (cJSON_GetArraySize(lines) > 0) {
					cJSON *data = cJSON_CreateObject();
					cJSON_AddStringToObject(data, "run", w->run_id);
					cJSON_AddItemToObject(data, "lines", lines);
					send_event(w, "run.log", data);
				} else {
					cJSON_Delete(lines);
				}
				continue;
			}
			cJSON_Delete(lines);
		}
		if (terminal) {
			cJSON *run = NULL;
			cJSON *data = cJSON_CreateObject();
			if (store_run_json(d->store, w->seq, true, &run) == 0) {
				cJSON_AddItemToObject(data, "run", run);
			}
			send_event(w, "run.end", data);
			w->done = true;
		}
		break;
	}
}

/* Remove finished watches (done, or of a closing connection). */
static void sweep(struct daemon *d)
{
	for (struct watch **pp = &d->watchers->head; *pp;) {
		struct watch *w = *pp;
		if (w->done) {
			*pp = w->next;
			free_watch(w);
		} else {
			pp = &w->next;
		}
	}
}

int watch_add(struct daemon *d, struct conn *c, int64_t seq, const char *run_id, bool logs,
                   char stream, int64_t after_seq, int64_t *ret_sub)
{
	struct watch *w = calloc(1, sizeof(*w));

	if (!w || !(w->run_id = strdup(run_id))) {
		free(w);
		return -ENOMEM;
	}
	w->conn = c;
	w->sub = ++d->watchers->next_sub;
	w->seq = seq;
	w->logs = logs;
	w->stream = stream;
	w->next_seq = after_seq + 1;
	w->next = d->watchers->head;
	d->watchers->head = w;
	*ret_sub = w->sub;
	return 0;
}

void watch_start(struct daemon *d, int64_t sub)
{
	for (struct watch *w = d->watchers->head; w; w = w->next) {
		if (w->sub == sub) {
			pump(d, w);
		}
	}
	sweep(d);
}

int watch_remove(struct daemon *d, struct conn *c, int64_t sub)
{
	for (struct watch *w = d->watchers->head; w; w = w->next) {
		if (w->sub == sub && w->conn == c && !w->done) {
			w->done = true;
			sweep(d);
			return 0;
		}
	}
	return -ENOENT;
}

static void notify_status(struct daemon *d, int64_t seq, const char *status, double at)
{
	for (struct watch *w = d->watchers->head; w; w = w->next) {
		if (w->seq == seq && !w->done) {
			cJSON *data = cJSON_CreateObject();
			cJSON_AddStringToObject(data, "run", w->run_id);
			cJSON_AddStringToObject(data, "status", status);
			msg_add_time(data, "at", at);
			send_event(w, "run.status", data);
		}
	}
}

static void pump_where(struct daemon *d, int64_t seq, const struct conn *c)
{
	for (struct watch *w = d->watchers->head; w; w = w->next) {
		if ((seq < 0 || w->seq == seq) && (!c || w->conn == c)) {
			pump(d, w);
		}
	}
	sweep(d);
}

void watch_run_event(void *ud, struct run *r, enum run_event ev)
{
	struct daemon *d = ud;

	switch (ev) {
	case RUN_EV_STATUS:
		notify_status(d, r->seq, run_status_name(r->status), r->status_at);
		break;
	case RUN_EV_LOG:
	case RUN_EV_ENDED:
		/* New lines to send, or the end: run.end once every line is out. */
		pump_where(d, r->seq, NULL);
		break;
	case RUN_EV_METRIC:
	case RUN_EV_REQUEUED:
		break;
	}
}

void watch_conn_drained(struct daemon *d, struct conn *c)
{
	pump_where(d, -1, c);
}

void watch_conn_closed(struct daemon *d, struct conn *c)
{
	for (struct watch *w = d->watchers->head; w; w = w->next) {
		if (w->conn == c) {
			w->done = true;
		}
	}
	sweep(d);
}

void watch_clear(struct daemon *d)
{
	for (struct watch *w = d->watchers->head; w; w = w->next) {
		w->done = true;
	}
	sweep(d);
}

void watch_finish(struct daemon *d)
{
	if (d->watchers) {
		watch_clear(d);
		free(d->watchers);
		d->watchers = NULL;
	}
}

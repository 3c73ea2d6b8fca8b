/* The web view's JSON API (docs/web.md): runs in keyset pages, one run,
 * its log in pages and live (Server-Sent Events), its metric series
 * drawn in a bounded number of points, its outputs, a sweep's children,
 * experiments, models and services, and cancel. The objects are the
 * protocol's, so a script reads the same fields as runyard --json prints.
 *
 * A live log is pulled, not pushed: the listener asks for bytes only as
 * the socket takes them, a tail reads the next lines from the store then,
 * and with nothing new it waits, suspended, until a run event wakes it. So
 * a slow reader holds at most one batch of lines here, like a follower of
 * run.watch. */
#include "web_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blob.h"
#include "context.h"
#include "exec.h"
#include "logs.h"
#include "models.h"
#include "msg.h"
#include "run.h"
#include "services.h"
#include "snapshot.h"
#include "store.h"
#include "sweep.h"

/* Runs a page, by default and at most. */
#define PAGE_DEFAULT 50
#define PAGE_MAX 500
/* Log lines a page, by default and at most; bytes of text a tail batch. */
#define LINES_DEFAULT 1000
#define LINES_MAX 10000
#define TAIL_BATCH_LINES 500
#define TAIL_BATCH_TEXT (256 * 1024)
/* Points a chart, by default and at most. */
#define POINTS_DEFAULT 500
#define POINTS_MAX 2000
/* Files of a snapshot listing, by default and at most. */
#define SNAPSHOT_FILES_DEFAULT 1000
#define SNAPSHOT_FILES_MAX 10000

struct web_tail {
	struct web *w;
	struct web_tail *prev, *next;
	struct httpd_stream *stream;
	int64_t seq;
	int64_t after; /* the last line sent */
	char *out;     /* formatted events not yet taken by the socket */
	size_t len, off;
	bool ended; /* the end event is in out */
	bool ping;  /* a heartbeat is due */
};

/* An integer query argument in [lo, hi], or def; false (answered 400)
 * when it is not one. */
static bool arg_int(struct httpd_req *r, const char *name, int64_t lo, int64_t hi, int64_t def,
		    int64_t *ret)
{
	const char *v = httpd_arg(r, name);
	char *end;

	*ret = def;
	if (!v || !*v) {
		return true;
	}
	errno = 0;
	long long n = strtoll(v, &end, 10);
	if (errno || *end || n < lo || n > hi) {
		httpd_reply_error(r, 400, "InvalidArgument",
				  "'%s' must be a whole number from %" PRId64 " to %" PRId64, name,
				  lo, hi);
		return false;
	}
	*ret = n;
	return true;
}

/* The run a segment names (an id or a number); false (answered 404). */
static bool find_run(struct web *w, struct httpd_req *r, const char *ref, int64_t *ret)
{
	if (store_run_resolve(w->d->store, ref, ret) < 0) {
		httpd_reply_error(r, 404, "NotFound", "no run '%s'", ref);
		return false;
	}
	return true;
}

static void reply_store_error(struct web *w, struct httpd_req *r, int err)
{
	if (err == -ENOMEM) {
		httpd_reply_error(r, 500, "Internal", "out of memory");
	} else {
		httpd_reply_error(r, 500, "Internal", "reading the history failed: %s",
				  store_errmsg(w->d->store));
	}
}

/* {key: value} with value taken; NULL value: a store failure. */
static void reply_wrapped(struct web *w, struct httpd_req *r, const char *key, cJSON *value,
			  int err)
{
	if (err < 0 || !value) {
		cJSON_Delete(value);
		reply_store_error(w, r, err < 0 ? err : -ENOMEM);
		return;
	}
	cJSON *o = cJSON_CreateObject();
	cJSON_AddItemToObject(o, key, value);
	httpd_reply_json(r, 200, o);
}

/* Where a page of runs starts: before=SEQ, or before=VALUE:SEQ when sorted
 * by a metric (the "next" of the page before); false: answered 400. */
static bool parse_cursor(struct httpd_req *r, bool by_metric, struct store_run_cursor *ret)
{
	const char *a = httpd_arg(r, "before");
	char *end;

	if (!a || !*a) {
		return true;
	}
	errno = 0;
	if (by_metric) {
		ret->value = strtod(a, &end);
		if (end == a || *end != ':' || !isfinite(ret->value)) {
			goto bad;
		}
		a = end + 1;
	}
	long long seq = strtoll(a, &end, 10);
	if (errno || end == a || *end || seq < 0) {
		goto bad;
	}
	ret->seq = seq;
	return true;
bad:
	httpd_reply_error(r, 400, "InvalidArgument", "'before' is %s, the 'next' of a page",
			  by_metric ? "VALUE:SEQ" : "a run number");
	return false;
}

static void runs_page(struct web *w, struct httpd_req *r, int64_t parent)
{
	struct store_run_filter f = {
	    .experiment = httpd_arg(r, "experiment"),
	    .status = httpd_arg(r, "status"),
	    .kind = httpd_arg(r, "kind"),
	    .tag = httpd_arg(r, "tag"),
	    .text = httpd_arg(r, "q"),
	    .parent_seq = parent,
	};
	enum run_status st;
	struct store_run_cursor from = {0, 0}, next;
	const char *sort = httpd_arg(r, "sort"), *order = httpd_arg(r, "order");
	int64_t limit;
	cJSON *runs = NULL;
	int err;

	if (!arg_int(r, "limit", 1, PAGE_MAX, PAGE_DEFAULT, &limit)) {
		return;
	}
	if (sort && *sort && strcmp(sort, "seq") != 0) {
		if (strncmp(sort, "metric:", 7) != 0 || !sort[7]) {
			httpd_reply_error(r, 400, "InvalidArgument",
					  "'sort' is seq or metric:NAME");
			return;
		}
		f.sort_metric = sort + 7;
	}
	if (order && *order && strcmp(order, "asc") && strcmp(order, "desc")) {
		httpd_reply_error(r, 400, "InvalidArgument", "'order' is asc or desc");
		return;
	}
	f.ascending = order && strcmp(order, "asc") == 0;
	if (!parse_cursor(r, f.sort_metric != NULL, &from)) {
		return;
	}
	/* Empty filters are no filters (a form's blank field). */
	const char **fields[] = {&f.experiment, &f.status, &f.kind, &f.tag, &f.text};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (*fields[i] && !**fields[i]) {
			*fields[i] = NULL;
		}
	}
	if (f.status && run_status_parse(f.status, &st) < 0) {
		httpd_reply_error(r, 400, "InvalidArgument", "unknown status '%s'", f.status);
		return;
	}
	if (f.kind && strcmp(f.kind, "run") && strcmp(f.kind, "sweep") && strcmp(f.kind, "array") &&
	    strcmp(f.kind, "interactive")) {
		httpd_reply_error(r, 400, "InvalidArgument",
				  "'kind' is run, sweep, array or interactive");
		return;
	}
	if (!parent && httpd_arg(r, "parent") && *httpd_arg(r, "parent") &&
	    !find_run(w, r, httpd_arg(r, "parent"), &f.parent_seq)) {
		return;
	}
	err = store_run_page_json(w->d->store, &f, &from, (int)limit, &runs, &next);
	if (err < 0) {
		reply_store_error(w, r, err);
		return;
	}
	cJSON *o = cJSON_CreateObject();
	cJSON_AddItemToObject(o, "runs", runs);
	if (next.seq > 0 && f.sort_metric) {
		char cur[64];
		snprintf(cur, sizeof(cur), "%.17g:%" PRId64, next.value, next.seq);
		cJSON_AddStringToObject(o, "next", cur);
	} else if (next.seq > 0) {
		cJSON_AddNumberToObject(o, "next", (double)next.seq);
	} else {
		cJSON_AddNullToObject(o, "next");
	}
	httpd_reply_json(r, 200, o);
}

static void run_show(struct web *w, struct httpd_req *r, int64_t seq)
{
	cJSON *run = NULL, *sw = NULL;
	int err = store_run_json(w->d->store, seq, true, &run);

	if (err < 0) {
		reply_store_error(w, r, err);
		return;
	}
	if (store_sweep_json(w->d->store, seq, false, &sw) == 0) {
		cJSON_AddItemToObject(run, "sweep", sw);
	}
	httpd_reply_json(r, 200, run);
}

/* A line of the protocol as the page reads it: "n" numbers it. */
static void number_lines(cJSON *lines)
{
	cJSON *l;

	cJSON_ArrayForEach(l, lines)
	{
		cJSON *seq = cJSON_GetObjectItem(l, "seq");
		cJSON_AddNumberToObject(l, "n", seq ? seq->valuedouble : 0);
	}
}

static void run_logs(struct web *w, struct httpd_req *r, int64_t seq)
{
	int64_t after, limit, next;
	cJSON *lines = NULL;
	bool more;
	int err;

	if (!arg_int(r, "after", 0, INT64_MAX / 2, 0, &after) ||
	    !arg_int(r, "limit", 1, LINES_MAX, LINES_DEFAULT, &limit)) {
		return;
	}
	err = logs_read_json(w->d, seq, NULL, after, limit, 0, &lines, &next, &more);
	if (err < 0) {
		reply_store_error(w, r, err);
		return;
	}
	number_lines(lines);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddItemToObject(o, "lines", lines);
	cJSON_AddNumberToObject(o, "next", (double)next);
	cJSON_AddBoolToObject(o, "more", more);
	cJSON_AddBoolToObject(o, "ended", !more && !run_find(w->d, seq));
	httpd_reply_json(r, 200, o);
}

/* ---- live logs ---- */

static int tail_append(struct web_tail *t, const char *text, size_t n)
{
	char *nb = realloc(t->out, t->len + n + 1);

	if (!nb) {
		return -ENOMEM;
	}
	memcpy(nb + t->len, text, n);
	t->out = nb;
	t->len += n;
	return 0;
}

/* The next batch of events into t->out: new lines, else the end once the
 * run has ended. 0: nothing now. */
static int tail_fill(struct web_tail *t)
{
	struct web *w = t->w;
	cJSON *lines = NULL, *l;
	int64_t last = t->after;
	bool full = false;
	int err;

	err = logs_collect_json(w->d, t->seq, t->after, TAIL_BATCH_LINES, TAIL_BATCH_TEXT, 0,
				&lines, &last, &full);
	if (err < 0) {
		return err;
	}
	number_lines(lines);
	cJSON_ArrayForEach(l, lines)
	{
		char *data = cJSON_PrintUnformatted(l), head[40];
		int hn = snprintf(head, sizeof(head), "id: %lld\ndata: ",
				  (long long)cJSON_GetObjectItem(l, "seq")->valuedouble);
		if (!data || tail_append(t, head, (size_t)hn) < 0 ||
		    tail_append(t, data, strlen(data)) < 0 || tail_append(t, "\n\n", 2) < 0) {
			cJSON_free(data);
			cJSON_Delete(lines);
			return -ENOMEM;
		}
		cJSON_free(data);
	}
	cJSON_Delete(lines);
	t->after = last;
	if (t->len == 0 && !full && !run_find(w->d, t->seq)) {
		/* Every line is stored before a run ends: none can come later. */
		cJSON *run = NULL;
		char ev[160];
		const char *status = "ended";
		if (store_run_json(w->d->store, t->seq, false, &run) == 0) {
			status = cJSON_GetStringValue(cJSON_GetObjectItem(run, "status"));
		}
		int n = snprintf(ev, sizeof(ev), "event: end\ndata: {\"status\":\"%s\"}\n\n",
				 status ? status : "ended");
		cJSON_Delete(run);
		if (tail_append(t, ev, (size_t)n) < 0) {
			return -ENOMEM;
		}
		t->ended = true;
	}
	return 0;
}

static ssize_t tail_pull(void *ud, char *buf, size_t max)
{
	struct web_tail *t = ud;

	if (!t->w) {
		return -1;
	}
	if (t->off == t->len) {
		if (t->ended) {
			return -1;
		}
		free(t->out);
		t->out = NULL;
		t->len = t->off = 0;
		if (tail_fill(t) < 0) {
			return -1;
		}
		if (t->len == 0 && t->ping) {
			/* A comment: a client that went away is found out when
			 * it fails, which a waiting connection never would be. */
			if (tail_append(t, ": ping\n\n", 8) < 0) {
				return -1;
			}
		}
		t->ping = false;
		if (t->len == 0) {
			return 0; /* waits for a run event */
		}
	}
	size_t n = t->len - t->off < max ? t->len - t->off : max;
	memcpy(buf, t->out + t->off, n);
	t->off += n;
	return (ssize_t)n;
}

static void tail_done(void *ud)
{
	struct web_tail *t = ud;

	if (t->w) {
		if (t->prev) {
			t->prev->next = t->next;
		} else {
			t->w->tails = t->next;
		}
		if (t->next) {
			t->next->prev = t->prev;
		}
	}
	free(t->out);
	free(t);
}

static void run_tail(struct web *w, struct httpd_req *r, int64_t seq)
{
	static const char *const headers[] = {"Cache-Control", "no-store", "X-Accel-Buffering",
					      "no", NULL};
	const char *last_id = httpd_header(r, "Last-Event-ID");
	struct web_tail *t;
	int64_t after;

	if (!arg_int(r, "after", 0, INT64_MAX / 2, 0, &after)) {
		return;
	}
	/* EventSource sends the last id it saw when it reconnects (after a
	 * daemon restart too): go on from there. */
	if (last_id && *last_id) {
		char *end;
		long long n = strtoll(last_id, &end, 10);
		if (*end == '\0' && n >= 0) {
			after = n;
		}
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		httpd_reply_error(r, 500, "Internal", "out of memory");
		return;
	}
	t->w = w;
	t->seq = seq;
	t->after = after;
	/* A reconnecting EventSource waits a second, not its default three. */
	if (tail_append(t, "retry: 1000\n\n", 13) < 0 ||
	    httpd_reply_stream(r, "text/event-stream", headers, tail_pull, tail_done, t,
			       &t->stream) < 0) {
		free(t->out);
		free(t);
		httpd_reply_error(r, 500, "Internal", "out of memory");
		return;
	}
	t->next = w->tails;
	if (t->next) {
		t->next->prev = t;
	}
	w->tails = t;
}

void web_api_run_event(struct web *w, int64_t seq, bool ended)
{
	for (struct web_tail *t = w->tails; t; t = t->next) {
		if (t->seq == seq) {
			httpd_stream_wake(t->stream);
		}
	}
}

void web_api_heartbeat(struct web *w)
{
	for (struct web_tail *t = w->tails; t; t = t->next) {
		t->ping = true;
		httpd_stream_wake(t->stream);
	}
}

void web_api_close(struct web *w)
{
	/* The listener ends every stream next; their pulls end at once. */
	for (struct web_tail *t = w->tails; t; t = t->next) {
		t->w = NULL;
	}
	w->tails = NULL;
}

/* ---- metrics, outputs, children ---- */

static void run_metric(struct web *w, struct httpd_req *r, int64_t seq, const char *name)
{
	int64_t points;
	cJSON *o = NULL;
	int err;

	if (!arg_int(r, "points", 3, POINTS_MAX, POINTS_DEFAULT, &points)) {
		return;
	}
	err = store_metric_chart_json(w->d->store, seq, name, points, &o);
	if (err == -ENOENT) {
		httpd_reply_error(r, 404, "NotFound", "run #%lld has no metric '%s'", (long long)seq,
				  name);
		return;
	}
	if (err < 0) {
		reply_store_error(w, r, err);
		return;
	}
	httpd_reply_json(r, 200, o);
}

static void run_output(struct web *w, struct httpd_req *r, int64_t seq, char **segs, int n)
{
	char path[4096] = "", sha[65], bpath[4096];
	int64_t size;
	size_t len = 0;
	int fd;

	for (int i = 0; i < n; i++) {
		int k = snprintf(path + len, sizeof(path) - len, "%s%s", i ? "/" : "", segs[i]);
		if (k < 0 || (size_t)k >= sizeof(path) - len) {
			httpd_reply_error(r, 404, "NotFound", "no such output");
			return;
		}
		len += (size_t)k;
	}
	/* The name is a key of the run's stored artifacts, never a path on
	 * disk: "../x" names nothing. */
	if (store_artifact_get(w->d->store, seq, path, sha, &size) < 0) {
		httpd_reply_error(r, 404, "NotFound", "run #%lld has no output '%s'", (long long)seq,
				  path);
		return;
	}
	if (blob_path(w->d->blobs, sha, bpath, sizeof(bpath)) < 0 ||
	    (fd = open(bpath, O_RDONLY | O_CLOEXEC)) < 0) {
		httpd_reply_error(r, 500, "Internal", "the stored content of '%s' is missing", path);
		return;
	}
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	char name[201], disp[256];
	snprintf(name, sizeof(name), "%.200s", base);
	for (char *c = name; *c; c++) {
		if ((unsigned char)*c < 0x20 || *c == '"' || *c == '\\' || (unsigned char)*c >= 0x7f) {
			*c = '_';
		}
	}
	snprintf(disp, sizeof(disp), "attachment; filename=\"%s\"", name);
	const char *headers[] = {"Content-Disposition", disp, NULL};
	httpd_reply_fd(r, "application/octet-stream", fd, (uint64_t)size, headers);
}

/* The files of the run's snapshot, in path order, a bounded number. */
static void run_snapshot(struct web *w, struct httpd_req *r, int64_t seq)
{
	cJSON *run = NULL, *files = NULL, *id;
	char *cause = NULL;
	int64_t limit;
	int err;

	if (!arg_int(r, "limit", 1, SNAPSHOT_FILES_MAX, SNAPSHOT_FILES_DEFAULT, &limit)) {
		return;
	}
	if ((err = store_run_json(w->d->store, seq, false, &run)) < 0) {
		reply_store_error(w, r, err);
		return;
	}
	id = cJSON_GetObjectItem(run, "snapshot");
	if (!cJSON_IsString(id) || !*id->valuestring) {
		httpd_reply_error(r, 404, "NotFound", "run #%lld has no snapshot", (long long)seq);
		goto out;
	}
	err = snapshot_files_json(w->d->blobs, id->valuestring, (int)limit, &files, &cause);
	if (err < 0) {
		httpd_reply_error(r, err == -ENOENT ? 404 : 500,
				  err == -ENOENT ? "NotFound" : "Internal", "the snapshot %.12s: %s",
				  id->valuestring, cause ? cause : strerror(-err));
		cJSON_Delete(files);
		goto out;
	}
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "snapshot", id->valuestring);
	cJSON_AddItemToObject(o, "files", files);
	cJSON_AddBoolToObject(o, "more", err > 0);
	httpd_reply_json(r, 200, o);
out:
	free(cause);
	cJSON_Delete(run);
}

static void run_children(struct web *w, struct httpd_req *r, int64_t seq)
{
	struct store_run_filter f = {.parent_seq = seq};
	struct store_run_cursor next;
	cJSON *runs = NULL, *sw = NULL, *c, *k;
	int err = store_run_page_json(w->d->store, &f, NULL, PAGE_MAX, &runs, &next);

	if (err < 0) {
		reply_store_error(w, r, err);
		return;
	}
	/* A sweep's children carry their parameters, score and decision. */
	if (store_sweep_json(w->d->store, seq, true, &sw) == 0) {
		cJSON_ArrayForEach(c, runs)
		{
			double cs = cJSON_GetNumberValue(cJSON_GetObjectItem(c, "seq"));
			cJSON_ArrayForEach(k, cJSON_GetObjectItem(sw, "children"))
			{
				if (cJSON_GetNumberValue(cJSON_GetObjectItem(k, "seq")) == cs) {
					static const char *const keys[] = {"params", "score",
									   "decision"};
					for (size_t i = 0; i < 3; i++) {
						cJSON *v = cJSON_GetObjectItem(k, keys[i]);
						cJSON_AddItemToObject(
						    c, keys[i],
						    v ? cJSON_Duplicate(v, true) : cJSON_CreateNull());
					}
				}
			}
		}
		cJSON_Delete(sw);
	}
	reply_wrapped(w, r, "runs", runs, 0);
}

static void run_cancel(struct web *w, struct httpd_req *r, int64_t seq)
{
	struct run *run;
	cJSON *o = NULL;
	int n = 0, err;

	if (sweep_active(w->d, seq)) {
		err = sweep_cancel(w->d, seq, &n);
	} else if ((run = run_find(w->d, seq))) {
		err = exec_cancel(run);
	} else {
		err = -ENOENT;
	}
	if (err == -ENOENT) {
		httpd_reply_error(r, 409, "Conflict", "run #%lld has already ended", (long long)seq);
		return;
	}
	if (err == -EALREADY) {
		httpd_reply_error(r, 409, "Conflict", "run #%lld is already ending", (long long)seq);
		return;
	}
	if (err < 0) {
		httpd_reply_error(r, 500, "Internal", "canceling run #%lld failed: %s",
				  (long long)seq, strerror(-err));
		return;
	}
	err = store_run_json(w->d->store, seq, false, &o);
	if (err < 0) {
		reply_store_error(w, r, err);
		return;
	}
	httpd_reply_json(r, 200, o);
}

/* ---- the router ---- */

static void run_api(struct web *w, struct httpd_req *r, bool get, char **segs, int n)
{
	int64_t seq;

	if (!find_run(w, r, segs[1], &seq)) {
		return;
	}
	const char *what = n > 2 ? segs[2] : "";
	if (!get) {
		if (n == 3 && strcmp(what, "cancel") == 0) {
			run_cancel(w, r, seq);
		} else {
			httpd_reply_error(r, 405, "MethodNotAllowed", "only GET here");
		}
		return;
	}
	if (n == 2) {
		run_show(w, r, seq);
	} else if (n == 3 && strcmp(what, "logs") == 0) {
		run_logs(w, r, seq);
	} else if (n == 4 && strcmp(what, "logs") == 0 && strcmp(segs[3], "stream") == 0) {
		run_tail(w, r, seq);
	} else if (n == 3 && strcmp(what, "metrics") == 0) {
		cJSON *m = NULL;
		int err = store_metrics_json(w->d->store, seq, 0, &m);
		reply_wrapped(w, r, "metrics", m, err);
	} else if (n == 4 && strcmp(what, "metrics") == 0) {
		run_metric(w, r, seq, segs[3]);
	} else if (n == 3 && strcmp(what, "outputs") == 0) {
		cJSON *a = NULL;
		int err = store_artifacts_json(w->d->store, seq, &a);
		reply_wrapped(w, r, "files", a, err);
	} else if (n >= 4 && strcmp(what, "outputs") == 0) {
		run_output(w, r, seq, segs + 3, n - 3);
	} else if (n == 3 && strcmp(what, "snapshot") == 0) {
		run_snapshot(w, r, seq);
	} else if (n == 3 && strcmp(what, "children") == 0) {
		run_children(w, r, seq);
	} else if (n == 3 && strcmp(what, "cancel") == 0) {
		httpd_reply_error(r, 405, "MethodNotAllowed", "cancel is a POST");
	} else {
		httpd_reply_error(r, 404, "NotFound", "no such resource");
	}
}

void web_api(struct web *w, struct httpd_req *r, const char *method, char **segs, int n)
{
	bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
	const char *top = n > 0 ? segs[0] : "";

	if (n >= 2 && strcmp(top, "runs") == 0) {
		run_api(w, r, get, segs, n);
		return;
	}
	if (!get) {
		httpd_reply_error(r, 405, "MethodNotAllowed", "only GET here");
		return;
	}
	if (n == 1 && strcmp(top, "session") == 0) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "token", w->token);
		cJSON_AddStringToObject(o, "version", RUNYARD_VERSION);
		httpd_reply_json(r, 200, o);
	} else if (n == 1 && strcmp(top, "runs") == 0) {
		runs_page(w, r, 0);
	} else if (n == 1 && strcmp(top, "experiments") == 0) {
		cJSON *e = NULL;
		int err = store_experiments_json(w->d->store, &e);
		reply_wrapped(w, r, "experiments", e, err);
	} else if (n == 1 && strcmp(top, "models") == 0) {
		cJSON *m = NULL;
		int err = models_list_json(w->d, NULL, NULL, &m);
		reply_wrapped(w, r, "models", m, err);
	} else if (n == 1 && strcmp(top, "services") == 0) {
		cJSON *s = w->d->services ? services_list_json(w->d) : cJSON_CreateArray();
		reply_wrapped(w, r, "services", s, 0);
	} else {
		httpd_reply_error(r, 404, "NotFound", "no such resource");
	}
}

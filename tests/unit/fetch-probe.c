/* fetch-probe: fetch URLs with the daemon's fetch manager, for
 * tests/integration/test_fetch.py. All URLs start at once (the same URL
 * twice shares one transfer); one JSON line per progress report and per
 * result goes to stdout, then the manager is closed and the loop must close
 * cleanly (exit 3 if not).
 *
 *   fetch-probe --cache DIR [--max-bytes N] [--timeout-ms N] [--retries N]
 *               [--cancel I] [--close-after N] [[--sha256 HEX] [--limit N] URL]...
 *
 * --sha256 and --limit apply to the URL after them; --max-bytes and
 * --timeout-ms are the manager's limits; --cancel I cancels the I-th request
 * (from 0) right after starting them all; --close-after N closes the
 * manager once N results have come (the rest never answer). Exit 0 when
 * every request answered (whatever the answer), 2 on bad usage. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "fetch.h"

#define MAX_URLS 64

struct probe {
	struct fetch_mgr *m;
	int answered, started, close_after;
};

struct one {
	struct probe *p;
	const char *url;
	struct fetch_req *req;
	int index;
};

static const char *errno_name(int err)
{
	switch (-err) {
	case 0:
		return "";
	case ENOENT:
		return "ENOENT";
	case EFBIG:
		return "EFBIG";
	case ETIMEDOUT:
		return "ETIMEDOUT";
	case EBADMSG:
		return "EBADMSG";
	case EIO:
		return "EIO";
	case EACCES:
		return "EACCES";
	case EINVAL:
		return "EINVAL";
	case ECONNREFUSED:
		return "ECONNREFUSED";
	case ECONNRESET:
		return "ECONNRESET";
	case EISDIR:
		return "EISDIR";
	case EPROTONOSUPPORT:
		return "EPROTONOSUPPORT";
	default:
		return "other";
	}
}

static void print_json(cJSON *o)
{
	char *s = cJSON_PrintUnformatted(o);

	if (s) {
		puts(s);
		fflush(stdout);
	}
	free(s);
	cJSON_Delete(o);
}

static void progress_cb(void *ud, const struct fetch_progress *pr)
{
	struct one *w = ud;
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "event", "progress");
	cJSON_AddNumberToObject(o, "index", w->index);
	cJSON_AddStringToObject(o, "url", w->url);
	cJSON_AddNumberToObject(o, "done", (double)pr->done);
	cJSON_AddNumberToObject(o, "total", (double)pr->total);
	cJSON_AddNumberToObject(o, "rate", pr->rate);
	print_json(o);
}

static void done_cb(void *ud, const struct fetch_result *res)
{
	struct one *w = ud;
	struct probe *p = w->p;
	cJSON *o = cJSON_CreateObject();

	w->req = NULL;
	cJSON_AddStringToObject(o, "event", "done");
	cJSON_AddNumberToObject(o, "index", w->index);
	cJSON_AddStringToObject(o, "url", w->url);
	cJSON_AddNumberToObject(o, "err", res->err);
	cJSON_AddStringToObject(o, "errno", errno_name(res->err));
	if (res->err == 0) {
		cJSON_AddStringToObject(o, "path", res->path);
		cJSON_AddStringToObject(o, "sha256", res->sha256);
		cJSON_AddNumberToObject(o, "size", (double)res->size);
		cJSON_AddBoolToObject(o, "from_cache", res->from_cache);
	} else {
		cJSON_AddStringToObject(o, "cause", res->cause);
	}
	print_json(o);
	p->answered++;
	if (p->close_after && p->answered == p->close_after) {
		fetch_mgr_close(p->m);
		p->m = NULL;
	}
}

static int usage(void)
{
	fprintf(stderr, "usage: fetch-probe --cache DIR [--max-bytes N] [--timeout-ms N] "
	                "[--retries N] [--cancel I] [--close-after N] [[--sha256 HEX] "
	                "[--limit N] URL]...\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct fetch_limits lim = {.retries = -1};
	struct fetch_opts opts[MAX_URLS];
	struct one ones[MAX_URLS];
	struct probe p = {0};
	const char *cache = NULL, *sha = NULL;
	uint64_t limit = 0;
	int n = 0, cancel = -1, r;
	uv_loop_t loop;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool has = i + 1 < argc;

		if (strcmp(a, "--cache") == 0 && has) {
			cache = argv[++i];
		} else if (strcmp(a, "--max-bytes") == 0 && has) {
			lim.max_bytes = strtoull(argv[++i], NULL, 10);
		} else if (strcmp(a, "--timeout-ms") == 0 && has) {
			lim.timeout_ms = strtol(argv[++i], NULL, 10);
		} else if (strcmp(a, "--retries") == 0 && has) {
			lim.retries = atoi(argv[++i]);
		} else if (strcmp(a, "--cancel") == 0 && has) {
			cancel = atoi(argv[++i]);
		} else if (strcmp(a, "--close-after") == 0 && has) {
			p.close_after = atoi(argv[++i]);
		} else if (strcmp(a, "--sha256") == 0 && has) {
			sha = argv[++i];
		} else if (strcmp(a, "--limit") == 0 && has) {
			limit = strtoull(argv[++i], NULL, 10);
		} else if (a[0] == '-' || n == MAX_URLS) {
			return usage();
		} else {
			opts[n] = (struct fetch_opts){.url = a, .sha256 = sha, .max_bytes = limit};
			ones[n] = (struct one){.p = &p, .url = a, .index = n};
			sha = NULL;
			limit = 0;
			n++;
		}
	}
	if (!cache || n == 0) {
		return usage();
	}
	uv_loop_init(&loop);
	r = fetch_mgr_create(&loop, cache, &lim, &p.m);
	if (r < 0) {
		fprintf(stderr, "fetch-probe: fetch_mgr_create: %s\n", strerror(-r));
		return 1;
	}
	for (int i = 0; i < n; i++) {
		r = fetch_start(p.m, &opts[i], progress_cb, done_cb, &ones[i], &ones[i].req);
		if (r < 0) {
			fprintf(stderr, "fetch-probe: fetch_start %s: %s\n", opts[i].url,
			        strerror(-r));
			return 1;
		}
		p.started++;
	}
	if (p.answered != 0) {
		fprintf(stderr, "fetch-probe: a callback ran inside fetch_start\n");
		return 1;
	}
	if (cancel >= 0 && cancel < n) {
		fetch_cancel(ones[cancel].req);
		ones[cancel].req = NULL;
		p.started--;
	}
	/* The manager closes itself after the last answer, so the loop ends. */
	while (p.m && p.answered < p.started) {
		uv_run(&loop, UV_RUN_ONCE);
	}
	fetch_mgr_close(p.m);
	uv_run(&loop, UV_RUN_DEFAULT);
	r = uv_loop_close(&loop);
	if (r != 0) {
		fprintf(stderr, "fetch-probe: the loop did not close: %s\n", uv_strerror(r));
		return 3;
	}
	return p.close_after || p.answered == p.started ? 0 : 1;
}

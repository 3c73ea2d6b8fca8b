/* What web.c (the listener, access, routing, static files) and web_api.c
 * (the JSON API and the log streams) share. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "httpd.h"

struct daemon;
struct web_tail;

/* Path segments of a request under /api/, at most this many. */
#define WEB_SEGS_MAX 8

struct web {
	struct daemon *d;
	struct httpd *httpd;
	char token[65];
	char addr[64];
	int port;
	bool wildcard;  /* bound to every address: any Host names us */
	char *web_dir;  /* the page's files */
	char *vendor_dir; /* uPlot's dist/ */
	struct web_tail *tails; /* live log streams */
	uv_timer_t heartbeat;   /* w is freed in its close callback */
};

/* The API's answer for method and the path's segments after "api". */
void web_api(struct web *w, struct httpd_req *r, const char *method, char **segs, int n);

/* The live streams are told of new lines and ends (a run event). */
void web_api_run_event(struct web *w, int64_t seq, bool ended);

/* Every stream that waits sends a comment (a timer's, every
 * WEB_HEARTBEAT_MS), so the connection of a client that left is closed. */
#define WEB_HEARTBEAT_MS 10000
void web_api_heartbeat(struct web *w);

/* Every stream ends (the listener stops). */
void web_api_close(struct web *w);

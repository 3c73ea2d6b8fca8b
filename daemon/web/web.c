/* The web view's listener: who may ask (the Host header names us, the
 * token is in the cookie or an Authorization header, a POST carries it in
 * X-Runyard-Token too and comes from our own origin), the router, and the
 * page's files. The token is made once, at the first start, in the state
 * directory; the page gets it once through /?token=, which sets it as an
 * HttpOnly, SameSite=Strict cookie and sends the browser on to /. */
#include "web.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "context.h"
#include "log.h"
#include "msg.h"
#include "run.h"
#include "util.h"
#include "web_priv.h"

#ifndef RUNYARD_WEB_DIR
#define RUNYARD_WEB_DIR "web"
#endif
#ifndef RUNYARD_VENDOR_DIR
#define RUNYARD_VENDOR_DIR "node_modules/uplot/dist"
#endif

#define COOKIE "runyard_token"

/* The token of STATE/web.token, made when there is none. */
static int load_token(struct web *w, char **cause)
{
	char *path = util_path_join(w->d->state_dir, "web.token"), *text = NULL;
	unsigned char raw[32];
	size_t len = 0;
	int fd, err = 0;

	if (!path) {
		return -ENOMEM;
	}
	if (util_read_file(path, 1024, &text, &len) == 0) {
		while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' ')) {
			len--;
		}
		if (len == 64 && strspn(text, "0123456789abcdef") >= 64) {
			memcpy(w->token, text, 64);
			w->token[64] = '\0';
			goto out;
		}
		log_warn("%s does not hold a token; making a new one", path);
		unlink(path);
	}
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
		err = -errno;
		*cause = msg_strdupf("cannot make a token: %s", strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < sizeof(raw); i++) {
		snprintf(w->token + 2 * i, 3, "%02x", raw[i]);
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || util_write_all(fd, w->token, 64) < 0 || util_write_all(fd, "\n", 1) < 0 ||
	    fsync(fd) < 0) {
		err = -errno;
		*cause = msg_strdupf("cannot write %s: %s", path, strerror(errno));
	}
	if (fd >= 0) {
		close(fd);
	}
out:
	free(text);
	free(path);
	return err;
}

/* Whether a equals the token, in time that does not depend on where they differ. */
static bool token_is(const struct web *w, const char *a)
{
	unsigned char diff = 0;

	if (!a || strlen(a) != 64) {
		return false;
	}
	for (int i = 0; i < 64; i++) {
		diff |= (unsigned char)(a[i] ^ w->token[i]);
	}
	return diff == 0;
}

/* The authority of our URL: "127.0.0.1:PORT", "[::1]:PORT". */
static void authority(const struct web *w, char *buf, size_t len)
{
	snprintf(buf, len, strchr(w->addr, ':') ? "[%s]:%d" : "%s:%d", w->addr, w->port);
}

/* The Host header names this listener (against DNS rebinding: a page of
 * another site that resolves its own name to 127.0.0.1 sends its name). */
static bool host_ok(const struct web *w, const char *host)
{
	char mine[96], local[48];

	if (!host) {
		return false;
	}
	if (w->wildcard) {
		return true;
	}
	authority(w, mine, sizeof(mine));
	snprintf(local, sizeof(local), "localhost:%d", w->port);
	return strcmp(host, mine) == 0 || strcmp(host, local) == 0;
}

static const char *bearer(const struct httpd_req *r)
{
	const char *a = httpd_header(r, "Authorization");

	return a && strncmp(a, "Bearer ", 7) == 0 ? a + 7 : NULL;
}

static const char *content_type(const char *name)
{
	static const char *const types[][2] = {
	    {".html", "text/html; charset=utf-8"},   {".js", "text/javascript; charset=utf-8"},
	    {".mjs", "text/javascript; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
	    {".svg", "image/svg+xml"},               {".png", "image/png"},
	    {".json", "application/json"},           {".ico", "image/x-icon"},
	};
	const char *dot = strrchr(name, '.');

	for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++) {
		if (strcmp(dot, types[i][0]) == 0) {
			return types[i][1];
		}
	}
	return "application/octet-stream";
}

/* One file of dir by a plain name (no '/', no leading '.'). */
static void serve_file(struct httpd_req *r, const char *dir, const char *name)
{
	static const char *const headers[] = {
	    "Cache-Control", "no-cache", "Content-Security-Policy",
	    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'", NULL};
	char *path;
	struct stat st;
	int fd;

	if (!name[0] || name[0] == '.' || strchr(name, '/') || strlen(name) > 128) {
		httpd_reply_error(r, 404, "NotFound", "no such file");
		return;
	}
	path = msg_strdupf("%s/%s", dir, name);
	fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
	free(path);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		if (fd >= 0) {
			close(fd);
		}
		httpd_reply_error(r, 404, "NotFound", "no such file: %s", name);
		return;
	}
	httpd_reply_fd(r, content_type(name), fd, (uint64_t)st.st_size, headers);
}

static void unauthorized(struct httpd_req *r, bool page)
{
	static const char text[] =
	    "<!doctype html><meta charset=utf-8><title>runyard</title>"
	    "<p>This page needs the link that <code>runyard ui</code> prints: it carries the "
	    "token once, and the browser keeps it.</p>\n";

	if (page) {
		httpd_reply(r, 401, "text/html; charset=utf-8", text, sizeof(text) - 1, NULL);
	} else {
		httpd_reply_error(r, 401, "Unauthorized",
				  "a token is needed: open the URL 'runyard ui' prints, or send "
				  "'Authorization: Bearer TOKEN' (the token is in STATE/web.token)");
	}
}

/* Split path after its first segment ("/api/runs/7" → "runs", "7"),
 * percent-decoded; NULL segs when there are too many. */
static int split(char *path, char **segs)
{
	int n = 0;

	for (char *p = strtok(path, "/"); p; p = strtok(NULL, "/")) {
		if (n == WEB_SEGS_MAX) {
			return -1;
		}
		/* %XX in place; a '\0' decoded would cut the segment short, which
		 * only makes it name nothing. */
		char *o = p;
		for (char *c = p; *c; c++) {
			if (c[0] == '%' && c[1] && c[2] && strspn(c + 1, "0123456789abcdefABCDEF") >= 2) {
				char hex[3] = {c[1], c[2], 0};
				*o++ = (char)strtol(hex, NULL, 16);
				c += 2;
			} else {
				*o++ = *c;
			}
		}
		*o = '\0';
		segs[n++] = p;
	}
	return n;
}

static void handle(void *ud, struct httpd_req *r)
{
	struct web *w = ud;
	const char *method = httpd_method(r), *path = httpd_path(r);
	const char *cookie = httpd_cookie(r, COOKIE), *tok = httpd_arg(r, "token");
	bool authed = token_is(w, cookie) || token_is(w, bearer(r));
	char *copy = NULL, *segs[WEB_SEGS_MAX];
	int n;

	if (!host_ok(w, httpd_header(r, "Host"))) {
		httpd_reply_error(r, 403, "Forbidden",
				  "the Host header must name this server's address");
		return;
	}
	if (strcmp(path, "/") == 0 && tok && strcmp(method, "GET") == 0) {
		/* The URL 'runyard ui' printed: keep the token in a cookie and
		 * go on without it in the address bar. */
		if (!token_is(w, tok)) {
			unauthorized(r, true);
			return;
		}
		char cookie_hdr[160];
		snprintf(cookie_hdr, sizeof(cookie_hdr),
			 COOKIE "=%s; HttpOnly; SameSite=Strict; Path=/", w->token);
		const char *headers[] = {"Set-Cookie", cookie_hdr, "Location", "/", NULL};
		httpd_reply(r, 303, "text/plain", "", 0, headers);
		return;
	}
	if (!authed) {
		unauthorized(r, strncmp(path, "/api/", 5) != 0);
		return;
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		/* A change of state: a page of another origin can make the browser
		 * send the cookie, never this header. */
		char origin[128], mine[96];
		const char *o = httpd_header(r, "Origin");
		authority(w, mine, sizeof(mine));
		snprintf(origin, sizeof(origin), "http://%s", httpd_header(r, "Host"));
		if (!token_is(w, httpd_header(r, "X-Runyard-Token")) ||
		    (o && strcmp(o, origin) != 0)) {
			httpd_reply_error(r, 403, "Forbidden",
					  "a request that changes something needs the token in "
					  "X-Runyard-Token, from this server's own pages");
			return;
		}
	}
	if (strncmp(path, "/api/", 5) == 0 || strcmp(path, "/api") == 0) {
		copy = strdup(path + 4);
		n = copy ? split(copy, segs) : -1;
		if (n < 0) {
			httpd_reply_error(r, 404, "NotFound", "no such resource");
		} else {
			web_api(w, r, method, segs, n);
		}
		free(copy);
		return;
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		httpd_reply_error(r, 405, "MethodNotAllowed", "only GET here");
		return;
	}
	if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0) {
		serve_file(r, w->web_dir, "index.html");
	} else if (strncmp(path, "/vendor/", 8) == 0) {
		serve_file(r, w->vendor_dir, path + 8);
	} else {
		serve_file(r, w->web_dir, path + 1);
	}
}

void web_run_event(void *ud, struct run *r, enum run_event ev)
{
	struct daemon *d = ud;

	if (d->web && (ev == RUN_EV_LOG || ev == RUN_EV_ENDED)) {
		web_api_run_event(d->web, r->seq, ev == RUN_EV_ENDED);
	}
}

static void web_free(struct web *w)
{
	if (w) {
		free(w->web_dir);
		free(w->vendor_dir);
		free(w);
	}
}

static void heartbeat_cb(uv_timer_t *t)
{
	web_api_heartbeat(t->data);
}

static void heartbeat_close_cb(uv_handle_t *h)
{
	web_free(h->data);
}

static bool is_loopback(const char *addr)
{
	struct in_addr a4;

	if (inet_pton(AF_INET, addr, &a4) == 1) {
		return (ntohl(a4.s_addr) >> 24) == 127;
	}
	return strcmp(addr, "::1") == 0;
}


/* The address and port of STATE/web.url: "http://127.0.0.1:PORT/" or
 * "http://[::1]:PORT/"; -ENOENT, -EINVAL. */
static int last_address(const struct daemon *d, char addr[64], int *ret_port)
{
	char *path = util_path_join(d->state_dir, "web.url"), *text = NULL;
	size_t len;
	int err = -ENOENT;

	if (path && util_read_file(path, 512, &text, &len) == 0) {
		err = sscanf(text, "http://[%63[0-9a-fA-F:]]:%d/", addr, ret_port) == 2 ||
			      sscanf(text, "http://%63[0-9.]:%d/", addr, ret_port) == 2
			  ? 0
			  : -EINVAL;
		if (err < 0) {
			log_warn("%s does not hold the web view's address", path);
		}
	}
	free(text);
	free(path);
	return err;
}

int web_start(struct daemon *d, const char *addr, int port, bool remote_ok, char **cause)
{
	struct web *w;
	char *url = NULL, *url_path = NULL;
	const char *env;
	int err;

	if (d->web) {
		return 0;
	}
	if (strlen(addr) >= sizeof(w->addr)) {
		*cause = msg_strdupf("'%s' is not an address", addr);
		return -EINVAL;
	}
	if (!is_loopback(addr) && !remote_ok) {
		*cause = msg_strdupf("%s is not a loopback address: the web view would be open to "
				     "the network; say so with --http-allow-remote",
				     addr);
		return -EPERM;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		return -ENOMEM;
	}
	w->d = d;
	snprintf(w->addr, sizeof(w->addr), "%s", addr);
	w->wildcard = strcmp(addr, "0.0.0.0") == 0 || strcmp(addr, "::") == 0;
	env = getenv("RUNYARD_WEB_DIR");
	w->web_dir = strdup(env && *env ? env : RUNYARD_WEB_DIR);
	env = getenv("RUNYARD_VENDOR_DIR");
	w->vendor_dir = strdup(env && *env ? env : RUNYARD_VENDOR_DIR);
	if (!w->web_dir || !w->vendor_dir) {
		web_free(w);
		return -ENOMEM;
	}
	err = load_token(w, cause);
	if (err < 0) {
		web_free(w);
		return err;
	}
	/* Any free port: the last one when it is free, so a page left open
	 * finds the daemon again after a restart. */
	char last[64];
	int last_port;
	err = -1;
	if (port == 0 && last_address(d, last, &last_port) == 0 && strcmp(last, addr) == 0 &&
	    last_port > 0) {
		char *ignored = NULL;
		err = httpd_start(d->loop, addr, last_port, handle, w, &w->httpd, &ignored);
		free(ignored);
	}
	if (err < 0) {
		err = httpd_start(d->loop, addr, port, handle, w, &w->httpd, cause);
	}
	if (err < 0) {
		web_free(w);
		return err;
	}
	w->port = httpd_port(w->httpd);
	uv_timer_init(d->loop, &w->heartbeat);
	w->heartbeat.data = w;
	uv_timer_start(&w->heartbeat, heartbeat_cb, WEB_HEARTBEAT_MS, WEB_HEARTBEAT_MS);
	d->web = w;
	url = web_url(d);
	url_path = util_path_join(d->state_dir, "web.url");
	if (url && url_path) {
		char line[256];
		snprintf(line, sizeof(line), "%s\n", url);
		if (util_write_file_atomic(url_path, line, strlen(line), 0600) < 0) {
			log_warn("cannot write %s", url_path);
		}
	}
	if (!is_loopback(addr)) {
		log_warn("the web view listens on %s, beyond this machine: anyone who can reach it "
			 "and has the token can see and cancel runs",
			 url ? url : addr);
	} else {
		log_info("web view at %s", url ? url : addr);
	}
	free(url);
	free(url_path);
	return 0;
}

void web_resume(struct daemon *d)
{
	char addr[64], *cause = NULL;
	int port, err;

	if (last_address(d, addr, &port) < 0) {
		return;
	}
	err = web_start(d, addr, port, false, &cause);
	if (err < 0) {
		log_warn("the web view cannot listen again at %s:%d: %s", addr, port,
			 cause ? cause : strerror(-err));
	}
	free(cause);
}

bool web_listening(const struct daemon *d)
{
	return d->web != NULL;
}

char *web_url(const struct daemon *d)
{
	char a[96];

	if (!d->web) {
		return NULL;
	}
	authority(d->web, a, sizeof(a));
	return msg_strdupf("http://%s/", a);
}

const char *web_token(const struct daemon *d)
{
	return d->web ? d->web->token : NULL;
}

void web_stop(struct daemon *d)
{
	struct web *w = d->web;

	if (!w) {
		return;
	}
	d->web = NULL;
	web_api_close(w);
	httpd_stop(w->httpd);
	uv_close((uv_handle_t *)&w->heartbeat, heartbeat_close_cb);
}

/* The Unix socket: accepting clients, reading frames, writing replies. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>
#include <uv.h>

struct server;
struct conn;

/* What the server does with what it reads: it knows no op and no watcher,
 * only these. ud is the caller's, passed back to each and given by
 * conn_context(). */
struct server_hooks {
	/* A whole frame's JSON (NULL when it did not parse); required. bad:
	 * why the payload may not be taken though it parsed (msg_payload_
	 * problem), or NULL. */
	void (*on_message)(void *ud, struct conn *c, const cJSON *msg, const char *bad);
	/* The connection is closing: nothing more may be queued on it. */
	void (*on_closed)(void *ud, struct conn *c);
	/* Its unsent output fell below half of CONN_OUTPUT_CAP. */
	void (*on_drained)(void *ud, struct conn *c);
	void *ud;
};

/* Unsent output above which a connection counts as congested: the daemon
 * stops reading its requests and stops pushing it log lines until it has
 * drained below half of this. */
#define CONN_OUTPUT_CAP (1024 * 1024)

/* A framed message shared by every connection it is sent to, so an event
 * for many followers is serialised once. */
struct wbuf {
	int refs;
	size_t len;
	char data[];
};

/* Serialise and frame msg; NULL when it cannot be (allocation, over the
 * frame limit). The caller holds the one reference. */
struct wbuf *wbuf_from_json(const cJSON *msg);
void wbuf_unref(struct wbuf *b);

/* Listen on path (mode 0600, parent directory created 0700). */
int server_listen(uv_loop_t *loop, const struct server_hooks *hooks, const char *path,
		  struct server **ret, char **cause);

/* Serve on a listening socket passed by the service manager. */
int server_adopt(uv_loop_t *loop, const struct server_hooks *hooks, int fd, struct server **ret,
		 char **cause);

/* The socket's path (for an activated socket, as the manager bound it). */
const char *server_path(const struct server *srv);

/* Stop accepting, close every connection; the server struct goes in the
 * listener's close callback. */
void server_close(struct server *srv);

/* Queue a message on the connection; a closing connection drops it. */
int conn_send(struct conn *c, const cJSON *msg);
int conn_send_wbuf(struct conn *c, struct wbuf *b);

/* Bytes queued and not yet written to the socket. */
size_t conn_backlog(const struct conn *c);
bool conn_congested(const struct conn *c);

/* Keep a connection struct alive across asynchronous work; sending to it
 * after it closed is a no-op. */
void conn_ref(struct conn *c);
void conn_unref(struct conn *c);
bool conn_closing(const struct conn *c);
void conn_close(struct conn *c);

/* The hooks' ud of the connection's server. */
void *conn_context(const struct conn *c);
bool conn_hello_done(const struct conn *c);
void conn_set_hello_done(struct conn *c);

/* Blocking client for runyardd: socket lookup, handshake, calls, pushed events. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct client;

/* What went wrong in a call or a connect. code is the daemon's error code
 * when it answered with an error reply, NULL when the failure was ours or the
 * connection's; message is always set after a failure. */
struct client_error {
	char *code;
	char *message;
};

/* Free the strings of err and reset it; err itself is the caller's. */
void client_error_finish(struct client_error *err);

/* The socket to use: override (--socket), else $RUNYARD_SOCKET, else
 * $XDG_RUNTIME_DIR/runyard/runyard.sock, else <state dir>/runyard.sock.
 * Returns 0 or -ENOENT when no home directory can be found. */
int client_socket_path(const char *override, char **ret_path);

/* The per-user state directory: $XDG_STATE_HOME/runyard, XDG_STATE_HOME
 * defaulting to ~/.local/state. Returns 0 or -ENOENT. */
int client_state_dir(char **ret_dir);

/* Connect to path and do the hello handshake. Returns 0, -EREMOTEIO when
 * the daemon refused the handshake (err->code set), or another negative
 * errno (the connect's own when the socket could not be reached). */
int client_connect(const char *path, struct client **ret_client, struct client_error *err);

/* Close the connection and drop queued events; accepts NULL. */
void client_destroy(struct client *c);

/* The hello result ({"proto", "server", "pid"}), owned by c. */
const cJSON *client_hello(const struct client *c);

/* Send op with args (not taken; NULL means none) and wait for its reply.
 * Events that arrive meanwhile are queued for client_next_event. Returns 0
 * and the result in *ret_result (the caller's to delete), -EREMOTEIO when
 * the daemon answered with an error (err->code and err->message), or another
 * negative errno when the connection failed (err->message). */
int client_call(struct client *c, const char *op, const cJSON *args, cJSON **ret_result,
		struct client_error *err);

/* The next pushed event ({"event", "sub", "data"}), queued or read; waits
 * at most timeout_ms (forever when negative). Returns 1 with the event in
 * *ret_event (the caller's to delete), 0 on timeout, or a negative errno. */
int client_next_event(struct client *c, int timeout_ms, cJSON **ret_event,
		      struct client_error *err);

/* True when client_next_event would not block: an event is queued, a whole
 * frame is buffered, or the socket has bytes to read. */
bool client_event_pending(struct client *c);

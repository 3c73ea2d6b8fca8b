/* A request being handled, its replies, and the helpers every op handler shares. */
#pragma once

#include <stdint.h>

#include <cjson/cJSON.h>

struct conn;
struct daemon;

/* One request being handled. Handlers reply exactly once, now or later;
 * to reply later they take a held copy (request_hold). */
struct request {
	struct daemon *d;
	struct conn *conn;
	int64_t id;
	const cJSON *args; /* valid during the handler call only */
};

/* Reply {"ok":true,"result":result}; takes ownership of result. */
void request_reply(struct request *req, cJSON *result);

/* Reply {"ok":false,"error":{code, message}}. */
void request_error(struct request *req, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Reply with the error that a negative errno from a module means, using
 * cause as the message when there is one. */
void request_error_errno(struct request *req, int err, const char *cause);

/* A heap copy that keeps the connection alive for a later reply. */
struct request *request_hold(const struct request *req);
void request_release(struct request *req);

/* Reply InvalidArgument with the message in cause (from msg_arg_*), and
 * free it. */
void request_arg_error(struct request *req, char *cause);

/* The run named by args.run: an id, or a sequence number as an integer or
 * a string ("17", "#17"). Replies the error itself and returns < 0. */
int request_resolve_run(struct request *req, int64_t *ret_seq);
/* The same for the run named by args[key] ("sweep", "parent"). */
int request_resolve_run_arg(struct request *req, const char *key, int64_t *ret_seq);

/* Reply to a chunked read of a stored blob (artifact.read, model.read):
 * {data: base64 of up to length bytes from offset, size, eof}. The range
 * is clamped to size; name is what an error calls the file. */
void request_reply_blob_chunk(struct request *req, const char *hex, int64_t size, int64_t offset,
                              int64_t length, const char *name);

/* One op of the protocol: its name, its handler and when it is allowed.
 * Each ops_<group>.c exports its entries beside its handlers. */
struct op_entry {
	const char *name;
	void (*handler)(struct request *req);
	unsigned flags;
};

enum {
	/* Allowed before the hello handshake. */
	OP_BEFORE_HELLO = 1 << 0,
	/* Refused once the daemon is stopping (it would start new work). */
	OP_NEW_WORK = 1 << 1,
};

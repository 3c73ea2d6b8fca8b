/* From a decoded message to the handler of its op. */
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

/* Handle one frame's JSON (NULL when it did not parse). */
void dispatch_message(struct conn *c, const cJSON *msg);

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

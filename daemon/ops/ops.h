/* The handlers of the protocol's ops; the table is in dispatch.c. */
#pragma once

#include <stdint.h>

struct request;

/* Reply InvalidArgument with the message in cause (from msg_arg_*), and
 * free it. */
void ops_arg_error(struct request *req, char *cause);

/* The run named by args.run: an id, or a sequence number as an integer or
 * a string ("17", "#17"). Replies the error itself and returns < 0. */
int ops_resolve_run(struct request *req, int64_t *ret_seq);

void ops_hello(struct request *req);
void ops_run_list(struct request *req);
void ops_run_show(struct request *req);
void ops_run_logs(struct request *req);
void ops_run_watch(struct request *req);
void ops_run_unwatch(struct request *req);
void ops_run_cancel(struct request *req);
void ops_run_outputs(struct request *req);
void ops_artifact_read(struct request *req);
void ops_experiment_list(struct request *req);
void ops_daemon_status(struct request *req);
void ops_daemon_stop(struct request *req);

/* Reply to a chunked read of a stored blob (artifact.read, model.read):
 * {data: base64 of up to length bytes from offset, size, eof}. The range
 * is clamped to size; name is what an error calls the file. */
void ops_reply_blob_chunk(struct request *req, const char *hex, int64_t size, int64_t offset,
                          int64_t length, const char *name);

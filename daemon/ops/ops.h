/* The handlers of the protocol's ops; the table is in dispatch.c. */
#pragma once

#include <stdint.h>

struct request;

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

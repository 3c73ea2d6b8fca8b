/* The op table's parts: each ops_<group>.c exports its entries, dispatch.c
 * searches them. */
#pragma once

#include "request.h"

/* Each array ends with an entry whose name is NULL. */
extern const struct op_entry ops_model_entries[];
extern const struct op_entry ops_dataset_entries[];
extern const struct op_entry ops_env_entries[];
extern const struct op_entry ops_compute_entries[];
extern const struct op_entry ops_tracking_entries[];
extern const struct op_entry ops_daemon_entries[];
extern const struct op_entry ops_run_entries[];
extern const struct op_entry ops_submit_entries[];
extern const struct op_entry ops_snapshot_entries[];
extern const struct op_entry ops_service_entries[];
extern const struct op_entry ops_sweep_entries[];
extern const struct op_entry ops_history_entries[];
extern const struct op_entry ops_cache_entries[];

/* sweep.cancel's work and reply, which run.cancel of a sweep shares. */
void ops_sweep_cancel_reply(struct request *req, int64_t seq);

/* The table entries of the verb groups, each defined beside its handlers. */
#pragma once

#include "verb.h"

extern const struct verb cmd_submit_entry;	/* submit.c */
extern const struct verb cmd_runs_entry;	/* runs.c */
extern const struct verb cmd_show_entry;
extern const struct verb cmd_logs_entry;
extern const struct verb cmd_wait_entry;
extern const struct verb cmd_cancel_entry;
extern const struct verb cmd_update_entry;
extern const struct verb cmd_experiments_entry;
extern const struct verb cmd_outputs_entry;	/* outputs.c */
extern const struct verb cmd_daemon_entry;	/* daemon.c */
extern const struct verb cmd_ui_entry;		/* ui.c */
extern const struct verb cmd_metrics_entry;	/* metrics.c */
extern const struct verb cmd_compare_entry;
extern const struct verb cmd_tag_entry;
extern const struct verb cmd_ignore_entry;	/* snapshot.c */
extern const struct verb cmd_snapshot_entry;
extern const struct verb cmd_model_entry;	/* model.c */
extern const struct verb cmd_service_entry;	/* service.c */
extern const struct verb cmd_env_entry;		/* env.c */
extern const struct verb cmd_compute_entry;	/* compute.c */
extern const struct verb cmd_dataset_entry;	/* dataset.c */
extern const struct verb cmd_sweep_entry;	/* sweep.c */
extern const struct verb cmd_rm_entry;		/* history.c */
extern const struct verb cmd_gc_entry;
extern const struct verb cmd_du_entry;
extern const struct verb cmd_cache_entry;

/* show's "Retention:" line from run.show's retention (history.c). */
void history_print_retention(const cJSON *retention);

/* runyard experiments rm NAME (history.c); argv[0] is "rm". */
int experiments_rm(struct ctx *ctx, int argc, char **argv);

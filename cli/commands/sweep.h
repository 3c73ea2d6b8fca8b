/* What the sweep files share: a sweep's summary for 'runyard show', the submit entry. */
#pragma once

struct ctx;

/* Call sweep.show for the sweep id and print its trials by status, its
 * best child and its decisions; 0 or an exit status (said why). */
int sweep_show_summary(struct ctx *ctx, const char *id);

/* sweep submit, for the group's table (sweep_submit.c). */
extern const struct verb sweep_submit_entry;

/* The protocol's ops about snapshots and ignore rules: ignore.check,
 * snapshot.export and snapshot.export_read (the table is in dispatch.c). */
#pragma once

struct request;

/* Exports not read for this long are dropped (their temporary file goes). */
#define SNAPOPS_EXPORT_IDLE_S 600
/* At most this many exports are kept at once. */
#define SNAPOPS_EXPORTS_MAX 16
/* snapshot.export_read's largest chunk. */
#define SNAPOPS_CHUNK (4 * 1024 * 1024)

void snapops_ignore_check(struct request *req);
void snapops_export(struct request *req);
void snapops_export_read(struct request *req);

/* Reclaiming and measuring the store: the blob collector and du. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct daemon;
struct statvfs;

/* When a collection or a measurement is done: err 0 and its report (the
 * callee takes it), or a negative errno and a message. */
typedef void (*gc_done_fn)(void *ud, int err, const char *cause, cJSON *report);

/* Collect the blobs nothing in the store refers to (dry_run: only count
 * them), without stopping runs or submits. -EBUSY when one is running. */
int gc_start(struct daemon *d, bool dry_run, gc_done_fn cb, void *ud);
bool gc_running(struct daemon *d);

/* The store's size by kind, and its largest experiments and runs. */
int gc_du(struct daemon *d, const char *experiment, gc_done_fn cb, void *ud);

/* Free and total bytes of the state directory's file system. */
int gc_free_space(struct daemon *d, uint64_t *ret_free, uint64_t *ret_total);
void gc_add_free_space(cJSON *o, const struct statvfs *v);

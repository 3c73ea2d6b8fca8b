/* What blob.c and blob_gc.c share: the collector's state inside a store. */
#pragma once

#include <stdbool.h>

#include "blob.h"

struct blob_gc;

/* The state of holds and of a collection; NULL on out of memory. */
struct blob_gc *blob_gc_create(void);
void blob_gc_destroy(struct blob_gc *g);

/* A blob is about to be used by a writer (an existence check before a put
 * is skipped, or before a stat cache's record is believed): while a
 * collection runs, it must not remove that blob. */
void blob_gc_note(struct blob_gc *g, const char *hex);

/* The store's parts blob_gc.c works on. */
struct blob_gc *blob_store_gc(struct blobstore *bs);
int blob_store_shafd(const struct blobstore *bs);
/* Write a new epoch (root/blobs.epoch) before anything is removed. */
int blob_store_new_epoch(struct blobstore *bs);

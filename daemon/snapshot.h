/* Snapshots: a source tree stored content-addressed, named by its manifest's hash. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "blob.h"
#include "walk.h"

#define SNAPSHOT_DEFAULT_MAX_BYTES (300ULL * 1000 * 1000)
#define SNAPSHOT_DEFAULT_MAX_FILES 2000ULL

/* At most this many skipped entries are listed; snapshot_info counts them all. */
#define SNAPSHOT_SKIPPED_MAX 1000

/* A field left 0 takes its default; UINT64_MAX means no limit. */
struct snapshot_limits {
	uint64_t max_bytes;
	uint64_t max_files;
};

struct snapshot_info {
	char id[65];            /* sha256 of the manifest = the snapshot id */
	uint64_t files;         /* regular files taken */
	uint64_t bytes;         /* their total size */
	cJSON *skipped;         /* array of {"path": ..., "reason": ...}; owned by the info */
	uint64_t skipped_total; /* entries skipped; more than listed past SNAPSHOT_SKIPPED_MAX */
};

/* Free what the info owns (not the info itself). */
void snapshot_info_finish(struct snapshot_info *info);

/* Walk source, store each regular file as a blob, store the manifest as a
 * blob. matcher (may be NULL: take everything) supplies enter_dir, leave_dir
 * and ignored; its visit is not used. lim NULL: the defaults.
 *
 * Taken: regular files, directories, and symlinks whose target, read
 * lexically from the link's directory, stays inside the tree. Skipped and
 * listed: other symlinks, FIFOs, sockets, devices. Errors: -ENOENT or
 * -ENOTDIR for a bad source, -EACCES for anything unreadable, -EFBIG over a
 * limit (the cause names the largest files and directories and suggests
 * ignore patterns), -EAGAIN when a file changed into something else while
 * the snapshot was taken. *ret is filled on success only.
 *
 * The walk, and so every matcher callback, runs on the calling thread; for
 * a large tree the files are then hashed and copied on up to 4 threads. */
int snapshot_take(struct blobstore *bs, const char *source, const struct walk_ops *matcher,
                  void *matcher_ud, const struct snapshot_limits *lim, struct snapshot_info *ret,
                  char **cause);

/* Recreate the snapshot's tree under dest, which must exist and be empty:
 * directories, files with their permission bits (copies, never links to
 * blobs, since the run may modify them), symlinks. Set-user-ID and
 * set-group-ID bits are not restored. On failure dest may hold part of the
 * tree; the caller removes it. */
int snapshot_materialise(struct blobstore *bs, const char *id, const char *dest, char **cause);

/* Whether relpath names a regular file in the snapshot, following the
 * snapshot's own symlinks as the materialised tree would (used to resolve
 * the program at submit). "./" and "." components are fine; an absolute
 * path or one that climbs out of the tree is never in it. */
int snapshot_has_file(struct blobstore *bs, const char *id, const char *relpath, bool *ret);

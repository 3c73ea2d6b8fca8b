/* Datasets: named data with versions that increment per name, whose
 * contents (local files and directories, downloaded URLs) are pinned by
 * hash at registration as a manifest of content-addressed blobs
 * (docs/inputs.md). */
#pragma once

#include <stdint.h>

struct daemon;
struct sqlite3_stmt;

/* The columns of a dataset row, in the order datasets_find gives them. */
#define DATASETS_COLUMNS "name, version, manifest, files, bytes, sources, description, created_at"

/* The row of NAME[:VERSION] (the latest with version 0), stepped; -ENOENT. */
int datasets_find(struct daemon *d, const char *name, int64_t version, struct sqlite3_stmt **ret);

/* A dataset version as a run consumes it. */
struct datasets_version {
	char *name;
	int64_t version;
	char manifest[65]; /* the snapshot id of its contents */
	int64_t files;
	int64_t bytes;
};

void datasets_version_finish(struct datasets_version *v);

/* Resolve "NAME" or "NAME:VERSION" (the latest version when none is
 * given). -ENOENT or -EINVAL with a message in *cause. Loop thread. */
int datasets_resolve(struct daemon *d, const char *ref, struct datasets_version *ret, char **cause);

/* A read-only tree of the manifest's files under the state directory, made
 * once and shared by every run that mounts it; *ret_dir is malloc'd. Safe
 * in the thread pool (it touches no store). */
int datasets_mount_dir(struct daemon *d, const char *manifest, char **ret_dir, char **cause);

/* At start, before any run is prepared: remove the temporary trees of
 * datasets_mount_dir that a daemon killed while making them left
 * (<state>/datasets/.<manifest>.<hex>); finished trees stay. */
void datasets_sweep(struct daemon *d);

/* Daemon stopping: drop registrations waiting for downloads (through the
 * hook that whoever keeps them set). */
void datasets_shutdown(struct daemon *d);
void datasets_shutdown_hook(void (*fn)(struct daemon *d));

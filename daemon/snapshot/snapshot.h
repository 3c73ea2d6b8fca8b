/* Snapshots: a source tree stored content-addressed, named by its manifest's hash. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "blob.h"
#include "walk.h"

#define SNAPSHOT_DEFAULT_MAX_BYTES (300ULL * 1000 * 1000)
#define SNAPSHOT_DEFAULT_MAX_FILES 2000ULL

/* At most this many skipped entries are listed; snapshot_info counts them all. */
#define SNAPSHOT_SKIPPED_MAX 1000

/* At most this many entries are listed by a dry run. */
#define SNAPSHOT_LIST_MAX 50000

/* How many largest files and directories an over-limit error names. */
#define SNAPSHOT_TOP_N 10

/* Below the store's root (the daemon's state directory), the folder of the
 * runs' working directories: the one place there a source may be, since a
 * run submits its children from its own directory. Any other source inside
 * the root is refused (-EINVAL), and a source above it leaves it out. */
#define SNAPSHOT_RUNS_DIR "runs"

/* A field left 0 takes its default; UINT64_MAX means no limit. */
struct snapshot_limits {
	uint64_t max_bytes;
	uint64_t max_files;
};

/* How to take a snapshot; zero-initialised is "everything, default limits". */
struct snapshot_opts {
	/* The ignore matcher (may be NULL: take everything): its enter_dir,
	 * leave_dir, ignored and take_error are used, not visit. */
	const struct walk_ops *matcher;
	void *matcher_ud;
	/* The ignore file the matcher reads, named in the over-limit message's
	 * suggestion; NULL: ".amlignore". */
	const char *ignore_file;
	struct snapshot_limits limits;
	/* The stat cache file of this source (see statcache.h); NULL: none.
	 * Files whose size, mtime, ctime and inode are unchanged since the last
	 * snapshot are not read again. */
	const char *stat_cache;
	/* Walk and count only: store nothing, list what would be taken in
	 * info.entries. Over a limit still fails with -EFBIG, and the info is
	 * filled all the same. */
	bool list_only;
};

struct snapshot_info {
	char id[65];            /* sha256 of the manifest = the snapshot id; "" when list_only */
	uint64_t files;         /* regular files taken */
	uint64_t bytes;         /* their total size */
	uint64_t dirs;          /* directories taken (not counting the root) */
	uint64_t symlinks;      /* symlinks taken */
	cJSON *skipped;         /* array of {"path": ..., "reason": ...}; owned by the info */
	uint64_t skipped_total; /* entries skipped; more than listed past SNAPSHOT_SKIPPED_MAX */
	uint64_t read_files;    /* files read (hashed) to take it */
	uint64_t read_bytes;
	uint64_t cached_files;  /* files whose hash came from the stat cache */
	uint64_t new_blobs;     /* file contents the store did not have yet */
	cJSON *entries;         /* list_only: [{"path", "type", "size"?}], sorted by path */
	bool entries_truncated; /* more than SNAPSHOT_LIST_MAX */
	void *tree;             /* the entries in memory, for snapshot_info_has_file */
};

/* Free what the info owns (not the info itself). */
void snapshot_info_finish(struct snapshot_info *info);

/* Walk source, store each regular file as a blob, store the manifest as a
 * blob. The walk, and so every matcher callback, runs on the calling thread;
 * for a large tree the files are then hashed and copied on up to 4 threads.
 *
 * Taken: regular files, directories, and symlinks whose target, read
 * lexically from the link's directory, stays inside the tree. Skipped and
 * listed: other symlinks, FIFOs, sockets, devices, files and directories
 * that cannot be read, and the store's own root (SNAPSHOT_RUNS_DIR). Names are bytes: the manifest keeps them
 * as they are, while the skipped list (which goes to clients) has invalid
 * UTF-8 replaced. Errors: -ENOENT or -ENOTDIR for a bad source, -EACCES when
 * the source itself cannot be read, -EFBIG over a limit (the cause names the
 * largest files and directories and suggests ignore patterns), -EINVAL for
 * a source inside the store's root (SNAPSHOT_RUNS_DIR), -EAGAIN when
 * a file changed into something else while the snapshot was taken. *ret is
 * filled on success only. */
int snapshot_take_with(struct blobstore *bs, const char *source, const struct snapshot_opts *opts,
                       struct snapshot_info *ret, char **cause);

/* snapshot_take_with with only a matcher and limits (lim NULL: defaults). */
int snapshot_take(struct blobstore *bs, const char *source, const struct walk_ops *matcher,
                  void *matcher_ud, const struct snapshot_limits *lim, struct snapshot_info *ret,
                  char **cause);

/* How materialising went: files, and how many were reflinked, copied in
 * the kernel or copied by read and write. */
struct snapshot_copy_stats {
	uint64_t files;
	uint64_t reflinked;
	uint64_t kernel_copied;
	uint64_t plain_copied;
};

/* Recreate the snapshot's tree under dest, which must exist and be empty:
 * directories, files with their permission bits (copies, never links to
 * blobs, since the run may modify them; reflinks or in-kernel copies where
 * the file system can), symlinks. Set-user-ID and set-group-ID bits are not
 * restored. On failure dest may hold part of the tree; the caller removes it. */
int snapshot_materialise(struct blobstore *bs, const char *id, const char *dest, char **cause);

/* snapshot_materialise, counting how files were copied (stats may be NULL). */
int snapshot_materialise_stats(struct blobstore *bs, const char *id, const char *dest,
                               struct snapshot_copy_stats *stats, char **cause);

/* Whether relpath names a regular file in the snapshot, following the
 * snapshot's own symlinks as the materialised tree would (used to resolve
 * the program at submit). "./" and "." components are fine; an absolute
 * path or one that climbs out of the tree is never in it. */
int snapshot_has_file(struct blobstore *bs, const char *id, const char *relpath, bool *ret);

/* snapshot_has_file for the snapshot just taken into info, from its
 * entries in memory (no reading back of the manifest). */
int snapshot_info_has_file(struct blobstore *bs, const struct snapshot_info *info,
                           const char *relpath, bool *ret);

/* One entry of a stored manifest, for snapshot_foreach. */
enum snapshot_type { SNAPSHOT_FILE, SNAPSHOT_DIR, SNAPSHOT_SYMLINK };
struct snapshot_entry {
	const char *path; /* raw bytes, relative, '/'-separated */
	enum snapshot_type type;
	uint32_t mode;      /* files and directories */
	uint64_t size;      /* files */
	const char *sha256; /* files */
	const char *target; /* symlinks */
};

/* Call cb for each entry of the snapshot in path order (parents before
 * their children) until it returns non-zero; a negative return is returned.
 * The manifest is checked first: -EBADMSG when damaged, -ENOENT when there
 * is no such snapshot. */
int snapshot_foreach(struct blobstore *bs, const char *id,
                     int (*cb)(void *ud, const struct snapshot_entry *e), void *ud, char **cause);

/* The snapshot's files as [{path, size, sha256}] in path order, at most max
 * of them (paths made valid UTF-8 for the wire); 1 when there were more,
 * 0, or snapshot_foreach's errors. */
int snapshot_files_json(struct blobstore *bs, const char *id, int max, cJSON **ret,
                        char **cause);

/* Whether a symlink at linkpath (relative to the root) with this target stays
 * inside the tree, judged on the text alone: an absolute target is outside,
 * and so is a relative one whose ".." climbs above the root at any point. */
bool snapshot_link_inside(const char *linkpath, const char *target);

/* ---- building a snapshot from entries that are not a directory ----
 *
 * snapshot_take walks a directory with these; the archive importer drives
 * them from an archive's entries: walk (calling snapshot_build_walk_ops's
 * hooks with the build as ud), check the limits, give each file's content,
 * finish. A walk_entry with dirfd -1 has no directory to read from: a
 * symlink's target must then be in link_target. */
struct snapshot_build;

int snapshot_build_create(struct blobstore *bs, const char *source,
                          const struct snapshot_opts *opts, struct snapshot_build **ret);

/* Free the build; accepts NULL. */
void snapshot_build_destroy(struct snapshot_build *b);

/* The hooks that collect entries; ud is the build. They call the matcher. */
extern const struct walk_ops snapshot_build_walk_ops;

/* A message for a failure of the hooks (malloc'd), or NULL. */
char *snapshot_build_take_cause(struct snapshot_build *b);

/* After the walk: -EFBIG with the over-limit message when over a limit. */
int snapshot_build_check(struct snapshot_build *b, char **cause);

/* For a dry run, after the walk: what would be taken, into *ret (filled
 * also when over a limit, which returns -EFBIG with the message). */
int snapshot_build_list(struct snapshot_build *b, struct snapshot_info *ret, char **cause);

/* The regular files collected, indexed 0..n-1 in walk order. */
size_t snapshot_build_files(const struct snapshot_build *b);
const char *snapshot_build_file_path(const struct snapshot_build *b, size_t i);

/* Give file i's content hash and size, or skip it (reason "unreadable"...). */
void snapshot_build_set_file(struct snapshot_build *b, size_t i, const char hex[65], uint64_t size);
int snapshot_build_skip_file(struct snapshot_build *b, size_t i, const char *reason);

/* Store the manifest into batch (its file contents must be in it or in the
 * store already), commit the batch, and fill *ret. */
int snapshot_build_finish(struct snapshot_build *b, struct blob_batch *batch,
                          struct snapshot_info *ret, char **cause);

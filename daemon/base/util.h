/* Small helpers shared by the daemon's modules: time, paths, files. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Wall-clock time as unix seconds with microseconds. */
double util_now(void);

/* mkdir -p with the given mode for directories it creates. */
int util_mkdir_p(const char *path, mode_t mode);

/* mkdir -p of root/rel that goes through real directories only: a component
 * of rel that exists as a symlink (which a snapshot may hold, pointing
 * anywhere) is refused with -ELOOP and, in *ret_link when non-NULL, its
 * prefix of rel (malloc'd). rel is relative and has no ".." (checked at
 * submit). Race-free only while nothing else writes below root, as a
 * working directory before its run starts. */
int util_mkdir_beneath(const char *root, const char *rel, mode_t mode, char **ret_link);

/* Remove a tree without following symlinks; a missing path is not an error. */
int util_rm_rf(const char *path);

/* Open a regular file to read (openat; extra flags such as O_NOFOLLOW):
 * O_NONBLOCK, so a FIFO or a device put where a file was expected never
 * blocks the caller, then -EINVAL for anything but a regular file (-EISDIR
 * for a directory). */
int util_open_regular(int dirfd, const char *path, int flags);

/* Read a whole (small) regular file; -EFBIG over max bytes. Result NUL-terminated. */
int util_read_file(const char *path, size_t max, char **ret_buf, size_t *ret_len);

/* A relative path with "." and empty components (so also "./" prefixes
 * and a trailing '/') dropped, malloc'd in *ret. When strict, an absolute
 * path or a ".." component is refused with -EINVAL and *why says which. */
int util_rel_normalise(const char *in, bool strict, char **ret, const char **why);

/* write(2) all of buf, again after EINTR and short writes. */
int util_write_all(int fd, const void *buf, size_t len);

/* Write a file atomically: temp name, fsync, rename, fsync the directory. */
int util_write_file_atomic(const char *path, const void *buf, size_t len, mode_t mode);

/* n random bytes as 2n lowercase hex characters plus NUL. */
int util_random_hex(char *buf, size_t nbytes);

/* Join two path parts with one '/'; malloc'd or NULL. */
char *util_path_join(const char *a, const char *b);

/* Find an executable on a colon-separated PATH; malloc'd absolute path or NULL. */
char *util_which(const char *name, const char *path_env);

/* Whether name matches ^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$ (experiments, models). */
bool util_valid_name(const char *name);
/* A dataset name: as util_valid_name, and spaces inside it (not first or
 * last), as the cloud allows. */
bool util_valid_dataset_name(const char *name);

/* Parse "NAME" or "NAME:VERSION" (*ret_version 0: the latest) of a
 * registry of things called what ("model", "environment", "dataset"): the
 * name must pass util_valid_name, VERSION is a number from 1. -EINVAL with
 * a message in *cause when it is neither. */
int util_parse_ref(const char *ref, const char *what, char **ret_name, int64_t *ret_version,
		   char **cause);

/* The message for an unknown NAME[:VERSION] of a registry (kind "model",
 * "dataset"), pointing at 'runyard KIND list'; malloc'd or NULL. */
char *util_ref_not_found(const char *kind, const char *name, int64_t version);

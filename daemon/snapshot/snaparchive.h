/* Snapshots and archives (libarchive): a snapshot taken from an archive, and
 * a snapshot written out as one. */
#pragma once

#include <stdint.h>

#include "blob.h"
#include "snapshot.h"

enum snaparchive_format {
	SNAPARCHIVE_TAR,
	SNAPARCHIVE_TAR_GZ,
	SNAPARCHIVE_TAR_ZST,
	SNAPARCHIVE_ZIP,
};

/* "tar", "tar.gz" (or "tgz"), "tar.zst" (or "tzst"), "zip"; -EINVAL else. */
int snaparchive_format_parse(const char *name, enum snaparchive_format *ret);

/* The canonical name of a format ("tar.gz"). */
const char *snaparchive_format_name(enum snaparchive_format f);

/* Take a snapshot from the archive at path (any format and compression
 * libarchive reads) as snapshot_take_with takes one from a directory: the
 * archive's own .amlignore (else .gitignore) files apply, limits, skipped
 * entries and all. The archive is read twice: once for its list of entries,
 * which is checked in full before anything is stored, then for the contents
 * of the files taken. Refused, with nothing stored: an entry with an
 * absolute path or a ".." component (-EINVAL), a hard link to something
 * that is not a file of the archive, a path that is both a file and a
 * directory; a damaged archive gives -EBADMSG. opts->matcher and
 * opts->stat_cache are not used. */
int snaparchive_take(struct blobstore *bs, const char *path, const struct snapshot_opts *opts,
                     struct snapshot_info *ret, char **cause);

/* Write the snapshot id to fd as an archive of the given format: its
 * directories, files (with their permission bits) and symlinks, every entry
 * with mtime and owner 0/0. Names that are valid UTF-8 are written as such;
 * others as the bytes they are. ret_size and ret_sha256 (may be NULL) get
 * the archive's size and hash. */
int snaparchive_export(struct blobstore *bs, const char *id, enum snaparchive_format format, int fd,
                       int64_t mtime, uint64_t *ret_size, char ret_sha256[65], char **cause);

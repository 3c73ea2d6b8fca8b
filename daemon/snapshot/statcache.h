/* The stat cache: (path, size, mtime, ctime, inode) -> content hash, one file
 * per source directory, so an unchanged tree is not read again. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

/* A file whose mtime or ctime is this close to the moment the cache was
 * written could still change within the same timestamp tick without either
 * moving ("racily clean", as git calls it): it is hashed again. Timestamps
 * in whole seconds (both nanosecond parts zero) get the larger margin. */
#define STATCACHE_RACY_NS (100LL * 1000 * 1000)
#define STATCACHE_RACY_COARSE_NS (2LL * 1000 * 1000 * 1000)

/* Older cache files than this are removed when a cache is written. */
#define STATCACHE_MAX_AGE_S (90 * 24 * 3600)

struct statcache;

/* What is recorded of a file. */
struct statcache_rec {
	const char *path;
	uint64_t ino;
	uint64_t size;
	int64_t mtime_ns;
	int64_t ctime_ns;
	unsigned char digest[32];
};

/* The cache file for source under dir ("<dir>/<sha256 of source>"), malloc'd. */
char *statcache_path(const char *dir, const char *source);

/* Load a cache file. A missing, damaged or foreign file gives an empty
 * cache: the cache only ever saves reading, it is never needed. epoch is
 * the blob store's (blob_store_epoch). */
int statcache_load(const char *path, const char *epoch, struct statcache **ret);

/* How many files the cache records (0 when empty or damaged). */
size_t statcache_count(const struct statcache *c);

/* Whether the cache was written in the store's current epoch: then every
 * hash it holds names a blob that is still stored, without looking. */
bool statcache_same_epoch(const struct statcache *c);

/* Free; accepts NULL. */
void statcache_destroy(struct statcache *c);

/* The recorded hash of path when st (an lstat or fstat of it now) matches
 * what was recorded and the record is not racy. */
bool statcache_lookup(const struct statcache *c, const char *path, const struct stat *st,
                      unsigned char ret_digest[32]);

/* Fill a record's stat fields from st. */
void statcache_rec_from_stat(struct statcache_rec *rec, const struct stat *st);

/* Write a cache of n records atomically (a temporary, then rename), with
 * now as the time the files were last read. The directory is created. */
int statcache_save(const char *path, const char *epoch, const struct statcache_rec *recs, size_t n,
                   int64_t now_ns);

/* CLOCK_REALTIME in nanoseconds: file timestamps are on that clock. */
int64_t statcache_now_ns(void);

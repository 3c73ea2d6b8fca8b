/* Content-addressed blobs: blobs/sha256/ab/cdef... under a root directory. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct blobstore;
struct blob_batch;

/* Open (creating as needed) root/blobs/sha256 and root/tmp; temporaries
 * that a crash left in tmp/ more than an hour ago are removed. */
int blob_store_open(const char *root, struct blobstore **ret);

/* Close the store; accepts NULL. */
void blob_store_close(struct blobstore *bs);

/* The root directory the store was opened with. */
const char *blob_store_root(const struct blobstore *bs);

/* Whether st (a stat or lstat) is the store's root directory, the daemon's
 * state directory: a snapshot never takes it. */
struct stat;
bool blob_store_is_root(const struct blobstore *bs, const struct stat *st);

/* The root's path with its symlinks resolved. */
const char *blob_store_real_root(const struct blobstore *bs);

/* The store's epoch (root/blobs.epoch): the same for as long as no blob has been
 * removed. A collection (blob_gc_begin) writes a new one before it removes
 * anything, since stat caches trust their recorded blobs while it is the same. */
const char *blob_store_epoch(const struct blobstore *bs);

/* Store the regular file at path (relative to dirfd, or absolute; AT_FDCWD
 * ok), hashing while copying in one read pass. Durable when it returns (one
 * fsync of the blob and of its directory; use a batch for many files). A
 * symlink as the last component is refused (-ELOOP), anything else that is
 * not a regular file too (-EISDIR, -EINVAL). */
int blob_put_file(struct blobstore *bs, int dirfd, const char *path, char ret_hex[65],
                  uint64_t *ret_size);

/* Store len bytes of buf. Durable when it returns. */
int blob_put_buf(struct blobstore *bs, const void *buf, size_t len, char ret_hex[65]);

/* Whether a blob is stored under that name (false for a malformed name). */
bool blob_exists(struct blobstore *bs, const char *hex);

/* Path of a blob into buf; -EINVAL when hex is not 64 lowercase hex chars,
 * -ENAMETOOLONG when buf is too small. */
int blob_path(const struct blobstore *bs, const char *hex, char *buf, size_t bufsz);

/* Read a whole blob into memory (NUL-terminated, for manifests); -EFBIG when
 * it is larger than max, -ENOENT when there is no such blob. */
int blob_read_all(struct blobstore *bs, const char *hex, size_t max, char **ret_buf,
                  size_t *ret_len);

/* Copy a blob out to dirfd/path, which must not exist (O_EXCL), with exactly
 * the given mode (umask does not apply). Never a hard link: the copy may be
 * modified. A failed copy removes the partial target. */
int blob_copy_out(struct blobstore *bs, const char *hex, int dirfd, const char *path, mode_t mode);

/* How a copy was made: a reflink (shared blocks, copy-on-write), a copy in
 * the kernel (copy_file_range), or read and write. Empty files count as plain. */
enum blob_copy_how { BLOB_COPY_REFLINK, BLOB_COPY_KERNEL, BLOB_COPY_PLAIN };

/* blob_copy_out, telling how (ret_how may be NULL). */
int blob_copy_out_how(struct blobstore *bs, const char *hex, int dirfd, const char *path,
                      mode_t mode, enum blob_copy_how *ret_how);

/* Hex-encode a 32-byte digest. */
void blob_hex(const unsigned char digest[32], char ret_hex[65]);

/* Whether s is 64 lowercase hex characters followed by NUL. */
bool blob_valid_hex(const char *s);

/* A batch stores many blobs with one durability barrier instead of one
 * fsync per blob (which costs about as much as copying a small file):
 * puts write temporaries, commit syncs them, renames them to their real
 * names and syncs the renames. Until commit, nothing of the batch is visible
 * under a real name. A batch is used by one thread at a time; threads that
 * store at once each fill their own, merged before the commit. */
int blob_batch_create(struct blobstore *bs, struct blob_batch **ret);

/* Hash and store what is read from fd up to end of file (one read pass;
 * small contents already stored are never written at all). */
int blob_batch_put_fd(struct blob_batch *b, int fd, char ret_hex[65], uint64_t *ret_size);

/* The same, reading at most size bytes (the size fstat gave): a file that
 * grew since is stored as it was at that size. */
int blob_batch_put_fd_upto(struct blob_batch *b, int fd, uint64_t size, char ret_hex[65],
                           uint64_t *ret_size);

/* A reader for blob_batch_put_stream: up to len bytes into buf, *ret_n = 0
 * at the end; a negative errno on failure. */
typedef int (*blob_read_fn)(void *ud, void *buf, size_t len, size_t *ret_n);

/* Hash and store what read gives until it gives nothing (archives). */
int blob_batch_put_stream(struct blob_batch *b, blob_read_fn read, void *ud, char ret_hex[65],
                          uint64_t *ret_size);

/* How many new blobs the batch holds, not yet committed: contents already
 * in the store are not counted. */
size_t blob_batch_count(const struct blob_batch *b);

/* Hash and store len bytes of buf. */
int blob_batch_put_buf(struct blob_batch *b, const void *buf, size_t len, char ret_hex[65]);

/* Move the blobs put into from (not yet committed) over to into, so that
 * batches filled by several threads are committed with one barrier. from
 * stays usable, and empty. */
int blob_batch_merge(struct blob_batch *into, struct blob_batch *from);

/* Make every blob put into the batch durable under its real name. On
 * failure the batch can only be destroyed. */
int blob_batch_commit(struct blob_batch *b);

/* Remove the temporaries of blobs not committed and free the batch; accepts NULL. */
void blob_batch_destroy(struct blob_batch *b);

/* A set of blobs by the first 64 bits of their names, open addressing (0
 * is empty); zero-initialised is an empty set. Two names sharing a prefix
 * count as one, which only ever keeps a blob, never removes a used one. */
struct blob_keyset {
	uint64_t *t;
	size_t cap, n;
};
/* The key of a 64-hex-digit name. */
uint64_t blob_key(const char *hex);
/* 1 when added, 0 when there already, -ENOMEM (the set as it was). */
int blob_keyset_add(struct blob_keyset *s, uint64_t k);
bool blob_keyset_has(const struct blob_keyset *s, uint64_t k);
/* Empty it, keeping its memory. */
void blob_keyset_clear(struct blob_keyset *s);
/* Free it; an empty set again. */
void blob_keyset_finish(struct blob_keyset *s);

/* ---- holds and collection (blob_gc.c) ----
 *
 * Every writer that stores blobs and records them in the database later
 * takes a hold before it looks at the store and releases it after its rows
 * are committed (or it gave up): a collection waits for the holds taken
 * before it began, and keeps every blob a writer uses while it runs. */
uint64_t blob_hold(struct blobstore *bs);
/* Release a hold; 0 (no hold) and a NULL store are fine. */
void blob_release(struct blobstore *bs, uint64_t hold);

/* Begin a collection: a new epoch (written durably), noting from now on,
 * the holds taken so far become the ones to wait for. One at a time. */
int blob_gc_begin(struct blobstore *bs);
/* How many holds taken before the collection began are still held. */
int64_t blob_gc_waiting(struct blobstore *bs);
/* Remove a blob unless a writer used it since blob_gc_begin (-EBUSY);
 * -EAGAIN when noting failed (remove nothing), -ENOENT when gone. */
int blob_gc_remove(struct blobstore *bs, const char *hex);
void blob_gc_end(struct blobstore *bs);

/* Each stored blob: its name, size and the bytes it takes on disk. */
typedef int (*blob_list_fn)(void *ud, const char *hex, uint64_t size, uint64_t disk);
int blob_foreach(struct blobstore *bs, blob_list_fn cb, void *ud);

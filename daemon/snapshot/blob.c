#include "blob.h"
#include "blob_priv.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/fs.h>

#include <openssl/evp.h>
#include <openssl/opensslv.h>

/* Contents up to this size are hashed before anything is written, so an
 * already stored small file costs no temporary at all; larger contents are
 * streamed through a temporary in chunks of this size. */
#define COPY_BUF_SIZE (256 * 1024)

/* Up to this many new blobs a commit fsyncs each file and directory; above,
 * one syncfs is cheaper. Small batches (a resubmit with a few changed files)
 * stay clear of syncfs, which would also wait for unrelated dirty data on
 * the file system, such as a running job's checkpoints. */
#define BATCH_FSYNC_MAX 16

/* From this many new blobs a commit renames them on two threads. */
#define PUBLISH_PARALLEL_MIN 1000

/* Temporaries older than this are left from a crash (see clean_tmp). */
#define STALE_TMP_SECONDS 3600

#define TMP_PREFIX "blob-"
#define TMP_DIR_PREFIX "dirs-" /* as long as TMP_PREFIX */
#define TMP_NAME_LEN (sizeof(TMP_PREFIX) - 1 + 6)

struct blobstore {
	char *root;
	/* root/blobs.epoch: changes whenever blobs may have been removed. Two
	 * slots, so a reader's pointer stays a whole string while a collection
	 * writes the next one into the other slot. */
	char epochs[2][33];
	_Atomic int epoch_cur;
	struct blob_gc *gc; /* holds and the collection (blob_gc.c) */
	char *tmpdir;   /* root/tmp, for mkostemp templates */
	int shafd;      /* root/blobs/sha256 */
	int tmpfd;      /* root/tmp */
	const EVP_MD *md;
	EVP_MD *fetched; /* owned; fetched once since every implicit fetch takes a lock */
	dev_t root_dev;  /* the root's identity: snapshots never take it */
	ino_t root_ino;
	char *root_real; /* its path with symlinks resolved */
};

struct pending {
	char tmpname[TMP_NAME_LEN + 1]; /* empty once renamed or removed */
	int dirfd;                      /* the directory of the temporary (its batch's) */
	char hex[65];
	int fd; /* kept open for fsync at commit in small batches, else -1 */
};

struct blob_batch {
	struct blobstore *bs;
	EVP_MD_CTX *ctx;
	unsigned char *buf;
	struct pending *p;
	size_t n, cap;
	uint64_t names; /* temporary names: a random start, then counting */
	int dirfd;      /* tmp/batch-NAME, made for the first temporary; -1 before */
	char dirname[TMP_NAME_LEN + 1];
	bool keep_fds;
	bool broken; /* a commit failed half way */
};

static const char hexdigits[] = "0123456789abcdef";

void blob_hex(const unsigned char digest[32], char ret_hex[65])
{
	for (int i = 0; i < 32; i++) {
		ret_hex[2 * i] = hexdigits[digest[i] >> 4];
		ret_hex[2 * i + 1] = hexdigits[digest[i] & 15];
	}
	ret_hex[64] = '\0';
}

bool blob_valid_hex(const char *s)
{
	if (!s) {
		return false;
	}
	for (int i = 0; i < 64; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
			return false;
		}
	}
	return s[64] == '\0';
}

static int hexval(char c)
{
	return c <= '9' ? c - '0' : c - 'a' + 10;
}

/* "ab/cdef..." relative to blobs/sha256. */
static void rel_name(const char *hex, char ret[66])
{
	ret[0] = hex[0];
	ret[1] = hex[1];
	ret[2] = '/';
	memcpy(ret + 3, hex + 2, 62);
	ret[65] = '\0';
}

static int read_full(int fd, void *buf, size_t len, size_t *ret_n)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r = read(fd, (char *)buf + got, len - got);
		if (r < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -errno;
		}
		if (r == 0) {
			break;
		}
		got += (size_t)r;
	}
	*ret_n = got;
	return 0;
}

static int mkdirat_open(int dirfd, const char *name, int *ret_fd)
{
	int fd;

	if (mkdirat(dirfd, name, 0755) < 0 && errno != EEXIST) {
		return -errno;
	}
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		return -errno;
	}
	*ret_fd = fd;
	return 0;
}

/* Remove temporaries a crash left behind. Only old ones: another process
 * may be storing into the same store right now, and a temporary is
 * written and renamed within one snapshot, never an hour. */
static void clean_dir(int dirfd, time_t old)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	DIR *d;

	if (fd < 0) {
		return;
	}
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	while ((de = readdir(d))) {
		struct stat st;
		if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			continue;
		}
		if (S_ISREG(st.st_mode) && st.st_mtime < old &&
		    strncmp(de->d_name, TMP_PREFIX, sizeof(TMP_PREFIX) - 1) == 0) {
			unlinkat(dirfd, de->d_name, 0);
		} else if (S_ISDIR(st.st_mode) &&
		           strncmp(de->d_name, TMP_DIR_PREFIX, sizeof(TMP_DIR_PREFIX) - 1) == 0) {
			int sub = openat(dirfd, de->d_name,
			                 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0) {
				clean_dir(sub, old);
				close(sub);
			}
			if (st.st_mtime < old) {
				unlinkat(dirfd, de->d_name, AT_REMOVEDIR); /* when empty */
			}
		}
	}
	closedir(d);
}

static void clean_tmp(int tmpfd)
{
	clean_dir(tmpfd, time(NULL) - STALE_TMP_SECONDS);
}

/* The store's epoch, made up when the store is created: whoever removes
 * blobs (a future collector) must write a new one, since stat caches trust
 * that a blob they recorded is still there while the epoch is the same. */
static int read_epoch(int rootfd, char ret[33])
{
	char buf[64] = {0};
	ssize_t n;
	int fd;

	fd = openat(rootfd, "blobs.epoch", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT) {
		unsigned char rnd[16];
		char hex[65], tmp[32];
		if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
			return -EIO;
		}
		memset(hex, 0, sizeof(hex));
		for (int i = 0; i < 16; i++) {
			hex[2 * i] = hexdigits[rnd[i] >> 4];
			hex[2 * i + 1] = hexdigits[rnd[i] & 15];
		}
		snprintf(tmp, sizeof(tmp), "blobs.epoch.%d", (int)getpid());
		fd = openat(rootfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0) {
			return -errno;
		}
		if (util_write_all(fd, hex, 32) < 0 || fsync(fd) < 0) {
			int r = -errno;
			close(fd);
			unlinkat(rootfd, tmp, 0);
			return r;
		}
		close(fd);
		/* Two daemons creating it at once: the first name wins. */
		if (linkat(rootfd, tmp, rootfd, "blobs.epoch", 0) < 0 && errno != EEXIST) {
			int r = -errno;
			unlinkat(rootfd, tmp, 0);
			return r;
		}
		unlinkat(rootfd, tmp, 0);
		fd = openat(rootfd, "blobs.epoch", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	}
	if (fd < 0) {
		return -errno;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 1) {
		return -EIO;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	buf[32] = '\0';
	memcpy(ret, buf, strlen(buf) + 1);
	return 0;
}

int blob_store_open(const char *root, struct blobstore **ret)
{
	struct blobstore *bs = NULL;
	int rootfd = -1, blobsfd = -1;
	int r;

	if (!root || !*root) {
		return -EINVAL;
	}
	bs = calloc(1, sizeof(*bs));
	if (!bs) {
		return -ENOMEM;
	}
	bs->shafd = bs->tmpfd = -1;
	bs->root = strdup(root);
	bs->gc = blob_gc_create();
	if (!bs->root || !bs->gc || asprintf(&bs->tmpdir, "%s/tmp", root) < 0) {
		bs->tmpdir = NULL;
		r = -ENOMEM;
		goto fail;
	}
	/* The store holds users' source code: a root it creates is private. */
	r = util_mkdir_p(root, 0700);
	if (r < 0) {
		goto fail;
	}
	rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat rst;
	if (rootfd < 0 || fstat(rootfd, &rst) < 0) {
		r = -errno;
		goto fail;
	}
	bs->root_dev = rst.st_dev;
	bs->root_ino = rst.st_ino;
	bs->root_real = realpath(root, NULL);
	if (!bs->root_real) {
		r = -errno;
		goto fail;
	}
	r = mkdirat_open(rootfd, "blobs", &blobsfd);
	if (r < 0) {
		goto fail;
	}
	r = mkdirat_open(blobsfd, "sha256", &bs->shafd);
	if (r < 0) {
		goto fail;
	}
	r = read_epoch(rootfd, bs->epochs[0]);
	if (r < 0) {
		goto fail;
	}
	r = mkdirat_open(rootfd, "tmp", &bs->tmpfd);
	if (r < 0) {
		goto fail;
	}
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	bs->fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
	bs->md = bs->fetched;
#else
	bs->md = EVP_sha256();
#endif
	if (!bs->md) {
		r = -ENOSYS;
		goto fail;
	}
	clean_tmp(bs->tmpfd);
	close(rootfd);
	close(blobsfd);
	*ret = bs;
	return 0;

fail:
	if (rootfd >= 0) {
		close(rootfd);
	}
	if (blobsfd >= 0) {
		close(blobsfd);
	}
	blob_store_close(bs);
	return r;
}

bool blob_store_is_root(const struct blobstore *bs, const struct stat *st)
{
	return st->st_dev == bs->root_dev && st->st_ino == bs->root_ino;
}

const char *blob_store_real_root(const struct blobstore *bs)
{
	return bs->root_real;
}

void blob_store_close(struct blobstore *bs)
{
	if (!bs) {
		return;
	}
	free(bs->root_real);
	if (bs->shafd >= 0) {
		close(bs->shafd);
	}
	if (bs->tmpfd >= 0) {
		close(bs->tmpfd);
	}
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	EVP_MD_free(bs->fetched);
#endif
	blob_gc_destroy(bs->gc);
	free(bs->tmpdir);
	free(bs->root);
	free(bs);
}

const char *blob_store_root(const struct blobstore *bs)
{
	return bs->root;
}

const char *blob_store_epoch(const struct blobstore *bs)
{
	return bs->epochs[atomic_load(&bs->epoch_cur)];
}

int blob_store_new_epoch(struct blobstore *bs)
{
	int next = !atomic_load(&bs->epoch_cur);
	char *path = NULL;
	int r;

	r = util_random_hex(bs->epochs[next], 16);
	if (r < 0) {
		return r;
	}
	bs->epochs[next][32] = '\0';
	if (asprintf(&path, "%s/blobs.epoch", bs->root) < 0) {
		return -ENOMEM;
	}
	/* Durable before the first removal: a stat cache written against
	 * the old epoch must never be trusted again, even after a crash. */
	r = util_write_file_atomic(path, bs->epochs[next], 32, 0600);
	free(path);
	if (r < 0) {
		return r;
	}
	atomic_store(&bs->epoch_cur, next);
	return 0;
}

struct blob_gc *blob_store_gc(struct blobstore *bs)
{
	return bs->gc;
}

int blob_store_shafd(const struct blobstore *bs)
{
	return bs->shafd;
}

int blob_path(const struct blobstore *bs, const char *hex, char *buf, size_t bufsz)
{
	int n;

	if (!blob_valid_hex(hex)) {
		return -EINVAL;
	}
	n = snprintf(buf, bufsz, "%s/blobs/sha256/%.2s/%s", bs->root, hex, hex + 2);
	if (n < 0 || (size_t)n >= bufsz) {
		return -ENAMETOOLONG;
	}
	return 0;
}

bool blob_exists(struct blobstore *bs, const char *hex)
{
	char rel[66];
	struct stat st;

	if (!blob_valid_hex(hex)) {
		return false;
	}
	/* Whoever asks is about to rely on it: a collection now keeps it. */
	blob_gc_note(bs->gc, hex);
	rel_name(hex, rel);
	return fstatat(bs->shafd, rel, &st, 0) == 0;
}

int blob_batch_create(struct blobstore *bs, struct blob_batch **ret)
{
	struct blob_batch *b = calloc(1, sizeof(*b));

	if (!b) {
		return -ENOMEM;
	}
	b->bs = bs;
	b->keep_fds = true;
	b->dirfd = -1;
	if (getrandom(&b->names, sizeof(b->names), 0) != sizeof(b->names)) {
		b->names = (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL);
	}
	b->ctx = EVP_MD_CTX_new();
	b->buf = malloc(COPY_BUF_SIZE);
	if (!b->ctx || !b->buf) {
		blob_batch_destroy(b);
		return -ENOMEM;
	}
	*ret = b;
	return 0;
}

void blob_batch_destroy(struct blob_batch *b)
{
	if (!b) {
		return;
	}
	for (size_t i = 0; i < b->n; i++) {
		if (b->p[i].fd >= 0) {
			close(b->p[i].fd);
		}
		if (b->p[i].tmpname[0]) {
			unlinkat(b->p[i].dirfd, b->p[i].tmpname, 0);
		}
	}
	if (b->dirfd >= 0) {
		/* Empty unless temporaries merged into another batch are
		 * still pending there: that one is destroyed first. */
		close(b->dirfd);
		unlinkat(b->bs->tmpfd, b->dirname, AT_REMOVEDIR);
	}
	free(b->p);
	free(b->buf);
	EVP_MD_CTX_free(b->ctx);
	free(b);
}

/* A name from the batch's counter: prefix, then base-32 digits. */
static void next_name(struct blob_batch *b, const char *prefix, char name[TMP_NAME_LEN + 1])
{
	static const char digits[] = "abcdefghijklmnopqrstuvwxyz012345";
	uint64_t v = b->names++;

	size_t pl = strlen(prefix);

	memcpy(name, prefix, pl);
	for (size_t i = pl; i < TMP_NAME_LEN; i++) {
		name[i] = digits[v & 31];
		v >>= 5;
	}
	name[TMP_NAME_LEN] = '\0';
}

/* The batch's own directory under tmp/: threads storing at once each
 * create their temporaries in their own directory, not all in tmp/, whose
 * lock they would otherwise take turns at for every file. */
static int batch_dir(struct blob_batch *b)
{
	for (int attempt = 0; b->dirfd < 0 && attempt < 100; attempt++) {
		next_name(b, TMP_DIR_PREFIX, b->dirname);
		if (mkdirat(b->bs->tmpfd, b->dirname, 0700) < 0) {
			if (errno != EEXIST) {
				return -errno;
			}
			b->names += 0x9E3779B97F4A7C15ull;
			continue;
		}
		b->dirfd = openat(b->bs->tmpfd, b->dirname,
		                  O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (b->dirfd < 0) {
			int r = -errno;
			unlinkat(b->bs->tmpfd, b->dirname, AT_REMOVEDIR);
			return r;
		}
	}
	return b->dirfd >= 0 ? 0 : -EEXIST;
}

/* A new temporary in the batch's directory, read-only from the start (a
 * blob is never modified; the descriptor returned may still write it); its
 * name into name. Names count up from a random start: no random draw per
 * file, and a clash takes the next. */
static int tmp_create(struct blob_batch *b, char name[TMP_NAME_LEN + 1], int *ret_fd)
{
	int r = batch_dir(b);

	if (r < 0) {
		return r;
	}
	for (int attempt = 0; attempt < 100; attempt++) {
		int fd;
		next_name(b, TMP_PREFIX, name);
		fd = openat(b->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
		if (fd >= 0) {
			*ret_fd = fd;
			return 0;
		}
		if (errno != EEXIST) {
			return -errno;
		}
		b->names += 0x9E3779B97F4A7C15ull; /* somewhere else entirely */
	}
	return -EEXIST;
}

/* Room for n more pending blobs. */
static int pending_reserve(struct blob_batch *b, size_t n)
{
	size_t ncap;
	struct pending *np;

	if (b->cap - b->n >= n) {
		return 0;
	}
	ncap = b->cap ? b->cap : 16;
	while (ncap - b->n < n) {
		ncap *= 2;
	}
	np = realloc(b->p, ncap * sizeof(*np));
	if (!np) {
		return -ENOMEM;
	}
	b->p = np;
	b->cap = ncap;
	return 0;
}

/* Past BATCH_FSYNC_MAX blobs, close the kept fds: commit will syncfs. */
static void drop_fds(struct blob_batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		if (b->p[i].fd >= 0) {
			close(b->p[i].fd);
			b->p[i].fd = -1;
		}
	}
	b->keep_fds = false;
}

/* Record a written temporary (takes fd) for commit. */
static int pending_add(struct blob_batch *b, const char *tmpname, const char *hex, int fd)
{
	struct pending *p;
	int r = 0;

	/* Read-only since tmp_create: a blob is never modified. */
	r = pending_reserve(b, 1);
	if (r < 0) {
		goto fail;
	}
	if (b->keep_fds && b->n == BATCH_FSYNC_MAX) {
		/* Too many for one fsync each: commit will syncfs instead. */
		drop_fds(b);
	}
	p = &b->p[b->n++];
	memcpy(p->tmpname, tmpname, TMP_NAME_LEN + 1);
	p->dirfd = b->dirfd;
	memcpy(p->hex, hex, 65);
	p->fd = -1;
	if (b->keep_fds) {
		p->fd = fd;
	} else {
		close(fd);
	}
	return 0;

fail:
	close(fd);
	unlinkat(b->dirfd, tmpname, 0);
	return r;
}

static int digest_final(struct blob_batch *b, char ret_hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_DigestFinal_ex(b->ctx, md, &mdlen) != 1 || mdlen != 32) {
		return -EIO;
	}
	blob_hex(md, ret_hex);
	return 0;
}

/* Fill buf with up to len bytes from the source; *ret_n < len only at the end. */
typedef int (*fill_fn)(void *ud, void *buf, size_t len, size_t *ret_n);

static int fill_fd_cb(void *ud, void *buf, size_t len, size_t *ret_n)
{
	return read_full(*(int *)ud, buf, len, ret_n);
}

struct stream_src {
	blob_read_fn read;
	void *ud;
	bool eof;
};

/* Fill from a reader that may return short reads before its end. */
static int fill_stream_cb(void *ud, void *buf, size_t len, size_t *ret_n)
{
	struct stream_src *s = ud;
	size_t got = 0;

	while (got < len && !s->eof) {
		size_t n = 0;
		int r = s->read(s->ud, (char *)buf + got, len - got, &n);
		if (r < 0) {
			return r;
		}
		if (n == 0) {
			s->eof = true;
		}
		got += n;
	}
	*ret_n = got;
	return 0;
}

static int put_filled(struct blob_batch *b, fill_fn fill, void *ud, char ret_hex[65],
                      uint64_t *ret_size)
{
	char tmpname[TMP_NAME_LEN + 1];
	char hex[65];
	uint64_t total = 0;
	size_t fill_len = 0;
	int tfd = -1;
	int r;

	if (b->broken) {
		return -EINVAL;
	}
	if (EVP_DigestInit_ex(b->ctx, b->bs->md, NULL) != 1) {
		return -EIO;
	}
	/* One read pass: fill the buffer, hash it, and write it out only
	 * once it is clear the content does not fit in one buffer (then it
	 * goes to a temporary chunk by chunk). */
	for (;;) {
		size_t got;
		r = fill(ud, b->buf + fill_len, COPY_BUF_SIZE - fill_len, &got);
		if (r < 0) {
			goto out;
		}
		fill_len += got;
		total += got;
		if (fill_len < COPY_BUF_SIZE) {
			break; /* end of file */
		}
		if (EVP_DigestUpdate(b->ctx, b->buf, fill_len) != 1) {
			r = -EIO;
			goto out;
		}
		if (tfd < 0) {
			r = tmp_create(b, tmpname, &tfd);
			if (r < 0) {
				goto out;
			}
		}
		r = util_write_all(tfd, b->buf, fill_len);
		if (r < 0) {
			goto out;
		}
		fill_len = 0;
	}
	if (EVP_DigestUpdate(b->ctx, b->buf, fill_len) != 1) {
		r = -EIO;
		goto out;
	}
	r = digest_final(b, hex);
	if (r < 0) {
		goto out;
	}
	if (blob_exists(b->bs, hex)) {
		/* Content addressed: what is stored is identical. */
		goto out;
	}
	if (tfd < 0) {
		r = tmp_create(b, tmpname, &tfd);
		if (r < 0) {
			goto out;
		}
	}
	r = util_write_all(tfd, b->buf, fill_len);
	if (r < 0) {
		goto out;
	}
	if (total >= COPY_BUF_SIZE) {
		/* Start writing a large content back now, so the commit's sync
		 * has less left to wait for; a hint, so errors do not matter. */
		sync_file_range(tfd, 0, 0, SYNC_FILE_RANGE_WRITE);
	}
	r = pending_add(b, tmpname, hex, tfd);
	tfd = -1; /* taken, even on failure */
out:
	if (tfd >= 0) {
		close(tfd);
		unlinkat(b->dirfd, tmpname, 0);
	}
	if (r == 0) {
		memcpy(ret_hex, hex, 65);
		if (ret_size) {
			*ret_size = total;
		}
	}
	return r;
}

int blob_batch_put_fd(struct blob_batch *b, int fd, char ret_hex[65], uint64_t *ret_size)
{
	return put_filled(b, fill_fd_cb, &fd, ret_hex, ret_size);
}

struct sized_src {
	int fd;
	uint64_t left;
};

/* Read no more than what is left: a file of known size is read in as few
 * calls as it takes, without one more to find its end. */
static int fill_sized_cb(void *ud, void *buf, size_t len, size_t *ret_n)
{
	struct sized_src *s = ud;
	size_t want = s->left < len ? (size_t)s->left : len;
	int r;

	if (want == 0) {
		*ret_n = 0;
		return 0;
	}
	r = read_full(s->fd, buf, want, ret_n);
	if (r == 0) {
		s->left -= *ret_n;
		if (*ret_n < want) {
			s->left = 0; /* shorter than it was: its end */
		}
	}
	return r;
}

int blob_batch_put_fd_upto(struct blob_batch *b, int fd, uint64_t size, char ret_hex[65],
                           uint64_t *ret_size)
{
	struct sized_src s = {.fd = fd, .left = size};

	return put_filled(b, fill_sized_cb, &s, ret_hex, ret_size);
}

int blob_batch_put_stream(struct blob_batch *b, blob_read_fn read, void *ud, char ret_hex[65],
                          uint64_t *ret_size)
{
	struct stream_src s = {.read = read, .ud = ud};

	return put_filled(b, fill_stream_cb, &s, ret_hex, ret_size);
}

size_t blob_batch_count(const struct blob_batch *b)
{
	return b->n;
}

int blob_batch_put_buf(struct blob_batch *b, const void *buf, size_t len, char ret_hex[65])
{
	char tmpname[TMP_NAME_LEN + 1];
	char hex[65];
	int tfd = -1;
	int r;

	if (b->broken) {
		return -EINVAL;
	}
	if (EVP_DigestInit_ex(b->ctx, b->bs->md, NULL) != 1 ||
	    EVP_DigestUpdate(b->ctx, buf, len) != 1) {
		return -EIO;
	}
	r = digest_final(b, hex);
	if (r < 0) {
		return r;
	}
	if (!blob_exists(b->bs, hex)) {
		r = tmp_create(b, tmpname, &tfd);
		if (r < 0) {
			return r;
		}
		r = util_write_all(tfd, buf, len);
		if (r < 0) {
			close(tfd);
			unlinkat(b->dirfd, tmpname, 0);
			return r;
		}
		r = pending_add(b, tmpname, hex, tfd);
		if (r < 0) {
			return r;
		}
	}
	memcpy(ret_hex, hex, 65);
	return 0;
}

int blob_batch_merge(struct blob_batch *into, struct blob_batch *from)
{
	int r;

	if (into->broken || from->broken || into->bs != from->bs) {
		return -EINVAL;
	}
	if (from->n == 0) {
		return 0;
	}
	r = pending_reserve(into, from->n);
	if (r < 0) {
		return r;
	}
	if (!from->keep_fds || into->n + from->n > BATCH_FSYNC_MAX) {
		drop_fds(into);
		drop_fds(from);
	}
	memcpy(into->p + into->n, from->p, from->n * sizeof(*from->p));
	into->n += from->n;
	from->n = 0;
	return 0;
}

/* Rename one temporary to its real name, creating its ab/ directory the
 * first time. Sets *ret_newdir when it created that directory. */
static int publish(struct blob_batch *b, struct pending *p, bool *ret_newdir)
{
	char rel[66];
	char dir[3] = {p->hex[0], p->hex[1], '\0'};

	rel_name(p->hex, rel);
	for (int attempt = 0;; attempt++) {
		if (renameat2(p->dirfd, p->tmpname, b->bs->shafd, rel, RENAME_NOREPLACE) == 0) {
			break;
		}
		if (errno == EEXIST) {
			/* Stored meanwhile (or twice in this batch): identical. */
			unlinkat(p->dirfd, p->tmpname, 0);
			break;
		}
		if (errno == EINVAL || errno == ENOSYS) {
			/* No RENAME_NOREPLACE here; replacing identical content is harmless. */
			if (renameat(p->dirfd, p->tmpname, b->bs->shafd, rel) == 0) {
				break;
			}
		}
		if (errno != ENOENT || attempt > 0) {
			return -errno;
		}
		if (mkdirat(b->bs->shafd, dir, 0755) == 0) {
			*ret_newdir = true;
		} else if (errno != EEXIST) {
			return -errno;
		}
	}
	p->tmpname[0] = '\0';
	return 0;
}

static int fsync_dir_at(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = 0;

	if (fd < 0) {
		return -errno;
	}
	if (fsync(fd) < 0) {
		r = -errno;
	}
	close(fd);
	return r;
}

/* Publishing a range of a batch's pending blobs, on a thread of its own. */
struct publisher {
	struct blob_batch *b;
	size_t from, to;
	pthread_t thread;
	bool newdir;
	int r;
};

static void publish_range(struct publisher *pb)
{
	for (size_t i = pb->from; i < pb->to && pb->r == 0; i++) {
		struct pending *p = &pb->b->p[i];
		if (p->tmpname[0]) {
			pb->r = publish(pb->b, p, &pb->newdir);
		}
	}
}

static void *publish_range_cb(void *arg)
{
	publish_range(arg);
	return NULL;
}

int blob_batch_commit(struct blob_batch *b)
{
	unsigned char touched[256] = {0};
	bool newdir = false;
	int r = 0;

	if (b->broken) {
		return -EINVAL;
	}
	if (b->n == 0) {
		return 0;
	}
	/* Contents durable before any real name points at them, so a crash
	 * never leaves a half blob under a real name. */
	if (b->keep_fds) {
		for (size_t i = 0; i < b->n; i++) {
			if (fsync(b->p[i].fd) < 0) {
				r = -errno;
				goto out;
			}
		}
	} else if (syncfs(b->bs->tmpfd) < 0) {
		r = -errno;
		goto out;
	}
	if (b->n >= PUBLISH_PARALLEL_MIN) {
		/* Many names: half of them on a second thread. The renames go
		 * to 256 directories, so the two mostly do not meet. */
		struct publisher half = {.b = b, .from = b->n / 2, .to = b->n};
		bool started = pthread_create(&half.thread, NULL, publish_range_cb, &half) == 0;
		struct publisher mine = {.b = b, .from = 0, .to = started ? b->n / 2 : b->n};
		publish_range(&mine);
		if (started) {
			pthread_join(half.thread, NULL);
		}
		newdir = mine.newdir || half.newdir;
		r = mine.r < 0 ? mine.r : half.r;
		if (r < 0) {
			goto out;
		}
	} else {
		for (size_t i = 0; i < b->n; i++) {
			struct pending *p = &b->p[i];
			if (!p->tmpname[0]) {
				continue;
			}
			r = publish(b, p, &newdir);
			if (r < 0) {
				goto out;
			}
			touched[hexval(p->hex[0]) << 4 | hexval(p->hex[1])] = 1;
		}
	}
	/* Then the names themselves, so a blob is there after a crash once
	 * whoever stored it has been told so. */
	if (b->keep_fds) {
		for (int i = 0; i < 256; i++) {
			char dir[3] = {hexdigits[i >> 4], hexdigits[i & 15], '\0'};
			if (!touched[i]) {
				continue;
			}
			r = fsync_dir_at(b->bs->shafd, dir);
			if (r < 0) {
				goto out;
			}
		}
		if (newdir && fsync(b->bs->shafd) < 0) {
			r = -errno;
			goto out;
		}
	} else if (syncfs(b->bs->shafd) < 0) {
		r = -errno;
		goto out;
	}
out:
	for (size_t i = 0; i < b->n; i++) {
		if (b->p[i].fd >= 0) {
			close(b->p[i].fd);
			b->p[i].fd = -1;
		}
	}
	if (r < 0) {
		b->broken = true;
	} else {
		b->n = 0;
	}
	return r;
}

int blob_put_file(struct blobstore *bs, int dirfd, const char *path, char ret_hex[65],
                  uint64_t *ret_size)
{
	struct blob_batch *b = NULL;
	struct stat st;
	char hex[65];
	uint64_t size;
	int fd, r;

	/* O_NOFOLLOW: a file swapped for a symlink after the caller looked at
	 * it (a run racing its own finalisation) must not make the daemon
	 * store whatever the link points at. O_NONBLOCK: a FIFO cannot hang
	 * the open. */
	fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
	if (fd < 0) {
		return -errno;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		goto out;
	}
	r = blob_batch_create(bs, &b);
	if (r < 0) {
		goto out;
	}
	r = blob_batch_put_fd(b, fd, hex, &size);
	if (r < 0) {
		goto out;
	}
	r = blob_batch_commit(b);
	if (r < 0) {
		goto out;
	}
	memcpy(ret_hex, hex, 65);
	if (ret_size) {
		*ret_size = size;
	}
out:
	blob_batch_destroy(b);
	close(fd);
	return r;
}

int blob_put_buf(struct blobstore *bs, const void *buf, size_t len, char ret_hex[65])
{
	struct blob_batch *b = NULL;
	char hex[65];
	int r;

	r = blob_batch_create(bs, &b);
	if (r < 0) {
		return r;
	}
	r = blob_batch_put_buf(b, buf, len, hex);
	if (r < 0) {
		goto out;
	}
	r = blob_batch_commit(b);
	if (r < 0) {
		goto out;
	}
	memcpy(ret_hex, hex, 65);
out:
	blob_batch_destroy(b);
	return r;
}

static int open_blob(struct blobstore *bs, const char *hex, struct stat *ret_st, int *ret_fd)
{
	char rel[66];
	int fd;

	if (!blob_valid_hex(hex)) {
		return -EINVAL;
	}
	rel_name(hex, rel);
	fd = openat(bs->shafd, rel, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return -errno;
	}
	if (fstat(fd, ret_st) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

int blob_read_all(struct blobstore *bs, const char *hex, size_t max, char **ret_buf,
                  size_t *ret_len)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int fd = -1;
	int r;

	r = open_blob(bs, hex, &st, &fd);
	if (r < 0) {
		return r;
	}
	if ((uint64_t)st.st_size > max || (uint64_t)st.st_size >= SIZE_MAX) {
		r = -EFBIG;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	r = read_full(fd, buf, (size_t)st.st_size, &got);
	if (r < 0) {
		goto out;
	}
	if (got != (size_t)st.st_size) {
		r = -EIO; /* blobs never change, so a short read means damage */
		goto out;
	}
	buf[got] = '\0';
	*ret_buf = buf;
	buf = NULL;
	if (ret_len) {
		*ret_len = got;
	}
out:
	free(buf);
	close(fd);
	return r;
}

/* Plain read/write from the current offsets to end of file. */
static int copy_rw(int src, int dst)
{
	char *buf = malloc(COPY_BUF_SIZE);
	int r = 0;

	if (!buf) {
		return -ENOMEM;
	}
	for (;;) {
		size_t got;
		r = read_full(src, buf, COPY_BUF_SIZE, &got);
		if (r < 0 || got == 0) {
			break;
		}
		r = util_write_all(dst, buf, got);
		if (r < 0) {
			break;
		}
	}
	free(buf);
	return r;
}

int blob_copy_out_how(struct blobstore *bs, const char *hex, int dirfd, const char *path,
                      mode_t mode, enum blob_copy_how *ret_how)
{
	enum blob_copy_how how = BLOB_COPY_PLAIN;
	struct stat st;
	uint64_t left;
	int src = -1, dst = -1;
	int r;

	r = open_blob(bs, hex, &st, &src);
	if (r < 0) {
		return r;
	}
	dst =
	    openat(dirfd, path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 07777);
	if (dst < 0) {
		r = -errno;
		close(src);
		return r;
	}
	left = (uint64_t)st.st_size;
	/* A reflink shares the blocks copy-on-write (btrfs, XFS, bcachefs):
	 * instant, and a write by the run un-shares only what it touches, so
	 * the blob is never modified. Elsewhere copy_file_range lets the file
	 * system copy in the kernel (or share, on NFS and others); where it
	 * cannot (other file system, old kernel, some that report 0 bytes),
	 * carry on with read/write from where it stopped, since it advances
	 * both offsets. */
	if (left > 0 && ioctl(dst, FICLONE, src) == 0) {
		how = BLOB_COPY_REFLINK;
		left = 0;
	}
	while (left > 0) {
		ssize_t n = copy_file_range(src, NULL, dst, NULL, left, 0);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			break;
		}
		how = BLOB_COPY_KERNEL;
		left -= (uint64_t)n;
	}
	if (left > 0) {
		how = BLOB_COPY_PLAIN;
		r = copy_rw(src, dst);
		if (r < 0) {
			goto out;
		}
	}
	if (fchmod(dst, mode & 07777) < 0) {
		r = -errno;
		goto out;
	}
out:
	if (close(dst) < 0 && r == 0) {
		r = -errno;
	}
	close(src);
	if (r < 0) {
		unlinkat(dirfd, path, 0);
	} else if (ret_how) {
		*ret_how = st.st_size > 0 ? how : BLOB_COPY_PLAIN;
	}
	return r;
}

int blob_copy_out(struct blobstore *bs, const char *hex, int dirfd, const char *path, mode_t mode)
{
	return blob_copy_out_how(bs, hex, dirfd, path, mode, NULL);
}

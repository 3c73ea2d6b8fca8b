/* The stat cache file:
 *
 *   "RYSTATC2", the blob store's epoch (32 bytes), written_ns (int64),
 *   count (uint32),
 *   count records: ino, size (uint64), mtime_ns, ctime_ns (int64),
 *                  digest (32 bytes), path length (uint32), path bytes,
 *   SHA-256 of everything before it (32 bytes).
 *
 * Integers in host byte order: the file never leaves the machine. The
 * checksum makes a damaged file an empty cache rather than wrong hashes. */
#include "statcache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "blob.h"
#include "msg.h"
#include "util.h"

#define MAGIC "RYSTATC2"
#define EPOCH_LEN 32
#define HEADER_LEN (8 + EPOCH_LEN + 8 + 4)
#define REC_FIXED (8 + 8 + 8 + 8 + 32 + 4)
/* A cache larger than this is not read (it would describe millions of files). */
#define FILE_MAX (512u * 1024 * 1024)

struct slot {
	const char *path; /* into buf; NULL: empty slot */
	size_t pathlen;
	uint64_t ino, size;
	int64_t mtime_ns, ctime_ns;
	const unsigned char *digest;
};

struct statcache {
	char *buf;
	size_t count; /* records */
	bool same_epoch; /* written against the store's current epoch */
	int64_t written_ns;
	struct slot *slots;
	size_t mask; /* slots - 1, a power of two minus one */
};

static uint64_t hash_path(const char *p, size_t len)
{
	uint64_t h = 14695981039346656037ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

int64_t statcache_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

char *statcache_path(const char *dir, const char *source)
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	char hex[65];

	if (EVP_Digest(source, strlen(source), md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != 32) {
		return NULL;
	}
	blob_hex(md, hex);
	return msg_strdupf("%s/%s", dir, hex);
}

void statcache_destroy(struct statcache *c)
{
	if (!c) {
		return;
	}
	free(c->slots);
	free(c->buf);
	free(c);
}

static int read_file(const char *path, char **ret, size_t *ret_len)
{
	struct stat st;
	char *buf;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	int r = 0;

	if (fd < 0) {
		return -errno;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > FILE_MAX) {
		close(fd);
		return -EINVAL;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			break;
		}
		got += (size_t)n;
	}
	close(fd);
	if (r < 0) {
		free(buf);
		return r;
	}
	*ret = buf;
	*ret_len = got;
	return 0;
}

/* Parse buf into c; false when it is not a whole, intact cache file. */
static bool parse(struct statcache *c, const char *buf, size_t len, const char *epoch)
{
	char want[EPOCH_LEN] = {0};

	unsigned char md[32];
	unsigned int mdlen = 0;
	uint32_t count;
	size_t off = HEADER_LEN, nslots = 16;

	if (len < HEADER_LEN + 32 || memcmp(buf, MAGIC, 8) != 0) {
		return false;
	}
	if (EVP_Digest(buf, len - 32, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32 ||
	    memcmp(md, buf + len - 32, 32) != 0) {
		return false;
	}
	len -= 32;
	if (epoch) {
		memcpy(want, epoch, strnlen(epoch, EPOCH_LEN));
	}
	c->same_epoch = epoch && memcmp(buf + 8, want, EPOCH_LEN) == 0;
	memcpy(&c->written_ns, buf + 8 + EPOCH_LEN, 8);
	memcpy(&count, buf + 16 + EPOCH_LEN, 4);
	if (count > len / REC_FIXED) {
		return false;
	}
	while (nslots < (size_t)count * 2) {
		nslots *= 2;
	}
	c->slots = calloc(nslots, sizeof(*c->slots));
	if (!c->slots) {
		return false;
	}
	c->mask = nslots - 1;
	for (uint32_t i = 0; i < count; i++) {
		struct slot s;
		uint32_t plen;
		size_t k;
		if (len - off < REC_FIXED) {
			return false;
		}
		memcpy(&s.ino, buf + off, 8);
		memcpy(&s.size, buf + off + 8, 8);
		memcpy(&s.mtime_ns, buf + off + 16, 8);
		memcpy(&s.ctime_ns, buf + off + 24, 8);
		s.digest = (const unsigned char *)buf + off + 32;
		memcpy(&plen, buf + off + 64, 4);
		off += REC_FIXED;
		if (len - off < plen) {
			return false;
		}
		s.path = buf + off;
		s.pathlen = plen;
		off += plen;
		k = hash_path(s.path, s.pathlen) & c->mask;
		while (c->slots[k].path) {
			k = (k + 1) & c->mask;
		}
		c->slots[k] = s;
	}
	c->count = count;
	return off == len;
}

int statcache_load(const char *path, const char *epoch, struct statcache **ret)
{
	struct statcache *c = calloc(1, sizeof(*c));
	size_t len = 0;

	if (!c) {
		return -ENOMEM;
	}
	if (read_file(path, &c->buf, &len) < 0 || !parse(c, c->buf, len, epoch)) {
		free(c->slots);
		free(c->buf);
		memset(c, 0, sizeof(*c));
	}
	*ret = c;
	return 0;
}

size_t statcache_count(const struct statcache *c)
{
	return c && c->slots ? c->count : 0;
}

bool statcache_same_epoch(const struct statcache *c)
{
	return c && c->same_epoch;
}

static bool coarse(const struct stat *st)
{
	return st->st_mtim.tv_nsec == 0 && st->st_ctim.tv_nsec == 0;
}

bool statcache_lookup(const struct statcache *c, const char *path, const struct stat *st,
                      unsigned char ret_digest[32])
{
	struct statcache_rec now;
	size_t len = strlen(path), k;
	int64_t newest, margin;

	if (!c || !c->slots) {
		return false;
	}
	statcache_rec_from_stat(&now, st);
	for (k = hash_path(path, len) & c->mask; c->slots[k].path; k = (k + 1) & c->mask) {
		const struct slot *s = &c->slots[k];
		if (s->pathlen != len || memcmp(s->path, path, len) != 0) {
			continue;
		}
		if (s->ino != now.ino || s->size != now.size || s->mtime_ns != now.mtime_ns ||
		    s->ctime_ns != now.ctime_ns) {
			return false;
		}
		newest = s->mtime_ns > s->ctime_ns ? s->mtime_ns : s->ctime_ns;
		margin = coarse(st) ? STATCACHE_RACY_COARSE_NS : STATCACHE_RACY_NS;
		if (newest > c->written_ns - margin) {
			return false; /* racily clean: it may have changed unseen */
		}
		memcpy(ret_digest, s->digest, 32);
		return true;
	}
	return false;
}

void statcache_rec_from_stat(struct statcache_rec *rec, const struct stat *st)
{
	rec->ino = (uint64_t)st->st_ino;
	rec->size = (uint64_t)st->st_size;
	rec->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
	rec->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000LL + st->st_ctim.tv_nsec;
}

/* Remove cache files of sources not snapshotted for a long time, so the
 * directory does not keep one file per directory ever submitted. */
static void prune(const char *dir, const char *keep)
{
	time_t old = time(NULL) - STATCACHE_MAX_AGE_S;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	DIR *d;

	if (dfd < 0) {
		return;
	}
	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return;
	}
	while ((de = readdir(d))) {
		struct stat st;
		if (de->d_name[0] == '.' || strcmp(de->d_name, keep) == 0 ||
		    fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			continue;
		}
		if (S_ISREG(st.st_mode) && st.st_mtime < old) {
			unlinkat(dfd, de->d_name, 0);
		}
	}
	closedir(d);
}

int statcache_save(const char *path, const char *epoch, const struct statcache_rec *recs, size_t n,
                   int64_t now_ns)
{
	char ep[EPOCH_LEN] = {0};
	char *tmp = NULL, *dir = NULL, *buf = NULL;
	size_t len = HEADER_LEN, off;
	unsigned char md[32];
	unsigned int mdlen = 0;
	uint32_t count = (uint32_t)n;
	int fd = -1, r = 0;
	char *slash;

	if (n > UINT32_MAX) {
		return -EFBIG;
	}
	for (size_t i = 0; i < n; i++) {
		len += REC_FIXED + strlen(recs[i].path);
	}
	if (len > FILE_MAX) {
		return -EFBIG;
	}
	buf = malloc(len + 32);
	dir = strdup(path);
	if (!buf || !dir) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(buf, MAGIC, 8);
	if (epoch) {
		memcpy(ep, epoch, strnlen(epoch, EPOCH_LEN));
	}
	memcpy(buf + 8, ep, EPOCH_LEN);
	memcpy(buf + 8 + EPOCH_LEN, &now_ns, 8);
	memcpy(buf + 16 + EPOCH_LEN, &count, 4);
	off = HEADER_LEN;
	for (size_t i = 0; i < n; i++) {
		uint32_t plen = (uint32_t)strlen(recs[i].path);
		memcpy(buf + off, &recs[i].ino, 8);
		memcpy(buf + off + 8, &recs[i].size, 8);
		memcpy(buf + off + 16, &recs[i].mtime_ns, 8);
		memcpy(buf + off + 24, &recs[i].ctime_ns, 8);
		memcpy(buf + off + 32, recs[i].digest, 32);
		memcpy(buf + off + 64, &plen, 4);
		memcpy(buf + off + REC_FIXED, recs[i].path, plen);
		off += REC_FIXED + plen;
	}
	if (EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
		r = -EIO;
		goto out;
	}
	memcpy(buf + len, md, 32);

	slash = strrchr(dir, '/');
	if (slash) {
		*slash = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
			r = -errno;
			goto out;
		}
	}
	if (asprintf(&tmp, "%s.tmp-XXXXXX", path) < 0) {
		tmp = NULL;
		r = -ENOMEM;
		goto out;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	/* No fsync: after a crash a missing or damaged cache only costs one
	 * full read, and the checksum catches the damage. */
	r = util_write_all(fd, buf, len + 32);
	if (close(fd) < 0 && r == 0) {
		r = -errno;
	}
	fd = -1;
	if (r == 0 && rename(tmp, path) < 0) {
		r = -errno;
	}
	if (r < 0) {
		unlink(tmp);
	} else if (slash) {
		prune(dir, slash + 1);
	}
out:
	free(tmp);
	free(dir);
	free(buf);
	return r;
}

/* Materialising a snapshot: recreating its tree from the manifest under
 * an empty directory, opening each directory level without following
 * symlinks, copying the files out of the blob store (reflinks or in-kernel
 * copies where the file system can), and setting directory modes last. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "msg.h"
#include "snapshot_priv.h"

/* Open directories along the path being created, reused between entries:
 * sorted entries mostly share their parents. Each level is opened with
 * O_NOFOLLOW|O_DIRECTORY from the one above, so nothing is ever created
 * through a symlink, whatever the manifest says. */
struct dirstack {
	struct {
		size_t len; /* of the directory's path, a prefix of cur */
		int fd;
	} * f;
	size_t n, cap;
	char *cur;
	size_t curcap;
};

static void dirstack_finish(struct dirstack *ds)
{
	/* Level 0 is dest, owned by the caller. */
	for (size_t i = 1; i < ds->n; i++) {
		close(ds->f[i].fd);
	}
	free(ds->f);
	free(ds->cur);
}

/* The fd of path[0..plen), the parent of an entry. */
static int dirstack_parent(struct dirstack *ds, const char *path, size_t plen, int *ret_fd)
{
	size_t pos;

	while (ds->n > 1) {
		size_t l = ds->f[ds->n - 1].len;
		if (l <= plen && memcmp(ds->cur, path, l) == 0 && (l == plen || path[l] == '/')) {
			break;
		}
		close(ds->f[--ds->n].fd);
	}
	if (plen + 1 > ds->curcap) {
		char *nc = realloc(ds->cur, plen + 1);
		if (!nc) {
			return -ENOMEM;
		}
		ds->cur = nc;
		ds->curcap = plen + 1;
	}
	memcpy(ds->cur, path, plen);
	ds->cur[plen] = '\0';
	pos = ds->f[ds->n - 1].len;
	while (pos < plen) {
		size_t start = pos ? pos + 1 : 0;
		const char *s = memchr(ds->cur + start, '/', plen - start);
		size_t end = s ? (size_t)(s - ds->cur) : plen;
		int fd;
		if (ds->n == ds->cap) {
			size_t ncap = ds->cap * 2;
			void *nf = realloc(ds->f, ncap * sizeof(*ds->f));
			if (!nf) {
				return -ENOMEM;
			}
			ds->f = nf;
			ds->cap = ncap;
		}
		ds->cur[end] = '\0';
		fd = openat(ds->f[ds->n - 1].fd, ds->cur + start,
		            O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (end < plen) {
			ds->cur[end] = '/';
		}
		if (fd < 0) {
			return -errno;
		}
		ds->f[ds->n].len = end;
		ds->f[ds->n].fd = fd;
		ds->n++;
		pos = end;
	}
	*ret_fd = ds->f[ds->n - 1].fd;
	return 0;
}

static int check_empty(int fd)
{
	int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	DIR *d;
	struct dirent *de;
	int r = 0;

	if (dfd < 0) {
		return -errno;
	}
	d = fdopendir(dfd);
	if (!d) {
		r = -errno;
		close(dfd);
		return r;
	}
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
			r = -ENOTEMPTY;
			break;
		}
	}
	closedir(d);
	return r;
}

int snapshot_materialise(struct blobstore *bs, const char *id, const char *dest, char **cause)
{
	return snapshot_materialise_stats(bs, id, dest, NULL, cause);
}

int snapshot_materialise_stats(struct blobstore *bs, const char *id, const char *dest,
                               struct snapshot_copy_stats *stats, char **cause)
{
	struct snapshot_copy_stats cs = {0};
	struct manifest m;
	struct dirstack ds = {0};
	char eb[128];
	const char *failed = NULL; /* the entry that could not be created */
	int destfd = -1;
	int r;

	r = snapshot_manifest_load(bs, id, &m, cause);
	if (r < 0) {
		return r;
	}
	destfd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (destfd < 0) {
		r = -errno;
		if (cause) {
			*cause = msg_strdupf("cannot open %s: %s", dest, snapshot_errstr(-r, eb));
		}
		goto out;
	}
	r = check_empty(destfd);
	if (r < 0) {
		if (cause) {
			*cause = r == -ENOTEMPTY ? msg_strdupf("%s is not empty", dest)
			                         : msg_strdupf("cannot read %s: %s", dest,
			                                       snapshot_errstr(-r, eb));
		}
		goto out;
	}
	ds.cap = 16;
	ds.f = malloc(ds.cap * sizeof(*ds.f));
	if (!ds.f) {
		r = -ENOMEM;
		goto out;
	}
	ds.f[0].len = 0;
	ds.f[0].fd = destfd;
	ds.n = 1;

	for (size_t i = 0; i < m.n; i++) {
		const struct mentry *e = &m.e[i];
		const char *slash = strrchr(e->path, '/');
		const char *name = slash ? slash + 1 : e->path;
		int pfd = -1;

		r = dirstack_parent(&ds, e->path, slash ? (size_t)(slash - e->path) : 0, &pfd);
		if (r < 0) {
			failed = e->path;
			goto out;
		}
		switch (e->type) {
		case E_DIR:
			/* Owner-writable while it is filled; its mode comes last. */
			r = mkdirat(pfd, name, 0700) < 0 ? -errno : 0;
			break;
		case E_FILE: {
			enum blob_copy_how how = BLOB_COPY_PLAIN;
			r = blob_copy_out_how(bs, e->sha, pfd, name, e->mode & 0777, &how);
			if (r == 0) {
				cs.files++;
				cs.reflinked += how == BLOB_COPY_REFLINK;
				cs.kernel_copied += how == BLOB_COPY_KERNEL;
				cs.plain_copied += how == BLOB_COPY_PLAIN;
			}
		}
			if (r == -ENOENT && !blob_exists(bs, e->sha)) {
				if (cause) {
					*cause =
					    msg_strdupf("snapshot %s is damaged: the content of "
					                "%s (%s) is missing",
					                id, e->path, e->sha);
				}
				r = -EBADMSG;
				goto out;
			}
			break;
		case E_SYMLINK:
			r = symlinkat(e->target, pfd, name) < 0 ? -errno : 0;
			break;
		}
		if (r < 0) {
			failed = e->path;
			goto out;
		}
	}
	/* Directory modes last, in reverse order: an entry sorts after its
	 * parents, so a read-only or unsearchable directory is set only after
	 * everything below it has been created and set. */
	for (size_t i = m.n; i-- > 0;) {
		const struct mentry *e = &m.e[i];
		const char *slash = strrchr(e->path, '/');
		int pfd = -1;
		if (e->type != E_DIR) {
			continue;
		}
		r = dirstack_parent(&ds, e->path, slash ? (size_t)(slash - e->path) : 0, &pfd);
		if (r == 0 && fchmodat(pfd, slash ? slash + 1 : e->path, e->mode & 0777, 0) < 0) {
			r = -errno;
		}
		if (r < 0) {
			failed = e->path;
			goto out;
		}
	}
	r = 0;
	if (stats) {
		*stats = cs;
	}
out:
	if (failed && cause) {
		*cause =
		    msg_strdupf("cannot create %s/%s: %s", dest, failed, snapshot_errstr(-r, eb));
	}
	dirstack_finish(&ds);
	if (destfd >= 0) {
		close(destfd);
	}
	snapshot_manifest_finish(&m);
	return r;
}

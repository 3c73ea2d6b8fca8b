#include "walk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "msg.h"

struct walker {
	const char *root;
	const struct walk_ops *ops;
	void *ud;
	char **cause;
	char *path; /* of the current entry, NUL-terminated at len */
	size_t len, cap;
};

/* One directory's names, read in full before any is visited so they can be
 * sorted: one growing buffer of NUL-terminated names, then pointers into it. */
struct names {
	char *buf;
	size_t len, cap;
	size_t n;
	char **v;
};

static void set_cause(struct walker *w, int err, const char *what, const char *path)
{
	char ebuf[128];

	if (!w->cause || *w->cause) {
		return;
	}
	if (*path) {
		*w->cause = msg_strdupf("cannot %s %s/%s: %s", what, w->root, path,
		                        strerror_r(err, ebuf, sizeof(ebuf)));
	} else {
		*w->cause = msg_strdupf("cannot %s %s: %s", what, w->root,
		                        strerror_r(err, ebuf, sizeof(ebuf)));
	}
}

static int names_add(struct names *ns, const char *name)
{
	size_t l = strlen(name) + 1;

	if (ns->len + l > ns->cap) {
		size_t ncap = ns->cap ? ns->cap : 1024;
		while (ncap < ns->len + l) {
			ncap *= 2;
		}
		char *nbuf = realloc(ns->buf, ncap);
		if (!nbuf) {
			return -ENOMEM;
		}
		ns->buf = nbuf;
		ns->cap = ncap;
	}
	memcpy(ns->buf + ns->len, name, l);
	ns->len += l;
	ns->n++;
	return 0;
}

static int cmp_name(const void *a, const void *b)
{
	/* strcmp compares as unsigned char: byte order. */
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int names_sort(struct names *ns)
{
	char *p = ns->buf;

	if (ns->n == 0) {
		return 0;
	}
	ns->v = malloc(ns->n * sizeof(*ns->v));
	if (!ns->v) {
		return -ENOMEM;
	}
	for (size_t i = 0; i < ns->n; i++) {
		ns->v[i] = p;
		p += strlen(p) + 1;
	}
	qsort(ns->v, ns->n, sizeof(*ns->v), cmp_name);
	return 0;
}

/* Make the path buffer hold at least need bytes. */
static int path_reserve(struct walker *w, size_t need)
{
	if (need <= w->cap) {
		return 0;
	}
	size_t ncap = w->cap ? w->cap : 256;
	while (ncap < need) {
		ncap *= 2;
	}
	char *np = realloc(w->path, ncap);
	if (!np) {
		return -ENOMEM;
	}
	w->path = np;
	w->cap = ncap;
	return 0;
}

static enum walk_kind kind_of(mode_t m)
{
	if (S_ISREG(m)) {
		return WALK_FILE;
	}
	if (S_ISDIR(m)) {
		return WALK_DIR;
	}
	if (S_ISLNK(m)) {
		return WALK_SYMLINK;
	}
	if (S_ISFIFO(m)) {
		return WALK_FIFO;
	}
	if (S_ISSOCK(m)) {
		return WALK_SOCKET;
	}
	return WALK_DEVICE;
}

static int walk_dir(struct walker *w, int fd);

static bool unreadable_error(int r)
{
	return r == -EACCES || r == -EPERM;
}

/* Open the directory name below dfd for listing, and check that it can be
 * searched too (a directory readable but not searchable lists names whose
 * entries cannot be looked at): -EACCES when not. */
static int open_dir(int dfd, const char *name, int *ret_fd)
{
	struct stat st;
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int r;

	if (fd < 0) {
		return -errno;
	}
	if (fstatat(fd, ".", &st, 0) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

static int walk_entries(struct walker *w, DIR *d)
{
	struct names ns = {0};
	size_t base = w->len;
	int dfd = dirfd(d);
	int r = 0;

	for (;;) {
		struct dirent *de;
		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno != 0) {
				r = -errno;
				set_cause(w, errno, "read directory", w->path);
				goto out;
			}
			break;
		}
		const char *n = de->d_name;
		if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0 || strcmp(n, ".git") == 0) {
			continue;
		}
		r = names_add(&ns, n);
		if (r < 0) {
			goto out;
		}
	}
	r = names_sort(&ns);
	if (r < 0) {
		goto out;
	}

	for (size_t i = 0; i < ns.n; i++) {
		const char *name = ns.v[i];
		size_t nl = strlen(name);
		int cfd;
		size_t off = base ? base + 1 : 0;
		struct walk_entry e;
		struct stat st;

		r = path_reserve(w, off + nl + 1);
		if (r < 0) {
			goto out;
		}
		if (base) {
			w->path[base] = '/';
		}
		memcpy(w->path + off, name, nl + 1);
		w->len = off + nl;

		if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT) {
				continue; /* removed since readdir */
			}
			r = -errno;
			if (unreadable_error(r) && w->ops->unreadable) {
				memset(&st, 0, sizeof(st));
				st.st_mode = S_IFREG;
				e = (struct walk_entry){.path = w->path,
				                        .name = w->path + off,
				                        .kind = WALK_FILE,
				                        .st = &st,
				                        .dirfd = dfd};
				r = w->ops->unreadable(w->ud, &e, r);
				if (r < 0) {
					goto out;
				}
				continue;
			}
			set_cause(w, -r, "stat", w->path);
			goto out;
		}
		e = (struct walk_entry){
		    .path = w->path,
		    .name = w->path + off,
		    .kind = kind_of(st.st_mode),
		    .st = &st,
		    .dirfd = dfd,
		};
		if (w->ops->ignored && w->ops->ignored(w->ud, &e)) {
			continue;
		}
		cfd = -1;
		if (e.kind == WALK_DIR) {
			/* Opened before it is visited, so that a directory that
			 * cannot be read is passed over as a whole. O_NOFOLLOW: a
			 * directory swapped for a symlink since the lstat is
			 * refused rather than followed out of the tree. */
			r = open_dir(dfd, name, &cfd);
			if (r == -ENOENT) {
				r = 0;
				continue;
			}
			if (r < 0) {
				if (unreadable_error(r) && w->ops->unreadable) {
					r = w->ops->unreadable(w->ud, &e, r);
					if (r < 0) {
						goto out;
					}
					continue;
				}
				set_cause(w, -r, "open directory", w->path);
				goto out;
			}
		}
		if (w->ops->visit) {
			r = w->ops->visit(w->ud, &e);
			if (r < 0) {
				if (cfd >= 0) {
					close(cfd);
				}
				goto out;
			}
		}
		if (cfd >= 0) {
			r = walk_dir(w, cfd);
			if (r < 0) {
				goto out;
			}
		}
	}
out:
	w->len = base;
	if (w->path) {
		w->path[base] = '\0';
	}
	free(ns.v);
	free(ns.buf);
	return r;
}

/* Walk the directory open at fd (taken) whose path is in w->path. */
static int walk_dir(struct walker *w, int fd)
{
	DIR *d = fdopendir(fd);
	int r;

	if (!d) {
		r = -errno;
		close(fd);
		return r;
	}
	if (w->ops->enter_dir) {
		r = w->ops->enter_dir(w->ud, w->path, fd);
		if (r < 0) {
			closedir(d);
			return r;
		}
	}
	r = walk_entries(w, d);
	if (w->ops->leave_dir) {
		w->ops->leave_dir(w->ud, w->path);
	}
	closedir(d);
	return r;
}

int walk_tree(const char *root, const struct walk_ops *ops, void *ud, char **cause)
{
	struct walker w = {.root = root, .ops = ops, .ud = ud, .cause = cause};
	int fd, r;

	r = path_reserve(&w, 256);
	if (r < 0) {
		return r;
	}
	w.path[0] = '\0';
	fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		if (cause && !*cause) {
			if (r == -ENOENT) {
				*cause = msg_strdupf("%s does not exist", root);
			} else if (r == -ENOTDIR) {
				*cause = msg_strdupf("%s is not a directory", root);
			} else {
				set_cause(&w, -r, "open", "");
			}
		}
		goto out;
	}
	r = walk_dir(&w, fd);
out:
	free(w.path);
	return r;
}

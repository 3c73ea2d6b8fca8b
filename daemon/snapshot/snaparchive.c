/* Archives in and out of snapshots.
 *
 * In: the archive's entries become a tree in memory (pass one reads headers
 * only, plus the content of ignore files), which is walked like a directory
 * through the snapshot builder, with the ignore rules, the limits and the
 * skipped list of a directory snapshot; only then does pass two read the
 * contents of the files taken into blobs. A bad entry anywhere refuses the
 * whole archive before anything is stored.
 *
 * Names: libarchive converts names between the header's character set and
 * the thread's locale. The daemon runs in the "C" locale, where UTF-8 names
 * of pax headers or zip's UTF-8 flag cannot be converted; so both directions
 * run with the calling thread switched to C.UTF-8 (uselocale is per thread),
 * where valid UTF-8 names convert and other bytes pass as they are. A zip
 * holding a name that is not UTF-8 is written in the "C" locale instead, so
 * that no entry claims to be UTF-8 when it is not. */
#include "snaparchive.h"

#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>

#include "ignore.h"
#include "msg.h"
#include "util.h"

#define READ_BLOCK (64 * 1024)
#define WRITE_CHUNK (256 * 1024)
/* Hard links followed from one to the next at most. */
#define MAX_LINK_HOPS 40

/* ---- locale ---- */

struct locale_switch {
	locale_t mine, prev;
};

static void locale_utf8(struct locale_switch *ls)
{
	ls->mine = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	ls->prev = ls->mine ? uselocale(ls->mine) : (locale_t)0;
}

static void locale_restore(struct locale_switch *ls)
{
	if (ls->mine) {
		uselocale(ls->prev);
		freelocale(ls->mine);
		ls->mine = (locale_t)0;
	}
}

int snaparchive_format_parse(const char *name, enum snaparchive_format *ret)
{
	if (strcmp(name, "tar") == 0) {
		*ret = SNAPARCHIVE_TAR;
	} else if (strcmp(name, "tar.gz") == 0 || strcmp(name, "tgz") == 0) {
		*ret = SNAPARCHIVE_TAR_GZ;
	} else if (strcmp(name, "tar.zst") == 0 || strcmp(name, "tzst") == 0) {
		*ret = SNAPARCHIVE_TAR_ZST;
	} else if (strcmp(name, "zip") == 0) {
		*ret = SNAPARCHIVE_ZIP;
	} else {
		return -EINVAL;
	}
	return 0;
}

const char *snaparchive_format_name(enum snaparchive_format f)
{
	static const char *const names[] = {
	    [SNAPARCHIVE_TAR] = "tar",
	    [SNAPARCHIVE_TAR_GZ] = "tar.gz",
	    [SNAPARCHIVE_TAR_ZST] = "tar.zst",
	    [SNAPARCHIVE_ZIP] = "zip",
	};
	return names[f];
}

/* ---- the tree of an archive's entries ---- */

struct node {
	char *path; /* normalised, relative; "" for the root */
	const char *name;
	struct node **kids;
	size_t nkids, kcap;
	mode_t type; /* S_IFREG, S_IFDIR, S_IFLNK, or another S_IF* */
	mode_t perm;
	uint64_t size;
	char *target;   /* symlinks */
	char *hardlink; /* a regular file with the content of this path */
	long ordinal;   /* the archive entry that defined it last; -1 implicit */
	char *content;  /* ignore files: their content */
	size_t content_len;
	bool has_content;
	long file_index; /* in the build; -1 when not taken */
	bool need_hash;  /* the target of a hard link that is taken */
	bool hashed;
	char hex[65];
	uint64_t hashed_size;
};

struct tree {
	struct node **slots; /* open addressing on path */
	size_t mask, count;
	struct node *root;
	const char *archive; /* for messages */
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static struct node *tree_find(const struct tree *t, const char *path)
{
	for (size_t k = hash_str(path) & t->mask; t->slots[k]; k = (k + 1) & t->mask) {
		if (strcmp(t->slots[k]->path, path) == 0) {
			return t->slots[k];
		}
	}
	return NULL;
}

static int tree_insert(struct tree *t, struct node *n)
{
	size_t k;

	if ((t->count + 1) * 2 > t->mask + 1) {
		size_t nsize = (t->mask + 1) * 2;
		struct node **ns = calloc(nsize, sizeof(*ns));
		if (!ns) {
			return -ENOMEM;
		}
		for (size_t i = 0; i <= t->mask; i++) {
			if (t->slots[i]) {
				for (k = hash_str(t->slots[i]->path) & (nsize - 1); ns[k];
				     k = (k + 1) & (nsize - 1)) {
				}
				ns[k] = t->slots[i];
			}
		}
		free(t->slots);
		t->slots = ns;
		t->mask = nsize - 1;
	}
	for (k = hash_str(n->path) & t->mask; t->slots[k]; k = (k + 1) & t->mask) {
	}
	t->slots[k] = n;
	t->count++;
	return 0;
}

static void node_free(struct node *n)
{
	free(n->path);
	free(n->kids);
	free(n->target);
	free(n->hardlink);
	free(n->content);
	free(n);
}

static void tree_finish(struct tree *t)
{
	if (t->slots) {
		for (size_t i = 0; i <= t->mask; i++) {
			if (t->slots[i]) {
				node_free(t->slots[i]);
			}
		}
	}
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

static struct node *node_new(const char *path)
{
	struct node *n = calloc(1, sizeof(*n));
	const char *slash;

	if (!n) {
		return NULL;
	}
	n->path = strdup(path);
	if (!n->path) {
		free(n);
		return NULL;
	}
	slash = strrchr(n->path, '/');
	n->name = slash ? slash + 1 : n->path;
	n->ordinal = -1;
	n->file_index = -1;
	n->type = S_IFDIR;
	n->perm = 0755;
	return n;
}

static int kid_add(struct node *dir, struct node *kid)
{
	if (dir->nkids == dir->kcap) {
		size_t ncap = dir->kcap ? dir->kcap * 2 : 8;
		struct node **nk = realloc(dir->kids, ncap * sizeof(*nk));
		if (!nk) {
			return -ENOMEM;
		}
		dir->kids = nk;
		dir->kcap = ncap;
	}
	dir->kids[dir->nkids++] = kid;
	return 0;
}

static int tree_init(struct tree *t, const char *archive)
{
	memset(t, 0, sizeof(*t));
	t->archive = archive;
	t->mask = 1023;
	t->slots = calloc(t->mask + 1, sizeof(*t->slots));
	t->root = node_new("");
	if (!t->slots || !t->root) {
		if (t->root) {
			node_free(t->root);
		}
		free(t->slots);
		return -ENOMEM;
	}
	return tree_insert(t, t->root);
}

/* The directory node of path, created (with its parents) as needed. A
 * parent that exists as something else is a conflict. */
static int tree_dir(struct tree *t, const char *path, struct node **ret, char **cause)
{
	struct node *n = tree_find(t, path), *parent;
	char *ppath;
	const char *slash;
	int r;

	if (n) {
		if (n->type != S_IFDIR) {
			*cause =
			    msg_strdupf("archive %s has '%s' both as a file and as a directory",
			                t->archive, path);
			return -EINVAL;
		}
		*ret = n;
		return 0;
	}
	slash = strrchr(path, '/');
	ppath = slash ? strndup(path, (size_t)(slash - path)) : strdup("");
	if (!ppath) {
		return -ENOMEM;
	}
	r = tree_dir(t, ppath, &parent, cause);
	free(ppath);
	if (r < 0) {
		return r;
	}
	n = node_new(path);
	if (!n) {
		return -ENOMEM;
	}
	r = tree_insert(t, n);
	if (r < 0) {
		node_free(n);
		return r;
	}
	r = kid_add(parent, n); /* n belongs to the table now */
	if (r < 0) {
		return r;
	}
	*ret = n;
	return 0;
}

static const char *entry_name(struct archive_entry *e)
{
	const char *p = archive_entry_pathname(e);

	if (!p || !*p) {
		p = archive_entry_pathname_utf8(e);
	}
	return p;
}

/* Open the archive at fd (rewound) for reading every format libarchive knows. */
static int open_reader(int fd, struct archive **ret, char **cause, const char *path)
{
	struct archive *a = archive_read_new();

	if (!a) {
		return -ENOMEM;
	}
	archive_read_support_filter_all(a);
	archive_read_support_format_all(a);
	if (lseek(fd, 0, SEEK_SET) < 0 || archive_read_open_fd(a, fd, READ_BLOCK) != ARCHIVE_OK) {
		*cause = msg_strdupf("cannot read archive %s: %s", path,
		                     archive_error_string(a) ? archive_error_string(a)
		                                             : strerror(errno));
		archive_read_free(a);
		return -EBADMSG;
	}
	*ret = a;
	return 0;
}

/* Read the current entry's data into memory, up to max bytes. */
static int read_content(struct archive *a, size_t max, char **ret, size_t *ret_len)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);

	if (!buf) {
		return -ENOMEM;
	}
	for (;;) {
		la_ssize_t n;
		if (len == cap) {
			char *nb;
			if (cap > max) {
				free(buf);
				return -EFBIG;
			}
			nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		n = archive_read_data(a, buf + len, cap - len);
		if (n < 0) {
			free(buf);
			return -EBADMSG;
		}
		if (n == 0) {
			break;
		}
		len += (size_t)n;
	}
	if (len > max) {
		free(buf);
		return -EFBIG;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}

static bool is_ignore_name(const char *name)
{
	return strcmp(name, IGNORE_FILE_AML) == 0 || strcmp(name, IGNORE_FILE_GIT) == 0;
}

/* Pass one: every header into the tree. */
static int read_entries(struct tree *t, int fd, uint64_t max_entries, char **cause)
{
	struct archive *a = NULL;
	struct archive_entry *ae;
	long ordinal = -1;
	uint64_t entries = 0;
	int r;

	r = open_reader(fd, &a, cause, t->archive);
	if (r < 0) {
		return r;
	}
	for (;;) {
		const char *raw, *why = NULL, *hl;
		char *path = NULL, *link = NULL, *ppath = NULL;
		struct node *n, *parent;
		mode_t type;
		int ar = archive_read_next_header(a, &ae);

		if (ar == ARCHIVE_EOF) {
			break;
		}
		if (ar != ARCHIVE_OK && ar != ARCHIVE_WARN) {
			*cause = msg_strdupf("cannot read archive %s: %s", t->archive,
			                     archive_error_string(a) ? archive_error_string(a)
			                                             : "damaged");
			r = -EBADMSG;
			goto out;
		}
		ordinal++;
		if (++entries > max_entries) {
			*cause = msg_strdupf("archive %s has more than %llu entries", t->archive,
			                     (unsigned long long)max_entries);
			r = -EFBIG;
			goto out;
		}
		raw = entry_name(ae);
		if (!raw || !*raw) {
			*cause = msg_strdupf("archive %s has an entry without a name (number %ld); "
			                     "nothing was stored",
			                     t->archive, ordinal + 1);
			r = -EINVAL;
			goto out;
		}
		r = util_rel_normalise(raw, true, &path, &why);
		if (r == -EINVAL) {
			*cause = msg_strdupf("archive %s: entry '%s' %s; refused, nothing was "
			                     "stored",
			                     t->archive, raw, why);
		}
		if (r < 0) {
			goto out;
		}
		hl = archive_entry_hardlink(ae);
		if (hl) {
			r = util_rel_normalise(hl, true, &link, &why);
			if (r == -EINVAL) {
				*cause =
				    msg_strdupf("archive %s: hard link '%s' to '%s' %s; refused, "
				                "nothing was stored",
				                t->archive, raw, hl, why);
			}
			if (r < 0) {
				free(path);
				goto out;
			}
		}
		if (!*path) {
			/* The root itself ("./"). */
			free(path);
			free(link);
			continue;
		}
		type = archive_entry_filetype(ae);
		if (link) {
			type = S_IFREG;
		}
		if (type == AE_IFDIR) {
			r = tree_dir(t, path, &n, cause);
			if (r == 0) {
				n->perm = archive_entry_perm(ae);
				n->ordinal = ordinal;
			}
			free(path);
			free(link);
			if (r < 0) {
				goto out;
			}
			continue;
		}
		{
			const char *slash = strrchr(path, '/');
			ppath = slash ? strndup(path, (size_t)(slash - path)) : strdup("");
		}
		if (!ppath) {
			free(path);
			free(link);
			r = -ENOMEM;
			goto out;
		}
		r = tree_dir(t, ppath, &parent, cause);
		free(ppath);
		if (r < 0) {
			free(path);
			free(link);
			goto out;
		}
		n = tree_find(t, path);
		if (n && n->type == S_IFDIR) {
			*cause =
			    msg_strdupf("archive %s has '%s' both as a file and as a directory",
			                t->archive, path);
			free(path);
			free(link);
			r = -EINVAL;
			goto out;
		}
		if (n) {
			/* A later entry of the same name replaces it, as tar does. */
			free(n->target);
			free(n->hardlink);
			free(n->content);
			n->target = n->hardlink = n->content = NULL;
			n->has_content = false;
			free(path);
		} else {
			n = node_new(path);
			free(path);
			if (!n) {
				free(link);
				r = -ENOMEM;
				goto out;
			}
			r = tree_insert(t, n);
			if (r < 0) {
				node_free(n);
				free(link);
				goto out;
			}
			r = kid_add(parent, n);
			if (r < 0) {
				free(link);
				goto out;
			}
		}
		n->type = type;
		n->perm = archive_entry_perm(ae);
		n->size = archive_entry_size_is_set(ae) && archive_entry_size(ae) > 0
		              ? (uint64_t)archive_entry_size(ae)
		              : 0;
		n->ordinal = ordinal;
		n->hardlink = link;
		if (type == AE_IFLNK) {
			const char *target = archive_entry_symlink(ae);
			if (!target) {
				target = archive_entry_symlink_utf8(ae);
			}
			n->target = strdup(target ? target : "");
			if (!n->target) {
				r = -ENOMEM;
				goto out;
			}
		} else if (type == AE_IFREG && !link && is_ignore_name(n->name)) {
			r = read_content(a, IGNORE_FILE_MAX, &n->content, &n->content_len);
			if (r == -EFBIG) {
				*cause =
				    msg_strdupf("archive %s: the ignore file %s is larger than %u "
				                "bytes; make it smaller",
				                t->archive, n->path, IGNORE_FILE_MAX);
			} else if (r == -EBADMSG) {
				*cause = msg_strdupf(
				    "cannot read archive %s: %s", t->archive,
				    archive_error_string(a) ? archive_error_string(a) : "damaged");
			}
			if (r < 0) {
				goto out;
			}
			n->has_content = true;
		}
	}
	r = 0;
out:
	archive_read_free(a);
	return r;
}

/* Hard links get their target's size, and must point at a file. */
static int resolve_links(struct tree *t, char **cause)
{
	for (size_t i = 0; i <= t->mask; i++) {
		struct node *n = t->slots[i], *target = n;
		int hops = 0;
		if (!n || !n->hardlink) {
			continue;
		}
		while (target && target->hardlink && hops++ < MAX_LINK_HOPS) {
			target = tree_find(t, target->hardlink);
		}
		if (!target || target->hardlink || target->type != S_IFREG) {
			*cause =
			    msg_strdupf("archive %s: hard link '%s' points to '%s', which is "
			                "not a file of the archive; refused, nothing was stored",
			                t->archive, n->path, n->hardlink);
			return -EINVAL;
		}
		n->size = target->size;
		if (n->has_content || is_ignore_name(n->name)) {
			/* An ignore file that is a hard link: its target's content,
			 * when that was read (it is an ignore file too). */
			if (target->has_content) {
				n->content = malloc(target->content_len + 1);
				if (!n->content) {
					return -ENOMEM;
				}
				memcpy(n->content, target->content, target->content_len);
				n->content_len = target->content_len;
				n->has_content = true;
			}
		}
	}
	return 0;
}

static struct node *link_target(const struct tree *t, const struct node *n)
{
	int hops = 0;

	while (n && n->hardlink && hops++ < MAX_LINK_HOPS) {
		n = tree_find(t, n->hardlink);
	}
	return (struct node *)n;
}

/* ---- the walk of the tree ---- */

/* The matcher over the tree: ignore files come from the nodes. */
struct amatch {
	struct ignore *ig;
	struct tree *t;
	struct node *entering; /* the directory whose enter_dir comes next */
};

static int amatch_enter_cb(void *ud, const char *path, int dirfd)
{
	struct amatch *am = ud;
	struct node *f = NULL;

	(void)dirfd;
	for (size_t i = 0; i < am->entering->nkids; i++) {
		struct node *k = am->entering->kids[i];
		if (strcmp(k->name, ignore_filename(am->ig)) == 0 && k->type == S_IFREG) {
			f = k;
		}
	}
	if (f && f->has_content) {
		return ignore_push_buf(am->ig, path, f->content, f->content_len);
	}
	return ignore_push_buf(am->ig, path, NULL, 0);
}

static void amatch_leave_cb(void *ud, const char *path)
{
	struct amatch *am = ud;

	(void)path;
	ignore_pop_dir(am->ig);
}

static bool amatch_ignored_cb(void *ud, const struct walk_entry *e)
{
	struct amatch *am = ud;

	return ignore_match_path(am->ig, e->path, e->kind == WALK_DIR, NULL) == IGNORE_EXCLUDED;
}

static int cmp_kid(const void *a, const void *b)
{
	return strcmp((*(struct node *const *)a)->name, (*(struct node *const *)b)->name);
}

static enum walk_kind kind_of(mode_t type)
{
	switch (type) {
	case S_IFREG:
		return WALK_FILE;
	case S_IFDIR:
		return WALK_DIR;
	case S_IFLNK:
		return WALK_SYMLINK;
	case S_IFIFO:
		return WALK_FIFO;
	case S_IFSOCK:
		return WALK_SOCKET;
	default:
		return WALK_DEVICE;
	}
}

/* Walk dir as walk_tree walks a directory: names in byte order, .git never
 * visited, ignored entries and everything below them passed over. */
static int walk_node(struct amatch *am, struct snapshot_build *b, struct node *dir)
{
	const struct walk_ops *ops = &snapshot_build_walk_ops;
	int r;

	am->entering = dir;
	r = ops->enter_dir(b, dir->path, -1);
	if (r < 0) {
		return r;
	}
	if (dir->nkids > 1) {
		qsort(dir->kids, dir->nkids, sizeof(*dir->kids), cmp_kid);
	}
	for (size_t i = 0; i < dir->nkids && r == 0; i++) {
		struct node *k = dir->kids[i];
		struct stat st = {0};
		struct walk_entry e;
		if (strcmp(k->name, ".git") == 0) {
			continue;
		}
		st.st_mode = k->type | (k->perm & 07777);
		st.st_size = (off_t)k->size;
		e = (struct walk_entry){
		    .path = k->path,
		    .name = k->name,
		    .kind = kind_of(k->type),
		    .st = &st,
		    .dirfd = -1,
		    .link_target = k->target,
		};
		if (ops->ignored(b, &e)) {
			continue;
		}
		r = ops->visit(b, &e);
		if (r == 0 && k->type == S_IFDIR) {
			r = walk_node(am, b, k);
		}
	}
	ops->leave_dir(b, dir->path);
	return r;
}

/* ---- pass two: contents ---- */

static int read_data_cb(void *ud, void *buf, size_t len, size_t *ret_n)
{
	la_ssize_t n = archive_read_data(ud, buf, len);

	if (n < 0) {
		return -EBADMSG;
	}
	*ret_n = (size_t)n;
	return 0;
}

static int store_contents(struct tree *t, int fd, struct blob_batch *batch, char **cause)
{
	struct archive *a = NULL;
	struct archive_entry *ae;
	long ordinal = -1;
	int r;

	r = open_reader(fd, &a, cause, t->archive);
	if (r < 0) {
		return r;
	}
	for (;;) {
		const char *why;
		char *path = NULL;
		struct node *n;
		int ar = archive_read_next_header(a, &ae);
		if (ar == ARCHIVE_EOF) {
			break;
		}
		if (ar != ARCHIVE_OK && ar != ARCHIVE_WARN) {
			*cause = msg_strdupf("cannot read archive %s: %s", t->archive,
			                     archive_error_string(a) ? archive_error_string(a)
			                                             : "damaged");
			r = -EBADMSG;
			goto out;
		}
		ordinal++;
		if (!entry_name(ae) || util_rel_normalise(entry_name(ae), true, &path, &why) < 0) {
			r = -EAGAIN;
			goto changed;
		}
		n = tree_find(t, path);
		free(path);
		if (!n || n->ordinal > ordinal) {
			if (!n) {
				r = -EAGAIN;
				goto changed;
			}
			continue; /* replaced by a later entry */
		}
		if (n->ordinal != ordinal || n->type != S_IFREG || n->hardlink ||
		    (n->file_index < 0 && !n->need_hash)) {
			continue;
		}
		r = blob_batch_put_stream(batch, read_data_cb, a, n->hex, &n->hashed_size);
		if (r == -EBADMSG) {
			*cause = msg_strdupf(
			    "cannot read %s from archive %s: %s", n->path, t->archive,
			    archive_error_string(a) ? archive_error_string(a) : "damaged");
		}
		if (r < 0) {
			goto out;
		}
		n->hashed = true;
	}
	r = 0;
	goto out;
changed:
	*cause = msg_strdupf("archive %s changed while the snapshot was taken; submit again",
	                     t->archive);
out:
	archive_read_free(a);
	return r;
}

int snaparchive_take(struct blobstore *bs, const char *path, const struct snapshot_opts *opts,
                     struct snapshot_info *ret, char **cause)
{
	struct snapshot_opts o = *opts;
	struct snapshot_build *b = NULL;
	struct blob_batch *batch = NULL;
	struct locale_switch ls = {0};
	struct amatch am = {0};
	struct stat before, after;
	struct tree t = {0};
	struct node *aml;
	uint64_t max_entries;
	char *dummy = NULL;
	int fd = -1, r;

	if (!cause) {
		cause = &dummy;
	}
	/* O_NONBLOCK: a FIFO named as the source must not hold a worker. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &before) < 0) {
		r = -errno;
		*cause = msg_strdupf("cannot open archive %s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(before.st_mode)) {
		*cause = msg_strdupf("%s is not a file", path);
		r = -EINVAL;
		goto out;
	}
	locale_utf8(&ls);
	r = tree_init(&t, path);
	if (r < 0) {
		goto out;
	}
	max_entries = o.limits.max_files ? o.limits.max_files : SNAPSHOT_DEFAULT_MAX_FILES;
	max_entries = max_entries > UINT64_MAX / 16 ? UINT64_MAX : max_entries * 16;
	if (max_entries < 100000) {
		max_entries = 100000;
	}
	r = read_entries(&t, fd, max_entries, cause);
	if (r == 0) {
		r = resolve_links(&t, cause);
	}
	if (r < 0) {
		goto out;
	}
	aml = tree_find(&t, IGNORE_FILE_AML);
	r = ignore_create(aml && aml->type == S_IFREG && aml->has_content ? IGNORE_FILE_AML
	                                                                  : IGNORE_FILE_GIT,
	                  &am.ig);
	if (r < 0) {
		goto out;
	}
	am.t = &t;
	o.matcher = &(const struct walk_ops){
	    .enter_dir = amatch_enter_cb,
	    .leave_dir = amatch_leave_cb,
	    .ignored = amatch_ignored_cb,
	};
	o.matcher_ud = &am;
	o.ignore_file =
	    tree_find(&t, ignore_filename(am.ig)) ? ignore_filename(am.ig) : IGNORE_FILE_AML;
	o.stat_cache = NULL;
	r = snapshot_build_create(bs, path, &o, &b);
	if (r < 0) {
		goto out;
	}
	r = walk_node(&am, b, t.root);
	if (r == -ECANCELED) {
		r = 0; /* counted past the cutoff: the check says so */
	}
	if (r < 0) {
		*cause = snapshot_build_take_cause(b);
		goto out;
	}
	if (!o.list_only) {
		r = snapshot_build_check(b, cause);
		if (r < 0) {
			goto out;
		}
	}
	if (o.list_only) {
		r = snapshot_build_list(b, ret, cause);
		goto out;
	}
	for (size_t i = 0; i < snapshot_build_files(b); i++) {
		struct node *n = tree_find(&t, snapshot_build_file_path(b, i));
		if (!n) {
			r = -EINVAL;
			goto out;
		}
		n->file_index = (long)i;
		if (n->hardlink) {
			link_target(&t, n)->need_hash = true;
		}
	}
	r = blob_batch_create(bs, &batch);
	if (r < 0) {
		goto out;
	}
	r = store_contents(&t, fd, batch, cause);
	if (r < 0) {
		goto out;
	}
	if (fstat(fd, &after) < 0 || after.st_size != before.st_size ||
	    after.st_mtim.tv_sec != before.st_mtim.tv_sec ||
	    after.st_mtim.tv_nsec != before.st_mtim.tv_nsec) {
		*cause = msg_strdupf("archive %s changed while the snapshot was taken; submit "
		                     "again",
		                     path);
		r = -EAGAIN;
		goto out;
	}
	for (size_t i = 0; i < snapshot_build_files(b); i++) {
		struct node *n = tree_find(&t, snapshot_build_file_path(b, i));
		struct node *src = n->hardlink ? link_target(&t, n) : n;
		if (!src->hashed) {
			*cause = msg_strdupf("archive %s: the content of %s was not found on the "
			                     "second reading",
			                     path, n->path);
			r = -EBADMSG;
			goto out;
		}
		snapshot_build_set_file(b, i, src->hex, src->hashed_size);
	}
	r = snapshot_build_finish(b, batch, ret, cause);
out:
	locale_restore(&ls);
	blob_batch_destroy(batch);
	snapshot_build_destroy(b);
	ignore_destroy(am.ig);
	tree_finish(&t);
	if (fd >= 0) {
		close(fd);
	}
	free(dummy);
	return r;
}

/* ---- export ---- */

struct sink {
	int fd;
	EVP_MD_CTX *md;
	uint64_t size;
	int err;
};

static la_ssize_t sink_write_cb(struct archive *a, void *ud, const void *buf, size_t len)
{
	struct sink *s = ud;
	const char *p = buf;
	size_t left = len;

	(void)a;
	while (left > 0) {
		ssize_t w = write(s->fd, p, left);
		if (w < 0) {
			if (errno == EINTR) {
				continue;
			}
			s->err = -errno;
			return -1;
		}
		p += w;
		left -= (size_t)w;
	}
	EVP_DigestUpdate(s->md, buf, len);
	s->size += len;
	return (la_ssize_t)len;
}

static bool valid_utf8(const char *s)
{
	size_t len = strlen(s), clean_len = 0;
	char *clean = utf8_sanitize(s, len, &clean_len);
	bool same = clean && clean_len == len && memcmp(clean, s, len) == 0;

	free(clean);
	return same;
}

static int all_utf8_cb(void *ud, const struct snapshot_entry *e)
{
	bool *all = ud;

	if (!valid_utf8(e->path) || (e->target && !valid_utf8(e->target))) {
		*all = false;
		return 1;
	}
	return 0;
}

struct writer {
	struct archive *a;
	struct blobstore *bs;
	int64_t mtime;
	char *buf;
	char **cause;
	const char *id;
};

static int write_entry_cb(void *ud, const struct snapshot_entry *e)
{
	struct writer *w = ud;
	struct archive_entry *ae = archive_entry_new();
	char bpath[4096];
	int fd = -1, r = 0;
	int ar;

	if (!ae) {
		return -ENOMEM;
	}
	archive_entry_set_pathname(ae, e->path);
	archive_entry_set_mtime(ae, w->mtime, 0);
	archive_entry_set_uid(ae, 0);
	archive_entry_set_gid(ae, 0);
	switch (e->type) {
	case SNAPSHOT_DIR:
		archive_entry_set_filetype(ae, AE_IFDIR);
		archive_entry_set_perm(ae, e->mode & 0777);
		break;
	case SNAPSHOT_SYMLINK:
		archive_entry_set_filetype(ae, AE_IFLNK);
		archive_entry_set_perm(ae, 0777);
		archive_entry_set_symlink(ae, e->target);
		break;
	case SNAPSHOT_FILE:
		archive_entry_set_filetype(ae, AE_IFREG);
		archive_entry_set_perm(ae, e->mode & 0777);
		archive_entry_set_size(ae, (la_int64_t)e->size);
		r = blob_path(w->bs, e->sha256, bpath, sizeof(bpath));
		if (r == 0) {
			fd = open(bpath, O_RDONLY | O_CLOEXEC);
			r = fd < 0 ? -errno : 0;
		}
		if (r < 0) {
			*w->cause = msg_strdupf(
			    "snapshot %s is damaged: the content of %s is missing", w->id, e->path);
			archive_entry_free(ae);
			return -EBADMSG;
		}
		break;
	}
	/* ARCHIVE_WARN: a name that is not valid UTF-8, written as bytes. */
	ar = archive_write_header(w->a, ae);
	archive_entry_free(ae);
	if (ar != ARCHIVE_OK && ar != ARCHIVE_WARN) {
		r = -EIO;
		goto fail;
	}
	if (fd >= 0) {
		uint64_t left = e->size;
		while (left > 0) {
			ssize_t n = read(fd, w->buf, left < WRITE_CHUNK ? left : WRITE_CHUNK);
			if (n < 0 && errno == EINTR) {
				continue;
			}
			if (n <= 0) {
				*w->cause =
				    msg_strdupf("snapshot %s is damaged: the content of %s is "
				                "shorter than recorded",
				                w->id, e->path);
				close(fd);
				return -EBADMSG;
			}
			if (archive_write_data(w->a, w->buf, (size_t)n) != n) {
				r = -EIO;
				goto fail;
			}
			left -= (uint64_t)n;
		}
		close(fd);
	}
	return 0;
fail:
	if (fd >= 0) {
		close(fd);
	}
	*w->cause = msg_strdupf("cannot write the archive: %s",
	                        archive_error_string(w->a) ? archive_error_string(w->a) : "error");
	return r;
}

int snaparchive_export(struct blobstore *bs, const char *id, enum snaparchive_format format, int fd,
                       int64_t mtime, uint64_t *ret_size, char ret_sha256[65], char **cause)
{
	struct sink s = {.fd = fd};
	struct writer w = {.bs = bs, .mtime = mtime, .id = id};
	struct locale_switch ls = {0};
	unsigned char md[32];
	unsigned int mdlen = 0;
	char *dummy = NULL;
	bool all_utf8 = true;
	int r, ar;

	if (!cause) {
		cause = &dummy;
	}
	w.cause = cause;
	r = snapshot_foreach(bs, id, all_utf8_cb, &all_utf8, cause);
	if (r < 0) {
		return r;
	}
	if (format != SNAPARCHIVE_ZIP || all_utf8) {
		locale_utf8(&ls);
	}
	s.md = EVP_MD_CTX_new();
	w.a = archive_write_new();
	w.buf = malloc(WRITE_CHUNK);
	if (!s.md || !w.a || !w.buf || EVP_DigestInit_ex(s.md, EVP_sha256(), NULL) != 1) {
		r = -ENOMEM;
		goto out;
	}
	switch (format) {
	case SNAPARCHIVE_ZIP:
		ar = archive_write_set_format_zip(w.a);
		break;
	default:
		ar = archive_write_set_format_pax_restricted(w.a);
		if (ar == ARCHIVE_OK && format == SNAPARCHIVE_TAR_GZ) {
			ar = archive_write_add_filter_gzip(w.a);
			if (ar == ARCHIVE_OK) {
				/* No time in the gzip header: the same snapshot gives
				 * the same archive. */
				archive_write_set_filter_option(w.a, "gzip", "timestamp", NULL);
			}
		} else if (ar == ARCHIVE_OK && format == SNAPARCHIVE_TAR_ZST) {
			ar = archive_write_add_filter_zstd(w.a);
		}
		break;
	}
	if (ar != ARCHIVE_OK) {
		*cause = msg_strdupf("cannot write %s archives here: %s",
		                     snaparchive_format_name(format),
		                     archive_error_string(w.a) ? archive_error_string(w.a)
		                                               : "not supported by libarchive");
		r = -ENOTSUP;
		goto out;
	}
	archive_write_set_bytes_in_last_block(w.a, 1);
	if (archive_write_open(w.a, &s, NULL, sink_write_cb, NULL) != ARCHIVE_OK) {
		r = s.err ? s.err : -EIO;
		*cause = msg_strdupf("cannot write the archive: %s", archive_error_string(w.a)
		                                                         ? archive_error_string(w.a)
		                                                         : strerror(-r));
		goto out;
	}
	r = snapshot_foreach(bs, id, write_entry_cb, &w, cause);
	if (r < 0) {
		if (s.err) {
			r = s.err;
		}
		goto out;
	}
	if (archive_write_close(w.a) != ARCHIVE_OK) {
		r = s.err ? s.err : -EIO;
		*cause = msg_strdupf("cannot write the archive: %s", archive_error_string(w.a)
		                                                         ? archive_error_string(w.a)
		                                                         : strerror(-r));
		goto out;
	}
	if (EVP_DigestFinal_ex(s.md, md, &mdlen) != 1 || mdlen != 32) {
		r = -EIO;
		goto out;
	}
	if (ret_sha256) {
		blob_hex(md, ret_sha256);
	}
	if (ret_size) {
		*ret_size = s.size;
	}
	r = 0;
out:
	if (w.a) {
		archive_write_free(w.a);
	}
	locale_restore(&ls);
	EVP_MD_CTX_free(s.md);
	free(w.buf);
	free(dummy);
	return r;
}

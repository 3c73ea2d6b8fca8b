/* Ignore rules: .amlignore / .gitignore files with git's semantics, per directory. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "walk.h"

#define IGNORE_FILE_AML ".amlignore"
#define IGNORE_FILE_GIT ".gitignore"

/* An ignore file larger than this is refused rather than read. */
#define IGNORE_FILE_MAX (8u * 1024 * 1024)

/* The matcher of one tree: a stack of pattern lists, one per directory on
 * the way down from the root, each read from that directory's ignore file. */
struct ignore;

/* Which pattern decided about a path. The strings belong to the matcher and
 * stay valid until its list is popped. */
struct ignore_match {
	const char *source;  /* the ignore file, relative to the root: "sub/.amlignore" */
	unsigned line;       /* 1-based line in that file */
	const char *pattern; /* as git check-ignore -v prints it: "!keep.tmp", "data/" */
	bool negated;
};

enum ignore_result {
	IGNORE_NONE,     /* no pattern matches: taken */
	IGNORE_EXCLUDED, /* the last matching pattern excludes it */
	IGNORE_INCLUDED, /* the last matching pattern is a negation: taken */
};

/* A matcher that reads files named filename (IGNORE_FILE_AML or
 * IGNORE_FILE_GIT) in each directory. */
int ignore_create(const char *filename, struct ignore **ret);

/* Free the matcher and every list still pushed; accepts NULL. */
void ignore_destroy(struct ignore *ig);

/* The file name the matcher reads. */
const char *ignore_filename(const struct ignore *ig);

/* The ignore file a tree uses: IGNORE_FILE_AML when its root (open at
 * rootfd) has a regular file of that name, else IGNORE_FILE_GIT. */
const char *ignore_choose(int rootfd);

/* Push the patterns of the ignore file in directory dirpath (relative to the
 * root, "" for the root itself), open at dirfd. No file (or one that is not
 * a regular file: git does not follow a symlinked ignore file either) pushes
 * an empty list. Errors: -EFBIG over IGNORE_FILE_MAX, else what reading it
 * gave; *cause (when cause is non-NULL) says which file. */
int ignore_push_dir(struct ignore *ig, const char *dirpath, int dirfd, char **cause);

/* The same from the file's content in memory (buf NULL: no file). */
int ignore_push_buf(struct ignore *ig, const char *dirpath, const char *buf, size_t len);

/* Pop the list pushed last. */
void ignore_pop_dir(struct ignore *ig);

/* Decide about path (relative to the root, '/'-separated, without a trailing
 * '/'), a directory when is_dir, against the lists pushed, which must be
 * those of path's ancestors: the deepest file first, and in each file the
 * last matching pattern wins. Whether an ancestor directory is itself
 * excluded is the caller's business (the walk does not descend into one).
 * ret (may be NULL) gets the deciding pattern unless the result is NONE. */
enum ignore_result ignore_match_path(const struct ignore *ig, const char *path, bool is_dir,
                                     struct ignore_match *ret);

/* Walk hooks with the matcher as ud: enter_dir pushes the directory's file,
 * leave_dir pops it, ignored says whether an entry is excluded. */
extern const struct walk_ops ignore_walk_ops;

/* git's wildmatch: pattern (NUL-terminated) against text. With pathname,
 * '*', '?' and classes do not match '/', and "**" between slashes matches
 * any number of directories; without it '*' matches '/' too. */
bool ignore_glob(const char *pattern, const char *text, bool pathname);

/* What the rules say about one path of a tree, for explaining. */
struct ignore_explanation {
	enum ignore_result result;
	char *source; /* the deciding pattern (result != IGNORE_NONE), malloc'd */
	unsigned line;
	char *pattern;
	char *excluded_dir; /* an ancestor directory that is excluded, malloc'd; the
	                       match above is then the one that excluded it */
	char *not_dir;      /* an ancestor that is not a directory (a symlink, a
	                       file), so the path is not in the walked tree */
	bool missing;       /* the path does not exist (the rules still apply) */
	mode_t mode;        /* lstat's st_mode of the path; 0 when missing or not_dir */
};

/* Explain path (relative to the root open at rootfd; "./" and duplicate '/'
 * allowed, ".." not) as the snapshot's walk would decide it, reading the
 * ignore files named filename on the way down. want_dir: treat a missing
 * path as a directory (it was given with a trailing '/'). Does not look at
 * the path's own type beyond file or directory; the caller does. */
int ignore_explain(int rootfd, const char *filename, const char *path, bool want_dir,
                   struct ignore_explanation *ret, char **cause);

/* Free what an explanation holds; accepts NULL. */
void ignore_explanation_finish(struct ignore_explanation *e);

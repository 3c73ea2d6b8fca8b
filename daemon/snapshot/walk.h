/* Deterministic depth-first tree walk with hooks for an ignore-file matcher. */
#pragma once

#include <stdbool.h>
#include <sys/stat.h>

enum walk_kind { WALK_FILE, WALK_DIR, WALK_SYMLINK, WALK_FIFO, WALK_SOCKET, WALK_DEVICE };

/* What a callback sees of one entry. The strings and the stat point into
 * the walk's memory and are valid during the callback only. */
struct walk_entry {
	const char *path; /* relative to the root, '/'-separated, no leading './' */
	const char *name; /* last component */
	enum walk_kind kind;
	const struct stat *st;   /* lstat of the entry */
	int dirfd;               /* fd of the containing directory (for openat); -1 when the
	                            entries come from elsewhere (an archive) */
	const char *link_target; /* a symlink's target when dirfd is -1, else NULL */
};

/* The walk's hooks; any may be NULL. For a directory that is not ignored the
 * order is: visit(dir), enter_dir(dir), its entries, leave_dir(dir). */
struct walk_ops {
	/* Entering a directory (the root too, with path ""); dirfd stays open
	 * until the matching leave_dir. A negative return stops the walk with
	 * that error, and leave_dir is not called for this directory. */
	int (*enter_dir)(void *ud, const char *path, int dirfd);
	/* Leaving a directory whose enter_dir succeeded; called even when the
	 * walk is stopping on an error, so per-directory state can be freed. */
	void (*leave_dir)(void *ud, const char *path);
	/* True to skip the entry (and, for a directory, everything below). */
	bool (*ignored)(void *ud, const struct walk_entry *e);
	/* Called for every entry not ignored, directories before their
	 * contents. A negative return stops the walk with that error. */
	int (*visit)(void *ud, const struct walk_entry *e);
	/* An entry that cannot be read: a directory that cannot be opened or
	 * listed, or an entry that cannot be looked at, with err (a negative
	 * errno); e->kind is what lstat said (WALK_FILE when lstat itself
	 * failed). Return 0 to pass over it, or a negative error to stop the
	 * walk. NULL: such an entry stops the walk with its error. */
	int (*unreadable)(void *ud, const struct walk_entry *e, int err);
	/* A message for the last error a hook returned, malloc'd for the
	 * caller to free; NULL when there is none. */
	char *(*take_error)(void *ud);
};

/* Walk root depth-first through directory fds (no path-length limit; below
 * the root, symlinks are never followed), each directory's entries in byte
 * order of their names, so results are deterministic. An entry named .git
 * is never visited. The root itself is opened by its path, so a symlink
 * naming the root is followed. Entries that vanish during the walk are
 * passed over.
 *
 * Returns 0 or a negative errno. *cause (when cause is non-NULL) gets a
 * message for the walk's own failures (a directory that cannot be opened or
 * read); when a callback fails, its error is returned and giving a message
 * is up to the callback. */
int walk_tree(const char *root, const struct walk_ops *ops, void *ud, char **cause);

/* git metadata of a source directory, for run properties. */
#pragma once

#include <stdbool.h>

/* How long each git command may take before it is killed. */
#define GITMETA_TIMEOUT_MS 10000

/* What a run records about the git work tree its source is in. Every field
 * may be NULL: not in a work tree, git not installed, no commit yet, a
 * detached HEAD, no remote, or git took too long. */
struct gitmeta {
	char *commit; /* the HEAD commit's full hash */
	char *branch; /* the checked-out branch, short name */
	char *dirty;  /* "true" or "false": anything to commit or untracked */
	char *remote; /* the URL of the branch's remote (else origin, else the
	                 first one), without any user name or password */
};

/* Ask git about dir. Runs `git status` and `git config` as child processes
 * of the calling thread (so it can run in a helper process that has the
 * submitting user's identity), with optional locks off, fsmonitor off, no
 * terminal prompts and GIT_* variables of the daemon's environment removed.
 * Never fails for git's reasons: *ret is then left empty. -ENOMEM only. */
int gitmeta_read(const char *dir, struct gitmeta *ret);

/* The same in two halves, so that git runs while the snapshot is taken:
 * start `git status` (a job is returned even when git cannot run), then
 * collect its answer and ask `git config` (frees the job; NULL is fine).
 * A job not collected is ended with gitmeta_abort. */
struct gitmeta_job;
int gitmeta_start(const char *dir, struct gitmeta_job **ret);
int gitmeta_collect(struct gitmeta_job *job, struct gitmeta *ret);
void gitmeta_abort(struct gitmeta_job *job);

/* Free the strings; accepts NULL. */
void gitmeta_finish(struct gitmeta *m);

/* A remote URL without credentials: "https://user:token@host/x" and
 * "https://token@host/x" become "https://host/x", "ssh://u:pw@host/x"
 * becomes "ssh://host/x"; "ssh://git@host/x" and scp-like "git@host:x" are
 * kept. malloc'd. */
char *gitmeta_clean_url(const char *url);

/* Enforcing what a local run or a scoring server asked for (its memory,
 * its CPUs): the tier this machine allows, picked once at start-up, the
 * cgroup made (and a run's supervisor options) before it starts, and what
 * the kernel saw read back when it ends (docs/scheduling.md,
 * "Enforcement"). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct daemon;
struct run;

enum enforce_tier {
	/* A delegated cgroup v2 subtree: memory.max, memory.swap.max, cpu.max,
	 * pids.max on a child cgroup per run. */
	ENFORCE_CGROUP2,
	/* Writable cgroup v1 memory (and cpu) hierarchies. */
	ENFORCE_CGROUP1,
	/* No cgroup: the supervisor's --mem-limit polling, and --cpus-list. */
	ENFORCE_POLL,
};

/* What the supervisor's exit.json said of memory. */
struct enforce_sup {
	bool oom;        /* it killed the group for going over --mem-limit */
	int64_t peak_kb; /* peak_rss_kb, or maxrss_kb without one; < 0: none */
	bool failed;     /* the program did not exit 0 (a signal, a code) */
};

/* How a run's limits went. */
struct enforce_end {
	const char *tier; /* NULL: the run had no limits */
	int64_t mem;      /* its memory limit in bytes; 0: none */
	int64_t peak_mem; /* bytes; < 0: not known */
	bool oom;         /* killed for memory */
};

/* Pick the tier (the cgroup root is RUNYARD_CGROUP_ROOT, by default
 * /sys/fs/cgroup) and log it. Only out of memory fails. */
int enforce_init(struct daemon *d);
void enforce_close(struct daemon *d);

enum enforce_tier enforce_tier(const struct daemon *d);
/* "cgroup2", "cgroup1" or "poll". */
const char *enforce_tier_name(const struct daemon *d);

/* Whether the run is limited at all: it asks for memory, or for fewer
 * CPUs than the daemon may use. */
bool enforce_wanted(const struct run *r);

/* The supervisor options for the run (NULL-terminated, malloc'd, in
 * *ret_args; empty when it has no limits), after making its cgroups and
 * writing its limits there; *ret_tier is the tier it got (NULL: none).
 * A cgroup that cannot be made is logged and the run falls back to the
 * poll tier. -ENOMEM only. */
int enforce_args(struct run *r, char ***ret_args, const char **ret_tier);

/* The run's process has ended: read its peak memory and whether the OOM
 * killer fired (in the cgroup tiers; from sup in the poll tier), remove
 * its cgroups, give back its CPUs. Safe to call twice and after a restart. */
void enforce_finish(struct run *r, const struct enforce_sup *sup, struct enforce_end *ret);

/* Why who ("the run") ended out of memory, from what its limits saw:
 * "the run used 80.0 MiB, over its 64.0 MiB limit; it was killed".
 * malloc'd; NULL: no memory. */
char *enforce_oom_message(const struct enforce_end *lim, const char *who);

/* A process the daemon has just started itself (a scoring server, which
 * has no supervisor), held from now on to mem bytes (0: none) and mcpu
 * thousandths of CPUs (0: none). In a cgroup tier its cgroups are made and
 * pid is moved in; CPUs without a cpu controller are pinned with
 * sched_setaffinity. *ret_tier as enforce_args (NULL: no limits); with
 * *ret_poll the caller must watch its memory itself (enforce_group_rss),
 * since nothing else will. -ENOMEM only. */
int enforce_proc_start(struct daemon *d, int64_t pid, int64_t mem, int64_t mcpu,
		       const char **ret_tier, bool *ret_poll);

/* The resident memory of the processes of process group pgrp, in bytes
 * (a poll: shared pages count once per process); -errno. */
int64_t enforce_group_rss(int64_t pgrp);

/* The process started with enforce_proc_start (by this daemon or an
 * earlier one) has ended, failed when by a signal or an exit code: as
 * enforce_finish, with the same mem and mcpu. */
void enforce_proc_finish(struct daemon *d, int64_t pid, int64_t mem, int64_t mcpu, bool failed,
			 struct enforce_end *ret);

/* At start-up: remove the cgroups of processes started with
 * enforce_proc_start that ended while no daemon looked, all but those of
 * the n pids in keep (the ones still running). */
void enforce_proc_sweep(struct daemon *d, const int64_t *keep, size_t n);

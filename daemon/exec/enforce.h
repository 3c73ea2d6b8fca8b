/* Enforcing what a local run asked for (its memory, its CPUs): the tier
 * this machine allows, picked once at start-up, the run's cgroup made and
 * its supervisor's options before it starts, and what the kernel saw read
 * back when it ends (docs/scheduling.md, "Enforcement"). */
#pragma once

#include <stdbool.h>
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

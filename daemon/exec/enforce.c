/* Enforcing a local run's memory and CPUs. At start-up one tier is picked,
 * the best this machine lets us use:
 *
 *   cgroup2  our own cgroup (/proc/self/cgroup "0::/path") under the v2
 *            mount is delegated to us: memory (and cpu, pids) are in its
 *            cgroup.controllers and we may write there. runyardd moves
 *            itself into PATH/daemon (a cgroup with processes cannot give
 *            controllers to its children), enables the controllers for
 *            PATH/runyard, and each run gets PATH/runyard/run-<seq>.
 *   cgroup1  the v1 memory hierarchy (and cpu, or cpu,cpuacct) is
 *            writable: each run gets runyard/run-<seq> under our own
 *            cgroup in each.
 *   poll     neither: the supervisor polls the group's RSS (--mem-limit)
 *            and pins the program to as many CPUs as it asked for.
 *
 * The cgroup root is /sys/fs/cgroup, or RUNYARD_CGROUP_ROOT, a directory
 * laid out the same way: the unit test points it at plain files. So every
 * file is opened with O_CREAT (cgroupfs ignores it for its own files and
 * refuses new ones), and a run's directory that will not go with rmdir is
 * emptied of plain files first.
 *
 * The supervisor, not the daemon, puts the program in the run's cgroups
 * (--cgroup), so it stays outside them itself. Nothing per run is kept
 * here but the CPUs given out in the poll tier: what a run had is found
 * again from its cgroup directory, which its sequence number names. */
#include "enforce.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "context.h"
#include "log.h"
#include "msg.h"
#include "run.h"

#define CPU_PERIOD_US 100000
/* A fork bomb must not take the machine; a real program stays far below. */
#define PIDS_MAX 16384

/* CPUs handed out in the poll tier, so the next run gets the least used. */
struct enforce_pin {
	struct enforce_pin *next;
	int64_t key; /* the subject's pin key */
	cpu_set_t set;
};

struct enforce {
	enum enforce_tier tier;
	/* cgroup2: PATH/runyard. cgroup1: the runyard dirs of each hierarchy
	 * (cpu_dir "" when there is no usable cpu hierarchy). */
	char dir[PATH_MAX];
	char cpu_dir[PATH_MAX];
	bool has_cpu;  /* a cpu controller gives the quota */
	bool has_swap; /* v2 memory.swap.max, v1 memory.memsw.limit_in_bytes */
	bool has_pids;
	cpu_set_t allowed; /* the daemon's affinity */
	int ncpus;
	int users[CPU_SETSIZE];
	struct enforce_pin *pins;
	/* Names this daemon's cgroups apart from another's in the same parent
	 * (two state directories on one machine both have a run #1): a hash
	 * of the state directory, the same after a restart. "" without one. */
	char tag[10];
};

/* What is limited: a run (its supervisor puts the program in the cgroups)
 * or a process the daemon started itself (a scoring server), named by
 * prefix and key in the cgroup tree: run-<seq>, svc-<pid>. */
struct subject {
	const char *prefix;
	int64_t key;  /* the run's seq, the process's pid */
	int64_t pin;  /* its key among the CPUs handed out: seq, or -pid */
	int64_t mem;  /* bytes; 0: none */
	int64_t mcpu; /* thousandths of the CPUs it asked for; 0: none */
};

static struct subject run_subject(const struct run *r)
{
	return (struct subject){
	    .prefix = "run",
	    .key = r->seq,
	    .pin = r->seq,
	    .mem = r->req.mem > 0 ? r->req.mem : 0,
	    .mcpu = r->req.bound && r->req.cpus > 0 ? r->req.cpus * 1000 : 0,
	};
}

static struct subject proc_subject(int64_t pid, int64_t mem, int64_t mcpu)
{
	return (struct subject){
	    .prefix = "svc", .key = pid, .pin = -pid, .mem = mem > 0 ? mem : 0, .mcpu = mcpu};
}

static int path_fmt(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int path_fmt(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static bool exists(const char *dir, const char *name)
{
	char p[PATH_MAX];

	return path_fmt(p, sizeof(p), "%s/%s", dir, name) == 0 && access(p, F_OK) == 0;
}

static int write_text(const char *dir, const char *name, const char *text)
{
	char p[PATH_MAX];
	size_t len = strlen(text);
	int fd, err;

	err = path_fmt(p, sizeof(p), "%s/%s", dir, name);
	if (err < 0) {
		return err;
	}
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		return -errno;
	}
	/* cgroupfs takes one value per write(2), whole or not at all. */
	ssize_t n = write(fd, text, len);
	err = n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
	if (close(fd) < 0 && err == 0) {
		err = -errno;
	}
	return err;
}

static int write_int(const char *dir, const char *name, int64_t v)
{
	char text[32];

	snprintf(text, sizeof(text), "%" PRId64 "\n", v);
	return write_text(dir, name, text);
}

/* A small file's text into buf; -errno. */
static int read_text(const char *dir, const char *name, char *buf, size_t len)
{
	char p[PATH_MAX];
	int fd, err;
	ssize_t n;

	err = path_fmt(p, sizeof(p), "%s/%s", dir, name);
	if (err < 0) {
		return err;
	}
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return -errno;
	}
	n = read(fd, buf, len - 1);
	err = n < 0 ? -errno : 0;
	close(fd);
	buf[n < 0 ? 0 : n] = '\0';
	return err;
}

/* The number in a one-value file; -1 when it cannot be read. */
static int64_t read_int(const char *dir, const char *name)
{
	char buf[64], *end;

	if (read_text(dir, name, buf, sizeof(buf)) < 0) {
		return -1;
	}
	errno = 0;
	long long v = strtoll(buf, &end, 10);
	return errno || end == buf || v < 0 ? -1 : (int64_t)v;
}

/* "key N" in a flat keyed file (memory.events, memory.oom_control); -1: none. */
static int64_t read_key(const char *dir, const char *name, const char *key)
{
	char buf[4096];
	size_t kl = strlen(key);

	if (read_text(dir, name, buf, sizeof(buf)) < 0) {
		return -1;
	}
	for (char *line = buf; line && *line; line = strchr(line, '\n')) {
		line += *line == '\n';
		if (strncmp(line, key, kl) == 0 && line[kl] == ' ') {
			return strtoll(line + kl + 1, NULL, 10);
		}
	}
	return -1;
}

/* Whether word is one of the space-separated words of text. */
static bool has_word(const char *text, const char *word)
{
	size_t wl = strlen(word);

	for (const char *p = text; (p = strstr(p, word)); p += wl) {
		bool start = p == text || p[-1] == ' ' || p[-1] == '\n';
		bool stop = p[wl] == '\0' || p[wl] == ' ' || p[wl] == '\n';
		if (start && stop) {
			return true;
		}
	}
	return false;
}

/* Our cgroup in the hierarchy of controller (v1), or the v2 one when
 * controller is "": the path after the second ':' in /proc/self/cgroup. */
static int self_cgroup(const char *controller, char *buf, size_t len)
{
	char text[4096];
	int err = read_text("/proc/self", "cgroup", text, sizeof(text));

	if (err < 0) {
		return err;
	}
	for (char *line = text, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next) {
			*next++ = '\0';
		}
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2) {
			continue;
		}
		*c2 = '\0';
		/* v2's line is "0::/path": hierarchy 0, no controllers. */
		bool match = *controller == '\0' && c1 == line + 1 && line[0] == '0' &&
			     c1[1] == '\0';
		for (char *tok = c1 + 1, *comma; !match && *tok; tok = comma + 1) {
			comma = strchr(tok, ',');
			size_t tl = comma ? (size_t)(comma - tok) : strlen(tok);
			match = *controller && tl == strlen(controller) &&
				strncmp(tok, controller, tl) == 0;
			if (!comma) {
				break;
			}
		}
		if (match) {
			/* "/" is the hierarchy's root: nothing to add to its path. */
			return path_fmt(buf, len, "%s", strcmp(c2 + 1, "/") == 0 ? "" : c2 + 1);
		}
	}
	return -ENOENT;
}

static const char *cgroup_root(void)
{
	const char *root = getenv("RUNYARD_CGROUP_ROOT");

	return root && *root ? root : "/sys/fs/cgroup";
}

static int make_dir(const char *p)
{
	return mkdir(p, 0755) < 0 && errno != EEXIST ? -errno : 0;
}

/* cgroup2: a delegated subtree, set up for runs; why says what is missing. */
static int try_cgroup2(struct enforce *L, char *why, size_t wlen)
{
	const char *root = cgroup_root();
	char base[PATH_MAX], own[PATH_MAX], self[PATH_MAX], p[PATH_MAX], ctl[512], enable[64];
	int err;

	/* Unified at the root, or the hybrid layout's "unified". */
	if (path_fmt(base, sizeof(base), "%s", root) < 0 || !exists(base, "cgroup.controllers")) {
		if (path_fmt(base, sizeof(base), "%s/unified", root) < 0 ||
		    !exists(base, "cgroup.controllers")) {
			snprintf(why, wlen, "no cgroup v2 mount under %s", root);
			return -ENOENT;
		}
	}
	err = self_cgroup("", self, sizeof(self));
	if (err < 0 || path_fmt(own, sizeof(own), "%s%s", base, self) < 0) {
		snprintf(why, wlen, "our cgroup v2 path is not in /proc/self/cgroup");
		return -ENOENT;
	}
	if (read_text(own, "cgroup.controllers", ctl, sizeof(ctl)) < 0 ||
	    !has_word(ctl, "memory")) {
		snprintf(why, wlen, "%s has no memory controller", own);
		return -ENOENT;
	}
	if (path_fmt(p, sizeof(p), "%s/cgroup.subtree_control", own) < 0 ||
	    access(own, W_OK) < 0 || access(p, W_OK) < 0) {
		snprintf(why, wlen, "%s is not delegated to us (not writable)", own);
		return -EACCES;
	}
	L->has_cpu = has_word(ctl, "cpu");
	L->has_pids = has_word(ctl, "pids");
	snprintf(enable, sizeof(enable), "+memory%s%s", L->has_cpu ? " +cpu" : "",
		 L->has_pids ? " +pids" : "");
	/* No process may stay in a cgroup that gives controllers to its
	 * children (the root is exempt): we move to PATH/daemon first. */
	if (*self) {
		char me[24];
		snprintf(me, sizeof(me), "%d\n", (int)getpid());
		if (path_fmt(p, sizeof(p), "%s/daemon", own) < 0 || (err = make_dir(p)) < 0 ||
		    (err = write_text(p, "cgroup.procs", me)) < 0) {
			snprintf(why, wlen, "cannot move runyardd into %s/daemon: %s", own,
				 strerror(-err));
			return err;
		}
	}
	if ((err = write_text(own, "cgroup.subtree_control", enable)) < 0 ||
	    path_fmt(L->dir, sizeof(L->dir), "%s/runyard", own) < 0 ||
	    (err = make_dir(L->dir)) < 0 ||
	    (err = write_text(L->dir, "cgroup.subtree_control", enable)) < 0) {
		snprintf(why, wlen, "cannot enable %s for %s/runyard: %s", enable, own,
			 strerror(err < 0 ? -err : ENAMETOOLONG));
		return err < 0 ? err : -ENAMETOOLONG;
	}
	L->has_swap = exists(own, "memory.swap.max") || exists(L->dir, "memory.swap.max");
	return 0;
}

/* Our runyard dir in one v1 hierarchy (ROOT/name), made if need be. */
static int v1_dir(const char *name, const char *controller, const char *probe, char *ret,
		  size_t len)
{
	const char *root = cgroup_root();
	char h[PATH_MAX], self[PATH_MAX], own[PATH_MAX];

	if (path_fmt(h, sizeof(h), "%s/%s", root, name) < 0 || access(h, F_OK) < 0) {
		return -ENOENT;
	}
	/* In a cgroup namespace our path may not be visible as such: then
	 * the hierarchy's root is what we see. */
	if (self_cgroup(controller, self, sizeof(self)) < 0 ||
	    path_fmt(own, sizeof(own), "%s%s", h, self) < 0 || access(own, F_OK) < 0) {
		snprintf(own, sizeof(own), "%s", h);
	}
	if (!exists(own, probe)) {
		return -ENOENT;
	}
	if (path_fmt(ret, len, "%s/runyard", own) < 0) {
		return -ENAMETOOLONG;
	}
	return make_dir(ret);
}

static int try_cgroup1(struct enforce *L, char *why, size_t wlen)
{
	static const char *const cpu_names[] = {"cpu", "cpu,cpuacct", "cpuacct,cpu"};
	int err = v1_dir("memory", "memory", "memory.limit_in_bytes", L->dir, sizeof(L->dir));

	if (err < 0) {
		snprintf(why, wlen, "no writable cgroup v1 memory hierarchy under %s (%s)",
			 cgroup_root(), strerror(-err));
		return err;
	}
	L->has_swap = exists(L->dir, "memory.memsw.limit_in_bytes") ||
		      exists(L->dir, "../memory.memsw.limit_in_bytes");
	for (size_t i = 0; i < sizeof(cpu_names) / sizeof(cpu_names[0]) && !L->has_cpu; i++) {
		L->has_cpu = v1_dir(cpu_names[i], "cpu", "cpu.cfs_quota_us", L->cpu_dir,
				    sizeof(L->cpu_dir)) == 0;
	}
	if (!L->has_cpu) {
		L->cpu_dir[0] = '\0';
	}
	return 0;
}

int enforce_init(struct daemon *d)
{
	struct enforce *L = calloc(1, sizeof(*L));
	char why2[PATH_MAX + 128] = "", why1[PATH_MAX + 128] = "";

	if (!L) {
		return -ENOMEM;
	}
	if (sched_getaffinity(0, sizeof(L->allowed), &L->allowed) < 0) {
		CPU_ZERO(&L->allowed);
		for (long i = 0, n = sysconf(_SC_NPROCESSORS_ONLN); i < n && i < CPU_SETSIZE; i++) {
			CPU_SET((int)i, &L->allowed);
		}
	}
	L->ncpus = CPU_COUNT(&L->allowed);
	if (d->state_dir && *d->state_dir) {
		uint32_t h = 2166136261u; /* FNV-1a */
		for (const char *c = d->state_dir; *c; c++) {
			h = (h ^ (uint8_t)*c) * 16777619u;
		}
		snprintf(L->tag, sizeof(L->tag), "%08x", h);
	}
	if (try_cgroup2(L, why2, sizeof(why2)) == 0) {
		L->tier = ENFORCE_CGROUP2;
		log_info("resource limits: cgroup2 in %s (cpu %s)", L->dir,
			 L->has_cpu ? "cpu.max" : "by affinity");
	} else {
		L->has_cpu = L->has_pids = L->has_swap = false;
		if (try_cgroup1(L, why1, sizeof(why1)) == 0) {
			L->tier = ENFORCE_CGROUP1;
			log_info("resource limits: cgroup1 in %s, cpu %s%s (%s)", L->dir,
				 L->has_cpu ? "quota in " : "by affinity", L->cpu_dir, why2);
		} else {
			L->tier = ENFORCE_POLL;
			L->dir[0] = L->cpu_dir[0] = '\0';
			L->has_cpu = false;
			log_info("resource limits: poll (the supervisor watches memory each "
				 "second; %s; %s)",
				 why2, why1);
		}
	}
	d->enforce = L;
	return 0;
}

void enforce_close(struct daemon *d)
{
	struct enforce *L = d->enforce;

	if (!L) {
		return;
	}
	while (L->pins) {
		struct enforce_pin *p = L->pins;
		L->pins = p->next;
		free(p);
	}
	free(L);
	d->enforce = NULL;
}

enum enforce_tier enforce_tier(const struct daemon *d)
{
	return d->enforce ? d->enforce->tier : ENFORCE_POLL;
}

static const char *tier_name(enum enforce_tier t)
{
	switch (t) {
	case ENFORCE_CGROUP2:
		return "cgroup2";
	case ENFORCE_CGROUP1:
		return "cgroup1";
	default:
		return "poll";
	}
}

const char *enforce_tier_name(const struct daemon *d)
{
	return tier_name(enforce_tier(d));
}

static bool cpus_wanted(const struct enforce *L, const struct subject *s)
{
	/* Only CPUs asked for: the one a run that says nothing is counted for
	 * at admission is not a limit on its threads. */
	return L && s->mcpu > 0 && s->mcpu < (int64_t)L->ncpus * 1000;
}

static bool wanted(const struct enforce *L, const struct subject *s)
{
	return s->mem > 0 || cpus_wanted(L, s);
}

bool enforce_wanted(const struct run *r)
{
	struct subject s = run_subject(r);

	return wanted(r->d->enforce, &s);
}

/* The n least used of our CPUs (the lowest first among equals),
 * remembered under key until the subject ends. NULL: no memory. */
static struct enforce_pin *pin_cpus(struct enforce *L, int64_t key, int64_t n)
{
	struct enforce_pin *pin = calloc(1, sizeof(*pin));

	if (!pin) {
		return NULL;
	}
	pin->key = key;
	CPU_ZERO(&pin->set);
	for (int64_t k = 0; k < n; k++) {
		int best = -1;
		for (int c = 0; c < CPU_SETSIZE; c++) {
			if (CPU_ISSET(c, &L->allowed) && !CPU_ISSET(c, &pin->set) &&
			    (best < 0 || L->users[c] < L->users[best])) {
				best = c;
			}
		}
		if (best < 0) {
			break;
		}
		CPU_SET(best, &pin->set);
		L->users[best]++;
	}
	pin->next = L->pins;
	L->pins = pin;
	return pin;
}

/* The pin's CPUs as a list for --cpus-list ("0,1"); NULL: no memory. */
static char *pin_list(const struct enforce_pin *pin)
{
	char *list = pin ? malloc(CPU_SETSIZE * 6 + 1) : NULL;
	size_t len = 0;

	if (!list) {
		return NULL;
	}
	list[0] = '\0';
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (CPU_ISSET(c, &pin->set)) {
			len += (size_t)snprintf(list + len, 7, "%s%d", len ? "," : "", c);
		}
	}
	return list;
}

static void unpin_cpus(struct enforce *L, int64_t key)
{
	for (struct enforce_pin **pp = &L->pins; *pp; pp = &(*pp)->next) {
		struct enforce_pin *p = *pp;
		if (p->key == key) {
			for (int c = 0; c < CPU_SETSIZE; c++) {
				if (CPU_ISSET(c, &p->set) && L->users[c] > 0) {
					L->users[c]--;
				}
			}
			*pp = p->next;
			free(p);
			return;
		}
	}
}

/* Kill what is still in the cgroup (a process that left the program's
 * group), then remove it. A directory of plain files (a fake cgroupfs) is
 * emptied first; on cgroupfs those unlinks fail and change nothing. */
static void remove_cgroup(const char *dir)
{
	char procs[4096];
	bool killed = false;

	if (read_text(dir, "cgroup.procs", procs, sizeof(procs)) == 0) {
		for (char *p = procs; *p;) {
			char *end;
			long pid = strtol(p, &end, 10);
			if (end == p) {
				break;
			}
			if (pid > 1 && pid != (long)getpid()) {
				killed = kill((pid_t)pid, SIGKILL) == 0 || killed;
			}
			p = end;
		}
	}
	/* A killed process leaves its cgroup a moment later: wait a little. */
	for (int i = 0; i < (killed ? 20 : 1); i++) {
		if (rmdir(dir) == 0 || errno == ENOENT) {
			return;
		}
		if (errno == ENOTEMPTY || errno == EEXIST) {
			DIR *dd = opendir(dir);
			struct dirent *de;
			while (dd && (de = readdir(dd))) {
				char p[PATH_MAX];
				if (de->d_name[0] != '.' &&
				    path_fmt(p, sizeof(p), "%s/%s", dir, de->d_name) == 0) {
					unlink(p);
				}
			}
			if (dd) {
				closedir(dd);
			}
			if (rmdir(dir) == 0) {
				return;
			}
		}
		nanosleep(&(struct timespec){.tv_nsec = 5 * 1000 * 1000}, NULL);
	}
	log_warn("cannot remove the cgroup %s: %s", dir, strerror(errno));
}

/* The subject's cgroup directory in one of our runyard dirs. */
static int subject_dir(const struct enforce *L, const char *base, const struct subject *s,
		       char *buf, size_t len)
{
	if (L->tag[0]) {
		return path_fmt(buf, len, "%s/%s-%s-%" PRId64, base, s->prefix, L->tag, s->key);
	}
	return path_fmt(buf, len, "%s/%s-%" PRId64, base, s->prefix, s->key);
}

/* A CPU quota per period: at least the 1 ms the kernel takes. */
static int64_t cpu_quota(const struct subject *s)
{
	int64_t q = s->mcpu * CPU_PERIOD_US / 1000;

	return q < 1000 ? 1000 : q;
}

/* Make the subject's cgroups and write its limits. */
static int make_cgroups(struct enforce *L, const struct subject *s, char *mem_dir, char *cpu_dir,
			size_t len)
{
	int64_t mem = s->mem;
	int err;

	cpu_dir[0] = '\0';
	err = subject_dir(L, L->dir, s, mem_dir, len);
	if (err < 0 || (err = make_dir(mem_dir)) < 0) {
		return err;
	}
	if (L->tier == ENFORCE_CGROUP2) {
		if (mem > 0 && (err = write_int(mem_dir, "memory.max", mem)) < 0) {
			return err;
		}
		/* Swap would let a run go past its limit, only slower. */
		if (mem > 0 && L->has_swap &&
		    (err = write_text(mem_dir, "memory.swap.max", "0\n")) < 0) {
			return err;
		}
		if (cpus_wanted(L, s) && L->has_cpu) {
			char quota[48];
			snprintf(quota, sizeof(quota), "%" PRId64 " %d\n", cpu_quota(s),
				 CPU_PERIOD_US);
			if ((err = write_text(mem_dir, "cpu.max", quota)) < 0) {
				return err;
			}
		}
		if (L->has_pids && (err = write_int(mem_dir, "pids.max", PIDS_MAX)) < 0) {
			return err;
		}
		return 0;
	}
	if (mem > 0 && (err = write_int(mem_dir, "memory.limit_in_bytes", mem)) < 0) {
		return err;
	}
	/* memsw counts memory and swap together; it may not go below the
	 * memory limit, so it is written second. */
	if (mem > 0 && L->has_swap &&
	    (err = write_int(mem_dir, "memory.memsw.limit_in_bytes", mem)) < 0) {
		return err;
	}
	if (cpus_wanted(L, s) && L->has_cpu) {
		int64_t quota = cpu_quota(s);
		if ((err = subject_dir(L, L->cpu_dir, s, cpu_dir, len)) < 0 ||
		    (err = make_dir(cpu_dir)) < 0 ||
		    (err = write_int(cpu_dir, "cpu.cfs_period_us", CPU_PERIOD_US)) < 0 ||
		    (err = write_int(cpu_dir, "cpu.cfs_quota_us", quota)) < 0) {
			return err;
		}
	}
	return 0;
}

/* The subject's cgroups made and its limits written; on failure (logged,
 * as what) nothing of them is left, for the caller to fall back to the
 * poll tier. */
static int subject_cgroups(struct enforce *L, const struct subject *s, const char *what,
			   char *mem_dir, char *cpu_dir, size_t len)
{
	int err = make_cgroups(L, s, mem_dir, cpu_dir, len);

	if (err < 0) {
		log_warn("%s: cannot set up its cgroup in %s (%s); it is limited by polling "
			 "instead",
			 what, L->dir, strerror(-err));
		if (subject_dir(L, L->dir, s, mem_dir, len) == 0) {
			remove_cgroup(mem_dir);
		}
		if (L->cpu_dir[0] && subject_dir(L, L->cpu_dir, s, cpu_dir, len) == 0) {
			remove_cgroup(cpu_dir);
		}
	}
	return err;
}

/* How many whole CPUs a pin gives for what was asked. */
static int64_t pin_count(const struct subject *s)
{
	return (s->mcpu + 999) / 1000;
}

int enforce_args(struct run *r, char ***ret_args, const char **ret_tier)
{
	struct enforce *L = r->d->enforce;
	struct subject s = run_subject(r);
	char mem_dir[PATH_MAX], cpu_dir[PATH_MAX], num[32];
	char **args = calloc(7, sizeof(char *));
	enum enforce_tier tier = enforce_tier(r->d);
	bool pin = false;
	size_t n = 0;

	if (!args) {
		return -ENOMEM;
	}
	*ret_tier = NULL;
	if (!L || !wanted(L, &s)) {
		*ret_args = args;
		return 0;
	}
	if (tier != ENFORCE_POLL) {
		char what[128];
		snprintf(what, sizeof(what), "run %s", r->id);
		if (subject_cgroups(L, &s, what, mem_dir, cpu_dir, sizeof(mem_dir)) < 0) {
			tier = ENFORCE_POLL;
		}
	}
	if (tier != ENFORCE_POLL) {
		args[n++] = strdup("--cgroup");
		args[n++] = strdup(mem_dir);
		if (cpu_dir[0]) {
			args[n++] = strdup("--cgroup");
			args[n++] = strdup(cpu_dir);
		}
		pin = cpus_wanted(L, &s) && !L->has_cpu;
	} else {
		if (s.mem > 0) {
			snprintf(num, sizeof(num), "%" PRId64, s.mem);
			args[n++] = strdup("--mem-limit");
			args[n++] = strdup(num);
		}
		pin = cpus_wanted(L, &s);
	}
	if (pin) {
		args[n++] = strdup("--cpus-list");
		args[n++] = pin_list(pin_cpus(L, s.pin, pin_count(&s)));
	}
	for (size_t i = 0; i < n; i++) {
		if (!args[i]) {
			for (size_t k = 0; k < n; k++) {
				free(args[k]);
			}
			free(args);
			unpin_cpus(L, s.pin);
			return -ENOMEM;
		}
	}
	*ret_tier = tier_name(tier);
	*ret_args = args;
	return 0;
}

/* What the kernel saw of the subject, its cgroups removed; failed: the
 * process did not end well (an OOM kill of a child in a process that
 * still succeeded is not its end). Whether it had cgroups is found from
 * the tree, so this works after a restart. */
static void subject_finish(struct enforce *L, const struct subject *s, bool failed,
			   struct enforce_end *ret)
{
	char dir[PATH_MAX];

	unpin_cpus(L, s->pin);
	/* The cgroup is there only if it was made for the subject. */
	if (L->tier == ENFORCE_POLL || subject_dir(L, L->dir, s, dir, sizeof(dir)) < 0 ||
	    access(dir, F_OK) < 0) {
		return;
	}
	int64_t kills;
	ret->tier = tier_name(L->tier);
	if (L->tier == ENFORCE_CGROUP2) {
		ret->peak_mem = read_int(dir, "memory.peak");
		kills = read_key(dir, "memory.events", "oom_kill");
	} else {
		ret->peak_mem = read_int(dir, "memory.max_usage_in_bytes");
		kills = read_key(dir, "memory.oom_control", "oom_kill");
		/* Kernels before 4.13 do not count kills: hitting the limit and
		 * dying of SIGKILL is the best sign there is. */
		if (kills < 0 && read_int(dir, "memory.failcnt") > 0) {
			kills = 1;
		}
	}
	ret->oom = kills > 0 && failed;
	remove_cgroup(dir);
	if (L->cpu_dir[0] && subject_dir(L, L->cpu_dir, s, dir, sizeof(dir)) == 0 &&
	    access(dir, F_OK) == 0) {
		remove_cgroup(dir);
	}
}

void enforce_finish(struct run *r, const struct enforce_sup *sup, struct enforce_end *ret)
{
	struct enforce *L = r->d->enforce;
	struct subject s = run_subject(r);

	*ret = (struct enforce_end){.mem = s.mem, .peak_mem = -1};
	if (!L) {
		return;
	}
	subject_finish(L, &s, sup && sup->failed, ret);
	if (!ret->tier && wanted(L, &s)) {
		ret->tier = tier_name(ENFORCE_POLL);
		ret->oom = sup && sup->oom;
	}
	if (ret->tier && ret->peak_mem < 0 && sup && sup->peak_kb >= 0) {
		ret->peak_mem = sup->peak_kb * 1024;
	}
}

char *enforce_oom_message(const struct enforce_end *lim, const char *who)
{
	double mib = 1024.0 * 1024.0;

	if (lim->mem <= 0) {
		return lim->peak_mem >= 0 ? msg_strdupf("%s ran out of memory at %.1f MiB; it was "
							"killed",
							who, (double)lim->peak_mem / mib)
					  : msg_strdupf("%s ran out of memory; it was killed", who);
	}
	if (lim->peak_mem > lim->mem) {
		return msg_strdupf("%s used %.1f MiB, over its %.1f MiB limit; it was killed", who,
				   (double)lim->peak_mem / mib, (double)lim->mem / mib);
	}
	/* The kernel stops a cgroup at its limit, so its peak is the limit. */
	return msg_strdupf("%s needed more than its %.1f MiB limit (it reached %.1f MiB); it was "
			   "killed",
			   who, (double)lim->mem / mib,
			   (double)(lim->peak_mem >= 0 ? lim->peak_mem : lim->mem) / mib);
}

/* ---- processes the daemon starts itself ---- */

int enforce_proc_start(struct daemon *d, int64_t pid, int64_t mem, int64_t mcpu,
		       const char **ret_tier, bool *ret_poll)
{
	struct enforce *L = d->enforce;
	struct subject s = proc_subject(pid, mem, mcpu);
	char mem_dir[PATH_MAX], cpu_dir[PATH_MAX] = "", me[24], what[64];
	enum enforce_tier tier = enforce_tier(d);
	int err;

	*ret_tier = NULL;
	*ret_poll = false;
	if (!L || !wanted(L, &s)) {
		return 0;
	}
	snprintf(me, sizeof(me), "%" PRId64 "\n", pid);
	snprintf(what, sizeof(what), "process %" PRId64, pid);
	if (tier != ENFORCE_POLL) {
		err = subject_cgroups(L, &s, what, mem_dir, cpu_dir, sizeof(mem_dir));
		/* cgroup.procs moves the whole process, threads and all; what it
		 * allocated before stays charged where it was (a few MiB of a
		 * starting interpreter). */
		if (err == 0 && (err = write_text(mem_dir, "cgroup.procs", me)) == 0 && cpu_dir[0]) {
			err = write_text(cpu_dir, "cgroup.procs", me);
		}
		if (err < 0) {
			log_warn("%s: cannot join its cgroup %s (%s); it is limited by polling "
				 "instead",
				 what, mem_dir, strerror(-err));
			remove_cgroup(mem_dir);
			if (cpu_dir[0]) {
				remove_cgroup(cpu_dir);
			}
			tier = ENFORCE_POLL;
		}
	}
	if (cpus_wanted(L, &s) && (tier == ENFORCE_POLL || !L->has_cpu)) {
		struct enforce_pin *p = pin_cpus(L, s.pin, pin_count(&s));
		if (!p) {
			return -ENOMEM;
		}
		/* Threads made from now on inherit it; a starting interpreter
		 * has made none yet. */
		if (sched_setaffinity((pid_t)pid, sizeof(p->set), &p->set) < 0) {
			log_warn("%s: cannot pin it to its CPUs: %s", what, strerror(errno));
		}
	}
	*ret_poll = tier == ENFORCE_POLL && s.mem > 0;
	*ret_tier = tier_name(tier);
	return 0;
}

int64_t enforce_group_rss(int64_t pgrp)
{
	static long page;
	DIR *proc = opendir("/proc");
	struct dirent *de;
	int64_t total = 0;

	if (!proc) {
		return -errno;
	}
	if (!page) {
		page = sysconf(_SC_PAGESIZE);
	}
	while ((de = readdir(proc))) {
		char name[PATH_MAX], buf[1024];
		long long grp = -1, rss = 0;
		if (de->d_name[0] < '1' || de->d_name[0] > '9' ||
		    path_fmt(name, sizeof(name), "/proc/%s", de->d_name) < 0 ||
		    read_text(name, "stat", buf, sizeof(buf)) < 0) {
			continue;
		}
		/* After the command's last ')': state ppid pgrp, then rss is the
		 * 22nd field from the state. */
		const char *p = strrchr(buf, ')');
		if (p && sscanf(p + 1, " %*c %*d %lld %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u "
					"%*d %*d %*d %*d %*d %*d %*u %*u %lld",
				&grp, &rss) == 2 &&
		    grp == pgrp && rss > 0) {
			total += rss * page;
		}
	}
	closedir(proc);
	return total;
}

void enforce_proc_finish(struct daemon *d, int64_t pid, int64_t mem, int64_t mcpu, bool failed,
			 struct enforce_end *ret)
{
	struct enforce *L = d->enforce;
	struct subject s = proc_subject(pid, mem, mcpu);

	*ret = (struct enforce_end){.mem = s.mem, .peak_mem = -1};
	if (L) {
		subject_finish(L, &s, failed, ret);
	}
}

/* Remove base's svc-* cgroups but those of keep's pids. */
static void sweep_dir(const struct enforce *L, const char *base, const int64_t *keep, size_t n)
{
	char prefix[24], p[PATH_MAX];
	DIR *dd = opendir(base);
	struct dirent *de;

	if (!dd) {
		return;
	}
	snprintf(prefix, sizeof(prefix), "svc-%s%s", L->tag, L->tag[0] ? "-" : "");
	while ((de = readdir(dd))) {
		char *end;
		size_t pl = strlen(prefix);
		if (strncmp(de->d_name, prefix, pl) != 0 || de->d_name[pl] < '1' ||
		    de->d_name[pl] > '9') {
			continue;
		}
		long long pid = strtoll(de->d_name + pl, &end, 10);
		bool kept = *end != '\0';
		for (size_t i = 0; i < n && !kept; i++) {
			kept = keep[i] == pid;
		}
		if (!kept && path_fmt(p, sizeof(p), "%s/%s", base, de->d_name) == 0) {
			log_info("removing the cgroup %s of a scoring server that has ended", p);
			remove_cgroup(p);
		}
	}
	closedir(dd);
}

void enforce_proc_sweep(struct daemon *d, const int64_t *keep, size_t n)
{
	struct enforce *L = d->enforce;

	if (!L || L->tier == ENFORCE_POLL) {
		return;
	}
	sweep_dir(L, L->dir, keep, n);
	if (L->cpu_dir[0]) {
		sweep_dir(L, L->cpu_dir, keep, n);
	}
}

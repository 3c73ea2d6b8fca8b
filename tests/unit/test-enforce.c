/* exec/enforce.c against fake cgroup trees in a temporary directory
 * (RUNYARD_CGROUP_ROOT): which tier it picks, the files and values it
 * writes for a run, what it reads back when the run ends, and that the
 * run's directories go. The fake trees are plain files, laid out where
 * this process's own /proc/self/cgroup says its cgroups are. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "context.h"
#include "enforce.h"
#include "run.h"
#include "test.h"

#define MIB (1024 * 1024)

static char tmp[256];
static int ncpus;

static void mkdir_p(const char *path)
{
	char buf[PATH_MAX];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(buf, 0755);
			*p = '/';
		}
	}
	mkdir(buf, 0755);
}

static void put(const char *dir, const char *name, const char *text)
{
	char p[PATH_MAX];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "w");
	if (!f) {
		fprintf(stderr, "cannot write %s: %s\n", p, strerror(errno));
		test_failures++;
		return;
	}
	fputs(text, f);
	fclose(f);
}

/* The file's text ("" when missing), in a static buffer. */
static const char *get(const char *dir, const char *name)
{
	static char buf[4096];
	char p[PATH_MAX];
	FILE *f;
	size_t n = 0;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	buf[0] = '\0';
	f = fopen(p, "r");
	if (f) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return buf;
}

static bool is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void rm_rf(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	char p[PATH_MAX];

	if (!d) {
		unlink(path);
		return;
	}
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
			rm_rf(p);
		}
	}
	closedir(d);
	rmdir(path);
}

/* Our cgroup path for a v1 controller, or v2's ("" as controller); "" for the root. */
static void self_path(const char *controller, char *buf, size_t len)
{
	char line[1024];
	FILE *f = fopen("/proc/self/cgroup", "r");

	buf[0] = '\0';
	while (f && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2) {
			continue;
		}
		*c2 = '\0';
		bool match = *controller ? false : strcmp(line, "0:") == 0;
		for (char *tok = strtok(c1 + 1, ","); *controller && tok && !match;
		     tok = strtok(NULL, ",")) {
			match = strcmp(tok, controller) == 0;
		}
		if (match) {
			snprintf(buf, len, "%s", strcmp(c2 + 1, "/") == 0 ? "" : c2 + 1);
			break;
		}
	}
	if (f) {
		fclose(f);
	}
}

static void reset_root(const char *name, char *root, size_t len)
{
	snprintf(root, len, "%s/%s", tmp, name);
	rm_rf(root);
	mkdir_p(root);
	setenv("RUNYARD_CGROUP_ROOT", root, 1);
}

static struct run make_run(struct daemon *d, int64_t seq, int64_t mem, int64_t cpus)
{
	static char ids[8][32];
	struct run r;

	memset(&r, 0, sizeof(r));
	r.d = d;
	r.seq = seq;
	snprintf(ids[seq % 8], sizeof(ids[0]), "run-test-%lld", (long long)seq);
	r.id = ids[seq % 8];
	r.req.mem = mem;
	r.req.cpus = cpus;
	r.req.bound = cpus > 0; /* asked for, so enforced */
	return r;
}

static size_t count(char **args)
{
	size_t n = 0;

	while (args && args[n]) {
		n++;
	}
	return n;
}

static void free_args(char **args)
{
	for (size_t i = 0; args && args[i]; i++) {
		free(args[i]);
	}
	free(args);
}

/* A fake delegated cgroup v2 tree under tmp/name; own is our cgroup in it. */
static void make_v2(const char *name, char *root, size_t rlen, char *self, size_t slen, char *own,
		    size_t olen)
{
	reset_root(name, root, rlen);
	self_path("", self, slen);
	snprintf(own, olen, "%s%s", root, self);
	mkdir_p(own);
	put(root, "cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma\n");
	put(own, "cgroup.controllers", "cpu memory pids\n");
	put(own, "cgroup.subtree_control", "");
	put(own, "cgroup.procs", "");
	put(own, "memory.swap.max", "max\n");
}

static void test_cgroup2(void)
{
	char root[512], self[1024], own[2048], runs[2100], dir[PATH_MAX];
	struct daemon d = {0};
	struct enforce_end end;
	const char *tier;
	char **args = NULL;

	make_v2("v2", root, sizeof(root), self, sizeof(self), own, sizeof(own));

	EXPECT_INT(enforce_init(&d), 0);
	EXPECT_INT(enforce_tier(&d), ENFORCE_CGROUP2);
	EXPECT_STR(enforce_tier_name(&d), "cgroup2");
	EXPECT_STR(get(own, "cgroup.subtree_control"), "+memory +cpu +pids");
	snprintf(runs, sizeof(runs), "%s/runyard", own);
	EXPECT(is_dir(runs));
	EXPECT_STR(get(runs, "cgroup.subtree_control"), "+memory +cpu +pids");
	if (*self) {
		/* Out of the cgroup that now gives controllers to its children. */
		char me[32], daemon_dir[2100];
		snprintf(me, sizeof(me), "%d\n", (int)getpid());
		snprintf(daemon_dir, sizeof(daemon_dir), "%s/daemon", own);
		EXPECT_STR(get(daemon_dir, "cgroup.procs"), me);
	}

	/* 50 MiB and one CPU. */
	struct run r = make_run(&d, 7, 50 * MIB, 1);
	EXPECT(enforce_wanted(&r));
	EXPECT_INT(enforce_args(&r, &args, &tier), 0);
	EXPECT_STR(tier, "cgroup2");
	snprintf(dir, sizeof(dir), "%s/run-7", runs);
	EXPECT_INT(count(args), 2);
	if (count(args) == 2) {
		EXPECT_STR(args[0], "--cgroup");
		EXPECT_STR(args[1], dir);
	}
	free_args(args);
	EXPECT(is_dir(dir));
	EXPECT_STR(get(dir, "memory.max"), "52428800\n");
	EXPECT_STR(get(dir, "memory.swap.max"), "0\n");
	EXPECT_STR(get(dir, "pids.max"), "16384\n");
	EXPECT_STR(get(dir, "cpu.max"), ncpus > 1 ? "100000 100000\n" : "");

	/* What the kernel would have left there: killed over the limit. */
	put(dir, "memory.peak", "222720000\n");
	put(dir, "memory.events", "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n");
	struct enforce_sup sup = {.failed = true, .peak_kb = 3000};
	enforce_finish(&r, &sup, &end);
	EXPECT_STR(end.tier, "cgroup2");
	EXPECT_INT(end.mem, 50 * MIB);
	EXPECT_INT(end.peak_mem, 222720000);
	EXPECT(end.oom);
	EXPECT(!is_dir(dir));
	/* Again, after the directory has gone: nothing to read, nothing breaks. */
	enforce_finish(&r, &sup, &end);
	EXPECT(!end.oom);

	/* An OOM kill of a child in a run that still succeeded is not its end;
	 * without memory.peak the supervisor's figure is taken. */
	struct run ok = make_run(&d, 8, 64 * MIB, 0);
	EXPECT_INT(enforce_args(&ok, &args, &tier), 0);
	free_args(args);
	snprintf(dir, sizeof(dir), "%s/run-8", runs);
	EXPECT_STR(get(dir, "cpu.max"), "");
	put(dir, "memory.events", "oom_kill 1\n");
	sup = (struct enforce_sup){.failed = false, .peak_kb = 2048};
	enforce_finish(&ok, &sup, &end);
	EXPECT(!end.oom);
	EXPECT_INT(end.peak_mem, 2048 * 1024);
	EXPECT(!is_dir(dir));

	/* No request: no options, no cgroup, no tier. */
	struct run none = make_run(&d, 9, 0, 0);
	EXPECT(!enforce_wanted(&none));
	EXPECT_INT(enforce_args(&none, &args, &tier), 0);
	EXPECT_INT(count(args), 0);
	EXPECT(tier == NULL);
	free_args(args);
	snprintf(dir, sizeof(dir), "%s/run-9", runs);
	EXPECT(!is_dir(dir));
	enforce_finish(&none, NULL, &end);
	EXPECT(end.tier == NULL);

	/* A cgroup that cannot be made: the run falls back to polling. */
	struct run bad = make_run(&d, 10, 50 * MIB, 0);
	snprintf(dir, sizeof(dir), "%s/run-10", runs);
	put(runs, "run-10", "in the way\n");
	EXPECT_INT(enforce_args(&bad, &args, &tier), 0);
	EXPECT_STR(tier, "poll");
	EXPECT_INT(count(args), 2);
	if (count(args) == 2) {
		EXPECT_STR(args[0], "--mem-limit");
		EXPECT_STR(args[1], "52428800");
	}
	free_args(args);
	unlink(dir);
	sup = (struct enforce_sup){.oom = true, .failed = true, .peak_kb = 80000};
	enforce_finish(&bad, &sup, &end);
	EXPECT_STR(end.tier, "poll");
	EXPECT(end.oom);
	EXPECT_INT(end.peak_mem, 80000 * 1024);

	enforce_close(&d);
	EXPECT(d.enforce == NULL);
}

static void test_cgroup2_not_delegated(void)
{
	char root[512], self[1024], own[2048];
	struct daemon d = {0};

	reset_root("v2-no-memory", root, sizeof(root));
	self_path("", self, sizeof(self));
	snprintf(own, sizeof(own), "%s%s", root, self);
	mkdir_p(own);
	put(root, "cgroup.controllers", "cpu io pids\n");
	put(own, "cgroup.controllers", "cpu pids\n");
	put(own, "cgroup.subtree_control", "");
	EXPECT_INT(enforce_init(&d), 0);
	EXPECT_STR(enforce_tier_name(&d), "poll");
	enforce_close(&d);
}

static void test_cgroup1(void)
{
	char root[512], self[1024], mem[2048], cpu[2048];
	char mdir[PATH_MAX], cdir[PATH_MAX];
	struct daemon d = {0};
	struct enforce_end end;
	const char *tier;
	char **args = NULL;

	reset_root("v1", root, sizeof(root));
	/* The hybrid layout's unified mount, with no controllers in it. */
	snprintf(mem, sizeof(mem), "%s/unified", root);
	mkdir_p(mem);
	put(mem, "cgroup.controllers", "");
	self_path("memory", self, sizeof(self));
	snprintf(mem, sizeof(mem), "%s/memory%s", root, self);
	mkdir_p(mem);
	put(mem, "memory.limit_in_bytes", "9223372036854771712\n");
	put(mem, "memory.memsw.limit_in_bytes", "9223372036854771712\n");
	self_path("cpu", self, sizeof(self));
	snprintf(cpu, sizeof(cpu), "%s/cpu,cpuacct%s", root, self);
	mkdir_p(cpu);
	put(cpu, "cpu.cfs_quota_us", "-1\n");

	EXPECT_INT(enforce_init(&d), 0);
	EXPECT_STR(enforce_tier_name(&d), "cgroup1");
	struct run r = make_run(&d, 3, 64 * MIB, 1);
	EXPECT_INT(enforce_args(&r, &args, &tier), 0);
	EXPECT_STR(tier, "cgroup1");
	snprintf(mdir, sizeof(mdir), "%s/runyard/run-3", mem);
	snprintf(cdir, sizeof(cdir), "%s/runyard/run-3", cpu);
	if (ncpus > 1) {
		EXPECT_INT(count(args), 4);
		if (count(args) == 4) {
			EXPECT_STR(args[0], "--cgroup");
			EXPECT_STR(args[1], mdir);
			EXPECT_STR(args[2], "--cgroup");
			EXPECT_STR(args[3], cdir);
		}
		EXPECT_STR(get(cdir, "cpu.cfs_quota_us"), "100000\n");
		EXPECT_STR(get(cdir, "cpu.cfs_period_us"), "100000\n");
	}
	free_args(args);
	EXPECT_STR(get(mdir, "memory.limit_in_bytes"), "67108864\n");
	EXPECT_STR(get(mdir, "memory.memsw.limit_in_bytes"), "67108864\n");

	put(mdir, "memory.max_usage_in_bytes", "67108864\n");
	put(mdir, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
	struct enforce_sup sup = {.failed = true, .peak_kb = 1000};
	enforce_finish(&r, &sup, &end);
	EXPECT_STR(end.tier, "cgroup1");
	EXPECT_INT(end.peak_mem, 67108864);
	EXPECT(end.oom);
	EXPECT(!is_dir(mdir));
	EXPECT(!is_dir(cdir));

	/* An old kernel without oom_kill: failcnt and a failed run. */
	struct run old = make_run(&d, 4, 64 * MIB, 0);
	EXPECT_INT(enforce_args(&old, &args, &tier), 0);
	free_args(args);
	snprintf(mdir, sizeof(mdir), "%s/runyard/run-4", mem);
	put(mdir, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n");
	put(mdir, "memory.failcnt", "31\n");
	enforce_finish(&old, &sup, &end);
	EXPECT(end.oom);
	EXPECT_INT(end.peak_mem, 1000 * 1024);
	EXPECT(!is_dir(mdir));
	enforce_close(&d);

	/* Two daemons in one cgroup (two state directories), each with its run
	 * #5: two cgroups, and the end of one leaves the other's alone. */
	struct daemon a = {.state_dir = "/srv/a"}, b = {.state_dir = "/srv/b"};
	char **aargs = NULL, **bargs = NULL;
	EXPECT_INT(enforce_init(&a), 0);
	EXPECT_INT(enforce_init(&b), 0);
	struct run ra = make_run(&a, 5, 64 * MIB, 0), rb = make_run(&b, 5, 32 * MIB, 0);
	EXPECT_INT(enforce_args(&ra, &aargs, &tier), 0);
	EXPECT_INT(enforce_args(&rb, &bargs, &tier), 0);
	EXPECT(count(aargs) == 2 && count(bargs) == 2);
	if (count(aargs) == 2 && count(bargs) == 2) {
		EXPECT(strcmp(aargs[1], bargs[1]) != 0);
		EXPECT(strstr(aargs[1], "/runyard/run-") && strstr(aargs[1], "-5"));
		EXPECT_STR(get(aargs[1], "memory.limit_in_bytes"), "67108864\n");
		EXPECT_STR(get(bargs[1], "memory.limit_in_bytes"), "33554432\n");
		enforce_finish(&rb, NULL, &end);
		EXPECT(!is_dir(bargs[1]));
		EXPECT(is_dir(aargs[1]));
		enforce_finish(&ra, NULL, &end);
		EXPECT(!is_dir(aargs[1]));
	}
	free_args(aargs);
	free_args(bargs);
	enforce_close(&a);
	enforce_close(&b);
}

static void test_poll(void)
{
	char root[512];
	struct daemon d = {0};
	const char *tier;
	char **a = NULL, **b = NULL, **c = NULL;
	struct enforce_end end;

	reset_root("empty", root, sizeof(root));
	EXPECT_INT(enforce_init(&d), 0);
	EXPECT_STR(enforce_tier_name(&d), "poll");
	struct run r1 = make_run(&d, 1, 100 * MIB, 1), r2 = make_run(&d, 2, 0, 1),
		   r3 = make_run(&d, 3, 0, 1);
	EXPECT_INT(enforce_args(&r1, &a, &tier), 0);
	EXPECT_STR(tier, "poll");
	EXPECT_INT(count(a), ncpus > 1 ? 4 : 2);
	if (count(a) >= 2) {
		EXPECT_STR(a[0], "--mem-limit");
		EXPECT_STR(a[1], "104857600");
	}
	if (ncpus > 1 && count(a) == 4) {
		/* Each run gets the least used of our CPUs. */
		EXPECT_INT(enforce_args(&r2, &b, &tier), 0);
		EXPECT_INT(count(b), 2);
		EXPECT_STR(a[2], "--cpus-list");
		EXPECT(count(b) == 2 && strcmp(a[3], b[1]) != 0);
		enforce_finish(&r1, NULL, &end);
		EXPECT_INT(enforce_args(&r3, &c, &tier), 0);
		EXPECT(count(c) == 2 && strcmp(a[3], c[1]) == 0);
	}
	free_args(a);
	free_args(b);
	free_args(c);
	enforce_close(&d);
}

/* A child in a process group of its own that touches mib MiB and waits
 * to be killed. */
static pid_t hold_child(int mib)
{
	pid_t pid = fork();

	if (pid == 0) {
		setpgid(0, 0);
		/* volatile: a store never read again is not elided. */
		volatile char *p = malloc((size_t)mib * MIB);
		for (size_t i = 0; p && i < (size_t)mib * MIB; i += 4096) {
			p[i] = 1;
		}
		for (;;) {
			pause();
		}
	}
	setpgid(pid, pid);
	return pid;
}

static void end_child(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* A scoring server's limits: a process the daemon started, put in its
 * cgroup by pid (cgroup2), or pinned and polled (poll). */
static void test_proc(void)
{
	char root[512], self[1024], own[2048], dir[PATH_MAX], want[32];
	struct daemon d = {0};
	struct enforce_end end;
	const char *tier;
	bool poll;
	pid_t pid = hold_child(1);

	make_v2("v2-proc", root, sizeof(root), self, sizeof(self), own, sizeof(own));
	EXPECT_INT(enforce_init(&d), 0);
	EXPECT_STR(enforce_tier_name(&d), "cgroup2");
	/* Half a CPU and 50 MiB. */
	EXPECT_INT(enforce_proc_start(&d, pid, 50 * MIB, 500, &tier, &poll), 0);
	EXPECT_STR(tier, "cgroup2");
	EXPECT(!poll);
	snprintf(dir, sizeof(dir), "%s/runyard/svc-%d", own, (int)pid);
	snprintf(want, sizeof(want), "%d\n", (int)pid);
	EXPECT_STR(get(dir, "cgroup.procs"), want);
	EXPECT_STR(get(dir, "memory.max"), "52428800\n");
	EXPECT_STR(get(dir, "cpu.max"), ncpus > 1 ? "50000 100000\n" : "");
	put(dir, "memory.peak", "52428800\n");
	put(dir, "memory.events", "oom 1\noom_kill 1\n");
	enforce_proc_finish(&d, pid, 50 * MIB, 500, true, &end);
	EXPECT_STR(end.tier, "cgroup2");
	EXPECT(end.oom);
	EXPECT_INT(end.peak_mem, 50 * MIB);
	EXPECT(!is_dir(dir));
	char *msg = enforce_oom_message(&end, "it");
	EXPECT_STR(msg, "it needed more than its 50.0 MiB limit (it reached 50.0 MiB); it was "
			"killed");
	free(msg);
	/* No limits: nothing made. */
	EXPECT_INT(enforce_proc_start(&d, pid, 0, 0, &tier, &poll), 0);
	EXPECT(tier == NULL && !poll);
	EXPECT(!is_dir(dir));
	/* At start-up, the cgroups of servers that ended while no daemon
	 * looked go; a running one's, a run's and others' stay. */
	char keep_dir[PATH_MAX], gone_dir[PATH_MAX], run_dir[PATH_MAX], other[PATH_MAX];
	snprintf(keep_dir, sizeof(keep_dir), "%s/runyard/svc-222", own);
	snprintf(gone_dir, sizeof(gone_dir), "%s/runyard/svc-111", own);
	snprintf(run_dir, sizeof(run_dir), "%s/runyard/run-111", own);
	snprintf(other, sizeof(other), "%s/runyard/svc-x", own);
	mkdir_p(keep_dir);
	mkdir_p(gone_dir);
	mkdir_p(run_dir);
	mkdir_p(other);
	put(gone_dir, "memory.max", "1\n");
	int64_t keep[] = {222};
	enforce_proc_sweep(&d, keep, 1);
	EXPECT(is_dir(keep_dir));
	EXPECT(!is_dir(gone_dir));
	EXPECT(is_dir(run_dir));
	EXPECT(is_dir(other));
	enforce_close(&d);

	/* Poll: the caller watches memory; one CPU is pinned. */
	reset_root("empty-proc", root, sizeof(root));
	EXPECT_INT(enforce_init(&d), 0);
	end_child(pid);
	pid = hold_child(24);
	EXPECT_INT(enforce_proc_start(&d, pid, 64 * MIB, 1000, &tier, &poll), 0);
	EXPECT_STR(tier, "poll");
	EXPECT(poll);
	if (ncpus > 1) {
		cpu_set_t set;
		EXPECT_INT(sched_getaffinity(pid, sizeof(set), &set), 0);
		EXPECT_INT(CPU_COUNT(&set), 1);
	}
	/* The child may still be touching its pages: wait until it has. */
	int64_t rss = 0;
	for (int i = 0; i < 200 && rss < 24 * MIB; i++) {
		rss = enforce_group_rss(pid);
		usleep(10000);
	}
	EXPECT(rss >= 24 * MIB);
	EXPECT(rss < 64 * MIB);
	EXPECT_INT(enforce_group_rss(999999999), 0);
	enforce_proc_finish(&d, pid, 64 * MIB, 1000, true, &end);
	EXPECT(end.tier == NULL && !end.oom);
	end_child(pid);
	enforce_close(&d);
}

int main(void)
{
	cpu_set_t set;
	const char *t = getenv("TMPDIR");

	if (sched_getaffinity(0, sizeof(set), &set) == 0) {
		ncpus = CPU_COUNT(&set);
	}
	snprintf(tmp, sizeof(tmp), "%s/test-limits-XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(tmp)) {
		fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	test_cgroup2();
	test_cgroup2_not_delegated();
	test_cgroup1();
	test_poll();
	test_proc();
	rm_rf(tmp);
	TEST_DONE();
}

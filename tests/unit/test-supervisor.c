/*
 * test-supervisor /path/to/runyard-supervisor
 *
 * Runs the real supervisor binary the way the daemon does (new session, cwd
 * = the run directory, std fds on /dev/null) against small /bin/sh scripts,
 * then parses output.log, exit.json and supervisor.json and checks them.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_KEYS 16
#define LINE_MAX_BYTES 65536

static const char *supervisor_path;
static const char *current_case;
static int failures;

struct rec {
	char tag;
	int64_t ts;
	size_t len;
	const char *data;
};

struct json_kv {
	char key[32];
	char val[64];
};

struct json_obj {
	size_t n;
	struct json_kv kv[MAX_KEYS];
};

struct result {
	char dir[PATH_MAX];
	pid_t sup_pid;
	int sup_status;
	double elapsed;
	char *log;
	size_t log_len;
	struct rec *recs;
	size_t nrecs;
	bool have_exit;
	struct json_obj exit;
	bool have_sup;
	struct json_obj sup;
};

struct run_opts {
	const char *timeout;
	const char *grace;
	int cancel_signal; /* sent (twice) once the output contains cancel_when */
	const char *cancel_when;
	double max_seconds;  /* the supervisor is SIGKILLed after this */
	bool tweak_signals;  /* start the supervisor with odd signal state */
	long fsize_limit;    /* RLIMIT_FSIZE for the supervisor, 0 = unchanged */
	bool cancel_at_once; /* SIGTERM pending before the supervisor even starts */
	const char *bind_src, *bind_dst; /* --ro-bind SRC DST */
	const char *mem_limit;           /* --mem-limit BYTES */
	const char *cpus_list;           /* --cpus-list LIST */
	const char *cgroup;              /* --cgroup DIR */
};

__attribute__((format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "FAIL [%s]: ", current_case);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	failures++;
}

#define EXPECT(cond, ...)                                                                          \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fail(__VA_ARGS__);                                                         \
		}                                                                                  \
	} while (0)

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
	}
}

/* Reads a whole file; NULL with errno set if it cannot. The buffer is NUL-terminated. */
static char *read_file(const char *dir, const char *name, size_t *ret_len)
{
	char path[PATH_MAX + 64];
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return NULL;
	}
	for (;;) {
		if (cap - len < 65536) {
			cap = cap ? cap * 2 : 131072;
			char *nbuf = realloc(buf, cap + 1);
			if (!nbuf) {
				free(buf);
				close(fd);
				errno = ENOMEM;
				return NULL;
			}
			buf = nbuf;
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			int e = errno;
			free(buf);
			close(fd);
			errno = e;
			return NULL;
		}
		if (n == 0) {
			break;
		}
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	if (ret_len) {
		*ret_len = len;
	}
	return buf;
}

static bool file_exists(const char *dir, const char *name)
{
	char path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

static bool parse_u64(const char **p, const char *end, uint64_t *ret)
{
	const char *q = *p;
	uint64_t v = 0;

	if (q >= end || *q < '0' || *q > '9') {
		return false;
	}
	while (q < end && *q >= '0' && *q <= '9') {
		v = v * 10 + (uint64_t)(*q - '0');
		q++;
	}
	*p = q;
	*ret = v;
	return true;
}

/* Strict: any deviation from "<s> <ts_us> <len> <bytes>\n" is a failure. */
static bool parse_log(struct result *r)
{
	const char *p = r->log, *end = r->log + r->log_len;
	size_t cap = 0;

	while (p < end) {
		struct rec rec;
		uint64_t ts, len;
		size_t off = (size_t)(p - r->log);

		if (end - p < 2 || (p[0] != 'o' && p[0] != 'e') || p[1] != ' ') {
			fail("output.log: bad stream tag at offset %zu", off);
			return false;
		}
		rec.tag = p[0];
		p += 2;
		if (!parse_u64(&p, end, &ts) || p >= end || *p++ != ' ' ||
		    !parse_u64(&p, end, &len) || p >= end || *p++ != ' ') {
			fail("output.log: bad record header at offset %zu", off);
			return false;
		}
		if ((uint64_t)(end - p) < len + 1 || p[len] != '\n') {
			fail("output.log: record at offset %zu (len %llu) not followed by newline",
			     off, (unsigned long long)len);
			return false;
		}
		rec.ts = (int64_t)ts;
		rec.len = (size_t)len;
		rec.data = p;
		p += len + 1;
		if (r->nrecs == cap) {
			cap = cap ? cap * 2 : 64;
			struct rec *n = realloc(r->recs, cap * sizeof(*n));
			if (!n) {
				fail("out of memory");
				return false;
			}
			r->recs = n;
		}
		r->recs[r->nrecs++] = rec;
	}
	return true;
}

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') {
		p++;
	}
	return p;
}

/* A flat object of numbers, null, true and false: all the supervisor writes. */
static bool parse_flat_json(const char *name, const char *text, struct json_obj *ret)
{
	const char *p = skip_ws(text);

	ret->n = 0;
	if (*p++ != '{') {
		goto bad;
	}
	p = skip_ws(p);
	while (*p != '}') {
		if (ret->n == MAX_KEYS || *p++ != '"') {
			goto bad;
		}
		struct json_kv *kv = &ret->kv[ret->n++];
		size_t k = 0;
		while (*p && *p != '"' && k + 1 < sizeof(kv->key)) {
			kv->key[k++] = *p++;
		}
		kv->key[k] = '\0';
		if (*p++ != '"') {
			goto bad;
		}
		p = skip_ws(p);
		if (*p++ != ':') {
			goto bad;
		}
		p = skip_ws(p);
		size_t v = 0;
		while (*p && strchr("0123456789.-+eEtruefalsn", *p) && v + 1 < sizeof(kv->val)) {
			kv->val[v++] = *p++;
		}
		kv->val[v] = '\0';
		if (v == 0) {
			goto bad;
		}
		if (strcmp(kv->val, "null") && strcmp(kv->val, "true") &&
		    strcmp(kv->val, "false")) {
			char *e;
			strtod(kv->val, &e);
			if (*e != '\0' || !strchr("0123456789", kv->val[0])) {
				goto bad;
			}
		}
		p = skip_ws(p);
		if (*p == ',') {
			p = skip_ws(p + 1);
			continue;
		}
		if (*p != '}') {
			goto bad;
		}
	}
	if (*skip_ws(p + 1) != '\0') {
		goto bad;
	}
	return true;
bad:
	fail("%s is not the expected JSON object: %s", name, text);
	return false;
}

static const char *json_get(const struct json_obj *o, const char *key)
{
	for (size_t i = 0; i < o->n; i++) {
		if (strcmp(o->kv[i].key, key) == 0) {
			return o->kv[i].val;
		}
	}
	return NULL;
}

static void expect_json(const struct json_obj *o, const char *name, const char *key,
                        const char *want)
{
	const char *v = json_get(o, key);

	if (!v) {
		fail("%s: missing key \"%s\" (expected %s)", name, key, want);
	} else if (strcmp(v, want) != 0) {
		fail("%s: \"%s\" is %s, expected %s", name, key, v, want);
	}
}

static double json_num(const struct json_obj *o, const char *name, const char *key)
{
	const char *v = json_get(o, key);

	if (!v || !strchr("0123456789", v[0])) {
		fail("%s: \"%s\" should be a number, is %s", name, key, v ? v : "missing");
		return -1;
	}
	return strtod(v, NULL);
}

static void remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[PATH_MAX + 300];

	if (!d) {
		return;
	}
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (unlink(path) < 0) {
			rmdir(path);
		}
	}
	closedir(d);
	rmdir(dir);
}

static void result_free(struct result *r, bool keep_dir)
{
	if (r->dir[0] && !keep_dir) {
		remove_tree(r->dir);
	} else if (r->dir[0]) {
		fprintf(stderr, "  (kept %s)\n", r->dir);
	}
	free(r->log);
	free(r->recs);
	memset(r, 0, sizeof(*r));
}

static bool make_dir(struct result *r)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(r->dir, sizeof(r->dir), "%s/test-supervisor-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(r->dir)) {
		fail("mkdtemp %s: %s", r->dir, strerror(errno));
		r->dir[0] = '\0';
		return false;
	}
	return true;
}

static bool log_contains(const char *dir, const char *needle)
{
	size_t len;
	char *log = read_file(dir, "output.log", &len);
	bool found = log && memmem(log, len, needle, strlen(needle)) != NULL;

	free(log);
	return found;
}

/* As the daemon does: own session, cwd = run dir, std fds on /dev/null. */
static pid_t spawn_supervisor(const char *dir, const char *const *args, const struct run_opts *o)
{
	pid_t pid = fork();

	if (pid != 0) {
		return pid;
	}
	setsid();
	if (chdir(dir) < 0) {
		_exit(120);
	}
	int null_fd = open("/dev/null", O_RDWR);
	dup2(null_fd, STDIN_FILENO);
	dup2(null_fd, STDOUT_FILENO);
	if (o && o->fsize_limit) {
		struct rlimit rl = {.rlim_cur = (rlim_t)o->fsize_limit,
		                    .rlim_max = (rlim_t)o->fsize_limit};
		setrlimit(RLIMIT_FSIZE, &rl);
	}
	if (o && o->tweak_signals) {
		/* The supervisor must not pass any of this on to the program. */
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, SIGUSR1);
		sigaddset(&set, SIGTERM);
		sigprocmask(SIG_BLOCK, &set, NULL);
		signal(SIGUSR2, SIG_IGN);
		signal(SIGPIPE, SIG_IGN);
		signal(SIGQUIT, SIG_IGN);
	}
	setenv("RUNYARD_TEST_VAR", "from-the-environment", 1);
	execv(args[0], (char *const *)args);
	_exit(121);
}

/* Runs the supervisor on argv (program and args) and collects what it left behind. */
static bool run_sup(struct result *r, const struct run_opts *o, const char *const *prog)
{
	const char *args[64];
	size_t n = 0;
	bool canceled = false;
	double start;

	if (!make_dir(r)) {
		return false;
	}
	args[n++] = supervisor_path;
	args[n++] = "--dir";
	args[n++] = r->dir;
	if (o->timeout) {
		args[n++] = "--timeout";
		args[n++] = o->timeout;
	}
	if (o->grace) {
		args[n++] = "--grace";
		args[n++] = o->grace;
	}
	if (o->bind_src) {
		args[n++] = "--ro-bind";
		args[n++] = o->bind_src;
		args[n++] = o->bind_dst;
	}
	if (o->mem_limit) {
		args[n++] = "--mem-limit";
		args[n++] = o->mem_limit;
	}
	if (o->cpus_list) {
		args[n++] = "--cpus-list";
		args[n++] = o->cpus_list;
	}
	if (o->cgroup) {
		args[n++] = "--cgroup";
		args[n++] = o->cgroup;
	}
	args[n++] = "--";
	for (size_t i = 0; prog[i] && n < 63; i++) {
		args[n++] = prog[i];
	}
	args[n] = NULL;

	start = now_s();
	sigset_t term, saved;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	if (o->cancel_at_once) {
		/* Inherited blocked and pending, so it is there from the first instruction. */
		sigprocmask(SIG_BLOCK, &term, &saved);
	}
	r->sup_pid = spawn_supervisor(r->dir, args, o);
	if (o->cancel_at_once) {
		if (r->sup_pid > 0) {
			kill(r->sup_pid, SIGTERM);
		}
		sigprocmask(SIG_SETMASK, &saved, NULL);
	}
	if (r->sup_pid < 0) {
		fail("fork: %s", strerror(errno));
		return false;
	}
	for (;;) {
		pid_t w = waitpid(r->sup_pid, &r->sup_status, WNOHANG);
		if (w == r->sup_pid) {
			break;
		}
		if (w < 0 && errno != EINTR) {
			fail("waitpid: %s", strerror(errno));
			return false;
		}
		if (now_s() - start > o->max_seconds) {
			fail("supervisor still running after %.1f s; killed it", o->max_seconds);
			kill(r->sup_pid, SIGKILL);
			char *text = read_file(r->dir, "supervisor.json", NULL);
			const char *pg = text ? strstr(text, "\"pgid\": ") : NULL;
			if (pg && atoi(pg + 8) > 0) {
				killpg(atoi(pg + 8), SIGKILL);
			}
			free(text);
			waitpid(r->sup_pid, &r->sup_status, 0);
			return false;
		}
		if (o->cancel_signal && !canceled && log_contains(r->dir, o->cancel_when)) {
			/* The second one must change nothing. */
			kill(r->sup_pid, o->cancel_signal);
			sleep_ms(20);
			kill(r->sup_pid, o->cancel_signal);
			canceled = true;
		}
		sleep_ms(5);
	}
	r->elapsed = now_s() - start;
	if (o->cancel_signal && !canceled) {
		fail("never saw \"%s\" in output.log, so never canceled", o->cancel_when);
	}

	r->log = read_file(r->dir, "output.log", &r->log_len);
	if (r->log && !parse_log(r)) {
		return false;
	}
	char *text = read_file(r->dir, "exit.json", NULL);
	if (text) {
		r->have_exit = parse_flat_json("exit.json", text, &r->exit);
		free(text);
	}
	text = read_file(r->dir, "supervisor.json", NULL);
	if (text) {
		r->have_sup = parse_flat_json("supervisor.json", text, &r->sup);
		free(text);
	}
	return true;
}

/* Everything every normal run must satisfy, whatever the program did. */
static void check_common(struct result *r)
{
	struct stat st;
	char path[PATH_MAX + 64];

	EXPECT(WIFEXITED(r->sup_status) && WEXITSTATUS(r->sup_status) == 0,
	       "supervisor should exit 0, status was 0x%x", r->sup_status);
	EXPECT(r->log != NULL, "output.log should exist");
	EXPECT(r->have_exit, "exit.json should exist and parse");
	EXPECT(r->have_sup, "supervisor.json should exist and parse");
	EXPECT(!file_exists(r->dir, "exit.json.tmp"), "exit.json.tmp should not be left behind");
	EXPECT(!file_exists(r->dir, "supervisor.json.tmp"),
	       "supervisor.json.tmp should not be left behind");
	if (file_exists(r->dir, "supervisor.err")) {
		char *err = read_file(r->dir, "supervisor.err", NULL);
		fail("supervisor.err should not exist, it says: %s", err ? err : "?");
		free(err);
	}
	snprintf(path, sizeof(path), "%s/output.log", r->dir);
	if (stat(path, &st) == 0) {
		EXPECT((st.st_mode & 0777) == 0600, "output.log mode should be 0600, is %o",
		       (unsigned)(st.st_mode & 0777));
	}
	if (!r->have_exit || !r->have_sup) {
		return;
	}

	double started = json_num(&r->exit, "exit.json", "started_at");
	double ended = json_num(&r->exit, "exit.json", "ended_at");
	EXPECT(started > 1e9 && ended >= started,
	       "expected 1e9 < started_at <= ended_at, got %f, %f", started, ended);
	EXPECT(json_num(&r->exit, "exit.json", "utime") >= 0, "utime should be >= 0");
	EXPECT(json_num(&r->exit, "exit.json", "stime") >= 0, "stime should be >= 0");
	EXPECT(json_num(&r->exit, "exit.json", "maxrss_kb") > 0, "maxrss_kb should be > 0");
	for (size_t i = 0; i < 12; i++) {
		static const char *keys[] = {"exit_code",   "signal",        "timed_out",
		                             "canceled",    "exec_failed",   "utime",
		                             "stime",       "maxrss_kb",     "started_at",
		                             "ended_at",    "output_dropped", "output_dropped_bytes"};
		EXPECT(json_get(&r->exit, keys[i]), "exit.json should have \"%s\"", keys[i]);
	}
	/* Output is kept whole on a disk with room. */
	EXPECT(json_num(&r->exit, "exit.json", "output_dropped") == 0,
	       "output_dropped should be 0");
	/* --mem-limit adds "oom" and "peak_rss_kb". */
	size_t keys = json_get(&r->exit, "oom") ? 14 : 12;
	EXPECT(r->exit.n == keys, "exit.json should have exactly %zu keys, has %zu", keys,
	       r->exit.n);

	double sup_pid = json_num(&r->sup, "supervisor.json", "supervisor_pid");
	double pgid = json_num(&r->sup, "supervisor.json", "pgid");
	EXPECT(sup_pid == r->sup_pid, "supervisor_pid should be %d, is %.0f", (int)r->sup_pid,
	       sup_pid);
	EXPECT(pgid > 0 && pgid != sup_pid, "pgid should be the program's own group, is %.0f",
	       pgid);
	EXPECT(json_num(&r->sup, "supervisor.json", "started_at") == started,
	       "supervisor.json and exit.json should agree on started_at");
	EXPECT(r->sup.n == 3, "supervisor.json should have exactly 3 keys, has %zu", r->sup.n);

	/* Timestamps: wall clock when read, so inside the run and never going backwards. */
	int64_t prev = 0;
	int64_t lo = (int64_t)(started * 1e6) - 1;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	int64_t hi = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
	for (size_t i = 0; i < r->nrecs; i++) {
		if (r->recs[i].ts < prev || r->recs[i].ts < lo || r->recs[i].ts > hi) {
			fail("record %zu: timestamp %lld out of order or outside the run", i,
			     (long long)r->recs[i].ts);
			break;
		}
		prev = r->recs[i].ts;
	}
}

static void expect_status(struct result *r, const char *exit_code, const char *sig,
                          const char *timed_out, const char *canceled, const char *exec_failed)
{
	if (!r->have_exit) {
		return;
	}
	expect_json(&r->exit, "exit.json", "exit_code", exit_code);
	expect_json(&r->exit, "exit.json", "signal", sig);
	expect_json(&r->exit, "exit.json", "timed_out", timed_out);
	expect_json(&r->exit, "exit.json", "canceled", canceled);
	expect_json(&r->exit, "exit.json", "exec_failed", exec_failed);
}

/* The records of one stream must be exactly want[] (NULL-terminated), in order. */
static void expect_stream(struct result *r, char tag, const char *const *want)
{
	size_t w = 0;

	for (size_t i = 0; i < r->nrecs; i++) {
		const struct rec *rec = &r->recs[i];
		if (rec->tag != tag) {
			continue;
		}
		if (!want[w]) {
			fail("stream %c: unexpected extra record \"%.*s\"", tag, (int)rec->len,
			     rec->data);
			return;
		}
		if (rec->len != strlen(want[w]) || memcmp(rec->data, want[w], rec->len) != 0) {
			fail("stream %c record %zu: expected \"%s\", got \"%.*s\"", tag, w, want[w],
			     (int)rec->len, rec->data);
			return;
		}
		w++;
	}
	EXPECT(!want[w], "stream %c: missing record \"%s\"", tag, want[w]);
}

/* Returns the failure count so far, for end() to tell whether this case failed. */
static int begin(const char *name)
{
	current_case = name;
	printf("# %s\n", name);
	fflush(stdout);
	return failures;
}

static void end(struct result *r, int failures_before)
{
	result_free(r, failures != failures_before);
	printf("%s %s\n", failures != failures_before ? "not ok" : "ok", current_case);
	fflush(stdout);
}

#define SH(script) ((const char *const[]){"/bin/sh", "-c", script, NULL})

static const struct run_opts quick = {.max_seconds = 10};

static void test_streams(void)
{
	struct result r = {0};
	int f;

	f = begin("stdout and stderr, in order per stream");
	if (run_sup(&r, &quick,
	            SH("echo out1; echo err1 >&2; echo out2; echo err2 >&2; echo out3; exit 0"))) {
		check_common(&r);
		expect_status(&r, "0", "null", "false", "false", "false");
		expect_stream(&r, 'o', (const char *const[]){"out1", "out2", "out3", NULL});
		expect_stream(&r, 'e', (const char *const[]){"err1", "err2", NULL});
	}
	end(&r, f);
}

static void test_world(void)
{
	struct result r = {0};
	char want_pwd[PATH_MAX], want_ids[64];
	int f;

	f = begin("cwd, environment, stdin, process group");
	struct run_opts o = quick;
	o.tweak_signals = true;
	if (run_sup(&r, &o,
	            SH("cat; echo \"stdin done\"; pwd -P; echo \"$RUNYARD_TEST_VAR\"; "
	               "cut -d' ' -f1,5 /proc/$$/stat"))) {
		check_common(&r);
		expect_status(&r, "0", "null", "false", "false", "false");
		if (!realpath(r.dir, want_pwd)) {
			snprintf(want_pwd, sizeof(want_pwd), "%s", r.dir);
		}
		const char *pg = r.have_sup ? json_get(&r.sup, "pgid") : NULL;
		snprintf(want_ids, sizeof(want_ids), "%s %s", pg ? pg : "?", pg ? pg : "?");
		expect_stream(&r, 'o',
		              (const char *const[]){"stdin done", want_pwd, "from-the-environment",
		                                    want_ids, NULL});
		expect_stream(&r, 'e', (const char *const[]){NULL});
	}
	end(&r, f);

	/* Not through sh: dash clears its own signal mask and would hide a leak. */
	f = begin("signal mask and dispositions reset for the program");
	if (run_sup(
	        &r, &o,
	        (const char *const[]){"grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status", NULL})) {
		check_common(&r);
		expect_status(&r, "0", "null", "false", "false", "false");
		expect_stream(&r, 'o',
		              (const char *const[]){"SigBlk:\t0000000000000000",
		                                    "SigIgn:\t0000000000000000", NULL});
	}
	end(&r, f);

	/* A program must see SIGPIPE's default: with SIG_IGN `yes` would complain on stderr. */
	f = begin("SIGPIPE default in the program");
	if (run_sup(&r, &o, SH("yes | head -n 2"))) {
		check_common(&r);
		expect_status(&r, "0", "null", "false", "false", "false");
		expect_stream(&r, 'o', (const char *const[]){"y", "y", NULL});
		expect_stream(&r, 'e', (const char *const[]){NULL});
	}
	end(&r, f);
}

static void test_no_newline(void)
{
	struct result r = {0};
	int f;

	f = begin("last line without newline");
	if (run_sup(&r, &quick, SH("printf 'first\\nlast line'; printf 'err tail' >&2"))) {
		check_common(&r);
		expect_stream(&r, 'o', (const char *const[]){"first", "last line", NULL});
		expect_stream(&r, 'e', (const char *const[]){"err tail", NULL});
	}
	end(&r, f);
}

static void expect_run_of(const struct rec *rec, char c, size_t len)
{
	if (rec->len != len) {
		fail("expected a record of %zu '%c', got length %zu", len, c, rec->len);
		return;
	}
	for (size_t i = 0; i < len; i++) {
		if (rec->data[i] != c) {
			fail("expected only '%c' in the record, byte %zu is 0x%02x", c, i,
			     (unsigned char)rec->data[i]);
			return;
		}
	}
}

static void test_long_line(void)
{
	struct result r = {0};
	int f;

	f = begin("long lines split at 65536 bytes");
	if (run_sup(&r, &quick,
	            SH("head -c 200000 /dev/zero | tr '\\0' a; echo; "
	               "head -c 131072 /dev/zero | tr '\\0' b; echo; "
	               "echo end; head -c 70000 /dev/zero | tr '\\0' c"))) {
		check_common(&r);
		/* 200000 = 3 * 65536 + 3392; 131072 is exactly two, with no empty third. */
		size_t want[] = {65536, 65536, 65536, 3392, 65536, 65536, 3, 65536, 4464};
		char chars[] = {'a', 'a', 'a', 'a', 'b', 'b', 0, 'c', 'c'};
		if (r.nrecs != 9) {
			fail("expected 9 records, got %zu", r.nrecs);
		} else {
			for (size_t i = 0; i < 9; i++) {
				EXPECT(r.recs[i].tag == 'o', "record %zu should be stdout", i);
				if (chars[i]) {
					expect_run_of(&r.recs[i], chars[i], want[i]);
				}
			}
			EXPECT(r.recs[6].len == 3 && memcmp(r.recs[6].data, "end", 3) == 0,
			       "record 6 should be \"end\"");
		}
	}
	end(&r, f);
}

static void test_binary(void)
{
	struct result r = {0};
	int f;

	f = begin("binary bytes and empty lines preserved");
	if (run_sup(&r, &quick, SH("printf 'a\\000b\\001\\377\\r\\n\\n\\nz\\000'"))) {
		check_common(&r);
		static const char first[] = {'a', 0, 'b', 1, (char)0xff, '\r'};
		if (r.nrecs != 4) {
			fail("expected 4 records, got %zu", r.nrecs);
		} else {
			EXPECT(r.recs[0].len == sizeof(first) &&
			           memcmp(r.recs[0].data, first, sizeof(first)) == 0,
			       "record 0 should be a NUL b \\001 \\377 \\r (len 6), len is %zu",
			       r.recs[0].len);
			EXPECT(r.recs[1].len == 0 && r.recs[2].len == 0,
			       "records 1 and 2 should be empty lines");
			EXPECT(r.recs[3].len == 2 && memcmp(r.recs[3].data, "z\0", 2) == 0,
			       "record 3 should be z NUL");
		}
	}
	end(&r, f);
}

static void test_exit_code(void)
{
	struct result r = {0};
	int f;

	f = begin("exit code 3");
	if (run_sup(&r, &quick, SH("echo bye; exit 3"))) {
		check_common(&r);
		expect_status(&r, "3", "null", "false", "false", "false");
		expect_stream(&r, 'o', (const char *const[]){"bye", NULL});
	}
	end(&r, f);

	f = begin("exit code 127 from the program itself is not exec_failed");
	if (run_sup(&r, &quick, SH("exit 127"))) {
		check_common(&r);
		expect_status(&r, "127", "null", "false", "false", "false");
	}
	end(&r, f);
}

static void test_signal(void)
{
	struct result r = {0};
	int f;

	f = begin("killed by signal 9");
	if (run_sup(&r, &quick, SH("echo before; kill -9 $$; echo after"))) {
		check_common(&r);
		expect_status(&r, "null", "9", "false", "false", "false");
		expect_stream(&r, 'o', (const char *const[]){"before", NULL});
	}
	end(&r, f);
}

static void test_timeout(void)
{
	struct result r = {0};
	int f;

	f = begin("timeout");
	struct run_opts o = {.timeout = "0.5", .grace = "1", .max_seconds = 10};
	if (run_sup(&r, &o, SH("echo started; sleep 30"))) {
		check_common(&r);
		expect_status(&r, "null", "15", "true", "false", "false");
		EXPECT(r.elapsed >= 0.45 && r.elapsed < 3, "should stop after ~0.5 s, took %.2f s",
		       r.elapsed);
	}
	end(&r, f);
}

static void test_cancel(int sig, const char *name)
{
	struct result r = {0};
	int f;

	f = begin(name);
	struct run_opts o = {
	    .grace = "2", .cancel_signal = sig, .cancel_when = "started", .max_seconds = 10};
	if (run_sup(&r, &o, SH("echo started; sleep 30"))) {
		check_common(&r);
		expect_status(&r, "null", "15", "false", "true", "false");
		EXPECT(r.elapsed < 3, "should stop right after the cancel, took %.2f s", r.elapsed);
	}
	end(&r, f);
}

static void test_cancel_early(void)
{
	struct result r = {0};
	int f;

	f = begin("cancel that arrives before the program exists still cancels it");
	struct run_opts o = {.grace = "2", .cancel_at_once = true, .max_seconds = 10};
	if (run_sup(&r, &o, SH("sleep 30"))) {
		check_common(&r);
		expect_status(&r, "null", "15", "false", "true", "false");
		EXPECT(r.elapsed < 3, "should stop at once, took %.2f s", r.elapsed);
	}
	end(&r, f);
}

static void test_term_ignored(void)
{
	struct result r = {0};
	int f;

	f = begin("TERM trapped, SIGKILL after grace");
	struct run_opts o = {.timeout = "0.3", .grace = "0.7", .max_seconds = 10};
	if (run_sup(&r, &o,
	            SH("trap 'echo got-term' TERM; echo ready; while :; do sleep 0.05; done"))) {
		check_common(&r);
		expect_status(&r, "null", "9", "true", "false", "false");
		expect_stream(&r, 'o', (const char *const[]){"ready", "got-term", NULL});
		EXPECT(r.elapsed >= 0.95 && r.elapsed < 4,
		       "should be killed ~1.0 s after start (timeout + grace), took %.2f s",
		       r.elapsed);
	}
	end(&r, f);

	f = begin("TERM ignored, cancel, SIGKILL after grace");
	struct run_opts c = {
	    .grace = "0.5", .cancel_signal = SIGINT, .cancel_when = "ready", .max_seconds = 10};
	if (run_sup(&r, &c, SH("trap '' TERM; echo ready; sleep 30"))) {
		check_common(&r);
		expect_status(&r, "null", "9", "false", "true", "false");
		EXPECT(r.elapsed >= 0.5 && r.elapsed < 4, "took %.2f s", r.elapsed);
	}
	end(&r, f);
}

static void test_exec_failed(void)
{
	struct result r = {0};
	int f;
	const char *progs[] = {"/nonexistent/runyard-test-prog", "runyard-test-no-such-program"};

	for (size_t i = 0; i < 2; i++) {
		char want[256];
		f = begin(i == 0 ? "exec failure (path)" : "exec failure (PATH search)");
		if (run_sup(&r, &quick, (const char *const[]){progs[i], "arg", NULL})) {
			check_common(&r);
			expect_status(&r, "127", "null", "false", "false", "true");
			snprintf(
			    want, sizeof(want),
			    "runyard-supervisor: cannot execute '%s': No such file or directory",
			    progs[i]);
			expect_stream(&r, 'e', (const char *const[]){want, NULL});
			expect_stream(&r, 'o', (const char *const[]){NULL});
		}
		end(&r, f);
	}
}

/* True once the process is gone or a zombie waiting for whoever reaps orphans. */
static bool process_gone(pid_t pid)
{
	char path[64], buf[512];

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		return true;
	}
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0) {
		return true;
	}
	buf[n] = '\0';
	const char *paren = strrchr(buf, ')');
	return paren && (paren[2] == 'Z' || paren[2] == 'X');
}

static pid_t read_pid_file(const char *dir, const char *name)
{
	char *text = read_file(dir, name, NULL);
	pid_t pid = text ? (pid_t)atoi(text) : 0;

	free(text);
	return pid;
}

static void test_background(void)
{
	struct result r = {0};
	int f;

	f = begin("background grandchild in the group does not hang the run");
	if (run_sup(&r, &quick, SH("sleep 100 & echo $! > bg.pid; echo bg-started"))) {
		check_common(&r);
		expect_status(&r, "0", "null", "false", "false", "false");
		expect_stream(&r, 'o', (const char *const[]){"bg-started", NULL});
		EXPECT(r.elapsed < 3, "should finish at once, took %.2f s", r.elapsed);
		pid_t bg = read_pid_file(r.dir, "bg.pid");
		bool gone = false;
		for (int i = 0; i < 100 && bg > 0 && !(gone = process_gone(bg)); i++) {
			sleep_ms(10);
		}
		EXPECT(bg > 0 && gone, "the background sleep (pid %d) should have been killed",
		       (int)bg);
		if (bg > 0 && !gone) {
			kill(bg, SIGKILL);
		}
	}
	end(&r, f);

	if (access("/usr/bin/setsid", X_OK) != 0 && access("/bin/setsid", X_OK) != 0) {
		printf("ok escaped grandchild # SKIP no setsid(1)\n");
		return;
	}
	/* It left the group, so only the 5 s drain limit ends the run. */
	f = begin("grandchild that escaped the group: drain gives up after 5 s");
	struct run_opts o = {.max_seconds = 15};
	if (run_sup(&r, &o,
	            SH("setsid sh -c 'echo $$ > escaped.pid; sleep 1; echo late; exec sleep 30' & "
	               "sleep 0.2; echo main-done"))) {
		check_common(&r);
		expect_status(&r, "0", "null", "false", "false", "false");
		expect_stream(&r, 'o', (const char *const[]){"main-done", "late", NULL});
		EXPECT(r.elapsed >= 4.5 && r.elapsed < 9,
		       "should give up ~5 s after exit, took %.2f s", r.elapsed);
		pid_t esc = read_pid_file(r.dir, "escaped.pid");
		if (esc > 0) {
			kill(esc, SIGKILL);
		}
	}
	end(&r, f);
}

static void test_many_lines(void)
{
	struct result r = {0};
	int f;
	char want[32];

	f = begin("100,000 lines, all present, in order");
	if (run_sup(&r, &quick,
	            SH("awk 'BEGIN { for (i = 1; i <= 100000; i++) { print i; "
	               "if (i % 10 == 0) print \"e\" i > \"/dev/stderr\" } }'"))) {
		check_common(&r);
		expect_status(&r, "0", "null", "false", "false", "false");
		size_t no = 0, ne = 0;
		for (size_t i = 0; i < r.nrecs; i++) {
			const struct rec *rec = &r.recs[i];
			int n = rec->tag == 'o' ? snprintf(want, sizeof(want), "%zu", ++no)
			                        : snprintf(want, sizeof(want), "e%zu", ++ne * 10);
			if (rec->len != (size_t)n || memcmp(rec->data, want, rec->len) != 0) {
				fail("record %zu: expected \"%s\", got \"%.*s\"", i, want,
				     (int)rec->len, rec->data);
				break;
			}
		}
		EXPECT(no == 100000 && ne == 10000,
		       "expected 100000 stdout and 10000 stderr records, got %zu and %zu", no, ne);
	}
	end(&r, f);
}

/* Runs to completion with stderr captured in err_path; returns the exit code. */
static int run_plain(const char *const *args, const char *dir, const char *err_path)
{
	int status;
	int saved = dup(STDERR_FILENO);
	int fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (saved < 0 || fd < 0) {
		return -1;
	}
	dup2(fd, STDERR_FILENO);
	close(fd);
	pid_t pid = spawn_supervisor(dir, args, NULL);
	dup2(saved, STDERR_FILENO);
	close(saved);
	if (pid < 0 || waitpid(pid, &status, 0) != pid) {
		return -1;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* A mounted input: the program reads SRC at DST and cannot write there
 * (EROFS); SRC itself is unchanged. Needs namespaces: skipped without. */
static void test_ro_bind(void)
{
	struct result r = {0};
	char src[] = "/tmp/test-supervisor-src-XXXXXX", dst[] = "/tmp/test-supervisor-dst-XXXXXX";
	char file[PATH_MAX], script[3 * PATH_MAX];
	int f = begin("--ro-bind gives a read-only view");

	if (!mkdtemp(src) || !mkdtemp(dst)) {
		fail("mkdtemp: %s", strerror(errno));
		end(&r, f);
		return;
	}
	snprintf(file, sizeof(file), "%s/a", src);
	FILE *fp = fopen(file, "w");
	if (fp) {
		fputs("hello\n", fp);
		fclose(fp);
	}
	snprintf(script, sizeof(script),
	         "cat %s/a; if echo x > %s/b; then echo WROTE; else echo DENIED; fi; "
	         "rm -f %s/a && echo REMOVED || true",
	         dst, dst, dst);
	struct run_opts o = quick;
	o.bind_src = src;
	o.bind_dst = dst;
	if (run_sup(&r, &o, SH(script))) {
		bool no_ns = log_contains(r.dir, "cannot mount the run's inputs");
		if (no_ns) {
			printf("# skipped: no mount namespaces here\n");
		} else {
			expect_stream(&r, 'o', (const char *const[]){"hello", "DENIED", NULL});
			EXPECT(!log_contains(r.dir, "WROTE") && !log_contains(r.dir, "REMOVED"),
			       "the program wrote into the read-only view");
			EXPECT(log_contains(r.dir, "Read-only file system"), "no EROFS in the output");
		}
	}
	snprintf(file, sizeof(file), "%s/b", src);
	EXPECT(access(file, F_OK) != 0, "the source directory was written to");
	snprintf(file, sizeof(file), "%s/a", src);
	EXPECT(access(file, F_OK) == 0, "the source file is gone");
	unlink(file);
	rmdir(src);
	rmdir(dst);
	end(&r, f);
}

static void test_usage(void)
{
	struct result r = {0};
	int f;

	f = begin("bad usage exits 2 and touches nothing");
	if (!make_dir(&r)) {
		return;
	}
	const char *s = supervisor_path, *d = r.dir;
	const char *const *cases[] = {
	    (const char *const[]){s, NULL},
	    (const char *const[]){s, "--dir", d, NULL},
	    (const char *const[]){s, "--dir", d, "true", NULL},
	    (const char *const[]){s, "--dir", d, "--", NULL},
	    (const char *const[]){s, "--", "true", NULL},
	    (const char *const[]){s, "--dir", d, "--timeout", "abc", "--", "true", NULL},
	    (const char *const[]){s, "--dir", d, "--timeout", "-1", "--", "true", NULL},
	    (const char *const[]){s, "--dir", d, "--grace", "1x", "--", "true", NULL},
	    (const char *const[]){s, "--dir", d, "--grace", "", "--", "true", NULL},
	    (const char *const[]){s, "--dir", d, "--bogus", "1", "--", "true", NULL},
	    (const char *const[]){s, "--dir", d, "--timeout", NULL},
	    (const char *const[]){s, "--dir", d, "--ro-bind", "rel", "/x", "--", "true", NULL},
	    (const char *const[]){s, "--dir", d, "--ro-bind", "/x", NULL},
	    (const char *const[]){s, "--dir", d, "--mem-limit", "64M", "--", "true", NULL},
	    (const char *const[]){s, "--dir", d, "--mem-limit", "0", "--", "true", NULL},
	    (const char *const[]){s, "--dir", d, "--cpus-list", "a", "--", "true", NULL},
	    (const char *const[]){s, "--dir", d, "--cpus-list", "3-1", "--", "true", NULL},
	    (const char *const[]){s, "--dir", d, "--cpus-list", "0,", "--", "true", NULL},
	    (const char *const[]){s, "--dir", d, "--cgroup", "rel", "--", "true", NULL},
	};
	char err_path[PATH_MAX + 64];
	snprintf(err_path, sizeof(err_path), "%s/usage.err", d);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = run_plain(cases[i], d, err_path);
		EXPECT(rc == 2, "usage case %zu should exit 2, exited %d", i, rc);
		char *msg = read_file(d, "usage.err", NULL);
		EXPECT(msg && strstr(msg, "usage: runyard-supervisor --dir RUNDIR"),
		       "usage case %zu should print the usage on stderr, printed: %s", i,
		       msg ? msg : "(nothing)");
		free(msg);
	}
	EXPECT(!file_exists(d, "output.log") && !file_exists(d, "exit.json"),
	       "bad usage should not create files");
	end(&r, f);

	f = begin("cannot open output.log: supervisor.err, exit 1, no exit.json");
	if (!make_dir(&r)) {
		return;
	}
	char path[PATH_MAX + 64];
	snprintf(path, sizeof(path), "%s/output.log", r.dir);
	mkdir(path, 0700);
	snprintf(err_path, sizeof(err_path), "%s/stderr", r.dir);
	int rc = run_plain((const char *const[]){s, "--dir", r.dir, "--", "true", NULL}, r.dir,
	                   err_path);
	EXPECT(rc == 1, "should exit 1, exited %d", rc);
	char *err = read_file(r.dir, "supervisor.err", NULL);
	EXPECT(err && strstr(err, "output.log"), "supervisor.err should mention output.log: %s",
	       err ? err : "(missing)");
	free(err);
	EXPECT(!file_exists(r.dir, "exit.json"), "there should be no exit.json");
	end(&r, f);

	f = begin("fractional and zero options accepted");
	struct run_opts o = {.timeout = "0", .grace = ".5", .max_seconds = 10};
	if (run_sup(&r, &o, SH("echo ok"))) {
		check_common(&r);
		expect_status(&r, "0", "null", "false", "false", "false");
	}
	end(&r, f);
}

/* A failed write must not leave half a record, which would make the rest unparseable. */
static void test_write_failure(void)
{
	struct result r = {0};
	int f;

	f = begin("output.log write failure drops whole records and carries on");
	struct run_opts o = {.max_seconds = 10, .fsize_limit = 4096};
	if (run_sup(&r, &o,
	            SH("echo small; sleep 0.3; head -c 20000 /dev/zero | tr '\\0' x; echo; "
	               "sleep 0.3; echo after"))) {
		EXPECT(WIFEXITED(r.sup_status) && WEXITSTATUS(r.sup_status) == 0,
		       "supervisor should exit 0, status was 0x%x", r.sup_status);
		char *err = read_file(r.dir, "supervisor.err", NULL);
		EXPECT(err && strstr(err, "cannot write output.log"),
		       "supervisor.err should say the write failed: %s", err ? err : "(missing)");
		free(err);
		expect_status(&r, "0", "null", "false", "false", "false");
		expect_stream(&r, 'o', (const char *const[]){"small", "after", NULL});
	}
	end(&r, f);
}

/* The program of the memory cases: this test binary run as "--hog MB SECONDS". */
static char hog_path[PATH_MAX];

/* --hog MB SECONDS: touch MB MiB, say so, hold them for SECONDS. */
static int hog(const char *mb, const char *seconds)
{
	size_t len = (size_t)atol(mb) << 20;
	char *p = malloc(len);

	if (!p) {
		return 3;
	}
	memset(p, 1, len);
	printf("allocated %s MiB\n", mb);
	fflush(stdout);
	sleep_ms(atoi(seconds) * 1000);
	int ok = p[len - 1] == 1;
	/* Freed so a leak checker (the sanitizer build) has nothing to say. */
	free(p);
	return ok ? 0 : 4;
}

static void test_mem_limit(void)
{
	struct result r = {0};
	char script[3 * PATH_MAX];
	int f;

	/* Two processes of 40 MiB, each under 60 MiB, the group over it. */
	f = begin("--mem-limit kills the whole group over its limit");
	snprintf(script, sizeof(script), "%s --hog 40 30 & %s --hog 40 30 & wait; echo survived",
	         hog_path, hog_path);
	struct run_opts o = {.max_seconds = 15, .mem_limit = "62914560"};
	if (run_sup(&r, &o, SH(script))) {
		check_common(&r);
		expect_status(&r, "null", "9", "false", "false", "false");
		expect_json(&r.exit, "exit.json", "oom", "true");
		double peak = json_num(&r.exit, "exit.json", "peak_rss_kb");
		EXPECT(peak > 60 * 1024, "peak_rss_kb should be over the 60 MiB limit, is %.0f",
		       peak);
		EXPECT(!log_contains(r.dir, "survived"), "the program went on after the kill");
		EXPECT(r.elapsed < 8, "the kill took %.1f s", r.elapsed);
	}
	end(&r, f);

	f = begin("--mem-limit: a program under it completes, with its peak");
	snprintf(script, sizeof(script), "%s --hog 20 1", hog_path);
	o = (struct run_opts){.max_seconds = 15, .mem_limit = "209715200"};
	if (run_sup(&r, &o, SH(script))) {
		check_common(&r);
		expect_status(&r, "0", "null", "false", "false", "false");
		expect_json(&r.exit, "exit.json", "oom", "false");
		double peak = json_num(&r.exit, "exit.json", "peak_rss_kb");
		EXPECT(peak >= 20 * 1024 && peak < 200 * 1024,
		       "peak_rss_kb should be about 20 MiB, is %.0f", peak);
	}
	end(&r, f);
}

static void test_cpus_list(void)
{
	struct result r = {0};
	int f = begin("--cpus-list pins the program");
	struct run_opts o = quick;

	o.cpus_list = "0";
	if (run_sup(&r, &o, SH("grep Cpus_allowed_list /proc/self/status"))) {
		check_common(&r);
		expect_status(&r, "0", "null", "false", "false", "false");
		expect_stream(&r, 'o', (const char *const[]){"Cpus_allowed_list:\t0", NULL});
	}
	end(&r, f);
}

static void test_cgroup(void)
{
	struct result r = {0};
	char cg[] = "/tmp/test-supervisor-cg-XXXXXX", path[PATH_MAX];
	int f = begin("--cgroup: the program writes its own pid to DIR/cgroup.procs");
	struct run_opts o = quick;

	if (!mkdtemp(cg)) {
		fail("mkdtemp: %s", strerror(errno));
		end(&r, f);
		return;
	}
	/* A plain file stands for the cgroupfs one. */
	snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
	close(open(path, O_WRONLY | O_CREAT, 0600));
	o.cgroup = cg;
	if (run_sup(&r, &o, SH("echo $$"))) {
		check_common(&r);
		expect_status(&r, "0", "null", "false", "false", "false");
		pid_t written = read_pid_file(cg, "cgroup.procs");
		EXPECT(written > 0 && r.have_sup &&
		           written == (pid_t)json_num(&r.sup, "supervisor.json", "pgid"),
		       "cgroup.procs should hold the program's pid, holds %d", (int)written);
	}
	unlink(path);
	rmdir(cg);
	end(&r, f);

	f = begin("--cgroup that cannot be joined: the program does not start");
	o.cgroup = "/nonexistent/runyard-cgroup";
	if (run_sup(&r, &o, SH("echo started"))) {
		check_common(&r);
		expect_status(&r, "127", "null", "false", "false", "true");
		expect_stream(&r, 'e',
		              (const char *const[]){"runyard-supervisor: cannot join the run's cgroup "
		                                    "/nonexistent/runyard-cgroup: No such file or "
		                                    "directory",
		                                    NULL});
		expect_stream(&r, 'o', (const char *const[]){NULL});
	}
	end(&r, f);
}

int main(int argc, char **argv)
{
	double start = now_s();

	if (argc == 4 && strcmp(argv[1], "--hog") == 0) {
		return hog(argv[2], argv[3]);
	}
	if (!realpath("/proc/self/exe", hog_path)) {
		fprintf(stderr, "%s: cannot find myself: %s\n", argv[0], strerror(errno));
		return 2;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: %s /path/to/runyard-supervisor\n", argv[0]);
		return 2;
	}
	/* Absolute, because the supervisor is started from inside each run directory. */
	static char resolved[PATH_MAX];
	if (!realpath(argv[1], resolved) || access(resolved, X_OK) != 0) {
		fprintf(stderr, "%s: not executable: %s\n", argv[1], strerror(errno));
		return 2;
	}
	supervisor_path = resolved;
	signal(SIGPIPE, SIG_IGN);

	test_streams();
	test_world();
	test_no_newline();
	test_long_line();
	test_binary();
	test_exit_code();
	test_signal();
	test_timeout();
	test_cancel(SIGTERM, "cancel with SIGTERM");
	test_cancel(SIGHUP, "cancel with SIGHUP");
	test_cancel_early();
	test_term_ignored();
	test_exec_failed();
	test_background();
	test_many_lines();
	test_write_failure();
	test_ro_bind();
	test_mem_limit();
	test_cpus_list();
	test_cgroup();
	test_usage();

	printf("# %d failure(s), %.1f s\n", failures, now_s() - start);
	return failures ? 1 : 0;
}

/*
 * runyard-supervisor: holds one run's process for the daemon (think conmon).
 *
 *   runyard-supervisor --dir RUNDIR [--timeout SECONDS] [--grace SECONDS]
 *                      [--ro-bind SRC DST]... [--mem-limit BYTES]
 *                      [--cgroup DIR]... [--cpus-list LIST] -- PROGRAM [ARGS...]
 *
 * It starts PROGRAM in its own process group, turns its stdout and stderr
 * into timestamped records in RUNDIR/output.log, enforces the timeout and
 * cancel (SIGTERM, SIGINT or SIGHUP to us), reaps the program and writes
 * RUNDIR/exit.json last.  Everything the daemon needs is in files, so the
 * daemon may die and come back while we keep going; for the same reason this
 * links nothing but libc and shares no code with the daemon.
 *
 * output.log is a sequence of records "<s> <ts_us> <len> <bytes>\n": s is
 * 'o' or 'e', ts_us the CLOCK_REALTIME microseconds at which the read that
 * completed the line returned, len the byte length of the line without its
 * newline, then exactly len raw bytes.  Lines longer than LINE_MAX_BYTES are
 * split into several records.
 *
 * --ro-bind SRC DST (mounted inputs, docs/inputs.md): PROGRAM runs in a
 * mount namespace of its own (and a user namespace mapping only our own
 * uid and gid when we are not root) where directory SRC is seen, read-only,
 * at DST. When that cannot be made, PROGRAM is not started: a writable view
 * is never given instead.
 *
 * Resource limits (docs/scheduling.md, "Enforcement"); the daemon picks which
 * of these a run gets:
 *
 * --cgroup DIR: the program, before exec, writes its pid to DIR/cgroup.procs
 * (cgroup v2 and v1 both take that file), once per DIR, so the kernel
 * enforces the limits the daemon wrote there. We stay outside: our own
 * memory is not charged and an OOM kill in the group cannot take us too.
 * When a write fails, PROGRAM is not started and its stderr says why.
 *
 * --cpus-list LIST ("0,1" or "0-3,6"): sched_setaffinity of the program to
 * those CPUs, for when there is no cpu controller to give a quota.
 *
 * --mem-limit BYTES: the tier for machines without a usable memory cgroup.
 * Right after the start and then every second, the RSS of every process in
 * the program's group is summed (each /proc/<pid>/stat whose pgrp is the
 * group; cheap at 1 Hz) and the peak kept. Over the limit, the whole group
 * gets SIGKILL. It is a poll: a spike shorter than a second, or a process
 * that left the group, escapes it, and shared pages count once per process.
 * With this option exit.json also has "oom" (whether we killed for memory)
 * and "peak_rss_kb" (the largest sum seen, or the kernel's maxrss of the
 * program when that is larger).
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROG_NAME "runyard-supervisor"

#define LINE_MAX_BYTES 65536
#define READ_CHUNK 65536
#define OUT_FLUSH_AT (256 * 1024)
/* "o " + 20 digits + " " + 20 digits + " " + "\n", rounded up. */
#define RECORD_OVERHEAD 64
#define OUT_CAP (OUT_FLUSH_AT + LINE_MAX_BYTES + RECORD_OVERHEAD)
#define WRITEBACK_EVERY (4 * 1024 * 1024)

#define NS_PER_SEC INT64_C(1000000000)
#define DRAIN_AFTER_EXIT_NS (5 * NS_PER_SEC)
#define DEFAULT_GRACE 10.0
/* Keeps every deadline well inside int64 nanoseconds; ~31 years is "never". */
#define MAX_SECONDS 1e9

#define STREAM_OUT 0
#define STREAM_ERR 1

/* Signal handling is the only global state: the handler can reach nothing else. */
static volatile sig_atomic_t sig_wake_fd = -1;
static volatile sig_atomic_t got_child;
static volatile sig_atomic_t got_cancel;

#define MAX_BINDS 64
#define MAX_CGROUPS 8
#define MEM_POLL_NS NS_PER_SEC

struct options {
	const char *dir;
	double timeout; /* seconds, 0 = none */
	double grace;
	char **argv; /* PROGRAM and its arguments, NULL-terminated */
	const char *bind_src[MAX_BINDS], *bind_dst[MAX_BINDS];
	int nbinds;
	uint64_t mem_limit; /* bytes, 0 = none */
	const char *cgroups[MAX_CGROUPS];
	int ncgroups;
	bool pin; /* --cpus-list was given */
	cpu_set_t cpus;
};

struct outbuf {
	int fd;
	int dirfd; /* where supervisor.err goes */
	bool write_failed;
	uint64_t dropped, dropped_bytes; /* records (and their bytes) a full disk took */
	size_t nrec;                     /* records in buf */
	off_t size;      /* of output.log, which only we write */
	size_t unsynced; /* bytes written since writeback was last started */
	size_t len;
	char buf[OUT_CAP];
};

struct stream {
	int fd;
	char tag;
	size_t len;
	char line[LINE_MAX_BYTES];
};

struct supervisor {
	struct options opts;
	int dirfd;
	int sig_fd;      /* read end of the self-pipe */
	int exec_err_fd; /* read end of the pipe that carries errno when exec fails */
	pid_t pid;       /* the program; also its process group id */

	int64_t started_real_us;
	int64_t ended_real_us;
	int64_t timeout_at; /* CLOCK_MONOTONIC ns; 0 = not armed */
	int64_t kill_at;
	int64_t drain_until;
	int64_t mem_check_at; /* CLOCK_MONOTONIC ns; 0 = no --mem-limit */
	uint64_t peak_rss_kb;
	long page_kb;

	bool terminating;
	bool timed_out;
	bool canceled;
	bool reaped;
	bool exec_failed;
	bool oom; /* killed by us for going over --mem-limit */
	int status;
	struct rusage ru;

	/* Timestamp of the read being processed, formatted once per read. */
	char ts[24];
	size_t ts_len;

	struct outbuf out;
	struct stream streams[2];
	char chunk[READ_CHUNK];
};

static void signal_cb(int signo)
{
	int saved_errno = errno;

	if (signo == SIGCHLD) {
		got_child = 1;
	} else {
		got_cancel = 1;
	}
	/* A full self-pipe already guarantees a wake-up; the flags say why. */
	if (sig_wake_fd >= 0) {
		ssize_t r = write(sig_wake_fd, "", 1);
		(void)r;
	}
	errno = saved_errno;
}

static int64_t clock_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

static int64_t realtime_us(void)
{
	return clock_ns(CLOCK_REALTIME) / 1000;
}

static int64_t seconds_to_ns(double s)
{
	return (int64_t)(s * 1e9);
}

/* Writes v in decimal at p, without a terminator; returns the digit count. */
static size_t fmt_u64(char *p, uint64_t v)
{
	char tmp[20];
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	for (size_t i = 0; i < n; i++) {
		p[i] = tmp[n - 1 - i];
	}
	return n;
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Appends a message to RUNDIR/supervisor.err, which is where the daemon looks
 * when a run ends oddly: our own stderr is /dev/null.  Without a RUNDIR the
 * message goes to stderr, which matters only when run by hand.
 */
__attribute__((format(printf, 2, 3))) static void log_error(int dirfd, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int n = snprintf(msg, sizeof(msg), "%s: ", PROG_NAME);

	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	strcat(msg, "\n");

	int fd = dirfd >= 0 ? openat(dirfd, "supervisor.err",
	                             O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)
	                    : -1;
	write_all(fd >= 0 ? fd : STDERR_FILENO, msg, strlen(msg));
	if (fd >= 0) {
		close(fd);
	}
}

/* tmp, rename: readers see all of it or nothing. When durable, the file
 * and then the directory are fsync'd too, so it survives a power cut. */
static int write_atomic(int dirfd, const char *name, const char *data, size_t len, bool durable)
{
	char tmp[64];
	int fd = -1;
	int r;

	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	/* Not O_TRUNC: a temporary reserved at start (reserve_exit_json) is
	 * written into the blocks it holds, then cut to size. */
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	r = write_all(fd, data, len);
	if (r < 0) {
		goto out;
	}
	if (ftruncate(fd, (off_t)len) < 0) {
		r = -errno;
		goto out;
	}
	if (durable && fsync(fd) < 0) {
		r = -errno;
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		r = -errno;
		goto out;
	}
	fd = -1;
	if (renameat(dirfd, tmp, dirfd, name) < 0) {
		r = -errno;
		goto out;
	}
	if (durable && fsync(dirfd) < 0) {
		r = -errno;
	}
out:
	if (fd >= 0) {
		close(fd);
	}
	if (r < 0) {
		unlinkat(dirfd, tmp, 0);
	}
	return r;
}

/* Accepts only plain decimals ("10", "0.5", ".5"), not strtod's hex, inf or exponents. */
static int parse_seconds(const char *s, double *ret_value)
{
	size_t digits = 0;
	bool dot = false;
	char *end;

	for (const char *p = s; *p; p++) {
		if (*p >= '0' && *p <= '9') {
			digits++;
		} else if (*p == '.' && !dot) {
			dot = true;
		} else {
			return -EINVAL;
		}
	}
	if (digits == 0) {
		return -EINVAL;
	}
	errno = 0;
	double v = strtod(s, &end);
	if (*end != '\0' || v < 0) {
		return -EINVAL;
	}
	if (errno == ERANGE || v > MAX_SECONDS) {
		v = MAX_SECONDS;
	}
	*ret_value = v;
	return 0;
}

/* A positive decimal number of bytes, nothing else. */
static int parse_bytes(const char *s, uint64_t *ret_value)
{
	uint64_t v = 0;

	if (*s == '\0') {
		return -EINVAL;
	}
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9' || v > (UINT64_MAX - 9) / 10) {
			return -EINVAL;
		}
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (v == 0) {
		return -EINVAL;
	}
	*ret_value = v;
	return 0;
}

/* "0,1", "0-3,6": the kernel's list format, as in Cpus_allowed_list. */
static int parse_cpus(const char *s, cpu_set_t *ret_set)
{
	cpu_set_t set;
	const char *p = s;

	CPU_ZERO(&set);
	while (*p) {
		char *end;
		if (*p < '0' || *p > '9') {
			return -EINVAL;
		}
		unsigned long lo = strtoul(p, &end, 10), hi = lo;
		if (*end == '-') {
			if (end[1] < '0' || end[1] > '9') {
				return -EINVAL;
			}
			hi = strtoul(end + 1, &end, 10);
		}
		if (lo > hi || hi >= CPU_SETSIZE) {
			return -EINVAL;
		}
		for (unsigned long c = lo; c <= hi; c++) {
			CPU_SET((int)c, &set);
		}
		if (*end == ',' && end[1] != '\0') {
			end++;
		} else if (*end != '\0') {
			return -EINVAL;
		}
		p = end;
	}
	if (CPU_COUNT(&set) == 0) {
		return -EINVAL;
	}
	*ret_set = set;
	return 0;
}

static int parse_args(int argc, char **argv, struct options *ret_opts)
{
	struct options o = {.grace = DEFAULT_GRACE};
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			break;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "%s: unknown option or missing value: '%s'\n", PROG_NAME,
			        a);
			return -EINVAL;
		}
		if (strcmp(a, "--ro-bind") == 0) {
			if (i + 2 >= argc || o.nbinds == MAX_BINDS || argv[i + 1][0] != '/' ||
			    argv[i + 2][0] != '/') {
				fprintf(stderr, "%s: --ro-bind wants two absolute paths (at most %d)\n",
				        PROG_NAME, MAX_BINDS);
				return -EINVAL;
			}
			o.bind_src[o.nbinds] = argv[i + 1];
			o.bind_dst[o.nbinds++] = argv[i + 2];
			i += 2;
			continue;
		}
		const char *v = argv[++i];
		if (strcmp(a, "--dir") == 0) {
			if (*v == '\0') {
				fprintf(stderr, "%s: --dir must not be empty\n", PROG_NAME);
				return -EINVAL;
			}
			o.dir = v;
		} else if (strcmp(a, "--timeout") == 0 || strcmp(a, "--grace") == 0) {
			double *dst = strcmp(a, "--timeout") == 0 ? &o.timeout : &o.grace;
			if (parse_seconds(v, dst) < 0) {
				fprintf(stderr, "%s: %s wants a number of seconds, not '%s'\n",
				        PROG_NAME, a, v);
				return -EINVAL;
			}
		} else if (strcmp(a, "--mem-limit") == 0) {
			if (parse_bytes(v, &o.mem_limit) < 0) {
				fprintf(stderr,
				        "%s: --mem-limit wants a number of bytes, not '%s'\n",
				        PROG_NAME, v);
				return -EINVAL;
			}
		} else if (strcmp(a, "--cgroup") == 0) {
			if (v[0] != '/' || o.ncgroups == MAX_CGROUPS) {
				fprintf(stderr, "%s: --cgroup wants an absolute path (at most %d)\n",
				        PROG_NAME, MAX_CGROUPS);
				return -EINVAL;
			}
			o.cgroups[o.ncgroups++] = v;
		} else if (strcmp(a, "--cpus-list") == 0) {
			if (parse_cpus(v, &o.cpus) < 0) {
				fprintf(stderr,
				        "%s: --cpus-list wants CPUs like 0,1 or 0-3, not '%s'\n",
				        PROG_NAME, v);
				return -EINVAL;
			}
			o.pin = true;
		} else {
			fprintf(stderr, "%s: unknown option '%s'\n", PROG_NAME, a);
			return -EINVAL;
		}
	}
	if (!o.dir) {
		fprintf(stderr, "%s: --dir is required\n", PROG_NAME);
		return -EINVAL;
	}
	if (i >= argc || i + 1 >= argc) {
		fprintf(stderr, "%s: expected '-- PROGRAM [ARGS...]'\n", PROG_NAME);
		return -EINVAL;
	}
	o.argv = argv + i + 1;
	*ret_opts = o;
	return 0;
}

/*
 * If the daemon ever starts us with fd 0, 1 or 2 closed, our pipes would land
 * there and the child's dup2 calls would clobber them; fill the gaps first.
 */
static void ensure_std_fds(void)
{
	for (;;) {
		int fd = open("/dev/null", O_RDWR);
		if (fd < 0) {
			return;
		}
		if (fd > STDERR_FILENO) {
			close(fd);
			return;
		}
	}
}

static void outbuf_flush(struct outbuf *o)
{
	if (o->len == 0) {
		return;
	}
	int r = write_all(o->fd, o->buf, o->len);
	if (r == 0) {
		o->size += (off_t)o->len;
	} else {
		/*
		 * A full or broken disk must not stall the pipes, or the program
		 * would block on its next write: the data is dropped and the
		 * failure noted once.  A record cut short would make the rest of
		 * the file unparseable, so whatever part did land goes too.
		 */
		if (ftruncate(o->fd, o->size) < 0) {
			o->size = lseek(o->fd, 0, SEEK_END);
		}
		/* Counted for exit.json: the run must not end as if every line
		 * had been kept. */
		o->dropped += o->nrec;
		o->dropped_bytes += o->len;
		if (!o->write_failed) {
			o->write_failed = true;
			log_error(o->dirfd, "cannot write output.log: %s", strerror(-r));
		}
	}
	/*
	 * Start writeback as we go, without waiting for it, so the fsync before
	 * exit.json finds little left to do instead of the whole log.
	 */
#ifdef SYNC_FILE_RANGE_WRITE
	o->unsynced += o->len;
	if (o->unsynced >= WRITEBACK_EVERY) {
		sync_file_range(o->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
		o->unsynced = 0;
	}
#endif
	o->len = 0;
	o->nrec = 0;
}

static void emit_record(struct supervisor *s, char tag, const char *data, size_t len)
{
	struct outbuf *o = &s->out;
	char *p = o->buf + o->len;

	*p++ = tag;
	*p++ = ' ';
	memcpy(p, s->ts, s->ts_len);
	p += s->ts_len;
	*p++ = ' ';
	p += fmt_u64(p, len);
	*p++ = ' ';
	memcpy(p, data, len);
	p += len;
	*p++ = '\n';
	o->len = (size_t)(p - o->buf);
	o->nrec++;
	/* OUT_CAP leaves room for one more maximal record after this point. */
	if (o->len >= OUT_FLUSH_AT) {
		outbuf_flush(o);
	}
}

/* Adds bytes of an unfinished line; a full buffer becomes a record only once more bytes follow. */
static void stream_append(struct supervisor *s, struct stream *st, const char *data, size_t len)
{
	while (len > 0) {
		if (st->len == LINE_MAX_BYTES) {
			emit_record(s, st->tag, st->line, st->len);
			st->len = 0;
		}
		size_t take = LINE_MAX_BYTES - st->len;
		if (take > len) {
			take = len;
		}
		memcpy(st->line + st->len, data, take);
		st->len += take;
		data += take;
		len -= take;
	}
}

static void stream_feed(struct supervisor *s, struct stream *st, const char *data, size_t len)
{
	while (len > 0) {
		const char *nl = memchr(data, '\n', len);
		if (!nl) {
			stream_append(s, st, data, len);
			return;
		}
		size_t seg = (size_t)(nl - data);
		if (st->len == 0 && seg <= LINE_MAX_BYTES) {
			/* The common case: a whole line inside one read, no copy. */
			emit_record(s, st->tag, data, seg);
		} else {
			stream_append(s, st, data, seg);
			emit_record(s, st->tag, st->line, st->len);
			st->len = 0;
		}
		data += seg + 1;
		len -= seg + 1;
	}
}

static void set_read_time(struct supervisor *s)
{
	s->ts_len = fmt_u64(s->ts, (uint64_t)realtime_us());
}

/* An unterminated last line is still a line. */
static void stream_close(struct supervisor *s, struct stream *st)
{
	if (st->fd < 0) {
		return;
	}
	if (st->len > 0) {
		set_read_time(s);
		emit_record(s, st->tag, st->line, st->len);
		st->len = 0;
	}
	close(st->fd);
	st->fd = -1;
}

static void stream_read(struct supervisor *s, struct stream *st)
{
	ssize_t n = read(st->fd, s->chunk, sizeof(s->chunk));

	if (n < 0) {
		if (errno == EINTR || errno == EAGAIN) {
			return;
		}
		log_error(s->dirfd, "cannot read the program's std%s: %s",
		          st->tag == 'o' ? "out" : "err", strerror(errno));
		stream_close(s, st);
		return;
	}
	if (n == 0) {
		stream_close(s, st);
		return;
	}
	set_read_time(s);
	stream_feed(s, st, s->chunk, (size_t)n);
}

/*
 * SIGCONT follows SIGTERM so that a stopped process sees the TERM now rather
 * than only when the SIGKILL comes.
 */
static void terminate(struct supervisor *s, bool *reason)
{
	if (s->reaped || s->terminating) {
		return;
	}
	s->terminating = true;
	*reason = true;
	killpg(s->pid, SIGTERM);
	killpg(s->pid, SIGCONT);
	s->kill_at = clock_ns(CLOCK_MONOTONIC) + seconds_to_ns(s->opts.grace);
}

static void reap(struct supervisor *s)
{
	siginfo_t si;

	if (s->reaped) {
		return;
	}
	/*
	 * Peek without reaping: while the exited leader is a zombie its pid,
	 * and so the group id, cannot be reused, which makes the killpg safe.
	 */
	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t)s->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0) {
		return;
	}
	/* The run is over; whatever it left in its group goes too. */
	killpg(s->pid, SIGKILL);
	while (wait4(s->pid, &s->status, 0, &s->ru) < 0 && errno == EINTR) {
	}
	s->ended_real_us = realtime_us();
	s->reaped = true;
	s->drain_until = clock_ns(CLOCK_MONOTONIC) + DRAIN_AFTER_EXIT_NS;

	/* The child is gone, so its end of the pipe is closed and this cannot block. */
	int err;
	ssize_t n;
	do {
		n = read(s->exec_err_fd, &err, sizeof(err));
	} while (n < 0 && errno == EINTR);
	s->exec_failed = n == (ssize_t)sizeof(err);
	close(s->exec_err_fd);
	s->exec_err_fd = -1;
}

/*
 * The RSS of one process, in kB, when it is in group pgid; 0 otherwise
 * (or when it is gone already). The fields after the last ')' of
 * /proc/<pid>/stat are: state ppid pgrp ... with rss the 22nd of them;
 * the command name before it may hold spaces and parentheses.
 */
static uint64_t group_member_rss_kb(const struct supervisor *s, long pid, pid_t pgid)
{
	char path[64], buf[1024];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return 0;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0) {
		return 0;
	}
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	long long pgrp = -1, rss = 0;
	if (!p) {
		return 0;
	}
	p++;
	for (int field = 0; field < 22; field++) {
		while (*p == ' ') {
			p++;
		}
		if (*p == '\0') {
			return 0;
		}
		if (field == 2) {
			pgrp = strtoll(p, NULL, 10);
		} else if (field == 21) {
			rss = strtoll(p, NULL, 10);
		}
		while (*p && *p != ' ') {
			p++;
		}
	}
	if (pgrp != (long long)pgid || rss <= 0) {
		return 0;
	}
	return (uint64_t)rss * (uint64_t)s->page_kb;
}

/* --mem-limit: sum the group's RSS, keep the peak, kill the group when over. */
static void check_memory(struct supervisor *s)
{
	DIR *proc = opendir("/proc");
	struct dirent *de;
	uint64_t total_kb = 0;

	if (!proc) {
		log_error(s->dirfd, "cannot read /proc to measure the program's memory: %s",
		          strerror(errno));
		return;
	}
	while ((de = readdir(proc))) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9') {
			continue;
		}
		total_kb += group_member_rss_kb(s, strtol(de->d_name, NULL, 10), s->pid);
	}
	closedir(proc);
	if (total_kb > s->peak_rss_kb) {
		s->peak_rss_kb = total_kb;
	}
	if (!s->oom && total_kb * 1024 > s->opts.mem_limit) {
		/* No grace: memory over the limit is what the kernel would not wait for either. */
		s->oom = true;
		killpg(s->pid, SIGKILL);
	}
}

static void check_deadlines(struct supervisor *s, int64_t now)
{
	if (!s->reaped) {
		if (s->mem_check_at && now >= s->mem_check_at) {
			check_memory(s);
			s->mem_check_at = now + MEM_POLL_NS;
		}
		if (s->timeout_at && !s->terminating && now >= s->timeout_at) {
			terminate(s, &s->timed_out);
		}
		if (s->kill_at && now >= s->kill_at) {
			killpg(s->pid, SIGKILL);
			s->kill_at = 0;
		}
		return;
	}
	/* Something that left the group still holds the pipes; stop waiting for it. */
	if (now >= s->drain_until) {
		stream_close(s, &s->streams[STREAM_OUT]);
		stream_close(s, &s->streams[STREAM_ERR]);
	}
}

static int poll_timeout_ms(const struct supervisor *s, int64_t now)
{
	int64_t next = 0;
	int64_t cand[4] = {
	    !s->reaped && !s->terminating ? s->timeout_at : 0,
	    !s->reaped ? s->kill_at : 0,
	    s->reaped ? s->drain_until : 0,
	    !s->reaped ? s->mem_check_at : 0,
	};

	for (size_t i = 0; i < 4; i++) {
		if (cand[i] && (!next || cand[i] < next)) {
			next = cand[i];
		}
	}
	if (!next) {
		return -1;
	}
	if (next <= now) {
		return 0;
	}
	int64_t ms = (next - now + 999999) / 1000000;
	return ms > 3600 * 1000 ? 3600 * 1000 : (int)ms;
}

static bool streams_open(const struct supervisor *s)
{
	return s->streams[STREAM_OUT].fd >= 0 || s->streams[STREAM_ERR].fd >= 0;
}

static void run_loop(struct supervisor *s)
{
	for (;;) {
		int64_t now = clock_ns(CLOCK_MONOTONIC);
		check_deadlines(s, now);
		if (s->reaped && !streams_open(s)) {
			break;
		}

		struct pollfd pfd[3] = {
		    {.fd = s->sig_fd, .events = POLLIN},
		    {.fd = s->streams[STREAM_OUT].fd, .events = POLLIN},
		    {.fd = s->streams[STREAM_ERR].fd, .events = POLLIN},
		};
		int n = poll(pfd, 3, poll_timeout_ms(s, now));
		if (n < 0 && errno != EINTR) {
			/* Only ENOMEM is possible here; the child still needs us, so retry. */
			log_error(s->dirfd, "poll: %s", strerror(errno));
			nanosleep(&(struct timespec){.tv_nsec = 100 * 1000 * 1000}, NULL);
			continue;
		}
		if (n > 0 && pfd[0].revents) {
			char drain[256];
			while (read(s->sig_fd, drain, sizeof(drain)) > 0) {
			}
		}
		if (got_cancel) {
			got_cancel = 0;
			terminate(s, &s->canceled);
		}
		if (got_child) {
			got_child = 0;
			reap(s);
		}
		for (int i = 0; n > 0 && i < 2; i++) {
			if (pfd[1 + i].revents && s->streams[i].fd >= 0) {
				stream_read(s, &s->streams[i]);
			}
		}
		outbuf_flush(&s->out);
	}
}

static int install_signals(struct supervisor *s)
{
	int fds[2];
	struct sigaction sa;

	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) {
		return -errno;
	}
	s->sig_fd = fds[0];
	sig_wake_fd = fds[1];

	memset(&sa, 0, sizeof(sa));
	sigfillset(&sa.sa_mask);
	sa.sa_handler = signal_cb;
	sa.sa_flags = SA_NOCLDSTOP;
	int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		if (sigaction(sigs[i], &sa, NULL) < 0) {
			return -errno;
		}
	}
	/*
	 * The daemon may be gone and any pipe we touch with it, and a file size
	 * limit should fail a write, not kill the run's only witness.
	 */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);
	return 0;
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0) {
		return -errno;
	}
	n = write(fd, text, strlen(text));
	n = n == (ssize_t)strlen(text) ? 0 : -(n < 0 ? errno : EIO);
	close(fd);
	return (int)n;
}

/*
 * The read-only views of mounted inputs, in the child before exec: a mount
 * namespace of our own (with a user namespace when not root, mapping only
 * our ids, so the program stays who it was and gains nothing), mount
 * propagation off so nothing leaks back to the host, then each SRC bound
 * at DST and the bind remounted read-only. A remount in a user namespace
 * must keep the flags the kernel locked on the source mount (nosuid,
 * nodev, noexec, atime), so they are read back with statvfs first.
 */
static int setup_binds(const struct options *o)
{
	uid_t uid = getuid();
	gid_t gid = getgid();
	char map[64];

	if (o->nbinds == 0) {
		return 0;
	}
	if (uid != 0) {
		if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) {
			return -errno;
		}
		int r = write_file("/proc/self/setgroups", "deny");
		if (r < 0 && r != -ENOENT) {
			return r;
		}
		snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)gid, (unsigned)gid);
		if ((r = write_file("/proc/self/gid_map", map)) < 0) {
			return r;
		}
		snprintf(map, sizeof(map), "%u %u 1\n", (unsigned)uid, (unsigned)uid);
		if ((r = write_file("/proc/self/uid_map", map)) < 0) {
			return r;
		}
	} else if (unshare(CLONE_NEWNS) < 0) {
		return -errno;
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		return -errno;
	}
	for (int i = 0; i < o->nbinds; i++) {
		struct statvfs sv;
		unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY;
		if (mount(o->bind_src[i], o->bind_dst[i], NULL, MS_BIND, NULL) < 0) {
			return -errno;
		}
		if (statvfs(o->bind_dst[i], &sv) == 0) {
			flags |= (sv.f_flag & ST_NOSUID ? MS_NOSUID : 0) |
			         (sv.f_flag & ST_NODEV ? MS_NODEV : 0) |
			         (sv.f_flag & ST_NOEXEC ? MS_NOEXEC : 0) |
			         (sv.f_flag & ST_NOATIME ? MS_NOATIME : 0) |
			         (sv.f_flag & ST_NODIRATIME ? MS_NODIRATIME : 0) |
			         (sv.f_flag & ST_RELATIME ? MS_RELATIME : 0);
		}
		if (mount(NULL, o->bind_dst[i], NULL, flags, NULL) < 0) {
			return -errno;
		}
	}
	return 0;
}

/*
 * Runs in the child between fork and exec.  The supervisor is single-threaded,
 * so stdio and strerror are safe here.  Every failure is reported the same way
 * an exec failure is: a line on the program's stderr, errno on exec_err_w.
 */
__attribute__((noreturn)) static void child_exec(const struct options *o, int out_w, int err_w,
                                                 int exec_err_w)
{
	char **argv = o->argv;
	sigset_t none;
	int err = 0;
	bool said = false; /* the reason is on stderr already */

	setpgid(0, 0);
	int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (dup2(err_w, STDERR_FILENO) < 0 || dup2(out_w, STDOUT_FILENO) < 0 || null_fd < 0 ||
	    dup2(null_fd, STDIN_FILENO) < 0) {
		err = errno;
		goto fail;
	}
	/* Our handlers and ignored SIGPIPE must not leak into the user's program. */
	for (int sig = 1; sig < NSIG; sig++) {
		if (sig != SIGKILL && sig != SIGSTOP) {
			signal(sig, SIG_DFL);
		}
	}
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Before exec, so everything the program ever starts is inside too. */
	for (int i = 0; i < o->ncgroups; i++) {
		char path[4096], pid[24];
		if ((size_t)snprintf(path, sizeof(path), "%s/cgroup.procs", o->cgroups[i]) >=
		    sizeof(path)) {
			err = ENAMETOOLONG;
		} else {
			snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
			err = -write_file(path, pid);
		}
		if (err) {
			dprintf(STDERR_FILENO, "%s: cannot join the run's cgroup %s: %s\n",
			        PROG_NAME, o->cgroups[i], strerror(err));
			said = true;
			goto fail;
		}
	}
	if (o->pin && sched_setaffinity(0, sizeof(o->cpus), &o->cpus) < 0) {
		err = errno;
		dprintf(STDERR_FILENO, "%s: cannot pin the program to its CPUs: %s\n", PROG_NAME,
		        strerror(err));
		said = true;
		goto fail;
	}
	err = -setup_binds(o);
	if (err) {
		dprintf(STDERR_FILENO, "%s: cannot mount the run's inputs read-only: %s\n",
		        PROG_NAME, strerror(err));
		goto fail;
	}

	execvp(argv[0], argv);
	err = errno;
fail:
	if (!said) {
		dprintf(STDERR_FILENO, "%s: cannot execute '%s': %s\n", PROG_NAME, argv[0],
		        strerror(err));
	}
	write_all(exec_err_w, &err, sizeof(err));
	_exit(127);
}

static int make_pipe(int *ret_read, int *ret_write)
{
	int fds[2];

	if (pipe2(fds, O_CLOEXEC) < 0) {
		return -errno;
	}
	/* Only our end is non-blocking; the program gets an ordinary pipe. */
	fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
	*ret_read = fds[0];
	*ret_write = fds[1];
	return 0;
}

static int spawn(struct supervisor *s)
{
	int out_w = -1, err_w = -1, exec_err_w = -1;
	int r;

	r = make_pipe(&s->streams[STREAM_OUT].fd, &out_w);
	if (r < 0) {
		goto out;
	}
	r = make_pipe(&s->streams[STREAM_ERR].fd, &err_w);
	if (r < 0) {
		goto out;
	}
	r = make_pipe(&s->exec_err_fd, &exec_err_w);
	if (r < 0) {
		goto out;
	}

	pid_t pid = fork();
	if (pid < 0) {
		r = -errno;
		goto out;
	}
	if (pid == 0) {
		child_exec(&s->opts, out_w, err_w, exec_err_w);
	}
	/* Both sides set the group, so no killpg can come before it exists. */
	setpgid(pid, pid);
	s->pid = pid;
	s->started_real_us = realtime_us();
	if (s->opts.timeout > 0) {
		s->timeout_at = clock_ns(CLOCK_MONOTONIC) + seconds_to_ns(s->opts.timeout);
	}
	if (s->opts.mem_limit > 0) {
		/* Due at once: the first look comes right after the start. */
		s->mem_check_at = clock_ns(CLOCK_MONOTONIC);
		s->page_kb = sysconf(_SC_PAGESIZE) / 1024;
	}
	r = 0;
out:
	if (out_w >= 0) {
		close(out_w);
	}
	if (err_w >= 0) {
		close(err_w);
	}
	if (exec_err_w >= 0) {
		close(exec_err_w);
	}
	return r;
}

static int write_supervisor_json(const struct supervisor *s)
{
	char buf[256];
	int n = snprintf(
	    buf, sizeof(buf),
	    "{\"supervisor_pid\": %d, \"pgid\": %d, \"started_at\": %" PRId64 ".%06" PRId64 "}\n",
	    (int)getpid(), (int)s->pid, s->started_real_us / 1000000, s->started_real_us % 1000000);
	/* Not fsync'd: it tells a restarted daemon which supervisor to
	 * re-attach to, which only matters while this process lives, and a
	 * power cut ends it too. Its two fsyncs used to delay the reading of
	 * the program's first output by milliseconds. */
	return write_atomic(s->dirfd, "supervisor.json", buf, (size_t)n, false);
}

/* exit.json is the run's only witness of how it ended: its temporary is
 * given its blocks before the program starts, so a disk that fills up
 * during the run cannot keep it from being written. */
#define EXIT_JSON_RESERVE 4096
static void reserve_exit_json(int dirfd)
{
	int fd = openat(dirfd, "exit.json.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0) {
		return;
	}
	if (posix_fallocate(fd, 0, EXIT_JSON_RESERVE) != 0) {
		/* Not fatal: then it is written as any file, if there is room. */
		if (ftruncate(fd, 0) < 0) {
			/* nothing more to do */
		}
	}
	close(fd);
}

static int write_exit_json(const struct supervisor *s)
{
	char code[16] = "null", sig[16] = "null", mem[80] = "";
	char buf[768];

	if (WIFEXITED(s->status)) {
		snprintf(code, sizeof(code), "%d", WEXITSTATUS(s->status));
	} else if (WIFSIGNALED(s->status)) {
		snprintf(sig, sizeof(sig), "%d", WTERMSIG(s->status));
	}
	if (s->opts.mem_limit > 0) {
		/* A peak between two looks still shows in the kernel's maxrss. */
		uint64_t peak = s->peak_rss_kb;
		if (s->ru.ru_maxrss > 0 && (uint64_t)s->ru.ru_maxrss > peak) {
			peak = (uint64_t)s->ru.ru_maxrss;
		}
		snprintf(mem, sizeof(mem), ", \"oom\": %s, \"peak_rss_kb\": %" PRIu64,
		         s->oom ? "true" : "false", peak);
	}
	int n = snprintf(buf, sizeof(buf),
	                 "{\"exit_code\": %s, \"signal\": %s, \"timed_out\": %s, \"canceled\": %s, "
	                 "\"exec_failed\": %s, \"utime\": %lld.%06ld, \"stime\": %lld.%06ld, "
	                 "\"maxrss_kb\": %ld, \"started_at\": %" PRId64 ".%06" PRId64
	                 ", \"ended_at\": %" PRId64 ".%06" PRId64
	                 ", \"output_dropped\": %" PRIu64 ", \"output_dropped_bytes\": %" PRIu64
	                 "%s}\n",
	                 code, sig, s->timed_out ? "true" : "false", s->canceled ? "true" : "false",
	                 s->exec_failed ? "true" : "false", (long long)s->ru.ru_utime.tv_sec,
	                 (long)s->ru.ru_utime.tv_usec, (long long)s->ru.ru_stime.tv_sec,
	                 (long)s->ru.ru_stime.tv_usec, s->ru.ru_maxrss,
	                 s->started_real_us / 1000000, s->started_real_us % 1000000,
	                 s->ended_real_us / 1000000, s->ended_real_us % 1000000, s->out.dropped,
	                 s->out.dropped_bytes, mem);
	return write_atomic(s->dirfd, "exit.json", buf, (size_t)n, true);
}

int main(int argc, char **argv)
{
	struct supervisor *s = NULL;
	sigset_t caught, none;
	struct options opts;
	int ret = 1;
	int r;

	/*
	 * Hold cancel signals from the first instruction: a cancel that arrives
	 * while we set up then still reaches the program once it exists, instead
	 * of killing us before there is an exit.json to write.
	 */
	sigemptyset(&caught);
	sigaddset(&caught, SIGTERM);
	sigaddset(&caught, SIGINT);
	sigaddset(&caught, SIGHUP);
	sigaddset(&caught, SIGCHLD);
	sigprocmask(SIG_BLOCK, &caught, NULL);

	if (parse_args(argc, argv, &opts) < 0) {
		fprintf(stderr,
		        "usage: %s --dir RUNDIR [--timeout SECONDS] [--grace SECONDS] "
		        "[--ro-bind SRC DST]... [--mem-limit BYTES] [--cgroup DIR]... "
		        "[--cpus-list LIST] -- PROGRAM [ARGS...]\n",
		        PROG_NAME);
		return 2;
	}
	ensure_std_fds();

	s = calloc(1, sizeof(*s));
	if (!s) {
		fprintf(stderr, "%s: out of memory\n", PROG_NAME);
		goto out;
	}
	s->opts = opts;
	s->dirfd = s->sig_fd = s->exec_err_fd = s->out.fd = -1;
	s->streams[STREAM_OUT] = (struct stream){.fd = -1, .tag = 'o'};
	s->streams[STREAM_ERR] = (struct stream){.fd = -1, .tag = 'e'};

	s->dirfd = open(opts.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0) {
		log_error(-1, "cannot open run directory '%s': %s", opts.dir, strerror(errno));
		goto out;
	}
	s->out.dirfd = s->dirfd;
	s->out.fd = openat(s->dirfd, "output.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (s->out.fd < 0) {
		log_error(s->dirfd, "cannot open output.log: %s", strerror(errno));
		goto out;
	}
	s->out.size = lseek(s->out.fd, 0, SEEK_END);
	if (s->out.size < 0) {
		log_error(s->dirfd, "cannot seek output.log: %s", strerror(errno));
		goto out;
	}
	r = install_signals(s);
	if (r < 0) {
		log_error(s->dirfd, "cannot set up signal handling: %s", strerror(-r));
		goto out;
	}
	reserve_exit_json(s->dirfd);
	r = spawn(s);
	if (r < 0) {
		log_error(s->dirfd, "cannot start '%s': %s", opts.argv[0], strerror(-r));
		goto out;
	}
	r = write_supervisor_json(s);
	if (r < 0) {
		/* The program already runs; losing re-attach is better than losing the run. */
		log_error(s->dirfd, "cannot write supervisor.json: %s", strerror(-r));
	}
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	run_loop(s);

	outbuf_flush(&s->out);
	if (fsync(s->out.fd) < 0) {
		log_error(s->dirfd, "cannot fsync output.log: %s", strerror(errno));
	}
	r = write_exit_json(s);
	if (r < 0) {
		log_error(s->dirfd, "cannot write exit.json: %s", strerror(-r));
		goto out;
	}
	ret = 0;
out:
	if (s) {
		for (int i = 0; i < 2; i++) {
			if (s->streams[i].fd >= 0) {
				close(s->streams[i].fd);
			}
		}
		if (s->exec_err_fd >= 0) {
			close(s->exec_err_fd);
		}
		if (s->sig_fd >= 0) {
			close(s->sig_fd);
		}
		if (sig_wake_fd >= 0) {
			close(sig_wake_fd);
			sig_wake_fd = -1;
		}
		if (s->out.fd >= 0) {
			close(s->out.fd);
		}
		if (s->dirfd >= 0) {
			close(s->dirfd);
		}
		free(s);
	}
	return ret;
}

/* Starting runyardd detached and waiting until it answers: daemon start and autostart. */
#include "launch.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "connect.h"
#include "json.h"
#include "msg.h"
#include "util.h"
#include "verb.h"

/* How much of a daemon's start-up log to quote when it fails to start. */
#define LOG_TAIL_BYTES 2048

/* The runyardd to start: $RUNYARD_DAEMON, beside this runyard, in the meson
 * build tree (build/cli/runyard next to build/daemon/runyardd), else PATH. */
static char *find_daemon(void)
{
	static const char *const beside[] = {"runyardd", "../daemon/runyardd"};
	const char *env = getenv("RUNYARD_DAEMON");
	char *self, *found = NULL;

	if (env && env[0]) {
		return strdup(env);
	}
	self = util_readlink("/proc/self/exe");
	if (self && strrchr(self, '/')) {
		*strrchr(self, '/') = '\0';
		for (size_t i = 0; i < sizeof(beside) / sizeof(beside[0]) && !found; i++) {
			char *p = msg_strdupf("%s/%s", self, beside[i]);
			if (p && access(p, X_OK) == 0) {
				found = p;
			} else {
				free(p);
			}
		}
	}
	free(self);
	return found ? found : strdup("runyardd");
}

/* Start argv detached: its own session, stdin from /dev/null, stdout and
 * stderr appended to logfd. A pipe closed by exec tells whether exec
 * worked, so "not found" is reported here rather than as a silent timeout. */
static pid_t spawn_detached(char *const argv[], int logfd, int *ret_errno)
{
	int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int pipefd[2] = {-1, -1};
	int e = 0;
	pid_t pid = -1;

	if (nullfd < 0 || pipe2(pipefd, O_CLOEXEC) < 0) {
		e = errno;
		goto out;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		e = errno;
		goto out;
	}
	if (pid == 0) {
		sigset_t none;
		setsid();
		dup2(nullfd, STDIN_FILENO);
		dup2(logfd, STDOUT_FILENO);
		dup2(logfd, STDERR_FILENO);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execvp(argv[0], argv);
		e = errno;
		if (write(pipefd[1], &e, sizeof(e)) < 0) {
			/* Nothing left to tell it with. */
		}
		_exit(127);
	}
	close(pipefd[1]);
	pipefd[1] = -1;
	for (;;) {
		ssize_t n = read(pipefd[0], &e, sizeof(e));
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n != (ssize_t)sizeof(e)) {
			e = 0;
		}
		break;
	}
	if (e) {
		waitpid(pid, NULL, 0);
		pid = -1;
	}
out:
	if (nullfd >= 0) {
		close(nullfd);
	}
	if (pipefd[0] >= 0) {
		close(pipefd[0]);
	}
	if (pipefd[1] >= 0) {
		close(pipefd[1]);
	}
	*ret_errno = e;
	return pid;
}

/* What the log got since offset (its last LOG_TAIL_BYTES at most), to
 * show why a daemon did not start. */
static void print_log_since(const char *path, off_t offset)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf = NULL;

	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size <= offset) {
		goto out;
	}
	if (st.st_size - offset > LOG_TAIL_BYTES) {
		offset = st.st_size - LOG_TAIL_BYTES;
	}
	buf = malloc((size_t)(st.st_size - offset));
	if (!buf) {
		goto out;
	}
	ssize_t n = pread(fd, buf, (size_t)(st.st_size - offset), offset);
	if (n > 0) {
		fputs("runyard: runyardd said:\n", stderr);
		fwrite(buf, 1, (size_t)n, stderr);
		if (buf[n - 1] != '\n') {
			fputc('\n', stderr);
		}
	}
out:
	free(buf);
	if (fd >= 0) {
		close(fd);
	}
}

static void describe_exit(int wstatus, char buf[64])
{
	if (WIFEXITED(wstatus)) {
		snprintf(buf, 64, "exited with status %d", WEXITSTATUS(wstatus));
	} else if (WIFSIGNALED(wstatus)) {
		snprintf(buf, 64, "was killed by signal %d", WTERMSIG(wstatus));
	} else {
		snprintf(buf, 64, "stopped");
	}
}

/* Start runyardd detached on ctx->socket and wait until it answers; the
 * daemon's pid in *ret_pid. Returns 0 or an exit status (said why). */
int launch_daemon(struct ctx *ctx, const char *state_dir, const char *max_runs,
			 const char *grace, const char *const *extra, long long *ret_pid)
{
	struct client_error err = {0};
	struct client *probe = NULL;
	char *state_abs = NULL, *log_dir = NULL, *log_path = NULL, *bin = NULL;
	const char *dargv[40];
	size_t n = 0;
	struct stat st;
	off_t log_start = 0;
	int64_t deadline;
	int logfd = -1, status = VERB_EXIT_USAGE, r, e = 0;
	pid_t pid;

	if (state_dir) {
		r = util_mkdir_p(state_dir, 0700);
		state_abs = r == 0 ? realpath(state_dir, NULL) : NULL;
		if (!state_abs) {
			fprintf(stderr, "runyard: cannot create state directory %s: %s\n", state_dir,
				strerror(r < 0 ? -r : errno));
			goto out;
		}
		log_dir = strdup(state_abs);
	} else if (client_state_dir(&log_dir) == 0) {
		r = util_mkdir_p(log_dir, 0700);
		if (r < 0) {
			fprintf(stderr, "runyard: cannot create %s: %s\n", log_dir, strerror(-r));
			goto out;
		}
	}
	log_path = log_dir ? msg_strdupf("%s/runyardd.log", log_dir) : NULL;
	bin = find_daemon();
	if (!log_path || !bin) {
		fprintf(stderr, "runyard: cannot tell where runyardd's log goes (no home "
				"directory); pass --state-dir DIR\n");
		goto out;
	}
	logfd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (logfd < 0) {
		fprintf(stderr, "runyard: cannot open %s: %s\n", log_path, strerror(errno));
		goto out;
	}
	if (fstat(logfd, &st) == 0) {
		log_start = st.st_size;
	}

	dargv[n++] = bin;
	dargv[n++] = "--socket";
	dargv[n++] = ctx->socket;
	if (state_abs) {
		dargv[n++] = "--state-dir";
		dargv[n++] = state_abs;
	}
	if (max_runs) {
		dargv[n++] = "--max-runs";
		dargv[n++] = max_runs;
	}
	if (grace) {
		dargv[n++] = "--grace";
		dargv[n++] = grace;
	}
	/* More options for runyardd, as given (daemon start checked them). */
	for (size_t i = 0; extra && extra[i] && n < sizeof(dargv) / sizeof(dargv[0]) - 1; i++) {
		dargv[n++] = extra[i];
	}
	dargv[n] = NULL;
	pid = spawn_detached((char *const *)dargv, logfd, &e);
	if (pid < 0) {
		fprintf(stderr, "runyard: cannot start %s: %s (set RUNYARD_DAEMON to runyardd's path)\n",
			bin, strerror(e));
		goto out;
	}

	deadline = util_now_ms() + LAUNCH_WAIT_MS;
	for (;;) {
		int wstatus;
		char how[64];

		/* A daemon that forks itself away exits 0 here: keep asking the
		 * socket. Any other exit is a failed start. */
		if (pid > 0 && waitpid(pid, &wstatus, WNOHANG) == pid) {
			if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
				describe_exit(wstatus, how);
				fprintf(stderr, "runyard: runyardd %s during start-up (log: %s)\n", how,
					log_path);
				print_log_since(log_path, log_start);
				goto out;
			}
			pid = 0;
		}
		client_error_finish(&err);
		r = client_connect(ctx->socket, &probe, &err);
		if (r == 0) {
			break;
		}
		if (r == -EREMOTEIO) {
			status = connect_report_failure(&err, r);
			goto out;
		}
		if (util_now_ms() > deadline) {
			fprintf(stderr, "runyard: runyardd did not answer at %s within %ds (log: %s)\n",
				ctx->socket, LAUNCH_WAIT_MS / 1000, log_path);
			print_log_since(log_path, log_start);
			goto out;
		}
		util_sleep_ms(LAUNCH_POLL_MS);
	}
	*ret_pid = json_int(client_hello(probe), "pid", pid);
	status = 0;
out:
	if (logfd >= 0) {
		close(logfd);
	}
	client_destroy(probe);
	client_error_finish(&err);
	free(bin);
	free(log_path);
	free(log_dir);
	free(state_abs);
	return status;
}

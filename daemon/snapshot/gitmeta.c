/* git metadata by running git: the dirty flag needs git's index and its
 * rules (stat data, filters, submodules), which no reader of .git files
 * should reimplement, and git answers all four questions in two commands. */
#include "gitmeta.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "msg.h"
#include "util.h"

extern char **environ;

/* Output beyond this is not needed (status lists changes after its headers). */
#define OUTPUT_MAX (256u * 1024)

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The daemon's environment without GIT_* (which could point git at another
 * repository), plus settings for an unattended, read-only git. */
static char **git_env(void)
{
	static const char *const extra[] = {"GIT_OPTIONAL_LOCKS=0", "GIT_TERMINAL_PROMPT=0",
	                                    "LC_ALL=C", NULL};
	size_t n = 0, k = 0;
	char **env;

	while (environ[n]) {
		n++;
	}
	env = calloc(n + sizeof(extra) / sizeof(extra[0]) + 1, sizeof(*env));
	if (!env) {
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		if (strncmp(environ[i], "GIT_", 4) == 0 || strncmp(environ[i], "LC_ALL=", 7) == 0) {
			continue;
		}
		env[k++] = environ[i];
	}
	for (size_t i = 0; extra[i]; i++) {
		env[k++] = (char *)extra[i];
	}
	env[k] = NULL;
	return env;
}

static pthread_once_t git_once = PTHREAD_ONCE_INIT;
static char *git_path; /* git on the daemon's PATH, found once */

static void find_git(void)
{
	git_path = util_which("git", getenv("PATH"));
}

/* Start git with argv, its stdout into *ret_fd. */
static int spawn_git(char *const argv[], pid_t *ret_pid, int *ret_fd)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	char **env = git_env();
	int pipefd[2] = {-1, -1};
	pid_t pid = -1;
	int r;

	if (!env) {
		return -ENOMEM;
	}
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		r = -errno;
		free(env);
		return r;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	sigfillset(&all);
	/* The daemon ignores SIGPIPE and its threads may block signals: git
	 * gets the defaults. */
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	pthread_once(&git_once, find_git);
	r = git_path ? -posix_spawn(&pid, git_path, &fa, &attr, argv, env) : -ENOENT;
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(pipefd[1]);
	free(env);
	if (r < 0) {
		close(pipefd[0]);
		return r;
	}
	*ret_pid = pid;
	*ret_fd = pipefd[0];
	return 0;
}

/* Collect up to OUTPUT_MAX bytes of a started git's stdout and reap it
 * (killing it past the deadline). Returns its exit status (0..255), or -1
 * when it was killed or timed out; *ret_out is then NULL. Takes fd. */
static int collect_git(pid_t pid, int fd, int64_t deadline, char **ret_out, size_t *ret_len)
{
	char *out = malloc(OUTPUT_MAX + 1);
	size_t len = 0;
	int status = -1, wst;
	bool killed = false;

	*ret_out = NULL;
	*ret_len = 0;
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int64_t left = deadline - now_ms();
		ssize_t n;
		if (!out || left <= 0) {
			kill(pid, SIGKILL);
			killed = true;
			break;
		}
		if (poll(&p, 1, (int)left) < 0) {
			if (errno == EINTR) {
				continue;
			}
			kill(pid, SIGKILL);
			killed = true;
			break;
		}
		if (len == OUTPUT_MAX) {
			break; /* enough: git gets EPIPE or finishes */
		}
		n = read(fd, out + len, OUTPUT_MAX - len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
			continue;
		}
		if (n <= 0) {
			break;
		}
		len += (size_t)n;
	}
	close(fd);
	while (waitpid(pid, &wst, 0) < 0) {
		if (errno != EINTR) {
			wst = -1;
			break;
		}
	}
	if (!killed && wst != -1 && WIFEXITED(wst)) {
		status = WEXITSTATUS(wst);
	} else if (!killed && wst != -1 && len == OUTPUT_MAX && WIFSIGNALED(wst) &&
	           WTERMSIG(wst) == SIGPIPE) {
		status = 0; /* cut short by us, after what was needed */
	}
	if (status < 0) {
		free(out);
		return -1;
	}
	out[len] = '\0';
	*ret_out = out;
	*ret_len = len;
	return status;
}

/* Run git with argv and collect its output (see collect_git). */
static int run_git(char *const argv[], char **ret_out, size_t *ret_len)
{
	pid_t pid;
	int fd;

	*ret_out = NULL;
	*ret_len = 0;
	if (spawn_git(argv, &pid, &fd) < 0) {
		return -1;
	}
	return collect_git(pid, fd, now_ms() + GITMETA_TIMEOUT_MS, ret_out, ret_len);
}

void gitmeta_finish(struct gitmeta *m)
{
	if (!m) {
		return;
	}
	free(m->commit);
	free(m->branch);
	free(m->dirty);
	free(m->remote);
	memset(m, 0, sizeof(*m));
}

char *gitmeta_clean_url(const char *url)
{
	const char *scheme = strstr(url, "://");
	const char *host, *at, *end;
	char *out;

	if (!scheme) {
		return strdup(url);
	}
	host = scheme + 3;
	end = host + strcspn(host, "/?#");
	at = memrchr(host, '@', (size_t)(end - host));
	/* A user name alone is kept for ssh ("ssh://git@host/x"); over http a
	 * user name is often a token, and a password always goes. */
	if (!at || (!memchr(host, ':', (size_t)(at - host)) && strncmp(url, "http", 4) != 0)) {
		return strdup(url);
	}
	out = malloc(strlen(url) + 1);
	if (!out) {
		return NULL;
	}
	memcpy(out, url, (size_t)(host - url));
	strcpy(out + (host - url), at + 1);
	return out;
}

/* `git status --porcelain=v2 --branch -z`: headers first, then one record
 * per change. */
static int parse_status(const char *out, size_t len, struct gitmeta *m)
{
	bool dirty = false;

	for (size_t i = 0; i < len;) {
		const char *rec = out + i;
		size_t rl = strnlen(rec, len - i);
		if (strncmp(rec, "# branch.oid ", 13) == 0) {
			if (strcmp(rec + 13, "(initial)") != 0 && !m->commit) {
				m->commit = strdup(rec + 13);
				if (!m->commit) {
					return -ENOMEM;
				}
			}
		} else if (strncmp(rec, "# branch.head ", 14) == 0) {
			if (strcmp(rec + 14, "(detached)") != 0 && !m->branch) {
				m->branch = strdup(rec + 14);
				if (!m->branch) {
					return -ENOMEM;
				}
			}
		} else if (rl > 0 && rec[0] != '#') {
			dirty = true;
		}
		i += rl + 1;
	}
	m->dirty = strdup(dirty ? "true" : "false");
	return m->dirty ? 0 : -ENOMEM;
}

/* `git config -z --get-regexp`: "key\nvalue\0" records. */
static const char *config_get(const char *out, size_t len, const char *key)
{
	size_t kl = strlen(key);

	for (size_t i = 0; i < len;) {
		const char *rec = out + i;
		size_t rl = strnlen(rec, len - i);
		if (rl > kl && memcmp(rec, key, kl) == 0 && rec[kl] == '\n') {
			return rec + kl + 1;
		}
		i += rl + 1;
	}
	return NULL;
}

static const char *first_remote_url(const char *out, size_t len)
{
	for (size_t i = 0; i < len;) {
		const char *rec = out + i;
		size_t rl = strnlen(rec, len - i);
		const char *nl = memchr(rec, '\n', rl);
		if (nl && strncmp(rec, "remote.", 7) == 0 && nl - rec > 11 &&
		    memcmp(nl - 4, ".url", 4) == 0) {
			return nl + 1;
		}
		i += rl + 1;
	}
	return NULL;
}

static int find_remote(const char *dir, struct gitmeta *m)
{
	char *argv[] = {"git",
	                "-C",
	                (char *)dir,
	                "config",
	                "-z",
	                "--get-regexp",
	                "^(branch\\..*\\.remote|remote\\..*\\.url)$",
	                NULL};
	const char *name = NULL, *url = NULL;
	char *out = NULL, *key = NULL;
	size_t len = 0;
	int r = 0;

	if (run_git(argv, &out, &len) != 0) {
		goto out;
	}
	if (m->branch) {
		key = msg_strdupf("branch.%s.remote", m->branch);
		if (!key) {
			r = -ENOMEM;
			goto out;
		}
		name = config_get(out, len, key);
		if (name && strcmp(name, ".") == 0) {
			name = NULL; /* tracks a local branch */
		}
	}
	free(key);
	key = msg_strdupf("remote.%s.url", name ? name : "origin");
	if (!key) {
		r = -ENOMEM;
		goto out;
	}
	url = config_get(out, len, key);
	if (!url) {
		url = first_remote_url(out, len);
	}
	if (url && *url) {
		m->remote = gitmeta_clean_url(url);
		if (!m->remote) {
			r = -ENOMEM;
		}
	}
out:
	free(key);
	free(out);
	return r;
}

struct gitmeta_job {
	char *dir;
	pid_t pid; /* git status, or -1 when it could not start */
	int fd;
	int64_t deadline;
};

/* Whether dir or a directory above it has a .git (a directory, or the file
 * a linked work tree or submodule has). git finds its repository the same
 * way, so without one there is no work tree and no need to spawn git,
 * which costs a few milliseconds of every submit of a plain directory. */
static bool git_may_know(const char *dir)
{
	char path[PATH_MAX];
	size_t len = strlen(dir);
	struct stat st;

	if (dir[0] != '/' || len + sizeof("/.git") > sizeof(path)) {
		return true; /* let git decide */
	}
	memcpy(path, dir, len + 1);
	for (;;) {
		while (len > 1 && path[len - 1] == '/') {
			len--;
		}
		memcpy(path + (len > 1 ? len : 0), "/.git", sizeof("/.git"));
		if (lstat(path, &st) == 0) {
			return true;
		}
		if (len <= 1) {
			return false;
		}
		while (len > 1 && path[len - 1] != '/') {
			len--;
		}
		path[len] = '\0';
	}
}

int gitmeta_start(const char *dir, struct gitmeta_job **ret)
{
	char *argv[] = {"git",
	                "--no-optional-locks",
	                "-c",
	                "core.fsmonitor=false",
	                "-C",
	                (char *)dir,
	                "status",
	                "--porcelain=v2",
	                "--branch",
	                "-z",
	                "--untracked-files=normal",
	                NULL};
	struct gitmeta_job *j = calloc(1, sizeof(*j));

	if (!j) {
		return -ENOMEM;
	}
	j->dir = strdup(dir);
	if (!j->dir) {
		free(j);
		return -ENOMEM;
	}
	j->deadline = now_ms() + GITMETA_TIMEOUT_MS;
	if (!git_may_know(dir) || spawn_git(argv, &j->pid, &j->fd) < 0) {
		j->pid = -1; /* no git: nothing to record */
		j->fd = -1;
	}
	*ret = j;
	return 0;
}

int gitmeta_collect(struct gitmeta_job *j, struct gitmeta *ret)
{
	struct gitmeta m = {0};
	char *out = NULL;
	size_t len = 0;
	int r = 0, st;

	memset(ret, 0, sizeof(*ret));
	if (!j) {
		return 0;
	}
	if (j->pid < 0) {
		goto out;
	}
	st = collect_git(j->pid, j->fd, j->deadline, &out, &len);
	j->pid = -1;
	/* Outside a work tree status fails: nothing to record. */
	if (st != 0) {
		goto out;
	}
	r = parse_status(out, len, &m);
	if (r == 0) {
		r = find_remote(j->dir, &m);
	}
	if (r < 0) {
		gitmeta_finish(&m);
		goto out;
	}
	*ret = m;
out:
	free(out);
	free(j->dir);
	free(j);
	return r;
}

void gitmeta_abort(struct gitmeta_job *j)
{
	int wst;

	if (!j) {
		return;
	}
	if (j->pid > 0) {
		kill(j->pid, SIGKILL);
		close(j->fd);
		while (waitpid(j->pid, &wst, 0) < 0 && errno == EINTR) {
		}
	}
	free(j->dir);
	free(j);
}

int gitmeta_read(const char *dir, struct gitmeta *ret)
{
	struct gitmeta_job *j = NULL;
	int r = gitmeta_start(dir, &j);

	if (r < 0) {
		return r;
	}
	return gitmeta_collect(j, ret);
}

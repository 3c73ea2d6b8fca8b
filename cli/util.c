/* Small helpers of the CLI: clocks, numbers, files and paths. */
#include "util.h"

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

#include "msg.h"

double util_now_wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int64_t util_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void util_sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000};

	nanosleep(&ts, NULL);
}

int util_parse_int(const char *s, long long min, long long max, long long *ret)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

/* A positive, finite number of seconds. */
int util_parse_seconds(const char *s, double *ret)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v <= 0) {
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

int util_read_file(const char *path, char **ret_text, size_t *ret_len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int r = 0;

	if (!f) {
		return -errno;
	}
	for (;;) {
		if (cap - len < 4096) {
			size_t ncap = cap ? cap * 2 : 8192;
			char *n = realloc(buf, ncap);
			if (!n) {
				r = -ENOMEM;
				goto out;
			}
			buf = n;
			cap = ncap;
		}
		size_t got = fread(buf + len, 1, cap - len - 1, f);
		len += got;
		if (got == 0) {
			break;
		}
	}
	if (ferror(f)) {
		r = -EIO;
		goto out;
	}
	buf[len] = '\0';
	*ret_text = buf;
	*ret_len = len;
	buf = NULL;
out:
	free(buf);
	fclose(f);
	return r;
}

/* mkdir -p: every missing directory of path, with mode. */
int util_mkdir_p(const char *path, mode_t mode)
{
	char *copy = strdup(path);
	int r = 0;

	if (!copy) {
		return -ENOMEM;
	}
	for (char *p = copy + 1; *p; p++) {
		if (*p != '/') {
			continue;
		}
		*p = '\0';
		if (mkdir(copy, mode) < 0 && errno != EEXIST) {
			r = -errno;
			goto out;
		}
		*p = '/';
	}
	if (mkdir(copy, mode) < 0 && errno != EEXIST) {
		r = -errno;
	}
out:
	free(copy);
	return r;
}

/* The target of a symlink such as /proc/self/exe, without a fixed-size buffer. */
char *util_readlink(const char *path)
{
	size_t cap = 256;

	for (;;) {
		char *buf = malloc(cap);
		if (!buf) {
			return NULL;
		}
		ssize_t n = readlink(path, buf, cap);
		if (n < 0) {
			free(buf);
			return NULL;
		}
		if ((size_t)n < cap) {
			buf[n] = '\0';
			return buf;
		}
		free(buf);
		cap *= 2;
	}
}

/* A local path as an absolute one: resolved when it exists, else joined to
 * the current directory so the daemon's error names what was meant. */
char *util_absolute_path(const char *p)
{
	char *real = realpath(p, NULL), cwd[4096];

	if (real || p[0] == '/') {
		return real ? real : strdup(p);
	}
	if (!getcwd(cwd, sizeof(cwd))) {
		return strdup(p);
	}
	return msg_strdupf("%s/%s", cwd, p);
}

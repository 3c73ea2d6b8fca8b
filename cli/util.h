/* Small helpers of the CLI: clocks, numbers, files and paths. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Seconds since the epoch, and a monotonic clock in milliseconds. */
double util_now_wall(void);
int64_t util_now_ms(void);
void util_sleep_ms(long ms);

/* An integer in [min, max]; -EINVAL otherwise. */
int util_parse_int(const char *s, long long min, long long max, long long *ret);

/* A positive, finite number of seconds; -EINVAL otherwise. */
int util_parse_seconds(const char *s, double *ret);

/* A whole file, NUL-terminated (len does not count the NUL); 0 or -errno. */
int util_read_file(const char *path, char **ret_text, size_t *ret_len);

/* mkdir -p with mode; 0 or -errno. */
int util_mkdir_p(const char *path, mode_t mode);

/* The target of a symlink such as /proc/self/exe; malloc'd, NULL on failure. */
char *util_readlink(const char *path);

/* A local path made absolute: resolved when it exists, else joined to the
 * current directory. malloc'd. */
char *util_absolute_path(const char *p);

#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum log_level log_max_level = LOG_LEVEL_INFO;
static bool journal;

void log_init(enum log_level level)
{
	log_max_level = level;
	journal = getenv("JOURNAL_STREAM") != NULL;
}

void log_write(enum log_level level, const char *fmt, ...)
{
	static const char *names[] = {[LOG_LEVEL_ERROR] = "error", [LOG_LEVEL_WARN] = "warn",
				      [LOG_LEVEL_INFO] = "info", [LOG_LEVEL_DEBUG] = "debug"};
	char line[2048];
	size_t n = 0;
	va_list ap;

	if (journal) {
		n = (size_t)snprintf(line, sizeof(line), "<%d>", (int)level);
	} else {
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		n = strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S", &tm);
		n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ld %s: ",
				      ts.tv_nsec / 1000000, names[level]);
	}
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s\n", line);
}

/* Daemon logging: printf-style, the level test inside the macro. */
#pragma once

#include <stdbool.h>

enum log_level { LOG_LEVEL_ERROR = 3, LOG_LEVEL_WARN = 4, LOG_LEVEL_INFO = 6, LOG_LEVEL_DEBUG = 7 };

extern enum log_level log_max_level;

/* Set the threshold and choose the line format: under systemd (JOURNAL_STREAM
 * set) lines carry <N> priority prefixes and no timestamp, since the journal
 * adds its own. */
void log_init(enum log_level level);

void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_at(lvl, ...)                                                                   \
	do {                                                                               \
		if ((lvl) <= log_max_level) {                                              \
			log_write((lvl), __VA_ARGS__);                                     \
		}                                                                          \
	} while (0)
#define log_error(...) log_at(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_at(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_at(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_at(LOG_LEVEL_DEBUG, __VA_ARGS__)

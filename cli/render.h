/* Output for people and scripts: tables, durations, times, sizes, JSON. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <cjson/cJSON.h>

/* Look at stdout and stderr once: terminals, colour (stdout a terminal,
 * NO_COLOR unset, TERM not "dumb"), and full buffering when stdout is not a
 * terminal, so a million log lines are not a million writes. */
void render_init(void);

bool render_stdout_tty(void);
bool render_stderr_tty(void);

/* A table whose column widths follow its contents. */
struct render_table;

/* Columns named by headers[0..ncols); NULL on allocation failure. */
struct render_table *render_table_create(size_t ncols, const char *const headers[]);
void render_table_destroy(struct render_table *t);

/* Right-align column col (numbers). */
void render_table_align_right(struct render_table *t, size_t col);

/* Column col holds run statuses: coloured when colour is on. */
void render_table_status_column(struct render_table *t, size_t col);

/* Append a row of ncols cells (copied; NULL prints "-"). 0 or -ENOMEM. */
int render_table_add_row(struct render_table *t, const char *const cells[]);

/* Print the header and rows to out. On a terminal the last column is cut to
 * the terminal's width, so one run stays one line. */
void render_table_print(const struct render_table *t, FILE *out);

/* "35ms", "2.4s", "1m 03s", "2h 05m 09s", "3d 04h 10m"; "-" when secs is
 * negative or not a number. */
void render_duration(double secs, char buf[32]);

/* An ISO 8601 UTC timestamp from the protocol as local time
 * "2026-11-28 13:03:03"; "-" for NULL or anything else. */
void render_time(const char *iso, char buf[32]);

/* "512 B", "1.5 KiB", "12.0 MiB". */
void render_size(double bytes, char buf[32]);

/* The terminal escape that colours status, or "" when colour is off. */
const char *render_status_color(const char *status);

/* The escape that ends a colour, or "" when colour is off. */
const char *render_color_reset(void);

/* A command array as one shell-quoted line; malloc'd, NULL on failure. */
char *render_command(const cJSON *command);

/* Print doc formatted, then a newline, to stdout. 0 or -ENOMEM. */
int render_json(const cJSON *doc);

/* A JSON array written one element at a time, so a million log lines are
 * never one tree in memory. */
struct render_json_array {
	FILE *out;
	size_t count;
};

void render_json_array_begin(struct render_json_array *a, FILE *out);
int render_json_array_add(struct render_json_array *a, const cJSON *item);
void render_json_array_end(struct render_json_array *a);

/* A sparkline of n values, one of ▁▂▃▄▅▆▇█ each, scaled between their
 * minimum and maximum; a value that is not a number is a space. buf must
 * hold 3 * n + 1 bytes. */
void render_sparkline(const double *values, size_t n, char *buf);

/* A metric value for a table cell: numbers as %.6g, strings cut to max
 * characters with an ellipsis, other JSON compactly. malloc'd. */
char *render_metric_value(const cJSON *value, size_t max);

/* What goes before a log line's text: "" for the run's own stdout and
 * stderr, "[environment] " for the output of building its environment, so
 * the two cannot be mistaken for each other in one stream of lines. */
const char *render_log_prefix(const cJSON *line);

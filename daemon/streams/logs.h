/* Run output: ingesting the supervisor's output.log into the store, and
 * reading stored lines back (watch.h pushes them to followers). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

struct daemon;
struct run;

/* Longest line piece the supervisor writes in one record. */
#define LOGS_LINE_MAX 65536

/* The stream of an environment build's output in a run's log: never in
 * output.log (the supervisor writes 'o' and 'e'), only stored by the daemon. */
#define LOGS_STREAM_ENV 'n'
/* The daemon's lines about a run's inputs (downloads and their progress). */
#define LOGS_STREAM_INPUT 'i'

/* One record of output.log: "<s> <ts_us> <len> <bytes>\n". */
struct log_record {
	char stream; /* 'o', 'e', LOGS_STREAM_ENV or LOGS_STREAM_INPUT */
	int64_t ts_us;
	const char *text;
	size_t len;
};

typedef int (*logs_record_fn)(void *ud, const struct log_record *rec);

/* Parse whole records from buf, calling cb for each (cb may be NULL). The
 * number of bytes of whole records is returned in *ret_used and their count
 * in *ret_count; an incomplete record at the end is left for later.
 * -EBADMSG when the bytes are not records at all. */
int logs_parse(const char *buf, size_t len, logs_record_fn cb, void *ud, size_t *ret_used,
               int64_t *ret_count);

/* Store whatever whole records output.log has beyond what is stored
 * (RUN_EV_LOG tells the watchers). Reads a bounded amount per call and
 * returns 1 when more is waiting, for the caller to call again after the
 * loop has served everyone else, so one chatty run cannot starve the loop;
 * 0 when all is read. final: the supervisor has finished, read to the end. */
int logs_ingest(struct run *r, bool final);

/* Store one line of the daemon's own about a run, on a stream of its own
 * (LOGS_STREAM_INPUT: the run's inputs being placed, before its process
 * starts), and push it to watchers. */
int logs_append(struct run *r, char stream, const char *text);

/* The stream filter of a watch or a read ("stdout", "stderr",
 * "environment", "input"): 0 for every stream. */
int logs_stream_parse(const char *name, char *ret);
/* The protocol's name of a stored stream. */
const char *logs_stream_name(char stream);

/* Store the whole lines of text as lines of the run on stream, push them to
 * watchers, and say in *ret_used how many bytes were consumed; final: an
 * unterminated last line counts too. */
int logs_append_text(struct run *r, char stream, const char *text, size_t len, bool final,
                     size_t *ret_used);

/* Lines of a run after after_seq, for run.logs. */
int logs_read_json(struct daemon *d, int64_t seq, const char *run_id, int64_t after_seq,
                   int64_t limit, char stream, cJSON **ret_lines, int64_t *ret_next,
                   bool *ret_more);

/* Up to max_lines lines (about max_text bytes) of a run after after_seq, on
 * stream (0: all), as JSON; *ret_last is the last seq consumed, *ret_full
 * whether a limit stopped it. */
int logs_collect_json(struct daemon *d, int64_t seq, int64_t after_seq, int64_t max_lines,
		      size_t max_text, char stream, cJSON **ret_lines, int64_t *ret_last,
		      bool *ret_full);

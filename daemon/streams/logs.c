/* Ingest: the supervisor's output.log into the store as chunks of records,
 * and the daemon's own lines about a run; reading stored lines back as JSON.
 * Followers are served by watch.c, told of new lines by RUN_EV_LOG. */
#include "logs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "context.h"
#include "log.h"
#include "msg.h"
#include "run.h"
#include "store.h"
#include "util.h"

/* How much of output.log one ingest step reads; also the largest chunk. */
#define INGEST_READ (1024 * 1024)
/* Steps per callback before yielding to the loop. */
#define INGEST_STEPS 8
/* Text per run.logs reply. */
#define READ_TEXT_MAX (8 * 1024 * 1024)


int logs_parse(const char *buf, size_t len, logs_record_fn cb, void *ud, size_t *ret_used,
               int64_t *ret_count)
{
	size_t pos = 0;
	int64_t count = 0;

	while (pos < len) {
		const char *p = buf + pos, *end = buf + len;
		struct log_record rec;
		char *q;

		/* Header: stream, space, digits, space, digits, space. */
		if (end - p < 2) {
			break;
		}
		if ((p[0] != 'o' && p[0] != 'e' && p[0] != LOGS_STREAM_ENV &&
		     p[0] != LOGS_STREAM_INPUT) ||
		    p[1] != ' ') {
			return -EBADMSG;
		}
		rec.stream = p[0];
		p += 2;
		const char *sp = memchr(p, ' ', (size_t)(end - p));
		if (!sp) {
			if (end - p > 24) {
				return -EBADMSG;
			}
			break;
		}
		rec.ts_us = strtoll(p, &q, 10);
		if (q != sp || sp == p) {
			return -EBADMSG;
		}
		p = sp + 1;
		sp = memchr(p, ' ', (size_t)(end - p));
		if (!sp) {
			if (end - p > 8) {
				return -EBADMSG;
			}
			break;
		}
		unsigned long long n = strtoull(p, &q, 10);
		if (q != sp || sp == p || n > LOGS_LINE_MAX) {
			return -EBADMSG;
		}
		p = sp + 1;
		if ((size_t)(end - p) < n + 1) {
			break;
		}
		if (p[n] != '\n') {
			return -EBADMSG;
		}
		rec.text = p;
		rec.len = (size_t)n;
		if (cb) {
			int r = cb(ud, &rec);
			if (r < 0) {
				return r;
			}
		}
		count++;
		pos = (size_t)(p + n + 1 - buf);
	}
	*ret_used = pos;
	*ret_count = count;
	return 0;
}

int logs_stream_parse(const char *name, char *ret)
{
	if (!name) {
		*ret = 0;
	} else if (strcmp(name, "stdout") == 0) {
		*ret = 'o';
	} else if (strcmp(name, "stderr") == 0) {
		*ret = 'e';
	} else if (strcmp(name, "environment") == 0) {
		*ret = LOGS_STREAM_ENV;
	} else if (strcmp(name, "input") == 0) {
		*ret = LOGS_STREAM_INPUT;
	} else {
		return -EINVAL;
	}
	return 0;
}

const char *logs_stream_name(char stream)
{
	switch (stream) {
	case 'o':
		return "stdout";
	case 'e':
		return "stderr";
	case LOGS_STREAM_INPUT:
		return "input";
	default:
		return "environment";
	}
}

/* Decoding stored chunks into JSON lines, with a filter and limits. */
struct collect {
	int64_t seq;   /* seq of the record being decoded */
	int64_t after; /* only lines after this */
	char stream;
	cJSON *lines;
	int64_t count;
	int64_t max_lines;
	size_t text;
	size_t max_text;
	int64_t last; /* last seq consumed (sent or filtered out) */
	bool full;
};

static int collect_record_cb(void *ud, const struct log_record *rec)
{
	struct collect *c = ud;
	int64_t seq = c->seq++;

	if (seq <= c->after || c->full) {
		return 0;
	}
	if (c->count >= c->max_lines || c->text >= c->max_text) {
		c->full = true;
		return 0;
	}
	c->last = seq;
	if (c->stream && rec->stream != c->stream) {
		return 0;
	}
	cJSON *l = cJSON_CreateObject();
	char ts[32];
	size_t tlen;
	char *text = utf8_sanitize(rec->text, rec->len, &tlen);

	msg_format_time((double)(rec->ts_us / 1000000) + (double)(rec->ts_us % 1000000) / 1e6, ts);
	cJSON_AddNumberToObject(l, "seq", (double)seq);
	cJSON_AddStringToObject(l, "stream", logs_stream_name(rec->stream));
	cJSON_AddStringToObject(l, "ts", ts);
	cJSON_AddStringToObject(l, "text", text ? text : "");
	free(text);
	cJSON_AddItemToArray(c->lines, l);
	c->count++;
	c->text += rec->len + 64;
	return 0;
}

static int collect_chunk_cb(void *ud, int64_t first_seq, int64_t nlines, const void *data,
                            size_t len)
{
	struct collect *c = ud;
	size_t used;
	int64_t n;

	c->seq = first_seq;
	if (logs_parse(data, len, collect_record_cb, c, &used, &n) < 0) {
		return -EBADMSG;
	}
	return c->full ? 1 : 0;
}

int logs_collect_json(struct daemon *d, int64_t seq, int64_t after_seq, int64_t max_lines,
		      size_t max_text, char stream, cJSON **ret_lines, int64_t *ret_last,
		      bool *ret_full)
{
	struct collect c = {
	    .after = after_seq,
	    .stream = stream,
	    .lines = cJSON_CreateArray(),
	    .max_lines = max_lines,
	    .max_text = max_text,
	    .last = after_seq,
	};
	int r = store_log_read(d->store, seq, after_seq, collect_chunk_cb, &c);

	if (r < 0) {
		cJSON_Delete(c.lines);
		return r;
	}
	*ret_lines = c.lines;
	*ret_last = c.last;
	*ret_full = c.full;
	return 0;
}

int logs_read_json(struct daemon *d, int64_t seq, const char *run_id, int64_t after_seq,
                   int64_t limit, char stream, cJSON **ret_lines, int64_t *ret_next, bool *ret_more)
{
	return logs_collect_json(d, seq, after_seq, limit, READ_TEXT_MAX, stream, ret_lines,
				 ret_next, ret_more);
}

/* Ingest. */

int logs_ingest(struct run *r, bool final)
{
	struct daemon *d = r->d;
	char *path = NULL, *buf = d->ingest_buf;
	int fd = -1, r_ = 0;
	bool stored = false, more = false;

	if (asprintf(&path, "%s/output.log", r->dir) < 0) {
		return -ENOMEM;
	}
	fd = util_open_regular(AT_FDCWD, path, O_NOFOLLOW);
	if (fd < 0) {
		r_ = fd == -ENOENT ? 0 : fd;
		fd = -1;
		goto out;
	}
	if (!buf) {
		/* One buffer for every run: ingest never runs concurrently. */
		buf = d->ingest_buf = malloc(INGEST_READ);
		if (!buf) {
			r_ = -ENOMEM;
			goto out;
		}
	}
	for (int step = 0; final || step < INGEST_STEPS; step++) {
		ssize_t n = pread(fd, buf, INGEST_READ, (off_t)r->log_offset);
		size_t used;
		int64_t count;

		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			r_ = -errno;
			goto out;
		}
		if (n == 0) {
			break;
		}
		r_ = logs_parse(buf, (size_t)n, NULL, NULL, &used, &count);
		if (r_ < 0) {
			/* Only the supervisor writes this file; if its bytes are
			 * not records, stop reading rather than store garbage. */
			log_error("run %s: output.log is corrupt at offset %lld; no more lines are "
			          "read from it",
			          r->id, (long long)r->log_offset);
			goto out;
		}
		if (count == 0) {
			break;
		}
		r_ = store_log_append(d->store, r->seq, r->log_lines + 1, count, buf, used,
		                      r->log_offset + (int64_t)used);
		if (r_ < 0) {
			log_error("run %s: storing %lld log lines failed: %s", r->id,
			          (long long)count, store_errmsg(d->store));
			goto out;
		}
		r->log_offset += (int64_t)used;
		r->log_lines += count;
		stored = true;
		if ((size_t)n < INGEST_READ) {
			break;
		}
		if (!final && step + 1 == INGEST_STEPS) {
			/* More is waiting: the caller comes back after the loop
			 * has served everyone else. */
			more = true;
		}
	}
out:
	if (stored) {
		run_notify_log(r);
	}
	if (fd >= 0) {
		close(fd);
	}
	free(path);
	return r_ < 0 ? r_ : more ? 1 : 0;
}

/* Lines that do not come from output.log (an environment build's output):
 * stored as a chunk of records like the supervisor's, so reads, watches and
 * filters treat them like any other line; the run's offset into output.log
 * is left as it is. */
int logs_append_text(struct run *r, char stream, const char *text, size_t len, bool final,
                     size_t *ret_used)
{
	struct daemon *d = r->d;
	struct timespec now;
	char *buf = NULL;
	size_t pos = 0, cap = 0, blen = 0;
	int64_t count = 0;
	int err = 0;

	clock_gettime(CLOCK_REALTIME, &now);
	int64_t ts_us = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos, skip;
		if (n > LOGS_LINE_MAX) {
			/* as the supervisor does: a long line is several records */
			n = LOGS_LINE_MAX;
			skip = n;
		} else if (nl) {
			skip = n + 1;
		} else if (final) {
			skip = n; /* never terminated: still a line */
		} else {
			break; /* the rest of this line comes later */
		}
		if (blen + n + 64 > cap) {
			size_t ncap = (blen + n + 64) * 2;
			char *nb = realloc(buf, ncap);
			if (!nb) {
				err = -ENOMEM;
				goto out;
			}
			buf = nb;
			cap = ncap;
		}
		int h =
		    snprintf(buf + blen, cap - blen, "%c %lld %zu ", stream, (long long)ts_us, n);
		blen += (size_t)h;
		memcpy(buf + blen, text + pos, n);
		blen += n;
		buf[blen++] = '\n';
		count++;
		pos += skip;
	}
	if (count > 0) {
		err = store_log_append(d->store, r->seq, r->log_lines + 1, count, buf, blen,
		                       r->log_offset);
		if (err < 0) {
			goto out;
		}
		r->log_lines += count;
		run_notify_log(r);
	}
	*ret_used = pos;
out:
	free(buf);
	return err;
}

int logs_append(struct run *r, char stream, const char *text)
{
	size_t used;

	return logs_append_text(r, stream, text, strlen(text), true, &used);
}

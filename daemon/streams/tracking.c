#include "tracking.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "blob.h"
#include "context.h"
#include "log.h"
#include "msg.h"
#include "run.h"
#include "store.h"
#include "util.h"

#ifndef RUNYARD_SDK_DIR
#define RUNYARD_SDK_DIR "/usr/share/runyard/python"
#endif

/* One read of tracking.jsonl: always room for a longest line and its
 * newline, so a line that does not fit is one that is too long. */
#define READ_MAX (2 * TRACKING_LINE_MAX + 1)
/* Bytes one ingest call stores before it yields to the loop (the inotify
 * events of the run's next writes and the 1 s poll come back for more). */
#define STEP_BUDGET (4 * 1024 * 1024)
/* Largest integer a double holds exactly (steps). */
#define STEP_MAX 9007199254740991.0

/* Series whose rollups an ingest keeps open at once (struct ingest). */
#define ROLLUPS_OPEN 8

static const char *const kind_names[] = {
    [TRACKING_SCALAR] = "scalar", [TRACKING_LIST] = "list",   [TRACKING_ROW] = "row",
    [TRACKING_TABLE] = "table",   [TRACKING_IMAGE] = "image",
};

/* Characters (code points) of a valid UTF-8 string. */
static size_t chars(const char *s)
{
	size_t n = 0;

	for (; *s; s++) {
		n += ((unsigned char)*s & 0xC0) != 0x80;
	}
	return n;
}

bool tracking_valid_path(const char *name)
{
	size_t len = strlen(name);
	const char *p = name;

	if (len == 0 || len > TRACKING_PATH_MAX || name[0] == '/' || !utf8_valid(name, len)) {
		return false;
	}
	for (const char *c = name; *c; c++) {
		if ((unsigned char)*c < 0x20 || *c == 0x7f || *c == '\\') {
			return false;
		}
	}
	while (*p) {
		size_t n = strcspn(p, "/");
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
			return false;
		}
		p += n;
		if (*p == '/') {
			p++;
			if (!*p) {
				return false;
			}
		}
	}
	return true;
}

/* Parsing lines */

static int fail(char **cause, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(char **cause, const char *fmt, ...)
{
	va_list ap;
	char *m = NULL;

	va_start(ap, fmt);
	if (vasprintf(&m, fmt, ap) < 0) {
		m = NULL;
	}
	va_end(ap);
	if (cause) {
		*cause = m;
	} else {
		free(m);
	}
	return -EINVAL;
}

/* A string member what of at most max characters (empty allowed when
 * min is 0). */
static int get_string(const cJSON *o, const char *key, const char *what, size_t min, size_t max,
                      const char **ret, char **cause)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	size_t n;

	if (!cJSON_IsString(v)) {
		return fail(cause, "%s ('%s') must be a string", what, key);
	}
	n = chars(v->valuestring);
	if (n < min) {
		return fail(cause, "%s is empty", what);
	}
	if (n > max) {
		return fail(cause, "%s '%.40s...' is %zu characters long; the limit is %zu", what,
		            v->valuestring, n, max);
	}
	*ret = v->valuestring;
	return 0;
}

static bool is_scalar(const cJSON *v)
{
	return cJSON_IsNumber(v) || cJSON_IsString(v);
}

static int check_column(const cJSON *col, const char *name, char **cause)
{
	size_t n = chars(col->string);

	if (n == 0) {
		return fail(cause, "metric '%s' has a column with an empty name", name);
	}
	if (n > TRACKING_NAME_MAX) {
		return fail(cause,
		            "metric '%s': column name '%.40s...' is %zu characters long; the "
		            "limit is %d",
		            name, col->string, n, TRACKING_NAME_MAX);
	}
	return 0;
}

/* A value of a point of the given kind. */
static int check_value(enum tracking_kind kind, const cJSON *v, const char *name, char **cause)
{
	const cJSON *it, *x;

	switch (kind) {
	case TRACKING_SCALAR:
		if (!is_scalar(v)) {
			return fail(cause,
			            "metric '%s': a scalar value must be a number or a string",
			            name);
		}
		return 0;
	case TRACKING_LIST:
		if (!cJSON_IsArray(v)) {
			return fail(cause, "metric '%s': a list value must be an array", name);
		}
		cJSON_ArrayForEach(it, v)
		{
			if (!is_scalar(it)) {
				return fail(cause,
				            "metric '%s': list items must be numbers or strings",
				            name);
			}
		}
		return 0;
	case TRACKING_ROW:
	case TRACKING_TABLE:
		if (!cJSON_IsObject(v) || !v->child) {
			return fail(cause, "metric '%s': a %s value must be an object of columns",
			            name, kind_names[kind]);
		}
		cJSON_ArrayForEach(it, v)
		{
			if (check_column(it, name, cause) < 0) {
				return -EINVAL;
			}
			if (kind == TRACKING_ROW && !is_scalar(it)) {
				return fail(cause,
				            "metric '%s': column '%s' of a row must be a number "
				            "or a string",
				            name, it->string);
			}
			if (kind == TRACKING_TABLE) {
				if (!cJSON_IsArray(it)) {
					return fail(cause,
					            "metric '%s': column '%s' of a table must be "
					            "an array",
					            name, it->string);
				}
				cJSON_ArrayForEach(x, it)
				{
					if (!is_scalar(x)) {
						return fail(cause,
						            "metric '%s': column '%s' holds "
						            "something that is neither a "
						            "number nor a string",
						            name, it->string);
					}
				}
			}
		}
		return 0;
	case TRACKING_IMAGE: {
		const cJSON *p = cJSON_GetObjectItemCaseSensitive(v, "path");
		if (!cJSON_IsObject(v) || !cJSON_IsString(p) ||
		    !tracking_valid_path(p->valuestring)) {
			return fail(cause,
			            "metric '%s': an image value must be {\"path\": ARTIFACT}",
			            name);
		}
		return 0;
	}
	}
	return -EINVAL;
}

/* base64 of little-endian IEEE 754 doubles into doubles; the count in
 * *ret_n. -EINVAL when it is not that. */
static int decode_f64(const char *text, double *out, size_t max, size_t *ret_n)
{
	size_t len = strlen(text), pad = 0, bytes;
	unsigned char *raw;
	int n;

	if (len == 0 || len % 4 != 0 || len > (size_t)TRACKING_LINE_MAX) {
		return -EINVAL;
	}
	pad = (text[len - 1] == '=') + (text[len - 2] == '=');
	raw = malloc(len / 4 * 3);
	if (!raw) {
		return -ENOMEM;
	}
	n = EVP_DecodeBlock(raw, (const unsigned char *)text, (int)len);
	if (n < 0 || (size_t)n < pad || ((size_t)n - pad) % 8 != 0 || ((size_t)n - pad) / 8 > max) {
		free(raw);
		return -EINVAL;
	}
	bytes = (size_t)n - pad;
	for (size_t i = 0; i < bytes / 8; i++) {
		uint64_t u;
		memcpy(&u, raw + 8 * i, 8);
		u = le64toh(u);
		memcpy(&out[i], &u, 8);
	}
	free(raw);
	*ret_n = bytes / 8;
	return 0;
}

/* The packed forms of a metric line: "values_f64" and "ts_f64", each the
 * base64 of little-endian doubles (what the Python module writes for
 * numbers: far cheaper to make than decimal text). */
static int unpack(const cJSON *root, struct tracking_line *l, char **cause)
{
	const cJSON *vf = cJSON_GetObjectItemCaseSensitive(root, "values_f64");
	const cJSON *tf = cJSON_GetObjectItemCaseSensitive(root, "ts_f64");
	size_t max = 0, n = 0, nt = 0;

	if (!vf && !tf) {
		return 0;
	}
	if ((vf && !cJSON_IsString(vf)) || (tf && !cJSON_IsString(tf))) {
		return fail(cause, "metric '%s': 'values_f64' and 'ts_f64' must be base64 strings",
		            l->name);
	}
	max = (vf ? strlen(vf->valuestring) : 0) / 4 * 3 / 8 +
	      (tf ? strlen(tf->valuestring) : 0) / 4 * 3 / 8;
	l->packed = malloc((max ? max : 1) * sizeof(double));
	if (!l->packed) {
		return -ENOMEM; /* not the line's fault: no warning, tried again later */
	}
	if (vf) {
		if (decode_f64(vf->valuestring, l->packed, max, &n) < 0 || n == 0) {
			return fail(cause, "metric '%s': 'values_f64' is not base64 of doubles",
			            l->name);
		}
		l->f64 = l->packed;
		l->count = (int)n;
	}
	if (tf) {
		if (decode_f64(tf->valuestring, l->packed + n, max - n, &nt) < 0) {
			return fail(cause, "metric '%s': 'ts_f64' is not base64 of doubles",
			            l->name);
		}
		l->ts64 = l->packed + n;
		if (!vf) {
			l->count = cJSON_GetArraySize(l->values);
		}
		if ((int)nt != l->count) {
			return fail(cause,
			            "metric '%s': 'ts_f64' must hold as many times as there "
			            "are values",
			            l->name);
		}
	}
	return 0;
}

static int parse_metric(struct tracking_line *l, char **cause)
{
	const cJSON *root = l->root, *kind = cJSON_GetObjectItemCaseSensitive(root, "kind"), *v;

	if (get_string(root, "name", "the metric name", 1, TRACKING_NAME_MAX, &l->name, cause) <
	    0) {
		return -EINVAL;
	}
	l->kind = TRACKING_SCALAR;
	if (kind) {
		bool found = false;
		for (size_t k = 0; k < sizeof(kind_names) / sizeof(kind_names[0]) && !found; k++) {
			if (cJSON_IsString(kind) && strcmp(kind->valuestring, kind_names[k]) == 0) {
				l->kind = (enum tracking_kind)k;
				found = true;
			}
		}
		if (!found) {
			return fail(cause,
			            "metric '%s': kind must be scalar, list, row, table or "
			            "image",
			            l->name);
		}
	}
	l->values = cJSON_GetObjectItemCaseSensitive(root, "values");
	l->ts = cJSON_GetObjectItemCaseSensitive(root, "ts");
	l->steps = cJSON_GetObjectItemCaseSensitive(root, "steps");
	int err = unpack(root, l, cause);
	if (err < 0) {
		return err;
	}
	if (l->f64) {
		l->values = NULL;
		if (l->kind != TRACKING_SCALAR) {
			return fail(cause, "metric '%s': packed values are scalars only", l->name);
		}
	} else if (!cJSON_IsArray(l->values) || !l->values->child) {
		return fail(cause, "metric '%s': 'values' must be a non-empty array", l->name);
	} else {
		l->count = cJSON_GetArraySize(l->values);
	}
	if (l->ts64) {
		l->ts = NULL;
		for (int i = 0; i < l->count; i++) {
			if (!isfinite(l->ts64[i]) || l->ts64[i] < 0) {
				return fail(cause, "metric '%s': 'ts_f64' must hold unix seconds",
				            l->name);
			}
		}
	} else if (cJSON_IsNumber(l->ts)) {
		if (!isfinite(l->ts->valuedouble) || l->ts->valuedouble < 0) {
			return fail(cause, "metric '%s': 'ts' must be unix seconds", l->name);
		}
	} else if (cJSON_IsArray(l->ts) && cJSON_GetArraySize(l->ts) == l->count) {
		cJSON_ArrayForEach(v, l->ts)
		{
			if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0) {
				return fail(cause, "metric '%s': 'ts' must hold unix seconds",
				            l->name);
			}
		}
	} else {
		return fail(cause,
		            "metric '%s': 'ts' must be a number or an array as long as "
		            "'values'",
		            l->name);
	}
	if (l->steps && !cJSON_IsNull(l->steps)) {
		if (!cJSON_IsArray(l->steps) || cJSON_GetArraySize(l->steps) != l->count) {
			return fail(cause,
			            "metric '%s': 'steps' must be an array as long as 'values'",
			            l->name);
		}
		cJSON_ArrayForEach(v, l->steps)
		{
			if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > STEP_MAX ||
			    v->valuedouble != floor(v->valuedouble)) {
				return fail(cause, "metric '%s': steps must be integers >= 0",
				            l->name);
			}
		}
	} else {
		l->steps = NULL;
	}
	cJSON_ArrayForEach(v, l->values)
	{
		if (check_value(l->kind, v, l->name, cause) < 0) {
			return -EINVAL;
		}
	}
	return 0;
}

int tracking_line_parse(const char *text, size_t len, struct tracking_line *ret, char **cause)
{
	struct tracking_line l = {0};
	const cJSON *op, *v;
	int err = -EINVAL;

	memset(ret, 0, sizeof(*ret));
	if (!utf8_valid(text, len)) {
		return fail(cause, "the line is not valid UTF-8");
	}
	l.root = cJSON_ParseWithLength(text, len);
	if (!cJSON_IsObject(l.root)) {
		cJSON_Delete(l.root);
		return fail(cause, "the line is not a JSON object");
	}
	op = cJSON_GetObjectItemCaseSensitive(l.root, "op");
	if (!cJSON_IsString(op)) {
		fail(cause, "the line has no \"op\"");
		goto bad;
	}
	if (strcmp(op->valuestring, "metric") == 0) {
		l.op = TRACKING_METRIC;
		if ((err = parse_metric(&l, cause)) < 0) {
			goto bad;
		}
	} else if (strcmp(op->valuestring, "tag") == 0 ||
	           strcmp(op->valuestring, "property") == 0) {
		bool tag = op->valuestring[0] == 't';
		l.op = tag ? TRACKING_TAG : TRACKING_PROPERTY;
		if (get_string(l.root, "key", tag ? "the tag key" : "the property key", 1,
		               TRACKING_KEY_MAX, &l.name, cause) < 0) {
			goto bad;
		}
		v = cJSON_GetObjectItemCaseSensitive(l.root, "value");
		if (tag && cJSON_IsNull(v)) {
			l.value = NULL;
		} else if (get_string(l.root, "value",
		                      tag ? "the value of a tag" : "the value of a property", 0,
		                      TRACKING_VALUE_MAX, &l.value, cause) < 0) {
			goto bad;
		}
	} else if (strcmp(op->valuestring, "upload") == 0) {
		l.op = TRACKING_UPLOAD;
		v = cJSON_GetObjectItemCaseSensitive(l.root, "name");
		if (!cJSON_IsString(v) || !tracking_valid_path(v->valuestring)) {
			fail(cause,
			     "an upload's 'name' must be a relative path without '.' or '..' "
			     "components, at most %d bytes",
			     TRACKING_PATH_MAX);
			goto bad;
		}
		l.name = v->valuestring;
		v = cJSON_GetObjectItemCaseSensitive(l.root, "file");
		if (!cJSON_IsString(v) || !v->valuestring[0] || strchr(v->valuestring, '/') ||
		    strcmp(v->valuestring, ".") == 0 || strcmp(v->valuestring, "..") == 0 ||
		    strlen(v->valuestring) > 255) {
			fail(cause,
			     "an upload's 'file' must be a file name in the run's %s/ "
			     "directory",
			     TRACKING_UPLOADS);
			goto bad;
		}
		l.file = v->valuestring;
	} else {
		fail(cause, "unknown op '%.40s'", op->valuestring);
		goto bad;
	}
	*ret = l;
	return 0;
bad:
	cJSON_Delete(l.root);
	free(l.packed);
	return err;
}

void tracking_line_finish(struct tracking_line *l)
{
	if (l) {
		cJSON_Delete(l->root);
		free(l->packed);
		l->root = NULL;
		l->packed = NULL;
	}
}

enum tracking_next tracking_next_line(const char *buf, size_t len, size_t *ret_len)
{
	size_t look = len < TRACKING_LINE_MAX + 1 ? len : TRACKING_LINE_MAX + 1;
	const char *nl = memchr(buf, '\n', look);

	if (nl) {
		*ret_len = (size_t)(nl - buf);
		return TRACKING_NEXT_LINE;
	}
	return len > TRACKING_LINE_MAX ? TRACKING_NEXT_TOO_LONG : TRACKING_NEXT_PARTIAL;
}

/* Ingest */

struct ingest {
	struct run *r;
	struct store *s;
	int uploads_fd;
	int64_t nseries; /* the run's series, -1 until counted */
	char **unlink;   /* uploaded copies to remove once their lines are committed */
	size_t nunlink, cap;
	bool metrics; /* a point was stored: the run's listeners hear of it */
	/* The rollups of the series written in this transaction, flushed
	 * before it commits: a run logging one point a line writes a rollup
	 * row per bucket left, not three per point. */
	struct store_rollup roll[ROLLUPS_OPEN];
	int nroll;
};

/* The accumulator of series metric_id, taking one (and writing out the
 * oldest if all are taken). NULL on a failed write. */
static struct store_rollup *rollup_of(struct ingest *in, int64_t metric_id, int *err)
{
	for (int i = 0; i < in->nroll; i++) {
		if (in->roll[i].metric_id == metric_id) {
			return &in->roll[i];
		}
	}
	if (in->nroll == ROLLUPS_OPEN) {
		if ((*err = store_rollup_flush(in->s, &in->roll[0])) < 0) {
			return NULL;
		}
		memmove(&in->roll[0], &in->roll[1], sizeof(in->roll[0]) * (ROLLUPS_OPEN - 1));
		in->nroll--;
	}
	store_rollup_init(&in->roll[in->nroll], metric_id);
	return &in->roll[in->nroll++];
}

static int rollups_flush(struct ingest *in)
{
	int err = 0;

	for (int i = 0; i < in->nroll && err == 0; i++) {
		err = store_rollup_flush(in->s, &in->roll[i]);
	}
	in->nroll = 0;
	return err;
}

static int apply_metric(struct ingest *in, const struct tracking_line *l, char **cause)
{
	struct store_metric m;
	struct store_metric_summary sum = {0};
	const char *kind = kind_names[l->kind];
	const cJSON *v = l->values ? l->values->child : NULL;
	const cJSON *ts = cJSON_IsArray(l->ts) ? l->ts->child : NULL;
	const cJSON *step = l->steps ? l->steps->child : NULL;
	char *text = NULL;
	int err = store_metric_series(in->s, in->r->seq, l->name, NULL, &m);

	if (err == -ENOENT) {
		/* Counted once per ingest call, then kept up to date here. */
		if (in->nseries < 0 &&
		    (err = store_metric_count(in->s, in->r->seq, &in->nseries)) < 0) {
			return err;
		}
		if (in->nseries >= TRACKING_METRICS_MAX) {
			return fail(cause, "metric '%s': the run already has %d metrics, the limit",
			            l->name, TRACKING_METRICS_MAX);
		}
		err = store_metric_series(in->s, in->r->seq, l->name, kind, &m);
		in->nseries += err == 0;
	}
	if (err < 0) {
		return err;
	}
	if (strcmp(m.kind, kind) != 0) {
		return fail(cause,
		            "metric '%s' was logged as a %s before; it cannot take %s values",
		            l->name, m.kind, kind);
	}
	sum.count = m.count;
	for (int i = 0; i < l->count; i++) {
		int64_t idx = sum.count;
		double num = 0;
		const char *t = NULL;

		free(text);
		text = NULL;
		if (l->f64) {
			/* JSON has no NaN nor infinities: they are strings on
			 * either path. */
			num = l->f64[i];
			if (isnan(num)) {
				t = "NaN";
			} else if (isinf(num)) {
				t = num > 0 ? "Infinity" : "-Infinity";
			}
		} else if (l->kind != TRACKING_SCALAR) {
			t = text = cJSON_PrintUnformatted(v);
			if (!text) {
				return -ENOMEM;
			}
		} else if (cJSON_IsString(v)) {
			t = v->valuestring;
		} else {
			num = v->valuedouble;
		}
		if (l->kind == TRACKING_SCALAR && !t) {
			if (sum.numeric == 0 || num < sum.min) {
				sum.min = num;
			}
			if (sum.numeric == 0 || num > sum.max) {
				sum.max = num;
			}
			sum.numeric++;
		}
		sum.last_step = step ? (int64_t)step->valuedouble : idx;
		sum.last_ts = l->ts64 ? l->ts64[i] : ts ? ts->valuedouble : l->ts->valuedouble;
		err = store_metric_point_add(in->s, m.id, idx, sum.last_step, sum.last_ts, num, t);
		if (err == 0 && l->kind == TRACKING_SCALAR && !t) {
			struct store_rollup *roll = rollup_of(in, m.id, &err);
			err = roll ? store_rollup_add(in->s, roll, idx, sum.last_step, num) : err;
		}
		if (err < 0) {
			free(text);
			return err;
		}
		sum.count++;
		in->metrics = true;
		v = v ? v->next : NULL;
		ts = ts ? ts->next : NULL;
		step = step ? step->next : NULL;
		if (i + 1 == l->count) {
			sum.last_num = num;
			sum.last_text = t;
			err = store_metric_summary_update(in->s, m.id, &sum);
		}
	}
	free(text);
	return err;
}

static int apply_upload(struct ingest *in, const struct tracking_line *l, char **cause)
{
	struct run *r = in->r;
	struct stat st;
	char hex[65];
	uint64_t size;
	int err;

	if (in->uploads_fd < 0) {
		char *p = util_path_join(r->dir, TRACKING_UPLOADS);
		if (!p) {
			return -ENOMEM;
		}
		/* O_NOFOLLOW: the run may not swap the directory for a link. */
		in->uploads_fd = open(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		err = errno;
		free(p);
		if (in->uploads_fd < 0) {
			return fail(cause,
			            "upload '%s': the run's %s/ directory cannot be opened: %s",
			            l->name, TRACKING_UPLOADS, strerror(err));
		}
	}
	if (fstatat(in->uploads_fd, l->file, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		return fail(cause, "upload '%s': %s/%s: %s", l->name, TRACKING_UPLOADS, l->file,
		            strerror(errno));
	}
	/* Under the hold the ingest took for its transaction (ingest below):
	 * a collection waits until the artifact's row is committed. */
	err = blob_put_file(r->d->blobs, in->uploads_fd, l->file, hex, &size);
	if (err == 0) {
		err = store_artifact_put(in->s, r->seq, l->name, (int64_t)size, hex,
		                         (int)(st.st_mode & 07777));
		if (err < 0) {
			return err;
		}
	}
	if (err == -ENOENT || err == -ELOOP || err == -EISDIR || err == -EINVAL || err == -EACCES) {
		return fail(cause, "upload '%s': %s/%s cannot be stored: %s", l->name,
		            TRACKING_UPLOADS, l->file, strerror(-err));
	}
	if (err < 0) {
		return err;
	}
	if (in->nunlink == in->cap) {
		size_t cap = in->cap ? in->cap * 2 : 8;
		char **u = realloc(in->unlink, cap * sizeof(*u));
		if (!u) {
			return 0; /* the copy stays; the directory goes with the run */
		}
		in->unlink = u;
		in->cap = cap;
	}
	in->unlink[in->nunlink] = strdup(l->file);
	if (in->unlink[in->nunlink]) {
		in->nunlink++;
	}
	return 0;
}

static int apply(struct ingest *in, const struct tracking_line *l, char **cause)
{
	int err;

	switch (l->op) {
	case TRACKING_METRIC:
		return apply_metric(in, l, cause);
	case TRACKING_TAG:
		err = store_run_tag_set(in->s, in->r->seq, l->name, l->value, TRACKING_TAGS_MAX);
		if (err == -E2BIG) {
			return fail(cause, "tag '%s': the run already has %d tags, the limit",
			            l->name, TRACKING_TAGS_MAX);
		}
		return err;
	case TRACKING_PROPERTY:
		err = store_run_property_add(in->s, in->r->seq, l->name, l->value,
		                             TRACKING_PROPERTIES_MAX);
		if (err == -E2BIG) {
			return fail(cause,
			            "property '%s': the run already has %d properties, the "
			            "limit",
			            l->name, TRACKING_PROPERTIES_MAX);
		}
		if (err == -EEXIST) {
			return fail(cause,
			            "property '%s' is already set to another value; "
			            "properties cannot change",
			            l->name);
		}
		return err;
	case TRACKING_UPLOAD:
		return apply_upload(in, l, cause);
	}
	return -EINVAL;
}

static int warn(struct ingest *in, int64_t offset, const char *cause)
{
	char *msg = msg_strdupf("%s line at byte %lld skipped: %s", TRACKING_FILE,
	                        (long long)offset, cause ? cause : "out of memory");
	int err;

	log_debug("run %s: %s", in->r->id, msg ? msg : cause);
	err =
	    store_run_warning_add(in->s, in->r->seq, util_now(), msg ? msg : "a line was skipped");
	free(msg);
	return err;
}

/* One line: stored, or skipped with a warning. < 0 only when the store
 * failed, and then nothing of the read may be committed. */
static int ingest_line(struct ingest *in, const char *text, size_t len, int64_t offset)
{
	struct tracking_line l;
	char *cause = NULL;
	int err;

	err = tracking_line_parse(text, len, &l, &cause);
	if (err == 0) {
		err = apply(in, &l, &cause);
		tracking_line_finish(&l);
	}
	if (err == -EINVAL) {
		err = warn(in, offset, cause);
	}
	free(cause);
	return err;
}

static ssize_t pread_full(int fd, char *buf, size_t len, int64_t offset)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(fd, buf + got, len - got, (off_t)(offset + (int64_t)got));
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			return -errno;
		}
		if (n == 0) {
			break;
		}
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* The offset of the first newline in [from, size), or -1. */
static int64_t find_newline(int fd, int64_t from, int64_t size, char *buf, size_t bufsize)
{
	while (from < size) {
		size_t want = (size_t)(size - from) < bufsize ? (size_t)(size - from) : bufsize;
		ssize_t n = pread_full(fd, buf, want, from);
		if (n <= 0) {
			return -1;
		}
		const char *nl = memchr(buf, '\n', (size_t)n);
		if (nl) {
			return from + (nl - buf);
		}
		from += n;
	}
	return -1;
}

static int ingest(struct run *r, bool final, int64_t budget)
{
	struct ingest in = {.r = r, .s = r->d->store, .uploads_fd = -1, .nseries = -1};
	char *path = util_path_join(r->dir, TRACKING_FILE), *buf = NULL;
	int64_t done = 0, size;
	struct stat st;
	int fd = -1, err = 0;

	if (!path) {
		return -ENOMEM;
	}
	/* The run owns the file: a FIFO or a link there must not hold the
	 * loop nor read what is not its. */
	fd = util_open_regular(AT_FDCWD, path, O_NOFOLLOW);
	if (fd < 0 || fstat(fd, &st) < 0) {
		err = fd == -ENOENT ? 0 : fd < 0 ? fd : -errno;
		fd = fd < 0 ? -1 : fd;
		goto out;
	}
	size = st.st_size;
	if (size <= r->tracking_offset) {
		goto out;
	}
	size_t bufsize =
	    size - r->tracking_offset < READ_MAX ? (size_t)(size - r->tracking_offset) : READ_MAX;
	buf = malloc(bufsize);
	if (!buf) {
		err = -ENOMEM;
		goto out;
	}
	while (r->tracking_offset < size && done < budget) {
		int64_t offset = r->tracking_offset;
		size_t want = (size_t)(size - offset) < bufsize ? (size_t)(size - offset) : bufsize;
		ssize_t n = pread_full(fd, buf, want, offset);
		int64_t used = 0;
		bool stop = false; /* this read is done with */
		bool wait = false; /* and nothing more can be stored now */

		if (n <= 0) {
			err = (int)n;
			break;
		}
		/* Held from before an upload's blob is put until its row is
		 * committed (or rolled back): see snapshot/blob_gc.c. */
		uint64_t hold = blob_hold(r->d->blobs);
		if ((err = store_begin(in.s)) < 0) {
			blob_release(r->d->blobs, hold);
			break;
		}
		while (used < n && !stop) {
			size_t len;
			enum tracking_next k =
			    tracking_next_line(buf + used, (size_t)(n - used), &len);

			if (k == TRACKING_NEXT_LINE) {
				err =
				    len > TRACKING_LINE_MAX
				        ? warn(&in, offset + used, "the line is longer than 1 MiB")
				        : ingest_line(&in, buf + used, len, offset + used);
				used += (int64_t)len + 1;
			} else if (k == TRACKING_NEXT_PARTIAL) {
				stop = true;
				if (offset + n < size) {
					/* Cut by the end of the read: the next one has it. */
				} else if (final) {
					/* A last line never finished by a process that
					 * has ended is taken as it is (if it parses). */
					err = ingest_line(&in, buf + used, (size_t)(n - used),
					                  offset + used);
					used = n;
				} else {
					wait = true; /* its end has not been written yet */
				}
			} else if (used > 0) {
				/* Store what came before; the next read starts at it. */
				stop = true;
			} else {
				/* Its end: in what was read, or further on. */
				const char *nl = memchr(buf, '\n', (size_t)n);
				int64_t end = nl ? offset + (nl - buf)
				                 : find_newline(fd, offset + n, size, buf, bufsize);
				stop = true;
				if (end < 0 && !final) {
					wait = true; /* its end has not been written yet */
					break;
				}
				char msg[96];
				snprintf(msg, sizeof(msg),
				         "the line is longer than 1 MiB (%lld bytes)",
				         (long long)((end < 0 ? size : end) - offset));
				err = warn(&in, offset, msg);
				used = (end < 0 ? size : end + 1) - offset;
			}
			if (err < 0) {
				break;
			}
		}
		if (err == 0) {
			err = rollups_flush(&in);
		}
		if (err == 0 && used > 0) {
			err = store_run_tracking_offset_set(in.s, r->seq, offset + used);
		}
		if (err == 0) {
			err = store_commit(in.s);
		}
		if (err < 0) {
			in.nroll = 0;
			store_rollback(in.s);
			blob_release(r->d->blobs, hold);
			log_error("run %s: storing what it wrote to %s failed: %s", r->id,
			          TRACKING_FILE, store_errmsg(in.s));
			break;
		}
		blob_release(r->d->blobs, hold);
		r->tracking_offset = offset + used;
		done += used;
		if (in.metrics) {
			/* Committed: a listener reading the store sees them. */
			in.metrics = false;
			run_notify_metric(r);
		}
		for (size_t i = 0; i < in.nunlink; i++) {
			unlinkat(in.uploads_fd, in.unlink[i], 0);
			free(in.unlink[i]);
		}
		in.nunlink = 0;
		if (wait || used == 0) {
			break;
		}
	}
out:
	for (size_t i = 0; i < in.nunlink; i++) {
		free(in.unlink[i]);
	}
	free(in.unlink);
	if (in.uploads_fd >= 0) {
		close(in.uploads_fd);
	}
	if (fd >= 0) {
		close(fd);
	}
	free(buf);
	free(path);
	return err;
}

int tracking_ingest(struct run *r, bool final)
{
	return ingest(r, final, final ? INT64_MAX : STEP_BUDGET);
}

int tracking_run_load(struct run *r)
{
	return store_run_tracking_get(r->d->store, r->seq, r->token, &r->tracking_offset);
}

const char *tracking_sdk_dir(void)
{
	const char *env = getenv("RUNYARD_SDK_DIR");

	return env && *env ? env : RUNYARD_SDK_DIR;
}

int tracking_env_add(struct run *r, char **env, size_t *n)
{
	const cJSON *pp = cJSON_GetObjectItemCaseSensitive(r->env, "PYTHONPATH");
	const char *base = cJSON_IsString(pp) ? pp->valuestring : getenv("PYTHONPATH");
	const char *sdk = tracking_sdk_dir();

	if (!r->token[0]) {
		char token[33];
		int err = util_random_hex(token, 16);
		if (err < 0 || (err = store_run_token_set(r->d->store, r->seq, token)) < 0) {
			return err;
		}
		memcpy(r->token, token, sizeof(token));
	}
	env[(*n)++] = msg_strdupf("RUNYARD_RUN_TOKEN=%s", r->token);
	env[(*n)++] = msg_strdupf("RUNYARD_TRACKING_FILE=%s/%s", r->dir, TRACKING_FILE);
	env[(*n)++] = base && *base ? msg_strdupf("PYTHONPATH=%s:%s", sdk, base)
	                            : msg_strdupf("PYTHONPATH=%s", sdk);
	return 0;
}

int tracking_sync(struct run *r, int64_t budget)
{
	return ingest(r, false, budget);
}

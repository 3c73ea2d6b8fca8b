/* Tracking: what a run writes from inside (metrics, tags, properties,
 * uploaded files) through <run dir>/tracking.jsonl, which the daemon tails
 * into the store, and the ops that read it back with or without the run's
 * token. The file format and the limits are in docs/tracking.md. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct run;

#define TRACKING_FILE "tracking.jsonl"
#define TRACKING_UPLOADS "uploads"

/* Limits, as in the cloud original; lengths are in characters (code points). */
#define TRACKING_LINE_MAX (1024 * 1024) /* bytes of one line, without its newline */
#define TRACKING_NAME_MAX 255           /* metric and column names */
#define TRACKING_KEY_MAX 100            /* tag and property keys */
#define TRACKING_VALUE_MAX 1000         /* tag and property values */
#define TRACKING_TAGS_MAX 50
#define TRACKING_PROPERTIES_MAX 50
#define TRACKING_PATH_MAX 1024     /* artifact names of uploads and images */
#define TRACKING_METRICS_MAX 10000 /* series per run, so a run's summary fits a reply */

enum tracking_op {
	TRACKING_METRIC,
	TRACKING_TAG,
	TRACKING_PROPERTY,
	TRACKING_UPLOAD,
};

enum tracking_kind {
	TRACKING_SCALAR,
	TRACKING_LIST,
	TRACKING_ROW,
	TRACKING_TABLE,
	TRACKING_IMAGE,
};

/* One line of tracking.jsonl, parsed and checked against every limit. */
struct tracking_line {
	cJSON *root; /* owns everything the pointers below point into */
	enum tracking_op op;
	const char *name;  /* metric name, tag or property key, upload's artifact name */
	const char *value; /* tag or property value; NULL: remove the tag */
	enum tracking_kind kind;
	const cJSON *values; /* metric: its points' values as JSON, or NULL when packed */
	const double *f64;   /* metric: its values packed ("values_f64"), or NULL */
	const cJSON *ts;     /* metric: an array as long as values, or one number */
	const double *ts64;  /* metric: the times packed ("ts_f64"), or NULL */
	const cJSON *steps;  /* metric: NULL, or an array of integers as long as values */
	const char *file;    /* upload: the file's name in the run's uploads/ directory */
	int count;           /* metric: how many points */
	double *packed;      /* owns f64 and ts64 */
};

/* Parse one line (without its newline). -EINVAL with a message in *cause
 * when it is not JSON, not UTF-8, not one of the shapes or over a limit;
 * -ENOMEM (and no message) when memory ran out. */
int tracking_line_parse(const char *text, size_t len, struct tracking_line *ret, char **cause);
void tracking_line_finish(struct tracking_line *l);

/* What the bytes at the start of buf hold. */
enum tracking_next {
	TRACKING_NEXT_LINE,     /* a whole line of *ret_len bytes, then a newline */
	TRACKING_NEXT_PARTIAL,  /* the start of a line not yet complete */
	TRACKING_NEXT_TOO_LONG, /* the start of a line over TRACKING_LINE_MAX */
};
enum tracking_next tracking_next_line(const char *buf, size_t len, size_t *ret_len);

/* Whether name can name an artifact: relative, at most TRACKING_PATH_MAX
 * bytes, no empty, "." or ".." component, valid UTF-8, no control
 * characters. */
bool tracking_valid_path(const char *name);

/* Store whatever whole lines tracking.jsonl has beyond what is stored, each
 * read's lines and the new offset in one transaction. Reads a bounded amount
 * per call; final: the process has ended, read to the end. */
int tracking_ingest(struct run *r, bool final);

/* Load the run's token and tracking offset from the store (at a restart). */
int tracking_run_load(struct run *r);

/* Add RUNYARD_RUN_TOKEN (made and stored on first use), RUNYARD_TRACKING_FILE
 * and PYTHONPATH (runyard's Python modules first, then the run's or the
 * daemon's PYTHONPATH) to env at *n. */
int tracking_env_add(struct run *r, char **env, size_t *n);

/* The Python modules' directory: $RUNYARD_SDK_DIR, else the build's. */
const char *tracking_sdk_dir(void);

/* Store up to budget more bytes of r's tracking.jsonl now (an op's "sync":
 * read your writes). */
int tracking_sync(struct run *r, int64_t budget);

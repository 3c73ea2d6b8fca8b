#include "render.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "msg.h"

#define COLUMN_GAP 2
/* Below this many columns for the last cell, cutting it helps nobody. */
#define MIN_LAST_WIDTH 12

static bool stdout_tty;
static bool stderr_tty;
static bool color;

void render_init(void)
{
	const char *term = getenv("TERM");

	stdout_tty = isatty(STDOUT_FILENO) == 1;
	stderr_tty = isatty(STDERR_FILENO) == 1;
	color = stdout_tty && !getenv("NO_COLOR") && !(term && strcmp(term, "dumb") == 0);
	if (!stdout_tty) {
		/* glibc ignores the size when it allocates the buffer itself
		 * (it takes the file's block size, 4 KiB for a pipe), so give
		 * it one. */
		static char buf[64 * 1024];
		setvbuf(stdout, buf, _IOFBF, sizeof(buf));
	}
}

bool render_stdout_tty(void)
{
	return stdout_tty;
}

bool render_stderr_tty(void)
{
	return stderr_tty;
}

struct render_table {
	size_t ncols;
	size_t nrows; /* including the header row */
	size_t cap;
	char **cells; /* row-major */
	bool *right;
	size_t status_col;
};

struct render_table *render_table_create(size_t ncols, const char *const headers[])
{
	struct render_table *t = calloc(1, sizeof(*t));

	if (!t) {
		return NULL;
	}
	t->ncols = ncols;
	t->status_col = SIZE_MAX;
	t->right = calloc(ncols, sizeof(*t->right));
	if (!t->right || render_table_add_row(t, headers) < 0) {
		render_table_destroy(t);
		return NULL;
	}
	return t;
}

void render_table_destroy(struct render_table *t)
{
	if (!t) {
		return;
	}
	for (size_t i = 0; i < t->nrows * t->ncols; i++) {
		free(t->cells[i]);
	}
	free(t->cells);
	free(t->right);
	free(t);
}

void render_table_align_right(struct render_table *t, size_t col)
{
	if (col < t->ncols) {
		t->right[col] = true;
	}
}

void render_table_status_column(struct render_table *t, size_t col)
{
	t->status_col = col;
}

int render_table_add_row(struct render_table *t, const char *const cells[])
{
	if (t->nrows == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 16;
		char **n = realloc(t->cells, ncap * t->ncols * sizeof(*n));
		if (!n) {
			return -ENOMEM;
		}
		t->cells = n;
		t->cap = ncap;
	}
	char **row = t->cells + t->nrows * t->ncols;
	for (size_t i = 0; i < t->ncols; i++) {
		/* Tabs and newlines would break the columns; a command line
		 * or an error message may hold them. */
		row[i] = strdup(cells[i] ? cells[i] : "-");
		if (!row[i]) {
			while (i-- > 0) {
				free(row[i]);
			}
			return -ENOMEM;
		}
		for (char *p = row[i]; *p; p++) {
			if (*p == '\t' || *p == '\n' || *p == '\r') {
				*p = ' ';
			}
		}
	}
	t->nrows++;
	return 0;
}

/* Display width in code points: close enough for names, paths and commands
 * (wide CJK characters would count as one). */
static size_t width(const char *s)
{
	size_t w = 0;

	for (; *s; s++) {
		if (((unsigned char)*s & 0xC0) != 0x80) {
			w++;
		}
	}
	return w;
}

/* Byte length of the first n code points of s. */
static size_t prefix_bytes(const char *s, size_t n)
{
	size_t i = 0;

	while (s[i]) {
		if (((unsigned char)s[i] & 0xC0) != 0x80) {
			if (n == 0) {
				break;
			}
			n--;
		}
		i++;
	}
	return i;
}

static size_t terminal_columns(FILE *out)
{
	struct winsize ws;

	if (!isatty(fileno(out)) || ioctl(fileno(out), TIOCGWINSZ, &ws) < 0 || ws.ws_col == 0) {
		return 0;
	}
	return ws.ws_col;
}

void render_table_print(const struct render_table *t, FILE *out)
{
	size_t *w = calloc(t->ncols, sizeof(*w));
	size_t cols = terminal_columns(out);
	size_t last = t->ncols - 1;
	size_t last_max = SIZE_MAX;

	if (!w) {
		return;
	}
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			size_t cw = width(t->cells[r * t->ncols + c]);
			if (cw > w[c]) {
				w[c] = cw;
			}
		}
	}
	if (cols > 0 && !t->right[last]) {
		size_t used = 0;
		for (size_t c = 0; c < last; c++) {
			used += w[c] + COLUMN_GAP;
		}
		if (used + MIN_LAST_WIDTH <= cols) {
			last_max = cols - used;
		}
	}
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			const char *cell = t->cells[r * t->ncols + c];
			size_t cw = width(cell);
			const char *pre =
			    r > 0 && c == t->status_col ? render_status_color(cell) : "";
			const char *post = pre[0] ? render_color_reset() : "";
			size_t pad = w[c] - cw;

			if (c > 0) {
				fprintf(out, "%*s", COLUMN_GAP, "");
			}
			if (t->right[c]) {
				fprintf(out, "%*s%s%s%s", (int)pad, "", pre, cell, post);
			} else if (c == last) {
				if (cw > last_max) {
					/* Cut, and say so with an ellipsis. */
					fprintf(out, "%s%.*s…%s", pre,
					        (int)prefix_bytes(cell, last_max - 1), cell, post);
				} else {
					fprintf(out, "%s%s%s", pre, cell, post);
				}
			} else {
				fprintf(out, "%s%s%s%*s", pre, cell, post, (int)pad, "");
			}
		}
		fputc('\n', out);
	}
	free(w);
}

void render_duration(double secs, char buf[32])
{
	if (!isfinite(secs) || secs < 0) {
		snprintf(buf, 32, "-");
		return;
	}
	if (secs >= 1e12) {
		/* Past what the conversions below hold; no real run lasts this. */
		snprintf(buf, 32, "%.3gs", secs);
		return;
	}
	long ms = lround(secs * 1000);
	if (ms < 1000) {
		snprintf(buf, 32, "%ldms", ms);
		return;
	}
	/* Tenths up to a minute; a value that rounds to 60.0 is a minute. */
	if (lround(secs * 10) < 600) {
		snprintf(buf, 32, "%.1fs", secs);
		return;
	}
	long t = lround(secs);
	if (t < 3600) {
		snprintf(buf, 32, "%ldm %02lds", t / 60, t % 60);
	} else if (t < 86400) {
		snprintf(buf, 32, "%ldh %02ldm %02lds", t / 3600, t / 60 % 60, t % 60);
	} else {
		snprintf(buf, 32, "%ldd %02ldh %02ldm", t / 86400, t / 3600 % 24, t / 60 % 60);
	}
}

void render_time(const char *iso, char buf[32])
{
	double t;
	struct tm tm;

	if (!iso || msg_parse_time(iso, &t) < 0) {
		snprintf(buf, 32, "-");
		return;
	}
	time_t secs = (time_t)floor(t);
	if (!localtime_r(&secs, &tm) || strftime(buf, 32, "%Y-%m-%d %H:%M:%S", &tm) == 0) {
		snprintf(buf, 32, "-");
	}
}

void render_size(double bytes, char buf[32])
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
	size_t u = 0;

	if (!isfinite(bytes) || bytes < 0) {
		snprintf(buf, 32, "-");
		return;
	}
	if (bytes < 1024) {
		snprintf(buf, 32, "%.0f B", bytes);
		return;
	}
	bytes /= 1024;
	while (bytes >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		bytes /= 1024;
		u++;
	}
	snprintf(buf, 32, "%.1f %s", bytes, units[u]);
}

const char *render_status_color(const char *status)
{
	static const struct {
		const char *status;
		const char *sgr;
	} colors[] = {
	    {"Completed", "\033[32m"},       {"Failed", "\033[31m"},     {"Canceled", "\033[33m"},
	    {"CancelRequested", "\033[33m"}, {"Running", "\033[36m"},    {"Preparing", "\033[34m"},
	    {"Scaling", "\033[34m"},         {"Finalizing", "\033[34m"}, {"Queued", "\033[2m"},
	};

	if (!color || !status) {
		return "";
	}
	for (size_t i = 0; i < sizeof(colors) / sizeof(colors[0]); i++) {
		if (strcmp(colors[i].status, status) == 0) {
			return colors[i].sgr;
		}
	}
	return "";
}

const char *render_color_reset(void)
{
	return color ? "\033[0m" : "";
}

/* Characters that need no quoting in a POSIX shell word. */
static bool shell_safe(const char *s)
{
	if (!s[0]) {
		return false;
	}
	for (; *s; s++) {
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
		            "_@%+=:,./-",
		            *s)) {
			return false;
		}
	}
	return true;
}

char *render_command(const cJSON *command)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	const cJSON *arg;
	bool first = true;

	if (!f) {
		return NULL;
	}
	cJSON_ArrayForEach(arg, command)
	{
		const char *s = cJSON_IsString(arg) ? arg->valuestring : "?";
		if (!first) {
			fputc(' ', f);
		}
		first = false;
		if (shell_safe(s)) {
			fputs(s, f);
			continue;
		}
		fputc('\'', f);
		for (; *s; s++) {
			if (*s == '\'') {
				fputs("'\\''", f);
			} else {
				fputc(*s, f);
			}
		}
		fputc('\'', f);
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

int render_json(const cJSON *doc)
{
	char *text = cJSON_Print(doc);

	if (!text) {
		return -ENOMEM;
	}
	fputs(text, stdout);
	fputc('\n', stdout);
	free(text);
	return 0;
}

void render_json_array_begin(struct render_json_array *a, FILE *out)
{
	/* Nothing is written yet: a call that fails before the first element
	 * leaves stdout empty rather than holding half a document. */
	a->out = out;
	a->count = 0;
}

int render_json_array_add(struct render_json_array *a, const cJSON *item)
{
	char *text = cJSON_Print(item);

	if (!text) {
		return -ENOMEM;
	}
	fputs(a->count > 0 ? ",\n\t" : "[\n\t", a->out);
	/* Indent the element one level: JSON strings hold no raw newlines,
	 * so every newline in the text is formatting. */
	for (const char *p = text;;) {
		const char *nl = strchrnul(p, '\n');
		fwrite(p, 1, (size_t)(nl - p), a->out);
		if (!*nl) {
			break;
		}
		fputs("\n\t", a->out);
		p = nl + 1;
	}
	free(text);
	a->count++;
	return 0;
}

void render_json_array_end(struct render_json_array *a)
{
	fputs(a->count > 0 ? "\n]\n" : "[]\n", a->out);
}

void render_sparkline(const double *values, size_t n, char *buf)
{
	static const char *const bars[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
	double lo = INFINITY, hi = -INFINITY;
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (isfinite(values[i])) {
			lo = values[i] < lo ? values[i] : lo;
			hi = values[i] > hi ? values[i] : hi;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(values[i])) {
			buf[o++] = ' ';
			continue;
		}
		size_t k = hi > lo ? (size_t)((values[i] - lo) / (hi - lo) * 7.0 + 0.5) : 3;
		memcpy(buf + o, bars[k > 7 ? 7 : k], 3);
		o += 3;
	}
	buf[o] = '\0';
}

char *render_metric_value(const cJSON *value, size_t max)
{
	char *text, *out;

	if (cJSON_IsNumber(value)) {
		return msg_strdupf("%.6g", value->valuedouble);
	}
	text = cJSON_IsString(value) ? strdup(value->valuestring) : cJSON_PrintUnformatted(value);
	if (!text || width(text) <= max) {
		return text;
	}
	out = msg_strdupf("%.*s…", (int)prefix_bytes(text, max - 1), text);
	free(text);
	return out;
}

const char *render_log_prefix(const cJSON *line)
{
	const cJSON *stream = cJSON_GetObjectItemCaseSensitive(line, "stream");

	if (cJSON_IsString(stream) && strcmp(stream->valuestring, "environment") == 0) {
		return "[environment] ";
	}
	return "";
}

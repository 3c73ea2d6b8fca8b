/* Unit tests for ignore.c: git's wildmatch, gitignore line syntax, precedence
 * across nested files, the walk hooks and explanations. Exit 0 on success.
 * (tests/integration/test_ignore_oracle.py compares against git itself.) */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "blob.h"
#include "ignore.h"
#include "snapshot.h"

static char base[64];
static const char *current = "setup";

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "FAIL %s:%d [%s]: ", __FILE__, __LINE__, current);         \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

static char *P(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *P(const char *fmt, ...)
{
	static char ring[8][4096];
	static int k;
	char *buf = ring[k++ % 8];
	int n = snprintf(buf, 4096, "%s/", base);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf + n, 4096 - (size_t)n, fmt, ap);
	va_end(ap);
	return buf;
}

static void cleanup(void)
{
	char cmd[128];

	if (base[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
		if (system(cmd) != 0) {
			fprintf(stderr, "could not remove %s\n", base);
		}
	}
}

static void write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	CHECK(fd >= 0, "create %s: %s", path, strerror(errno));
	CHECK(write(fd, s, strlen(s)) == (ssize_t)strlen(s), "write %s", path);
	close(fd);
}

static void mkdirs(const char *path)
{
	char buf[4096];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *s = buf + 1; *s; s++) {
		if (*s == '/') {
			*s = '\0';
			mkdir(buf, 0755);
			*s = '/';
		}
	}
	mkdir(buf, 0755);
}

/* ---- wildmatch ---- */

struct gcase {
	const char *pattern, *text;
	int pathname; /* 1: WM_PATHNAME */
	int want;
};

/* Cases of git's wildmatch semantics (t/t3070 has many more of the same kind). */
static const struct gcase glob_cases[] = {
    {"foo", "foo", 1, 1},
    {"bar", "foo", 1, 0},
    {"", "", 1, 1},
    {"???", "foo", 1, 1},
    {"??", "foo", 1, 0},
    {"*", "foo", 1, 1},
    {"f*", "foo", 1, 1},
    {"*f", "foo", 1, 0},
    {"*foo*", "foo", 1, 1},
    {"*ob*a*r*", "foobar", 1, 1},
    {"*ab", "aaaaaaabababab", 1, 1},
    {"foo\\*", "foo*", 1, 1},
    {"foo\\*bar", "foobar", 1, 0},
    {"f\\\\oo", "f\\oo", 1, 1},
    {"*[al]?", "ball", 1, 1},
    {"[ten]", "ten", 1, 0},
    {"**[!te]", "ten", 1, 1},
    {"**[!ten]", "ten", 1, 0},
    {"t[a-g]n", "ten", 1, 1},
    {"t[!a-g]n", "ten", 1, 0},
    {"t[!a-g]n", "ton", 1, 1},
    {"t[^a-g]n", "ton", 1, 1},
    {"a[]]b", "a]b", 1, 1},
    {"a[]-]b", "a-b", 1, 1},
    {"a[]-]b", "a]b", 1, 1},
    {"a[]-]b", "aab", 1, 0},
    {"a[]a-]b", "aab", 1, 1},
    {"]", "]", 1, 1},
    {"foo*bar", "foo/baz/bar", 1, 0},
    {"foo*bar", "foo/baz/bar", 0, 1},
    {"foo**bar", "foo/baz/bar", 1, 0},
    {"foo**bar", "foobazbar", 1, 1},
    {"foo/**/bar", "foo/baz/bar", 1, 1},
    {"foo/**/**/bar", "foo/baz/bar", 1, 1},
    {"foo/**/bar", "foo/b/a/z/bar", 1, 1},
    {"foo/**/bar", "foo/bar", 1, 1},
    {"foo/**/**/bar", "foo/bar", 1, 1},
    {"foo?bar", "foo/bar", 1, 0},
    {"foo[/]bar", "foo/bar", 1, 0},
    {"foo[^a-z]bar", "foo/bar", 1, 0},
    {"f[^eiu][^eiu][^eiu][^eiu][^eiu]r", "foo/bar", 1, 0},
    {"f[^eiu][^eiu][^eiu][^eiu][^eiu]r", "foo-bar", 1, 1},
    {"**/foo", "foo", 1, 1},
    {"**/foo", "XXX/foo", 1, 1},
    {"**/foo", "bar/baz/foo", 1, 1},
    {"*/foo", "bar/baz/foo", 1, 0},
    {"**/bar*", "foo/bar/baz", 1, 0},
    {"**/bar/*", "deep/foo/bar/baz", 1, 1},
    {"**/bar/*", "deep/foo/bar/baz/", 1, 0},
    {"**/bar/**", "deep/foo/bar/baz/", 1, 1},
    {"**/bar/*", "deep/foo/bar", 1, 0},
    {"**/bar/**", "deep/foo/bar/", 1, 1},
    {"**/bar**", "foo/bar/baz", 1, 0},
    {"*/bar/**", "deep/foo/bar/baz/x", 1, 0},
    {"*/bar/**", "foo/bar/baz/x", 1, 1},
    {"**/bar/*/*", "deep/foo/bar/baz/x", 1, 1},
    {"a/**", "a/b/c", 1, 1},
    {"a/**", "a", 1, 0},
    {"a/**/", "a/b/", 1, 1},
    {"**", "a/b/c", 1, 1},
    {"*", "a/b", 1, 0},
    {"[[:alpha:]][[:digit:]][[:upper:]]", "a1B", 1, 1},
    {"[[:digit:][:upper:][:space:]]", "a", 1, 0},
    {"[[:digit:][:upper:][:space:]]", "A", 1, 1},
    {"[[:digit:][:upper:][:space:]]", "1", 1, 1},
    {"[[:digit:][:upper:][:space:]]", " ", 1, 1},
    {"[[:digit:][:upper:][:spaci:]]", "1", 1, 0},
    {"[[:xdigit:]]", "f", 1, 1},
    {"[[:xdigit:]]", "g", 1, 0},
    {"[[:punct:]]", "!", 1, 1},
    {"[[:punct:]]", "a", 1, 0},
    {"[a-c[:digit:]x-z]", "5", 1, 1},
    {"[a-c[:digit:]x-z]", "b", 1, 1},
    {"[a-c[:digit:]x-z]", "q", 1, 0},
    {"[[:]", "[", 1, 1}, /* not a class: "[" and ":" are members */
    {"[", "[", 1, 0},
    {"a[", "a[", 1, 0},
    {"\\", "\\", 1, 0}, /* a trailing backslash matches nothing */
    {"[\\]]", "]", 1, 1},
    {"[\\\\-^]", "]", 1, 1},
    {"[\\\\-^]", "[", 1, 0},
    {"[\\1-\\3]", "2", 1, 1},
    {"[!]-]", "]", 1, 0},
    {"[!]-]", "a", 1, 1},
    {"-*-*-*-*-*-*-12-*-*-*-m-*-*-*", "-adobe-courier-bold-o-normal--12-120-75-75-m-70-iso8859-1",
     1, 1},
    {"-*-*-*-*-*-*-12-*-*-*-m-*-*-*", "-adobe-courier-bold-o-normal--12-120-75-75-X-70-iso8859-1",
     1, 0},
    {"XXX/*/*/*/*/*/*/12/*/*/*/m/*/*/*",
     "XXX/adobe/courier/bold/o/normal//12/120/75/75/m/70/iso8859/1", 1, 1},
    {"**/*a*b*g*n*t", "abcd/abcdefg/abcdefghijk/abcdefghijklmnop.txt", 1, 1},
    {"**/*a*b*g*n*t", "abcd/abcdefg/abcdefghijk/abcdefghijklmnop.txtz", 1, 0},
    {"*/*/*", "foo/bb/aa/rr", 1, 0},
    {"**/**/**", "foo/bb/aa/rr", 1, 1},
    {"*X*i", "abcXdefXghi", 1, 1},
    {"*/*X*/*/*i", "ab/cXd/efXg/hi", 1, 1},
    {"**/*X*/**/*i", "ab/cXd/efXg/hi", 1, 1},
};

/* Patterns that make a backtracking matcher take exponential time must not. */
static void test_glob_time(void)
{
	static const char *const pats[] = {"*a*a*a*a*a*a*a*a*a*a*a*a*b", "-*-*-*-*-*-*-*-*-*-*-*-x",
	                                   "**a**a**a**a**a**a**a**a**b",
	                                   "*a*a*a*a*a*a*a*a*a*a*b/c"};
	char text[200];
	struct timespec t0, t1;

	current = "wildmatch time";
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t i = 0; i < sizeof(pats) / sizeof(pats[0]); i++) {
		for (int slash = 0; slash < 2; slash++) {
			memset(text, i == 1 ? '-' : 'a', sizeof(text) - 1);
			text[sizeof(text) - 1] = '\0';
			if (slash) {
				text[100] = '/';
			}
			CHECK(!ignore_glob(pats[i], text, true) &&
			          !ignore_glob(pats[i], text, false),
			      "'%s' must not match", pats[i]);
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	CHECK(t1.tv_sec - t0.tv_sec < 2, "pathological patterns took %lld s",
	      (long long)(t1.tv_sec - t0.tv_sec));
}

static void test_glob(void)
{
	current = "wildmatch";
	for (size_t i = 0; i < sizeof(glob_cases) / sizeof(glob_cases[0]); i++) {
		const struct gcase *c = &glob_cases[i];
		bool got = ignore_glob(c->pattern, c->text, c->pathname);
		CHECK(got == (c->want != 0), "'%s' against '%s'%s: %s, expected %s", c->pattern,
		      c->text, c->pathname ? " (pathname)" : "", got ? "match" : "no match",
		      c->want ? "match" : "no match");
	}
}

/* ---- pattern lists ---- */

/* A matcher with the given files: pairs of (directory, content), NULL-ended. */
static struct ignore *with(const char *name, ...)
{
	struct ignore *ig = NULL;
	va_list ap;
	const char *dir;

	CHECK(ignore_create(name, &ig) == 0, "ignore_create");
	va_start(ap, name);
	while ((dir = va_arg(ap, const char *))) {
		const char *content = va_arg(ap, const char *);
		CHECK(ignore_push_buf(ig, dir, content, content ? strlen(content) : 0) == 0,
		      "push %s", dir);
	}
	va_end(ap);
	return ig;
}

static void expect(struct ignore *ig, const char *path, bool is_dir, enum ignore_result want,
                   const char *want_source, unsigned want_line, const char *want_pattern)
{
	struct ignore_match m = {0};
	enum ignore_result got = ignore_match_path(ig, path, is_dir, &m);
	static const char *const names[] = {"none", "excluded", "included"};

	CHECK(got == want, "%s%s: %s, expected %s (by %s:%u:%s)", path, is_dir ? "/" : "",
	      names[got], names[want], got ? m.source : "-", got ? m.line : 0,
	      got ? m.pattern : "-");
	if (want != IGNORE_NONE && want_source) {
		CHECK(strcmp(m.source, want_source) == 0 && m.line == want_line &&
		          strcmp(m.pattern, want_pattern) == 0,
		      "%s: decided by %s:%u:%s, expected %s:%u:%s", path, m.source, m.line,
		      m.pattern, want_source, want_line, want_pattern);
	}
}

static void test_syntax(void)
{
	struct ignore *ig;

	current = "comments, escapes, blank lines";
	ig = with(".gitignore", "", "# comment\n\n\\#hash\n\\!bang\n!neg\n  # not a comment\n",
	          NULL);
	expect(ig, "# comment", false, IGNORE_NONE, NULL, 0, NULL);
	expect(ig, "#hash", false, IGNORE_EXCLUDED, ".gitignore", 3, "\\#hash");
	expect(ig, "!bang", false, IGNORE_EXCLUDED, ".gitignore", 4, "\\!bang");
	expect(ig, "neg", false, IGNORE_INCLUDED, ".gitignore", 5, "!neg");
	expect(ig, "  # not a comment", false, IGNORE_EXCLUDED, ".gitignore", 6,
	       "  # not a comment");
	ignore_destroy(ig);

	current = "trailing spaces";
	ig = with(".gitignore", "", "a  \nb\\ \nc\\  \nd \\ \ne\\\\ \n", NULL);
	expect(ig, "a", false, IGNORE_EXCLUDED, ".gitignore", 1, "a");
	expect(ig, "a  ", false, IGNORE_NONE, NULL, 0, NULL);
	expect(ig, "b ", false, IGNORE_EXCLUDED, ".gitignore", 2, "b\\ ");
	expect(ig, "b", false, IGNORE_NONE, NULL, 0, NULL);
	expect(ig, "c ", false, IGNORE_EXCLUDED, ".gitignore", 3, "c\\ ");
	expect(ig, "d  ", false, IGNORE_EXCLUDED, ".gitignore", 4, "d \\ ");
	expect(ig, "e\\", false, IGNORE_EXCLUDED, ".gitignore", 5, "e\\\\");
	ignore_destroy(ig);

	current = "CRLF, byte order mark, no final newline, tabs kept";
	ig = with(".gitignore", "",
	          "\xEF\xBB\xBF"
	          "first\r\nsecond\t\nlast",
	          NULL);
	expect(ig, "first", false, IGNORE_EXCLUDED, ".gitignore", 1, "first");
	expect(ig, "second\t", false, IGNORE_EXCLUDED, ".gitignore", 2, "second\t");
	expect(ig, "second", false, IGNORE_NONE, NULL, 0, NULL);
	expect(ig, "last", false, IGNORE_EXCLUDED, ".gitignore", 3, "last");
	ignore_destroy(ig);

	current = "negation: the last match wins";
	ig = with(".amlignore", "", "*.tmp\n!keep.tmp\n*.log\n!*.log\nx.log\n", NULL);
	expect(ig, "a.tmp", false, IGNORE_EXCLUDED, ".amlignore", 1, "*.tmp");
	expect(ig, "keep.tmp", false, IGNORE_INCLUDED, ".amlignore", 2, "!keep.tmp");
	expect(ig, "sub/keep.tmp", false, IGNORE_INCLUDED, ".amlignore", 2, "!keep.tmp");
	expect(ig, "a.log", false, IGNORE_INCLUDED, ".amlignore", 4, "!*.log");
	expect(ig, "x.log", false, IGNORE_EXCLUDED, ".amlignore", 5, "x.log");
	ignore_destroy(ig);

	current = "directories only";
	ig = with(".gitignore", "", "build/\ncache/*/\n", NULL);
	expect(ig, "build", true, IGNORE_EXCLUDED, ".gitignore", 1, "build/");
	expect(ig, "build", false, IGNORE_NONE, NULL, 0, NULL);
	expect(ig, "src/build", true, IGNORE_EXCLUDED, ".gitignore", 1, "build/");
	expect(ig, "cache/x", true, IGNORE_EXCLUDED, ".gitignore", 2, "cache/*/");
	expect(ig, "cache/x", false, IGNORE_NONE, NULL, 0, NULL);
	ignore_destroy(ig);

	current = "anchoring";
	ig = with(".gitignore", "", "/top\nmid/dle\nany\n", NULL);
	expect(ig, "top", false, IGNORE_EXCLUDED, ".gitignore", 1, "/top");
	expect(ig, "sub/top", false, IGNORE_NONE, NULL, 0, NULL);
	expect(ig, "mid/dle", false, IGNORE_EXCLUDED, ".gitignore", 2, "mid/dle");
	expect(ig, "x/mid/dle", false, IGNORE_NONE, NULL, 0, NULL);
	expect(ig, "x/y/any", false, IGNORE_EXCLUDED, ".gitignore", 3, "any");
	ignore_destroy(ig);

	current = "double stars";
	ig = with(".gitignore", "", "**/logs\nout/**\na/**/z\n**/deep/**/x.*\n", NULL);
	expect(ig, "logs", true, IGNORE_EXCLUDED, ".gitignore", 1, "**/logs");
	expect(ig, "p/q/logs", false, IGNORE_EXCLUDED, ".gitignore", 1, "**/logs");
	expect(ig, "out", true, IGNORE_NONE, NULL, 0, NULL);
	expect(ig, "out/f", false, IGNORE_EXCLUDED, ".gitignore", 2, "out/**");
	expect(ig, "out/g/h", false, IGNORE_EXCLUDED, ".gitignore", 2, "out/**");
	expect(ig, "a/z", false, IGNORE_EXCLUDED, ".gitignore", 3, "a/**/z");
	expect(ig, "a/b/c/z", false, IGNORE_EXCLUDED, ".gitignore", 3, "a/**/z");
	expect(ig, "b/a/z", false, IGNORE_NONE, NULL, 0, NULL);
	expect(ig, "r/deep/s/t/x.c", false, IGNORE_EXCLUDED, ".gitignore", 4, "**/deep/**/x.*");
	ignore_destroy(ig);

	current = "git's literal prefix (fo** then /bar)";
	ig = with(".gitignore", "", "fo**/bar\n", NULL);
	expect(ig, "fo/x/y/bar", false, IGNORE_EXCLUDED, ".gitignore", 1, "fo**/bar");
	expect(ig, "foo/bar", false, IGNORE_EXCLUDED, ".gitignore", 1, "fo**/bar");
	ignore_destroy(ig);

	current = "degenerate lines";
	ig = with(".gitignore", "", "!\n/\n \n\\\n", NULL);
	expect(ig, "x", false, IGNORE_NONE, NULL, 0, NULL);
	expect(ig, "x", true, IGNORE_NONE, NULL, 0, NULL);
	ignore_destroy(ig);

	current = "a NUL byte ends the line";
	{
		static const char buf[] = "ab\0cd\nef\n";
		CHECK(ignore_create(".gitignore", &ig) == 0, "create");
		CHECK(ignore_push_buf(ig, "", buf, sizeof(buf) - 1) == 0, "push");
		expect(ig, "ab", false, IGNORE_EXCLUDED, ".gitignore", 1, "ab");
		expect(ig, "ef", false, IGNORE_EXCLUDED, ".gitignore", 2, "ef");
		ignore_destroy(ig);
	}
}

static void test_nesting(void)
{
	struct ignore *ig;

	current = "deeper files decide first";
	ig = with(".amlignore", "", "*.csv\n!top.dat\n", "data", "!keep.csv\n*.dat\n", "data/raw",
	          "/local\n", NULL);
	expect(ig, "data/a.csv", false, IGNORE_EXCLUDED, ".amlignore", 1, "*.csv");
	expect(ig, "data/keep.csv", false, IGNORE_INCLUDED, "data/.amlignore", 1, "!keep.csv");
	expect(ig, "data/top.dat", false, IGNORE_EXCLUDED, "data/.amlignore", 2, "*.dat");
	expect(ig, "data/raw/local", false, IGNORE_EXCLUDED, "data/raw/.amlignore", 1, "/local");
	expect(ig, "data/raw/x/local", false, IGNORE_NONE, NULL, 0, NULL);
	ignore_destroy(ig);

	current = "patterns with a slash are relative to their file";
	ig = with(".gitignore", "", NULL, "sub", "a/b\n/c\n", NULL);
	expect(ig, "sub/a/b", false, IGNORE_EXCLUDED, "sub/.gitignore", 1, "a/b");
	expect(ig, "sub/c", false, IGNORE_EXCLUDED, "sub/.gitignore", 2, "/c");
	expect(ig, "sub/x/c", false, IGNORE_NONE, NULL, 0, NULL);
	expect(ig, "subx/a/b", false, IGNORE_NONE, NULL, 0, NULL);
	ignore_destroy(ig);

	current = "pop";
	ig = with(".gitignore", "", "", "d", "x\n", NULL);
	expect(ig, "d/x", false, IGNORE_EXCLUDED, "d/.gitignore", 1, "x");
	ignore_pop_dir(ig);
	expect(ig, "e/x", false, IGNORE_NONE, NULL, 0, NULL);
	ignore_destroy(ig);
	ignore_destroy(NULL);
}

/* ---- with a tree: the walk, the snapshot, explanations ---- */

static bool in_manifest(struct blobstore *bs, const char *id, const char *path)
{
	char *buf = NULL;
	size_t len;
	cJSON *j, *e;
	bool found = false;

	CHECK(blob_read_all(bs, id, 1 << 20, &buf, &len) == 0, "read manifest");
	j = cJSON_Parse(buf);
	free(buf);
	cJSON_ArrayForEach(e, cJSON_GetObjectItem(j, "entries"))
	{
		if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(e, "path")), path) == 0) {
			found = true;
		}
	}
	cJSON_Delete(j);
	return found;
}

static void make_tree(void)
{
	mkdirs(P("t/data/keep"));
	mkdirs(P("t/sub/data"));
	mkdirs(P("t/src/.git"));
	mkdirs(P("t/.git/objects"));
	mkdirs(P("t/nested/inner"));
	write_str(P("t/.amlignore"), "*.tmp\ndata/\n!keep.tmp\n!data/keep/\n!/sub/data/\n");
	write_str(P("t/.gitignore"), "*.py\n"); /* not read: .amlignore is there */
	write_str(P("t/a.tmp"), "x");
	write_str(P("t/keep.tmp"), "x");
	write_str(P("t/main.py"), "x");
	write_str(P("t/data/big.csv"), "x");
	write_str(P("t/data/keep/k.csv"), "x");
	write_str(P("t/sub/data/inner.csv"), "x");
	write_str(P("t/src/.git/HEAD"), "x");
	write_str(P("t/src/ok.c"), "x");
	write_str(P("t/.git/config"), "x");
	write_str(P("t/nested/.amlignore"), "inner/\n!a.tmp\n");
	write_str(P("t/nested/a.tmp"), "x");
	write_str(P("t/nested/b.tmp"), "x");
	write_str(P("t/nested/inner/f"), "x");
	CHECK(symlink("../../outside", P("t/nested/.gitignore")) == 0, "symlink");
}

static void test_walk(struct blobstore *bs)
{
	struct snapshot_opts opts = {.matcher = &ignore_walk_ops};
	struct snapshot_info info;
	struct ignore *ig;
	char *cause = NULL;
	int fd;

	current = "walk with the matcher";
	fd = open(P("t"), O_RDONLY | O_DIRECTORY);
	CHECK(fd >= 0, "open t");
	CHECK(strcmp(ignore_choose(fd), ".amlignore") == 0, "t has an .amlignore");
	CHECK(ignore_create(ignore_choose(fd), &ig) == 0, "create");
	close(fd);
	opts.matcher_ud = ig;
	CHECK(snapshot_take_with(bs, P("t"), &opts, &info, &cause) == 0, "take: %s",
	      cause ? cause : "?");
	{
		static const char *const taken[] = {
		    ".amlignore", ".gitignore",   "keep.tmp",          "main.py",
		    "src/ok.c",   "nested/a.tmp", "nested/.amlignore", "sub/data/inner.csv",
		};
		static const char *const left[] = {
		    "a.tmp",          "data/big.csv", "data/keep/k.csv",
		    "src/.git/HEAD",  ".git/config",  "nested/b.tmp",
		    "nested/inner/f", "data",         "nested/.gitignore",
		};
		for (size_t i = 0; i < sizeof(taken) / sizeof(taken[0]); i++) {
			CHECK(in_manifest(bs, info.id, taken[i]), "%s should be taken", taken[i]);
		}
		for (size_t i = 0; i < sizeof(left) / sizeof(left[0]); i++) {
			CHECK(!in_manifest(bs, info.id, left[i]), "%s should be left out", left[i]);
		}
	}
	snapshot_info_finish(&info);
	ignore_destroy(ig);
}

static void test_explain(void)
{
	struct ignore_explanation ex;
	char *cause = NULL;
	int fd = open(P("t"), O_RDONLY | O_DIRECTORY);

	current = "explain";
	CHECK(fd >= 0, "open");
	CHECK(ignore_explain(fd, ".amlignore", "a.tmp", false, &ex, &cause) == 0, "explain");
	CHECK(ex.result == IGNORE_EXCLUDED && strcmp(ex.source, ".amlignore") == 0 &&
	          ex.line == 1 && strcmp(ex.pattern, "*.tmp") == 0 && !ex.excluded_dir &&
	          S_ISREG(ex.mode),
	      "a.tmp by .amlignore:1:*.tmp");
	ignore_explanation_finish(&ex);

	CHECK(ignore_explain(fd, ".amlignore", "./data//keep/k.csv", false, &ex, &cause) == 0,
	      "explain");
	CHECK(ex.result == IGNORE_EXCLUDED && ex.excluded_dir &&
	          strcmp(ex.excluded_dir, "data") == 0 && strcmp(ex.pattern, "data/") == 0 &&
	          ex.line == 2,
	      "data/keep/k.csv is in the excluded directory data (%s)",
	      ex.excluded_dir ? ex.excluded_dir : "none");
	ignore_explanation_finish(&ex);

	CHECK(ignore_explain(fd, ".amlignore", "nested/a.tmp", false, &ex, &cause) == 0, "x");
	CHECK(ex.result == IGNORE_INCLUDED && strcmp(ex.source, "nested/.amlignore") == 0 &&
	          ex.line == 2 && strcmp(ex.pattern, "!a.tmp") == 0,
	      "nested/a.tmp re-included by nested/.amlignore:2");
	ignore_explanation_finish(&ex);

	CHECK(ignore_explain(fd, ".amlignore", "main.py", false, &ex, &cause) == 0, "x");
	CHECK(ex.result == IGNORE_NONE && !ex.source, "main.py matches nothing");
	ignore_explanation_finish(&ex);

	CHECK(ignore_explain(fd, ".amlignore", "gone/x.tmp", false, &ex, &cause) == 0, "x");
	CHECK(ex.missing && ex.result == IGNORE_EXCLUDED, "a missing path is still judged");
	ignore_explanation_finish(&ex);

	CHECK(ignore_explain(fd, ".amlignore", "newdir/data", true, &ex, &cause) == 0, "x");
	CHECK(ex.missing && ex.result == IGNORE_EXCLUDED, "a missing directory (given with /)");
	ignore_explanation_finish(&ex);

	CHECK(ignore_explain(fd, ".amlignore", "main.py/x", false, &ex, &cause) == 0, "x");
	CHECK(ex.not_dir && strcmp(ex.not_dir, "main.py") == 0, "below a file");
	ignore_explanation_finish(&ex);

	CHECK(ignore_explain(fd, ".amlignore", "../t/a.tmp", false, &ex, &cause) == -EINVAL,
	      "'..' refused");
	CHECK(cause && strstr(cause, "not inside"), "cause: %s", cause ? cause : "(none)");
	free(cause);
	cause = NULL;
	CHECK(ignore_explain(fd, ".amlignore", "/etc/passwd", false, &ex, &cause) == -EINVAL,
	      "absolute refused");
	free(cause);
	cause = NULL;
	close(fd);

	current = "ignore_choose without .amlignore";
	mkdirs(P("g"));
	write_str(P("g/.gitignore"), "x\n");
	fd = open(P("g"), O_RDONLY | O_DIRECTORY);
	CHECK(strcmp(ignore_choose(fd), ".gitignore") == 0, "g uses .gitignore");
	mkdirs(P("g/.amlignore")); /* a directory of that name does not count */
	CHECK(strcmp(ignore_choose(fd), ".gitignore") == 0, "g still uses .gitignore");
	close(fd);
}

static void test_push_errors(void)
{
	struct ignore *ig;
	char *cause = NULL;
	int fd, big;

	current = "an ignore file that is too large";
	mkdirs(P("big"));
	big = open(P("big/.gitignore"), O_WRONLY | O_CREAT, 0644);
	CHECK(big >= 0 && ftruncate(big, IGNORE_FILE_MAX + 1) == 0, "make a large file");
	close(big);
	fd = open(P("big"), O_RDONLY | O_DIRECTORY);
	CHECK(ignore_create(".gitignore", &ig) == 0, "create");
	CHECK(ignore_push_dir(ig, "big", fd, &cause) == -EFBIG, "over the size is refused");
	CHECK(cause && strstr(cause, "big/.gitignore") && strstr(cause, "larger"), "cause: %s",
	      cause ? cause : "(none)");
	free(cause);
	ignore_destroy(ig);
	close(fd);
}

int main(void)
{
	struct blobstore *bs = NULL;

	snprintf(base, sizeof(base), "/tmp/test-ignore-XXXXXX");
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 1;
	}
	atexit(cleanup);
	test_glob();
	test_glob_time();
	test_syntax();
	test_nesting();
	make_tree();
	CHECK(blob_store_open(P("store"), &bs) == 0, "store");
	test_walk(bs);
	test_explain();
	test_push_errors();
	blob_store_close(bs);
	printf("test-ignore: all passed\n");
	return 0;
}

/* Ignore rules with git's semantics (gitignore(5)), written against git's
 * documented and observed behaviour, which tests/integration checks against
 * git itself:
 *
 * - a file is read line by line; a UTF-8 byte order mark at its start is
 *   skipped; a CR before the LF is dropped; empty lines and lines starting
 *   with '#' are comments; trailing spaces are dropped unless escaped with
 *   '\'; a line is cut at a NUL byte;
 * - '!' negates; a trailing '/' makes the pattern match directories only;
 *   a pattern without any other '/' matches the last component at any depth
 *   below the file's directory, one with a '/' (leading or in the middle)
 *   matches the path relative to that directory;
 * - '*', '?', '[...]' (ranges, '!' or '^' negation, [:class:]) never match
 *   '/' in a path; "**" as a whole component matches any number of them;
 *   '\' makes the next character literal (so "\#" and "\!" start a pattern
 *   with a literal '#' or '!');
 * - the deepest ignore file decides first, and in a file the last matching
 *   line; an excluded directory is not walked, so nothing below it can be
 *   re-included.
 *
 * git compares a pattern's literal prefix (up to its first special
 * character) separately from the rest, which is then matched as a pattern
 * of its own: "fo**" followed by "/bar" matches "fo/x/y/bar". That is
 * reproduced here on purpose, since git is the oracle. */
#include "ignore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "msg.h"
#include "util.h"

#define P_NEGATIVE (1u << 0)
#define P_MUSTBEDIR (1u << 1)
#define P_NODIR (1u << 2)
#define P_ENDSWITH (1u << 3)

struct pattern {
	const char *pat;  /* without the '!' and the trailing '/', NUL-terminated */
	const char *text; /* the line as written (after trimming), for explanations */
	size_t len;
	size_t prefix; /* length of the literal part before the first special character */
	unsigned flags;
	unsigned line;
};

/* The patterns of one directory's ignore file. */
struct plist {
	char *base; /* the directory with a trailing '/', "" for the root */
	size_t baselen;
	char *source; /* the file relative to the root */
	char *pats;   /* the file's lines, cut for matching */
	char *texts;  /* the same lines, kept as written */
	struct pattern *p;
	size_t n;
};

struct ignore {
	char *filename;
	struct plist *lists;
	size_t depth, cap;
	char *err; /* the last push failure's message, for the walk */
};

/* ---- glob matching ---- */

enum { G_MATCH, G_NOMATCH, G_ABORT_ALL, G_ABORT_TO_STARSTAR };

static bool special(unsigned char c)
{
	return c == '*' || c == '?' || c == '[' || c == '\\';
}

/* The character classes, ASCII only, as git defines them. */
static bool in_class(const unsigned char *name, size_t len, unsigned char c, bool *ret_known)
{
	static const struct {
		const char *name;
		int kind;
	} classes[] = {
	    {"alnum", 0}, {"alpha", 1}, {"blank", 2}, {"cntrl", 3}, {"digit", 4},  {"graph", 5},
	    {"lower", 6}, {"print", 7}, {"punct", 8}, {"space", 9}, {"upper", 10}, {"xdigit", 11},
	};
	bool upper = c >= 'A' && c <= 'Z', lower = c >= 'a' && c <= 'z';
	bool digit = c >= '0' && c <= '9';
	bool print = c >= 0x20 && c <= 0x7e;
	bool space = c == ' ' || c == '\t' || c == '\n' || c == '\r';

	*ret_known = true;
	for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
		if (strlen(classes[i].name) != len || memcmp(classes[i].name, name, len) != 0) {
			continue;
		}
		switch (classes[i].kind) {
		case 0:
			return upper || lower || digit;
		case 1:
			return upper || lower;
		case 2:
			return c == ' ' || c == '\t';
		case 3:
			return c < 0x20 || c == 0x7f;
		case 4:
			return digit;
		case 5:
			return print && !space;
		case 6:
			return lower;
		case 7:
			return print;
		case 8:
			return print && !space && !upper && !lower && !digit;
		case 9:
			return space;
		case 10:
			return upper;
		case 11:
			return digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
		}
	}
	*ret_known = false;
	return false;
}

/* Match a bracket expression starting at *pp (on the '[') against c; *pp is
 * left on its closing ']'. Returns G_MATCH or G_NOMATCH, or G_ABORT_ALL for
 * an unterminated or malformed one (which then matches nothing at all). */
static int match_bracket(const unsigned char **pp, unsigned char c, bool pathname)
{
	const unsigned char *p = *pp;
	unsigned char pc = *++p, prev = 0;
	bool negated, matched = false;

	if (pc == '^') {
		pc = '!';
	}
	negated = pc == '!';
	if (negated) {
		pc = *++p;
	}
	/* The first character is a member even when it is ']'. */
	for (;;) {
		if (!pc) {
			return G_ABORT_ALL;
		}
		if (pc == '\\') {
			pc = *++p;
			if (!pc) {
				return G_ABORT_ALL;
			}
			matched |= c == pc;
		} else if (pc == '-' && prev && p[1] && p[1] != ']') {
			pc = *++p;
			if (pc == '\\') {
				pc = *++p;
				if (!pc) {
					return G_ABORT_ALL;
				}
			}
			matched |= c >= prev && c <= pc;
			pc = 0; /* a range cannot start another one */
		} else if (pc == '[' && p[1] == ':') {
			const unsigned char *name = p + 2, *q = name;
			bool known;
			while (*q && *q != ']') {
				q++;
			}
			if (!*q) {
				return G_ABORT_ALL;
			}
			if (q == name || q[-1] != ':') {
				/* Not "[:name:]": the '[' is an ordinary member, and
				 * what follows it is read as members too. */
				matched |= c == '[';
				pc = '[';
			} else {
				matched |= in_class(name, (size_t)(q - name - 1), c, &known);
				if (!known) {
					return G_ABORT_ALL;
				}
				p = q;
				pc = 0;
			}
		} else {
			matched |= c == pc;
		}
		prev = pc;
		pc = *++p;
		if (pc == ']') {
			break;
		}
	}
	*pp = p;
	if (matched == negated || (pathname && c == '/')) {
		return G_NOMATCH;
	}
	return G_MATCH;
}

static int glob_from(const unsigned char *p, const unsigned char *t, bool pathname)
{
	const unsigned char *start = p;

	for (; *p; p++, t++) {
		unsigned char pc = *p, tc = *t;
		bool slashes;
		int r;

		if (!tc && pc != '*') {
			return G_ABORT_ALL;
		}
		switch (pc) {
		case '\\':
			/* A trailing '\' matches nothing: its NUL is no character. */
			if (tc != *++p) {
				return G_NOMATCH;
			}
			continue;
		case '?':
			if (pathname && tc == '/') {
				return G_NOMATCH;
			}
			continue;
		case '[':
			r = match_bracket(&p, tc, pathname);
			if (r != G_MATCH) {
				return r;
			}
			continue;
		case '*':
			break;
		default:
			if (tc != pc) {
				return G_NOMATCH;
			}
			continue;
		}

		/* A run of stars: may it cross '/'? */
		if (p[1] == '*') {
			const unsigned char *before = p - 1;
			while (*p == '*') {
				p++;
			}
			if (!pathname) {
				slashes = true;
			} else if ((before < start || *before == '/') &&
			           (*p == '\0' || *p == '/' || (p[0] == '\\' && p[1] == '/'))) {
				/* "**" as a whole component: first try it as no
				 * directory at all ("a/" "**" "/b" matches "a/b"). */
				if (*p == '/' && glob_from(p + 1, t, pathname) == G_MATCH) {
					return G_MATCH;
				}
				slashes = true;
			} else {
				slashes = false;
			}
		} else {
			p++;
			slashes = !pathname;
		}

		if (*p == '\0') {
			/* Trailing: the rest, within this component unless slashes. */
			if (!slashes && strchr((const char *)t, '/')) {
				return G_NOMATCH;
			}
			return G_MATCH;
		}
		if (!slashes && *p == '/') {
			/* "*" then '/': the rest of this component. */
			const char *slash = strchr((const char *)t, '/');
			if (!slash) {
				return G_NOMATCH;
			}
			t = (const unsigned char *)slash;
			continue; /* the loop steps over the '/' in both */
		}
		for (;;) {
			if (!tc) {
				break;
			}
			if (!special(*p)) {
				/* Skip ahead to where the literal after the star
				 * could match. */
				while ((tc = *t) != '\0' && (slashes || tc != '/') && tc != *p) {
					t++;
				}
				if (!tc) {
					/* Not in the rest of the text: no later start of
					 * this star, nor of any star before it, can find
					 * it either. git answers "no match" here and lets
					 * the stars before try every position, which takes
					 * exponential time; stopping gives the same answer. */
					return G_ABORT_ALL;
				}
				if (tc != *p) {
					/* Stopped at a '/' this star cannot cross: not
					 * in this component, from any start in it; only
					 * a "**" further out may try another one. */
					return G_ABORT_TO_STARSTAR;
				}
			}
			r = glob_from(p, t, pathname);
			if (r != G_NOMATCH) {
				if (!slashes || r != G_ABORT_TO_STARSTAR) {
					return r;
				}
			} else if (!slashes && tc == '/') {
				return G_ABORT_TO_STARSTAR;
			}
			tc = *++t;
		}
		return G_ABORT_ALL;
	}
	return *t ? G_NOMATCH : G_MATCH;
}

bool ignore_glob(const char *pattern, const char *text, bool pathname)
{
	return glob_from((const unsigned char *)pattern, (const unsigned char *)text, pathname) ==
	       G_MATCH;
}

/* ---- pattern lists ---- */

static void plist_finish(struct plist *l)
{
	free(l->base);
	free(l->source);
	free(l->pats);
	free(l->texts);
	free(l->p);
	memset(l, 0, sizeof(*l));
}

/* Cut trailing spaces unless the last one is escaped. */
static void trim_trailing_spaces(char *s)
{
	char *cut = NULL;

	for (char *p = s; *p; p++) {
		if (*p == ' ') {
			if (!cut) {
				cut = p;
			}
			continue;
		}
		if (*p == '\\') {
			p++;
			if (!*p) {
				return;
			}
		}
		cut = NULL;
	}
	if (cut) {
		*cut = '\0';
	}
}

static size_t literal_length(const char *s)
{
	size_t n = 0;

	while (s[n] && !special((unsigned char)s[n])) {
		n++;
	}
	return n;
}

/* Parse one (already cut and trimmed) line of both copies into a pattern. */
static void parse_pattern(struct pattern *pt, char *pat, const char *text, unsigned line)
{
	size_t len;

	pt->flags = 0;
	pt->line = line;
	pt->text = text;
	if (*pat == '!') {
		pt->flags |= P_NEGATIVE;
		pat++;
	}
	len = strlen(pat);
	if (pat[0] == '*' && pat[1 + literal_length(pat + 1)] == '\0') {
		pt->flags |= P_ENDSWITH;
	}
	if (len && pat[len - 1] == '/') {
		pat[--len] = '\0';
		pt->flags |= P_MUSTBEDIR;
	}
	if (!memchr(pat, '/', len)) {
		pt->flags |= P_NODIR;
	}
	pt->prefix = literal_length(pat);
	pt->pat = pat;
	pt->len = len;
}

static int plist_parse(struct plist *l, const char *buf, size_t len)
{
	size_t n = 0, cap = 0, start;
	unsigned line = 1;

	if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) {
		buf += 3;
		len -= 3;
	}
	l->pats = malloc(len + 1);
	l->texts = malloc(len + 1);
	if (!l->pats || !l->texts) {
		return -ENOMEM;
	}
	memcpy(l->pats, buf, len);
	memcpy(l->texts, buf, len);
	l->pats[len] = l->texts[len] = '\0';
	start = 0;
	/* Each line ends at '\n' or at the end of the file. */
	for (size_t i = 0; i <= len; i++) {
		size_t end;
		if (i < len && buf[i] != '\n') {
			continue;
		}
		if (i > start && buf[start] != '#') {
			end = i;
			if (end > start && buf[end - 1] == '\r') {
				end--;
			}
			l->pats[end] = l->texts[end] = '\0';
			trim_trailing_spaces(l->pats + start);
			trim_trailing_spaces(l->texts + start);
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 16;
				struct pattern *np = realloc(l->p, ncap * sizeof(*np));
				if (!np) {
					return -ENOMEM;
				}
				l->p = np;
				cap = ncap;
			}
			parse_pattern(&l->p[n++], l->pats + start, l->texts + start, line);
		}
		line++;
		start = i + 1;
	}
	l->n = n;
	return 0;
}

int ignore_create(const char *filename, struct ignore **ret)
{
	struct ignore *ig = calloc(1, sizeof(*ig));

	if (!ig) {
		return -ENOMEM;
	}
	ig->filename = strdup(filename);
	if (!ig->filename) {
		free(ig);
		return -ENOMEM;
	}
	*ret = ig;
	return 0;
}

void ignore_destroy(struct ignore *ig)
{
	if (!ig) {
		return;
	}
	while (ig->depth > 0) {
		ignore_pop_dir(ig);
	}
	free(ig->lists);
	free(ig->filename);
	free(ig->err);
	free(ig);
}

const char *ignore_filename(const struct ignore *ig)
{
	return ig->filename;
}

const char *ignore_choose(int rootfd)
{
	struct stat st;

	if (fstatat(rootfd, IGNORE_FILE_AML, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode)) {
		return IGNORE_FILE_AML;
	}
	return IGNORE_FILE_GIT;
}

int ignore_push_buf(struct ignore *ig, const char *dirpath, const char *buf, size_t len)
{
	struct plist l = {0};
	int r;

	if (ig->depth == ig->cap) {
		size_t ncap = ig->cap ? ig->cap * 2 : 16;
		struct plist *nl = realloc(ig->lists, ncap * sizeof(*nl));
		if (!nl) {
			return -ENOMEM;
		}
		ig->lists = nl;
		ig->cap = ncap;
	}
	if (*dirpath) {
		l.base = msg_strdupf("%s/", dirpath);
		l.source = msg_strdupf("%s/%s", dirpath, ig->filename);
	} else {
		l.base = strdup("");
		l.source = strdup(ig->filename);
	}
	if (!l.base || !l.source) {
		r = -ENOMEM;
		goto fail;
	}
	l.baselen = strlen(l.base);
	if (buf) {
		r = plist_parse(&l, buf, len);
		if (r < 0) {
			goto fail;
		}
	}
	ig->lists[ig->depth++] = l;
	return 0;
fail:
	plist_finish(&l);
	return r;
}

/* Read the whole of fd (a regular file of the given size) into *ret. */
static int read_all(int fd, size_t size, char **ret, size_t *ret_len)
{
	char *buf = malloc(size + 1);
	size_t got = 0;

	if (!buf) {
		return -ENOMEM;
	}
	/* Read to the end even if the file grew since fstat, up to the cap. */
	for (;;) {
		ssize_t n;
		if (got == size) {
			char probe;
			n = read(fd, &probe, 1);
			if (n == 0) {
				break;
			}
			if (n < 0 && errno == EINTR) {
				continue;
			}
			if (n < 0) {
				free(buf);
				return -errno;
			}
			free(buf);
			return -EAGAIN;
		}
		n = read(fd, buf + got, size - got);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			int r = -errno;
			free(buf);
			return r;
		}
		if (n == 0) {
			break;
		}
		got += (size_t)n;
	}
	buf[got] = '\0';
	*ret = buf;
	*ret_len = got;
	return 0;
}

int ignore_push_dir(struct ignore *ig, const char *dirpath, int dirfd, char **cause)
{
	struct stat st;
	char *buf = NULL, eb[128];
	size_t len = 0;
	int fd, r;

	fd = openat(dirfd, ig->filename, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR || errno == ENXIO) {
			return ignore_push_buf(ig, dirpath, NULL, 0);
		}
		r = -errno;
		goto fail;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		close(fd);
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return ignore_push_buf(ig, dirpath, NULL, 0);
	}
	if ((uint64_t)st.st_size > IGNORE_FILE_MAX) {
		close(fd);
		r = -EFBIG;
		goto fail;
	}
	r = read_all(fd, (size_t)st.st_size, &buf, &len);
	close(fd);
	if (r == -EAGAIN) {
		r = -EFBIG; /* it grew past what fstat said: too large or changing */
	}
	if (r < 0) {
		goto fail;
	}
	r = ignore_push_buf(ig, dirpath, buf, len);
	free(buf);
	return r;
fail:
	if (cause) {
		const char *sep = *dirpath ? "/" : "";
		if (r == -EFBIG) {
			*cause = msg_strdupf("the ignore file %s%s%s is larger than %u bytes or "
			                     "changing; make it smaller",
			                     dirpath, sep, ig->filename, IGNORE_FILE_MAX);
		} else {
			*cause = msg_strdupf("cannot read the ignore file %s%s%s: %s", dirpath, sep,
			                     ig->filename, strerror_r(-r, eb, sizeof(eb)));
		}
	}
	return r;
}

void ignore_pop_dir(struct ignore *ig)
{
	if (ig->depth > 0) {
		plist_finish(&ig->lists[--ig->depth]);
	}
}

/* A pattern without '/' against the last component. */
static bool match_basename(const struct pattern *pt, const char *name, size_t namelen)
{
	if (pt->prefix == pt->len) {
		return namelen == pt->len && memcmp(name, pt->pat, namelen) == 0;
	}
	if (pt->flags & P_ENDSWITH) {
		size_t tail = pt->len - 1;
		return tail <= namelen && memcmp(pt->pat + 1, name + namelen - tail, tail) == 0;
	}
	return ignore_glob(pt->pat, name, false);
}

/* A pattern with a '/' against the path relative to the list's directory. */
static bool match_pathname(const struct pattern *pt, const struct plist *l, const char *path,
                           size_t pathlen)
{
	const char *pat = pt->pat, *name;
	size_t len = pt->len, prefix = pt->prefix, namelen;

	if (*pat == '/') {
		pat++;
		len--;
		prefix--;
	}
	if (pathlen < l->baselen || memcmp(path, l->base, l->baselen) != 0) {
		return false;
	}
	name = path + l->baselen;
	namelen = pathlen - l->baselen;
	if (prefix) {
		if (prefix > namelen || memcmp(pat, name, prefix) != 0) {
			return false;
		}
		pat += prefix;
		len -= prefix;
		name += prefix;
		namelen -= prefix;
		if (len == 0 && namelen == 0) {
			return true;
		}
	}
	return ignore_glob(pat, name, true);
}

enum ignore_result ignore_match_path(const struct ignore *ig, const char *path, bool is_dir,
                                     struct ignore_match *ret)
{
	size_t pathlen = strlen(path);
	const char *slash = strrchr(path, '/');
	const char *name = slash ? slash + 1 : path;
	size_t namelen = pathlen - (size_t)(name - path);

	for (size_t d = ig->depth; d-- > 0;) {
		const struct plist *l = &ig->lists[d];
		for (size_t i = l->n; i-- > 0;) {
			const struct pattern *pt = &l->p[i];
			bool hit;
			if ((pt->flags & P_MUSTBEDIR) && !is_dir) {
				continue;
			}
			if (pt->flags & P_NODIR) {
				hit = match_basename(pt, name, namelen);
			} else {
				hit = match_pathname(pt, l, path, pathlen);
			}
			if (!hit) {
				continue;
			}
			if (ret) {
				ret->source = l->source;
				ret->line = pt->line;
				ret->pattern = pt->text;
				ret->negated = pt->flags & P_NEGATIVE;
			}
			return (pt->flags & P_NEGATIVE) ? IGNORE_INCLUDED : IGNORE_EXCLUDED;
		}
	}
	return IGNORE_NONE;
}

/* ---- walk hooks ---- */

static int walk_enter_cb(void *ud, const char *path, int dirfd)
{
	struct ignore *ig = ud;

	free(ig->err);
	ig->err = NULL;
	return ignore_push_dir(ig, path, dirfd, &ig->err);
}

static void walk_leave_cb(void *ud, const char *path)
{
	(void)path;
	ignore_pop_dir(ud);
}

static bool walk_ignored_cb(void *ud, const struct walk_entry *e)
{
	return ignore_match_path(ud, e->path, e->kind == WALK_DIR, NULL) == IGNORE_EXCLUDED;
}

static char *walk_take_error_cb(void *ud)
{
	struct ignore *ig = ud;
	char *e = ig->err;

	ig->err = NULL;
	return e;
}

const struct walk_ops ignore_walk_ops = {
    .enter_dir = walk_enter_cb,
    .leave_dir = walk_leave_cb,
    .ignored = walk_ignored_cb,
    .take_error = walk_take_error_cb,
};

/* ---- explaining ---- */

void ignore_explanation_finish(struct ignore_explanation *e)
{
	if (!e) {
		return;
	}
	free(e->source);
	free(e->pattern);
	free(e->excluded_dir);
	free(e->not_dir);
	memset(e, 0, sizeof(*e));
}

static int set_match(struct ignore_explanation *ex, const struct ignore_match *m)
{
	ex->source = strdup(m->source);
	ex->pattern = strdup(m->pattern);
	ex->line = m->line;
	return ex->source && ex->pattern ? 0 : -ENOMEM;
}

int ignore_explain(int rootfd, const char *filename, const char *path, bool want_dir,
                   struct ignore_explanation *ret, char **cause)
{
	struct ignore_explanation ex = {0};
	struct ignore *ig = NULL;
	struct ignore_match m;
	const char *why;
	char *norm = NULL;
	int fd = -1, r;

	r = util_rel_normalise(path, true, &norm, &why);
	if (r < 0) {
		if (cause && r == -EINVAL) {
			*cause = msg_strdupf("path '%s' is not inside the source directory", path);
		}
		return r;
	}
	if (!*norm) {
		if (cause) {
			*cause = msg_strdupf("path '%s' is the source directory itself", path);
		}
		r = -EINVAL;
		goto out;
	}
	r = ignore_create(filename, &ig);
	if (r < 0) {
		goto out;
	}
	fd = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	r = ignore_push_dir(ig, "", fd, cause);
	if (r < 0) {
		goto out;
	}
	/* Down the ancestors, as the walk goes: each one is matched as a
	 * directory, and its own ignore file applies below it. */
	for (char *s = strchr(norm, '/'); s; s = strchr(s + 1, '/')) {
		struct stat st;
		const char *comp;
		char *prev;
		int nfd;

		*s = '\0';
		prev = strrchr(norm, '/');
		comp = prev ? prev + 1 : norm;
		if (ex.missing) {
			/* Below a missing directory: it would be a directory. */
			st.st_mode = S_IFDIR;
		} else if (fstatat(fd, comp, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno != ENOENT) {
				r = -errno;
				if (cause) {
					*cause = msg_strdupf("cannot look at %s: %s", norm,
					                     strerror(errno));
				}
				*s = '/';
				goto out;
			}
			ex.missing = true;
			st.st_mode = S_IFDIR;
		} else if (!S_ISDIR(st.st_mode)) {
			ex.not_dir = strdup(norm);
			*s = '/';
			r = ex.not_dir ? 0 : -ENOMEM;
			goto done;
		}
		if (ignore_match_path(ig, norm, true, &m) == IGNORE_EXCLUDED) {
			ex.result = IGNORE_EXCLUDED;
			ex.excluded_dir = strdup(norm);
			r = ex.excluded_dir ? set_match(&ex, &m) : -ENOMEM;
			*s = '/';
			goto done;
		}
		if (ex.missing) {
			r = ignore_push_buf(ig, norm, NULL, 0);
		} else {
			nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (nfd < 0) {
				r = -errno;
				if (cause) {
					*cause = msg_strdupf("cannot open the directory %s: %s",
					                     norm, strerror(errno));
				}
				*s = '/';
				goto out;
			}
			close(fd);
			fd = nfd;
			r = ignore_push_dir(ig, norm, fd, cause);
		}
		*s = '/';
		if (r < 0) {
			goto out;
		}
	}
	{
		const char *slash = strrchr(norm, '/');
		const char *leaf = slash ? slash + 1 : norm;
		struct stat st;
		bool is_dir = want_dir;
		if (!ex.missing && fstatat(fd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			ex.mode = st.st_mode;
			is_dir = S_ISDIR(st.st_mode);
		} else if (!ex.missing && errno != ENOENT) {
			r = -errno;
			if (cause) {
				*cause =
				    msg_strdupf("cannot look at %s: %s", norm, strerror(errno));
			}
			goto out;
		} else {
			ex.missing = true;
		}
		ex.result = ignore_match_path(ig, norm, is_dir, &m);
		if (ex.result != IGNORE_NONE) {
			r = set_match(&ex, &m);
		}
	}
done:
	if (r == 0) {
		*ret = ex;
		memset(&ex, 0, sizeof(ex));
	}
out:
	ignore_explanation_finish(&ex);
	ignore_destroy(ig);
	if (fd >= 0) {
		close(fd);
	}
	free(norm);
	return r;
}

/* Snapshots: which paths one takes (ignore check), and a run's snapshot as an archive. */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "connect.h"
#include "digest.h"
#include "download.h"
#include "json.h"
#include "msg.h"
#include "print.h"
#include "render.h"
#include "util.h"
#include "verb.h"
#include "commands/commands.h"

/* Long options without a short form. */
enum {
	OPT_SOURCE = VERB_OPT_FIRST,
	OPT_FORMAT,
};

/* Lexically normalise an absolute path: "." and empty components go, ".."
 * takes one back. */
static char *lexical_abs(const char *path)
{
	char *out = malloc(strlen(path) + 2);
	size_t o = 0;
	const char *p = path;

	if (!out) {
		return NULL;
	}
	while (*p) {
		const char *s = strchr(p, '/');
		size_t l = s ? (size_t)(s - p) : strlen(p);
		if (l == 2 && p[0] == '.' && p[1] == '.') {
			while (o > 0 && out[o - 1] != '/') {
				o--;
			}
			if (o > 0) {
				o--;
			}
		} else if (l > 0 && !(l == 1 && p[0] == '.')) {
			out[o++] = '/';
			memcpy(out + o, p, l);
			o += l;
		}
		p += l;
		if (*p == '/') {
			p++;
		}
	}
	if (o == 0) {
		out[o++] = '/';
	}
	out[o] = '\0';
	return out;
}

/* PATH as given as a path relative to the source directory src (absolute
 * and resolved): an absolute PATH must be inside src; a relative one is
 * relative to the current directory when that is inside src (as git
 * check-ignore takes it), else to src. A trailing '/' is kept: it says the
 * path is a directory. */
static int path_in_source(const char *src, const char *path, char **ret)
{
	size_t pl = strlen(path), sl = strlen(src);
	bool dir = pl > 0 && path[pl - 1] == '/';
	char *joined = NULL, *abs = NULL, *rel = NULL;
	char cwd[PATH_MAX];

	if (path[0] == '/') {
		joined = strdup(path);
	} else if (getcwd(cwd, sizeof(cwd)) &&
		   (strcmp(cwd, src) == 0 || (strncmp(cwd, src, sl) == 0 && cwd[sl] == '/'))) {
		joined = msg_strdupf("%s/%s", cwd, path);
	} else {
		joined = msg_strdupf("%s/%s", src, path);
	}
	abs = joined ? lexical_abs(joined) : NULL;
	if (abs && !(strncmp(abs, src, sl) == 0 && abs[sl] == '/')) {
		/* Perhaps through a symlink: resolve what exists of it. */
		char *slash = strrchr(abs, '/');
		char *dirpart = slash == abs ? strdup("/") : strndup(abs, (size_t)(slash - abs));
		char *real = dirpart ? realpath(dirpart, NULL) : NULL;
		if (real) {
			char *again = msg_strdupf("%s/%s", strcmp(real, "/") ? real : "", slash + 1);
			free(abs);
			abs = again;
		}
		free(real);
		free(dirpart);
	}
	if (abs && strncmp(abs, src, sl) == 0 && abs[sl] == '/' && abs[sl + 1]) {
		rel = msg_strdupf("%s%s", abs + sl + 1, dir ? "/" : "");
	}
	free(joined);
	free(abs);
	if (!rel) {
		fprintf(stderr, "runyard: %s is not inside the source directory %s\n", path, src);
		return VERB_EXIT_USAGE;
	}
	*ret = rel;
	return 0;
}

static int ignore_check_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{"source", required_argument, NULL, OPT_SOURCE},
		VERB_COMMON_OPTIONS,
		{0},
	};
	static const char *const headers[] = {"STATUS", "PATH", "WHY"};
	const char *source = NULL;
	cJSON *args = cJSON_CreateObject(), *paths = cJSON_CreateArray(), *result = NULL;
	struct render_table *t = NULL;
	const cJSON *it;
	char *src = NULL;
	int status = 0, c;

	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		switch (c) {
		case OPT_SOURCE:
			source = optarg;
			break;
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			status = VERB_HELP;
			goto out;
		default:
			status = verb_option_error(ctx, c, argv, options);
			goto out;
		}
	}
	status = verb_args(ctx, argc, argv);
	if (status) {
		goto out;
	}
	src = realpath(source ? source : ".", NULL);
	if (!src) {
		fprintf(stderr, "runyard: source directory %s: %s\n", source ? source : ".",
			strerror(errno));
		status = VERB_EXIT_USAGE;
		goto out;
	}
	for (int i = optind; i < argc; i++) {
		char *rel = NULL;
		status = path_in_source(src, argv[i], &rel);
		if (status) {
			goto out;
		}
		cJSON_AddItemToArray(paths, cJSON_CreateString(rel));
		free(rel);
	}
	cJSON_AddStringToObject(args, "source", src);
	cJSON_AddItemToObject(args, "paths", paths);
	paths = NULL;
	status = connect_call(ctx, "ignore.check", args, &result);
	if (status) {
		goto out;
	}
	if (ctx->json) {
		status = print_json(result);
		goto out;
	}
	t = render_table_create(3, headers);
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(result, "results")) {
		const char *st = json_str(it, "status"), *why = json_str(it, "reason");
		char *match = NULL;
		const char *cells[3];
		if (st && strcmp(st, "ignored") == 0 && json_str(it, "source")) {
			match = msg_strdupf("%s:%lld:%s%s%s%s", json_str(it, "source"),
					    json_int(it, "line", 0), json_str(it, "pattern"),
					    json_str(it, "directory") ? " (in ignored directory " : "",
					    json_str(it, "directory") ? json_str(it, "directory") : "",
					    json_str(it, "directory") ? "/)" : "");
			why = match;
		}
		cells[0] = st ? st : "?";
		cells[1] = json_str(it, "path") ? json_str(it, "path") : "?";
		cells[2] = why ? why : "";
		if (t && render_table_add_row(t, cells) < 0) {
			render_table_destroy(t);
			t = NULL;
		}
		free(match);
	}
	if (!t) {
		fprintf(stderr, "runyard: out of memory\n");
		status = VERB_EXIT_USAGE;
		goto out;
	}
	render_table_print(t, stdout);
out:
	render_table_destroy(t);
	cJSON_Delete(result);
	cJSON_Delete(paths);
	cJSON_Delete(args);
	free(src);
	return status;
}

static const struct verb ignore_check_entry = {
	.name = "check",
	.run = ignore_check_cb,
	.summary = "Explain whether paths would be taken into a snapshot",
	.usage = "Usage: runyard ignore check [--source DIR] [--json] PATH...\n"
		 "\n"
		 "For each PATH, say whether a snapshot of the source directory (default:\n"
		 "the current one) takes it, and if not, why: the ignore file, line and\n"
		 "pattern that exclude it (as 'git check-ignore -v' does), an ignored\n"
		 "directory above it, or its type. A relative PATH is relative to the\n"
		 "current directory when that is inside the source directory, else to\n"
		 "the source directory; a trailing '/' means a directory.\n"
		 "\n"
		 "  --source DIR  the source directory (default: the current one)\n"
		 "  --json        print the ignore.check result\n",
	.min_args = 1,
	.max_args = VERB_ANY,
	.missing = "no PATH to check",
};

static const struct verb *const ignore_verbs[] = {
	&ignore_check_entry,
	NULL,
};

const struct verb cmd_ignore_entry = {
	.name = "ignore",
	.subverbs = ignore_verbs,
	.summary = "Explain which paths a snapshot takes (ignore check)",
	.usage = "Usage: runyard ignore check [--source DIR] [--json] PATH...\n"
		 "\n"
		 "See 'runyard ignore check --help'.\n",
	.missing = "ignore needs a command: check",
};

/* The archive format a file name asks for, or NULL. */
static const char *format_of(const char *file)
{
	static const struct {
		const char *ext, *format;
	} exts[] = {
		{".tar.gz", "tar.gz"}, {".tgz", "tar.gz"},   {".tar.zst", "tar.zst"},
		{".tzst", "tar.zst"},  {".tar", "tar"},       {".zip", "zip"},
	};
	size_t fl = strlen(file);

	for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		size_t el = strlen(exts[i].ext);
		if (fl > el && strcmp(file + fl - el, exts[i].ext) == 0) {
			return exts[i].format;
		}
	}
	return NULL;
}

static int snapshot_cb(struct ctx *ctx, int argc, char **argv)
{
	static const struct option options[] = {
		{"output", required_argument, NULL, 'o'},
		{"format", required_argument, NULL, OPT_FORMAT},
		VERB_COMMON_OPTIONS,
		{0},
	};
	const char *run = NULL, *out_path = NULL, *format = NULL;
	cJSON *args = cJSON_CreateObject(), *result = NULL, *chunk = NULL;
	unsigned char *buf = NULL;
	size_t cap = 0;
	char *tmp = NULL, hex[65] = "", err[256];
	struct digest *hash = NULL;
	double size = 0, done = 0, export_id = 0;
	int status = 0, c, fd = -1;

	while ((c = getopt_long(argc, argv, ":o:h", options, NULL)) != -1) {
		switch (c) {
		case 'o':
			out_path = optarg;
			break;
		case OPT_FORMAT:
			format = optarg;
			break;
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			status = VERB_HELP;
			goto out;
		default:
			status = verb_option_error(ctx, c, argv, options);
			goto out;
		}
	}
	status = verb_arg(ctx, argc, argv, &run);
	if (status) {
		goto out;
	}
	if (!out_path) {
		status = verb_usage_error(ctx, "name the archive to write with -o FILE");
		goto out;
	}
	if (!format) {
		format = format_of(out_path);
	}
	if (!format) {
		status = verb_usage_error(ctx, "cannot tell the archive format of %s: name it .tar, "
					  ".tar.gz, .tar.zst or .zip, or pass --format",
				     out_path);
		goto out;
	}
	if (digest_new(&hash, err, sizeof(err)) < 0) {
		fprintf(stderr, "runyard: %s\n", err);
		status = VERB_EXIT_USAGE;
		goto out;
	}
	cJSON_AddStringToObject(args, "run", run);
	cJSON_AddStringToObject(args, "format", format);
	status = connect_call(ctx, "snapshot.export", args, &result);
	if (status) {
		goto out;
	}
	if (!json_num(result, "export", &export_id) || !json_num(result, "size", &size) ||
	    !json_str(result, "sha256")) {
		fprintf(stderr, "runyard: runyardd's snapshot.export reply is incomplete\n");
		status = VERB_EXIT_REFUSED;
		goto out;
	}
	{
		const char *slash = strrchr(out_path, '/');
		tmp = slash ? msg_strdupf("%.*s/.%s.%ld.part", (int)(slash - out_path), out_path,
					  slash + 1, (long)getpid())
			    : msg_strdupf(".%s.%ld.part", out_path, (long)getpid());
	}
	fd = tmp ? open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666) : -1;
	if (fd < 0) {
		fprintf(stderr, "runyard: cannot create %s: %s\n", tmp ? tmp : out_path,
			strerror(errno));
		status = VERB_EXIT_USAGE;
		goto out;
	}
	for (;;) {
		cJSON *rargs = cJSON_CreateObject();
		const char *data;
		size_t n = 0;
		cJSON_AddNumberToObject(rargs, "export", export_id);
		cJSON_AddNumberToObject(rargs, "offset", done);
		status = connect_call(ctx, "snapshot.export_read", rargs, &chunk);
		cJSON_Delete(rargs);
		if (status) {
			goto out;
		}
		data = json_str(chunk, "data");
		if (!data || digest_base64_decode(data, &buf, &cap, &n) < 0) {
			fprintf(stderr, "runyard: runyardd sent a chunk that is not base64\n");
			status = VERB_EXIT_REFUSED;
			goto out;
		}
		if (download_write_all(fd, buf, n) < 0) {
			fprintf(stderr, "runyard: cannot write %s: %s\n", tmp, strerror(errno));
			status = VERB_EXIT_USAGE;
			goto out;
		}
		digest_update(hash, buf, n);
		done += (double)n;
		download_progress(out_path, done, size);
		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(chunk, "eof")) || n == 0) {
			break;
		}
		cJSON_Delete(chunk);
		chunk = NULL;
	}
	if (render_stderr_tty()) {
		fputs("\r\033[K", stderr);
	}
	digest_final_hex(hash, hex);
	if (done != size || strcmp(hex, json_str(result, "sha256")) != 0) {
		fprintf(stderr, "runyard: the archive received does not match what runyardd "
				"announced (%.0f bytes, sha256 %s; expected %.0f bytes, %s)\n",
			done, hex, size, json_str(result, "sha256"));
		status = VERB_EXIT_REFUSED;
		goto out;
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		fd = -1;
		fprintf(stderr, "runyard: cannot write %s: %s\n", tmp, strerror(errno));
		status = VERB_EXIT_USAGE;
		goto out;
	}
	fd = -1;
	if (rename(tmp, out_path) < 0) {
		fprintf(stderr, "runyard: cannot rename %s to %s: %s\n", tmp, out_path,
			strerror(errno));
		status = VERB_EXIT_USAGE;
		goto out;
	}
	free(tmp);
	tmp = NULL;
	if (ctx->json) {
		cJSON *doc = cJSON_CreateObject();
		cJSON_AddStringToObject(doc, "file", out_path);
		cJSON_AddStringToObject(doc, "format", format);
		cJSON_AddNumberToObject(doc, "size", size);
		cJSON_AddStringToObject(doc, "sha256", hex);
		cJSON_AddStringToObject(doc, "snapshot",
					json_str(result, "snapshot") ? json_str(result, "snapshot")
								     : "");
		status = print_json(doc);
		cJSON_Delete(doc);
	} else {
		char sz[32];
		render_size(size, sz);
		printf("Wrote %s (%s, %s) from snapshot %.12s\n", out_path, format, sz,
		       json_str(result, "snapshot") ? json_str(result, "snapshot") : "?");
	}
out:
	if (fd >= 0) {
		close(fd);
	}
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	digest_free(hash);
	free(buf);
	cJSON_Delete(chunk);
	cJSON_Delete(result);
	cJSON_Delete(args);
	return status;
}

const struct verb cmd_snapshot_entry = {
	.name = "snapshot",
	.run = snapshot_cb,
	.summary = "Write a run's snapshot as an archive",
	.usage = "Usage: runyard snapshot RUN -o FILE [--format FMT] [--json]\n"
		 "\n"
		 "Write the source snapshot of RUN to FILE as an archive whose format\n"
		 "follows FILE's name: .tar, .tar.gz (.tgz), .tar.zst (.tzst) or .zip.\n"
		 "\n"
		 "  -o, --output FILE  the archive to write (replaced if it exists)\n"
		 "  --format FMT       tar, tar.gz, tar.zst or zip, whatever FILE's name\n"
		 "  --json             print {file, format, size, sha256, snapshot}\n",
	.min_args = 1,
	.max_args = 1,
	.missing = "which run? give its id or number",
};

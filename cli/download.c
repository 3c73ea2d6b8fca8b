/* Downloads through the daemon: chunks into a temporary file, checked, renamed into place. */
#include "download.h"

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
#include "json.h"
#include "msg.h"
#include "render.h"
#include "util.h"
#include "verb.h"

/* artifact.read's largest chunk. */
#define ARTIFACT_CHUNK 4194304

/* A path the daemon names an artifact by must stay inside the download
 * directory: relative, and no empty, "." or ".." component. */
static bool safe_path(const char *path)
{
	const char *p = path;

	if (!path[0] || path[0] == '/') {
		return false;
	}
	for (;;) {
		const char *end = strchrnul(p, '/');
		size_t n = (size_t)(end - p);
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
			return false;
		}
		if (!*end) {
			return true;
		}
		p = end + 1;
	}
}

/* Open the directory that will hold path below dirfd, creating what is
 * missing and following no symlink on the way, so nothing lands outside
 * dirfd. Returns the directory's fd and its leaf name in *ret_leaf. */
static int open_parent(int dirfd, const char *path, const char **ret_leaf)
{
	char *copy = strdup(path), *p, *slash;
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = 0;

	if (!copy || fd < 0) {
		r = copy ? -errno : -ENOMEM;
		goto out;
	}
	for (p = copy; (slash = strchr(p, '/')); p = slash + 1) {
		*slash = '\0';
		if (mkdirat(fd, p, 0755) < 0 && errno != EEXIST) {
			r = -errno;
			goto out;
		}
		int nfd = openat(fd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (nfd < 0) {
			r = errno == ELOOP ? -ENOTDIR : -errno;
			goto out;
		}
		close(fd);
		fd = nfd;
	}
	*ret_leaf = path + (p - copy);
out:
	free(copy);
	if (r < 0 && fd >= 0) {
		close(fd);
	}
	return r < 0 ? r : fd;
}

int download_write_all(int fd, const unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

void download_progress(const char *path, double done, double size)
{
	char a[32], b[32];

	if (!render_stderr_tty()) {
		return;
	}
	render_size(done, a);
	render_size(size, b);
	fprintf(stderr, "\r\033[K%s  %s / %s", path, a, b);
	fflush(stderr);
}

/* Fetch one artifact into dl->dir: to a temporary name, checked against
 * its size and sha256, then renamed into place. */
int download_one(struct ctx *ctx, struct download *dl, const cJSON *art)
{
	const char *path = json_str(art, "path"), *sha = json_str(art, "sha256"), *leaf = NULL;
	cJSON *args = NULL, *result = NULL;
	char *tmp = NULL, hex[65];
	double size, offset = 0;
	long long mode = json_int(art, "mode", 0644);
	int pfd = -1, tfd = -1, status = VERB_EXIT_REFUSED, r;

	if (!path || !safe_path(path)) {
		fprintf(stderr, "runyard: refusing artifact path '%s' from runyardd: it must be "
				"relative and stay inside %s\n",
			path ? path : "(none)", dl->dir);
		goto out;
	}
	if (!json_num(art, "size", &size) || size < 0 || size != floor(size) || !sha) {
		fprintf(stderr, "runyard: runyardd lists %s without a size or sha256\n", path);
		goto out;
	}
	status = VERB_EXIT_USAGE;
	pfd = open_parent(dl->dirfd, path, &leaf);
	if (pfd < 0) {
		fprintf(stderr, "runyard: cannot create the directories of %s/%s: %s%s\n", dl->dir,
			path, strerror(-pfd),
			pfd == -ENOTDIR ? " (symlinks inside the download directory are not followed)"
					: "");
		goto out;
	}
	tmp = msg_strdupf(".%s.%ld.part", leaf, (long)getpid());
	if (!tmp) {
		goto out;
	}
	unlinkat(pfd, tmp, 0);
	tfd = openat(pfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (tfd < 0) {
		fprintf(stderr, "runyard: cannot create %s/%s: %s\n", dl->dir, path,
			strerror(errno));
		goto out;
	}
	digest_reset(dl->md);
	args = cJSON_CreateObject();
	cJSON_AddStringToObject(args, dl->key ? dl->key : "run", dl->run);
	cJSON_AddStringToObject(args, "path", path);
	cJSON_AddNumberToObject(args, "length", ARTIFACT_CHUNK);
	for (;;) {
		const char *data;
		double total;
		size_t n;
		bool eof;

		json_set(args, "offset", cJSON_CreateNumber(offset));
		status = connect_call(ctx, dl->op ? dl->op : "artifact.read", args, &result);
		if (status) {
			goto out;
		}
		status = VERB_EXIT_REFUSED;
		data = json_str(result, "data");
		eof = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(result, "eof"));
		if (!data || digest_base64_decode(data, &dl->buf, &dl->cap, &n) < 0) {
			fprintf(stderr, "runyard: runyardd sent data for %s that is not base64\n",
				path);
			goto out;
		}
		if ((json_num(result, "size", &total) && total != size) || offset + (double)n > size) {
			fprintf(stderr, "runyard: runyardd sent more of %s than its %.0f bytes\n",
				path, size);
			goto out;
		}
		r = download_write_all(tfd, dl->buf, n);
		if (r < 0) {
			fprintf(stderr, "runyard: cannot write %s/%s: %s\n", dl->dir, path,
				strerror(-r));
			status = VERB_EXIT_USAGE;
			goto out;
		}
		digest_update(dl->md, dl->buf, n);
		offset += (double)n;
		download_progress(path, offset, size);
		cJSON_Delete(result);
		result = NULL;
		if (eof) {
			break;
		}
		if (n == 0) {
			fprintf(stderr, "runyard: runyardd sent nothing for %s at offset %.0f\n",
				path, offset);
			goto out;
		}
	}
	if (render_stderr_tty()) {
		fputs("\r\033[K", stderr);
	}
	digest_final_hex(dl->md, hex);
	if (offset != size) {
		fprintf(stderr, "runyard: %s: got %.0f bytes from runyardd, expected %.0f\n", path,
			offset, size);
		goto out;
	}
	if (strcasecmp(hex, sha) != 0) {
		fprintf(stderr, "runyard: %s: sha256 %s does not match the listed %s\n", path, hex,
			sha);
		goto out;
	}
	status = VERB_EXIT_USAGE;
	/* Only the permission bits: set-id bits from a reply are not ours. */
	if (fchmod(tfd, (mode_t)(mode & 0777)) < 0 || close(tfd) < 0) {
		tfd = -1;
		fprintf(stderr, "runyard: cannot write %s/%s: %s\n", dl->dir, path,
			strerror(errno));
		goto out;
	}
	tfd = -1;
	if (renameat(pfd, tmp, pfd, leaf) < 0) {
		fprintf(stderr, "runyard: cannot rename into %s/%s: %s\n", dl->dir, path,
			strerror(errno));
		goto out;
	}
	free(tmp);
	tmp = NULL;
	dl->total += size;
	status = 0;
out:
	if (tfd >= 0) {
		close(tfd);
	}
	if (tmp) {
		unlinkat(pfd, tmp, 0);
	}
	if (status && render_stderr_tty()) {
		fputs("\r\033[K", stderr);
	}
	if (pfd >= 0) {
		close(pfd);
	}
	free(tmp);
	cJSON_Delete(result);
	cJSON_Delete(args);
	return status;
}

/* Make and open dl->dir and the digest for download_one; 0 or VERB_EXIT_USAGE
 * (said on stderr). download_close frees what this made. */
int download_open(struct download *dl)
{
	char err[256];
	int r = util_mkdir_p(dl->dir, 0755);

	if (r < 0) {
		fprintf(stderr, "runyard: cannot create %s: %s\n", dl->dir, strerror(-r));
		return VERB_EXIT_USAGE;
	}
	dl->dirfd = open(dl->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dl->dirfd < 0) {
		fprintf(stderr, "runyard: cannot open %s: %s\n", dl->dir, strerror(errno));
		return VERB_EXIT_USAGE;
	}
	if (digest_new(&dl->md, err, sizeof(err)) < 0) {
		fprintf(stderr, "runyard: %s\n", err);
		return VERB_EXIT_USAGE;
	}
	return 0;
}

void download_close(struct download *dl)
{
	if (dl->dirfd >= 0) {
		close(dl->dirfd);
	}
	digest_free(dl->md);
	free(dl->buf);
}

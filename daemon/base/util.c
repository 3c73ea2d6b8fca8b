#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "msg.h"


double util_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)(ts.tv_nsec / 1000) / 1e6;
}

int util_mkdir_p(const char *path, mode_t mode)
{
	char *p = strdup(path);
	int r = 0;

	if (!p) {
		return -ENOMEM;
	}
	for (char *s = p + 1;; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;
			*s = '\0';
			if (mkdir(p, mode) < 0 && errno != EEXIST) {
				r = -errno;
				goto out;
			}
			*s = c;
			if (c == '\0') {
				break;
			}
		}
	}
	struct stat st;
	if (stat(path, &st) < 0) {
		r = -errno;
	} else if (!S_ISDIR(st.st_mode)) {
		r = -ENOTDIR;
	}
out:
	free(p);
	return r;
}

int util_mkdir_beneath(const char *root, const char *rel, mode_t mode, char **ret_link)
{
	char *path = util_path_join(root, rel);
	size_t off = strlen(root) + 1;
	struct stat st;
	int r = 0;

	if (!path) {
		return -ENOMEM;
	}
	for (char *s = path + off;; s++) {
		if (*s != '/' && *s != '\0') {
			continue;
		}
		char c = *s;
		*s = '\0';
		if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
			r = -ELOOP;
			if (ret_link) {
				*ret_link = strdup(path + off);
			}
			goto out;
		}
		if (mkdir(path, mode) < 0 && errno != EEXIST) {
			r = -errno;
			goto out;
		}
		*s = c;
		if (c == '\0') {
			break;
		}
	}
	if (lstat(path, &st) < 0) {
		r = -errno;
	} else if (!S_ISDIR(st.st_mode)) {
		r = -ENOTDIR;
	}
out:
	free(path);
	return r;
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	/* Directories come after their contents (FTW_DEPTH). A directory the
	 * run made unwritable still has to go, so open it up first. */
	if (flag == FTW_DP || flag == FTW_D) {
		if (rmdir(path) < 0 && errno != ENOENT) {
			return -errno;
		}
		return 0;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		return -errno;
	}
	return 0;
}

static int chmod_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	if (flag == FTW_D || flag == FTW_DNR) {
		chmod(path, 0700);
	}
	return 0;
}

int util_rm_rf(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0) {
		return errno == ENOENT ? 0 : -errno;
	}
	if (!S_ISDIR(st.st_mode)) {
		return unlink(path) < 0 ? -errno : 0;
	}
	nftw(path, chmod_cb, 16, FTW_PHYS);
	int r = nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return r < 0 ? -errno : r;
}

int util_open_regular(int dirfd, const char *path, int flags)
{
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | flags);
	struct stat st;
	int err = 0;

	if (fd < 0) {
		return -errno;
	}
	if (fstat(fd, &st) < 0) {
		err = -errno;
	} else if (!S_ISREG(st.st_mode)) {
		err = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	}
	if (err < 0) {
		close(fd);
		return err;
	}
	return fd;
}

int util_read_file(const char *path, size_t max, char **ret_buf, size_t *ret_len)
{
	int fd = util_open_regular(AT_FDCWD, path, 0);
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int r = 0;

	if (fd < 0) {
		return fd;
	}
	for (;;) {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			if (cap > max + 1) {
				cap = max + 1;
			}
			char *nb = realloc(buf, cap + 1);
			if (!nb) {
				r = -ENOMEM;
				goto out;
			}
			buf = nb;
		}
		if (len >= cap) {
			r = -EFBIG;
			goto out;
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			r = -errno;
			goto out;
		}
		if (n == 0) {
			break;
		}
		len += (size_t)n;
		if (len > max) {
			r = -EFBIG;
			goto out;
		}
	}
	if (!buf) {
		buf = malloc(1);
		if (!buf) {
			r = -ENOMEM;
			goto out;
		}
	}
	buf[len] = '\0';
	*ret_buf = buf;
	buf = NULL;
	if (ret_len) {
		*ret_len = len;
	}
out:
	free(buf);
	close(fd);
	return r;
}

int util_rel_normalise(const char *in, bool strict, char **ret, const char **why)
{
	char *out = malloc(strlen(in) + 1);
	const char *p = in;
	size_t o = 0;

	if (!out) {
		return -ENOMEM;
	}
	if (strict && *in == '/') {
		*why = "has an absolute path";
		free(out);
		return -EINVAL;
	}
	while (*p) {
		const char *s = strchr(p, '/');
		size_t l = s ? (size_t)(s - p) : strlen(p);
		if (strict && l == 2 && p[0] == '.' && p[1] == '.') {
			*why = "climbs out with '..'";
			free(out);
			return -EINVAL;
		}
		if (l > 0 && !(l == 1 && p[0] == '.')) {
			if (o) {
				out[o++] = '/';
			}
			memcpy(out + o, p, l);
			o += l;
		}
		p += l;
		if (*p == '/') {
			p++;
		}
	}
	out[o] = '\0';
	*ret = out;
	return 0;
}

int util_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -errno;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int util_write_file_atomic(const char *path, const void *buf, size_t len, mode_t mode)
{
	char *tmp = NULL, *dir = NULL;
	int fd = -1, r = 0;

	if (asprintf(&tmp, "%s.tmp.%d", path, (int)getpid()) < 0) {
		return -ENOMEM;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	r = util_write_all(fd, buf, len);
	if (r < 0) {
		goto out;
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		fd = -1;
		r = -errno;
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		r = -errno;
		goto out;
	}
	dir = strdup(path);
	if (dir) {
		int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
out:
	if (fd >= 0) {
		close(fd);
	}
	if (r < 0) {
		unlink(tmp);
	}
	free(tmp);
	free(dir);
	return r;
}

int util_random_hex(char *buf, size_t nbytes)
{
	unsigned char raw[64];

	if (nbytes > sizeof(raw)) {
		return -EINVAL;
	}
	if (getrandom(raw, nbytes, 0) != (ssize_t)nbytes) {
		return -errno;
	}
	for (size_t i = 0; i < nbytes; i++) {
		snprintf(buf + 2 * i, 3, "%02x", raw[i]);
	}
	return 0;
}

char *util_path_join(const char *a, const char *b)
{
	char *s = NULL;
	size_t la = strlen(a);

	if (asprintf(&s, "%s%s%s", a, (la > 0 && a[la - 1] == '/') ? "" : "/", b) < 0) {
		return NULL;
	}
	return s;
}

char *util_which(const char *name, const char *path_env)
{
	if (!path_env || !*path_env) {
		path_env = "/usr/local/bin:/usr/bin:/bin";
	}
	const char *p = path_env;
	while (*p) {
		const char *end = strchr(p, ':');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		char *cand = NULL;
		if (n > 0 && asprintf(&cand, "%.*s/%s", (int)n, p, name) >= 0) {
			struct stat st;
			if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) &&
			    access(cand, X_OK) == 0) {
				return cand;
			}
			free(cand);
		}
		p += n;
		if (*p == ':') {
			p++;
		}
	}
	return NULL;
}

bool util_valid_name(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 255) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		bool alnum =
		    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-'))) {
			return false;
		}
	}
	return true;
}

bool util_valid_dataset_name(const char *name)
{
	size_t n = strlen(name);
	char *copy;
	bool ok;

	if (n == 0 || n > 255 || name[n - 1] == ' ') {
		return false;
	}
	copy = strdup(name);
	if (!copy) {
		return false;
	}
	/* A space stands where an '_' could. */
	for (size_t i = 1; i < n; i++) {
		if (copy[i] == ' ') {
			copy[i] = '_';
		}
	}
	ok = util_valid_name(copy);
	free(copy);
	return ok;
}

int util_parse_ref(const char *ref, const char *what, char **ret_name, int64_t *ret_version,
		   char **cause)
{
	const char *colon = strrchr(ref, ':');
	int64_t version = 0;
	char *name;

	if (colon) {
		char *end;
		long long v = strtoll(colon + 1, &end, 10);
		if (colon[1] == '\0' || *end || v < 1 || v > INT64_MAX / 2) {
			*cause = msg_strdupf("'%s' is not NAME or NAME:VERSION (VERSION is a "
					     "number from 1)",
					     ref);
			return -EINVAL;
		}
		version = v;
		name = strndup(ref, (size_t)(colon - ref));
	} else {
		name = strdup(ref);
	}
	if (!name) {
		return -ENOMEM;
	}
	if (strcmp(what, "dataset") == 0 ? !util_valid_dataset_name(name) : !util_valid_name(name)) {
		*cause = msg_strdupf("'%s' is not %s %s name: names are 1 to 255 letters, digits, "
				     "'.', '_' and '-', starting with a letter or digit",
				     name, strchr("aeiou", what[0]) ? "an" : "a", what);
		free(name);
		return -EINVAL;
	}
	*ret_name = name;
	*ret_version = version;
	return 0;
}

char *util_ref_not_found(const char *kind, const char *name, int64_t version)
{
	if (version) {
		return msg_strdupf("no %s '%s:%lld' (see 'runyard %s list %s')", kind, name,
				   (long long)version, kind, name);
	}
	return msg_strdupf("no %s '%s' (see 'runyard %s list')", kind, name, kind);
}

/* Unit tests for blob.c, walk.c and snapshot.c. Exit 0 on success. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/capability.h>

#include <cjson/cJSON.h>

#include "blob.h"
#include "snaparchive.h"
#include "snapshot.h"
#include "statcache.h"
#include "walk.h"

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

#define CHECK_RC(expr, want)                                                                       \
	do {                                                                                       \
		int rc_ = (expr);                                                                  \
		CHECK(rc_ == (want), "%s returned %d (%s), expected %d", #expr, rc_,               \
		      strerror(rc_ < 0 ? -rc_ : 0), (want));                                       \
	} while (0)

static char *P(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A path under the test directory; static ring so a few can be live at once. */
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

/* Remove name below dirfd, through directory fds (paths may be longer than
 * PATH_MAX), making directories writable first. */
static void rm_at(int dirfd, const char *name)
{
	struct stat st;
	int fd;
	DIR *d;
	struct dirent *de;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		unlinkat(dirfd, name, 0);
		return;
	}
	fchmodat(dirfd, name, 0700, 0);
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
	if (fd < 0) {
		return;
	}
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
			rm_at(fd, de->d_name);
		}
	}
	closedir(d);
	unlinkat(dirfd, name, AT_REMOVEDIR);
}

static void rm_rf(const char *path)
{
	rm_at(AT_FDCWD, path);
}

static void cleanup(void)
{
	if (base[0]) {
		rm_rf(base);
	}
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	CHECK(fd >= 0, "create %s: %s", path, strerror(errno));
	CHECK(write(fd, data, len) == (ssize_t)len, "write %s", path);
	CHECK(fchmod(fd, mode) == 0, "chmod %s", path);
	close(fd);
}

static void write_str(const char *path, const char *s, mode_t mode)
{
	write_file(path, s, strlen(s), mode);
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	CHECK(f != NULL, "open %s: %s", path, strerror(errno));
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	CHECK(buf && fread(buf, 1, (size_t)n, f) == (size_t)n, "read %s", path);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void mkdir_m(const char *path, mode_t mode)
{
	CHECK(mkdir(path, 0700) == 0, "mkdir %s: %s", path, strerror(errno));
	CHECK(chmod(path, mode) == 0, "chmod %s", path);
}

static long nfiles;
static int count_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)path;
	(void)st;
	(void)ftw;
	if (flag == FTW_F) {
		nfiles++;
	}
	return 0;
}

/* Regular files below dir. */
static long count_files(const char *dir)
{
	nfiles = 0;
	nftw(dir, count_cb, 32, FTW_PHYS);
	return nfiles;
}

static cJSON *load_manifest(struct blobstore *bs, const char *id)
{
	char *buf = NULL;
	size_t len = 0;
	cJSON *j;

	CHECK_RC(blob_read_all(bs, id, 1 << 20, &buf, &len), 0);
	j = cJSON_ParseWithLength(buf, len);
	CHECK(j != NULL, "manifest %s is not JSON: %s", id, buf);
	free(buf);
	return j;
}

static const cJSON *manifest_find(const cJSON *j, const char *path)
{
	const cJSON *e;

	cJSON_ArrayForEach(e, cJSON_GetObjectItem(j, "entries"))
	{
		if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(e, "path")), path) == 0) {
			return e;
		}
	}
	return NULL;
}

static const char *skipped_reason(const struct snapshot_info *info, const char *path)
{
	const cJSON *e;

	cJSON_ArrayForEach(e, info->skipped)
	{
		if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(e, "path")), path) == 0) {
			return cJSON_GetStringValue(cJSON_GetObjectItem(e, "reason"));
		}
	}
	return NULL;
}

static void same_file(const char *a, const char *b)
{
	struct stat sa, sb;
	size_t la, lb;
	char *ca, *cb;

	CHECK(lstat(a, &sa) == 0 && lstat(b, &sb) == 0, "stat %s / %s", a, b);
	CHECK(S_ISREG(sb.st_mode), "%s should be a regular file", b);
	CHECK((sa.st_mode & 07777) == (sb.st_mode & 07777), "%s has mode %o, expected %o", b,
	      sb.st_mode & 07777, sa.st_mode & 07777);
	CHECK(sa.st_ino != sb.st_ino, "%s must be a copy, not the same inode", b);
	ca = read_file(a, &la);
	cb = read_file(b, &lb);
	CHECK(la == lb && memcmp(ca, cb, la) == 0, "%s differs from %s (%zu vs %zu bytes)", b, a,
	      lb, la);
	free(ca);
	free(cb);
}

static void same_dir_mode(const char *a, const char *b)
{
	struct stat sa, sb;

	CHECK(lstat(a, &sa) == 0 && lstat(b, &sb) == 0, "stat %s / %s", a, b);
	CHECK(S_ISDIR(sb.st_mode), "%s should be a directory", b);
	CHECK((sa.st_mode & 0777) == (sb.st_mode & 0777), "%s has mode %o, expected %o", b,
	      sb.st_mode & 0777, sa.st_mode & 0777);
}

static void same_link(const char *b, const char *target)
{
	char buf[4096];
	ssize_t n = readlink(b, buf, sizeof(buf) - 1);

	CHECK(n >= 0, "%s should be a symlink: %s", b, strerror(errno));
	buf[n] = '\0';
	CHECK(strcmp(buf, target) == 0, "%s points to '%s', expected '%s'", b, buf, target);
}

static void absent(const char *path)
{
	struct stat st;

	CHECK(lstat(path, &st) < 0 && errno == ENOENT, "%s should not exist", path);
}

static long nentries;
static int entries_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)path;
	(void)st;
	(void)flag;
	if (ftw->level > 0) {
		nentries++;
	}
	return 0;
}

static long count_entries(const char *dir)
{
	nentries = 0;
	nftw(dir, entries_cb, 32, FTW_PHYS);
	return nentries;
}

/* The source tree of most cases. */
static unsigned char bin[700 * 1024 + 17];

static void make_tree(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int s;

	mkdir_m(P("src"), 0755);
	mkdir_m(P("src/a"), 0755);
	mkdir_m(P("src/a/b"), 0750);
	mkdir_m(P("src/a/b/c"), 0755);
	mkdir_m(P("src/emptydir"), 0700);
	mkdir_m(P("src/.git"), 0755);
	write_str(P("src/a/b/c/deep.txt"), "deep\n", 0644);
	write_str(P("src/a/b/mid.py"), "print('mid')\n", 0644);
	write_str(P("src/run.sh"), "#!/bin/sh\necho hi\n", 0755);
	write_str(P("src/ro.txt"), "read only\n", 0444);
	write_str(P("src/empty.txt"), "", 0644);
	/* Binary, with NULs, larger than one copy buffer and not a multiple of it. */
	for (size_t i = 0; i < sizeof(bin); i++) {
		bin[i] = (unsigned char)((i * 2654435761u) >> 13);
	}
	bin[0] = 0;
	bin[1] = 0xff;
	write_file(P("src/bin.dat"), bin, sizeof(bin), 0600);
	write_str(P("src/.git/HEAD"), "ref: refs/heads/main\n", 0644);
	write_str(P("src/a/.git"), "gitdir: ../.git\n", 0644); /* .git as a file too */
	write_str(P("outside.txt"), "outside\n", 0644);
	CHECK(symlink("a/b/mid.py", P("src/link_in")) == 0, "symlink");
	CHECK(symlink("../../run.sh", P("src/a/b/link_up")) == 0, "symlink");
	CHECK(symlink("c/../../b", P("src/a/b/link_dir")) == 0, "symlink");
	CHECK(symlink("../outside.txt", P("src/link_out")) == 0, "symlink");
	CHECK(symlink("a/../../outside.txt", P("src/link_climb")) == 0, "symlink");
	CHECK(symlink("/etc/passwd", P("src/link_abs")) == 0, "symlink");
	CHECK(mkfifo(P("src/fifo"), 0644) == 0, "mkfifo: %s", strerror(errno));
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", P("src/sock"));
	CHECK(s >= 0 && bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind socket: %s",
	      strerror(errno));
	close(s);
}

static void test_blobs(struct blobstore *bs)
{
	static const char hello_sha[] =
	    "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
	char hex[65], hex2[65], path[4096];
	struct stat st;
	uint64_t size = 0;
	char *buf = NULL;
	size_t len = 0;

	current = "blobs";
	CHECK_RC(blob_put_buf(bs, "hello", 5, hex), 0);
	CHECK(strcmp(hex, hello_sha) == 0, "sha256(hello) = %s, expected %s", hex, hello_sha);
	CHECK_RC(blob_path(bs, hex, path, sizeof(path)), 0);
	CHECK(strcmp(path, P("store/blobs/sha256/2c/f24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa742"
	                     "5e73043362938b9824")) == 0,
	      "blob path %s", path);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0444 && st.st_size == 5,
	      "blob file %s should be 5 bytes, mode 0444 (mode %o)", path, st.st_mode & 0777);
	CHECK(blob_exists(bs, hex), "blob_exists after put");
	CHECK(!blob_exists(bs, "00000000000000000000000000000000000000000000000000000000000000"
	                       "00"),
	      "blob_exists of an absent blob");
	CHECK(!blob_exists(bs, "../../etc"), "blob_exists of a malformed name");
	CHECK_RC(blob_path(bs, "2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824",
	                   path, sizeof(path)),
	         -EINVAL);
	CHECK_RC(blob_path(bs, "abc", path, sizeof(path)), -EINVAL);
	CHECK_RC(blob_path(bs, hex, path, 10), -ENAMETOOLONG);
	CHECK_RC(blob_read_all(bs, hex, 100, &buf, &len), 0);
	CHECK(len == 5 && memcmp(buf, "hello", 5) == 0 && buf[5] == '\0', "read back '%s'", buf);
	free(buf);
	buf = NULL;
	CHECK_RC(blob_read_all(bs, hex, 4, &buf, &len), -EFBIG);
	CHECK(buf == NULL, "ret_buf untouched on failure");
	CHECK_RC(blob_read_all(bs,
	                       "0000000000000000000000000000000000000000000000000000000000000000",
	                       100, &buf, &len),
	         -ENOENT);
	/* Storing it again: same name, no error. */
	CHECK_RC(blob_put_buf(bs, "hello", 5, hex2), 0);
	CHECK(strcmp(hex, hex2) == 0, "same content, same name");
	CHECK_RC(blob_put_buf(bs, "", 0, hex2), 0);
	CHECK(strcmp(hex2, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0,
	      "sha256 of nothing: %s", hex2);

	/* A file: same name as the same bytes from a buffer; streamed when large. */
	write_file(P("bigblob"), bin, sizeof(bin), 0644);
	CHECK_RC(blob_put_file(bs, AT_FDCWD, P("bigblob"), hex, &size), 0);
	CHECK(size == sizeof(bin), "size %llu", (unsigned long long)size);
	CHECK_RC(blob_put_buf(bs, bin, sizeof(bin), hex2), 0);
	CHECK(strcmp(hex, hex2) == 0, "file and buffer of the same bytes differ: %s %s", hex, hex2);
	CHECK_RC(blob_put_file(bs, AT_FDCWD, P("nonexistent"), hex, &size), -ENOENT);
	CHECK_RC(blob_put_file(bs, AT_FDCWD, base, hex, &size), -EISDIR);
	CHECK(symlink("bigblob", P("bigblob-link")) == 0, "symlink");
	CHECK_RC(blob_put_file(bs, AT_FDCWD, P("bigblob-link"), hex, &size), -ELOOP);
	unlink(P("bigblob-link"));

	/* Copy out: exact mode, O_EXCL. */
	CHECK_RC(blob_copy_out(bs, hex2, AT_FDCWD, P("copied"), 0640), 0);
	{
		char *c;
		c = read_file(P("copied"), &len);
		CHECK(len == sizeof(bin) && memcmp(c, bin, len) == 0, "copied content differs");
		free(c);
		CHECK(stat(P("copied"), &st) == 0 && (st.st_mode & 07777) == 0640,
		      "copied mode %o, expected 0640", st.st_mode & 07777);
	}
	CHECK_RC(blob_copy_out(bs, hex2, AT_FDCWD, P("copied"), 0640), -EEXIST);
	CHECK_RC(blob_copy_out(bs,
	                       "0000000000000000000000000000000000000000000000000000000000000000",
	                       AT_FDCWD, P("copied2"), 0640),
	         -ENOENT);
	absent(P("copied2"));
	CHECK(count_files(P("store/tmp")) == 0, "temporaries left in tmp/");
	unlink(P("copied"));
	unlink(P("bigblob"));
}

/* walk order: entries sorted by name bytes, depth first, .git never seen. */
struct order {
	char seen[64][64];
	int n;
	int enters, leaves;
};

static int order_visit_cb(void *ud, const struct walk_entry *e)
{
	struct order *o = ud;

	if (o->n < 64) {
		snprintf(o->seen[o->n++], 64, "%s", e->path);
	}
	return 0;
}

static int order_enter_cb(void *ud, const char *path, int dirfd)
{
	struct order *o = ud;

	(void)path;
	CHECK(dirfd >= 0, "enter_dir gets a directory fd");
	o->enters++;
	return 0;
}

static void order_leave_cb(void *ud, const char *path)
{
	struct order *o = ud;

	(void)path;
	o->leaves++;
}

static void test_walk_order(void)
{
	static const char *const want[] = {"B", "a", "a/z", "a-b", "a0"};
	struct walk_ops ops = {
	    .enter_dir = order_enter_cb, .leave_dir = order_leave_cb, .visit = order_visit_cb};
	struct order o = {0};
	char *cause = NULL;

	current = "walk order";
	mkdir_m(P("w"), 0755);
	mkdir_m(P("w/a"), 0755);
	mkdir_m(P("w/.git"), 0755);
	write_str(P("w/a/z"), "", 0644);
	write_str(P("w/a-b"), "", 0644);
	write_str(P("w/a0"), "", 0644);
	write_str(P("w/B"), "", 0644);
	write_str(P("w/.git/x"), "", 0644);
	CHECK_RC(walk_tree(P("w"), &ops, &o, &cause), 0);
	CHECK(o.n == 5, "walk saw %d entries, expected 5", o.n);
	for (int i = 0; i < 5; i++) {
		CHECK(strcmp(o.seen[i], want[i]) == 0, "walk entry %d is '%s', expected '%s'", i,
		      o.seen[i], want[i]);
	}
	CHECK(o.enters == 2 && o.leaves == 2, "enter/leave %d/%d, expected 2/2 (root and a)",
	      o.enters, o.leaves);
	CHECK_RC(walk_tree(P("w/a0"), &ops, &o, &cause), -ENOTDIR);
	CHECK(cause && strstr(cause, "not a directory"), "cause: %s", cause ? cause : "(none)");
	free(cause);
	rm_rf(P("w"));
}

static void test_take_and_materialise(struct blobstore *bs, char id[65])
{
	struct snapshot_info info;
	char *cause = NULL;
	cJSON *j;
	const cJSON *e;
	char *text;
	const char *prev = "";

	current = "take";
	CHECK_RC(snapshot_take(bs, P("src"), NULL, NULL, NULL, &info, &cause), 0);
	CHECK(cause == NULL, "no cause on success");
	CHECK(info.files == 6, "files %llu, expected 6", (unsigned long long)info.files);
	CHECK(info.bytes == 5 + 13 + 18 + 10 + 0 + sizeof(bin), "bytes %llu",
	      (unsigned long long)info.bytes);
	CHECK(cJSON_GetArraySize(info.skipped) == 5 && info.skipped_total == 5,
	      "%d skipped, expected 5 (2 outside, 1 absolute symlink, fifo, socket): %s",
	      cJSON_GetArraySize(info.skipped), cJSON_PrintUnformatted(info.skipped));
	CHECK(skipped_reason(&info, "link_out") &&
	          strcmp(skipped_reason(&info, "link_out"), "symlink outside the tree") == 0,
	      "link_out reason");
	CHECK(skipped_reason(&info, "link_climb") &&
	          strcmp(skipped_reason(&info, "link_climb"), "symlink outside the tree") == 0,
	      "link_climb reason");
	CHECK(skipped_reason(&info, "link_abs") &&
	          strcmp(skipped_reason(&info, "link_abs"), "symlink outside the tree") == 0,
	      "link_abs reason");
	CHECK(skipped_reason(&info, "fifo") && strcmp(skipped_reason(&info, "fifo"), "fifo") == 0,
	      "fifo reason");
	CHECK(skipped_reason(&info, "sock") && strcmp(skipped_reason(&info, "sock"), "socket") == 0,
	      "socket reason");
	CHECK(blob_exists(bs, info.id), "the manifest is a blob named by the snapshot id");
	memcpy(id, info.id, 65);
	snapshot_info_finish(&info);
	CHECK(info.skipped == NULL, "finish clears skipped");
	CHECK(count_files(P("store/tmp")) == 0, "temporaries left in tmp/");

	/* The manifest: sorted, exact shape, no .git. */
	j = load_manifest(bs, id);
	CHECK(cJSON_GetObjectItem(j, "version")->valueint == 1, "version 1");
	cJSON_ArrayForEach(e, cJSON_GetObjectItem(j, "entries"))
	{
		const char *p = cJSON_GetStringValue(cJSON_GetObjectItem(e, "path"));
		CHECK(strcmp(prev, p) < 0, "manifest not sorted: '%s' before '%s'", prev, p);
		CHECK(strstr(p, ".git") == NULL, "manifest has %s", p);
		prev = p;
	}
	CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(j, "entries")) == 6 + 4 + 3,
	      "%d entries, expected 6 files, 4 dirs, 3 symlinks",
	      cJSON_GetArraySize(cJSON_GetObjectItem(j, "entries")));
	text = cJSON_PrintUnformatted(manifest_find(j, "run.sh"));
	CHECK(strncmp(text,
	              "{\"path\":\"run.sh\",\"type\":\"file\",\"size\":18,\"mode\":493,"
	              "\"sha256\":\"",
	              60) == 0,
	      "run.sh entry: %s", text);
	free(text);
	text = cJSON_PrintUnformatted(manifest_find(j, "a/b"));
	CHECK(strcmp(text, "{\"path\":\"a/b\",\"type\":\"dir\",\"mode\":488}") == 0,
	      "a/b entry: %s", text);
	free(text);
	text = cJSON_PrintUnformatted(manifest_find(j, "link_in"));
	CHECK(strcmp(text,
	             "{\"path\":\"link_in\",\"type\":\"symlink\",\"target\":\"a/b/mid.py\"}") == 0,
	      "link_in entry: %s", text);
	free(text);
	cJSON_Delete(j);

	current = "materialise";
	mkdir_m(P("out1"), 0700);
	CHECK_RC(snapshot_materialise(bs, id, P("out1"), &cause), 0);
	same_file(P("src/run.sh"), P("out1/run.sh"));
	same_file(P("src/ro.txt"), P("out1/ro.txt"));
	same_file(P("src/empty.txt"), P("out1/empty.txt"));
	same_file(P("src/bin.dat"), P("out1/bin.dat"));
	same_file(P("src/a/b/mid.py"), P("out1/a/b/mid.py"));
	same_file(P("src/a/b/c/deep.txt"), P("out1/a/b/c/deep.txt"));
	same_dir_mode(P("src/a"), P("out1/a"));
	same_dir_mode(P("src/a/b"), P("out1/a/b"));
	same_dir_mode(P("src/a/b/c"), P("out1/a/b/c"));
	same_dir_mode(P("src/emptydir"), P("out1/emptydir"));
	same_link(P("out1/link_in"), "a/b/mid.py");
	same_link(P("out1/a/b/link_up"), "../../run.sh");
	same_link(P("out1/a/b/link_dir"), "c/../../b");
	absent(P("out1/link_out"));
	absent(P("out1/link_climb"));
	absent(P("out1/link_abs"));
	absent(P("out1/fifo"));
	absent(P("out1/sock"));
	absent(P("out1/.git"));
	absent(P("out1/a/.git"));
	CHECK(count_entries(P("out1")) == 13, "out1 has %ld entries, expected 13",
	      count_entries(P("out1")));

	/* The copy is writable by the run without touching the store. */
	{
		char path[4096];
		struct stat st;
		write_str(P("out1/a/b/mid.py"), "changed by the run\n", 0644);
		CHECK(blob_path(bs, id, path, sizeof(path)) == 0 && stat(path, &st) == 0 &&
		          (st.st_mode & 0777) == 0444,
		      "manifest blob still read-only");
	}

	current = "materialise into a non-empty directory";
	CHECK_RC(snapshot_materialise(bs, id, P("out1"), &cause), -ENOTEMPTY);
	CHECK(cause && strstr(cause, "not empty"), "cause: %s", cause ? cause : "(none)");
	free(cause);
	cause = NULL;
	current = "materialise an unknown snapshot";
	mkdir_m(P("out2"), 0700);
	CHECK_RC(snapshot_materialise(
	             bs, "1111111111111111111111111111111111111111111111111111111111111111",
	             P("out2"), &cause),
	         -ENOENT);
	CHECK(cause && strstr(cause, "not found"), "cause: %s", cause ? cause : "(none)");
	free(cause);
	cause = NULL;
	CHECK_RC(snapshot_materialise(bs, "../../x", P("out2"), &cause), -EINVAL);
	free(cause);
	cause = NULL;
}

static void test_has_file(struct blobstore *bs, const char *id)
{
	static const struct {
		const char *path;
		bool want;
	} cases[] = {
	    {"run.sh", true},
	    {"./run.sh", true},
	    {"a/b/mid.py", true},
	    {"a//b/./mid.py", true},
	    {"a/b/../b/mid.py", true},
	    {"link_in", true},
	    {"a/b/link_up", true},
	    {"a/b/link_dir/mid.py", true},
	    {"a", false},
	    {"a/b", false},
	    {"run.sh/", false},
	    {"link_out", false},
	    {"fifo", false},
	    {"nope.py", false},
	    {"../src/run.sh", false},
	    {"/etc/passwd", false},
	    {"", false},
	    {".git/HEAD", false},
	};
	struct snapshot_info info;
	char *cause = NULL;
	bool got;

	current = "has_file";
	/* The same answers from the manifest and from a fresh take's entries. */
	CHECK_RC(snapshot_take(bs, P("src"), NULL, NULL, NULL, &info, &cause), 0);
	CHECK(strcmp(info.id, id) == 0 && info.tree, "the same snapshot, entries held");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		got = !cases[i].want;
		CHECK_RC(snapshot_has_file(bs, id, cases[i].path, &got), 0);
		CHECK(got == cases[i].want, "snapshot_has_file('%s') = %d, expected %d",
		      cases[i].path, got, cases[i].want);
		got = !cases[i].want;
		CHECK_RC(snapshot_info_has_file(bs, &info, cases[i].path, &got), 0);
		CHECK(got == cases[i].want, "snapshot_info_has_file('%s') = %d, expected %d",
		      cases[i].path, got, cases[i].want);
	}
	snapshot_info_finish(&info);
	CHECK(info.tree == NULL, "finish frees the entries");
	CHECK_RC(snapshot_has_file(
	             bs, "2222222222222222222222222222222222222222222222222222222222222222",
	             "run.sh", &got),
	         -ENOENT);
}

static void test_dedup(struct blobstore *bs, const char *id)
{
	struct snapshot_info info;
	char *cause = NULL;
	long before, after;
	char id2[65];

	current = "unchanged resubmit";
	before = count_files(P("store/blobs"));
	CHECK_RC(snapshot_take(bs, P("src"), NULL, NULL, NULL, &info, &cause), 0);
	after = count_files(P("store/blobs"));
	CHECK(strcmp(info.id, id) == 0, "same tree, different id: %s vs %s", info.id, id);
	CHECK(after == before, "unchanged tree wrote %ld new blobs", after - before);
	snapshot_info_finish(&info);

	current = "one changed file";
	write_str(P("src/a/b/mid.py"), "print('changed, and unlike any other file')\n", 0644);
	CHECK_RC(snapshot_take(bs, P("src"), NULL, NULL, NULL, &info, &cause), 0);
	after = count_files(P("store/blobs"));
	CHECK(strcmp(info.id, id) != 0, "changed tree, same id");
	CHECK(after == before + 2, "%ld new blobs, expected 2 (the file and the manifest)",
	      after - before);
	memcpy(id2, info.id, 65);
	snapshot_info_finish(&info);
	CHECK(count_files(P("store/tmp")) == 0, "temporaries left in tmp/");

	current = "a mode change";
	before = after;
	CHECK(chmod(P("src/a/b/mid.py"), 0755) == 0, "chmod");
	CHECK_RC(snapshot_take(bs, P("src"), NULL, NULL, NULL, &info, &cause), 0);
	CHECK(strcmp(info.id, id2) != 0, "a mode change must change the id");
	CHECK(count_files(P("store/blobs")) == before + 1, "only a new manifest expected");
	snapshot_info_finish(&info);
	CHECK(chmod(P("src/a/b/mid.py"), 0644) == 0, "chmod");
}

static void test_limits(struct blobstore *bs)
{
	struct snapshot_limits lim = {.max_files = 3};
	struct snapshot_info info = {0};
	char *cause = NULL;
	long before = count_files(P("store/blobs"));

	current = "file-count limit";
	CHECK_RC(snapshot_take(bs, P("src"), NULL, NULL, &lim, &info, &cause), -EFBIG);
	CHECK(cause && strstr(cause, "bin.dat (716.8 kB)") &&
	          strstr(cause, "716.9 kB in 6 files") && strstr(cause, "3 files"),
	      "cause should name bin.dat, the 7 files and the limit: %s", cause ? cause : "(none)");
	CHECK(strstr(cause, "largest directories: a/b/ (49 B in 2 files), a/ (49 B in 2 files), "
	                    "a/b/c/ (5 B in 1 file);") &&
	          strstr(cause, "add patterns such as 'a/b/' or '*.txt' to .amlignore"),
	      "cause should name directory a/b/ and suggest it: %s", cause);
	CHECK(info.skipped == NULL && info.id[0] == '\0', "info untouched on failure");
	free(cause);
	cause = NULL;

	current = "byte limit";
	lim = (struct snapshot_limits){.max_bytes = 100 * 1000};
	CHECK_RC(snapshot_take(bs, P("src"), NULL, NULL, &lim, &info, &cause), -EFBIG);
	CHECK(cause && strstr(cause, "largest files: bin.dat (716.8 kB)") &&
	          strstr(cause, "over the limit of 100.0 kB / 2000 files") &&
	          strstr(cause, "add patterns such as '/bin.dat' to .amlignore"),
	      "cause should name bin.dat first and the limit: %s", cause ? cause : "(none)");
	free(cause);
	cause = NULL;
	CHECK(count_files(P("store/blobs")) == before, "nothing stored over a limit");
	CHECK(count_files(P("store/tmp")) == 0, "temporaries left in tmp/");

	current = "within limits";
	lim = (struct snapshot_limits){.max_bytes = sizeof(bin) + 100, .max_files = 6};
	CHECK_RC(snapshot_take(bs, P("src"), NULL, NULL, &lim, &info, &cause), 0);
	snapshot_info_finish(&info);
}

/* A matcher that skips *.log files and the directory data/. */
struct matcher {
	int depth, max_depth, enters, leaves;
	bool root_seen;
};

static int m_enter_cb(void *ud, const char *path, int dirfd)
{
	struct matcher *m = ud;

	(void)dirfd;
	if (m->enters == 0) {
		m->root_seen = path[0] == '\0';
	}
	m->enters++;
	if (++m->depth > m->max_depth) {
		m->max_depth = m->depth;
	}
	return 0;
}

static void m_leave_cb(void *ud, const char *path)
{
	struct matcher *m = ud;

	(void)path;
	m->leaves++;
	m->depth--;
}

static bool m_ignored_cb(void *ud, const struct walk_entry *e)
{
	size_t l = strlen(e->name);

	(void)ud;
	if (e->kind == WALK_DIR && strcmp(e->name, "data") == 0) {
		return true;
	}
	return e->kind == WALK_FILE && l >= 4 && strcmp(e->name + l - 4, ".log") == 0;
}

static void test_matcher(struct blobstore *bs)
{
	struct walk_ops m_ops = {
	    .enter_dir = m_enter_cb,
	    .leave_dir = m_leave_cb,
	    .ignored = m_ignored_cb,
	    .visit = NULL,
	};
	struct matcher m = {0};
	struct snapshot_info info;
	char *cause = NULL;
	cJSON *j;
	const cJSON *e;

	current = "matcher";
	mkdir_m(P("src/data"), 0755);
	write_file(P("src/data/huge.bin"), bin, sizeof(bin), 0644);
	write_file(P("src/data/huge2.bin"), bin, 1000, 0644);
	write_str(P("src/top.log"), "log\n", 0644);
	write_str(P("src/a/b/deeper.log"), "log\n", 0644);
	CHECK_RC(snapshot_take(bs, P("src"), &m_ops, &m, NULL, &info, &cause), 0);
	CHECK(m.root_seen, "the matcher's enter_dir sees the root first, with path \"\"");
	CHECK(m.enters == 5 && m.leaves == 5 && m.depth == 0,
	      "enter/leave %d/%d, expected 5/5 (root, a, a/b, a/b/c, emptydir)", m.enters,
	      m.leaves);
	CHECK(info.files == 6, "files %llu, expected 6 (logs and data/ ignored)",
	      (unsigned long long)info.files);
	j = load_manifest(bs, info.id);
	cJSON_ArrayForEach(e, cJSON_GetObjectItem(j, "entries"))
	{
		const char *p = cJSON_GetStringValue(cJSON_GetObjectItem(e, "path"));
		CHECK(strncmp(p, "data", 4) != 0 && strstr(p, ".log") == NULL,
		      "ignored entry %s in the manifest", p);
	}
	cJSON_Delete(j);
	snapshot_info_finish(&info);

	/* Without the matcher they count, and data/ is the directory named. */
	current = "matcher off, over the byte limit";
	{
		struct snapshot_limits lim = {.max_bytes = 1000 * 1000};
		CHECK_RC(snapshot_take(bs, P("src"), NULL, NULL, &lim, &info, &cause), -EFBIG);
		CHECK(cause && strstr(cause, "largest directories: data/ (717.8 kB in 2 files)") &&
		          strstr(cause, "add patterns such as '/data/' or '/bin.dat'"),
		      "cause: %s", cause ? cause : "(none)");
		free(cause);
		cause = NULL;
	}
	rm_rf(P("src/data"));
	unlink(P("src/top.log"));
	unlink(P("src/a/b/deeper.log"));
}

/* Run fn as a process without the capabilities that bypass file
 * permissions, so that a mode 000 file is unreadable even when the tests
 * run as root. Returns false when that cannot be arranged. */
static bool without_dac_override(void (*fn)(struct blobstore *), struct blobstore *bs)
{
	pid_t pid;
	int status;

	if (geteuid() != 0) {
		fn(bs);
		return true;
	}
	fflush(NULL);
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
		struct __user_cap_data_struct d[2];
		if (syscall(SYS_capget, &h, d) < 0) {
			_exit(77);
		}
		d[0].effective = d[1].effective = 0;
		if (syscall(SYS_capset, &h, d) < 0) {
			_exit(77);
		}
		fn(bs); /* exits 1 on a failed check */
		fflush(NULL);
		_exit(0);
	}
	CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
		return false;
	}
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the unprivileged check failed");
	return true;
}

static void unreadable_checks(struct blobstore *bs)
{
	struct snapshot_info info = {0};
	char *cause = NULL;
	cJSON *j;

	current = "unreadable file";
	CHECK(chmod(P("src/a/b/c/deep.txt"), 0) == 0, "chmod");
	CHECK_RC(snapshot_take(bs, P("src"), NULL, NULL, NULL, &info, &cause), 0);
	CHECK(skipped_reason(&info, "a/b/c/deep.txt") &&
	          strcmp(skipped_reason(&info, "a/b/c/deep.txt"), "unreadable") == 0,
	      "a/b/c/deep.txt should be skipped as unreadable");
	j = load_manifest(bs, info.id);
	CHECK(!manifest_find(j, "a/b/c/deep.txt") && manifest_find(j, "a/b/c") &&
	          manifest_find(j, "a/b/mid.py"),
	      "the unreadable file is left out, the rest taken");
	cJSON_Delete(j);
	snapshot_info_finish(&info);
	CHECK(chmod(P("src/a/b/c/deep.txt"), 0644) == 0, "chmod");
	CHECK(count_files(P("store/tmp")) == 0, "temporaries left in tmp/");

	current = "unreadable directory";
	CHECK(chmod(P("src/a/b/c"), 0) == 0, "chmod");
	CHECK_RC(snapshot_take(bs, P("src"), NULL, NULL, NULL, &info, &cause), 0);
	CHECK(skipped_reason(&info, "a/b/c") &&
	          strcmp(skipped_reason(&info, "a/b/c"), "unreadable directory") == 0,
	      "a/b/c should be skipped as an unreadable directory");
	j = load_manifest(bs, info.id);
	CHECK(!manifest_find(j, "a/b/c") && manifest_find(j, "a/b/mid.py"),
	      "the unreadable directory is left out, not taken empty");
	cJSON_Delete(j);
	snapshot_info_finish(&info);

	current = "listable but not searchable directory";
	CHECK(chmod(P("src/a/b/c"), 0444) == 0, "chmod");
	CHECK_RC(snapshot_take(bs, P("src"), NULL, NULL, NULL, &info, &cause), 0);
	CHECK(skipped_reason(&info, "a/b/c") &&
	          strcmp(skipped_reason(&info, "a/b/c"), "unreadable directory") == 0,
	      "a/b/c (r--) should be skipped as an unreadable directory");
	snapshot_info_finish(&info);
	CHECK(chmod(P("src/a/b/c"), 0755) == 0, "chmod");

	current = "unreadable source";
	CHECK(chmod(P("src"), 0) == 0, "chmod");
	CHECK_RC(snapshot_take(bs, P("src"), NULL, NULL, NULL, &info, &cause), -EACCES);
	CHECK(cause && strstr(cause, "src"), "cause should name the source: %s",
	      cause ? cause : "(none)");
	free(cause);
	cause = NULL;
	CHECK(chmod(P("src"), 0755) == 0, "chmod");
	CHECK(info.skipped == NULL, "info untouched on failure");
}

static void many_unreadable_checks(struct blobstore *bs)
{
	struct snapshot_info info = {0};
	char *cause = NULL;

	current = "many files, one unreadable";
	CHECK(chmod(P("many/d4/f050"), 0) == 0, "chmod");
	CHECK_RC(snapshot_take(bs, P("many"), NULL, NULL, NULL, &info, &cause), 0);
	CHECK(info.skipped_total == 1 && skipped_reason(&info, "d4/f050"),
	      "d4/f050 should be the one skipped (%llu skipped)",
	      (unsigned long long)info.skipped_total);
	snapshot_info_finish(&info);
	CHECK(count_files(P("store/tmp")) == 0, "temporaries left in tmp/");
	CHECK(chmod(P("many/d4/f050"), 0644) == 0, "chmod");
}

static void test_errors(struct blobstore *bs)
{
	struct snapshot_info info = {0};
	char *cause = NULL;

	current = "missing source";
	CHECK_RC(snapshot_take(bs, P("nope"), NULL, NULL, NULL, &info, &cause), -ENOENT);
	CHECK(cause && strstr(cause, "nope") && strstr(cause, "does not exist"), "cause: %s",
	      cause ? cause : "(none)");
	free(cause);
	cause = NULL;

	current = "source is a file";
	CHECK_RC(snapshot_take(bs, P("outside.txt"), NULL, NULL, NULL, &info, &cause), -ENOTDIR);
	free(cause);
	cause = NULL;

	if (!without_dac_override(unreadable_checks, bs)) {
		fprintf(stderr, "note: cannot drop privileges; unreadable-file cases skipped\n");
	}
	CHECK(info.skipped == NULL, "info untouched on failure");
}

/* Enough files for the store to use several threads. */
static void test_many(struct blobstore *bs)
{
	struct snapshot_info info, info2;
	char *cause = NULL;
	char buf[64];
	size_t len;

	current = "many files";
	mkdir_m(P("many"), 0755);
	for (int d = 0; d < 6; d++) {
		mkdir_m(P("many/d%d", d), 0755);
		for (int i = 0; i < 100; i++) {
			snprintf(buf, sizeof(buf), "file %d of dir %d\n", i, d);
			write_str(P("many/d%d/f%03d", d, i), buf, i % 2 ? 0644 : 0755);
		}
	}
	CHECK_RC(snapshot_take(bs, P("many"), NULL, NULL, NULL, &info, &cause), 0);
	CHECK(info.files == 600, "files %llu, expected 600", (unsigned long long)info.files);
	CHECK_RC(snapshot_take(bs, P("many"), NULL, NULL, NULL, &info2, &cause), 0);
	CHECK(strcmp(info.id, info2.id) == 0, "the same tree gave two ids");
	CHECK(count_files(P("store/tmp")) == 0, "temporaries left in tmp/");
	mkdir_m(P("many-out"), 0700);
	CHECK_RC(snapshot_materialise(bs, info.id, P("many-out"), &cause), 0);
	CHECK(count_entries(P("many-out")) == 606, "materialised %ld entries, expected 606",
	      count_entries(P("many-out")));
	for (int d = 0; d < 6; d++) {
		for (int i = 0; i < 100; i += 33) {
			char *c;
			snprintf(buf, sizeof(buf), "file %d of dir %d\n", i, d);
			c = read_file(P("many-out/d%d/f%03d", d, i), &len);
			CHECK(strcmp(c, buf) == 0, "many-out/d%d/f%03d has '%s'", d, i, c);
			free(c);
			same_file(P("many/d%d/f%03d", d, i), P("many-out/d%d/f%03d", d, i));
		}
	}
	snapshot_info_finish(&info);
	snapshot_info_finish(&info2);

	if (!without_dac_override(many_unreadable_checks, bs)) {
		fprintf(stderr, "note: cannot drop privileges; unreadable-file cases skipped\n");
	}
	rm_rf(P("many"));
	rm_rf(P("many-out"));
}

/* A tree deeper than PATH_MAX: the walk, the store and materialise work
 * through directory fds. */
#define DEEP_LEVELS 200
#define DEEP_NAME "a-directory-name-of-forty-characters-xx"

static int open_deep(const char *root, int levels)
{
	int fd = open(root, O_RDONLY | O_DIRECTORY);

	for (int i = 0; i < levels && fd >= 0; i++) {
		int nfd = openat(fd, DEEP_NAME, O_RDONLY | O_DIRECTORY);
		close(fd);
		fd = nfd;
	}
	return fd;
}

static void test_deep(struct blobstore *bs)
{
	struct snapshot_info info;
	char *cause = NULL;
	char *rel;
	char buf[64];
	bool has = false;
	int fd, f;
	size_t off = 0;

	current = "deep tree";
	mkdir_m(P("deep"), 0755);
	fd = open(P("deep"), O_RDONLY | O_DIRECTORY);
	for (int i = 0; i < DEEP_LEVELS; i++) {
		int nfd;
		CHECK(mkdirat(fd, DEEP_NAME, 0755) == 0, "mkdirat level %d", i);
		nfd = openat(fd, DEEP_NAME, O_RDONLY | O_DIRECTORY);
		close(fd);
		fd = nfd;
	}
	f = openat(fd, "bottom.txt", O_WRONLY | O_CREAT, 0640);
	CHECK(f >= 0 && write(f, "bottom\n", 7) == 7, "write bottom.txt");
	close(f);
	CHECK(symlinkat("bottom.txt", fd, "bottom-link") == 0, "symlink at the bottom");
	close(fd);

	CHECK_RC(snapshot_take(bs, P("deep"), NULL, NULL, NULL, &info, &cause), 0);
	CHECK(info.files == 1, "files %llu, expected 1", (unsigned long long)info.files);
	rel = malloc(DEEP_LEVELS * sizeof(DEEP_NAME) + 32);
	for (int i = 0; i < DEEP_LEVELS; i++) {
		memcpy(rel + off, DEEP_NAME "/", sizeof(DEEP_NAME));
		off += sizeof(DEEP_NAME);
	}
	CHECK(off > 4096, "the deep path should be longer than PATH_MAX");
	memcpy(rel + off, "bottom-link", 12);
	CHECK_RC(snapshot_has_file(bs, info.id, rel, &has), 0);
	CHECK(has, "has_file of the deep symlink to a file");

	mkdir_m(P("deep-out"), 0700);
	CHECK_RC(snapshot_materialise(bs, info.id, P("deep-out"), &cause), 0);
	fd = open_deep(P("deep-out"), DEEP_LEVELS);
	CHECK(fd >= 0, "open the materialised bottom directory");
	f = openat(fd, "bottom-link", O_RDONLY);
	CHECK(f >= 0 && read(f, buf, sizeof(buf)) == 7 && memcmp(buf, "bottom\n", 7) == 0,
	      "bottom.txt read back through the link");
	close(f);
	{
		struct stat st;
		CHECK(fstatat(fd, "bottom.txt", &st, 0) == 0 && (st.st_mode & 0777) == 0640,
		      "bottom.txt mode %o, expected 0640", st.st_mode & 0777);
	}
	close(fd);
	snapshot_info_finish(&info);
	free(rel);
	rm_rf(P("deep"));
	rm_rf(P("deep-out"));
}

/* Several threads snapshotting into one store at once. */
struct par {
	struct blobstore *bs;
	const char *src; /* P() is not for threads */
	char id[65];
	int rc;
};

static void *par_main(void *arg)
{
	struct par *p = arg;
	struct snapshot_info info;
	char *cause = NULL;

	p->rc = snapshot_take(p->bs, p->src, NULL, NULL, NULL, &info, &cause);
	if (p->rc == 0) {
		memcpy(p->id, info.id, 65);
		snapshot_info_finish(&info);
	}
	free(cause);
	return NULL;
}

static void test_threads(void)
{
	struct blobstore *bs2 = NULL;
	struct par par[4];
	pthread_t th[4];
	char src[4096];

	current = "threads";
	/* A crash's leftovers in tmp/: an old one is removed at open, a
	 * recent one (maybe being written by another process) is kept. */
	{
		struct timespec t[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1000000000}};
		struct blobstore *bs3 = NULL;
		CHECK_RC(blob_store_open(P("store2"), &bs3), 0);
		blob_store_close(bs3);
		write_str(P("store2/tmp/blob-OLDOLD"), "half", 0600);
		write_str(P("store2/tmp/blob-NEWNEW"), "half", 0600);
		CHECK(utimensat(AT_FDCWD, P("store2/tmp/blob-OLDOLD"), t, 0) == 0, "utimensat");
	}
	CHECK_RC(blob_store_open(P("store2"), &bs2), 0);
	snprintf(src, sizeof(src), "%s", P("src"));
	absent(P("store2/tmp/blob-OLDOLD"));
	CHECK(unlink(P("store2/tmp/blob-NEWNEW")) == 0, "a recent temporary must be kept");
	for (int i = 0; i < 4; i++) {
		par[i] = (struct par){.bs = bs2, .src = src};
		CHECK(pthread_create(&th[i], NULL, par_main, &par[i]) == 0, "pthread_create");
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK(par[i].rc == 0, "thread %d: %d", i, par[i].rc);
		CHECK(strcmp(par[i].id, par[0].id) == 0, "threads disagree on the id");
	}
	CHECK(count_files(P("store2/tmp")) == 0, "temporaries left in tmp/");
	/* 6 files of distinct content + the manifest. */
	CHECK(count_files(P("store2/blobs")) == 7, "%ld blobs, expected 7",
	      count_files(P("store2/blobs")));
	blob_store_close(bs2);
}

/* Open file descriptors, to catch leaks. */
static int count_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;

	if (!d) {
		return -1;
	}
	while ((de = readdir(d))) {
		n += de->d_name[0] != '.';
	}
	closedir(d);
	return n;
}


/* Materialising copies in the kernel (or reflinks) where the file system
 * can: on the file systems the tests run on (ext4, xfs, btrfs, tmpfs) no
 * byte of a blob goes through user space. */
static void test_materialise_fast(struct blobstore *bs, const char *id)
{
	struct snapshot_copy_stats cs = {0};
	char *cause = NULL;
	int fd_in, fd_out;
	ssize_t probe;

	current = "materialise in the kernel";
	/* Does this file system copy in the kernel at all? */
	write_str(P("probe-in"), "probe", 0644);
	fd_in = open(P("probe-in"), O_RDONLY);
	fd_out = open(P("store/probe-out"), O_WRONLY | O_CREAT, 0644);
	probe = copy_file_range(fd_in, NULL, fd_out, NULL, 5, 0);
	close(fd_in);
	close(fd_out);
	unlink(P("store/probe-out"));
	unlink(P("probe-in"));
	mkdir_m(P("fast"), 0755);
	CHECK_RC(snapshot_materialise_stats(bs, id, P("fast"), &cs, &cause), 0);
	CHECK(cs.files == 6, "%llu files materialised, expected 6", (unsigned long long)cs.files);
	if (probe != 5) {
		fprintf(stderr, "note: no in-kernel copy on this file system; plain copies\n");
	} else {
		/* empty.txt is the one plain (nothing to copy). */
		CHECK(cs.reflinked + cs.kernel_copied == 5 && cs.plain_copied == 1,
		      "reflinked %llu, kernel %llu, plain %llu: expected 5 without user space",
		      (unsigned long long)cs.reflinked, (unsigned long long)cs.kernel_copied,
		      (unsigned long long)cs.plain_copied);
	}
	same_file(P("src/bin.dat"), P("fast/bin.dat"));
	rm_rf(P("fast"));
}

static void touch_old(const char *path)
{
	struct timespec ts[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1000000000}};

	CHECK(utimensat(AT_FDCWD, path, ts, 0) == 0, "utimensat %s", path);
}

/* The stat cache: hits skip reading, anything changed (or too recent) is
 * read again, and a damaged cache file is only a miss. */
static void test_stat_cache(struct blobstore *bs)
{
	static char cache_path[4096];
	struct snapshot_opts opts = {.stat_cache = cache_path};
	struct snapshot_info a, b, c;
	struct statcache *sc = NULL;
	struct timespec pause = {.tv_nsec = 250 * 1000 * 1000};
	char *cause = NULL;
	FILE *f;

	current = "stat cache";
	snprintf(cache_path, sizeof(cache_path), "%s", P("store/statcache/src"));
	mkdir_m(P("sc"), 0755);
	write_str(P("sc/one.txt"), "one\n", 0644);
	write_str(P("sc/two.txt"), "two\n", 0644);
	nanosleep(&pause, NULL); /* out of the racy window */
	CHECK_RC(snapshot_take_with(bs, P("sc"), &opts, &a, &cause), 0);
	CHECK(a.read_files == 2 && a.cached_files == 0, "first: read %llu",
	      (unsigned long long)a.read_files);
	CHECK_RC(snapshot_take_with(bs, P("sc"), &opts, &b, &cause), 0);
	CHECK(b.read_files == 0 && b.cached_files == 2 && strcmp(a.id, b.id) == 0,
	      "second: read %llu, cached %llu", (unsigned long long)b.read_files,
	      (unsigned long long)b.cached_files);
	snapshot_info_finish(&b);

	/* Same size, old mtime: the ctime moved. */
	write_str(P("sc/two.txt"), "TWO\n", 0644);
	touch_old(P("sc/two.txt"));
	nanosleep(&pause, NULL);
	CHECK_RC(snapshot_take_with(bs, P("sc"), &opts, &c, &cause), 0);
	CHECK(c.read_files == 1 && c.cached_files == 1 && strcmp(a.id, c.id) != 0,
	      "after a change: read %llu, cached %llu, %s vs %s", (unsigned long long)c.read_files,
	      (unsigned long long)c.cached_files, a.id, c.id);
	snapshot_info_finish(&c);

	/* Removing blobs means a new epoch (as a collector would write):
	 * recorded hashes are then checked against the store again. */
	{
		char path[4096];
		struct blobstore *bs2 = NULL;
		cJSON *j = load_manifest(bs, a.id);
		const char *sha = cJSON_GetStringValue(
		    cJSON_GetObjectItem(manifest_find(j, "one.txt"), "sha256"));
		CHECK(blob_path(bs, sha, path, sizeof(path)) == 0, "blob path");
		CHECK(unlink(path) == 0, "remove the blob of one.txt");
		cJSON_Delete(j);
		CHECK(unlink(P("store/blobs.epoch")) == 0, "drop the epoch");
		CHECK_RC(blob_store_open(P("store"), &bs2), 0);
		CHECK(strcmp(blob_store_epoch(bs2), blob_store_epoch(bs)) != 0, "a new epoch");
		CHECK_RC(snapshot_take_with(bs2, P("sc"), &opts, &c, &cause), 0);
		CHECK(c.read_files == 1 && c.new_blobs == 1, "a missing blob is stored again");
		snapshot_info_finish(&c);
		blob_store_close(bs2);
	}
	snapshot_info_finish(&a);

	/* Damage the cache file: everything is read, nothing goes wrong. */
	f = fopen(cache_path, "r+b");
	CHECK(f && fseek(f, 30, SEEK_SET) == 0 && fputc('X', f) != EOF && fclose(f) == 0,
	      "damage the cache");
	CHECK_RC(statcache_load(cache_path, blob_store_epoch(bs), &sc), 0);
	{
		struct stat st;
		unsigned char d[32];
		CHECK(lstat(P("sc/one.txt"), &st) == 0, "lstat");
		CHECK(!statcache_lookup(sc, "one.txt", &st, d), "a damaged cache has no hits");
	}
	statcache_destroy(sc);
	CHECK_RC(snapshot_take_with(bs, P("sc"), &opts, &c, &cause), 0);
	CHECK(c.read_files == 2, "read %llu after damage", (unsigned long long)c.read_files);
	snapshot_info_finish(&c);

	/* Just written: racily clean, read again. */
	write_str(P("sc/three.txt"), "3\n", 0644);
	CHECK_RC(snapshot_take_with(bs, P("sc"), &opts, &c, &cause), 0);
	snapshot_info_finish(&c);
	CHECK_RC(snapshot_take_with(bs, P("sc"), &opts, &c, &cause), 0);
	CHECK(c.read_files >= 1, "a file written just now is read again");
	snapshot_info_finish(&c);
	rm_rf(P("sc"));
}

/* A snapshot out to every archive format and back in: the same snapshot. */
static void test_archives(struct blobstore *bs, const char *id)
{
	static const enum snaparchive_format formats[] = {SNAPARCHIVE_TAR, SNAPARCHIVE_TAR_GZ,
	                                                  SNAPARCHIVE_TAR_ZST, SNAPARCHIVE_ZIP};
	enum snaparchive_format f;
	struct snapshot_opts opts = {0};
	char *cause = NULL;

	current = "archives";
	CHECK(snaparchive_format_parse("tgz", &f) == 0 && f == SNAPARCHIVE_TAR_GZ, "tgz");
	CHECK(snaparchive_format_parse("rar", &f) == -EINVAL, "rar");
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		struct snapshot_info info;
		char sha[65];
		uint64_t size = 0;
		int fd = open(P("arc"), O_RDWR | O_CREAT | O_TRUNC, 0644);
		CHECK(fd >= 0, "create arc");
		CHECK_RC(snaparchive_export(bs, id, formats[i], fd, 1700000000, &size, sha, &cause),
		         0);
		close(fd);
		CHECK(size > 0 && blob_valid_hex(sha), "%s: size and hash",
		      snaparchive_format_name(formats[i]));
		CHECK_RC(snaparchive_take(bs, P("arc"), &opts, &info, &cause), 0);
		CHECK(strcmp(info.id, id) == 0, "%s: read back as snapshot %s, expected %s",
		      snaparchive_format_name(formats[i]), info.id, id);
		snapshot_info_finish(&info);
	}
	unlink(P("arc"));
	CHECK_RC(snaparchive_export(bs, "00", SNAPARCHIVE_TAR, 1, 0, NULL, NULL, &cause), -EINVAL);
	free(cause);
	cause = NULL;
	write_str(P("arc"), "not an archive at all", 0644);
	{
		struct snapshot_info info = {0};
		CHECK_RC(snaparchive_take(bs, P("arc"), &opts, &info, &cause), -EBADMSG);
		CHECK(cause && strstr(cause, "cannot read archive"), "cause: %s",
		      cause ? cause : "(none)");
		free(cause);
		cause = NULL;
		CHECK(info.skipped == NULL, "info untouched");
	}
	unlink(P("arc"));
}


/* The manifest is written directly, but byte for byte as cJSON would print
 * it (so snapshot ids do not depend on how it was written), whatever bytes
 * the names hold. */
static void test_manifest_bytes(struct blobstore *bs)
{
	static const char *const names[] = {"plain", "quote\"d", "back\\slash", "new\nline",
	                                    "ctl\001\037x", "del\177", "bad\377name",
	                                    "caf\303\251", "tab\there"};
	struct snapshot_info info;
	char *cause = NULL, *raw = NULL, *again;
	size_t len;
	cJSON *j;

	current = "manifest bytes";
	mkdir_m(P("mb"), 0755);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		write_str(P("mb/%s", names[i]), names[i], 0640);
	}
	CHECK(symlink("quote\"d", P("mb/link\\\"")) == 0, "symlink");
	write_file(P("mb/big"), bin, sizeof(bin), 0755);
	CHECK_RC(snapshot_take(bs, P("mb"), NULL, NULL, NULL, &info, &cause), 0);
	CHECK_RC(blob_read_all(bs, info.id, 1 << 20, &raw, &len), 0);
	j = cJSON_ParseWithLength(raw, len);
	CHECK(j, "the manifest parses");
	again = cJSON_PrintUnformatted(j);
	CHECK(again && strcmp(again, raw) == 0, "manifest differs from cJSON's printing:\n%s\n%s",
	      raw, again ? again : "(null)");
	CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(j, "entries")) == 11, "11 entries");
	free(again);
	free(raw);
	cJSON_Delete(j);
	snapshot_info_finish(&info);
	rm_rf(P("mb"));
}

/* The collector's side of the blob store (blob_gc.c): a new epoch first,
 * holds taken before a collection are waited for and those taken after
 * are not, a blob a writer looked at while it runs is kept (-EBUSY), any
 * other goes, and listing sees each blob once. */
static int blob_count_cb(void *ud, const char *hex, uint64_t size, uint64_t disk)
{
	(void)hex;
	(void)disk;
	((uint64_t *)ud)[0]++;
	((uint64_t *)ud)[1] += size;
	return 0;
}

static void test_collect(void)
{
	struct blobstore *bs = NULL;
	char a[65], b[65], c[65], epoch[33];
	uint64_t counts[2] = {0, 0}, h1, h2, h3;

	current = "collect";
	CHECK_RC(blob_store_open(P("gcstore"), &bs), 0);
	CHECK_RC(blob_put_buf(bs, "alpha", 5, a), 0);
	CHECK_RC(blob_put_buf(bs, "beta!", 5, b), 0);
	CHECK_RC(blob_put_buf(bs, "gamma", 5, c), 0);
	CHECK_RC(blob_foreach(bs, blob_count_cb, counts), 0);
	CHECK(counts[0] == 3 && counts[1] == 15, "listed %llu blobs, %llu bytes",
	      (unsigned long long)counts[0], (unsigned long long)counts[1]);
	/* no collection: nothing may be removed */
	CHECK_RC(blob_gc_remove(bs, a), -EAGAIN);

	h1 = blob_hold(bs);
	CHECK(h1 != 0, "a hold is never 0");
	memcpy(epoch, blob_store_epoch(bs), sizeof(epoch));
	CHECK_RC(blob_gc_begin(bs), 0);
	CHECK(strcmp(epoch, blob_store_epoch(bs)) != 0, "a collection writes a new epoch");
	{
		size_t len = 0;
		char *text = read_file(P("gcstore/blobs.epoch"), &len);
		CHECK(text && len == 32 && memcmp(text, blob_store_epoch(bs), 32) == 0,
		      "the new epoch is on disk");
		free(text);
	}
	CHECK(blob_gc_waiting(bs) == 1, "the hold from before is waited for");
	h2 = blob_hold(bs);
	CHECK(blob_gc_waiting(bs) == 1, "a hold taken after is not");
	blob_release(bs, h1);
	CHECK(blob_gc_waiting(bs) == 0, "released");
	/* a writer finds b stored: the collection must keep it */
	CHECK(blob_exists(bs, b), "b is there");
	CHECK_RC(blob_gc_remove(bs, b), -EBUSY);
	CHECK_RC(blob_gc_remove(bs, a), 0);
	CHECK_RC(blob_gc_remove(bs, a), -ENOENT);
	/* looking notes it too (a writer is about to rely on the answer) */
	CHECK(!blob_exists(bs, a), "a is gone");
	CHECK_RC(blob_gc_remove(bs, a), -EBUSY);
	CHECK_RC(blob_gc_remove(bs, "../../etc/passwd"), -EINVAL);
	blob_gc_end(bs);
	blob_release(bs, h2);

	/* the next collection forgets what the last one noted, and waits
	 * for a hold taken during the last one */
	h3 = blob_hold(bs);
	CHECK_RC(blob_gc_begin(bs), 0);
	CHECK(blob_gc_waiting(bs) == 1, "a hold from between collections is waited for");
	blob_release(bs, h3);
	CHECK_RC(blob_gc_remove(bs, b), 0);
	blob_gc_end(bs);
	counts[0] = counts[1] = 0;
	CHECK_RC(blob_foreach(bs, blob_count_cb, counts), 0);
	CHECK(counts[0] == 1, "one blob left, %llu listed", (unsigned long long)counts[0]);
	/* stored again after its removal: a put never trusts a removed name */
	CHECK_RC(blob_put_buf(bs, "alpha", 5, a), 0);
	CHECK(blob_exists(bs, a), "a is back");
	blob_release(bs, 0);
	blob_release(NULL, 5);
	blob_store_close(bs);
}

int main(void)
{
	struct blobstore *bs = NULL;
	char id[65];
	int fds = count_fds();

	snprintf(base, sizeof(base), "/tmp/test-snapshot-XXXXXX");
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 1;
	}
	atexit(cleanup);

	CHECK_RC(blob_store_open(P("store"), &bs), 0);
	CHECK(strcmp(blob_store_root(bs), P("store")) == 0, "root");
	make_tree();
	test_blobs(bs);
	test_walk_order();
	test_take_and_materialise(bs, id);
	test_has_file(bs, id);
	test_dedup(bs, id);
	test_materialise_fast(bs, id);
	test_archives(bs, id);
	test_limits(bs);
	test_matcher(bs);
	test_errors(bs);
	test_many(bs);
	test_deep(bs);
	test_stat_cache(bs);
	test_manifest_bytes(bs);
	test_threads();
	test_collect();
	blob_store_close(bs);
	blob_store_close(NULL);
	current = "end";
	CHECK(count_fds() == fds, "%d file descriptors open at the end, %d at the start",
	      count_fds(), fds);
	printf("test-snapshot: all passed\n");
	return 0;
}

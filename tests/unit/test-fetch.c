/* fetch: what needs no HTTP server (test_fetch.py covers HTTP against a
 * real one): file:// into the cache and again from it, a missing file, a
 * bad scheme and a bad digest answered through the callback and never from
 * inside fetch_start, a known digest answered without reading, cancel, and
 * closing the manager with a copy in flight. Each part checks that the loop
 * closes cleanly. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <uv.h>

#include "fetch.h"
#include "test.h"
#include "util.h"

struct got {
	int calls;
	int err;
	bool from_cache;
	uint64_t size;
	char sha256[65];
	char path[4096];
	char cause[512];
};

static void done_cb(void *ud, const struct fetch_result *res)
{
	struct got *g = ud;

	g->calls++;
	g->err = res->err;
	if (res->err == 0) {
		g->from_cache = res->from_cache;
		g->size = res->size;
		snprintf(g->sha256, sizeof(g->sha256), "%s", res->sha256);
		snprintf(g->path, sizeof(g->path), "%s", res->path);
	} else {
		snprintf(g->cause, sizeof(g->cause), "%s", res->cause);
	}
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int n = sizeof(md);

	EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++) {
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	}
}

/* Fetch one URL on a fresh loop and manager; the loop must close. */
static void fetch_one(const char *cache, const char *url, const char *sha, struct got *g)
{
	struct fetch_opts o = {.url = url, .sha256 = sha};
	struct fetch_mgr *m = NULL;
	uv_loop_t loop;

	memset(g, 0, sizeof(*g));
	uv_loop_init(&loop);
	EXPECT_INT(fetch_mgr_create(&loop, cache, NULL, &m), 0);
	EXPECT_INT(fetch_start(m, &o, NULL, done_cb, g, NULL), 0);
	EXPECT_INT(g->calls, 0); /* never from inside fetch_start */
	while (g->calls == 0) {
		uv_run(&loop, UV_RUN_ONCE);
	}
	fetch_mgr_close(m);
	uv_run(&loop, UV_RUN_DEFAULT);
	EXPECT_INT(uv_loop_close(&loop), 0);
	EXPECT_INT(g->calls, 1);
}

int main(void)
{
	char dir[] = "/tmp/test-fetch-XXXXXX", src[256], cache[256], url[300], sha[65];
	static char data[300000];
	struct got g, g2;
	FILE *f;

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(src, sizeof(src), "%s/src.bin", dir);
	snprintf(cache, sizeof(cache), "%s/cache", dir);
	snprintf(url, sizeof(url), "file://%s", src);
	for (size_t i = 0; i < sizeof(data); i++) {
		data[i] = (char)(i * 7 + i / 251);
	}
	sha256_hex(data, sizeof(data), sha);
	f = fopen(src, "w");
	fwrite(data, 1, sizeof(data), f);
	fclose(f);

	/* Copied into the cache, then answered from it. */
	fetch_one(cache, url, sha, &g);
	EXPECT_INT(g.err, 0);
	EXPECT_STR(g.sha256, sha);
	EXPECT_INT(g.size, sizeof(data));
	EXPECT(!g.from_cache);
	EXPECT(strstr(g.path, "/cache/objects/") != NULL);
	fetch_one(cache, url, NULL, &g);
	EXPECT_INT(g.err, 0);
	EXPECT(g.from_cache);

	/* A known digest: answered from the cache, even for a missing file. */
	snprintf(url, sizeof(url), "file://%s/gone.bin", dir);
	fetch_one(cache, url, sha, &g);
	EXPECT_INT(g.err, 0);
	EXPECT(g.from_cache);

	/* Missing, with a cause that names the URL. */
	fetch_one(cache, url, NULL, &g);
	EXPECT_INT(g.err, -ENOENT);
	EXPECT(strncmp(g.cause, url, strlen(url)) == 0);

	/* Refused through the callback, not from fetch_start. */
	fetch_one(cache, "gopher://x/y", NULL, &g);
	EXPECT(g.err < 0);
	EXPECT(strncmp(g.cause, "gopher://x/y: ", 14) == 0);
	fetch_one(cache, "file://otherhost/x", NULL, &g);
	EXPECT_INT(g.err, -EINVAL);
	snprintf(url, sizeof(url), "file://%s", src);
	fetch_one(cache, url, "not-a-digest", &g);
	EXPECT_INT(g.err, -EINVAL);
	EXPECT(strstr(g.cause, "not-a-digest") != NULL);

	/* Two requests share a copy; one canceled, the other answered. Then
	 * the manager closes with a copy in flight: no callback, a clean loop. */
	{
		struct fetch_opts o = {.url = url};
		struct fetch_mgr *m = NULL;
		struct fetch_req *q1 = NULL;
		uv_loop_t loop;

		f = fopen(src, "a");
		fputs("changed", f);
		fclose(f);
		memset(&g, 0, sizeof(g));
		memset(&g2, 0, sizeof(g2));
		uv_loop_init(&loop);
		EXPECT_INT(fetch_mgr_create(&loop, cache, NULL, &m), 0);
		EXPECT_INT(fetch_start(m, &o, NULL, done_cb, &g, &q1), 0);
		EXPECT_INT(fetch_start(m, &o, NULL, done_cb, &g2, NULL), 0);
		fetch_cancel(q1);
		while (g2.calls == 0) {
			uv_run(&loop, UV_RUN_ONCE);
		}
		EXPECT_INT(g.calls, 0);
		EXPECT_INT(g2.err, 0);
		EXPECT_INT(g2.size, sizeof(data) + 7);
		EXPECT(!g2.from_cache);

		f = fopen(src, "a");
		fputs("again", f);
		fclose(f);
		memset(&g, 0, sizeof(g));
		EXPECT_INT(fetch_start(m, &o, NULL, done_cb, &g, NULL), 0);
		fetch_mgr_close(m);
		uv_run(&loop, UV_RUN_DEFAULT);
		EXPECT_INT(uv_loop_close(&loop), 0);
		EXPECT_INT(g.calls, 0);
		EXPECT_INT(fetch_start(NULL, &o, NULL, done_cb, &g, NULL), -EINVAL);
	}
	util_rm_rf(dir);
	TEST_DONE();
}

#include "httppost.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "lazylib.h"

/* libcurl is loaded on first use, not linked: lazylib.h says why. */
struct curl_api {
	__typeof__(&curl_easy_init) init;
	__typeof__(&curl_easy_setopt) setopt;
	__typeof__(&curl_easy_perform) perform;
	__typeof__(&curl_easy_getinfo) getinfo;
	__typeof__(&curl_easy_strerror) strerror;
	__typeof__(&curl_easy_cleanup) cleanup;
	__typeof__(&curl_slist_append) slist_append;
	__typeof__(&curl_slist_free_all) slist_free_all;
};

static int curl_load(struct curl_api *api, char *err, size_t errlen)
{
	static const char *const names[] = {
	    "curl_easy_init",     "curl_easy_setopt",  "curl_easy_perform", "curl_easy_getinfo",
	    "curl_easy_strerror", "curl_easy_cleanup", "curl_slist_append", "curl_slist_free_all",
	};
	void *fns[sizeof(names) / sizeof(names[0])];
	int r =
	    lazylib_load("libcurl.so.4", names, fns, sizeof(names) / sizeof(names[0]), err, errlen);

	if (r < 0) {
		return r;
	}
	*(void **)&api->init = fns[0];
	*(void **)&api->setopt = fns[1];
	*(void **)&api->perform = fns[2];
	*(void **)&api->getinfo = fns[3];
	*(void **)&api->strerror = fns[4];
	*(void **)&api->cleanup = fns[5];
	*(void **)&api->slist_append = fns[6];
	*(void **)&api->slist_free_all = fns[7];
	return 0;
}

static size_t body_write_cb(char *data, size_t size, size_t nmemb, void *ud)
{
	struct httppost_reply *b = ud;
	size_t n = size * nmemb;
	char *nd;

	/* Returning short makes curl fail the transfer (CURLE_WRITE_ERROR). */
	if (b->len + n > HTTPPOST_BODY_MAX || !(nd = realloc(b->body, b->len + n + 1))) {
		return 0;
	}
	b->body = nd;
	memcpy(b->body + b->len, data, n);
	b->len += n;
	b->body[b->len] = '\0';
	return n;
}

int httppost_json(const char *url, const char *data, double timeout, struct httppost_reply *ret,
                  char *err, size_t errlen)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL;
	struct curl_api api;
	CURL *curl = NULL;
	int r;

	*ret = (struct httppost_reply){0};
	r = curl_load(&api, err, errlen);
	if (r < 0) {
		return r;
	}
	curl = api.init();
	hdrs = api.slist_append(NULL, "Content-Type: application/json");
	if (!curl || !hdrs) {
		snprintf(err, errlen, "out of memory");
		r = -ENOMEM;
		goto out;
	}
	api.setopt(curl, CURLOPT_URL, url);
	api.setopt(curl, CURLOPT_NOPROXY, "*");
	api.setopt(curl, CURLOPT_POSTFIELDS, data);
	api.setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(data));
	api.setopt(curl, CURLOPT_HTTPHEADER, hdrs);
	api.setopt(curl, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000));
	api.setopt(curl, CURLOPT_NOSIGNAL, 1L);
	api.setopt(curl, CURLOPT_WRITEFUNCTION, body_write_cb);
	api.setopt(curl, CURLOPT_WRITEDATA, ret);
	api.setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	api.setopt(curl, CURLOPT_USERAGENT, "runyard/" RUNYARD_VERSION);
	CURLcode rc = api.perform(curl);
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "%s", errbuf[0] ? errbuf : api.strerror(rc));
		r = rc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -EIO;
		goto out;
	}
	api.getinfo(curl, CURLINFO_RESPONSE_CODE, &ret->status);
	r = 0;
out:
	if (r < 0) {
		free(ret->body);
		*ret = (struct httppost_reply){0};
	}
	api.slist_free_all(hdrs);
	if (curl) {
		api.cleanup(curl);
	}
	return r;
}

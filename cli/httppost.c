#include "httppost.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

/* libcurl is loaded on first use rather than linked: linked, the dynamic
 * loader maps it and its dependencies (TLS, Kerberos, LDAP, IDN, ...) and
 * runs their constructors in every CLI call, about 10 ms each, which is
 * more than a whole trivial run is allowed. Only this verb pays for it. */
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
	void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		snprintf(err, errlen, "cannot load libcurl: %s", dlerror());
		return -ENOENT;
	}
	/* Held until exit: the process makes one request. */
	*(void **)&api->init = dlsym(h, "curl_easy_init");
	*(void **)&api->setopt = dlsym(h, "curl_easy_setopt");
	*(void **)&api->perform = dlsym(h, "curl_easy_perform");
	*(void **)&api->getinfo = dlsym(h, "curl_easy_getinfo");
	*(void **)&api->strerror = dlsym(h, "curl_easy_strerror");
	*(void **)&api->cleanup = dlsym(h, "curl_easy_cleanup");
	*(void **)&api->slist_append = dlsym(h, "curl_slist_append");
	*(void **)&api->slist_free_all = dlsym(h, "curl_slist_free_all");
	if (!api->init || !api->setopt || !api->perform || !api->getinfo || !api->strerror ||
	    !api->cleanup || !api->slist_append || !api->slist_free_all) {
		snprintf(err, errlen, "libcurl lacks a function runyard needs: %s", dlerror());
		return -ENOSYS;
	}
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

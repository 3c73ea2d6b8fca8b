/* One HTTP POST of a JSON body, for 'runyard service invoke'. */
#pragma once

#include <stddef.h>

/* Largest response body kept; a longer one fails the request. */
#define HTTPPOST_BODY_MAX (64u * 1024 * 1024)

struct httppost_reply {
	long status; /* the HTTP status code */
	char *body;  /* NUL-terminated, or NULL when empty; the caller frees it */
	size_t len;
};

/* POST data (Content-Type: application/json) to url, no proxy, within
 * timeout seconds. 0 with the reply when an HTTP response came back; else
 * a negative errno with what went wrong in err. */
int httppost_json(const char *url, const char *data, double timeout, struct httppost_reply *ret,
                  char *err, size_t errlen);

/* Message shapes of the protocol: requests, replies, events, typed arguments. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* {"id":id,"op":op,"args":args}; takes ownership of args (may be NULL). */
cJSON *msg_request(int64_t id, const char *op, cJSON *args);

/* {"id":id,"ok":true,"result":result}; takes ownership of result (NULL: {}). */
cJSON *msg_reply_ok(int64_t id, cJSON *result);

/* {"id":id,"ok":false,"error":{"code":code,"message":...}}. */
cJSON *msg_reply_error(int64_t id, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* {"event":name,"sub":sub,"data":data}; takes ownership of data. */
cJSON *msg_event(const char *name, int64_t sub, cJSON *data);

/* Compact JSON text of msg, malloc'd; NULL on allocation failure. */
char *msg_print(const cJSON *msg, size_t *ret_len);

/* Typed access to request arguments. Each returns 0 and sets *ret, returns 0
 * and leaves *ret alone when the argument is absent (or null) and not
 * required, or returns -EINVAL with a message in *cause that names the
 * argument and the expected type. */
int msg_arg_string(const cJSON *args, const char *name, bool required, const char **ret,
		   char **cause);
int msg_arg_int(const cJSON *args, const char *name, bool required, int64_t min, int64_t max,
		int64_t *ret, char **cause);
int msg_arg_number(const cJSON *args, const char *name, bool required, double min, double max,
		   double *ret, char **cause);
int msg_arg_bool(const cJSON *args, const char *name, bool required, bool *ret, char **cause);
/* A non-empty array of strings (when required); *ret points into args. */
int msg_arg_string_array(const cJSON *args, const char *name, bool required, const cJSON **ret,
			 char **cause);
/* An object whose values are all strings; *ret points into args. */
int msg_arg_string_map(const cJSON *args, const char *name, bool required, const cJSON **ret,
		       char **cause);

/* Format unix seconds as ISO 8601 UTC with microseconds:
 * 2026-11-28T04:03:03.123456Z. buf must hold 32 bytes. */
void msg_format_time(double t, char buf[32]);

/* Parse the format above back to unix seconds; -EINVAL when it is not one. */
int msg_parse_time(const char *s, double *ret);

/* Add a timestamp string, or null when t <= 0. */
void msg_add_time(cJSON *obj, const char *name, double t);

/* Copy of s[0..len) with invalid UTF-8 replaced by U+FFFD and NUL bytes
 * dropped, so it can travel in a JSON string; NUL-terminated, malloc'd. */
char *utf8_sanitize(const char *s, size_t len, size_t *ret_len);

/* Why a request's JSON text may not be taken although it parses, or NULL:
 * bytes that are not UTF-8 (cJSON passes them through, and every reply that
 * shows them would be invalid JSON too), or a \u0000 in a string, which
 * C strings would cut short silently. */
const char *msg_payload_problem(const char *p, size_t len);

/* Whether s[0..len) is valid UTF-8 (the strict rules of utf8_sanitize). */
bool utf8_valid(const char *s, size_t len);

/* printf into a new string; NULL on allocation failure. */
char *msg_strdupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

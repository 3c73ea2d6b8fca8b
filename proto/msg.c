#include "msg.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

char *msg_strdupf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0) {
		s = NULL;
	}
	va_end(ap);
	return s;
}

cJSON *msg_request(int64_t id, const char *op, cJSON *args)
{
	cJSON *m = cJSON_CreateObject();

	cJSON_AddNumberToObject(m, "id", (double)id);
	cJSON_AddStringToObject(m, "op", op);
	cJSON_AddItemToObject(m, "args", args ? args : cJSON_CreateObject());
	return m;
}

cJSON *msg_reply_ok(int64_t id, cJSON *result)
{
	cJSON *m = cJSON_CreateObject();

	cJSON_AddNumberToObject(m, "id", (double)id);
	cJSON_AddTrueToObject(m, "ok");
	cJSON_AddItemToObject(m, "result", result ? result : cJSON_CreateObject());
	return m;
}

cJSON *msg_reply_error(int64_t id, const char *code, const char *fmt, ...)
{
	cJSON *m = cJSON_CreateObject();
	cJSON *err = cJSON_CreateObject();
	char *text = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0) {
		text = NULL;
	}
	va_end(ap);
	cJSON_AddNumberToObject(m, "id", (double)id);
	cJSON_AddFalseToObject(m, "ok");
	cJSON_AddStringToObject(err, "code", code);
	cJSON_AddStringToObject(err, "message", text ? text : code);
	cJSON_AddItemToObject(m, "error", err);
	free(text);
	return m;
}

cJSON *msg_event(const char *name, int64_t sub, cJSON *data)
{
	cJSON *m = cJSON_CreateObject();

	cJSON_AddStringToObject(m, "event", name);
	cJSON_AddNumberToObject(m, "sub", (double)sub);
	cJSON_AddItemToObject(m, "data", data ? data : cJSON_CreateObject());
	return m;
}

char *msg_print(const cJSON *msg, size_t *ret_len)
{
	char *s = cJSON_PrintUnformatted(msg);

	if (s && ret_len) {
		*ret_len = strlen(s);
	}
	return s;
}

static int bad_type(const char *name, const char *what, char **cause)
{
	if (cause) {
		*cause = msg_strdupf("argument '%s' must be %s", name, what);
	}
	return -EINVAL;
}

/* The item, or NULL when absent or JSON null; -EINVAL when required and missing. */
static int lookup(const cJSON *args, const char *name, bool required, const cJSON **ret,
		  char **cause)
{
	const cJSON *it = args ? cJSON_GetObjectItemCaseSensitive(args, name) : NULL;

	if (!it || cJSON_IsNull(it)) {
		if (required) {
			if (cause) {
				*cause = msg_strdupf("argument '%s' is required", name);
			}
			return -EINVAL;
		}
		*ret = NULL;
		return 0;
	}
	*ret = it;
	return 0;
}

int msg_arg_string(const cJSON *args, const char *name, bool required, const char **ret,
		   char **cause)
{
	const cJSON *it;
	int r = lookup(args, name, required, &it, cause);

	if (r < 0 || !it) {
		return r;
	}
	if (!cJSON_IsString(it)) {
		return bad_type(name, "a string", cause);
	}
	*ret = it->valuestring;
	return 0;
}

int msg_arg_int(const cJSON *args, const char *name, bool required, int64_t min, int64_t max,
		int64_t *ret, char **cause)
{
	const cJSON *it;
	int r = lookup(args, name, required, &it, cause);

	if (r < 0 || !it) {
		return r;
	}
	double v = it->valuedouble;
	if (!cJSON_IsNumber(it) || !isfinite(v) || v != floor(v) || v < (double)min ||
	    v > (double)max) {
		if (cause) {
			*cause = msg_strdupf("argument '%s' must be an integer from %lld to %lld",
					     name, (long long)min, (long long)max);
		}
		return -EINVAL;
	}
	*ret = (int64_t)v;
	return 0;
}

int msg_arg_number(const cJSON *args, const char *name, bool required, double min, double max,
		   double *ret, char **cause)
{
	const cJSON *it;
	int r = lookup(args, name, required, &it, cause);

	if (r < 0 || !it) {
		return r;
	}
	if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) || it->valuedouble < min ||
	    it->valuedouble > max) {
		if (cause) {
			*cause = msg_strdupf("argument '%s' must be a number from %g to %g", name,
					     min, max);
		}
		return -EINVAL;
	}
	*ret = it->valuedouble;
	return 0;
}

int msg_arg_bool(const cJSON *args, const char *name, bool required, bool *ret, char **cause)
{
	const cJSON *it;
	int r = lookup(args, name, required, &it, cause);

	if (r < 0 || !it) {
		return r;
	}
	if (!cJSON_IsBool(it)) {
		return bad_type(name, "true or false", cause);
	}
	*ret = cJSON_IsTrue(it);
	return 0;
}

int msg_arg_string_array(const cJSON *args, const char *name, bool required, const cJSON **ret,
			 char **cause)
{
	const cJSON *it, *el;
	int r = lookup(args, name, required, &it, cause);

	if (r < 0 || !it) {
		return r;
	}
	if (!cJSON_IsArray(it) || (required && cJSON_GetArraySize(it) == 0)) {
		return bad_type(name, required ? "a non-empty array of strings" : "an array of strings",
				cause);
	}
	cJSON_ArrayForEach(el, it) {
		if (!cJSON_IsString(el)) {
			return bad_type(name, "an array of strings", cause);
		}
	}
	*ret = it;
	return 0;
}

int msg_arg_string_map(const cJSON *args, const char *name, bool required, const cJSON **ret,
		       char **cause)
{
	const cJSON *it, *el;
	int r = lookup(args, name, required, &it, cause);

	if (r < 0 || !it) {
		return r;
	}
	if (!cJSON_IsObject(it)) {
		return bad_type(name, "an object of strings", cause);
	}
	cJSON_ArrayForEach(el, it) {
		if (!cJSON_IsString(el)) {
			return bad_type(name, "an object of strings", cause);
		}
	}
	*ret = it;
	return 0;
}

void msg_format_time(double t, char buf[32])
{
	time_t secs = (time_t)floor(t);
	int usec = (int)lround((t - (double)secs) * 1e6);
	struct tm tm;
	size_t n;

	if (usec >= 1000000) {
		secs++;
		usec -= 1000000;
	}
	if (usec < 0) {
		usec = 0;
	}
	gmtime_r(&secs, &tm);
	n = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, 32 - n, ".%06dZ", usec % 1000000);
}

int msg_parse_time(const char *s, double *ret)
{
	struct tm tm = {0};
	int usec = 0, n = 0;

	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%6dZ%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &usec, &n) != 7 ||
	    s[n] != '\0') {
		return -EINVAL;
	}
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*ret = (double)timegm(&tm) + usec / 1e6;
	return 0;
}

void msg_add_time(cJSON *obj, const char *name, double t)
{
	char buf[32];

	if (t <= 0) {
		cJSON_AddNullToObject(obj, name);
		return;
	}
	msg_format_time(t, buf);
	cJSON_AddStringToObject(obj, name, buf);
}

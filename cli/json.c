/* Reading replies: typed lookups that tolerate a missing or mistyped key. */
#include "json.h"

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

#include "msg.h"

const char *json_str(const cJSON *obj, const char *key)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsString(it) ? it->valuestring : NULL;
}

bool json_num(const cJSON *obj, const char *key, double *ret)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (!cJSON_IsNumber(it)) {
		return false;
	}
	*ret = it->valuedouble;
	return true;
}

long long json_int(const cJSON *obj, const char *key, long long def)
{
	double v;

	/* Out of range, the cast would be undefined: a reply is not trusted. */
	if (!json_num(obj, key, &v) || !(v > -9e18 && v < 9e18)) {
		return def;
	}
	return (long long)v;
}

/* Seconds between two protocol timestamps; negative when either is missing. */
double json_time(const cJSON *obj, const char *key)
{
	const char *s = json_str(obj, key);
	double t;

	return s && msg_parse_time(s, &t) == 0 ? t : -1;
}

/* Replace obj[key] with item (taken). */
void json_set(cJSON *obj, const char *key, cJSON *item)
{
	cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
	cJSON_AddItemToObject(obj, key, item);
}

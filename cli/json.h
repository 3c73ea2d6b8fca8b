/* Reading replies: typed lookups that tolerate a missing or mistyped key. */
#pragma once

#include <stdbool.h>

#include <cjson/cJSON.h>

/* obj[key] when it is a string, else NULL. */
const char *json_str(const cJSON *obj, const char *key);

/* obj[key] when it is a number: true and *ret set. */
bool json_num(const cJSON *obj, const char *key, double *ret);

/* obj[key] as an integer, def when missing or out of range. */
long long json_int(const cJSON *obj, const char *key, long long def);

/* obj[key], a protocol timestamp, in seconds since the epoch; -1 when missing. */
double json_time(const cJSON *obj, const char *key);

/* Replace obj[key] with item (taken). */
void json_set(cJSON *obj, const char *key, cJSON *item);

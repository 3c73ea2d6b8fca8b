/* From a decoded message to the handler of its op. */
#pragma once

#include <cjson/cJSON.h>

struct conn;

/* Handle one frame's JSON (NULL when it did not parse). */
void dispatch_message(struct conn *c, const cJSON *msg, const char *bad);

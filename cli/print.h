/* Printing for people and scripts that several verb groups share. */
#pragma once

#include <cjson/cJSON.h>

/* Print a document for --json; 0 or an exit status. */
int print_json(const cJSON *doc);

/* "Label:     value", "-" for an empty value. */
void print_field(const char *label, const char *value);
/* "Resources:  cpu 1, memory 0.5 GB" from o's cpu_key and mem_key (GB),
 * or "-" when o has neither. */
void print_cpu_mem(const cJSON *o, const char *cpu_key, const char *mem_key);

/* "Tags:       k=v", further pairs aligned under the first. */
void print_key_values(const char *title, const cJSON *map);

/* "Service SVC is STATE: URI (model M)". */
void print_service_line(const cJSON *s);

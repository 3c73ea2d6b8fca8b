/* Printing for people and scripts that several verb groups share. */
#include "print.h"

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

#include "json.h"
#include "render.h"
#include "verb.h"

/* Print a document for --json; 0 or an exit status. */
int print_json(const cJSON *doc)
{
	if (render_json(doc) < 0) {
		fprintf(stderr, "runyard: out of memory printing JSON\n");
		return VERB_EXIT_USAGE;
	}
	return 0;
}

void print_field(const char *label, const char *value)
{
	printf("%-11s %s\n", label, value && value[0] ? value : "-");
}

void print_cpu_mem(const cJSON *o, const char *cpu_key, const char *mem_key)
{
	double cpu = 0, mem = 0;
	bool has_cpu = json_num(o, cpu_key, &cpu), has_mem = json_num(o, mem_key, &mem);
	char buf[96];

	if (!has_cpu && !has_mem) {
		print_field("Resources:", "-");
		return;
	}
	snprintf(buf, sizeof(buf), "%s%g%s%s%g%s", has_cpu ? "cpu " : "", has_cpu ? cpu : 0.0,
		 has_cpu && has_mem ? ", " : "", has_mem ? "memory " : "", has_mem ? mem : 0.0,
		 has_mem ? " GB" : "");
	print_field("Resources:", buf);
}

/* "Tags:       k=v", further pairs aligned under the first, as print_field() does. */
void print_key_values(const char *title, const cJSON *map)
{
	const cJSON *kv;
	const char *label = title;

	if (cJSON_GetArraySize(map) == 0) {
		print_field(title, "-");
		return;
	}
	cJSON_ArrayForEach(kv, map) {
		printf("%-11s %s=%s\n", label, kv->string, cJSON_IsString(kv) ? kv->valuestring : "");
		label = "";
	}
}

void print_service_line(const cJSON *s)
{
	const char *state = json_str(s, "state");

	printf("Service %s is %s%s%s: %s (model %s)\n", json_str(s, "name"),
	       render_status_color(state ? state : ""), state ? state : "?", render_color_reset(),
	       json_str(s, "scoring_uri"), json_str(s, "model"));
}

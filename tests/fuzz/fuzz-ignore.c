/* Fuzz target: the ignore-file matcher (daemon/snapshot/ignore.c).
 *
 * The input is split at 0x01 bytes: the first part is a root ignore file,
 * the second one in directory "sub", and the rest are lines of paths, each
 * matched as a file and as a directory, inside and below "sub". Lines of
 * the root file are also matched against each path with ignore_glob
 * directly, and for a plain pattern (no '/', no leading '!' or '#', no
 * space, no backslash, no byte order mark) the matcher must decide exactly
 * as the glob does:
 * its literal and "*suffix" shortcuts may not change a result. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ignore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Paths and patterns are at most this long here: longer only costs time. */
#define MAX_LINE 512

static bool plain(const char *p)
{
	return *p && *p != '!' && *p != '#' && !strpbrk(p, "/ \\\r") &&
	       strncmp(p, "\xEF\xBB\xBF", 3) != 0; /* a byte order mark is skipped */
}

static void check_path(struct ignore *ig, const char *path)
{
	struct ignore_match m;
	char *below;

	ignore_match_path(ig, path, false, &m);
	ignore_match_path(ig, path, true, NULL);
	below = malloc(strlen(path) + 5);
	if (below) {
		sprintf(below, "sub/%s", path);
		ignore_match_path(ig, below, false, NULL);
		free(below);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *d = (const char *)data;
	const char *sep1 = memchr(d, 1, size);
	size_t root_len = sep1 ? (size_t)(sep1 - d) : size;
	const char *rest = sep1 ? sep1 + 1 : d + size;
	size_t rest_len = size - (size_t)(rest - d);
	const char *sep2 = memchr(rest, 1, rest_len);
	size_t sub_len = sep2 ? (size_t)(sep2 - rest) : rest_len;
	const char *paths = sep2 ? sep2 + 1 : rest + rest_len;
	size_t paths_len = size - (size_t)(paths - d);
	struct ignore *ig = NULL;
	char *copy;

	if (ignore_create(IGNORE_FILE_AML, &ig) < 0) {
		return 0;
	}
	ignore_push_buf(ig, "", d, root_len);
	ignore_push_buf(ig, "sub", rest, sub_len);
	copy = malloc(paths_len + 1);
	if (!copy) {
		ignore_destroy(ig);
		return 0;
	}
	memcpy(copy, paths, paths_len);
	copy[paths_len] = '\0';
	for (char *line = copy, *next; line; line = next) {
		next = strchr(line, '\n');
		if (next) {
			*next++ = '\0';
		}
		if (!*line || strlen(line) > MAX_LINE) {
			continue;
		}
		check_path(ig, line);
		/* Each root pattern line against this path, directly. */
		const char *p = d;
		while (p < d + root_len) {
			const char *nl = memchr(p, '\n', (size_t)(d + root_len - p));
			size_t l = nl ? (size_t)(nl - p) : (size_t)(d + root_len - p);
			if (l <= MAX_LINE) {
				char pat[MAX_LINE + 1];
				memcpy(pat, p, l);
				pat[l] = '\0';
				pat[strlen(pat)] = '\0';
				bool g = ignore_glob(pat, line, true);
				(void)ignore_glob(pat, line, false);
				if (plain(pat) && !strchr(line, '/') && strlen(pat) == l) {
					struct ignore *one = NULL;
					if (ignore_create(IGNORE_FILE_AML, &one) == 0 &&
					    ignore_push_buf(one, "", pat, l) == 0) {
						bool m = ignore_match_path(one, line, false,
						                           NULL) == IGNORE_EXCLUDED;
						if (m != g) {
							fprintf(stderr,
							        "matcher and glob disagree: '%s' "
							        "on '%s'\n",
							        pat, line);
							abort();
						}
					}
					ignore_destroy(one);
				}
			}
			p += l + 1;
		}
	}
	free(copy);
	ignore_destroy(ig);
	return 0;
}

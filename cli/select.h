/* Naming many runs at once: ids and numbers, ranges of numbers (12-20) and
 * the selectors --experiment, --status and --parent, turned into one list
 * for the verbs that act on several runs (cancel). */
#pragma once

#include <cjson/cJSON.h>

struct ctx;

struct select_opts {
	const char *experiment;
	const char *status;
	const char *parent;
};

/* Whether any selector was given. */
int select_any(const struct select_opts *o);

/* refs[0..n) and the selectors as a JSON array of run references (strings),
 * in the order given, the selectors' runs (newest first) after them. 0 or
 * an exit status (said why): a backwards or malformed range, no run
 * matching. */
int select_runs(struct ctx *ctx, char *const *refs, int n, const struct select_opts *o,
		cJSON **ret);

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

/* The selectors' options, for a verb's option table, and their numbers
 * (above every verb's own). */
enum {
	SELECT_OPT_EXPERIMENT = 0x1000,
	SELECT_OPT_STATUS,
	SELECT_OPT_PARENT,
};
#define SELECT_OPTIONS                                                              \
	{"experiment", required_argument, NULL, SELECT_OPT_EXPERIMENT},             \
	{"status", required_argument, NULL, SELECT_OPT_STATUS},                     \
	{"parent", required_argument, NULL, SELECT_OPT_PARENT}

/* Take option c with its value: 1 when it was a selector's, else 0. */
int select_option(struct select_opts *o, int c, const char *arg);

/* Whether s reads as a run reference: a number (17, #17), a range (12-20)
 * or an id (EXPERIMENT_SECONDS_8HEX). For verbs whose runs are followed by
 * other words (tag's KEY=VALUE). */
int select_is_ref(const char *s);

/* Whether any selector was given. */
int select_any(const struct select_opts *o);

/* For a verb whose only options are the selectors and --json: parse argv,
 * then the runs it names (select_list). 0 or an exit status (VERB_HELP for
 * -h). */
int select_verb_args(struct ctx *ctx, int argc, char **argv, cJSON **ret, int *ret_many);

/* The runs argv[first..argc) and the selectors name; a usage error when
 * they name none. *ret_many: more than one may be meant (several, a range
 * or a selector), so the verb reports each and goes on. */
int select_list(struct ctx *ctx, int argc, char **argv, int first, const struct select_opts *o,
		cJSON **ret, int *ret_many);

/* refs[0..n) and the selectors as a JSON array of run references (strings),
 * in the order given, the selectors' runs (newest first) after them. 0 or
 * an exit status (said why): a backwards or malformed range, no run
 * matching. */
int select_runs(struct ctx *ctx, char *const *refs, int n, const struct select_opts *o,
		cJSON **ret);

/* refs[0..n) as a JSON array of run references, ranges spelled out, for a
 * verb whose selectors the daemon applies itself (rm). 0 or an exit status. */
int select_refs(struct ctx *ctx, char *const *refs, int n, cJSON **ret);

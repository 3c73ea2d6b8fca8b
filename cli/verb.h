/* The verb table: its entries, the context of one invocation, and the one dispatcher. */
#pragma once

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include <cjson/cJSON.h>

/* Exit statuses, as DESIGN.md's CLI conventions give them. */
enum {
	VERB_EXIT_OK = 0,
	VERB_EXIT_USAGE = 1,   /* a usage, connection or local error */
	VERB_EXIT_REFUSED = 2, /* the daemon refused, or the run failed */
	VERB_HELP = -1,	       /* from a run callback: print the entry's usage, exit 0 */
};

/* max_args: no limit. */
#define VERB_ANY -1

/* Options every verb takes; a file numbers its own from VERB_OPT_FIRST. */
enum {
	OPT_JSON = 256,
	VERB_OPT_FIRST,
};
#define VERB_COMMON_OPTIONS {"json", no_argument, NULL, OPT_JSON}, {"help", no_argument, NULL, 'h'}

struct ctx;

/* A table entry: a verb that runs, or a group of sub-verbs (subverbs set,
 * run NULL). min_args and max_args count a verb's positional arguments;
 * missing is the message for too few (for a group: no sub-verb, NULL to
 * print the group's usage), too_many for too many (NULL: "unexpected
 * argument 'X'"). */
struct verb {
	const char *name;
	int (*run)(struct ctx *ctx, int argc, char **argv);
	const struct verb *const *subverbs; /* NULL-terminated */
	const char *summary;
	const char *usage;
	int min_args;
	int max_args;
	const char *missing;
	const char *too_many;
};

/* Options given before the verb. */
struct verb_options {
	const char *socket; /* --socket PATH, or NULL */
	bool json;	    /* --json before the verb applies to it */
};

/* One invocation: the entry being run and what it has opened. */
struct ctx {
	const struct verb_options *opts;
	const struct verb *const *root; /* the top table, for help */
	const struct verb *verb;
	char *name; /* "submit", "daemon start": for messages */
	bool json;
	char *socket; /* resolved on first use */
	struct client *client;
};

/* Run the verb argv[0] of root with its arguments; returns the exit status. */
int verb_run(const struct verb *const *root, const struct verb_options *opts, int argc,
	     char **argv);

/* The overview: global options and one line per verb of root. */
void verb_print_overview(const struct verb *const *root, FILE *out);

/* "runyard help [COMMAND [SUBCOMMAND]]". */
extern const struct verb verb_help_entry;

/* Say what is wrong and where to look; returns VERB_EXIT_USAGE. */
__attribute__((format(printf, 2, 3))) int verb_usage_error(struct ctx *ctx, const char *fmt, ...);

/* What getopt_long's '?' or ':' was about; options is the verb's table. */
int verb_option_error(struct ctx *ctx, int c, char **argv, const struct option *options);

/* Check the positional arguments left after the options against the
 * entry's min_args and max_args; 0 or VERB_EXIT_USAGE (said why). */
int verb_args(struct ctx *ctx, int argc, char **argv);

/* verb_args, then the first positional argument (NULL when none). */
int verb_arg(struct ctx *ctx, int argc, char **argv, const char **ret_arg);

/* For verbs that take only the common options: parse them, then verb_arg.
 * VERB_HELP for --help. */
int verb_simple(struct ctx *ctx, int argc, char **argv, const char **ret_arg);

/* KEY=VALUE into obj; a usage error names what (a tag, a property). */
int verb_key_value(struct ctx *ctx, cJSON *obj, const char *arg, const char *what);

/* A positive number for option opt; a usage error names it. */
int verb_positive(struct ctx *ctx, const char *opt, const char *s, double *ret);

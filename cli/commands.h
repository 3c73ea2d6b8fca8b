/* The verbs of the runyard command line, one table entry each. */
#pragma once

#include <stdbool.h>
#include <stdio.h>

/* Exit statuses, as DESIGN.md's CLI conventions give them. */
enum {
	COMMANDS_EXIT_OK = 0,
	COMMANDS_EXIT_USAGE = 1,   /* a usage, connection or local error */
	COMMANDS_EXIT_REFUSED = 2, /* the daemon refused, or the run failed */
};

/* Options given before the verb. */
struct commands_options {
	const char *socket; /* --socket PATH, or NULL */
	bool json;	    /* --json before the verb applies to it */
};

/* Run the verb argv[0] with its arguments; returns the exit status. */
int commands_run(const struct commands_options *opts, int argc, char **argv);

/* The overview: global options and one line per verb. */
void commands_usage(FILE *out);

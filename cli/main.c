/* runyard: the command-line client of runyardd, and the table of its verbs. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "commands/commands.h"
#include "render.h"
#include "verb.h"

/* The verbs, in the order the overview lists them; each group's file
 * defines its entries beside its handlers. */
static const struct verb *const verbs[] = {
	&cmd_submit_entry,
	&cmd_runs_entry,
	&cmd_show_entry,
	&cmd_logs_entry,
	&cmd_wait_entry,
	&cmd_cancel_entry,
	&cmd_update_entry,
	&cmd_outputs_entry,
	&cmd_experiments_entry,
	&cmd_rm_entry,
	&cmd_gc_entry,
	&cmd_du_entry,
	&cmd_cache_entry,
	&cmd_daemon_entry,
	&cmd_ui_entry,
	&cmd_metrics_entry,
	&cmd_compare_entry,
	&cmd_tag_entry,
	&cmd_ignore_entry,
	&cmd_snapshot_entry,
	&cmd_model_entry,
	&cmd_service_entry,
	&cmd_env_entry,
	&cmd_compute_entry,
	&cmd_dataset_entry,
	&cmd_sweep_entry,
	&verb_help_entry,
	NULL,
};

enum {
	OPT_SOCKET = 256,
	OPT_GLOBAL_JSON,
	OPT_VERSION,
};

/* Flush stdout and report a failed write (a full disk, a closed pipe that
 * did not raise SIGPIPE), so a truncated output never exits 0. */
static int finish_stdout(int status)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "runyard: cannot write to stdout: %s\n", strerror(errno));
		return status ? status : VERB_EXIT_USAGE;
	}
	return status;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{"socket", required_argument, NULL, OPT_SOCKET},
		{"json", no_argument, NULL, OPT_GLOBAL_JSON},
		{"version", no_argument, NULL, OPT_VERSION},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct verb_options opts = {0};
	int c;

	render_init();
	opterr = 0;
	/* "+": global options stop at the verb, which parses its own. */
	while ((c = getopt_long(argc, argv, "+:h", options, NULL)) != -1) {
		switch (c) {
		case OPT_SOCKET:
			opts.socket = optarg;
			break;
		case OPT_GLOBAL_JSON:
			opts.json = true;
			break;
		case OPT_VERSION:
			printf("runyard %s\n", RUNYARD_VERSION);
			return finish_stdout(VERB_EXIT_OK);
		case 'h':
			verb_print_overview(verbs, stdout);
			return finish_stdout(VERB_EXIT_OK);
		case ':':
			fprintf(stderr, "runyard: option '%s' needs a value (see 'runyard --help')\n",
				argv[optind - 1]);
			return VERB_EXIT_USAGE;
		default:
			fprintf(stderr, "runyard: unknown option '%s' (see 'runyard --help')\n",
				argv[optind - 1]);
			return VERB_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		verb_print_overview(verbs, stderr);
		return VERB_EXIT_USAGE;
	}
	return finish_stdout(verb_run(verbs, &opts, argc - optind, argv + optind));
}

/* runyard: the command-line client of runyardd. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "render.h"

enum {
	OPT_SOCKET = 256,
	OPT_JSON,
	OPT_VERSION,
};

/* Flush stdout and report a failed write (a full disk, a closed pipe that
 * did not raise SIGPIPE), so a truncated output never exits 0. */
static int finish_stdout(int status)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "runyard: cannot write to stdout: %s\n", strerror(errno));
		return status ? status : COMMANDS_EXIT_USAGE;
	}
	return status;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{"socket", required_argument, NULL, OPT_SOCKET},
		{"json", no_argument, NULL, OPT_JSON},
		{"version", no_argument, NULL, OPT_VERSION},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct commands_options opts = {0};
	int c;

	render_init();
	opterr = 0;
	/* "+": global options stop at the verb, which parses its own. */
	while ((c = getopt_long(argc, argv, "+:h", options, NULL)) != -1) {
		switch (c) {
		case OPT_SOCKET:
			opts.socket = optarg;
			break;
		case OPT_JSON:
			opts.json = true;
			break;
		case OPT_VERSION:
			printf("runyard %s\n", RUNYARD_VERSION);
			return finish_stdout(COMMANDS_EXIT_OK);
		case 'h':
			commands_usage(stdout);
			return finish_stdout(COMMANDS_EXIT_OK);
		case ':':
			fprintf(stderr, "runyard: option '%s' needs a value (see 'runyard --help')\n",
				argv[optind - 1]);
			return COMMANDS_EXIT_USAGE;
		default:
			fprintf(stderr, "runyard: unknown option '%s' (see 'runyard --help')\n",
				argv[optind - 1]);
			return COMMANDS_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		commands_usage(stderr);
		return COMMANDS_EXIT_USAGE;
	}
	return finish_stdout(commands_run(&opts, argc - optind, argv + optind));
}

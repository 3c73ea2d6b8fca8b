/* runyardd: the runyard daemon. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "daemon.h"
#include "log.h"
#include "machine.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: runyardd [--state-dir DIR] [--socket PATH] [--max-runs N] [--grace S] "
		   "[--verbose]\n"
		   "\n"
		   "  --state-dir DIR  where runs, logs and outputs are kept\n"
		   "                   (default $XDG_STATE_HOME/runyard)\n"
		   "  --socket PATH    the Unix socket clients connect to\n"
		   "                   (default $XDG_RUNTIME_DIR/runyard/runyard.sock)\n"
		   "  --max-runs N     runs that may be in flight at once (default: CPUs)\n"
		   "  --grace S        seconds between SIGTERM and SIGKILL on cancel (default 10)\n"
		   "  --cpus N         CPUs runs may reserve (default: the daemon's affinity mask)\n"
		   "  --gpus N[:SIZE]  declare N GPUs of SIZE memory each (default 16G) instead\n"
		   "                   of finding them with NVML or nvidia-smi; 0: none\n"
		   "  --snapshot-max-mb N     largest snapshot in MB of 1,000,000 bytes (default 300)\n"
		   "  --snapshot-max-files N  most files in a snapshot (default 2000)\n"
		   "  --download-max-mb N     largest download in MB of 1,000,000 bytes\n"
		   "                          (default 10240)\n"
		   "  --download-timeout S    seconds one download may take, retries included,\n"
		   "                          and one output's upload to an HTTP datastore\n"
		   "                          (default 3600)\n"
		   "  --http ADDR:PORT        serve the web view there (docs/web.md); port 0:\n"
		   "                          a free one; loopback addresses only unless\n"
		   "  --http-allow-remote     is given too\n"
		   "  --min-free SIZE         refuse submits while the state directory's file\n"
		   "                          system has less free (default 100M; 0: never)\n"
		   "  --warn-free SIZE        'daemon status' warns below this (default 1G)\n"
		   "  --cache-max-size SIZE   the download cache's bound, least recently used\n"
		   "                          out first (default 20G; 0: none)\n"
		   "                          SIZE: bytes, or with K, M, G or T (powers of 1024)\n"
		   "  --keep-runs-days D      remove ended runs D days after they ended\n"
		   "  --keep-failed-days D    remove failed and canceled runs D days after\n"
		   "  --keep-runs N           keep the newest N runs of each experiment\n"
		   "                          (retention, at start and daily; never a run a\n"
		   "                          model came from or tagged keep; default: none)\n"
		   "  --log-level L    error, warn, info (default) or debug\n"
		   "  --verbose        the same as --log-level debug\n"
		   "\n"
		   "Under systemd, runyardd takes a socket passed with LISTEN_FDS, reports\n"
		   "readiness and status on NOTIFY_SOCKET and pings the watchdog.\n");
}

/* "100M", "2G", "512" (bytes) into bytes; -EINVAL. */
static int size_parse(const char *arg, uint64_t *ret)
{
	char *end;
	double v = strtod(arg, &end);
	double mult = 1;

	if (end == arg || !(v >= 0)) {
		return -EINVAL;
	}
	switch (*end) {
	case '\0':
		break;
	case 'k': case 'K': mult = 1024.0; end++; break;
	case 'm': case 'M': mult = 1024.0 * 1024; end++; break;
	case 'g': case 'G': mult = 1024.0 * 1024 * 1024; end++; break;
	case 't': case 'T': mult = 1024.0 * 1024 * 1024 * 1024; end++; break;
	default:
		return -EINVAL;
	}
	if (*end == 'B' || *end == 'b') {
		end++;
	}
	if (*end || v * mult > 1e18) {
		return -EINVAL;
	}
	*ret = (uint64_t)(v * mult);
	return 0;
}

/* "127.0.0.1:8265" or "[::1]:0" into cfg; -EINVAL. The address is kept
 * in a static buffer: cfg lives as long as main. */
static int http_parse(const char *arg, struct daemon_config *cfg)
{
	static char addr[64];
	const char *colon = strrchr(arg, ':');
	char *end;
	size_t len;

	if (!colon) {
		return -EINVAL;
	}
	len = (size_t)(colon - arg);
	if (arg[0] == '[' && len >= 2 && arg[len - 1] == ']') {
		arg++;
		len -= 2;
	}
	long port = strtol(colon + 1, &end, 10);
	if (len == 0 || len >= sizeof(addr) || *end || colon[1] == '\0' || port < 0 ||
	    port > 65535) {
		return -EINVAL;
	}
	memcpy(addr, arg, len);
	addr[len] = '\0';
	cfg->http_addr = addr;
	cfg->http_port = (int)port;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"state-dir", required_argument, NULL, 's'},
		{"socket", required_argument, NULL, 'S'},
		{"max-runs", required_argument, NULL, 'm'},
		{"grace", required_argument, NULL, 'g'},
		{"gpus", required_argument, NULL, 'G'},
		{"cpus", required_argument, NULL, 'C'},
		{"verbose", no_argument, NULL, 'v'},
		{"log-level", required_argument, NULL, 'l'},
		{"snapshot-max-mb", required_argument, NULL, 'B'},
		{"snapshot-max-files", required_argument, NULL, 'F'},
		{"download-max-mb", required_argument, NULL, 'D'},
		{"download-timeout", required_argument, NULL, 'T'},
		{"http", required_argument, NULL, 'H'},
		{"http-allow-remote", no_argument, NULL, 'R'},
		{"min-free", required_argument, NULL, 'f'},
		{"warn-free", required_argument, NULL, 'w'},
		{"cache-max-size", required_argument, NULL, 'c'},
		{"keep-runs-days", required_argument, NULL, 'k'},
		{"keep-failed-days", required_argument, NULL, 'K'},
		{"keep-runs", required_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct daemon_config cfg = {.gpus = -1, .min_free = UINT64_MAX, .warn_free = UINT64_MAX,
				   .cache_max = UINT64_MAX};
	struct daemon d;
	uv_loop_t loop;
	char *cause = NULL, *end;
	int c, r, status = 0;
	enum log_level level = LOG_LEVEL_INFO;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			cfg.state_dir = optarg;
			break;
		case 'S':
			cfg.socket_path = optarg;
			break;
		case 'm':
			cfg.max_runs = (int)strtol(optarg, &end, 10);
			if (*end || cfg.max_runs < 1 || cfg.max_runs > 100000) {
				fprintf(stderr, "runyardd: --max-runs wants a number from 1 to 100000, "
						"not '%s'\n", optarg);
				return 1;
			}
			break;
		case 'g':
			cfg.grace = strtod(optarg, &end);
			if (*end || !(cfg.grace > 0) || cfg.grace > 86400) {
				fprintf(stderr, "runyardd: --grace wants seconds above 0, not '%s'\n",
					optarg);
				return 1;
			}
			break;
		case 'B': {
			double mb = strtod(optarg, &end);
			if (*end || !(mb > 0) || mb > 1e9) {
				fprintf(stderr, "runyardd: --snapshot-max-mb wants a size in MB above "
						"0, not '%s'\n", optarg);
				return 1;
			}
			cfg.snapshot_max_bytes = mb * 1e6 < 1 ? 1 : (uint64_t)(mb * 1e6);
			break;
		}
		case 'F': {
			long long n = strtoll(optarg, &end, 10);
			if (*end || n < 1 || n > 100000000) {
				fprintf(stderr, "runyardd: --snapshot-max-files wants a number from 1 "
						"to 100000000, not '%s'\n", optarg);
				return 1;
			}
			cfg.snapshot_max_files = (uint64_t)n;
			break;
		}
		case 'D': {
			double mb = strtod(optarg, &end);
			if (*end || !(mb > 0) || mb > 1e9) {
				fprintf(stderr, "runyardd: --download-max-mb wants a size in MB above "
						"0, not '%s'\n", optarg);
				return 1;
			}
			cfg.download_max_bytes = mb * 1e6 < 1 ? 1 : (uint64_t)(mb * 1e6);
			break;
		}
		case 'T': {
			double s = strtod(optarg, &end);
			if (*end || !(s > 0) || s > 1e7) {
				fprintf(stderr, "runyardd: --download-timeout wants seconds above 0, "
						"not '%s'\n", optarg);
				return 1;
			}
			cfg.download_timeout_ms = s * 1000 < 1 ? 1 : (long)(s * 1000);
			break;
		}
		case 'H':
			if (http_parse(optarg, &cfg) < 0) {
				fprintf(stderr, "runyardd: --http wants ADDR:PORT (127.0.0.1:8265, "
						"[::1]:0), not '%s'\n",
					optarg);
				return 1;
			}
			break;
		case 'R':
			cfg.http_remote = true;
			break;
		case 'f':
		case 'w':
		case 'c':
			if (size_parse(optarg, c == 'f' ? &cfg.min_free
					       : c == 'w' ? &cfg.warn_free : &cfg.cache_max) < 0) {
				fprintf(stderr, "runyardd: --%s wants a size (bytes, or 500M, 2G), "
						"not '%s'\n",
					c == 'f' ? "min-free" : c == 'w' ? "warn-free" : "cache-max-size",
					optarg);
				return 1;
			}
			break;
		case 'k':
		case 'K': {
			double days = strtod(optarg, &end);
			if (*end || end == optarg || !(days > 0) || days > 1e6) {
				fprintf(stderr, "runyardd: --%s wants a number of days above 0, not "
						"'%s'\n",
					c == 'k' ? "keep-runs-days" : "keep-failed-days", optarg);
				return 1;
			}
			*(c == 'k' ? &cfg.keep_runs_days : &cfg.keep_failed_days) = days;
			break;
		}
		case 'n': {
			long long n = strtoll(optarg, &end, 10);
			if (*end || end == optarg || n < 1 || n > 100000000) {
				fprintf(stderr, "runyardd: --keep-runs wants a number from 1 to "
						"100000000, not '%s'\n",
					optarg);
				return 1;
			}
			cfg.keep_runs = n;
			break;
		}
		case 'C':
			cfg.cpus = (int)strtol(optarg, &end, 10);
			if (*end || cfg.cpus < 1 || cfg.cpus > 100000) {
				fprintf(stderr, "runyardd: --cpus wants a number from 1 to 100000, not "
						"'%s'\n",
					optarg);
				return 1;
			}
			break;
		case 'G':
			if (machine_gpus_parse(optarg, &cfg.gpus, &cfg.gpu_mem, &cause) < 0) {
				fprintf(stderr, "runyardd: %s\n", cause);
				free(cause);
				return 1;
			}
			break;
		case 'v':
			level = LOG_LEVEL_DEBUG;
			break;
		case 'l':
			if (strcmp(optarg, "error") == 0) {
				level = LOG_LEVEL_ERROR;
			} else if (strcmp(optarg, "warn") == 0) {
				level = LOG_LEVEL_WARN;
			} else if (strcmp(optarg, "info") == 0) {
				level = LOG_LEVEL_INFO;
			} else if (strcmp(optarg, "debug") == 0) {
				level = LOG_LEVEL_DEBUG;
			} else {
				fprintf(stderr, "runyardd: --log-level wants error, warn, info or "
						"debug, not '%s'\n", optarg);
				return 1;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("runyardd %s\n", RUNYARD_VERSION);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "runyardd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 1;
	}
	log_init(level);
	/* Runs inherit the daemon's environment; their stderr is not the
	 * journal, so they must not think it is. */
	unsetenv("JOURNAL_STREAM");
	/* A client that goes away mid-write must not take the daemon along. */
	signal(SIGPIPE, SIG_IGN);
	uv_loop_init(&loop);
	r = daemon_init(&d, &loop, &cfg, &cause);
	if (r < 0) {
		log_error("%s", cause ? cause : strerror(-r));
		free(cause);
		status = 1;
		daemon_stop(&d);
	} else if (daemon_resume(&d) < 0) {
		status = 1;
		daemon_stop(&d);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	r = uv_loop_close(&loop);
	if (r != 0) {
		log_error("the event loop still had open handles at exit: %s", uv_strerror(r));
		status = 1;
	}
	daemon_finish(&d);
	if (status == 0) {
		log_info("stopped");
	}
	return status;
}

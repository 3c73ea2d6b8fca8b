/* run.submit: validating a submission, taking its snapshot in the thread
 * pool, resolving its program, and queueing the run. */
#include "optable.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "blob.h"
#include "compute.h"
#include "context.h"
#include "enqueue.h"
#include "envs.h"
#include "gc.h"
#include "gitmeta.h"
#include "ignore.h"
#include "inputs.h"
#include "interactive.h"
#include "log.h"
#include "msg.h"
#include "proto.h"
#include "resources.h"
#include "request.h"
#include "run.h"
#include "scheduler.h"
#include "slurm.h"
#include "snaparchive.h"
#include "snapshot.h"
#include "statcache.h"
#include "store.h"
#include "sweep.h"
#include "tracking.h"
#include "util.h"

struct submit {
	uv_work_t work;
	struct request *req;
	struct daemon *d;
	uint64_t hold; /* the blob store's, until the run is recorded */
	char *source;
	char *experiment;
	char *python;
	char *path_env;
	cJSON *command;
	cJSON *env;
	double timeout;
	int priority;
	int retries;
	char retry_on[32]; /* canonical; "" with retries 0 */
	bool keep;
	bool dry_run;
	bool archive; /* source is an archive file, not a directory */
	struct snapshot_limits limits;
	char *target;    /* a compute target; NULL: local */
	char *resources; /* what the run asks of it (JSON) */
	char *request;   /* what a local run asks of the machine (JSON) */
	struct envs_resolved envr; /* --environment; name NULL: none */
	cJSON *inputs;  /* checked inputs and outputs (inputs.c) */
	cJSON *outputs;
	cJSON *sweep; /* sweep.submit: the checked definition; NULL: run.submit */
	int64_t after_seq[RUN_DEPS_MAX]; /* --after: the runs it waits for */
	const char *after_cond[RUN_DEPS_MAX];
	size_t nafter;
	/* "interactive": a run whose process is the client's (interactive.h),
	 * with its heartbeat timeout; parent: the run it is a child of (0: none). */
	bool interactive;
	double heartbeat_timeout;
	int64_t parent;
	/* results of the work */
	struct snapshot_info info;
	struct gitmeta git;
	cJSON *argv;
	int err;
	char *cause;
};

/* "retries": N (0 to RUN_RETRIES_MAX) and "retry_on": "fail,oom" or
 * ["fail", "oom"]; retry_on without retries is refused, being surely a
 * mistake. */
static int parse_retries(const cJSON *args, int64_t *retries, unsigned *mask, char **cause)
{
	const cJSON *on = cJSON_GetObjectItemCaseSensitive(args, "retry_on"), *v;
	char list[128] = "";
	size_t at = 0;

	if (msg_arg_int(args, "retries", false, 0, RUN_RETRIES_MAX, retries, cause) < 0) {
		return -EINVAL;
	}
	if (!on || cJSON_IsNull(on)) {
		return 0;
	}
	if (cJSON_IsString(on)) {
		snprintf(list, sizeof(list), "%s", on->valuestring);
	} else if (cJSON_IsArray(on)) {
		cJSON_ArrayForEach(v, on) {
			if (!cJSON_IsString(v) || at + strlen(v->valuestring) + 2 > sizeof(list)) {
				*cause = msg_strdupf("argument 'retry_on' must list some of fail, "
						     "oom, restart and any");
				return -EINVAL;
			}
			at += (size_t)snprintf(list + at, sizeof(list) - at, "%s%s", at ? "," : "",
					       v->valuestring);
		}
	} else {
		*cause = msg_strdupf("argument 'retry_on' must be a string or an array of strings");
		return -EINVAL;
	}
	const char *bad = NULL;
	if (run_retry_on_parse(list, mask, &bad) < 0) {
		*cause = bad ? msg_strdupf("argument 'retry_on': unknown kind '%.*s'; use fail, "
					   "oom, restart or any",
					   (int)strcspn(bad, ","), bad)
			     : msg_strdupf("argument 'retry_on' is empty; use fail, oom, "
					   "restart or any");
		return -EINVAL;
	}
	if (*retries == 0) {
		*cause = msg_strdupf("argument 'retry_on' needs 'retries' (how many times to try "
				     "again)");
		return -EINVAL;
	}
	return 0;
}

/* "after": ["RUN", "RUN:ok", "RUN:any", "RUN:fail", ...] into s. Replies the
 * error itself and returns < 0: an unknown run is NotFound. */
static int parse_after(struct request *req, struct submit *s)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(req->args, "after"), *v;

	if (!a || cJSON_IsNull(a)) {
		return 0;
	}
	if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) > RUN_DEPS_MAX) {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
			      "argument 'after' must be an array of at most %d runs, each "
			      "\"RUN\" or \"RUN:ok|any|fail\"",
			      RUN_DEPS_MAX);
		return -EINVAL;
	}
	cJSON_ArrayForEach(v, a) {
		char ref[256];
		const char *colon;
		enum run_dep_when when = RUN_DEP_OK;

		if (!cJSON_IsString(v) || !v->valuestring[0] || strlen(v->valuestring) >= sizeof(ref)) {
			request_error(req, PROTO_E_INVALID_ARGUMENT,
				      "each of 'after' must be \"RUN\" or \"RUN:ok|any|fail\"");
			return -EINVAL;
		}
		snprintf(ref, sizeof(ref), "%s", v->valuestring);
		colon = strrchr(ref, ':');
		if (colon) {
			if (run_dep_when_parse(colon + 1, &when) < 0) {
				request_error(req, PROTO_E_INVALID_ARGUMENT,
					      "'%s': after a run, say how it must end: ok (completed, "
					      "the default), any or fail",
					      v->valuestring);
				return -EINVAL;
			}
			ref[colon - ref] = '\0';
		}
		if (store_run_resolve(req->d->store, ref, &s->after_seq[s->nafter]) < 0) {
			request_error(req, PROTO_E_NOT_FOUND,
				      "no run '%s' to wait for (see 'runyard runs')", ref);
			return -ENOENT;
		}
		/* A new run can only wait for runs that exist already, so the
		 * waits never make a cycle. */
		s->after_cond[s->nafter++] = run_dep_when_name(when);
	}
	return 0;
}

static void submit_free(struct submit *s)
{
	/* after the run's row is in: its snapshot is referenced from here on */
	blob_release(s->d ? s->d->blobs : NULL, s->hold);
	request_release(s->req);
	free(s->source);
	free(s->experiment);
	free(s->python);
	free(s->path_env);
	free(s->target);
	free(s->resources);
	free(s->request);
	envs_resolved_finish(&s->envr);
	cJSON_Delete(s->command);
	cJSON_Delete(s->env);
	cJSON_Delete(s->inputs);
	cJSON_Delete(s->outputs);
	cJSON_Delete(s->sweep);
	cJSON_Delete(s->argv);
	snapshot_info_finish(&s->info);
	gitmeta_finish(&s->git);
	free(s->cause);
	free(s);
}

static bool has_dotdot(const char *p)
{
	const char *s = p;

	while ((s = strstr(s, ".."))) {
		bool start = s == p || s[-1] == '/';
		bool end = s[2] == '\0' || s[2] == '/';
		if (start && end) {
			return true;
		}
		s += 2;
	}
	return false;
}

/* Work out what the supervisor executes; see docs/protocol.md. */
static int resolve_program(struct submit *s)
{
	const char *prog = cJSON_GetArrayItem(s->command, 0)->valuestring;
	size_t plen = strlen(prog);
	bool py = plen > 3 && strcmp(prog + plen - 3, ".py") == 0;
	char *resolved = NULL, *python = NULL;
	bool in_snapshot = false;
	const char *rel = prog;
	int err = 0;

	if (plen == 0) {
		s->cause = msg_strdupf("the program name is empty");
		return -EINVAL;
	}
	while (strncmp(rel, "./", 2) == 0) {
		rel += 2;
	}
	if (prog[0] != '/') {
		if (has_dotdot(rel)) {
			s->cause = msg_strdupf("program '%s' climbs out of the source directory; "
					       "give a path inside it",
					       prog);
			return -EINVAL;
		}
		err = snapshot_info_has_file(s->d->blobs, &s->info, rel, &in_snapshot);
		if (err < 0) {
			s->cause = msg_strdupf("cannot read the snapshot: %s", strerror(-err));
			return err;
		}
	}
	if (py) {
		if (!in_snapshot) {
			s->cause = msg_strdupf("program '%s' is not a file in the source directory "
					       "%s (or it is ignored by .amlignore/.gitignore)",
					       prog, s->source);
			return -EINVAL;
		}
		if (strchr(s->python, '/')) {
			/* an environment's python is made in Preparing */
			if (!s->envr.built && access(s->python, X_OK) < 0) {
				s->cause = msg_strdupf("python interpreter '%s': %s", s->python,
						       strerror(errno));
				return -EINVAL;
			}
			python = strdup(s->python);
		} else {
			python = util_which(s->python, s->path_env);
			if (!python) {
				s->cause = msg_strdupf("python interpreter '%s' was not found on "
						       "PATH; pass --python /path/to/python",
						       s->python);
				return -EINVAL;
			}
		}
		resolved = msg_strdupf("%s", rel);
	} else if (in_snapshot) {
		resolved = msg_strdupf("./%s", rel);
	} else if (prog[0] == '/') {
		if (access(prog, X_OK) < 0) {
			s->cause = msg_strdupf("program '%s': %s", prog, strerror(errno));
			return -EINVAL;
		}
		resolved = strdup(prog);
	} else if (strchr(prog, '/')) {
		s->cause = msg_strdupf("program '%s' is not a file in the source directory %s",
				       prog, s->source);
		return -EINVAL;
	} else {
		resolved = util_which(prog, s->path_env);
		if (!resolved) {
			s->cause = msg_strdupf("program '%s' was found neither in the source "
					       "directory %s nor on PATH",
					       prog, s->source);
			return -EINVAL;
		}
	}
	s->argv = cJSON_CreateArray();
	if (python) {
		cJSON_AddItemToArray(s->argv, cJSON_CreateString(python));
	}
	cJSON_AddItemToArray(s->argv, cJSON_CreateString(resolved));
	for (int i = 1; i < cJSON_GetArraySize(s->command); i++) {
		cJSON_AddItemToArray(s->argv,
				     cJSON_CreateString(cJSON_GetArrayItem(s->command, i)->valuestring));
	}
	free(python);
	free(resolved);
	return 0;
}

/* Snapshot a source directory with its ignore rules and the stat cache. */
static int take_dir(struct submit *s)
{
	struct snapshot_opts opts = {.limits = s->limits, .list_only = s->dry_run};
	struct ignore *ig = NULL;
	char *cache_dir = NULL;
	int fd, r;

	fd = open(s->source, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		s->cause = msg_strdupf("cannot open the source directory %s: %s", s->source,
				       strerror(errno));
		return r;
	}
	r = ignore_create(ignore_choose(fd), &ig);
	/* With no ignore file at all, an over-limit message suggests creating
	 * an .amlignore (which then becomes the kind read). */
	if (r == 0) {
		opts.ignore_file =
			faccessat(fd, ignore_filename(ig), F_OK, AT_SYMLINK_NOFOLLOW) == 0
				? ignore_filename(ig)
				: IGNORE_FILE_AML;
	}
	close(fd);
	if (r < 0) {
		return r;
	}
	if (!s->dry_run) {
		cache_dir = util_path_join(blob_store_root(s->d->blobs), "statcache");
		opts.stat_cache = cache_dir ? statcache_path(cache_dir, s->source) : NULL;
	}
	opts.matcher = &ignore_walk_ops;
	opts.matcher_ud = ig;
	r = snapshot_take_with(s->d->blobs, s->source, &opts, &s->info, &s->cause);
	free((char *)opts.stat_cache);
	free(cache_dir);
	ignore_destroy(ig);
	return r;
}

/* Runs in the thread pool: everything that reads the source (the tree or
 * the archive, and git), none of it touching the store. */
static void submit_work(uv_work_t *w)
{
	struct submit *s = w->data;
	struct gitmeta_job *git = NULL;

	if (s->archive) {
		struct snapshot_opts opts = {.limits = s->limits, .list_only = s->dry_run};
		s->err = snaparchive_take(s->d->blobs, s->source, &opts, &s->info, &s->cause);
	} else {
		/* git status runs (another process) while the tree is walked. */
		if (!s->dry_run) {
			s->err = gitmeta_start(s->source, &git);
			if (s->err < 0) {
				return;
			}
		}
		s->err = take_dir(s);
	}
	if (s->err == 0 && !s->dry_run) {
		s->err = resolve_program(s);
	}
	if (s->err < 0) {
		gitmeta_abort(git);
		return;
	}
	s->err = gitmeta_collect(git, &s->git);
}

/* The dry run's reply: what would be taken, and whether it is over a limit. */
static void reply_dry_run(struct submit *s)
{
	cJSON *res = cJSON_CreateObject();
	char *clean = NULL;

	cJSON_AddBoolToObject(res, "dry_run", true);
	cJSON_AddStringToObject(res, "source", s->source);
	cJSON_AddNumberToObject(res, "files", (double)s->info.files);
	cJSON_AddNumberToObject(res, "bytes", (double)s->info.bytes);
	cJSON_AddNumberToObject(res, "dirs", (double)s->info.dirs);
	cJSON_AddNumberToObject(res, "symlinks", (double)s->info.symlinks);
	cJSON_AddNumberToObject(res, "max_snapshot_bytes", (double)s->limits.max_bytes);
	cJSON_AddNumberToObject(res, "max_snapshot_files", (double)s->limits.max_files);
	cJSON_AddItemToObject(res, "entries",
			      s->info.entries ? s->info.entries : cJSON_CreateArray());
	s->info.entries = NULL;
	cJSON_AddBoolToObject(res, "truncated", s->info.entries_truncated);
	cJSON_AddItemToObject(res, "skipped",
			      s->info.skipped ? s->info.skipped : cJSON_CreateArray());
	s->info.skipped = NULL;
	cJSON_AddNumberToObject(res, "skipped_total", (double)s->info.skipped_total);
	if (s->err == -EFBIG && s->cause) {
		clean = utf8_sanitize(s->cause, strlen(s->cause), NULL);
	}
	if (clean) {
		cJSON_AddStringToObject(res, "over_limit", clean);
	} else {
		cJSON_AddNullToObject(res, "over_limit");
	}
	free(clean);
	request_reply(s->req, res);
}

/* The run's environment as properties, so 'show' names it. */
static void add_environment_properties(struct submit *s, int64_t seq)
{
	char *ref;

	if (!s->envr.name) {
		return;
	}
	ref = msg_strdupf("%s:%lld", s->envr.name, (long long)s->envr.version);
	if (!ref || store_run_property_add(s->d->store, seq, "environment", ref, 0) < 0 ||
	    store_run_property_add(s->d->store, seq, "environment.hash", s->envr.hash, 0) < 0) {
		log_warn("run #%lld: cannot record its environment: %s", (long long)seq,
			 store_errmsg(s->d->store));
	}
	free(ref);
}

/* Run properties from git; a property that cannot be stored is logged, the
 * run goes on. */
static void add_git_properties(struct submit *s, int64_t seq)
{
	const struct {
		const char *key, *value;
	} props[] = {
		{"git.commit", s->git.commit},
		{"git.branch", s->git.branch},
		{"git.dirty", s->git.dirty},
		{"git.remote", s->git.remote},
	};

	if (!s->git.commit && !s->git.dirty) {
		return; /* not in a git work tree */
	}
	for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++) {
		char *clean;
		if (!props[i].value) {
			continue;
		}
		clean = utf8_sanitize(props[i].value, strlen(props[i].value), NULL);
		if (!clean || store_run_property_add(s->d->store, seq, props[i].key, clean, 0) < 0) {
			log_warn("run #%lld: cannot record property %s: %s", (long long)seq,
				 props[i].key, store_errmsg(s->d->store));
		}
		free(clean);
	}
}

/* The reply's account of the snapshot, shared by run.submit and sweep.submit. */
static void add_snapshot_info(struct submit *s, cJSON *res)
{
	cJSON_AddStringToObject(res, "experiment", s->experiment);
	cJSON_AddStringToObject(res, "snapshot", s->info.id);
	cJSON_AddNumberToObject(res, "files", (double)s->info.files);
	cJSON_AddNumberToObject(res, "bytes", (double)s->info.bytes);
	cJSON_AddItemToObject(res, "skipped",
			      s->info.skipped ? cJSON_Duplicate(s->info.skipped, true)
					      : cJSON_CreateArray());
	cJSON_AddNumberToObject(res, "skipped_total", (double)s->info.skipped_total);
	cJSON_AddNumberToObject(res, "read_files", (double)s->info.read_files);
	cJSON_AddNumberToObject(res, "cached_files", (double)s->info.cached_files);
	cJSON_AddNumberToObject(res, "new_blobs", (double)s->info.new_blobs);
	if (s->git.commit || s->git.dirty) {
		cJSON *g = cJSON_AddObjectToObject(res, "git");
		if (s->git.commit) {
			cJSON_AddStringToObject(g, "commit", s->git.commit);
		}
		if (s->git.branch) {
			char *b = utf8_sanitize(s->git.branch, strlen(s->git.branch), NULL);
			cJSON_AddStringToObject(g, "branch", b ? b : "");
			free(b);
		}
		if (s->git.dirty) {
			cJSON_AddBoolToObject(g, "dirty", strcmp(s->git.dirty, "true") == 0);
		}
		if (s->git.remote) {
			char *u = utf8_sanitize(s->git.remote, strlen(s->git.remote), NULL);
			cJSON_AddStringToObject(g, "remote", u ? u : "");
			free(u);
		}
	}
}

/* sweep.submit, once the snapshot is taken: the sweep and its template;
 * the children are made at the end of the tick, after its properties. */
static void submit_sweep(struct submit *s)
{
	struct daemon *d = s->d;
	struct sweep_template t = {
		.experiment = s->experiment,
		.priority = s->priority,
		.command = s->command,
		.argv = s->argv,
		.python = s->python,
		.source = s->source,
		.snapshot = s->info.id,
		.env = s->env,
		.timeout = s->timeout,
		.keep = s->keep,
		.target = s->target,
		.resources_json = s->resources,
		.request_json = s->request,
		.inputs = s->inputs,
		.outputs = s->outputs,
		.retries = s->retries,
		.retry_on = s->retry_on[0] ? s->retry_on : NULL,
	};
	char *id = NULL, *cause = NULL;
	int64_t seq;

	if (sweep_create(d, s->sweep, &t, &seq, &id, &cause) < 0) {
		request_error(s->req, PROTO_E_INTERNAL, "%s", cause ? cause : "out of memory");
		free(cause);
		return;
	}
	add_git_properties(s, seq);
	add_environment_properties(s, seq);
	cJSON *res = cJSON_CreateObject();
	cJSON_AddStringToObject(res, "id", id);
	cJSON_AddNumberToObject(res, "seq", (double)seq);
	cJSON_AddStringToObject(res, "status", "Running");
	bool array = cJSON_GetObjectItemCaseSensitive(s->sweep, "array") != NULL;
	cJSON_AddStringToObject(res, "kind", array ? "array" : "sweep");
	add_snapshot_info(s, res);
	cJSON_AddItemToObject(res, array ? "array" : "sweep", cJSON_Duplicate(s->sweep, true));
	request_reply(s->req, res);
	free(id);
}

/* An interactive run: recorded, started, and its token and tracking file
 * handed to the client. */
static void submit_interactive(struct submit *s, struct store_run_new *n)
{
	struct run *r = NULL;
	char *cause = NULL, *tf = NULL;
	int err;

	n->kind = "interactive";
	n->timeout = s->heartbeat_timeout;
	n->request_json = NULL;
	err = interactive_begin(s->d, n, &s->argv, &s->env, &r, &cause);
	if (err < 0) {
		request_error(s->req, PROTO_E_INTERNAL, "%s", cause ? cause : "out of memory");
		free(cause);
		return;
	}
	add_git_properties(s, r->seq);
	add_environment_properties(s, r->seq);
	log_info("run %s (#%lld) started: interactive, snapshot %.12s", r->id,
		 (long long)r->seq, s->info.id);
	tf = util_path_join(r->dir, TRACKING_FILE);
	cJSON *res = cJSON_CreateObject();
	cJSON_AddStringToObject(res, "id", r->id);
	cJSON_AddNumberToObject(res, "seq", (double)r->seq);
	cJSON_AddStringToObject(res, "status", run_status_name(r->status));
	cJSON_AddStringToObject(res, "kind", "interactive");
	cJSON_AddStringToObject(res, "token", r->token);
	cJSON_AddStringToObject(res, "tracking_file", tf ? tf : "");
	cJSON_AddNumberToObject(res, "heartbeat_timeout", r->timeout);
	add_snapshot_info(s, res);
	request_reply(s->req, res);
	free(tf);
}

static void submit_done(uv_work_t *w, int status)
{
	struct submit *s = w->data;
	struct daemon *d = s->d;
	struct request *req = s->req;
	char hex[9], *id = NULL, *cmd = NULL, *argv = NULL, *env = NULL, *skipped = NULL;
	char *cause = NULL;
	double now = util_now();
	struct run *r;
	int err;

	if (s->dry_run && (s->err == 0 || (s->err == -EFBIG && s->info.entries))) {
		reply_dry_run(s);
		goto out;
	}
	if (s->err < 0) {
		/* Causes quote file names, which are bytes; replies are UTF-8. */
		char *clean = s->cause ? utf8_sanitize(s->cause, strlen(s->cause), NULL) : NULL;
		request_error_errno(req, s->err, clean ? clean : s->cause);
		free(clean);
		goto out;
	}
	if (d->stopping) {
		request_error(req, PROTO_E_SHUTTING_DOWN, "runyardd is stopping; submit refused");
		goto out;
	}
	if (s->sweep) {
		submit_sweep(s);
		goto out;
	}
	util_random_hex(hex, 4);
	id = msg_strdupf("%s_%lld_%s", s->experiment, (long long)now, hex);
	cmd = cJSON_PrintUnformatted(s->command);
	argv = cJSON_PrintUnformatted(s->argv);
	env = cJSON_PrintUnformatted(s->env);
	skipped = s->info.skipped ? cJSON_PrintUnformatted(s->info.skipped) : NULL;
	if (!id || !cmd || !argv || !env) {
		request_error(req, PROTO_E_INTERNAL, "out of memory");
		goto out;
	}
	struct store_run_new n = {
		.id = id,
		.experiment = s->experiment,
		.priority = s->priority,
		.command_json = cmd,
		.argv_json = argv,
		.python = s->python,
		.source = s->source,
		.snapshot = s->info.id,
		.env_json = env,
		.timeout = s->timeout,
		.keep = s->keep,
		.created_at = now,
		.skipped_json = skipped,
		.target = s->target,
		.resources_json = s->resources,
		.request_json = s->request,
		.after_seq = s->after_seq,
		.after_cond = s->after_cond,
		.nafter = s->nafter,
		.retries = s->retries,
		.retry_on = s->retry_on[0] ? s->retry_on : NULL,
		.parent_seq = s->parent,
	};
	if (s->interactive) {
		submit_interactive(s, &n);
		goto out;
	}
	err = enqueue_run(d, &n, &s->argv, &s->env, s->inputs, s->outputs, &r, &cause);
	if (err < 0) {
		request_error(req, PROTO_E_INTERNAL, "%s", cause ? cause : "out of memory");
		free(cause);
		goto out;
	}
	add_git_properties(s, r->seq);
	add_environment_properties(s, r->seq);
	log_info("run %s (#%lld) queued: snapshot %.12s, %llu files", id, (long long)r->seq,
		 s->info.id, (unsigned long long)s->info.files);

	cJSON *res = cJSON_CreateObject();
	cJSON_AddStringToObject(res, "id", id);
	cJSON_AddNumberToObject(res, "seq", (double)r->seq);
	cJSON_AddStringToObject(res, "status", "Queued");
	add_snapshot_info(s, res);
	request_reply(req, res);
	scheduler_kick(d);
out:
	free(id);
	free(cmd);
	free(argv);
	free(env);
	free(skipped);
	submit_free(s);
}

/* "interactive", "heartbeat_timeout" and "parent". An interactive run has
 * no process of the daemon's, so what only a started process can use is
 * refused with it; a parent is a run in flight that is not a sweep (a
 * sweep's children are its own). Replies the error itself. */
static int parse_interactive(struct request *req, const cJSON *sweep, const char *target,
			     int64_t retries, bool *interactive, double *heartbeat,
			     int64_t *parent)
{
	static const char *const refused[] = {"inputs", "outputs", "after", "timeout",
					      "time_limit", "array", "nodes", "mem", "gpus"};
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(req->args, "parent");
	char *cause = NULL;

	if (msg_arg_bool(req->args, "interactive", false, interactive, &cause) < 0 ||
	    msg_arg_number(req->args, "heartbeat_timeout", false, INTERACTIVE_TIMEOUT_MIN,
			   INTERACTIVE_TIMEOUT_MAX, heartbeat, &cause) < 0) {
		request_arg_error(req, cause);
		return -EINVAL;
	}
	if (!*interactive && cJSON_GetObjectItemCaseSensitive(req->args, "heartbeat_timeout")) {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
			      "argument 'heartbeat_timeout' is for an interactive run only");
		return -EINVAL;
	}
	if (*interactive) {
		for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
			const cJSON *v = cJSON_GetObjectItemCaseSensitive(req->args, refused[i]);
			if (v && !cJSON_IsNull(v)) {
				request_error(req, PROTO_E_INVALID_ARGUMENT,
					      "argument '%s' cannot be given with 'interactive': "
					      "an interactive run's process is its client's",
					      refused[i]);
				return -EINVAL;
			}
		}
		if (sweep || target || retries > 0) {
			request_error(req, PROTO_E_INVALID_ARGUMENT,
				      "an interactive run runs where its client does: no sweep, "
				      "compute target or retries");
			return -EINVAL;
		}
	}
	if (!p || cJSON_IsNull(p)) {
		return 0;
	}
	if (sweep) {
		request_error(req, PROTO_E_INVALID_ARGUMENT, "a sweep cannot have a 'parent'");
		return -EINVAL;
	}
	if (request_resolve_run_arg(req, "parent", parent) < 0) {
		return -EINVAL;
	}
	if (!run_find(req->d, *parent) || sweep_active(req->d, *parent)) {
		request_error(req, PROTO_E_CONFLICT,
			      "run #%lld cannot be a parent: it has ended, or it is a sweep "
			      "(whose children are its trials)",
			      (long long)*parent);
		return -EINVAL;
	}
	return 0;
}

/* Check what run.submit and sweep.submit share and take the snapshot in the
 * thread pool; sweep is sweep.submit's checked definition, or NULL. */
static void submit_start(struct request *req, const cJSON *sweep)
{
	struct daemon *d = req->d;
	const cJSON *command = NULL, *env = NULL, *kv;
	const char *source = NULL, *experiment = "default", *python = "python3";
	double timeout = 0;
	int64_t priority = 0, max_bytes = (int64_t)d->snapshot_max_bytes,
		max_files = (int64_t)d->snapshot_max_files;
	bool keep = false, dry_run = false;
	char *cause = NULL;
	struct stat st;
	struct submit *s;
	struct slurm_resources res;
	struct res_request rreq;
	const char *target = NULL, *environment = NULL;
	struct envs_resolved envr = {0};

	if (msg_arg_bool(req->args, "dry_run", false, &dry_run, &cause) < 0 ||
	    msg_arg_string(req->args, "environment", false, &environment, &cause) < 0 ||
	    msg_arg_string_array(req->args, "command", !dry_run, &command, &cause) < 0 ||
	    msg_arg_string(req->args, "source", true, &source, &cause) < 0 ||
	    msg_arg_string(req->args, "experiment", false, &experiment, &cause) < 0 ||
	    msg_arg_string(req->args, "python", false, &python, &cause) < 0 ||
	    msg_arg_number(req->args, "timeout", false, 0.001, 1e9, &timeout, &cause) < 0 ||
	    msg_arg_int(req->args, "priority", false, -1000, 1000, &priority, &cause) < 0 ||
	    msg_arg_string_map(req->args, "env", false, &env, &cause) < 0 ||
	    msg_arg_bool(req->args, "keep", false, &keep, &cause) < 0 ||
	    msg_arg_int(req->args, "max_snapshot_bytes", false, 1, INT64_MAX / 2, &max_bytes,
			&cause) < 0 ||
	    msg_arg_int(req->args, "max_snapshot_files", false, 1, 100000000, &max_files,
			&cause) < 0) {
		request_arg_error(req, cause);
		return;
	}
	if (compute_submit_args(d, req->args, &target, &res, &rreq, &cause) < 0) {
		request_arg_error(req, cause);
		return;
	}
	int64_t retries = 0;
	unsigned retry_on = RUN_RETRY_FAIL | RUN_RETRY_OOM;
	if (parse_retries(req->args, &retries, &retry_on, &cause) < 0) {
		request_arg_error(req, cause);
		return;
	}
	bool interactive = false;
	double heartbeat = INTERACTIVE_TIMEOUT_DEFAULT;
	int64_t parent = 0;
	if (parse_interactive(req, sweep, target, retries, &interactive, &heartbeat, &parent) < 0) {
		return;
	}
	if (!util_valid_name(experiment)) {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
			      "experiment name '%s' is not valid: use letters, digits, '.', '_' "
			      "and '-', starting with a letter or digit, at most 255 characters",
			      experiment);
		return;
	}
	if (!*python) {
		request_error(req, PROTO_E_INVALID_ARGUMENT, "argument 'python' is empty");
		return;
	}
	if (environment && cJSON_GetObjectItemCaseSensitive(req->args, "python")) {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
			      "give --environment or --python, not both: the environment "
			      "chooses the interpreter");
		return;
	}
	cJSON_ArrayForEach(kv, env) {
		if (!kv->string[0] || strchr(kv->string, '=')) {
			request_error(req, PROTO_E_INVALID_ARGUMENT,
				      "environment variable name '%s' is not valid", kv->string);
			return;
		}
	}
	if (source[0] != '/') {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
			      "source directory '%s' must be an absolute path", source);
		return;
	}
	if (stat(source, &st) < 0) {
		request_error(req, errno == EACCES ? PROTO_E_PERMISSION : PROTO_E_INVALID_ARGUMENT,
			      "source directory %s: %s", source, strerror(errno));
		return;
	}
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
			      "source %s is neither a directory nor an archive file", source);
		return;
	}
	cJSON *inputs = NULL, *outputs = NULL;
	int ierr = inputs_submit_check(d, req->args, &inputs, &outputs, &cause);
	if (ierr < 0) {
		request_error(req, ierr == -ENOENT  ? PROTO_E_NOT_FOUND
				   : ierr == -E2BIG ? PROTO_E_TOO_LARGE
				   : ierr == -ENOMEM ? PROTO_E_INTERNAL
						     : PROTO_E_INVALID_ARGUMENT,
			      "%s", cause ? cause : "invalid inputs");
		free(cause);
		return;
	}
	if (environment) {
		int err = envs_resolve(d, environment, NULL, &envr, &cause);
		if (err < 0) {
			request_error(req, err == -ENOENT ? PROTO_E_NOT_FOUND
					   : err == -ENOMEM ? PROTO_E_INTERNAL
							    : PROTO_E_INVALID_ARGUMENT,
				      "%s", cause ? cause : "cannot resolve the environment");
			free(cause);
			cJSON_Delete(inputs);
			cJSON_Delete(outputs);
			return;
		}
		python = envr.python;
	}
	/* Refused before anything is stored, rather than failing halfway
	 * through a snapshot or a run's outputs. */
	uint64_t free_bytes, fs_bytes;
	if (!dry_run && d->min_free_bytes > 0 &&
	    gc_free_space(d, &free_bytes, &fs_bytes) == 0 && free_bytes < d->min_free_bytes) {
		request_error(req, PROTO_E_UNAVAILABLE,
			      "only %.1f MiB free on the file system of %s, below runyardd's "
			      "--min-free of %.1f MiB: make room ('runyard du', 'runyard rm', "
			      "'runyard gc') and submit again",
			      (double)free_bytes / (1 << 20), d->state_dir,
			      (double)d->min_free_bytes / (1 << 20));
		envs_resolved_finish(&envr);
		cJSON_Delete(inputs);
		cJSON_Delete(outputs);
		return;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		request_error(req, PROTO_E_INTERNAL, "out of memory");
		envs_resolved_finish(&envr);
		cJSON_Delete(inputs);
		cJSON_Delete(outputs);
		return;
	}
	s->d = d;
	s->hold = blob_hold(d->blobs);
	s->inputs = inputs;
	s->outputs = outputs;
	s->req = request_hold(req);
	s->source = strdup(source);
	s->experiment = strdup(experiment);
	s->python = strdup(python);
	const cJSON *path = env ? cJSON_GetObjectItemCaseSensitive(env, "PATH") : NULL;
	s->path_env = strdup(path ? path->valuestring : (getenv("PATH") ? getenv("PATH") : ""));
	s->command = command ? cJSON_Duplicate(command, true) : cJSON_CreateArray();
	s->env = env ? cJSON_Duplicate(env, true) : cJSON_CreateObject();
	/* the environment's variables, under the run's own --env */
	cJSON_ArrayForEach(kv, envr.vars) {
		if (s->env && !cJSON_GetObjectItemCaseSensitive(s->env, kv->string)) {
			cJSON_AddStringToObject(s->env, kv->string, kv->valuestring);
		}
	}
	s->envr = envr;
	s->timeout = timeout;
	s->priority = (int)priority;
	s->retries = (int)retries;
	if (retries > 0) {
		run_retry_on_name(retry_on, s->retry_on, sizeof(s->retry_on));
	}
	s->keep = keep;
	s->dry_run = dry_run;
	s->archive = S_ISREG(st.st_mode);
	s->limits.max_bytes = (uint64_t)max_bytes;
	s->limits.max_files = (uint64_t)max_files;
	s->target = target ? strdup(target) : NULL;
	s->resources = target ? compute_resources_json(&res) : NULL;
	if (!target) {
		cJSON *q = res_request_json(&rreq);
		s->request = q ? cJSON_PrintUnformatted(q) : NULL;
		cJSON_Delete(q);
	}
	s->sweep = sweep ? cJSON_Duplicate(sweep, true) : NULL;
	s->interactive = interactive;
	s->heartbeat_timeout = heartbeat;
	s->parent = parent;
	if (parse_after(req, s) < 0) {
		submit_free(s);
		return;
	}
	s->work.data = s;
	if (!s->req || !s->source || !s->experiment || !s->python || !s->path_env ||
	    !s->command || !s->env || (target && (!s->target || !s->resources)) ||
	    (!target && !s->request) ||
	    (sweep && !s->sweep)) {
		request_error(req, PROTO_E_INTERNAL, "out of memory");
		submit_free(s);
		return;
	}
	int err = uv_queue_work(d->loop, &s->work, submit_work, submit_done);
	if (err < 0) {
		request_error(req, PROTO_E_INTERNAL, "cannot queue the snapshot: %s",
			      uv_strerror(err));
		submit_free(s);
	}
}

static void ops_run_submit(struct request *req)
{
	const cJSON *array = cJSON_GetObjectItemCaseSensitive(req->args, "array");
	char *cause = NULL;
	cJSON *def = NULL;

	if (!array || cJSON_IsNull(array)) {
		submit_start(req, NULL);
		return;
	}
	/* An array is made and kept like a sweep of one index (sweep.h). */
	if (!cJSON_IsString(array) || sweep_array_definition(array->valuestring, &def, &cause) < 0) {
		request_arg_error(req, cause ? cause
					     : msg_strdupf("argument 'array' must be a string such "
							   "as \"0-15\""));
		return;
	}
	submit_start(req, def);
	cJSON_Delete(def);
}

static void ops_sweep_submit(struct request *req)
{
	char *cause = NULL;
	cJSON *def = NULL;
	int err = sweep_definition(req->args, &def, &cause);

	if (err < 0) {
		if (err == -ENOMEM) {
			request_error(req, PROTO_E_INTERNAL, "out of memory");
			return;
		}
		request_arg_error(req, cause);
		return;
	}
	submit_start(req, def);
	cJSON_Delete(def);
}

const struct op_entry ops_submit_entries[] = {
	{"run.submit", ops_run_submit, OP_NEW_WORK},
	{"sweep.submit", ops_sweep_submit, OP_NEW_WORK},
	{0},
};

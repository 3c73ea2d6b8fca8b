/* The local target: the supervisor is the daemon's child, spawned with
 * uv_spawn in a session of its own so it outlives the daemon and a
 * terminal's ^C. Cancel is SIGTERM to it; whether it lives is its pid in
 * /proc, checked against its command line so a reused pid is not taken for
 * it. Everything else (the run directory's files, exit.json, Finalizing) is
 * the driver's, shared with every target (exec/exec.c). */
#include "local.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "context.h"
#include "exec.h"
#include "log.h"
#include "msg.h"
#include "run.h"
#include "store.h"
#include "target.h"
#include "util.h"

/* A run's process handle, while the daemon is the supervisor's parent. */
struct local_run {
	uv_process_t proc;
	struct run *r;
	bool alive; /* we are the supervisor's parent and it runs */
};

static void proc_close_cb(uv_handle_t *h)
{
	struct local_run *lr = h->data;
	struct run *r = lr->r;

	if (r->target_data == lr) {
		r->target_data = NULL;
	}
	free(lr);
	r->handles--;
	run_release(r);
}

static void proc_exit_cb(uv_process_t *p, int64_t exit_status, int term_signal)
{
	struct local_run *lr = p->data;
	struct run *r = lr->r;

	lr->alive = false;
	uv_close((uv_handle_t *)p, proc_close_cb);
	exec_supervisor_ended(r);
}

static bool supervisor_alive(struct run *r)
{
	char path[64], *cmdline = NULL;
	size_t len;
	bool alive = false;

	if (r->sup_pid <= 0 || (kill((pid_t)r->sup_pid, 0) < 0 && errno != EPERM)) {
		return false;
	}
	/* The pid may have been reused: it must be this run's supervisor. */
	snprintf(path, sizeof(path), "/proc/%lld/cmdline", (long long)r->sup_pid);
	if (util_read_file(path, 1 << 20, &cmdline, &len) < 0) {
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		if (cmdline[i] == '\0') {
			cmdline[i] = ' ';
		}
	}
	alive = strstr(cmdline, "runyard-supervisor") && strstr(cmdline, r->dir);
	free(cmdline);
	return alive;
}

static int local_start(struct run *r, char **args, char **env, char **cause)
{
	struct daemon *d = r->d;
	struct local_run *lr = calloc(1, sizeof(*lr));
	uv_process_options_t opts = {0};
	int err;

	if (!lr) {
		*cause = strdup("out of memory");
		return -ENOMEM;
	}
	opts.file = d->supervisor_path;
	opts.args = args;
	opts.env = env;
	opts.cwd = r->workdir;
	opts.exit_cb = proc_exit_cb;
	/* Its own session, so it outlives the daemon and a terminal's ^C. */
	opts.flags = UV_PROCESS_DETACHED;
	opts.stdio_count = 0;

	lr->r = r;
	lr->proc.data = lr;
	r->handles++;
	err = uv_spawn(d->loop, &lr->proc, &opts);
	if (err < 0) {
		/* libuv wants the handle closed even when spawning failed. */
		uv_close((uv_handle_t *)&lr->proc, proc_close_cb);
		*cause = msg_strdupf("cannot start the supervisor %s: %s", d->supervisor_path,
				     uv_strerror(err));
		return err;
	}
	r->target_data = lr;
	lr->alive = true;
	r->sup_pid = lr->proc.pid;
	store_run_set_supervisor(d->store, r->seq, r->sup_pid, 0);
	if (r->status == RUN_SCALING) {
		run_transition(r, RUN_RUNNING);
	}
	return 0;
}

static void local_cancel(struct run *r)
{
	/* The supervisor sends SIGTERM to the process group, then SIGKILL
	 * after the grace period, and records the cancel. */
	if (r->sup_pid > 0 && kill((pid_t)r->sup_pid, SIGTERM) < 0 && errno != ESRCH) {
		log_warn("run %s: signalling supervisor %lld failed: %s", r->id,
			 (long long)r->sup_pid, strerror(errno));
	}
}

static bool local_alive(struct run *r)
{
	const struct local_run *lr = r->target_data;

	/* Its parent hears of its end through the exit callback; after a
	 * restart the daemon is not its parent any more and looks in /proc. */
	return (lr && lr->alive) || supervisor_alive(r);
}

static void local_lost(struct run *r, struct target_verdict *v)
{
	v->outcome = RUN_FAILED;
	v->code = "ExecutionFailed";
	v->message = strdup("the run's supervisor vanished without recording how the process "
			    "ended");
}

static void local_detach(struct run *r)
{
	struct local_run *lr = r->target_data;

	if (lr && lr->alive && !uv_is_closing((uv_handle_t *)&lr->proc)) {
		/* Closing a process handle does not touch the process: the
		 * supervisor carries on and is found again at the next start. */
		lr->alive = false;
		uv_close((uv_handle_t *)&lr->proc, proc_close_cb);
	}
}

const struct target_ops local_target_ops = {
	.type = "local",
	.start = local_start,
	.cancel = local_cancel,
	.alive = local_alive,
	.lost = local_lost,
	.detach = local_detach,
};

/* The local target: the supervisor is the daemon's child, in a session of
 * its own so it outlives the daemon and a terminal's ^C. Cancel is SIGTERM
 * to it; whether it lives is its pid in /proc, checked against its command
 * line so a reused pid is not taken for it. Everything else (the run
 * directory's files, exit.json, Finalizing) is the driver's, shared with
 * every target (exec/exec.c).
 *
 * It is started with posix_spawn, which glibc does with a vfork-like clone
 * that shares the daemon's memory until the exec, and its end is seen on a
 * pidfd polled by the loop. uv_spawn forks: copying the page tables of a
 * daemon that maps some 280 regions cost about a millisecond of the
 * daemon's CPU per run, the largest part of a short run's overhead
 * (bench/sweep.py). Where pidfd_open is missing (Linux before 5.3) it falls
 * back to uv_spawn. */
#include "local.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>

#include "context.h"
#include "exec.h"
#include "log.h"
#include "msg.h"
#include "run.h"
#include "store.h"
#include "target.h"
#include "util.h"

/* A run's process handle, while the daemon is the supervisor's parent:
 * its pidfd's poll, or (without pidfds) libuv's process handle. */
struct local_run {
	union {
		uv_poll_t poll;
		uv_process_t proc;
	} h;
	bool polled; /* h is the poll */
	int pidfd;
	pid_t pid;
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
	if (lr->pidfd >= 0) {
		close(lr->pidfd);
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

static void pidfd_cb(uv_poll_t *p, int status, int events)
{
	struct local_run *lr = p->data;
	struct run *r = lr->r;
	int wst;

	/* Readable once it has exited; reaped here, as its only parent. */
	if (waitpid(lr->pid, &wst, WNOHANG) == 0 && status == 0) {
		return;
	}
	lr->alive = false;
	uv_close((uv_handle_t *)p, proc_close_cb);
	exec_supervisor_ended(r);
}

static int pidfd_open_(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	errno = ENOSYS;
	return -1;
#endif
}

/* Whether this kernel has pidfds; asked once. */
static bool have_pidfd(void)
{
	static int have = -1;

	if (have < 0) {
		int fd = pidfd_open_(getpid());
		have = fd >= 0;
		if (fd >= 0) {
			close(fd);
		}
	}
	return have == 1;
}

/* posix_spawn the supervisor as uv_spawn would have: its own session,
 * default signal dispositions and an empty mask, /dev/null on 0-2, the
 * run's work directory as cwd (every other descriptor is close-on-exec). */
static int spawn_supervisor(struct daemon *d, struct run *r, char **args, char **env,
			    pid_t *ret)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t all, none;
	int err;

	sigfillset(&all);
	sigemptyset(&none);
	if ((err = posix_spawn_file_actions_init(&fa)) != 0) {
		return -err;
	}
	if ((err = posix_spawnattr_init(&at)) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return -err;
	}
	if ((err = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)) == 0 &&
	    (err = posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0)) == 0 &&
	    (err = posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0)) == 0 &&
	    (err = posix_spawn_file_actions_addchdir_np(&fa, r->workdir)) == 0 &&
	    (err = posix_spawnattr_setsigdefault(&at, &all)) == 0 &&
	    (err = posix_spawnattr_setsigmask(&at, &none)) == 0 &&
	    (err = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF |
							 POSIX_SPAWN_SETSIGMASK)) == 0) {
		err = posix_spawn(ret, d->supervisor_path, &fa, &at, args, env);
	}
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	return -err;
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

/* Start it and watch its pidfd; on failure lr is the caller's to free. */
static int start_polled(struct run *r, struct local_run *lr, char **args, char **env,
			char **cause)
{
	struct daemon *d = r->d;
	int err = spawn_supervisor(d, r, args, env, &lr->pid);

	if (err < 0) {
		*cause = msg_strdupf("cannot start the supervisor %s: %s", d->supervisor_path,
				     strerror(-err));
		return err;
	}
	lr->pidfd = pidfd_open_(lr->pid);
	if (lr->pidfd < 0 || (err = uv_poll_init(d->loop, &lr->h.poll, lr->pidfd)) < 0) {
		/* It runs but cannot be watched: stop it rather than lose it. */
		err = lr->pidfd < 0 ? -errno : err;
		kill(lr->pid, SIGKILL);
		waitpid(lr->pid, NULL, 0);
		if (lr->pidfd >= 0) {
			close(lr->pidfd);
		}
		*cause = msg_strdupf("cannot watch the supervisor: %s", strerror(-err));
		return err;
	}
	lr->polled = true;
	lr->r = r;
	lr->h.poll.data = lr;
	r->handles++;
	uv_poll_start(&lr->h.poll, UV_READABLE, pidfd_cb);
	return 0;
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
	lr->pidfd = -1;
	if (have_pidfd()) {
		err = start_polled(r, lr, args, env, cause);
		if (err < 0) {
			free(lr);
			return err;
		}
		goto started;
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
	lr->h.proc.data = lr;
	r->handles++;
	err = uv_spawn(d->loop, &lr->h.proc, &opts);
	if (err < 0) {
		/* libuv wants the handle closed even when spawning failed. */
		uv_close((uv_handle_t *)&lr->h.proc, proc_close_cb);
		*cause = msg_strdupf("cannot start the supervisor %s: %s", d->supervisor_path,
				     uv_strerror(err));
		return err;
	}
	lr->pid = lr->h.proc.pid;
started:
	r->target_data = lr;
	lr->alive = true;
	r->sup_pid = lr->pid;
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

	if (lr && lr->alive && !uv_is_closing((uv_handle_t *)&lr->h)) {
		/* Closing the handle does not touch the process: the supervisor
		 * carries on and is found again at the next start. */
		lr->alive = false;
		uv_close((uv_handle_t *)&lr->h, proc_close_cb);
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

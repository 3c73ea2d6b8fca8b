#include "systemd.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <uv.h>

#include "context.h"
#include "log.h"
#include "msg.h"
#include "run.h"

#define LISTEN_FDS_START 3

/* The service manager as the daemon knows it. */
struct systemd {
	int notify_fd; /* -1: no manager to tell */
	char *notify_path;
	uint64_t watchdog_usec;
	uv_timer_t watchdog;
	bool watchdog_on;
	int status_queued, status_running; /* what STATUS= said last; -1: nothing */
};

/* The manager's variables are read once, then removed from the
 * environment: a run inherits the daemon's environment, and a run must not
 * think it was socket-activated or talk to the daemon's manager. */
static void unset_manager_env(void)
{
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_PID");
	unsetenv("WATCHDOG_USEC");
}

int systemd_init(struct daemon *d)
{
	const char *path = getenv("NOTIFY_SOCKET");
	const char *usec = getenv("WATCHDOG_USEC");
	const char *wpid = getenv("WATCHDOG_PID");
	struct systemd *sd = calloc(1, sizeof(*sd));

	if (!sd) {
		return -ENOMEM;
	}
	sd->notify_fd = -1;
	sd->status_queued = sd->status_running = -1;
	if (path && (path[0] == '/' || path[0] == '@') &&
	    strlen(path) < sizeof(((struct sockaddr_un *)0)->sun_path)) {
		sd->notify_path = strdup(path);
		sd->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (sd->notify_fd < 0) {
			log_warn("cannot create the notification socket: %s", strerror(errno));
		}
	}
	if (usec && (!wpid || atol(wpid) == (long)getpid())) {
		sd->watchdog_usec = strtoull(usec, NULL, 10);
	}
	d->systemd = sd;
	return 0;
}

int systemd_take_listen_fd(char **cause)
{
	const char *pid = getenv("LISTEN_PID");
	const char *fds = getenv("LISTEN_FDS");
	int fd = LISTEN_FDS_START, type = 0, listening = 0;
	struct sockaddr_un sa;
	socklen_t len = sizeof(type);
	int r = -1;

	if (!pid || !fds || atol(pid) != (long)getpid()) {
		goto out;
	}
	if (atoi(fds) != 1) {
		*cause = msg_strdupf("the service manager passed %s sockets; runyardd serves on "
				     "exactly one listening Unix stream socket (check "
				     "runyard.socket)",
				     fds);
		r = -EINVAL;
		goto out;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM) {
		*cause = msg_strdupf("the socket passed by the service manager is not a stream "
				     "socket");
		r = -EINVAL;
		goto out;
	}
	len = sizeof(listening);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 || !listening) {
		*cause = msg_strdupf("the socket passed by the service manager is not listening");
		r = -EINVAL;
		goto out;
	}
	len = sizeof(sa);
	if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0 || sa.sun_family != AF_UNIX) {
		*cause = msg_strdupf("the socket passed by the service manager is not a Unix "
				     "socket (ListenStream= must be a path)");
		r = -EINVAL;
		goto out;
	}
	r = fd;
out:
	unset_manager_env();
	return r;
}

void systemd_notify(struct daemon *d, const char *state)
{
	struct systemd *sd = d->systemd;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	socklen_t len;

	if (!sd || sd->notify_fd < 0 || !sd->notify_path) {
		return;
	}
	strncpy(sa.sun_path, sd->notify_path, sizeof(sa.sun_path) - 1);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(sd->notify_path));
	if (sa.sun_path[0] == '@') {
		/* An abstract socket: the name starts with a NUL byte. */
		sa.sun_path[0] = '\0';
	}
	/* Never wait for the manager: with its queue full (ten datagrams on
	 * Linux), a blocking send would stall the whole loop until it reads. */
	if (sendto(sd->notify_fd, state, strlen(state), MSG_NOSIGNAL | MSG_DONTWAIT,
		   (struct sockaddr *)&sa, len) < 0) {
		log_debug("notifying the service manager failed: %s", strerror(errno));
	}
}

void systemd_status(struct daemon *d)
{
	struct systemd *sd = d->systemd;
	int queued = 0, running = 0;
	char buf[128];

	if (!sd || sd->notify_fd < 0) {
		return;
	}
	for (struct run *r = d->runs_head; r; r = r->next) {
		if (r->status == RUN_QUEUED) {
			queued++;
		} else {
			running++;
		}
	}
	if (queued == sd->status_queued && running == sd->status_running) {
		return;
	}
	sd->status_queued = queued;
	sd->status_running = running;
	snprintf(buf, sizeof(buf), "STATUS=%d queued, %d in flight (%d slots)", queued, running,
		 d->max_runs);
	systemd_notify(d, buf);
}

void systemd_run_event(void *ud, struct run *r, enum run_event ev)
{
	/* A terminal status is counted once the run has left the list. */
	if (ev == RUN_EV_ENDED || !run_status_terminal(r->status)) {
		systemd_status(ud);
	}
}

static void watchdog_cb(uv_timer_t *t)
{
	struct daemon *d = t->data;

	/* Sent from the loop itself: a loop stuck in a callback stops the
	 * pings and the manager restarts the daemon. */
	systemd_notify(d, "WATCHDOG=1");
}

void systemd_watchdog_start(struct daemon *d)
{
	struct systemd *sd = d->systemd;
	uint64_t ms;

	if (!sd || sd->watchdog_usec == 0 || sd->notify_fd < 0) {
		return;
	}
	ms = sd->watchdog_usec / 2000;
	if (ms == 0) {
		ms = 1;
	}
	uv_timer_init(d->loop, &sd->watchdog);
	sd->watchdog.data = d;
	sd->watchdog_on = true;
	uv_timer_start(&sd->watchdog, watchdog_cb, ms, ms);
}

void systemd_finish(struct daemon *d)
{
	struct systemd *sd = d->systemd;

	if (sd && sd->watchdog_on) {
		sd->watchdog_on = false;
		uv_close((uv_handle_t *)&sd->watchdog, NULL);
	}
}

void systemd_free(struct daemon *d)
{
	struct systemd *sd = d->systemd;

	if (!sd) {
		return;
	}
	if (sd->notify_fd >= 0) {
		close(sd->notify_fd);
	}
	free(sd->notify_path);
	free(sd);
	d->systemd = NULL;
}

/* What the two halves of the services share: services.c (the services, the
 * store, the ops' questions) and serve_proc.c (the instances: starting,
 * checking, draining, restarting with backoff, the log). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "services.h"

struct httpcheck;
struct httpcheck_mgr;

/* Checks while an instance starts: every 100 ms, each answering within 2 s. */
#define CHECK_START_MS 100
#define CHECK_START_TIMEOUT_MS 2000
/* Checks of a serving instance: every 10 s, within 5 s; 3 failures in a row
 * and it is killed and restarted. */
#define CHECK_LIVE_MS 10000
#define CHECK_LIVE_TIMEOUT_MS 5000
#define CHECK_LIVE_FAILS 3
/* A stopping instance gets SIGKILL after this long. */
#define DRAIN_GRACE_MS 30000
/* Instances left by an earlier daemon are looked at this often. */
#define ADOPTED_POLL_MS 1000
/* Restart delays: 0, then 0.5 s doubling to 30 s; back to 0 after an
 * instance has served for a minute. */
#define BACKOFF_FIRST_MS 500
#define BACKOFF_MAX_MS 30000
#define BACKOFF_RESET_S 60.0
/* A service's log is cut (copied to output.log.1) above this size. */
#define LOG_MAX (16 * 1024 * 1024)
/* Lines of an instance's log quoted when it fails to start. */
#define FAIL_TAIL_LINES 15

enum service_state { SVC_TRANSITIONING, SVC_HEALTHY, SVC_UNHEALTHY, SVC_FAILED };

struct waiter {
	struct waiter *next;
	services_wait_fn cb;
	void *ud;
	enum services_wait_kind kind;
};

enum instance_state { INST_STARTING, INST_SERVING, INST_DRAINING, INST_EXITED };

struct services;
struct service;

struct instance {
	struct services *mgr;
	struct instance *prev, *next; /* mgr->instances */
	struct service *svc;          /* NULL once its service is deleted */
	int n;                        /* for logs: instance 3 of the daemon */
	char *model_ref;
	enum instance_state state;
	int64_t pid;
	int port;     /* the private check socket's */
	bool adopted; /* left by an earlier daemon: no process handle, polled */
	uv_process_t proc;
	bool proc_open;
	uv_timer_t timer; /* checks, the kill deadline, the adopted poll */
	int handles;
	bool closing;
	struct httpcheck *check;
	int fails;
	double started_at, deadline;
	/* What it is held to (exec/enforce.c): bytes and thousandths of CPUs
	 * (0: none), the tier that holds it (NULL: none), and in the poll tier
	 * a timer that looks at its memory each second. */
	int64_t mem, mcpu;
	const char *tier;
	uv_timer_t mem_timer;
	int64_t peak_mem; /* the most the poll saw; -1: not looked */
	bool oom;         /* the poll killed it for memory */
	bool limits_done; /* its cgroup is read back and removed */
};

/* Memory of instances in the poll tier is looked at this often. */
#define MEM_POLL_MS 1000

struct service {
	struct services *mgr;
	struct service *next;
	int64_t id;
	char *name;
	char *dir;
	char *log_path;
	int port;
	int listen_fd;               /* the public socket; -1 while Failed */
	struct services_config cfg;       /* what serves, or is being started */
	struct services_config *next_cfg; /* a swap: what the starting instance runs */
	enum service_state state;
	char *error;
	bool healthy_once; /* the deployment has served (stored) */
	struct instance *serving, *starting;
	bool preparing; /* a job makes the next instance's files */
	bool rotating;  /* a job cuts its log */
	uv_timer_t backoff;
	bool backoff_open;
	int backoff_ms;
	double serving_since;
	int restarts;
	double created_at, updated_at;
	struct waiter *waiters;
	int refs; /* the backoff timer and jobs; freed at 0 once deleted */
	bool deleted;
};

struct services {
	struct daemon *d;
	struct httpcheck_mgr *http;
	struct service *list;
	struct instance *instances;
	char *dir;      /* state/services */
	char *serve_py; /* the scoring server */
	int next_n;
	int refs; /* 1 while open, each service, instance and job */
	bool closing;
};

/* services.c: small things about a service, its store row and waiters. */
struct services_config *services_attempt_cfg(struct service *svc);
void services_close_listener(struct service *svc);
void services_db_update(struct service *svc);
char *services_log_tail(const char *path, int n);
void services_mgr_unref(struct services *m);
int services_open_listener(int port, bool reuse, int *ret_fd, int *ret_port);
void services_set_error(struct service *svc, const char *msg);
void services_set_state(struct service *svc, enum service_state st);
void services_settle_waiters(struct service *svc, bool ok, const char *msg);
/* Append a line of the daemon's own to the service's log. */
void services_log(struct service *svc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void services_unref(struct service *svc);

/* serve_proc.c: the instances and their attempts. */
void serve_proc_attempt_failed(struct service *svc, struct instance *inst, const char *reason);
void serve_proc_begin_attempt(struct service *svc);
void serve_proc_instance_close(struct instance *inst);
void serve_proc_instance_drain(struct instance *inst);
/* Hold the instance (its pid known) to c's cpu and memory_gb: started_here
 * when this daemon has just started it, else it was left by an earlier one. */
void serve_proc_instance_hold(struct instance *inst, const struct services_config *c,
                              bool started_here);
void serve_proc_schedule_restart(struct service *svc);
struct instance *serve_proc_instance_create(struct services *m, struct service *svc,
                                            const char *model_ref);
void serve_proc_kill_group(struct instance *inst, int sig);
void serve_proc_backoff_close_cb(uv_handle_t *h);
void serve_proc_instance_timer_cb(uv_timer_t *t);

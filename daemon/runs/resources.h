/* Resources of the local machine and what runs ask of it: CPUs, memory,
 * GPUs and GPU memory. The machine's capacity, the reservations of the runs
 * that hold some, whether a request fits, which GPUs it gets, and the
 * admission rule with its backfill (docs/scheduling.md). Pure code: the
 * caller discovers the machine and persists the assignments. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define RES_GPUS_MAX 64
#define RES_UUID_MAX 96

/* What one run asks for. */
struct res_request {
	int64_t cpus;    /* >= 1; default 1 */
	int64_t mem;     /* bytes to reserve; 0: none */
	int64_t gpus;    /* whole devices, or devices to share when gpu_mem > 0 */
	int64_t gpu_mem; /* bytes on each of its GPUs; 0: the whole device */
	bool bound;      /* the CPUs were asked for: they are enforced, not only counted */
};

struct res_gpu {
	int index;
	char uuid[RES_UUID_MAX];
	int64_t mem;      /* total bytes */
	int64_t mem_used; /* reserved by runs */
	int holders;      /* runs holding part of it */
	bool exclusive;   /* a run holds it whole */
};

/* The machine: totals and what is reserved. */
struct res_pool {
	int64_t cpus, mem;
	int64_t cpus_used, mem_used;
	struct res_gpu gpus[RES_GPUS_MAX];
	int ngpus;
};

/* What a run holds: its request and its devices. */
struct res_grant {
	struct res_request req;
	int gpu[RES_GPUS_MAX]; /* indexes into pool->gpus */
	int ngpu;
};

/* 0 when the request can ever fit the machine; -E2BIG with a message in
 * *cause that gives the machine's totals ("asks for 4 CPUs; this machine
 * has 2"). */
int res_check(const struct res_pool *p, const struct res_request *q, char **cause);

/* Whether q fits what is free now. */
bool res_fits(const struct res_pool *p, const struct res_request *q);

/* Reserve q (it must fit) and choose its GPUs: for whole devices the
 * free ones with the lowest index, for shared ones the devices with the
 * most free memory (then the lowest index), so runs spread over the cards
 * rather than pile on GPU 0. */
void res_take(struct res_pool *p, const struct res_request *q, struct res_grant *ret);
/* Reserve exactly the GPUs g names (a run re-attached after a restart):
 * -ENOENT when one of them is no longer on the machine; the CPUs and
 * memory are taken even if they overbook (the run is already running). */
int res_take_exact(struct res_pool *p, const struct res_grant *g);
void res_give(struct res_pool *p, const struct res_grant *g);

/* Admission with backfill. The blocked head is the first run in queue
 * order that does not fit. A later run q may start before it only when q
 * fits, asks for none of what the head is short of, and leaves the head
 * fitting on every dimension it fits on now. So the head is never delayed
 * by a run let past it. head NULL: nothing is blocked. */
bool res_may_pass(const struct res_pool *p, const struct res_request *head,
		  const struct res_request *q);

/* The grant's GPUs as CUDA_VISIBLE_DEVICES wants them: UUIDs joined by
 * commas, into buf. */
void res_gpu_list(const struct res_pool *p, const struct res_grant *g, char *buf, size_t len);

/* JSON forms for the store and the protocol. */
cJSON *res_request_json(const struct res_request *q);
int res_request_parse(const cJSON *j, struct res_request *ret);
cJSON *res_grant_json(const struct res_pool *p, const struct res_grant *g);
int res_grant_parse(const struct res_pool *p, const cJSON *j, struct res_grant *ret);
cJSON *res_pool_json(const struct res_pool *p);

/* "512M", "2G", "1.5GiB", "1024" (bytes): -EINVAL when it is not a size. */
int res_size_parse(const char *text, int64_t *ret);

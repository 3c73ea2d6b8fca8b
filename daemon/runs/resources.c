/* Resources of the local machine and what runs ask of it (resources.h):
 * whether a request can ever fit and whether it fits now, which GPUs it
 * gets and how it gives them back, the backfill rule, and the JSON and
 * text forms. Pure code over the pool the caller hands in; nothing is kept
 * between calls. */
#include "resources.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KIB ((int64_t)1 << 10)
#define MIB ((int64_t)1 << 20)
#define GIB ((int64_t)1 << 30)

/* The largest integer a JSON number (a double) holds exactly. */
#define JSON_INT_MAX 9007199254740992.0

/* printf into a new string. This file links with cJSON alone (the unit
 * test proves it), so it keeps its own helper instead of proto's. */
static char *strdupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *strdupf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&s, fmt, ap);
	va_end(ap);
	return r < 0 ? NULL : s;
}

/* a - b, never below zero: what is given back never makes a count
 * negative, even when the caller gives twice. */
static int64_t less(int64_t a, int64_t b)
{
	if (b <= 0) {
		return a;
	}
	return a > b ? a - b : 0;
}

/* A size for people, one decimal in the largest unit it reaches: "23.4
 * GiB", "512 MiB" (no ".0"), "100 bytes". */
static void size_text(int64_t b, char *buf, size_t len)
{
	static const struct {
		int64_t size;
		const char *unit;
	} units[] = { { GIB, "GiB" }, { MIB, "MiB" }, { KIB, "KiB" } };

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		int64_t u = units[i].size, tenths;

		if (b < u) {
			continue;
		}
		/* Rounded to the nearest tenth, in integers: b * 10 would
		 * overflow for the largest sizes. */
		tenths = b / u * 10 + (b % u * 10 + u / 2) / u;
		if (tenths % 10 == 0) {
			snprintf(buf, len, "%lld %s", (long long)(tenths / 10), units[i].unit);
		} else {
			snprintf(buf, len, "%lld.%lld %s", (long long)(tenths / 10),
				 (long long)(tenths % 10), units[i].unit);
		}
		return;
	}
	snprintf(buf, len, "%lld byte%s", (long long)b, b == 1 ? "" : "s");
}

/* Two sizes for one message: in bytes when rounding makes them read the
 * same, so "asks for 23.4 GiB; this machine has 23.4 GiB" never appears. */
static void sizes_text(int64_t a, int64_t b, char *abuf, char *bbuf, size_t len)
{
	size_text(a, abuf, len);
	size_text(b, bbuf, len);
	if (strcmp(abuf, bbuf) == 0) {
		snprintf(abuf, len, "%lld bytes", (long long)a);
		snprintf(bbuf, len, "%lld bytes", (long long)b);
	}
}

static const char *plural(int64_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

/* No negative counts and no more GPUs than a grant can name: what every
 * function takes for granted before it counts. */
static bool request_sane(const struct res_request *q)
{
	return q->cpus >= 0 && q->mem >= 0 && q->gpus >= 0 && q->gpu_mem >= 0 &&
	       q->gpus <= RES_GPUS_MAX;
}

static bool gpu_whole_free(const struct res_gpu *g)
{
	return g->holders <= 0 && !g->exclusive;
}

static int64_t gpu_free_mem(const struct res_gpu *g)
{
	return g->exclusive ? 0 : g->mem - g->mem_used;
}

/* Whether one device can take its part of q now. */
static bool gpu_can_take(const struct res_gpu *g, const struct res_request *q)
{
	if (q->gpu_mem > 0) {
		return !g->exclusive && gpu_free_mem(g) >= q->gpu_mem;
	}
	return gpu_whole_free(g);
}

static bool gpus_fit(const struct res_pool *p, const struct res_request *q)
{
	int64_t n = 0;

	if (q->gpus <= 0) {
		return true;
	}
	for (int i = 0; i < p->ngpus && n < q->gpus; i++) {
		n += gpu_can_take(&p->gpus[i], q);
	}
	return n >= q->gpus;
}

static bool cpus_fit(const struct res_pool *p, const struct res_request *q)
{
	return q->cpus <= p->cpus - p->cpus_used;
}

static bool mem_fit(const struct res_pool *p, const struct res_request *q)
{
	return q->mem <= p->mem - p->mem_used;
}

int res_check(const struct res_pool *p, const struct res_request *q, char **cause)
{
	char a[48], b[48];
	char *msg = NULL;
	int r = -E2BIG;

	if (q->cpus < 1) {
		msg = strdupf("asks for %lld CPUs; a run needs at least 1", (long long)q->cpus);
		r = -EINVAL;
	} else if (q->mem < 0) {
		msg = strdupf("asks for a negative amount of memory");
		r = -EINVAL;
	} else if (q->gpus < 0) {
		msg = strdupf("asks for a negative number of GPUs");
		r = -EINVAL;
	} else if (q->gpu_mem < 0) {
		msg = strdupf("asks for a negative amount of GPU memory");
		r = -EINVAL;
	} else if (q->gpu_mem > 0 && q->gpus == 0) {
		/* Not a matter of this machine: no machine can give it. */
		msg = strdupf("asks for GPU memory without GPUs");
		r = -EINVAL;
	} else if (q->cpus > p->cpus) {
		msg = strdupf("asks for %lld %s; this machine has %lld", (long long)q->cpus,
			      plural(q->cpus, "CPU", "CPUs"), (long long)p->cpus);
	} else if (q->mem > p->mem) {
		sizes_text(q->mem, p->mem, a, b, sizeof(a));
		msg = strdupf("asks for %s of memory; this machine has %s", a, b);
	} else if (q->gpus > p->ngpus) {
		if (p->ngpus == 0) {
			msg = strdupf("asks for %lld %s; this machine has none", (long long)q->gpus,
				      plural(q->gpus, "GPU", "GPUs"));
		} else {
			msg = strdupf("asks for %lld %s; this machine has %d", (long long)q->gpus,
				      plural(q->gpus, "GPU", "GPUs"), p->ngpus);
		}
	} else if (q->gpu_mem > 0) {
		/* Each of its GPUs must hold gpu_mem on its own: the devices
		 * may differ, so count those that are large enough. */
		int64_t largest = 0;
		int big = 0;

		for (int i = 0; i < p->ngpus; i++) {
			if (p->gpus[i].mem > largest) {
				largest = p->gpus[i].mem;
			}
			big += p->gpus[i].mem >= q->gpu_mem;
		}
		if (big >= q->gpus) {
			r = 0;
		} else if (largest < q->gpu_mem) {
			sizes_text(q->gpu_mem, largest, a, b, sizeof(a));
			msg = strdupf("asks for %s on each GPU; the largest GPU here has %s", a, b);
		} else {
			size_text(q->gpu_mem, a, sizeof(a));
			msg = strdupf("asks for %lld GPUs with %s each; %d GPU%s here %s that much",
				      (long long)q->gpus, a, big, big == 1 ? "" : "s",
				      big == 1 ? "has" : "have");
		}
	} else {
		r = 0;
	}
	if (cause) {
		*cause = msg;
	} else {
		free(msg);
	}
	return r;
}

bool res_fits(const struct res_pool *p, const struct res_request *q)
{
	return request_sane(q) && cpus_fit(p, q) && mem_fit(p, q) && gpus_fit(p, q);
}

/* Record that a run holds its part of device g: the whole of it, or
 * gpu_mem of its memory alongside others. mem_used grows by the whole
 * device rather than being set to it so that give undoes it exactly, even
 * on a device overbooked by a re-attached run. */
static void gpu_hold(struct res_gpu *g, const struct res_request *q)
{
	if (q->gpu_mem > 0) {
		g->mem_used += q->gpu_mem;
	} else {
		g->exclusive = true;
		g->mem_used += g->mem;
	}
	g->holders++;
}

static void gpu_release(struct res_gpu *g, const struct res_request *q)
{
	if (q->gpu_mem > 0) {
		g->mem_used = less(g->mem_used, q->gpu_mem);
	} else {
		g->exclusive = false;
		g->mem_used = less(g->mem_used, g->mem);
	}
	g->holders = g->holders > 0 ? g->holders - 1 : 0;
	if (g->holders == 0) {
		/* Nobody left: whatever the books say, nothing is used. */
		g->mem_used = 0;
		g->exclusive = false;
	}
}

static void sort_ints(int *v, int n)
{
	for (int i = 1; i < n; i++) {
		int x = v[i], j = i;

		for (; j > 0 && v[j - 1] > x; j--) {
			v[j] = v[j - 1];
		}
		v[j] = x;
	}
}

void res_take(struct res_pool *p, const struct res_request *q, struct res_grant *ret)
{
	int need = q->gpus <= 0 ? 0 : q->gpus > RES_GPUS_MAX ? RES_GPUS_MAX : (int)q->gpus;
	bool chosen[RES_GPUS_MAX] = { false };
	int n = 0;

	memset(ret, 0, sizeof(*ret));
	ret->req = *q;
	if (q->cpus > 0) {
		p->cpus_used += q->cpus;
	}
	if (q->mem > 0) {
		p->mem_used += q->mem;
	}
	if (q->gpu_mem > 0) {
		/* Shared: each time the device with the most free memory (the
		 * first of equals), so runs spread over the cards. Taking is
		 * done after choosing, so one device is chosen once. */
		while (n < need) {
			int best = -1;

			for (int i = 0; i < p->ngpus; i++) {
				if (chosen[i] || !gpu_can_take(&p->gpus[i], q)) {
					continue;
				}
				if (best < 0 ||
				    gpu_free_mem(&p->gpus[i]) > gpu_free_mem(&p->gpus[best])) {
					best = i;
				}
			}
			if (best < 0) {
				break;
			}
			chosen[best] = true;
			ret->gpu[n++] = best;
		}
	} else {
		/* Whole devices: the free ones with the lowest index. */
		for (int i = 0; i < p->ngpus && n < need; i++) {
			if (gpu_whole_free(&p->gpus[i])) {
				ret->gpu[n++] = i;
			}
		}
	}
	/* In index order, as CUDA_VISIBLE_DEVICES then numbers them. */
	sort_ints(ret->gpu, n);
	ret->ngpu = n;
	for (int i = 0; i < n; i++) {
		gpu_hold(&p->gpus[ret->gpu[i]], q);
	}
}

int res_take_exact(struct res_pool *p, const struct res_grant *g)
{
	bool seen[RES_GPUS_MAX] = { false };

	if (!request_sane(&g->req) || g->ngpu < 0 || g->ngpu > RES_GPUS_MAX) {
		return -EINVAL;
	}
	/* All checked before anything is taken: a grant is taken whole or
	 * not at all. */
	for (int i = 0; i < g->ngpu; i++) {
		int k = g->gpu[i];

		if (k < 0 || k >= p->ngpus) {
			return -ENOENT;
		}
		if (seen[k]) {
			return -EINVAL;
		}
		seen[k] = true;
	}
	p->cpus_used += g->req.cpus;
	p->mem_used += g->req.mem;
	for (int i = 0; i < g->ngpu; i++) {
		gpu_hold(&p->gpus[g->gpu[i]], &g->req);
	}
	return 0;
}

void res_give(struct res_pool *p, const struct res_grant *g)
{
	int n = g->ngpu < 0 ? 0 : g->ngpu > RES_GPUS_MAX ? RES_GPUS_MAX : g->ngpu;

	p->cpus_used = less(p->cpus_used, g->req.cpus);
	p->mem_used = less(p->mem_used, g->req.mem);
	for (int i = 0; i < n; i++) {
		int k = g->gpu[i];

		if (k >= 0 && k < p->ngpus) {
			gpu_release(&p->gpus[k], &g->req);
		}
	}
}

/* The backfill rule. What the head is short of is kept from the others
 * (they may ask for none of it), and so is its share of what it is not
 * short of: after a run passes, the head must still fit on every dimension
 * it fit on before. Then whatever the head has stays at least its share,
 * what it waits for only grows as runs end, and it starts no later than
 * it would have with nothing passing it (the unit test checks this on
 * every step). Every run asks for at least one CPU, so when the head is
 * short of CPUs nothing passes it. A CPU-only run passes a run waiting for
 * a GPU while CPUs beyond that run's share are free. */
bool res_may_pass(const struct res_pool *p, const struct res_request *head,
		  const struct res_request *q)
{
	struct res_pool after;
	struct res_grant g;
	bool cpus_ok, mem_ok, gpus_ok;

	if (!res_fits(p, q)) {
		return false;
	}
	if (!head) {
		return true;
	}
	cpus_ok = cpus_fit(p, head);
	mem_ok = mem_fit(p, head);
	gpus_ok = gpus_fit(p, head);
	if ((!cpus_ok && q->cpus > 0) || (!mem_ok && q->mem > 0) ||
	    (!gpus_ok && (q->gpus > 0 || q->gpu_mem > 0))) {
		return false;
	}
	after = *p;
	res_take(&after, q, &g);
	return (!cpus_ok || cpus_fit(&after, head)) && (!mem_ok || mem_fit(&after, head)) &&
	       (!gpus_ok || gpus_fit(&after, head));
}

void res_gpu_list(const struct res_pool *p, const struct res_grant *g, char *buf, size_t len)
{
	size_t used = 0;

	if (len == 0) {
		return;
	}
	buf[0] = '\0';
	for (int i = 0; i < g->ngpu && i < RES_GPUS_MAX; i++) {
		int k = g->gpu[i];
		char idx[16];
		const char *name;
		size_t n;

		if (k < 0 || k >= p->ngpus) {
			continue;
		}
		name = p->gpus[k].uuid;
		if (!name[0]) {
			/* CUDA takes an index where there is no UUID. */
			snprintf(idx, sizeof(idx), "%d", p->gpus[k].index);
			name = idx;
		}
		n = strlen(name) + (used > 0);
		/* Whole names only: a cut UUID names no device, and a run that
		 * sees fewer of its GPUs is better than one that sees another's. */
		if (used + n >= len) {
			break;
		}
		snprintf(buf + used, len - used, "%s%s", used > 0 ? "," : "", name);
		used += n;
	}
}

cJSON *res_request_json(const struct res_request *q)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddNumberToObject(o, "cpus", (double)q->cpus);
	cJSON_AddNumberToObject(o, "mem", (double)q->mem);
	cJSON_AddNumberToObject(o, "gpus", (double)q->gpus);
	cJSON_AddNumberToObject(o, "gpu_mem", (double)q->gpu_mem);
	if (q->bound) {
		cJSON_AddBoolToObject(o, "bound", true);
	}
	return o;
}

/* o.key as a whole number >= min, or as a size text ("2G") when size is
 * set; *ret is left alone when the key is absent. */
static int json_int(const cJSON *o, const char *key, bool size, int64_t min, int64_t *ret)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	int64_t x;

	if (!v) {
		return 0;
	}
	if (cJSON_IsNumber(v)) {
		double d = v->valuedouble;

		/* Written this way round so NaN fails too. */
		if (!(d >= -JSON_INT_MAX && d <= JSON_INT_MAX) || d != (double)(int64_t)d) {
			return -EINVAL;
		}
		x = (int64_t)d;
	} else if (size && cJSON_IsString(v)) {
		if (res_size_parse(v->valuestring, &x) < 0) {
			return -EINVAL;
		}
	} else {
		return -EINVAL;
	}
	if (x < min) {
		return -EINVAL;
	}
	*ret = x;
	return 0;
}

/* The request part shared by the request and the grant forms. */
static int request_fields(const cJSON *j, struct res_request *q)
{
	if (!cJSON_IsObject(j)) {
		return -EINVAL;
	}
	*q = (struct res_request){ .cpus = 1 };
	if (json_int(j, "cpus", false, 1, &q->cpus) < 0 ||
	    json_int(j, "mem", true, 0, &q->mem) < 0 ||
	    json_int(j, "gpu_mem", true, 0, &q->gpu_mem) < 0) {
		return -EINVAL;
	}
	return 0;
}

int res_request_parse(const cJSON *j, struct res_request *ret)
{
	struct res_request q;

	if (request_fields(j, &q) < 0 || json_int(j, "gpus", false, 0, &q.gpus) < 0) {
		return -EINVAL;
	}
	q.bound = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "bound"));
	*ret = q;
	return 0;
}

/* The GPUs are named by UUID, not by index: after a restart or a driver
 * change the indexes may differ, the UUIDs do not. gpu_mem says whether
 * they are held whole (0) or shared. */
cJSON *res_grant_json(const struct res_pool *p, const struct res_grant *g)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *gpus = cJSON_CreateArray();

	cJSON_AddNumberToObject(o, "cpus", (double)g->req.cpus);
	cJSON_AddNumberToObject(o, "mem", (double)g->req.mem);
	cJSON_AddNumberToObject(o, "gpu_mem", (double)g->req.gpu_mem);
	for (int i = 0; i < g->ngpu && i < RES_GPUS_MAX; i++) {
		int k = g->gpu[i];
		cJSON *e;

		if (k < 0 || k >= p->ngpus) {
			continue; /* nothing to name it by */
		}
		e = cJSON_CreateObject();
		cJSON_AddNumberToObject(e, "index", p->gpus[k].index);
		cJSON_AddStringToObject(e, "uuid", p->gpus[k].uuid);
		/* What it holds there: its share, or the whole device. */
		cJSON_AddNumberToObject(e, "mem", (double)(g->req.gpu_mem > 0 ? g->req.gpu_mem
									: p->gpus[k].mem));
		cJSON_AddItemToArray(gpus, e);
	}
	cJSON_AddItemToObject(o, "gpus", gpus);
	return o;
}

int res_grant_parse(const struct res_pool *p, const cJSON *j, struct res_grant *ret)
{
	struct res_grant g;
	bool seen[RES_GPUS_MAX] = { false };
	const cJSON *gpus, *e;

	memset(&g, 0, sizeof(g));
	if (request_fields(j, &g.req) < 0) {
		return -EINVAL;
	}
	gpus = cJSON_GetObjectItemCaseSensitive(j, "gpus");
	if (gpus && !cJSON_IsArray(gpus)) {
		return -EINVAL;
	}
	cJSON_ArrayForEach(e, gpus) {
		const cJSON *uuid = cJSON_GetObjectItemCaseSensitive(e, "uuid");
		int k = 0;

		if (!cJSON_IsString(uuid) || !uuid->valuestring[0] || g.ngpu == RES_GPUS_MAX) {
			return -EINVAL;
		}
		while (k < p->ngpus && strcmp(p->gpus[k].uuid, uuid->valuestring) != 0) {
			k++;
		}
		if (k == p->ngpus) {
			return -ENOENT;
		}
		if (seen[k]) {
			return -EINVAL;
		}
		seen[k] = true;
		g.gpu[g.ngpu++] = k;
	}
	sort_ints(g.gpu, g.ngpu);
	g.req.gpus = g.ngpu;
	*ret = g;
	return 0;
}

static cJSON *amount_json(int64_t total, int64_t reserved)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddNumberToObject(o, "total", (double)total);
	cJSON_AddNumberToObject(o, "reserved", (double)reserved);
	/* Overbooked by re-attached runs: nothing is free, not less. */
	cJSON_AddNumberToObject(o, "free", (double)(total > reserved ? total - reserved : 0));
	return o;
}

cJSON *res_pool_json(const struct res_pool *p)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *gpus = cJSON_CreateArray();

	cJSON_AddItemToObject(o, "cpus", amount_json(p->cpus, p->cpus_used));
	cJSON_AddItemToObject(o, "memory", amount_json(p->mem, p->mem_used));
	for (int i = 0; i < p->ngpus && i < RES_GPUS_MAX; i++) {
		const struct res_gpu *g = &p->gpus[i];
		cJSON *e = cJSON_CreateObject();

		cJSON_AddNumberToObject(e, "index", g->index);
		cJSON_AddStringToObject(e, "uuid", g->uuid);
		cJSON_AddNumberToObject(e, "memory", (double)g->mem);
		cJSON_AddNumberToObject(e, "memory_reserved", (double)g->mem_used);
		cJSON_AddNumberToObject(e, "holders", g->holders);
		cJSON_AddBoolToObject(e, "exclusive", g->exclusive);
		cJSON_AddItemToArray(gpus, e);
	}
	cJSON_AddItemToObject(o, "gpus", gpus);
	return o;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* All units are binary, whichever way they are written: "2G", "2GB" and
 * "2GiB" are 2 * 1024^3 bytes, as memory is sold and as nvidia-smi counts.
 * A fraction of a byte is dropped. */
int res_size_parse(const char *text, int64_t *ret)
{
	const char *s = text;
	uint64_t whole = 0, frac = 0, scale = 1, part = 0;
	int shift = 0, nfrac = 0;
	bool spaced = false;

	/* A digit first: refuses "", "-1", "+1", " 1" and ".5". */
	if (!s || !is_digit(*s)) {
		return -EINVAL;
	}
	for (; is_digit(*s); s++) {
		if (whole > (UINT64_MAX - 9) / 10) {
			return -EINVAL;
		}
		whole = whole * 10 + (uint64_t)(*s - '0');
	}
	if (*s == '.') {
		s++;
		if (!is_digit(*s)) {
			return -EINVAL;
		}
		for (; is_digit(*s); s++) {
			/* Digits past the 18th are below a millionth of a
			 * byte even in TiB. */
			if (nfrac < 18) {
				frac = frac * 10 + (uint64_t)(*s - '0');
				scale *= 10;
				nfrac++;
			}
		}
	}
	/* "64 GiB", as res_check writes sizes. */
	while (*s == ' ') {
		s++;
		spaced = true;
	}
	switch (*s) {
	case 'K':
	case 'k':
		shift = 10;
		break;
	case 'M':
	case 'm':
		shift = 20;
		break;
	case 'G':
	case 'g':
		shift = 30;
		break;
	case 'T':
	case 't':
		shift = 40;
		break;
	}
	if (shift) {
		s++;
		if (*s == 'i') {
			s++;
		}
	}
	if (*s == 'B' || *s == 'b') {
		s++;
	} else if (!shift && spaced) {
		return -EINVAL; /* "1 " */
	}
	if (*s || (!shift && nfrac > 0)) {
		return -EINVAL; /* junk, or a fraction of a byte */
	}
	if (whole > (uint64_t)INT64_MAX >> shift) {
		return -EINVAL;
	}
	/* frac / scale of 2^shift bytes, by long division: frac * 2^shift
	 * would overflow 64 bits. */
	for (int i = 0; i < shift; i++) {
		frac *= 2;
		part *= 2;
		if (frac >= scale) {
			frac -= scale;
			part++;
		}
	}
	whole <<= shift;
	if (whole > (uint64_t)INT64_MAX - part) {
		return -EINVAL;
	}
	*ret = (int64_t)(whole + part);
	return 0;
}

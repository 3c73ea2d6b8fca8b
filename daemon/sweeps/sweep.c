/* The sweep controller (sweep.h). Each sweep in progress is held in memory:
 * its definition, its sampler's state and every trial with the values of
 * the primary metric it has logged. A child is made in one transaction
 * with the sampler's new state, so after a crash the store says exactly
 * which trials exist; a decision is stored with the child's error before
 * the child is canceled, so it stands after a restart. Children are made
 * and sweeps ended from a check handle at the end of the loop's tick, never
 * inside the callback chain of a run that ended. */
#include "sweep.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>
#include <sys/random.h>

#include <uv.h>

#include "context.h"
#include "enqueue.h"
#include "exec.h"
#include "log.h"
#include "msg.h"
#include "policy.h"
#include "scheduler.h"
#include "space.h"
#include "store.h"
#include "util.h"

/* Values of the primary metric kept per trial; past it the policy no
 * longer looks at the trial (its values are all in the store). */
#define SWEEP_VALUES_MAX 100000
#define SWEEP_TOTAL_MAX 100000
#define SWEEP_CONCURRENT_MAX 1000
/* Values read from the store per metric event. */
#define READ_CHUNK 256

struct trial {
	int64_t seq; /* 0 while it is being made */
	cJSON *params;
	double *values;
	int64_t n, cap;
	bool finished;
	bool failed;
	bool completed;
	bool decided; /* the policy stopped it */
};

struct sweep {
	struct sweeps *owner;
	struct sweep *next;
	int64_t seq;
	char *id;
	cJSON *def;  /* the stored definition */
	cJSON *tmpl; /* the stored template */
	const char *metric; /* in def */
	bool maximize;
	struct space *space;
	enum sampling sampling;
	struct policy policy;
	int64_t max_total, max_concurrent;
	double deadline; /* unix seconds; 0: none */
	struct sampler_state st;
	bool array;           /* an array: trial k is index start + k * step */
	int64_t start, step;
	struct trial *trials; /* by trial number */
	int64_t ntrials, cap;
	int64_t active; /* trials not finished */
	bool exhausted; /* grid: every configuration made */
	bool ending;    /* no more trials: canceled, out of time or broken */
	bool canceled;
	bool timed_out;
	bool dirty; /* look at it at the end of the tick */
	bool closing;
	uv_timer_t timer; /* the deadline */
};

struct sweeps {
	struct daemon *d;
	struct sweep *head;
	uv_check_t later;
	uv_idle_t awake; /* keeps poll from blocking while later waits */
	bool pending;
	int open;
};

static void later_cb(uv_check_t *h);
static void idle_cb(uv_idle_t *h)
{
}

static void sweeps_closed_cb(uv_handle_t *h)
{
	struct sweeps *ss = h->data;

	if (--ss->open == 0) {
		free(ss);
	}
}

int sweeps_init(struct daemon *d)
{
	struct sweeps *ss = calloc(1, sizeof(*ss));

	if (!ss) {
		return -ENOMEM;
	}
	ss->d = d;
	uv_check_init(d->loop, &ss->later);
	ss->later.data = ss;
	uv_idle_init(d->loop, &ss->awake);
	ss->awake.data = ss;
	ss->open = 2;
	d->sweeps = ss;
	return 0;
}

static void sweep_free(struct sweep *w)
{
	for (int64_t i = 0; i < w->ntrials; i++) {
		cJSON_Delete(w->trials[i].params);
		free(w->trials[i].values);
	}
	free(w->trials);
	space_free(w->space);
	cJSON_Delete(w->def);
	cJSON_Delete(w->tmpl);
	free(w->id);
	free(w);
}

static void timer_closed_cb(uv_handle_t *h)
{
	sweep_free(h->data);
}

/* Take w off the list and let its timer close; it is freed then. */
static void sweep_drop(struct sweep *w)
{
	struct sweep **p = &w->owner->head;

	while (*p && *p != w) {
		p = &(*p)->next;
	}
	if (*p) {
		*p = w->next;
	}
	w->closing = true;
	uv_close((uv_handle_t *)&w->timer, timer_closed_cb);
}

void sweeps_close(struct daemon *d)
{
	struct sweeps *ss = d->sweeps;

	if (!ss) {
		return;
	}
	d->sweeps = NULL;
	while (ss->head) {
		sweep_drop(ss->head);
	}
	uv_close((uv_handle_t *)&ss->awake, sweeps_closed_cb);
	uv_close((uv_handle_t *)&ss->later, sweeps_closed_cb);
}

static void mark(struct sweep *w)
{
	struct sweeps *ss = w->owner;

	w->dirty = true;
	if (!ss->pending) {
		ss->pending = true;
		uv_check_start(&ss->later, later_cb);
		uv_idle_start(&ss->awake, idle_cb);
	}
}

static struct sweep *sweep_find(struct daemon *d, int64_t seq)
{
	for (struct sweep *w = d->sweeps ? d->sweeps->head : NULL; w; w = w->next) {
		if (w->seq == seq) {
			return w;
		}
	}
	return NULL;
}

bool sweep_active(struct daemon *d, int64_t seq)
{
	return sweep_find(d, seq) != NULL;
}

static struct trial *trial_find(struct sweep *w, int64_t seq)
{
	/* Newest first: the trials still running are the last ones made. */
	for (int64_t i = w->ntrials; i-- > 0;) {
		if (w->trials[i].seq == seq) {
			return &w->trials[i];
		}
	}
	return NULL;
}

/* The definition */

static int bad(char **cause, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(char **cause, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(cause, fmt, ap) < 0) {
		*cause = NULL;
	}
	va_end(ap);
	return -EINVAL;
}

int sweep_definition(const cJSON *args, cJSON **ret, char **cause)
{
	const char *metric = NULL, *goal = NULL, *sampling = "random";
	const cJSON *params = cJSON_GetObjectItemCaseSensitive(args, "params");
	const cJSON *pol = cJSON_GetObjectItemCaseSensitive(args, "policy");
	int64_t max_total = 0, max_concurrent = 0, seed = -1;
	double max_duration = 0;
	enum sampling smp;
	struct space *sp = NULL;
	struct policy p;
	cJSON *def = NULL;
	int err;

	if ((err = msg_arg_string(args, "metric", true, &metric, cause)) < 0 ||
	    (err = msg_arg_string(args, "goal", true, &goal, cause)) < 0 ||
	    (err = msg_arg_string(args, "sampling", false, &sampling, cause)) < 0 ||
	    (err = msg_arg_int(args, "max_total", false, 1, SWEEP_TOTAL_MAX, &max_total, cause)) <
		    0 ||
	    (err = msg_arg_int(args, "max_concurrent", false, 1, SWEEP_CONCURRENT_MAX,
			       &max_concurrent, cause)) < 0 ||
	    (err = msg_arg_number(args, "max_duration", false, 1e-6, 1e9, &max_duration, cause)) <
		    0 ||
	    (err = msg_arg_int(args, "seed", false, 0, (int64_t)1 << 53, &seed, cause)) < 0) {
		return err;
	}
	if (!*metric || strlen(metric) > 255) {
		return bad(cause, "argument 'metric' must name the primary metric (1 to 255 bytes)");
	}
	if (strcmp(goal, "maximize") != 0 && strcmp(goal, "minimize") != 0) {
		return bad(cause, "argument 'goal' must be \"maximize\" or \"minimize\", not \"%s\"",
			   goal);
	}
	if (sampling_parse(sampling, &smp) < 0) {
		return bad(cause,
			   "argument 'sampling' must be \"random\", \"grid\" or \"bayesian\", not "
			   "\"%s\"",
			   sampling);
	}
	if (!cJSON_IsObject(params) || !params->child) {
		return bad(cause, "argument 'params' must be an object of at least one "
				  "{NAME: EXPRESSION}, such as {\"--C\": \"uniform(0.1, 10)\"}");
	}
	if ((err = space_parse(params, &sp, cause)) < 0 ||
	    (err = space_check(sp, smp, cause)) < 0) {
		goto out;
	}
	if (max_total == 0) {
		if (smp != SAMPLING_GRID) {
			err = bad(cause, "argument 'max_total' is required (how many trials at most)");
			goto out;
		}
		int64_t g = space_grid_size(sp);
		max_total = g > SWEEP_TOTAL_MAX ? SWEEP_TOTAL_MAX : g;
	}
	if (max_concurrent == 0) {
		max_concurrent = max_total < SWEEP_CONCURRENT_MAX ? max_total : SWEEP_CONCURRENT_MAX;
	}
	if (!pol || cJSON_IsNull(pol)) {
		err = policy_parse("none", &p, cause);
	} else if (cJSON_IsString(pol)) {
		err = policy_parse(pol->valuestring, &p, cause);
	} else if (cJSON_IsObject(pol)) {
		err = policy_from_json(pol, &p, cause);
	} else {
		err = bad(cause, "argument 'policy' must be a string such as "
				 "\"bandit,slack_factor=0.1\" or an object");
	}
	if (err < 0) {
		goto out;
	}
	if (seed < 0) {
		uint64_t r = 0;
		if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
			r = (uint64_t)(util_now() * 1e6);
		}
		/* 32 bits: a seed people can read back and type. */
		seed = (int64_t)(r & 0xffffffffu);
	}
	def = cJSON_CreateObject();
	cJSON_AddStringToObject(def, "metric", metric);
	cJSON_AddStringToObject(def, "goal", goal);
	cJSON_AddStringToObject(def, "sampling", sampling_name(smp));
	cJSON_AddItemToObject(def, "params", cJSON_Duplicate(params, true));
	cJSON_AddNumberToObject(def, "max_total", (double)max_total);
	cJSON_AddNumberToObject(def, "max_concurrent", (double)max_concurrent);
	if (max_duration > 0) {
		cJSON_AddNumberToObject(def, "max_duration", max_duration);
	} else {
		cJSON_AddNullToObject(def, "max_duration");
	}
	cJSON_AddItemToObject(def, "policy", policy_json(&p));
	cJSON_AddNumberToObject(def, "seed", (double)seed);
	if (!cJSON_GetObjectItemCaseSensitive(def, "policy") ||
	    !cJSON_GetObjectItemCaseSensitive(def, "seed")) {
		err = -ENOMEM;
		goto out;
	}
	*ret = def;
	def = NULL;
	err = 0;
out:
	cJSON_Delete(def);
	space_free(sp);
	return err;
}

int sweep_array_definition(const char *spec, cJSON **ret, char **cause)
{
	long long a, b, step = 1, k = 0;
	char *end;

	errno = 0;
	a = strtoll(spec, &end, 10);
	if (end == spec || *end != '-' || a < 0) {
		goto bad;
	}
	spec = end + 1;
	b = strtoll(spec, &end, 10);
	if (end == spec || b < a) {
		goto bad;
	}
	if (*end == ':') {
		spec = end + 1;
		step = strtoll(spec, &end, 10);
		if (end == spec || step < 1) {
			goto bad;
		}
	}
	if (*end == '%') {
		spec = end + 1;
		k = strtoll(spec, &end, 10);
		if (end == spec || k < 1 || k > SWEEP_CONCURRENT_MAX) {
			goto bad;
		}
	}
	if (*end || errno || (b - a) / step + 1 > SWEEP_TOTAL_MAX) {
		goto bad;
	}
	int64_t n = (b - a) / step + 1;
	cJSON *def = cJSON_CreateObject(), *arr = cJSON_AddObjectToObject(def, "array");
	cJSON_AddNumberToObject(arr, "start", (double)a);
	cJSON_AddNumberToObject(arr, "end", (double)b);
	cJSON_AddNumberToObject(arr, "step", (double)step);
	/* The read side shares the sweep's: an array has no metric to rank. */
	cJSON_AddStringToObject(def, "metric", "");
	cJSON_AddStringToObject(def, "goal", "maximize");
	cJSON_AddStringToObject(def, "sampling", "array");
	cJSON_AddItemToObject(def, "params", cJSON_CreateObject());
	cJSON_AddNumberToObject(def, "max_total", (double)n);
	cJSON_AddNumberToObject(def, "max_concurrent", (double)(k ? k : n < SWEEP_CONCURRENT_MAX ? n : SWEEP_CONCURRENT_MAX));
	cJSON_AddNullToObject(def, "max_duration");
	cJSON_AddItemToObject(def, "policy", cJSON_CreateObject());
	cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(def, "policy"), "name", "none");
	cJSON_AddNumberToObject(def, "seed", 0);
	*ret = def;
	return cJSON_GetObjectItemCaseSensitive(def, "seed") ? 0 : -ENOMEM;
bad:
	*cause = msg_strdupf("argument 'array' must be FIRST-LAST[:STEP][%%K] (0-15, 0-99:10, "
			     "1-8%%2), with FIRST <= LAST, STEP and K from 1, at most %d elements",
			     SWEEP_TOTAL_MAX);
	return -EINVAL;
}

/* The in-memory sweep from its stored definition and template. */
static int sweep_build(struct daemon *d, int64_t seq, const char *id, cJSON *def, cJSON *tmpl,
		       double started_at, struct sweep **ret)
{
	struct sweep *w = calloc(1, sizeof(*w));
	const cJSON *v;
	char *cause = NULL;
	int err = -ENOMEM;

	if (!w) {
		cJSON_Delete(def);
		cJSON_Delete(tmpl);
		return -ENOMEM;
	}
	w->owner = d->sweeps;
	w->seq = seq;
	w->def = def;
	w->tmpl = tmpl;
	w->id = strdup(id);
	if (!w->id) {
		goto fail;
	}
	err = -EINVAL;
	v = cJSON_GetObjectItemCaseSensitive(def, "metric");
	if (!cJSON_IsString(v)) {
		goto fail;
	}
	w->metric = v->valuestring;
	v = cJSON_GetObjectItemCaseSensitive(def, "goal");
	w->maximize = cJSON_IsString(v) && strcmp(v->valuestring, "maximize") == 0;
	v = cJSON_GetObjectItemCaseSensitive(def, "array");
	if (cJSON_IsObject(v)) {
		w->array = true;
		w->start = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(v, "start"));
		w->step = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(v, "step"));
		if (w->step < 1) {
			goto fail;
		}
		w->policy.kind = POLICY_NONE;
		goto limits;
	}
	v = cJSON_GetObjectItemCaseSensitive(def, "sampling");
	if (!cJSON_IsString(v) || sampling_parse(v->valuestring, &w->sampling) < 0) {
		goto fail;
	}
	if ((err = space_parse(cJSON_GetObjectItemCaseSensitive(def, "params"), &w->space,
			       &cause)) < 0 ||
	    (err = policy_from_json(cJSON_GetObjectItemCaseSensitive(def, "policy"), &w->policy,
				    &cause)) < 0) {
		log_error("sweep %s: its stored definition does not parse: %s", id,
			  cause ? cause : "out of memory");
		free(cause);
		goto fail;
	}
limits:
	v = cJSON_GetObjectItemCaseSensitive(def, "max_total");
	w->max_total = cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 1;
	v = cJSON_GetObjectItemCaseSensitive(def, "max_concurrent");
	w->max_concurrent = cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 1;
	v = cJSON_GetObjectItemCaseSensitive(def, "max_duration");
	if (cJSON_IsNumber(v) && v->valuedouble > 0) {
		w->deadline = started_at + v->valuedouble * 60;
	}
	uv_timer_init(d->loop, &w->timer);
	w->timer.data = w;
	*ret = w;
	return 0;
fail:
	sweep_free(w);
	return err;
}

static void deadline_cb(uv_timer_t *h);

/* On the list, with its deadline armed. */
static void sweep_start(struct sweep *w)
{
	struct sweeps *ss = w->owner;

	w->next = ss->head;
	ss->head = w;
	if (w->deadline > 0) {
		double left = w->deadline - util_now();
		uv_timer_start(&w->timer, deadline_cb, left > 0 ? (uint64_t)(left * 1000) : 0, 0);
	}
	mark(w);
}

/* Making children */

struct make {
	struct sweep *w;
	struct trial *t;
	int64_t trial;
	const char *params;
	const char *state;
};

static int make_in_txn(void *ud, int64_t seq)
{
	struct make *m = ud;

	/* Known before the run exists: an end fired while it is being made
	 * (its inputs could not be recorded) finds its trial. */
	m->t->seq = seq;
	return store_sweep_trial_add(m->w->owner->d->store, m->w->seq, seq, m->trial, m->params,
				     m->state);
}

static const char *tmpl_str(const struct sweep *w, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(w->tmpl, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double tmpl_num(const struct sweep *w, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(w->tmpl, key);

	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* An array's element: every "{index}" in an argument becomes the index. */
static cJSON *with_index(const cJSON *args, int64_t index)
{
	cJSON *a = cJSON_CreateArray();
	const cJSON *v;
	char num[24];

	snprintf(num, sizeof(num), "%lld", (long long)index);
	cJSON_ArrayForEach(v, args) {
		const char *in = cJSON_GetStringValue(v) ? v->valuestring : "";
		size_t cap = strlen(in) + 1, n = 0;
		char *out;
		for (const char *p = strstr(in, "{index}"); p; p = strstr(p + 7, "{index}")) {
			cap += strlen(num);
		}
		out = malloc(cap);
		if (!out) {
			cJSON_Delete(a);
			return NULL;
		}
		for (const char *p = in; *p;) {
			if (strncmp(p, "{index}", 7) == 0) {
				memcpy(out + n, num, strlen(num));
				n += strlen(num);
				p += 7;
			} else {
				out[n++] = *p++;
			}
		}
		out[n] = '\0';
		cJSON_AddItemToArray(a, cJSON_CreateString(out));
		free(out);
	}
	return a;
}

/* Append each parameter as NAME VALUE to a copy of the template's key; an
 * array's element has its index put in instead. */
static cJSON *with_params(const struct sweep *w, const char *key, const cJSON *config)
{
	cJSON *a = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(w->tmpl, key), true);
	const cJSON *p;

	if (!cJSON_IsArray(a)) {
		cJSON_Delete(a);
		return NULL;
	}
	if (w->array) {
		cJSON *b = with_index(a, (int64_t)cJSON_GetNumberValue(
						 cJSON_GetObjectItemCaseSensitive(config, "index")));
		cJSON_Delete(a);
		return b;
	}
	cJSON_ArrayForEach(p, config) {
		char *text = space_value_text(p);
		if (!text) {
			cJSON_Delete(a);
			return NULL;
		}
		cJSON_AddItemToArray(a, cJSON_CreateString(p->string));
		cJSON_AddItemToArray(a, cJSON_CreateString(text));
		free(text);
	}
	return a;
}

static double trial_score(const struct sweep *w, const struct trial *t)
{
	double best = NAN;

	for (int64_t i = 0; i < t->n; i++) {
		double v = t->values[i];
		if (!isnan(v) && (isnan(best) || (w->maximize ? v > best : v < best))) {
			best = v;
		}
	}
	return best;
}

/* Draw one configuration and make its child. -ENOENT: grid has none left. */
static int make_child(struct sweep *w)
{
	struct daemon *d = w->owner->d;
	struct sampler_state st = w->st;
	struct sampler_obs *obs = NULL;
	size_t nobs = 0;
	cJSON *config = NULL, *state = NULL, *command = NULL, *argv = NULL, *env = NULL;
	char *params = NULL, *state_text = NULL, *cmd = NULL, *argv_text = NULL, *env_text = NULL;
	char *cause = NULL, hex[9], *id = NULL;
	struct run *r = NULL;
	struct trial *t;
	double now = util_now();
	int err = -ENOMEM;

	if (w->ntrials == w->cap) {
		int64_t cap = w->cap ? w->cap * 2 : 16;
		struct trial *nt = realloc(w->trials, (size_t)cap * sizeof(*nt));
		if (!nt) {
			return -ENOMEM;
		}
		w->trials = nt;
		w->cap = cap;
	}
	if (w->sampling == SAMPLING_BAYESIAN) {
		obs = calloc((size_t)w->ntrials + 1, sizeof(*obs));
		if (!obs) {
			goto out;
		}
		for (int64_t i = 0; i < w->ntrials; i++) {
			const struct trial *o = &w->trials[i];
			if (o->finished && !o->failed) {
				obs[nobs].config = o->params;
				obs[nobs].value = trial_score(w, o);
				nobs++;
			}
		}
	}
	if (w->array) {
		config = cJSON_CreateObject();
		if (!config) {
			goto out;
		}
		cJSON_AddNumberToObject(config, "index", (double)(w->start + w->ntrials * w->step));
		st.drawn++;
	} else if ((err = sampler_next(w->space, w->sampling, &st, w->maximize, obs, nobs,
				       &config)) < 0) {
		goto out;
	}
	err = -ENOMEM;
	state = sampler_state_json(&st);
	params = cJSON_PrintUnformatted(config);
	state_text = state ? cJSON_PrintUnformatted(state) : NULL;
	command = with_params(w, "command", config);
	argv = with_params(w, "argv", config);
	env = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(w->tmpl, "env"), true);
	if (w->array && env) {
		char num[24];
		snprintf(num, sizeof(num), "%lld",
			 (long long)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(config,
											  "index")));
		cJSON_DeleteItemFromObjectCaseSensitive(env, "RUNYARD_ARRAY_INDEX");
		cJSON_AddStringToObject(env, "RUNYARD_ARRAY_INDEX", num);
	}
	cmd = command ? cJSON_PrintUnformatted(command) : NULL;
	argv_text = argv ? cJSON_PrintUnformatted(argv) : NULL;
	env_text = env ? cJSON_PrintUnformatted(env) : NULL;
	util_random_hex(hex, 4);
	id = msg_strdupf("%s_%lld_%s", tmpl_str(w, "experiment"), (long long)now, hex);
	if (!params || !state_text || !cmd || !argv_text || !env_text || !id) {
		goto out;
	}
	t = &w->trials[w->ntrials];
	memset(t, 0, sizeof(*t));
	t->params = config;
	config = NULL;
	w->ntrials++;
	w->active++;
	struct make m = {
		.w = w, .t = t, .trial = w->ntrials - 1, .params = params, .state = state_text};
	struct store_run_new n = {
		.id = id,
		.experiment = tmpl_str(w, "experiment"),
		.priority = (int)tmpl_num(w, "priority"),
		.command_json = cmd,
		.argv_json = argv_text,
		.python = tmpl_str(w, "python"),
		.source = tmpl_str(w, "source"),
		.snapshot = tmpl_str(w, "snapshot"),
		.env_json = env_text,
		.timeout = tmpl_num(w, "timeout"),
		.keep = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(w->tmpl, "keep")),
		.created_at = now,
		.target = tmpl_str(w, "target"),
		.resources_json = tmpl_str(w, "resources"),
		.request_json = tmpl_str(w, "request"),
		.retries = (int)tmpl_num(w, "retries"),
		.retry_on = tmpl_str(w, "retry_on"),
		.parent_seq = w->seq,
		.in_txn = make_in_txn,
		.in_txn_ud = &m,
	};
	err = enqueue_run(d, &n, &argv, &env, cJSON_GetObjectItemCaseSensitive(w->tmpl, "inputs"),
			  cJSON_GetObjectItemCaseSensitive(w->tmpl, "outputs"), &r, &cause);
	/* t stays put: the array grows only above, before t is taken. */
	if (err < 0 && t->seq == 0) {
		/* Nothing was stored: the draw did not happen. */
		cJSON_Delete(t->params);
		w->ntrials--;
		w->active--;
		log_error("sweep %s: making a trial failed: %s", w->id, cause ? cause : "");
		goto out;
	}
	/* Stored: the draw is spent even if the child failed at once. */
	w->st = st;
	if (!r && !t->finished) {
		t->finished = t->failed = true;
		w->active--;
	}
	err = 0;
out:
	free(cause);
	free(id);
	free(obs);
	cJSON_Delete(config);
	cJSON_Delete(state);
	cJSON_Delete(command);
	cJSON_Delete(argv);
	cJSON_Delete(env);
	free(params);
	free(state_text);
	free(cmd);
	free(argv_text);
	free(env_text);
	return err;
}

static bool out_of_time(const struct sweep *w)
{
	return w->deadline > 0 && util_now() >= w->deadline;
}

/* Stop every unfinished child: the sweep is canceled or out of time. */
static int stop_children(struct sweep *w, const char *code, const char *message)
{
	struct daemon *d = w->owner->d;
	int n = 0;

	for (int64_t i = 0; i < w->ntrials; i++) {
		struct trial *t = &w->trials[i];
		struct run *r = t->finished ? NULL : run_find(d, t->seq);

		if (!r || r->status == RUN_CANCEL_REQUESTED || r->status == RUN_FINALIZING) {
			continue;
		}
		store_run_set_error(d->store, r->seq, code, message, run_status_name(r->status));
		if (exec_cancel(r) == 0) {
			n++;
		}
	}
	return n;
}

static void finish(struct sweep *w)
{
	struct daemon *d = w->owner->d;
	const char *status = "Completed";
	int64_t completed = 0;
	double now = util_now();

	for (int64_t i = 0; i < w->ntrials; i++) {
		completed += w->trials[i].completed;
	}
	if (w->canceled) {
		status = "Canceled";
	} else if (w->array && completed < w->ntrials) {
		status = "Failed";
		char msg[96];
		snprintf(msg, sizeof(msg), "%lld of its %lld elements did not complete",
			 (long long)(w->ntrials - completed), (long long)w->ntrials);
		store_run_set_error(d->store, w->seq, "ElementFailed", msg, "Running");
	} else if (completed == 0 && w->ntrials > 0) {
		status = "Failed";
		char msg[96];
		snprintf(msg, sizeof(msg), "none of its %lld trials completed",
			 (long long)w->ntrials);
		store_run_set_error(d->store, w->seq, "NoTrialCompleted", msg, "Running");
	}
	if (store_run_transition(d->store, w->seq, status, now, true) < 0) {
		/* Still Running in the store: the next start ends it again. */
		log_error("sweep %s: recording its end failed: %s", w->id, store_errmsg(d->store));
	}
	log_info("sweep %s %s: %lld trials, %lld completed", w->id, status, (long long)w->ntrials,
		 (long long)completed);
	sweep_drop(w);
	/* Runs may wait for the sweep (--after). */
	scheduler_kick(d);
}

/* Make children while there is room; end the sweep when nothing remains. */
static void advance(struct sweep *w)
{
	struct daemon *d = w->owner->d;
	bool made = false;

	if (!w->ending && (w->timed_out || out_of_time(w))) {
		w->ending = w->timed_out = true;
		stop_children(w, "SweepTimeLimit", "the sweep reached its max_duration");
	}
	while (!w->ending && !w->exhausted && !d->stopping && w->ntrials < w->max_total &&
	       w->active < w->max_concurrent) {
		int err = make_child(w);
		if (err == -ENOENT) {
			w->exhausted = true;
		} else if (err < 0) {
			/* The store or memory failed: try again at the next end
			 * rather than spin. */
			break;
		} else {
			made = true;
		}
	}
	if (made) {
		scheduler_kick(d);
	}
	if (w->active == 0 && !d->stopping &&
	    (w->ending || w->exhausted || w->ntrials >= w->max_total)) {
		finish(w);
	}
}

static void later_cb(uv_check_t *h)
{
	struct sweeps *ss = h->data;

	ss->pending = false;
	uv_check_stop(&ss->later);
	uv_idle_stop(&ss->awake);
	for (struct sweep *w = ss->head, *next; w; w = next) {
		next = w->next;
		if (w->dirty) {
			w->dirty = false;
			advance(w);
		}
	}
}

static void deadline_cb(uv_timer_t *h)
{
	struct sweep *w = h->data;

	/* The loop's clock may run a little behind the wall clock the deadline
	 * is written in: the timer firing is what says the time is up. */
	w->timed_out = true;
	mark(w);
}

/* Early termination */

/* Look at trial t's values from from+1 on (each is an interval at which
 * it logged), and stop it at the first that the policy condemns. */
static void evaluate(struct sweep *w, struct trial *t, int64_t from)
{
	struct daemon *d = w->owner->d;
	struct policy_trial *pts;
	int64_t self = t - w->trials, n = t->n;

	if (w->policy.kind == POLICY_NONE || t->decided || t->finished) {
		return;
	}
	pts = calloc((size_t)w->ntrials, sizeof(*pts));
	if (!pts) {
		return;
	}
	for (int64_t i = 0; i < w->ntrials; i++) {
		pts[i].id = w->trials[i].seq;
		pts[i].values = w->trials[i].values;
		pts[i].n = (size_t)w->trials[i].n;
		pts[i].finished = w->trials[i].finished;
	}
	for (int64_t k = from + 1; k <= n; k++) {
		char *why = NULL, *detail_text = NULL;
		cJSON *detail = NULL;
		struct run *r;

		pts[self].n = (size_t)k;
		if (policy_evaluate(&w->policy, w->maximize, pts, (size_t)w->ntrials, (size_t)self,
				    &why, &detail) != 1) {
			continue;
		}
		detail_text = detail ? cJSON_PrintUnformatted(detail) : NULL;
		r = run_find(d, t->seq);
		t->decided = true;
		/* Stored before the cancel: the decision stands after a crash,
		 * and the child's end carries its reason. */
		if (store_begin(d->store) == 0) {
			if (store_sweep_decision_add(d->store, w->seq, t->seq, util_now(), k,
						     policy_name(w->policy.kind), why,
						     detail_text) < 0 ||
			    store_run_set_error(d->store, t->seq, "EarlyTerminated", why,
						r ? run_status_name(r->status) : "Running") < 0 ||
			    store_commit(d->store) < 0) {
				store_rollback(d->store);
				log_error("sweep %s: recording a decision failed: %s", w->id,
					  store_errmsg(d->store));
			}
		}
		log_info("sweep %s: trial %s stopped: %s", w->id, r ? r->id : "?", why);
		if (r) {
			exec_cancel(r);
		}
		free(why);
		free(detail_text);
		cJSON_Delete(detail);
		break;
	}
	free(pts);
}

/* Read t's new values of the primary metric from the store; how many
 * there were before. */
static int64_t read_values(struct sweep *w, struct trial *t)
{
	struct store *s = w->owner->d->store;
	int64_t before = t->n;

	while (t->n < SWEEP_VALUES_MAX) {
		int64_t want = SWEEP_VALUES_MAX - t->n < READ_CHUNK ? SWEEP_VALUES_MAX - t->n
								   : READ_CHUNK;
		int64_t got = 0;

		if (t->cap - t->n < want) {
			int64_t cap = t->cap ? t->cap : 16;
			while (cap - t->n < want) {
				cap *= 2;
			}
			double *nv = realloc(t->values, (size_t)cap * sizeof(*nv));
			if (!nv) {
				break;
			}
			t->values = nv;
			t->cap = cap;
		}
		if (store_metric_numbers(s, t->seq, w->metric, t->n, want, t->values + t->n, &got) <
			    0 ||
		    got == 0) {
			break;
		}
		t->n += got;
		if (got < want) {
			break;
		}
	}
	return before;
}

void sweeps_run_event(void *ud, struct run *r, enum run_event ev)
{
	struct daemon *d = ud;
	struct sweep *w;
	struct trial *t;

	if (r->parent == 0 || (ev != RUN_EV_METRIC && ev != RUN_EV_ENDED) ||
	    !(w = sweep_find(d, r->parent)) || !(t = trial_find(w, r->seq))) {
		return;
	}
	if (ev == RUN_EV_METRIC) {
		int64_t before = read_values(w, t);
		if (t->n > before) {
			evaluate(w, t, before);
		}
		return;
	}
	if (t->finished) {
		return;
	}
	read_values(w, t); /* the last lines, stored as it ended */
	t->finished = true;
	t->failed = r->status == RUN_FAILED;
	t->completed = r->status == RUN_COMPLETED;
	w->active--;
	mark(w);
}

/* Creating and canceling */

static cJSON *template_json(const struct sweep_template *t)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "experiment", t->experiment);
	cJSON_AddNumberToObject(o, "priority", t->priority);
	cJSON_AddItemToObject(o, "command", cJSON_Duplicate(t->command, true));
	cJSON_AddItemToObject(o, "argv", cJSON_Duplicate(t->argv, true));
	cJSON_AddStringToObject(o, "python", t->python);
	cJSON_AddStringToObject(o, "source", t->source);
	cJSON_AddStringToObject(o, "snapshot", t->snapshot);
	cJSON_AddItemToObject(o, "env", t->env ? cJSON_Duplicate(t->env, true)
					       : cJSON_CreateObject());
	cJSON_AddNumberToObject(o, "timeout", t->timeout);
	cJSON_AddBoolToObject(o, "keep", t->keep);
	if (t->target) {
		cJSON_AddStringToObject(o, "target", t->target);
		cJSON_AddStringToObject(o, "resources", t->resources_json ? t->resources_json : "{}");
	}
	if (t->request_json) {
		cJSON_AddStringToObject(o, "request", t->request_json);
	}
	if (t->retries > 0) {
		cJSON_AddNumberToObject(o, "retries", t->retries);
		if (t->retry_on) {
			cJSON_AddStringToObject(o, "retry_on", t->retry_on);
		}
	}
	if (t->inputs) {
		cJSON_AddItemToObject(o, "inputs", cJSON_Duplicate(t->inputs, true));
	}
	if (t->outputs) {
		cJSON_AddItemToObject(o, "outputs", cJSON_Duplicate(t->outputs, true));
	}
	return o;
}

struct create {
	struct store *s;
	const char *def, *tmpl, *state;
	double at;
};

static int create_in_txn(void *ud, int64_t seq)
{
	struct create *c = ud;

	return store_sweep_insert(c->s, seq, c->def, c->tmpl, c->state, c->at);
}

int sweep_create(struct daemon *d, const cJSON *def, const struct sweep_template *t,
		 int64_t *ret_seq, char **ret_id, char **cause)
{
	cJSON *dj = cJSON_Duplicate(def, true), *tj = template_json(t), *sj = NULL;
	char *def_text = NULL, *tmpl_text = NULL, *state_text = NULL, *cmd = NULL, *argv = NULL;
	char *env = NULL, hex[9], *id = NULL;
	struct sampler_state st;
	struct sweep *w = NULL;
	double now = util_now();
	int64_t seq;
	int err = -ENOMEM;

	sampler_seed(&st, (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(def, "seed")));
	sj = sampler_state_json(&st);
	if (dj) {
		cJSON_AddItemToObject(dj, "command", cJSON_Duplicate(t->command, true));
	}
	def_text = dj ? cJSON_PrintUnformatted(dj) : NULL;
	tmpl_text = tj ? cJSON_PrintUnformatted(tj) : NULL;
	state_text = sj ? cJSON_PrintUnformatted(sj) : NULL;
	cmd = cJSON_PrintUnformatted(t->command);
	argv = cJSON_PrintUnformatted(t->argv);
	env = t->env ? cJSON_PrintUnformatted(t->env) : strdup("{}");
	util_random_hex(hex, 4);
	id = msg_strdupf("%s_%lld_%s", t->experiment, (long long)now, hex);
	if (!def_text || !tmpl_text || !state_text || !cmd || !argv || !env || !id) {
		*cause = msg_strdupf("out of memory");
		goto out;
	}
	struct create c = {.s = d->store, .def = def_text, .tmpl = tmpl_text,
			   .state = state_text, .at = now};
	struct store_run_new n = {
		.id = id,
		.experiment = t->experiment,
		.priority = t->priority,
		.command_json = cmd,
		.argv_json = argv,
		.python = t->python,
		.source = t->source,
		.snapshot = t->snapshot,
		.env_json = env,
		.timeout = t->timeout,
		.keep = t->keep,
		.created_at = now,
		.kind = cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(def, "array")) ? "array"
										       : "sweep",
		.in_txn = create_in_txn,
		.in_txn_ud = &c,
	};
	err = store_run_insert(d->store, &n, &seq);
	if (err < 0) {
		*cause = msg_strdupf("recording the sweep failed: %s", store_errmsg(d->store));
		goto out;
	}
	err = sweep_build(d, seq, id, dj, tj, now, &w);
	dj = tj = NULL;
	if (err < 0) {
		*cause = msg_strdupf("the sweep's definition does not hold together");
		goto out;
	}
	w->st = st;
	sweep_start(w);
	log_info("sweep %s (#%lld) started: %lld trials at most, %lld at once", id,
		 (long long)seq, (long long)w->max_total, (long long)w->max_concurrent);
	*ret_seq = seq;
	*ret_id = id;
	id = NULL;
	err = 0;
out:
	cJSON_Delete(dj);
	cJSON_Delete(tj);
	cJSON_Delete(sj);
	free(def_text);
	free(tmpl_text);
	free(state_text);
	free(cmd);
	free(argv);
	free(env);
	free(id);
	return err;
}

int sweep_cancel(struct daemon *d, int64_t seq, int *ret_n)
{
	struct sweep *w = sweep_find(d, seq);

	if (!w || w->canceled) {
		return -ENOENT;
	}
	w->canceled = w->ending = true;
	*ret_n = stop_children(w, "SweepCanceled", "the sweep was canceled");
	mark(w);
	return 0;
}

/* After a restart */

struct load {
	struct sweep *w;
	int err;
};

static int trial_cb(void *ud, const struct store_trial_row *row)
{
	struct load *l = ud;
	struct sweep *w = l->w;
	enum run_status status;
	struct trial *t;

	if (w->ntrials == w->cap) {
		int64_t cap = w->cap ? w->cap * 2 : 16;
		struct trial *nt = realloc(w->trials, (size_t)cap * sizeof(*nt));
		if (!nt) {
			return l->err = -ENOMEM;
		}
		w->trials = nt;
		w->cap = cap;
	}
	t = &w->trials[w->ntrials];
	memset(t, 0, sizeof(*t));
	t->seq = row->seq;
	t->params = cJSON_Parse(row->params);
	t->decided = row->decided;
	if (run_status_parse(row->status, &status) < 0) {
		status = RUN_FAILED;
	}
	t->finished = run_status_terminal(status);
	t->failed = status == RUN_FAILED;
	t->completed = status == RUN_COMPLETED;
	w->ntrials++;
	w->active += !t->finished;
	return 0;
}

static int resume_cb(void *ud, const struct store_sweep_row *row)
{
	struct daemon *d = ud;
	cJSON *def = cJSON_Parse(row->definition), *tmpl = cJSON_Parse(row->template_json);
	cJSON *state = cJSON_Parse(row->state);
	struct sweep *w = NULL;
	struct load l = {0};
	int err;

	err = sweep_build(d, row->seq, row->id, def, tmpl,
			  row->started_at > 0 ? row->started_at : row->created_at, &w);
	if (err < 0 || sampler_state_parse(state, &w->st) < 0) {
		cJSON_Delete(state);
		if (err == 0) {
			uv_close((uv_handle_t *)&w->timer, timer_closed_cb);
		}
		log_error("sweep %s: its stored state does not parse; it is ended Failed",
			  row->id);
		store_run_set_error(d->store, row->seq, "SweepCorrupt",
				    "the sweep's stored state does not parse", "Running");
		store_run_transition(d->store, row->seq, "Failed", util_now(), true);
		return err == -ENOMEM ? err : 0;
	}
	cJSON_Delete(state);
	l.w = w;
	if (store_sweep_trials(d->store, row->seq, trial_cb, &l) < 0 || l.err < 0) {
		uv_close((uv_handle_t *)&w->timer, timer_closed_cb);
		return l.err < 0 ? l.err : -EIO;
	}
	for (int64_t i = 0; i < w->ntrials; i++) {
		struct trial *t = &w->trials[i];
		read_values(w, t);
		if (t->finished) {
			continue;
		}
		if (t->decided) {
			/* Decided before the crash, perhaps not yet acted on. */
			struct run *r = run_find(d, t->seq);
			if (r) {
				exec_cancel(r);
			}
		} else if (t->n > 0) {
			/* What it logged while the daemon was down. */
			evaluate(w, t, t->n - 1);
		}
	}
	w->exhausted = !w->array && w->sampling == SAMPLING_GRID &&
		       w->st.drawn >= space_grid_size(w->space);
	sweep_start(w);
	log_info("sweep %s resumed: %lld of %lld trials made, %lld unfinished", row->id,
		 (long long)w->ntrials, (long long)w->max_total, (long long)w->active);
	return 0;
}

int sweeps_resume(struct daemon *d)
{
	int err = store_sweeps_active(d->store, resume_cb, d);

	if (err < 0) {
		log_error("loading the sweeps in progress failed: %s", store_errmsg(d->store));
	}
	return err;
}

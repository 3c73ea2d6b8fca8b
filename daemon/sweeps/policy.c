/* Early termination of a sweep's trials: the policies' text and JSON forms
 * and the rules that say whether one trial stops (policy.h). Pure code over
 * the values the caller hands in; nothing is kept between calls. */
#include "policy.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* printf into a new string. This file links with cJSON and libm alone (the
 * unit test proves it), so it keeps its own helper instead of proto's. */
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

static const char *const names[] = {
	[POLICY_NONE] = "none",
	[POLICY_BANDIT] = "bandit",
	[POLICY_MEDIAN] = "median",
	[POLICY_TRUNCATION] = "truncation",
	[POLICY_ASHA] = "asha",
};

const char *policy_name(enum policy_kind k)
{
	if ((size_t)k >= sizeof(names) / sizeof(names[0])) {
		return "unknown";
	}
	return names[k];
}

/* The keys, which policies take each (a bit per kind) and what they hold. */
enum key_type { KEY_INT, KEY_DOUBLE, KEY_BOOL };

#define KINDS(k) (1u << (k))
#define INTERVAL_KINDS (KINDS(POLICY_BANDIT) | KINDS(POLICY_MEDIAN) | KINDS(POLICY_TRUNCATION))

enum key_id {
	KEY_EVALUATION_INTERVAL,
	KEY_DELAY_EVALUATION,
	KEY_SLACK_FACTOR,
	KEY_SLACK_AMOUNT,
	KEY_TRUNCATION_PERCENTAGE,
	KEY_EXCLUDE_FINISHED_JOBS,
	KEY_REDUCTION_FACTOR,
	KEY_MIN_RESOURCE,
	KEY_COUNT,
};

static const struct key {
	const char *name;
	enum key_type type;
	unsigned kinds;
} keys[KEY_COUNT] = {
	[KEY_EVALUATION_INTERVAL] = { "evaluation_interval", KEY_INT, INTERVAL_KINDS },
	[KEY_DELAY_EVALUATION] = { "delay_evaluation", KEY_INT, INTERVAL_KINDS },
	[KEY_SLACK_FACTOR] = { "slack_factor", KEY_DOUBLE, KINDS(POLICY_BANDIT) },
	[KEY_SLACK_AMOUNT] = { "slack_amount", KEY_DOUBLE, KINDS(POLICY_BANDIT) },
	[KEY_TRUNCATION_PERCENTAGE] = { "truncation_percentage", KEY_DOUBLE, KINDS(POLICY_TRUNCATION) },
	[KEY_EXCLUDE_FINISHED_JOBS] = { "exclude_finished_jobs", KEY_BOOL, KINDS(POLICY_TRUNCATION) },
	[KEY_REDUCTION_FACTOR] = { "reduction_factor", KEY_DOUBLE, KINDS(POLICY_ASHA) },
	[KEY_MIN_RESOURCE] = { "min_resource", KEY_INT, KINDS(POLICY_ASHA) },
};

/* A policy being read: the struct with its defaults and which keys were given. */
struct reading {
	struct policy p;
	unsigned given;
};

static int kind_lookup(const char *name, size_t len, enum policy_kind *ret)
{
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0) {
			*ret = (enum policy_kind)i;
			return 0;
		}
	}
	return -EINVAL;
}

static void reading_init(struct reading *rd, enum policy_kind kind)
{
	rd->p = (struct policy){
		.kind = kind,
		.evaluation_interval = 1,
		.delay_evaluation = 0,
		.slack_factor = NAN,
		.slack_amount = NAN,
		.truncation_percentage = NAN,
		.exclude_finished_jobs = false,
		.reduction_factor = 3,
		.min_resource = 1,
	};
	rd->given = 0;
}

/* Find key name[0..len) for the policy being read: -EINVAL with a message
 * when it is unknown, not one this policy takes, or given twice. */
static int key_lookup(struct reading *rd, const char *name, size_t len, enum key_id *ret,
		      char **cause)
{
	const char *pname = policy_name(rd->p.kind);

	for (int i = 0; i < KEY_COUNT; i++) {
		if (strlen(keys[i].name) != len || memcmp(keys[i].name, name, len) != 0) {
			continue;
		}
		if (!(keys[i].kinds & KINDS(rd->p.kind))) {
			*cause = strdupf("policy '%s' takes no %s", pname, keys[i].name);
			return -EINVAL;
		}
		if (rd->given & (1u << i)) {
			*cause = strdupf("policy '%s': %s is given twice", pname, keys[i].name);
			return -EINVAL;
		}
		rd->given |= 1u << i;
		*ret = (enum key_id)i;
		return 0;
	}
	*cause = strdupf("policy '%s': unknown key '%.*s'", pname, (int)(len > 64 ? 64 : len),
			 name);
	return -EINVAL;
}

/* Store a key's value, checking its range. The numbers arrive as doubles
 * from both forms; an integer key must hold an integer. */
static int key_set(struct reading *rd, enum key_id id, double v, bool b, char **cause)
{
	const char *pname = policy_name(rd->p.kind);
	const char *kname = keys[id].name;

	if (keys[id].type == KEY_BOOL) {
		rd->p.exclude_finished_jobs = b;
		return 0;
	}
	if (!isfinite(v)) {
		*cause = strdupf("policy '%s': %s must be a finite number", pname, kname);
		return -EINVAL;
	}
	if (keys[id].type == KEY_INT && (v != floor(v) || fabs(v) > 9007199254740992.0)) {
		*cause = strdupf("policy '%s': %s must be an integer, got %g", pname, kname, v);
		return -EINVAL;
	}
	switch (id) {
	case KEY_EVALUATION_INTERVAL:
		if (v < 1) {
			*cause = strdupf("policy '%s': %s must be >= 1, got %g", pname, kname, v);
			return -EINVAL;
		}
		rd->p.evaluation_interval = (int64_t)v;
		break;
	case KEY_DELAY_EVALUATION:
		if (v < 0) {
			*cause = strdupf("policy '%s': %s must be >= 0, got %g", pname, kname, v);
			return -EINVAL;
		}
		rd->p.delay_evaluation = (int64_t)v;
		break;
	case KEY_SLACK_FACTOR:
	case KEY_SLACK_AMOUNT:
		if (v <= 0) {
			*cause = strdupf("policy '%s': %s must be > 0, got %g", pname, kname, v);
			return -EINVAL;
		}
		if (id == KEY_SLACK_FACTOR) {
			rd->p.slack_factor = v;
		} else {
			rd->p.slack_amount = v;
		}
		break;
	case KEY_TRUNCATION_PERCENTAGE:
		if (v < 1 || v > 99) {
			*cause = strdupf("policy '%s': %s must be between 1 and 99, got %g", pname,
					 kname, v);
			return -EINVAL;
		}
		rd->p.truncation_percentage = v;
		break;
	case KEY_REDUCTION_FACTOR:
		if (v <= 1) {
			*cause = strdupf("policy '%s': %s must be > 1, got %g", pname, kname, v);
			return -EINVAL;
		}
		rd->p.reduction_factor = v;
		break;
	case KEY_MIN_RESOURCE:
		if (v < 1) {
			*cause = strdupf("policy '%s': %s must be >= 1, got %g", pname, kname, v);
			return -EINVAL;
		}
		rd->p.min_resource = (int64_t)v;
		break;
	default:
		break;
	}
	return 0;
}

/* What must hold once every key is read. */
static int reading_finish(struct reading *rd, struct policy *ret, char **cause)
{
	const char *pname = policy_name(rd->p.kind);
	bool factor = rd->given & (1u << KEY_SLACK_FACTOR);
	bool amount = rd->given & (1u << KEY_SLACK_AMOUNT);

	if (rd->p.kind == POLICY_BANDIT && factor && amount) {
		*cause = strdupf("policy '%s': give slack_factor or slack_amount, not both", pname);
		return -EINVAL;
	}
	if (rd->p.kind == POLICY_BANDIT && !factor && !amount) {
		*cause = strdupf("policy '%s': give slack_factor or slack_amount", pname);
		return -EINVAL;
	}
	if (rd->p.kind == POLICY_TRUNCATION && !(rd->given & (1u << KEY_TRUNCATION_PERCENTAGE))) {
		*cause = strdupf("policy '%s': give truncation_percentage", pname);
		return -EINVAL;
	}
	*ret = rd->p;
	return 0;
}

static const char *trim(const char *s, const char *end, const char **ret_end)
{
	while (s < end && (*s == ' ' || *s == '\t')) {
		s++;
	}
	while (end > s && (end[-1] == ' ' || end[-1] == '\t')) {
		end--;
	}
	*ret_end = end;
	return s;
}

/* One "key=value" of the text form, s[0..end). */
static int parse_pair(struct reading *rd, const char *s, const char *end, char **cause)
{
	const char *pname = policy_name(rd->p.kind);
	const char *eq = memchr(s, '=', (size_t)(end - s));
	const char *k, *kend, *v, *vend;
	enum key_id id;
	char buf[64], *stop;
	double num = NAN;
	bool b = false;
	size_t vlen;
	int r;

	k = trim(s, end, &kend);
	if (k == kend) {
		*cause = strdupf("policy '%s': an empty key=value between commas", pname);
		return -EINVAL;
	}
	if (!eq) {
		*cause = strdupf("policy '%s': '%.*s' has no value (write key=value)", pname,
				 (int)(kend - k > 64 ? 64 : kend - k), k);
		return -EINVAL;
	}
	k = trim(s, eq, &kend);
	v = trim(eq + 1, end, &vend);
	r = key_lookup(rd, k, (size_t)(kend - k), &id, cause);
	if (r < 0) {
		return r;
	}
	vlen = (size_t)(vend - v);
	if (vlen == 0 || vlen >= sizeof(buf)) {
		*cause = strdupf("policy '%s': %s needs a value", pname, keys[id].name);
		return -EINVAL;
	}
	memcpy(buf, v, vlen);
	buf[vlen] = '\0';
	if (keys[id].type == KEY_BOOL) {
		if (strcmp(buf, "true") == 0) {
			b = true;
		} else if (strcmp(buf, "false") != 0) {
			*cause = strdupf("policy '%s': %s is true or false, got '%s'", pname,
					 keys[id].name, buf);
			return -EINVAL;
		}
	} else {
		errno = 0;
		num = strtod(buf, &stop);
		if (stop == buf || *stop != '\0' || errno == ERANGE) {
			*cause = strdupf("policy '%s': %s is not a number: '%s'", pname,
					 keys[id].name, buf);
			return -EINVAL;
		}
	}
	return key_set(rd, id, num, b, cause);
}

int policy_parse(const char *text, struct policy *ret, char **cause)
{
	const char *end, *name, *name_end, *comma;
	enum policy_kind kind;
	struct reading rd;
	int r;

	end = text + strlen(text);
	comma = memchr(text, ',', (size_t)(end - text));
	name = trim(text, comma ? comma : end, &name_end);
	if (kind_lookup(name, (size_t)(name_end - name), &kind) < 0) {
		*cause = strdupf("unknown policy '%.*s' (none, bandit, median, truncation, asha)",
				 (int)(name_end - name > 64 ? 64 : name_end - name), name);
		return -EINVAL;
	}
	reading_init(&rd, kind);
	while (comma) {
		const char *s = comma + 1;

		comma = memchr(s, ',', (size_t)(end - s));
		r = parse_pair(&rd, s, comma ? comma : end, cause);
		if (r < 0) {
			return r;
		}
	}
	return reading_finish(&rd, ret, cause);
}

int policy_from_json(const cJSON *j, struct policy *ret, char **cause)
{
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(j, "name");
	const cJSON *item;
	enum policy_kind kind;
	struct reading rd;
	int r;

	if (!cJSON_IsObject(j)) {
		*cause = strdupf("a policy is an object with a \"name\"");
		return -EINVAL;
	}
	if (!cJSON_IsString(name)) {
		*cause = strdupf("a policy needs a \"name\" (none, bandit, median, truncation, asha)");
		return -EINVAL;
	}
	if (kind_lookup(name->valuestring, strlen(name->valuestring), &kind) < 0) {
		*cause = strdupf("unknown policy '%.64s' (none, bandit, median, truncation, asha)",
				 name->valuestring);
		return -EINVAL;
	}
	reading_init(&rd, kind);
	cJSON_ArrayForEach(item, j) {
		enum key_id id;

		if (!item->string) {
			continue;
		}
		if (strcmp(item->string, "name") == 0) {
			if (item != name) {
				*cause = strdupf("policy '%s': name is given twice", policy_name(kind));
				return -EINVAL;
			}
			continue;
		}
		r = key_lookup(&rd, item->string, strlen(item->string), &id, cause);
		if (r < 0) {
			return r;
		}
		if (keys[id].type == KEY_BOOL ? !cJSON_IsBool(item) : !cJSON_IsNumber(item)) {
			*cause = strdupf("policy '%s': %s must be %s", policy_name(kind),
					 keys[id].name,
					 keys[id].type == KEY_BOOL ? "true or false" : "a number");
			return -EINVAL;
		}
		r = key_set(&rd, id, cJSON_IsNumber(item) ? item->valuedouble : NAN,
			    cJSON_IsTrue(item), cause);
		if (r < 0) {
			return r;
		}
	}
	return reading_finish(&rd, ret, cause);
}

cJSON *policy_json(const struct policy *p)
{
	cJSON *j = cJSON_CreateObject();
	bool ok;

	if (!j) {
		return NULL;
	}
	ok = cJSON_AddStringToObject(j, "name", policy_name(p->kind)) != NULL;
	if (p->kind == POLICY_BANDIT || p->kind == POLICY_MEDIAN || p->kind == POLICY_TRUNCATION) {
		ok = ok && cJSON_AddNumberToObject(j, "evaluation_interval",
						   (double)p->evaluation_interval);
		ok = ok && cJSON_AddNumberToObject(j, "delay_evaluation",
						   (double)p->delay_evaluation);
	}
	if (p->kind == POLICY_BANDIT) {
		if (!isnan(p->slack_factor)) {
			ok = ok && cJSON_AddNumberToObject(j, "slack_factor", p->slack_factor);
		}
		if (!isnan(p->slack_amount)) {
			ok = ok && cJSON_AddNumberToObject(j, "slack_amount", p->slack_amount);
		}
	}
	if (p->kind == POLICY_TRUNCATION) {
		ok = ok && cJSON_AddNumberToObject(j, "truncation_percentage",
						   p->truncation_percentage);
		ok = ok && cJSON_AddBoolToObject(j, "exclude_finished_jobs",
						 p->exclude_finished_jobs);
	}
	if (p->kind == POLICY_ASHA) {
		ok = ok && cJSON_AddNumberToObject(j, "reduction_factor", p->reduction_factor);
		ok = ok && cJSON_AddNumberToObject(j, "min_resource", (double)p->min_resource);
	}
	if (!ok) {
		cJSON_Delete(j);
		return NULL;
	}
	return j;
}

/* Whether a is better than b for the goal. NaN is never better nor worse. */
static bool better(bool maximize, double a, double b)
{
	return maximize ? a > b : a < b;
}

/* The best of v[0..n), NaN when every one is NaN. */
static double best_of(bool maximize, const double *v, size_t n)
{
	double best = NAN;

	for (size_t i = 0; i < n; i++) {
		if (!isnan(v[i]) && (isnan(best) || better(maximize, v[i], best))) {
			best = v[i];
		}
	}
	return best;
}

/* The mean of v[0..n) without its NaNs, NaN when every one is NaN. */
static double mean_of(const double *v, size_t n)
{
	double sum = 0;
	size_t count = 0;

	for (size_t i = 0; i < n; i++) {
		if (!isnan(v[i])) {
			sum += v[i];
			count++;
		}
	}
	return count ? sum / (double)count : NAN;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* What one rule decided: stop (with the sentence and the numbers) or not. */
struct verdict {
	bool stop;
	char *why;
	cJSON *detail;
};

/* Start the detail object with its rule and interval; false when out of memory. */
static bool detail_start(struct verdict *vd, const char *rule, const char *at, int64_t n)
{
	vd->detail = cJSON_CreateObject();
	return vd->detail && cJSON_AddStringToObject(vd->detail, "rule", rule) &&
	       cJSON_AddNumberToObject(vd->detail, at, (double)n);
}

static bool detail_num(struct verdict *vd, const char *name, double v)
{
	/* cJSON writes a non-finite number as null, which is what it is here. */
	return cJSON_AddNumberToObject(vd->detail, name, v) != NULL;
}

/* Bandit: stop when the trial's best so far is further than the slack from
 * the best value any trial had at this interval. */
static int eval_bandit(const struct policy *p, bool maximize, const struct policy_trial *trials,
		       size_t ntrials, size_t self, struct verdict *vd)
{
	const struct policy_trial *me = &trials[self];
	size_t n = me->n, compared = 0;
	double best_ref = NAN, self_best, threshold, slack;
	bool factor = !isnan(p->slack_factor);
	long long at = (long long)n;

	for (size_t i = 0; i < ntrials; i++) {
		double v;

		if (trials[i].n < n) {
			continue;
		}
		v = trials[i].values[n - 1];
		if (isnan(v)) {
			continue;
		}
		compared++;
		if (isnan(best_ref) || better(maximize, v, best_ref)) {
			best_ref = v;
		}
	}
	self_best = best_of(maximize, me->values, n);
	if (isnan(best_ref) || isnan(self_best)) {
		return 0;
	}
	slack = factor ? p->slack_factor : p->slack_amount;
	if (maximize) {
		threshold = factor ? best_ref / (1 + slack) : best_ref - slack;
	} else {
		threshold = factor ? best_ref * (1 + slack) : best_ref + slack;
	}
	if (!better(maximize, threshold, self_best)) {
		return 0;
	}
	vd->stop = true;
	if (maximize && factor) {
		vd->why = strdupf("bandit: %g < %g/(1+%g) = %g at interval %lld", self_best,
				  best_ref, slack, threshold, at);
	} else if (maximize) {
		vd->why = strdupf("bandit: %g < %g-%g = %g at interval %lld", self_best, best_ref,
				  slack, threshold, at);
	} else if (factor) {
		vd->why = strdupf("bandit: %g > %g*(1+%g) = %g at interval %lld", self_best,
				  best_ref, slack, threshold, at);
	} else {
		vd->why = strdupf("bandit: %g > %g+%g = %g at interval %lld", self_best, best_ref,
				  slack, threshold, at);
	}
	if (!vd->why || !detail_start(vd, "bandit", "interval", (int64_t)n) ||
	    !detail_num(vd, "value", self_best) || !detail_num(vd, "best", best_ref) ||
	    !detail_num(vd, factor ? "slack_factor" : "slack_amount", slack) ||
	    !detail_num(vd, "threshold", threshold) || !detail_num(vd, "compared", (double)compared)) {
		return -ENOMEM;
	}
	return 0;
}

/* Median stopping: stop when the trial's best so far is worse than the
 * median of the other trials' running averages over the same intervals. */
static int eval_median(const struct policy *p, bool maximize, const struct policy_trial *trials,
		       size_t ntrials, size_t self, struct verdict *vd)
{
	const struct policy_trial *me = &trials[self];
	size_t n = me->n, count = 0;
	double *avgs = NULL, median, self_best;
	int r = 0;

	self_best = best_of(maximize, me->values, n);
	if (isnan(self_best)) {
		goto out;
	}
	avgs = malloc((ntrials ? ntrials : 1) * sizeof(*avgs));
	if (!avgs) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < ntrials; i++) {
		double a;

		if (i == self || trials[i].n < n) {
			continue;
		}
		a = mean_of(trials[i].values, n);
		if (!isnan(a)) {
			avgs[count++] = a;
		}
	}
	if (count == 0) {
		goto out;
	}
	qsort(avgs, count, sizeof(*avgs), cmp_double);
	median = count % 2 ? avgs[count / 2] : (avgs[count / 2 - 1] + avgs[count / 2]) / 2;
	if (!better(maximize, median, self_best)) {
		goto out;
	}
	vd->stop = true;
	vd->why = strdupf("median: %g %c median %g of %d running averages at interval %lld",
			  self_best, maximize ? '<' : '>', median, (int)count, (long long)n);
	if (!vd->why || !detail_start(vd, "median", "interval", (int64_t)n) ||
	    !detail_num(vd, "value", self_best) || !detail_num(vd, "median", median) ||
	    !detail_num(vd, "compared", (double)count)) {
		r = -ENOMEM;
	}
out:
	free(avgs);
	return r;
}

/* Truncation selection: stop when the trial's value at this interval is
 * among the worst truncation_percentage of the trials that reached it. A
 * NaN value takes no part: it cannot be ranked against the others. */
static int eval_truncation(const struct policy *p, bool maximize,
			   const struct policy_trial *trials, size_t ntrials, size_t self,
			   struct verdict *vd)
{
	const struct policy_trial *me = &trials[self];
	size_t n = me->n;
	double mine = me->values[n - 1];
	long long count = 0, cut, ahead = 0;

	if (isnan(mine)) {
		return 0;
	}
	for (size_t i = 0; i < ntrials; i++) {
		double v;

		if (trials[i].n < n || (i != self && p->exclude_finished_jobs && trials[i].finished)) {
			continue;
		}
		v = trials[i].values[n - 1];
		if (isnan(v)) {
			continue;
		}
		count++;
		if (better(maximize, v, mine)) {
			ahead++;
		}
	}
	cut = (long long)floor((double)count * p->truncation_percentage / 100);
	if (cut <= 0 || ahead < count - cut) {
		return 0;
	}
	vd->stop = true;
	vd->why = strdupf("truncation: %g is in the %s %g%% (%lld of %lld) at interval %lld", mine,
			  maximize ? "lowest" : "highest", p->truncation_percentage, cut, count,
			  (long long)n);
	if (!vd->why || !detail_start(vd, "truncation", "interval", (int64_t)n) ||
	    !detail_num(vd, "value", mine) ||
	    !detail_num(vd, "truncation_percentage", p->truncation_percentage) ||
	    !detail_num(vd, "better", (double)ahead) || !detail_num(vd, "cut", (double)cut) ||
	    !detail_num(vd, "compared", (double)count)) {
		return -ENOMEM;
	}
	return 0;
}

/* Whether n is a rung: floor(min_resource * eta^j) for some j >= 0. The
 * reduction factor is usually written in decimal (1.2) and is then not
 * exact in binary, so a product a hair under an integer (5 * 1.2) counts as
 * that integer. */
static bool is_rung(const struct policy *p, size_t n)
{
	for (int j = 0; j < 4096; j++) {
		double x = (double)p->min_resource * pow(p->reduction_factor, j);
		double rung = floor(x * (1 + 1e-12));

		if (rung == (double)n) {
			return true;
		}
		if (rung > (double)n || !isfinite(rung)) {
			return false;
		}
	}
	return false;
}

/* Better first, for the rung's ranking. */
static int cmp_desc(const void *a, const void *b)
{
	return cmp_double(b, a);
}

/* ASHA: at a rung, the trial goes on only when its value is among the best
 * 1/eta of the values every trial had at that rung (the promotable index
 * exactly as Optuna's SuccessiveHalvingPruner computes it). */
static int eval_asha(const struct policy *p, bool maximize, const struct policy_trial *trials,
		     size_t ntrials, size_t self, struct verdict *vd)
{
	const struct policy_trial *me = &trials[self];
	size_t n = me->n, count = 0;
	double mine = me->values[n - 1], *vals = NULL, needed;
	long long promotable;
	int r = 0;

	if (isnan(mine) || !is_rung(p, n)) {
		goto out;
	}
	vals = malloc((ntrials ? ntrials : 1) * sizeof(*vals));
	if (!vals) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < ntrials; i++) {
		if (trials[i].n >= n && !isnan(trials[i].values[n - 1])) {
			vals[count++] = trials[i].values[n - 1];
		}
	}
	qsort(vals, count, sizeof(*vals), maximize ? cmp_desc : cmp_double);
	promotable = (long long)floor((double)count / p->reduction_factor) - 1;
	if (promotable < 0) {
		promotable = 0;
	}
	needed = vals[promotable];
	if (!better(maximize, needed, mine)) {
		goto out;
	}
	vd->stop = true;
	vd->why = strdupf("asha: %g is not in the top 1/%g (%g needed) at rung %lld", mine,
			  p->reduction_factor, needed, (long long)n);
	if (!vd->why || !detail_start(vd, "asha", "rung", (int64_t)n) ||
	    !detail_num(vd, "value", mine) || !detail_num(vd, "needed", needed) ||
	    !detail_num(vd, "reduction_factor", p->reduction_factor) ||
	    !detail_num(vd, "rank", (double)promotable + 1) ||
	    !detail_num(vd, "compared", (double)count)) {
		r = -ENOMEM;
	}
out:
	free(vals);
	return r;
}

int policy_evaluate(const struct policy *p, bool maximize, const struct policy_trial *trials,
		    size_t ntrials, size_t self, char **why, cJSON **detail)
{
	struct verdict vd = { 0 };
	int64_t n;
	int r = 0;

	if (self >= ntrials) {
		return -EINVAL;
	}
	n = (int64_t)trials[self].n;
	if (n == 0 || p->kind == POLICY_NONE) {
		return 0;
	}
	if (p->kind != POLICY_ASHA &&
	    (p->evaluation_interval < 1 || n % p->evaluation_interval != 0 ||
	     n < p->delay_evaluation)) {
		return 0;
	}
	switch (p->kind) {
	case POLICY_BANDIT:
		r = eval_bandit(p, maximize, trials, ntrials, self, &vd);
		break;
	case POLICY_MEDIAN:
		r = eval_median(p, maximize, trials, ntrials, self, &vd);
		break;
	case POLICY_TRUNCATION:
		r = eval_truncation(p, maximize, trials, ntrials, self, &vd);
		break;
	case POLICY_ASHA:
		r = eval_asha(p, maximize, trials, ntrials, self, &vd);
		break;
	default:
		break;
	}
	if (r < 0 || !vd.stop) {
		goto out;
	}
	*why = vd.why;
	vd.why = NULL;
	if (detail) {
		*detail = vd.detail;
		vd.detail = NULL;
	}
	r = 1;
out:
	free(vd.why);
	cJSON_Delete(vd.detail);
	return r;
}

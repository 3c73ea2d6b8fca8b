/* A sweep's search space and its samplers (space.h): the parser of
 * HyperDrive's parameter expressions, the generator (xoshiro256**), and the
 * random, grid and bayesian (TPE) draws. Pure code: every draw depends only
 * on the space, the sampler's state and the observations handed in. */
#include "space.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_BYTES 255

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

static const char *const sampling_names[] = {
	[SAMPLING_RANDOM] = "random",
	[SAMPLING_GRID] = "grid",
	[SAMPLING_BAYESIAN] = "bayesian",
};

int sampling_parse(const char *name, enum sampling *ret)
{
	for (size_t i = 0; i < sizeof(sampling_names) / sizeof(sampling_names[0]); i++) {
		if (name && strcmp(name, sampling_names[i]) == 0) {
			*ret = (enum sampling)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *sampling_name(enum sampling s)
{
	if ((size_t)s >= sizeof(sampling_names) / sizeof(sampling_names[0])) {
		return "unknown";
	}
	return sampling_names[s];
}

/* The functions an expression may call: the kind, its argument count and
 * the arguments' names for messages. */
static const struct function {
	const char *name;
	enum space_kind kind;
	int nargs; /* -1: one or more (choice) */
	const char *args;
} functions[] = {
	{ "choice", SPACE_CHOICE, -1, "" },
	{ "randint", SPACE_RANDINT, 1, "upper" },
	{ "uniform", SPACE_UNIFORM, 2, "lo, hi" },
	{ "loguniform", SPACE_LOGUNIFORM, 2, "lo, hi" },
	{ "normal", SPACE_NORMAL, 2, "mu, sigma" },
	{ "lognormal", SPACE_LOGNORMAL, 2, "mu, sigma" },
	{ "quniform", SPACE_QUNIFORM, 3, "lo, hi, q" },
	{ "qloguniform", SPACE_QLOGUNIFORM, 3, "lo, hi, q" },
	{ "qnormal", SPACE_QNORMAL, 3, "mu, sigma, q" },
	{ "qlognormal", SPACE_QLOGNORMAL, 3, "mu, sigma, q" },
};
#define NFUNCTIONS (sizeof(functions) / sizeof(functions[0]))

static const struct function *function_of(enum space_kind kind)
{
	for (size_t i = 0; i < NFUNCTIONS; i++) {
		if (functions[i].kind == kind) {
			return &functions[i];
		}
	}
	return &functions[0];
}

/* The scanner over one expression's text. */
struct scan {
	const char *p;
	const char *name; /* the parameter, for messages */
	char **cause;
};

static void skip_ws(struct scan *sc)
{
	while (*sc->p == ' ' || *sc->p == '\t' || *sc->p == '\n' || *sc->p == '\r') {
		sc->p++;
	}
}

static bool is_word(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_';
}

/* A quoted string at sc->p ('x' or "x", a backslash takes the next byte as
 * it is) as a new cJSON string. */
static int scan_string(struct scan *sc, cJSON **ret)
{
	char quote = *sc->p++;
	const char *start = sc->p;
	char *buf, *w;
	cJSON *item;

	/* The text is at most SPACE_EXPR_MAX bytes, so the copy is bounded. */
	buf = malloc(strlen(start) + 1);
	if (!buf) {
		return -ENOMEM;
	}
	w = buf;
	while (*sc->p && *sc->p != quote) {
		if (*sc->p == '\\' && sc->p[1]) {
			sc->p++;
		}
		*w++ = *sc->p++;
	}
	*w = '\0';
	if (*sc->p != quote) {
		free(buf);
		*sc->cause = strdupf("parameter '%s': a string is not closed (%c missing)",
				     sc->name, quote);
		return -EINVAL;
	}
	sc->p++;
	item = cJSON_CreateString(buf);
	free(buf);
	if (!item) {
		return -ENOMEM;
	}
	*ret = item;
	return 0;
}

/* A number at sc->p: decimal digits, a point, an exponent, a sign. Words
 * such as inf or nan are refused, and so is anything not finite. */
static int scan_number(struct scan *sc, double *ret)
{
	const char *start = sc->p, *end = sc->p;
	char buf[128], *stop;
	size_t len;
	double v;

	while (*end && strchr("0123456789+-.eE", *end)) {
		end++;
	}
	len = (size_t)(end - start);
	if (*start == '\0') {
		*sc->cause = strdupf("parameter '%s': the expression ends before its ')'", sc->name);
		return -EINVAL;
	}
	if (len == 0 || len >= sizeof(buf) || is_word(*end)) {
		while (is_word(*end)) {
			end++;
		}
		len = (size_t)(end - start);
		*sc->cause = strdupf("parameter '%s': '%.*s' is neither a number nor a quoted "
				     "string ('x' or \"x\")",
				     sc->name, (int)(len ? (len > 64 ? 64 : len) : 1), start);
		return -EINVAL;
	}
	memcpy(buf, start, len);
	buf[len] = '\0';
	errno = 0;
	v = strtod(buf, &stop);
	if (*stop != '\0' || stop == buf) {
		*sc->cause = strdupf("parameter '%s': '%s' is not a number", sc->name, buf);
		return -EINVAL;
	}
	if (!isfinite(v) || errno == ERANGE) {
		*sc->cause = strdupf("parameter '%s': '%s' is not a finite number", sc->name, buf);
		return -EINVAL;
	}
	sc->p = end;
	*ret = v;
	return 0;
}

/* The checks of each kind's arguments, once they are read. */
static int check_args(const struct scan *sc, struct space_param *prm)
{
	const char *fn = function_of(prm->kind)->name;

	switch (prm->kind) {
	case SPACE_CHOICE:
		return 0;
	case SPACE_RANDINT:
		if (prm->a < 1 || prm->a != floor(prm->a) || prm->a > 9007199254740992.0) {
			*sc->cause = strdupf("parameter '%s': randint takes an integer upper >= 1, "
					     "got %g", sc->name, prm->a);
			return -EINVAL;
		}
		return 0;
	case SPACE_UNIFORM:
	case SPACE_QUNIFORM:
	case SPACE_LOGUNIFORM:
	case SPACE_QLOGUNIFORM:
		if (!(prm->a < prm->b) || !isfinite(prm->b - prm->a)) {
			*sc->cause = strdupf("parameter '%s': %s needs lo < hi, got %g and %g",
					     sc->name, fn, prm->a, prm->b);
			return -EINVAL;
		}
		/* The bounds of the log forms are logarithms: the values are exp() of them. */
		if ((prm->kind == SPACE_LOGUNIFORM || prm->kind == SPACE_QLOGUNIFORM) &&
		    (!isfinite(exp(prm->b)) || exp(prm->a) == 0)) {
			double bad = isfinite(exp(prm->b)) ? prm->a : prm->b;

			*sc->cause = strdupf("parameter '%s': %s draws exp(uniform(lo, hi)), so its "
					     "bounds are logarithms, and exp(%g) is %s", sc->name, fn,
					     bad, bad == prm->b ? "too large" : "0");
			return -EINVAL;
		}
		break;
	case SPACE_NORMAL:
	case SPACE_LOGNORMAL:
	case SPACE_QNORMAL:
	case SPACE_QLOGNORMAL:
		if (!(prm->b > 0)) {
			*sc->cause = strdupf("parameter '%s': %s needs sigma > 0, got %g", sc->name,
					     fn, prm->b);
			return -EINVAL;
		}
		break;
	}
	if (function_of(prm->kind)->nargs == 3 && !(prm->q > 0)) {
		*sc->cause = strdupf("parameter '%s': %s needs q > 0, got %g", sc->name, fn, prm->q);
		return -EINVAL;
	}
	return 0;
}

/* Parse "fn(arg, ...)" into prm (its name already set). */
static int parse_expr(struct scan *sc, struct space_param *prm)
{
	const struct function *fn = NULL;
	const char *start;
	double nums[3];
	int nargs = 0, r = 0;
	bool strings = false;
	cJSON *choices = NULL;

	skip_ws(sc);
	start = sc->p;
	while (is_word(*sc->p)) {
		sc->p++;
	}
	for (size_t i = 0; i < NFUNCTIONS; i++) {
		if (strlen(functions[i].name) == (size_t)(sc->p - start) &&
		    memcmp(functions[i].name, start, (size_t)(sc->p - start)) == 0) {
			fn = &functions[i];
		}
	}
	if (!fn) {
		if (sc->p == start) {
			*sc->cause = strdupf("parameter '%s': expected a function such as "
					     "uniform(0, 1)", sc->name);
		} else {
			*sc->cause = strdupf("parameter '%s': unknown function '%.*s' (choice, "
					     "randint, uniform, loguniform, normal, lognormal, "
					     "quniform, qloguniform, qnormal, qlognormal)",
					     sc->name, (int)(sc->p - start > 64 ? 64 : sc->p - start),
					     start);
		}
		r = -EINVAL;
		goto out;
	}
	prm->kind = fn->kind;
	skip_ws(sc);
	if (*sc->p != '(') {
		*sc->cause = strdupf("parameter '%s': expected '(' after %s", sc->name, fn->name);
		r = -EINVAL;
		goto out;
	}
	sc->p++;
	if (fn->kind == SPACE_CHOICE) {
		choices = cJSON_CreateArray();
		if (!choices) {
			r = -ENOMEM;
			goto out;
		}
	}
	skip_ws(sc);
	if (*sc->p == ')') {
		sc->p++;
	} else {
		for (;;) {
			cJSON *item = NULL;
			double v = 0;

			skip_ws(sc);
			if (*sc->p == '\'' || *sc->p == '"') {
				r = scan_string(sc, &item);
				strings = true;
			} else {
				r = scan_number(sc, &v);
				if (r == 0 && choices) {
					item = cJSON_CreateNumber(v);
					r = item ? 0 : -ENOMEM;
				}
			}
			if (r < 0) {
				goto out;
			}
			nargs++;
			if (choices) {
				if (nargs > SPACE_CHOICES_MAX) {
					cJSON_Delete(item);
					*sc->cause = strdupf("parameter '%s': choice takes at most "
							     "%d values", sc->name, SPACE_CHOICES_MAX);
					r = -EINVAL;
					goto out;
				}
				cJSON_AddItemToArray(choices, item);
			} else {
				cJSON_Delete(item);
				if (nargs <= 3) {
					nums[nargs - 1] = v;
				}
			}
			skip_ws(sc);
			if (*sc->p == ',') {
				sc->p++;
				continue;
			}
			if (*sc->p == ')') {
				sc->p++;
				break;
			}
			*sc->cause = strdupf("parameter '%s': expected ',' or ')' in %s(...)",
					     sc->name, fn->name);
			r = -EINVAL;
			goto out;
		}
	}
	skip_ws(sc);
	if (*sc->p) {
		*sc->cause = strdupf("parameter '%s': unexpected text after %s(...)", sc->name,
				     fn->name);
		r = -EINVAL;
		goto out;
	}
	if (fn->kind == SPACE_CHOICE) {
		if (nargs == 0) {
			*sc->cause = strdupf("parameter '%s': choice needs at least one value",
					     sc->name);
			r = -EINVAL;
			goto out;
		}
		prm->choices = choices;
		choices = NULL;
		goto out;
	}
	if (nargs != fn->nargs) {
		*sc->cause = strdupf("parameter '%s': %s takes %d argument%s (%s), got %d",
				     sc->name, fn->name, fn->nargs, fn->nargs == 1 ? "" : "s",
				     fn->args, nargs);
		r = -EINVAL;
		goto out;
	}
	if (strings) {
		*sc->cause = strdupf("parameter '%s': %s takes numbers, not strings", sc->name,
				     fn->name);
		r = -EINVAL;
		goto out;
	}
	prm->a = nums[0];
	prm->b = fn->nargs > 1 ? nums[1] : 0;
	prm->q = fn->nargs > 2 ? nums[2] : 0;
	r = check_args(sc, prm);
out:
	cJSON_Delete(choices);
	return r;
}

static int check_name(const char *name, char **cause)
{
	size_t len = name ? strlen(name) : 0;

	if (len == 0) {
		*cause = strdupf("a parameter has an empty name");
		return -EINVAL;
	}
	if (len > NAME_MAX_BYTES) {
		*cause = strdupf("parameter '%.32s...': the name is longer than %d bytes", name,
				 NAME_MAX_BYTES);
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c < 0x20 || c == 0x7f) {
			*cause = strdupf("a parameter's name holds a control character (byte %zu)",
					 i);
			return -EINVAL;
		}
	}
	return 0;
}

void space_free(struct space *sp)
{
	if (!sp) {
		return;
	}
	for (size_t i = 0; i < sp->n; i++) {
		free(sp->params[i].name);
		cJSON_Delete(sp->params[i].choices);
	}
	free(sp->params);
	free(sp);
}

int space_parse(const cJSON *params, struct space **ret, char **cause)
{
	struct space *sp = NULL;
	const cJSON *item;
	int count = 0, r = 0;

	if (!cJSON_IsObject(params)) {
		*cause = strdupf("the parameters are an object {name: expression}");
		return -EINVAL;
	}
	cJSON_ArrayForEach(item, params) {
		count++;
	}
	if (count == 0) {
		*cause = strdupf("the search space has no parameters");
		return -EINVAL;
	}
	if (count > SPACE_PARAMS_MAX) {
		*cause = strdupf("the search space has %d parameters, at most %d", count,
				 SPACE_PARAMS_MAX);
		return -EINVAL;
	}
	sp = calloc(1, sizeof(*sp));
	if (!sp) {
		return -ENOMEM;
	}
	sp->params = calloc((size_t)count, sizeof(*sp->params));
	if (!sp->params) {
		r = -ENOMEM;
		goto out;
	}
	cJSON_ArrayForEach(item, params) {
		struct space_param *prm = &sp->params[sp->n];
		struct scan sc = { .name = item->string, .cause = cause };

		r = check_name(item->string, cause);
		if (r < 0) {
			goto out;
		}
		for (size_t i = 0; i < sp->n; i++) {
			if (strcmp(sp->params[i].name, item->string) == 0) {
				*cause = strdupf("parameter '%s' is given twice", item->string);
				r = -EINVAL;
				goto out;
			}
		}
		if (!cJSON_IsString(item)) {
			*cause = strdupf("parameter '%s': expected an expression such as "
					 "\"uniform(0, 1)\"", item->string);
			r = -EINVAL;
			goto out;
		}
		if (strlen(item->valuestring) > SPACE_EXPR_MAX) {
			*cause = strdupf("parameter '%s': the expression is longer than %d bytes",
					 item->string, SPACE_EXPR_MAX);
			r = -EINVAL;
			goto out;
		}
		prm->name = strdup(item->string);
		if (!prm->name) {
			r = -ENOMEM;
			goto out;
		}
		sp->n++;
		sc.p = item->valuestring;
		r = parse_expr(&sc, prm);
		if (r < 0) {
			goto out;
		}
	}
	*ret = sp;
	sp = NULL;
out:
	space_free(sp);
	return r;
}

int space_check(const struct space *sp, enum sampling s, char **cause)
{
	for (size_t i = 0; i < sp->n; i++) {
		enum space_kind k = sp->params[i].kind;

		if (s == SAMPLING_GRID && k != SPACE_CHOICE) {
			*cause = strdupf("parameter '%s': grid sampling takes only choice(), not %s",
					 sp->params[i].name, function_of(k)->name);
			return -EINVAL;
		}
		if (s == SAMPLING_BAYESIAN && k != SPACE_CHOICE && k != SPACE_UNIFORM &&
		    k != SPACE_QUNIFORM) {
			*cause = strdupf("parameter '%s': bayesian sampling takes only choice, "
					 "uniform and quniform, not %s",
					 sp->params[i].name, function_of(k)->name);
			return -EINVAL;
		}
	}
	return 0;
}

/* Grid cannot enumerate a parameter that is not a choice: such a space has
 * no configurations to count, so the size is 0. */
int64_t space_grid_size(const struct space *sp)
{
	int64_t size = 1;

	for (size_t i = 0; i < sp->n; i++) {
		int64_t len;

		if (sp->params[i].kind != SPACE_CHOICE) {
			return 0;
		}
		len = cJSON_GetArraySize(sp->params[i].choices);
		if (len == 0) {
			return 0;
		}
		if (size > INT64_MAX / len) {
			size = INT64_MAX;
		} else if (size != INT64_MAX) {
			size *= len;
		}
	}
	return size;
}

char *space_value_text(const cJSON *v)
{
	char buf[64];

	if (cJSON_IsString(v)) {
		return strdup(v->valuestring);
	}
	if (cJSON_IsNumber(v)) {
		double d = v->valuedouble;

		if (!isfinite(d)) {
			return strdup(isnan(d) ? "nan" : d > 0 ? "inf" : "-inf");
		}
		/* %.17g always reads back; the shorter forms are tried first. */
		for (int prec = 15; prec <= 17; prec++) {
			snprintf(buf, sizeof(buf), "%.*g", prec, d);
			if (strtod(buf, NULL) == d) {
				break;
			}
		}
		return strdup(buf);
	}
	if (cJSON_IsBool(v)) {
		return strdup(cJSON_IsTrue(v) ? "true" : "false");
	}
	return cJSON_PrintUnformatted(v);
}

/* The generator: xoshiro256** seeded through splitmix64, both as their
 * authors publish them (prng.di.unimi.it). */
static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(uint64_t s[4])
{
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

/* Uniform in [0, 1) from the top 53 bits. */
static double rng_uniform(uint64_t s[4])
{
	return (double)(rng_next(s) >> 11) * 0x1.0p-53;
}

/* A standard normal by Box-Muller; u1 in (0, 1] so its log is finite. */
static double rng_normal(uint64_t s[4])
{
	double u1 = 1.0 - rng_uniform(s);
	double u2 = rng_uniform(s);

	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* An index in [0, n). */
static size_t rng_index(uint64_t s[4], size_t n)
{
	size_t i = (size_t)floor(rng_uniform(s) * (double)n);

	return i < n ? i : n - 1;
}

void sampler_seed(struct sampler_state *st, uint64_t seed)
{
	for (int i = 0; i < 4; i++) {
		st->rng[i] = splitmix64(&seed);
	}
	st->drawn = 0;
}

cJSON *sampler_state_json(const struct sampler_state *st)
{
	cJSON *j = cJSON_CreateObject(), *rng;
	char hex[17];

	if (!j) {
		return NULL;
	}
	rng = cJSON_AddArrayToObject(j, "rng");
	if (!rng) {
		goto fail;
	}
	for (int i = 0; i < 4; i++) {
		cJSON *s;

		snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)st->rng[i]);
		s = cJSON_CreateString(hex);
		if (!s) {
			goto fail;
		}
		cJSON_AddItemToArray(rng, s);
	}
	if (!cJSON_AddNumberToObject(j, "drawn", (double)st->drawn)) {
		goto fail;
	}
	return j;
fail:
	cJSON_Delete(j);
	return NULL;
}

int sampler_state_parse(const cJSON *j, struct sampler_state *ret)
{
	const cJSON *rng = cJSON_GetObjectItemCaseSensitive(j, "rng");
	const cJSON *drawn = cJSON_GetObjectItemCaseSensitive(j, "drawn");
	struct sampler_state st;
	const cJSON *item;
	int i = 0;

	if (!cJSON_IsObject(j) || !cJSON_IsArray(rng) || cJSON_GetArraySize(rng) != 4 ||
	    !cJSON_IsNumber(drawn)) {
		return -EINVAL;
	}
	if (drawn->valuedouble < 0 || drawn->valuedouble != floor(drawn->valuedouble) ||
	    drawn->valuedouble > 9007199254740992.0) {
		return -EINVAL;
	}
	cJSON_ArrayForEach(item, rng) {
		const char *s = cJSON_GetStringValue(item);
		uint64_t v = 0;

		if (!s || strlen(s) != 16) {
			return -EINVAL;
		}
		for (int k = 0; k < 16; k++) {
			char c = s[k];

			if (c >= '0' && c <= '9') {
				v = v << 4 | (uint64_t)(c - '0');
			} else if (c >= 'a' && c <= 'f') {
				v = v << 4 | (uint64_t)(c - 'a' + 10);
			} else {
				return -EINVAL;
			}
		}
		st.rng[i++] = v;
	}
	/* An all-zero state is the one xoshiro never leaves. */
	if ((st.rng[0] | st.rng[1] | st.rng[2] | st.rng[3]) == 0) {
		return -EINVAL;
	}
	st.drawn = (int64_t)drawn->valuedouble;
	*ret = st;
	return 0;
}

/* round(x / q) * q. When q is the reciprocal of an integer (0.1, 0.25) the
 * value is made as k / (1/q), which lands on the double nearest the decimal
 * (0.3, not 0.30000000000000004), so the command line reads as written. */
static double qround(double x, double q)
{
	double k = round(x / q), inv = 1.0 / q, inv_int = round(inv);

	if (inv_int >= 1 && fabs(inv - inv_int) < 1e-9 * inv_int) {
		return k / inv_int;
	}
	return k * q;
}

/* One value of prm drawn from its distribution. */
static cJSON *draw_random(const struct space_param *prm, uint64_t s[4])
{
	double u, x;

	switch (prm->kind) {
	case SPACE_CHOICE: {
		size_t n = (size_t)cJSON_GetArraySize(prm->choices);

		return cJSON_Duplicate(cJSON_GetArrayItem(prm->choices, (int)rng_index(s, n)), true);
	}
	case SPACE_RANDINT:
		return cJSON_CreateNumber(floor(rng_uniform(s) * prm->a));
	case SPACE_UNIFORM:
	case SPACE_LOGUNIFORM:
	case SPACE_QUNIFORM:
	case SPACE_QLOGUNIFORM:
		u = rng_uniform(s);
		x = prm->a + u * (prm->b - prm->a);
		break;
	case SPACE_NORMAL:
	case SPACE_LOGNORMAL:
	case SPACE_QNORMAL:
	case SPACE_QLOGNORMAL:
	default:
		x = prm->a + prm->b * rng_normal(s);
		break;
	}
	if (prm->kind == SPACE_LOGUNIFORM || prm->kind == SPACE_QLOGUNIFORM ||
	    prm->kind == SPACE_LOGNORMAL || prm->kind == SPACE_QLOGNORMAL) {
		x = exp(x);
	}
	if (function_of(prm->kind)->nargs == 3) {
		x = qround(x, prm->q);
	}
	return cJSON_CreateNumber(x);
}

static int config_add(cJSON *config, const char *name, cJSON *v)
{
	if (!v) {
		return -ENOMEM;
	}
	if (!cJSON_AddItemToObject(config, name, v)) {
		cJSON_Delete(v);
		return -ENOMEM;
	}
	return 0;
}

static int next_random(const struct space *sp, struct sampler_state *st, cJSON *config)
{
	for (size_t i = 0; i < sp->n; i++) {
		int r = config_add(config, sp->params[i].name, draw_random(&sp->params[i], st->rng));

		if (r < 0) {
			return r;
		}
	}
	return 0;
}

static int next_grid(const struct space *sp, struct sampler_state *st, cJSON *config)
{
	int64_t size = space_grid_size(sp), index = st->drawn;
	int idx[SPACE_PARAMS_MAX];

	if (size == 0 || sp->n > SPACE_PARAMS_MAX) {
		return -EINVAL;
	}
	if (st->drawn < 0 || st->drawn >= size) {
		return -ENOENT;
	}
	/* Row-major: the last parameter is the fastest digit. */
	for (size_t i = sp->n; i-- > 0;) {
		int64_t len = cJSON_GetArraySize(sp->params[i].choices);

		idx[i] = (int)(index % len);
		index /= len;
	}
	for (size_t i = 0; i < sp->n; i++) {
		const cJSON *v = cJSON_GetArrayItem(sp->params[i].choices, idx[i]);
		int r = config_add(config, sp->params[i].name, cJSON_Duplicate(v, true));

		if (r < 0) {
			return r;
		}
	}
	return 0;
}

/* ---- Bayesian: a tree-structured Parzen estimator ----
 *
 * Why TPE: a sweep's trials are expensive and arrive one at a time, and the
 * spaces mix categorical and continuous parameters. A Gaussian process would
 * need a matrix solve over every observation and a kernel for categories;
 * TPE (Bergstra et al. 2011, as Optuna's TPESampler does it) instead models
 * p(x | good) and p(x | bad) per parameter, which is cheap, handles choices
 * naturally, and needs no tuning beyond a few constants.
 *
 * Why the split at the best quarter (gamma = ceil(n/4)): the good set must
 * be small enough to say where the optimum is, yet hold at least one point.
 * Why a candidate maximising l(x)/g(x): under TPE's model that ratio is
 * proportional to the expected improvement, so the sampler goes where good
 * trials are dense and bad ones sparse. Why draw candidates from l: it is
 * where the ratio is likely high, and 24 of them (Optuna's default) are
 * enough to find a good one without over-exploiting l's modes.
 *
 * Why each observation's bandwidth is the distance to its neighbours: dense
 * regions get narrow kernels (sharp where the data is sure), isolated points
 * wide ones; the clip to [(hi-lo)/100, hi-lo] keeps a kernel from collapsing
 * onto one point or spilling far beyond the range. Why a prior component
 * (centred, sigma hi-lo) in each mixture: with few observations it keeps
 * some mass everywhere, so the sampler still explores and g never vanishes.
 * Why +1 per category: the same prior for choices, so an unseen value keeps
 * a chance.
 *
 * Why parameters are independent: the simplest TPE, as Optuna's default
 * (multivariate=False); it ignores interactions but needs far fewer trials.
 * Why the first SAMPLER_STARTUP draws are random: the model is meaningless
 * until it has seen a spread of scores; random draws give it one. Every
 * random number comes from st->rng, so a restart from the stored state
 * draws the same configuration. */

#define TPE_CANDIDATES 24

/* A Parzen estimator on [lo, hi]: equal-weight Gaussians, each truncated to
 * the range. */
struct parzen {
	size_t n;
	double *mu, *sigma, *logz; /* logz: log of the mass each has inside [lo, hi] */
	double lo, hi;
};

static void parzen_finish(struct parzen *pz)
{
	free(pz->mu);
	free(pz->sigma);
	free(pz->logz);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double phi(double z)
{
	return 0.5 * erfc(-z / M_SQRT2);
}

/* Build the estimator from the observed points v[0..nv) (sorted here) and the prior. */
static int parzen_init(struct parzen *pz, double *v, size_t nv, double lo, double hi)
{
	double range = hi - lo;

	*pz = (struct parzen){ .n = nv + 1, .lo = lo, .hi = hi };
	pz->mu = malloc(pz->n * sizeof(double));
	pz->sigma = malloc(pz->n * sizeof(double));
	pz->logz = malloc(pz->n * sizeof(double));
	if (!pz->mu || !pz->sigma || !pz->logz) {
		parzen_finish(pz);
		return -ENOMEM;
	}
	qsort(v, nv, sizeof(*v), cmp_double);
	for (size_t i = 0; i < nv; i++) {
		double left = v[i] - (i > 0 ? v[i - 1] : lo);
		double right = (i + 1 < nv ? v[i + 1] : hi) - v[i];
		double s = fmax(left, right);

		pz->mu[i] = v[i];
		pz->sigma[i] = fmin(fmax(s, range / 100), range);
	}
	pz->mu[nv] = (lo + hi) / 2;
	pz->sigma[nv] = range;
	for (size_t i = 0; i < pz->n; i++) {
		double z = phi((hi - pz->mu[i]) / pz->sigma[i]) - phi((lo - pz->mu[i]) / pz->sigma[i]);

		pz->logz[i] = log(fmax(z, 1e-300));
	}
	return 0;
}

/* log of the mixture's density at x, summed in log space so far tails do
 * not underflow to log(0). */
static double parzen_logpdf(const struct parzen *pz, double x)
{
	double maxl = -INFINITY, sum = 0;

	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < pz->n; i++) {
			double z = (x - pz->mu[i]) / pz->sigma[i];
			double li = -0.5 * z * z - log(pz->sigma[i]) - 0.5 * log(2 * M_PI) - pz->logz[i];

			if (pass == 0) {
				maxl = fmax(maxl, li);
			} else {
				sum += exp(li - maxl);
			}
		}
	}
	return maxl + log(sum) - log((double)pz->n);
}

/* One point from the mixture, inside [lo, hi]: a component at random, then
 * its Gaussian until a draw lands inside (clipped after many misses, which
 * only a component far outside the range could cause). */
static double parzen_sample(const struct parzen *pz, uint64_t s[4])
{
	size_t c = rng_index(s, pz->n);
	double x = pz->mu[c];

	for (int tries = 0; tries < 100; tries++) {
		x = pz->mu[c] + pz->sigma[c] * rng_normal(s);
		if (x >= pz->lo && x <= pz->hi) {
			return x;
		}
	}
	return fmin(fmax(x, pz->lo), pz->hi);
}

/* An observation ready for the model: its config and score. */
struct scored {
	const cJSON *config;
	double value;
	size_t order; /* its place in obs, to break ties the same way every time */
};

static int cmp_scored_max(const void *a, const void *b)
{
	const struct scored *x = a, *y = b;

	if (x->value != y->value) {
		return x->value > y->value ? -1 : 1;
	}
	return (x->order > y->order) - (x->order < y->order);
}

static int cmp_scored_min(const void *a, const void *b)
{
	const struct scored *x = a, *y = b;

	if (x->value != y->value) {
		return x->value < y->value ? -1 : 1;
	}
	return (x->order > y->order) - (x->order < y->order);
}

/* A continuous parameter: the candidate of l with the best log l - log g. */
static int tpe_numeric(const struct space_param *prm, const struct scored *sc, size_t n,
		       size_t gamma, uint64_t s[4], cJSON **ret)
{
	struct parzen good = { 0 }, bad = { 0 };
	double *vals = NULL, best_x = 0, best_score = -INFINITY;
	size_t ngood = 0, nbad = 0;
	int r;

	vals = malloc((n ? n : 1) * sizeof(*vals));
	if (!vals) {
		return -ENOMEM;
	}
	/* The good values fill the front, the bad ones the back. */
	for (size_t i = 0; i < n; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(sc[i].config, prm->name);

		if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
			continue;
		}
		if (i < gamma) {
			vals[ngood++] = fmin(fmax(v->valuedouble, prm->a), prm->b);
		} else {
			vals[n - 1 - nbad++] = fmin(fmax(v->valuedouble, prm->a), prm->b);
		}
	}
	r = parzen_init(&good, vals, ngood, prm->a, prm->b);
	if (r < 0) {
		goto out;
	}
	r = parzen_init(&bad, vals + n - nbad, nbad, prm->a, prm->b);
	if (r < 0) {
		goto out;
	}
	for (int c = 0; c < TPE_CANDIDATES; c++) {
		double x = parzen_sample(&good, s);
		double score = parzen_logpdf(&good, x) - parzen_logpdf(&bad, x);

		if (c == 0 || score > best_score) {
			best_x = x;
			best_score = score;
		}
	}
	if (prm->kind == SPACE_QUNIFORM) {
		best_x = qround(best_x, prm->q);
	}
	*ret = cJSON_CreateNumber(best_x);
	r = *ret ? 0 : -ENOMEM;
out:
	parzen_finish(&good);
	parzen_finish(&bad);
	free(vals);
	return r;
}

/* A choice: the candidate of the good categorical with the best l/g. */
static int tpe_choice(const struct space_param *prm, const struct scored *sc, size_t n,
		      size_t gamma, uint64_t s[4], cJSON **ret)
{
	size_t k = (size_t)cJSON_GetArraySize(prm->choices), best = 0;
	double *wg = NULL, *wb = NULL, sum_g = 0, sum_b = 0, best_score = -INFINITY;
	int r = 0;

	wg = malloc(k * sizeof(*wg));
	wb = malloc(k * sizeof(*wb));
	if (!wg || !wb) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t c = 0; c < k; c++) {
		wg[c] = wb[c] = 1;
	}
	for (size_t i = 0; i < n; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(sc[i].config, prm->name);
		size_t c = 0;
		const cJSON *choice;

		if (!v) {
			continue;
		}
		cJSON_ArrayForEach(choice, prm->choices) {
			if (cJSON_Compare(choice, v, true)) {
				break;
			}
			c++;
		}
		if (c < k) {
			(i < gamma ? wg : wb)[c] += 1;
		}
	}
	for (size_t c = 0; c < k; c++) {
		sum_g += wg[c];
		sum_b += wb[c];
	}
	for (int t = 0; t < TPE_CANDIDATES; t++) {
		double u = rng_uniform(s) * sum_g, acc = 0, score;
		size_t c = 0;

		for (c = 0; c + 1 < k; c++) {
			acc += wg[c];
			if (u < acc) {
				break;
			}
		}
		score = (wg[c] / sum_g) / (wb[c] / sum_b);
		if (t == 0 || score > best_score) {
			best = c;
			best_score = score;
		}
	}
	*ret = cJSON_Duplicate(cJSON_GetArrayItem(prm->choices, (int)best), true);
	r = *ret ? 0 : -ENOMEM;
out:
	free(wg);
	free(wb);
	return r;
}

static int next_bayesian(const struct space *sp, struct sampler_state *st, bool maximize,
			 const struct sampler_obs *obs, size_t nobs, cJSON *config)
{
	struct scored *sc = NULL;
	size_t n = 0, gamma;
	int r = 0;

	for (size_t i = 0; i < sp->n; i++) {
		enum space_kind k = sp->params[i].kind;

		if (k != SPACE_CHOICE && k != SPACE_UNIFORM && k != SPACE_QUNIFORM) {
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < nobs; i++) {
		if (!isnan(obs[i].value) && cJSON_IsObject(obs[i].config)) {
			n++;
		}
	}
	if (st->drawn < SAMPLER_STARTUP || n < SAMPLER_STARTUP) {
		return next_random(sp, st, config);
	}
	sc = malloc(n * sizeof(*sc));
	if (!sc) {
		return -ENOMEM;
	}
	n = 0;
	for (size_t i = 0; i < nobs; i++) {
		if (!isnan(obs[i].value) && cJSON_IsObject(obs[i].config)) {
			sc[n++] = (struct scored){ obs[i].config, obs[i].value, i };
		}
	}
	qsort(sc, n, sizeof(*sc), maximize ? cmp_scored_max : cmp_scored_min);
	gamma = (size_t)ceil(0.25 * (double)n);
	if (gamma < 1) {
		gamma = 1;
	}
	for (size_t i = 0; i < sp->n; i++) {
		const struct space_param *prm = &sp->params[i];
		cJSON *v = NULL;

		if (prm->kind == SPACE_CHOICE) {
			r = tpe_choice(prm, sc, n, gamma, st->rng, &v);
		} else {
			r = tpe_numeric(prm, sc, n, gamma, st->rng, &v);
		}
		if (r < 0) {
			goto out;
		}
		r = config_add(config, prm->name, v);
		if (r < 0) {
			goto out;
		}
	}
out:
	free(sc);
	return r;
}

int sampler_next(const struct space *sp, enum sampling s, struct sampler_state *st,
		 bool maximize, const struct sampler_obs *obs, size_t nobs, cJSON **ret)
{
	struct sampler_state next = *st;
	cJSON *config = cJSON_CreateObject();
	int r;

	if (!config) {
		return -ENOMEM;
	}
	/* Work on a copy so a failed draw leaves the caller's state as it was. */
	switch (s) {
	case SAMPLING_RANDOM:
		r = next_random(sp, &next, config);
		break;
	case SAMPLING_GRID:
		r = next_grid(sp, &next, config);
		break;
	case SAMPLING_BAYESIAN:
		r = next_bayesian(sp, &next, maximize, obs, nobs, config);
		break;
	default:
		r = -EINVAL;
		break;
	}
	if (r < 0) {
		goto out;
	}
	next.drawn++;
	*st = next;
	*ret = config;
	config = NULL;
out:
	cJSON_Delete(config);
	return r;
}

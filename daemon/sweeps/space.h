/* A sweep's search space: parameter expressions as HyperDrive writes them
 * (choice, randint, uniform, loguniform, normal, lognormal and their q-
 * forms), and the samplers that draw configurations from it: random, grid
 * and bayesian (a tree-structured Parzen estimator written here). Pure
 * code: no loop, no store; the sampler's whole state is a value the caller
 * persists (docs/sweeps.md). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define SPACE_PARAMS_MAX 64   /* parameters in one sweep */
#define SPACE_CHOICES_MAX 1000 /* values in one choice() */
#define SPACE_EXPR_MAX 4096   /* bytes of one expression's text */

enum space_kind {
	SPACE_CHOICE,
	SPACE_RANDINT,     /* integers 0..upper-1 */
	SPACE_UNIFORM,     /* lo, hi */
	SPACE_LOGUNIFORM,  /* exp(uniform(lo, hi)) */
	SPACE_NORMAL,      /* mu, sigma */
	SPACE_LOGNORMAL,   /* exp(normal(mu, sigma)) */
	SPACE_QUNIFORM,    /* round(uniform(lo, hi) / q) * q */
	SPACE_QLOGUNIFORM, /* round(exp(uniform(lo, hi)) / q) * q */
	SPACE_QNORMAL,     /* round(normal(mu, sigma) / q) * q */
	SPACE_QLOGNORMAL,  /* round(exp(normal(mu, sigma)) / q) * q */
};

struct space_param {
	char *name;           /* exactly as written: "--kernel" */
	enum space_kind kind;
	double a, b, q;       /* the numeric arguments, as the kind names them */
	cJSON *choices;       /* SPACE_CHOICE: an array of numbers and strings */
};

struct space {
	struct space_param *params; /* in the order given */
	size_t n;
};

enum sampling {
	SAMPLING_RANDOM,
	SAMPLING_GRID,
	SAMPLING_BAYESIAN,
};

/* "random", "grid", "bayesian"; -EINVAL for anything else. */
int sampling_parse(const char *name, enum sampling *ret);
const char *sampling_name(enum sampling s);

/* Parse {name: "choice('linear', 'rbf')", "--C": "uniform(0.1, 10)", ...}.
 * -EINVAL with a message in *cause naming the parameter and what is wrong
 * (unknown function, wrong argument count, lo >= hi, sigma <= 0, q <= 0,
 * loguniform bounds, an empty choice, more than the limits, ...); -ENOMEM. */
int space_parse(const cJSON *params, struct space **ret, char **cause);
void space_free(struct space *sp);

/* Whether the sampling can draw from sp: grid takes only choice, bayesian
 * only choice, uniform and quniform. -EINVAL with a message in *cause. */
int space_check(const struct space *sp, enum sampling s, char **cause);

/* How many configurations grid enumerates (the product of the choices'
 * lengths), saturating at INT64_MAX. */
int64_t space_grid_size(const struct space *sp);

/* A value as it is passed on a command line: strings as they are, numbers
 * in the shortest form that reads back the same ("1", "0.5", "1e-05");
 * malloc'd, NULL when out of memory. */
char *space_value_text(const cJSON *v);

/* The sampler's state: everything sampler_next needs besides the space and
 * the observations, so a restart carries on exactly where it stopped. */
struct sampler_state {
	uint64_t rng[4]; /* xoshiro256** */
	int64_t drawn;   /* configurations drawn so far (grid: the next index) */
};

/* Seed the generator (splitmix64 of seed, as xoshiro's authors advise). */
void sampler_seed(struct sampler_state *st, uint64_t seed);
/* {"rng": ["<16 hex digits>" x4], "drawn": N}; NULL when out of memory. */
cJSON *sampler_state_json(const struct sampler_state *st);
/* -EINVAL when j is not what sampler_state_json makes. */
int sampler_state_parse(const cJSON *j, struct sampler_state *ret);

/* What a finished trial scored, for the bayesian sampler. */
struct sampler_obs {
	const cJSON *config; /* as sampler_next returned it */
	double value;        /* the trial's score (NaN: none; ignored) */
};

/* Bayesian: draws this many configurations at random before the model is
 * used (and always while fewer observations have a score). */
#define SAMPLER_STARTUP 10

/* Draw the next configuration: a JSON object {name: value} in the space's
 * order, values numbers or strings. Advances st. Random: each parameter
 * drawn from its distribution. Grid: configuration number st->drawn of the
 * product in row-major order (the last parameter varies fastest); -ENOENT
 * once every one has been drawn. Bayesian: random for the first
 * SAMPLER_STARTUP draws, then TPE over obs (maximize says which way is
 * better). The same state, space and observations give the same
 * configuration. -ENOMEM. */
int sampler_next(const struct space *sp, enum sampling s, struct sampler_state *st,
		 bool maximize, const struct sampler_obs *obs, size_t nobs, cJSON **ret);

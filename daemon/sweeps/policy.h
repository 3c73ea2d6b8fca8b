/* Early termination of a sweep's trials: bandit, median stopping and
 * truncation selection as HyperDrive defines them, and asynchronous
 * successive halving (ASHA). Pure code: given every trial's values of the
 * primary metric, it says whether one trial stops and why, with the numbers
 * (docs/sweeps.md gives each rule with a worked example). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

enum policy_kind {
	POLICY_NONE,
	POLICY_BANDIT,
	POLICY_MEDIAN,
	POLICY_TRUNCATION,
	POLICY_ASHA,
};

struct policy {
	enum policy_kind kind;
	int64_t evaluation_interval; /* >= 1; default 1 (not used by asha) */
	int64_t delay_evaluation;    /* >= 0; default 0 (not used by asha) */
	double slack_factor;         /* bandit: > 0, or NaN when slack_amount is given */
	double slack_amount;         /* bandit: > 0, or NaN when slack_factor is given */
	double truncation_percentage; /* truncation: 1..99 */
	bool exclude_finished_jobs;   /* truncation */
	double reduction_factor;      /* asha: eta > 1; default 3 */
	int64_t min_resource;         /* asha: r >= 1; default 1 */
};

/* The text form: "bandit,slack_factor=0.2,evaluation_interval=1",
 * "median", "truncation,truncation_percentage=20", "asha,reduction_factor=3",
 * "none". Names as HyperDrive's keyword arguments. -EINVAL with a message
 * in *cause (unknown policy or key, a value out of range, bandit without
 * exactly one slack, a key the policy does not take). */
int policy_parse(const char *text, struct policy *ret, char **cause);
/* The same from JSON: {"name": "bandit", "slack_factor": 0.2, ...}. */
int policy_from_json(const cJSON *j, struct policy *ret, char **cause);
/* The JSON form with every field the policy uses; NULL when out of memory. */
cJSON *policy_json(const struct policy *p);
const char *policy_name(enum policy_kind k);

/* A trial as the policy sees it: the values of the primary metric it has
 * logged, in order (values[k-1] is interval k; NaN: a value that is not a
 * number, never better nor worse than any), and whether it has ended. */
struct policy_trial {
	int64_t id;
	const double *values;
	size_t n;
	bool finished;
};

/* Trial self (an index into trials) has just logged its self->n-th value.
 * Returns 1 when it must stop, with *why set to a malloc'd sentence such as
 * "bandit: 0.61 < 0.8/(1+0.2) = 0.666667 at interval 10" and *detail
 * (when detail is non-NULL) to a JSON object with the numbers that made
 * the decision; 0 when it goes on (nothing set); -ENOMEM. Only intervals
 * that are a multiple of evaluation_interval and >= delay_evaluation are
 * looked at (asha: only the rungs min_resource * eta^k). */
int policy_evaluate(const struct policy *p, bool maximize, const struct policy_trial *trials,
		    size_t ntrials, size_t self, char **why, cJSON **detail);

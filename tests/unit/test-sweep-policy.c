/* sweeps/policy: each early-termination rule on vectors worked out by hand
 * from its formula (the arithmetic is in the comments), both goals, the
 * interval gating, NaN values, the messages, and the policy text and JSON. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "policy.h"
#include "test.h"

#define T(...) ((const double[]){ __VA_ARGS__ })
#define TRIAL(id_, ...) \
	{ .id = (id_), .values = T(__VA_ARGS__), .n = sizeof(T(__VA_ARGS__)) / sizeof(double) }

static struct policy parsed(const char *text)
{
	struct policy p = { 0 };
	char *cause = NULL;

	EXPECT_INT(policy_parse(text, &p, &cause), 0);
	if (cause) {
		fprintf(stderr, "policy_parse(\"%s\"): %s\n", text, cause);
	}
	free(cause);
	return p;
}

/* Evaluate trials[self]; expect stop (1) with that message, or go on (0). */
static void expect_eval(const struct policy *p, bool maximize, const struct policy_trial *trials,
			size_t n, size_t self, int want, const char *why_want)
{
	char *why = NULL;
	cJSON *detail = NULL;
	int r = policy_evaluate(p, maximize, trials, n, self, &why, &detail);

	EXPECT_INT(r, want);
	if (want == 1) {
		EXPECT_STR(why, why_want);
		EXPECT(cJSON_IsObject(detail));
	} else {
		EXPECT(why == NULL);
		EXPECT(detail == NULL);
	}
	free(why);
	cJSON_Delete(detail);
}

static double detail_num(const struct policy *p, bool maximize, const struct policy_trial *trials,
			 size_t n, size_t self, const char *field)
{
	char *why = NULL;
	cJSON *detail = NULL;
	double v = NAN;

	if (policy_evaluate(p, maximize, trials, n, self, &why, &detail) == 1) {
		const cJSON *f = cJSON_GetObjectItemCaseSensitive(detail, field);

		v = cJSON_IsNumber(f) ? f->valuedouble : NAN;
	}
	free(why);
	cJSON_Delete(detail);
	return v;
}

static void test_bandit(void)
{
	struct policy p = parsed("bandit,slack_factor=0.2");

	/* Maximize. At interval 2: A 0.8, B 0.7, self 0.61; D has one value and
	 * takes no part. best_ref = 0.8, threshold = 0.8/(1+0.2) = 0.666667.
	 * self_best = max(0.55, 0.61) = 0.61 < 0.666667: stop. */
	{
		struct policy_trial t[] = { TRIAL(1, 0.5, 0.8), TRIAL(2, 0.6, 0.7),
					    TRIAL(3, 0.55, 0.61), TRIAL(4, 0.99) };

		expect_eval(&p, true, t, 4, 2, 1, "bandit: 0.61 < 0.8/(1+0.2) = 0.666667 at interval 2");
		EXPECT(fabs(detail_num(&p, true, t, 4, 2, "threshold") - 0.8 / 1.2) < 1e-12);
		EXPECT_INT(detail_num(&p, true, t, 4, 2, "compared"), 3);
		EXPECT(detail_num(&p, true, t, 4, 2, "best") == 0.8);
		EXPECT(detail_num(&p, true, t, 4, 2, "value") == 0.61);
		EXPECT(detail_num(&p, true, t, 4, 2, "interval") == 2);
	}
	/* self 0.7 >= 0.666667: on. */
	{
		struct policy_trial t[] = { TRIAL(1, 0.5, 0.8), TRIAL(2, 0.6, 0.7), TRIAL(3, 0.55, 0.7) };

		expect_eval(&p, true, t, 3, 2, 0, NULL);
	}
	/* self's best so far counts, not its last value: max(0.7, 0.6) = 0.7: on. */
	{
		struct policy_trial t[] = { TRIAL(1, 0.5, 0.8), TRIAL(3, 0.7, 0.6) };

		expect_eval(&p, true, t, 2, 1, 0, NULL);
	}
	/* The leader itself: best_ref 0.8 is its own, on. */
	{
		struct policy_trial t[] = { TRIAL(1, 0.5, 0.8), TRIAL(3, 0.55, 0.61) };

		expect_eval(&p, true, t, 2, 0, 0, NULL);
	}
	/* NaN is skipped: A's value at 2 is NaN, so best_ref = B's 0.7;
	 * threshold 0.7/1.2 = 0.583333; self_best max(0.55, 0.5) = 0.55: stop. */
	{
		struct policy_trial t[] = { TRIAL(1, 0.5, NAN), TRIAL(2, 0.6, 0.7), TRIAL(3, 0.55, 0.5) };

		expect_eval(&p, true, t, 3, 2, 1, "bandit: 0.55 < 0.7/(1+0.2) = 0.583333 at interval 2");
	}
	/* self with only NaN values is never judged. */
	{
		struct policy_trial t[] = { TRIAL(1, 0.5, 0.8), TRIAL(3, NAN, NAN) };

		expect_eval(&p, true, t, 2, 1, 0, NULL);
	}
	/* Minimize: best_ref = min(0.3, 0.4, 0.4) = 0.3, threshold 0.3*1.2 = 0.36,
	 * self_best = min(0.45, 0.4) = 0.4 > 0.36: stop; a self at 0.35 goes on. */
	{
		struct policy_trial t[] = { TRIAL(1, 0.5, 0.3), TRIAL(2, 0.6, 0.4), TRIAL(3, 0.45, 0.4) };
		struct policy_trial u[] = { TRIAL(1, 0.5, 0.3), TRIAL(3, 0.5, 0.35) };

		expect_eval(&p, false, t, 3, 2, 1, "bandit: 0.4 > 0.3*(1+0.2) = 0.36 at interval 2");
		expect_eval(&p, false, u, 2, 1, 0, NULL);
	}

	/* slack_amount 0.15, maximize: threshold 0.8-0.15 = 0.65; 0.61 stops, 0.66 goes on. */
	p = parsed("bandit,slack_amount=0.15");
	{
		struct policy_trial t[] = { TRIAL(1, 0.5, 0.8), TRIAL(3, 0.55, 0.61) };
		struct policy_trial u[] = { TRIAL(1, 0.5, 0.8), TRIAL(3, 0.55, 0.66) };

		expect_eval(&p, true, t, 2, 1, 1, "bandit: 0.61 < 0.8-0.15 = 0.65 at interval 2");
		EXPECT(detail_num(&p, true, t, 2, 1, "slack_amount") == 0.15);
		expect_eval(&p, true, u, 2, 1, 0, NULL);
	}
	/* slack_amount 0.05, minimize: threshold 0.3+0.05 = 0.35; 0.4 stops, 0.34 goes on. */
	p = parsed("bandit,slack_amount=0.05");
	{
		struct policy_trial t[] = { TRIAL(1, 0.5, 0.3), TRIAL(3, 0.45, 0.4) };
		struct policy_trial u[] = { TRIAL(1, 0.5, 0.3), TRIAL(3, 0.45, 0.34) };

		expect_eval(&p, false, t, 2, 1, 1, "bandit: 0.4 > 0.3+0.05 = 0.35 at interval 2");
		expect_eval(&p, false, u, 2, 1, 0, NULL);
	}

	/* Gating. evaluation_interval 2: interval 3 is not looked at, 4 is.
	 * At 4: best_ref 0.8, threshold 0.666667, self_best 0.5: stop. */
	p = parsed("bandit,slack_factor=0.2,evaluation_interval=2");
	{
		struct policy_trial t3[] = { TRIAL(1, 0.8, 0.8, 0.8, 0.8), TRIAL(3, 0.5, 0.5, 0.5) };
		struct policy_trial t4[] = { TRIAL(1, 0.8, 0.8, 0.8, 0.8), TRIAL(3, 0.5, 0.5, 0.5, 0.5) };

		expect_eval(&p, true, t3, 2, 1, 0, NULL);
		expect_eval(&p, true, t4, 2, 1, 1, "bandit: 0.5 < 0.8/(1+0.2) = 0.666667 at interval 4");
	}
	/* delay_evaluation 3: intervals 1 and 2 are not looked at, 3 is. */
	p = parsed("bandit,slack_factor=0.2,delay_evaluation=3");
	{
		struct policy_trial t2[] = { TRIAL(1, 0.8, 0.8, 0.8), TRIAL(3, 0.5, 0.5) };
		struct policy_trial t3[] = { TRIAL(1, 0.8, 0.8, 0.8), TRIAL(3, 0.5, 0.5, 0.5) };

		expect_eval(&p, true, t2, 2, 1, 0, NULL);
		expect_eval(&p, true, t3, 2, 1, 1, "bandit: 0.5 < 0.8/(1+0.2) = 0.666667 at interval 3");
	}
	/* A trial with no values yet, and a bad index. */
	{
		struct policy_trial t[] = { TRIAL(1, 0.8), { .id = 2, .values = NULL, .n = 0 } };
		char *why = NULL;

		expect_eval(&p, true, t, 2, 1, 0, NULL);
		EXPECT_INT(policy_evaluate(&p, true, t, 2, 2, &why, NULL), -22);
	}
	/* detail may be NULL. */
	{
		struct policy_trial t[] = { TRIAL(1, 0.8, 0.8, 0.8), TRIAL(3, 0.5, 0.5, 0.5) };
		char *why = NULL;

		EXPECT_INT(policy_evaluate(&p, true, t, 2, 1, &why, NULL), 1);
		EXPECT(why != NULL);
		free(why);
	}
}

static void test_median(void)
{
	struct policy p = parsed("median");

	/* At interval 2 the others' running averages: A (0.5+0.7)/2 = 0.6,
	 * B (0.3+0.5)/2 = 0.4, D (0.8+0.9)/2 = 0.85; E has one value and takes
	 * no part. Sorted 0.4 0.6 0.85: median 0.6. self_best max(0.4, 0.55) =
	 * 0.55 < 0.6: stop; a self with 0.65 goes on. */
	{
		struct policy_trial t[] = { TRIAL(1, 0.5, 0.7), TRIAL(2, 0.3, 0.5), TRIAL(4, 0.8, 0.9),
					    TRIAL(5, 0.1), TRIAL(3, 0.4, 0.55) };
		struct policy_trial u[] = { TRIAL(1, 0.5, 0.7), TRIAL(2, 0.3, 0.5), TRIAL(4, 0.8, 0.9),
					    TRIAL(3, 0.4, 0.65) };

		expect_eval(&p, true, t, 5, 4, 1, "median: 0.55 < median 0.6 of 3 running averages at interval 2");
		EXPECT(fabs(detail_num(&p, true, t, 5, 4, "median") - 0.6) < 1e-12);
		expect_eval(&p, true, u, 4, 3, 0, NULL);
	}
	/* Even count: A 0.6, B 0.4, median (0.4+0.6)/2 = 0.5; self 0.55 goes
	 * on, self max(0.45, 0.48) = 0.48 stops. */
	{
		struct policy_trial t[] = { TRIAL(1, 0.5, 0.7), TRIAL(2, 0.3, 0.5), TRIAL(3, 0.4, 0.55) };
		struct policy_trial u[] = { TRIAL(1, 0.5, 0.7), TRIAL(2, 0.3, 0.5), TRIAL(3, 0.45, 0.48) };

		expect_eval(&p, true, t, 3, 2, 0, NULL);
		expect_eval(&p, true, u, 3, 2, 1, "median: 0.48 < median 0.5 of 2 running averages at interval 2");
	}
	/* No other trial has two values: go on. */
	{
		struct policy_trial t[] = { TRIAL(1, 0.9), TRIAL(3, 0.1, 0.1) };

		expect_eval(&p, true, t, 2, 1, 0, NULL);
	}
	/* NaN skipped in the averages: A's is 0.7 (its NaN left out), so the
	 * averages are 0.4 0.7 0.85, median 0.7; self 0.65 < 0.7: stop. */
	{
		struct policy_trial t[] = { TRIAL(1, NAN, 0.7), TRIAL(2, 0.3, 0.5), TRIAL(4, 0.8, 0.9),
					    TRIAL(3, 0.4, 0.65) };

		expect_eval(&p, true, t, 4, 3, 1, "median: 0.65 < median 0.7 of 3 running averages at interval 2");
	}
	/* Minimize: median 0.6 as above; self_best min(0.9, 0.7) = 0.7 > 0.6:
	 * stop; self min(0.9, 0.5) = 0.5 goes on. */
	{
		struct policy_trial t[] = { TRIAL(1, 0.5, 0.7), TRIAL(2, 0.3, 0.5), TRIAL(4, 0.8, 0.9),
					    TRIAL(3, 0.9, 0.7) };
		struct policy_trial u[] = { TRIAL(1, 0.5, 0.7), TRIAL(2, 0.3, 0.5), TRIAL(4, 0.8, 0.9),
					    TRIAL(3, 0.9, 0.5) };

		expect_eval(&p, false, t, 4, 3, 1, "median: 0.7 > median 0.6 of 3 running averages at interval 2");
		expect_eval(&p, false, u, 4, 3, 0, NULL);
	}
	/* delay_evaluation 3 with evaluation_interval 2: 2 is too early, 4 counts.
	 * At 4: A's average 0.6 is the only one; self best 0.5 < 0.6: stop. */
	p = parsed("median,evaluation_interval=2,delay_evaluation=3");
	{
		struct policy_trial t2[] = { TRIAL(1, 0.6, 0.6, 0.6, 0.6), TRIAL(3, 0.5, 0.5) };
		struct policy_trial t4[] = { TRIAL(1, 0.6, 0.6, 0.6, 0.6), TRIAL(3, 0.5, 0.5, 0.5, 0.5) };

		expect_eval(&p, true, t2, 2, 1, 0, NULL);
		expect_eval(&p, true, t4, 2, 1, 1, "median: 0.5 < median 0.6 of 1 running averages at interval 4");
	}
}

static void test_truncation(void)
{
	struct policy p = parsed("truncation,truncation_percentage=20");
	struct policy_trial t[10];
	double vals[10][1];

	/* Ten trials at interval 1 with 0.1, 0.2, ... 1.0. count 10, k =
	 * floor(10*20/100) = 2: stop when at least 10-2 = 8 are better. */
	for (int i = 0; i < 10; i++) {
		vals[i][0] = (i + 1) / 10.0;
		t[i] = (struct policy_trial){ .id = i, .values = vals[i], .n = 1 };
	}
	/* 0.1: 9 better >= 8: stop. 0.2: 8 >= 8: stop. 0.3: 7 < 8: on. */
	expect_eval(&p, true, t, 10, 0, 1, "truncation: 0.1 is in the lowest 20% (2 of 10) at interval 1");
	expect_eval(&p, true, t, 10, 1, 1, "truncation: 0.2 is in the lowest 20% (2 of 10) at interval 1");
	expect_eval(&p, true, t, 10, 2, 0, NULL);
	EXPECT_INT(detail_num(&p, true, t, 10, 0, "better"), 9);
	EXPECT_INT(detail_num(&p, true, t, 10, 0, "cut"), 2);
	/* Minimize: 1.0 has 9 better, 0.9 has 8: both stop; 0.8 has 7: on. */
	expect_eval(&p, false, t, 10, 9, 1, "truncation: 1 is in the highest 20% (2 of 10) at interval 1");
	expect_eval(&p, false, t, 10, 8, 1, "truncation: 0.9 is in the highest 20% (2 of 10) at interval 1");
	expect_eval(&p, false, t, 10, 7, 0, NULL);
	/* Four trials: k = floor(4*0.2) = 0, nothing stops. */
	expect_eval(&p, true, t, 4, 0, 0, NULL);

	/* A NaN candidate takes no part: with 0.5 made NaN, count 9, k =
	 * floor(1.8) = 1; 0.1 has 8 better >= 9-1 = 8: stop. 0.2 has 7 (0.5
	 * no longer among them): on, where with ten it stopped. */
	vals[4][0] = NAN;
	expect_eval(&p, true, t, 10, 0, 1, "truncation: 0.1 is in the lowest 20% (1 of 9) at interval 1");
	expect_eval(&p, true, t, 10, 1, 0, NULL);
	expect_eval(&p, true, t, 10, 4, 0, NULL); /* self NaN: never judged */
	vals[4][0] = 0.5;

	/* exclude_finished_jobs: 0.9 and 1.0 are finished and left out. count
	 * 8, k = floor(1.6) = 1: stop when 7 are better. 0.1: 0.2..0.8 = 7:
	 * stop; 0.2: 6: on (it stopped above with them in). */
	p = parsed("truncation,truncation_percentage=20,exclude_finished_jobs=true");
	t[8].finished = t[9].finished = true;
	expect_eval(&p, true, t, 10, 0, 1, "truncation: 0.1 is in the lowest 20% (1 of 8) at interval 1");
	expect_eval(&p, true, t, 10, 1, 0, NULL);
	/* Self finished is still self: 0.9 under minimize, count 9 (1.0 out),
	 * k = 1, 8 better >= 8: stop. */
	expect_eval(&p, false, t, 10, 8, 1, "truncation: 0.9 is in the highest 20% (1 of 9) at interval 1");
	/* Without the flag, finished trials count. */
	p = parsed("truncation,truncation_percentage=20");
	expect_eval(&p, true, t, 10, 1, 1, "truncation: 0.2 is in the lowest 20% (2 of 10) at interval 1");

	/* Only trials with n values: at interval 2, 0.9 (two values) against
	 * self 0.1 (two values) and the rest (one): count 2, k = 0: on. With
	 * 50%: k = 1, 1 better >= 2-1: stop. */
	{
		struct policy_trial u[] = { TRIAL(1, 0.9, 0.9), TRIAL(2, 0.5), TRIAL(3, 0.1, 0.1) };

		expect_eval(&p, true, u, 3, 2, 0, NULL);
		p = parsed("truncation,truncation_percentage=50,evaluation_interval=2");
		expect_eval(&p, true, u, 3, 2, 1, "truncation: 0.1 is in the lowest 50% (1 of 2) at interval 2");
		/* evaluation_interval 2 gates interval 1 */
		u[2].n = 1;
		expect_eval(&p, true, u, 3, 2, 0, NULL);
	}
}

static void test_asha(void)
{
	struct policy p = parsed("asha");

	/* eta 3, r 1: rungs 1, 3, 9, 27. Six trials at rung 3 with 0.9, 0.8,
	 * 0.7, 0.6, 0.5, 0.4 (best first); p = floor(6/3)-1 = 1, so 0.8 is
	 * needed. 0.8 goes on, 0.7 stops. */
	{
		struct policy_trial t[] = { TRIAL(1, 0, 0, 0.9), TRIAL(2, 0, 0, 0.8), TRIAL(3, 0, 0, 0.7),
					    TRIAL(4, 0, 0, 0.6), TRIAL(5, 0, 0, 0.5), TRIAL(6, 0, 0, 0.4) };

		expect_eval(&p, true, t, 6, 1, 0, NULL);
		expect_eval(&p, true, t, 6, 2, 1, "asha: 0.7 is not in the top 1/3 (0.8 needed) at rung 3");
		EXPECT(detail_num(&p, true, t, 6, 2, "rung") == 3);
		EXPECT(detail_num(&p, true, t, 6, 2, "needed") == 0.8);
		/* Minimize: ascending 0.4 0.5 ...: 0.5 needed; 0.6 stops, 0.5 goes on. */
		expect_eval(&p, false, t, 6, 3, 1, "asha: 0.6 is not in the top 1/3 (0.5 needed) at rung 3");
		expect_eval(&p, false, t, 6, 4, 0, NULL);
		/* Interval 2 is not a rung: nothing is looked at. */
		t[5].n = 2;
		expect_eval(&p, true, t, 6, 5, 0, NULL);
		/* With trial 6 gone from rung 3: five values, p = floor(5/3)-1 = 0:
		 * only 0.9 goes on. */
		expect_eval(&p, true, t, 6, 1, 1, "asha: 0.8 is not in the top 1/3 (0.9 needed) at rung 3");
		/* NaN is left out: with 0.9 made NaN the rest are 0.8 0.7 0.6 0.5,
		 * p = floor(4/3)-1 = 0: 0.8 needed; 0.8 goes on, 0.7 stops. */
		t[0].values = T(0, 0, NAN);
		expect_eval(&p, true, t, 6, 1, 0, NULL);
		expect_eval(&p, true, t, 6, 2, 1, "asha: 0.7 is not in the top 1/3 (0.8 needed) at rung 3");
		expect_eval(&p, true, t, 6, 0, 0, NULL); /* self NaN: never judged */
	}
	/* Two at a rung: p = floor(2/3)-1 = -1, taken as 0: only the best goes
	 * on. One alone always goes on. */
	{
		struct policy_trial t[] = { TRIAL(1, 0.9), TRIAL(2, 0.5) };

		expect_eval(&p, true, t, 2, 1, 1, "asha: 0.5 is not in the top 1/3 (0.9 needed) at rung 1");
		expect_eval(&p, true, t, 2, 0, 0, NULL);
		expect_eval(&p, true, t, 1, 0, 0, NULL);
	}
	/* A non-integer eta: 1.5 with r 2 gives floor(2, 3, 4.5, 6.75, 10.125)
	 * = 2, 3, 4, 6, 10; 5 is no rung. The leader at 1.0 makes self at 0.0
	 * stop wherever it is looked at. */
	p = parsed("asha,reduction_factor=1.5,min_resource=2");
	{
		static const double hi[10] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 };
		static const double lo[10] = { 0 };
		int rungs[11] = { 0, 0, 1, 1, 1, 0, 1, 0, 0, 0, 1 };

		for (int n = 1; n <= 10; n++) {
			struct policy_trial t[] = { { .id = 1, .values = hi, .n = 10 },
						    { .id = 2, .values = lo, .n = (size_t)n } };
			char *why = NULL;

			EXPECT_INT(policy_evaluate(&p, true, t, 2, 1, &why, NULL), rungs[n]);
			free(why);
		}
	}
	/* eta 1.2 with r 5: 5*1.2 is 6 in decimal though a hair under in
	 * binary; 6 is a rung. */
	p = parsed("asha,reduction_factor=1.2,min_resource=5");
	{
		struct policy_trial t[] = { TRIAL(1, 1, 1, 1, 1, 1, 1), TRIAL(2, 0, 0, 0, 0, 0, 0) };

		expect_eval(&p, true, t, 2, 1, 1, "asha: 0 is not in the top 1/1.2 (1 needed) at rung 6");
	}
}

static void expect_bad(const char *text, const char *part)
{
	struct policy p = { .kind = POLICY_MEDIAN, .evaluation_interval = 77 };
	char *cause = NULL;

	EXPECT_INT(policy_parse(text, &p, &cause), -22);
	EXPECT(cause && strstr(cause, part));
	if (!cause || !strstr(cause, part)) {
		fprintf(stderr, "  \"%s\": got \"%s\"\n", text, cause ? cause : "(null)");
	}
	EXPECT_INT(p.evaluation_interval, 77); /* untouched on failure */
	free(cause);
}

static void expect_bad_json(const char *json, const char *part)
{
	cJSON *j = cJSON_Parse(json);
	struct policy p;
	char *cause = NULL;

	EXPECT(j != NULL);
	EXPECT_INT(policy_from_json(j, &p, &cause), -22);
	EXPECT(cause && strstr(cause, part));
	if (!cause || !strstr(cause, part)) {
		fprintf(stderr, "  %s: got \"%s\"\n", json, cause ? cause : "(null)");
	}
	free(cause);
	cJSON_Delete(j);
}

/* The JSON form read back gives the same policy. */
static void expect_round_trip(const char *text)
{
	struct policy a = parsed(text), b = { 0 };
	cJSON *j = policy_json(&a);
	char *cause = NULL;

	EXPECT(j != NULL);
	EXPECT_INT(policy_from_json(j, &b, &cause), 0);
	free(cause);
	EXPECT_INT(a.kind, b.kind);
	EXPECT_INT(a.evaluation_interval, b.evaluation_interval);
	EXPECT_INT(a.delay_evaluation, b.delay_evaluation);
	EXPECT(a.slack_factor == b.slack_factor || (isnan(a.slack_factor) && isnan(b.slack_factor)));
	EXPECT(a.slack_amount == b.slack_amount || (isnan(a.slack_amount) && isnan(b.slack_amount)));
	EXPECT(a.truncation_percentage == b.truncation_percentage ||
	       (isnan(a.truncation_percentage) && isnan(b.truncation_percentage)));
	EXPECT(a.exclude_finished_jobs == b.exclude_finished_jobs);
	EXPECT(a.reduction_factor == b.reduction_factor);
	EXPECT_INT(a.min_resource, b.min_resource);
	cJSON_Delete(j);
}

static void test_parse(void)
{
	struct policy p;
	char *cause = NULL;
	cJSON *j;

	p = parsed("bandit,slack_factor=0.2,evaluation_interval=1");
	EXPECT_INT(p.kind, POLICY_BANDIT);
	EXPECT(p.slack_factor == 0.2 && isnan(p.slack_amount));
	EXPECT_INT(p.evaluation_interval, 1);
	EXPECT_INT(p.delay_evaluation, 0);
	p = parsed(" bandit , slack_amount = 0.1 , delay_evaluation=5 ");
	EXPECT(p.slack_amount == 0.1 && isnan(p.slack_factor));
	EXPECT_INT(p.delay_evaluation, 5);
	p = parsed("median");
	EXPECT_INT(p.kind, POLICY_MEDIAN);
	EXPECT_INT(p.evaluation_interval, 1);
	p = parsed("truncation,truncation_percentage=20,exclude_finished_jobs=true");
	EXPECT_INT(p.kind, POLICY_TRUNCATION);
	EXPECT(p.truncation_percentage == 20 && p.exclude_finished_jobs);
	p = parsed("truncation,truncation_percentage=20");
	EXPECT(!p.exclude_finished_jobs);
	p = parsed("asha");
	EXPECT_INT(p.kind, POLICY_ASHA);
	EXPECT(p.reduction_factor == 3);
	EXPECT_INT(p.min_resource, 1);
	p = parsed("asha,reduction_factor=2,min_resource=4");
	EXPECT(p.reduction_factor == 2);
	EXPECT_INT(p.min_resource, 4);
	p = parsed("none");
	EXPECT_INT(p.kind, POLICY_NONE);
	EXPECT_STR(policy_name(POLICY_TRUNCATION), "truncation");

	expect_bad("foo", "unknown policy 'foo'");
	expect_bad("", "unknown policy ''");
	expect_bad("bandit", "policy 'bandit': give slack_factor or slack_amount");
	expect_bad("bandit,slack_factor=0.2,slack_amount=0.1",
		   "policy 'bandit': give slack_factor or slack_amount, not both");
	expect_bad("bandit,slack_factor=0", "slack_factor must be > 0, got 0");
	expect_bad("bandit,slack_amount=-1", "slack_amount must be > 0");
	expect_bad("bandit,slack_factor=x", "slack_factor is not a number: 'x'");
	expect_bad("bandit,slack_factor=inf", "slack_factor must be a finite number");
	expect_bad("bandit,slack_factor=", "slack_factor needs a value");
	expect_bad("median,slack_factor=0.2", "policy 'median' takes no slack_factor");
	expect_bad("median,foo=1", "policy 'median': unknown key 'foo'");
	expect_bad("median,evaluation_interval", "'evaluation_interval' has no value");
	expect_bad("median,,", "an empty key=value between commas");
	expect_bad("median,evaluation_interval=2,", "an empty key=value between commas");
	expect_bad("median,evaluation_interval=0", "evaluation_interval must be >= 1");
	expect_bad("median,evaluation_interval=1.5", "evaluation_interval must be an integer");
	expect_bad("median,delay_evaluation=-1", "delay_evaluation must be >= 0");
	expect_bad("median,evaluation_interval=1,evaluation_interval=2",
		   "evaluation_interval is given twice");
	expect_bad("truncation", "policy 'truncation': give truncation_percentage");
	expect_bad("truncation,truncation_percentage=100", "between 1 and 99, got 100");
	expect_bad("truncation,truncation_percentage=0.5", "between 1 and 99");
	expect_bad("truncation,truncation_percentage=10,exclude_finished_jobs=yes",
		   "exclude_finished_jobs is true or false");
	expect_bad("asha,reduction_factor=1", "reduction_factor must be > 1");
	expect_bad("asha,min_resource=0", "min_resource must be >= 1");
	expect_bad("asha,evaluation_interval=2", "policy 'asha' takes no evaluation_interval");
	expect_bad("none,delay_evaluation=1", "policy 'none' takes no delay_evaluation");

	j = cJSON_Parse("{\"name\": \"truncation\", \"truncation_percentage\": 20, "
			"\"exclude_finished_jobs\": true, \"delay_evaluation\": 4}");
	EXPECT_INT(policy_from_json(j, &p, &cause), 0);
	EXPECT_INT(p.kind, POLICY_TRUNCATION);
	EXPECT(p.truncation_percentage == 20 && p.exclude_finished_jobs);
	EXPECT_INT(p.delay_evaluation, 4);
	cJSON_Delete(j);
	expect_bad_json("{\"slack_factor\": 0.2}", "needs a \"name\"");
	expect_bad_json("[1]", "is an object");
	expect_bad_json("{\"name\": \"hyperband\"}", "unknown policy 'hyperband'");
	expect_bad_json("{\"name\": \"bandit\", \"slack_factor\": \"0.2\"}", "slack_factor must be a number");
	expect_bad_json("{\"name\": \"bandit\"}", "give slack_factor or slack_amount");
	expect_bad_json("{\"name\": \"truncation\", \"truncation_percentage\": 20, "
			"\"exclude_finished_jobs\": 1}", "exclude_finished_jobs must be true or false");
	expect_bad_json("{\"name\": \"median\", \"bogus\": 1}", "unknown key 'bogus'");

	/* The JSON form has the fields the policy uses, and only those. */
	p = parsed("bandit,slack_factor=0.2");
	j = policy_json(&p);
	EXPECT(cJSON_GetObjectItemCaseSensitive(j, "slack_factor") != NULL);
	EXPECT(cJSON_GetObjectItemCaseSensitive(j, "slack_amount") == NULL);
	EXPECT(cJSON_GetObjectItemCaseSensitive(j, "reduction_factor") == NULL);
	EXPECT_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "name")), "bandit");
	cJSON_Delete(j);
	expect_round_trip("bandit,slack_factor=0.2,evaluation_interval=3,delay_evaluation=7");
	expect_round_trip("bandit,slack_amount=0.05");
	expect_round_trip("median,delay_evaluation=2");
	expect_round_trip("truncation,truncation_percentage=35,exclude_finished_jobs=true");
	expect_round_trip("asha,reduction_factor=4,min_resource=2");
	expect_round_trip("none");
}

int main(void)
{
	test_bandit();
	test_median();
	test_truncation();
	test_asha();
	test_parse();
	TEST_DONE();
}

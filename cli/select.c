/* Turning run references, ranges and selectors into one list (select.h). A
 * range names sequence numbers, so it never needs a call; a selector is one
 * run.list call with its filters. */
#include "select.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connect.h"
#include "json.h"
#include "util.h"
#include "verb.h"

/* Most runs one range may name: a typo of a digit should not cancel 10^6. */
#define RANGE_MAX 100000

int select_option(struct select_opts *o, int c, const char *arg)
{
	switch (c) {
	case SELECT_OPT_EXPERIMENT:
		o->experiment = arg;
		return 1;
	case SELECT_OPT_STATUS:
		o->status = arg;
		return 1;
	case SELECT_OPT_PARENT:
		o->parent = arg;
		return 1;
	default:
		return 0;
	}
}

/* "12-20" or "#12-#20" into its bounds; 0 when ref is not a range. */
static int range_of(const char *ref, long long *lo, long long *hi)
{
	char a[32], b[32];

	if (sscanf(ref, "%31[#0-9]-%31[#0-9]", a, b) != 2 || strchr(ref, '-') != strrchr(ref, '-')) {
		return 0;
	}
	if (util_parse_int(a[0] == '#' ? a + 1 : a, 1, (long long)1 << 53, lo) < 0 ||
	    util_parse_int(b[0] == '#' ? b + 1 : b, 1, (long long)1 << 53, hi) < 0) {
		return -1;
	}
	return 1;
}

int select_is_ref(const char *s)
{
	long long lo, hi;
	const char *u, *v;
	size_t n = strlen(s);

	if (range_of(s, &lo, &hi) > 0) {
		return 1;
	}
	if (util_parse_int(s[0] == '#' ? s + 1 : s, 1, (long long)1 << 53, &lo) == 0) {
		return 1;
	}
	/* ..._<seconds>_<8 hex digits>, as the daemon makes ids */
	if (n < 12 || strspn(s + n - 8, "0123456789abcdef") != 8 || s[n - 9] != '_') {
		return 0;
	}
	for (u = s + n - 10; u > s && *u >= '0' && *u <= '9'; u--) {
	}
	v = s + n - 9;
	return u > s && *u == '_' && v - u > 1;
}

int select_any(const struct select_opts *o)
{
	return o->experiment || o->status || o->parent;
}

/* Append refs[0..n) to out with the ranges spelled out; 0 or an exit
 * status (said why). */
static int expand_refs(struct ctx *ctx, char *const *refs, int n, cJSON *out)
{
	for (int i = 0; i < n; i++) {
		long long lo, hi;
		int k = range_of(refs[i], &lo, &hi);

		if (k < 0 || (k > 0 && (hi < lo || hi - lo >= RANGE_MAX))) {
			return verb_usage_error(ctx, "'%s' is not a range of run numbers: give "
						"FIRST-LAST with FIRST <= LAST, at most %d runs",
						refs[i], RANGE_MAX);
		}
		if (k == 0) {
			cJSON_AddItemToArray(out, cJSON_CreateString(refs[i]));
			continue;
		}
		for (long long s = lo; s <= hi; s++) {
			char num[24];
			snprintf(num, sizeof(num), "%lld", s);
			cJSON_AddItemToArray(out, cJSON_CreateString(num));
		}
	}
	return 0;
}

int select_refs(struct ctx *ctx, char *const *refs, int n, cJSON **ret)
{
	cJSON *out = cJSON_CreateArray();
	int status;

	if (!out) {
		return VERB_EXIT_USAGE;
	}
	status = expand_refs(ctx, refs, n, out);
	if (status) {
		cJSON_Delete(out);
		return status;
	}
	*ret = out;
	return 0;
}

int select_runs(struct ctx *ctx, char *const *refs, int n, const struct select_opts *o,
		cJSON **ret)
{
	cJSON *out = cJSON_CreateArray(), *args = NULL, *result = NULL;
	const cJSON *r;
	int status = 0;

	if (!out) {
		return VERB_EXIT_USAGE;
	}
	for (int i = 0; i < n; i++) {
		long long lo, hi;
		int k = range_of(refs[i], &lo, &hi);

		if (k < 0 || (k > 0 && (hi < lo || hi - lo >= RANGE_MAX))) {
			status = verb_usage_error(ctx, "'%s' is not a range of run numbers: give "
						  "FIRST-LAST with FIRST <= LAST, at most %d runs",
						  refs[i], RANGE_MAX);
			goto out;
		}
		if (k == 0) {
			cJSON_AddItemToArray(out, cJSON_CreateString(refs[i]));
			continue;
		}
		for (long long s = lo; s <= hi; s++) {
			char num[24];
			snprintf(num, sizeof(num), "%lld", s);
			cJSON_AddItemToArray(out, cJSON_CreateString(num));
		}
	}
	if (select_any(o)) {
		args = cJSON_CreateObject();
		cJSON_AddNumberToObject(args, "limit", 100000);
		if (o->experiment) {
			cJSON_AddStringToObject(args, "experiment", o->experiment);
		}
		if (o->status) {
			cJSON_AddStringToObject(args, "status", o->status);
		}
		if (o->parent) {
			cJSON_AddStringToObject(args, "parent", o->parent);
		}
		status = connect_call(ctx, "run.list", args, &result);
		if (status) {
			goto out;
		}
		cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(result, "runs")) {
			if (json_str(r, "id")) {
				cJSON_AddItemToArray(out, cJSON_CreateString(json_str(r, "id")));
			}
		}
	}
	if (cJSON_GetArraySize(out) == 0) {
		fprintf(stderr, "runyard: no runs match\n");
		status = VERB_EXIT_REFUSED;
		goto out;
	}
	*ret = out;
	out = NULL;
out:
	cJSON_Delete(out);
	cJSON_Delete(args);
	cJSON_Delete(result);
	return status;
}

int select_list(struct ctx *ctx, int argc, char **argv, int first, const struct select_opts *o,
		cJSON **ret, int *ret_many)
{
	int status;

	if (first >= argc && !select_any(o)) {
		return verb_usage_error(ctx, "which run? give its id or number");
	}
	status = select_runs(ctx, argv + first, argc - first, o, ret);
	if (status == 0) {
		*ret_many = cJSON_GetArraySize(*ret) > 1 || select_any(o) || argc - first > 1;
	}
	return status;
}

int select_verb_args(struct ctx *ctx, int argc, char **argv, cJSON **ret, int *ret_many)
{
	static const struct option options[] = {SELECT_OPTIONS, VERB_COMMON_OPTIONS, {0}};
	struct select_opts sel = {0};
	int c;

	while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
		if (select_option(&sel, c, optarg)) {
			continue;
		}
		switch (c) {
		case OPT_JSON:
			ctx->json = true;
			break;
		case 'h':
			return VERB_HELP;
		default:
			return verb_option_error(ctx, c, argv, options);
		}
	}
	return select_list(ctx, argc, argv, optind, &sel, ret, ret_many);
}

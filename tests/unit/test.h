/* A few assertion macros for the unit tests: each failure says what was
 * expected and where, and the test goes on so one run shows every failure. */
#pragma once

#include <stdio.h>
#include <string.h>

static int test_failures;

#define EXPECT(cond)                                                                       \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond); \
			test_failures++;                                                   \
		}                                                                          \
	} while (0)

#define EXPECT_INT(a, b)                                                                   \
	do {                                                                               \
		long long a_ = (long long)(a), b_ = (long long)(b);                        \
		if (a_ != b_) {                                                            \
			fprintf(stderr, "%s:%d: expected %s == %s, got %lld and %lld\n",   \
				__FILE__, __LINE__, #a, #b, a_, b_);                       \
			test_failures++;                                                   \
		}                                                                          \
	} while (0)

#define EXPECT_STR(a, b)                                                                   \
	do {                                                                               \
		const char *a_ = (a), *b_ = (b);                                           \
		if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                   \
			fprintf(stderr, "%s:%d: expected %s == \"%s\", got \"%s\"\n",      \
				__FILE__, __LINE__, #a, b_ ? b_ : "(null)",                \
				a_ ? a_ : "(null)");                                       \
			test_failures++;                                                   \
		}                                                                          \
	} while (0)

#define TEST_DONE()                                                                        \
	do {                                                                               \
		if (test_failures) {                                                       \
			fprintf(stderr, "%d failure(s)\n", test_failures);                 \
			return 1;                                                          \
		}                                                                          \
		printf("ok\n");                                                            \
		return 0;                                                                  \
	} while (0)

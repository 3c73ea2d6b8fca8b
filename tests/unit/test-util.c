/* util: the NAME[:VERSION] references of models, environments and datasets. */
#include <stdint.h>
#include <stdlib.h>

#include "test.h"
#include "util.h"

static void check_ok(const char *ref, const char *name, int64_t version)
{
	char *n = NULL, *cause = NULL;
	int64_t v = -1;

	EXPECT_INT(util_parse_ref(ref, "dataset", &n, &v, &cause), 0);
	EXPECT_STR(n, name);
	EXPECT_INT(v, version);
	EXPECT(cause == NULL);
	free(n);
}

static void check_bad(const char *ref, const char *what, const char *text)
{
	char *n = NULL, *cause = NULL;
	int64_t v = -1;

	EXPECT_INT(util_parse_ref(ref, what, &n, &v, &cause), -22);
	EXPECT(n == NULL);
	EXPECT_INT(v, -1); /* untouched on failure */
	EXPECT(cause && strstr(cause, text));
	free(cause);
}

int main(void)
{
	check_ok("iris", "iris", 0);
	check_ok("iris:3", "iris", 3);
	check_ok("a.b-c_d:12", "a.b-c_d", 12);
	check_ok("iris data set:2", "iris data set", 2);
	check_bad("iris:0", "dataset", "NAME:VERSION");
	check_bad("iris:", "dataset", "NAME:VERSION");
	check_bad("iris:x", "dataset", "NAME:VERSION");
	check_bad("iris:-1", "dataset", "NAME:VERSION");
	check_bad(":1", "model", "not a model name");
	check_bad("-x", "environment", "not an environment name");
	check_bad("", "dataset", "not a dataset name");
	check_bad("a b ", "dataset", "not a dataset name");
	check_bad(" a b", "dataset", "not a dataset name");
	check_bad("a/b", "dataset", "not a dataset name");
	check_bad("a b", "model", "not a model name");
	TEST_DONE();
}

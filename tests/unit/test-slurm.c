/* The Slurm target's pure parts: how job states are read, and which REST
 * URLs are accepted. */
#include <stdlib.h>

#include "rest.h"
#include "slurm.h"
#include "test.h"

static void test_states(void)
{
	EXPECT_INT(slurm_state_phase("PENDING"), SLURM_PHASE_PENDING);
	EXPECT_INT(slurm_state_phase("CONFIGURING"), SLURM_PHASE_PENDING);
	EXPECT_INT(slurm_state_phase("REQUEUED"), SLURM_PHASE_PENDING);
	EXPECT_INT(slurm_state_phase("RUNNING"), SLURM_PHASE_RUNNING);
	EXPECT_INT(slurm_state_phase("SUSPENDED"), SLURM_PHASE_RUNNING);
	EXPECT_INT(slurm_state_phase("SIGNALING"), SLURM_PHASE_RUNNING);
	/* Flag states refine their base state: ending is not final. */
	EXPECT_INT(slurm_state_phase("COMPLETING"), SLURM_PHASE_ENDING);
	EXPECT_INT(slurm_state_phase("STAGE_OUT"), SLURM_PHASE_ENDING);
	EXPECT_INT(slurm_state_phase("COMPLETED"), SLURM_PHASE_ENDED);
	EXPECT_INT(slurm_state_phase("CANCELLED"), SLURM_PHASE_ENDED);
	EXPECT_INT(slurm_state_phase("OUT_OF_MEMORY"), SLURM_PHASE_ENDED);
	EXPECT_INT(slurm_state_phase("SOMETHING_NEW"), SLURM_PHASE_UNKNOWN);
	EXPECT_INT(slurm_state_phase(NULL), SLURM_PHASE_UNKNOWN);

	EXPECT(slurm_state_code("COMPLETED") == NULL);
	EXPECT(slurm_state_code("CANCELLED") == NULL);
	EXPECT_STR(slurm_state_code("FAILED"), "JobFailed");
	EXPECT_STR(slurm_state_code("TIMEOUT"), "Timeout");
	EXPECT_STR(slurm_state_code("DEADLINE"), "Timeout");
	EXPECT_STR(slurm_state_code("NODE_FAIL"), "NodeFail");
	EXPECT_STR(slurm_state_code("BOOT_FAIL"), "BootFail");
	EXPECT_STR(slurm_state_code("OUT_OF_MEMORY"), "OutOfMemory");
	EXPECT_STR(slurm_state_code("PREEMPTED"), "Preempted");
}

static void test_urls(void)
{
	static const char *const good[] = {"unix:/run/slurmrestd.sock", "http://head:6820",
					   "https://head.example.org:6820/api"};
	static const char *const bad[] = {"unix:relative", "ftp://x", "http://", "https:///x",
					  "http://a b", "", "slurm"};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char *cause = NULL;
		EXPECT(rest_base_valid(good[i], &cause));
		EXPECT(cause == NULL);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *cause = NULL;
		EXPECT(!rest_base_valid(bad[i], &cause));
		EXPECT(cause != NULL);
		free(cause);
	}
}

int main(void)
{
	test_states();
	test_urls();
	TEST_DONE();
}

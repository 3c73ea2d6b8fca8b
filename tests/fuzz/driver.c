/* Runs a libFuzzer target without libFuzzer: a fixed set of seeds, then
 * seeded random mutations of them, so a sanitizer build exercises the target
 * deterministically in the unit suite. Usage: fuzz-X [iterations]. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

extern const char *const fuzz_seeds[];
extern const size_t fuzz_seed_lens[];
extern const size_t fuzz_nseeds;

static uint64_t state = 0x9E3779B97F4A7C15ull;

static uint64_t next(void)
{
	/* xorshift64*: fixed seed, same sequence on every run. */
	state ^= state >> 12;
	state ^= state << 25;
	state ^= state >> 27;
	return state * 0x2545F4914F6CDD1Dull;
}

int main(int argc, char **argv)
{
	long iterations = argc > 1 ? atol(argv[1]) : 20000;
	uint8_t buf[8192];

	for (size_t i = 0; i < fuzz_nseeds; i++) {
		LLVMFuzzerTestOneInput((const uint8_t *)fuzz_seeds[i], fuzz_seed_lens[i]);
	}
	for (long it = 0; it < iterations; it++) {
		const size_t k = next() % fuzz_nseeds;
		size_t len = fuzz_seed_lens[k];
		memcpy(buf, fuzz_seeds[k], len);
		int edits = 1 + (int)(next() % 8);
		for (int e = 0; e < edits; e++) {
			size_t at = len ? next() % len : 0;
			switch (next() % 4) {
			case 0: /* flip a byte */
				if (len) {
					buf[at] ^= (uint8_t)(1u << (next() % 8));
				}
				break;
			case 1: /* random byte */
				if (len) {
					buf[at] = (uint8_t)next();
				}
				break;
			case 2: /* insert */
				if (len < sizeof(buf)) {
					memmove(buf + at + 1, buf + at, len - at);
					buf[at] = (uint8_t)next();
					len++;
				}
				break;
			default: /* cut */
				if (len) {
					memmove(buf + at, buf + at + 1, len - at - 1);
					len--;
				}
				break;
			}
		}
		LLVMFuzzerTestOneInput(buf, len);
	}
	printf("ok: %zu seeds, %ld mutations\n", fuzz_nseeds, iterations);
	return 0;
}

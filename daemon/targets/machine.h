/* What the local machine has for runs: CPUs (the daemon's affinity mask),
 * memory (MemTotal, or the daemon's cgroup limit when lower) and GPUs
 * (declared with --gpus, else NVML loaded with dlopen, else nvidia-smi).
 * Found once at start (docs/scheduling.md). */
#pragma once

#include "resources.h"

/* "N" or "N:SIZE" (SIZE per device, default 16G): N declared devices,
 * for machines where neither NVML nor nvidia-smi answers, and for tests. */
int machine_gpus_parse(const char *text, int *ret_n, int64_t *ret_mem, char **cause);

/* Fill p with the machine's totals; declared_gpus >= 0 replaces discovery
 * (0: no GPUs), each device of declared_gpu_mem bytes. Where the GPUs came
 * from goes to *ret_gpu_source (a static string). */
int machine_discover(struct res_pool *p, int declared_gpus, int64_t declared_gpu_mem,
		     const char **ret_gpu_source);

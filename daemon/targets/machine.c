/* Finding the local machine's capacity (machine.h). GPUs come from the
 * first source that answers: --gpus, NVML (libnvidia-ml.so.1 through
 * dlopen, so nothing is needed at build time), nvidia-smi. Memory is the
 * lower of MemTotal and the daemon's cgroup limit, so a daemon confined by
 * its unit does not promise runs memory it cannot have. */
#include "machine.h"

#include <dlfcn.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "msg.h"
#include "util.h"

#define GIB ((int64_t)1 << 30)

int machine_gpus_parse(const char *text, int *ret_n, int64_t *ret_mem, char **cause)
{
	char *end;
	long n = strtol(text, &end, 10);
	int64_t mem = 16 * GIB;

	if (end == text || n < 0 || n > RES_GPUS_MAX ||
	    (*end && (*end != ':' || res_size_parse(end + 1, &mem) < 0 || mem <= 0))) {
		*cause = msg_strdupf("--gpus wants N or N:SIZE (0 to %d devices, SIZE such as 16G "
				     "per device), not '%s'",
				     RES_GPUS_MAX, text);
		return -EINVAL;
	}
	*ret_n = (int)n;
	*ret_mem = mem;
	return 0;
}

static int64_t meminfo_total(void)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[256];
	long long kb = 0;

	if (!f) {
		return 0;
	}
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "MemTotal: %lld kB", &kb) == 1) {
			break;
		}
	}
	fclose(f);
	return (int64_t)kb * 1024;
}

/* The memory limit of the cgroup the daemon is in (v2 memory.max, v1
 * memory.limit_in_bytes); 0 when there is none or it cannot be read. */
static int64_t cgroup_limit(void)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	char line[4096], path[4200], *text = NULL;
	int64_t limit = 0;
	size_t len;

	if (!f) {
		return 0;
	}
	while (fgets(line, sizeof(line), f)) {
		char *rel, *nl = strchr(line, '\n');
		if (nl) {
			*nl = '\0';
		}
		if (strncmp(line, "0::", 3) == 0) {
			rel = line + 3;
			snprintf(path, sizeof(path), "/sys/fs/cgroup%s/memory.max", rel);
		} else if ((rel = strstr(line, ":memory:")) != NULL) {
			rel += strlen(":memory:");
			snprintf(path, sizeof(path), "/sys/fs/cgroup/memory%s/memory.limit_in_bytes",
				 rel);
		} else {
			continue;
		}
		if (util_read_file(path, 64, &text, &len) == 0) {
			long long v = strtoll(text, NULL, 10);
			/* "max", or v1's "no limit" (a page-rounded LLONG_MAX) */
			if (v > 0 && v < ((long long)1 << 60) && (limit == 0 || v < limit)) {
				limit = v;
			}
			free(text);
			text = NULL;
		}
	}
	fclose(f);
	return limit;
}

/* NVML, through dlopen: the entry points runyard uses, declared here. */
typedef int (*nvml_init_fn)(void);
typedef int (*nvml_count_fn)(unsigned *);
typedef int (*nvml_handle_fn)(unsigned, void **);
typedef int (*nvml_uuid_fn)(void *, char *, unsigned);
struct nvml_memory {
	unsigned long long total, free, used;
};
typedef int (*nvml_mem_fn)(void *, struct nvml_memory *);

static int gpus_nvml(struct res_pool *p)
{
	void *lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
	unsigned n = 0;

	if (!lib) {
		return -ENOENT;
	}
	nvml_init_fn init = (nvml_init_fn)dlsym(lib, "nvmlInit_v2");
	nvml_count_fn count = (nvml_count_fn)dlsym(lib, "nvmlDeviceGetCount_v2");
	nvml_handle_fn handle = (nvml_handle_fn)dlsym(lib, "nvmlDeviceGetHandleByIndex_v2");
	nvml_uuid_fn uuid = (nvml_uuid_fn)dlsym(lib, "nvmlDeviceGetUUID");
	nvml_mem_fn mem = (nvml_mem_fn)dlsym(lib, "nvmlDeviceGetMemoryInfo");
	int (*shutdown)(void) = (int (*)(void))dlsym(lib, "nvmlShutdown");

	if (!init || !count || !handle || !uuid || !mem || init() != 0) {
		dlclose(lib);
		return -ENOENT;
	}
	if (count(&n) == 0) {
		for (unsigned i = 0; i < n && p->ngpus < RES_GPUS_MAX; i++) {
			struct res_gpu *g = &p->gpus[p->ngpus];
			struct nvml_memory m = {0};
			void *h = NULL;
			if (handle(i, &h) != 0 || uuid(h, g->uuid, sizeof(g->uuid)) != 0 ||
			    mem(h, &m) != 0) {
				continue;
			}
			g->index = (int)i;
			g->mem = (int64_t)m.total;
			p->ngpus++;
		}
	}
	if (shutdown) {
		shutdown();
	}
	dlclose(lib);
	return p->ngpus > 0 ? 0 : -ENOENT;
}

static int gpus_smi(struct res_pool *p)
{
	FILE *f;
	char line[512];

	/* Only where it is installed: popen of a missing command still forks
	 * a shell that complains on stderr. */
	if (access("/usr/bin/nvidia-smi", X_OK) != 0 && access("/usr/local/bin/nvidia-smi", X_OK) != 0) {
		return -ENOENT;
	}
	f = popen("nvidia-smi --query-gpu=index,uuid,memory.total --format=csv,noheader,nounits "
		  "2>/dev/null",
		  "re");
	if (!f) {
		return -ENOENT;
	}
	while (fgets(line, sizeof(line), f) && p->ngpus < RES_GPUS_MAX) {
		struct res_gpu *g = &p->gpus[p->ngpus];
		long long mib = 0;
		int index;
		if (sscanf(line, "%d, %95[^,], %lld", &index, g->uuid, &mib) == 3 && mib > 0) {
			g->index = index;
			g->mem = (int64_t)mib << 20;
			p->ngpus++;
		}
	}
	pclose(f);
	return p->ngpus > 0 ? 0 : -ENOENT;
}

int machine_discover(struct res_pool *p, int declared_gpus, int64_t declared_gpu_mem,
		     const char **ret_gpu_source)
{
	cpu_set_t set;
	int64_t total = meminfo_total(), limit = cgroup_limit();

	memset(p, 0, sizeof(*p));
	CPU_ZERO(&set);
	p->cpus = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 0;
	if (p->cpus <= 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		p->cpus = n > 0 ? n : 1;
	}
	p->mem = limit > 0 && (total == 0 || limit < total) ? limit : total;
	if (declared_gpus >= 0) {
		for (int i = 0; i < declared_gpus; i++) {
			p->gpus[i].index = i;
			p->gpus[i].mem = declared_gpu_mem;
			snprintf(p->gpus[i].uuid, sizeof(p->gpus[i].uuid), "GPU-runyard-declared-%d",
				 i);
		}
		p->ngpus = declared_gpus;
		*ret_gpu_source = "declared (--gpus)";
	} else if (gpus_nvml(p) == 0) {
		*ret_gpu_source = "NVML";
	} else if (gpus_smi(p) == 0) {
		*ret_gpu_source = "nvidia-smi";
	} else {
		*ret_gpu_source = "none found";
	}
	return 0;
}

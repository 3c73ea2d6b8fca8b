#include "lazylib.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>

int lazylib_load(const char *soname, const char *const *names, void **fns, size_t n, char *err,
                 size_t errlen)
{
	/* The handle is never closed: the process is short and the library
	 * serves it until exit. dlopen counts references, so loading the same
	 * library twice costs nothing. */
	void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		snprintf(err, errlen, "cannot load %s: %s", soname, dlerror());
		return -ENOENT;
	}
	for (size_t i = 0; i < n; i++) {
		fns[i] = dlsym(h, names[i]);
		if (!fns[i]) {
			snprintf(err, errlen, "%s has no %s", soname, names[i]);
			return -ENOSYS;
		}
	}
	return 0;
}

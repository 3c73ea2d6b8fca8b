/* Shared libraries the CLI loads on first use instead of linking them. A
 * linked library is mapped, relocated and initialised in every CLI call,
 * with all its own dependencies: libcurl (TLS, Kerberos, LDAP, ...) cost
 * about 10 ms and libcrypto about 2 ms of each, on a machine where a whole
 * trivial run has a budget of about 10 ms. Only the verbs that need them
 * pay for them now. */
#pragma once

#include <stddef.h>

/* Load soname (once per process) and look up n functions by name into
 * fns[i]. 0, or a negative errno with what failed in err. */
int lazylib_load(const char *soname, const char *const *names, void **fns, size_t n, char *err,
                 size_t errlen);

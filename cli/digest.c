#include "digest.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "lazylib.h"

static struct {
	__typeof__(&EVP_MD_CTX_new) ctx_new;
	__typeof__(&EVP_MD_CTX_free) ctx_free;
	__typeof__(&EVP_sha256) sha256;
	__typeof__(&EVP_DigestInit_ex) init;
	__typeof__(&EVP_DigestUpdate) update;
	__typeof__(&EVP_DigestFinal_ex) final;
	__typeof__(&EVP_DecodeBlock) decode;
} api;
static int api_err = 1; /* 1: not loaded yet */

static int crypto_load(char *err, size_t errlen)
{
	static const char *const names[] = {
	    "EVP_MD_CTX_new",   "EVP_MD_CTX_free",    "EVP_sha256",      "EVP_DigestInit_ex",
	    "EVP_DigestUpdate", "EVP_DigestFinal_ex", "EVP_DecodeBlock",
	};
	void *fns[sizeof(names) / sizeof(names[0])];
	char ignored[128];

	if (!err) {
		err = ignored;
		errlen = sizeof(ignored);
	}
	if (api_err <= 0) {
		if (api_err < 0) {
			snprintf(err, errlen, "libcrypto could not be loaded");
		}
		return api_err;
	}
	api_err = lazylib_load("libcrypto.so.3", names, fns, sizeof(names) / sizeof(names[0]), err,
	                       errlen);
	if (api_err == 0) {
		*(void **)&api.ctx_new = fns[0];
		*(void **)&api.ctx_free = fns[1];
		*(void **)&api.sha256 = fns[2];
		*(void **)&api.init = fns[3];
		*(void **)&api.update = fns[4];
		*(void **)&api.final = fns[5];
		*(void **)&api.decode = fns[6];
	}
	return api_err;
}

struct digest {
	EVP_MD_CTX *md;
};

int digest_new(struct digest **ret, char *err, size_t errlen)
{
	struct digest *d;
	int r = crypto_load(err, errlen);

	if (r < 0) {
		return r;
	}
	d = calloc(1, sizeof(*d));
	if (!d || !(d->md = api.ctx_new())) {
		free(d);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	digest_reset(d);
	*ret = d;
	return 0;
}

void digest_reset(struct digest *d)
{
	api.init(d->md, api.sha256(), NULL);
}

void digest_update(struct digest *d, const void *p, size_t n)
{
	api.update(d->md, p, n);
}

void digest_final_hex(struct digest *d, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	api.final(d->md, md, &len);
	hex[0] = '\0';
	for (unsigned int i = 0; i < len && i < 32; i++) {
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	}
}

void digest_free(struct digest *d)
{
	if (d) {
		api.ctx_free(d->md);
		free(d);
	}
}

/* EVP_DecodeBlock counts the bytes that '=' padding stands for as decoded
 * zeros, so they come off. */
int digest_base64_decode(const char *s, unsigned char **buf, size_t *cap, size_t *ret_len)
{
	size_t len = strlen(s), need, pad = 0;
	int n, r;

	r = crypto_load(NULL, 0);
	if (r < 0) {
		return r;
	}
	while (len > 0 && isspace((unsigned char)s[len - 1])) {
		len--;
	}
	if (len % 4 != 0 || len > INT_MAX) {
		return -EINVAL;
	}
	need = len / 4 * 3 + 1;
	if (need > *cap) {
		unsigned char *nb = realloc(*buf, need);
		if (!nb) {
			return -ENOMEM;
		}
		*buf = nb;
		*cap = need;
	}
	n = api.decode(*buf, (const unsigned char *)s, (int)len);
	if (n < 0) {
		return -EINVAL;
	}
	if (len >= 1 && s[len - 1] == '=') {
		pad++;
	}
	if (len >= 2 && s[len - 2] == '=') {
		pad++;
	}
	*ret_len = (size_t)n - pad;
	return 0;
}

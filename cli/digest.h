/* SHA-256 and base64 for the CLI's downloads, with libcrypto loaded on
 * first use (lazylib.h says why). */
#pragma once

#include <stddef.h>

struct digest;

/* A SHA-256 context, started. -ENOENT/-ENOSYS with err when libcrypto
 * cannot be loaded, -ENOMEM. */
int digest_new(struct digest **ret, char *err, size_t errlen);

/* Start again, for the next file. */
void digest_reset(struct digest *d);

void digest_update(struct digest *d, const void *p, size_t n);

/* The digest as 64 lowercase hex digits plus NUL. */
void digest_final_hex(struct digest *d, char hex[65]);

/* Accepts NULL. */
void digest_free(struct digest *d);

/* Decode base64 (trailing white space allowed) into *buf, grown as needed;
 * -EINVAL when it is not base64, -ENOMEM, or the error of loading libcrypto. */
int digest_base64_decode(const char *s, unsigned char **buf, size_t *cap, size_t *ret_len);

#include <stdlib.h>
#include <string.h>

#include "msg.h"

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0 when the
 * bytes there are not one: overlongs, surrogates and values past U+10FFFF
 * are rejected, as a strict JSON reader would. */
static size_t valid_seq(const unsigned char *p, size_t n)
{
	unsigned c = p[0];
	size_t need;
	unsigned min, cp;

	if (c < 0x80) {
		return 1;
	} else if ((c & 0xE0) == 0xC0) {
		need = 2, min = 0x80, cp = c & 0x1F;
	} else if ((c & 0xF0) == 0xE0) {
		need = 3, min = 0x800, cp = c & 0x0F;
	} else if ((c & 0xF8) == 0xF0) {
		need = 4, min = 0x10000, cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < need) {
		return 0;
	}
	for (size_t i = 1; i < need; i++) {
		if ((p[i] & 0xC0) != 0x80) {
			return 0;
		}
		cp = cp << 6 | (p[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
		return 0;
	}
	return need;
}

char *utf8_sanitize(const char *s, size_t len, size_t *ret_len)
{
	/* Worst case every byte becomes the 3-byte replacement character. */
	char *out = malloc(len * 3 + 1);
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0, i = 0;

	if (!out) {
		return NULL;
	}
	while (i < len) {
		size_t k = valid_seq(p + i, len - i);
		if (k == 0) {
			memcpy(out + o, "\xEF\xBF\xBD", 3);
			o += 3;
			i++;
		} else if (k == 1 && p[i] == 0) {
			i++;
		} else {
			memcpy(out + o, p + i, k);
			o += k;
			i += k;
		}
	}
	out[o] = '\0';
	if (ret_len) {
		*ret_len = o;
	}
	return out;
}

bool utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		size_t k = valid_seq(p + i, len - i);
		if (k == 0) {
			return false;
		}
		i += k;
	}
	return true;
}

const char *msg_payload_problem(const char *p, size_t len)
{
	if (!utf8_valid(p, len)) {
		return "the request is not valid UTF-8";
	}
	/* A \u0000 escape: after an odd run of backslashes (an even one is
	 * escaped backslashes, then a plain 'u'). */
	for (const char *q = p; (q = memchr(q, '\\', (size_t)(p + len - q))) != NULL;) {
		const char *run = q;
		while (q < p + len && *q == '\\') {
			q++;
		}
		if ((q - run) % 2 == 1 && (size_t)(p + len - q) >= 5 && memcmp(q, "u0000", 5) == 0) {
			return "a string in the request holds a NUL character (\\u0000), which "
			       "runyard does not take";
		}
	}
	return NULL;
}

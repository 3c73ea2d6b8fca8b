#include "frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

void frame_reader_init(struct frame_reader *fr, size_t limit)
{
	memset(fr, 0, sizeof(*fr));
	fr->limit = limit;
}

void frame_reader_finish(struct frame_reader *fr)
{
	free(fr->buf);
	fr->buf = NULL;
	fr->len = fr->cap = fr->consumed = 0;
}

/* Drop bytes already handed out, so the buffer holds only unread data. */
static void compact(struct frame_reader *fr)
{
	if (fr->consumed == 0) {
		return;
	}
	memmove(fr->buf, fr->buf + fr->consumed, fr->len - fr->consumed);
	fr->len -= fr->consumed;
	fr->consumed = 0;
}

char *frame_reader_space(struct frame_reader *fr, size_t want, size_t *ret_room)
{
	size_t max = PROTO_HEADER_LEN + fr->limit;

	compact(fr);
	if (want == 0) {
		want = 1;
	}
	/* Never grow past one full frame: more than that in the buffer means a
	 * whole frame is already there and will be taken before reading on. */
	if (fr->len + want > max) {
		want = max > fr->len ? max - fr->len : 0;
	}
	if (fr->cap - fr->len < want) {
		size_t ncap = fr->cap ? fr->cap : 4096;
		while (ncap < fr->len + want) {
			ncap *= 2;
		}
		if (ncap > max) {
			ncap = max;
		}
		char *nbuf = realloc(fr->buf, ncap);
		if (!nbuf) {
			*ret_room = 0;
			return NULL;
		}
		fr->buf = nbuf;
		fr->cap = ncap;
	}
	*ret_room = fr->cap - fr->len;
	return fr->buf + fr->len;
}

void frame_reader_commit(struct frame_reader *fr, size_t n)
{
	fr->len += n;
}

int frame_reader_feed(struct frame_reader *fr, const void *data, size_t n)
{
	const char *p = data;

	while (n > 0) {
		size_t room;
		char *dst = frame_reader_space(fr, n, &room);
		if (!dst) {
			return -ENOMEM;
		}
		if (room == 0) {
			/* Full: the caller must take frames first. */
			return -ENOBUFS;
		}
		size_t take = n < room ? n : room;
		memcpy(dst, p, take);
		frame_reader_commit(fr, take);
		p += take;
		n -= take;
	}
	return 0;
}

int frame_reader_next(struct frame_reader *fr, const char **ret_payload, size_t *ret_len)
{
	size_t avail = fr->len - fr->consumed;
	const unsigned char *p = (const unsigned char *)fr->buf + fr->consumed;

	if (avail < PROTO_MAGIC_LEN) {
		/* Reject a wrong magic as soon as its first bytes show it. */
		if (avail > 0 && memcmp(p, PROTO_MAGIC, avail) != 0) {
			return -EPROTO;
		}
		return 0;
	}
	if (memcmp(p, PROTO_MAGIC, PROTO_MAGIC_LEN) != 0) {
		return -EPROTO;
	}
	if (avail < PROTO_HEADER_LEN) {
		return 0;
	}
	uint32_t len = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 | (uint32_t)p[6] << 8 | p[7];
	if (len > fr->limit) {
		return -EMSGSIZE;
	}
	if (avail < PROTO_HEADER_LEN + (size_t)len) {
		return 0;
	}
	*ret_payload = (const char *)p + PROTO_HEADER_LEN;
	*ret_len = len;
	fr->consumed += PROTO_HEADER_LEN + len;
	return 1;
}

void frame_header(char hdr[8], uint32_t len)
{
	memcpy(hdr, PROTO_MAGIC, PROTO_MAGIC_LEN);
	hdr[4] = (char)(len >> 24);
	hdr[5] = (char)(len >> 16);
	hdr[6] = (char)(len >> 8);
	hdr[7] = (char)len;
}

char *frame_encode(const char *payload, size_t len, size_t *ret_len)
{
	if (len > PROTO_FRAME_MAX) {
		return NULL;
	}
	char *buf = malloc(PROTO_HEADER_LEN + len);
	if (!buf) {
		return NULL;
	}
	frame_header(buf, (uint32_t)len);
	memcpy(buf + PROTO_HEADER_LEN, payload, len);
	*ret_len = PROTO_HEADER_LEN + len;
	return buf;
}

/* Framing: 4 magic bytes, a big-endian uint32 payload length, the payload. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Incremental decoder over a byte stream. The buffer only ever holds one
 * partial frame plus what arrived with it, and never more than
 * PROTO_HEADER_LEN + limit bytes, so a peer cannot grow it without bound. */
struct frame_reader {
	char *buf;
	size_t len;
	size_t cap;
	size_t limit;
	size_t consumed; /* bytes of buf already handed out by frame_reader_next */
};

/* Prepare a reader that accepts payloads up to limit bytes. */
void frame_reader_init(struct frame_reader *fr, size_t limit);

/* Free the reader's buffer; the struct itself is the caller's. */
void frame_reader_finish(struct frame_reader *fr);

/* Reserve room for at least want bytes at the end of the buffer; returns a
 * pointer to write into and the room available (may be less than want only
 * when the limit caps it). For libuv's alloc callback. */
char *frame_reader_space(struct frame_reader *fr, size_t want, size_t *ret_room);

/* Account for n bytes written into the space returned above. */
void frame_reader_commit(struct frame_reader *fr, size_t n);

/* Append bytes (copying). Returns 0 or -ENOMEM. */
int frame_reader_feed(struct frame_reader *fr, const void *data, size_t n);

/* Take the next whole frame: returns 1 and points *ret_payload and *ret_len into
 * the reader's buffer (valid until the next call), 0 when more bytes are
 * needed, -EPROTO on a wrong magic, -EMSGSIZE when the announced length is
 * over the limit. After an error the stream is unusable. */
int frame_reader_next(struct frame_reader *fr, const char **ret_payload, size_t *ret_len);

/* Write the 8-byte header for a payload of len bytes into hdr. */
void frame_header(char hdr[8], uint32_t len);

/* Allocate header + payload in one buffer: returns it and its total size in
 * *ret_len, or NULL on allocation failure or a payload over the limit. */
char *frame_encode(const char *payload, size_t len, size_t *ret_len);

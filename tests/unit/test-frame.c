/* Framing and message helpers of proto/. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "msg.h"
#include "proto.h"
#include "test.h"

static void test_roundtrip_split(void)
{
	struct frame_reader fr;
	const char *payload;
	size_t len, total;
	char *a = frame_encode("{\"a\":1}", 7, &total);
	char *b = frame_encode("{}", 2, &len);
	char stream[64];

	memcpy(stream, a, total);
	memcpy(stream + total, b, len);
	total += len;
	frame_reader_init(&fr, PROTO_FRAME_MAX);
	/* Byte by byte: a frame is only handed out once whole. */
	int frames = 0;
	for (size_t i = 0; i < total; i++) {
		EXPECT_INT(frame_reader_feed(&fr, stream + i, 1), 0);
		int r;
		while ((r = frame_reader_next(&fr, &payload, &len)) == 1) {
			frames++;
			if (frames == 1) {
				EXPECT_INT(len, 7);
				EXPECT(memcmp(payload, "{\"a\":1}", 7) == 0);
			} else {
				EXPECT_INT(len, 2);
			}
		}
		EXPECT_INT(r, 0);
	}
	EXPECT_INT(frames, 2);
	frame_reader_finish(&fr);
	free(a);
	free(b);
}

static void test_bad_magic(void)
{
	struct frame_reader fr;
	const char *payload;
	size_t len;

	frame_reader_init(&fr, PROTO_FRAME_MAX);
	/* Caught at the first wrong byte, before a whole header is there. */
	frame_reader_feed(&fr, "GE", 2);
	EXPECT_INT(frame_reader_next(&fr, &payload, &len), -EPROTO);
	frame_reader_finish(&fr);
}

static void test_oversized(void)
{
	struct frame_reader fr;
	const char *payload;
	size_t len;
	char hdr[8];

	frame_reader_init(&fr, 1024);
	frame_header(hdr, 0xFFFFFFFFu);
	frame_reader_feed(&fr, hdr, 8);
	EXPECT_INT(frame_reader_next(&fr, &payload, &len), -EMSGSIZE);
	/* Nothing was allocated for the announced size. */
	EXPECT(fr.cap < 1024 * 1024);
	frame_reader_finish(&fr);

	EXPECT(frame_encode("x", PROTO_FRAME_MAX + 1, &len) == NULL);
}

static void test_buffer_bounded(void)
{
	struct frame_reader fr;
	char hdr[8];
	size_t room;

	frame_reader_init(&fr, 100);
	frame_header(hdr, 100);
	frame_reader_feed(&fr, hdr, 8);
	/* The reader never offers room past one whole frame. */
	frame_reader_space(&fr, 1 << 20, &room);
	EXPECT(room <= 100);
	frame_reader_finish(&fr);
}

static void test_args(void)
{
	cJSON *args = cJSON_Parse("{\"s\":\"x\",\"n\":3,\"f\":1.5,\"b\":true,\"arr\":[\"a\",1],"
				  "\"map\":{\"K\":\"V\"},\"nul\":null}");
	const char *s = NULL;
	int64_t n = 0;
	double f = 0;
	bool b = false;
	const cJSON *arr = NULL, *map = NULL;
	char *cause = NULL;

	EXPECT_INT(msg_arg_string(args, "s", true, &s, &cause), 0);
	EXPECT_STR(s, "x");
	EXPECT_INT(msg_arg_string(args, "n", true, &s, &cause), -EINVAL);
	EXPECT_STR(cause, "argument 'n' must be a string");
	free(cause);
	cause = NULL;
	EXPECT_INT(msg_arg_int(args, "n", true, 0, 10, &n, &cause), 0);
	EXPECT_INT(n, 3);
	EXPECT_INT(msg_arg_int(args, "f", true, 0, 10, &n, &cause), -EINVAL);
	free(cause);
	cause = NULL;
	EXPECT_INT(msg_arg_int(args, "n", true, 5, 10, &n, &cause), -EINVAL);
	free(cause);
	cause = NULL;
	EXPECT_INT(msg_arg_number(args, "f", true, 0, 10, &f, &cause), 0);
	EXPECT(f == 1.5);
	EXPECT_INT(msg_arg_bool(args, "b", true, &b, &cause), 0);
	EXPECT(b);
	EXPECT_INT(msg_arg_string_array(args, "arr", true, &arr, &cause), -EINVAL);
	free(cause);
	cause = NULL;
	EXPECT_INT(msg_arg_string_map(args, "map", true, &map, &cause), 0);
	/* Absent or null and optional: untouched, no error. */
	s = "keep";
	EXPECT_INT(msg_arg_string(args, "nul", false, &s, &cause), 0);
	EXPECT_INT(msg_arg_string(args, "missing", false, &s, &cause), 0);
	EXPECT_STR(s, "keep");
	EXPECT_INT(msg_arg_string(args, "missing", true, &s, &cause), -EINVAL);
	EXPECT_STR(cause, "argument 'missing' is required");
	free(cause);
	cJSON_Delete(args);
}

static void test_time_and_utf8(void)
{
	char buf[32];
	double t;
	size_t len;

	msg_format_time(1764302583.123456, buf);
	EXPECT_STR(buf, "2025-11-28T04:03:03.123456Z");
	EXPECT_INT(msg_parse_time(buf, &t), 0);
	EXPECT(t > 1764302583.1234 && t < 1764302583.1235);
	EXPECT_INT(msg_parse_time("yesterday", &t), -EINVAL);

	char *s = utf8_sanitize("ok \xff\xfe h\xc3\xa9 \xed\xa0\x80", 14, &len);
	EXPECT_STR(s, "ok \xEF\xBF\xBD\xEF\xBF\xBD h\xc3\xa9 \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
	free(s);
	s = utf8_sanitize("a\0b", 3, &len);
	EXPECT_STR(s, "ab");
	free(s);
}

static void test_reply_shapes(void)
{
	cJSON *m = msg_reply_error(7, PROTO_E_NOT_FOUND, "no run '%s'", "x");
	char *text = msg_print(m, NULL);

	EXPECT_STR(text, "{\"id\":7,\"ok\":false,\"error\":{\"code\":\"NotFound\",\"message\":\"no run 'x'\"}}");
	free(text);
	cJSON_Delete(m);
	m = msg_event("run.log", 3, NULL);
	text = msg_print(m, NULL);
	EXPECT_STR(text, "{\"event\":\"run.log\",\"sub\":3,\"data\":{}}");
	free(text);
	cJSON_Delete(m);
}

int main(void)
{
	test_roundtrip_split();
	test_bad_magic();
	test_oversized();
	test_buffer_bounded();
	test_args();
	test_time_and_utf8();
	test_reply_shapes();
	TEST_DONE();
}

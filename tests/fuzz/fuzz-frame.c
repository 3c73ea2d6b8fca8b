/* Fuzz target: the frame decoder and the message parser of proto/.
 *
 * Bytes are fed to a frame reader in pieces whose sizes come from the input
 * itself; every whole frame is parsed as JSON and its fields are read the
 * way the daemon reads a request. Built with clang -fsanitize=fuzzer this is
 * a libFuzzer target; otherwise driver.c replays seeds and mutations of them,
 * so the unit suite runs it under the sanitizers on every build. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "msg.h"
#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void read_request(const cJSON *msg)
{
	const cJSON *args = cJSON_GetObjectItemCaseSensitive(msg, "args");
	const char *s = NULL;
	int64_t n = 0;
	double d = 0;
	bool b = false;
	const cJSON *arr = NULL;
	char *cause = NULL;

	msg_arg_string(args, "source", false, &s, &cause);
	free(cause);
	cause = NULL;
	msg_arg_int(args, "priority", false, -1000, 1000, &n, &cause);
	free(cause);
	cause = NULL;
	msg_arg_number(args, "timeout", false, 0.001, 1e9, &d, &cause);
	free(cause);
	cause = NULL;
	msg_arg_bool(args, "keep", false, &b, &cause);
	free(cause);
	cause = NULL;
	msg_arg_string_array(args, "command", false, &arr, &cause);
	free(cause);
	cause = NULL;
	msg_arg_string_map(args, "env", false, &arr, &cause);
	free(cause);
	if (s) {
		size_t len;
		free(utf8_sanitize(s, strlen(s), &len));
	}
	char *text = msg_print(msg, NULL);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct frame_reader fr;
	const char *payload;
	size_t len, pos = 0;
	int r = 0;

	/* A small limit, so oversized frames are reached with small inputs. */
	frame_reader_init(&fr, 4096);
	while (pos < size && r >= 0) {
		size_t piece = 1 + data[pos] % 64;
		if (piece > size - pos) {
			piece = size - pos;
		}
		if (frame_reader_feed(&fr, data + pos, piece) < 0) {
			break;
		}
		pos += piece;
		while ((r = frame_reader_next(&fr, &payload, &len)) == 1) {
			cJSON *msg = cJSON_ParseWithLength(payload, len);
			if (cJSON_IsObject(msg)) {
				read_request(msg);
			}
			cJSON_Delete(msg);
		}
	}
	frame_reader_finish(&fr);
	return 0;
}

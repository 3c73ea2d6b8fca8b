#include "client.h"

#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "msg.h"
#include "proto.h"

/* How much to ask the kernel for per read; frames of several MiB (a page of
 * log lines) then take a handful of reads, and small replies one. */
#define READ_CHUNK (256 * 1024)

struct event_node {
	cJSON *msg;
	struct event_node *next;
};

struct client {
	int fd;
	char *path;
	int64_t next_id;
	struct frame_reader fr;
	cJSON *hello;
	struct event_node *head;
	struct event_node *tail;
};

void client_error_finish(struct client_error *err)
{
	if (!err) {
		return;
	}
	free(err->code);
	free(err->message);
	err->code = NULL;
	err->message = NULL;
}

__attribute__((format(printf, 3, 4))) static int fail(struct client_error *err, int r,
						      const char *fmt, ...)
{
	va_list ap;
	char *text = NULL;

	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0) {
		text = NULL;
	}
	va_end(ap);
	if (err) {
		client_error_finish(err);
		err->message = text ? text : strdup("out of memory");
	} else {
		free(text);
	}
	return r;
}

/* An environment variable that is set, not empty and an absolute path; the
 * XDG base directory rules say relative values are to be ignored. */
static const char *abs_env(const char *name)
{
	const char *v = getenv(name);

	return v && v[0] == '/' ? v : NULL;
}

int client_state_dir(char **ret_dir)
{
	const char *base = abs_env("XDG_STATE_HOME");
	const char *home;
	char *dir;

	if (base) {
		dir = msg_strdupf("%s/runyard", base);
	} else {
		home = abs_env("HOME");
		if (!home) {
			struct passwd *pw = getpwuid(getuid());
			home = pw && pw->pw_dir && pw->pw_dir[0] == '/' ? pw->pw_dir : NULL;
		}
		if (!home) {
			return -ENOENT;
		}
		dir = msg_strdupf("%s/.local/state/runyard", home);
	}
	if (!dir) {
		return -ENOMEM;
	}
	*ret_dir = dir;
	return 0;
}

int client_socket_path(const char *override, char **ret_path)
{
	const char *env = getenv("RUNYARD_SOCKET");
	const char *runtime = abs_env("XDG_RUNTIME_DIR");
	char *path = NULL;

	if (override && override[0]) {
		path = strdup(override);
	} else if (env && env[0]) {
		path = strdup(env);
	} else if (runtime) {
		path = msg_strdupf("%s/runyard/runyard.sock", runtime);
	} else {
		char *dir;
		int r = client_state_dir(&dir);
		if (r < 0) {
			return r;
		}
		path = msg_strdupf("%s/runyard.sock", dir);
		free(dir);
	}
	if (!path) {
		return -ENOMEM;
	}
	*ret_path = path;
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int send_all(struct client *c, const char *buf, size_t len, struct client_error *err)
{
	while (len > 0) {
		/* MSG_NOSIGNAL: a daemon that went away is an error to report,
		 * not a SIGPIPE that kills the CLI without a word. */
		ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			int e = errno;
			return fail(err, -e, "lost connection to runyardd at %s: %s", c->path,
				    strerror(e));
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read until one whole message is parsed. deadline is a now_ms() value, or
 * negative for none. Returns 1 with *ret_msg, 0 when the deadline passed,
 * or a negative errno. */
static int read_msg(struct client *c, int64_t deadline, cJSON **ret_msg, struct client_error *err)
{
	for (;;) {
		const char *payload;
		size_t len, room;
		int r = frame_reader_next(&c->fr, &payload, &len);

		if (r == -EMSGSIZE) {
			return fail(err, r, "runyardd at %s sent a frame over the %u byte limit",
				    c->path, PROTO_FRAME_MAX);
		}
		if (r < 0) {
			return fail(err, r, "runyardd at %s sent a malformed frame (wrong magic)",
				    c->path);
		}
		if (r == 1) {
			cJSON *msg = cJSON_ParseWithLength(payload, len);
			if (!cJSON_IsObject(msg)) {
				cJSON_Delete(msg);
				return fail(err, -EBADMSG,
					    "runyardd at %s sent a message that is not a JSON object",
					    c->path);
			}
			*ret_msg = msg;
			return 1;
		}
		if (deadline >= 0) {
			struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
			int64_t left = deadline - now_ms();
			if (left <= 0) {
				return 0;
			}
			r = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
			if (r < 0 && errno != EINTR) {
				int e = errno;
				return fail(err, -e, "poll: %s", strerror(e));
			}
			if (r <= 0) {
				continue;
			}
		}
		char *dst = frame_reader_space(&c->fr, READ_CHUNK, &room);
		if (!dst) {
			return fail(err, -ENOMEM, "out of memory reading from runyardd");
		}
		if (room == 0) {
			/* Cannot happen: a full buffer holds a whole frame. */
			return fail(err, -EPROTO, "runyardd at %s: frame buffer full", c->path);
		}
		ssize_t n = read(c->fd, dst, room);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			int e = errno;
			return fail(err, -e, "lost connection to runyardd at %s: %s", c->path,
				    strerror(e));
		}
		if (n == 0) {
			return fail(err, -ECONNRESET, "runyardd at %s closed the connection",
				    c->path);
		}
		frame_reader_commit(&c->fr, (size_t)n);
	}
}

static int enqueue(struct client *c, cJSON *msg)
{
	struct event_node *node = malloc(sizeof(*node));

	if (!node) {
		return -ENOMEM;
	}
	node->msg = msg;
	node->next = NULL;
	if (c->tail) {
		c->tail->next = node;
	} else {
		c->head = node;
	}
	c->tail = node;
	return 0;
}

static cJSON *dequeue(struct client *c)
{
	struct event_node *node = c->head;
	cJSON *msg;

	if (!node) {
		return NULL;
	}
	c->head = node->next;
	if (!c->head) {
		c->tail = NULL;
	}
	msg = node->msg;
	free(node);
	return msg;
}

/* Fill err from a reply's {"error": {"code", "message"}}. */
static int error_reply(const cJSON *reply, struct client_error *err)
{
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(reply, "error");
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "code");
	const cJSON *message = cJSON_GetObjectItemCaseSensitive(e, "message");
	const char *cs = cJSON_IsString(code) ? code->valuestring : PROTO_E_INTERNAL;

	fail(err, -EREMOTEIO, "%s",
	     cJSON_IsString(message) && message->valuestring[0] ? message->valuestring : cs);
	if (err) {
		err->code = strdup(cs);
		if (!err->code) {
			return fail(err, -ENOMEM, "out of memory");
		}
	}
	return -EREMOTEIO;
}

int client_call(struct client *c, const char *op, const cJSON *args, cJSON **ret_result,
		struct client_error *err)
{
	int64_t id = c->next_id++;
	/* A reference: the request borrows the caller's args, so the caller
	 * keeps the one owner of that tree. */
	cJSON *ref = cJSON_IsObject(args) ? cJSON_CreateObjectReference(args->child) : NULL;
	cJSON *req = msg_request(id, op, ref);
	char *text = NULL, *frame = NULL;
	size_t text_len = 0, frame_len = 0;
	cJSON *reply = NULL;
	int r;

	text = msg_print(req, &text_len);
	if (!text) {
		r = fail(err, -ENOMEM, "out of memory building the %s request", op);
		goto out;
	}
	frame = frame_encode(text, text_len, &frame_len);
	if (!frame) {
		r = fail(err, -EMSGSIZE, "the %s request is over the %u byte frame limit", op,
			 PROTO_FRAME_MAX);
		goto out;
	}
	r = send_all(c, frame, frame_len, err);
	if (r < 0) {
		goto out;
	}
	for (;;) {
		const cJSON *rid, *ok;

		r = read_msg(c, -1, &reply, err);
		if (r < 0) {
			goto out;
		}
		if (cJSON_GetObjectItemCaseSensitive(reply, "event")) {
			r = enqueue(c, reply);
			reply = NULL;
			if (r < 0) {
				r = fail(err, r, "out of memory queueing events");
				goto out;
			}
			continue;
		}
		rid = cJSON_GetObjectItemCaseSensitive(reply, "id");
		ok = cJSON_GetObjectItemCaseSensitive(reply, "ok");
		/* id 0 is the daemon's answer to a payload it could not read as
		 * a request: ours, since only one is outstanding. */
		if (cJSON_IsNumber(rid) && (rid->valuedouble == (double)id ||
					    (rid->valuedouble == 0 && cJSON_IsFalse(ok)))) {
			break;
		}
		cJSON_Delete(reply);
		reply = NULL;
	}
	if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "ok"))) {
		r = error_reply(reply, err);
		goto out;
	}
	cJSON *result = cJSON_DetachItemFromObjectCaseSensitive(reply, "result");
	if (!result) {
		result = cJSON_CreateObject();
	}
	if (!result) {
		r = fail(err, -ENOMEM, "out of memory");
		goto out;
	}
	*ret_result = result;
	r = 0;
out:
	cJSON_Delete(reply);
	free(frame);
	free(text);
	cJSON_Delete(req);
	return r;
}

int client_next_event(struct client *c, int timeout_ms, cJSON **ret_event,
		      struct client_error *err)
{
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	cJSON *msg = dequeue(c);

	while (!msg) {
		int r = read_msg(c, deadline, &msg, err);
		if (r <= 0) {
			return r;
		}
		if (!cJSON_GetObjectItemCaseSensitive(msg, "event")) {
			/* A reply nobody waits for: nothing to do with it. */
			cJSON_Delete(msg);
			msg = NULL;
		}
	}
	*ret_event = msg;
	return 1;
}

bool client_event_pending(struct client *c)
{
	struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
	size_t avail = c->fr.len - c->fr.consumed;

	if (c->head) {
		return true;
	}
	if (avail >= PROTO_HEADER_LEN) {
		const unsigned char *p = (const unsigned char *)c->fr.buf + c->fr.consumed;
		uint32_t len = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 |
			       (uint32_t)p[6] << 8 | p[7];
		if (avail >= PROTO_HEADER_LEN + (size_t)len) {
			return true;
		}
	}
	return poll(&pfd, 1, 0) > 0;
}

int client_connect(const char *path, struct client **ret_client, struct client_error *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct client *c = NULL;
	cJSON *args = NULL, *result = NULL;
	const cJSON *proto;
	int r;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		return fail(err, -ENAMETOOLONG,
			    "cannot connect to runyardd at %s: the path is longer than %zu bytes",
			    path, sizeof(sa.sun_path) - 1);
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	c = calloc(1, sizeof(*c));
	if (!c) {
		return fail(err, -ENOMEM, "out of memory");
	}
	c->next_id = 1;
	frame_reader_init(&c->fr, PROTO_FRAME_MAX);
	c->path = strdup(path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!c->path || c->fd < 0) {
		int e = c->path ? errno : ENOMEM;
		r = fail(err, -e, "cannot create a socket: %s", strerror(e));
		goto out;
	}
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		r = fail(err, -e, "cannot connect to runyardd at %s: %s", path, strerror(e));
		goto out;
	}

	args = cJSON_CreateObject();
	cJSON_AddNumberToObject(args, "proto", PROTO_VERSION);
	cJSON_AddStringToObject(args, "client", "runyard/" RUNYARD_VERSION);
	r = client_call(c, "hello", args, &result, err);
	if (r < 0) {
		/* err already names the daemon and what went wrong. */
		goto out;
	}
	proto = cJSON_GetObjectItemCaseSensitive(result, "proto");
	if (cJSON_IsNumber(proto) && proto->valuedouble != PROTO_VERSION) {
		r = fail(err, -EPROTONOSUPPORT,
			 "runyardd at %s speaks protocol %g, this runyard speaks protocol %d",
			 path, proto->valuedouble, PROTO_VERSION);
		goto out;
	}
	c->hello = result;
	result = NULL;
	*ret_client = c;
	c = NULL;
	r = 0;
out:
	cJSON_Delete(result);
	cJSON_Delete(args);
	client_destroy(c);
	return r;
}

const cJSON *client_hello(const struct client *c)
{
	return c->hello;
}

void client_destroy(struct client *c)
{
	cJSON *msg;

	if (!c) {
		return;
	}
	while ((msg = dequeue(c))) {
		cJSON_Delete(msg);
	}
	if (c->fd >= 0) {
		close(c->fd);
	}
	frame_reader_finish(&c->fr);
	cJSON_Delete(c->hello);
	free(c->path);
	free(c);
}

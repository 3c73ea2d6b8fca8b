#include "request.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "blob.h"
#include "context.h"
#include "msg.h"
#include "proto.h"
#include "server.h"
#include "store.h"

void request_reply(struct request *req, cJSON *result)
{
	cJSON *m = msg_reply_ok(req->id, result);

	if (conn_send(req->conn, m) < 0) {
		/* Only a result over the frame limit gets here; say so instead. */
		cJSON_Delete(m);
		request_error(req, PROTO_E_TOO_LARGE, "the result does not fit in one frame");
		return;
	}
	cJSON_Delete(m);
}

void request_error(struct request *req, const char *code, const char *fmt, ...)
{
	char *text = NULL;
	va_list ap;
	cJSON *m;

	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0) {
		text = NULL;
	}
	va_end(ap);
	m = msg_reply_error(req->id, code, "%s", text ? text : code);
	conn_send(req->conn, m);
	cJSON_Delete(m);
	free(text);
}

void request_error_errno(struct request *req, int err, const char *cause)
{
	const char *code;

	switch (err) {
	case -ENOENT:
		code = PROTO_E_NOT_FOUND;
		break;
	case -EINVAL:
	case -ENOTDIR:
	case -ENAMETOOLONG:
	case -EBADMSG: /* input that is not what it claims to be (an archive) */
		code = PROTO_E_INVALID_ARGUMENT;
		break;
	case -EFBIG:
	case -E2BIG:
		code = PROTO_E_TOO_LARGE;
		break;
	case -EACCES:
	case -EPERM:
		code = PROTO_E_PERMISSION;
		break;
	case -EBUSY:
	case -EALREADY:
	case -EAGAIN: /* the input changed under us (a snapshot's source): try again */
		code = PROTO_E_CONFLICT;
		break;
	default:
		code = PROTO_E_INTERNAL;
		break;
	}
	request_error(req, code, "%s", cause ? cause : strerror(-err));
}

struct request *request_hold(const struct request *req)
{
	struct request *h = malloc(sizeof(*h));

	if (!h) {
		return NULL;
	}
	*h = *req;
	h->args = NULL;
	conn_ref(h->conn);
	return h;
}

void request_release(struct request *req)
{
	if (req) {
		conn_unref(req->conn);
		free(req);
	}
}

void request_arg_error(struct request *req, char *cause)
{
	request_error(req, PROTO_E_INVALID_ARGUMENT, "%s", cause ? cause : "invalid argument");
	free(cause);
}

int request_resolve_run_arg(struct request *req, const char *key, int64_t *ret_seq)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(req->args, key);
	char buf[32];
	const char *ref;

	if (cJSON_IsNumber(v) && v->valuedouble >= 1 && v->valuedouble < 1e15 &&
	    v->valuedouble == (double)(int64_t)v->valuedouble) {
		snprintf(buf, sizeof(buf), "%lld", (long long)v->valuedouble);
		ref = buf;
	} else if (cJSON_IsString(v) && v->valuestring[0]) {
		ref = v->valuestring;
	} else {
		request_error(req, PROTO_E_INVALID_ARGUMENT,
		              "argument '%s' must be a run id or a run number", key);
		return -EINVAL;
	}
	if (store_run_resolve(req->d->store, ref, ret_seq) < 0) {
		request_error(req, PROTO_E_NOT_FOUND,
		              "no run '%s' (see 'runyard runs' for the runs there are)", ref);
		return -ENOENT;
	}
	return 0;
}

int request_resolve_run(struct request *req, int64_t *ret_seq)
{
	return request_resolve_run_arg(req, "run", ret_seq);
}

void request_reply_blob_chunk(struct request *req, const char *hex, int64_t size, int64_t offset,
                          int64_t length, const char *name)
{
	char bpath[4096], *b64 = NULL;
	unsigned char *raw = NULL;
	ssize_t got = 0;
	int fd = -1;

	if (blob_path(req->d->blobs, hex, bpath, sizeof(bpath)) < 0 ||
	    (fd = open(bpath, O_RDONLY | O_CLOEXEC)) < 0) {
		request_error(req, PROTO_E_INTERNAL, "the stored content of '%s' is missing", name);
		goto out;
	}
	if (offset > size) {
		offset = size;
	}
	if (length > size - offset) {
		length = size - offset;
	}
	raw = malloc((size_t)length + 1);
	b64 = malloc(4 * (((size_t)length + 2) / 3) + 1);
	if (!raw || !b64) {
		request_error(req, PROTO_E_INTERNAL, "out of memory");
		goto out;
	}
	while (got < length) {
		ssize_t n = pread(fd, raw + got, (size_t)(length - got), (off_t)(offset + got));
		if (n <= 0) {
			break;
		}
		got += n;
	}
	EVP_EncodeBlock((unsigned char *)b64, raw, (int)got);
	cJSON *res = cJSON_CreateObject();
	cJSON_AddStringToObject(res, "data", b64);
	cJSON_AddNumberToObject(res, "size", (double)size);
	cJSON_AddBoolToObject(res, "eof", offset + got >= size);
	request_reply(req, res);
out:
	if (fd >= 0) {
		close(fd);
	}
	free(raw);
	free(b64);
}

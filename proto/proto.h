/* The wire protocol shared by runyardd and its clients: constants only. */
#pragma once

/* Version agreed in the hello message, not in the frame header, so a client
 * of another version can still read the error that says both versions. */
#define PROTO_VERSION 1

/* Every frame starts with these four bytes, then a big-endian uint32 length. */
#define PROTO_MAGIC "RYD1"
#define PROTO_MAGIC_LEN 4
#define PROTO_HEADER_LEN 8

/* Largest payload either side accepts; checked before anything is allocated. */
#define PROTO_FRAME_MAX (16u * 1024 * 1024)

/* Error codes carried in {"ok":false,"error":{"code":...}}. */
#define PROTO_E_BAD_REQUEST "BadRequest"
#define PROTO_E_UNKNOWN_OP "UnknownOp"
#define PROTO_E_INVALID_ARGUMENT "InvalidArgument"
#define PROTO_E_NOT_FOUND "NotFound"
#define PROTO_E_VERSION_MISMATCH "VersionMismatch"
#define PROTO_E_HANDSHAKE "HandshakeRequired"
#define PROTO_E_PERMISSION "PermissionDenied"
#define PROTO_E_TOO_LARGE "TooLarge"
#define PROTO_E_CONFLICT "Conflict"
#define PROTO_E_INTERNAL "Internal"
#define PROTO_E_SHUTTING_DOWN "ShuttingDown"
/* A service the daemon depends on (a cluster's slurmrestd) cannot be
 * reached or does not answer as it should; the message says which. */
#define PROTO_E_UNAVAILABLE "Unavailable"

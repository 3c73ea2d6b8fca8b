/* Downloads through the daemon: chunks into a temporary file, checked, renamed into place. */
#pragma once

#include <stddef.h>

#include <cjson/cJSON.h>

struct ctx;
struct digest;

struct download {
	const char *op;	 /* NULL: artifact.read */
	const char *key; /* what run names in the op's args; NULL: "run" */
	const char *run;
	const char *dir; /* as given, for messages */
	int dirfd;
	struct digest *md;
	unsigned char *buf;
	size_t cap;
	double total; /* bytes written */
};

/* Make and open dl->dir and the digest for download_one; 0 or an exit
 * status (said on stderr). download_close frees what this made. */
int download_open(struct download *dl);

/* Fetch one artifact ({path, size, sha256, mode}) into dl->dir; 0 or an
 * exit status (said why). */
int download_one(struct ctx *ctx, struct download *dl, const cJSON *art);

void download_close(struct download *dl);

/* "PATH  DONE / SIZE" on stderr when it is a terminal. */
void download_progress(const char *path, double done, double size);

/* write(2) all of p; 0 or -errno. */
int download_write_all(int fd, const unsigned char *p, size_t n);

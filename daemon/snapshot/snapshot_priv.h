/* Snapshot internals shared by taking, manifests and materialising. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "snapshot.h"

enum etype { E_FILE, E_DIR, E_SYMLINK };

/* Each type's name in a manifest (snapshot.c). */
extern const char *const snapshot_type_names[];

/* One entry collected by the walk. */
struct entry {
	char *path;
	char *target; /* symlinks */
	uint64_t size;
	struct stat st; /* files: the lstat of the walk, then the fstat of the read */
	uint32_t mode;
	enum etype type;
	bool hashed;  /* files: hex is set */
	bool skipped; /* files: could not be read, left out */
	bool listed;  /* skipped and already in the skipped list */
	char hex[65];
};

/* A snapshot's entries in memory, kept by a snapshot_info so that the
 * program of a submit is looked up without reading the manifest back. */
struct held_tree {
	struct entry *ents;
	size_t n;
};

/* A manifest loaded for reading; strings point into json. */
struct mentry {
	const char *path;
	const char *sha;
	const char *target;
	uint64_t size;
	uint32_t mode;
	enum etype type;
};

struct manifest {
	cJSON *json;
	struct mentry *e;
	size_t n;
};

/* snapshot.c: strerror_r into buf. */
const char *snapshot_errstr(int err, char buf[128]);

/* snapshot_manifest.c */
/* The manifest of the sorted entries, malloc'd; NULL when out of memory. */
char *snapshot_manifest_print(const struct entry *ents, size_t n);
/* Load and check a stored manifest; -EINVAL, -ENOENT, -EBADMSG, -ENOMEM. */
int snapshot_manifest_load(struct blobstore *bs, const char *id, struct manifest *m,
                           char **cause);
void snapshot_manifest_finish(struct manifest *m);

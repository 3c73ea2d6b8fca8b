/* The model registry: named models with versions that increment per name,
 * whose files are content-addressed blobs (a run's artifacts are referenced,
 * never copied). docs/models.md describes it. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct daemon;
struct request;

/* A registered model, as a deployment needs it. */
struct models_model {
	int64_t id;
	char *name;
	int64_t version;
	char *framework; /* canonical ("ScikitLearn"), or NULL */
	cJSON *files;    /* [{"path", "size", "sha256", "mode"}] sorted by path */
};

void models_model_finish(struct models_model *m);

/* Parse "NAME" or "NAME:VERSION" (*ret_version 0: the latest). -EINVAL with
 * a message in *cause when it is neither. */
int models_parse_ref(const char *ref, char **ret_name, int64_t *ret_version, char **cause);

/* The model ref names: -ENOENT or -EINVAL with a message in *cause. */
int models_get(struct daemon *d, const char *ref, struct models_model *ret, char **cause);

/* The model by id; -ENOENT. */
int models_get_id(struct daemon *d, int64_t id, struct models_model *ret);

/* The model object of the protocol (docs/protocol.md) by id. */
int models_json(struct daemon *d, int64_t id, cJSON **ret);

/* Give dir/NAME/VERSION/<file path> as symlinks to the blobs of the model's
 * files (read-only, so nothing is copied), making the directories; *ret_dir
 * is dir/NAME/VERSION. Existing links are replaced. */
int models_link(struct daemon *d, const struct models_model *m, const char *dir, char **ret_dir,
                char **cause);

/* Ops (the table is in dispatch.c). */
void models_op_register(struct request *req);
void models_op_list(struct request *req);
void models_op_show(struct request *req);
void models_op_read(struct request *req);
void models_op_delete(struct request *req);

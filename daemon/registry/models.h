/* The model registry: named models with versions that increment per name,
 * whose files are content-addressed blobs (a run's artifacts are referenced,
 * never copied). docs/models.md describes it. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct daemon;

/* A registered model, as a deployment needs it. */
struct models_model {
	int64_t id;
	char *name;
	int64_t version;
	char *framework; /* canonical ("ScikitLearn"), or NULL */
	double cpu;       /* its ResourceConfiguration; 0: not given */
	double memory_gb; /* 0: not given */
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

/* The services deploying a model, as a JSON array of names: the registry
 * does not know services, so whoever asks for a model object passes this. */
typedef int (*models_services_fn)(struct daemon *d, int64_t model_id, cJSON **ret);

/* The model object of the protocol (docs/protocol.md) by id, with its
 * "services" from services (left out when NULL). */
int models_json(struct daemon *d, int64_t id, models_services_fn services, cJSON **ret);

/* The model objects (without files) of every model, or of every version of
 * name, in order; -ENOMEM when the query could not be made, -EIO. */
int models_list_json(struct daemon *d, const char *name, models_services_fn services,
                     cJSON **ret);

/* The id of model name:version (version 0: the latest); -ENOENT, -EIO. */
int models_find_id(struct daemon *d, const char *name, int64_t version, int64_t *ret_id);

/* Give dir/NAME/VERSION/<file path> as symlinks to the blobs of the model's
 * files (read-only, so nothing is copied), making the directories; *ret_dir
 * is dir/NAME/VERSION. Existing links are replaced. */
int models_link(struct daemon *d, const struct models_model *m, const char *dir, char **ret_dir,
                char **cause);

/* What inputs.c, inputs_place.c and inputs_upload.c share. */
#pragma once

#include <stdbool.h>

#include <sqlite3.h>

#include "inputs.h"

enum src_kind { SRC_LOCAL, SRC_URL, SRC_DATASET };

/* inputs.c */
/* What a source names: a dataset ("dataset:..."), a URL, or a local path. */
enum src_kind inputs_source_kind(const char *s);
/* Whether s is an http:// or https:// URL. */
bool inputs_is_url(const char *s);
char *inputs_url_filename(const char *url);

/* inputs_place.c: column i as a malloc'd string, NULL for NULL. */
char *inputs_dup_col(sqlite3_stmt *st, int i);

/* Environments: definitions, normalised and hashed, stored by name and
 * version; conda specifications read with libyaml. */
#include "envs.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <uv.h>
#include <yaml.h>
#include "context.h"
#include "log.h"
#include "logs.h"
#include "msg.h"
#include "run.h"
#include "store.h"
#include "util.h"

extern char **environ;

static int write_definition(struct daemon *d, const cJSON *e);

void envs_resolved_finish(struct envs_resolved *r)
{
	if (r) {
		free(r->name);
		free(r->hash);
		free(r->kind);
		free(r->python);
		cJSON_Delete(r->vars);
		memset(r, 0, sizeof(*r));
	}
}

/* ---- conda YAML ---- */

static char *yaml_scalar(yaml_node_t *n)
{
	return strndup((const char *)n->data.scalar.value, n->data.scalar.length);
}

static int node_error(yaml_node_t *n, const char *file, const char *what, char **cause)
{
	*cause = msg_strdupf("%s:%zu:%zu: %s", file, n->start_mark.line + 1,
	                     n->start_mark.column + 1, what);
	return -EINVAL;
}

/* A sequence of scalars into a JSON array of strings. */
static int scalar_list(yaml_document_t *doc, yaml_node_t *seq, const char *file, const char *what,
                       cJSON *ret, char **cause)
{
	yaml_node_item_t *it;

	if (seq->type != YAML_SEQUENCE_NODE) {
		char *m = msg_strdupf("'%s' must be a list", what);
		int err = node_error(seq, file, m ? m : what, cause);
		free(m);
		return err;
	}
	for (it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
		yaml_node_t *n = yaml_document_get_node(doc, *it);
		char *s;
		if (!n || n->type != YAML_SCALAR_NODE) {
			char *m = msg_strdupf("items of '%s' must be strings", what);
			int err = node_error(n ? n : seq, file, m ? m : what, cause);
			free(m);
			return err;
		}
		s = yaml_scalar(n);
		if (!s) {
			return -ENOMEM;
		}
		cJSON_AddItemToArray(ret, cJSON_CreateString(s));
		free(s);
	}
	return 0;
}

static int conda_dependencies(yaml_document_t *doc, yaml_node_t *seq, const char *file, cJSON *deps,
                              cJSON *pip, char **cause)
{
	yaml_node_item_t *it;

	if (seq->type != YAML_SEQUENCE_NODE) {
		return node_error(seq, file, "'dependencies' must be a list", cause);
	}
	for (it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
		yaml_node_t *n = yaml_document_get_node(doc, *it);
		if (n && n->type == YAML_SCALAR_NODE) {
			char *s = yaml_scalar(n);
			if (!s) {
				return -ENOMEM;
			}
			cJSON_AddItemToArray(deps, cJSON_CreateString(s));
			free(s);
		} else if (n && n->type == YAML_MAPPING_NODE) {
			yaml_node_pair_t *p;
			for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
				yaml_node_t *k = yaml_document_get_node(doc, p->key);
				yaml_node_t *v = yaml_document_get_node(doc, p->value);
				int err;
				if (!k || k->type != YAML_SCALAR_NODE ||
				    strcmp((const char *)k->data.scalar.value, "pip") != 0) {
					return node_error(k ? k : n, file,
					                  "only a 'pip:' list may be nested in "
					                  "'dependencies'",
					                  cause);
				}
				err = scalar_list(doc, v, file, "pip", pip, cause);
				if (err < 0) {
					return err;
				}
			}
		} else {
			return node_error(n ? n : seq, file,
			                  "a dependency is a string or a 'pip:' list", cause);
		}
	}
	return 0;
}

int envs_conda_parse(const char *yaml, size_t len, const char *filename, cJSON **ret_spec,
                     char **cause)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	yaml_node_pair_t *p;
	cJSON *spec = NULL, *channels, *deps, *pip;
	const char *file = filename && *filename ? filename : "conda specification";
	int err = 0;

	if (!yaml_parser_initialize(&parser)) {
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
	if (!yaml_parser_load(&parser, &doc)) {
		*cause =
		    msg_strdupf("%s:%zu:%zu: %s%s%s", file, parser.problem_mark.line + 1,
		                parser.problem_mark.column + 1,
		                parser.problem ? parser.problem : "malformed YAML",
		                parser.context ? " " : "", parser.context ? parser.context : "");
		yaml_parser_delete(&parser);
		return -EINVAL;
	}
	spec = cJSON_CreateObject();
	channels = cJSON_AddArrayToObject(spec, "channels");
	deps = cJSON_AddArrayToObject(spec, "dependencies");
	pip = cJSON_AddArrayToObject(spec, "pip");
	root = yaml_document_get_root_node(&doc);
	if (!root) {
		*cause = msg_strdupf("%s: the specification is empty", file);
		err = -EINVAL;
		goto out;
	}
	if (root->type != YAML_MAPPING_NODE) {
		err = node_error(root, file,
		                 "a conda specification is a mapping "
		                 "(name, channels, dependencies)",
		                 cause);
		goto out;
	}
	for (p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(&doc, p->key);
		yaml_node_t *v = yaml_document_get_node(&doc, p->value);
		const char *key;
		if (!k || !v || k->type != YAML_SCALAR_NODE) {
			err = node_error(k ? k : root, file, "keys must be strings", cause);
			goto out;
		}
		key = (const char *)k->data.scalar.value;
		if (strcmp(key, "name") == 0) {
			char *s;
			if (v->type != YAML_SCALAR_NODE) {
				err = node_error(v, file, "'name' must be a string", cause);
				goto out;
			}
			s = yaml_scalar(v);
			cJSON_AddStringToObject(spec, "name", s ? s : "");
			free(s);
		} else if (strcmp(key, "channels") == 0) {
			err = scalar_list(&doc, v, file, "channels", channels, cause);
		} else if (strcmp(key, "dependencies") == 0) {
			err = conda_dependencies(&doc, v, file, deps, pip, cause);
		} else if (strcmp(key, "prefix") == 0 || strcmp(key, "variables") == 0) {
			/* conda's own; a prefix is ours to choose */
		} else {
			char *m = msg_strdupf("unknown key '%s' (expected name, channels, "
			                      "dependencies)",
			                      key);
			err = node_error(k, file, m ? m : "unknown key", cause);
			free(m);
		}
		if (err < 0) {
			goto out;
		}
	}
out:
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	if (err < 0) {
		cJSON_Delete(spec);
		return err;
	}
	*ret_spec = spec;
	return 0;
}

/* ---- definitions ---- */

/* conda package names whose pip names differ. */
static const struct {
	const char *conda, *pip;
} pip_names[] = {
    {"pytorch", "torch"},          {"py-xgboost", "xgboost"},
    {"pytables", "tables"},        {"matplotlib-base", "matplotlib"},
    {"msgpack-python", "msgpack"}, {"python-graphviz", "graphviz"},
};

/* "numpy=1.2" (conda's match spec) → "numpy==1.2"; ">=" and the like stay. */
static char *conda_to_pip(const char *dep)
{
	size_t n = strcspn(dep, "=<>!~ ");
	const char *name = NULL, *rest = dep + n;
	char base[256];

	if (n == 0 || n >= sizeof(base)) {
		return strdup(dep);
	}
	memcpy(base, dep, n);
	base[n] = '\0';
	for (size_t i = 0; i < sizeof(pip_names) / sizeof(pip_names[0]); i++) {
		if (strcmp(base, pip_names[i].conda) == 0) {
			name = pip_names[i].pip;
		}
	}
	if (!name) {
		name = base;
	}
	if (rest[0] == '=' && rest[1] != '=') {
		return msg_strdupf("%s==%s", name, rest + 1);
	}
	return msg_strdupf("%s%s", name, rest);
}

static bool is_azureml(const char *req)
{
	return strncmp(req, "azureml-", 8) == 0 || strncmp(req, "azureml_", 8) == 0;
}

/* The python pin of a conda dependency "python=3.6.2" / "python==3.6" /
 * "python>=3.8" ("" when unpinned); NULL when dep is not python. */
static const char *python_dep(const char *dep)
{
	if (strncmp(dep, "python", 6) != 0 || (dep[6] && !strchr("=<>!~ ", dep[6]))) {
		return NULL;
	}
	dep += 6;
	while (*dep == '=' || *dep == ' ') {
		dep++;
	}
	return dep;
}

static bool conda_installed(const char *path_env, char **ret_tool)
{
	static const char *const tools[] = {"micromamba", "mamba", "conda"};
	for (size_t i = 0; i < 3; i++) {
		char *p = util_which(tools[i], path_env);
		if (p) {
			*ret_tool = p;
			return true;
		}
	}
	return false;
}

static int add_requirement(cJSON *reqs, cJSON *skipped, const char *r)
{
	cJSON_AddItemToArray(is_azureml(r) ? skipped : reqs, cJSON_CreateString(r));
	return 0;
}

/* Requirements file text: one requirement a line; comments and blank lines
 * dropped; pip options (-r, --find-links...) kept as written. */
static void requirements_text(const char *text, cJSON *reqs, cJSON *skipped)
{
	const char *line = text;

	while (*line) {
		const char *end = strchr(line, '\n'), *hash;
		size_t n = end ? (size_t)(end - line) : strlen(line);
		char *l = strndup(line, n), *s, *e;
		if (l) {
			hash = strstr(l, " #");
			if (l[0] == '#') {
				l[0] = '\0';
			} else if (hash) {
				l[hash - l] = '\0';
			}
			for (s = l; *s == ' ' || *s == '\t' || *s == '\r'; s++) {
			}
			e = s + strlen(s);
			while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) {
				*--e = '\0';
			}
			if (*s) {
				add_requirement(reqs, skipped, s);
			}
			free(l);
		}
		line += n;
		if (*line == '\n') {
			line++;
		}
	}
}

int envs_hash_text(const char *text, char ret[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;

	if (EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
		return -EIO;
	}
	for (int i = 0; i < 32; i++) {
		snprintf(ret + 2 * i, 3, "%02x", md[i]);
	}
	return 0;
}

static int cmp_keys(const void *a, const void *b)
{
	return strcmp((*(cJSON *const *)a)->string, (*(cJSON *const *)b)->string);
}

/* A copy of a string map with its keys sorted, so equal maps print alike. */
static cJSON *sorted_map(const cJSON *map)
{
	int n = cJSON_GetArraySize(map), i = 0;
	cJSON **items = n ? calloc((size_t)n, sizeof(*items)) : NULL, *kv, *out;

	out = cJSON_CreateObject();
	if (n && !items) {
		return out;
	}
	cJSON_ArrayForEach(kv, map)
	{
		items[i++] = kv;
	}
	if (n > 1) {
		qsort(items, (size_t)n, sizeof(*items), cmp_keys);
	}
	for (i = 0; i < n; i++) {
		cJSON_AddStringToObject(out, items[i]->string, items[i]->valuestring);
	}
	free(items);
	return out;
}

/* The create request's arguments into the normalised definition: every key
 * present, in a fixed order, so equal definitions print (and hash) alike. */
int envs_definition_from_args(const cJSON *args, cJSON **ret, char **cause)
{
	const char *conda = NULL, *conda_file = NULL, *reqs_text = NULL, *interp = NULL,
	           *python = NULL;
	const cJSON *vars = NULL, *kv;
	bool ssp = false;
	char *tool = NULL;
	cJSON *def, *reqs, *skipped, *spec = NULL;
	int sources, err = 0;

	if (msg_arg_string(args, "conda_yaml", false, &conda, cause) < 0 ||
	    msg_arg_string(args, "conda_file", false, &conda_file, cause) < 0 ||
	    msg_arg_string(args, "requirements", false, &reqs_text, cause) < 0 ||
	    msg_arg_string(args, "interpreter", false, &interp, cause) < 0 ||
	    msg_arg_string(args, "python", false, &python, cause) < 0 ||
	    msg_arg_bool(args, "system_site_packages", false, &ssp, cause) < 0 ||
	    msg_arg_string_map(args, "vars", false, &vars, cause) < 0) {
		return -EINVAL;
	}
	sources = !!conda + !!reqs_text + !!interp;
	if (sources != 1) {
		*cause = msg_strdupf("give exactly one of a conda file, a pip requirements file "
		                     "or an interpreter");
		return -EINVAL;
	}
	if ((interp && interp[0] != '/') || (python && *python && python[0] != '/')) {
		*cause = msg_strdupf("interpreter '%s' must be an absolute path",
		                     interp ? interp : python);
		return -EINVAL;
	}
	cJSON_ArrayForEach(kv, vars)
	{
		if (!kv->string[0] || strchr(kv->string, '=')) {
			*cause = msg_strdupf("variable name '%s' is not valid", kv->string);
			return -EINVAL;
		}
	}
	if (conda) {
		err = envs_conda_parse(conda, strlen(conda), conda_file, &spec, cause);
		if (err < 0) {
			return err;
		}
	}
	def = cJSON_CreateObject();
	reqs = cJSON_CreateArray();
	skipped = cJSON_CreateArray();
	if (interp) {
		cJSON_AddStringToObject(def, "kind", "interpreter");
		cJSON_AddStringToObject(def, "python", interp);
		cJSON_AddBoolToObject(def, "system_site_packages", true);
		cJSON_AddNullToObject(def, "python_pin");
	} else if (spec && conda_installed(getenv("PATH"), &tool)) {
		/* conda builds it all: keep the specification as written */
		cJSON_AddStringToObject(def, "kind", "conda");
		cJSON_AddNullToObject(def, "python");
		cJSON_AddBoolToObject(def, "system_site_packages", false);
		cJSON_AddNullToObject(def, "python_pin");
		cJSON_AddItemToObject(
		    def, "conda", cJSON_Duplicate(cJSON_GetObjectItem(spec, "dependencies"), 1));
		cJSON_AddItemToObject(def, "channels",
		                      cJSON_Duplicate(cJSON_GetObjectItem(spec, "channels"), 1));
		cJSON_ArrayForEach(kv, cJSON_GetObjectItem(spec, "pip"))
		{
			add_requirement(reqs, skipped, kv->valuestring);
		}
	} else if (spec) {
		/* no conda: a venv with the conda packages as pip requirements */
		const char *pin = NULL;
		cJSON_AddStringToObject(def, "kind", "venv");
		if (python && *python) {
			cJSON_AddStringToObject(def, "python", python);
		} else {
			cJSON_AddNullToObject(def, "python");
		}
		cJSON_AddBoolToObject(def, "system_site_packages", ssp);
		cJSON_ArrayForEach(kv, cJSON_GetObjectItem(spec, "dependencies"))
		{
			const char *p = python_dep(kv->valuestring);
			if (p) {
				pin = p;
				continue;
			}
			if (strcmp(kv->valuestring, "pip") == 0) {
				continue;
			}
			char *r = conda_to_pip(kv->valuestring);
			if (!r) {
				err = -ENOMEM;
				goto out;
			}
			add_requirement(reqs, skipped, r);
			free(r);
		}
		cJSON_ArrayForEach(kv, cJSON_GetObjectItem(spec, "pip"))
		{
			add_requirement(reqs, skipped, kv->valuestring);
		}
		if (pin && *pin) {
			cJSON_AddStringToObject(def, "python_pin", pin);
		} else {
			cJSON_AddNullToObject(def, "python_pin");
		}
	} else {
		cJSON_AddStringToObject(def, "kind", "venv");
		if (python && *python) {
			cJSON_AddStringToObject(def, "python", python);
		} else {
			cJSON_AddNullToObject(def, "python");
		}
		cJSON_AddBoolToObject(def, "system_site_packages", ssp);
		cJSON_AddNullToObject(def, "python_pin");
		requirements_text(reqs_text, reqs, skipped);
	}
	cJSON_AddItemToObject(def, "requirements", reqs);
	cJSON_AddItemToObject(def, "skipped", skipped);
	reqs = skipped = NULL;
	cJSON_AddItemToObject(def, "vars", sorted_map(vars));
out:
	free(tool);
	cJSON_Delete(spec);
	cJSON_Delete(reqs);
	cJSON_Delete(skipped);
	if (err < 0) {
		cJSON_Delete(def);
		return err;
	}
	*ret = def;
	return 0;
}

/* ---- built-ins ---- */

static const char *const builtin_names[] = {"system", "sklearn"};

static cJSON *builtin_definition(const char *name)
{
	cJSON *def = cJSON_CreateObject();
	char *py = NULL;

	cJSON_AddStringToObject(def, "kind", "interpreter");
	if (strcmp(name, "system") == 0) {
		py = util_which("python3", getenv("PATH"));
		cJSON_AddStringToObject(def, "python", py ? py : "python3");
		free(py);
	} else {
		cJSON_AddStringToObject(def, "python", "/usr/bin/python3");
	}
	cJSON_AddBoolToObject(def, "system_site_packages", true);
	cJSON_AddNullToObject(def, "python_pin");
	cJSON_AddItemToObject(def, "requirements", cJSON_CreateArray());
	cJSON_AddItemToObject(def, "skipped", cJSON_CreateArray());
	cJSON_AddItemToObject(def, "vars", cJSON_CreateObject());
	return def;
}

bool envs_is_builtin(const char *name)
{
	return strcmp(name, builtin_names[0]) == 0 || strcmp(name, builtin_names[1]) == 0;
}

cJSON *envs_json(const char *name, int64_t version, const char *hash, cJSON *def,
                 double created, bool builtin)
{
	cJSON *e = cJSON_CreateObject();

	cJSON_AddStringToObject(e, "name", name);
	cJSON_AddNumberToObject(e, "version", (double)version);
	cJSON_AddItemToObject(e, "id", cJSON_CreateString(""));
	{
		char *id = msg_strdupf("%s:%lld", name, (long long)version);
		cJSON_ReplaceItemInObject(e, "id", cJSON_CreateString(id ? id : name));
		free(id);
	}
	cJSON_AddStringToObject(e, "kind", cJSON_GetObjectItem(def, "kind")->valuestring);
	cJSON_AddStringToObject(e, "hash", hash);
	cJSON_AddBoolToObject(e, "builtin", builtin);
	if (created > 0) {
		char ts[32];
		msg_format_time(created, ts);
		cJSON_AddStringToObject(e, "created_at", ts);
	} else {
		cJSON_AddNullToObject(e, "created_at");
	}
	cJSON_AddItemToObject(e, "definition", def);
	return e;
}

static cJSON *builtin_json(const char *name)
{
	cJSON *def = builtin_definition(name);
	char *text = cJSON_PrintUnformatted(def), hash[65] = "";

	if (text) {
		envs_hash_text(text, hash);
	}
	free(text);
	return envs_json(name, 1, hash, def, 0, true);
}

void envs_add_builtins(cJSON *list)
{
	for (size_t i = 0; i < sizeof(builtin_names) / sizeof(builtin_names[0]); i++) {
		cJSON_AddItemToArray(list, builtin_json(builtin_names[i]));
	}
}

/* ---- store ---- */

int envs_parse_ref(const char *ref, char **ret_name, int64_t *ret_version, char **cause)
{
	return util_parse_ref(ref, "environment", ret_name, ret_version, cause);
}

/* The row of name (version 0: the latest) into ret (an env object). */
int envs_find(struct daemon *d, const char *name, int64_t version, cJSON **ret)
{
	sqlite3_stmt *st = NULL;
	cJSON *def;
	int err = store_find_version(
	    d->store, "envs", "SELECT " ENVS_COLUMNS "WHERE name = ?1 AND version = ?2",
	    "SELECT " ENVS_COLUMNS "WHERE name = ?1 ORDER BY version DESC LIMIT 1", name, version,
	    &st);

	if (err < 0) {
		return err;
	}
	def = cJSON_Parse((const char *)sqlite3_column_text(st, 3));
	if (!def) {
		err = -EIO;
	} else {
		*ret = envs_json((const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1),
		                (const char *)sqlite3_column_text(st, 2), def,
		                sqlite3_column_double(st, 4), false);
	}
	sqlite3_finalize(st);
	return err;
}

/* Look NAME[:VERSION] up, built-ins included; cause on failure. */
int envs_lookup(struct daemon *d, const char *ref, cJSON **ret, char **cause)
{
	char *name = NULL;
	int64_t version = 0;
	int err = envs_parse_ref(ref, &name, &version, cause);

	if (err < 0) {
		return err;
	}
	if (envs_is_builtin(name)) {
		if (version > 1) {
			*cause = msg_strdupf("built-in environment '%s' has only version 1", name);
			err = -ENOENT;
		} else {
			*ret = builtin_json(name);
		}
	} else {
		err = envs_find(d, name, version, ret);
		if (err == -ENOENT) {
			*cause = version ? msg_strdupf("environment '%s' has no version %lld (see "
			                               "'runyard env list')",
			                               name, (long long)version)
			                 : msg_strdupf("no environment named '%s' (see 'runyard "
			                               "env list')",
			                               name);
		} else if (err < 0) {
			*cause =
			    msg_strdupf("reading environments failed: %s", store_errmsg(d->store));
		}
	}
	free(name);
	return err;
}

int envs_resolve(struct daemon *d, const char *ref, const char *path_env, struct envs_resolved *ret,
                 char **cause)
{
	cJSON *e = NULL, *def;
	const char *kind, *python;
	int err = envs_lookup(d, ref, &e, cause);

	(void)path_env;
	if (err < 0) {
		return err;
	}
	def = cJSON_GetObjectItem(e, "definition");
	kind = cJSON_GetObjectItem(def, "kind")->valuestring;
	char *built = NULL;
	if (strcmp(kind, "interpreter") != 0) {
		built = envs_path(d, cJSON_GetObjectItem(e, "hash")->valuestring, "/bin/python");
		if (!built || write_definition(d, e) < 0) {
			*cause = msg_strdupf("cannot record the definition of environment %s",
			                     cJSON_GetObjectItem(e, "id")->valuestring);
			free(built);
			cJSON_Delete(e);
			return -EIO;
		}
	}
	python = built ? built : cJSON_GetStringValue(cJSON_GetObjectItem(def, "python"));
	if (!built && (!python || access(python, X_OK) < 0)) {
		*cause =
		    msg_strdupf("environment %s: interpreter '%s' is not executable",
		                cJSON_GetObjectItem(e, "id")->valuestring, python ? python : "?");
		cJSON_Delete(e);
		return -ENOENT;
	}
	memset(ret, 0, sizeof(*ret));
	ret->name = strdup(cJSON_GetObjectItem(e, "name")->valuestring);
	ret->version = (int64_t)cJSON_GetObjectItem(e, "version")->valuedouble;
	ret->hash = strdup(cJSON_GetObjectItem(e, "hash")->valuestring);
	ret->kind = strdup(kind);
	ret->python = strdup(python);
	ret->vars = cJSON_Duplicate(cJSON_GetObjectItem(def, "vars"), true);
	ret->built = built != NULL;
	free(built);
	cJSON_Delete(e);
	if (!ret->name || !ret->hash || !ret->kind || !ret->python || !ret->vars) {
		envs_resolved_finish(ret);
		return -ENOMEM;
	}
	return 0;
}

/* ---- builds ---- */

/* One build per definition hash at a time; the runs that need it wait in
 * Preparing (single flight). */
struct waiter {
	struct run *r; /* a run: its log gets the build's output, live */
	envs_ready_fn run_cb;
	envs_built_fn cb; /* or anything else that waits (a service) */
	void *ud;
	int64_t off;  /* bytes of the build log stored in r's log */
	bool no_tail; /* storing them failed once: not again */
	struct waiter *next;
};

struct build {
	struct daemon *d;
	char hash[65];
	char *dir, *log;
	uv_process_t proc;
	uv_timer_t tail; /* copies new lines of the log to the runs */
	int handles;     /* open handles; freed when the last one closes */
	struct waiter *waiters;
	struct build *next;
};

/* How often a build's new output reaches the waiting runs' logs, and how
 * much of it at a time (pip's output is small; this bounds one tick). */
#define TAIL_MS 250
#define TAIL_READ (256 * 1024)

static struct build *builds;

static char *shell_quote(const char *s)
{
	size_t n = 3;
	for (const char *p = s; *p; p++) {
		n += *p == '\'' ? 4 : 1;
	}
	char *out = malloc(n), *o = out;
	if (!out) {
		return NULL;
	}
	*o++ = '\'';
	for (const char *p = s; *p; p++) {
		if (*p == '\'') {
			memcpy(o, "'\\''", 4);
			o += 4;
		} else {
			*o++ = *p;
		}
	}
	*o++ = '\'';
	*o = '\0';
	return out;
}

/* Append printf text to *buf (NULL on out of memory, which sticks). */
static void cat(char **buf, const char *fmt, const char *a)
{
	char *n;
	if (!*buf) {
		return;
	}
	n = msg_strdupf(fmt, *buf, a ? a : "");
	free(*buf);
	*buf = n;
}

static void cat_quoted(char **buf, const char *s)
{
	char *q = shell_quote(s);
	if (!q) {
		free(*buf);
		*buf = NULL;
		return;
	}
	cat(buf, "%s %s", q);
	free(q);
}

/* The build as a shell script: its output is the build log; on failure it
 * removes the half-made directory, so nothing failed is cached. */
static char *build_script(const cJSON *def, const char *dir)
{
	const char *kind = cJSON_GetStringValue(cJSON_GetObjectItem(def, "kind"));
	const char *python = cJSON_GetStringValue(cJSON_GetObjectItem(def, "python"));
	const char *pin = cJSON_GetStringValue(cJSON_GetObjectItem(def, "python_pin"));
	const cJSON *reqs = cJSON_GetObjectItem(def, "requirements"), *it;
	char *s = strdup(""), *qdir = shell_quote(dir), *tool = NULL;

	if (!qdir) {
		free(s);
		return NULL;
	}
	cat(&s, "%sD=%s\nbuild() {\nset -e\n", qdir);
	/* what the user wrote is only ever in the script single-quoted */
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(def, "skipped"))
	{
		char *m = msg_strdupf("runyard: skipping %s: provided by runyard's own "
		                      "compatibility module",
		                      it->valuestring);
		cat(&s, "%secho", NULL);
		if (m) {
			cat_quoted(&s, m);
		}
		cat(&s, "%s\n", NULL);
		free(m);
	}
	if (kind && strcmp(kind, "conda") == 0 && !conda_installed(getenv("PATH"), &tool)) {
		/* The kind was decided at env create, when a conda was there. A
		 * venv now would silently lack every conda package. */
		cat(&s,
		    "%secho \"error: this is a conda environment, but none of micromamba, "
		    "mamba or conda is on runyardd's PATH any more. Install one (or put it "
		    "back on PATH and restart runyardd), or create the environment again: "
		    "without a conda it becomes a venv.\"\nexit 3\n",
		    NULL);
	} else if (kind && strcmp(kind, "conda") == 0) {
		bool micromamba =
		    strcmp(strrchr(tool, '/') ? strrchr(tool, '/') + 1 : tool, "micromamba") == 0;
		/* a shim (pyenv's) can be on PATH without the tool behind it */
		char *qtool = shell_quote(tool);
		cat(&s, "%sT=%s", qtool ? qtool : "false");
		free(qtool);
		cat(&s,
		    "%s\n\"$T\" --version >/dev/null 2>&1 || { echo \"error: $T does not run "
		    "(is it a shim without its conda?); fix it or take it off runyardd's PATH\"; "
		    "exit 3; }\n",
		    NULL);
		cat(&s, "%secho \"runyard: $T create -y -p $D\"\n\"$T\" create -y -p \"$D\"", NULL);
		cJSON_ArrayForEach(it, cJSON_GetObjectItem(def, "channels"))
		{
			cat(&s, "%s -c", NULL);
			cat_quoted(&s, it->valuestring);
		}
		if (micromamba && cJSON_GetArraySize(cJSON_GetObjectItem(def, "channels")) == 0) {
			/* micromamba has no default channel, conda and mamba have
			 * "defaults"; conda-forge is the one every tool knows */
			cat(&s, "%s -c conda-forge", NULL);
		}
		cJSON_ArrayForEach(it, cJSON_GetObjectItem(def, "conda"))
		{
			cat_quoted(&s, it->valuestring);
		}
		cat(&s, "%s\n", NULL);
		/* runs and pip need the environment's own interpreter */
		cat(&s,
		    "%s[ -x \"$D/bin/python\" ] || { echo \"error: the conda specification "
		    "installs no python; add python=X.Y (and pip, for a pip: list) to its "
		    "dependencies\"; exit 3; }\n",
		    NULL);
	} else {
		if (python) {
			char *q = shell_quote(python);
			cat(&s, "%sPY=%s\n", q);
			free(q);
		} else if (pin) {
			char mm[32];
			const char *dot = strchr(pin, '.');
			const char *dot2 = dot ? strchr(dot + 1, '.') : NULL;
			size_t n = dot2 ? (size_t)(dot2 - pin) : strlen(pin);
			snprintf(mm, sizeof(mm), "%.*s", (int)(n < 20 ? n : 20), pin);
			char *want = msg_strdupf("python%s", mm);
			char *msg = msg_strdupf(
			    "error: the conda specification pins python=%s, but no conda is "
			    "installed and there is no python%s on PATH. Either install "
			    "micromamba (or mamba, or conda) on runyardd's PATH and create the "
			    "environment again (runyard env create NAME --conda-file FILE), so "
			    "that the specification is built by it, or change the pin to this "
			    "machine's python=",
			    pin, mm);
			/* a pyenv shim is on PATH without its interpreter: it must run */
			cat(&s, "%sPY=$(command -v", NULL);
			if (want) {
				cat_quoted(&s, want);
			}
			cat(&s, "%s) && \"$PY\" -c '' >/dev/null 2>&1 || {\n", NULL);
			cat(&s,
			    "%s  here=$(python3 -c 'import sys; print(\"%%d.%%d\" %% "
			    "sys.version_info[:2])' 2>/dev/null || echo '?')\n",
			    NULL);
			cat(&s, "%s  echo", NULL);
			if (msg) {
				cat_quoted(&s, msg);
			}
			cat(&s, "%s\"$here.\"\n  exit 3\n}\n", NULL);
			free(want);
			free(msg);
		} else {
			cat(&s, "%sPY=$(command -v python3)\n", NULL);
		}
		cat(&s, "%secho \"runyard: $PY -m venv%s $D\"\n",
		    cJSON_IsTrue(cJSON_GetObjectItem(def, "system_site_packages"))
		        ? " --system-site-packages"
		        : "");
		cat(&s, "%s\"$PY\" -m venv%s \"$D\"\n",
		    cJSON_IsTrue(cJSON_GetObjectItem(def, "system_site_packages"))
		        ? " --system-site-packages"
		        : "");
	}
	if (cJSON_GetArraySize(reqs) > 0) {
		char count[24];
		snprintf(count, sizeof(count), "%d", cJSON_GetArraySize(reqs));
		cat(&s, "%secho \"runyard: pip install of %s requirement(s)\"\n", count);
		cat(&s,
		    "%s\"$D/bin/python\" -m pip install --disable-pip-version-check "
		    "--no-input",
		    NULL);
		cJSON_ArrayForEach(it, reqs)
		{
			cat_quoted(&s, it->valuestring);
		}
		cat(&s, "%s\n", NULL);
	}
	cat(&s,
	    "%s}\n( build ) 2>&1\nrc=$?\nif [ $rc -ne 0 ]; then rm -rf \"$D\"; exit $rc; fi\n"
	    "du -sk \"$D\" 2>/dev/null | cut -f1 > \"$D/.size\" || true\n"
	    ": > \"$D/.ready\"\n",
	    NULL);
	free(qdir);
	free(tool);
	return s;
}

char *envs_path(struct daemon *d, const char *hash, const char *suffix)
{
	return msg_strdupf("%s/envs/%s%s", d->state_dir, hash, suffix);
}

/* The last lines of a failed build's log, for the runs' error. */
static char *log_tail(const char *path)
{
	char buf[1501];
	FILE *f = fopen(path, "re");
	long size;
	size_t n;
	const char *start;
	int lines = 0;

	if (!f) {
		return strdup("(no build output)");
	}
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, size > 1500 ? size - 1500 : 0, SEEK_SET);
	n = fread(buf, 1, 1500, f);
	fclose(f);
	buf[n] = '\0';
	while (n > 0 && buf[n - 1] == '\n') {
		buf[--n] = '\0';
	}
	start = buf + n;
	while (start > buf && lines < 8) {
		start--;
		if (*start == '\n') {
			lines++;
		}
	}
	if (*start == '\n') {
		start++;
	}
	return strdup(start);
}

static void build_close_cb(uv_handle_t *h);

static void close_build(struct build *b)
{
	uv_close((uv_handle_t *)&b->proc, build_close_cb);
	uv_close((uv_handle_t *)&b->tail, build_close_cb);
}

static void build_close_cb(uv_handle_t *h)
{
	struct build *b = h->data;
	if (--b->handles > 0) {
		return;
	}
	free(b->dir);
	free(b->log);
	free(b);
}

/* Copy what the build log has beyond w->off into w's run's log (stream
 * environment). Not final: whole lines only, the rest waits for the next
 * tick. A run whose log cannot be written still gets its build. */
static void tail_waiter(struct build *b, struct waiter *w, int fd, bool final)
{
	char *buf;

	/* an ended run (kept only until its build ends) takes no more lines */
	if (!w->r || w->r->ended || w->no_tail || !(buf = malloc(TAIL_READ))) {
		return;
	}
	for (;;) {
		ssize_t n = pread(fd, buf, TAIL_READ, (off_t)w->off);
		size_t used = 0;
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			break;
		}
		if (logs_append_text(w->r, LOGS_STREAM_ENV, buf, (size_t)n, final && n < TAIL_READ,
		                     &used) < 0) {
			log_warn("run %s: storing the output of building environment %.12s "
			         "failed",
			         w->r->id, b->hash);
			w->no_tail = true;
			break;
		}
		w->off += (int64_t)used;
		/* only the final pass reads to the end; a tick takes one slice */
		if (!final || used == 0 || n < TAIL_READ) {
			break;
		}
	}
	free(buf);
}

static void tail_all(struct build *b, bool final)
{
	int fd = open(b->log, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		return;
	}
	for (struct waiter *w = b->waiters; w; w = w->next) {
		tail_waiter(b, w, fd, final);
	}
	close(fd);
}

static void tail_cb(uv_timer_t *t)
{
	tail_all(t->data, false);
}

static void build_exit_cb(uv_process_t *p, int64_t exit_status, int term_signal)
{
	struct build *b = p->data, **pp;
	struct waiter *w, *next;
	char *cause = NULL;
	int err = 0;

	for (pp = &builds; *pp && *pp != b; pp = &(*pp)->next) {
	}
	if (*pp) {
		*pp = b->next;
	}
	if (exit_status != 0 || term_signal) {
		char *tail = log_tail(b->log);
		cause = msg_strdupf("building environment %.12s failed (%s %d); its last "
		                    "lines:\n%s",
		                    b->hash, term_signal ? "signal" : "exit status",
		                    term_signal ? term_signal : (int)exit_status, tail ? tail : "");
		free(tail);
		err = -EIO;
		log_warn("environment %.12s: build failed", b->hash);
	} else {
		log_info("environment %.12s: built", b->hash);
	}
	/* every line is in the runs' logs before they go on (or fail) */
	tail_all(b, true);
	for (w = b->waiters; w; w = next) {
		next = w->next;
		if (w->run_cb) {
			w->r->busy = false;
			w->run_cb(w->r, err, cause);
		} else {
			w->cb(w->ud, err, cause);
		}
		free(w);
	}
	free(cause);
	close_build(b);
}

static int start_build(struct daemon *d, const char *hash, struct build **ret, char **cause)
{
	char *def_path = envs_path(d, hash, ".json"), *text = NULL, *script = NULL;
	char *envdir = msg_strdupf("%s/envs", d->state_dir);
	cJSON *def = NULL;
	size_t len;
	struct build *b = calloc(1, sizeof(*b));
	int err;

	if (!b || !def_path || !envdir) {
		err = -ENOMEM;
		goto out;
	}
	err = util_read_file(def_path, 1 << 20, &text, &len);
	if (err < 0 || !(def = cJSON_Parse(text))) {
		*cause = msg_strdupf("environment %.12s: its definition %s cannot be read", hash,
		                     def_path);
		err = err < 0 ? err : -EINVAL;
		goto out;
	}
	b->d = d;
	snprintf(b->hash, sizeof(b->hash), "%s", hash);
	b->dir = envs_path(d, hash, "");
	b->log = envs_path(d, hash, ".log");
	script = b->dir ? build_script(cJSON_GetObjectItem(def, "definition"), b->dir) : NULL;
	if (!b->dir || !b->log || !script) {
		err = -ENOMEM;
		goto out;
	}
	util_rm_rf(b->dir); /* a build cut short by a restart */
	int fd = open(b->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = -errno;
		*cause = msg_strdupf("cannot write %s: %s", b->log, strerror(errno));
		goto out;
	}
	/* the build's environment: the daemon's, then the definition's vars */
	size_t n = 0;
	for (char **e = environ; *e; e++) {
		n++;
	}
	const cJSON *vars = cJSON_GetObjectItem(cJSON_GetObjectItem(def, "definition"), "vars"),
	            *kv;
	char **env = calloc(n + (size_t)cJSON_GetArraySize(vars) + 1, sizeof(*env));
	size_t k = 0;
	if (env) {
		cJSON_ArrayForEach(kv, vars)
		{
			env[k++] = msg_strdupf("%s=%s", kv->string, kv->valuestring);
		}
		for (char **e = environ; *e; e++) {
			bool over = false;
			cJSON_ArrayForEach(kv, vars)
			{
				size_t kl = strlen(kv->string);
				over |= strncmp(*e, kv->string, kl) == 0 && (*e)[kl] == '=';
			}
			if (!over) {
				env[k++] = strdup(*e);
			}
		}
	}
	char *args[] = {"/bin/sh", "-c", script, NULL};
	uv_stdio_container_t stdio[3] = {
	    {.flags = UV_IGNORE},
	    {.flags = UV_INHERIT_FD, .data.fd = fd},
	    {.flags = UV_INHERIT_FD, .data.fd = fd},
	};
	uv_process_options_t opts = {
	    .exit_cb = build_exit_cb,
	    .file = "/bin/sh",
	    .args = args,
	    .env = env,
	    .cwd = envdir,
	    .stdio_count = 3,
	    .stdio = stdio,
	    .flags = UV_PROCESS_DETACHED,
	};
	b->proc.data = b;
	err = env ? uv_spawn(d->loop, &b->proc, &opts) : -ENOMEM;
	close(fd);
	for (size_t i = 0; env && i < k; i++) {
		free(env[i]);
	}
	free(env);
	if (err < 0) {
		if (err != -ENOMEM) {
			*cause = msg_strdupf("cannot start the build: %s", uv_strerror(err));
			b->handles = 1;
			uv_close((uv_handle_t *)&b->proc, build_close_cb);
			b = NULL;
		}
		goto out;
	}
	b->handles = 2;
	uv_timer_init(d->loop, &b->tail);
	b->tail.data = b;
	uv_timer_start(&b->tail, tail_cb, TAIL_MS, TAIL_MS);
	log_info("environment %.12s: building (pid %d, log %s)", hash, b->proc.pid, b->log);
	b->next = builds;
	builds = b;
	*ret = b;
	b = NULL;
out:
	if (b) {
		free(b->dir);
		free(b->log);
		free(b);
	}
	cJSON_Delete(def);
	free(text);
	free(script);
	free(def_path);
	free(envdir);
	return err;
}

/* Find hash's build in the cache (0: ready, touched as used) or join it,
 * starting it when none is in flight (1: w waits, it belongs to the build
 * now); a negative errno with a cause when the build cannot start. */
static int join_build(struct daemon *d, const char *hash, struct waiter *w, char **cause)
{
	char *ready = envs_path(d, hash, "/.ready");
	struct build *b;
	int err;

	if (!ready) {
		return -ENOMEM;
	}
	if (access(ready, F_OK) == 0) {
		/* .ready's mtime is the build's last use (env list, env prune) */
		utimensat(AT_FDCWD, ready, NULL, 0);
		free(ready);
		return 0; /* cached */
	}
	free(ready);
	for (b = builds; b && strcmp(b->hash, hash) != 0; b = b->next) {
	}
	if (!b) {
		err = start_build(d, hash, &b, cause);
		if (err < 0) {
			return err;
		}
	}
	w->next = b->waiters;
	b->waiters = w;
	return 1;
}

/* join_build with a heap copy of w, freed again unless it waits (1). */
static int join_copy(struct daemon *d, const char *hash, const struct waiter *w, char **cause)
{
	struct waiter *c = malloc(sizeof(*c));
	int err;

	if (!c) {
		return -ENOMEM;
	}
	*c = *w;
	err = join_build(d, hash, c, cause);
	if (err != 1) {
		free(c);
	}
	return err;
}

int envs_prepare(struct run *r, envs_ready_fn cb, char **cause)
{
	struct daemon *d = r->d;
	const cJSON *a0 = cJSON_GetArrayItem(r->argv, 0);
	char prefix[4096], hash[65];
	const char *p;
	int err;

	snprintf(prefix, sizeof(prefix), "%s/envs/", d->state_dir);
	if (!cJSON_IsString(a0) || strncmp(a0->valuestring, prefix, strlen(prefix)) != 0) {
		return 0;
	}
	p = a0->valuestring + strlen(prefix);
	if (strlen(p) != 64 + strlen("/bin/python") || strcmp(p + 64, "/bin/python") != 0) {
		return 0;
	}
	memcpy(hash, p, 64);
	hash[64] = '\0';
	err = join_copy(d, hash, &(struct waiter){.r = r, .run_cb = cb}, cause);
	if (err != 1) {
		return err;
	}
	r->busy = true;
	return 1;
}

int envs_build(struct daemon *d, const char *hash, envs_built_fn cb, void *ud, char **cause)
{
	return join_copy(d, hash, &(struct waiter){.cb = cb, .ud = ud}, cause);
}

void envs_shutdown(struct daemon *d)
{
	struct build **pp = &builds;

	while (*pp) {
		struct build *b = *pp;
		struct waiter *w, *next;
		if (b->d != d) {
			pp = &b->next;
			continue;
		}
		*pp = b->next;
		/* the whole group: pip and what it started, not only the shell */
		if (kill(-b->proc.pid, SIGKILL) < 0) {
			uv_process_kill(&b->proc, SIGKILL);
		}
		for (w = b->waiters; w; w = next) {
			next = w->next;
			if (w->r) {
				w->r->busy = false;
				run_release(w->r);
			} else {
				w->cb(w->ud, -ECANCELED, "the daemon is stopping");
			}
			free(w);
		}
		b->waiters = NULL;
		close_build(b);
	}
}

/* Write the definition where a build finds it: envs/<hash>.json. */
static int write_definition(struct daemon *d, const cJSON *e)
{
	const char *hash = cJSON_GetObjectItem(e, "hash")->valuestring;
	char *dir = msg_strdupf("%s/envs", d->state_dir), *path = envs_path(d, hash, ".json");
	char *text = cJSON_PrintUnformatted(e);
	int err = -ENOMEM;

	if (dir && path && text) {
		err = util_mkdir_p(dir, 0700);
		if (err == 0) {
			err = util_write_file_atomic(path, text, strlen(text), 0600);
		}
	}
	free(dir);
	free(path);
	free(text);
	return err;
}

/* Services are asked by the prune op: the registry does not know them. */
bool envs_build_in_use(struct daemon *d, const char *hash)
{
	char *dir = envs_path(d, hash, "/");
	bool used = false;

	for (struct build *b = builds; b; b = b->next) {
		used |= strcmp(b->hash, hash) == 0;
	}
	for (struct run *r = d->runs_head; r && dir && !used; r = r->next) {
		const cJSON *a0 = cJSON_GetArrayItem(r->argv, 0);
		used = cJSON_IsString(a0) && strncmp(a0->valuestring, dir, strlen(dir)) == 0;
	}
	free(dir);
	return used || !dir;
}

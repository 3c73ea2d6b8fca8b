/* Snapshot manifests: writing the manifest of the entries taken, as the
 * compact JSON whose hash is the snapshot id; loading a stored one back
 * and checking it; and what is asked of a stored snapshot through it:
 * whether a path names a file (resolving the snapshot's own symlinks),
 * and each of its entries in order. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"
#include "snapshot_priv.h"

/* A manifest this large would describe millions of entries: refuse it
 * rather than parse it into memory. */
#define MANIFEST_MAX (256u * 1024 * 1024)

/* Symlinks followed when resolving a path inside a snapshot (as the kernel). */
#define MAX_SYMLINK_HOPS 40

/* A growing string for the manifest. */
struct sbuf {
	char *s;
	size_t len, cap;
	bool failed;
};

static void sbuf_add(struct sbuf *b, const char *s, size_t l)
{
	if (b->failed) {
		return;
	}
	if (b->len + l + 1 > b->cap) {
		size_t ncap = b->cap ? b->cap : 4096;
		char *ns;
		while (ncap < b->len + l + 1) {
			ncap *= 2;
		}
		ns = realloc(b->s, ncap);
		if (!ns) {
			b->failed = true;
			return;
		}
		b->s = ns;
		b->cap = ncap;
	}
	memcpy(b->s + b->len, s, l);
	b->len += l;
	b->s[b->len] = '\0';
}

static void sbuf_str(struct sbuf *b, const char *s)
{
	sbuf_add(b, s, strlen(s));
}

/* A JSON string as cJSON prints it: '"', '\\' and control characters
 * escaped, every other byte as it is. */
static void sbuf_json(struct sbuf *b, const char *s)
{
	const char *run = s;

	sbuf_add(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[8];
		if (c >= 0x20 && c != '"' && c != '\\') {
			continue;
		}
		sbuf_add(b, run, (size_t)(s - run));
		switch (c) {
		case '"':
			sbuf_str(b, "\\\"");
			break;
		case '\\':
			sbuf_str(b, "\\\\");
			break;
		case '\b':
			sbuf_str(b, "\\b");
			break;
		case '\f':
			sbuf_str(b, "\\f");
			break;
		case '\n':
			sbuf_str(b, "\\n");
			break;
		case '\r':
			sbuf_str(b, "\\r");
			break;
		case '\t':
			sbuf_str(b, "\\t");
			break;
		default:
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			sbuf_str(b, esc);
			break;
		}
		run = s + 1;
	}
	sbuf_add(b, run, (size_t)(s - run));
	sbuf_add(b, "\"", 1);
}

/* The manifest of the sorted entries (skipped files left out), as compact
 * JSON text, byte for byte what cJSON_PrintUnformatted gives for the same
 * objects (snapshot ids stay what they were), written directly since this
 * is most of an unchanged resubmit's time with cJSON. Names go in as the
 * bytes they are: the manifest is read back by cJSON only, which keeps
 * them. */
char *snapshot_manifest_print(const struct entry *ents, size_t n)
{
	struct sbuf b = {0};
	char num[64];

	sbuf_str(&b, "{\"version\":1,\"entries\":[");
	for (size_t i = 0, k = 0; i < n; i++) {
		const struct entry *e = &ents[i];
		if (e->skipped) {
			continue;
		}
		sbuf_str(&b, k++ ? ",{\"path\":" : "{\"path\":");
		sbuf_json(&b, e->path);
		sbuf_str(&b, ",\"type\":\"");
		sbuf_str(&b, snapshot_type_names[e->type]);
		sbuf_str(&b, "\"");
		switch (e->type) {
		case E_FILE:
			/* cJSON prints whole numbers below 10^15 as integers. */
			if (e->size < 1000000000000000ULL) {
				snprintf(num, sizeof(num), ",\"size\":%" PRIu64 ",\"mode\":%u",
				         e->size, (unsigned)e->mode);
			} else {
				snprintf(num, sizeof(num), ",\"size\":%1.15g,\"mode\":%u",
				         (double)e->size, (unsigned)e->mode);
			}
			sbuf_str(&b, num);
			sbuf_str(&b, ",\"sha256\":\"");
			sbuf_str(&b, e->hex);
			sbuf_str(&b, "\"}");
			break;
		case E_DIR:
			snprintf(num, sizeof(num), ",\"mode\":%u}", (unsigned)e->mode);
			sbuf_str(&b, num);
			break;
		case E_SYMLINK:
			sbuf_str(&b, ",\"target\":");
			sbuf_json(&b, e->target);
			sbuf_str(&b, "}");
			break;
		}
	}
	sbuf_str(&b, "]}");
	if (b.failed) {
		free(b.s);
		return NULL;
	}
	return b.s;
}

void snapshot_manifest_finish(struct manifest *m)
{
	cJSON_Delete(m->json);
	free(m->e);
}

/* Relative, '/'-separated, no empty, "." or ".." components. */
static bool valid_relpath(const char *p)
{
	if (!*p || *p == '/') {
		return false;
	}
	for (;;) {
		const char *s = strchr(p, '/');
		size_t l = s ? (size_t)(s - p) : strlen(p);
		if (l == 0 || (l == 1 && p[0] == '.') || (l == 2 && p[0] == '.' && p[1] == '.')) {
			return false;
		}
		if (!s) {
			return true;
		}
		p = s + 1;
	}
}

static bool get_mode(const cJSON *o, uint32_t *ret)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "mode");

	if (!cJSON_IsNumber(m) || m->valuedouble < 0 || m->valuedouble > 07777 ||
	    m->valuedouble != (double)(int)m->valuedouble) {
		return false;
	}
	*ret = (uint32_t)m->valueint;
	return true;
}

/* Load and check a snapshot's manifest: every path valid, sorted, unique, so
 * parents come before their children and lookups can bisect. */
int snapshot_manifest_load(struct blobstore *bs, const char *id, struct manifest *m, char **cause)
{
	const cJSON *ver, *arr, *it;
	char *buf = NULL;
	size_t len, i = 0;
	int r;

	memset(m, 0, sizeof(*m));
	if (!blob_valid_hex(id)) {
		if (cause) {
			*cause = msg_strdupf("'%s' is not a snapshot id", id);
		}
		return -EINVAL;
	}
	r = blob_read_all(bs, id, MANIFEST_MAX, &buf, &len);
	if (r < 0) {
		if (cause) {
			char eb[128];
			*cause = r == -ENOENT ? msg_strdupf("snapshot %s not found", id)
			                      : msg_strdupf("cannot read snapshot %s: %s", id,
			                                    snapshot_errstr(-r, eb));
		}
		return r;
	}
	m->json = cJSON_ParseWithLength(buf, len);
	free(buf);
	r = -EBADMSG; /* until the whole manifest is checked */
	if (!m->json) {
		goto out;
	}
	ver = cJSON_GetObjectItemCaseSensitive(m->json, "version");
	arr = cJSON_GetObjectItemCaseSensitive(m->json, "entries");
	if (!cJSON_IsNumber(ver) || ver->valuedouble != 1 || !cJSON_IsArray(arr)) {
		goto out;
	}
	m->n = (size_t)cJSON_GetArraySize(arr);
	m->e = calloc(m->n ? m->n : 1, sizeof(*m->e));
	if (!m->e) {
		r = -ENOMEM;
		goto out;
	}
	cJSON_ArrayForEach(it, arr)
	{
		struct mentry *e = &m->e[i];
		const char *type =
		    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "type"));
		e->path = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "path"));
		if (!e->path || !type || !valid_relpath(e->path) ||
		    (i > 0 && strcmp(m->e[i - 1].path, e->path) >= 0)) {
			goto out;
		}
		if (strcmp(type, "file") == 0) {
			e->type = E_FILE;
			e->sha =
			    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "sha256"));
			if (!blob_valid_hex(e->sha) || !get_mode(it, &e->mode)) {
				goto out;
			}
			const cJSON *sz = cJSON_GetObjectItemCaseSensitive(it, "size");
			if (!cJSON_IsNumber(sz) || sz->valuedouble < 0 || sz->valuedouble > 9e15) {
				goto out;
			}
			e->size = (uint64_t)sz->valuedouble;
		} else if (strcmp(type, "dir") == 0) {
			e->type = E_DIR;
			if (!get_mode(it, &e->mode)) {
				goto out;
			}
		} else if (strcmp(type, "symlink") == 0) {
			e->type = E_SYMLINK;
			e->target =
			    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "target"));
			if (!e->target || !snapshot_link_inside(e->path, e->target)) {
				goto out;
			}
		} else {
			goto out;
		}
		i++;
	}
	r = 0;
out:
	if (r == -EBADMSG && cause) {
		*cause = msg_strdupf("snapshot %s has a damaged manifest", id);
	}
	if (r < 0) {
		snapshot_manifest_finish(m);
		memset(m, 0, sizeof(*m));
	}
	return r;
}

static int cmp_mentry_key(const void *key, const void *elem)
{
	return strcmp(key, ((const struct mentry *)elem)->path);
}

/* Append s[0..l) to the growing string *buf. */
static int strbuf_add(char **buf, size_t *len, size_t *cap, const char *s, size_t l)
{
	if (*len + l + 1 > *cap) {
		size_t ncap = *cap ? *cap : 64;
		while (ncap < *len + l + 1) {
			ncap *= 2;
		}
		char *nb = realloc(*buf, ncap);
		if (!nb) {
			return -ENOMEM;
		}
		*buf = nb;
		*cap = ncap;
	}
	memcpy(*buf + *len, s, l);
	*len += l;
	(*buf)[*len] = '\0';
	return 0;
}

/* Resolve relpath in the manifest component by component, as the kernel
 * would in the materialised tree: symlinks are replaced by their targets
 * (relative to the link's directory), ".." goes up (never above the root). */
static int resolve_file(const struct manifest *m, const char *relpath, bool *ret)
{
	char *todo = strdup(relpath); /* what is left to resolve */
	char *cur = NULL;             /* the directory resolved so far; "" is the root */
	size_t curlen = 0, curcap = 0;
	size_t pos = 0;
	int hops = 0;
	int r;

	*ret = false;
	if (!todo) {
		return -ENOMEM;
	}
	r = strbuf_add(&cur, &curlen, &curcap, "", 0);
	if (r < 0 || todo[0] == '/') {
		goto out;
	}
	while (todo[pos]) {
		char *c = todo + pos;
		char *s = strchr(c, '/');
		size_t l = s ? (size_t)(s - c) : strlen(c);
		size_t keep = curlen;
		const struct mentry *e;
		char *next = NULL;

		pos = s ? (size_t)(s - todo) + 1 : pos + l;
		if (l == 0 || (l == 1 && c[0] == '.')) {
			continue;
		}
		if (l == 2 && c[0] == '.' && c[1] == '.') {
			char *up;
			if (curlen == 0) {
				goto out; /* above the root: not in the snapshot */
			}
			up = strrchr(cur, '/');
			curlen = up ? (size_t)(up - cur) : 0;
			cur[curlen] = '\0';
			continue;
		}
		if (curlen && (r = strbuf_add(&cur, &curlen, &curcap, "/", 1)) < 0) {
			goto out;
		}
		if ((r = strbuf_add(&cur, &curlen, &curcap, c, l)) < 0) {
			goto out;
		}
		e = bsearch(cur, m->e, m->n, sizeof(*m->e), cmp_mentry_key);
		if (!e) {
			goto out;
		}
		if (e->type == E_FILE) {
			/* Anything after a file, even a lone '/', is not a file. */
			*ret = !s;
			goto out;
		}
		if (e->type == E_DIR) {
			continue;
		}
		/* A symlink: its target, then whatever followed it. */
		if (++hops > MAX_SYMLINK_HOPS) {
			goto out;
		}
		curlen = keep;
		cur[curlen] = '\0';
		if (asprintf(&next, "%s%s%s", e->target, s ? "/" : "", s ? s + 1 : "") < 0) {
			r = -ENOMEM;
			goto out;
		}
		free(todo);
		todo = next;
		pos = 0;
	}
out:
	free(todo);
	free(cur);
	return r;
}

int snapshot_info_has_file(struct blobstore *bs, const struct snapshot_info *info,
                           const char *relpath, bool *ret)
{
	static const enum etype types[] = {
	    [E_FILE] = E_FILE, [E_DIR] = E_DIR, [E_SYMLINK] = E_SYMLINK};
	const struct held_tree *h = info->tree;
	struct manifest m = {0};
	bool found;
	int r;

	if (!h) {
		return snapshot_has_file(bs, info->id, relpath, ret);
	}
	m.e = calloc(h->n ? h->n : 1, sizeof(*m.e));
	if (!m.e) {
		return -ENOMEM;
	}
	for (size_t i = 0; i < h->n; i++) {
		const struct entry *e = &h->ents[i];
		if (e->skipped) {
			continue;
		}
		m.e[m.n++] = (struct mentry){.path = e->path,
		                             .sha = e->hex,
		                             .target = e->target,
		                             .size = e->size,
		                             .mode = e->mode,
		                             .type = types[e->type]};
	}
	r = resolve_file(&m, relpath, &found);
	if (r == 0) {
		*ret = found;
	}
	free(m.e);
	return r;
}

int snapshot_has_file(struct blobstore *bs, const char *id, const char *relpath, bool *ret)
{
	struct manifest m;
	bool found;
	int r;

	r = snapshot_manifest_load(bs, id, &m, NULL);
	if (r < 0) {
		return r;
	}
	r = resolve_file(&m, relpath, &found);
	if (r == 0) {
		*ret = found;
	}
	snapshot_manifest_finish(&m);
	return r;
}

int snapshot_foreach(struct blobstore *bs, const char *id,
                     int (*cb)(void *ud, const struct snapshot_entry *e), void *ud, char **cause)
{
	static const enum snapshot_type types[] = {
	    [E_FILE] = SNAPSHOT_FILE, [E_DIR] = SNAPSHOT_DIR, [E_SYMLINK] = SNAPSHOT_SYMLINK};
	struct manifest m;
	int r;

	r = snapshot_manifest_load(bs, id, &m, cause);
	if (r < 0) {
		return r;
	}
	for (size_t i = 0; i < m.n; i++) {
		const struct mentry *me = &m.e[i];
		struct snapshot_entry e = {
		    .path = me->path,
		    .type = types[me->type],
		    .mode = me->mode,
		    .size = me->size,
		    .sha256 = me->sha,
		    .target = me->target,
		};
		r = cb(ud, &e);
		if (r != 0) {
			break;
		}
	}
	snapshot_manifest_finish(&m);
	return r < 0 ? r : 0;
}

struct files_list {
	cJSON *files;
	int max;
	bool more; /* snapshot_foreach says 0 when stopped */
};

static int files_cb(void *ud, const struct snapshot_entry *e)
{
	struct files_list *l = ud;
	cJSON *f;

	if (e->type != SNAPSHOT_FILE) {
		return 0;
	}
	if (cJSON_GetArraySize(l->files) >= l->max) {
		l->more = true;
		return 1;
	}
	f = cJSON_CreateObject();
	char *path = utf8_sanitize(e->path, strlen(e->path), NULL);
	cJSON_AddStringToObject(f, "path", path ? path : "");
	free(path);
	cJSON_AddNumberToObject(f, "size", (double)e->size);
	cJSON_AddStringToObject(f, "sha256", e->sha256);
	cJSON_AddItemToArray(l->files, f);
	return 0;
}

int snapshot_files_json(struct blobstore *bs, const char *id, int max, cJSON **ret, char **cause)
{
	struct files_list l = {cJSON_CreateArray(), max, false};
	int err;

	*ret = NULL;
	if (!l.files) {
		return -ENOMEM;
	}
	err = snapshot_foreach(bs, id, files_cb, &l, cause);
	*ret = l.files;
	return err < 0 ? err : l.more;
}

#include "target.h"

#include <string.h>

#include "context.h"
#include "msg.h"
#include "run.h"

struct target *target_find(struct daemon *d, const char *name)
{
	for (struct target *t = d->targets; t; t = t->next) {
		if (strcmp(t->name, name) == 0) {
			return t;
		}
	}
	return NULL;
}

struct target *target_of(const struct run *r)
{
	return r->target ? r->target : r->d->targets;
}

const struct target_ops *target_ops_of(const struct run *r)
{
	return target_of(r)->ops;
}

bool target_has_room(const struct run *r)
{
	const struct target *t = target_of(r);

	return t->active < t->max_jobs;
}

bool target_any_room(struct daemon *d)
{
	for (struct target *t = d->targets; t; t = t->next) {
		if (t->active < t->max_jobs) {
			return true;
		}
	}
	return false;
}

void target_slot_take(struct run *r)
{
	if (r->holds_slot) {
		return;
	}
	r->holds_slot = true;
	target_of(r)->active++;
}

void target_slot_release(struct run *r)
{
	if (!r->holds_slot) {
		return;
	}
	r->holds_slot = false;
	target_of(r)->active--;
}

cJSON *target_json(const struct target *t)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "name", t->name);
	cJSON_AddStringToObject(o, "type", t->ops->type);
	cJSON_AddNumberToObject(o, "max_jobs", t->max_jobs);
	cJSON_AddNumberToObject(o, "active", t->active);
	if (t->config) {
		const cJSON *kv;
		cJSON_ArrayForEach(kv, t->config) {
			if (!cJSON_GetObjectItemCaseSensitive(o, kv->string)) {
				cJSON_AddItemToObject(o, kv->string, cJSON_Duplicate(kv, true));
			}
		}
	}
	if (t->created_at > 0) {
		msg_add_time(o, "created_at", t->created_at);
	}
	return o;
}

#include "queue.h"

#include "context.h"
#include "run.h"
#include "runs_priv.h"

static bool before(const struct run *a, const struct run *b)
{
	if (a->priority != b->priority) {
		return a->priority > b->priority;
	}
	return a->seq < b->seq;
}

void queue_enqueue(struct daemon *d, struct run *r)
{
	struct run **pp;

	/* The queue is a singly linked list kept in order. Inserting is linear
	 * in its length, fine for the thousands of queued runs a workstation
	 * sees; admission takes from the head. */
	for (pp = &d->runs->queue_head; *pp && !before(r, *pp); pp = &(*pp)->qnext) {
	}
	r->qnext = *pp;
	*pp = r;
}

void queue_remove(struct daemon *d, struct run *r)
{
	if (!d->runs) {
		return;
	}
	for (struct run **pp = &d->runs->queue_head; *pp; pp = &(*pp)->qnext) {
		if (*pp == r) {
			*pp = r->qnext;
			r->qnext = NULL;
			return;
		}
	}
}

struct run *queue_head(struct daemon *d)
{
	return d->runs ? d->runs->queue_head : NULL;
}

void queue_clear(struct daemon *d)
{
	if (d->runs) {
		d->runs->queue_head = NULL;
	}
}

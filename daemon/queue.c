#include "queue.h"

#include "daemon.h"
#include "exec.h"
#include "log.h"
#include "run.h"

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
	for (pp = &d->queue_head; *pp && !before(r, *pp); pp = &(*pp)->qnext) {
	}
	r->qnext = *pp;
	*pp = r;
}

void queue_remove(struct daemon *d, struct run *r)
{
	for (struct run **pp = &d->queue_head; *pp; pp = &(*pp)->qnext) {
		if (*pp == r) {
			*pp = r->qnext;
			r->qnext = NULL;
			return;
		}
	}
}

void queue_kick(struct daemon *d)
{
	while (!d->stopping && !d->resuming && d->queue_head && d->active < d->max_runs) {
		struct run *r = d->queue_head;
		d->queue_head = r->qnext;
		r->qnext = NULL;
		r->holds_slot = true;
		d->active++;
		exec_prepare(r);
	}
}

#include "queue.h"

#include "daemon.h"
#include "exec.h"
#include "log.h"
#include "run.h"
#include "target.h"

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
	struct run **pp = &d->queue_head;

	/* Each run needs a place on its own target: a full target holds back
	 * its runs only, and the others pass them in queue order. */
	while (!d->stopping && !d->resuming && *pp && target_any_room(d)) {
		struct run *r = *pp;
		if (!target_has_room(r)) {
			pp = &r->qnext;
			continue;
		}
		*pp = r->qnext;
		r->qnext = NULL;
		target_slot_take(r);
		exec_prepare(r);
		/* exec_prepare may end runs, and they kick the queue in turn:
		 * look again from the head. */
		pp = &d->queue_head;
	}
}

/* run.submit: from a request to a queued run with its snapshot stored. */
#pragma once

struct request;

/* The run.submit op. */
void submit_op(struct request *req);

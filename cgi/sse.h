/*
 * sse: GET /fetch-data?stream=true as Server-Sent Events. Sends the cached snapshot at once,
 * then, while a sync runs, its progress, and the new snapshot (or the failure) when it ends.
 */
#ifndef PMACACHE_SSE_H
#define PMACACHE_SSE_H

#include "req.h"

/* Serve one stream; returns when it is done or the client has gone. */
void sse_serve(struct req *r);

#endif

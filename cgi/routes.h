/* routes: the endpoint table and its handlers. */
#ifndef PMACACHE_ROUTES_H
#define PMACACHE_ROUTES_H

#include "req.h"

#include <sys/types.h>

/* Route, authenticate and answer one request. */
void routes_dispatch(struct req *r);

/* Whether an If-None-Match header value names etag (quoted). */
int routes_etag_match(const char *inm, const char *etag);

/* Send len bytes of fd from off to the client. Returns 0, or -1 if the client went away. */
int routes_copy_body(struct req *r, int fd, off_t off, long long len);

#endif

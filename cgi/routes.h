/* routes: the endpoint table and its handlers. */
#ifndef PMACACHE_ROUTES_H
#define PMACACHE_ROUTES_H

#include "req.h"

/* Route, authenticate and answer one request. */
void routes_dispatch(struct req *r);

#endif

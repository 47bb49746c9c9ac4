/* spawn: start pmacache-sync in the background for POST /refresh and ?refresh=true. */
#ifndef PMACACHE_SPAWN_H
#define PMACACHE_SPAWN_H

#include "../common/conf.h"

#include <stddef.h>

enum spawn_result { SPAWN_STARTED, SPAWN_RUNNING, SPAWN_ERROR };

/*
 * Take the sync lock; if another sync holds it, return SPAWN_RUNNING. Otherwise start
 * "pmacache-sync -c <config> --lock-fd 3" detached (new session, no shell, explicit
 * environment, only fds 0-3 open: /dev/null, /dev/null, the sync log and the lock),
 * which inherits the lock, so that exactly one caller ever gets SPAWN_STARTED.
 */
enum spawn_result spawn_sync(const struct conf *c, char *err, size_t errlen);

/* Where the sync binary is: sync_bin, or beside this executable. */
void spawn_init(const struct conf *c);

#endif

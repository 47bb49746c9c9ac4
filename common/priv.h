/*
 * priv: least privilege. Started as root, pmacache-sync becomes the configured user and
 * group (config `user`, `group`) before anything else; secret files (api_keys_file,
 * pma_password_file) must be 0600 or 0640 and owned by root or the user this runs as.
 */
#ifndef PMACACHE_PRIV_H
#define PMACACHE_PRIV_H

#include "conf.h"

#include <stddef.h>
#include <sys/stat.h>

/*
 * When the effective user is root: initgroups, setgid and setuid to c->user and c->group,
 * then check that root cannot be regained. Does nothing for any other user. Returns 0, or
 * -1 with a message saying what failed and how to fix it (e.g. the user does not exist).
 */
int priv_drop(const struct conf *c, char *err, size_t errlen);

/* Whether priv_drop found root and became the user. */
int priv_dropped(void);

/*
 * Whether the file described by st may hold a secret: a regular file, mode 0600 or 0640 (or
 * stricter), owned by root or by the effective user. Returns 0, or -1 with one message
 * naming what (the config key), path, mode and owner, and the fix, in err.
 */
int priv_secret_ok(const char *what, const char *path, const struct stat *st, char *err,
                   size_t errlen);

#endif

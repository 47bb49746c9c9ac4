/* auth: X-API-Key against api_keys_file, reloaded when the file changes. */
#ifndef PMACACHE_AUTH_H
#define PMACACHE_AUTH_H

#include <stddef.h>

#define AUTH_MAX_LEN 256 /* a key is 16 to AUTH_MAX_LEN - 1 bytes */

/*
 * Whether key (may be NULL) is one of the keys in the file at path. Re-reads the file when
 * it changed: device, inode, size, mtime or ctime, and for two seconds after a change its
 * contents too (a rewrite within one timestamp tick). Lines of any length; no cap on the
 * number of keys; a key line too short or too long is refused with file:line in the log.
 * Compares against every key, in time that depends only on the stored keys. Thread-safe.
 * A missing or unreadable file admits nobody.
 */
int auth_check(const char *path, const char *key);

/* How many keys the last read of the file loaded. */
size_t auth_count(void);

/* Constant-time equality: time depends on the length of want only. */
int auth_equal(const char *given, size_t given_len, const char *want, size_t want_len);

#endif

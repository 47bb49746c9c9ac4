/* auth: X-API-Key against api_keys_file, reloaded when the file changes. */
#ifndef PMACACHE_AUTH_H
#define PMACACHE_AUTH_H

#include <stddef.h>

/*
 * Whether key (may be NULL) is one of the keys in the file at path. Re-reads the file when
 * its inode, size or mtime changed. Compares against every key, in time that depends only
 * on the stored keys. Thread-safe. A missing or unreadable file admits nobody.
 */
int auth_check(const char *path, const char *key);

/* Constant-time equality: time depends on the length of want only. */
int auth_equal(const char *given, size_t given_len, const char *want, size_t want_len);

#endif

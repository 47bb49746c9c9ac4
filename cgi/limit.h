/*
 * limit: the bad-key limit per client address, kept by the responders themselves so that it
 * is checked before the key. nginx's limit_req could only count the 401s after the responder
 * had already told a guesser which guess was right.
 */
#ifndef PMACACHE_LIMIT_H
#define PMACACHE_LIMIT_H

/*
 * The table, in shared memory that the responder processes forked after this call share:
 * per_min bad keys a minute, after a burst of `burst` (nginx's leaky bucket, burst nodelay:
 * the first bad key and `burst` more pass at once). Returns 0, or -1 (no memory).
 */
int limit_init(int per_min, int burst);

/*
 * Whether addr has used up its bad keys: the seconds until it may try again (Retry-After),
 * or 0. Counts nothing: a right key is checked here, never counted.
 */
int limit_blocked(const char *addr);

/* Count one wrong or missing key for addr. */
void limit_bad(const char *addr);

/* The same at a given time (seconds on CLOCK_MONOTONIC), for the tests. */
int limit_blocked_at(const char *addr, double now);
void limit_bad_at(const char *addr, double now);

#endif

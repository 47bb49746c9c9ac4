#include "../../cgi/limit.h"
#include "t.h"

#include <stdio.h>

/* Issue 13: past the bad-key limit, every key waits; a right key is never counted. */
void test_limit(void)
{
	double t = 1000.0;
	int i, n401 = 0, wait;

	CHECK(limit_init(6, 5) == 0, "init");
	/* 40 right keys: checked, never counted. */
	for (i = 0; i < 40; i++)
		CHECK(limit_blocked_at("10.0.0.1", t) == 0, "right key %d not blocked", i);
	/* A flood of wrong keys: the first and the burst (5) pass, then the address waits. */
	for (i = 0; i < 30; i++) {
		if (limit_blocked_at("10.0.0.1", t) == 0) {
			n401++;
			limit_bad_at("10.0.0.1", t);
		}
	}
	CHECK(n401 == 6, "6 bad keys answered before the limit, got %d", n401);
	wait = limit_blocked_at("10.0.0.1", t);
	CHECK(wait == 10, "the right key now waits too: Retry-After 10 s, got %d", wait);
	CHECK(limit_blocked_at("10.0.0.2", t) == 0, "another address is not limited");
	CHECK(limit_blocked_at("10.0.0.1", t + 9.5) == 1, "still limited 9.5 s on");
	CHECK(limit_blocked_at("10.0.0.1", t + 10) == 0, "one bad key a window later");
	limit_bad_at("10.0.0.1", t + 10);
	CHECK(limit_blocked_at("10.0.0.1", t + 10) > 0, "and limited again after it");
	CHECK(limit_blocked_at("10.0.0.1", t + 70) == 0, "a minute on: free");
	/* Many addresses: the table keeps working, each new one starts free. */
	for (i = 0; i < 20000; i++) {
		char a[32];
		snprintf(a, sizeof(a), "2001:db8::%x", i);
		limit_bad_at(a, t + 100);
	}
	CHECK(limit_blocked_at("2001:db8::4e1f", t + 100) == 0, "one bad key is under the burst");
	CHECK(limit_blocked_at(NULL, t) == 0, "no address is an address too");
}

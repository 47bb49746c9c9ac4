#include "limit.h"

#include "../common/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define LIMIT_SLOTS 8192 /* addresses tracked at once (about 0.6 MB) */
#define LIMIT_PROBE 16   /* slots looked at per address */

struct slot {
	char addr[48]; /* REMOTE_ADDR as nginx gives it; "" for a free slot */
	double excess; /* bad keys over the rate, as of `last` */
	double last;
};

struct table {
	pthread_mutex_t mu; /* process-shared, robust: a responder may die holding it */
	double rate;        /* bad keys per second */
	double burst;
	struct slot s[LIMIT_SLOTS];
};

static struct table *tab;

int limit_init(int per_min, int burst)
{
	pthread_mutexattr_t ma;
	void *p =
	    mmap(NULL, sizeof(*tab), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return -1;
	tab = p;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&tab->mu, &ma);
	pthread_mutexattr_destroy(&ma);
	tab->rate = per_min / 60.0;
	tab->burst = burst;
	return 0;
}

static void lock(void)
{
	if (pthread_mutex_lock(&tab->mu) == EOWNERDEAD)
		pthread_mutex_consistent(&tab->mu); /* the table is counters: still usable */
}

static uint32_t hash(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

static double excess_at(const struct slot *sl, double now)
{
	double e = sl->excess - tab->rate * (now - sl->last);

	return e > 0 ? e : 0;
}

/* The slot of addr, or NULL. With create, a free, spent or else the least used slot. */
static struct slot *find(const char *addr, double now, int create)
{
	uint32_t h = hash(addr);
	struct slot *best = NULL;
	double best_e = 1e300;
	int i;

	for (i = 0; i < LIMIT_PROBE; i++) {
		struct slot *sl = &tab->s[(h + (uint32_t)i) % LIMIT_SLOTS];
		double e;
		if (sl->addr[0] && strcmp(sl->addr, addr) == 0)
			return sl;
		e = sl->addr[0] ? excess_at(sl, now) : -1;
		if (e < best_e) {
			best_e = e;
			best = sl;
		}
	}
	if (!create)
		return NULL;
	/* A slot whose bucket has drained is as good as free: its address starts afresh. */
	snprintf(best->addr, sizeof(best->addr), "%s", addr);
	best->excess = -1; /* the first bad key brings it to 0, as in nginx */
	best->last = now;
	return best;
}

int limit_blocked_at(const char *addr, double now)
{
	struct slot *sl;
	double e;
	int wait = 0;

	if (tab == NULL)
		return 0;
	lock();
	if ((sl = find(addr ? addr : "", now, 0)) != NULL && sl->excess >= 0) {
		e = excess_at(sl, now);
		/* One more bad key would take it over the burst: wait until it would not. */
		if (e + 1 > tab->burst) {
			double w = (e + 1 - tab->burst) / tab->rate;
			wait = (int)w + ((double)(int)w < w);
			if (wait < 1)
				wait = 1;
		}
	}
	pthread_mutex_unlock(&tab->mu);
	return wait;
}

void limit_bad_at(const char *addr, double now)
{
	struct slot *sl;

	if (tab == NULL)
		return;
	lock();
	sl = find(addr ? addr : "", now, 1);
	sl->excess = sl->excess < 0 ? 0 : excess_at(sl, now) + 1;
	sl->last = now;
	pthread_mutex_unlock(&tab->mu);
}

static double mono(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int limit_blocked(const char *addr)
{
	return limit_blocked_at(addr, mono());
}

void limit_bad(const char *addr)
{
	limit_bad_at(addr, mono());
}

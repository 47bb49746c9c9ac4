/* sync: what the parts of pmacache-sync share. */
#ifndef PMACACHE_SYNC_H
#define PMACACHE_SYNC_H

#include <signal.h>
#include <stddef.h>

/* Exit codes, one per failure class (documented in the README and pmacache-sync(1)). */
enum sync_exit {
	EXIT_OK = 0,
	EXIT_CONFIG = 2,     /* bad config or command line */
	EXIT_BROWSER = 3,    /* chromedriver or Chromium failed */
	EXIT_LOGIN = 4,      /* phpMyAdmin rejected the login */
	EXIT_PMA = 5,        /* phpMyAdmin unreachable or failing */
	EXIT_EXPORT = 6,     /* the export or its download failed */
	EXIT_VALIDATION = 7, /* the export is not a valid CSV of the table */
	EXIT_WRITE = 8,      /* the cache could not be written */
	EXIT_RUNNING = 9,    /* another sync holds the lock */
	EXIT_TIMEOUT = 10,   /* sync_timeout passed, or stopped by a signal */
};

/* Set by SIGTERM, SIGINT (2) or SIGALRM from sync_timeout (1). Long waits poll it. */
extern volatile sig_atomic_t sync_stop;

/* Report a phase: live line on a terminal, a log line otherwise, and progress.json. */
void sync_phase(const char *phase, long long rows, long long bytes);

#endif

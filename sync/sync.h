/* sync: what the parts of pmacache-sync share. */
#ifndef PMACACHE_SYNC_H
#define PMACACHE_SYNC_H

#include <signal.h>
#include <stddef.h>

/* Exit codes (documented in the README and pmacache-sync(8)); the classes below map onto them. */
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

/*
 * What failed, said where it failed. Every step returns SC_OK or its class; main maps the
 * class to the exit code (enum sync_exit) with one table (sync_exit_code).
 */
enum sync_class {
	SC_OK = 0,
	SC_CONFIG,      /* bad config, command line or password file */
	SC_DRIVER,      /* chromedriver missing, dead or not answering */
	SC_BROWSER,     /* Chromium failed: crashed, closed, session lost */
	SC_LOGIN,       /* phpMyAdmin rejected the login, or asked for it again */
	SC_UNREACHABLE, /* phpMyAdmin could not be reached, or did not answer in time */
	SC_PMA,         /* phpMyAdmin answered with an error page, or with a page not its own */
	SC_EXPORT,      /* the export did not start or failed */
	SC_CUT,         /* the export's body was cut off */
	SC_INVALID,     /* the export is not a valid CSV of the table (HTML, truncated, shrunk) */
	SC_WRITE,       /* the cache could not be written */
	SC_RUNNING,     /* another sync holds the lock */
	SC_TIMEOUT,     /* sync_timeout passed */
	SC_STOPPED,     /* stopped by a signal */
};

/* The exit code of a class (main.c's table). */
int sync_exit_code(enum sync_class cls);

/* The class of a stop: SC_TIMEOUT (sync_stop 1) or SC_STOPPED (2). */
#define SC_OF_STOP(v) ((v) == 1 ? SC_TIMEOUT : SC_STOPPED)

/* Set by SIGTERM, SIGINT (2) or SIGALRM from sync_timeout (1). Long waits poll it. */
extern volatile sig_atomic_t sync_stop;

/* Report a phase: live line on a terminal, a log line otherwise, and progress.json. */
void sync_phase(const char *phase, long long rows, long long bytes);

#endif

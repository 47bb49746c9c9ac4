/*
 * browser: the lifecycle of the browser the sync drives. Starts chromedriver (unless
 * webdriver_url names one) and a headless Chromium session in a temp folder of its own,
 * ends them, reaps what is left, and says what a failed WebDriver command means as an exit
 * class (enum sync_class). What the browser does once started is pma.c's.
 */
#ifndef PMACACHE_BROWSER_H
#define PMACACHE_BROWSER_H

#include "../common/conf.h"
#include "wd.h"

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

struct browser {
	struct wd wd;   /* the WebDriver client; wd.session is set while a session runs */
	pid_t driver;   /* the chromedriver started here, 0 if none */
	char dir[1200]; /* temp folder in cache_dir: profile, home, downloads, driver log */
	char dl[1300];  /* the download folder, dir/downloads */
	volatile sig_atomic_t *stop; /* non-zero: stop now (1: sync_timeout, 2: a signal) */
	char *err;                   /* where failures are told */
	size_t errlen;
};

/*
 * Make b->dir, start the driver and a session. stop is polled during every wait. Returns an
 * enum sync_class, with the reason in err. On any return, browser_stop(b) ends what was
 * started; the caller removes b->dir (proc_rmtree) once done with the download.
 */
int browser_start(struct browser *b, const struct conf *c, volatile sig_atomic_t *stop, char *err,
                  size_t errlen);

/* End the session and the driver, and reap every child left. Safe to call twice. */
void browser_stop(struct browser *b);

/* Whether the driver started here has died (0 when it runs, or when there is none). */
int browser_driver_died(struct browser *b);

/*
 * A failed command (rc from wd.h) of the step what: the message goes to err, its class
 * (enum sync_class) comes back. A stop, a dead driver and the browser's own failures have
 * their own classes; other failures are the step's, code.
 */
int browser_fail(struct browser *b, int rc, int code, const char *what);

#endif

/* pma: drive phpMyAdmin through headless Chromium to a CSV export of one table. */
#ifndef PMACACHE_PMA_H
#define PMACACHE_PMA_H

#include "../common/conf.h"

#include <signal.h>
#include <stddef.h>

/* What the flow needs from its caller, the way snap_opts gives them to snap. */
struct pma_hooks {
	/* Polled during every wait: 0 to go on, 1 when sync_timeout passed, 2 on a signal. */
	volatile sig_atomic_t *stop;
	/* Report a phase ("login", "export", "download"), with bytes so far or -1. */
	void (*phase)(void *arg, const char *phase, long long rows, long long bytes);
	void *arg;
};

/*
 * Log in to pma_url, export pma_db.pma_table as CSV and wait for the download. Starts
 * chromedriver (unless webdriver_url is set) and the browser in a temp folder in cache_dir,
 * whose path goes to tmpdir; the CSV's path goes to csv_path. The driver and the browser are
 * gone when this returns, on every path; the caller removes tmpdir (proc_rmtree) once it has
 * read the CSV. Returns an enum sync_exit code, with the reason in err.
 */
int pma_export(const struct conf *c, const struct pma_hooks *hooks, char *tmpdir, size_t tmplen,
               char *csv_path, size_t pathlen, char *err, size_t errlen);

/*
 * The same up to the login, then check that the table's export page shows its form: the
 * login works and the table exists. Nothing is exported. Returns an enum sync_exit code.
 */
int pma_check_login(const struct conf *c, char *tmpdir, size_t tmplen, char *err, size_t errlen);

/* 0 when the password file is acceptable (exists, 0600/0640, root's or ours, not empty). */
int pma_password_ok(const struct conf *c, char *err, size_t errlen);

#endif

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

struct stream;

/* What an export leaves to its caller. */
struct pma_out {
	char tmpdir[4096];     /* the browser's temp folder: the caller removes it (proc_rmtree) */
	char csv_path[4096];   /* export_via = browser: the downloaded CSV */
	struct stream *stream; /* export_via = http: the CSV as it arrives (stream.h); the caller
	                        * reads stream_fd and ends it with stream_end */
};

/*
 * Log in to pma_url and export pma_db.pma_table as CSV. Starts chromedriver (unless
 * webdriver_url is set) and the browser in a temp folder in cache_dir (out->tmpdir).
 * export_via = http: the browser logs in and opens the export page; libcurl then POSTs that
 * form with the browser's cookies and user agent, and the body streams into out->stream as
 * it arrives (this returns once its first byte is in). export_via = browser: the browser
 * submits the form and downloads the file; its path goes to out->csv_path. The driver and the
 * browser are gone when this returns, on every path. Returns an enum sync_class, with the
 * reason in err.
 */
int pma_export(const struct conf *c, const struct pma_hooks *hooks, struct pma_out *out, char *err,
               size_t errlen);

/*
 * The same up to the login, then check that the table's export page shows its form: the
 * login works and the table exists. Nothing is exported. Returns an enum sync_class.
 */
int pma_check_login(const struct conf *c, char *tmpdir, size_t tmplen, char *err, size_t errlen);

/* 0 when the password file is acceptable (exists, 0600/0640, root's or ours, not empty). */
int pma_password_ok(const struct conf *c, char *err, size_t errlen);

#endif

/* pma: drive phpMyAdmin through headless Chromium to a CSV export of one table. */
#ifndef PMACACHE_PMA_H
#define PMACACHE_PMA_H

#include "../common/conf.h"

#include <stddef.h>

/*
 * Log in, export pma_db.pma_table as CSV and move the download to a temp file in cache_dir,
 * whose path goes to csv_path (the caller unlinks it). Starts and stops chromedriver and
 * Chromium, and leaves no process or temp folder behind. Returns an enum sync_exit code.
 */
int pma_export(const struct conf *c, char *csv_path, size_t pathlen, char *err, size_t errlen);

#endif

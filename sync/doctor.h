/* doctor: pmacache-sync --check, one line per check with OK or FAIL and the fix. */
#ifndef PMACACHE_DOCTOR_H
#define PMACACHE_DOCTOR_H

#include "../common/conf.h"

/* Which checks: everything (DOCTOR_ALL, plus the phpMyAdmin login with DOCTOR_LOGIN), or
 * only the key file (DOCTOR_KEYS: what `pmacache start` needs before it serves). */
enum { DOCTOR_ALL = 0, DOCTOR_LOGIN = 1, DOCTOR_KEYS = 2 };

/* Run the checks on stdout. Returns the number of FAIL lines (DOCTOR_KEYS: of the checks
 * that leave nobody able to authenticate). */
int doctor_run(const struct conf *c, int what);

#endif

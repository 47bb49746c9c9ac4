/* logsys: log lines to syslog (facility daemon), for log.c. */
#ifndef PMACACHE_LOGSYS_H
#define PMACACHE_LOGSYS_H

/* Open the connection to syslog now (LOG_NDELAY), tagged prog[pid]. */
void logsys_open(const char *prog);

/* One line at log.c's level lvl (0 error, 1 warning, 2 info, 3 debug). */
void logsys_line(int lvl, const char *msg);

#endif

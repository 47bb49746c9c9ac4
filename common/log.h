/* log: one timestamped line per event on stderr, or syslog. Never pass a secret. */
#ifndef PMACACHE_LOG_H
#define PMACACHE_LOG_H

#include <stddef.h>

enum log_level { LOG_ERR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Set the program name printed on every line and the lowest level printed. */
void log_init(const char *prog, enum log_level max);
/* With on, lines go to syslog (facility daemon) instead of stderr: config log_syslog. */
void log_syslog(int on);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Format an error message into buf (the err[]/errlen convention of every module). */
void errf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif

#include "log.h"

#include "logsys.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static const char *log_prog = "pmacache";
static enum log_level log_max = LOG_INFO;
static int log_sys; /* lines go to syslog instead of stderr */

void log_init(const char *prog, enum log_level max)
{
	log_prog = prog;
	log_max = max;
}

void log_syslog(int on)
{
	if (on && !log_sys)
		logsys_open(log_prog);
	log_sys = on;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	static const char *names[] = {"error", "warning", "info", "debug"};
	char line[2048], ts[32];
	struct timespec now;
	struct tm tm;
	va_list ap;
	int n, m;

	if (lvl > log_max)
		return;
	if (log_sys) { /* syslog stamps the time, the program and its pid */
		n = snprintf(line, sizeof(line), "%s: ", names[lvl]);
		va_start(ap, fmt);
		vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
		va_end(ap);
		logsys_line((int)lvl, line);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line, sizeof(line), "%s.%03ldZ %s[%ld] %s: ", ts, now.tv_nsec / 1000000,
	             log_prog, (long)getpid(), names[lvl]);
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	/* One write per line, so lines of concurrent threads and processes never interleave. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

void errf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

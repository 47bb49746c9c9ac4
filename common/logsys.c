/* logsys: the syslog(3) side of log.c, apart because <syslog.h> names collide with ours. */
#include "logsys.h"

#include <syslog.h>

void logsys_open(const char *prog)
{
	openlog(prog, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void logsys_line(int lvl, const char *msg)
{
	static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};

	syslog(prio[lvl >= 0 && lvl <= 3 ? lvl : 0], "%s", msg);
}

#include "priv.h"

#include "log.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int dropped;

int priv_dropped(void)
{
	return dropped;
}

int priv_drop(const struct conf *c, char *err, size_t errlen)
{
	struct passwd *pw;
	struct group *gr;

	if (geteuid() != 0)
		return 0;
	errno = 0;
	if ((pw = getpwnam(c->user)) == NULL) {
		errf(err, errlen,
		     "%s: user '%s' does not exist: create it (useradd --system --user-group "
		     "--home-dir /var/lib/pmacache --shell /usr/sbin/nologin %s) or set `user`",
		     c->path, c->user, c->user);
		return -1;
	}
	if ((gr = getgrnam(c->group)) == NULL) {
		errf(err, errlen,
		     "%s: group '%s' does not exist: create it (groupadd --system %s) "
		     "or set `group`",
		     c->path, c->group, c->group);
		return -1;
	}
	if (pw->pw_uid == 0 || gr->gr_gid == 0) {
		errf(err, errlen,
		     "%s: user '%s' and group '%s' must not be root: pmacache never "
		     "runs as root",
		     c->path, c->user, c->group);
		return -1;
	}
	if (initgroups(pw->pw_name, gr->gr_gid) < 0 || setgid(gr->gr_gid) < 0 ||
	    setuid(pw->pw_uid) < 0) {
		errf(err, errlen, "cannot become %s:%s: %s", c->user, c->group, strerror(errno));
		return -1;
	}
	if (setuid(0) == 0 || geteuid() == 0 || getegid() == 0) {
		errf(err, errlen, "cannot become %s:%s: root could be regained", c->user, c->group);
		return -1;
	}
	/* root's HOME is not ours: chromedriver and Chromium look there for caches. */
	setenv("HOME", pw->pw_dir, 1);
	setenv("USER", pw->pw_name, 1);
	setenv("LOGNAME", pw->pw_name, 1);
	dropped = 1;
	return 0;
}

int priv_secret_ok(const char *what, const char *path, const struct stat *st, char *err,
                   size_t errlen)
{
	char owner[64], me[64], grp[64];
	struct passwd *pw;
	struct group *gr;

	if (S_ISREG(st->st_mode) && (st->st_mode & 07137) == 0 &&
	    (st->st_uid == 0 || st->st_uid == geteuid()))
		return 0;
	if ((pw = getpwuid(st->st_uid)) != NULL)
		snprintf(owner, sizeof(owner), "%s", pw->pw_name);
	else
		snprintf(owner, sizeof(owner), "%ld", (long)st->st_uid);
	if ((pw = getpwuid(geteuid())) != NULL)
		snprintf(me, sizeof(me), "%s", pw->pw_name);
	else
		snprintf(me, sizeof(me), "%ld", (long)geteuid());
	if ((gr = getgrgid(getegid())) != NULL)
		snprintf(grp, sizeof(grp), "%s", gr->gr_name);
	else
		snprintf(grp, sizeof(grp), "%ld", (long)getegid());
	if (!S_ISREG(st->st_mode))
		errf(err, errlen, "%s %s: not a regular file", what, path);
	else
		errf(err, errlen,
		     "%s %s: mode %04o, owner %s: refused: it must be mode 0600 or 0640 and owned "
		     "by root or %s (chmod 600 %s, or chown root:%s and chmod 640)",
		     what, path, (unsigned)(st->st_mode & 07777), owner, me, path, grp);
	return -1;
}

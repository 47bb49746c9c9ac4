#include "doctor.h"

#include "../common/log.h"
#include "../common/priv.h"
#include "pma.h"
#include "proc.h"
#include "sync.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The key rules of cgi/auth.c: one key per line, spaces and tabs around it ignored, '#'
 * starts a comment line, 16 to 255 bytes. */
#define KEY_MIN 16
#define KEY_MAX 255
/* nginx's workers on Debian. */
#define NGINX_USER "www-data"

static int fails;

static void line(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(int ok, const char *fmt, ...)
{
	va_list ap;

	if (!ok)
		fails++;
	printf("%-4s ", ok ? "OK" : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* Returns the number of usable keys, or -1 if the file cannot be used at all. */
static int check_keys(const struct conf *c)
{
	char buf[4096], why[1024];
	struct stat st;
	FILE *f;
	int lineno = 0, usable = 0;

	if ((f = fopen(c->api_keys_file, "re")) == NULL) {
		line(0,
		     "api_keys_file %s: %s; fix: create it, one key per line (head -c 32 "
		     "/dev/urandom | base64 | tr -d '=+/'), mode 0640, group %s",
		     c->api_keys_file, strerror(errno), c->group);
		return -1;
	}
	if (fstat(fileno(f), &st) < 0 ||
	    priv_secret_ok("api_keys_file", c->api_keys_file, &st, why, sizeof(why)) < 0) {
		line(0, "%s", why);
		fclose(f);
		return -1;
	}
	while (fgets(buf, sizeof(buf), f) != NULL) {
		char *s = buf, *e;
		lineno++;
		while (*s == ' ' || *s == '\t')
			s++;
		e = s + strcspn(s, "\r\n");
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e == s || *s == '#')
			continue;
		if (e - s < KEY_MIN || e - s > KEY_MAX)
			line(
			    0,
			    "api_keys_file %s:%d: a key of %d bytes is not used (keys are %d to %d "
			    "bytes); fix: replace it with a longer one",
			    c->api_keys_file, lineno, (int)(e - s), KEY_MIN, KEY_MAX);
		else
			usable++;
	}
	fclose(f);
	if (usable == 0)
		line(0,
		     "api_keys_file %s: no usable key: every request would get 401; fix: add one "
		     "(head -c 32 /dev/urandom | base64 | tr -d '=+/' >> %s)",
		     c->api_keys_file, c->api_keys_file);
	else
		line(1, "api_keys_file %s: %d usable key%s, mode %04o", c->api_keys_file, usable,
		     usable == 1 ? "" : "s", (unsigned)(st.st_mode & 07777));
	return usable;
}

/* Run path arg with stdout to out (at most 10 s). Returns 0, or -1 with the reason in out. */
static int run_capture(const char *path, const char *arg, char *out, size_t len)
{
	char *const argv[] = {(char *)path, (char *)arg, NULL};
	char *const envp[] = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8", NULL};
	posix_spawn_file_actions_t fa;
	struct pollfd pfd;
	size_t n = 0;
	pid_t pid;
	int p[2], rc, st;

	if (access(path, X_OK) < 0) {
		snprintf(out, len, "%s", strerror(errno));
		return -1;
	}
	if (pipe2(p, O_CLOEXEC) < 0) {
		snprintf(out, len, "pipe: %s", strerror(errno));
		return -1;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	rc = posix_spawn(&pid, path, &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (rc != 0) {
		close(p[0]);
		snprintf(out, len, "%s", strerror(rc));
		return -1;
	}
	pfd.fd = p[0];
	pfd.events = POLLIN;
	while (n + 1 < len && poll(&pfd, 1, 10000) > 0) {
		ssize_t r = read(p[0], out + n, len - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	out[n] = '\0';
	out[strcspn(out, "\r\n")] = '\0';
	close(p[0]);
	kill(pid, SIGKILL); /* done or too slow: either way it ends here */
	waitpid(pid, &st, 0);
	return n > 0 ? 0 : -1;
}

/* The major version in a --version line ("ChromeDriver 120.0...", "Chromium 120.0..."). */
static long major(const char *s)
{
	size_t i;

	for (i = 1; s[0] && s[i]; i++)
		if (isdigit((unsigned char)s[i]) && s[i - 1] == ' ')
			return strtol(s + i, NULL, 10);
	return -1;
}

static void check_browser(const struct conf *c)
{
	char dv[256], cv[256];
	int dok, cok;

	if (c->webdriver_url[0]) {
		line(1, "webdriver_url %s: chromedriver is not started (the running one is used)",
		     c->webdriver_url);
		return;
	}
	dok = run_capture(c->chromedriver, "--version", dv, sizeof(dv)) == 0;
	cok = run_capture(c->chromium, "--version", cv, sizeof(cv)) == 0;
	line(dok, "chromedriver %s: %s%s", c->chromedriver, dv,
	     dok ? "" : "; fix: apt-get install chromium-driver, or set chromedriver");
	line(cok, "chromium %s: %s%s", c->chromium, cv,
	     cok ? "" : "; fix: apt-get install chromium, or set chromium");
	if (dok && cok) {
		long d = major(dv), b = major(cv);
		line(d > 0 && d == b, "chromedriver %ld and chromium %ld%s", d, b,
		     d > 0 && d == b ? ": same major version"
		                     : ": versions differ; fix: install both from the same release "
		                       "(apt-get install chromium chromium-driver)");
	}
}

struct body {
	char buf[65536];
	size_t n;
};

static size_t keep(char *p, size_t size, size_t nmemb, void *arg)
{
	struct body *b = arg;
	size_t len = size * nmemb, room = sizeof(b->buf) - 1 - b->n;

	if (len < room)
		room = len;
	memcpy(b->buf + b->n, p, room);
	b->n += room;
	b->buf[b->n] = '\0';
	return len;
}

static void check_pma(const struct conf *c)
{
	static struct body body;
	char why[1024];
	CURL *h;
	CURLcode rc;
	long status = 0;

	if (!conf_has_pma(c)) {
		line(0, "phpMyAdmin is not configured: a sync needs pma_url, pma_user, "
		        "pma_password_file, pma_db and pma_table; fix: set them (or import with "
		        "--csv)");
		return;
	}
	if (pma_password_ok(c, why, sizeof(why)) < 0)
		line(0, "%s", why);
	else
		line(1, "pma_password_file %s: readable, mode 0600 or 0640", c->pma_password_file);
	body.n = 0;
	body.buf[0] = '\0';
	if ((h = curl_easy_init()) == NULL) {
		line(0, "phpMyAdmin %s: curl_easy_init failed", c->pma_url);
		return;
	}
	curl_easy_setopt(h, CURLOPT_URL, c->pma_url);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 15L);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, keep);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	if (rc != CURLE_OK)
		line(0,
		     "phpMyAdmin %s: unreachable: %s; fix: check pma_url and that the web server "
		     "runs",
		     c->pma_url, curl_easy_strerror(rc));
	else if (status >= 400)
		line(0, "phpMyAdmin %s: HTTP %ld; fix: check pma_url and phpMyAdmin's error log",
		     c->pma_url, status);
	else if (strcasestr(body.buf, "phpmyadmin") == NULL)
		line(0, "phpMyAdmin %s: HTTP %ld, but not a phpMyAdmin page; fix: check pma_url",
		     c->pma_url, status);
	else
		line(1, "phpMyAdmin %s: reachable (HTTP %ld)", c->pma_url, status);
}

static void check_login(const struct conf *c)
{
	char tmpdir[4096], err[1024];
	int code;

	if (!conf_has_pma(c))
		return;
	code = pma_check_login(c, tmpdir, sizeof(tmpdir), err, sizeof(err));
	proc_rmtree(tmpdir);
	if (code == SC_OK)
		line(1, "phpMyAdmin login as %s works, and %s.%s has an export page", c->pma_user,
		     c->pma_db, c->pma_table);
	else
		line(0, "phpMyAdmin login as %s, table %s.%s: %s (exit %d: see pmacache-sync(8))",
		     c->pma_user, c->pma_db, c->pma_table, err, sync_exit_code(code));
}

/* Whether the user (uid, its groups) may search (x) or read (r) the folder st describes. */
static int allowed(const struct stat *st, uid_t uid, const gid_t *groups, int ngroups,
                   mode_t want_u, mode_t want_g, mode_t want_o)
{
	int i;

	if (uid == 0)
		return 1;
	if (st->st_uid == uid)
		return (st->st_mode & want_u) == want_u;
	for (i = 0; i < ngroups; i++)
		if (st->st_gid == groups[i])
			return (st->st_mode & want_g) == want_g;
	return (st->st_mode & want_o) == want_o;
}

/* Whether who can reach (every folder up to it searchable) and list path; 0, or -1 with
 * the folder in the way and its mode in why. */
static int reachable(const char *path, const char *who, char *why, size_t len)
{
	char p[4096], *slash;
	gid_t groups[256];
	int ngroups = 256;
	struct passwd *pw;
	struct stat st;

	if ((pw = getpwnam(who)) == NULL) {
		snprintf(why, len, "no user %s", who);
		return -1;
	}
	if (getgrouplist(who, pw->pw_gid, groups, &ngroups) < 0)
		ngroups = 0;
	snprintf(p, sizeof(p), "%s", path);
	for (slash = p + 1;; slash++) {
		int last = (slash = strchr(slash, '/')) == NULL;
		if (!last)
			*slash = '\0';
		if (stat(p, &st) < 0) {
			errf(why, len, "%s: %s", p, strerror(errno));
			return -1;
		}
		if (!allowed(&st, pw->pw_uid, groups, ngroups, last ? 0500 : 0100, last ? 050 : 010,
		             last ? 05 : 01)) {
			struct passwd *o = getpwuid(st.st_uid);
			struct group *g = getgrgid(st.st_gid);
			errf(why, len, "%s cannot %s %s (mode %04o, %s:%s)", who,
			     last ? "read" : "enter", p, (unsigned)(st.st_mode & 07777),
			     o ? o->pw_name : "?", g ? g->gr_name : "?");
			return -1;
		}
		if (last)
			return 0;
		*slash = '/';
	}
}

static void check_dirs(const struct conf *c)
{
	char why[1024];
	const char *nginx_user = NGINX_USER;
	struct passwd *me = getpwuid(geteuid());

	/* Not started as root: the private nginx's workers run as this same user. */
	if (!priv_dropped() && geteuid() != 0 && me != NULL)
		nginx_user = me->pw_name;
	if (access(c->cache_dir, W_OK | X_OK) == 0)
		line(1, "cache_dir %s: writable by %s", c->cache_dir,
		     me ? me->pw_name : "this user");
	else
		line(0,
		     "cache_dir %s: not writable by %s: %s; fix: mkdir -p %s && chown %s:%s %s && "
		     "chmod 750 %s",
		     c->cache_dir, me ? me->pw_name : "this user", strerror(errno), c->cache_dir,
		     c->user, c->group, c->cache_dir, c->cache_dir);
	if (reachable(c->cache_dir, nginx_user, why, sizeof(why)) == 0)
		line(1, "cache_dir %s: readable by nginx (%s)", c->cache_dir, nginx_user);
	else
		line(0,
		     "cache_dir: %s; fix: make the folders on the way traversable (chmod o+x), "
		     "or move cache_dir; and usermod -aG %s %s",
		     why, c->group, nginx_user);
	if (access(c->run_dir, F_OK) < 0 && errno == ENOENT)
		line(1, "run_dir %s: not there yet (pmacache start makes it)", c->run_dir);
	else if (reachable(c->run_dir, nginx_user, why, sizeof(why)) == 0)
		line(1, "run_dir %s: nginx (%s) reaches the socket there", c->run_dir, nginx_user);
	else
		line(0,
		     "run_dir: %s; fix: move run_dir (to /run/pmacache) or make the folder "
		     "traversable (chmod o+x)",
		     why);
}

int doctor_run(const struct conf *c, int what)
{
	struct passwd *me = getpwuid(geteuid());
	int usable;

	fails = 0;
	if (what == DOCTOR_KEYS) {
		usable = check_keys(c);
		fflush(stdout);
		return usable > 0 ? 0 : 1;
	}
	line(1, "config %s", c->path);
	line(geteuid() != 0, "runs as %s%s", me ? me->pw_name : "?",
	     priv_dropped() ? " (started as root, dropped to user/group)" : "");
	check_keys(c);
	check_pma(c);
	check_browser(c);
	if (what == DOCTOR_LOGIN)
		check_login(c);
	check_dirs(c);
	fflush(stdout);
	return fails;
}

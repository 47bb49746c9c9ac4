#include "pma.h"

#include "../common/log.h"
#include "../common/priv.h"
#include "proc.h"
#include "sync.h"
#include "wd.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define POLL_MS 50

struct browser {
	const struct conf *c;
	pid_t driver;
	struct wd wd;
	char dir[1200];
	char dl[1300];
	char *err;
	size_t errlen;
};

static int stop_requested(void)
{
	return sync_stop != 0;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Map a failed WebDriver call to an exit code and a message. what names the step. */
static int wd_fail(struct browser *b, int rc, int code, const char *what)
{
	if (sync_stop) {
		snprintf(b->err, b->errlen, "%s: %s", what,
		         sync_stop == 1 ? "sync_timeout passed" : "stopped by a signal");
		return EXIT_TIMEOUT;
	}
	if (b->driver > 0 && proc_exited(b->driver)) {
		b->driver = 0;
		snprintf(b->err, b->errlen, "%s: chromedriver died", what);
		return EXIT_BROWSER;
	}
	if (rc == WD_EW3C && (strstr(b->wd.message, "ERR_CONNECTION") ||
	                      strstr(b->wd.message, "ERR_NAME_NOT_RESOLVED") ||
	                      strstr(b->wd.message, "ERR_ADDRESS_UNREACHABLE") ||
	                      strstr(b->wd.message, "ERR_EMPTY_RESPONSE"))) {
		snprintf(b->err, b->errlen, "%s: phpMyAdmin unreachable: %s", what, b->wd.message);
		return EXIT_PMA;
	}
	if (rc == WD_EW3C && strcmp(b->wd.error, "timeout") == 0) {
		snprintf(b->err, b->errlen, "%s: phpMyAdmin did not answer in time: %s", what,
		         b->wd.message);
		return EXIT_PMA;
	}
	if (rc == WD_EW3C &&
	    (strcmp(b->wd.error, "invalid session id") == 0 ||
	     strcmp(b->wd.error, "session not created") == 0 ||
	     strstr(b->wd.message, "disconnected") || strstr(b->wd.message, "crashed") ||
	     strstr(b->wd.message, "not reachable") ||
	     strstr(b->wd.message, "target window already closed"))) {
		snprintf(b->err, b->errlen, "%s: the browser failed: %s: %s", what, b->wd.error,
		         b->wd.message);
		return EXIT_BROWSER;
	}
	if (rc == WD_ETRANSPORT || rc == WD_EPROTO) {
		snprintf(b->err, b->errlen, "%s: chromedriver: %s", what, b->wd.message);
		return EXIT_BROWSER;
	}
	snprintf(b->err, b->errlen, "%s: %s: %s", what, b->wd.error, b->wd.message);
	return code;
}

/* Read the password file: 0600 or 0640, owned by root or us; first line only. */
static int read_password(const struct conf *c, char *pw, size_t len, char *err, size_t errlen)
{
	struct stat st;
	ssize_t n;
	int fd;

	if ((fd = open(c->pma_password_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		snprintf(err, errlen, "pma_password_file %s: %s", c->pma_password_file,
		         strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "pma_password_file %s: %s", c->pma_password_file,
		         strerror(errno));
		close(fd);
		return -1;
	}
	if (priv_secret_ok("pma_password_file", c->pma_password_file, &st, err, errlen) < 0) {
		close(fd);
		return -1;
	}
	n = read(fd, pw, len - 1);
	close(fd);
	if (n <= 0) {
		snprintf(err, errlen, "pma_password_file %s: empty", c->pma_password_file);
		return -1;
	}
	pw[n] = '\0';
	pw[strcspn(pw, "\r\n")] = '\0';
	return 0;
}

int pma_password_ok(const struct conf *c, char *err, size_t errlen)
{
	char pw[1024];
	int rc = read_password(c, pw, sizeof(pw), err, errlen);

	explicit_bzero(pw, sizeof(pw));
	return rc;
}

/* The phpMyAdmin folder URL: pma_url without index.php or a query. */
static void base_url(const char *url, char *out, size_t len)
{
	char *q, *slash;

	snprintf(out, len, "%s", url);
	if ((q = strpbrk(out, "?#")) != NULL)
		*q = '\0';
	slash = strrchr(out, '/');
	if (slash && strstr(slash, ".php"))
		slash[1] = '\0';
	else if (out[0] && out[strlen(out) - 1] != '/' && strlen(out) + 1 < len)
		strcat(out, "/");
}

static int start_driver(struct browser *b)
{
	char portarg[32], home[1300], xdg[1400], url[64], log[1400];
	char *argv[] = {(char *)b->c->chromedriver, portarg, NULL};
	char *envp[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", home, xdg, NULL};
	int port = proc_free_port(), i;

	if (port < 0) {
		snprintf(b->err, b->errlen, "no free loopback port for chromedriver");
		return EXIT_BROWSER;
	}
	snprintf(portarg, sizeof(portarg), "--port=%d", port);
	snprintf(home, sizeof(home), "HOME=%s/home", b->dir);
	snprintf(xdg, sizeof(xdg), "XDG_CONFIG_HOME=%s/home/.config", b->dir);
	snprintf(log, sizeof(log), "%s/chromedriver.log", b->dir);
	b->driver = proc_start(b->c->chromedriver, argv, envp, log, b->err, b->errlen);
	if (b->driver < 0) {
		b->driver = 0;
		return EXIT_BROWSER;
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	snprintf(b->wd.base, sizeof(b->wd.base), "%s", url);
	for (i = 0; i < 400; i++) { /* up to 20 s */
		if (wd_ready(&b->wd))
			return EXIT_OK;
		if (proc_exited(b->driver)) {
			b->driver = 0;
			snprintf(b->err, b->errlen, "chromedriver %s exited at start (see its log)",
			         b->c->chromedriver);
			return EXIT_BROWSER;
		}
		if (sync_stop)
			return wd_fail(b, WD_ETRANSPORT, EXIT_BROWSER, "starting chromedriver");
		sleep_ms(POLL_MS);
	}
	snprintf(b->err, b->errlen, "chromedriver did not get ready on %s", url);
	return EXIT_BROWSER;
}

/*
 * Whether this user may create a user namespace, which Chromium's own sandbox needs when it
 * runs as a user other than root (Debian's chromium has no setuid sandbox helper). Tried
 * in a child, which exits at once.
 */
static int userns_works(void)
{
	pid_t pid = fork();
	int st;

	if (pid == 0)
		_exit(unshare(CLONE_NEWUSER) == 0 ? 0 : 1);
	if (pid < 0)
		return 0;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return 0;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* The capabilities: headless Chromium, a fresh profile, downloads to b->dl, network
 * locked to the phpMyAdmin host. */
static char *capabilities(struct browser *b)
{
	struct json_object *root = json_object_new_object(), *am = json_object_new_object();
	struct json_object *co = json_object_new_object(), *args = json_object_new_array();
	struct json_object *prefs = json_object_new_object(), *to = json_object_new_object();
	char host[256] = "", buf[1600];
	const char *p = strstr(b->c->pma_url, "://");
	size_t i;
	char *out;
	static const char *const fixed[] = {
	    "--headless=new",
	    "--disable-gpu",
	    "--disable-dev-shm-usage",
	    "--no-first-run",
	    "--no-default-browser-check",
	    "--disable-background-networking",
	    "--disable-component-update",
	    "--disable-sync",
	    "--disable-default-apps",
	    "--disable-extensions",
	    "--disable-breakpad",
	    "--disable-domain-reliability",
	    "--disable-client-side-phishing-detection",
	    "--metrics-recording-only",
	    "--password-store=basic",
	    "--use-mock-keychain",
	    "--disable-quic",
	    "--force-prefers-reduced-motion",
	    "--window-size=1280,1024",
	    "--disable-features=Translate,OptimizationHints,MediaRouter,"
	    "DialMediaRouteProvider,AutofillServerCommunication,"
	    "CertificateTransparencyComponentUpdater"};

	if (p) {
		p += 3;
		snprintf(host, sizeof(host), "%.*s", (int)strcspn(p, ":/?#"), p);
	}
	for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		json_object_array_add(args, json_object_new_string(fixed[i]));
	/* Chromium's sandbox stays on; only a kernel without user namespaces turns it off. */
	if (!userns_works()) {
		log_warn("this kernel does not allow user namespaces (see sysctl "
		         "user.max_user_namespaces, kernel.unprivileged_userns_clone): Chromium "
		         "runs with --no-sandbox");
		json_object_array_add(args, json_object_new_string("--no-sandbox"));
	}
	snprintf(buf, sizeof(buf), "--user-data-dir=%s/profile", b->dir);
	json_object_array_add(args, json_object_new_string(buf));
	/* Names resolve to nothing but the phpMyAdmin host: no other traffic leaves. */
	snprintf(buf, sizeof(buf), "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE %s", host);
	json_object_array_add(args, json_object_new_string(buf));
	json_object_object_add(co, "binary", json_object_new_string(b->c->chromium));
	json_object_object_add(co, "args", args);
	json_object_object_add(prefs, "download.default_directory", json_object_new_string(b->dl));
	json_object_object_add(prefs, "download.prompt_for_download", json_object_new_boolean(0));
	json_object_object_add(prefs, "safebrowsing.enabled", json_object_new_boolean(0));
	json_object_object_add(co, "prefs", prefs);
	json_object_object_add(am, "browserName", json_object_new_string("chrome"));
	json_object_object_add(am, "goog:chromeOptions", co);
	json_object_object_add(am, "pageLoadStrategy", json_object_new_string("eager"));
	json_object_object_add(to, "pageLoad", json_object_new_int(60000));
	json_object_object_add(to, "script", json_object_new_int(30000));
	json_object_object_add(to, "implicit", json_object_new_int(0));
	json_object_object_add(am, "timeouts", to);
	json_object_object_add(root, "capabilities", json_object_new_object());
	json_object_object_add(json_object_object_get(root, "capabilities"), "alwaysMatch", am);
	out = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN));
	json_object_put(root);
	return out;
}

/* What the page shows: login form, navigation, errors. */
static const char page_state_js[] =
    "var e=document.querySelector('#pma_errors .alert-danger, form.login .alert-danger');"
    "var t=document.body?document.body.innerText:'';"
    "return {url:location.href, title:document.title,"
    " user:!!document.getElementById('input_username'),"
    " loginform:!!document.querySelector('body#loginform'),"
    " nav:!!document.getElementById('pma_navigation'),"
    " go:!!document.getElementById('buttonGo'),"
    " alert:(e&&e.offsetParent!==null?e.innerText:'')||"
    "  (t.indexOf('Cannot log in to the MySQL server')>=0?'Cannot log in to the MySQL server':''),"
    " text:t.slice(0,300)};";

struct page {
	char url[512], title[256], error[512], text[512];
	int user, loginform, nav, go;
};

/* Control characters (newlines, tabs) become spaces. */
static void one_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < ' ')
			*s = ' ';
}

static int page_state(struct browser *b, struct page *pg)
{
	struct json_object *v = NULL, *f;
	int rc = wd_execute(&b->wd, page_state_js, NULL, &v);

	memset(pg, 0, sizeof(*pg));
	if (rc != WD_OK)
		return rc;
#define STR(k, dst)                                                                                \
	if (json_object_object_get_ex(v, k, &f) && json_object_get_string(f))                      \
		snprintf(dst, sizeof(dst), "%s", json_object_get_string(f));
#define BOOL(k, dst)                                                                               \
	if (json_object_object_get_ex(v, k, &f))                                                   \
		dst = json_object_get_boolean(f);
	STR("url", pg->url)
	STR("title", pg->title)
	STR("alert", pg->error)
	STR("text", pg->text)
	BOOL("user", pg->user)
	BOOL("loginform", pg->loginform)
	BOOL("nav", pg->nav)
	BOOL("go", pg->go)
#undef STR
#undef BOOL
	one_line(pg->error); /* they go into one-line messages */
	one_line(pg->text);
	json_object_put(v);
	return WD_OK;
}

/* A page that is not phpMyAdmin's: a 502 from the proxy, a browser error page, ... */
static int not_pma(struct browser *b, const struct page *pg, const char *what)
{
	snprintf(b->err, b->errlen, "%s: phpMyAdmin is failing: %s shows '%s' (%.100s)", what,
	         pg->url, pg->title, pg->text);
	return EXIT_PMA;
}

/* Open url (phpMyAdmin shows its login form for any page) and log in. phpMyAdmin then
 * continues to the page asked for, which saves loading its start page. */
static int login(struct browser *b, const char *url, const char *user, const char *pw)
{
	struct page pg;
	char id[128];
	double until;
	int rc;

	sync_phase("login", -1, -1);
	if ((rc = wd_navigate(&b->wd, url)) != WD_OK)
		return wd_fail(b, rc, EXIT_PMA, "opening phpMyAdmin");
	if ((rc = page_state(b, &pg)) != WD_OK)
		return wd_fail(b, rc, EXIT_BROWSER, "reading the login page");
	if (strncmp(pg.url, "chrome-error:", 13) == 0) {
		snprintf(b->err, b->errlen, "opening phpMyAdmin: unreachable at %s", b->c->pma_url);
		return EXIT_PMA;
	}
	if (!pg.user)
		return not_pma(b, &pg, "opening phpMyAdmin: no login form");
	/* A fresh profile has no remembered user: the fields start empty, no clear needed. */
	if ((rc = wd_find(&b->wd, "#input_username", id, sizeof(id))) != WD_OK ||
	    (rc = wd_send_keys(&b->wd, id, user)) != WD_OK)
		return wd_fail(b, rc, EXIT_PMA, "typing the user name");
	if ((rc = wd_find(&b->wd, "#input_password", id, sizeof(id))) != WD_OK ||
	    (rc = wd_send_keys(&b->wd, id, pw)) != WD_OK)
		return wd_fail(b, rc, EXIT_PMA, "typing the password");
	if ((rc = wd_find(&b->wd, "#input_go", id, sizeof(id))) != WD_OK ||
	    (rc = wd_click(&b->wd, id)) != WD_OK)
		return wd_fail(b, rc, EXIT_PMA, "submitting the login form");

	/* One attempt: wait for the navigation panel, or for the login error. */
	until = now_s() + 60;
	while (now_s() < until && !sync_stop) {
		if ((rc = page_state(b, &pg)) != WD_OK) {
			if (rc == WD_EW3C && (strcmp(b->wd.error, "javascript error") == 0 ||
			                      strstr(b->wd.message, "navigat")))
				goto again; /* the page is being replaced */
			return wd_fail(b, rc, EXIT_PMA, "waiting for the login");
		}
		if (pg.nav && !pg.loginform) {
			log_debug("logged in: %s", pg.url);
			return EXIT_OK;
		}
		if (pg.error[0]) {
			snprintf(b->err, b->errlen, "phpMyAdmin rejected the login of '%s': %s",
			         user, pg.error);
			return EXIT_LOGIN;
		}
		if (!pg.loginform && !pg.user && !pg.nav)
			return not_pma(b, &pg, "after the login");
	again:
		sleep_ms(POLL_MS);
	}
	if (sync_stop)
		return wd_fail(b, WD_ETRANSPORT, EXIT_PMA, "waiting for the login");
	snprintf(b->err, b->errlen, "the login did not complete within 60 s (%s)", pg.url);
	return EXIT_LOGIN;
}

/* Set the export form: custom, CSV, all rows, column names, as a file, uncompressed, in
 * the dialect the converter reads. Only the form named "dump": the settings modal has
 * look-alike inputs. Returns "" or what is missing. */
static const char export_form_js[] =
    "var f=document.forms['dump']; if(!f) return 'no export form';"
    "function set(n,v){var e=f.elements[n]; if(!e) return n+' ';"
    " if(e.length!==undefined&&e.tagName!=='SELECT'){for(var i=0;i<e.length;i++)"
    "  if(e[i].value===v){e[i].checked=true;e[i].dispatchEvent(new "
    "Event('change',{bubbles:true}));}"
    "  return '';}"
    " if(e.type==='checkbox'){e.checked=!!v;} else {e.value=v;}"
    " e.dispatchEvent(new Event('change',{bubbles:true})); return '';}"
    "var c=document.getElementById('radio_custom_export'); if(c){c.click();}"
    "var m=set('what','csv');"
    "var a=document.getElementById('radio_allrows_1'); if(a){a.click();} else m+='allrows ';"
    "m+=set('output_format','sendit');"
    "m+=set('csv_separator',',')+set('csv_enclosed','\"')+set('csv_escaped','\"')"
    " +set('csv_terminated','AUTO')+set('csv_null','NULL')+set('csv_columns',true)"
    " +set('csv_removeCRLF',false);"
    "if(f.elements['compression']) set('compression','none');"
    "if(f.elements['charset']) set('charset','utf-8');"
    "return m;";

static const char go_js[] = "var g=document.getElementById('buttonGo');"
                            "g.scrollIntoView({block:'center',behavior:'instant'}); return true;";

static int dir_scan(const char *dir, char *done, size_t len, long long *partial)
{
	struct dirent *e;
	struct stat st;
	char path[1600];
	DIR *d = opendir(dir);
	int pending = 0;

	done[0] = '\0';
	*partial = 0;
	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (stat(path, &st) < 0)
			continue;
		if (n > 11 && strcmp(e->d_name + n - 11, ".crdownload") == 0) {
			pending = 1;
			*partial += st.st_size;
		} else if (S_ISREG(st.st_mode)) {
			snprintf(done, len, "%s", path);
			*partial = st.st_size;
		}
	}
	closedir(d);
	return pending;
}

/* The export page of pma_db.pma_table. */
static void export_url(const struct conf *c, char *url, size_t len)
{
	char base[1024], *db, *tb;

	base_url(c->pma_url, base, sizeof(base));
	db = curl_easy_escape(NULL, c->pma_db, 0);
	tb = curl_easy_escape(NULL, c->pma_table, 0);
	snprintf(url, len, "%sindex.php?route=/table/export&db=%s&table=%s", base, db ? db : "",
	         tb ? tb : "");
	curl_free(db);
	curl_free(tb);
}

/*
 * phpMyAdmin ends every CSV row, the last one too, with a line end. A download that does not
 * is cut off, even where the cut leaves whole-looking fields (a bare NULL cut to "NU").
 */
static int ends_with_eol(struct browser *b, const char *file, long long size)
{
	char c = 0;
	int fd = open(file, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || (size > 0 && pread(fd, &c, 1, size - 1) != 1)) {
		snprintf(b->err, b->errlen, "%s: %s", file, strerror(errno));
		if (fd >= 0)
			close(fd);
		return EXIT_EXPORT;
	}
	close(fd);
	if (size > 0 && c != '\n') {
		snprintf(b->err, b->errlen,
		         "%s: the export ends without a line end, after %lld bytes (is the export "
		         "truncated?)",
		         file, size);
		return EXIT_VALIDATION;
	}
	return EXIT_OK;
}

/* The export was answered with a page that replaced the export form. */
static int export_page(struct browser *b, const struct page *pg)
{
	if (pg->user || pg->loginform) {
		snprintf(b->err, b->errlen, "the export asked for a login again");
		return EXIT_LOGIN;
	}
	if (pg->nav || pg->error[0]) {
		snprintf(b->err, b->errlen, "the export failed: phpMyAdmin shows '%s'",
		         pg->error[0] ? pg->error : pg->text);
		return EXIT_EXPORT;
	}
	return not_pma(b, pg, "exporting");
}

static int export_table(struct browser *b, const char *url, char *csv_path, size_t pathlen)
{
	struct json_object *v = NULL;
	struct page pg;
	char id[128], file[1600];
	long long size = -1, last = -2, partial = 0;
	double until, report = 0, alive = 0;
	int rc, stable = 0, started = 0, vanished = 0;

	sync_phase("export", -1, -1);
	if ((rc = page_state(b, &pg)) != WD_OK)
		return wd_fail(b, rc, EXIT_BROWSER, "reading the export page");
	if (!pg.go && pg.nav) { /* logged in, but phpMyAdmin went to its start page */
		if ((rc = wd_navigate(&b->wd, url)) != WD_OK)
			return wd_fail(b, rc, EXIT_PMA, "opening the export page");
		if ((rc = page_state(b, &pg)) != WD_OK)
			return wd_fail(b, rc, EXIT_BROWSER, "reading the export page");
	}
	if (!pg.go) {
		if (pg.user || pg.loginform) {
			snprintf(b->err, b->errlen, "the export page asked for a login again");
			return EXIT_LOGIN;
		}
		if (pg.nav) {
			snprintf(b->err, b->errlen, "no export form for %s.%s: %s", b->c->pma_db,
			         b->c->pma_table, pg.error[0] ? pg.error : pg.text);
			return EXIT_EXPORT;
		}
		return not_pma(b, &pg, "opening the export page");
	}
	if ((rc = wd_execute(&b->wd, export_form_js, NULL, &v)) != WD_OK)
		return wd_fail(b, rc, EXIT_EXPORT, "setting the export options");
	if (json_object_get_string(v) && json_object_get_string(v)[0]) {
		snprintf(b->err, b->errlen, "the export form lacks: %s", json_object_get_string(v));
		json_object_put(v);
		return EXIT_EXPORT;
	}
	json_object_put(v);
	v = NULL;
	if ((rc = wd_execute(&b->wd, go_js, NULL, NULL)) != WD_OK ||
	    (rc = wd_find(&b->wd, "#buttonGo", id, sizeof(id))) != WD_OK)
		return wd_fail(b, rc, EXIT_EXPORT, "finding the Export button");
	if ((rc = wd_click(&b->wd, id)) != WD_OK) {
		if (rc != WD_EW3C || strcmp(b->wd.error, "element click intercepted") != 0)
			return wd_fail(b, rc, EXIT_EXPORT, "clicking Export");
		/* The console bar or a scroll animation is in the way: click it directly. */
		if ((rc = wd_execute(&b->wd, "document.getElementById('buttonGo').click();", NULL,
		                     NULL)) != WD_OK)
			return wd_fail(b, rc, EXIT_EXPORT, "clicking Export");
	}

	/*
	 * The download: done when no .crdownload is left and the file's size is stable. A
	 * download that was cut off (the connection dropped mid-body) makes Chromium delete its
	 * .crdownload: a partial file that vanishes without a finished one is a failed export.
	 * The page is read every second: a crashed Chromium fails the read, and a page that
	 * replaced the export form (an error answered instead of a file) is the answer.
	 */
	until = now_s() + (b->c->sync_timeout > 10 ? b->c->sync_timeout : 10);
	while (!sync_stop && now_s() < until) {
		int pending = dir_scan(b->dl, file, sizeof(file), &size);
		if (pending) {
			started = 1;
			vanished = 0;
			partial = size;
		}
		if (!pending && file[0]) {
			stable = size == last ? stable + 1 : 0;
			last = size;
			if (stable >= 2) {
				snprintf(csv_path, pathlen, "%s", file);
				sync_phase("download", -1, size);
				return ends_with_eol(b, file, size);
			}
		} else if (!pending && started && ++vanished >= 2) {
			snprintf(b->err, b->errlen,
			         "the export download was cut off after %lld bytes (the browser "
			         "dropped the partial file)",
			         partial);
			return EXIT_EXPORT;
		}
		if (now_s() - report > 0.5) {
			report = now_s();
			sync_phase("download", -1, size);
		}
		if (b->driver > 0 && proc_exited(b->driver)) {
			b->driver = 0;
			snprintf(b->err, b->errlen, "chromedriver died during the download");
			return EXIT_BROWSER;
		}
		if (now_s() - alive > 1.0) {
			alive = now_s();
			if ((rc = page_state(b, &pg)) != WD_OK)
				return wd_fail(b, rc, EXIT_BROWSER, "waiting for the download");
			if (!started && !file[0] && !pg.go) /* shown instead of saved */
				return export_page(b, &pg);
		}
		sleep_ms(POLL_MS);
	}
	if (sync_stop)
		return wd_fail(b, WD_ETRANSPORT, EXIT_EXPORT, "waiting for the download");
	/* Nothing came: say what the page says, if anything. */
	if (page_state(b, &pg) == WD_OK && pg.error[0])
		snprintf(b->err, b->errlen, "the export failed: %s", pg.error);
	else
		snprintf(b->err, b->errlen, "the export download did not finish in time");
	return EXIT_EXPORT;
}

/* --check --login: after the login, the table's export page must show its form. */
static int pma_login_only;

/* The table's structure page lists its columns; for a table that does not exist phpMyAdmin
 * shows its SQL box instead. "" when the columns are there, else what the page shows. */
static const char structure_js[] =
    "if(document.getElementById('tablestructure'))return '';"
    "var e=document.querySelector('#page_content .alert-danger');"
    "if(e&&e.innerText)return e.innerText;"
    "var p=document.getElementById('page_content');"
    "return 'no column list: '+(p?p.innerText.slice(0,120):document.title);";

static int check_table(struct browser *b, const char *url)
{
	struct json_object *v = NULL;
	struct page pg;
	char structure[2100];
	const char *r;
	int rc;

	/* The export page shows its form for any name; the structure page asks MySQL. */
	if ((r = strstr(url, "route=/table/export")) == NULL)
		return EXIT_PMA;
	snprintf(structure, sizeof(structure), "%.*sroute=/table/structure%s", (int)(r - url), url,
	         r + strlen("route=/table/export"));
	if ((rc = wd_navigate(&b->wd, structure)) != WD_OK)
		return wd_fail(b, rc, EXIT_PMA, "opening the table's page");
	if ((rc = wd_execute(&b->wd, structure_js, NULL, &v)) != WD_OK)
		return wd_fail(b, rc, EXIT_BROWSER, "reading the table's page");
	if (json_object_get_string(v) && *json_object_get_string(v)) {
		snprintf(b->err, b->errlen, "no such table? phpMyAdmin's structure page: %s",
		         json_object_get_string(v));
		one_line(b->err);
		json_object_put(v);
		return EXIT_EXPORT;
	}
	json_object_put(v);
	if ((rc = wd_navigate(&b->wd, url)) != WD_OK)
		return wd_fail(b, rc, EXIT_PMA, "opening the export page");
	if ((rc = page_state(b, &pg)) != WD_OK)
		return wd_fail(b, rc, EXIT_BROWSER, "reading the export page");
	if (pg.go)
		return EXIT_OK;
	if ((rc = export_page(b, &pg)) != EXIT_OK)
		return rc;
	snprintf(b->err, b->errlen, "%s.%s: no export form (does the table exist?): '%s'",
	         b->c->pma_db, b->c->pma_table, pg.text);
	return EXIT_EXPORT;
}

int pma_check_login(const struct conf *c, char *tmpdir, size_t tmplen, char *err, size_t errlen)
{
	char csv[16];
	int code;

	pma_login_only = 1;
	code = pma_export(c, tmpdir, tmplen, csv, sizeof(csv), err, errlen);
	pma_login_only = 0;
	return code;
}

int pma_export(const struct conf *c, char *tmpdir, size_t tmplen, char *csv_path, size_t pathlen,
               char *err, size_t errlen)
{
	struct browser b;
	char pw[1024], sub[1300], url[2048], *caps = NULL;
	int code, rc;

	memset(&b, 0, sizeof(b));
	b.c = c;
	b.err = err;
	b.errlen = errlen;
	tmpdir[0] = csv_path[0] = '\0';
	if (read_password(c, pw, sizeof(pw), err, errlen) < 0)
		return EXIT_CONFIG;
	if (wd_init(&b.wd, c->webdriver_url) != WD_OK) {
		snprintf(err, errlen, "%s", b.wd.message);
		code = EXIT_BROWSER;
		goto out;
	}
	b.wd.abort = stop_requested;

	snprintf(b.dir, sizeof(b.dir), "%s/tmp.browser.XXXXXX", c->cache_dir);
	if (mkdtemp(b.dir) == NULL) {
		snprintf(err, errlen, "%s: %s", b.dir, strerror(errno));
		code = EXIT_WRITE;
		goto out;
	}
	snprintf(tmpdir, tmplen, "%s", b.dir);
	snprintf(b.dl, sizeof(b.dl), "%s/downloads", b.dir);
	snprintf(sub, sizeof(sub), "%s/home", b.dir);
	if (mkdir(b.dl, 0700) < 0 || mkdir(sub, 0700) < 0) {
		snprintf(err, errlen, "%s: %s", b.dl, strerror(errno));
		code = EXIT_WRITE;
		goto out;
	}

	if (c->webdriver_url[0] == '\0' && (code = start_driver(&b)) != EXIT_OK)
		goto out;
	if ((caps = capabilities(&b)) == NULL) {
		snprintf(err, errlen, "out of memory");
		code = EXIT_BROWSER;
		goto out;
	}
	if ((rc = wd_new_session(&b.wd, caps)) != WD_OK) {
		code = wd_fail(&b, rc, EXIT_BROWSER, "starting Chromium");
		if (code == EXIT_PMA)
			code = EXIT_BROWSER;
		goto out;
	}
	export_url(c, url, sizeof(url));
	if ((code = login(&b, c->pma_url, c->pma_user, pw)) != EXIT_OK)
		goto out;
	explicit_bzero(pw, sizeof(pw));
	code = pma_login_only ? check_table(&b, url) : export_table(&b, url, csv_path, pathlen);
out:
	explicit_bzero(pw, sizeof(pw));
	free(caps);
	/* Always end the session and the driver, whatever happened above. */
	if (b.wd.session[0]) {
		b.wd.abort = NULL;
		b.wd.timeout_ms = 5000;
		wd_delete_session(&b.wd);
	}
	proc_stop(b.driver, 3000);
	proc_reap_all(1000);
	wd_free(&b.wd);
	return code;
}

#include "pma.h"

#include "../common/log.h"
#include "../common/priv.h"
#include "browser.h"
#include "stream.h"
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

/* The login: how long phpMyAdmin may take to show its navigation or its error; how soon
 * the login page must be gone after the click (or the form is submitted again), and how
 * many submissions at most. */
#define LOGIN_WAIT_MS 60000
#define LOGIN_CONFIRM_MS 5000
#define LOGIN_ATTEMPTS 3
#define POLL_MS 50

/*
 * The limits of the export's submission and download. Before each submission, phpMyAdmin's
 * own requests and animations get up to settle_ms to end (the page moves while they run). A
 * submission must show within confirm_ms that it went out: a download started, or the page
 * changed. (While the request is out and unanswered, chromedriver holds every command until
 * the answer: a slow answer does not count against confirm_ms.) If it did not, the form is
 * read again and submitted again, up to attempts submissions in all.
 */
struct dl_limits {
	int poll_ms;        /* the download folder is looked at this often */
	int confirm_ms;     /* a submission must show it went out within this */
	int attempts;       /* submissions at most */
	int settle_ms;      /* phpMyAdmin's requests may take this long to end, each attempt */
	int stable_polls;   /* a finished file is done once its size held for this many polls */
	int vanished_polls; /* a partial file gone this many polls, none finished: cut off */
	int page_ms;        /* the page is read this often while waiting */
	int report_ms;      /* progress is reported this often */
	int min_wait_s;     /* the download may take sync_timeout, and at least this */
};

static const struct dl_limits dl_limits = {
    .poll_ms = 50,
    .confirm_ms = 5000,
    .attempts = 3,
    .settle_ms = 10000,
    .stable_polls = 2,
    .vanished_polls = 2,
    .page_ms = 1000,
    .report_ms = 500,
    .min_wait_s = 10,
};

/* The flow: the browser it drives, the caller's hooks, where failures are told. */
struct pma {
	const struct conf *c;
	const struct pma_hooks *h;
	struct browser *b;
	char *err;
	size_t errlen;
};

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static long long now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void phase(struct pma *p, const char *name, long long bytes)
{
	if (p->h && p->h->phase)
		p->h->phase(p->h->arg, name, -1, bytes);
}

static int stopping(struct pma *p)
{
	return p->h && p->h->stop ? *p->h->stop : 0;
}

/* A failed WebDriver command of the step what (see browser_fail). */
static int wd_fail(struct pma *p, int rc, int code, const char *what)
{
	return browser_fail(p->b, rc, code, what);
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

/* What the page shows: login form, navigation, errors; armed: the page the export was
 * submitted from (arm_js) is still there. */
static const char page_state_js[] =
    "var e=document.querySelector('#pma_errors .alert-danger, form.login .alert-danger');"
    "var t=document.body?document.body.innerText:'';"
    "return {url:location.href, title:document.title,"
    " user:!!document.getElementById('input_username'),"
    " loginform:!!document.querySelector('body#loginform'),"
    " nav:!!document.getElementById('pma_navigation'),"
    " go:!!document.getElementById('buttonGo'),"
    " armed:!!window.__pmacache,"
    " alert:(e&&e.offsetParent!==null?e.innerText:'')||"
    "  (t.indexOf('Cannot log in to the MySQL server')>=0?'Cannot log in to the MySQL server':''),"
    " text:t.slice(0,300)};";

struct page {
	char url[512], title[256], error[512], text[512];
	int user, loginform, nav, go, armed;
};

/* Control characters (newlines, tabs) become spaces. */
static void one_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < ' ')
			*s = ' ';
}

/* Copy the string member k of v to dst, or leave dst as it is. */
static void get_str(struct json_object *v, const char *k, char *dst, size_t len)
{
	struct json_object *f;

	if (json_object_object_get_ex(v, k, &f) && json_object_get_string(f))
		snprintf(dst, len, "%s", json_object_get_string(f));
}

static int get_int(struct json_object *v, const char *k)
{
	struct json_object *f;

	return json_object_object_get_ex(v, k, &f) ? json_object_get_int(f) : 0;
}

static int page_state(struct pma *p, struct page *pg)
{
	struct json_object *v = NULL;
	int rc = wd_execute(&p->b->wd, page_state_js, NULL, &v);

	memset(pg, 0, sizeof(*pg));
	if (rc != WD_OK)
		return rc;
	get_str(v, "url", pg->url, sizeof(pg->url));
	get_str(v, "title", pg->title, sizeof(pg->title));
	get_str(v, "alert", pg->error, sizeof(pg->error));
	get_str(v, "text", pg->text, sizeof(pg->text));
	pg->user = get_int(v, "user");
	pg->loginform = get_int(v, "loginform");
	pg->nav = get_int(v, "nav");
	pg->go = get_int(v, "go");
	pg->armed = get_int(v, "armed");
	one_line(pg->error); /* they go into one-line messages */
	one_line(pg->text);
	json_object_put(v);
	return WD_OK;
}

/* A command failed because the page is being replaced: asking again is the answer. */
static int replacing(struct pma *p, int rc)
{
	return rc == WD_EW3C && (strcmp(p->b->wd.error, "javascript error") == 0 ||
	                         strstr(p->b->wd.message, "navigat"));
}

/* A page that is not phpMyAdmin's: a 502 from the proxy, a browser error page, ... */
static int not_pma(struct pma *p, const struct page *pg, const char *what)
{
	snprintf(p->err, p->errlen, "%s: phpMyAdmin is failing: %s shows '%s' (%.100s)", what,
	         pg->url, pg->title, pg->text);
	return SC_PMA;
}

/* Run script, which returns "" or what went wrong; a non-empty answer goes to msg. */
static int run_js(struct pma *p, const char *script, char *msg, size_t len)
{
	struct json_object *v = NULL;
	int rc = wd_execute(&p->b->wd, script, NULL, &v);

	msg[0] = '\0';
	if (rc == WD_OK && json_object_get_string(v))
		snprintf(msg, len, "%s", json_object_get_string(v));
	json_object_put(v);
	return rc;
}

/*
 * Mark the page: a new document will not have the mark. And point the login form at the page
 * it is on (phpMyAdmin posts it to its start page, whose answer then redirects there): logged
 * in on the export page, the browser lands on it, instead of loading the start page and then
 * the export page (0.9 s less in the sync).
 */
static const char mark_js[] = "window.__pmacache={}; var f=document.getElementById('login_form');"
                              " if(f) f.action=location.href; return true;";

/* Submit the login form again, without a pointer. */
static const char login_submit_js[] =
    "var f=document.getElementById('login_form'); if(!f) return 'no login form';"
    "if(f.requestSubmit) f.requestSubmit(document.getElementById('input_go'));"
    " else f.submit();"
    "return '';";

/* Open url (phpMyAdmin shows its login form for any page) and log in. */
static int login(struct pma *p, const char *url, const char *user, const char *pw)
{
	struct page pg;
	char id[128], msg[64];
	long long until, resubmit;
	int rc, sent = 1;

	phase(p, "login", -1);
	if ((rc = wd_navigate(&p->b->wd, url)) != WD_OK)
		return wd_fail(p, rc, SC_PMA, "opening phpMyAdmin");
	if ((rc = page_state(p, &pg)) != WD_OK)
		return wd_fail(p, rc, SC_BROWSER, "reading the login page");
	if (strncmp(pg.url, "chrome-error:", 13) == 0) {
		snprintf(p->err, p->errlen, "opening phpMyAdmin: unreachable at %s", p->c->pma_url);
		return SC_UNREACHABLE;
	}
	if (!pg.user)
		return not_pma(p, &pg, "opening phpMyAdmin: no login form");
	/* A fresh profile has no remembered user: the fields start empty, no clear needed. */
	if ((rc = wd_find(&p->b->wd, "#input_username", id, sizeof(id))) != WD_OK ||
	    (rc = wd_send_keys(&p->b->wd, id, user)) != WD_OK)
		return wd_fail(p, rc, SC_PMA, "typing the user name");
	if ((rc = wd_find(&p->b->wd, "#input_password", id, sizeof(id))) != WD_OK ||
	    (rc = wd_send_keys(&p->b->wd, id, pw)) != WD_OK)
		return wd_fail(p, rc, SC_PMA, "typing the password");
	if ((rc = wd_find(&p->b->wd, "#input_go", id, sizeof(id))) != WD_OK ||
	    (rc = wd_execute(&p->b->wd, mark_js, NULL, NULL)) != WD_OK ||
	    (rc = wd_click(&p->b->wd, id)) != WD_OK)
		return wd_fail(p, rc, SC_PMA, "submitting the login form");

	/* One login: wait for the navigation panel, or for the login error. */
	until = now_ms() + LOGIN_WAIT_MS;
	resubmit = now_ms() + LOGIN_CONFIRM_MS;
	while (now_ms() < until && !stopping(p)) {
		if ((rc = page_state(p, &pg)) != WD_OK) {
			if (replacing(p, rc))
				goto again;
			return wd_fail(p, rc, SC_PMA, "waiting for the login");
		}
		if (pg.nav && !pg.loginform) {
			log_debug("logged in: %s", pg.url);
			return SC_OK;
		}
		if (pg.error[0]) {
			snprintf(p->err, p->errlen, "phpMyAdmin rejected the login of '%s': %s",
			         user, pg.error);
			return SC_LOGIN;
		}
		if (!pg.loginform && !pg.user && !pg.nav)
			return not_pma(p, &pg, "after the login");
		/* Still the marked page: the form did not go out. (Once it is out, chromedriver
		 * holds page_state until the answer.) */
		if (pg.armed && now_ms() >= resubmit) {
			log_warn(
			    "login: attempt %d of %d did not go out within %d s (the login page "
			    "unchanged)%s",
			    sent, LOGIN_ATTEMPTS, LOGIN_CONFIRM_MS / 1000,
			    sent < LOGIN_ATTEMPTS ? ": submitting the form again" : "");
			if (sent++ >= LOGIN_ATTEMPTS) {
				snprintf(
				    p->err, p->errlen,
				    "the login did not start: %d submissions of the login form, "
				    "each leaving the login page unchanged for %d s",
				    LOGIN_ATTEMPTS, LOGIN_CONFIRM_MS / 1000);
				return SC_PMA;
			}
			if ((rc = run_js(p, login_submit_js, msg, sizeof(msg))) != WD_OK)
				return wd_fail(p, rc, SC_PMA, "submitting the login form");
			resubmit = now_ms() + LOGIN_CONFIRM_MS;
		}
	again:
		sleep_ms(POLL_MS);
	}
	if (stopping(p))
		return wd_fail(p, WD_ETRANSPORT, SC_PMA, "waiting for the login");
	snprintf(p->err, p->errlen, "the login did not complete within %d s (%s)",
	         LOGIN_WAIT_MS / 1000, pg.url);
	return SC_LOGIN;
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

/*
 * Arm the page before a submission: record, on this document, the clicks, the export form's
 * submit events (and whether a handler prevented them) and the fields that failed the
 * browser's validation. A new document has none of it: the page changed. Returns where the
 * Export button's centre is.
 */
static const char arm_js[] =
    "window.__pmacache={clicks:[],submits:0,prevented:0,invalid:[]};"
    "if(!window.__pmacache_on){window.__pmacache_on=1;"
    " document.addEventListener('click',function(e){var s=window.__pmacache,t=e.target;"
    "  if(s&&s.clicks.length<8)s.clicks.push((t.id?'#'+t.id:t.tagName.toLowerCase())+'@'+"
    "  Math.round(e.clientX)+','+Math.round(e.clientY));},true);"
    " document.addEventListener('invalid',function(e){var s=window.__pmacache;"
    "  if(s)s.invalid.push(e.target.name||e.target.id);},true);"
    " document.addEventListener('submit',function(e){var s=window.__pmacache;"
    "  if(s&&e.target.name==='dump')s.submits++;},true);"
    " window.addEventListener('submit',function(e){var s=window.__pmacache;"
    "  if(s&&e.target.name==='dump'&&e.defaultPrevented)s.prevented++;});}"
    "var g=document.getElementById('buttonGo');"
    "g.scrollIntoView({block:'center',behavior:'instant'});"
    "var r=g.getBoundingClientRect();"
    "return Math.round(r.left+r.width/2)+','+Math.round(r.top+r.height/2);";

/* What became of a submission, on the page it was made from. */
static const char probe_js[] =
    "var s=window.__pmacache,g=document.getElementById('buttonGo'),"
    " r=g?g.getBoundingClientRect():null;"
    "return {armed:!!s, go:!!g,"
    " at:r?Math.round(r.left+r.width/2)+','+Math.round(r.top+r.height/2):'',"
    " clicks:s?s.clicks.join(' '):'', submits:s?s.submits:0, prevented:s?s.prevented:0,"
    " invalid:s?s.invalid.join(' '):'',"
    " ajax:(window.jQuery?jQuery.active+(jQuery.timers?jQuery.timers.length:0):0)+"
    "  (window.AJAX&&AJAX.active?1:0)};";

/* What phpMyAdmin's own scripts have under way: jQuery's requests and animations, and its
 * page loader's request. */
static const char ajax_js[] =
    "return (window.jQuery?jQuery.active+(jQuery.timers?jQuery.timers.length:0):0)+"
    " (window.AJAX&&AJAX.active?1:0);";

/* Submit the form the way its Export button does, without a pointer: no coordinates. */
static const char submit_js[] =
    "var f=document.forms['dump'],g=document.getElementById('buttonGo');"
    "if(!f||!g) return 'no export form';"
    "if(f.requestSubmit) f.requestSubmit(g); else g.click();"
    "return '';";

struct probe {
	int armed, go, submits, prevented, ajax;
	char at[32], clicks[256], invalid[128];
};

static int probe(struct pma *p, struct probe *pr)
{
	struct json_object *v = NULL;
	int rc = wd_execute(&p->b->wd, probe_js, NULL, &v);

	memset(pr, 0, sizeof(*pr));
	if (rc != WD_OK)
		return rc;
	pr->armed = get_int(v, "armed");
	pr->go = get_int(v, "go");
	pr->submits = get_int(v, "submits");
	pr->prevented = get_int(v, "prevented");
	pr->ajax = get_int(v, "ajax");
	get_str(v, "at", pr->at, sizeof(pr->at));
	get_str(v, "clicks", pr->clicks, sizeof(pr->clicks));
	get_str(v, "invalid", pr->invalid, sizeof(pr->invalid));
	json_object_put(v);
	return WD_OK;
}

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

/*
 * The download watcher. Done when no .crdownload is left and the file's size held for
 * stable_polls polls. A download that was cut off (the connection dropped mid-body) makes
 * Chromium delete its .crdownload: a partial file that vanishes without a finished one is a
 * failed export.
 */
struct dl_watch {
	const struct dl_limits *lim;
	const char *dir;
	char file[1600];   /* the finished file, once there */
	long long size;    /* its size, or the partial files' */
	long long last;    /* the finished size at the poll before */
	long long partial; /* the partial files' size when last seen */
	int stable;        /* polls the finished size held */
	int vanished;      /* polls since the partial file went, none finished */
	int started;       /* a partial file was seen */
};

enum dl_state { DL_NOTHING, DL_RUNNING, DL_DONE, DL_CUT };

static void dl_init(struct dl_watch *w, const char *dir, const struct dl_limits *lim)
{
	memset(w, 0, sizeof(*w));
	w->lim = lim;
	w->dir = dir;
	w->last = -1;
}

static enum dl_state dl_poll(struct dl_watch *w)
{
	if (dir_scan(w->dir, w->file, sizeof(w->file), &w->size)) {
		w->started = 1;
		w->vanished = 0;
		w->partial = w->size;
		return DL_RUNNING;
	}
	if (w->file[0]) {
		w->stable = w->size == w->last ? w->stable + 1 : 0;
		w->last = w->size;
		return w->stable >= w->lim->stable_polls ? DL_DONE : DL_RUNNING;
	}
	if (w->started && ++w->vanished >= w->lim->vanished_polls)
		return DL_CUT;
	return w->started ? DL_RUNNING : DL_NOTHING;
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
static int ends_with_eol(struct pma *p, const char *file, long long size)
{
	char c = 0;
	int fd = open(file, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || (size > 0 && pread(fd, &c, 1, size - 1) != 1)) {
		snprintf(p->err, p->errlen, "%s: %s", file, strerror(errno));
		if (fd >= 0)
			close(fd);
		return SC_EXPORT;
	}
	close(fd);
	if (size > 0 && c != '\n') {
		snprintf(p->err, p->errlen,
		         "%s: the export ends without a line end, after %lld bytes (is the export "
		         "truncated?)",
		         file, size);
		return SC_INVALID;
	}
	return SC_OK;
}

/* The export was answered with a page that replaced the export form. */
static int export_page(struct pma *p, const struct page *pg)
{
	if (pg->user || pg->loginform) {
		snprintf(p->err, p->errlen, "the export asked for a login again");
		return SC_LOGIN;
	}
	if (pg->nav || pg->error[0]) {
		snprintf(p->err, p->errlen, "the export failed: phpMyAdmin shows '%s'",
		         pg->error[0] ? pg->error : pg->text);
		return SC_EXPORT;
	}
	return not_pma(p, pg, "exporting");
}

/* Be on the export page with its form, after the login. */
static int open_export_page(struct pma *p, const char *url)
{
	struct page pg;
	int rc;

	if ((rc = page_state(p, &pg)) != WD_OK)
		return wd_fail(p, rc, SC_BROWSER, "reading the export page");
	if (!pg.go && pg.nav) { /* logged in, but phpMyAdmin went to its start page */
		if ((rc = wd_navigate(&p->b->wd, url)) != WD_OK)
			return wd_fail(p, rc, SC_PMA, "opening the export page");
		if ((rc = page_state(p, &pg)) != WD_OK)
			return wd_fail(p, rc, SC_BROWSER, "reading the export page");
	}
	if (pg.go)
		return SC_OK;
	if (pg.user || pg.loginform) {
		snprintf(p->err, p->errlen, "the export page asked for a login again");
		return SC_LOGIN;
	}
	if (pg.nav) {
		snprintf(p->err, p->errlen, "no export form for %s.%s: %s", p->c->pma_db,
		         p->c->pma_table, pg.error[0] ? pg.error : pg.text);
		return SC_EXPORT;
	}
	return not_pma(p, &pg, "opening the export page");
}

/* Set the export options and arm the page; where the Export button is goes to at. */
static int fill_form(struct pma *p, char *at, size_t atlen)
{
	char missing[256];
	int rc;

	if ((rc = run_js(p, export_form_js, missing, sizeof(missing))) != WD_OK)
		return wd_fail(p, rc, SC_EXPORT, "setting the export options");
	if (missing[0]) {
		snprintf(p->err, p->errlen, "the export form lacks: %s", missing);
		return SC_EXPORT;
	}
	if ((rc = run_js(p, arm_js, at, atlen)) != WD_OK)
		return wd_fail(p, rc, SC_EXPORT, "finding the Export button");
	return SC_OK;
}

/* The first attempt clicks Export the way a user does; later ones submit the form. */
static int submit(struct pma *p, int attempt)
{
	char id[128], msg[64];
	int rc;

	if (attempt > 1) {
		if ((rc = run_js(p, submit_js, msg, sizeof(msg))) != WD_OK)
			return wd_fail(p, rc, SC_EXPORT, "submitting the export form");
		if (msg[0]) {
			snprintf(p->err, p->errlen, "submitting the export form: %s", msg);
			return SC_EXPORT;
		}
		return SC_OK;
	}
	if ((rc = wd_find(&p->b->wd, "#buttonGo", id, sizeof(id))) != WD_OK)
		return wd_fail(p, rc, SC_EXPORT, "finding the Export button");
	if ((rc = wd_click(&p->b->wd, id)) != WD_OK) {
		if (rc != WD_EW3C || strcmp(p->b->wd.error, "element click intercepted") != 0)
			return wd_fail(p, rc, SC_EXPORT, "clicking Export");
		/* The console bar or a scroll animation is in the way: click it directly. */
		if ((rc = wd_execute(&p->b->wd, "document.getElementById('buttonGo').click();",
		                     NULL, NULL)) != WD_OK)
			return wd_fail(p, rc, SC_EXPORT, "clicking Export");
	}
	return SC_OK;
}

/* confirm()'s answer when the submission did not show within its time. */
#define NOT_OUT (-1)

/*
 * Whether the submission went out within ms: a download started, or the page changed.
 * Returns SC_OK if it did, NOT_OUT if not (pr says what the page saw), or an exit code.
 */
static int confirm(struct pma *p, struct dl_watch *w, int ms, struct probe *pr)
{
	long long until = now_ms() + ms, next_probe = 0;
	struct page pg;
	int rc;

	memset(pr, 0, sizeof(*pr));
	while (!stopping(p)) {
		if (dl_poll(w) != DL_NOTHING)
			return SC_OK;
		if (browser_driver_died(p->b)) {
			snprintf(p->err, p->errlen, "chromedriver died during the export");
			return SC_DRIVER;
		}
		if (now_ms() >= next_probe) {
			next_probe = now_ms() + w->lim->page_ms / 4;
			if ((rc = probe(p, pr)) != WD_OK && !replacing(p, rc))
				return wd_fail(p, rc, SC_BROWSER, "waiting for the export");
			if (rc == WD_OK && (!pr->armed || !pr->go)) {
				if (dl_poll(w) != DL_NOTHING)
					return SC_OK;
				/* A new document: the answer, unless the export page again */
				if ((rc = page_state(p, &pg)) != WD_OK)
					return wd_fail(p, rc, SC_BROWSER, "waiting for the export");
				if (!pg.go || pg.error[0])
					return SC_OK;
				log_warn("export: the export page was loaded again (%s)", pg.url);
				return NOT_OUT;
			}
		}
		if (now_ms() >= until)
			return NOT_OUT;
		sleep_ms(w->lim->poll_ms);
	}
	return wd_fail(p, WD_ETRANSPORT, SC_EXPORT, "waiting for the export to start");
}

/* Wait up to ms for phpMyAdmin's own requests and animations to end; how many are left
 * goes to left. */
static int settle(struct pma *p, int ms, int *left)
{
	long long until = now_ms() + ms;
	struct json_object *v = NULL;
	int rc;

	for (;;) {
		if ((rc = wd_execute(&p->b->wd, ajax_js, NULL, &v)) != WD_OK)
			return wd_fail(p, rc, SC_BROWSER, "waiting for phpMyAdmin's requests");
		*left = json_object_get_int(v);
		json_object_put(v);
		v = NULL;
		if (*left == 0 || now_ms() >= until)
			return SC_OK;
		if (stopping(p))
			return wd_fail(p, WD_ETRANSPORT, SC_EXPORT, "waiting for phpMyAdmin");
		sleep_ms(100);
	}
}

/* Submit the export form until the export goes out: at most lim->attempts times. */
static int submit_export(struct pma *p, struct dl_watch *w)
{
	const struct dl_limits *lim = w->lim;
	struct probe pr;
	char at[32];
	int attempt, code, left = 0;

	for (attempt = 1;; attempt++) {
		/* The page moves while phpMyAdmin's own requests and animations run (its SQL
		 * console starts when config/get answers, and the Export button moves): each
		 * attempt waits for them to end first. */
		if ((code = settle(p, lim->settle_ms, &left)) != SC_OK)
			return code;
		if ((code = fill_form(p, at, sizeof(at))) != SC_OK)
			return code;
		if (attempt == 1)
			log_debug("export: clicking Export at %s%s", at,
			          left ? " (phpMyAdmin's requests did not settle)" : "");
		else
			log_info(
			    "export: attempt %d of %d: phpMyAdmin's requests %s; the form read "
			    "again, submitting it",
			    attempt, lim->attempts, left ? "did not settle" : "settled");
		if ((code = submit(p, attempt)) != SC_OK)
			return code;
		if ((code = confirm(p, w, lim->confirm_ms, &pr)) != NOT_OUT) {
			if (code == SC_OK && attempt > 1)
				log_info("export: attempt %d went out", attempt);
			return code;
		}
		log_warn("export: attempt %d of %d did not go out within %.1f s: no download, the "
		         "page unchanged (Export was at %s, now %s; clicks seen: %s; submit "
		         "events: %d, prevented: %d; invalid fields: %s; phpMyAdmin requests "
		         "under way: %d)",
		         attempt, lim->attempts, lim->confirm_ms / 1000.0, at,
		         pr.at[0] ? pr.at : "?", pr.clicks[0] ? pr.clicks : "none", pr.submits,
		         pr.prevented, pr.invalid[0] ? pr.invalid : "none", pr.ajax);
		if (attempt >= lim->attempts) {
			snprintf(
			    p->err, p->errlen,
			    "the export did not start: %d submissions of the export form, each "
			    "followed by neither a download nor a new page within %.0f s "
			    "(last: clicks seen: %s; submit events: %d, prevented: %d)",
			    attempt, lim->confirm_ms / 1000.0, pr.clicks[0] ? pr.clicks : "none",
			    pr.submits, pr.prevented);
			return SC_EXPORT;
		}
	}
}

/* Wait for the export's download to finish; its path goes to csv_path. */
static int download(struct pma *p, struct dl_watch *w, char *csv_path, size_t pathlen)
{
	const struct dl_limits *lim = w->lim;
	int wait_s = p->c->sync_timeout > lim->min_wait_s ? p->c->sync_timeout : lim->min_wait_s;
	long long until = now_ms() + (long long)wait_s * 1000, report = 0, page = 0;
	struct page pg;
	int rc;

	while (!stopping(p) && now_ms() < until) {
		switch (dl_poll(w)) {
		case DL_DONE:
			snprintf(csv_path, pathlen, "%s", w->file);
			phase(p, "download", w->size);
			return ends_with_eol(p, w->file, w->size);
		case DL_CUT:
			snprintf(p->err, p->errlen,
			         "the export download was cut off after %lld bytes (the browser "
			         "dropped the partial file)",
			         w->partial);
			return SC_CUT;
		default:
			break;
		}
		if (now_ms() - report > lim->report_ms) {
			report = now_ms();
			phase(p, "download", w->size);
		}
		if (browser_driver_died(p->b)) {
			snprintf(p->err, p->errlen, "chromedriver died during the download");
			return SC_DRIVER;
		}
		/* A crashed Chromium fails the read; a page that replaced the export form (an
		 * error answered instead of a file) is the answer. */
		if (now_ms() - page > lim->page_ms) {
			page = now_ms();
			if ((rc = page_state(p, &pg)) != WD_OK)
				return wd_fail(p, rc, SC_BROWSER, "waiting for the download");
			if (!w->started && !w->file[0] && (!pg.go || !pg.armed))
				return export_page(p, &pg);
		}
		sleep_ms(lim->poll_ms);
	}
	if (stopping(p))
		return wd_fail(p, WD_ETRANSPORT, SC_EXPORT, "waiting for the download");
	/* Nothing came: say what the page says, if anything. */
	if (page_state(p, &pg) == WD_OK && pg.error[0])
		snprintf(p->err, p->errlen, "the export failed: %s", pg.error);
	else
		snprintf(p->err, p->errlen, "the export download did not finish in time");
	return SC_EXPORT;
}

static int export_table(struct pma *p, const char *url, char *csv_path, size_t pathlen)
{
	struct dl_watch w;
	int code;

	phase(p, "export", -1);
	if ((code = open_export_page(p, url)) != SC_OK)
		return code;
	dl_init(&w, p->b->dl, &dl_limits);
	if ((code = submit_export(p, &w)) != SC_OK)
		return code;
	phase(p, "download", w.size);
	return download(p, &w, csv_path, pathlen);
}

/* The export form as the browser would send it, once filled: where it posts, its fields
 * URL-encoded, the browser's user agent and the page it is on. */
static const char form_post_js[] = "var f=document.forms['dump']; if(!f) return null;"
                                   "return {action:f.action, method:(f.method||'').toLowerCase(),"
                                   " body:new URLSearchParams(new FormData(f)).toString(),"
                                   " ua:navigator.userAgent, page:location.href};";

/* The longest Cookie header the browser's cookies may make. */
#define COOKIE_MAX 16384

/* The browser's cookies for the page it is on, as a Cookie header's value, into buf. */
static int browser_cookies(struct pma *p, char *buf, size_t len)
{
	struct json_object *v = NULL, *c, *n, *val;
	size_t i, o = 0;
	int rc;

	buf[0] = '\0';
	if ((rc = wd_request(&p->b->wd, "GET", "./cookie", NULL, &v)) != WD_OK)
		return wd_fail(p, rc, SC_BROWSER, "reading the browser's cookies");
	for (i = 0; json_object_is_type(v, json_type_array) && i < json_object_array_length(v);
	     i++) {
		const char *name, *value;
		int w;
		c = json_object_array_get_idx(v, i);
		if (!json_object_object_get_ex(c, "name", &n) ||
		    !json_object_object_get_ex(c, "value", &val))
			continue;
		name = json_object_get_string(n);
		value = json_object_get_string(val);
		if (!name || !value || strpbrk(name, ";=\r\n") || strpbrk(value, ";\r\n"))
			continue;
		w = snprintf(buf + o, len - o, "%s%s=%s", o ? "; " : "", name, value);
		if (w < 0 || (size_t)w >= len - o) {
			explicit_bzero(buf, len);
			json_object_put(v);
			snprintf(p->err, p->errlen, "the browser's cookies do not fit %zu bytes",
			         len);
			return SC_EXPORT;
		}
		o += (size_t)w;
	}
	json_object_put(v); /* the values are secrets: json-c frees them, not wiped */
	if (o == 0) {
		snprintf(p->err, p->errlen,
		         "the browser has no cookies for phpMyAdmin after the "
		         "login: cannot send the export form");
		return SC_EXPORT;
	}
	return SC_OK;
}

/*
 * export_via = http: the browser fills the export form; libcurl POSTs it with the browser's
 * cookies and user agent, to pma_url's folder only, and the body streams into s.
 */
static int export_http(struct pma *p, const char *url, struct stream **s)
{
	struct json_object *v = NULL;
	char missing[256], base[1024], action[2048], method[16], ua[512], page[2048];
	char *cookie = NULL;
	const char *body;
	struct json_object *f;
	int rc, code;

	phase(p, "export", -1);
	if ((code = open_export_page(p, url)) != SC_OK)
		return code;
	if ((rc = run_js(p, export_form_js, missing, sizeof(missing))) != WD_OK)
		return wd_fail(p, rc, SC_EXPORT, "setting the export options");
	if (missing[0]) {
		snprintf(p->err, p->errlen, "the export form lacks: %s", missing);
		return SC_EXPORT;
	}
	if ((rc = wd_execute(&p->b->wd, form_post_js, NULL, &v)) != WD_OK)
		return wd_fail(p, rc, SC_EXPORT, "reading the export form");
	action[0] = method[0] = ua[0] = page[0] = '\0';
	get_str(v, "action", action, sizeof(action));
	get_str(v, "method", method, sizeof(method));
	get_str(v, "ua", ua, sizeof(ua));
	get_str(v, "page", page, sizeof(page));
	body = json_object_object_get_ex(v, "body", &f) ? json_object_get_string(f) : NULL;
	base_url(p->c->pma_url, base, sizeof(base));
	if (!body || strcmp(method, "post") != 0) {
		snprintf(p->err, p->errlen, "the export form is not a POST form (method '%s')",
		         method);
		code = SC_EXPORT;
	} else if (strncmp(action, base, strlen(base)) != 0) {
		/* Only the configured phpMyAdmin gets the browser's cookies. */
		snprintf(p->err, p->errlen, "the export form posts to %s, outside pma_url (%s)",
		         action, base);
		code = SC_EXPORT;
	} else if ((cookie = malloc(COOKIE_MAX)) == NULL) {
		snprintf(p->err, p->errlen, "the export: out of memory");
		code = SC_WRITE;
	} else if ((code = browser_cookies(p, cookie, COOKIE_MAX)) == SC_OK) {
		struct stream_req req = {action, body, cookie, ua, page, p->h ? p->h->stop : NULL};
		phase(p, "download", 0);
		log_debug("export: POST %s (%zu bytes of form) with the browser's cookies", action,
		          strlen(body));
		code = stream_start(&req, s, p->err, p->errlen);
	}
	if (cookie) {
		explicit_bzero(cookie, COOKIE_MAX);
		free(cookie);
	}
	json_object_put(v);
	return code;
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

static int check_table(struct pma *p, const char *url)
{
	struct json_object *v = NULL;
	struct page pg;
	char structure[2100];
	const char *r;
	int rc;

	/* The export page shows its form for any name; the structure page asks MySQL. */
	if ((r = strstr(url, "route=/table/export")) == NULL)
		return SC_PMA;
	snprintf(structure, sizeof(structure), "%.*sroute=/table/structure%s", (int)(r - url), url,
	         r + strlen("route=/table/export"));
	if ((rc = wd_navigate(&p->b->wd, structure)) != WD_OK)
		return wd_fail(p, rc, SC_PMA, "opening the table's page");
	if ((rc = wd_execute(&p->b->wd, structure_js, NULL, &v)) != WD_OK)
		return wd_fail(p, rc, SC_BROWSER, "reading the table's page");
	if (json_object_get_string(v) && *json_object_get_string(v)) {
		snprintf(p->err, p->errlen, "no such table? phpMyAdmin's structure page: %s",
		         json_object_get_string(v));
		one_line(p->err);
		json_object_put(v);
		return SC_EXPORT;
	}
	json_object_put(v);
	if ((rc = wd_navigate(&p->b->wd, url)) != WD_OK)
		return wd_fail(p, rc, SC_PMA, "opening the export page");
	if ((rc = page_state(p, &pg)) != WD_OK)
		return wd_fail(p, rc, SC_BROWSER, "reading the export page");
	if (pg.go)
		return SC_OK;
	if ((rc = export_page(p, &pg)) != SC_OK)
		return rc;
	snprintf(p->err, p->errlen, "%s.%s: no export form (does the table exist?): '%s'",
	         p->c->pma_db, p->c->pma_table, pg.text);
	return SC_EXPORT;
}

int pma_check_login(const struct conf *c, char *tmpdir, size_t tmplen, char *err, size_t errlen)
{
	struct pma_out out;
	int code;

	pma_login_only = 1;
	code = pma_export(c, NULL, &out, err, errlen);
	pma_login_only = 0;
	snprintf(tmpdir, tmplen, "%s", out.tmpdir);
	return code;
}

int pma_export(const struct conf *c, const struct pma_hooks *hooks, struct pma_out *out, char *err,
               size_t errlen)
{
	struct browser b;
	struct pma p = {c, hooks, &b, err, errlen};
	char pw[1024], url[2048];
	int code;

	memset(&b, 0, sizeof(b));
	memset(out, 0, sizeof(*out));
	if (read_password(c, pw, sizeof(pw), err, errlen) < 0)
		return SC_CONFIG;
	code = browser_start(&b, c, hooks ? hooks->stop : NULL, err, errlen);
	snprintf(out->tmpdir, sizeof(out->tmpdir), "%s", b.dir);
	if (code == SC_OK) {
		export_url(c, url, sizeof(url));
		code = login(&p, url, c->pma_user, pw); /* on the export page itself */
		explicit_bzero(pw, sizeof(pw));
		if (code == SC_OK && pma_login_only)
			code = check_table(&p, url);
		else if (code == SC_OK && strcmp(c->export_via, "browser") == 0)
			code = export_table(&p, url, out->csv_path, sizeof(out->csv_path));
		else if (code == SC_OK)
			code = export_http(&p, url, &out->stream);
	}
	explicit_bzero(pw, sizeof(pw));
	/* The browser's part is done: it ends while the export streams into its pipe. */
	browser_stop(&b);
	return code;
}

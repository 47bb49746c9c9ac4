#include "browser.h"

#include "../common/log.h"
#include "proc.h"
#include "sync.h"

#include <errno.h>
#include <sched.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How long the driver may take to say it is ready, and how often it is asked. */
#define DRIVER_READY_MS 20000
#define DRIVER_POLL_MS 50
/* Ending: the session's DELETE, the driver's grace after SIGTERM, the rest's. */
#define END_SESSION_MS 5000L
#define END_DRIVER_MS 3000
#define END_CHILDREN_MS 1000

/*
 * What a failed command means for the sync: kind (wd_kind) -> exit code and words. code 0:
 * the step's own code. with_error: the W3C error code goes into the message too.
 */
static const struct {
	enum wd_kind kind;
	int code;
	const char *says;
	int with_error;
} exits[] = {
    {WD_KIND_UNREACHABLE, SC_UNREACHABLE, "phpMyAdmin unreachable", 0},
    {WD_KIND_TIMEOUT, SC_UNREACHABLE, "phpMyAdmin did not answer in time", 0},
    {WD_KIND_BROWSER, SC_BROWSER, "the browser failed", 1},
    {WD_KIND_DRIVER, SC_DRIVER, "chromedriver", 0},
    {WD_KIND_STEP, 0, NULL, 1},
};

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int stopping(struct browser *b)
{
	return b->stop ? *b->stop : 0;
}

/* wd's abort hook: the stop flag. */
static int stop_flag(void *arg)
{
	return *(volatile sig_atomic_t *)arg;
}

int browser_driver_died(struct browser *b)
{
	if (b->driver > 0 && proc_exited(b->driver)) {
		b->driver = 0;
		return 1;
	}
	return 0;
}

int browser_fail(struct browser *b, int rc, int code, const char *what)
{
	enum wd_kind kind = wd_kind(&b->wd, rc);
	int stop = stopping(b);
	size_t i;

	if (stop) {
		snprintf(b->err, b->errlen, "%s: %s", what,
		         stop == 1 ? "sync_timeout passed" : "stopped by a signal");
		return SC_OF_STOP(stop);
	}
	if (browser_driver_died(b)) {
		snprintf(b->err, b->errlen, "%s: chromedriver died", what);
		return SC_DRIVER;
	}
	for (i = 0; exits[i].kind != kind && exits[i].kind != WD_KIND_STEP; i++)
		;
	if (exits[i].says && exits[i].with_error)
		snprintf(b->err, b->errlen, "%s: %s: %s: %s", what, exits[i].says, b->wd.error,
		         b->wd.message);
	else if (exits[i].says)
		snprintf(b->err, b->errlen, "%s: %s: %s", what, exits[i].says, b->wd.message);
	else
		snprintf(b->err, b->errlen, "%s: %s: %s", what, b->wd.error, b->wd.message);
	return exits[i].code ? exits[i].code : code;
}

static int start_driver(struct browser *b, const struct conf *c)
{
	char portarg[32], home[1300], xdg[1400], log[1400];
	char *argv[] = {(char *)c->chromedriver, portarg, NULL};
	char *envp[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", home, xdg, NULL};
	int port = proc_free_port(), waited;

	if (port < 0) {
		snprintf(b->err, b->errlen, "no free loopback port for chromedriver");
		return SC_DRIVER;
	}
	snprintf(portarg, sizeof(portarg), "--port=%d", port);
	snprintf(home, sizeof(home), "HOME=%s/home", b->dir);
	snprintf(xdg, sizeof(xdg), "XDG_CONFIG_HOME=%s/home/.config", b->dir);
	snprintf(log, sizeof(log), "%s/chromedriver.log", b->dir);
	b->driver = proc_start(c->chromedriver, argv, envp, log, b->err, b->errlen);
	if (b->driver < 0) {
		b->driver = 0;
		return SC_DRIVER;
	}
	snprintf(b->wd.base, sizeof(b->wd.base), "http://127.0.0.1:%d", port);
	for (waited = 0; waited < DRIVER_READY_MS; waited += DRIVER_POLL_MS) {
		if (wd_ready(&b->wd))
			return SC_OK;
		if (browser_driver_died(b)) {
			snprintf(b->err, b->errlen, "chromedriver %s exited at start (see its log)",
			         c->chromedriver);
			return SC_DRIVER;
		}
		if (stopping(b))
			return browser_fail(b, WD_ETRANSPORT, SC_DRIVER, "starting chromedriver");
		sleep_ms(DRIVER_POLL_MS);
	}
	snprintf(b->err, b->errlen, "chromedriver did not get ready on %s", b->wd.base);
	return SC_DRIVER;
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
static struct json_object *capabilities(struct browser *b, const struct conf *c)
{
	struct json_object *root = json_object_new_object(), *caps = json_object_new_object();
	struct json_object *am = json_object_new_object(), *co = json_object_new_object();
	struct json_object *args = json_object_new_array(), *prefs = json_object_new_object();
	struct json_object *to = json_object_new_object();
	char host[256] = "", buf[1600];
	const char *p = strstr(c->pma_url, "://");
	size_t i;
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
	json_object_object_add(co, "binary", json_object_new_string(c->chromium));
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
	json_object_object_add(caps, "alwaysMatch", am);
	json_object_object_add(root, "capabilities", caps);
	return root;
}

static int make_dirs(struct browser *b, const struct conf *c)
{
	char home[1300];

	snprintf(b->dir, sizeof(b->dir), "%s/tmp.browser.XXXXXX", c->cache_dir);
	if (mkdtemp(b->dir) == NULL) {
		snprintf(b->err, b->errlen, "%s: %s", b->dir, strerror(errno));
		b->dir[0] = '\0';
		return SC_WRITE;
	}
	snprintf(b->dl, sizeof(b->dl), "%s/downloads", b->dir);
	snprintf(home, sizeof(home), "%s/home", b->dir);
	if (mkdir(b->dl, 0700) < 0 || mkdir(home, 0700) < 0) {
		snprintf(b->err, b->errlen, "%s: %s", b->dl, strerror(errno));
		return SC_WRITE;
	}
	return SC_OK;
}

int browser_start(struct browser *b, const struct conf *c, volatile sig_atomic_t *stop, char *err,
                  size_t errlen)
{
	struct json_object *caps;
	int code, rc;

	memset(b, 0, sizeof(*b));
	b->stop = stop;
	b->err = err;
	b->errlen = errlen;
	if (wd_init(&b->wd, c->webdriver_url) != WD_OK) {
		snprintf(err, errlen, "%s", b->wd.message);
		return SC_BROWSER;
	}
	if (stop) {
		b->wd.abort = stop_flag;
		b->wd.abort_arg = (void *)stop;
	}
	if ((code = make_dirs(b, c)) != SC_OK)
		return code;
	if (c->webdriver_url[0] == '\0' && (code = start_driver(b, c)) != SC_OK)
		return code;
	if ((caps = capabilities(b, c)) == NULL) {
		snprintf(err, errlen, "starting Chromium: out of memory");
		return SC_BROWSER;
	}
	rc = wd_new_session(&b->wd, caps);
	json_object_put(caps);
	if (rc != WD_OK) {
		code = browser_fail(b, rc, SC_BROWSER, "starting Chromium");
		return code == SC_UNREACHABLE || code == SC_PMA ? SC_BROWSER : code;
	}
	log_debug("browser: session %s in %s", b->wd.session, b->dir);
	return SC_OK;
}

void browser_stop(struct browser *b)
{
	/* Always end the session and the driver, whatever happened before. */
	if (b->wd.curl && b->wd.session[0]) {
		b->wd.abort = NULL;
		b->wd.timeout_ms = END_SESSION_MS;
		wd_delete_session(&b->wd);
	}
	proc_stop(b->driver, END_DRIVER_MS);
	b->driver = 0;
	proc_reap_all(END_CHILDREN_MS);
	wd_free(&b->wd);
}

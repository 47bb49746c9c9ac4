/*
 * wd: a W3C WebDriver client over libcurl and json-c. Every command goes through
 * wd_request(), which reuses one CURL handle and checks the CURLcode, the HTTP status and
 * the W3C error in "value". Each command is a small wrapper around it that builds its
 * request body with json-c.
 */
#ifndef PMACACHE_WD_H
#define PMACACHE_WD_H

#include <json-c/json.h>
#include <stddef.h>

enum wd_rc {
	WD_OK = 0,
	WD_ETRANSPORT = -1, /* no answer: connection refused, timeout, aborted */
	WD_EW3C = -2,       /* a W3C error: see w->error (e.g. "no such element") */
	WD_EPROTO = -3,     /* an answer that is not WebDriver JSON, or no memory */
};

/* What a failed command means, read from its rc, W3C error and message (wd_kind). */
enum wd_kind {
	WD_KIND_STEP,        /* the command itself failed: the step's own failure */
	WD_KIND_UNREACHABLE, /* the page's server could not be reached (net::ERR_...) */
	WD_KIND_TIMEOUT,     /* the page did not load in the page load timeout */
	WD_KIND_BROWSER,     /* the browser is gone: crashed, closed, session lost */
	WD_KIND_DRIVER,      /* chromedriver did not answer, or not with WebDriver JSON */
};

struct wd {
	void *curl;
	char base[256];          /* http://127.0.0.1:PORT */
	char session[128];       /* empty: no session */
	long status;             /* HTTP status of the last answer */
	char error[64];          /* W3C error code of the last failure */
	char message[512];       /* its message, or the transport error */
	long timeout_ms;         /* per request */
	int (*abort)(void *arg); /* polled during transfers; non-zero aborts */
	void *abort_arg;
};

/* Set up w for the driver at base_url. Returns WD_OK, or WD_ETRANSPORT. */
int wd_init(struct wd *w, const char *base_url);
void wd_free(struct wd *w);

/*
 * One request. path is absolute ("/status") or, starting with "./", relative to the session
 * ("./url" -> /session/<id>/url). body is a JSON value (borrowed) or NULL (GET/DELETE). On
 * WD_OK, *value (if value is not NULL) holds the "value" member; the caller puts it.
 */
int wd_request(struct wd *w, const char *method, const char *path, struct json_object *body,
               struct json_object **value);

/* The kind of the failure rc of the last command (see enum wd_kind). */
enum wd_kind wd_kind(const struct wd *w, int rc);

/* GET /status: 1 if the driver says ready, 0 if not (or no answer). */
int wd_ready(struct wd *w);
/* POST /session with capabilities (a JSON object, borrowed); stores the session id. */
int wd_new_session(struct wd *w, struct json_object *capabilities);
/* DELETE the session, if any. */
int wd_delete_session(struct wd *w);
/* Open url and wait for the page. A navigation that chromedriver lost track of ("cannot
 * determine loading status": it ended at once, on an error page) is WD_OK too: the page
 * says where it went, and every caller reads it next. */
int wd_navigate(struct wd *w, const char *url);
/* Find one element by CSS selector; its id goes to id. WD_EW3C with "no such element". */
int wd_find(struct wd *w, const char *css, char *id, size_t idlen);
/* Type text into the element. The request body is wiped after use (it may be a password). */
int wd_send_keys(struct wd *w, const char *id, const char *text);
int wd_click(struct wd *w, const char *id);
/* Execute script synchronously with args (a JSON array, borrowed; NULL for []). */
int wd_execute(struct wd *w, const char *script, struct json_object *args,
               struct json_object **value);

#endif

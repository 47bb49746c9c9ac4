/*
 * wd: a W3C WebDriver client over libcurl and json-c. Every command goes through
 * wd_request(), which reuses one CURL handle and checks the CURLcode, the HTTP status and
 * the W3C error in "value". Each command is a small wrapper around it.
 */
#ifndef PMACACHE_WD_H
#define PMACACHE_WD_H

#include <json-c/json.h>
#include <stddef.h>

enum wd_rc {
	WD_OK = 0,
	WD_ETRANSPORT = -1, /* no answer: connection refused, timeout, aborted */
	WD_EW3C = -2,       /* a W3C error: see w->error (e.g. "no such element") */
	WD_EPROTO = -3,     /* an answer that is not WebDriver JSON */
};

struct wd {
	void *curl;
	char base[256];     /* http://127.0.0.1:PORT */
	char session[128];  /* empty: no session */
	long status;        /* HTTP status of the last answer */
	char error[64];     /* W3C error code of the last failure */
	char message[512];  /* its message, or the transport error */
	long timeout_ms;    /* per request */
	int (*abort)(void); /* polled during transfers; non-zero aborts */
};

/* Set up w for the driver at base_url. Returns WD_OK, or WD_ETRANSPORT. */
int wd_init(struct wd *w, const char *base_url);
void wd_free(struct wd *w);

/*
 * One request. path is absolute ("/status") or, starting with "./", relative to the session
 * ("./url" -> /session/<id>/url). body is a JSON text or NULL (GET/DELETE). On WD_OK, *value
 * (if value is not NULL) holds the "value" member; the caller puts it.
 */
int wd_request(struct wd *w, const char *method, const char *path, const char *body,
               struct json_object **value);

/* GET /status: 1 if the driver says ready, 0 if not (or no answer). */
int wd_ready(struct wd *w);
/* POST /session with capabilities (a JSON object text); stores the session id. */
int wd_new_session(struct wd *w, const char *capabilities);
/* DELETE the session, if any. */
int wd_delete_session(struct wd *w);
int wd_navigate(struct wd *w, const char *url);
/* Find one element by CSS selector; its id goes to id. WD_EW3C with "no such element". */
int wd_find(struct wd *w, const char *css, char *id, size_t idlen);
int wd_clear(struct wd *w, const char *id);
/* Type text into the element. The request body is wiped after use (it may be a password). */
int wd_send_keys(struct wd *w, const char *id, const char *text);
int wd_click(struct wd *w, const char *id);
int wd_get_property(struct wd *w, const char *id, const char *name, struct json_object **value);
/* Execute script synchronously with args (a JSON array text, or NULL for []). */
int wd_execute(struct wd *w, const char *script, const char *args, struct json_object **value);

/* A JSON text for the element reference id, for use in wd_execute args. */
void wd_elem_json(const char *id, char *buf, size_t len);

#endif

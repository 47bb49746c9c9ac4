#include "wd.h"

#include "../common/log.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The W3C element reference key. */
#define WD_ELEM "element-6066-11e4-a52e-4f735466cecf"

struct rbuf {
	char *p;
	size_t len, cap;
};

static size_t on_data(char *ptr, size_t size, size_t n, void *arg)
{
	struct rbuf *b = arg;
	size_t add = size * n;

	if (b->len + add + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *np;
		while (cap < b->len + add + 1)
			cap *= 2;
		if ((np = realloc(b->p, cap)) == NULL)
			return 0;
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, ptr, add);
	b->len += add;
	b->p[b->len] = '\0';
	return add;
}

static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	struct wd *w = arg;
	(void)a, (void)b, (void)c, (void)d;
	return w->abort && w->abort(w->abort_arg) ? 1 : 0;
}

int wd_init(struct wd *w, const char *base_url)
{
	memset(w, 0, sizeof(*w));
	snprintf(w->base, sizeof(w->base), "%s", base_url);
	w->base[strcspn(w->base, "\n")] = '\0';
	if (w->base[0] && w->base[strlen(w->base) - 1] == '/')
		w->base[strlen(w->base) - 1] = '\0';
	w->timeout_ms = 60000;
	if ((w->curl = curl_easy_init()) == NULL) {
		snprintf(w->message, sizeof(w->message), "curl_easy_init failed");
		return WD_ETRANSPORT;
	}
	return WD_OK;
}

void wd_free(struct wd *w)
{
	if (w->curl)
		curl_easy_cleanup(w->curl);
	w->curl = NULL;
}

int wd_request(struct wd *w, const char *method, const char *path, struct json_object *body,
               struct json_object **value)
{
	struct curl_slist *hdrs = NULL;
	struct rbuf rb = {NULL, 0, 0};
	struct json_object *root = NULL, *v = NULL, *e;
	char url[1024];
	CURLcode cc;
	CURL *c = w->curl;
	double took = 0;
	int rc = WD_ETRANSPORT;

	if (value)
		*value = NULL;
	w->error[0] = w->message[0] = '\0';
	w->status = 0;
	if (strncmp(path, "./", 2) == 0)
		snprintf(url, sizeof(url), "%s/session/%s/%s", w->base, w->session, path + 2);
	else
		snprintf(url, sizeof(url), "%s%s", w->base, path);

	curl_easy_reset(c);
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json; charset=utf-8");
	if ((cc = curl_easy_setopt(c, CURLOPT_URL, url)) != CURLE_OK ||
	    (cc = curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method)) != CURLE_OK ||
	    (cc = curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs)) != CURLE_OK ||
	    (cc = curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data)) != CURLE_OK ||
	    (cc = curl_easy_setopt(c, CURLOPT_WRITEDATA, &rb)) != CURLE_OK ||
	    (cc = curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, w->timeout_ms)) != CURLE_OK ||
	    (cc = curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L)) != CURLE_OK ||
	    (cc = curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L)) != CURLE_OK ||
	    (cc = curl_easy_setopt(c, CURLOPT_PROXY, "")) != CURLE_OK ||
	    (cc = curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L)) != CURLE_OK ||
	    (cc = curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress)) != CURLE_OK ||
	    (cc = curl_easy_setopt(c, CURLOPT_XFERINFODATA, w)) != CURLE_OK ||
	    (cc = curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http")) != CURLE_OK) {
		snprintf(w->message, sizeof(w->message), "curl_easy_setopt: %s",
		         curl_easy_strerror(cc));
		goto out;
	}
	/* The text stays in body's own buffer until body is put: curl does not copy it. */
	if (body &&
	    (cc = curl_easy_setopt(c, CURLOPT_POSTFIELDS,
	                           json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN))) !=
	        CURLE_OK) {
		snprintf(w->message, sizeof(w->message), "curl_easy_setopt: %s",
		         curl_easy_strerror(cc));
		goto out;
	}
	if ((cc = curl_easy_perform(c)) != CURLE_OK) {
		snprintf(w->message, sizeof(w->message), "%s %s: %s", method, path,
		         cc == CURLE_ABORTED_BY_CALLBACK ? "stopped" : curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &w->status);
	rc = WD_EPROTO;
	if (rb.p == NULL || (root = json_tokener_parse(rb.p)) == NULL ||
	    !json_object_object_get_ex(root, "value", &v)) {
		snprintf(w->message, sizeof(w->message), "%s %s: HTTP %ld without WebDriver JSON",
		         method, path, w->status);
		goto out;
	}
	/* W3C errors come with a 4xx/5xx status; a 200 value may hold any keys. */
	if (w->status != 200) {
		rc = WD_EW3C;
		if (json_object_is_type(v, json_type_object) &&
		    json_object_object_get_ex(v, "error", &e))
			snprintf(w->error, sizeof(w->error), "%s", json_object_get_string(e));
		else
			snprintf(w->error, sizeof(w->error), "unknown error");
		if (json_object_is_type(v, json_type_object) &&
		    json_object_object_get_ex(v, "message", &e)) {
			/* First line only: chromedriver appends a long stack trace. */
			const char *m = json_object_get_string(e);
			snprintf(w->message, sizeof(w->message), "%.*s", (int)strcspn(m, "\n"), m);
		}
		goto out;
	}
	if (value)
		*value = json_object_get(v);
	rc = WD_OK;
out:
	curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &took);
	log_debug("webdriver %s %s: %.0f ms", method, path, took * 1000);
	if (rc != WD_OK)
		log_debug("webdriver %s %s: HTTP %ld %s %s | %.300s", method, path, w->status,
		          w->error, w->message, rb.p ? rb.p : "");
	curl_slist_free_all(hdrs);
	json_object_put(root);
	free(rb.p);
	return rc;
}

int wd_ready(struct wd *w)
{
	struct json_object *v = NULL, *r;
	long t = w->timeout_ms;
	int ready = 0;

	w->timeout_ms = 2000;
	if (wd_request(w, "GET", "/status", NULL, &v) == WD_OK &&
	    json_object_object_get_ex(v, "ready", &r))
		ready = json_object_get_boolean(r);
	w->timeout_ms = t;
	json_object_put(v);
	return ready;
}

int wd_new_session(struct wd *w, struct json_object *capabilities)
{
	struct json_object *v = NULL, *id;
	int rc;

	if ((rc = wd_request(w, "POST", "/session", capabilities, &v)) != WD_OK)
		return rc;
	if (!json_object_object_get_ex(v, "sessionId", &id)) {
		json_object_put(v);
		snprintf(w->message, sizeof(w->message), "new session: no sessionId");
		return WD_EPROTO;
	}
	snprintf(w->session, sizeof(w->session), "%s", json_object_get_string(id));
	json_object_put(v);
	return WD_OK;
}

int wd_delete_session(struct wd *w)
{
	char path[200];
	int rc;

	if (w->session[0] == '\0')
		return WD_OK;
	snprintf(path, sizeof(path), "/session/%s", w->session);
	rc = wd_request(w, "DELETE", path, NULL, NULL);
	w->session[0] = '\0';
	return rc;
}

/* {"key":"s"}, or NULL without memory. */
static struct json_object *obj1(const char *key, const char *s)
{
	struct json_object *o = json_object_new_object(), *v = json_object_new_string(s);

	if (o == NULL || v == NULL || json_object_object_add(o, key, v) != 0) {
		json_object_put(o);
		json_object_put(v);
		return NULL;
	}
	return o;
}

/* A request with a body that may be NULL for want of memory. */
static int request_body(struct wd *w, const char *method, const char *path,
                        struct json_object *body, struct json_object **value)
{
	int rc;

	if (body == NULL) {
		snprintf(w->message, sizeof(w->message), "%s %s: out of memory", method, path);
		return WD_EPROTO;
	}
	rc = wd_request(w, method, path, body, value);
	json_object_put(body);
	return rc;
}

int wd_navigate(struct wd *w, const char *url)
{
	int rc = request_body(w, "POST", "./url", obj1("url", url), NULL);

	if (rc == WD_EW3C && strcmp(w->error, "unknown error") == 0 &&
	    strstr(w->message, "cannot determine loading status"))
		return WD_OK;
	return rc;
}

int wd_find(struct wd *w, const char *css, char *id, size_t idlen)
{
	struct json_object *body = obj1("value", css), *v = NULL, *e;
	int rc;

	if (body)
		json_object_object_add(body, "using", json_object_new_string("css selector"));
	if ((rc = request_body(w, "POST", "./element", body, &v)) != WD_OK)
		return rc;
	if (!json_object_object_get_ex(v, WD_ELEM, &e)) {
		json_object_put(v);
		snprintf(w->message, sizeof(w->message), "find %s: no element reference", css);
		return WD_EPROTO;
	}
	snprintf(id, idlen, "%s", json_object_get_string(e));
	json_object_put(v);
	return WD_OK;
}

static void elem_path(char *path, size_t len, const char *id, const char *cmd)
{
	snprintf(path, len, "./element/%s/%s", id, cmd);
}

int wd_click(struct wd *w, const char *id)
{
	char path[300];

	elem_path(path, sizeof(path), id, "click");
	return request_body(w, "POST", path, json_object_new_object(), NULL);
}

int wd_send_keys(struct wd *w, const char *id, const char *text)
{
	struct json_object *body = NULL, *t = NULL;
	size_t n = strlen(text);
	char path[300], *fill = malloc(n + 1);
	const char *wire;
	int rc;

	elem_path(path, sizeof(path), id, "value");
	/*
	 * The text may be a password: it must not be left behind in freed memory. A first
	 * rendering of a stand-in whose every byte takes the most room escaped (\u0001) grows
	 * the body's buffer to its largest; the text then goes in and is rendered without a
	 * reallocation. Both copies are wiped below.
	 */
	if (fill) {
		memset(fill, 1, n);
		fill[n] = '\0';
		body = obj1("text", fill);
		free(fill);
	}
	if (body == NULL || !json_object_object_get_ex(body, "text", &t) ||
	    json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN) == NULL ||
	    json_object_set_string(t, text) != 1) {
		json_object_put(body);
		return request_body(w, "POST", path, NULL, NULL);
	}
	rc = wd_request(w, "POST", path, body, NULL);
	wire = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
	explicit_bzero((char *)wire, strlen(wire));
	explicit_bzero((char *)json_object_get_string(t), (size_t)json_object_get_string_len(t));
	json_object_put(body);
	return rc;
}

int wd_execute(struct wd *w, const char *script, struct json_object *args,
               struct json_object **value)
{
	struct json_object *body = obj1("script", script);

	if (body)
		json_object_object_add(body, "args",
		                       args ? json_object_get(args) : json_object_new_array());
	return request_body(w, "POST", "./execute/sync", body, value);
}

/*
 * What a failure means. Read in order; the first row that matches wins. error matches the
 * W3C error code exactly, message a part of the message (NULL: any).
 */
static const struct {
	int rc;
	const char *error, *message;
	enum wd_kind kind;
} kinds[] = {
    {WD_ETRANSPORT, NULL, NULL, WD_KIND_DRIVER},
    {WD_EPROTO, NULL, NULL, WD_KIND_DRIVER},
    {WD_EW3C, NULL, "ERR_CONNECTION", WD_KIND_UNREACHABLE},
    {WD_EW3C, NULL, "ERR_NAME_NOT_RESOLVED", WD_KIND_UNREACHABLE},
    {WD_EW3C, NULL, "ERR_ADDRESS_UNREACHABLE", WD_KIND_UNREACHABLE},
    {WD_EW3C, NULL, "ERR_EMPTY_RESPONSE", WD_KIND_UNREACHABLE},
    {WD_EW3C, "timeout", NULL, WD_KIND_TIMEOUT},
    {WD_EW3C, "invalid session id", NULL, WD_KIND_BROWSER},
    {WD_EW3C, "session not created", NULL, WD_KIND_BROWSER},
    {WD_EW3C, NULL, "disconnected", WD_KIND_BROWSER},
    {WD_EW3C, NULL, "crashed", WD_KIND_BROWSER},
    {WD_EW3C, NULL, "not reachable", WD_KIND_BROWSER},
    {WD_EW3C, NULL, "target window already closed", WD_KIND_BROWSER},
};

enum wd_kind wd_kind(const struct wd *w, int rc)
{
	size_t i;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (kinds[i].rc == rc &&
		    (!kinds[i].error || strcmp(w->error, kinds[i].error) == 0) &&
		    (!kinds[i].message || strstr(w->message, kinds[i].message)))
			return kinds[i].kind;
	return WD_KIND_STEP;
}

#include "wd.h"

#include "../common/log.h"
#include "csv.h"

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
	return w->abort && w->abort() ? 1 : 0;
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

int wd_request(struct wd *w, const char *method, const char *path, const char *body,
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
	if (body && (cc = curl_easy_setopt(c, CURLOPT_POSTFIELDS, body)) != CURLE_OK) {
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

int wd_new_session(struct wd *w, const char *capabilities)
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

/* {"key":"<escaped s>"} into a malloc'd buffer. */
static char *obj1(const char *key, const char *s)
{
	size_t n = strlen(s), kn = strlen(key);
	char *b = malloc(6 * n + kn + 16);

	if (b == NULL)
		return NULL;
	b[0] = '{';
	b[1] = '"';
	memcpy(b + 2, key, kn);
	memcpy(b + 2 + kn, "\":\"", 3);
	n = csv_json_escape(b + 5 + kn, s, n);
	memcpy(b + 5 + kn + n, "\"}", 3);
	return b;
}

int wd_navigate(struct wd *w, const char *url)
{
	char *body = obj1("url", url);
	int rc;

	if (body == NULL)
		return WD_EPROTO;
	rc = wd_request(w, "POST", "./url", body, NULL);
	free(body);
	return rc;
}

int wd_find(struct wd *w, const char *css, char *id, size_t idlen)
{
	struct json_object *v = NULL, *e;
	char body[512];
	size_t n;
	int rc;

	n = (size_t)snprintf(body, sizeof(body), "{\"using\":\"css selector\",\"value\":\"");
	if (strlen(css) * 6 + n + 3 > sizeof(body))
		return WD_EPROTO;
	n += csv_json_escape(body + n, css, strlen(css));
	memcpy(body + n, "\"}", 3);
	if ((rc = wd_request(w, "POST", "./element", body, &v)) != WD_OK)
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

static int elem_cmd(struct wd *w, const char *id, const char *cmd, const char *body)
{
	char path[300];

	snprintf(path, sizeof(path), "./element/%s/%s", id, cmd);
	return wd_request(w, "POST", path, body, NULL);
}

int wd_clear(struct wd *w, const char *id)
{
	return elem_cmd(w, id, "clear", "{}");
}

int wd_click(struct wd *w, const char *id)
{
	return elem_cmd(w, id, "click", "{}");
}

int wd_send_keys(struct wd *w, const char *id, const char *text)
{
	char *body = obj1("text", text);
	int rc;

	if (body == NULL)
		return WD_EPROTO;
	rc = elem_cmd(w, id, "value", body);
	explicit_bzero(body, strlen(body));
	free(body);
	return rc;
}

int wd_get_property(struct wd *w, const char *id, const char *name, struct json_object **value)
{
	char path[400];

	snprintf(path, sizeof(path), "./element/%s/property/%s", id, name);
	return wd_request(w, "GET", path, NULL, value);
}

int wd_execute(struct wd *w, const char *script, const char *args, struct json_object **value)
{
	size_t n = strlen(script), an = args ? strlen(args) : 2;
	char *body = malloc(6 * n + an + 32);
	size_t o;
	int rc;

	if (body == NULL)
		return WD_EPROTO;
	o = (size_t)sprintf(body, "{\"script\":\"");
	o += csv_json_escape(body + o, script, n);
	o += (size_t)sprintf(body + o, "\",\"args\":%s}", args ? args : "[]");
	rc = wd_request(w, "POST", "./execute/sync", body, value);
	free(body);
	return rc;
}

void wd_elem_json(const char *id, char *buf, size_t len)
{
	snprintf(buf, len, "{\"" WD_ELEM "\":\"%s\"}", id);
}

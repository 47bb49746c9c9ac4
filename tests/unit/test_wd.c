/*
 * wd: the WebDriver client's request bodies (built with json-c) and its reading of answers
 * and failures, against a fake driver on loopback that records each request and answers
 * with a canned reply. The real driver is tested end to end in tests/e2e/test_sync.sh.
 */
#include "../../sync/wd.h"
#include "t.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct fake {
	int lfd;
	char reply[1024]; /* the whole HTTP answer */
	char method[16], path[256], body[4096];
};

/* Serve one request: record it, answer with f->reply, close. */
static void *serve_one(void *arg)
{
	struct fake *f = arg;
	char buf[8192], *hdr_end, *cl;
	size_t n = 0, want = 0;
	ssize_t r;
	int c = accept(f->lfd, NULL, NULL);

	if (c < 0)
		return NULL;
	while (n < sizeof(buf) - 1 && (r = recv(c, buf + n, sizeof(buf) - 1 - n, 0)) > 0) {
		n += (size_t)r;
		buf[n] = '\0';
		if ((hdr_end = strstr(buf, "\r\n\r\n")) == NULL)
			continue;
		cl = strcasestr(buf, "Content-Length:");
		want = (size_t)(hdr_end + 4 - buf) +
		       (cl && cl < hdr_end ? strtoul(cl + 15, NULL, 10) : 0);
		if (n >= want)
			break;
	}
	sscanf(buf, "%15s %255s", f->method, f->path);
	hdr_end = strstr(buf, "\r\n\r\n");
	snprintf(f->body, sizeof(f->body), "%s", hdr_end ? hdr_end + 4 : "");
	send(c, f->reply, strlen(f->reply), MSG_NOSIGNAL);
	close(c);
	return NULL;
}

static void set_reply(struct fake *f, int status, const char *json)
{
	snprintf(f->reply, sizeof(f->reply),
	         "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
	         "Connection: close\r\n\r\n%s",
	         status, strlen(json), json);
}

/* One command through the fake: run fn while the fake serves it. */
#define ROUND(f, call)                                                                             \
	do {                                                                                       \
		pthread_t th;                                                                      \
		pthread_create(&th, NULL, serve_one, (f));                                         \
		call;                                                                              \
		pthread_join(th, NULL);                                                            \
	} while (0)

/* The member k of the JSON object text, as a string ("" if absent). */
static const char *member(struct json_object *o, const char *k)
{
	struct json_object *v;
	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "";
}

void test_wd(void)
{
	static const char tricky[] = "p\"a\\s/s\n\t\x01 w\xc3\xb6rd \xe2\x82\xac end";
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	struct json_object *body, *v = NULL, *args;
	struct fake f;
	struct wd w;
	char base[64], id[64];
	int rc;

	memset(&f, 0, sizeof(f));
	if ((f.lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    bind(f.lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(f.lfd, 4) < 0 ||
	    getsockname(f.lfd, (struct sockaddr *)&a, &al) < 0) {
		CHECK(0, "wd: setup: a loopback listener");
		return;
	}
	snprintf(base, sizeof(base), "http://127.0.0.1:%d/", ntohs(a.sin_port));
	CHECK(wd_init(&w, base) == WD_OK, "wd_init");
	snprintf(w.session, sizeof(w.session), "S1");

	/* Typed text (a password) arrives as it is: quotes, backslash, slash, controls, UTF-8. */
	set_reply(&f, 200, "{\"value\":null}");
	ROUND(&f, rc = wd_send_keys(&w, "E1", tricky));
	body = json_tokener_parse(f.body);
	CHECK(rc == WD_OK, "send_keys: rc %d (%s)", rc, w.message);
	CHECK(strcmp(f.method, "POST") == 0 && strcmp(f.path, "/session/S1/element/E1/value") == 0,
	      "send_keys: %s %s", f.method, f.path);
	CHECK(body && strcmp(member(body, "text"), tricky) == 0, "send_keys: body %s", f.body);
	json_object_put(body);

	/* A CSS selector with quotes; the element id comes back from the W3C reference. */
	set_reply(&f, 200, "{\"value\":{\"element-6066-11e4-a52e-4f735466cecf\":\"E7\"}}");
	ROUND(&f, rc = wd_find(&w, "input[name=\"a\\\"b\"]", id, sizeof(id)));
	body = json_tokener_parse(f.body);
	CHECK(rc == WD_OK && strcmp(id, "E7") == 0, "find: rc %d id %s", rc, id);
	CHECK(body && strcmp(member(body, "using"), "css selector") == 0 &&
	          strcmp(member(body, "value"), "input[name=\"a\\\"b\"]") == 0,
	      "find: body %s", f.body);
	json_object_put(body);

	/* A script with quotes and newlines, and its arguments, arrive as given. */
	set_reply(&f, 200, "{\"value\":{\"x\":1}}");
	args = json_tokener_parse("[1,\"two\"]");
	ROUND(&f, rc = wd_execute(&w, "var s='a\"b';\nreturn {x:1};", args, &v));
	body = json_tokener_parse(f.body);
	CHECK(rc == WD_OK && v && json_object_is_type(v, json_type_object), "execute: rc %d", rc);
	CHECK(body && strcmp(member(body, "script"), "var s='a\"b';\nreturn {x:1};") == 0,
	      "execute: script in %s", f.body);
	{
		struct json_object *got = NULL;
		CHECK(body && json_object_object_get_ex(body, "args", &got) &&
		          json_object_equal(got, args),
		      "execute: args in %s", f.body);
	}
	json_object_put(body);
	json_object_put(args);
	json_object_put(v);
	v = NULL;
	ROUND(&f, rc = wd_execute(&w, "return 1;", NULL, NULL));
	body = json_tokener_parse(f.body);
	{
		struct json_object *got = NULL;
		CHECK(body && json_object_object_get_ex(body, "args", &got) &&
		          json_object_is_type(got, json_type_array) &&
		          json_object_array_length(got) == 0,
		      "execute without args sends []: %s", f.body);
	}
	json_object_put(body);

	/* A W3C error: code, first line of the message, and what it means. */
	set_reply(&f, 404,
	          "{\"value\":{\"error\":\"no such element\",\"message\":\"no such element: "
	          "#x\\nStacktrace: ...\"}}");
	ROUND(&f, rc = wd_find(&w, "#x", id, sizeof(id)));
	CHECK(rc == WD_EW3C && strcmp(w.error, "no such element") == 0 &&
	          strcmp(w.message, "no such element: #x") == 0,
	      "W3C error: rc %d error '%s' message '%s'", rc, w.error, w.message);
	CHECK(wd_kind(&w, rc) == WD_KIND_STEP, "no such element is the step's own failure");
	set_reply(&f, 500,
	          "{\"value\":{\"error\":\"unknown error\",\"message\":\"unknown error: "
	          "net::ERR_CONNECTION_REFUSED\"}}");
	ROUND(&f, rc = wd_navigate(&w, "http://127.0.0.1:1/"));
	CHECK(wd_kind(&w, rc) == WD_KIND_UNREACHABLE, "ERR_CONNECTION_REFUSED: unreachable");
	/* A navigation chromedriver lost track of ended: the page is the caller's to read. */
	set_reply(&f, 500,
	          "{\"value\":{\"error\":\"unknown error\",\"message\":\"unknown error: "
	          "cannot determine loading status\\nfrom unknown error: ...\"}}");
	ROUND(&f, rc = wd_navigate(&w, "http://127.0.0.1:1/"));
	CHECK(rc == WD_OK, "navigation without a loading status: WD_OK (rc %d)", rc);
	set_reply(&f, 500,
	          "{\"value\":{\"error\":\"unknown error\",\"message\":\"unknown error: "
	          "session deleted\"}}");
	ROUND(&f, rc = wd_navigate(&w, "http://127.0.0.1:1/"));
	CHECK(rc == WD_EW3C, "another unknown error still fails the navigation (rc %d)", rc);
	set_reply(&f, 500,
	          "{\"value\":{\"error\":\"timeout\",\"message\":\"timeout: Timed out "
	          "receiving message from renderer\"}}");
	ROUND(&f, rc = wd_navigate(&w, "http://127.0.0.1:1/"));
	CHECK(wd_kind(&w, rc) == WD_KIND_TIMEOUT, "timeout: the page's timeout");
	set_reply(&f, 404,
	          "{\"value\":{\"error\":\"invalid session id\",\"message\":\"invalid "
	          "session id: session deleted as the browser has closed the "
	          "connection\"}}");
	ROUND(&f, rc = wd_execute(&w, "return 1;", NULL, NULL));
	CHECK(wd_kind(&w, rc) == WD_KIND_BROWSER, "invalid session id: the browser is gone");
	set_reply(&f, 200, "not json");
	ROUND(&f, rc = wd_execute(&w, "return 1;", NULL, NULL));
	CHECK(rc == WD_EPROTO && wd_kind(&w, rc) == WD_KIND_DRIVER, "not WebDriver JSON: rc %d",
	      rc);

	/* Nobody listening: a transport failure, the driver's. */
	close(f.lfd);
	w.timeout_ms = 2000;
	rc = wd_execute(&w, "return 1;", NULL, NULL);
	CHECK(rc == WD_ETRANSPORT && wd_kind(&w, rc) == WD_KIND_DRIVER, "no driver: rc %d", rc);
	wd_free(&w);
}

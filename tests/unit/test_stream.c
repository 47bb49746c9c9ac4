/*
 * stream: the export's HTTP answer into a pipe, and what HTTP says about how it ended,
 * against a fake phpMyAdmin on loopback that records the request and answers with canned
 * bytes (then closes, or holds the connection). The real phpMyAdmin is tested end to end in
 * tests/e2e/test_sync.sh.
 */
#include "../../sync/stream.h"
#include "../../sync/sync.h"
#include "t.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct fake {
	int lfd;
	const char *reply; /* the bytes sent back */
	int hold;          /* keep the connection open until the client closes it */
	char request[8192];
};

static void *serve_one(void *arg)
{
	struct fake *f = arg;
	size_t n = 0;
	ssize_t r;
	char tmp[256];
	int c = accept(f->lfd, NULL, NULL);

	if (c < 0)
		return NULL;
	/* The whole request: headers and the form (curl sends both at once, it is small). */
	while (n < sizeof(f->request) - 1 &&
	       (r = recv(c, f->request + n, sizeof(f->request) - 1 - n, 0)) > 0) {
		char *h;
		n += (size_t)r;
		f->request[n] = '\0';
		if ((h = strstr(f->request, "\r\n\r\n")) != NULL &&
		    strlen(h + 4) >=
		        strtoul(strcasestr(f->request, "Content-Length:") + 15, NULL, 10))
			break;
	}
	send(c, f->reply, strlen(f->reply), MSG_NOSIGNAL);
	while (f->hold && recv(c, tmp, sizeof(tmp), 0) > 0)
		;
	close(c);
	return NULL;
}

/* Read the pipe to its end into buf (NUL-terminated); returns the bytes read. */
static size_t drain(int fd, char *buf, size_t len)
{
	size_t n = 0;
	ssize_t r;

	while ((r = read(fd, buf + n, len - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = '\0';
	return n;
}

static char url[128];

/* One export through the fake: stream_start's class; on success, the body read to its end
 * and the verdict's class. */
static int round_trip(struct fake *f, const char *reply, char *body, size_t blen, int *verdict,
                      char *err, size_t errlen)
{
	struct stream_req req = {url,
	                         "db=shop&table=orders&token=t%26k",
	                         "pmaAuth-1=s3cret; a=b",
	                         "HeadlessChrome/120",
	                         "http://x/export",
	                         NULL};
	struct stream *s = NULL;
	pthread_t th;
	int code;

	f->reply = reply;
	f->hold = 0;
	f->request[0] = body[0] = '\0';
	*verdict = -99;
	err[0] = '\0';
	pthread_create(&th, NULL, serve_one, f);
	code = stream_start(&req, &s, err, errlen);
	if (code == SC_OK) {
		drain(stream_fd(s), body, blen);
		char again[1024];
		*verdict = stream_verdict(s, err, errlen);
		CHECK(stream_end(s, NULL, again, sizeof(again)) == *verdict,
		      "stream_end gives the verdict again: %s", again);
	}
	pthread_join(th, NULL);
	return code;
}

void test_stream(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	struct fake f;
	char body[4096], err[1024];
	int code, v, closed_port;

	memset(&f, 0, sizeof(f));
	f.lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (f.lfd < 0 || bind(f.lfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(f.lfd, 4) < 0 || getsockname(f.lfd, (struct sockaddr *)&a, &alen) < 0) {
		CHECK(0, "fake server: no socket");
		return;
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/index.php?route=/export",
	         ntohs(a.sin_port));

	/* A whole chunked CSV: the body, and the request as the browser would send it. */
	code = round_trip(&f,
	                  "HTTP/1.1 200 OK\r\nContent-Type: text/comma-separated-values; "
	                  "charset=UTF-8\r\nTransfer-Encoding: chunked\r\n\r\n"
	                  "a\r\n\"id\",\"a\"\r\n\r\n8\r\n\"1\",\"x\"\n\r\n0\r\n\r\n",
	                  body, sizeof(body), &v, err, sizeof(err));
	CHECK(code == SC_OK && v == SC_OK, "whole chunked CSV: %d %d %s", code, v, err);
	CHECK(strcmp(body, "\"id\",\"a\"\r\n\"1\",\"x\"\n") == 0, "the body, as sent: '%s'", body);
	CHECK(strncmp(f.request, "POST /index.php?route=/export HTTP/1.1\r\n", 40) == 0,
	      "a POST to the form's action: %.60s", f.request);
	CHECK(strstr(f.request, "\r\nCookie: pmaAuth-1=s3cret; a=b\r\n") != NULL,
	      "the browser's cookies sent");
	CHECK(strstr(f.request, "\r\nUser-Agent: HeadlessChrome/120\r\n") != NULL,
	      "the browser's user agent sent");
	CHECK(strstr(f.request, "\r\n\r\ndb=shop&table=orders&token=t%26k") != NULL,
	      "the form, as the browser encoded it");

	/* A chunked body cut off: no last chunk, the connection closed. */
	code =
	    round_trip(&f,
	               "HTTP/1.1 200 OK\r\nContent-Type: text/comma-separated-values\r\n"
	               "Transfer-Encoding: chunked\r\n\r\na\r\n\"id\",\"a\"\r\n\r\n8\r\n\"1\",\"",
	               body, sizeof(body), &v, err, sizeof(err));
	CHECK(code == SC_OK && v == SC_CUT, "chunked cut: %d %d %s", code, v, err);
	CHECK(strstr(err, "cut off after 15 bytes") != NULL, "says where: %s", err);

	/* A Content-Length not reached. */
	code = round_trip(&f,
	                  "HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: 40\r\n\r\n"
	                  "\"id\",\"a\"\n\"1\",\"x\"\n",
	                  body, sizeof(body), &v, err, sizeof(err));
	CHECK(code == SC_OK && v == SC_CUT, "short of Content-Length: %d %d %s", code, v, err);

	/* Cut right after the head: a cut, not an unreachable phpMyAdmin. */
	code = round_trip(&f,
	                  "HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: 40\r\n\r\n",
	                  body, sizeof(body), &v, err, sizeof(err));
	CHECK(code == SC_CUT && strstr(err, "cut off after 0 bytes"), "cut after the head: %d %s",
	      code, err);

	/* Ended by closing the connection, mid-row: only the missing line end tells. */
	code = round_trip(&f,
	                  "HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nConnection: close\r\n\r\n"
	                  "\"id\",\"a\"\n\"1\",\"x",
	                  body, sizeof(body), &v, err, sizeof(err));
	CHECK(code == SC_OK && v == SC_INVALID && strstr(err, "without a line end"),
	      "close-delimited, cut: %d %d %s", code, v, err);

	/* Failures known from the answer's head: before any byte reaches the converter. */
	code = round_trip(&f,
	                  "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/html\r\n"
	                  "Content-Length: 22\r\n\r\n<h1>Fatal error</h1>\r\n",
	                  body, sizeof(body), &v, err, sizeof(err));
	CHECK(code == SC_PMA && strstr(err, "HTTP 500 Internal Server Error") &&
	          strstr(err, "Fatal error"),
	      "500: %d %s", code, err);
	code = round_trip(&f,
	                  "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n"
	                  "Content-Length: 2\r\n\r\nno",
	                  body, sizeof(body), &v, err, sizeof(err));
	CHECK(code == SC_EXPORT && strstr(err, "HTTP 403 Forbidden"), "403: %d %s", code, err);
	code = round_trip(&f,
	                  "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
	                  "Content-Length: 38\r\n\r\n<html><body><p>Hello</p></body></html>",
	                  body, sizeof(body), &v, err, sizeof(err));
	CHECK(code == SC_INVALID && strstr(err, "text/html; charset=utf-8 instead of CSV") &&
	          strstr(err, "(Hello)"),
	      "HTML instead of CSV: %d %s", code, err);
	code = round_trip(&f,
	                  "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 40\r\n\r\n"
	                  "<form id=\"login_form\"><input id=x></form>",
	                  body, sizeof(body), &v, err, sizeof(err));
	CHECK(code == SC_LOGIN && strstr(err, "asked for a login again"), "login page: %d %s", code,
	      err);

	/* Stop while the body is on its way: the transfer ends at once, as stopped. */
	{
		volatile sig_atomic_t stop = 0;
		struct stream_req req = {url, "x=1", NULL, NULL, NULL, &stop};
		struct stream *s = NULL;
		struct timespec t0, t1;
		pthread_t th;
		char one[8];

		f.reply = "HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nTransfer-Encoding: "
		          "chunked\r\n\r\n4\r\n\"a\"\n\r\n";
		f.hold = 1;
		pthread_create(&th, NULL, serve_one, &f);
		code = stream_start(&req, &s, err, sizeof(err));
		CHECK(code == SC_OK, "held answer starts: %d %s", code, err);
		if (code == SC_OK) {
			CHECK(read(stream_fd(s), one, 4) == 4, "its first bytes arrive");
			stop = 2;
			clock_gettime(CLOCK_MONOTONIC, &t0);
			code = stream_end(s, NULL, err, sizeof(err));
			clock_gettime(CLOCK_MONOTONIC, &t1);
			CHECK(code == SC_STOPPED && strstr(err, "stopped by a signal"),
			      "stopped: %d %s", code, err);
			CHECK(t1.tv_sec - t0.tv_sec < 3, "stops promptly");
		}
		pthread_join(th, NULL);
	}

	/* Nobody listening: unreachable. Not http: refused before anything is sent. */
	closed_port = ntohs(a.sin_port);
	close(f.lfd);
	{
		struct stream_req req = {url, "x=1", NULL, NULL, NULL, NULL};
		struct stream *s = NULL;

		code = stream_start(&req, &s, err, sizeof(err));
		CHECK(code == SC_UNREACHABLE && strstr(err, "unreachable") && s == NULL,
		      "port %d closed: %d %s", closed_port, code, err);
		req.url = "file:///etc/passwd";
		code = stream_start(&req, &s, err, sizeof(err));
		CHECK(code == SC_CONFIG && s == NULL, "file:// refused: %d %s", code, err);
	}
}

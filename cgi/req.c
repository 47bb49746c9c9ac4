#include "req.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#define REC_MAX 65528 /* a FastCGI record holds at most 65535 bytes: 8-byte aligned */

static atomic_int long_active;
static int long_max = 1;

void req_long_init(int threads)
{
	long_max = threads / 2 > 1 ? threads / 2 : 1;
}

int req_long_begin(void)
{
	if (atomic_fetch_add(&long_active, 1) >= long_max) {
		atomic_fetch_sub(&long_active, 1);
		return 0;
	}
	return 1;
}

void req_long_end(void)
{
	atomic_fetch_sub(&long_active, 1);
}

static const char *const qnames[Q__MAX] = {"refresh", "stream", "payload", "last_event_id"};

const char *req_param(const struct req *r, const char *name)
{
	return FCGX_GetParam(name, r->fr->envp);
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int req_decode(const char *s, size_t n, char *out, size_t len)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		int c = (unsigned char)s[i];
		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			int h, l;
			if (i + 2 >= n || (h = hexval(s[i + 1])) < 0 || (l = hexval(s[i + 2])) < 0)
				return -1;
			c = h * 16 + l;
			i += 2;
		}
		if (c == 0 || o + 1 >= len)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

int req_parse(struct req *r, FCGX_Request *fr, const struct conf *cf, char *err, size_t errlen)
{
	const char *qs, *p;
	int k;

	memset(r, 0, sizeof(*r));
	r->fr = fr;
	r->cf = cf;
	r->method = req_param(r, "REQUEST_METHOD");
	r->path = req_param(r, "DOCUMENT_URI");
	if (r->path == NULL)
		r->path = req_param(r, "SCRIPT_NAME");
	if (r->method == NULL)
		r->method = "";
	if (r->path == NULL)
		r->path = "";
	r->head = strcmp(r->method, "HEAD") == 0;

	qs = req_param(r, "QUERY_STRING");
	for (p = qs ? qs : ""; *p;) {
		size_t n = strcspn(p, "&"), kn = strcspn(p, "=&");
		char name[32];

		if (n > 0 && req_decode(p, kn, name, sizeof(name)) == 0) {
			for (k = 0; k < Q__MAX; k++) {
				if (strcmp(name, qnames[k]) != 0)
					continue;
				const char *v = kn < n ? p + kn + 1 : p + n;
				if (req_decode(v, (size_t)(p + n - v), r->q[k], sizeof(r->q[k])) <
				    0) {
					snprintf(err, errlen, "bad value for query parameter '%s'",
					         name);
					return -1;
				}
				r->qset[k] = 1;
			}
		}
		p += n;
		if (*p == '&')
			p++;
	}
	for (k = 0; k <= Q_STREAM; k++) {
		if (r->qset[k] && strcmp(r->q[k], "true") && strcmp(r->q[k], "1") &&
		    strcmp(r->q[k], "false") && strcmp(r->q[k], "0")) {
			snprintf(err, errlen, "query parameter '%s' must be true or false",
			         qnames[k]);
			return -1;
		}
	}
	if (r->qset[Q_PAYLOAD] && strcmp(r->q[Q_PAYLOAD], "none") &&
	    strcmp(r->q[Q_PAYLOAD], "full")) {
		snprintf(err, errlen, "query parameter 'payload' must be none or full");
		return -1;
	}
	return 0;
}

int req_flag(const struct req *r, enum qkey k)
{
	return r->qset[k] && (strcmp(r->q[k], "true") == 0 || strcmp(r->q[k], "1") == 0);
}

const char *req_reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 202:
		return "Accepted";
	case 304:
		return "Not Modified";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 410:
		return "Gone";
	case 429:
		return "Too Many Requests";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	default:
		return "Status";
	}
}

/* libfcgi's own FCGX_FPrintF knows no %zu or %lld: format here. */
int req_header(struct req *r, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -1;
	return req_write(r, buf, (size_t)n);
}

int req_write(struct req *r, const void *buf, size_t len)
{
	if (len == 0)
		return 0;
	if (FCGX_PutStr(buf, (int)len, r->fr->out) != (int)len)
		return -1;
	return 0;
}

int req_flush(struct req *r)
{
	return FCGX_FFlush(r->fr->out) < 0 ? -1 : 0;
}

void req_json(struct req *r, int status, const char *extra, const char *body)
{
	size_t blen = strlen(body);

	req_header(r,
	           "Status: %d %s\r\nContent-Type: application/json\r\n"
	           "Cache-Control: no-store\r\nContent-Length: %zu\r\n%s\r\n",
	           status, req_reason(status), blen + 1, extra ? extra : "");
	if (!r->head) {
		req_write(r, body, blen);
		req_write(r, "\n", 1);
	}
}

void req_error(struct req *r, int status, const char *extra, const char *msg)
{
	char body[512];

	/* Our messages are fixed ASCII without quotes or backslashes. */
	snprintf(body, sizeof(body), "{\"status\":\"error\",\"message\":\"%s\"}", msg);
	req_json(r, status, extra, body);
}

/* Whether p starts a list member that ends after n bytes (at the end, OWS or a comma). */
static int member_end(const char *p, size_t n)
{
	return p[n] == '\0' || p[n] == ',' || p[n] == ' ' || p[n] == '\t';
}

int req_etag_match(const char *inm, const char *etag)
{
	/* If-None-Match: "*" or a list of "a", W/"b" (RFC 9110 13.1.2: weak comparison). */
	size_t n = strlen(etag);
	const char *p = inm;

	if (inm == NULL || n == 0)
		return 0;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '*' && member_end(p, 1))
			return 1;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		if (strncmp(p, etag, n) == 0 && member_end(p, n))
			return 1;
		p += strcspn(p, ",");
	}
	return 0;
}

/* n bytes to the connection, whatever the partial writes. */
static int write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n > 0) {
		ssize_t k = write(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/*
 * Bytes [off, off + len) of fd, as FastCGI stdout records written to nginx's connection
 * directly: the stream's buffer goes first, then each record is its 8-byte header and up to
 * REC_MAX bytes passed from the page cache by sendfile(2), never copied through this process.
 * A record cut short (an I/O error, the peer gone) leaves the connection's framing broken:
 * it is shut down, so that nginx sees the upstream fail and libfcgi does not keep it.
 */
int req_copy_body(struct req *r, int fd, off_t off, long long len)
{
	int sock = r->fr->ipcFd;
	unsigned id = (unsigned)r->fr->requestId;

	if (FCGX_FFlush(r->fr->out) < 0)
		return -1;
	while (len > 0) {
		size_t n = len < REC_MAX ? (size_t)len : REC_MAX, done = 0;
		unsigned char h[8] = {1,
		                      6 /* FCGI_STDOUT */,
		                      (unsigned char)(id >> 8),
		                      (unsigned char)id,
		                      (unsigned char)(n >> 8),
		                      (unsigned char)n,
		                      0,
		                      0};
		if (write_all(sock, h, sizeof(h)) < 0)
			goto broken;
		while (done < n) {
			ssize_t k = sendfile(sock, fd, &off, n - done);
			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0)
				goto broken;
			done += (size_t)k;
		}
		len -= (long long)n;
	}
	return 0;
broken:
	shutdown(sock, SHUT_RDWR);
	return -1;
}

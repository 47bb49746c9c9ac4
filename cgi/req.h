/* req: one FastCGI request: its validated inputs and the ways to answer it. */
#ifndef PMACACHE_REQ_H
#define PMACACHE_REQ_H

#include "../common/conf.h"

#include <fcgiapp.h>
#include <stddef.h>
#include <sys/types.h>

/* The query parameters we know; anything else is ignored. */
enum qkey { Q_REFRESH, Q_STREAM, Q_PAYLOAD, Q_LAST_EVENT_ID, Q__MAX };

struct req {
	FCGX_Request *fr;
	const struct conf *cf;
	const char *method;
	const char *path;
	int head; /* HEAD: headers only */
	int qset[Q__MAX];
	char q[Q__MAX][128];
};

/*
 * Fill r from the FastCGI params. Returns 0, or -1 with the reason in err for a query
 * string that does not parse (bad escape, value too long, bad boolean).
 */
int req_parse(struct req *r, FCGX_Request *fr, const struct conf *cf, char *err, size_t errlen);

/* Percent-decode s[0..n) ('+' is a space) into out (size len), NUL-terminated. Returns 0, or
 * -1 for a bad escape, a NUL byte or a result that does not fit. */
int req_decode(const char *s, size_t n, char *out, size_t len);

/* A parameter of the request (HTTP_X_API_KEY, ...) or NULL. */
const char *req_param(const struct req *r, const char *name);

/* Whether boolean query key k is true ("true" or "1"). */
int req_flag(const struct req *r, enum qkey k);

/* Answer with status and a JSON body; extra is more header lines ("Name: value\r\n") or NULL. */
void req_json(struct req *r, int status, const char *extra, const char *body);

/* {"status":"error","message":msg} with the given status. */
void req_error(struct req *r, int status, const char *extra, const char *msg);

/* Write formatted header lines (the whole head must fit 2 KiB). Returns 0 or -1. */
int req_header(struct req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Write raw bytes; returns 0, or -1 if the client has gone. */
int req_write(struct req *r, const void *buf, size_t len);
int req_flush(struct req *r);

/* Send len bytes of fd from off to the client. Returns 0, or -1 if the client went away. */
int req_copy_body(struct req *r, int fd, off_t off, long long len);

/* Whether an If-None-Match header value names etag (quoted): "*", a list, weak validators. */
int req_etag_match(const char *inm, const char *etag);
/*
 * Long work (an SSE stream, a streamed ?refresh=true body) may hold at most half of a
 * process's threads, so that /health, /status and plain /fetch-data always find one, even
 * with every connection nginx keeps alive parked on a thread of this process (2 × 16).
 * req_long_begin returns 1 (counted: call req_long_end), or 0 when the budget is spent.
 */
void req_long_init(int threads);
int req_long_begin(void);
void req_long_end(void);

/* "200 OK" and friends. */
const char *req_reason(int status);

#endif

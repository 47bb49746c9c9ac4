/*
 * stream: the export's HTTP answer, straight into a pipe the converter reads. One POST on a
 * thread of its own (libcurl); the body goes into the pipe as it arrives, and HTTP says how
 * the body ended: its status, its Content-Type, its length or chunked end, or the cut.
 */
#ifndef PMACACHE_STREAM_H
#define PMACACHE_STREAM_H

#include <signal.h>
#include <stddef.h>

struct stream;

struct stream_req {
	const char *url;             /* POST here: http:// or https:// only */
	const char *body;            /* application/x-www-form-urlencoded (copied) */
	const char *cookie;          /* "name=value; ..." (copied; wiped once sent) */
	const char *user_agent;      /* the browser's */
	const char *referer;         /* the page the form is on */
	volatile sig_atomic_t *stop; /* non-zero: abort the transfer */
};

/*
 * Send the POST on a thread of its own and wait until the answer's first body byte is in the
 * pipe, or the answer is known to be a failure, or stop. Returns 0 with *s set (read the body
 * from stream_fd), or an enum sync_class with the reason in err.
 */
int stream_start(const struct stream_req *r, struct stream **s, char *err, size_t errlen);

/* The read end of the pipe that carries the body. stream_end closes it. */
int stream_fd(const struct stream *s);

/*
 * After the reader saw the end of the body: 0 when the body is whole (the transfer ended
 * well, with a line end last), or an enum sync_class with the reason in err. Waits for the
 * transfer's thread.
 */
int stream_verdict(struct stream *s, char *err, size_t errlen);

/*
 * Close the read end (a transfer still running is aborted), wait for the thread and free s.
 * Returns the transfer's verdict as stream_verdict does, or -1 when the reader had stopped
 * reading first (the reader's own failure is the one to tell). NULL is fine (returns 0).
 * The body's size goes to bytes (if not NULL).
 */
int stream_end(struct stream *s, long long *bytes, char *err, size_t errlen);

#endif

#include "sse.h"

#include "../common/cache.h"
#include "../common/log.h"
#include "../common/status.h"
#include "query.h"
#include "req.h"
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#define SSE_POLL_MS 200     /* without inotify */
#define SSE_RECHECK_MS 1000 /* with inotify: a killed sync writes nothing, so look anyway */

/*
 * One inotify watch on cache_dir per process, shared by all its streams: a watcher thread
 * bumps a generation counter and wakes the streams whenever a file there is replaced by
 * rename(2) (progress.json, status.json, the current link). Only renames: every request
 * opens and closes the lock files, and those events would wake every stream each time.
 */
static pthread_mutex_t watch_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t watch_cv;
static unsigned long watch_gen;
static int watch_ok = -1; /* -1 not tried, 0 failed (poll), 1 running */

static void *watcher(void *arg)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	int fd = (int)(long)arg;

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			pthread_mutex_lock(&watch_mu);
			watch_ok = 0;
			pthread_cond_broadcast(&watch_cv);
			pthread_mutex_unlock(&watch_mu);
			close(fd);
			return NULL;
		}
		pthread_mutex_lock(&watch_mu);
		watch_gen++;
		pthread_cond_broadcast(&watch_cv);
		pthread_mutex_unlock(&watch_mu);
	}
}

static void watch_start(const char *cache_dir)
{
	pthread_condattr_t ca;
	pthread_t t;
	int fd;

	pthread_mutex_lock(&watch_mu);
	if (watch_ok >= 0) {
		pthread_mutex_unlock(&watch_mu);
		return;
	}
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&watch_cv, &ca);
	watch_ok = 0;
	fd = inotify_init1(IN_CLOEXEC);
	if (fd >= 0 && inotify_add_watch(fd, cache_dir, IN_MOVED_TO) >= 0 &&
	    pthread_create(&t, NULL, watcher, (void *)(long)fd) == 0) {
		pthread_detach(t);
		watch_ok = 1;
	} else {
		log_warn("inotify on %s: %s; streams poll every %d ms", cache_dir, strerror(errno),
		         SSE_POLL_MS);
		if (fd >= 0)
			close(fd);
	}
	pthread_mutex_unlock(&watch_mu);
}

/* Wait until something in cache_dir changed, or ms passed (at most recheck_ms). */
static void watch_wait(unsigned long *seen, int ms, int recheck_ms)
{
	struct timespec dl;

	if (ms > recheck_ms)
		ms = recheck_ms;
	pthread_mutex_lock(&watch_mu);
	if (watch_ok != 1 && ms > SSE_POLL_MS)
		ms = SSE_POLL_MS;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += ms / 1000;
	dl.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	while (watch_gen == *seen)
		if (pthread_cond_timedwait(&watch_cv, &watch_mu, &dl) != 0)
			break;
	*seen = watch_gen;
	pthread_mutex_unlock(&watch_mu);
}

/*
 * A global slot among sse_max_streams, across all responder processes: an OFD lock on one
 * byte of cache_dir/sse.slots, held by this open file until close. Returns the fd or -1.
 */
static int take_slot(const struct conf *cf)
{
	char path[4200];
	struct flock fl;
	int fd, i;

	snprintf(path, sizeof(path), "%s/sse.slots", cf->cache_dir);
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640)) < 0) {
		log_err("%s: %s", path, strerror(errno));
		return -1;
	}
	for (i = 0; i < cf->sse_max_streams; i++) {
		memset(&fl, 0, sizeof(fl));
		fl.l_type = F_WRLCK;
		fl.l_whence = SEEK_SET;
		fl.l_start = i;
		fl.l_len = 1;
		if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
			return fd;
	}
	close(fd);
	return -1;
}

struct stream {
	struct req *r;
	char id[68]; /* the ETag of the snapshot the client holds */
	int payload_none;
	struct query *q; /* fields and filters, or NULL: the whole snapshot */
	int gone;
	char last_progress[1024]; /* the last progress event sent */
};

/* One event: "event: NAME\nid: ID\ndata: " head, body parts, "\n\n". */
static int event_begin(struct stream *s, const char *name)
{
	char h[160];
	int n = snprintf(h, sizeof(h), "event: %s\nid: %s\ndata: ", name, s->id);

	if (s->gone || req_write(s->r, h, (size_t)n) < 0)
		return s->gone = 1, -1;
	return 0;
}

static int event_end(struct stream *s)
{
	if (s->gone || req_write(s->r, "\n\n", 2) < 0 || req_flush(s->r) < 0)
		return s->gone = 1, -1;
	return 0;
}

static int event_text(struct stream *s, const char *name, const char *data)
{
	if (event_begin(s, name) < 0 || req_write(s->r, data, strlen(data)) < 0)
		return s->gone = 1, -1;
	return event_end(s);
}

/* "cached" or "updated" with the current snapshot. resume: the client's Last-Event-ID. */
static int send_snapshot(struct stream *s, const char *type, const char *resume)
{
	struct cache_snap snap;
	char err[512], head[512];
	int rc, n;

	rc = cache_current(s->r->cf->cache_dir, &snap, !s->payload_none && !s->q, err, sizeof(err));
	if (rc != 0) {
		if (rc < 0)
			log_err("sse: %s", err);
		snprintf(head, sizeof(head),
		         "{\"type\":\"%s\",\"payload\":null,\"message\":\"%s\"}", type,
		         rc == 1 ? "No cached data" : "Error reading cache");
		return event_text(s, type, head);
	}
	snprintf(s->id, sizeof(s->id), "%s", snap.etag);
	if (resume && (strcmp(resume, snap.etag) == 0 || strcmp(resume, snap.id) == 0)) {
		if (snap.fd >= 0)
			close(snap.fd);
		snprintf(head, sizeof(head),
		         "{\"type\":\"%s\",\"payload\":null,\"unchanged\":true}", type);
		return event_text(s, type, head);
	}
	if (s->payload_none) {
		snprintf(head, sizeof(head),
		         "{\"type\":\"%s\",\"payload\":{\"count\":%lld,\"etag\":\"\\\"%s\\\"\","
		         "\"last_updated\":\"%s\"}}",
		         type, snap.count, snap.id, snap.last_updated);
		return event_text(s, type, head);
	}
	n = snprintf(head, sizeof(head), "{\"type\":\"%s\",\"payload\":", type);
	if (s->q) {
		/* Only the rows and fields asked for, from the snapshot's index. */
		if (event_begin(s, type) < 0 || req_write(s->r, head, (size_t)n) < 0)
			return s->gone = 1, -1;
		rc = query_sse_body(s->r, s->q, err, sizeof(err));
		if (rc == -1)
			return s->gone = 1, -1;
		if (rc == -2) {
			/* Nothing of the body went out: the payload is null, with the reason. */
			snprintf(head, sizeof(head), "null,\"message\":\"%.400s\"", err);
			if (req_write(s->r, head, strlen(head)) < 0)
				return s->gone = 1, -1;
		}
		if (req_write(s->r, "}", 1) < 0)
			return s->gone = 1, -1;
		return event_end(s);
	}
	rc = event_begin(s, type);
	if (rc == 0 &&
	    (req_write(s->r, head, (size_t)n) < 0 ||
	     req_copy_body(s->r, snap.fd, 0, snap.size) < 0 || req_write(s->r, "}", 1) < 0))
		rc = s->gone = -1;
	close(snap.fd);
	return rc < 0 ? -1 : event_end(s);
}

/* Turn progress.json into a progress event, if it changed since last time. */
static int send_progress(struct stream *s, char *last, size_t lastlen)
{
	struct progress_view p;
	struct json_object *o;
	char text[1024];
	int rc = 0;

	if (cache_read_file(s->r->cf->cache_dir, CACHE_PROGRESS, text, sizeof(text)) <= 0)
		return 0;
	if (strcmp(text, last) == 0)
		return 0;
	snprintf(last, lastlen, "%s", text);
	if (progress_parse(text, &p) < 0)
		return 0;
	o = json_object_new_object();
	json_object_object_add(o, "type", json_object_new_string("progress"));
	if (p.phase[0])
		json_object_object_add(o, "phase", json_object_new_string(p.phase));
	json_object_object_add(o, "rows", p.rows < 0 ? NULL : json_object_new_int64(p.rows));
	json_object_object_add(o, "bytes", p.bytes < 0 ? NULL : json_object_new_int64(p.bytes));
	/* The file also carries the elapsed time: send only what the client sees change. */
	snprintf(text, sizeof(text), "%s",
	         json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	if (strcmp(text, s->last_progress) != 0) {
		snprintf(s->last_progress, sizeof(s->last_progress), "%s", text);
		rc = event_text(s, "progress", text);
	}
	json_object_put(o);
	return rc;
}

/* After the sync ended: "updated" or "failed" from status.json (status_read's view, as
 * /status sees it). */
static int send_outcome(struct stream *s)
{
	struct status_view v;
	struct json_object *o;
	int rc;

	if (status_read(s->r->cf->cache_dir, 0, &v) < 0)
		v.state = STATUS_NONE, v.error = NULL;
	if (v.state == STATUS_SUCCEEDED) {
		rc = send_snapshot(s, "updated", NULL);
	} else {
		o = json_object_new_object();
		json_object_object_add(o, "type", json_object_new_string("failed"));
		json_object_object_add(
		    o, "error", json_object_new_string(v.error ? v.error : STATUS_KILLED_ERROR));
		rc = event_text(s, "failed",
		                json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
	}
	status_view_free(&v);
	return rc;
}

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

void sse_serve(struct req *r)
{
	const struct conf *cf = r->cf;
	struct stream s;
	const char *resume;
	char hdr[256], err[512], last[1024] = "";
	int slot = -1, watch = 0, counted;
	unsigned long seen = 0;
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)&s;
	double start, beat;

	/* fields and filters (issue 15): a bad one is a 400 before the stream starts. */
	memset(&s, 0, sizeof(s));
	if ((s.q = query_sse_parse(r, err, sizeof(err))) == NULL && err[0]) {
		counted = 0;
		req_error(r, 400, NULL, err);
		goto out;
	}
	/* A stream holds a thread: only within this process's budget for long work (threads
	 * stay free for short requests), and within sse_max_streams across processes. */
	counted = req_long_begin();
	if (!counted || (slot = take_slot(cf)) < 0) {
		req_error(r, 503, "Retry-After: 5\r\n", "Too many open streams");
		goto out;
	}
	/* progress.json keeps the last run's final phase (it names its pid and start time):
	 * with no sync running now, that is the baseline, not news. */
	if (!cache_sync_running(cf->cache_dir) &&
	    cache_read_file(cf->cache_dir, CACHE_PROGRESS, last, sizeof(last)) < 0)
		last[0] = '\0';
	if (req_flag(r, Q_REFRESH) && !r->head) {
		switch (spawn_sync(cf, err, sizeof(err))) {
		case SPAWN_STARTED:
		case SPAWN_RUNNING:
			watch = 1;
			break;
		default:
			log_err("sse refresh: %s", err);
			req_error(r, 500, NULL, "Could not start the refresh");
			goto out;
		}
	}
	s.r = r;
	s.payload_none = r->qset[Q_PAYLOAD] && strcmp(r->q[Q_PAYLOAD], "none") == 0;
	resume = req_param(r, "HTTP_LAST_EVENT_ID");
	if (resume == NULL && r->qset[Q_LAST_EVENT_ID])
		resume = r->q[Q_LAST_EVENT_ID];

	snprintf(hdr, sizeof(hdr),
	         "Status: 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
	         "X-Accel-Buffering: no\r\n\r\nretry: %d\n\n",
	         cf->sse_retry_ms);
	if (req_write(r, hdr, strlen(hdr)) < 0 || r->head)
		goto out;
	if (send_snapshot(&s, "cached", resume) < 0)
		goto out;

	watch |= cache_sync_running(cf->cache_dir);
	if (watch)
		watch_start(cf->cache_dir);
	/* Streams opened together would beat together: a burst of writes every period that
	 * every other request waits behind. A random phase per stream spreads them out. */
	start = now_s();
	beat = start - (double)rand_r(&seed) / RAND_MAX * 0.5 * cf->sse_heartbeat_s;
	while (watch && !s.gone) {
		int running = cache_sync_running(cf->cache_dir);
		double next_beat;

		if (send_progress(&s, last, sizeof(last)) < 0)
			break;
		if (!running) {
			send_outcome(&s);
			break;
		}
		if (now_s() - start > cf->sync_timeout + 30) {
			event_text(&s, "failed",
			           "{\"type\":\"failed\",\"error\":\"sync_timeout passed\"}");
			break;
		}
		if (now_s() - beat >= cf->sse_heartbeat_s) {
			beat = now_s();
			if (req_write(r, ": ping\n\n", 8) < 0 || req_flush(r) < 0)
				s.gone = 1;
		}
		next_beat = beat + cf->sse_heartbeat_s - now_s();
		watch_wait(&seen, next_beat > 0 ? (int)(next_beat * 1000) + 1 : 1,
		           SSE_RECHECK_MS * 3 / 4 + rand_r(&seed) % (SSE_RECHECK_MS / 2));
	}
	if (!s.gone)
		event_text(&s, "done", "{\"type\":\"done\"}");
out:
	query_sse_free(s.q);
	if (slot >= 0)
		close(slot);
	if (counted)
		req_long_end();
}

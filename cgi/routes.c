#include "routes.h"

#include "../common/cache.h"
#include "../common/log.h"
#include "../common/status.h"
#include "auth.h"
#include "limit.h"
#include "query.h"
#include "spawn.h"
#include "sse.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void health(struct req *r)
{
	char body[96], iso[32];

	cache_iso8601(time(NULL), iso, sizeof(iso));
	snprintf(body, sizeof(body), "{\"status\":\"healthy\",\"timestamp\":\"%s\"}", iso);
	req_json(r, 200, NULL, body);
}

/*
 * last_sync from status.json, as JSON text (status_parse: a run that ended without a word
 * was killed). The parse is kept while the file (inode, size, mtime) stays the same: /status
 * is polled.
 */
static pthread_mutex_t ls_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	ino_t ino;
	off_t size;
	struct timespec mtime;
	struct status_view view[2]; /* [running]: with no sync holding the lock, or one */
	int parsed;
} ls;

/* last_sync as JSON text, in a new string (NULL if out of memory). */
static char *last_sync(const struct conf *cf, int running)
{
	char path[CONF_PATH + 32];
	struct stat st;
	char *out = NULL;
	int i;

	snprintf(path, sizeof(path), "%s/%s", cf->cache_dir, CACHE_STATUS);
	if (stat(path, &st) < 0)
		memset(&st, 0, sizeof(st));
	pthread_mutex_lock(&ls_mu);
	if (!ls.parsed || st.st_ino != ls.ino || st.st_size != ls.size ||
	    st.st_mtim.tv_sec != ls.mtime.tv_sec || st.st_mtim.tv_nsec != ls.mtime.tv_nsec) {
		char *text = cache_read_alloc(cf->cache_dir, CACHE_STATUS, CACHE_STATUS_MAX, NULL);

		if (text == NULL && errno != ENOENT)
			log_err("%s/%s: %s", cf->cache_dir, CACHE_STATUS, strerror(errno));
		ls.parsed = 1;
		for (i = 0; i < 2; i++) {
			status_view_free(&ls.view[i]);
			if (status_parse(text, i, &ls.view[i]) < 0)
				ls.parsed = 0;
		}
		free(text);
		ls.ino = st.st_ino;
		ls.size = st.st_size;
		ls.mtime = st.st_mtim;
	}
	if (ls.view[running != 0].last_sync)
		out = strdup(ls.view[running != 0].last_sync);
	pthread_mutex_unlock(&ls_mu);
	return out;
}

/*
 * Whether nginx can send the snapshot: it is not this process's user, and reaches cache_dir
 * through the group (or others). Each folder on the way must let it in, the file be readable.
 * Returns 1, or 0 with what stops it in why.
 */
static int nginx_can_read(const char *cache_dir, const char *id, char *why, size_t len)
{
	char path[4400];
	const char *const parts[] = {"", "/snapshots", "/snapshots/", "/snapshots/"};
	struct stat st;
	size_t i;

	for (i = 0; i < 4; i++) {
		int file = i == 3;
		snprintf(path, sizeof(path), "%s%s%s%s%s", cache_dir, parts[i], i >= 2 ? id : "",
		         file ? "/" : "", file ? CACHE_DATA : "");
		if (stat(path, &st) < 0) {
			snprintf(why, len, "%.400s: %s", path, strerror(errno));
			return 0;
		}
		if (!(st.st_mode & (file ? S_IRGRP | S_IROTH : S_IXGRP | S_IXOTH))) {
			snprintf(why, len,
			         "%.400s (mode %04o): nginx, which reaches it through the group, "
			         "cannot %s it",
			         path, (unsigned)(st.st_mode & 07777), file ? "read" : "enter");
			return 0;
		}
	}
	return 1;
}

static void status(struct req *r)
{
	struct cache_snap s;
	struct json_object *why_json = NULL;
	char err[512], *body, *ls_text, snap[2560], why[512] = "";
	size_t blen;
	int rc, readable = 0, running = cache_sync_running(r->cf->cache_dir);

	rc = cache_current(r->cf->cache_dir, &s, 0, err, sizeof(err));
	if (rc < 0) {
		log_err("status: %s", err);
		snprintf(why, sizeof(why), "%s", err);
	}
	if (rc == 0)
		readable = nginx_can_read(r->cf->cache_dir, s.id, why, sizeof(why));
	if (why[0])
		why_json = json_object_new_string(why);
	/* The body is built below; json-c must not write / as \/ (a longer text). */
	ls_text = last_sync(r->cf, running);
	if (rc == 0)
		snprintf(snap, sizeof(snap),
		         "\"cache_exists\":true,\"cache_readable\":%s,%s%s%s\"count\":%lld,"
		         "\"size_bytes\":%lld,\"last_updated\":\"%s\",\"age_seconds\":%lld,"
		         "\"etag\":\"\\\"%s\\\"\"",
		         readable ? "true" : "false", why_json ? "\"cache_error\":" : "",
		         why_json ? json_object_to_json_string_ext(why_json,
		                                                   JSON_C_TO_STRING_NOSLASHESCAPE)
		                  : "",
		         why_json ? "," : "", s.count, s.size, s.last_updated,
		         (long long)(time(NULL) - s.mtime), s.id);
	else
		/* rc 1: no snapshot yet; rc < 0: the current one cannot be read. */
		snprintf(
		    snap, sizeof(snap),
		    "\"cache_exists\":%s,\"cache_readable\":false,%s%s%s\"count\":0,"
		    "\"size_bytes\":0,\"last_updated\":null,\"age_seconds\":null,\"etag\":null",
		    rc < 0 ? "true" : "false", why_json ? "\"cache_error\":" : "",
		    why_json
		        ? json_object_to_json_string_ext(why_json, JSON_C_TO_STRING_NOSLASHESCAPE)
		        : "",
		    why_json ? "," : "");
	json_object_put(why_json);
	/* last_sync has no fixed size (an error of up to 1 KiB, escaped): neither has the body. */
	blen = strlen(snap) + (ls_text ? strlen(ls_text) : 4) + 96;
	if ((body = malloc(blen)) == NULL) {
		free(ls_text);
		req_error(r, 500, NULL, "Out of memory");
		return;
	}
	snprintf(body, blen, "{\"status\":\"ok\",%s,\"update_in_progress\":%s,\"last_sync\":%s}",
	         snap, running ? "true" : "false", ls_text ? ls_text : "null");
	req_json(r, 200, NULL, body);
	free(body);
	free(ls_text);
}

/* Start a background sync. Returns the _info text, or NULL if it could not start. */
static const char *trigger(struct req *r)
{
	char err[512];

	switch (spawn_sync(r->cf, err, sizeof(err))) {
	case SPAWN_STARTED:
		return "Background refresh triggered";
	case SPAWN_RUNNING:
		return "Refresh already in progress";
	default:
		log_err("refresh: %s", err);
		return NULL;
	}
}

/*
 * Whether the snapshot's data file is a regular file reached without a symlink, before
 * nginx is told to send it. nginx's `disable_symlinks` in the internal location holds the
 * same line should the file be swapped between this check and nginx's open.
 */
static int snapshot_sendable(const char *cache_dir, const char *id, char *err, size_t errlen)
{
	char rel[128];
	struct stat st;
	int fd, ok;

	snprintf(rel, sizeof(rel), "snapshots/%s/%s", id, CACHE_DATA);
	if ((fd = cache_open_beneath(cache_dir, rel, O_RDONLY)) < 0) {
		errf(err, errlen, "%s/%s: %s", cache_dir, rel,
		     errno == ELOOP || errno == EXDEV || errno == ENOTDIR
		         ? "a symbolic link or a path out of cache_dir: refused"
		         : strerror(errno));
		return 0;
	}
	ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
	if (!ok)
		errf(err, errlen, "%s/%s: not a regular file: refused", cache_dir, rel);
	close(fd);
	return ok;
}

static void fetch_data(struct req *r)
{
	struct cache_snap s;
	const char *info = NULL;
	char err[512], hdr[512], pre[96], lm[64];
	struct tm tm;
	int rc;

	if (req_flag(r, Q_STREAM)) {
		sse_serve(r);
		return;
	}
	/* Pages, fields, filters, formats, changes (issue 15): answered here from the snapshot's
	 * index. Without them, the plain path below is unchanged. */
	if (query_wanted(r)) {
		query_serve(r, req_flag(r, Q_REFRESH) ? trigger : NULL);
		return;
	}
	/* HEAD has no side effects: it never starts a sync, and gets the plain answer's head. */
	if (req_flag(r, Q_REFRESH) && !r->head && (info = trigger(r)) == NULL) {
		req_error(r, 500, NULL, "Could not start the refresh");
		return;
	}
	/* The fast path needs only the snapshot's name: nginx sends the file itself (sendfile,
	 * ETag, 304, gzip_static). With refresh=true the body carries _info: streamed here. */
	rc = info == NULL ? cache_current_id(r->cf->cache_dir, s.id, sizeof(s.id), err, sizeof(err))
	                  : cache_current(r->cf->cache_dir, &s, 1, err, sizeof(err));
	if (rc == 1) {
		req_error(r, 503, NULL, "No cached data");
		return;
	}
	if (rc < 0) {
		log_err("fetch-data: %s", err);
		req_error(r, 500, NULL, "Error reading cache");
		return;
	}
	if (info == NULL && !snapshot_sendable(r->cf->cache_dir, s.id, err, sizeof(err))) {
		log_err("fetch-data: %s", err);
		req_error(r, 500, NULL, "Error reading cache");
		return;
	}
	if (info == NULL) {
		req_header(r,
		           "Status: 200 OK\r\nX-Accel-Redirect: /_pmacache/snapshots/%s/%s\r\n\r\n",
		           s.id, CACHE_DATA);
		return;
	}
	gmtime_r(&s.mtime, &tm);
	strftime(lm, sizeof(lm), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (req_etag_match(req_param(r, "HTTP_IF_NONE_MATCH"), s.etag)) {
		snprintf(hdr, sizeof(hdr), "ETag: %s\r\nLast-Modified: %s\r\n", s.etag, lm);
		req_header(r, "Status: 304 Not Modified\r\n%s\r\n", hdr);
		close(s.fd);
		return;
	}
	/* The body is long work. nginx buffers it (to disk if need be), so this thread is
	 * back within disk speed; still, no more of them than the budget allows. The refresh
	 * itself has started either way. */
	if (!req_long_begin()) {
		close(s.fd);
		req_error(r, 503, "Retry-After: 1\r\n", "Too busy: retry");
		return;
	}
	snprintf(pre, sizeof(pre), "{\"_info\":\"%s\",", info);
	req_header(r,
	           "Status: 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-cache\r\n"
	           "Last-Modified: %s\r\nContent-Length: %lld\r\n\r\n",
	           lm, (long long)strlen(pre) + s.size - 1);
	if (!r->head && req_write(r, pre, strlen(pre)) == 0)
		req_copy_body(r, s.fd, 1, s.size - 1);
	close(s.fd);
	req_long_end();
}

static void refresh(struct req *r)
{
	const char *info = trigger(r);

	if (info == NULL)
		req_error(r, 500, NULL, "Could not start the refresh");
	else if (strcmp(info, "Background refresh triggered") == 0)
		req_json(r, 202, NULL, "{\"status\":\"triggered\"}");
	else
		req_json(r, 202, NULL, "{\"status\":\"already in progress\"}");
}

static const struct route {
	const char *path;
	const char *method; /* GET routes also answer HEAD */
	void (*handler)(struct req *);
	int auth;
} routes[] = {
    {"/health", "GET", health, 0},
    {"/status", "GET", status, 1},
    {"/fetch-data", "GET", fetch_data, 1},
    {"/refresh", "POST", refresh, 1},
};

void routes_dispatch(struct req *r)
{
	const struct route *rt = NULL;
	size_t i;

	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (strcmp(r->path, routes[i].path) == 0)
			rt = &routes[i];
	if (rt == NULL) {
		req_error(r, 404, NULL, "Not found");
		return;
	}
	if (strcmp(r->method, rt->method) != 0 && !(r->head && strcmp(rt->method, "GET") == 0)) {
		req_error(r, 405,
		          strcmp(rt->method, "GET") == 0 ? "Allow: GET, HEAD\r\n"
		                                         : "Allow: POST\r\n",
		          "Method not allowed");
		return;
	}
	if (rt->auth) {
		/* The limit first: an address that used up its bad keys learns nothing from any
		 * key, the right one included, until it may try again. A right key is never
		 * counted. */
		const char *addr = req_param(r, "REMOTE_ADDR");
		int wait = limit_blocked(addr);
		if (wait > 0) {
			char extra[64];
			snprintf(extra, sizeof(extra), "Retry-After: %d\r\n", wait);
			req_error(r, 429, extra, "Too many requests from this client: retry later");
			return;
		}
		if (!auth_check(r->cf->api_keys_file, req_param(r, "HTTP_X_API_KEY"))) {
			limit_bad(addr);
			req_error(r, 401, NULL, "Unauthorized");
			return;
		}
	}
	rt->handler(r);
}

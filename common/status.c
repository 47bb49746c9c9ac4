#include "status.h"

#include "cache.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void status_run_begin(struct status_run *run)
{
	clock_gettime(CLOCK_MONOTONIC, &run->t0);
	cache_iso8601(time(NULL), run->started_at, sizeof(run->started_at));
	run->pid = getpid();
}

double status_run_elapsed(const struct status_run *run)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - run->t0.tv_sec) +
	       (double)(now.tv_nsec - run->t0.tv_nsec) / 1e9;
}

/* The longest m <= n such that s[0..m) does not end inside a UTF-8 character. */
static size_t utf8_whole(const char *s, size_t n)
{
	size_t i = n, k = 0, need;
	unsigned char c;

	while (i > 0 && k < 3 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
		i--, k++;
	if (i == 0)
		return n;
	c = (unsigned char)s[i - 1];
	need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
	return k + 1 >= need ? n : i - 1;
}

/* s cut to at most max bytes on a character boundary ("..." marks a cut), in buf (max + 1). */
static const char *cut_utf8(const char *s, char *buf, size_t max)
{
	size_t n = strlen(s);

	if (n > max) {
		n = utf8_whole(s, max - 3);
		memcpy(buf, s, n);
		memcpy(buf + n, "...", 4);
	} else {
		n = utf8_whole(s, n); /* a message cut by snprintf may end mid-character */
		memcpy(buf, s, n);
		buf[n] = '\0';
	}
	return buf;
}

static struct json_object *num_or_null(long long v)
{
	return v < 0 ? NULL : json_object_new_int64(v);
}

/* A duration in seconds, printed with milliseconds. */
static struct json_object *seconds(double s)
{
	char text[32];

	snprintf(text, sizeof(text), "%.3f", s);
	return json_object_new_double_s(s, text);
}

static const char *const result_names[] = {"success", "failed", "stopped"};

/* o as compact JSON (slashes as they are), in a new string. */
static char *json_text(struct json_object *o)
{
	char *s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	                                                       JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return s;
}

char *status_text_result(const struct status_run *run, int finished, enum status_result result,
                         const char *error, long long rows)
{
	struct json_object *o = json_object_new_object();
	char iso[32], cut[STATUS_ERROR_MAX + 1];

	json_object_object_add(o, "started_at", json_object_new_string(run->started_at));
	if (finished) {
		cache_iso8601(time(NULL), iso, sizeof(iso));
		json_object_object_add(o, "finished_at", json_object_new_string(iso));
		json_object_object_add(o, "result", json_object_new_string(result_names[result]));
		json_object_object_add(o, "duration_s", seconds(status_run_elapsed(run)));
	} else {
		json_object_object_add(o, "finished_at", NULL);
		json_object_object_add(o, "result", NULL);
		json_object_object_add(o, "duration_s", NULL);
	}
	json_object_object_add(
	    o, "error",
	    error ? json_object_new_string(cut_utf8(error, cut, STATUS_ERROR_MAX)) : NULL);
	json_object_object_add(o, "rows", num_or_null(rows));
	json_object_object_add(o, "pid", json_object_new_int((int)run->pid));
	return json_text(o);
}

char *status_text_progress(const struct status_run *run, const char *phase, long long rows,
                           long long bytes)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "phase", json_object_new_string(phase));
	json_object_object_add(o, "rows", num_or_null(rows));
	json_object_object_add(o, "bytes", num_or_null(bytes));
	json_object_object_add(o, "pid", json_object_new_int((int)run->pid));
	json_object_object_add(o, "started_at", json_object_new_string(run->started_at));
	json_object_object_add(o, "elapsed_s", seconds(status_run_elapsed(run)));
	return json_text(o);
}

/*
 * Replace cache_dir/name with text, atomically (temp file, rename). status.json is durable
 * (fsynced, as cache_write_file does): it is the record of the run. progress.json is not: it
 * only says where a running sync is, is rewritten at every phase, and its fsyncs would cost
 * the sync more than the phase it reports.
 */
static int write_text(const char *cache_dir, const char *name, char *text, int durable, char *err,
                      size_t errlen)
{
	char tmp[4096], dst[4096];
	int rc = -1, fd;

	if (text == NULL) {
		errf(err, errlen, "%s: out of memory", name);
		return -1;
	}
	if (durable) {
		rc = cache_write_file(cache_dir, name, text, strlen(text), err, errlen);
		free(text);
		return rc;
	}
	snprintf(tmp, sizeof(tmp), "%s/tmp.%s.XXXXXX", cache_dir, name);
	snprintf(dst, sizeof(dst), "%s/%s", cache_dir, name);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		errf(err, errlen, "%s: %s", tmp, strerror(errno));
		free(text);
		return -1;
	}
	if (cache_write_all(fd, text, strlen(text), -1) < 0 || fchmod(fd, 0640) < 0) {
		errf(err, errlen, "write %s: %s", tmp, strerror(errno));
		close(fd);
	} else if (close(fd) < 0) {
		errf(err, errlen, "close %s: %s", tmp, strerror(errno));
	} else if (rename(tmp, dst) < 0) {
		errf(err, errlen, "rename %s: %s", dst, strerror(errno));
	} else {
		rc = 0;
	}
	if (rc < 0)
		unlink(tmp);
	free(text);
	return rc;
}

int status_write_running(const char *cache_dir, const struct status_run *run, char *err,
                         size_t errlen)
{
	return write_text(cache_dir, CACHE_STATUS,
	                  status_text_result(run, 0, RESULT_SUCCESS, NULL, -1), 1, err, errlen);
}

int status_write_result(const char *cache_dir, const struct status_run *run,
                        enum status_result result, const char *error, long long rows, char *err,
                        size_t errlen)
{
	return write_text(cache_dir, CACHE_STATUS, status_text_result(run, 1, result, error, rows),
	                  1, err, errlen);
}

int status_write_progress(const char *cache_dir, const struct status_run *run, const char *phase,
                          long long rows, long long bytes, char *err, size_t errlen)
{
	return write_text(cache_dir, CACHE_PROGRESS, status_text_progress(run, phase, rows, bytes),
	                  0, err, errlen);
}

/* The state of a parsed record (st NULL: none). */
static enum status_state state_of(struct json_object *st, int running)
{
	struct json_object *v;
	const char *r;

	if (st == NULL || !json_object_is_type(st, json_type_object))
		return STATUS_NONE;
	if (!json_object_object_get_ex(st, "result", &v) || v == NULL) {
		/* No result: under way, or gone without a word. */
		if (!json_object_object_get_ex(st, "started_at", &v) || v == NULL)
			return STATUS_NONE;
		return running ? STATUS_RUNNING : STATUS_KILLED;
	}
	r = json_object_get_string(v);
	if (strcmp(r, "success") == 0)
		return STATUS_SUCCEEDED;
	if (strcmp(r, "stopped") == 0)
		return STATUS_STOPPED;
	return STATUS_FAILED;
}

int status_parse(const char *text, int running, struct status_view *v)
{
	static const char *const keys[] = {"started_at", "finished_at", "result",
	                                   "error",      "rows",        "duration_s"};
	struct json_object *st = text ? json_tokener_parse(text) : NULL, *o, *x;
	const char *error = NULL;
	size_t i;

	memset(v, 0, sizeof(*v));
	v->state = state_of(st, running);
	if ((o = json_object_new_object()) == NULL) {
		json_object_put(st);
		return -1;
	}
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		x = NULL;
		if (v->state != STATUS_NONE && json_object_object_get_ex(st, keys[i], &x))
			x = json_object_get(x);
		json_object_object_add(o, keys[i], x);
	}
	switch (v->state) {
	case STATUS_KILLED:
		json_object_object_add(o, "result", json_object_new_string("failed"));
		json_object_object_add(o, "error", json_object_new_string(STATUS_KILLED_ERROR));
		break;
	case STATUS_STOPPED: /* clients know two results; the error says it was stopped */
		json_object_object_add(o, "result", json_object_new_string("failed"));
		break;
	default:
		break;
	}
	if (v->state != STATUS_SUCCEEDED && v->state != STATUS_RUNNING &&
	    json_object_object_get_ex(o, "error", &x) && x != NULL)
		error = json_object_get_string(x);
	v->error = error ? strdup(error) : NULL;
	v->last_sync = json_text(o);
	json_object_put(st);
	if (v->last_sync == NULL || (error && v->error == NULL)) {
		status_view_free(v);
		return -1;
	}
	return 0;
}

int status_read(const char *cache_dir, int running, struct status_view *v)
{
	char *text;
	int rc;

	/* The sync keeps the file small (its error is cut); the limit guards the reader. */
	text = cache_read_alloc(cache_dir, CACHE_STATUS, CACHE_STATUS_MAX, NULL);
	if (text == NULL && errno != ENOENT)
		log_err("%s/%s: %s", cache_dir, CACHE_STATUS, strerror(errno));
	rc = status_parse(text, running, v);
	free(text);
	return rc;
}

void status_view_free(struct status_view *v)
{
	free(v->last_sync);
	free(v->error);
	v->last_sync = v->error = NULL;
}

const char *status_state_name(enum status_state s)
{
	static const char *const names[] = {"none",   "running", "succeeded",
	                                    "failed", "stopped", "killed"};

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

int progress_parse(const char *text, struct progress_view *p)
{
	struct json_object *o = text ? json_tokener_parse(text) : NULL, *v;
	int ok = o && json_object_is_type(o, json_type_object);

	memset(p, 0, sizeof(*p));
	p->rows = p->bytes = -1;
	if (ok) {
		if (json_object_object_get_ex(o, "phase", &v) && v)
			snprintf(p->phase, sizeof(p->phase), "%s", json_object_get_string(v));
		if (json_object_object_get_ex(o, "rows", &v) && v)
			p->rows = json_object_get_int64(v);
		if (json_object_object_get_ex(o, "bytes", &v) && v)
			p->bytes = json_object_get_int64(v);
	}
	json_object_put(o);
	return ok ? 0 : -1;
}

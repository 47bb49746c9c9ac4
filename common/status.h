/*
 * status: the sync's status and progress protocol, in one place. The sync writes
 * cache_dir/status.json (its last result) and cache_dir/progress.json (its phase) through the
 * writers here; /status and the SSE stream read them through status_parse/progress_parse, so
 * both answer from the same view: running, succeeded, failed, stopped, or killed.
 *
 * status.json: {"started_at","finished_at","result","error","rows","duration_s","pid"}, with
 * result, finished_at and duration_s null while the sync runs; result is "success", "failed"
 * or "stopped" (sync_timeout, SIGTERM or SIGINT) once it ends. /status reports "stopped" as
 * "failed" (its error says it was stopped).
 * progress.json: {"phase","rows","bytes","pid","started_at","elapsed_s"}.
 */
#ifndef PMACACHE_STATUS_H
#define PMACACHE_STATUS_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

/* The error kept in status.json: cut, before encoding, on a UTF-8 character boundary. */
#define STATUS_ERROR_MAX 1024
/* What a reader says of a sync that ended without writing its result. */
#define STATUS_KILLED_ERROR "the sync stopped without finishing (killed?)"

/* One sync run: when it started (for started_at and the durations) and its pid. */
struct status_run {
	char started_at[32]; /* ISO 8601, UTC */
	struct timespec t0;  /* CLOCK_MONOTONIC */
	pid_t pid;
};

enum status_result { RESULT_SUCCESS, RESULT_FAILED, RESULT_STOPPED };

/* Start a run: now, this process. */
void status_run_begin(struct status_run *run);
/* Seconds since the run began. */
double status_run_elapsed(const struct status_run *run);

/* status.json of a run that is under way (no result yet). Returns 0, or -1 with err. */
int status_write_running(const char *cache_dir, const struct status_run *run, char *err,
                         size_t errlen);
/* status.json of a run that ended; error may be NULL, rows < 0 is null. Returns 0 or -1. */
int status_write_result(const char *cache_dir, const struct status_run *run,
                        enum status_result result, const char *error, long long rows, char *err,
                        size_t errlen);
/* progress.json: the phase reached; rows, bytes < 0 are null. Returns 0 or -1. */
int status_write_progress(const char *cache_dir, const struct status_run *run, const char *phase,
                          long long rows, long long bytes, char *err, size_t errlen);

/* The texts the writers produce (the caller frees them): for tests and the writers. */
char *status_text_result(const struct status_run *run, int finished, enum status_result result,
                         const char *error, long long rows);
char *status_text_progress(const struct status_run *run, const char *phase, long long rows,
                           long long bytes);

/* The state of the last sync as a reader sees it. */
enum status_state {
	STATUS_NONE,      /* no record (no sync yet, or status.json unreadable) */
	STATUS_RUNNING,   /* started, no result, a sync holds the lock */
	STATUS_SUCCEEDED, /* result "success" */
	STATUS_FAILED,    /* result "failed" */
	STATUS_STOPPED,   /* result "stopped": sync_timeout, SIGTERM or SIGINT */
	STATUS_KILLED,    /* started, no result, and no sync holds the lock: it died */
};

struct status_view {
	enum status_state state;
	/* last_sync as /status reports it, compact JSON (NULL only when out of memory):
	 * started_at, finished_at, result ("success" or "failed"), error, rows, duration_s. */
	char *last_sync;
	/* The error to show (recorded, or STATUS_KILLED_ERROR); NULL on success or none. */
	char *error;
};

/*
 * Parse status.json's text (NULL: no file) given whether a sync holds the lock now. A record
 * with a result keeps its state whether or not a new sync has started since.
 * Returns 0, or -1 when out of memory. Free with status_view_free.
 */
int status_parse(const char *text, int running, struct status_view *v);
/* status_parse of cache_dir/status.json (a missing or unreadable file is no record). */
int status_read(const char *cache_dir, int running, struct status_view *v);
void status_view_free(struct status_view *v);
/* The state's name, for logs and tests. */
const char *status_state_name(enum status_state s);

/* progress.json as a client sees it: the phase, rows and bytes (-1 when null). */
struct progress_view {
	char phase[32];
	long long rows;
	long long bytes;
};

/* Parse progress.json's text. Returns 0, or -1 if it is not a progress record. */
int progress_parse(const char *text, struct progress_view *p);

#endif

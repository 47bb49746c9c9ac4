#include "../../common/cache.h"
#include "../../common/status.h"
#include "t.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The text of key in the JSON object text (a string, "null", or a number's text). */
static const char *field(const char *text, const char *key)
{
	static char out[2048];
	struct json_object *o = json_tokener_parse(text), *v;

	snprintf(out, sizeof(out), "(missing)");
	if (o && json_object_object_get_ex(o, key, &v))
		snprintf(out, sizeof(out), "%s", v ? json_object_get_string(v) : "null");
	json_object_put(o);
	return out;
}

/* What the writer wrote, as the reader sees it with or without a sync holding the lock. */
static void round_trip(void)
{
	struct status_run run;
	struct status_view v;
	char *text;

	status_run_begin(&run);
	CHECK(run.pid == getpid() && strlen(run.started_at) == 20, "run: %s", run.started_at);

	/* Under way: running while the lock is held, killed once it is not. */
	text = status_text_result(&run, 0, RESULT_SUCCESS, NULL, -1);
	CHECK(strcmp(field(text, "result"), "null") == 0 &&
	          strcmp(field(text, "started_at"), run.started_at) == 0 &&
	          atoi(field(text, "pid")) == (int)getpid(),
	      "running record: %s", text);
	CHECK(status_parse(text, 1, &v) == 0 && v.state == STATUS_RUNNING && v.error == NULL,
	      "running: %s", status_state_name(v.state));
	CHECK(strcmp(field(v.last_sync, "result"), "null") == 0 &&
	          strcmp(field(v.last_sync, "pid"), "(missing)") == 0,
	      "running last_sync: %s", v.last_sync);
	status_view_free(&v);
	CHECK(status_parse(text, 0, &v) == 0 && v.state == STATUS_KILLED,
	      "gone without a result: %s", status_state_name(v.state));
	CHECK(v.error && strcmp(v.error, STATUS_KILLED_ERROR) == 0 &&
	          strcmp(field(v.last_sync, "result"), "failed") == 0 &&
	          strcmp(field(v.last_sync, "error"), STATUS_KILLED_ERROR) == 0 &&
	          strcmp(field(v.last_sync, "started_at"), run.started_at) == 0,
	      "killed last_sync: %s", v.last_sync);
	status_view_free(&v);
	free(text);

	/* Succeeded: the same whether or not a new sync has taken the lock since. */
	text = status_text_result(&run, 1, RESULT_SUCCESS, NULL, 42);
	for (int running = 0; running < 2; running++) {
		CHECK(status_parse(text, running, &v) == 0 && v.state == STATUS_SUCCEEDED &&
		          v.error == NULL,
		      "success: %s", status_state_name(v.state));
		CHECK(strcmp(field(v.last_sync, "result"), "success") == 0 &&
		          strcmp(field(v.last_sync, "rows"), "42") == 0 &&
		          strcmp(field(v.last_sync, "error"), "null") == 0 &&
		          strcmp(field(v.last_sync, "finished_at"), "null") != 0 &&
		          strcmp(field(v.last_sync, "duration_s"), "null") != 0,
		      "success last_sync: %s", v.last_sync);
		status_view_free(&v);
	}
	free(text);

	/* Failed, with its error. */
	text = status_text_result(&run, 1, RESULT_FAILED, "phpMyAdmin said no", -1);
	CHECK(status_parse(text, 0, &v) == 0 && v.state == STATUS_FAILED && v.error &&
	          strcmp(v.error, "phpMyAdmin said no") == 0,
	      "failed: %s %s", status_state_name(v.state), v.error ? v.error : "(null)");
	CHECK(strcmp(field(v.last_sync, "result"), "failed") == 0 &&
	          strcmp(field(v.last_sync, "rows"), "null") == 0,
	      "failed last_sync: %s", v.last_sync);
	status_view_free(&v);
	free(text);

	/* Stopped: recorded as such, reported to clients as failed with its reason. */
	text = status_text_result(&run, 1, RESULT_STOPPED, "stopped by a signal: convert", -1);
	CHECK(strcmp(field(text, "result"), "stopped") == 0, "stopped record: %s", text);
	CHECK(status_parse(text, 0, &v) == 0 && v.state == STATUS_STOPPED && v.error &&
	          strcmp(v.error, "stopped by a signal: convert") == 0,
	      "stopped: %s", status_state_name(v.state));
	CHECK(strcmp(field(v.last_sync, "result"), "failed") == 0 &&
	          strcmp(field(v.last_sync, "error"), "stopped by a signal: convert") == 0,
	      "stopped last_sync: %s", v.last_sync);
	status_view_free(&v);
	free(text);
}

/* Errors are cut to STATUS_ERROR_MAX bytes on a character boundary; slashes stay plain. */
static void error_cut(void)
{
	struct status_run run;
	char *err = malloc(3000), *text;
	const char *e;
	size_t i;

	status_run_begin(&run);
	for (i = 0; i + 2 < 3000; i += 2)
		memcpy(err + i, "\xc3\xa9", 2); /* é */
	err[i] = '\0';
	text = status_text_result(&run, 1, RESULT_FAILED, err, -1);
	e = field(text, "error");
	CHECK(strlen(e) <= STATUS_ERROR_MAX && strlen(e) > STATUS_ERROR_MAX - 8 &&
	          strcmp(e + strlen(e) - 3, "...") == 0,
	      "cut error: %zu bytes", strlen(e));
	CHECK((strlen(e) - 3) % 2 == 0, "cut on a character boundary: %zu bytes", strlen(e));
	free(text);
	text = status_text_result(&run, 1, RESULT_FAILED, "a/b: no", -1);
	CHECK(strstr(text, "\"a/b: no\"") != NULL, "no escaped slash: %s", text);
	free(text);
	free(err);
}

/* What no writer wrote: no file, junk, a record without started_at. */
static void odd_records(void)
{
	struct status_view v;

	CHECK(status_parse(NULL, 0, &v) == 0 && v.state == STATUS_NONE && v.error == NULL &&
	          strcmp(v.last_sync, "{\"started_at\":null,\"finished_at\":null,\"result\":null,"
	                              "\"error\":null,\"rows\":null,\"duration_s\":null}") == 0,
	      "no file: %s", v.last_sync);
	status_view_free(&v);
	CHECK(status_parse("{not json", 0, &v) == 0 && v.state == STATUS_NONE, "junk: %s",
	      status_state_name(v.state));
	status_view_free(&v);
	CHECK(status_parse("[1,2]", 0, &v) == 0 && v.state == STATUS_NONE, "an array: %s",
	      status_state_name(v.state));
	status_view_free(&v);
	CHECK(status_parse("{\"result\":null}", 0, &v) == 0 && v.state == STATUS_NONE,
	      "no started_at: %s", status_state_name(v.state));
	status_view_free(&v);
	CHECK(status_parse("{\"started_at\":\"x\",\"result\":\"other\"}", 0, &v) == 0 &&
	          v.state == STATUS_FAILED,
	      "unknown result: %s", status_state_name(v.state));
	status_view_free(&v);
}

/* The files: written atomically into cache_dir, read back through status_read. */
static void files(void)
{
	struct status_run run;
	struct status_view v;
	struct progress_view p;
	char dir[] = "/tmp/pmacache-status.XXXXXX", err[256], text[1024];

	if (mkdtemp(dir) == NULL) {
		CHECK(0, "mkdtemp");
		return;
	}
	status_run_begin(&run);
	CHECK(status_read(dir, 0, &v) == 0 && v.state == STATUS_NONE, "no status.json: %s",
	      status_state_name(v.state));
	status_view_free(&v);
	CHECK(status_write_running(dir, &run, err, sizeof(err)) == 0, "write running: %s", err);
	CHECK(status_read(dir, 1, &v) == 0 && v.state == STATUS_RUNNING, "read running: %s",
	      status_state_name(v.state));
	status_view_free(&v);
	CHECK(status_write_result(dir, &run, RESULT_STOPPED, "sync_timeout (1 s) passed", -1, err,
	                          sizeof(err)) == 0,
	      "write stopped: %s", err);
	CHECK(status_read(dir, 0, &v) == 0 && v.state == STATUS_STOPPED && v.error &&
	          strcmp(v.error, "sync_timeout (1 s) passed") == 0,
	      "read stopped: %s", status_state_name(v.state));
	status_view_free(&v);

	CHECK(status_write_progress(dir, &run, "convert", 1000, 123456789012LL, err, sizeof(err)) ==
	          0,
	      "write progress: %s", err);
	CHECK(cache_read_file(dir, CACHE_PROGRESS, text, sizeof(text)) > 0 &&
	          strcmp(field(text, "started_at"), run.started_at) == 0 &&
	          strcmp(field(text, "elapsed_s"), "(missing)") != 0,
	      "progress.json: %s", text);
	CHECK(progress_parse(text, &p) == 0 && strcmp(p.phase, "convert") == 0 && p.rows == 1000 &&
	          p.bytes == 123456789012LL,
	      "progress: %s %lld %lld", p.phase, p.rows, p.bytes);
	CHECK(status_write_progress(dir, &run, "login", -1, -1, err, sizeof(err)) == 0 &&
	          cache_read_file(dir, CACHE_PROGRESS, text, sizeof(text)) > 0 &&
	          progress_parse(text, &p) == 0 && strcmp(p.phase, "login") == 0 && p.rows == -1 &&
	          p.bytes == -1,
	      "progress with nulls: %s", text);
	CHECK(progress_parse("nope", &p) < 0 && progress_parse(NULL, &p) < 0,
	      "junk progress refused");
	unlink(strcat(strcat(strcpy(text, dir), "/"), CACHE_STATUS));
	unlink(strcat(strcat(strcpy(text, dir), "/"), CACHE_PROGRESS));
	CHECK(rmdir(dir) == 0, "only the two files were left in %s", dir);
}

void test_status(void)
{
	round_trip();
	error_cut();
	odd_records();
	files();
}

#include "../../cgi/req.h"
#include "t.h"

#include <string.h>

static const struct {
	const char *qs;
	int ok;
	int refresh, stream;
	const char *payload;
} cases[] = {
    {"", 1, 0, 0, NULL},
    {"refresh=true", 1, 1, 0, NULL},
    {"refresh=1&stream=true", 1, 1, 1, NULL},
    {"refresh=false", 1, 0, 0, NULL},
    {"refresh=maybe", 0, 0, 0, NULL},
    {"stream=%74rue", 1, 0, 1, NULL},
    {"stream=%7", 0, 0, 0, NULL},
    {"payload=none", 1, 0, 0, "none"},
    {"payload=all", 0, 0, 0, NULL},
    {"api_key=secret&x=%zz&&=", 1, 0, 0, NULL},
    {"refresh", 0, 0, 0, NULL},
    {"last_event_id=%22abc%22", 1, 0, 0, NULL},
    {"refresh=true%00", 0, 0, 0, NULL},
};

/* If-None-Match against the ETag "6b0ac4d0-46ffef2". */
static const struct {
	const char *inm;
	int match;
} etags[] = {
    {"\"6b0ac4d0-46ffef2\"", 1},
    {"*", 1},
    {" * ", 1},
    {"\"x\", *", 1},
    {"*x", 0},
    {"W/\"6b0ac4d0-46ffef2\"", 1},
    {"\"a\", \"6b0ac4d0-46ffef2\"", 1},
    {"\"a\",\"6b0ac4d0-46ffef2\"", 1},
    {"\"a\" ,\t W/\"6b0ac4d0-46ffef2\" , \"b\"", 1},
    {"\"6b0ac4d0-46ffef2\"\t", 1},
    {"  \"6b0ac4d0-46ffef2\"  ", 1},
    {"\"6b0ac4d0-46ffef2\", \"b\"", 1},
    {"", 0},
    {",,, ,", 0},
    {"6b0ac4d0-46ffef2", 0},       /* unquoted */
    {"\"6b0ac4d0-46ffef\"", 0},    /* a prefix */
    {"\"6b0ac4d0-46ffef2x\"", 0},  /* longer */
    {"\"6b0ac4d0-46ffef2\"x", 0},  /* trailing garbage */
    {"\"6b0ac4d0-46ffef3\"", 0},   /* another snapshot */
    {"w/\"6b0ac4d0-46ffef2\"", 0}, /* the weak prefix is case-sensitive */
    {"W/W/\"6b0ac4d0-46ffef2\"", 0},
    {"\"a\", \"b\", \"c\"", 0},
    {"\"a\" \"6b0ac4d0-46ffef2\"", 0}, /* no comma: one malformed member */
    {"\xff\xfe garbage, \x01", 0},
};

void test_req(void)
{
	struct conf cf;
	FCGX_Request fr;
	struct req r;
	char qs[256], err[256];
	char *env[] = {"REQUEST_METHOD=GET", "DOCUMENT_URI=/fetch-data", qs, NULL};
	size_t i;

	memset(&cf, 0, sizeof(cf));
	memset(&fr, 0, sizeof(fr));
	fr.envp = env;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc;
		snprintf(qs, sizeof(qs), "QUERY_STRING=%s", cases[i].qs);
		rc = req_parse(&r, &fr, &cf, err, sizeof(err));
		CHECK((rc == 0) == cases[i].ok, "query '%s': rc %d", cases[i].qs, rc);
		if (rc != 0 || !cases[i].ok)
			continue;
		CHECK(req_flag(&r, Q_REFRESH) == cases[i].refresh &&
		          req_flag(&r, Q_STREAM) == cases[i].stream,
		      "query '%s': flags", cases[i].qs);
		if (cases[i].payload)
			CHECK(strcmp(r.q[Q_PAYLOAD], cases[i].payload) == 0, "payload");
	}
	snprintf(qs, sizeof(qs), "QUERY_STRING=last_event_id=%%22abc%%22");
	CHECK(req_parse(&r, &fr, &cf, err, sizeof(err)) == 0 &&
	          strcmp(r.q[Q_LAST_EVENT_ID], "\"abc\"") == 0,
	      "decoded last_event_id");
	for (i = 0; i < sizeof(etags) / sizeof(etags[0]); i++)
		CHECK(req_etag_match(etags[i].inm, "\"6b0ac4d0-46ffef2\"") == etags[i].match,
		      "If-None-Match '%s': want %d", etags[i].inm, etags[i].match);
	CHECK(!req_etag_match(NULL, "\"6b0ac4d0-46ffef2\""), "no If-None-Match");
	CHECK(strcmp(r.path, "/fetch-data") == 0 && strcmp(r.method, "GET") == 0 && !r.head,
	      "method and path");
}

/* Issue 13: long work gets at most half of the threads, and gives its place back. */
void test_req_long(void)
{
	int i, got = 0;

	req_long_init(16);
	for (i = 0; i < 20; i++)
		got += req_long_begin();
	CHECK(got == 8, "8 of 16 threads for long work, got %d", got);
	req_long_end();
	CHECK(req_long_begin() == 1, "a place freed is taken again");
	CHECK(req_long_begin() == 0, "and then the budget is spent again");
	for (i = 0; i < 8; i++)
		req_long_end();
	req_long_init(2);
	CHECK(req_long_begin() == 1 && req_long_begin() == 0, "2 threads: one for long work");
	req_long_end();
}

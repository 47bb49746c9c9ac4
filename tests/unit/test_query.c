/* The query parser of /fetch-data (cgi/query.c): syntax, normalisation, resolution, errors. */
#include "../../cgi/query.h"
#include "t.h"

#include <stdlib.h>
#include <string.h>

static const char *const cols[] = {"id", "status", "updated_at", "a b", "limit2", "ünï"};
#define NCOLS 6

/* Parse and resolve qs; returns 0 or -1 with err. */
static int pr(struct query *q, const char *qs, const char *accept, char *err, size_t len)
{
	err[0] = '\0';
	if (query_parse(q, qs, accept, err, len) < 0)
		return -1;
	return query_resolve(q, cols, NCOLS, 0, 2, 1, err, len);
}

static void bad(const char *qs, const char *want)
{
	struct query q;
	char err[512];
	int rc = pr(&q, qs, NULL, err, sizeof(err));

	CHECK(rc == -1 && strcmp(err, want) == 0, "%s: rc %d, err '%s', want '%s'", qs, rc, err,
	      want);
	query_free(&q);
}

static void times(void)
{
	static const struct {
		const char *in, *out;
	} ok[] = {
	    {"2024-05-01", "2024-05-01 00:00:00"},
	    {"2024-05-01T12:34", "2024-05-01 12:34:00"},
	    {"2024-05-01T12:34:56", "2024-05-01 12:34:56"},
	    {"2024-05-01 12:34:56", "2024-05-01 12:34:56"},
	    {"2024-05-01t12:34:56z", "2024-05-01 12:34:56"},
	    {"2024-05-01T12:34:56Z", "2024-05-01 12:34:56"},
	    {"2024-05-01T12:34:56.000Z", "2024-05-01 12:34:56"},
	    {"2024-05-01T12:34:56.001", "2024-05-01 12:34:57"},
	    {"2024-12-31T23:59:59.5Z", "2025-01-01 00:00:00"},
	    {"2024-05-01T12:34:56+02:00", "2024-05-01 10:34:56"},
	    {"2024-05-01T00:30:00+0100", "2024-04-30 23:30:00"},
	    {"2024-05-01T23:30:00-01", "2024-05-02 00:30:00"},
	    {"2024-02-29T00:00:00", "2024-02-29 00:00:00"},
	    {"0999-01-01", "0999-01-01 00:00:00"},
	};
	static const char *const no[] = {"",
	                                 "2024",
	                                 "2024-5-1",
	                                 "2024-05-01T",
	                                 "2024-05-01T12",
	                                 "2024-05-01T12:3",
	                                 "2024-05-01T24:00:00",
	                                 "2024-05-01T12:60",
	                                 "2024-05-01T12:00:61",
	                                 "2023-02-29",
	                                 "2024-04-31",
	                                 "2024-13-01",
	                                 "2024-00-10",
	                                 "0000-01-01",
	                                 "2024-05-01T12:00:00.",
	                                 "2024-05-01T12:00:00+25:00",
	                                 "2024-05-01T12:00:00+02:",
	                                 "2024-05-01T12:00:00 UTC",
	                                 "2024-05-01x",
	                                 "1714564800"};
	char out[20];
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		memset(out, 'x', sizeof(out));
		CHECK(query_time(ok[i].in, out) == 0 && strcmp(out, ok[i].out) == 0,
		      "query_time(%s): '%.20s', want '%s'", ok[i].in, out, ok[i].out);
	}
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		CHECK(query_time(no[i], out) == -1, "query_time(%s) accepted", no[i]);
}

static void parses(void)
{
	struct query q;
	char err[512], *c;
	int rc;

	rc = pr(&q,
	        "limit=100&offset=200&fields=id,status&status=paid&a%20b=x+y&updated_since="
	        "2024-05-01T10:00:00%2B02:00&since_id=-5&format=csv",
	        NULL, err, sizeof(err));
	CHECK(rc == 0, "full query: %s", err);
	CHECK(q.any && q.limit == 100 && q.offset == 200 && q.offset_set && q.fmt == QF_CSV,
	      "limit/offset/format");
	CHECK(q.nfields == 2 && q.fields[0] == 0 && q.fields[1] == 1, "fields resolved");
	CHECK(q.nfilters == 2 && q.filters[0].col == 1 && q.filters[1].col == 3 &&
	          strcmp(q.filters[1].value, "x y") == 0,
	      "filters resolved and decoded");
	CHECK(strcmp(q.filters[0].json, "\"paid\"") == 0 && q.filters[0].json_len == 6,
	      "filter value as the converter writes it: %s", q.filters[0].json);
	CHECK(strcmp(q.updated_since, "2024-05-01 08:00:00") == 0, "updated_since: %s",
	      q.updated_since);
	CHECK(q.since_num == -5, "since_id as a number");
	c = query_canonical(&q, -1, NULL);
	CHECK(c && strcmp(c, "fields=id,status&a%20b=x%20y&status=paid&updated_since=2024-05-01%"
	                     "2008:00:00&since_id=-5&format=csv&limit=100&offset=200") == 0,
	      "canonical: %s", c);
	free(c);
	c = query_canonical(&q, 300, NULL);
	CHECK(c && strstr(c, "&offset=300") && !strstr(c, "offset=200"), "next offset: %s", c);
	free(c);
	c = query_canonical(&q, -1, "a&b");
	CHECK(c && strstr(c, "&after=a%26b") && !strstr(c, "offset="), "next after: %s", c);
	free(c);
	query_free(&q);

	/* Equivalent queries: one canonical form (filters sorted, format json left out). */
	{
		struct query a, b;
		char *ca, *cb;
		pr(&a, "status=x&id=1&format=json&limit=5", NULL, err, sizeof(err));
		pr(&b, "limit=05&id=1&status=%78", NULL, err, sizeof(err));
		ca = query_canonical(&a, -1, NULL);
		cb = query_canonical(&b, -1, NULL);
		CHECK(ca && cb && strcmp(ca, cb) == 0, "same query, same form: %s / %s", ca, cb);
		free(ca);
		free(cb);
		query_free(&a);
		query_free(&b);
	}

	/* null is SQL NULL, NULL the text. */
	rc = pr(&q, "status=null&id=NULL", NULL, err, sizeof(err));
	CHECK(rc == 0 && q.filters[0].value == NULL && strcmp(q.filters[0].json, "null") == 0 &&
	          strcmp(q.filters[1].json, "\"NULL\"") == 0,
	      "null and NULL");
	query_free(&q);

	/* The legacy parameters are req_parse's: alone they do not ask for a query. */
	rc = pr(&q, "refresh=true&stream=false&payload=none&last_event_id=x", NULL, err,
	        sizeof(err));
	CHECK(rc == 0 && !q.any, "legacy only: not a query");
	query_free(&q);
	rc = pr(&q, "", "application/json, application/x-ndjson;q=0.9", err, sizeof(err));
	CHECK(rc == 0 && q.any && q.fmt == QF_NDJSON, "Accept: application/x-ndjson");
	query_free(&q);
	rc = pr(&q, "format=csv", "application/x-ndjson", err, sizeof(err));
	CHECK(rc == 0 && q.fmt == QF_CSV, "format wins over Accept");
	query_free(&q);
	rc = pr(&q, "changes_since=%2212-34%22&refresh=true", NULL, err, sizeof(err));
	CHECK(rc == 0 && strcmp(q.changes_since, "\"12-34\"") == 0, "changes_since");
	query_free(&q);
	rc = pr(&q, "after=17&limit=1000&fields=%C3%BCn%C3%AF", NULL, err, sizeof(err));
	CHECK(rc == 0 && strcmp(q.after, "17") == 0 && q.limit == 1000 && q.fields[0] == 5,
	      "after, limit 1000, a UTF-8 column: %s", err);
	query_free(&q);
	/* Text ids: since_id is not a number then. */
	query_parse(&q, "since_id=abc", NULL, err, sizeof(err));
	CHECK(query_resolve(&q, cols, NCOLS, 0, 2, 0, err, sizeof(err)) == 0, "text since_id");
	query_free(&q);
}

static void errors(void)
{
	bad("limit=0", "query parameter 'limit' must be an integer from 1 to 1000");
	bad("limit=1001", "query parameter 'limit' must be an integer from 1 to 1000");
	bad("limit=-1", "query parameter 'limit' must be an integer from 1 to 1000");
	bad("limit=1e2", "query parameter 'limit' must be an integer from 1 to 1000");
	bad("limit=", "query parameter 'limit' must be an integer from 1 to 1000");
	bad("limit=99999999999999999999999",
	    "query parameter 'limit' must be an integer from 1 to 1000");
	bad("offset=x", "query parameter 'offset' must be a non-negative integer");
	bad("offset=-3", "query parameter 'offset' must be a non-negative integer");
	bad("offset=99999999999999999999",
	    "query parameter 'offset' must be a non-negative integer");
	bad("limit=1&limit=2", "query parameter 'limit' given twice");
	bad("offset=1&after=2", "query parameters 'offset' and 'after' exclude each other");
	bad("after=", "query parameter 'after' needs an id");
	bad("since_id=", "query parameter 'since_id' needs an id");
	bad("since_id=x1", "query parameter 'since_id' must be an integer (the ids are)");
	bad("since_id=99999999999999999999",
	    "query parameter 'since_id' must be an integer (the ids are)");
	bad("format=xml", "query parameter 'format' must be json, ndjson or csv");
	bad("updated_since=yesterday", "query parameter 'updated_since' must be an ISO 8601 time, "
	                               "such as 2024-05-01T12:00:00Z or 2024-05-01");
	bad("nope=1", "unknown query parameter 'nope' (not a column either)");
	bad("Status=paid", "unknown query parameter 'Status' (not a column either)");
	bad("api_key=secret", "unknown query parameter 'api_key' (not a column either)");
	bad("x%22%5C=1", "unknown query parameter 'x?"
	                 "?' (not a column either)");
	bad("fields=id,nope", "query parameter 'fields': unknown column 'nope'");
	bad("fields=id,,status", "query parameter 'fields' has an empty column name");
	bad("fields=", "query parameter 'fields' has an empty column name");
	bad("fields=id,id", "query parameter 'fields': column 'id' given twice");
	bad("x=%zz", "bad percent-encoding in query parameter 'x'");
	bad("%zz=1", "bad percent-encoding in a query parameter name");
	bad("status=a%00b", "bad percent-encoding in query parameter 'status'");
	bad("=1", "a query parameter without a name");
	bad("changes_since=%2212-34%22&limit=5",
	    "query parameter 'changes_since' takes no other parameter");
	bad("limit=5&changes_since=x", "query parameter 'changes_since' takes no other parameter");
	{
		struct query q;
		char err[512];
		query_parse(&q, "updated_since=2024-01-01", NULL, err, sizeof(err));
		CHECK(query_resolve(&q, cols, NCOLS, 0, -1, 1, err, sizeof(err)) == -1 &&
		          strcmp(err, "query parameter 'updated_since': the table has no "
		                      "updated_column") == 0,
		      "updated_since without the column: %s", err);
		query_free(&q);
		query_parse(&q, "after=3", NULL, err, sizeof(err));
		CHECK(query_resolve(&q, cols, NCOLS, -1, 2, 0, err, sizeof(err)) == -1 &&
		          strcmp(err, "query parameter 'after': the table has no id_column") == 0,
		      "after without the column: %s", err);
		query_free(&q);
	}
}

void test_query(void)
{
	times();
	parses();
	errors();
}

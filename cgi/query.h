/*
 * query: /fetch-data with query parameters (issue 15), answered from the current snapshot and
 * its index (common/snapidx.h) without parsing the snapshot: pages (limit, offset, after),
 * fields, filters (<column>=<value>, updated_since, since_id), formats (json, ndjson, csv)
 * and changes_since. The rows are read with pread in bounded windows (a row longer than the
 * window through an mmap of that row alone, unmapped at once), so a full scan of any
 * snapshot costs the responder a constant amount of memory.
 *
 * Parsing is in two steps: query_parse checks the syntax (numbers, times, formats, repeats)
 * without the snapshot; query_resolve then names columns against the snapshot's columns. Both
 * fail with a message naming the parameter, answered with 400 before anything is sent.
 */
#ifndef PMACACHE_QUERY_H
#define PMACACHE_QUERY_H

#include "req.h"

#include <stddef.h>
#include <stdint.h>

#define QUERY_LIMIT_MAX 1000
#define QUERY_MAX_FILTERS 64
#define QUERY_MAX_FIELDS 1024

enum query_fmt { QF_JSON, QF_NDJSON, QF_CSV };

struct query_filter {
	const char *name;  /* decoded column name */
	const char *value; /* decoded value, or NULL for SQL NULL ("null") */
	int col;           /* resolved column, -1 before query_resolve */
	char *json;        /* the value as the converter writes it ("..." or null) */
	size_t json_len;
};

struct query {
	int any; /* a parameter (or Accept) that asks for the query path */
	enum query_fmt fmt;
	long limit;       /* 0: no limit */
	long long offset; /* rows to skip */
	int offset_set;
	const char *after; /* decoded primary key, or NULL */
	const char *fields_raw;
	int fields[QUERY_MAX_FIELDS]; /* resolved column indexes */
	int nfields;                  /* 0: every column */
	char updated_since[20];       /* "YYYY-MM-DD HH:MM:SS", or "" */
	const char *since_id;
	long long since_num; /* since_id as an integer (when the ids are integers) */
	const char *changes_since;
	struct query_filter filters[QUERY_MAX_FILTERS];
	int nfilters;
	char *mem; /* decoded names and values */
};

/*
 * Parse the query string qs (and the Accept header, which may ask for NDJSON). The known
 * parameters of today (refresh, stream, payload, last_event_id) are left to req_parse; any
 * other name that is not one of ours is a column filter, checked by query_resolve. Returns 0,
 * or -1 with a message naming the parameter in err. Call query_free either way.
 */
int query_parse(struct query *q, const char *qs, const char *accept, char *err, size_t errlen);

/*
 * Resolve the column names (fields, filters) against the snapshot's ncols columns (decoded
 * names), and check what needs the id or updated column (id_col, updated_col: indexes or -1;
 * ids_integer: every id is a decimal integer). Returns 0, or -1 with err.
 */
int query_resolve(struct query *q, const char *const *cols, int ncols, int id_col, int updated_col,
                  int ids_integer, char *err, size_t errlen);

/*
 * The normalised query, percent-encoded, in a fixed order (so that equivalent queries are
 * one variant with one ETag). override_offset >= 0 and override_after (decoded, may be NULL)
 * replace the page's position (for the next page's link). Returns a new string or NULL.
 */
char *query_canonical(const struct query *q, long long override_offset, const char *override_after);

void query_free(struct query *q);

/*
 * Normalise an ISO 8601 time to MySQL DATETIME text "YYYY-MM-DD HH:MM:SS" (out: 20 bytes).
 * Accepts YYYY-MM-DD, then optionally 'T' (or a space) and HH:MM, :SS, a fraction, and a zone
 * (Z or +HH:MM, +HHMM, +HH): a zone is converted to UTC (the column's values are taken to be
 * UTC), a non-zero fraction rounds up to the next second (inclusive stays exact). Returns 0,
 * or -1 for anything else or an impossible date.
 */
int query_time(const char *in, char out[20]);

/* Whether this /fetch-data request takes the query path (any parameter beyond refresh,
 * stream, payload, last_event_id, or Accept: application/x-ndjson). */
int query_wanted(const struct req *r);

/* Starts a sync for refresh=true: returns the note for "_info", or NULL if it could not. */
typedef const char *(*query_trigger_fn)(struct req *r);

/* Answer r with the query. trigger: for refresh=true (called once the query is known to be
 * good, never for HEAD), or NULL. */
void query_serve(struct req *r, query_trigger_fn trigger);

/*
 * SSE (stream=true) with fields and filters: query_sse_parse returns the stream's query, or
 * NULL: with err empty when there is none, else with the message for a 400 (a bad parameter,
 * or one a stream does not take: limit, offset, after, format, changes_since).
 * query_sse_body writes the current snapshot's body with only those rows and fields (the
 * /fetch-data envelope, "count" after "data"). Returns 0; -1 if the client went away; or -2
 * before writing anything, with the reason in err (a column the snapshot lacks, no index).
 */
struct query *query_sse_parse(struct req *r, char *err, size_t errlen);
int query_sse_body(struct req *r, struct query *q, char *err, size_t errlen);
void query_sse_free(struct query *q);

#endif

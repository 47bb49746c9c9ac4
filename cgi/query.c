#include "query.h"

#include "../common/cache.h"
#include "../common/log.h"
#include "../common/snapidx.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define READ_WIN (64 * 1024)        /* rows are read in windows of this size */
#define OUT_BUF (16 * 1024)         /* output is handed to libfcgi in pieces of this size */
#define RELEASE_EVERY (1024 * 1024) /* offsets already passed are dropped from RSS this often */
#define COLUMNS_MAX (64 * 1024 * 1024)

/* ---------------------------------------------------------------------------------------- */
/* Parsing */

/* The parameters /fetch-data knew before queries, and "_", the cache-buster that jQuery's
 * cache:false and many other clients append (ignored: the answer is the plain one). */
static const char *const legacy[] = {"refresh", "stream", "payload", "last_event_id", "_"};

static int is_legacy(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(legacy) / sizeof(legacy[0]); i++)
		if (strcmp(name, legacy[i]) == 0)
			return 1;
	return 0;
}

/* A name from the client, fit for a message: printable ASCII, no quote or backslash, cut. */
static const char *safe(const char *s, char *out, size_t len)
{
	size_t o = 0;

	for (; *s && o + 4 < len; s++) {
		unsigned char c = (unsigned char)*s;
		out[o++] = c < 0x20 || c >= 0x7f || c == '"' || c == '\\' ? '?' : (char)c;
	}
	if (*s)
		o += (size_t)snprintf(out + o, len - o, "...");
	out[o] = '\0';
	return out;
}

static int accepts_ndjson(const char *accept)
{
	return accept && strstr(accept, "application/x-ndjson") != NULL;
}

int query_wanted(const struct req *r)
{
	const char *qs = req_param(r, "QUERY_STRING"), *p;
	char name[64];

	if (accepts_ndjson(req_param(r, "HTTP_ACCEPT")))
		return 1;
	for (p = qs ? qs : ""; *p;) {
		size_t n = strcspn(p, "&"), kn = strcspn(p, "=&");
		if (n > 0 && (req_decode(p, kn, name, sizeof(name)) < 0 || !is_legacy(name)))
			return 1;
		p += n;
		if (*p == '&')
			p++;
	}
	return 0;
}

/* Digits only, within [lo, hi]. */
static int parse_num(const char *s, long long lo, long long hi, long long *out)
{
	long long v = 0;

	if (*s == '\0')
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (LLONG_MAX - (*s - '0')) / 10)
			return -1;
		v = v * 10 + (*s - '0');
	}
	if (v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* An integer with an optional '-', fitting int64. */
static int parse_int(const char *s, size_t n, long long *out)
{
	int neg = n > 0 && s[0] == '-';
	unsigned long long v = 0, lim = neg ? (unsigned long long)LLONG_MAX + 1 : LLONG_MAX;
	size_t i = (size_t)neg;

	if (i >= n)
		return -1;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9' || v > (lim - (unsigned)(s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*out = neg ? (long long)(0 - v) : (long long)v;
	return 0;
}

static int digits(const char *s, int n, int *out)
{
	int i, v = 0;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int query_time(const char *in, char out[20])
{
	struct tm tm, chk;
	int y, mo, d, h = 0, mi = 0, se = 0, up = 0, zs = 0, zh = 0, zm = 0;
	const char *p = in;
	char tmp[96];
	time_t t;

	if (digits(p, 4, &y) || p[4] != '-' || digits(p + 5, 2, &mo) || p[7] != '-' ||
	    digits(p + 8, 2, &d))
		return -1;
	p += 10;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		if (digits(p + 1, 2, &h) || p[3] != ':' || digits(p + 4, 2, &mi))
			return -1;
		p += 6;
		if (*p == ':') {
			if (digits(p + 1, 2, &se))
				return -1;
			p += 3;
			if (*p == '.' || *p == ',') {
				if (p[1] < '0' || p[1] > '9')
					return -1;
				for (p++; *p >= '0' && *p <= '9'; p++)
					up |= *p != '0';
			}
		}
		if (*p == 'Z' || *p == 'z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			zs = *p == '-' ? -1 : 1;
			if (digits(p + 1, 2, &zh))
				return -1;
			p += 3;
			if (*p == ':' && p[1] == '\0')
				return -1;
			if (*p == ':')
				p++;
			if (*p && digits(p, 2, &zm))
				return -1;
			p += *p ? 2 : 0;
			if (zh > 23 || zm > 59)
				return -1;
		}
	}
	if (*p != '\0' || y < 1 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
	    se > 59)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	t = timegm(&tm);
	if (gmtime_r(&t, &chk) == NULL || chk.tm_mday != d || chk.tm_mon != mo - 1)
		return -1; /* 2024-02-30 */
	t -= (time_t)zs * (zh * 3600 + zm * 60);
	t += up;
	if (gmtime_r(&t, &chk) == NULL || chk.tm_year + 1900 < 1 || chk.tm_year + 1900 > 9999)
		return -1;
	/* Every field is in range here: the text is 19 bytes (strftime's %Y would not pad). */
	snprintf(tmp, sizeof(tmp), "%04d-%02d-%02d %02d:%02d:%02d", chk.tm_year + 1900,
	         chk.tm_mon + 1, chk.tm_mday, chk.tm_hour, chk.tm_min, chk.tm_sec);
	memcpy(out, tmp, 19);
	out[19] = '\0';
	return 0;
}

void query_free(struct query *q)
{
	int i;

	for (i = 0; i < q->nfilters; i++)
		free(q->filters[i].json);
	free(q->mem);
	q->mem = NULL;
	q->nfilters = 0;
}

int query_parse(struct query *q, const char *qs, const char *accept, char *err, size_t errlen)
{
	enum { P_LIMIT, P_OFFSET, P_AFTER, P_FIELDS, P_UPDATED, P_SINCE_ID, P_FORMAT, P_CHANGES };
	static const char *const names[] = {"limit",         "offset",   "after",  "fields",
	                                    "updated_since", "since_id", "format", "changes_since"};
	int seen[8] = {0}, others = 0, k;
	size_t cap;
	const char *p;
	char *m, sn[80];
	long long v;

	memset(q, 0, sizeof(*q));
	q->fmt = QF_JSON;
	if (qs == NULL)
		qs = "";
	cap = 3 * strlen(qs) + 8;
	if ((q->mem = malloc(cap)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	m = q->mem;
	for (p = qs; *p;) {
		size_t n = strcspn(p, "&"), kn = strcspn(p, "=&");
		const char *item = p;
		char *name, *val;

		p += n;
		if (*p == '&')
			p++;
		if (n == 0)
			continue;
		name = m;
		if (req_decode(item, kn, name, cap - (size_t)(m - q->mem)) < 0) {
			snprintf(err, errlen, "bad percent-encoding in a query parameter name");
			return -1;
		}
		m += strlen(name) + 1;
		val = m;
		if (req_decode(kn < n ? item + kn + 1 : item + n, kn < n ? n - kn - 1 : 0, val,
		               cap - (size_t)(m - q->mem)) < 0) {
			snprintf(err, errlen, "bad percent-encoding in query parameter '%s'",
			         safe(name, sn, sizeof(sn)));
			return -1;
		}
		m += strlen(val) + 1;
		if (name[0] == '\0') {
			snprintf(err, errlen, "a query parameter without a name");
			return -1;
		}
		if (is_legacy(name))
			continue; /* req_parse's */
		q->any = 1;
		for (k = 0; k < 8; k++)
			if (strcmp(name, names[k]) == 0)
				break;
		if (k < 8 && seen[k]++) {
			snprintf(err, errlen, "query parameter '%s' given twice", names[k]);
			return -1;
		}
		if (k != P_CHANGES)
			others = 1;
		switch (k) {
		case P_LIMIT:
			if (parse_num(val, 1, QUERY_LIMIT_MAX, &v) < 0) {
				snprintf(err, errlen,
				         "query parameter 'limit' must be an integer from 1 to %d",
				         QUERY_LIMIT_MAX);
				return -1;
			}
			q->limit = (long)v;
			break;
		case P_OFFSET:
			if (parse_num(val, 0, LLONG_MAX, &q->offset) < 0) {
				snprintf(err, errlen,
				         "query parameter 'offset' must be a non-negative integer");
				return -1;
			}
			q->offset_set = 1;
			break;
		case P_AFTER:
		case P_SINCE_ID:
			if (val[0] == '\0') {
				snprintf(err, errlen, "query parameter '%s' needs an id", names[k]);
				return -1;
			}
			*(k == P_AFTER ? &q->after : &q->since_id) = val;
			break;
		case P_FIELDS:
			q->fields_raw = val;
			break;
		case P_UPDATED:
			if (query_time(val, q->updated_since) < 0) {
				snprintf(
				    err, errlen,
				    "query parameter 'updated_since' must be an ISO 8601 time, "
				    "such as 2024-05-01T12:00:00Z or 2024-05-01");
				return -1;
			}
			break;
		case P_FORMAT:
			if (strcmp(val, "json") == 0) {
				q->fmt = QF_JSON;
			} else if (strcmp(val, "ndjson") == 0) {
				q->fmt = QF_NDJSON;
			} else if (strcmp(val, "csv") == 0) {
				q->fmt = QF_CSV;
			} else {
				snprintf(err, errlen,
				         "query parameter 'format' must be json, ndjson or csv");
				return -1;
			}
			break;
		case P_CHANGES:
			q->changes_since = val;
			break;
		default:
			if (q->nfilters >= QUERY_MAX_FILTERS) {
				snprintf(err, errlen, "too many filters (at most %d)",
				         QUERY_MAX_FILTERS);
				return -1;
			}
			q->filters[q->nfilters].name = name;
			q->filters[q->nfilters].value = strcmp(val, "null") == 0 ? NULL : val;
			q->filters[q->nfilters].col = -1;
			q->nfilters++;
		}
	}
	if (q->offset_set && q->after) {
		snprintf(err, errlen, "query parameters 'offset' and 'after' exclude each other");
		return -1;
	}
	if (q->changes_since && others) {
		snprintf(err, errlen, "query parameter 'changes_since' takes no other parameter");
		return -1;
	}
	if (!seen[P_FORMAT] && !q->changes_since && accepts_ndjson(accept)) {
		q->fmt = QF_NDJSON;
		q->any = 1;
	}
	return 0;
}

static int find_col(const char *const *cols, int ncols, const char *name, size_t len)
{
	int i;

	for (i = 0; i < ncols; i++)
		if (strncmp(cols[i], name, len) == 0 && cols[i][len] == '\0')
			return i;
	return -1;
}

int query_resolve(struct query *q, const char *const *cols, int ncols, int id_col, int updated_col,
                  int ids_integer, char *err, size_t errlen)
{
	char sn[80], nm[256];
	int i, j;

	if (q->fields_raw) {
		const char *p = q->fields_raw;
		for (;;) {
			size_t n = strcspn(p, ",");
			int c;
			snprintf(nm, sizeof(nm), "%.*s", (int)(n < 200 ? n : 200), p);
			if (n == 0) {
				snprintf(err, errlen,
				         "query parameter 'fields' has an empty column name");
				return -1;
			}
			if ((c = find_col(cols, ncols, p, n)) < 0) {
				snprintf(err, errlen,
				         "query parameter 'fields': unknown column '%s'",
				         safe(nm, sn, sizeof(sn)));
				return -1;
			}
			for (j = 0; j < q->nfields; j++)
				if (q->fields[j] == c) {
					snprintf(
					    err, errlen,
					    "query parameter 'fields': column '%s' given twice",
					    safe(nm, sn, sizeof(sn)));
					return -1;
				}
			if (q->nfields >= QUERY_MAX_FIELDS) {
				snprintf(err, errlen,
				         "query parameter 'fields': more than %d columns",
				         QUERY_MAX_FIELDS);
				return -1;
			}
			q->fields[q->nfields++] = c;
			if (p[n] == '\0')
				break;
			p += n + 1;
		}
	}
	for (i = 0; i < q->nfilters; i++) {
		struct query_filter *f = &q->filters[i];
		f->col = find_col(cols, ncols, f->name, strlen(f->name));
		if (f->col < 0) {
			snprintf(err, errlen, "unknown query parameter '%s' (not a column either)",
			         safe(f->name, sn, sizeof(sn)));
			return -1;
		}
		if (f->value == NULL) {
			f->json = strdup("null");
			f->json_len = 4;
		} else {
			size_t n = strlen(f->value);
			if ((f->json = malloc(6 * n + 4)) != NULL) {
				f->json_len = snapidx_json_string(f->json, f->value, n);
				f->json[f->json_len] = '\0';
			}
		}
		if (f->json == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	if (q->updated_since[0] && updated_col < 0) {
		snprintf(err, errlen,
		         "query parameter 'updated_since': the table has no updated_column");
		return -1;
	}
	if ((q->since_id || q->after) && id_col < 0) {
		snprintf(err, errlen, "query parameter '%s': the table has no id_column",
		         q->since_id ? "since_id" : "after");
		return -1;
	}
	if (q->since_id && ids_integer &&
	    parse_int(q->since_id, strlen(q->since_id), &q->since_num) < 0) {
		snprintf(err, errlen,
		         "query parameter 'since_id' must be an integer (the ids are)");
		return -1;
	}
	return 0;
}

/* Append name=value (value percent-encoded) to the string at *s. */
static int cat_param(char **s, size_t *len, size_t *cap, const char *name, const char *val)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t need = 3 * strlen(name) + 3 * strlen(val) + 3;
	const unsigned char *v;
	int part;

	if (*len + need >= *cap) {
		size_t nc = (*cap + need) * 2;
		char *np = realloc(*s, nc);
		if (np == NULL)
			return -1;
		*s = np;
		*cap = nc;
	}
	if (*len)
		(*s)[(*len)++] = '&';
	for (part = 0; part < 2; part++) {
		if (part)
			(*s)[(*len)++] = '=';
		for (v = (const unsigned char *)(part ? val : name); *v; v++) {
			if ((*v >= 'a' && *v <= 'z') || (*v >= 'A' && *v <= 'Z') ||
			    (*v >= '0' && *v <= '9') || strchr("-._~,:", *v)) {
				(*s)[(*len)++] = (char)*v;
			} else {
				(*s)[(*len)++] = '%';
				(*s)[(*len)++] = hex[*v >> 4];
				(*s)[(*len)++] = hex[*v & 15];
			}
		}
	}
	(*s)[*len] = '\0';
	return 0;
}

static int filter_cmp(const void *a, const void *b)
{
	const struct query_filter *x = *(const struct query_filter *const *)a;
	const struct query_filter *y = *(const struct query_filter *const *)b;
	int c = strcmp(x->name, y->name);

	if (c || x->value == y->value)
		return c;
	if (x->value == NULL || y->value == NULL)
		return x->value == NULL ? -1 : 1;
	return strcmp(x->value, y->value);
}

char *query_canonical(const struct query *q, long long override_offset, const char *override_after)
{
	static const char *const fmts[] = {"json", "ndjson", "csv"};
	const struct query_filter *fs[QUERY_MAX_FILTERS];
	size_t len = 0, cap = 256;
	char *s = malloc(cap), num[32];
	long long offset = override_offset >= 0 ? override_offset : q->offset;
	const char *after = override_offset >= 0 || override_after ? override_after : q->after;
	int i, bad = 0;

	if (s == NULL)
		return NULL;
	s[0] = '\0';
	for (i = 0; i < q->nfilters; i++)
		fs[i] = &q->filters[i];
	qsort(fs, (size_t)q->nfilters, sizeof(fs[0]), filter_cmp);
	if (q->fields_raw)
		bad |= cat_param(&s, &len, &cap, "fields", q->fields_raw);
	for (i = 0; i < q->nfilters; i++)
		bad |= cat_param(&s, &len, &cap, fs[i]->name, fs[i]->value ? fs[i]->value : "null");
	if (q->updated_since[0])
		bad |= cat_param(&s, &len, &cap, "updated_since", q->updated_since);
	if (q->since_id)
		bad |= cat_param(&s, &len, &cap, "since_id", q->since_id);
	if (q->fmt != QF_JSON)
		bad |= cat_param(&s, &len, &cap, "format", fmts[q->fmt]);
	if (q->limit) {
		snprintf(num, sizeof(num), "%ld", q->limit);
		bad |= cat_param(&s, &len, &cap, "limit", num);
	}
	if (offset > 0 && after == NULL) {
		snprintf(num, sizeof(num), "%lld", offset);
		bad |= cat_param(&s, &len, &cap, "offset", num);
	}
	if (after)
		bad |= cat_param(&s, &len, &cap, "after", after);
	if (q->changes_since)
		bad |= cat_param(&s, &len, &cap, "changes_since", q->changes_since);
	if (bad) {
		free(s);
		return NULL;
	}
	return s;
}

/* ---------------------------------------------------------------------------------------- */
/* The snapshot's columns, kept per process for the current snapshot. */

struct cols {
	char id[64];
	int n;
	char **names; /* decoded */
	char **json;  /* as the converter writes them, quotes included */
	size_t *json_len;
	int refs;
};

static void cols_free(struct cols *c)
{
	int i;

	if (c == NULL)
		return;
	for (i = 0; i < c->n; i++) {
		free(c->names[i]);
		free(c->json[i]);
	}
	free(c->names);
	free(c->json);
	free(c->json_len);
	free(c);
}

static struct cols *cols_load(int dfd, const char *id, char *err, size_t errlen)
{
	struct json_object *a = NULL;
	struct cols *c = NULL;
	struct stat st;
	char *text = NULL;
	ssize_t got = 0;
	int fd, i;

	if ((fd = openat(dfd, CACHE_COLUMNS, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
	    fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > COLUMNS_MAX ||
	    (text = malloc((size_t)st.st_size + 1)) == NULL ||
	    (got = pread(fd, text, (size_t)st.st_size, 0)) != st.st_size) {
		snprintf(err, errlen, "%s: %s", CACHE_COLUMNS,
		         fd < 0 || got < 0 ? strerror(errno) : "not readable");
		goto out;
	}
	text[got] = '\0';
	a = json_tokener_parse(text);
	if (a == NULL || !json_object_is_type(a, json_type_array)) {
		snprintf(err, errlen, "%s: not a JSON array", CACHE_COLUMNS);
		goto out;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto oom;
	c->n = (int)json_object_array_length(a);
	c->names = calloc((size_t)c->n + 1, sizeof(char *));
	c->json = calloc((size_t)c->n + 1, sizeof(char *));
	c->json_len = calloc((size_t)c->n + 1, sizeof(size_t));
	if (!c->names || !c->json || !c->json_len)
		goto oom;
	for (i = 0; i < c->n; i++) {
		struct json_object *o = json_object_array_get_idx(a, (size_t)i);
		const char *s = json_object_get_string(o);
		size_t n = s ? strlen(s) : 0;
		if (!json_object_is_type(o, json_type_string) ||
		    (c->names[i] = strdup(s)) == NULL || (c->json[i] = malloc(6 * n + 3)) == NULL)
			goto oom;
		c->json_len[i] = snapidx_json_string(c->json[i], s, n);
	}
	snprintf(c->id, sizeof(c->id), "%s", id);
	c->refs = 1;
	goto out;
oom:
	snprintf(err, errlen, "%s: out of memory or not names", CACHE_COLUMNS);
	cols_free(c);
	c = NULL;
out:
	json_object_put(a);
	free(text);
	if (fd >= 0)
		close(fd);
	return c;
}

/*
 * The current snapshot, opened once per process and shared by its requests: the data file,
 * the folder, the index (mapped) and the columns. A request holds a reference; the handle of
 * a replaced snapshot goes with its last request. So a page costs a readlink and the reads.
 */
struct snap {
	struct cache_snap s; /* s.fd: data_cache.json */
	int dfd;             /* snapshots/<id> */
	int noindex;         /* published without rows.idx (by an earlier version) */
	struct snapidx ix;
	struct cols *cols;
	int refs;
};

static pthread_mutex_t snap_mu = PTHREAD_MUTEX_INITIALIZER;
static struct snap *snap_cur;

static void snap_free(struct snap *h)
{
	if (h->cols)
		cols_free(h->cols);
	snapidx_close(&h->ix);
	if (h->dfd >= 0)
		close(h->dfd);
	if (h->s.fd >= 0)
		close(h->s.fd);
	free(h);
}

static void snap_put(struct snap *h)
{
	int last;

	if (h == NULL)
		return;
	pthread_mutex_lock(&snap_mu);
	last = --h->refs == 0;
	pthread_mutex_unlock(&snap_mu);
	if (last)
		snap_free(h);
}

/* Open the current snapshot. Returns the handle, or NULL with *rc 1 (no cache) or -1. */
static struct snap *snap_load(const char *cache_dir, int *rc, char *err, size_t errlen)
{
	struct snap *h = calloc(1, sizeof(*h));
	char rel[128];

	*rc = -1;
	if (h == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->dfd = -1;
	if ((*rc = cache_current(cache_dir, &h->s, 1, err, errlen)) != 0) {
		free(h);
		return NULL;
	}
	*rc = -1;
	snprintf(rel, sizeof(rel), "snapshots/%s", h->s.id);
	if ((h->dfd = cache_open_beneath(cache_dir, rel, O_RDONLY | O_DIRECTORY)) < 0) {
		snprintf(err, errlen, "%.300s/%s: %s", cache_dir, rel, strerror(errno));
		goto bad;
	}
	if (faccessat(h->dfd, SNAPIDX_ROWS, F_OK, 0) < 0 && errno == ENOENT) {
		h->noindex = 1;
		*rc = 0;
		return h;
	}
	if (snapidx_open(h->dfd, (uint64_t)h->s.size, &h->ix, err, errlen) < 0 ||
	    (h->cols = cols_load(h->dfd, h->s.id, err, errlen)) == NULL)
		goto bad;
	if ((uint32_t)h->cols->n != h->ix.head.ncols) {
		snprintf(err, errlen, "%s: %d columns, the index says %u", CACHE_COLUMNS,
		         h->cols->n, h->ix.head.ncols);
		goto bad;
	}
	*rc = 0;
	return h;
bad:
	snap_free(h);
	return NULL;
}

static struct snap *snap_get(const char *cache_dir, int *rc, char *err, size_t errlen)
{
	struct snap *h = NULL, *old;
	char id[64];

	if ((*rc = cache_current_id(cache_dir, id, sizeof(id), err, errlen)) != 0)
		return NULL;
	pthread_mutex_lock(&snap_mu);
	if (snap_cur && strcmp(snap_cur->s.id, id) == 0) {
		h = snap_cur;
		h->refs++;
	}
	pthread_mutex_unlock(&snap_mu);
	if (h || (h = snap_load(cache_dir, rc, err, errlen)) == NULL)
		return h;
	pthread_mutex_lock(&snap_mu);
	old = snap_cur;
	snap_cur = h;
	h->refs = 2; /* the cache's and the caller's */
	pthread_mutex_unlock(&snap_mu);
	snap_put(old);
	return h;
}

/* ---------------------------------------------------------------------------------------- */
/* Reading rows */

struct rd {
	int fd;
	const struct snapidx *ix;
	char *buf; /* READ_WIN bytes of data_cache.json from boff */
	uint64_t boff;
	size_t blen;
	void *map; /* one long row, mapped alone */
	size_t maplen;
	uintptr_t released; /* offsets below this address are out of RSS */
	long pg;
};

static void rd_init(struct rd *d, int fd, const struct snapidx *ix)
{
	memset(d, 0, sizeof(*d));
	d->fd = fd;
	d->ix = ix;
	d->pg = sysconf(_SC_PAGESIZE);
}

/* A sequential scan starts at row start. */
static void rd_scan(struct rd *d, uint64_t start)
{
	d->released = (uintptr_t)&d->ix->off[start] & ~(uintptr_t)(d->pg - 1);
}

static void rd_unmap(struct rd *d)
{
	if (d->map) {
		munmap(d->map, d->maplen);
		d->map = NULL;
	}
}

static void rd_done(struct rd *d)
{
	rd_unmap(d);
	free(d->buf);
	d->buf = NULL;
}

/*
 * A sequential scan has passed offset i: the pages of rows.idx before it go out of this
 * process's RSS (they stay in the page cache; another reader faults them back in).
 */
static void rd_release(struct rd *d, uint64_t i)
{
	uintptr_t upto = (uintptr_t)&d->ix->off[i] & ~(uintptr_t)(d->pg - 1);

	if (upto >= d->released + RELEASE_EVERY) {
		madvise((void *)d->released, upto - d->released, MADV_DONTNEED);
		d->released = upto;
	}
}

/* Row i's JSON object: a pointer valid until the next call, or NULL (corrupt or I/O). */
static const char *rd_row(struct rd *d, uint64_t i, size_t *len)
{
	uint64_t a = d->ix->off[i], b = d->ix->off[i + 1], size = d->ix->head.data_size;
	const char *p;
	size_t n;

	rd_unmap(d);
	if (b <= a + 2 || b > size)
		return NULL;
	b--; /* the ',' or ']' after the row */
	n = (size_t)(b - a);
	if (d->buf && a >= d->boff && b <= d->boff + d->blen) {
		p = d->buf + (a - d->boff);
	} else if (n <= READ_WIN) {
		size_t want = size - a < READ_WIN ? (size_t)(size - a) : READ_WIN, got = 0;
		if (d->buf == NULL && (d->buf = malloc(READ_WIN)) == NULL)
			return NULL;
		while (got < want) {
			ssize_t r = pread(d->fd, d->buf + got, want - got, (off_t)(a + got));
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		d->boff = a;
		d->blen = got;
		if (got < n)
			return NULL;
		p = d->buf;
	} else {
		uint64_t al = a & ~(uint64_t)(d->pg - 1);
		d->maplen = (size_t)(b - al);
		d->map = mmap(NULL, d->maplen, PROT_READ, MAP_PRIVATE, d->fd, (off_t)al);
		if (d->map == MAP_FAILED) {
			d->map = NULL;
			return NULL;
		}
		p = (const char *)d->map + (a - al);
	}
	if (p[0] != '{' || p[n - 1] != '}')
		return NULL;
	*len = n;
	return p;
}

/* ---------------------------------------------------------------------------------------- */
/* Output */

struct out {
	struct req *r;
	char buf[OUT_BUF];
	size_t n;
	int gone;
};

static void out_flush(struct out *o)
{
	if (!o->gone && o->n && req_write(o->r, o->buf, o->n) < 0)
		o->gone = 1;
	o->n = 0;
}

static void out_put(struct out *o, const char *s, size_t n)
{
	if (o->n + n > OUT_BUF) {
		out_flush(o);
		if (n > OUT_BUF) {
			if (!o->gone && req_write(o->r, s, n) < 0)
				o->gone = 1;
			return;
		}
	}
	memcpy(o->buf + o->n, s, n);
	o->n += n;
}

static void out_c(struct out *o, char c)
{
	if (o->n == OUT_BUF)
		out_flush(o);
	o->buf[o->n++] = c;
}

static void out_s(struct out *o, const char *s)
{
	out_put(o, s, strlen(s));
}

static int hex4(const char *s, unsigned *v)
{
	int i;

	*v = 0;
	for (i = 0; i < 4; i++) {
		char c = s[i];
		*v <<= 4;
		if (c >= '0' && c <= '9')
			*v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			*v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			*v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	return 0;
}

/* Decode the JSON string s[0..n) (quotes included) to its text, '"' doubled when csv. */
static void out_unescape(struct out *o, const char *s, size_t n, int csv)
{
	static const char named[] = "nrtbf"; /* one-letter escapes, for "\n\r\t\b\f" */
	const char *p = s + 1, *end = s + n - 1, *c;

	while (p < end) {
		const char *e = memchr(p, '\\', (size_t)(end - p));
		unsigned u, lo;
		char u8[4];
		if (e == NULL)
			e = end;
		out_put(o, p, (size_t)(e - p));
		if (e == end || e + 1 >= end)
			break;
		p = e + 2;
		if (e[1] != '\0' && (c = strchr(named, e[1])) != NULL) {
			out_c(o, "\n\r\t\b\f"[c - named]);
			continue;
		}
		switch (e[1]) {
		case '"':
			out_put(o, "\"\"", csv ? 2 : 1);
			break;
		case 'u':
			if (end - p < 4 || hex4(p, &u) < 0)
				break;
			p += 4;
			if (u >= 0xD800 && u < 0xDC00 && end - p >= 6 && p[0] == '\\' &&
			    p[1] == 'u' && hex4(p + 2, &lo) == 0 && lo >= 0xDC00 && lo < 0xE000) {
				u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
				p += 6;
			}
			if (u < 0x80) {
				out_c(o, (char)u);
			} else if (u < 0x800) {
				u8[0] = (char)(0xC0 | (u >> 6));
				u8[1] = (char)(0x80 | (u & 0x3F));
				out_put(o, u8, 2);
			} else if (u < 0x10000) {
				u8[0] = (char)(0xE0 | (u >> 12));
				u8[1] = (char)(0x80 | ((u >> 6) & 0x3F));
				u8[2] = (char)(0x80 | (u & 0x3F));
				out_put(o, u8, 3);
			} else {
				u8[0] = (char)(0xF0 | (u >> 18));
				u8[1] = (char)(0x80 | ((u >> 12) & 0x3F));
				u8[2] = (char)(0x80 | ((u >> 6) & 0x3F));
				u8[3] = (char)(0x80 | (u & 0x3F));
				out_put(o, u8, 4);
			}
			break;
		default: /* '\\', '/' */
			out_c(o, e[1]);
		}
	}
}

/* ---------------------------------------------------------------------------------------- */
/* Serving */

struct ctx {
	struct req *r;
	struct query *q;
	struct cols *cols;
	struct snapidx ix; /* the snapshot's (a copy of the handle's) */
	struct rd rd;
	struct out *out;
	struct snapidx_span *spans;
	int split;     /* rows must be split into values (filters, fields, CSV) */
	int filter;    /* rows must be tested */
	int body_only; /* an SSE payload: no head, already counted as long work */
	uint64_t nout;
};

/* Free a ctx and what it holds (NULL is fine). */
static void ctx_free(struct ctx *c)
{
	if (c == NULL)
		return;
	rd_done(&c->rd);
	free(c->spans);
	free(c->out);
	free(c);
}

static int span_is(const char *row, const struct snapidx_span *sp, const char *s, size_t n)
{
	return sp->len == n && memcmp(row + sp->off, s, n) == 0;
}

static int row_match(const struct ctx *c, const char *row)
{
	const struct query *q = c->q;
	const struct snapidx_span *sp;
	int i;

	for (i = 0; i < q->nfilters; i++)
		if (!span_is(row, &c->spans[q->filters[i].col], q->filters[i].json,
		             q->filters[i].json_len))
			return 0;
	if (q->updated_since[0]) {
		size_t n;
		int cmp;
		sp = &c->spans[c->ix.head.updated_col];
		if (row[sp->off] != '"')
			return 0; /* null */
		n = sp->len - 2;
		cmp = memcmp(row + sp->off + 1, q->updated_since, n < 19 ? n : 19);
		if (cmp < 0 || (cmp == 0 && n < 19))
			return 0;
	}
	if (q->since_id) {
		sp = &c->spans[c->ix.head.id_col];
		if (row[sp->off] != '"')
			return 0;
		if (c->ix.head.flags & SNAPIDX_IDS_INTEGER) {
			long long v;
			if (parse_int(row + sp->off + 1, sp->len - 2, &v) < 0 || v <= q->since_num)
				return 0;
		} else {
			/* Text order of the escaped values (the same as of the text but for
			 * control characters, which ids do not hold). */
			size_t n = strlen(q->since_id), m = sp->len - 2;
			char small[256],
			    *j = 6 * n + 3 <= sizeof(small) ? small : malloc(6 * n + 3);
			size_t jn;
			int cmp;
			if (j == NULL)
				return 0;
			jn = snapidx_json_string(j, q->since_id, n) - 2;
			cmp = memcmp(row + sp->off + 1, j + 1, m < jn ? m : jn);
			if (j != small)
				free(j);
			if (cmp < 0 || (cmp == 0 && m <= jn))
				return 0;
		}
	}
	return 1;
}

/* Read row i and test it. Returns 1 (match; *row, *len set), 0, or -1 (corrupt). */
static int row_get(struct ctx *c, uint64_t i, const char **row, size_t *len)
{
	const char *p = rd_row(&c->rd, i, len);

	if (p == NULL)
		return -1;
	if (c->split && snapidx_row_fields(p, *len, c->ix.head.ncols, c->spans) < 0)
		return -1;
	*row = p;
	return !c->filter || row_match(c, p);
}

static void emit_row(struct ctx *c, const char *row, size_t len)
{
	const struct query *q = c->q;
	struct out *o = c->out;
	int j, n = q->nfields ? q->nfields : (int)c->ix.head.ncols;

	if (q->fmt == QF_JSON && c->nout > 0)
		out_c(o, ',');
	c->nout++;
	if (q->fmt == QF_CSV) {
		for (j = 0; j < n; j++) {
			const struct snapidx_span *sp = &c->spans[q->nfields ? q->fields[j] : j];
			if (j)
				out_c(o, ',');
			if (row[sp->off] == '"') {
				out_c(o, '"');
				out_unescape(o, row + sp->off, sp->len, 1);
				out_c(o, '"');
			}
		}
		out_put(o, "\r\n", 2);
		return;
	}
	if (q->nfields == 0) {
		out_put(o, row, len);
	} else {
		out_c(o, '{');
		for (j = 0; j < n; j++) {
			int col = q->fields[j];
			if (j)
				out_c(o, ',');
			out_put(o, c->cols->json[col], c->cols->json_len[col]);
			out_c(o, ':');
			out_put(o, row + c->spans[col].off, c->spans[col].len);
		}
		out_c(o, '}');
	}
	if (q->fmt == QF_NDJSON)
		out_c(o, '\n');
}

static void emit_csv_header(struct ctx *c)
{
	const struct query *q = c->q;
	int j, n = q->nfields ? q->nfields : (int)c->ix.head.ncols;

	for (j = 0; j < n; j++) {
		int col = q->nfields ? q->fields[j] : j;
		if (j)
			out_c(c->out, ',');
		out_c(c->out, '"');
		out_unescape(c->out, c->cols->json[col], c->cols->json_len[col], 1);
		out_c(c->out, '"');
	}
	out_put(c->out, "\r\n", 2);
}

/* Whether rows go out as the snapshot has them, joined by its commas: JSON, all fields. */
static int raw_json(const struct ctx *c)
{
	return c->q->fmt == QF_JSON && !c->filter && c->q->nfields == 0;
}

/* The decoded id of row i (for the next page's after=), in a new string. */
static char *row_id(struct ctx *c, uint64_t i)
{
	const char *row;
	size_t len;
	struct out *o;
	char *s = NULL;
	const struct snapidx_span *sp;

	row = rd_row(&c->rd, i, &len);
	if (row == NULL || snapidx_row_fields(row, len, c->ix.head.ncols, c->spans) < 0)
		return NULL;
	sp = &c->spans[c->ix.head.id_col];
	/* Decoding never makes a string longer: the id fits the buffer, which is never flushed. */
	if (row[sp->off] != '"' || sp->len >= OUT_BUF || (o = calloc(1, sizeof(*o))) == NULL)
		return NULL;
	o->gone = 1; /* collect only */
	out_unescape(o, row + sp->off, sp->len, 0);
	if (memchr(o->buf, '\0', o->n) == NULL && (s = malloc(o->n + 1))) {
		memcpy(s, o->buf, o->n);
		s[o->n] = '\0';
	}
	free(o);
	return s;
}

/* The path the client asked for (before '?'), if it is plain, else /fetch-data. */
static void req_path(struct req *r, char *out, size_t len)
{
	const char *u = req_param(r, "REQUEST_URI");
	size_t n = u ? strcspn(u, "?") : 0;

	if (n == 0 || n >= len || u[0] != '/' ||
	    strspn(u, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/-._~") < n)
		snprintf(out, len, "/fetch-data");
	else
		snprintf(out, len, "%.*s", (int)n, u);
}

static const char *const ctypes[] = {"application/json", "application/x-ndjson",
                                     "text/csv; charset=utf-8; header=present"};

static void head_ok(struct req *r, const struct query *q, const char *etag, const char *lm,
                    const char *link)
{
	req_header(r,
	           "Status: 200 OK\r\nContent-Type: %s\r\nCache-Control: private, no-cache\r\n"
	           "ETag: %s\r\nLast-Modified: %s\r\nVary: Accept\r\n%s%s%s\r\n",
	           ctypes[q->fmt], etag, lm, link ? "Link: <" : "", link ? link : "",
	           link ? ">; rel=\"next\"\r\n" : "");
}

static void serve_changes(struct req *r, const struct query *q, const struct cache_snap *s, int dfd,
                          const char *etag, const char *lm)
{
	const char *v = q->changes_since;
	char from[64], rel[128], head[256];
	struct stat st;
	size_t n;
	int fd;

	if (strncmp(v, "W/", 2) == 0)
		v += 2;
	n = strlen(v);
	if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
		v++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof(from) || strspn(v, "0123456789abcdef-") < n ||
	    memchr(v, '-', n) == NULL || v[0] == '-' || v[n - 1] == '-') {
		req_error(r, 400, NULL,
		          "query parameter 'changes_since' must be an ETag of /fetch-data");
		return;
	}
	snprintf(from, sizeof(from), "%.*s", (int)n, v);
	snprintf(head, sizeof(head),
	         "{\"status\":\"success\",\"from\":\"\\\"%s\\\"\",\"to\":\"\\\"%s\\\"\",", from,
	         s->id);
	if (strcmp(from, s->id) == 0) {
		head_ok(r, q, etag, lm, NULL);
		if (!r->head) {
			req_write(r, head, strlen(head));
			req_write(r, "\"added\":[],\"changed\":[],\"deleted\":[]}", 38);
		}
		return;
	}
	snprintf(rel, sizeof(rel), "%s/%s.json", SNAPIDX_CHANGES, from);
	fd = openat(dfd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		if (fd < 0 && e != ENOENT) {
			log_err("changes_since: %s: %s", rel, strerror(e));
			req_error(r, 500, NULL, "Error reading cache");
			return;
		}
		req_error(r, 410, NULL,
		          "changes_since: that snapshot is no longer kept (keep_snapshots): "
		          "fetch everything again");
		return;
	}
	head_ok(r, q, etag, lm, NULL);
	if (!r->head && req_write(r, head, strlen(head)) == 0)
		req_copy_body(r, fd, 0, st.st_size);
	close(fd);
}

/* Where the page starts: row number (after offset or after). Returns 0, or -1 answered. */
static int page_start(struct ctx *c, uint64_t *start)
{
	const struct query *q = c->q;
	char sn[80];

	*start = 0;
	if (q->after) {
		size_t n = strlen(q->after), len;
		char *j = malloc(6 * n + 3);
		const char *row;
		long long i = -1;
		if (j == NULL) {
			req_error(c->r, 500, NULL, "Out of memory");
			return -1;
		}
		n = snapidx_json_string(j, q->after, n);
		if (!(c->ix.head.flags & SNAPIDX_IDS_UNIQUE)) {
			free(j);
			req_error(
			    c->r, 400, NULL,
			    "query parameter 'after' needs unique ids (id_column): use offset");
			return -1;
		}
		i = snapidx_find(&c->ix, j, n);
		if (i >= 0 && ((row = rd_row(&c->rd, (uint64_t)i, &len)) == NULL ||
		               snapidx_row_fields(row, len, c->ix.head.ncols, c->spans) < 0 ||
		               !span_is(row, &c->spans[c->ix.head.id_col], j, n)))
			i = -1;
		free(j);
		if (i < 0) {
			char msg[160];
			snprintf(msg, sizeof(msg), "query parameter 'after': no row has id '%s'",
			         safe(q->after, sn, sizeof(sn)));
			req_error(c->r, 400, NULL, msg);
			return -1;
		}
		*start = (uint64_t)i + 1;
	}
	return 0;
}

static void serve_rows(struct ctx *c, const struct cache_snap *s, const char *etag, const char *lm,
                       const char *info)
{
	struct req *r = c->r;
	const struct query *q = c->q;
	uint64_t nrows = c->ix.head.nrows, start, i, *sel = NULL, nsel = 0, total = 0;
	long long skip = q->offset;
	int more = 0, counted = 0, bad = 0, m;
	char *link = NULL, *next = NULL, path[256], pre[160];
	const char *row;
	size_t len;

	if (page_start(c, &start) < 0)
		return;
	snprintf(pre, sizeof(pre), "{\"status\":\"success\",%s%s%s", info ? "\"_info\":\"" : "",
	         info ? info : "", info ? "\"," : "");
	if (q->limit) {
		/* A page: choose its rows first (and the total), then answer. */
		if ((sel = malloc((size_t)q->limit * sizeof(*sel))) == NULL) {
			req_error(r, 500, NULL, "Out of memory");
			return;
		}
		if (!c->filter) {
			total = nrows;
			if (start < nrows && (uint64_t)skip < nrows - start)
				start += (uint64_t)skip;
			else
				start = nrows;
			for (i = start; i < nrows && nsel < (uint64_t)q->limit; i++)
				sel[nsel++] = i;
			more = i < nrows;
		} else {
			/* The whole table is read (for total): long work, within its budget. */
			if (!c->body_only && !(counted = req_long_begin())) {
				req_error(r, 503, "Retry-After: 1\r\n", "Too busy: retry");
				goto out;
			}
			rd_scan(&c->rd, 0);
			for (i = 0; i < nrows && !bad; i++) {
				rd_release(&c->rd, i);
				if ((m = row_get(c, i, &row, &len)) < 0)
					bad = 1;
				if (m <= 0)
					continue;
				total++;
				if (i < start)
					continue;
				if (skip > 0)
					skip--;
				else if (nsel < (uint64_t)q->limit)
					sel[nsel++] = i;
				else
					more = 1;
			}
		}
		if (bad) {
			log_err("fetch-data query: snapshot %s: row %llu does not read as a row",
			        s->id, (unsigned long long)(i - 1));
			req_error(r, 500, NULL, "Error reading cache");
			goto out;
		}
		if (more && nsel > 0) {
			char *id = q->after ? row_id(c, sel[nsel - 1]) : NULL;
			char *cq = q->after ? (id ? query_canonical(q, -1, id) : NULL)
			                    : query_canonical(q, q->offset + (long long)nsel, NULL);
			free(id);
			req_path(r, path, sizeof(path));
			if (cq && (next = malloc(strlen(path) + strlen(cq) + 2)) != NULL)
				sprintf(next, "%s?%s", path, cq);
			free(cq);
			link = next;
		}
		head_ok(r, q, etag, lm, link);
		if (r->head)
			goto out;
		if (q->fmt == QF_JSON) {
			char num[128];
			out_s(c->out, pre);
			snprintf(num, sizeof(num), "\"count\":%llu,\"total\":%llu,",
			         (unsigned long long)nsel, (unsigned long long)total);
			out_s(c->out, num);
			out_s(c->out, "\"last_updated\":\"");
			out_s(c->out, s->last_updated);
			out_s(c->out, "\",\"data\":[");
		} else if (q->fmt == QF_CSV) {
			emit_csv_header(c);
		}
		/* The whole rows of an unfiltered JSON page are one range of the snapshot, commas
		 * included: copied as they are. */
		if (raw_json(c) && nsel > 0) {
			out_flush(c->out);
			if (!c->out->gone &&
			    req_copy_body(r, c->rd.fd, (off_t)c->ix.off[sel[0]],
			                  (long long)(c->ix.off[sel[nsel - 1] + 1] - 1 -
			                              c->ix.off[sel[0]])) < 0)
				c->out->gone = 1;
			nsel = 0;
		}
		for (i = 0; i < nsel && !c->out->gone; i++) {
			if (row_get(c, sel[i], &row, &len) < 0) {
				log_err("fetch-data query: snapshot %s: row %llu unreadable", s->id,
				        (unsigned long long)sel[i]);
				break;
			}
			emit_row(c, row, len);
		}
		if (q->fmt == QF_JSON) {
			out_s(c->out, "],\"next\":");
			if (next) {
				out_c(c->out, '"');
				out_s(c->out, next);
				out_c(c->out, '"');
			} else {
				out_s(c->out, "null");
			}
			out_c(c->out, '}');
		}
		out_flush(c->out);
		goto out;
	}

	/* No limit: the whole result, streamed (long work). */
	if (!c->body_only && !(counted = req_long_begin())) {
		req_error(r, 503, "Retry-After: 1\r\n", "Too busy: retry");
		return;
	}
	if (!c->filter) {
		if (start < nrows && (uint64_t)skip < nrows - start)
			start += (uint64_t)skip;
		else
			start = nrows;
		skip = 0;
	}
	if (!c->body_only)
		head_ok(r, q, etag, lm, NULL);
	if (r->head)
		goto out;
	if (q->fmt == QF_JSON) {
		out_s(c->out, pre);
		if (!c->filter) {
			char num[128];
			snprintf(num, sizeof(num), "\"count\":%llu,\"total\":%llu,",
			         (unsigned long long)(nrows - start),
			         (unsigned long long)(nrows - start));
			out_s(c->out, num);
		}
		out_s(c->out, "\"last_updated\":\"");
		out_s(c->out, s->last_updated);
		out_s(c->out, "\",\"data\":[");
	} else if (q->fmt == QF_CSV) {
		emit_csv_header(c);
	}
	if (raw_json(c) && start < nrows) {
		out_flush(c->out);
		if (!c->out->gone &&
		    req_copy_body(r, c->rd.fd, (off_t)c->ix.off[start],
		                  (long long)(c->ix.off[nrows] - 1 - c->ix.off[start])) < 0)
			c->out->gone = 1;
		start = nrows;
	}
	rd_scan(&c->rd, start);
	for (i = start; i < nrows && !c->out->gone; i++) {
		rd_release(&c->rd, i);
		if ((m = row_get(c, i, &row, &len)) < 0) {
			log_err("fetch-data query: snapshot %s: row %llu does not read as a row",
			        s->id, (unsigned long long)i);
			bad = 1;
			break;
		}
		if (m == 0)
			continue;
		if (skip > 0) {
			skip--;
			continue;
		}
		emit_row(c, row, len);
	}
	if (q->fmt == QF_JSON && !bad) {
		char num[128];
		if (c->filter)
			snprintf(num, sizeof(num), "],\"count\":%llu,\"total\":%llu,\"next\":null}",
			         (unsigned long long)c->nout, (unsigned long long)c->nout);
		else
			snprintf(num, sizeof(num), "],\"next\":null}");
		out_s(c->out, num);
	}
	out_flush(c->out);
out:
	if (counted)
		req_long_end();
	free(sel);
	free(next);
}

void query_serve(struct req *r, query_trigger_fn trigger)
{
	const char *info = NULL;
	struct query q;
	const struct cache_snap *s;
	struct snap *h = NULL;
	struct ctx *c = NULL;
	char err[512], etag[128], lm[64];
	char *canon = NULL;
	struct tm tm;
	int rc;

	if (query_parse(&q, req_param(r, "QUERY_STRING"), req_param(r, "HTTP_ACCEPT"), err,
	                sizeof(err)) < 0) {
		req_error(r, 400, NULL, err);
		goto out;
	}
	h = snap_get(r->cf->cache_dir, &rc, err, sizeof(err));
	if (rc == 1) {
		req_error(r, 503, NULL, "No cached data");
		goto out;
	}
	if (h == NULL) {
		log_err("fetch-data query: %s", err);
		req_error(r, 500, NULL, "Error reading cache");
		goto out;
	}
	if (h->noindex) {
		req_error(r, 503, "Retry-After: 60\r\n",
		          "This snapshot has no query index: the next sync builds it");
		goto out;
	}
	s = &h->s;
	if ((c = calloc(1, sizeof(*c))) == NULL || (c->out = malloc(sizeof(*c->out))) == NULL) {
		req_error(r, 500, NULL, "Out of memory");
		goto out;
	}
	c->r = r;
	c->q = &q;
	c->out->r = r;
	c->out->n = 0;
	c->out->gone = 0;
	c->ix = h->ix;
	c->cols = h->cols;
	if (query_resolve(&q, (const char *const *)c->cols->names, c->cols->n, c->ix.head.id_col,
	                  c->ix.head.updated_col, !!(c->ix.head.flags & SNAPIDX_IDS_INTEGER), err,
	                  sizeof(err)) < 0) {
		req_error(r, 400, NULL, err);
		goto out;
	}
	/* HEAD has no side effects; a bad query starts nothing either. */
	if (trigger && !r->head && (info = trigger(r)) == NULL) {
		req_error(r, 500, NULL, "Could not start the refresh");
		goto out;
	}
	if ((canon = query_canonical(&q, -1, NULL)) == NULL) {
		req_error(r, 500, NULL, "Out of memory");
		goto out;
	}
	snprintf(etag, sizeof(etag), "\"%s-q%016llx\"", s->id,
	         (unsigned long long)snapidx_hash(canon, strlen(canon)));
	gmtime_r(&s->mtime, &tm);
	strftime(lm, sizeof(lm), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (req_etag_match(req_param(r, "HTTP_IF_NONE_MATCH"), etag)) {
		req_header(r,
		           "Status: 304 Not Modified\r\nETag: %s\r\nLast-Modified: %s\r\n"
		           "Cache-Control: private, no-cache\r\nVary: Accept\r\n\r\n",
		           etag, lm);
		goto out;
	}
	if (q.changes_since) {
		serve_changes(r, &q, s, h->dfd, etag, lm);
		goto out;
	}
	c->filter = q.nfilters > 0 || q.updated_since[0] || q.since_id;
	c->split = c->filter || q.nfields > 0 || q.fmt == QF_CSV;
	if ((c->spans = calloc(c->ix.head.ncols + 1, sizeof(*c->spans))) == NULL) {
		req_error(r, 500, NULL, "Out of memory");
		goto out;
	}
	rd_init(&c->rd, s->fd, &c->ix);
	serve_rows(c, s, etag, lm, info);
out:
	ctx_free(c);
	snap_put(h);
	free(canon);
	query_free(&q);
}

/* ---------------------------------------------------------------------------------------- */
/* Server-Sent Events: fields and filters */

struct query *query_sse_parse(struct req *r, char *err, size_t errlen)
{
	struct query *q = malloc(sizeof(*q));
	int rc;

	err[0] = '\0';
	if (q == NULL) {
		snprintf(err, errlen, "Out of memory");
		return NULL;
	}
	if (query_parse(q, req_param(r, "QUERY_STRING"), NULL, err, errlen) < 0)
		goto bad;
	if (q->limit || q->offset_set || q->after || q->changes_since || q->fmt != QF_JSON) {
		snprintf(err, errlen,
		         "stream=true takes fields and filters only (no limit, offset, "
		         "after, format or changes_since)");
		goto bad;
	}
	if (!q->any)
		goto none;
	/* Names checked against the snapshot of now, so that a typo is a 400 rather than a
	 * stream of null payloads (a later snapshot is checked again, event by event). */
	{
		struct snap *h = snap_get(r->cf->cache_dir, &rc, err, errlen);
		err[0] = '\0';
		if (h && !h->noindex &&
		    query_resolve(q, (const char *const *)h->cols->names, h->cols->n,
		                  h->ix.head.id_col, h->ix.head.updated_col,
		                  !!(h->ix.head.flags & SNAPIDX_IDS_INTEGER), err, errlen) < 0) {
			snap_put(h);
			goto bad;
		}
		snap_put(h);
	}
	return q;
none:
	err[0] = '\0';
bad:
	query_sse_free(q);
	return NULL;
}

void query_sse_free(struct query *q)
{
	if (q) {
		query_free(q);
		free(q);
	}
}

int query_sse_body(struct req *r, struct query *q, char *err, size_t errlen)
{
	struct snap *h;
	struct ctx *c = NULL;
	int rc, i, ret = -2;

	/* Resolved against this snapshot's columns: a later one may have others. */
	for (i = 0; i < q->nfilters; i++) {
		free(q->filters[i].json);
		q->filters[i].json = NULL;
		q->filters[i].col = -1;
	}
	q->nfields = 0;
	h = snap_get(r->cf->cache_dir, &rc, err, errlen);
	if (h == NULL) {
		if (rc < 0)
			log_err("sse query: %s", err);
		snprintf(err, errlen, "%s", rc == 1 ? "No cached data" : "Error reading cache");
		return -2;
	}
	if (h->noindex) {
		snprintf(err, errlen, "This snapshot has no query index: the next sync builds it");
		goto out;
	}
	if (query_resolve(q, (const char *const *)h->cols->names, h->cols->n, h->ix.head.id_col,
	                  h->ix.head.updated_col, !!(h->ix.head.flags & SNAPIDX_IDS_INTEGER), err,
	                  errlen) < 0)
		goto out;
	if ((c = calloc(1, sizeof(*c))) == NULL || (c->out = malloc(sizeof(*c->out))) == NULL ||
	    (c->spans = calloc(h->ix.head.ncols + 1, sizeof(*c->spans))) == NULL) {
		snprintf(err, errlen, "Out of memory");
		goto out;
	}
	c->r = r;
	c->q = q;
	c->out->r = r;
	c->out->n = 0;
	c->out->gone = 0;
	c->ix = h->ix;
	c->cols = h->cols;
	c->body_only = 1;
	c->filter = q->nfilters > 0 || q->updated_since[0] || q->since_id;
	c->split = c->filter || q->nfields > 0;
	rd_init(&c->rd, h->s.fd, &c->ix);
	serve_rows(c, &h->s, "", "", NULL);
	ret = c->out->gone ? -1 : 0;
out:
	ctx_free(c);
	snap_put(h);
	return ret;
}

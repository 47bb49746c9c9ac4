/* snapidx: the index's hash, row splitter, string escaper and reader (common/snapidx.c). */
#include "../../common/snapidx.h"
#include "../../sync/csv.h"
#include "t.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A CSV of hostile values: quotes, backslashes, line ends, UTF-8 (valid and not), NULL and
 * "NULL", empty, control bytes, commas, a JSON-looking value, escaped column names. */
const char t_snapidx_hostile_csv[] =
    "\"id\",\"na\"\"me\",\"b\\\\s\",\"note\"\n"
    "\"1\",\"plain\",\"\",NULL\n"
    "\"2\",\"he said \"\"hi\"\"\",\"back\\\\slash\\\\\",\"NULL\"\n"
    "\"3\",\"line\nbreak\r\nand\rcr\",\"\t\x01\x1f\x7f\",\"\xf0\x9f\x8e\x89 \xe8\xab\x8b\"\n"
    "\"4\",\"bad \xff\xe2\x82 utf8\",\"{\"\"a\"\":[1,\"\"}\"\"]}\",\n"
    "\"\",,\"\\\"\"\",\"a,b,\"\"c\"\"\"\n"
    "NULL,NULL,NULL,NULL\n"
    "\"7\",\"\\\\\",\"\\\\\"\"\",\"\"\"\\\\\"\"\\\\\"\n";

/* Row i of a converted body's "data", as bytes: found by json-c's offsets is not possible,
 * so the test splits the body with snapidx_row_prefix and compares values with json-c. */
static void check_rows_against_jsonc(const char *body, const char *what)
{
	struct json_object *doc = json_tokener_parse(body), *data, *cols;
	const char *p = strstr(body, "\"data\":[");
	size_t n, i, ncols;

	CHECK(doc && json_object_object_get_ex(doc, "data", &data) && p, "%s: parses", what);
	if (doc == NULL || p == NULL)
		return;
	json_object_object_get_ex(doc, "data", &data);
	n = json_object_array_length(data);
	p += 8;
	for (i = 0; i < n; i++) {
		struct json_object *row = json_object_array_get_idx(data, i);
		struct snapidx_span sp[16];
		/* the row ends at its '}' followed by ',' or ']' : find it by scanning spans */
		long k;
		size_t len = 0;
		ncols = (size_t)json_object_object_length(row);
		/* try lengths: the row ends at the first "}," or "}]" that makes a whole row */
		for (const char *q = p; *q; q++) {
			if (*q == '}' && (q[1] == ',' || q[1] == ']') &&
			    snapidx_row_fields(p, (size_t)(q - p + 1), (uint32_t)ncols, sp) == 0) {
				len = (size_t)(q - p + 1);
				break;
			}
		}
		CHECK(len > 0, "%s: row %zu splits into %zu fields", what, i, ncols);
		if (len == 0)
			return;
		k = snapidx_row_prefix(p, len, 1000, NULL);
		CHECK(k == (long)ncols, "%s: row %zu counts %ld columns, not %zu", what, i, k,
		      ncols);
		cols = row;
		{
			size_t c = 0;
			json_object_object_foreach(cols, key, val)
			{
				char *v = strndup(p + sp[c].off, sp[c].len);
				struct json_object *jv = json_tokener_parse(v);
				int same = val == NULL ? (jv == NULL && strcmp(v, "null") == 0)
				                       : (jv && json_object_equal(jv, val));
				CHECK(same, "%s: row %zu column %s: span %s", what, i, key, v);
				json_object_put(jv);
				free(v);
				c++;
			}
		}
		p += len + 1;
	}
	json_object_put(doc);
}

static char *convert(const char *csv, size_t len)
{
	int fds[2];
	struct csv_out out = {.fd = -1};
	struct csv_result res;
	char err[256];
	int rc;

	if (pipe(fds) < 0)
		return NULL;
	if (write(fds[1], csv, len) != (ssize_t)len) {
		close(fds[0]);
		close(fds[1]);
		return NULL;
	}
	close(fds[1]);
	rc = csv_convert(fds[0], "t.csv", &out, "2026-01-01T00:00:00Z", &res, NULL, err,
	                 sizeof(err));
	close(fds[0]);
	free(res.columns);
	return rc == 0 ? out.mem : NULL;
}

static void test_hash(void)
{
	const char *a = "\"12345\"";
	char buf[64];

	/* Stable: stored in keys.idx, so a change of function is a change of format. */
	CHECK(snapidx_hash(a, strlen(a)) == snapidx_hash("\"12345\"", 7), "deterministic");
	CHECK(snapidx_hash("", 0) != snapidx_hash("\0", 1), "length counts");
	CHECK(snapidx_hash("a", 1) != snapidx_hash("b", 1), "a byte counts");
	/* every length around the word sizes, every byte position changes the hash */
	for (size_t len = 1; len <= 40; len++) {
		uint64_t h0;
		memset(buf, 'x', sizeof(buf));
		h0 = snapidx_hash(buf, len);
		for (size_t i = 0; i < len; i++) {
			buf[i] = 'y';
			CHECK(snapidx_hash(buf, len) != h0, "len %zu: byte %zu counts", len, i);
			buf[i] = 'x';
		}
		CHECK(snapidx_hash(buf, len) != snapidx_hash(buf, len + 1), "len %zu vs +1", len);
	}
	CHECK(snapidx_hash("\"1\"", 3) == 0x8dbef84226930404ULL,
	      "the stored function is unchanged (got %#llx)",
	      (unsigned long long)snapidx_hash("\"1\"", 3));
}

static void test_row_fields(void)
{
	struct snapidx_span sp[4];
	const char *r = "{\"a\":\"x\\\"y\",\"b\\\"\":null,\"c\":\"\\\\\"}";

	CHECK(snapidx_row_fields(r, strlen(r), 3, sp) == 0, "a row of 3");
	CHECK(sp[0].len == 6 && memcmp(r + sp[0].off, "\"x\\\"y\"", 6) == 0, "escaped quote");
	CHECK(sp[1].len == 4 && memcmp(r + sp[1].off, "null", 4) == 0, "null");
	CHECK(sp[2].len == 4 && memcmp(r + sp[2].off, "\"\\\\\"", 4) == 0, "escaped backslash");
	CHECK(snapidx_row_fields(r, strlen(r), 2, sp) == -1, "too many columns for 2");
	CHECK(snapidx_row_fields(r, strlen(r), 4, sp) == -1, "too few columns for 4");
	CHECK(snapidx_row_prefix(r, strlen(r), 1, sp) == 1 && sp[0].len == 6, "prefix of 1");
	CHECK(snapidx_row_fields(r, strlen(r) - 1, 3, sp) == -1, "cut before }");
	CHECK(snapidx_row_fields("{\"a\":\"x}", 8, 1, sp) == -1, "unterminated string");
	CHECK(snapidx_row_fields("{\"a\":1}", 7, 1, sp) == -1, "a number is not a value here");
	CHECK(snapidx_row_fields("{\"a\":nul}", 9, 1, sp) == -1, "nul");
	CHECK(snapidx_row_fields("{\"a\":null}x", 11, 1, sp) == -1, "trailing byte");
	CHECK(snapidx_row_fields("[\"a\"]", 5, 1, sp) == -1, "not an object");
	CHECK(snapidx_row_fields("{\"a\":\"\\\\\\\"}", 11, 1, sp) == -1, "\\\\\\\" is no end");
	CHECK(snapidx_row_fields("", 0, 1, sp) == -1, "empty");
}

static void test_rows_hostile(void)
{
	char *body = convert(t_snapidx_hostile_csv, sizeof(t_snapidx_hostile_csv) - 1);

	CHECK(body != NULL, "the hostile CSV converts");
	if (body)
		check_rows_against_jsonc(body, "hostile");
	free(body);
}

static void test_escape_same(void)
{
	unsigned seed = 12345;
	char in[64], a[6 * 64 + 3], b[6 * 64 + 3];
	static const unsigned char pick[] = {'a',  '"',  '\\', '\n', '\r', 0,    0x1f, 0x7f,
	                                     0x80, 0xbf, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0,
	                                     0xf4, 0xf5, 0xff, 0xa0, 0x90, 0x8f, ',',  0xc0};
	int bad = 0;

	for (int round = 0; round < 20000; round++) {
		size_t len = (size_t)(rand_r(&seed) % 24), na, nb;
		for (size_t i = 0; i < len; i++)
			in[i] = (char)(rand_r(&seed) % 2 ? pick[rand_r(&seed) % sizeof(pick)]
			                                 : rand_r(&seed) % 256);
		na = csv_json_escape(a + 1, in, len);
		a[0] = '"';
		a[na + 1] = '"';
		nb = snapidx_json_string(b, in, len);
		if (nb != na + 2 || memcmp(a, b, nb) != 0)
			bad++;
	}
	CHECK(bad == 0, "snapidx_json_string escapes as csv_json_escape: %d of 20000 differ", bad);
}

/* Write an index by hand into dir: nrows rows at offsets 10, 20, ...; keys for ids. */
static int put(int dfd, const char *name, const void *a, size_t na, const void *b, size_t nb)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int rc = 0;

	if (fd < 0)
		return -1;
	if (write(fd, a, na) != (ssize_t)na || (nb && write(fd, b, nb) != (ssize_t)nb))
		rc = -1;
	close(fd);
	return rc;
}

static void test_open_find(void)
{
	struct snapidx_head h;
	struct snapidx_key k[3];
	uint64_t off[4] = {10, 20, 30, 41};
	const char *ids[3] = {"\"a\"", "\"b\"", "\"c\""};
	char dir[] = "/tmp/pmacache-snapidx.XXXXXX", err[256];
	struct snapidx ix;
	int dfd;

	if (mkdtemp(dir) == NULL || (dfd = open(dir, O_RDONLY | O_DIRECTORY)) < 0) {
		CHECK(0, "temp folder");
		return;
	}
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, SNAPIDX_MAGIC_ROWS, 8);
	h.nrows = 3;
	h.nkeys = 4;
	h.ncols = 2;
	h.id_col = 0;
	h.updated_col = -1;
	h.flags = SNAPIDX_IDS_UNIQUE;
	h.data_size = 42;
	for (int i = 0; i < 3; i++) {
		k[i].pk_hash = snapidx_hash(ids[i], 3);
		k[i].row_hash = (uint64_t)i;
		k[i].row = (uint64_t)i;
	}
	/* sorted by pk_hash, as the writer sorts */
	for (int i = 0; i < 3; i++)
		for (int j = i + 1; j < 3; j++)
			if (k[j].pk_hash < k[i].pk_hash) {
				struct snapidx_key t = k[i];
				k[i] = k[j];
				k[j] = t;
			}
	put(dfd, SNAPIDX_ROWS, &h, sizeof(h), off, sizeof(off));

	CHECK(snapidx_open(dfd, 42, &ix, err, sizeof(err)) == 0, "rows.idx alone opens: %s", err);
	CHECK(ix.head.nrows == 3 && ix.off[3] == 41 && ix.keys == NULL, "rows, no keys");
	CHECK(snapidx_find(&ix, "\"a\"", 3) == -1, "no keys: not found");
	snapidx_close(&ix);

	memcpy(h.magic, SNAPIDX_MAGIC_KEYS, 8);
	h.nkeys = 3;
	put(dfd, SNAPIDX_KEYS, &h, sizeof(h), k, sizeof(k));
	CHECK(snapidx_open(dfd, 42, &ix, err, sizeof(err)) == 0, "rows and keys open: %s", err);
	CHECK(ix.nkeys == 3 && ix.keys != NULL, "3 keys");
	for (int i = 0; i < 3; i++)
		CHECK(snapidx_find(&ix, ids[i], 3) == i, "find %s", ids[i]);
	CHECK(snapidx_find(&ix, "\"d\"", 3) == -1, "an absent id");
	CHECK(snapidx_find(&ix, "\"a", 2) == -1, "a prefix is absent");
	snapidx_close(&ix);

	err[0] = '\0';
	CHECK(snapidx_open(dfd, 43, &ix, err, sizeof(err)) == -1 && strstr(err, "42-byte body"),
	      "another body's index is refused: %s", err);
	CHECK(ix.off == NULL && ix.keys == NULL, "nothing left mapped");

	/* keys.idx truncated */
	put(dfd, SNAPIDX_KEYS, &h, sizeof(h), k, sizeof(k) - 1);
	CHECK(snapidx_open(dfd, 42, &ix, err, sizeof(err)) == -1 && strstr(err, "keys.idx"),
	      "truncated keys.idx: %s", err);
	unlinkat(dfd, SNAPIDX_KEYS, 0);

	/* rows.idx truncated, bad magic, empty, missing */
	memcpy(h.magic, SNAPIDX_MAGIC_ROWS, 8);
	h.nkeys = 4;
	put(dfd, SNAPIDX_ROWS, &h, sizeof(h), off, sizeof(off) - 8);
	CHECK(snapidx_open(dfd, 42, &ix, err, sizeof(err)) == -1 && strstr(err, "truncated"),
	      "truncated rows.idx: %s", err);
	memcpy(h.magic, "PMCROWS0", 8);
	put(dfd, SNAPIDX_ROWS, &h, sizeof(h), off, sizeof(off));
	CHECK(snapidx_open(dfd, 42, &ix, err, sizeof(err)) == -1 && strstr(err, "bad magic"),
	      "bad magic: %s", err);
	memcpy(h.magic, SNAPIDX_MAGIC_ROWS, 8);
	off[3] = 43;
	put(dfd, SNAPIDX_ROWS, &h, sizeof(h), off, sizeof(off));
	CHECK(snapidx_open(dfd, 42, &ix, err, sizeof(err)) == -1 && strstr(err, "out of range"),
	      "an offset past the body: %s", err);
	put(dfd, SNAPIDX_ROWS, "", 0, NULL, 0);
	CHECK(snapidx_open(dfd, 42, &ix, err, sizeof(err)) == -1 && strstr(err, "not an index"),
	      "empty rows.idx: %s", err);
	unlinkat(dfd, SNAPIDX_ROWS, 0);
	CHECK(snapidx_open(dfd, 42, &ix, err, sizeof(err)) == -1 && errno == ENOENT &&
	          strstr(err, "rows.idx"),
	      "no rows.idx: %s", err);
	close(dfd);
	rmdir(dir);
}

void test_snapidx(void)
{
	test_hash();
	test_row_fields();
	test_rows_hostile();
	test_escape_same();
	test_open_find();
}

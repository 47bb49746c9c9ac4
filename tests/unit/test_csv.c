#include "../../sync/csv.h"
#include "t.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

/* Input, and either the expected "data" array (JSON) or the expected error. */
static const struct {
	const char *name;
	const char *in;
	size_t len; /* 0: strlen(in) */
	const char *data;
	const char *err;
} cases[] = {
    {"LF", "\"a\",\"b\"\n\"1\",\"2\"\n", 0, "[{\"a\":\"1\",\"b\":\"2\"}]", NULL},
    {"CRLF", "\"a\",\"b\"\r\n\"1\",\"2\"\r\n\"3\",\"4\"\r\n", 0,
     "[{\"a\":\"1\",\"b\":\"2\"},{\"a\":\"3\",\"b\":\"4\"}]", NULL},
    {"no final newline", "\"a\",\"b\"\n\"1\",\"2\"", 0, "[{\"a\":\"1\",\"b\":\"2\"}]", NULL},
    {"BOM", "\xef\xbb\xbf\"a\"\n\"1\"\n", 0, "[{\"a\":\"1\"}]", NULL},
    {"doubled quotes", "\"x\"\n\"he said \"\"hi\"\"\"\n", 0, "[{\"x\":\"he said \\\"hi\\\"\"}]",
     NULL},
    {"only a quote", "\"x\"\n\"\"\"\"\n", 0, "[{\"x\":\"\\\"\"}]", NULL},
    {"quotes last, then the next field", "\"x\",\"y\"\n\"a\"\"\"\"\",\"\"\"\"\n", 0,
     "[{\"x\":\"a\\\"\\\"\",\"y\":\"\\\"\"}]", NULL},
    {"comma inside", "\"x\",\"y\"\n\"a,b\",\"c\"\n", 0, "[{\"x\":\"a,b\",\"y\":\"c\"}]", NULL},
    {"empty bare", "\"x\",\"y\",\"z\"\n,,\n", 0, "[{\"x\":\"\",\"y\":\"\",\"z\":\"\"}]", NULL},
    {"NULL bare is null", "\"x\",\"y\"\nNULL,\"NULL\"\n", 0, "[{\"x\":null,\"y\":\"NULL\"}]", NULL},
    {"NULL-like bare", "\"x\",\"y\",\"z\"\nNUL,NULLX,null\n", 0,
     "[{\"x\":\"NUL\",\"y\":\"NULLX\",\"z\":\"null\"}]", NULL},
    {"NULL last, CRLF", "\"x\",\"y\"\r\n\"1\",NULL\r\n", 0, "[{\"x\":\"1\",\"y\":null}]", NULL},
    {"bare number", "\"x\"\n42\n", 0, "[{\"x\":\"42\"}]", NULL},
    {"bare control chars (found by fuzzing)", "\"x\",\"y\"\n\"1\",\x01\x1a\tz\n", 0,
     "[{\"x\":\"1\",\"y\":\"\\u0001\\u001a\\tz\"}]", NULL},
    {"bare NUL (found by fuzzing)", "\"x\",\"y\"\n\"1\",\0\x1ant\n", 16,
     "[{\"x\":\"1\",\"y\":\"\\u0000\\u001ant\"}]", NULL},
    {"raw LF in value", "\"x\"\n\"a\nb\"\n", 0, "[{\"x\":\"a\\nb\"}]", NULL},
    {"raw CRLF in value", "\"x\"\n\"a\r\nb\"\n", 0, "[{\"x\":\"a\\r\\nb\"}]", NULL},
    {"raw CR in value", "\"x\"\n\"a\rb\"\n", 0, "[{\"x\":\"a\\rb\"}]", NULL},
    {"tab and backslash", "\"x\"\n\"a\tb\\c\\\\N\"\n", 0, "[{\"x\":\"a\\tb\\\\c\\\\\\\\N\"}]",
     NULL},
    {"control chars", "\"x\"\n\"\x01\x1f\x7f\"\n", 0, "[{\"x\":\"\\u0001\\u001f\x7f\"}]", NULL},
    {"UTF-8 kept", "\"x\"\n\"\xf0\x9f\x8e\x89 \xe8\xab\x8b \xd7\xa9\"\n", 0,
     "[{\"x\":\"\xf0\x9f\x8e\x89 \xe8\xab\x8b \xd7\xa9\"}]", NULL},
    {"invalid byte",
     "\"x\"\n\"a\xff"
     "b\"\n",
     0,
     "[{\"x\":\"a\xef\xbf\xbd"
     "b\"}]",
     NULL},
    {"truncated sequence", "\"x\"\n\"a\xe2\x82\"\n", 0, "[{\"x\":\"a\xef\xbf\xbd\"}]", NULL},
    {"overlong", "\"x\"\n\"\xc0\xaf\"\n", 0, "[{\"x\":\"\xef\xbf\xbd\xef\xbf\xbd\"}]", NULL},
    {"surrogate", "\"x\"\n\"\xed\xa0\x80\"\n", 0,
     "[{\"x\":\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"}]", NULL},
    {"NUL byte", "\"x\"\n\"a\0b\"\n", 10, "[{\"x\":\"a\\u0000b\"}]", NULL},
    {"header only", "\"a\",\"b\"\n", 0, "[]", NULL},
    {"escaped header", "\"a\"\"q\",\"b\\\\\"\n\"1\",\"2\"\n", 0,
     "[{\"a\\\"q\":\"1\",\"b\\\\\\\\\":\"2\"}]", NULL},
    {"unterminated quote", "\"a\",\"b\"\n\"1\",\"2\n", 0, NULL, "t.csv:2:5: unterminated"},
    {"too few fields", "\"a\",\"b\"\n\"1\"\n", 0, NULL, "t.csv:2:4: expected 2 fields, got 1"},
    {"too few fields, cut", "\"a\",\"b\"\n\"1\",\"2\"\n\"3\"", 0, NULL,
     "t.csv:3:4: expected 2 fields, got 1 in the last row, which has no line end (is the export "
     "truncated?)"},
    {"too many fields", "\"a\",\"b\"\n\"1\",\"2\",\"3\"\n", 0, NULL, "t.csv:2:9: too many fields"},
    {"HTML page", "<!DOCTYPE html><html><body>Error</body></html>", 0, NULL,
     "t.csv:1:1: this is an HTML page"},
    {"HTML page after white space", " \r\n\t\n<!DOCTYPE html><html><body>Error</body></html>", 0,
     NULL, "t.csv:1:1: this is an HTML page"},
    {"HTML page after a BOM and a line end", "\xef\xbb\xbf\n<html><body>Error</body></html>", 0,
     NULL, "t.csv:1:1: this is an HTML page"},
    {"empty file", "", 0, NULL, "empty export"},
    {"quote in bare", "\"a\"\nab\"c\n", 0, NULL, "t.csv:2:3: quote inside an unquoted field"},
    {"after closing quote", "\"a\"\n\"x\"y\n", 0, NULL, "t.csv:2:4: unexpected character"},
    {"stray CR", "\"a\",\"b\"\n\"1\",\"2\"\rX\n", 0, NULL, "carriage return not followed"},
    {"duplicate column", "\"a\",\"a\"\n", 0, NULL, "duplicate column name"},
    {"empty column name", "\"a\",,\"c\"\n", 0, NULL, "empty column name"},
    /*
     * The csv-spectrum suite (github.com/max-mapper/csv-spectrum), case by case. Its files
     * mostly leave fields unquoted; phpMyAdmin quotes every value, and reads as ours. Where
     * phpMyAdmin's dialect differs, the expectation says so: a bare NULL is SQL NULL, and
     * what phpMyAdmin never writes (a quote in an unquoted field, CR-only line ends) is
     * refused rather than guessed at.
     */
    {"spectrum comma_in_quotes",
     "first,last,address,city,zip\nJohn,Doe,120 any st.,\"Anytown, WW\",08123\n", 0,
     "[{\"first\":\"John\",\"last\":\"Doe\",\"address\":\"120 any st.\","
     "\"city\":\"Anytown, WW\",\"zip\":\"08123\"}]",
     NULL},
    {"spectrum empty", "a,b,c\n1,\"\",\"\"\n2,3,4\n", 0,
     "[{\"a\":\"1\",\"b\":\"\",\"c\":\"\"},{\"a\":\"2\",\"b\":\"3\",\"c\":\"4\"}]", NULL},
    {"spectrum empty_crlf", "a,b,c\r\n1,\"\",\"\"\r\n2,3,4\r\n", 0,
     "[{\"a\":\"1\",\"b\":\"\",\"c\":\"\"},{\"a\":\"2\",\"b\":\"3\",\"c\":\"4\"}]", NULL},
    {"spectrum escaped_quotes", "a,b\n1,\"ha \"\"ha\"\" ha\"\n3,4\n", 0,
     "[{\"a\":\"1\",\"b\":\"ha \\\"ha\\\" ha\"},{\"a\":\"3\",\"b\":\"4\"}]", NULL},
    {"spectrum json",
     "key,val\n1,\"{\"\"type\"\": \"\"Point\"\", \"\"coordinates\"\": [102.0, 0.5]}\"\n", 0,
     "[{\"key\":\"1\",\"val\":\"{\\\"type\\\": \\\"Point\\\", \\\"coordinates\\\": "
     "[102.0, 0.5]}\"}]",
     NULL},
    {"spectrum newlines", "a,b,c\n1,2,3\n\"Once upon \na time\",5,6\n7,8,9\n", 0,
     "[{\"a\":\"1\",\"b\":\"2\",\"c\":\"3\"},{\"a\":\"Once upon \\na time\",\"b\":\"5\","
     "\"c\":\"6\"},{\"a\":\"7\",\"b\":\"8\",\"c\":\"9\"}]",
     NULL},
    {"spectrum newlines_crlf", "a,b,c\r\n1,2,3\r\n\"Once upon \r\na time\",5,6\r\n7,8,9\r\n", 0,
     "[{\"a\":\"1\",\"b\":\"2\",\"c\":\"3\"},{\"a\":\"Once upon \\r\\na time\",\"b\":\"5\","
     "\"c\":\"6\"},{\"a\":\"7\",\"b\":\"8\",\"c\":\"9\"}]",
     NULL},
    {"spectrum quotes_and_newlines", "a,b\n1,\"ha \n\"\"ha\"\" \nha\"\n3,4\n", 0,
     "[{\"a\":\"1\",\"b\":\"ha \\n\\\"ha\\\" \\nha\"},{\"a\":\"3\",\"b\":\"4\"}]", NULL},
    {"spectrum simple", "a,b,c\n1,2,3\n", 0, "[{\"a\":\"1\",\"b\":\"2\",\"c\":\"3\"}]", NULL},
    {"spectrum simple_crlf", "a,b,c\r\n1,2,3\r\n", 0, "[{\"a\":\"1\",\"b\":\"2\",\"c\":\"3\"}]",
     NULL},
    {"spectrum utf8", "a,b,c\n1,2,3\n4,5,\xca\xa4\n", 0,
     "[{\"a\":\"1\",\"b\":\"2\",\"c\":\"3\"},{\"a\":\"4\",\"b\":\"5\",\"c\":\"\xca\xa4\"}]", NULL},
    {"spectrum null (bare NULL is SQL NULL here)", "a,b,c\n1,\"\",2\n3,NULL,4\n5,\"NULL\",6\n", 0,
     "[{\"a\":\"1\",\"b\":\"\",\"c\":\"2\"},{\"a\":\"3\",\"b\":null,\"c\":\"4\"},"
     "{\"a\":\"5\",\"b\":\"NULL\",\"c\":\"6\"}]",
     NULL},
    {"spectrum latin1 (invalid UTF-8 becomes U+FFFD)", "a,b\n1,\"caf\xe9\"\n", 0,
     "[{\"a\":\"1\",\"b\":\"caf\xef\xbf\xbd\"}]", NULL},
    {"spectrum location_coordinates (quote in a bare field: refused)",
     "Contact Phone Number,Location Coordinates\n02095257564,37\xb0"
     "36'37.8\"N\n",
     0, NULL, "t.csv:2:23: quote inside an unquoted field"},
    {"spectrum newlines_cr (CR line ends: refused)", "a,b,c\r1,2,3\r", 0, NULL,
     "carriage return not followed"},
};

static int mem_fd(const char *data, size_t len)
{
	int fd = memfd_create("csv", MFD_CLOEXEC);

	if (fd < 0 || write(fd, data, len) != (ssize_t)len || lseek(fd, 0, SEEK_SET) < 0)
		return -1;
	return fd;
}

/* Convert; on success return the parsed output object (caller puts). */
static struct json_object *convert_opts(const char *in, size_t len, const struct csv_opts *opts,
                                        struct csv_result *res, char *err, size_t errlen)
{
	struct csv_out out = {.fd = -1};
	struct json_object *o = NULL;
	int fd = mem_fd(in, len);

	if (fd < 0) {
		snprintf(err, errlen, "memfd");
		return NULL;
	}
	memset(res, 0, sizeof(*res));
	if (csv_convert(fd, "t.csv", &out, "2026-01-02T03:04:05Z", res, opts, err, errlen) == 0) {
		o = json_tokener_parse(out.mem);
		if (o == NULL)
			snprintf(err, errlen, "output is not JSON: %.200s", out.mem);
		else if (strchr(out.mem, '\n') != NULL) {
			snprintf(err, errlen, "output has a newline");
			json_object_put(o);
			o = NULL;
		}
	}
	free(out.mem);
	close(fd);
	return o;
}

static struct json_object *convert(const char *in, size_t len, struct csv_result *res, char *err,
                                   size_t errlen)
{
	return convert_opts(in, len, NULL, res, err, errlen);
}

/* A CSV of a header "h" and one row holding a quoted field of n bytes of c (n + 2 with its
 * quotes). */
static char *one_field(size_t n, char c, size_t *len)
{
	char *s = malloc(n + 16);

	memcpy(s, "\"h\"\n\"", 5);
	memset(s + 5, c, n);
	memcpy(s + 5 + n, "\"\n", 2);
	*len = n + 7;
	return s;
}

/* max_field: a field of exactly the limit passes, one byte more is refused where it starts;
 * so is a header row over it, and a field that never ends is refused as it grows. */
static void limits(void)
{
	struct csv_opts opts = {1024, NULL, NULL, NULL};
	struct csv_result res;
	struct json_object *o;
	char err[512], *in, *hdr;
	size_t len, i;

	in = one_field(1022, 'x', &len); /* 1024 with its quotes */
	o = convert_opts(in, len, &opts, &res, err, sizeof(err));
	CHECK(o != NULL, "a field of max_field bytes passes: %s", err);
	json_object_put(o);
	free(res.columns);
	free(in);
	in = one_field(1023, 'x', &len);
	o = convert_opts(in, len, &opts, &res, err, sizeof(err));
	CHECK(o == NULL &&
	          strstr(err, "t.csv:2:1: a field longer than max_field_bytes (1024 bytes)"),
	      "a field of max_field + 1 bytes is refused where it starts: %s", err);
	json_object_put(o);
	free(in);
	/* Followed by another quoted field (a shorter path through the converter). */
	in = one_field(1023, 'x', &len);
	memcpy(in, "\"h\",\"g\"\n\"", 9);
	memset(in + 9, 'x', 1022); /* 1024 bytes with its quotes, 3 doubled quotes in it */
	memcpy(in + 9, "\"\"\"\"\"\"", 6);
	memcpy(in + 9 + 1022, "\",\"y\"\n", 6);
	len = 9 + 1022 + 6;
	o = convert_opts(in, len, &opts, &res, err, sizeof(err));
	CHECK(o != NULL, "a field of max_field bytes, then another, passes: %s", err);
	json_object_put(o);
	free(res.columns);
	memcpy(in + 9 + 1022, "x\",\"y\"\n", 7);
	len++;
	o = convert_opts(in, len, &opts, &res, err, sizeof(err));
	CHECK(o == NULL &&
	          strstr(err, "t.csv:2:1: a field longer than max_field_bytes (1024 bytes)"),
	      "a field of max_field + 1 bytes, then another, is refused where it starts: %s", err);
	json_object_put(o);
	free(in);
	/* A field that never closes, over 3 read sizes: refused by its length, not its end. */
	in = one_field(3 * 256 * 1024, '\x01', &len);
	o = convert_opts(in, len - 2, &opts, &res, err, sizeof(err));
	CHECK(o == NULL && strstr(err, "t.csv:2:1: a field longer than max_field_bytes"),
	      "an unterminated long field is refused by its length: %s", err);
	json_object_put(o);
	free(in);
	/* A header row of many short names over the limit. */
	hdr = malloc(8 * 400 + 2);
	for (i = 0, len = 0; i < 400; i++)
		len += (size_t)sprintf(hdr + len, "%s\"c%03zu\"", i ? "," : "", i);
	hdr[len++] = '\n';
	o = convert_opts(hdr, len, &opts, &res, err, sizeof(err));
	CHECK(o == NULL && strstr(err, "t.csv:1:1: the header row is longer than max_field_bytes"),
	      "a header row over max_field is refused: %s", err);
	json_object_put(o);
	free(hdr);
}

/* The header check is a sort: many columns pass in order; the first repeat is reported where
 * it is. */
static void wide_header(void)
{
	size_t n = 100000, i, len = 0;
	char *in = malloc(n * 12 + 64), err[512];
	struct csv_result res;
	struct json_object *o;

	for (i = 0; i < n; i++)
		len += (size_t)sprintf(in + len, "%s\"k%zu\"", i ? "," : "", n - i);
	memcpy(in + len, "\n", 2);
	o = convert(in, len + 1, &res, err, sizeof(err));
	CHECK(o != NULL && res.columns && strncmp(res.columns, "[\"k100000\",\"k99999\",", 20) == 0,
	      "%zu distinct columns pass, in header order: %s", n, err);
	json_object_put(o);
	free(res.columns);
	/* Two repeats: k7 at column 16, then k3 at column 26; the first is reported. */
	len = (size_t)sprintf(in, "\"k1\",\"k7\",\"k3\",\"k7\",\"k5\",\"k3\"\n");
	o = convert(in, len, &res, err, sizeof(err));
	CHECK(o == NULL && strstr(err, "t.csv:1:16: duplicate column name"),
	      "the first repeated name is reported where it is: %s", err);
	json_object_put(o);
	len = (size_t)sprintf(in, "\"b\",\"a\",\"a\"\n");
	o = convert(in, len, &res, err, sizeof(err));
	CHECK(o == NULL && strstr(err, "t.csv:1:9: duplicate column name"), "b,a,a: %s", err);
	json_object_put(o);
	free(in);
}

static volatile sig_atomic_t stop_flag;

static void on_alarm(int sig)
{
	(void)sig;
	stop_flag = 1;
}

/* The stop flag is checked before every read and after a signal interrupts one: a pipe whose
 * writer never writes again ends when the flag is set. */
static void stopping(void)
{
	struct csv_opts opts = {0, &stop_flag, NULL, NULL};
	struct csv_out out = {.fd = -1};
	struct csv_result res;
	struct sigaction sa, old;
	struct itimerval it = {{0, 0}, {0, 200000}};
	char err[256];
	int p[2], rc;

	if (pipe(p) < 0 || write(p[1], "\"a\"\n\"1\"\n", 8) != 8) {
		CHECK(0, "pipe");
		return;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm; /* no SA_RESTART */
	sigaction(SIGALRM, &sa, &old);
	stop_flag = 0;
	setitimer(ITIMER_REAL, &it, NULL);
	rc =
	    csv_convert(p[0], "t.csv", &out, "2026-01-02T03:04:05Z", &res, &opts, err, sizeof(err));
	CHECK(rc == -3 && strstr(err, "t.csv: stopped after 8 bytes"),
	      "a blocked read ends on the signal: %d %s", rc, err);
	sigaction(SIGALRM, &old, NULL);
	free(out.mem);
	close(p[0]);
	close(p[1]);
	rc = csv_convert(-1, "t.csv", &out, "2026-01-02T03:04:05Z", &res, &opts, err, sizeof(err));
	CHECK(rc == -3, "a stop set before the first read stops it: %d %s", rc, err);
	free(out.mem);
}

static void big_inputs(void)
{
	/* Values and multibyte characters across the 256 KiB read boundary. */
	size_t n = 600000, i, off;
	char *in = malloc(n + 64), err[512];
	struct csv_result res;
	struct json_object *o, *data, *v;

	off = (size_t)sprintf(in, "\"v\"\n\"");
	for (i = off; i < 262142; i++)
		in[i] = 'a';
	memcpy(in + i, "\xe2\x82\xac", 3); /* the euro sign straddles 262144 */
	i += 3;
	for (; i < 400000; i++)
		in[i] = (i % 1000 == 0) ? '\n' : 'b';
	i += (size_t)sprintf(in + i, "\"\nNULL\n\"x\"\"y\"\n");
	o = convert(in, i, &res, err, sizeof(err));
	CHECK(o != NULL, "big: %s", err);
	if (o) {
		json_object_object_get_ex(o, "data", &data);
		CHECK(json_object_array_length(data) == 3, "big: 3 rows");
		v = json_object_object_get(json_object_array_get_idx(data, 0), "v");
		CHECK(json_object_get_string_len(v) == 400000 - 5 &&
		          strstr(json_object_get_string(v), "a\xe2\x82\xac"
		                                            "b") != NULL,
		      "big: value intact across the boundary (%d)", json_object_get_string_len(v));
		CHECK(json_object_get_type(json_object_object_get(
		          json_object_array_get_idx(data, 1), "v")) == json_type_null,
		      "big: NULL after a long value");
		CHECK(res.rows == 3 && res.replaced == 0, "big: rows %lld", res.rows);
		json_object_put(o);
	}
	free(res.columns);
	free(in);
}

/*
 * The quoted run (16 bytes at a time) against the byte-at-a-time escaper: each special byte
 * at each offset of a long value, in two columns (the second field starts inside the run),
 * gives exactly csv_json_escape's text.
 */
static void quoted_runs(void)
{
	static const char *const special[] = {
	    "\\", "\"", "\n", "\r", "\t", "\x01", "\x1f", "\x7f", ",", "\xc3\xa9", "\xe2\x82\xac",
	    "\xf0\x9f\x8e\x89", "\xff", "\xc3", "/",
	    /* quotes in runs of 2 to 6 in the CSV, pairs next to other bytes */
	    "\"\"", "\"\"\"", "\"a\"", "\"\xc3\xa9\"", "\"\\\"", "\"\n\"", "\",\"", "a\"\"\"b\"c"};
	char val[128], csv[600], esc[800], want[1800], err[256];
	size_t si, k, bad = 0, runs = 0;

	for (si = 0; si < sizeof(special) / sizeof(special[0]); si++) {
		for (k = 0; k < 40; k++) {
			struct csv_out out = {.fd = -1};
			struct csv_result res;
			size_t o = 0, i, vl;
			const char *tail;
			int fd;

			vl = (size_t)snprintf(val, sizeof(val), "%.*s%s%s", (int)k,
			                      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
			                      special[si], "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
			o = (size_t)snprintf(csv, sizeof(csv), "\"h\",\"g\"\n");
			for (int col = 0; col < 2; col++) {
				csv[o++] = '"';
				for (i = 0; i < vl; i++) {
					if (val[i] == '"')
						csv[o++] = '"';
					csv[o++] = val[i];
				}
				csv[o++] = '"';
				csv[o++] = col ? '\n' : ',';
			}
			csv_json_escape(esc, val, vl);
			snprintf(want, sizeof(want), "\"data\":[{\"h\":\"%s\",\"g\":\"%s\"}]}", esc,
			         esc);
			if ((fd = mem_fd(csv, o)) < 0 ||
			    csv_convert(fd, "t.csv", &out, "2026-01-02T03:04:05Z", &res, NULL, err,
			                sizeof(err)) != 0) {
				bad++;
				fprintf(stderr, "quoted run %zu/%zu: %s\n", si, k, err);
			} else {
				tail = out.mem_len >= strlen(want)
				           ? out.mem + out.mem_len - strlen(want)
				           : "";
				if (strcmp(tail, want) != 0) {
					bad++;
					fprintf(stderr, "quoted run %zu/%zu: got %s, want %s\n", si,
					        k, out.mem, want);
				}
				free(res.columns);
			}
			runs++;
			free(out.mem);
			if (fd >= 0)
				close(fd);
		}
	}
	CHECK(bad == 0, "quoted runs: %zu of %zu values differ from csv_json_escape", bad, runs);
}

/* Convert fd; the output (or the error) in *got, the return code returned. */
static int convert_fd(int fd, const struct csv_opts *opts, struct csv_out *out, char **got,
                      struct csv_result *res)
{
	char err[512] = "";
	int rc;

	memset(res, 0, sizeof(*res));
	rc = csv_convert(fd, "t.csv", out, "2026-01-02T03:04:05Z", res, opts, err, sizeof(err));
	if (rc == 0) {
		*got = out->mem;
		out->mem = NULL;
	} else {
		*got = strdup(err);
	}
	free(res->columns);
	res->columns = NULL;
	return rc;
}

/* in as a pipe holds it (up to 64 KiB): the input is read(2), not mapped. */
static int pipe_fd(const char *in, size_t len)
{
	int p[2];

	if (pipe(p) < 0)
		return -1;
	if (write(p[1], in, len) != (ssize_t)len) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	close(p[1]);
	return p[0];
}

/*
 * Every cut of the input gives the same output, byte for byte (or the same error, at the same
 * line and column): a regular file mapped in windows of 1 to 40 bytes (and a few more sizes;
 * a window starts anywhere in a page), and a pipe read that much at a time. Cut inside a
 * quoted field, a doubled quote, a CRLF, a UTF-8 sequence, a BOM, NULL.
 */
static void cuts(void)
{
	static const char *const ins[] = {
	    "\xef\xbb\xbf\"id\",\"n\xc3\xa4me\",\"note\"\r\n"
	    "\"1\",\"J\xc3\xbcrgen \xe2\x82\xac \xf0\x9f\x8e\x89\",\"he said \"\"hi\"\"\r\nand "
	    "left\"\r\n"
	    "\"2\",NULL,\"\"\"\"\"\"\"\"\"\"\"\"\r\n"
	    "\"3\",,\"a,b\\c\t\x01\xff\xc3\"\r\n"
	    "4,NULLX,\"{\"\"k\"\":\"\"v\"\",\"\"w\"\":[\"\"x\"\",\"\"y\"\"]}\"\r\n",
	    "a,b\n1,\"x\ny\"\n2,NULL\n3,\"\xe2\x82\"\n\n",
	    /* not a BOM: its first two bytes, then text */
	    "\xef\xbb\"a\"\n\"1\"\n",
	    "\xef\xbb\xbf",
	    "\xef\xbb",
	    /* errors: where they are must not depend on the cut */
	    "\"a\",\"b\"\n\"1\",\"2\"\rX\n",
	    "\"a\",\"b\"\n\"1\",\"2\"\n\"3\",\"4\"\"x\n",
	    "\"a\",\"b\"\r\n\"1\",\"2\"\r\n\"3\"",
	    "\"a\"\n\"1\"\n\"2\",\"3\"\n",
	    "\xef\xbb\xbf \r\n<html>",
	};
	static const size_t more[] = {63, 64, 100, 255, 4095, 4096, 4097};
	size_t ii, bad = 0, runs = 0;

	for (ii = 0; ii < sizeof(ins) / sizeof(ins[0]); ii++) {
		size_t len = strlen(ins[ii]), c;
		struct csv_out out = {.fd = -1};
		struct csv_result res;
		char *want = NULL;
		int fd = mem_fd(ins[ii], len), want_rc;

		csv_test_chunk(0);
		want_rc = convert_fd(fd, NULL, &out, &want, &res);
		close(fd);
		for (c = 1; c < 40 + sizeof(more) / sizeof(more[0]); c++) {
			size_t chunk = c < 40 ? c : more[c - 40];
			for (int piped = 0; piped < 2; piped++) {
				char *got = NULL;
				int rc;

				fd = piped ? pipe_fd(ins[ii], len) : mem_fd(ins[ii], len);
				csv_test_chunk(chunk);
				rc = fd < 0 ? -9 : convert_fd(fd, NULL, &out, &got, &res);
				csv_test_chunk(0);
				if (rc != want_rc || strcmp(got, want) != 0) {
					bad++;
					fprintf(stderr,
					        "cut %zu of input %zu (%s): %d %s, want %d %s\n",
					        chunk, ii, piped ? "pipe" : "mapped", rc, got,
					        want_rc, want);
				}
				runs++;
				free(got);
				if (fd >= 0)
					close(fd);
			}
		}
		free(want);
	}
	CHECK(bad == 0, "cuts: %zu of %zu conversions differ from the uncut one", bad, runs);
}

static volatile sig_atomic_t stop_at_header;

struct cut_at {
	int fd;
	off_t size;
};

/* A header hook that stops the conversion, or cuts its input file short. */
static int header_stop(void *arg, const char *columns)
{
	(void)arg;
	(void)columns;
	stop_at_header = 1;
	return 0;
}

static int header_cut(void *arg, const char *columns)
{
	struct cut_at *c = arg;

	(void)columns;
	return ftruncate(c->fd, c->size);
}

/* A mapped file: the stop flag is checked between windows; a file cut short under the
 * converter (past the window being parsed) ends where it was cut, as read(2) would have,
 * and does not kill it; a file whose offset is not 0 is converted from there. */
static void mapped(void)
{
	size_t cap = 2000 * 40, len = 0, i, at;
	long long lines;
	char *in = malloc(cap), *got = NULL;
	struct csv_opts opts = {0, &stop_at_header, NULL, NULL};
	struct csv_out out = {.fd = -1};
	struct csv_result res;
	struct cut_at cut;
	struct stat st;
	int fd, rc;

	len += (size_t)snprintf(in + len, cap - len, "\"id\",\"v\"\n");
	for (i = 0; i < 2000; i++)
		len += (size_t)snprintf(in + len, cap - len, "\"%zu\",\"row %zu\"\n", i, i);

	/* Stopped: by a flag set while the first window was parsed, at the next. */
	stop_at_header = 0;
	fd = mem_fd(in, len);
	out.header = header_stop;
	csv_test_chunk(100);
	rc = fd < 0 ? -9 : convert_fd(fd, &opts, &out, &got, &res);
	csv_test_chunk(0);
	CHECK(rc == -3 && strstr(got, "t.csv: stopped after 100 bytes"),
	      "mapped: a stop ends the conversion at the next window: %d %s", rc, got);
	free(got);
	got = NULL;
	rc = fd < 0 ? -9 : (lseek(fd, 0, SEEK_SET), convert_fd(fd, &opts, &out, &got, &res));
	CHECK(rc == -3 && strstr(got, "stopped after 0 bytes"),
	      "mapped: a stop set before the first window: %d %s", rc, got);
	free(got);
	got = NULL;
	if (fd >= 0)
		close(fd);

	/* Cut short while the first window of 512 bytes is parsed (the file is 11 pages): at
	 * byte 1000, inside a row, it is refused as cut; at the end of a row, the rows before
	 * the cut are the table, as if read(2) had met the end there. */
	for (at = 1000; at <= len && in[at - 1] != '\n'; at++)
		;
	for (i = 0, lines = 0; i < at; i++)
		lines += in[i] == '\n';
	for (int whole = 0; whole < 2; whole++) {
		fd = mem_fd(in, len);
		cut.fd = fd;
		cut.size = whole ? (off_t)at : 1000;
		out.header = header_cut;
		out.row_arg = &cut;
		csv_test_chunk(512);
		rc = fd < 0 ? -9 : convert_fd(fd, NULL, &out, &got, &res);
		csv_test_chunk(0);
		if (whole)
			CHECK(rc == 0 && res.bytes_in == (long long)at && res.rows == lines - 1,
			      "mapped: a file cut at a row end under the converter ends there: %d "
			      "%lld %lld %.80s",
			      rc, res.bytes_in, res.rows, got);
		else
			CHECK(
			    rc == -1 &&
			        strstr(got, "unterminated quoted field (is the export truncated?)"),
			    "mapped: a file cut under the converter is refused as cut: %d %s", rc,
			    got);
		CHECK(fstat(fd, &st) == 0 && st.st_size == cut.size, "mapped: the file was cut");
		free(got);
		got = NULL;
		if (fd >= 0)
			close(fd);
	}
	out.header = NULL;
	out.row_arg = NULL;

	/* From the offset of the fd, not 0; and the offset is left at the end. */
	memmove(in + 5, in, len);
	memcpy(in, "junk\n", 5);
	fd = mem_fd(in, len + 5);
	csv_test_chunk(333);
	rc = fd < 0 || lseek(fd, 5, SEEK_SET) != 5 ? -9 : convert_fd(fd, NULL, &out, &got, &res);
	csv_test_chunk(0);
	CHECK(rc == 0 && res.rows == 2000 && res.bytes_in == (long long)len &&
	          strstr(got, "[{\"id\":\"0\",\"v\":\"row 0\"},") &&
	          lseek(fd, 0, SEEK_CUR) == (off_t)(len + 5),
	      "mapped: converted from the fd's offset: %d %lld %.80s", rc, res.rows, got);
	free(got);
	if (fd >= 0)
		close(fd);
	free(in);
}

void test_csv(void)
{
	struct csv_result res;
	char err[512];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].in);
		struct json_object *o;

		err[0] = '\0';
		o = convert(cases[i].in, len, &res, err, sizeof(err));
		if (cases[i].err) {
			CHECK(o == NULL && strstr(err, cases[i].err) != NULL,
			      "%s: want error '%s', got '%s'", cases[i].name, cases[i].err, err);
		} else {
			struct json_object *want = json_tokener_parse(cases[i].data), *data, *c;
			const char *got_s = "", *want_s;
			CHECK(o != NULL, "%s: %s", cases[i].name, err);
			if (o && json_object_object_get_ex(o, "data", &data))
				got_s = json_object_to_json_string(data);
			want_s = want ? json_object_to_json_string(want) : "(bad expectation)";
			CHECK(strcmp(got_s, want_s) == 0, "%s: got %s, want %s", cases[i].name,
			      got_s, want_s);
			CHECK(o && json_object_object_get_ex(o, "count", &c) &&
			          json_object_get_int64(c) == res.rows &&
			          (size_t)res.rows == json_object_array_length(want),
			      "%s: count", cases[i].name);
			CHECK(o && json_object_object_get_ex(o, "status", &c) &&
			          strcmp(json_object_get_string(c), "success") == 0 &&
			          json_object_object_get_ex(o, "last_updated", &c) &&
			          strcmp(json_object_get_string(c), "2026-01-02T03:04:05Z") == 0,
			      "%s: envelope", cases[i].name);
			json_object_put(want);
		}
		json_object_put(o);
		free(res.columns);
	}
	quoted_runs();
	big_inputs();
	limits();
	wide_header();
	stopping();
	cuts();
	mapped();
}

/* The flush at CSV_FLUSH_AT keeps the row in progress: a table of short rows over several
 * flushes gives the row hook every row from memory, and the tap gets every chunk, each one
 * already in fd, in order. A tap that takes the buffer (as the gzip copy's does) gets every
 * chunk too, and the JSON is the same to the byte. */
struct mark_sink {
	int fd, take;
	long long written, rows, null_rows, bad, taken;
	char *held; /* with take: the buffer taken at the last call */
	size_t held_cap;
};

static int mark_tap(void *arg, char **buf, size_t *cap, size_t len)
{
	struct mark_sink *m = arg;
	char *got = malloc(len ? len : 1), *back;
	int same = got && len <= *cap &&
	           pread(m->fd, got, len, (off_t)m->written) == (ssize_t)len &&
	           memcmp(got, *buf, len) == 0;

	free(got);
	if (!same)
		m->bad++;
	m->written += (long long)len;
	if (!m->take)
		return 0;
	/* Take this buffer; give back the one taken before, spoilt (the converter may read a
	 * buffer only until the next call), or none at first, or a small new one every 3rd. */
	back = m->held;
	if (back)
		memset(back, 'x', m->held_cap);
	m->held = *buf;
	m->held_cap = *cap;
	if (back == NULL || ++m->taken % 3 == 0) {
		free(back);
		back = malloc(4096);
		*cap = back ? 4096 : 0;
	} else {
		*cap = m->held_cap;
	}
	*buf = back;
	return 0;
}

static int mark_row(void *arg, long long off, const char *row, size_t len)
{
	struct mark_sink *m = arg;
	char head[2];

	m->rows++;
	if (row == NULL) {
		m->null_rows++;
		return 0;
	}
	/* What the tap wrote so far ends before this row, or the row starts in memory. */
	if (len < 2 || row[0] != '{' || row[len - 1] != '}')
		m->bad++;
	if (off < m->written && (pread(m->fd, head, 1, (off_t)off) != 1 || head[0] != '{'))
		m->bad++;
	return 0;
}

static void flush_mark(int take)
{
	size_t n = 60000, cap = n * 64 + 64, len = 0, i;
	char *csv = malloc(cap), err[256] = "", *json = NULL;
	struct mark_sink m = {.fd = memfd_create("json", MFD_CLOEXEC), .take = take};
	struct csv_out out = {.fd = m.fd}, mem = {.fd = -1};
	struct csv_result res, r2;
	const char *how = take ? "flush mark, buffers taken" : "flush mark";
	int fd;

	len += (size_t)snprintf(csv + len, cap - len, "id,note\n");
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(csv + len, cap - len, "%zu,\"row %zu, quoted\"\n", i, i);
	fd = mem_fd(csv, len);
	out.tap = mark_tap;
	out.tap_arg = &m;
	out.row = mark_row;
	out.row_arg = &m;
	memset(&res, 0, sizeof(res));
	memset(&r2, 0, sizeof(r2));
	CHECK(fd >= 0 && m.fd >= 0, "%s: memfds", how);
	CHECK(csv_convert(fd, "t.csv", &out, "2026-01-02T03:04:05Z", &res, NULL, err,
	                  sizeof(err)) == 0,
	      "%s: converts (%s)", how, err);
	CHECK(res.bytes_out > 2 * 1024 * 1024, "%s: the output crosses flushes (%lld)", how,
	      res.bytes_out);
	CHECK(m.rows == (long long)n, "%s: every row hooked (%lld)", how, m.rows);
	CHECK(m.null_rows == 0, "%s: no short row read back from fd (%lld)", how, m.null_rows);
	CHECK(m.bad == 0, "%s: every row whole, every chunk in fd (%lld bad)", how, m.bad);
	CHECK(m.written == res.bytes_out, "%s: the tap got all %lld bytes (%lld)", how,
	      res.bytes_out, m.written);
	if (take)
		CHECK(m.taken >= 2, "%s: buffers were taken (%lld)", how, m.taken);
	/* The same JSON as a conversion in memory, to the byte. */
	if (fd >= 0 && m.fd >= 0 && res.bytes_out > 0 && lseek(fd, 0, SEEK_SET) == 0 &&
	    (json = malloc((size_t)res.bytes_out)) != NULL &&
	    pread(m.fd, json, (size_t)res.bytes_out, 0) == (ssize_t)res.bytes_out &&
	    csv_convert(fd, "t.csv", &mem, "2026-01-02T03:04:05Z", &r2, NULL, err, sizeof(err)) ==
	        0)
		CHECK(mem.mem_len == (size_t)res.bytes_out &&
		          memcmp(mem.mem, json, mem.mem_len) == 0,
		      "%s: the JSON is the one converted in memory", how);
	else
		CHECK(0, "%s: setup: the conversion in memory (%s)", how, err);
	free(json);
	free(mem.mem);
	free(r2.columns);
	free(m.held);
	if (fd >= 0)
		close(fd);
	if (m.fd >= 0)
		close(m.fd);
	free(csv);
	free(res.columns);
}

void test_csv_flush_mark(void)
{
	flush_mark(0);
	flush_mark(1);
}

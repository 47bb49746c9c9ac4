#include "../../sync/csv.h"
#include "../../sync/gz.h"
#include "t.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

/* Read a whole fd from its start. */
static char *slurp(int fd, size_t *len)
{
	off_t n = lseek(fd, 0, SEEK_END);
	char *b = malloc((size_t)n + 1);

	if (b == NULL || pread(fd, b, (size_t)n, 0) != n) {
		free(b);
		return NULL;
	}
	*len = (size_t)n;
	return b;
}

/* The gzip copy made alongside the conversion inflates to the JSON, byte for byte, and the
 * JSON written is the converter's to the byte. */
static void round_trip(const char *name, const char *csv, size_t csv_len)
{
	int in = memfd_create("csv", 0), js = memfd_create("json", 0), gzf = memfd_create("gz", 0);
	struct csv_out out = {.fd = js};
	struct csv_result res;
	char err[256], *json = NULL, *gzb = NULL, *plain = NULL;
	size_t jl = 0, gl = 0;
	long long gsz;
	struct gz *g;
	z_stream z;

	if (in < 0 || js < 0 || gzf < 0 || write(in, csv, csv_len) != (ssize_t)csv_len ||
	    lseek(in, 0, SEEK_SET) < 0) {
		CHECK(0, "%s: setup: memfd: %s", name, strerror(errno));
		goto done;
	}
	g = gz_start(gzf, &out, 1, err, sizeof(err));
	CHECK(g != NULL, "%s: gz_start: %s", name, err);
	if (g == NULL)
		goto done;
	out.tap = gz_tap;
	out.tap_arg = g;
	CHECK(csv_convert(in, name, &out, "2026-01-02T03:04:05Z", &res, NULL, err, sizeof(err)) ==
	          0,
	      "%s: convert: %s", name, err);
	gsz = gz_finish(g, js, err, sizeof(err));
	CHECK(gsz > 0, "%s: gz_finish: %s", name, err);
	json = slurp(js, &jl);
	gzb = slurp(gzf, &gl);
	{
		struct csv_out mem = {.fd = -1};
		struct csv_result r2;
		CHECK(lseek(in, 0, SEEK_SET) == 0 &&
		          csv_convert(in, name, &mem, "2026-01-02T03:04:05Z", &r2, NULL, err,
		                      sizeof(err)) == 0 &&
		          json && mem.mem_len == jl && memcmp(mem.mem, json, jl) == 0,
		      "%s: the JSON written is the converter's", name);
		free(mem.mem);
		free(r2.columns);
	}
	CHECK(json && gzb && (long long)gl == gsz, "%s: sizes", name);
	plain = malloc(jl + 16);
	memset(&z, 0, sizeof(z));
	inflateInit2(&z, 15 + 16);
	z.next_in = (Bytef *)gzb;
	z.avail_in = (uInt)gl;
	z.next_out = (Bytef *)plain;
	z.avail_out = (uInt)jl + 16;
	CHECK(inflate(&z, Z_FINISH) == Z_STREAM_END, "%s: inflate to the end (CRC and size check)",
	      name);
	CHECK(z.total_out == jl && memcmp(plain, json, jl) == 0, "%s: inflates to the JSON", name);
	CHECK(z.avail_in == 0, "%s: nothing after the member", name);
	inflateEnd(&z);
	free(plain);
	free(json);
	free(gzb);
	free(res.columns);
done:
	close(in);
	close(js);
	close(gzf);
}

void test_gz(void)
{
	size_t n = 3 * 1024 * 1024, i, o;
	char *big = malloc(n + 64);

	static const char *const small[] = {
	    "\"a\",\"b\"\n",
	    "\"a\",\"b\"\n\"1\",NULL\n\"x\"\"y\",\"\xf0\x9f\x8e\x89\"\n",
	};

	if (big == NULL) {
		CHECK(0, "setup: malloc");
		return;
	}
	round_trip("header only", small[0], strlen(small[0]));
	round_trip("small", small[1], strlen(small[1]));
	/* Several chunks through the queue. */
	o = (size_t)sprintf(big, "\"k\",\"v\"\n");
	for (i = 0; o < n; i++)
		o += (size_t)sprintf(
		    big + o, "\"%zu\",\"value %zu with \"\"quotes\"\", commas\n and lines\"\n", i,
		    i * 7919);
	round_trip("3 MiB", big, o);
	free(big);
}

#include "snap.h"

#include "../common/cache.h"
#include "../common/log.h"
#include "csv.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define GZ_LEVEL 1 /* fast: the copy exists to save bandwidth, not disk */
#define GZ_CHUNK (256 * 1024)

/* Write the gzip copy of src_fd (read from its start) to dst_fd. Returns its size or -1. */
static long long gzip_copy(int src_fd, int dst_fd, char *err, size_t errlen)
{
	unsigned char *in = NULL, *out = NULL;
	long long total = 0;
	z_stream z;
	int flush, zrc, inited = 0;
	long long rc = -1;

	memset(&z, 0, sizeof(z));
	if ((in = malloc(GZ_CHUNK)) == NULL || (out = malloc(GZ_CHUNK)) == NULL) {
		snprintf(err, errlen, "gzip: out of memory");
		goto out;
	}
	/* windowBits 15 + 16: a gzip header and trailer, as gzip_static expects. */
	if (deflateInit2(&z, GZ_LEVEL, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		snprintf(err, errlen, "gzip: deflateInit2 failed");
		goto out;
	}
	inited = 1;
	if (lseek(src_fd, 0, SEEK_SET) < 0) {
		snprintf(err, errlen, "gzip: seek: %s", strerror(errno));
		goto out;
	}
	do {
		ssize_t n = read(src_fd, in, GZ_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "gzip: read: %s", strerror(errno));
			goto out;
		}
		flush = n == 0 ? Z_FINISH : Z_NO_FLUSH;
		z.next_in = in;
		z.avail_in = (unsigned)n;
		do {
			size_t have, off = 0;
			z.next_out = out;
			z.avail_out = GZ_CHUNK;
			zrc = deflate(&z, flush);
			if (zrc == Z_STREAM_ERROR) {
				snprintf(err, errlen, "gzip: deflate failed");
				goto out;
			}
			have = GZ_CHUNK - z.avail_out;
			while (off < have) {
				ssize_t w = write(dst_fd, out + off, have - off);
				if (w < 0 && errno == EINTR)
					continue;
				if (w < 0) {
					snprintf(err, errlen, "writing the gzip copy: %s",
						 strerror(errno));
					goto out;
				}
				off += (size_t)w;
			}
			total += (long long)have;
		} while (z.avail_out == 0);
	} while (flush != Z_FINISH);
	rc = total;
out:
	if (inited)
		deflateEnd(&z);
	free(in);
	free(out);
	return rc;
}

static int write_all(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

static void phase(const struct snap_opts *o, const char *name, long long rows, long long bytes)
{
	if (o->phase)
		o->phase(o->arg, name, rows, bytes);
}

static void csv_progress(void *arg, long long rows, long long bytes)
{
	const struct snap_opts *o = arg;
	phase(o, "convert", rows, bytes);
}

enum snap_fail snap_build(int csv_fd, const char *name, const struct snap_opts *o,
			  struct snap_result *r, char *err, size_t errlen)
{
	char tmpdir[4096], path[4200], iso[32], why[512];
	struct cache_snap prev;
	struct csv_result cr;
	struct csv_out out = {-1, NULL, 0};
	struct json_object *meta = NULL, *cols = NULL;
	struct timespec times[2];
	struct stat st;
	enum snap_fail rc = SNAP_EWRITE;
	int have_prev, gz_fd = -1, meta_fd = -1, dfd = -1;
	time_t t;
	const char *mtext;

	memset(r, 0, sizeof(*r));
	memset(&cr, 0, sizeof(cr));
	have_prev = cache_current(o->cache_dir, &prev, 0, why, sizeof(why)) == 0;

	/* The snapshot's time. Strictly after the current one's, so that ids never repeat. */
	t = time(NULL);
	if (have_prev && t <= prev.mtime)
		t = prev.mtime + 1;
	cache_iso8601(t, iso, sizeof(iso));

	snprintf(tmpdir, sizeof(tmpdir), "%s/tmp.snap.XXXXXX", o->cache_dir);
	if (mkdtemp(tmpdir) == NULL) {
		snprintf(err, errlen, "%s: %s", tmpdir, strerror(errno));
		return SNAP_EWRITE;
	}
	chmod(tmpdir, 0755);
	snprintf(path, sizeof(path), "%s/%s", tmpdir, CACHE_DATA);
	if ((out.fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}

	phase(o, "convert", 0, 0);
	switch (csv_convert(csv_fd, name, &out, iso, &cr, csv_progress, (void *)o, err, errlen)) {
	case 0:
		break;
	case -2: /* a write error is ours */
		goto out;
	default: /* anything else is the export's fault */
		rc = SNAP_EINVALID;
		goto out;
	}
	if (cr.replaced)
		log_warn("%s: %lld invalid UTF-8 sequences replaced by U+FFFD", name, cr.replaced);

	/* Validation against the snapshot being served. */
	if (have_prev) {
		if (prev.columns[0] && strcmp(prev.columns, cr.columns) != 0)
			log_warn("the columns changed: was %s, now %s", prev.columns, cr.columns);
		if (!o->force && (double)cr.rows < o->min_rows_ratio * (double)prev.count) {
			snprintf(err, errlen,
				 "%s: %lld rows, fewer than min_rows_ratio %g of the %lld cached "
				 "(use --force to accept)",
				 name, cr.rows, o->min_rows_ratio, prev.count);
			rc = SNAP_EINVALID;
			goto out;
		}
	}

	phase(o, "swap", cr.rows, cr.bytes_out);
	if (fsync(out.fd) < 0) {
		snprintf(err, errlen, "fsync %s: %s", path, strerror(errno));
		goto out;
	}
	snprintf(path, sizeof(path), "%s/%s", tmpdir, CACHE_DATA_GZ);
	if ((gz_fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if ((r->gz_bytes = gzip_copy(out.fd, gz_fd, err, errlen)) < 0)
		goto out;
	if (fsync(gz_fd) < 0) {
		snprintf(err, errlen, "fsync %s: %s", path, strerror(errno));
		goto out;
	}
	/* mtime and size make the id, and nginx's ETag and Last-Modified: set them now. */
	times[0].tv_sec = times[1].tv_sec = t;
	times[0].tv_nsec = times[1].tv_nsec = 0;
	if (futimens(out.fd, times) < 0 || futimens(gz_fd, times) < 0 || fstat(out.fd, &st) < 0) {
		snprintf(err, errlen, "setting the snapshot time: %s", strerror(errno));
		goto out;
	}
	snprintf(r->id, sizeof(r->id), "%lx-%llx", (unsigned long)t, (unsigned long long)st.st_size);

	meta = json_object_new_object();
	cols = json_tokener_parse(cr.columns);
	json_object_object_add(meta, "etag", json_object_new_string(r->id));
	json_object_object_add(meta, "count", json_object_new_int64(cr.rows));
	json_object_object_add(meta, "size_bytes", json_object_new_int64(st.st_size));
	json_object_object_add(meta, "gzip_bytes", json_object_new_int64(r->gz_bytes));
	json_object_object_add(meta, "last_updated", json_object_new_string(iso));
	json_object_object_add(meta, "columns", cols);
	mtext = json_object_to_json_string_ext(meta, JSON_C_TO_STRING_PLAIN);
	snprintf(path, sizeof(path), "%s/%s", tmpdir, CACHE_META);
	if ((meta_fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0 ||
	    write_all(meta_fd, mtext, strlen(mtext)) < 0 || fsync(meta_fd) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if ((dfd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || fsync(dfd) < 0) {
		snprintf(err, errlen, "fsync %s: %s", tmpdir, strerror(errno));
		goto out;
	}
	if (cache_publish(o->cache_dir, tmpdir, r->id, err, errlen) < 0)
		goto out;
	tmpdir[0] = '\0'; /* it is published now */
	r->rows = cr.rows;
	r->bytes = st.st_size;
	rc = SNAP_OK;
out:
	if (out.fd >= 0)
		close(out.fd);
	if (gz_fd >= 0)
		close(gz_fd);
	if (meta_fd >= 0)
		close(meta_fd);
	if (dfd >= 0)
		close(dfd);
	if (tmpdir[0]) {
		const char *files[] = {CACHE_DATA, CACHE_DATA_GZ, CACHE_META};
		for (size_t i = 0; i < 3; i++) {
			snprintf(path, sizeof(path), "%s/%s", tmpdir, files[i]);
			unlink(path);
		}
		rmdir(tmpdir);
	}
	json_object_put(meta);
	free(cr.columns);
	return rc;
}

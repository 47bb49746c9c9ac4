#include "snap.h"

#include "../common/cache.h"
#include "../common/log.h"
#include "csv.h"
#include "gz.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GZ_LEVEL 1 /* fast: the copy exists to save bandwidth, not disk */

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
	struct csv_out out = {-1, NULL, 0, NULL, NULL, 0};
	struct gz *gz = NULL;
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
	chmod(tmpdir, 0750);
	snprintf(path, sizeof(path), "%s/%s", tmpdir, CACHE_DATA);
	if ((out.fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640)) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}

	snprintf(path, sizeof(path), "%s/%s", tmpdir, CACHE_DATA_GZ);
	if ((gz_fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640)) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	/* The gzip copy is made on a second thread while the JSON is written. */
	if ((gz = gz_start(gz_fd, &out, GZ_LEVEL, err, errlen)) == NULL)
		goto out;
	out.tap = gz_tap;
	out.tap_arg = gz;

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
	r->gz_bytes = gz_finish(gz, out.fd, err, errlen);
	gz = NULL;
	if (r->gz_bytes < 0)
		goto out;
	if (fsync(out.fd) < 0) {
		snprintf(err, errlen, "fsync %s/%s: %s", tmpdir, CACHE_DATA, strerror(errno));
		goto out;
	}
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
	snprintf(r->id, sizeof(r->id), "%lx-%llx", (unsigned long)t,
	         (unsigned long long)st.st_size);

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
	if ((meta_fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640)) < 0 ||
	    cache_write_all(meta_fd, mtext, strlen(mtext), -1) < 0 || fsync(meta_fd) < 0) {
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
	gz_abort(gz);
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

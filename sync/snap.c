#include "snap.h"

#include "../common/cache.h"
#include "../common/log.h"
#include "../common/snapidx.h"
#include "csv.h"
#include "gz.h"
#include "index.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
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

/* The column list of snapshot id, as the converter wrote it (caller frees), or NULL. A
 * snapshot of an earlier version has none (its list is in meta.json): nothing to compare. */
static char *snap_columns(const char *cache_dir, const char *id, size_t max)
{
	char path[256];

	snprintf(path, sizeof(path), "snapshots/%s/%s", id, CACHE_COLUMNS);
	return cache_read_alloc(cache_dir, path, max, NULL);
}

/* Write len bytes of text as tmpdir/name (sync_folder makes it durable). Returns 0, or -1
 * with err set. */
static int put_file(const char *tmpdir, const char *name, const char *text, size_t len, char *err,
                    size_t errlen)
{
	char path[4200];
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640)) < 0 ||
	    cache_write_all(fd, text, len, -1) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		rc = -1;
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

/* fsync dir/name, dfd being dir's. */
static int sync_one(int dfd, const char *dir, const char *name, char *err, size_t errlen)
{
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC), e;

	if (fd >= 0 && fsync(fd) == 0) {
		close(fd);
		return 0;
	}
	e = errno;
	snprintf(err, errlen, "fsync %s/%s: %s", dir, name, strerror(e));
	if (fd >= 0)
		close(fd);
	return -1;
}

/*
 * Make the new snapshot's other files durable, then the folder itself (the body and its gzip
 * copy are the finisher's). Everything is written by now, so the first fsync commits the
 * journal with every file's metadata at once and the others only wait for their data, already
 * on its way (sync_file_range): one commit for the folder, not one a file.
 */
static int sync_folder(const char *tmpdir, int indexed, char *err, size_t errlen)
{
	static const char *const files[] = {SNAPIDX_KEYS, SNAPIDX_ROWS, CACHE_META, CACHE_COLUMNS};
	char path[4400];
	struct dirent *e;
	DIR *d;
	int dfd, rc = 0;

	if ((dfd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "%s: %s", tmpdir, strerror(errno));
		return -1;
	}
	for (size_t i = indexed ? 0 : 2; rc == 0 && i < sizeof(files) / sizeof(files[0]); i++)
		rc = sync_one(dfd, tmpdir, files[i], err, errlen);
	snprintf(path, sizeof(path), "%s/%s", tmpdir, SNAPIDX_CHANGES);
	if (rc == 0 && (d = opendir(path)) != NULL) {
		while (rc == 0 && (e = readdir(d)) != NULL)
			if (e->d_name[0] != '.')
				rc = sync_one(dirfd(d), path, e->d_name, err, errlen);
		if (rc == 0 && fsync(dirfd(d)) < 0) {
			snprintf(err, errlen, "fsync %s: %s", path, strerror(errno));
			rc = -1;
		}
		closedir(d);
	}
	if (rc == 0 && fsync(dfd) < 0) {
		snprintf(err, errlen, "fsync %s: %s", tmpdir, strerror(errno));
		rc = -1;
	}
	close(dfd);
	return rc;
}

/*
 * The finisher: the gzip copy's end (its last chunks are still being compressed), its cut to
 * size, both files' times, then their fsyncs, on a thread of its own while the index's keys
 * are merged and the changes written. Its result is read after the join.
 */
struct finisher {
	struct gz *gz;
	int json_fd, gz_fd;
	time_t t;
	const char *tmpdir;
	long long gz_bytes; /* the gzip copy's size, or -1 with err */
	char err[600];
};

static void *finish(void *arg)
{
	struct finisher *f = arg;
	struct timespec times[2];
	const char *what = CACHE_DATA_GZ;

	f->gz_bytes = gz_finish(f->gz, f->json_fd, f->err, sizeof(f->err));
	if (f->gz_bytes < 0)
		return NULL;
	/* A spare's bytes past the gzip copy's end go (a new file: nothing to cut). */
	if (ftruncate(f->gz_fd, (off_t)f->gz_bytes) < 0)
		goto fail;
	/* mtime and size make the id, and nginx's ETag and Last-Modified: no write follows. */
	times[0].tv_sec = times[1].tv_sec = f->t;
	times[0].tv_nsec = times[1].tv_nsec = 0;
	if (futimens(f->json_fd, times) < 0 || futimens(f->gz_fd, times) < 0) {
		snprintf(f->err, sizeof(f->err), "setting the snapshot time: %s", strerror(errno));
		f->gz_bytes = -1;
		return NULL;
	}
	what = CACHE_DATA;
	if (fsync(f->json_fd) < 0)
		goto fail;
	what = CACHE_DATA_GZ;
	if (fsync(f->gz_fd) < 0)
		goto fail;
	return NULL;
fail:
	snprintf(f->err, sizeof(f->err), "fsync %s/%s: %s", f->tmpdir, what, strerror(errno));
	f->gz_bytes = -1;
	return NULL;
}

/* The clock's second. Not time(2): it reads a coarse clock that can lag clock_gettime()
 * by a tick, so right after waiting for a new second it may still name the old one. */
static time_t clock_now(void)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return now.tv_sec;
}

/*
 * No two snapshots share an mtime second: nginx's ETag ("<mtime>-<size>") and Last-Modified
 * (for If-Modified-Since) come from it. If the current one was published in this very second,
 * wait for the next (never move the time ahead of the clock). A current snapshot more than a
 * second ahead (the clock was set back) is not waited for. Returns 0, or -1 when stopped.
 */
/* Whether a stop (signal or sync_timeout) came: then SNAP_ESTOPPED, "stopped before WHAT". */
static int stopped(const struct snap_opts *o, const char *name, const char *what,
                   enum snap_fail *rc, char *err, size_t errlen)
{
	if (o->stop == NULL || !*o->stop)
		return 0;
	snprintf(err, errlen, "%s: stopped before %s", name, what);
	*rc = SNAP_ESTOPPED;
	return 1;
}

static int after_second(time_t prev, volatile sig_atomic_t *stop)
{
	struct timespec now, until = {prev + 1, 0};

	clock_gettime(CLOCK_REALTIME, &now);
	if (now.tv_sec > prev)
		return 0;
	if (prev - now.tv_sec > 1) {
		log_warn("the current snapshot's time is %lld s ahead of the clock; the new one "
		         "takes the clock's time",
		         (long long)(prev - now.tv_sec));
		return 0;
	}
	while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &until, NULL) == EINTR)
		if (stop && *stop)
			return -1;
	return 0;
}

static int cmp_desc(const void *a, const void *b)
{
	return strcmp(*(char *const *)b, *(char *const *)a);
}

/* One changes file, made on a thread of its own when two are made at once. */
struct diff_job {
	char path[4400], why[512];
	const char *name, *tmpdir;
	volatile sig_atomic_t *stop;
	int r;
};

static void *diff_job_run(void *arg)
{
	struct diff_job *j = arg;

	j->r = idx_diff(j->path, j->name, j->tmpdir, j->stop, j->why, sizeof(j->why));
	return NULL;
}

/*
 * The changes from each of the keep - 1 newest snapshots (all older than the one being
 * built) to the one in tmpdir. An older snapshot without a usable index is skipped. Returns
 * 0, -1 (err) on a write failure, or -3 when stopped.
 */
static int write_changes(const struct snap_opts *o, const char *tmpdir, int keep, char *err,
                         size_t errlen)
{
	char path[4400], *names[64];
	struct diff_job job[2];
	struct dirent *e;
	size_t n = 0, i, m;
	int rc = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/snapshots", o->cache_dir);
	if (keep < 2 || (d = opendir(path)) == NULL)
		return 0;
	while ((e = readdir(d)) != NULL && n < 64) {
		if (e->d_name[0] == '.' || strlen(e->d_name) > 60)
			continue;
		if ((names[n] = strdup(e->d_name)) != NULL)
			n++;
	}
	closedir(d);
	/* Ids are fixed-width hex mtimes first: name order is age order. */
	qsort(names, n, sizeof(names[0]), cmp_desc);
	m = n < (size_t)keep - 1 ? n : (size_t)keep - 1;
	/* Two at a time, the second on a thread: the gzip copy is done by now, its core free. */
	for (i = 0; rc == 0 && i < m; i += 2) {
		size_t k, nj = m - i < 2 ? m - i : 2;
		pthread_t th;
		int threaded = 0;
		for (k = 0; k < nj; k++) {
			snprintf(job[k].path, sizeof(job[k].path), "%s/snapshots/%s", o->cache_dir,
			         names[i + k]);
			job[k].name = names[i + k];
			job[k].tmpdir = tmpdir;
			job[k].stop = o->stop;
			job[k].why[0] = '\0';
		}
		if (nj == 2)
			threaded = pthread_create(&th, NULL, diff_job_run, &job[1]) == 0;
		diff_job_run(&job[0]);
		if (nj == 2 && !threaded)
			diff_job_run(&job[1]);
		if (threaded)
			pthread_join(th, NULL);
		for (k = 0; k < nj; k++) {
			if (job[k].r == 1) {
				log_info("no changes file from %s: %s", job[k].name, job[k].why);
			} else if (job[k].r < 0 && rc == 0) {
				snprintf(err, errlen, "%s", job[k].why);
				rc = job[k].r;
			}
		}
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	return rc;
}

static void *prune_thread(void *arg)
{
	cache_prune_before_publish(arg);
	return NULL;
}

/* Remove what a failed build left in tmpdir/changes. */
static void remove_changes(const char *tmpdir)
{
	char path[4400];
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, SNAPIDX_CHANGES);
	if ((d = opendir(path)) == NULL)
		return;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
	rmdir(path);
}

enum snap_fail snap_build(int csv_fd, const char *name, const struct snap_opts *o,
                          struct snap_result *r, char *err, size_t errlen)
{
	char tmpdir[4096], path[4200], iso[32], why[512], *prev_cols = NULL;
	struct cache_snap prev;
	struct csv_result cr;
	struct csv_out out = {.fd = -1};
	struct csv_opts copts = {0};
	struct gz *gz = NULL;
	struct idxw *ix = NULL;
	struct json_object *meta = NULL;
	struct finisher fin;
	struct stat st;
	enum snap_fail rc = SNAP_EWRITE;
	int prev_rc, have_prev, gz_fd = -1, r_ix, pruning = 0, finishing = 0;
	pthread_t pruner, finisher;
	int keep = o->keep_snapshots > 0 ? o->keep_snapshots : CACHE_KEEP;
	time_t t, prev_mtime = 0;
	const char *mtext;

	memset(r, 0, sizeof(*r));
	memset(&cr, 0, sizeof(cr));
	tmpdir[0] = '\0';
	prev_rc = cache_current(o->cache_dir, &prev, 0, why, sizeof(why));
	have_prev = prev_rc == 0;
	if (have_prev) {
		prev_mtime = prev.mtime;
	} else if (prev_rc < 0) {
		/* A current snapshot the guard cannot read: it fails closed. */
		if (!o->force) {
			snprintf(
			    err, errlen,
			    "the current snapshot's row count cannot be read (%s), so the shrink "
			    "guard cannot compare: use --force to replace it",
			    why);
			return SNAP_EINVALID;
		}
		log_warn("the current snapshot cannot be read (%s); replacing it (--force)", why);
		if (cache_current_id(o->cache_dir, prev.id, sizeof(prev.id), why, sizeof(why)) == 0)
			prev_mtime = (time_t)strtoll(prev.id, NULL, 16);
	}

	/* Room for one more snapshot of about the current one's size (or of the input's). */
	if (have_prev) {
		/* the body, its gzip copy, the index (about 5 %) and the changes files (each at
		 * most 1/IDX_CHANGES_MAX of the body) */
		long long need = prev.size + (prev.gz_size > 0 ? prev.gz_size : prev.size / 4) +
		                 prev.size / 16 + (keep - 1) * (prev.size / IDX_CHANGES_MAX);
		if (fstat(csv_fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size * 2 > need)
			need = st.st_size * 2;
		cache_make_room(o->cache_dir, prev.id, need + need / 8 + 1024 * 1024);
	}

	/* The time written now is provisional: the publication's replaces it. */
	t = clock_now();
	cache_iso8601(t, iso, sizeof(iso));

	snprintf(tmpdir, sizeof(tmpdir), "%s/tmp.snap.XXXXXX", o->cache_dir);
	if (mkdtemp(tmpdir) == NULL) {
		snprintf(err, errlen, "%s: %s", tmpdir, strerror(errno));
		return SNAP_EWRITE;
	}
	chmod(tmpdir, 0750);
	/* Over the spares a pruned snapshot left, when there are: written over, their blocks
	 * are neither allocated nor freed (nor discarded), and their pages are reused. */
	snprintf(path, sizeof(path), "%s/%s", tmpdir, CACHE_DATA);
	if ((out.fd = cache_open_spare(o->cache_dir, tmpdir, CACHE_DATA, O_RDWR)) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}

	snprintf(path, sizeof(path), "%s/%s", tmpdir, CACHE_DATA_GZ);
	if ((gz_fd = cache_open_spare(o->cache_dir, tmpdir, CACHE_DATA_GZ, O_WRONLY)) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	/* The gzip copy is made on a second thread while the JSON is written. */
	if ((gz = gz_start(gz_fd, &out, GZ_LEVEL, err, errlen)) == NULL)
		goto out;
	out.tap = gz_tap;
	out.tap_arg = gz;
	/* The converter writes the JSON itself: the gzip thread is the busier one, and writing
	 * 74 MB into the page cache there made it the bottleneck (--csv of 102,052 rows: 0.18 s
	 * with the writes there, 0.16 s here). */
	if (!o->no_index) {
		if ((ix = idxw_start(tmpdir, out.fd, o->id_column ? o->id_column : "id",
		                     o->updated_column ? o->updated_column : "updated_at", err,
		                     errlen)) == NULL)
			goto out;
		out.header = idxw_header;
		out.row = idxw_row;
		out.row_arg = ix;
	}

	phase(o, "convert", 0, 0);
	copts.max_field = o->max_field;
	copts.stop = o->stop;
	copts.progress = csv_progress;
	copts.arg = (void *)o;
	switch (csv_convert(csv_fd, name, &out, iso, &cr, &copts, err, errlen)) {
	case 0:
		break;
	case -2: /* a write error is ours (the gzip thread's says why) */
		if (gz_error(gz))
			snprintf(err, errlen, "%s", gz_error(gz));
		goto out;
	case -3:
		rc = SNAP_ESTOPPED;
		goto out;
	default: /* anything else is the export's fault */
		rc = SNAP_EINVALID;
		goto out;
	}
	/* A spare's bytes past the body's end go, before the index and the diff read it. */
	if (ftruncate(out.fd, (off_t)cr.bytes_out) < 0) {
		snprintf(err, errlen, "%s/%s: %s", tmpdir, CACHE_DATA, strerror(errno));
		goto out;
	}
	if (o->input_end && o->input_end(o->input_arg, err, errlen) != 0) {
		rc = SNAP_EINPUT;
		goto out;
	}
	if (cr.replaced)
		log_warn("%s: %lld invalid UTF-8 sequences replaced by U+FFFD", name, cr.replaced);

	/* Validation against the snapshot being served. The column lists are compared as the
	 * converter writes them (one canonical text), whatever their length. */
	if (have_prev) {
		prev_cols = snap_columns(o->cache_dir, prev.id, strlen(cr.columns) * 2 + 4096);
		if ((prev_cols && strcmp(prev_cols, cr.columns) != 0) ||
		    (prev_cols == NULL && errno == EFBIG))
			log_warn("the columns changed: was %s, now %s",
			         prev_cols ? prev_cols : "a much longer list", cr.columns);
		if (!o->force && (double)cr.rows < o->min_rows_ratio * (double)prev.count) {
			snprintf(err, errlen,
			         "%s: %lld rows, fewer than min_rows_ratio %g of the %lld cached "
			         "(use --force to accept)",
			         name, cr.rows, o->min_rows_ratio, prev.count);
			rc = SNAP_EINVALID;
			goto out;
		}
	}

	/* Accepted: the snapshots its publication will prune go now, on a second thread
	 * (freeing a large body's pages takes a while), while this one finishes the index. */
	pruning = pthread_create(&pruner, NULL, prune_thread, (void *)o->cache_dir) == 0;

	if (stopped(o, name, "the index", &rc, err, errlen))
		goto out;
	/* The publication's time, in the envelope too (the gzip copy reads it back). */
	if (after_second(prev_mtime, o->stop) < 0) {
		snprintf(err, errlen, "%s: stopped before the swap", name);
		rc = SNAP_ESTOPPED;
		goto out;
	}
	t = clock_now();
	cache_iso8601(t, iso, sizeof(iso));
	if (cache_write_all(out.fd, iso, strlen(iso), (off_t)csv_last_updated_off()) < 0) {
		snprintf(err, errlen, "%s/%s: %s", tmpdir, CACHE_DATA, strerror(errno));
		goto out;
	}
	/* The gzip copy's end and the two big fsyncs on the finisher's thread, while this one
	 * finishes the index and then the changes from the older snapshots: before the swap,
	 * in the same folder, so they are published with the body or not at all. */
	fin.gz = gz;
	fin.json_fd = out.fd;
	fin.gz_fd = gz_fd;
	fin.t = t;
	fin.tmpdir = tmpdir;
	gz = NULL; /* the finisher's now: gz_finish frees it */
	if (pthread_create(&finisher, NULL, finish, &fin) == 0)
		finishing = 1;
	else
		finish(&fin);
	r_ix = 0;
	if (ix) {
		r_ix = idxw_finish(ix, (uint64_t)cr.bytes_out, cr.columns, o->stop, err, errlen);
		ix = NULL;
		if (r_ix == 0)
			r_ix = write_changes(o, tmpdir, keep, err, errlen);
	}
	if (finishing) {
		pthread_join(finisher, NULL);
		finishing = 0;
	}
	if (r_ix == -3)
		rc = SNAP_ESTOPPED;
	if (r_ix < 0)
		goto out;
	if (fin.gz_bytes < 0) {
		snprintf(err, errlen, "%s", fin.err);
		goto out;
	}
	r->gz_bytes = fin.gz_bytes;

	phase(o, "swap", cr.rows, cr.bytes_out);
	if (stopped(o, name, "the fsyncs", &rc, err, errlen))
		goto out;
	if (fstat(out.fd, &st) < 0) {
		snprintf(err, errlen, "%s/%s: %s", tmpdir, CACHE_DATA, strerror(errno));
		goto out;
	}
	snprintf(r->id, sizeof(r->id), "%lx-%llx", (unsigned long)t,
	         (unsigned long long)st.st_size);

	meta = json_object_new_object();
	json_object_object_add(meta, "etag", json_object_new_string(r->id));
	json_object_object_add(meta, "count", json_object_new_int64(cr.rows));
	json_object_object_add(meta, "size_bytes", json_object_new_int64(st.st_size));
	json_object_object_add(meta, "gzip_bytes", json_object_new_int64(r->gz_bytes));
	json_object_object_add(meta, "last_updated", json_object_new_string(iso));
	/* meta.json stays small (the responders read it); the column list has its own file. */
	mtext = json_object_to_json_string_ext(meta, JSON_C_TO_STRING_PLAIN);
	if (put_file(tmpdir, CACHE_META, mtext, strlen(mtext), err, errlen) < 0 ||
	    put_file(tmpdir, CACHE_COLUMNS, cr.columns, strlen(cr.columns), err, errlen) < 0 ||
	    sync_folder(tmpdir, !o->no_index, err, errlen) < 0)
		goto out;
	/* The last point to stop: from here on only the rename of the link is left. */
	if (stopped(o, name, "the swap", &rc, err, errlen))
		goto out;
	if (cache_publish(o->cache_dir, tmpdir, r->id, err, errlen) < 0)
		goto out;
	tmpdir[0] = '\0'; /* it is published now */
	r->rows = cr.rows;
	r->bytes = st.st_size;
	rc = SNAP_OK;
out:
	if (finishing)
		pthread_join(finisher, NULL);
	if (pruning)
		pthread_join(pruner, NULL);
	gz_abort(gz);
	idxw_abort(ix);
	if (out.fd >= 0)
		close(out.fd);
	if (gz_fd >= 0)
		close(gz_fd);
	if (tmpdir[0]) {
		const char *files[] = {CACHE_DATA,   CACHE_DATA_GZ, CACHE_META, CACHE_COLUMNS,
		                       SNAPIDX_ROWS, SNAPIDX_KEYS,  IDXW_RUNS};
		remove_changes(tmpdir);
		for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
			snprintf(path, sizeof(path), "%s/%s", tmpdir, files[i]);
			unlink(path);
		}
		rmdir(tmpdir);
	}
	json_object_put(meta);
	free(prev_cols);
	free(cr.columns);
	return rc;
}

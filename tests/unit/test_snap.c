/*
 * snap_build: the shrink guard at, above and below min_rows_ratio and with --force; and a
 * fault injected into each system call of a build in turn (the unit binary links with
 * -Wl,--wrap for them): every failure leaves the current snapshot as it was and no
 * temporary file behind.
 */
#include "../../common/cache.h"
#include "../../sync/snap.h"
#include "t.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <zlib.h>

/* Fault injection: while armed, the fail_at-th wrapped call fails with fail_errno; with
 * fail_only set, only calls on a path (or an fd open on one) that contains it count: the
 * build's threads interleave their calls differently from run to run, so a sweep over all
 * calls may miss one thread's, and a sweep over one kind of file never does. */
static atomic_int calls, fired, armed;
static int fail_at, fail_errno;
static const char *fail_only;

static int inject_on(const char *path, int fd)
{
	char link[64], got[4096];
	ssize_t n;

	if (!atomic_load(&armed))
		return 0;
	if (fail_only) {
		if (path == NULL) {
			snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
			if ((n = readlink(link, got, sizeof(got) - 1)) < 0)
				return 0;
			got[n] = '\0';
			path = got;
		}
		if (strstr(path, fail_only) == NULL)
			return 0;
	}
	if (atomic_fetch_add(&calls, 1) + 1 != fail_at)
		return 0;
	atomic_store(&fired, 1);
	errno = fail_errno;
	return 1;
}

int __real_open(const char *path, int flags, ...);
int __real_write(int fd, const void *buf, size_t n);
ssize_t __real_pwrite(int fd, const void *buf, size_t n, off_t off);
int __real_fsync(int fd);
int __real_futimens(int fd, const struct timespec t[2]);
int __real_rename(const char *a, const char *b);
int __real_symlink(const char *a, const char *b);
char *__real_mkdtemp(char *tmpl);
int __wrap_open(const char *path, int flags, ...);
ssize_t __wrap_write(int fd, const void *buf, size_t n);
ssize_t __wrap_pwrite(int fd, const void *buf, size_t n, off_t off);
int __wrap_fsync(int fd);
int __wrap_futimens(int fd, const struct timespec t[2]);
int __wrap_rename(const char *a, const char *b);
int __wrap_symlink(const char *a, const char *b);
char *__wrap_mkdtemp(char *tmpl);

int __wrap_open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	va_list ap;

	if (flags & (O_CREAT | O_TMPFILE)) {
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	return inject_on(path, -1) ? -1 : __real_open(path, flags, mode);
}
ssize_t __wrap_write(int fd, const void *buf, size_t n)
{
	return inject_on(NULL, fd) ? -1 : __real_write(fd, buf, n);
}
ssize_t __wrap_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	return inject_on(NULL, fd) ? -1 : __real_pwrite(fd, buf, n, off);
}
int __wrap_fsync(int fd)
{
	return inject_on(NULL, fd) ? -1 : __real_fsync(fd);
}
int __wrap_futimens(int fd, const struct timespec t[2])
{
	return inject_on(NULL, fd) ? -1 : __real_futimens(fd, t);
}
int __wrap_rename(const char *a, const char *b)
{
	return inject_on(a, -1) ? -1 : __real_rename(a, b);
}
int __wrap_symlink(const char *a, const char *b)
{
	return inject_on(b, -1) ? -1 : __real_symlink(a, b);
}
char *__wrap_mkdtemp(char *tmpl)
{
	return inject_on(tmpl, -1) ? NULL : __real_mkdtemp(tmpl);
}

/* A phpMyAdmin-style CSV export of n rows (seed varies the values) in a memfd. */
static int export_csv(long n, int seed)
{
	int fd = memfd_create("export", 0);
	FILE *f;
	long i;

	if (fd < 0 || (f = fdopen(dup(fd), "w")) == NULL)
		return -1;
	fputs("\"id\",\"customer\",\"total\",\"note\"\n", f);
	for (i = 1; i <= n; i++)
		fprintf(f, "\"%ld\",\"customer %ld\",\"%ld.%02d\",%s\n", i, i * 31 + seed,
		        i * 7 + seed, seed % 100, i % 5 ? "\"a \"\"quoted\"\", note\"" : "NULL");
	fclose(f);
	lseek(fd, 0, SEEK_SET);
	return fd;
}

static enum snap_fail build(const char *dir, long rows, int seed, double ratio, int force,
                            char *err, size_t errlen)
{
	struct snap_opts o = {.cache_dir = dir, .min_rows_ratio = ratio, .force = force};
	struct snap_result r;
	enum snap_fail rc;
	int fd = export_csv(rows, seed);

	if (fd < 0) {
		snprintf(err, errlen, "setup: memfd: %s", strerror(errno));
		return SNAP_EWRITE;
	}
	rc = snap_build(fd, "export.csv", &o, &r, err, errlen);
	close(fd);
	if (rc == SNAP_OK && r.rows != rows) {
		snprintf(err, errlen, "built %lld rows, want %ld", r.rows, rows);
		return SNAP_EWRITE;
	}
	return rc;
}

/* The current snapshot's id and row count ("" and -1 without one). */
static long long current(const char *dir, char *id, size_t idlen)
{
	struct cache_snap s;
	char err[256];

	if (cache_current(dir, &s, 0, err, sizeof(err)) != 0) {
		snprintf(id, idlen, "%s", "");
		return -1;
	}
	snprintf(id, idlen, "%s", s.id);
	return s.count;
}

/* Entries of dir whose names start with "tmp.", and all entries of dir/snapshots. */
static int count_entries(const char *dir, const char *prefix)
{
	struct dirent *e;
	DIR *d = opendir(dir);
	int n = 0;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.' && strncmp(e->d_name, prefix, strlen(prefix)) == 0)
			n++;
	closedir(d);
	return n;
}

static void shrink_guard(const char *dir)
{
	char err[512], id[64];

	CHECK(build(dir, 100, 1, 0.5, 0, err, sizeof(err)) == SNAP_OK, "first build: %s", err);
	CHECK(current(dir, id, sizeof(id)) == 100, "100 rows current");
	CHECK(build(dir, 49, 2, 0.5, 0, err, sizeof(err)) == SNAP_EINVALID,
	      "49 of 100 rows, below min_rows_ratio 0.5: refused");
	CHECK(strstr(err, "min_rows_ratio") && strstr(err, "--force") && strstr(err, "49 rows"),
	      "the refusal names the ratio, the rows and --force: %s", err);
	CHECK(current(dir, id, sizeof(id)) == 100, "the 100 rows stay current after a refusal");
	CHECK(build(dir, 50, 3, 0.5, 0, err, sizeof(err)) == SNAP_OK,
	      "50 of 100 rows, at min_rows_ratio 0.5: accepted: %s", err);
	CHECK(current(dir, id, sizeof(id)) == 50, "50 rows current");
	CHECK(build(dir, 26, 4, 0.5, 0, err, sizeof(err)) == SNAP_OK,
	      "26 of 50 rows, above min_rows_ratio 0.5: accepted: %s", err);
	CHECK(build(dir, 1, 5, 0.5, 0, err, sizeof(err)) == SNAP_EINVALID, "1 of 26 rows: refused");
	CHECK(build(dir, 1, 5, 0.5, 1, err, sizeof(err)) == SNAP_OK,
	      "1 of 26 rows with --force: accepted: %s", err);
	CHECK(current(dir, id, sizeof(id)) == 1, "1 row current");
	CHECK(build(dir, 0, 6, 0.5, 0, err, sizeof(err)) == SNAP_EINVALID,
	      "an empty export against 1 row: refused");
	CHECK(build(dir, 0, 6, 0, 0, err, sizeof(err)) == SNAP_OK,
	      "an empty export with min_rows_ratio 0: accepted: %s", err);
	CHECK(current(dir, id, sizeof(id)) == 0, "0 rows current");
	CHECK(count_entries(dir, "tmp.") == 0, "no temp files after the refusals");
}

static void faults(const char *dir, const char *name, int err_no, const char *only)
{
	char err[512], before[64], after[64], snaps[600];
	long long rows_before;
	int k, fails = 0, bad = 0, done = 0, in_index = 0, in_changes = 0;
	long rows;

	snprintf(snaps, sizeof(snaps), "%s/snapshots", dir);
	fail_only = only;
	for (k = 1; k < 500 && !done; k++) {
		rows = 200 + k % 2; /* alternate, so each success is a new snapshot */
		rows_before = current(dir, before, sizeof(before));
		atomic_store(&calls, 0);
		atomic_store(&fired, 0);
		fail_at = k;
		fail_errno = err_no;
		atomic_store(&armed, 1);
		enum snap_fail rc = build(dir, rows, k, 0.5, 0, err, sizeof(err));
		atomic_store(&armed, 0);
		if (!atomic_load(&fired)) {
			done = 1; /* every call of a whole build has had its fault */
			CHECK(rc == SNAP_OK, "%s: the build without a fault: %s", name, err);
			continue;
		}
		if (rc != SNAP_OK) {
			fails++;
			in_index += strstr(err, "rows.idx") || strstr(err, "keys.idx") ||
			            strstr(err, "keys.runs");
			in_changes += strstr(err, "/changes") != NULL; /* a file, or the folder */
			if (current(dir, after, sizeof(after)) != rows_before ||
			    strcmp(before, after)) {
				bad++;
				fprintf(stderr, "%s at call %d: the current snapshot changed\n",
				        name, k);
			}
			if (err[0] == '\0' || strstr(err, strerror(err_no)) == NULL) {
				bad++;
				fprintf(stderr, "%s at call %d: the message does not say why: %s\n",
				        name, k, err);
			}
		} else if (current(dir, after, sizeof(after)) != rows || !strcmp(before, after)) {
			/* A fault the build may survive (the directory fsync after the swap). */
			bad++;
			fprintf(stderr, "%s at call %d: success without the new snapshot\n", name,
			        k);
		}
		if (count_entries(dir, "tmp.") != 0) {
			bad++;
			fprintf(stderr, "%s at call %d: temp files left\n", name, k);
		}
		if (count_entries(snaps, "") > CACHE_KEEP) {
			bad++;
			fprintf(stderr, "%s at call %d: %d snapshots, more than %d\n", name, k,
			        count_entries(snaps, ""), CACHE_KEEP);
		}
	}
	CHECK(done, "%s: a build ends without a fault after %d calls", name, k);
	if (only) {
		CHECK(fails >= 2 && in_changes == fails,
		      "%s: faults in the changes files fail the build and name them (%d of %d)",
		      name, in_changes, fails);
	} else {
		CHECK(fails > 5, "%s: injected faults fail the build (%d times)", name, fails);
		CHECK(in_index > 2, "%s: faults land in the index too (%d)", name, in_index);
	}
	CHECK(bad == 0, "%s: every failure leaves the current snapshot and no temp file (%d not)",
	      name, bad);
	fail_only = NULL;
}

/* A stop (SIGTERM or sync_timeout) that comes in a given phase: the phase hook raises it. */
static volatile sig_atomic_t stop_flag;
static const char *stop_in;
static void stop_at(void *arg, const char *phase, long long rows, long long bytes)
{
	(void)arg;
	(void)rows;
	(void)bytes;
	if (strcmp(phase, stop_in) == 0)
		stop_flag = 1;
}

static void stops(const char *dir)
{
	static const char *const phases[] = {"convert", "swap"};
	char err[512], before[64], after[64];
	struct snap_result r;
	size_t i;

	for (i = 0; i < sizeof(phases) / sizeof(phases[0]); i++) {
		struct snap_opts o = {.cache_dir = dir, .stop = &stop_flag, .phase = stop_at};
		long long rows = current(dir, before, sizeof(before));
		int fd = export_csv(30000, (int)i);
		enum snap_fail rc;

		stop_flag = 0;
		stop_in = phases[i];
		rc = snap_build(fd, "export.csv", &o, &r, err, sizeof(err));
		close(fd);
		CHECK(rc == SNAP_ESTOPPED && strstr(err, "stopped"),
		      "a stop in %s: the build stops (%d: %s)", phases[i], rc, err);
		CHECK(current(dir, after, sizeof(after)) == rows && strcmp(before, after) == 0,
		      "a stop in %s: the current snapshot stays", phases[i]);
		CHECK(count_entries(dir, "tmp.") == 0, "a stop in %s: no temp file", phases[i]);
	}
	stop_flag = 0;
}

/* input_end: a streamed export's transfer says whether it ended whole. */
static int input_says;
static int input_calls;
static int input_end(void *arg, char *err, size_t errlen)
{
	(void)arg;
	input_calls++;
	if (input_says)
		snprintf(err, errlen, "the export download was cut off after 123 bytes");
	return input_says;
}

static void input_hook(const char *dir)
{
	char err[512], before[64], after[64];
	struct snap_result r;
	int refuse;

	for (refuse = 1; refuse >= 0; refuse--) {
		struct snap_opts o = {.cache_dir = dir, .input_end = input_end};
		long long rows = current(dir, before, sizeof(before));
		int fd = export_csv(500 + refuse, 7);
		enum snap_fail rc;

		input_says = refuse;
		input_calls = 0;
		rc = snap_build(fd, "export.csv", &o, &r, err, sizeof(err));
		close(fd);
		CHECK(input_calls == 1, "input_end asked once (%d)", input_calls);
		if (refuse) {
			CHECK(rc == SNAP_EINPUT && strstr(err, "cut off after 123 bytes"),
			      "a refused input: not published (%d: %s)", rc, err);
			CHECK(current(dir, after, sizeof(after)) == rows &&
			          strcmp(before, after) == 0,
			      "a refused input: the current snapshot stays");
			CHECK(count_entries(dir, "tmp.") == 0, "a refused input: no temp file");
		} else {
			CHECK(rc == SNAP_OK && current(dir, after, sizeof(after)) == 500,
			      "an accepted input is published (%d: %s)", rc, err);
		}
	}
}

/* All of a file (NULL if it cannot be read); *len gets its length. */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *b = NULL;
	long n;

	*len = 0;
	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (b = malloc((size_t)n + 1)) != NULL && fread(b, 1, (size_t)n, f) == (size_t)n)
		*len = (size_t)n;
	else if (b) {
		free(b);
		b = NULL;
	}
	fclose(f);
	return b;
}

/* The gzip file decompressed equals body (len bytes). */
static int gz_equals(const char *path, const char *body, size_t len)
{
	gzFile z = gzopen(path, "rb");
	char *b = malloc(len + 2);
	int n = -1, extra;

	if (z && b) {
		n = gzread(z, b, (unsigned)len + 1);
		extra = gzeof(z) ? 0 : 1;
		n = extra ? -1 : n;
	}
	if (z)
		gzclose(z);
	n = n == (int)len && memcmp(b, body, len) == 0;
	free(b);
	return n;
}

/* a and b differ, if at all, only in one span of at most 20 bytes (the publication time). */
static int same_but_time(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t first = alen, last = 0;

	if (alen != blen)
		return 0;
	for (size_t i = 0; i < alen; i++)
		if (a[i] != b[i]) {
			first = first < i ? first : i;
			last = i;
		}
	return first == alen || last - first < 20;
}

static long long file_size(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* The path of the oldest snapshot of dir (ids sort by age) in out; -1 if there is none. */
static int oldest_snapshot(const char *dir, char *out, size_t len)
{
	char path[600], name[256] = "";
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "%s/snapshots", dir);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.' && (name[0] == '\0' || strcmp(e->d_name, name) < 0))
			snprintf(name, sizeof(name), "%s", e->d_name);
	closedir(d);
	snprintf(out, len, "%s/%s", path, name);
	return name[0] ? 0 : -1;
}

/*
 * The spares: pruning keeps a removed snapshot's body and gzip copy when nobody has them open,
 * and the next build writes over them: the result is the same as a build into new files,
 * cut to its size. A spare held open by a reader, a symlink or a hard link is never
 * written through.
 */
static void spares(void)
{
	char dir[] = "/tmp/pmacache-spare.XXXXXX", fresh[] = "/tmp/pmacache-fresh.XXXXXX";
	char err[512], path[700], oldest[600], spare[600], spare_gz[600], cmd[700];
	char *body, *want, *held_copy, *held_now;
	size_t len, wlen, hlen, hnow;
	int fd, i;

	if (mkdtemp(dir) == NULL || mkdtemp(fresh) == NULL) {
		CHECK(0, "setup: mkdtemp: %s", strerror(errno));
		return;
	}
	snprintf(spare, sizeof(spare), "%s/%s", dir, CACHE_SPARE);
	snprintf(spare_gz, sizeof(spare_gz), "%s/%s", dir, CACHE_SPARE_GZ);
	for (i = 0; i < CACHE_KEEP; i++)
		CHECK(build(dir, 3000 + i, i, 0, 0, err, sizeof(err)) == SNAP_OK, "build %d: %s", i,
		      err);
	CHECK(file_size(spare) < 0 && file_size(spare_gz) < 0, "no spare while nothing is pruned");
	/* The oldest, about to be pruned: its size is the spare's. */
	CHECK(oldest_snapshot(dir, oldest, sizeof(oldest)) == 0, "setup: the oldest snapshot");
	snprintf(path, sizeof(path), "%s/%s", oldest, CACHE_DATA);
	long long oldest_size = file_size(path);
	snprintf(path, sizeof(path), "%s/%s", oldest, CACHE_DATA_GZ);
	long long oldest_gz = file_size(path);
	CHECK(build(dir, 3100, 9, 0, 0, err, sizeof(err)) == SNAP_OK, "a fourth build: %s", err);
	CHECK(access(oldest, F_OK) != 0, "the oldest is pruned");
	CHECK(file_size(spare) == oldest_size && file_size(spare_gz) == oldest_gz,
	      "its body and gzip copy are the spares (%lld of %lld, %lld of %lld bytes)",
	      file_size(spare), oldest_size, file_size(spare_gz), oldest_gz);

	/* A smaller build over the spares: as a build into new files, cut to its size. */
	struct stat sp, sp_gz, st;
	CHECK(stat(spare, &sp) == 0 && stat(spare_gz, &sp_gz) == 0, "setup: stat the spares");
	CHECK(build(dir, 700, 11, 0, 0, err, sizeof(err)) == SNAP_OK, "a build over the spares: %s",
	      err);
	snprintf(path, sizeof(path), "%s/current/%s", dir, CACHE_DATA);
	CHECK(stat(path, &st) == 0 && st.st_ino == sp.st_ino, "its body is the spare's file");
	snprintf(path, sizeof(path), "%s/current/%s", dir, CACHE_DATA_GZ);
	CHECK(stat(path, &st) == 0 && st.st_ino == sp_gz.st_ino, "its gzip copy is the spare's");
	CHECK(build(fresh, 700, 11, 0, 0, err, sizeof(err)) == SNAP_OK, "the same, fresh: %s", err);
	snprintf(path, sizeof(path), "%s/current/%s", dir, CACHE_DATA);
	body = slurp(path, &len);
	snprintf(path, sizeof(path), "%s/current/%s", fresh, CACHE_DATA);
	want = slurp(path, &wlen);
	CHECK(body && want && len < (size_t)oldest_size && same_but_time(body, len, want, wlen),
	      "the body over the spare is the fresh build's (%zu and %zu bytes, the spare was "
	      "%lld)",
	      len, wlen, oldest_size);
	snprintf(path, sizeof(path), "%s/current/%s", dir, CACHE_DATA_GZ);
	CHECK(body && file_size(path) < oldest_gz && gz_equals(path, body, len),
	      "its gzip copy, over a larger spare, is cut to size and holds the body (%lld bytes)",
	      file_size(path));
	free(body);
	free(want);

	/* A reader holding the body that is pruned next: it is removed, never written over. */
	CHECK(oldest_snapshot(dir, oldest, sizeof(oldest)) == 0, "setup: the oldest snapshot");
	snprintf(path, sizeof(path), "%s/%s", oldest, CACHE_DATA);
	held_copy = slurp(path, &hlen);
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0 && held_copy, "setup: a reader opens %s", path);
	for (i = 0; i < 2; i++) /* one build takes the spare, the next would write over it */
		CHECK(build(dir, 3200 + i, 20 + i, 0, 0, err, sizeof(err)) == SNAP_OK,
		      "build %d with a reader: %s", i, err);
	held_now = malloc(hlen ? hlen : 1);
	hnow = fd >= 0 && held_now ? (size_t)pread(fd, held_now, hlen, 0) : 0;
	CHECK(held_copy && hnow == hlen && memcmp(held_copy, held_now, hlen) == 0,
	      "the reader still reads the old body, byte for byte (%zu of %zu)", hnow, hlen);
	free(held_copy);
	free(held_now);
	if (fd >= 0)
		close(fd);

	/* A planted symlink or hard link as the spare: the build neither follows it nor writes
	 * through it. */
	for (i = 0; i < 2; i++) {
		char victim[600], *v;
		size_t vlen;
		FILE *f;
		snprintf(victim, sizeof(victim), "%s/victim%d", dir, i);
		if ((f = fopen(victim, "w")) != NULL) {
			fputs("precious", f);
			fclose(f);
		}
		unlink(spare);
		CHECK(i == 0 ? symlink(victim, spare) == 0 : link(victim, spare) == 0,
		      "setup: the spare is a %s", i == 0 ? "symlink" : "hard link");
		CHECK(build(dir, 3300 + i, 30 + i, 0, 0, err, sizeof(err)) == SNAP_OK,
		      "a build with a %s spare: %s", i == 0 ? "symlink" : "hard link", err);
		v = slurp(victim, &vlen);
		CHECK(v && vlen == 8 && memcmp(v, "precious", 8) == 0,
		      "the %s's target is untouched", i == 0 ? "symlink" : "hard link");
		free(v);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", dir, fresh);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup failed\n");
}

void test_snap(void)
{
	char dir[] = "/tmp/pmacache-snap.XXXXXX", cmd[128];

	if (mkdtemp(dir) == NULL) {
		CHECK(0, "setup: mkdtemp: %s", strerror(errno));
		return;
	}
	shrink_guard(dir);
	faults(dir, "EIO", EIO, NULL);
	faults(dir, "ENOSPC", ENOSPC, NULL);
	faults(dir, "EIO in /changes", EIO, "/changes");
	stops(dir);
	input_hook(dir);
	spares();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", dir);
}

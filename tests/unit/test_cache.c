#include "../../common/cache.h"
#include "t.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* The publish protocol without a sync: a folder becomes current; old ones are pruned. */
static int make_snap_cols(const char *cache_dir, const char *body, const char *id, int ncols)
{
	char dir[512], path[600], err[256];
	FILE *f;

	snprintf(dir, sizeof(dir), "%s/tmp.snap.XXXXXX", cache_dir);
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/%s", dir, CACHE_DATA);
	if ((f = fopen(path, "w")) == NULL)
		return -1;
	fputs(body, f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/%s", dir, CACHE_META);
	if ((f = fopen(path, "w")) == NULL)
		return -1;
	fprintf(f, "{\"count\":1,\"last_updated\":\"2026-01-01T00:00:00Z\",\"columns\":[\"a\"");
	/* A wide table: 300 names of 53 bytes make meta.json over 16 KiB. */
	for (int i = 1; i < ncols; i++)
		fprintf(f, ",\"column_%046d\"", i);
	fprintf(f, "]}");
	fclose(f);
	return cache_publish(cache_dir, dir, id, err, sizeof(err));
}

static int make_snap(const char *cache_dir, const char *body, const char *id)
{
	return make_snap_cols(cache_dir, body, id, 1);
}

/* cache_read_alloc: any size up to its limit, never through a symlink. */
static void read_alloc(const char *dir)
{
	char path[256], *big = malloc(300000), *got;
	size_t len = 0;

	memset(big, 'x', 299999);
	big[299999] = '\0';
	CHECK(cache_write_file(dir, "big.json", big, 299999, NULL, 0) == 0, "write a 300 KB file");
	got = cache_read_alloc(dir, "big.json", 1 << 20, &len);
	CHECK(got && len == 299999 && strcmp(got, big) == 0, "read back whole: %zu", len);
	free(got);
	got = cache_read_alloc(dir, "big.json", 299999, &len);
	CHECK(got != NULL && len == 299999, "a file of exactly the limit is read");
	free(got);
	errno = 0;
	got = cache_read_alloc(dir, "big.json", 299998, &len);
	CHECK(got == NULL && errno == EFBIG, "one byte over the limit: EFBIG (%d)", errno);
	free(got);
	CHECK(cache_write_file(dir, "empty.json", "", 0, NULL, 0) == 0, "empty file");
	got = cache_read_alloc(dir, "empty.json", 100, &len);
	CHECK(got && len == 0 && got[0] == '\0', "empty file read");
	free(got);
	snprintf(path, sizeof(path), "%s/link.json", dir);
	CHECK(symlink("big.json", path) == 0, "symlink");
	got = cache_read_alloc(dir, "link.json", 1 << 20, &len);
	CHECK(got == NULL && errno == ELOOP, "a symlink is not followed");
	free(got);
	snprintf(path, sizeof(path), "%s/fifo.json", dir);
	CHECK(mkfifo(path, 0644) == 0, "mkfifo");
	got = cache_read_alloc(dir, "fifo.json", 1 << 20, &len);
	CHECK(got == NULL && errno == EINVAL, "a FIFO is refused at once, not waited on");
	free(got);
	free(big);
}

static int count_entries(const char *path)
{
	struct dirent *e;
	int n = 0;
	DIR *d = opendir(path);

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

void test_cache(void)
{
	char dir[] = "/tmp/pmacache-cache.XXXXXX", err[256], buf[64], path[128];
	struct cache_snap s;
	struct stat st;
	int fd, fd2, i;

	if (mkdtemp(dir) == NULL) {
		CHECK(0, "setup: mkdtemp %s: %s", dir, strerror(errno));
		return;
	}
	CHECK(cache_current(dir, &s, 0, err, sizeof(err)) == 1, "no cache yet");
	read_alloc(dir);
	CHECK(cache_write_file(dir, "x.json", "{}", 2, err, sizeof(err)) == 0 &&
	          cache_read_file(dir, "x.json", buf, sizeof(buf)) == 2 && strcmp(buf, "{}") == 0,
	      "small file round trip");
	CHECK(make_snap(dir, "{\"a\":1}", "60000000-7") == 0, "publish 1");
	CHECK(cache_current(dir, &s, 1, err, sizeof(err)) == 0 && strcmp(s.id, "60000000-7") == 0 &&
	          s.count == 1 && s.size == 7 && s.fd >= 0 && strcmp(s.etag, "\"60000000-7\"") == 0,
	      "current is snapshot 1: %s", err);
	if (s.fd >= 0)
		close(s.fd);
	for (i = 2; i <= 6; i++) {
		char id[32];
		snprintf(id, sizeof(id), "6000000%d-7", i);
		CHECK(make_snap(dir, "{\"a\":2}", id) == 0, "publish %d", i);
	}
	CHECK(cache_current(dir, &s, 0, err, sizeof(err)) == 0 && strcmp(s.id, "60000006-7") == 0,
	      "current is the newest");
	/* Published: 60000000-7 and 60000002-7 to 60000006-7; the last CACHE_KEEP stay. */
	for (i = 0; i <= 6; i++) {
		snprintf(path, sizeof(path), "%s/snapshots/6000000%d-7", dir, i);
		if (i == 1)
			continue;
		if (i <= 6 - CACHE_KEEP)
			CHECK(access(path, F_OK) != 0, "old snapshot %d pruned", i);
		else
			CHECK(access(path, F_OK) == 0, "snapshot %d kept (the last %d)", i,
			      CACHE_KEEP);
	}

	/* A meta.json over 16 KiB (300 columns of 53 bytes) is read whole. */
	CHECK(make_snap_cols(dir, "{\"a\":3}", "60000007-7", 300) == 0, "publish a wide one");
	snprintf(path, sizeof(path), "%s/snapshots/60000007-7/meta.json", dir);
	CHECK(stat(path, &st) == 0 && st.st_size > 16384, "its meta.json is %lld bytes",
	      (long long)st.st_size);
	CHECK(cache_current(dir, &s, 0, err, sizeof(err)) == 0 && strcmp(s.id, "60000007-7") == 0 &&
	          s.count == 1,
	      "a wide snapshot is current and readable: %s", err);

	/* Low disk: every old snapshot but the current one goes, the current never. */
	CHECK(cache_make_room(dir, "60000007-7", 1LL << 62) == 2, "two old snapshots removed");
	snprintf(path, sizeof(path), "%s/snapshots", dir);
	CHECK(count_entries(path) == 1, "only the current one is left");
	CHECK(cache_current(dir, &s, 0, err, sizeof(err)) == 0 && strcmp(s.id, "60000007-7") == 0,
	      "and it is still current");
	CHECK(cache_make_room(dir, "60000007-7", 1) == 0, "no removal when there is room");

	/* Before a publication: what it will prune goes (all but the keep - 1 newest), never
	 * current, even when current is not the newest (the clock was set back). */
	for (i = 8; i <= 9; i++) {
		char id[32];
		snprintf(id, sizeof(id), "6000000%d-7", i);
		CHECK(make_snap(dir, "{\"a\":4}", id) == 0, "publish %d", i);
	}
	snprintf(path, sizeof(path), "%s/snapshots", dir);
	CHECK(count_entries(path) == CACHE_KEEP, "%d kept after two more", CACHE_KEEP);
	CHECK(cache_prune_before_publish(dir) == 1, "one goes before the next publication");
	snprintf(path, sizeof(path), "%s/snapshots/60000007-7", dir);
	CHECK(access(path, F_OK) != 0, "the oldest went");
	snprintf(path, sizeof(path), "%s/snapshots", dir);
	CHECK(count_entries(path) == CACHE_KEEP - 1 && cache_prune_before_publish(dir) == 0,
	      "keep - 1 are left, and a second call removes nothing");
	CHECK(make_snap(dir, "{\"a\":5}", "6000000a-7") == 0, "publish a");
	snprintf(path, sizeof(path), "%s/current", dir);
	CHECK(unlink(path) == 0 && symlink("snapshots/60000008-7", path) == 0,
	      "current points at the oldest of 8, 9, a");
	cache_set_keep(2);
	CHECK(cache_prune_before_publish(dir) == 1, "keep 2: one goes");
	snprintf(path, sizeof(path), "%s/snapshots/60000009-7", dir);
	CHECK(access(path, F_OK) != 0, "9 went: neither current nor the newest");
	snprintf(path, sizeof(path), "%s/snapshots/60000008-7", dir);
	CHECK(access(path, F_OK) == 0, "8 stays: current");
	cache_set_keep(CACHE_KEEP);

	/* Low disk with a spare: its blocks are written over, so they count as room. */
	{
		struct statvfs v;
		char *mb = calloc(1, 1 << 20);
		long long free_now;
		snprintf(path, sizeof(path), "%s/%s", dir, CACHE_SPARE);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0640);
		for (i = 0; fd >= 0 && mb && i < 64; i++)
			if (write(fd, mb, 1 << 20) != 1 << 20)
				break;
		CHECK(fd >= 0 && i == 64 && fsync(fd) == 0, "setup: a 64 MB spare");
		if (fd >= 0)
			close(fd);
		free(mb);
		snprintf(path, sizeof(path), "%s/snapshots", dir);
		int before = count_entries(path);
		free_now =
		    statvfs(dir, &v) == 0 ? (long long)v.f_bavail * (long long)v.f_frsize : 0;
		CHECK(before == 2 &&
		          cache_make_room(dir, "60000008-7", free_now + (32LL << 20)) == 0,
		      "32 MB short but a 64 MB spare: nothing removed (%d snapshots)", before);
		snprintf(path, sizeof(path), "%s/%s", dir, CACHE_SPARE);
		unlink(path);
		free_now =
		    statvfs(dir, &v) == 0 ? (long long)v.f_bavail * (long long)v.f_frsize : 0;
		CHECK(cache_make_room(dir, "60000008-7", free_now + (32LL << 20)) == 1,
		      "32 MB short without it: the old snapshot goes");
	}

	/* Single flight. */
	CHECK(cache_sync_trylock(dir, &fd, err, sizeof(err)) == 0, "first lock");
	CHECK(cache_sync_running(dir), "running while held");
	CHECK(cache_sync_trylock(dir, &fd2, err, sizeof(err)) == 1, "second lock refused");
	close(fd);
	CHECK(!cache_sync_running(dir), "not running after release");

	/* Stale temp files of a killed sync go. */
	snprintf(path, sizeof(path), "%s/tmp.snap.dead", dir);
	mkdir(path, 0755);
	cache_remove_stale(dir);
	CHECK(access(path, F_OK) != 0, "stale temp folder removed");
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	if (system(path) != 0)
		fprintf(stderr, "cleanup failed\n");
}

/* Issue 13: nothing is read through a symlink or from outside cache_dir. */
void test_cache_beneath(void)
{
	char dir[] = "/tmp/pmacache-beneath.XXXXXX", err[256], buf[64], p[256], q[256];
	struct cache_snap s;
	FILE *f;

	if (mkdtemp(dir) == NULL)
		return;
	/* A planted snapshot whose data file is a symlink to /etc/passwd, meta.json valid. */
	snprintf(p, sizeof(p), "%s/snapshots", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/snapshots/70000000-1", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/snapshots/70000000-1/" CACHE_META, dir);
	if ((f = fopen(p, "w")) != NULL) {
		fputs("{\"count\":1,\"last_updated\":\"2026-01-01T00:00:00Z\"}", f);
		fclose(f);
	}
	snprintf(p, sizeof(p), "%s/snapshots/70000000-1/" CACHE_DATA, dir);
	CHECK(symlink("/etc/passwd", p) == 0, "plant a symlink");
	snprintf(p, sizeof(p), "%s/current", dir);
	CHECK(symlink("snapshots/70000000-1", p) == 0, "plant current");
	s.fd = -1;
	CHECK(cache_current(dir, &s, 1, err, sizeof(err)) == -1 && s.fd < 0,
	      "a symlinked data file is refused");
	CHECK(strstr(err, "symbolic link") != NULL, "and said so: %s", err);

	/* The data file real, its folder a symlink to a folder elsewhere. */
	snprintf(p, sizeof(p), "%s/elsewhere", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/elsewhere/" CACHE_DATA, dir);
	if ((f = fopen(p, "w")) != NULL) {
		fputs("{\"secret\":1}", f);
		fclose(f);
	}
	snprintf(p, sizeof(p), "%s/elsewhere/" CACHE_META, dir);
	if ((f = fopen(p, "w")) != NULL) {
		fputs("{\"count\":1,\"last_updated\":\"2026-01-01T00:00:00Z\"}", f);
		fclose(f);
	}
	snprintf(p, sizeof(p), "%s/snapshots/70000000-2", dir);
	CHECK(symlink("../elsewhere", p) == 0, "plant a symlinked folder");
	snprintf(p, sizeof(p), "%s/tmp.link", dir);
	snprintf(q, sizeof(q), "%s/current", dir);
	CHECK(symlink("snapshots/70000000-2", p) == 0 && rename(p, q) == 0, "point current at it");
	CHECK(cache_current(dir, &s, 1, err, sizeof(err)) == -1,
	      "a symlinked snapshot folder is refused");

	/* current naming a way out. */
	CHECK(symlink("snapshots/..", p) == 0 && rename(p, q) == 0, "current -> snapshots/..");
	CHECK(cache_current(dir, &s, 1, err, sizeof(err)) == -1, "snapshots/.. is refused");
	CHECK(cache_open_beneath(dir, "../etc/passwd", O_RDONLY) < 0, "no way up");
	CHECK(cache_open_beneath(dir, "/etc/passwd", O_RDONLY) < 0, "no absolute path");

	/* A status file that is a symlink, or a FIFO (which would block a plain open). */
	snprintf(p, sizeof(p), "%s/" CACHE_STATUS, dir);
	CHECK(symlink("/etc/passwd", p) == 0, "plant status.json");
	CHECK(cache_read_file(dir, CACHE_STATUS, buf, sizeof(buf)) < 0, "symlinked status refused");
	snprintf(p, sizeof(p), "%s/" CACHE_PROGRESS, dir);
	CHECK(mkfifo(p, 0644) == 0, "plant a FIFO");
	CHECK(cache_read_file(dir, CACHE_PROGRESS, buf, sizeof(buf)) < 0, "a FIFO is refused");

	/* A real snapshot still reads. */
	snprintf(p, sizeof(p), "%s/snapshots/70000000-3", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/snapshots/70000000-3/" CACHE_DATA, dir);
	if ((f = fopen(p, "w")) != NULL) {
		fputs("{\"a\":1}", f);
		fclose(f);
	}
	snprintf(p, sizeof(p), "%s/snapshots/70000000-3/" CACHE_META, dir);
	if ((f = fopen(p, "w")) != NULL) {
		fputs("{\"count\":1,\"last_updated\":\"2026-01-01T00:00:00Z\"}", f);
		fclose(f);
	}
	snprintf(p, sizeof(p), "%s/tmp.link", dir);
	CHECK(symlink("snapshots/70000000-3", p) == 0 && rename(p, q) == 0, "current -> real");
	CHECK(cache_current(dir, &s, 1, err, sizeof(err)) == 0 && s.fd >= 0 && s.size == 7,
	      "a real snapshot reads: %s", err);
	if (s.fd >= 0)
		close(s.fd);
	snprintf(p, sizeof(p), "rm -rf '%s'", dir);
	if (system(p) != 0)
		fprintf(stderr, "cleanup failed\n");
}

#include "cache.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

void cache_iso8601(time_t t, char *buf, size_t len)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int cache_mkdir(const char *path, mode_t mode)
{
	if (mkdir(path, mode) == 0 || errno == EEXIST)
		return 0;
	return -1;
}

/* Open (creating) and lock cache_dir/name. Returns the fd, or -1 (errno set). */
static int lock_file(const char *cache_dir, const char *name, int op)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", cache_dir, name);
	/* Read-only is enough for flock(2), and closing it makes no IN_CLOSE_WRITE event. */
	if ((fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0640)) < 0)
		return -1;
	while (flock(fd, op) < 0) {
		if (errno == EINTR)
			continue;
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int cache_write_all(int fd, const void *buf, size_t len, off_t off)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t w = off < 0 ? write(fd, p, len) : pwrite(fd, p, len, off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		len -= (size_t)w;
		if (off >= 0)
			off += w;
	}
	return 0;
}

/* The walk openat2 does, for kernels without it (before 5.6) or a seccomp filter that hides
 * it: one component at a time, none of them a symlink, "." and ".." refused. */
static int open_walk(int dirfd, const char *rel, int flags)
{
	char comp[256];
	const char *p = rel;
	int fd = dirfd, next;

	for (;;) {
		size_t n = strcspn(p, "/");
		int last = p[n] == '\0';
		if (n == 0 || n >= sizeof(comp) || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.')) {
			errno = EXDEV;
			next = -1;
		} else {
			memcpy(comp, p, n);
			comp[n] = '\0';
			next = openat(fd, comp,
			              last ? flags | O_NOFOLLOW
			                   : O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (fd != dirfd) {
			int e = errno;
			close(fd);
			errno = e;
		}
		if (next < 0 || last)
			return next;
		fd = next;
		p += n + 1;
	}
}

int cache_open_beneath(const char *cache_dir, const char *rel, int flags)
{
	struct open_how how;
	int dirfd, fd, e;

	if ((dirfd = open(cache_dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	flags |= O_CLOEXEC | O_NONBLOCK; /* O_NONBLOCK: a FIFO planted here cannot hang us */
	memset(&how, 0, sizeof(how));
	how.flags = (unsigned long long)flags;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
	fd = (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
	if (fd < 0 && (errno == ENOSYS || errno == EPERM))
		fd = open_walk(dirfd, rel, flags);
	e = errno;
	close(dirfd);
	errno = e;
	return fd;
}

/* cache_open_beneath, and the file must be a regular one. */
static int open_regular(const char *cache_dir, const char *rel, struct stat *st)
{
	int fd = cache_open_beneath(cache_dir, rel, O_RDONLY);

	if (fd < 0)
		return -1;
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	return fd;
}

ssize_t cache_read_file(const char *cache_dir, const char *name, char *buf, size_t len)
{
	struct stat st;
	ssize_t n, total = 0;
	int fd;

	if ((fd = open_regular(cache_dir, name, &st)) < 0)
		return -1;
	while ((size_t)total < len - 1) {
		n = read(fd, buf + total, len - 1 - (size_t)total);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			close(fd);
			errno = e;
			return -1;
		}
		if (n == 0)
			break;
		total += n;
	}
	buf[total] = '\0';
	close(fd);
	return total;
}

/* All of fd (a regular file of about size bytes) into a buffer that grows, up to max bytes.
 * Closes fd. */
static char *read_all(int fd, off_t size, size_t max, size_t *len)
{
	char *buf = NULL, *nb;
	size_t cap, total = 0;
	ssize_t n;
	int e;

	/* The size is a hint (the file may be replaced, never changed): the buffer grows. */
	cap = ((size_t)size < max ? (size_t)size : max) + 1;
	if ((buf = malloc(cap)) == NULL)
		goto fail;
	for (;;) {
		if (total == cap - 1) { /* full: grow, or make sure nothing is left */
			if (cap - 1 >= max) {
				char c;
				while ((n = read(fd, &c, 1)) < 0 && errno == EINTR)
					;
				if (n < 0)
					goto fail;
				if (n > 0) {
					errno = EFBIG;
					goto fail;
				}
				break;
			}
			cap = cap - 1 >= max / 2 ? max + 1 : cap * 2 + 64;
			if (cap > max + 1)
				cap = max + 1;
			if ((nb = realloc(buf, cap)) == NULL)
				goto fail;
			buf = nb;
		}
		n = read(fd, buf + total, cap - 1 - total);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		if (n == 0)
			break;
		total += (size_t)n;
	}
	buf[total] = '\0';
	close(fd);
	if (len)
		*len = total;
	return buf;
fail:
	e = errno;
	free(buf);
	close(fd);
	errno = e;
	return NULL;
}

char *cache_read_alloc(const char *cache_dir, const char *name, size_t max, size_t *len)
{
	struct stat st;
	int fd;

	/* Beneath cache_dir without a symlink, and O_NONBLOCK: a FIFO planted here cannot hang
	 * the reader; only a regular file is read. */
	if ((fd = open_regular(cache_dir, name, &st)) < 0)
		return NULL;
	return read_all(fd, st.st_size, max, len);
}

static int parse_meta(const char *text, struct cache_snap *s)
{
	struct json_object *o, *v;
	int rc = -1;

	if ((o = json_tokener_parse(text)) == NULL)
		return -1;
	if (!json_object_object_get_ex(o, "count", &v))
		goto out;
	s->count = json_object_get_int64(v);
	if (!json_object_object_get_ex(o, "last_updated", &v))
		goto out;
	snprintf(s->last_updated, sizeof(s->last_updated), "%s", json_object_get_string(v));
	s->gz_size = -1;
	if (json_object_object_get_ex(o, "gzip_bytes", &v))
		s->gz_size = json_object_get_int64(v);
	rc = 0;
out:
	json_object_put(o);
	return rc;
}

int cache_current_id(const char *cache_dir, char *id, size_t idlen, char *err, size_t errlen)
{
	char path[4096], link[256];
	ssize_t n;

	snprintf(path, sizeof(path), "%s/current", cache_dir);
	if ((n = readlink(path, link, sizeof(link) - 1)) < 0) {
		if (errno == ENOENT)
			return 1;
		errf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	link[n] = '\0';
	/* link is "snapshots/<id>" */
	/* Only a plain name inside snapshots/: no "..", no other folder, nothing nginx's URI
	 * handling would read differently. */
	if (strncmp(link, "snapshots/", 10) != 0 || strlen(link + 10) >= idlen ||
	    link[10] == '\0' || link[10] == '.' ||
	    strspn(link + 10,
	           "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ._-") !=
	        strlen(link + 10)) {
		errf(err, errlen, "%s: unexpected target '%s'", path, link);
		return -1;
	}
	memcpy(id, link + 10, strlen(link + 10) + 1);
	return 0;
}

/* Why open_regular failed, in words an admin acts on. */
static const char *open_error(void)
{
	if (errno == ELOOP || errno == EXDEV || errno == ENOTDIR)
		return "a symbolic link or a path out of cache_dir: refused";
	if (errno == EINVAL)
		return "not a regular file: refused";
	return strerror(errno);
}

/* Snapshots never change once published: what was read of one is kept, by id. */
static pthread_mutex_t memo_mu = PTHREAD_MUTEX_INITIALIZER;
static struct cache_snap memo;
static char memo_dir[4096];

int cache_current(const char *cache_dir, struct cache_snap *s, int want_fd, char *err,
                  size_t errlen)
{
	char path[4096], link[256], rel[320], *meta = NULL;
	struct stat st;
	int lk, hit, fd = -1, rc = -1;

	memset(s, 0, sizeof(*s));
	s->fd = -1;
	if ((lk = lock_file(cache_dir, "cache.lock", LOCK_SH)) < 0) {
		errf(err, errlen, "%s/cache.lock: %s", cache_dir, strerror(errno));
		return -1;
	}
	if ((rc = cache_current_id(cache_dir, s->id, sizeof(s->id), err, errlen)) != 0)
		goto out;
	rc = -1;
	snprintf(link, sizeof(link), "snapshots/%s", s->id);
	snprintf(s->etag, sizeof(s->etag), "\"%s\"", s->id);
	snprintf(rel, sizeof(rel), "%s/%s", link, CACHE_DATA);
	snprintf(path, sizeof(path), "%s/%s", cache_dir, rel);
	pthread_mutex_lock(&memo_mu);
	hit = strcmp(memo.id, s->id) == 0 && strcmp(memo_dir, cache_dir) == 0;
	if (hit)
		*s = memo;
	pthread_mutex_unlock(&memo_mu);
	if (hit) {
		s->fd = -1;
		if (want_fd && (s->fd = open_regular(cache_dir, rel, &st)) < 0) {
			errf(err, errlen, "%s: %s", path, open_error());
			goto out;
		}
		rc = 0;
		goto out;
	}
	if ((fd = open_regular(cache_dir, rel, &st)) < 0) {
		errf(err, errlen, "%s: %s", path, open_error());
		goto out;
	}
	s->size = st.st_size;
	s->mtime = st.st_mtime;
	snprintf(path, sizeof(path), "%s/%s", link, CACHE_META);
	if ((meta = cache_read_alloc(cache_dir, path, CACHE_META_MAX, NULL)) == NULL) {
		errf(err, errlen, "%s/%s: %s", cache_dir, path, open_error());
		goto out;
	}
	if (parse_meta(meta, s) < 0) {
		errf(err, errlen, "%s/%s: not valid snapshot metadata", cache_dir, path);
		goto out;
	}
	s->fd = -1;
	pthread_mutex_lock(&memo_mu);
	memo = *s;
	snprintf(memo_dir, sizeof(memo_dir), "%s", cache_dir);
	pthread_mutex_unlock(&memo_mu);
	if (want_fd) {
		s->fd = fd;
		fd = -1;
	}
	rc = 0;
out:
	free(meta);
	if (fd >= 0)
		close(fd);
	close(lk);
	return rc;
}

/*
 * The sync lock is an open-file-description lock (F_OFD_SETLK) on all of sync.lock: held by
 * the open file, inherited with the fd by the child that /refresh starts, gone when the last
 * fd closes or the holder dies. Unlike flock(2), it can be tested without being taken
 * (F_OFD_GETLK), so /status and the streams never collide with a sync taking it.
 */
static int sync_lock_op(int fd, int cmd, short type)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = 0;
	fl.l_len = 0;
	if (fcntl(fd, cmd, &fl) < 0)
		return -1;
	return cmd == F_OFD_GETLK ? fl.l_type != F_UNLCK : 0;
}

int cache_sync_trylock(const char *cache_dir, int *fd, char *err, size_t errlen)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/sync.lock", cache_dir);
	if ((*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640)) < 0) {
		errf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (sync_lock_op(*fd, F_OFD_SETLK, F_WRLCK) == 0)
		return 0;
	{
		int e = errno;
		close(*fd);
		*fd = -1;
		if (e == EAGAIN || e == EACCES)
			return 1;
		errf(err, errlen, "%s: %s", path, strerror(e));
	}
	return -1;
}

int cache_sync_holds(int fd)
{
	/* Taking a lock this open file already holds succeeds; another holder makes it fail. */
	return sync_lock_op(fd, F_OFD_SETLK, F_WRLCK) == 0;
}

int cache_sync_running(const char *cache_dir)
{
	char path[4096];
	int fd, held;

	snprintf(path, sizeof(path), "%s/sync.lock", cache_dir);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	held = sync_lock_op(fd, F_OFD_GETLK, F_WRLCK) == 1;
	close(fd);
	return held;
}

static int fsync_dir(const char *dir)
{
	int fd, rc;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

int cache_write_file(const char *cache_dir, const char *name, const char *buf, size_t len,
                     char *err, size_t errlen)
{
	char tmp[4096], dst[4096];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s/tmp.%s.XXXXXX", cache_dir, name);
	snprintf(dst, sizeof(dst), "%s/%s", cache_dir, name);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		errf(err, errlen, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	if (cache_write_all(fd, buf, len, -1) < 0) {
		errf(err, errlen, "write %s: %s", tmp, strerror(errno));
		goto fail;
	}
	if (fchmod(fd, 0640) < 0 || fsync(fd) < 0) {
		errf(err, errlen, "fsync %s: %s", tmp, strerror(errno));
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		errf(err, errlen, "close %s: %s", tmp, strerror(errno));
		goto fail;
	}
	fd = -1;
	if (rename(tmp, dst) < 0) {
		errf(err, errlen, "rename %s: %s", dst, strerror(errno));
		goto fail;
	}
	if (fsync_dir(cache_dir) < 0) {
		/* The new file is in place; only its durability is in doubt. */
		errf(err, errlen, "fsync %s: %s", cache_dir, strerror(errno));
		return -1;
	}
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return -1;
}

/* rm -r of a folder one level deep (snapshot and temp folders hold only files). */
static void remove_tree(const char *path)
{
	char sub[4096];
	struct dirent *e;
	DIR *d;

	if ((d = opendir(path)) == NULL) {
		unlink(path);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		if (unlink(sub) < 0 && errno == EISDIR) /* a snapshot's changes/ */
			remove_tree(sub);
	}
	closedir(d);
	rmdir(path);
}

void cache_remove_stale(const char *cache_dir)
{
	char path[4096];
	struct dirent *e;
	DIR *d;

	if ((d = opendir(cache_dir)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, "tmp.", 4) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", cache_dir, e->d_name);
		remove_tree(path);
	}
	closedir(d);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cache_keep = CACHE_KEEP;

void cache_set_keep(int n)
{
	cache_keep = n;
}

/* The names in snapshots/ (at most max, strdup'ed: the caller frees them), oldest first:
 * ids are fixed-width hex mtimes first, so name order is age order. */
static size_t snapshot_names(const char *cache_dir, char **names, size_t max)
{
	char path[4096];
	struct dirent *e;
	size_t n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/snapshots", cache_dir);
	if ((d = opendir(path)) == NULL)
		return 0;
	while ((e = readdir(d)) != NULL && n < max) {
		if (e->d_name[0] == '.')
			continue;
		if ((names[n] = strdup(e->d_name)) != NULL)
			n++;
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), cmp_names);
	return n;
}

/* A pruned snapshot's big files, and the spare each becomes. */
static const char *const spares[][2] = {{CACHE_DATA, CACHE_SPARE}, {CACHE_DATA_GZ, CACHE_SPARE_GZ}};

/*
 * Keep snapdir/name as cache_dir/spare when there is no spare yet and no one has the file
 * open: a write lease is granted only then, and breaks if someone opens it before the rename
 * (the break's signal is SIGURG, ignored by default, not SIGIO, which would kill us). A
 * broken lease means a reader that will read the old bytes: the spare is removed instead.
 */
static void spare_keep(const char *cache_dir, const char *snapdir, const char *name,
                       const char *spare)
{
	char src[4400], dst[4400];
	struct stat st;
	int fd;

	snprintf(dst, sizeof(dst), "%s/%s", cache_dir, spare);
	if (lstat(dst, &st) == 0 || errno != ENOENT)
		return;
	snprintf(src, sizeof(src), "%s/%s", snapdir, name);
	if ((fd = open(src, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) < 0)
		return;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 && st.st_size > 0 &&
	    fcntl(fd, F_SETSIG, SIGURG) == 0 && fcntl(fd, F_SETLEASE, F_WRLCK) == 0) {
		if (rename(src, dst) == 0 && fcntl(fd, F_GETLEASE) != F_WRLCK)
			unlink(dst);
		fcntl(fd, F_SETLEASE, F_UNLCK);
	}
	close(fd);
}

int cache_open_spare(const char *cache_dir, const char *tmpdir, const char *name, int flags)
{
	char src[4400], dst[4400];
	struct stat st;
	int fd;

	snprintf(dst, sizeof(dst), "%s/%s", tmpdir, name);
	for (size_t i = 0; i < sizeof(spares) / sizeof(spares[0]); i++) {
		if (strcmp(name, spares[i][0]) != 0)
			continue;
		snprintf(src, sizeof(src), "%s/%s", cache_dir, spares[i][1]);
		if (rename(src, dst) < 0)
			break;
		/* Not through a symlink, not a FIFO's open that waits, not a file linked
		 * elsewhere or someone else's: anything else is removed, and a new file made. */
		fd = open(dst, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
		    st.st_uid == geteuid() && fchmod(fd, 0640) == 0 &&
		    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) == 0)
			return fd;
		if (fd >= 0)
			close(fd);
		unlink(dst);
		break;
	}
	return open(dst, flags | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
}

/* Remove all snapshots but the keep newest (by id, whose mtime part sorts by age) and
 * current; the caller holds the cache lock. A removed snapshot's body and gzip copy become
 * the spares if there are none. Returns how many were removed. */
static int prune(const char *cache_dir, const char *current, size_t keep)
{
	char path[4096], *names[256];
	size_t n = snapshot_names(cache_dir, names, 256), i;
	int removed = 0;

	for (i = 0; i < n; i++) {
		if (i + keep < n && strcmp(names[i], current) != 0) {
			snprintf(path, sizeof(path), "%s/snapshots/%s", cache_dir, names[i]);
			for (size_t k = 0; k < sizeof(spares) / sizeof(spares[0]); k++)
				spare_keep(cache_dir, path, spares[k][0], spares[k][1]);
			remove_tree(path);
			removed++;
		}
		free(names[i]);
	}
	return removed;
}

/* keep_snapshots, at least 2: a reader that has just named the previous one can open it. */
static size_t keep_n(void)
{
	return cache_keep < 2 ? 2 : (size_t)cache_keep;
}

int cache_prune_before_publish(const char *cache_dir)
{
	char cur[64] = "", why[256];
	int lk, removed;

	if ((lk = lock_file(cache_dir, "cache.lock", LOCK_EX)) < 0)
		return 0;
	/* Under the lock: whatever current names now is kept. The publication to come adds
	 * one: keep one fewer. */
	cache_current_id(cache_dir, cur, sizeof(cur), why, sizeof(why));
	removed = prune(cache_dir, cur, keep_n() - 1);
	close(lk);
	return removed;
}

int cache_publish(const char *cache_dir, const char *tmpdir, const char *id, char *err,
                  size_t errlen)
{
	char snaps[4096], dst[4400], link[4096], tmplink[4096], target[256];
	struct stat st;
	int lk, rc = -1;

	snprintf(snaps, sizeof(snaps), "%s/snapshots", cache_dir);
	if (cache_mkdir(snaps, 0750) < 0) {
		errf(err, errlen, "%s: %s", snaps, strerror(errno));
		return -1;
	}
	snprintf(dst, sizeof(dst), "%s/%s", snaps, id);
	snprintf(target, sizeof(target), "snapshots/%s", id);
	snprintf(link, sizeof(link), "%s/current", cache_dir);
	snprintf(tmplink, sizeof(tmplink), "%s/tmp.current.%ld", cache_dir, (long)getpid());

	if ((lk = lock_file(cache_dir, "cache.lock", LOCK_EX)) < 0) {
		errf(err, errlen, "%s/cache.lock: %s", cache_dir, strerror(errno));
		return -1;
	}
	if (rename(tmpdir, dst) < 0) {
		errf(err, errlen, "rename %s to %s: %s", tmpdir, dst, strerror(errno));
		goto out;
	}
	if (fsync_dir(snaps) < 0) {
		errf(err, errlen, "fsync %s: %s", snaps, strerror(errno));
		goto undo;
	}
	unlink(tmplink);
	if (symlink(target, tmplink) < 0) {
		errf(err, errlen, "symlink %s: %s", tmplink, strerror(errno));
		goto undo;
	}
	/* The swap: readers see the old target or the new one, never anything between. */
	if (rename(tmplink, link) < 0) {
		errf(err, errlen, "rename %s: %s", link, strerror(errno));
		unlink(tmplink);
		goto undo;
	}
	if (fsync_dir(cache_dir) < 0) {
		/* The swap is done and served; only its durability is in doubt. After a crash
		 * the old link may come back, which is still a whole snapshot. */
		log_warn("fsync %s after the swap: %s", cache_dir, strerror(errno));
	}
	/* The stable name for people and tools that look for data_cache.json. */
	snprintf(dst, sizeof(dst), "%s/%s", cache_dir, CACHE_DATA);
	if (lstat(dst, &st) < 0 && errno == ENOENT && symlink("current/" CACHE_DATA, dst) < 0)
		errf(err, errlen, "symlink %s: %s", dst, strerror(errno));
	prune(cache_dir, id, keep_n());
	rc = 0;
	goto out;
undo:
	/* Not published: put the folder back so the caller's cleanup removes it. */
	rename(dst, tmpdir);
out:
	close(lk);
	return rc;
}

static long long free_bytes(const char *dir)
{
	struct statvfs v;

	if (statvfs(dir, &v) < 0)
		return -1;
	return (long long)v.f_bavail * (long long)v.f_frsize;
}

/* Disk space of a snapshot folder's files. */
static long long tree_bytes(const char *path)
{
	char sub[4400];
	struct dirent *e;
	struct stat st;
	long long n = 0;
	DIR *d;

	if ((d = opendir(path)) == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		if (e->d_name[0] != '.' && lstat(sub, &st) == 0)
			n += (long long)st.st_blocks * 512;
	}
	closedir(d);
	return n;
}

int cache_make_room(const char *cache_dir, const char *keep_id, long long need)
{
	char path[4096], cur[64] = "", *names[256], why[256];
	long long avail = free_bytes(cache_dir), freed, spare = 0;
	struct stat st;
	size_t n, i;
	int lk, removed = 0;

	/* The spares' blocks are written over, not added to. */
	for (i = 0; i < sizeof(spares) / sizeof(spares[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", cache_dir, spares[i][1]);
		if (lstat(path, &st) == 0 && S_ISREG(st.st_mode))
			spare += (long long)st.st_blocks * 512;
	}
	if (avail < 0 || avail + spare >= need)
		return 0;
	if ((lk = lock_file(cache_dir, "cache.lock", LOCK_EX)) < 0)
		return 0;
	/* Under the lock: whatever current names now is kept, whatever the caller thought. */
	cache_current_id(cache_dir, cur, sizeof(cur), why, sizeof(why));
	n = snapshot_names(cache_dir, names, 256);
	for (i = 0; i < n; i++) {
		if (avail + spare < need && strcmp(names[i], cur) != 0 &&
		    (keep_id == NULL || strcmp(names[i], keep_id) != 0)) {
			snprintf(path, sizeof(path), "%s/snapshots/%s", cache_dir, names[i]);
			freed = tree_bytes(path);
			remove_tree(path);
			removed++;
			avail = free_bytes(cache_dir);
			log_warn("low on disk space: removed the old snapshot %s (%.1f MB) before "
			         "building; %.1f MB free now (the spares included), about %.1f MB "
			         "needed",
			         names[i], (double)freed / 1e6, (double)(avail + spare) / 1e6,
			         (double)need / 1e6);
		}
		free(names[i]);
	}
	close(lk);
	if (avail >= 0 && avail + spare < need)
		log_warn(
		    "low on disk space: %.1f MB free in %s (the spares included), about %.1f MB "
		    "needed, and no old snapshot left to remove",
		    (double)(avail + spare) / 1e6, cache_dir, (double)need / 1e6);
	return removed;
}

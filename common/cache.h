/*
 * cache: the cache-file protocol that the responders (readers) and the sync (the only writer)
 * both obey. Inside cache_dir:
 *
 *   cache.lock            stable lock file: shared while reading, exclusive while swapping
 *   sync.lock             OFD-locked by the one running sync (single-flight)
 *   snapshots/<id>/       one published snapshot, never changed after publication:
 *       data_cache.json     the complete /fetch-data body, ready to send
 *       data_cache.json.gz  the same, gzip-compressed
 *       meta.json           {"etag","count","size_bytes","gzip_bytes","last_updated"}: small
 *                           (snapshots of earlier versions also hold "columns"; read up to
 *                           CACHE_META_MAX)
 *       columns.json        the JSON array of column names (any length; only the sync reads it)
 *   current -> snapshots/<id>          swapped atomically by rename(2)
 *   data_cache.json -> current/data_cache.json
 *   status.json, progress.json         small files, each replaced atomically
 *   tmp.*                 a sync's work in progress; stale ones are removed by the next sync
 *
 * <id> is "<mtime hex>-<size hex>" of data_cache.json, which is also the ETag nginx computes
 * for it, so the responder and nginx agree on validators. The mtime is the clock's time of
 * publication, never ahead of it; no two snapshots share an mtime second (the sync waits for
 * the next second instead), so Last-Modified and the ETag both change with every snapshot.
 * A snapshot's files travel together: anything placed beside them (an index) is swapped in
 * with them.
 */
#ifndef PMACACHE_CACHE_H
#define PMACACHE_CACHE_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#define CACHE_DATA "data_cache.json"
#define CACHE_DATA_GZ "data_cache.json.gz"
#define CACHE_META "meta.json"
#define CACHE_COLUMNS "columns.json"
#define CACHE_STATUS "status.json"
#define CACHE_PROGRESS "progress.json"
#define CACHE_SPARE "spare.json"          /* a pruned body, kept for the next sync to reuse */
#define CACHE_SPARE_GZ "spare.json.gz"    /* and its gzip copy */
#define CACHE_KEEP 3                      /* the default keep_snapshots */
#define CACHE_META_MAX (64 * 1024 * 1024) /* meta.json, as earlier versions wrote it */
#define CACHE_STATUS_MAX (64 * 1024)      /* status.json, progress.json */

struct cache_snap {
	char id[64];
	char etag[68]; /* id in quotes */
	long long count;
	long long size;
	long long gz_size; /* -1 if there is no gzip copy */
	time_t mtime;
	char last_updated[32];
	int fd; /* data_cache.json opened for reading, or -1 */
};

/*
 * Find the current snapshot under a shared lock. If want_fd, also open its data file
 * (the caller closes s->fd). Returns 0, 1 when there is no cache yet, or -1 on error.
 */
int cache_current(const char *cache_dir, struct cache_snap *s, int want_fd, char *err,
                  size_t errlen);

/*
 * Only the id of the current snapshot, from the current link, without the lock or the
 * metadata. rename(2) swaps the link atomically and a snapshot folder outlives the next
 * swaps (pruning keeps at least 2), so a reader that only names the snapshot for nginx to
 * open needs no more. Returns 0, 1 when there is no cache yet, or -1 on error.
 */
int cache_current_id(const char *cache_dir, char *id, size_t idlen, char *err, size_t errlen);

/*
 * Try to take the single-flight sync lock without waiting. Returns 0 with the locked fd in
 * *fd (O_CLOEXEC), 1 if another sync holds it, -1 on error.
 */
int cache_sync_trylock(const char *cache_dir, int *fd, char *err, size_t errlen);

/* Whether some sync holds the sync lock right now (tested, never taken). */
int cache_sync_running(const char *cache_dir);

/* Whether fd (inherited through --lock-fd) is an open sync.lock whose lock we hold. */
int cache_sync_holds(int fd);

/*
 * Replace cache_dir/name atomically with buf: temp file in cache_dir, write, fsync, rename,
 * fsync of the folder. The temp file is removed on every failure path.
 */
int cache_write_file(const char *cache_dir, const char *name, const char *buf, size_t len,
                     char *err, size_t errlen);

/* Write all of buf to fd at offset off, or at the file position when off < 0, retrying
 * short writes and EINTR. Returns 0, or -1 (errno set). */
int cache_write_all(int fd, const void *buf, size_t len, off_t off);

/*
 * Open cache_dir/rel (rel relative, e.g. "snapshots/<id>/data_cache.json") without following
 * any symlink and without leaving cache_dir: openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS),
 * or a walk with O_NOFOLLOW where the kernel lacks openat2. O_CLOEXEC | O_NONBLOCK are added.
 * Returns the fd, or -1 (errno ELOOP or EXDEV for a symlink or a way out).
 */
int cache_open_beneath(const char *cache_dir, const char *rel, int flags);

/* Read a small regular file cache_dir/name (opened by cache_open_beneath) into buf,
 * NUL-terminated. Returns bytes read, or -1 (errno set). */
ssize_t cache_read_file(const char *cache_dir, const char *name, char *buf, size_t len);

/*
 * Read all of cache_dir/name (a regular file, not through a symlink) into a buffer that grows
 * as needed, NUL-terminated; the caller frees it. Returns NULL with errno set, EFBIG if the
 * file is longer than max bytes. *len (if not NULL) gets the length.
 */
char *cache_read_alloc(const char *cache_dir, const char *name, size_t max, size_t *len);

/*
 * Low disk: if the file system of cache_dir has fewer than need bytes free, remove snapshots
 * other than keep_id (the current one), oldest first, until it has, under the exclusive cache
 * lock. Each removal is logged. Returns the number removed.
 */
int cache_make_room(const char *cache_dir, const char *keep_id, long long need);

/* Remove tmp.* leftovers of a killed sync. Call with the sync lock held. */
void cache_remove_stale(const char *cache_dir);

/*
 * Publish the finished snapshot folder tmpdir (data file, gzip copy and meta already written
 * and fsynced) as snapshots/<id>, point current at it and prune old snapshots, under the
 * exclusive cache lock. Returns 0, or -1 with the cache unchanged.
 */
/* How many snapshots pruning keeps, the current one included (config keep_snapshots;
 * CACHE_KEEP by default). At least 2 folders stay whatever n is: a reader that has just
 * named the previous one can still open it. */
void cache_set_keep(int n);

int cache_publish(const char *cache_dir, const char *tmpdir, const char *id, char *err,
                  size_t errlen);

/*
 * Remove now the snapshots that publishing one more would prune (all but the keep - 1 newest,
 * never current), under the cache lock: the sync calls it once the new snapshot is converted
 * and accepted, on a thread of its own, so that removing a large old body (tens of ms where
 * the filesystem discards on unlink) overlaps the index's finish. Returns how many were
 * removed.
 *
 * Pruning (here and in cache_publish) keeps the body and the gzip copy of a removed snapshot
 * as CACHE_SPARE and CACHE_SPARE_GZ for the next sync's cache_open_spare, when there is no
 * spare yet and nobody has the file open: a write lease (fcntl F_SETLEASE) is granted only
 * then, and is broken by anyone who opens it before it is renamed, in which case it is
 * removed as before. A reader still sending an old snapshot is never written over.
 */
int cache_prune_before_publish(const char *cache_dir);

/*
 * Open tmpdir/name (CACHE_DATA or CACHE_DATA_GZ) for a new snapshot, with flags (O_WRONLY or
 * O_RDWR): the spare that pruning kept is moved there and written over when there is one (a
 * regular file of this user's, with no other link), else a new file is created. Its blocks
 * stay allocated and its pages cached, so the writes allocate and free nothing; the caller
 * truncates it to the new size. Returns the fd, or -1.
 */
int cache_open_spare(const char *cache_dir, const char *tmpdir, const char *name, int flags);

/* Format t as ISO-8601 UTC ("2026-11-28T12:00:00Z"). buf needs 21 bytes. */
void cache_iso8601(time_t t, char *buf, size_t len);

/* mkdir -p for one level; 0 if it exists already. */
int cache_mkdir(const char *path, mode_t mode);

#endif

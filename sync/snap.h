/*
 * snap: turn one CSV export into a published snapshot. Converts it into a temp folder in
 * cache_dir, validates it against the current snapshot, writes the gzip copy and meta.json,
 * fsyncs everything and publishes it with cache_publish(). On any failure the temp folder is
 * removed and the current snapshot stays as it was.
 *
 * Before building, when the disk is short of room for another snapshot of about the current
 * one's size, old snapshots (never the current one) are removed. Once the new one is
 * converted and accepted, those its publication will prune (keep_snapshots) are removed on
 * a second thread while the index is finished.
 *
 * Beside the body: its query index (rows.idx, keys.idx: sync/index.h), written while it is
 * converted, and changes/<id>.json from each older snapshot kept, all fsynced and published
 * with it in the same folder. The snapshot's time is the
 * clock's at publication; if the current snapshot has the same second, the sync waits for the
 * next one (at most a second), so ids, ETags and Last-Modified never repeat.
 */
#ifndef PMACACHE_SNAP_H
#define PMACACHE_SNAP_H

#include <stddef.h>

#include <signal.h>

/* SNAP_EINPUT: input_end refused the input (its own reason in err). */
enum snap_fail { SNAP_OK, SNAP_EINVALID, SNAP_EWRITE, SNAP_ESTOPPED, SNAP_EINPUT };

struct snap_opts {
	const char *cache_dir;
	double min_rows_ratio;
	int force;                   /* skip the shrink guard */
	size_t max_field;            /* max_field_bytes; 0: the default */
	volatile sig_atomic_t *stop; /* set by a signal: stop reading, do not publish */
	void (*phase)(void *arg, const char *phase, long long rows, long long bytes);
	void *arg;
	/* The query index (common/snapidx.h): NULL, 0: the defaults "id", "updated_at", 3. The
	 * changes are written from the keep_snapshots - 1 newest older snapshots. */
	const char *id_column;
	const char *updated_column;
	int keep_snapshots;
	/* Build no index and no changes (--no-index: measuring what the index costs). The
	 * responders then answer queries 503 until a sync builds one; the full body is served. */
	int no_index;
	/* If set: called once the input ended as a well-formed CSV, before it is validated and
	 * published. 0 to go on, or non-zero with err set to refuse it (SNAP_EINPUT): a streamed
	 * export says here whether its transfer ended whole. */
	int (*input_end)(void *arg, char *err, size_t errlen);
	void *input_arg;
};

struct snap_result {
	long long rows;
	long long bytes; /* JSON size */
	long long gz_bytes;
	char id[64];
};

/* Returns SNAP_OK, or the failure class with "what" in err. name is used in messages. */
enum snap_fail snap_build(int csv_fd, const char *name, const struct snap_opts *o,
                          struct snap_result *r, char *err, size_t errlen);

#endif

/*
 * index: write a snapshot's query index (common/snapidx.h) while the converter writes its
 * body, and the changes from older snapshots once it is complete.
 *
 * rows.idx is streamed (a 64 KiB buffer). keys.idx is an external sort, so the sync's memory
 * stays constant: the keys are sorted in runs of IDXW_RUN_KEYS (384 KiB) written to a
 * scratch file (keys.runs, removed at the end), then merged into keys.idx with a heap and a
 * read buffer per run. A run is sorted by radix through a second array of its size; the
 * merge's read buffers are those two arrays (768 KiB) shared out among the runs (1,000,000
 * rows: 62 runs, 12 KiB each), at least 4 KiB a run (past 192 runs, allocated apart).
 */
#ifndef PMACACHE_INDEX_H
#define PMACACHE_INDEX_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#define IDXW_RUN_KEYS 16384
#define IDXW_RUNS "keys.runs" /* scratch file beside the index while it is written */
/* A changes file is not written when it would pass 1/IDX_CHANGES_MAX of the new body: the
 * client is better off with the whole body, and the disk holds keep_snapshots - 1 of them. */
#define IDX_CHANGES_MAX 8

struct idxw;

/* Start writing rows.idx and keys.idx in folder dir, for the body being written to data_fd
 * (which must be open for reading too). Returns NULL with err. */
struct idxw *idxw_start(const char *dir, int data_fd, const char *id_column,
                        const char *updated_column, char *err, size_t errlen);

/* The converter's hooks (struct csv_out's header and row): the column list, then each row. */
int idxw_header(void *arg, const char *columns);
int idxw_row(void *arg, long long off, const char *row, size_t len);

/* The body is complete (data_size bytes, columns as the converter listed them): write the
 * heads, sort the keys, and start both files' writeback. Not fsynced: the snapshot's build
 * makes its whole folder durable at once (one journal commit, not one a file). Returns 0, or
 * -1 with err. Frees w either way. */
int idxw_finish(struct idxw *w, uint64_t data_size, const char *columns,
                volatile sig_atomic_t *stop, char *err, size_t errlen);

/* Give up: close and remove what was written. NULL is fine. */
void idxw_abort(struct idxw *w);

/* Sort n keys (at most 2^32 - 1) into keys.idx's order, (pk_hash, row), when they come in row
 * order (as a run does): a stable LSD radix sort on pk_hash, through tmp (n keys), that skips
 * the bytes that are the same in every key. The result is in k. */
struct snapidx_key;
void idx_sort_keys(struct snapidx_key *k, struct snapidx_key *tmp, size_t n);

/*
 * Write new_dir/changes/<from_id>.json: the rows added, changed and deleted from the
 * snapshot in old_dir (named from_id) to the one in new_dir, whose rows.idx and keys.idx are
 * complete. Returns 0; 1 when there is nothing to diff against (either index lacks unique
 * keys, or another id column) or too much changed (IDX_CHANGES_MAX), with why in err; -1 with err
 * on a failure (a write error, a bad old index); -3 when stop was set. The file's writeback
 * is started, not waited for (the caller fsyncs the folder); on failure it is removed.
 */
int idx_diff(const char *old_dir, const char *from_id, const char *new_dir,
             volatile sig_atomic_t *stop, char *err, size_t errlen);

#endif

/*
 * gz: the gzip copy of a snapshot, compressed on a second thread while the JSON is being
 * written, so that a sync pays for conversion and compression once, not one after the other.
 *
 * The JSON's envelope (head_len bytes) is patched after the rows (with the row count), so it
 * is stored, not compressed: the gzip file is a 10-byte header, one non-final stored deflate
 * block with the envelope (written last, at its fixed place), then the rows as a raw deflate
 * stream, then CRC-32 and size over the whole. Any gzip reader takes it as one member.
 */
#ifndef PMACACHE_GZ_H
#define PMACACHE_GZ_H

#include <stddef.h>

struct csv_out;
struct gz;

/* Start compressing into fd (empty, writable). out->head_len tells how much to store. */
struct gz *gz_start(int fd, const struct csv_out *out, int level, char *err, size_t errlen);

/* The csv_out tap: queue one chunk of the JSON, already written to out->fd by the
 * converter (blocks while the queue is full). The chunk's buffer is taken, not copied: a
 * drained one of the queue's goes back in its place. */
int gz_tap(void *arg, char **buf, size_t *cap, size_t len);

/* Why the gzip thread failed (compressing, or writing its copy), or NULL. */
const char *gz_error(struct gz *g);

/* Finish: drain the queue, write the envelope (read back from json_fd) and the trailer.
 * Frees g. Returns the gzip file's size, or -1 with err set. */
long long gz_finish(struct gz *g, int json_fd, char *err, size_t errlen);

/* Stop and free without finishing (the conversion failed). NULL is fine. */
void gz_abort(struct gz *g);

#endif

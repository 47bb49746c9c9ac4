#include "gz.h"

#include "../common/cache.h"
#include "csv.h"

#include <errno.h>
#include <fcntl.h>
#include <isa-l/crc.h>
#include <isa-l/igzip_lib.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* 3 MiB of JSON queued, in chunks of CSV_FLUSH_AT: the converter's pace and deflate's vary
 * along the data, and with 3 slots of 1 MiB each thread waited for the other about 10 ms a
 * run (102,052 rows: 7 ms slower). The slots' buffers are the converter's, passed on. */
#define GZ_SLOTS 6
#define GZ_OUT (256 * 1024)
#define GZ_WRITEBACK (8 << 20) /* start writing back the files every 8 MiB */
#define GZ_HEAD 10             /* gzip member header */
#define GZ_STORED 5            /* stored block header: BFINAL/BTYPE byte, LEN, NLEN */

struct slot {
	char *p;    /* the converter's buffer, taken at the tap; given back at a later one */
	size_t off; /* where the rows start in it (past the envelope, in the first) */
	size_t len, cap;
};

struct gz {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct slot slot[GZ_SLOTS];
	int first, count; /* the queue */
	int closing, failed, started;
	char why[256];
	int fd;
	const struct csv_out *out;
	struct isal_zstream z; /* ISA-L's igzip: raw deflate, several times zlib's speed */
	unsigned char *level_buf;
	unsigned char *zbuf;
	uint32_t crc;         /* of the rows */
	unsigned long long n; /* bytes of rows */
	off_t off;            /* where the next compressed byte goes */
	off_t wb_gz, wb_json; /* how far writeback has been started */
};

/*
 * Start the kernel writing back what is written so far (sync_file_range: no wait), so that
 * the fsyncs before the swap find little left to do. Best effort: an error here is found
 * again by the fsync.
 */
static void writeback(int fd, off_t *done, off_t upto)
{
	if (upto - *done < GZ_WRITEBACK)
		return;
	sync_file_range(fd, *done, upto - *done, SYNC_FILE_RANGE_WRITE);
	*done = upto;
}

/* Deflate what is in z's input (to the end of the stream if last) and write it out. Runs on
 * the gz thread. */
static int pump(struct gz *g, int last)
{
	g->z.end_of_stream = (uint16_t)last;
	do {
		size_t have;
		g->z.next_out = g->zbuf;
		g->z.avail_out = GZ_OUT;
		if (isal_deflate(&g->z) != COMP_OK) {
			snprintf(g->why, sizeof(g->why), "gzip: deflate failed");
			return -1;
		}
		have = GZ_OUT - g->z.avail_out;
		if (cache_write_all(g->fd, g->zbuf, have, g->off) < 0) {
			snprintf(g->why, sizeof(g->why), "writing the gzip copy: %s",
			         strerror(errno));
			return -1;
		}
		g->off += (off_t)have;
	} while (g->z.avail_in > 0 || g->z.avail_out == 0 ||
	         (last && g->z.internal_state.state != ZSTATE_END));
	writeback(g->fd, &g->wb_gz, g->off);
	/* The JSON's rows up to here are written (a chunk is written before it is tapped). */
	writeback(g->out->fd, &g->wb_json, (off_t)(g->out->head_len + g->n));
	return 0;
}

static void *run(void *arg)
{
	struct gz *g = arg;

	for (;;) {
		struct slot *s;
		pthread_mutex_lock(&g->mu);
		while (g->count == 0 && !g->closing)
			pthread_cond_wait(&g->cv, &g->mu);
		if (g->count == 0) {
			pthread_mutex_unlock(&g->mu);
			break;
		}
		s = &g->slot[g->first];
		pthread_mutex_unlock(&g->mu);

		if (!g->failed) {
			const unsigned char *in = (const unsigned char *)s->p + s->off;
			g->crc = crc32_gzip_refl(g->crc, in, s->len);
			g->n += s->len;
			g->z.next_in = (uint8_t *)in;
			g->z.avail_in = (uint32_t)s->len;
			if (pump(g, 0) < 0)
				g->failed = 1;
		}
		pthread_mutex_lock(&g->mu);
		g->first = (g->first + 1) % GZ_SLOTS;
		g->count--;
		pthread_cond_broadcast(&g->cv);
		pthread_mutex_unlock(&g->mu);
	}
	if (!g->failed && !g->closing)
		g->failed = 1;
	if (!g->failed && g->closing == 1) {
		g->z.next_in = NULL;
		g->z.avail_in = 0;
		if (pump(g, 1) < 0)
			g->failed = 1;
	}
	return NULL;
}

struct gz *gz_start(int fd, const struct csv_out *out, int level, char *err, size_t errlen)
{
	/* igzip's levels: 0 (fastest) to 3; 1 compresses better than zlib's 1 at 4-5x its
	 * speed (bench/RESULTS.md). Levels above 3 are 3. */
	static const unsigned bufsize[] = {ISAL_DEF_LVL0_DEFAULT, ISAL_DEF_LVL1_DEFAULT,
	                                   ISAL_DEF_LVL2_DEFAULT, ISAL_DEF_LVL3_DEFAULT};
	struct gz *g = calloc(1, sizeof(*g));

	if (level < 0)
		level = 0;
	if (level > 3)
		level = 3;
	if (g == NULL || (g->zbuf = malloc(GZ_OUT)) == NULL ||
	    (bufsize[level] && (g->level_buf = malloc(bufsize[level])) == NULL)) {
		snprintf(err, errlen, "gzip: out of memory");
		if (g)
			free(g->zbuf);
		free(g);
		return NULL;
	}
	g->fd = fd;
	g->out = out;
	g->crc = 0;
	/* Raw deflate: the gzip framing is written by hand. */
	isal_deflate_init(&g->z);
	g->z.level = (uint32_t)level;
	g->z.level_buf = g->level_buf;
	g->z.level_buf_size = bufsize[level];
	g->z.gzip_flag = IGZIP_DEFLATE;
	g->z.flush = NO_FLUSH;
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
	if (pthread_create(&g->thread, NULL, run, g) != 0) {
		snprintf(err, errlen, "gzip: cannot start its thread");
		pthread_mutex_destroy(&g->mu);
		pthread_cond_destroy(&g->cv);
		free(g->level_buf);
		free(g->zbuf);
		free(g);
		return NULL;
	}
	return g;
}

int gz_tap(void *arg, char **buf, size_t *cap, size_t len)
{
	struct gz *g = arg;
	struct slot *s;
	size_t skip = 0, fcap;
	char *free_p;

	if (!g->started) {
		/* The envelope is stored at the end; the rows start after its place. */
		if (len < g->out->head_len)
			return -1;
		skip = g->out->head_len;
		g->off = GZ_HEAD + GZ_STORED + (off_t)g->out->head_len;
		g->started = 1;
	}
	pthread_mutex_lock(&g->mu);
	while (g->count == GZ_SLOTS && !g->failed)
		pthread_cond_wait(&g->cv, &g->mu);
	if (g->failed) {
		pthread_mutex_unlock(&g->mu);
		return -1;
	}
	s = &g->slot[(g->first + g->count) % GZ_SLOTS];
	pthread_mutex_unlock(&g->mu);
	/* This slot is free: only this thread fills slots, the gz thread only drains. The
	 * chunk's buffer itself goes in (no copy), the slot's drained one comes out. */
	free_p = s->p;
	fcap = s->cap;
	if (free_p == NULL && (free_p = malloc(*cap)) != NULL)
		fcap = *cap; /* the first rounds: one of the converter's size */
	s->p = *buf;
	s->cap = *cap;
	s->off = skip;
	s->len = len - skip;
	*buf = free_p;
	*cap = free_p ? fcap : 0;
	pthread_mutex_lock(&g->mu);
	g->count++;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
	return 0;
}

const char *gz_error(struct gz *g)
{
	const char *why;

	pthread_mutex_lock(&g->mu);
	why = g->why[0] ? g->why : NULL;
	pthread_mutex_unlock(&g->mu);
	return why;
}

static void gz_free(struct gz *g)
{
	int i;

	for (i = 0; i < GZ_SLOTS; i++)
		free(g->slot[i].p);
	free(g->level_buf);
	free(g->zbuf);
	pthread_mutex_destroy(&g->mu);
	pthread_cond_destroy(&g->cv);
	free(g);
}

static void stop(struct gz *g, int how)
{
	pthread_mutex_lock(&g->mu);
	g->closing = how;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
	pthread_join(g->thread, NULL);
}

void gz_abort(struct gz *g)
{
	if (g == NULL)
		return;
	g->failed = 1;
	stop(g, 2);
	gz_free(g);
}

long long gz_finish(struct gz *g, int json_fd, char *err, size_t errlen)
{
	unsigned char head[GZ_HEAD + GZ_STORED], trailer[8];
	size_t hl = g->out->head_len;
	char *env = NULL;
	uLong crc;
	unsigned long long total;
	long long rc = -1;
	int i;

	stop(g, 1);
	if (g->failed || !g->started || hl > 65535) {
		snprintf(err, errlen, "%s", g->why[0] ? g->why : "gzip: nothing to compress");
		goto out;
	}
	if ((env = malloc(hl)) == NULL || pread(json_fd, env, hl, 0) != (ssize_t)hl) {
		snprintf(err, errlen, "gzip: reading the envelope back: %s", strerror(errno));
		goto out;
	}
	/* gzip header: magic, deflate, no flags, no mtime, no extra flags, OS unix. */
	memcpy(head, "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", GZ_HEAD);
	/* A stored block, not final: BFINAL=0 BTYPE=00, then LEN and its complement. */
	head[10] = 0x00;
	head[11] = (unsigned char)(hl & 0xff);
	head[12] = (unsigned char)(hl >> 8);
	head[13] = (unsigned char)(~hl & 0xff);
	head[14] = (unsigned char)((~hl >> 8) & 0xff);
	crc = crc32_combine(crc32_gzip_refl(0, (const unsigned char *)env, hl), g->crc,
	                    (z_off_t)g->n);
	total = g->n + hl;
	for (i = 0; i < 4; i++) {
		trailer[i] = (unsigned char)(crc >> (8 * i));
		trailer[4 + i] = (unsigned char)(total >> (8 * i));
	}
	if (cache_write_all(g->fd, head, sizeof(head), 0) < 0 ||
	    cache_write_all(g->fd, env, hl, sizeof(head)) < 0 ||
	    cache_write_all(g->fd, trailer, sizeof(trailer), g->off) < 0) {
		snprintf(err, errlen, "writing the gzip copy: %s", strerror(errno));
		goto out;
	}
	rc = (long long)g->off + 8;
out:
	free(env);
	gz_free(g);
	return rc;
}

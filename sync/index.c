#include "index.h"

#include "../common/snapidx.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define WBUF (64 * 1024)
#define RBUF_KEYS 170       /* 4080 bytes of keys per read: the least a merge's run gets */
#define DIFF_RBUF_KEYS 2730 /* 65520 bytes of keys per read, for each side of a diff */
#define STOP_EVERY 4096
#define WB_CHUNK (1024 * 1024)

/* A file written through a buffer. */
struct wfile {
	int fd;
	char *buf;
	size_t len;
	uint64_t out;    /* bytes put */
	uint64_t queued; /* bytes whose writeback has started */
	char path[4400];
};

static int wf_open(struct wfile *f, const char *dir, const char *name)
{
	snprintf(f->path, sizeof(f->path), "%s/%s", dir, name);
	f->len = 0;
	f->out = f->queued = 0;
	if ((f->buf = malloc(WBUF)) == NULL) {
		f->fd = -1;
		errno = ENOMEM;
		return -1;
	}
	if ((f->fd = open(f->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640)) < 0) {
		int e = errno;
		free(f->buf);
		f->buf = NULL;
		errno = e;
		return -1;
	}
	return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t k = write(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -1;
		if (k == 0) {
			errno = EIO;
			return -1;
		}
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static int wf_flush(struct wfile *f)
{
	if (f->len && write_all(f->fd, f->buf, f->len) < 0)
		return -1;
	f->len = 0;
	return 0;
}

static int wf_put(struct wfile *f, const void *p, size_t n)
{
	f->out += n;
	if (n > WBUF - f->len && wf_flush(f) < 0)
		return -1;
	if (n >= WBUF)
		return write_all(f->fd, p, n);
	memcpy(f->buf + f->len, p, n);
	f->len += n;
	return 0;
}

/* Start writing what was written of the file to the disk, by WB_CHUNK (all of it with
 * force), so that its fsync finds little left to do. Advisory: the fsync reports errors. */
static void wf_writeback(struct wfile *f, int force)
{
	uint64_t at = f->out - f->len;

	if (at - f->queued >= (force ? 1 : WB_CHUNK)) {
		sync_file_range(f->fd, (off_t)f->queued, (off_t)(at - f->queued),
		                SYNC_FILE_RANGE_WRITE);
		f->queued = at;
	}
}

/* Close; with drop, also remove the file. */
static void wf_close(struct wfile *f, int drop)
{
	if (f->fd >= 0) {
		close(f->fd);
		if (drop)
			unlink(f->path);
	}
	f->fd = -1;
	free(f->buf);
	f->buf = NULL;
}

static int pread_all(int fd, void *p, size_t n, uint64_t off)
{
	char *s = p;

	while (n) {
		ssize_t k = pread(fd, s, n, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -1;
		if (k == 0) {
			errno = EIO; /* shorter than its index says */
			return -1;
		}
		s += k;
		n -= (size_t)k;
		off += (uint64_t)k;
	}
	return 0;
}

/* One row of a body, mapped: row points at its '{', len up to its '}'. */
struct rowmap {
	void *base;
	size_t maplen;
	const char *row;
	size_t len;
};

static int map_range(int data_fd, uint64_t off, size_t len, struct rowmap *m)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), start = off - off % page;

	m->maplen = (size_t)(off - start) + len;
	m->base = mmap(NULL, m->maplen, PROT_READ, MAP_SHARED, data_fd, (off_t)start);
	if (m->base == MAP_FAILED) {
		m->base = NULL;
		return -1;
	}
	m->row = (const char *)m->base + (off - start);
	m->len = len;
	return 0;
}

static void unmap_row(struct rowmap *m)
{
	if (m->base)
		munmap(m->base, m->maplen);
	m->base = NULL;
}

/* Row i of an indexed body: its bytes' offset and length from rows.idx. */
static int row_range(int rows_fd, uint64_t nrows, uint64_t i, uint64_t *off, size_t *len)
{
	uint64_t o[2];

	if (i >= nrows || pread_all(rows_fd, o, sizeof(o), sizeof(struct snapidx_head) + 8 * i) < 0)
		return i >= nrows ? (errno = EINVAL, -1) : -1;
	if (o[1] <= o[0] + 1) {
		errno = EINVAL;
		return -1;
	}
	*off = o[0];
	*len = (size_t)(o[1] - 1 - o[0]);
	return 0;
}

struct idxw {
	char dir[4096];
	int data_fd;
	struct wfile rows, keys, runs;
	char *id_name, *upd_name;
	char *id_json;
	size_t id_json_len;
	int32_t id_col; /* -2 until the column list comes */
	int32_t upd_col;
	uint32_t ncols;
	char *scratch; /* WBUF bytes: a long row's first bytes */
	struct snapidx_span *sp;
	uint64_t nrows;
	struct snapidx_key *run;
	struct snapidx_key *sorted; /* IDXW_RUN_KEYS keys: the radix sort's other half */
	size_t nrun;
	uint64_t nruns;
	int ids_integer;
	XXH3_state_t *xs; /* a long row's hash, in pieces */
};

void idx_sort_keys(struct snapidx_key *k, struct snapidx_key *tmp, size_t n)
{
	uint32_t count[8][256];
	struct snapidx_key *src = k, *dst = tmp, *t;

	if (n < 2)
		return;
	memset(count, 0, sizeof(count));
	for (size_t i = 0; i < n; i++) {
		uint64_t h = k[i].pk_hash;
		for (int b = 0; b < 8; b++)
			count[b][(h >> (8 * b)) & 0xff]++;
	}
	for (int b = 0; b < 8; b++) {
		uint32_t *c = count[b], sum = 0;
		unsigned shift = 8 * (unsigned)b;
		if (c[(src[0].pk_hash >> shift) & 0xff] == n)
			continue; /* this byte is the same in every key */
		for (int j = 0; j < 256; j++) {
			uint32_t x = c[j];
			c[j] = sum;
			sum += x;
		}
		for (size_t i = 0; i < n; i++)
			dst[c[(src[i].pk_hash >> shift) & 0xff]++] = src[i];
		t = src;
		src = dst;
		dst = t;
	}
	if (src != k)
		memcpy(k, src, n * sizeof(*k));
}

struct idxw *idxw_start(const char *dir, int data_fd, const char *id_column,
                        const char *updated_column, char *err, size_t errlen)
{
	struct idxw *w = calloc(1, sizeof(*w));
	struct snapidx_head zero;
	size_t n = strlen(id_column);

	memset(&zero, 0, sizeof(zero));
	if (w == NULL || (w->id_name = strdup(id_column)) == NULL ||
	    (w->upd_name = strdup(updated_column)) == NULL ||
	    (w->id_json = malloc(6 * n + 3)) == NULL ||
	    (w->run = malloc(IDXW_RUN_KEYS * sizeof(*w->run))) == NULL ||
	    (w->sorted = malloc(IDXW_RUN_KEYS * sizeof(*w->sorted))) == NULL ||
	    (w->scratch = malloc(WBUF)) == NULL || (w->xs = XXH3_createState()) == NULL) {
		snprintf(err, errlen, "the index: out of memory");
		goto fail;
	}
	w->rows.fd = w->keys.fd = w->runs.fd = -1;
	w->id_json_len = snapidx_json_string(w->id_json, id_column, n);
	snprintf(w->dir, sizeof(w->dir), "%s", dir);
	w->data_fd = data_fd;
	w->id_col = -2;
	w->ids_integer = 1;
	if (wf_open(&w->rows, dir, SNAPIDX_ROWS) < 0 || wf_put(&w->rows, &zero, sizeof(zero)) < 0 ||
	    wf_open(&w->keys, dir, SNAPIDX_KEYS) < 0 || wf_put(&w->keys, &zero, sizeof(zero)) < 0) {
		snprintf(err, errlen, "%s/%s: %s", dir, w->keys.buf ? SNAPIDX_KEYS : SNAPIDX_ROWS,
		         strerror(errno));
		goto fail;
	}
	return w;
fail:
	idxw_abort(w);
	return NULL;
}

void idxw_abort(struct idxw *w)
{
	if (w == NULL)
		return;
	wf_close(&w->rows, 1);
	wf_close(&w->keys, 1);
	wf_close(&w->runs, 1);
	free(w->id_name);
	free(w->upd_name);
	free(w->id_json);
	free(w->sp);
	free(w->run);
	free(w->sorted);
	free(w->scratch);
	XXH3_freeState(w->xs);
	free(w);
}

/* Whether a value is a JSON string holding a decimal integer that fits int64. */
static int is_integer(const char *s, size_t n)
{
	static const char max[] = "9223372036854775807"; /* and 808 negative */
	size_t i = 1, nd;
	int neg = 0;

	if (n < 3 || s[0] != '"' || s[n - 1] != '"')
		return 0;
	if (s[i] == '-')
		i++, neg = 1;
	nd = n - 1 - i;
	if (nd == 0 || nd > 19)
		return 0;
	for (size_t j = i; j < n - 1; j++)
		if (s[j] < '0' || s[j] > '9')
			return 0;
	if (nd < 19)
		return 1;
	/* 19 digits: at most 9223372036854775807 (808 when negative) */
	int c = memcmp(s + i, max, 18);
	return c < 0 || (c == 0 && s[i + 18] <= (neg ? '8' : '7'));
}

static int run_flush(struct idxw *w)
{
	if (w->nrun == 0)
		return 0;
	idx_sort_keys(w->run, w->sorted, w->nrun);
	if (w->runs.fd < 0 && wf_open(&w->runs, w->dir, IDXW_RUNS) < 0)
		return -1;
	if (wf_put(&w->runs, w->run, w->nrun * sizeof(*w->run)) < 0)
		return -1;
	w->nruns++;
	w->nrun = 0;
	return 0;
}

/*
 * The first nf fields of the row at off (len bytes) in data_fd, with their spans in sp:
 * parsed in its first WBUF bytes, read into buf; a row whose field nf - 1 ends later (a
 * value over 64 KiB before the id column) is mapped instead. p->row is the row's '{'.
 */
struct prefix {
	const char *row;
	struct rowmap m;
};

static int prefix_at(int data_fd, uint64_t off, size_t len, uint32_t nf, char *buf,
                     struct snapidx_span *sp, struct prefix *p)
{
	size_t n = len < WBUF ? len : WBUF;

	p->m.base = NULL;
	if (pread_all(data_fd, buf, n, off) < 0)
		return -1;
	if (snapidx_row_prefix(buf, n, nf, sp) == (long)nf) {
		p->row = buf;
		return 0;
	}
	if (n < len && map_range(data_fd, off, len, &p->m) == 0) {
		if (snapidx_row_prefix(p->m.row, len, nf, sp) == (long)nf) {
			p->row = p->m.row;
			return 0;
		}
		unmap_row(&p->m);
	}
	errno = EINVAL; /* not the converter's row */
	return -1;
}

/* ncols, id_col and updated_col from the converter's column list. */
static int columns_of(const char *columns, const char *id, const char *upd, uint32_t *ncols,
                      int32_t *id_col, int32_t *upd_col)
{
	struct json_object *a = json_tokener_parse(columns);
	size_t n;

	if (a == NULL || !json_object_is_type(a, json_type_array)) {
		json_object_put(a);
		return -1;
	}
	n = json_object_array_length(a);
	*ncols = (uint32_t)n;
	*id_col = *upd_col = -1;
	for (size_t i = 0; i < n; i++) {
		const char *s = json_object_get_string(json_object_array_get_idx(a, i));
		if (s && *id_col < 0 && strcmp(s, id) == 0)
			*id_col = (int32_t)i;
		if (s && *upd_col < 0 && strcmp(s, upd) == 0)
			*upd_col = (int32_t)i;
	}
	json_object_put(a);
	return 0;
}

int idxw_header(void *arg, const char *columns)
{
	struct idxw *w = arg;

	if (columns_of(columns, w->id_name, w->upd_name, &w->ncols, &w->id_col, &w->upd_col) < 0) {
		errno = EINVAL;
		return -1;
	}
	if (w->id_col >= 0 && (w->sp = malloc(((size_t)w->id_col + 1) * sizeof(*w->sp))) == NULL)
		return -1;
	return 0;
}

int idxw_row(void *arg, long long off, const char *row, size_t len)
{
	struct idxw *w = arg;
	uint64_t o = (uint64_t)off;
	struct prefix pf = {NULL, {NULL, 0, NULL, 0}};
	const struct snapidx_span *id;
	struct snapidx_key *k = &w->run[w->nrun];
	int rc = -1;

	if (wf_put(&w->rows, &o, sizeof(o)) < 0)
		return -1;
	wf_writeback(&w->rows, 0);
	if (w->id_col == -2) {
		errno = EINVAL; /* no column list before the rows */
		return -1;
	}
	if (w->id_col < 0) {
		w->nrows++;
		return 0;
	}
	id = &w->sp[w->id_col];
	if (row) {
		if (snapidx_row_prefix(row, len, (uint32_t)w->id_col + 1, w->sp) != w->id_col + 1) {
			errno = EINVAL; /* not the converter's row: cannot happen */
			return -1;
		}
		k->pk_hash = snapidx_hash(row + id->off, id->len);
		k->row_hash = XXH3_64bits(row, len);
	} else {
		/* A long row, flushed: its id from its first bytes, its hash read in pieces
		 * from the page cache, in constant memory. */
		if (prefix_at(w->data_fd, o, len, (uint32_t)w->id_col + 1, w->scratch, w->sp, &pf) <
		    0)
			return -1;
		row = pf.row;
		k->pk_hash = snapidx_hash(row + id->off, id->len);
		if (w->ids_integer && !is_integer(row + id->off, id->len))
			w->ids_integer = 0;
		unmap_row(&pf.m);
		row = NULL;
		XXH3_64bits_reset(w->xs);
		for (size_t at = 0; at < len;) {
			size_t n = len - at < WBUF ? len - at : WBUF;
			if (pread_all(w->data_fd, w->scratch, n, o + at) < 0)
				return -1;
			XXH3_64bits_update(w->xs, w->scratch, n);
			at += n;
		}
		k->row_hash = XXH3_64bits_digest(w->xs);
	}
	k->row = w->nrows;
	if (row && w->ids_integer && !is_integer(row + id->off, id->len))
		w->ids_integer = 0;
	if (++w->nrun == IDXW_RUN_KEYS && run_flush(w) < 0)
		goto out;
	w->nrows++;
	rc = 0;
out:
	return rc;
}

/* The id value of row i: its text at p->row + sp[id_col] (buf: WBUF bytes). */
static int row_id(int rows_fd, int data_fd, uint64_t nrows, uint64_t i, int32_t id_col, char *buf,
                  struct snapidx_span *sp, struct prefix *p)
{
	uint64_t off;
	size_t len;

	if (row_range(rows_fd, nrows, i, &off, &len) < 0)
		return -1;
	return prefix_at(data_fd, off, len, (uint32_t)id_col + 1, buf, sp, p);
}

/* Streaming reader of sorted keys from fd, from byte start, n keys, through buf (cap keys). */
struct kread {
	int fd;
	uint64_t pos, left;
	struct snapidx_key *buf;
	size_t cap, i, n;
};

static void kr_init(struct kread *r, int fd, uint64_t start, uint64_t n, struct snapidx_key *buf,
                    size_t cap)
{
	r->fd = fd;
	r->pos = start;
	r->left = n;
	r->buf = buf;
	r->cap = cap;
	r->i = r->n = 0;
}

/* 1 with *k, 0 at the end, -1 on a read error. */
static int kr_next(struct kread *r, struct snapidx_key *k)
{
	if (r->i == r->n) {
		size_t n = r->left < r->cap ? (size_t)r->left : r->cap;
		if (n == 0)
			return 0;
		if (pread_all(r->fd, r->buf, n * sizeof(*k), r->pos) < 0)
			return -1;
		r->pos += n * sizeof(*k);
		r->left -= n;
		r->i = 0;
		r->n = n;
	}
	*k = r->buf[r->i++];
	return 1;
}

/*
 * The merge of the runs: a tree of losers over each run's next key, its leaves the runs
 * (rounded up to a power of two; a run that has ended holds a key past every other). Taking
 * the least key replays its run's matches up to the root, without a branch on the keys: the
 * hashes are random, and a heap's compares would each be a coin toss for the branch predictor.
 */
struct ltree {
	size_t leaves;
	size_t *loser;           /* loser[0]: the run of the least key; loser[1..]: each match's */
	struct snapidx_key *cur; /* each leaf's next key */
};

static const struct snapidx_key key_end = {UINT64_MAX, 0, UINT64_MAX};

static size_t key_before(const struct snapidx_key *x, const struct snapidx_key *y)
{
	return (size_t)((x->pk_hash < y->pk_hash) |
	                ((x->pk_hash == y->pk_hash) & (x->row < y->row)));
}

/* The first matches, once each leaf holds its first key. win: 2 * leaves. */
static void lt_build(struct ltree *t, size_t *win)
{
	size_t n = t->leaves;

	for (size_t i = 0; i < n; i++)
		win[n + i] = i;
	for (size_t i = n; i-- > 1;) {
		size_t a = win[2 * i], b = win[2 * i + 1], c = key_before(&t->cur[b], &t->cur[a]);
		win[i] = c ? b : a;
		t->loser[i] = c ? a : b;
	}
	t->loser[0] = n > 1 ? win[1] : 0;
}

/* After leaf r got its next key: its matches again, up to the root. */
static void lt_replay(struct ltree *t, size_t r)
{
	for (size_t i = (r + t->leaves) / 2; i; i /= 2) {
		size_t l = t->loser[i], c = key_before(&t->cur[l], &t->cur[r]);
		t->loser[i] = c ? r : l;
		r = c ? l : r;
	}
	t->loser[0] = r;
}

/* Write the sorted keys to keys.idx. Returns 1 when the ids are unique, 0 when not (keys.idx
 * then holds no keys), -1 on an error (errno), -3 when stopped. */
static int write_keys(struct idxw *w, volatile sig_atomic_t *stop)
{
	struct kread *rd = NULL;
	struct ltree lt = {1, NULL, NULL};
	struct snapidx_key k, prev = {0, 0, 0}, *rbuf = NULL;
	size_t *win = NULL, per = 0, half = 0;
	char *buf2 = NULL;
	uint64_t done = 0;
	int have_prev = 0, rc = -1, unique = 1;

	if (w->nruns == 0) {
		idx_sort_keys(w->run, w->sorted, w->nrun);
	} else {
		if (run_flush(w) < 0 || wf_flush(&w->runs) < 0)
			return -1;
		/* The read buffers: the sort's two arrays, shared out, while a run gets at least
		 * RBUF_KEYS of them (up to 192 runs, 3,145,728 rows); past that, their own. */
		half = (size_t)(w->nruns + 1) / 2;
		per = IDXW_RUN_KEYS / half;
		if (per < RBUF_KEYS) {
			per = RBUF_KEYS;
			if ((rbuf = malloc(w->nruns * per * sizeof(*rbuf))) == NULL) {
				errno = ENOMEM;
				goto out;
			}
		}
		while (lt.leaves < w->nruns)
			lt.leaves *= 2;
		if ((rd = malloc(w->nruns * sizeof(*rd))) == NULL ||
		    (lt.loser = malloc(lt.leaves * sizeof(*lt.loser))) == NULL ||
		    (lt.cur = malloc(lt.leaves * sizeof(*lt.cur))) == NULL ||
		    (win = malloc(2 * lt.leaves * sizeof(*win))) == NULL) {
			errno = ENOMEM;
			goto out;
		}
		for (uint64_t r = 0; r < w->nruns; r++) {
			uint64_t first = r * IDXW_RUN_KEYS, n = w->nrows - first;
			struct snapidx_key *b =
			    rbuf ? rbuf + r * per : (r % 2 ? w->sorted : w->run) + r / 2 * per;
			int got;
			kr_init(&rd[r], w->runs.fd, first * sizeof(k),
			        n < IDXW_RUN_KEYS ? n : IDXW_RUN_KEYS, b, per);
			if ((got = kr_next(&rd[r], &lt.cur[r])) < 0)
				goto out;
			if (!got)
				lt.cur[r] = key_end;
		}
		for (size_t r = (size_t)w->nruns; r < lt.leaves; r++)
			lt.cur[r] = key_end;
		lt_build(&lt, win);
	}
	for (uint64_t i = 0;; i++) {
		if (w->nruns == 0) {
			if (i == w->nrun)
				break;
			k = w->run[i];
		} else {
			size_t r = lt.loser[0];
			int got;
			if (i == w->nrows || lt.cur[r].row == key_end.row)
				break;
			k = lt.cur[r];
			if ((got = kr_next(&rd[r], &lt.cur[r])) < 0)
				goto out;
			if (!got)
				lt.cur[r] = key_end;
			lt_replay(&lt, r);
		}
		if (have_prev && prev.pk_hash == k.pk_hash) {
			/* the same hash: the same id, or (rarely) two ids that collide */
			struct prefix a, b;
			struct snapidx_span sa, sb;
			int same;
			if (buf2 == NULL && (buf2 = malloc(WBUF)) == NULL)
				goto out;
			if (row_id(w->rows.fd, w->data_fd, w->nrows, prev.row, w->id_col,
			           w->scratch, w->sp, &a) < 0)
				goto out;
			sa = w->sp[w->id_col];
			if (row_id(w->rows.fd, w->data_fd, w->nrows, k.row, w->id_col, buf2, w->sp,
			           &b) < 0) {
				unmap_row(&a.m);
				goto out;
			}
			sb = w->sp[w->id_col];
			same =
			    sa.len == sb.len && memcmp(a.row + sa.off, b.row + sb.off, sa.len) == 0;
			unmap_row(&a.m);
			unmap_row(&b.m);
			if (same) {
				unique = 0;
				break;
			}
		}
		if (wf_put(&w->keys, &k, sizeof(k)) < 0)
			goto out;
		wf_writeback(&w->keys, 0);
		prev = k;
		have_prev = 1;
		if (++done % STOP_EVERY == 0 && stop && *stop) {
			rc = -3;
			goto out;
		}
	}
	if (wf_flush(&w->keys) < 0)
		goto out;
	if (!unique && ftruncate(w->keys.fd, sizeof(struct snapidx_head)) < 0)
		goto out;
	rc = unique;
out:
	free(rd);
	free(lt.loser);
	free(lt.cur);
	free(win);
	free(rbuf);
	free(buf2);
	return rc;
}

int idxw_finish(struct idxw *w, uint64_t data_size, const char *columns,
                volatile sig_atomic_t *stop, char *err, size_t errlen)
{
	struct snapidx_head h;
	uint64_t end = data_size - 1; /* one past the ']' of "data": the body ends with "]}" */
	int32_t id_col;
	int unique = 0, rc = -1;
	const char *what = SNAPIDX_ROWS;

	memset(&h, 0, sizeof(h));
	if (columns_of(columns, w->id_name, w->upd_name, &h.ncols, &id_col, &h.updated_col) < 0 ||
	    h.ncols == 0 || id_col != w->id_col || h.ncols != w->ncols ||
	    h.updated_col != w->upd_col) {
		snprintf(err, errlen, "the index: the rows do not match the column list");
		goto out;
	}
	h.id_col = id_col;
	h.nrows = w->nrows;
	h.data_size = data_size;
	if (wf_put(&w->rows, &end, sizeof(end)) < 0 || wf_flush(&w->rows) < 0)
		goto fail;
	wf_writeback(&w->rows, 1); /* while the keys are merged */
	what = SNAPIDX_KEYS;
	if (id_col >= 0) {
		if ((unique = write_keys(w, stop)) == -3) {
			snprintf(err, errlen, "stopped while sorting the index");
			rc = -3;
			goto out;
		}
		if (unique < 0)
			goto fail;
		h.flags =
		    (w->ids_integer ? SNAPIDX_IDS_INTEGER : 0) | (unique ? SNAPIDX_IDS_UNIQUE : 0);
	}
	h.flags |= SNAPIDX_ROWHASH_XXH3;
	/* Both heads, and both files on their way to the disk (the caller's fsync waits). */
	memcpy(h.magic, SNAPIDX_MAGIC_KEYS, 8);
	h.nkeys = unique ? w->nrows : 0;
	if (pwrite(w->keys.fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
		goto fail;
	sync_file_range(w->keys.fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	what = SNAPIDX_ROWS;
	memcpy(h.magic, SNAPIDX_MAGIC_ROWS, 8);
	h.nkeys = w->nrows + 1;
	if (pwrite(w->rows.fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
		goto fail;
	sync_file_range(w->rows.fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	wf_close(&w->rows, 0);
	wf_close(&w->keys, 0);
	rc = 0;
	goto out;
fail:
	snprintf(err, errlen, "%s/%s: %s", w->dir, what, strerror(errno));
out:
	idxw_abort(w); /* removes what was not closed above, and the runs */
	return rc;
}

/* ---- changes between two snapshots ---- */

struct side {
	int data_fd, rows_fd, keys_fd;
	struct snapidx_head rh, kh;
};

static void side_close(struct side *s)
{
	if (s->data_fd >= 0)
		close(s->data_fd);
	if (s->rows_fd >= 0)
		close(s->rows_fd);
	if (s->keys_fd >= 0)
		close(s->keys_fd);
}

/* Open a snapshot's body and index, checking they belong together. 0, or -1 (err). */
static int side_open(const char *dir, struct side *s, char *err, size_t errlen)
{
	char path[4400];
	struct stat st;

	s->data_fd = s->rows_fd = s->keys_fd = -1;
	snprintf(path, sizeof(path), "%s/data_cache.json", dir);
	if ((s->data_fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(s->data_fd, &st) < 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/%s", dir, SNAPIDX_ROWS);
	if ((s->rows_fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 ||
	    pread_all(s->rows_fd, &s->rh, sizeof(s->rh), 0) < 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/%s", dir, SNAPIDX_KEYS);
	if ((s->keys_fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 ||
	    pread_all(s->keys_fd, &s->kh, sizeof(s->kh), 0) < 0)
		goto fail;
	if (memcmp(s->rh.magic, SNAPIDX_MAGIC_ROWS, 8) ||
	    memcmp(s->kh.magic, SNAPIDX_MAGIC_KEYS, 8) || s->rh.data_size != (uint64_t)st.st_size ||
	    s->kh.data_size != s->rh.data_size || s->kh.nrows != s->rh.nrows) {
		snprintf(err, errlen, "%s: the index does not match the body", dir);
		side_close(s);
		return -1;
	}
	return 0;
fail:
	snprintf(err, errlen, "%s: %s", path, strerror(errno));
	side_close(s);
	return -1;
}

static int side_keyed(const struct side *s)
{
	return s->rh.id_col >= 0 && (s->kh.flags & SNAPIDX_IDS_UNIQUE) &&
	       s->kh.nkeys == s->rh.nrows;
}

/* The key text (quotes included) of column col in row 0, into buf; its length or -1. */
static long first_key(const struct side *s, int32_t col, char *buf, size_t cap)
{
	struct prefix p = {NULL, {NULL, 0, NULL, 0}};
	struct snapidx_span *sp = malloc(((size_t)col + 1) * sizeof(*sp));
	char *win = malloc(WBUF);
	long n = -1;

	if (sp && win && row_id(s->rows_fd, s->data_fd, s->rh.nrows, 0, col, win, sp, &p) == 0) {
		size_t a = col ? sp[col - 1].off + sp[col - 1].len + 1 : 1, b = sp[col].off - 1;
		if (b - a <= cap) {
			memcpy(buf, p.row + a, b - a);
			n = (long)(b - a);
		}
		unmap_row(&p.m);
	}
	free(win);
	free(sp);
	return n;
}

/* Copy row i of side s to f. */
static int copy_row(const struct side *s, uint64_t i, struct wfile *f)
{
	uint64_t off;
	size_t len;

	if (row_range(s->rows_fd, s->rh.nrows, i, &off, &len) < 0)
		return -1;
	while (len) {
		size_t n;
		if (f->len == WBUF && wf_flush(f) < 0)
			return -1;
		n = WBUF - f->len < len ? WBUF - f->len : len;
		if (pread_all(s->data_fd, f->buf + f->len, n, off) < 0)
			return -1;
		f->len += n;
		f->out += n;
		off += n;
		len -= n;
	}
	return 0;
}

enum { D_ADDED, D_CHANGED, D_DELETED };

/* The changed and deleted rows that the pass writing the added ones holds back until their
 * turn in the file: row numbers, the changed ones from the front, the deleted ones from the
 * back (64 KiB). A kind that does not fit gets a pass of its own. */
#define DIFF_HELD 8192

struct diff {
	const struct side *o, *n;
	struct wfile *f;
	struct snapidx_span *sp;
	char *win;
	uint64_t limit;
	struct snapidx_key *rbuf; /* 2 * DIFF_RBUF_KEYS: the readers of both keys.idx */
	uint64_t *held;           /* DIFF_HELD */
	size_t nheld[3];
	int lost[3]; /* a row of that kind did not fit in held */
	int first;   /* nothing yet in the current array */
};

/* Write a row of the new side (added, changed) or the id of a row of the old (deleted).
 * Returns 0, -1 (errno), or -4 when the file passes its limit. */
static int emit(struct diff *d, int kind, uint64_t row)
{
	if (!d->first && wf_put(d->f, ",", 1) < 0)
		return -1;
	d->first = 0;
	if (kind == D_DELETED) {
		const struct side *o = d->o;
		const struct snapidx_span *id = &d->sp[o->rh.id_col];
		struct prefix p;
		int rc;
		if (row_id(o->rows_fd, o->data_fd, o->rh.nrows, row, o->rh.id_col, d->win, d->sp,
		           &p) < 0)
			return -1;
		rc = wf_put(d->f, p.row + id->off, id->len);
		unmap_row(&p.m);
		if (rc < 0)
			return -1;
	} else if (copy_row(d->n, row, d->f) < 0) {
		return -1;
	}
	return d->f->out > d->limit ? -4 : 0;
}

/* One merge of both keys arrays: write the rows (or ids) of one kind; with hold, keep the
 * changed and deleted rows back in d->held while there is room. 0, -1, -3 (stop) or -4. */
static int diff_pass(struct diff *d, int kind, int hold, volatile sig_atomic_t *stop)
{
	struct kread a, b;
	struct snapidx_key ka, kb;
	int ga, gb, r;
	uint64_t steps = 0, check = STOP_EVERY;

	kr_init(&a, d->o->keys_fd, sizeof(struct snapidx_head), d->o->kh.nkeys, d->rbuf,
	        DIFF_RBUF_KEYS);
	kr_init(&b, d->n->keys_fd, sizeof(struct snapidx_head), d->n->kh.nkeys,
	        d->rbuf + DIFF_RBUF_KEYS, DIFF_RBUF_KEYS);
	if ((ga = kr_next(&a, &ka)) < 0 || (gb = kr_next(&b, &kb)) < 0)
		return -1;
	while (ga > 0 || gb > 0) {
		uint64_t row;
		int is;
		if (++steps >= check) {
			if (stop && *stop)
				return -3;
			check = steps + STOP_EVERY;
		}
		if (ga > 0 && gb > 0 && ka.pk_hash == kb.pk_hash && ka.row_hash == kb.row_hash) {
			/* Unchanged, like most rows: those that follow are skipped in place. */
			const struct snapidx_key *x = a.buf + a.i, *y = b.buf + b.i;
			size_t m = a.n - a.i < b.n - b.i ? a.n - a.i : b.n - b.i, j = 0;
			while (j < m && x[j].pk_hash == y[j].pk_hash &&
			       x[j].row_hash == y[j].row_hash)
				j++;
			a.i += j;
			b.i += j;
			steps += j;
			if ((ga = kr_next(&a, &ka)) < 0 || (gb = kr_next(&b, &kb)) < 0)
				return -1;
			continue;
		}
		if (gb > 0 && (ga == 0 || kb.pk_hash < ka.pk_hash)) {
			row = kb.row; /* only in the new one */
			is = D_ADDED;
			gb = kr_next(&b, &kb);
		} else if (ga > 0 && (gb == 0 || ka.pk_hash < kb.pk_hash)) {
			row = ka.row; /* only in the old one */
			is = D_DELETED;
			ga = kr_next(&a, &ka);
		} else {
			row = kb.row; /* in both */
			is = ka.row_hash != kb.row_hash ? D_CHANGED : -1;
			ga = kr_next(&a, &ka);
			gb = kr_next(&b, &kb);
		}
		if (ga < 0 || gb < 0)
			return -1;
		if (is == kind) {
			if ((r = emit(d, kind, row)) < 0)
				return r;
		} else if (hold && is >= 0) {
			if (d->nheld[D_CHANGED] + d->nheld[D_DELETED] == DIFF_HELD)
				d->lost[is] = 1;
			else if (is == D_CHANGED)
				d->held[d->nheld[D_CHANGED]++] = row;
			else
				d->held[DIFF_HELD - ++d->nheld[D_DELETED]] = row;
		}
	}
	return 0;
}

/* The held rows of one kind, in the merge's order. 0, -1, -3 (stop) or -4. */
static int emit_held(struct diff *d, int kind, volatile sig_atomic_t *stop)
{
	for (size_t i = 0; i < d->nheld[kind]; i++) {
		int r;
		if ((i + 1) % STOP_EVERY == 0 && stop && *stop)
			return -3;
		r = emit(d, kind, kind == D_CHANGED ? d->held[i] : d->held[DIFF_HELD - 1 - i]);
		if (r < 0)
			return r;
	}
	return 0;
}

int idx_diff(const char *old_dir, const char *from_id, const char *new_dir,
             volatile sig_atomic_t *stop, char *err, size_t errlen)
{
	static const char *const part[] = {"\"added\":[", "],\"changed\":[", "],\"deleted\":["};
	struct side o, n;
	struct wfile f = {-1, NULL, 0, 0, 0, ""};
	struct snapidx_span *sp = NULL;
	struct snapidx_key *rbuf = NULL;
	uint64_t *held = NULL;
	struct diff d;
	char *win = NULL;
	char dir[4400], name[128], ka[256], kb[256];
	int rc = -1, r;

	if (side_open(old_dir, &o, err, errlen) < 0)
		return 1; /* an older snapshot without a usable index: nothing to diff against */
	if (side_open(new_dir, &n, err, errlen) < 0) {
		side_close(&o);
		return -1;
	}
	if (!side_keyed(&o) || !side_keyed(&n)) {
		snprintf(err, errlen, "%s: no unique ids on both sides", from_id);
		rc = 1;
		goto out;
	}
	/* Row hashes made by another function (a build before XXH3) never compare equal. */
	if ((o.kh.flags ^ n.kh.flags) & SNAPIDX_ROWHASH_XXH3) {
		snprintf(err, errlen, "%s: its rows were hashed by an older build", from_id);
		rc = 1;
		goto out;
	}
	/* Another id column (id_column changed between the two): the keys do not compare. */
	if (o.rh.nrows && n.rh.nrows) {
		long la = first_key(&o, o.rh.id_col, ka, sizeof(ka)),
		     lb = first_key(&n, n.rh.id_col, kb, sizeof(kb));
		if (la < 0 || la != lb || memcmp(ka, kb, (size_t)la) != 0) {
			snprintf(err, errlen, "%s: another id column", from_id);
			rc = 1;
			goto out;
		}
	}
	if ((sp = malloc(((size_t)o.rh.id_col + 1) * sizeof(*sp))) == NULL ||
	    (win = malloc(WBUF)) == NULL ||
	    (rbuf = malloc(2 * DIFF_RBUF_KEYS * sizeof(*rbuf))) == NULL ||
	    (held = malloc(DIFF_HELD * sizeof(*held))) == NULL) {
		snprintf(err, errlen, "the changes: out of memory");
		goto out;
	}
	snprintf(dir, sizeof(dir), "%s/%s", new_dir, SNAPIDX_CHANGES);
	if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		goto out;
	}
	snprintf(name, sizeof(name), "%s.json", from_id);
	if (wf_open(&f, dir, name) < 0) {
		snprintf(err, errlen, "%s/%s: %s", dir, name, strerror(errno));
		goto out;
	}
	memset(&d, 0, sizeof(d));
	d.o = &o;
	d.n = &n;
	d.f = &f;
	d.sp = sp;
	d.win = win;
	d.limit = n.rh.data_size / IDX_CHANGES_MAX;
	d.rbuf = rbuf;
	d.held = held;
	/* One merge writes the added rows and holds the others back for their arrays. */
	for (int kind = D_ADDED; kind <= D_DELETED; kind++) {
		if (wf_put(&f, part[kind], strlen(part[kind])) < 0)
			goto werr;
		d.first = 1;
		if (kind == D_ADDED)
			r = diff_pass(&d, kind, 1, stop);
		else if (!d.lost[kind])
			r = emit_held(&d, kind, stop);
		else
			r = diff_pass(&d, kind, 0, stop);
		if (r == -3) {
			snprintf(err, errlen, "stopped while writing the changes from %s", from_id);
			rc = -3;
			goto out;
		}
		if (r == -4) {
			snprintf(
			    err, errlen,
			    "more changes than 1/%d of the body: changes_since from it answers "
			    "410",
			    IDX_CHANGES_MAX);
			rc = 1;
			goto out;
		}
		if (r < 0)
			goto werr;
	}
	if (wf_put(&f, "]}", 2) < 0 || wf_flush(&f) < 0)
		goto werr;
	sync_file_range(f.fd, 0, 0, SYNC_FILE_RANGE_WRITE); /* the caller's fsync waits */
	wf_close(&f, 0);
	rc = 0;
	goto out;
werr:
	snprintf(err, errlen, "%s/%s: %s", dir, name, strerror(errno));
out:
	wf_close(&f, rc != 0);
	free(sp);
	free(win);
	free(rbuf);
	free(held);
	side_close(&o);
	side_close(&n);
	return rc;
}

#include "csv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define CSV_READ_SIZE (256 * 1024)
/* A regular file is mapped this much at a time: 256 KiB to 4 MiB, with or without
 * MAP_POPULATE, convert in the same time; the window's pages count in the RSS. */
#define CSV_WINDOW (512 * 1024)
#define CSV_FLUSH_AT (512 * 1024) /* a chunk for the file and the gzip queue (gz.c) */
#define CSV_PROGRESS_EVERY (64LL * 1024 * 1024)
#define CSV_COUNT_WIDTH 15                 /* room for the row count, padded with spaces */
#define CSV_MAX_FIELD_CAP (UINT32_MAX / 8) /* header offsets are 32-bit */

/* The envelope before the rows; the count and last_updated are patched in place. */
#define ENV_COUNT "{\"status\":\"success\",\"count\":"
#define ENV_UPDATED ",\"last_updated\":\""

struct buf {
	char *p;
	size_t len, cap;
};

static int buf_grow(struct buf *b, size_t need)
{
	size_t cap = b->cap ? b->cap : 4096;
	char *np;

	while (cap - b->len < need)
		cap *= 2;
	if (cap == b->cap)
		return 0;
	if ((np = realloc(b->p, cap)) == NULL)
		return -1;
	b->p = np;
	b->cap = cap;
	return 0;
}

/* Make sure b has room for need more bytes. */
static inline int room(struct buf *b, size_t need)
{
	return b->cap - b->len >= need ? 0 : buf_grow(b, need);
}

/* Callers reserve room first; these never fail. */
static inline void put(struct buf *b, const char *s, size_t n)
{
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static inline void putc1(struct buf *b, char c)
{
	b->p[b->len++] = c;
}

/* Byte classes for the content of a field. */
enum { C_PLAIN, C_ESC, C_HIGH, C_QUOTE, C_COMMA, C_CR, C_LF };
static unsigned char cls[256];
static int cls_ready;

static void cls_init(void)
{
	int i;

	if (cls_ready)
		return;
	cls_ready = 1;

	for (i = 0; i < 256; i++)
		cls[i] = i < 0x20 ? C_ESC : i >= 0x80 ? C_HIGH : C_PLAIN;
	cls['\\'] = C_ESC;
	cls['"'] = C_QUOTE;
	cls[','] = C_COMMA;
	cls['\r'] = C_CR;
	cls['\n'] = C_LF;
}

static const char hexd[] = "0123456789abcdef";

/* Escape one ASCII byte that is a control character, '"' or '\\'. */
static inline void put_esc(struct buf *b, unsigned char c)
{
	b->p[b->len++] = '\\';
	switch (c) {
	case '"':
	case '\\':
		b->p[b->len++] = (char)c;
		break;
	case '\n':
		b->p[b->len++] = 'n';
		break;
	case '\r':
		b->p[b->len++] = 'r';
		break;
	case '\t':
		b->p[b->len++] = 't';
		break;
	case '\b':
		b->p[b->len++] = 'b';
		break;
	case '\f':
		b->p[b->len++] = 'f';
		break;
	default:
		b->p[b->len++] = 'u';
		b->p[b->len++] = '0';
		b->p[b->len++] = '0';
		b->p[b->len++] = hexd[c >> 4];
		b->p[b->len++] = hexd[c & 15];
	}
}

/* Incremental UTF-8 validation: a sequence is copied only once complete and valid. */
struct utf8 {
	int need;
	unsigned char lo, hi;
	unsigned char pend[4];
	int npend;
};

static const char repl[] = "\xef\xbf\xbd"; /* U+FFFD */

/* Feed one byte >= 0x80, or any byte while a sequence is open. Returns 1 if the byte was
 * consumed, 0 if the open sequence was invalid (replaced) and the byte must be handled
 * again from scratch. */
static inline int utf8_feed(struct utf8 *u, struct buf *b, unsigned char c, long long *replaced)
{
	if (u->need == 0) {
		u->lo = 0x80;
		u->hi = 0xBF;
		if (c >= 0xC2 && c <= 0xDF)
			u->need = 1;
		else if (c == 0xE0)
			u->need = 2, u->lo = 0xA0;
		else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
			u->need = 2;
		else if (c == 0xED)
			u->need = 2, u->hi = 0x9F;
		else if (c == 0xF0)
			u->need = 3, u->lo = 0x90;
		else if (c >= 0xF1 && c <= 0xF3)
			u->need = 3;
		else if (c == 0xF4)
			u->need = 3, u->hi = 0x8F;
		else {
			put(b, repl, 3);
			(*replaced)++;
			return 1;
		}
		u->pend[0] = c;
		u->npend = 1;
		return 1;
	}
	if (c >= u->lo && c <= u->hi) {
		u->pend[u->npend++] = c;
		u->lo = 0x80;
		u->hi = 0xBF;
		if (--u->need == 0)
			put(b, (const char *)u->pend, (size_t)u->npend);
		return 1;
	}
	put(b, repl, 3);
	(*replaced)++;
	u->need = 0;
	return 0;
}

/* Close an open sequence at the end of a field. */
static inline void utf8_end(struct utf8 *u, struct buf *b, long long *replaced)
{
	if (u->need) {
		put(b, repl, 3);
		(*replaced)++;
		u->need = 0;
	}
}

size_t csv_json_escape(char *dst, const char *s, size_t len)
{
	struct buf b = {dst, 0, 6 * len + 1};
	struct utf8 u = {0, 0, 0, {0}, 0};
	long long replaced = 0;
	size_t i = 0;

	cls_init();
	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		if (u.need || c >= 0x80) {
			if (utf8_feed(&u, &b, c, &replaced))
				i++;
			continue;
		}
		if (c < 0x20 || c == '"' || c == '\\')
			put_esc(&b, c);
		else
			putc1(&b, (char)c);
		i++;
	}
	utf8_end(&u, &b, &replaced);
	dst[b.len] = '\0';
	return b.len;
}

enum state { S_START, S_BARE, S_QUOTED, S_QUOTE1, S_CR };

/* A column name: its text in hdr, and where it was in the header (for messages); once the
 * header is read, what goes before every value of its column, in sep. */
struct key {
	uint32_t off, len, line, col;
	uint32_t sep, sep_len;
};

/* Room for copy_key's over-copy, and at the end of the buffer it copies from. */
#define KEY_COPY 32

struct parser {
	const char *name;
	enum state st;
	int header;            /* still reading the header row */
	int eof;               /* the input has ended: the last record lacks its line end */
	long long line;        /* current physical line, 1-based */
	long long line_start;  /* input offset where it starts */
	long long fline, fcol; /* where the current field started */
	long long foff;        /* and its input offset */
	size_t max_field;
	size_t nfield; /* index of the current field in its record */
	int in_field;  /* a field has started in this record */
	char bare[4];  /* the first bytes of an unquoted field, to spot NULL */
	int nbare;
	int bare_out; /* an unquoted field longer than 4 bytes, being streamed */
	struct utf8 u;
	struct buf *cur;  /* where field text goes: hdr while header, else out */
	struct buf hdr;   /* escaped header names, one after the other */
	struct key *keys; /* in header order */
	size_t nkeys, keycap;
	/* For each key, '"' then what starts a field of its column ('{' for the first, else
	 * ','), then "name": and '"': the closing quote of a quoted value before it and the
	 * opening quote of one after it come with it. */
	char *sep;
	size_t key_room; /* the longest, plus KEY_COPY */
	struct buf out;
	int fd;
	long long written; /* bytes flushed to fd */
	long long count_off;
	long long rows, replaced;
	long long row_off; /* output offset of the current row's '{' */
	int write_failed;
	struct csv_out *sink;
	char *err;
	size_t errlen;
	/* The input as a whole, across reads or windows. */
	const struct csv_opts *opts;
	long long total, next_progress;
	int bom;  /* bytes of a leading BOM matched so far; -1 once past it */
	int lead; /* no byte but white space seen yet */
};

static int fail(struct parser *p, long long line, long long col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct parser *p, long long line, long long col, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(p->err, p->errlen, "%s:%lld:%lld: %s", p->name, line, col, what);
	return -1;
}

static int flush(struct parser *p)
{
	size_t off = 0;

	if (p->fd < 0)
		return 0;
	while (off < p->out.len) {
		ssize_t n = write(p->fd, p->out.p + off, p->out.len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(p->err, p->errlen, "writing the JSON: %s", strerror(errno));
			p->write_failed = 1;
			return -1;
		}
		off += (size_t)n;
	}
	if (p->sink->tap &&
	    p->sink->tap(p->sink->tap_arg, &p->out.p, &p->out.cap, p->out.len) < 0) {
		snprintf(p->err, p->errlen, "writing the gzip copy failed");
		p->write_failed = 1;
		return -1;
	}
	p->written += (long long)p->out.len;
	p->out.len = 0;
	return 0;
}

/*
 * The flush at CSV_FLUSH_AT: with a row hook, the row in progress stays in the buffer
 * (moved to its front) unless it is long, so the hook gets nearly every row from memory and
 * only a row longer than half the buffer is read back from fd.
 */
static int flush_at_mark(struct parser *p)
{
	size_t keep, len;
	const char *from;

	if (p->fd < 0 || p->sink->row == NULL || p->row_off <= p->written)
		return flush(p);
	keep = (size_t)(p->written + (long long)p->out.len - p->row_off);
	if (keep > p->out.len / 2)
		return flush(p);
	len = p->out.len - keep;
	p->out.len = len;
	from = p->out.p;
	if (flush(p) < 0)
		return -1;
	if (p->out.p == from) {
		memmove(p->out.p, p->out.p + len, keep);
	} else { /* the tap took the buffer: it is still readable until its next call */
		if (room(&p->out, keep) < 0)
			return fail(p, p->line, 1, "out of memory");
		memcpy(p->out.p, from + len, keep);
	}
	p->out.len = keep;
	return 0;
}

/* Copy n bytes of a key's separator to dst, which has n + KEY_COPY bytes of room: a short
 * one in a fixed-size copy (the size of most column names), whatever is past it too. */
static inline void copy_key(char *dst, const char *src, size_t n)
{
	if (n <= KEY_COPY)
		memcpy(dst, src, KEY_COPY);
	else
		memcpy(dst, src, n);
}

/* A field starts: write the separator and the key. */
static int field_begin(struct parser *p, long long col)
{
	p->fline = p->line;
	p->fcol = col;
	p->foff = p->line_start + col - 1;
	p->in_field = 1;
	p->nbare = 0;
	p->bare_out = 0;
	if (p->header)
		return 0;
	if (p->nfield >= p->nkeys)
		return fail(p, p->line, col, "too many fields: the header has %zu", p->nkeys);
	if (room(&p->out, p->key_room + 8) < 0)
		return fail(p, p->line, col, "out of memory");
	if (p->nfield == 0) {
		putc1(&p->out, p->rows ? ',' : '[');
		p->row_off = p->written + (long long)p->out.len;
	}
	/* The separator without its quotes. */
	copy_key(p->out.p + p->out.len, p->sep + p->keys[p->nfield].sep + 1,
	         p->keys[p->nfield].sep_len - 2);
	p->out.len += p->keys[p->nfield].sep_len - 2;
	return 0;
}

/* A field ends at input offset end: refuse it if it is longer than max_field. */
static int field_fits(struct parser *p, long long end)
{
	if (end - p->foff > (long long)p->max_field)
		return fail(p, p->fline, p->fcol, "a field longer than max_field_bytes (%zu bytes)",
		            p->max_field);
	return 0;
}

static int header_fits(struct parser *p)
{
	if (p->hdr.len > p->max_field)
		return fail(p, 1, 1, "the header row is longer than max_field_bytes (%zu bytes)",
		            p->max_field);
	return 0;
}

static int add_key(struct parser *p, size_t off, size_t len, long long col)
{
	if (len == 0)
		return fail(p, p->fline, col, "empty column name in the header");
	if (header_fits(p) < 0)
		return -1;
	if (p->nkeys == p->keycap) {
		size_t cap = p->keycap ? p->keycap * 2 : 32;
		struct key *a = realloc(p->keys, cap * sizeof(*a));
		if (a == NULL)
			return fail(p, p->fline, col, "out of memory");
		p->keys = a;
		p->keycap = cap;
	}
	/* All fit in 32 bits: the header is at most max_field bytes, which is capped. */
	p->keys[p->nkeys].off = (uint32_t)off;
	p->keys[p->nkeys].len = (uint32_t)len;
	p->keys[p->nkeys].line = (uint32_t)p->fline;
	p->keys[p->nkeys].col = (uint32_t)p->fcol;
	p->nkeys++;
	return 0;
}

/* Keys by name, then by position (off grows along the header). */
static int key_cmp(const void *a, const void *b, void *arg)
{
	const struct key *x = a, *y = b;
	const char *h = arg;
	int c = memcmp(h + x->off, h + y->off, x->len < y->len ? x->len : y->len);

	if (c == 0 && x->len != y->len)
		c = x->len < y->len ? -1 : 1;
	if (c == 0)
		c = x->off < y->off ? -1 : x->off > y->off;
	return c;
}

static int key_off_cmp(const void *a, const void *b)
{
	const struct key *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

/* Duplicate names, in O(n log n): sort by name, compare neighbours, sort back. The one
 * reported is the first column, in header order, that repeats an earlier name. */
static int check_duplicates(struct parser *p)
{
	const struct key *dup = NULL;
	size_t i;

	qsort_r(p->keys, p->nkeys, sizeof(p->keys[0]), key_cmp, p->hdr.p);
	for (i = 1; i < p->nkeys; i++) {
		const struct key *a = &p->keys[i - 1], *b = &p->keys[i];
		if (a->len == b->len && memcmp(p->hdr.p + a->off, p->hdr.p + b->off, a->len) == 0 &&
		    (dup == NULL || b->off < dup->off))
			dup = b;
	}
	if (dup)
		return fail(p, dup->line, dup->col, "duplicate column name in the header");
	qsort(p->keys, p->nkeys, sizeof(p->keys[0]), key_off_cmp);
	return 0;
}

/* The current field ends (quoted says how it was written). */
static int field_end(struct parser *p, int quoted, long long col)
{
	if (field_fits(p, p->line_start + col - 1) < 0)
		return -1;
	utf8_end(&p->u, p->cur, &p->replaced);
	if (p->header) {
		size_t start =
		    p->nfield ? p->keys[p->nfield - 1].off + p->keys[p->nfield - 1].len : 0;
		if (!quoted && p->nbare)
			put(&p->hdr, p->bare, (size_t)p->nbare);
		if (add_key(p, start, p->hdr.len - start, col) < 0)
			return -1;
	} else if (quoted) {
		putc1(&p->out, '"');
	} else {
		if (p->bare_out)
			putc1(&p->out, '"');
		else if (p->nbare == 4 && memcmp(p->bare, "NULL", 4) == 0)
			put(&p->out, "null", 4);
		else {
			putc1(&p->out, '"');
			put(&p->out, p->bare, (size_t)p->nbare);
			putc1(&p->out, '"');
		}
	}
	p->nfield++;
	p->in_field = 0;
	return 0;
}

/* The row just ended goes to the sink's row hook, whole in memory or flushed whole. */
static int row_hook(struct parser *p)
{
	long long end = p->written + (long long)p->out.len;
	const char *row = NULL;

	if (p->row_off >= p->written)
		row = p->out.p + (p->row_off - p->written);
	else if (flush(p) < 0)
		return -1;
	if (p->sink->row(p->sink->row_arg, p->row_off, row, (size_t)(end - p->row_off)) < 0) {
		snprintf(p->err, p->errlen, "writing the index: %s", strerror(errno));
		p->write_failed = 1;
		return -1;
	}
	return 0;
}

static char *columns_json(const struct parser *p);

/* Once the header is read: every key's separator, in sep. */
static int make_seps(struct parser *p)
{
	struct buf b = {NULL, 0, 0};
	size_t i, longest = 0;

	if (buf_grow(&b, p->hdr.len + 6 * p->nkeys + KEY_COPY) < 0)
		return fail(p, 1, 1, "out of memory");
	for (i = 0; i < p->nkeys; i++) {
		struct key *k = &p->keys[i];
		k->sep = (uint32_t)b.len;
		put(&b, i ? "\",\"" : "\"{\"", 3);
		put(&b, p->hdr.p + k->off, k->len);
		put(&b, "\":\"", 3);
		k->sep_len = (uint32_t)(b.len - k->sep);
		if (k->sep_len > longest)
			longest = k->sep_len;
	}
	memset(b.p + b.len, 0, KEY_COPY);
	p->sep = b.p;
	p->key_room = longest + KEY_COPY;
	return 0;
}

static int record_end(struct parser *p, long long col)
{
	if (p->header) {
		if (check_duplicates(p) < 0 || make_seps(p) < 0)
			return -1;
		if (p->sink->header) {
			char *cols = columns_json(p);
			int rc =
			    cols ? p->sink->header(p->sink->row_arg, cols) : (errno = ENOMEM, -1);
			free(cols);
			if (rc < 0) {
				snprintf(p->err, p->errlen, "writing the index: %s",
				         strerror(errno));
				p->write_failed = 1;
				return -1;
			}
		}
		p->header = 0;
		p->cur = &p->out;
		p->nfield = 0;
		return 0;
	}
	if (p->nfield != p->nkeys)
		return fail(p, p->line, col, "expected %zu fields, got %zu%s", p->nkeys, p->nfield,
		            p->eof ? " in the last row, which has no line end (is the export "
		                     "truncated?)"
		                   : "");
	putc1(&p->out, '}');
	if (p->sink->row && row_hook(p) < 0)
		return -1;
	p->rows++;
	p->nfield = 0;
	return 0;
}

/* Unquoted text: keep up to 4 plain bytes aside (they may spell NULL), then stream;
 * anything that needs escaping starts the stream at once. */
static inline void bare_byte(struct parser *p, unsigned char c)
{
	struct buf *b = p->cur;

	if (!p->bare_out && p->nbare < 4 && cls[c] == C_PLAIN && !p->header) {
		p->bare[p->nbare++] = (char)c;
		return;
	}
	if (!p->bare_out && !p->header) {
		putc1(b, '"');
		put(b, p->bare, (size_t)p->nbare); /* plain ASCII, checked when kept */
		p->bare_out = 1;
	} else if (p->header && p->nbare) {
		put(b, p->bare, (size_t)p->nbare);
		p->nbare = 0;
	}
	while (p->u.need || c >= 0x80) {
		if (utf8_feed(&p->u, b, c, &p->replaced))
			return;
	}
	if (cls[c] == C_ESC || c == '"')
		put_esc(b, c);
	else
		putc1(b, (char)c);
}

/* Copy to dst the bytes at s that need no escaping inside a quoted field (ASCII from 0x20
 * up but '"' and '\\'; the comma is plain there), at most n; returns how many. With SSE2,
 * 16 bytes at a time, where doubled quotes are plain too (written \", as long): a block
 * is stored whole before it is looked at, so dst may get bytes past the count returned,
 * never past n. */
static inline size_t plain_copy(char *dst, const unsigned char *s, size_t n)
{
	size_t i = 0;

#ifdef __SSE2__
	const __m128i space = _mm_set1_epi8(0x20), quote = _mm_set1_epi8('"'),
	              bslash = _mm_set1_epi8('\\');

	for (; i + 16 <= n; i += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
		__m128i q = _mm_cmpeq_epi8(v, quote), pair;
		/* Signed: bytes from 0x80 up are negative, below 0x20 too. */
		__m128i m = _mm_or_si128(_mm_cmplt_epi8(v, space),
		                         _mm_or_si128(q, _mm_cmpeq_epi8(v, bslash)));
		unsigned bits = (unsigned)_mm_movemask_epi8(m), first;

		if (bits == 0) {
			_mm_storeu_si128((__m128i *)(void *)(dst + i), v);
			continue;
		}
		/* Only quotes, in runs of exactly two inside the block (the first of each is
		 * where a quote with one after it and none before it is; the bits of the
		 * pairs are all quotes): each pair is one quote of the value, \" in place of
		 * "". Anything else ends the copy where it is. */
		pair =
		    _mm_andnot_si128(_mm_slli_si128(q, 1), _mm_and_si128(q, _mm_srli_si128(q, 1)));
		first = (unsigned)_mm_movemask_epi8(pair);
		if (bits == (first | first << 1)) {
			_mm_storeu_si128(
			    (__m128i *)(void *)(dst + i),
			    _mm_or_si128(_mm_andnot_si128(pair, v), _mm_and_si128(pair, bslash)));
			continue;
		}
		_mm_storeu_si128((__m128i *)(void *)(dst + i), v);
		return i + (size_t)__builtin_ctz(bits);
	}
#endif
	for (; i < n && (cls[s[i]] == C_PLAIN || cls[s[i]] == C_COMMA); i++)
		dst[i] = (char)s[i];
	return i;
}

/*
 * Inside a quoted field (the hot loop): from s[*i], copy runs of plain bytes at once, a
 * doubled quote as \", valid UTF-8 as it is, and escape the rest, until the closing quote
 * (state S_QUOTE1) or QUOTED_STEP input bytes, whichever comes first, so the caller's
 * flush check runs at least that often. A closing quote followed by ,\" ends the field and
 * starts the next one here. Returns 0, or -1 with the error set.
 */
#define QUOTED_STEP 4096
static int quoted_run(struct parser *p, const unsigned char *s, size_t n, size_t *ip,
                      long long base)
{
	struct buf *b = p->cur;
	size_t i = *ip, lim = n - i > QUOTED_STEP ? i + QUOTED_STEP : n;

	/* At most 6 bytes out per byte in, and an open UTF-8 sequence (4) or U+FFFD; and a
	 * key, which takes 3 bytes in (see below). */
	if (room(b, 6 * (lim - i) + 16 + p->key_room) < 0)
		return fail(p, p->line, 1, "out of memory");
	while (i < lim) {
		unsigned char c;
		size_t j;

		if (p->u.need) { /* a sequence left open, by the previous chunk too */
			if (utf8_feed(&p->u, b, s[i], &p->replaced))
				i++;
			continue;
		}
		j = i + plain_copy(b->p + b->len, s + i, lim - i);
		b->len += j - i;
		if ((i = j) == lim)
			break;
		c = s[i];
		if (c == '"') {
			if (i + 1 < n && s[i + 1] == '"') { /* a doubled quote: one of the value */
				put(b, "\\\"", 2);
				i += 2;
				continue;
			}
			/* The closing quote, then the next quoted field of the row, at once. */
			if (i + 2 < n && s[i + 1] == ',' && s[i + 2] == '"' && !p->header) {
				long long end = base + (long long)i + 1; /* past the quote */
				long long col = end - p->line_start + 1;
				if (p->nfield + 1 < p->nkeys &&
				    end - p->foff <= (long long)p->max_field) {
					/* field_end and field_begin of quoted fields, here: no
					 * UTF-8 sequence is open, and the next key exists. */
					const struct key *k = &p->keys[++p->nfield];
					p->fline = p->line;
					p->fcol = col + 1;
					p->foff = end + 1;
					p->nbare = 0;
					p->bare_out = 0;
					copy_key(b->p + b->len, p->sep + k->sep, k->sep_len);
					b->len += k->sep_len;
				} else {
					/* They refuse it, and say why. */
					if (field_end(p, 1, col) < 0 || field_begin(p, col + 1) < 0)
						return -1;
					putc1(b, '"'); /* in field_begin's room */
				}
				i += 3;
				if (i >= lim || b->len >= CSV_FLUSH_AT)
					break;
				if (room(b, 6 * (lim - i) + 16 + p->key_room) < 0)
					return fail(p, p->line, 1, "out of memory");
				continue;
			}
			p->st = S_QUOTE1;
			i++;
			break;
		}
		if (c >= 0x80) {
			/* The common 2-byte sequences at once; anything else byte by byte. */
			if (c >= 0xC2 && c <= 0xDF && i + 1 < lim && (s[i + 1] & 0xC0) == 0x80) {
				put(b, (const char *)s + i, 2);
				i += 2;
				continue;
			}
			utf8_feed(&p->u, b, c, &p->replaced); /* a lead byte is always taken */
			i++;
			continue;
		}
		if (c == '\n') {
			p->line++;
			p->line_start = base + (long long)i + 1;
		}
		put_esc(b, c);
		i++;
	}
	*ip = i;
	return 0;
}

static int parse_chunk(struct parser *p, const unsigned char *s, size_t n, long long base)
{
	size_t i = 0;

	/* Worst case per input byte: 6 output bytes; plus a key and separators per field. */
	while (i < n) {
		unsigned char c;
		long long col;

		/* Flushed inside a field too: a long value costs no memory. */
		if (p->out.len >= CSV_FLUSH_AT && flush_at_mark(p) < 0)
			return -1;
		if (room(p->cur, 64) < 0 || room(&p->out, 64) < 0)
			return fail(p, p->line, 1, "out of memory");
		if (p->st == S_QUOTED) {
			if (quoted_run(p, s, n, &i, base) < 0)
				return -1;
			continue;
		}

		c = s[i];
		col = base + (long long)i - p->line_start + 1;
		switch (p->st) {
		case S_QUOTE1:
			if (c == '"') { /* a doubled quote is one quote of the value */
				put(p->cur, "\\\"", 2);
				p->st = S_QUOTED;
				i++;
				continue;
			}
			if (field_end(p, 1, col) < 0)
				return -1;
			p->st = S_START;
			if (c == ',') {
				i++;
				if (field_begin(p, col + 1) < 0)
					return -1;
				continue;
			}
			if (c == '\r' || c == '\n')
				goto eol;
			return fail(p, p->line, col, "unexpected character after a closing quote");
		case S_START:
		case S_BARE:
			if (c == ',') {
				if (!p->in_field && field_begin(p, col) < 0)
					return -1;
				if (field_end(p, 0, col) < 0 || field_begin(p, col + 1) < 0)
					return -1;
				p->st = S_BARE;
				i++;
				continue;
			}
			if (c == '\r' || c == '\n') {
				if (p->in_field || p->st == S_BARE) {
					if (field_end(p, 0, col) < 0)
						return -1;
				} else if (p->nfield == 0) {
					/* an empty line: a record of one empty field */
					if (field_begin(p, col) < 0 || field_end(p, 0, col) < 0)
						return -1;
				}
				p->st = S_START;
				goto eol;
			}
			if (c == '"') {
				if (p->st == S_BARE && (p->nbare || p->bare_out))
					return fail(p, p->line, col,
					            "quote inside an unquoted field");
				if (!p->in_field && field_begin(p, col) < 0)
					return -1;
				if (!p->header)
					putc1(p->cur, '"');
				p->st = S_QUOTED;
				i++;
				continue;
			}
			if (!p->in_field && field_begin(p, col) < 0)
				return -1;
			p->st = S_BARE;
			/* SQL NULL at once: what bare_byte does with its 4 plain bytes. */
			if (c == 'N' && p->nbare == 0 && !p->bare_out && !p->header && n - i >= 4 &&
			    memcmp(s + i, "NULL", 4) == 0) {
				memcpy(p->bare, "NULL", 4);
				p->nbare = 4;
				i += 4;
				continue;
			}
			bare_byte(p, c);
			i++;
			continue;
		case S_CR:
			if (c != '\n')
				return fail(p, p->line, col - 1,
				            "carriage return not followed by a line feed");
			p->line++;
			p->line_start = base + (long long)i + 1;
			p->st = S_START;
			i++;
			continue;
		case S_QUOTED:
			break;
		}
		continue;
	eol:
		if (record_end(p, col) < 0)
			return -1;
		if (c == '\r') {
			p->st = S_CR;
		} else {
			p->line++;
			p->line_start = base + (long long)i + 1;
		}
		i++;
		if (p->out.len >= CSV_FLUSH_AT && flush_at_mark(p) < 0)
			return -1;
	}
	return 0;
}

static void parser_free(struct parser *p)
{
	free(p->sep);
	free(p->hdr.p);
	free(p->keys);
	if (p->fd >= 0)
		free(p->out.p);
}

/* Build the JSON array of column names from the header. */
static char *columns_json(const struct parser *p)
{
	struct buf b = {NULL, 0, 0};
	size_t i;

	if (buf_grow(&b, p->hdr.len + 3 * p->nkeys + 3) < 0)
		return NULL;
	putc1(&b, '[');
	for (i = 0; i < p->nkeys; i++) {
		if (i)
			putc1(&b, ',');
		putc1(&b, '"');
		put(&b, p->hdr.p + p->keys[i].off, p->keys[i].len);
		putc1(&b, '"');
	}
	putc1(&b, ']');
	putc1(&b, '\0');
	return b.p;
}

size_t csv_last_updated_off(void)
{
	return strlen(ENV_COUNT) + CSV_COUNT_WIDTH + strlen(ENV_UPDATED);
}

static int is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* The bytes of the input at base: the HTML check, then the parser. */
static int feed_text(struct parser *p, const unsigned char *s, size_t n, long long base)
{
	/* A page answered instead of the export: '<' first, after any white space. */
	for (size_t i = 0; p->lead && i < n; i++) {
		if (is_space(s[i]))
			continue;
		p->lead = 0;
		if (s[i] == '<')
			return fail(p, 1, 1, "this is an HTML page, not a CSV export");
	}
	return parse_chunk(p, s, n, base);
}

static const unsigned char bom[3] = {0xef, 0xbb, 0xbf};

/* The next n bytes of the input, however it was cut (a read, a window): the same output for
 * any cut. A leading UTF-8 BOM is skipped, matched across cuts too. */
static int feed(struct parser *p, const unsigned char *s, size_t n)
{
	size_t skip = 0;

	if (p->bom >= 0) {
		int before = p->bom;
		while (skip < n && p->bom < 3 && s[skip] == bom[p->bom])
			skip++, p->bom++;
		if (p->bom == 3) {
			p->bom = -1;
			p->line_start = 3;
		} else if (skip < n) { /* not a BOM: the bytes matched are text */
			p->bom = -1;
			if (before && feed_text(p, bom, (size_t)before, 0) < 0)
				return -1;
			skip = 0;
		}
	}
	if (skip < n && feed_text(p, s + skip, n - skip, p->total + (long long)skip) < 0)
		return -1;
	p->total += (long long)n;
	/* A field or a header that does not end is refused as it grows, not at its end. */
	if ((p->in_field && field_fits(p, p->total) < 0) || (p->header && header_fits(p) < 0))
		return -1;
	if (p->opts->progress && p->total >= p->next_progress) {
		p->opts->progress(p->opts->arg, p->rows, p->total);
		p->next_progress += CSV_PROGRESS_EVERY;
	}
	return 0;
}

/* The input ended: a BOM begun but not finished was text. */
static int feed_end(struct parser *p)
{
	int held = p->bom;

	p->bom = -1;
	return held > 0 ? feed_text(p, bom, (size_t)held, 0) : 0;
}

static int stopped(struct parser *p)
{
	if (p->opts->stop && *p->opts->stop) {
		snprintf(p->err, p->errlen, "%s: stopped after %lld bytes", p->name, p->total);
		return 1;
	}
	return 0;
}

static size_t csv_chunk; /* the test hook's: the most bytes parsed at once, 0 for the default */

void csv_test_chunk(size_t n)
{
	csv_chunk = n;
}

/*
 * A regular file is parsed straight from the page cache, a window at a time (mapped, parsed,
 * unmapped), so it is not copied and only one window's pages count in the RSS. The stop flag
 * is checked before every window. Returns 0 with *off where it stopped: the end of the file
 * as the last fstat saw it, or the start of a window that could not be mapped (the read loop
 * goes on from there either way). -1 for bad input (err set), -3 when stopped.
 *
 * A file that shrinks under us: each window is mapped after an fstat and no further than the
 * size it gave, so a file cut between windows ends there, as with read(2). What remains: a
 * file cut while a window is being parsed (CSV_WINDOW bytes, about half a millisecond of
 * work) raises SIGBUS on the first touch of a page past its new end, which kills the process
 * (a handler would be process-wide, and the signals are main.c's). The sync's own inputs
 * are not written while it reads them: an admin's file, or a finished download.
 */
static int map_input(struct parser *p, int fd, off_t *off)
{
	size_t win = csv_chunk ? csv_chunk : CSV_WINDOW;
	off_t page = (off_t)sysconf(_SC_PAGESIZE);
	struct stat st;

	for (;;) {
		size_t len, delta;
		off_t at;
		void *m;
		int rc;

		if (stopped(p))
			return -3;
		if (fstat(fd, &st) < 0 || st.st_size <= *off)
			return 0;
		len = (size_t)(st.st_size - *off) < win ? (size_t)(st.st_size - *off) : win;
		at = *off - *off % page;
		delta = (size_t)(*off - at);
		m = mmap(NULL, delta + len, PROT_READ, MAP_PRIVATE, fd, at);
		if (m == MAP_FAILED)
			return 0;
		madvise(m, delta + len, MADV_SEQUENTIAL);
		rc = feed(p, (const unsigned char *)m + delta, len);
		munmap(m, delta + len);
		if (rc < 0)
			return -1;
		*off += (off_t)len;
	}
}

int csv_convert(int in_fd, const char *name, struct csv_out *out, const char *last_updated,
                struct csv_result *res, const struct csv_opts *opts, char *err, size_t errlen)
{
	static const struct csv_opts defaults = {0, NULL, NULL, NULL};
	struct parser p;
	struct stat st;
	unsigned char *in = NULL;
	size_t rsize = csv_chunk && csv_chunk < CSV_READ_SIZE ? csv_chunk : CSV_READ_SIZE;
	long long total, col;
	off_t pos;
	char head[160], num[32];
	int rc = -1, hn;

	cls_init();
	if (opts == NULL)
		opts = &defaults;
	memset(&p, 0, sizeof(p));
	memset(res, 0, sizeof(*res));
	p.max_field = opts->max_field ? opts->max_field : CSV_MAX_FIELD;
	if (p.max_field > CSV_MAX_FIELD_CAP)
		p.max_field = CSV_MAX_FIELD_CAP;
	p.name = name;
	p.header = 1;
	p.line = 1;
	p.cur = &p.hdr;
	p.fd = out->fd;
	p.sink = out;
	p.err = err;
	p.errlen = errlen;
	p.opts = opts;
	p.next_progress = CSV_PROGRESS_EVERY;
	p.lead = 1;
	if (buf_grow(&p.out, CSV_FLUSH_AT + 4096) < 0) {
		snprintf(err, errlen, "%s: out of memory", name);
		goto out;
	}
	hn = snprintf(head, sizeof(head),
	              ENV_COUNT "%-*s" ENV_UPDATED "%s\",\"data\":", CSV_COUNT_WIDTH, "0",
	              last_updated);
	p.count_off = (long long)strlen(ENV_COUNT);
	put(&p.out, head, (size_t)hn);
	out->head_len = (size_t)hn;

	/* A regular file (--csv FILE) from its mapping; then, and for a pipe, by read(2). */
	if (fstat(in_fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    (pos = lseek(in_fd, 0, SEEK_CUR)) >= 0) {
		if ((rc = map_input(&p, in_fd, &pos)) < 0)
			goto out;
		rc = -1;
		if (lseek(in_fd, pos, SEEK_SET) < 0) {
			snprintf(err, errlen, "%s: lseek: %s", name, strerror(errno));
			goto out;
		}
	}
	if ((in = malloc(rsize)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", name);
		goto out;
	}
	for (;;) {
		ssize_t n;
		/* Before every read, and again after a signal interrupted one. */
		if (stopped(&p)) {
			rc = -3;
			goto out;
		}
		n = read(in_fd, in, rsize);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "%s: read: %s", name, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		if (feed(&p, in, (size_t)n) < 0)
			goto out;
	}
	if (feed_end(&p) < 0)
		goto out;
	total = p.total;
	col = total - p.line_start + 1;
	if (p.st == S_QUOTED) {
		fail(&p, p.fline, p.fcol, "unterminated quoted field (is the export truncated?)");
		goto out;
	}
	p.eof = 1;
	if (p.st == S_QUOTE1 || p.st == S_BARE || p.in_field) {
		if (field_end(&p, p.st == S_QUOTE1, col) < 0 || record_end(&p, col) < 0)
			goto out;
	}
	if (total == 0 || p.nkeys == 0) {
		fail(&p, 1, 1, "empty export: no header row");
		goto out;
	}
	if (p.header) {
		fail(&p, p.line, col, "the header row does not end");
		goto out;
	}
	if (buf_grow(&p.out, 4) < 0)
		goto out;
	put(&p.out, p.rows ? "]}" : "[]}", p.rows ? 2 : 3);
	if (flush(&p) < 0)
		goto out;

	/* Patch the row count into the room left for it. */
	hn = snprintf(num, sizeof(num), "%lld", p.rows);
	if (hn > CSV_COUNT_WIDTH) {
		snprintf(err, errlen, "%s: too many rows", name);
		goto out;
	}
	if (p.fd >= 0) {
		if (pwrite(p.fd, num, (size_t)hn, p.count_off) != hn) {
			snprintf(err, errlen, "writing the JSON: %s", strerror(errno));
			p.write_failed = 1;
			goto out;
		}
	} else {
		memcpy(p.out.p + p.count_off, num, (size_t)hn);
	}
	if ((res->columns = columns_json(&p)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", name);
		goto out;
	}
	res->rows = p.rows;
	res->bytes_in = total;
	res->bytes_out = p.fd >= 0 ? p.written : (long long)p.out.len;
	res->replaced = p.replaced;
	if (p.fd < 0) {
		p.out.p[p.out.len] = '\0';
		out->mem = p.out.p;
		out->mem_len = p.out.len;
		p.out.p = NULL;
	}
	rc = 0;
out:
	if (rc < 0 && p.fd < 0)
		free(p.out.p);
	if (rc < 0 && p.write_failed)
		rc = -2;
	parser_free(&p);
	free(in);
	return rc;
}
